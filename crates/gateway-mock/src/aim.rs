//! The mock Aim Security API: `POST /fw/v1/analyze` and the websocket
//! `GET /fw/v1/analyze/stream`, speaking the contract of `spec/aim.md`, plus
//! the control API.
//!
//! Its only detector finds e-mail addresses, which is what the seed example
//! (`"ishaan@berri.ai" detected as email`) needs. What it does on a detection
//! is [`AimMode`]; it can also fail ([`AimFailure`]), be slow, block a stream
//! on a marker, drop a websocket mid-stream, verify a stream slowly, or stop
//! reading its socket. Cato Networks AI Security
//! speaks the same protocol with `x-cato-*` headers and its own payload
//! (messages 1:1 with their fields, any role, null contents): a call with
//! `x-cato-litellm-hook` may send that shape, and its tool call text is
//! scanned too (redactions touch `content` only, as Cato's do).
//!
//! Control API: `GET /__mock/requests` (analyze calls), `GET /__mock/streams`
//! (websocket sessions), `GET|POST /__mock/options`, `POST /__mock/reset`.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use axum::Router;
use axum::extract::ws::{
    CloseFrame, Message, WebSocket, WebSocketUpgrade, rejection::WebSocketUpgradeRejection,
};
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::watch;

use super::{
    Recorded, RequestLog, ServerHandle, find_emails, header_pairs, json_response, lock,
    push_capped, spawn_server, to_json,
};

/// Largest analyze body the mock reads.
const BODY_LIMIT: usize = 64 << 20;

/// The answer when nothing is detected.
const CLEAN_ANSWER: &str = r#"{"analysis_result":{"analysis_time_ms":1,"policy_drill_down":{},"last_message_entities":[],"session_entities":[]},"required_action":null,"redacted_chat":null}"#;

/// How the mock Aim answers. Every field has a default, so `{}` is a valid
/// options body on `POST /__mock/options`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct AimOptions {
    /// The bearer token callers must send; default `aim-mock-key`.
    pub api_key: String,
    /// What a detection leads to; default [`AimMode::Block`].
    pub mode: AimMode,
    /// A failure to inject instead of answering. Also applies to the
    /// websocket: `Status` rejects the handshake, `Hang` never answers it,
    /// `Garbage` answers every frame with `not json{`.
    pub failure: Option<AimFailure>,
    /// Delay before answering each HTTP analyze call, in milliseconds.
    pub delay_ms: u64,
    /// Websocket: a chunk whose delta content contains this marker is
    /// answered with a `blocking_message`, whatever the mode.
    pub stream_block_marker: Option<String>,
    /// Websocket: after receiving this many chunk frames, close the TCP
    /// connection abruptly without answering the last one.
    pub ws_drop_after: Option<usize>,
    /// Websocket: answer frames no faster than one per this many
    /// milliseconds, while still reading each frame as soon as it arrives
    /// (an Aim that keeps up with the socket but verifies slowly). 0: each
    /// frame is answered as it arrives.
    pub ws_answer_interval_ms: u64,
    /// Websocket: after reading this many frames (answered as usual), stop
    /// reading the socket; it stays open and nothing more is answered, so
    /// what the peer sends backs up in the TCP buffers.
    pub ws_stop_reading_after: Option<usize>,
    /// Keep a record of each call and session; the benchmark turns it off.
    pub record: bool,
}

impl Default for AimOptions {
    fn default() -> Self {
        Self {
            api_key: "aim-mock-key".to_owned(),
            mode: AimMode::Block,
            failure: None,
            delay_ms: 0,
            stream_block_marker: None,
            ws_drop_after: None,
            ws_answer_interval_ms: 0,
            ws_stop_reading_after: None,
            record: true,
        }
    }
}

/// What the mock Aim does when it detects an e-mail address.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AimMode {
    /// `block_action`; on the websocket, a `blocking_message`.
    Block,
    /// `anonymize_action` with `redacted_chat`; on the websocket, the chunk
    /// with the addresses replaced.
    Anonymize,
    /// `monitor_action`; the websocket passes chunks through.
    Monitor,
    /// Never detect anything.
    Pass,
    /// Always answer analyze calls 200 with exactly this JSON (after auth,
    /// validation, failure and delay); the websocket passes chunks through.
    Raw(Value),
}

