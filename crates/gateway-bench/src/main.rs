//! `gateway-bench`: load-tests the gateway on one machine.
//!
//! It starts a mock OpenAI upstream, a mock Anthropic and a mock Aim in this
//! process (recording off), runs the real `gateway` binary as a separate
//! process (so its RSS is its own), and drives load with N workers, each on
//! ONE persistent keep-alive HTTP/1.1 connection (concurrency =
//! connections), for a fixed time per concurrency level.
//!
//! ```sh
//! cargo build --release
//! cargo run --release --bin gateway-bench -- --duration 5 --concurrency 1,16,64,256
//! cargo run --release --bin gateway-bench -- --soak 10 --scenario pre_call --concurrency 64
//! cargo run --release --bin gateway-bench -- --scenarios stream_direct,stream --chunk-interval-ms 5
//! cargo run --release --bin gateway-bench -- --soak 10 --scenario stream_post --chunks 2048 --aim-answer-interval-ms 1
//! cargo run --release --bin gateway-bench -- --scenarios messages_direct,messages,messages_stream_direct,messages_stream --concurrency 64
//! ```
//!
//! Scenarios: `direct` (straight to the mock upstream, the baseline),
//! `gateway` (no guardrail), `pre_call` and `pre_post` (an Aim guardrail
//! selected with `"guardrails": ["aim-bench"]`), `stream` and `stream_direct`
//! (SSE through the gateway and straight to the upstream, with time to first
//! body chunk), `stream_post` (SSE relayed through an Aim post_call
//! guardrail's websocket; with `--aim-answer-interval-ms`, against a slow
//! Aim, which makes a soak of it a leak test of the relay); and for
//! Anthropic's Messages API, `messages_direct` and `messages_stream_direct`
//! (straight to the mock Anthropic, the baselines), `messages`,
//! `messages_pre_call` and `messages_stream` (`POST /v1/messages` through
//! the gateway to an `anthropic/` deployment: the passthrough). Every
//! scenario × concurrency cell runs on a freshly started
//! gateway, so the peak RSS (VmHWM) reported is that cell's own.
//!
//! The HTTP client is a small hand-written HTTP/1.1 one over
//! `tokio::net::TcpStream` (hyper's client feature is not enabled in this
//! crate, and reqwest's pool would hide the connection count): pre-built
//! request bytes, one reused read buffer per connection, `content-length` and
//! `chunked` bodies. Latencies go into an HDR-like log-linear histogram
//! (exact below 256 µs, < 0.8 % relative error above), so long soaks use
//! constant memory.

use std::fmt::Write as _;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use gateway_mock::aim::{AimMode, AimOptions, MockAim};
use gateway_mock::anthropic::{AnthropicOptions, MockAnthropic};
use gateway_mock::upstream::{MockUpstream, UpstreamOptions};
use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

mod cli;
mod gateway;
mod hist;
mod http;
mod load;
mod print;
mod procfs;
mod results;
mod run;
mod stats;

use cli::*;
use gateway::*;
use hist::*;
use http::*;
use load::*;
use print::*;
use procfs::*;
use results::*;
use run::*;
use stats::*;

fn default_gateway_bin() -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this executable: {e}"))?;
    let dir = exe
        .parent()
        .ok_or_else(|| "this executable has no directory".to_owned())?;
    Ok(dir.join(format!("gateway{}", std::env::consts::EXE_SUFFIX)))
}

fn seconds(s: f64, what: &str) -> Result<Duration, String> {
    Duration::try_from_secs_f64(s).map_err(|_| format!("{what}: not a duration: {s}"))
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    tokio::select! {
        result = run(cli) => match result {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("gateway-bench: {e}");
                ExitCode::FAILURE
            }
        },
        _ = tokio::signal::ctrl_c() => {
            // Dropping `run` stops any gateway it started.
            eprintln!("gateway-bench: interrupted");
            ExitCode::from(130)
        }
    }
}

