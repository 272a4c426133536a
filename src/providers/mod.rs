//! Upstream providers whose API is not OpenAI's: each module translates an
//! OpenAI chat completions request into the provider's request, and the
//! provider's answer, stream and errors back into OpenAI's shapes, so the
//! rest of the request path (routing, limits, guardrails, metering) keeps
//! speaking OpenAI.
//!
//! A provider module owns four pure pieces, with no network code: build the
//! upstream request (URL, headers, body), map the answer, map the stream (a
//! state machine fed the provider's events), map the errors.
//!
//! # Layout
//!
//! - [`anthropic`]: Anthropic's Messages API (`model: anthropic/claude-…`),
//!   as LiteLLM 1.108.7 translates it (`spec/anthropic.md` section 1).

pub mod anthropic;
