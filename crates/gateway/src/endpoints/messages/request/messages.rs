//! `system` and `messages`, block by block: what a model reads from each
//! ([`Block`], [`Source`]), where each block type may appear, and what no
//! guardrail can read.

use super::*;

pub(super) fn decode_system<'a>(
    raw: &'a RawValue,
    unread: &mut Vec<String>,
) -> Result<Option<System<'a>>, Error> {
    let mut de = serde_json::Deserializer::from_str(raw.get());
    // The body is level 1; `system` is in it.
    let content = ContentSeed { depth: 1 }
        .deserialize(&mut de)
        .map_err(|e| invalid(format!("system: {e}"), "system"))?;
    Ok(match content {
        RawContent::Absent | RawContent::Null => None,
        RawContent::Text(t) => Some(System::Text(t)),
        RawContent::Blocks(blocks) => {
            let mut out = Vec::with_capacity(blocks.len());
            for (j, b) in blocks.into_iter().enumerate() {
                // Only text is allowed there (see `Ctx::allows`).
                if let Block::Text { text, .. } =
                    block(b, Ctx::System, &|| format!("system.{j}"), unread)?
                {
                    out.push(text);
                }
            }
            Some(System::Blocks(out))
        }
        RawContent::Other => {
            return Err(wrong_type(
                "system",
                "a valid string or a list of text blocks",
            ));
        }
    })
}

pub(super) fn decode_messages<'a>(
    raw: &'a RawValue,
    unread: &mut Vec<String>,
) -> Result<Vec<Message<'a>>, Error> {
    let Ok(list) = serde_json::from_str::<Vec<&RawValue>>(raw.get()) else {
        message::check(raw.get(), 1).map_err(|e| invalid(format!("messages: {e}"), "messages"))?;
        return Err(wrong_type("messages", "a valid list"));
    };
    let mut out = Vec::with_capacity(list.len());
    for (i, raw) in list.into_iter().enumerate() {
        let mut de = serde_json::Deserializer::from_str(raw.get());
        // The body is level 1, `messages` 2; a message is in that list.
        let m = MessageSeed { depth: 2 }
            .deserialize(&mut de)
            .map_err(|e| invalid(format!("messages.{i}: {e}"), &format!("messages.{i}")))?;
        let Some(m) = m else {
            return Err(wrong_type(&format!("messages.{i}"), "a valid dictionary"));
        };
        let role = match m.role {
            Val::Str(r) if r == "user" => Role::User,
            Val::Str(r) if r == "assistant" => Role::Assistant,
            Val::Absent | Val::Null => return Err(missing(&format!("messages.{i}.role"))),
            _ => {
                let path = format!("messages.{i}.role");
                return Err(invalid(
                    format!("{path}: Input should be 'user' or 'assistant'"),
                    &path,
                ));
            }
        };
        let ctx = match role {
            Role::User => Ctx::User,
            Role::Assistant => Ctx::Assistant,
        };
        let content = match m.content {
            RawContent::Absent => return Err(missing(&format!("messages.{i}.content"))),
            RawContent::Text(t) => Content::Text(t),
            RawContent::Blocks(blocks) => {
                let mut list = Vec::with_capacity(blocks.len());
                for (j, b) in blocks.into_iter().enumerate() {
                    list.push(block(
                        b,
                        ctx,
                        &|| format!("messages.{i}.content.{j}"),
                        unread,
                    )?);
                }
                Content::Blocks(list)
            }
            RawContent::Null | RawContent::Other => {
                return Err(wrong_type(
                    &format!("messages.{i}.content"),
                    "a valid string or a list of content blocks",
                ));
            }
        };
        out.push(Message { role, content });
    }
    if out.is_empty() {
        return Err(invalid(
            "messages: List should have at least 1 item",
            "messages",
        ));
    }
    let last = out.len() - 1;
    for (i, m) in out.iter().enumerate() {
        let empty = matches!(&m.content, Content::Blocks(b) if b.is_empty());
        if empty && !(i == last && m.role == Role::Assistant) {
            let path = format!("messages.{i}");
            return Err(invalid(
                format!(
                    "{path}: all messages must have non-empty content except for the optional final assistant message"
                ),
                &path,
            ));
        }
    }
    Ok(out)
}

/// Where a block is, which decides what it may be.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Ctx {
    System,
    User,
    Assistant,
    ToolResult,
    DocumentContent,
}

impl Ctx {
    fn allows(self, kind: &str) -> bool {
        match kind {
            "text" => true,
            "image" => matches!(self, Ctx::User | Ctx::ToolResult | Ctx::DocumentContent),
            "document" => matches!(self, Ctx::User | Ctx::ToolResult),
            "tool_result" => self == Ctx::User,
            "tool_use" | "thinking" | "redacted_thinking" => self == Ctx::Assistant,
            // Unknown types are the upstream's to judge.
            _ => self != Ctx::System,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Ctx::System => "the system prompt",
            Ctx::User => "user messages",
            Ctx::Assistant => "assistant messages",
            Ctx::ToolResult => "tool results",
            Ctx::DocumentContent => "document content",
        }
    }
}

