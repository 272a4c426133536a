//! The OpenAI body as the translation reads it: the top level in one pass
//! (`messages` and `tools` decoded in place, every other field kept as raw
//! JSON), message text kept as its JSON token ([`Txt`]) until something
//! must look inside.

use super::*;

/// The body, read in one pass: `messages` and `tools` decoded in place,
/// every other field left as raw JSON, in order.
pub(super) struct Body<'a> {
    pub(super) fields: Vec<(Cow<'a, str>, &'a RawValue)>,
    pub(super) messages: Option<Vec<InMessage<'a>>>,
    pub(super) tools: Option<Vec<InTool<'a>>>,
}

impl<'de> Deserialize<'de> for Body<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Body<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut body = Body {
                    fields: Vec::with_capacity(8),
                    messages: None,
                    tools: None,
                };
                while let Some(Str(key)) = map.next_key()? {
                    match &*key {
                        "messages" => body.messages = map.next_value()?,
                        "tools" => body.tools = map.next_value()?,
                        _ => {
                            let value: &'de RawValue = map.next_value()?;
                            match body.fields.iter_mut().find(|(k, _)| *k == key) {
                                Some(slot) => slot.1 = value,
                                None => body.fields.push((key, value)),
                            }
                        }
                    }
                }
                Ok(body)
            }
        }
        d.deserialize_map(V)
    }
}

/// A tool: OpenAI's `{type, function}`, or Anthropic's own shape (with
/// `input_schema`).
#[derive(Deserialize)]
pub(super) struct InTool<'a> {
    #[serde(rename = "type", borrow, default)]
    pub(super) kind: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub(super) function: Option<InToolFunction<'a>>,
    #[serde(borrow, default)]
    pub(super) name: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub(super) description: Option<&'a RawValue>,
    #[serde(borrow, default)]
    pub(super) input_schema: Option<&'a RawValue>,
    #[serde(borrow, default)]
    pub(super) cache_control: Option<&'a RawValue>,
}

#[derive(Deserialize)]
pub(super) struct InToolFunction<'a> {
    #[serde(borrow, default)]
    pub(super) name: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub(super) description: Option<&'a RawValue>,
    #[serde(borrow, default)]
    pub(super) parameters: Option<Schema<'a>>,
    #[serde(borrow, default)]
    pub(super) cache_control: Option<&'a RawValue>,
}

/// A JSON schema's top-level entries, values left as raw JSON: the schema is
/// copied, not rebuilt. Not an object: no entries.
pub(super) struct Schema<'a>(pub(super) Vec<(Cow<'a, str>, &'a RawValue)>);

impl<'de: 'a, 'a> Deserialize<'de> for Schema<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Schema<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON schema")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut out: Vec<(Cow<'a, str>, &'a RawValue)> = Vec::with_capacity(4);
                while let Some(Str(key)) = map.next_key()? {
                    let value: &'de RawValue = map.next_value()?;
                    match out.iter_mut().find(|(k, _)| *k == key) {
                        Some(slot) => slot.1 = value,
                        None => out.push((key, value)),
                    }
                }
                Ok(Schema(out))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Schema(vec![]))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
                Ok(Schema(vec![]))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
                Ok(Schema(vec![]))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
                Ok(Schema(vec![]))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
                Ok(Schema(vec![]))
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
                Ok(Schema(vec![]))
            }
            fn visit_seq<S: SeqAccess<'de>>(self, mut seq: S) -> Result<Self::Value, S::Error> {
                while seq.next_element::<de::IgnoredAny>()?.is_some() {}
                Ok(Schema(vec![]))
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

#[derive(Deserialize)]
pub(super) struct InMessage<'a> {
    #[serde(borrow, default)]
    role: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    content: Content<'a>,
    #[serde(borrow, default)]
    tool_calls: Option<Vec<InToolCall<'a>>>,
    #[serde(borrow, default)]
    tool_call_id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    function_call: Option<InFunction<'a>>,
    #[serde(borrow, default)]
    cache_control: Option<&'a RawValue>,
    #[serde(borrow, default)]
    thinking_blocks: Option<Vec<InThinking<'a>>>,
    #[serde(borrow, default)]
    prefix: Option<&'a RawValue>,
}

#[derive(Deserialize)]
pub(super) struct InToolCall<'a> {
    #[serde(borrow, default)]
    pub(super) id: Option<Cow<'a, str>>,
    #[serde(rename = "type", borrow, default)]
    pub(super) kind: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub(super) function: Option<InFunction<'a>>,
    #[serde(borrow, default)]
    pub(super) cache_control: Option<&'a RawValue>,
}

