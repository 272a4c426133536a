//! `GET /v1/models` (and `/models`): the groups the caller's key may use, in
//! OpenAI's list format.

use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::json_response;
use crate::state::AppState;

pub fn list(state: &AppState, headers: &HeaderMap) -> Response {
    let caller = match state.keys.authenticate(headers) {
        Ok(c) => c,
        Err(e) => return e.into_response(),
    };
    let data: Vec<_> = state
        .router
        .groups()
        .iter()
        .filter(|g| caller.may_use(&g.name))
        .map(|g| json!({"id": g.name, "object": "model", "created": 1677610602, "owned_by": "openai"}))
        .collect();
    json_response(StatusCode::OK, json!({"object": "list", "data": data}))
}
