//! An OpenAI chat completion from an OpenAI-compatible or Azure upstream,
//! as the Anthropic Messages response a Claude client expects.
//!
//! The shape and key order are LiteLLM's (spec P9): `id` (the upstream's),
//! `type`, `role`, `model` (the alias the client asked for),
//! `stop_sequence`, `usage`, `content`, `stop_reason`, `stop_details`.
//! Content is the first choice's reasoning (a `thinking` block), text,
//! refusal (as text) and tool calls (`tool_use` blocks), in that order.
//!
//! Only fields the post_call guardrails read are shown (see
//! `wire::completion::decode_completion`): this decoder reads exact keys, the
//! guardrail every spelling, so what a client sees is never more than what
//! was checked.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::error::Error;

/// `finish_reason` as `stop_reason` (LiteLLM's mapping; anything else,
/// `function_call` included, is `end_turn`).
pub fn stop_reason(finish_reason: &str) -> &'static str {
    match finish_reason {
        "length" => "max_tokens",
        "tool_calls" => "tool_use",
        "content_filter" | "refusal" => "refusal",
        _ => "end_turn",
    }
}

/// Translate a chat completion body; `model` is the name the client asked
/// for. A body that is not a chat completion is a 502.
pub fn from_completion(body: &[u8], model: &str) -> Result<Vec<u8>, Error> {
    let unusable = |e: serde_json::Error| {
        tracing::debug!(error = %e, "upstream answer is not a chat completion");
        Error::UpstreamUnreachable(
            "the upstream answer is not a chat completion the gateway can translate".into(),
        )
    };
    let completion: Completion = serde_json::from_slice(body).map_err(unusable)?;
    let choice = completion.choices.into_iter().next();
    let (message, finish) = match choice {
        Some(c) => (c.message, c.finish_reason),
        None => (None, None),
    };
    let mut out = Vec::with_capacity(body.len() + 128);
    out.extend_from_slice(b"{\"id\":");
    match &completion.id {
        Some(Str(id)) => json_str(&mut out, id),
        None => json_str(&mut out, &new_id("msg_")),
    }
    out.extend_from_slice(b",\"type\":\"message\",\"role\":\"assistant\",\"model\":");
    json_str(&mut out, model);
    out.extend_from_slice(b",\"stop_sequence\":null,\"usage\":");
    completion.usage.unwrap_or_default().write(&mut out);
    out.extend_from_slice(b",\"content\":[");
    let mut refusal = None;
    if let Some(m) = message {
        let mut first = true;
        let mut sep = |out: &mut Vec<u8>| {
            if !std::mem::replace(&mut first, false) {
                out.push(b',');
            }
        };
        if let Some(Str(t)) = m.reasoning_content.filter(|t| !t.0.is_empty()) {
            sep(&mut out);
            out.extend_from_slice(b"{\"type\":\"thinking\",\"thinking\":");
            json_str(&mut out, &t);
            out.extend_from_slice(b",\"signature\":\"\"}");
        }
        for t in content_texts(m.content).map_err(unusable)? {
            sep(&mut out);
            text_block(&mut out, &t);
        }
        if let Some(Str(r)) = m.refusal.filter(|r| !r.0.is_empty()) {
            sep(&mut out);
            text_block(&mut out, &r);
            refusal = Some(r);
        }
        for call in m.tool_calls.unwrap_or_default() {
            let (name, arguments) = match call.function {
                Some(f) => (f.name, f.arguments),
                None => (None, None),
            };
            sep(&mut out);
            out.extend_from_slice(b"{\"type\":\"tool_use\",\"id\":");
            match &call.id {
                Some(Str(id)) => json_str(&mut out, &tool_id(id)),
                None => json_str(&mut out, &new_id("toolu_")),
            }
            out.extend_from_slice(b",\"name\":");
            json_str(&mut out, name.as_ref().map_or("", |n| &n.0));
            out.extend_from_slice(b",\"input\":");
            out.extend_from_slice(input(arguments.as_ref().map_or("", |a| &a.0)).as_bytes());
            out.push(b'}');
        }
    }
    out.extend_from_slice(b"],\"stop_reason\":");
    let mut reason = stop_reason(finish.as_ref().map_or("stop", |f| &f.0));
    if refusal.is_some() && reason != "max_tokens" {
        reason = "refusal";
    }
    json_str(&mut out, reason);
    out.extend_from_slice(b",\"stop_details\":");
    match (reason, &refusal) {
        ("refusal", r) => {
            out.extend_from_slice(b"{\"type\":\"refusal\",\"category\":null,\"explanation\":");
            match r {
                Some(r) => json_str(&mut out, r),
                None => out.extend_from_slice(b"null"),
            }
            out.push(b'}');
        }
        _ => out.extend_from_slice(b"null"),
    }
    out.push(b'}');
    Ok(out)
}