/// A failure the mock Aim injects.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AimFailure {
    /// Answer with this status and body.
    Status { status: u16, body: String },
    /// Answer 200 with the body `not json{`.
    Garbage,
    /// Never answer.
    Hang,
}

/// One websocket session the mock Aim accepted.
#[derive(Clone, Debug, Default, Serialize)]
pub struct RecordedStream {
    /// Handshake headers, names lowercased, in arrival order.
    pub headers: Vec<(String, String)>,
    /// Text (or UTF-8 binary) frames received, in order.
    pub frames: Vec<String>,
    /// Frames sent, in order.
    pub sent: Vec<String>,
    /// The peer closed the socket or cut the connection (seen only while
    /// the mock reads: not after `ws_stop_reading_after`).
    pub ended: bool,
}

impl RecordedStream {
    /// The first value of a handshake header, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A running mock Aim. Dropping it (or [`MockAim::shutdown`]) stops the
/// server and cuts its open connections and websocket sessions.
pub struct MockAim {
    shared: Arc<Shared>,
    server: ServerHandle,
}

struct Shared {
    options: RwLock<Arc<AimOptions>>,
    log: RequestLog,
    streams: Mutex<VecDeque<Arc<Mutex<RecordedStream>>>>,
}

impl Shared {
    fn options(&self) -> Arc<AimOptions> {
        super::read(&self.options).clone()
    }

    fn streams(&self) -> Vec<RecordedStream> {
        let entries: Vec<_> = lock(&self.streams).iter().cloned().collect();
        entries.iter().map(|s| lock(s).clone()).collect()
    }

    fn reset(&self) {
        self.log.clear();
        lock(&self.streams).clear();
    }
}

#[derive(Clone)]
struct AppState {
    shared: Arc<Shared>,
    /// Changes (closes) when the server stops; websocket sessions run on
    /// their own tasks and watch it to end with the server.
    closed: watch::Receiver<()>,
}

impl MockAim {
    /// Starts a mock Aim on `127.0.0.1` and an ephemeral port.
    ///
    /// # Panics
    /// If no local port can be bound, which only a broken test host causes.
    pub async fn start(opts: AimOptions) -> MockAim {
        let addr = SocketAddr::from(([127, 0, 0, 1], 0));
        match Self::start_on(addr, opts).await {
            Ok(mock) => mock,
            Err(e) => panic!("mock aim: cannot bind {addr}: {e}"),
        }
    }

    /// Starts a mock Aim on `addr`.
    pub async fn start_on(addr: SocketAddr, opts: AimOptions) -> std::io::Result<MockAim> {
        let shared = Arc::new(Shared {
            options: RwLock::new(Arc::new(opts)),
            log: RequestLog::default(),
            streams: Mutex::new(VecDeque::new()),
        });
        let state = shared.clone();
        let server = spawn_server(addr, |closed| {
            router(AppState {
                shared: state,
                closed,
            })
        })
        .await?;
        Ok(MockAim { shared, server })
    }

    /// The address the mock listens on.
    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    /// The `api_base` a gateway config uses: `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr())
    }

    /// The analyze calls received (most recent [`super::RECORD_CAP`]),
    /// rejected ones included, with the answers.
    pub fn requests(&self) -> Vec<Recorded> {
        self.shared.log.snapshot()
    }

    /// The websocket sessions accepted (most recent [`super::RECORD_CAP`]),
    /// as far as they have got.
    pub fn streams(&self) -> Vec<RecordedStream> {
        self.shared.streams()
    }

    /// The options in effect.
    pub fn options(&self) -> AimOptions {
        (*self.shared.options()).clone()
    }

    /// Replaces the options. Calls already being answered, and websocket
    /// sessions already open, keep theirs.
    pub fn set_options(&self, opts: AimOptions) {
        *super::write(&self.shared.options) = Arc::new(opts);
    }

    /// Clears the records.
    pub fn reset(&self) {
        self.shared.reset();
    }

    /// Stops the server and cuts its open connections.
    pub fn shutdown(self) {}
}

fn router(state: AppState) -> Router {
    Router::new()
        .route("/fw/v1/analyze", post(analyze))
        .route("/fw/v1/analyze/stream", get(analyze_stream))
        .route("/__mock/requests", get(control_requests))
        .route("/__mock/streams", get(control_streams))
        .route(
            "/__mock/options",
            get(control_get_options).post(control_set_options),
        )
        .route("/__mock/reset", post(control_reset))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(state)
}

