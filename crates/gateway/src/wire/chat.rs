//! The client's chat request, parsed once as a view over its bytes.
//!
//! Top-level fields are kept as raw JSON slices in their original order, so
//! the upstream body is the client's bytes with three edits: the upstream
//! model name swapped in, the gateway-only fields removed, and (after an
//! anonymizing guardrail) the messages replaced. Fields the gateway does not
//! know (tools, response_format, logprobs, n, ...) pass through untouched.

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

use super::json::{self, Str};
use super::message::{self, ChatMessage, Content};
use crate::error::Error;

/// Fields that steer the gateway and never reach the upstream.
const GATEWAY_ONLY: &[&str] = &["guardrails", "metadata", "disable_global_guardrail"];

/// A validated view of a `/chat/completions` body.
#[derive(Debug)]
pub struct ChatRequest<'a> {
    fields: Vec<(Cow<'a, str>, &'a RawValue)>,
    pub model: String,
    pub stream: bool,
    /// Every message, decoded from the bytes that are forwarded.
    pub messages: Vec<ChatMessage<'a>>,
    /// Guardrail names asked for in `guardrails` and `metadata.guardrails`.
    pub requested_guardrails: Vec<String>,
    /// Whether the client asked for a final usage chunk itself.
    pub include_usage: bool,
}

impl<'a> ChatRequest<'a> {
    /// Parse and validate a body. Every byte is decoded once: the messages
    /// into [`ChatMessage`]s, every other field walked (see
    /// [`json::check`]), so a body the guardrails could not read whole
    /// (invalid Unicode, nesting past [`json::MAX_DEPTH`], a repeated
    /// key a guardrail reads) is refused here, before anything is called.
    pub fn parse(body: &'a [u8]) -> Result<Self, Error> {
        let Fields(fields) = serde_json::from_slice(body).map_err(|e| {
            let message = if e.is_data() {
                "Invalid request body: expected a JSON object".to_owned()
            } else {
                format!("Invalid JSON in request body: {e}")
            };
            Error::invalid(message, None)
        })?;
        for (i, (key, raw)) in fields.iter().enumerate() {
            // Two spellings of one key (`messages` and `Messages`): which one
            // a case-insensitive decoder upstream keeps cannot be known.
            let name = json::folded(key);
            if fields[..i].iter().any(|(k, _)| json::folded(k) == name) {
                return Err(Error::invalid(
                    format!("Invalid request body: duplicate key '{key}'"),
                    Some(key),
                ));
            }
            if key != "messages" {
                json::check(raw.get(), 1).map_err(|e| {
                    Error::invalid(format!("Invalid request body: '{key}': {e}"), Some(key))
                })?;
            }
        }
        let get = |name: &str| {
            fields
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| *v)
                .filter(|v| v.get() != "null")
        };

        let model = match get("model") {
            None => return Err(missing("model")),
            Some(raw) => match serde_json::from_str::<String>(raw.get()) {
                Ok(m) if !m.is_empty() => m,
                Ok(_) => return Err(Error::invalid("'model' must not be empty", Some("model"))),
                Err(_) => return Err(wrong_type("model", "a string")),
            },
        };
        // Found in any spelling a lenient decoder upstream would read.
        let messages = fields
            .iter()
            .find(|(k, _)| json::folded(k) == "messages")
            .map(|(_, v)| *v)
            .filter(|v| v.get() != "null");
        let Some(messages) = messages else {
            return Err(missing("messages"));
        };
        let messages = decode_messages(messages)?;
        let stream = match get("stream") {
            None => false,
            Some(raw) => serde_json::from_str::<bool>(raw.get())
                .map_err(|_| wrong_type("stream", "a boolean"))?,
        };
        let include_usage = get("stream_options")
            .and_then(|raw| serde_json::from_str::<StreamOptions>(raw.get()).ok())
            .and_then(|o| o.include_usage)
            .unwrap_or(false);

        let mut requested_guardrails = vec![];
        if let Some(raw) = get("guardrails") {
            guardrail_names(raw, "guardrails", &mut requested_guardrails)?;
        }
        if let Some(raw) = get("metadata") {
            let meta: Metadata =
                serde_json::from_str(raw.get()).map_err(|_| wrong_type("metadata", "an object"))?;
            if let Some(raw) = meta.guardrails.filter(|v| v.get() != "null") {
                guardrail_names(raw, "metadata.guardrails", &mut requested_guardrails)?;
            }
        }

