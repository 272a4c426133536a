//! An OpenAI chat stream, chunk by chunk, as Anthropic's Messages stream:
//! `message_start` (usage 0), then for each text, reasoning or tool call a
//! `content_block_start`, its deltas (`text_delta`, `thinking_delta`,
//! `input_json_delta`) and a `content_block_stop`, then `message_delta`
//! (stop reason and usage) and `message_stop`; or an `error` event when the
//! stream fails part way.
//!
//! [`Translator`] holds a few flags and the open tool call's id, never the
//! content: memory stays bounded whatever the upstream sends. Blocks follow
//! each other as the upstream's deltas switch between text, reasoning and
//! tool calls. Tool calls are told apart by their `index` (by their `id`
//! when an upstream leaves the index out); a delta for a tool call that
//! was already closed cannot be placed in Anthropic's sequential blocks,
//! so it ends the stream with an error event.
//!
//! The final `message_delta` waits for the end of the stream (`[DONE]`):
//! with `stream_options.include_usage` (which the translated request asks
//! for) the usage comes in a chunk after the one with `finish_reason`.
//!
//! As in JSON answers, only fields the streaming post_call check passes to
//! Aim are shown (it sees whole chunks), read by exact key. An Anthropic
//! upstream read as chat (for a post_call check) also carries
//! `thinking_blocks`: a thinking block's signature becomes its
//! `signature_delta` (Anthropic refuses a later turn whose thinking block
//! lost it), a redacted thinking block a `redacted_thinking` block.

use std::borrow::Cow;

use serde::Deserialize;

use super::error;
use super::response::{Str, Usage, json_str, new_id, stop_reason, tool_id};
use crate::error::Error;

/// Turns OpenAI chunk payloads into Anthropic SSE events.
#[derive(Debug)]
pub struct Translator {
    /// The model name the client asked for.
    model: String,
    started: bool,
    /// `message_stop` or an `error` event was sent: nothing more is.
    finished: bool,
    open: Open,
    /// The index of the next content block.
    next: usize,
    /// The highest tool call index opened so far.
    last_tool: Option<u64>,
    stop: Option<&'static str>,
    refusal: bool,
    usage: Usage,
}

#[derive(Debug, PartialEq, Eq)]
enum Open {
    None,
    Text,
    Thinking,
    /// A `redacted_thinking` block, closed as soon as it is opened.
    Redacted,
    /// A tool call: its index and id as the upstream gave them.
    Tool(Option<u64>, Option<String>),
}

impl Translator {
    /// A stream answering the client's `model`.
    pub fn new(model: &str) -> Self {
        Translator {
            model: model.to_owned(),
            started: false,
            finished: false,
            open: Open::None,
            next: 0,
            last_tool: None,
            stop: None,
            refusal: false,
            usage: Usage::default(),
        }
    }

    /// Whether the stream was ended (by [`Self::done`] or an error).
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// One chunk's JSON (the payload of a `data:` line): its events are
    /// appended to `out`. A chunk that cannot be translated ends the stream
    /// with an error event (in `out`) and is returned as the error.
    pub fn chunk(&mut self, data: &[u8], out: &mut Vec<u8>) -> Result<(), Error> {
        if self.finished {
            return Ok(());
        }
        let chunk: Chunk = match serde_json::from_slice(data) {
            Ok(c) => c,
            Err(e) => {
                tracing::debug!(error = %e, "upstream stream chunk is not a chat completion chunk");
                return Err(self.broken(
                    out,
                    "the upstream sent a stream chunk the gateway cannot translate",
                ));
            }
        };
        self.start(chunk.id.as_ref().map(|s| &*s.0), out);
        if let Some(u) = chunk.usage {
            self.usage = u;
        }
        let choices = chunk.choices.unwrap_or_default();
        // Messages has one answer: the first choice (index 0).
        let Some(choice) = choices.into_iter().find(|c| c.index.unwrap_or(0) == 0) else {
            return Ok(());
        };
        if let Some(d) = choice.delta {
            if let Some(Str(t)) = d.reasoning_content.filter(|t| !t.0.is_empty()) {
                self.open_block(Open::Thinking, out);
                self.delta(out, b"thinking_delta\",\"thinking\":", &t);
            }
            for block in d.thinking_blocks.unwrap_or_default() {
                self.thinking_block(block, out);
            }
            if let Some(Str(t)) = d.content.filter(|t| !t.0.is_empty()) {
                self.open_block(Open::Text, out);
                self.delta(out, b"text_delta\",\"text\":", &t);
            }
            if let Some(Str(t)) = d.refusal.filter(|t| !t.0.is_empty()) {
                self.refusal = true;
                self.open_block(Open::Text, out);
                self.delta(out, b"text_delta\",\"text\":", &t);
            }
            for call in d.tool_calls.unwrap_or_default() {
                self.tool_call(call, out)?;
            }
        }
        if let Some(Str(f)) = choice.finish_reason {
            self.close(out);
            self.stop = Some(stop_reason(&f));
        }
        Ok(())
    }