async fn not_found() -> Response {
    json_response(StatusCode::NOT_FOUND, r#"{"detail":"Not Found"}"#)
}

async fn control_requests(State(st): State<AppState>) -> Response {
    json_response(StatusCode::OK, to_json(&st.shared.log.snapshot()))
}

async fn control_streams(State(st): State<AppState>) -> Response {
    json_response(StatusCode::OK, to_json(&st.shared.streams()))
}

async fn control_get_options(State(st): State<AppState>) -> Response {
    json_response(StatusCode::OK, to_json(&*st.shared.options()))
}

async fn control_set_options(State(st): State<AppState>, body: Bytes) -> Response {
    match serde_json::from_slice::<AimOptions>(&body) {
        Ok(opts) => {
            let echo = to_json(&opts);
            *super::write(&st.shared.options) = Arc::new(opts);
            json_response(StatusCode::OK, echo)
        }
        Err(e) => json_response(
            StatusCode::BAD_REQUEST,
            to_json(&serde_json::json!({ "detail": format!("invalid options: {e}") })),
        ),
    }
}

async fn control_reset(State(st): State<AppState>) -> Response {
    st.shared.reset();
    json_response(StatusCode::OK, "{}")
}

// ---- auth and validation ----

/// Aim's answers to a missing or wrong bearer token.
fn check_auth(headers: &HeaderMap, api_key: &str) -> Result<(), &'static str> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Err(r#"{"detail":"Authorization header is required"}"#);
    };
    let token = value.to_str().ok().and_then(|v| {
        v.strip_prefix("Bearer ")
            .or_else(|| v.strip_prefix("bearer "))
    });
    match token {
        Some(token) if token == api_key => Ok(()),
        _ => Err(r#"{"detail":"Invalid API token"}"#),
    }
}

/// The only body shape Aim accepts.
#[derive(Deserialize)]
struct AnalyzeRequest {
    messages: Vec<AimMessage>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
struct AimMessage {
    role: Role,
    content: String,
}

#[derive(Clone, Copy, Debug, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
enum Role {
    System,
    User,
    Assistant,
}

/// One entry of FastAPI's 422 `detail`.
#[derive(Serialize)]
struct ValidationError {
    loc: Vec<Loc>,
    msg: &'static str,
    #[serde(rename = "type")]
    kind: &'static str,
}

#[derive(Serialize)]
#[serde(untagged)]
enum Loc {
    Key(&'static str),
    Index(usize),
}

/// Parses an analyze body, or lists every problem the way FastAPI (pydantic
/// 2) does.
fn parse_analyze(body: &[u8]) -> Result<Vec<AimMessage>, Vec<ValidationError>> {
    if let Ok(req) = serde_json::from_slice::<AnalyzeRequest>(body) {
        return Ok(req.messages);
    }
    // The slow path only runs for bad bodies: find out what is wrong.
    let err = |loc: Vec<Loc>, msg, kind| ValidationError { loc, msg, kind };
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(vec![err(
            vec![Loc::Key("body")],
            "Field required",
            "missing",
        )]);
    }
    let value: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) => {
            let at = byte_offset(body, e.line(), e.column());
            return Err(vec![err(
                vec![Loc::Key("body"), Loc::Index(at)],
                "JSON decode error",
                "json_invalid",
            )]);
        }
    };
    let not_object = "Input should be a valid dictionary or object to extract fields from";
    let Some(obj) = value.as_object() else {
        return Err(vec![err(
            vec![Loc::Key("body")],
            not_object,
            "model_attributes_type",
        )]);
    };
    let Some(messages) = obj.get("messages") else {
        return Err(vec![err(
            vec![Loc::Key("body"), Loc::Key("messages")],
            "Field required",
            "missing",
        )]);
    };
    let Some(messages) = messages.as_array() else {
        return Err(vec![err(
            vec![Loc::Key("body"), Loc::Key("messages")],
            "Input should be a valid list",
            "list_type",
        )]);
    };
    let mut errors = Vec::new();
    let loc = |i: usize, field: Option<&'static str>| {
        let mut loc = vec![Loc::Key("body"), Loc::Key("messages"), Loc::Index(i)];
        loc.extend(field.map(Loc::Key));
        loc
    };
    for (i, m) in messages.iter().enumerate() {
        let Some(m) = m.as_object() else {
            errors.push(err(loc(i, None), not_object, "model_attributes_type"));
            continue;
        };
        match m.get("role") {
            None => errors.push(err(loc(i, Some("role")), "Field required", "missing")),
            Some(Value::String(r)) if matches!(r.as_str(), "system" | "user" | "assistant") => {}
            Some(_) => errors.push(err(
                loc(i, Some("role")),
                "Input should be 'system', 'user' or 'assistant'",
                "literal_error",
            )),
        }
        match m.get("content") {
            None => errors.push(err(loc(i, Some("content")), "Field required", "missing")),
            Some(Value::String(_)) => {}
            Some(_) => errors.push(err(
                loc(i, Some("content")),
                "Input should be a valid string",
                "string_type",
            )),
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    // Valid after all (a duplicate key, say, which serde rejects and pydantic
    // takes the last of).
    serde_json::from_value::<AnalyzeRequest>(value)
        .map(|r| r.messages)
        .map_err(|_| {
            vec![err(
                vec![Loc::Key("body")],
                not_object,
                "model_attributes_type",
            )]
        })
}

/// The byte offset of a 1-based line and column, as pydantic reports it.
fn byte_offset(body: &[u8], line: usize, column: usize) -> usize {
    let line_start: usize = body
        .split(|&b| b == b'\n')
        .take(line.saturating_sub(1))
        .map(|l| l.len() + 1)
        .sum();
    (line_start + column.saturating_sub(1)).min(body.len())
}

// ---- detection and answers ----

#[derive(Serialize)]
struct AnalyzeAnswer<'a> {
    analysis_result: AnalysisResult<'a>,
    required_action: RequiredAction<'a>,
    redacted_chat: Option<RedactedChat<'a>>,
}

