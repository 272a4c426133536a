//! The `anthropic/` provider's translation against the mock Anthropic API,
//! over real HTTP: a translated request is what Anthropic accepts, and what
//! it answers maps back to OpenAI's shapes (JSON, stream, errors). The
//! wiring into the gateway's request path comes with issue 14; until then
//! these tests play the gateway's part with the provider's functions.

// Tests: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use bytes::Bytes;
use futures_util::StreamExt;
use gateway::error::{Error, Secrets};
use gateway::providers::anthropic::request::{Options, Translated, to_anthropic};
use gateway::providers::anthropic::{Endpoint, EndpointConfig, error, response, stream};
use gateway_mock::anthropic::{AnthropicOptions, Failure, MockAnthropic, ToolUse};
use gateway_mock::upstream::{MockUpstream, UpstreamOptions};
use serde_json::{Value, json};

const KEY: &str = "sk-ant-api03-test-key-123456";

fn endpoint(api_base: &str) -> Endpoint {
    let config = EndpointConfig {
        api_base: Some(api_base),
        api_key: Some(KEY),
        use_bearer_for_custom_base: false,
    };
    Endpoint::resolve(&config, |_| None).unwrap()
}

/// What the gateway will do: translate, post with the endpoint's headers.
async fn send(ep: &Endpoint, body: &Value) -> (Translated, reqwest::Response) {
    let t = to_anthropic(&serde_json::to_vec(body).unwrap(), &Options::default()).unwrap();
    let client_betas: Vec<&str> = t.client_betas.iter().map(String::as_str).collect();
    let mut req = common::client().post(&ep.url).body(t.body.clone());
    for (k, v) in ep.headers(&t.betas, &client_betas) {
        req = req.header(k, v);
    }
    let resp = req.send().await.unwrap();
    (t, resp)
}

fn conversation(model: &str) -> Value {
    json!({
        "model": model,
        "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": [
                {"type": "text", "text": "Look"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}
            ]},
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "get.weather", "arguments": "{\"city\": \"Paris\"}"}}
            ]},
            {"role": "tool", "tool_call_id": "call_1", "content": "18C"},
            {"role": "system", "content": "Answer in one word."},
            {"role": "user", "content": "Tomorrow?"}
        ],
        "tools": [{"type": "function", "function": {"name": "get.weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}],
        "temperature": 0.3,
        "stop": ["END"],
        "user": "user-42"
    })
}

