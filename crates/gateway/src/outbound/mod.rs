//! Outbound calls to upstreams and guardrails, on hyper-util's pooled
//! client: this module configures it, and opens Aim's websocket over the
//! same connections and trust.
//!
//! - **Connections.** DNS and TCP (`TCP_NODELAY`, 10 s to connect) by
//!   hyper-util's `HttpConnector`. When `HTTPS_PROXY` / `HTTP_PROXY` /
//!   `ALL_PROXY` name a proxy for the destination and `NO_PROXY` does not
//!   exempt it (hyper-util's `Matcher`, curl's rules), `https://`
//!   destinations and every websocket go through a CONNECT tunnel
//!   (hyper-util's `Tunnel`), and `http://` ones are sent to the proxy in
//!   absolute form, as curl sends them. Then TLS (rustls with
//!   ring, by hyper-rustls) offering HTTP/2 and HTTP/1.1 by ALPN: hyper
//!   speaks HTTP/2 where the server picks it.
//! - **Trust.** One rustls configuration per `ssl_verify` setting in the
//!   config (see [`tls_config`]), shared by the HTTP calls and the
//!   websockets of that setting; only their ALPN differs.
//! - **Pooling.** One client per worker thread and trust setting: a
//!   connection, and the task hyper drives it with, live on the thread that
//!   uses them, so no call crosses threads. Idle connections are kept 90 s
//!   (1024 per host at most); hyper's connection task notices a server's
//!   close and the pool drops that connection.
//! - **No double sends.** The transport sends a request once. hyper-util
//!   takes a request back only when it never started on a reused connection
//!   that turned out closed, and sends it on another; a request that may
//!   have reached the server fails instead, and the router's retries (counted
//!   in `x-litellm-attempted-retries`) decide what happens next.
//! - **Bounds.** Timeouts are the caller's (`tokio::time`), besides the
//!   connect timeout; bodies are read through the caller's bounded collect;
//!   an HTTP/1.1 answer's head is bounded by hyper (100 headers, its read
//!   buffer), an HTTP/2 one's by `MAX_HEADER_LIST`.

mod dial;
#[cfg(test)]
mod tests;
mod tls;

use dial::*;
use tls::*;
pub use tls::{install_crypto, tls_config};

use std::cell::Cell;
use std::fmt;
use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::http::uri::Scheme;
use axum::http::{
    HeaderMap, HeaderName, HeaderValue, Method, Request, Response, StatusCode, Uri, header,
};
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::proxy::Tunnel;
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
use hyper_util::client::proxy::matcher::Matcher;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite;
use tokio_util::either::Either;
use tower::ServiceExt;

/// The gateway's `User-Agent` on every outbound call that does not set one
/// (a deployment's `extra_headers` may).
pub const USER_AGENT: &str = concat!("gateway/", env!("CARGO_PKG_VERSION"));

use crate::config::{Config, Outbound, SslVerify};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long an unused connection is kept.
const IDLE_TIMEOUT: Duration = Duration::from_secs(90);
/// Unused connections kept per host, worker and trust setting.
const MAX_IDLE_PER_HOST: usize = 1024;
/// Largest header section of an HTTP/2 answer (hyper's default is 16 MB).
const MAX_HEADER_LIST: u32 = 64 * 1024;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

thread_local! {
    /// The worker this thread serves as (0 outside worker threads).
    static WORKER: Cell<usize> = const { Cell::new(0) };
}

/// Mark the current thread as worker `i`, so it uses client `i`.
pub fn set_worker(i: usize) {
    WORKER.with(|w| w.set(i));
}

/// The outbound clients of every worker thread.
#[derive(Debug)]
pub struct Clients(Vec<HttpClient>);

impl Clients {
    /// Clients for `config`'s deployments and guardrails, on `workers`
    /// worker threads.
    pub fn new(config: &Config, workers: usize) -> Result<Self, String> {
        let own = config
            .deployments
            .iter()
            .filter_map(|d| d.ssl_verify.as_ref())
            .chain(
                config
                    .guardrails
                    .iter()
                    .filter_map(|g| g.ssl_verify.as_ref()),
            );
        Self::build(&config.outbound, own, workers)
    }

