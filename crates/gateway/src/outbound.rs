//! The outbound HTTP client for upstreams and guardrails: HTTP/1.1 over
//! hyper-rustls's connector (DNS, TCP with `TCP_NODELAY`, rustls with the
//! platform's roots), kept in a small pool of our own, and driven by the
//! task that makes the request.
//!
//! Why not reqwest or hyper's client: reqwest's per-request work (parsing
//! the URL twice, its redirect and retry layers) was about a third of the
//! gateway's instructions per proxied request; hyper-util's pool cost
//! another ~9k instructions per call; and hyper's own connection runs as a
//! task of its own, so every call crossed tasks four times (request in, head
//! out, body in, connection back), each a wake-up, a channel and a poll of
//! a dispatcher built for any protocol. Here the request's own task writes
//! the request and reads the answer on the socket, with [`httparse`] (the
//! parser hyper uses) for the head and a small decoder for the body's
//! framing (`content-length`, `chunked`, or up to the close).
//!
//! A connection goes back to its worker's pool the moment its answer's last
//! byte has been read, and is taken again with a linear scan over the
//! handful of hosts a gateway talks to. An idle connection is not polled:
//! before reuse, the reactor's readiness tells (without a system call in the
//! usual case) whether anything, such as the server's close, arrived on it
//! since; such a connection is dropped. A request sent on a reused
//! connection that the server closed without answering (the close crossing
//! the request on the wire) is sent once more, on a new connection.
//!
//! Timeouts are the caller's (`tokio::time`), so every await here is bounded
//! by the request's deadline.
//!
//! One pool per worker thread ([`Clients`]): a connection is opened, used and
//! kept by the thread that needs it.

use std::cell::Cell;
use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker, ready};
use std::time::{Duration, Instant};

use axum::http::{
    HeaderMap, HeaderName, HeaderValue, Method, Request, Response, StatusCode, Uri, header,
};
use bytes::{Buf, BufMut, Bytes, BytesMut};
use hyper::body::{Body, Frame};
use hyper_rustls::{HttpsConnector, MaybeHttpsStream};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioIo;
use rustls_platform_verifier::ConfigVerifierExt;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio_util::io::poll_read_buf;
use tower::ServiceExt;

type Connector = HttpsConnector<HttpConnector>;
/// What hyper-rustls hands over: its TCP stream, adapted twice.
type TlsStream = tokio_rustls::client::TlsStream<TokioIo<TokioIo<TcpStream>>>;

/// How long an unused connection is kept.
const IDLE_TIMEOUT: Duration = Duration::from_secs(90);
/// Unused connections kept per host and worker.
const MAX_IDLE_PER_HOST: usize = 1024;
/// Largest answer head (status line, headers), and largest trailer section.
const MAX_HEAD: usize = 64 * 1024;
/// Most headers an answer may have (as hyper's client).
const MAX_HEADERS: usize = 100;
/// Longest chunk-size line (size and extensions) of a chunked body.
const MAX_CHUNK_LINE: usize = 4 * 1024;
/// Bytes read at a time, at least.
const READ_SIZE: usize = 8 * 1024;

thread_local! {
    /// The worker this thread serves as (0 outside worker threads).
    static WORKER: Cell<usize> = const { Cell::new(0) };
}

/// Mark the current thread as worker `i`, so it uses client `i`.
pub fn set_worker(i: usize) {
    WORKER.with(|w| w.set(i));
}

/// The `Host` header for requests to `uri`: `host`, with `:port` when the
/// port is not the scheme's default. Built once per host and kept with its
/// pooled connections, not formatted per request.
fn host_header(uri: &Uri) -> Option<HeaderValue> {
    let host = uri.host()?;
    let default_port = match uri.scheme_str() {
        Some("https") => 443,
        _ => 80,
    };
    let value = match uri.port_u16() {
        Some(port) if port != default_port => HeaderValue::from_str(&format!("{host}:{port}")),
        _ => HeaderValue::from_str(host),
    };
    value.ok()
}

/// One pooled client per worker thread.
#[derive(Debug)]
pub struct Clients(Vec<HttpClient>);

impl Clients {
    pub fn new(workers: usize) -> Result<Self, String> {
        crate::install_crypto();
        let tls = rustls::ClientConfig::with_platform_verifier()
            .map_err(|e| format!("cannot load the system's TLS roots: {e}"))?;
        Ok(Self::with_tls(workers, tls))
    }

    /// With a TLS configuration of the caller's (tests: a test CA).
    pub fn with_tls(workers: usize, tls: rustls::ClientConfig) -> Self {
        let clients = (0..workers.max(1))
            .map(|_| {
                let mut http = HttpConnector::new();
                http.enforce_http(false);
                http.set_nodelay(true);
                http.set_connect_timeout(Some(Duration::from_secs(10)));
                let https = hyper_rustls::HttpsConnectorBuilder::new()
                    .with_tls_config(tls.clone())
                    .https_or_http()
                    .enable_http1()
                    .wrap_connector(http);
                HttpClient(Arc::new(Pool {
                    connector: https,
                    hosts: Mutex::new(Vec::new()),
                }))
            })
            .collect();
        Clients(clients)
    }

    /// The current worker's client.
    pub fn get(&self) -> &HttpClient {
        &self.0[WORKER.with(|w| w.get()) % self.0.len()]
    }
}

/// A failed call: no connection could be made, or the exchange on it failed.
#[derive(Debug)]
pub enum SendError {
    /// The URL has no scheme or host.
    BadUrl,
    /// DNS, TCP or TLS failed.
    Connect(Box<dyn std::error::Error + Send + Sync>),
    /// Writing the request or reading the answer's head failed, or the head
    /// was not valid HTTP/1.
    Exchange(io::Error),
}

