//! One module per route family, each over the shared [`AppState`]:
//!
//! - [`chat`]: `POST /v1/chat/completions`, the request path of gateway.md
//!   section 4 as a sequence of named phases;
//! - [`models`]: `GET /v1/models`;
//! - [`health`]: liveness, readiness and the Prometheus metrics;
//! - [`messages`]: `POST /v1/messages`, Anthropic's Messages API;
//! - [`pipeline`]: the phases `chat` and `messages` are made of.
//!
//! The server routes to them and gives every one the same layer: the call
//! context, the stamp on the response, a 500 envelope on a panic.
//!
//! [`AppState`]: crate::state::AppState

pub mod chat;
pub mod health;
pub mod messages;
pub mod models;
pub mod pipeline;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// A JSON answer.
pub fn json_response(status: StatusCode, value: serde_json::Value) -> Response {
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        value.to_string(),
    )
        .into_response()
}
