//! `gateway-bench`: load-tests the gateway on one machine.
//!
//! It starts a mock OpenAI upstream and a mock Aim in this process (recording
//! off), runs the real `gateway` binary as a separate process (so its RSS is
//! its own), and drives load with N workers, each on ONE persistent
//! keep-alive HTTP/1.1 connection (concurrency = connections), for a fixed
//! time per concurrency level.
//!
//! ```sh
//! cargo build --release
//! cargo run --release --bin gateway-bench -- --duration 5 --concurrency 1,16,64,256
//! cargo run --release --bin gateway-bench -- --soak 10 --scenario pre_call --concurrency 64
//! cargo run --release --bin gateway-bench -- --scenarios stream_direct,stream --chunk-interval-ms 5
//! cargo run --release --bin gateway-bench -- --soak 10 --scenario stream_post --chunks 2048 --aim-answer-interval-ms 1
//! ```
//!
//! Scenarios: `direct` (straight to the mock upstream, the baseline),
//! `gateway` (no guardrail), `pre_call` and `pre_post` (an Aim guardrail
//! selected with `"guardrails": ["aim-bench"]`), `stream` and `stream_direct`
//! (SSE through the gateway and straight to the upstream, with time to first
//! body chunk), `stream_post` (SSE relayed through an Aim post_call
//! guardrail's websocket; with `--aim-answer-interval-ms`, against a slow
//! Aim, which makes a soak of it a leak test of the relay). Every scenario × concurrency cell runs on a freshly started
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
use gateway_mock::upstream::{MockUpstream, UpstreamOptions};
use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

// ---------------------------------------------------------------------------
// Command line
// ---------------------------------------------------------------------------

#[derive(Parser, Debug)]
#[command(
    name = "gateway-bench",
    about = "Benchmark the gateway against in-process mock upstream and mock Aim servers",
    long_about = "Benchmark the gateway against in-process mock upstream and mock Aim servers.\n\n\
        Build first: `cargo build --release`, then \
        `cargo run --release --bin gateway-bench -- [options]`."
)]
struct Cli {
    /// Seconds of measurement per scenario and concurrency level.
    #[arg(long, default_value_t = 5.0)]
    duration: f64,
    /// Seconds of warm-up (not measured) before each measurement.
    #[arg(long, default_value_t = 0.5)]
    warmup: f64,
    /// Concurrency levels (= keep-alive connections), comma-separated.
    /// Default 1,16,64,256; with --soak, the first level (default 64).
    #[arg(long, value_delimiter = ',')]
    concurrency: Vec<usize>,
    /// Scenarios to run, comma-separated (default: all).
    #[arg(long, value_enum, value_delimiter = ',')]
    scenarios: Vec<Scenario>,
    /// Delay of the mock upstream before each response head, in ms.
    #[arg(long, default_value_t = 0)]
    upstream_latency_ms: u64,
    /// Content chunks per streamed answer.
    #[arg(long, default_value_t = 8)]
    chunks: usize,
    /// Delay of the mock upstream between stream frames, in ms (0: the whole
    /// stream is written at once, so time to first chunk is about the total).
    #[arg(long, default_value_t = 0)]
    chunk_interval_ms: u64,
    /// The mock Aim answers a streamed chunk no faster than one per this
    /// many ms (it still reads every frame at once): a slow Aim for
    /// `stream_post`.
    #[arg(long, default_value_t = 0)]
    aim_answer_interval_ms: u64,
    /// The gateway executable (default: `gateway` next to this executable).
    #[arg(long)]
    gateway_bin: Option<PathBuf>,
    /// Run the gateway with `--busy-poll-us N` (0: off, the gateway's
    /// default).
    #[arg(long, default_value_t = 0)]
    busy_poll_us: u64,
    /// Run every scenario and level this many times, interleaved (round 1
    /// of each cell, then round 2, ...), and end with the median of each
    /// figure over the rounds. On a shared machine the baseline drifts from
    /// minute to minute; a ratio taken within each round, then the median,
    /// is steadier than one run.
    #[arg(long, default_value_t = 1)]
    rounds: usize,
    /// Also write the figures as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Soak test: run one scenario at one concurrency for this many minutes,
    /// printing RSS and req/s every --interval seconds.
    #[arg(long)]
    soak: Option<f64>,
    /// The soak test's scenario.
    #[arg(long, value_enum, default_value_t = Scenario::PreCall)]
    scenario: Scenario,
    /// Seconds between soak reports.
    #[arg(long, default_value_t = 10.0)]
    interval: f64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, ValueEnum, Serialize)]
