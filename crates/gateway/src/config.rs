//! The config file: LiteLLM's YAML schema in, a validated [`Config`] out.
//!
//! The file is read as LiteLLM reads it ([`yaml`]: PyYAML's YAML 1.1 rules,
//! duplicate keys, merge keys; [`include`]: other files merged in), then
//! validated in three passes over the `serde_yaml::Value`, so that every
//! problem in the file is reported at once with its path
//! (`model_list[2].litellm_params.model`) instead of one per restart:
//!
//! 1. `environment_variables` are read into an overlay (the process
//!    environment is never modified);
//! 2. every string `os.environ/NAME`, at any depth, is replaced by that
//!    variable; a missing one is an error naming variable and path;
//! 3. each section is decoded by hand: a wrong type, an unknown provider or
//!    guardrail vendor is an error; a key we do not implement is a warning, so
//!    a real LiteLLM config still loads, unless it asks for a protection the
//!    gateway cannot give: then it is refused ([`compat`], "fail safe").
//!
//! Model names (bare names, wildcards, key model lists) live in [`models`].

pub mod compat;
pub mod include;
pub mod models;
pub mod yaml;

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderName, HeaderValue};
use serde_yaml::{Mapping, Value};

use compat::{Kind, Rule};
use models::{ModelKind, Pattern};

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
    /// What it means: refused, invalid, or which kind of ignored.
    pub kind: Kind,
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
        let refused = self.errors.iter().filter(|e| e.kind.is_refusal()).count();
        writeln!(
            f,
            "config refused: {refused} refused, {} error(s)",
            self.errors.len() - refused
        )?;
        f.write_str(&report(&self.errors))
    }
}

