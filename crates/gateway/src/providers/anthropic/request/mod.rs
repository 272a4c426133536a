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

// ---- input ----

/// The body, read in one pass: `messages` and `tools` decoded in place,
/// every other field left as raw JSON, in order.
struct Body<'a> {
    fields: Vec<(Cow<'a, str>, &'a RawValue)>,
    messages: Option<Vec<InMessage<'a>>>,
    tools: Option<Vec<InTool<'a>>>,
}

impl<'de> Deserialize<'de> for Body<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Body<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut body = Body {
                    fields: Vec::with_capacity(8),
                    messages: None,
                    tools: None,
                };
                while let Some(Str(key)) = map.next_key()? {
                    match &*key {
                        "messages" => body.messages = map.next_value()?,
                        "tools" => body.tools = map.next_value()?,
                        _ => {
                            let value: &'de RawValue = map.next_value()?;
                            match body.fields.iter_mut().find(|(k, _)| *k == key) {
                                Some(slot) => slot.1 = value,
                                None => body.fields.push((key, value)),
                            }
                        }
                    }
                }
                Ok(body)
            }
        }
        d.deserialize_map(V)
    }
}

/// A tool: OpenAI's `{type, function}`, or Anthropic's own shape (with
/// `input_schema`).
#[derive(Deserialize)]
struct InTool<'a> {
    #[serde(rename = "type", borrow, default)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    function: Option<InToolFunction<'a>>,
    #[serde(borrow, default)]
    name: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    description: Option<&'a RawValue>,
    #[serde(borrow, default)]
    input_schema: Option<&'a RawValue>,
    #[serde(borrow, default)]
    cache_control: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct InToolFunction<'a> {
    #[serde(borrow, default)]
    name: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    description: Option<&'a RawValue>,
    #[serde(borrow, default)]
    parameters: Option<Schema<'a>>,
    #[serde(borrow, default)]
    cache_control: Option<&'a RawValue>,
}

/// A JSON schema's top-level entries, values left as raw JSON: the schema is
/// copied, not rebuilt. Not an object: no entries.
struct Schema<'a>(Vec<(Cow<'a, str>, &'a RawValue)>);

impl<'de: 'a, 'a> Deserialize<'de> for Schema<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Schema<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON schema")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut out: Vec<(Cow<'a, str>, &'a RawValue)> = Vec::with_capacity(4);
                while let Some(Str(key)) = map.next_key()? {
                    let value: &'de RawValue = map.next_value()?;
                    match out.iter_mut().find(|(k, _)| *k == key) {
                        Some(slot) => slot.1 = value,
                        None => out.push((key, value)),
                    }
                }
                Ok(Schema(out))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Schema(vec![]))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
                Ok(Schema(vec![]))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
                Ok(Schema(vec![]))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
                Ok(Schema(vec![]))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
                Ok(Schema(vec![]))
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
                Ok(Schema(vec![]))
            }
            fn visit_seq<S: SeqAccess<'de>>(self, mut seq: S) -> Result<Self::Value, S::Error> {
                while seq.next_element::<de::IgnoredAny>()?.is_some() {}
                Ok(Schema(vec![]))
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

#[derive(Deserialize)]
struct InMessage<'a> {
    #[serde(borrow, default)]
    role: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    content: Content<'a>,
    #[serde(borrow, default)]
    tool_calls: Option<Vec<InToolCall<'a>>>,
    #[serde(borrow, default)]
    tool_call_id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    function_call: Option<InFunction<'a>>,
    #[serde(borrow, default)]
    cache_control: Option<&'a RawValue>,
    #[serde(borrow, default)]
    thinking_blocks: Option<Vec<InThinking<'a>>>,
    #[serde(borrow, default)]
    prefix: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct InToolCall<'a> {
    #[serde(borrow, default)]
    id: Option<Cow<'a, str>>,
    #[serde(rename = "type", borrow, default)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    function: Option<InFunction<'a>>,
    #[serde(borrow, default)]
    cache_control: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct InFunction<'a> {
    #[serde(borrow, default)]
    name: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    arguments: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct InThinking<'a> {
    #[serde(rename = "type", borrow, default)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    thinking: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    signature: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    data: Option<Cow<'a, str>>,
}

#[derive(Deserialize, Default)]
struct InPart<'a> {
    #[serde(rename = "type", borrow, default)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    text: Option<&'a RawValue>,
    /// The text of a part that was a bare string.
    #[serde(skip)]
    bare: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    image_url: Option<InImageUrl<'a>>,
    #[serde(borrow, default)]
    file: Option<InFile<'a>>,
    #[serde(borrow, default)]
    cache_control: Option<&'a RawValue>,
    #[serde(borrow, default)]
    thinking: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    signature: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    tool_name: Option<&'a RawValue>,
    /// A `document` part, already in Anthropic's shape.
    #[serde(borrow, default)]
    source: Option<&'a RawValue>,
    #[serde(borrow, default)]
    title: Option<&'a RawValue>,
    #[serde(borrow, default)]
    context: Option<&'a RawValue>,
    #[serde(borrow, default)]
    citations: Option<&'a RawValue>,
}

/// Text as it arrived: the JSON string token, written back as it came and
/// decoded only when the translation must look inside (a long prompt is
/// neither unescaped nor escaped again), or text decoded already.
#[derive(Clone)]
enum Txt<'a> {
    Raw(&'a RawValue),
    Str(Cow<'a, str>),
}

impl<'a> Txt<'a> {
    fn decode(&self) -> Cow<'a, str> {
        match self {
            Txt::Raw(raw) => serde_json::from_str::<Str<'a>>(raw.get())
                .map(|s| s.0)
                .unwrap_or_default(),
            Txt::Str(s) => s.clone(),
        }
    }

    fn is_empty(&self) -> bool {
        match self {
            Txt::Raw(raw) => raw.get() == "\"\"",
            Txt::Str(s) => s.is_empty(),
        }
    }

    /// Whitespace only (LiteLLM's `not text.strip()`). Decided on the JSON
    /// itself: the first plain character that is not whitespace settles
    /// it, without decoding a long text.
    fn is_blank(&self) -> bool {
        let raw = match self {
            Txt::Raw(raw) => raw.get(),
            Txt::Str(s) => return s.trim().is_empty(),
        };
        let inner = raw.get(1..raw.len().saturating_sub(1)).unwrap_or("");
        let mut bytes = inner.bytes();
        while let Some(b) = bytes.next() {
            match b {
                b'\\' => match bytes.next() {
                    Some(b'n' | b'r' | b't' | b'f') => {}
                    // `\"`, `\\`, `\/` are text; `\u` may be anything.
                    Some(b'u') => return self.decode().trim().is_empty(),
                    _ => return false,
                },
                b if b.is_ascii_whitespace() => {}
                // Unicode has spaces beyond ASCII.
                b if !b.is_ascii() => return self.decode().trim().is_empty(),
                _ => return false,
            }
        }
        true
    }
}

impl Serialize for Txt<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Txt::Raw(raw) => raw.serialize(s),
            Txt::Str(t) => s.serialize_str(t),
        }
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum InImageUrl<'a> {
    Url(#[serde(borrow)] Cow<'a, str>),
    Object {
        #[serde(borrow)]
        url: Cow<'a, str>,
        #[serde(borrow, default)]
        format: Option<Cow<'a, str>>,
    },
}

#[derive(Deserialize)]
struct InFile<'a> {
    #[serde(borrow, default)]
    file_data: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    file_id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    format: Option<Cow<'a, str>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    System,
    User,
    Assistant,
    Tool,
    Function,
}

impl Role {
    /// Merged into one user turn.
    fn user_type(self) -> bool {
        matches!(self, Role::User | Role::Tool | Role::Function)
    }
}

#[derive(Default)]
enum Content<'a> {
    #[default]
    None,
    Text(Txt<'a>),
    /// The parts; a bare string is a text part.
    Parts(Vec<InPart<'a>>),
}

/// `content`: a string kept as sent, a list of parts, or null.
impl<'de: 'a, 'a> Deserialize<'de> for Content<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw: &'de RawValue = Deserialize::deserialize(d)?;
        let text = raw.get();
        if text.starts_with('"') {
            return Ok(Content::Text(Txt::Raw(raw)));
        }
        if text == "null" {
            return Ok(Content::None);
        }
        if text.starts_with('[') {
            let parts: Vec<PartIn<'a>> = serde_json::from_str(text).map_err(de::Error::custom)?;
            return Ok(Content::Parts(parts.into_iter().map(|p| p.0).collect()));
        }
        Err(de::Error::custom(
            "invalid type: 'content' must be a string, an array or null",
        ))
    }
}

/// A content part: an object, or a bare string (a text part).
struct PartIn<'a>(InPart<'a>);

