//! Answers of an Anthropic deployment to `/v1/messages`, which are already
//! in the client's format: the model name restamped with the one the
//! client asked for (as LiteLLM does), tokens counted from Anthropic's
//! `usage`, and a stream relayed event by event.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde::Deserialize;
use serde::de::{MapAccess, Visitor};
use serde_json::value::RawValue;

use super::error;
use super::response::json_str;
use crate::body::{BodyStream, next_within};
use crate::endpoints::chat::meter::{Accounting, Usage};
use crate::error::{Error, Secrets};
use crate::sse;

fn not_a_message() -> Error {
    Error::UpstreamUnreachable(
        "the upstream sent an answer that is not an Anthropic message".into(),
    )
}

/// A JSON object's members in order, values as they were written.
pub(super) struct Members<'a>(pub(super) Vec<(Cow<'a, str>, &'a RawValue)>);

impl<'de> Deserialize<'de> for Members<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Members<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some(k) = map.next_key::<Cow<'de, str>>()? {
                    out.push((k, map.next_value::<&'de RawValue>()?));
                }
                Ok(Members(out))
            }
        }
        d.deserialize_map(V)
    }
}

/// `object` (a JSON object) rewritten member by member: each key as it
/// was, its value as `value` writes it (given the key and the value's bytes).
fn members(
    object: &[u8],
    mut value: impl FnMut(&str, &str, &mut Vec<u8>) -> Result<(), Error>,
) -> Result<Vec<u8>, Error> {
    let Members(members) = serde_json::from_slice(object).map_err(|_| not_a_message())?;
    let mut out = Vec::with_capacity(object.len() + 64);
    out.push(b'{');
    for (i, (k, v)) in members.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        json_str(&mut out, k);
        out.push(b':');
        value(k, v.get(), &mut out)?;
    }
    out.push(b'}');
    Ok(out)
}

/// `object` (a JSON object) with its top-level `model` replaced by `model`;
/// every other member keeps its bytes and its place. Its `usage`, read in
/// the same pass (an unreadable one counts as none, as a missing one).
fn restamp(object: &[u8], model: &str) -> Result<(Option<Tokens>, Vec<u8>), Error> {
    let mut tokens = None;
    let out = members(object, |k, v, out| {
        match k {
            "model" => json_str(out, model),
            "usage" => {
                tokens = serde_json::from_str::<Option<Tokens>>(v).ok().flatten();
                out.extend_from_slice(v.as_bytes());
            }
            _ => out.extend_from_slice(v.as_bytes()),
        }
        Ok(())
    })?;
    Ok((tokens, out))
}

/// Anthropic's token counts, as the gateway counts them (spec anthropic.md
/// 1.4): prompt = input + cache creation + cache read; completion = output.
#[derive(Deserialize, Default, Clone, Copy)]
struct Tokens {
    #[serde(default)]
    input_tokens: Option<u64>,
    #[serde(default)]
    cache_creation_input_tokens: Option<u64>,
    #[serde(default)]
    cache_read_input_tokens: Option<u64>,
    #[serde(default)]
    output_tokens: Option<u64>,
}

impl Tokens {
    fn prompt(&self) -> u64 {
        self.input_tokens.unwrap_or(0)
            + self.cache_creation_input_tokens.unwrap_or(0)
            + self.cache_read_input_tokens.unwrap_or(0)
    }

    /// Later counts (a `message_delta`'s, which are cumulative) win.
    fn merge(&mut self, later: Tokens) {
        let pick = |a: &mut Option<u64>, b: Option<u64>| {
            if b.is_some() {
                *a = b;
            }
        };
        pick(&mut self.input_tokens, later.input_tokens);
        pick(
            &mut self.cache_creation_input_tokens,
            later.cache_creation_input_tokens,
        );
        pick(
            &mut self.cache_read_input_tokens,
            later.cache_read_input_tokens,
        );
        pick(&mut self.output_tokens, later.output_tokens);
    }

    fn usage(&self) -> Usage {
        Usage {
            prompt_tokens: self.prompt(),
            completion_tokens: self.output_tokens.unwrap_or(0),
        }
    }
}

#[derive(Deserialize)]
struct WithTokens {
    #[serde(default)]
    usage: Option<Tokens>,
}

/// A whole answer: its tokens, and the body the client gets.
pub fn answer(body: &[u8], model: &str) -> Result<(Option<Usage>, Vec<u8>), Error> {
    let (tokens, out) = restamp(body, model)?;
    Ok((tokens.map(|t| t.usage()), out))
}

