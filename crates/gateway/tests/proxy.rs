//! The proxy against a real mock upstream: passthrough byte for byte, what
//! the upstream receives, the error table, auth, models, headers,
//! cancellation and graceful shutdown.

// Tests: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::*;
use futures_util::StreamExt;
use gateway_mock::upstream::{Failure, MockUpstream, UpstreamOptions};
use serde_json::{Value, json};

async fn upstream() -> MockUpstream {
    MockUpstream::start(UpstreamOptions::default()).await
}

fn one_model(up: &MockUpstream) -> String {
    format!("model_list:\n{}", model("gpt-3.5-turbo", &up.url()))
}

#[tokio::test]
async fn non_streaming_passthrough_is_byte_for_byte() {
    let up = upstream().await;
    let gw = gateway(&one_model(&up)).await;
    let body = json!({
        "model": "gpt-3.5-turbo",
        "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hello there"}],
        "temperature": 0.2,
        "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}],
        "response_format": {"type": "text"},
        "logprobs": false,
        "n": 1,
        "some_future_field": {"nested": [1, 2, 3]},
        "guardrails": [],
        "metadata": {"trace": "x", "disable_global_guardrail": true},
        "disable_global_guardrail": true
    });
    let resp = client()
        .post(format!("{}/v1/chat/completions", gw.url()))
        .bearer_auth("sk-client-secret")
        .header("x-custom-client-header", "nope")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, "content-type"), Some("application/json"));
    let got = resp.bytes().await.unwrap();

    let recs = up.requests();
    assert_eq!(recs.len(), 1);
    let rec = &recs[0];
    assert_eq!(got.as_ref(), rec.response_body.as_slice(), "byte for byte");
    assert_eq!(rec.path, "/v1/chat/completions");
    assert_eq!(
        rec.header("authorization"),
        Some("Bearer sk-upstream-secret")
    );
    assert_eq!(rec.header("x-custom-client-header"), None);
    assert_eq!(rec.header("host"), Some(up.addr().to_string().as_str()));
    assert_eq!(rec.header("content-type"), Some("application/json"));
    let sent = rec.json();
    assert_eq!(sent["model"], "gpt-3.5-turbo-upstream");
    for field in [
        "temperature",
        "tools",
        "response_format",
        "logprobs",
        "n",
        "some_future_field",
        "messages",
    ] {
        assert_eq!(sent[field], body[field], "{field} forwarded untouched");
    }
    for field in ["guardrails", "metadata", "disable_global_guardrail"] {
        assert!(
            sent.get(field).is_none(),
            "{field} must not reach the upstream"
        );
    }
    // Field order kept: the body is the client's bytes with edits.
    let keys: Vec<&str> = sent
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "model",
            "messages",
            "temperature",
            "tools",
            "response_format",
            "logprobs",
            "n",
            "some_future_field"
        ]
    );
}

#[tokio::test]
async fn streaming_passthrough_is_byte_for_byte_and_unbuffered() {
    let up = MockUpstream::start(UpstreamOptions {
        chunks: 4,
        chunk_interval_ms: 150,
        ..Default::default()
    })
    .await;
    let gw = gateway(&one_model(&up)).await;
    let mut body = user("one two three four five six");
    body["stream"] = json!(true);
    let started = Instant::now();
    let resp = chat(&gw, &body).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, "content-type"), Some("text/event-stream"));
    assert_eq!(header(&resp, "cache-control"), Some("no-cache"));
    assert_eq!(header(&resp, "x-accel-buffering"), Some("no"));
    let mut stream = resp.bytes_stream();
    let mut got = Vec::new();
    let mut first_at = None;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.unwrap();
        if first_at.is_none() && !chunk.is_empty() {
            first_at = Some(started.elapsed());
        }
        got.extend_from_slice(&chunk);
    }
    let total = started.elapsed();
    let rec = &up.requests()[0];
    assert_eq!(got, rec.response_body, "byte for byte");
    assert!(String::from_utf8_lossy(&got).ends_with("data: [DONE]\n\n"));
    // 7 frames 150 ms apart: the first must arrive long before the last.
    let first_at = first_at.unwrap();
    assert!(
        first_at + Duration::from_millis(500) < total,
        "first chunk at {first_at:?}, end at {total:?}: the stream was buffered"
    );
}

