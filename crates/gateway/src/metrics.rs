//! Prometheus metrics, rendered as text for `GET /metrics`.
//!
//! The per-request series live in atomics owned by what they describe: each
//! deployment has a [`DeploymentStats`], each guardrail a [`GuardrailStats`],
//! registered once at startup. Recording a request is a few atomic adds, with
//! no label strings built and no lock shared by all requests. Rare events
//! (retries, fallbacks, cooldowns, rate limits, requests refused before a
//! deployment was chosen) go to a small keyed registry. Every metric is
//! listed, with its help text, in [`DESCRIPTIONS`] (and in the README).

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use crate::body::budget::Budget;

/// (name, type, help) of every metric the gateway exports.
pub const DESCRIPTIONS: &[(&str, &str, &str)] = &[
    (
        "gateway_requests_total",
        "counter",
        "Requests answered, by route, model group, deployment and status.",
    ),
    (
        "gateway_request_duration_seconds",
        "histogram",
        "Time from request to response head, by route and model group.",
    ),
    (
        "gateway_upstream_duration_seconds",
        "histogram",
        "Time the upstream took to answer (response head for streams), by model group and deployment.",
    ),
    (
        "gateway_time_to_first_token_seconds",
        "histogram",
        "Time from request to the first streamed chunk, by model group.",
    ),
    (
        "gateway_tokens_total",
        "counter",
        "Tokens reported by upstreams, by model group, deployment and direction (in = prompt, out = completion).",
    ),
    (
        "gateway_requests_in_flight",
        "gauge",
        "Requests being served, streams included.",
    ),
    (
        "gateway_guardrail_calls_total",
        "counter",
        "Guardrail checks, by guardrail, hook and verdict (pass, block, anonymize, error).",
    ),
    (
        "gateway_guardrail_duration_seconds",
        "histogram",
        "Guardrail check latency, by guardrail and hook.",
    ),
    (
        "gateway_guardrail_fail_open_total",
        "counter",
        "Guardrail failures let through because of fail_open, by guardrail.",
    ),
    (
        "gateway_retries_total",
        "counter",
        "Upstream attempts retried, by model group.",
    ),
    (
        "gateway_fallbacks_total",
        "counter",
        "Fallbacks to another model group, by from and to.",
    ),
    (
        "gateway_cooldowns_total",
        "counter",
        "Deployments put in cooldown, by model group and deployment.",
    ),
    (
        "gateway_response_budget_bytes",
        "gauge",
        "Bytes of answers read whole that the gateway holds now (response_budget_mb bounds them together).",
    ),
    (
        "gateway_response_budget_limit_bytes",
        "gauge",
        "The response budget (response_budget_mb), in bytes.",
    ),
    (
        "gateway_response_budget_refused_total",
        "counter",
        "Answers refused with 503 because the response budget was spent.",
    ),
    (
        "gateway_rate_limited_total",
        "counter",
        "Requests refused with 429 by a limit, by scope (key, global, deployment).",
    ),
];

/// The route a request came in on, as the `route` label shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Route {
    /// `/v1/chat/completions` (and its aliases).
    Chat,
    /// `/v1/messages` (and `/messages`).
    Messages,
}

impl Route {
    const ALL: [Route; 2] = [Route::Chat, Route::Messages];

    pub fn label(self) -> &'static str {
        match self {
            Route::Chat => "/v1/chat/completions",
            Route::Messages => "/v1/messages",
        }
    }
}

const BUCKETS: [f64; 16] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    60.0,
];

/// A histogram updated with atomics only.
#[derive(Debug, Default)]
pub struct Histogram {
    buckets: [AtomicU64; BUCKETS.len()],
    sum_nanos: AtomicU64,
    count: AtomicU64,
}

impl Histogram {
    pub fn observe(&self, d: Duration) {
        if let Some(i) = bucket(d) {
            self.buckets[i].fetch_add(1, Relaxed);
        }
        self.sum_nanos.fetch_add(nanos(d), Relaxed);
        self.count.fetch_add(1, Relaxed);
    }

