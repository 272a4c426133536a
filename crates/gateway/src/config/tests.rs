//! The config decoder's unit tests.

use super::*;

fn ok(text: &str) -> (Config, Vec<Issue>) {
    parse(text, &Env::default()).unwrap_or_else(|e| panic!("{e}"))
}

fn err(text: &str) -> Errors {
    parse(text, &Env::default()).expect_err("should fail")
}

#[test]
fn minimal_openai() {
    let (c, w) = ok(
        "model_list:\n  - model_name: gpt\n    litellm_params:\n      model: openai/gpt-4o\n      api_key: sk-x\n",
    );
    assert!(w.is_empty(), "{w:?}");
    let d = &c.deployments[0];
    assert_eq!(
        d.url.as_ref().unwrap().to_string(),
        "https://api.openai.com/v1/chat/completions"
    );
    assert_eq!(d.upstream_model, "gpt-4o");
    assert_eq!(d.api_key.as_ref().unwrap().expose(), "sk-x");
}

#[test]
fn env_overlay_and_missing_var() {
    let env = Env::default().with("K1", "v1");
    let (c, _) = parse(
        "model_list:\n  - model_name: a\n    litellm_params:\n      model: hosted_vllm/m\n      api_base: http://h/v1/\n      api_key: os.environ/K1\n",
        &env,
    )
    .unwrap();
    assert_eq!(c.deployments[0].api_key.as_ref().unwrap().expose(), "v1");
    assert_eq!(
        c.deployments[0].url.as_ref().unwrap().to_string(),
        "http://h/v1/chat/completions"
    );

    let e = err(
        "model_list:\n  - model_name: a\n    litellm_params:\n      model: openai/m\n      api_key: os.environ/GATEWAY_TEST_SURELY_UNSET\n",
    );
    assert_eq!(e.errors[0].path, "model_list[0].litellm_params.api_key");
    assert!(e.errors[0].message.contains("GATEWAY_TEST_SURELY_UNSET"));
}

#[test]
fn environment_variables_feed_os_environ() {
    let (c, _) = ok(
        "environment_variables:\n  MY_KEY: abc\nmodel_list:\n  - model_name: a\n    litellm_params:\n      model: openai/m\n      api_key: os.environ/MY_KEY\n",
    );
    assert_eq!(c.deployments[0].api_key.as_ref().unwrap().expose(), "abc");
}

#[test]
fn all_errors_at_once() {
    let e = err(
        "model_list:\n  - model_name: a\n    litellm_params:\n      model: nosuch/m\n  - model_name: b\n    litellm_params:\n      model: openai/m\n      rpm: lots\nguardrails:\n  - guardrail_name: g\n    litellm_params:\n      guardrail: aim\n      mode: [pre_call, sometimes]\n      api_key: k\n",
    );
    let paths: Vec<&str> = e.errors.iter().map(|i| i.path.as_str()).collect();
    assert!(
        paths.contains(&"model_list[0].litellm_params.model"),
        "{paths:?}"
    );
    assert!(
        paths.contains(&"model_list[1].litellm_params.rpm"),
        "{paths:?}"
    );
    assert!(
        paths.contains(&"guardrails[0].litellm_params.mode"),
        "{paths:?}"
    );
}

#[test]
fn unknown_keys_warn() {
    let (_, w) = ok(
        "model_list:\n  - model_name: a\n    litellm_params:\n      model: openai/m\n      api_key: k\n      drop_params: true\nlitellm_settings:\n  set_verbose: true\n",
    );
    let paths: Vec<&str> = w.iter().map(|i| i.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "model_list[0].litellm_params.drop_params",
            "litellm_settings.set_verbose"
        ]
    );
}

#[test]
fn aim_key_required_and_base_trimmed() {
    let e = err(
        "guardrails:\n  - guardrail_name: g\n    litellm_params:\n      guardrail: aim\n      mode: pre_call\n      api_base: http://x/\n",
    );
    // Only fails when AIM_API_KEY is not set in the test environment.
    if std::env::var("AIM_API_KEY").is_err() {
        assert!(e.errors[0].message.starts_with("Couldn't get Aim api key"));
    }
    let (c, _) = ok(
        "guardrails:\n  - guardrail_name: g\n    litellm_params:\n      guardrail: aim\n      mode: pre_call\n      api_key: k\n      api_base: http://x/\n",
    );
    assert_eq!(c.guardrails[0].api_base, "http://x");
    assert!(c.guardrails[0].modes.pre_call && !c.guardrails[0].modes.post_call);
}

