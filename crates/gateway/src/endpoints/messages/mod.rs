//! `POST /v1/messages`: Anthropic's Messages API for Claude clients, as
//! pure translations the route is built from.
//!
//! - [`request`]: the client's body validated and decoded once
//!   ([`request::MessagesRequest::parse`]); from it the OpenAI chat body an
//!   OpenAI-compatible or Azure deployment receives
//!   ([`request::MessagesRequest::to_chat`]), or the client's own bytes for
//!   an Anthropic deployment ([`request::MessagesRequest::anthropic_body`]).
//! - [`response`]: the upstream's chat completion as a Messages response.
//! - [`stream`]: the upstream's chat stream as Messages events.
//! - [`error`]: the gateway's errors in Anthropic's shape, JSON or event.
//!
//! # What the guardrails read
//!
//! The guardrails inspect OpenAI chat requests (aim.md section 4). A
//! Messages request is inspected as its chat translation: the route parses
//! the bytes of [`request::MessagesRequest::to_chat`] with the chat parser
//! (`wire::ChatRequest::parse`) and hands that to the guardrail
//! pipeline unchanged. The translation puts every text a model reads where
//! the chat inspection reads it: `system` (string or text blocks) becomes
//! the system message, text blocks and the text of documents text parts,
//! a tool_use `input` the tool call's `arguments` (its JSON with strings
//! decoded, so an escaped word is read as the model reads it), a
//! tool_result's content the tool message's content, thinking the
//! assistant's `reasoning_content`.
//!
//! - **An OpenAI-compatible or Azure deployment** receives that chat body,
//!   so what the guardrails read is what is forwarded: one parse, one truth.
//! - **An Anthropic deployment** receives the client's own bytes. Those are
//!   the same bytes the decoder walked, field by field, and every text its
//!   model reads is in [`request::MessagesRequest::texts`], taken from that
//!   one decoding; each of them is in the chat translation's inspected
//!   text (a property test checks both against an independent oracle). So
//!   the same inspection covers both kinds of deployment, which matters
//!   because one model group, with its fallbacks, can hold both while the
//!   guardrails run once, before routing.
//! - What the model reads but no guardrail can: an unknown block type (a
//!   server tool's result, a search result, a block newer than the
//!   gateway) or a text block with citations is refused with a 400 when a
//!   guardrail is selected ([`request::MessagesRequest::unreadable`], with
//!   the Messages path of the block). Images, binary documents and
//!   redacted thinking carry no text: they pass, unless a guardrail sets
//!   `block_uninspectable` ([`request::MessagesRequest::first_opaque`]).
//! - Whatever the guardrails: invalid Unicode, nesting past 64 levels, a
//!   repeated key (in any spelling a case-insensitive decoder would match)
//!   and a known key spelled in another case refuse the request (400).
//! - An anonymizing guardrail rewrites chat messages; for an Anthropic
//!   deployment those map back only where the Messages body held a plain
//!   string (the system string, a message's string content), and the
//!   request is refused rather than forwarded unredacted otherwise
//!   ([`request::MessagesRequest::anthropic_body_rewritten`]).
//!
//! # Where the gateway differs from LiteLLM on purpose
//!
//! LiteLLM 1.108.7 (`llms/anthropic/pass_through/adapters/`) translates
//! Messages to chat for non-Anthropic models. The gateway follows its
//! mapping, except:
//! - the request is validated as Anthropic validates it (required
//!   `max_tokens`, roles, block shapes, where each block may appear), with
//!   Anthropic-style messages (`messages.0.content.1.text: Field
//!   required`); LiteLLM passes malformed blocks on or drops them;
//! - a plain-text document (`source.type: text` or `content`) becomes text
//!   parts (LiteLLM drops it, so the model never saw it); a document's
//!   `title` and `context` are text parts before it;
//! - images inside a tool result open the following user message (chat
//!   tool messages carry text only), as LiteLLM's OpenAI provider hoists
//!   them;
//! - `tool_use.input` becomes `arguments` as compact JSON with non-ASCII
//!   text unescaped (LiteLLM: Python's `json.dumps`, spaced and
//!   ASCII-escaped, which a guardrail reads as `\u` escapes);
//! - `tool_choice.disable_parallel_tool_use` becomes
//!   `parallel_tool_calls: false` (LiteLLM drops it);
//! - a stream asks for `stream_options.include_usage`, so the final
//!   `message_delta` carries the upstream's token counts (LiteLLM counts
//!   tokens itself);
//! - thinking blocks travel as `reasoning_content` only (LiteLLM also sends
//!   its internal `thinking_blocks`); `thinking` always becomes
//!   `reasoning_effort` (LiteLLM keeps `thinking` for upstream model names
//!   containing "claude"), and `thinking.summary` is not wrapped in;
//! - `output_format` / `output_config.format` becomes a `json_schema`
//!   `response_format` with the schema as sent, without `strict` (LiteLLM
//!   rewrites the schema for OpenAI's strict mode);
//! - Anthropic's own tools (bash, text editor, computer use, ...) and
//!   fields with no chat meaning (`service_tier`, `container`,
//!   `mcp_servers`, `context_management`, unknown fields) are not sent
//!   (LiteLLM sends them through `extra_body`, which OpenAI refuses);
//!   `top_k` is sent as LiteLLM sends it (vLLM and similar servers honour
//!   it; OpenAI and Azure refuse it with a 400);
//! - tool names longer than 64 characters are sent as they are (LiteLLM
//!   shortens them with a hash and maps them back);
//! - in answers: no empty text block for an empty `content`; tool call
//!   arguments that are not a JSON object become `{}` (LiteLLM repairs
//!   truncated JSON); the thinking block's `signature` is `""` (LiteLLM:
//!   null); a stream's `message_start` takes the upstream's id.
//!
//! `max_tokens` is sent as `max_tokens`; OpenAI's reasoning models want
//! `max_completion_tokens`, which the gateway does not rename on chat
//! either.

mod count;
pub mod error;
pub mod native;
pub mod request;
pub mod response;
mod route;
pub mod stream;

pub use count::count_tokens;
pub(super) use route::handle;
