//! Real LiteLLM configs: what the gateway cannot do is refused (fail safe),
//! everything else loads as LiteLLM loads it. Each rule is a small config of
//! our own, run through `gateway --check` and through a started gateway:
//! a refused config exits non-zero without serving; a loaded one answers,
//! and the mocks show what crossed the wire.

// Tests: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use gateway::config::{self, Env};
use gateway::server::Running;
use gateway_mock::aim::{AimOptions, MockAim};
use gateway_mock::upstream::{Failure, MockUpstream, UpstreamOptions};
use serde_json::{Value, json};

/// A directory of config files, removed when dropped.
struct Dir(PathBuf);

impl Dir {
    fn new() -> Self {
        let path = std::env::temp_dir().join(format!("gateway-compat-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&path).unwrap();
        Dir(path)
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.0.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(&path, text).unwrap();
        path
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn gateway_bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_gateway"));
    c.env_remove("GATEWAY_CONFIG")
        .env_remove("AIM_API_KEY")
        .env_remove("OPENAI_API_KEY")
        .env_remove("OPENAI_API_BASE")
        .env_remove("RUST_LOG");
    c
}

/// `gateway --check --config path`: exit code and stdout.
fn check(path: &Path) -> (i32, String) {
    let out = gateway_bin()
        .arg("--check")
        .arg("--config")
        .arg(path)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    (out.status.code().unwrap_or(-1), format!("{stdout}{stderr}"))
}

/// Start the gateway on `path` as an operator would. It must exit on its
/// own, where a served config would keep running (the bound is generous,
/// for a loaded machine): its code and stderr.
fn start_refused(path: &Path) -> (i32, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = gateway_bin()
        .args(["--host", "127.0.0.1", "--port", &port.to_string()])
        .arg("--config")
        .arg(path)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "the gateway is serving a config it should refuse: {}",
                path.display()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    // It never got as far as listening (the port may be anyone's by now).
    assert!(!stderr.contains("listening"), "{stderr}");
    (out.status.code().unwrap_or(-1), stderr)
}

/// `--check` passes, then a gateway started on the file (as `--config`
/// reads it: includes and all).
async fn start(path: &Path) -> (Running, String) {
    let (code, report) = check(path);
    assert_eq!(code, 0, "{report}");
    let (config, _) = config::load(path, &Env::default()).unwrap_or_else(|e| panic!("{e}"));
    let gw = Running::start(config, "127.0.0.1:0").await.unwrap();
    (gw, report)
}

fn ask(model: &str) -> Value {
    json!({"model": model, "messages": [{"role": "user", "content": "hello"}]})
}

/// The `model` of each request the mock received.
fn upstream_models(up: &MockUpstream) -> Vec<String> {
    up.requests()
        .iter()
        .map(|r| r.json()["model"].as_str().unwrap_or_default().to_owned())
        .collect()
}

async fn model_ids(gw: &Running, key: Option<&str>) -> Vec<String> {
    let mut req = client().get(format!("{}/v1/models", gw.url()));
    if let Some(k) = key {
        req = req.bearer_auth(k);
    }
    let body: Value = req.send().await.unwrap().json().await.unwrap();
    body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_owned())
        .collect()
}

async fn chat_as(gw: &Running, key: &str, body: &Value) -> reqwest::Response {
    client()
        .post(format!("{}/v1/chat/completions", gw.url()))
        .bearer_auth(key)
        .json(body)
        .send()
        .await
        .unwrap()
}

const MODEL: &str = "model_list:\n  - model_name: m\n    litellm_params:\n      model: openai/m\n      api_key: sk-x\n";

#[test]
fn protections_the_gateway_cannot_give_are_refused_at_startup() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "general_settings:\n  custom_auth: custom_auth.user_api_key_auth\n",
            "general_settings.custom_auth",
            "refused: auth you rely on",
        ),
        (
            "general_settings:\n  enable_jwt_auth: true\n",
            "general_settings.enable_jwt_auth",
            "refused: auth you rely on",
        ),
        (
            "general_settings:\n  litellm_jwtauth:\n    admin_jwt_scope: admin\n",
            "general_settings.litellm_jwtauth",
            "refused: auth you rely on",
        ),
        (
            "general_settings:\n  allowed_ips: [10.0.0.1]\n",
            "general_settings.allowed_ips",
            "refused: auth you rely on",
        ),
        (
            "general_settings:\n  enforce_user_param: true\n",
            "general_settings.enforce_user_param",
            "refused: checks you rely on",
        ),
        (
            "litellm_settings:\n  callbacks: [presidio]\n",
            "litellm_settings.callbacks[0]",
            "refused: checks you rely on",
        ),
        (
            "litellm_settings:\n  callbacks: [langfuse, lakera_prompt_injection]\n",
            "litellm_settings.callbacks[1]",
            "refused: checks you rely on",
        ),
        (
            "litellm_settings:\n  callbacks: [llmguard_moderations]\n",
            "litellm_settings.callbacks[0]",
            "refused: checks you rely on",
        ),
        (
            "litellm_settings:\n  callbacks: [hide_secrets]\n",
            "litellm_settings.callbacks[0]",
            "refused: checks you rely on",
        ),
        (
            "litellm_settings:\n  callbacks: [aim]\n",
            "litellm_settings.callbacks[0]",
            "refused: checks you rely on",
        ),
        (
            "litellm_settings:\n  callbacks: my_hooks.proxy_handler_instance\n",
            "litellm_settings.callbacks",
            "refused: checks you rely on",
        ),
        (
            "litellm_settings:\n  guardrails:\n    - prompt_injection:\n        callbacks: [lakera_prompt_injection]\n        default_on: true\n",
            "litellm_settings.guardrails[0].prompt_injection.callbacks[0]",
            "refused: checks you rely on",
        ),
        (
            "guardrails:\n  - guardrail_name: pii\n    litellm_params:\n      guardrail: presidio\n      mode: pre_call\n",
            "guardrails[0].litellm_params.guardrail",
            "refused: checks you rely on",
        ),
        (
            "litellm_settings:\n  max_budget: 100\n",
            "litellm_settings.max_budget",
            "refused: limits you rely on",
        ),
        (
            "virtual_keys:\n  - key: sk-1\n    max_budget: 5\n",
            "virtual_keys[0].max_budget",
            "refused: limits you rely on",
        ),
        (
            "router_settings:\n  enable_tag_filtering: true\n",
            "router_settings.enable_tag_filtering",
            "refused: checks you rely on",
        ),
        // What LiteLLM itself refuses stays an error.
        (
            "router_settings:\n  routing_strategy: lowest-latency\n",
            "router_settings.routing_strategy",
            "error: invalid config",
        ),
        (
            "router_settings:\n  fallbacks: [m]\n",
            "router_settings.fallbacks[0]",
            "error: invalid config",
        ),
    ];
    let dir = Dir::new();
    for (i, (extra, path, heading)) in cases.iter().enumerate() {
        let file = dir.write(&format!("c{i}.yaml"), &format!("{MODEL}{extra}"));
        let (code, report) = check(&file);
        assert_eq!(code, 1, "{extra}\n{report}");
        let listed = format!("{heading}\n  {path}: ");
        assert!(report.contains(&listed), "{listed:?} in:\n{report}");
        let (code, stderr) = start_refused(&file);
        assert_eq!(code, 1, "{extra}\n{stderr}");
        assert!(stderr.contains(&listed), "{listed:?} in:\n{stderr}");
    }
    // Switched off, the same keys ask for nothing and the config loads.
    let file = dir.write(
        "off.yaml",
        &format!(
            "{MODEL}general_settings:\n  enable_jwt_auth: false\n  enforce_user_param: false\n  custom_auth: null\n"
        ),
    );
    let (code, report) = check(&file);
    assert_eq!(code, 0, "{report}");
}

