//! What the gateway does with the LiteLLM config keys it does not implement.
//!
//! The rule (docs/spec/gateway.md section 2, "Fail safe"): a key whose meaning is
//! "protect these requests" (authenticate, restrict, check, limit) is
//! honoured or refused at startup with its path and why, never a warning,
//! since a warning would let the gateway serve without the protection the
//! operator believes is there. Every other key the gateway does not
//! implement is a warning, grouped by what ignoring it means.
//!
//! A key is security-bearing when ignoring it would let through a request
//! the operator configured to be refused, or let a caller do what the
//! operator restricted. Keys that only loosen security (forwarding client
//! headers, public routes), and keys for features the gateway does not have
//! at all (a database, the admin UI, MCP, files: the gateway answers 404
//! there), are not: ignoring them can only refuse more.
//!
//! The tables follow LiteLLM 1.108.7 (`litellm/proxy/_types.py`,
//! `proxy_server.py`, the proxy's config docs).

mod callbacks;
mod keys;

use callbacks::*;
use keys::*;

use serde_yaml::Value;

/// What an issue means for the operator; `--check` groups issues by it, in
/// this order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// Authentication or authorization the gateway cannot do.
    RefusedAuth,
    /// A check on requests or responses the gateway cannot run.
    RefusedCheck,
    /// A spend or rate limit the gateway does not enforce.
    RefusedLimit,
    /// A wrong value: a type, a provider, a reference.
    Invalid,
    /// A model of a kind the gateway does not serve (image generation, ...).
    Unserved,
    /// Read as LiteLLM reads it, worth knowing: a duplicate key, an include.
    Loading,
    /// Ignored, and ignoring it keeps the gateway stricter than asked.
    Loosens,
    LoggingCallback,
    NeedsDatabase,
    AdminUi,
    /// A feature the gateway does not serve at all.
    NotServed,
    /// Anything else not implemented.
    Unsupported,
}

impl Kind {
    /// The heading `--check` prints above issues of this kind.
    pub fn heading(self) -> &'static str {
        match self {
            Kind::RefusedAuth => "refused: auth you rely on",
            Kind::RefusedCheck => "refused: checks you rely on",
            Kind::RefusedLimit => "refused: limits you rely on",
            Kind::Invalid => "error: invalid config",
            Kind::Unserved => {
                "loaded: models the gateway does not serve (a request for one gets a 400)"
            }
            Kind::Loading => "loaded: as LiteLLM loads it",
            Kind::Loosens => "ignored: would loosen security (the gateway stays strict)",
            Kind::LoggingCallback => "ignored: logging callback",
            Kind::NeedsDatabase => "ignored: needs a database",
            Kind::AdminUi => "ignored: admin UI and SSO",
            Kind::NotServed => "ignored: a feature the gateway does not serve",
            Kind::Unsupported => "ignored: not implemented",
        }
    }

    pub fn is_refusal(self) -> bool {
        matches!(
            self,
            Kind::RefusedAuth | Kind::RefusedCheck | Kind::RefusedLimit
        )
    }
}

/// What the gateway does with one key it does not implement.
#[derive(Clone, Copy, Debug)]
pub enum Rule {
    /// Refused whenever the key asks for something ([`asks_for_something`]).
    Refuse(Kind, &'static str),
    /// A warning of this kind, with a note.
    Ignore(Kind, &'static str),
}

/// Whether a value turns a key on: anything but null, `false`, `0` or "".
/// (An empty list is on: `allowed_ips: []` allows no address.)
pub fn asks_for_something(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64() != Some(0.0),
        Value::String(s) => !s.is_empty() && s != "false" && s != "False",
        _ => true,
    }
}

const NOT_IMPLEMENTED: Rule = Rule::Ignore(Kind::Unsupported, "not implemented");

fn lookup(table: &[(&str, Rule)], key: &str) -> Rule {
    table
        .iter()
        .find(|(k, _)| *k == key)
        .map_or(NOT_IMPLEMENTED, |(_, r)| *r)
}

/// A key of a section the gateway implements whole (a model entry, a
/// guardrail): anything else there is simply not implemented.
pub fn not_implemented(_key: &str) -> Rule {
    NOT_IMPLEMENTED
}
pub fn general_setting(key: &str) -> Rule {
    lookup(GENERAL, key)
}
pub fn litellm_setting(key: &str) -> Rule {
    lookup(LITELLM, key)
}
pub fn router_setting(key: &str) -> Rule {
    lookup(ROUTER, key)
}
pub fn deployment_param(key: &str) -> Rule {
    lookup(DEPLOYMENT, key)
}
/// `None`: a descriptive key that loads silently.
pub fn model_info(key: &str) -> Option<Rule> {
    MODEL_INFO.iter().find(|(k, _)| *k == key).map(|(_, r)| *r)
}
pub fn key_field(key: &str) -> Rule {
    lookup(KEY, key)
}
pub fn top_level(key: &str) -> Rule {
    lookup(TOP, key)
}

/// What a `litellm_settings` callback name is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Callback {
    /// Sends logs, traces or spend somewhere: nothing to protect.
    Logging,
    /// Checks (and may block or rewrite) requests or answers.
    Guardrail,
    /// Limits requests.
    RateLimiter,
    /// Changes requests (prompt management, caching hints, interceptions).
    Modifier,
    /// A Python object (`module.instance`) or a name LiteLLM does not know:
    /// it may check requests.
    Custom,
}

/// A guardrail vendor LiteLLM knows, or custom guardrail code
/// (`module.Class`).
pub fn is_guardrail_vendor(name: &str) -> bool {
    GUARDRAIL_VENDORS.contains(&name) || name.contains('.')
}

pub fn callback(name: &str) -> Callback {
    let is = |list: &[&str]| list.contains(&name);
    if is(GUARDRAIL_CALLBACKS) {
        Callback::Guardrail
    } else if is(RATE_LIMIT_CALLBACKS) {
        Callback::RateLimiter
    } else if is(LOGGING_CALLBACKS) {
        Callback::Logging
    } else if is(MODIFIER_CALLBACKS) {
        Callback::Modifier
    } else {
        Callback::Custom
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_have_no_duplicates() {
        for table in [GENERAL, LITELLM, ROUTER, DEPLOYMENT, MODEL_INFO, KEY, TOP] {
            let mut seen = std::collections::HashSet::new();
            for (k, _) in table {
                assert!(seen.insert(*k), "{k} twice");
            }
        }
        let lists = [
            LOGGING_CALLBACKS,
            GUARDRAIL_CALLBACKS,
            RATE_LIMIT_CALLBACKS,
            MODIFIER_CALLBACKS,
        ];
        let mut seen = std::collections::HashSet::new();
        for name in lists.iter().flat_map(|l| l.iter()) {
            assert!(seen.insert(*name), "{name} in two callback lists");
        }
    }

    #[test]
    fn switched_off_values_ask_for_nothing() {
        for (yaml, on) in [
            ("null", false),
            ("false", false),
            ("0", false),
            ("''", false),
            ("true", true),
            ("[]", true),
            ("x.y", true),
            ("1", true),
        ] {
            let v: Value = serde_yaml::from_str(yaml).unwrap();
            assert_eq!(asks_for_something(&v), on, "{yaml}");
        }
    }
}
