//! The config file: LiteLLM's YAML schema in, a validated [`Config`] out.
//!
//! Loading happens in three passes over a `serde_yaml::Value`, so that every
//! problem in the file is reported at once with its path
//! (`model_list[2].litellm_params.model`) instead of one per restart:
//!
//! 1. `environment_variables` are read into an overlay (the process
//!    environment is never modified);
//! 2. every string `os.environ/NAME`, at any depth, is replaced by that
//!    variable; a missing one is an error naming variable and path;
//! 3. each section is decoded by hand: a wrong type, an unknown provider or
//!    guardrail vendor is an error; a key we do not implement is a warning, so
//!    a real LiteLLM config still loads.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderName, HeaderValue};
use serde_yaml::{Mapping, Value};

/// A secret from the config: a provider key, an Aim key, a client key.
/// `Debug` and `Display` never show it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }
    /// The secret itself, for the one place that must send or compare it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("*****")
    }
}

/// Where `os.environ/NAME` and the providers' env fallbacks look: an overlay
/// (`environment_variables` from the file, or values a caller such as the
/// quickstart supplies), then the process environment.
#[derive(Clone, Debug, Default)]
pub struct Env {
    overlay: HashMap<String, String>,
}

impl Env {
    pub fn with(mut self, name: &str, value: impl Into<String>) -> Self {
        self.overlay.insert(name.to_owned(), value.into());
        self
    }

    pub fn get(&self, name: &str) -> Option<String> {
        self.overlay
            .get(name)
            .cloned()
            .or_else(|| std::env::var(name).ok())
            .filter(|v| !v.is_empty())
    }

    fn first(&self, names: &[&str]) -> Option<String> {
        names.iter().find_map(|n| self.get(n))
    }

    /// The first of `names` the overlay sets, else the first the process
    /// environment sets (for variables spelt in either case).
    fn either_case(&self, names: &[&str]) -> Option<String> {
        names
            .iter()
            .find_map(|n| self.overlay.get(*n).filter(|v| !v.is_empty()).cloned())
            .or_else(|| self.first(names))
    }
}

/// One problem in the file, with the path of the value concerned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Issue {
    pub path: String,
    pub message: String,
}

impl fmt::Display for Issue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// Loading failed: every error found, and the warnings seen on the way.
#[derive(Debug)]
pub struct Errors {
    pub errors: Vec<Issue>,
    pub warnings: Vec<Issue>,
}

impl fmt::Display for Errors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "invalid config: {} error(s)", self.errors.len())?;
        for e in &self.errors {
            writeln!(f, "  error: {e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Errors {}

/// The validated configuration the server runs on.
#[derive(Debug)]
pub struct Config {
    /// Every deployment in file order; entries sharing a `model_name` form a group.
    pub deployments: Vec<Arc<Deployment>>,
    /// Guardrails in file order, which is the order they run in.
    pub guardrails: Vec<GuardrailConfig>,
    pub master_key: Option<Secret>,
    pub virtual_keys: Vec<Arc<VirtualKey>>,
    pub router: RouterSettings,
    pub server: ServerSettings,
    /// Proxies and TLS trust for upstream and guardrail calls.
    pub outbound: Outbound,
}

/// How a provider expects to be called.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavor {
    /// `POST {base}/chat/completions`, `Authorization: Bearer`.
    OpenAi,
    /// `POST {base}/openai/deployments/{model}/chat/completions?api-version=`, `api-key`.
    Azure,
}

/// One `model_list` entry.
#[derive(Debug)]
pub struct Deployment {
    /// `model_info.id`, else a stable hash of the entry; sent as `x-litellm-model-id`.
    pub id: String,
    /// The public name clients ask for.
    pub model_name: String,
    /// The provider prefix, e.g. `openai`.
    pub provider: String,
    pub flavor: Flavor,
    /// The model name the upstream expects (the part after the prefix).
    pub upstream_model: String,
    /// The full URL requests are posted to, parsed once (None only for a
    /// `mock_response` deployment without an api_base).
    pub url: Option<axum::http::Uri>,
    pub api_key: Option<Secret>,
    /// The key's header value, built once and marked sensitive:
    /// `Bearer <api_key>` for `authorization`, or the bare key for Azure's
    /// `api-key`.
    pub auth_header: HeaderValue,
    pub timeout: Option<Duration>,
    pub stream_timeout: Option<Duration>,
    /// `extra_headers` and provider headers, sent on every upstream call.
    pub extra_headers: Vec<(HeaderName, HeaderValue)>,
    pub rpm: Option<u64>,
    pub tpm: Option<u64>,
    pub weight: Option<f64>,
    /// LiteLLM's `mock_response`: answer with this text, no network call.
    pub mock_response: Option<String>,
    /// `ssl_verify`; `None`: the gateway-wide [`Outbound::ssl_verify`].
    pub ssl_verify: Option<SslVerify>,
}

/// Which vendor protocol a guardrail speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Vendor {
    Aim,
    CatoNetworks,
}

impl Vendor {
    pub fn name(self) -> &'static str {
        match self {
            Vendor::Aim => "aim",
            Vendor::CatoNetworks => "cato_networks",
        }
    }
}

/// The hooks a guardrail runs on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Modes {
    pub pre_call: bool,
    pub during_call: bool,
    pub post_call: bool,
}

#[derive(Clone, Debug)]
pub struct GuardrailConfig {
    pub name: String,
    pub vendor: Vendor,
    pub modes: Modes,
    pub api_key: Secret,
    /// Without a trailing slash.
    pub api_base: String,
    pub default_on: bool,
    pub timeout: Duration,
    pub fail_open: bool,
    /// `ssl_verify`; `None`: the gateway-wide [`Outbound::ssl_verify`].
    pub ssl_verify: Option<SslVerify>,
}

/// LiteLLM's `ssl_verify`: how the TLS certificate of an upstream or a
/// guardrail is checked.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum SslVerify {
    /// Against the platform's roots plus `SSL_CERT_FILE` and `SSL_CERT_DIR`.
    #[default]
    Platform,
    /// `false`: not checked at all.
    Off,
    /// A CA bundle (PEM): against its certificates only, as LiteLLM does.
    Bundle(PathBuf),
}

/// Outbound settings read from the environment (the `environment_variables`
/// overlay first, then the process's) and `litellm_settings`.
#[derive(Clone, Debug, Default)]
pub struct Outbound {
    /// `SSL_VERIFY`, else `litellm_settings.ssl_verify`: for every
    /// deployment and guardrail without an `ssl_verify` of its own.
    pub ssl_verify: SslVerify,
    /// `HTTP_PROXY` / `http_proxy`: for `http://` destinations. Proxy URLs
    /// may carry credentials, hence secrets.
    pub http_proxy: Option<Secret>,
    /// `HTTPS_PROXY` / `https_proxy`: for `https://` (and `wss://`) ones.
    pub https_proxy: Option<Secret>,
    /// `ALL_PROXY` / `all_proxy`: for either, when the one above is unset.
    pub all_proxy: Option<Secret>,
    /// `NO_PROXY` / `no_proxy`: hosts, domains and networks reached directly.
    pub no_proxy: Option<String>,
    /// `SSL_CERT_FILE`: more trusted roots (PEM).
    pub ssl_cert_file: Option<PathBuf>,
    /// `SSL_CERT_DIR`: directories of more trusted roots (PEM), `:`-separated.
    pub ssl_cert_dir: Vec<PathBuf>,
}

