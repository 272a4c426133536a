//! Cato Networks AI Security (Aim's successor): same endpoints, verdicts and
//! websocket frames as Aim, its own payload (docs/spec/aim.md section 8, after
//! LiteLLM's `cato_networks` hook).
//!
//! - Input: every chat message 1:1 with its fields (`tool_calls`,
//!   `tool_call_id`, `name`, ...), only list `content` flattened to text, no
//!   role coercion, nothing dropped; then synthetic messages for the other
//!   text the model reads: the Responses `input`, `instructions` (system), a
//!   legacy `prompt` (user), and every schema string of `tools[].function`,
//!   `functions[]` and `response_format` (system).
//! - Anonymize maps the redactions back by index; a batch of another size
//!   is a 400.
//! - Output: one check per text fragment of each choice, in sequence; the
//!   redaction is read at the index just past the inspected input.

use serde_json::{Map, Value};

use crate::error::Error;
use crate::wire::chat::{ChatRequest, write_with_content};
use crate::wire::message::{Content, Part, Target};

use super::inspect::{Conversation, cannot_rewrite};

const SCALAR_KEYS: [&str; 4] = ["description", "title", "const", "default"];
const LIST_KEYS: [&str; 2] = ["enum", "examples"];

const SIZE_MISMATCH: &str =
    "Cato: anonymize action returned a redacted batch of a different size than the inspected input";

/// The synthetic sources, in LiteLLM's order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Source {
    Input,
    Instructions,
    Prompt,
    Schema,
}

/// Cato's inspection list for a request, and where each entry came from.
pub struct Payload {
    /// The JSON of each entry.
    entries: Vec<Vec<u8>>,
    /// The text each entry carried (its `content`; None for null).
    contents: Vec<Option<String>>,
    /// How many entries are chat messages (the rest are synthetic).
    messages: usize,
    /// The synthetic sources and how many entries each gave.
    sources: Vec<(Source, usize)>,
}

impl Payload {
    /// How many entries the payload has (the output checks' assistant
    /// entry goes at this index).
    pub fn entries(&self) -> usize {
        self.entries.len()
    }

    /// `{"messages": [entries..., extra]}`
    pub fn body(&self, extra: Option<&Value>) -> Vec<u8> {
        let size: usize = self.entries.iter().map(|e| e.len() + 1).sum();
        let mut out = Vec::with_capacity(size + 64);
        out.extend_from_slice(b"{\"messages\":[");
        for (i, e) in self.entries.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(e);
        }
        if let Some(extra) = extra {
            if !self.entries.is_empty() {
                out.push(b',');
            }
            // Serialising a Value into a Vec cannot fail.
            let _ = serde_json::to_writer(&mut out, extra);
        }
        out.extend_from_slice(b"]}");
        out
    }
}

/// Build the payload from the request as the guardrails now see it.
pub fn payload(req: &ChatRequest, conv: &Conversation) -> Payload {
    let mut entries = Vec::with_capacity(conv.messages.len());
    let mut contents = Vec::with_capacity(conv.messages.len());
    for (i, m) in conv.messages.iter().enumerate() {
        let mut entry = Vec::with_capacity(m.raw.get().len());
        let content = match (&conv.rewritten[i], &m.content) {
            (Some(new), _) => Some(new.clone()),
            (None, Content::Parts(parts)) => Some(part_text(parts)),
            (None, Content::Text(t)) => Some(t.to_string()),
            (None, Content::None | Content::Invalid) => None,
        };
        match &content {
            Some(text) if conv.rewritten[i].is_some() || matches!(m.content, Content::Parts(_)) => {
                write_with_content(&mut entry, m.raw, text);
            }
            _ => entry.extend_from_slice(m.raw.get().as_bytes()),
        }
        entries.push(entry);
        contents.push(content);
    }
    let messages = entries.len();
    let mut sources = vec![];
    for (source, texts) in synthetic(req, conv) {
        sources.push((source, texts.len()));
        for (role, text) in texts {
            let entry = serde_json::json!({"role": role, "content": text});
            entries.push(serde_json::to_vec(&entry).unwrap_or_default());
            contents.push(Some(text));
        }
    }
    Payload {
        entries,
        contents,
        messages,
        sources,
    }
}

