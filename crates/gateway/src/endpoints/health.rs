//! The operator's routes: liveness (no I/O), readiness (503 while
//! draining) and the Prometheus metrics.

use std::sync::atomic::Ordering;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::json_response;
use crate::state::AppState;

pub fn liveness() -> Response {
    json_response(StatusCode::OK, json!("I'm alive!"))
}

pub fn readiness(state: &AppState) -> Response {
    if state.draining.load(Ordering::Relaxed) {
        json_response(
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"status": "draining", "version": crate::VERSION}),
        )
    } else {
        json_response(
            StatusCode::OK,
            json!({"status": "healthy", "version": crate::VERSION}),
        )
    }
}

pub fn metrics(state: &AppState) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        state.metrics.render(),
    )
        .into_response()
}