impl<'de: 'a, 'a> Deserialize<'de> for PartIn<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = PartIn<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a content part")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(PartIn(InPart::text(Cow::Borrowed(v))))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(PartIn(InPart::text(Cow::Owned(v.to_owned()))))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(PartIn(InPart::text(Cow::Owned(v))))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                InPart::deserialize(de::value::MapAccessDeserializer::new(map)).map(PartIn)
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

impl<'a> InPart<'a> {
    fn text(text: Cow<'a, str>) -> Self {
        InPart {
            kind: Some(Cow::Borrowed("text")),
            bare: Some(text),
            ..InPart::default()
        }
    }
}

impl Content<'_> {
    /// Python's falsiness: absent, `""` or `[]`.
    fn is_empty(&self) -> bool {
        match self {
            Content::None => true,
            Content::Text(t) => t.is_empty(),
            Content::Parts(p) => p.is_empty(),
        }
    }
}

struct Msg<'a> {
    role: Role,
    content: Content<'a>,
    /// `tool_calls` was present (even empty): the history has tool blocks.
    has_tool_calls: bool,
    tool_calls: Vec<InToolCall<'a>>,
    tool_call_id: Option<Cow<'a, str>>,
    function_call: Option<InFunction<'a>>,
    cache_control: Option<&'a RawValue>,
    thinking_blocks: Vec<InThinking<'a>>,
    prefix: bool,
}

fn parse_messages(list: Vec<InMessage<'_>>) -> Result<Vec<Msg<'_>>, Error> {
    let mut out = Vec::with_capacity(list.len());
    for (i, m) in list.into_iter().enumerate() {
        let role = match m.role.as_deref() {
            Some("system" | "developer") => Role::System,
            Some("user") => Role::User,
            Some("assistant") => Role::Assistant,
            Some("tool") => Role::Tool,
            Some("function") => Role::Function,
            Some(other) => {
                return Err(bad_request(format_args!(
                    "Invalid Message passed in: messages[{i}] has role '{other}'"
                )));
            }
            None => {
                return Err(Error::invalid(
                    format!("Invalid request body: messages[{i}] needs a 'role'"),
                    Some("messages"),
                ));
            }
        };
        out.push(Msg {
            role,
            content: m.content,
            has_tool_calls: m.tool_calls.is_some(),
            tool_calls: m.tool_calls.unwrap_or_default(),
            tool_call_id: m.tool_call_id,
            function_call: m.function_call,
            cache_control: m.cache_control.filter(|c| is_object(c)),
            thinking_blocks: m.thinking_blocks.unwrap_or_default(),
            prefix: m.prefix.is_some_and(|p| p.get() == "true"),
        });
    }
    Ok(out)
}

fn is_object(raw: &RawValue) -> bool {
    raw.get().starts_with('{')
}

/// A string value, or an error naming the field.
fn string<'a>(raw: &'a RawValue, name: &str) -> Result<Cow<'a, str>, Error> {
    serde_json::from_str::<Str>(raw.get())
        .map(|s| s.0)
        .map_err(|_| Error::invalid(format!("'{name}' must be a string"), Some(name)))
}

fn value(raw: &RawValue, name: &str) -> Result<Value, Error> {
    serde_json::from_str(raw.get())
        .map_err(|e| Error::invalid(format!("Invalid request body: '{name}': {e}"), Some(name)))
}

// ---- output ----

/// A `cache_control` to send: the client's object, or LiteLLM's normalised
/// one on a mid-conversation system message.
#[derive(Clone, Copy)]
enum Cache<'a> {
    Raw(&'a RawValue),
    Ephemeral(Option<&'static str>),
}

impl Serialize for Cache<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Cache::Raw(r) => r.serialize(s),
            Cache::Ephemeral(ttl) => {
                let mut m = s.serialize_map(None)?;
                m.serialize_entry("type", "ephemeral")?;
                if let Some(ttl) = ttl {
                    m.serialize_entry("ttl", ttl)?;
                }
                m.end()
            }
        }
    }
}

/// LiteLLM's `_cache_control`: only `ephemeral`, only the known TTLs.
fn normalized_cache(raw: Option<&RawValue>) -> Option<Cache<'static>> {
    #[derive(Deserialize)]
    struct Cc<'a> {
        #[serde(rename = "type", borrow, default)]
        kind: Option<Cow<'a, str>>,
        #[serde(borrow, default)]
        ttl: Option<&'a RawValue>,
    }
    let cc: Cc<'_> = serde_json::from_str(raw?.get()).ok()?;
    if cc.kind.as_deref() != Some("ephemeral") {
        return None;
    }
    let ttl = match cc.ttl.map(RawValue::get) {
        Some("\"1h\"") => Some("1h"),
        Some("\"5m\"") => Some("5m"),
        _ => None,
    };
    Some(Cache::Ephemeral(ttl))
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Source<'a> {
    Url {
        url: Cow<'a, str>,
    },
    Base64 {
        media_type: Cow<'a, str>,
        data: Cow<'a, str>,
    },
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Block<'a> {
    Text {
        text: Txt<'a>,
        #[serde(skip_serializing_if = "Option::is_none")]
        cache_control: Option<Cache<'a>>,
    },
    Image {
        source: Source<'a>,
        #[serde(skip_serializing_if = "Option::is_none")]
        cache_control: Option<Cache<'a>>,
    },
    Document {
        source: DocSource<'a>,
        #[serde(skip_serializing_if = "Option::is_none")]
        title: Option<&'a RawValue>,
        #[serde(skip_serializing_if = "Option::is_none")]
        context: Option<&'a RawValue>,
        #[serde(skip_serializing_if = "Option::is_none")]
        citations: Option<&'a RawValue>,
        #[serde(skip_serializing_if = "Option::is_none")]
        cache_control: Option<Cache<'a>>,
    },
    ToolUse {
        id: Cow<'a, str>,
        name: Cow<'a, str>,
        input: Box<RawValue>,
        #[serde(skip_serializing_if = "Option::is_none")]
        cache_control: Option<Cache<'a>>,
    },
    ToolResult {
        tool_use_id: Cow<'a, str>,
        content: ToolResultContent<'a>,
        #[serde(skip_serializing_if = "Option::is_none")]
        cache_control: Option<Cache<'a>>,
    },
    Thinking {
        thinking: Cow<'a, str>,
        signature: Cow<'a, str>,
    },
    RedactedThinking {
        data: Cow<'a, str>,
    },
    ToolReference {
        tool_name: &'a RawValue,
    },
}

#[derive(Serialize)]
#[serde(untagged)]
enum DocSource<'a> {
    Built(Source<'a>),
    /// A `document` part's own source, as sent.
    Raw(&'a RawValue),
}

#[derive(Serialize)]
#[serde(untagged)]
enum ToolResultContent<'a> {
    Text(Txt<'a>),
    Blocks(Vec<Block<'a>>),
}

#[derive(Serialize)]
struct OutMessage<'a> {
    role: &'static str,
    content: Vec<Block<'a>>,
}

#[derive(Serialize)]
#[serde(untagged)]
enum Tool<'a> {
    Custom {
        name: Cow<'a, str>,
        input_schema: InputSchema<'a>,
        #[serde(rename = "type")]
        kind: &'static str,
        #[serde(skip_serializing_if = "Option::is_none")]
        description: Option<&'a RawValue>,
        #[serde(skip_serializing_if = "Option::is_none")]
        cache_control: Option<&'a RawValue>,
    },
    /// A tool the client wrote in Anthropic's shape: its known fields.
    Native {
        name: Cow<'a, str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        description: Option<&'a RawValue>,
        input_schema: &'a RawValue,
        #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
        kind: Option<Cow<'a, str>>,
        #[serde(skip_serializing_if = "Option::is_none")]
        cache_control: Option<&'a RawValue>,
    },
    /// `response_format` as a tool (LiteLLM writes no `type`).
    Json {
        name: &'static str,
        input_schema: Value,
    },
    /// A hosted tool (web search).
    Value(Value),
}

/// A tool's `input_schema`.
enum InputSchema<'a> {
    /// The client's entries as sent, filtered; `type` and `properties`
    /// supplied when missing.
    Entries(Vec<(Cow<'a, str>, &'a RawValue)>, bool, bool),
    /// Rebuilt (legacy `definitions`, the dummy tool).
    Value(Value),
}

