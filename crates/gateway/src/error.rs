//! One error type for everything a client can be told, and the OpenAI-style
//! envelope it becomes: `{"error":{"message","type","param","code"}}`.
//!
//! The status and `type` of each variant live in one exhaustive `match`, so a
//! new failure cannot reach a client without a deliberate mapping. Messages
//! never carry a key: variants hold only what is safe to show.

use std::time::Duration;

use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::Serialize;

/// Everything that ends a request early.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Malformed body or field; `param` names the field when there is one.
    #[error("{message}")]
    InvalidRequest {
        message: String,
        param: Option<String>,
    },
    #[error(
        "/chat/completions: Invalid model name passed in model={0}. Call `/v1/models` to view available models for your key."
    )]
    UnknownModel(String),
    #[error("{0}")]
    Unauthorized(&'static str),
    #[error(
        "Authentication Error, API key not allowed to access model. This key can only access models={allowed:?}. Tried to access {model}"
    )]
    ModelAccessDenied { model: String, allowed: Vec<String> },
    #[error("Request body too large: the limit is {limit} bytes")]
    PayloadTooLarge { limit: usize },
    /// A rate, parallelism or capacity limit; `kind` is the error `type`.
    #[error("{message}")]
    RateLimited {
        message: String,
        retry_after: Duration,
        kind: &'static str,
        /// `x-ratelimit-*` headers describing the limit that was hit.
        headers: Vec<(HeaderName, HeaderValue)>,
    },
    /// A guardrail blocked the request or the response. The message is the
    /// vendor's detection message, unchanged (docs/spec/aim.md section 6).
    #[error("{0}")]
    GuardrailBlocked(String),
    /// A guardrail could not give a verdict and fails closed.
    #[error("guardrail '{name}' unavailable: {reason}")]
    GuardrailUnavailable {
        name: String,
        reason: String,
        timed_out: bool,
    },
    /// The upstream answered with an error: its status, and its body when it
    /// was already OpenAI-shaped (passed through untouched).
    #[error("{message}")]
    Upstream {
        status: StatusCode,
        body: Option<Bytes>,
        message: String,
        /// The upstream's `retry-after`, in seconds, passed on to the client.
        retry_after: Option<f64>,
    },
    #[error("{0}")]
    UpstreamUnreachable(String),
    #[error("{0}")]
    UpstreamTimeout(String),
    /// The gateway is short of a resource it shares between requests (the
    /// memory budget of buffered answers); the request may be retried.
    #[error("{0}")]
    Overloaded(String),
    #[error("Request timeout: the request body was not received within {}s", .0.as_secs_f64())]
    RequestTimeout(Duration),
    #[error("Not Found: {0}")]
    NotFound(String),
    #[error("Method {0} is not allowed on {1}")]
    MethodNotAllowed(String, String),
    /// A bug or an impossible state. The detail is logged, never sent.
    #[error("internal error: {0}")]
    Internal(String),
}

#[derive(Serialize)]
struct Envelope<'a> {
    error: Body<'a>,
}

#[derive(Serialize)]
struct Body<'a> {
    message: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
    param: Option<&'a str>,
    code: &'a str,
}