/// A client key defined in the file (LiteLLM keeps these in Postgres).
#[derive(Debug)]
pub struct VirtualKey {
    pub key: Secret,
    pub alias: Option<String>,
    /// Empty: every model.
    pub models: Vec<String>,
    pub guardrails: Vec<String>,
    pub metadata: serde_json::Value,
    pub rpm_limit: Option<u64>,
    pub tpm_limit: Option<u64>,
    pub max_parallel_requests: Option<u64>,
    pub disable_global_guardrails: bool,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RoutingStrategy {
    #[default]
    SimpleShuffle,
    LeastBusy,
    LatencyBased,
    UsageBased,
}

/// `router_settings`, with `litellm_settings` filling what it leaves unset.
#[derive(Debug)]
pub struct RouterSettings {
    pub strategy: RoutingStrategy,
    pub num_retries: u32,
    pub timeout: Duration,
    pub stream_timeout: Option<Duration>,
    pub fallbacks: Vec<(String, Vec<String>)>,
    pub context_window_fallbacks: Vec<(String, Vec<String>)>,
    pub content_policy_fallbacks: Vec<(String, Vec<String>)>,
    pub default_fallbacks: Vec<String>,
    pub max_fallbacks: usize,
    pub allowed_fails: u32,
    pub cooldown_time: Duration,
}

/// Gateway-wide serving settings (`general_settings`).
#[derive(Debug)]
pub struct ServerSettings {
    pub max_request_bytes: usize,
    pub shutdown_grace: Duration,
    /// `global_max_parallel_requests`: requests in flight across all keys.
    pub max_parallel_requests: Option<u64>,
    /// Open client connections; past it the gateway stops accepting until
    /// one closes (the kernel's backlog holds the rest).
    pub max_connections: usize,
    /// Time a client has to send a request's headers.
    pub header_timeout: Duration,
    /// Time a client has to send a request's body.
    pub body_timeout: Duration,
}

pub const DEFAULT_AIM_BASE: &str = "https://api.aim.security";
pub const DEFAULT_CATO_BASE: &str = "https://api.aisec.catonetworks.com";

/// Read and validate a config file.
pub fn load(path: &Path, env: &Env) -> Result<(Config, Vec<Issue>), Errors> {
    let text = std::fs::read_to_string(path).map_err(|e| Errors {
        errors: vec![Issue {
            path: String::new(),
            message: format!("cannot read {}: {e}", path.display()),
        }],
        warnings: vec![],
    })?;
    parse(&text, env)
}

/// Validate a config from YAML text.
pub fn parse(text: &str, env: &Env) -> Result<(Config, Vec<Issue>), Errors> {
    let mut root: Value = serde_yaml::from_str(text).map_err(|e| Errors {
        errors: vec![Issue {
            path: String::new(),
            message: format!("not valid YAML: {e}"),
        }],
        warnings: vec![],
    })?;
    if root.is_null() {
        root = Value::Mapping(Mapping::new());
    }
    let mut cx = Cx {
        env: env.clone(),
        errors: vec![],
        warnings: vec![],
    };
    let config = cx.root(&mut root);
    match config {
        Some(config) if cx.errors.is_empty() => Ok((config, cx.warnings)),
        _ => Err(Errors {
            errors: cx.errors,
            warnings: cx.warnings,
        }),
    }
}

struct Cx {
    env: Env,
    errors: Vec<Issue>,
    warnings: Vec<Issue>,
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Sequence(_) => "a list",
        Value::Mapping(_) => "a mapping",
        Value::Tagged(_) => "a tagged value",
    }
}

fn field<'v>(map: &'v Mapping, key: &str) -> Option<&'v Value> {
    map.get(key).filter(|v| !v.is_null())
}

impl Cx {
    fn error(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.errors.push(Issue {
            path: path.into(),
            message: message.into(),
        });
    }

    fn warn(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.warnings.push(Issue {
            path: path.into(),
            message: message.into(),
        });
    }

    /// Warn about every key of `map` not in `known`.
    fn unknown_keys(&mut self, map: &Mapping, path: &str, known: &[&str]) {
        for key in map.keys() {
            match key.as_str() {
                Some(k) if known.contains(&k) => {}
                Some(k) => self.warn(join(path, k), "unknown or unsupported key, ignored"),
                None => self.warn(path, "non-string key, ignored"),
            }
        }
    }