        Ok(ChatRequest {
            fields,
            model,
            stream,
            messages,
            requested_guardrails,
            include_usage,
        })
    }

    /// A top-level field as sent, in any spelling a lenient decoder upstream
    /// would read (null counts as absent).
    pub fn field(&self, name: &str) -> Option<&'a RawValue> {
        self.fields
            .iter()
            .find(|(k, _)| json::folded(k) == name)
            .map(|(_, v)| *v)
            .filter(|v| v.get() != "null")
    }

    /// The body sent upstream: `model` replaced, gateway-only fields dropped,
    /// the fields in `rewrites` (already JSON; `messages` after an
    /// anonymizing guardrail) replaced, `extra` fields (already JSON)
    /// appended when not present.
    pub fn upstream_body(
        &self,
        model: &str,
        rewrites: &[(&str, &[u8])],
        extra: &[(&str, &str)],
    ) -> Vec<u8> {
        let size: usize = self
            .fields
            .iter()
            .map(|(k, v)| k.len() + v.get().len() + 4)
            .sum();
        let rewritten: usize = rewrites.iter().map(|(_, v)| v.len()).sum();
        let mut out = Vec::with_capacity(size + rewritten + 64);
        out.push(b'{');
        let mut first = true;
        let mut push_key = |out: &mut Vec<u8>, key: &str| {
            if !first {
                out.push(b',');
            }
            first = false;
            // Writing a &str into a Vec cannot fail.
            let _ = serde_json::to_writer(&mut *out, key);
            out.push(b':');
        };
        for (key, raw) in &self.fields {
            let key: &str = key;
            if GATEWAY_ONLY.contains(&key) {
                continue;
            }
            push_key(&mut out, key);
            if key == "model" {
                let _ = serde_json::to_writer(&mut out, model);
            } else if let Some((_, new)) = rewrites.iter().find(|(k, _)| json::folded(key) == *k) {
                out.extend_from_slice(new);
            } else {
                out.extend_from_slice(raw.get().as_bytes());
            }
        }
        for (key, value) in extra {
            if !self.fields.iter().any(|(k, _)| k == key) {
                push_key(&mut out, key);
                out.extend_from_slice(value.as_bytes());
            }
        }
        out.push(b'}');
        out
    }
}

/// `messages` with the `content` of some replaced (`Some`) by a string, every
/// other field of every message as it was sent.
pub fn rewrite_contents(messages: &[ChatMessage], contents: &[Option<String>]) -> Vec<u8> {
    let size: usize = messages.iter().map(|m| m.raw.get().len() + 1).sum();
    let mut out = Vec::with_capacity(size + 2);
    out.push(b'[');
    for (i, m) in messages.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        match contents.get(i).and_then(Option::as_ref) {
            None => out.extend_from_slice(m.raw.get().as_bytes()),
            Some(new) => write_with_content(&mut out, m.raw, new),
        }
    }
    out.push(b']');
    out
}

/// A message object as sent, with its `content` set to the string `text`.
pub fn write_with_content(out: &mut Vec<u8>, message: &RawValue, text: &str) {
    // Decoded before, so this cannot fail; the message as sent keeps the
    // JSON well formed if it somehow did.
    let Ok(Fields(fields)) = serde_json::from_str::<Fields>(message.get()) else {
        out.extend_from_slice(message.get().as_bytes());
        return;
    };
    out.push(b'{');
    let mut has_content = false;
    for (j, (key, raw)) in fields.iter().enumerate() {
        if j > 0 {
            out.push(b',');
        }
        // Writing strings into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *out, &**key);
        out.push(b':');
        if key == "content" {
            has_content = true;
            let _ = serde_json::to_writer(&mut *out, text);
        } else {
            out.extend_from_slice(raw.get().as_bytes());
        }
    }
    if !has_content {
        if !fields.is_empty() {
            out.push(b',');
        }
        out.extend_from_slice(b"\"content\":");
        let _ = serde_json::to_writer(&mut *out, text);
    }
    out.push(b'}');
}

