//! Outbound calls against real local servers: a forward/CONNECT proxy, TLS
//! fronts with the test CA (tests/fixtures/tls), an HTTP/2 upstream, and an
//! upstream that closes a reused connection after reading a request.
//!
//! Proxy and CA settings reach the gateway through its `Env` overlay (as
//! `environment_variables` would), never the process environment, so these
//! tests cannot disturb others running beside them.

// Tests: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use common::*;
use gateway::config::Env;
use gateway_mock::aim::{AimMode, AimOptions, MockAim};
use gateway_mock::upstream::{MockUpstream, UpstreamOptions};
use http_body_util::{BodyExt, Full};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const COMPLETION: &str = r#"{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}"#;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/tls")
        .join(name)
}

fn ca() -> String {
    fixture("ca.pem").display().to_string()
}

/// The test server certificate (127.0.0.1 and localhost), offering `alpn`.
fn server_tls(alpn: &[&[u8]]) -> tokio_rustls::TlsAcceptor {
    gateway::install_crypto();
    let certs = CertificateDer::pem_file_iter(fixture("server.pem"))
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(fixture("server.key")).unwrap();
    let mut config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    tokio_rustls::TlsAcceptor::from(Arc::new(config))
}

/// TLS in front of a plain server (HTTP/1.1 by ALPN): counts the
/// connections whose handshake succeeded.
struct TlsFront {
    addr: SocketAddr,
    handshakes: Arc<AtomicUsize>,
}

impl TlsFront {
    async fn start(backend: SocketAddr) -> TlsFront {
        let tls = server_tls(&[b"http/1.1"]);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let handshakes = Arc::new(AtomicUsize::new(0));
        let count = handshakes.clone();
        tokio::spawn(async move {
            loop {
                let (socket, _) = listener.accept().await.unwrap();
                let (tls, count) = (tls.clone(), count.clone());
                tokio::spawn(async move {
                    let Ok(mut client) = tls.accept(socket).await else {
                        return;
                    };
                    count.fetch_add(1, Ordering::SeqCst);
                    let mut server = TcpStream::connect(backend).await.unwrap();
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                });
            }
        });
        TlsFront { addr, handshakes }
    }

    fn url(&self, host: &str) -> String {
        format!("https://{host}:{}", self.addr.port())
    }

    fn handshakes(&self) -> usize {
        self.handshakes.load(Ordering::SeqCst)
    }
}

/// What the proxy saw on each connection: the first request line and its
/// `Proxy-Authorization`.
type Seen = Arc<Mutex<Vec<(String, Option<String>)>>>;

/// A forward proxy: CONNECT tunnels, and plain-HTTP requests in absolute
/// form relayed to their host.
struct Proxy {
    addr: SocketAddr,
    seen: Seen,
}

impl Proxy {
    async fn start() -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Seen::default();
        let record = seen.clone();
        tokio::spawn(async move {
            loop {
                let (socket, _) = listener.accept().await.unwrap();
                tokio::spawn(relay(socket, record.clone()));
            }
        });
        Proxy { addr, seen }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn seen(&self) -> Vec<(String, Option<String>)> {
        self.seen.lock().unwrap().clone()
    }

    /// How many tunnels it opened to `addr`.
    fn tunnels_to(&self, addr: SocketAddr) -> usize {
        let line = format!("CONNECT {addr} HTTP/1.1");
        self.seen().iter().filter(|(l, _)| *l == line).count()
    }
}

async fn relay(mut client: TcpStream, seen: Seen) {
    let mut buf = Vec::new();
    let end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let mut chunk = [0u8; 4096];
        match client.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    let line = head.lines().next().unwrap_or_default().to_owned();
    let auth = head.lines().find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.eq_ignore_ascii_case("proxy-authorization")
            .then(|| value.trim().to_owned())
    });
    seen.lock().unwrap().push((line.clone(), auth));
    let mut parts = line.split(' ');
    let (method, target) = (parts.next().unwrap(), parts.next().unwrap());
    if method == "CONNECT" {
        let Ok(mut server) = TcpStream::connect(target).await else {
            let _ = client.write_all(b"HTTP/1.1 502 Bad Gateway\r\n\r\n").await;
            return;
        };
        client
            .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
            .await
            .unwrap();
        server.write_all(&buf[end..]).await.unwrap();
        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
    } else {
        let authority = target
            .strip_prefix("http://")
            .and_then(|t| t.split('/').next())
            .expect("absolute form");
        let mut server = TcpStream::connect(authority).await.unwrap();
        server.write_all(&buf).await.unwrap();
        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
    }
}

