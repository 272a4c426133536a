//! What the gateway does with the LiteLLM config keys it does not implement.
//!
//! The rule (gateway.md section 2, "Fail safe"): a key whose meaning is
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

use Kind::*;
use Rule::{Ignore, Refuse};

const NO_JWT: &str = "JWT auth is not implemented: requests would be checked against master_key and virtual_keys only";
const NO_OAUTH: &str = "OAuth2 auth is not implemented: requests would be checked against master_key and virtual_keys only";
const DB: &str = "the gateway runs without a database";
const UI: &str = "the gateway has no admin UI";
const NO_CLIENT_HEADERS: &str = "client headers are never sent upstream";

/// `general_settings` keys beyond those the gateway implements.
const GENERAL: &[(&str, Rule)] = &[
    (
        "custom_auth",
        Refuse(
            RefusedAuth,
            "custom auth code cannot run in the gateway: requests would be checked against master_key and virtual_keys only",
        ),
    ),
    (
        "custom_auth_run_common_checks",
        Ignore(Unsupported, "only used with custom_auth"),
    ),
    ("enable_jwt_auth", Refuse(RefusedAuth, NO_JWT)),
    ("litellm_jwtauth", Refuse(RefusedAuth, NO_JWT)),
    ("enable_oauth2_auth", Refuse(RefusedAuth, NO_OAUTH)),
    ("enable_oauth2_proxy_auth", Refuse(RefusedAuth, NO_OAUTH)),
    ("oauth2_config_mappings", Refuse(RefusedAuth, NO_OAUTH)),
    (
        "allowed_ips",
        Refuse(
            RefusedAuth,
            "IP allow-listing is not implemented: any address could call the gateway; restrict who reaches its port in front of it, then remove the key",
        ),
    ),
    (
        "use_x_forwarded_for",
        Ignore(Unsupported, "only used with allowed_ips"),
    ),
    (
        "allowed_routes",
        Refuse(
            RefusedAuth,
            "per-route access for keys is not implemented: every key could call every route",
        ),
    ),
    (
        "admin_only_routes",
        Refuse(
            RefusedAuth,
            "admin-only routes are not implemented: every key could call them",
        ),
    ),
    (
        "role_permissions",
        Refuse(RefusedAuth, "role-based access control is not implemented"),
    ),
    (
        "enforce_rbac",
        Refuse(RefusedAuth, "role-based access control is not implemented"),
    ),
    (
        "enforce_user_param",
        Refuse(
            RefusedCheck,
            "requests without a `user` field would be accepted: enforce_user_param is not implemented",
        ),
    ),
    (
        "enforced_params",
        Refuse(
            RefusedCheck,
            "required request params are not enforced: requests without them would be accepted",
        ),
    ),
    (
        "public_routes",
        Ignore(Loosens, "routes that need a key keep needing one"),
    ),
    (
        "forward_client_headers_to_llm_api",
        Ignore(Loosens, NO_CLIENT_HEADERS),
    ),
    (
        "forward_llm_provider_auth_headers",
        Ignore(Loosens, NO_CLIENT_HEADERS),
    ),
    ("forward_openai_org_id", Ignore(Loosens, NO_CLIENT_HEADERS)),
    (
        "allow_client_side_credentials",
        Ignore(Loosens, "clients cannot choose provider credentials"),
    ),
    (
        "user_url_validation",
        Ignore(
            NotServed,
            "the gateway never fetches URLs found in requests",
        ),
    ),
    (
        "user_url_allowed_hosts",
        Ignore(
            NotServed,
            "the gateway never fetches URLs found in requests",
        ),
    ),
    (
        "provider_url_destination_allowed_hosts",
        Ignore(NotServed, "clients cannot redirect provider calls"),
    ),
    (
        "litellm_key_header_name",
        Ignore(
            Unsupported,
            "keys are read from x-litellm-api-key, Authorization, API-Key and x-api-key only",
        ),
    ),
    (
        "key_management_system",
        Ignore(
            Unsupported,
            "secret managers are not implemented: os.environ/ reads the process environment",
        ),
    ),
    (
        "key_management_settings",
        Ignore(Unsupported, "secret managers are not implemented"),
    ),
    (
        "use_google_kms",
        Ignore(Unsupported, "secret managers are not implemented"),
    ),
    (
        "use_azure_key_vault",
        Ignore(Unsupported, "secret managers are not implemented"),
    ),
    // The database and what lives in it.
    ("database_url", Ignore(NeedsDatabase, DB)),
    ("database_type", Ignore(NeedsDatabase, DB)),
    ("database_args", Ignore(NeedsDatabase, DB)),
    ("database_connection_pool_limit", Ignore(NeedsDatabase, DB)),
    ("database_connection_timeout", Ignore(NeedsDatabase, DB)),
    ("store_model_in_db", Ignore(NeedsDatabase, DB)),
    ("supported_db_objects", Ignore(NeedsDatabase, DB)),
    ("disable_spend_logs", Ignore(NeedsDatabase, DB)),
    ("disable_spend_updates", Ignore(NeedsDatabase, DB)),
    ("disable_reset_budget", Ignore(NeedsDatabase, DB)),
    ("proxy_batch_write_at", Ignore(NeedsDatabase, DB)),
    ("store_prompts_in_spend_logs", Ignore(NeedsDatabase, DB)),
    ("disable_prisma_schema_update", Ignore(NeedsDatabase, DB)),
    (
        "allow_requests_on_db_unavailable",
        Ignore(NeedsDatabase, DB),
    ),
    ("use_redis_transaction_buffer", Ignore(NeedsDatabase, DB)),
    ("spend_logs_metadata_fields", Ignore(NeedsDatabase, DB)),
    (
        "maximum_spend_logs_retention_period",
        Ignore(NeedsDatabase, DB),
    ),
    (
        "maximum_spend_logs_retention_interval",
        Ignore(NeedsDatabase, DB),
    ),
    (
        "disable_requester_ip_address_logging",
        Ignore(NeedsDatabase, DB),
    ),
    ("custom_key_generate", Ignore(NeedsDatabase, DB)),
    ("custom_key_update", Ignore(NeedsDatabase, DB)),
    ("custom_key_policy", Ignore(NeedsDatabase, DB)),
    ("disable_custom_api_keys", Ignore(NeedsDatabase, DB)),
    ("disable_master_key_return", Ignore(NeedsDatabase, DB)),
    ("default_team_disabled", Ignore(NeedsDatabase, DB)),
    (
        "disable_key_generate_for_org_admin",
        Ignore(NeedsDatabase, DB),
    ),
    (
        "disable_auto_add_proxy_admin_to_teams",
        Ignore(NeedsDatabase, DB),
    ),
    ("team_metadata_schema", Ignore(NeedsDatabase, DB)),
    ("custom_team_metadata_validate", Ignore(NeedsDatabase, DB)),
    ("service_account_settings", Ignore(NeedsDatabase, DB)),
    (
        "apply_user_budget_to_team_keys",
        Ignore(NeedsDatabase, "user and team budgets live in the database"),
    ),
    (
        "disable_budget_reservation",
        Ignore(NeedsDatabase, "budgets live in the database"),
    ),
    (
        "fail_closed_budget_enforcement",
        Ignore(NeedsDatabase, "budgets live in the database"),
    ),
    (
        "reject_clientside_metadata_tags",
        Ignore(
            NeedsDatabase,
            "tags only feed database budgets; the gateway removes metadata before the upstream call",
        ),
    ),
    ("user_api_key_cache_ttl", Ignore(NeedsDatabase, DB)),
    ("user_api_key_cache_max_size", Ignore(NeedsDatabase, DB)),
    (
        "user_header_name",
        Ignore(NeedsDatabase, "end-user spend tracking"),
    ),
    (
        "user_header_mappings",
        Ignore(NeedsDatabase, "end-user spend tracking"),
    ),
    ("missing_session_id", Ignore(NeedsDatabase, "spend logs")),
    ("use_team_public_model_name", Ignore(NeedsDatabase, DB)),
    (
        "infer_model_from_keys",
        Ignore(Unsupported, "not implemented"),
    ),
    // The admin UI.
    ("ui_access_mode", Ignore(AdminUi, UI)),
    ("custom_sso", Ignore(AdminUi, UI)),
    ("custom_ui_sso_sign_in_handler", Ignore(AdminUi, UI)),
    ("auto_redirect_ui_login_to_sso", Ignore(AdminUi, UI)),
    (
        "disable_password_login_when_sso_enabled",
        Ignore(AdminUi, UI),
    ),
    ("disable_env_credential_login", Ignore(AdminUi, UI)),
    ("enable_public_model_hub", Ignore(AdminUi, UI)),
    ("trusted_proxy_ranges", Ignore(AdminUi, UI)),
    ("max_failed_login_attempts_per_source", Ignore(AdminUi, UI)),
    (
        "max_failed_login_attempts_per_source_overrides",
        Ignore(AdminUi, UI),
    ),
    ("failed_login_window_seconds", Ignore(AdminUi, UI)),
    ("failed_login_block_seconds", Ignore(AdminUi, UI)),
    ("password_policy_min_length", Ignore(AdminUi, UI)),
    ("password_policy_require_uppercase", Ignore(AdminUi, UI)),
    ("password_policy_require_lowercase", Ignore(AdminUi, UI)),
    ("password_policy_require_numbers", Ignore(AdminUi, UI)),
    (
        "password_policy_require_special_characters",
        Ignore(AdminUi, UI),
    ),
    (
        "password_policy_check_breached_passwords",
        Ignore(AdminUi, UI),
    ),
    (
        "allow_cli_sso_verification_uri_complete",
        Ignore(AdminUi, UI),
    ),
    ("control_plane_url", Ignore(AdminUi, UI)),
    ("allow_user_auth", Ignore(AdminUi, UI)),
    // Features the gateway does not serve.
    ("alerting", Ignore(NotServed, "alerting")),
    ("alert_types", Ignore(NotServed, "alerting")),
    ("alert_to_webhook_url", Ignore(NotServed, "alerting")),
    ("alerting_args", Ignore(NotServed, "alerting")),
    ("alerting_threshold", Ignore(NotServed, "alerting")),
    ("alert_type_config", Ignore(NotServed, "alerting")),
    (
        "background_health_checks",
        Ignore(NotServed, "health checks of models"),
    ),
    (
        "health_check_interval",
        Ignore(NotServed, "health checks of models"),
    ),
    (
        "health_check_details",
        Ignore(NotServed, "health checks of models"),
    ),
    (
        "enable_health_check_routing",
        Ignore(NotServed, "health checks of models"),
    ),
    (
        "pass_through_endpoints",
        Ignore(NotServed, "pass-through endpoints"),
    ),
    (
        "pass_through_request_timeout",
        Ignore(NotServed, "pass-through endpoints"),
    ),
    ("max_file_size_mb", Ignore(NotServed, "the files API")),
    (
        "max_batch_file_size_mb",
        Ignore(NotServed, "the files and batches API"),
    ),
    (
        "allowed_file_extensions",
        Ignore(NotServed, "the files API"),
    ),
    (
        "blocked_file_extensions",
        Ignore(NotServed, "the files API"),
    ),
    (
        "vector_store_deny_by_default",
        Ignore(NotServed, "vector stores"),
    ),
    (
        "search_tool_deny_by_default",
        Ignore(NotServed, "search tools"),
    ),
    ("agent_access_default_deny", Ignore(NotServed, "agents")),
    (
        "disable_responses_id_security",
        Ignore(NotServed, "the Responses API"),
    ),
    (
        "allow_unmanaged_response_ids",
        Ignore(NotServed, "the Responses API"),
    ),
    (
        "enable_openai_websocket_passthrough",
        Ignore(NotServed, "websocket pass-through"),
    ),
    ("otel", Ignore(LoggingCallback, "OpenTelemetry")),
];

