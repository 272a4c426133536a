//! The mock OpenAI-compatible upstream: `POST /v1/chat/completions` (and
//! `/chat/completions`), `GET /v1/models`, plus the control API.
//!
//! It echoes the last message (or answers a fixed reply), streams it as SSE
//! in a chosen number of chunks, and can be told to fail in the ways real
//! providers do: an error status, a hang, a stream that stalls or is cut, a
//! context-length or content-policy 400. It counts requests, in-flight
//! requests and streams the client dropped, so tests can check that the
//! gateway cancels upstream work.
//!
//! Control API: `GET /__mock/requests`, `GET|POST /__mock/options`,
//! `POST /__mock/reset`, `GET /__mock/stats`.

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
    /// A failure to inject instead of the normal answer.
    pub failure: Option<Failure>,
    /// The failure applies only to the first K chat requests after these
    /// options were set (or the mock reset); `None`: to every request.
    pub fail_first: Option<usize>,
    /// Non-streaming: answer 200 with exactly this body (JSON text, sent
    /// byte for byte, whatever it says) instead of building a completion.
    pub completion: Option<String>,
    /// Keep a record of each request; the benchmark turns it off.
    pub record: bool,
}

impl Default for UpstreamOptions {
    fn default() -> Self {
        Self {
            reply: None,
            completion: None,
            chunks: 0,
            latency_ms: 0,
            chunk_interval_ms: 0,
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
        .merge(super::anthropic::routes())
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

// ---- request parsing ----

#[derive(Deserialize)]
struct ChatRequest {
    model: String,
    messages: Vec<Message>,
    #[serde(default)]
    stream: Option<bool>,
    #[serde(default)]
    n: Option<usize>,
    #[serde(default)]
    stream_options: Option<StreamOptions>,
}

#[derive(Deserialize)]
struct StreamOptions {
    #[serde(default)]
    include_usage: Option<bool>,
}

#[derive(Deserialize)]
struct Message {
    #[serde(default)]
    content: Option<Content>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Content {
    Text(String),
    Parts(Vec<Part>),
    /// Anything else (a number, an object): no text.
    Other(serde::de::IgnoredAny),
}

#[derive(Deserialize)]
struct Part {
    #[serde(rename = "type", default)]
    kind: Option<String>,
    #[serde(default)]
    text: Option<String>,
}

impl Message {
    /// The text of the message: string content, or text parts joined by
    /// `"\n"`; images and other parts are skipped.
    fn text(&self) -> Cow<'_, str> {
        match &self.content {
            Some(Content::Text(t)) => Cow::Borrowed(t),
            Some(Content::Parts(parts)) => {
                let mut texts = parts
                    .iter()
                    .filter(|p| p.kind.as_deref().is_none_or(|k| k == "text"))
                    .filter_map(|p| p.text.as_deref());
                match (texts.next(), texts.next()) {
                    (None, _) => Cow::Borrowed(""),
                    (Some(one), None) => Cow::Borrowed(one),
                    (Some(a), Some(b)) => {
                        let mut s = format!("{a}\n{b}");
                        for t in texts {
                            s.push('\n');
                            s.push_str(t);
                        }
                        Cow::Owned(s)
                    }
                }
            }
            Some(Content::Other(_)) | None => Cow::Borrowed(""),
        }
    }
}

/// Why a body is not a chat request, in OpenAI's words where it has some.
fn invalid_request_message(body: &[u8], err: &serde_json::Error) -> String {
    match serde_json::from_slice::<serde_json::Value>(body) {
        Err(_) => "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON.)".to_owned(),
        Ok(v) if !v.is_object() => "Invalid request body: expected a JSON object.".to_owned(),
        Ok(v) if v.get("model").is_none() => "you must provide a model parameter".to_owned(),
        Ok(v) if v.get("messages").is_none() => {
            "Missing required parameter: 'messages'.".to_owned()
        }
        Ok(_) => format!("Invalid request: {err}"),
    }
}

fn openai_error(message: &str, code: Option<&str>) -> Vec<u8> {
    #[derive(Serialize)]
    struct Body<'a> {
        error: Inner<'a>,
    }
    #[derive(Serialize)]
    struct Inner<'a> {
        message: &'a str,
        #[serde(rename = "type")]
        kind: &'static str,
        param: Option<&'static str>,
        code: Option<&'a str>,
    }
    to_json(&Body {
        error: Inner {
            message,
            kind: "invalid_request_error",
            param: None,
            code,
        },
    })
}

// ---- responses ----

#[derive(Serialize, Clone, Copy)]
struct Usage {
    prompt_tokens: usize,
    completion_tokens: usize,
    total_tokens: usize,
}

#[derive(Serialize)]
struct Completion<'a> {
    id: &'a str,
    object: &'static str,
    created: u64,
    model: &'a str,
    choices: Vec<Choice<'a>>,
    usage: Usage,
}

#[derive(Serialize)]
struct Choice<'a> {
    index: usize,
    message: AssistantMessage<'a>,
    finish_reason: &'static str,
}

#[derive(Serialize)]
struct AssistantMessage<'a> {
    role: &'static str,
    content: &'a str,
}