impl Error {
    pub fn invalid(message: impl Into<String>, param: Option<&str>) -> Self {
        Error::InvalidRequest {
            message: message.into(),
            param: param.map(str::to_owned),
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Error::InvalidRequest { .. } | Error::UnknownModel(_) | Error::GuardrailBlocked(_) => {
                StatusCode::BAD_REQUEST
            }
            Error::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Error::ModelAccessDenied { .. } => StatusCode::FORBIDDEN,
            Error::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Error::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Error::GuardrailUnavailable { timed_out, .. } => {
                if *timed_out {
                    StatusCode::GATEWAY_TIMEOUT
                } else {
                    StatusCode::BAD_GATEWAY
                }
            }
            Error::Upstream { status, .. } => *status,
            Error::UpstreamUnreachable(_) => StatusCode::BAD_GATEWAY,
            Error::UpstreamTimeout(_) => StatusCode::GATEWAY_TIMEOUT,
            Error::Overloaded(_) => StatusCode::SERVICE_UNAVAILABLE,
            Error::NotFound(_) => StatusCode::NOT_FOUND,
            Error::RequestTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            Error::MethodNotAllowed(..) => StatusCode::METHOD_NOT_ALLOWED,
            Error::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The envelope's `type`.
    pub fn kind(&self) -> &str {
        match self {
            Error::InvalidRequest { .. }
            | Error::UnknownModel(_)
            | Error::PayloadTooLarge { .. }
            | Error::GuardrailBlocked(_)
            | Error::NotFound(_)
            | Error::MethodNotAllowed(..) => "invalid_request_error",
            Error::Unauthorized(_) => "auth_error",
            Error::ModelAccessDenied { .. } => "key_model_access_denied",
            Error::RateLimited { kind, .. } => kind,
            Error::GuardrailUnavailable { .. } => "guardrail_unavailable",
            Error::Upstream { .. } | Error::UpstreamUnreachable(_) => "upstream_error",
            Error::UpstreamTimeout(_) | Error::RequestTimeout(_) => "timeout",
            Error::Overloaded(_) => "service_unavailable",
            Error::Internal(_) => "internal_error",
        }
    }

    fn param(&self) -> Option<&str> {
        match self {
            Error::InvalidRequest { param, .. } => param.as_deref(),
            Error::UnknownModel(_) => Some("model"),
            _ => None,
        }
    }

    /// The message a client may see. Internal errors say nothing specific.
    pub fn public_message(&self) -> String {
        match self {
            Error::Internal(_) => "Internal server error".to_owned(),
            other => other.to_string(),
        }
    }

    /// The exact bytes of the error envelope.
    pub fn body(&self) -> Bytes {
        if let Error::Upstream {
            body: Some(body), ..
        } = self
        {
            return body.clone();
        }
        envelope(
            &self.public_message(),
            self.kind(),
            self.param(),
            self.status(),
        )
    }

    /// The error as one SSE frame, for failures after a stream has started.
    pub fn sse_frame(&self) -> Bytes {
        crate::sse::frame(&self.body())
    }
}

/// Serialise one OpenAI-style error envelope.
pub fn envelope(message: &str, kind: &str, param: Option<&str>, status: StatusCode) -> Bytes {
    let code = status.as_u16().to_string();
    let env = Envelope {
        error: Body {
            message,
            kind,
            param,
            code: &code,
        },
    };
    // Serialising plain strings into a Vec cannot fail.
    serde_json::to_vec(&env).unwrap_or_default().into()
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let status = self.status();
        // 5xx messages are the gateway's own words; 4xx ones can quote the
        // client's input (a block quotes the prompt), so only the kind is logged.
        if status.is_server_error() {
            tracing::warn!(status = status.as_u16(), error = %self, "request failed");
        } else {
            tracing::debug!(
                status = status.as_u16(),
                kind = self.kind(),
                "request refused"
            );
        }
        let mut response = (status, self.body()).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        let retry_after = match &self {
            Error::RateLimited { retry_after, .. } => Some(retry_after.as_secs_f64()),
            Error::Upstream { retry_after, .. } => *retry_after,
            Error::Overloaded(_) => Some(1.0),
            _ => None,
        };
        if let Error::RateLimited { headers: extra, .. } = &self {
            for (name, value) in extra {
                headers.insert(name.clone(), value.clone());
            }
        }
        if let Some(secs) = retry_after {
            headers.insert(
                header::RETRY_AFTER,
                HeaderValue::from(secs.ceil().max(1.0) as u64),
            );
        }
        response
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Seconds as a message says them: `10`, or `2.5`.
pub fn fmt_secs(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s.fract() == 0.0 {
        format!("{s:.0}")
    } else {
        format!("{s}")
    }
}

/// Every configured secret (deployment keys, guardrail keys, the master key,
/// virtual keys), to take out of anything an upstream echoes back before a
/// client sees it: an upstream's 401 may quote the key it was sent. Values
/// under [`MIN_SECRET`] characters are placeholders (`EMPTY`, `none`,
/// `sk-1234` for a local model), not secrets: masking every `none` in an
/// error message would only garble it.
#[derive(Default)]
pub struct Secrets(Vec<(Vec<u8>, Vec<u8>)>);

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Secrets({})", self.0.len())
    }
}

impl Secrets {
    pub fn new<'a>(secrets: impl IntoIterator<Item = &'a str>) -> Self {
        let mut list: Vec<(Vec<u8>, Vec<u8>)> = vec![];
        for s in secrets {
            if s.chars().count() < MIN_SECRET || list.iter().any(|(k, _)| k == s.as_bytes()) {
                continue;
            }
            list.push((s.as_bytes().to_vec(), mask(s).into_bytes()));
        }
        // Longest first, so a secret that contains another is masked whole.
        list.sort_by_key(|(k, _)| std::cmp::Reverse(k.len()));
        Secrets(list)
    }

