//! Anthropic through the running gateway, over HTTP: `anthropic/`
//! deployments behind `/v1/chat/completions`, and `/v1/messages` (with
//! `count_tokens`) to Anthropic and to OpenAI deployments, against the mock
//! Anthropic API and the mock OpenAI upstream. Each test asserts what went
//! over the wire: the exact request each upstream received (spec
//! anthropic.md 1.1-1.3, 1.7), the exact bytes each client got back (1.4,
//! 1.5, 1.7), and what errors, retries, cooldowns, fallbacks, timeouts and
//! token limits do (1.6). Where ids and `created` vary they are replaced by
//! placeholders before an exact comparison.

// Tests: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use gateway::server::Running;
use gateway_mock::Recorded;
use gateway_mock::anthropic::{AnthropicOptions, Failure, MockAnthropic, ToolUse};
use gateway_mock::upstream::{self, MockUpstream, UpstreamOptions};
use serde_json::{Value, json};

/// The deployments' Anthropic key: the only key Anthropic may receive.
const DEPLOYMENT_KEY: &str = "sk-ant-api03-deployment-key";
/// The client's key to the gateway: never forwarded.
const CLIENT_KEY: &str = "sk-client-master-key";
const SONNET: &str = "claude-sonnet-4-5-20250929";
const UNKNOWN: &str = "claude-mock-unknown";
/// A model that takes `system` inside `messages` and no sampling
/// parameters (LiteLLM's cost map).
const OPUS: &str = "claude-opus-4-8";

/// An `anthropic/` deployment named `name`, plus `extra` lines of
/// `litellm_params`.
fn claude(name: &str, model: &str, base: &str, extra: &str) -> String {
    format!(
        "  - model_name: {name}\n    litellm_params:\n      model: anthropic/{model}\n      api_base: {base}\n      api_key: {DEPLOYMENT_KEY}\n{extra}"
    )
}

/// An `openai/` deployment named `name` (upstream model `<name>-upstream`).
fn gpt(name: &str, up: &MockUpstream) -> String {
    model(name, &up.url())
}

/// A gateway with a master key and `models` (YAML entries), plus `rest`.
async fn start(models: &[String], rest: &str) -> Running {
    gateway(&format!(
        "model_list:\n{}general_settings:\n  master_key: {CLIENT_KEY}\n{rest}",
        models.concat()
    ))
    .await
}

async fn post(gw: &Running, path: &str, body: &Value) -> reqwest::Response {
    client()
        .post(format!("{}{path}", gw.url()))
        .bearer_auth(CLIENT_KEY)
        .json(body)
        .send()
        .await
        .unwrap()
}

async fn post_raw(gw: &Running, path: &str, body: &str) -> reqwest::Response {
    client()
        .post(format!("{}{path}", gw.url()))
        .bearer_auth(CLIENT_KEY)
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .unwrap()
}

/// Status and body text.
async fn read(r: reqwest::Response) -> (u16, String) {
    let status = r.status().as_u16();
    (status, r.text().await.unwrap())
}

/// Status and JSON body.
async fn read_json(r: reqwest::Response) -> (u16, Value) {
    let (status, text) = read(r).await;
    let v = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
    (status, v)
}

/// The one request the mock received since it was last reset.
fn only(mock: &MockAnthropic) -> Recorded {
    let all = mock.requests();
    assert_eq!(all.len(), 1, "{all:#?}");
    all.into_iter().next().unwrap()
}

/// What Anthropic received for `body` sent to the chat route: reset,
/// send, expect a 200, return the one request's JSON body.
async fn sent_for(gw: &Running, mock: &MockAnthropic, body: &Value) -> Value {
    mock.reset();
    let (status, text) = read(post(gw, "/v1/chat/completions", body).await).await;
    assert_eq!(status, 200, "{text}");
    only(mock).json()
}

/// `text` with every `chatcmpl-<uuid>` id replaced by `chatcmpl-ID` and
/// every `"created":<n>` by `"created":0`, after checking each id is a
/// uuid and (for a stream) that every chunk carries the same one.
fn normalize(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut ids = vec![];
    let mut rest = text;
    while let Some(at) = rest.find("\"chatcmpl-") {
        out.push_str(&rest[..at + 10]);
        let tail = &rest[at + 10..];
        let end = tail.find('"').unwrap();
        let id = &tail[..end];
        assert_eq!(id.len(), 36, "a uuid: {id}");
        assert!(
            id.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-'),
            "{id}"
        );
        ids.push(id.to_owned());
        out.push_str("ID");
        rest = &tail[end..];
    }
    out.push_str(rest);
    ids.dedup();
    assert!(ids.len() <= 1, "one id per answer: {ids:?}");
    let mut done = String::with_capacity(out.len());
    let mut rest = out.as_str();
    while let Some(at) = rest.find("\"created\":") {
        done.push_str(&rest[..at + 10]);
        let tail = &rest[at + 10..];
        let end = tail.find(|c: char| !c.is_ascii_digit()).unwrap();
        assert!(end > 0, "a number");
        done.push('0');
        rest = &tail[end..];
    }
    done.push_str(rest);
    done
}

/// The header names a recorded request carried, in order.
fn header_names(r: &Recorded) -> Vec<&str> {
    r.headers.iter().map(|(k, _)| k.as_str()).collect()
}

fn user(text: &str) -> Value {
    json!({"role": "user", "content": text})
}

fn ask(model: &str, text: &str) -> Value {
    json!({"model": model, "messages": [user(text)]})
}

// ---- 1. the upstream request, for each mapping (spec 1.1-1.3) ----

#[tokio::test]
async fn the_request_carries_the_deployment_key_and_anthropic_headers_only() {
    let mock = MockAnthropic::start(AnthropicOptions::default()).await;
    let gw = start(&[claude("claude", SONNET, &mock.url(), "")], "").await;
    let body = json!({"model": "claude", "messages": [
        {"role": "system", "content": "Be terse."},
        user("Weather?")
    ]});
    let (status, text) = read(post(&gw, "/v1/chat/completions", &body).await).await;
    assert_eq!(status, 200, "{text}");
    let got = only(&mock);
    assert_eq!(
        (got.method.as_str(), got.path.as_str()),
        ("POST", "/v1/messages")
    );
    // P1's headers, the gateway naming itself in User-Agent where LiteLLM
    // sends `litellm/<version>`.
    assert_eq!(
        header_names(&got),
        [
            "anthropic-version",
            "accept",
            "content-type",
            "x-api-key",
            "host",
            "user-agent",
            "content-length"
        ]
    );
    assert_eq!(
        got.header("user-agent"),
        Some(concat!("gateway/", env!("CARGO_PKG_VERSION")))
    );
    assert_eq!(got.header("anthropic-version"), Some("2023-06-01"));
    assert_eq!(got.header("accept"), Some("application/json"));
    assert_eq!(got.header("content-type"), Some("application/json"));
    assert_eq!(got.header("x-api-key"), Some(DEPLOYMENT_KEY));
    for (k, v) in &got.headers {
        assert!(!v.contains(CLIENT_KEY), "client key forwarded in {k}");
    }
    // The system message lifted, the user string as a text block, the
    // model's max output tokens as max_tokens (P1, P2).
    assert_eq!(
        got.body,
        format!(
            r#"{{"model":"{SONNET}","messages":[{{"role":"user","content":[{{"type":"text","text":"Weather?"}}]}}],"system":[{{"type":"text","text":"Be terse."}}],"max_tokens":64000}}"#
        )
    );
}

#[tokio::test]
async fn system_messages_are_lifted_folded_or_kept_by_model() {
    let mock = MockAnthropic::start(AnthropicOptions::default()).await;
    let gw = start(
        &[
            claude("unknown", UNKNOWN, &mock.url(), ""),
            claude("opus", OPUS, &mock.url(), ""),
        ],
        "",
    )
    .await;
    let conversation = |model: &str| {
        json!({"model": model, "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "system", "content": [
                {"type": "text", "text": "Cache me", "cache_control": {"type": "ephemeral"}},
                {"type": "text", "text": ""}
            ]},
            user("Hi"),
            {"role": "assistant", "content": "Hello"},
            {"role": "system", "content": "Answer in one word."},
            user("Weather?")
        ]})
    };
    let system = json!([
        {"type": "text", "text": "You are terse."},
        {"type": "text", "text": "Cache me", "cache_control": {"type": "ephemeral"}}
    ]);
    let text = |t: &str| json!({"type": "text", "text": t});

    // Only the leading run is lifted (empty texts skipped, cache_control
    // kept); a later one is folded into the next user turn after the
    // operator note on a model that refuses system messages there (P7).
    let sent = sent_for(&gw, &mock, &conversation("unknown")).await;
    assert_eq!(
        sent,
        json!({
            "model": UNKNOWN,
            "messages": [
                {"role": "user", "content": [text("Hi")]},
                {"role": "assistant", "content": [text("Hello")]},
                {"role": "user", "content": [
                    text("Operator note (not from the user): the following was originally a mid-conversation system-role reminder."),
                    text("Answer in one word."),
                    text("Weather?")
                ]}
            ],
            "system": system,
            "max_tokens": 4096
        })
    );

    // A model that takes them keeps it as a system message, behind the user
    // turn that follows the assistant's.
    let sent = sent_for(&gw, &mock, &conversation("opus")).await;
    assert_eq!(
        sent,
        json!({
            "model": OPUS,
            "messages": [
                {"role": "user", "content": [text("Hi")]},
                {"role": "assistant", "content": [text("Hello")]},
                {"role": "user", "content": [text("Weather?")]},
                {"role": "system", "content": [text("Answer in one word.")]}
            ],
            "system": system,
            "max_tokens": 128000
        })
    );
}

