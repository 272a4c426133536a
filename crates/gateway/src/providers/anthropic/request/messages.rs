//! System and messages: the leading system prompt, mid-conversation
//! system messages placed for the model, and the conversation as
//! Anthropic's alternating turns (text, tool calls and results, thinking
//! blocks, placeholders).

use super::*;

/// A part's text, when it is a string.
fn part_text<'m>(part: &'m InPart<'_>) -> Option<Txt<'m>> {
    if let Some(bare) = &part.bare {
        return Some(Txt::Str(Cow::Borrowed(bare)));
    }
    part.text.filter(|t| t.get().starts_with('"')).map(Txt::Raw)
}

fn fixed(text: &'static str) -> Txt<'static> {
    Txt::Str(Cow::Borrowed(text))
}

fn text<'a>(text: Txt<'a>, cache_control: Option<Cache<'a>>) -> Block<'a> {
    Block::Text {
        text,
        cache_control,
    }
}

fn placeholder<'a>(cache_control: Option<&'a RawValue>) -> Block<'a> {
    text(fixed(EMPTY_TEXT_PLACEHOLDER), cache_control.map(Cache::Raw))
}

fn raw_cache(raw: Option<&RawValue>) -> Option<Cache<'_>> {
    raw.filter(|c| is_object(c)).map(Cache::Raw)
}

/// The leading system run's blocks (LiteLLM's `translate_system_message`).
pub(super) fn system_blocks<'m>(m: &'m Msg<'_>, out: &mut Vec<Block<'m>>) -> Result<(), Error> {
    match &m.content {
        Content::None => {}
        Content::Text(t) if t.is_empty() => {}
        Content::Text(t) => out.push(text(t.clone(), raw_cache(m.cache_control))),
        Content::Parts(parts) => {
            for p in parts {
                if p.kind.as_deref() != Some("text") {
                    return Err(Error::invalid(
                        "a system message may only contain text parts",
                        Some("messages"),
                    ));
                }
                match part_text(p) {
                    Some(t) if !t.is_empty() => out.push(text(t, raw_cache(p.cache_control))),
                    _ => {}
                }
            }
        }
    }
    Ok(())
}

/// A mid-conversation system message's non-empty text parts, each with
/// its `cache_control` in the one shape Anthropic takes.
fn system_text_parts<'m>(m: &'m Msg<'_>) -> Vec<(Txt<'m>, Option<Cache<'static>>)> {
    match &m.content {
        Content::Text(t) if !t.is_empty() => vec![(t.clone(), normalized_cache(m.cache_control))],
        Content::Parts(parts) => parts
            .iter()
            .filter(|p| p.kind.as_deref() == Some("text"))
            .filter_map(|p| {
                part_text(p)
                    .filter(|t| !t.is_empty())
                    .map(|t| (t, normalized_cache(p.cache_control)))
            })
            .collect(),
        _ => vec![],
    }
}

/// A conversation entry once mid-conversation system messages are placed.
pub(super) enum Turn<'m, 'a> {
    Msg(&'m Msg<'a>),
    /// A system message as a user turn: the operator note, then its text.
    SystemAsUser(&'m Msg<'a>),
    /// System messages kept as one, for models that accept them there.
    System(Vec<&'m Msg<'a>>),
}

