//! What the gateway does with each key of LiteLLM's config reference, by
//! section: honoured elsewhere, ignored (and why), or refused.

use super::Kind::*;
use super::Rule::{self, *};

pub(super) const NO_JWT: &str = "JWT auth is not implemented: requests would be checked against master_key and virtual_keys only";
pub(super) const NO_OAUTH: &str = "OAuth2 auth is not implemented: requests would be checked against master_key and virtual_keys only";
pub(super) const DB: &str = "the gateway runs without a database";
pub(super) const UI: &str = "the gateway has no admin UI";
pub(super) const NO_CLIENT_HEADERS: &str = "client headers are never sent upstream";

/// `general_settings` keys beyond those the gateway implements.
pub(super) const GENERAL: &[(&str, Rule)] = &[
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
pub(super) const LITELLM: &[(&str, Rule)] = &[
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
pub(super) const ROUTER: &[(&str, Rule)] = &[
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
pub(super) const DEPLOYMENT: &[(&str, Rule)] = &[
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
pub(super) const MODEL_INFO: &[(&str, Rule)] = &[
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
pub(super) const KEY: &[(&str, Rule)] = &[
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
pub(super) const TOP: &[(&str, Rule)] = &[
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
