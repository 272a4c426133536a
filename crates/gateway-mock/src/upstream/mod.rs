//! The mock OpenAI-compatible upstream: `POST /v1/chat/completions` (and
//! `/chat/completions`), `GET /v1/models`, plus the control API.
//!
//! It echoes the last message (or answers a fixed reply), streams it as SSE
//! in a chosen number of chunks, and can be told to fail in the ways real
//! providers do: an error status, a hang, a stream that stalls or is cut, a
//! context-length or content-policy 400, or in the ways a broken or hostile
//! one might: an SSE event that never ends, a body sent in two halves far
//! apart. It counts requests, in-flight
//! requests and streams the client dropped, so tests can check that the
//! gateway cancels upstream work.
//!
//! Control API: `GET /__mock/requests`, `GET|POST /__mock/options`,
//! `POST /__mock/reset`, `GET /__mock/stats`.

mod chat;
mod reply;
mod request;

use chat::*;
use reply::*;
use request::*;

use std::borrow::Cow;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::Response;
use axum::routing::{get, post};
use bytes::Bytes;
use futures_util::stream;
use serde::{Deserialize, Serialize};

use super::{Entry, Recorded, RequestLog, ServerHandle, json_response, spawn_server, to_json};

/// Largest request body the mock reads.
const BODY_LIMIT: usize = 64 << 20;

/// How the mock upstream answers. Every field has a default, so `{}` is a
/// valid options body on `POST /__mock/options`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct UpstreamOptions {
    /// `None`: echo mode, the reply is the text of the last message (its
    /// string content, or its text parts joined with `"\n"`). `Some(t)`:
    /// always `t`.
    pub reply: Option<String>,
    /// Content chunks in a stream; 0 means the default, 3.
    pub chunks: usize,
    /// Delay before the response head, in milliseconds.
    pub latency_ms: u64,
    /// Delay between stream frames, in milliseconds.
    pub chunk_interval_ms: u64,
    /// Non-streaming answers: send the first half of the body, pause this
    /// many milliseconds, then send the rest (0: the body at once). Keeps a
    /// body half-read by its client for that long.
    pub body_pause_ms: u64,
    /// A failure to inject instead of the normal answer.
    pub failure: Option<Failure>,
    /// The failure applies only to the first K chat requests after these
    /// options were set (or the mock reset); `None`: to every request.
    pub fail_first: Option<usize>,
    /// Non-streaming: answer 200 with exactly this body (JSON text, sent
    /// byte for byte, whatever it says) instead of building a completion.
    pub completion: Option<String>,
    /// Streaming: send exactly these `data:` payloads (JSON text, byte for
    /// byte, whatever they say), each as one event, then `data: [DONE]`,
    /// instead of building chunks.
    pub stream_chunks: Option<Vec<String>>,
    /// Keep a record of each request; the benchmark turns it off.
    pub record: bool,
}

impl Default for UpstreamOptions {
    fn default() -> Self {
        Self {
            reply: None,
            completion: None,
            stream_chunks: None,
            chunks: 0,
            latency_ms: 0,
            chunk_interval_ms: 0,
            body_pause_ms: 0,
            failure: None,
            fail_first: None,
            record: true,
        }
    }
}

/// A failure the mock upstream injects.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Failure {
    /// Answer with this status and body (`content-type: application/json`),
    /// plus a `retry-after` header when set.
    Status {
        status: u16,
        body: String,
        #[serde(default)]
        retry_after: Option<u64>,
    },
    /// Accept the request and never answer.
    Hang,
    /// Send the response head and the first N data frames of the stream, then
    /// stall forever with the connection open. A non-streaming request gets
    /// the head and a body that never comes.
    StallAfter { chunks: usize },
    /// Send the response head and the first N data frames, then abort the
    /// body with an error (the connection is cut mid-body). A non-streaming
    /// request gets the head and an aborted body.
    CloseAfter { chunks: usize },
    /// A stream whose event never ends: the stream's `data:` lines without
    /// the blank line that ends an SSE event, over and over (with
    /// `chunk_interval_ms` between them), never `[DONE]`. A non-streaming
    /// request gets the completion followed by spaces that never end.
    EndlessEvent,
    /// 400 `context_length_exceeded`, as OpenAI sends it.
    ContextLength,
    /// 400 `content_policy_violation`, as OpenAI sends it.
    ContentPolicy,
}