    fn snapshot(&self) -> Snapshot {
        Snapshot {
            buckets: std::array::from_fn(|i| self.buckets[i].load(Relaxed)),
            sum_nanos: self.sum_nanos.load(Relaxed),
            count: self.count.load(Relaxed),
        }
    }
}

/// The first bucket `d` falls in (none past the last bound: only `+Inf`).
fn bucket(d: Duration) -> Option<usize> {
    let secs = d.as_secs_f64();
    BUCKETS.iter().position(|b| secs <= *b)
}

fn nanos(d: Duration) -> u64 {
    d.as_nanos().min(u128::from(u64::MAX)) as u64
}

/// A histogram's values, for adding several together when rendering.
#[derive(Clone, Copy, Default)]
struct Snapshot {
    buckets: [u64; BUCKETS.len()],
    sum_nanos: u64,
    count: u64,
}

impl Snapshot {
    /// One observation.
    fn of(d: Duration) -> Self {
        let mut s = Snapshot {
            sum_nanos: nanos(d),
            count: 1,
            ..Snapshot::default()
        };
        if let Some(i) = bucket(d) {
            s.buckets[i] = 1;
        }
        s
    }
}

impl std::ops::AddAssign for Snapshot {
    fn add_assign(&mut self, o: Snapshot) {
        for (a, b) in self.buckets.iter_mut().zip(o.buckets) {
            *a += b;
        }
        self.sum_nanos += o.sum_nanos;
        self.count += o.count;
    }
}

/// Everything measured about one deployment.
#[derive(Debug)]
pub struct DeploymentStats {
    pub group: String,
    pub id: String,
    /// (route, status, count): a handful of distinct statuses, one short
    /// lock.
    statuses: Mutex<Vec<(Route, u16, u64)>>,
    /// By route, in the order of [`Route::ALL`].
    duration: [Histogram; Route::ALL.len()],
    upstream: Histogram,
    first_token: Histogram,
    tokens_in: AtomicU64,
    tokens_out: AtomicU64,
}

impl DeploymentStats {
    /// A response head went out.
    pub fn request(&self, route: Route, status: u16, took: Duration) {
        let mut s = lock(&self.statuses);
        match s
            .iter_mut()
            .find(|(r, code, _)| (*r, *code) == (route, status))
        {
            Some((_, _, n)) => *n += 1,
            None => s.push((route, status, 1)),
        }
        drop(s);
        self.duration[route as usize].observe(took);
    }

    pub fn upstream(&self, took: Duration) {
        self.upstream.observe(took);
    }

    pub fn first_token(&self, took: Duration) {
        self.first_token.observe(took);
    }

    pub fn tokens(&self, prompt: u64, completion: u64) {
        self.tokens_in.fetch_add(prompt, Relaxed);
        self.tokens_out.fetch_add(completion, Relaxed);
    }
}

/// The hooks a guardrail is called from, as metric labels.
pub const HOOKS: [&str; 4] = ["pre_call", "moderation", "output", "output_stream"];
/// A guardrail call's outcome, as metric labels.
pub const VERDICTS: [&str; 4] = ["pass", "block", "anonymize", "error"];

/// Everything measured about one guardrail.
#[derive(Debug)]
pub struct GuardrailStats {
    pub name: String,
    calls: [[AtomicU64; VERDICTS.len()]; HOOKS.len()],
    durations: [Histogram; HOOKS.len()],
    fail_open: AtomicU64,
}

impl GuardrailStats {
    /// One check: `hook` and `verdict` index [`HOOKS`] and [`VERDICTS`].
    pub fn call(&self, hook: usize, verdict: usize, took: Duration) {
        self.calls[hook][verdict].fetch_add(1, Relaxed);
        self.durations[hook].observe(took);
    }

    pub fn fail_open(&self) {
        self.fail_open.fetch_add(1, Relaxed);
    }
}

#[derive(Debug, Default)]
struct Registry {
    counters: BTreeMap<(&'static str, String), u64>,
    /// Request durations of requests refused before a deployment was
    /// chosen, by route and model group ("" when none was resolved).
    unrouted: BTreeMap<(Route, String), Snapshot>,
}

impl std::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Snapshot({})", self.count)
    }
}

