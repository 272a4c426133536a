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

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

use crate::error::Error;
use crate::wire::json::{self as message, MAX_DEPTH, Str, folded};

/// LiteLLM's route name, which prefixes its own errors for this route.
pub const ROUTE: &str = "anthropic_messages";

const TOO_DEEP: &str = "the JSON is nested deeper than 64 levels";

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

// ---- the chat body ----

struct ChatWriter<'w> {
    out: &'w mut Vec<u8>,
    first: bool,
    origins: &'w mut Vec<Origin>,
}

impl ChatWriter<'_> {
    /// Start a message object: `{"role":<role>` (the caller closes it).
    fn open(&mut self, role: &str, origin: Origin) {
        if !self.first {
            self.out.push(b',');
        }
        self.first = false;
        self.out.extend_from_slice(b"{\"role\":");
        json_str(self.out, role);
        self.origins.push(origin);
    }

    /// A user turn: its tool results first, one `tool` message each (as
    /// LiteLLM orders them), then one user message with its other blocks;
    /// images from tool results (which a chat tool message cannot carry)
    /// open that user message.
    fn user(&mut self, blocks: &[Block]) {
        let mut hoisted: Vec<&Source> = vec![];
        for b in blocks {
            if let Block::ToolResult {
                tool_use_id,
                content,
            } = b
            {
                self.open("tool", Origin::Blocks);
                self.out.extend_from_slice(b",\"tool_call_id\":");
                json_str(self.out, tool_use_id);
                self.out.extend_from_slice(b",\"content\":");
                tool_content(self.out, content.as_ref(), &mut hoisted);
                self.out.push(b'}');
            }
        }
        let mut parts = Vec::new();
        for s in hoisted {
            image_part(&mut parts, s);
        }
        for b in blocks {
            user_part(&mut parts, b);
        }
        if parts.is_empty() {
            return;
        }
        self.open("user", Origin::Blocks);
        self.out.extend_from_slice(b",\"content\":[");
        self.out.extend_from_slice(&parts);
        self.out.extend_from_slice(b"]}");
    }

    /// An assistant turn: its text blocks joined into `content`, its
    /// tool_use blocks as `tool_calls` (arguments: the input as sent), its
    /// thinking as `reasoning_content` (as LiteLLM does).
    fn assistant(&mut self, blocks: &[Block]) {
        let mut text: Option<String> = None;
        let mut calls = 0;
        let mut thinking: Option<String> = None;
        for b in blocks {
            match b {
                Block::Text { text: t, .. } => text.get_or_insert_with(String::new).push_str(t),
                Block::ToolUse { .. } => calls += 1,
                Block::Thinking(t) if !t.is_empty() => {
                    let all = thinking.get_or_insert_with(String::new);
                    if !all.is_empty() {
                        all.push('\n');
                    }
                    all.push_str(t);
                }
                _ => {}
            }
        }
        if text.is_none() && calls == 0 && thinking.is_none() {
            return;
        }
        self.open("assistant", Origin::Blocks);
        self.out.extend_from_slice(b",\"content\":");
        match &text {
            Some(t) => json_str(self.out, t),
            None => self.out.extend_from_slice(b"null"),
        }
        if calls > 0 {
            self.out.extend_from_slice(b",\"tool_calls\":[");
            let mut first = true;
            for b in blocks {
                let Block::ToolUse {
                    id,
                    name,
                    arguments,
                } = b
                else {
                    continue;
                };
                if !first {
                    self.out.push(b',');
                }
                first = false;
                self.out.extend_from_slice(b"{\"id\":");
                json_str(self.out, id);
                self.out
                    .extend_from_slice(b",\"type\":\"function\",\"function\":{\"name\":");
                json_str(self.out, name);
                self.out.extend_from_slice(b",\"arguments\":");
                json_str(self.out, arguments);
                self.out.extend_from_slice(b"}}");
            }
            self.out.push(b']');
        }
        if let Some(t) = &thinking {
            self.out.extend_from_slice(b",\"reasoning_content\":");
            json_str(self.out, t);
        }
        self.out.push(b'}');
    }
}

/// One user block as chat content parts (tool results are messages of
/// their own; blocks with nothing to translate are left out).
fn user_part(parts: &mut Vec<u8>, b: &Block) {
    match b {
        Block::Text { text, .. } => {
            sep(parts);
            text_part(parts, text);
        }
        Block::Image(s) => image_part(parts, s),
        Block::Document {
            source,
            title,
            context,
        } => document_parts(
            parts,
            source,
            title.as_deref(),
            context.as_deref(),
            &mut None,
        ),
        _ => {}
    }
}

/// A document: its title and context as text, then its content (plain
/// text as text, content blocks as their parts, a file as LiteLLM sends it:
/// an `image_url` with a data or remote URL).
fn document_parts<'s>(
    parts: &mut Vec<u8>,
    source: &'s Source,
    title: Option<&str>,
    context: Option<&str>,
    hoisted: &mut Option<&mut Vec<&'s Source<'s>>>,
) {
    for t in [title, context].into_iter().flatten() {
        sep(parts);
        text_part(parts, t);
    }
    match source {
        Source::Text(t) => {
            sep(parts);
            text_part(parts, t);
        }
        Source::Content(c) => match &**c {
            Content::Text(t) => {
                sep(parts);
                text_part(parts, t);
            }
            Content::Blocks(blocks) => {
                for b in blocks {
                    match b {
                        Block::Text { text, .. } => {
                            sep(parts);
                            text_part(parts, text);
                        }
                        Block::Image(s) => match hoisted {
                            Some(h) => h.push(s),
                            None => image_part(parts, s),
                        },
                        _ => {}
                    }
                }
            }
        },
        other => match hoisted {
            Some(h) => h.push(other),
            None => image_part(parts, other),
        },
    }
}