const CONTEXT_LENGTH_BODY: &str = r#"{"error":{"message":"This model's maximum context length is 4097 tokens. However, your messages resulted in 5000 tokens. Please reduce the length of the messages.","type":"invalid_request_error","param":"messages","code":"context_length_exceeded"}}"#;
const CONTENT_POLICY_BODY: &str = r#"{"error":{"message":"Your request was rejected as a result of our safety system. Your prompt may contain text that is not allowed by our safety system.","type":"invalid_request_error","param":null,"code":"content_policy_violation"}}"#;
const MODELS_BODY: &str = r#"{"object":"list","data":[{"id":"mock-model","object":"model","created":0,"owned_by":"gateway-mock"}]}"#;
const DONE_FRAME: &[u8] = b"data: [DONE]\n\n";

/// A running mock upstream. Dropping it (or [`MockUpstream::shutdown`]) stops
/// the server and cuts its open connections.
pub struct MockUpstream {
    shared: Arc<Shared>,
    server: ServerHandle,
}

struct Shared {
    /// Read once per request; the `Arc` lets a request keep the options it
    /// started with without holding the lock.
    options: RwLock<Arc<UpstreamOptions>>,
    log: RequestLog,
    /// Chat requests since start or reset; also numbers the completion ids.
    requests: AtomicUsize,
    /// Requests that reached the failure decision since the options were set,
    /// for `fail_first`.
    since_options: AtomicUsize,
    in_flight: AtomicUsize,
    cancelled: AtomicUsize,
    completed: AtomicUsize,
}

impl Shared {
    fn options(&self) -> Arc<UpstreamOptions> {
        super::read(&self.options).clone()
    }

    fn set_options(&self, opts: UpstreamOptions) {
        *super::write(&self.options) = Arc::new(opts);
        self.since_options.store(0, Relaxed);
    }

    fn reset(&self) {
        self.log.clear();
        self.requests.store(0, Relaxed);
        self.since_options.store(0, Relaxed);
        self.cancelled.store(0, Relaxed);
        self.completed.store(0, Relaxed);
    }

    fn stats(&self) -> UpstreamStats {
        UpstreamStats {
            requests: self.requests.load(Relaxed),
            in_flight: self.in_flight.load(Relaxed),
            cancelled_streams: self.cancelled.load(Relaxed),
            completed_streams: self.completed.load(Relaxed),
        }
    }
}

/// The counters of a mock upstream, as `GET /__mock/stats` returns them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpstreamStats {
    /// See [`MockUpstream::request_count`].
    pub requests: usize,
    /// See [`MockUpstream::in_flight`].
    pub in_flight: usize,
    /// See [`MockUpstream::cancelled_streams`].
    pub cancelled_streams: usize,
    /// See [`MockUpstream::completed_streams`].
    pub completed_streams: usize,
}

impl MockUpstream {
    /// Starts a mock upstream on `127.0.0.1` and an ephemeral port.
    ///
    /// # Panics
    /// If no local port can be bound, which only a broken test host causes.
    pub async fn start(opts: UpstreamOptions) -> MockUpstream {
        let addr = SocketAddr::from(([127, 0, 0, 1], 0));
        match Self::start_on(addr, opts).await {
            Ok(mock) => mock,
            Err(e) => panic!("mock upstream: cannot bind {addr}: {e}"),
        }
    }

    /// Starts a mock upstream on `addr`.
    pub async fn start_on(
        addr: SocketAddr,
        opts: UpstreamOptions,
    ) -> std::io::Result<MockUpstream> {
        let shared = Arc::new(Shared {
            options: RwLock::new(Arc::new(opts)),
            log: RequestLog::default(),
            requests: AtomicUsize::new(0),
            since_options: AtomicUsize::new(0),
            in_flight: AtomicUsize::new(0),
            cancelled: AtomicUsize::new(0),
            completed: AtomicUsize::new(0),
        });
        let state = shared.clone();
        let server = spawn_server(addr, |_| router(state)).await?;
        Ok(MockUpstream { shared, server })
    }

