//! The choices of a chat completion, decoded as a request's messages are
//! ([`decode_message`]), every other byte walked.

use std::fmt;

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

use super::json::{Checked, Str, Val, ValSeed, check, folded, once};
use super::message::{ChatMessage, decode_message};

/// One choice of a chat completion.
#[derive(Debug)]
pub struct Choice<'a> {
    /// Its `message`; None when it has none (a shape no guardrail reads).
    pub message: Option<ChatMessage<'a>>,
    /// Whether it carries `logprobs`, which repeat its text token by token.
    pub logprobs: bool,
}

/// The choices of a chat completion body, every byte of the body walked as
/// [`decode_message`] does. None when the body has no `choices` list.
pub fn decode_completion(body: &[u8]) -> serde_json::Result<Option<Vec<Choice<'_>>>> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let choices = de.deserialize_map(CompletionVisitor)?;
    de.end()?;
    let Some(choices) = choices else {
        return Ok(None);
    };
    let Ok(list) = serde_json::from_str::<Vec<&RawValue>>(choices.get()) else {
        check(choices.get(), 1)?;
        return Ok(None);
    };
    let mut out = Vec::with_capacity(list.len());
    for raw in list {
        let mut de = serde_json::Deserializer::from_str(raw.get());
        let (message, logprobs) = de.deserialize_any(ChoiceVisitor)?;
        // The body is level 1, `choices` 2, a choice 3, its message 4.
        let message = match message {
            Some(m) => Some(decode_message(m, 4)?),
            None => None,
        };
        out.push(Choice { message, logprobs });
    }
    Ok(Some(out))
}

struct CompletionVisitor;

impl<'de> Visitor<'de> for CompletionVisitor {
    type Value = Option<&'de RawValue>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a chat completion object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut choices = None;
        let mut seen = false;
        while let Some(Str(key)) = map.next_key::<Str>()? {
            if folded(&key) == "choices" {
                once(&mut seen, &key)?;
                choices = Some(map.next_value::<&RawValue>()?);
            } else {
                map.next_value_seed(Checked { depth: 1 })?;
            }
        }
        Ok(choices)
    }
}

struct ChoiceVisitor;

impl<'de> Visitor<'de> for ChoiceVisitor {
    type Value = (Option<&'de RawValue>, bool);
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a choice object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let (mut message, mut logprobs) = (None, false);
        let mut seen = [false; 2];
        while let Some(Str(key)) = map.next_key::<Str>()? {
            match &*folded(&key) {
                "message" => {
                    once(&mut seen[0], &key)?;
                    let raw = map.next_value::<&RawValue>()?;
                    message = raw.get().starts_with('{').then_some(raw);
                    if message.is_none() {
                        check(raw.get(), 3).map_err(de::Error::custom)?;
                    }
                }
                "logprobs" => {
                    once(&mut seen[1], &key)?;
                    logprobs = !matches!(
                        map.next_value_seed(ValSeed { depth: 3 })?,
                        Val::Absent | Val::Null
                    );
                }
                _ => map.next_value_seed(Checked { depth: 3 })?,
            }
        }
        Ok((message, logprobs))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        Checked { depth: 2 }.visit_seq(seq)?;
        Ok((None, false))
    }
    fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
        Ok((None, false))
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok((None, false))
    }
    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok((None, false))
    }
    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok((None, false))
    }
    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok((None, false))
    }
    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok((None, false))
    }
}
