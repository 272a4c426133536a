//! What the model reads, a guardrail has read (issue 10): each way an
//! attacker got text past Aim, as a request over the wire, with what the mock
//! Aim and the mock upstream received.

// Tests: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use gateway_mock::aim::{AimMode, AimOptions, MockAim};
use gateway_mock::upstream::{Failure, MockUpstream, UpstreamOptions};
use serde_json::{Value, json};

struct Setup {
    up: MockUpstream,
    aim: MockAim,
    gw: gateway::server::Running,
}

/// One model `m`, one Aim guardrail `g` with `params` (YAML lines under
/// litellm_params, indented 6), plus `extra` top-level YAML.
async fn setup(params: &str, extra: &str) -> Setup {
    let up = MockUpstream::start(UpstreamOptions::default()).await;
    let aim = MockAim::start(AimOptions::default()).await;
    let yaml = format!(
        "model_list:\n{}guardrails:\n  - guardrail_name: g\n    litellm_params:\n      guardrail: aim\n      api_key: aim-mock-key\n      api_base: {}\n{params}{extra}",
        model("m", &up.url()),
        aim.url()
    );
    let gw = gateway(&yaml).await;
    Setup { up, aim, gw }
}

/// POST raw bytes (a body serde_json could not write: a lone surrogate).
async fn post_raw(
    gw: &gateway::server::Running,
    key: Option<&str>,
    body: String,
) -> reqwest::Response {
    let mut req = client()
        .post(format!("{}/v1/chat/completions", gw.url()))
        .header("content-type", "application/json")
        .body(body);
    if let Some(key) = key {
        req = req.bearer_auth(key);
    }
    req.send().await.unwrap()
}

/// Every way a guardrail can be selected, each with the request field that
/// selects it.
const SELECTIONS: [(&str, &str, &str, &str); 5] = [
    (
        "pre_call requested",
        "      mode: pre_call\n",
        "sk-master",
        r#","guardrails":["g"]"#,
    ),
    (
        "during_call requested",
        "      mode: during_call\n",
        "sk-master",
        r#","guardrails":["g"]"#,
    ),
    (
        "post_call requested",
        "      mode: post_call\n",
        "sk-master",
        r#","guardrails":["g"]"#,
    ),
    (
        "default_on",
        "      mode: pre_call\n      default_on: true\n",
        "sk-master",
        "",
    ),
    ("the key's", "      mode: pre_call\n", "sk-key", ""),
];

const KEY_YAML: &str = "general_settings:\n  master_key: sk-master\nvirtual_keys:\n  - key: sk-key\n    guardrails: [g]\n";

#[tokio::test]
async fn invalid_unicode_anywhere_is_refused_before_any_call() {
    let places = [
        r#"{"role":"user","content":"hi \ud800 mail ishaan@berri.ai"}"#,
        r#"{"role":"user","content":[{"type":"text","text":"mail ishaan@berri.ai"},{"type":"image_url","image_url":{"url":"https://x/\ud800"}}]}"#,
        r#"{"role":"user","content":"mail ishaan@berri.ai","name":"\udc00"}"#,
        r#"{"role":"user","content":"mail ishaan@berri.ai","x-extra":{"deep":["\ud83d"]}}"#,
    ];
    for (what, params, key, select) in SELECTIONS {
        let s = setup(params, KEY_YAML).await;
        for stream in [false, true] {
            for message in places {
                let body = format!(
                    r#"{{"model":"m","stream":{stream},"messages":[{{"role":"system","content":"be brief"}},{message}]{select}}}"#
                );
                let resp = post_raw(&s.gw, Some(key), body).await;
                assert_eq!(resp.status(), 400, "{what}, stream {stream}: {message}");
                let text = resp.text().await.unwrap();
                assert!(text.contains("Invalid request body"), "{text}");
            }
        }
        assert_eq!(s.up.request_count(), 0, "{what}: the upstream was called");
        assert!(s.aim.requests().is_empty(), "{what}: Aim was called");
        assert!(
            s.aim.streams().is_empty(),
            "{what}: Aim's socket was opened"
        );
    }
}