#[serde(rename_all = "snake_case")]
enum Scenario {
    /// Straight to the mock upstream (the baseline).
    #[value(name = "direct")]
    Direct,
    /// Through the gateway, no guardrail.
    #[value(name = "gateway")]
    Gateway,
    /// Through the gateway with an Aim pre_call guardrail.
    #[value(name = "pre_call")]
    PreCall,
    /// Through the gateway with an Aim pre_call + post_call guardrail.
    #[value(name = "pre_post")]
    PrePost,
    /// Streaming straight to the mock upstream (the stream baseline).
    #[value(name = "stream_direct")]
    StreamDirect,
    /// Streaming through the gateway, no guardrail.
    #[value(name = "stream")]
    Stream,
    /// Streaming through the gateway with an Aim post_call guardrail: the
    /// answer relayed through Aim's websocket.
    #[value(name = "stream_post")]
    StreamPost,
}

impl Scenario {
    const ALL: [Scenario; 7] = [
        Scenario::Direct,
        Scenario::Gateway,
        Scenario::PreCall,
        Scenario::PrePost,
        Scenario::StreamDirect,
        Scenario::Stream,
        Scenario::StreamPost,
    ];

    fn name(self) -> &'static str {
        match self {
            Scenario::Direct => "direct",
            Scenario::Gateway => "gateway",
            Scenario::PreCall => "pre_call",
            Scenario::PrePost => "pre_post",
            Scenario::StreamDirect => "stream_direct",
            Scenario::Stream => "stream",
            Scenario::StreamPost => "stream_post",
        }
    }

    fn uses_gateway(self) -> bool {
        !matches!(self, Scenario::Direct | Scenario::StreamDirect)
    }

    fn streaming(self) -> bool {
        matches!(
            self,
            Scenario::Stream | Scenario::StreamDirect | Scenario::StreamPost
        )
    }

    fn guardrail(self) -> bool {
        matches!(
            self,
            Scenario::PreCall | Scenario::PrePost | Scenario::StreamPost
        )
    }

    /// The guardrail modes of `aim-bench` in this scenario's gateway config.
    fn modes(self) -> &'static str {
        match self {
            Scenario::PrePost => "[pre_call, post_call]",
            Scenario::StreamPost => "[post_call]",
            _ => "[pre_call]",
        }
    }

    /// The scenario whose latency is subtracted to get the gateway's cost.
    fn baseline(self) -> Option<Scenario> {
        match self {
            Scenario::Direct | Scenario::StreamDirect => None,
            Scenario::Stream | Scenario::StreamPost => Some(Scenario::StreamDirect),
            _ => Some(Scenario::Direct),
        }
    }
}

// ---------------------------------------------------------------------------
// Histogram
// ---------------------------------------------------------------------------

/// Sub-buckets per power of two: values below `2 * SUB` µs are exact, above
/// that the relative error is below `1 / SUB`.
const SUB_BITS: u32 = 7;
const SUB: usize = 1 << SUB_BITS;
/// Enough buckets for values up to `u32::MAX` µs (71 minutes).
const BUCKETS: usize = 2 * SUB + (32 - SUB_BITS as usize - 1) * SUB;

/// A log-linear latency histogram in microseconds, HDR style.
#[derive(Clone, Default)]
struct Hist {
    /// Allocated on the first record.
    counts: Vec<u64>,
    total: u64,
    sum: u64,
    max: u64,
}

