//! The guardrail pipeline against a real mock upstream and a real mock Aim
//! (HTTP and websocket), asserting on what crossed the wire.

// Tests: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::*;
use gateway_mock::aim::{AimFailure, AimMode, AimOptions, MockAim};
use gateway_mock::upstream::{Failure, MockUpstream, UpstreamOptions};
use serde_json::{Value, json};

const SEED_BLOCK: &str = r#"{"error":{"message":"\"ishaan@berri.ai\" detected as email","type":"invalid_request_error","param":null,"code":"400"}}"#;

struct Setup {
    up: MockUpstream,
    aim: MockAim,
    gw: gateway::server::Running,
}

/// One model, one Aim guardrail `aim-protected-app` with `params` (YAML
/// lines under litellm_params, indented 6), plus `extra` top-level YAML.
async fn setup(up_opts: UpstreamOptions, aim_opts: AimOptions, params: &str, extra: &str) -> Setup {
    let up = MockUpstream::start(up_opts).await;
    let aim = MockAim::start(aim_opts).await;
    let yaml = format!(
        "model_list:\n{}guardrails:\n  - guardrail_name: aim-protected-app\n    litellm_params:\n      guardrail: aim\n      api_key: aim-mock-key\n      api_base: {}/\n{params}{extra}",
        model("gpt-3.5-turbo", &up.url()),
        aim.url()
    );
    let gw = gateway(&yaml).await;
    Setup { up, aim, gw }
}

fn seed(text: &str) -> Value {
    json!({
        "model": "gpt-3.5-turbo",
        "messages": [{"role": "user", "content": text}],
        "guardrails": ["aim-protected-app"]
    })
}

fn streaming(mut body: Value) -> Value {
    body["stream"] = json!(true);
    body
}

const PRE_POST: &str = "      mode: [pre_call, post_call]\n";

#[tokio::test]
async fn seed_example_is_blocked_byte_for_byte_before_the_upstream() {
    let s = setup(
        UpstreamOptions::default(),
        AimOptions::default(),
        PRE_POST,
        "",
    )
    .await;
    let resp = chat(&s.gw, &seed("hi my email is ishaan@berri.ai")).await;
    assert_eq!(resp.status(), 400);
    assert_eq!(header(&resp, "content-type"), Some("application/json"));
    assert_eq!(
        header(&resp, "x-litellm-applied-guardrails"),
        Some("aim-protected-app")
    );
    let call_id = header(&resp, "x-litellm-call-id").unwrap().to_owned();
    assert_eq!(resp.text().await.unwrap(), SEED_BLOCK);
    assert_eq!(s.up.request_count(), 0, "the upstream is never called");

    let calls = s.aim.requests();
    assert_eq!(calls.len(), 1);
    let c = &calls[0];
    assert_eq!(c.path, "/fw/v1/analyze");
    assert_eq!(c.header("authorization"), Some("Bearer aim-mock-key"));
    assert_eq!(c.header("x-aim-litellm-hook"), Some("pre_call"));
    // The LiteLLM release whose protocol the gateway speaks; the gateway
    // names itself in User-Agent.
    assert_eq!(c.header("x-aim-litellm-version"), Some("1.108.7"));
    assert_eq!(
        c.header("user-agent"),
        Some(format!("gateway/{}", gateway::VERSION).as_str())
    );
    assert_eq!(c.header("x-aim-call-id"), Some(call_id.as_str()));
    assert_eq!(c.header("content-type"), Some("application/json"));
    assert_eq!(c.header("host"), Some(s.aim.addr().to_string().as_str()));
    assert_eq!(c.header("x-aim-user-email"), None);
    assert_eq!(c.header("x-aim-gateway-key-alias"), None);
    assert_eq!(
        String::from_utf8_lossy(&c.body),
        r#"{"messages":[{"role":"user","content":"hi my email is ishaan@berri.ai"}]}"#
    );
}