impl SendError {
    pub fn is_connect(&self) -> bool {
        matches!(self, SendError::Connect(_))
    }
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendError::BadUrl => f.write_str("the URL has no scheme or host"),
            SendError::Connect(e) => write!(f, "cannot connect: {e}"),
            SendError::Exchange(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for SendError {}

fn invalid(what: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what)
}

fn cut_short() -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "the connection closed before the answer was complete",
    )
}

/// One worker's client: a connector and the idle connections per host.
#[derive(Clone, Debug)]
pub struct HttpClient(Arc<Pool>);

struct Pool {
    connector: Connector,
    /// (scheme, authority) -> idle connections, oldest first. Entries are
    /// never removed, so an index names a host for good.
    hosts: Mutex<Vec<Host>>,
}

impl fmt::Debug for Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool").finish_non_exhaustive()
    }
}

struct Host {
    scheme: Box<str>,
    authority: Box<str>,
    /// The `Host` header for this host, built once.
    header: Option<HeaderValue>,
    idle: VecDeque<Idle>,
}

struct Idle {
    conn: Conn,
    since: Instant,
}

/// A connection's transport. The TLS state (over a kilobyte) is boxed: a
/// connection is held in every request's future and moved with it.
enum Io {
    Plain(TcpStream),
    Tls(Box<TlsStream>),
}

impl tokio::io::AsyncRead for Io {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Io::Plain(tcp) => Pin::new(tcp).poll_read(cx, buf),
            Io::Tls(tls) => Pin::new(tls.as_mut()).poll_read(cx, buf),
        }
    }
}

impl tokio::io::AsyncWrite for Io {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Io::Plain(tcp) => Pin::new(tcp).poll_write(cx, buf),
            Io::Tls(tls) => Pin::new(tls.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Io::Plain(tcp) => Pin::new(tcp).poll_write_vectored(cx, bufs),
            Io::Tls(tls) => Pin::new(tls.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Io::Plain(tcp) => tcp.is_write_vectored(),
            Io::Tls(tls) => tls.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Io::Plain(tcp) => Pin::new(tcp).poll_flush(cx),
            Io::Tls(tls) => Pin::new(tls.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Io::Plain(tcp) => Pin::new(tcp).poll_shutdown(cx),
            Io::Tls(tls) => Pin::new(tls.as_mut()).poll_shutdown(cx),
        }
    }
}

/// An open connection and what has been read from it but not yet used.
struct Conn {
    io: Io,
    buf: BytesMut,
}

impl Conn {
    fn new(io: Io) -> Conn {
        Conn {
            io,
            buf: BytesMut::with_capacity(READ_SIZE),
        }
    }

    fn tcp(&self) -> &TcpStream {
        match &self.io {
            Io::Plain(tcp) => tcp,
            Io::Tls(tls) => tls.get_ref().0.inner().inner(),
        }
    }

    /// Whether an idle connection can take a request: nothing (a close,
    /// stray bytes) has arrived on it since its last answer. Costs no system
    /// call unless the reactor saw the socket become readable.
    fn is_quiet(&mut self) -> bool {
        let mut cx = Context::from_waker(Waker::noop());
        match self.tcp().poll_read_ready(&mut cx) {
            Poll::Pending => return true,
            Poll::Ready(Err(_)) => return false,
            // Perhaps only readiness left over from the last answer: look.
            Poll::Ready(Ok(())) => {}
        }
        matches!(
            poll_read_buf(Pin::new(&mut self.io), &mut cx, &mut self.buf),
            Poll::Pending
        )
    }

    /// Read more into the buffer; `Ok(0)` at the end of the stream.
    fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        self.buf.reserve(READ_SIZE);
        poll_read_buf(Pin::new(&mut self.io), cx, &mut self.buf)
    }
}

impl Pool {
    fn lock(&self) -> MutexGuard<'_, Vec<Host>> {
        // Nothing can be left half-done under this lock: keep going.
        self.hosts.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The index of the host of `uri` (added if new) and its `Host` header.
    fn slot(&self, uri: &Uri, scheme: &str, authority: &str) -> (usize, Option<HeaderValue>) {
        let mut hosts = self.lock();
        if let Some(i) = hosts
            .iter()
            .position(|h| &*h.authority == authority && &*h.scheme == scheme)
        {
            return (i, hosts[i].header.clone());
        }
        let header = host_header(uri);
        hosts.push(Host {
            scheme: scheme.into(),
            authority: authority.into(),
            header: header.clone(),
            idle: VecDeque::new(),
        });
        (hosts.len() - 1, header)
    }

    /// The most recently used live connection to `slot`, if any.
    fn checkout(&self, slot: usize) -> Option<Conn> {
        let mut hosts = self.lock();
        let idle = &mut hosts[slot].idle;
        while let Some(mut c) = idle.pop_back() {
            if c.since.elapsed() < IDLE_TIMEOUT && c.conn.is_quiet() {
                return Some(c.conn);
            }
        }
        None
    }

    /// Drop idle connections that are past [`IDLE_TIMEOUT`] or on which
    /// anything arrived (the server's close, most often), so they do not sit
    /// half-closed until the next call to their host.
    fn sweep(&self) {
        let now = Instant::now();
        let mut hosts = self.lock();
        for host in hosts.iter_mut() {
            host.idle
                .retain_mut(|c| now.duration_since(c.since) < IDLE_TIMEOUT && c.conn.is_quiet());
        }
    }

    fn checkin(&self, slot: usize, conn: Conn) {
        let now = Instant::now();
        let mut hosts = self.lock();
        let idle = &mut hosts[slot].idle;
        while idle
            .front()
            .is_some_and(|c| now.duration_since(c.since) >= IDLE_TIMEOUT)
        {
            idle.pop_front();
        }
        if idle.len() < MAX_IDLE_PER_HOST {
            idle.push_back(Idle { conn, since: now });
        }
    }
}