impl Serialize for InputSchema<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            InputSchema::Value(v) => v.serialize(s),
            InputSchema::Entries(entries, add_type, add_properties) => {
                let mut m = s.serialize_map(None)?;
                for (k, v) in entries {
                    if k == "type" {
                        m.serialize_entry("type", "object")?;
                    } else {
                        m.serialize_entry(&**k, v)?;
                    }
                }
                if *add_type {
                    m.serialize_entry("type", "object")?;
                }
                if *add_properties {
                    m.serialize_entry("properties", &Map::new())?;
                }
                m.end()
            }
        }
    }
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

    /// The parameters, in LiteLLM's order.
    fn params(&mut self) -> Result<(), Error> {
        let model = self.model.clone();
        let drop = self.options.drop_params;
        for name in ["temperature", "top_p", "top_k"] {
            if let Some(v) = self.param(name) {
                self.sampling(name, v)?;
            }
        }
        if let Some(v) = self.param("stream") {
            self.stream = v.get() == "true";
            if self.stream {
                self.set("stream", Out::Value(Value::Bool(true)));
            }
        }
        if let Some(v) = self.param("stream_options") {
            #[derive(Deserialize)]
            struct StreamOptions {
                #[serde(default)]
                include_usage: Option<bool>,
            }
            self.context.include_usage = serde_json::from_str::<StreamOptions>(v.get())
                .ok()
                .and_then(|o| o.include_usage)
                .unwrap_or(false);
        }
        if let Some(v) = self.param("stop") {
            self.stop(v)?;
        }
        // max_completion_tokens comes later in LiteLLM's loop, so it wins.
        for name in ["max_tokens", "max_completion_tokens"] {
            if let Some(v) = self.param(name) {
                let n = max_tokens(v, name)?;
                self.set("max_tokens", Out::Value(n));
            }
        }
        if let Some(v) = self.param("user") {
            // Anthropic refuses e-mails and phone numbers as a user id.
            if let Ok(user) = serde_json::from_str::<Str>(v.get())
                && valid_user_id(&user.0)
            {
                let mut m = Map::new();
                m.insert("user_id".into(), Value::String(user.0.into_owned()));
                self.set("metadata", Out::Value(Value::Object(m)));
            }
        }
        let thinking_enabled = self.thinking_enabled();
        if let Some(v) = self.param("response_format") {
            self.response_format(v, thinking_enabled)?;
        }
        if let Some(list) = self.tools_in.take() {
            self.tools(list)?;
        }
        if self.param("tool_choice").is_some() || self.param("parallel_tool_calls").is_some() {
            self.tool_choice()?;
        }
        // Of a client's extra headers only anthropic-beta is taken: the
        // others could replace the deployment's credential.
        if let Some(v) = self.param("extra_headers")
            && let Ok(headers) = serde_json::from_str::<Map<String, Value>>(v.get())
        {
            for (k, v) in headers {
                if k.eq_ignore_ascii_case("anthropic-beta")
                    && let Value::String(s) = v
                {
                    self.client_betas.push(s);
                }
            }
        }
        if let Some(v) = self.param("reasoning_effort") {
            self.reasoning_effort(v)?;
        }
        if let Some(v) = self.param("thinking") {
            self.thinking_param(v)?;
        }
        if let Some(v) = self.param("web_search_options") {
            self.web_search(v)?;
        }
        if let Some(v) = self.param("service_tier") {
            let tier = string(v, "service_tier")?;
            let mapped = match &*tier {
                "auto" => Some("auto"),
                "default" | "standard_only" => Some("standard_only"),
                _ => None,
            };
            match mapped {
                Some(t) => self.set("service_tier", Out::Value(Value::String(t.into()))),
                None if drop => {}
                None => {
                    return Err(unsupported(format_args!(
                        "{model} does not support service_tier='{tier}'. Anthropic accepts 'auto', 'standard_only', or OpenAI's 'default' (sent as 'standard_only'). To drop unsupported params, set `litellm.drop_params = True`."
                    )));
                }
            }
        }
        if let Some(v) = self.param("context_management") {
            self.context_management(v)?;
        }
        if let Some(v) = self.param("speed") {
            if supports_speed(&model) {
                if v.get() == "\"fast\"" {
                    self.beta(FAST_MODE_BETA);
                }
                self.set("speed", Out::Raw(v));
            } else if !drop {
                let speed = v.get().replace('"', "'");
                return Err(unsupported(format_args!(
                    "{model} does not support speed={speed}. To drop unsupported params, set `litellm.drop_params = True`."
                )));
            }
        }
        if let Some(v) = self.param("cache_control")
            && is_object(v)
        {
            self.set("cache_control", Out::Raw(v));
        }
        // Thinking tokens: with a budget and no max_tokens, room for both.
        let client_max =
            self.param("max_tokens").is_some() || self.param("max_completion_tokens").is_some();
        if !client_max
            && let Some(budget) = self
                .thinking
                .as_ref()
                .filter(|t| t.get("type").and_then(Value::as_str) == Some("enabled"))
                .and_then(|t| t.get("budget_tokens"))
                .and_then(Value::as_u64)
        {
            self.set(
                "max_tokens",
                Out::Value(Value::from(budget + THINKING_HEADROOM)),
            );
        }
        Ok(())
    }

    fn thinking_enabled(&self) -> bool {
        // LiteLLM's is_thinking_enabled on the request's parameters.
        self.param("reasoning_effort").is_some()
            || self.param("thinking").is_some_and(|t| {
                t.get() == "true"
                    || serde_json::from_str::<Value>(t.get())
                        .ok()
                        .and_then(|v| {
                            v.get("type")
                                .and_then(Value::as_str)
                                .map(|s| s == "enabled")
                        })
                        .unwrap_or(false)
            })
    }

    fn sampling(&mut self, name: &'static str, v: &'a RawValue) -> Result<(), Error> {
        let is_one =
            name == "temperature" && serde_json::from_str::<f64>(v.get()).is_ok_and(|t| t == 1.0);
        if self.caps.sampling() || is_one {
            self.set(name, Out::Raw(v));
            return Ok(());
        }
        if self.options.drop_params {
            return Ok(());
        }
        let hint = if name == "temperature" {
            "Only temperature=1 is supported. "
        } else {
            ""
        };
        Err(unsupported(format_args!(
            "{} does not support {name}={}. {hint}To drop unsupported params, set `litellm.drop_params = True`.",
            self.model,
            v.get()
        )))
    }

    fn stop(&mut self, v: &'a RawValue) -> Result<(), Error> {
        let list: Vec<String> = if v.get().starts_with('"') {
            vec![string(v, "stop")?.into_owned()]
        } else {
            serde_json::from_str(v.get()).map_err(|_| {
                Error::invalid("'stop' must be a string or a list of strings", Some("stop"))
            })?
        };
        // Anthropic refuses whitespace-only stop sequences; LiteLLM drops
        // them only when told to drop what does not fit.
        let list: Vec<Value> = list
            .into_iter()
            .filter(|s| !(self.options.drop_params && is_space(s)))
            .map(Value::String)
            .collect();
        if !list.is_empty() {
            self.set("stop_sequences", Out::Value(Value::Array(list)));
        }
        Ok(())
    }

    fn response_format(&mut self, v: &'a RawValue, thinking_enabled: bool) -> Result<(), Error> {
        let format = value(v, "response_format")?;
        let Some(obj) = format.as_object() else {
            return Ok(());
        };
        let schema = match (obj.get("response_schema"), obj.get("json_schema")) {
            (Some(s), _) => Some(s.clone()),
            (None, Some(js)) => js.get("schema").cloned(),
            (None, None) => None,
        };
        if self.caps.native_json() {
            if let Some(schema) = schema {
                let mut out = Map::new();
                out.insert("type".into(), "json_schema".into());
                out.insert("schema".into(), filter_output_schema(&schema));
                self.set("output_format", Out::Value(Value::Object(out)));
                self.beta(STRUCTURED_OUTPUTS_BETA);
            }
            return Ok(());
        }
        if obj.get("type").and_then(Value::as_str) == Some("text") {
            return Ok(());
        }
        let Some(schema) = schema else {
            return Ok(());
        };
        let mut input = Map::new();
        input.insert("type".into(), "object".into());
        if let Value::Object(s) = schema {
            input.extend(s);
        }
        self.tools.get_or_insert_with(Vec::new).push(Tool::Json {
            name: JSON_TOOL_NAME,
            input_schema: Value::Object(input),
        });
        if !thinking_enabled && self.caps.forced_tool() {
            let mut choice = Map::new();
            choice.insert("name".into(), JSON_TOOL_NAME.into());
            choice.insert("type".into(), "tool".into());
            self.set("tool_choice", Out::Value(Value::Object(choice)));
        }
        self.context.json_tool = true;
        Ok(())
    }

    fn tools(&mut self, list: Vec<InTool<'a>>) -> Result<(), Error> {
        let mut tools = self.tools.take().unwrap_or_default();
        tools.reserve(list.len());
        for t in list {
            if let Some(schema) = t.input_schema {
                let Some(name) = t.name else {
                    return Err(Error::invalid("a tool needs a name", Some("tools")));
                };
                tools.push(Tool::Native {
                    name,
                    description: t.description.filter(|d| d.get() != "null"),
                    input_schema: schema,
                    kind: t.kind,
                    cache_control: t.cache_control.filter(|c| c.get() != "null"),
                });
                continue;
            }
            let kind = t.kind.as_deref().unwrap_or("");
            if kind != "function" && kind != "custom" {
                return Err(bad_request(format_args!("Unsupported tool type: {kind}")));
            }
            let Some(f) = t.function else {
                return Err(Error::invalid(
                    "a function tool needs a 'function'",
                    Some("tools"),
                ));
            };
            let Some(name) = f.name else {
                return Err(Error::invalid("a tool needs a name", Some("tools")));
            };
            let cache_control = t
                .cache_control
                .filter(|c| c.get() != "null")
                .or(f.cache_control.filter(|c| is_object(c)));
            tools.push(Tool::Custom {
                name,
                input_schema: input_schema(f.parameters)?,
                kind: "custom",
                description: f.description.filter(|d| d.get() != "null"),
                cache_control,
            });
        }
        self.tools = Some(tools);
        Ok(())
    }

    fn tool_choice(&mut self) -> Result<(), Error> {
        let choice = match self.param("tool_choice") {
            Some(v) => Some(value(v, "tool_choice")?),
            None => None,
        };
        let parallel = self
            .param("parallel_tool_calls")
            .and_then(|v| serde_json::from_str::<bool>(v.get()).ok());
        let mut mapped: Option<Map<String, Value>> = match &choice {
            Some(Value::String(s)) => match s.as_str() {
                "auto" => Some(kind_only("auto")),
                "required" => Some(kind_only("any")),
                "none" => Some(kind_only("none")),
                _ => None,
            },
            Some(Value::Object(o)) if o.contains_key("type") && !o.contains_key("function") => {
                match o.get("type").and_then(Value::as_str) {
                    Some("auto") => Some(kind_only("auto")),
                    Some("required" | "any") => Some(kind_only("any")),
                    Some("none") => Some(kind_only("none")),
                    _ => None,
                }
            }
            Some(Value::Object(o)) => o
                .get("function")
                .and_then(|f| f.get("name"))
                .filter(|n| !n.is_null())
                .map(|name| {
                    let mut m = kind_only("tool");
                    m.insert("name".into(), name.clone());
                    m
                }),
            _ => None,
        };
        if let Some(parallel) = parallel {
            let none = matches!(&choice, Some(Value::String(s)) if s == "none");
            if !none {
                let m = mapped.get_or_insert_with(|| kind_only("auto"));
                m.insert("disable_parallel_tool_use".into(), Value::Bool(!parallel));
            }
        }
        let Some(mut m) = mapped else {
            return Ok(());
        };
        let forced = matches!(m.get("type").and_then(Value::as_str), Some("any" | "tool"));
        if forced && !self.caps.forced_tool() {
            if !self.options.drop_params {
                return Err(unsupported(format_args!(
                    "{} does not support forced tool use (tool_choice='required' or a named tool). Use tool_choice='auto' and tell the model in the prompt when to call the tool, or set `litellm.drop_params = True` to downgrade to 'auto' automatically.",
                    self.model
                )));
            }
            let disable = m.remove("disable_parallel_tool_use");
            m = kind_only("auto");
            if let Some(d) = disable {
                m.insert("disable_parallel_tool_use".into(), d);
            }
        }
        self.set("tool_choice", Out::Value(Value::Object(m)));
        Ok(())
    }

    fn reasoning_effort(&mut self, v: &'a RawValue) -> Result<(), Error> {
        let value = value(v, "reasoning_effort")?;
        let effort = match &value {
            Value::String(s) => s.clone(),
            Value::Object(o) => match o.get("effort") {
                Some(Value::String(s)) => s.clone(),
                _ => return Ok(()),
            },
            _ => return Ok(()),
        };
        if effort == "none" {
            self.thinking = None;
            self.output_config = None;
            return Ok(());
        }
        let budget = match effort.as_str() {
            "low" => 1024,
            "medium" => 2048,
            "high" => 4096,
            "xhigh" => 8192,
            "max" => 16384,
            "minimal" => MIN_THINKING_BUDGET,
            _ => {
                return Err(bad_request(format_args!(
                    "Unmapped reasoning effort: '{effort}'. Must be one of: 'minimal', 'low', 'medium', 'high', 'xhigh', 'max', 'none'."
                )));
            }
        };
        if self.caps.adaptive() {
            self.thinking = Some(serde_json::json!({"type": "adaptive", "display": "summarized"}));
            let level = if effort == "minimal" {
                "low"
            } else {
                effort.as_str()
            };
            let mut oc = Map::new();
            oc.insert("effort".into(), Value::String(level.into()));
            self.output_config = Some(oc);
        } else {
            self.thinking = Some(serde_json::json!({"type": "enabled", "budget_tokens": budget}));
        }
        Ok(())
    }

    fn thinking_param(&mut self, v: &'a RawValue) -> Result<(), Error> {
        let thinking = value(v, "thinking")?;
        let kind = thinking
            .get("type")
            .and_then(Value::as_str)
            .map(str::to_owned);
        if kind.as_deref() == Some("adaptive") && !self.caps.adaptive() {
            // Claude Code sends adaptive thinking to every model; older ones
            // get the legacy medium budget, within max_tokens.
            let max = self
                .param("max_completion_tokens")
                .or(self.param("max_tokens"))
                .and_then(|m| serde_json::from_str::<u64>(m.get()).ok());
            let budget = 2048;
            self.thinking = match max {
                Some(max) if max <= MIN_THINKING_BUDGET => None,
                Some(max) if budget >= max => {
                    Some(serde_json::json!({"type": "enabled", "budget_tokens": max - 1}))
                }
                _ => Some(serde_json::json!({"type": "enabled", "budget_tokens": budget})),
            };
            return Ok(());
        }
        if kind.as_deref() == Some("enabled")
            && self.caps.adaptive()
            && !self.caps.legacy_thinking()
        {
            // Models past 4.6 take an effort, not a budget.
            let budget = thinking
                .get("budget_tokens")
                .and_then(Value::as_u64)
                .unwrap_or(0);
            let effort = if budget >= 8192 && self.caps.xhigh() {
                "xhigh"
            } else if budget >= 4096 {
                "high"
            } else if budget >= 2048 {
                "medium"
            } else {
                "low"
            };
            let mut t = Map::new();
            t.insert("type".into(), "adaptive".into());
            if let Some(display) = thinking
                .get("display")
                .filter(|d| matches!(d.as_str(), Some("summarized" | "omitted")))
            {
                t.insert("display".into(), display.clone());
            }
            self.thinking = Some(Value::Object(t));
            let mut oc = self.output_config.take().unwrap_or_default();
            oc.entry("effort")
                .or_insert_with(|| Value::String(effort.into()));
            self.output_config = Some(oc);
            return Ok(());
        }
        if kind.as_deref() == Some("disabled") && self.caps.always_thinking() {
            self.thinking = None;
            return Ok(());
        }
        if thinking.get("display").and_then(Value::as_str) == Some("updates")
            && matches!(kind.as_deref(), Some("adaptive" | "enabled"))
        {
            self.beta(THINKING_DISPLAY_BETA);
        }
        self.thinking = Some(thinking);
        Ok(())
    }

    fn web_search(&mut self, v: &'a RawValue) -> Result<(), Error> {
        let options = value(v, "web_search_options")?;
        let mut tool = Map::new();
        tool.insert("type".into(), "web_search_20250305".into());
        tool.insert("name".into(), "web_search".into());
        if let Some(approx) = options
            .get("user_location")
            .and_then(|l| l.get("approximate"))
            .and_then(Value::as_object)
        {
            let mut loc = Map::new();
            loc.insert("type".into(), "approximate".into());
            for key in ["city", "country", "region", "timezone"] {
                if let Some(v) = approx.get(key) {
                    loc.insert(key.into(), v.clone());
                }
            }
            tool.insert("user_location".into(), Value::Object(loc));
        }
        let max_uses = match options.get("search_context_size").and_then(Value::as_str) {
            Some("low") => Some(1),
            Some("medium") => Some(5),
            Some("high") => Some(10),
            _ => None,
        };
        if let Some(n) = max_uses {
            tool.insert("max_uses".into(), Value::from(n));
        }
        self.tools
            .get_or_insert_with(Vec::new)
            .push(Tool::Value(Value::Object(tool)));
        Ok(())
    }

    fn context_management(&mut self, v: &'a RawValue) -> Result<(), Error> {
        let cm = value(v, "context_management")?;
        let mapped = match cm {
            Value::Object(o) if o.contains_key("edits") => Some(Value::Object(o)),
            Value::Array(entries) => {
                let edits: Vec<Value> = entries
                    .into_iter()
                    .filter_map(|e| {
                        let e = e.as_object()?;
                        if e.get("type").and_then(Value::as_str) != Some("compaction") {
                            return None;
                        }
                        let mut edit = Map::new();
                        edit.insert("type".into(), "compact_20260112".into());
                        if let Some(t) = e.get("compact_threshold").and_then(Value::as_f64) {
                            edit.insert(
                                "trigger".into(),
                                serde_json::json!({"type": "input_tokens", "value": t as i64}),
                            );
                        }
                        for (k, v) in e {
                            if k != "type" && k != "compact_threshold" {
                                edit.insert(k.clone(), v.clone());
                            }
                        }
                        Some(Value::Object(edit))
                    })
                    .collect();
                (!edits.is_empty()).then(|| serde_json::json!({ "edits": edits }))
            }
            _ => None,
        };
        let Some(mapped) = mapped else {
            return Ok(());
        };
        let edits = mapped.get("edits").and_then(Value::as_array);
        for edit in edits.into_iter().flatten() {
            match edit.get("type").and_then(Value::as_str) {
                Some("compact_20260112" | "compaction") => self.beta(COMPACT_BETA),
                _ => self.beta(CONTEXT_MANAGEMENT_BETA),
            }
        }
        self.set("context_management", Out::Value(mapped));
        Ok(())
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

    /// Anthropic takes tool names matching `^[a-zA-Z0-9_-]{1,128}$`: rename
    /// the others (a suffix when two collide), remember how.
    fn sanitize_tool_names(&mut self) {
        let Some(tools) = &mut self.tools else {
            return;
        };
        let names: Vec<String> = tools
            .iter()
            .filter_map(|t| match t {
                Tool::Custom { name, .. } if !name.is_empty() => Some(name.to_string()),
                _ => None,
            })
            .collect();
        let mut used: Vec<String> = names
            .iter()
            .filter(|n| sanitize_name(n) == **n)
            .cloned()
            .collect();
        let mut forward: Vec<(String, String)> = vec![];
        for original in &names {
            let candidate = sanitize_name(original);
            if candidate == *original || forward.iter().any(|(o, _)| o == original) {
                continue;
            }
            let mut unique = candidate.clone();
            let mut n = 1;
            while used.contains(&unique) {
                n += 1;
                let suffix = format!("_{n}");
                let head: String = candidate
                    .chars()
                    .take(TOOL_NAME_MAX - suffix.len())
                    .collect();
                unique = format!("{head}{suffix}");
            }
            used.push(unique.clone());
            forward.push((original.clone(), unique));
        }
        if forward.is_empty() {
            return;
        }
        for t in tools.iter_mut() {
            if let Tool::Custom { name, .. } = t
                && let Some((_, sent)) = forward.iter().find(|(o, _)| *o == **name)
            {
                *name = Cow::Owned(sent.clone());
            }
        }
        if let Some((_, Out::Value(Value::Object(choice)))) =
            self.out.iter_mut().find(|(k, _)| *k == "tool_choice")
            && choice.get("type").and_then(Value::as_str) == Some("tool")
            && let Some(Value::String(name)) = choice.get_mut("name")
            && let Some((_, sent)) = forward.iter().find(|(o, _)| o == name)
        {
            *name = sent.clone();
        }
        self.forward = forward;
    }
}