/// The text parts of a content list, joined (LiteLLM's flatten of one message).
fn part_text(parts: &[Part]) -> String {
    let texts: Vec<&str> = parts
        .iter()
        .filter_map(|p| match p {
            Part::Text(t) if !t.is_empty() => Some(&**t),
            _ => None,
        })
        .collect();
    texts.join("\n")
}

/// A top-level field as the guardrails now see it (after a rewrite).
fn field(req: &ChatRequest, conv: &Conversation, name: &str) -> Option<Value> {
    if let Some((_, bytes)) = conv.fields.iter().find(|(k, _)| *k == name) {
        return serde_json::from_slice(bytes).ok();
    }
    // Walked when the request was parsed: this cannot fail.
    serde_json::from_str(req.field(name)?.get()).ok()
}

/// The synthetic messages, per source, in LiteLLM's order.
fn synthetic(req: &ChatRequest, conv: &Conversation) -> Vec<(Source, Vec<(String, String)>)> {
    let mut out = vec![];
    if let Some(input) = field(req, conv, "input") {
        let texts = input_messages(&input);
        if !texts.is_empty() {
            out.push((Source::Input, texts));
        }
    }
    if let Some(Value::String(s)) = field(req, conv, "instructions")
        && !s.is_empty()
    {
        out.push((Source::Instructions, vec![("system".to_owned(), s)]));
    }
    let prompt: Vec<(String, String)> = match field(req, conv, "prompt") {
        Some(Value::String(s)) if !s.is_empty() => vec![("user".to_owned(), s)],
        Some(Value::Array(items)) => items
            .into_iter()
            .filter_map(|v| match v {
                Value::String(s) if !s.is_empty() => Some(("user".to_owned(), s)),
                _ => None,
            })
            .collect(),
        _ => vec![],
    };
    if !prompt.is_empty() {
        out.push((Source::Prompt, prompt));
    }
    let mut schema = vec![];
    let roots = schema_roots(req, conv);
    walk_schema_strings(&roots, |s| schema.push(("system".to_owned(), s.to_owned())));
    if !schema.is_empty() {
        out.push((Source::Schema, schema));
    }
    out
}

/// The Responses API `input` lifted to role-tagged text, as LiteLLM does
/// (roles as given, defaulting by item kind).
fn input_messages(input: &Value) -> Vec<(String, String)> {
    let mut items: Vec<(&str, &Value)> = vec![];
    match input {
        Value::String(_) => items.push(("user", input)),
        Value::Array(list) => {
            for item in list {
                match item {
                    Value::String(_) => items.push(("user", item)),
                    Value::Object(o) => {
                        let role = |default| {
                            o.get("role")
                                .and_then(Value::as_str)
                                .filter(|r| !r.is_empty())
                                .unwrap_or(default)
                        };
                        if matches!(o.get("text"), Some(Value::String(t)) if !t.is_empty()) {
                            items.push((role("user"), item));
                        } else if o.get("type").and_then(Value::as_str) == Some("reasoning") {
                            if let Some(c) = o.get("content") {
                                items.push((role("assistant"), c));
                            }
                            if let Some(s @ Value::Array(_)) = o.get("summary") {
                                items.push((role("assistant"), s));
                            }
                        } else if let Some(c) = o.get("content") {
                            items.push((role("user"), c));
                        } else if matches!(
                            o.get("type").and_then(Value::as_str),
                            Some("function_call_output" | "custom_tool_call_output")
                        ) && let Some(c) = o.get("output")
                        {
                            items.push((role("tool"), c));
                        }
                    }
                    _ => {}
                }
            }
        }
        _ => {}
    }
    items
        .into_iter()
        .filter_map(|(role, v)| {
            let text = value_text(v);
            (!text.is_empty()).then(|| (role.to_owned(), text))
        })
        .collect()
}

/// The text of a content value: a string, or the text parts of a list.
fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Object(o) => match o.get("text") {
            Some(Value::String(t)) => t.clone(),
            _ => String::new(),
        },
        Value::Array(items) => items
            .iter()
            .filter_map(|p| match p {
                Value::String(s) if !s.is_empty() => Some(s.as_str()),
                Value::Object(o) => o
                    .get("text")
                    .and_then(Value::as_str)
                    .filter(|t| !t.is_empty()),
                _ => None,
            })
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

