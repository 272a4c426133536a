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

const OVERLOADED: &str =
    r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#;
const PROMPT_TOO_LONG: &str = r#"{"type":"error","error":{"type":"invalid_request_error","message":"prompt is too long: 211234 tokens > 200000 maximum"}}"#;

/// Top-level fields the Messages API takes.
const FIELDS: &[&str] = &[
    "model",
    "messages",
    "max_tokens",
    "system",
    "metadata",
    "stop_sequences",
    "stream",
    "temperature",
    "top_p",
    "top_k",
    "tools",
    "tool_choice",
    "thinking",
    "service_tier",
    "output_format",
    "output_config",
    "context_management",
    "container",
    "mcp_servers",
    "speed",
    "cache_control",
    "inference_geo",
];

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

// ---- checking a request ----

/// Why Anthropic would refuse the request, in its words (roughly).
fn check(headers: &HeaderMap, req: &Value) -> Result<(), (StatusCode, &'static str, String)> {
    let invalid = |m: String| (StatusCode::BAD_REQUEST, "invalid_request_error", m);
    if headers.get("anthropic-version").is_none() {
        return Err(invalid("anthropic-version: header is required".into()));
    }
    let keyed = headers.get("x-api-key").is_some()
        || headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("Bearer "));
    if !keyed {
        return Err((
            StatusCode::UNAUTHORIZED,
            "authentication_error",
            "x-api-key header is required".into(),
        ));
    }
    let Some(obj) = req.as_object() else {
        return Err(invalid("request body must be a JSON object".into()));
    };
    if let Some(k) = obj.keys().find(|k| !FIELDS.contains(&k.as_str())) {
        return Err(invalid(format!("{k}: Extra inputs are not permitted")));
    }
    if !obj.get("model").is_some_and(Value::is_string) {
        return Err(invalid("model: Field required".into()));
    }
    match obj.get("max_tokens").and_then(Value::as_i64) {
        Some(n) if n >= 1 => {}
        Some(_) => {
            return Err(invalid(
                "max_tokens: must be greater than or equal to 1".into(),
            ));
        }
        None => return Err(invalid("max_tokens: Field required".into())),
    }
    if let Some(system) = obj.get("system") {
        match system {
            Value::String(_) => {}
            Value::Array(blocks) => {
                for (i, b) in blocks.iter().enumerate() {
                    check_text(b, &format!("system.{i}")).map_err(invalid)?;
                }
            }
            _ => {
                return Err(invalid(
                    "system: Input should be a valid string or list".into(),
                ));
            }
        }
    }
    let tools: Vec<&str> = match obj.get("tools") {
        None => vec![],
        Some(Value::Array(tools)) => {
            let mut names = vec![];
            for (i, t) in tools.iter().enumerate() {
                let name = t.get("name").and_then(Value::as_str).unwrap_or("");
                let valid = !name.is_empty()
                    && name.len() <= 128
                    && name
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
                if !valid {
                    return Err(invalid(format!(
                        "tools.{i}.custom.name: String should match pattern '^[a-zA-Z0-9_-]{{1,128}}$'"
                    )));
                }
                let hosted = t
                    .get("type")
                    .and_then(Value::as_str)
                    .is_some_and(|k| k != "custom");
                if !hosted
                    && t.get("input_schema").and_then(|s| s.get("type")) != Some(&json!("object"))
                {
                    return Err(invalid(format!(
                        "tools.{i}.custom.input_schema.type: Input should be 'object'"
                    )));
                }
                names.push(name);
            }
            names
        }
        Some(_) => return Err(invalid("tools: Input should be a valid list".into())),
    };
    let Some(Value::Array(messages)) = obj.get("messages") else {
        return Err(invalid("messages: Field required".into()));
    };
    if messages.is_empty() {
        return Err(invalid("messages: at least one message is required".into()));
    }
    let mut previous_tool_uses: Vec<&str> = vec![];
    let mut tool_blocks = false;
    for (i, m) in messages.iter().enumerate() {
        let role = m.get("role").and_then(Value::as_str).unwrap_or("");
        if !matches!(role, "user" | "assistant" | "system") {
            return Err(invalid(format!(
                "messages.{i}.role: Input should be 'user' or 'assistant'"
            )));
        }
        match m.get("content") {
            Some(Value::String(s)) if s.is_empty() => {
                return Err(invalid(format!(
                    "messages.{i}: text content blocks must be non-empty"
                )));
            }
            Some(Value::Array(b)) if b.is_empty() => {
                return Err(invalid(format!(
                    "messages.{i}: all messages must have non-empty content"
                )));
            }
            Some(Value::String(_) | Value::Array(_)) => {}
            _ => return Err(invalid(format!("messages.{i}.content: Field required"))),
        }
        let mut uses: Vec<&str> = vec![];
        for (j, b) in m["content"].as_array().into_iter().flatten().enumerate() {
            let at = format!("messages.{i}.content.{j}");
            match b.get("type").and_then(Value::as_str).unwrap_or("") {
                "text" => check_text(b, &at).map_err(invalid)?,
                "image" | "document" => check_source(b, &at).map_err(invalid)?,
                "tool_use" if role == "assistant" => {
                    tool_blocks = true;
                    let id = b.get("id").and_then(Value::as_str).unwrap_or("");
                    if id.is_empty()
                        || !b.get("input").is_some_and(Value::is_object)
                        || !b.get("name").is_some_and(Value::is_string)
                    {
                        return Err(invalid(format!(
                            "{at}: tool_use needs an id, a name and an object input"
                        )));
                    }
                    uses.push(id);
                }
                "tool_result" if role == "user" => {
                    tool_blocks = true;
                    let id = b.get("tool_use_id").and_then(Value::as_str).unwrap_or("");
                    if !previous_tool_uses.contains(&id) {
                        return Err(invalid(format!(
                            "{at}: unexpected `tool_use_id` found in `tool_result` blocks: {id}. Each `tool_result` block must have a corresponding `tool_use` block in the previous message."
                        )));
                    }
                }
                "thinking" if role == "assistant" => {
                    if !b.get("signature").is_some_and(Value::is_string) {
                        return Err(invalid(format!("{at}.signature: Field required")));
                    }
                }
                "redacted_thinking" if role == "assistant" => {}
                other => {
                    return Err(invalid(format!(
                        "{at}: unexpected content block type '{other}' in a {role} message"
                    )));
                }
            }
        }
        previous_tool_uses = uses;
    }
    if tool_blocks && tools.is_empty() {
        return Err(invalid(
            "Requests which include `tool_use` or `tool_result` blocks must define tools.".into(),
        ));
    }
    Ok(())
}

