//! The answers: `/v1/messages` (JSON, or SSE in Anthropic's event
//! sequence, or the failure the options inject) and
//! `/v1/messages/count_tokens`.

use super::*;

const OVERLOADED: &str =
    r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#;
const PROMPT_TOO_LONG: &str = r#"{"type":"error","error":{"type":"invalid_request_error","message":"prompt is too long: 211234 tokens > 200000 maximum"}}"#;

/// The text of the last user message: its string, or its text blocks joined
/// with `"\n"`.
fn last_user_text(req: &Value) -> String {
    let last = req["messages"]
        .as_array()
        .and_then(|m| m.iter().rev().find(|m| m["role"] == "user"));
    match last.map(|m| &m["content"]) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(blocks)) => blocks
            .iter()
            .filter(|b| b["type"] == "text")
            .filter_map(|b| b["text"].as_str())
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

/// Words in every text of the request: the mock's input token count.
fn input_words(req: &Value) -> u64 {
    fn walk(v: &Value, n: &mut u64) {
        match v {
            Value::Object(o) => {
                for (k, v) in o {
                    match (k.as_str(), v) {
                        ("text" | "content", Value::String(s)) => *n += words(s),
                        _ => walk(v, n),
                    }
                }
            }
            Value::Array(a) => a.iter().for_each(|v| walk(v, n)),
            _ => {}
        }
    }
    let mut n = 0;
    walk(&req["messages"], &mut n);
    match &req["system"] {
        Value::String(s) => n += words(s),
        other => walk(other, &mut n),
    }
    n
}

fn words(s: &str) -> u64 {
    s.split_whitespace().count() as u64
}

pub(super) async fn count_tokens(
    State(s): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let entry = s
        .options()
        .record
        .then(|| s.log.push(&method, uri.path(), &headers, body.clone()));
    let Ok(req) = serde_json::from_slice::<Value>(&body) else {
        return respond(
            entry.as_deref(),
            StatusCode::BAD_REQUEST,
            error_body("invalid_request_error", "invalid JSON"),
        );
    };
    respond(
        entry.as_deref(),
        StatusCode::OK,
        to_json(&json!({"input_tokens": input_words(&req)})),
    )
}