#[derive(Serialize)]
struct AnalysisResult<'a> {
    analysis_time_ms: u64,
    policy_drill_down: PolicyDrillDown<'a>,
    last_message_entities: [(); 0],
    session_entities: [(); 0],
}

#[derive(Serialize)]
struct PolicyDrillDown<'a> {
    #[serde(rename = "PII")]
    pii: Detections<'a>,
}

#[derive(Serialize)]
struct Detections<'a> {
    detections: [Detection<'a>; 1],
}

#[derive(Serialize)]
struct Detection<'a> {
    message: &'a str,
}

#[derive(Serialize)]
struct RequiredAction<'a> {
    action_type: &'static str,
    policy_name: &'static str,
    detection_message: &'a str,
}

#[derive(Serialize)]
struct RedactedChat<'a> {
    all_redacted_messages: &'a [Scanned],
    redacted_new_message: Option<&'a Scanned>,
}

/// One message as the detector sees it: Aim's `{role, content}`, or a Cato
/// message (any role, a null content, text in its tool calls too).
#[derive(Clone, Debug, Serialize)]
struct Scanned {
    role: String,
    content: Option<String>,
    /// Text outside `content` (Cato's tool call arguments): scanned, never
    /// redacted (Cato redacts `content` only).
    #[serde(skip)]
    extra: String,
}

impl From<AimMessage> for Scanned {
    fn from(m: AimMessage) -> Self {
        let role = match m.role {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
        };
        Scanned {
            role: role.to_owned(),
            content: Some(m.content),
            extra: String::new(),
        }
    }
}

/// Cato's payload: `{"messages": [...]}` of objects with a string role and a
/// string or null content, whatever else they carry. None when it is not.
fn parse_cato(body: &[u8]) -> Option<Vec<Scanned>> {
    let value: Value = serde_json::from_slice(body).ok()?;
    let list = value.get("messages")?.as_array()?;
    list.iter()
        .map(|m| {
            let m = m.as_object()?;
            let role = m.get("role")?.as_str()?.to_owned();
            let content = match m.get("content") {
                None | Some(Value::Null) => None,
                Some(Value::String(s)) => Some(s.clone()),
                Some(_) => return None,
            };
            let mut extra = String::new();
            for key in ["tool_calls", "function_call"] {
                if let Some(v) = m.get(key) {
                    collect_strings(v, &mut extra);
                }
            }
            Some(Scanned {
                role,
                content,
                extra,
            })
        })
        .collect()
}

fn collect_strings(v: &Value, out: &mut String) {
    match v {
        Value::String(s) => {
            out.push('\n');
            out.push_str(s);
        }
        Value::Array(items) => items.iter().for_each(|i| collect_strings(i, out)),
        Value::Object(o) => o.values().for_each(|i| collect_strings(i, out)),
        _ => {}
    }
}