    /// The address the mock listens on.
    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    /// The `api_base` a gateway config uses: `http://127.0.0.1:PORT/v1`.
    pub fn url(&self) -> String {
        format!("http://{}/v1", self.addr())
    }

    /// The chat requests received (most recent [`super::RECORD_CAP`]), with
    /// what the mock answered so far.
    pub fn requests(&self) -> Vec<Recorded> {
        self.shared.log.snapshot()
    }

    /// Chat completion requests received since start or reset (control calls
    /// and `/v1/models` are not counted; invalid bodies are).
    pub fn request_count(&self) -> usize {
        self.shared.requests.load(Relaxed)
    }

    /// The options in effect.
    pub fn options(&self) -> UpstreamOptions {
        (*self.shared.options()).clone()
    }

    /// Replaces the options; requests already being answered keep theirs.
    /// Restarts the `fail_first` count.
    pub fn set_options(&self, opts: UpstreamOptions) {
        self.shared.set_options(opts);
    }

    /// Clears the records and counters (not `in_flight`, which is live).
    pub fn reset(&self) {
        self.shared.reset();
    }

    /// Chat requests currently being answered, streams still sending
    /// included.
    pub fn in_flight(&self) -> usize {
        self.shared.in_flight.load(Relaxed)
    }

    /// Streams the client dropped before `data: [DONE]` was sent. Counted when
    /// the server notices, so poll for it.
    pub fn cancelled_streams(&self) -> usize {
        self.shared.cancelled.load(Relaxed)
    }

    /// Streams that sent `data: [DONE]` (counted as that frame is handed to
    /// the connection, so it is set before the client sees it).
    pub fn completed_streams(&self) -> usize {
        self.shared.completed.load(Relaxed)
    }

    /// All counters at once.
    pub fn stats(&self) -> UpstreamStats {
        self.shared.stats()
    }

    /// Stops the server and cuts its open connections.
    pub fn shutdown(self) {}
}

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/v1/chat/completions", post(chat))
        .route("/chat/completions", post(chat))
        // Azure OpenAI's deployment path (api-version in the query).
        .route(
            "/openai/deployments/{deployment}/chat/completions",
            post(chat),
        )
        .route("/v1/models", get(models))
        .route("/models", get(models))
        .route("/__mock/requests", get(control_requests))
        .route(
            "/__mock/options",
            get(control_get_options).post(control_set_options),
        )
        .route("/__mock/reset", post(control_reset))
        .route("/__mock/stats", get(control_stats))
        .merge(crate::anthropic::routes())
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(shared)
}

async fn models() -> Response {
    json_response(StatusCode::OK, MODELS_BODY)
}

async fn not_found(uri: Uri) -> Response {
    let body = openai_error(&format!("mock upstream: no route for {}", uri.path()), None);
    json_response(StatusCode::NOT_FOUND, body)
}

async fn control_requests(State(s): State<Arc<Shared>>) -> Response {
    json_response(StatusCode::OK, to_json(&s.log.snapshot()))
}

async fn control_get_options(State(s): State<Arc<Shared>>) -> Response {
    json_response(StatusCode::OK, to_json(&*s.options()))
}

async fn control_set_options(State(s): State<Arc<Shared>>, body: Bytes) -> Response {
    match serde_json::from_slice::<UpstreamOptions>(&body) {
        Ok(opts) => {
            let echo = to_json(&opts);
            s.set_options(opts);
            json_response(StatusCode::OK, echo)
        }
        Err(e) => json_response(
            StatusCode::BAD_REQUEST,
            openai_error(&format!("invalid options: {e}"), None),
        ),
    }
}

async fn control_reset(State(s): State<Arc<Shared>>) -> Response {
    s.reset();
    json_response(StatusCode::OK, "{}")
}

async fn control_stats(State(s): State<Arc<Shared>>) -> Response {
    json_response(StatusCode::OK, to_json(&s.stats()))
}

#[cfg(test)]
mod tests {
    use super::split_even;

    #[test]
    fn splits_evenly_by_chars() {
        assert_eq!(split_even("abcdefg", 3), ["abc", "de", "fg"]);
        assert_eq!(split_even("ab", 3), ["a", "b", ""]);
        assert_eq!(split_even("", 2), ["", ""]);
        assert_eq!(split_even("héllo", 2), ["hél", "lo"]);
    }
}
