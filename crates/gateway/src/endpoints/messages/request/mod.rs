//! A client's Messages request, validated and decoded once from its bytes,
//! and what each kind of deployment receives from that one decoding:
//!
//! - an OpenAI-compatible or Azure deployment: the OpenAI chat body of
//!   [`MessagesRequest::to_chat`], which is also what the guardrails read
//!   (see the module doc of [`super`] for why that covers Anthropic
//!   deployments too);
//! - an Anthropic deployment: the client's bytes, field by field, with the
//!   model swapped and the gateway's own fields taken out
//!   ([`MessagesRequest::anthropic_body`]).
//!
//! Every byte of `system` and `messages` goes through one decoder that keeps
//! what a model reads (borrowed from the input when it has no escapes) and
//! walks the rest, so invalid Unicode, nesting past [`MAX_DEPTH`], a repeated
//! key (in any spelling a case-insensitive decoder would match, see
//! [`folded`]) or a known key in the wrong case refuses the request instead
//! of being read one way here and another way upstream. Every other
//! top-level field is walked the same way ([`message::check`]).
//!
//! Here: the decoded request's types, the entry point and what it answers
//! with. The parts: `decode` (the one-pass decoder and its seeds),
//! `messages` (`system` and `messages` block by block), `params` (the other
//! top-level fields the chat body maps), `chat` (the chat body).

mod chat;
mod decode;
mod messages;
mod params;

use chat::*;
use decode::*;
use messages::*;
use params::*;

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

use crate::error::Error;
use crate::wire::json::{self as message, Str, folded};

/// LiteLLM's route name, which prefixes its own errors for this route.
pub const ROUTE: &str = "anthropic_messages";

/// Fields only the gateway reads; never forwarded.
const GATEWAY_ONLY: &[&str] = &["guardrails"];

/// A validated, decoded `/v1/messages` body.
#[derive(Debug)]
pub struct MessagesRequest<'a> {
    /// Top-level fields as sent, in order.
    fields: Vec<(Cow<'a, str>, &'a RawValue)>,
    /// The model the client asked for (a model group or alias).
    pub model: String,
    pub stream: bool,
    pub system: Option<System<'a>>,
    pub messages: Vec<Message<'a>>,
    params: Params<'a>,
    /// What the model reads that no guardrail can (an unknown block type,
    /// a text block with citations), each with its path; refused whenever a
    /// guardrail is selected.
    unread: Vec<String>,
}

/// `system`.
#[derive(Debug)]
pub enum System<'a> {
    Text(Cow<'a, str>),
    /// The text of each text block (the only kind allowed there).
    Blocks(Vec<Cow<'a, str>>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    User,
    Assistant,
}

#[derive(Debug)]
pub struct Message<'a> {
    pub role: Role,
    pub content: Content<'a>,
}