/// A tool result's content: a string; a list of text parts; `""` when it
/// has no text. Its images go to `hoisted`.
fn tool_content<'s>(
    out: &mut Vec<u8>,
    content: Option<&'s Content>,
    hoisted: &mut Vec<&'s Source<'s>>,
) {
    let blocks = match content {
        None => return out.extend_from_slice(b"\"\""),
        Some(Content::Text(t)) => return json_str(out, t),
        Some(Content::Blocks(blocks)) => blocks,
    };
    let mut parts = Vec::new();
    for b in blocks {
        match b {
            Block::Text { text, .. } => {
                sep(&mut parts);
                text_part(&mut parts, text);
            }
            Block::Image(s) => hoisted.push(s),
            Block::Document {
                source,
                title,
                context,
            } => document_parts(
                &mut parts,
                source,
                title.as_deref(),
                context.as_deref(),
                &mut Some(hoisted),
            ),
            _ => {}
        }
    }
    // One text block is sent as a plain string, as LiteLLM does.
    if let [Block::Text { text, .. }] = blocks.as_slice() {
        return json_str(out, text);
    }
    if parts.is_empty() {
        return out.extend_from_slice(b"\"\"");
    }
    out.push(b'[');
    out.extend_from_slice(&parts);
    out.push(b']');
}

fn sep(parts: &mut Vec<u8>) {
    if !parts.is_empty() {
        parts.push(b',');
    }
}

fn text_part(out: &mut Vec<u8>, text: &str) {
    out.extend_from_slice(b"{\"type\":\"text\",\"text\":");
    json_str(out, text);
    out.push(b'}');
}

/// An image (or a binary document) as an `image_url` part: a data URL for
/// base64, the URL for a URL; other sources (`file`) have no chat form and
/// are left out, as LiteLLM does.
fn image_part(parts: &mut Vec<u8>, s: &Source) {
    if !matches!(s, Source::Base64 { .. } | Source::Url(_)) {
        return;
    }
    sep(parts);
    parts.extend_from_slice(b"{\"type\":\"image_url\",\"image_url\":{\"url\":\"");
    match s {
        Source::Base64 { media_type, data } => {
            parts.extend_from_slice(b"data:");
            escaped(parts, media_type);
            parts.extend_from_slice(b";base64,");
            escaped(parts, data);
        }
        Source::Url(u) => escaped(parts, u),
        _ => {}
    }
    parts.extend_from_slice(b"\"}}");
}

impl Params<'_> {
    fn write_chat(&self, out: &mut Vec<u8>, stream: bool) {
        let raw = |out: &mut Vec<u8>, key: &str, v: Option<&RawValue>| {
            if let Some(v) = v {
                out.push(b',');
                json_str(out, key);
                out.push(b':');
                out.extend_from_slice(v.get().as_bytes());
            }
        };
        raw(out, "max_tokens", self.max_tokens);
        raw(out, "temperature", self.temperature);
        raw(out, "top_p", self.top_p);
        // Not an OpenAI parameter: sent as LiteLLM sends it (in the body,
        // through the OpenAI SDK's extra_body); servers like vLLM honour it.
        raw(out, "top_k", self.top_k);
        raw(out, "stop", self.stop);
        if stream {
            // The final message_delta carries the usage; ask for it.
            out.extend_from_slice(b",\"stream\":true,\"stream_options\":{\"include_usage\":true}");
        }
        if !self.tools.is_empty() {
            out.extend_from_slice(b",\"tools\":[");
            for (i, t) in self.tools.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(b"{\"type\":\"function\",\"function\":{\"name\":");
                json_str(out, &t.name);
                raw(out, "description", t.description);
                raw(out, "parameters", t.parameters);
                if let Some(strict) = t.strict {
                    out.extend_from_slice(if strict {
                        b",\"strict\":true"
                    } else {
                        b",\"strict\":false"
                    });
                }
                out.extend_from_slice(b"}}");
            }
            out.push(b']');
            match &self.tool_choice {
                Some(ToolChoice::Auto) => out.extend_from_slice(b",\"tool_choice\":\"auto\""),
                Some(ToolChoice::Any) => out.extend_from_slice(b",\"tool_choice\":\"required\""),
                Some(ToolChoice::None) => out.extend_from_slice(b",\"tool_choice\":\"none\""),
                Some(ToolChoice::Tool(name)) => {
                    out.extend_from_slice(
                        b",\"tool_choice\":{\"type\":\"function\",\"function\":{\"name\":",
                    );
                    json_str(out, name);
                    out.extend_from_slice(b"}}");
                }
                None => {}
            }
            if self.no_parallel {
                out.extend_from_slice(b",\"parallel_tool_calls\":false");
            }
        }
        if self.web_search {
            out.extend_from_slice(b",\"web_search_options\":{}");
        }
        if let Some(schema) = self.schema {
            out.extend_from_slice(
                b",\"response_format\":{\"type\":\"json_schema\",\"json_schema\":{\"name\":\"structured_output\",\"schema\":",
            );
            out.extend_from_slice(schema.get().as_bytes());
            out.extend_from_slice(b"}}");
        }
        if let Some(effort) = &self.reasoning_effort {
            out.extend_from_slice(b",\"reasoning_effort\":");
            json_str(out, effort);
        }
        if let Some(user) = &self.user {
            out.extend_from_slice(b",\"user\":");
            json_str(out, user);
        }
        raw(out, "guardrails", self.guardrails);
        if let Some(g) = self.metadata_guardrails {
            out.extend_from_slice(b",\"metadata\":{\"guardrails\":");
            out.extend_from_slice(g.get().as_bytes());
            out.push(b'}');
        }
    }
}

fn json_str(out: &mut Vec<u8>, s: &str) {
    // Writing a &str into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
}