    /// The upstream stream is complete (`[DONE]`, or its end): close the
    /// open block, send `message_delta` and `message_stop`.
    pub fn done(&mut self, out: &mut Vec<u8>) {
        if self.finished {
            return;
        }
        self.start(None, out);
        self.close(out);
        let mut reason = self.stop.unwrap_or("end_turn");
        if self.refusal && reason != "max_tokens" {
            reason = "refusal";
        }
        event(out, "message_delta");
        out.extend_from_slice(b"{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":");
        json_str(out, reason);
        out.extend_from_slice(b",\"stop_sequence\":null");
        if reason == "refusal" {
            out.extend_from_slice(
                b",\"stop_details\":{\"type\":\"refusal\",\"category\":null,\"explanation\":null}",
            );
        }
        out.extend_from_slice(b"},\"usage\":");
        self.usage.write(out);
        out.extend_from_slice(b"}\n\n");
        event(out, "message_stop");
        out.extend_from_slice(b"{\"type\":\"message_stop\"}\n\n");
        self.finished = true;
    }

    /// The stream fails (the upstream broke off, a guardrail blocked it):
    /// one `error` event ends it.
    pub fn fail(&mut self, err: &Error, out: &mut Vec<u8>) {
        if self.finished {
            return;
        }
        out.extend_from_slice(&error::sse_event(err));
        self.finished = true;
    }

    fn broken(&mut self, out: &mut Vec<u8>, what: &str) -> Error {
        let err = Error::UpstreamUnreachable(what.into());
        self.fail(&err, out);
        err
    }

    fn start(&mut self, id: Option<&str>, out: &mut Vec<u8>) {
        if std::mem::replace(&mut self.started, true) {
            return;
        }
        event(out, "message_start");
        out.extend_from_slice(b"{\"type\":\"message_start\",\"message\":{\"id\":");
        match id {
            Some(id) if !id.is_empty() => json_str(out, id),
            _ => json_str(out, &new_id("msg_")),
        }
        out.extend_from_slice(
            b",\"type\":\"message\",\"role\":\"assistant\",\"content\":[],\"model\":",
        );
        json_str(out, &self.model);
        out.extend_from_slice(
            b",\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":0,\"output_tokens\":0,\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":0}}}\n\n",
        );
    }

    /// Make `kind` the open block (text or thinking), closing another.
    fn open_block(&mut self, kind: Open, out: &mut Vec<u8>) {
        if self.open == kind {
            return;
        }
        self.close(out);
        let block: &[u8] = match kind {
            Open::Thinking => b"{\"type\":\"thinking\",\"thinking\":\"\",\"signature\":\"\"}",
            _ => b"{\"type\":\"text\",\"text\":\"\"}",
        };
        self.block_start(out, block);
        self.open = kind;
    }

    /// What only Anthropic's thinking blocks carry: the signature of the
    /// open thinking block, or a redacted block of its own.
    fn thinking_block(&mut self, block: ThinkingDelta, out: &mut Vec<u8>) {
        match block.kind.as_ref().map(|k| &*k.0) {
            Some("thinking") => {
                if let Some(Str(sig)) = block.signature.filter(|s| !s.0.is_empty()) {
                    self.open_block(Open::Thinking, out);
                    self.delta(out, b"signature_delta\",\"signature\":", &sig);
                }
            }
            Some("redacted_thinking") => {
                if let Some(Str(data)) = block.data {
                    self.close(out);
                    let mut start = Vec::with_capacity(40 + data.len());
                    start.extend_from_slice(b"{\"type\":\"redacted_thinking\",\"data\":");
                    json_str(&mut start, &data);
                    start.push(b'}');
                    self.block_start(out, &start);
                    self.open = Open::Redacted;
                    self.close(out);
                }
            }
            _ => {}
        }
    }

    fn tool_call(&mut self, call: ToolDelta, out: &mut Vec<u8>) -> Result<(), Error> {
        let id = call.id.map(|s| s.0).filter(|s| !s.is_empty());
        let (name, arguments) = match call.function {
            Some(f) => (f.name.map(|s| s.0), f.arguments.map(|s| s.0)),
            None => (None, None),
        };
        let same = match (&self.open, call.index) {
            (Open::Tool(Some(open), _), Some(index)) => *open == index,
            (Open::Tool(_, open_id), None) => id.is_none() || open_id.as_deref() == id.as_deref(),
            _ => false,
        };
        if !same {
            if let Some(index) = call.index {
                if self.last_tool.is_some_and(|last| index <= last) {
                    return Err(self.broken(
                        out,
                        "the upstream sent more of a tool call it had already ended",
                    ));
                }
                self.last_tool = Some(index);
            }
            self.close(out);
            let mut block = Vec::with_capacity(64);
            block.extend_from_slice(b"{\"type\":\"tool_use\",\"id\":");
            match &id {
                Some(id) => json_str(&mut block, &tool_id(id)),
                None => json_str(&mut block, &new_id("toolu_")),
            }
            block.extend_from_slice(b",\"name\":");
            json_str(&mut block, name.as_deref().unwrap_or(""));
            block.extend_from_slice(b",\"input\":{}}");
            self.block_start(out, &block);
            self.open = Open::Tool(call.index, id.map(Cow::into_owned));
        }
        if let Some(args) = arguments.filter(|a| !a.is_empty()) {
            self.delta(out, b"input_json_delta\",\"partial_json\":", &args);
        }
        Ok(())
    }

    fn block_start(&mut self, out: &mut Vec<u8>, block: &[u8]) {
        event(out, "content_block_start");
        out.extend_from_slice(b"{\"type\":\"content_block_start\",\"index\":");
        out.extend_from_slice(itoa::Buffer::new().format(self.next).as_bytes());
        out.extend_from_slice(b",\"content_block\":");
        out.extend_from_slice(block);
        out.extend_from_slice(b"}\n\n");
    }

    /// A delta for the open block: `kind` is the rest of its type and its
    /// field name.
    fn delta(&self, out: &mut Vec<u8>, kind: &[u8], text: &str) {
        event(out, "content_block_delta");
        out.extend_from_slice(b"{\"type\":\"content_block_delta\",\"index\":");
        out.extend_from_slice(itoa::Buffer::new().format(self.next).as_bytes());
        out.extend_from_slice(b",\"delta\":{\"type\":\"");
        out.extend_from_slice(kind);
        json_str(out, text);
        out.extend_from_slice(b"}}\n\n");
    }

    fn close(&mut self, out: &mut Vec<u8>) {
        if std::mem::replace(&mut self.open, Open::None) == Open::None {
            return;
        }
        event(out, "content_block_stop");
        out.extend_from_slice(b"{\"type\":\"content_block_stop\",\"index\":");
        out.extend_from_slice(itoa::Buffer::new().format(self.next).as_bytes());
        out.extend_from_slice(b"}\n\n");
        self.next += 1;
    }
}

