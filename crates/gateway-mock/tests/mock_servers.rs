//! Tests of the mock servers themselves, over real HTTP and websocket
//! connections. Each test starts its own mocks on port 0, so they run in
//! parallel.

// Tests: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use gateway_mock::aim::{AimFailure, AimMode, AimOptions, MockAim};
use gateway_mock::upstream::{Failure, MockUpstream, UpstreamOptions};
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{self, Message};

// ---- helpers ----

fn client() -> reqwest::Client {
    // reqwest is built without a default crypto provider; plain HTTP does not
    // use it but building a client needs one installed.
    gateway::install_crypto();
    reqwest::Client::new()
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", String::from_utf8_lossy(&self.body)))
    }
}

async fn post(url: &str, body: impl Into<reqwest::Body>, headers: &[(&str, &str)]) -> Answer {
    let mut req = client()
        .post(url)
        .header("content-type", "application/json")
        .body(body);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req.send().await.expect("request failed");
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = resp.bytes().await.expect("body failed");
    Answer {
        status,
        headers,
        body,
    }
}

async fn post_json(url: &str, body: &Value, headers: &[(&str, &str)]) -> Answer {
    post(url, serde_json::to_vec(body).unwrap(), headers).await
}

async fn get_json(url: &str) -> Value {
    let resp = client().get(url).send().await.expect("request failed");
    assert_eq!(resp.status(), StatusCode::OK, "GET {url}");
    serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap()
}

fn chat_url(mock: &MockUpstream) -> String {
    format!("{}/chat/completions", mock.url())
}

fn chat(content: &str) -> Value {
    json!({"model": "gpt-mock", "messages": [{"role": "user", "content": content}]})
}

fn stream_chat(content: &str) -> Value {
    json!({"model": "gpt-mock", "stream": true, "messages": [{"role": "user", "content": content}]})
}

/// The `data:` payloads of an SSE body.
fn sse_data(body: &[u8]) -> Vec<String> {
    let text = std::str::from_utf8(body).unwrap();
    assert!(
        text.ends_with("\n\n"),
        "SSE body ends with a blank line: {text:?}"
    );
    text.split("\n\n")
        .filter(|f| !f.is_empty())
        .map(|f| f.strip_prefix("data: ").expect("data frame").to_owned())
        .collect()
}

fn delta_text(frames: &[String]) -> String {
    frames
        .iter()
        .filter(|f| *f != "[DONE]")
        .filter_map(|f| {
            let v: Value = serde_json::from_str(f).unwrap();
            v["choices"][0]["delta"]["content"]
                .as_str()
                .map(str::to_owned)
        })
        .collect()
}