// ---- messages ----

/// A part's text, when it is a string.
fn part_text<'m>(part: &'m InPart<'_>) -> Option<Txt<'m>> {
    if let Some(bare) = &part.bare {
        return Some(Txt::Str(Cow::Borrowed(bare)));
    }
    part.text.filter(|t| t.get().starts_with('"')).map(Txt::Raw)
}

fn fixed(text: &'static str) -> Txt<'static> {
    Txt::Str(Cow::Borrowed(text))
}

fn text<'a>(text: Txt<'a>, cache_control: Option<Cache<'a>>) -> Block<'a> {
    Block::Text {
        text,
        cache_control,
    }
}

fn placeholder<'a>(cache_control: Option<&'a RawValue>) -> Block<'a> {
    text(fixed(EMPTY_TEXT_PLACEHOLDER), cache_control.map(Cache::Raw))
}

fn raw_cache(raw: Option<&RawValue>) -> Option<Cache<'_>> {
    raw.filter(|c| is_object(c)).map(Cache::Raw)
}

/// Python's `str.isspace()`.
fn is_space(s: &str) -> bool {
    !s.is_empty() && s.chars().all(char::is_whitespace)
}

/// The leading system run's blocks (LiteLLM's `translate_system_message`).
fn system_blocks<'m>(m: &'m Msg<'_>, out: &mut Vec<Block<'m>>) -> Result<(), Error> {
    match &m.content {
        Content::None => {}
        Content::Text(t) if t.is_empty() => {}
        Content::Text(t) => out.push(text(t.clone(), raw_cache(m.cache_control))),
        Content::Parts(parts) => {
            for p in parts {
                if p.kind.as_deref() != Some("text") {
                    return Err(Error::invalid(
                        "a system message may only contain text parts",
                        Some("messages"),
                    ));
                }
                match part_text(p) {
                    Some(t) if !t.is_empty() => out.push(text(t, raw_cache(p.cache_control))),
                    _ => {}
                }
            }
        }
    }
    Ok(())
}