    /// Clients for the gateway-wide settings and the `ssl_verify` values
    /// some deployments or guardrails set for themselves.
    pub fn build<'a>(
        settings: &Outbound,
        own: impl IntoIterator<Item = &'a SslVerify>,
        workers: usize,
    ) -> Result<Self, String> {
        install_crypto();
        let extra = extra_roots(settings)?;
        let mut trust = vec![settings.ssl_verify.clone()];
        for v in own {
            if !trust.contains(v) {
                trust.push(v.clone());
            }
        }
        let tls = trust
            .iter()
            .map(|v| tls_config(v, &extra))
            .collect::<Result<Vec<_>, _>>()?;
        let ws_tls = tls
            .iter()
            .map(|c| {
                let mut c = c.clone();
                c.alpn_protocols = vec![b"http/1.1".to_vec()];
                Arc::new(c)
            })
            .collect();
        let proxy = Arc::new(proxy_matcher(settings));
        // Only when the proxy for plain HTTP has credentials does a request
        // need a look at the proxy rules (see `HttpClient::send`).
        let forward_auth = settings
            .http_proxy
            .as_ref()
            .or(settings.all_proxy.as_ref())
            .is_some_and(|p| p.expose().contains('@'));
        let mut tcp = HttpConnector::new();
        tcp.enforce_http(false);
        tcp.set_nodelay(true);
        tcp.set_connect_timeout(Some(CONNECT_TIMEOUT));
        let common = Arc::new(Common {
            trust,
            ws_tls,
            dialer: Dialer { tcp, proxy },
            forward_auth,
        });
        let clients = (0..workers.max(1))
            .map(|_| HttpClient {
                clients: tls
                    .iter()
                    .map(|tls| client(common.dialer.clone(), tls.clone()))
                    .collect(),
                common: common.clone(),
            })
            .collect();
        Ok(Clients(clients))
    }

    /// The current worker's clients.
    pub fn get(&self) -> &HttpClient {
        &self.0[WORKER.with(|w| w.get()) % self.0.len()]
    }
}

/// One hyper-util client: TLS by hyper-rustls over our dialer, HTTP/2 where
/// ALPN picks it.
fn client(dialer: Dialer, tls: rustls::ClientConfig) -> Client<Connector, Full<Bytes>> {
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_all_versions()
        .wrap_connector(dialer);
    Client::builder(TokioExecutor::new())
        .pool_timer(TokioTimer::new())
        .pool_idle_timeout(IDLE_TIMEOUT)
        .pool_max_idle_per_host(MAX_IDLE_PER_HOST)
        .http2_max_header_list_size(MAX_HEADER_LIST)
        .build(connector)
}

type Connector = HttpsConnector<Dialer>;

/// What every worker's clients share.
struct Common {
    /// The trust settings, the gateway-wide one first; each worker has a
    /// client per entry, in this order.
    trust: Vec<SslVerify>,
    /// Per trust setting, the TLS configuration of websockets: the HTTP
    /// one, offering only HTTP/1.1.
    ws_tls: Vec<Arc<rustls::ClientConfig>>,
    dialer: Dialer,
    /// Whether plain-HTTP requests sent to a proxy carry its credentials.
    forward_auth: bool,
}

/// One worker's clients, one per trust setting.
#[derive(Clone)]
pub struct HttpClient {
    common: Arc<Common>,
    clients: Arc<[Client<Connector, Full<Bytes>>]>,
}

impl fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpClient")
            .field("trust", &self.common.trust)
            .finish_non_exhaustive()
    }
}

/// The answer's body, as hyper delivers it.
pub type PooledBody = Incoming;
/// Why an answer's body broke off.
pub type BodyError = hyper::Error;