async fn eventually(what: &str, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

// ---- mock upstream ----

#[tokio::test]
async fn upstream_non_streaming_echoes_last_message() {
    let mock = MockUpstream::start(UpstreamOptions::default()).await;
    let body = json!({"model": "gpt-mock", "messages": [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "hello  there\nworld"}
    ]});
    let a = post_json(&chat_url(&mock), &body, &[("x-test", "1")]).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.headers["content-type"], "application/json");
    let v = a.json();
    assert_eq!(v["id"], "chatcmpl-mock-1");
    assert_eq!(v["object"], "chat.completion");
    assert!(v["created"].as_u64().unwrap() > 1_600_000_000);
    assert_eq!(v["model"], "gpt-mock");
    assert_eq!(
        v["choices"],
        json!([{"index": 0, "message": {"role": "assistant", "content": "hello  there\nworld"}, "finish_reason": "stop"}])
    );
    assert_eq!(
        v["usage"],
        json!({"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8})
    );

    assert_eq!(mock.request_count(), 1);
    let recs = mock.requests();
    assert_eq!(recs.len(), 1);
    let r = &recs[0];
    assert_eq!(r.method, "POST");
    assert_eq!(r.path, "/v1/chat/completions");
    assert_eq!(r.header("X-Test"), Some("1"));
    assert_eq!(r.json(), body);
    assert_eq!(r.response_body, a.body.to_vec());
}

#[tokio::test]
async fn upstream_n_choices_parts_and_fixed_reply() {
    let mock = MockUpstream::start(UpstreamOptions::default()).await;
    let body = json!({"model": "m", "n": 3, "messages": [{"role": "user", "content": [
        {"type": "text", "text": "look at"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
        {"type": "text", "text": "this picture"}
    ]}]});
    let v = post_json(&chat_url(&mock), &body, &[]).await.json();
    let choices = v["choices"].as_array().unwrap();
    assert_eq!(choices.len(), 3);
    for (i, c) in choices.iter().enumerate() {
        assert_eq!(c["index"], i);
        assert_eq!(c["message"]["content"], "look at\nthis picture");
    }
    assert_eq!(
        v["usage"],
        json!({"prompt_tokens": 4, "completion_tokens": 12, "total_tokens": 16})
    );

    // The route without /v1 works too and is recorded.
    mock.set_options(UpstreamOptions {
        reply: Some("fixed answer".into()),
        ..Default::default()
    });
    let url = format!("http://{}/chat/completions", mock.addr());
    let v = post_json(&url, &chat("anything"), &[]).await.json();
    assert_eq!(v["id"], "chatcmpl-mock-2");
    assert_eq!(v["choices"][0]["message"]["content"], "fixed answer");
    assert_eq!(mock.requests()[1].path, "/chat/completions");
}

#[tokio::test]
async fn upstream_streams_frames_byte_for_byte() {
    let mock = MockUpstream::start(UpstreamOptions {
        chunks: 4,
        ..Default::default()
    })
    .await;
    let a = post_json(&chat_url(&mock), &stream_chat("abcdefghij"), &[]).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.headers["content-type"], "text/event-stream");
    let frames = sse_data(&a.body);
    // role chunk + 4 content chunks + finish chunk + [DONE]
    assert_eq!(frames.len(), 7);
    assert_eq!(frames[6], "[DONE]");
    let parsed: Vec<Value> = frames[..6]
        .iter()
        .map(|f| serde_json::from_str(f).unwrap())
        .collect();
    for p in &parsed {
        assert_eq!(p["id"], "chatcmpl-mock-1");
        assert_eq!(p["object"], "chat.completion.chunk");
        assert_eq!(p["model"], "gpt-mock");
        assert!(p.get("usage").is_none());
    }
    assert_eq!(
        parsed[0]["choices"],
        json!([{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": null}])
    );
    let pieces: Vec<&str> = parsed[1..5]
        .iter()
        .map(|p| p["choices"][0]["delta"]["content"].as_str().unwrap())
        .collect();
    assert_eq!(pieces, ["abc", "def", "gh", "ij"]);
    assert_eq!(
        parsed[5]["choices"],
        json!([{"index": 0, "delta": {}, "finish_reason": "stop"}])
    );
    assert_eq!(mock.requests()[0].response_body, a.body.to_vec());
    assert_eq!(mock.completed_streams(), 1);
    assert_eq!(mock.cancelled_streams(), 0);
}

#[tokio::test]
async fn upstream_stream_usage_chunk_and_default_chunks() {
    let mock = MockUpstream::start(UpstreamOptions::default()).await;
    let mut body = stream_chat("one two three four");
    body["stream_options"] = json!({"include_usage": true});
    let a = post_json(&chat_url(&mock), &body, &[]).await;
    let frames = sse_data(&a.body);
    // role + 3 (default) content + finish + usage + [DONE]
    assert_eq!(frames.len(), 7);
    assert_eq!(delta_text(&frames), "one two three four");
    let usage: Value = serde_json::from_str(&frames[5]).unwrap();
    assert_eq!(usage["choices"], json!([]));
    assert_eq!(
        usage["usage"],
        json!({"prompt_tokens": 4, "completion_tokens": 4, "total_tokens": 8})
    );
    assert_eq!(frames[6], "[DONE]");
}

#[tokio::test]
async fn upstream_writes_each_frame_separately() {
    let mock = MockUpstream::start(UpstreamOptions {
        chunks: 3,
        chunk_interval_ms: 30,
        ..Default::default()
    })
    .await;
    let resp = client()
        .post(chat_url(&mock))
        .body(serde_json::to_vec(&stream_chat("a b c")).unwrap())
        .send()
        .await
        .unwrap();
    let started = Instant::now();
    let mut body = resp.bytes_stream();
    let mut reads = Vec::new();
    while let Some(chunk) = body.next().await {
        reads.push(chunk.unwrap());
    }
    // 5 data frames + [DONE], 30 ms apart, each its own read.
    assert_eq!(reads.len(), 6, "{reads:?}");
    for r in &reads {
        assert!(r.starts_with(b"data: ") && r.ends_with(b"\n\n"));
        assert_eq!(r.windows(6).filter(|w| w == b"data: ").count(), 1);
    }
    assert!(started.elapsed() >= Duration::from_millis(140));
}

#[tokio::test]
async fn upstream_rejects_invalid_bodies() {
    let mock = MockUpstream::start(UpstreamOptions::default()).await;
    let url = chat_url(&mock);
    for (body, needle) in [
        (&b"not json"[..], "could not parse the JSON body"),
        (br#"{"messages":[]}"#, "model parameter"),
        (br#"{"model":"m"}"#, "'messages'"),
        (br#"{"model":"m","messages":"hi"}"#, "Invalid request"),
    ] {
        let a = post(&url, body.to_vec(), &[]).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST);
        let v = a.json();
        assert_eq!(v["error"]["type"], "invalid_request_error");
        let msg = v["error"]["message"].as_str().unwrap();
        assert!(msg.contains(needle), "{msg}");
    }
    assert_eq!(mock.request_count(), 4);
}

#[tokio::test]
async fn upstream_status_failure_with_retry_after() {
    let mock = MockUpstream::start(UpstreamOptions {
        failure: Some(Failure::Status {
            status: 429,
            body: r#"{"error":{"message":"slow down"}}"#.into(),
            retry_after: Some(7),
        }),
        ..Default::default()
    })
    .await;
    let a = post_json(&chat_url(&mock), &chat("hi"), &[]).await;
    assert_eq!(a.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(a.headers["retry-after"], "7");
    assert_eq!(a.body, r#"{"error":{"message":"slow down"}}"#);
    assert_eq!(mock.requests()[0].response_body, a.body.to_vec());
}

#[tokio::test]
async fn upstream_context_length_and_content_policy() {
    let mock = MockUpstream::start(UpstreamOptions {
        failure: Some(Failure::ContextLength),
        ..Default::default()
    })
    .await;
    let a = post_json(&chat_url(&mock), &chat("hi"), &[]).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    let v = a.json();
    assert_eq!(v["error"]["code"], "context_length_exceeded");
    assert_eq!(v["error"]["type"], "invalid_request_error");
    assert_eq!(v["error"]["param"], "messages");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("This model's maximum context length is 4097 tokens.")
    );

    mock.set_options(UpstreamOptions {
        failure: Some(Failure::ContentPolicy),
        ..Default::default()
    });
    let a = post_json(&chat_url(&mock), &stream_chat("hi"), &[]).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert_eq!(a.json()["error"]["code"], "content_policy_violation");
}

#[tokio::test]
async fn upstream_hang_never_answers() {
    let mock = MockUpstream::start(UpstreamOptions {
        failure: Some(Failure::Hang),
        ..Default::default()
    })
    .await;
    let req = client()
        .post(chat_url(&mock))
        .body(serde_json::to_vec(&chat("hi")).unwrap())
        .timeout(Duration::from_millis(300))
        .send();
    let (result, ()) = tokio::join!(req, async {
        eventually("the request in flight", || mock.in_flight() == 1).await;
    });
    assert!(result.unwrap_err().is_timeout());
    // The client gave up; the mock notices the closed connection.
    eventually("in_flight back to 0", || mock.in_flight() == 0).await;
    assert_eq!(mock.request_count(), 1);
}

#[tokio::test]
async fn upstream_stall_after_keeps_the_connection_open() {
    let mock = MockUpstream::start(UpstreamOptions {
        failure: Some(Failure::StallAfter { chunks: 2 }),
        ..Default::default()
    })
    .await;
    let resp = client()
        .post(chat_url(&mock))
        .body(serde_json::to_vec(&stream_chat("abc")).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let mut body = resp.bytes_stream();
    let mut got = Vec::new();
    for _ in 0..2 {
        got.extend_from_slice(&body.next().await.unwrap().unwrap());
    }
    assert_eq!(sse_data(&got).len(), 2);
    let next = tokio::time::timeout(Duration::from_millis(300), body.next()).await;
    assert!(next.is_err(), "the stream stalls");
    assert_eq!(mock.in_flight(), 1);
    assert_eq!(mock.requests()[0].response_body, got);
    drop(body);
    eventually("the stalled stream to count as cancelled", || {
        mock.cancelled_streams() == 1 && mock.in_flight() == 0
    })
    .await;
}

#[tokio::test]
async fn upstream_close_after_cuts_the_body() {
    let mock = MockUpstream::start(UpstreamOptions {
        failure: Some(Failure::CloseAfter { chunks: 3 }),
        ..Default::default()
    })
    .await;
    let resp = client()
        .post(chat_url(&mock))
        .body(serde_json::to_vec(&stream_chat("abcdef")).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let mut body = resp.bytes_stream();
    let mut got = Vec::new();
    let err = loop {
        match body.next().await {
            Some(Ok(chunk)) => got.extend_from_slice(&chunk),
            Some(Err(e)) => break e,
            None => panic!("the body ended cleanly"),
        }
    };
    assert!(err.is_body() || err.is_decode(), "{err:?}");
    assert_eq!(sse_data(&got).len(), 3);
    assert!(!String::from_utf8_lossy(&got).contains("[DONE]"));
    eventually("in_flight back to 0", || mock.in_flight() == 0).await;
    assert_eq!(mock.cancelled_streams(), 0);
    assert_eq!(mock.completed_streams(), 0);

    // A non-streaming request gets the head, then a cut body.
    let resp = client()
        .post(chat_url(&mock))
        .body(serde_json::to_vec(&chat("abcdef")).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.bytes().await.is_err());
}

#[tokio::test]
async fn upstream_endless_event_and_body_pause_through_the_control_api() {
    let mock = MockUpstream::start(UpstreamOptions::default()).await;
    let options = format!("http://{}/__mock/options", mock.addr());
    let set = post(
        &options,
        r#"{"chunks":2,"failure":{"kind":"endless_event"}}"#,
        &[],
    )
    .await;
    assert_eq!(set.status, StatusCode::OK);
    // `data:` lines, never a blank line, never an end.
    let resp = client()
        .post(chat_url(&mock))
        .body(serde_json::to_vec(&stream_chat("abcdef")).unwrap())
        .send()
        .await
        .unwrap();
    let mut body = resp.bytes_stream();
    let mut got = Vec::new();
    while got.len() < 64 * 1024 {
        got.extend_from_slice(&body.next().await.unwrap().unwrap());
    }
    let text = String::from_utf8_lossy(&got);
    assert!(!text.contains("\n\n") && !text.contains("[DONE]"));
    assert!(text.starts_with("data: {") && text.matches("\ndata: ").count() > 100);
    drop(body);
    eventually("the stream counts as cancelled", || {
        mock.cancelled_streams() == 1
    })
    .await;
    // A non-streaming answer goes on with spaces after its JSON.
    let resp = client()
        .post(chat_url(&mock))
        .body(serde_json::to_vec(&chat("abc")).unwrap())
        .send()
        .await
        .unwrap();
    let mut body = resp.bytes_stream();
    let mut got = Vec::new();
    while got.len() < 256 * 1024 {
        got.extend_from_slice(&body.next().await.unwrap().unwrap());
    }
    assert!(got.starts_with(b"{\"id\""));
    assert!(got.ends_with(&[b' '; 1024]));

    // The body in two halves, 300 ms apart.
    post(&options, r#"{"body_pause_ms":300}"#, &[]).await;
    let started = std::time::Instant::now();
    let resp = client()
        .post(chat_url(&mock))
        .body(serde_json::to_vec(&chat("two halves")).unwrap())
        .send()
        .await
        .unwrap();
    let head = started.elapsed();
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["choices"][0]["message"]["content"], "two halves");
    assert!(started.elapsed() >= head + Duration::from_millis(250));
    assert_eq!(mock.requests().last().unwrap().response_json(), v);
}

#[tokio::test]
async fn upstream_fail_first_then_recovers() {
    let mock = MockUpstream::start(UpstreamOptions {
        failure: Some(Failure::Status {
            status: 503,
            body: "{}".into(),
            retry_after: None,
        }),
        fail_first: Some(2),
        ..Default::default()
    })
    .await;
    let url = chat_url(&mock);
    let statuses = [
        post_json(&url, &chat("a"), &[]).await.status,
        post_json(&url, &chat("b"), &[]).await.status,
        post_json(&url, &chat("c"), &[]).await.status,
    ];
    assert_eq!(
        statuses,
        [
            StatusCode::SERVICE_UNAVAILABLE,
            StatusCode::SERVICE_UNAVAILABLE,
            StatusCode::OK
        ]
    );
    // Reset restarts the count.
    mock.reset();
    assert_eq!(mock.request_count(), 0);
    assert!(mock.requests().is_empty());
    assert_eq!(
        post_json(&url, &chat("d"), &[]).await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );
}

#[tokio::test]
async fn upstream_counts_streams_dropped_by_the_client() {
    let mock = MockUpstream::start(UpstreamOptions {
        chunks: 20,
        chunk_interval_ms: 50,
        ..Default::default()
    })
    .await;
    let resp = client()
        .post(chat_url(&mock))
        .body(serde_json::to_vec(&stream_chat("a long answer")).unwrap())
        .send()
        .await
        .unwrap();
    let mut body = resp.bytes_stream();
    body.next().await.unwrap().unwrap();
    assert_eq!(mock.in_flight(), 1);
    drop(body);
    eventually("the stream to count as cancelled", || {
        mock.cancelled_streams() == 1 && mock.in_flight() == 0
    })
    .await;
    assert_eq!(mock.completed_streams(), 0);
    let sent = mock.requests()[0].response_body.clone();
    assert!(!String::from_utf8_lossy(&sent).contains("[DONE]"));
}

#[tokio::test]
async fn upstream_latency_delays_the_head() {
    let mock = MockUpstream::start(UpstreamOptions {
        latency_ms: 200,
        ..Default::default()
    })
    .await;
    let started = Instant::now();
    let a = post_json(&chat_url(&mock), &chat("hi"), &[]).await;
    assert_eq!(a.status, StatusCode::OK);
    assert!(started.elapsed() >= Duration::from_millis(200));
}

#[tokio::test]
async fn upstream_control_api() {
    let mock = MockUpstream::start(UpstreamOptions::default()).await;
    let base = format!("http://{}", mock.addr());

    let models = get_json(&format!("{}/models", mock.url())).await;
    assert_eq!(models["object"], "list");
    assert_eq!(models["data"][0]["object"], "model");

    let a = post(
        &format!("{base}/__mock/options"),
        r#"{"reply":"from control","chunks":2}"#,
        &[],
    )
    .await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.json()["reply"], "from control");
    assert_eq!(mock.options().chunks, 2);
    let opts = get_json(&format!("{base}/__mock/options")).await;
    assert_eq!(opts["record"], true);

    let bad = post(&format!("{base}/__mock/options"), r#"{"chunks":"x"}"#, &[]).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);

    let v = post_json(&chat_url(&mock), &chat("hi"), &[("x-trace", "abc")])
        .await
        .json();
    assert_eq!(v["choices"][0]["message"]["content"], "from control");

    let recs = get_json(&format!("{base}/__mock/requests")).await;
    let recs = recs.as_array().unwrap();
    assert_eq!(recs.len(), 1, "control calls and models are not recorded");
    assert_eq!(recs[0]["method"], "POST");
    assert_eq!(recs[0]["path"], "/v1/chat/completions");
    assert!(
        recs[0]["headers"]
            .as_array()
            .unwrap()
            .contains(&json!(["x-trace", "abc"]))
    );
    assert_eq!(
        serde_json::from_str::<Value>(recs[0]["body"].as_str().unwrap()).unwrap(),
        chat("hi")
    );
    assert_eq!(
        serde_json::from_str::<Value>(recs[0]["response_body"].as_str().unwrap()).unwrap(),
        v
    );

    let stats = get_json(&format!("{base}/__mock/stats")).await;
    assert_eq!(
        stats,
        json!({"requests": 1, "in_flight": 0, "cancelled_streams": 0, "completed_streams": 0})
    );

    assert_eq!(
        post(&format!("{base}/__mock/reset"), "", &[]).await.status,
        StatusCode::OK
    );
    assert_eq!(
        get_json(&format!("{base}/__mock/requests")).await,
        json!([])
    );
    assert_eq!(mock.request_count(), 0);

    // Recording can be turned off (the benchmark does); counting goes on.
    mock.set_options(UpstreamOptions {
        record: false,
        ..Default::default()
    });
    post_json(&chat_url(&mock), &chat("hi"), &[]).await;
    assert!(mock.requests().is_empty());
    assert_eq!(mock.request_count(), 1);
}

#[tokio::test]
async fn upstream_shutdown_cuts_hung_requests() {
    let mock = MockUpstream::start(UpstreamOptions {
        failure: Some(Failure::Hang),
        ..Default::default()
    })
    .await;
    let url = chat_url(&mock);
    let hung = tokio::spawn(async move {
        client()
            .post(url)
            .body(serde_json::to_vec(&chat("hi")).unwrap())
            .send()
            .await
    });
    eventually("the request in flight", || mock.in_flight() == 1).await;
    let addr = mock.addr();
    mock.shutdown();
    let result = tokio::time::timeout(Duration::from_secs(5), hung)
        .await
        .unwrap()
        .unwrap();
    assert!(result.is_err(), "the hung request is cut");
    // The port no longer accepts connections.
    let refused = async {
        while tokio::net::TcpStream::connect(addr).await.is_ok() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(5), refused)
        .await
        .unwrap();
}

// ---- mock Aim: HTTP ----

const KEY: &str = "aim-mock-key";
const AUTH: (&str, &str) = ("authorization", "Bearer aim-mock-key");

fn analyze_url(mock: &MockAim) -> String {
    format!("{}/fw/v1/analyze", mock.url())
}

fn messages(msgs: &[(&str, &str)]) -> Value {
    json!({"messages": msgs.iter().map(|(r, c)| json!({"role": r, "content": c})).collect::<Vec<_>>()})
}

fn clean_answer() -> Value {
    json!({"analysis_result": {"analysis_time_ms": 1, "policy_drill_down": {},
                               "last_message_entities": [], "session_entities": []},
           "required_action": null, "redacted_chat": null})
}

fn detected(action: &str, message: &str, redacted_chat: Value) -> Value {
    json!({"analysis_result": {"analysis_time_ms": 1,
                               "policy_drill_down": {"PII": {"detections": [{"message": message}]}},
                               "last_message_entities": [], "session_entities": []},
           "required_action": {"action_type": action, "policy_name": "PII", "detection_message": message},
           "redacted_chat": redacted_chat})
}

#[tokio::test]
async fn aim_rejects_missing_and_wrong_keys() {
    let mock = MockAim::start(AimOptions::default()).await;
    let body = messages(&[("user", "hi")]);
    let a = post_json(&analyze_url(&mock), &body, &[]).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert_eq!(a.body, r#"{"detail":"Authorization header is required"}"#);
    let a = post_json(
        &analyze_url(&mock),
        &body,
        &[("authorization", "Bearer nope")],
    )
    .await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert_eq!(a.body, r#"{"detail":"Invalid API token"}"#);
    let a = post_json(&analyze_url(&mock), &body, &[("authorization", KEY)]).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert_eq!(a.json(), json!({"detail": "Invalid API token"}));
    // Rejected calls are recorded too.
    assert_eq!(mock.requests().len(), 3);
    assert_eq!(
        mock.requests()[1].header("authorization"),
        Some("Bearer nope")
    );
}

#[tokio::test]
async fn aim_validates_bodies_like_fastapi() {
    let mock = MockAim::start(AimOptions::default()).await;
    let url = analyze_url(&mock);
    let cases: [(&str, Value); 6] = [
        (
            "{}",
            json!([{"loc": ["body", "messages"], "msg": "Field required", "type": "missing"}]),
        ),
        (
            r#"{"messages": "hi"}"#,
            json!([{"loc": ["body", "messages"], "msg": "Input should be a valid list", "type": "list_type"}]),
        ),
        (
            r#"{"messages": [{"role": "tool", "content": 5}, {"content": "x"}, 3]}"#,
            json!([
                {"loc": ["body", "messages", 0, "role"], "msg": "Input should be 'system', 'user' or 'assistant'", "type": "literal_error"},
                {"loc": ["body", "messages", 0, "content"], "msg": "Input should be a valid string", "type": "string_type"},
                {"loc": ["body", "messages", 1, "role"], "msg": "Field required", "type": "missing"},
                {"loc": ["body", "messages", 2], "msg": "Input should be a valid dictionary or object to extract fields from", "type": "model_attributes_type"}
            ]),
        ),
        (
            "[1]",
            json!([{"loc": ["body"], "msg": "Input should be a valid dictionary or object to extract fields from", "type": "model_attributes_type"}]),
        ),
        (
            r#"{"messages": ["#,
            json!([{"loc": ["body", 13], "msg": "JSON decode error", "type": "json_invalid"}]),
        ),
        (
            "",
            json!([{"loc": ["body"], "msg": "Field required", "type": "missing"}]),
        ),
    ];
    for (body, detail) in cases {
        let a = post(&url, body, &[AUTH]).await;
        assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(a.json(), json!({ "detail": detail }), "{body}");
    }
    // Extra fields are ignored, as pydantic does.
    let a = post(&url, r#"{"messages": [], "extra": 1}"#, &[AUTH]).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.json(), clean_answer());
}

#[tokio::test]
async fn aim_blocks_an_email_in_any_input_message() {
    let mock = MockAim::start(AimOptions::default()).await;
    let body = messages(&[
        ("system", "be nice"),
        ("user", "hi my email is ishaan@berri.ai, or krrish@berri.ai"),
        ("assistant", "ok"),
    ]);
    let a = post_json(
        &analyze_url(&mock),
        &body,
        &[AUTH, ("x-aim-litellm-hook", "pre_call")],
    )
    .await;
    let first_answer = a.body.to_vec();
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.headers["content-type"], "application/json");
    assert_eq!(
        a.json(),
        detected(
            "block_action",
            "\"ishaan@berri.ai\" detected as email",
            Value::Null
        )
    );
    // during_call sends the hook "moderation": also all messages.
    let a = post_json(
        &analyze_url(&mock),
        &body,
        &[AUTH, ("x-aim-litellm-hook", "moderation")],
    )
    .await;
    assert_eq!(a.json()["required_action"]["action_type"], "block_action");

    let clean = messages(&[("user", "what is the weather")]);
    let a = post_json(&analyze_url(&mock), &clean, &[AUTH]).await;
    assert_eq!(a.json(), clean_answer());

    let r = &mock.requests()[0];
    assert_eq!(r.path, "/fw/v1/analyze");
    assert_eq!(r.header("x-aim-litellm-hook"), Some("pre_call"));
    assert_eq!(r.json(), body);
    assert_eq!(r.response_body, first_answer);
}

#[tokio::test]
async fn aim_output_hook_scans_only_the_last_message() {
    let mock = MockAim::start(AimOptions::default()).await;
    let url = analyze_url(&mock);
    let earlier = messages(&[("user", "I am a@b.io"), ("assistant", "hello")]);
    for hook in ["x-aim-litellm-hook", "x-cato-litellm-hook"] {
        let a = post_json(&url, &earlier, &[AUTH, (hook, "output")]).await;
        assert_eq!(a.json(), clean_answer(), "{hook}");
        let a = post_json(&url, &earlier, &[AUTH, (hook, "pre_call")]).await;
        assert_eq!(
            a.json()["required_action"]["detection_message"],
            "\"a@b.io\" detected as email"
        );
    }
    let last = messages(&[("user", "hi"), ("assistant", "write to c@d.org")]);
    let a = post_json(&url, &last, &[AUTH, ("x-cato-litellm-hook", "output")]).await;
    assert_eq!(
        a.json(),
        detected("block_action", "\"c@d.org\" detected as email", Value::Null)
    );
    assert_eq!(
        mock.requests()[4].header("X-Cato-LiteLLM-Hook"),
        Some("output")
    );
}

#[tokio::test]
async fn aim_monitor_pass_and_raw() {
    let mock = MockAim::start(AimOptions {
        mode: AimMode::Monitor,
        ..Default::default()
    })
    .await;
    let url = analyze_url(&mock);
    let body = messages(&[("user", "mail ishaan@berri.ai")]);
    let a = post_json(&url, &body, &[AUTH]).await;
    assert_eq!(
        a.json(),
        detected(
            "monitor_action",
            "\"ishaan@berri.ai\" detected as email",
            Value::Null
        )
    );

    mock.set_options(AimOptions {
        mode: AimMode::Pass,
        ..Default::default()
    });
    assert_eq!(post_json(&url, &body, &[AUTH]).await.json(), clean_answer());

    let raw = json!({"required_action": {"action_type": "something_new"}, "x": [1, 2]});
    mock.set_options(AimOptions {
        mode: AimMode::Raw(raw.clone()),
        ..Default::default()
    });
    let a = post_json(&url, &body, &[AUTH]).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.json(), raw);
    // Raw still checks the key.
    assert_eq!(
        post_json(&url, &body, &[]).await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn aim_anonymizes_with_numbered_placeholders() {
    let mock = MockAim::start(AimOptions {
        mode: AimMode::Anonymize,
        ..Default::default()
    })
    .await;
    let body = messages(&[
        ("system", "no addresses here"),
        ("user", "I am a@b.io and c@d.org"),
        ("assistant", "noted"),
        ("user", "again: c@d.org, a@b.io, e@f.net"),
    ]);
    let a = post_json(
        &analyze_url(&mock),
        &body,
        &[AUTH, ("x-aim-litellm-hook", "pre_call")],
    )
    .await;
    let redacted = json!([
        {"role": "system", "content": "no addresses here"},
        {"role": "user", "content": "I am [EMAIL_1] and [EMAIL_2]"},
        {"role": "assistant", "content": "noted"},
        {"role": "user", "content": "again: [EMAIL_2], [EMAIL_1], [EMAIL_3]"}
    ]);
    assert_eq!(
        a.json(),
        detected(
            "anonymize_action",
            "\"a@b.io\" detected as email",
            json!({"all_redacted_messages": redacted, "redacted_new_message": redacted[3]})
        )
    );

    // Output checks redact the last message only.
    let body = messages(&[("user", "I am a@b.io"), ("assistant", "hi x@y.com")]);
    let a = post_json(
        &analyze_url(&mock),
        &body,
        &[AUTH, ("x-aim-litellm-hook", "output")],
    )
    .await;
    let v = a.json();
    assert_eq!(
        v["required_action"]["detection_message"],
        "\"x@y.com\" detected as email"
    );
    assert_eq!(
        v["redacted_chat"]["all_redacted_messages"],
        json!([{"role": "user", "content": "I am a@b.io"}, {"role": "assistant", "content": "hi [EMAIL_1]"}])
    );
    assert_eq!(
        v["redacted_chat"]["redacted_new_message"],
        json!({"role": "assistant", "content": "hi [EMAIL_1]"})
    );
}

#[tokio::test]
async fn aim_failures_and_delay() {
    let mock = MockAim::start(AimOptions {
        failure: Some(AimFailure::Status {
            status: 500,
            body: r#"{"detail":"boom"}"#.into(),
        }),
        ..Default::default()
    })
    .await;
    let url = analyze_url(&mock);
    let body = messages(&[("user", "hi")]);
    let a = post_json(&url, &body, &[AUTH]).await;
    assert_eq!(a.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(a.body, r#"{"detail":"boom"}"#);
    // Auth comes before the failure.
    assert_eq!(
        post_json(&url, &body, &[]).await.status,
        StatusCode::UNAUTHORIZED
    );

    mock.set_options(AimOptions {
        failure: Some(AimFailure::Garbage),
        ..Default::default()
    });
    let a = post_json(&url, &body, &[AUTH]).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.body, "not json{");

    mock.set_options(AimOptions {
        failure: Some(AimFailure::Hang),
        ..Default::default()
    });
    let hung = client()
        .post(&url)
        .header("authorization", "Bearer aim-mock-key")
        .body(serde_json::to_vec(&body).unwrap())
        .timeout(Duration::from_millis(300))
        .send()
        .await;
    assert!(hung.unwrap_err().is_timeout());

    mock.set_options(AimOptions {
        delay_ms: 200,
        ..Default::default()
    });
    let started = Instant::now();
    let a = post_json(&url, &body, &[AUTH]).await;
    assert_eq!(a.json(), clean_answer());
    assert!(started.elapsed() >= Duration::from_millis(200));
}

#[tokio::test]
async fn aim_control_api() {
    let mock = MockAim::start(AimOptions::default()).await;
    let base = mock.url();
    assert!(!base.ends_with('/'));
    let a = post(
        &format!("{base}/__mock/options"),
        r#"{"mode":"anonymize","api_key":"other"}"#,
        &[],
    )
    .await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(mock.options().mode, AimMode::Anonymize);
    assert_eq!(
        get_json(&format!("{base}/__mock/options")).await["api_key"],
        "other"
    );

    let a = post_json(
        &analyze_url(&mock),
        &messages(&[("user", "a@b.io")]),
        &[("authorization", "Bearer other")],
    )
    .await;
    assert_eq!(
        a.json()["required_action"]["action_type"],
        "anonymize_action"
    );

    post(
        &format!("{base}/__mock/options"),
        r#"{"mode":{"raw":{"hello":"world"}}}"#,
        &[],
    )
    .await;
    let a = post_json(&analyze_url(&mock), &messages(&[]), &[AUTH]).await;
    assert_eq!(a.json(), json!({"hello": "world"}));

    let recs = get_json(&format!("{base}/__mock/requests")).await;
    assert_eq!(recs.as_array().unwrap().len(), 2);
    assert_eq!(recs[1]["response_body"], r#"{"hello":"world"}"#);
    assert_eq!(get_json(&format!("{base}/__mock/streams")).await, json!([]));

    post(&format!("{base}/__mock/reset"), "", &[]).await;
    assert_eq!(
        get_json(&format!("{base}/__mock/requests")).await,
        json!([])
    );
}

// ---- mock Aim: websocket ----

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn ws_connect(
    mock: &MockAim,
    headers: &[(&'static str, &str)],
) -> Result<Ws, tungstenite::Error> {
    let url = format!("ws://{}/fw/v1/analyze/stream", mock.addr());
    let mut req = url.into_client_request().unwrap();
    for (k, v) in headers {
        req.headers_mut().insert(*k, v.parse().unwrap());
    }
    tokio_tungstenite::connect_async(req)
        .await
        .map(|(ws, _)| ws)
}

async fn ws_open(mock: &MockAim) -> Ws {
    ws_connect(
        mock,
        &[
            AUTH,
            ("x-aim-litellm-hook", "output"),
            ("x-aim-call-id", "call-1"),
        ],
    )
    .await
    .expect("websocket handshake")
}

fn chunk(content: &str) -> String {
    json!({"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "m",
           "choices": [{"index": 0, "delta": {"content": content}, "finish_reason": null}]})
    .to_string()
}

async fn ws_send(ws: &mut Ws, text: &str) {
    ws.send(Message::text(text)).await.unwrap();
}

/// The next text frame, parsed.
async fn ws_next(ws: &mut Ws) -> Value {
    match tokio::time::timeout(Duration::from_secs(5), ws.next()).await {
        Ok(Some(Ok(Message::Text(t)))) => serde_json::from_str(t.as_str()).unwrap(),
        other => panic!("expected a text frame, got {other:?}"),
    }
}

/// The close code the server ends with.
async fn ws_close_code(ws: &mut Ws) -> CloseCode {
    match tokio::time::timeout(Duration::from_secs(5), ws.next()).await {
        Ok(Some(Ok(Message::Close(Some(frame))))) => frame.code,
        other => panic!("expected a close frame, got {other:?}"),
    }
}

#[tokio::test]
async fn aim_ws_rejects_bad_keys_before_upgrading() {
    let mock = MockAim::start(AimOptions::default()).await;
    for headers in [&[][..], &[("authorization", "Bearer wrong")][..]] {
        match ws_connect(&mock, headers).await {
            Err(tungstenite::Error::Http(resp)) => {
                assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
                let body: Value = serde_json::from_slice(resp.body().as_deref().unwrap()).unwrap();
                assert!(body["detail"].is_string());
            }
            other => panic!("expected a 401, got {other:?}"),
        }
    }
    assert!(mock.streams().is_empty());
}

#[tokio::test]
async fn aim_ws_verifies_chunks_and_finishes() {
    let mock = MockAim::start(AimOptions::default()).await;
    let mut ws = ws_open(&mock).await;
    let first = chunk("Hello");
    let second = chunk(" world");
    ws_send(&mut ws, &first).await;
    let v = ws_next(&mut ws).await;
    assert_eq!(
        v,
        json!({"verified_chunk": serde_json::from_str::<Value>(&first).unwrap()})
    );
    ws.send(Message::binary(second.clone().into_bytes()))
        .await
        .unwrap();
    assert_eq!(
        ws_next(&mut ws).await["verified_chunk"]["choices"][0]["delta"]["content"],
        " world"
    );
    ws_send(&mut ws, r#"{"done": true}"#).await;
    assert_eq!(ws_next(&mut ws).await, json!({"done": true}));
    assert_eq!(ws_close_code(&mut ws).await, CloseCode::Normal);

    let streams = mock.streams();
    assert_eq!(streams.len(), 1);
    let s = &streams[0];
    assert_eq!(s.header("x-aim-call-id"), Some("call-1"));
    assert_eq!(s.header("x-aim-litellm-hook"), Some("output"));
    assert_eq!(
        s.frames,
        [first.clone(), second, r#"{"done": true}"#.to_owned()]
    );
    assert_eq!(s.sent.len(), 3);
    // Verified chunks are the chunk exactly as received.
    assert_eq!(s.sent[0], format!(r#"{{"verified_chunk":{first}}}"#));

    let over_http = get_json(&format!("{}/__mock/streams", mock.url())).await;
    assert_eq!(over_http[0]["frames"][0], first);
}

#[tokio::test]
async fn aim_ws_blocks_an_email_in_block_mode() {
    let mock = MockAim::start(AimOptions::default()).await;
    let mut ws = ws_open(&mock).await;
    ws_send(&mut ws, &chunk("Sure, write to ")).await;
    ws_next(&mut ws).await;
    ws_send(&mut ws, &chunk("ishaan@berri.ai today")).await;
    assert_eq!(
        ws_next(&mut ws).await,
        json!({"blocking_message": "\"ishaan@berri.ai\" detected as email"})
    );
    assert_eq!(ws_close_code(&mut ws).await, CloseCode::Normal);
}

/// An address split over chunks, in a tool call's arguments, is found when
/// its last piece arrives (Aim reads the whole stream, not one chunk).
#[tokio::test]
async fn aim_ws_finds_an_email_split_over_tool_call_chunks() {
    let mock = MockAim::start(AimOptions::default()).await;
    let mut ws = ws_open(&mock).await;
    let args = |a: &str| {
        json!({"choices": [{"index": 0, "delta": {"tool_calls": [
            {"index": 0, "type": "function", "function": {"arguments": a}}]}}]})
        .to_string()
    };
    ws_send(&mut ws, &chunk("Calling ishaan")).await;
    ws_next(&mut ws).await;
    ws_send(&mut ws, &args("{\"to\":\"ishaan@")).await;
    assert!(ws_next(&mut ws).await.get("verified_chunk").is_some());
    ws_send(&mut ws, &args("berri.ai\"}")).await;
    assert_eq!(
        ws_next(&mut ws).await,
        json!({"blocking_message": "\"ishaan@berri.ai\" detected as email"})
    );
    assert_eq!(ws_close_code(&mut ws).await, CloseCode::Normal);
}

#[tokio::test]
async fn aim_ws_blocks_on_the_marker_in_any_mode() {
    let mock = MockAim::start(AimOptions {
        mode: AimMode::Pass,
        stream_block_marker: Some("FORBIDDEN".into()),
        ..Default::default()
    })
    .await;
    let mut ws = ws_open(&mock).await;
    ws_send(&mut ws, &chunk("mail a@b.io")).await;
    assert_eq!(
        ws_next(&mut ws).await["verified_chunk"]["choices"][0]["delta"]["content"],
        "mail a@b.io"
    );
    ws_send(&mut ws, &chunk("this is FORBIDDEN text")).await;
    assert_eq!(
        ws_next(&mut ws).await,
        json!({"blocking_message": "Stream blocked: found \"FORBIDDEN\""})
    );
    assert_eq!(ws_close_code(&mut ws).await, CloseCode::Normal);
}

#[tokio::test]
async fn aim_ws_anonymizes_and_monitors() {
    let mock = MockAim::start(AimOptions {
        mode: AimMode::Anonymize,
        ..Default::default()
    })
    .await;
    let mut ws = ws_open(&mock).await;
    ws_send(&mut ws, &chunk("to a@b.io and c@d.org")).await;
    let v = ws_next(&mut ws).await;
    let mut expected: Value = serde_json::from_str(&chunk("to [EMAIL_1] and [EMAIL_2]")).unwrap();
    assert_eq!(v["verified_chunk"], expected);
    // Numbering is per stream.
    ws_send(&mut ws, &chunk("c@d.org again")).await;
    expected = serde_json::from_str(&chunk("[EMAIL_2] again")).unwrap();
    assert_eq!(ws_next(&mut ws).await["verified_chunk"], expected);

    mock.set_options(AimOptions {
        mode: AimMode::Monitor,
        ..Default::default()
    });
    let mut ws = ws_open(&mock).await;
    ws_send(&mut ws, &chunk("to a@b.io")).await;
    assert_eq!(
        ws_next(&mut ws).await["verified_chunk"]["choices"][0]["delta"]["content"],
        "to a@b.io"
    );
}

#[tokio::test]
async fn aim_ws_drops_the_connection_after_n_chunks() {
    let mock = MockAim::start(AimOptions {
        ws_drop_after: Some(2),
        ..Default::default()
    })
    .await;
    let mut ws = ws_open(&mock).await;
    ws_send(&mut ws, &chunk("one")).await;
    ws_next(&mut ws).await;
    ws_send(&mut ws, &chunk("two")).await;
    match tokio::time::timeout(Duration::from_secs(5), ws.next())
        .await
        .unwrap()
    {
        None | Some(Err(_)) => {}
        Some(Ok(msg)) => panic!("expected the connection to drop, got {msg:?}"),
    }
    let s = &mock.streams()[0];
    assert_eq!(s.frames.len(), 2);
    assert_eq!(s.sent.len(), 1, "no answer to the last chunk");
}

#[tokio::test]
async fn aim_ws_answers_slowly_and_stops_reading_through_the_control_api() {
    let mock = MockAim::start(AimOptions {
        mode: AimMode::Pass,
        ..Default::default()
    })
    .await;
    let options = format!("http://{}/__mock/options", mock.addr());
    let set = post(
        &options,
        r#"{"mode":"pass","ws_answer_interval_ms":200}"#,
        &[],
    )
    .await;
    assert_eq!(set.status, StatusCode::OK);
    let mut ws = ws_open(&mock).await;
    for word in ["one", "two", "three"] {
        ws_send(&mut ws, &chunk(word)).await;
    }
    // Every frame is read at once; the answers come 200 ms apart.
    eventually("all three frames read", || {
        mock.streams()[0].frames.len() == 3
    })
    .await;
    let started = std::time::Instant::now();
    for word in ["one", "two", "three"] {
        assert_eq!(
            ws_next(&mut ws).await["verified_chunk"]["choices"][0]["delta"]["content"],
            word
        );
    }
    assert!(
        started.elapsed() >= Duration::from_millis(350),
        "{:?}",
        started.elapsed()
    );
    drop(ws);
    eventually("the session sees the socket go", || mock.streams()[0].ended).await;

    // After two frames the socket is no longer read, nor answered.
    post(
        &options,
        r#"{"mode":"pass","ws_stop_reading_after":2}"#,
        &[],
    )
    .await;
    let mut ws = ws_open(&mock).await;
    for word in ["a", "b", "c"] {
        ws_send(&mut ws, &chunk(word)).await;
    }
    ws_next(&mut ws).await;
    ws_next(&mut ws).await;
    assert!(
        tokio::time::timeout(Duration::from_millis(300), ws.next())
            .await
            .is_err(),
        "no answer to the third frame"
    );
    assert_eq!(mock.streams()[1].frames.len(), 2);
}

#[tokio::test]
async fn aim_ws_closes_with_an_error_on_non_json() {
    let mock = MockAim::start(AimOptions::default()).await;
    let mut ws = ws_open(&mock).await;
    ws_send(&mut ws, "data: not json").await;
    assert_eq!(ws_close_code(&mut ws).await, CloseCode::Invalid);
}

#[tokio::test]
async fn aim_ws_failures() {
    let mock = MockAim::start(AimOptions {
        failure: Some(AimFailure::Status {
            status: 503,
            body: r#"{"detail":"down"}"#.into(),
        }),
        ..Default::default()
    })
    .await;
    match ws_connect(&mock, &[AUTH]).await {
        Err(tungstenite::Error::Http(resp)) => assert_eq!(resp.status(), 503),
        other => panic!("expected a 503, got {other:?}"),
    }

    mock.set_options(AimOptions {
        failure: Some(AimFailure::Garbage),
        ..Default::default()
    });
    let mut ws = ws_open(&mock).await;
    ws_send(&mut ws, &chunk("hi")).await;
    match tokio::time::timeout(Duration::from_secs(5), ws.next()).await {
        Ok(Some(Ok(Message::Text(t)))) => assert_eq!(t.as_str(), "not json{"),
        other => panic!("expected garbage, got {other:?}"),
    }
}

#[tokio::test]
async fn aim_shutdown_ends_open_websockets() {
    let mock = MockAim::start(AimOptions::default()).await;
    let mut ws = ws_open(&mock).await;
    ws_send(&mut ws, &chunk("hi")).await;
    ws_next(&mut ws).await;
    mock.shutdown();
    match tokio::time::timeout(Duration::from_secs(5), ws.next())
        .await
        .unwrap()
    {
        None | Some(Err(_)) => {}
        Some(Ok(msg)) => panic!("expected the connection to end, got {msg:?}"),
    }
}