#[tokio::test]
async fn yaml_1_1_duplicate_keys_merge_keys_and_empty_env_values_load() {
    let up = MockUpstream::start(UpstreamOptions::default()).await;
    let dir = Dir::new();
    // The duplicate api_base: PyYAML keeps the last one, the mock's.
    let file = dir.write(
        "config.yaml",
        &format!(
            "environment_variables:\n  NOT_SET_HERE:\n  BLANK: ''\nmodel_list:\n  - model_name: m\n    litellm_params: &base\n      model: openai/m-upstream\n      api_base: http://127.0.0.1:9/v1\n      api_key: sk-upstream\n      tpm: 80_000\n      rpm: 1_000\n      api_base: {url}\n  - model_name: m2\n    litellm_params:\n      <<: *base\n      model: openai/m2-upstream\n",
            url = up.url()
        ),
    );
    let (gw, report) = start(&file).await;
    assert!(
        report.contains("model_list[0].litellm_params.api_base: duplicate key at line 12: the last value is used"),
        "{report}"
    );
    assert!(
        report.contains("environment_variables.NOT_SET_HERE: no value"),
        "{report}"
    );
    for name in ["m", "m2"] {
        let r = chat(&gw, &ask(name)).await;
        assert_eq!(r.status(), 200, "{name}");
    }
    assert_eq!(upstream_models(&up), ["m-upstream", "m2-upstream"]);
}