/// `litellm_settings` keys beyond the router ones, `guardrails` and the
/// callback lists (classified item by item).
const LITELLM: &[(&str, Rule)] = &[
    (
        "max_budget",
        Refuse(
            RefusedLimit,
            "a proxy-wide spend limit: the gateway does not track spend",
        ),
    ),
    (
        "budget_duration",
        Ignore(Unsupported, "only used with max_budget"),
    ),
    (
        "post_call_rules",
        Refuse(
            RefusedCheck,
            "a Python function that checks answers cannot run in the gateway",
        ),
    ),
    (
        "max_end_user_budget",
        Ignore(NeedsDatabase, "end-user budgets live in the database"),
    ),
    (
        "max_internal_user_budget",
        Ignore(NeedsDatabase, "user budgets live in the database"),
    ),
    (
        "default_max_internal_user_budget",
        Ignore(NeedsDatabase, "user budgets live in the database"),
    ),
    ("default_internal_user_params", Ignore(NeedsDatabase, DB)),
    (
        "default_team_settings",
        Ignore(NeedsDatabase, "teams live in the database"),
    ),
    (
        "default_team_params",
        Ignore(NeedsDatabase, "teams live in the database"),
    ),
    (
        "default_key_generate_params",
        Ignore(NeedsDatabase, "keys are generated in the database"),
    ),
    (
        "upperbound_key_generate_params",
        Ignore(NeedsDatabase, "keys are generated in the database"),
    ),
    (
        "key_generation_settings",
        Ignore(NeedsDatabase, "keys are generated in the database"),
    ),
    ("disable_end_user_cost_tracking", Ignore(NeedsDatabase, DB)),
    ("public_model_groups", Ignore(AdminUi, UI)),
    ("cache", Ignore(NotServed, "response caching")),
    ("cache_params", Ignore(NotServed, "response caching")),
    ("mcp_aliases", Ignore(NotServed, "MCP")),
    (
        "callback_settings",
        Ignore(LoggingCallback, "settings of logging callbacks"),
    ),
    ("json_logs", Ignore(Unsupported, "use --log-format json")),
    ("set_verbose", Ignore(Unsupported, "use RUST_LOG")),
    (
        "drop_params",
        Ignore(Unsupported, "request fields are forwarded as sent"),
    ),
    (
        "model_alias_map",
        Ignore(
            Unsupported,
            "aliases are not implemented: a request for an alias gets a 400",
        ),
    ),
    (
        "prompt_injection_params",
        Ignore(Unsupported, "settings of a guardrail callback"),
    ),
    (
        "azure_content_safety_params",
        Ignore(Unsupported, "settings of a guardrail callback"),
    ),
    (
        "presidio_logging_only",
        Ignore(Unsupported, "settings of a guardrail callback"),
    ),
];

