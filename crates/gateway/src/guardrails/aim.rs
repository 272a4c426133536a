//! The Aim Security wire protocol (`docs/spec/aim.md`), also spoken by
//! Cato Networks under `x-cato-*` header names: `POST /fw/v1/analyze` for
//! input checks and non-streaming output checks, and a websocket at
//! `/fw/v1/analyze/stream` for streaming output.
//!
//! This module only speaks the protocol and reports what Aim said; what the
//! gateway does with a verdict lives in the pipeline (`guardrails/mod.rs`).

use std::fmt;
use std::time::Duration;

use axum::http::{HeaderMap, HeaderName, HeaderValue, Uri, header};
use bytes::Bytes;
use http_body_util::BodyExt;
use serde::{Deserialize, Serialize};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use std::sync::Arc;

use crate::body::budget::Budget;
use crate::body::{Collect, collect};
use crate::config::{GuardrailConfig, SslVerify, Vendor};
use crate::error::fmt_secs;
use crate::outbound::{Clients, HeaderBlock, USER_AGENT, WsError};

/// Upper bound on an analyze answer read into memory.
const MAX_ANSWER: usize = 4 * 1024 * 1024;

/// The LiteLLM release whose Aim protocol the gateway speaks, sent as
/// `x-aim-litellm-version`: Aim reads it to pick a backward-compatible
/// protocol, so the gateway's own version would look like an ancient
/// LiteLLM. The gateway names itself in `User-Agent` instead.
pub const LITELLM_PROTOCOL_VERSION: &str = "1.108.7";

/// One message as Aim sees it: role and plain text.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub role: String,
    pub content: String,
}

/// Which hook a call is made from (the `x-aim-litellm-hook` header).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hook {
    PreCall,
    During,
    Output,
}

impl Hook {
    /// The hook's index in [`crate::metrics::HOOKS`].
    pub fn index(self) -> usize {
        match self {
            Hook::PreCall => 0,
            Hook::During => 1,
            Hook::Output => 2,
        }
    }

    pub fn header_value(self) -> &'static str {
        match self {
            Hook::PreCall => "pre_call",
            Hook::During => "moderation",
            Hook::Output => "output",
        }
    }
}

/// What one request tells Aim about itself.
#[derive(Clone, Debug, Default)]
pub struct CallInfo {
    /// The gateway's call id (`x-litellm-call-id`), as sent.
    pub call_id: Option<HeaderValue>,
    /// The client's `x-aim-user-email` header, unchanged (Aim's).
    pub user_email: Option<HeaderValue>,
    /// The e-mail bound to the virtual key (Cato's: a client header is
    /// spoofable).
    pub key_email: Option<HeaderValue>,
    /// The virtual key's alias; never the key.
    pub key_alias: Option<String>,
}

/// Aim's decision, as `required_action.action_type` says.
#[derive(Debug)]
pub enum Verdict {
    Pass,
    Monitor,
    Block(String),
    /// The `redacted_chat` object, checked by the pipeline.
    Anonymize(Option<serde_json::Value>),
    Unknown(String),
}

/// Why Aim gave no verdict.
#[derive(Debug)]
pub enum Failure {
    Timeout(Duration),
    Unreachable,
    Status(u16),
    BadAnswer,
    StreamClosed,
    /// The gateway's budget of buffered answers could not hold the answer.
    OverBudget,
}

impl Failure {
    pub fn is_timeout(&self) -> bool {
        matches!(self, Failure::Timeout(_))
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Timeout(d) => write!(f, "timed out after {}s", fmt_secs(*d)),
            Failure::Unreachable => f.write_str("unreachable"),
            Failure::Status(s) => write!(f, "answered HTTP {s}"),
            Failure::BadAnswer => f.write_str("gave an answer that could not be read"),
            Failure::StreamClosed => f.write_str("closed the stream before it was complete"),
            Failure::OverBudget => {
                f.write_str("answered, but the gateway's memory budget of answers was in use")
            }
        }
    }
}