#[tokio::test]
async fn include_merges_files_relative_to_the_config_that_names_them() {
    let up = MockUpstream::start(UpstreamOptions::default()).await;
    let dir = Dir::new();
    let entry = |name: &str| {
        format!(
            "  - model_name: {name}\n    litellm_params:\n      model: openai/{name}-upstream\n      api_base: {}\n      api_key: sk-upstream\n",
            up.url()
        )
    };
    let root = dir.write(
        "config.yaml",
        &format!("include: [models/more.yaml]\nmodel_list:\n{}", entry("a")),
    );
    // A nested include is relative to the file that declares it.
    dir.write(
        "models/more.yaml",
        &format!("include: [extra.yaml]\nmodel_list:\n{}", entry("b")),
    );
    // Naming the root again ends there (each file is read once).
    dir.write(
        "models/extra.yaml",
        &format!(
            "include: [../config.yaml]\nmodel_list:\n{}router_settings:\n  fallbacks: [{{a: [c]}}]\n",
            entry("c")
        ),
    );
    let (gw, report) = start(&root).await;
    assert!(report.contains("included: "), "{report}");
    assert_eq!(model_ids(&gw, None).await, ["a", "b", "c"]);
    let r = chat(&gw, &ask("c")).await;
    assert_eq!(r.status(), 200);
    assert_eq!(upstream_models(&up), ["c-upstream"]);

    // A problem in an included file names that file; a missing one is an error.
    dir.write(
        "models/extra.yaml",
        "model_list:\n  - model_name: c\n    litellm_params:\n      model: bogus/c\n",
    );
    let (code, report) = check(&root);
    assert_eq!(code, 1, "{report}");
    assert!(
        report.contains("model_list[2].litellm_params.model: unknown provider 'bogus'")
            && report.contains("extra.yaml)"),
        "{report}"
    );
    let missing = dir.write("missing.yaml", &format!("include: [nope.yaml]\n{MODEL}"));
    let (code, report) = check(&missing);
    assert_eq!(code, 1, "{report}");
    assert!(report.contains("included file not found"), "{report}");
}

#[tokio::test]
async fn models_of_kinds_the_gateway_does_not_serve_load_and_get_a_400() {
    let up = MockUpstream::start(UpstreamOptions::default()).await;
    let dir = Dir::new();
    let file = dir.write(
        "config.yaml",
        &format!(
            "model_list:\n  - model_name: chat\n    litellm_params:\n      model: openai/chat-upstream\n      api_base: {url}\n      api_key: sk-upstream\n  - model_name: dall-e-3\n    litellm_params:\n      model: dall-e-3\n      api_key: sk-upstream\n  - model_name: embeddings\n    litellm_params:\n      model: text-embedding-ada-002\n      api_key: sk-upstream\n  - model_name: dall-e-2\n    litellm_params:\n      model: azure/\n      api_base: https://example.openai.azure.com\n      api_key: k\n  - model_name: speech\n    litellm_params:\n      model: vertex_ai/some-tts\n    model_info:\n      mode: audio_speech\n  - model_name: '*'\n    litellm_params:\n      model: 'openai/*'\n      api_base: {url}\n      api_key: sk-upstream\n",
            url = up.url()
        ),
    );
    let (gw, report) = start(&file).await;
    assert!(
        report.contains(
            "loaded: models the gateway does not serve (a request for one gets a 400)\n  model_list[1]: 'dall-e-3' is an image generation model"
        ),
        "{report}"
    );
    assert!(report.contains("not served (4):"), "{report}");
    for (name, kind) in [
        ("dall-e-3", "an image generation model"),
        ("embeddings", "an embedding model"),
        ("dall-e-2", "an image generation model"),
        ("speech", "a text-to-speech model"),
    ] {
        let r = chat(&gw, &ask(name)).await;
        assert_eq!(r.status(), 400, "{name}");
        let body: Value = r.json().await.unwrap();
        let message = body["error"]["message"].as_str().unwrap();
        assert_eq!(
            message,
            format!(
                "model '{name}' is {kind}; this gateway serves chat completions and does not serve it"
            )
        );
        assert_eq!(body["error"]["param"], "model");
    }
    // Not even the catch-all wildcard sent them upstream.
    assert!(up.requests().is_empty());
    assert_eq!(model_ids(&gw, None).await, ["chat"]);
}