#[tokio::test]
async fn invalid_unicode_outside_the_messages_is_refused_too() {
    let s = setup("      mode: pre_call\n", "").await;
    let body = r#"{"model":"m","messages":[{"role":"user","content":"hi"}],"tools":[{"type":"function","function":{"name":"f","description":"\ud800"}}],"guardrails":["g"]}"#;
    let resp = post_raw(&s.gw, None, body.into()).await;
    assert_eq!(resp.status(), 400);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["param"], "tools");
    assert_eq!(s.up.request_count(), 0);
}

fn nested(levels: usize) -> String {
    format!(
        r#"{{"model":"m","messages":[{{"role":"user","content":[{{"type":"text","text":"mail ishaan@berri.ai"}},{{"type":"image_url","image_url":{{"url":"u","detail":{}1{}}}}}]}}],"guardrails":["g"]}}"#,
        "[".repeat(levels),
        "]".repeat(levels)
    )
}

#[tokio::test]
async fn nesting_past_the_limit_is_refused_before_any_call() {
    let s = setup("      mode: pre_call\n", "").await;
    for levels in [126, 1000, 100_000] {
        let resp = post_raw(&s.gw, None, nested(levels)).await;
        assert_eq!(resp.status(), 400, "{levels} levels");
        let text = resp.text().await.unwrap();
        assert!(text.contains("nested deeper than 64 levels"), "{text}");
    }
    assert_eq!(s.up.request_count(), 0);
    assert!(s.aim.requests().is_empty());

    // Within the limit the request is read whole: the text part is seen.
    // body 1, messages 2, message 3, content 4, part 5, image_url 6.
    let resp = post_raw(&s.gw, None, nested(64 - 6)).await;
    assert_eq!(resp.status(), 400);
    assert!(resp.text().await.unwrap().contains("detected as email"));
    assert_eq!(s.aim.requests().len(), 1);
    assert_eq!(s.up.request_count(), 0);
}

/// A message with an e-mail address in one place a model reads it.
fn with_email_in(place: &str) -> Value {
    let email = "ishaan@berri.ai";
    match place {
        "string content" => json!({"role": "user", "content": format!("mail {email}")}),
        "text part" => json!({"role": "user", "content": [{"type": "text", "text": email}]}),
        "input_text part" => {
            json!({"role": "user", "content": [{"type": "input_text", "text": email}]})
        }
        "output_text part" => {
            json!({"role": "assistant", "content": [{"type": "output_text", "text": email}]})
        }
        "refusal part" => {
            json!({"role": "assistant", "content": [{"type": "refusal", "refusal": email}]})
        }
        "untyped part" => json!({"role": "user", "content": [{"text": email}]}),
        "bare string part" => json!({"role": "user", "content": [email]}),
        "unknown part type with text" => {
            json!({"role": "user", "content": [{"type": "hologram", "text": email}]})
        }
        "refusal" => json!({"role": "assistant", "content": null, "refusal": email}),
        "tool call arguments" => {
            json!({"role": "assistant", "content": null, "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "send", "arguments": format!("{{\"to\":\"{email}\"}}")}}]})
        }
        "custom tool input" => {
            json!({"role": "assistant", "tool_calls": [{"id": "c1", "type": "custom", "custom": {"name": "send", "input": email}}]})
        }
        "function_call arguments" => {
            json!({"role": "assistant", "function_call": {"name": "send", "arguments": email}})
        }
        "reasoning_content" => {
            json!({"role": "assistant", "content": "ok", "reasoning_content": email})
        }
        "tool result" => json!({"role": "tool", "tool_call_id": "c1", "content": email}),
        other => panic!("{other}"),
    }
}