/// A configured Aim (or Cato) endpoint.
#[derive(Debug)]
pub struct Client {
    http: Arc<Clients>,
    analyze_url: Uri,
    stream_url: String,
    authorization: HeaderValue,
    /// Authorization, version and content type of every analyze call,
    /// encoded once.
    fixed: HeaderBlock,
    timeout: Duration,
    names: HeaderNames,
    vendor: Vendor,
    /// Analyze answers are read within it.
    pub(crate) budget: Arc<Budget>,
    /// `ssl_verify`, for analyze calls and the websocket alike.
    ssl_verify: Option<SslVerify>,
}

#[derive(Debug)]
struct HeaderNames {
    hook: HeaderName,
    version: HeaderName,
    call_id: HeaderName,
    user_email: HeaderName,
    key_alias: HeaderName,
}

impl HeaderNames {
    fn new(prefix: &str) -> Self {
        let name = |suffix: &str| {
            HeaderName::from_bytes(format!("{prefix}-{suffix}").as_bytes())
                .unwrap_or_else(|_| HeaderName::from_static("x-invalid"))
        };
        HeaderNames {
            hook: name("litellm-hook"),
            version: name("litellm-version"),
            call_id: name("call-id"),
            user_email: name("user-email"),
            key_alias: name("gateway-key-alias"),
        }
    }
}

#[derive(Serialize)]
struct AnalyzeBody<'a> {
    messages: &'a [Message],
}

/// Aim's payload for `messages`.
pub fn analyze_body(messages: &[Message]) -> Vec<u8> {
    // Serialising strings into a Vec cannot fail.
    serde_json::to_vec(&AnalyzeBody { messages }).unwrap_or_default()
}

#[derive(Deserialize)]
struct AnalyzeAnswer<'a> {
    #[serde(default, borrow)]
    required_action: Option<&'a serde_json::value::RawValue>,
    #[serde(default)]
    redacted_chat: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct RequiredAction {
    #[serde(default)]
    action_type: Option<String>,
    #[serde(default)]
    detection_message: Option<String>,
}

pub type Socket = crate::outbound::Socket;