#[tokio::test]
async fn tool_calls_and_tool_results_map_and_names_come_back() {
    let mock = MockAnthropic::start(AnthropicOptions {
        reply: Some(String::new()),
        tool_use: Some(ToolUse {
            name: "get_weather".into(),
            input: json!({"city": "Paris", "day": "tomorrow"}),
            id: Some("toolu_2".into()),
            json_chunks: 0,
        }),
        ..AnthropicOptions::default()
    })
    .await;
    let gw = start(&[claude("claude", SONNET, &mock.url(), "")], "").await;
    let body = json!({"model": "claude", "messages": [
        user("Weather in Paris?"),
        {"role": "assistant", "content": null, "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "get.weather", "arguments": "{\"city\": \"Paris\"}"}}
        ]},
        {"role": "tool", "tool_call_id": "call_1", "content": "18C"},
        user("And tomorrow?")
    ], "tools": [{"type": "function", "function": {
        "name": "get.weather", "description": "Weather by city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    }}]});
    mock.reset();
    let (status, answer) = read_json(post(&gw, "/v1/chat/completions", &body).await).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        only(&mock).json(),
        json!({
            "model": SONNET,
            "messages": [
                {"role": "user", "content": [{"type": "text", "text": "Weather in Paris?"}]},
                {"role": "assistant", "content": [
                    {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"city": "Paris"}}
                ]},
                // The tool result opens the user turn, before the user's text (P1).
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "call_1", "content": "18C"},
                    {"type": "text", "text": "And tomorrow?"}
                ]}
            ],
            "tools": [{
                "name": "get_weather",
                "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
                "description": "Weather by city",
                "type": "custom"
            }],
            "max_tokens": 64000
        })
    );
    // The sanitised name goes back as the client spelt it; arguments in
    // Python's json.dumps spacing; index = the block's position (1.4).
    assert_eq!(
        answer["choices"][0],
        json!({
            "finish_reason": "tool_calls",
            "index": 0,
            "message": {
                "content": null,
                "role": "assistant",
                "tool_calls": [{
                    "index": 0,
                    "function": {"arguments": "{\"city\": \"Paris\", \"day\": \"tomorrow\"}", "name": "get.weather"},
                    "id": "toolu_2",
                    "type": "function"
                }],
                "provider_specific_fields": {"citations": null, "thinking_blocks": null}
            }
        })
    );
}

#[tokio::test]
async fn tool_blocks_in_history_without_tools_get_the_dummy_tool() {
    let mock = MockAnthropic::start(AnthropicOptions::default()).await;
    let gw = start(&[claude("claude", SONNET, &mock.url(), "")], "").await;
    let body = json!({"model": "claude", "messages": [
        user("Weather?"),
        {"role": "assistant", "content": null, "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}
        ]},
        {"role": "tool", "tool_call_id": "call_1", "content": "18C"}
    ]});
    let sent = sent_for(&gw, &mock, &body).await;
    assert_eq!(sent["tools"].as_array().unwrap().len(), 1, "{sent}");
    assert_eq!(sent["tools"][0]["name"], "dummy_tool");
    assert_eq!(sent["messages"][1]["content"][0]["input"], json!({}));
}

