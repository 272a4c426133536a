//! The anthropic provider module's unit tests.

use super::*;

fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
    move |name| {
        vars.iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| (*v).to_owned())
    }
}

fn pairs(h: &[(HeaderName, HeaderValue)]) -> Vec<(String, String)> {
    h.iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap().to_owned()))
        .collect()
}

fn cfg<'a>(api_base: Option<&'a str>, api_key: Option<&'a str>) -> EndpointConfig<'a> {
    EndpointConfig {
        api_base,
        api_key,
        use_bearer_for_custom_base: false,
    }
}

#[test]
fn url_rules() {
    let url = |base: Option<&str>, vars: &[(&str, &str)]| {
        Endpoint::resolve(&cfg(base, Some("sk-ant-x")), env(vars))
            .unwrap()
            .url
    };
    assert_eq!(url(None, &[]), "https://api.anthropic.com/v1/messages");
    // P1: api_base without the suffix gets it.
    assert_eq!(
        url(Some("http://127.0.0.1:18250"), &[]),
        "http://127.0.0.1:18250/v1/messages"
    );
    assert_eq!(url(Some("http://h/"), &[]), "http://h/v1/messages");
    assert_eq!(
        url(Some("https://proxy/v1/messages"), &[]),
        "https://proxy/v1/messages"
    );
    // api_base wins over the environment, ANTHROPIC_API_BASE over
    // ANTHROPIC_BASE_URL.
    let both = [
        ("ANTHROPIC_API_BASE", "https://a"),
        ("ANTHROPIC_BASE_URL", "https://b"),
    ];
    assert_eq!(url(Some("https://c"), &both), "https://c/v1/messages");
    assert_eq!(url(None, &both), "https://a/v1/messages");
    assert_eq!(
        url(None, &[("ANTHROPIC_BASE_URL", "https://b")]),
        "https://b/v1/messages"
    );
    assert_eq!(
        url(
            Some("https://c/custom"),
            &[("LITELLM_ANTHROPIC_DISABLE_URL_SUFFIX", "true")]
        ),
        "https://c/custom"
    );
}

#[test]
fn headers_as_observed_in_p1() {
    let e = Endpoint::resolve(
        &cfg(Some("http://127.0.0.1:1"), Some(" sk-ant-key ")),
        env(&[]),
    )
    .unwrap();
    assert_eq!(
        pairs(&e.headers(&[], &[])),
        [
            ("anthropic-version", "2023-06-01"),
            ("accept", "application/json"),
            ("content-type", "application/json"),
            ("x-api-key", "sk-ant-key"),
        ]
        .map(|(a, b)| (a.to_owned(), b.to_owned()))
    );
    assert!(e.fixed.last().unwrap().1.is_sensitive());
    assert!(!format!("{e:?}").contains("sk-ant-key"));
}

