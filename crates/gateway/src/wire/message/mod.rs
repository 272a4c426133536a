//! Chat messages decoded once, completely, from the bytes that are forwarded.
//!
//! A guardrail must read exactly what the model will read (docs/spec/aim.md section 4).
//! So a message is decoded in one pass that visits every byte of it: the
//! fields a model reads as text are kept (borrowed from the input when they
//! have no escapes), and every other value is still walked, so that a string
//! with invalid Unicode (a lone surrogate escape such as `\ud800`) or a value
//! nested deeper than [`MAX_DEPTH`] fails the whole request instead of being
//! skipped by one decoder and forwarded by the other. Shapes the guardrails
//! cannot read (a content part of an unknown type without text, tool call
//! arguments that are not a string, ...) are recorded in
//! [`ChatMessage::unread`]; the guardrail pipeline refuses such a request
//! rather than let its text through unread.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

use super::json::{Checked, MAX_DEPTH, Str, TOO_DEEP, Val, ValSeed, folded, once};

/// Part types whose text is in `text`.
const TEXT_PARTS: &[&str] = &[
    "text",
    "input_text",
    "output_text",
    "summary_text",
    "reasoning_text",
];

/// Part types that carry no text a guardrail can read (images, audio,
/// files): they pass unless a guardrail sets `block_uninspectable`.
const OPAQUE_PARTS: &[&str] = &[
    "image_url",
    "input_image",
    "image",
    "input_audio",
    "audio",
    "file",
    "input_file",
    "document",
    "video_url",
];

/// One chat message as a model reads it.
#[derive(Debug)]
pub struct ChatMessage<'a> {
    /// The message exactly as it was sent.
    pub raw: &'a RawValue,
    /// `role`; None when absent or not a string (the request parser refuses
    /// that for input messages).
    pub role: Option<Cow<'a, str>>,
    /// Whether `role` was there (and not null), string or not.
    pub role_given: bool,
    pub content: Content<'a>,
    /// `refusal`, when a string.
    pub refusal: Option<Cow<'a, str>>,
    /// `reasoning_content`, when a string.
    pub reasoning: Option<Cow<'a, str>>,
    /// The text of `tool_calls[i]`: `function.arguments` or `custom.input`.
    pub tool_calls: Vec<ToolText<'a>>,
    /// The legacy `function_call.arguments`.
    pub function_call: Option<Cow<'a, str>>,
    /// `audio.transcript` (a model's spoken answer, as text).
    pub transcript: Option<Cow<'a, str>>,
    /// What in this message a guardrail cannot read, described for the error.
    pub unread: Vec<String>,
}