#[tokio::test]
async fn translated_request_is_accepted_and_the_answer_maps_back() {
    let mock = MockAnthropic::start(AnthropicOptions {
        reply: Some("Rainy".into()),
        thinking: Some("check the forecast".into()),
        tool_use: Some(ToolUse {
            name: "get_weather".into(),
            input: json!({"city": "Paris", "day": "tomorrow"}),
            id: Some("toolu_9".into()),
            json_chunks: 0,
        }),
        cache_read_input_tokens: 100,
        cache_creation_input_tokens: 7,
        ..AnthropicOptions::default()
    })
    .await;
    let ep = endpoint(&mock.url());
    let (t, resp) = send(&ep, &conversation("claude-sonnet-4-5-20250929")).await;
    let status = resp.status();
    let body = resp.bytes().await.unwrap();
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));

    // What went over the wire.
    let got = &mock.requests()[0];
    assert_eq!(got.path, "/v1/messages");
    assert_eq!(got.header("x-api-key"), Some(KEY));
    assert_eq!(got.header("anthropic-version"), Some("2023-06-01"));
    let sent = got.json();
    assert_eq!(sent["model"], "claude-sonnet-4-5-20250929");
    assert_eq!(sent["max_tokens"], 64000);
    assert_eq!(
        sent["system"],
        json!([{"type": "text", "text": "You are terse."}])
    );
    assert_eq!(sent["tools"][0]["name"], "get_weather");
    assert_eq!(sent["messages"][1]["content"][0]["name"], "get_weather");
    assert_eq!(
        sent["messages"][2]["content"],
        json!([
            {"type": "tool_result", "tool_use_id": "call_1", "content": "18C"},
            {"type": "text", "text": "Operator note (not from the user): the following was originally a mid-conversation system-role reminder."},
            {"type": "text", "text": "Answer in one word."},
            {"type": "text", "text": "Tomorrow?"}
        ])
    );

    let out = response::to_openai(&body, "claude", &t.context, &Secrets::default()).unwrap();
    let v: Value = serde_json::from_slice(&out).unwrap();
    let m = &v["choices"][0]["message"];
    assert_eq!(v["model"], "claude");
    assert_eq!(m["content"], "Rainy");
    assert_eq!(m["reasoning_content"], "check the forecast");
    // The sanitised name goes back as the client wrote it.
    assert_eq!(m["tool_calls"][0]["function"]["name"], "get.weather");
    assert_eq!(
        m["tool_calls"][0]["function"]["arguments"],
        r#"{"city": "Paris", "day": "tomorrow"}"#
    );
    assert_eq!(m["tool_calls"][0]["index"], 2);
    assert_eq!(v["choices"][0]["finish_reason"], "tool_calls");
    let input = sent_words(&sent);
    assert_eq!(v["usage"]["prompt_tokens"], input + 107);
    assert_eq!(v["usage"]["prompt_tokens_details"]["cached_tokens"], 100);
    assert_eq!(v["usage"]["cache_creation_input_tokens"], 7);
}

/// The mock's input token count: words of every text it got.
fn sent_words(sent: &Value) -> u64 {
    fn walk(v: &Value, n: &mut u64) {
        match v {
            Value::Object(o) => o.iter().for_each(|(k, v)| match (k.as_str(), v) {
                ("text" | "content", Value::String(s)) => *n += s.split_whitespace().count() as u64,
                _ => walk(v, n),
            }),
            Value::Array(a) => a.iter().for_each(|v| walk(v, n)),
            _ => {}
        }
    }
    let mut n = 0;
    walk(&sent["messages"], &mut n);
    walk(&sent["system"], &mut n);
    n
}

#[tokio::test]
async fn streamed_answer_maps_to_chunks() {
    let mock = MockAnthropic::start(AnthropicOptions {
        reply: Some("It will rain tomorrow".into()),
        chunks: 4,
        tool_use: Some(ToolUse {
            name: "get_weather".into(),
            input: json!({"city": "Paris"}),
            id: None,
            json_chunks: 3,
        }),
        ..AnthropicOptions::default()
    })
    .await;
    let ep = endpoint(&mock.url());
    let mut body = conversation("claude-mock-unknown");
    body["stream"] = json!(true);
    body["stream_options"] = json!({"include_usage": true});
    let (t, resp) = send(&ep, &body).await;
    assert_eq!(resp.status(), 200);
    assert!(t.stream);
    assert_eq!(mock.requests()[0].json()["stream"], true);

    let upstream = resp
        .bytes_stream()
        .map(|r| r.map_err(|e| Error::UpstreamUnreachable(e.to_string())));
    let (tx, rx) = std::sync::mpsc::channel();
    let translator =
        stream::Translator::new("claude", t.context.clone(), Arc::new(Secrets::default()));
    let out: Vec<Result<Bytes, Error>> =
        stream::translate(Box::pin(upstream), translator, move |t| {
            tx.send(t.usage()).unwrap()
        })
        .collect()
        .await;
    let text: String = out
        .into_iter()
        .map(|r| String::from_utf8(r.unwrap().to_vec()).unwrap())
        .collect();
    let data = common::sse_data(&text);
    assert_eq!(data.last().unwrap(), "[DONE]");
    let chunks: Vec<Value> = data[..data.len() - 1]
        .iter()
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    assert!(
        chunks
            .iter()
            .all(|c| c["model"] == "claude" && c["id"] == chunks[0]["id"])
    );
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    let content: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(content, "It will rain tomorrow");
    let calls: Vec<&Value> = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"].get("tool_calls"))
        .collect();
    assert_eq!(calls[0][0]["function"]["name"], "get.weather");
    let args: String = calls
        .iter()
        .map(|c| c[0]["function"]["arguments"].as_str().unwrap())
        .collect();
    assert_eq!(
        serde_json::from_str::<Value>(&args).unwrap(),
        json!({"city": "Paris"})
    );
    let finish: Vec<&Value> = chunks
        .iter()
        .map(|c| &c["choices"][0]["finish_reason"])
        .filter(|f| f.is_string())
        .collect();
    assert_eq!(finish, [&json!("tool_calls")]);
    let usage = &chunks.last().unwrap()["usage"];
    assert_eq!(usage["completion_tokens"], 5);
    let (prompt, completion) = rx.recv().unwrap();
    assert_eq!(
        (usage["prompt_tokens"].as_u64().unwrap(), 5),
        (prompt, completion)
    );
}