#[test]
fn credentials() {
    let auth = |c: EndpointConfig<'_>, vars: &[(&str, &str)]| {
        let e = Endpoint::resolve(&c, env(vars))?;
        Ok::<_, Error>(pairs(&e.headers(&[], &[]))[3..].to_vec())
    };
    let one = |k: &str, v: &str| vec![(k.to_owned(), v.to_owned())];
    // The environment's key when the config has none; blank counts as unset.
    assert_eq!(
        auth(cfg(None, Some("  ")), &[("ANTHROPIC_API_KEY", "sk-env")]).unwrap(),
        one("x-api-key", "sk-env")
    );
    // ANTHROPIC_AUTH_TOKEN only without a key, as a Bearer token.
    assert_eq!(
        auth(cfg(None, None), &[("ANTHROPIC_AUTH_TOKEN", "tok")]).unwrap(),
        one("authorization", "Bearer tok")
    );
    assert_eq!(
        auth(
            cfg(None, Some("sk-key")),
            &[("ANTHROPIC_AUTH_TOKEN", "tok")]
        )
        .unwrap(),
        one("x-api-key", "sk-key")
    );
    // An OAuth key: Bearer, the browser-access header, the oauth beta.
    let oauth = Endpoint::resolve(&cfg(None, Some("sk-ant-oat01-abc")), env(&[])).unwrap();
    assert_eq!(
        pairs(&oauth.headers(&[], &[]))[3..],
        [
            (
                "anthropic-dangerous-direct-browser-access".to_owned(),
                "true".to_owned()
            ),
            (
                "authorization".to_owned(),
                "Bearer sk-ant-oat01-abc".to_owned()
            ),
            ("anthropic-beta".to_owned(), "oauth-2025-04-20".to_owned()),
        ]
    );
    // use_bearer_for_custom_base: only for a custom base and a non-sk-ant- key.
    let bearer = |base: &str, key: &str| {
        auth(
            EndpointConfig {
                api_base: Some(base),
                api_key: Some(key),
                use_bearer_for_custom_base: true,
            },
            &[],
        )
        .unwrap()
    };
    assert_eq!(
        bearer("https://gw.example", "k1"),
        one("authorization", "Bearer k1")
    );
    assert_eq!(
        bearer("https://gw.example", "Bearer k1"),
        one("authorization", "Bearer k1")
    );
    assert_eq!(
        bearer("https://api.anthropic.com", "k1"),
        one("x-api-key", "k1")
    );
    assert_eq!(
        bearer("https://gw.example", "sk-ant-k"),
        one("x-api-key", "sk-ant-k")
    );
    // Nothing at all: LiteLLM's 401.
    let e = auth(cfg(None, None), &[]).unwrap_err();
    assert_eq!(e.status(), StatusCode::UNAUTHORIZED);
    assert!(
        String::from_utf8_lossy(&e.body())
            .contains("litellm.AuthenticationError: Missing Anthropic API Key")
    );
}

#[test]
fn a_key_no_header_can_carry_is_refused() {
    let e = Endpoint::resolve(&cfg(None, Some("sk-ant\nx-evil: 1")), env(&[])).unwrap_err();
    assert_eq!(e.status(), StatusCode::BAD_REQUEST);
    assert!(!e.to_string().contains("evil"));
}

#[test]
fn beta_merging() {
    let e = Endpoint::resolve(&cfg(None, Some("sk-ant-oat-1")), env(&[])).unwrap();
    let h = e.headers(
        &["structured-outputs-2025-11-13"],
        &["oauth-2025-04-20, files-api-2025-04-14", " ,x"],
    );
    assert_eq!(
        h.last().unwrap(),
        &(
            ANTHROPIC_BETA.clone(),
            HeaderValue::from_static(
                "oauth-2025-04-20,structured-outputs-2025-11-13,files-api-2025-04-14,x"
            )
        )
    );
}

#[test]
fn model_lookup() {
    assert_eq!(
        ModelInfo::exact("claude-sonnet-4-5-20250929").map(|m| m.max_output_tokens),
        Some(64000)
    );
    assert_eq!(ModelInfo::exact("claude-mock-unknown"), None);
    // Aliases resolve for capabilities, not for max_tokens.
    assert_eq!(
        ModelInfo::find("claude-sonnet-4-6-20260301").map(|m| m.name),
        Some("claude-sonnet-4-6")
    );
    assert_eq!(
        ModelInfo::find("claude-opus-4.7").map(|m| m.name),
        Some("claude-opus-4-7")
    );
    assert_eq!(
        ModelInfo::find("claude-opus-4-6@v2").map(|m| m.name),
        Some("claude-opus-4-6")
    );
    assert!(ModelInfo::exact("claude-sonnet-4-6-20260301").is_none());
    assert!(!Caps::of("claude-opus-4-8").sampling());
    assert!(!Caps::of("my-fable-finetune").sampling());
    assert!(Caps::of("claude-mock-unknown").sampling());
    assert!(Caps::of("claude-mock-unknown").reasoning("claude-mock-unknown"));
    assert!(!Caps::of("claude-fable-5-1").forced_tool());
}
