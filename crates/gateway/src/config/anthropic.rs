//! Where an `anthropic/` deployment is called and with which fixed
//! headers, as LiteLLM 1.108.7 decides it (docs/spec/anthropic.md 1.1):
//! resolved once, when the configuration is loaded.

use axum::http::{HeaderName, HeaderValue, header};

/// `anthropic-version`, always this one.
pub const ANTHROPIC_VERSION: &str = "2023-06-01";
const DEFAULT_API_BASE: &str = "https://api.anthropic.com/v1/messages";
const MESSAGES_SUFFIX: &str = "/v1/messages";
/// Keys of Claude subscriptions (OAuth) start so; they go as a Bearer token.
const OAUTH_PREFIX: &str = "sk-ant-oat";
const OAUTH_BETA: &str = "oauth-2025-04-20";

static ANTHROPIC_VERSION_HEADER: HeaderName = HeaderName::from_static("anthropic-version");
static ANTHROPIC_BETA: HeaderName = HeaderName::from_static("anthropic-beta");
static X_API_KEY: HeaderName = HeaderName::from_static("x-api-key");
static BROWSER_ACCESS: HeaderName =
    HeaderName::from_static("anthropic-dangerous-direct-browser-access");

/// Why a deployment has no [`Endpoint`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unresolved {
    /// No key and no token anywhere.
    MissingKey,
    /// The key has characters a header cannot carry.
    InvalidKey,
}

fn nonblank(v: Option<String>) -> Option<String> {
    v.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty())
}

/// The URL calls go to: `api_base`, else `ANTHROPIC_API_BASE`, else
/// `ANTHROPIC_BASE_URL`, else Anthropic's; `/v1/messages` appended unless
/// it is there or `LITELLM_ANTHROPIC_DISABLE_URL_SUFFIX` is `true`.
pub fn url(api_base: Option<&str>, env: &impl Fn(&str) -> Option<String>) -> String {
    let base = api_base
        .map(str::trim)
        .filter(|b| !b.is_empty())
        .map(str::to_owned)
        .or_else(|| nonblank(env("ANTHROPIC_API_BASE")))
        .or_else(|| nonblank(env("ANTHROPIC_BASE_URL")))
        .unwrap_or_else(|| DEFAULT_API_BASE.to_owned());
    let no_suffix = env("LITELLM_ANTHROPIC_DISABLE_URL_SUFFIX")
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
    if no_suffix || base.ends_with(MESSAGES_SUFFIX) {
        base
    } else {
        format!("{}{MESSAGES_SUFFIX}", base.trim_end_matches('/'))
    }
}

/// One deployment's settings that decide where and how it is called.
#[derive(Clone, Copy, Debug, Default)]
pub struct EndpointConfig<'a> {
    /// `litellm_params.api_base`.
    pub api_base: Option<&'a str>,
    /// `litellm_params.api_key` (after `os.environ/` resolution).
    pub api_key: Option<&'a str>,
    /// `litellm_params.use_bearer_for_custom_base`.
    pub use_bearer_for_custom_base: bool,
}

/// Where one Anthropic deployment is called and with which fixed headers
/// (spec 1.1). Resolved once, when the configuration is loaded.
#[derive(Clone)]
pub struct Endpoint {
    /// The full URL requests are posted to.
    pub url: String,
    /// `anthropic-version`, `accept`, `content-type`, the credential.
    fixed: Vec<(HeaderName, HeaderValue)>,
    /// `anthropic-beta` values every call carries (an OAuth key's).
    betas: Vec<&'static str>,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The credential header is marked sensitive, so `http` prints it as
        // `Sensitive`; the URL has no secret.
        f.debug_struct("Endpoint")
            .field("url", &self.url)
            .field("headers", &self.fixed)
            .field("betas", &self.betas)
            .finish()
    }
}