/// A tool call's arguments as a tool_use `input`: the JSON object itself
/// when they are one; `{}` when they are empty or anything else (LiteLLM
/// repairs truncated JSON instead; a client gets the `max_tokens` stop
/// reason either way).
fn input(arguments: &str) -> &str {
    let trimmed = arguments.trim();
    if trimmed.starts_with('{') && serde_json::from_str::<&RawValue>(trimmed).is_ok() {
        trimmed
    } else {
        if !trimmed.is_empty() {
            tracing::debug!("tool call arguments are not a JSON object; sent as {{}}");
        }
        "{}"
    }
}

/// A tool call id as Anthropic accepts it back (`^[a-zA-Z0-9_-]+$`, as
/// LiteLLM normalises it): other characters become `_`.
pub fn tool_id(raw: &str) -> Cow<'_, str> {
    let ok = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
    if raw.is_empty() {
        return Cow::Borrowed("tool_use_id");
    }
    if raw.chars().all(ok) {
        return Cow::Borrowed(raw);
    }
    Cow::Owned(raw.chars().map(|c| if ok(c) { c } else { '_' }).collect())
}

/// A fresh id with `prefix`.
pub fn new_id(prefix: &str) -> String {
    format!("{prefix}{}", uuid::Uuid::new_v4().simple())
}

/// The texts of `content`: a string, or each part with a string `text`.
/// Err when it is neither (or not valid Unicode).
fn content_texts(content: Option<&RawValue>) -> serde_json::Result<Vec<Cow<'_, str>>> {
    let Some(raw) = content else {
        return Ok(vec![]);
    };
    if raw.get().starts_with('"') {
        let Str(t) = serde_json::from_str::<Str>(raw.get())?;
        return Ok(if t.is_empty() { vec![] } else { vec![t] });
    }
    #[derive(Deserialize)]
    struct Part<'a> {
        #[serde(borrow)]
        text: Option<Str<'a>>,
    }
    Ok(serde_json::from_str::<Vec<Part>>(raw.get())?
        .into_iter()
        .filter_map(|p| p.text.map(|t| t.0))
        .filter(|t| !t.is_empty())
        .collect())
}

fn text_block(out: &mut Vec<u8>, text: &str) {
    out.extend_from_slice(b"{\"type\":\"text\",\"text\":");
    json_str(out, text);
    out.push(b'}');
}

/// A string borrowed from the input when it has no escapes.
pub(super) struct Str<'a>(pub Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Str<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Cow<'de, str>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Cow::Borrowed(v))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Cow::Owned(v.to_owned()))
            }
            fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
                Ok(Cow::Owned(v))
            }
        }
        d.deserialize_str(V).map(Str)
    }
}

pub(crate) fn json_str(out: &mut Vec<u8>, s: &str) {
    // Writing a &str into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
}

#[derive(Deserialize)]
struct Completion<'a> {
    #[serde(borrow)]
    id: Option<Str<'a>>,
    #[serde(borrow)]
    choices: Vec<Choice<'a>>,
    usage: Option<Usage>,
}

#[derive(Deserialize)]
struct Choice<'a> {
    #[serde(borrow)]
    message: Option<Msg<'a>>,
    #[serde(borrow)]
    finish_reason: Option<Str<'a>>,
}

#[derive(Deserialize)]
struct Msg<'a> {
    #[serde(borrow)]
    content: Option<&'a RawValue>,
    #[serde(borrow)]
    refusal: Option<Str<'a>>,
    #[serde(borrow)]
    reasoning_content: Option<Str<'a>>,
    #[serde(borrow)]
    tool_calls: Option<Vec<ToolCall<'a>>>,
}

#[derive(Deserialize)]
struct ToolCall<'a> {
    #[serde(borrow)]
    id: Option<Str<'a>>,
    #[serde(borrow)]
    function: Option<Function<'a>>,
}

#[derive(Deserialize)]
struct Function<'a> {
    #[serde(borrow)]
    name: Option<Str<'a>>,
    #[serde(borrow)]
    arguments: Option<Str<'a>>,
}