/// `s` as the inside of a JSON string (escaped, without the quotes).
fn escaped(out: &mut Vec<u8>, s: &str) {
    let start = out.len();
    json_str(out, s);
    let end = out.len() - 1;
    out.copy_within(start + 1..end, start);
    out.truncate(end - 1);
}

fn push_key(out: &mut Vec<u8>, first: &mut bool, key: &str) {
    if !std::mem::replace(first, false) {
        out.push(b',');
    }
    json_str(out, key);
    out.push(b':');
}

/// Each text of a message's content a model reads.
fn content_texts<'r>(c: &'r Content, f: &mut dyn FnMut(&'r str)) {
    let blocks = match c {
        Content::Text(t) => return f(t),
        Content::Blocks(b) => b,
    };
    for b in blocks {
        match b {
            Block::Text { text, .. } => f(text),
            Block::ToolUse { arguments, .. } => f(arguments),
            Block::ToolResult {
                content: Some(c), ..
            } => content_texts(c, f),
            Block::Thinking(t) => f(t),
            Block::Document {
                source,
                title,
                context,
            } => {
                for t in [title, context].into_iter().flatten() {
                    f(t);
                }
                match source {
                    Source::Text(t) => f(t),
                    Source::Content(c) => content_texts(c, f),
                    _ => {}
                }
            }
            _ => {}
        }
    }
}

// ---- the top-level parameters ----

/// The top-level keys the gateway reads; a key that folds onto one of them
/// but is spelled otherwise is refused.
const TOP_KEYS: &[&str] = &[
    "model",
    "messages",
    "max_tokens",
    "system",
    "stream",
    "temperature",
    "top_p",
    "top_k",
    "stop_sequences",
    "metadata",
    "tools",
    "tool_choice",
    "thinking",
    "output_format",
    "output_config",
    "guardrails",
];

/// An object's fields (already walked by [`message::check`]), two
/// spellings of one key refused.
fn object<'a>(raw: &'a RawValue, path: &str) -> Result<Vec<(Cow<'a, str>, &'a RawValue)>, Error> {
    if !raw.get().starts_with('{') {
        return Err(wrong_type(path, "a valid dictionary"));
    }
    let Fields(fields, repeated) =
        serde_json::from_str(raw.get()).map_err(|e| invalid(format!("{path}: {e}"), path))?;
    if let Some(key) = repeated {
        return Err(invalid(format!("{path}: duplicate key '{key}'"), path));
    }
    Ok(fields)
}

fn field<'a>(fields: &[(Cow<'a, str>, &'a RawValue)], name: &str) -> Option<&'a RawValue> {
    fields
        .iter()
        .find(|(k, _)| &**k == name)
        .map(|(_, v)| *v)
        .filter(|v| v.get() != "null")
}

fn string<'a>(raw: &'a RawValue, path: &str) -> Result<Cow<'a, str>, Error> {
    match serde_json::from_str::<Str>(raw.get()) {
        Ok(Str(s)) => Ok(s),
        Err(_) => Err(wrong_type(path, "a valid string")),
    }
}

fn decode_metadata<'a>(raw: &'a RawValue, p: &mut Params<'a>) -> Result<(), Error> {
    let fields = object(raw, "metadata")?;
    if let Some(raw) = field(&fields, "user_id") {
        p.user = Some(string(raw, "metadata.user_id")?);
        p.user_id_raw = Some(raw);
    }
    p.metadata_guardrails = field(&fields, "guardrails");
    p.metadata_extra = fields.iter().any(|(k, _)| &**k != "user_id");
    Ok(())
}

fn decode_tools<'a>(raw: &'a RawValue, p: &mut Params<'a>) -> Result<(), Error> {
    let list = serde_json::from_str::<Vec<&RawValue>>(raw.get())
        .map_err(|_| wrong_type("tools", "a valid list"))?;
    p.tools.reserve(list.len());
    for (i, raw) in list.into_iter().enumerate() {
        let path = format!("tools.{i}");
        let fields = object(raw, &path)?;
        let name = match field(&fields, "name") {
            Some(n) => Some(string(n, &format!("{path}.name"))?),
            None => None,
        };
        let kind = match field(&fields, "type") {
            Some(t) => Some(string(t, &format!("{path}.type"))?),
            None => None,
        };
        let schema = field(&fields, "input_schema");
        let web_search = match kind.as_deref() {
            Some(k) => k.starts_with("web_search"),
            None => name.as_deref() == Some("web_search") && schema.is_none(),
        };
        if web_search {
            p.web_search = true;
            continue;
        }
        if kind.as_deref().is_some_and(|k| k != "custom") {
            // Anthropic's own tools (bash, text editor, computer use, code
            // execution, ...) have no OpenAI form: not offered there.
            continue;
        }
        let Some(name) = name else {
            return Err(missing(&format!("{path}.name")));
        };
        if let Some(s) = schema
            && !s.get().starts_with('{')
        {
            return Err(wrong_type(
                &format!("{path}.input_schema"),
                "a valid dictionary",
            ));
        }
        let description = field(&fields, "description");
        if let Some(d) = description {
            string(d, &format!("{path}.description"))?;
        }
        let strict = match field(&fields, "strict") {
            Some(s) => Some(
                serde_json::from_str::<bool>(s.get())
                    .map_err(|_| wrong_type(&format!("{path}.strict"), "a valid boolean"))?,
            ),
            None => None,
        };
        p.tools.push(Tool {
            name,
            description,
            parameters: schema,
            strict,
        });
    }
    Ok(())
}