impl Client {
    pub fn new(
        cfg: &GuardrailConfig,
        http: Arc<Clients>,
        budget: Arc<Budget>,
    ) -> Result<Self, String> {
        let prefix = match cfg.vendor {
            Vendor::Aim => "x-aim",
            Vendor::CatoNetworks => "x-cato",
        };
        let ws_base = if let Some(rest) = cfg.api_base.strip_prefix("https://") {
            format!("wss://{rest}")
        } else if let Some(rest) = cfg.api_base.strip_prefix("http://") {
            format!("ws://{rest}")
        } else {
            return Err(format!(
                "guardrail '{}': api_base must be http(s)",
                cfg.name
            ));
        };
        let mut authorization = HeaderValue::from_str(&format!("Bearer {}", cfg.api_key.expose()))
            .map_err(|_| {
                format!(
                    "guardrail '{}': api_key is not a valid header value",
                    cfg.name
                )
            })?;
        authorization.set_sensitive(true);
        let version = HeaderValue::from_static(LITELLM_PROTOCOL_VERSION);
        let json = HeaderValue::from_static("application/json");
        let agent = HeaderValue::from_static(USER_AGENT);
        let names = HeaderNames::new(prefix);
        let analyze_url = format!("{}/fw/v1/analyze", cfg.api_base)
            .parse::<Uri>()
            .map_err(|e| format!("guardrail '{}': api_base is not a valid URL: {e}", cfg.name))?;
        let fixed = HeaderBlock::new(
            Some(&analyze_url),
            [
                (&header::AUTHORIZATION, &authorization),
                (&names.version, &version),
                (&header::USER_AGENT, &agent),
                (&header::CONTENT_TYPE, &json),
            ],
        );
        Ok(Client {
            http,
            analyze_url,
            stream_url: format!("{ws_base}/fw/v1/analyze/stream"),
            authorization,
            fixed,
            timeout: cfg.timeout,
            names,
            vendor: cfg.vendor,
            budget,
            ssl_verify: cfg.ssl_verify.clone(),
        })
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The headers of docs/spec/aim.md section 3, for one hook.
    fn headers(&self, hook: Hook, info: &CallInfo) -> HeaderMap {
        // Room for these, content-type and host without growing.
        let mut h = HeaderMap::with_capacity(12);
        h.insert(header::AUTHORIZATION, self.authorization.clone());
        h.insert(
            self.names.version.clone(),
            HeaderValue::from_static(LITELLM_PROTOCOL_VERSION),
        );
        h.insert(header::USER_AGENT, HeaderValue::from_static(USER_AGENT));
        h.extend(self.call_headers(hook, info).into_iter().flatten());
        h
    }

    /// The headers of section 3 that change from call to call.
    fn call_headers(&self, hook: Hook, info: &CallInfo) -> [Option<(HeaderName, HeaderValue)>; 4] {
        let alias = info
            .key_alias
            .as_deref()
            .and_then(|a| HeaderValue::from_str(a).ok());
        let email = match self.vendor {
            Vendor::Aim => &info.user_email,
            Vendor::CatoNetworks => &info.key_email,
        };
        [
            Some((
                self.names.hook.clone(),
                HeaderValue::from_static(hook.header_value()),
            )),
            info.call_id
                .clone()
                .map(|v| (self.names.call_id.clone(), v)),
            email.clone().map(|v| (self.names.user_email.clone(), v)),
            alias.map(|v| (self.names.key_alias.clone(), v)),
        ]
    }

    /// One `POST /fw/v1/analyze` with `body` (the vendor's payload).
    pub async fn analyze(
        &self,
        hook: Hook,
        info: &CallInfo,
        body: Vec<u8>,
    ) -> Result<Verdict, Failure> {
        let headers = self.call_headers(hook, info);
        let headers = headers.iter().flatten().map(|(n, v)| (n, v));
        let call = async {
            let send = self.http.get().post(
                self.ssl_verify.as_ref(),
                &self.analyze_url,
                &self.fixed,
                headers,
                Bytes::from(body),
            );
            let response = send.await.map_err(|e| {
                tracing::debug!(error = ?e, "guardrail call failed");
                Failure::Unreachable
            })?;
            let status = response.status();
            let body = response.into_body().into_data_stream();
            let bytes = collect(body, MAX_ANSWER, None, Some(&self.budget))
                .await
                .map_err(|e| match e {
                    Collect::OverBudget => Failure::OverBudget,
                    Collect::TooLarge | Collect::Failed(_) => Failure::Unreachable,
                })?;
            if !status.is_success() {
                // Not the body: a validation error can quote the prompt.
                tracing::debug!(
                    status = status.as_u16(),
                    body_bytes = bytes.len(),
                    "guardrail answered with an error"
                );
                return Err(Failure::Status(status.as_u16()));
            }
            parse_answer(&bytes)
        };
        tokio::time::timeout(self.timeout, call)
            .await
            .map_err(|_| Failure::Timeout(self.timeout))?
    }

    /// Open the streaming-output websocket (hook `output`).
    pub async fn open_stream(&self, info: &CallInfo) -> Result<Socket, Failure> {
        let mut request = self
            .stream_url
            .as_str()
            .into_client_request()
            .map_err(|_| Failure::Unreachable)?;
        request
            .headers_mut()
            .extend(self.headers(Hook::Output, info));
        let connect =
            self.http
                .get()
                .websocket(self.ssl_verify.as_ref(), request, Some(ws_config()));
        match tokio::time::timeout(self.timeout, connect).await {
            Err(_) => Err(Failure::Timeout(self.timeout)),
            Ok(Ok(socket)) => Ok(socket),
            Ok(Err(WsError::Handshake(tokio_tungstenite::tungstenite::Error::Http(response)))) => {
                Err(Failure::Status(response.status().as_u16()))
            }
            Ok(Err(e)) => {
                tracing::debug!(error = ?e, "guardrail websocket failed");
                Err(Failure::Unreachable)
            }
        }
    }
}

/// Read an analyze answer. Anything but the documented object (`[]`, a
/// string, a `required_action` that is not an object, an `action_type` that
/// is not a string) is unreadable: an Aim failure, never a pass.
/// The largest frame Aim may send on the streaming socket: a verified chunk
/// is one SSE event, or a few merged; past it the socket fails (an Aim
/// failure) instead of buffering whatever Aim sends.
pub const MAX_STREAM_FRAME: usize = 2 * crate::sse::MAX_EVENT;

/// Aim's frames are small: a small read buffer (allocated up front, per
/// stream) and a bound on what one frame may hold.
fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(16 * 1024)
        .max_message_size(Some(MAX_STREAM_FRAME))
        .max_frame_size(Some(MAX_STREAM_FRAME))
}

