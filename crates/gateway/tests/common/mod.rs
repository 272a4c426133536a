//! Shared by the integration tests: start a real gateway on an ephemeral
//! port from YAML, talk to it over HTTP, read SSE.
#![allow(dead_code)]

use std::time::Duration;

use gateway::config::{self, Env};
use gateway::server::Running;
use serde_json::Value;

/// Start a gateway serving `yaml` on 127.0.0.1:0.
pub async fn gateway(yaml: &str) -> Running {
    gateway_with_env(yaml, &Env::default()).await
}

pub async fn gateway_with_env(yaml: &str, env: &Env) -> Running {
    let (config, _warnings) = config::parse(yaml, env).unwrap_or_else(|e| panic!("{e}\n{yaml}"));
    Running::start(config, "127.0.0.1:0")
        .await
        .expect("gateway starts")
}

/// The test process's HTTP client (built once: building one loads the
/// system's CA store, which costs tens of milliseconds). Each test talks to
/// its own gateway port, so pooled connections are never shared by tests.
pub fn client() -> reqwest::Client {
    static CLIENT: std::sync::OnceLock<reqwest::Client> = std::sync::OnceLock::new();
    CLIENT
        .get_or_init(|| {
            gateway::install_crypto();
            reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("client")
        })
        .clone()
}

/// POST a chat completion body to the gateway.
pub async fn chat(gw: &Running, body: &Value) -> reqwest::Response {
    client()
        .post(format!("{}/v1/chat/completions", gw.url()))
        .json(body)
        .send()
        .await
        .expect("request sent")
}

/// A model_list entry named `name` pointing at `api_base`.
pub fn model(name: &str, api_base: &str) -> String {
    format!(
        "  - model_name: {name}\n    litellm_params:\n      model: openai/{name}-upstream\n      api_base: {api_base}\n      api_key: sk-upstream-secret\n"
    )
}

pub fn user(text: &str) -> Value {
    serde_json::json!({"model": "gpt-3.5-turbo", "messages": [{"role": "user", "content": text}]})
}

/// The `data:` payloads of an SSE body, in order.
pub fn sse_data(body: &str) -> Vec<String> {
    body.split("\n\n")
        .filter_map(|frame| frame.strip_prefix("data: "))
        .map(str::to_owned)
        .collect()
}

/// Wait until `f` holds, up to 5 s.
pub async fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    for _ in 0..500 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting for: {what}");
}

pub fn header<'a>(r: &'a reqwest::Response, name: &str) -> Option<&'a str> {
    r.headers().get(name).and_then(|v| v.to_str().ok())
}

/// The gateway's `/metrics` text.
pub async fn metrics_text(gw: &Running) -> String {
    client()
        .get(format!("{}/metrics", gw.url()))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics body")
}

/// Every JSON string literal in `bytes` (keys too), decoded, each followed
/// by a separator; a literal that does not decode is kept as written. A
/// string inside a decoded string (a tool input's partial JSON) is decoded
/// too.
pub fn json_strings(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut out = String::new();
    let mut chars = text.char_indices();
    while let Some((start, c)) = chars.next() {
        if c != '"' {
            continue;
        }
        let mut end = start;
        let mut escaped = false;
        for (i, c) in chars.by_ref() {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => {
                    end = i;
                    break;
                }
                _ => {}
            }
        }
        let literal = &text[start..=end];
        match serde_json::from_str::<String>(literal) {
            Ok(s) => {
                out.push_str(&s);
                if s.contains('"') {
                    out.push('\u{1}');
                    out.push_str(&json_strings(s.as_bytes()));
                }
            }
            Err(_) => out.push_str(literal),
        }
        out.push('\u{1}');
    }
    out
}
