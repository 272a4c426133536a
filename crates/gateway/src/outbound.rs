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

// ---- connections ----

/// TCP to a destination, or through its proxy.
#[derive(Clone)]
struct Dialer {
    tcp: HttpConnector,
    proxy: Arc<Matcher>,
}

impl Dialer {
    /// Direct; or a CONNECT tunnel through the proxy for `https://` (and
    /// when `tunnel` is set, for websockets); or, for plain HTTP, a
    /// connection to the proxy itself, marked so that hyper sends requests
    /// in absolute form.
    async fn dial(self, dst: Uri, tunnel: bool) -> Result<Tcp, BoxError> {
        let Some(proxy) = self.proxy.intercept(&dst) else {
            let io = self.tcp.oneshot(dst).await?;
            return Ok(Tcp { io, proxied: false });
        };
        if tunnel || dst.scheme() == Some(&Scheme::HTTPS) {
            let mut connect = Tunnel::new(proxy.uri().clone(), self.tcp);
            if let Some(auth) = proxy.basic_auth() {
                connect = connect.with_auth(auth.clone());
            }
            let io = connect.oneshot(dst).await?;
            return Ok(Tcp { io, proxied: false });
        }
        let io = self.tcp.oneshot(proxy.uri().clone()).await?;
        Ok(Tcp { io, proxied: true })
    }
}

impl tower::Service<Uri> for Dialer {
    type Response = Tcp;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Tcp, BoxError>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        // HttpConnector is always ready; `dial` checks again on its clones.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, dst: Uri) -> Self::Future {
        Box::pin(self.clone().dial(dst, false))
    }
}

/// A TCP connection, to the destination or to a proxy.
struct Tcp {
    io: TokioIo<TcpStream>,
    /// Connected to an HTTP proxy that forwards plain-HTTP requests.
    proxied: bool,
}

impl Connection for Tcp {
    fn connected(&self) -> Connected {
        self.io.connected().proxy(self.proxied)
    }
}

impl hyper::rt::Read for Tcp {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_read(cx, buf)
    }
}