impl Turn<'_, '_> {
    fn user_type(&self) -> bool {
        match self {
            Turn::Msg(m) => m.role.user_type(),
            Turn::SystemAsUser(_) => true,
            Turn::System(_) => false,
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    System,
    Tool,
    User,
    Other,
}

fn kind(m: &Msg<'_>) -> Kind {
    match m.role {
        Role::System => Kind::System,
        Role::Tool | Role::Function => Kind::Tool,
        Role::User => Kind::User,
        Role::Assistant => Kind::Other,
    }
}

/// Consecutive messages of one kind, as index ranges.
fn runs_by<T: PartialEq>(
    msgs: &[Msg<'_>],
    key: impl Fn(&Msg<'_>) -> T,
) -> Vec<(T, std::ops::Range<usize>)> {
    let mut runs: Vec<(T, std::ops::Range<usize>)> = vec![];
    for (i, m) in msgs.iter().enumerate() {
        let k = key(m);
        match runs.last_mut() {
            Some((last, range)) if *last == k => range.end = i + 1,
            _ => runs.push((k, i..i + 1)),
        }
    }
    runs
}

/// Models that refuse `system` inside `messages`: every system message
/// becomes a user turn in place (LiteLLM's
/// `_converted_for_unflagged_model`), after the tool results it sits
/// before, so `tool_result` blocks still open their turn.
pub(super) fn place_system_converted<'m, 'a>(conv: &'m [Msg<'a>]) -> Vec<Turn<'m, 'a>> {
    let runs = runs_by(conv, kind);
    let converted = |range: &std::ops::Range<usize>| {
        conv[range.clone()]
            .iter()
            .filter(|m| !system_text_parts(m).is_empty())
            .map(Turn::SystemAsUser)
            .collect::<Vec<_>>()
    };
    let mut out = Vec::with_capacity(conv.len());
    for (i, (k, range)) in runs.iter().enumerate() {
        let follower = runs.get(i + 1).map(|(k, _)| *k);
        match k {
            Kind::System if follower == Some(Kind::Tool) => {}
            Kind::System => out.extend(converted(range)),
            Kind::Tool if i > 0 && runs[i - 1].0 == Kind::System => {
                out.extend(conv[range.clone()].iter().map(Turn::Msg));
                out.extend(converted(&runs[i - 1].1));
            }
            _ => out.extend(conv[range.clone()].iter().map(Turn::Msg)),
        }
    }
    out
}

/// Models that accept `system` inside `messages` (LiteLLM's
/// `_placed_for_flagged_model`): a system run after a user turn stays after
/// that turn; one after an assistant turn moves behind the user turn that
/// follows; one that ends the conversation or precedes an assistant turn
/// becomes user turns in place. Runs that land on one turn merge.
pub(super) fn place_system_kept<'m, 'a>(conv: &'m [Msg<'a>]) -> Vec<Turn<'m, 'a>> {
    if !conv.iter().any(|m| m.role == Role::System) {
        return conv.iter().map(Turn::Msg).collect();
    }
    // User-type blocks and assistant blocks, system messages left out.
    let mut block_of = vec![usize::MAX; conv.len()];
    let mut blocks: Vec<(bool, Vec<usize>)> = vec![];
    for (i, m) in conv.iter().enumerate() {
        if m.role == Role::System {
            continue;
        }
        let user = m.role.user_type();
        match blocks.last_mut() {
            Some((u, idx)) if *u == user => idx.push(i),
            _ => blocks.push((user, vec![i])),
        }
        block_of[i] = blocks.len() - 1;
    }
    let system_runs: Vec<std::ops::Range<usize>> = runs_by(conv, |m| m.role == Role::System)
        .into_iter()
        .filter(|(s, _)| *s)
        .map(|(_, r)| r)
        .collect();
    let mut anchored: Vec<(usize, std::ops::Range<usize>)> = vec![];
    let mut converted_after: Vec<(usize, std::ops::Range<usize>)> = vec![];
    for run in system_runs {
        let anchor = run.start.checked_sub(1).and_then(|prev| {
            let neighbour = if conv[prev].role.user_type() {
                prev
            } else {
                run.end
            };
            conv.get(neighbour)
                .filter(|m| m.role.user_type())
                .map(|_| block_of[neighbour])
        });
        match (anchor, run.start.checked_sub(1)) {
            (Some(b), _) => anchored.push((b, run)),
            (None, Some(prev)) => converted_after.push((prev, run)),
            // Not possible after the leading run is split off; keep it
            // rather than lose it.
            (None, None) => converted_after.push((usize::MAX, run)),
        }
    }
    let mut out = Vec::with_capacity(conv.len() + 2);
    for (run_at, run) in &converted_after {
        if *run_at == usize::MAX {
            out.extend(
                conv[run.clone()]
                    .iter()
                    .filter(|m| !system_text_parts(m).is_empty())
                    .map(Turn::SystemAsUser),
            );
        }
    }
    for (b, (user, idx)) in blocks.iter().enumerate() {
        for &i in idx {
            out.push(Turn::Msg(&conv[i]));
            for (_, run) in converted_after.iter().filter(|(at, _)| *at == i) {
                out.extend(
                    conv[run.clone()]
                        .iter()
                        .filter(|m| !system_text_parts(m).is_empty())
                        .map(Turn::SystemAsUser),
                );
            }
        }
        if *user {
            let kept: Vec<&Msg<'a>> = anchored
                .iter()
                .filter(|(a, _)| *a == b)
                .flat_map(|(_, run)| conv[run.clone()].iter())
                .filter(|m| !system_text_parts(m).is_empty())
                .collect();
            if !kept.is_empty() {
                out.push(Turn::System(kept));
            }
        }
    }
    out
}

/// LiteLLM's `anthropic_messages_pt`: user-type turns merged, assistant
/// turns merged, tool calls and results, images, placeholders.
pub(super) fn convert<'m>(
    turns: &[Turn<'m, '_>],
    forward: &[(String, String)],
) -> Result<Vec<OutMessage<'m>>, Error> {
    let mut out: Vec<OutMessage<'m>> = Vec::with_capacity(turns.len());
    let n = turns.len();
    let mut i = 0;
    while i < n {
        let start = i;
        let mut user: Vec<Block<'m>> = vec![];
        while i < n && turns[i].user_type() {
            match &turns[i] {
                Turn::SystemAsUser(m) => {
                    user.push(text(fixed(CONVERTED_SYSTEM_NOTE), None));
                    for (t, cc) in system_text_parts(m) {
                        user.push(text(t, cc));
                    }
                }
                Turn::Msg(m) if m.role == Role::User => {
                    user_content(m, tool_result_follows(turns, i), &mut user)?;
                }
                Turn::Msg(m) => user.push(tool_result(m)?),
                Turn::System(_) => {}
            }
            i += 1;
        }
        if !user.is_empty() {
            out.push(OutMessage {
                role: "user",
                content: user,
            });
        } else if let Some(m) = turns[start..i].iter().rev().find_map(|t| match t {
            Turn::Msg(m) if m.role == Role::User && m.content.is_empty() => Some(m),
            _ => None,
        }) {
            out.push(OutMessage {
                role: "user",
                content: vec![placeholder(m.cache_control)],
            });
        }

        let mut assistant: Vec<Block<'m>> = vec![];
        let mut ids: Vec<String> = vec![];
        while let Some(Turn::Msg(m)) = turns.get(i)
            && m.role == Role::Assistant
        {
            assistant_content(m, forward, &mut assistant, &mut ids)?;
            i += 1;
        }
        if !assistant.is_empty() {
            out.push(OutMessage {
                role: "assistant",
                content: assistant,
            });
        }

        while let Some(Turn::System(msgs)) = turns.get(i) {
            let content = msgs
                .iter()
                .flat_map(|m| system_text_parts(m))
                .map(|(t, cc)| text(t, cc))
                .collect();
            out.push(OutMessage {
                role: "system",
                content,
            });
            i += 1;
        }
        if i == start {
            // Every turn kind is consumed above; this guards the loop.
            return Err(bad_request("Invalid Message passed in"));
        }
    }
    // Anthropic refuses trailing whitespace in a final assistant turn.
    if let Some(last) = out.last_mut()
        && last.role == "assistant"
    {
        for b in &mut last.content {
            if let Block::Text { text, .. } = b {
                let decoded = text.decode();
                let trimmed = decoded.trim_end();
                if trimmed.len() != decoded.len() {
                    *text = Txt::Str(Cow::Owned(trimmed.to_owned()));
                }
            }
        }
    }
    Ok(out)
}