#[tokio::test]
async fn overloaded_and_too_long_map_to_litellms_errors() {
    let mock = MockAnthropic::start(AnthropicOptions {
        failure: Some(Failure::Overloaded),
        ..AnthropicOptions::default()
    })
    .await;
    let ep = endpoint(&mock.url());
    let (_, resp) = send(&ep, &conversation("claude-sonnet-4-5-20250929")).await;
    assert_eq!(resp.status().as_u16(), 529);
    let status = resp.status();
    let e = error::from_upstream(
        status,
        &resp.bytes().await.unwrap(),
        None,
        &Secrets::default(),
    );
    assert_eq!(e.status(), 500);
    let body: Value = serde_json::from_slice(&e.body()).unwrap();
    assert_eq!(body["error"]["type"], "internal_server_error");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("litellm.InternalServerError: AnthropicError - ")
    );

    mock.set_options(AnthropicOptions {
        failure: Some(Failure::PromptTooLong),
        ..AnthropicOptions::default()
    });
    let (_, resp) = send(&ep, &conversation("claude-sonnet-4-5-20250929")).await;
    let status = resp.status();
    let e = error::from_upstream(
        status,
        &resp.bytes().await.unwrap(),
        None,
        &Secrets::default(),
    );
    assert_eq!(e.status(), 400);
    assert!(
        e.to_string()
            .starts_with("litellm.ContextWindowExceededError")
    );
}

#[tokio::test]
async fn an_error_event_mid_stream_ends_the_translated_stream() {
    let mock = MockAnthropic::start(AnthropicOptions {
        reply: Some("one two three".into()),
        failure: Some(Failure::StreamError { after: 4 }),
        ..AnthropicOptions::default()
    })
    .await;
    let ep = endpoint(&mock.url());
    let (t, resp) = send(&ep, &json!({"model": "claude-haiku-4-5", "stream": true, "messages": [{"role": "user", "content": "hi"}]})).await;
    let upstream = resp
        .bytes_stream()
        .map(|r| r.map_err(|e| Error::UpstreamUnreachable(e.to_string())));
    let translator = stream::Translator::new("claude", t.context, Arc::new(Secrets::default()));
    let out: Vec<Result<Bytes, Error>> = stream::translate(Box::pin(upstream), translator, |_| {})
        .collect()
        .await;
    let last = out.last().unwrap().as_ref().unwrap_err();
    assert_eq!(last.status(), 500);
    assert!(last.to_string().contains("Overloaded"));
    let text: String = out
        .iter()
        .filter_map(|r| r.as_ref().ok())
        .map(|b| String::from_utf8_lossy(b).into_owned())
        .collect();
    assert!(!text.contains("[DONE]"));
}