pub(super) async fn messages(
    State(s): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let opts = s.options();
    let seq = s.requests.fetch_add(1, Relaxed) + 1;
    let entry = opts
        .record
        .then(|| s.log.push(&method, uri.path(), &headers, body.clone()));
    if opts.latency_ms > 0 {
        tokio::time::sleep(Duration::from_millis(opts.latency_ms)).await;
    }
    let req: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            return respond(
                entry.as_deref(),
                StatusCode::BAD_REQUEST,
                error_body(
                    "invalid_request_error",
                    &format!("There was an error parsing the body: {e}"),
                ),
            );
        }
    };
    if let Err((status, kind, message)) = check(&headers, &req) {
        return respond(entry.as_deref(), status, error_body(kind, &message));
    }
    let stream = req["stream"] == true;
    let failure = opts.failure.as_ref().filter(|_| {
        opts.fail_first
            .is_none_or(|k| s.since_options.fetch_add(1, Relaxed) < k)
    });
    let mut cut: Option<(usize, bool)> = None;
    match failure {
        None => {}
        Some(Failure::Overloaded) => {
            return respond(
                entry.as_deref(),
                StatusCode::from_u16(529).unwrap_or(StatusCode::SERVICE_UNAVAILABLE),
                OVERLOADED.into(),
            );
        }
        Some(Failure::InvalidRequest { message }) => {
            return respond(
                entry.as_deref(),
                StatusCode::BAD_REQUEST,
                error_body("invalid_request_error", message),
            );
        }
        Some(Failure::PromptTooLong) => {
            return respond(
                entry.as_deref(),
                StatusCode::BAD_REQUEST,
                PROMPT_TOO_LONG.into(),
            );
        }
        Some(Failure::RateLimited { retry_after }) => {
            let mut r = respond(
                entry.as_deref(),
                StatusCode::TOO_MANY_REQUESTS,
                error_body(
                    "rate_limit_error",
                    "Number of request tokens has exceeded your per-minute rate limit",
                ),
            );
            if let Some(secs) = retry_after {
                r.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(*secs));
            }
            return r;
        }
        Some(Failure::Status {
            status,
            body,
            retry_after,
        }) => {
            let status = StatusCode::from_u16(*status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let mut r = respond(entry.as_deref(), status, body.clone().into_bytes());
            if let Some(secs) = retry_after {
                r.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(*secs));
            }
            return r;
        }
        Some(Failure::Hang) => std::future::pending().await,
        Some(Failure::StreamError { after }) => {
            if !stream {
                return respond(
                    entry.as_deref(),
                    StatusCode::from_u16(529).unwrap_or(StatusCode::SERVICE_UNAVAILABLE),
                    OVERLOADED.into(),
                );
            }
            cut = Some((*after, true));
        }
        Some(Failure::CloseAfter { after }) => cut = Some((*after, false)),
    }

    let model = req["model"].as_str().unwrap_or("").to_owned();
    let reply = opts.reply.clone().unwrap_or_else(|| last_user_text(&req));
    let tool = opts.tool_use.as_ref().map(|t| {
        let id = t.id.clone().unwrap_or_else(|| format!("toolu_mock_{seq}"));
        (id, t)
    });
    let stop_reason = opts.stop_reason.clone().unwrap_or_else(|| {
        if tool.is_some() {
            "tool_use"
        } else {
            "end_turn"
        }
        .to_owned()
    });
    let input_tokens = input_words(&req);
    let output_tokens =
        words(&reply) + opts.thinking.as_deref().map_or(0, words) + u64::from(tool.is_some());
    let usage = json!({
        "input_tokens": input_tokens,
        "cache_creation_input_tokens": opts.cache_creation_input_tokens,
        "cache_read_input_tokens": opts.cache_read_input_tokens,
        "output_tokens": output_tokens,
    });
    let id = format!("msg_mock_{seq}");
    let with_text = !reply.is_empty() || tool.is_none();

    if !stream {
        if let Some(body) = &opts.message {
            return respond(entry.as_deref(), StatusCode::OK, body.clone().into_bytes());
        }
        let mut content = vec![];
        if let Some(t) = &opts.thinking {
            content.push(json!({"type": "thinking", "thinking": t, "signature": "mock-signature"}));
        }
        if with_text {
            content.push(json!({"type": "text", "text": reply}));
        }
        if let Some((id, t)) = &tool {
            content.push(json!({"type": "tool_use", "id": id, "name": t.name, "input": input_object(&t.input)}));
        }
        let message = json!({
            "id": id, "type": "message", "role": "assistant", "model": model, "content": content,
            "stop_reason": stop_reason, "stop_sequence": null, "usage": usage,
        });
        return respond(entry.as_deref(), StatusCode::OK, to_json(&message));
    }

    if let Some(raw) = &opts.events {
        let frames = raw
            .iter()
            .map(|data| {
                let kind = serde_json::from_str::<Value>(data)
                    .ok()
                    .and_then(|v| v["type"].as_str().map(str::to_owned))
                    .unwrap_or_default();
                Bytes::from(format!("event: {kind}\ndata: {data}\n\n"))
            })
            .collect();
        let interval = Duration::from_millis(opts.chunk_interval_ms);
        return stream_response(frames, entry, interval, false);
    }
    let mut events: Vec<(&'static str, Value)> = vec![];
    let mut start_usage = usage.clone();
    start_usage["output_tokens"] = json!(1);
    events.push((
        "message_start",
        json!({"type": "message_start", "message": {"id": id, "type": "message", "role": "assistant", "model": model,
            "content": [], "stop_reason": null, "stop_sequence": null, "usage": start_usage}}),
    ));
    events.push(("ping", json!({"type": "ping"})));
    let mut index = 0;
    if let Some(t) = &opts.thinking {
        events.push(("content_block_start", json!({"type": "content_block_start", "index": index, "content_block": {"type": "thinking", "thinking": "", "signature": ""}})));
        for piece in split(t, 2) {
            events.push(("content_block_delta", json!({"type": "content_block_delta", "index": index, "delta": {"type": "thinking_delta", "thinking": piece}})));
        }
        events.push(("content_block_delta", json!({"type": "content_block_delta", "index": index, "delta": {"type": "signature_delta", "signature": "mock-signature"}})));
        events.push((
            "content_block_stop",
            json!({"type": "content_block_stop", "index": index}),
        ));
        index += 1;
    }
    if with_text {
        events.push(("content_block_start", json!({"type": "content_block_start", "index": index, "content_block": {"type": "text", "text": ""}})));
        let chunks = if opts.chunks == 0 { 3 } else { opts.chunks };
        for piece in split(&reply, chunks) {
            events.push(("content_block_delta", json!({"type": "content_block_delta", "index": index, "delta": {"type": "text_delta", "text": piece}})));
        }
        events.push((
            "content_block_stop",
            json!({"type": "content_block_stop", "index": index}),
        ));
        index += 1;
    }
    if let Some((id, t)) = &tool {
        events.push(("content_block_start", json!({"type": "content_block_start", "index": index, "content_block": {"type": "tool_use", "id": id, "name": t.name, "input": {}}})));
        let input = input_object(&t.input).to_string();
        // Anthropic opens with an empty partial.
        events.push(("content_block_delta", json!({"type": "content_block_delta", "index": index, "delta": {"type": "input_json_delta", "partial_json": ""}})));
        let n = if t.json_chunks == 0 { 2 } else { t.json_chunks };
        for piece in split(&input, n) {
            events.push(("content_block_delta", json!({"type": "content_block_delta", "index": index, "delta": {"type": "input_json_delta", "partial_json": piece}})));
        }
        events.push((
            "content_block_stop",
            json!({"type": "content_block_stop", "index": index}),
        ));
    }
    events.push((
        "message_delta",
        json!({"type": "message_delta", "delta": {"stop_reason": stop_reason, "stop_sequence": null}, "usage": {"output_tokens": output_tokens}}),
    ));
    events.push(("message_stop", json!({"type": "message_stop"})));

    let mut frames: Vec<Bytes> = events
        .iter()
        .map(|(kind, data)| sse_frame(kind, data))
        .collect();
    let mut abort = false;
    if let Some((after, error_event)) = cut {
        frames.truncate(after);
        if error_event {
            frames.push(sse_frame(
                "error",
                &serde_json::from_str(OVERLOADED).unwrap_or(Value::Null),
            ));
        } else {
            abort = true;
        }
    }
    stream_response(
        frames,
        entry,
        Duration::from_millis(opts.chunk_interval_ms),
        abort,
    )
}