fn chat_body(stream: bool) -> Value {
    json!({
        "model": "gpt-3.5-turbo",
        "messages": [{"role": "user", "content": "hello over the wire"}],
        "stream": stream,
    })
}

/// One model `gpt-3.5-turbo` at `api_base`, with `params` (indented 6)
/// under its litellm_params.
fn model_with(api_base: &str, params: &str) -> String {
    format!(
        "model_list:\n  - model_name: gpt-3.5-turbo\n    litellm_params:\n      model: openai/gpt-3.5-turbo\n      api_base: {api_base}\n      api_key: sk-upstream\n{params}"
    )
}

/// An Aim guardrail `aim` at `api_base` in `mode`, default on.
fn aim_guardrail(api_base: &str, mode: &str, params: &str) -> String {
    format!(
        "guardrails:\n  - guardrail_name: aim\n    litellm_params:\n      guardrail: aim\n      mode: {mode}\n      api_key: aim-mock-key\n      api_base: {api_base}\n      default_on: true\n{params}"
    )
}

async fn upstream() -> MockUpstream {
    MockUpstream::start(UpstreamOptions::default()).await
}

async fn aim() -> MockAim {
    MockAim::start(AimOptions {
        mode: AimMode::Pass,
        ..Default::default()
    })
    .await
}

#[tokio::test]
async fn a_tls_upstream_with_an_unknown_ca_is_refused() {
    let up = upstream().await;
    let front = TlsFront::start(up.addr()).await;
    let gw = gateway(&model_with(&format!("{}/v1", front.url("127.0.0.1")), "")).await;
    let resp = chat(&gw, &chat_body(false)).await;
    assert_eq!(resp.status(), 502);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["type"], "upstream_error");
    assert_eq!(up.request_count(), 0);
    assert_eq!(front.handshakes(), 0);
}

#[tokio::test]
async fn ssl_cert_file_adds_the_test_ca() {
    let up = upstream().await;
    let front = TlsFront::start(up.addr()).await;
    let env = Env::default().with("SSL_CERT_FILE", ca());
    let yaml = model_with(&format!("{}/v1", front.url("localhost")), "");
    let gw = gateway_with_env(&yaml, &env).await;
    for _ in 0..3 {
        let resp = chat(&gw, &chat_body(false)).await;
        assert_eq!(resp.status(), 200);
    }
    assert_eq!(up.request_count(), 3);
    assert_eq!(front.handshakes(), 1, "one connection, reused");
}

#[tokio::test]
async fn ssl_verify_false_or_a_bundle_per_deployment() {
    let up = upstream().await;
    let front = TlsFront::start(up.addr()).await;
    let base = format!("{}/v1", front.url("127.0.0.1"));
    for params in [
        "      ssl_verify: false\n".to_owned(),
        "      ssl_verify: \"False\"\n".to_owned(),
        format!("      ssl_verify: {}\n", ca()),
    ] {
        let gw = gateway(&model_with(&base, &params)).await;
        let resp = chat(&gw, &chat_body(false)).await;
        assert_eq!(resp.status(), 200, "{params}");
    }
    // The gateway-wide setting, from litellm_settings and from SSL_VERIFY.
    let yaml = format!(
        "{}litellm_settings:\n  ssl_verify: false\n",
        model_with(&base, "")
    );
    assert_eq!(
        chat(&gateway(&yaml).await, &chat_body(false))
            .await
            .status(),
        200
    );
    let env = Env::default().with("SSL_VERIFY", "false");
    let gw = gateway_with_env(&model_with(&base, ""), &env).await;
    assert_eq!(chat(&gw, &chat_body(false)).await.status(), 200);
    // A deployment's own setting wins over the gateway-wide one.
    let yaml = format!(
        "{}litellm_settings:\n  ssl_verify: false\n",
        model_with(&base, "      ssl_verify: true\n")
    );
    assert_eq!(
        chat(&gateway(&yaml).await, &chat_body(false))
            .await
            .status(),
        502
    );
    assert_eq!(up.request_count(), 5);
}

