//! The `anthropic/` provider: Anthropic's Messages API behind
//! `/v1/chat/completions`, translated as LiteLLM 1.108.7 does
//! (`spec/anthropic.md` section 1, `W` references are to its wheel).
//!
//! # Layout
//!
//! - this module: where a deployment is called ([`Endpoint`]: URL, key,
//!   `anthropic-version`, `anthropic-beta`), what the gateway knows of each
//!   Claude model ([`ModelInfo`], from LiteLLM's cost map), and what the
//!   request translation hands to the answer's ([`ResponseContext`]).
//! - [`request`]: an OpenAI chat body (as the gateway would send it to an
//!   OpenAI upstream) → the Messages body ([`request::to_anthropic`]).
//! - [`response`]: a Messages answer → a `chat.completion`
//!   ([`response::to_openai`]); `anthropic-ratelimit-*` → `x-ratelimit-*`.
//! - [`stream`]: Messages SSE events → `chat.completion.chunk` frames
//!   ([`stream::Translator`]), bounded in memory.
//! - [`error`]: an Anthropic error (status and body, or a stream's `error`
//!   event) → [`crate::error::Error`], in LiteLLM's message shape, classed
//!   so the router retries and cools down as LiteLLM does.
//!
//! Everything here is pure: bytes in, bytes out, no network.
//!
//! # Guardrails
//!
//! Guardrails inspect the OpenAI request; the translation must not give the
//! model text they did not see. It only moves inspected text (system
//! prompts, message text, tool results, tool call arguments) into
//! Anthropic's places, and adds nothing but fixed strings of its own (the
//! empty-text placeholder, the operator note before a mid-conversation
//! system message, the dummy tool). Top-level fields it does not know are
//! refused, never forwarded: a client's own `system` field would otherwise
//! reach the model uninspected.
//!
//! # Where this differs from LiteLLM on purpose
//!
//! Guardrails and the network:
//! - `http://` image URLs are refused with a 400 (LiteLLM downloads them),
//!   and so are URLs in a file's `file_data`: the gateway never fetches a
//!   URL a client chose (server-side request forgery). `https://` image
//!   URLs go by reference, as in LiteLLM, and Anthropic fetches them.
//! - Top-level fields that are neither OpenAI parameters nor known to the
//!   translation are refused like unsupported parameters (dropped with
//!   `drop_params`); LiteLLM forwards them as provider-specific parameters,
//!   which lets a client send its own `system` prompt past the guardrails.
//!   Only `top_k` (gated like `temperature`) is forwarded, and
//!   `allowed_openai_params` only lets OpenAI's own parameters through.
//! - A client's `extra_headers` only contributes `anthropic-beta` values;
//!   LiteLLM sends every header it lists upstream.
//! - Thinking blocks go back to Anthropic only when signed (LiteLLM does
//!   the same): guardrails do not read them, and Anthropic verifies the
//!   signature, so no client text can hide there.
//!
//! Refused or simplified:
//! - Tool call arguments that are not JSON are a 400; LiteLLM first tries
//!   to repair truncated JSON.
//! - Anthropic's hosted tools (computer use, bash, code execution, MCP
//!   servers, tool search) sent as OpenAI tools are refused ("Unsupported
//!   tool type"), except web search through `web_search_options`; files by
//!   `file_id` are refused; server tools' results are not replayed from
//!   `provider_specific_fields` (compaction blocks neither).
//! - Tools and `document` parts already in Anthropic's shape keep their
//!   known fields only (name, description, input_schema, type,
//!   cache_control; source, title, context, citations, cache_control).
//! - `metadata.user_id` from the client's `metadata` is not mapped: the
//!   gateway keeps `metadata` for itself. `user` is.
//! - Mid-conversation system messages on models that take them are placed
//!   by their neighbours as LiteLLM does, without its special cases for
//!   messages that put nothing on the wire.
//! - Models outside the embedded cost-map table (LiteLLM fetches a fresher
//!   map) get 4096 `max_tokens` as in LiteLLM, and `thinking` and
//!   `reasoning_effort` are passed to them rather than refused.
//!
//! Answers:
//! - The forced `json_tool_call` answer becomes the message content as the
//!   tool's input, serialised; LiteLLM also unwraps envelopes a model
//!   invents around it (heuristics not reproduced). A prefill (`prefix`) is
//!   prepended to JSON answers only, as in LiteLLM.
//! - `usage.cost` is not added to the final stream chunk, and
//!   `completion_tokens_details.reasoning_tokens` is `null` (not a tokenizer
//!   estimate) when the answer has thinking but Anthropic reports no count.
//! - A stream that ends without `message_stop` after `message_delta` is
//!   finished normally; one that ends before `message_delta` ends with an
//!   error instead of a silently truncated answer. A stream with no
//!   `message_delta` still gets one `finish_reason`.
//! - Upstream headers are not echoed as `llm_provider-*`; only the
//!   `anthropic-ratelimit-*` ones are mapped.
//!
//! Shapes:
//! - `/v1/messages` is appended to an `api_base` without doubling a
//!   trailing slash; the missing-key message does not mention workload
//!   identity, which the gateway does not support.
//! - JSON key order of the bodies is our own (JSON objects are unordered);
//!   ids are new `chatcmpl-<uuid>`s, as in LiteLLM; text is written back in
//!   the JSON spelling it came in.
//! - The native `output_format` schema is filtered as LiteLLM does (dropped
//!   constraints noted in the description, `oneOf` → `anyOf`, closed
//!   objects) but `$defs` are not inlined and enum/type conflicts are left.
//! - Error `type`s: `invalid_request_error` for 400s (as the spec records),
//!   `internal_server_error` for 500s, `throttling_error` for 429s, null
//!   otherwise (LiteLLM's exception classes).