#[test]
fn guardrail_env_fallbacks_and_cato_defaults() {
    let env = Env::default()
        .with("AIM_API_KEY", "from-env")
        .with("AIM_API_BASE", "https://outpost.example/");
    let (c, _) = parse(
        "guardrails:\n  - guardrail_name: a\n    litellm_params:\n      guardrail: aim\n      mode: [pre_call]\n",
        &env,
    )
    .unwrap();
    assert_eq!(c.guardrails[0].api_key.expose(), "from-env");
    assert_eq!(c.guardrails[0].api_base, "https://outpost.example");
    let env = Env::default().with("CATO_API_KEY", "cato-key");
    let (c, _) = parse(
        "guardrails:\n  - guardrail_name: c\n    litellm_params:\n      guardrail: cato_networks\n      mode: post_call\n",
        &env,
    )
    .unwrap();
    assert_eq!(c.guardrails[0].vendor, Vendor::CatoNetworks);
    assert_eq!(c.guardrails[0].api_key.expose(), "cato-key");
    assert_eq!(c.guardrails[0].api_base, DEFAULT_CATO_BASE);
    // A vendor LiteLLM has and the gateway does not is refused; one
    // nobody has is invalid.
    let e = err(
        "guardrails:\n  - guardrail_name: p\n    litellm_params:\n      guardrail: presidio\n      mode: pre_call\n",
    );
    assert_eq!(e.errors[0].kind, Kind::RefusedCheck);
    assert!(
        e.errors[0]
            .message
            .contains("guardrail vendor 'presidio' is not implemented")
    );
    let e = err(
        "guardrails:\n  - guardrail_name: p\n    litellm_params:\n      guardrail: nosuch\n      mode: pre_call\n",
    );
    assert_eq!(e.errors[0].kind, Kind::Invalid);
    assert!(
        e.errors[0]
            .message
            .contains("unknown guardrail vendor 'nosuch'")
    );
}

#[test]
fn router_settings_win() {
    let (c, _) = ok(
        "model_list:\n  - model_name: a\n    litellm_params: {model: openai/m, api_key: k}\n  - model_name: b\n    litellm_params: {model: openai/m, api_key: k}\nrouter_settings:\n  num_retries: 3\n  fallbacks: [{a: [b]}]\nlitellm_settings:\n  num_retries: 1\n  request_timeout: 12\n",
    );
    assert_eq!(c.router.num_retries, 3);
    assert_eq!(c.router.timeout, Duration::from_secs(12));
    assert_eq!(
        c.router.fallbacks,
        vec![("a".to_owned(), vec!["b".to_owned()])]
    );
}

fn refusals(text: &str) -> Vec<(String, Kind)> {
    err(text)
        .errors
        .into_iter()
        .map(|i| (i.path, i.kind))
        .collect()
}

const MODEL: &str = "model_list:\n  - model_name: m\n    litellm_params:\n      model: openai/m\n      api_key: k\n";