fn event(out: &mut Vec<u8>, name: &str) {
    out.extend_from_slice(b"event: ");
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"\ndata: ");
}

#[derive(Deserialize)]
struct Chunk<'a> {
    #[serde(borrow)]
    id: Option<Str<'a>>,
    #[serde(borrow)]
    choices: Option<Vec<ChunkChoice<'a>>>,
    usage: Option<Usage>,
}

#[derive(Deserialize)]
struct ChunkChoice<'a> {
    index: Option<u64>,
    #[serde(borrow)]
    delta: Option<Delta<'a>>,
    #[serde(borrow)]
    finish_reason: Option<Str<'a>>,
}

#[derive(Deserialize)]
struct Delta<'a> {
    #[serde(borrow)]
    content: Option<Str<'a>>,
    #[serde(borrow)]
    reasoning_content: Option<Str<'a>>,
    #[serde(borrow)]
    refusal: Option<Str<'a>>,
    #[serde(borrow)]
    tool_calls: Option<Vec<ToolDelta<'a>>>,
    /// Anthropic's thinking blocks (an Anthropic upstream read as chat).
    #[serde(borrow)]
    thinking_blocks: Option<Vec<ThinkingDelta<'a>>>,
}

#[derive(Deserialize)]
struct ThinkingDelta<'a> {
    #[serde(rename = "type", borrow)]
    kind: Option<Str<'a>>,
    #[serde(borrow)]
    signature: Option<Str<'a>>,
    #[serde(borrow)]
    data: Option<Str<'a>>,
}

#[derive(Deserialize)]
struct ToolDelta<'a> {
    index: Option<u64>,
    #[serde(borrow)]
    id: Option<Str<'a>>,
    #[serde(borrow)]
    function: Option<FnDelta<'a>>,
}

#[derive(Deserialize)]
struct FnDelta<'a> {
    #[serde(borrow)]
    name: Option<Str<'a>>,
    #[serde(borrow)]
    arguments: Option<Str<'a>>,
}

#[cfg(test)]
mod tests;