const INPUT_PLACES: [&str; 14] = [
    "string content",
    "text part",
    "input_text part",
    "output_text part",
    "refusal part",
    "untyped part",
    "bare string part",
    "unknown part type with text",
    "refusal",
    "tool call arguments",
    "custom tool input",
    "function_call arguments",
    "reasoning_content",
    "tool result",
];

#[tokio::test]
async fn every_text_the_model_reads_reaches_aim() {
    for mode in ["pre_call", "during_call"] {
        let s = setup(&format!("      mode: {mode}\n"), "").await;
        for place in INPUT_PLACES {
            let body = json!({
                "model": "m",
                "guardrails": ["g"],
                "messages": [{"role": "user", "content": "hello"}, with_email_in(place)],
            });
            let resp = chat(&s.gw, &body).await;
            assert_eq!(resp.status(), 400, "{mode}: {place}");
            assert_eq!(
                resp.text().await.unwrap(),
                r#"{"error":{"message":"\"ishaan@berri.ai\" detected as email","type":"invalid_request_error","param":null,"code":"400"}}"#,
                "{mode}: {place}"
            );
            let sent = s.aim.requests().last().unwrap().json();
            assert!(
                sent.to_string().contains("ishaan@berri.ai"),
                "{mode}: {place}: {sent}"
            );
        }
        if mode == "pre_call" {
            assert_eq!(s.up.request_count(), 0);
        }
    }
}

#[tokio::test]
async fn shapes_no_guardrail_can_read_are_refused() {
    let s = setup("      mode: pre_call\n", "").await;
    for message in [
        json!({"role": "user", "content": [{"type": "hologram", "payload": "ishaan@berri.ai"}]}),
        json!({"role": "user", "content": [{"type": "text", "text": {"value": "ishaan@berri.ai"}}]}),
        json!({"role": "assistant", "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": {"to": "ishaan@berri.ai"}}}]}),
        json!({"role": "user", "content": [{"image_url": {"url": "u"}}]}),
    ] {
        let body = json!({"model": "m", "guardrails": ["g"], "messages": [message]});
        let resp = chat(&s.gw, &body).await;
        assert_eq!(resp.status(), 400, "{message}");
        let v: Value = resp.json().await.unwrap();
        assert_eq!(v["error"]["param"], "messages[0]", "{v}");
        assert!(
            v["error"]["message"]
                .as_str()
                .unwrap()
                .contains("no guardrail can read it"),
            "{v}"
        );
    }
    assert!(s.aim.requests().is_empty());
    assert_eq!(s.up.request_count(), 0);

    // Without a guardrail nothing needs reading: the same request goes up.
    let body = json!({"model": "m", "messages": [{"role": "user", "content": [{"type": "hologram", "payload": "x"}]}]});
    assert_eq!(chat(&s.gw, &body).await.status(), 200);
}

#[tokio::test]
async fn a_repeated_content_key_is_refused() {
    let s = setup("      mode: pre_call\n", "").await;
    let body = r#"{"model":"m","messages":[{"role":"user","content":"hello","content":"mail ishaan@berri.ai"}],"guardrails":["g"]}"#;
    let resp = post_raw(&s.gw, None, body.into()).await;
    assert_eq!(resp.status(), 400);
    assert!(
        resp.text()
            .await
            .unwrap()
            .contains("duplicate key 'content'")
    );
    assert_eq!(s.up.request_count(), 0);
    assert!(s.aim.requests().is_empty());
}

/// A completion whose only choice has an e-mail address in `place`.
fn completion_with_email_in(place: &str) -> String {
    let email = "ishaan@berri.ai";
    let message = match place {
        "content parts" => {
            json!({"role": "assistant", "content": [{"type": "text", "text": format!("mail {email}")}]})
        }
        "refusal" => json!({"role": "assistant", "content": null, "refusal": email}),
        "reasoning_content" => {
            json!({"role": "assistant", "content": "ok", "reasoning_content": email})
        }
        "tool call arguments" => {
            json!({"role": "assistant", "content": null, "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "send", "arguments": format!("{{\"to\":\"{email}\"}}")}}]})
        }
        "function_call arguments" => {
            json!({"role": "assistant", "content": null, "function_call": {"name": "send", "arguments": email}})
        }
        "audio transcript" => {
            json!({"role": "assistant", "content": null, "audio": {"id": "a", "data": "AAAA", "transcript": email}})
        }
        other => panic!("{other}"),
    };
    json!({
        "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "m",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "fine"}, "finish_reason": "stop"},
            {"index": 1, "message": message, "finish_reason": "stop"}
        ],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}
    })
    .to_string()
}