/// Analyze calls and the streaming websocket of a guardrail share its
/// `ssl_verify`.
#[tokio::test]
async fn a_guardrails_ssl_verify_covers_http_and_the_websocket() {
    let up = upstream().await;
    let aim = aim().await;
    let front = TlsFront::start(aim.addr()).await;
    let aim_base = front.url("127.0.0.1");
    for (params, ok) in [
        (String::new(), false),
        (format!("      ssl_verify: {}\n", ca()), true),
    ] {
        aim.reset();
        let yaml = format!(
            "{}{}",
            model_with(&up.url(), ""),
            aim_guardrail(&aim_base, "[pre_call, post_call]", &params)
        );
        let gw = gateway(&yaml).await;
        let resp = chat(&gw, &chat_body(false)).await;
        assert_eq!(resp.status().is_success(), ok, "{params}");
        let resp = chat(&gw, &chat_body(true)).await;
        let status = resp.status();
        let text = resp.text().await.unwrap();
        assert_eq!(status.is_success(), ok, "{params}: {text}");
        if ok {
            assert_eq!(sse_data(&text).last().map(String::as_str), Some("[DONE]"));
            assert_eq!(aim.streams().len(), 1, "the websocket went over TLS");
        }
    }
}

#[tokio::test]
async fn http2_is_used_where_the_upstream_offers_it() {
    let tls = server_tls(&[b"h2", b"http/1.1"]);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let versions = Arc::new(Mutex::new(Vec::new()));
    let connections = Arc::new(AtomicUsize::new(0));
    let (seen, count) = (versions.clone(), connections.clone());
    tokio::spawn(async move {
        loop {
            let (socket, _) = listener.accept().await.unwrap();
            let Ok(socket) = tls.accept(socket).await else {
                continue;
            };
            count.fetch_add(1, Ordering::SeqCst);
            let seen = seen.clone();
            let service =
                hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let seen = seen.clone();
                    async move {
                        let version = req.version();
                        let path = req.uri().path().to_owned();
                        let body = req.into_body().collect().await?.to_bytes();
                        seen.lock().unwrap().push((version, path, body));
                        Ok::<_, hyper::Error>(
                            hyper::Response::builder()
                                .header("content-type", "application/json")
                                .body(Full::new(Bytes::from_static(COMPLETION.as_bytes())))
                                .unwrap(),
                        )
                    }
                });
            tokio::spawn(
                hyper::server::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
                    .serve_connection(hyper_util::rt::TokioIo::new(socket), service),
            );
        }
    });
    let env = Env::default().with("SSL_CERT_FILE", ca());
    let gw = gateway_with_env(
        &model_with(&format!("https://localhost:{}/v1", addr.port()), ""),
        &env,
    )
    .await;
    // The first call opens the connection (a burst before it is up would
    // open one each: until ALPN answers, the pool cannot know it will be
    // shared); the others share it.
    assert_eq!(chat(&gw, &chat_body(false)).await.status(), 200);
    let body = chat_body(false);
    let calls = (0..8).map(|_| chat(&gw, &body));
    for resp in futures_util::future::join_all(calls).await {
        assert_eq!(resp.status(), 200);
        assert_eq!(
            resp.json::<Value>().await.unwrap()["choices"][0]["message"]["content"],
            "hi"
        );
    }
    let versions = versions.lock().unwrap().clone();
    assert_eq!(versions.len(), 9);
    for (version, path, body) in &versions {
        assert_eq!(*version, hyper::Version::HTTP_2);
        assert_eq!(path, "/v1/chat/completions");
        let sent: Value = serde_json::from_slice(body).unwrap();
        assert_eq!(sent["messages"][0]["content"], "hello over the wire");
    }
    assert_eq!(
        connections.load(Ordering::SeqCst),
        1,
        "one connection, multiplexed"
    );
}