fn decode_tool_choice<'a>(raw: &'a RawValue, p: &mut Params<'a>) -> Result<(), Error> {
    let fields = object(raw, "tool_choice")?;
    let Some(kind) = field(&fields, "type") else {
        return Err(missing("tool_choice.type"));
    };
    p.tool_choice = Some(match &*string(kind, "tool_choice.type")? {
        "auto" => ToolChoice::Auto,
        "any" => ToolChoice::Any,
        "none" => ToolChoice::None,
        "tool" => match field(&fields, "name") {
            Some(n) => ToolChoice::Tool(string(n, "tool_choice.name")?),
            None => return Err(missing("tool_choice.name")),
        },
        _ => {
            return Err(invalid(
                "tool_choice.type: Input should be 'auto', 'any', 'tool' or 'none'",
                "tool_choice.type",
            ));
        }
    });
    if let Some(d) = field(&fields, "disable_parallel_tool_use") {
        p.no_parallel = serde_json::from_str::<bool>(d.get())
            .map_err(|_| wrong_type("tool_choice.disable_parallel_tool_use", "a valid boolean"))?;
    }
    Ok(())
}

/// `thinking` as LiteLLM maps it for a model that is not Claude:
/// `reasoning_effort` by budget (under 1024 minimal, then low, medium from
/// 2048, high from 4096), `none` when disabled, `output_config.effort`
/// (else `medium`) when adaptive.
fn decode_thinking<'a>(
    raw: &'a RawValue,
    config: Option<&'a RawValue>,
) -> Result<Option<Cow<'a, str>>, Error> {
    let fields = object(raw, "thinking")?;
    let Some(kind) = field(&fields, "type") else {
        return Err(missing("thinking.type"));
    };
    Ok(Some(match &*string(kind, "thinking.type")? {
        "disabled" => Cow::Borrowed("none"),
        "enabled" => {
            let Some(budget) = field(&fields, "budget_tokens") else {
                return Err(missing("thinking.budget_tokens"));
            };
            let budget = serde_json::from_str::<u64>(budget.get())
                .map_err(|_| wrong_type("thinking.budget_tokens", "a valid integer"))?;
            Cow::Borrowed(match budget {
                4096.. => "high",
                2048.. => "medium",
                1024.. => "low",
                _ => "minimal",
            })
        }
        "adaptive" => {
            let effort = match config {
                Some(c) => field(&object(c, "output_config")?, "effort")
                    .map(|e| string(e, "output_config.effort"))
                    .transpose()?,
                None => None,
            };
            effort.unwrap_or(Cow::Borrowed("medium"))
        }
        _ => {
            return Err(invalid(
                "thinking.type: Input should be 'enabled', 'disabled' or 'adaptive'",
                "thinking.type",
            ));
        }
    }))
}

/// A JSON schema asked for in `output_format` (or `output_config.format`).
fn output_schema<'a>(
    format: Option<&'a RawValue>,
    config: Option<&'a RawValue>,
) -> Result<Option<&'a RawValue>, Error> {
    let (format, path) = match (format, config) {
        (Some(f), _) => (f, "output_format"),
        (None, Some(c)) => match field(&object(c, "output_config")?, "format") {
            Some(f) => (f, "output_config.format"),
            None => return Ok(None),
        },
        (None, None) => return Ok(None),
    };
    let fields = object(format, path)?;
    let is_schema = match field(&fields, "type") {
        Some(t) => string(t, path)? == "json_schema",
        None => false,
    };
    Ok(field(&fields, "schema").filter(|s| is_schema && s.get().starts_with('{')))
}

// ---- system and messages ----

fn decode_system<'a>(
    raw: &'a RawValue,
    unread: &mut Vec<String>,
) -> Result<Option<System<'a>>, Error> {
    let mut de = serde_json::Deserializer::from_str(raw.get());
    // The body is level 1; `system` is in it.
    let content = ContentSeed { depth: 1 }
        .deserialize(&mut de)
        .map_err(|e| invalid(format!("system: {e}"), "system"))?;
    Ok(match content {
        RawContent::Absent | RawContent::Null => None,
        RawContent::Text(t) => Some(System::Text(t)),
        RawContent::Blocks(blocks) => {
            let mut out = Vec::with_capacity(blocks.len());
            for (j, b) in blocks.into_iter().enumerate() {
                // Only text is allowed there (see `Ctx::allows`).
                if let Block::Text { text, .. } =
                    block(b, Ctx::System, &|| format!("system.{j}"), unread)?
                {
                    out.push(text);
                }
            }
            Some(System::Blocks(out))
        }
        RawContent::Other => {
            return Err(wrong_type(
                "system",
                "a valid string or a list of text blocks",
            ));
        }
    })
}

fn decode_messages<'a>(
    raw: &'a RawValue,
    unread: &mut Vec<String>,
) -> Result<Vec<Message<'a>>, Error> {
    let Ok(list) = serde_json::from_str::<Vec<&RawValue>>(raw.get()) else {
        message::check(raw.get(), 1).map_err(|e| invalid(format!("messages: {e}"), "messages"))?;
        return Err(wrong_type("messages", "a valid list"));
    };
    let mut out = Vec::with_capacity(list.len());
    for (i, raw) in list.into_iter().enumerate() {
        let mut de = serde_json::Deserializer::from_str(raw.get());
        // The body is level 1, `messages` 2; a message is in that list.
        let m = MessageSeed { depth: 2 }
            .deserialize(&mut de)
            .map_err(|e| invalid(format!("messages.{i}: {e}"), &format!("messages.{i}")))?;
        let Some(m) = m else {
            return Err(wrong_type(&format!("messages.{i}"), "a valid dictionary"));
        };
        let role = match m.role {
            Val::Str(r) if r == "user" => Role::User,
            Val::Str(r) if r == "assistant" => Role::Assistant,
            Val::Absent | Val::Null => return Err(missing(&format!("messages.{i}.role"))),
            _ => {
                let path = format!("messages.{i}.role");
                return Err(invalid(
                    format!("{path}: Input should be 'user' or 'assistant'"),
                    &path,
                ));
            }
        };
        let ctx = match role {
            Role::User => Ctx::User,
            Role::Assistant => Ctx::Assistant,
        };
        let content = match m.content {
            RawContent::Absent => return Err(missing(&format!("messages.{i}.content"))),
            RawContent::Text(t) => Content::Text(t),
            RawContent::Blocks(blocks) => {
                let mut list = Vec::with_capacity(blocks.len());
                for (j, b) in blocks.into_iter().enumerate() {
                    list.push(block(
                        b,
                        ctx,
                        &|| format!("messages.{i}.content.{j}"),
                        unread,
                    )?);
                }
                Content::Blocks(list)
            }
            RawContent::Null | RawContent::Other => {
                return Err(wrong_type(
                    &format!("messages.{i}.content"),
                    "a valid string or a list of content blocks",
                ));
            }
        };
        out.push(Message { role, content });
    }
    if out.is_empty() {
        return Err(invalid(
            "messages: List should have at least 1 item",
            "messages",
        ));
    }
    let last = out.len() - 1;
    for (i, m) in out.iter().enumerate() {
        let empty = matches!(&m.content, Content::Blocks(b) if b.is_empty());
        if empty && !(i == last && m.role == Role::Assistant) {
            let path = format!("messages.{i}");
            return Err(invalid(
                format!(
                    "{path}: all messages must have non-empty content except for the optional final assistant message"
                ),
                &path,
            ));
        }
    }
    Ok(out)
}