/// A client tool result comes later in the same user turn, so an empty user
/// message needs no cache breakpoint placeholder.
fn tool_result_follows(turns: &[Turn<'_, '_>], i: usize) -> bool {
    turns[i + 1..]
        .iter()
        .take_while(|t| t.user_type())
        .any(|t| matches!(t, Turn::Msg(m) if matches!(m.role, Role::Tool | Role::Function)))
}

fn user_content<'m>(
    m: &'m Msg<'_>,
    tool_result_follows: bool,
    out: &mut Vec<Block<'m>>,
) -> Result<(), Error> {
    match &m.content {
        Content::Text(t) if t.is_blank() => out.push(placeholder(m.cache_control)),
        Content::Text(t) => out.push(text(t.clone(), raw_cache(m.cache_control))),
        Content::None => {
            if !tool_result_follows && m.cache_control.is_some() {
                out.push(placeholder(m.cache_control));
            }
        }
        Content::Parts(parts) if parts.is_empty() => {
            if !tool_result_follows && m.cache_control.is_some() {
                out.push(placeholder(m.cache_control));
            }
        }
        Content::Parts(parts) => {
            for p in parts {
                let cc = raw_cache(p.cache_control);
                match p.kind.as_deref() {
                    Some("text") => match part_text(p) {
                        Some(t) if !t.is_blank() => out.push(text(t, cc)),
                        _ => out.push(text(fixed(EMPTY_TEXT_PLACEHOLDER), cc)),
                    },
                    Some("image_url") => {
                        let Some(url) = &p.image_url else {
                            return Err(Error::invalid(
                                "an image_url part needs an 'image_url'",
                                Some("messages"),
                            ));
                        };
                        out.push(image(url, cc, false)?);
                    }
                    Some("document") => out.push(document(p, cc)?),
                    Some("file") => out.push(file(p, cc)?),
                    // LiteLLM leaves out parts Anthropic has no place for
                    // (audio, ...).
                    _ => {}
                }
            }
        }
    }
    Ok(())
}