/// An OpenAI `usage` object, as far as Anthropic's usage needs it.
#[derive(Debug, Default, Deserialize, Clone, Copy, PartialEq)]
pub struct Usage {
    prompt_tokens: Option<f64>,
    completion_tokens: Option<f64>,
    prompt_tokens_details: Option<Details>,
    cache_read_input_tokens: Option<f64>,
    cache_creation_input_tokens: Option<f64>,
}

#[derive(Debug, Default, Deserialize, Clone, Copy, PartialEq)]
struct Details {
    cached_tokens: Option<f64>,
    cache_creation_tokens: Option<f64>,
    cache_write_tokens: Option<f64>,
}

impl Usage {
    /// Write Anthropic's usage object, as LiteLLM computes it: input tokens
    /// are the prompt's minus those read from or written to a cache, which
    /// are given (when any) on their own.
    pub fn write(&self, out: &mut Vec<u8>) {
        let n = |v: Option<f64>| {
            v.filter(|v| v.is_finite() && *v > 0.0)
                .map_or(0, |v| v as u64)
        };
        let details = self.prompt_tokens_details.unwrap_or_default();
        let read = match n(self.cache_read_input_tokens) {
            0 => n(details.cached_tokens),
            v => v,
        };
        let written = match n(self.cache_creation_input_tokens) {
            0 => match n(details.cache_creation_tokens) {
                0 => n(details.cache_write_tokens),
                v => v,
            },
            v => v,
        };
        let input = n(self.prompt_tokens)
            .saturating_sub(read)
            .saturating_sub(written);
        let mut buf = itoa::Buffer::new();
        out.extend_from_slice(b"{\"input_tokens\":");
        out.extend_from_slice(buf.format(input).as_bytes());
        out.extend_from_slice(b",\"output_tokens\":");
        out.extend_from_slice(buf.format(n(self.completion_tokens)).as_bytes());
        if written > 0 {
            out.extend_from_slice(b",\"cache_creation_input_tokens\":");
            out.extend_from_slice(buf.format(written).as_bytes());
        }
        if read > 0 {
            out.extend_from_slice(b",\"cache_read_input_tokens\":");
            out.extend_from_slice(buf.format(read).as_bytes());
        }
        out.push(b'}');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn translate(body: &str) -> String {
        String::from_utf8(from_completion(body.as_bytes(), "alias").unwrap()).unwrap()
    }

    #[test]
    fn p9_byte_for_byte() {
        let azure = r#"{"id":"chatcmpl-az1","object":"chat.completion","created":1700000000,"model":"gpt-4o-2024-08-06","choices":[{"index":0,"message":{"role":"assistant","content":"Hi from my-dep","refusal":null},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":9,"completion_tokens":4,"total_tokens":13},"system_fingerprint":"fp"}"#;
        assert_eq!(
            String::from_utf8(from_completion(azure.as_bytes(), "azure-gpt").unwrap()).unwrap(),
            r#"{"id":"chatcmpl-az1","type":"message","role":"assistant","model":"azure-gpt","stop_sequence":null,"usage":{"input_tokens":9,"output_tokens":4},"content":[{"type":"text","text":"Hi from my-dep"}],"stop_reason":"end_turn","stop_details":null}"#
        );
    }

    #[test]
    fn tool_calls_and_reasoning() {
        let body = r#"{"id":"c1","choices":[{"index":0,"message":{"role":"assistant","content":"Let me check.","reasoning_content":"The user wants weather.","tool_calls":[
            {"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\": \"Paris\"}"}},
            {"id":"functions.get:1","type":"function","function":{"name":"get_time","arguments":""}},
            {"type":"function","function":{"name":"broken","arguments":"{\"city\": \"Par"}}]},
            "finish_reason":"tool_calls"}],"usage":{"prompt_tokens":20,"completion_tokens":7}}"#;
        let out = translate(body);
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        let generated = v["content"][4]["id"].as_str().unwrap();
        assert!(
            generated.starts_with("toolu_") && generated.len() == 38,
            "{generated}"
        );
        assert_eq!(
            out.replace(generated, "toolu_X"),
            concat!(
                r#"{"id":"c1","type":"message","role":"assistant","model":"alias","stop_sequence":null,"usage":{"input_tokens":20,"output_tokens":7},"content":["#,
                r#"{"type":"thinking","thinking":"The user wants weather.","signature":""},"#,
                r#"{"type":"text","text":"Let me check."},"#,
                r#"{"type":"tool_use","id":"call_1","name":"get_weather","input":{"city": "Paris"}},"#,
                r#"{"type":"tool_use","id":"functions_get_1","name":"get_time","input":{}},"#,
                r#"{"type":"tool_use","id":"toolu_X","name":"broken","input":{}}"#,
                r#"],"stop_reason":"tool_use","stop_details":null}"#
            )
        );
    }

    #[test]
    fn stop_reasons() {
        for (finish, reason) in [
            ("\"stop\"", "end_turn"),
            ("\"length\"", "max_tokens"),
            ("\"tool_calls\"", "tool_use"),
            ("\"content_filter\"", "refusal"),
            ("\"function_call\"", "end_turn"),
            ("\"something_new\"", "end_turn"),
            ("null", "end_turn"),
        ] {
            let body = format!(
                r#"{{"id":"c","choices":[{{"message":{{"content":"x"}},"finish_reason":{finish}}}]}}"#
            );
            let v: serde_json::Value = serde_json::from_str(&translate(&body)).unwrap();
            assert_eq!(v["stop_reason"], reason, "{finish}");
        }
    }

    #[test]
    fn refusals_usage_and_empty_answers() {
        assert_eq!(
            translate(
                r#"{"id":"c","choices":[{"message":{"content":null,"refusal":"I can't help with that."},"finish_reason":"stop"}],"usage":{"prompt_tokens":100,"completion_tokens":5,"prompt_tokens_details":{"cached_tokens":30}}}"#
            ),
            r#"{"id":"c","type":"message","role":"assistant","model":"alias","stop_sequence":null,"usage":{"input_tokens":70,"output_tokens":5,"cache_read_input_tokens":30},"content":[{"type":"text","text":"I can't help with that."}],"stop_reason":"refusal","stop_details":{"type":"refusal","category":null,"explanation":"I can't help with that."}}"#
        );
        // No empty text block for an empty content; no usage: zeros.
        assert_eq!(
            translate(
                r#"{"id":"c","choices":[{"message":{"role":"assistant","content":""},"finish_reason":"stop"}]}"#
            ),
            r#"{"id":"c","type":"message","role":"assistant","model":"alias","stop_sequence":null,"usage":{"input_tokens":0,"output_tokens":0},"content":[],"stop_reason":"end_turn","stop_details":null}"#
        );
        assert_eq!(
            translate(
                r#"{"id":"c","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":0,"cache_creation_input_tokens":2,"cache_read_input_tokens":1}}"#
            ),
            r#"{"id":"c","type":"message","role":"assistant","model":"alias","stop_sequence":null,"usage":{"input_tokens":0,"output_tokens":0,"cache_creation_input_tokens":2,"cache_read_input_tokens":1},"content":[],"stop_reason":"end_turn","stop_details":null}"#
        );
        // Content as parts; only the first choice is the answer.
        let out = translate(
            r#"{"id":"c","choices":[{"message":{"content":[{"type":"text","text":"a"},{"type":"image_url","image_url":{}},{"text":"b"}]},"finish_reason":"length"},{"message":{"content":"second"}}]}"#,
        );
        assert!(out.contains(r#""content":[{"type":"text","text":"a"},{"type":"text","text":"b"}],"stop_reason":"max_tokens""#), "{out}");
    }

    #[test]
    fn what_is_not_a_completion_is_a_502() {
        for bad in [
            "not json",
            "[]",
            r#"{"id":"c"}"#,
            r#"{"choices":{}}"#,
            r#"{"choices":[{"message":{"content":"a","content":"b"}}]}"#,
            r#"{"choices":[{"message":{"tool_calls":[{"function":{"arguments":{"a":1}}}]}}]}"#,
            r#"{"choices":[{"message":{"content":"\ud800"}}]}"#,
        ] {
            match from_completion(bad.as_bytes(), "m") {
                Err(e) => assert_eq!(e.status().as_u16(), 502, "{bad}"),
                Ok(out) => panic!("{bad}: {}", String::from_utf8_lossy(&out)),
            }
        }
        // A key in another case is not read (the guardrail reads it; the
        // client sees less, never more).
        assert!(
            !translate(r#"{"id":"c","choices":[{"message":{"Content":"hidden"}}]}"#)
                .contains("hidden")
        );
    }

    #[test]
    fn ids_as_anthropic_takes_them_back() {
        assert_eq!(tool_id("call_abc-1"), "call_abc-1");
        assert_eq!(tool_id("functions.get:0"), "functions_get_0");
        assert_eq!(tool_id("é"), "_");
        assert_eq!(tool_id(""), "tool_use_id");
    }
}