/// Where a block is, which decides what it may be.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Ctx {
    System,
    User,
    Assistant,
    ToolResult,
    DocumentContent,
}

impl Ctx {
    fn allows(self, kind: &str) -> bool {
        match kind {
            "text" => true,
            "image" => matches!(self, Ctx::User | Ctx::ToolResult | Ctx::DocumentContent),
            "document" => matches!(self, Ctx::User | Ctx::ToolResult),
            "tool_result" => self == Ctx::User,
            "tool_use" | "thinking" | "redacted_thinking" => self == Ctx::Assistant,
            // Unknown types are the upstream's to judge.
            _ => self != Ctx::System,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Ctx::System => "the system prompt",
            Ctx::User => "user messages",
            Ctx::Assistant => "assistant messages",
            Ctx::ToolResult => "tool results",
            Ctx::DocumentContent => "document content",
        }
    }
}

/// Interpret one decoded block at `path` (built only for an error).
fn block<'a>(
    raw: RawBlock<'a>,
    ctx: Ctx,
    path: &dyn Fn() -> String,
    unread: &mut Vec<String>,
) -> Result<Block<'a>, Error> {
    let f = match raw {
        RawBlock::Obj(f) => *f,
        RawBlock::Other => return Err(wrong_type(&path(), "a valid dictionary")),
    };
    let kind = match f.kind {
        Val::Str(k) => k,
        Val::Absent | Val::Null => return Err(missing(&format!("{}.type", path()))),
        _ => return Err(wrong_type(&format!("{}.type", path()), "a valid string")),
    };
    if !ctx.allows(&kind) {
        let p = path();
        return Err(invalid(
            format!("{p}: '{kind}' blocks are not allowed in {}", ctx.name()),
            &p,
        ));
    }
    let req_str = |v: Val<'a>, name: &str| -> Result<Cow<'a, str>, Error> {
        match v {
            Val::Str(s) => Ok(s),
            Val::Absent | Val::Null => Err(missing(&format!("{}.{name}", path()))),
            _ => Err(wrong_type(&format!("{}.{name}", path()), "a valid string")),
        }
    };
    let opt_str = |v: Val<'a>, name: &str| -> Result<Option<Cow<'a, str>>, Error> {
        match v {
            Val::Str(s) => Ok(Some(s)),
            Val::Absent | Val::Null => Ok(None),
            _ => Err(wrong_type(&format!("{}.{name}", path()), "a valid string")),
        }
    };
    Ok(match &*kind {
        "text" => {
            let text = req_str(f.text, "text")?;
            let cited = matches!(f.citations, Val::List(false) | Val::Obj);
            if cited {
                unread.push(format!("{}: a text block with citations", path()));
            }
            Block::Text { text, cited }
        }
        "image" => Block::Image(source(f.source, "image", path, unread)?),
        "document" => Block::Document {
            source: source(f.source, "document", path, unread)?,
            title: opt_str(f.title, "title")?,
            context: opt_str(f.context, "context")?,
        },
        "tool_use" => {
            let id = req_str(f.id, "id")?;
            let name = req_str(f.name, "name")?;
            let arguments = match f.input {
                RawInput::Object(json) => json,
                RawInput::Other => {
                    return Err(wrong_type(
                        &format!("{}.input", path()),
                        "a valid dictionary",
                    ));
                }
                RawInput::Absent => return Err(missing(&format!("{}.input", path()))),
            };
            Block::ToolUse {
                id,
                name,
                arguments,
            }
        }
        "tool_result" => {
            let tool_use_id = req_str(f.tool_use_id, "tool_use_id")?;
            let content = match f.content {
                RawContent::Absent | RawContent::Null => None,
                RawContent::Text(t) => Some(Content::Text(t)),
                RawContent::Blocks(blocks) => {
                    let mut list = Vec::with_capacity(blocks.len());
                    for (k, b) in blocks.into_iter().enumerate() {
                        let inner = || format!("{}.content.{k}", path());
                        list.push(block(b, Ctx::ToolResult, &inner, unread)?);
                    }
                    Some(Content::Blocks(list))
                }
                RawContent::Other => {
                    return Err(wrong_type(
                        &format!("{}.content", path()),
                        "a valid string or a list of content blocks",
                    ));
                }
            };
            if !matches!(f.is_error, Val::Absent | Val::Null | Val::Bool) {
                return Err(wrong_type(
                    &format!("{}.is_error", path()),
                    "a valid boolean",
                ));
            }
            Block::ToolResult {
                tool_use_id,
                content,
            }
        }
        "thinking" => Block::Thinking(req_str(f.thinking, "thinking")?),
        "redacted_thinking" => Block::RedactedThinking,
        _ => {
            unread.push(format!("{}: a block of type '{kind}'", path()));
            Block::Unknown(kind)
        }
    })
}