#[tokio::test]
async fn both_routes_and_call_id_headers() {
    let up = upstream().await;
    let gw = gateway(&format!(
        "model_list:\n  - model_name: gpt-3.5-turbo\n    litellm_params:\n      model: openai/x\n      api_base: {}\n      api_key: k\n    model_info:\n      id: deployment-one\n",
        up.url()
    ))
    .await;
    let resp = client()
        .post(format!("{}/chat/completions", gw.url()))
        .header("x-litellm-call-id", "my-call-42")
        .json(&user("hi"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, "x-litellm-call-id"), Some("my-call-42"));
    assert_eq!(header(&resp, "x-litellm-model-id"), Some("deployment-one"));
    let overhead: f64 = header(&resp, "x-litellm-overhead-duration-ms")
        .unwrap()
        .parse()
        .unwrap();
    assert!(overhead >= 0.0);

    let resp = chat(&gw, &user("hi")).await;
    let id = header(&resp, "x-litellm-call-id").unwrap();
    let parsed = uuid::Uuid::parse_str(id).expect("a UUID");
    assert_eq!(parsed.get_version_num(), 4);
}

async fn error_of(resp: reqwest::Response) -> (u16, Value, String) {
    let status = resp.status().as_u16();
    assert_eq!(header(&resp, "content-type"), Some("application/json"));
    assert!(
        header(&resp, "x-litellm-call-id").is_some(),
        "call id on errors too"
    );
    assert!(header(&resp, "x-litellm-overhead-duration-ms").is_some());
    let text = resp.text().await.unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["error"]["code"], status.to_string(), "{text}");
    (status, v, text)
}

