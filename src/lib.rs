//! gateway: an OpenAI-compatible LLM gateway that runs security guardrails
//! (Aim Security, Cato Networks) before, during and after the model call,
//! driven by a LiteLLM `config.yaml`.
//!
//! # Layout
//!
//! - `config`: the YAML file in, a validated [`config::Config`] out; every
//!   error at once, with its path.
//! - `server`: shared state, routes, the layer stack, the accept loop and
//!   graceful shutdown.
//! - `auth`: master key and virtual keys.
//! - `limits`: per-key rpm/tpm/parallel limits and the global in-flight cap.
//! - `proxy`: `/v1/chat/completions` end to end; the body view, the upstream
//!   call, SSE, `mock_response`.
//! - `router`: model groups, load balancing, retries, fallbacks, cooldowns.
//! - `guardrails`: the pre/during/post pipeline, and the Aim protocol.
//! - `error`: one error type and its OpenAI-style envelope.
//! - `metrics`: the Prometheus registry.
//! - `logfmt`: the field formatter of the human-readable logs.
//! - `outbound`: the pooled HTTP client for upstreams and guardrails.
//! - `spin`: optional busy-polling on idle worker threads.
//! - `mock`: the mock upstream and mock Aim used by tests, the benchmark and
//!   the quickstart.
//!
//! # The request path
//!
//! authenticate → read and parse the body once → resolve the model group →
//! select guardrails → pre_call → upstream call ∥ during_call → post_call
//! (or the streaming relay) → respond. See `proxy` for the details.

pub mod auth;
pub mod cli;
pub mod config;
pub mod error;
pub mod guardrails;
pub mod limits;
pub mod logfmt;
pub mod metrics;
pub mod mock;
pub mod outbound;
pub mod providers;
pub mod proxy;
pub mod router;
pub mod server;
pub mod spin;

/// The gateway's version, sent to Aim as `x-aim-litellm-version`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Use ring for TLS (rustls is built without a default provider, to keep
/// aws-lc and its C toolchain out of the build). Safe to call repeatedly.
pub fn install_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
