//! The Messages body's parts as they are written: content blocks,
//! messages, tools and their `input_schema`, `cache_control`.

use super::*;

/// A `cache_control` to send: the client's object, or LiteLLM's normalised
/// one on a mid-conversation system message.
#[derive(Clone, Copy)]
pub(super) enum Cache<'a> {
    Raw(&'a RawValue),
    Ephemeral(Option<&'static str>),
}

impl Serialize for Cache<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Cache::Raw(r) => r.serialize(s),
            Cache::Ephemeral(ttl) => {
                let mut m = s.serialize_map(None)?;
                m.serialize_entry("type", "ephemeral")?;
                if let Some(ttl) = ttl {
                    m.serialize_entry("ttl", ttl)?;
                }
                m.end()
            }
        }
    }
}

/// LiteLLM's `_cache_control`: only `ephemeral`, only the known TTLs.
pub(super) fn normalized_cache(raw: Option<&RawValue>) -> Option<Cache<'static>> {
    #[derive(Deserialize)]
    struct Cc<'a> {
        #[serde(rename = "type", borrow, default)]
        kind: Option<Cow<'a, str>>,
        #[serde(borrow, default)]
        ttl: Option<&'a RawValue>,
    }
    let cc: Cc<'_> = serde_json::from_str(raw?.get()).ok()?;
    if cc.kind.as_deref() != Some("ephemeral") {
        return None;
    }
    let ttl = match cc.ttl.map(RawValue::get) {
        Some("\"1h\"") => Some("1h"),
        Some("\"5m\"") => Some("5m"),
        _ => None,
    };
    Some(Cache::Ephemeral(ttl))
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(super) enum Source<'a> {
    Url {
        url: Cow<'a, str>,
    },
    Base64 {
        media_type: Cow<'a, str>,
        data: Cow<'a, str>,
    },
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(super) enum Block<'a> {
    Text {
        text: Txt<'a>,
        #[serde(skip_serializing_if = "Option::is_none")]
        cache_control: Option<Cache<'a>>,
    },
    Image {
        source: Source<'a>,
        #[serde(skip_serializing_if = "Option::is_none")]
        cache_control: Option<Cache<'a>>,
    },
    Document {
        source: DocSource<'a>,
        #[serde(skip_serializing_if = "Option::is_none")]
        title: Option<&'a RawValue>,
        #[serde(skip_serializing_if = "Option::is_none")]
        context: Option<&'a RawValue>,
        #[serde(skip_serializing_if = "Option::is_none")]
        citations: Option<&'a RawValue>,
        #[serde(skip_serializing_if = "Option::is_none")]
        cache_control: Option<Cache<'a>>,
    },
    ToolUse {
        id: Cow<'a, str>,
        name: Cow<'a, str>,
        input: Box<RawValue>,
        #[serde(skip_serializing_if = "Option::is_none")]
        cache_control: Option<Cache<'a>>,
    },
    ToolResult {
        tool_use_id: Cow<'a, str>,
        content: ToolResultContent<'a>,
        #[serde(skip_serializing_if = "Option::is_none")]
        cache_control: Option<Cache<'a>>,
    },
    Thinking {
        thinking: Cow<'a, str>,
        signature: Cow<'a, str>,
    },
    RedactedThinking {
        data: Cow<'a, str>,
    },
    ToolReference {
        tool_name: &'a RawValue,
    },
}

#[derive(Serialize)]
#[serde(untagged)]
pub(super) enum DocSource<'a> {
    Built(Source<'a>),
    /// A `document` part's own source, as sent.
    Raw(&'a RawValue),
}

#[derive(Serialize)]
#[serde(untagged)]
pub(super) enum ToolResultContent<'a> {
    Text(Txt<'a>),
    Blocks(Vec<Block<'a>>),
}

#[derive(Serialize)]
pub(super) struct OutMessage<'a> {
    pub(super) role: &'static str,
    pub(super) content: Vec<Block<'a>>,
}

#[derive(Serialize)]
#[serde(untagged)]
pub(super) enum Tool<'a> {
    Custom {
        name: Cow<'a, str>,
        input_schema: InputSchema<'a>,
        #[serde(rename = "type")]
        kind: &'static str,
        #[serde(skip_serializing_if = "Option::is_none")]
        description: Option<&'a RawValue>,
        #[serde(skip_serializing_if = "Option::is_none")]
        cache_control: Option<&'a RawValue>,
    },
    /// A tool the client wrote in Anthropic's shape: its known fields.
    Native {
        name: Cow<'a, str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        description: Option<&'a RawValue>,
        input_schema: &'a RawValue,
        #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
        kind: Option<Cow<'a, str>>,
        #[serde(skip_serializing_if = "Option::is_none")]
        cache_control: Option<&'a RawValue>,
    },
    /// `response_format` as a tool (LiteLLM writes no `type`).
    Json {
        name: &'static str,
        input_schema: Value,
    },
    /// A hosted tool (web search).
    Value(Value),
}

/// A tool's `input_schema`.
pub(super) enum InputSchema<'a> {
    /// The client's entries as sent, filtered; `type` and `properties`
    /// supplied when missing.
    Entries(Vec<(Cow<'a, str>, &'a RawValue)>, bool, bool),
    /// Rebuilt (legacy `definitions`, the dummy tool).
    Value(Value),
}

impl Serialize for InputSchema<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            InputSchema::Value(v) => v.serialize(s),
            InputSchema::Entries(entries, add_type, add_properties) => {
                let mut m = s.serialize_map(None)?;
                for (k, v) in entries {
                    if k == "type" {
                        m.serialize_entry("type", "object")?;
                    } else {
                        m.serialize_entry(&**k, v)?;
                    }
                }
                if *add_type {
                    m.serialize_entry("type", "object")?;
                }
                if *add_properties {
                    m.serialize_entry("properties", &Map::new())?;
                }
                m.end()
            }
        }
    }
}