#[derive(Deserialize)]
pub(super) struct InFunction<'a> {
    #[serde(borrow, default)]
    pub(super) name: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub(super) arguments: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
pub(super) struct InThinking<'a> {
    #[serde(rename = "type", borrow, default)]
    pub(super) kind: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub(super) thinking: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub(super) signature: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub(super) data: Option<Cow<'a, str>>,
}

#[derive(Deserialize, Default)]
pub(super) struct InPart<'a> {
    #[serde(rename = "type", borrow, default)]
    pub(super) kind: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub(super) text: Option<&'a RawValue>,
    /// The text of a part that was a bare string.
    #[serde(skip)]
    pub(super) bare: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub(super) image_url: Option<InImageUrl<'a>>,
    #[serde(borrow, default)]
    pub(super) file: Option<InFile<'a>>,
    #[serde(borrow, default)]
    pub(super) cache_control: Option<&'a RawValue>,
    #[serde(borrow, default)]
    pub(super) thinking: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub(super) signature: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub(super) tool_name: Option<&'a RawValue>,
    /// A `document` part, already in Anthropic's shape.
    #[serde(borrow, default)]
    pub(super) source: Option<&'a RawValue>,
    #[serde(borrow, default)]
    pub(super) title: Option<&'a RawValue>,
    #[serde(borrow, default)]
    pub(super) context: Option<&'a RawValue>,
    #[serde(borrow, default)]
    pub(super) citations: Option<&'a RawValue>,
}

/// Text as it arrived: the JSON string token, written back as it came and
/// decoded only when the translation must look inside (a long prompt is
/// neither unescaped nor escaped again), or text decoded already.
#[derive(Clone)]
pub(super) enum Txt<'a> {
    Raw(&'a RawValue),
    Str(Cow<'a, str>),
}

impl<'a> Txt<'a> {
    pub(super) fn decode(&self) -> Cow<'a, str> {
        match self {
            Txt::Raw(raw) => serde_json::from_str::<Str<'a>>(raw.get())
                .map(|s| s.0)
                .unwrap_or_default(),
            Txt::Str(s) => s.clone(),
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        match self {
            Txt::Raw(raw) => raw.get() == "\"\"",
            Txt::Str(s) => s.is_empty(),
        }
    }

    /// Whitespace only (LiteLLM's `not text.strip()`). Decided on the JSON
    /// itself: the first plain character that is not whitespace settles
    /// it, without decoding a long text.
    pub(super) fn is_blank(&self) -> bool {
        let raw = match self {
            Txt::Raw(raw) => raw.get(),
            Txt::Str(s) => return s.trim().is_empty(),
        };
        let inner = raw.get(1..raw.len().saturating_sub(1)).unwrap_or("");
        let mut bytes = inner.bytes();
        while let Some(b) = bytes.next() {
            match b {
                b'\\' => match bytes.next() {
                    Some(b'n' | b'r' | b't' | b'f') => {}
                    // `\"`, `\\`, `\/` are text; `\u` may be anything.
                    Some(b'u') => return self.decode().trim().is_empty(),
                    _ => return false,
                },
                b if b.is_ascii_whitespace() => {}
                // Unicode has spaces beyond ASCII.
                b if !b.is_ascii() => return self.decode().trim().is_empty(),
                _ => return false,
            }
        }
        true
    }
}

impl Serialize for Txt<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Txt::Raw(raw) => raw.serialize(s),
            Txt::Str(t) => s.serialize_str(t),
        }
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
pub(super) enum InImageUrl<'a> {
    Url(#[serde(borrow)] Cow<'a, str>),
    Object {
        #[serde(borrow)]
        url: Cow<'a, str>,
        #[serde(borrow, default)]
        format: Option<Cow<'a, str>>,
    },
}

#[derive(Deserialize)]
pub(super) struct InFile<'a> {
    #[serde(borrow, default)]
    pub(super) file_data: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub(super) file_id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub(super) format: Option<Cow<'a, str>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Role {
    System,
    User,
    Assistant,
    Tool,
    Function,
}

impl Role {
    /// Merged into one user turn.
    pub(super) fn user_type(self) -> bool {
        matches!(self, Role::User | Role::Tool | Role::Function)
    }
}

