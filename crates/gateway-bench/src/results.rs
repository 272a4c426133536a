//! One cell's figures, and their JSON form.

use super::*;

#[derive(Clone, Debug, Serialize)]
pub(crate) struct GatewayFigures {
    pub(crate) pid: u32,
    pub(crate) startup_ms: f64,
    pub(crate) idle_rss_kb: u64,
    /// VmHWM after the measurement.
    pub(crate) peak_rss_kb: u64,
    /// VmRSS after the measurement.
    pub(crate) rss_kb: u64,
    /// CPU used during the measurement, in % of one core.
    pub(crate) cpu_pct: f64,
    /// The same for each worker thread: how the work spread over the cores.
    pub(crate) worker_cpu_pct: Vec<f64>,
    /// CPU microseconds per successful request.
    pub(crate) cpu_us_per_request: Option<f64>,
}

#[derive(Clone, Debug, Serialize)]
pub(crate) struct Added {
    pub(crate) p50: i64,
    pub(crate) p99: i64,
}

#[derive(Clone, Debug, Serialize)]
pub(crate) struct CellResult {
    /// 1-based; always 1 without --rounds.
    pub(crate) round: usize,
    pub(crate) scenario: Scenario,
    pub(crate) concurrency: usize,
    pub(crate) seconds: f64,
    pub(crate) requests: u64,
    pub(crate) errors: u64,
    pub(crate) rps: f64,
    pub(crate) latency_us: Option<LatencySummary>,
    /// This scenario minus its baseline (direct / stream_direct) at the same
    /// concurrency, in µs.
    pub(crate) added_latency_us: Option<Added>,
    pub(crate) ttft_us: Option<LatencySummary>,
    pub(crate) added_ttft_us: Option<Added>,
    /// req/s as a % of the baseline's at the same concurrency, same round.
    pub(crate) of_baseline_pct: Option<f64>,
    pub(crate) gateway: Option<GatewayFigures>,
    /// The bench process's own CPU (load + mocks), in % of one core.
    pub(crate) bench_cpu_pct: f64,
    pub(crate) first_error: Option<String>,
}

/// One scenario and level over all rounds: the median of each figure, and
/// the range of the throughput ratio.
#[derive(Debug, Serialize)]
pub(crate) struct MedianRow {
    pub(crate) scenario: Scenario,
    pub(crate) concurrency: usize,
    pub(crate) rounds: usize,
    pub(crate) rps: f64,
    pub(crate) of_baseline_pct: Option<f64>,
    pub(crate) of_baseline_min_pct: Option<f64>,
    pub(crate) of_baseline_max_pct: Option<f64>,
    pub(crate) p50_us: Option<u64>,
    pub(crate) p99_us: Option<u64>,
    pub(crate) added_p50_us: Option<i64>,
    pub(crate) added_p99_us: Option<i64>,
    pub(crate) added_ttft_p50_us: Option<i64>,
    pub(crate) gateway_cpu_us_per_request: Option<f64>,
    pub(crate) errors: u64,
}

#[derive(Debug, Serialize)]
pub(crate) struct SoakSample {
    pub(crate) elapsed_s: f64,
    pub(crate) rps: f64,
    pub(crate) errors: u64,
    pub(crate) p50_us: Option<u64>,
    pub(crate) p99_us: Option<u64>,
    pub(crate) rss_kb: Option<u64>,
    pub(crate) peak_rss_kb: Option<u64>,
    pub(crate) gateway_cpu_pct: Option<f64>,
}

#[derive(Debug, Serialize)]
pub(crate) struct SoakResult {
    pub(crate) scenario: Scenario,
    pub(crate) concurrency: usize,
    pub(crate) minutes: f64,
    pub(crate) interval_s: f64,
    pub(crate) samples: Vec<SoakSample>,
    pub(crate) total: CellResult,
    pub(crate) first_rss_kb: Option<u64>,
    pub(crate) last_rss_kb: Option<u64>,
    pub(crate) max_rss_kb: Option<u64>,
}

#[derive(Debug, Serialize)]
pub(crate) struct StartupSummary {
    pub(crate) spawns: usize,
    pub(crate) first_ms: f64,
    pub(crate) min_ms: f64,
    pub(crate) median_ms: f64,
    pub(crate) max_ms: f64,
    pub(crate) first_idle_rss_kb: u64,
    pub(crate) min_idle_rss_kb: u64,
    pub(crate) max_idle_rss_kb: u64,
}

#[derive(Debug, Serialize)]
pub(crate) struct Report {
    pub(crate) machine: Machine,
    pub(crate) command: String,
    pub(crate) gateway_bin: String,
    pub(crate) busy_poll_us: u64,
    pub(crate) runtime: Option<String>,
    pub(crate) duration_s: f64,
    pub(crate) warmup_s: f64,
    pub(crate) upstream_latency_ms: u64,
    pub(crate) chunks: usize,
    pub(crate) chunk_interval_ms: u64,
    pub(crate) aim_answer_interval_ms: u64,
    pub(crate) startup: Option<StartupSummary>,
    pub(crate) results: Vec<CellResult>,
    /// With --rounds above 1: the medians over the rounds.
    pub(crate) medians: Vec<MedianRow>,
    pub(crate) soak: Option<SoakResult>,
}
