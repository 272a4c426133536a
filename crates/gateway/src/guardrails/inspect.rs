//! What a guardrail reads (docs/spec/aim.md section 4): everything the model will read
//! that is text, derived from the same decoded request that is forwarded.
//!
//! [`Conversation`] is the request's messages as the guardrails see them,
//! with any content an anonymizing guardrail rewrote; [`Conversation::flat`]
//! is Aim's flattened view of it. A message whose shape no guardrail can read
//! refuses the whole request (400) before any guardrail or upstream call.

use crate::error::Error;
use crate::wire::completion::Choice;
use crate::wire::message::{ChatMessage, Content};

use super::aim::Message;

/// The request's messages, as the guardrails of one request see them.
pub struct Conversation<'r> {
    pub messages: &'r [ChatMessage<'r>],
    /// Per message: its content after an anonymizing guardrail rewrote it.
    pub rewritten: Vec<Option<String>>,
    /// Aim's view (docs/spec/aim.md section 4): one entry per message with text, its
    /// fragments joined with `"\n"`, roles other than system, user and
    /// assistant sent as `user`.
    pub flat: Vec<Message>,
    /// For each entry of `flat`, the index of the message it came from.
    origin: Vec<usize>,
    /// Top-level fields a guardrail rewrote (JSON), to replace upstream.
    pub fields: Vec<(&'static str, Vec<u8>)>,
}

impl<'r> Conversation<'r> {
    /// The messages of a request some guardrail will check. Err (400) when a
    /// message has something no guardrail can read.
    pub fn new(messages: &'r [ChatMessage<'r>]) -> Result<Self, Error> {
        let mut flat = Vec::with_capacity(messages.len());
        let mut origin = Vec::with_capacity(messages.len());
        for (i, m) in messages.iter().enumerate() {
            if let Some(what) = m.unread.first() {
                return Err(unreadable(i, what));
            }
            let text = joined(m);
            if text.is_empty() {
                continue;
            }
            let role = match m.role.as_deref() {
                Some("system") => "system",
                Some("assistant") => "assistant",
                _ => "user",
            };
            flat.push(Message {
                role: role.to_owned(),
                content: text,
            });
            origin.push(i);
        }
        Ok(Conversation {
            messages,
            rewritten: vec![None; messages.len()],
            flat,
            origin,
            fields: vec![],
        })
    }

    /// The messages of a request no guardrail checks: nothing to read.
    pub fn unchecked(messages: &'r [ChatMessage<'r>]) -> Self {
        Conversation {
            messages,
            rewritten: vec![],
            flat: vec![],
            origin: vec![],
            fields: vec![],
        }
    }

    /// The first part no guardrail can read (an image, audio, a file): its
    /// message's index and its type.
    pub fn opaque_part(&self) -> Option<(usize, &str)> {
        self.messages
            .iter()
            .enumerate()
            .find_map(|(i, m)| m.opaque_parts().next().map(|kind| (i, kind)))
    }

    pub fn is_rewritten(&self) -> bool {
        self.rewritten.iter().any(Option::is_some) || !self.fields.is_empty()
    }

    /// After a rewrite by a vendor with its own payload: Aim's view again.
    pub fn reflatten(&mut self) {
        for (at, &i) in self.origin.iter().enumerate() {
            if let Some(new) = &self.rewritten[i] {
                self.flat[at].content.clone_from(new);
            }
        }
    }

    /// The text of message `i` as the guardrails now see it.
    pub fn text(&self, i: usize) -> Option<&str> {
        if let Some(new) = &self.rewritten[i] {
            return Some(new);
        }
        let at = self.origin.iter().position(|&o| o == i)?;
        Some(&self.flat[at].content)
    }

    /// Apply an Aim anonymize verdict: `redacted` replaces, entry for entry,
    /// the flattened messages; each message's content takes its entry's
    /// text. Refused (400) where that would lose or leak something: a message
    /// with content parts (LiteLLM's message), text outside the content
    /// (tool call arguments, a refusal), or a list of another length.
    pub fn apply_aim(&mut self, redacted: Vec<Message>, vendor: &str) -> Result<(), Error> {
        if self
            .messages
            .iter()
            .any(|m| matches!(m.content, Content::Parts(_)))
        {
            return Err(Error::invalid(
                format!(
                    "{vendor}: anonymize action requested for multimodal input but mask-in-place would drop non-text parts. Send the request with plain string content to use anonymize, or rely on block-mode policies."
                ),
                None,
            ));
        }
        if redacted.len() != self.flat.len() {
            return Err(cannot_rewrite(
                &format!(
                    "{vendor}: anonymize action returned a redacted batch of a different size than the inspected input"
                ),
                "request",
            ));
        }
        if self.messages.iter().any(|m| !m.is_plain_text()) {
            return Err(cannot_rewrite(
                &format!(
                    "{vendor}: anonymize action requested for input whose inspected text includes tool call arguments, a refusal or reasoning"
                ),
                "request",
            ));
        }
        for (at, new) in redacted.into_iter().enumerate() {
            let i = self.origin[at];
            if self.flat[at].content != new.content {
                self.rewritten[i] = Some(new.content.clone());
                self.flat[at].content = new.content;
            }
        }
        Ok(())
    }
}

