//! `guardrails` (and LiteLLM's older `litellm_settings.guardrails` list),
//! the guardrail-type `callbacks` that must be honoured or refused.

use super::*;

impl Cx {
    pub(super) fn guardrails(&mut self, root: &Mapping) -> Vec<GuardrailConfig> {
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

    pub(super) fn guardrail(&mut self, item: &Value, path: &str) -> Option<GuardrailConfig> {
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
    pub(super) fn vendor_guardrail(
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
    pub(super) fn fail_open(&mut self, params: &Mapping, p: &str) -> bool {
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
    pub(super) fn legacy_guardrails(&mut self, litellm: &Mapping, out: &mut Vec<GuardrailConfig>) {
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
    pub(super) fn callbacks(&mut self, litellm: &Mapping) {
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
    pub(super) fn callback(&mut self, path: &str, name: &str, legacy: bool) {
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

    pub(super) fn modes(&mut self, params: &Mapping, p: &str, name: &str) -> Option<Modes> {
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
}
