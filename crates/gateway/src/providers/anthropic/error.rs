//! Anthropic's errors as the gateway answers them (spec section 1.6; W
//! `litellm_core_utils/exception_mapping_utils.py` `_map_anthropic_exception`).
//!
//! The body is LiteLLM's: `{"error":{"message":"litellm.<Class>:
//! AnthropicException - <raw upstream JSON>","type":…,"param":null,
//! "code":"<status>"}}`, with every configured secret masked in the quoted
//! upstream text. The status and the [`Error`] variant decide what the
//! router does with it:
//!
//! | Anthropic | Client | Router |
//! |---|---|---|
//! | 529, 500, `overloaded_error` | 500 `internal_server_error` | retried, counts for cooldown |
//! | 429 | 429 `throttling_error` | retried, counts for cooldown |
//! | 502, 503 | same status | retried, counts for cooldown |
//! | 504 | 504 timeout ([`Error::UpstreamTimeout`]) | retried, counts for cooldown |
//! | 400, 413 | 400 `invalid_request_error` | not retried |
//! | "prompt is too long" | 400 `ContextWindowExceededError` | context-window fallbacks (see below) |
//! | 401, 403, 404, 408 | same status | not retried, fallbacks apply |
//!
//! The router's classifier recognises a context-window error by
//! `context_length_exceeded` or `maximum context length` in the body; LiteLLM's
//! Anthropic message says `ContextWindowExceededError` (and
//! `ContentPolicyViolationError` for a content-policy refusal), so the
//! classifier needs to learn those two words for `context_window_fallbacks`
//! and `content_policy_fallbacks` to apply.

use axum::http::StatusCode;
use bytes::Bytes;
use serde::Serialize;

use crate::error::{Error, Secrets};

/// The `error` object of a LiteLLM proxy error.
#[derive(Serialize)]
struct Envelope<'a> {
    error: Inner<'a>,
}

#[derive(Serialize)]
struct Inner<'a> {
    message: &'a str,
    #[serde(rename = "type")]
    kind: Option<&'a str>,
    param: Option<&'a str>,
    code: &'a str,
}

/// LiteLLM's error body.
pub(crate) fn envelope(message: &str, kind: Option<&str>, status: StatusCode) -> Bytes {
    let code = status.as_u16().to_string();
    let env = Envelope {
        error: Inner {
            message,
            kind,
            param: None,
            code: &code,
        },
    };
    // Serialising plain strings into a Vec cannot fail.
    serde_json::to_vec(&env).unwrap_or_default().into()
}

fn upstream(
    status: StatusCode,
    message: String,
    kind: Option<&str>,
    retry_after: Option<f64>,
) -> Error {
    Error::Upstream {
        status,
        body: Some(envelope(&message, kind, status)),
        message,
        retry_after,
    }
}

/// Substrings that make LiteLLM call an error a context-window error
/// (`ExceptionCheckers.is_error_str_context_window_exceeded`), lowercase.
const CONTEXT_WINDOW: &[&str] = &[
    "exceed context limit",
    "this model's maximum context length is",
    "string too long. expected a string with maximum length",
    "model's maximum context limit",
    "is longer than the model's context length",
    "input tokens exceed the configured limit",
    "`inputs` tokens + `max_new_tokens` must be",
    "exceeds the available context size",
    "exceeds the maximum number of tokens allowed",
];

fn is_context_window(text: &str) -> bool {
    if text.contains("prompt is too long") || text.contains("prompt: length") {
        return true;
    }
    let lower = text.to_lowercase();
    if lower.contains("string_above_max_length")
        || (lower.contains("invalid 'user'") && lower.contains("string too long"))
    {
        return false;
    }
    CONTEXT_WINDOW.iter().any(|s| lower.contains(s))
        || (lower.contains("current length is") && lower.contains("while limit is"))
        || (lower.contains("maximum input length is") && lower.contains("tokens"))
}

/// A non-2xx answer from Anthropic: its status, its body (as read, bounded
/// by the caller), its `retry-after` in seconds.
pub fn from_upstream(
    status: StatusCode,
    body: &[u8],
    retry_after: Option<f64>,
    secrets: &Secrets,
) -> Error {
    let body = secrets.scrub(Bytes::copy_from_slice(body));
    let text = String::from_utf8_lossy(&body);
    classify(status.as_u16(), &text, retry_after)
}

/// A stream's `error` event (`{"type":"error","error":{"type","message"}}`),
/// after the response head went out. LiteLLM raises it with status 500 and
/// the error's message as its text (W `handler.py:1159-1168`).
pub fn from_stream_event(event: &[u8], secrets: &Secrets) -> Error {
    #[derive(serde::Deserialize)]
    struct Event<'a> {
        #[serde(borrow, default)]
        error: Option<Detail<'a>>,
    }
    #[derive(serde::Deserialize)]
    struct Detail<'a> {
        #[serde(borrow, default)]
        message: Option<std::borrow::Cow<'a, str>>,
    }
    let message = serde_json::from_slice::<Event<'_>>(event)
        .ok()
        .and_then(|e| e.error?.message)
        .filter(|m| !m.is_empty());
    let text = match message {
        Some(m) => m.into_owned(),
        None => String::from_utf8_lossy(event).into_owned(),
    };
    let text = secrets.scrub(Bytes::from(text));
    classify(500, &String::from_utf8_lossy(&text), None)
}