/// `content`, as the model reads it.
#[derive(Debug, Default)]
pub enum Content<'a> {
    /// Absent or null.
    #[default]
    None,
    Text(Cow<'a, str>),
    Parts(Vec<Part<'a>>),
    /// Neither a string, a list nor null.
    Invalid,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Part<'a> {
    /// A part a model reads as text: a bare string, any part with a string
    /// `text`, a `refusal` part.
    Text(Cow<'a, str>),
    /// A part with no text a guardrail can read (its type): images, audio,
    /// files.
    Opaque(Cow<'a, str>),
}

/// Where a text fragment of a message lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// `content`.
    Content,
    /// `audio.transcript`.
    Transcript,
    /// `refusal`.
    Refusal,
    /// `tool_calls[i]`: `function.arguments` or `custom.input`.
    Tool(usize),
    /// `function_call.arguments`.
    FunctionCall,
    /// `reasoning_content`.
    Reasoning,
}

/// The text of one tool call, and which call it is.
#[derive(Debug)]
pub struct ToolText<'a> {
    pub index: usize,
    pub text: Cow<'a, str>,
}

impl ChatMessage<'_> {
    /// The text fragments a model reads in this message, in order: the
    /// content (a string, or each text part), the audio transcript, the
    /// refusal, each tool call's arguments, the legacy function call's, the
    /// reasoning. Empty fragments are left out.
    pub fn texts(&self) -> impl Iterator<Item = &str> {
        let content: Box<dyn Iterator<Item = &str>> = match &self.content {
            Content::Text(t) => Box::new(std::iter::once(&**t)),
            Content::Parts(parts) => Box::new(parts.iter().filter_map(|p| match p {
                Part::Text(t) => Some(&**t),
                Part::Opaque(_) => None,
            })),
            Content::None | Content::Invalid => Box::new(std::iter::empty()),
        };
        content
            .chain(self.others().map(|(_, t)| t))
            .filter(|t| !t.is_empty())
    }

    /// The same, one fragment per field, with where each lives: the content
    /// as one fragment (its text parts joined with `"\n"`), then the rest.
    pub fn fragments(&self) -> Vec<(Target, Cow<'_, str>)> {
        let content = match &self.content {
            Content::Text(t) => Some(Cow::Borrowed(&**t)),
            Content::Parts(parts) => {
                let texts: Vec<&str> = parts
                    .iter()
                    .filter_map(|p| match p {
                        Part::Text(t) if !t.is_empty() => Some(&**t),
                        _ => None,
                    })
                    .collect();
                Some(Cow::Owned(texts.join("\n")))
            }
            Content::None | Content::Invalid => None,
        };
        content
            .map(|c| (Target::Content, c))
            .into_iter()
            .chain(self.others().map(|(k, t)| (k, Cow::Borrowed(t))))
            .filter(|(_, t)| !t.is_empty())
            .collect()
    }

    /// The text fields other than the content, in order.
    fn others(&self) -> impl Iterator<Item = (Target, &str)> {
        fn single<'s>(target: Target, t: &'s Option<Cow<'_, str>>) -> Option<(Target, &'s str)> {
            t.as_deref().map(|t| (target, t))
        }
        single(Target::Transcript, &self.transcript)
            .into_iter()
            .chain(single(Target::Refusal, &self.refusal))
            .chain(
                self.tool_calls
                    .iter()
                    .map(|t| (Target::Tool(t.index), &*t.text)),
            )
            .chain(single(Target::FunctionCall, &self.function_call))
            .chain(single(Target::Reasoning, &self.reasoning))
    }

    /// The types of the parts no guardrail can read.
    pub fn opaque_parts(&self) -> impl Iterator<Item = &str> {
        let parts = match &self.content {
            Content::Parts(p) => p.as_slice(),
            _ => &[],
        };
        parts.iter().filter_map(|p| match p {
            Part::Opaque(kind) => Some(&**kind),
            Part::Text(_) => None,
        })
    }

    /// Whether every text of this message is its plain string `content`
    /// (so a redacted text can replace it without losing anything).
    pub fn is_plain_text(&self) -> bool {
        matches!(self.content, Content::Text(_) | Content::None)
            && self.others().all(|(_, t)| t.is_empty())
    }
}

/// Decode one message (an object at nesting level `depth`).
pub fn decode_message(raw: &RawValue, depth: usize) -> serde_json::Result<ChatMessage<'_>> {
    let mut de = serde_json::Deserializer::from_str(raw.get());
    let fields = de.deserialize_map(MessageVisitor { depth })?;
    Ok(ChatMessage {
        raw,
        role_given: matches!(fields.role, Val::Str(_) | Val::Other),
        role: match fields.role {
            Val::Str(s) => Some(s),
            _ => None,
        },
        content: fields.content,
        refusal: fields.refusal,
        reasoning: fields.reasoning,
        tool_calls: fields.tool_calls,
        function_call: fields.function_call,
        transcript: fields.transcript,
        unread: fields.unread,
    })
}

#[derive(Default)]
struct MessageFields<'a> {
    role: Val<'a>,
    content: Content<'a>,
    refusal: Option<Cow<'a, str>>,
    reasoning: Option<Cow<'a, str>>,
    tool_calls: Vec<ToolText<'a>>,
    function_call: Option<Cow<'a, str>>,
    transcript: Option<Cow<'a, str>>,
    unread: Vec<String>,
}

struct MessageVisitor {
    /// The nesting level of the message object itself.
    depth: usize,
}