/// Interpret one decoded block at `path` (built only for an error).
fn block<'a>(
    raw: RawBlock<'a>,
    ctx: Ctx,
    path: &dyn Fn() -> String,
    unread: &mut Vec<String>,
) -> Result<Block<'a>, Error> {
    let f = match raw {
        RawBlock::Obj(f) => *f,
        RawBlock::Other => return Err(wrong_type(&path(), "a valid dictionary")),
    };
    let kind = match f.kind {
        Val::Str(k) => k,
        Val::Absent | Val::Null => return Err(missing(&format!("{}.type", path()))),
        _ => return Err(wrong_type(&format!("{}.type", path()), "a valid string")),
    };
    if !ctx.allows(&kind) {
        let p = path();
        return Err(invalid(
            format!("{p}: '{kind}' blocks are not allowed in {}", ctx.name()),
            &p,
        ));
    }
    let req_str = |v: Val<'a>, name: &str| -> Result<Cow<'a, str>, Error> {
        match v {
            Val::Str(s) => Ok(s),
            Val::Absent | Val::Null => Err(missing(&format!("{}.{name}", path()))),
            _ => Err(wrong_type(&format!("{}.{name}", path()), "a valid string")),
        }
    };
    let opt_str = |v: Val<'a>, name: &str| -> Result<Option<Cow<'a, str>>, Error> {
        match v {
            Val::Str(s) => Ok(Some(s)),
            Val::Absent | Val::Null => Ok(None),
            _ => Err(wrong_type(&format!("{}.{name}", path()), "a valid string")),
        }
    };
    Ok(match &*kind {
        "text" => {
            let text = req_str(f.text, "text")?;
            let cited = matches!(f.citations, Val::List(false) | Val::Obj);
            if cited {
                unread.push(format!("{}: a text block with citations", path()));
            }
            Block::Text { text, cited }
        }
        "image" => Block::Image(source(f.source, "image", path, unread)?),
        "document" => Block::Document {
            source: source(f.source, "document", path, unread)?,
            title: opt_str(f.title, "title")?,
            context: opt_str(f.context, "context")?,
        },
        "tool_use" => {
            let id = req_str(f.id, "id")?;
            let name = req_str(f.name, "name")?;
            let arguments = match f.input {
                RawInput::Object(json) => json,
                RawInput::Other => {
                    return Err(wrong_type(
                        &format!("{}.input", path()),
                        "a valid dictionary",
                    ));
                }
                RawInput::Absent => return Err(missing(&format!("{}.input", path()))),
            };
            Block::ToolUse {
                id,
                name,
                arguments,
            }
        }
        "tool_result" => {
            let tool_use_id = req_str(f.tool_use_id, "tool_use_id")?;
            let content = match f.content {
                RawContent::Absent | RawContent::Null => None,
                RawContent::Text(t) => Some(Content::Text(t)),
                RawContent::Blocks(blocks) => {
                    let mut list = Vec::with_capacity(blocks.len());
                    for (k, b) in blocks.into_iter().enumerate() {
                        let inner = || format!("{}.content.{k}", path());
                        list.push(block(b, Ctx::ToolResult, &inner, unread)?);
                    }
                    Some(Content::Blocks(list))
                }
                RawContent::Other => {
                    return Err(wrong_type(
                        &format!("{}.content", path()),
                        "a valid string or a list of content blocks",
                    ));
                }
            };
            if !matches!(f.is_error, Val::Absent | Val::Null | Val::Bool) {
                return Err(wrong_type(
                    &format!("{}.is_error", path()),
                    "a valid boolean",
                ));
            }
            Block::ToolResult {
                tool_use_id,
                content,
            }
        }
        "thinking" => Block::Thinking(req_str(f.thinking, "thinking")?),
        "redacted_thinking" => Block::RedactedThinking,
        _ => {
            unread.push(format!("{}: a block of type '{kind}'", path()));
            Block::Unknown(kind)
        }
    })
}

fn source<'a>(
    raw: RawSource<'a>,
    of: &str,
    path: &dyn Fn() -> String,
    unread: &mut Vec<String>,
) -> Result<Source<'a>, Error> {
    let p = || format!("{}.source", path());
    let f = match raw {
        RawSource::Absent => return Err(missing(&p())),
        RawSource::Other => return Err(wrong_type(&p(), "a valid dictionary")),
        RawSource::Obj(f) => *f,
    };
    let req_str = |v: Val<'a>, name: &str| -> Result<Cow<'a, str>, Error> {
        match v {
            Val::Str(s) => Ok(s),
            Val::Absent | Val::Null => Err(missing(&format!("{}.{name}", p()))),
            _ => Err(wrong_type(&format!("{}.{name}", p()), "a valid string")),
        }
    };
    let kind = req_str(f.kind, "type")?;
    Ok(match (&*kind, of) {
        ("base64", _) => Source::Base64 {
            media_type: req_str(f.media_type, "media_type")?,
            data: req_str(f.data, "data")?,
        },
        ("url", _) => Source::Url(req_str(f.url, "url")?),
        ("text", "document") => Source::Text(req_str(f.data, "data")?),
        ("content", "document") => match f.content {
            RawContent::Text(t) => Source::Content(Box::new(Content::Text(t))),
            RawContent::Blocks(blocks) => {
                let mut list = Vec::with_capacity(blocks.len());
                for (k, b) in blocks.into_iter().enumerate() {
                    let inner = || format!("{}.content.{k}", p());
                    list.push(block(b, Ctx::DocumentContent, &inner, unread)?);
                }
                if list.iter().any(|b| matches!(b, Block::Unknown(_))) {
                    // Only text and images are allowed in document content.
                    return Err(invalid(
                        format!("{}.content: only text and image blocks are allowed", p()),
                        &p(),
                    ));
                }
                Source::Content(Box::new(Content::Blocks(list)))
            }
            RawContent::Absent => return Err(missing(&format!("{}.content", p()))),
            RawContent::Null | RawContent::Other => {
                return Err(wrong_type(
                    &format!("{}.content", p()),
                    "a valid string or a list of content blocks",
                ));
            }
        },
        _ => Source::Other(kind),
    })
}
