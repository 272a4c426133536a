//! Observability: `/metrics` parses as Prometheus text and its counters move
//! with each kind of request; the process's logs (JSON, debug level) never
//! contain a configured key.

// Tests: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use gateway_mock::aim::{AimOptions, MockAim};
use gateway_mock::upstream::{Failure, MockUpstream, UpstreamOptions};
use serde_json::{Value, json};

/// Parse Prometheus text format 0.0.4 strictly: every line is a HELP, a
/// TYPE, or `name{labels} value`, and every sample's family has a TYPE.
fn parse(text: &str) -> HashMap<String, f64> {
    let mut types: HashMap<String, String> = HashMap::new();
    let mut samples = HashMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            assert!(rest.split_once(' ').is_some(), "bad HELP: {line}");
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("TYPE name kind");
            assert!(["counter", "gauge", "histogram"].contains(&kind), "{line}");
            types.insert(name.to_owned(), kind.to_owned());
            continue;
        }
        assert!(
            !line.starts_with('#') && !line.is_empty(),
            "unexpected line: {line:?}"
        );
        let (series, value) = line.rsplit_once(' ').expect("series value");
        let value: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("bad value: {line}"));
        let name = series.split('{').next().unwrap();
        assert!(
            name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "bad name: {line}"
        );
        if let Some(labels) = series.strip_prefix(name)
            && !labels.is_empty()
        {
            let inner = labels
                .strip_prefix('{')
                .and_then(|l| l.strip_suffix('}'))
                .expect("braces");
            check_labels(inner, line);
        }
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| {
                name.strip_suffix(s)
                    .filter(|f| types.get(*f).is_some_and(|k| k == "histogram"))
            })
            .unwrap_or(name);
        assert!(types.contains_key(family), "no TYPE for {family}");
        samples.insert(series.to_owned(), value);
    }
    samples
}

fn check_labels(mut s: &str, line: &str) {
    while !s.is_empty() {
        let (key, rest) = s
            .split_once("=\"")
            .unwrap_or_else(|| panic!("label: {line}"));
        assert!(
            key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "{line}"
        );
        let mut chars = rest.char_indices();
        let mut end = None;
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => {
                    chars.next();
                }
                '"' => {
                    end = Some(i);
                    break;
                }
                _ => {}
            }
        }
        let end = end.unwrap_or_else(|| panic!("unterminated label: {line}"));
        s = &rest[end + 1..];
        s = s.strip_prefix(',').unwrap_or(s);
    }
}

fn get(m: &HashMap<String, f64>, series: &str) -> f64 {
    m.get(series).copied().unwrap_or(0.0)
}