fn source<'a>(
    raw: RawSource<'a>,
    of: &str,
    path: &dyn Fn() -> String,
    unread: &mut Vec<String>,
) -> Result<Source<'a>, Error> {
    let p = || format!("{}.source", path());
    let f = match raw {
        RawSource::Absent => return Err(missing(&p())),
        RawSource::Other => return Err(wrong_type(&p(), "a valid dictionary")),
        RawSource::Obj(f) => *f,
    };
    let req_str = |v: Val<'a>, name: &str| -> Result<Cow<'a, str>, Error> {
        match v {
            Val::Str(s) => Ok(s),
            Val::Absent | Val::Null => Err(missing(&format!("{}.{name}", p()))),
            _ => Err(wrong_type(&format!("{}.{name}", p()), "a valid string")),
        }
    };
    let kind = req_str(f.kind, "type")?;
    Ok(match (&*kind, of) {
        ("base64", _) => Source::Base64 {
            media_type: req_str(f.media_type, "media_type")?,
            data: req_str(f.data, "data")?,
        },
        ("url", _) => Source::Url(req_str(f.url, "url")?),
        ("text", "document") => Source::Text(req_str(f.data, "data")?),
        ("content", "document") => match f.content {
            RawContent::Text(t) => Source::Content(Box::new(Content::Text(t))),
            RawContent::Blocks(blocks) => {
                let mut list = Vec::with_capacity(blocks.len());
                for (k, b) in blocks.into_iter().enumerate() {
                    let inner = || format!("{}.content.{k}", p());
                    list.push(block(b, Ctx::DocumentContent, &inner, unread)?);
                }
                if list.iter().any(|b| matches!(b, Block::Unknown(_))) {
                    // Only text and images are allowed in document content.
                    return Err(invalid(
                        format!("{}.content: only text and image blocks are allowed", p()),
                        &p(),
                    ));
                }
                Source::Content(Box::new(Content::Blocks(list)))
            }
            RawContent::Absent => return Err(missing(&format!("{}.content", p()))),
            RawContent::Null | RawContent::Other => {
                return Err(wrong_type(
                    &format!("{}.content", p()),
                    "a valid string or a list of content blocks",
                ));
            }
        },
        _ => Source::Other(kind),
    })
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

// ---- the decoder ----

/// The visitor methods for numbers and booleans, which a seed walks
/// without reading: each gives `$v`.
macro_rules! scalars {
    ($v:expr) => {
        fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
            Ok($v)
        }
        fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
            Ok($v)
        }
        fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
            Ok($v)
        }
        fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
            Ok($v)
        }
    };
}

/// A JSON object as an ordered list of (key, raw value), and the first key
/// that came twice in any spelling (refused by the caller: which of two
/// values a parser upstream keeps cannot be known).
struct Fields<'a>(Vec<(Cow<'a, str>, &'a RawValue)>, Option<Cow<'a, str>>);

impl<'de> Deserialize<'de> for Fields<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Fields<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut out: Vec<(Cow<'de, str>, &'de RawValue)> = Vec::with_capacity(16);
                let mut repeated = None;
                while let Some(Str(key)) = map.next_key()? {
                    let value: &'de RawValue = map.next_value()?;
                    let name = folded(&key);
                    if repeated.is_none() && out.iter().any(|(k, _)| folded(k) == name) {
                        repeated = Some(key.clone());
                    }
                    out.push((key, value));
                }
                Ok(Fields(out, repeated))
            }
        }
        d.deserialize_map(V)
    }
}

/// The key of `names` that `key` is, in any spelling a case-insensitive
/// decoder would match; Err when it is that key spelled otherwise, or when
/// it was seen before.
fn slot<E: de::Error>(
    key: &str,
    names: &[&'static str],
    seen: &mut u32,
) -> Result<Option<usize>, E> {
    let name = folded(key);
    let Some(i) = names.iter().position(|n| *n == name) else {
        return Ok(None);
    };
    if key != names[i] {
        return Err(E::custom(miscased(key, names[i])));
    }
    if *seen & (1 << i) != 0 {
        return Err(E::custom(format_args!("duplicate key '{key}'")));
    }
    *seen |= 1 << i;
    Ok(Some(i))
}

/// Visits a value completely: strings and keys decoded (so invalid Unicode
/// is an error), nesting bounded.
#[derive(Clone, Copy)]
struct Walk {
    /// The nesting level of the container the value is in.
    depth: usize,
}

impl Walk {
    fn enter<E: de::Error>(self) -> Result<Walk, E> {
        if self.depth + 1 > MAX_DEPTH {
            return Err(E::custom(TOO_DEEP));
        }
        Ok(Walk {
            depth: self.depth + 1,
        })
    }
}

impl<'de> DeserializeSeed<'de> for Walk {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Walk {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    scalars!(());
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let inner = self.enter()?;
        while seq.next_element_seed(inner)?.is_some() {}
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let inner = self.enter()?;
        while map.next_key::<Str>()?.is_some() {
            map.next_value_seed(inner)?;
        }
        Ok(())
    }
}

/// Any value, walked completely; kept when a string.
#[derive(Debug, Default)]
enum Val<'a> {
    #[default]
    Absent,
    Null,
    Str(Cow<'a, str>),
    Bool,
    Num,
    /// A list; whether it is empty.
    List(bool),
    Obj,
}

#[derive(Clone, Copy)]
struct ValSeed {
    depth: usize,
}

impl<'de> DeserializeSeed<'de> for ValSeed {
    type Value = Val<'de>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Val<'de>, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ValSeed {
    type Value = Val<'de>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<Val<'de>, E> {
        Ok(Val::Bool)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Val<'de>, E> {
        Ok(Val::Num)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Val<'de>, E> {
        Ok(Val::Num)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Val<'de>, E> {
        Ok(Val::Num)
    }
    fn visit_unit<E>(self) -> Result<Val<'de>, E> {
        Ok(Val::Null)
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Val<'de>, E> {
        Ok(Val::Str(Cow::Borrowed(v)))
    }
    fn visit_str<E>(self, v: &str) -> Result<Val<'de>, E> {
        Ok(Val::Str(Cow::Owned(v.to_owned())))
    }
    fn visit_string<E>(self, v: String) -> Result<Val<'de>, E> {
        Ok(Val::Str(Cow::Owned(v)))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Val<'de>, A::Error> {
        let inner = Walk { depth: self.depth }.enter()?;
        let mut empty = true;
        while seq.next_element_seed(inner)?.is_some() {
            empty = false;
        }
        Ok(Val::List(empty))
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Val<'de>, A::Error> {
        Walk { depth: self.depth }.visit_map(map)?;
        Ok(Val::Obj)
    }
}