#[derive(Serialize)]
struct Chunk<'a> {
    id: &'a str,
    object: &'static str,
    created: u64,
    model: &'a str,
    choices: &'a [ChunkChoice<'a>],
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<Usage>,
}

#[derive(Serialize)]
struct ChunkChoice<'a> {
    index: usize,
    delta: Delta<'a>,
    finish_reason: Option<&'static str>,
}

#[derive(Serialize)]
struct Delta<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    content: Option<&'a str>,
}

fn words(text: &str) -> usize {
    text.split_whitespace().count()
}

/// Splits `text` into `n` pieces of as even a number of characters as
/// possible (the first pieces take the remainder); pieces may be empty.
fn split_even(text: &str, n: usize) -> Vec<&str> {
    let total = text.chars().count();
    let (base, extra) = (total / n, total % n);
    let mut pieces = Vec::with_capacity(n);
    let mut rest = text;
    for i in 0..n {
        let take = base + usize::from(i < extra);
        let split = rest.char_indices().nth(take).map_or(rest.len(), |(b, _)| b);
        let (piece, tail) = rest.split_at(split);
        pieces.push(piece);
        rest = tail;
    }
    pieces
}

/// Every frame of a stream, `data: [DONE]` last.
fn stream_frames(
    id: &str,
    created: u64,
    model: &str,
    content: &str,
    chunks: usize,
    usage: Option<Usage>,
) -> Vec<Bytes> {
    let frame = |choices: &[ChunkChoice<'_>], usage: Option<Usage>| {
        let mut buf = Vec::with_capacity(160 + content.len() / chunks.max(1));
        buf.extend_from_slice(b"data: ");
        let chunk = Chunk {
            id,
            object: "chat.completion.chunk",
            created,
            model,
            choices,
            usage,
        };
        // Serializing these plain structs into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut buf, &chunk);
        buf.extend_from_slice(b"\n\n");
        Bytes::from(buf)
    };
    fn choice<'a>(delta: Delta<'a>, finish_reason: Option<&'static str>) -> [ChunkChoice<'a>; 1] {
        [ChunkChoice {
            index: 0,
            delta,
            finish_reason,
        }]
    }
    let mut frames = Vec::with_capacity(chunks + 4);
    frames.push(frame(
        &choice(
            Delta {
                role: Some("assistant"),
                content: Some(""),
            },
            None,
        ),
        None,
    ));
    for piece in split_even(content, chunks) {
        frames.push(frame(
            &choice(
                Delta {
                    role: None,
                    content: Some(piece),
                },
                None,
            ),
            None,
        ));
    }
    frames.push(frame(
        &choice(
            Delta {
                role: None,
                content: None,
            },
            Some("stop"),
        ),
        None,
    ));
    if let Some(usage) = usage {
        frames.push(frame(&[], Some(usage)));
    }
    frames.push(Bytes::from_static(DONE_FRAME));
    frames
}

/// Counts a chat request as in flight until dropped.
struct InFlight(Arc<Shared>);

impl InFlight {
    fn new(shared: &Arc<Shared>) -> Self {
        shared.in_flight.fetch_add(1, Relaxed);
        InFlight(shared.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Relaxed);
    }
}

/// Lives inside a response body stream: when the body is dropped before
/// `[DONE]` went out (the client went away), the stream counts as cancelled.
struct StreamGuard {
    flight: InFlight,
    /// Only SSE streams count as cancelled, not stalled non-streaming bodies.
    counts: bool,
    /// `[DONE]` was sent, or the mock cut the body itself.
    finished: bool,
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        if self.counts && !self.finished {
            self.flight.0.cancelled.fetch_add(1, Relaxed);
        }
    }
}

/// What a body stream does after its last frame.
#[derive(Clone, Copy, PartialEq, Eq)]
enum End {
    Finish,
    Stall,
    Abort,
}

struct BodyState {
    frames: std::vec::IntoIter<Bytes>,
    entry: Option<Arc<Entry>>,
    interval: Duration,
    first: bool,
    end: End,
    guard: StreamGuard,
}

fn body_stream(state: BodyState) -> Body {
    Body::from_stream(stream::unfold(state, |mut st| async move {
        if let Some(frame) = st.frames.next() {
            if !st.first && !st.interval.is_zero() {
                tokio::time::sleep(st.interval).await;
            }
            st.first = false;
            if frame.as_ref() == DONE_FRAME {
                st.guard.finished = true;
                st.guard.flight.0.completed.fetch_add(1, Relaxed);
            }
            if let Some(entry) = &st.entry {
                entry.append(&frame);
            }
            return Some((Ok(frame), st));
        }
        match st.end {
            End::Finish => None,
            End::Stall => {
                std::future::pending::<()>().await;
                None
            }
            End::Abort => {
                // hyper drops whatever it has buffered when the body fails;
                // one trip through the scheduler lets it flush the head and
                // the frames first, so the client does see them.
                tokio::task::yield_now().await;
                st.guard.finished = true;
                st.end = End::Finish;
                let err =
                    std::io::Error::other("mock upstream: body cut by the close_after failure");
                Some((Err(err), st))
            }
        }
    }))
}