/// Header lines encoded once (`name: value` CRLF each), for the headers
/// every call to one target sends: a deployment's content type, key and
/// extra headers, a guardrail's key. Copied into each request as they are.
#[derive(Clone, Default)]
pub struct HeaderBlock(Bytes);

/// Never the lines themselves: they carry keys.
impl fmt::Debug for HeaderBlock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HeaderBlock({} bytes)", self.0.len())
    }
}

impl HeaderBlock {
    pub fn new<'a>(headers: impl IntoIterator<Item = (&'a HeaderName, &'a HeaderValue)>) -> Self {
        let mut out = BytesMut::new();
        put_headers(&mut out, headers);
        HeaderBlock(out.freeze())
    }
}

/// `name: value` CRLF for each header, leaving out framing headers (the
/// client writes `content-length` itself).
fn put_headers<'a>(
    out: &mut BytesMut,
    headers: impl IntoIterator<Item = (&'a HeaderName, &'a HeaderValue)>,
) {
    for (name, value) in headers {
        if name == header::CONTENT_LENGTH || name == header::TRANSFER_ENCODING {
            continue;
        }
        out.put_slice(name.as_str().as_bytes());
        out.put_slice(b": ");
        out.put_slice(value.as_bytes());
        out.put_slice(b"\r\n");
    }
}

/// The request line and headers: `Host` (when given), the fixed block, the
/// other headers, and the body's `content-length`.
fn encode_head<'a>(
    method: &Method,
    path: &str,
    host: Option<&HeaderValue>,
    fixed: &HeaderBlock,
    headers: impl IntoIterator<Item = (&'a HeaderName, &'a HeaderValue)>,
    body_len: usize,
) -> Bytes {
    let mut out = BytesMut::with_capacity(path.len() + fixed.0.len() + 256);
    out.put_slice(method.as_str().as_bytes());
    out.put_u8(b' ');
    out.put_slice(path.as_bytes());
    out.put_slice(b" HTTP/1.1\r\n");
    if let Some(host) = host {
        out.put_slice(b"host: ");
        out.put_slice(host.as_bytes());
        out.put_slice(b"\r\n");
    }
    out.put_slice(&fixed.0);
    put_headers(&mut out, headers);
    out.put_slice(b"content-length: ");
    out.put_slice(itoa::Buffer::new().format(body_len).as_bytes());
    out.put_slice(b"\r\n\r\n");
    out.freeze()
}

/// How an answer's body ends.
#[derive(Debug)]
enum Framing {
    /// This many bytes still to come.
    Length(u64),
    Chunked(Chunk),
    /// Everything up to the close.
    Eof,
    Done,
}

/// Where a chunked body's decoder is.
#[derive(Debug)]
enum Chunk {
    /// At a chunk-size line.
    Size,
    /// Inside a chunk, with this many bytes to go.
    Data(u64),
    /// At the CRLF that ends a chunk's data.
    DataEnd,
    /// After the last chunk: trailer lines up to an empty one (bytes seen).
    Trailers(usize),
}

/// An answer's head, parsed.
struct Head {
    status: StatusCode,
    headers: HeaderMap,
    framing: Framing,
    /// Whether the connection may carry another request after this answer.
    reusable: bool,
}

/// Parse the head at the start of `buf` and take it out; `None` while it is
/// incomplete. Interim (1xx) answers are skipped.
fn parse_head(buf: &mut BytesMut) -> io::Result<Option<Head>> {
    loop {
        // Uninitialised: filling 100 empty headers cost more than parsing.
        let mut slots =
            [const { std::mem::MaybeUninit::<httparse::Header>::uninit() }; MAX_HEADERS];
        let mut parsed = httparse::Response::new(&mut []);
        let parse = httparse::ParserConfig::default().parse_response_with_uninit_headers(
            &mut parsed,
            buf,
            &mut slots,
        );
        let len = match parse {
            Ok(httparse::Status::Complete(len)) => len,
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(e) => return Err(invalid(format!("invalid answer head: {e}"))),
        };
        let code = parsed.code.unwrap_or_default();
        if code == 101 {
            return Err(invalid("unexpected protocol switch (101)"));
        }
        if (100..200).contains(&code) {
            buf.advance(len);
            continue;
        }
        let status = StatusCode::from_u16(code).map_err(invalid)?;
        let mut reusable = parsed.version == Some(1);
        let mut headers = HeaderMap::with_capacity(parsed.headers.len());
        let mut length: Option<u64> = None;
        let mut chunked = None;
        for h in parsed.headers.iter() {
            let name = HeaderName::from_bytes(h.name.as_bytes()).map_err(invalid)?;
            let value = HeaderValue::from_bytes(h.value).map_err(invalid)?;
            if name == header::CONTENT_LENGTH {
                let n = std::str::from_utf8(h.value)
                    .ok()
                    .map(str::trim)
                    .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
                    .and_then(|s| s.parse::<u64>().ok())
                    .ok_or_else(|| invalid("invalid content-length"))?;
                if length.is_some_and(|l| l != n) {
                    return Err(invalid("conflicting content-length headers"));
                }
                length = Some(n);
            } else if name == header::TRANSFER_ENCODING {
                // The last coding applied is what frames the body.
                let last = h.value.rsplit(|&b| b == b',').next().unwrap_or_default();
                chunked = Some(last.trim_ascii().eq_ignore_ascii_case(b"chunked"));
            } else if name == header::CONNECTION
                && h.value
                    .split(|&b| b == b',')
                    .any(|t| t.trim_ascii().eq_ignore_ascii_case(b"close"))
            {
                reusable = false;
            }
            headers.append(name, value);
        }
        buf.advance(len);
        let no_body = status == StatusCode::NO_CONTENT || status == StatusCode::NOT_MODIFIED;
        let framing = match (no_body, chunked, length) {
            (true, _, _) => Framing::Length(0),
            (false, Some(true), length) => {
                // Both framings: a message to handle, not to keep after.
                reusable &= length.is_none();
                Framing::Chunked(Chunk::Size)
            }
            (false, Some(false), _) | (false, None, None) => {
                reusable = false;
                Framing::Eof
            }
            (false, None, Some(n)) => Framing::Length(n),
        };
        return Ok(Some(Head {
            status,
            headers,
            framing,
            reusable,
        }));
    }
}