#[tokio::test]
async fn metrics_move_with_each_kind_of_request() {
    let up = MockUpstream::start(UpstreamOptions::default()).await;
    let flaky = MockUpstream::start(UpstreamOptions {
        failure: Some(Failure::Status {
            status: 500,
            body: "{}".into(),
            retry_after: None,
        }),
        ..Default::default()
    })
    .await;
    let aim = MockAim::start(AimOptions::default()).await;
    let gw = gateway(&format!(
        "model_list:\n{}{}guardrails:\n  - guardrail_name: g\n    litellm_params:\n      guardrail: aim\n      mode: [pre_call, post_call]\n      api_key: aim-mock-key\n      api_base: {}\nrouter_settings:\n  fallbacks: [{{flaky: [gpt-3.5-turbo]}}]\n",
        model("gpt-3.5-turbo", &up.url()),
        model("flaky", &flaky.url()),
        aim.url()
    ))
    .await;
    let metrics = || async {
        let r = client()
            .get(format!("{}/metrics", gw.url()))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert!(
            header(&r, "content-type")
                .unwrap()
                .starts_with("text/plain; version=0.0.4")
        );
        parse(&r.text().await.unwrap())
    };
    let before = metrics().await;
    assert_eq!(get(&before, "gateway_requests_in_flight"), 0.0);

    let ok = "gateway_requests_total{route=\"/v1/chat/completions\",model_group=\"gpt-3.5-turbo\",deployment=\"";
    assert_eq!(chat(&gw, &user("hello")).await.status(), 200);
    let mut stream = user("hello stream");
    stream["stream"] = json!(true);
    stream["stream_options"] = json!({"include_usage": true});
    assert!(
        chat(&gw, &stream)
            .await
            .text()
            .await
            .unwrap()
            .ends_with("[DONE]\n\n")
    );
    let mut blocked = user("mail ishaan@berri.ai");
    blocked["guardrails"] = json!(["g"]);
    assert_eq!(chat(&gw, &blocked).await.status(), 400);
    let mut checked = user("fine");
    checked["guardrails"] = json!(["g"]);
    assert_eq!(chat(&gw, &checked).await.status(), 200);
    let mut unknown = user("x");
    unknown["model"] = json!("nope");
    assert_eq!(chat(&gw, &unknown).await.status(), 400);
    let mut fallback = user("x");
    fallback["model"] = json!("flaky");
    assert_eq!(chat(&gw, &fallback).await.status(), 200);

    let after = metrics().await;
    let total_200: f64 = after
        .iter()
        .filter(|(k, _)| k.starts_with(ok) && k.ends_with("status=\"200\"}"))
        .map(|(_, v)| v)
        .sum();
    assert_eq!(total_200, 4.0, "{after:#?}");
    assert_eq!(
        get(
            &after,
            "gateway_requests_total{route=\"/v1/chat/completions\",model_group=\"gpt-3.5-turbo\",deployment=\"\",status=\"400\"}"
        ),
        1.0,
        "the blocked request: {after:#?}"
    );
    assert_eq!(
        get(
            &after,
            "gateway_requests_total{route=\"/v1/chat/completions\",model_group=\"\",deployment=\"\",status=\"400\"}"
        ),
        1.0
    );
    assert_eq!(
        get(
            &after,
            "gateway_guardrail_calls_total{guardrail=\"g\",hook=\"pre_call\",verdict=\"block\"}"
        ),
        1.0
    );
    assert_eq!(
        get(
            &after,
            "gateway_guardrail_calls_total{guardrail=\"g\",hook=\"pre_call\",verdict=\"pass\"}"
        ),
        1.0
    );
    assert_eq!(
        get(
            &after,
            "gateway_guardrail_calls_total{guardrail=\"g\",hook=\"output\",verdict=\"pass\"}"
        ),
        1.0
    );
    assert!(
        get(
            &after,
            "gateway_guardrail_duration_seconds_count{guardrail=\"g\",hook=\"pre_call\"}"
        ) >= 2.0
    );
    assert_eq!(
        get(
            &after,
            "gateway_time_to_first_token_seconds_count{model_group=\"gpt-3.5-turbo\"}"
        ),
        1.0
    );
    assert_eq!(
        get(
            &after,
            "gateway_fallbacks_total{from=\"flaky\",to=\"gpt-3.5-turbo\"}"
        ),
        1.0
    );
    let tokens_in: f64 = after
        .iter()
        .filter(|(k, _)| k.starts_with("gateway_tokens_total") && k.contains("direction=\"in\""))
        .map(|(_, v)| v)
        .sum();
    let tokens_out: f64 = after
        .iter()
        .filter(|(k, _)| k.starts_with("gateway_tokens_total") && k.contains("direction=\"out\""))
        .map(|(_, v)| v)
        .sum();
    assert!(
        tokens_in >= 5.0 && tokens_out >= 5.0,
        "in {tokens_in} out {tokens_out}"
    );
    assert!(after.keys().any(|k| {
        k.starts_with("gateway_upstream_duration_seconds_bucket{model_group=\"gpt-3.5-turbo\"")
    }));
    assert_eq!(get(&after, "gateway_requests_in_flight"), 0.0);
}

#[cfg(unix)]
#[tokio::test]
async fn no_log_line_contains_a_configured_key() {
    logs_hold_no_key_and_no_prompt("debug").await;
}

/// At `trace` the websocket library logs its handshake request (with Aim's
/// Authorization header) and every frame; the gateway caps it.
#[tokio::test]
async fn not_even_at_trace() {
    logs_hold_no_key_and_no_prompt("trace").await;
}