#[tokio::test]
async fn a_catch_all_wildcard_sends_the_requested_name_upstream() {
    let explicit = MockUpstream::start(UpstreamOptions::default()).await;
    let any = MockUpstream::start(UpstreamOptions::default()).await;
    let dir = Dir::new();
    let file = dir.write(
        "config.yaml",
        &format!(
            "model_list:\n  - model_name: '*'\n    litellm_params:\n      model: 'openai/*'\n      api_base: {}\n      api_key: sk-upstream\n  - model_name: gpt-3.5-turbo\n    litellm_params:\n      model: openai/explicit-upstream\n      api_base: {}\n      api_key: sk-upstream\n",
            any.url(),
            explicit.url()
        ),
    );
    let (gw, report) = start(&file).await;
    assert!(report.contains("  * (wildcard) -> openai/*"), "{report}");
    let r = chat(&gw, &ask("gpt-4o-mini")).await;
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "x-litellm-model-group"), Some("gpt-4o-mini"));
    let mut streamed = ask("my-org/custom-model");
    streamed["stream"] = json!(true);
    let r = chat(&gw, &streamed).await;
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("[DONE]"));
    // The explicit group wins over the wildcard.
    let r = chat(&gw, &ask("gpt-3.5-turbo")).await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        upstream_models(&any),
        ["gpt-4o-mini", "my-org/custom-model"]
    );
    assert_eq!(upstream_models(&explicit), ["explicit-upstream"]);
    // /v1/models lists the explicit groups.
    assert_eq!(model_ids(&gw, None).await, ["gpt-3.5-turbo"]);
}

#[tokio::test]
async fn a_provider_wildcard_serves_its_prefix_and_the_bare_names_of_its_provider() {
    let up = MockUpstream::start(UpstreamOptions::default()).await;
    let dir = Dir::new();
    let file = dir.write(
        "config.yaml",
        &format!(
            "model_list:\n  - model_name: 'openai/*'\n    litellm_params:\n      model: 'openai/*'\n      api_base: {}\n      api_key: sk-upstream\n",
            up.url()
        ),
    );
    let (gw, _) = start(&file).await;
    assert_eq!(chat(&gw, &ask("openai/gpt-4o")).await.status(), 200);
    // LiteLLM infers OpenAI for gpt-*: it matches as openai/gpt-4o-mini.
    assert_eq!(chat(&gw, &ask("gpt-4o-mini")).await.status(), 200);
    let r = chat(&gw, &ask("mistral-large")).await;
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Invalid model name passed in model=mistral-large")
    );
    assert_eq!(upstream_models(&up), ["gpt-4o", "gpt-4o-mini"]);
}