/// What the decoder made of the buffer.
enum Step {
    Data(Bytes),
    End,
    /// More must be read first.
    More,
}

/// Take the body's next piece out of `buf`, without copying it.
fn step(framing: &mut Framing, buf: &mut BytesMut) -> io::Result<Step> {
    match framing {
        Framing::Done | Framing::Length(0) => {
            *framing = Framing::Done;
            Ok(Step::End)
        }
        Framing::Length(n) => {
            if buf.is_empty() {
                return Ok(Step::More);
            }
            let data = take(n, buf);
            if *n == 0 {
                *framing = Framing::Done;
            }
            Ok(Step::Data(data))
        }
        Framing::Eof if buf.is_empty() => Ok(Step::More),
        Framing::Eof => Ok(Step::Data(buf.split().freeze())),
        Framing::Chunked(chunk) => {
            let step = step_chunked(chunk, buf)?;
            if matches!(step, Step::End) {
                *framing = Framing::Done;
            }
            Ok(step)
        }
    }
}

/// Up to `n` bytes (counted off `n`) from the front of `buf`, without a copy.
fn take(n: &mut u64, buf: &mut BytesMut) -> Bytes {
    let len = buf.len().min(usize::try_from(*n).unwrap_or(usize::MAX));
    *n -= len as u64;
    buf.split_to(len).freeze()
}

fn step_chunked(chunk: &mut Chunk, buf: &mut BytesMut) -> io::Result<Step> {
    loop {
        match chunk {
            Chunk::Size => {
                let Some(end) = line(buf, MAX_CHUNK_LINE)? else {
                    return Ok(Step::More);
                };
                let size = chunk_size(&buf[..end])?;
                buf.advance(end + 2);
                *chunk = if size == 0 {
                    Chunk::Trailers(0)
                } else {
                    Chunk::Data(size)
                };
            }
            Chunk::Data(n) => {
                if buf.is_empty() {
                    return Ok(Step::More);
                }
                let data = take(n, buf);
                if *n == 0 {
                    *chunk = Chunk::DataEnd;
                }
                return Ok(Step::Data(data));
            }
            Chunk::DataEnd => {
                if buf.len() < 2 {
                    return Ok(Step::More);
                }
                if &buf[..2] != b"\r\n" {
                    return Err(invalid("a chunk's data is not followed by CRLF"));
                }
                buf.advance(2);
                *chunk = Chunk::Size;
            }
            Chunk::Trailers(seen) => {
                let Some(end) = line(buf, MAX_HEAD.saturating_sub(*seen))? else {
                    return Ok(Step::More);
                };
                buf.advance(end + 2);
                if end == 0 {
                    return Ok(Step::End);
                }
                *seen += end + 2;
            }
        }
    }
}

/// The length of the CRLF-terminated line at the start of `buf` (without
/// the CRLF); `None` while incomplete. Lines longer than `limit` fail.
fn line(buf: &[u8], limit: usize) -> io::Result<Option<usize>> {
    let window = &buf[..buf.len().min(limit + 2)];
    match window.iter().position(|&b| b == b'\n') {
        Some(i) if i > 0 && window[i - 1] == b'\r' => Ok(Some(i - 1)),
        Some(_) => Err(invalid("a line in the body's framing does not end in CRLF")),
        None if buf.len() > limit + 1 => Err(invalid("a line in the body's framing is too long")),
        None => Ok(None),
    }
}

/// A chunk-size line: hex digits, then perhaps whitespace and extensions.
fn chunk_size(line: &[u8]) -> io::Result<u64> {
    let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    let rest = line[digits..].trim_ascii_start();
    if digits == 0 || digits > 15 || !(rest.is_empty() || rest[0] == b';') {
        return Err(invalid("invalid chunk size"));
    }
    let hex = std::str::from_utf8(&line[..digits]).map_err(invalid)?;
    u64::from_str_radix(hex, 16).map_err(invalid)
}

/// An exchange's failure; `Unanswered` when nothing of an answer came back,
/// so the server cannot have acted on the request.
enum Failure {
    Unanswered(io::Error),
    Failed(io::Error),
}

/// Write the request, then read up to the end of the answer's head.
async fn exchange(conn: &mut Conn, head: Bytes, body: Bytes) -> Result<Head, Failure> {
    let mut out = head.chain(body);
    conn.io
        .write_all_buf(&mut out)
        .await
        .map_err(Failure::Unanswered)?;
    conn.io.flush().await.map_err(Failure::Unanswered)?;
    loop {
        if !conn.buf.is_empty() {
            match parse_head(&mut conn.buf) {
                Ok(Some(head)) => return Ok(head),
                Ok(None) if conn.buf.len() >= MAX_HEAD => {
                    return Err(Failure::Failed(invalid("the answer's head is over 64 KB")));
                }
                Ok(None) => {}
                Err(e) => return Err(Failure::Failed(e)),
            }
        }
        let before = conn.buf.len();
        match std::future::poll_fn(|cx| conn.poll_fill(cx)).await {
            Ok(0) if before == 0 => {
                return Err(Failure::Unanswered(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the connection closed before an answer",
                )));
            }
            Ok(0) => return Err(Failure::Failed(cut_short())),
            Ok(_) => {}
            Err(e) if before == 0 => return Err(Failure::Unanswered(e)),
            Err(e) => return Err(Failure::Failed(e)),
        }
    }
}

