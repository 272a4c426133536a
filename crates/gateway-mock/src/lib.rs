//! Mock servers used by the tests, the benchmark and the quickstart.
//!
//! Each mock is a real HTTP (and, for Aim, websocket) server on its own port,
//! speaking the documented wire contract and recording what it received so a
//! test can assert what the gateway sent.
//!
//! # Layout
//!
//! - [`upstream`]: an OpenAI-compatible chat completions server (echo or fixed
//!   replies, streaming, injected failures).
//! - [`anthropic`]: Anthropic's Messages API (JSON and SSE, tool use,
//!   thinking, errors), on its own port or mounted on [`upstream`].
//! - [`aim`]: the Aim Security guardrail API (`/fw/v1/analyze` over HTTP and
//!   `/fw/v1/analyze/stream` over websocket), contract in `docs/spec/aim.md`.
//! - this module: what both share: [`Recorded`], the capped record log and
//!   the accept loop that lets a mock be stopped by dropping its handle.
//!
//! Every mock also answers a control API under `/__mock/` (requests, options,
//! reset) so out-of-process users (a Python test, the benchmark) can drive it.

pub mod aim;
pub mod anthropic;
pub mod upstream;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

use axum::Router;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use serde::{Serialize, Serializer};
use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinSet;

/// How many records (requests, streams) a mock keeps; older ones are dropped
/// so a long benchmark does not grow memory.
pub const RECORD_CAP: usize = 10_000;

/// One HTTP request a mock received, with what it answered.
#[derive(Clone, Debug, Serialize)]
pub struct Recorded {
    /// `GET`, `POST`, ...
    pub method: String,
    /// The request path, without the query string.
    pub path: String,
    /// Header names lowercased, in the order they arrived.
    pub headers: Vec<(String, String)>,
    /// The request body as received (serialized as a UTF-8 string).
    #[serde(serialize_with = "lossy_str")]
    pub body: Bytes,
    /// The bytes the mock sent back; for a stream, every frame appended as it
    /// was sent, so a test can compare the gateway's output byte for byte.
    #[serde(serialize_with = "lossy_str")]
    pub response_body: Vec<u8>,
}

impl Recorded {
    /// The first value of a header, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The request body parsed as JSON; `Null` when it is not valid JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }

    /// The response body parsed as JSON; `Null` when it is not valid JSON
    /// (a stream, for example).
    pub fn response_json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.response_body).unwrap_or(serde_json::Value::Null)
    }
}

fn lossy_str<S: Serializer, B: AsRef<[u8]>>(bytes: &B, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&String::from_utf8_lossy(bytes.as_ref()))
}

/// Locks a mutex, ignoring poisoning: a panicking handler must not take the
/// whole mock down with it, and every critical section leaves data valid.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

pub(crate) fn read<T>(l: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|e| e.into_inner())
}

pub(crate) fn write<T>(l: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|e| e.into_inner())
}

/// A recorded request whose response is still being written.
///
/// The log holds it behind an `Arc` so a stream can append the frames it
/// sends while `requests()` can already see the request.
pub(crate) struct Entry {
    request: Recorded,
    response: Mutex<Vec<u8>>,
}

impl Entry {
    pub(crate) fn append(&self, bytes: &[u8]) {
        lock(&self.response).extend_from_slice(bytes);
    }

    fn snapshot(&self) -> Recorded {
        let mut r = self.request.clone();
        r.response_body = lock(&self.response).clone();
        r
    }
}

/// The most recent [`RECORD_CAP`] requests of one mock.
#[derive(Default)]
pub(crate) struct RequestLog {
    entries: Mutex<VecDeque<Arc<Entry>>>,
}

impl RequestLog {
    /// Records a request and returns the handle its response is appended to.
    pub(crate) fn push(
        &self,
        method: &axum::http::Method,
        path: &str,
        headers: &HeaderMap,
        body: Bytes,
    ) -> Arc<Entry> {
        let entry = Arc::new(Entry {
            request: Recorded {
                method: method.as_str().to_owned(),
                path: path.to_owned(),
                headers: header_pairs(headers),
                body,
                response_body: Vec::new(),
            },
            response: Mutex::new(Vec::new()),
        });
        push_capped(&self.entries, entry.clone());
        entry
    }

    pub(crate) fn snapshot(&self) -> Vec<Recorded> {
        // Clone the handles first so building the copies does not hold the
        // log lock against request handlers.
        let entries: Vec<Arc<Entry>> = lock(&self.entries).iter().cloned().collect();
        entries.iter().map(|e| e.snapshot()).collect()
    }

    pub(crate) fn clear(&self) {
        lock(&self.entries).clear();
    }
}

pub(crate) fn push_capped<T>(log: &Mutex<VecDeque<T>>, item: T) {
    let mut log = lock(log);
    if log.len() >= RECORD_CAP {
        log.pop_front();
    }
    log.push_back(item);
}