/// LiteLLM's exception for an Anthropic error text and status.
fn classify(status: u16, text: &str, retry_after: Option<f64>) -> Error {
    const BAD: StatusCode = StatusCode::BAD_REQUEST;
    const INVALID: Option<&str> = Some("invalid_request_error");
    const INTERNAL: Option<&str> = Some("internal_server_error");
    if is_context_window(text) {
        let message = format!(
            "litellm.ContextWindowExceededError: litellm.BadRequestError: AnthropicError - {text}"
        );
        return upstream(BAD, message, INVALID, None);
    }
    if text.contains("overloaded_error") || text.contains("Overloaded") {
        let message = format!("litellm.InternalServerError: AnthropicError - {text}");
        return upstream(
            StatusCode::INTERNAL_SERVER_ERROR,
            message,
            INTERNAL,
            retry_after,
        );
    }
    if text.contains("Invalid API Key") {
        let message = format!("litellm.AuthenticationError: AnthropicError - {text}");
        return upstream(StatusCode::UNAUTHORIZED, message, None, None);
    }
    if text.contains("content filtering policy") {
        let message = format!(
            "litellm.BadRequestError: litellm.ContentPolicyViolationError: AnthropicError - {text}"
        );
        return upstream(BAD, message, INVALID, None);
    }
    let (code, class, kind, suffix) = match status {
        401 => (401, "AuthenticationError", None, ""),
        403 => (403, "PermissionDeniedError", None, ""),
        400 | 413 => (400, "BadRequestError", INVALID, ""),
        404 => (404, "NotFoundError", None, ""),
        408 => (408, "Timeout", None, ""),
        429 => (429, "RateLimitError", Some("throttling_error"), ""),
        500 | 529 => (
            500,
            "InternalServerError",
            INTERNAL,
            ". Handle with `litellm.InternalServerError`.",
        ),
        502 => {
            let message =
                format!("litellm.BadGatewayError: AnthropicException BadGatewayError - {text}");
            return upstream(StatusCode::BAD_GATEWAY, message, None, retry_after);
        }
        503 => (
            503,
            "ServiceUnavailableError",
            None,
            ". Handle with `litellm.ServiceUnavailableError`.",
        ),
        504 => {
            return Error::UpstreamTimeout(format!(
                "litellm.Timeout: AnthropicException Timeout - {text}"
            ));
        }
        // LiteLLM has no mapping for other codes and answers its generic
        // APIConnectionError 500; the upstream's status is more useful.
        other => {
            let status = super::status(other);
            let message = format!("litellm.APIError: AnthropicException - {text}");
            return upstream(status, message, None, retry_after);
        }
    };
    let message = format!("litellm.{class}: AnthropicException - {text}{suffix}");
    upstream(super::status(code), message, kind, retry_after)
}

/// No key and no token anywhere: LiteLLM's `AuthenticationError`.
pub fn missing_key() -> Error {
    upstream(
        StatusCode::UNAUTHORIZED,
        "litellm.AuthenticationError: Missing Anthropic API Key - A call is being made to anthropic but no key is set either in the environment variables or via params. Please set `ANTHROPIC_API_KEY` or `ANTHROPIC_AUTH_TOKEN` in your environment vars".to_owned(),
        None,
        None,
    )
}

/// A request the translation refuses, in LiteLLM's `BadRequestError` words.
pub(crate) fn bad_request(message: impl std::fmt::Display) -> Error {
    Error::invalid(format!("litellm.BadRequestError: {message}"), None)
}

