//! LiteLLM's `mock_response`: a deployment that answers with fixed text and
//! makes no network call, streaming included.

use std::time::{SystemTime, UNIX_EPOCH};

use axum::http::StatusCode;
use bytes::Bytes;
use serde_json::json;

use super::{UpstreamBody, UpstreamResponse};

pub fn respond(text: &str, model: &str, stream: bool) -> UpstreamResponse {
    let id = format!("chatcmpl-{}", uuid::Uuid::new_v4());
    let created = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    if stream {
        let frames = stream_frames(&id, created, model, text);
        return UpstreamResponse {
            headers: vec![],
            status: StatusCode::OK,
            body: UpstreamBody::Stream(Box::pin(futures_util::stream::iter(
                frames.into_iter().map(Ok),
            ))),
        };
    }
    {
        let words = |s: &str| s.split_whitespace().count();
        let body = json!({
            "id": id,
            "object": "chat.completion",
            "created": created,
            "model": model,
            "choices": [{
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "finish_reason": "stop"
            }],
            "usage": {"prompt_tokens": 10, "completion_tokens": words(text), "total_tokens": 10 + words(text)}
        });
        UpstreamResponse {
            headers: vec![],
            status: StatusCode::OK,
            body: UpstreamBody::Full(Bytes::from(body.to_string())),
        }
    }
}

/// One SSE frame per word (whitespace kept with the word before it), then a
/// finish chunk and `[DONE]`.
fn stream_frames(id: &str, created: u64, model: &str, text: &str) -> Vec<Bytes> {
    let chunk = |delta: serde_json::Value, finish: Option<&str>| {
        let c = json!({
            "id": id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]
        });
        Bytes::from(format!("data: {c}\n\n"))
    };
    let mut frames = vec![chunk(json!({"role": "assistant", "content": ""}), None)];
    let mut start = 0;
    let bytes = text.as_bytes();
    while start < text.len() {
        let mut end = start;
        while end < text.len() && !bytes[end].is_ascii_whitespace() {
            end += 1;
        }
        while end < text.len() && bytes[end].is_ascii_whitespace() {
            end += 1;
        }
        frames.push(chunk(json!({"content": &text[start..end]}), None));
        start = end;
    }
    frames.push(chunk(json!({}), Some("stop")));
    frames.push(Bytes::from_static(b"data: [DONE]\n\n"));
    frames
}
