//! Running the cells: scenarios by concurrency, rounds, and the soak.

use super::*;

pub(crate) struct Env {
    pub(crate) bin: PathBuf,
    pub(crate) busy_poll_us: u64,
    pub(crate) runtime: Option<String>,
    pub(crate) upstream: MockUpstream,
    pub(crate) aim: MockAim,
    /// The Messages API, for the `messages*` scenarios.
    pub(crate) anthropic: MockAnthropic,
    pub(crate) ticks: f64,
    /// (startup, idle RSS) of every gateway spawned.
    pub(crate) spawns: Vec<(Duration, u64)>,
}

impl Env {
    pub(crate) fn target(&self, scenario: Scenario, gateway: Option<&Gateway>) -> Target {
        let (stream, guardrail) = (scenario.streaming(), scenario.guardrail());
        if scenario.messages() {
            let addr = gateway.map_or(self.anthropic.addr(), |g| g.addr);
            // Through the gateway the answer says the model the client
            // asked for (the upstream's says `bench-claude`).
            let expect: &'static [&'static str] = match (stream, gateway.is_some()) {
                (false, false) => &["\"type\":\"message\"", PROMPT],
                (false, true) => &["\"type\":\"message\"", PROMPT, "\"model\":\"bench-model\""],
                (true, false) => &["event: message_start", "event: message_stop"],
                (true, true) => &[
                    "event: message_start",
                    "event: message_stop",
                    "\"model\":\"bench-model\"",
                ],
            };
            return Target {
                addr,
                request: messages_request(addr, "/v1/messages", stream, guardrail).into(),
                streaming: stream,
                expect,
            };
        }
        let addr = gateway.map_or(self.upstream.addr(), |g| g.addr);
        // A stream splits the echoed text over several chunks.
        let expect: &'static [&'static str] = if stream {
            &["\"chat.completion.chunk\"", "data: [DONE]"]
        } else {
            &["\"chat.completion\"", PROMPT]
        };
        Target {
            addr,
            request: chat_request(addr, "/v1/chat/completions", stream, guardrail).into(),
            streaming: stream,
            expect,
        }
    }

    pub(crate) async fn gateway_for(
        &mut self,
        scenario: Scenario,
    ) -> Result<Option<Gateway>, String> {
        if !scenario.uses_gateway() {
            return Ok(None);
        }
        let gw = Gateway::spawn(
            &self.bin,
            self.busy_poll_us,
            self.runtime.as_deref(),
            scenario,
            &self.upstream.url(),
            &self.aim.url(),
            &self.anthropic.url(),
        )
        .await?;
        self.spawns.push((gw.startup, gw.idle_rss_kb));
        Ok(Some(gw))
    }
}

/// One request on a fresh connection, checking the answer looks right, so a
/// misconfiguration fails loudly instead of benchmarking error responses.
pub(crate) async fn preflight(target: &Target) -> Result<(), String> {
    let mut conn = Conn::connect(target.addr)
        .await
        .map_err(|e| format!("connect {}: {e}", target.addr))?;
    let mut body = Vec::new();
    let reply = conn
        .roundtrip(&target.request, Some(&mut body))
        .await
        .map_err(|e| format!("preflight request: {e}"))?;
    let text = String::from_utf8_lossy(&body);
    if reply.status != 200 || !target.expect.iter().all(|e| text.contains(e)) {
        return Err(format!(
            "preflight: unexpected answer (HTTP {}): {}",
            reply.status,
            text.chars().take(400).collect::<String>()
        ));
    }
    Ok(())
}

pub(crate) fn pct(ticks: Option<u64>, ticks_per_s: f64, seconds: f64) -> f64 {
    ticks.map_or(0.0, |t| t as f64 / ticks_per_s / seconds * 100.0)
}

pub(crate) async fn run_cell(
    env: &mut Env,
    scenario: Scenario,
    concurrency: usize,
    duration: Duration,
    warmup: Duration,
) -> Result<CellResult, String> {
    let gateway = env.gateway_for(scenario).await?;
    let target = env.target(scenario, gateway.as_ref());
    preflight(&target)
        .await
        .map_err(|e| format!("{} at {concurrency}: {e}", scenario.name()))?;

    // Workers connect first, warm up, then measure.
    let start = Instant::now();
    let measure_from = start + warmup;
    let until = measure_from + duration;
    let load = Load::start(&target, concurrency, measure_from, until);
    tokio::time::sleep_until(tokio::time::Instant::from_std(measure_from)).await;
    let gw_pid = gateway.as_ref().map(|g| g.pid().to_string());
    let gw_cpu0 = gw_pid.as_deref().and_then(cpu_ticks);
    let workers0 = gw_pid.as_deref().map(worker_ticks).unwrap_or_default();
    let self_cpu0 = cpu_ticks("self");
    let measured_at = Instant::now();
    let mut counts = Counts::default();
    load.finish(&mut counts).await;
    let seconds = measured_at.elapsed().as_secs_f64();
    let gw_cpu = gw_pid
        .as_deref()
        .and_then(cpu_ticks)
        .zip(gw_cpu0)
        .map(|(b, a)| b - a);
    let self_cpu = cpu_ticks("self").zip(self_cpu0).map(|(b, a)| b - a);
    // Each worker thread's share: whether the load used every core.
    let workers: Vec<f64> = gw_pid
        .as_deref()
        .map(worker_ticks)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|(tid, after)| {
            let before = workers0
                .iter()
                .find(|(t, _)| *t == tid)
                .map_or(0, |(_, b)| *b);
            Some(pct(Some(after.checked_sub(before)?), env.ticks, seconds))
        })
        .collect();

    let gateway_figures = gateway
        .as_ref()
        .map(|g| g.figures(pct(gw_cpu, env.ticks, seconds), workers, seconds, counts.ok));
    if let Some(gw) = gateway {
        gw.stop().await;
    }
    Ok(CellResult {
        round: 1,
        scenario,
        concurrency,
        seconds,
        requests: counts.ok,
        errors: counts.errors,
        rps: counts.ok as f64 / seconds,
        latency_us: counts.latency.summary(),
        added_latency_us: None,
        ttft_us: counts.ttft.summary(),
        added_ttft_us: None,
        of_baseline_pct: None,
        gateway: gateway_figures,
        bench_cpu_pct: pct(self_cpu, env.ticks, seconds),
        first_error: counts.first_error,
    })
}

