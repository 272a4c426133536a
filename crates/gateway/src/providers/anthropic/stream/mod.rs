//! Anthropic's Messages stream → OpenAI `chat.completion.chunk` frames
//! (spec section 1.5; W `llms/anthropic/chat/handler.py`
//! `ModelResponseIterator.chunk_parser`).
//!
//! [`Translator`] is a state machine fed the `data:` payload of each SSE
//! event (the project's SSE parser yields them) that appends finished SSE
//! frames to a buffer: the same bytes an OpenAI upstream would have sent, so
//! everything after it (metering, the guardrail relay) is unchanged.
//!
//! | Anthropic event | Frames |
//! |---|---|
//! | `message_start` | none; its usage is kept |
//! | `content_block_start` text | its text, if any |
//! | `content_block_start` tool_use | the call's id and name, `arguments: ""`, `index` k (counting tools from 0) |
//! | `content_block_delta` text | `delta.content` |
//! | `content_block_delta` input_json | `arguments` of call k |
//! | `content_block_delta` thinking, signature | `reasoning_content`, `thinking_blocks` |
//! | `content_block_stop` | `arguments: "{}"` for a call that got none |
//! | `message_delta` | `finish_reason`; usage merged |
//! | `message_stop` | the usage chunk (with `include_usage`), `[DONE]` |
//! | `ping`, unknown types | none |
//! | `error` | an error, status 500 (see [`super::error`]) |
//!
//! Every chunk has one id and the model name the client asked for; the first
//! carries `role: "assistant"`. Memory is bounded: the machine keeps a few
//! counters and the usage, never the text, whatever the upstream sends.

use std::borrow::Cow;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::ResponseContext;
use super::request::JSON_TOOL_NAME;
use super::response::{Usage, finish_reason, new_id, now, write_json};
use crate::error::{Error, Secrets};
use crate::sse;

/// The content block being streamed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Block {
    Text,
    /// A tool call; `args`: some arguments were streamed.
    Tool {
        args: bool,
    },
    /// The forced `json_tool_call`: its arguments are the content.
    JsonTool {
        args: bool,
    },
    Thinking,
    Other,
}

/// The state of one translated stream.
pub struct Translator {
    id: String,
    model: String,
    created: u64,
    context: ResponseContext,
    secrets: Arc<Secrets>,
    role_sent: bool,
    /// The OpenAI index of the current tool call: tool blocks count from 0.
    tool_index: i64,
    thinking_index: i64,
    block: Option<Block>,
    usage: Usage,
    thinking: bool,
    json_converted: bool,
    finish: Option<&'static str>,
    done: bool,
    /// The start of every frame, serialised once.
    head: Vec<u8>,
    /// Chunks carry the upstream message's id ([`Translator::keep_upstream_id`]).
    keep_id: bool,
}

#[derive(Deserialize)]
struct Event<'a> {
    #[serde(rename = "type", borrow, default)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    content_block: Option<Part<'a>>,
    #[serde(borrow, default)]
    delta: Option<Part<'a>>,
    #[serde(default)]
    usage: Option<Usage>,
    #[serde(default)]
    message: Option<StartMessage>,
}

/// Just the type, to tell a malformed known event from a new kind.
#[derive(Deserialize)]
struct Head<'a> {
    #[serde(rename = "type", borrow, default)]
    kind: Option<Cow<'a, str>>,
}

const KNOWN_EVENTS: &[&str] = &[
    "message_start",
    "content_block_start",
    "content_block_delta",
    "content_block_stop",
    "message_delta",
    "message_stop",
    "ping",
];

#[derive(Deserialize)]
struct Part<'a> {
    #[serde(rename = "type", borrow, default)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    text: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    name: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    partial_json: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    thinking: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    signature: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    data: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    citation: Option<&'a RawValue>,
    #[serde(borrow, default)]
    stop_reason: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct StartMessage {
    #[serde(default)]
    usage: Option<Usage>,
    #[serde(default)]
    id: Option<String>,
}