#[tokio::test]
async fn every_text_of_a_completion_reaches_aim() {
    let s = setup("      mode: post_call\n", "").await;
    for place in [
        "content parts",
        "refusal",
        "reasoning_content",
        "tool call arguments",
        "function_call arguments",
        "audio transcript",
    ] {
        s.up.set_options(UpstreamOptions {
            completion: Some(completion_with_email_in(place)),
            ..Default::default()
        });
        let body = json!({"model": "m", "guardrails": ["g"], "messages": [{"role": "user", "content": "hi"}]});
        let resp = chat(&s.gw, &body).await;
        assert_eq!(resp.status(), 400, "{place}");
        assert!(
            resp.text().await.unwrap().contains("detected as email"),
            "{place}"
        );
    }
}

#[tokio::test]
async fn an_unreadable_completion_is_never_returned_unchecked() {
    let s = setup("      mode: post_call\n", "").await;
    for completion in [
        r#"{"choices":[{"index":0,"message":{"role":"assistant","content":[{"type":"hologram","data":"ishaan@berri.ai"}]}}]}"#,
        r#"{"choices":[{"index":0,"text":"ishaan@berri.ai"}]}"#,
        r#"{"object":"chat.completion"}"#,
        r#"{"choices":[{"message":{"role":"assistant","content":"ok \ud800"}}]}"#,
        r#"[{"choices":[]}]"#,
    ] {
        s.up.set_options(UpstreamOptions {
            completion: Some(completion.into()),
            ..Default::default()
        });
        let body = json!({"model": "m", "guardrails": ["g"], "messages": [{"role": "user", "content": "hi"}]});
        let resp = chat(&s.gw, &body).await;
        assert_eq!(resp.status(), 502, "{completion}");
        assert!(
            !resp.text().await.unwrap().contains("berri"),
            "{completion}"
        );
    }
}

#[tokio::test]
async fn an_aim_answer_that_is_not_an_object_fails_closed() {
    let s = setup("      mode: pre_call\n", "").await;
    for answer in [
        json!([]),
        json!("pass"),
        json!(1),
        json!({"required_action": []}),
        json!({"required_action": {"action_type": 7}}),
    ] {
        s.aim.set_options(AimOptions {
            mode: AimMode::Raw(answer.clone()),
            ..Default::default()
        });
        let body = json!({"model": "m", "guardrails": ["g"], "messages": [{"role": "user", "content": "mail ishaan@berri.ai"}]});
        let resp = chat(&s.gw, &body).await;
        assert_eq!(resp.status(), 502, "{answer}");
        let v: Value = resp.json().await.unwrap();
        assert_eq!(v["error"]["type"], "guardrail_unavailable", "{answer}");
    }
    assert_eq!(s.up.request_count(), 0);
}

#[tokio::test]
async fn block_uninspectable_refuses_parts_no_guardrail_can_read() {
    let body = json!({"model": "m", "guardrails": ["g"], "messages": [{"role": "user", "content": [
        {"type": "text", "text": "what is this?"},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}
    ]}]});
    let s = setup("      mode: pre_call\n", "").await;
    assert_eq!(chat(&s.gw, &body).await.status(), 200, "passes by default");

    let s = setup(
        "      mode: pre_call\n      block_uninspectable: true\n",
        "",
    )
    .await;
    let resp = chat(&s.gw, &body).await;
    assert_eq!(resp.status(), 400);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["param"], "messages[0].content");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("image_url"),
        "{v}"
    );
    assert!(s.aim.requests().is_empty());
    assert_eq!(s.up.request_count(), 0);
}