impl Endpoint {
    /// The URL and headers for `config`, reading `ANTHROPIC_API_BASE`,
    /// `ANTHROPIC_BASE_URL`, `ANTHROPIC_API_KEY`, `ANTHROPIC_AUTH_TOKEN` and
    /// `LITELLM_ANTHROPIC_DISABLE_URL_SUFFIX` through `env`.
    ///
    /// A key that is blank counts as unset. With no key and no token there
    /// is no endpoint (LiteLLM answers each request with a 401).
    pub fn resolve(
        config: &EndpointConfig<'_>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Endpoint, Unresolved> {
        let configured_base = config.api_base.map(str::trim).filter(|b| !b.is_empty());
        let url = url(config.api_base, &env);

        let key = nonblank(config.api_key.map(str::to_owned))
            .or_else(|| nonblank(env("ANTHROPIC_API_KEY")));
        let mut betas = vec![];
        let mut fixed = vec![
            (
                ANTHROPIC_VERSION_HEADER.clone(),
                HeaderValue::from_static(ANTHROPIC_VERSION),
            ),
            (header::ACCEPT, HeaderValue::from_static("application/json")),
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
        ];
        let credential = match key {
            Some(key) if key.starts_with(OAUTH_PREFIX) => {
                betas.push(OAUTH_BETA);
                fixed.push((BROWSER_ACCESS.clone(), HeaderValue::from_static("true")));
                (header::AUTHORIZATION, format!("Bearer {key}"))
            }
            Some(key) => {
                let custom_base = configured_base.is_some_and(|b| !b.contains("api.anthropic.com"));
                if config.use_bearer_for_custom_base && custom_base && !key.starts_with("sk-ant-") {
                    let value = if key.starts_with("Bearer ") {
                        key
                    } else {
                        format!("Bearer {key}")
                    };
                    (header::AUTHORIZATION, value)
                } else {
                    (X_API_KEY.clone(), key)
                }
            }
            None => match nonblank(env("ANTHROPIC_AUTH_TOKEN")) {
                Some(token) => (header::AUTHORIZATION, format!("Bearer {token}")),
                None => return Err(Unresolved::MissingKey),
            },
        };
        let (name, value) = credential;
        let mut value = HeaderValue::from_str(&value).map_err(|_| Unresolved::InvalidKey)?;
        value.set_sensitive(true);
        fixed.push((name, value));
        Ok(Endpoint { url, fixed, betas })
    }

    /// Every header of one call: the fixed ones, then `anthropic-beta` when
    /// the call needs one: the endpoint's, the body's (`body_betas`, from
    /// `providers::anthropic::request::Translated::betas`) and the client's or the deployment's
    /// (`extra`, comma-separated values), each once, in that order.
    pub fn headers(&self, body_betas: &[&str], extra: &[&str]) -> Vec<(HeaderName, HeaderValue)> {
        let mut out = self.fixed.clone();
        let mut betas: Vec<&str> = vec![];
        let all = self
            .betas
            .iter()
            .copied()
            .chain(body_betas.iter().copied())
            .chain(extra.iter().flat_map(|v| v.split(',')))
            .map(str::trim)
            .filter(|b| !b.is_empty());
        for b in all {
            if !betas.contains(&b) {
                betas.push(b);
            }
        }
        if !betas.is_empty()
            && let Ok(v) = HeaderValue::from_str(&betas.join(","))
        {
            out.push((ANTHROPIC_BETA.clone(), v));
        }
        out
    }
}

#[cfg(test)]
mod tests {
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
            Ok::<_, Unresolved>(pairs(&e.headers(&[], &[]))[3..].to_vec())
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
        // Nothing at all: no endpoint (each request gets LiteLLM's 401).
        assert_eq!(
            auth(cfg(None, None), &[]).unwrap_err(),
            Unresolved::MissingKey
        );
    }

    #[test]
    fn a_key_no_header_can_carry_is_refused() {
        let e = Endpoint::resolve(&cfg(None, Some("sk-ant\nx-evil: 1")), env(&[])).unwrap_err();
        assert_eq!(e, Unresolved::InvalidKey);
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
}