impl<'de> Visitor<'de> for MessageVisitor {
    type Value = MessageFields<'de>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a message object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        if self.depth > MAX_DEPTH {
            return Err(de::Error::custom(TOO_DEEP));
        }
        let depth = self.depth;
        let mut m = MessageFields::default();
        let mut seen = [false; 8];
        while let Some(Str(key)) = map.next_key::<Str>()? {
            match &*folded(&key) {
                "role" => {
                    once(&mut seen[0], &key)?;
                    m.role = map.next_value_seed(ValSeed { depth })?;
                }
                "content" => {
                    once(&mut seen[1], &key)?;
                    m.content = map.next_value_seed(ContentSeed {
                        depth,
                        unread: &mut m.unread,
                    })?;
                }
                "refusal" => {
                    once(&mut seen[2], &key)?;
                    m.refusal =
                        text_field(map.next_value_seed(ValSeed { depth })?, &key, &mut m.unread);
                }
                "reasoning_content" => {
                    once(&mut seen[3], &key)?;
                    m.reasoning =
                        text_field(map.next_value_seed(ValSeed { depth })?, &key, &mut m.unread);
                }
                "tool_calls" => {
                    once(&mut seen[4], &key)?;
                    map.next_value_seed(ToolCallsSeed {
                        depth,
                        out: &mut m.tool_calls,
                        unread: &mut m.unread,
                    })?;
                }
                "function_call" => {
                    once(&mut seen[5], &key)?;
                    let mut calls = vec![];
                    map.next_value_seed(CallSeed {
                        depth,
                        index: 0,
                        out: &mut calls,
                        unread: &mut m.unread,
                        what: "function_call",
                    })?;
                    m.function_call = calls.pop().map(|c| c.text);
                }
                "audio" => {
                    once(&mut seen[6], &key)?;
                    let v = map.next_value_seed(InnerSeed {
                        depth,
                        field: "transcript",
                    })?;
                    m.transcript = text_field(v, "audio.transcript", &mut m.unread);
                }
                "provider_specific_fields" => {
                    once(&mut seen[7], &key)?;
                    // An Anthropic answer's citations quote their sources
                    // (`cited_text`), which no guardrail reads.
                    let v = map.next_value_seed(InnerSeed {
                        depth,
                        field: "citations",
                    })?;
                    if !matches!(v, Val::Absent | Val::Null) {
                        m.unread
                            .push("'provider_specific_fields.citations' quotes text".into());
                    }
                }
                _ => map.next_value_seed(Checked { depth })?,
            }
        }
        Ok(m)
    }
}

/// A field the model reads as text: a string, null or absent; anything else
/// is recorded as unread.
fn text_field<'a>(v: Val<'a>, key: &str, unread: &mut Vec<String>) -> Option<Cow<'a, str>> {
    match v {
        Val::Str(s) => Some(s),
        Val::Absent | Val::Null => None,
        Val::Other => {
            unread.push(format!("'{key}' is not a string"));
            None
        }
    }
}

struct ContentSeed<'u> {
    depth: usize,
    unread: &'u mut Vec<String>,
}

impl<'de> DeserializeSeed<'de> for ContentSeed<'_> {
    type Value = Content<'de>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Content<'de>, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ContentSeed<'_> {
    type Value = Content<'de>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string, a list of content parts or null")
    }
    fn visit_unit<E>(self) -> Result<Content<'de>, E> {
        Ok(Content::None)
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Content<'de>, E> {
        Ok(Content::Text(Cow::Borrowed(v)))
    }
    fn visit_str<E>(self, v: &str) -> Result<Content<'de>, E> {
        Ok(Content::Text(Cow::Owned(v.to_owned())))
    }
    fn visit_bool<E>(self, _: bool) -> Result<Content<'de>, E> {
        Ok(Content::Invalid)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Content<'de>, E> {
        Ok(Content::Invalid)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Content<'de>, E> {
        Ok(Content::Invalid)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Content<'de>, E> {
        Ok(Content::Invalid)
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Content<'de>, A::Error> {
        Checked { depth: self.depth }.visit_map(map)?;
        Ok(Content::Invalid)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Content<'de>, A::Error> {
        let list = Checked { depth: self.depth }.enter()?;
        let mut parts = Vec::with_capacity(seq.size_hint().unwrap_or(2));
        let mut index = 0;
        while let Some(part) = seq.next_element_seed(PartSeed {
            depth: list.depth,
            index,
            unread: &mut *self.unread,
        })? {
            parts.extend(part);
            index += 1;
        }
        Ok(Content::Parts(parts))
    }
}