/// HTTPS_PROXY: the upstream, Aim's analyze calls and Aim's websocket all
/// go through CONNECT tunnels (with the proxy's credentials), and every
/// connection the TLS fronts accepted came through the proxy.
#[tokio::test]
async fn https_destinations_and_the_websocket_tunnel_through_the_proxy() {
    let proxy = Proxy::start().await;
    let up = upstream().await;
    let aim = aim().await;
    let (up_front, aim_front) = (
        TlsFront::start(up.addr()).await,
        TlsFront::start(aim.addr()).await,
    );
    let proxy_url = format!("http://user:secret@{}", proxy.addr);
    let env = Env::default()
        .with("HTTPS_PROXY", proxy_url)
        .with("SSL_CERT_FILE", ca());
    let yaml = format!(
        "{}{}",
        model_with(&format!("{}/v1", up_front.url("127.0.0.1")), ""),
        aim_guardrail(&aim_front.url("127.0.0.1"), "[pre_call, post_call]", "")
    );
    let gw = gateway_with_env(&yaml, &env).await;
    assert_eq!(chat(&gw, &chat_body(false)).await.status(), 200);
    let resp = chat(&gw, &chat_body(true)).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        sse_data(&resp.text().await.unwrap())
            .last()
            .map(String::as_str),
        Some("[DONE]")
    );
    assert_eq!(up.request_count(), 2);
    assert_eq!(aim.requests().len(), 3, "pre_call twice, post_call once");
    assert_eq!(aim.streams().len(), 1, "one websocket");
    assert_eq!(proxy.tunnels_to(up_front.addr), up_front.handshakes());
    assert_eq!(proxy.tunnels_to(aim_front.addr), aim_front.handshakes());
    assert!(up_front.handshakes() >= 1);
    assert!(
        aim_front.handshakes() >= 2,
        "the analyze connection and the websocket"
    );
    for (line, auth) in proxy.seen() {
        assert!(line.starts_with("CONNECT "), "{line}");
        assert_eq!(auth.as_deref(), Some("Basic dXNlcjpzZWNyZXQ="), "{line}");
    }
}

/// HTTP_PROXY: plain-HTTP calls go to the proxy in absolute form (with its
/// credentials), the Aim websocket (ws://) through a CONNECT tunnel.
#[tokio::test]
async fn plain_http_goes_to_the_proxy_and_the_websocket_tunnels() {
    let proxy = Proxy::start().await;
    let up = upstream().await;
    let aim = aim().await;
    let env = Env::default().with("http_proxy", format!("http://user:secret@{}", proxy.addr));
    let yaml = format!(
        "{}{}",
        model_with(&up.url(), ""),
        aim_guardrail(&aim.url(), "[pre_call, post_call]", "")
    );
    let gw = gateway_with_env(&yaml, &env).await;
    let resp = chat(&gw, &chat_body(true)).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        sse_data(&resp.text().await.unwrap())
            .last()
            .map(String::as_str),
        Some("[DONE]")
    );
    assert_eq!(aim.streams().len(), 1);
    let seen = proxy.seen();
    let lines: Vec<&str> = seen.iter().map(|(l, _)| l.as_str()).collect();
    assert!(
        lines.contains(&format!("POST {}/chat/completions HTTP/1.1", up.url()).as_str()),
        "{lines:?}"
    );
    assert!(
        lines.contains(&format!("POST {}/fw/v1/analyze HTTP/1.1", aim.url()).as_str()),
        "{lines:?}"
    );
    assert!(
        lines.contains(&format!("CONNECT {} HTTP/1.1", aim.addr()).as_str()),
        "{lines:?}"
    );
    assert!(
        seen.iter()
            .all(|(_, a)| a.as_deref() == Some("Basic dXNlcjpzZWNyZXQ="))
    );
}