impl Hist {
    fn index(v: u64) -> usize {
        if v < 2 * SUB as u64 {
            return v as usize;
        }
        let msb = 63 - v.leading_zeros();
        let shift = msb - SUB_BITS;
        let top = (v >> shift) as usize;
        2 * SUB + (shift as usize - 1) * SUB + (top - SUB)
    }

    /// The representative value of a bucket (its midpoint).
    fn value(index: usize) -> u64 {
        if index < 2 * SUB {
            return index as u64;
        }
        let rel = index - 2 * SUB;
        let shift = (rel / SUB + 1) as u32;
        let top = (rel % SUB + SUB) as u64;
        let low = top << shift;
        low + ((1u64 << shift) - 1) / 2
    }

    fn record(&mut self, micros: u64) {
        let v = micros.min(u64::from(u32::MAX));
        if self.counts.is_empty() {
            self.counts = vec![0; BUCKETS];
        }
        self.counts[Self::index(v)] += 1;
        self.total += 1;
        self.sum += v;
        self.max = self.max.max(v);
    }

    fn merge(&mut self, other: &Hist) {
        if other.total == 0 {
            return;
        }
        if self.counts.is_empty() {
            self.counts = vec![0; BUCKETS];
        }
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        self.total += other.total;
        self.sum += other.sum;
        self.max = self.max.max(other.max);
    }

    fn clear(&mut self) {
        self.counts.iter_mut().for_each(|c| *c = 0);
        self.total = 0;
        self.sum = 0;
        self.max = 0;
    }

    /// The value at quantile `q` (0..=1); never above the exact maximum.
    fn quantile(&self, q: f64) -> Option<u64> {
        if self.total == 0 {
            return None;
        }
        let rank = ((q * self.total as f64).ceil() as u64).clamp(1, self.total);
        let mut seen = 0;
        for (i, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Some(Self::value(i).min(self.max));
            }
        }
        Some(self.max)
    }

    fn summary(&self) -> Option<LatencySummary> {
        (self.total > 0).then(|| LatencySummary {
            p50: self.quantile(0.50).unwrap_or(0),
            p90: self.quantile(0.90).unwrap_or(0),
            p99: self.quantile(0.99).unwrap_or(0),
            max: self.max,
            mean: self.sum / self.total,
        })
    }
}

/// Latency figures in microseconds.
#[derive(Clone, Copy, Debug, Serialize)]
struct LatencySummary {
    p50: u64,
    p90: u64,
    p99: u64,
    max: u64,
    mean: u64,
}

// ---------------------------------------------------------------------------
// Per-worker statistics
// ---------------------------------------------------------------------------

/// What a worker measured since the last drain.
#[derive(Default)]
struct Counts {
    ok: u64,
    errors: u64,
    latency: Hist,
    ttft: Hist,
    first_error: Option<String>,
}

impl Counts {
    fn merge(&mut self, other: &Counts) {
        self.ok += other.ok;
        self.errors += other.errors;
        self.latency.merge(&other.latency);
        self.ttft.merge(&other.ttft);
        if self.first_error.is_none() {
            self.first_error.clone_from(&other.first_error);
        }
    }

    /// Moves everything into `into` and starts over (keeping allocations).
    fn drain_into(&mut self, into: &mut Counts) {
        into.merge(self);
        self.ok = 0;
        self.errors = 0;
        self.latency.clear();
        self.ttft.clear();
        self.first_error = None;
    }

    fn error(&mut self, what: String) {
        self.errors += 1;
        if self.first_error.is_none() {
            self.first_error = Some(what);
        }
    }
}

type Shared = Arc<Mutex<Counts>>;

fn lock(m: &Mutex<Counts>) -> MutexGuard<'_, Counts> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

// ---------------------------------------------------------------------------
// A minimal HTTP/1.1 keep-alive client
// ---------------------------------------------------------------------------

struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
    pos: usize,
    len: usize,
}

/// The parts of a response the benchmark looks at.
struct Reply {
    status: u16,
    /// The connection may carry another request.
    keep_alive: bool,
    /// When the first body byte arrived (none for an empty body).
    first_byte: Option<Instant>,
}

fn invalid(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

impl Conn {
    async fn connect(addr: SocketAddr) -> io::Result<Conn> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(Conn {
            stream,
            buf: vec![0; 16 * 1024],
            pos: 0,
            len: 0,
        })
    }

    /// Reads more bytes into the buffer; EOF is an error (a response is
    /// always incomplete when more bytes are needed).
    async fn fill(&mut self) -> io::Result<()> {
        if self.pos == self.len {
            self.pos = 0;
            self.len = 0;
        } else if self.len == self.buf.len() {
            if self.pos > 0 {
                self.buf.copy_within(self.pos..self.len, 0);
                self.len -= self.pos;
                self.pos = 0;
            } else {
                let grown = self.buf.len() * 2;
                self.buf.resize(grown, 0);
            }
        }
        let n = self.stream.read(&mut self.buf[self.len..]).await?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed mid-response",
            ));
        }
        self.len += n;
        Ok(())
    }

    /// The next CRLF-terminated line, as a range into the buffer (valid
    /// until the next read).
    async fn line(&mut self) -> io::Result<(usize, usize)> {
        let mut from = self.pos;
        loop {
            if let Some(i) = self.buf[from..self.len]
                .windows(2)
                .position(|w| w == b"\r\n")
            {
                let start = self.pos;
                let end = from + i;
                self.pos = end + 2;
                return Ok((start, end));
            }
            // Searched up to len-1 (a CR may be the last byte).
            let searched = self.len.saturating_sub(1).max(self.pos);
            let offset = searched - self.pos;
            self.fill().await?;
            from = self.pos + offset;
        }
    }

    /// Skips `n` body bytes, noting when the first one arrived.
    async fn skip(
        &mut self,
        mut n: usize,
        first: &mut Option<Instant>,
        mut keep: Option<&mut Vec<u8>>,
    ) -> io::Result<()> {
        while n > 0 {
            if self.pos == self.len {
                self.fill().await?;
            }
            if first.is_none() {
                *first = Some(Instant::now());
            }
            let take = n.min(self.len - self.pos);
            if let Some(keep) = keep.as_deref_mut() {
                keep.extend_from_slice(&self.buf[self.pos..self.pos + take]);
            }
            self.pos += take;
            n -= take;
        }
        Ok(())
    }

    /// Sends `request` and reads the whole response; `keep` collects the
    /// body (for the preflight check only).
    async fn roundtrip(
        &mut self,
        request: &[u8],
        mut keep: Option<&mut Vec<u8>>,
    ) -> io::Result<Reply> {
        if self.pos != self.len {
            return Err(invalid("unexpected bytes before the response"));
        }
        self.stream.write_all(request).await?;

        // Status line.
        let (s, e) = self.line().await?;
        let status_line = &self.buf[s..e];
        if !status_line.starts_with(b"HTTP/1.") || status_line.len() < 12 {
            return Err(invalid(format!(
                "bad status line {:?}",
                String::from_utf8_lossy(status_line)
            )));
        }
        let http10 = status_line[7] == b'0';
        let status = std::str::from_utf8(&status_line[9..12])
            .ok()
            .and_then(|t| t.parse::<u16>().ok())
            .ok_or_else(|| invalid("bad status code"))?;

        // Headers.
        let mut content_length: Option<usize> = None;
        let mut chunked = false;
        let mut keep_alive = !http10;
        loop {
            let (s, e) = self.line().await?;
            if s == e {
                break;
            }
            let line = &self.buf[s..e];
            let Some(colon) = line.iter().position(|&b| b == b':') else {
                return Err(invalid("bad header line"));
            };
            let (name, value) = (&line[..colon], line[colon + 1..].trim_ascii());
            if name.eq_ignore_ascii_case(b"content-length") {
                let n = std::str::from_utf8(value)
                    .ok()
                    .and_then(|v| v.parse().ok())
                    .ok_or_else(|| invalid("bad content-length"))?;
                content_length = Some(n);
            } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
                chunked = value
                    .split(|&b| b == b',')
                    .any(|t| t.trim_ascii().eq_ignore_ascii_case(b"chunked"));
            } else if name.eq_ignore_ascii_case(b"connection") {
                if value.eq_ignore_ascii_case(b"close") {
                    keep_alive = false;
                } else if value.eq_ignore_ascii_case(b"keep-alive") {
                    keep_alive = true;
                }
            }
        }

        // Body.
        let mut first = None;
        if status == 204 || status == 304 || (100..200).contains(&status) {
            // No body.
        } else if chunked {
            loop {
                let (s, e) = self.line().await?;
                let line = &self.buf[s..e];
                let hex = line.split(|&b| b == b';').next().unwrap_or_default();
                let size = std::str::from_utf8(hex)
                    .ok()
                    .and_then(|h| usize::from_str_radix(h.trim(), 16).ok())
                    .ok_or_else(|| invalid("bad chunk size"))?;
                if size == 0 {
                    // Trailers, up to the empty line.
                    loop {
                        let (s, e) = self.line().await?;
                        if s == e {
                            break;
                        }
                    }
                    break;
                }
                self.skip(size, &mut first, keep.as_deref_mut()).await?;
                let (s, e) = self.line().await?;
                if s != e {
                    return Err(invalid("chunk not followed by CRLF"));
                }
            }
        } else if let Some(n) = content_length {
            self.skip(n, &mut first, keep.as_deref_mut()).await?;
        } else {
            // Body until EOF.
            loop {
                if self.pos < self.len && first.is_none() {
                    first = Some(Instant::now());
                }
                if let Some(keep) = keep.as_deref_mut() {
                    keep.extend_from_slice(&self.buf[self.pos..self.len]);
                }
                self.pos = self.len;
                match self.fill().await {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => break,
                    Err(e) => return Err(e),
                }
            }
            keep_alive = false;
        }
        Ok(Reply {
            status,
            keep_alive,
            first_byte: first,
        })
    }
}