async fn logs_hold_no_key_and_no_prompt(level: &str) {
    const UPSTREAM_KEY: &str = "sk-upstream-SECRET-1";
    const MASTER: &str = "sk-master-SECRET-2";
    const VIRTUAL: &str = "sk-virtual-SECRET-3";
    const AIM_KEY: &str = "aim-SECRET-4";
    let up = MockUpstream::start(UpstreamOptions::default()).await;
    let aim = MockAim::start(AimOptions {
        api_key: AIM_KEY.into(),
        ..Default::default()
    })
    .await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = std::env::temp_dir().join(format!("gateway-logs-{}.yaml", uuid::Uuid::new_v4()));
    std::fs::write(
        &config,
        format!(
            "model_list:\n  - model_name: m\n    litellm_params:\n      model: openai/m\n      api_base: {}\n      api_key: {UPSTREAM_KEY}\nguardrails:\n  - guardrail_name: g\n    litellm_params:\n      guardrail: aim\n      mode: [pre_call, post_call]\n      api_key: {AIM_KEY}\n      api_base: {}\n  - guardrail_name: broken\n    litellm_params:\n      guardrail: aim\n      mode: pre_call\n      fail_open: true\n      api_key: wrong-{AIM_KEY}\n      api_base: {}\ngeneral_settings:\n  master_key: {MASTER}\nvirtual_keys:\n  - key: {VIRTUAL}\n    key_alias: team-a\n",
            up.url(),
            aim.url(),
            aim.url()
        ),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_gateway"))
        .args([
            "--host",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--log-format",
            "json",
            "--config",
        ])
        .arg(&config)
        .env("RUST_LOG", level)
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    // Read as it comes: at trace the log outgrows a pipe's buffer, and a
    // gateway blocked on writing it would answer nothing.
    let mut stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut log = String::new();
        std::io::Read::read_to_string(&mut stderr, &mut log).unwrap();
        log
    });
    let base = format!("http://127.0.0.1:{port}");
    let mut ready = false;
    for _ in 0..200 {
        if client()
            .get(format!("{base}/health/readiness"))
            .send()
            .await
            .is_ok()
        {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(ready);
    let url = format!("{base}/v1/chat/completions");
    let body = |text: &str, guardrails: &[&str], stream: bool| json!({"model": "m", "messages": [{"role": "user", "content": text}], "guardrails": guardrails, "stream": stream});
    for (key, b) in [
        (VIRTUAL, body("hello", &["g"], false)),
        (VIRTUAL, body("hello", &["g"], true)),
        (VIRTUAL, body("streamed-zebra-77", &["g"], true)),
        (MASTER, body("mail ishaan@berri.ai", &["g"], false)),
        (MASTER, body("hello", &["broken"], false)),
        ("sk-not-configured", body("hello", &[], false)),
    ] {
        let _ = client()
            .post(&url)
            .bearer_auth(key)
            .json(&b)
            .send()
            .await
            .unwrap()
            .text()
            .await;
    }
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let (status, log) = tokio::task::spawn_blocking(move || {
        let status = child.wait().unwrap();
        (status, reader.join().unwrap())
    })
    .await
    .unwrap();
    let _ = std::fs::remove_file(&config);
    assert!(status.success());
    let mut saw_call_id = false;
    for line in log.lines().filter(|l| !l.trim().is_empty()) {
        for secret in [UPSTREAM_KEY, MASTER, VIRTUAL, AIM_KEY, "SECRET"] {
            assert!(!line.contains(secret), "a key in the log: {line}");
        }
        let v: Value = serde_json::from_str(line).unwrap_or_else(|_| panic!("not JSON: {line}"));
        saw_call_id |= v.to_string().contains("call_id");
        for prompt in ["ishaan@berri.ai", "streamed-zebra-77"] {
            assert!(!line.contains(prompt), "a prompt in the log: {line}");
        }
    }
    assert!(saw_call_id, "request spans carry the call id:\n{log}");
    assert!(log.contains("guardrail unavailable; failing open"), "{log}");
}