#[tokio::test]
async fn request_errors_are_openai_envelopes() {
    let up = upstream().await;
    let gw = gateway(&format!(
        "{}general_settings:\n  max_request_size_mb: 0.001\n",
        one_model(&up)
    ))
    .await;
    let url = format!("{}/v1/chat/completions", gw.url());
    let post_raw = |body: &'static str| {
        client()
            .post(&url)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };

    let (s, _, text) = error_of(post_raw("{not json").await.unwrap()).await;
    assert_eq!(s, 400);
    assert!(
        text.contains(r#""type":"invalid_request_error","param":null"#),
        "{text}"
    );

    let (s, v, _) = error_of(
        post_raw(r#"{"messages":[{"role":"user","content":"x"}]}"#)
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((s, v["error"]["param"].as_str()), (400, Some("model")));

    let (s, v, _) = error_of(
        post_raw(r#"{"model":"gpt-3.5-turbo","messages":"hi"}"#)
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((s, v["error"]["param"].as_str()), (400, Some("messages")));

    let (s, _, text) = error_of(
        post_raw(r#"{"model":"gpt-4o","messages":[{"role":"user","content":"x"}]}"#)
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, 400);
    assert_eq!(
        text,
        r#"{"error":{"message":"/chat/completions: Invalid model name passed in model=gpt-4o. Call `/v1/models` to view available models for your key.","type":"invalid_request_error","param":"model","code":"400"}}"#
    );

    let big = format!(
        r#"{{"model":"gpt-3.5-turbo","messages":[{{"role":"user","content":"{}"}}]}}"#,
        "x".repeat(4000)
    );
    let (s, v, _) = error_of(client().post(&url).body(big).send().await.unwrap()).await;
    assert_eq!(
        (s, v["error"]["type"].as_str()),
        (413, Some("invalid_request_error"))
    );

    // Chunked (no content-length) over the limit is refused as well.
    let chunks =
        futures_util::stream::iter((0..10).map(|_| Ok::<_, std::io::Error>(vec![b' '; 500])));
    let resp = client()
        .post(&url)
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(resp).await.0, 413);

    let (s, _, _) = error_of(client().get(&url).send().await.unwrap()).await;
    assert_eq!(s, 405);
    let (s, _, _) = error_of(
        client()
            .get(format!("{}/v2/nothing", gw.url()))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, 404);
    assert_eq!(up.request_count(), 0, "no bad request reaches the upstream");
}

#[tokio::test]
async fn upstream_errors_pass_through() {
    let openai_429 = r#"{"error":{"message":"Rate limit reached","type":"requests","param":null,"code":"rate_limit_exceeded"}}"#;
    let up = MockUpstream::start(UpstreamOptions {
        failure: Some(Failure::Status {
            status: 429,
            body: openai_429.into(),
            retry_after: Some(7),
        }),
        ..Default::default()
    })
    .await;
    let gw = gateway(&one_model(&up)).await;
    let resp = chat(&gw, &user("hi")).await;
    assert_eq!(resp.status(), 429);
    assert_eq!(header(&resp, "retry-after"), Some("7"));
    assert!(header(&resp, "x-litellm-model-id").is_some());
    assert_eq!(
        resp.text().await.unwrap(),
        openai_429,
        "the upstream's own body"
    );

    // Not OpenAI-shaped: the status stays, the body is our envelope.
    up.set_options(UpstreamOptions {
        failure: Some(Failure::Status {
            status: 503,
            body: "<html>bad gateway</html>".into(),
            retry_after: None,
        }),
        ..Default::default()
    });
    let (s, v, text) = error_of(chat(&gw, &user("hi")).await).await;
    assert_eq!(
        (s, v["error"]["type"].as_str()),
        (503, Some("upstream_error"))
    );
    assert!(!text.contains("html"));

    up.set_options(UpstreamOptions {
        failure: Some(Failure::ContextLength),
        ..Default::default()
    });
    let resp = chat(&gw, &user("hi")).await;
    assert_eq!(resp.status(), 400);
    assert!(
        resp.text()
            .await
            .unwrap()
            .contains("context_length_exceeded")
    );
}

#[tokio::test]
async fn unreachable_and_timed_out_upstreams() {
    // A port nobody listens on.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let up = MockUpstream::start(UpstreamOptions {
        failure: Some(Failure::Hang),
        ..Default::default()
    })
    .await;
    let gw = gateway(&format!(
        "model_list:\n{}  - model_name: slow\n    litellm_params:\n      model: openai/slow\n      api_base: {}\n      api_key: sk-upstream-secret\n      timeout: 0.3\n",
        model("down", &format!("http://{closed}/v1")),
        up.url()
    ))
    .await;
    let (s, v, text) = error_of(
        chat(
            &gw,
            &json!({"model": "down", "messages": [{"role": "user", "content": "x"}]}),
        )
        .await,
    )
    .await;
    assert_eq!(
        (s, v["error"]["type"].as_str()),
        (502, Some("upstream_error"))
    );
    assert!(!text.contains("sk-upstream-secret"));

    let started = Instant::now();
    let (s, v, _) = error_of(
        chat(
            &gw,
            &json!({"model": "slow", "messages": [{"role": "user", "content": "x"}]}),
        )
        .await,
    )
    .await;
    assert_eq!((s, v["error"]["type"].as_str()), (504, Some("timeout")));
    assert!(started.elapsed() < Duration::from_secs(3));
}

const KEYS: &str = "general_settings:\n  master_key: sk-master\nvirtual_keys:\n  - key: sk-alice\n    key_alias: alice-app\n    models: [gpt-3.5-turbo]\n  - key: sk-bob\n";

#[tokio::test]
async fn auth_accepts_each_header_and_refuses_bad_keys() {
    let up = upstream().await;
    let gw = gateway(&format!(
        "{}{}{KEYS}",
        one_model(&up),
        model("gpt-4o", &up.url())
    ))
    .await;
    let url = format!("{}/v1/chat/completions", gw.url());
    for (name, value) in [
        ("authorization", "Bearer sk-master"),
        ("authorization", "bearer sk-alice"),
        ("api-key", "sk-alice"),
        ("x-api-key", "sk-bob"),
        ("x-litellm-api-key", "sk-master"),
        ("x-litellm-api-key", "Bearer sk-bob"),
    ] {
        let resp = client()
            .post(&url)
            .header(name, value)
            .json(&user("hi"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{name}: {value}");
    }
    let cases: [(&str, &str, u16, &str); 4] = [
        ("authorization", "Bearer sk-wrong", 401, "auth_error"),
        ("authorization", "sk-master", 401, "auth_error"),
        ("x-api-key", "", 401, "auth_error"),
        (
            "authorization",
            "Bearer sk-master-and-more",
            401,
            "auth_error",
        ),
    ];
    for (name, value, status, kind) in cases {
        let (s, v, text) = error_of(
            client()
                .post(&url)
                .header(name, value)
                .json(&user("hi"))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(
            (s, v["error"]["type"].as_str()),
            (status, Some(kind)),
            "{name}: {value}"
        );
        assert!(!text.contains("sk-"), "no key in the error: {text}");
    }
    let (s, _, _) = error_of(client().post(&url).json(&user("hi")).send().await.unwrap()).await;
    assert_eq!(s, 401);

    // alice may only use gpt-3.5-turbo.
    let mut other = user("hi");
    other["model"] = json!("gpt-4o");
    let (s, v, text) = error_of(
        client()
            .post(&url)
            .bearer_auth("sk-alice")
            .json(&other)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (s, v["error"]["type"].as_str()),
        (403, Some("key_model_access_denied"))
    );
    assert!(!text.contains("sk-alice"));
    assert_eq!(up.request_count(), 6);
}

#[tokio::test]
async fn models_are_filtered_by_key() {
    let up = upstream().await;
    let gw = gateway(&format!(
        "{}{}{KEYS}",
        one_model(&up),
        model("gpt-4o", &up.url())
    ))
    .await;
    let ids = |v: Value| -> Vec<String> {
        v["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_str().unwrap().to_owned())
            .collect()
    };
    for (key, want) in [
        ("sk-master", vec!["gpt-3.5-turbo", "gpt-4o"]),
        ("sk-alice", vec!["gpt-3.5-turbo"]),
        ("sk-bob", vec!["gpt-3.5-turbo", "gpt-4o"]),
    ] {
        for path in ["/v1/models", "/models"] {
            let resp = client()
                .get(format!("{}{path}", gw.url()))
                .bearer_auth(key)
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 200);
            let v: Value = resp.json().await.unwrap();
            assert_eq!(v["object"], "list");
            assert_eq!(ids(v), want, "{key} {path}");
        }
    }
    let resp = client()
        .get(format!("{}/v1/models", gw.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
}

#[tokio::test]
async fn no_keys_configured_means_no_auth() {
    let up = upstream().await;
    let gw = gateway(&one_model(&up)).await;
    assert_eq!(chat(&gw, &user("hi")).await.status(), 200);
    let resp = client()
        .get(format!("{}/v1/models", gw.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn health_routes() {
    let up = upstream().await;
    let gw = gateway(&one_model(&up)).await;
    for path in ["/health/liveliness", "/health/liveness"] {
        let resp = client()
            .get(format!("{}{path}", gw.url()))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.text().await.unwrap(), "\"I'm alive!\"");
    }
    let resp = client()
        .get(format!("{}/health/readiness", gw.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["status"], "healthy");
}

#[tokio::test]
async fn mock_response_answers_without_network() {
    let gw = gateway(
        "model_list:\n  - model_name: gpt-3.5-turbo\n    litellm_params:\n      model: openai/gpt-3.5-turbo\n      mock_response: canned words here\n",
    )
    .await;
    let resp = chat(&gw, &user("hi")).await;
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["choices"][0]["message"]["content"], "canned words here");

    let mut body = user("hi");
    body["stream"] = json!(true);
    let text = chat(&gw, &body).await.text().await.unwrap();
    let frames = sse_data(&text);
    assert_eq!(frames.last().map(String::as_str), Some("[DONE]"));
    let content: String = frames
        .iter()
        .filter_map(|f| serde_json::from_str::<Value>(f).ok())
        .filter_map(|v| {
            v["choices"][0]["delta"]["content"]
                .as_str()
                .map(str::to_owned)
        })
        .collect();
    assert_eq!(content, "canned words here");
}

#[tokio::test]
async fn client_disconnect_mid_stream_ends_the_upstream_request() {
    let up = MockUpstream::start(UpstreamOptions {
        chunks: 50,
        chunk_interval_ms: 50,
        ..Default::default()
    })
    .await;
    let gw = gateway(&one_model(&up)).await;
    let mut body = user("a b c d e f g h");
    body["stream"] = json!(true);
    let resp = chat(&gw, &body).await;
    let mut stream = resp.bytes_stream();
    stream.next().await.unwrap().unwrap();
    assert_eq!(up.in_flight(), 1);
    drop(stream);
    eventually("the upstream stream is cancelled", || {
        up.cancelled_streams() == 1
    })
    .await;
    assert_eq!(up.in_flight(), 0);
    assert_eq!(up.completed_streams(), 0);
}

#[tokio::test]
async fn graceful_shutdown_finishes_a_stream_in_progress() {
    let up = MockUpstream::start(UpstreamOptions {
        chunks: 6,
        chunk_interval_ms: 100,
        ..Default::default()
    })
    .await;
    let mut gw = gateway(&one_model(&up)).await;
    let url = gw.url();
    let mut body = user("one two three four five six");
    body["stream"] = json!(true);
    let resp = chat(&gw, &body).await;
    assert_eq!(resp.status(), 200);
    let mut stream = resp.bytes_stream();
    let mut got = stream.next().await.unwrap().unwrap().to_vec();

    gw.begin_shutdown();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        client()
            .get(format!("{url}/health/liveliness"))
            .send()
            .await
            .is_err(),
        "new connections are refused once draining"
    );
    while let Some(chunk) = stream.next().await {
        got.extend_from_slice(&chunk.expect("the stream is not cut"));
    }
    assert_eq!(got, up.requests()[0].response_body);
    assert!(String::from_utf8_lossy(&got).ends_with("data: [DONE]\n\n"));
    gw.shutdown().await;
}

#[tokio::test]
async fn readiness_turns_503_while_draining() {
    let up = upstream().await;
    let gw = gateway(&one_model(&up)).await;
    gw.state
        .draining
        .store(true, std::sync::atomic::Ordering::Relaxed);
    let resp = client()
        .get(format!("{}/health/readiness", gw.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 503);
}

#[tokio::test]
async fn azure_deployments_use_their_url_and_api_key_header() {
    let up = upstream().await;
    let base = up.url().trim_end_matches("/v1").to_owned();
    let gw = gateway(&format!(
        "model_list:\n  - model_name: gpt-4o\n    litellm_params:\n      model: azure/my-gpt4o\n      api_base: {base}\n      api_key: azure-secret\n      api_version: 2024-10-21\n"
    ))
    .await;
    let mut body = user("hi azure");
    body["model"] = json!("gpt-4o");
    let resp = chat(&gw, &body).await;
    assert_eq!(resp.status(), 200);
    let rec = &up.requests()[0];
    assert_eq!(rec.path, "/openai/deployments/my-gpt4o/chat/completions");
    assert_eq!(rec.header("api-key"), Some("azure-secret"));
    assert_eq!(rec.header("authorization"), None);
    assert_eq!(rec.json()["model"], "my-gpt4o");
}