    fn mapping<'v>(&mut self, v: &'v Value, path: &str) -> Option<&'v Mapping> {
        match v {
            Value::Mapping(m) => Some(m),
            other => {
                self.error(
                    path,
                    format!("expected a mapping, found {}", type_name(other)),
                );
                None
            }
        }
    }

    /// `map.key`, which must be a mapping, with its path.
    fn required_mapping<'v>(
        &mut self,
        map: &'v Mapping,
        path: &str,
        key: &str,
    ) -> Option<(&'v Mapping, String)> {
        let path = join(path, key);
        let Some(v) = field(map, key) else {
            self.error(path, "is required");
            return None;
        };
        Some((self.mapping(v, &path)?, path))
    }

    fn sequence<'v>(&mut self, v: &'v Value, path: &str) -> Option<&'v [Value]> {
        match v {
            Value::Sequence(s) => Some(s),
            other => {
                self.error(path, format!("expected a list, found {}", type_name(other)));
                None
            }
        }
    }

    fn string(&mut self, map: &Mapping, path: &str, key: &str) -> Option<String> {
        let v = field(map, key)?;
        match v {
            Value::String(s) => Some(s.clone()),
            // YAML reads `timeout: 10` or `version: 1.0` as numbers; a string
            // field given a scalar is taken as written.
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            other => {
                self.error(
                    join(path, key),
                    format!("expected a string, found {}", type_name(other)),
                );
                None
            }
        }
    }

    fn required_string(&mut self, map: &Mapping, path: &str, key: &str) -> Option<String> {
        let s = self.string(map, path, key);
        match s {
            Some(s) if !s.trim().is_empty() => Some(s),
            Some(_) => {
                self.error(join(path, key), "must not be empty");
                None
            }
            None => {
                if field(map, key).is_none() {
                    self.error(join(path, key), "is required");
                }
                None
            }
        }
    }

    fn number(&mut self, map: &Mapping, path: &str, key: &str) -> Option<f64> {
        let v = field(map, key)?;
        let n = match v {
            Value::Number(n) => n.as_f64(),
            // Values from os.environ/ arrive as strings.
            Value::String(s) => s.trim().parse::<f64>().ok(),
            _ => None,
        };
        match n {
            Some(n) if n.is_finite() && n >= 0.0 => Some(n),
            _ => {
                self.error(
                    join(path, key),
                    format!("expected a non-negative number, found {}", describe(v)),
                );
                None
            }
        }
    }

    fn integer(&mut self, map: &Mapping, path: &str, key: &str) -> Option<u64> {
        let v = field(map, key)?;
        let n = match v {
            Value::Number(n) => n.as_u64(),
            Value::String(s) => s.trim().parse::<u64>().ok(),
            _ => None,
        };
        if n.is_none() {
            self.error(
                join(path, key),
                format!("expected a non-negative integer, found {}", describe(v)),
            );
        }
        n
    }

    fn seconds(&mut self, map: &Mapping, path: &str, key: &str) -> Option<Duration> {
        let n = self.number(map, path, key)?;
        if n == 0.0 || n > 1e9 {
            self.error(join(path, key), "expected a positive number of seconds");
            return None;
        }
        Some(Duration::from_secs_f64(n))
    }

    fn boolean(&mut self, map: &Mapping, path: &str, key: &str) -> Option<bool> {
        let v = field(map, key)?;
        match v {
            Value::Bool(b) => Some(*b),
            Value::String(s) if s.eq_ignore_ascii_case("true") => Some(true),
            Value::String(s) if s.eq_ignore_ascii_case("false") => Some(false),
            other => {
                self.error(
                    join(path, key),
                    format!("expected true or false, found {}", describe(other)),
                );
                None
            }
        }
    }

    fn string_list(&mut self, map: &Mapping, path: &str, key: &str) -> Vec<String> {
        let Some(v) = field(map, key) else {
            return vec![];
        };
        let path = join(path, key);
        let Some(items) = self.sequence(v, &path) else {
            return vec![];
        };
        let mut out = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            match item {
                Value::String(s) => out.push(s.clone()),
                other => self.error(
                    format!("{path}[{i}]"),
                    format!("expected a string, found {}", type_name(other)),
                ),
            }
        }
        out
    }

    // ---- pass 1 and 2: environment ----

    fn read_environment_variables(&mut self, root: &Mapping) {
        let Some(v) = field(root, "environment_variables") else {
            return;
        };
        let Some(map) = self.mapping(v, "environment_variables") else {
            return;
        };
        for (k, v) in map {
            let Some(name) = k.as_str() else {
                self.error("environment_variables", "variable names must be strings");
                continue;
            };
            let value = match v {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                other => {
                    self.error(
                        join("environment_variables", name),
                        format!("expected a string, found {}", type_name(other)),
                    );
                    continue;
                }
            };
            self.env.overlay.insert(name.to_owned(), value);
        }
    }

    fn resolve_env(&mut self, v: &mut Value, path: &str) {
        match v {
            Value::String(s) => {
                if let Some(name) = s.strip_prefix("os.environ/") {
                    match self.env.get(name) {
                        Some(value) => *s = value,
                        None => self.error(
                            path,
                            format!("environment variable {name} is not set (os.environ/{name})"),
                        ),
                    }
                }
            }
            Value::Sequence(items) => {
                for (i, item) in items.iter_mut().enumerate() {
                    self.resolve_env(item, &format!("{path}[{i}]"));
                }
            }
            Value::Mapping(map) => {
                for (k, item) in map.iter_mut() {
                    let key = k.as_str().map(str::to_owned).unwrap_or_default();
                    self.resolve_env(item, &join(path, &key));
                }
            }
            Value::Tagged(t) => self.resolve_env(&mut t.value, path),
            Value::Null | Value::Bool(_) | Value::Number(_) => {}
        }
    }

    // ---- pass 3: decode ----

    fn root(&mut self, root: &mut Value) -> Option<Config> {
        let Value::Mapping(map) = root else {
            self.error(
                "",
                format!("the config must be a mapping, found {}", type_name(root)),
            );
            return None;
        };
        self.read_environment_variables(map);
        // environment_variables are plain values: resolving them is not wanted.
        for (k, v) in map.iter_mut() {
            match k.as_str() {
                Some("environment_variables") | None => {}
                Some(key) => {
                    let key = key.to_owned();
                    self.resolve_env(v, &key);
                }
            }
        }
        let map = &*map;
        self.unknown_keys(
            map,
            "",
            &[
                "model_list",
                "guardrails",
                "general_settings",
                "virtual_keys",
                "router_settings",
                "litellm_settings",
                "environment_variables",
            ],
        );

        let outbound = self.outbound(map);
        let guardrails = self.guardrails(map);
        let deployments = self.model_list(map);
        let groups: HashSet<&str> = deployments.iter().map(|d| d.model_name.as_str()).collect();
        let guardrail_names: HashSet<&str> = guardrails.iter().map(|g| g.name.as_str()).collect();
        let (master_key, server) = self.general_settings(map);
        let virtual_keys = self.virtual_keys(map, &groups, &guardrail_names, master_key.as_ref());
        let router = self.router_settings(map, &groups);

        Some(Config {
            deployments: deployments.into_iter().map(Arc::new).collect(),
            guardrails,
            master_key,
            virtual_keys,
            router,
            server,
            outbound,
        })
    }

    fn model_list(&mut self, root: &Mapping) -> Vec<Deployment> {
        let Some(v) = field(root, "model_list") else {
            self.warn(
                "model_list",
                "no models configured; every request will be refused",
            );
            return vec![];
        };
        let Some(items) = self.sequence(v, "model_list") else {
            return vec![];
        };
        let mut out = Vec::with_capacity(items.len());
        let mut ids = HashSet::new();
        for (i, item) in items.iter().enumerate() {
            let path = format!("model_list[{i}]");
            if let Some(d) = self.deployment(item, &path, i) {
                if !ids.insert(d.id.clone()) {
                    self.error(
                        format!("{path}.model_info.id"),
                        format!("duplicate deployment id {:?}", d.id),
                    );
                }
                out.push(d);
            }
        }
        out
    }

    fn deployment(&mut self, item: &Value, path: &str, index: usize) -> Option<Deployment> {
        let map = self.mapping(item, path)?;
        self.unknown_keys(map, path, &["model_name", "litellm_params", "model_info"]);
        let model_name = self.required_string(map, path, "model_name");
        let (params, params_path) = self.required_mapping(map, path, "litellm_params")?;
        let p = params_path.as_str();
        self.unknown_keys(
            params,
            p,
            &[
                "model",
                "api_key",
                "api_base",
                "api_version",
                "organization",
                "timeout",
                "stream_timeout",
                "extra_headers",
                "rpm",
                "tpm",
                "weight",
                "mock_response",
                "custom_llm_provider",
                "ssl_verify",
            ],
        );
        let model = self.required_string(params, p, "model");
        let custom_provider = self.string(params, p, "custom_llm_provider");
        let api_key = self.string(params, p, "api_key").filter(|k| !k.is_empty());
        let api_base = self.string(params, p, "api_base").filter(|b| !b.is_empty());
        let api_version = self.string(params, p, "api_version");
        let organization = self.string(params, p, "organization");
        let timeout = self.seconds(params, p, "timeout");
        let stream_timeout = self.seconds(params, p, "stream_timeout");
        let rpm = self.integer(params, p, "rpm");
        let tpm = self.integer(params, p, "tpm");
        let weight = self.number(params, p, "weight");
        let mock_response = self.string(params, p, "mock_response");
        let ssl_verify = self.ssl_verify(params, p);
        let mut extra_headers = self.headers(params, p, "extra_headers");

        let model_info_id = match field(map, "model_info") {
            Some(info) => {
                let info = self.mapping(info, &join(path, "model_info"))?;
                self.string(info, &join(path, "model_info"), "id")
            }
            None => None,
        };

        let model_name = model_name?;
        let model = model?;
        let (provider_name, upstream_model) =
            match split_provider(&model, custom_provider.as_deref()) {
                Ok(v) => v,
                Err(msg) => {
                    self.error(join(p, "model"), msg);
                    return None;
                }
            };
        let Some(provider) = PROVIDERS.iter().find(|pr| pr.prefix == provider_name) else {
            let message = if UNSUPPORTED_PROVIDERS.contains(&provider_name.as_str()) {
                format!(
                    "provider '{provider_name}' is not supported yet; supported: {}",
                    provider_list()
                )
            } else {
                format!(
                    "unknown provider '{provider_name}'; supported: {}",
                    provider_list()
                )
            };
            self.error(join(p, "model"), message);
            return None;
        };

        let api_base = api_base.or_else(|| self.env.first(provider.base_env));
        let api_key = api_key.or_else(|| self.env.first(provider.key_env));
        let base = match (api_base, provider.default_base) {
            (Some(b), _) => b,
            (None, Some(b)) => b.to_owned(),
            (None, None) if mock_response.is_some() => String::new(),
            (None, None) => {
                self.error(
                    join(p, "api_base"),
                    format!("provider '{provider_name}' has no default endpoint; set api_base"),
                );
                return None;
            }
        };
        let base = base.trim_end_matches('/').to_owned();
        if mock_response.is_none() && !(base.starts_with("http://") || base.starts_with("https://"))
        {
            self.error(
                join(p, "api_base"),
                format!("expected an http:// or https:// URL, found {base:?}"),
            );
            return None;
        }
        let url = match provider.flavor {
            Flavor::OpenAi => format!("{base}/chat/completions"),
            Flavor::Azure => {
                let version = api_version
                    .or_else(|| self.env.get("AZURE_API_VERSION"))
                    .unwrap_or_else(|| AZURE_DEFAULT_API_VERSION.to_owned());
                format!(
                    "{base}/openai/deployments/{upstream_model}/chat/completions?api-version={version}"
                )
            }
        };
        let parsed = match url.parse::<axum::http::Uri>() {
            Ok(u) if u.authority().is_some() => Some(u),
            _ if mock_response.is_some() => None,
            Ok(_) => {
                self.error(join(p, "api_base"), "not a valid URL: no host");
                return None;
            }
            Err(e) => {
                self.error(join(p, "api_base"), format!("not a valid URL: {e}"));
                return None;
            }
        };
        let auth_header = match &api_key {
            Some(k) => match HeaderValue::from_str(&match provider.flavor {
                Flavor::OpenAi => format!("Bearer {k}"),
                Flavor::Azure => k.clone(),
            }) {
                Ok(mut v) => {
                    v.set_sensitive(true);
                    v
                }
                Err(_) => {
                    self.error(join(p, "api_key"), "not a valid header value");
                    return None;
                }
            },
            None => HeaderValue::from_static(""),
        };
        if let Some(org) = organization {
            match HeaderValue::from_str(&org) {
                Ok(v) => extra_headers.push((HeaderName::from_static("openai-organization"), v)),
                Err(_) => self.error(join(p, "organization"), "not a valid header value"),
            }
        }
        if api_key.is_none() && mock_response.is_none() && provider.key_env.is_empty() {
            // Local servers (vLLM, Ollama) usually need no key: nothing to say.
        } else if api_key.is_none() && mock_response.is_none() {
            self.warn(
                join(p, "api_key"),
                format!(
                    "no api_key and none of {} set; requests go upstream without a key",
                    provider.key_env.join(", ")
                ),
            );
        }
        let id = model_info_id.unwrap_or_else(|| {
            let digest = fnv1a(&[
                model_name.as_bytes(),
                model.as_bytes(),
                url.as_bytes(),
                &index.to_le_bytes(),
            ]);
            format!("{digest:016x}")
        });
        Some(Deployment {
            id,
            model_name,
            provider: provider_name,
            flavor: provider.flavor,
            upstream_model,
            url: parsed,
            api_key: api_key.map(Secret),
            auth_header,
            timeout,
            stream_timeout,
            extra_headers,
            rpm,
            tpm,
            weight,
            mock_response,
            ssl_verify,
        })
    }

    fn headers(&mut self, map: &Mapping, path: &str, key: &str) -> Vec<(HeaderName, HeaderValue)> {
        let Some(v) = field(map, key) else {
            return vec![];
        };
        let path = join(path, key);
        let Some(m) = self.mapping(v, &path) else {
            return vec![];
        };
        let mut out = vec![];
        for (k, v) in m {
            let name = k.as_str().unwrap_or_default();
            let value = match v {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                other => {
                    self.error(
                        join(&path, name),
                        format!("expected a string, found {}", type_name(other)),
                    );
                    continue;
                }
            };
            match (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_str(&value),
            ) {
                (Ok(n), Ok(v)) => out.push((n, v)),
                _ => self.error(join(&path, name), "not a valid HTTP header"),
            }
        }
        out
    }

    fn guardrails(&mut self, root: &Mapping) -> Vec<GuardrailConfig> {
        let Some(v) = field(root, "guardrails") else {
            return vec![];
        };
        let Some(items) = self.sequence(v, "guardrails") else {
            return vec![];
        };
        let mut out: Vec<GuardrailConfig> = vec![];
        for (i, item) in items.iter().enumerate() {
            let path = format!("guardrails[{i}]");
            if let Some(g) = self.guardrail(item, &path) {
                if out.iter().any(|o| o.name == g.name) {
                    self.error(
                        join(&path, "guardrail_name"),
                        format!("duplicate guardrail name '{}'", g.name),
                    );
                    continue;
                }
                out.push(g);
            }
        }
        out
    }

    fn guardrail(&mut self, item: &Value, path: &str) -> Option<GuardrailConfig> {
        let map = self.mapping(item, path)?;
        self.unknown_keys(
            map,
            path,
            &["guardrail_name", "litellm_params", "guardrail_info"],
        );
        let name = self.required_string(map, path, "guardrail_name");
        let (params, params_path) = self.required_mapping(map, path, "litellm_params")?;
        let p = params_path.as_str();
        self.unknown_keys(
            params,
            p,
            &[
                "guardrail",
                "mode",
                "api_key",
                "api_base",
                "default_on",
                "timeout",
                "fail_open",
                "ssl_verify",
            ],
        );
        let vendor = self.required_string(params, p, "guardrail");
        let modes = self.modes(params, p, name.as_deref().unwrap_or("?"));
        let api_key = self.string(params, p, "api_key").filter(|k| !k.is_empty());
        let api_base = self.string(params, p, "api_base").filter(|b| !b.is_empty());
        let default_on = self.boolean(params, p, "default_on").unwrap_or(false);
        let timeout = self
            .seconds(params, p, "timeout")
            .unwrap_or(Duration::from_secs(10));
        let fail_open = self.boolean(params, p, "fail_open").unwrap_or(false);
        let ssl_verify = self.ssl_verify(params, p);

        let vendor = match vendor?.as_str() {
            "aim" => Vendor::Aim,
            "cato_networks" => Vendor::CatoNetworks,
            other => {
                self.error(
                    join(p, "guardrail"),
                    format!("unknown guardrail vendor '{other}'; supported: aim, cato_networks"),
                );
                return None;
            }
        };
        let (key_env, base_env, default_base, key_message) = match vendor {
            Vendor::Aim => (
                "AIM_API_KEY",
                "AIM_API_BASE",
                DEFAULT_AIM_BASE,
                "Couldn't get Aim api key, either set the `AIM_API_KEY` in the environment or pass it as a parameter to the guardrail in the config file",
            ),
            Vendor::CatoNetworks => (
                "CATO_API_KEY",
                "CATO_API_BASE",
                DEFAULT_CATO_BASE,
                "Couldn't get Cato api key, either set the `CATO_API_KEY` in the environment or pass it as a parameter to the guardrail in the config file",
            ),
        };
        let api_key = api_key.or_else(|| self.env.get(key_env));
        let api_base = api_base
            .or_else(|| self.env.get(base_env))
            .unwrap_or_else(|| default_base.to_owned());
        let api_base = api_base.strip_suffix('/').unwrap_or(&api_base).to_owned();
        if !(api_base.starts_with("http://") || api_base.starts_with("https://")) {
            self.error(
                join(p, "api_base"),
                format!("expected an http:// or https:// URL, found {api_base:?}"),
            );
        }
        let Some(api_key) = api_key else {
            self.error(join(p, "api_key"), key_message);
            return None;
        };
        Some(GuardrailConfig {
            name: name?,
            vendor,
            modes: modes?,
            api_key: Secret(api_key),
            api_base,
            default_on,
            timeout,
            fail_open,
            ssl_verify,
        })
    }

    fn modes(&mut self, params: &Mapping, p: &str, name: &str) -> Option<Modes> {
        let path = join(p, "mode");
        let list: Vec<String> = match field(params, "mode") {
            None => {
                self.error(path, format!("guardrail '{name}': mode is required"));
                return None;
            }
            Some(Value::String(s)) => vec![s.clone()],
            Some(Value::Sequence(_)) => self.string_list(params, p, "mode"),
            Some(other) => {
                self.error(
                    path,
                    format!("expected a string or a list, found {}", type_name(other)),
                );
                return None;
            }
        };
        let mut modes = Modes::default();
        let mut ok = true;
        for m in &list {
            match m.as_str() {
                "pre_call" => modes.pre_call = true,
                "during_call" => modes.during_call = true,
                "post_call" => modes.post_call = true,
                other => {
                    ok = false;
                    self.error(
                        path.clone(),
                        format!(
                            "guardrail '{name}': unknown mode '{other}'; expected pre_call, during_call or post_call"
                        ),
                    );
                }
            }
        }
        if list.is_empty() {
            self.error(path, format!("guardrail '{name}': mode must not be empty"));
            return None;
        }
        ok.then_some(modes)
    }

    fn general_settings(&mut self, root: &Mapping) -> (Option<Secret>, ServerSettings) {
        let mut server = ServerSettings {
            max_request_bytes: 16 * 1024 * 1024,
            shutdown_grace: Duration::from_secs(30),
            max_parallel_requests: None,
            max_connections: 10_000,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
        };
        let Some(v) = field(root, "general_settings") else {
            return (None, server);
        };
        let Some(map) = self.mapping(v, "general_settings") else {
            return (None, server);
        };
        let p = "general_settings";
        self.unknown_keys(
            map,
            p,
            &[
                "master_key",
                "max_request_size_mb",
                "shutdown_grace_period",
                "global_max_parallel_requests",
                "max_connections",
                "request_header_timeout",
                "request_body_timeout",
            ],
        );
        let master_key = self.string(map, p, "master_key").filter(|k| !k.is_empty());
        if let Some(mb) = self.number(map, p, "max_request_size_mb") {
            if mb <= 0.0 {
                self.error(join(p, "max_request_size_mb"), "must be positive");
            } else {
                server.max_request_bytes = (mb * 1024.0 * 1024.0) as usize;
            }
        }
        if let Some(grace) = self.number(map, p, "shutdown_grace_period") {
            server.shutdown_grace = Duration::from_secs_f64(grace);
        }
        server.max_parallel_requests = self.integer(map, p, "global_max_parallel_requests");
        if let Some(n) = self.integer(map, p, "max_connections") {
            server.max_connections = n.clamp(1, 1 << 20) as usize;
        }
        if let Some(t) = self.seconds(map, p, "request_header_timeout") {
            server.header_timeout = t;
        }
        if let Some(t) = self.seconds(map, p, "request_body_timeout") {
            server.body_timeout = t;
        }
        (master_key.map(Secret), server)
    }

    fn virtual_keys(
        &mut self,
        root: &Mapping,
        groups: &HashSet<&str>,
        guardrails: &HashSet<&str>,
        master: Option<&Secret>,
    ) -> Vec<Arc<VirtualKey>> {
        let Some(v) = field(root, "virtual_keys") else {
            return vec![];
        };
        let Some(items) = self.sequence(v, "virtual_keys") else {
            return vec![];
        };
        let mut out: Vec<Arc<VirtualKey>> = vec![];
        for (i, item) in items.iter().enumerate() {
            let path = format!("virtual_keys[{i}]");
            let Some(map) = self.mapping(item, &path) else {
                continue;
            };
            let p = path.as_str();
            self.unknown_keys(
                map,
                p,
                &[
                    "key",
                    "key_alias",
                    "models",
                    "guardrails",
                    "metadata",
                    "rpm_limit",
                    "tpm_limit",
                    "max_parallel_requests",
                    "disable_global_guardrails",
                ],
            );
            let key = self.required_string(map, p, "key");
            let alias = self.string(map, p, "key_alias");
            let models = self.string_list(map, p, "models");
            for (j, m) in models.iter().enumerate() {
                // LiteLLM's wildcard-ish special names mean "everything".
                if !groups.contains(m.as_str()) && m != "*" && m != "all-proxy-models" {
                    self.warn(
                        format!("{p}.models[{j}]"),
                        format!("model '{m}' is not in model_list"),
                    );
                }
            }
            let guardrail_names = self.string_list(map, p, "guardrails");
            for (j, g) in guardrail_names.iter().enumerate() {
                if !guardrails.contains(g.as_str()) {
                    self.error(
                        format!("{p}.guardrails[{j}]"),
                        format!("guardrail '{g}' is not configured in guardrails"),
                    );
                }
            }
            let metadata = match field(map, "metadata") {
                None => serde_json::Value::Object(Default::default()),
                Some(m @ Value::Mapping(_)) => serde_json::to_value(m).unwrap_or_default(),
                Some(other) => {
                    self.error(
                        join(p, "metadata"),
                        format!("expected a mapping, found {}", type_name(other)),
                    );
                    serde_json::Value::Null
                }
            };
            let rpm_limit = self.integer(map, p, "rpm_limit");
            let tpm_limit = self.integer(map, p, "tpm_limit");
            let max_parallel_requests = self.integer(map, p, "max_parallel_requests");
            let disable_global_guardrails = self
                .boolean(map, p, "disable_global_guardrails")
                .unwrap_or(false);
            let Some(key) = key else { continue };
            if master.is_some_and(|m| m.0 == key) {
                self.error(
                    join(p, "key"),
                    "a virtual key must differ from the master key",
                );
                continue;
            }
            if out.iter().any(|k| k.key.0 == key) {
                self.error(
                    join(p, "key"),
                    "duplicate key (the same secret is used twice)",
                );
                continue;
            }
            let models = if models.iter().any(|m| m == "*" || m == "all-proxy-models") {
                vec![]
            } else {
                models
            };
            out.push(Arc::new(VirtualKey {
                key: Secret(key),
                alias,
                models,
                guardrails: guardrail_names,
                metadata,
                rpm_limit,
                tpm_limit,
                max_parallel_requests,
                disable_global_guardrails,
            }));
        }
        out
    }

    fn router_settings(&mut self, root: &Mapping, groups: &HashSet<&str>) -> RouterSettings {
        let empty = Mapping::new();
        let router = match field(root, "router_settings") {
            Some(v) => self.mapping(v, "router_settings").unwrap_or(&empty),
            None => &empty,
        };
        let litellm = match field(root, "litellm_settings") {
            Some(v) => self.mapping(v, "litellm_settings").unwrap_or(&empty),
            None => &empty,
        };
        const SHARED: &[&str] = &[
            "num_retries",
            "timeout",
            "request_timeout",
            "stream_timeout",
            "fallbacks",
            "context_window_fallbacks",
            "content_policy_fallbacks",
            "default_fallbacks",
            "max_fallbacks",
            "allowed_fails",
            "cooldown_time",
        ];
        let mut router_known = SHARED.to_vec();
        router_known.push("routing_strategy");
        self.unknown_keys(router, "router_settings", &router_known);
        let mut litellm_known = SHARED.to_vec();
        litellm_known.push("ssl_verify");
        self.unknown_keys(litellm, "litellm_settings", &litellm_known);

        // router_settings wins where both set a value.
        let sources = [(router, "router_settings"), (litellm, "litellm_settings")];
        let mut settings = RouterSettings {
            strategy: RoutingStrategy::default(),
            num_retries: 0,
            timeout: Duration::from_secs(600),
            stream_timeout: None,
            fallbacks: vec![],
            context_window_fallbacks: vec![],
            content_policy_fallbacks: vec![],
            default_fallbacks: vec![],
            max_fallbacks: 5,
            allowed_fails: 3,
            cooldown_time: Duration::from_secs(5),
        };
        if let Some(s) = self.string(router, "router_settings", "routing_strategy") {
            settings.strategy = match s.as_str() {
                "simple-shuffle" => RoutingStrategy::SimpleShuffle,
                "least-busy" => RoutingStrategy::LeastBusy,
                "latency-based-routing" => RoutingStrategy::LatencyBased,
                "usage-based-routing" | "usage-based-routing-v2" => RoutingStrategy::UsageBased,
                "cost-based-routing" => {
                    self.warn(
                        "router_settings.routing_strategy",
                        "cost-based-routing is not supported; using simple-shuffle",
                    );
                    RoutingStrategy::SimpleShuffle
                }
                other => {
                    self.error(
                        "router_settings.routing_strategy",
                        format!(
                            "unknown routing strategy '{other}'; expected simple-shuffle, least-busy, latency-based-routing or usage-based-routing"
                        ),
                    );
                    RoutingStrategy::SimpleShuffle
                }
            };
        }
        if let Some((m, p, k)) = locate(&sources, &["num_retries"])
            && let Some(n) = self.integer(m, p, k)
        {
            settings.num_retries = n.min(100) as u32;
        }
        if let Some((m, p, k)) = locate(&sources, &["timeout", "request_timeout"])
            && let Some(t) = self.seconds(m, p, k)
        {
            settings.timeout = t;
        }
        if let Some((m, p, k)) = locate(&sources, &["stream_timeout"]) {
            settings.stream_timeout = self.seconds(m, p, k);
        }
        if let Some((m, p, k)) = locate(&sources, &["fallbacks"]) {
            settings.fallbacks = self.fallback_map(m, p, k, groups);
        }
        if let Some((m, p, k)) = locate(&sources, &["context_window_fallbacks"]) {
            settings.context_window_fallbacks = self.fallback_map(m, p, k, groups);
        }
        if let Some((m, p, k)) = locate(&sources, &["content_policy_fallbacks"]) {
            settings.content_policy_fallbacks = self.fallback_map(m, p, k, groups);
        }
        if let Some((m, p, k)) = locate(&sources, &["default_fallbacks"]) {
            let list = self.string_list(m, p, k);
            for (i, g) in list.iter().enumerate() {
                if !groups.contains(g.as_str()) {
                    self.error(
                        format!("{p}.{k}[{i}]"),
                        format!("model '{g}' is not in model_list"),
                    );
                }
            }
            settings.default_fallbacks = list;
        }
        if let Some((m, p, k)) = locate(&sources, &["max_fallbacks"])
            && let Some(n) = self.integer(m, p, k)
        {
            settings.max_fallbacks = n.min(100) as usize;
        }
        if let Some((m, p, k)) = locate(&sources, &["allowed_fails"])
            && let Some(n) = self.integer(m, p, k)
        {
            settings.allowed_fails = n.min(u64::from(u32::MAX)) as u32;
        }
        if let Some((m, p, k)) = locate(&sources, &["cooldown_time"])
            && let Some(c) = self.number(m, p, k)
        {
            settings.cooldown_time = Duration::from_secs_f64(c);
        }
        settings
    }

    /// `map.ssl_verify`: `true`, `false` (also as strings, as LiteLLM reads
    /// them), or the path of a CA bundle, which must exist.
    fn ssl_verify(&mut self, map: &Mapping, path: &str) -> Option<SslVerify> {
        let v = field(map, "ssl_verify")?;
        let path = join(path, "ssl_verify");
        match v {
            Value::Bool(b) => Some(self.verify_flag(*b, &path)),
            Value::String(s) => self.verify_text(s, &path),
            other => {
                self.error(
                    path,
                    format!(
                        "expected true, false or the path of a CA bundle, found {}",
                        describe(other)
                    ),
                );
                None
            }
        }
    }

    fn verify_flag(&mut self, on: bool, path: &str) -> SslVerify {
        if on {
            return SslVerify::Platform;
        }
        self.warn(
            path,
            "TLS certificates are not verified (ssl_verify: false)",
        );
        SslVerify::Off
    }

    fn verify_text(&mut self, text: &str, path: &str) -> Option<SslVerify> {
        match text.trim().to_ascii_lowercase().as_str() {
            "true" => return Some(self.verify_flag(true, path)),
            "false" => return Some(self.verify_flag(false, path)),
            _ => {}
        }
        if !Path::new(text).is_file() {
            self.error(
                path,
                format!(
                    "the CA bundle {text:?} is not a readable file (expected true, false or a path)"
                ),
            );
            return None;
        }
        Some(SslVerify::Bundle(PathBuf::from(text)))
    }

    /// Proxies and trust from the environment and `litellm_settings`.
    fn outbound(&mut self, root: &Mapping) -> Outbound {
        let proxy = |cx: &mut Cx, names: [&str; 2]| {
            let value = cx.env.either_case(&names)?;
            // Checked here, not skipped later: a proxy that cannot be used
            // must not turn into going direct.
            let uri = value.parse::<axum::http::Uri>().ok();
            let scheme = uri.as_ref().and_then(|u| u.scheme_str());
            if uri.as_ref().and_then(|u| u.host()).is_none()
                || !matches!(scheme, None | Some("http"))
            {
                cx.error(
                    names[0],
                    format!(
                        "expected an http:// proxy URL (http://host:port), found {}",
                        scheme.map_or("something else".to_owned(), |s| format!("a {s}:// one"))
                    ),
                );
                return None;
            }
            Some(Secret(value))
        };
        let http_proxy = proxy(self, ["HTTP_PROXY", "http_proxy"]);
        let https_proxy = proxy(self, ["HTTPS_PROXY", "https_proxy"]);
        let all_proxy = proxy(self, ["ALL_PROXY", "all_proxy"]);
        let no_proxy = self.env.either_case(&["NO_PROXY", "no_proxy"]);
        let ssl_cert_file = self.env.get("SSL_CERT_FILE").map(PathBuf::from);
        if let Some(f) = ssl_cert_file.as_ref().filter(|f| !f.is_file()) {
            self.error(
                "SSL_CERT_FILE",
                format!("{} is not a readable file", f.display()),
            );
        }
        let ssl_cert_dir: Vec<PathBuf> = self
            .env
            .get("SSL_CERT_DIR")
            .map(|dirs| {
                std::env::split_paths(&dirs)
                    .filter(|p| !p.as_os_str().is_empty())
                    .collect()
            })
            .unwrap_or_default();
        for d in ssl_cert_dir.iter().filter(|d| !d.is_dir()) {
            self.error(
                "SSL_CERT_DIR",
                format!("{} is not a directory", d.display()),
            );
        }
        // LiteLLM's order: the SSL_VERIFY variable, then litellm_settings.
        let ssl_verify = match self.env.get("SSL_VERIFY") {
            Some(v) => self.verify_text(&v, "SSL_VERIFY"),
            None => match field(root, "litellm_settings") {
                Some(Value::Mapping(m)) => self.ssl_verify(m, "litellm_settings"),
                _ => None,
            },
        };
        Outbound {
            ssl_verify: ssl_verify.unwrap_or_default(),
            http_proxy,
            https_proxy,
            all_proxy,
            no_proxy,
            ssl_cert_file,
            ssl_cert_dir,
        }
    }

    /// `[{"gpt-4o": ["gpt-3.5-turbo"]}, ...]`
    fn fallback_map(
        &mut self,
        map: &Mapping,
        path: &str,
        key: &str,
        groups: &HashSet<&str>,
    ) -> Vec<(String, Vec<String>)> {
        let path = join(path, key);
        let Some(items) = field(map, key).and_then(|v| self.sequence(v, &path)) else {
            return vec![];
        };
        let mut out = vec![];
        for (i, item) in items.iter().enumerate() {
            let ipath = format!("{path}[{i}]");
            let Some(m) = self.mapping(item, &ipath) else {
                continue;
            };
            for (from, _) in m {
                let Some(from) = from.as_str() else { continue };
                let targets = self.string_list(m, &ipath, from);
                for name in std::iter::once(from).chain(targets.iter().map(String::as_str)) {
                    if !groups.contains(name) {
                        self.error(
                            join(&ipath, from),
                            format!("model '{name}' is not in model_list"),
                        );
                    }
                }
                out.push((from.to_owned(), targets));
            }
        }
        out
    }
}