#[tokio::test]
async fn anonymize_rewrites_in_place_or_refuses() {
    let s = setup("      mode: pre_call\n", "").await;
    s.aim.set_options(AimOptions {
        mode: AimMode::Anonymize,
        ..Default::default()
    });
    // Plain strings: each content rewritten, every other field kept.
    let body = json!({"model": "m", "guardrails": ["g"], "messages": [
        {"role": "developer", "content": "be brief"},
        {"role": "user", "name": "bob", "content": "mail ishaan@berri.ai"}
    ]});
    assert_eq!(chat(&s.gw, &body).await.status(), 200);
    assert_eq!(
        s.up.requests().last().unwrap().json()["messages"],
        json!([
            {"role": "developer", "content": "be brief"},
            {"role": "user", "name": "bob", "content": "mail [EMAIL_1]"}
        ])
    );

    // Content parts: LiteLLM's 400, nothing forwarded.
    let multimodal = json!({"model": "m", "guardrails": ["g"], "messages": [{"role": "user", "content": [
        {"type": "text", "text": "mail ishaan@berri.ai"},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}
    ]}]});
    let resp = chat(&s.gw, &multimodal).await;
    assert_eq!(resp.status(), 400);
    assert_eq!(
        resp.text().await.unwrap(),
        r#"{"error":{"message":"Aim: anonymize action requested for multimodal input but mask-in-place would drop non-text parts. Send the request with plain string content to use anonymize, or rely on block-mode policies.","type":"invalid_request_error","param":null,"code":"400"}}"#
    );

    // Text in tool call arguments cannot be rewritten in place.
    let tools = json!({"model": "m", "guardrails": ["g"], "messages": [
        {"role": "user", "content": "send it"},
        {"role": "assistant", "content": null, "tool_calls": [{"id": "c", "type": "function", "function": {"name": "send", "arguments": "{\"to\":\"ishaan@berri.ai\"}"}}]},
        {"role": "tool", "tool_call_id": "c", "content": "sent"}
    ]});
    let resp = chat(&s.gw, &tools).await;
    assert_eq!(resp.status(), 400);
    assert!(!resp.text().await.unwrap().contains("berri"));
    assert_eq!(s.up.request_count(), 1);
}

#[tokio::test]
async fn a_redaction_of_another_length_is_refused() {
    let s = setup("      mode: pre_call\n", "").await;
    s.aim.set_options(AimOptions {
        mode: AimMode::Raw(json!({
            "required_action": {"action_type": "anonymize_action"},
            "redacted_chat": {"all_redacted_messages": [{"role": "user", "content": "x"}]}
        })),
        ..Default::default()
    });
    let body = json!({"model": "m", "guardrails": ["g"], "messages": [
        {"role": "user", "content": "a"}, {"role": "user", "content": "mail ishaan@berri.ai"}
    ]});
    let resp = chat(&s.gw, &body).await;
    assert_eq!(resp.status(), 400);
    assert!(
        resp.text()
            .await
            .unwrap()
            .contains("a redacted batch of a different size")
    );
    assert_eq!(s.up.request_count(), 0);
}

#[tokio::test]
async fn an_output_anonymize_applies_to_plain_content_only() {
    let s = setup("      mode: post_call\n", "").await;
    s.aim.set_options(AimOptions {
        mode: AimMode::Anonymize,
        ..Default::default()
    });
    s.up.set_options(UpstreamOptions {
        completion: Some(completion_with_email_in("refusal")),
        ..Default::default()
    });
    let body =
        json!({"model": "m", "guardrails": ["g"], "messages": [{"role": "user", "content": "hi"}]});
    let resp = chat(&s.gw, &body).await;
    assert_eq!(resp.status(), 400);
    assert!(!resp.text().await.unwrap().contains("berri"));

    s.up.set_options(UpstreamOptions {
        reply: Some("mail ishaan@berri.ai".into()),
        ..Default::default()
    });
    let resp = chat(&s.gw, &body).await;
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["choices"][0]["message"]["content"], "mail [EMAIL_1]");
}