#[test]
fn protections_the_gateway_cannot_give_are_refused() {
    for (extra, path, kind) in [
        (
            "general_settings:\n  custom_auth: my.auth\n",
            "general_settings.custom_auth",
            Kind::RefusedAuth,
        ),
        (
            "general_settings:\n  enable_jwt_auth: true\n",
            "general_settings.enable_jwt_auth",
            Kind::RefusedAuth,
        ),
        (
            "general_settings:\n  litellm_jwtauth: {user_id_jwt_field: sub}\n",
            "general_settings.litellm_jwtauth",
            Kind::RefusedAuth,
        ),
        (
            "general_settings:\n  allowed_ips: []\n",
            "general_settings.allowed_ips",
            Kind::RefusedAuth,
        ),
        (
            "general_settings:\n  enforce_user_param: true\n",
            "general_settings.enforce_user_param",
            Kind::RefusedCheck,
        ),
        (
            "litellm_settings:\n  callbacks: [lakera_prompt_injection]\n",
            "litellm_settings.callbacks[0]",
            Kind::RefusedCheck,
        ),
        (
            "litellm_settings:\n  callbacks: hooks.proxy_handler_instance\n",
            "litellm_settings.callbacks",
            Kind::RefusedCheck,
        ),
        (
            "litellm_settings:\n  callbacks: [dynamic_rate_limiter_v3]\n",
            "litellm_settings.callbacks[0]",
            Kind::RefusedLimit,
        ),
        (
            "litellm_settings:\n  max_budget: 10\n",
            "litellm_settings.max_budget",
            Kind::RefusedLimit,
        ),
        (
            "router_settings:\n  enable_tag_filtering: true\n",
            "router_settings.enable_tag_filtering",
            Kind::RefusedCheck,
        ),
        (
            "virtual_keys:\n  - key: sk-1\n    expires: '2030-01-01'\n",
            "virtual_keys[0].expires",
            Kind::RefusedAuth,
        ),
        (
            "virtual_keys:\n  - key: sk-1\n    model_rpm_limit: {m: 1}\n",
            "virtual_keys[0].model_rpm_limit",
            Kind::RefusedLimit,
        ),
    ] {
        let found = refusals(&format!("{MODEL}{extra}"));
        assert_eq!(found, [(path.to_owned(), kind)], "{extra}");
    }
    // Per model: guardrails, and a team's own model.
    let found = refusals(
        "model_list:\n  - model_name: m\n    litellm_params:\n      model: openai/m\n      api_key: k\n      guardrails: [g]\n    model_info:\n      team_id: t1\n",
    );
    assert_eq!(
        found,
        [
            (
                "model_list[0].litellm_params.guardrails".to_owned(),
                Kind::RefusedCheck
            ),
            (
                "model_list[0].model_info.team_id".to_owned(),
                Kind::RefusedAuth
            ),
        ]
    );
    // Switched off, they ask for nothing.
    let (_, w) = ok(&format!(
        "{MODEL}general_settings:\n  enable_jwt_auth: false\n  custom_auth: null\n  enforce_user_param: false\n"
    ));
    assert!(w.is_empty(), "{w:?}");
}

#[test]
fn ignored_keys_are_grouped_by_meaning() {
    let (_, w) = ok(&format!(
        "{MODEL}litellm_settings:\n  callbacks: [langfuse, prometheus]\n  failure_callback: [my.logger]\n  cache: true\n  turn_off_message_logging: true\ngeneral_settings:\n  database_url: x\n  forward_client_headers_to_llm_api: true\n  ui_access_mode: all\nfoo: 1\n"
    ));
    let kinds: Vec<(&str, Kind)> = w.iter().map(|i| (i.path.as_str(), i.kind)).collect();
    for expected in [
        ("litellm_settings.callbacks[0]", Kind::LoggingCallback),
        ("litellm_settings.callbacks[1]", Kind::LoggingCallback),
        (
            "litellm_settings.failure_callback[0]",
            Kind::LoggingCallback,
        ),
        ("litellm_settings.cache", Kind::NotServed),
        ("general_settings.database_url", Kind::NeedsDatabase),
        (
            "general_settings.forward_client_headers_to_llm_api",
            Kind::Loosens,
        ),
        ("general_settings.ui_access_mode", Kind::AdminUi),
        ("foo", Kind::Unsupported),
    ] {
        assert!(kinds.contains(&expected), "{expected:?} in {kinds:?}");
    }
    assert_eq!(kinds.len(), 8, "{kinds:?}");
}

