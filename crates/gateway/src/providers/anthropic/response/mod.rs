//! An Anthropic message → an OpenAI `chat.completion` (spec section 1.4; W
//! `llms/anthropic/chat/transformation.py` `transform_parsed_response`,
//! `calculate_usage`; `litellm_core_utils/core_helpers.py`
//! `map_finish_reason`), and Anthropic's rate-limit headers in OpenAI's
//! names.
//!
//! The answer is parsed once; text is borrowed from it, tool inputs are
//! re-serialised the way LiteLLM writes them (Python's `json.dumps`).

use std::borrow::Cow;

use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::{ResponseContext, python_json, request::JSON_TOOL_NAME};
use crate::error::{Error, Secrets};

/// An Anthropic `stop_reason` → an OpenAI `finish_reason`; anything
/// unknown (`pause_turn`, ...) is `stop`, as in LiteLLM.
pub fn finish_reason(stop_reason: Option<&str>) -> &'static str {
    match stop_reason {
        Some("max_tokens" | "compaction") => "length",
        Some("tool_use") => "tool_calls",
        Some("refusal" | "content_filtered") => "content_filter",
        _ => "stop",
    }
}

/// Anthropic's `usage`, as reported (cumulative in a stream's
/// `message_delta`).
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
pub struct Usage {
    #[serde(default)]
    pub input_tokens: Option<u64>,
    #[serde(default)]
    pub output_tokens: Option<u64>,
    #[serde(default)]
    pub cache_creation_input_tokens: Option<u64>,
    #[serde(default)]
    pub cache_read_input_tokens: Option<u64>,
    #[serde(default)]
    pub cache_creation: Option<CacheCreation>,
    #[serde(default)]
    pub output_tokens_details: Option<OutputDetails>,
}

#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
pub struct CacheCreation {
    #[serde(default)]
    pub ephemeral_5m_input_tokens: Option<u64>,
    #[serde(default)]
    pub ephemeral_1h_input_tokens: Option<u64>,
}

#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
pub struct OutputDetails {
    #[serde(default)]
    pub thinking_tokens: Option<u64>,
}

impl Usage {
    /// A later report: what it gives replaces what was known.
    pub fn merge(&mut self, later: &Usage) {
        fn take<T: Copy>(slot: &mut Option<T>, v: Option<T>) {
            if v.is_some() {
                *slot = v;
            }
        }
        take(&mut self.input_tokens, later.input_tokens);
        take(&mut self.output_tokens, later.output_tokens);
        take(
            &mut self.cache_creation_input_tokens,
            later.cache_creation_input_tokens,
        );
        take(
            &mut self.cache_read_input_tokens,
            later.cache_read_input_tokens,
        );
        take(&mut self.cache_creation, later.cache_creation);
        take(&mut self.output_tokens_details, later.output_tokens_details);
    }

    /// OpenAI's `prompt_tokens`: input plus cache writes plus cache reads.
    pub fn prompt_tokens(&self) -> u64 {
        self.input_tokens.unwrap_or(0)
            + self.cache_creation_input_tokens.unwrap_or(0)
            + self.cache_read_input_tokens.unwrap_or(0)
    }

    pub fn completion_tokens(&self) -> u64 {
        self.output_tokens.unwrap_or(0)
    }

    /// The OpenAI `usage` object LiteLLM writes. `thinking`: the answer had
    /// thinking (its token count is unknown unless Anthropic reports it).
    pub(crate) fn openai(&self, thinking: bool) -> OpenAiUsage {
        let prompt = self.prompt_tokens();
        let completion = self.completion_tokens();
        let cache_write = self.cache_creation_input_tokens.unwrap_or(0);
        let cache_read = self.cache_read_input_tokens.unwrap_or(0);
        let reported = self
            .output_tokens_details
            .and_then(|d| d.thinking_tokens)
            .map(|t| t.min(completion));
        let (reasoning, text) = match reported {
            Some(r) => (Some(r), Some(completion - r)),
            None if thinking => (None, None),
            None => (Some(0), Some(completion)),
        };
        OpenAiUsage {
            completion_tokens: completion,
            prompt_tokens: prompt,
            total_tokens: prompt + completion,
            completion_tokens_details: CompletionDetails {
                reasoning_tokens: reasoning,
                text_tokens: text,
            },
            prompt_tokens_details: PromptDetails {
                cache_write_tokens: cache_write,
                cached_tokens: cache_read,
                text_tokens: self.input_tokens.unwrap_or(0),
                cache_creation_tokens: cache_write,
                cache_creation_token_details: self.cache_creation,
            },
            cache_creation_input_tokens: cache_write,
            cache_read_input_tokens: cache_read,
        }
    }
}

