//! The decoder under [`MessagesRequest::parse`]: seeds that read objects,
//! messages, content, blocks, sources and tool inputs in one pass, walk
//! what they do not keep with nesting bounded, and refuse repeated or
//! miscased keys.

use super::*;

/// The visitor methods for numbers and booleans, which a seed walks
/// without reading: each gives `$v`.
macro_rules! scalars {
    ($v:expr) => {
        fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
            Ok($v)
        }
        fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
            Ok($v)
        }
        fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
            Ok($v)
        }
        fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
            Ok($v)
        }
    };
}

/// A JSON object as an ordered list of (key, raw value), and the first key
/// that came twice in any spelling (refused by the caller: which of two
/// values a parser upstream keeps cannot be known).
pub(super) struct Fields<'a>(
    pub(super) Vec<(Cow<'a, str>, &'a RawValue)>,
    pub(super) Option<Cow<'a, str>>,
);

impl<'de> Deserialize<'de> for Fields<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Fields<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut out: Vec<(Cow<'de, str>, &'de RawValue)> = Vec::with_capacity(16);
                let mut repeated = None;
                while let Some(Str(key)) = map.next_key()? {
                    let value: &'de RawValue = map.next_value()?;
                    let name = folded(&key);
                    if repeated.is_none() && out.iter().any(|(k, _)| folded(k) == name) {
                        repeated = Some(key.clone());
                    }
                    out.push((key, value));
                }
                Ok(Fields(out, repeated))
            }
        }
        d.deserialize_map(V)
    }
}

/// The key of `names` that `key` is, in any spelling a case-insensitive
/// decoder would match; Err when it is that key spelled otherwise, or when
/// it was seen before.
fn slot<E: de::Error>(
    key: &str,
    names: &[&'static str],
    seen: &mut u32,
) -> Result<Option<usize>, E> {
    let name = folded(key);
    let Some(i) = names.iter().position(|n| *n == name) else {
        return Ok(None);
    };
    if key != names[i] {
        return Err(E::custom(miscased(key, names[i])));
    }
    if *seen & (1 << i) != 0 {
        return Err(E::custom(format_args!("duplicate key '{key}'")));
    }
    *seen |= 1 << i;
    Ok(Some(i))
}

// The walker of every value a seed does not keep (strings and keys
// decoded, so invalid Unicode is an error; nesting bounded): the one the
// chat decoder uses.
use crate::wire::json::Checked as Walk;

/// Any value, walked completely; kept when a string.
#[derive(Debug, Default)]
pub(super) enum Val<'a> {
    #[default]
    Absent,
    Null,
    Str(Cow<'a, str>),
    Bool,
    Num,
    /// A list; whether it is empty.
    List(bool),
    Obj,
}

#[derive(Clone, Copy)]
struct ValSeed {
    depth: usize,
}

impl<'de> DeserializeSeed<'de> for ValSeed {
    type Value = Val<'de>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Val<'de>, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ValSeed {
    type Value = Val<'de>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<Val<'de>, E> {
        Ok(Val::Bool)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Val<'de>, E> {
        Ok(Val::Num)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Val<'de>, E> {
        Ok(Val::Num)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Val<'de>, E> {
        Ok(Val::Num)
    }
    fn visit_unit<E>(self) -> Result<Val<'de>, E> {
        Ok(Val::Null)
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Val<'de>, E> {
        Ok(Val::Str(Cow::Borrowed(v)))
    }
    fn visit_str<E>(self, v: &str) -> Result<Val<'de>, E> {
        Ok(Val::Str(Cow::Owned(v.to_owned())))
    }
    fn visit_string<E>(self, v: String) -> Result<Val<'de>, E> {
        Ok(Val::Str(Cow::Owned(v)))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Val<'de>, A::Error> {
        let inner = Walk { depth: self.depth }.enter()?;
        let mut empty = true;
        while seq.next_element_seed(inner)?.is_some() {
            empty = false;
        }
        Ok(Val::List(empty))
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Val<'de>, A::Error> {
        Walk { depth: self.depth }.visit_map(map)?;
        Ok(Val::Obj)
    }
}

pub(super) struct RawMessage<'a> {
    pub(super) role: Val<'a>,
    pub(super) content: RawContent<'a>,
}

/// A message, or None when the value is not an object.
pub(super) struct MessageSeed {
    /// The nesting level of the list the message is in.
    pub(super) depth: usize,
}

impl<'de> DeserializeSeed<'de> for MessageSeed {
    type Value = Option<RawMessage<'de>>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for MessageSeed {
    type Value = Option<RawMessage<'de>>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a message")
    }
    scalars!(None);
    fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        Walk { depth: self.depth }.visit_seq(seq)?;
        Ok(None)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let depth = Walk { depth: self.depth }.enter()?.depth;
        let mut m = RawMessage {
            role: Val::Absent,
            content: RawContent::Absent,
        };
        let mut seen = 0;
        while let Some(Str(key)) = map.next_key::<Str>()? {
            match slot(&key, &["role", "content"], &mut seen)? {
                Some(0) => m.role = map.next_value_seed(ValSeed { depth })?,
                Some(_) => m.content = map.next_value_seed(ContentSeed { depth })?,
                None => map.next_value_seed(Walk { depth })?,
            }
        }
        Ok(Some(m))
    }
}

