//! The outbound HTTP client for upstreams and guardrails: HTTP/1.1
//! connections from hyper, over hyper-rustls's connector (DNS, TCP with
//! `TCP_NODELAY`, rustls with the platform's roots), kept in a small pool of
//! our own.
//!
//! Why not reqwest or hyper-util's pooled client: reqwest's per-request work
//! (parsing the URL twice, its redirect and retry layers) was about a third of
//! the gateway's instructions per proxied request, and hyper-util's pool,
//! built for any executor and any protocol, cost another ~9k instructions per
//! call (a SipHash map looked up twice, a checkout future, a task spawned to
//! hand each connection back). Here a connection goes back to its worker's
//! pool the moment its response body ends, and is taken again with a linear
//! scan over the handful of hosts a gateway talks to.
//!
//! Timeouts are the caller's (`tokio::time`), so every await here is bounded
//! by the request's deadline.
//!
//! One pool per worker thread ([`Clients`]): a connection is opened, used and
//! kept by the thread that needs it.

use std::cell::Cell;
use std::collections::VecDeque;
use std::fmt;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::http::uri::PathAndQuery;
use axum::http::{HeaderValue, Request, Response, Uri};
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::client::conn::http1;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use rustls_platform_verifier::ConfigVerifierExt;
use tower::ServiceExt;

type Connector = HttpsConnector<HttpConnector>;
type Sender = http1::SendRequest<Full<Bytes>>;

/// How long an unused connection is kept.
const IDLE_TIMEOUT: Duration = Duration::from_secs(90);
/// Unused connections kept per host and worker.
const MAX_IDLE_PER_HOST: usize = 1024;

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
        Ok(Clients(clients))
    }

    /// The current worker's client.
    pub fn get(&self) -> &HttpClient {
        &self.0[WORKER.with(|w| w.get()) % self.0.len()]
    }

    /// Send a request with the current worker's client.
    pub async fn send(
        &self,
        request: Request<Full<Bytes>>,
    ) -> Result<Response<PooledBody>, SendError> {
        self.get().request(request).await
    }
}

/// A failed call: no connection could be made, or the exchange on it failed.
#[derive(Debug)]
pub enum SendError {
    /// The URL has no scheme or host.
    BadUrl,
    /// DNS, TCP or TLS failed.
    Connect(Box<dyn std::error::Error + Send + Sync>),
    /// The request or the response head failed on an open connection.
    Exchange(hyper::Error),
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
    sender: Sender,
    since: Instant,
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
    fn checkout(&self, slot: usize) -> Option<Sender> {
        let mut hosts = self.lock();
        let idle = &mut hosts[slot].idle;
        while let Some(conn) = idle.pop_back() {
            if !conn.sender.is_closed() && conn.since.elapsed() < IDLE_TIMEOUT {
                return Some(conn.sender);
            }
        }
        None
    }

    fn checkin(&self, slot: usize, sender: Sender) {
        if sender.is_closed() {
            return;
        }
        let now = Instant::now();
        let mut hosts = self.lock();
        let idle = &mut hosts[slot].idle;
        while idle
            .front()
            .is_some_and(|c| now.duration_since(c.since) >= IDLE_TIMEOUT || c.sender.is_closed())
        {
            idle.pop_front();
        }
        if idle.len() < MAX_IDLE_PER_HOST {
            idle.push_back(Idle { sender, since: now });
        }
    }
}