/// The first of `sources` that sets one of `keys`: (mapping, its path, key).
fn locate<'m>(
    sources: &[(&'m Mapping, &'static str)],
    keys: &[&'static str],
) -> Option<(&'m Mapping, &'static str, &'static str)> {
    sources.iter().find_map(|(m, p)| {
        keys.iter()
            .find(|k| field(m, k).is_some())
            .map(|k| (*m, *p, *k))
    })
}

fn describe(v: &Value) -> String {
    match v {
        Value::String(s) => format!("{s:?}"),
        Value::Number(n) => n.to_string(),
        other => type_name(other).to_owned(),
    }
}

fn fnv1a(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf29ce484222325;
    for part in parts {
        for b in *part {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x100000001b3);
        }
        h ^= 0xff;
        h = h.wrapping_mul(0x100000001b3);
    }
    h
}

struct Provider {
    prefix: &'static str,
    flavor: Flavor,
    default_base: Option<&'static str>,
    key_env: &'static [&'static str],
    base_env: &'static [&'static str],
}

const AZURE_DEFAULT_API_VERSION: &str = "2024-10-21";

/// Providers reached with the OpenAI wire format, and their public defaults.
const PROVIDERS: &[Provider] = &[
    Provider {
        prefix: "openai",
        flavor: Flavor::OpenAi,
        default_base: Some("https://api.openai.com/v1"),
        key_env: &["OPENAI_API_KEY"],
        base_env: &["OPENAI_API_BASE", "OPENAI_BASE_URL"],
    },
    Provider {
        prefix: "azure",
        flavor: Flavor::Azure,
        default_base: None,
        key_env: &["AZURE_API_KEY"],
        base_env: &["AZURE_API_BASE"],
    },
    Provider {
        prefix: "custom_openai",
        flavor: Flavor::OpenAi,
        default_base: None,
        key_env: &[],
        base_env: &[],
    },
    Provider {
        prefix: "openai_like",
        flavor: Flavor::OpenAi,
        default_base: None,
        key_env: &[],
        base_env: &[],
    },
    Provider {
        prefix: "hosted_vllm",
        flavor: Flavor::OpenAi,
        default_base: None,
        key_env: &[],
        base_env: &["HOSTED_VLLM_API_BASE"],
    },
    Provider {
        prefix: "ollama_chat",
        flavor: Flavor::OpenAi,
        default_base: Some("http://localhost:11434/v1"),
        key_env: &[],
        base_env: &[],
    },
    Provider {
        prefix: "lm_studio",
        flavor: Flavor::OpenAi,
        default_base: Some("http://localhost:1234/v1"),
        key_env: &[],
        base_env: &["LM_STUDIO_API_BASE"],
    },
    Provider {
        prefix: "groq",
        flavor: Flavor::OpenAi,
        default_base: Some("https://api.groq.com/openai/v1"),
        key_env: &["GROQ_API_KEY"],
        base_env: &[],
    },
    Provider {
        prefix: "together_ai",
        flavor: Flavor::OpenAi,
        default_base: Some("https://api.together.xyz/v1"),
        key_env: &["TOGETHERAI_API_KEY", "TOGETHER_API_KEY"],
        base_env: &[],
    },
    Provider {
        prefix: "deepseek",
        flavor: Flavor::OpenAi,
        default_base: Some("https://api.deepseek.com/v1"),
        key_env: &["DEEPSEEK_API_KEY"],
        base_env: &[],
    },
    Provider {
        prefix: "mistral",
        flavor: Flavor::OpenAi,
        default_base: Some("https://api.mistral.ai/v1"),
        key_env: &["MISTRAL_API_KEY"],
        base_env: &[],
    },
    Provider {
        prefix: "fireworks_ai",
        flavor: Flavor::OpenAi,
        default_base: Some("https://api.fireworks.ai/inference/v1"),
        key_env: &["FIREWORKS_AI_API_KEY", "FIREWORKS_API_KEY"],
        base_env: &[],
    },
    Provider {
        prefix: "perplexity",
        flavor: Flavor::OpenAi,
        default_base: Some("https://api.perplexity.ai"),
        key_env: &["PERPLEXITYAI_API_KEY", "PERPLEXITY_API_KEY"],
        base_env: &[],
    },
    Provider {
        prefix: "openrouter",
        flavor: Flavor::OpenAi,
        default_base: Some("https://openrouter.ai/api/v1"),
        key_env: &["OPENROUTER_API_KEY"],
        base_env: &[],
    },
    Provider {
        prefix: "xai",
        flavor: Flavor::OpenAi,
        default_base: Some("https://api.x.ai/v1"),
        key_env: &["XAI_API_KEY"],
        base_env: &[],
    },
    Provider {
        prefix: "deepinfra",
        flavor: Flavor::OpenAi,
        default_base: Some("https://api.deepinfra.com/v1/openai"),
        key_env: &["DEEPINFRA_API_KEY"],
        base_env: &[],
    },
    Provider {
        prefix: "cerebras",
        flavor: Flavor::OpenAi,
        default_base: Some("https://api.cerebras.ai/v1"),
        key_env: &["CEREBRAS_API_KEY"],
        base_env: &[],
    },
    Provider {
        prefix: "sambanova",
        flavor: Flavor::OpenAi,
        default_base: Some("https://api.sambanova.ai/v1"),
        key_env: &["SAMBANOVA_API_KEY"],
        base_env: &[],
    },
    Provider {
        prefix: "nvidia_nim",
        flavor: Flavor::OpenAi,
        default_base: Some("https://integrate.api.nvidia.com/v1"),
        key_env: &["NVIDIA_NIM_API_KEY"],
        base_env: &[],
    },
];