/// A content value: a string or a list of blocks.
#[derive(Default)]
pub(super) enum RawContent<'a> {
    #[default]
    Absent,
    Null,
    Text(Cow<'a, str>),
    Blocks(Vec<RawBlock<'a>>),
    /// Neither (walked).
    Other,
}

pub(super) struct ContentSeed {
    /// The nesting level of the object the content is in.
    pub(super) depth: usize,
}

impl<'de> DeserializeSeed<'de> for ContentSeed {
    type Value = RawContent<'de>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ContentSeed {
    type Value = RawContent<'de>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string or a list of content blocks")
    }
    scalars!(RawContent::Other);
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(RawContent::Null)
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(RawContent::Text(Cow::Borrowed(v)))
    }
    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(RawContent::Text(Cow::Owned(v.to_owned())))
    }
    fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
        Ok(RawContent::Text(Cow::Owned(v)))
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        Walk { depth: self.depth }.visit_map(map)?;
        Ok(RawContent::Other)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let depth = Walk { depth: self.depth }.enter()?.depth;
        // Not trusted for the capacity: a hostile hint costs nothing here,
        // but the list grows only with what was really read.
        let mut blocks = Vec::with_capacity(seq.size_hint().unwrap_or(2).min(64));
        while let Some(b) = seq.next_element_seed(BlockSeed { depth })? {
            blocks.push(b);
        }
        Ok(RawContent::Blocks(blocks))
    }
}

pub(super) enum RawBlock<'a> {
    Obj(Box<BlockFields<'a>>),
    /// Not an object (walked).
    Other,
}

/// The fields of a block a model may read, whatever its type (the type may
/// come last); every other field walked.
#[derive(Default)]
pub(super) struct BlockFields<'a> {
    pub(super) kind: Val<'a>,
    pub(super) text: Val<'a>,
    pub(super) id: Val<'a>,
    pub(super) name: Val<'a>,
    pub(super) input: RawInput,
    pub(super) content: RawContent<'a>,
    pub(super) tool_use_id: Val<'a>,
    pub(super) is_error: Val<'a>,
    pub(super) thinking: Val<'a>,
    pub(super) source: RawSource<'a>,
    pub(super) title: Val<'a>,
    pub(super) context: Val<'a>,
    pub(super) citations: Val<'a>,
}

const BLOCK_KEYS: &[&str] = &[
    "type",
    "text",
    "id",
    "name",
    "input",
    "content",
    "tool_use_id",
    "is_error",
    "thinking",
    "source",
    "title",
    "context",
    "citations",
    "signature",
    "data",
    "cache_control",
];

struct BlockSeed {
    /// The nesting level of the list the block is in.
    depth: usize,
}

impl<'de> DeserializeSeed<'de> for BlockSeed {
    type Value = RawBlock<'de>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for BlockSeed {
    type Value = RawBlock<'de>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a content block")
    }
    scalars!(RawBlock::Other);
    fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
        Ok(RawBlock::Other)
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(RawBlock::Other)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        Walk { depth: self.depth }.visit_seq(seq)?;
        Ok(RawBlock::Other)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let depth = Walk { depth: self.depth }.enter()?.depth;
        let mut f = BlockFields::default();
        let mut seen = 0;
        while let Some(Str(key)) = map.next_key::<Str>()? {
            let val = ValSeed { depth };
            match slot(&key, BLOCK_KEYS, &mut seen)? {
                Some(0) => f.kind = map.next_value_seed(val)?,
                Some(1) => f.text = map.next_value_seed(val)?,
                Some(2) => f.id = map.next_value_seed(val)?,
                Some(3) => f.name = map.next_value_seed(val)?,
                Some(4) => f.input = map.next_value_seed(InputSeed { depth })?,
                Some(5) => f.content = map.next_value_seed(ContentSeed { depth })?,
                Some(6) => f.tool_use_id = map.next_value_seed(val)?,
                Some(7) => f.is_error = map.next_value_seed(val)?,
                Some(8) => f.thinking = map.next_value_seed(val)?,
                Some(9) => f.source = map.next_value_seed(SourceSeed { depth })?,
                Some(10) => f.title = map.next_value_seed(val)?,
                Some(11) => f.context = map.next_value_seed(val)?,
                Some(12) => f.citations = map.next_value_seed(val)?,
                _ => map.next_value_seed(Walk { depth })?,
            }
        }
        Ok(RawBlock::Obj(Box::new(f)))
    }
}

#[derive(Default)]
pub(super) enum RawSource<'a> {
    #[default]
    Absent,
    Obj(Box<SourceFields<'a>>),
    /// Not an object (walked).
    Other,
}