/// A mid-conversation system message's non-empty text parts, each with
/// its `cache_control` in the one shape Anthropic takes.
fn system_text_parts<'m>(m: &'m Msg<'_>) -> Vec<(Txt<'m>, Option<Cache<'static>>)> {
    match &m.content {
        Content::Text(t) if !t.is_empty() => vec![(t.clone(), normalized_cache(m.cache_control))],
        Content::Parts(parts) => parts
            .iter()
            .filter(|p| p.kind.as_deref() == Some("text"))
            .filter_map(|p| {
                part_text(p)
                    .filter(|t| !t.is_empty())
                    .map(|t| (t, normalized_cache(p.cache_control)))
            })
            .collect(),
        _ => vec![],
    }
}

/// A conversation entry once mid-conversation system messages are placed.
enum Turn<'m, 'a> {
    Msg(&'m Msg<'a>),
    /// A system message as a user turn: the operator note, then its text.
    SystemAsUser(&'m Msg<'a>),
    /// System messages kept as one, for models that accept them there.
    System(Vec<&'m Msg<'a>>),
}

impl Turn<'_, '_> {
    fn user_type(&self) -> bool {
        match self {
            Turn::Msg(m) => m.role.user_type(),
            Turn::SystemAsUser(_) => true,
            Turn::System(_) => false,
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    System,
    Tool,
    User,
    Other,
}

fn kind(m: &Msg<'_>) -> Kind {
    match m.role {
        Role::System => Kind::System,
        Role::Tool | Role::Function => Kind::Tool,
        Role::User => Kind::User,
        Role::Assistant => Kind::Other,
    }
}

/// Consecutive messages of one kind, as index ranges.
fn runs_by<T: PartialEq>(
    msgs: &[Msg<'_>],
    key: impl Fn(&Msg<'_>) -> T,
) -> Vec<(T, std::ops::Range<usize>)> {
    let mut runs: Vec<(T, std::ops::Range<usize>)> = vec![];
    for (i, m) in msgs.iter().enumerate() {
        let k = key(m);
        match runs.last_mut() {
            Some((last, range)) if *last == k => range.end = i + 1,
            _ => runs.push((k, i..i + 1)),
        }
    }
    runs
}

/// Models that refuse `system` inside `messages`: every system message
/// becomes a user turn in place (LiteLLM's
/// `_converted_for_unflagged_model`), after the tool results it sits
/// before, so `tool_result` blocks still open their turn.
fn place_system_converted<'m, 'a>(conv: &'m [Msg<'a>]) -> Vec<Turn<'m, 'a>> {
    let runs = runs_by(conv, kind);
    let converted = |range: &std::ops::Range<usize>| {
        conv[range.clone()]
            .iter()
            .filter(|m| !system_text_parts(m).is_empty())
            .map(Turn::SystemAsUser)
            .collect::<Vec<_>>()
    };
    let mut out = Vec::with_capacity(conv.len());
    for (i, (k, range)) in runs.iter().enumerate() {
        let follower = runs.get(i + 1).map(|(k, _)| *k);
        match k {
            Kind::System if follower == Some(Kind::Tool) => {}
            Kind::System => out.extend(converted(range)),
            Kind::Tool if i > 0 && runs[i - 1].0 == Kind::System => {
                out.extend(conv[range.clone()].iter().map(Turn::Msg));
                out.extend(converted(&runs[i - 1].1));
            }
            _ => out.extend(conv[range.clone()].iter().map(Turn::Msg)),
        }
    }
    out
}

/// Models that accept `system` inside `messages` (LiteLLM's
/// `_placed_for_flagged_model`): a system run after a user turn stays after
/// that turn; one after an assistant turn moves behind the user turn that
/// follows; one that ends the conversation or precedes an assistant turn
/// becomes user turns in place. Runs that land on one turn merge.
fn place_system_kept<'m, 'a>(conv: &'m [Msg<'a>]) -> Vec<Turn<'m, 'a>> {
    if !conv.iter().any(|m| m.role == Role::System) {
        return conv.iter().map(Turn::Msg).collect();
    }
    // User-type blocks and assistant blocks, system messages left out.
    let mut block_of = vec![usize::MAX; conv.len()];
    let mut blocks: Vec<(bool, Vec<usize>)> = vec![];
    for (i, m) in conv.iter().enumerate() {
        if m.role == Role::System {
            continue;
        }
        let user = m.role.user_type();
        match blocks.last_mut() {
            Some((u, idx)) if *u == user => idx.push(i),
            _ => blocks.push((user, vec![i])),
        }
        block_of[i] = blocks.len() - 1;
    }
    let system_runs: Vec<std::ops::Range<usize>> = runs_by(conv, |m| m.role == Role::System)
        .into_iter()
        .filter(|(s, _)| *s)
        .map(|(_, r)| r)
        .collect();
    let mut anchored: Vec<(usize, std::ops::Range<usize>)> = vec![];
    let mut converted_after: Vec<(usize, std::ops::Range<usize>)> = vec![];
    for run in system_runs {
        let anchor = run.start.checked_sub(1).and_then(|prev| {
            let neighbour = if conv[prev].role.user_type() {
                prev
            } else {
                run.end
            };
            conv.get(neighbour)
                .filter(|m| m.role.user_type())
                .map(|_| block_of[neighbour])
        });
        match (anchor, run.start.checked_sub(1)) {
            (Some(b), _) => anchored.push((b, run)),
            (None, Some(prev)) => converted_after.push((prev, run)),
            // Not possible after the leading run is split off; keep it
            // rather than lose it.
            (None, None) => converted_after.push((usize::MAX, run)),
        }
    }
    let mut out = Vec::with_capacity(conv.len() + 2);
    for (run_at, run) in &converted_after {
        if *run_at == usize::MAX {
            out.extend(
                conv[run.clone()]
                    .iter()
                    .filter(|m| !system_text_parts(m).is_empty())
                    .map(Turn::SystemAsUser),
            );
        }
    }
    for (b, (user, idx)) in blocks.iter().enumerate() {
        for &i in idx {
            out.push(Turn::Msg(&conv[i]));
            for (_, run) in converted_after.iter().filter(|(at, _)| *at == i) {
                out.extend(
                    conv[run.clone()]
                        .iter()
                        .filter(|m| !system_text_parts(m).is_empty())
                        .map(Turn::SystemAsUser),
                );
            }
        }
        if *user {
            let kept: Vec<&Msg<'a>> = anchored
                .iter()
                .filter(|(a, _)| *a == b)
                .flat_map(|(_, run)| conv[run.clone()].iter())
                .filter(|m| !system_text_parts(m).is_empty())
                .collect();
            if !kept.is_empty() {
                out.push(Turn::System(kept));
            }
        }
    }
    out
}

/// LiteLLM's `anthropic_messages_pt`: user-type turns merged, assistant
/// turns merged, tool calls and results, images, placeholders.
fn convert<'m>(
    turns: &[Turn<'m, '_>],
    forward: &[(String, String)],
) -> Result<Vec<OutMessage<'m>>, Error> {
    let mut out: Vec<OutMessage<'m>> = Vec::with_capacity(turns.len());
    let n = turns.len();
    let mut i = 0;
    while i < n {
        let start = i;
        let mut user: Vec<Block<'m>> = vec![];
        while i < n && turns[i].user_type() {
            match &turns[i] {
                Turn::SystemAsUser(m) => {
                    user.push(text(fixed(CONVERTED_SYSTEM_NOTE), None));
                    for (t, cc) in system_text_parts(m) {
                        user.push(text(t, cc));
                    }
                }
                Turn::Msg(m) if m.role == Role::User => {
                    user_content(m, tool_result_follows(turns, i), &mut user)?;
                }
                Turn::Msg(m) => user.push(tool_result(m)?),
                Turn::System(_) => {}
            }
            i += 1;
        }
        if !user.is_empty() {
            out.push(OutMessage {
                role: "user",
                content: user,
            });
        } else if let Some(m) = turns[start..i].iter().rev().find_map(|t| match t {
            Turn::Msg(m) if m.role == Role::User && m.content.is_empty() => Some(m),
            _ => None,
        }) {
            out.push(OutMessage {
                role: "user",
                content: vec![placeholder(m.cache_control)],
            });
        }

        let mut assistant: Vec<Block<'m>> = vec![];
        let mut ids: Vec<String> = vec![];
        while let Some(Turn::Msg(m)) = turns.get(i)
            && m.role == Role::Assistant
        {
            assistant_content(m, forward, &mut assistant, &mut ids)?;
            i += 1;
        }
        if !assistant.is_empty() {
            out.push(OutMessage {
                role: "assistant",
                content: assistant,
            });
        }

        while let Some(Turn::System(msgs)) = turns.get(i) {
            let content = msgs
                .iter()
                .flat_map(|m| system_text_parts(m))
                .map(|(t, cc)| text(t, cc))
                .collect();
            out.push(OutMessage {
                role: "system",
                content,
            });
            i += 1;
        }
        if i == start {
            // Every turn kind is consumed above; this guards the loop.
            return Err(bad_request("Invalid Message passed in"));
        }
    }
    // Anthropic refuses trailing whitespace in a final assistant turn.
    if let Some(last) = out.last_mut()
        && last.role == "assistant"
    {
        for b in &mut last.content {
            if let Block::Text { text, .. } = b {
                let decoded = text.decode();
                let trimmed = decoded.trim_end();
                if trimmed.len() != decoded.len() {
                    *text = Txt::Str(Cow::Owned(trimmed.to_owned()));
                }
            }
        }
    }
    Ok(out)
}