/// LiteLLM providers that need a translation layer the gateway lacks.
const UNSUPPORTED_PROVIDERS: &[&str] = &[
    "anthropic",
    "bedrock",
    "vertex_ai",
    "gemini",
    "cohere",
    "huggingface",
    "ollama",
    "replicate",
    "sagemaker",
    "watsonx",
];

fn provider_list() -> String {
    PROVIDERS
        .iter()
        .map(|p| p.prefix)
        .collect::<Vec<_>>()
        .join(", ")
}

/// `openai/gpt-4o` → (`openai`, `gpt-4o`). A bare OpenAI model name (as
/// LiteLLM accepts) is taken as `openai/`.
fn split_provider(model: &str, custom: Option<&str>) -> Result<(String, String), String> {
    if let Some(provider) = custom {
        let name = model
            .strip_prefix(provider)
            .and_then(|m| m.strip_prefix('/'))
            .unwrap_or(model);
        return Ok((provider.to_owned(), name.to_owned()));
    }
    if let Some((provider, name)) = model.split_once('/')
        && !name.is_empty()
        && !provider.is_empty()
    {
        return Ok((provider.to_owned(), name.to_owned()));
    }
    const OPENAI_BARE: &[&str] = &["gpt-", "o1", "o3", "o4", "chatgpt-", "ft:gpt-"];
    if OPENAI_BARE.iter().any(|p| model.starts_with(p)) {
        return Ok(("openai".to_owned(), model.to_owned()));
    }
    Err(format!(
        "model '{model}' needs a provider prefix, e.g. openai/{model} or hosted_vllm/{model}"
    ))
}