/// The gateway's metrics.
#[derive(Debug, Default)]
pub struct Metrics {
    in_flight: AtomicI64,
    deployments: Mutex<Vec<Arc<DeploymentStats>>>,
    guardrails: Mutex<Vec<Arc<GuardrailStats>>>,
    registry: Mutex<Registry>,
    /// The answers' memory budget, once the state has made it.
    budget: OnceLock<Arc<Budget>>,
}

/// Counts one request in flight until dropped.
#[derive(Debug)]
pub struct Gauge(Arc<Metrics>);

impl Drop for Gauge {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Relaxed);
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// `k1="v1",k2="v2"` with Prometheus escaping.
fn labels(pairs: &[(&str, &str)]) -> String {
    let mut s = String::with_capacity(64);
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push_str(k);
        s.push_str("=\"");
        for c in v.chars() {
            match c {
                '\\' => s.push_str("\\\\"),
                '"' => s.push_str("\\\""),
                '\n' => s.push_str("\\n"),
                c => s.push(c),
            }
        }
        s.push('"');
    }
    s
}

impl Metrics {
    /// Register a deployment (at startup); the router keeps the handle.
    pub fn deployment(&self, group: &str, id: &str) -> Arc<DeploymentStats> {
        let stats = Arc::new(DeploymentStats {
            group: group.to_owned(),
            id: id.to_owned(),
            statuses: Mutex::default(),
            duration: Default::default(),
            upstream: Histogram::default(),
            first_token: Histogram::default(),
            tokens_in: AtomicU64::new(0),
            tokens_out: AtomicU64::new(0),
        });
        lock(&self.deployments).push(stats.clone());
        stats
    }

    /// Register a guardrail (at startup).
    pub fn guardrail(&self, name: &str) -> Arc<GuardrailStats> {
        let stats = Arc::new(GuardrailStats {
            name: name.to_owned(),
            calls: Default::default(),
            durations: Default::default(),
            fail_open: AtomicU64::new(0),
        });
        lock(&self.guardrails).push(stats.clone());
        stats
    }

    fn count(&self, name: &'static str, labels: String) {
        *lock(&self.registry)
            .counters
            .entry((name, labels))
            .or_default() += 1;
    }

    /// Report `budget` (at startup).
    pub fn watch_budget(&self, budget: &Arc<Budget>) {
        let _ = self.budget.set(budget.clone());
    }

    /// Count a request in flight until the returned guard drops.
    pub fn gauge(self: &Arc<Self>) -> Gauge {
        self.in_flight.fetch_add(1, Relaxed);
        Gauge(self.clone())
    }

    /// A request answered before any deployment was chosen (an auth error,
    /// a bad body, a block in pre_call, ...); `group` is "" when unknown.
    pub fn unrouted(&self, route: Route, group: &str, status: u16, took: Duration) {
        let status = status.to_string();
        let mut r = lock(&self.registry);
        *r.counters
            .entry((
                "gateway_requests_total",
                labels(&[
                    ("route", route.label()),
                    ("model_group", group),
                    ("deployment", ""),
                    ("status", &status),
                ]),
            ))
            .or_default() += 1;
        *r.unrouted.entry((route, group.to_owned())).or_default() += Snapshot::of(took);
    }

    pub fn retry(&self, group: &str) {
        self.count("gateway_retries_total", labels(&[("model_group", group)]));
    }

    pub fn fallback(&self, from: &str, to: &str) {
        self.count(
            "gateway_fallbacks_total",
            labels(&[("from", from), ("to", to)]),
        );
    }

    pub fn cooldown(&self, group: &str, deployment: &str) {
        self.count(
            "gateway_cooldowns_total",
            labels(&[("model_group", group), ("deployment", deployment)]),
        );
    }

    /// A 429 from a limit; `scope` is key, global or deployment.
    pub fn rate_limited(&self, scope: &str) {
        self.count("gateway_rate_limited_total", labels(&[("scope", scope)]));
    }