/// `tools[].function`, `functions[]` and `response_format`, in that order.
fn schema_roots(req: &ChatRequest, conv: &Conversation) -> Vec<Value> {
    let mut roots = vec![];
    if let Some(Value::Array(tools)) = field(req, conv, "tools") {
        roots.extend(tools.into_iter().filter_map(|t| match t {
            Value::Object(mut o) => match o.remove("function") {
                Some(f @ Value::Object(_)) => Some(f),
                _ => None,
            },
            _ => None,
        }));
    }
    if let Some(Value::Array(functions)) = field(req, conv, "functions") {
        roots.extend(functions.into_iter().filter(Value::is_object));
    }
    if let Some(rf @ Value::Object(_)) = field(req, conv, "response_format") {
        roots.push(rf);
    }
    roots
}

/// Every non-empty schema string under `roots`, depth first in document
/// order: a node's `description`, `title`, `const`, `default`, then its
/// `enum` and `examples` items, then its children.
fn walk_schema_strings(roots: &[Value], mut visit: impl FnMut(&str)) {
    let mut stack: Vec<&Value> = roots.iter().rev().collect();
    while let Some(node) = stack.pop() {
        match node {
            Value::Object(o) => {
                for key in SCALAR_KEYS {
                    if let Some(Value::String(s)) = o.get(key)
                        && !s.is_empty()
                    {
                        visit(s);
                    }
                }
                for key in LIST_KEYS {
                    if let Some(Value::Array(items)) = o.get(key) {
                        for item in items {
                            if let Value::String(s) = item
                                && !s.is_empty()
                            {
                                visit(s);
                            }
                        }
                    }
                }
                stack.extend(o.values().rev());
            }
            Value::Array(items) => stack.extend(items.iter().rev()),
            _ => {}
        }
    }
}

/// The same walk, replacing each string with the next of `new` (None keeps it).
fn replace_schema_strings(
    roots: &mut [&mut Value],
    new: &mut impl Iterator<Item = Option<String>>,
) {
    fn node(v: &mut Value, new: &mut dyn Iterator<Item = Option<String>>) {
        match v {
            Value::Object(o) => {
                for key in SCALAR_KEYS {
                    if let Some(Value::String(s)) = o.get_mut(key)
                        && !s.is_empty()
                        && let Some(Some(r)) = new.next()
                    {
                        *s = r;
                    }
                }
                for key in LIST_KEYS {
                    if let Some(Value::Array(items)) = o.get_mut(key) {
                        for item in items {
                            if let Value::String(s) = item
                                && !s.is_empty()
                                && let Some(Some(r)) = new.next()
                            {
                                *s = r;
                            }
                        }
                    }
                }
                for child in o.values_mut() {
                    node(child, new);
                }
            }
            Value::Array(items) => {
                for child in items {
                    node(child, new);
                }
            }
            _ => {}
        }
    }
    for root in roots {
        node(root, new);
    }
}

/// `redacted_chat.all_redacted_messages` as each entry's content (None for
/// null), or None when malformed.
pub fn redacted_contents(redacted: Option<&Value>) -> Option<Vec<Option<String>>> {
    let list = redacted?.get("all_redacted_messages")?.as_array()?;
    if list.is_empty() {
        return None;
    }
    list.iter()
        .map(|entry| match entry.as_object()?.get("content") {
            None | Some(Value::Null) => Some(None),
            Some(Value::String(s)) => Some(Some(s.clone())),
            Some(_) => None,
        })
        .collect()
}