struct PartSeed<'u> {
    /// The nesting level of the parts list.
    depth: usize,
    index: usize,
    unread: &'u mut Vec<String>,
}

impl<'de> DeserializeSeed<'de> for PartSeed<'_> {
    type Value = Option<Part<'de>>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> PartSeed<'_> {
    fn not_understood(self, what: &str) -> Option<Part<'de>> {
        self.unread.push(format!("content[{}] {what}", self.index));
        None
    }
}

impl<'de> Visitor<'de> for PartSeed<'_> {
    type Value = Option<Part<'de>>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a content part")
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Some(Part::Text(Cow::Borrowed(v))))
    }
    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Some(Part::Text(Cow::Owned(v.to_owned()))))
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(self.not_understood("is null"))
    }
    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(self.not_understood("is not an object"))
    }
    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(self.not_understood("is not an object"))
    }
    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(self.not_understood("is not an object"))
    }
    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(self.not_understood("is not an object"))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        Checked { depth: self.depth }.visit_seq(seq)?;
        Ok(self.not_understood("is not an object"))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let depth = Checked { depth: self.depth }.enter()?.depth;
        let (mut kind, mut text, mut refusal) = (Val::Absent, Val::Absent, Val::Absent);
        let mut seen = [false; 3];
        while let Some(Str(key)) = map.next_key::<Str>()? {
            match &*folded(&key) {
                "type" => {
                    once(&mut seen[0], &key)?;
                    kind = map.next_value_seed(ValSeed { depth })?;
                }
                "text" => {
                    once(&mut seen[1], &key)?;
                    text = map.next_value_seed(ValSeed { depth })?;
                }
                "refusal" => {
                    once(&mut seen[2], &key)?;
                    refusal = map.next_value_seed(ValSeed { depth })?;
                }
                _ => map.next_value_seed(Checked { depth })?,
            }
        }
        let kind = match kind {
            Val::Str(k) => Some(k),
            Val::Absent | Val::Null => None,
            Val::Other => return Ok(self.not_understood("has a 'type' that is not a string")),
        };
        Ok(match (kind, text, refusal) {
            // Whatever its type, a string `text` is text the model reads.
            (_, Val::Str(t), _) => Some(Part::Text(t)),
            (Some(k), _, Val::Str(r)) if k == "refusal" => Some(Part::Text(r)),
            (Some(k), Val::Absent | Val::Null, _) if OPAQUE_PARTS.contains(&&*k) => {
                Some(Part::Opaque(k))
            }
            (Some(k), _, _) if TEXT_PARTS.contains(&&*k) || k == "refusal" => {
                self.not_understood(&format!("of type '{k}' has no string text"))
            }
            (Some(k), _, _) => {
                self.not_understood(&format!("has type '{k}', which no guardrail can read"))
            }
            (None, _, _) => self.not_understood("has neither a type nor a string 'text'"),
        })
    }
}

struct ToolCallsSeed<'o, 'a> {
    depth: usize,
    out: &'o mut Vec<ToolText<'a>>,
    unread: &'o mut Vec<String>,
}

impl<'de> DeserializeSeed<'de> for ToolCallsSeed<'_, 'de> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ToolCallsSeed<'_, 'de> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of tool calls")
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let depth = Checked { depth: self.depth }.enter()?.depth;
        let mut index = 0;
        while seq
            .next_element_seed(CallSeed {
                depth,
                index,
                out: &mut *self.out,
                unread: &mut *self.unread,
                what: "tool_calls",
            })?
            .is_some()
        {
            index += 1;
        }
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<(), A::Error> {
        Checked { depth: self.depth }.visit_map(map)?;
        self.unread.push("'tool_calls' is not a list".into());
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        self.unread.push("'tool_calls' is not a list".into());
        Ok(())
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        self.visit_str("")
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        self.visit_str("")
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        self.visit_str("")
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        self.visit_str("")
    }
}

