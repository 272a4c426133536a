//! The outbound client's unit tests: hyper's behaviour through ours.

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

async fn serve(after: After, tls: Option<tokio_rustls::TlsAcceptor>) -> (String, Arc<AtomicUsize>) {
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
async fn each_call_needs_a_new_connection(http: &HttpClient, url: &str, accepted: &AtomicUsize) {
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