/// `messages`: a non-empty list of message objects, each with a string
/// role and a string, list or null content; each decoded whole.
fn decode_messages(raw: &RawValue) -> Result<Vec<ChatMessage<'_>>, Error> {
    let Ok(list) = serde_json::from_str::<Vec<&RawValue>>(raw.get()) else {
        return Err(wrong_type("messages", "an array"));
    };
    if list.is_empty() {
        return Err(Error::invalid(
            "'messages' must contain at least one message.",
            Some("messages"),
        ));
    }
    let mut out = Vec::with_capacity(list.len());
    for (i, raw) in list.into_iter().enumerate() {
        // Formatted only for an error.
        let param = |field: &str| format!("messages[{i}]{field}");
        if !raw.get().starts_with('{') {
            return Err(wrong_type(&param(""), "an object"));
        }
        // The body is level 1, `messages` 2, each message 3.
        let m = message::decode_message(raw, 3).map_err(|e| {
            let param = param("");
            Error::invalid(format!("Invalid request body: {param}: {e}"), Some(&param))
        })?;
        if m.role.is_none() {
            return Err(if m.role_given {
                wrong_type(&param(".role"), "a string")
            } else {
                missing(&param(".role"))
            });
        }
        if matches!(m.content, Content::Invalid) {
            return Err(wrong_type(
                &param(".content"),
                "a string or an array of content parts",
            ));
        }
        out.push(m);
    }
    Ok(out)
}

fn missing(field: &str) -> Error {
    Error::invalid(
        format!("Missing required parameter: '{field}'."),
        Some(field),
    )
}

fn wrong_type(field: &str, expected: &str) -> Error {
    Error::invalid(
        format!("Invalid type for '{field}': expected {expected}."),
        Some(field),
    )
}

#[derive(Deserialize)]
struct StreamOptions {
    include_usage: Option<bool>,
}

#[derive(Deserialize)]
struct Metadata<'a> {
    #[serde(borrow)]
    guardrails: Option<&'a RawValue>,
}

/// `["a", "b"]` or `{"a": {...}, "b": {...}}`.
fn guardrail_names(raw: &RawValue, param: &str, out: &mut Vec<String>) -> Result<(), Error> {
    let text = raw.get();
    // Told apart by the first byte: an untagged enum would buffer the
    // whole value to try each shape in turn.
    let names = match text.as_bytes().first() {
        Some(b'[') => serde_json::from_str::<Vec<String>>(text).ok(),
        Some(b'{') => serde_json::from_str::<Keys>(text).ok().map(|k| k.0),
        _ => None,
    };
    let names = names.ok_or_else(|| {
        wrong_type(
            param,
            "a list of guardrail names or an object keyed by guardrail name",
        )
    })?;
    for n in names {
        if !out.contains(&n) {
            out.push(n);
        }
    }
    Ok(())
}

/// The keys of a JSON object, in order; the values are skipped.
struct Keys(Vec<String>);

impl<'de> Deserialize<'de> for Keys {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Keys;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Keys, A::Error> {
                let mut keys = vec![];
                while let Some((key, de::IgnoredAny)) =
                    map.next_entry::<String, de::IgnoredAny>()?
                {
                    keys.push(key);
                }
                Ok(Keys(keys))
            }
        }
        d.deserialize_map(V)
    }
}

/// A JSON object as an ordered list of (key, raw value); a repeated key keeps
/// its first position and its last value, as a JSON parser would.
struct Fields<'a>(Vec<(Cow<'a, str>, &'a RawValue)>);