fn check_text(b: &Value, at: &str) -> Result<(), String> {
    if b.get("type").and_then(Value::as_str) != Some("text") {
        return Err(format!("{at}.type: Input should be 'text'"));
    }
    match b.get("text").and_then(Value::as_str) {
        Some("") => Err(format!("{at}: text content blocks must be non-empty")),
        Some(_) => Ok(()),
        None => Err(format!("{at}.text: Field required")),
    }
}

fn check_source(b: &Value, at: &str) -> Result<(), String> {
    let source = b.get("source");
    let ok = match source.and_then(|s| s.get("type")).and_then(Value::as_str) {
        Some("base64") => {
            source
                .and_then(|s| s.get("media_type"))
                .is_some_and(Value::is_string)
                && source
                    .and_then(|s| s.get("data"))
                    .is_some_and(Value::is_string)
        }
        Some("url") => source
            .and_then(|s| s.get("url"))
            .and_then(Value::as_str)
            .is_some_and(|u| u.starts_with("https://") || u.starts_with("http://")),
        Some("text" | "content" | "file") => true,
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(format!("{at}.source: invalid source"))
    }
}

/// The text of the last user message: its string, or its text blocks joined
/// with `"\n"`.
fn last_user_text(req: &Value) -> String {
    let last = req["messages"]
        .as_array()
        .and_then(|m| m.iter().rev().find(|m| m["role"] == "user"));
    match last.map(|m| &m["content"]) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(blocks)) => blocks
            .iter()
            .filter(|b| b["type"] == "text")
            .filter_map(|b| b["text"].as_str())
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