/// The mock refuses what Anthropic refuses, so "accepted by the mock" means
/// something.
#[tokio::test]
async fn the_mock_checks_requests_as_anthropic_does() {
    let mock = MockAnthropic::start(AnthropicOptions::default()).await;
    let post = |body: Value, version: bool| {
        let mut req = common::client()
            .post(format!("{}/v1/messages", mock.url()))
            .header("x-api-key", KEY)
            .json(&body);
        if version {
            req = req.header("anthropic-version", "2023-06-01");
        }
        async move {
            let r = req.send().await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    let ok =
        json!({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]});
    assert_eq!(post(ok.clone(), true).await.0, 200);
    let refused = [
        (ok.clone(), false, "anthropic-version"),
        (
            json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]}),
            true,
            "max_tokens: Field required",
        ),
        (
            json!({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": [{"type": "text", "text": ""}]}]}),
            true,
            "non-empty",
        ),
        (
            json!({"model": "m", "max_tokens": 5, "system": "s", "foo": 1, "messages": [{"role": "user", "content": "x"}]}),
            true,
            "foo: Extra inputs are not permitted",
        ),
        (
            json!({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": "x"}]}]}),
            true,
            "unexpected content block type",
        ),
        (
            json!({"model": "m", "max_tokens": 5, "messages": [
                {"role": "user", "content": "x"},
                {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "f", "input": {}}]},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "r"}]}
            ]}),
            true,
            "must define tools",
        ),
        (
            json!({"model": "m", "max_tokens": 5, "tools": [{"name": "f", "input_schema": {"type": "object"}}], "messages": [
                {"role": "user", "content": "x"},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t9", "content": "r"}]}
            ]}),
            true,
            "corresponding `tool_use`",
        ),
        (
            json!({"model": "m", "max_tokens": 5, "tools": [{"name": "a.b", "input_schema": {"type": "object"}}], "messages": [{"role": "user", "content": "x"}]}),
            true,
            "pattern",
        ),
    ];
    for (body, version, why) in refused {
        let (status, answer) = post(body.clone(), version).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(answer["type"], "error");
        let msg = answer["error"]["message"].as_str().unwrap();
        assert!(msg.contains(why), "{msg} / {why}");
    }
    let no_key = common::client()
        .post(format!("{}/v1/messages", mock.url()))
        .header("anthropic-version", "2023-06-01")
        .json(&ok)
        .send()
        .await
        .unwrap();
    assert_eq!(no_key.status(), 401);
}

/// The mock OpenAI upstream serves the Messages API too, driven over HTTP.
#[tokio::test]
async fn mounted_on_the_mock_upstream() {
    let up = MockUpstream::start(UpstreamOptions::default()).await;
    let base = format!("http://{}", up.addr());
    let set = common::client()
        .post(format!("{base}/__mock/anthropic/options"))
        .json(&json!({"reply": "from the mounted mock"}))
        .send()
        .await
        .unwrap();
    assert_eq!(set.status(), 200);
    let ep = endpoint(&base);
    let (t, resp) = send(
        &ep,
        &json!({"model": "claude-haiku-4-5", "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await;
    let body = resp.bytes().await.unwrap();
    let v: Value = serde_json::from_slice(
        &response::to_openai(&body, "haiku", &t.context, &Secrets::default()).unwrap(),
    )
    .unwrap();
    assert_eq!(
        v["choices"][0]["message"]["content"],
        "from the mounted mock"
    );
    let recorded: Value = common::client()
        .get(format!("{base}/__mock/anthropic/requests"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(recorded.as_array().unwrap().len(), 1);
    // The OpenAI side is untouched and did not see it.
    assert_eq!(up.request_count(), 0);
    let tokens: Value = common::client()
        .post(format!("{base}/v1/messages/count_tokens"))
        .json(
            &json!({"model": "m", "messages": [{"role": "user", "content": "three small words"}]}),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(tokens, json!({"input_tokens": 3}));
}
