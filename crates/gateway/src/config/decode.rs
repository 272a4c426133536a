//! The decoder: a [`Cx`] walks the YAML value, collecting every problem
//! with its path; its primitives read one typed field each. The sections
//! live beside it (`deployments`, `guardrails`, `settings`).

use super::*;

pub(super) fn validate(
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
        drop_params: false,
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

pub(super) struct Cx {
    pub(super) env: Env,
    /// `litellm_settings.drop_params`: the default of every deployment's.
    pub(super) drop_params: bool,
    pub(super) errors: Vec<Issue>,
    pub(super) warnings: Vec<Issue>,
}

pub(super) fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

pub(super) fn type_name(v: &Value) -> &'static str {
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

pub(super) fn field<'v>(map: &'v Mapping, key: &str) -> Option<&'v Value> {
    map.get(key).filter(|v| !v.is_null())
}

impl Cx {
    pub(super) fn error(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.issue(Kind::Invalid, path, message);
    }

    pub(super) fn warn(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.issue(Kind::Unsupported, path, message);
    }

    /// An issue of `kind`: an error when it is a refusal or invalid, else a
    /// warning.
    pub(super) fn issue(
        &mut self,
        kind: Kind,
        path: impl Into<String>,
        message: impl Into<String>,
    ) {
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
    pub(super) fn apply(&mut self, rule: Rule, path: String, value: &Value) {
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
    pub(super) fn other_keys(
        &mut self,
        map: &Mapping,
        path: &str,
        known: &[&str],
        rule: fn(&str) -> Rule,
    ) {
        for (key, value) in map {
            match key.as_str() {
                Some(k) if known.contains(&k) => {}
                Some(k) => self.apply(rule(k), join(path, k), value),
                None => self.warn(path, "non-string key, ignored"),
            }
        }
    }

    /// Warn about every key of `map` not in `known`.
    pub(super) fn unknown_keys(&mut self, map: &Mapping, path: &str, known: &[&str]) {
        self.other_keys(map, path, known, compat::not_implemented);
    }

    pub(super) fn mapping<'v>(&mut self, v: &'v Value, path: &str) -> Option<&'v Mapping> {
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
    pub(super) fn required_mapping<'v>(
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

    pub(super) fn sequence<'v>(&mut self, v: &'v Value, path: &str) -> Option<&'v [Value]> {
        match v {
            Value::Sequence(s) => Some(s),
            other => {
                self.error(path, format!("expected a list, found {}", type_name(other)));
                None
            }
        }
    }

    pub(super) fn string(&mut self, map: &Mapping, path: &str, key: &str) -> Option<String> {
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

    pub(super) fn required_string(
        &mut self,
        map: &Mapping,
        path: &str,
        key: &str,
    ) -> Option<String> {
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

    pub(super) fn number(&mut self, map: &Mapping, path: &str, key: &str) -> Option<f64> {
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

    pub(super) fn integer(&mut self, map: &Mapping, path: &str, key: &str) -> Option<u64> {
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

    pub(super) fn seconds(&mut self, map: &Mapping, path: &str, key: &str) -> Option<Duration> {
        let n = self.number(map, path, key)?;
        if n == 0.0 || n > 1e9 {
            self.error(join(path, key), "expected a positive number of seconds");
            return None;
        }
        Some(Duration::from_secs_f64(n))
    }

    pub(super) fn boolean(&mut self, map: &Mapping, path: &str, key: &str) -> Option<bool> {
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

    pub(super) fn string_list(&mut self, map: &Mapping, path: &str, key: &str) -> Vec<String> {
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

    pub(super) fn read_environment_variables(&mut self, root: &Mapping) {
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

    pub(super) fn resolve_env(&mut self, v: &mut Value, path: &str) {
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

    pub(super) fn root(&mut self, root: &mut Value) -> Option<Config> {
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
        self.drop_params = self
            .boolean(litellm, "litellm_settings", "drop_params")
            .unwrap_or(false);
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
}

/// The first of `sources` that sets one of `keys`: (mapping, its path, key).
pub(super) fn locate<'m>(
    sources: &[(&'m Mapping, &'static str)],
    keys: &[&'static str],
) -> Option<(&'m Mapping, &'static str, &'static str)> {
    sources.iter().find_map(|(m, p)| {
        keys.iter()
            .find(|k| field(m, k).is_some())
            .map(|k| (*m, *p, *k))
    })
}

pub(super) fn describe(v: &Value) -> String {
    match v {
        Value::String(s) => format!("{s:?}"),
        Value::Number(n) => n.to_string(),
        other => type_name(other).to_owned(),
    }
}

pub(super) fn fnv1a(parts: &[&[u8]]) -> u64 {
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