/// Words in every text of the request: the mock's input token count.
fn input_words(req: &Value) -> u64 {
    fn walk(v: &Value, n: &mut u64) {
        match v {
            Value::Object(o) => {
                for (k, v) in o {
                    match (k.as_str(), v) {
                        ("text" | "content", Value::String(s)) => *n += words(s),
                        _ => walk(v, n),
                    }
                }
            }
            Value::Array(a) => a.iter().for_each(|v| walk(v, n)),
            _ => {}
        }
    }
    let mut n = 0;
    walk(&req["messages"], &mut n);
    match &req["system"] {
        Value::String(s) => n += words(s),
        other => walk(other, &mut n),
    }
    n
}

fn words(s: &str) -> u64 {
    s.split_whitespace().count() as u64
}

async fn count_tokens(
    State(s): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let entry = s
        .options()
        .record
        .then(|| s.log.push(&method, uri.path(), &headers, body.clone()));
    let Ok(req) = serde_json::from_slice::<Value>(&body) else {
        return respond(
            entry.as_deref(),
            StatusCode::BAD_REQUEST,
            error_body("invalid_request_error", "invalid JSON"),
        );
    };
    respond(
        entry.as_deref(),
        StatusCode::OK,
        to_json(&json!({"input_tokens": input_words(&req)})),
    )
}

// ---- answering ----