/// One tool call (`{"function": {"arguments": ...}}` or `{"custom":
/// {"input": ...}}`), or the legacy `function_call` object itself.
struct CallSeed<'o, 'a> {
    /// The nesting level of the container the call is in.
    depth: usize,
    index: usize,
    out: &'o mut Vec<ToolText<'a>>,
    unread: &'o mut Vec<String>,
    /// `tool_calls` or `function_call`.
    what: &'static str,
}

impl<'de> DeserializeSeed<'de> for CallSeed<'_, 'de> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl CallSeed<'_, '_> {
    fn path(&self) -> String {
        if self.what == "function_call" {
            "'function_call'".into()
        } else {
            format!("'tool_calls[{}]'", self.index)
        }
    }

    fn not_an_object(self) {
        let path = self.path();
        self.unread.push(format!("{path} is not an object"));
    }
}

impl<'de> Visitor<'de> for CallSeed<'_, 'de> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a tool call")
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        if self.what != "function_call" {
            self.not_an_object();
        }
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        self.not_an_object();
        Ok(())
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        self.visit_str("")
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        self.visit_str("")
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        self.visit_str("")
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        self.visit_str("")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<(), A::Error> {
        Checked { depth: self.depth }.visit_seq(seq)?;
        self.not_an_object();
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let depth = Checked { depth: self.depth }.enter()?.depth;
        let legacy = self.what == "function_call";
        let mut texts: Vec<Val<'de>> = vec![];
        let mut seen = [false; 3];
        while let Some(Str(key)) = map.next_key::<Str>()? {
            match (&*key, legacy) {
                // The legacy function_call is itself {name, arguments}.
                ("arguments", true) => {
                    once(&mut seen[0], &key)?;
                    texts.push(map.next_value_seed(ValSeed { depth })?);
                }
                ("function", false) => {
                    once(&mut seen[1], &key)?;
                    texts.push(map.next_value_seed(InnerSeed {
                        depth,
                        field: "arguments",
                    })?);
                }
                ("custom", false) => {
                    once(&mut seen[2], &key)?;
                    texts.push(map.next_value_seed(InnerSeed {
                        depth,
                        field: "input",
                    })?);
                }
                _ => map.next_value_seed(Checked { depth })?,
            }
        }
        let path = self.path();
        for text in texts {
            match text {
                Val::Str(text) => self.out.push(ToolText {
                    index: self.index,
                    text,
                }),
                Val::Absent | Val::Null => {}
                Val::Other => self
                    .unread
                    .push(format!("{path} has text that is not a string")),
            }
        }
        Ok(())
    }
}

/// `function` (for `arguments`) or `custom` (for `input`) inside a tool
/// call: that field's value, the rest walked.
struct InnerSeed {
    depth: usize,
    field: &'static str,
}

impl<'de> DeserializeSeed<'de> for InnerSeed {
    type Value = Val<'de>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Val<'de>, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for InnerSeed {
    type Value = Val<'de>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object")
    }
    fn visit_unit<E>(self) -> Result<Val<'de>, E> {
        Ok(Val::Absent)
    }
    fn visit_str<E>(self, _: &str) -> Result<Val<'de>, E> {
        Ok(Val::Other)
    }
    fn visit_bool<E>(self, _: bool) -> Result<Val<'de>, E> {
        Ok(Val::Other)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Val<'de>, E> {
        Ok(Val::Other)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Val<'de>, E> {
        Ok(Val::Other)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Val<'de>, E> {
        Ok(Val::Other)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Val<'de>, A::Error> {
        Checked { depth: self.depth }.visit_seq(seq)?;
        Ok(Val::Other)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Val<'de>, A::Error> {
        let depth = Checked { depth: self.depth }.enter()?.depth;
        let mut found = Val::Absent;
        let mut seen = false;
        while let Some(Str(key)) = map.next_key::<Str>()? {
            if folded(&key) == self.field {
                once(&mut seen, &key)?;
                found = map.next_value_seed(ValSeed { depth })?;
            } else {
                map.next_value_seed(Checked { depth })?;
            }
        }
        Ok(found)
    }
}

#[cfg(test)]
mod tests;