pub mod call;
pub mod error;
pub mod request;
pub mod response;
pub mod stream;

mod models;

use axum::http::{HeaderName, HeaderValue, StatusCode, header};

use crate::error::Error;

pub(crate) use models::{Caps, supports_speed};
pub use models::{DEFAULT_MAX_TOKENS, ModelInfo};

/// What the request translation decided that the answer's mapping needs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ResponseContext {
    /// Tool names rewritten to fit Anthropic's `^[a-zA-Z0-9_-]{1,128}$`:
    /// (sent, original). Only rewritten names are here, so a tool really
    /// called `a_b` is never renamed.
    pub tool_names: Vec<(String, String)>,
    /// `response_format` became the forced `json_tool_call` tool: its input
    /// is the answer's content, not a tool call.
    pub json_tool: bool,
    /// A trailing assistant message with `prefix: true`: a prefill, prepended
    /// to a non-streaming answer's text.
    pub prefix: Option<String>,
    /// The client asked for `stream_options.include_usage`.
    pub include_usage: bool,
}

impl ResponseContext {
    /// The client's name for a tool Anthropic called by `sent`.
    pub fn original_name<'a>(&'a self, sent: &'a str) -> &'a str {
        self.tool_names
            .iter()
            .find(|(s, _)| s == sent)
            .map_or(sent, |(_, o)| o.as_str())
    }
}

// ---- endpoint ----

/// `anthropic-version`, always this one.
pub const ANTHROPIC_VERSION: &str = "2023-06-01";
const DEFAULT_API_BASE: &str = "https://api.anthropic.com/v1/messages";
const MESSAGES_SUFFIX: &str = "/v1/messages";
/// Keys of Claude subscriptions (OAuth) start so; they go as a Bearer token.
const OAUTH_PREFIX: &str = "sk-ant-oat";
const OAUTH_BETA: &str = "oauth-2025-04-20";

static ANTHROPIC_VERSION_HEADER: HeaderName = HeaderName::from_static("anthropic-version");
static ANTHROPIC_BETA: HeaderName = HeaderName::from_static("anthropic-beta");
static X_API_KEY: HeaderName = HeaderName::from_static("x-api-key");
static BROWSER_ACCESS: HeaderName =
    HeaderName::from_static("anthropic-dangerous-direct-browser-access");

/// One deployment's settings that decide where and how it is called.
#[derive(Clone, Copy, Debug, Default)]
pub struct EndpointConfig<'a> {
    /// `litellm_params.api_base`.
    pub api_base: Option<&'a str>,
    /// `litellm_params.api_key` (after `os.environ/` resolution).
    pub api_key: Option<&'a str>,
    /// `litellm_params.use_bearer_for_custom_base`.
    pub use_bearer_for_custom_base: bool,
}

/// Where one Anthropic deployment is called and with which fixed headers
/// (spec 1.1). Resolved once, when the configuration is loaded.
#[derive(Clone)]
pub struct Endpoint {
    /// The full URL requests are posted to.
    pub url: String,
    /// `anthropic-version`, `accept`, `content-type`, the credential.
    fixed: Vec<(HeaderName, HeaderValue)>,
    /// `anthropic-beta` values every call carries (an OAuth key's).
    betas: Vec<&'static str>,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The credential header is marked sensitive, so `http` prints it as
        // `Sensitive`; the URL has no secret.
        f.debug_struct("Endpoint")
            .field("url", &self.url)
            .field("headers", &self.fixed)
            .field("betas", &self.betas)
            .finish()
    }
}

impl Endpoint {
    /// The URL and headers for `config`, reading `ANTHROPIC_API_BASE`,
    /// `ANTHROPIC_BASE_URL`, `ANTHROPIC_API_KEY`, `ANTHROPIC_AUTH_TOKEN` and
    /// `LITELLM_ANTHROPIC_DISABLE_URL_SUFFIX` through `env`.
    ///
    /// A key that is blank counts as unset. With no key and no token the
    /// answer is LiteLLM's 401.
    pub fn resolve(
        config: &EndpointConfig<'_>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Endpoint, Error> {
        let nonblank = |v: Option<String>| v.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty());
        let configured_base = config.api_base.map(str::trim).filter(|b| !b.is_empty());
        let base = configured_base
            .map(str::to_owned)
            .or_else(|| nonblank(env("ANTHROPIC_API_BASE")))
            .or_else(|| nonblank(env("ANTHROPIC_BASE_URL")))
            .unwrap_or_else(|| DEFAULT_API_BASE.to_owned());
        let no_suffix = env("LITELLM_ANTHROPIC_DISABLE_URL_SUFFIX")
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
        let url = if no_suffix || base.ends_with(MESSAGES_SUFFIX) {
            base
        } else {
            format!("{}{MESSAGES_SUFFIX}", base.trim_end_matches('/'))
        };