impl<'de> Deserialize<'de> for Fields<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Fields<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut out: Vec<(Cow<'de, str>, &'de RawValue)> = Vec::with_capacity(8);
                while let Some(Str(key)) = map.next_key()? {
                    let value: &'de RawValue = map.next_value()?;
                    match out.iter_mut().find(|(k, _)| *k == key) {
                        Some(slot) => slot.1 = value,
                        None => out.push((key, value)),
                    }
                }
                Ok(Fields(out))
            }
        }
        d.deserialize_map(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(s: &str) -> String {
        let r = ChatRequest::parse(s.as_bytes()).unwrap();
        String::from_utf8(r.upstream_body("up", &[], &[])).unwrap()
    }

    #[test]
    fn rewrites_model_and_strips_gateway_fields() {
        assert_eq!(
            body(
                r#"{"model":"gpt","messages":[{"role":"user","content":"hi"}],"guardrails":["g"],"tools":[{"x":1}],"metadata":{"a":1},"n":2}"#
            ),
            r#"{"model":"up","messages":[{"role":"user","content":"hi"}],"tools":[{"x":1}],"n":2}"#
        );
    }

    #[test]
    fn guardrail_forms() {
        let r = ChatRequest::parse(
            br#"{"model":"m","messages":[{"role":"user","content":"x"}],"guardrails":{"a":{}},"metadata":{"guardrails":["b","a"]}}"#,
        )
        .unwrap();
        assert_eq!(r.requested_guardrails, ["a", "b"]);
    }

    #[test]
    fn errors_name_the_field() {
        let cases = [
            (r#"{"messages":[]}"#, Some("model")),
            (r#"{"model":1,"messages":[]}"#, Some("model")),
            (r#"{"model":"m"}"#, Some("messages")),
            (r#"{"model":"m","messages":{}}"#, Some("messages")),
            (r#"{"model":"m","messages":[]}"#, Some("messages")),
            (
                r#"{"model":"m","messages":[{"content":"x"}]}"#,
                Some("messages[0].role"),
            ),
            (
                r#"{"model":"m","messages":[{"role":"user","content":5}]}"#,
                Some("messages[0].content"),
            ),
            (
                r#"{"model":"m","messages":[{"role":"user"}],"stream":"yes"}"#,
                Some("stream"),
            ),
            (
                r#"{"model":"m","messages":[{"role":"user"},"x"]}"#,
                Some("messages[1]"),
            ),
            (
                r#"{"model":"m","messages":[{"role":"user"}],"guardrails":"g"}"#,
                Some("guardrails"),
            ),
            (
                r#"{"model":"m","messages":[{"role":"user"}],"guardrails":[1]}"#,
                Some("guardrails"),
            ),
            (
                r#"{"model":"m","messages":[{"role":"user"}],"metadata":{"guardrails":{"a":}}}"#,
                None,
            ),
            (
                r#"{"model":"m","messages":[{"role":"user"}],"metadata":{"guardrails":true}}"#,
                Some("metadata.guardrails"),
            ),
            (r#"[1]"#, None),
            (r#"{"model":"#, None),
        ];
        for (input, param) in cases {
            match ChatRequest::parse(input.as_bytes()) {
                Err(Error::InvalidRequest { param: p, .. }) => {
                    assert_eq!(p.as_deref(), param, "{input}")
                }
                other => panic!("{input}: {other:?}"),
            }
        }
    }

    #[test]
    fn spellings_of_one_key_are_refused_and_rewrites_find_any() {
        assert!(matches!(
            ChatRequest::parse(
                br#"{"model":"m","messages":[{"role":"user","content":"a"}],"Messages":[]}"#
            ),
            Err(Error::InvalidRequest { .. })
        ));
        let r = ChatRequest::parse(br#"{"model":"m","Messages":[{"role":"user","content":"a"}]}"#)
            .unwrap();
        assert_eq!(r.messages.len(), 1);
        let out = String::from_utf8(r.upstream_body("u", &[("messages", b"[]")], &[])).unwrap();
        assert_eq!(out, r#"{"model":"u","Messages":[]}"#);
    }

    #[test]
    fn escaped_keys_and_extra_fields() {
        let r = ChatRequest::parse(
            br#"{"mod\u0065l":"m","messages":[{"role":"user","content":"x"}],"stream":true}"#,
        )
        .unwrap();
        assert_eq!(r.model, "m");
        let out = String::from_utf8(r.upstream_body(
            "u",
            &[],
            &[("stream_options", r#"{"include_usage":true}"#)],
        ))
        .unwrap();
        assert_eq!(
            out,
            r#"{"model":"u","messages":[{"role":"user","content":"x"}],"stream":true,"stream_options":{"include_usage":true}}"#
        );
    }
}