#[test]
fn legacy_guardrails_are_guardrails() {
    let env = Env::default().with("AIM_API_KEY", "env-key");
    let (c, _) = parse(
        &format!("{MODEL}litellm_settings:\n  guardrails:\n    - aim-default:\n        callbacks: [aim]\n        default_on: true\n    - aim-asked:\n        callbacks: [aim]\n        callback_args:\n          aim: {{mode: during_call, api_key: own, api_base: 'http://aim/'}}\n    - logs-only:\n        callbacks: [presidio]\n        logging_only: true\n"),
        &env,
    )
    .unwrap();
    let g = &c.guardrails;
    assert_eq!(g.len(), 2);
    assert_eq!(
        (g[0].name.as_str(), g[0].vendor, g[0].default_on),
        ("aim-default", Vendor::Aim, true)
    );
    assert_eq!(
        g[0].modes,
        Modes {
            pre_call: true,
            during_call: false,
            post_call: true
        }
    );
    assert_eq!(g[0].api_key.expose(), "env-key");
    assert_eq!((g[1].name.as_str(), g[1].default_on), ("aim-asked", false));
    assert_eq!(
        g[1].modes,
        Modes {
            pre_call: false,
            during_call: true,
            post_call: false
        }
    );
    assert_eq!(
        (g[1].api_key.expose(), g[1].api_base.as_str()),
        ("own", "http://aim")
    );
    // A guardrail it cannot run is refused; a name clash is an error.
    let e = parse(
        &format!("{MODEL}litellm_settings:\n  guardrails:\n    - pii:\n        callbacks: [aim, presidio]\n"),
        &env,
    )
    .unwrap_err();
    let found: Vec<(&str, Kind)> = e.errors.iter().map(|i| (i.path.as_str(), i.kind)).collect();
    assert_eq!(
        found,
        [(
            "litellm_settings.guardrails[0].pii.callbacks[1]",
            Kind::RefusedCheck
        )]
    );
}

#[test]
fn models_of_other_kinds_load_unserved() {
    let (c, w) = ok(
        "model_list:\n  - model_name: img\n    litellm_params: {model: dall-e-3, api_key: k}\n  - model_name: emb\n    litellm_params: {model: text-embedding-ada-002, api_key: k}\n  - model_name: dall-e-2\n    litellm_params: {model: azure/, api_base: 'https://x', api_key: k}\n  - model_name: speech\n    litellm_params: {model: vertex_ai/whatever}\n    model_info: {mode: audio_speech}\n  - model_name: chat\n    litellm_params: {model: gpt-4o, api_key: k}\n",
    );
    let kinds: Vec<(&str, &str)> = c
        .router
        .unserved
        .iter()
        .map(|u| (u.model_name.as_str(), u.kind.mode()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("img", "image_generation"),
            ("emb", "embedding"),
            ("dall-e-2", "image_generation"),
            ("speech", "audio_speech")
        ]
    );
    assert_eq!(c.deployments.len(), 1);
    assert_eq!(c.deployments[0].provider, "openai");
    assert_eq!(w.iter().filter(|i| i.kind == Kind::Unserved).count(), 4);
    // An Azure chat entry still needs its deployment name.
    let e = err(
        "model_list:\n  - model_name: gpt-4o\n    litellm_params: {model: azure/, api_base: 'https://x', api_key: k}\n",
    );
    assert_eq!(e.errors[0].path, "model_list[0].litellm_params.model");
    // claude-* means Anthropic.
    let (c, _) = ok(
        "model_list:\n  - model_name: c\n    litellm_params: {model: claude-3-5-sonnet-20240620, api_key: k}\n",
    );
    assert_eq!(c.deployments[0].flavor, Flavor::Anthropic);
}

#[test]
fn anthropic_deployments() {
    let env = Env::default().with("ANTHROPIC_API_BASE", "http://env-base:9");
    let (c, w) = parse(
        "model_list:\n  - model_name: a\n    litellm_params: {model: anthropic/claude-x, api_key: sk-ant-1, drop_params: true}\n  - model_name: b\n    litellm_params: {model: anthropic/claude-y, api_base: 'http://h:1/'}\nlitellm_settings: {drop_params: false}\n",
        &env,
    )
    .unwrap();
    let a = &c.deployments[0];
    assert_eq!(a.flavor, Flavor::Anthropic);
    assert_eq!(a.upstream_model, "claude-x");
    assert_eq!(
        a.url.as_ref().map(ToString::to_string).as_deref(),
        Some("http://env-base:9/v1/messages")
    );
    let params = a.anthropic.as_deref().unwrap();
    assert!(params.drop_params && params.endpoint.is_some());
    // No key anywhere: it loads, with a warning, and no endpoint.
    let b = &c.deployments[1];
    assert_eq!(
        b.url.as_ref().map(ToString::to_string).as_deref(),
        Some("http://h:1/v1/messages")
    );
    let params = b.anthropic.as_deref().unwrap();
    assert!(!params.drop_params && params.endpoint.is_none());
    let paths: Vec<&str> = w.iter().map(|i| i.path.as_str()).collect();
    assert_eq!(paths, ["model_list[1].litellm_params.api_key"]);
    // A key no header can carry is an error.
    let e = err(
        "model_list:\n  - model_name: d\n    litellm_params: {model: anthropic/claude-z, api_key: \"bad\\nkey\"}\n",
    );
    assert_eq!(e.errors[0].path, "model_list[0].litellm_params.api_key");
    // litellm_settings.drop_params is every deployment's default.
    let (c, _) = ok(
        "model_list:\n  - model_name: a\n    litellm_params: {model: anthropic/claude-x, api_key: k}\nlitellm_settings: {drop_params: true}\n",
    );
    assert!(c.deployments[0].anthropic.as_deref().unwrap().drop_params);
}

