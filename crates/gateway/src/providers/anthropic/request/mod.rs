//! An OpenAI chat completions body → an Anthropic Messages body, as
//! LiteLLM 1.108.7 builds it (spec sections 1.2 and 1.3; W
//! `llms/anthropic/chat/transformation.py` `map_openai_params` and
//! `transform_request`, `litellm_core_utils/prompt_templates/factory.py`
//! `anthropic_messages_pt`, `mid_conversation_system.py`).
//!
//! The input is the body as the gateway would send it to an OpenAI
//! upstream: the client's bytes with the upstream model name in `model`,
//! gateway-only fields removed and guardrail rewrites applied. It is read
//! in one pass (content parts in one more); message text, schemas and other
//! opaque values are copied as the JSON they came as, never unescaped and
//! escaped again; the output is written once.
//!
//! See the parent module for what differs from LiteLLM and why.
//!
//! Here: the entry point and the builder's life cycle (read the body and
//! refuse what Anthropic cannot take, map the parameters, write the body).
//! The parts: `input` (the OpenAI body as read), `output` (the Messages
//! body's parts), `params` (parameters and `response_format`), `tools`
//! (tools and `tool_choice`), `messages` (system and messages), `media`
//! (images and files).

mod input;
mod media;
mod messages;
mod output;
mod params;
mod tools;

use input::*;
use media::*;
use messages::*;
use output::*;

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::error::{bad_request, unsupported};
use super::{Caps, DEFAULT_MAX_TOKENS, ModelInfo, ResponseContext, supports_speed};
use crate::error::Error;
use crate::wire::json::Str;

/// How the translation treats what Anthropic cannot take.
#[derive(Clone, Copy, Debug, Default)]
pub struct Options {
    /// LiteLLM's `drop_params`: parameters the model does not support are
    /// dropped instead of answered with a 400.
    pub drop_params: bool,
}

/// A translated request.
#[derive(Debug)]
pub struct Translated {
    /// The Messages API body.
    pub body: Vec<u8>,
    /// `"stream": true` was asked for.
    pub stream: bool,
    /// `anthropic-beta` values the body needs (structured outputs, ...).
    pub betas: Vec<&'static str>,
    /// `anthropic-beta` values the client listed in `extra_headers`, the
    /// only header taken from there.
    pub client_betas: Vec<String>,
    /// What the answer's mapping needs to know.
    pub context: ResponseContext,
}

/// Text of a message whose content was empty: Anthropic refuses empty text
/// blocks (LiteLLM's `_EMPTY_TEXT_PLACEHOLDER`).
pub const EMPTY_TEXT_PLACEHOLDER: &str =
    "[System: Empty message content sanitised to satisfy protocol]";
/// Opens a system message that became a user turn (LiteLLM's
/// `CONVERTED_SYSTEM_NOTE`).
pub const CONVERTED_SYSTEM_NOTE: &str = "Operator note (not from the user): the following was originally a mid-conversation system-role reminder.";
/// The forced tool that carries a `response_format` answer.
pub const JSON_TOOL_NAME: &str = "json_tool_call";

const STRUCTURED_OUTPUTS_BETA: &str = "structured-outputs-2025-11-13";
const FAST_MODE_BETA: &str = "fast-mode-2026-02-01";
const COMPACT_BETA: &str = "compact-2026-01-12";
const CONTEXT_MANAGEMENT_BETA: &str = "context-management-2025-06-27";
const THINKING_DISPLAY_BETA: &str = "thinking-display-updates-2026-08-18";
/// LiteLLM's `DEFAULT_MAX_TOKENS`, added to a thinking budget when the
/// client set no `max_tokens`.
const THINKING_HEADROOM: u64 = 4096;
const MIN_THINKING_BUDGET: u64 = 1024;
const TOOL_NAME_MAX: usize = 128;

/// Top-level fields LiteLLM validates against the provider's supported
/// list, in the order its `get_optional_params` lists them (the order its
/// error names them in).
const OPENAI_PARAMS: &[&str] = &[
    "functions",
    "function_call",
    "temperature",
    "top_p",
    "n",
    "stream",
    "stream_options",
    "stop",
    "max_tokens",
    "max_completion_tokens",
    "modalities",
    "prediction",
    "audio",
    "presence_penalty",
    "frequency_penalty",
    "logit_bias",
    "user",
    "response_format",
    "seed",
    "tools",
    "tool_choice",
    "max_retries",
    "logprobs",
    "top_logprobs",
    "extra_headers",
    "parallel_tool_calls",
    "reasoning_effort",
    "verbosity",
    "thinking",
    "web_search_options",
    "safety_identifier",
    "store",
    "prompt_cache_key",
    "include_server_side_tool_invocations",
    "service_tier",
    "prompt_cache_retention",
    "context_management",
];