impl hyper::rt::Write for Tcp {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

/// The proxy rules of the settings (values already checked by the config).
fn proxy_matcher(s: &Outbound) -> Matcher {
    fn value(v: &Option<crate::config::Secret>) -> &str {
        v.as_ref().map_or("", |s| s.expose())
    }
    Matcher::builder()
        .http(value(&s.http_proxy))
        .https(value(&s.https_proxy))
        .all(value(&s.all_proxy))
        .no(s.no_proxy.as_deref().unwrap_or(""))
        .build()
}

// ---- trust ----

/// The TLS configuration for one `ssl_verify` setting (without ALPN; the
/// connector adds it):
/// - the platform's roots (rustls-platform-verifier; on Linux the
///   OpenSSL store it finds) plus the certificates of `SSL_CERT_FILE` and
///   `SSL_CERT_DIR`;
/// - `false`: no verification of the server's certificate (the handshake's
///   signatures are still checked);
/// - a CA bundle: its certificates only.
pub fn tls_config(
    verify: &SslVerify,
    extra: &[CertificateDer<'static>],
) -> Result<rustls::ClientConfig, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier: Arc<dyn ServerCertVerifier> = match verify {
        SslVerify::Platform => Arc::new(
            rustls_platform_verifier::Verifier::new_with_extra_roots(
                extra.iter().cloned(),
                provider.clone(),
            )
            .map_err(|e| format!("cannot load the system's TLS roots: {e}"))?,
        ),
        SslVerify::Off => Arc::new(Unverified(provider.clone())),
        SslVerify::Bundle(path) => {
            let mut roots = RootCertStore::empty();
            let (added, _) = roots.add_parsable_certificates(read_pem(path)?);
            if added == 0 {
                return Err(format!(
                    "ssl_verify: {} holds no usable CA certificate",
                    path.display()
                ));
            }
            WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                .build()
                .map_err(|e| format!("ssl_verify: {}: {e}", path.display()))?
        }
    };
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup failed: {e}"))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth())
}

/// The certificates of a PEM file.
fn read_pem(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    CertificateDer::pem_file_iter(path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("cannot read certificates from {}: {e}", path.display()))
}

/// The certificates of `SSL_CERT_FILE` and of the files in `SSL_CERT_DIR`'s
/// directories (files that hold no certificate are skipped, as OpenSSL's
/// hashed directories hold other files too), each once. A variable the
/// platform verifier already reads from the process environment, with the
/// same value, is not read twice.
fn extra_roots(s: &Outbound) -> Result<Vec<CertificateDer<'static>>, String> {
    let mut out = Vec::new();
    let read_by_platform = |name: &str, value: &[PathBuf]| {
        // rustls-native-certs, which the platform verifier uses on Unix
        // systems other than Apple's and Android.
        cfg!(all(
            unix,
            not(target_vendor = "apple"),
            not(target_os = "android")
        )) && std::env::var_os(name).is_some_and(|v| {
            std::env::split_paths(&v)
                .filter(|p| !p.as_os_str().is_empty())
                .eq(value.iter().cloned())
        })
    };
    let file = s
        .ssl_cert_file
        .as_ref()
        .filter(|f| !read_by_platform("SSL_CERT_FILE", std::slice::from_ref(f)));
    if let Some(file) = file {
        let certs = usable(read_pem(file).map_err(|e| format!("SSL_CERT_FILE: {e}"))?);
        if certs.is_empty() {
            return Err(format!(
                "SSL_CERT_FILE: {} holds no usable certificate",
                file.display()
            ));
        }
        out.extend(certs);
    }
    if !s.ssl_cert_dir.is_empty() && !read_by_platform("SSL_CERT_DIR", &s.ssl_cert_dir) {
        let before = out.len();
        for dir in &s.ssl_cert_dir {
            let entries = std::fs::read_dir(dir)
                .map_err(|e| format!("SSL_CERT_DIR: cannot read {}: {e}", dir.display()))?;
            let mut files: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
            files.sort();
            for file in files.iter().filter(|f| f.is_file()) {
                if let Ok(certs) = read_pem(file) {
                    out.extend(usable(certs));
                }
            }
        }
        if out.len() == before {
            return Err("SSL_CERT_DIR: no usable certificate in its directories".to_owned());
        }
    }
    // A directory holds a certificate under its name and its hash, and
    // often the bundle too.
    out.sort_unstable_by(|a, b| a.as_ref().cmp(b.as_ref()));
    out.dedup_by(|a, b| a.as_ref() == b.as_ref());
    Ok(out)
}

