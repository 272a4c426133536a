//! Everything a request needs, shared by all of them: the keys, the router,
//! the guardrails, the outbound clients, the metrics and the settings. Built
//! once from the validated config; the endpoints read it.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use crate::auth::Keys;
use crate::body::budget::Budget;
use crate::config::{Config, ServerSettings};
use crate::guardrails::Guardrails;
use crate::limits::GlobalLimit;
use crate::metrics::Metrics;
use crate::router::Router as ModelRouter;

pub struct AppState {
    pub keys: Keys,
    pub router: ModelRouter,
    pub guardrails: Guardrails,
    /// Pooled HTTP clients for upstream and guardrail calls, one per worker.
    pub http: Arc<crate::outbound::Clients>,
    pub metrics: Arc<Metrics>,
    pub settings: ServerSettings,
    /// `global_max_parallel_requests`.
    pub global: GlobalLimit,
    /// Set once shutdown begins: readiness answers 503.
    pub draining: AtomicBool,
}

impl AppState {
    /// The state for `workers` worker threads (1 for a single runtime).
    pub fn new(config: Config, workers: usize) -> Result<Arc<Self>, String> {
        crate::outbound::install_crypto();
        let http = Arc::new(crate::outbound::Clients::new(&config, workers)?);
        let metrics = Arc::new(Metrics::default());
        let budget = Budget::new(
            config.server.response_budget,
            config.server.max_response_bytes,
        );
        metrics.watch_budget(&budget);
        let guardrails = Guardrails::new(&config.guardrails, &http, &metrics, &budget)?;
        let keys = Keys::new(&config);
        let secrets = Arc::new(config.secrets());
        let Config {
            deployments,
            router,
            server,
            ..
        } = config;
        Ok(Arc::new(AppState {
            keys,
            router: ModelRouter::new(&deployments, router, metrics.clone(), secrets, budget),
            guardrails,
            http,
            metrics,
            global: GlobalLimit::new(server.max_parallel_requests),
            settings: server,
            draining: AtomicBool::new(false),
        }))
    }
}