impl HttpClient {
    /// Send `request` (an absolute URL) on a pooled connection to its host,
    /// or a new one. A request that a reused connection's close kept from an
    /// answer is sent again, once, on a new connection. Not for `HEAD`: its
    /// answer's framing headers describe a body that never comes.
    pub async fn request(
        &self,
        request: Request<Bytes>,
    ) -> Result<Response<PooledBody>, SendError> {
        let (parts, body) = request.into_parts();
        let fixed = HeaderBlock::default();
        let has_host = parts.headers.contains_key(header::HOST);
        self.send(
            &parts.method,
            &parts.uri,
            &fixed,
            &parts.headers,
            has_host,
            body,
        )
        .await
    }

    /// `POST` to `uri`: the `fixed` header block, then `headers`; as
    /// [`request`](Self::request) otherwise.
    pub async fn post<'a>(
        &self,
        uri: &Uri,
        fixed: &HeaderBlock,
        headers: impl IntoIterator<Item = (&'a HeaderName, &'a HeaderValue)>,
        body: Bytes,
    ) -> Result<Response<PooledBody>, SendError> {
        self.send(&Method::POST, uri, fixed, headers, false, body)
            .await
    }

    async fn send<'a>(
        &self,
        method: &Method,
        uri: &Uri,
        fixed: &HeaderBlock,
        headers: impl IntoIterator<Item = (&'a HeaderName, &'a HeaderValue)>,
        has_host: bool,
        body: Bytes,
    ) -> Result<Response<PooledBody>, SendError> {
        let (Some(scheme), Some(authority)) = (uri.scheme_str(), uri.authority()) else {
            return Err(SendError::BadUrl);
        };
        let (slot, host) = self.0.slot(uri, scheme, authority.as_str());
        let host = host.filter(|_| !has_host);
        // On the wire: the origin form (`/v1/chat/completions`).
        let path = uri.path_and_query().map_or("/", |p| p.as_str());
        let head = encode_head(method, path, host.as_ref(), fixed, headers, body.len());
        let mut resent = false;
        loop {
            let pooled = if resent { None } else { self.0.checkout(slot) };
            let reused = pooled.is_some();
            let mut conn = match pooled {
                Some(conn) => conn,
                // Boxed: connecting is rare, and its future (DNS, TCP, TLS)
                // would otherwise make every request's bigger.
                None => Box::pin(self.connect(uri.clone())).await?,
            };
            let answer = match exchange(&mut conn, head.clone(), body.clone()).await {
                Ok(answer) => answer,
                Err(Failure::Unanswered(e)) if reused && !resent => {
                    tracing::debug!(error = %e, "reused connection closed unanswered; sending again");
                    resent = true;
                    continue;
                }
                Err(Failure::Unanswered(e) | Failure::Failed(e)) => {
                    return Err(SendError::Exchange(e));
                }
            };
            let mut body = PooledBody {
                conn: Some(conn),
                framing: answer.framing,
                checkin: answer.reusable.then(|| (self.0.clone(), slot)),
            };
            if matches!(body.framing, Framing::Length(0)) {
                body.framing = Framing::Done;
                body.finish();
            }
            let mut response = Response::new(body);
            *response.status_mut() = answer.status;
            *response.headers_mut() = answer.headers;
            return Ok(response);
        }
    }

    /// Close what the pool should no longer keep; the worker's 1 s tick
    /// calls this.
    pub fn sweep(&self) {
        self.0.sweep();
    }

    async fn connect(&self, uri: Uri) -> Result<Conn, SendError> {
        let io = self
            .0
            .connector
            .clone()
            .oneshot(uri)
            .await
            .map_err(SendError::Connect)?;
        let io = match io {
            MaybeHttpsStream::Http(tcp) => Io::Plain(tcp.into_inner()),
            MaybeHttpsStream::Https(tls) => Io::Tls(Box::new(tls.into_inner())),
        };
        Ok(Conn::new(io))
    }
}

/// An answer's body, read from the connection by whoever polls it. The
/// connection goes back to the pool when the body's last byte has been
/// read; dropped before that, the body closes it instead.
pub struct PooledBody {
    /// `None` once the body has ended or failed.
    conn: Option<Conn>,
    framing: Framing,
    /// Where the connection goes after the body, if it may be reused.
    checkin: Option<(Arc<Pool>, usize)>,
}

impl fmt::Debug for PooledBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PooledBody")
            .field("framing", &self.framing)
            .finish_non_exhaustive()
    }
}

impl PooledBody {
    /// The body has been read whole: hand the connection back if it can
    /// carry another request (nothing beyond this answer was sent on it).
    fn finish(&mut self) {
        let conn = self.conn.take();
        if let (Some(conn), Some((pool, slot))) = (conn, self.checkin.take())
            && conn.buf.is_empty()
        {
            pool.checkin(slot, conn);
        }
    }
}

