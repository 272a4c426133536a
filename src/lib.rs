//! gateway: an OpenAI-compatible LLM gateway with guardrails.

pub mod mock;
