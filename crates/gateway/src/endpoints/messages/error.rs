//! The gateway's errors in Anthropic's shape:
//! `{"type":"error","error":{"type":<type>,"message":<message>}}` with the
//! same status the gateway gives everywhere, as a JSON answer or as the
//! `error` event that ends a stream.
//!
//! The `type` follows the status, as Anthropic's error reference lists it:
//! 400 `invalid_request_error` (also every other 4xx, as Anthropic says),
//! 401 `authentication_error`, 402 `billing_error`, 403 `permission_error`,
//! 404 `not_found_error`, 413 `request_too_large`, 429 `rate_limit_error`,
//! 504 `timeout_error`, 529 `overloaded_error`, every other 5xx (502
//! included) `api_error`. A guardrail block is a 400 carrying the vendor's
//! detection message unchanged. An upstream error gives its message: an
//! Anthropic deployment's error arrives as LiteLLM's (the provider maps it,
//! a 529 to a 500 `api_error` as LiteLLM answers), an OpenAI-shaped one as
//! it came; an error body already in Anthropic's shape would pass through
//! as it is (its secrets masked).

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::Deserialize;

use super::request::ROUTE;
use super::response::json_str;
use crate::error::Error;

/// Anthropic's error `type` for a status.
pub fn error_type(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "invalid_request_error",
        401 => "authentication_error",
        402 => "billing_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        504 => "timeout_error",
        529 => "overloaded_error",
        s if s < 500 => "invalid_request_error",
        _ => "api_error",
    }
}

/// The status of `err` (the gateway's, as for chat).
pub fn status(err: &Error) -> StatusCode {
    err.status()
}

/// The JSON body for `err`.
pub fn body(err: &Error) -> Bytes {
    if let Some(raw) = anthropic_shaped(err) {
        return raw.clone();
    }
    let (kind, message) = parts(err);
    envelope(&kind, &message).into()
}

/// `err` as the `error` event that ends a stream.
pub fn sse_event(err: &Error) -> Bytes {
    let (kind, message) = parts(err);
    let mut out = Vec::with_capacity(message.len() + 64);
    out.extend_from_slice(b"event: error\ndata: ");
    out.extend_from_slice(&envelope(&kind, &message));
    out.extend_from_slice(b"\n\n");
    out.into()
}

/// The answer for `err` on `/v1/messages`: the Anthropic body, with the
/// status, logging and headers (`retry-after`, `x-ratelimit-*`) the
/// gateway gives the error anywhere.
pub fn into_response(err: Error) -> Response {
    let body = body(&err);
    let mut response = err.into_response();
    response.headers_mut().remove(header::CONTENT_LENGTH);
    *response.body_mut() = axum::body::Body::from(body);
    response
}

/// The error's type and message.
fn parts(err: &Error) -> (String, String) {
    let status = err.status();
    let kind = error_type(status).to_owned();
    let message = match err {
        Error::UnknownModel(model) => format!(
            "{ROUTE}: Invalid model name passed in model={model}. Call `/v1/models` to view available models for your key."
        ),
        Error::Upstream { body: Some(b), .. } => match serde_json::from_slice::<Shape>(b) {
            Ok(Shape {
                kind: Some(t),
                error:
                    Detail {
                        kind: Some(k),
                        message: Some(m),
                    },
            }) if t == "error" => return (k, m),
            Ok(Shape {
                error: Detail {
                    message: Some(m), ..
                },
                ..
            }) => m,
            _ => err.public_message(),
        },
        _ => err.public_message(),
    };
    (kind, message)
}

/// The upstream's error body when it is already Anthropic's shape.
fn anthropic_shaped(err: &Error) -> Option<&Bytes> {
    let Error::Upstream { body: Some(b), .. } = err else {
        return None;
    };
    match serde_json::from_slice::<Shape>(b) {
        Ok(Shape {
            kind: Some(t),
            error:
                Detail {
                    kind: Some(_),
                    message: Some(_),
                },
        }) if t == "error" => Some(b),
        _ => None,
    }
}

fn envelope(kind: &str, message: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + 48);
    out.extend_from_slice(b"{\"type\":\"error\",\"error\":{\"type\":");
    json_str(&mut out, kind);
    out.extend_from_slice(b",\"message\":");
    json_str(&mut out, message);
    out.extend_from_slice(b"}}");
    out
}

