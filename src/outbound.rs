//! The outbound HTTP client for upstreams and guardrails: hyper's pooled
//! client (the one reqwest wraps) over rustls with the platform's roots.
//!
//! Used directly because reqwest's per-request work (parsing the URL twice,
//! its redirect and retry layers) was about a third of the gateway's
//! instructions per proxied request. Timeouts are the caller's
//! (`tokio::time`), so every await here is bounded by the request's deadline.
//!
//! One client per worker thread ([`Clients`]): a connection is opened, used
//! and kept by the thread that needs it.

use std::cell::Cell;
use std::time::Duration;

use axum::http::{HeaderValue, Request, Response, Uri};
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use rustls_platform_verifier::ConfigVerifierExt;

pub type HttpClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

thread_local! {
    /// The worker this thread serves as (0 outside worker threads).
    static WORKER: Cell<usize> = const { Cell::new(0) };
}

/// Mark the current thread as worker `i`, so it uses client `i`.
pub fn set_worker(i: usize) {
    WORKER.with(|w| w.set(i));
}

/// The `Host` header for requests to `uri`: `host`, with `:port` when the
/// port is not the scheme's default (what the client would otherwise build
/// with a `format!` on every request).
pub fn host_header(uri: &Uri) -> Option<HeaderValue> {
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
                Client::builder(TokioExecutor::new())
                    .pool_idle_timeout(Duration::from_secs(90))
                    .pool_max_idle_per_host(1024)
                    .pool_timer(TokioTimer::new())
                    .build(https)
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
    ) -> Result<Response<Incoming>, hyper_util::client::legacy::Error> {
        self.get().request(request).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