#[derive(Default)]
pub(super) enum Content<'a> {
    #[default]
    None,
    Text(Txt<'a>),
    /// The parts; a bare string is a text part.
    Parts(Vec<InPart<'a>>),
}

/// `content`: a string kept as sent, a list of parts, or null.
impl<'de: 'a, 'a> Deserialize<'de> for Content<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw: &'de RawValue = Deserialize::deserialize(d)?;
        let text = raw.get();
        if text.starts_with('"') {
            return Ok(Content::Text(Txt::Raw(raw)));
        }
        if text == "null" {
            return Ok(Content::None);
        }
        if text.starts_with('[') {
            let parts: Vec<PartIn<'a>> = serde_json::from_str(text).map_err(de::Error::custom)?;
            return Ok(Content::Parts(parts.into_iter().map(|p| p.0).collect()));
        }
        Err(de::Error::custom(
            "invalid type: 'content' must be a string, an array or null",
        ))
    }
}

/// A content part: an object, or a bare string (a text part).
struct PartIn<'a>(InPart<'a>);

impl<'de: 'a, 'a> Deserialize<'de> for PartIn<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = PartIn<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a content part")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(PartIn(InPart::text(Cow::Borrowed(v))))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(PartIn(InPart::text(Cow::Owned(v.to_owned()))))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(PartIn(InPart::text(Cow::Owned(v))))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                InPart::deserialize(de::value::MapAccessDeserializer::new(map)).map(PartIn)
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

impl<'a> InPart<'a> {
    fn text(text: Cow<'a, str>) -> Self {
        InPart {
            kind: Some(Cow::Borrowed("text")),
            bare: Some(text),
            ..InPart::default()
        }
    }
}

impl Content<'_> {
    /// Python's falsiness: absent, `""` or `[]`.
    pub(super) fn is_empty(&self) -> bool {
        match self {
            Content::None => true,
            Content::Text(t) => t.is_empty(),
            Content::Parts(p) => p.is_empty(),
        }
    }
}

pub(super) struct Msg<'a> {
    pub(super) role: Role,
    pub(super) content: Content<'a>,
    /// `tool_calls` was present (even empty): the history has tool blocks.
    pub(super) has_tool_calls: bool,
    pub(super) tool_calls: Vec<InToolCall<'a>>,
    pub(super) tool_call_id: Option<Cow<'a, str>>,
    pub(super) function_call: Option<InFunction<'a>>,
    pub(super) cache_control: Option<&'a RawValue>,
    pub(super) thinking_blocks: Vec<InThinking<'a>>,
    pub(super) prefix: bool,
}

pub(super) fn parse_messages(list: Vec<InMessage<'_>>) -> Result<Vec<Msg<'_>>, Error> {
    let mut out = Vec::with_capacity(list.len());
    for (i, m) in list.into_iter().enumerate() {
        let role = match m.role.as_deref() {
            Some("system" | "developer") => Role::System,
            Some("user") => Role::User,
            Some("assistant") => Role::Assistant,
            Some("tool") => Role::Tool,
            Some("function") => Role::Function,
            Some(other) => {
                return Err(bad_request(format_args!(
                    "Invalid Message passed in: messages[{i}] has role '{other}'"
                )));
            }
            None => {
                return Err(Error::invalid(
                    format!("Invalid request body: messages[{i}] needs a 'role'"),
                    Some("messages"),
                ));
            }
        };
        out.push(Msg {
            role,
            content: m.content,
            has_tool_calls: m.tool_calls.is_some(),
            tool_calls: m.tool_calls.unwrap_or_default(),
            tool_call_id: m.tool_call_id,
            function_call: m.function_call,
            cache_control: m.cache_control.filter(|c| is_object(c)),
            thinking_blocks: m.thinking_blocks.unwrap_or_default(),
            prefix: m.prefix.is_some_and(|p| p.get() == "true"),
        });
    }
    Ok(out)
}

pub(super) fn is_object(raw: &RawValue) -> bool {
    raw.get().starts_with('{')
}

/// A string value, or an error naming the field.
pub(super) fn string<'a>(raw: &'a RawValue, name: &str) -> Result<Cow<'a, str>, Error> {
    serde_json::from_str::<Str>(raw.get())
        .map(|s| s.0)
        .map_err(|_| Error::invalid(format!("'{name}' must be a string"), Some(name)))
}

pub(super) fn value(raw: &RawValue, name: &str) -> Result<Value, Error> {
    serde_json::from_str(raw.get())
        .map_err(|e| Error::invalid(format!("Invalid request body: '{name}': {e}"), Some(name)))
}