#[test]
fn wildcards_and_what_refers_to_them() {
    let (c, w) = ok(
        "model_list:\n  - model_name: '*'\n    litellm_params: {model: 'openai/*', api_key: k}\n  - model_name: primary\n    litellm_params: {model: openai/p, api_key: k}\n  - model_name: img\n    litellm_params: {model: dall-e-3, api_key: k}\nrouter_settings:\n  fallbacks: [{primary: [gpt-4o-mini, img]}, {'*': [primary]}]\n  default_fallbacks: [anything-at-all]\nvirtual_keys:\n  - key: sk-1\n    models: [gpt-4o-mini, 'openai/*']\n",
    );
    let d = &c.deployments[0];
    assert_eq!(d.pattern.as_ref().map(Pattern::text), Some("*"));
    assert_eq!(d.upstream_model, "*");
    assert_eq!(
        c.router.fallbacks,
        [
            ("primary".to_owned(), vec!["gpt-4o-mini".to_owned()]),
            ("*".to_owned(), vec!["primary".to_owned()])
        ]
    );
    assert_eq!(c.router.default_fallbacks, ["anything-at-all"]);
    assert!(
        w.iter().any(
            |i| i.path == "router_settings.fallbacks[0].primary[1]" && i.kind == Kind::Unserved
        ),
        "{w:?}"
    );
    assert!(
        !w.iter().any(|i| i.path.starts_with("virtual_keys")),
        "{w:?}"
    );
    // Without a wildcard those names are unknown.
    let e = err(&format!(
        "{MODEL}router_settings:\n  fallbacks: [{{m: [gpt-4o-mini]}}]\n"
    ));
    assert_eq!(e.errors[0].path, "router_settings.fallbacks[0].m[0]");
    // Azure puts the deployment in the URL: no wildcard there.
    let e = err(
        "model_list:\n  - model_name: '*'\n    litellm_params: {model: 'azure/*', api_base: 'https://x', api_key: k}\n",
    );
    assert!(e.errors[0].message.contains("azure"), "{e}");
}

#[test]
fn keys_blocked_and_default_parallel_limit() {
    let (c, _) = ok(&format!(
        "{MODEL}general_settings:\n  max_parallel_requests: 3\nvirtual_keys:\n  - key: sk-1\n    blocked: true\n  - key: sk-2\n    max_parallel_requests: 9\n"
    ));
    let k = &c.virtual_keys;
    assert!(k[0].blocked && !k[1].blocked);
    assert_eq!(k[0].max_parallel_requests, Some(3));
    assert_eq!(k[1].max_parallel_requests, Some(9));
}

#[test]
fn yaml_1_1_and_empty_environment_values_load() {
    let env = Env::default().with("FROM_ENV", "v");
    let (c, w) = parse(
        "environment_variables:\n  EMPTY:\n  BLANK: ''\n  COPY: os.environ/FROM_ENV\nmodel_list:\n  - model_name: m\n    litellm_params:\n      model: openai/m\n      api_key: os.environ/COPY\n      tpm: 80_000\n      rpm: 1\n      rpm: 2\n",
        &env,
    )
    .unwrap();
    let d = &c.deployments[0];
    assert_eq!((d.tpm, d.rpm), (Some(80_000), Some(2)));
    assert_eq!(d.api_key.as_ref().unwrap().expose(), "v");
    let paths: Vec<(&str, Kind)> = w.iter().map(|i| (i.path.as_str(), i.kind)).collect();
    assert_eq!(
        paths,
        [
            ("model_list[0].litellm_params.rpm", Kind::Loading),
            ("environment_variables.EMPTY", Kind::Loading)
        ]
    );
}

#[test]
fn secret_debug_is_masked() {
    assert_eq!(format!("{:?}", Secret::new("sk-123")), "*****");
}