#[derive(Debug)]
pub enum Content<'a> {
    Text(Cow<'a, str>),
    Blocks(Vec<Block<'a>>),
}

/// One content block, as far as a model reads it.
#[derive(Debug)]
pub enum Block<'a> {
    Text {
        text: Cow<'a, str>,
        /// It carries citations, which no guardrail reads.
        cited: bool,
    },
    Image(Source<'a>),
    Document {
        source: Source<'a>,
        title: Option<Cow<'a, str>>,
        context: Option<Cow<'a, str>>,
    },
    ToolUse {
        id: Cow<'a, str>,
        name: Cow<'a, str>,
        /// The input object as compact JSON text with its strings decoded
        /// (no `\u` escapes but the ones JSON needs), every key as sent (a
        /// repeated one twice: whichever a parser keeps, both are read):
        /// the text a model reads, and the chat tool call's `arguments`.
        arguments: String,
    },
    ToolResult {
        tool_use_id: Cow<'a, str>,
        content: Option<Content<'a>>,
    },
    Thinking(Cow<'a, str>),
    /// Encrypted reasoning from an earlier answer: read by the model, by no
    /// guardrail.
    RedactedThinking,
    /// A type the gateway does not know (server tool results, search
    /// results, newer blocks): not translated, not readable by a guardrail.
    Unknown(Cow<'a, str>),
}

/// Where an image's or a document's content comes from.
#[derive(Debug)]
pub enum Source<'a> {
    Base64 {
        media_type: Cow<'a, str>,
        data: Cow<'a, str>,
    },
    Url(Cow<'a, str>),
    /// A plain-text document.
    Text(Cow<'a, str>),
    /// A document given as content blocks.
    Content(Box<Content<'a>>),
    /// Another kind (`file`, ...): its type.
    Other(Cow<'a, str>),
}

/// The top-level parameters that map to chat ones.
#[derive(Debug, Default)]
struct Params<'a> {
    max_tokens: Option<&'a RawValue>,
    temperature: Option<&'a RawValue>,
    top_p: Option<&'a RawValue>,
    top_k: Option<&'a RawValue>,
    stop: Option<&'a RawValue>,
    tools: Vec<Tool<'a>>,
    web_search: bool,
    tool_choice: Option<ToolChoice<'a>>,
    no_parallel: bool,
    reasoning_effort: Option<Cow<'a, str>>,
    schema: Option<&'a RawValue>,
    user: Option<Cow<'a, str>>,
    guardrails: Option<&'a RawValue>,
    metadata_guardrails: Option<&'a RawValue>,
    /// `metadata` has keys besides `user_id` (the gateway's
    /// `guardrails`): rebuilt for an Anthropic upstream.
    metadata_extra: bool,
    user_id_raw: Option<&'a RawValue>,
}

#[derive(Debug)]
struct Tool<'a> {
    name: Cow<'a, str>,
    description: Option<&'a RawValue>,
    parameters: Option<&'a RawValue>,
    strict: Option<bool>,
}

#[derive(Debug)]
enum ToolChoice<'a> {
    Auto,
    Any,
    None,
    Tool(Cow<'a, str>),
}

/// A text a model reads, and who says it.
#[derive(Debug, PartialEq, Eq)]
pub struct Text<'r> {
    /// `system`, `user` or `assistant`.
    pub role: &'static str,
    pub text: &'r str,
}

/// Where a message of the chat body came from, for rewriting the Messages
/// body after an anonymizing guardrail.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// The `system` string.
    SystemText,
    /// The string `content` of `messages[i]`.
    MessageText(usize),
    /// Anything else: blocks, which the chat message does not map one to one.
    Blocks,
}

/// The chat body for an OpenAI-compatible deployment, and where each of its
/// messages came from.
#[derive(Debug)]
pub struct ChatBody {
    pub bytes: Vec<u8>,
    pub origins: Vec<Origin>,
}

impl<'a> MessagesRequest<'a> {
    /// Validate and decode a body. Errors are 400s worded like Anthropic's
    /// (`messages.0.content.1.text: Input should be a valid string`).
    pub fn parse(body: &'a [u8]) -> Result<Self, Error> {
        let Fields(fields, repeated) = serde_json::from_slice(body).map_err(|e| {
            let message = if e.is_data() {
                "Invalid request body: expected a JSON object".to_owned()
            } else {
                format!("Invalid JSON in request body: {e}")
            };
            Error::invalid(message, None)
        })?;
        if let Some(key) = repeated {
            return Err(invalid(format!("duplicate key '{key}'"), &key));
        }
        for (key, raw) in &fields {
            let name = folded(key);
            if let Some(known) = TOP_KEYS.iter().find(|k| **k == name)
                && &**key != *known
            {
                return Err(invalid(miscased(key, known), key));
            }
            if !matches!(&**key, "messages" | "system") {
                message::check(raw.get(), 1).map_err(|e| invalid(format!("{key}: {e}"), key))?;
            }
        }
        let get = |name: &str| {
            fields
                .iter()
                .find(|(k, _)| &**k == name)
                .map(|(_, v)| *v)
                .filter(|v| v.get() != "null")
        };

        let model = match get("model") {
            None => return Err(missing("model")),
            Some(raw) => match serde_json::from_str::<String>(raw.get()) {
                Ok(m) if !m.is_empty() => m,
                Ok(_) => {
                    return Err(invalid(
                        "model: String should have at least 1 character",
                        "model",
                    ));
                }
                Err(_) => return Err(wrong_type("model", "a valid string")),
            },
        };
        let Some(raw_messages) = get("messages") else {
            return Err(missing("messages"));
        };
        let max_tokens = match get("max_tokens") {
            None => return Err(missing("max_tokens")),
            Some(raw) => match serde_json::from_str::<u64>(raw.get()) {
                Ok(n) if n >= 1 => raw,
                Ok(_) => {
                    return Err(invalid(
                        "max_tokens: Input should be greater than or equal to 1",
                        "max_tokens",
                    ));
                }
                Err(_) => return Err(wrong_type("max_tokens", "a valid integer")),
            },
        };
        let stream = match get("stream") {
            None => false,
            Some(raw) => serde_json::from_str::<bool>(raw.get())
                .map_err(|_| wrong_type("stream", "a valid boolean"))?,
        };

        let mut unread = vec![];
        let system = match get("system") {
            None => None,
            Some(raw) => decode_system(raw, &mut unread)?,
        };
        let messages = decode_messages(raw_messages, &mut unread)?;

        let mut params = Params {
            max_tokens: Some(max_tokens),
            ..Params::default()
        };
        for name in ["temperature", "top_p"] {
            if let Some(raw) = get(name) {
                serde_json::from_str::<f64>(raw.get())
                    .map_err(|_| wrong_type(name, "a valid number"))?;
            }
        }
        params.temperature = get("temperature");
        params.top_p = get("top_p");
        if let Some(raw) = get("top_k") {
            serde_json::from_str::<u64>(raw.get())
                .map_err(|_| wrong_type("top_k", "a valid integer"))?;
            params.top_k = Some(raw);
        }
        if let Some(raw) = get("stop_sequences") {
            let list = serde_json::from_str::<Vec<&RawValue>>(raw.get())
                .map_err(|_| wrong_type("stop_sequences", "a valid list"))?;
            for (i, s) in list.iter().enumerate() {
                if !s.get().starts_with('"') {
                    return Err(wrong_type(&format!("stop_sequences.{i}"), "a valid string"));
                }
            }
            params.stop = (!list.is_empty()).then_some(raw);
        }
        if let Some(raw) = get("metadata") {
            decode_metadata(raw, &mut params)?;
        }
        params.guardrails = get("guardrails");
        if let Some(raw) = get("tools") {
            decode_tools(raw, &mut params)?;
        }
        if let Some(raw) = get("tool_choice") {
            decode_tool_choice(raw, &mut params)?;
        }
        if let Some(raw) = get("thinking") {
            params.reasoning_effort = decode_thinking(raw, get("output_config"))?;
        }
        params.schema = output_schema(get("output_format"), get("output_config"))?;

        Ok(MessagesRequest {
            fields,
            model,
            stream,
            system,
            messages,
            params,
            unread,
        })
    }

    /// The first thing the model reads that no guardrail can, as the 400
    /// that refuses the request when a guardrail is selected.
    pub fn unreadable(&self) -> Option<Error> {
        self.unread.first().map(|what| {
            Error::invalid(
                format!(
                    "{what}; no guardrail can read it, so the request is refused rather than forwarded unchecked"
                ),
                None,
            )
        })
    }

    /// The first content a model reads that carries no text a guardrail can
    /// read (an image, a binary document, redacted thinking): its path and
    /// kind, for `block_uninspectable`.
    pub fn first_opaque(&self) -> Option<(String, &'static str)> {
        fn in_blocks(
            blocks: &[Block],
            path: &dyn Fn(usize) -> String,
        ) -> Option<(String, &'static str)> {
            for (j, b) in blocks.iter().enumerate() {
                let found = match b {
                    Block::Image(_) => Some((path(j), "image")),
                    Block::Document { source, .. } => match source {
                        Source::Content(c) => match &**c {
                            Content::Blocks(inner) => {
                                in_blocks(inner, &|k| format!("{}.source.content.{k}", path(j)))
                            }
                            Content::Text(_) => None,
                        },
                        Source::Text(_) => None,
                        _ => Some((path(j), "document")),
                    },
                    Block::RedactedThinking => Some((path(j), "redacted_thinking")),
                    Block::ToolResult {
                        content: Some(Content::Blocks(inner)),
                        ..
                    } => in_blocks(inner, &|k| format!("{}.content.{k}", path(j))),
                    _ => None,
                };
                if found.is_some() {
                    return found;
                }
            }
            None
        }
        self.messages
            .iter()
            .enumerate()
            .find_map(|(i, m)| match &m.content {
                Content::Blocks(blocks) => {
                    in_blocks(blocks, &|j| format!("messages.{i}.content.{j}"))
                }
                Content::Text(_) => None,
            })
    }

    /// Every text the model reads, in order: the system prompt, then each
    /// message's text blocks, tool_use inputs (strings decoded), tool_result
    /// contents, thinking, and the text of documents. This is the list an
    /// Anthropic deployment's model reads; each of them is also text the
    /// chat inspection reads in [`Self::to_chat`] (tested as a property).
    pub fn texts(&self) -> Vec<Text<'_>> {
        let mut out = vec![];
        match &self.system {
            Some(System::Text(t)) => out.push(Text {
                role: "system",
                text: t,
            }),
            Some(System::Blocks(blocks)) => out.extend(blocks.iter().map(|t| Text {
                role: "system",
                text: t,
            })),
            None => {}
        }
        for m in &self.messages {
            let role = match m.role {
                Role::User => "user",
                Role::Assistant => "assistant",
            };
            content_texts(&m.content, &mut |text| out.push(Text { role, text }));
        }
        out.retain(|t| !t.text.is_empty());
        out
    }

    /// The OpenAI chat body for an OpenAI-compatible or Azure deployment,
    /// with the client's model name (the gateway swaps the upstream one in,
    /// as for chat). It carries every text of [`Self::texts`] where the chat
    /// inspection reads it, and the gateway's own fields (`guardrails`,
    /// `metadata.guardrails`) where the chat parser finds them.
    pub fn to_chat(&self) -> ChatBody {
        let mut out = Vec::with_capacity(
            self.fields
                .iter()
                .map(|(k, v)| k.len() + v.get().len() + 4)
                .sum::<usize>()
                + 256,
        );
        let mut origins = Vec::with_capacity(self.messages.len() + 1);
        out.extend_from_slice(b"{\"model\":");
        json_str(&mut out, &self.model);
        out.extend_from_slice(b",\"messages\":[");
        let mut w = ChatWriter {
            out: &mut out,
            first: true,
            origins: &mut origins,
        };
        match &self.system {
            Some(System::Text(t)) if !t.is_empty() => {
                w.open("system", Origin::SystemText);
                w.out.extend_from_slice(b",\"content\":");
                json_str(w.out, t);
                w.out.push(b'}');
            }
            Some(System::Blocks(blocks)) if !blocks.is_empty() => {
                w.open("system", Origin::Blocks);
                w.out.extend_from_slice(b",\"content\":[");
                for (i, t) in blocks.iter().enumerate() {
                    if i > 0 {
                        w.out.push(b',');
                    }
                    text_part(w.out, t);
                }
                w.out.extend_from_slice(b"]}");
            }
            _ => {}
        }
        for (i, m) in self.messages.iter().enumerate() {
            match (m.role, &m.content) {
                (Role::User, Content::Text(t)) => {
                    w.open("user", Origin::MessageText(i));
                    w.out.extend_from_slice(b",\"content\":");
                    json_str(w.out, t);
                    w.out.push(b'}');
                }
                (Role::Assistant, Content::Text(t)) => {
                    w.open("assistant", Origin::MessageText(i));
                    w.out.extend_from_slice(b",\"content\":");
                    json_str(w.out, t);
                    w.out.push(b'}');
                }
                (Role::User, Content::Blocks(blocks)) => w.user(blocks),
                (Role::Assistant, Content::Blocks(blocks)) => w.assistant(blocks),
            }
        }
        out.push(b']');
        self.params.write_chat(&mut out, self.stream);
        out.push(b'}');
        ChatBody {
            bytes: out,
            origins,
        }
    }

    /// The body for an Anthropic deployment: the client's fields as sent,
    /// in order, `model` replaced, the gateway's `guardrails` removed, and
    /// `metadata` cut down to `user_id` when it carries more.
    pub fn anthropic_body(&self, model: &str) -> Vec<u8> {
        // Cannot fail without rewrites.
        self.anthropic_body_rewritten(model, &[], &[])
            .unwrap_or_default()
    }

    /// [`Self::anthropic_body`] after an anonymizing guardrail rewrote the
    /// chat messages of [`Self::to_chat`] (`rewritten[i]` for chat message
    /// `i`, whose origin is `origins[i]`). Only plain strings map back (the
    /// system string, a message's string content); a rewrite of anything
    /// else is refused (400), never forwarded unredacted.
    pub fn anthropic_body_rewritten(
        &self,
        model: &str,
        origins: &[Origin],
        rewritten: &[Option<String>],
    ) -> Result<Vec<u8>, Error> {
        let mut system = None;
        let mut contents: Vec<(usize, &str)> = vec![];
        for (i, new) in rewritten.iter().enumerate() {
            let Some(new) = new else { continue };
            match origins.get(i) {
                Some(Origin::SystemText) => system = Some(new.as_str()),
                Some(Origin::MessageText(m)) => contents.push((*m, new)),
                _ => {
                    return Err(crate::guardrails::inspect::cannot_rewrite(
                        "anonymize action requested for content blocks, which cannot be rewritten in place",
                        "request",
                    ));
                }
            }
        }
        let size: usize = self
            .fields
            .iter()
            .map(|(k, v)| k.len() + v.get().len() + 4)
            .sum();
        let mut out = Vec::with_capacity(size + 64);
        out.push(b'{');
        let mut first = true;
        for (key, raw) in &self.fields {
            let key: &str = key;
            if GATEWAY_ONLY.contains(&key) {
                continue;
            }
            if key == "metadata" && self.params.metadata_extra {
                let Some(user_id) = self.params.user_id_raw else {
                    continue;
                };
                push_key(&mut out, &mut first, key);
                out.extend_from_slice(b"{\"user_id\":");
                out.extend_from_slice(user_id.get().as_bytes());
                out.push(b'}');
                continue;
            }
            push_key(&mut out, &mut first, key);
            match key {
                "model" => json_str(&mut out, model),
                "system" if system.is_some() => json_str(&mut out, system.unwrap_or_default()),
                "messages" if !contents.is_empty() => {
                    // The list as sent, with the rewritten messages rebuilt.
                    let list: Vec<&RawValue> = serde_json::from_str(raw.get()).unwrap_or_default();
                    out.push(b'[');
                    for (i, m) in list.iter().enumerate() {
                        if i > 0 {
                            out.push(b',');
                        }
                        match contents.iter().find(|(at, _)| *at == i) {
                            Some((_, text)) => {
                                crate::wire::chat::write_with_content(&mut out, m, text)
                            }
                            None => out.extend_from_slice(m.get().as_bytes()),
                        }
                    }
                    out.push(b']');
                }
                _ => out.extend_from_slice(raw.get().as_bytes()),
            }
        }
        out.push(b'}');
        Ok(out)
    }
}

fn invalid(message: impl Into<String>, param: &str) -> Error {
    Error::invalid(message, Some(param))
}

fn missing(field: &str) -> Error {
    // LiteLLM's wording for a missing top-level field; Anthropic's for the rest.
    if !field.contains('.') {
        return invalid(
            format!("{ROUTE}: Missing required parameter: '{field}'."),
            field,
        );
    }
    invalid(format!("{field}: Field required"), field)
}

fn wrong_type(field: &str, expected: &str) -> Error {
    invalid(format!("{field}: Input should be {expected}"), field)
}

fn miscased(key: &str, known: &str) -> String {
    format!("unknown key '{key}' (keys are case-sensitive: '{known}')")
}

#[cfg(test)]
mod tests;