#[tokio::test]
async fn images_by_https_url_and_data_uri_and_http_refused() {
    let mock = MockAnthropic::start(AnthropicOptions::default()).await;
    let gw = start(&[claude("claude", SONNET, &mock.url(), "")], "").await;
    let with = |url: &str| {
        json!({"model": "claude", "messages": [{"role": "user", "content": [
            {"type": "text", "text": "Look"},
            {"type": "image_url", "image_url": {"url": url}}
        ]}]})
    };
    let image = |source: Value| json!([{"role": "user", "content": [{"type": "text", "text": "Look"}, {"type": "image", "source": source}]}]);
    let sent = sent_for(&gw, &mock, &with("https://example.com/cat.png")).await;
    assert_eq!(
        sent["messages"],
        image(json!({"type": "url", "url": "https://example.com/cat.png"}))
    );
    let sent = sent_for(&gw, &mock, &with("data:image/png;base64,iVBORw0KGgo=")).await;
    assert_eq!(
        sent["messages"],
        image(json!({"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}))
    );
    // A PDF data URI is a document.
    let sent = sent_for(&gw, &mock, &with("data:application/pdf;base64,JVBERi0=")).await;
    assert_eq!(
        sent["messages"][0]["content"][1],
        json!({"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0="}})
    );

    // http:// is refused, never fetched (a deliberate difference: LiteLLM
    // downloads it).
    mock.reset();
    let (status, err) = read_json(
        post(
            &gw,
            "/v1/chat/completions",
            &with("http://169.254.169.254/latest/meta-data"),
        )
        .await,
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(
        err,
        json!({"error": {
            "message": "Image URLs must use https: the gateway does not fetch http:// URLs for Anthropic models (send the image over https or as a data: URI)",
            "type": "invalid_request_error", "param": "messages", "code": "400"
        }})
    );
    assert_eq!(mock.request_count(), 0);
}

#[tokio::test]
async fn stop_temperature_top_p_and_user() {
    let mock = MockAnthropic::start(AnthropicOptions::default()).await;
    let gw = start(
        &[
            claude("claude", SONNET, &mock.url(), ""),
            claude("opus", OPUS, &mock.url(), ""),
        ],
        "",
    )
    .await;
    let mut body = ask("claude", "Hi");
    body["stop"] = json!("END");
    body["temperature"] = json!(0.3);
    body["top_p"] = json!(0.9);
    body["user"] = json!("user-42");
    let sent = sent_for(&gw, &mock, &body).await;
    assert_eq!(
        sent,
        json!({
            "model": SONNET,
            "messages": [{"role": "user", "content": [{"type": "text", "text": "Hi"}]}],
            "temperature": 0.3,
            "top_p": 0.9,
            "stop_sequences": ["END"],
            "max_tokens": 64000,
            "metadata": {"user_id": "user-42"}
        })
    );
    // A list of stops stays a list; an e-mail (or phone number) as the user
    // is dropped, as Anthropic refuses it (P7).
    body["stop"] = json!(["END", "STOP"]);
    body["user"] = json!("bob@example.com");
    let sent = sent_for(&gw, &mock, &body).await;
    assert_eq!(sent["stop_sequences"], json!(["END", "STOP"]));
    assert!(sent.get("metadata").is_none(), "{sent}");
    body["user"] = json!("+1 (555) 123-4567");
    let sent = sent_for(&gw, &mock, &body).await;
    assert!(sent.get("metadata").is_none(), "{sent}");

    // A model without sampling parameters: temperature 1 passes, another
    // value is LiteLLM's 400 and nothing is sent.
    let mut opus = ask("opus", "Hi");
    opus["temperature"] = json!(1);
    assert_eq!(sent_for(&gw, &mock, &opus).await["temperature"], 1);
    opus["temperature"] = json!(0.5);
    mock.reset();
    let (status, err) = read_json(post(&gw, "/v1/chat/completions", &opus).await).await;
    assert_eq!(status, 400);
    assert_eq!(
        err["error"]["message"],
        "litellm.UnsupportedParamsError: claude-opus-4-8 does not support temperature=0.5. Only temperature=1 is supported. To drop unsupported params, set `litellm.drop_params = True`."
    );
    assert_eq!(mock.request_count(), 0);
}

#[tokio::test]
async fn tool_choice_and_parallel_tool_calls() {
    let mock = MockAnthropic::start(AnthropicOptions::default()).await;
    let gw = start(&[claude("claude", SONNET, &mock.url(), "")], "").await;
    let tools = json!([{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object", "properties": {}}}}]);
    let cases = [
        (json!("auto"), None, json!({"type": "auto"})),
        (json!("required"), None, json!({"type": "any"})),
        (json!("none"), None, json!({"type": "none"})),
        (
            json!({"type": "function", "function": {"name": "lookup"}}),
            None,
            json!({"type": "tool", "name": "lookup"}),
        ),
        (
            json!("required"),
            Some(false),
            json!({"type": "any", "disable_parallel_tool_use": true}),
        ),
        (
            Value::Null,
            Some(false),
            json!({"type": "auto", "disable_parallel_tool_use": true}),
        ),
        (
            Value::Null,
            Some(true),
            json!({"type": "auto", "disable_parallel_tool_use": false}),
        ),
    ];
    for (choice, parallel, expected) in cases {
        let mut body = ask("claude", "Look it up");
        body["tools"] = tools.clone();
        if !choice.is_null() {
            body["tool_choice"] = choice.clone();
        }
        if let Some(p) = parallel {
            body["parallel_tool_calls"] = json!(p);
        }
        let sent = sent_for(&gw, &mock, &body).await;
        assert_eq!(sent["tool_choice"], expected, "{choice} {parallel:?}");
    }
}

#[tokio::test]
async fn response_format_native_or_as_a_forced_tool() {
    let schema =
        json!({"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]});
    let mock = MockAnthropic::start(AnthropicOptions {
        reply: Some(String::new()),
        tool_use: Some(ToolUse {
            name: "json_tool_call".into(),
            input: json!({"city": "Paris"}),
            id: None,
            json_chunks: 0,
        }),
        ..AnthropicOptions::default()
    })
    .await;
    let gw = start(
        &[
            claude("claude", SONNET, &mock.url(), ""),
            claude("unknown", UNKNOWN, &mock.url(), ""),
        ],
        "",
    )
    .await;
    let body = |model: &str| {
        let mut b = ask(model, "Where?");
        b["response_format"] =
            json!({"type": "json_schema", "json_schema": {"name": "place", "schema": schema}});
        b
    };

    // A model with structured outputs: output_format and its beta header.
    mock.reset();
    let (status, _) = read(post(&gw, "/v1/chat/completions", &body("claude")).await).await;
    assert_eq!(status, 200);
    let got = only(&mock);
    assert_eq!(
        got.json()["output_format"],
        json!({"type": "json_schema", "schema": {
            "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"],
            "additionalProperties": false
        }})
    );
    assert_eq!(
        got.header("anthropic-beta"),
        Some("structured-outputs-2025-11-13")
    );

    // Otherwise the forced json_tool_call tool, whose input is the answer.
    mock.reset();
    let (status, answer) =
        read_json(post(&gw, "/v1/chat/completions", &body("unknown")).await).await;
    assert_eq!(status, 200, "{answer}");
    let got = only(&mock);
    assert_eq!(got.header("anthropic-beta"), None);
    let sent = got.json();
    assert_eq!(
        sent["tools"],
        json!([{"name": "json_tool_call", "input_schema": schema}])
    );
    assert_eq!(
        sent["tool_choice"],
        json!({"name": "json_tool_call", "type": "tool"})
    );
    assert_eq!(
        answer["choices"][0]["message"]["content"],
        "{\"city\": \"Paris\"}"
    );
    assert!(answer["choices"][0]["message"].get("tool_calls").is_none());
}

#[tokio::test]
async fn reasoning_effort_and_thinking() {
    let mock = MockAnthropic::start(AnthropicOptions::default()).await;
    let gw = start(
        &[
            claude("claude", SONNET, &mock.url(), ""),
            claude("opus", OPUS, &mock.url(), ""),
        ],
        "",
    )
    .await;
    // A budget model: the effort's budget, and room for an answer on top
    // when the client set no max_tokens (LiteLLM's budget + 4096).
    let mut body = ask("claude", "Think");
    body["reasoning_effort"] = json!("low");
    let sent = sent_for(&gw, &mock, &body).await;
    assert_eq!(
        sent["thinking"],
        json!({"type": "enabled", "budget_tokens": 1024})
    );
    assert_eq!(sent["max_tokens"], 1024 + 4096);
    let mut body = ask("claude", "Think");
    body["thinking"] = json!({"type": "enabled", "budget_tokens": 2000});
    body["max_tokens"] = json!(3000);
    let sent = sent_for(&gw, &mock, &body).await;
    assert_eq!(
        sent["thinking"],
        json!({"type": "enabled", "budget_tokens": 2000})
    );
    assert_eq!(sent["max_tokens"], 3000);
    // An adaptive model: adaptive thinking and an effort.
    let mut body = ask("opus", "Think");
    body["reasoning_effort"] = json!("high");
    let sent = sent_for(&gw, &mock, &body).await;
    assert_eq!(
        sent["thinking"],
        json!({"type": "adaptive", "display": "summarized"})
    );
    assert_eq!(sent["output_config"], json!({"effort": "high"}));
}

#[tokio::test]
async fn default_max_tokens_is_the_models_max_output_else_4096() {
    let mock = MockAnthropic::start(AnthropicOptions::default()).await;
    let gw = start(
        &[
            claude("claude", SONNET, &mock.url(), ""),
            claude("unknown", UNKNOWN, &mock.url(), ""),
            claude("opus", OPUS, &mock.url(), ""),
        ],
        "",
    )
    .await;
    for (name, expected) in [("claude", 64000), ("opus", 128000), ("unknown", 4096)] {
        let sent = sent_for(&gw, &mock, &ask(name, "Hi")).await;
        assert_eq!(sent["max_tokens"], expected, "{name}");
    }
    // The client's, max_completion_tokens winning; floats rounded, at least 1.
    let mut body = ask("claude", "Hi");
    body["max_tokens"] = json!(10);
    assert_eq!(sent_for(&gw, &mock, &body).await["max_tokens"], 10);
    body["max_completion_tokens"] = json!(20);
    assert_eq!(sent_for(&gw, &mock, &body).await["max_tokens"], 20);
    let mut body = ask("claude", "Hi");
    body["max_tokens"] = json!(0.4);
    assert_eq!(sent_for(&gw, &mock, &body).await["max_tokens"], 1);
}

#[tokio::test]
async fn unsupported_parameters_are_refused_unless_dropped() {
    let mock = MockAnthropic::start(AnthropicOptions::default()).await;
    let models = [
        claude("claude", SONNET, &mock.url(), ""),
        claude("dropping", SONNET, &mock.url(), "      drop_params: true\n"),
    ];
    let gw = start(&models, "").await;
    let mut body = ask("claude", "Hi");
    body["n"] = json!(2);
    body["seed"] = json!(7);
    body["presence_penalty"] = json!(0.5);
    let (status, err) = read_json(post(&gw, "/v1/chat/completions", &body).await).await;
    assert_eq!(status, 400);
    let list = "['n', 'presence_penalty', 'seed']";
    assert_eq!(
        err,
        json!({"error": {
            "message": format!("litellm.UnsupportedParamsError: anthropic does not support parameters: {list}, for model={SONNET}. To drop these, set `litellm.drop_params=True` or for proxy:\n\n`litellm_settings:\n drop_params: true`\n. \n If you want to use these params dynamically send allowed_openai_params={list} in your request."),
            "type": "invalid_request_error", "param": null, "code": "400"
        }})
    );
    assert_eq!(mock.request_count(), 0, "nothing sent");

    // n=1 is the default, so it passes (P1).
    let mut one = ask("claude", "Hi");
    one["n"] = json!(1);
    assert!(sent_for(&gw, &mock, &one).await.get("n").is_none());

    // drop_params on the deployment drops them.
    body["model"] = json!("dropping");
    let sent = sent_for(&gw, &mock, &body).await;
    assert_eq!(
        sent,
        json!({"model": SONNET, "messages": [{"role": "user", "content": [{"type": "text", "text": "Hi"}]}], "max_tokens": 64000})
    );

    // And litellm_settings.drop_params for every deployment.
    let gw = start(
        &[claude("claude", SONNET, &mock.url(), "")],
        "litellm_settings:\n  drop_params: true\n",
    )
    .await;
    body["model"] = json!("claude");
    let sent = sent_for(&gw, &mock, &body).await;
    assert!(
        sent.get("n").is_none() && sent.get("seed").is_none(),
        "{sent}"
    );
}

#[tokio::test]
async fn anthropic_beta_merges_the_deployments_and_the_clients_once() {
    let mock = MockAnthropic::start(AnthropicOptions::default()).await;
    let extra = "      extra_headers:\n        anthropic-beta: files-api-2025-04-14,context-1m-2025-08-07\n        x-team: blue\n";
    let gw = start(
        &[
            claude("beta", SONNET, &mock.url(), extra),
            claude("plain", SONNET, &mock.url(), ""),
        ],
        "",
    )
    .await;
    let send = |model: &str, client_beta: Option<&str>, json_schema: bool| {
        let mut body = ask(model, "Hi");
        if let Some(b) = client_beta {
            body["extra_headers"] = json!({"anthropic-beta": b, "x-api-key": "sk-client-injected"});
        }
        if json_schema {
            body["response_format"] = json!({"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"}}});
        }
        body
    };
    let betas = |r: &Recorded| -> Vec<String> {
        r.headers
            .iter()
            .filter(|(k, _)| k == "anthropic-beta")
            .map(|(_, v)| v.clone())
            .collect()
    };

    // The deployment's own, alone; its other extra headers go along.
    sent_for(&gw, &mock, &send("beta", None, false)).await;
    let got = only(&mock);
    assert_eq!(betas(&got), ["files-api-2025-04-14,context-1m-2025-08-07"]);
    assert_eq!(got.header("x-team"), Some("blue"));

    // The client's (from the body's extra_headers), alone; nothing else of
    // its extra_headers is taken (it must not replace the key).
    sent_for(
        &gw,
        &mock,
        &send("plain", Some("files-api-2025-04-14"), false),
    )
    .await;
    let got = only(&mock);
    assert_eq!(betas(&got), ["files-api-2025-04-14"]);
    assert_eq!(got.header("x-api-key"), Some(DEPLOYMENT_KEY));
    assert_eq!(got.json().get("extra_headers"), None);

    // Everything merged into one header, each value once: the body's
    // feature beta, the deployment's, the client's.
    sent_for(
        &gw,
        &mock,
        &send(
            "beta",
            Some("context-1m-2025-08-07, interleaved-thinking-2025-05-14"),
            true,
        ),
    )
    .await;
    let got = only(&mock);
    assert_eq!(
        betas(&got),
        [
            "structured-outputs-2025-11-13,files-api-2025-04-14,context-1m-2025-08-07,interleaved-thinking-2025-05-14"
        ]
    );
    assert_eq!(got.header("x-api-key"), Some(DEPLOYMENT_KEY));
}

// ---- 2. the client's bytes, for each response shape (spec 1.4, 1.5, 1.7) ----

/// The usage LiteLLM writes for Anthropic's counts (P1's keys and order).
fn usage(input: u64, cache_write: u64, cache_read: u64, output: u64, reasoning: &str) -> String {
    let prompt = input + cache_write + cache_read;
    let details = if reasoning == "null" {
        r#""reasoning_tokens":null,"text_tokens":null"#.to_owned()
    } else {
        format!(r#""reasoning_tokens":0,"text_tokens":{output}"#)
    };
    format!(
        r#"{{"completion_tokens":{output},"prompt_tokens":{prompt},"total_tokens":{},"completion_tokens_details":{{{details}}},"prompt_tokens_details":{{"cache_write_tokens":{cache_write},"cached_tokens":{cache_read},"text_tokens":{input},"cache_creation_tokens":{cache_write}}},"cache_creation_input_tokens":{cache_write},"cache_read_input_tokens":{cache_read}}}"#,
        prompt + output
    )
}

#[tokio::test]
async fn chat_json_text_answer_exact_bytes() {
    let mock = MockAnthropic::start(AnthropicOptions {
        reply: Some("Hello there".into()),
        ..AnthropicOptions::default()
    })
    .await;
    let gw = start(&[claude("claude", SONNET, &mock.url(), "")], "").await;
    let r = post(&gw, "/v1/chat/completions", &ask("claude", "Hi")).await;
    assert_eq!(header(&r, "content-type"), Some("application/json"));
    assert_eq!(header(&r, "x-litellm-model-group"), Some("claude"));
    let (status, text) = read(r).await;
    assert_eq!(status, 200);
    // A new chatcmpl id, the alias as the model, no system_fingerprint,
    // provider_specific_fields always there (1.4).
    assert_eq!(
        normalize(&text),
        format!(
            r#"{{"id":"chatcmpl-ID","created":0,"model":"claude","object":"chat.completion","choices":[{{"finish_reason":"stop","index":0,"message":{{"content":"Hello there","role":"assistant","provider_specific_fields":{{"citations":null,"thinking_blocks":null}}}}}}],"usage":{}}}"#,
            usage(1, 0, 0, 2, "0")
        )
    );
}

#[tokio::test]
async fn chat_json_thinking_tool_use_and_cache_usage_exact_bytes() {
    let mock = MockAnthropic::start(AnthropicOptions {
        reply: Some("Rainy".into()),
        thinking: Some("check the forecast".into()),
        tool_use: Some(ToolUse {
            name: "get_weather".into(),
            input: json!({"city": "Paris"}),
            id: Some("toolu_9".into()),
            json_chunks: 0,
        }),
        cache_creation_input_tokens: 7,
        cache_read_input_tokens: 100,
        ..AnthropicOptions::default()
    })
    .await;
    let gw = start(&[claude("claude", SONNET, &mock.url(), "")], "").await;
    let (status, text) =
        read(post(&gw, "/v1/chat/completions", &ask("claude", "Weather?")).await).await;
    assert_eq!(status, 200, "{text}");
    let blocks =
        r#"[{"type":"thinking","thinking":"check the forecast","signature":"mock-signature"}]"#;
    // Thinking in reasoning_content and thinking_blocks; the tool call's
    // index is its block's position (2); prompt_tokens = input + cache
    // writes + cache reads; reasoning tokens unknown (null) with thinking.
    assert_eq!(
        normalize(&text),
        format!(
            r#"{{"id":"chatcmpl-ID","created":0,"model":"claude","object":"chat.completion","choices":[{{"finish_reason":"tool_calls","index":0,"message":{{"content":"Rainy","role":"assistant","tool_calls":[{{"index":2,"function":{{"arguments":"{{\"city\": \"Paris\"}}","name":"get_weather"}},"id":"toolu_9","type":"function"}}],"reasoning_content":"check the forecast","thinking_blocks":{blocks},"provider_specific_fields":{{"citations":null,"thinking_blocks":{blocks}}}}}}}],"usage":{}}}"#,
            usage(1, 7, 100, 5, "null")
        )
    );
}

/// `data:` frames of a chat stream, each a chunk with id and created
/// normalised.
fn frames(text: &str) -> Vec<String> {
    assert!(text.ends_with("\n\n"), "{text}");
    let data = sse_data(text);
    assert_eq!(
        data.len(),
        text.matches("\n\n").count(),
        "only data frames: {text}"
    );
    data.iter().map(|d| normalize(d)).collect()
}

fn chunk(delta: &str, finish: &str) -> String {
    format!(
        r#"{{"id":"chatcmpl-ID","object":"chat.completion.chunk","created":0,"model":"claude","choices":[{{"index":0,"delta":{delta},"finish_reason":{finish}}}]}}"#
    )
}

#[tokio::test]
async fn chat_stream_text_and_include_usage_exact_bytes() {
    let mock = MockAnthropic::start(AnthropicOptions {
        reply: Some("Hello there".into()),
        chunks: 2,
        cache_read_input_tokens: 4,
        ..AnthropicOptions::default()
    })
    .await;
    let gw = start(&[claude("claude", SONNET, &mock.url(), "")], "").await;
    let mut body = ask("claude", "Hi");
    body["stream"] = json!(true);
    body["stream_options"] = json!({"include_usage": true});
    let r = post(&gw, "/v1/chat/completions", &body).await;
    assert_eq!(header(&r, "content-type"), Some("text/event-stream"));
    let (status, text) = read(r).await;
    assert_eq!(status, 200);
    // The upstream request is the JSON one plus "stream": true (P2).
    assert_eq!(
        only(&mock).body,
        format!(
            r#"{{"model":"{SONNET}","messages":[{{"role":"user","content":[{{"type":"text","text":"Hi"}}]}}],"max_tokens":64000,"stream":true}}"#
        )
    );
    // message_start, content_block_start/stop, ping and message_stop show
    // nothing; the first content chunk has the role; message_delta gives
    // the finish_reason; the usage chunk (choices not empty) before [DONE].
    assert_eq!(
        frames(&text),
        [
            chunk(r#"{"role":"assistant","content":"Hello "}"#, "null"),
            chunk(r#"{"content":"there"}"#, "null"),
            chunk("{}", r#""stop""#),
            format!(
                r#"{{"id":"chatcmpl-ID","object":"chat.completion.chunk","created":0,"model":"claude","choices":[{{"index":0,"delta":{{}}}}],"usage":{}}}"#,
                usage(1, 0, 4, 2, "0")
            ),
            "[DONE]".to_owned(),
        ]
    );

    // Without include_usage: no usage chunk.
    body.as_object_mut().unwrap().remove("stream_options");
    let (_, text) = read(post(&gw, "/v1/chat/completions", &body).await).await;
    assert_eq!(
        frames(&text),
        [
            chunk(r#"{"role":"assistant","content":"Hello "}"#, "null"),
            chunk(r#"{"content":"there"}"#, "null"),
            chunk("{}", r#""stop""#),
            "[DONE]".to_owned(),
        ]
    );
}

#[tokio::test]
async fn chat_stream_thinking_and_tool_use_exact_bytes() {
    let mock = MockAnthropic::start(AnthropicOptions {
        reply: Some("Rainy".into()),
        chunks: 1,
        thinking: Some("check the forecast".into()),
        tool_use: Some(ToolUse {
            name: "get_weather".into(),
            input: json!({"city": "Paris"}),
            id: Some("toolu_9".into()),
            json_chunks: 2,
        }),
        ..AnthropicOptions::default()
    })
    .await;
    let gw = start(&[claude("claude", SONNET, &mock.url(), "")], "").await;
    let mut body = ask("claude", "Weather?");
    body["stream"] = json!(true);
    let (status, text) = read(post(&gw, "/v1/chat/completions", &body).await).await;
    assert_eq!(status, 200, "{text}");
    let thinking = |t: &str, sig: &str, role: &str| {
        let block = format!(r#"[{{"type":"thinking","thinking":"{t}"{sig},"index":0}}]"#);
        format!(
            r#"{{{role}"reasoning_content":"{t}","thinking_blocks":{block},"provider_specific_fields":{{"thinking_blocks":{block}}}}}"#
        )
    };
    let args = |a: &str| {
        format!(
            r#"{{"tool_calls":[{{"function":{{"arguments":"{a}"}},"type":"function","index":0}}]}}"#
        )
    };
    assert_eq!(
        frames(&text),
        [
            chunk(&thinking("check the", "", r#""role":"assistant","#), "null"),
            chunk(&thinking(" forecast", "", ""), "null"),
            chunk(
                &thinking("", r#","signature":"mock-signature""#, ""),
                "null"
            ),
            chunk(r#"{"content":"Rainy"}"#, "null"),
            // The tool block opens with its id and name; it is tool 0 (tool
            // blocks are counted, unlike the JSON answer's index).
            chunk(
                r#"{"tool_calls":[{"id":"toolu_9","function":{"arguments":"","name":"get_weather"},"type":"function","index":0}]}"#,
                "null"
            ),
            // input_json_delta partials, without id or name.
            chunk(&args(""), "null"),
            chunk(&args(r#"{\"city\":"#), "null"),
            chunk(&args(r#"\"Paris\"}"#), "null"),
            chunk("{}", r#""tool_calls""#),
            "[DONE]".to_owned(),
        ]
    );
}

#[tokio::test]
async fn finish_reasons_map_in_json_and_stream() {
    let mock = MockAnthropic::start(AnthropicOptions::default()).await;
    let gw = start(&[claude("claude", SONNET, &mock.url(), "")], "").await;
    for (stop, finish) in [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("refusal", "content_filter"),
        ("pause_turn", "stop"),
    ] {
        mock.set_options(AnthropicOptions {
            stop_reason: Some(stop.into()),
            ..AnthropicOptions::default()
        });
        let (status, v) =
            read_json(post(&gw, "/v1/chat/completions", &ask("claude", "Hi")).await).await;
        assert_eq!(status, 200);
        assert_eq!(v["choices"][0]["finish_reason"], finish, "{stop}");
        let mut body = ask("claude", "Hi");
        body["stream"] = json!(true);
        let (_, text) = read(post(&gw, "/v1/chat/completions", &body).await).await;
        let finishes: Vec<Value> = sse_data(&text)
            .iter()
            .filter(|d| *d != "[DONE]")
            .map(|d| {
                serde_json::from_str::<Value>(d).unwrap()["choices"][0]["finish_reason"].clone()
            })
            .filter(|f| !f.is_null())
            .collect();
        assert_eq!(finishes, [json!(finish)], "{stop}: {text}");
    }
}

/// A Messages request, compact, with text a decoder would rewrite
/// (`\u00e9`) to show the bytes are kept.
const MESSAGES_BODY: &str = r#"{"model":"claude","max_tokens":50,"system":"Be terse.","messages":[{"role":"user","content":"Caf\u00e9 open?"}],"temperature":0.5}"#;

#[tokio::test]
async fn messages_to_anthropic_json_is_the_answer_restamped() {
    let mock = MockAnthropic::start(AnthropicOptions {
        thinking: Some("hmm".into()),
        cache_read_input_tokens: 3,
        ..AnthropicOptions::default()
    })
    .await;
    let gw = start(&[claude("claude", SONNET, &mock.url(), "")], "").await;
    let r = post_raw(&gw, "/v1/messages", MESSAGES_BODY).await;
    assert_eq!(header(&r, "content-type"), Some("application/json"));
    let (status, text) = read(r).await;
    assert_eq!(status, 200, "{text}");
    let got = only(&mock);
    // The client's bytes, only the model swapped (P3), with the
    // deployment's key and headers.
    assert_eq!(
        got.body,
        MESSAGES_BODY.replace(r#""model":"claude""#, &format!(r#""model":"{SONNET}""#))
    );
    assert_eq!(got.header("x-api-key"), Some(DEPLOYMENT_KEY));
    assert_eq!(got.header("anthropic-version"), Some("2023-06-01"));
    assert_eq!(got.header("authorization"), None);
    // Anthropic's answer, only the model restamped with the alias.
    let upstream = String::from_utf8(got.response_body).unwrap();
    let model = format!(r#""model":"{SONNET}""#);
    assert_eq!(upstream.matches(&model).count(), 1);
    assert_eq!(text, upstream.replace(&model, r#""model":"claude""#));
}

#[tokio::test]
async fn messages_to_anthropic_stream_is_relayed_with_message_start_restamped() {
    let mock = MockAnthropic::start(AnthropicOptions {
        thinking: Some("hmm".into()),
        tool_use: Some(ToolUse {
            name: "lookup".into(),
            input: json!({"q": "café"}),
            id: None,
            json_chunks: 3,
        }),
        ..AnthropicOptions::default()
    })
    .await;
    let gw = start(&[claude("claude", SONNET, &mock.url(), "")], "").await;
    let body = MESSAGES_BODY.replace(r#""temperature":0.5"#, r#""stream":true"#);
    let r = post_raw(&gw, "/v1/messages", &body).await;
    assert_eq!(header(&r, "content-type"), Some("text/event-stream"));
    let (status, text) = read(r).await;
    assert_eq!(status, 200, "{text}");
    let got = only(&mock);
    assert_eq!(
        got.body,
        body.replace(r#""model":"claude""#, &format!(r#""model":"{SONNET}""#))
    );
    // Every event as Anthropic sent it (ping included), message_start's
    // model restamped (P4).
    let upstream = String::from_utf8(got.response_body).unwrap();
    assert!(upstream.starts_with("event: message_start\n"), "{upstream}");
    let model = format!(r#""model":"{SONNET}""#);
    assert_eq!(upstream.matches(&model).count(), 1);
    assert_eq!(text, upstream.replace(&model, r#""model":"claude""#));
}

#[tokio::test]
async fn messages_to_openai_json_is_translated() {
    let up = MockUpstream::start(UpstreamOptions::default()).await;
    let gw = start(&[gpt("gpt", &up)], "").await;
    let body = MESSAGES_BODY.replace(r#""model":"claude""#, r#""model":"gpt""#);
    let (status, text) = read(post_raw(&gw, "/v1/messages", &body).await).await;
    assert_eq!(status, 200, "{text}");
    let sent = up.requests().pop().unwrap();
    assert_eq!(
        sent.header("authorization"),
        Some("Bearer sk-upstream-secret")
    );
    assert_eq!(
        String::from_utf8(sent.body.to_vec()).unwrap(),
        r#"{"model":"gpt-upstream","messages":[{"role":"system","content":"Be terse."},{"role":"user","content":"Café open?"}],"max_tokens":50,"temperature":0.5}"#
    );
    // P9's shape and key order; the mock echoes the last message.
    assert_eq!(
        text,
        r#"{"id":"chatcmpl-mock-1","type":"message","role":"assistant","model":"gpt","stop_sequence":null,"usage":{"input_tokens":4,"output_tokens":2},"content":[{"type":"text","text":"Café open?"}],"stop_reason":"end_turn","stop_details":null}"#
    );

    // A tool call comes back as a tool_use block.
    up.set_options(UpstreamOptions {
        completion: Some(r#"{"id":"chatcmpl-t","object":"chat.completion","created":1,"model":"gpt-upstream","choices":[{"index":0,"message":{"role":"assistant","content":null,"tool_calls":[{"id":"call_7","type":"function","function":{"name":"lookup","arguments":"{\"q\":\"x\"}"}}]},"finish_reason":"tool_calls"}],"usage":{"prompt_tokens":5,"completion_tokens":3,"total_tokens":8}}"#.into()),
        ..UpstreamOptions::default()
    });
    let (status, text) = read(post_raw(&gw, "/v1/messages", &body).await).await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(
        text,
        r#"{"id":"chatcmpl-t","type":"message","role":"assistant","model":"gpt","stop_sequence":null,"usage":{"input_tokens":5,"output_tokens":3},"content":[{"type":"tool_use","id":"call_7","name":"lookup","input":{"q":"x"}}],"stop_reason":"tool_use","stop_details":null}"#
    );
}

#[tokio::test]
async fn messages_to_openai_stream_is_translated() {
    let up = MockUpstream::start(UpstreamOptions::default()).await;
    let gw = start(&[gpt("gpt", &up)], "").await;
    let body = MESSAGES_BODY
        .replace(r#""model":"claude""#, r#""model":"gpt""#)
        .replace(r#""temperature":0.5"#, r#""stream":true"#);
    let r = post_raw(&gw, "/v1/messages", &body).await;
    assert_eq!(header(&r, "content-type"), Some("text/event-stream"));
    let (status, text) = read(r).await;
    assert_eq!(status, 200, "{text}");
    // The chat stream asks for usage, for the final message_delta.
    assert_eq!(
        String::from_utf8(up.requests().pop().unwrap().body.to_vec()).unwrap(),
        r#"{"model":"gpt-upstream","messages":[{"role":"system","content":"Be terse."},{"role":"user","content":"Café open?"}],"max_tokens":50,"stream":true,"stream_options":{"include_usage":true}}"#
    );
    let event = |kind: &str, data: &str| format!("event: {kind}\ndata: {data}\n\n");
    let delta = |t: &str| {
        event(
            "content_block_delta",
            &format!(
                r#"{{"type":"content_block_delta","index":0,"delta":{{"type":"text_delta","text":"{t}"}}}}"#
            ),
        )
    };
    let expected = [
        event(
            "message_start",
            r#"{"type":"message_start","message":{"id":"chatcmpl-mock-1","type":"message","role":"assistant","content":[],"model":"gpt","stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":0,"output_tokens":0,"cache_creation_input_tokens":0,"cache_read_input_tokens":0}}}"#,
        ),
        event(
            "content_block_start",
            r#"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#,
        ),
        delta("Café"),
        delta(" op"),
        delta("en?"),
        event(
            "content_block_stop",
            r#"{"type":"content_block_stop","index":0}"#,
        ),
        event(
            "message_delta",
            r#"{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"input_tokens":4,"output_tokens":2}}"#,
        ),
        event("message_stop", r#"{"type":"message_stop"}"#),
    ]
    .concat();
    assert_eq!(text, expected);
}

// ---- 3. errors and routing (spec 1.6, 1.7) ----

fn failing(failure: Failure) -> AnthropicOptions {
    AnthropicOptions {
        failure: Some(failure),
        ..AnthropicOptions::default()
    }
}

const OVERLOADED: &str =
    r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#;

/// LiteLLM's chat error body.
fn envelope(message: &str, kind: Option<&str>, code: u16) -> Value {
    json!({"error": {"message": message, "type": kind, "param": null, "code": code.to_string()}})
}

fn hdr(r: &reqwest::Response, name: &str) -> String {
    header(r, name).unwrap_or_default().to_owned()
}

fn messages_body(model: &str) -> Value {
    json!({"model": model, "max_tokens": 50, "messages": [user("hello world")]})
}

#[tokio::test]
async fn overloaded_529_is_retried_on_both_routes() {
    let mock = MockAnthropic::start(AnthropicOptions::default()).await;
    let gw = start(
        &[claude("claude", SONNET, &mock.url(), "")],
        "router_settings:\n  num_retries: 2\n  allowed_fails: 1000\n",
    )
    .await;
    for (path, body) in [
        ("/v1/chat/completions", ask("claude", "hello world")),
        ("/v1/messages", messages_body("claude")),
    ] {
        mock.reset();
        mock.set_options(AnthropicOptions {
            failure: Some(Failure::Overloaded),
            fail_first: Some(2),
            ..AnthropicOptions::default()
        });
        let r = post(&gw, path, &body).await;
        assert_eq!(r.status(), 200, "{path}");
        assert_eq!(hdr(&r, "x-litellm-attempted-retries"), "2", "{path}");
        assert_eq!(mock.request_count(), 3, "{path}");
        // Each attempt sent the same request.
        let bodies: Vec<_> = mock.requests().into_iter().map(|r| r.body).collect();
        assert!(bodies.windows(2).all(|w| w[0] == w[1]), "{path}");
    }
}

#[tokio::test]
async fn overloaded_529_counts_toward_cooldown() {
    let bad = MockAnthropic::start(failing(Failure::Overloaded)).await;
    let good = MockAnthropic::start(AnthropicOptions::default()).await;
    let id = |id: &str| format!("    model_info:\n      id: {id}\n");
    let gw = start(
        &[
            claude("claude", SONNET, &bad.url(), &id("bad")),
            claude("claude", SONNET, &good.url(), &id("good")),
        ],
        "router_settings:\n  num_retries: 1\n  allowed_fails: 2\n  cooldown_time: 60\n",
    )
    .await;
    // Until bad has failed twice it keeps being picked now and then; each
    // failure is retried on good.
    for _ in 0..200 {
        let r = post(&gw, "/v1/chat/completions", &ask("claude", "hi")).await;
        assert_eq!(r.status(), 200);
        assert_eq!(hdr(&r, "x-litellm-model-id"), "good");
        if bad.request_count() >= 2 {
            break;
        }
    }
    assert_eq!(bad.request_count(), 2);
    for _ in 0..30 {
        let r = post(&gw, "/v1/messages", &messages_body("claude")).await;
        assert_eq!(r.status(), 200);
    }
    assert_eq!(bad.request_count(), 2, "cooling down: skipped");
    let metrics = metrics_text(&gw).await;
    assert!(
        metrics.contains("gateway_cooldowns_total{model_group=\"claude\",deployment=\"bad\"} 1"),
        "{metrics}"
    );
    // Each route under its own label.
    assert!(
        metrics.contains(
            "gateway_requests_total{route=\"/v1/messages\",model_group=\"claude\",deployment=\"good\",status=\"200\"} 30"
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            "gateway_request_duration_seconds_count{route=\"/v1/messages\",model_group=\"claude\"} 30"
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains("gateway_requests_total{route=\"/v1/chat/completions\",model_group=\"claude\",deployment=\"good\",status=\"200\"}"),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_400_is_not_retried_and_keeps_litellms_shape_on_both_routes() {
    let mock = MockAnthropic::start(failing(Failure::InvalidRequest {
        message: "messages: roles must alternate".into(),
    }))
    .await;
    let gw = start(
        &[claude("claude", SONNET, &mock.url(), "")],
        "router_settings:\n  num_retries: 3\n  allowed_fails: 1000\n",
    )
    .await;
    let raw = r#"{"type":"error","error":{"type":"invalid_request_error","message":"messages: roles must alternate"}}"#;
    let message = format!("litellm.BadRequestError: AnthropicException - {raw}");

    let r = post(&gw, "/v1/chat/completions", &ask("claude", "hi")).await;
    assert_eq!(hdr(&r, "x-litellm-attempted-retries"), "0");
    let (status, body) = read_json(r).await;
    assert_eq!(status, 400);
    assert_eq!(body, envelope(&message, Some("invalid_request_error"), 400));
    assert_eq!(mock.request_count(), 1, "attempted once (P5)");

    mock.reset();
    let (status, body) = read_json(post(&gw, "/v1/messages", &messages_body("claude")).await).await;
    assert_eq!(status, 400);
    assert_eq!(
        body,
        json!({"type": "error", "error": {"type": "invalid_request_error", "message": message}})
    );
    assert_eq!(mock.request_count(), 1);
}

#[tokio::test]
async fn upstream_error_shapes_on_both_routes() {
    let mock = MockAnthropic::start(AnthropicOptions::default()).await;
    let gw = start(
        &[claude("claude", SONNET, &mock.url(), "")],
        "router_settings:\n  allowed_fails: 1000\n",
    )
    .await;
    let rate = r#"{"type":"error","error":{"type":"rate_limit_error","message":"Number of request tokens has exceeded your per-minute rate limit"}}"#;
    let too_long = r#"{"type":"error","error":{"type":"invalid_request_error","message":"prompt is too long: 211234 tokens > 200000 maximum"}}"#;
    // On /v1/messages the status and Anthropic's type for it (P5: a 529 is
    // a 500 api_error), with LiteLLM's message: an Anthropic deployment's
    // error body is not passed through as it came.
    let cases = [
        (
            Failure::Overloaded,
            500,
            format!("litellm.InternalServerError: AnthropicError - {OVERLOADED}"),
            Some("internal_server_error"),
            "api_error",
        ),
        (
            Failure::RateLimited {
                retry_after: Some(7),
            },
            429,
            format!("litellm.RateLimitError: AnthropicException - {rate}"),
            Some("throttling_error"),
            "rate_limit_error",
        ),
        (
            Failure::PromptTooLong,
            400,
            format!(
                "litellm.ContextWindowExceededError: litellm.BadRequestError: AnthropicError - {too_long}"
            ),
            Some("invalid_request_error"),
            "invalid_request_error",
        ),
        (
            Failure::Status {
                status: 503,
                body: r#"{"type":"error","error":{"type":"api_error","message":"down"}}"#.into(),
                retry_after: None,
            },
            503,
            r#"litellm.ServiceUnavailableError: AnthropicException - {"type":"error","error":{"type":"api_error","message":"down"}}. Handle with `litellm.ServiceUnavailableError`."#.into(),
            None,
            "api_error",
        ),
    ];
    // Every configured secret is masked in the quoted upstream text.
    let echoed = format!(
        r#"{{"type":"error","error":{{"type":"authentication_error","message":"invalid x-api-key {DEPLOYMENT_KEY}"}}}}"#
    );
    let masked = r#"{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key sk-...-key"}}"#;
    let timeout =
        r#"{"type":"error","error":{"type":"timeout_error","message":"upstream timed out"}}"#;
    let cases = cases.into_iter().chain([
        (
            Failure::Status {
                status: 401,
                body: echoed,
                retry_after: None,
            },
            401,
            format!("litellm.AuthenticationError: AnthropicException - {masked}"),
            None,
            "authentication_error",
        ),
        (
            Failure::Status {
                status: 504,
                body: timeout.into(),
                retry_after: None,
            },
            504,
            format!("litellm.Timeout: AnthropicException Timeout - {timeout}"),
            Some("timeout"),
            "timeout_error",
        ),
    ]);
    for (failure, status, message, chat_type, messages_type) in cases {
        mock.set_options(failing(failure.clone()));
        // A stream that fails before its first byte gets the same plain
        // JSON error, not SSE (P5).
        for stream in [false, true] {
            let mut body = ask("claude", "hi");
            body["stream"] = json!(stream);
            let r = post(&gw, "/v1/chat/completions", &body).await;
            let retry_after = hdr(&r, "retry-after");
            assert_eq!(hdr(&r, "content-type"), "application/json");
            let (got, body) = read_json(r).await;
            assert_eq!(got, status, "{failure:?}");
            assert_eq!(body, envelope(&message, chat_type, status), "{failure:?}");
            if status == 429 {
                assert_eq!(retry_after, "7");
            }

            let mut body = messages_body("claude");
            body["stream"] = json!(stream);
            let r = post(&gw, "/v1/messages", &body).await;
            let retry_after = hdr(&r, "retry-after");
            assert_eq!(hdr(&r, "content-type"), "application/json");
            let (got, body) = read_json(r).await;
            assert_eq!(got, status, "{failure:?}");
            assert_eq!(
                body,
                json!({"type": "error", "error": {"type": messages_type, "message": message}}),
                "{failure:?}"
            );
            if status == 429 {
                assert_eq!(retry_after, "7");
            }
        }
    }
}

/// `text` up to (excluding) the frame that carries `needle`, and that frame.
fn split_at_frame<'a>(text: &'a str, needle: &str) -> (&'a str, &'a str) {
    let at = text
        .find(needle)
        .unwrap_or_else(|| panic!("{needle} in {text}"));
    let start = text[..at].rfind("\n\n").map_or(0, |i| i + 2);
    (&text[..start], &text[start..])
}

#[tokio::test]
async fn a_stream_error_event_mid_stream() {
    // message_start, ping, content_block_start, one delta, then `error`.
    let mock = MockAnthropic::start(failing(Failure::StreamError { after: 4 })).await;
    let gw = start(
        &[claude("claude", SONNET, &mock.url(), "")],
        "router_settings:\n  num_retries: 2\n  allowed_fails: 1000\n",
    )
    .await;

    // Chat: what came, then LiteLLM's 500 (the status has gone out) as an
    // error frame, no [DONE]; a started stream is not retried.
    let mut body = ask("claude", "one two three");
    body["stream"] = json!(true);
    let (status, text) = read(post(&gw, "/v1/chat/completions", &body).await).await;
    assert_eq!(status, 200);
    assert_eq!(mock.request_count(), 1);
    let data = sse_data(&text);
    assert_eq!(
        normalize(&data[0]),
        chunk(r#"{"role":"assistant","content":"one t"}"#, "null")
    );
    assert_eq!(data.len(), 2, "{text}");
    assert_eq!(
        serde_json::from_str::<Value>(&data[1]).unwrap(),
        envelope(
            "litellm.InternalServerError: AnthropicError - Overloaded",
            Some("internal_server_error"),
            500
        )
    );

    // Messages: the upstream's own error event, relayed, ends the stream.
    mock.reset();
    let mut body = messages_body("claude");
    body["stream"] = json!(true);
    let (status, text) = read(post(&gw, "/v1/messages", &body).await).await;
    assert_eq!(status, 200);
    let upstream = String::from_utf8(only(&mock).response_body).unwrap();
    assert_eq!(
        text,
        upstream.replace(&format!(r#""model":"{SONNET}""#), r#""model":"claude""#)
    );
    assert!(
        text.ends_with(&format!("event: error\ndata: {OVERLOADED}\n\n")),
        "{text}"
    );
}

#[tokio::test]
async fn a_cut_stream_ends_with_an_error() {
    let mock = MockAnthropic::start(failing(Failure::CloseAfter { after: 4 })).await;
    let up = MockUpstream::start(UpstreamOptions {
        failure: Some(upstream::Failure::CloseAfter { chunks: 2 }),
        ..UpstreamOptions::default()
    })
    .await;
    let gw = start(
        &[claude("claude", SONNET, &mock.url(), ""), gpt("gpt", &up)],
        "",
    )
    .await;

    // Chat: the content so far, then an error frame instead of [DONE].
    let mut body = ask("claude", "one two three");
    body["stream"] = json!(true);
    let (status, text) = read(post(&gw, "/v1/chat/completions", &body).await).await;
    assert_eq!(status, 200);
    let data = sse_data(&text);
    assert_eq!(data.len(), 2, "{text}");
    assert_eq!(
        normalize(&data[0]),
        chunk(r#"{"role":"assistant","content":"one t"}"#, "null")
    );
    let err: Value = serde_json::from_str(&data[1]).unwrap();
    assert_eq!(err["error"]["code"], "502", "{err}");
    assert_eq!(err["error"]["type"], "upstream_error", "{err}");

    // Messages to Anthropic: the events so far, then an `error` event.
    let mut body = messages_body("claude");
    body["stream"] = json!(true);
    let (status, text) = read(post(&gw, "/v1/messages", &body).await).await;
    assert_eq!(status, 200);
    let upstream = String::from_utf8(mock.requests().pop().unwrap().response_body).unwrap();
    let relayed = upstream.replace(&format!(r#""model":"{SONNET}""#), r#""model":"claude""#);
    let (before, last) = split_at_frame(&text, "event: error");
    assert_eq!(before, relayed);
    let data: Value = serde_json::from_str(
        last.strip_prefix("event: error\ndata: ")
            .unwrap()
            .trim_end(),
    )
    .unwrap();
    assert_eq!(data["type"], "error");
    assert_eq!(data["error"]["type"], "api_error", "{data}");
    assert!(last.ends_with("\n\n"));

    // Messages to OpenAI: the translated events so far, then `error`.
    body["model"] = json!("gpt");
    let (status, text) = read(post(&gw, "/v1/messages", &body).await).await;
    assert_eq!(status, 200);
    let (before, last) = split_at_frame(&text, "event: error");
    assert!(before.starts_with("event: message_start\n"), "{text}");
    assert!(!before.contains("message_stop"), "{text}");
    let data: Value = serde_json::from_str(
        last.strip_prefix("event: error\ndata: ")
            .unwrap()
            .trim_end(),
    )
    .unwrap();
    assert_eq!(data["error"]["type"], "api_error", "{data}");
}

#[tokio::test]
async fn a_hung_upstream_times_out() {
    let mock = MockAnthropic::start(failing(Failure::Hang)).await;
    let gw = start(
        &[claude(
            "claude",
            SONNET,
            &mock.url(),
            "      timeout: 0.5\n",
        )],
        "router_settings:\n  allowed_fails: 1000\n",
    )
    .await;
    let message = "the upstream for model 'claude' timed out after 0.5s";
    for stream in [false, true] {
        let mut body = ask("claude", "hi");
        body["stream"] = json!(stream);
        let started = std::time::Instant::now();
        let (status, v) = read_json(post(&gw, "/v1/chat/completions", &body).await).await;
        assert!(started.elapsed() < std::time::Duration::from_secs(10));
        assert_eq!(status, 504, "stream {stream}");
        assert_eq!(v, envelope(message, Some("timeout"), 504));

        let mut body = messages_body("claude");
        body["stream"] = json!(stream);
        let (status, v) = read_json(post(&gw, "/v1/messages", &body).await).await;
        assert_eq!(status, 504);
        assert_eq!(
            v,
            json!({"type": "error", "error": {"type": "timeout_error", "message": message}})
        );
    }
}

#[tokio::test]
async fn a_stalled_stream_ends_with_an_error_event() {
    let mock = MockAnthropic::start(AnthropicOptions {
        chunk_interval_ms: 3000,
        ..AnthropicOptions::default()
    })
    .await;
    let gw = start(
        &[claude(
            "claude",
            SONNET,
            &mock.url(),
            "      stream_timeout: 0.5\n",
        )],
        "",
    )
    .await;
    let mut body = messages_body("claude");
    body["stream"] = json!(true);
    let started = std::time::Instant::now();
    let (status, text) = read(post(&gw, "/v1/messages", &body).await).await;
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    assert_eq!(status, 200);
    let (before, last) = split_at_frame(&text, "event: error");
    assert!(before.starts_with("event: message_start\n"), "{text}");
    assert_eq!(
        last,
        "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"timeout_error\",\"message\":\"the upstream stalled for more than 0.5s\"}}\n\n"
    );
}

#[tokio::test]
async fn a_deployment_without_a_key_is_answered_401() {
    let mock = MockAnthropic::start(AnthropicOptions::default()).await;
    let yaml = format!(
        "model_list:\n  - model_name: claude\n    litellm_params:\n      model: anthropic/{SONNET}\n      api_base: {}\ngeneral_settings:\n  master_key: {CLIENT_KEY}\n",
        mock.url()
    );
    // Blank in the overlay hides whatever the test process has.
    let env = gateway::config::Env::default()
        .with("ANTHROPIC_API_KEY", "")
        .with("ANTHROPIC_AUTH_TOKEN", "");
    let gw = gateway_with_env(&yaml, &env).await;
    let message = "litellm.AuthenticationError: Missing Anthropic API Key - A call is being made to anthropic but no key is set either in the environment variables or via params. Please set `ANTHROPIC_API_KEY` or `ANTHROPIC_AUTH_TOKEN` in your environment vars";
    let (status, v) =
        read_json(post(&gw, "/v1/chat/completions", &ask("claude", "hi")).await).await;
    assert_eq!(status, 401);
    assert_eq!(v, envelope(message, None, 401));
    let (status, v) = read_json(post(&gw, "/v1/messages", &messages_body("claude")).await).await;
    assert_eq!(status, 401);
    assert_eq!(
        v,
        json!({"type": "error", "error": {"type": "authentication_error", "message": message}})
    );
    let mut count = messages_body("claude");
    count.as_object_mut().unwrap().remove("max_tokens");
    let (status, _) = read(post(&gw, "/v1/messages/count_tokens", &count).await).await;
    assert_eq!(status, 401);
    assert_eq!(mock.request_count(), 0);
    assert!(mock.requests().is_empty());
}

#[tokio::test]
async fn fallbacks_between_anthropic_and_openai_groups_both_ways() {
    let mock = MockAnthropic::start(AnthropicOptions {
        reply: Some("from claude".into()),
        ..AnthropicOptions::default()
    })
    .await;
    let up = MockUpstream::start(UpstreamOptions {
        reply: Some("from gpt".into()),
        ..UpstreamOptions::default()
    })
    .await;
    let gw = start(
        &[claude("claude", SONNET, &mock.url(), ""), gpt("gpt", &up)],
        "router_settings:\n  allowed_fails: 1000\n  fallbacks: [{claude: [gpt]}, {gpt: [claude]}]\n",
    )
    .await;
    let gpt_down = || UpstreamOptions {
        failure: Some(upstream::Failure::Status {
            status: 500,
            body: r#"{"error":{"message":"down","type":"server_error","param":null,"code":null}}"#
                .into(),
            retry_after: None,
        }),
        ..UpstreamOptions::default()
    };

    // Anthropic overloaded → the OpenAI group, on chat and on messages.
    mock.set_options(failing(Failure::Overloaded));
    let r = post(&gw, "/v1/chat/completions", &ask("claude", "hi")).await;
    assert_eq!(hdr(&r, "x-litellm-attempted-fallbacks"), "1");
    assert_eq!(hdr(&r, "x-litellm-model-group"), "gpt");
    let (status, v) = read_json(r).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["choices"][0]["message"]["content"], "from gpt");
    let r = post(&gw, "/v1/messages", &messages_body("claude")).await;
    assert_eq!(hdr(&r, "x-litellm-model-group"), "gpt");
    let (status, v) = read_json(r).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["type"], "message");
    assert_eq!(v["content"], json!([{"type": "text", "text": "from gpt"}]));
    // The OpenAI deployment got a chat body (translated from Messages).
    let sent = up.requests().pop().unwrap().json();
    assert_eq!(sent["model"], "gpt-upstream");
    assert_eq!(
        sent["messages"],
        json!([{"role": "user", "content": "hello world"}])
    );
    assert_eq!(mock.request_count(), 2);

    // OpenAI down → the Anthropic group, on chat and on messages.
    mock.set_options(AnthropicOptions {
        reply: Some("from claude".into()),
        ..AnthropicOptions::default()
    });
    mock.reset();
    up.set_options(gpt_down());
    let r = post(&gw, "/v1/chat/completions", &ask("gpt", "hi")).await;
    assert_eq!(hdr(&r, "x-litellm-attempted-fallbacks"), "1");
    assert_eq!(hdr(&r, "x-litellm-model-group"), "claude");
    let (status, v) = read_json(r).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["object"], "chat.completion");
    // The answering group's name, as LiteLLM stamps the fallback's call.
    assert_eq!(v["model"], "claude");
    assert_eq!(v["choices"][0]["message"]["content"], "from claude");
    assert_eq!(only(&mock).json()["model"], SONNET);
    mock.reset();
    let r = post(&gw, "/v1/messages", &messages_body("gpt")).await;
    assert_eq!(hdr(&r, "x-litellm-model-group"), "claude");
    let (status, v) = read_json(r).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        v["content"],
        json!([{"type": "text", "text": "from claude"}])
    );
    // The Anthropic deployment got the client's Messages body, model swapped.
    assert_eq!(
        only(&mock).json(),
        json!({"model": SONNET, "max_tokens": 50, "messages": [user("hello world")]})
    );
}

/// `x-ratelimit-remaining-tokens` of a response.
fn remaining(r: &reqwest::Response) -> u64 {
    hdr(r, "x-ratelimit-remaining-tokens").parse().unwrap()
}

#[tokio::test]
async fn a_keys_tpm_limit_counts_anthropics_usage() {
    // Input: the mock counts words; cache tokens come on top.
    let mock = MockAnthropic::start(AnthropicOptions {
        reply: Some("a b c".into()),
        cache_creation_input_tokens: 7,
        cache_read_input_tokens: 100,
        ..AnthropicOptions::default()
    })
    .await;
    let up = MockUpstream::start(UpstreamOptions::default()).await;
    let gw = start(
        &[claude("claude", SONNET, &mock.url(), ""), gpt("gpt", &up)],
        "virtual_keys:\n  - key: sk-tpm\n    tpm_limit: 100000\n",
    )
    .await;
    let send = |path: &'static str, body: Value| {
        let url = format!("{}{path}", gw.url());
        async move {
            client()
                .post(url)
                .bearer_auth("sk-tpm")
                .json(&body)
                .send()
                .await
                .unwrap()
        }
    };
    // hello world (2) + 7 + 100 in, a b c (3) out.
    let per_call = 2 + 7 + 100 + 3;
    let mut streamed_chat = ask("claude", "hello world");
    streamed_chat["stream"] = json!(true);
    let mut streamed_messages = messages_body("claude");
    streamed_messages["stream"] = json!(true);
    let cases = [
        (
            "/v1/chat/completions",
            ask("claude", "hello world"),
            per_call,
        ),
        ("/v1/chat/completions", streamed_chat, per_call),
        ("/v1/messages", messages_body("claude"), per_call),
        ("/v1/messages", streamed_messages, per_call),
        // The OpenAI mock: 2 in, 2 out (the echo).
        ("/v1/messages", messages_body("gpt"), 4),
    ];
    let r = send("/v1/chat/completions", ask("gpt", "x")).await;
    let mut left = remaining(&r);
    r.text().await.unwrap();
    left -= 2; // "x" in, "x" out
    for (path, body, used) in cases {
        let r = send(path, body.clone()).await;
        assert_eq!(remaining(&r), left, "{path} {body}");
        let (status, text) = read(r).await;
        assert_eq!(status, 200, "{text}");
        left -= used;
    }
    let r = send("/v1/chat/completions", ask("gpt", "x")).await;
    assert_eq!(remaining(&r), left);
}

#[tokio::test]
async fn a_usage_chunk_the_gateway_asked_for_is_kept_from_the_client() {
    let mock = MockAnthropic::start(AnthropicOptions {
        reply: Some("a b c".into()),
        ..AnthropicOptions::default()
    })
    .await;
    let gw = start(
        &[claude("claude", SONNET, &mock.url(), "")],
        "virtual_keys:\n  - key: sk-tpm\n    tpm_limit: 100000\n",
    )
    .await;
    let mut body = ask("claude", "hello world");
    body["stream"] = json!(true);
    let send = || {
        client()
            .post(format!("{}/v1/chat/completions", gw.url()))
            .bearer_auth("sk-tpm")
            .json(&body)
            .send()
    };
    let (status, text) = read(send().await.unwrap()).await;
    assert_eq!(status, 200);
    // The key's limit needs the tokens, so the gateway asked for them...
    assert_eq!(mock.requests()[0].json()["stream"], true);
    let r = send().await.unwrap();
    assert_eq!(remaining(&r), 100_000 - (2 + 3));
    r.text().await.unwrap();
    // ...but the client did not: it gets the stream it would get without
    // the limit (as it does from an OpenAI deployment).
    assert_eq!(
        frames(&text),
        [
            chunk(r#"{"role":"assistant","content":"a "}"#, "null"),
            chunk(r#"{"content":"b "}"#, "null"),
            chunk(r#"{"content":"c"}"#, "null"),
            chunk("{}", r#""stop""#),
            "[DONE]".to_owned(),
        ]
    );
}

#[tokio::test]
async fn past_the_tpm_limit_messages_get_anthropics_429() {
    let mock = MockAnthropic::start(AnthropicOptions::default()).await;
    let gw = start(
        &[claude("claude", SONNET, &mock.url(), "")],
        "virtual_keys:\n  - key: sk-tpm\n    tpm_limit: 5\n",
    )
    .await;
    let send = || {
        client()
            .post(format!("{}/v1/messages", gw.url()))
            .header("x-api-key", "sk-tpm")
            .json(&messages_body("claude"))
            .send()
    };
    // hello world in, hello world out: 4 tokens, then over 5.
    assert_eq!(send().await.unwrap().status(), 200);
    assert_eq!(send().await.unwrap().status(), 200);
    let r = send().await.unwrap();
    assert_eq!(r.status(), 429);
    assert!(header(&r, "retry-after").is_some());
    assert_eq!(hdr(&r, "x-ratelimit-remaining-tokens"), "0");
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["type"], "error");
    assert_eq!(v["error"]["type"], "rate_limit_error");
    assert_eq!(mock.request_count(), 2);
}

#[tokio::test]
async fn x_api_key_authenticates_messages_and_is_not_forwarded() {
    let mock = MockAnthropic::start(AnthropicOptions::default()).await;
    let gw = start(
        &[claude("claude", SONNET, &mock.url(), "")],
        "virtual_keys:\n  - key: sk-claude-code\n",
    )
    .await;
    let send = |key: Option<&str>| {
        let mut req = client()
            .post(format!("{}/v1/messages", gw.url()))
            .header("anthropic-version", "2023-06-01")
            .json(&messages_body("claude"));
        if let Some(k) = key {
            req = req.header("x-api-key", k);
        }
        req.send()
    };
    // As Claude clients send it.
    let r = send(Some("sk-claude-code")).await.unwrap();
    assert_eq!(r.status(), 200);
    let got = only(&mock);
    assert_eq!(got.header("x-api-key"), Some(DEPLOYMENT_KEY));
    for (k, v) in &got.headers {
        assert!(!v.contains("sk-claude-code"), "client key forwarded in {k}");
    }
    assert_eq!(got.header("authorization"), None);
    // The client's anthropic-version is not added to the deployment's.
    let versions = got.headers.iter().filter(|(k, _)| k == "anthropic-version");
    assert_eq!(versions.count(), 1);

    // No key, or a wrong one: Anthropic's 401.
    for key in [None, Some("sk-wrong")] {
        let (status, v) = read_json(send(key).await.unwrap()).await;
        assert_eq!(status, 401, "{key:?}");
        assert_eq!(v["type"], "error");
        assert_eq!(v["error"]["type"], "authentication_error");
    }
    assert_eq!(mock.request_count(), 1);
}

#[tokio::test]
async fn the_clients_anthropic_beta_header_reaches_an_anthropic_deployment() {
    let mock = MockAnthropic::start(AnthropicOptions::default()).await;
    let up = MockUpstream::start(UpstreamOptions::default()).await;
    let extra = "      extra_headers:\n        anthropic-beta: files-api-2025-04-14\n";
    let gw = start(
        &[
            claude("claude", SONNET, &mock.url(), extra),
            claude("plain", SONNET, &mock.url(), ""),
            gpt("gpt", &up),
        ],
        "",
    )
    .await;
    let send = |model: &str, betas: &[&str]| {
        let mut req = client()
            .post(format!("{}/v1/messages", gw.url()))
            .bearer_auth(CLIENT_KEY)
            .json(&messages_body(model));
        for b in betas {
            req = req.header("anthropic-beta", *b);
        }
        req.send()
    };
    let betas = |r: &Recorded| -> Vec<String> {
        r.headers
            .iter()
            .filter(|(k, _)| k == "anthropic-beta")
            .map(|(_, v)| v.clone())
            .collect()
    };
    assert_eq!(
        send("plain", &["interleaved-thinking-2025-05-14"])
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(betas(&only(&mock)), ["interleaved-thinking-2025-05-14"]);

    // Merged with the deployment's, every value once, in one header.
    mock.reset();
    let r = send(
        "claude",
        &[
            "context-1m-2025-08-07,files-api-2025-04-14",
            "interleaved-thinking-2025-05-14",
        ],
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        betas(&only(&mock)),
        ["files-api-2025-04-14,context-1m-2025-08-07,interleaved-thinking-2025-05-14"]
    );

    // An OpenAI deployment has no use for it.
    assert_eq!(
        send("gpt", &["files-api-2025-04-14"])
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(up.requests()[0].header("anthropic-beta"), None);
}

#[tokio::test]
async fn count_tokens_forwarded_to_anthropic_and_estimated_otherwise() {
    let mock = MockAnthropic::start(AnthropicOptions::default()).await;
    let up = MockUpstream::start(UpstreamOptions::default()).await;
    let gw = start(
        &[claude("claude", SONNET, &mock.url(), ""), gpt("gpt", &up)],
        "",
    )
    .await;
    let body = r#"{"model":"claude","system":"Be terse.","messages":[{"role":"user","content":"how many tokens is this"}],"tools":[{"name":"t","input_schema":{"type":"object"}}]}"#;
    let r = client()
        .post(format!("{}/v1/messages/count_tokens", gw.url()))
        .bearer_auth(CLIENT_KEY)
        .header("anthropic-beta", "token-counting-2024-11-01")
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    let (status, text) = read(r).await;
    assert_eq!(status, 200, "{text}");
    let got = only(&mock);
    assert_eq!(got.path, "/v1/messages/count_tokens");
    assert_eq!(
        got.body,
        body.replace(r#""model":"claude""#, &format!(r#""model":"{SONNET}""#))
    );
    assert_eq!(got.header("x-api-key"), Some(DEPLOYMENT_KEY));
    assert_eq!(got.header("anthropic-version"), Some("2023-06-01"));
    assert_eq!(
        got.header("anthropic-beta"),
        Some("token-counting-2024-11-01")
    );
    assert_eq!(got.header("authorization"), None);
    // Anthropic's answer as it came (the mock counts 2 + 5 words).
    assert_eq!(text, String::from_utf8(got.response_body).unwrap());
    assert_eq!(text, r#"{"input_tokens":7}"#);

    // An OpenAI model: a local estimate, one token per 4 bytes of system,
    // messages and tools as sent; nothing goes upstream.
    let body = body.replace(r#""model":"claude""#, r#""model":"gpt""#);
    let (status, text) = read(post_raw(&gw, "/v1/messages/count_tokens", &body).await).await;
    assert_eq!(status, 200);
    let size = r#""Be terse.""#.len()
        + r#"[{"role":"user","content":"how many tokens is this"}]"#.len()
        + r#"[{"name":"t","input_schema":{"type":"object"}}]"#.len();
    assert_eq!(text, format!(r#"{{"input_tokens":{}}}"#, size.div_ceil(4)));
    assert_eq!(up.request_count(), 0);
}

#[tokio::test]
async fn key_and_base_from_the_environment() {
    let mock = MockAnthropic::start(AnthropicOptions::default()).await;
    let yaml = format!(
        "model_list:\n  - model_name: claude\n    litellm_params:\n      model: anthropic/{SONNET}\ngeneral_settings:\n  master_key: {CLIENT_KEY}\n"
    );
    let env = |vars: &[(&str, &str)]| {
        let mut env = gateway::config::Env::default()
            .with("ANTHROPIC_API_KEY", "")
            .with("ANTHROPIC_AUTH_TOKEN", "")
            .with("ANTHROPIC_API_BASE", "")
            .with("ANTHROPIC_BASE_URL", "");
        for (k, v) in vars {
            env = env.with(k, *v);
        }
        env
    };
    let credential = |r: &Recorded| {
        r.headers
            .iter()
            .filter(|(k, _)| k == "x-api-key" || k == "authorization")
            .cloned()
            .collect::<Vec<_>>()
    };
    let pair = |k: &str, v: &str| vec![(k.to_owned(), v.to_owned())];
    for (vars, expected) in [
        (
            vec![
                ("ANTHROPIC_API_BASE", mock.url()),
                ("ANTHROPIC_API_KEY", "sk-ant-env".to_owned()),
            ],
            pair("x-api-key", "sk-ant-env"),
        ),
        (
            vec![
                ("ANTHROPIC_BASE_URL", mock.url()),
                ("ANTHROPIC_AUTH_TOKEN", "token-env".to_owned()),
            ],
            pair("authorization", "Bearer token-env"),
        ),
    ] {
        let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let gw = gateway_with_env(&yaml, &env(&vars)).await;
        mock.reset();
        let (status, text) =
            read(post(&gw, "/v1/chat/completions", &ask("claude", "hi")).await).await;
        assert_eq!(status, 200, "{text}");
        let got = only(&mock);
        assert_eq!(got.path, "/v1/messages");
        assert_eq!(credential(&got), expected);
    }
}

// ---- an upstream that answers fixed bytes ----

/// An HTTP server on 127.0.0.1 that reads each request and answers
/// `response` (raw bytes, head included) then closes: for what the mock
/// Anthropic cannot send (its own headers, a secret in a stream event).
async fn fixed_upstream(response: String) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let response = response.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut tmp = [0u8; 8192];
                loop {
                    let Ok(n) = sock.read(&mut tmp).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&tmp[..n]);
                    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                        continue;
                    };
                    let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                    let len: usize = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .map_or(0, |v| v.trim().parse().unwrap());
                    if buf.len() >= end + 4 + len {
                        break;
                    }
                }
                let _ = sock.write_all(response.as_bytes()).await;
                let _ = sock.shutdown().await;
            });
        }
    });
    format!("http://{addr}")
}

#[tokio::test]
async fn anthropic_rate_limit_headers_are_mapped() {
    let message = r#"{"id":"msg_1","type":"message","role":"assistant","model":"claude-sonnet-4-5-20250929","content":[{"type":"text","text":"hi"}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":1,"output_tokens":1}}"#;
    let base = fixed_upstream(format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nanthropic-ratelimit-requests-limit: 50\r\nanthropic-ratelimit-requests-remaining: 49\r\nanthropic-ratelimit-tokens-limit: 80000\r\nanthropic-ratelimit-tokens-remaining: 79000\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{message}",
        message.len()
    ))
    .await;
    let gw = start(&[claude("claude", SONNET, &base, "")], "").await;
    let r = post(&gw, "/v1/chat/completions", &ask("claude", "hi")).await;
    assert_eq!(r.status(), 200);
    // Spec 1.4 (W common_utils.py:2193-2207), and the provider's module doc.
    for (name, value) in [
        ("x-ratelimit-limit-requests", "50"),
        ("x-ratelimit-remaining-requests", "49"),
        ("x-ratelimit-limit-tokens", "80000"),
        ("x-ratelimit-remaining-tokens", "79000"),
    ] {
        assert_eq!(header(&r, name), Some(value), "{name}");
    }
}

#[tokio::test]
async fn a_stream_error_event_never_carries_a_secret() {
    let events = format!(
        "event: message_start\ndata: {{\"type\":\"message_start\",\"message\":{{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"{SONNET}\",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{{\"input_tokens\":1,\"output_tokens\":1}}}}}}\n\nevent: error\ndata: {{\"type\":\"error\",\"error\":{{\"type\":\"api_error\",\"message\":\"upstream proxy rejected key {DEPLOYMENT_KEY}\"}}}}\n\n"
    );
    let base = fixed_upstream(format!(
        "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n{events}"
    ))
    .await;
    let gw = start(&[claude("claude", SONNET, &base, "")], "").await;
    let mut chat = ask("claude", "hi");
    chat["stream"] = json!(true);
    let mut messages = messages_body("claude");
    messages["stream"] = json!(true);
    for (path, body) in [("/v1/chat/completions", chat), ("/v1/messages", messages)] {
        let (status, text) = read(post(&gw, path, &body).await).await;
        assert_eq!(status, 200, "{path}");
        assert!(
            text.contains("upstream proxy rejected key"),
            "{path}: {text}"
        );
        // As in an error answer's body (gateway.md section 6).
        assert!(!text.contains(DEPLOYMENT_KEY), "{path}: {text}");
        assert!(text.contains("sk-...-key"), "{path}: {text}");
    }
}