struct RawMessage<'a> {
    role: Val<'a>,
    content: RawContent<'a>,
}

/// A message, or None when the value is not an object.
struct MessageSeed {
    /// The nesting level of the list the message is in.
    depth: usize,
}

impl<'de> DeserializeSeed<'de> for MessageSeed {
    type Value = Option<RawMessage<'de>>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for MessageSeed {
    type Value = Option<RawMessage<'de>>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a message")
    }
    scalars!(None);
    fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        Walk { depth: self.depth }.visit_seq(seq)?;
        Ok(None)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let depth = Walk { depth: self.depth }.enter()?.depth;
        let mut m = RawMessage {
            role: Val::Absent,
            content: RawContent::Absent,
        };
        let mut seen = 0;
        while let Some(Str(key)) = map.next_key::<Str>()? {
            match slot(&key, &["role", "content"], &mut seen)? {
                Some(0) => m.role = map.next_value_seed(ValSeed { depth })?,
                Some(_) => m.content = map.next_value_seed(ContentSeed { depth })?,
                None => map.next_value_seed(Walk { depth })?,
            }
        }
        Ok(Some(m))
    }
}

/// A content value: a string or a list of blocks.
#[derive(Default)]
enum RawContent<'a> {
    #[default]
    Absent,
    Null,
    Text(Cow<'a, str>),
    Blocks(Vec<RawBlock<'a>>),
    /// Neither (walked).
    Other,
}

struct ContentSeed {
    /// The nesting level of the object the content is in.
    depth: usize,
}

impl<'de> DeserializeSeed<'de> for ContentSeed {
    type Value = RawContent<'de>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ContentSeed {
    type Value = RawContent<'de>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string or a list of content blocks")
    }
    scalars!(RawContent::Other);
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(RawContent::Null)
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(RawContent::Text(Cow::Borrowed(v)))
    }
    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(RawContent::Text(Cow::Owned(v.to_owned())))
    }
    fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
        Ok(RawContent::Text(Cow::Owned(v)))
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        Walk { depth: self.depth }.visit_map(map)?;
        Ok(RawContent::Other)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let depth = Walk { depth: self.depth }.enter()?.depth;
        // Not trusted for the capacity: a hostile hint costs nothing here,
        // but the list grows only with what was really read.
        let mut blocks = Vec::with_capacity(seq.size_hint().unwrap_or(2).min(64));
        while let Some(b) = seq.next_element_seed(BlockSeed { depth })? {
            blocks.push(b);
        }
        Ok(RawContent::Blocks(blocks))
    }
}

enum RawBlock<'a> {
    Obj(Box<BlockFields<'a>>),
    /// Not an object (walked).
    Other,
}

/// The fields of a block a model may read, whatever its type (the type may
/// come last); every other field walked.
#[derive(Default)]
struct BlockFields<'a> {
    kind: Val<'a>,
    text: Val<'a>,
    id: Val<'a>,
    name: Val<'a>,
    input: RawInput,
    content: RawContent<'a>,
    tool_use_id: Val<'a>,
    is_error: Val<'a>,
    thinking: Val<'a>,
    source: RawSource<'a>,
    title: Val<'a>,
    context: Val<'a>,
    citations: Val<'a>,
}

const BLOCK_KEYS: &[&str] = &[
    "type",
    "text",
    "id",
    "name",
    "input",
    "content",
    "tool_use_id",
    "is_error",
    "thinking",
    "source",
    "title",
    "context",
    "citations",
    "signature",
    "data",
    "cache_control",
];

struct BlockSeed {
    /// The nesting level of the list the block is in.
    depth: usize,
}

impl<'de> DeserializeSeed<'de> for BlockSeed {
    type Value = RawBlock<'de>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for BlockSeed {
    type Value = RawBlock<'de>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a content block")
    }
    scalars!(RawBlock::Other);
    fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
        Ok(RawBlock::Other)
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(RawBlock::Other)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        Walk { depth: self.depth }.visit_seq(seq)?;
        Ok(RawBlock::Other)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let depth = Walk { depth: self.depth }.enter()?.depth;
        let mut f = BlockFields::default();
        let mut seen = 0;
        while let Some(Str(key)) = map.next_key::<Str>()? {
            let val = ValSeed { depth };
            match slot(&key, BLOCK_KEYS, &mut seen)? {
                Some(0) => f.kind = map.next_value_seed(val)?,
                Some(1) => f.text = map.next_value_seed(val)?,
                Some(2) => f.id = map.next_value_seed(val)?,
                Some(3) => f.name = map.next_value_seed(val)?,
                Some(4) => f.input = map.next_value_seed(InputSeed { depth })?,
                Some(5) => f.content = map.next_value_seed(ContentSeed { depth })?,
                Some(6) => f.tool_use_id = map.next_value_seed(val)?,
                Some(7) => f.is_error = map.next_value_seed(val)?,
                Some(8) => f.thinking = map.next_value_seed(val)?,
                Some(9) => f.source = map.next_value_seed(SourceSeed { depth })?,
                Some(10) => f.title = map.next_value_seed(val)?,
                Some(11) => f.context = map.next_value_seed(val)?,
                Some(12) => f.citations = map.next_value_seed(val)?,
                _ => map.next_value_seed(Walk { depth })?,
            }
        }
        Ok(RawBlock::Obj(Box::new(f)))
    }
}