    /// `body` with every secret replaced by its mask; the same bytes (no
    /// copy) when it holds none.
    pub fn scrub(&self, body: Bytes) -> Bytes {
        let mut out: Option<Vec<u8>> = None;
        for (secret, masked) in &self.0 {
            let text = out.as_deref().unwrap_or(&body);
            if memchr::memmem::find(text, secret).is_none() {
                continue;
            }
            let mut next = Vec::with_capacity(text.len());
            let mut rest = text;
            while let Some(at) = memchr::memmem::find(rest, secret) {
                next.extend_from_slice(&rest[..at]);
                next.extend_from_slice(masked);
                rest = &rest[at + secret.len()..];
            }
            next.extend_from_slice(rest);
            out = Some(next);
        }
        out.map_or(body, Bytes::from)
    }
}

/// The shortest configured value treated as a secret.
pub const MIN_SECRET: usize = 8;

/// `sk-...` and the secret's last 4 characters.
fn mask(secret: &str) -> String {
    let chars: Vec<char> = secret.chars().collect();
    let last: String = chars[chars.len().saturating_sub(4)..].iter().collect();
    format!("sk-...{last}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guardrail_block_is_byte_exact() {
        let err = Error::GuardrailBlocked("\"ishaan@berri.ai\" detected as email".into());
        assert_eq!(
            &err.body()[..],
            br#"{"error":{"message":"\"ishaan@berri.ai\" detected as email","type":"invalid_request_error","param":null,"code":"400"}}"#
        );
    }

    #[test]
    fn internal_detail_is_not_sent() {
        let err = Error::Internal("secret detail".into());
        let body = String::from_utf8(err.body().to_vec()).unwrap();
        assert!(!body.contains("secret"));
        assert!(body.contains(r#""code":"500""#));
    }

    #[test]
    fn secrets_are_masked() {
        let s = Secrets::new([
            "sk-upstream-secret-1234",
            "sk-upstream-secret-1234-longer",
            "key",
            "EMPTY",
            "",
        ]);
        // Placeholders under 8 characters are not secrets: "key" stays.
        let body = Bytes::from_static(
            br#"{"error":{"message":"Incorrect API key provided: sk-upstream-secret-1234 (and sk-upstream-secret-1234-longer); EMPTY"}}"#,
        );
        assert_eq!(
            &s.scrub(body)[..],
            br#"{"error":{"message":"Incorrect API key provided: sk-...1234 (and sk-...nger); EMPTY"}}"#
        );
        let clean = Bytes::from_static(b"nothing here");
        let out = Secrets::new(["sk-abcdefgh"]).scrub(clean.clone());
        assert_eq!(out.as_ptr(), clean.as_ptr(), "no copy when nothing matches");
    }

    #[test]
    fn unavailable_names_guardrail() {
        let err = Error::GuardrailUnavailable {
            name: "aim-protected-app".into(),
            reason: "timed out after 10s".into(),
            timed_out: true,
        };
        assert_eq!(err.status(), StatusCode::GATEWAY_TIMEOUT);
        assert_eq!(
            &err.body()[..],
            br#"{"error":{"message":"guardrail 'aim-protected-app' unavailable: timed out after 10s","type":"guardrail_unavailable","param":null,"code":"504"}}"#
        );
    }
}