#[tokio::test]
async fn a_key_bounds_every_fallback() {
    let up1 = MockUpstream::start(UpstreamOptions::default()).await;
    let up2 = MockUpstream::start(UpstreamOptions {
        failure: Some(Failure::Status {
            status: 500,
            body: r#"{"error":{"message":"down","type":"server_error","param":null,"code":null}}"#
                .into(),
            retry_after: None,
        }),
        ..Default::default()
    })
    .await;
    let up3 = MockUpstream::start(UpstreamOptions::default()).await;
    let yaml = format!(
        "model_list:\n{}{}{}{}general_settings:\n  master_key: sk-master\nvirtual_keys:\n  - key: sk-limited\n    models: [m1, m2]\nrouter_settings:\n  fallbacks: [{{m2: [m3, m1]}}]\n  context_window_fallbacks: [{{m2: [m3]}}]\n  default_fallbacks: [m3]\n",
        model("m1", &up1.url()),
        model("m2", &up2.url()),
        model("m3", &up3.url()),
        model("m4", &up3.url()),
    );
    let gw = gateway(&yaml).await;
    let ask = |key: &'static str| {
        let url = format!("{}/v1/chat/completions", gw.url());
        async move {
            client()
                .post(url)
                .bearer_auth(key)
                .json(&json!({"model": "m2", "messages": [{"role": "user", "content": "hi"}]}))
                .send()
                .await
                .unwrap()
        }
    };
    // The limited key falls back to m1 (which it may use), never to m3.
    let resp = ask("sk-limited").await;
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, "x-litellm-model-group"), Some("m1"));
    assert_eq!(
        up3.request_count(),
        0,
        "a group the key may not use answered"
    );
    assert_eq!(up1.request_count(), 1);

    // The master key may use m3: it is tried first.
    let resp = ask("sk-master").await;
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, "x-litellm-model-group"), Some("m3"));

    // A key whose only fallbacks it may not use gets the group's own error.
    let yaml = format!(
        "model_list:\n{}{}general_settings:\n  master_key: sk-master\nvirtual_keys:\n  - key: sk-limited\n    models: [m2]\nrouter_settings:\n  default_fallbacks: [m3]\n",
        model("m2", &up2.url()),
        model("m3", &up3.url()),
    );
    let gw = gateway(&yaml).await;
    let resp = client()
        .post(format!("{}/v1/chat/completions", gw.url()))
        .bearer_auth("sk-limited")
        .json(&json!({"model": "m2", "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 500);
    assert_eq!(up3.request_count(), 1, "only the master key's call");
}

#[tokio::test]
async fn no_configured_secret_leaves_in_an_upstream_error() {
    let up = MockUpstream::start(UpstreamOptions {
        failure: Some(Failure::Status {
            status: 401,
            body: r#"{"error":{"message":"Incorrect API key provided: sk-upstream-secret. You sent it with sk-master-secret-99 and aim-mock-key and sk-virtual-key-77.","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}"#.into(),
            retry_after: None,
        }),
        ..Default::default()
    })
    .await;
    let aim = MockAim::start(AimOptions::default()).await;
    let yaml = format!(
        "model_list:\n{}guardrails:\n  - guardrail_name: g\n    litellm_params:\n      guardrail: aim\n      mode: pre_call\n      api_key: aim-mock-key\n      api_base: {}\ngeneral_settings:\n  master_key: sk-master-secret-99\nvirtual_keys:\n  - key: sk-virtual-key-77\n",
        model("m", &up.url()),
        aim.url()
    );
    let gw = gateway(&yaml).await;
    for stream in [false, true] {
        let resp = client()
            .post(format!("{}/v1/chat/completions", gw.url()))
            .bearer_auth("sk-virtual-key-77")
            .json(&json!({"model": "m", "stream": stream, "messages": [{"role": "user", "content": "hi"}]}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 401);
        let text = resp.text().await.unwrap();
        for secret in [
            "sk-upstream-secret",
            "sk-master-secret-99",
            "aim-mock-key",
            "sk-virtual-key-77",
        ] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
        assert!(
            text.contains("Incorrect API key provided: sk-...cret."),
            "{text}"
        );
    }
}

#[tokio::test]
async fn an_odd_upstream_status_is_a_502() {
    for status in [302, 304, 600] {
        let up = MockUpstream::start(UpstreamOptions {
            failure: Some(Failure::Status {
                status,
                body: r#"{"error":{"message":"elsewhere","type":"x","param":null,"code":null}}"#
                    .into(),
                retry_after: None,
            }),
            ..Default::default()
        })
        .await;
        let gw = gateway(&format!("model_list:\n{}", model("m", &up.url()))).await;
        let resp = chat(
            &gw,
            &json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]}),
        )
        .await;
        assert_eq!(resp.status(), 502, "{status}");
        let v: Value = resp.json().await.unwrap();
        assert_eq!(v["error"]["type"], "upstream_error");
    }
}

