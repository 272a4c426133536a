//! `model_list`: each entry decoded into a [`Deployment`] (or a model the
//! gateway does not serve), the provider table, and what the fallbacks and
//! keys may name.

use super::*;

impl Cx {
    pub(super) fn model_list(&mut self, root: &Mapping) -> (Vec<Deployment>, Vec<UnservedModel>) {
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

    pub(super) fn deployment(&mut self, item: &Value, path: &str, index: usize) -> Option<Entry> {
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
                "drop_params",
                "use_bearer_for_custom_base",
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
        let drop_params = self.boolean(params, p, "drop_params");
        let use_bearer = self.boolean(params, p, "use_bearer_for_custom_base");
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

        if drop_params.is_some() && provider.flavor != Flavor::Anthropic {
            self.warn(
                join(p, "drop_params"),
                "applies to anthropic/ deployments only: this provider gets the request's fields as sent",
            );
        }
        if use_bearer.is_some() && provider.flavor != Flavor::Anthropic {
            self.warn(
                join(p, "use_bearer_for_custom_base"),
                "applies to anthropic/ deployments only",
            );
        }
        if provider.flavor == Flavor::Anthropic {
            let anthropic = self.anthropic(
                p,
                &provider_name,
                api_base.as_deref(),
                api_key.as_deref(),
                use_bearer.unwrap_or(false),
                drop_params.unwrap_or(self.drop_params),
                mock_response.is_some(),
            )?;
            let url = anthropic.endpoint.as_ref().map(|e| e.url.clone());
            let url =
                url.or_else(|| Some(anthropic::url(api_base.as_deref(), &|k| self.env.get(k))));
            let parsed = match url.as_deref().map(str::parse::<axum::http::Uri>) {
                Some(Ok(u)) if u.authority().is_some() => Some(u),
                _ if mock_response.is_some() => None,
                _ => {
                    self.error(join(p, "api_base"), "not a valid http:// or https:// URL");
                    return None;
                }
            };
            let id = model_info_id.unwrap_or_else(|| {
                let url = url.as_deref().unwrap_or_default();
                deployment_id(&model_name, &model, url, index)
            });
            return Some(Entry::Chat(Box::new(Deployment {
                id,
                model_name,
                pattern,
                provider: provider_name,
                flavor: provider.flavor,
                upstream_model,
                url: parsed,
                api_key: api_key.map(Secret),
                auth_header: HeaderValue::from_static(""),
                timeout,
                stream_timeout,
                extra_headers,
                rpm,
                tpm,
                weight,
                mock_response,
                ssl_verify,
                anthropic: Some(Box::new(anthropic)),
            })));
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
            Flavor::OpenAi | Flavor::Anthropic => format!("{base}/chat/completions"),
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
                Flavor::OpenAi | Flavor::Anthropic => format!("Bearer {k}"),
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
        let id = model_info_id.unwrap_or_else(|| deployment_id(&model_name, &model, &url, index));
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
            anthropic: None,
        })))
    }

    /// An `anthropic/` deployment's endpoint (LiteLLM's rules, spec
    /// anthropic.md 1.1) and settings.
    #[allow(clippy::too_many_arguments)]
    fn anthropic(
        &mut self,
        p: &str,
        provider_name: &str,
        api_base: Option<&str>,
        api_key: Option<&str>,
        use_bearer_for_custom_base: bool,
        drop_params: bool,
        mock: bool,
    ) -> Option<AnthropicParams> {
        let env = |k: &str| self.env.get(k);
        let config = anthropic::EndpointConfig {
            api_base,
            api_key,
            use_bearer_for_custom_base,
        };
        let endpoint = match anthropic::Endpoint::resolve(&config, env) {
            Ok(e) => Some(e),
            Err(anthropic::Unresolved::InvalidKey) => {
                self.error(join(p, "api_key"), "not a valid header value");
                return None;
            }
            Err(anthropic::Unresolved::MissingKey) => {
                if !mock {
                    self.warn(
                        join(p, "api_key"),
                        format!(
                            "no api_key and neither ANTHROPIC_API_KEY nor ANTHROPIC_AUTH_TOKEN set; requests to this {provider_name}/ deployment are answered 401"
                        ),
                    );
                }
                None
            }
        };
        Some(AnthropicParams {
            endpoint,
            drop_params,
        })
    }

    /// `model_info.mode`: LiteLLM's kind of model.
    pub(super) fn mode(&mut self, info: &Mapping, path: &str) -> Option<ModelKind> {
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

    pub(super) fn headers(
        &mut self,
        map: &Mapping,
        path: &str,
        key: &str,
    ) -> Vec<(HeaderName, HeaderValue)> {
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
}

pub(super) struct Provider {
    prefix: &'static str,
    flavor: Flavor,
    default_base: Option<&'static str>,
    key_env: &'static [&'static str],
    base_env: &'static [&'static str],
}

pub(super) const AZURE_DEFAULT_API_VERSION: &str = "2024-10-21";

/// The providers the gateway speaks to, and their public defaults.
pub(super) const PROVIDERS: &[Provider] = &[
    Provider {
        prefix: "openai",
        flavor: Flavor::OpenAi,
        default_base: Some("https://api.openai.com/v1"),
        key_env: &["OPENAI_API_KEY"],
        base_env: &["OPENAI_API_BASE", "OPENAI_BASE_URL"],
    },
    Provider {
        prefix: "anthropic",
        flavor: Flavor::Anthropic,
        default_base: Some("https://api.anthropic.com"),
        key_env: &["ANTHROPIC_API_KEY"],
        base_env: &["ANTHROPIC_API_BASE", "ANTHROPIC_BASE_URL"],
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
pub(super) const UNSUPPORTED_PROVIDERS: &[&str] = &[
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

/// A stable id for a deployment without `model_info.id`.
fn deployment_id(model_name: &str, model: &str, url: &str, index: usize) -> String {
    let digest = fnv1a(&[
        model_name.as_bytes(),
        model.as_bytes(),
        url.as_bytes(),
        &index.to_le_bytes(),
    ]);
    format!("{digest:016x}")
}

pub(super) fn provider_list() -> String {
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
pub(super) fn split_provider(
    model: &str,
    custom: Option<&str>,
) -> Result<(String, String), String> {
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
pub(super) struct Names {
    /// Groups without `*`.
    pub(super) explicit: HashSet<String>,
    /// Wildcard groups, most specific first.
    pub(super) patterns: Vec<(Pattern, ())>,
    pub(super) unserved: HashMap<String, ModelKind>,
}

impl Names {
    pub(super) fn new(deployments: &[Deployment], unserved: &[UnservedModel]) -> Self {
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
    pub(super) fn serves(&self, name: &str) -> bool {
        self.explicit.contains(name)
            || (!self.unserved.contains_key(name) && models::route(&self.patterns, name).is_some())
    }
}