impl HttpClient {
    /// Send `request` (an absolute URL) on a pooled connection to its host,
    /// or a new one. A request that a pooled connection closed before it
    /// was written is sent again on another.
    pub async fn request(
        &self,
        mut request: Request<Full<Bytes>>,
    ) -> Result<Response<PooledBody>, SendError> {
        let uri = request.uri().clone();
        let (Some(scheme), Some(authority)) = (uri.scheme_str(), uri.authority()) else {
            return Err(SendError::BadUrl);
        };
        let (slot, host) = self.0.slot(&uri, scheme, authority.as_str());
        if let Some(host) = host {
            request
                .headers_mut()
                .entry(axum::http::header::HOST)
                .or_insert(host);
        }
        // On the wire: the origin form (`/v1/chat/completions`).
        *request.uri_mut() = uri
            .path_and_query()
            .cloned()
            .unwrap_or_else(|| PathAndQuery::from_static("/"))
            .into();
        loop {
            let (mut sender, pooled) = match self.0.checkout(slot) {
                Some(sender) => (sender, true),
                // Boxed: connecting is rare, and its future (DNS, TCP, TLS,
                // handshake) would otherwise make every request's bigger.
                None => (Box::pin(self.connect(uri.clone())).await?, false),
            };
            if let Err(e) = sender.ready().await {
                if pooled {
                    continue;
                }
                return Err(SendError::Exchange(e));
            }
            match sender.try_send_request(request).await {
                Ok(response) => {
                    let pool = self.0.clone();
                    return Ok(response.map(|body| PooledBody {
                        body,
                        checkin: Some(Checkin { pool, slot, sender }),
                    }));
                }
                Err(mut e) => match e.take_message() {
                    // Never written: the pooled connection was closing.
                    Some(unsent) if pooled => request = unsent,
                    _ => return Err(SendError::Exchange(e.into_error())),
                },
            }
        }
    }

    async fn connect(&self, uri: Uri) -> Result<Sender, SendError> {
        let io = self
            .0
            .connector
            .clone()
            .oneshot(uri)
            .await
            .map_err(SendError::Connect)?;
        let (sender, connection) = http1::handshake(io).await.map_err(SendError::Exchange)?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "outbound connection ended with an error");
            }
        });
        Ok(sender)
    }
}

/// A response body that hands its connection back to the pool when it ends.
/// Dropped before the end, it closes the connection instead.
pub struct PooledBody {
    body: Incoming,
    checkin: Option<Checkin>,
}

impl fmt::Debug for PooledBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PooledBody")
            .field("body", &self.body)
            .finish_non_exhaustive()
    }
}

struct Checkin {
    pool: Arc<Pool>,
    slot: usize,
    sender: Sender,
}

impl Body for PooledBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.body).poll_frame(cx);
        match &polled {
            Poll::Ready(None) => {
                if let Some(c) = this.checkin.take() {
                    c.pool.checkin(c.slot, c.sender);
                }
            }
            Poll::Ready(Some(Err(_))) => this.checkin = None,
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
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
    }

    /// A raw HTTP/1.1 server answering `ok`; returns its URL and a count of
    /// the connections it accepted.
    async fn server(after: After) -> (String, Arc<AtomicUsize>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/v1/x", listener.local_addr().unwrap());
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        tokio::spawn(async move {
            loop {
                let (mut socket, _) = listener.accept().await.unwrap();
                count.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
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
                            _ => b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok",
                        };
                        if socket.write_all(answer).await.is_err() {
                            return;
                        }
                        match after {
                            After::KeepAlive => {}
                            After::Close => return,
                            After::Stall => std::future::pending::<()>().await,
                        }
                    }
                });
            }
        });
        (url, accepted)
    }

    fn client() -> HttpClient {
        Clients::new(1).unwrap().get().clone()
    }

    fn post(url: &str) -> Request<Full<Bytes>> {
        Request::post(url)
            .body(Full::new(Bytes::from_static(b"{}")))
            .unwrap()
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

    #[tokio::test]
    async fn a_connection_the_server_closed_is_not_used_again() {
        let (url, accepted) = server(After::Close).await;
        let http = client();
        for i in 1..=3 {
            let response = http.request(post(&url)).await.unwrap();
            assert_eq!(body(response).await, "ok");
            tokio::time::sleep(Duration::from_millis(20)).await;
            assert_eq!(accepted.load(Ordering::SeqCst), i);
        }
        // Straight after a close, before the pool can notice it: still served.
        for _ in 0..3 {
            let response = http.request(post(&url)).await.unwrap();
            assert_eq!(body(response).await, "ok");
        }
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
        let relative = Request::post("/v1/x")
            .body(Full::new(Bytes::new()))
            .unwrap();
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
}