#[tokio::test]
async fn fallbacks_may_name_a_model_a_wildcard_serves() {
    let failing = MockUpstream::start(UpstreamOptions {
        failure: Some(Failure::Status {
            status: 500,
            body: r#"{"error":{"message":"down","type":"server_error","param":null,"code":null}}"#
                .to_owned(),
            retry_after: None,
        }),
        ..Default::default()
    })
    .await;
    let any = MockUpstream::start(UpstreamOptions::default()).await;
    let dir = Dir::new();
    let file = dir.write(
        "config.yaml",
        &format!(
            "model_list:\n  - model_name: primary\n    litellm_params:\n      model: openai/primary-upstream\n      api_base: {}\n      api_key: sk-upstream\n  - model_name: '*'\n    litellm_params:\n      model: 'openai/*'\n      api_base: {}\n      api_key: sk-upstream\nrouter_settings:\n  fallbacks: [{{primary: [gpt-4o-mini]}}]\n",
            failing.url(),
            any.url()
        ),
    );
    let (gw, _) = start(&file).await;
    let r = chat(&gw, &ask("primary")).await;
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "x-litellm-attempted-fallbacks"), Some("1"));
    assert_eq!(header(&r, "x-litellm-model-group"), Some("gpt-4o-mini"));
    assert_eq!(upstream_models(&failing), ["primary-upstream"]);
    assert_eq!(upstream_models(&any), ["gpt-4o-mini"]);
}

#[tokio::test]
async fn a_virtual_keys_models_bound_what_a_wildcard_serves_it() {
    let up = MockUpstream::start(UpstreamOptions::default()).await;
    let dir = Dir::new();
    let file = dir.write(
        "config.yaml",
        &format!(
            "model_list:\n  - model_name: '*'\n    litellm_params:\n      model: 'openai/*'\n      api_base: {}\n      api_key: sk-upstream\nvirtual_keys:\n  - key: sk-mini\n    models: [gpt-4o-mini]\n  - key: sk-openai\n    models: ['openai/*']\n  - key: sk-blocked\n    blocked: true\n",
            up.url()
        ),
    );
    let (gw, _) = start(&file).await;
    for (key, model, status) in [
        ("sk-mini", "gpt-4o-mini", 200),
        ("sk-mini", "gpt-4o", 403),
        ("sk-mini", "anything", 403),
        // `openai/*` covers OpenAI's bare names, as LiteLLM reads them.
        ("sk-openai", "gpt-4o", 200),
        // As in LiteLLM, `*` matches the whole name: `openai/o3` goes up as it is.
        ("sk-openai", "openai/o3", 200),
        ("sk-openai", "mistral-large", 403),
        ("sk-blocked", "gpt-4o", 401),
    ] {
        let r = chat_as(&gw, key, &ask(model)).await;
        assert_eq!(r.status(), status, "{key} asking for {model}");
    }
    assert_eq!(upstream_models(&up), ["gpt-4o-mini", "gpt-4o", "openai/o3"]);
}

#[tokio::test]
async fn legacy_litellm_settings_guardrails_run_as_guardrails() {
    let up = MockUpstream::start(UpstreamOptions::default()).await;
    let aim = MockAim::start(AimOptions::default()).await;
    let dir = Dir::new();
    let file = dir.write(
        "config.yaml",
        &format!(
            "model_list:\n  - model_name: m\n    litellm_params:\n      model: openai/m-upstream\n      api_base: {}\n      api_key: sk-upstream\nlitellm_settings:\n  guardrails:\n    - aim-everywhere:\n        callbacks: [aim]\n        default_on: true\n        callback_args:\n          aim:\n            api_key: aim-mock-key\n            api_base: {}\n",
            up.url(),
            aim.url()
        ),
    );
    let (gw, report) = start(&file).await;
    assert!(
        report.contains("aim-everywhere (aim, [pre_call, post_call], default_on)"),
        "{report}"
    );
    let blocked = json!({"model": "m", "messages": [{"role": "user", "content": "hi my email is ishaan@berri.ai"}]});
    let r = chat(&gw, &blocked).await;
    assert_eq!(r.status(), 400);
    assert_eq!(
        header(&r, "x-litellm-applied-guardrails"),
        Some("aim-everywhere")
    );
    assert!(up.requests().is_empty(), "the model was called");
    let r = chat(&gw, &ask("m")).await;
    assert_eq!(r.status(), 200);
    // Checked before the call and after it, for the clean request.
    assert_eq!(aim.requests().len(), 3);
    assert_eq!(upstream_models(&up), ["m-upstream"]);
}