/// Header names (already lowercase in `http`) and values, in arrival order.
pub(crate) fn header_pairs(headers: &HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_owned(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect()
}

/// A response with a JSON body already serialized.
pub(crate) fn json_response(status: StatusCode, body: impl Into<Bytes>) -> Response {
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body.into(),
    )
        .into_response()
}

/// Serializes a value that cannot fail to serialize (plain structs, `Value`).
pub(crate) fn to_json<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).unwrap_or_default()
}

/// A running server. Dropping it stops the server: the listener closes and
/// every open connection (hung requests, stalled streams, websockets) is cut.
pub(crate) struct ServerHandle {
    addr: SocketAddr,
    _stop: oneshot::Sender<()>,
}

impl ServerHandle {
    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }
}

/// Binds `addr` and serves `app` on a spawned task until the handle drops.
///
/// `app` is built from a receiver that reports the shutdown, for work the
/// server cannot abort itself (axum runs websocket sessions on their own
/// tasks).
pub(crate) async fn spawn_server(
    addr: SocketAddr,
    app: impl FnOnce(watch::Receiver<()>) -> Router,
) -> std::io::Result<ServerHandle> {
    let listener = TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    let (stop_tx, stop_rx) = oneshot::channel();
    let (closed_tx, closed_rx) = watch::channel(());
    let app = app(closed_rx);
    tokio::spawn(accept_loop(listener, app, stop_rx, closed_tx));
    Ok(ServerHandle {
        addr,
        _stop: stop_tx,
    })
}

/// Our own accept loop rather than `axum::serve`: a mock must be able to stop
/// while requests hang forever, which graceful shutdown would wait for.
async fn accept_loop(
    listener: TcpListener,
    app: Router,
    mut stop: oneshot::Receiver<()>,
    closed: watch::Sender<()>,
) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            _ = &mut stop => break,
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else {
                    // Out of file descriptors and the like: back off briefly
                    // rather than spin.
                    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let service = TowerToHyperService::new(app.clone());
                connections.spawn(async move {
                    let _ = hyper::server::conn::http1::Builder::new()
                        .timer(TokioTimer::new())
                        .serve_connection(TokioIo::new(stream), service)
                        .with_upgrades()
                        .await;
                });
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    // Dropping the set aborts every connection task; dropping `closed` ends
    // the websocket sessions.
    connections.abort_all();
    drop(closed);
}

/// Unix time in seconds, for `created` fields.
pub(crate) fn unix_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Byte ranges of the e-mail addresses (`local@domain.tld`) in `text`, in
/// order. A deliberately small scanner: ASCII local parts and domains, a
/// top-level domain of at least two letters.
pub fn find_emails(text: &str) -> Vec<std::ops::Range<usize>> {
    fn local_char(b: u8) -> bool {
        b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'%' | b'+' | b'-')
    }
    fn domain_char(b: u8) -> bool {
        b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-')
    }
    let bytes = text.as_bytes();
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(at) = bytes[from..]
        .iter()
        .position(|&b| b == b'@')
        .map(|i| i + from)
    {
        let mut start = at;
        while start > from && local_char(bytes[start - 1]) {
            start -= 1;
        }
        while start < at && bytes[start] == b'.' {
            start += 1;
        }
        let mut end = at + 1;
        while end < bytes.len() && domain_char(bytes[end]) {
            end += 1;
        }
        // A sentence may end right after the address.
        while end > at + 1 && matches!(bytes[end - 1], b'.' | b'-') {
            end -= 1;
        }
        let domain = &text[at + 1..end];
        let valid_domain = domain.split('.').all(|label| !label.is_empty())
            && domain.rsplit_once('.').is_some_and(|(_, tld)| {
                tld.len() >= 2 && tld.bytes().all(|b| b.is_ascii_alphabetic())
            });
        if start < at && valid_domain {
            found.push(start..end);
            from = end;
        } else {
            from = at + 1;
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::find_emails;

    fn emails(text: &str) -> Vec<&str> {
        find_emails(text).into_iter().map(|r| &text[r]).collect()
    }

    #[test]
    fn finds_addresses() {
        assert_eq!(
            emails("hi my email is ishaan@berri.ai"),
            ["ishaan@berri.ai"]
        );
        assert_eq!(emails("a.b+c@x-y.example.com."), ["a.b+c@x-y.example.com"]);
        assert_eq!(emails("<a@b.io>, c@d.org"), ["a@b.io", "c@d.org"]);
        assert_eq!(emails("é a@b.fr é"), ["a@b.fr"]);
    }

    #[test]
    fn ignores_non_addresses() {
        assert!(emails("@ foo@ @bar.com a@b a@b.c a@.com a@b..com x@1.23").is_empty());
    }
}
