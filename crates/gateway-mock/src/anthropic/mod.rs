//! The mock Anthropic Messages API: `POST /v1/messages` (JSON and SSE with
//! Anthropic's event sequence), `POST /v1/messages/count_tokens`, and its own
//! control API under `/__mock/anthropic/` (`requests`, `options`, `reset`).
//!
//! It checks a request the way Anthropic does where a translation can go
//! wrong (the headers, `max_tokens`, roles, block shapes, empty text,
//! `tool_result` without its `tool_use`, tool blocks without `tools`,
//! unknown top-level fields) and answers Anthropic's 400 when it is off. It
//! replies with a fixed text or the last user text, optionally after a
//! thinking block and before a tool call, with usage including the cache
//! fields, and can fail as Anthropic does (529 `overloaded_error`, 400,
//! 429, an `error` event mid-stream, a cut or hung stream). Every request is
//! recorded with what was answered, like the other mocks.
//!
//! Two ways to run it: [`MockAnthropic`] on its own port (in-process
//! tests), or [`routes`] mounted on the mock OpenAI upstream, so one mock
//! process serves both APIs (the quickstart, out-of-process tests drive it
//! over HTTP).

mod answer;
mod validate;

use answer::*;
use validate::*;

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
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{Entry, Recorded, RequestLog, ServerHandle, json_response, spawn_server, to_json};

const BODY_LIMIT: usize = 64 << 20;

/// How the mock answers. Every field has a default, so `{}` is valid on
/// `POST /__mock/anthropic/options`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct AnthropicOptions {
    /// `None`: the text of the last user message; `Some(t)`: always `t`.
    pub reply: Option<String>,
    /// Text deltas in a stream; 0 means 3.
    pub chunks: usize,
    /// A (signed) thinking block before the text.
    pub thinking: Option<String>,
    /// A tool call after the text (and `stop_reason: tool_use`).
    pub tool_use: Option<ToolUse>,
    /// `stop_reason`, instead of `end_turn` or `tool_use`.
    pub stop_reason: Option<String>,
    /// `usage.cache_creation_input_tokens` and `cache_read_input_tokens`.
    pub cache_creation_input_tokens: u64,
    pub cache_read_input_tokens: u64,
    /// A failure instead of the answer.
    pub failure: Option<Failure>,
    /// The failure applies to the first K requests after these options were
    /// set; `None`: to all.
    pub fail_first: Option<usize>,
    /// Non-streaming: answer 200 with exactly this body.
    pub message: Option<String>,
    /// Streaming: answer 200 with exactly these SSE events (each the
    /// `data:` JSON of an event, sent byte for byte under `event: <its
    /// type>`), one write each, `chunk_interval_ms` apart.
    pub events: Option<Vec<String>>,
    /// Delay before the response head, in milliseconds.
    pub latency_ms: u64,
    /// Delay between stream events, in milliseconds.
    pub chunk_interval_ms: u64,
    /// Keep a record of each request.
    pub record: bool,
}

impl Default for AnthropicOptions {
    fn default() -> Self {
        Self {
            reply: None,
            chunks: 0,
            thinking: None,
            tool_use: None,
            stop_reason: None,
            cache_creation_input_tokens: 0,
            cache_read_input_tokens: 0,
            failure: None,
            fail_first: None,
            message: None,
            events: None,
            latency_ms: 0,
            chunk_interval_ms: 0,
            record: true,
        }
    }
}

/// A `tool_use` block the mock answers with.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ToolUse {
    pub name: String,
    #[serde(default)]
    pub input: Value,
    /// Default `toolu_mock_<n>`.
    #[serde(default)]
    pub id: Option<String>,
    /// `input_json_delta` events the input is split into; 0 means 2.
    #[serde(default)]
    pub json_chunks: usize,
}

/// A failure the mock injects.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Failure {
    /// 529 `overloaded_error`.
    Overloaded,
    /// 400 `invalid_request_error` with this message.
    InvalidRequest { message: String },
    /// 400 "prompt is too long".
    PromptTooLong,
    /// 429 `rate_limit_error`, with `retry-after`.
    RateLimited {
        #[serde(default)]
        retry_after: Option<u64>,
    },
    /// Any status and body.
    Status {
        status: u16,
        body: String,
        #[serde(default)]
        retry_after: Option<u64>,
    },
    /// A stream: this many events, then an `error` event (overloaded). A
    /// JSON request gets the 529.
    StreamError { after: usize },
    /// A stream: this many events, then the connection is cut.
    CloseAfter { after: usize },
    /// Accept and never answer.
    Hang,
}

struct Shared {
    options: RwLock<Arc<AnthropicOptions>>,
    log: RequestLog,
    requests: AtomicUsize,
    since_options: AtomicUsize,
}