pub(crate) fn fill_added(results: &mut [CellResult]) {
    let snapshot = results.to_vec();
    for r in results.iter_mut() {
        let Some(base) = r.scenario.baseline().and_then(|b| {
            snapshot
                .iter()
                .find(|x| x.scenario == b && x.concurrency == r.concurrency)
        }) else {
            continue;
        };
        let diff = |a: Option<LatencySummary>, b: Option<LatencySummary>| {
            a.zip(b).map(|(a, b)| Added {
                p50: a.p50 as i64 - b.p50 as i64,
                p99: a.p99 as i64 - b.p99 as i64,
            })
        };
        r.added_latency_us = diff(r.latency_us, base.latency_us);
        r.added_ttft_us = diff(r.ttft_us, base.ttft_us);
        r.of_baseline_pct = (base.rps > 0.0).then(|| 100.0 * r.rps / base.rps);
    }
}

pub(crate) fn median_of<T: Copy + PartialOrd>(mut v: Vec<T>) -> Option<T> {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    v.get(v.len().checked_sub(1)? / 2).copied()
}

/// Per scenario and level, in first-seen order: medians over the rounds.
pub(crate) fn medians(results: &[CellResult]) -> Vec<MedianRow> {
    let mut cells: Vec<(Scenario, usize)> = vec![];
    for r in results {
        if !cells.contains(&(r.scenario, r.concurrency)) {
            cells.push((r.scenario, r.concurrency));
        }
    }
    cells
        .into_iter()
        .map(|(scenario, concurrency)| {
            let rs: Vec<&CellResult> = results
                .iter()
                .filter(|r| r.scenario == scenario && r.concurrency == concurrency)
                .collect();
            let floats = |f: &dyn Fn(&CellResult) -> Option<f64>| -> Vec<f64> {
                rs.iter().filter_map(|r| f(r)).collect()
            };
            let ints = |f: &dyn Fn(&CellResult) -> Option<i64>| -> Option<i64> {
                median_of(rs.iter().filter_map(|r| f(r)).collect())
            };
            let ratios = floats(&|r| r.of_baseline_pct);
            MedianRow {
                scenario,
                concurrency,
                rounds: rs.len(),
                rps: median_of(floats(&|r| Some(r.rps))).unwrap_or(0.0),
                of_baseline_pct: median_of(ratios.clone()),
                of_baseline_min_pct: ratios.iter().copied().reduce(f64::min),
                of_baseline_max_pct: ratios.iter().copied().reduce(f64::max),
                p50_us: median_of(rs.iter().filter_map(|r| Some(r.latency_us?.p50)).collect()),
                p99_us: median_of(rs.iter().filter_map(|r| Some(r.latency_us?.p99)).collect()),
                added_p50_us: ints(&|r| Some(r.added_latency_us.as_ref()?.p50)),
                added_p99_us: ints(&|r| Some(r.added_latency_us.as_ref()?.p99)),
                added_ttft_p50_us: ints(&|r| Some(r.added_ttft_us.as_ref()?.p50)),
                gateway_cpu_us_per_request: median_of(floats(&|r| {
                    r.gateway.as_ref()?.cpu_us_per_request
                })),
                errors: rs.iter().map(|r| r.errors).sum(),
            }
        })
        .collect()
}

pub(crate) fn median_table(rows: &[MedianRow]) -> String {
    let headers = [
        "scenario",
        "conc",
        "rounds",
        "req/s",
        "% base",
        "range %",
        "p50 ms",
        "p99 ms",
        "+p50 ms",
        "+p99 ms",
        "+ttft p50",
        "cpu us/req",
        "errors",
    ];
    let body: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                r.scenario.name().to_owned(),
                r.concurrency.to_string(),
                r.rounds.to_string(),
                format!("{:.0}", r.rps),
                opt(r.of_baseline_pct, |p| format!("{p:.1}")),
                opt(
                    r.of_baseline_min_pct.zip(r.of_baseline_max_pct),
                    |(a, b)| format!("{a:.1}-{b:.1}"),
                ),
                opt(r.p50_us, ms),
                opt(r.p99_us, ms),
                opt(r.added_p50_us, signed_ms),
                opt(r.added_p99_us, signed_ms),
                opt(r.added_ttft_p50_us, signed_ms),
                opt(r.gateway_cpu_us_per_request, |c| format!("{c:.0}")),
                r.errors.to_string(),
            ]
        })
        .collect();
    let scenarios: Vec<Scenario> = rows.iter().map(|r| r.scenario).collect();
    render(&headers, &body, &scenarios)
}