impl Config {
    /// The one-screen summary `--check` prints.
    pub fn summary(&self) -> String {
        use std::fmt::Write;
        let mut s = String::new();
        let mut groups: Vec<(&str, Vec<&Deployment>)> = vec![];
        for d in &self.deployments {
            match groups.iter_mut().find(|(n, _)| *n == d.model_name) {
                Some((_, list)) => list.push(d),
                None => groups.push((&d.model_name, vec![d])),
            }
        }
        let _ = writeln!(s, "models ({}):", groups.len());
        for (name, list) in &groups {
            let targets: Vec<String> = list
                .iter()
                .map(|d| {
                    if d.mock_response.is_some() {
                        format!("{}/{} (mock_response)", d.provider, d.upstream_model)
                    } else {
                        format!("{}/{}", d.provider, d.upstream_model)
                    }
                })
                .collect();
            let _ = writeln!(s, "  {name} -> {}", targets.join(", "));
        }
        let _ = writeln!(s, "guardrails ({}):", self.guardrails.len());
        for g in &self.guardrails {
            let mut modes = vec![];
            if g.modes.pre_call {
                modes.push("pre_call");
            }
            if g.modes.during_call {
                modes.push("during_call");
            }
            if g.modes.post_call {
                modes.push("post_call");
            }
            let _ = writeln!(
                s,
                "  {} ({}, [{}]{}{}) -> {}",
                g.name,
                g.vendor.name(),
                modes.join(", "),
                if g.default_on { ", default_on" } else { "" },
                if g.fail_open { ", fail_open" } else { "" },
                g.api_base
            );
        }
        let _ = writeln!(
            s,
            "auth: {}",
            match (&self.master_key, self.virtual_keys.len()) {
                (None, 0) => "none (every request is accepted)".to_owned(),
                (Some(_), n) => format!("master key + {n} virtual key(s)"),
                (None, n) => format!("{n} virtual key(s)"),
            }
        );
        for k in &self.virtual_keys {
            let _ = writeln!(
                s,
                "  {}: models {}, guardrails [{}]",
                k.alias.as_deref().unwrap_or("(no alias)"),
                if k.models.is_empty() {
                    "all".to_owned()
                } else {
                    format!("[{}]", k.models.join(", "))
                },
                k.guardrails.join(", ")
            );
        }
        s
    }
}

#[cfg(test)]
mod tests {
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
        let e = err(
            "guardrails:\n  - guardrail_name: p\n    litellm_params:\n      guardrail: presidio\n      mode: pre_call\n",
        );
        assert!(
            e.errors[0]
                .message
                .contains("unknown guardrail vendor 'presidio'")
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

    #[test]
    fn secret_debug_is_masked() {
        assert_eq!(format!("{:?}", Secret::new("sk-123")), "*****");
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
}