/// `router_settings` keys beyond those the gateway implements.
const ROUTER: &[(&str, Rule)] = &[
    (
        "provider_budget_config",
        Refuse(
            RefusedLimit,
            "provider budgets: the gateway does not track spend",
        ),
    ),
    (
        "enable_tag_filtering",
        Refuse(
            RefusedCheck,
            "tag-based routing (which deployments a request may reach) is not implemented",
        ),
    ),
    (
        "model_group_alias",
        Ignore(
            Unsupported,
            "aliases are not implemented: a request for an alias gets a 400",
        ),
    ),
    (
        "redis_host",
        Ignore(Unsupported, "limits and cooldowns are per gateway process"),
    ),
    (
        "redis_port",
        Ignore(Unsupported, "limits and cooldowns are per gateway process"),
    ),
    (
        "redis_password",
        Ignore(Unsupported, "limits and cooldowns are per gateway process"),
    ),
    (
        "redis_url",
        Ignore(Unsupported, "limits and cooldowns are per gateway process"),
    ),
    ("cache_responses", Ignore(NotServed, "response caching")),
];

/// `model_list[].litellm_params` keys beyond those the gateway implements.
const DEPLOYMENT: &[(&str, Rule)] = &[
    (
        "guardrails",
        Refuse(
            RefusedCheck,
            "guardrails per model are not implemented: set default_on on the guardrail, or list it in the keys' guardrails",
        ),
    ),
    (
        "max_budget",
        Refuse(
            RefusedLimit,
            "a deployment budget: the gateway does not track spend",
        ),
    ),
    (
        "budget_duration",
        Ignore(Unsupported, "only used with max_budget"),
    ),
    (
        "default_api_key_tpm_limit",
        Refuse(
            RefusedLimit,
            "default key limits per model are not implemented",
        ),
    ),
    (
        "default_api_key_rpm_limit",
        Refuse(
            RefusedLimit,
            "default key limits per model are not implemented",
        ),
    ),
    (
        "configurable_clientside_auth_params",
        Ignore(Loosens, "clients cannot choose provider credentials"),
    ),
    (
        "use_in_pass_through",
        Ignore(NotServed, "pass-through endpoints"),
    ),
    (
        "tags",
        Ignore(
            Unsupported,
            "only used with router_settings.enable_tag_filtering",
        ),
    ),
];