/// An error body, Anthropic's (`type` and `error`) or OpenAI's (`error`).
#[derive(Deserialize)]
struct Shape {
    #[serde(rename = "type")]
    kind: Option<String>,
    error: Detail,
}

#[derive(Deserialize)]
struct Detail {
    #[serde(rename = "type")]
    kind: Option<String>,
    message: Option<String>,
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use axum::http::HeaderValue;
    use http_body_util::BodyExt;

    use super::*;

    fn both(err: &Error) -> (u16, String) {
        (
            status(err).as_u16(),
            String::from_utf8(body(err).to_vec()).unwrap(),
        )
    }

    fn upstream(status: u16, body: &str) -> Error {
        Error::Upstream {
            status: StatusCode::from_u16(status).unwrap(),
            body: Some(Bytes::from(body.to_owned())),
            message: format!("the upstream for model 'm' answered HTTP {status}"),
            retry_after: None,
        }
    }

    #[test]
    fn every_error_in_anthropics_shape() {
        let cases: Vec<(Error, u16, &str)> = vec![
            (
                Error::GuardrailBlocked("\"a@b.com\" detected as email".into()),
                400,
                r#"{"type":"error","error":{"type":"invalid_request_error","message":"\"a@b.com\" detected as email"}}"#,
            ),
            (
                Error::invalid("messages.0.role: Field required", Some("messages.0.role")),
                400,
                r#"{"type":"error","error":{"type":"invalid_request_error","message":"messages.0.role: Field required"}}"#,
            ),
            (
                Error::UnknownModel("gpt-9".into()),
                400,
                r#"{"type":"error","error":{"type":"invalid_request_error","message":"anthropic_messages: Invalid model name passed in model=gpt-9. Call `/v1/models` to view available models for your key."}}"#,
            ),
            (
                Error::Unauthorized("Authentication Error, No api key passed in."),
                401,
                r#"{"type":"error","error":{"type":"authentication_error","message":"Authentication Error, No api key passed in."}}"#,
            ),
            (
                Error::ModelAccessDenied {
                    model: "m".into(),
                    allowed: vec!["a".into()],
                },
                403,
                r#"{"type":"error","error":{"type":"permission_error","message":"Authentication Error, API key not allowed to access model. This key can only access models=[\"a\"]. Tried to access m"}}"#,
            ),
            (
                Error::NotFound("/v1/nope".into()),
                404,
                r#"{"type":"error","error":{"type":"not_found_error","message":"Not Found: /v1/nope"}}"#,
            ),
            (
                Error::MethodNotAllowed("GET".into(), "/v1/messages".into()),
                405,
                r#"{"type":"error","error":{"type":"invalid_request_error","message":"Method GET is not allowed on /v1/messages"}}"#,
            ),
            (
                Error::RequestTimeout(Duration::from_secs(30)),
                408,
                r#"{"type":"error","error":{"type":"invalid_request_error","message":"Request timeout: the request body was not received within 30s"}}"#,
            ),
            (
                Error::PayloadTooLarge { limit: 1024 },
                413,
                r#"{"type":"error","error":{"type":"request_too_large","message":"Request body too large: the limit is 1024 bytes"}}"#,
            ),
            (
                Error::RateLimited {
                    message: "Rate limit reached".into(),
                    retry_after: Duration::from_secs(3),
                    kind: "rate_limit_error",
                    headers: vec![],
                },
                429,
                r#"{"type":"error","error":{"type":"rate_limit_error","message":"Rate limit reached"}}"#,
            ),
            (
                Error::Internal("secret detail".into()),
                500,
                r#"{"type":"error","error":{"type":"api_error","message":"Internal server error"}}"#,
            ),
            (
                Error::UpstreamUnreachable(
                    "the upstream for model 'm' is unreachable: could not connect".into(),
                ),
                502,
                r#"{"type":"error","error":{"type":"api_error","message":"the upstream for model 'm' is unreachable: could not connect"}}"#,
            ),
            (
                Error::GuardrailUnavailable {
                    name: "aim".into(),
                    reason: "Aim answered HTTP 500".into(),
                    timed_out: false,
                },
                502,
                r#"{"type":"error","error":{"type":"api_error","message":"guardrail 'aim' unavailable: Aim answered HTTP 500"}}"#,
            ),
            (
                Error::GuardrailUnavailable {
                    name: "aim".into(),
                    reason: "timed out after 10s".into(),
                    timed_out: true,
                },
                504,
                r#"{"type":"error","error":{"type":"timeout_error","message":"guardrail 'aim' unavailable: timed out after 10s"}}"#,
            ),
            (
                Error::UpstreamTimeout(
                    "the upstream for model 'm' did not answer within 600s".into(),
                ),
                504,
                r#"{"type":"error","error":{"type":"timeout_error","message":"the upstream for model 'm' did not answer within 600s"}}"#,
            ),
            // An OpenAI-compatible upstream's error: its message, the type
            // of its status.
            (
                upstream(
                    429,
                    r#"{"error":{"message":"Rate limit reached for gpt-4o","type":"requests","code":"rate_limit_exceeded"}}"#,
                ),
                429,
                r#"{"type":"error","error":{"type":"rate_limit_error","message":"Rate limit reached for gpt-4o"}}"#,
            ),
            (
                upstream(500, r#"{"error":{"message":null}}"#),
                500,
                r#"{"type":"error","error":{"type":"api_error","message":"the upstream for model 'm' answered HTTP 500"}}"#,
            ),
            (
                Error::Upstream {
                    status: StatusCode::BAD_GATEWAY,
                    body: None,
                    message: "the upstream for model 'm' answered HTTP 502".into(),
                    retry_after: None,
                },
                502,
                r#"{"type":"error","error":{"type":"api_error","message":"the upstream for model 'm' answered HTTP 502"}}"#,
            ),
            // An Anthropic upstream's error passes through as it came.
            (
                upstream(
                    529,
                    r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"},"request_id":"req_1"}"#,
                ),
                529,
                r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"},"request_id":"req_1"}"#,
            ),
        ];
        for (err, code, expected) in cases {
            assert_eq!(both(&err), (code, expected.to_owned()), "{err:?}");
        }
    }

    #[test]
    fn status_types() {
        for (s, t) in [
            (400, "invalid_request_error"),
            (401, "authentication_error"),
            (402, "billing_error"),
            (403, "permission_error"),
            (404, "not_found_error"),
            (409, "invalid_request_error"),
            (413, "request_too_large"),
            (422, "invalid_request_error"),
            (429, "rate_limit_error"),
            (500, "api_error"),
            (502, "api_error"),
            (503, "api_error"),
            (504, "timeout_error"),
            (529, "overloaded_error"),
        ] {
            assert_eq!(error_type(StatusCode::from_u16(s).unwrap()), t, "{s}");
        }
    }

    #[test]
    fn the_event_that_ends_a_stream() {
        assert_eq!(
            &sse_event(&Error::GuardrailBlocked("blocked\nby policy".into()))[..],
            b"event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"invalid_request_error\",\"message\":\"blocked\\nby policy\"}}\n\n"
        );
        // An Anthropic upstream's own type, whatever its status.
        assert_eq!(
            &sse_event(&upstream(500, r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#))[..],
            b"event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n"
        );
        // An upstream body spread over lines still makes one data line.
        let pretty = upstream(
            529,
            "{\n  \"type\": \"error\",\n  \"error\": {\"type\": \"overloaded_error\", \"message\": \"Overloaded\"}\n}",
        );
        assert_eq!(
            &sse_event(&pretty)[..],
            b"event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n"
        );
    }

    #[tokio::test]
    async fn the_response_keeps_the_gateways_headers() {
        let err = Error::RateLimited {
            message: "Rate limit reached".into(),
            retry_after: Duration::from_secs(3),
            kind: "rate_limit_error",
            headers: vec![(
                axum::http::HeaderName::from_static("x-ratelimit-limit-requests"),
                HeaderValue::from_static("10"),
            )],
        };
        let response = into_response(err);
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        let headers = response.headers();
        assert_eq!(headers["retry-after"], "3");
        assert_eq!(headers["x-ratelimit-limit-requests"], "10");
        assert_eq!(headers["content-type"], "application/json");
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(
            &body[..],
            br#"{"type":"error","error":{"type":"rate_limit_error","message":"Rate limit reached"}}"#
        );
    }
}