impl Body for PooledBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        let this = self.get_mut();
        loop {
            let Some(conn) = this.conn.as_mut() else {
                return Poll::Ready(None);
            };
            match step(&mut this.framing, &mut conn.buf) {
                Ok(Step::Data(data)) => {
                    if matches!(this.framing, Framing::Done) {
                        this.finish();
                    }
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                Ok(Step::End) => {
                    this.finish();
                    return Poll::Ready(None);
                }
                Ok(Step::More) => {}
                Err(e) => {
                    this.conn = None;
                    return Poll::Ready(Some(Err(e)));
                }
            }
            match ready!(conn.poll_fill(cx)) {
                Ok(0) if matches!(this.framing, Framing::Eof) => {
                    this.framing = Framing::Done;
                    this.conn = None;
                    return Poll::Ready(None);
                }
                Ok(0) => {
                    this.conn = None;
                    return Poll::Ready(Some(Err(cut_short())));
                }
                Ok(_) => {}
                Err(e) => {
                    this.conn = None;
                    return Poll::Ready(Some(Err(e)));
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self.framing, Framing::Done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// How a test server treats a connection after each answer.
    #[derive(Clone, Copy)]
    enum After {
        KeepAlive,
        Close,
        /// Promise 10 bytes, send 2, then wait.
        Stall,
        /// Send stray bytes a little after the answer, and keep the
        /// connection open.
        Stray,
        /// Answer with a chunked body; keep the connection.
        Chunked,
    }

    /// A raw HTTP/1.1 server answering `ok`; returns its URL and a count of
    /// the connections it accepted.
    async fn server(after: After) -> (String, Arc<AtomicUsize>) {
        serve(after, None).await
    }

    /// The same over TLS, with the certificate in tests/fixtures/tls.
    async fn tls_server(after: After) -> (String, Arc<AtomicUsize>) {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        crate::install_crypto();
        let certs = CertificateDer::pem_file_iter(fixture("server.pem"))
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        let key = PrivateKeyDer::from_pem_file(fixture("server.key")).unwrap();
        let config = rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .unwrap();
        serve(
            after,
            Some(tokio_rustls::TlsAcceptor::from(Arc::new(config))),
        )
        .await
    }

    fn fixture(name: &str) -> String {
        format!("{}/tests/fixtures/tls/{name}", env!("CARGO_MANIFEST_DIR"))
    }

    /// A client that trusts the test CA (and nothing else).
    fn tls_client() -> HttpClient {
        use rustls::pki_types::CertificateDer;
        use rustls::pki_types::pem::PemObject;
        crate::install_crypto();
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_file_iter(fixture("ca.pem")).unwrap() {
            roots.add(cert.unwrap()).unwrap();
        }
        let tls = rustls::ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth();
        Clients::with_tls(1, tls).get().clone()
    }

    async fn serve(
        after: After,
        tls: Option<tokio_rustls::TlsAcceptor>,
    ) -> (String, Arc<AtomicUsize>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let scheme = if tls.is_some() { "https" } else { "http" };
        let url = format!("{scheme}://{}/v1/x", listener.local_addr().unwrap());
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        tokio::spawn(async move {
            loop {
                let (socket, _) = listener.accept().await.unwrap();
                count.fetch_add(1, Ordering::SeqCst);
                let tls = tls.clone();
                tokio::spawn(async move {
                    match tls {
                        None => answer(socket, after).await,
                        Some(tls) => {
                            if let Ok(socket) = tls.accept(socket).await {
                                answer(socket, after).await;
                            }
                        }
                    }
                });
            }
        });
        (url, accepted)
    }

    /// Answer `ok` to each request on `socket`, then act as `after` says.
    async fn answer<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
        mut socket: S,
        after: After,
    ) {
        let mut buf = Vec::new();
        loop {
            // One request: the head, then content-length bytes.
            let head_end = loop {
                if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    break i + 4;
                }
                let mut chunk = [0u8; 4096];
                match socket.read(&mut chunk).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            };
            let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map_or(0, |v| v.trim().parse().unwrap());
            while buf.len() < head_end + length {
                let mut chunk = [0u8; 4096];
                match socket.read(&mut chunk).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            }
            buf.drain(..head_end + length);
            let answer: &[u8] = match after {
                After::Stall => b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nok",
                After::Chunked => {
                    b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n1\r\no\r\n1\r\nk\r\n0\r\n\r\n"
                }
                _ => b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok",
            };
            if socket.write_all(answer).await.is_err() {
                return;
            }
            match after {
                After::KeepAlive | After::Chunked => {}
                After::Close => {
                    // A close the client can see: TLS's close_notify, then FIN.
                    let _ = socket.shutdown().await;
                    return;
                }
                After::Stall => std::future::pending::<()>().await,
                After::Stray => {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    let _ = socket.write_all(b"HTTP/1.1 200 OK\r\n").await;
                }
            }
        }
    }

    fn client() -> HttpClient {
        Clients::new(1).unwrap().get().clone()
    }

    fn post(url: &str) -> Request<Bytes> {
        Request::post(url).body(Bytes::from_static(b"{}")).unwrap()
    }

    async fn body(response: Response<PooledBody>) -> Bytes {
        response.into_body().collect().await.unwrap().to_bytes()
    }

    #[tokio::test]
    async fn a_connection_is_reused_once_its_body_has_ended() {
        let (url, accepted) = server(After::KeepAlive).await;
        let http = client();
        for _ in 0..5 {
            let response = http.request(post(&url)).await.unwrap();
            assert_eq!(response.status(), 200);
            assert_eq!(body(response).await, "ok");
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
        // Two at once need two connections; both are kept.
        let (a, b) = tokio::join!(http.request(post(&url)), http.request(post(&url)));
        let (a, b) = (a.unwrap(), b.unwrap());
        assert_eq!(accepted.load(Ordering::SeqCst), 2);
        assert_eq!(body(a).await, "ok");
        assert_eq!(body(b).await, "ok");
        let response = http.request(post(&url)).await.unwrap();
        assert_eq!(body(response).await, "ok");
        assert_eq!(accepted.load(Ordering::SeqCst), 2);
    }

    /// Three calls to `url` with a pause after each: every call must have
    /// had a connection of its own.
    async fn each_call_needs_a_new_connection(
        http: &HttpClient,
        (url, accepted): &(String, Arc<AtomicUsize>),
        pause: Duration,
    ) {
        for i in 1..=3 {
            let response = http.request(post(url)).await.unwrap();
            assert_eq!(body(response).await, "ok");
            tokio::time::sleep(pause).await;
            assert_eq!(accepted.load(Ordering::SeqCst), i);
        }
    }

    #[tokio::test]
    async fn a_connection_the_server_closed_is_not_used_again() {
        let (http, server) = (client(), server(After::Close).await);
        each_call_needs_a_new_connection(&http, &server, Duration::from_millis(20)).await;
        // Straight after a close, before the pool can notice it: still served.
        for _ in 0..3 {
            let response = http.request(post(&server.0)).await.unwrap();
            assert_eq!(body(response).await, "ok");
        }
    }

    #[tokio::test]
    async fn a_connection_with_stray_bytes_after_its_answer_is_not_used_again() {
        // The stray bytes come 10 ms after each answer.
        let (http, server) = (client(), server(After::Stray).await);
        each_call_needs_a_new_connection(&http, &server, Duration::from_millis(50)).await;
    }

    /// The same pool rules over TLS: reuse, chunked bodies, and a close
    /// (close_notify) noticed on an idle connection.
    #[tokio::test]
    async fn over_tls_connections_are_reused_and_closes_are_seen() {
        let http = tls_client();
        for after in [After::KeepAlive, After::Chunked] {
            let (url, accepted) = tls_server(after).await;
            for _ in 0..3 {
                let response = http.request(post(&url)).await.unwrap();
                assert_eq!(response.status(), 200);
                assert_eq!(body(response).await, "ok");
            }
            assert_eq!(accepted.load(Ordering::SeqCst), 1, "one connection, reused");
        }
        let closing = tls_server(After::Close).await;
        each_call_needs_a_new_connection(&http, &closing, Duration::from_millis(20)).await;
        // The closed one is swept; the two kept-alive ones stay.
        for _ in 0..100 {
            http.sweep();
            if idle(&http) == 2 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(idle(&http), 2);
        // Untrusted: the platform's roots do not include the test CA.
        let e = client().request(post(&closing.0)).await.unwrap_err();
        assert!(e.is_connect(), "{e}");
    }

    fn idle(http: &HttpClient) -> usize {
        http.0.lock().iter().map(|h| h.idle.len()).sum()
    }

    #[tokio::test]
    async fn the_sweep_closes_idle_connections_the_server_closed() {
        let (open_url, _) = server(After::KeepAlive).await;
        let (closed_url, _) = server(After::Close).await;
        let http = client();
        for url in [&open_url, &closed_url] {
            let response = http.request(post(url)).await.unwrap();
            assert_eq!(body(response).await, "ok");
        }
        assert_eq!(idle(&http), 2);
        // The close reaches the reactor on one of its next turns.
        for _ in 0..100 {
            tokio::time::sleep(Duration::from_millis(5)).await;
            http.sweep();
            if idle(&http) == 1 {
                break;
            }
        }
        assert_eq!(idle(&http), 1, "the closed one is gone, the open one kept");
        let response = http.request(post(&open_url)).await.unwrap();
        assert_eq!(body(response).await, "ok");
    }

    #[tokio::test]
    async fn a_body_dropped_before_its_end_closes_its_connection() {
        let (url, accepted) = server(After::Stall).await;
        let http = client();
        let response = http.request(post(&url)).await.unwrap();
        assert_eq!(response.status(), 200);
        drop(response);
        let response = http.request(post(&url)).await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(accepted.load(Ordering::SeqCst), 2, "a new connection");
    }

    #[tokio::test]
    async fn connect_failures_and_bad_urls_are_told_apart() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let http = client();
        let e = http
            .request(post(&format!("http://127.0.0.1:{port}/")))
            .await
            .unwrap_err();
        assert!(e.is_connect(), "{e}");
        let relative = Request::post("/v1/x").body(Bytes::new()).unwrap();
        assert!(matches!(
            http.request(relative).await,
            Err(SendError::BadUrl)
        ));
    }

    #[tokio::test]
    async fn requests_go_out_in_origin_form_with_a_host() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let read = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut buf = vec![0u8; 4096];
            let n = socket.read(&mut buf).await.unwrap();
            socket
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                .await
                .unwrap();
            String::from_utf8_lossy(&buf[..n]).into_owned()
        });
        let response = client()
            .request(post(&format!("http://{addr}/v1/x?q=1")))
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let head = read.await.unwrap();
        assert!(head.starts_with("POST /v1/x?q=1 HTTP/1.1\r\n"), "{head}");
        assert!(
            head.to_ascii_lowercase()
                .contains(&format!("host: {addr}\r\n")),
            "{head}"
        );
    }

    #[test]
    fn a_header_block_is_wire_lines_and_never_shows_them() {
        let key = HeaderValue::from_static("Bearer sk-secret");
        let length = HeaderValue::from_static("9");
        let block = HeaderBlock::new([
            (&header::AUTHORIZATION, &key),
            (&header::CONTENT_LENGTH, &length),
        ]);
        assert_eq!(&block.0[..], b"authorization: Bearer sk-secret\r\n");
        assert!(!format!("{block:?}").contains("sk-secret"));
    }

    #[test]
    fn host_header_has_the_port_only_when_it_is_not_the_default() {
        let host = |u: &str| host_header(&u.parse().unwrap()).unwrap();
        assert_eq!(host("http://127.0.0.1:4011/v1/chat"), "127.0.0.1:4011");
        assert_eq!(host("https://api.openai.com/v1/chat"), "api.openai.com");
        assert_eq!(host("https://api.openai.com:443/v1"), "api.openai.com");
        assert_eq!(host("http://example.com:80/"), "example.com");
        assert_eq!(host("http://example.com:443/"), "example.com:443");
        assert_eq!(host("http://[::1]:8080/"), "[::1]:8080");
        assert!(host_header(&"/relative".parse().unwrap()).is_none());
    }

    /// Decode `wire` (one answer) fed `split` bytes at a time: its status,
    /// whether the connection could be reused, and the body; or the first
    /// error.
    fn decode(wire: &[u8], split: usize) -> io::Result<(u16, bool, Vec<u8>)> {
        let mut buf = BytesMut::new();
        let mut chunks = wire.chunks(split);
        let mut head = loop {
            if let Some(head) = parse_head(&mut buf)? {
                break head;
            }
            buf.extend_from_slice(chunks.next().ok_or_else(cut_short)?);
        };
        let mut body = Vec::new();
        loop {
            match step(&mut head.framing, &mut buf)? {
                Step::Data(d) => body.extend_from_slice(&d),
                Step::End => break,
                Step::More => match chunks.next() {
                    Some(c) => buf.extend_from_slice(c),
                    None if matches!(head.framing, Framing::Eof) => break,
                    None => return Err(cut_short()),
                },
            }
        }
        assert!(buf.is_empty(), "left over: {buf:?}");
        Ok((head.status.as_u16(), head.reusable, body))
    }

    /// Every split of the wire, byte by byte up to all at once.
    fn decode_all_ways(wire: &[u8]) -> io::Result<(u16, bool, Vec<u8>)> {
        let whole = decode(wire, wire.len())?;
        for split in 1..wire.len() {
            assert_eq!(decode(wire, split)?, whole, "split every {split} bytes");
        }
        Ok(whole)
    }

    #[test]
    fn bodies_are_framed_by_length_chunks_or_the_close() {
        let got = decode_all_ways(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello").unwrap();
        assert_eq!(got, (200, true, b"hello".to_vec()));
        let chunked = b"HTTP/1.1 200 OK\r\ntransfer-encoding: gzip, chunked\r\n\r\n\
            5\r\nhello\r\n1;ext=\"x\"\r\n,\r\nA \r\n0123456789\r\n0\r\nx-trailer: 1\r\n\r\n";
        let got = decode_all_ways(chunked).unwrap();
        assert_eq!(got, (200, true, b"hello,0123456789".to_vec()));
        // No length, no chunks: the body runs to the close.
        let got = decode_all_ways(b"HTTP/1.1 200 OK\r\n\r\nto the end").unwrap();
        assert_eq!(got, (200, false, b"to the end".to_vec()));
        // Interim answers are skipped; 204 has no body whatever it says.
        let got = decode_all_ways(
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\ncontent-length: 9\r\n\r\n",
        )
        .unwrap();
        assert_eq!(got, (204, true, vec![]));
    }

    #[test]
    fn only_a_plain_http_1_1_keep_alive_answer_frees_its_connection() {
        let reusable = |wire: &[u8]| decode_all_ways(wire).unwrap().1;
        assert!(!reusable(
            b"HTTP/1.1 200 OK\r\nConnection: keep-alive, Close\r\ncontent-length: 0\r\n\r\n"
        ));
        assert!(!reusable(b"HTTP/1.0 200 OK\r\ncontent-length: 0\r\n\r\n"));
        assert!(!reusable(
            b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\ntransfer-encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n"
        ));
        assert!(reusable(
            b"HTTP/1.1 200 OK\r\nconnection: keep-alive\r\ncontent-length: 0\r\n\r\n"
        ));
    }

    #[test]
    fn malformed_answers_are_errors() {
        let bad: &[&[u8]] = &[
            b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\ncontent-length: 6\r\n\r\nhello",
            b"HTTP/1.1 200 OK\r\ncontent-length: +5\r\n\r\nhello",
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n",
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nokX\r\n0\r\n\r\n",
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\n",
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n10000000000000000\r\n",
            b"HTTP/1.1 101 Switching Protocols\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nbad header\r\n\r\n",
            b"SSH-2.0-OpenSSH_9.2\r\n",
            // Cut short: inside the body, inside a chunk, before the last.
            b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhel",
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhel",
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n",
        ];
        for wire in bad {
            let got = decode(wire, wire.len());
            assert!(
                got.is_err(),
                "{:?} gave {got:?}",
                String::from_utf8_lossy(wire)
            );
        }
        let mut long = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n1".to_vec();
        long.extend(std::iter::repeat_n(b' ', MAX_CHUNK_LINE + 1));
        long.extend_from_slice(b"\r\nx\r\n0\r\n\r\n");
        assert!(
            decode(&long, long.len()).is_err(),
            "an endless chunk-size line"
        );
    }

    /// A server that answers the first request on each connection, then
    /// closes the connection when the next request arrives, unanswered.
    #[tokio::test]
    async fn a_request_a_reused_connection_drops_is_sent_once_more() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/v1/x", listener.local_addr().unwrap());
        let requests = Arc::new(AtomicUsize::new(0));
        let seen = requests.clone();
        tokio::spawn(async move {
            loop {
                let (mut socket, _) = listener.accept().await.unwrap();
                let seen = seen.clone();
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 4096];
                    for answered in [true, false] {
                        // Each test request arrives in one read.
                        if matches!(socket.read(&mut buf).await, Ok(0) | Err(_)) {
                            return;
                        }
                        seen.fetch_add(1, Ordering::SeqCst);
                        if answered {
                            let ok = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
                            socket.write_all(ok).await.unwrap();
                        }
                    }
                });
            }
        });
        let http = client();
        let response = http.request(post(&url)).await.unwrap();
        assert_eq!(body(response).await, "ok");
        // Reused: dropped unanswered, then sent on a new connection.
        let response = http.request(post(&url)).await.unwrap();
        assert_eq!(body(response).await, "ok");
        assert_eq!(requests.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn a_fresh_connection_dropped_unanswered_is_an_error_not_a_resend() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        tokio::spawn(async move {
            loop {
                let (mut socket, _) = listener.accept().await.unwrap();
                count.fetch_add(1, Ordering::SeqCst);
                let mut buf = vec![0u8; 4096];
                let _ = socket.read(&mut buf).await;
            }
        });
        let e = client().request(post(&url)).await.unwrap_err();
        assert!(matches!(e, SendError::Exchange(_)), "{e}");
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
    }
}