/// A failed call.
#[derive(Debug)]
pub enum SendError {
    /// No client has this trust setting (only a setting the config did not
    /// name, which is a bug).
    NoTrust,
    /// hyper-util's error: connecting (DNS, TCP, proxy, TLS) or the
    /// exchange failed.
    Http(hyper_util::client::legacy::Error),
    /// The server switched protocols (101) though no upgrade was asked.
    Switched,
}

impl SendError {
    /// Whether no connection could be made, so nothing was sent.
    pub fn is_connect(&self) -> bool {
        matches!(self, SendError::Http(e) if e.is_connect())
    }
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendError::NoTrust => f.write_str("no client for this ssl_verify setting"),
            SendError::Http(e) => write_chain(f, e),
            SendError::Switched => f.write_str("unexpected protocol switch (101)"),
        }
    }
}

impl std::error::Error for SendError {}

/// An error and its causes, `a: b: c` (hyper-util's own text says only
/// which step failed).
fn write_chain(f: &mut fmt::Formatter<'_>, e: &dyn std::error::Error) -> fmt::Result {
    write!(f, "{e}")?;
    let mut source = e.source();
    while let Some(s) = source {
        write!(f, ": {s}")?;
        source = s.source();
    }
    Ok(())
}

/// Headers every call to one target sends (a deployment's content type,
/// key and extra headers, a guardrail's key), built once.
#[derive(Clone, Default)]
pub struct HeaderBlock(HeaderMap);

/// Never the values: they carry keys.
impl fmt::Debug for HeaderBlock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HeaderBlock({} headers)", self.0.len())
    }
}

impl HeaderBlock {
    /// `headers`, and a `Host` for `uri` unless they have one: hyper-util
    /// would format it on every HTTP/1.1 call otherwise (on HTTP/2 it goes
    /// out beside `:authority`, equal to it, as RFC 9113 allows). The
    /// framing headers are left out: hyper frames the body itself.
    pub fn new<'a>(
        uri: Option<&Uri>,
        headers: impl IntoIterator<Item = (&'a HeaderName, &'a HeaderValue)>,
    ) -> Self {
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            if name != header::CONTENT_LENGTH && name != header::TRANSFER_ENCODING {
                map.append(name.clone(), value.clone());
            }
        }
        if let Some(host) = uri.and_then(host_header) {
            map.entry(header::HOST).or_insert(host);
        }
        HeaderBlock(map)
    }
}

/// The `Host` header for requests to `uri`: `host`, with `:port` when the
/// port is not the scheme's default (as hyper-util writes it).
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

impl HttpClient {
    /// The client of a trust setting (`None`: the gateway-wide one).
    fn index(&self, trust: Option<&SslVerify>) -> Option<usize> {
        match trust {
            None => Some(0),
            Some(v) => self.common.trust.iter().position(|t| t == v),
        }
    }

