//! The config file: LiteLLM's YAML schema in, a validated [`Config`] out.
//!
//! The file is read as LiteLLM reads it ([`yaml`]: PyYAML's YAML 1.1 rules,
//! duplicate keys, merge keys; [`include`](mod@include): other files merged in), then
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

pub mod anthropic;
pub mod compat;
pub mod include;
pub mod models;
pub mod yaml;

mod decode;
mod deployments;
mod guardrails;
mod settings;
#[cfg(test)]
mod tests;

use decode::*;
use deployments::*;

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
    /// Anthropic's Messages API: `POST {base}/v1/messages`, `x-api-key`.
    Anthropic,
}

/// What an `anthropic/` deployment needs besides the common settings.
#[derive(Debug)]
pub struct AnthropicParams {
    /// Where and how it is called; `None` without a key (each request is
    /// then answered with LiteLLM's 401).
    pub endpoint: Option<anthropic::Endpoint>,
    /// `drop_params` (the deployment's, else `litellm_settings`'):
    /// parameters Anthropic does not take are dropped instead of refused.
    pub drop_params: bool,
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
    /// Set for (and only for) an `anthropic/` deployment.
    pub anthropic: Option<Box<AnthropicParams>>,
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
