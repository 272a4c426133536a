//! The mock Aim Security API: `POST /fw/v1/analyze` and the websocket
//! `GET /fw/v1/analyze/stream`, speaking the contract of `docs/spec/aim.md`, plus
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
//! On the websocket it reads every text of a chunk's delta (content,
//! refusal, reasoning, tool call arguments), each field continuing its text
//! from earlier chunks, so an address split over chunks is found when its
//! last piece arrives.
//!
//! Control API: `GET /__mock/requests` (analyze calls), `GET /__mock/streams`
//! (websocket sessions), `GET|POST /__mock/options`, `POST /__mock/reset`.

mod detect;
mod validate;
mod ws;

use detect::*;
use validate::*;
use ws::*;

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
    /// Websocket: a chunk with this marker in any text of its delta
    /// (content, refusal, reasoning, tool call arguments) is answered with a
    /// `blocking_message`, whatever the mode. Block mode looks for e-mail
    /// addresses in the same texts.
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