#[derive(Serialize, Default)]
struct Delta<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    content: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reasoning_content: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    thinking_blocks: Option<[Thinking<'a>; 1]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_calls: Option<[ToolCall<'a>; 1]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    provider_specific_fields: Option<ProviderFields<'a>>,
}

#[derive(Serialize, Clone, Copy)]
struct Thinking<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    thinking: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    signature: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<&'a str>,
    index: i64,
}

#[derive(Serialize)]
struct ProviderFields<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    thinking_blocks: Option<[Thinking<'a>; 1]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    citation: Option<&'a RawValue>,
}

#[derive(Serialize)]
struct ToolCall<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
    function: Function<'a>,
    #[serde(rename = "type")]
    kind: &'static str,
    index: i64,
}

#[derive(Serialize)]
struct Function<'a> {
    arguments: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
}

impl Translator {
    /// A stream for a client that asked for `model`; `context` from the
    /// request's translation; `secrets` masked out of an `error` event.
    pub fn new(model: &str, context: ResponseContext, secrets: Arc<Secrets>) -> Translator {
        Translator {
            id: new_id(),
            model: model.to_owned(),
            created: now(),
            context,
            secrets,
            role_sent: false,
            tool_index: -1,
            thinking_index: -1,
            block: None,
            usage: Usage::default(),
            thinking: false,
            json_converted: false,
            finish: None,
            done: false,
            head: Vec::new(),
            keep_id: false,
        }
    }

    /// Chunks carry the id of the upstream's message (`msg_…`) rather than a
    /// new `chatcmpl-` one: for `/v1/messages`, whose client gets that id
    /// back whichever way the stream went.
    pub fn keep_upstream_id(mut self) -> Translator {
        self.keep_id = true;
        self
    }

    /// The usage reported so far: OpenAI's prompt and completion tokens.
    pub fn usage(&self) -> (u64, u64) {
        (self.usage.prompt_tokens(), self.usage.completion_tokens())
    }