/// Apply an input anonymize verdict to the conversation (and, through
/// `conv.fields`, to the synthetic sources' fields).
pub fn apply(
    req: &ChatRequest,
    conv: &mut Conversation,
    payload: &Payload,
    redacted: Vec<Option<String>>,
) -> Result<(), Error> {
    if redacted.len() != payload.entries() {
        return Err(cannot_rewrite(SIZE_MISMATCH, "request"));
    }
    let changed = |at: usize| match (&redacted[at], &payload.contents[at]) {
        (Some(new), Some(old)) => new != old,
        (Some(new), None) => !new.is_empty(),
        (None, _) => false,
    };
    for (i, m) in conv.messages.iter().enumerate().take(payload.messages) {
        if !changed(i) {
            continue;
        }
        if m.opaque_parts().next().is_some() {
            return Err(Error::invalid(
                "Cato: anonymize action requested for multimodal input but mask-in-place would drop non-text parts. Send the request with plain string content to use anonymize, or rely on block-mode policies.",
                None,
            ));
        }
        conv.rewritten[i] = redacted[i].clone();
    }
    let mut at = payload.messages;
    for &(source, count) in &payload.sources {
        let range = at..at + count;
        at += count;
        if !range.clone().any(changed) {
            continue;
        }
        let new: Vec<Option<String>> = redacted[range].to_vec();
        match source {
            Source::Instructions => set_field(
                conv,
                "instructions",
                &Value::String(new[0].clone().unwrap_or_default()),
            ),
            Source::Prompt => {
                let mut news = new.into_iter();
                let prompt = match field(req, conv, "prompt") {
                    Some(Value::String(s)) => Value::String(news.next().flatten().unwrap_or(s)),
                    Some(Value::Array(items)) => Value::Array(
                        items
                            .into_iter()
                            .map(|v| match v {
                                Value::String(s) if !s.is_empty() => {
                                    Value::String(news.next().flatten().unwrap_or(s))
                                }
                                other => other,
                            })
                            .collect(),
                    ),
                    _ => return Err(cannot_rewrite(SIZE_MISMATCH, "request")),
                };
                set_field(conv, "prompt", &prompt);
            }
            Source::Schema => {
                let mut tools = field(req, conv, "tools");
                let mut functions = field(req, conv, "functions");
                let mut response_format = field(req, conv, "response_format");
                let mut roots: Vec<&mut Value> = vec![];
                if let Some(Value::Array(list)) = &mut tools {
                    for t in list.iter_mut() {
                        if let Some(f @ Value::Object(_)) = t.get_mut("function") {
                            roots.push(f);
                        }
                    }
                }
                if let Some(Value::Array(list)) = &mut functions {
                    roots.extend(list.iter_mut().filter(|v| v.is_object()));
                }
                if let Some(rf @ Value::Object(_)) = &mut response_format {
                    roots.push(rf);
                }
                replace_schema_strings(&mut roots, &mut new.into_iter());
                for (name, value) in [
                    ("tools", tools),
                    ("functions", functions),
                    ("response_format", response_format),
                ] {
                    if let Some(v) = value {
                        set_field(conv, name, &v);
                    }
                }
            }
            // A chat request with a Responses `input` is not rewritten: the
            // gateway forwards chat completions, and a redacted `input`
            // could not be placed without guessing.
            Source::Input => {
                return Err(cannot_rewrite(
                    "Cato: anonymize action redacted the Responses `input`",
                    "request",
                ));
            }
        }
    }
    Ok(())
}

fn set_field(conv: &mut Conversation, name: &'static str, value: &Value) {
    let bytes = serde_json::to_vec(value).unwrap_or_default();
    match conv.fields.iter_mut().find(|(k, _)| *k == name) {
        Some(slot) => slot.1 = bytes,
        None => conv.fields.push((name, bytes)),
    }
}