/// What Anthropic takes besides the model and messages (LiteLLM's
/// `get_supported_openai_params`, plus the fields it never validates).
const SUPPORTED: &[&str] = &[
    "stream",
    "stop",
    "temperature",
    "top_p",
    "max_tokens",
    "max_completion_tokens",
    "tools",
    "tool_choice",
    "extra_headers",
    "parallel_tool_calls",
    "response_format",
    "user",
    "web_search_options",
    "speed",
    "context_management",
    "cache_control",
    "service_tier",
    // Never validated by LiteLLM: read, or consumed.
    "stream_options",
    "max_retries",
    // Anthropic's own sampling parameter, forwarded (gated like temperature).
    "top_k",
];

/// Directives to the translation itself, never forwarded.
const DIRECTIVES: &[&str] = &[
    "drop_params",
    "allowed_openai_params",
    "additional_drop_params",
];

/// Translate `body` (see the module doc).
pub fn to_anthropic(body: &[u8], options: &Options) -> Result<Translated, Error> {
    // One UTF-8 check here spares one per borrowed string below.
    let text = std::str::from_utf8(body)
        .map_err(|_| Error::invalid("Invalid request body: not UTF-8", None))?;
    let body: Body<'_> = serde_json::from_str(text).map_err(|e| {
        if e.is_data() {
            Error::invalid(format!("Invalid request body: {e}"), None)
        } else {
            Error::invalid(format!("Invalid JSON in request body: {e}"), None)
        }
    })?;
    let mut b = Builder::new(body, options)?;
    b.size_hint = text.len();
    b.params()?;
    b.finish()
}

// ---- the translation ----

struct Builder<'a> {
    options: Options,
    model: Cow<'a, str>,
    caps: Caps,
    /// Supported parameters, by name; null counts as absent.
    params: Vec<(Cow<'a, str>, &'a RawValue)>,
    /// `allowed_openai_params`: forwarded as sent.
    allowed: Vec<(Cow<'a, str>, &'a RawValue)>,
    messages: Vec<Msg<'a>>,
    /// `tools` as sent.
    tools_in: Option<Vec<InTool<'a>>>,
    /// The optional fields of the body, in order.
    out: Vec<(&'static str, Out<'a>)>,
    betas: Vec<&'static str>,
    client_betas: Vec<String>,
    tools: Option<Vec<Tool<'a>>>,
    /// (original, sent) for rewritten tool names.
    forward: Vec<(String, String)>,
    context: ResponseContext,
    thinking: Option<Value>,
    output_config: Option<Map<String, Value>>,
    stream: bool,
    /// The input's size: the output is about as long.
    size_hint: usize,
}

/// One optional body field.
enum Out<'a> {
    Raw(&'a RawValue),
    Value(Value),
}

impl Serialize for Out<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Out::Raw(r) => r.serialize(s),
            Out::Value(v) => v.serialize(s),
        }
    }
}

