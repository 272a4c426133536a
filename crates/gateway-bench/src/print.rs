//! The tables the program prints.

use super::*;

pub(crate) fn ms(us: u64) -> String {
    format!("{:.3}", us as f64 / 1000.0)
}

pub(crate) fn signed_ms(us: i64) -> String {
    format!("{:+.3}", us as f64 / 1000.0)
}

pub(crate) fn mb(kb: u64) -> String {
    format!("{:.1}", kb as f64 / 1024.0)
}

pub(crate) fn opt<T>(v: Option<T>, f: impl Fn(T) -> String) -> String {
    v.map_or_else(|| "-".to_owned(), f)
}

pub(crate) fn table(results: &[CellResult]) -> String {
    let headers = [
        "scenario",
        "conc",
        "req/s",
        "% base",
        "p50 ms",
        "p90 ms",
        "p99 ms",
        "max ms",
        "+p50 ms",
        "+p99 ms",
        "ttft p50",
        "ttft p99",
        "+ttft p50",
        "errors",
        "gw cpu%",
        "workers cpu%",
        "cpu us/req",
        "bench cpu%",
        "idle MB",
        "peak MB",
        "rss MB",
    ];
    let rows: Vec<Vec<String>> = results
        .iter()
        .map(|r| {
            let l = r.latency_us;
            let t = r.ttft_us;
            let g = r.gateway.as_ref();
            vec![
                r.scenario.name().to_owned(),
                r.concurrency.to_string(),
                format!("{:.0}", r.rps),
                opt(r.of_baseline_pct, |p| format!("{p:.1}")),
                opt(l, |l| ms(l.p50)),
                opt(l, |l| ms(l.p90)),
                opt(l, |l| ms(l.p99)),
                opt(l, |l| ms(l.max)),
                opt(r.added_latency_us.as_ref(), |a| signed_ms(a.p50)),
                opt(r.added_latency_us.as_ref(), |a| signed_ms(a.p99)),
                opt(t, |t| ms(t.p50)),
                opt(t, |t| ms(t.p99)),
                opt(r.added_ttft_us.as_ref(), |a| signed_ms(a.p50)),
                r.errors.to_string(),
                opt(g, |g| format!("{:.0}", g.cpu_pct)),
                opt(g.filter(|g| !g.worker_cpu_pct.is_empty()), |g| {
                    let shares: Vec<String> =
                        g.worker_cpu_pct.iter().map(|p| format!("{p:.0}")).collect();
                    shares.join("/")
                }),
                opt(g.and_then(|g| g.cpu_us_per_request), |c| format!("{c:.0}")),
                format!("{:.0}", r.bench_cpu_pct),
                opt(g, |g| mb(g.idle_rss_kb)),
                opt(g, |g| mb(g.peak_rss_kb)),
                opt(g, |g| mb(g.rss_kb)),
            ]
        })
        .collect();
    let scenarios: Vec<Scenario> = results.iter().map(|r| r.scenario).collect();
    render(&headers, &rows, &scenarios)
}

/// Aligned columns, a blank line between scenarios.
pub(crate) fn render(headers: &[&str], rows: &[Vec<String>], scenarios: &[Scenario]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let mut out = String::new();
    let line = |out: &mut String, cells: &[&str]| {
        for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
            if i == 0 {
                let _ = write!(out, "{cell:<w$}");
            } else {
                let _ = write!(out, "  {cell:>w$}");
            }
        }
        out.push('\n');
    };
    line(&mut out, headers);
    let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
    line(
        &mut out,
        &rule.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    let mut previous: Option<Scenario> = None;
    for (row, &scenario) in rows.iter().zip(scenarios) {
        if previous.is_some_and(|p| p != scenario) {
            out.push('\n');
        }
        previous = Some(scenario);
        line(
            &mut out,
            &row.iter().map(String::as_str).collect::<Vec<_>>(),
        );
    }
    out
}

pub(crate) fn startup_summary(spawns: &[(Duration, u64)]) -> Option<StartupSummary> {
    let (first, first_rss) = *spawns.first()?;
    let mut times: Vec<f64> = spawns
        .iter()
        .map(|(d, _)| d.as_secs_f64() * 1000.0)
        .collect();
    times.sort_by(f64::total_cmp);
    Some(StartupSummary {
        spawns: spawns.len(),
        first_ms: first.as_secs_f64() * 1000.0,
        min_ms: times[0],
        median_ms: times[times.len() / 2],
        max_ms: times[times.len() - 1],
        first_idle_rss_kb: first_rss,
        min_idle_rss_kb: spawns.iter().map(|s| s.1).min().unwrap_or(0),
        max_idle_rss_kb: spawns.iter().map(|s| s.1).max().unwrap_or(0),
    })
}

pub(crate) fn print_startup(s: &StartupSummary) {
    println!(
        "gateway startup (spawn -> first 200 on /health/readiness), {} spawn(s): first {:.1} ms, min {:.1} / median {:.1} / max {:.1} ms (target < 100 ms: {})",
        s.spawns,
        s.first_ms,
        s.min_ms,
        s.median_ms,
        s.max_ms,
        if s.max_ms < 100.0 { "met" } else { "MISSED" }
    );
    println!(
        "gateway idle RSS at start: first {} MB, min {} / max {} MB",
        mb(s.first_idle_rss_kb),
        mb(s.min_idle_rss_kb),
        mb(s.max_idle_rss_kb)
    );
}