/// A parameter the model does not take, in LiteLLM's
/// `UnsupportedParamsError` words.
pub(crate) fn unsupported(message: impl std::fmt::Display) -> Error {
    Error::invalid(format!("litellm.UnsupportedParamsError: {message}"), None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(e: &Error) -> serde_json::Value {
        serde_json::from_slice(&e.body()).unwrap()
    }

    const OVERLOADED: &[u8] =
        br#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#;
    const INVALID: &[u8] = br#"{"type":"error","error":{"type":"invalid_request_error","message":"max_tokens: Field required"}}"#;

    #[test]
    fn overloaded_529_is_a_retryable_500() {
        let e = from_upstream(
            StatusCode::from_u16(529).unwrap(),
            OVERLOADED,
            Some(3.0),
            &Secrets::default(),
        );
        assert_eq!(e.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(matches!(
            e,
            Error::Upstream {
                retry_after: Some(3.0),
                ..
            }
        ));
        assert_eq!(
            body(&e),
            serde_json::json!({"error": {
                "message": format!("litellm.InternalServerError: AnthropicError - {}", String::from_utf8_lossy(OVERLOADED)),
                "type": "internal_server_error", "param": null, "code": "500"}})
        );
    }

    #[test]
    fn plain_500_and_statuses() {
        let api_error =
            br#"{"type":"error","error":{"type":"api_error","message":"Internal server error"}}"#;
        let e = from_upstream(
            StatusCode::INTERNAL_SERVER_ERROR,
            api_error,
            None,
            &Secrets::default(),
        );
        assert_eq!(
            body(&e)["error"]["message"],
            format!(
                "litellm.InternalServerError: AnthropicException - {}. Handle with `litellm.InternalServerError`.",
                String::from_utf8_lossy(api_error)
            )
        );
        let e = from_upstream(StatusCode::BAD_REQUEST, INVALID, None, &Secrets::default());
        assert_eq!(e.status(), StatusCode::BAD_REQUEST);
        assert_eq!(
            body(&e),
            serde_json::json!({"error": {
                "message": format!("litellm.BadRequestError: AnthropicException - {}", String::from_utf8_lossy(INVALID)),
                "type": "invalid_request_error", "param": null, "code": "400"}})
        );
        let status_of = |s: u16| {
            from_upstream(
                StatusCode::from_u16(s).unwrap(),
                b"{}",
                None,
                &Secrets::default(),
            )
            .status()
            .as_u16()
        };
        assert_eq!(status_of(413), 400);
        assert_eq!(status_of(401), 401);
        assert_eq!(status_of(403), 403);
        assert_eq!(status_of(404), 404);
        assert_eq!(status_of(408), 408);
        assert_eq!(status_of(429), 429);
        assert_eq!(status_of(502), 502);
        assert_eq!(status_of(503), 503);
        assert_eq!(status_of(418), 418);
        let timeout = from_upstream(
            StatusCode::GATEWAY_TIMEOUT,
            b"{}",
            None,
            &Secrets::default(),
        );
        assert!(matches!(timeout, Error::UpstreamTimeout(_)));
        assert_eq!(timeout.status(), StatusCode::GATEWAY_TIMEOUT);
        let limited = from_upstream(
            StatusCode::TOO_MANY_REQUESTS,
            b"{}",
            Some(7.0),
            &Secrets::default(),
        );
        assert_eq!(body(&limited)["error"]["type"], "throttling_error");
        assert!(matches!(
            limited,
            Error::Upstream {
                retry_after: Some(7.0),
                ..
            }
        ));
    }

    #[test]
    fn prompt_too_long_is_a_context_window_error() {
        let raw = br#"{"type":"error","error":{"type":"invalid_request_error","message":"prompt is too long: 210000 tokens > 200000 maximum"}}"#;
        let e = from_upstream(StatusCode::BAD_REQUEST, raw, None, &Secrets::default());
        assert_eq!(e.status(), StatusCode::BAD_REQUEST);
        let msg = body(&e)["error"]["message"].as_str().unwrap().to_owned();
        assert!(
            msg.starts_with(
                "litellm.ContextWindowExceededError: litellm.BadRequestError: AnthropicError - "
            ),
            "{msg}"
        );
        // Whatever the status: LiteLLM checks the text first.
        let e = from_upstream(
            StatusCode::INTERNAL_SERVER_ERROR,
            raw,
            None,
            &Secrets::default(),
        );
        assert_eq!(e.status(), StatusCode::BAD_REQUEST);
    }

    #[test]
    fn content_policy_and_bad_keys() {
        let raw = br#"{"type":"error","error":{"type":"invalid_request_error","message":"Output blocked by content filtering policy"}}"#;
        let e = from_upstream(StatusCode::BAD_REQUEST, raw, None, &Secrets::default());
        assert!(e.to_string().starts_with(
            "litellm.BadRequestError: litellm.ContentPolicyViolationError: AnthropicError - "
        ));
        let raw = br#"{"type":"error","error":{"type":"authentication_error","message":"Invalid API Key"}}"#;
        let e = from_upstream(StatusCode::FORBIDDEN, raw, None, &Secrets::default());
        assert_eq!(e.status(), StatusCode::UNAUTHORIZED);
    }

    #[test]
    fn secrets_in_the_quoted_body_are_masked() {
        let raw = br#"{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key sk-ant-api03-secretsecret"}}"#;
        let e = from_upstream(
            StatusCode::UNAUTHORIZED,
            raw,
            None,
            &Secrets::new(["sk-ant-api03-secretsecret"]),
        );
        let text = String::from_utf8_lossy(&e.body()).into_owned();
        assert!(!text.contains("secretsecret"), "{text}");
        assert!(text.contains("sk-...cret"), "{text}");
    }

    #[test]
    fn stream_error_event() {
        let e = from_stream_event(OVERLOADED, &Secrets::default());
        assert_eq!(e.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(
            body(&e)["error"]["message"],
            "litellm.InternalServerError: AnthropicError - Overloaded"
        );
        let e = from_stream_event(
            br#"{"type":"error","error":{"details":null,"type":"api_error","message":"Internal server error"}}"#,
            &Secrets::default(),
        );
        assert_eq!(
            body(&e)["error"]["message"],
            "litellm.InternalServerError: AnthropicException - Internal server error. Handle with `litellm.InternalServerError`."
        );
        // Not even JSON: the raw event is the message, still a 500.
        let e = from_stream_event(b"garbage", &Secrets::default());
        assert_eq!(e.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }
}