/// Write a redacted fragment back into a choice's `message` object. Refused
/// where the redaction cannot replace what the client would read: content
/// parts, audio (whose sound says what the transcript says) or logprobs
/// (which repeat the text token by token).
pub fn write_back(
    message: &mut Map<String, Value>,
    target: Target,
    text: String,
    logprobs: bool,
) -> Result<(), Error> {
    let refuse = |what: &str| {
        Err(cannot_rewrite(
            &format!("anonymize action requested for output {what}"),
            "response",
        ))
    };
    if logprobs {
        return refuse("that carries logprobs");
    }
    match target {
        Target::Content => {
            if !matches!(message.get("content"), Some(Value::String(_))) {
                return refuse("whose content is a list of parts");
            }
            message.insert("content".into(), Value::String(text));
        }
        Target::Tool(i) => {
            let call = message
                .get_mut("tool_calls")
                .and_then(|c| c.get_mut(i))
                .and_then(Value::as_object_mut);
            let Some(call) = call else {
                return refuse("whose tool calls changed shape");
            };
            if let Some(Value::Object(f)) = call.get_mut("function") {
                f.insert("arguments".into(), Value::String(text));
            } else if let Some(Value::Object(c)) = call.get_mut("custom") {
                c.insert("input".into(), Value::String(text));
            } else {
                return refuse("whose tool calls changed shape");
            }
        }
        Target::FunctionCall => match message.get_mut("function_call") {
            Some(Value::Object(f)) => {
                f.insert("arguments".into(), Value::String(text));
            }
            _ => return refuse("whose function call changed shape"),
        },
        Target::Refusal => {
            message.insert("refusal".into(), Value::String(text));
        }
        Target::Reasoning => {
            message.insert("reasoning_content".into(), Value::String(text));
        }
        Target::Transcript => return refuse("with audio"),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload_of(body: &str) -> String {
        let req = ChatRequest::parse(body.as_bytes()).unwrap();
        let conv = Conversation::new(&req.messages).unwrap();
        String::from_utf8(payload(&req, &conv).body(None)).unwrap()
    }

    #[test]
    fn messages_stay_whole_and_sources_follow() {
        assert_eq!(
            payload_of(
                r#"{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"a"},{"type":"image_url","image_url":{"url":"u"}},{"type":"text","text":"b"}],"name":"n"},{"role":"assistant","content":null,"tool_calls":[{"id":"1","type":"function","function":{"name":"f","arguments":"{}"}}]},{"role":"tool","tool_call_id":"1","content":""}],"instructions":"be nice","prompt":["p1","",7],"tools":[{"type":"function","function":{"name":"f","description":"d1","parameters":{"type":"object","properties":{"x":{"type":"string","description":"d2","enum":["e1","e2"]}}}}}],"response_format":{"type":"json_schema","json_schema":{"name":"r","schema":{"title":"t1","default":"z"}}}}"#
            ),
            r#"{"messages":[{"role":"user","content":"a\nb","name":"n"},{"role":"assistant","content":null,"tool_calls":[{"id":"1","type":"function","function":{"name":"f","arguments":"{}"}}]},{"role":"tool","tool_call_id":"1","content":""},{"role":"system","content":"be nice"},{"role":"user","content":"p1"},{"role":"system","content":"d1"},{"role":"system","content":"d2"},{"role":"system","content":"e1"},{"role":"system","content":"e2"},{"role":"system","content":"t1"},{"role":"system","content":"z"}]}"#
        );
    }

    #[test]
    fn responses_input_is_lifted() {
        assert_eq!(
            payload_of(
                r#"{"model":"m","messages":[{"role":"user","content":"x"}],"input":["s",{"role":"assistant","content":[{"type":"output_text","text":"o"}]},{"type":"function_call_output","output":"r"}]}"#
            ),
            r#"{"messages":[{"role":"user","content":"x"},{"role":"user","content":"s"},{"role":"assistant","content":"o"},{"role":"tool","content":"r"}]}"#
        );
    }

    #[test]
    fn anonymize_maps_back_by_index() {
        let body = r#"{"model":"m","messages":[{"role":"system","content":"s"},{"role":"user","content":"mail a@b.io","name":"n"}],"tools":[{"type":"function","function":{"name":"f","description":"ask a@b.io"}}]}"#;
        let req = ChatRequest::parse(body.as_bytes()).unwrap();
        let mut conv = Conversation::new(&req.messages).unwrap();
        let p = payload(&req, &conv);
        let short = vec![None, Some("mail [EMAIL_1]".into())];
        assert!(apply(&req, &mut conv, &p, short).is_err());
        let redacted = vec![
            None,
            Some("mail [EMAIL_1]".into()),
            Some("ask [EMAIL_1]".into()),
        ];
        apply(&req, &mut conv, &p, redacted).unwrap();
        assert_eq!(conv.rewritten, [None, Some("mail [EMAIL_1]".into())]);
        let tools = &conv.fields.iter().find(|(k, _)| *k == "tools").unwrap().1;
        assert_eq!(
            String::from_utf8_lossy(tools),
            r#"[{"type":"function","function":{"name":"f","description":"ask [EMAIL_1]"}}]"#
        );
    }
}