#[tokio::test]
async fn seed_permitted_request_forwards_the_user_email() {
    let s = setup(
        UpstreamOptions::default(),
        AimOptions::default(),
        PRE_POST,
        "",
    )
    .await;
    let resp = client()
        .post(format!("{}/v1/chat/completions", s.gw.url()))
        .header("x-aim-user-email", "ishaan@berri.ai")
        .header("x-litellm-call-id", "call-123")
        .json(&seed("hi what is the weather"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        header(&resp, "x-litellm-applied-guardrails"),
        Some("aim-protected-app")
    );
    assert_eq!(header(&resp, "x-litellm-call-id"), Some("call-123"));
    let v: Value = resp.json().await.unwrap();
    assert_eq!(
        v["choices"][0]["message"]["content"],
        "hi what is the weather"
    );

    let calls = s.aim.requests();
    let hooks: Vec<_> = calls
        .iter()
        .map(|c| c.header("x-aim-litellm-hook").unwrap())
        .collect();
    assert_eq!(hooks, ["pre_call", "output"]);
    for c in &calls {
        assert_eq!(c.header("x-aim-user-email"), Some("ishaan@berri.ai"));
        assert_eq!(c.header("x-aim-call-id"), Some("call-123"));
        assert_eq!(c.header("authorization"), Some("Bearer aim-mock-key"));
    }
    // Output check: the flattened input plus the assistant's answer.
    assert_eq!(
        calls[1].json(),
        json!({"messages": [
            {"role": "user", "content": "hi what is the weather"},
            {"role": "assistant", "content": "hi what is the weather"}
        ]})
    );
    // The gateway-only field never reaches the upstream.
    assert!(s.up.requests()[0].json().get("guardrails").is_none());
}

#[tokio::test]
async fn virtual_key_alias_is_sent_never_the_key() {
    let keys = "virtual_keys:\n  - key: sk-alice-secret\n    key_alias: alice-app\n    guardrails: [aim-protected-app]\n  - key: sk-noalias\n";
    let s = setup(
        UpstreamOptions::default(),
        AimOptions::default(),
        "      mode: pre_call\n",
        keys,
    )
    .await;
    // The key's guardrails run without the request naming them.
    let resp = client()
        .post(format!("{}/v1/chat/completions", s.gw.url()))
        .bearer_auth("sk-alice-secret")
        .json(&user("hello"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let resp = client()
        .post(format!("{}/v1/chat/completions", s.gw.url()))
        .bearer_auth("sk-noalias")
        .json(&seed("hello"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let calls = s.aim.requests();
    assert_eq!(calls.len(), 2);
    assert_eq!(
        calls[0].header("x-aim-gateway-key-alias"),
        Some("alice-app")
    );
    assert_eq!(calls[1].header("x-aim-gateway-key-alias"), None);
    for c in &calls {
        for (name, value) in &c.headers {
            assert!(!value.contains("sk-"), "{name} leaks a client key");
        }
        assert!(!String::from_utf8_lossy(&c.body).contains("sk-"));
    }
}

#[tokio::test]
async fn messages_are_flattened_as_aim_md_shows() {
    let s = setup(
        UpstreamOptions::default(),
        AimOptions::default(),
        "      mode: pre_call\n",
        "",
    )
    .await;
    let body = json!({
        "model": "gpt-3.5-turbo",
        "guardrails": ["aim-protected-app"],
        "messages": [
            {"role": "user", "content": "weather in SF"},
            {"role": "assistant", "content": "", "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"SF\"}"}}]},
            {"role": "tool", "tool_call_id": "c1", "content": "sunny"}
        ]
    });
    assert_eq!(chat(&s.gw, &body).await.status(), 200);
    assert_eq!(
        String::from_utf8_lossy(&s.aim.requests()[0].body),
        r#"{"messages":[{"role":"user","content":"weather in SF"},{"role":"assistant","content":"{\"city\":\"SF\"}"},{"role":"user","content":"sunny"}]}"#
    );
}

#[tokio::test]
async fn verdict_table_for_input_checks() {
    let s = setup(
        UpstreamOptions::default(),
        AimOptions::default(),
        "      mode: pre_call\n",
        "",
    )
    .await;
    let email = seed("mail me at a.b@example.com");

    s.aim.set_options(AimOptions {
        mode: AimMode::Monitor,
        ..Default::default()
    });
    assert_eq!(chat(&s.gw, &email).await.status(), 200, "monitor passes");

    s.aim.set_options(AimOptions {
        mode: AimMode::Pass,
        ..Default::default()
    });
    assert_eq!(chat(&s.gw, &email).await.status(), 200, "no action passes");

    s.aim.set_options(AimOptions {
        mode: AimMode::Raw(json!({"required_action": {"action_type": "something_new"}})),
        ..Default::default()
    });
    assert_eq!(
        chat(&s.gw, &email).await.status(),
        200,
        "unknown action passes"
    );
    assert_eq!(s.up.request_count(), 3);

    // A block without policy_drill_down is still a block.
    s.aim.set_options(AimOptions {
        mode: AimMode::Raw(json!({"required_action": {"action_type": "block_action", "detection_message": "nope"}})),
        ..Default::default()
    });
    let resp = chat(&s.gw, &email).await;
    assert_eq!(resp.status(), 400);
    assert_eq!(
        resp.text().await.unwrap(),
        r#"{"error":{"message":"nope","type":"invalid_request_error","param":null,"code":"400"}}"#
    );

    // Anonymize rewrites what the upstream receives.
    s.aim.set_options(AimOptions {
        mode: AimMode::Anonymize,
        ..Default::default()
    });
    assert_eq!(chat(&s.gw, &email).await.status(), 200);
    let sent = s.up.requests().last().unwrap().json();
    assert_eq!(
        sent["messages"],
        json!([{"role": "user", "content": "mail me at [EMAIL_1]"}])
    );
    assert_eq!(s.up.request_count(), 4);

    // A malformed redaction is a 400 and nothing goes upstream.
    for redacted in [
        json!(null),
        json!({"all_redacted_messages": []}),
        json!({"all_redacted_messages": [{"role": "user", "content": null}]}),
    ] {
        s.aim.set_options(AimOptions {
            mode: AimMode::Raw(json!({"required_action": {"action_type": "anonymize_action"}, "redacted_chat": redacted})),
            ..Default::default()
        });
        let resp = chat(&s.gw, &email).await;
        assert_eq!(resp.status(), 400, "{redacted}");
        let text = resp.text().await.unwrap();
        assert!(!text.contains("example.com"), "{text}");
    }
    assert_eq!(s.up.request_count(), 4);
}

#[tokio::test]
async fn during_call_blocks_even_when_aim_answers_after_the_upstream() {
    let s = setup(
        UpstreamOptions::default(),
        AimOptions {
            delay_ms: 300,
            ..Default::default()
        },
        "      mode: during_call\n",
        "",
    )
    .await;
    let resp = chat(&s.gw, &seed("hi my email is ishaan@berri.ai")).await;
    assert_eq!(resp.status(), 400);
    assert_eq!(
        header(&resp, "x-litellm-applied-guardrails"),
        Some("aim-protected-app")
    );
    assert_eq!(resp.text().await.unwrap(), SEED_BLOCK);
    assert_eq!(s.up.request_count(), 1, "the upstream call started at once");
    assert_eq!(
        s.aim.requests()[0].header("x-aim-litellm-hook"),
        Some("moderation")
    );

    // Streaming: a block is still the ordinary JSON 400.
    let resp = chat(&s.gw, &streaming(seed("hi my email is ishaan@berri.ai"))).await;
    assert_eq!(resp.status(), 400);
    assert_eq!(resp.text().await.unwrap(), SEED_BLOCK);
}

/// An upstream error is an answer too: it waits for the during_call check,
/// whose block wins over it, and Aim reads the prompt either way.
#[tokio::test]
async fn an_upstream_error_waits_for_the_during_call_check() {
    let s = setup(
        UpstreamOptions {
            failure: Some(Failure::Status {
                status: 400,
                body: r#"{"error":{"message":"bad request","type":"invalid_request_error","param":null,"code":null}}"#.into(),
                retry_after: None,
            }),
            ..Default::default()
        },
        AimOptions {
            delay_ms: 300,
            ..Default::default()
        },
        "      mode: during_call\n",
        "",
    )
    .await;
    for stream in [false, true] {
        s.aim.reset();
        let mut body = seed("hi my email is ishaan@berri.ai");
        body["stream"] = json!(stream);
        let started = Instant::now();
        let resp = chat(&s.gw, &body).await;
        assert_eq!(resp.status(), 400);
        assert!(started.elapsed() >= Duration::from_millis(300));
        assert_eq!(resp.text().await.unwrap(), SEED_BLOCK, "stream {stream}");
        assert_eq!(s.aim.requests().len(), 1);

        // A clean prompt: the upstream's error, once Aim has passed it.
        s.aim.reset();
        body["messages"][0]["content"] = json!("hello");
        let resp = chat(&s.gw, &body).await;
        assert_eq!(resp.status(), 400);
        assert_eq!(
            header(&resp, "x-litellm-applied-guardrails"),
            Some("aim-protected-app")
        );
        assert!(resp.text().await.unwrap().contains("bad request"));
        assert_eq!(s.aim.requests().len(), 1, "Aim read the prompt");
    }
}

#[tokio::test]
async fn during_call_runs_concurrently_with_the_upstream() {
    let s = setup(
        UpstreamOptions {
            latency_ms: 400,
            ..Default::default()
        },
        AimOptions {
            delay_ms: 400,
            ..Default::default()
        },
        "      mode: during_call\n",
        "",
    )
    .await;
    let started = Instant::now();
    let resp = chat(&s.gw, &seed("hello")).await;
    let took = started.elapsed();
    assert_eq!(resp.status(), 200);
    assert!(took >= Duration::from_millis(400));
    assert!(
        took < Duration::from_millis(750),
        "not concurrent: {took:?}"
    );

    // A stream's first byte waits for the check.
    s.up.set_options(UpstreamOptions::default());
    let started = Instant::now();
    let resp = chat(&s.gw, &streaming(seed("hello"))).await;
    assert_eq!(resp.status(), 200);
    assert!(started.elapsed() >= Duration::from_millis(400));
    assert!(resp.text().await.unwrap().ends_with("data: [DONE]\n\n"));
}

#[tokio::test]
async fn post_call_checks_every_choice() {
    let s = setup(
        UpstreamOptions {
            reply: Some("contact ishaan@berri.ai".into()),
            ..Default::default()
        },
        AimOptions::default(),
        "      mode: post_call\n",
        "",
    )
    .await;
    let mut body = seed("who do I contact?");
    body["n"] = json!(2);
    let resp = chat(&s.gw, &body).await;
    assert_eq!(resp.status(), 400);
    assert_eq!(resp.text().await.unwrap(), SEED_BLOCK);
    let calls = s.aim.requests();
    assert_eq!(calls.len(), 2, "one output call per choice");
    for c in &calls {
        assert_eq!(c.header("x-aim-litellm-hook"), Some("output"));
        assert_eq!(
            c.json(),
            json!({"messages": [{"role": "user", "content": "who do I contact?"}, {"role": "assistant", "content": "contact ishaan@berri.ai"}]})
        );
    }

    s.aim.set_options(AimOptions {
        mode: AimMode::Anonymize,
        ..Default::default()
    });
    let resp = chat(&s.gw, &body).await;
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await.unwrap();
    for i in 0..2 {
        assert_eq!(v["choices"][i]["message"]["content"], "contact [EMAIL_1]");
    }
    assert_eq!(
        v["usage"],
        s.up.requests().last().unwrap().response_json()["usage"]
    );

    // A redaction whose last entry is not the assistant's leaks nothing.
    s.aim.set_options(AimOptions {
        mode: AimMode::Raw(json!({
            "required_action": {"action_type": "anonymize_action"},
            "redacted_chat": {"all_redacted_messages": [{"role": "user", "content": "x"}]}
        })),
        ..Default::default()
    });
    let resp = chat(&s.gw, &body).await;
    assert_eq!(resp.status(), 400);
    assert!(!resp.text().await.unwrap().contains("berri"));
}

#[tokio::test]
async fn streaming_output_goes_through_the_websocket() {
    let s = setup(
        UpstreamOptions {
            chunks: 3,
            ..Default::default()
        },
        AimOptions::default(),
        "      mode: post_call\n",
        "",
    )
    .await;
    let resp = client()
        .post(format!("{}/v1/chat/completions", s.gw.url()))
        .header("x-aim-user-email", "u@example.com")
        .json(&streaming(seed("alpha beta gamma delta")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        header(&resp, "x-litellm-applied-guardrails"),
        Some("aim-protected-app")
    );
    let call_id = header(&resp, "x-litellm-call-id").unwrap().to_owned();
    let got = sse_data(&resp.text().await.unwrap());

    let upstream_frames = sse_data(&String::from_utf8_lossy(&s.up.requests()[0].response_body));
    let upstream_chunks: Vec<&String> = upstream_frames.iter().filter(|f| *f != "[DONE]").collect();
    assert_eq!(upstream_chunks.len(), 5, "role + 3 content + finish");

    let streams = s.aim.streams();
    assert_eq!(streams.len(), 1);
    let ws = &streams[0];
    assert_eq!(ws.header("authorization"), Some("Bearer aim-mock-key"));
    assert_eq!(ws.header("x-aim-litellm-hook"), Some("output"));
    assert_eq!(ws.header("x-aim-call-id"), Some(call_id.as_str()));
    assert_eq!(ws.header("x-aim-user-email"), Some("u@example.com"));
    assert_eq!(ws.header("x-aim-litellm-version"), Some("1.108.7"));
    assert_eq!(
        ws.header("user-agent"),
        Some(format!("gateway/{}", gateway::VERSION).as_str())
    );
    // N chunks -> N+1 frames, the last {"done": true}.
    assert_eq!(ws.frames.len(), upstream_chunks.len() + 1);
    for (sent, chunk) in ws.frames.iter().zip(&upstream_chunks) {
        assert_eq!(sent, *chunk, "each upstream chunk as one text frame");
    }
    assert_eq!(
        serde_json::from_str::<Value>(ws.frames.last().unwrap()).unwrap(),
        json!({"done": true})
    );

    // Only verified chunks reach the client, then [DONE].
    assert_eq!(got.last().map(String::as_str), Some("[DONE]"));
    let verified: Vec<Value> = ws
        .sent
        .iter()
        .filter_map(|f| {
            serde_json::from_str::<Value>(f)
                .ok()?
                .get("verified_chunk")
                .cloned()
        })
        .collect();
    let client_chunks: Vec<Value> = got[..got.len() - 1]
        .iter()
        .map(|f| serde_json::from_str(f).unwrap())
        .collect();
    assert_eq!(client_chunks, verified);
}

#[tokio::test]
async fn a_stream_blocked_after_its_first_verified_chunk() {
    let s = setup(
        UpstreamOptions {
            reply: Some("abcdefgBLOCKME".into()),
            chunks: 2,
            chunk_interval_ms: 100,
            ..Default::default()
        },
        AimOptions {
            stream_block_marker: Some("BLOCKME".into()),
            ..Default::default()
        },
        "      mode: post_call\n",
        "",
    )
    .await;
    let resp = chat(&s.gw, &streaming(seed("go"))).await;
    assert_eq!(resp.status(), 200);
    let got = sse_data(&resp.text().await.unwrap());
    assert_eq!(got.len(), 3, "{got:?}");
    let second: Value = serde_json::from_str(&got[1]).unwrap();
    assert_eq!(second["choices"][0]["delta"]["content"], "abcdefg");
    let err: Value = serde_json::from_str(&got[2]).unwrap();
    assert_eq!(err["error"]["type"], "invalid_request_error");
    assert_eq!(err["error"]["code"], "400");
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("BLOCKME")
    );
    assert!(!got.iter().any(|f| f == "[DONE]"));
    eventually("the upstream stream is dropped", || {
        s.up.cancelled_streams() == 1
    })
    .await;
}

#[tokio::test]
async fn an_aim_that_drops_the_socket_fails_the_stream() {
    let opts = || UpstreamOptions {
        chunks: 4,
        ..Default::default()
    };
    let aim = || AimOptions {
        ws_drop_after: Some(2),
        mode: AimMode::Pass,
        ..Default::default()
    };
    let s = setup(opts(), aim(), "      mode: post_call\n", "").await;
    let resp = chat(&s.gw, &streaming(seed("one two three four"))).await;
    assert_eq!(resp.status(), 200);
    let got = sse_data(&resp.text().await.unwrap());
    let last: Value = serde_json::from_str(got.last().unwrap()).unwrap();
    assert_eq!(last["error"]["type"], "guardrail_unavailable");
    assert!(!got.iter().any(|f| f == "[DONE]"));

    // fail_open: the stream completes, unverified after the failure.
    let s = setup(
        opts(),
        aim(),
        "      mode: post_call\n      fail_open: true\n",
        "",
    )
    .await;
    let resp = chat(&s.gw, &streaming(seed("one two three four"))).await;
    let got = sse_data(&resp.text().await.unwrap());
    assert_eq!(got.last().map(String::as_str), Some("[DONE]"));
    let content: String = got
        .iter()
        .filter_map(|f| serde_json::from_str::<Value>(f).ok())
        .filter_map(|v| {
            v["choices"][0]["delta"]["content"]
                .as_str()
                .map(str::to_owned)
        })
        .collect();
    assert_eq!(content, "one two three four");
}

#[tokio::test]
async fn failure_modes_fail_closed_by_default_and_open_when_configured() {
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    struct Case {
        name: &'static str,
        opts: AimOptions,
        key: &'static str,
        down: bool,
        status: u16,
        reason: &'static str,
    }
    let cases = [
        Case {
            name: "down",
            opts: AimOptions::default(),
            key: "aim-mock-key",
            down: true,
            status: 502,
            reason: "unreachable",
        },
        Case {
            name: "timeout",
            opts: AimOptions {
                failure: Some(AimFailure::Hang),
                ..Default::default()
            },
            key: "aim-mock-key",
            down: false,
            status: 504,
            reason: "timed out after 0.3s",
        },
        Case {
            name: "401",
            opts: AimOptions::default(),
            key: "wrong-aim-key",
            down: false,
            status: 502,
            reason: "answered HTTP 401",
        },
        Case {
            name: "422",
            opts: AimOptions {
                failure: Some(AimFailure::Status {
                    status: 422,
                    body: r#"{"detail":[{"loc":["body"],"msg":"bad","type":"value_error"}]}"#
                        .into(),
                }),
                ..Default::default()
            },
            key: "aim-mock-key",
            down: false,
            status: 502,
            reason: "answered HTTP 422",
        },
        Case {
            name: "garbage",
            opts: AimOptions {
                failure: Some(AimFailure::Garbage),
                ..Default::default()
            },
            key: "aim-mock-key",
            down: false,
            status: 502,
            reason: "gave an answer that could not be read",
        },
    ];
    for case in cases {
        for fail_open in [false, true] {
            let up = MockUpstream::start(UpstreamOptions::default()).await;
            let aim = MockAim::start(case.opts.clone()).await;
            let base = if case.down { closed.clone() } else { aim.url() };
            let yaml = format!(
                "model_list:\n{}guardrails:\n  - guardrail_name: g\n    litellm_params:\n      guardrail: aim\n      mode: [pre_call]\n      default_on: true\n      timeout: 0.3\n      fail_open: {fail_open}\n      api_key: {}\n      api_base: {base}\n",
                model("gpt-3.5-turbo", &up.url()),
                case.key
            );
            let gw = gateway(&yaml).await;
            let resp = chat(&gw, &user("hello")).await;
            if fail_open {
                assert_eq!(resp.status(), 200, "{} fail_open", case.name);
                assert_eq!(up.request_count(), 1);
                assert_eq!(header(&resp, "x-litellm-applied-guardrails"), None);
                continue;
            }
            assert_eq!(resp.status().as_u16(), case.status, "{}", case.name);
            let text = resp.text().await.unwrap();
            assert_eq!(
                text,
                format!(
                    r#"{{"error":{{"message":"guardrail 'g' unavailable: {}","type":"guardrail_unavailable","param":null,"code":"{}"}}}}"#,
                    case.reason, case.status
                ),
                "{}",
                case.name
            );
            assert!(!text.contains(case.key) && !text.contains("detail"));
            assert_eq!(up.request_count(), 0, "{}: fail closed", case.name);
        }
    }
}

#[tokio::test]
async fn a_websocket_that_cannot_open_is_an_ordinary_error() {
    let s = setup(
        UpstreamOptions::default(),
        AimOptions {
            failure: Some(AimFailure::Status {
                status: 401,
                body: r#"{"detail":"Invalid API token"}"#.into(),
            }),
            ..Default::default()
        },
        "      mode: post_call\n",
        "",
    )
    .await;
    let resp = chat(&s.gw, &streaming(seed("hello"))).await;
    assert_eq!(resp.status(), 502);
    assert_eq!(
        resp.text().await.unwrap(),
        r#"{"error":{"message":"guardrail 'aim-protected-app' unavailable: answered HTTP 401","type":"guardrail_unavailable","param":null,"code":"502"}}"#
    );
}

#[tokio::test]
async fn cato_networks_uses_its_own_header_names() {
    let up = MockUpstream::start(UpstreamOptions::default()).await;
    let aim = MockAim::start(AimOptions::default()).await;
    let yaml = format!(
        "model_list:\n{}guardrails:\n  - guardrail_name: cato\n    litellm_params:\n      guardrail: cato_networks\n      mode: pre_call\n      api_key: aim-mock-key\n      api_base: {}\nvirtual_keys:\n  - key: sk-k\n    key_alias: team-a\n    metadata: {{user_email: owner@corp.io}}\n",
        model("gpt-3.5-turbo", &up.url()),
        aim.url()
    );
    let gw = gateway(&yaml).await;
    let resp = client()
        .post(format!("{}/v1/chat/completions", gw.url()))
        .bearer_auth("sk-k")
        .header("x-aim-user-email", "x@y.io")
        .json(&json!({"model": "gpt-3.5-turbo", "messages": [{"role": "user", "content": "hi ishaan@berri.ai"}], "guardrails": ["cato"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let call_id = header(&resp, "x-litellm-call-id").unwrap().to_owned();
    let c = &aim.requests()[0];
    assert_eq!(c.header("x-cato-litellm-hook"), Some("pre_call"));
    assert_eq!(c.header("x-cato-litellm-version"), Some("1.108.7"));
    assert_eq!(c.header("x-cato-call-id"), Some(call_id.as_str()));
    // The e-mail bound to the key, never the client's (spoofable) header.
    assert_eq!(c.header("x-cato-user-email"), Some("owner@corp.io"));
    assert_eq!(c.header("x-cato-gateway-key-alias"), Some("team-a"));
    assert!(c.headers.iter().all(|(n, _)| !n.starts_with("x-aim-")));
}

#[tokio::test]
async fn selection_rules() {
    let up = MockUpstream::start(UpstreamOptions::default()).await;
    let aim = MockAim::start(AimOptions::default()).await;
    let g = |name: &str, default_on: bool| {
        format!(
            "  - guardrail_name: {name}\n    litellm_params:\n      guardrail: aim\n      mode: pre_call\n      default_on: {default_on}\n      api_key: aim-mock-key\n      api_base: {}\n",
            aim.url()
        )
    };
    let yaml = format!(
        "model_list:\n{}guardrails:\n{}{}virtual_keys:\n  - key: sk-exempt\n    disable_global_guardrails: true\n  - key: sk-plain\n",
        model("gpt-3.5-turbo", &up.url()),
        g("global", true),
        g("optional", false)
    );
    let gw = gateway(&yaml).await;
    let send = |key: &'static str, body: Value| {
        let url = format!("{}/v1/chat/completions", gw.url());
        async move {
            client()
                .post(url)
                .bearer_auth(key)
                .json(&body)
                .send()
                .await
                .unwrap()
        }
    };
    let applied =
        |r: &reqwest::Response| header(r, "x-litellm-applied-guardrails").map(str::to_owned);

    // default_on runs; a caller cannot switch it off.
    let mut body = user("hello");
    body["disable_global_guardrail"] = json!(true);
    body["metadata"] = json!({"disable_global_guardrail": true});
    let r = send("sk-plain", body).await;
    assert_eq!(
        (r.status().as_u16(), applied(&r)),
        (200, Some("global".into()))
    );
    assert!(s_has_no_gateway_fields(
        &up.requests().last().unwrap().json()
    ));

    // Named in the body (list or object) or in metadata.
    for extra in [
        json!({"guardrails": ["optional"]}),
        json!({"guardrails": {"optional": {}}}),
        json!({"metadata": {"guardrails": ["optional"]}}),
    ] {
        let mut body = user("hello");
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        let r = send("sk-plain", body).await;
        assert_eq!(applied(&r), Some("global,optional".into()), "{extra}");
    }

    // Only the operator can exempt a key.
    let r = send("sk-exempt", user("hello")).await;
    assert_eq!((r.status().as_u16(), applied(&r)), (200, None));

    // A name that is not configured is a 400 naming it, not a silent pass.
    let mut body = user("hello");
    body["guardrails"] = json!(["aim-protectd-app"]);
    let before = up.request_count();
    let r = send("sk-plain", body).await;
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("aim-protectd-app")
    );
    assert_eq!(v["error"]["param"], "guardrails");
    assert_eq!(up.request_count(), before);
}

fn s_has_no_gateway_fields(v: &Value) -> bool {
    ["guardrails", "metadata", "disable_global_guardrail"]
        .iter()
        .all(|f| v.get(f).is_none())
}

#[tokio::test]
async fn streaming_with_pre_call_only_blocks_with_plain_json() {
    let s = setup(
        UpstreamOptions::default(),
        AimOptions::default(),
        "      mode: pre_call\n",
        "",
    )
    .await;
    let resp = chat(&s.gw, &streaming(seed("hi my email is ishaan@berri.ai"))).await;
    assert_eq!(resp.status(), 400);
    assert_eq!(header(&resp, "content-type"), Some("application/json"));
    assert_eq!(resp.text().await.unwrap(), SEED_BLOCK);
    assert_eq!(s.up.request_count(), 0);
}