    /// The Prometheus text exposition (format 0.0.4).
    pub fn render(&self) -> String {
        let deployments = lock(&self.deployments).clone();
        let guardrails = lock(&self.guardrails).clone();
        let r = lock(&self.registry);
        let mut out = String::with_capacity(8192);
        // Per-group sums, in the order groups first appear: time to first
        // token by group, request durations by route and group.
        let mut groups: Vec<(&str, Snapshot)> = vec![];
        let mut durations: Vec<(Route, &str, Snapshot)> = vec![];
        fn add<'a>(to: &mut Vec<(Route, &'a str, Snapshot)>, r: Route, g: &'a str, s: Snapshot) {
            // No empty series for routes other than chat's.
            if s.count == 0 && r != Route::Chat {
                return;
            }
            match to.iter_mut().find(|(r2, g2, _)| (*r2, *g2) == (r, g)) {
                Some((_, _, a)) => *a += s,
                None => to.push((r, g, s)),
            }
        }
        for d in &deployments {
            for route in Route::ALL {
                add(
                    &mut durations,
                    route,
                    &d.group,
                    d.duration[route as usize].snapshot(),
                );
            }
            let ttft = d.first_token.snapshot();
            match groups.iter_mut().find(|(g, _)| *g == d.group) {
                Some((_, a)) => *a += ttft,
                None => groups.push((&d.group, ttft)),
            }
        }
        for ((route, group), snap) in &r.unrouted {
            add(&mut durations, *route, group, *snap);
        }
        for (name, kind, help) in DESCRIPTIONS {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            match *name {
                "gateway_requests_total" => {
                    for d in &deployments {
                        for (route, status, n) in lock(&d.statuses).iter() {
                            let l = labels(&[
                                ("route", route.label()),
                                ("model_group", &d.group),
                                ("deployment", &d.id),
                                ("status", &status.to_string()),
                            ]);
                            let _ = writeln!(out, "{name}{{{l}}} {n}");
                        }
                    }
                    counters(&mut out, &r, name);
                }
                "gateway_request_duration_seconds" => {
                    for (route, group, dur) in &durations {
                        let l = labels(&[("route", route.label()), ("model_group", group)]);
                        histogram(&mut out, name, &l, dur);
                    }
                }
                "gateway_upstream_duration_seconds" => {
                    for d in &deployments {
                        let l = labels(&[("model_group", &d.group), ("deployment", &d.id)]);
                        histogram(&mut out, name, &l, &d.upstream.snapshot());
                    }
                }
                "gateway_time_to_first_token_seconds" => {
                    for (group, ttft) in &groups {
                        histogram(&mut out, name, &labels(&[("model_group", group)]), ttft);
                    }
                }
                "gateway_tokens_total" => {
                    for d in &deployments {
                        for (direction, n) in [("in", &d.tokens_in), ("out", &d.tokens_out)] {
                            let l = labels(&[
                                ("model_group", &d.group),
                                ("deployment", &d.id),
                                ("direction", direction),
                            ]);
                            let _ = writeln!(out, "{name}{{{l}}} {}", n.load(Relaxed));
                        }
                    }
                }
                "gateway_requests_in_flight" => {
                    let _ = writeln!(out, "{name} {}", self.in_flight.load(Relaxed));
                }
                "gateway_guardrail_calls_total" => {
                    for g in &guardrails {
                        for (h, hook) in HOOKS.iter().enumerate() {
                            for (v, verdict) in VERDICTS.iter().enumerate() {
                                let n = g.calls[h][v].load(Relaxed);
                                if n > 0 {
                                    let l = labels(&[
                                        ("guardrail", &g.name),
                                        ("hook", hook),
                                        ("verdict", verdict),
                                    ]);
                                    let _ = writeln!(out, "{name}{{{l}}} {n}");
                                }
                            }
                        }
                    }
                }
                "gateway_guardrail_duration_seconds" => {
                    for g in &guardrails {
                        for (h, hook) in HOOKS.iter().enumerate() {
                            let snap = g.durations[h].snapshot();
                            if snap.count > 0 {
                                let l = labels(&[("guardrail", &g.name), ("hook", hook)]);
                                histogram(&mut out, name, &l, &snap);
                            }
                        }
                    }
                }
                "gateway_guardrail_fail_open_total" => {
                    for g in &guardrails {
                        let l = labels(&[("guardrail", &g.name)]);
                        let _ = writeln!(out, "{name}{{{l}}} {}", g.fail_open.load(Relaxed));
                    }
                }
                "gateway_response_budget_bytes"
                | "gateway_response_budget_limit_bytes"
                | "gateway_response_budget_refused_total" => {
                    if let Some(b) = self.budget.get() {
                        let v = match *name {
                            "gateway_response_budget_bytes" => b.used() as u64,
                            "gateway_response_budget_limit_bytes" => b.limit() as u64,
                            _ => b.refused(),
                        };
                        let _ = writeln!(out, "{name} {v}");
                    }
                }
                _ => counters(&mut out, &r, name),
            }
        }
        out
    }
}