/// LiteLLM's `usage` for an Anthropic answer, keys in its order (P1).
#[derive(Debug, Serialize)]
pub(crate) struct OpenAiUsage {
    completion_tokens: u64,
    prompt_tokens: u64,
    total_tokens: u64,
    completion_tokens_details: CompletionDetails,
    prompt_tokens_details: PromptDetails,
    cache_creation_input_tokens: u64,
    cache_read_input_tokens: u64,
}

#[derive(Debug, Serialize)]
struct CompletionDetails {
    reasoning_tokens: Option<u64>,
    text_tokens: Option<u64>,
}

#[derive(Debug, Serialize)]
struct PromptDetails {
    cache_write_tokens: u64,
    cached_tokens: u64,
    text_tokens: u64,
    cache_creation_tokens: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    cache_creation_token_details: Option<CacheCreation>,
}

// ---- the answer ----

#[derive(Deserialize)]
struct Message<'a> {
    #[serde(rename = "type", borrow, default)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    content: Option<Vec<BlockView<'a>>>,
    #[serde(borrow, default)]
    stop_reason: Option<Cow<'a, str>>,
    #[serde(default)]
    usage: Option<Usage>,
    #[serde(borrow, default)]
    error: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct BlockView<'a> {
    #[serde(rename = "type", borrow, default)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    text: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    name: Option<Cow<'a, str>>,
    #[serde(default)]
    input: Option<serde_json::Value>,
    #[serde(borrow, default)]
    thinking: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    signature: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    data: Option<Cow<'a, str>>,
    #[serde(default)]
    citations: Option<Vec<serde_json::Value>>,
}

/// A thinking block as the answer carries it back (LiteLLM passes
/// Anthropic's block through).
#[derive(Serialize)]
struct ThinkingBlock<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    thinking: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    signature: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<&'a str>,
}

#[derive(Serialize)]
struct Completion<'a> {
    id: String,
    created: u64,
    model: &'a str,
    object: &'static str,
    choices: [Choice<'a>; 1],
    usage: OpenAiUsage,
}

#[derive(Serialize)]
struct Choice<'a> {
    finish_reason: &'static str,
    index: u32,
    message: OutMessage<'a>,
}

#[derive(Serialize)]
struct OutMessage<'a> {
    content: Option<Cow<'a, str>>,
    role: &'static str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tool_calls: Vec<ToolCall<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reasoning_content: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    thinking_blocks: Option<&'a [ThinkingBlock<'a>]>,
    provider_specific_fields: ProviderFields<'a>,
}

#[derive(Serialize)]
struct ProviderFields<'a> {
    citations: Option<Vec<serde_json::Value>>,
    thinking_blocks: Option<&'a [ThinkingBlock<'a>]>,
}

#[derive(Serialize)]
pub(crate) struct ToolCall<'a> {
    /// The block's position in the content (LiteLLM's choice, P1).
    pub index: usize,
    pub function: Function<'a>,
    pub id: Cow<'a, str>,
    #[serde(rename = "type")]
    pub kind: &'static str,
}

#[derive(Serialize)]
pub(crate) struct Function<'a> {
    pub arguments: String,
    pub name: Cow<'a, str>,
}

/// A new `chatcmpl-<uuid4>` id, as LiteLLM gives every answer.
pub fn new_id() -> String {
    format!("chatcmpl-{}", uuid::Uuid::new_v4())
}