#[derive(Default)]
pub(super) struct SourceFields<'a> {
    pub(super) kind: Val<'a>,
    pub(super) media_type: Val<'a>,
    pub(super) data: Val<'a>,
    pub(super) url: Val<'a>,
    pub(super) content: RawContent<'a>,
}

const SOURCE_KEYS: &[&str] = &["type", "media_type", "data", "url", "content", "file_id"];

struct SourceSeed {
    depth: usize,
}

impl<'de> DeserializeSeed<'de> for SourceSeed {
    type Value = RawSource<'de>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for SourceSeed {
    type Value = RawSource<'de>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a source object")
    }
    scalars!(RawSource::Other);
    fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
        Ok(RawSource::Other)
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(RawSource::Absent)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        Walk { depth: self.depth }.visit_seq(seq)?;
        Ok(RawSource::Other)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let depth = Walk { depth: self.depth }.enter()?.depth;
        let mut f = SourceFields::default();
        let mut seen = 0;
        while let Some(Str(key)) = map.next_key::<Str>()? {
            let val = ValSeed { depth };
            match slot(&key, SOURCE_KEYS, &mut seen)? {
                Some(0) => f.kind = map.next_value_seed(val)?,
                Some(1) => f.media_type = map.next_value_seed(val)?,
                Some(2) => f.data = map.next_value_seed(val)?,
                Some(3) => f.url = map.next_value_seed(val)?,
                Some(4) => f.content = map.next_value_seed(ContentSeed { depth })?,
                _ => map.next_value_seed(Walk { depth })?,
            }
        }
        Ok(RawSource::Obj(Box::new(f)))
    }
}

/// A tool_use `input`.
#[derive(Default)]
pub(super) enum RawInput {
    #[default]
    Absent,
    /// An object, as [`Block::ToolUse::arguments`] holds it.
    Object(String),
    /// Anything else (walked).
    Other,
}

struct InputSeed {
    /// The nesting level of the block the input is in.
    depth: usize,
}

impl<'de> DeserializeSeed<'de> for InputSeed {
    type Value = RawInput;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<RawInput, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for InputSeed {
    type Value = RawInput;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a tool input object")
    }
    scalars!(RawInput::Other);
    fn visit_str<E>(self, _: &str) -> Result<RawInput, E> {
        Ok(RawInput::Other)
    }
    fn visit_unit<E>(self) -> Result<RawInput, E> {
        Ok(RawInput::Other)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<RawInput, A::Error> {
        Walk { depth: self.depth }.visit_seq(seq)?;
        Ok(RawInput::Other)
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<RawInput, A::Error> {
        let mut out = Vec::with_capacity(64);
        Transcode {
            depth: self.depth,
            out: &mut out,
        }
        .visit_map(map)?;
        // Only strings and ASCII were written.
        String::from_utf8(out)
            .map(RawInput::Object)
            .map_err(de::Error::custom)
    }
}

/// Writes the value it walks as compact JSON, its strings decoded and
/// escaped again only where JSON needs it, in one pass; nesting bounded as
/// [`Walk`] bounds it. A repeated key is written twice: whichever one a
/// parser keeps, both were read.
struct Transcode<'o> {
    /// The nesting level of the container the value is in.
    depth: usize,
    out: &'o mut Vec<u8>,
}

impl<'de> DeserializeSeed<'de> for Transcode<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Transcode<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<(), E> {
        self.out
            .extend_from_slice(if v { b"true" } else { b"false" });
        Ok(())
    }
    fn visit_i64<E>(self, v: i64) -> Result<(), E> {
        self.out
            .extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
        Ok(())
    }
    fn visit_u64<E>(self, v: u64) -> Result<(), E> {
        self.out
            .extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
        Ok(())
    }
    fn visit_f64<E>(self, v: f64) -> Result<(), E> {
        // Writing a number into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *self.out, &v);
        Ok(())
    }
    fn visit_str<E>(self, v: &str) -> Result<(), E> {
        json_str(self.out, v);
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        self.out.extend_from_slice(b"null");
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let depth = Walk { depth: self.depth }.enter()?.depth;
        self.out.push(b'[');
        let mut first = true;
        loop {
            let at = self.out.len();
            if !first {
                self.out.push(b',');
            }
            let seed = Transcode {
                depth,
                out: &mut *self.out,
            };
            if seq.next_element_seed(seed)?.is_none() {
                self.out.truncate(at);
                break;
            }
            first = false;
        }
        self.out.push(b']');
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let depth = Walk { depth: self.depth }.enter()?.depth;
        self.out.push(b'{');
        let mut first = true;
        while let Some(Str(key)) = map.next_key::<Str>()? {
            if !std::mem::replace(&mut first, false) {
                self.out.push(b',');
            }
            json_str(self.out, &key);
            self.out.push(b':');
            map.next_value_seed(Transcode {
                depth,
                out: &mut *self.out,
            })?;
        }
        self.out.push(b'}');
        Ok(())
    }
}