/// A tool input as Anthropic sends it: always an object.
fn input_object(input: &Value) -> Value {
    if input.is_object() {
        input.clone()
    } else {
        json!({})
    }
}

fn sse_frame(kind: &str, data: &Value) -> Bytes {
    Bytes::from(format!("event: {kind}\ndata: {data}\n\n"))
}

/// `text` in `n` pieces of about as many characters (at least one piece).
fn split(text: &str, n: usize) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let n = n.max(1);
    let size = chars.len().div_ceil(n).max(1);
    let mut pieces: Vec<String> = chars.chunks(size).map(|c| c.iter().collect()).collect();
    if pieces.is_empty() {
        pieces.push(String::new());
    }
    pieces
}

fn stream_response(
    frames: Vec<Bytes>,
    entry: Option<Arc<Entry>>,
    interval: Duration,
    abort: bool,
) -> Response {
    struct St {
        frames: std::vec::IntoIter<Bytes>,
        entry: Option<Arc<Entry>>,
        interval: Duration,
        first: bool,
        abort: bool,
    }
    let st = St {
        frames: frames.into_iter(),
        entry,
        interval,
        first: true,
        abort,
    };
    let body = futures_util::stream::unfold(st, |mut st| async move {
        match st.frames.next() {
            Some(frame) => {
                if !st.first && !st.interval.is_zero() {
                    tokio::time::sleep(st.interval).await;
                }
                st.first = false;
                if let Some(e) = &st.entry {
                    e.append(&frame);
                }
                Some((Ok::<Bytes, std::io::Error>(frame), st))
            }
            None if st.abort => {
                // Let hyper flush what went before, then cut the body.
                tokio::task::yield_now().await;
                st.abort = false;
                Some((Err(std::io::Error::other("mock anthropic: stream cut")), st))
            }
            None => None,
        }
    });
    let mut resp = Response::new(Body::from_stream(body));
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    resp
}
