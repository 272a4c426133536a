//! The walker every decoded value goes through: strings decoded (so
//! invalid Unicode is an error), keys decoded and read as the most lenient
//! decoder upstream reads them ([`folded`]), nesting bounded ([`MAX_DEPTH`]).
//! [`message`](super::message) and [`completion`](super::completion) decode
//! what a model reads with it; everything else is walked by it.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

/// The deepest nesting of arrays and objects accepted anywhere in a request
/// body (the body itself is level 1). Real chat requests need about 10 (a
/// tool's JSON schema a few more); past this the request is refused.
pub const MAX_DEPTH: usize = 64;

pub(crate) const TOO_DEEP: &str = "the JSON is nested deeper than 64 levels";

/// Walk a whole JSON value at nesting level `depth` (0 for a document):
/// every string decoded (so invalid Unicode is an error), nesting bounded.
pub fn check(raw: &str, depth: usize) -> serde_json::Result<()> {
    let mut de = serde_json::Deserializer::from_str(raw);
    Checked { depth }.deserialize(&mut de)?;
    de.end()
}

/// Visits a value completely: strings decoded, keys decoded, nesting checked.
#[derive(Clone, Copy)]
pub(crate) struct Checked {
    /// The nesting level of the container this value is in.
    pub(crate) depth: usize,
}

impl Checked {
    pub(crate) fn enter<E: de::Error>(self) -> Result<Checked, E> {
        if self.depth + 1 > MAX_DEPTH {
            return Err(E::custom(TOO_DEEP));
        }
        Ok(Checked {
            depth: self.depth + 1,
        })
    }
}

impl<'de> DeserializeSeed<'de> for Checked {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Checked {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let inner = self.enter()?;
        while seq.next_element_seed(inner)?.is_some() {}
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let inner = self.enter()?;
        while map.next_key_seed(KeySeed)?.is_some() {
            map.next_value_seed(inner)?;
        }
        Ok(())
    }
}

/// A key, decoded and dropped.
pub(crate) struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_str(Checked { depth: 0 })
    }
}

/// A string borrowed from the input when it has no escapes.
pub struct Str<'a>(pub Cow<'a, str>);

impl<'de> serde::Deserialize<'de> for Str<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Str<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Str(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Str(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Str(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V)
    }
}

/// Any value, walked completely; its string kept when it is one.
#[derive(Debug, Default)]
pub(crate) enum Val<'a> {
    #[default]
    Absent,
    Null,
    Str(Cow<'a, str>),
    Other,
}

#[derive(Clone, Copy)]
pub(crate) struct ValSeed {
    pub(crate) depth: usize,
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
    fn visit_unit<E>(self) -> Result<Val<'de>, E> {
        Ok(Val::Null)
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Val<'de>, E> {
        Ok(Val::Str(Cow::Borrowed(v)))
    }
    fn visit_str<E>(self, v: &str) -> Result<Val<'de>, E> {
        Ok(Val::Str(Cow::Owned(v.to_owned())))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Val<'de>, A::Error> {
        Checked { depth: self.depth }.visit_seq(seq)?;
        Ok(Val::Other)
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Val<'de>, A::Error> {
        Checked { depth: self.depth }.visit_map(map)?;
        Ok(Val::Other)
    }
}

/// A key as the most lenient decoder upstream matches it: Go's
/// encoding/json (behind some OpenAI-compatible servers) takes `Content` or
/// `CONTENT` for `content`, folding ASCII case and the two non-ASCII letters
/// that fold onto ASCII ones (`ſ` onto `s`, the Kelvin sign onto `k`). So a
/// read key is recognised in any of those spellings, and two of them in one
/// object are a repeated key.
pub fn folded(key: &str) -> Cow<'_, str> {
    if key.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') {
        return Cow::Borrowed(key);
    }
    Cow::Owned(
        key.chars()
            .map(|c| match c {
                '\u{17F}' => 's',
                '\u{212A}' => 'k',
                c => c.to_ascii_lowercase(),
            })
            .collect(),
    )
}

/// Reject a second occurrence of a key whose value is read: a JSON parser
/// upstream may keep either one, and the guardrail must have read the one
/// the model gets.
pub(crate) fn once<E: de::Error>(seen: &mut bool, key: &str) -> Result<(), E> {
    if std::mem::replace(seen, true) {
        return Err(E::custom(format_args!("duplicate key '{key}'")));
    }
    Ok(())
}