async fn messages(
    State(s): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let opts = s.options();
    let seq = s.requests.fetch_add(1, Relaxed) + 1;
    let entry = opts
        .record
        .then(|| s.log.push(&method, uri.path(), &headers, body.clone()));
    if opts.latency_ms > 0 {
        tokio::time::sleep(Duration::from_millis(opts.latency_ms)).await;
    }
    let req: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            return respond(
                entry.as_deref(),
                StatusCode::BAD_REQUEST,
                error_body(
                    "invalid_request_error",
                    &format!("There was an error parsing the body: {e}"),
                ),
            );
        }
    };
    if let Err((status, kind, message)) = check(&headers, &req) {
        return respond(entry.as_deref(), status, error_body(kind, &message));
    }
    let stream = req["stream"] == true;
    let failure = opts.failure.as_ref().filter(|_| {
        opts.fail_first
            .is_none_or(|k| s.since_options.fetch_add(1, Relaxed) < k)
    });
    let mut cut: Option<(usize, bool)> = None;
    match failure {
        None => {}
        Some(Failure::Overloaded) => {
            return respond(
                entry.as_deref(),
                StatusCode::from_u16(529).unwrap_or(StatusCode::SERVICE_UNAVAILABLE),
                OVERLOADED.into(),
            );
        }
        Some(Failure::InvalidRequest { message }) => {
            return respond(
                entry.as_deref(),
                StatusCode::BAD_REQUEST,
                error_body("invalid_request_error", message),
            );
        }
        Some(Failure::PromptTooLong) => {
            return respond(
                entry.as_deref(),
                StatusCode::BAD_REQUEST,
                PROMPT_TOO_LONG.into(),
            );
        }
        Some(Failure::RateLimited { retry_after }) => {
            let mut r = respond(
                entry.as_deref(),
                StatusCode::TOO_MANY_REQUESTS,
                error_body(
                    "rate_limit_error",
                    "Number of request tokens has exceeded your per-minute rate limit",
                ),
            );
            if let Some(secs) = retry_after {
                r.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(*secs));
            }
            return r;
        }
        Some(Failure::Status {
            status,
            body,
            retry_after,
        }) => {
            let status = StatusCode::from_u16(*status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let mut r = respond(entry.as_deref(), status, body.clone().into_bytes());
            if let Some(secs) = retry_after {
                r.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(*secs));
            }
            return r;
        }
        Some(Failure::Hang) => std::future::pending().await,
        Some(Failure::StreamError { after }) => {
            if !stream {
                return respond(
                    entry.as_deref(),
                    StatusCode::from_u16(529).unwrap_or(StatusCode::SERVICE_UNAVAILABLE),
                    OVERLOADED.into(),
                );
            }
            cut = Some((*after, true));
        }
        Some(Failure::CloseAfter { after }) => cut = Some((*after, false)),
    }

    let model = req["model"].as_str().unwrap_or("").to_owned();
    let reply = opts.reply.clone().unwrap_or_else(|| last_user_text(&req));
    let tool = opts.tool_use.as_ref().map(|t| {
        let id = t.id.clone().unwrap_or_else(|| format!("toolu_mock_{seq}"));
        (id, t)
    });
    let stop_reason = opts.stop_reason.clone().unwrap_or_else(|| {
        if tool.is_some() {
            "tool_use"
        } else {
            "end_turn"
        }
        .to_owned()
    });
    let input_tokens = input_words(&req);
    let output_tokens =
        words(&reply) + opts.thinking.as_deref().map_or(0, words) + u64::from(tool.is_some());
    let usage = json!({
        "input_tokens": input_tokens,
        "cache_creation_input_tokens": opts.cache_creation_input_tokens,
        "cache_read_input_tokens": opts.cache_read_input_tokens,
        "output_tokens": output_tokens,
    });
    let id = format!("msg_mock_{seq}");
    let with_text = !reply.is_empty() || tool.is_none();

    if !stream {
        if let Some(body) = &opts.message {
            return respond(entry.as_deref(), StatusCode::OK, body.clone().into_bytes());
        }
        let mut content = vec![];
        if let Some(t) = &opts.thinking {
            content.push(json!({"type": "thinking", "thinking": t, "signature": "mock-signature"}));
        }
        if with_text {
            content.push(json!({"type": "text", "text": reply}));
        }
        if let Some((id, t)) = &tool {
            content.push(json!({"type": "tool_use", "id": id, "name": t.name, "input": input_object(&t.input)}));
        }
        let message = json!({
            "id": id, "type": "message", "role": "assistant", "model": model, "content": content,
            "stop_reason": stop_reason, "stop_sequence": null, "usage": usage,
        });
        return respond(entry.as_deref(), StatusCode::OK, to_json(&message));
    }

    let mut events: Vec<(&'static str, Value)> = vec![];
    let mut start_usage = usage.clone();
    start_usage["output_tokens"] = json!(1);
    events.push((
        "message_start",
        json!({"type": "message_start", "message": {"id": id, "type": "message", "role": "assistant", "model": model,
            "content": [], "stop_reason": null, "stop_sequence": null, "usage": start_usage}}),
    ));
    events.push(("ping", json!({"type": "ping"})));
    let mut index = 0;
    if let Some(t) = &opts.thinking {
        events.push(("content_block_start", json!({"type": "content_block_start", "index": index, "content_block": {"type": "thinking", "thinking": "", "signature": ""}})));
        for piece in split(t, 2) {
            events.push(("content_block_delta", json!({"type": "content_block_delta", "index": index, "delta": {"type": "thinking_delta", "thinking": piece}})));
        }
        events.push(("content_block_delta", json!({"type": "content_block_delta", "index": index, "delta": {"type": "signature_delta", "signature": "mock-signature"}})));
        events.push((
            "content_block_stop",
            json!({"type": "content_block_stop", "index": index}),
        ));
        index += 1;
    }
    if with_text {
        events.push(("content_block_start", json!({"type": "content_block_start", "index": index, "content_block": {"type": "text", "text": ""}})));
        let chunks = if opts.chunks == 0 { 3 } else { opts.chunks };
        for piece in split(&reply, chunks) {
            events.push(("content_block_delta", json!({"type": "content_block_delta", "index": index, "delta": {"type": "text_delta", "text": piece}})));
        }
        events.push((
            "content_block_stop",
            json!({"type": "content_block_stop", "index": index}),
        ));
        index += 1;
    }
    if let Some((id, t)) = &tool {
        events.push(("content_block_start", json!({"type": "content_block_start", "index": index, "content_block": {"type": "tool_use", "id": id, "name": t.name, "input": {}}})));
        let input = input_object(&t.input).to_string();
        // Anthropic opens with an empty partial.
        events.push(("content_block_delta", json!({"type": "content_block_delta", "index": index, "delta": {"type": "input_json_delta", "partial_json": ""}})));
        let n = if t.json_chunks == 0 { 2 } else { t.json_chunks };
        for piece in split(&input, n) {
            events.push(("content_block_delta", json!({"type": "content_block_delta", "index": index, "delta": {"type": "input_json_delta", "partial_json": piece}})));
        }
        events.push((
            "content_block_stop",
            json!({"type": "content_block_stop", "index": index}),
        ));
    }
    events.push((
        "message_delta",
        json!({"type": "message_delta", "delta": {"stop_reason": stop_reason, "stop_sequence": null}, "usage": {"output_tokens": output_tokens}}),
    ));
    events.push(("message_stop", json!({"type": "message_stop"})));

    let mut frames: Vec<Bytes> = events
        .iter()
        .map(|(kind, data)| sse_frame(kind, data))
        .collect();
    let mut abort = false;
    if let Some((after, error_event)) = cut {
        frames.truncate(after);
        if error_event {
            frames.push(sse_frame(
                "error",
                &serde_json::from_str(OVERLOADED).unwrap_or(Value::Null),
            ));
        } else {
            abort = true;
        }
    }
    stream_response(
        frames,
        entry,
        Duration::from_millis(opts.chunk_interval_ms),
        abort,
    )
}