/// A complete POST, built once.
fn chat_request(addr: SocketAddr, path: &str, stream: bool, guardrail: bool) -> Vec<u8> {
    let mut body = String::from(
        r#"{"model":"bench-model","messages":[{"role":"user","content":"hello there, this is a benchmark request"}]"#,
    );
    if stream {
        body.push_str(r#","stream":true"#);
    }
    if guardrail {
        body.push_str(r#","guardrails":["aim-bench"]"#);
    }
    body.push('}');
    format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nAccept: */*\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

// ---------------------------------------------------------------------------
// The load
// ---------------------------------------------------------------------------

#[derive(Clone)]
struct Target {
    addr: SocketAddr,
    request: Arc<[u8]>,
    streaming: bool,
}

/// One connection, requests back to back until `until`; only requests that
/// start at or after `measure_from` are counted.
async fn worker(target: Target, stats: Shared, measure_from: Instant, until: Instant) {
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
struct Load {
    workers: Vec<(Shared, tokio::task::JoinHandle<()>)>,
    until: Instant,
}

impl Load {
    fn start(target: &Target, n: usize, measure_from: Instant, until: Instant) -> Load {
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
    fn drain(&self, into: &mut Counts) {
        for (stats, _) in &self.workers {
            lock(stats).drain_into(into);
        }
    }

    /// Waits for the workers (a request in flight at the deadline finishes;
    /// one still hanging 10 s later is aborted and counted as an error).
    async fn finish(self, into: &mut Counts) {
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

// ---------------------------------------------------------------------------
// /proc
// ---------------------------------------------------------------------------

/// `VmHWM` and `VmRSS` of a process, in kB.
fn memory_kb(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| {
                rest.trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse::<u64>()
                    .ok()
            })
    };
    Some((field("VmHWM:")?, field("VmRSS:")?))
}

/// CPU time (user + system) of a process, in clock ticks.
fn cpu_ticks(pid: &str) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may contain spaces; fields start after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line (11 and 12 here).
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|&t| t > 0.0)
        .unwrap_or(100.0)
}

#[derive(Clone, Debug, Serialize)]
struct Machine {
    nproc: usize,
    cpu_model: String,
    kernel: String,
    mem_total_kb: Option<u64>,
}

fn machine() -> Machine {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu_model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_owned())
        .unwrap_or_else(|| "unknown".into());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "unknown".into());
    let mem_total_kb = std::fs::read_to_string("/proc/meminfo").ok().and_then(|m| {
        m.lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
    });
    Machine {
        nproc: std::thread::available_parallelism().map_or(1, |n| n.get()),
        cpu_model,
        kernel,
        mem_total_kb,
    }
}

// ---------------------------------------------------------------------------
// The gateway process
// ---------------------------------------------------------------------------

struct Gateway {
    child: Child,
    addr: SocketAddr,
    config: PathBuf,
    startup: Duration,
    idle_rss_kb: u64,
}

impl Gateway {
    /// Memory and CPU figures after a run that made `ok` requests.
    fn figures(&self, cpu_pct: f64, seconds: f64, ok: u64) -> GatewayFigures {
        let (hwm, rss) = memory_kb(self.pid()).unwrap_or((0, 0));
        GatewayFigures {
            pid: self.pid(),
            startup_ms: self.startup.as_secs_f64() * 1000.0,
            idle_rss_kb: self.idle_rss_kb,
            peak_rss_kb: hwm,
            rss_kb: rss,
            cpu_pct,
            cpu_us_per_request: (ok > 0).then(|| cpu_pct / 100.0 * seconds * 1e6 / ok as f64),
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Writes the config, spawns the gateway, and waits for
    /// `/health/readiness`.
    async fn spawn(
        bin: &Path,
        busy_poll_us: u64,
        scenario: Scenario,
        upstream: &str,
        aim: &str,
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
            let yaml = format!(
                "model_list:\n\
                 \x20 - model_name: bench-model\n\
                 \x20   litellm_params:\n\
                 \x20     model: openai/bench-model\n\
                 \x20     api_key: bench\n\
                 \x20     api_base: {upstream}\n\
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

    async fn wait_ready(&mut self, spawned: Instant) -> Result<(), String> {
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
    async fn stop(mut self) {
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

// ---------------------------------------------------------------------------
// Results
// ---------------------------------------------------------------------------

#[derive(Clone, Debug, Serialize)]
struct GatewayFigures {
    pid: u32,
    startup_ms: f64,
    idle_rss_kb: u64,
    /// VmHWM after the measurement.
    peak_rss_kb: u64,
    /// VmRSS after the measurement.
    rss_kb: u64,
    /// CPU used during the measurement, in % of one core.
    cpu_pct: f64,
    /// CPU microseconds per successful request.
    cpu_us_per_request: Option<f64>,
}

#[derive(Clone, Debug, Serialize)]
struct Added {
    p50: i64,
    p99: i64,
}

#[derive(Clone, Debug, Serialize)]
struct CellResult {
    /// 1-based; always 1 without --rounds.
    round: usize,
    scenario: Scenario,
    concurrency: usize,
    seconds: f64,
    requests: u64,
    errors: u64,
    rps: f64,
    latency_us: Option<LatencySummary>,
    /// This scenario minus its baseline (direct / stream_direct) at the same
    /// concurrency, in µs.
    added_latency_us: Option<Added>,
    ttft_us: Option<LatencySummary>,
    added_ttft_us: Option<Added>,
    /// req/s as a % of the baseline's at the same concurrency, same round.
    of_baseline_pct: Option<f64>,
    gateway: Option<GatewayFigures>,
    /// The bench process's own CPU (load + mocks), in % of one core.
    bench_cpu_pct: f64,
    first_error: Option<String>,
}

/// One scenario and level over all rounds: the median of each figure, and
/// the range of the throughput ratio.
#[derive(Debug, Serialize)]
struct MedianRow {
    scenario: Scenario,
    concurrency: usize,
    rounds: usize,
    rps: f64,
    of_baseline_pct: Option<f64>,
    of_baseline_min_pct: Option<f64>,
    of_baseline_max_pct: Option<f64>,
    p50_us: Option<u64>,
    p99_us: Option<u64>,
    added_p50_us: Option<i64>,
    added_p99_us: Option<i64>,
    added_ttft_p50_us: Option<i64>,
    gateway_cpu_us_per_request: Option<f64>,
    errors: u64,
}

#[derive(Debug, Serialize)]
struct SoakSample {
    elapsed_s: f64,
    rps: f64,
    errors: u64,
    p50_us: Option<u64>,
    p99_us: Option<u64>,
    rss_kb: Option<u64>,
    peak_rss_kb: Option<u64>,
    gateway_cpu_pct: Option<f64>,
}

#[derive(Debug, Serialize)]
struct SoakResult {
    scenario: Scenario,
    concurrency: usize,
    minutes: f64,
    interval_s: f64,
    samples: Vec<SoakSample>,
    total: CellResult,
    first_rss_kb: Option<u64>,
    last_rss_kb: Option<u64>,
    max_rss_kb: Option<u64>,
}

#[derive(Debug, Serialize)]
struct StartupSummary {
    spawns: usize,
    first_ms: f64,
    min_ms: f64,
    median_ms: f64,
    max_ms: f64,
    first_idle_rss_kb: u64,
    min_idle_rss_kb: u64,
    max_idle_rss_kb: u64,
}

#[derive(Debug, Serialize)]
struct Report {
    machine: Machine,
    command: String,
    gateway_bin: String,
    busy_poll_us: u64,
    duration_s: f64,
    warmup_s: f64,
    upstream_latency_ms: u64,
    chunks: usize,
    chunk_interval_ms: u64,
    aim_answer_interval_ms: u64,
    startup: Option<StartupSummary>,
    results: Vec<CellResult>,
    /// With --rounds above 1: the medians over the rounds.
    medians: Vec<MedianRow>,
    soak: Option<SoakResult>,
}

// ---------------------------------------------------------------------------
// Running
// ---------------------------------------------------------------------------

struct Env {
    bin: PathBuf,
    busy_poll_us: u64,
    upstream: MockUpstream,
    aim: MockAim,
    ticks: f64,
    /// (startup, idle RSS) of every gateway spawned.
    spawns: Vec<(Duration, u64)>,
}

impl Env {
    fn target(&self, scenario: Scenario, gateway: Option<&Gateway>) -> Target {
        let (addr, path) = match gateway {
            Some(g) => (g.addr, "/v1/chat/completions"),
            None => (self.upstream.addr(), "/v1/chat/completions"),
        };
        Target {
            addr,
            request: chat_request(addr, path, scenario.streaming(), scenario.guardrail()).into(),
            streaming: scenario.streaming(),
        }
    }

    async fn gateway_for(&mut self, scenario: Scenario) -> Result<Option<Gateway>, String> {
        if !scenario.uses_gateway() {
            return Ok(None);
        }
        let gw = Gateway::spawn(
            &self.bin,
            self.busy_poll_us,
            scenario,
            &self.upstream.url(),
            &self.aim.url(),
        )
        .await?;
        self.spawns.push((gw.startup, gw.idle_rss_kb));
        Ok(Some(gw))
    }
}

/// One request on a fresh connection, checking the answer looks right, so a
/// misconfiguration fails loudly instead of benchmarking error responses.
async fn preflight(target: &Target) -> Result<(), String> {
    let mut conn = Conn::connect(target.addr)
        .await
        .map_err(|e| format!("connect {}: {e}", target.addr))?;
    let mut body = Vec::new();
    let reply = conn
        .roundtrip(&target.request, Some(&mut body))
        .await
        .map_err(|e| format!("preflight request: {e}"))?;
    let text = String::from_utf8_lossy(&body);
    // A stream splits the echoed text over several chunks.
    let expected: &[&str] = if target.streaming {
        &["\"chat.completion.chunk\"", "data: [DONE]"]
    } else {
        &[
            "\"chat.completion\"",
            "hello there, this is a benchmark request",
        ]
    };
    if reply.status != 200 || !expected.iter().all(|e| text.contains(e)) {
        return Err(format!(
            "preflight: unexpected answer (HTTP {}): {}",
            reply.status,
            text.chars().take(400).collect::<String>()
        ));
    }
    Ok(())
}

fn pct(ticks: Option<u64>, ticks_per_s: f64, seconds: f64) -> f64 {
    ticks.map_or(0.0, |t| t as f64 / ticks_per_s / seconds * 100.0)
}

async fn run_cell(
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

    let gateway_figures = gateway
        .as_ref()
        .map(|g| g.figures(pct(gw_cpu, env.ticks, seconds), seconds, counts.ok));
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

fn fill_added(results: &mut [CellResult]) {
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

fn median_of<T: Copy + PartialOrd>(mut v: Vec<T>) -> Option<T> {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    v.get(v.len().checked_sub(1)? / 2).copied()
}

/// Per scenario and level, in first-seen order: medians over the rounds.
fn medians(results: &[CellResult]) -> Vec<MedianRow> {
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

fn median_table(rows: &[MedianRow]) -> String {
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

// ---------------------------------------------------------------------------
// Printing
// ---------------------------------------------------------------------------

fn ms(us: u64) -> String {
    format!("{:.3}", us as f64 / 1000.0)
}

fn signed_ms(us: i64) -> String {
    format!("{:+.3}", us as f64 / 1000.0)
}

fn mb(kb: u64) -> String {
    format!("{:.1}", kb as f64 / 1024.0)
}

fn opt<T>(v: Option<T>, f: impl Fn(T) -> String) -> String {
    v.map_or_else(|| "-".to_owned(), f)
}

fn table(results: &[CellResult]) -> String {
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
fn render(headers: &[&str], rows: &[Vec<String>], scenarios: &[Scenario]) -> String {
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

fn startup_summary(spawns: &[(Duration, u64)]) -> Option<StartupSummary> {
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

fn print_startup(s: &StartupSummary) {
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

// ---------------------------------------------------------------------------
// main
// ---------------------------------------------------------------------------

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
        "mock upstream latency {} ms, {} chunks per stream, {} ms between frames; mock Aim answers a streamed chunk every {} ms; load: one keep-alive HTTP/1.1 connection per worker; gateway busy-poll {} us",
        cli.upstream_latency_ms,
        cli.chunks,
        cli.chunk_interval_ms,
        cli.aim_answer_interval_ms,
        cli.busy_poll_us
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
    let mut env = Env {
        bin: bin.clone(),
        busy_poll_us: cli.busy_poll_us,
        upstream,
        aim,
        ticks: clock_ticks(),
        spawns: Vec::new(),
    };

    let mut report = Report {
        machine,
        command,
        gateway_bin: bin.display().to_string(),
        busy_poll_us: cli.busy_poll_us,
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
            "latencies in ms; +p50/+p99: minus the baseline at the same concurrency (direct; stream_direct for stream);"
        );
        println!(
            "% base: req/s as a % of the baseline's; ttft: time to the first body chunk; errors: non-2xx or transport;"
        );
        println!(
            "gw cpu%/bench cpu%: % of one core during the measurement; idle MB: gateway VmRSS right after readiness;"
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
        .map(|g| g.figures(pct(gw_cpu, env.ticks, seconds), seconds, total.ok));
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