/// `model_list[].model_info` keys that matter (the others are descriptive
/// and load silently, as in LiteLLM).
const MODEL_INFO: &[(&str, Rule)] = &[
    (
        "team_id",
        Refuse(
            RefusedAuth,
            "a team's own model: teams live in the database, so every key could use it; bound it with virtual_keys[].models instead",
        ),
    ),
    (
        "access_groups",
        Ignore(
            Unsupported,
            "access groups are not implemented: list model names in virtual_keys[].models",
        ),
    ),
];

/// LiteLLM key fields an entry of `virtual_keys` may carry beyond those the
/// gateway implements.
const KEY: &[(&str, Rule)] = &[
    (
        "expires",
        Refuse(
            RefusedAuth,
            "key expiry is not implemented: the key would never expire",
        ),
    ),
    (
        "duration",
        Refuse(
            RefusedAuth,
            "key expiry is not implemented: the key would never expire",
        ),
    ),
    (
        "allowed_routes",
        Refuse(RefusedAuth, "per-route access for keys is not implemented"),
    ),
    (
        "allowed_passthrough_routes",
        Refuse(RefusedAuth, "per-route access for keys is not implemented"),
    ),
    (
        "permissions",
        Refuse(RefusedAuth, "key permissions are not implemented"),
    ),
    (
        "enforced_params",
        Refuse(RefusedCheck, "required request params are not enforced"),
    ),
    (
        "max_budget",
        Refuse(
            RefusedLimit,
            "key budgets: the gateway does not track spend",
        ),
    ),
    (
        "model_max_budget",
        Refuse(
            RefusedLimit,
            "key budgets: the gateway does not track spend",
        ),
    ),
    (
        "budget_duration",
        Ignore(Unsupported, "only used with max_budget"),
    ),
    ("soft_budget", Ignore(NotServed, "budget alerts")),
    (
        "model_rpm_limit",
        Refuse(RefusedLimit, "per-model key limits are not implemented"),
    ),
    (
        "model_tpm_limit",
        Refuse(RefusedLimit, "per-model key limits are not implemented"),
    ),
    (
        "team_id",
        Ignore(NeedsDatabase, "teams live in the database"),
    ),
    (
        "user_id",
        Ignore(NeedsDatabase, "users live in the database"),
    ),
    ("organization_id", Ignore(NeedsDatabase, DB)),
    ("project_id", Ignore(NeedsDatabase, DB)),
    ("key_name", Ignore(NeedsDatabase, DB)),
    ("tags", Ignore(NeedsDatabase, "tags feed spend tracking")),
    ("spend", Ignore(NeedsDatabase, DB)),
    ("budget_id", Ignore(NeedsDatabase, DB)),
    (
        "aliases",
        Ignore(Unsupported, "aliases are not implemented"),
    ),
    (
        "object_permission",
        Ignore(NotServed, "MCP servers and vector stores"),
    ),
    (
        "allowed_cache_controls",
        Ignore(NotServed, "response caching"),
    ),
    (
        "allowed_vector_store_indexes",
        Ignore(NotServed, "vector stores"),
    ),
];