/// A tool input as Anthropic sends it: always an object.
fn input_object(input: &Value) -> Value {
    if input.is_object() {
        input.clone()
    } else {
        json!({})
    }
}

fn sse_frame(kind: &str, data: &Value) -> Bytes {
    Bytes::from(format!("event: {kind}\ndata: {data}\n\n"))
}

/// `text` in `n` pieces of about as many characters (at least one piece).
fn split(text: &str, n: usize) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let n = n.max(1);
    let size = chars.len().div_ceil(n).max(1);
    let mut pieces: Vec<String> = chars.chunks(size).map(|c| c.iter().collect()).collect();
    if pieces.is_empty() {
        pieces.push(String::new());
    }
    pieces
}

fn stream_response(
    frames: Vec<Bytes>,
    entry: Option<Arc<Entry>>,
    interval: Duration,
    abort: bool,
) -> Response {
    struct St {
        frames: std::vec::IntoIter<Bytes>,
        entry: Option<Arc<Entry>>,
        interval: Duration,
        first: bool,
        abort: bool,
    }
    let st = St {
        frames: frames.into_iter(),
        entry,
        interval,
        first: true,
        abort,
    };
    let body = futures_util::stream::unfold(st, |mut st| async move {
        match st.frames.next() {
            Some(frame) => {
                if !st.first && !st.interval.is_zero() {
                    tokio::time::sleep(st.interval).await;
                }
                st.first = false;
                if let Some(e) = &st.entry {
                    e.append(&frame);
                }
                Some((Ok::<Bytes, std::io::Error>(frame), st))
            }
            None if st.abort => {
                // Let hyper flush what went before, then cut the body.
                tokio::task::yield_now().await;
                st.abort = false;
                Some((Err(std::io::Error::other("mock anthropic: stream cut")), st))
            }
            None => None,
        }
    });
    let mut resp = Response::new(Body::from_stream(body));
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    resp
}