/// A client tool result comes later in the same user turn, so an empty user
/// message needs no cache breakpoint placeholder.
fn tool_result_follows(turns: &[Turn<'_, '_>], i: usize) -> bool {
    turns[i + 1..]
        .iter()
        .take_while(|t| t.user_type())
        .any(|t| matches!(t, Turn::Msg(m) if matches!(m.role, Role::Tool | Role::Function)))
}

fn user_content<'m>(
    m: &'m Msg<'_>,
    tool_result_follows: bool,
    out: &mut Vec<Block<'m>>,
) -> Result<(), Error> {
    match &m.content {
        Content::Text(t) if t.is_blank() => out.push(placeholder(m.cache_control)),
        Content::Text(t) => out.push(text(t.clone(), raw_cache(m.cache_control))),
        Content::None => {
            if !tool_result_follows && m.cache_control.is_some() {
                out.push(placeholder(m.cache_control));
            }
        }
        Content::Parts(parts) if parts.is_empty() => {
            if !tool_result_follows && m.cache_control.is_some() {
                out.push(placeholder(m.cache_control));
            }
        }
        Content::Parts(parts) => {
            for p in parts {
                let cc = raw_cache(p.cache_control);
                match p.kind.as_deref() {
                    Some("text") => match part_text(p) {
                        Some(t) if !t.is_blank() => out.push(text(t, cc)),
                        _ => out.push(text(fixed(EMPTY_TEXT_PLACEHOLDER), cc)),
                    },
                    Some("image_url") => {
                        let Some(url) = &p.image_url else {
                            return Err(Error::invalid(
                                "an image_url part needs an 'image_url'",
                                Some("messages"),
                            ));
                        };
                        out.push(image(url, cc, false)?);
                    }
                    Some("document") => out.push(document(p, cc)?),
                    Some("file") => out.push(file(p, cc)?),
                    // LiteLLM leaves out parts Anthropic has no place for
                    // (audio, ...).
                    _ => {}
                }
            }
        }
    }
    Ok(())
}

/// An `image_url` part: https by reference, a `data:` URI inline (a PDF as a
/// document; in a tool result, plain text too).
fn image<'m>(
    url: &'m InImageUrl<'_>,
    cache_control: Option<Cache<'m>>,
    tool_result: bool,
) -> Result<Block<'m>, Error> {
    let (url, format): (&str, Option<&str>) = match url {
        InImageUrl::Url(u) => (u, None),
        InImageUrl::Object { url, format } => (url, format.as_deref()),
    };
    if url.starts_with("https://") {
        return Ok(Block::Image {
            source: Source::Url {
                url: Cow::Borrowed(url),
            },
            cache_control,
        });
    }
    if url.starts_with("http://") {
        return Err(Error::invalid(
            "Image URLs must use https: the gateway does not fetch http:// URLs for Anthropic models (send the image over https or as a data: URI)",
            Some("messages"),
        ));
    }
    let (media_type, data) = data_uri(url, format)?;
    let document = media_type == "application/pdf" || (tool_result && media_type == "text/plain");
    let source = Source::Base64 { media_type, data };
    Ok(if document {
        Block::Document {
            source: DocSource::Built(source),
            title: None,
            context: None,
            citations: None,
            cache_control,
        }
    } else {
        Block::Image {
            source,
            cache_control,
        }
    })
}