#[tokio::test]
async fn fail_on_error_false_fails_open() {
    let s = setup("      mode: pre_call\n      fail_on_error: false\n", "").await;
    let down = AimOptions {
        failure: Some(gateway_mock::aim::AimFailure::Status {
            status: 500,
            body: "{}".into(),
        }),
        ..Default::default()
    };
    s.aim.set_options(down.clone());
    let body =
        json!({"model": "m", "guardrails": ["g"], "messages": [{"role": "user", "content": "hi"}]});
    assert_eq!(chat(&s.gw, &body).await.status(), 200);

    let s = setup(
        "      mode: pre_call\n      unreachable_fallback: fail_closed\n",
        "",
    )
    .await;
    s.aim.set_options(down);
    assert_eq!(chat(&s.gw, &body).await.status(), 502);
}

#[tokio::test]
async fn cato_reads_messages_whole_and_every_fragment_of_the_answer() {
    let up = MockUpstream::start(UpstreamOptions::default()).await;
    let aim = MockAim::start(AimOptions::default()).await;
    let yaml = format!(
        "model_list:\n{}guardrails:\n  - guardrail_name: cato\n    litellm_params:\n      guardrail: cato_networks\n      mode: [pre_call, post_call]\n      api_key: aim-mock-key\n      api_base: {}\n",
        model("m", &up.url()),
        aim.url()
    );
    let gw = gateway(&yaml).await;
    let messages = json!([
        {"role": "system", "content": ""},
        {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "image_url", "image_url": {"url": "u"}}, {"type": "text", "text": "b"}]},
        {"role": "assistant", "content": null, "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "c", "content": "done"}
    ]);
    up.set_options(UpstreamOptions {
        completion: Some(
            json!({"choices": [{"index": 0, "message": {"role": "assistant", "content": "x", "tool_calls": [
                {"id": "t1", "type": "function", "function": {"name": "f", "arguments": "{\"a\":1}"}},
                {"id": "t2", "type": "function", "function": {"name": "g", "arguments": "{\"b\":2}"}}
            ]}}]})
            .to_string(),
        ),
        ..Default::default()
    });
    let body = json!({"model": "m", "guardrails": ["cato"], "messages": messages,
        "tools": [{"type": "function", "function": {"name": "f", "description": "sends mail", "parameters": {"type": "object"}}}]});
    let resp = chat(&gw, &body).await;
    assert_eq!(resp.status(), 200);
    let calls = aim.requests();
    let input = json!([
        {"role": "system", "content": ""},
        {"role": "user", "content": "a\nb"},
        {"role": "assistant", "content": null, "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "c", "content": "done"},
        {"role": "system", "content": "sends mail"}
    ]);
    assert_eq!(calls[0].json(), json!({"messages": input}));
    // One output call per fragment: the content, then each tool call.
    let outputs: Vec<Value> = calls[1..].iter().map(|c| c.json()).collect();
    assert_eq!(outputs.len(), 3);
    for (call, fragment) in outputs.iter().zip(["x", "{\"a\":1}", "{\"b\":2}"]) {
        let mut expected = input.as_array().unwrap().clone();
        expected.push(json!({"role": "assistant", "content": fragment}));
        assert_eq!(call, &json!({"messages": expected}));
    }

    // A block in a later fragment is a 400.
    up.set_options(UpstreamOptions {
        completion: Some(
            json!({"choices": [{"index": 0, "message": {"role": "assistant", "content": "x", "tool_calls": [
                {"id": "t1", "type": "function", "function": {"name": "f", "arguments": "{\"to\":\"ishaan@berri.ai\"}"}}
            ]}}]})
            .to_string(),
        ),
        ..Default::default()
    });
    let resp = chat(&gw, &body).await;
    assert_eq!(resp.status(), 400);
    assert!(resp.text().await.unwrap().contains("detected as email"));
}