#[derive(Default)]
enum RawSource<'a> {
    #[default]
    Absent,
    Obj(Box<SourceFields<'a>>),
    /// Not an object (walked).
    Other,
}

#[derive(Default)]
struct SourceFields<'a> {
    kind: Val<'a>,
    media_type: Val<'a>,
    data: Val<'a>,
    url: Val<'a>,
    content: RawContent<'a>,
}

const SOURCE_KEYS: &[&str] = &["type", "media_type", "data", "url", "content", "file_id"];

struct SourceSeed {
    depth: usize,
}

impl<'de> DeserializeSeed<'de> for SourceSeed {
    type Value = RawSource<'de>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for SourceSeed {
    type Value = RawSource<'de>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a source object")
    }
    scalars!(RawSource::Other);
    fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
        Ok(RawSource::Other)
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(RawSource::Absent)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        Walk { depth: self.depth }.visit_seq(seq)?;
        Ok(RawSource::Other)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let depth = Walk { depth: self.depth }.enter()?.depth;
        let mut f = SourceFields::default();
        let mut seen = 0;
        while let Some(Str(key)) = map.next_key::<Str>()? {
            let val = ValSeed { depth };
            match slot(&key, SOURCE_KEYS, &mut seen)? {
                Some(0) => f.kind = map.next_value_seed(val)?,
                Some(1) => f.media_type = map.next_value_seed(val)?,
                Some(2) => f.data = map.next_value_seed(val)?,
                Some(3) => f.url = map.next_value_seed(val)?,
                Some(4) => f.content = map.next_value_seed(ContentSeed { depth })?,
                _ => map.next_value_seed(Walk { depth })?,
            }
        }
        Ok(RawSource::Obj(Box::new(f)))
    }
}

/// A tool_use `input`.
#[derive(Default)]
enum RawInput {
    #[default]
    Absent,
    /// An object, as [`Block::ToolUse::arguments`] holds it.
    Object(String),
    /// Anything else (walked).
    Other,
}

struct InputSeed {
    /// The nesting level of the block the input is in.
    depth: usize,
}

impl<'de> DeserializeSeed<'de> for InputSeed {
    type Value = RawInput;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<RawInput, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for InputSeed {
    type Value = RawInput;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a tool input object")
    }
    scalars!(RawInput::Other);
    fn visit_str<E>(self, _: &str) -> Result<RawInput, E> {
        Ok(RawInput::Other)
    }
    fn visit_unit<E>(self) -> Result<RawInput, E> {
        Ok(RawInput::Other)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<RawInput, A::Error> {
        Walk { depth: self.depth }.visit_seq(seq)?;
        Ok(RawInput::Other)
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<RawInput, A::Error> {
        let mut out = Vec::with_capacity(64);
        Transcode {
            depth: self.depth,
            out: &mut out,
        }
        .visit_map(map)?;
        // Only strings and ASCII were written.
        String::from_utf8(out)
            .map(RawInput::Object)
            .map_err(de::Error::custom)
    }
}

/// Writes the value it walks as compact JSON, its strings decoded and
/// escaped again only where JSON needs it, in one pass; nesting bounded as
/// [`Walk`] bounds it. A repeated key is written twice: whichever one a
/// parser keeps, both were read.
struct Transcode<'o> {
    /// The nesting level of the container the value is in.
    depth: usize,
    out: &'o mut Vec<u8>,
}

impl<'de> DeserializeSeed<'de> for Transcode<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Transcode<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<(), E> {
        self.out
            .extend_from_slice(if v { b"true" } else { b"false" });
        Ok(())
    }
    fn visit_i64<E>(self, v: i64) -> Result<(), E> {
        self.out
            .extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
        Ok(())
    }
    fn visit_u64<E>(self, v: u64) -> Result<(), E> {
        self.out
            .extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
        Ok(())
    }
    fn visit_f64<E>(self, v: f64) -> Result<(), E> {
        // Writing a number into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *self.out, &v);
        Ok(())
    }
    fn visit_str<E>(self, v: &str) -> Result<(), E> {
        json_str(self.out, v);
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        self.out.extend_from_slice(b"null");
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let depth = Walk { depth: self.depth }.enter()?.depth;
        self.out.push(b'[');
        let mut first = true;
        loop {
            let at = self.out.len();
            if !first {
                self.out.push(b',');
            }
            let seed = Transcode {
                depth,
                out: &mut *self.out,
            };
            if seq.next_element_seed(seed)?.is_none() {
                self.out.truncate(at);
                break;
            }
            first = false;
        }
        self.out.push(b']');
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let depth = Walk { depth: self.depth }.enter()?.depth;
        self.out.push(b'{');
        let mut first = true;
        while let Some(Str(key)) = map.next_key::<Str>()? {
            if !std::mem::replace(&mut first, false) {
                self.out.push(b',');
            }
            json_str(self.out, &key);
            self.out.push(b':');
            map.next_value_seed(Transcode {
                depth,
                out: &mut *self.out,
            })?;
        }
        self.out.push(b'}');
        Ok(())
    }
}

#[cfg(test)]
mod tests;
