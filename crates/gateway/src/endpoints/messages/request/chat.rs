//! The OpenAI chat body an OpenAI-compatible or Azure deployment receives
//! ([`MessagesRequest::to_chat`]): the messages (text, images, documents,
//! tool calls and results) and the mapped parameters, written in one pass.

use super::*;

pub(super) struct ChatWriter<'w> {
    pub(super) out: &'w mut Vec<u8>,
    pub(super) first: bool,
    pub(super) origins: &'w mut Vec<Origin>,
}

impl ChatWriter<'_> {
    /// Start a message object: `{"role":<role>` (the caller closes it).
    pub(super) fn open(&mut self, role: &str, origin: Origin) {
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
    pub(super) fn user(&mut self, blocks: &[Block]) {
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
    pub(super) fn assistant(&mut self, blocks: &[Block]) {
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

pub(super) fn text_part(out: &mut Vec<u8>, text: &str) {
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
    pub(super) fn write_chat(&self, out: &mut Vec<u8>, stream: bool) {
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

pub(super) fn json_str(out: &mut Vec<u8>, s: &str) {
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

pub(super) fn push_key(out: &mut Vec<u8>, first: &mut bool, key: &str) {
    if !std::mem::replace(first, false) {
        out.push(b',');
    }
    json_str(out, key);
    out.push(b':');
}

/// Each text of a message's content a model reads.
pub(super) fn content_texts<'r>(c: &'r Content, f: &mut dyn FnMut(&'r str)) {
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