/// The first block of an answer that the post_call check, which reads the
/// answer as a chat completion, does not read: a type the chat view leaves
/// out (a server tool's result, a block newer than the gateway), a text
/// block's citations, a field it does not know that carries a string (one
/// newer than the gateway), or a field given twice. Such an answer is never
/// returned after a check.
pub fn unread_block(body: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct Answer<'a> {
        #[serde(borrow, default)]
        content: Vec<&'a RawValue>,
    }
    let blocks = serde_json::from_slice::<Answer<'_>>(body).and_then(|a| {
        a.content
            .iter()
            .map(|b| serde_json::from_str::<Members<'_>>(b.get()))
            .collect::<Result<Vec<_>, _>>()
    });
    let Ok(blocks) = blocks else {
        return Some("an answer whose content is not a list of blocks".into());
    };
    blocks.iter().enumerate().find_map(|(i, Members(fields))| {
        let kind = fields
            .iter()
            .find(|(k, _)| k == "type")
            .and_then(|(_, v)| serde_json::from_str::<Cow<'_, str>>(v.get()).ok())
            .unwrap_or_default();
        let known: &[&str] = match kind.as_ref() {
            "text" => &["type", "text", "citations"],
            "tool_use" | "server_tool_use" => &["type", "id", "name", "input"],
            "thinking" => &["type", "thinking", "signature"],
            "redacted_thinking" => &["type", "data"],
            _ => return Some(format!("content.{i}: a block of type '{kind}'")),
        };
        fields.iter().enumerate().find_map(|(j, (k, v))| {
            let raw = v.get().trim();
            let unread = match k.as_ref() {
                "citations" => !matches!(raw, "null" | "[]"),
                // A value holds a string (or a key) exactly when its JSON
                // text has a quote.
                _ if !known.contains(&k.as_ref()) => raw.contains('"'),
                _ => fields[..j].iter().any(|(seen, _)| seen == k),
            };
            unread.then(|| format!("content.{i}.{k}: a field of a '{kind}' block"))
        })
    })
}

/// One event of a Messages stream, as far as the relay reads it.
#[derive(Deserialize)]
struct Event<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(default)]
    message: Option<WithTokens>,
    #[serde(default)]
    usage: Option<Tokens>,
}

/// A Messages stream from an Anthropic deployment, relayed event by event:
/// each event's data as it came (`message_start` with the client's model
/// name), under the `event:` line of its type; tokens counted from
/// `message_start` and `message_delta`; a stall past `idle`, an event over
/// the SSE bound or a broken upstream ends it with an `error` event.
pub fn relay(
    body: BodyStream,
    model: String,
    idle: Duration,
    acct: Accounting,
    secrets: Arc<Secrets>,
) -> BodyStream {
    struct State {
        /// Masked out of the upstream's own `error` event.
        secrets: Arc<Secrets>,
        body: BodyStream,
        parser: sse::Parser,
        model: String,
        idle: Duration,
        acct: Accounting,
        tokens: Tokens,
        counted: bool,
        first: bool,
        done: bool,
    }
    impl State {
        fn count(&mut self) {
            if !self.counted {
                self.counted = true;
                self.acct.record(self.tokens.usage());
            }
        }
        fn fail(&mut self, e: &Error) -> Bytes {
            self.done = true;
            self.count();
            error::sse_event(e)
        }
        /// Frame `events`; `Err` when one cannot be relayed.
        fn frames(&mut self, events: Vec<sse::Event>) -> Result<Bytes, Error> {
            let mut out = Vec::new();
            for e in events {
                let sse::Event::Data(data) = e else {
                    // `[DONE]` is OpenAI's; Anthropic never sends it.
                    continue;
                };
                let event: Event<'_> = serde_json::from_slice(&data).map_err(|_| {
                    Error::UpstreamUnreachable(
                        "the upstream sent a stream event that is not Anthropic's".into(),
                    )
                })?;
                let kind = event.kind.as_ref();
                if !kind.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                    return Err(Error::UpstreamUnreachable(
                        "the upstream sent a stream event of an invalid type".into(),
                    ));
                }
                out.extend_from_slice(b"event: ");
                out.extend_from_slice(kind.as_bytes());
                out.extend_from_slice(b"\ndata: ");
                match kind {
                    "message_start" => {
                        if let Some(t) = event.message.and_then(|m| m.usage) {
                            self.tokens.merge(t);
                        }
                        let restamped = restamp_start(&data, &self.model)?;
                        out.extend_from_slice(&restamped);
                    }
                    "message_delta" => {
                        if let Some(t) = event.usage {
                            self.tokens.merge(t);
                        }
                        out.extend_from_slice(&data);
                    }
                    "error" => {
                        // The upstream's own error event, relayed; the
                        // stream ends with it.
                        self.done = true;
                        out.extend_from_slice(&self.secrets.scrub(data.clone()));
                    }
                    _ => out.extend_from_slice(&data),
                }
                out.extend_from_slice(b"\n\n");
                if kind == "message_stop" || self.done {
                    self.done = true;
                    self.count();
                    break;
                }
            }
            Ok(out.into())
        }
    }
    impl Drop for State {
        fn drop(&mut self) {
            // A client that went away: what was used so far still counts.
            self.count();
        }
    }
    let state = State {
        secrets,
        body,
        parser: sse::Parser::default(),
        model,
        idle,
        acct,
        tokens: Tokens::default(),
        counted: false,
        first: true,
        done: false,
    };
    Box::pin(futures_util::stream::unfold(state, |mut st| async move {
        loop {
            if st.done {
                return None;
            }
            let mut events = vec![];
            match next_within(&mut st.body, st.idle).await {
                None => {
                    st.parser.finish(&mut events);
                    let out = st.frames(events);
                    if !st.done {
                        // Over before `message_stop`: the answer is cut
                        // short, and the client must know it.
                        let e = Error::UpstreamUnreachable(
                            "the upstream ended the stream before message_stop".into(),
                        );
                        let tail = st.fail(&e);
                        let mut all = out.map(|b| b.to_vec()).unwrap_or_default();
                        all.extend_from_slice(&tail);
                        return Some((Ok(Bytes::from(all)), st));
                    }
                    return match out {
                        Ok(b) if !b.is_empty() => Some((Ok(b), st)),
                        Ok(_) => None,
                        Err(e) => Some((Ok(st.fail(&e)), st)),
                    };
                }
                Some(Err(e)) => return Some((Ok(st.fail(&e)), st)),
                Some(Ok(chunk)) => {
                    if st.first {
                        st.first = false;
                        st.acct.stats.first_token(st.acct.started.elapsed());
                    }
                    if let Err(e) = st.parser.push(&chunk, &mut events) {
                        let e = Error::UpstreamUnreachable(e.to_string());
                        return Some((Ok(st.fail(&e)), st));
                    }
                }
            }
            match st.frames(events) {
                Ok(b) if !b.is_empty() => return Some((Ok(b), st)),
                Ok(_) => {}
                Err(e) => return Some((Ok(st.fail(&e)), st)),
            }
        }
    }))
}