fn detection_message(address: &str) -> String {
    format!("\"{address}\" detected as email")
}

/// Numbers distinct addresses `[EMAIL_1]`, `[EMAIL_2]`, ... in order of first
/// appearance.
#[derive(Default)]
struct Redactor {
    seen: Vec<String>,
}

impl Redactor {
    /// `text` with every address replaced, or `None` when it has none.
    fn redact(&mut self, text: &str) -> Option<String> {
        let found = find_emails(text);
        if found.is_empty() {
            return None;
        }
        let mut out = String::with_capacity(text.len());
        let mut last = 0;
        for range in found {
            out.push_str(&text[last..range.start]);
            let address = &text[range.clone()];
            let n = match self.seen.iter().position(|s| s == address) {
                Some(i) => i + 1,
                None => {
                    self.seen.push(address.to_owned());
                    self.seen.len()
                }
            };
            out.push_str(&format!("[EMAIL_{n}]"));
            last = range.end;
        }
        out.push_str(&text[last..]);
        Some(out)
    }
}

/// The body of the 200 answer to a valid analyze call.
fn answer(opts: &AimOptions, headers: &HeaderMap, mut messages: Vec<Scanned>) -> Vec<u8> {
    let mode = &opts.mode;
    match mode {
        AimMode::Raw(raw) => return to_json(raw),
        AimMode::Pass => return CLEAN_ANSWER.into(),
        _ => {}
    }
    let hook = headers
        .get("x-aim-litellm-hook")
        .or_else(|| headers.get("x-cato-litellm-hook"))
        .and_then(|h| h.to_str().ok());
    // Output checks look at the model's answer only; input checks at all.
    let scanned = match hook {
        Some("output") => messages.len().saturating_sub(1)..messages.len(),
        _ => 0..messages.len(),
    };
    let first = messages[scanned.clone()].iter().find_map(|m| {
        [m.content.as_deref().unwrap_or_default(), m.extra.as_str()]
            .into_iter()
            .find_map(|text| {
                find_emails(text)
                    .first()
                    .map(|r| text[r.clone()].to_owned())
            })
    });
    let Some(address) = first else {
        return CLEAN_ANSWER.into();
    };
    let message = detection_message(&address);
    let action_type = match mode {
        AimMode::Block => "block_action",
        AimMode::Monitor => "monitor_action",
        _ => "anonymize_action",
    };
    if *mode == AimMode::Anonymize {
        let mut redactor = Redactor::default();
        for m in &mut messages[scanned] {
            if let Some(redacted) = m.content.as_deref().and_then(|c| redactor.redact(c)) {
                m.content = Some(redacted);
            }
        }
    }
    let result = AnalyzeAnswer {
        analysis_result: AnalysisResult {
            analysis_time_ms: 1,
            policy_drill_down: PolicyDrillDown {
                pii: Detections {
                    detections: [Detection { message: &message }],
                },
            },
            last_message_entities: [],
            session_entities: [],
        },
        required_action: RequiredAction {
            action_type,
            policy_name: "PII",
            detection_message: &message,
        },
        redacted_chat: (*mode == AimMode::Anonymize).then(|| RedactedChat {
            all_redacted_messages: &messages,
            redacted_new_message: messages.last(),
        }),
    };
    to_json(&result)
}

async fn analyze(
    State(st): State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let opts = st.shared.options();
    let entry = opts.record.then(|| {
        st.shared
            .log
            .push(&method, uri.path(), &headers, body.clone())
    });
    let (status, answer) = analyze_answer(&opts, &headers, &body).await;
    if let Some(entry) = entry {
        entry.append(&answer);
    }
    json_response(status, answer)
}