impl<'a> Builder<'a> {
    fn new(body: Body<'a>, options: &Options) -> Result<Self, Error> {
        let Body {
            fields,
            messages,
            tools,
        } = body;
        let mut drop_params = options.drop_params;
        let mut additional_drop: Vec<String> = vec![];
        let mut allowed_names: Vec<String> = vec![];
        for (k, v) in &fields {
            match &**k {
                // A client may ask for drop_params on its own request, as
                // LiteLLM lets it.
                "drop_params" => drop_params |= v.get() == "true",
                "additional_drop_params" => {
                    additional_drop = serde_json::from_str(v.get()).unwrap_or_default();
                }
                "allowed_openai_params" => {
                    allowed_names = serde_json::from_str(v.get()).unwrap_or_default();
                }
                _ => {}
            }
        }
        let options = Options { drop_params };

        let mut model = None;
        let mut params = vec![];
        let mut allowed = vec![];
        let mut rejected: Vec<Cow<'a, str>> = vec![];
        for (k, v) in fields {
            let absent = v.get() == "null";
            match &*k {
                "model" => model = Some(string(v, "model")?),
                _ if absent || DIRECTIVES.contains(&&*k) => {}
                _ if additional_drop.iter().any(|d| *d == *k) => {}
                // n=1 is LiteLLM's default, and langchain sends it.
                "n" if v.get().trim() == "1" => {}
                _ if SUPPORTED.contains(&&*k) => params.push((k, v)),
                "thinking" | "reasoning_effort" => params.push((k, v)),
                // Only OpenAI's own parameters: allowing `system` would
                // forward a prompt no guardrail read.
                _ if OPENAI_PARAMS.contains(&&*k) && allowed_names.iter().any(|d| *d == *k) => {
                    allowed.push((k, v))
                }
                _ => rejected.push(k),
            }
        }
        let model = model.ok_or_else(|| Error::invalid("'model' is required", Some("model")))?;
        let caps = Caps::of(&model);
        if !caps.reasoning(&model) {
            params.retain(|(k, v)| {
                let take = !matches!(&**k, "thinking" | "reasoning_effort");
                if !take {
                    rejected.push(k.clone());
                }
                take || v.get() == "null"
            });
        }
        if !rejected.is_empty() && !options.drop_params {
            // LiteLLM names them in its own parameter order, then the rest.
            rejected.sort_by_key(|k| {
                OPENAI_PARAMS
                    .iter()
                    .position(|p| *p == k)
                    .unwrap_or(usize::MAX)
            });
            let list = rejected
                .iter()
                .map(|k| format!("'{k}'"))
                .collect::<Vec<_>>()
                .join(", ");
            return Err(unsupported(format_args!(
                "anthropic does not support parameters: [{list}], for model={model}. To drop these, set `litellm.drop_params=True` or for proxy:\n\n`litellm_settings:\n drop_params: true`\n. \n If you want to use these params dynamically send allowed_openai_params=[{list}] in your request."
            )));
        }
        let Some(messages) = messages else {
            return Err(Error::invalid("'messages' is required", Some("messages")));
        };
        let messages = parse_messages(messages)?;
        let tools_in = tools.filter(|_| !additional_drop.iter().any(|d| d == "tools"));
        Ok(Builder {
            options,
            model,
            caps,
            params,
            allowed,
            messages,
            tools_in,
            out: vec![],
            betas: vec![],
            client_betas: vec![],
            tools: None,
            forward: vec![],
            context: ResponseContext::default(),
            thinking: None,
            output_config: None,
            stream: false,
            size_hint: 0,
        })
    }

