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

use crate::error::Error;

/// Fields that steer the gateway and never reach the upstream.
const GATEWAY_ONLY: &[&str] = &["guardrails", "metadata", "disable_global_guardrail"];

/// A validated view of a `/chat/completions` body.
#[derive(Debug)]
pub struct ChatRequest<'a> {
    fields: Vec<(Cow<'a, str>, &'a RawValue)>,
    pub model: String,
    pub stream: bool,
    pub messages: &'a RawValue,
    /// Each message's role and content, as validated.
    pub message_views: Vec<MessageView<'a>>,
    /// Guardrail names asked for in `guardrails` and `metadata.guardrails`.
    pub requested_guardrails: Vec<String>,
    /// Whether the client asked for a final usage chunk itself.
    pub include_usage: bool,
}

impl<'a> ChatRequest<'a> {
    pub fn parse(body: &'a [u8]) -> Result<Self, Error> {
        let Fields(fields) = serde_json::from_slice(body).map_err(|e| {
            let message = if e.is_data() {
                "Invalid request body: expected a JSON object".to_owned()
            } else {
                format!("Invalid JSON in request body: {e}")
            };
            Error::invalid(message, None)
        })?;
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
        let Some(messages) = get("messages") else {
            return Err(missing("messages"));
        };
        let message_views = validate_messages(messages)?;
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
            message_views,
            requested_guardrails,
            include_usage,
        })
    }

    /// The body sent upstream: `model` replaced, gateway-only fields dropped,
    /// `messages` replaced when a guardrail rewrote them, `extra` fields
    /// (already JSON) appended when not present.
    pub fn upstream_body(
        &self,
        model: &str,
        messages: Option<&[u8]>,
        extra: &[(&str, &str)],
    ) -> Vec<u8> {
        let size: usize = self
            .fields
            .iter()
            .map(|(k, v)| k.len() + v.get().len() + 4)
            .sum();
        let mut out = Vec::with_capacity(size + messages.map_or(0, <[u8]>::len) + 64);
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
            match key {
                "model" => {
                    let _ = serde_json::to_writer(&mut out, model);
                }
                "messages" if messages.is_some() => {
                    out.extend_from_slice(messages.unwrap_or_default());
                }
                _ => out.extend_from_slice(raw.get().as_bytes()),
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

/// A message's role and content, as raw JSON.
#[derive(Debug, Deserialize)]
pub struct MessageView<'a> {
    #[serde(borrow)]
    pub role: Option<&'a RawValue>,
    #[serde(borrow)]
    pub content: Option<&'a RawValue>,
}

/// Check `messages` is a non-empty array of objects with a string role and
/// a string, array or null content; their roles and contents.
fn validate_messages(raw: &RawValue) -> Result<Vec<MessageView<'_>>, Error> {
    // One pass when the list is well formed; the item-by-item pass below
    // only to name the item that is not.
    let list = match serde_json::from_str::<Vec<MessageView>>(raw.get()) {
        Ok(list) => list,
        Err(_) => return Err(find_bad_message(raw)),
    };
    if list.is_empty() {
        return Err(Error::invalid(
            "'messages' must contain at least one message.",
            Some("messages"),
        ));
    }
    for (i, m) in list.iter().enumerate() {
        // Formatted only for an error.
        let param = |field: &str| format!("messages[{i}]{field}");
        match m.role {
            None => return Err(missing(&param(".role"))),
            Some(r) if !r.get().starts_with('"') => {
                return Err(wrong_type(&param(".role"), "a string"));
            }
            Some(_) => {}
        }
        if let Some(c) = m.content {
            let first = c.get().as_bytes().first().copied();
            if !matches!(first, Some(b'"' | b'[' | b'n')) {
                return Err(wrong_type(
                    &param(".content"),
                    "a string or an array of content parts",
                ));
            }
        }
    }
    Ok(list)
}

/// The error for a `messages` value that is not a list of objects.
fn find_bad_message(raw: &RawValue) -> Error {
    let Ok(list) = serde_json::from_str::<Vec<&RawValue>>(raw.get()) else {
        return wrong_type("messages", "an array");
    };
    for (i, item) in list.iter().enumerate() {
        if serde_json::from_str::<MessageView>(item.get()).is_err() {
            return wrong_type(&format!("messages[{i}]"), "an object");
        }
    }
    wrong_type("messages", "an array of messages")
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
                while let Some(Key(key)) = map.next_key()? {
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

/// A key borrowed from the input when it has no escapes.
struct Key<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string key")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Key(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(s: &str) -> String {
        let r = ChatRequest::parse(s.as_bytes()).unwrap();
        String::from_utf8(r.upstream_body("up", None, &[])).unwrap()
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
    fn escaped_keys_and_extra_fields() {
        let r = ChatRequest::parse(
            br#"{"mod\u0065l":"m","messages":[{"role":"user","content":"x"}],"stream":true}"#,
        )
        .unwrap();
        assert_eq!(r.model, "m");
        let out = String::from_utf8(r.upstream_body(
            "u",
            None,
            &[("stream_options", r#"{"include_usage":true}"#)],
        ))
        .unwrap();
        assert_eq!(
            out,
            r#"{"model":"u","messages":[{"role":"user","content":"x"}],"stream":true,"stream_options":{"include_usage":true}}"#
        );
    }
}