#[test]
fn response_size_and_budget() {
    let model = "model_list:\n  - model_name: a\n    litellm_params:\n      model: openai/a\n      api_key: k\n";
    let (c, _) = ok(model);
    assert_eq!(c.server.max_response_bytes, 32 << 20);
    assert_eq!(c.server.response_budget, 128 << 20);
    // A larger cap alone raises the budget so one answer always fits.
    let (c, _) = ok(&format!(
        "{model}general_settings:\n  max_response_size_mb: 200\n"
    ));
    assert_eq!(c.server.response_budget, 200 << 20);
    let (c, w) = ok(&format!(
        "{model}general_settings:\n  max_response_size_mb: 0.5\n  response_budget_mb: 8\n"
    ));
    assert!(w.is_empty(), "{w:?}");
    assert_eq!(c.server.max_response_bytes, 512 << 10);
    assert_eq!(c.server.response_budget, 8 << 20);
    let e = err(&format!(
        "{model}general_settings:\n  max_response_size_mb: 16\n  response_budget_mb: 8\n"
    ));
    assert!(
        e.to_string()
            .contains("general_settings.response_budget_mb: must be at least max_response_size_mb"),
        "{e}"
    );
    let e = err(&format!(
        "{model}general_settings:\n  response_budget_mb: 0\n"
    ));
    assert!(
        e.to_string()
            .contains("general_settings.response_budget_mb: must be positive"),
        "{e}"
    );
}

#[test]
fn ssl_verify_values_and_precedence() {
    let bundle = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/tls/ca.pem");
    let model = |v: &str| {
        format!(
            "model_list:\n  - model_name: a\n    litellm_params:\n      model: openai/m\n      api_key: k\n      ssl_verify: {v}\n"
        )
    };
    let cases = [
        ("true", SslVerify::Platform),
        ("false", SslVerify::Off),
        ("\"False\"", SslVerify::Off),
        (bundle, SslVerify::Bundle(bundle.into())),
    ];
    for (value, want) in cases {
        let (c, w) = ok(&model(value));
        assert_eq!(c.deployments[0].ssl_verify, Some(want.clone()), "{value}");
        // Verification off is said out loud.
        assert_eq!(w.len(), usize::from(want == SslVerify::Off), "{w:?}");
    }
    for bad in ["/nonexistent/ca.pem", "[1]", "3"] {
        let e = err(&model(bad));
        assert_eq!(
            e.errors[0].path, "model_list[0].litellm_params.ssl_verify",
            "{bad}"
        );
    }
    // The gateway-wide value: SSL_VERIFY, else litellm_settings.
    let text = "litellm_settings:\n  ssl_verify: false\n";
    let (c, w) = ok(text);
    assert_eq!(c.outbound.ssl_verify, SslVerify::Off);
    assert_eq!(w[0].path, "litellm_settings.ssl_verify");
    let env = Env::default().with("SSL_VERIFY", "true");
    let (c, _) = parse(text, &env).unwrap();
    assert_eq!(c.outbound.ssl_verify, SslVerify::Platform);
    let env = Env::default()
        .with("SSL_CERT_FILE", "/nonexistent/ca.pem")
        .with("SSL_CERT_DIR", "/nonexistent-a:/nonexistent-b");
    let e = parse("", &env).unwrap_err();
    let paths: Vec<&str> = e.errors.iter().map(|i| i.path.as_str()).collect();
    assert_eq!(paths, ["SSL_CERT_FILE", "SSL_CERT_DIR", "SSL_CERT_DIR"]);
}

#[test]
fn proxies_from_the_environment_in_either_case() {
    let env = Env::default()
        .with("https_proxy", "http://user:pw@proxy:3128")
        .with("HTTP_PROXY", "proxy:3128")
        .with("no_proxy", "localhost,.internal");
    let (c, _) = parse("", &env).unwrap();
    let o = &c.outbound;
    assert_eq!(
        o.https_proxy.as_ref().unwrap().expose(),
        "http://user:pw@proxy:3128"
    );
    assert_eq!(o.http_proxy.as_ref().unwrap().expose(), "proxy:3128");
    assert_eq!(o.no_proxy.as_deref(), Some("localhost,.internal"));
    assert!(!format!("{o:?}").contains("pw@"), "credentials never shown");
}