        let key = nonblank(config.api_key.map(str::to_owned))
            .or_else(|| nonblank(env("ANTHROPIC_API_KEY")));
        let mut betas = vec![];
        let mut fixed = vec![
            (
                ANTHROPIC_VERSION_HEADER.clone(),
                HeaderValue::from_static(ANTHROPIC_VERSION),
            ),
            (header::ACCEPT, HeaderValue::from_static("application/json")),
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
        ];
        let credential = match key {
            Some(key) if key.starts_with(OAUTH_PREFIX) => {
                betas.push(OAUTH_BETA);
                fixed.push((BROWSER_ACCESS.clone(), HeaderValue::from_static("true")));
                (header::AUTHORIZATION, format!("Bearer {key}"))
            }
            Some(key) => {
                let custom_base = configured_base.is_some_and(|b| !b.contains("api.anthropic.com"));
                if config.use_bearer_for_custom_base && custom_base && !key.starts_with("sk-ant-") {
                    let value = if key.starts_with("Bearer ") {
                        key
                    } else {
                        format!("Bearer {key}")
                    };
                    (header::AUTHORIZATION, value)
                } else {
                    (X_API_KEY.clone(), key)
                }
            }
            None => match nonblank(env("ANTHROPIC_AUTH_TOKEN")) {
                Some(token) => (header::AUTHORIZATION, format!("Bearer {token}")),
                None => return Err(error::missing_key()),
            },
        };
        let (name, value) = credential;
        let mut value = HeaderValue::from_str(&value).map_err(|_| {
            Error::invalid(
                "the Anthropic key has characters a header cannot carry",
                None,
            )
        })?;
        value.set_sensitive(true);
        fixed.push((name, value));
        Ok(Endpoint { url, fixed, betas })
    }

    /// Every header of one call: the fixed ones, then `anthropic-beta` when
    /// the call needs one: the endpoint's, the body's (`body_betas`, from
    /// [`request::Translated::betas`]) and the client's or the deployment's
    /// (`extra`, comma-separated values), each once, in that order.
    pub fn headers(&self, body_betas: &[&str], extra: &[&str]) -> Vec<(HeaderName, HeaderValue)> {
        let mut out = self.fixed.clone();
        let mut betas: Vec<&str> = vec![];
        let all = self
            .betas
            .iter()
            .copied()
            .chain(body_betas.iter().copied())
            .chain(extra.iter().flat_map(|v| v.split(',')))
            .map(str::trim)
            .filter(|b| !b.is_empty());
        for b in all {
            if !betas.contains(&b) {
                betas.push(b);
            }
        }
        if !betas.is_empty()
            && let Ok(v) = HeaderValue::from_str(&betas.join(","))
        {
            out.push((ANTHROPIC_BETA.clone(), v));
        }
        out
    }
}

/// Status of an upstream answer as the router sees it, for `529`.
pub(crate) fn status(code: u16) -> StatusCode {
    StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

/// JSON as Python's `json.dumps` writes it (`", "` and `": "` separators,
/// non-ASCII escaped): the spelling of LiteLLM's tool call arguments.
pub(crate) fn python_json(v: &impl serde::Serialize) -> String {
    let mut out = Vec::with_capacity(64);
    let mut ser = serde_json::Serializer::with_formatter(&mut out, PythonFormatter);
    // Serialising a JSON value into a Vec cannot fail; the output is ASCII.
    let _ = v.serialize(&mut ser);
    String::from_utf8(out).unwrap_or_default()
}

struct PythonFormatter;

impl serde_json::ser::Formatter for PythonFormatter {
    fn begin_array_value<W: ?Sized + std::io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        if first { Ok(()) } else { w.write_all(b", ") }
    }

    fn begin_object_key<W: ?Sized + std::io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        if first { Ok(()) } else { w.write_all(b", ") }
    }

    fn begin_object_value<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        w.write_all(b": ")
    }

    fn write_string_fragment<W: ?Sized + std::io::Write>(
        &mut self,
        w: &mut W,
        fragment: &str,
    ) -> std::io::Result<()> {
        let mut rest = fragment;
        while let Some(at) = rest.find(|c: char| !c.is_ascii()) {
            w.write_all(&rest.as_bytes()[..at])?;
            let c = rest[at..].chars().next().unwrap_or_default();
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                write!(w, "\\u{unit:04x}")?;
            }
            rest = &rest[at + c.len_utf8()..];
        }
        w.write_all(rest.as_bytes())
    }
}

#[cfg(test)]
mod tests;