/// `data:<media type>;base64,<data>`, borrowed from the input.
fn data_uri<'m>(
    url: &'m str,
    format: Option<&'m str>,
) -> Result<(Cow<'m, str>, Cow<'m, str>), Error> {
    let bad = || {
        bad_request(
            "Image url not in expected format. Example Expected input - \"image_url\": \"data:image/jpeg;base64,{base64_image}\". Supported formats - ['image/jpeg', 'image/png', 'image/gif', 'image/webp'].",
        )
    };
    let rest = url.strip_prefix("data:").ok_or_else(bad)?;
    let (media, data) = rest.split_once(";base64,").ok_or_else(bad)?;
    let media = match format {
        Some(f) => Cow::Borrowed(f),
        None if media.contains("\\/") => Cow::Owned(media.replace("\\/", "/")),
        None => Cow::Borrowed(media),
    };
    Ok((media, Cow::Borrowed(data)))
}

/// A `file` part: inline data as a document. URLs and file ids are refused:
/// the gateway fetches nothing, and file ids need Anthropic's Files API.
fn file<'m>(p: &'m InPart<'_>, cache_control: Option<Cache<'m>>) -> Result<Block<'m>, Error> {
    let Some(f) = &p.file else {
        return Err(bad_request(
            "Content block has type='file' but is missing the required 'file' field",
        ));
    };
    match (&f.file_data, &f.file_id) {
        (Some(d), _) if !d.is_empty() => {
            if d.starts_with("http") {
                return Err(Error::invalid(
                    "file_data must be a data: URI: the gateway does not fetch URLs for Anthropic models",
                    Some("messages"),
                ));
            }
            let (media_type, data) = data_uri(d, f.format.as_deref())?;
            Ok(Block::Document {
                source: DocSource::Built(Source::Base64 { media_type, data }),
                title: None,
                context: None,
                citations: None,
                cache_control,
            })
        }
        (_, Some(id)) if !id.is_empty() => Err(Error::invalid(
            "file_id is not supported for Anthropic models by this gateway; send the file inline as file_data",
            Some("messages"),
        )),
        _ => Err(bad_request(
            "Either file_data or file_id must be present in the file message",
        )),
    }
}

/// A `tool` (or legacy `function`) message as a `tool_result` block.
fn tool_result<'m>(m: &'m Msg<'_>) -> Result<Block<'m>, Error> {
    let id = match (&m.tool_call_id, m.role) {
        (Some(id), _) => sanitize_id(id),
        (None, Role::Function) => Cow::Owned(uuid::Uuid::new_v4().to_string()),
        (None, _) => {
            return Err(Error::invalid(
                "a tool message needs a 'tool_call_id'",
                Some("messages"),
            ));
        }
    };
    let content = match &m.content {
        Content::None => ToolResultContent::Text(fixed("")),
        Content::Text(t) => ToolResultContent::Text(t.clone()),
        Content::Parts(parts) => {
            let mut blocks = Vec::with_capacity(parts.len());
            for p in parts {
                let cc = p
                    .cache_control
                    .filter(|c| c.get() != "null")
                    .map(Cache::Raw);
                match p.kind.as_deref() {
                    Some("text") => {
                        let Some(t) = part_text(p) else {
                            return Err(Error::invalid(
                                "a text part needs a string 'text'",
                                Some("messages"),
                            ));
                        };
                        blocks.push(text(t, cc));
                    }
                    Some("image_url") => {
                        let Some(url) = &p.image_url else {
                            return Err(Error::invalid(
                                "an image_url part needs an 'image_url'",
                                Some("messages"),
                            ));
                        };
                        blocks.push(image(url, cc, true)?);
                    }
                    Some("file") => blocks.push(file(p, cc)?),
                    Some("tool_reference") => {
                        if let Some(name) = p.tool_name {
                            blocks.push(Block::ToolReference { tool_name: name });
                        }
                    }
                    _ => {}
                }
            }
            ToolResultContent::Blocks(blocks)
        }
    };
    Ok(Block::ToolResult {
        tool_use_id: id,
        content,
        cache_control: raw_cache(m.cache_control),
    })
}

fn assistant_content<'m>(
    m: &'m Msg<'_>,
    forward: &[(String, String)],
    out: &mut Vec<Block<'m>>,
    ids: &mut Vec<String>,
) -> Result<(), Error> {
    let inline_thinking = matches!(&m.content, Content::Parts(parts)
        if parts.iter().any(|p| matches!(p.kind.as_deref(), Some("thinking" | "redacted_thinking"))));
    if !inline_thinking {
        // Only signed thinking goes back: Anthropic verifies the signature,
        // so a client cannot put words there the model did not write.
        for t in &m.thinking_blocks {
            match (t.kind.as_deref(), &t.signature, &t.data) {
                (Some("thinking"), Some(sig), _) if !sig.is_empty() => out.push(Block::Thinking {
                    thinking: Cow::Borrowed(t.thinking.as_deref().unwrap_or("")),
                    signature: Cow::Borrowed(sig),
                }),
                (Some("redacted_thinking"), _, Some(data)) => {
                    out.push(Block::RedactedThinking {
                        data: Cow::Borrowed(data),
                    });
                }
                _ => {}
            }
        }
    }
    match &m.content {
        Content::Parts(parts) => {
            for p in parts {
                match p.kind.as_deref() {
                    Some("thinking") => {
                        if let Some(sig) = p.signature.as_deref().filter(|s| !s.is_empty()) {
                            out.push(Block::Thinking {
                                thinking: Cow::Borrowed(p.thinking.as_deref().unwrap_or("")),
                                signature: Cow::Borrowed(sig),
                            });
                        }
                    }
                    Some("text") => {
                        let t = part_text(p)
                            .filter(|t| !t.is_blank())
                            .unwrap_or(fixed(EMPTY_TEXT_PLACEHOLDER));
                        out.push(text(t, raw_cache(p.cache_control)));
                    }
                    _ => {}
                }
            }
        }
        Content::Text(t) if t.is_blank() => out.push(placeholder(m.cache_control)),
        Content::Text(t) => out.push(text(t.clone(), raw_cache(m.cache_control))),
        Content::None => {}
    }
    let sent_name = |name: &'m str| -> Cow<'m, str> {
        match forward.iter().find(|(o, _)| o == name) {
            Some((_, s)) => Cow::Owned(s.clone()),
            None => Cow::Borrowed(name),
        }
    };
    for call in &m.tool_calls {
        if call.kind.as_deref().is_some_and(|k| k != "function") {
            continue;
        }
        let Some(id) = &call.id else {
            return Err(Error::invalid(
                "a tool call needs an 'id'",
                Some("messages"),
            ));
        };
        let Some(f) = &call.function else {
            return Err(Error::invalid(
                "a tool call needs a 'function'",
                Some("messages"),
            ));
        };
        let Some(name) = &f.name else {
            return Err(Error::invalid(
                "a tool call needs a function name",
                Some("messages"),
            ));
        };
        let id = sanitize_id(id);
        if ids.iter().any(|i| *i == id) {
            continue;
        }
        ids.push(id.to_string());
        out.push(Block::ToolUse {
            id,
            name: sent_name(name),
            input: arguments(f.arguments.as_deref(), name)?,
            cache_control: raw_cache(call.cache_control),
        });
    }
    if let Some(f) = &m.function_call {
        let name = f.name.as_deref().unwrap_or("");
        out.push(Block::ToolUse {
            id: Cow::Owned(uuid::Uuid::new_v4().to_string()),
            name: sent_name(name),
            input: arguments(f.arguments.as_deref(), name)?,
            cache_control: None,
        });
    }
    Ok(())
}

/// Tool call arguments, parsed: `{}` when empty, a 400 when not JSON.
fn arguments(args: Option<&str>, name: &str) -> Result<Box<RawValue>, Error> {
    let args = args
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .unwrap_or("{}");
    RawValue::from_string(args.to_owned())
        .ok()
        .filter(|_| serde_json::from_str::<serde::de::IgnoredAny>(args).is_ok())
        .ok_or_else(|| {
            bad_request(format_args!(
                "Failed to parse tool call arguments for tool '{name}': the arguments are not valid JSON"
            ))
        })
}

// ---- small mappings ----

fn kind_only(kind: &str) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("type".into(), Value::String(kind.into()));
    m
}