/// A `tool` (or legacy `function`) message as a `tool_result` block.
fn tool_result<'m>(m: &'m Msg<'_>) -> Result<Block<'m>, Error> {
    let id = match (&m.tool_call_id, m.role) {
        (Some(id), _) => sanitize_id(id),
        (None, Role::Function) => Cow::Owned(uuid::Uuid::new_v4().to_string()),
        (None, _) => {
            return Err(Error::invalid(
                "a tool message needs a 'tool_call_id'",
                Some("messages"),
            ));
        }
    };
    let content = match &m.content {
        Content::None => ToolResultContent::Text(fixed("")),
        Content::Text(t) => ToolResultContent::Text(t.clone()),
        Content::Parts(parts) => {
            let mut blocks = Vec::with_capacity(parts.len());
            for p in parts {
                let cc = p
                    .cache_control
                    .filter(|c| c.get() != "null")
                    .map(Cache::Raw);
                match p.kind.as_deref() {
                    Some("text") => {
                        let Some(t) = part_text(p) else {
                            return Err(Error::invalid(
                                "a text part needs a string 'text'",
                                Some("messages"),
                            ));
                        };
                        blocks.push(text(t, cc));
                    }
                    Some("image_url") => {
                        let Some(url) = &p.image_url else {
                            return Err(Error::invalid(
                                "an image_url part needs an 'image_url'",
                                Some("messages"),
                            ));
                        };
                        blocks.push(image(url, cc, true)?);
                    }
                    Some("file") => blocks.push(file(p, cc)?),
                    Some("tool_reference") => {
                        if let Some(name) = p.tool_name {
                            blocks.push(Block::ToolReference { tool_name: name });
                        }
                    }
                    _ => {}
                }
            }
            ToolResultContent::Blocks(blocks)
        }
    };
    Ok(Block::ToolResult {
        tool_use_id: id,
        content,
        cache_control: raw_cache(m.cache_control),
    })
}