async fn analyze_answer(
    opts: &AimOptions,
    headers: &HeaderMap,
    body: &[u8],
) -> (StatusCode, Vec<u8>) {
    if let Err(detail) = check_auth(headers, &opts.api_key) {
        return (StatusCode::UNAUTHORIZED, detail.into());
    }
    let cato = headers.contains_key("x-cato-litellm-hook");
    let parsed = match cato.then(|| parse_cato(body)).flatten() {
        Some(messages) => Ok(messages),
        None => parse_analyze(body).map(|m| m.into_iter().map(Scanned::from).collect()),
    };
    let messages = match parsed {
        Ok(messages) => messages,
        Err(detail) => {
            #[derive(Serialize)]
            struct Unprocessable {
                detail: Vec<ValidationError>,
            }
            return (
                StatusCode::UNPROCESSABLE_ENTITY,
                to_json(&Unprocessable { detail }),
            );
        }
    };
    match &opts.failure {
        None => {}
        Some(AimFailure::Status { status, body }) => {
            let status = StatusCode::from_u16(*status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            return (status, body.clone().into_bytes());
        }
        Some(AimFailure::Garbage) => return (StatusCode::OK, b"not json{".to_vec()),
        Some(AimFailure::Hang) => std::future::pending().await,
    }
    if opts.delay_ms > 0 {
        tokio::time::sleep(Duration::from_millis(opts.delay_ms)).await;
    }
    (StatusCode::OK, answer(opts, headers, messages))
}

// ---- websocket ----

async fn analyze_stream(
    State(st): State<AppState>,
    headers: HeaderMap,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let opts = st.shared.options();
    if let Err(detail) = check_auth(&headers, &opts.api_key) {
        return json_response(StatusCode::UNAUTHORIZED, detail);
    }
    match &opts.failure {
        Some(AimFailure::Status { status, body }) => {
            let status = StatusCode::from_u16(*status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            return json_response(status, body.clone());
        }
        Some(AimFailure::Hang) => std::future::pending().await,
        Some(AimFailure::Garbage) | None => {}
    }
    let ws = match ws {
        Ok(ws) => ws,
        Err(rejection) => return rejection.into_response(),
    };
    let record = opts.record.then(|| {
        let rec = Arc::new(Mutex::new(RecordedStream {
            headers: header_pairs(&headers),
            ..RecordedStream::default()
        }));
        push_capped(&st.shared.streams, rec.clone());
        rec
    });
    let closed = st.closed.clone();
    ws.on_upgrade(move |socket| {
        let session = Session {
            socket,
            opts,
            record,
            redactor: Redactor::default(),
            chunks: 0,
        };
        session.run(closed)
    })
}

/// What to do with one received frame.
enum Reply {
    /// Send this and keep reading.
    Send(String),
    /// Send this, then close normally.
    SendAndClose(String),
    /// Cut the connection without a word.
    Drop,
    /// Close with an error code and reason.
    Error(&'static str),
}

struct Session {
    socket: WebSocket,
    opts: Arc<AimOptions>,
    record: Option<Arc<Mutex<RecordedStream>>>,
    redactor: Redactor,
    /// Chunk frames received so far, for `ws_drop_after`.
    chunks: usize,
}

/// Close code for "invalid frame payload data" (RFC 6455, 7.4.1).
const CLOSE_INVALID_PAYLOAD: u16 = 1007;
const CLOSE_NORMAL: u16 = 1000;

impl Session {
    async fn run(mut self, mut closed: watch::Receiver<()>) {
        let interval = Duration::from_millis(self.opts.ws_answer_interval_ms);
        // Frames read and not yet answered (more than one only with
        // `ws_answer_interval_ms`).
        let mut queue: VecDeque<String> = VecDeque::new();
        let mut next_answer = tokio::time::Instant::now();
        let mut read = 0;
        loop {
            let reading = self.opts.ws_stop_reading_after.is_none_or(|n| read < n);
            let due = !queue.is_empty();
            let msg = tokio::select! {
                biased;
                _ = closed.changed() => return,
                _ = tokio::time::sleep_until(next_answer), if due => None,
                msg = self.socket.recv(), if reading => Some(msg),
            };
            let Some(msg) = msg else {
                next_answer = tokio::time::Instant::now() + interval;
                if let Some(text) = queue.pop_front()
                    && !self.answer(&text, &mut closed).await
                {
                    return;
                }
                continue;
            };
            let text = match msg {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => {
                    if let Some(rec) = &self.record {
                        lock(rec).ended = true;
                    }
                    return;
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                Some(Ok(Message::Text(t))) => t.as_str().to_owned(),
                Some(Ok(Message::Binary(b))) => match String::from_utf8(b.into()) {
                    Ok(t) => t,
                    Err(_) => {
                        self.close(CLOSE_INVALID_PAYLOAD, "frame is not UTF-8", &mut closed)
                            .await;
                        return;
                    }
                },
            };
            if let Some(rec) = &self.record {
                lock(rec).frames.push(text.clone());
            }
            read += 1;
            queue.push_back(text);
        }
    }

    /// Answer one frame; false when the session is over.
    async fn answer(&mut self, text: &str, closed: &mut watch::Receiver<()>) -> bool {
        match self.reply(text) {
            Reply::Send(out) => self.send(out).await,
            Reply::SendAndClose(out) => {
                if self.send(out).await {
                    self.close(CLOSE_NORMAL, "", closed).await;
                }
                false
            }
            // Dropping the socket closes the TCP connection without a
            // close frame.
            Reply::Drop => false,
            Reply::Error(reason) => {
                self.close(CLOSE_INVALID_PAYLOAD, reason, closed).await;
                false
            }
        }
    }

    fn reply(&mut self, text: &str) -> Reply {
        let Ok(Value::Object(frame)) = serde_json::from_str::<Value>(text) else {
            return Reply::Error("frame is not a JSON object");
        };
        if frame.get("done") == Some(&Value::Bool(true)) {
            return match self.opts.failure {
                Some(AimFailure::Garbage) => Reply::Send("not json{".to_owned()),
                _ => Reply::SendAndClose(r#"{"done": true}"#.to_owned()),
            };
        }
        self.chunks += 1;
        if self.opts.ws_drop_after.is_some_and(|k| self.chunks >= k) {
            return Reply::Drop;
        }
        if self.opts.failure == Some(AimFailure::Garbage) {
            return Reply::Send("not json{".to_owned());
        }
        let mut frame = Value::Object(frame);
        let contents = || {
            frame["choices"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|c| c["delta"]["content"].as_str())
        };
        if let Some(marker) = self.opts.stream_block_marker.as_deref()
            && contents().any(|c| c.contains(marker))
        {
            return blocking(&format!("Stream blocked: found \"{marker}\""));
        }
        match self.opts.mode {
            AimMode::Block => {
                let found = contents().find_map(|c| {
                    find_emails(c)
                        .first()
                        .map(|r| detection_message(&c[r.clone()]))
                });
                if let Some(message) = found {
                    return blocking(&message);
                }
            }
            AimMode::Anonymize => {
                let mut changed = false;
                if let Some(choices) = frame.get_mut("choices").and_then(Value::as_array_mut) {
                    for choice in choices {
                        let Some(content) = choice.pointer_mut("/delta/content") else {
                            continue;
                        };
                        let redacted = content.as_str().and_then(|c| self.redactor.redact(c));
                        if let Some(redacted) = redacted {
                            *content = Value::String(redacted);
                            changed = true;
                        }
                    }
                }
                if changed {
                    return Reply::Send(to_string(&serde_json::json!({ "verified_chunk": frame })));
                }
            }
            AimMode::Monitor | AimMode::Pass | AimMode::Raw(_) => {}
        }
        // The chunk exactly as received.
        Reply::Send(format!(r#"{{"verified_chunk":{}}}"#, text.trim()))
    }

    /// Sends a text frame and records it; false when the peer is gone.
    async fn send(&mut self, text: String) -> bool {
        if let Some(rec) = &self.record {
            lock(rec).sent.push(text.clone());
        }
        let sent = self.socket.send(Message::Text(text.into())).await.is_ok();
        if !sent && let Some(rec) = &self.record {
            lock(rec).ended = true;
        }
        sent
    }

    /// Sends a close frame and waits (briefly) for the peer's, so the close
    /// handshake completes instead of looking like a dropped connection.
    async fn close(&mut self, code: u16, reason: &'static str, closed: &mut watch::Receiver<()>) {
        let frame = CloseFrame {
            code,
            reason: reason.into(),
        };
        if self.socket.send(Message::Close(Some(frame))).await.is_err() {
            return;
        }
        let drain = async {
            while let Some(Ok(msg)) = self.socket.recv().await {
                if matches!(msg, Message::Close(_)) {
                    break;
                }
            }
        };
        tokio::select! {
            _ = tokio::time::timeout(Duration::from_secs(2), drain) => {}
            _ = closed.changed() => {}
        }
    }
}

fn blocking(message: &str) -> Reply {
    #[derive(Serialize)]
    struct Blocking<'a> {
        blocking_message: &'a str,
    }
    Reply::SendAndClose(to_string(&Blocking {
        blocking_message: message,
    }))
}

fn to_string<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_default()
}