fn counters(out: &mut String, r: &Registry, name: &'static str) {
    for ((n, l), v) in r.counters.range((name, String::new())..) {
        if *n != name {
            break;
        }
        let _ = writeln!(out, "{name}{{{l}}} {v}");
    }
}

fn histogram(out: &mut String, name: &str, l: &str, h: &Snapshot) {
    let mut cumulative = 0;
    for (b, n) in BUCKETS.iter().zip(h.buckets) {
        cumulative += n;
        let _ = writeln!(out, "{name}_bucket{{{l},le=\"{b}\"}} {cumulative}");
    }
    let _ = writeln!(out, "{name}_bucket{{{l},le=\"+Inf\"}} {}", h.count);
    let _ = writeln!(out, "{name}_sum{{{l}}} {}", h.sum_nanos as f64 / 1e9);
    let _ = writeln!(out, "{name}_count{{{l}}} {}", h.count);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_histograms() {
        let m = Metrics::default();
        let d = m.deployment("g\"1", "d");
        d.request(Route::Chat, 200, Duration::from_millis(3));
        d.request(Route::Chat, 200, Duration::from_millis(30));
        d.request(Route::Messages, 200, Duration::from_millis(30));
        m.unrouted(Route::Chat, "g\"1", 401, Duration::from_millis(1));
        m.unrouted(Route::Messages, "", 400, Duration::from_millis(1));
        m.retry("g");
        let g = m.guardrail("aim");
        g.call(0, 1, Duration::from_millis(2));
        let text = m.render();
        assert!(
            text.contains(
                "gateway_requests_total{route=\"/v1/chat/completions\",model_group=\"g\\\"1\",deployment=\"d\",status=\"200\"} 2"
            ),
            "{text}"
        );
        assert!(text.contains(
            "gateway_request_duration_seconds_count{route=\"/v1/chat/completions\",model_group=\"g\\\"1\"} 3"
        ));
        assert!(text.contains("le=\"0.005\"} 2"), "{text}");
        assert!(text.contains(
            "gateway_requests_total{route=\"/v1/messages\",model_group=\"g\\\"1\",deployment=\"d\",status=\"200\"} 1"
        ), "{text}");
        assert!(text.contains(
            "gateway_request_duration_seconds_count{route=\"/v1/messages\",model_group=\"g\\\"1\"} 1"
        ), "{text}");
        assert!(text.contains(
            "gateway_requests_total{route=\"/v1/messages\",model_group=\"\",deployment=\"\",status=\"400\"} 1"
        ), "{text}");
        assert!(
            text.contains(
                "gateway_request_duration_seconds_count{route=\"/v1/messages\",model_group=\"\"} 1"
            ),
            "{text}"
        );
        assert!(text.contains("gateway_retries_total{model_group=\"g\"} 1"));
        assert!(text.contains(
            "gateway_guardrail_calls_total{guardrail=\"aim\",hook=\"pre_call\",verdict=\"block\"} 1"
        ));
        assert!(text.contains("gateway_requests_in_flight 0"));
        assert!(
            !text
                .lines()
                .any(|l| l.starts_with("gateway_response_budget")),
            "no budget yet"
        );
        let budget = Budget::new(1000, 100);
        m.watch_budget(&budget);
        let _ = budget.refusal();
        let text = m.render();
        assert!(text.contains("gateway_response_budget_bytes 0\n"), "{text}");
        assert!(
            text.contains("gateway_response_budget_limit_bytes 1000\n"),
            "{text}"
        );
        assert!(
            text.contains("gateway_response_budget_refused_total 1\n"),
            "{text}"
        );
    }
}