    fn param(&self, name: &str) -> Option<&'a RawValue> {
        self.params.iter().find(|(k, _)| k == name).map(|(_, v)| *v)
    }

    fn set(&mut self, key: &'static str, value: Out<'a>) {
        match self.out.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = value,
            None => self.out.push((key, value)),
        }
    }

    fn beta(&mut self, beta: &'static str) {
        if !self.betas.contains(&beta) {
            self.betas.push(beta);
        }
    }

    /// Messages, tools, defaults; then the body.
    fn finish(mut self) -> Result<Translated, Error> {
        let messages = std::mem::take(&mut self.messages);
        // The dummy tool: Anthropic refuses tool blocks in the history of a
        // request without tools.
        if self.tools.is_none() && messages.iter().any(|m| m.has_tool_calls) {
            self.tools = Some(vec![Tool::Custom {
                name: Cow::Borrowed("dummy_tool"),
                input_schema: InputSchema::Value(
                    serde_json::json!({"type": "object", "properties": {}}),
                ),
                kind: "custom",
                description: serde_json::from_str(r#""This is a dummy tool call""#).ok(),
                cache_control: None,
            }]);
        }
        self.sanitize_tool_names();
        if let Some(last) = messages.last()
            && last.role == Role::Assistant
            && last.prefix
            && let Content::Text(t) = &last.content
        {
            self.context.prefix = Some(t.decode().into_owned());
        }

        let lead = messages
            .iter()
            .take_while(|m| m.role == Role::System)
            .count();
        let mut system: Vec<Block<'_>> = vec![];
        for m in &messages[..lead] {
            system_blocks(m, &mut system)?;
        }
        let conversation = &messages[lead..];
        let placed = if self.caps.mid_system() {
            place_system_kept(conversation)
        } else {
            place_system_converted(conversation)
        };
        let out_messages = convert(&placed, &self.forward)?;
        if out_messages.is_empty() {
            return Err(bad_request(
                "AnthropicException - litellm.BadRequestError: Anthropic requires at least one non-system message. Either provide one, or set `litellm.modify_params = True` // `litellm_settings::modify_params: True` to add the dummy user message - {'role': 'user', 'content': 'Please continue.'}.",
            ));
        }

        if let Some(t) = self.thinking.take() {
            self.set("thinking", Out::Value(t));
        }
        if let Some(oc) = self.output_config.take() {
            let effort = oc.get("effort").and_then(Value::as_str).unwrap_or_default();
            if !effort.is_empty() {
                if !matches!(effort, "high" | "medium" | "low" | "xhigh" | "max") {
                    return Err(bad_request(format_args!(
                        "Invalid effort value: '{effort}'. Must be one of: 'high', 'medium', 'low', 'xhigh', 'max'"
                    )));
                }
                let max_ok = self.caps.adaptive() || self.caps.max_effort();
                if (effort == "max" && !max_ok) || (effort == "xhigh" && !self.caps.xhigh()) {
                    return Err(bad_request(format_args!(
                        "effort='{effort}' is not supported by this model. Got model: {}",
                        self.model
                    )));
                }
            }
            self.set("output_config", Out::Value(Value::Object(oc)));
        }
        let max_tokens = match self.out.iter().position(|(k, _)| *k == "max_tokens") {
            Some(i) => self.out.remove(i).1,
            None => Out::Value(Value::from(
                ModelInfo::exact(&self.model).map_or(DEFAULT_MAX_TOKENS, |m| m.max_output_tokens),
            )),
        };

        let mut body = Vec::with_capacity(self.size_hint + 256);
        let mut ser = serde_json::Serializer::new(&mut body);
        let write = (|| {
            let mut map = ser.serialize_map(None)?;
            map.serialize_entry("model", &self.model)?;
            map.serialize_entry("messages", &out_messages)?;
            if !system.is_empty() {
                map.serialize_entry("system", &system)?;
            }
            map.serialize_entry("max_tokens", &max_tokens)?;
            if let Some(tools) = &self.tools {
                map.serialize_entry("tools", tools)?;
            }
            for (k, v) in &self.out {
                map.serialize_entry(k, v)?;
            }
            // allowed_openai_params: as sent, unless the body already has
            // the field.
            for (k, v) in &self.allowed {
                let taken = matches!(
                    &**k,
                    "model" | "messages" | "system" | "max_tokens" | "tools"
                ) || self.out.iter().any(|(o, _)| *o == k);
                if !taken {
                    map.serialize_entry(&**k, v)?;
                }
            }
            map.end()
        })();
        write.map_err(|e| Error::Internal(format!("serialising an Anthropic body: {e}")))?;
        self.context.tool_names = self.forward.into_iter().map(|(o, s)| (s, o)).collect();
        Ok(Translated {
            body,
            stream: self.stream,
            betas: self.betas,
            client_betas: self.client_betas,
            context: self.context,
        })
    }
}

/// LiteLLM's `_valid_user_id`: not an e-mail address, not a phone number.
pub(crate) fn valid_user_id(user: &str) -> bool {
    // `$` in Python's re matches before a final newline too.
    let s = user.strip_suffix('\n').unwrap_or(user);
    let email = s.split_once('@').is_some_and(|(local, domain)| {
        let local_ok = !local.is_empty()
            && local.bytes().all(|b| {
                b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'%' | b'+' | b'-')
            });
        let domain_ok = domain.rsplit_once('.').is_some_and(|(host, tld)| {
            !host.is_empty()
                && host
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-'))
                && tld.len() >= 2
                && tld.bytes().all(|b| b.is_ascii_alphabetic())
        });
        local_ok && domain_ok
    });
    let digits = user.strip_prefix('+').unwrap_or(user);
    let phone = digits.chars().count() >= 7
        && digits
            .chars()
            .all(|c| c.is_numeric() || c.is_whitespace() || matches!(c, '(' | ')' | '-'));
    !email && !phone
}

#[cfg(test)]
mod tests;