/// `max_tokens`: an integer as sent, a float rounded (half to even, as
/// Python), at least 1.
fn max_tokens(v: &RawValue, name: &str) -> Result<Value, Error> {
    let n: serde_json::Number = serde_json::from_str(v.get())
        .map_err(|_| Error::invalid(format!("'{name}' must be a number"), Some(name)))?;
    if n.is_i64() || n.is_u64() {
        return Ok(Value::Number(n));
    }
    let f = n.as_f64().unwrap_or(1.0);
    let rounded = f.round_ties_even();
    Ok(Value::from((rounded as i64).max(1)))
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

/// A tool name in Anthropic's alphabet, at most 128 characters.
fn sanitize_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .take(TOOL_NAME_MAX)
        .collect()
}

/// A tool use id in Anthropic's alphabet (`^[a-zA-Z0-9_-]+$`).
fn sanitize_id(id: &str) -> Cow<'_, str> {
    if !id.is_empty()
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Cow::Borrowed(id);
    }
    let s: String = id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    Cow::Owned(if s.is_empty() {
        "tool_use_id".to_owned()
    } else {
        s
    })
}

/// A `document` part the client wrote in Anthropic's shape: its known
/// fields, as sent.
fn document<'m>(p: &'m InPart<'_>, cache_control: Option<Cache<'m>>) -> Result<Block<'m>, Error> {
    let Some(source) = p.source else {
        return Err(Error::invalid(
            "a document part needs a 'source'",
            Some("messages"),
        ));
    };
    Ok(Block::Document {
        source: DocSource::Raw(source),
        title: p.title,
        context: p.context,
        citations: p.citations,
        cache_control,
    })
}

/// The keys of a tool's `input_schema` Anthropic takes.
const SCHEMA_KEYS: &[&str] = &[
    "type",
    "properties",
    "additionalProperties",
    "required",
    "$defs",
    "strict",
];

/// LiteLLM's `sanitize_input_schema_for_anthropic`: an object schema with
/// `properties`, only the keys Anthropic takes, legacy `definitions` moved
/// to `$defs` (with their references).
fn input_schema(parameters: Option<Schema<'_>>) -> Result<InputSchema<'_>, Error> {
    let entries = parameters.map(|p| p.0).unwrap_or_default();
    if entries.iter().any(|(k, _)| k == "definitions") {
        // Rare: rebuilt as a value, references rewritten.
        let mut m = Map::new();
        for (k, v) in &entries {
            m.insert(k.to_string(), value(v, "tools")?);
        }
        return Ok(InputSchema::Value(legacy_schema(m)));
    }
    let has_type = entries.iter().any(|(k, _)| k == "type");
    let has_properties = entries.iter().any(|(k, _)| k == "properties");
    let kept: Vec<_> = entries
        .into_iter()
        .filter(|(k, _)| SCHEMA_KEYS.contains(&&**k))
        .collect();
    Ok(InputSchema::Entries(kept, !has_type, !has_properties))
}

fn legacy_schema(mut m: Map<String, Value>) -> Value {
    if m.get("type").and_then(Value::as_str) != Some("object") {
        m.insert("type".into(), "object".into());
    }
    if !m.contains_key("properties") {
        m.insert("properties".into(), Value::Object(Map::new()));
    }
    if let Some(Value::Object(defs)) = m.remove("definitions") {
        let target = m
            .entry("$defs")
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(t) = target {
            for (k, v) in defs {
                t.entry(k).or_insert(v);
            }
        }
        rewrite_refs(&mut m);
    }
    m.retain(|k, _| SCHEMA_KEYS.contains(&k.as_str()));
    Value::Object(m)
}

fn rewrite_refs(m: &mut Map<String, Value>) {
    for (k, v) in m.iter_mut() {
        match v {
            Value::String(s) if k == "$ref" && s.starts_with("#/definitions/") => {
                *s = s.replacen("#/definitions/", "#/$defs/", 1);
            }
            Value::Object(inner) => rewrite_refs(inner),
            Value::Array(items) => {
                for item in items {
                    if let Value::Object(inner) = item {
                        rewrite_refs(inner);
                    }
                }
            }
            _ => {}
        }
    }
}

/// Constraints Anthropic's structured outputs cannot enforce, and how
/// LiteLLM notes them in the description instead.
const CONSTRAINTS: &[(&str, &str)] = &[
    ("minItems", "minimum number of items: "),
    ("maxItems", "maximum number of items: "),
    ("uniqueItems", "all array items must be unique"),
    ("contains", "array must contain an item matching: "),
    ("minContains", "minimum number of matching items: "),
    ("maxContains", "maximum number of matching items: "),
    ("prefixItems", "leading items must match, in order: "),
    ("minimum", "minimum value: "),
    ("maximum", "maximum value: "),
    ("exclusiveMinimum", "exclusive minimum value: "),
    ("exclusiveMaximum", "exclusive maximum value: "),
    ("multipleOf", "must be a multiple of "),
    ("minLength", "minimum length: "),
    ("maxLength", "maximum length: "),
    ("minProperties", "minimum number of properties: "),
    ("maxProperties", "maximum number of properties: "),
    (
        "patternProperties",
        "properties whose names match each pattern must satisfy: ",
    ),
    ("propertyNames", "property names must satisfy: "),
    ("dependentRequired", "dependent required properties: "),
    ("dependentSchemas", "dependent schemas: "),
    (
        "unevaluatedProperties",
        "unevaluated properties must satisfy: ",
    ),
    ("if", "conditional (if): "),
    ("then", "conditional (then): "),
    ("else", "conditional (else): "),
    ("not", "must not match: "),
];

/// LiteLLM's `filter_anthropic_output_schema` (see the parent module for
/// what is left out).
fn filter_output_schema(schema: &Value) -> Value {
    let Value::Object(map) = schema else {
        return schema.clone();
    };
    let enforced_min_items = map
        .get("minItems")
        .and_then(Value::as_u64)
        .is_some_and(|n| n <= 1);
    let unsupported = |k: &str| {
        CONSTRAINTS.iter().any(|(c, _)| *c == k) && !(k == "minItems" && enforced_min_items)
    };
    let mut notes: Vec<String> = vec![];
    for (field, label) in CONSTRAINTS {
        let Some(v) = map.get(*field) else {
            continue;
        };
        if !unsupported(field) || *v == Value::Bool(false) {
            continue;
        }
        // A label with no `{}` (uniqueItems) takes no value.
        let value = if label.ends_with(": ") || label.ends_with("of ") {
            python_str(v)
        } else {
            String::new()
        };
        notes.push(format!("{label}{value}"));
    }
    let mut out = Map::new();
    if !notes.is_empty() {
        let note = format!("Note: {}.", notes.join(", "));
        let description = match map.get("description").and_then(Value::as_str) {
            Some(d) if !d.is_empty() => format!("{d} {note}"),
            _ => note,
        };
        out.insert("description".into(), Value::String(description));
    }
    for (k, v) in map {
        if unsupported(k) || (k == "description" && out.contains_key("description")) {
            continue;
        }
        match (k.as_str(), v) {
            ("properties" | "$defs" | "definitions", Value::Object(inner)) => {
                let filtered = inner
                    .iter()
                    .map(|(n, s)| (n.clone(), filter_output_schema(s)))
                    .collect();
                out.insert(k.clone(), Value::Object(filtered));
            }
            ("items", Value::Object(_)) => {
                out.insert(k.clone(), filter_output_schema(v));
            }
            ("anyOf" | "oneOf", Value::Array(items)) => {
                let entry = out.entry("anyOf").or_insert_with(|| Value::Array(vec![]));
                if let Value::Array(list) = entry {
                    list.extend(items.iter().map(filter_output_schema));
                }
            }
            ("allOf", Value::Array(items)) => {
                out.insert(
                    k.clone(),
                    Value::Array(items.iter().map(filter_output_schema).collect()),
                );
            }
            ("$ref", Value::String(r))
                if r.starts_with("/$defs/") || r.starts_with("/definitions/") =>
            {
                out.insert(k.clone(), Value::String(format!("#{r}")));
            }
            _ => {
                out.insert(k.clone(), v.clone());
            }
        }
    }
    let is_object = match out.get("type") {
        Some(Value::String(t)) => t == "object",
        Some(Value::Array(ts)) => ts.iter().any(|t| t == "object"),
        _ => false,
    };
    if is_object {
        out.insert("additionalProperties".into(), Value::Bool(false));
    }
    Value::Object(out)
}

/// Python's `str()` of a JSON value, as LiteLLM formats a constraint.
fn python_str(v: &Value) -> String {
    match v {
        Value::Null => "None".into(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Array(_) | Value::Object(_) => super::python_json(v),
    }
}

#[cfg(test)]
mod tests;