    /// `POST` to `uri`: the `fixed` headers, then `headers`.
    pub async fn post<'a>(
        &self,
        trust: Option<&SslVerify>,
        uri: &Uri,
        fixed: &HeaderBlock,
        headers: impl IntoIterator<Item = (&'a HeaderName, &'a HeaderValue)>,
        body: Bytes,
    ) -> Result<Response<PooledBody>, SendError> {
        let i = self.index(trust).ok_or(SendError::NoTrust)?;
        let mut request = Request::new(Full::new(body));
        *request.method_mut() = Method::POST;
        *request.uri_mut() = uri.clone();
        let h = request.headers_mut();
        *h = fixed.0.clone();
        for (name, value) in headers {
            h.append(name.clone(), value.clone());
        }
        self.send(i, request).await
    }

    /// Any request, with the gateway-wide trust setting.
    pub async fn request(
        &self,
        request: Request<Bytes>,
    ) -> Result<Response<PooledBody>, SendError> {
        self.send(0, request.map(Full::new)).await
    }

    async fn send(
        &self,
        i: usize,
        mut request: Request<Full<Bytes>>,
    ) -> Result<Response<PooledBody>, SendError> {
        if self.common.forward_auth && request.uri().scheme() == Some(&Scheme::HTTP) {
            // A request sent to the proxy itself carries its credentials
            // (a tunnel's CONNECT carries them otherwise).
            if let Some(auth) = self
                .common
                .dialer
                .proxy
                .intercept(request.uri())
                .and_then(|p| p.basic_auth().cloned())
            {
                request
                    .headers_mut()
                    .insert(header::PROXY_AUTHORIZATION, auth);
            }
        }
        if let header::Entry::Vacant(v) = request.headers_mut().entry(header::USER_AGENT) {
            v.insert(HeaderValue::from_static(USER_AGENT));
        }
        let response = self.clients[i]
            .request(request)
            .await
            .map_err(SendError::Http)?;
        // hyper hands a 101 over as an answer; nothing asked for one.
        if response.status() == StatusCode::SWITCHING_PROTOCOLS {
            return Err(SendError::Switched);
        }
        Ok(response)
    }

    /// Open a websocket (`ws://` or `wss://`) with the trust setting's TLS
    /// configuration, through the proxy's CONNECT tunnel when one applies
    /// (`HTTPS_PROXY` for `wss://`, `HTTP_PROXY` for `ws://`).
    pub async fn websocket(
        &self,
        trust: Option<&SslVerify>,
        request: tungstenite::handshake::client::Request,
        config: Option<tungstenite::protocol::WebSocketConfig>,
    ) -> Result<Socket, WsError> {
        let i = self
            .index(trust)
            .ok_or_else(|| WsError::Connect("no client for this ssl_verify setting".into()))?;
        let uri = request.uri();
        let secure = match uri.scheme_str() {
            Some("wss") => true,
            Some("ws") => false,
            _ => return Err(WsError::Connect("not a ws:// or wss:// URL".into())),
        };
        let host = uri
            .host()
            .ok_or_else(|| WsError::Connect("no host in the URL".into()))?;
        let port = uri.port_u16().unwrap_or(if secure { 443 } else { 80 });
        let scheme = if secure { "https" } else { "http" };
        let target: Uri = format!("{scheme}://{host}:{port}/")
            .parse()
            .map_err(|e| WsError::Connect(Box::new(e)))?;
        let tcp = self
            .common
            .dialer
            .clone()
            .dial(target, true)
            .await
            .map_err(WsError::Connect)?
            .io
            .into_inner();
        let io = if secure {
            let name = ServerName::try_from(host.trim_start_matches('[').trim_end_matches(']'))
                .map_err(|e| WsError::Connect(Box::new(e)))?
                .to_owned();
            let tls = tokio_rustls::TlsConnector::from(self.common.ws_tls[i].clone())
                .connect(name, tcp)
                .await
                .map_err(|e| WsError::Connect(Box::new(e)))?;
            Either::Right(Box::new(tls))
        } else {
            Either::Left(tcp)
        };
        let (socket, _) = tokio_tungstenite::client_async_with_config(request, io, config)
            .await
            .map_err(WsError::Handshake)?;
        Ok(socket)
    }
}

/// A websocket over TCP, or over TLS over TCP (boxed: rustls's state is
/// large and the socket moves into the relay's task).
pub type Socket = WebSocketStream<WsIo>;
pub type WsIo = Either<TcpStream, Box<tokio_rustls::client::TlsStream<TcpStream>>>;

/// A websocket that could not be opened.
#[derive(Debug)]
pub enum WsError {
    /// No connection: DNS, TCP, the proxy or TLS failed.
    Connect(BoxError),
    /// The handshake failed; `Http` carries a refusal's answer.
    Handshake(tungstenite::Error),
}

impl fmt::Display for WsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WsError::Connect(e) => {
                f.write_str("cannot connect: ")?;
                write_chain(f, e.as_ref())
            }
            WsError::Handshake(e) => write!(f, "websocket handshake failed: {e}"),
        }
    }
}

impl std::error::Error for WsError {}