/// Issues grouped under their kind's heading (refusals first), each on its
/// own indented line: what `--check` prints.
pub fn report(issues: &[Issue]) -> String {
    use std::fmt::Write;
    let mut kinds: Vec<Kind> = issues.iter().map(|i| i.kind).collect();
    kinds.sort();
    kinds.dedup();
    let mut out = String::new();
    for kind in kinds {
        let _ = writeln!(out, "{}", kind.heading());
        for issue in issues.iter().filter(|i| i.kind == kind) {
            let _ = writeln!(out, "  {issue}");
        }
    }
    out
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
    /// The files `include` merged in, in the order they were read.
    pub included: Vec<std::path::PathBuf>,
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
    /// Set when `model_name` has `*`s: this deployment serves the names it
    /// matches (see [`models`]).
    pub pattern: Option<Pattern>,
    /// The provider prefix, e.g. `openai`.
    pub provider: String,
    pub flavor: Flavor,
    /// The model name the upstream expects (the part after the prefix). For
    /// a wildcard deployment, a template: each `*` stands for what the
    /// pattern's `*` matched.
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

/// One `model_list` entry, validated.
enum Entry {
    Chat(Box<Deployment>),
    Unserved(UnservedModel),
}

/// A `model_list` entry for a kind of model the gateway does not serve
/// (image generation, audio, embeddings, ...): it loads with a warning, and a
/// request for its name gets a 400 saying what it is.
#[derive(Clone, Debug)]
pub struct UnservedModel {
    pub model_name: String,
    pub kind: ModelKind,
    /// How the kind was known: `model_info.mode: ...`, or from a name.
    pub why: String,
    /// `model_list[3]`.
    pub path: String,
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
    /// Refuse requests carrying parts no guardrail can read (images, audio,
    /// files) instead of letting them pass.
    pub block_uninspectable: bool,
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
    /// The e-mail of the key's user (`user_email`, else
    /// `metadata.user_email`), sent to Cato as `x-cato-user-email`.
    pub user_email: Option<String>,
    pub rpm_limit: Option<u64>,
    pub tpm_limit: Option<u64>,
    pub max_parallel_requests: Option<u64>,
    pub disable_global_guardrails: bool,
    /// LiteLLM's `blocked: true`: the key is known, and refused (401).
    pub blocked: bool,
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
    /// Names in `model_list` of kinds the gateway does not serve: the router
    /// answers them with a 400 that says so, before any wildcard.
    pub unserved: Vec<UnservedModel>,
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
    /// `max_response_size_mb`: the cap on one upstream answer read whole.
    pub max_response_bytes: usize,
    /// `response_budget_mb`: what all answers read whole (upstream and
    /// guardrail answers) may hold together.
    pub response_budget: usize,
}

pub const DEFAULT_AIM_BASE: &str = "https://api.aim.security";
pub const DEFAULT_CATO_BASE: &str = "https://api.aisec.catonetworks.com";

/// Read and validate a config file, and the files it includes.
pub fn load(path: &Path, env: &Env) -> Result<(Config, Vec<Issue>), Errors> {
    let mut errors = vec![];
    let mut warnings = vec![];
    let root = match include::read(path, None, &mut warnings) {
        Ok(v) => v,
        Err(message) => {
            return Err(Errors {
                errors: vec![Issue {
                    path: String::new(),
                    message,
                    kind: Kind::Invalid,
                }],
                warnings,
            });
        }
    };
    let (root, origins) = include::merge(root, path, &mut errors, &mut warnings);
    let mut result = validate(root, env, errors, warnings);
    // A problem in an included entry names its file (notes about loading
    // name theirs already).
    let (errors, warnings) = match &mut result {
        Ok((config, warnings)) => {
            config.included = origins.included().to_vec();
            (None, warnings)
        }
        Err(e) => (Some(&mut e.errors), &mut e.warnings),
    };
    let issues = errors.into_iter().flatten().chain(warnings.iter_mut());
    for issue in issues.filter(|i| i.kind != Kind::Loading) {
        if let Some(file) = origins.file_of(&issue.path) {
            issue.message = format!("{} (in {})", issue.message, file.display());
        }
    }
    result
}

/// Validate a config from YAML text (no `include`: that needs a file).
pub fn parse(text: &str, env: &Env) -> Result<(Config, Vec<Issue>), Errors> {
    let parsed = yaml::parse(text).map_err(|e| Errors {
        errors: vec![Issue {
            path: String::new(),
            message: format!("not valid YAML: {e}"),
            kind: Kind::Invalid,
        }],
        warnings: vec![],
    })?;
    let mut errors = vec![];
    let warnings = parsed
        .duplicates
        .into_iter()
        .map(|(path, line)| Issue {
            path,
            message: format!(
                "duplicate key at line {line}: the last value is used (as PyYAML does)"
            ),
            kind: Kind::Loading,
        })
        .collect();
    let mut root = parsed.value;
    if let Value::Mapping(m) = &mut root
        && m.remove("include").is_some()
    {
        errors.push(Issue {
            path: "include".to_owned(),
            message: "include needs a config file to resolve paths against".to_owned(),
            kind: Kind::Invalid,
        });
    }
    validate(root, env, errors, warnings)
}

fn validate(
    mut root: Value,
    env: &Env,
    errors: Vec<Issue>,
    warnings: Vec<Issue>,
) -> Result<(Config, Vec<Issue>), Errors> {
    if root.is_null() {
        root = Value::Mapping(Mapping::new());
    }
    let mut cx = Cx {
        env: env.clone(),
        errors,
        warnings,
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
        self.issue(Kind::Invalid, path, message);
    }

    fn warn(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.issue(Kind::Unsupported, path, message);
    }

    /// An issue of `kind`: an error when it is a refusal or invalid, else a
    /// warning.
    fn issue(&mut self, kind: Kind, path: impl Into<String>, message: impl Into<String>) {
        let issue = Issue {
            path: path.into(),
            message: message.into(),
            kind,
        };
        if kind.is_refusal() || kind == Kind::Invalid {
            self.errors.push(issue);
        } else {
            self.warnings.push(issue);
        }
    }

    /// Apply `rule` to `path` set to `value`: refuse it when it asks for a
    /// protection, warn otherwise.
    fn apply(&mut self, rule: Rule, path: String, value: &Value) {
        match rule {
            Rule::Refuse(kind, why) if compat::asks_for_something(value) => {
                self.issue(kind, path, why)
            }
            // Set to null or false: it asks for nothing.
            Rule::Refuse(..) => {}
            Rule::Ignore(kind, note) => self.issue(kind, path, note),
        }
    }

    /// Every key of `map` not in `known`, through `rule` (see [`compat`]).
    fn other_keys(&mut self, map: &Mapping, path: &str, known: &[&str], rule: fn(&str) -> Rule) {
        for (key, value) in map {
            match key.as_str() {
                Some(k) if known.contains(&k) => {}
                Some(k) => self.apply(rule(k), join(path, k), value),
                None => self.warn(path, "non-string key, ignored"),
            }
        }
    }

    /// Warn about every key of `map` not in `known`.
    fn unknown_keys(&mut self, map: &Mapping, path: &str, known: &[&str]) {
        self.other_keys(map, path, known, compat::not_implemented);
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
            let path = join("environment_variables", name);
            let value = match v {
                Value::String(s) => match s.strip_prefix("os.environ/") {
                    // LiteLLM reads these from the environment, and sets
                    // nothing when that has no such variable.
                    Some(from) => match self.env.get(from) {
                        Some(value) => value,
                        None => continue,
                    },
                    None => s.clone(),
                },
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                Value::Null => {
                    self.issue(
                        Kind::Loading,
                        path,
                        "no value: the variable is set empty, which os.environ/ treats as unset (LiteLLM sets the text \"None\")",
                    );
                    String::new()
                }
                other => {
                    self.error(
                        path,
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
        self.other_keys(
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
            compat::top_level,
        );
        let empty = Mapping::new();
        let litellm = match field(map, "litellm_settings") {
            Some(v) => self.mapping(v, "litellm_settings").unwrap_or(&empty),
            None => &empty,
        };

        let outbound = self.outbound(map);
        let mut guardrails = self.guardrails(map);
        self.legacy_guardrails(litellm, &mut guardrails);
        self.callbacks(litellm);
        let (deployments, unserved) = self.model_list(map);
        let names = Names::new(&deployments, &unserved);
        let guardrail_names: HashSet<&str> = guardrails.iter().map(|g| g.name.as_str()).collect();
        let (master_key, server, key_parallel) = self.general_settings(map);
        let virtual_keys = self.virtual_keys(
            map,
            &names,
            &guardrail_names,
            master_key.as_ref(),
            key_parallel,
        );
        let mut router = self.router_settings(map, litellm, &names);
        router.unserved = unserved;

        Some(Config {
            deployments: deployments.into_iter().map(Arc::new).collect(),
            guardrails,
            master_key,
            virtual_keys,
            router,
            server,
            included: vec![],
            outbound,
        })
    }

    fn model_list(&mut self, root: &Mapping) -> (Vec<Deployment>, Vec<UnservedModel>) {
        let Some(v) = field(root, "model_list") else {
            self.warn(
                "model_list",
                "no models configured; every request will be refused",
            );
            return (vec![], vec![]);
        };
        let Some(items) = self.sequence(v, "model_list") else {
            return (vec![], vec![]);
        };
        let mut out = Vec::with_capacity(items.len());
        let mut unserved: Vec<UnservedModel> = vec![];
        let mut ids = HashSet::new();
        for (i, item) in items.iter().enumerate() {
            let path = format!("model_list[{i}]");
            match self.deployment(item, &path, i) {
                Some(Entry::Chat(d)) => {
                    if !ids.insert(d.id.clone()) {
                        self.error(
                            format!("{path}.model_info.id"),
                            format!("duplicate deployment id {:?}", d.id),
                        );
                    }
                    out.push(*d);
                }
                Some(Entry::Unserved(u)) => unserved.push(u),
                None => {}
            }
        }
        // A name with chat deployments is a chat group: other entries of
        // that name are not used.
        unserved.retain(|u| {
            let chat = out.iter().any(|d| d.model_name == u.model_name);
            if chat {
                self.issue(
                    Kind::Unserved,
                    u.path.clone(),
                    format!(
                        "{} named '{}', like chat deployments: not used",
                        u.kind.describe(),
                        u.model_name
                    ),
                );
            } else {
                self.issue(
                    Kind::Unserved,
                    u.path.clone(),
                    format!(
                        "'{}' is {} ({}): not served; a request for it gets a 400",
                        u.model_name,
                        u.kind.describe(),
                        u.why
                    ),
                );
            }
            !chat
        });
        (out, unserved)
    }

    fn deployment(&mut self, item: &Value, path: &str, index: usize) -> Option<Entry> {
        let map = self.mapping(item, path)?;
        self.unknown_keys(map, path, &["model_name", "litellm_params", "model_info"]);
        let model_name = self.required_string(map, path, "model_name");
        let (params, params_path) = self.required_mapping(map, path, "litellm_params")?;
        let p = params_path.as_str();
        self.other_keys(
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
            compat::deployment_param,
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

        let (model_info_id, mode) = match field(map, "model_info") {
            Some(info) => {
                let info_path = join(path, "model_info");
                let info = self.mapping(info, &info_path)?;
                for (k, v) in info {
                    if let Some(rule) = k.as_str().and_then(compat::model_info) {
                        let key = k.as_str().unwrap_or_default();
                        self.apply(rule, join(&info_path, key), v);
                    }
                }
                (
                    self.string(info, &info_path, "id"),
                    self.mode(info, &info_path),
                )
            }
            None => (None, None),
        };

        let model_name = model_name?;
        let model = model?;
        let unserved = |kind: ModelKind, why: String| {
            Some(Entry::Unserved(UnservedModel {
                model_name: model_name.clone(),
                kind,
                why,
                path: path.to_owned(),
            }))
        };
        // A kind the gateway does not serve: nothing else about it matters.
        if let Some(kind) = mode.clone().filter(|k| !k.is_chat()) {
            return unserved(kind.clone(), format!("model_info.mode: {}", kind.mode()));
        }
        let (provider_name, upstream_model) =
            match split_provider(&model, custom_provider.as_deref()) {
                Ok(v) => v,
                Err(msg) => {
                    self.error(join(p, "model"), msg);
                    return None;
                }
            };
        // OpenAI's names say what the model does (`dall-e-3` draws); an Azure
        // entry for such a model may even have no deployment name (`azure/`),
        // and then its model_name says it.
        if mode.is_none() && matches!(provider_name.as_str(), "openai" | "azure") {
            let named = if upstream_model.is_empty() {
                &model_name
            } else {
                &upstream_model
            };
            let kind = models::openai_kind(named);
            if !kind.is_chat() {
                return unserved(kind, format!("inferred from '{named}'"));
            }
        }
        if upstream_model.is_empty() {
            self.error(
                join(p, "model"),
                format!("'{model}' names no model or deployment after the provider"),
            );
            return None;
        }
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

        let pattern = Pattern::new(&model_name);
        if upstream_model.contains('*') {
            if provider.flavor == Flavor::Azure {
                self.error(
                    join(p, "model"),
                    "a wildcard in an azure/ deployment name is not supported (the deployment is part of the URL)",
                );
                return None;
            }
            if pattern.is_none() {
                self.warn(
                    join(p, "model"),
                    format!("model_name '{model_name}' has no '*': '{upstream_model}' is sent upstream as it is"),
                );
            }
        }

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
        Some(Entry::Chat(Box::new(Deployment {
            id,
            model_name,
            pattern,
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
        })))
    }

    /// `model_info.mode`: LiteLLM's kind of model.
    fn mode(&mut self, info: &Mapping, path: &str) -> Option<ModelKind> {
        let mode = self.string(info, path, "mode")?;
        let kind = ModelKind::from_mode(&mode);
        if kind.is_none() {
            self.warn(
                join(path, "mode"),
                format!("unknown mode '{mode}': served as a chat model"),
            );
        }
        kind
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
                "fail_on_error",
                "unreachable_fallback",
                "block_uninspectable",
                "ssl_verify",
            ],
        );
        let vendor = self.required_string(params, p, "guardrail");
        let modes = self.modes(params, p, name.as_deref().unwrap_or("?"));
        let default_on = self.boolean(params, p, "default_on").unwrap_or(false);
        let vendor = match vendor?.as_str() {
            "aim" => Vendor::Aim,
            "cato_networks" => Vendor::CatoNetworks,
            other if compat::is_guardrail_vendor(other) => {
                self.issue(
                    Kind::RefusedCheck,
                    join(p, "guardrail"),
                    format!(
                        "guardrail vendor '{other}' is not implemented (supported: aim, cato_networks): requests would go unchecked"
                    ),
                );
                return None;
            }
            other => {
                self.error(
                    join(p, "guardrail"),
                    format!("unknown guardrail vendor '{other}'; supported: aim, cato_networks"),
                );
                return None;
            }
        };
        self.vendor_guardrail(name, vendor, params, p, modes, default_on)
    }

    /// A guardrail of a vendor the gateway speaks, from its parameters
    /// (`api_key`, `api_base`, `timeout`, `fail_open`; the vendor's env
    /// variables otherwise).
    fn vendor_guardrail(
        &mut self,
        name: Option<String>,
        vendor: Vendor,
        params: &Mapping,
        p: &str,
        modes: Option<Modes>,
        default_on: bool,
    ) -> Option<GuardrailConfig> {
        let api_key = self.string(params, p, "api_key").filter(|k| !k.is_empty());
        let api_base = self.string(params, p, "api_base").filter(|b| !b.is_empty());
        let timeout = self
            .seconds(params, p, "timeout")
            .unwrap_or(Duration::from_secs(10));
        let fail_open = self.fail_open(params, p);
        let block_uninspectable = self
            .boolean(params, p, "block_uninspectable")
            .unwrap_or(false);
        let ssl_verify = self.ssl_verify(params, p);
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
                "Couldn't get Cato Networks api key, either set the `CATO_API_KEY` in the environment or pass it as a parameter to the guardrail in the config file",
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
            block_uninspectable,
            ssl_verify,
        })
    }

    /// `fail_open`, or LiteLLM's spellings of it: `fail_on_error: false`,
    /// `unreachable_fallback: fail_open`. Spellings that disagree are an
    /// error: which one the operator meant cannot be guessed.
    fn fail_open(&mut self, params: &Mapping, p: &str) -> bool {
        let mut said: Vec<(&str, bool)> = vec![];
        if let Some(v) = self.boolean(params, p, "fail_open") {
            said.push(("fail_open", v));
        }
        if let Some(v) = self.boolean(params, p, "fail_on_error") {
            said.push(("fail_on_error", !v));
        }
        if let Some(v) = self.string(params, p, "unreachable_fallback") {
            match v.as_str() {
                "fail_open" => said.push(("unreachable_fallback", true)),
                "fail_closed" => said.push(("unreachable_fallback", false)),
                other => self.error(
                    join(p, "unreachable_fallback"),
                    format!("expected fail_open or fail_closed, found '{other}'"),
                ),
            }
        }
        let open = said.first().is_some_and(|(_, v)| *v);
        if let Some((key, _)) = said.iter().find(|(_, v)| *v != open) {
            self.error(
                join(p, key),
                format!("contradicts {} (fail open or closed?)", said[0].0),
            );
        }
        open
    }

    /// `litellm_settings.guardrails`, LiteLLM's older spelling of
    /// guardrails: `[{name: {callbacks: [aim], default_on: true,
    /// callback_args: {aim: {api_key: ...}}}}]`. A callback the gateway
    /// speaks becomes a guardrail called `name`, selected as any other (by
    /// default_on, by the request, by the key). LiteLLM runs such a callback
    /// on every hook; here it runs `callback_args.<vendor>.mode`, by default
    /// pre_call and post_call (during_call would repeat the pre_call check).
    /// Any other guardrail callback is refused, as in `callbacks`.
    fn legacy_guardrails(&mut self, litellm: &Mapping, out: &mut Vec<GuardrailConfig>) {
        let Some(v) = field(litellm, "guardrails") else {
            return;
        };
        let Some(items) = self.sequence(v, "litellm_settings.guardrails") else {
            return;
        };
        for (i, item) in items.iter().enumerate() {
            let path = format!("litellm_settings.guardrails[{i}]");
            let Some(entries) = self.mapping(item, &path) else {
                continue;
            };
            for (name, spec) in entries {
                let Some(name) = name.as_str() else {
                    self.error(&path, "guardrail names must be strings");
                    continue;
                };
                let path = join(&path, name);
                let Some(spec) = self.mapping(spec, &path) else {
                    continue;
                };
                self.unknown_keys(
                    spec,
                    &path,
                    &[
                        "callbacks",
                        "default_on",
                        "logging_only",
                        "enabled_roles",
                        "callback_args",
                    ],
                );
                if field(spec, "callbacks").is_none() {
                    self.error(join(&path, "callbacks"), "is required");
                    continue;
                }
                let callbacks = self.string_list(spec, &path, "callbacks");
                let default_on = self.boolean(spec, &path, "default_on").unwrap_or(false);
                let logging_only = self.boolean(spec, &path, "logging_only").unwrap_or(false);
                let empty = Mapping::new();
                let args = match field(spec, "callback_args") {
                    Some(a) => self
                        .mapping(a, &join(&path, "callback_args"))
                        .unwrap_or(&empty),
                    None => &empty,
                };
                let mut spoken: Option<&str> = None;
                for (j, callback) in callbacks.iter().enumerate() {
                    let cpath = format!("{path}.callbacks[{j}]");
                    if logging_only {
                        self.issue(
                            Kind::LoggingCallback,
                            cpath,
                            format!("'{callback}' with logging_only: it would only redact what is logged, and the gateway logs no messages"),
                        );
                        continue;
                    }
                    let vendor = match callback.as_str() {
                        "aim" => Vendor::Aim,
                        "cato_networks" => Vendor::CatoNetworks,
                        other => {
                            self.callback(&cpath, other, true);
                            continue;
                        }
                    };
                    if let Some(first) = spoken {
                        self.error(
                            cpath,
                            format!(
                                "'{name}' already runs {first}: give each guardrail vendor its own entry"
                            ),
                        );
                        continue;
                    }
                    spoken = Some(vendor.name());
                    let apath = join(&join(&path, "callback_args"), callback);
                    let params = match field(args, callback) {
                        Some(a) => self.mapping(a, &apath).unwrap_or(&empty),
                        None => &empty,
                    };
                    self.unknown_keys(
                        params,
                        &apath,
                        &["mode", "api_key", "api_base", "timeout", "fail_open"],
                    );
                    let modes = if field(params, "mode").is_some() {
                        self.modes(params, &apath, name)
                    } else {
                        Some(Modes {
                            pre_call: true,
                            during_call: false,
                            post_call: true,
                        })
                    };
                    let g = self.vendor_guardrail(
                        Some(name.to_owned()),
                        vendor,
                        params,
                        &apath,
                        modes,
                        default_on,
                    );
                    if let Some(g) = g {
                        if out.iter().any(|o| o.name == g.name) {
                            self.error(&path, format!("duplicate guardrail name '{}'", g.name));
                            continue;
                        }
                        out.push(g);
                    }
                }
            }
        }
    }

    /// The callback lists of `litellm_settings`. In `callbacks` (hooks that
    /// run before and after the call, and may block it) a guardrail, a rate
    /// limiter or custom code is refused; the other lists only log.
    fn callbacks(&mut self, litellm: &Mapping) {
        const LOGGING_LISTS: &[&str] = &[
            "success_callback",
            "failure_callback",
            "service_callback",
            "input_callback",
            "audit_log_callbacks",
        ];
        for key in std::iter::once("callbacks").chain(LOGGING_LISTS.iter().copied()) {
            let Some(v) = field(litellm, key) else {
                continue;
            };
            let path = join("litellm_settings", key);
            // LiteLLM takes a single string as one custom callback.
            let items: Vec<(String, &Value)> = match v {
                Value::Sequence(items) => items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| (format!("{path}[{i}]"), item))
                    .collect(),
                other => vec![(path.clone(), other)],
            };
            for (ipath, item) in items {
                let Value::String(name) = item else {
                    self.error(
                        ipath,
                        format!("expected a string, found {}", type_name(item)),
                    );
                    continue;
                };
                if key == "callbacks" {
                    self.callback(&ipath, name, false);
                } else {
                    self.issue(Kind::LoggingCallback, ipath, format!("'{name}'"));
                }
            }
        }
    }

    /// One entry of `litellm_settings.callbacks` (or of a legacy guardrail's
    /// callbacks) the gateway does not run.
    fn callback(&mut self, path: &str, name: &str, legacy: bool) {
        let hint = if legacy {
            ""
        } else {
            "; declare Aim or Cato Networks under guardrails: instead"
        };
        match compat::callback(name) {
            compat::Callback::Logging if name == "prometheus" => self.issue(
                Kind::LoggingCallback,
                path,
                "'prometheus': the gateway serves its own metrics at /metrics",
            ),
            compat::Callback::Logging => {
                self.issue(Kind::LoggingCallback, path, format!("'{name}'"));
            }
            compat::Callback::Modifier => self.warn(
                path,
                format!("'{name}' changes requests and is not implemented"),
            ),
            compat::Callback::RateLimiter => self.issue(
                Kind::RefusedLimit,
                path,
                format!("'{name}' limits requests and is not implemented"),
            ),
            compat::Callback::Guardrail => self.issue(
                Kind::RefusedCheck,
                path,
                format!(
                    "'{name}' is a guardrail callback the gateway does not run: requests would go unchecked{hint}"
                ),
            ),
            compat::Callback::Custom => self.issue(
                Kind::RefusedCheck,
                path,
                format!(
                    "'{name}' is custom callback code, which may check or block requests and cannot run in the gateway (if it only logs, move it to success_callback)"
                ),
            ),
        }
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

    /// `general_settings`: the master key, the serving settings, and
    /// `max_parallel_requests` (the default for each virtual key).
    fn general_settings(
        &mut self,
        root: &Mapping,
    ) -> (Option<Secret>, ServerSettings, Option<u64>) {
        let mut server = ServerSettings {
            max_request_bytes: 16 * 1024 * 1024,
            shutdown_grace: Duration::from_secs(30),
            max_parallel_requests: None,
            max_connections: 10_000,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            max_response_bytes: crate::body::budget::DEFAULT_MAX_RESPONSE,
            response_budget: crate::body::budget::DEFAULT_BUDGET,
        };
        let Some(v) = field(root, "general_settings") else {
            return (None, server, None);
        };
        let Some(map) = self.mapping(v, "general_settings") else {
            return (None, server, None);
        };
        let p = "general_settings";
        self.other_keys(
            map,
            p,
            &[
                "master_key",
                "max_request_size_mb",
                "shutdown_grace_period",
                "global_max_parallel_requests",
                "max_parallel_requests",
                "max_connections",
                "request_header_timeout",
                "request_body_timeout",
                "enforce_fallback_model_access",
                "max_response_size_mb",
                "response_budget_mb",
            ],
            compat::general_setting,
        );
        if self.boolean(map, p, "enforce_fallback_model_access") == Some(false) {
            self.issue(
                Kind::Loosens,
                join(p, "enforce_fallback_model_access"),
                "every group a request may reach is checked against the key's models",
            );
        }
        let key_parallel = self.integer(map, p, "max_parallel_requests");
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
        let mut megabytes = |key: &str| match self.number(map, p, key) {
            Some(mb) if mb <= 0.0 => {
                self.error(join(p, key), "must be positive");
                None
            }
            Some(mb) => Some((mb * 1024.0 * 1024.0) as usize),
            None => None,
        };
        let max_response = megabytes("max_response_size_mb");
        let budget = megabytes("response_budget_mb");
        if let Some(n) = max_response {
            server.max_response_bytes = n;
        }
        match budget {
            Some(n) if n < server.max_response_bytes => self.error(
                join(p, "response_budget_mb"),
                "must be at least max_response_size_mb (one answer must fit)",
            ),
            Some(n) => server.response_budget = n,
            // Room for at least one answer of the largest size.
            None => server.response_budget = server.response_budget.max(server.max_response_bytes),
        }
        (master_key.map(Secret), server, key_parallel)
    }

    fn virtual_keys(
        &mut self,
        root: &Mapping,
        names: &Names,
        guardrails: &HashSet<&str>,
        master: Option<&Secret>,
        default_parallel: Option<u64>,
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
            self.other_keys(
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
                    "user_email",
                    "blocked",
                ],
                compat::key_field,
            );
            let key = self.required_string(map, p, "key");
            let user_email = self.string(map, p, "user_email");
            let alias = self.string(map, p, "key_alias");
            let models = self.string_list(map, p, "models");
            for (j, m) in models.iter().enumerate() {
                // LiteLLM's special names mean "everything"; a name with `*`
                // is a pattern (see `models::key_allows`).
                if m == "*" || m == "all-proxy-models" || m.contains('*') || names.serves(m) {
                    continue;
                }
                let message = match names.unserved.get(m) {
                    Some(kind) => format!(
                        "model '{m}' is {} the gateway does not serve",
                        kind.describe()
                    ),
                    None => format!("model '{m}' is not in model_list"),
                };
                self.warn(format!("{p}.models[{j}]"), message);
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
            let user_email = user_email.or_else(|| {
                metadata
                    .get("user_email")
                    .and_then(|e| e.as_str())
                    .map(str::to_owned)
            });
            let rpm_limit = self.integer(map, p, "rpm_limit");
            let tpm_limit = self.integer(map, p, "tpm_limit");
            let max_parallel_requests = self
                .integer(map, p, "max_parallel_requests")
                .or(default_parallel);
            let disable_global_guardrails = self
                .boolean(map, p, "disable_global_guardrails")
                .unwrap_or(false);
            let blocked = self.boolean(map, p, "blocked").unwrap_or(false);
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
                user_email,
                rpm_limit,
                tpm_limit,
                max_parallel_requests,
                disable_global_guardrails,
                blocked,
            }));
        }
        out
    }

    fn router_settings(
        &mut self,
        root: &Mapping,
        litellm: &Mapping,
        names: &Names,
    ) -> RouterSettings {
        let empty = Mapping::new();
        let router = match field(root, "router_settings") {
            Some(v) => self.mapping(v, "router_settings").unwrap_or(&empty),
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
        self.other_keys(
            router,
            "router_settings",
            &router_known,
            compat::router_setting,
        );
        // Read elsewhere: the callback lists and the legacy guardrails; and
        // two the gateway honours by design (it never logs messages or keys).
        let mut litellm_known = SHARED.to_vec();
        litellm_known.extend([
            "guardrails",
            "callbacks",
            "success_callback",
            "failure_callback",
            "service_callback",
            "input_callback",
            "audit_log_callbacks",
            "turn_off_message_logging",
            "redact_user_api_key_info",
            "ssl_verify",
        ]);
        self.other_keys(
            litellm,
            "litellm_settings",
            &litellm_known,
            compat::litellm_setting,
        );

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
            unserved: vec![],
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
            settings.fallbacks = self.fallback_map(m, p, k, names);
        }
        if let Some((m, p, k)) = locate(&sources, &["context_window_fallbacks"]) {
            settings.context_window_fallbacks = self.fallback_map(m, p, k, names);
        }
        if let Some((m, p, k)) = locate(&sources, &["content_policy_fallbacks"]) {
            settings.content_policy_fallbacks = self.fallback_map(m, p, k, names);
        }
        if let Some((m, p, k)) = locate(&sources, &["default_fallbacks"]) {
            let list = self.string_list(m, p, k);
            let path = join(p, k);
            settings.default_fallbacks = list
                .into_iter()
                .enumerate()
                .filter(|(i, g)| self.fallback_target(names, &format!("{path}[{i}]"), g))
                .map(|(_, g)| g)
                .collect();
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

    /// `[{"gpt-4o": ["gpt-3.5-turbo"]}, ...]`. A name may be served by a
    /// wildcard; the key `"*"` is LiteLLM's generic fallback, for every
    /// group without its own entry.
    fn fallback_map(
        &mut self,
        map: &Mapping,
        path: &str,
        key: &str,
        names: &Names,
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
                let fpath = join(&ipath, from);
                if from != "*" && !names.serves(from) {
                    match names.unserved.get(from) {
                        Some(kind) => self.issue(
                            Kind::Unserved,
                            fpath.clone(),
                            format!(
                                "'{from}' is {}, never served: this entry is not used",
                                kind.describe()
                            ),
                        ),
                        None => self.error(
                            fpath.clone(),
                            format!("model '{from}' is not in model_list"),
                        ),
                    }
                }
                let targets: Vec<String> = self
                    .string_list(m, &ipath, from)
                    .into_iter()
                    .enumerate()
                    .filter(|(j, t)| self.fallback_target(names, &format!("{fpath}[{j}]"), t))
                    .map(|(_, t)| t)
                    .collect();
                out.push((from.to_owned(), targets));
            }
        }
        out
    }

    /// Whether a fallback to `name` can be kept: an error when nothing
    /// serves it, a warning (and dropped) when it is a model of a kind the
    /// gateway does not serve.
    fn fallback_target(&mut self, names: &Names, path: &str, name: &str) -> bool {
        if names.serves(name) {
            return true;
        }
        match names.unserved.get(name) {
            Some(kind) => self.issue(
                Kind::Unserved,
                path,
                format!(
                    "'{name}' is {}: this fallback is never tried",
                    kind.describe()
                ),
            ),
            None => self.error(path, format!("model '{name}' is not in model_list")),
        }
        false
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

/// `openai/gpt-4o` → (`openai`, `gpt-4o`). A bare name LiteLLM infers a
/// provider for (`gpt-4o`, `dall-e-3`, `*`) gets that provider
/// ([`models::infer_provider`]). `azure/` alone gives an empty name (LiteLLM
/// uses it for Azure's image models, which need no deployment).
fn split_provider(model: &str, custom: Option<&str>) -> Result<(String, String), String> {
    if let Some(provider) = custom {
        let name = model
            .strip_prefix(provider)
            .and_then(|m| m.strip_prefix('/'))
            .unwrap_or(model);
        return Ok((provider.to_owned(), name.to_owned()));
    }
    if let Some((provider, name)) = model.split_once('/')
        && !provider.is_empty()
        && (!name.is_empty() || PROVIDERS.iter().any(|p| p.prefix == provider))
    {
        return Ok((provider.to_owned(), name.to_owned()));
    }
    if let Some(provider) = models::infer_provider(model) {
        return Ok((provider.to_owned(), model.to_owned()));
    }
    Err(format!(
        "model '{model}' needs a provider prefix, e.g. openai/{model} or hosted_vllm/{model}"
    ))
}

/// The model names a config serves, for checking what refers to them.
struct Names {
    /// Groups without `*`.
    explicit: HashSet<String>,
    /// Wildcard groups, most specific first.
    patterns: Vec<(Pattern, ())>,
    unserved: HashMap<String, ModelKind>,
}

impl Names {
    fn new(deployments: &[Deployment], unserved: &[UnservedModel]) -> Self {
        let mut patterns: Vec<(Pattern, ())> = vec![];
        let mut explicit = HashSet::new();
        for d in deployments {
            match &d.pattern {
                Some(p) if !patterns.iter().any(|(q, _)| q.text() == p.text()) => {
                    patterns.push((p.clone(), ()));
                }
                Some(_) => {}
                None => {
                    explicit.insert(d.model_name.clone());
                }
            }
        }
        models::sort_by_specificity(&mut patterns);
        Names {
            explicit,
            patterns,
            unserved: unserved
                .iter()
                .map(|u| (u.model_name.clone(), u.kind.clone()))
                .collect(),
        }
    }

    /// A chat request for `name` would be served (explicitly or by a wildcard).
    fn serves(&self, name: &str) -> bool {
        self.explicit.contains(name)
            || (!self.unserved.contains_key(name) && models::route(&self.patterns, name).is_some())
    }
}

impl Config {
    /// Every secret the file configures, to keep out of what clients see.
    pub fn secrets(&self) -> crate::error::Secrets {
        crate::error::Secrets::new(
            self.deployments
                .iter()
                .filter_map(|d| d.api_key.as_ref())
                .chain(self.guardrails.iter().map(|g| &g.api_key))
                .chain(self.master_key.as_ref())
                .chain(self.virtual_keys.iter().map(|k| &k.key))
                .map(Secret::expose),
        )
    }

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
            let wildcard = if name.contains('*') {
                " (wildcard)"
            } else {
                ""
            };
            let _ = writeln!(s, "  {name}{wildcard} -> {}", targets.join(", "));
        }
        if !self.router.unserved.is_empty() {
            let _ = writeln!(s, "not served ({}):", self.router.unserved.len());
            for u in &self.router.unserved {
                let _ = writeln!(s, "  {}: {} ({})", u.model_name, u.kind.describe(), u.why);
            }
        }
        for f in &self.included {
            let _ = writeln!(s, "included: {}", f.display());
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
                "  {}{}: models {}, guardrails [{}]",
                k.alias.as_deref().unwrap_or("(no alias)"),
                if k.blocked { " (blocked)" } else { "" },
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
        // claude-* means Anthropic, not supported yet.
        let e = err(
            "model_list:\n  - model_name: c\n    litellm_params: {model: claude-3-5-sonnet-20240620, api_key: k}\n",
        );
        assert!(
            e.errors[0]
                .message
                .contains("provider 'anthropic' is not supported yet"),
            "{e}"
        );
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
            w.iter()
                .any(|i| i.path == "router_settings.fallbacks[0].primary[1]"
                    && i.kind == Kind::Unserved),
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
            e.to_string().contains(
                "general_settings.response_budget_mb: must be at least max_response_size_mb"
            ),
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
}