async fn run(cli: Cli) -> Result<(), String> {
    let duration = seconds(cli.duration, "--duration")?;
    let warmup = seconds(cli.warmup, "--warmup")?;
    let interval = seconds(cli.interval, "--interval")?;
    if duration.is_zero() || interval.is_zero() {
        return Err("--duration and --interval must be positive".into());
    }
    if cli.concurrency.contains(&0) {
        return Err("--concurrency: levels must be at least 1".into());
    }
    let bin = match &cli.gateway_bin {
        Some(p) => p.clone(),
        None => default_gateway_bin()?,
    };
    let needs_gateway = match cli.soak {
        Some(_) => cli.scenario.uses_gateway(),
        None => cli.scenarios.is_empty() || cli.scenarios.iter().any(|s| s.uses_gateway()),
    };
    if needs_gateway && !bin.is_file() {
        return Err(format!(
            "no gateway executable at {}: run `cargo build --release` first (or pass --gateway-bin PATH)",
            bin.display()
        ));
    }

    let machine = machine();
    let command = std::env::args()
        .map(|a| if a.contains(' ') { format!("'{a}'") } else { a })
        .collect::<Vec<_>>()
        .join(" ");
    println!("gateway-bench");
    println!(
        "machine: {} cores, {} ({}), kernel {}, {} MB RAM",
        machine.nproc,
        machine.cpu_model,
        std::env::consts::ARCH,
        machine.kernel,
        machine
            .mem_total_kb
            .map_or("?".into(), |k| format!("{}", k / 1024))
    );
    println!("command: {command}");
    println!("gateway: {}", bin.display());
    if bin.components().any(|c| c.as_os_str() == "debug") {
        println!(
            "warning: the gateway binary looks like a debug build; use `cargo build --release`"
        );
    }
    if cfg!(debug_assertions) {
        println!("warning: gateway-bench itself is a debug build; use `cargo run --release`");
    }
    println!(
        "mock upstream latency {} ms, {} chunks per stream, {} ms between frames; mock Aim answers a streamed chunk every {} ms; load: one keep-alive HTTP/1.1 connection per worker; gateway busy-poll {} us, runtime {}",
        cli.upstream_latency_ms,
        cli.chunks,
        cli.chunk_interval_ms,
        cli.aim_answer_interval_ms,
        cli.busy_poll_us,
        cli.runtime.as_deref().unwrap_or("default")
    );

    let upstream = MockUpstream::start(UpstreamOptions {
        chunks: cli.chunks.max(1),
        latency_ms: cli.upstream_latency_ms,
        chunk_interval_ms: cli.chunk_interval_ms,
        record: false,
        ..UpstreamOptions::default()
    })
    .await;
    let aim = MockAim::start(AimOptions {
        mode: AimMode::Pass,
        ws_answer_interval_ms: cli.aim_answer_interval_ms,
        record: false,
        ..AimOptions::default()
    })
    .await;
    let anthropic = MockAnthropic::start(AnthropicOptions {
        chunks: cli.chunks.max(1),
        latency_ms: cli.upstream_latency_ms,
        chunk_interval_ms: cli.chunk_interval_ms,
        record: false,
        ..AnthropicOptions::default()
    })
    .await;
    let mut env = Env {
        bin: bin.clone(),
        busy_poll_us: cli.busy_poll_us,
        runtime: cli.runtime.clone(),
        upstream,
        aim,
        anthropic,
        ticks: clock_ticks(),
        spawns: Vec::new(),
    };

    let mut report = Report {
        machine,
        command,
        gateway_bin: bin.display().to_string(),
        busy_poll_us: cli.busy_poll_us,
        runtime: cli.runtime.clone(),
        duration_s: duration.as_secs_f64(),
        warmup_s: warmup.as_secs_f64(),
        upstream_latency_ms: cli.upstream_latency_ms,
        chunks: cli.chunks,
        chunk_interval_ms: cli.chunk_interval_ms,
        aim_answer_interval_ms: cli.aim_answer_interval_ms,
        startup: None,
        results: Vec::new(),
        medians: Vec::new(),
        soak: None,
    };

    if let Some(minutes) = cli.soak {
        let soak_for = seconds(minutes * 60.0, "--soak")?;
        let concurrency = cli.concurrency.first().copied().unwrap_or(64);
        let soak = run_soak(
            &mut env,
            cli.scenario,
            concurrency,
            soak_for,
            warmup,
            interval,
        )
        .await?;
        report.soak = Some(soak);
    } else {
        let mut scenarios = if cli.scenarios.is_empty() {
            Scenario::ALL.to_vec()
        } else {
            cli.scenarios.clone()
        };
        // Baselines first, so they exist when the others are compared.
        scenarios.sort();
        scenarios.dedup();
        let levels = if cli.concurrency.is_empty() {
            vec![1, 16, 64, 256]
        } else {
            cli.concurrency.clone()
        };
        println!(
            "scenarios: {}; concurrency: {}; {} s each after {} s warm-up",
            scenarios
                .iter()
                .map(|s| s.name())
                .collect::<Vec<_>>()
                .join(","),
            levels
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(","),
            duration.as_secs_f64(),
            warmup.as_secs_f64()
        );
        println!();
        let rounds = cli.rounds.max(1);
        for round in 1..=rounds {
            let first = report.results.len();
            for &scenario in &scenarios {
                for &c in &levels {
                    let mut r = run_cell(&mut env, scenario, c, duration, warmup).await?;
                    r.round = round;
                    let label = if rounds > 1 {
                        format!("round {round}/{rounds}  ")
                    } else {
                        String::new()
                    };
                    eprintln!(
                        "  {label}{:<13} c={:<4} {:>8.0} req/s  p50 {} ms  p99 {} ms  errors {}{}",
                        scenario.name(),
                        c,
                        r.rps,
                        opt(r.latency_us, |l| ms(l.p50)),
                        opt(r.latency_us, |l| ms(l.p99)),
                        r.errors,
                        r.first_error
                            .as_deref()
                            .map_or(String::new(), |e| format!(" (first: {e})")),
                    );
                    report.results.push(r);
                }
            }
            fill_added(&mut report.results[first..]);
            println!();
            if rounds > 1 {
                println!("round {round} of {rounds}:");
            }
            print!("{}", table(&report.results[first..]));
        }
        println!();
        println!(
            "latencies in ms; +p50/+p99: minus the baseline at the same concurrency (direct; stream_direct for stream*;\nmessages_direct and messages_stream_direct for messages*);"
        );
        println!(
            "% base: req/s as a % of the baseline's; ttft: time to the first body chunk; errors: non-2xx or transport;"
        );
        println!(
            "gw cpu%/bench cpu%: % of one core during the measurement; workers cpu%: the same per gateway worker thread;\nidle MB: gateway VmRSS right after readiness;"
        );
        println!("peak MB: VmHWM; rss MB: VmRSS after the run (a fresh gateway per row).");
        if rounds > 1 {
            report.medians = medians(&report.results);
            println!();
            println!(
                "medians over {rounds} rounds (% base: the median of each round's own ratio; range: lowest-highest):"
            );
            print!("{}", median_table(&report.medians));
        }
        for r in report.results.iter().filter(|r| r.errors > 0) {
            println!(
                "errors in {} c={}: {} (first: {})",
                r.scenario.name(),
                r.concurrency,
                r.errors,
                r.first_error.as_deref().unwrap_or("?")
            );
        }
    }

    report.startup = startup_summary(&env.spawns);
    if let Some(s) = &report.startup {
        println!();
        print_startup(s);
    }

    if let Some(path) = &cli.json {
        let json = serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?;
        std::fs::write(path, json + "\n")
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        println!("JSON written to {}", path.display());
    }
    Ok(())
}

