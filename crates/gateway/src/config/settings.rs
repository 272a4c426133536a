//! `general_settings`, `virtual_keys`, `router_settings` and
//! `litellm_settings`, the outbound settings (proxies, trust) and fallbacks.

use super::*;

impl Cx {
    /// `general_settings`: the master key, the serving settings, and
    /// `max_parallel_requests` (the default for each virtual key).
    pub(super) fn general_settings(
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

    pub(super) fn virtual_keys(
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

    pub(super) fn router_settings(
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
            "drop_params",
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
    pub(super) fn ssl_verify(&mut self, map: &Mapping, path: &str) -> Option<SslVerify> {
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

    pub(super) fn verify_flag(&mut self, on: bool, path: &str) -> SslVerify {
        if on {
            return SslVerify::Platform;
        }
        self.warn(
            path,
            "TLS certificates are not verified (ssl_verify: false)",
        );
        SslVerify::Off
    }

    pub(super) fn verify_text(&mut self, text: &str, path: &str) -> Option<SslVerify> {
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
    pub(super) fn outbound(&mut self, root: &Mapping) -> Outbound {
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
    pub(super) fn fallback_map(
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
    pub(super) fn fallback_target(&mut self, names: &Names, path: &str, name: &str) -> bool {
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
