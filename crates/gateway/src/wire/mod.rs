//! The OpenAI chat wire format, decoded once from the bytes that are
//! forwarded: the request view ([`chat::ChatRequest`]), its messages and a
//! completion's choices ([`message`]). Every layer above reads requests and
//! answers through these types, so what a guardrail reads and what the
//! upstream receives come from one decode.

pub mod chat;
pub mod completion;
pub mod json;
pub mod message;

pub use chat::ChatRequest;
