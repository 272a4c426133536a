//! Prometheus metrics for `GET /metrics`.

use std::time::Duration;

/// The gateway's counters and histograms.
#[derive(Debug, Default)]
pub struct Metrics {}

impl Metrics {
    /// One guardrail HTTP call: `verdict` is pass, block, anonymize or error.
    pub fn guardrail_call(&self, _name: &str, _hook: &str, _verdict: &str, _elapsed: Duration) {}

    /// One streaming guardrail session ended with `verdict`.
    pub fn guardrail_stream(&self, _name: &str, _verdict: &str, _elapsed: Duration) {}

    /// A guardrail failed and let the request through (`fail_open`).
    pub fn guardrail_fail_open(&self, _name: &str) {}

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        String::new()
    }
}