pub(crate) fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// An Anthropic message (a 2xx body) → the `chat.completion` body.
/// `model`: the name the client asked for, which the answer carries.
/// An answer that is an Anthropic error is mapped as one.
pub fn to_openai(
    body: &[u8],
    model: &str,
    context: &ResponseContext,
    secrets: &Secrets,
) -> Result<Vec<u8>, Error> {
    let invalid = || {
        Error::UpstreamUnreachable(format!(
            "the upstream for model '{model}' sent an answer that is not an Anthropic message"
        ))
    };
    let msg: Message<'_> = serde_json::from_slice(body).map_err(|_| invalid())?;
    if msg.error.is_some() || msg.kind.as_deref() == Some("error") {
        return Err(super::error::from_upstream(
            StatusCode::INTERNAL_SERVER_ERROR,
            body,
            None,
            secrets,
        ));
    }
    let blocks = msg.content.ok_or_else(invalid)?;

    let mut text = String::new();
    let mut tool_calls: Vec<ToolCall<'_>> = vec![];
    let mut thinking: Vec<ThinkingBlock<'_>> = vec![];
    let mut reasoning: Option<String> = None;
    let mut citations: Option<Vec<serde_json::Value>> = None;
    for (index, b) in blocks.iter().enumerate() {
        match b.kind.as_deref() {
            Some("text") => {
                if let Some(t) = &b.text {
                    text.push_str(t);
                }
            }
            Some("tool_use" | "server_tool_use") => {
                let name = b.name.clone().unwrap_or_default();
                let name = match context.original_name(&name) {
                    n if n == name => name,
                    n => Cow::Owned(n.to_owned()),
                };
                tool_calls.push(ToolCall {
                    index,
                    function: Function {
                        arguments: python_json(&b.input.clone().unwrap_or(serde_json::Value::Null)),
                        name,
                    },
                    id: b.id.clone().unwrap_or_default(),
                    kind: "function",
                });
            }
            Some(kind @ ("thinking" | "redacted_thinking")) => {
                thinking.push(ThinkingBlock {
                    kind,
                    thinking: b.thinking.as_deref(),
                    signature: b.signature.as_deref(),
                    data: b.data.as_deref(),
                });
                let r = reasoning.get_or_insert_with(String::new);
                if let Some(t) = &b.thinking {
                    r.push_str(t);
                }
            }
            _ => {}
        }
        if let Some(list) = &b.citations {
            let supported = serde_json::Value::String(b.text.as_deref().unwrap_or("").to_owned());
            let with_text = list
                .iter()
                .cloned()
                .map(|mut c| {
                    if let serde_json::Value::Object(o) = &mut c {
                        o.insert("supported_text".into(), supported.clone());
                    }
                    c
                })
                .collect();
            citations
                .get_or_insert_with(Vec::new)
                .push(serde_json::Value::Array(with_text));
        }
    }

    if let Some(prefix) = &context.prefix
        && !text.starts_with(prefix.as_str())
    {
        text.insert_str(0, prefix);
    }
    let mut finish = finish_reason(msg.stop_reason.as_deref());
    let mut content: Option<Cow<'_, str>> = (!text.is_empty()).then_some(Cow::Owned(text));
    if context.json_tool && !tool_calls.is_empty() {
        let is_json = |t: &ToolCall<'_>| t.function.name == JSON_TOOL_NAME;
        if tool_calls.iter().all(is_json) {
            // The forced tool's input is the answer.
            content = Some(Cow::Owned(tool_calls.swap_remove(0).function.arguments));
            tool_calls.clear();
            finish = "stop";
        } else {
            let json: String = tool_calls
                .iter()
                .filter(|t| is_json(t))
                .map(|t| t.function.arguments.as_str())
                .take(1)
                .collect();
            tool_calls.retain(|t| !is_json(t));
            if !json.is_empty() {
                content = Some(match content {
                    Some(c) => Cow::Owned(format!("{c}{json}")),
                    None => Cow::Owned(json),
                });
            }
        }
    }

    let usage = msg.usage.unwrap_or_default().openai(!thinking.is_empty());
    let thinking_blocks = (!thinking.is_empty()).then_some(thinking.as_slice());
    let completion = Completion {
        id: new_id(),
        created: now(),
        model,
        object: "chat.completion",
        choices: [Choice {
            finish_reason: finish,
            index: 0,
            message: OutMessage {
                content,
                role: "assistant",
                tool_calls,
                reasoning_content: reasoning,
                thinking_blocks,
                provider_specific_fields: ProviderFields {
                    citations,
                    thinking_blocks,
                },
            },
        }],
        usage,
    };
    let mut out = Vec::with_capacity(body.len() + 256);
    write_json(&mut out, &completion)?;
    Ok(out)
}

pub(crate) fn write_json(out: &mut Vec<u8>, value: &impl Serialize) -> Result<(), Error> {
    let mut ser = serde_json::Serializer::new(out);
    value
        .serialize(&mut ser)
        .map_err(|e| Error::Internal(format!("serialising an OpenAI answer: {e}")))
}

/// `anthropic-ratelimit-{requests,tokens}-{limit,remaining}` →
/// `x-ratelimit-{limit,remaining}-{requests,tokens}` (W
/// `common_utils.py:2193-2207`).
pub fn ratelimit_headers(headers: &HeaderMap) -> Vec<(HeaderName, HeaderValue)> {
    const MAP: [(&str, &str); 4] = [
        (
            "anthropic-ratelimit-requests-limit",
            "x-ratelimit-limit-requests",
        ),
        (
            "anthropic-ratelimit-requests-remaining",
            "x-ratelimit-remaining-requests",
        ),
        (
            "anthropic-ratelimit-tokens-limit",
            "x-ratelimit-limit-tokens",
        ),
        (
            "anthropic-ratelimit-tokens-remaining",
            "x-ratelimit-remaining-tokens",
        ),
    ];
    MAP.iter()
        .filter_map(|(from, to)| {
            let v = headers.get(*from)?;
            Some((HeaderName::from_static(to), v.clone()))
        })
        .collect()
}

#[cfg(test)]
mod tests;