impl Shared {
    fn new(opts: AnthropicOptions) -> Self {
        Shared {
            options: RwLock::new(Arc::new(opts)),
            log: RequestLog::default(),
            requests: AtomicUsize::new(0),
            since_options: AtomicUsize::new(0),
        }
    }

    fn options(&self) -> Arc<AnthropicOptions> {
        super::read(&self.options).clone()
    }

    fn set_options(&self, opts: AnthropicOptions) {
        *super::write(&self.options) = Arc::new(opts);
        self.since_options.store(0, Relaxed);
    }

    fn reset(&self) {
        self.log.clear();
        self.requests.store(0, Relaxed);
        self.since_options.store(0, Relaxed);
    }
}

/// The mock's routes with a state of their own, for any router to merge:
/// the mock OpenAI upstream mounts them, so its port answers both APIs.
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    router(Arc::new(Shared::new(AnthropicOptions::default())))
}

fn router<S: Clone + Send + Sync + 'static>(shared: Arc<Shared>) -> Router<S> {
    Router::new()
        .route("/v1/messages", post(messages))
        .route("/v1/messages/count_tokens", post(count_tokens))
        .route("/__mock/anthropic/requests", get(control_requests))
        .route(
            "/__mock/anthropic/options",
            get(control_get_options).post(control_set_options),
        )
        .route("/__mock/anthropic/reset", post(control_reset))
        .with_state(shared)
}

/// A mock Anthropic API on its own port. Dropping it stops the server.
pub struct MockAnthropic {
    shared: Arc<Shared>,
    server: ServerHandle,
}

impl MockAnthropic {
    /// Starts on `127.0.0.1` and an ephemeral port.
    ///
    /// # Panics
    /// If no local port can be bound, which only a broken test host causes.
    pub async fn start(opts: AnthropicOptions) -> MockAnthropic {
        let addr = SocketAddr::from(([127, 0, 0, 1], 0));
        match Self::start_on(addr, opts).await {
            Ok(m) => m,
            Err(e) => panic!("mock anthropic: cannot bind {addr}: {e}"),
        }
    }

    pub async fn start_on(
        addr: SocketAddr,
        opts: AnthropicOptions,
    ) -> std::io::Result<MockAnthropic> {
        let shared = Arc::new(Shared::new(opts));
        let state = shared.clone();
        let server = spawn_server(addr, move |_| {
            router(state)
                .fallback(not_found)
                .layer(DefaultBodyLimit::max(BODY_LIMIT))
        })
        .await?;
        Ok(MockAnthropic { shared, server })
    }

    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    /// The `api_base` of an `anthropic/` deployment: `http://127.0.0.1:PORT`
    /// (`/v1/messages` is appended).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr())
    }

    /// The requests received, with what was answered so far.
    pub fn requests(&self) -> Vec<Recorded> {
        self.shared.log.snapshot()
    }

    /// `/v1/messages` requests since start or reset.
    pub fn request_count(&self) -> usize {
        self.shared.requests.load(Relaxed)
    }

    pub fn options(&self) -> AnthropicOptions {
        (*self.shared.options()).clone()
    }

    pub fn set_options(&self, opts: AnthropicOptions) {
        self.shared.set_options(opts);
    }

    pub fn reset(&self) {
        self.shared.reset();
    }
}

async fn not_found(uri: Uri) -> Response {
    error(
        StatusCode::NOT_FOUND,
        "not_found_error",
        &format!("mock anthropic: no route for {}", uri.path()),
    )
}

async fn control_requests(State(s): State<Arc<Shared>>) -> Response {
    json_response(StatusCode::OK, to_json(&s.log.snapshot()))
}

async fn control_get_options(State(s): State<Arc<Shared>>) -> Response {
    json_response(StatusCode::OK, to_json(&*s.options()))
}

async fn control_set_options(State(s): State<Arc<Shared>>, body: Bytes) -> Response {
    match serde_json::from_slice::<AnthropicOptions>(&body) {
        Ok(opts) => {
            let echo = to_json(&opts);
            s.set_options(opts);
            json_response(StatusCode::OK, echo)
        }
        Err(e) => error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            &format!("invalid options: {e}"),
        ),
    }
}

async fn control_reset(State(s): State<Arc<Shared>>) -> Response {
    s.reset();
    json_response(StatusCode::OK, "{}")
}

/// Anthropic's error body.
fn error_body(kind: &str, message: &str) -> Vec<u8> {
    to_json(&json!({"type": "error", "error": {"type": kind, "message": message}}))
}

fn error(status: StatusCode, kind: &str, message: &str) -> Response {
    json_response(status, error_body(kind, message))
}

fn respond(entry: Option<&Entry>, status: StatusCode, body: Vec<u8>) -> Response {
    if let Some(e) = entry {
        e.append(&body);
    }
    json_response(status, body)
}