/// A `message_start` event's data with `message.model` replaced.
fn restamp_start(data: &[u8], model: &str) -> Result<Vec<u8>, Error> {
    members(data, |k, v, out| {
        if k == "message" {
            out.extend_from_slice(&restamp(v.as_bytes(), model)?.1);
        } else {
            out.extend_from_slice(v.as_bytes());
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restamp_keeps_every_other_byte() {
        let body = br#"{"id":"msg_1","type":"message","model":"claude-x","content":[{"type":"text","text":"a\u00e9"}],"usage":{"input_tokens":3,"cache_read_input_tokens":2,"output_tokens":4}}"#;
        let (usage, out) = answer(body, "claude").unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"id":"msg_1","type":"message","model":"claude","content":[{"type":"text","text":"a\u00e9"}],"usage":{"input_tokens":3,"cache_read_input_tokens":2,"output_tokens":4}}"#
        );
        let usage = usage.unwrap();
        assert_eq!((usage.prompt_tokens, usage.completion_tokens), (5, 4));
        assert!(answer(b"[1]", "claude").is_err());
        assert!(answer(b"{\"a\":", "claude").is_err());
    }

    #[test]
    fn unread_blocks_and_fields() {
        let answer = |blocks: &str| format!(r#"{{"id":"m","content":[{blocks}]}}"#);
        let read = [
            r#"{"type":"text","text":"a","citations":null}"#,
            r#"{"type":"text","text":"a","citations":[],"new_count":3,"new_flag":null}"#,
            r#"{"type":"tool_use","id":"t","name":"n","input":{"k":"v"}}"#,
            r#"{"type":"thinking","thinking":"t","signature":"s"}"#,
            r#"{"type":"redacted_thinking","data":"x"}"#,
        ];
        for b in read {
            assert_eq!(unread_block(answer(b).as_bytes()), None, "{b}");
        }
        let unread = [
            (
                r#"{"type":"web_search_tool_result"}"#,
                "content.0: a block of type 'web_search_tool_result'",
            ),
            (
                r#"{"type":"text","text":"a","citations":[{"cited_text":"c"}]}"#,
                "content.0.citations: a field of a 'text' block",
            ),
            (
                r#"{"type":"text","text":"a","new_text":"b"}"#,
                "content.0.new_text: a field of a 'text' block",
            ),
            (
                r#"{"type":"tool_use","id":"t","name":"n","input":{},"caller":{"k":1}}"#,
                "content.0.caller: a field of a 'tool_use' block",
            ),
            (
                r#"{"type":"text","text":"a","text":"b"}"#,
                "content.0.text: a field of a 'text' block",
            ),
        ];
        for (b, why) in unread {
            assert_eq!(
                unread_block(answer(b).as_bytes()).as_deref(),
                Some(why),
                "{b}"
            );
        }
        assert!(unread_block(br#"{"content":[1]}"#).is_some());
    }

    #[test]
    fn restamp_start_replaces_the_inner_model() {
        let data = br#"{"type":"message_start","message":{"id":"m","model":"claude-x","usage":{"input_tokens":1}}}"#;
        assert_eq!(
            String::from_utf8(restamp_start(data, "c\"q").unwrap()).unwrap(),
            r#"{"type":"message_start","message":{"id":"m","model":"c\"q","usage":{"input_tokens":1}}}"#
        );
    }
}