async fn run_soak(
    env: &mut Env,
    scenario: Scenario,
    concurrency: usize,
    soak_for: Duration,
    warmup: Duration,
    interval: Duration,
) -> Result<SoakResult, String> {
    println!(
        "soak: {} at concurrency {} for {:.1} min, a report every {} s",
        scenario.name(),
        concurrency,
        soak_for.as_secs_f64() / 60.0,
        interval.as_secs_f64()
    );
    let gateway = env.gateway_for(scenario).await?;
    let target = env.target(scenario, gateway.as_ref());
    preflight(&target).await?;
    if let Some(g) = &gateway {
        println!(
            "gateway pid {}: started in {:.1} ms, idle RSS {} MB",
            g.pid(),
            g.startup.as_secs_f64() * 1000.0,
            mb(g.idle_rss_kb)
        );
    }
    println!();
    println!(
        "{:>8}  {:>9}  {:>7}  {:>8}  {:>8}  {:>8}  {:>8}  {:>7}",
        "elapsed", "req/s", "errors", "p50 ms", "p99 ms", "rss MB", "peak MB", "gw cpu%"
    );

    let start = Instant::now();
    let measure_from = start + warmup;
    let until = measure_from + soak_for;
    let load = Load::start(&target, concurrency, measure_from, until);
    tokio::time::sleep_until(tokio::time::Instant::from_std(measure_from)).await;
    let gw_pid = gateway.as_ref().map(|g| g.pid());
    let pid_str = gw_pid.map(|p| p.to_string());
    let self_cpu0 = cpu_ticks("self");
    let gw_cpu_start = pid_str.as_deref().and_then(cpu_ticks);
    let mut gw_cpu_prev = gw_cpu_start;

    let mut total = Counts::default();
    let mut samples = Vec::new();
    let mut next = measure_from + interval;
    let mut last = measure_from;
    while next <= until + Duration::from_millis(1) {
        tokio::time::sleep_until(tokio::time::Instant::from_std(next)).await;
        let mut window = Counts::default();
        load.drain(&mut window);
        let now = Instant::now();
        let secs = (now - last).as_secs_f64();
        last = now;
        let mem = gw_pid.and_then(memory_kb);
        let gw_cpu = pid_str.as_deref().and_then(cpu_ticks);
        let cpu_pct = gw_cpu
            .zip(gw_cpu_prev)
            .map(|(b, a)| pct(Some(b - a), env.ticks, secs));
        gw_cpu_prev = gw_cpu;
        let sample = SoakSample {
            elapsed_s: (now - measure_from).as_secs_f64(),
            rps: window.ok as f64 / secs,
            errors: window.errors,
            p50_us: window.latency.quantile(0.5),
            p99_us: window.latency.quantile(0.99),
            rss_kb: mem.map(|m| m.1),
            peak_rss_kb: mem.map(|m| m.0),
            gateway_cpu_pct: cpu_pct,
        };
        println!(
            "{:>7.0}s  {:>9.0}  {:>7}  {:>8}  {:>8}  {:>8}  {:>8}  {:>7}",
            sample.elapsed_s,
            sample.rps,
            sample.errors,
            opt(sample.p50_us, ms),
            opt(sample.p99_us, ms),
            opt(sample.rss_kb, mb),
            opt(sample.peak_rss_kb, mb),
            opt(sample.gateway_cpu_pct, |c| format!("{c:.0}")),
        );
        total.merge(&window);
        samples.push(sample);
        next += interval;
    }
    load.finish(&mut total).await;
    let seconds = (Instant::now() - measure_from).as_secs_f64();
    let self_cpu = cpu_ticks("self").zip(self_cpu0).map(|(b, a)| b - a);
    let gw_cpu = pid_str
        .as_deref()
        .and_then(cpu_ticks)
        .zip(gw_cpu_start)
        .map(|(b, a)| b - a);
    let gateway_figures = gateway
        .as_ref()
        .map(|g| g.figures(pct(gw_cpu, env.ticks, seconds), vec![], seconds, total.ok));
    if let Some(gw) = gateway {
        gw.stop().await;
    }
    let rss: Vec<u64> = samples.iter().filter_map(|s| s.rss_kb).collect();
    let result = SoakResult {
        scenario,
        concurrency,
        minutes: soak_for.as_secs_f64() / 60.0,
        interval_s: interval.as_secs_f64(),
        first_rss_kb: rss.first().copied(),
        last_rss_kb: rss.last().copied(),
        max_rss_kb: rss.iter().copied().max(),
        samples,
        total: CellResult {
            round: 1,
            scenario,
            concurrency,
            seconds,
            requests: total.ok,
            errors: total.errors,
            rps: total.ok as f64 / seconds,
            latency_us: total.latency.summary(),
            added_latency_us: None,
            ttft_us: total.ttft.summary(),
            added_ttft_us: None,
            of_baseline_pct: None,
            gateway: gateway_figures,
            bench_cpu_pct: pct(self_cpu, env.ticks, seconds),
            first_error: total.first_error.clone(),
        },
    };
    println!();
    let t = &result.total;
    println!(
        "total: {} requests in {:.1} s = {:.0} req/s, {} errors{}; latency p50 {} / p90 {} / p99 {} / max {} ms{}",
        t.requests,
        t.seconds,
        t.rps,
        t.errors,
        t.first_error
            .as_deref()
            .map_or(String::new(), |e| format!(" (first: {e})")),
        opt(t.latency_us, |l| ms(l.p50)),
        opt(t.latency_us, |l| ms(l.p90)),
        opt(t.latency_us, |l| ms(l.p99)),
        opt(t.latency_us, |l| ms(l.max)),
        t.ttft_us.map_or(String::new(), |l| format!(
            "; ttft p50 {} / p99 {} ms",
            ms(l.p50),
            ms(l.p99)
        )),
    );
    if let Some(g) = &t.gateway {
        println!(
            "gateway: cpu {:.0}% of a core ({} us/request); VmHWM {} MB at the end",
            g.cpu_pct,
            opt(g.cpu_us_per_request, |c| format!("{c:.0}")),
            mb(g.peak_rss_kb)
        );
    }
    println!(
        "RSS (VmRSS) over the soak: first {} MB, last {} MB, max {} MB{}",
        opt(result.first_rss_kb, mb),
        opt(result.last_rss_kb, mb),
        opt(result.max_rss_kb, mb),
        result
            .first_rss_kb
            .zip(result.last_rss_kb)
            .map_or(String::new(), |(a, b)| format!(
                " (last - first: {:+.1} MB)",
                (b as f64 - a as f64) / 1024.0
            )),
    );
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::{CellResult, Hist, Scenario, fill_added, medians};

    #[test]
    fn histogram_is_exact_low_and_close_high() {
        for v in [0u64, 1, 100, 255] {
            assert_eq!(Hist::value(Hist::index(v)), v);
        }
        for v in [256u64, 1000, 12_345, 1_000_000, u64::from(u32::MAX)] {
            let got = Hist::value(Hist::index(v)) as f64;
            assert!(
                (got - v as f64).abs() / v as f64 <= 1.0 / 128.0,
                "{v} -> {got}"
            );
        }
        assert!(Hist::index(u64::from(u32::MAX)) < super::BUCKETS);
        let mut h = Hist::default();
        for v in 1..=100 {
            h.record(v);
        }
        assert_eq!(h.quantile(0.5), Some(50));
        assert_eq!(h.quantile(0.99), Some(99));
        assert_eq!(h.quantile(1.0), Some(100));
    }

    fn cell(round: usize, scenario: Scenario, rps: f64) -> CellResult {
        CellResult {
            round,
            scenario,
            concurrency: 64,
            seconds: 1.0,
            requests: rps as u64,
            errors: 0,
            rps,
            latency_us: None,
            added_latency_us: None,
            ttft_us: None,
            added_ttft_us: None,
            of_baseline_pct: None,
            gateway: None,
            bench_cpu_pct: 0.0,
            first_error: None,
        }
    }

    /// A scenario through the gateway is compared with going direct over
    /// the same API, streaming or not, and only baselines have none.
    #[test]
    fn baselines_match_their_scenario() {
        for s in Scenario::ALL {
            match s.baseline() {
                None => assert!(!s.uses_gateway(), "{}", s.name()),
                Some(b) => {
                    assert!(s.uses_gateway() && !b.uses_gateway(), "{}", s.name());
                    assert_eq!(b.messages(), s.messages(), "{}", s.name());
                    assert_eq!(b.streaming(), s.streaming(), "{}", s.name());
                }
            }
        }
    }

    /// Each round's ratio is taken against that round's own baseline; the
    /// summary is the median of the ratios, not the ratio of the medians.
    #[test]
    fn ratios_are_taken_within_a_round() {
        let mut results = vec![];
        for (round, direct, gateway) in [(1, 100.0, 40.0), (2, 50.0, 30.0), (3, 80.0, 28.0)] {
            let first = results.len();
            results.push(cell(round, Scenario::Direct, direct));
            results.push(cell(round, Scenario::Gateway, gateway));
            fill_added(&mut results[first..]);
        }
        let ratios: Vec<f64> = results.iter().filter_map(|r| r.of_baseline_pct).collect();
        assert_eq!(ratios, [40.0, 60.0, 35.0]);
        let m = medians(&results);
        assert_eq!(m.len(), 2);
        assert_eq!((m[1].scenario, m[1].rounds), (Scenario::Gateway, 3));
        assert_eq!(m[1].of_baseline_pct, Some(40.0));
        assert_eq!(m[1].of_baseline_min_pct, Some(35.0));
        assert_eq!(m[1].of_baseline_max_pct, Some(60.0));
        assert_eq!(m[1].rps, 30.0);
        assert_eq!(m[0].rps, 80.0);
    }
}
