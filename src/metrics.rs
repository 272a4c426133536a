//! Prometheus metrics, rendered as text for `GET /metrics`.
//!
//! One small registry behind one mutex: label sets are rendered once into a
//! string key and the lock is held for a map update, never across an await.
//! Every metric is listed, with its help text, in [`DESCRIPTIONS`] (and in
//! the README).

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

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
        "gateway_rate_limited_total",
        "counter",
        "Requests refused with 429 by a limit, by scope (key, global, deployment).",
    ),
];

const BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    60.0,
];

#[derive(Debug, Default)]
struct Histogram {
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Histogram {
    fn observe(&mut self, v: f64) {
        if self.counts.is_empty() {
            self.counts = vec![0; BUCKETS.len()];
        }
        if let Some(i) = BUCKETS.iter().position(|b| v <= *b) {
            self.counts[i] += 1;
        }
        self.sum += v;
        self.count += 1;
    }
}

#[derive(Debug, Default)]
struct Registry {
    counters: BTreeMap<(&'static str, String), u64>,
    histograms: BTreeMap<(&'static str, String), Histogram>,
}

/// The gateway's metrics.
#[derive(Debug, Default)]
pub struct Metrics {
    registry: Mutex<Registry>,
    in_flight: AtomicI64,
}

/// The labels every request metric shares, rendered once per request.
#[derive(Clone, Debug, Default)]
pub struct RequestLabels {
    pub route: &'static str,
    pub group: String,
    pub deployment: String,
}

/// Counts one request in flight until dropped.
#[derive(Debug)]
pub struct Gauge(Arc<Metrics>);

impl Drop for Gauge {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
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
    fn count(&self, name: &'static str, labels: String, n: u64) {
        let mut r = self.registry.lock().unwrap_or_else(|e| e.into_inner());
        *r.counters.entry((name, labels)).or_default() += n;
    }

    fn observe(&self, name: &'static str, labels: String, d: Duration) {
        let mut r = self.registry.lock().unwrap_or_else(|e| e.into_inner());
        r.histograms
            .entry((name, labels))
            .or_default()
            .observe(d.as_secs_f64());
    }

    /// Count a request in flight until the returned guard drops.
    pub fn gauge(self: &Arc<Self>) -> Gauge {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        Gauge(self.clone())
    }

    /// A response head went out.
    pub fn request(&self, l: &RequestLabels, status: u16, took: Duration) {
        let status = status.to_string();
        self.count(
            "gateway_requests_total",
            labels(&[
                ("route", l.route),
                ("model_group", &l.group),
                ("deployment", &l.deployment),
                ("status", &status),
            ]),
            1,
        );
        self.observe(
            "gateway_request_duration_seconds",
            labels(&[("route", l.route), ("model_group", &l.group)]),
            took,
        );
    }

    pub fn upstream(&self, l: &RequestLabels, took: Duration) {
        self.observe(
            "gateway_upstream_duration_seconds",
            labels(&[("model_group", &l.group), ("deployment", &l.deployment)]),
            took,
        );
    }

    pub fn first_token(&self, l: &RequestLabels, took: Duration) {
        self.observe(
            "gateway_time_to_first_token_seconds",
            labels(&[("model_group", &l.group)]),
            took,
        );
    }

    pub fn tokens(&self, l: &RequestLabels, prompt: u64, completion: u64) {
        for (direction, n) in [("in", prompt), ("out", completion)] {
            self.count(
                "gateway_tokens_total",
                labels(&[
                    ("model_group", &l.group),
                    ("deployment", &l.deployment),
                    ("direction", direction),
                ]),
                n,
            );
        }
    }

    /// One guardrail HTTP call: `verdict` is pass, block, anonymize or error.
    pub fn guardrail_call(&self, name: &str, hook: &str, verdict: &str, took: Duration) {
        self.count(
            "gateway_guardrail_calls_total",
            labels(&[("guardrail", name), ("hook", hook), ("verdict", verdict)]),
            1,
        );
        self.observe(
            "gateway_guardrail_duration_seconds",
            labels(&[("guardrail", name), ("hook", hook)]),
            took,
        );
    }

    /// One streaming guardrail session ended with `verdict`.
    pub fn guardrail_stream(&self, name: &str, verdict: &str, took: Duration) {
        self.guardrail_call(name, "output_stream", verdict, took);
    }

    /// A guardrail failed and let the request through (`fail_open`).
    pub fn guardrail_fail_open(&self, name: &str) {
        self.count(
            "gateway_guardrail_fail_open_total",
            labels(&[("guardrail", name)]),
            1,
        );
    }

    pub fn retry(&self, group: &str) {
        self.count(
            "gateway_retries_total",
            labels(&[("model_group", group)]),
            1,
        );
    }

    pub fn fallback(&self, from: &str, to: &str) {
        self.count(
            "gateway_fallbacks_total",
            labels(&[("from", from), ("to", to)]),
            1,
        );
    }

    pub fn cooldown(&self, group: &str, deployment: &str) {
        self.count(
            "gateway_cooldowns_total",
            labels(&[("model_group", group), ("deployment", deployment)]),
            1,
        );
    }

    /// A 429 from a limit; `scope` is key, global or deployment.
    pub fn rate_limited(&self, scope: &str) {
        self.count("gateway_rate_limited_total", labels(&[("scope", scope)]), 1);
    }

    /// The Prometheus text exposition (format 0.0.4).
    pub fn render(&self) -> String {
        let r = self.registry.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = String::with_capacity(4096);
        for (name, kind, help) in DESCRIPTIONS {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} {kind}");
            match *kind {
                "gauge" => {
                    let _ = writeln!(out, "{name} {}", self.in_flight.load(Ordering::Relaxed));
                }
                "counter" => {
                    for ((n, l), v) in r.counters.range((*name, String::new())..) {
                        if n != name {
                            break;
                        }
                        let _ = writeln!(out, "{name}{{{l}}} {v}");
                    }
                }
                _ => {
                    for ((n, l), h) in r.histograms.range((*name, String::new())..) {
                        if n != name {
                            break;
                        }
                        let sep = if l.is_empty() { "" } else { "," };
                        let mut cumulative = 0;
                        for (i, b) in BUCKETS.iter().enumerate() {
                            cumulative += h.counts.get(i).copied().unwrap_or(0);
                            let _ =
                                writeln!(out, "{name}_bucket{{{l}{sep}le=\"{b}\"}} {cumulative}");
                        }
                        let _ = writeln!(out, "{name}_bucket{{{l}{sep}le=\"+Inf\"}} {}", h.count);
                        let _ = writeln!(out, "{name}_sum{{{l}}} {}", h.sum);
                        let _ = writeln!(out, "{name}_count{{{l}}} {}", h.count);
                    }
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_histograms() {
        let m = Metrics::default();
        let l = RequestLabels {
            route: "/v1/chat/completions",
            group: "g\"1".into(),
            deployment: "d".into(),
        };
        m.request(&l, 200, Duration::from_millis(3));
        m.request(&l, 200, Duration::from_millis(30));
        m.retry("g");
        let text = m.render();
        assert!(text.contains(
            "gateway_requests_total{route=\"/v1/chat/completions\",model_group=\"g\\\"1\",deployment=\"d\",status=\"200\"} 2"
        ), "{text}");
        assert!(text.contains("gateway_request_duration_seconds_count{route=\"/v1/chat/completions\",model_group=\"g\\\"1\"} 2"));
        assert!(text.contains("le=\"0.005\"} 1"));
        assert!(text.contains("gateway_retries_total{model_group=\"g\"} 1"));
        assert!(text.contains("gateway_requests_in_flight 0"));
    }
}