/// Top-level keys beyond the sections the gateway reads.
const TOP: &[(&str, Rule)] = &[
    (
        "callback_settings",
        Ignore(LoggingCallback, "settings of logging callbacks"),
    ),
    (
        "credential_list",
        Ignore(
            Unsupported,
            "litellm_credential_name is not implemented: set api_key on the deployment",
        ),
    ),
    ("mcp_servers", Ignore(NotServed, "MCP")),
    ("mcp_tools", Ignore(NotServed, "MCP")),
    ("search_tools", Ignore(NotServed, "search tools")),
    ("vector_store_registry", Ignore(NotServed, "vector stores")),
    ("prompts", Ignore(NotServed, "prompt management")),
    (
        "pass_through_endpoints",
        Ignore(NotServed, "pass-through endpoints"),
    ),
    ("files_settings", Ignore(NotServed, "the files API")),
    ("finetune_settings", Ignore(NotServed, "fine-tuning")),
    ("assistant_settings", Ignore(NotServed, "assistants")),
    ("worker_registry", Ignore(NotServed, "the control plane")),
];

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

const LOGGING_CALLBACKS: &[&str] = &[
    "lago",
    "openmeter",
    "logfire",
    "literalai",
    "langsmith",
    "prometheus",
    "otel",
    "datadog",
    "datadog_metrics",
    "datadog_llm_observability",
    "datadog_cost_management",
    "galileo",
    "braintrust",
    "arize",
    "arize_phoenix",
    "langtrace",
    "gcs_bucket",
    "azure_storage",
    "opik",
    "argilla",
    "mlflow",
    "langfuse",
    "langfuse_otel",
    "weave_otel",
    "pagerduty",
    "humanloop",
    "azure_sentinel",
    "gcs_pubsub",
    "agentops",
    "generic_api",
    "resend_email",
    "sendgrid_email",
    "smtp_email",
    "deepeval",
    "s3",
    "s3_v2",
    "clickhouse",
    "pointfive",
    "zerobus",
    "aws_sqs",
    "cloudzero",
    "focus",
    "mavvrik",
    "vantage",
    "ternary",
    "posthog",
    "levo",
    "newrelic",
    "signoz",
    "lunary",
    "helicone",
    "dynamodb",
    "sentry",
    "slack",
    "supabase",
    "athina",
    "greenscale",
    "traceloop",
    "wandb",
    "webhook",
    "custom_callback_api",
    "llmonitor",
    "promptlayer",
    "berrispend",
    "aispend",
    "litellm_agent",
];

