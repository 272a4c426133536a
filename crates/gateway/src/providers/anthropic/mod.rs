//! The `anthropic/` provider: Anthropic's Messages API behind
//! `/v1/chat/completions`, translated as LiteLLM 1.108.7 does
//! (`spec/anthropic.md` section 1, `W` references are to its wheel).
//!
//! # Layout
//!
//! - this module: what the gateway knows of each Claude model
//!   ([`ModelInfo`], from LiteLLM's cost map), and what the request
//!   translation hands to the answer's ([`ResponseContext`]); where a
//!   deployment is called ([`Endpoint`]: URL, key, `anthropic-version`,
//!   `anthropic-beta`) is resolved with the configuration
//!   (`config::anthropic`) and re-exported here.
//! - [`call`]: the [`crate::providers::Provider`] of `anthropic/`
//!   deployments, built from the pieces below, and a `/v1/messages` body
//!   sent as it is.
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
//! Everything but [`call`] is pure: bytes in, bytes out, no network.
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

use axum::http::StatusCode;

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

/// Where a deployment is called: resolved with the configuration.
pub use crate::config::anthropic::{ANTHROPIC_VERSION, Endpoint, EndpointConfig, Unresolved};

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