/// The certificates a root store accepts as trust anchors.
fn usable(certs: Vec<CertificateDer<'static>>) -> Vec<CertificateDer<'static>> {
    certs
        .into_iter()
        .filter(|c| RootCertStore::empty().add(c.clone()).is_ok())
        .collect()
}

/// `ssl_verify: false`: any certificate is accepted. The handshake's
/// signatures are still checked against the certificate presented, so the
/// session is at least with whoever holds that certificate's key.
#[derive(Debug)]
struct Unverified(Arc<CryptoProvider>);

impl ServerCertVerifier for Unverified {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Use ring for TLS (rustls is built without a default provider, to keep
/// aws-lc and its C toolchain out of the build). Safe to call repeatedly.
pub fn install_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
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
        use rustls::pki_types::PrivateKeyDer;
        install_crypto();
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

    fn fixture(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/fixtures/tls/{name}"))
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

    /// Read one request (head, then content-length bytes) off `socket`;
    /// `None` at the end of the stream.
    async fn read_request<S: tokio::io::AsyncRead + Unpin>(
        socket: &mut S,
        buf: &mut Vec<u8>,
    ) -> Option<String> {
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            let mut chunk = [0u8; 4096];
            match socket.read(&mut chunk).await {
                Ok(0) | Err(_) => return None,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
        let length: usize = head
            .to_ascii_lowercase()
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .map_or(0, |v| v.trim().parse().unwrap());
        while buf.len() < head_end + length {
            let mut chunk = [0u8; 4096];
            match socket.read(&mut chunk).await {
                Ok(0) | Err(_) => return None,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        buf.drain(..head_end + length);
        Some(head)
    }

    /// Answer `ok` to each request on `socket`, then act as `after` says.
    async fn answer<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
        mut socket: S,
        after: After,
    ) {
        let mut buf = Vec::new();
        while read_request(&mut socket, &mut buf).await.is_some() {
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
            }
        }
    }

    /// A server that answers each connection's first request with `wire`,
    /// then closes it.
    async fn answering(wire: &'static [u8]) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/v1/x", listener.local_addr().unwrap());
        tokio::spawn(async move {
            loop {
                let (mut socket, _) = listener.accept().await.unwrap();
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    if read_request(&mut socket, &mut buf).await.is_some() {
                        let _ = socket.write_all(wire).await;
                        let _ = socket.shutdown().await;
                    }
                });
            }
        });
        url
    }

    fn clients(settings: &Outbound, own: &[SslVerify]) -> HttpClient {
        Clients::build(settings, own, 1).unwrap().get().clone()
    }

    fn client() -> HttpClient {
        clients(&Outbound::default(), &[])
    }

    fn post(url: &str) -> Request<Bytes> {
        Request::post(url).body(Bytes::from_static(b"{}")).unwrap()
    }

    async fn body(response: Response<PooledBody>) -> Bytes {
        response.into_body().collect().await.unwrap().to_bytes()
    }

    /// The status and body of one exchange with a server that sends `wire`,
    /// or the first error (sending, or reading the body).
    async fn exchange(wire: &'static [u8]) -> Result<(u16, Bytes), String> {
        let url = answering(wire).await;
        let call = async {
            let response = client()
                .request(post(&url))
                .await
                .map_err(|e| e.to_string())?;
            let status = response.status().as_u16();
            let bytes = response
                .into_body()
                .collect()
                .await
                .map_err(|e| e.to_string())?
                .to_bytes();
            Ok((status, bytes))
        };
        tokio::time::timeout(Duration::from_secs(10), call)
            .await
            .expect("no answer may hang the client")
    }

    #[tokio::test]
    async fn answers_are_framed_by_length_chunks_or_the_close() {
        let got = exchange(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello").await;
        assert_eq!(got.unwrap(), (200, Bytes::from("hello")));
        let chunked = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n\
            5\r\nhello\r\n1;ext=\"x\"\r\n,\r\nA \r\n0123456789\r\n0\r\nx-trailer: 1\r\n\r\n";
        assert_eq!(
            exchange(chunked).await.unwrap(),
            (200, Bytes::from("hello,0123456789"))
        );
        // No length, no chunks: the body runs to the close.
        let got = exchange(b"HTTP/1.1 200 OK\r\n\r\nto the end").await;
        assert_eq!(got.unwrap(), (200, Bytes::from("to the end")));
        // Interim answers are skipped; 204 has no body whatever it says.
        let got = exchange(
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\ncontent-length: 9\r\n\r\n",
        )
        .await;
        assert_eq!(got.unwrap(), (204, Bytes::new()));
    }

    #[tokio::test]
    async fn malformed_and_truncated_answers_are_errors() {
        let bad: &[&'static [u8]] = &[
            b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\ncontent-length: 6\r\n\r\nhello",
            b"HTTP/1.1 200 OK\r\ncontent-length: +5\r\n\r\nhello",
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n",
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nokX\r\n0\r\n\r\n",
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\n",
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n10000000000000000\r\n",
            b"HTTP/1.1 101 Switching Protocols\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nbad header\r\n\r\n",
            b"SSH-2.0-OpenSSH_9.2\r\n",
            // Cut short: inside the head, the body, a chunk, before the last.
            b"HTTP/1.1 200 OK\r\ncontent-le",
            b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhel",
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhel",
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n",
            // Nothing at all.
            b"",
        ];
        for wire in bad {
            let got = exchange(wire).await;
            assert!(
                got.is_err(),
                "{:?} gave {got:?}",
                String::from_utf8_lossy(wire)
            );
        }
    }

    /// hyper reads whitespace after a chunk size byte by byte without
    /// keeping it (the caller's deadline bounds the time), and refuses chunk
    /// extensions past 16 KB.
    #[tokio::test]
    async fn chunk_size_lines_are_bounded() {
        fn line(fill: u8, len: usize) -> &'static [u8] {
            let mut wire = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n1".to_vec();
            if fill == b';' {
                wire.push(b';');
                wire.extend(std::iter::repeat_n(b'x', len));
            } else {
                wire.extend(std::iter::repeat_n(fill, len));
            }
            wire.extend_from_slice(b"\r\nx\r\n0\r\n\r\n");
            Box::leak(wire.into_boxed_slice())
        }
        assert_eq!(
            exchange(line(b' ', 64 * 1024)).await.unwrap(),
            (200, Bytes::from("x"))
        );
        assert!(exchange(line(b';', 64 * 1024)).await.is_err());
    }

    #[tokio::test]
    async fn a_connection_is_reused_once_its_body_has_ended() {
        for after in [After::KeepAlive, After::Chunked] {
            let (url, accepted) = server(after).await;
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
            assert_eq!(body(a).await, "ok");
            assert_eq!(body(b).await, "ok");
            assert_eq!(accepted.load(Ordering::SeqCst), 2);
            let response = http.request(post(&url)).await.unwrap();
            assert_eq!(body(response).await, "ok");
            assert_eq!(accepted.load(Ordering::SeqCst), 2);
        }
    }

    /// Three calls to `url` with a pause after each: every call must have
    /// had a connection of its own.
    async fn each_call_needs_a_new_connection(
        http: &HttpClient,
        url: &str,
        accepted: &AtomicUsize,
    ) {
        for i in 1..=3 {
            let response = http.request(post(url)).await.unwrap();
            assert_eq!(body(response).await, "ok");
            tokio::time::sleep(Duration::from_millis(20)).await;
            assert_eq!(accepted.load(Ordering::SeqCst), i);
        }
    }

    #[tokio::test]
    async fn a_connection_the_server_closed_is_not_used_again() {
        let (url, accepted) = server(After::Close).await;
        each_call_needs_a_new_connection(&client(), &url, &accepted).await;
    }

    #[tokio::test]
    async fn only_a_keep_alive_answer_keeps_its_connection() {
        for wire in [
            &b"HTTP/1.1 200 OK\r\nConnection: keep-alive, Close\r\ncontent-length: 2\r\n\r\nok"[..],
            b"HTTP/1.0 200 OK\r\ncontent-length: 2\r\n\r\nok",
        ] {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let url = format!("http://{}/", listener.local_addr().unwrap());
            let accepted = Arc::new(AtomicUsize::new(0));
            let count = accepted.clone();
            tokio::spawn(async move {
                loop {
                    let (mut socket, _) = listener.accept().await.unwrap();
                    count.fetch_add(1, Ordering::SeqCst);
                    tokio::spawn(async move {
                        let mut buf = Vec::new();
                        // Answers, but leaves closing to the client.
                        while read_request(&mut socket, &mut buf).await.is_some() {
                            let _ = socket.write_all(wire).await;
                        }
                    });
                }
            });
            each_call_needs_a_new_connection(&client(), &url, &accepted).await;
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
        let relative = Request::post("/v1/x").body(Bytes::new()).unwrap();
        let e = http.request(relative).await.unwrap_err();
        assert!(!e.is_connect(), "{e}");
        let unknown = SslVerify::Bundle("/nowhere".into());
        let e = http
            .post(
                Some(&unknown),
                &"http://127.0.0.1/".parse().unwrap(),
                &HeaderBlock::default(),
                [],
                Bytes::new(),
            )
            .await
            .unwrap_err();
        assert!(matches!(e, SendError::NoTrust), "{e}");
    }

    #[tokio::test]
    async fn requests_go_out_in_origin_form_with_one_host() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let read = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut buf = Vec::new();
            let head = read_request(&mut socket, &mut buf).await.unwrap();
            socket
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                .await
                .unwrap();
            head
        });
        let uri: Uri = format!("http://{addr}/v1/x?q=1").parse().unwrap();
        let key = HeaderValue::from_static("Bearer k");
        let fixed = HeaderBlock::new(Some(&uri), [(&header::AUTHORIZATION, &key)]);
        let response = client()
            .post(None, &uri, &fixed, [], Bytes::from_static(b"{}"))
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let head = read.await.unwrap().to_ascii_lowercase();
        assert!(head.starts_with("post /v1/x?q=1 http/1.1\r\n"), "{head}");
        assert_eq!(head.matches("host: ").count(), 1, "{head}");
        assert!(head.contains(&format!("host: {addr}\r\n")), "{head}");
        assert!(head.contains("content-length: 2\r\n"), "{head}");
    }

    #[test]
    fn a_header_block_never_shows_its_values_and_leaves_framing_to_hyper() {
        let key = HeaderValue::from_static("Bearer sk-secret");
        let length = HeaderValue::from_static("9");
        let block = HeaderBlock::new(
            None,
            [
                (&header::AUTHORIZATION, &key),
                (&header::CONTENT_LENGTH, &length),
            ],
        );
        assert_eq!(block.0.len(), 1);
        assert!(!format!("{block:?}").contains("sk-secret"));
        // A configured Host wins over the one the URL gives.
        let host = HeaderValue::from_static("example.org");
        let uri: Uri = "http://127.0.0.1:9/".parse().unwrap();
        let block = HeaderBlock::new(Some(&uri), [(&header::HOST, &host)]);
        assert_eq!(block.0.get_all(header::HOST).iter().count(), 1);
        assert_eq!(block.0[header::HOST], "example.org");
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

    /// Over TLS: refused with the platform's roots, reused connections with
    /// the test CA as `ssl_verify`, accepted with `ssl_verify: false`.
    #[tokio::test]
    async fn over_tls_trust_follows_ssl_verify_and_connections_are_reused() {
        let (url, accepted) = tls_server(After::KeepAlive).await;
        let e = client().request(post(&url)).await.unwrap_err();
        assert!(e.is_connect(), "{e}");
        let bundle = SslVerify::Bundle(fixture("ca.pem"));
        let http = clients(&Outbound::default(), std::slice::from_ref(&bundle));
        let uri: Uri = url.parse().unwrap();
        for _ in 0..3 {
            let response = http
                .post(
                    Some(&bundle),
                    &uri,
                    &HeaderBlock::default(),
                    [],
                    Bytes::new(),
                )
                .await
                .unwrap();
            assert_eq!(body(response).await, "ok");
        }
        assert_eq!(
            accepted.load(Ordering::SeqCst),
            2,
            "one refused, one reused"
        );
        // The gateway-wide setting, as SSL_CERT_FILE and as ssl_verify: false.
        for settings in [
            Outbound {
                ssl_cert_file: Some(fixture("ca.pem")),
                ..Default::default()
            },
            Outbound {
                ssl_verify: SslVerify::Off,
                ..Default::default()
            },
        ] {
            let response = clients(&settings, &[]).request(post(&url)).await.unwrap();
            assert_eq!(body(response).await, "ok");
        }
        // A close (close_notify) is seen on an idle TLS connection too.
        let (url, accepted) = tls_server(After::Close).await;
        let http = clients(
            &Outbound {
                ssl_verify: SslVerify::Off,
                ..Default::default()
            },
            &[],
        );
        each_call_needs_a_new_connection(&http, &url, &accepted).await;
    }

    #[test]
    fn unusable_trust_settings_are_startup_errors() {
        let missing = Outbound {
            ssl_cert_file: Some("/nonexistent/ca.pem".into()),
            ..Default::default()
        };
        assert!(
            Clients::build(&missing, [], 1)
                .unwrap_err()
                .contains("SSL_CERT_FILE")
        );
        let not_pem = Outbound {
            ssl_cert_file: Some(fixture("README.md")),
            ..Default::default()
        };
        assert!(
            Clients::build(&not_pem, [], 1)
                .unwrap_err()
                .contains("SSL_CERT_FILE")
        );
        let key_only = SslVerify::Bundle(fixture("server.key"));
        let e = Clients::build(&Outbound::default(), [&key_only], 1).unwrap_err();
        assert!(e.contains("server.key"), "{e}");
        let dir = Outbound {
            ssl_cert_dir: vec![fixture("")],
            ..Default::default()
        };
        assert!(Clients::build(&dir, [], 1).is_ok(), "ca.pem is in it");
    }
}