fn record_and_respond(entry: Option<&Entry>, status: StatusCode, body: Vec<u8>) -> Response {
    if let Some(entry) = entry {
        entry.append(&body);
    }
    json_response(status, body)
}

async fn chat(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let flight = InFlight::new(&shared);
    let opts = shared.options();
    let seq = shared.requests.fetch_add(1, Relaxed) + 1;
    let entry = opts
        .record
        .then(|| shared.log.push(&method, uri.path(), &headers, body.clone()));

    if opts.latency_ms > 0 {
        tokio::time::sleep(Duration::from_millis(opts.latency_ms)).await;
    }

    let req: ChatRequest = match serde_json::from_slice(&body) {
        Ok(req) => req,
        Err(e) => {
            let msg = invalid_request_message(&body, &e);
            return record_and_respond(
                entry.as_deref(),
                StatusCode::BAD_REQUEST,
                openai_error(&msg, None),
            );
        }
    };

    let failure = opts.failure.as_ref().filter(|_| {
        opts.fail_first
            .is_none_or(|k| shared.since_options.fetch_add(1, Relaxed) < k)
    });
    let streaming = req.stream.unwrap_or(false);
    let (frames_to_send, end) = match failure {
        None => (usize::MAX, End::Finish),
        Some(Failure::Status {
            status,
            body,
            retry_after,
        }) => {
            let status = StatusCode::from_u16(*status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let mut resp = record_and_respond(entry.as_deref(), status, body.clone().into_bytes());
            if let Some(secs) = retry_after {
                resp.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(*secs));
            }
            return resp;
        }
        Some(Failure::Hang) => std::future::pending().await,
        Some(Failure::ContextLength) => {
            return record_and_respond(
                entry.as_deref(),
                StatusCode::BAD_REQUEST,
                CONTEXT_LENGTH_BODY.into(),
            );
        }
        Some(Failure::ContentPolicy) => {
            return record_and_respond(
                entry.as_deref(),
                StatusCode::BAD_REQUEST,
                CONTENT_POLICY_BODY.into(),
            );
        }
        Some(Failure::StallAfter { chunks }) => (*chunks, End::Stall),
        Some(Failure::CloseAfter { chunks }) => (*chunks, End::Abort),
    };

    if let (false, Some(body)) = (streaming, &opts.completion) {
        return record_and_respond(entry.as_deref(), StatusCode::OK, body.clone().into_bytes());
    }
    let content: Cow<'_, str> = match &opts.reply {
        Some(reply) => Cow::Borrowed(reply),
        None => req.messages.last().map_or(Cow::Borrowed(""), Message::text),
    };
    let prompt_tokens: usize = req.messages.iter().map(|m| words(&m.text())).sum();
    let id = format!("chatcmpl-mock-{seq}");
    let created = super::unix_secs();

    if !streaming {
        if end != End::Finish {
            // A non-streaming request under stall/close: the head goes out,
            // the body never completes.
            return cut_body(entry, flight, end);
        }
        let n = req.n.unwrap_or(1).max(1);
        let completion_tokens = words(&content) * n;
        let completion = Completion {
            id: &id,
            object: "chat.completion",
            created,
            model: &req.model,
            choices: (0..n)
                .map(|index| Choice {
                    index,
                    message: AssistantMessage {
                        role: "assistant",
                        content: &content,
                    },
                    finish_reason: "stop",
                })
                .collect(),
            usage: Usage {
                prompt_tokens,
                completion_tokens,
                total_tokens: prompt_tokens + completion_tokens,
            },
        };
        return record_and_respond(entry.as_deref(), StatusCode::OK, to_json(&completion));
    }

    let chunks = if opts.chunks == 0 { 3 } else { opts.chunks };
    let include_usage = req
        .stream_options
        .as_ref()
        .and_then(|o| o.include_usage)
        .unwrap_or(false);
    let usage = include_usage.then(|| {
        let completion_tokens = words(&content);
        Usage {
            prompt_tokens,
            completion_tokens,
            total_tokens: prompt_tokens + completion_tokens,
        }
    });
    let mut frames = stream_frames(&id, created, &req.model, &content, chunks, usage);
    if end != End::Finish {
        // Only data frames count; `[DONE]` is never sent by a failing stream.
        frames.truncate(frames_to_send.min(frames.len() - 1));
    }
    let body = body_stream(BodyState {
        frames: frames.into_iter(),
        entry,
        interval: Duration::from_millis(opts.chunk_interval_ms),
        first: true,
        end,
        guard: StreamGuard {
            flight,
            counts: true,
            finished: false,
        },
    });
    sse_response(body)
}

fn cut_body(entry: Option<Arc<Entry>>, flight: InFlight, end: End) -> Response {
    let body = body_stream(BodyState {
        frames: Vec::new().into_iter(),
        entry,
        interval: Duration::ZERO,
        first: true,
        end,
        guard: StreamGuard {
            flight,
            counts: false,
            finished: false,
        },
    });
    let mut resp = Response::new(body);
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

fn sse_response(body: Body) -> Response {
    let mut resp = Response::new(body);
    let headers = resp.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    resp
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