#[tokio::test]
async fn no_proxy_hosts_are_reached_directly() {
    let proxy = Proxy::start().await;
    let up = upstream().await;
    let aim = aim().await;
    let env = Env::default()
        .with("ALL_PROXY", proxy.url())
        .with("no_proxy", "example.com, localhost");
    // The upstream by a name NO_PROXY lists, Aim by one it does not.
    let up_base = format!("http://localhost:{}/v1", up.addr().port());
    let yaml = format!(
        "{}{}",
        model_with(&up_base, ""),
        aim_guardrail(&aim.url(), "pre_call", "")
    );
    let gw = gateway_with_env(&yaml, &env).await;
    assert_eq!(chat(&gw, &chat_body(false)).await.status(), 200);
    assert_eq!(up.request_count(), 1);
    let lines: Vec<String> = proxy.seen().into_iter().map(|(l, _)| l).collect();
    assert_eq!(
        lines,
        [format!("POST {}/fw/v1/analyze HTTP/1.1", aim.url())]
    );
}

#[tokio::test]
async fn a_proxy_url_that_cannot_be_used_is_a_startup_error() {
    for (name, value) in [
        ("HTTPS_PROXY", "https://proxy.example:3128"),
        ("ALL_PROXY", "socks5://proxy.example:1080"),
        ("HTTP_PROXY", "http://"),
    ] {
        let env = Env::default().with(name, value);
        let e = gateway::config::parse(&model_with("http://127.0.0.1:9/v1", ""), &env).unwrap_err();
        assert_eq!(e.errors.len(), 1, "{e}");
        assert_eq!(e.errors[0].path, name);
    }
}

/// Read one request off `socket` (head, then content-length bytes): its
/// body, or `None` at the end of the stream.
async fn read_request(socket: &mut TcpStream, buf: &mut Vec<u8>) -> Option<Vec<u8>> {
    let end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let mut chunk = [0u8; 4096];
        match socket.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .map_or(0, |v| v.trim().parse().unwrap());
    while buf.len() < end + length {
        let mut chunk = [0u8; 4096];
        match socket.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let body = buf[end..end + length].to_vec();
    buf.drain(..end + length);
    Some(body)
}

/// An upstream that answers the first request on each connection, then
/// reads the next one whole and closes the connection without an answer.
/// Returns its base URL and the bodies it received.
async fn closing_upstream() -> (String, Arc<Mutex<Vec<Vec<u8>>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let record = bodies.clone();
    tokio::spawn(async move {
        loop {
            let (mut socket, _) = listener.accept().await.unwrap();
            let record = record.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                for answered in [true, false] {
                    let Some(body) = read_request(&mut socket, &mut buf).await else {
                        return;
                    };
                    record.lock().unwrap().push(body);
                    if answered {
                        let head = format!(
                            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
                            COMPLETION.len()
                        );
                        socket.write_all(head.as_bytes()).await.unwrap();
                        socket.write_all(COMPLETION.as_bytes()).await.unwrap();
                    }
                }
            });
        }
    });
    (url, bodies)
}

/// A request the upstream may have acted on is not sent again by the
/// transport: it fails, and only the router's configured retries resend it,
/// counted in `x-litellm-attempted-retries`.
#[tokio::test]
async fn a_request_is_never_sent_twice_by_the_transport() {
    let (url, bodies) = closing_upstream().await;
    let gw = gateway(&model_with(&url, "")).await;
    let mut first = chat_body(false);
    first["messages"][0]["content"] = json!("first");
    assert_eq!(chat(&gw, &first).await.status(), 200);
    let mut second = chat_body(false);
    second["messages"][0]["content"] = json!("second");
    let resp = chat(&gw, &second).await;
    assert_eq!(resp.status(), 502);
    assert_eq!(header(&resp, "x-litellm-attempted-retries"), Some("0"));
    let seen: Vec<Value> = bodies
        .lock()
        .unwrap()
        .iter()
        .map(|b| serde_json::from_slice(b).unwrap())
        .collect();
    assert_eq!(seen.len(), 2, "the second body arrived exactly once");
    assert_eq!(seen[1]["messages"][0]["content"], "second");

    // With a retry configured, the router sends it again, and says so.
    let (url, bodies) = closing_upstream().await;
    let yaml = format!(
        "{}router_settings:\n  num_retries: 1\n",
        model_with(&url, "")
    );
    let gw = gateway(&yaml).await;
    assert_eq!(chat(&gw, &first).await.status(), 200);
    let resp = chat(&gw, &second).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, "x-litellm-attempted-retries"), Some("1"));
    assert_eq!(bodies.lock().unwrap().len(), 3);
}