/// A message's text fragments, joined with `"\n"`.
pub fn joined(m: &ChatMessage) -> String {
    let mut text = String::new();
    for t in m.texts() {
        if !text.is_empty() {
            text.push('\n');
        }
        text.push_str(t);
    }
    text
}

fn unreadable(i: usize, what: &str) -> Error {
    Error::invalid(
        format!(
            "messages[{i}]: {what}; no guardrail can read it, so the request is refused rather than forwarded unchecked"
        ),
        Some(&format!("messages[{i}]")),
    )
}

/// The 400 for a redaction that cannot be applied without forwarding or
/// returning unredacted text (LiteLLM's wording); `subject` is `request` or
/// `response`.
pub fn cannot_rewrite(what: &str, subject: &str) -> Error {
    Error::invalid(
        format!("{what}, so the {subject} cannot be rewritten without forwarding unredacted text."),
        None,
    )
}

/// A choice's message, or the error that fails the response: a completion
/// the guardrails cannot read is never returned unchecked.
pub fn choice_message<'c, 'a>(c: &'c Choice<'a>, i: usize) -> Result<&'c ChatMessage<'a>, Error> {
    let Some(m) = &c.message else {
        return Err(not_checkable(&format!("choices[{i}] has no message")));
    };
    if let Some(what) = m.unread.first() {
        return Err(not_checkable(&format!("choices[{i}].message: {what}")));
    }
    Ok(m)
}

/// The error for an upstream answer the guardrails cannot check.
pub fn not_checkable(what: &str) -> Error {
    tracing::warn!(what, "upstream answer not checkable by the guardrails");
    Error::UpstreamUnreachable(
        "the upstream answer is not a chat completion the guardrails can check".into(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::chat::ChatRequest;

    fn flat(messages: &str) -> Vec<Message> {
        let body = format!(r#"{{"model":"m","messages":{messages}}}"#);
        let req = ChatRequest::parse(body.as_bytes()).unwrap();
        Conversation::new(&req.messages).unwrap().flat
    }

    fn json(flat: &[Message]) -> String {
        serde_json::to_string(flat).unwrap()
    }

    #[test]
    fn the_example_of_aim_md() {
        assert_eq!(
            json(&flat(
                r#"[{"role":"user","content":"weather in SF"},{"role":"assistant","content":"","tool_calls":[{"id":"1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"SF\"}"}}]},{"role":"tool","content":"sunny","tool_call_id":"1"}]"#
            )),
            r#"[{"role":"user","content":"weather in SF"},{"role":"assistant","content":"{\"city\":\"SF\"}"},{"role":"user","content":"sunny"}]"#
        );
    }

    #[test]
    fn parts_and_roles() {
        assert_eq!(
            json(&flat(
                r#"[{"role":"developer","content":[{"type":"text","text":"a"},{"type":"image_url","image_url":{"url":"x"}},{"type":"input_text","text":"b"}]},{"role":"assistant","content":null},{"role":"sys\u0074em","content":"c"},{"role":"\"user\"","content":"d","refusal":"e"}]"#
            )),
            r#"[{"role":"user","content":"a\nb"},{"role":"system","content":"c"},{"role":"user","content":"d\ne"}]"#
        );
    }

    #[test]
    fn unreadable_messages_refuse_the_request() {
        let body = br#"{"model":"m","messages":[{"role":"user","content":"ok"},{"role":"user","content":[{"type":"hologram","data":"x"}]}]}"#;
        let req = ChatRequest::parse(body).unwrap();
        match Conversation::new(&req.messages) {
            Err(Error::InvalidRequest { message, param }) => {
                assert_eq!(param.as_deref(), Some("messages[1]"));
                assert!(message.contains("hologram"), "{message}");
            }
            other => panic!("{:?}", other.map(|c| c.flat)),
        }
    }
}