fn assistant_content<'m>(
    m: &'m Msg<'_>,
    forward: &[(String, String)],
    out: &mut Vec<Block<'m>>,
    ids: &mut Vec<String>,
) -> Result<(), Error> {
    let inline_thinking = matches!(&m.content, Content::Parts(parts)
        if parts.iter().any(|p| matches!(p.kind.as_deref(), Some("thinking" | "redacted_thinking"))));
    if !inline_thinking {
        // Only signed thinking goes back: Anthropic verifies the signature,
        // so a client cannot put words there the model did not write.
        for t in &m.thinking_blocks {
            match (t.kind.as_deref(), &t.signature, &t.data) {
                (Some("thinking"), Some(sig), _) if !sig.is_empty() => out.push(Block::Thinking {
                    thinking: Cow::Borrowed(t.thinking.as_deref().unwrap_or("")),
                    signature: Cow::Borrowed(sig),
                }),
                (Some("redacted_thinking"), _, Some(data)) => {
                    out.push(Block::RedactedThinking {
                        data: Cow::Borrowed(data),
                    });
                }
                _ => {}
            }
        }
    }
    match &m.content {
        Content::Parts(parts) => {
            for p in parts {
                match p.kind.as_deref() {
                    Some("thinking") => {
                        if let Some(sig) = p.signature.as_deref().filter(|s| !s.is_empty()) {
                            out.push(Block::Thinking {
                                thinking: Cow::Borrowed(p.thinking.as_deref().unwrap_or("")),
                                signature: Cow::Borrowed(sig),
                            });
                        }
                    }
                    Some("text") => {
                        let t = part_text(p)
                            .filter(|t| !t.is_blank())
                            .unwrap_or(fixed(EMPTY_TEXT_PLACEHOLDER));
                        out.push(text(t, raw_cache(p.cache_control)));
                    }
                    _ => {}
                }
            }
        }
        Content::Text(t) if t.is_blank() => out.push(placeholder(m.cache_control)),
        Content::Text(t) => out.push(text(t.clone(), raw_cache(m.cache_control))),
        Content::None => {}
    }
    let sent_name = |name: &'m str| -> Cow<'m, str> {
        match forward.iter().find(|(o, _)| o == name) {
            Some((_, s)) => Cow::Owned(s.clone()),
            None => Cow::Borrowed(name),
        }
    };
    for call in &m.tool_calls {
        if call.kind.as_deref().is_some_and(|k| k != "function") {
            continue;
        }
        let Some(id) = &call.id else {
            return Err(Error::invalid(
                "a tool call needs an 'id'",
                Some("messages"),
            ));
        };
        let Some(f) = &call.function else {
            return Err(Error::invalid(
                "a tool call needs a 'function'",
                Some("messages"),
            ));
        };
        let Some(name) = &f.name else {
            return Err(Error::invalid(
                "a tool call needs a function name",
                Some("messages"),
            ));
        };
        let id = sanitize_id(id);
        if ids.iter().any(|i| *i == id) {
            continue;
        }
        ids.push(id.to_string());
        out.push(Block::ToolUse {
            id,
            name: sent_name(name),
            input: arguments(f.arguments.as_deref(), name)?,
            cache_control: raw_cache(call.cache_control),
        });
    }
    if let Some(f) = &m.function_call {
        let name = f.name.as_deref().unwrap_or("");
        out.push(Block::ToolUse {
            id: Cow::Owned(uuid::Uuid::new_v4().to_string()),
            name: sent_name(name),
            input: arguments(f.arguments.as_deref(), name)?,
            cache_control: None,
        });
    }
    Ok(())
}

/// Tool call arguments, parsed: `{}` when empty, a 400 when not JSON.
fn arguments(args: Option<&str>, name: &str) -> Result<Box<RawValue>, Error> {
    let args = args
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .unwrap_or("{}");
    RawValue::from_string(args.to_owned())
        .ok()
        .filter(|_| serde_json::from_str::<serde::de::IgnoredAny>(args).is_ok())
        .ok_or_else(|| {
            bad_request(format_args!(
                "Failed to parse tool call arguments for tool '{name}': the arguments are not valid JSON"
            ))
        })
}

/// A tool use id in Anthropic's alphabet (`^[a-zA-Z0-9_-]+$`).
fn sanitize_id(id: &str) -> Cow<'_, str> {
    if !id.is_empty()
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Cow::Borrowed(id);
    }
    let s: String = id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    Cow::Owned(if s.is_empty() {
        "tool_use_id".to_owned()
    } else {
        s
    })
}