#[tokio::test]
async fn cato_anonymize_maps_back_by_index() {
    let up = MockUpstream::start(UpstreamOptions::default()).await;
    let aim = MockAim::start(AimOptions {
        mode: AimMode::Anonymize,
        ..Default::default()
    })
    .await;
    let yaml = format!(
        "model_list:\n{}guardrails:\n  - guardrail_name: cato\n    litellm_params:\n      guardrail: cato_networks\n      mode: pre_call\n      api_key: aim-mock-key\n      api_base: {}\n",
        model("m", &up.url()),
        aim.url()
    );
    let gw = gateway(&yaml).await;
    let body = json!({"model": "m", "guardrails": ["cato"], "messages": [
        {"role": "developer", "content": "be brief"},
        {"role": "user", "name": "bob", "content": "mail ishaan@berri.ai"}
    ]});
    assert_eq!(chat(&gw, &body).await.status(), 200);
    assert_eq!(
        up.requests().last().unwrap().json()["messages"],
        json!([
            {"role": "developer", "content": "be brief"},
            {"role": "user", "name": "bob", "content": "mail [EMAIL_1]"}
        ])
    );
}

#[tokio::test]
async fn a_key_bounds_fallbacks_served_by_a_wildcard() {
    let failing = MockUpstream::start(UpstreamOptions {
        failure: Some(Failure::Status {
            status: 500,
            body: r#"{"error":{"message":"down","type":"server_error","param":null,"code":null}}"#
                .into(),
            retry_after: None,
        }),
        ..Default::default()
    })
    .await;
    let any = MockUpstream::start(UpstreamOptions::default()).await;
    let yaml = format!(
        "model_list:\n{}  - model_name: \"*\"\n    litellm_params:\n      model: openai/*\n      api_base: {}\n      api_key: sk-upstream-secret\ngeneral_settings:\n  master_key: sk-master\nvirtual_keys:\n  - key: sk-limited\n    models: [m2]\nrouter_settings:\n  fallbacks: [{{m2: [gpt-4o]}}]\n",
        model("m2", &failing.url()),
        any.url()
    );
    let gw = gateway(&yaml).await;
    let ask = |key: &'static str| {
        let url = format!("{}/v1/chat/completions", gw.url());
        async move {
            client()
                .post(url)
                .bearer_auth(key)
                .json(&json!({"model": "m2", "messages": [{"role": "user", "content": "hi"}]}))
                .send()
                .await
                .unwrap()
        }
    };
    assert_eq!(ask("sk-limited").await.status(), 500);
    assert_eq!(any.request_count(), 0, "the key may not use gpt-4o");
    assert_eq!(ask("sk-master").await.status(), 200);
    assert_eq!(any.requests()[0].json()["model"], "gpt-4o");
}
