//! The gateway under test: the real binary, started as a child process per
//! cell so that each RSS is its own.

use super::*;

pub(crate) struct Gateway {
    pub(crate) child: Child,
    pub(crate) addr: SocketAddr,
    pub(crate) config: PathBuf,
    pub(crate) startup: Duration,
    pub(crate) idle_rss_kb: u64,
}

impl Gateway {
    /// Memory and CPU figures after a run that made `ok` requests.
    pub(crate) fn figures(
        &self,
        cpu_pct: f64,
        worker_cpu_pct: Vec<f64>,
        seconds: f64,
        ok: u64,
    ) -> GatewayFigures {
        let (hwm, rss) = memory_kb(self.pid()).unwrap_or((0, 0));
        GatewayFigures {
            pid: self.pid(),
            startup_ms: self.startup.as_secs_f64() * 1000.0,
            idle_rss_kb: self.idle_rss_kb,
            peak_rss_kb: hwm,
            rss_kb: rss,
            cpu_pct,
            worker_cpu_pct,
            cpu_us_per_request: (ok > 0).then(|| cpu_pct / 100.0 * seconds * 1e6 / ok as f64),
        }
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Writes the config, spawns the gateway, and waits for
    /// `/health/readiness`.
    pub(crate) async fn spawn(
        bin: &Path,
        busy_poll_us: u64,
        runtime: Option<&str>,
        scenario: Scenario,
        upstream: &str,
        aim: &str,
        anthropic: &str,
    ) -> Result<Gateway, String> {
        let mut last_err = String::new();
        // A free port is found by binding port 0 and letting it go; another
        // process may take it meanwhile, so try a few times.
        for _ in 0..3 {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .map_err(|e| format!("cannot find a free port: {e}"))?
                .port();
            let addr = SocketAddr::from(([127, 0, 0, 1], port));
            let config = std::env::temp_dir().join(format!(
                "gateway-bench-{}-{}.yaml",
                std::process::id(),
                scenario.name()
            ));
            // One deployment per config, so a chat row's config is what it
            // was before the messages scenarios existed.
            let (model, api_base) = if scenario.messages() {
                ("anthropic/bench-claude", anthropic)
            } else {
                ("openai/bench-model", upstream)
            };
            let yaml = format!(
                "model_list:\n\
                 \x20 - model_name: bench-model\n\
                 \x20   litellm_params:\n\
                 \x20     model: {model}\n\
                 \x20     api_key: bench\n\
                 \x20     api_base: {api_base}\n\
                 guardrails:\n\
                 \x20 - guardrail_name: aim-bench\n\
                 \x20   litellm_params:\n\
                 \x20     guardrail: aim\n\
                 \x20     mode: {modes}\n\
                 \x20     api_key: {aim_key}\n\
                 \x20     api_base: {aim}\n\
                 general_settings:\n\
                 \x20 shutdown_grace_period: 2\n",
                modes = scenario.modes(),
                aim_key = AimOptions::default().api_key,
            );
            std::fs::write(&config, yaml)
                .map_err(|e| format!("cannot write {}: {e}", config.display()))?;
            let spawned = Instant::now();
            let child = Command::new(bin)
                .arg("--config")
                .arg(&config)
                .args(["--host", "127.0.0.1", "--port", &port.to_string()])
                .args(["--busy-poll-us", &busy_poll_us.to_string()])
                .args(runtime.iter().flat_map(|r| ["--runtime", r]))
                .env("RUST_LOG", "warn")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::inherit())
                .spawn()
                .map_err(|e| format!("cannot run {}: {e}", bin.display()))?;
            let mut gw = Gateway {
                child,
                addr,
                config,
                startup: Duration::ZERO,
                idle_rss_kb: 0,
            };
            match gw.wait_ready(spawned).await {
                Ok(()) => {
                    gw.startup = spawned.elapsed();
                    gw.idle_rss_kb = memory_kb(gw.pid()).map_or(0, |(_, rss)| rss);
                    return Ok(gw);
                }
                Err(e) => last_err = e,
            }
        }
        Err(last_err)
    }

    pub(crate) async fn wait_ready(&mut self, spawned: Instant) -> Result<(), String> {
        let readiness = format!(
            "GET /health/readiness HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            self.addr
        );
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("the gateway exited at startup ({status})"));
            }
            if spawned.elapsed() > Duration::from_secs(10) {
                return Err("the gateway was not ready after 10 s".into());
            }
            if let Ok(mut conn) = Conn::connect(self.addr).await
                && let Ok(reply) = conn.roundtrip(readiness.as_bytes(), None).await
                && reply.status == 200
            {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    /// SIGTERM, then wait (SIGKILL after 5 s).
    pub(crate) async fn stop(mut self) {
        let pid = self.pid().to_string();
        let termed = Command::new("kill")
            .args(["-TERM", &pid])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if termed {
            let until = Instant::now() + Duration::from_secs(5);
            while Instant::now() < until {
                if let Ok(Some(_)) = self.child.try_wait() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            eprintln!("gateway {pid} did not stop 5 s after SIGTERM; killing it");
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        // After `stop` this is a no-op; on an early return or Ctrl-C it makes
        // sure no gateway is left behind.
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        let _ = std::fs::remove_file(&self.config);
    }
}