    /// `[DONE]` was written.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// One event's `data:` payload; frames to send are appended to `out`.
    /// An `error` event, or an event that is not JSON, is an `Err`: the
    /// stream is over.
    pub fn push(&mut self, data: &[u8], out: &mut Vec<u8>) -> Result<(), Error> {
        if self.done {
            return Ok(());
        }
        // One UTF-8 check for the event, none per string in it.
        let Ok(text) = std::str::from_utf8(data) else {
            return Err(self.broken());
        };
        let event: Event<'_> = match serde_json::from_str(text) {
            Ok(e) => e,
            Err(_) => {
                let head: Head<'_> = serde_json::from_str(text).map_err(|_| self.broken())?;
                return match head.kind.as_deref() {
                    Some("error") => {
                        self.done = true;
                        Err(super::error::from_stream_event(data, &self.secrets))
                    }
                    Some(k) if KNOWN_EVENTS.contains(&k) => Err(self.broken()),
                    // A kind of event Anthropic added, in a shape of its own.
                    _ => Ok(()),
                };
            }
        };
        match event.kind.as_deref() {
            Some("message_start") => {
                if let Some(m) = &event.message {
                    if let Some(u) = &m.usage {
                        self.usage.merge(u);
                    }
                    // Before any frame is written, so every chunk has it.
                    if self.keep_id
                        && self.head.is_empty()
                        && let Some(id) = m.id.as_ref().filter(|id| !id.is_empty())
                    {
                        self.id.clone_from(id);
                    }
                }
            }
            Some("content_block_start") => {
                if let Some(part) = &event.content_block {
                    self.block_start(part, out)?;
                }
            }
            Some("content_block_delta") => {
                if let Some(part) = &event.delta {
                    self.block_delta(part, out)?;
                }
            }
            Some("content_block_stop") => match self.block.take() {
                Some(Block::Tool { args: false }) => {
                    let index = self.tool_index;
                    self.emit_tool(None, None, "{}", index, out)?;
                }
                Some(Block::JsonTool { args: false }) => self.emit_text("{}", out)?,
                _ => {}
            },
            Some("message_delta") => {
                if let Some(u) = &event.usage {
                    self.usage.merge(u);
                }
                let stop = event.delta.as_ref().and_then(|d| d.stop_reason.as_deref());
                let mut reason = finish_reason(stop);
                if reason == "tool_calls" && self.json_converted && self.tool_index < 0 {
                    reason = "stop";
                }
                self.finish = Some(reason);
                self.emit(Delta::default(), Some(reason), out)?;
            }
            Some("message_stop") => self.end(out)?,
            Some("error") => {
                self.done = true;
                return Err(super::error::from_stream_event(data, &self.secrets));
            }
            // ping, and event types Anthropic may add.
            _ => {}
        }
        Ok(())
    }

    /// The upstream body ended. Past `message_delta` the answer is whole
    /// (`message_stop` may be missing); before it the stream was cut.
    pub fn finish(&mut self, out: &mut Vec<u8>) -> Result<(), Error> {
        if self.done {
            return Ok(());
        }
        if self.finish.is_some() {
            return self.end(out);
        }
        self.done = true;
        Err(Error::UpstreamUnreachable(format!(
            "the upstream for model '{}' ended its stream before the answer was complete",
            self.model
        )))
    }

    fn broken(&self) -> Error {
        Error::UpstreamUnreachable(format!(
            "the upstream for model '{}' sent a stream event that is not valid JSON",
            self.model
        ))
    }

    fn block_start(&mut self, part: &Part<'_>, out: &mut Vec<u8>) -> Result<(), Error> {
        match part.kind.as_deref() {
            Some("text") => {
                self.block = Some(Block::Text);
                if let Some(t) = part.text.as_deref().filter(|t| !t.is_empty()) {
                    self.emit_text(t, out)?;
                }
            }
            Some("tool_use" | "server_tool_use") => {
                let name = part.name.as_deref().unwrap_or("");
                if self.context.json_tool && name == JSON_TOOL_NAME {
                    self.json_converted = true;
                    self.block = Some(Block::JsonTool { args: false });
                    return Ok(());
                }
                self.tool_index += 1;
                self.block = Some(Block::Tool { args: false });
                let name = self.context.original_name(name).to_owned();
                let id = part.id.as_deref().unwrap_or("");
                let index = self.tool_index;
                self.emit_tool(Some(id), Some(&name), "", index, out)?;
            }
            Some("thinking") => {
                self.thinking_index += 1;
                self.thinking = true;
                self.block = Some(Block::Thinking);
            }
            Some("redacted_thinking") => {
                self.thinking_index += 1;
                self.thinking = true;
                self.block = Some(Block::Thinking);
                let block = Thinking {
                    kind: "redacted_thinking",
                    thinking: None,
                    signature: None,
                    data: Some(part.data.as_deref().unwrap_or("")),
                    index: self.thinking_index,
                };
                self.emit_thinking(None, block, out)?;
            }
            _ => self.block = Some(Block::Other),
        }
        Ok(())
    }

    fn block_delta(&mut self, part: &Part<'_>, out: &mut Vec<u8>) -> Result<(), Error> {
        match part.kind.as_deref() {
            Some("text_delta") => {
                if let Some(t) = part.text.as_deref().filter(|t| !t.is_empty()) {
                    self.emit_text(t, out)?;
                }
            }
            Some("input_json_delta") => {
                let partial = part.partial_json.as_deref().unwrap_or("");
                match &mut self.block {
                    Some(Block::Tool { args }) => {
                        *args |= !partial.is_empty();
                        let index = self.tool_index;
                        self.emit_tool(None, None, partial, index, out)?;
                    }
                    Some(Block::JsonTool { args }) => {
                        *args |= !partial.is_empty();
                        if !partial.is_empty() {
                            self.emit_text(partial, out)?;
                        }
                    }
                    // Input for a block that is not a tool call (a server
                    // tool's result): not an OpenAI tool call.
                    _ => {}
                }
            }
            Some("thinking_delta") => {
                if let Some(t) = part.thinking.as_deref().filter(|t| !t.is_empty()) {
                    let block = Thinking {
                        kind: "thinking",
                        thinking: Some(t),
                        signature: None,
                        data: None,
                        index: self.thinking_index.max(0),
                    };
                    self.emit_thinking(Some(t), block, out)?;
                }
            }
            Some("signature_delta") => {
                if let Some(s) = part.signature.as_deref().filter(|s| !s.is_empty()) {
                    let block = Thinking {
                        kind: "thinking",
                        thinking: Some(""),
                        signature: Some(s),
                        data: None,
                        index: self.thinking_index.max(0),
                    };
                    self.emit_thinking(Some(""), block, out)?;
                }
            }
            Some("citations_delta") => {
                if let Some(c) = part.citation {
                    let delta = Delta {
                        provider_specific_fields: Some(ProviderFields {
                            thinking_blocks: None,
                            citation: Some(c),
                        }),
                        ..Delta::default()
                    };
                    self.emit(delta, None, out)?;
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn emit_text(&mut self, text: &str, out: &mut Vec<u8>) -> Result<(), Error> {
        let delta = Delta {
            content: Some(text),
            ..Delta::default()
        };
        self.emit(delta, None, out)
    }

    fn emit_tool(
        &mut self,
        id: Option<&str>,
        name: Option<&str>,
        arguments: &str,
        index: i64,
        out: &mut Vec<u8>,
    ) -> Result<(), Error> {
        let delta = Delta {
            tool_calls: Some([ToolCall {
                id,
                function: Function { arguments, name },
                kind: "function",
                index,
            }]),
            ..Delta::default()
        };
        self.emit(delta, None, out)
    }

    fn emit_thinking(
        &mut self,
        reasoning: Option<&str>,
        block: Thinking<'_>,
        out: &mut Vec<u8>,
    ) -> Result<(), Error> {
        let delta = Delta {
            reasoning_content: reasoning,
            thinking_blocks: Some([block]),
            provider_specific_fields: Some(ProviderFields {
                thinking_blocks: Some([block]),
                citation: None,
            }),
            ..Delta::default()
        };
        self.emit(delta, None, out)
    }

    /// One chunk; the first one says who speaks.
    fn emit(
        &mut self,
        mut delta: Delta<'_>,
        finish: Option<&'static str>,
        out: &mut Vec<u8>,
    ) -> Result<(), Error> {
        if !self.role_sent {
            self.role_sent = true;
            delta.role = Some("assistant");
        }
        self.write_head(out)?;
        write_json(out, &delta)?;
        match finish {
            None => out.extend_from_slice(b",\"finish_reason\":null}]}\n\n"),
            // Our own reasons: plain ASCII words, nothing to escape.
            Some(reason) => {
                out.extend_from_slice(b",\"finish_reason\":\"");
                out.extend_from_slice(reason.as_bytes());
                out.extend_from_slice(b"\"}]}\n\n");
            }
        }
        Ok(())
    }

    /// `data: {"id":…,"object":…,"created":…,"model":…,"choices":[{"index":0,"delta":`
    /// — the same in every chunk, so serialised once.
    fn write_head(&mut self, out: &mut Vec<u8>) -> Result<(), Error> {
        if self.head.is_empty() {
            #[derive(Serialize)]
            struct Head<'a> {
                id: &'a str,
                object: &'static str,
                created: u64,
                model: &'a str,
            }
            let mut head = b"data: ".to_vec();
            write_json(
                &mut head,
                &Head {
                    id: &self.id,
                    object: "chat.completion.chunk",
                    created: self.created,
                    model: &self.model,
                },
            )?;
            head.pop();
            head.extend_from_slice(b",\"choices\":[{\"index\":0,\"delta\":");
            self.head = head;
        }
        out.extend_from_slice(&self.head);
        Ok(())
    }

    /// The usage chunk when asked for, then `[DONE]`. A stream that never
    /// said why it stopped still gets a `finish_reason`.
    fn end(&mut self, out: &mut Vec<u8>) -> Result<(), Error> {
        if self.finish.is_none() {
            self.finish = Some("stop");
            self.emit(Delta::default(), Some("stop"), out)?;
        }
        self.done = true;
        if self.context.include_usage {
            // LiteLLM keeps one empty choice in the usage chunk (P2).
            self.write_head(out)?;
            out.extend_from_slice(b"{}}],\"usage\":");
            write_json(out, &self.usage.openai(self.thinking))?;
            out.extend_from_slice(b"}\n\n");
        }
        out.extend_from_slice(sse::DONE_FRAME);
        Ok(())
    }
}

/// An Anthropic SSE body → an OpenAI SSE body, frame by frame. `on_end`
/// sees the translator once, when the stream ends, whole or not, or is
/// dropped (a client that went away): the usage so far is there to record.
pub fn translate<S>(
    body: S,
    translator: Translator,
    on_end: impl FnOnce(&Translator) + Send + 'static,
) -> impl Stream<Item = Result<Bytes, Error>> + Send
where
    S: Stream<Item = Result<Bytes, Error>> + Send + Unpin + 'static,
{
    struct State<S, F: FnOnce(&Translator)> {
        body: S,
        parser: sse::Parser,
        t: Translator,
        on_end: Option<F>,
        /// An error to yield after the frames that came before it.
        failed: Option<Error>,
        over: bool,
    }
    impl<S, F: FnOnce(&Translator)> State<S, F> {
        fn close(&mut self) {
            if let Some(f) = self.on_end.take() {
                f(&self.t);
            }
            self.over = true;
        }
    }
    impl<S, F: FnOnce(&Translator)> Drop for State<S, F> {
        fn drop(&mut self) {
            if let Some(f) = self.on_end.take() {
                f(&self.t);
            }
        }
    }
    let state = State {
        body,
        parser: sse::Parser::default(),
        t: translator,
        on_end: Some(on_end),
        failed: None,
        over: false,
    };
    futures_util::stream::unfold(state, |mut st| async move {
        loop {
            if let Some(e) = st.failed.take() {
                return Some((Err(e), st));
            }
            if st.over {
                return None;
            }
            let mut out = Vec::with_capacity(1024);
            let mut events = vec![];
            let result = match st.body.next().await {
                None => {
                    st.parser.finish(&mut events);
                    let r = feed(&mut st.t, &events, &mut out).and_then(|()| st.t.finish(&mut out));
                    st.close();
                    r
                }
                Some(Err(e)) => {
                    st.close();
                    Err(e)
                }
                Some(Ok(chunk)) => match st.parser.push(&chunk, &mut events) {
                    Err(e) => {
                        st.close();
                        Err(Error::UpstreamUnreachable(e.to_string()))
                    }
                    Ok(()) => {
                        let r = feed(&mut st.t, &events, &mut out);
                        if r.is_err() || st.t.is_done() {
                            st.close();
                        }
                        r
                    }
                },
            };
            if let Err(e) = result {
                st.failed = Some(e);
            }
            if !out.is_empty() {
                return Some((Ok(Bytes::from(out)), st));
            }
        }
    })
}

fn feed(t: &mut Translator, events: &[sse::Event], out: &mut Vec<u8>) -> Result<(), Error> {
    for e in events {
        match e {
            sse::Event::Data(d) => t.push(d, out)?,
            // Anthropic sends no [DONE]; a proxy in between might.
            sse::Event::Done => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
