//! The load: N workers, each on one keep-alive connection, for a fixed time.

use super::*;

#[derive(Clone)]
pub(crate) struct Target {
    pub(crate) addr: SocketAddr,
    pub(crate) request: Arc<[u8]>,
    pub(crate) streaming: bool,
    /// What the preflight answer must contain.
    pub(crate) expect: &'static [&'static str],
}

/// One connection, requests back to back until `until`; only requests that
/// start at or after `measure_from` are counted.
pub(crate) async fn worker(target: Target, stats: Shared, measure_from: Instant, until: Instant) {
    let mut conn: Option<Conn> = None;
    loop {
        let now = Instant::now();
        if now >= until {
            break;
        }
        let measured = now >= measure_from;
        let c = match conn.as_mut() {
            Some(c) => c,
            None => match Conn::connect(target.addr).await {
                Ok(c) => conn.insert(c),
                Err(e) => {
                    if measured {
                        lock(&stats).error(format!("connect: {e}"));
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
        };
        let start = Instant::now();
        let result = c.roundtrip(&target.request, None).await;
        let end = Instant::now();
        match result {
            Ok(reply) => {
                if measured {
                    let mut s = lock(&stats);
                    if (200..300).contains(&reply.status) {
                        s.ok += 1;
                        s.latency.record((end - start).as_micros() as u64);
                        if target.streaming
                            && let Some(first) = reply.first_byte
                        {
                            s.ttft.record((first - start).as_micros() as u64);
                        }
                    } else {
                        s.error(format!("HTTP {}", reply.status));
                    }
                }
                if !reply.keep_alive {
                    conn = None;
                }
            }
            Err(e) => {
                if measured {
                    lock(&stats).error(format!("transport: {e}"));
                }
                conn = None;
            }
        }
    }
}

/// A running load: `n` workers on `n` connections.
pub(crate) struct Load {
    pub(crate) workers: Vec<(Shared, tokio::task::JoinHandle<()>)>,
    pub(crate) until: Instant,
}

impl Load {
    pub(crate) fn start(target: &Target, n: usize, measure_from: Instant, until: Instant) -> Load {
        let workers = (0..n)
            .map(|_| {
                let stats: Shared = Arc::default();
                let task = tokio::spawn(worker(target.clone(), stats.clone(), measure_from, until));
                (stats, task)
            })
            .collect();
        Load { workers, until }
    }

    /// Everything measured since the last drain.
    pub(crate) fn drain(&self, into: &mut Counts) {
        for (stats, _) in &self.workers {
            lock(stats).drain_into(into);
        }
    }

    /// Waits for the workers (a request in flight at the deadline finishes;
    /// one still hanging 10 s later is aborted and counted as an error).
    pub(crate) async fn finish(self, into: &mut Counts) {
        let hard = tokio::time::Instant::from_std(self.until + Duration::from_secs(10));
        for (stats, mut task) in self.workers {
            if tokio::time::timeout_at(hard, &mut task).await.is_err() {
                task.abort();
                lock(&stats).error("request still hanging 10 s after the deadline".into());
            }
            lock(&stats).drain_into(into);
        }
    }
}