fn parse_answer(bytes: &[u8]) -> Result<Verdict, Failure> {
    let bad = |what: &str| {
        tracing::debug!(what, "guardrail answer is not the expected JSON");
        Failure::BadAnswer
    };
    if bytes.trim_ascii_start().first() != Some(&b'{') {
        return Err(bad("not an object"));
    }
    let answer: AnalyzeAnswer = serde_json::from_slice(bytes).map_err(|_| bad("not JSON"))?;
    let Some(action) = answer.required_action.filter(|a| a.get() != "null") else {
        return Ok(Verdict::Pass);
    };
    if !action.get().starts_with('{') {
        return Err(bad("required_action is not an object"));
    }
    let action: RequiredAction =
        serde_json::from_str(action.get()).map_err(|_| bad("required_action"))?;
    Ok(match action.action_type.as_deref() {
        None => Verdict::Pass,
        Some("monitor_action") => Verdict::Monitor,
        Some("block_action") => Verdict::Block(
            action
                .detection_message
                .unwrap_or_else(|| "Blocked by guardrail policy".to_owned()),
        ),
        Some("anonymize_action") => Verdict::Anonymize(answer.redacted_chat),
        Some(other) => Verdict::Unknown(other.to_owned()),
    })
}

/// Aim's frames on the streaming socket.
#[derive(Debug)]
pub enum StreamFrame {
    Verified(Box<serde_json::value::RawValue>),
    Done,
    Blocked(String),
}

#[derive(Deserialize)]
struct RawFrame {
    #[serde(default)]
    verified_chunk: Option<Box<serde_json::value::RawValue>>,
    #[serde(default)]
    done: Option<bool>,
    #[serde(default)]
    blocking_message: Option<String>,
}

/// Read one frame Aim sent on the streaming socket.
pub fn parse_stream_frame(text: &[u8]) -> Result<StreamFrame, Failure> {
    let frame: RawFrame = serde_json::from_slice(text).map_err(|_| Failure::BadAnswer)?;
    if let Some(chunk) = frame.verified_chunk {
        return Ok(StreamFrame::Verified(chunk));
    }
    if let Some(msg) = frame.blocking_message {
        return Ok(StreamFrame::Blocked(msg));
    }
    if frame.done == Some(true) {
        return Ok(StreamFrame::Done);
    }
    Err(Failure::BadAnswer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts() {
        assert!(matches!(
            parse_answer(br#"{"required_action":null}"#),
            Ok(Verdict::Pass)
        ));
        assert!(matches!(parse_answer(br#"{}"#), Ok(Verdict::Pass)));
        assert!(matches!(
            parse_answer(br#"{"required_action":{"action_type":"block_action","detection_message":"x"}}"#),
            Ok(Verdict::Block(m)) if m == "x"
        ));
        assert!(matches!(
            parse_answer(br#"{"required_action":{"action_type":"weird"}}"#),
            Ok(Verdict::Unknown(_))
        ));
        assert!(matches!(parse_answer(b"nope"), Err(Failure::BadAnswer)));
        for bad in [
            &b"[]"[..],
            b"\"pass\"",
            b"3",
            b"null",
            br#"{"required_action":[]}"#,
            br#"{"required_action":"block_action"}"#,
            br#"{"required_action":{"action_type":["block_action"]}}"#,
            br#"{"required_action":{"action_type":"block_action","detection_message":{}}}"#,
        ] {
            assert!(
                matches!(parse_answer(bad), Err(Failure::BadAnswer)),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn stream_frames() {
        assert!(matches!(
            parse_stream_frame(br#"{"done": true}"#),
            Ok(StreamFrame::Done)
        ));
        assert!(matches!(
            parse_stream_frame(br#"{"blocking_message":"no"}"#),
            Ok(StreamFrame::Blocked(m)) if m == "no"
        ));
        assert!(matches!(
            parse_stream_frame(br#"{"verified_chunk":{"a":1}}"#),
            Ok(StreamFrame::Verified(c)) if c.get() == r#"{"a":1}"#
        ));
        assert!(parse_stream_frame(br#"{"other":1}"#).is_err());
    }
}