const GUARDRAIL_CALLBACKS: &[&str] = &[
    "presidio",
    "llamaguard_moderations",
    "hide_secrets",
    "secret_detection",
    "openai_moderations",
    "lakera_prompt_injection",
    "lakera",
    "lakera_v2",
    "aporia_prompt_injection",
    "aporia",
    "google_text_moderation",
    "llmguard_moderations",
    "blocked_user_check",
    "banned_keywords",
    "detect_prompt_injection",
    "azure_content_safety",
    "aim",
    "cato_networks",
    "bedrock",
    "guardrails_ai",
    "pangea",
    "lasso",
    "pillar",
    "noma",
    "panw_prisma_airs",
    "zscaler_ai_guard",
    "model_armor",
    "javelin",
    "ibm_guardrails",
    "grayswan",
    "enkryptai",
    "hiddenlayer",
    "content_filter",
    "tool_permission",
    "prompt_injection",
];

const RATE_LIMIT_CALLBACKS: &[&str] = &["dynamic_rate_limiter", "dynamic_rate_limiter_v3"];

const MODIFIER_CALLBACKS: &[&str] = &[
    "compression_interception",
    "websearch_interception",
    "code_interpreter_interception",
    "anthropic_cache_control_hook",
    "vector_store_pre_call_hook",
    "dotprompt",
    "bitbucket",
    "gitlab",
    "batch_redis_requests",
];

/// LiteLLM's guardrail integrations (`SupportedGuardrailIntegrations`):
/// a `guardrails:` entry for one the gateway does not speak is refused.
const GUARDRAIL_VENDORS: &[&str] = &[
    "aporia",
    "bedrock",
    "dynamoai",
    "guardrails_ai",
    "lakera",
    "lakera_v2",
    "presidio",
    "hide-secrets",
    "hiddenlayer",
    "aim",
    "cato_networks",
    "pangea",
    "crowdstrike_aidr",
    "lasso",
    "pillar",
    "grayswan",
    "panw_prisma_airs",
    "cisco_ai_defense",
    "azure/prompt_shield",
    "azure/text_moderations",
    "model_armor",
    "openai_moderation",
    "noma",
    "noma_v2",
    "tool_permission",
    "zscaler_ai_guard",
    "javelin",
    "enkryptai",
    "ibm_guardrails",
    "litellm_content_filter",
    "mcp_security",
    "onyx",
    "promptguard",
    "xecguard",
    "prompt_security",
    "generic_guardrail_api",
    "qualifire",
    "custom_code",
    "ovalix",
    "microsoft_purview",
    "semantic_guard",
    "mcp_end_user_permission",
    "block_code_execution",
    "akto",
    "mcp_jwt_signer",
    "llm_as_a_judge",
    "deepkeep",
    "qostodian_nexus",
    "rubrik",
    "vigil_guard",
    "repelloai",
    "singulr",
    "headroom",
    "compresr",
    "typesafe",
    "straiker",
    "alice",
    "agent_365",
    "llm_shield_proxy",
    "conduct",
    "airia",
    "wingback",
    "decision_model",
];

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
