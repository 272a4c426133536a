//! The guardrail pipeline: which guardrails run on a request (gateway.md
//! section 5) and what each verdict does to it (aim.md sections 5-9).
//!
//! - **pre_call**: in config order before the upstream call; the first block
//!   wins; an anonymize rewrites the messages sent upstream and to the next
//!   guardrail.
//! - **during_call**: concurrently with the upstream call; the caller holds
//!   the response until [`during_call`] passes.
//! - **post_call**: every choice of a completion checked before any byte is
//!   sent ([`post_call`]); a stream relayed through Aim's websocket so that
//!   only verified chunks reach the client ([`stream`]).
//!
//! A guardrail that cannot give a verdict fails closed (502/504) unless its
//! config says `fail_open: true`.

pub mod aim;
pub mod stream;

use std::sync::Arc;

use bytes::Bytes;
use futures_util::future::join_all;
use serde::Deserialize;
use serde_json::value::RawValue;
use tracing::Instrument;

use crate::auth::Caller;
use crate::config::GuardrailConfig;
use crate::error::Error;
use crate::metrics::{GuardrailStats, Metrics};
use crate::proxy::budget::Budget;
pub use aim::{CallInfo, Hook, Message};

/// A configured guardrail and its client.
#[derive(Debug)]
pub struct Guardrail {
    pub cfg: GuardrailConfig,
    client: aim::Client,
    stats: Arc<GuardrailStats>,
}

/// Every configured guardrail, in config order.
#[derive(Debug, Default)]
pub struct Guardrails {
    all: Vec<Arc<Guardrail>>,
}

/// The guardrails that run on one request, in config order.
#[derive(Debug, Default)]
pub struct Selection {
    list: Vec<Arc<Guardrail>>,
}

/// How a check ended without stopping the request.
enum Passed {
    Yes,
    Rewritten(Vec<Message>),
    /// Aim failed and the guardrail is `fail_open`.
    Skipped,
}

impl Guardrails {
    pub fn new(
        configs: &[GuardrailConfig],
        http: &Arc<crate::outbound::Clients>,
        metrics: &Arc<Metrics>,
        budget: &Arc<Budget>,
    ) -> Result<Self, String> {
        let mut all = Vec::with_capacity(configs.len());
        for cfg in configs {
            all.push(Arc::new(Guardrail {
                client: aim::Client::new(cfg, http.clone(), budget.clone())?,
                cfg: cfg.clone(),
                stats: metrics.guardrail(&cfg.name),
            }));
        }
        Ok(Guardrails { all })
    }

    /// The guardrails for a request: `default_on` ones (unless the operator
    /// exempted the key), those the request names, those of its key.
    pub fn select(&self, caller: &Caller, requested: &[String]) -> Result<Selection, Error> {
        if let Some(unknown) = requested
            .iter()
            .find(|name| !self.all.iter().any(|g| &g.cfg.name == *name))
        {
            return Err(Error::invalid(
                format!("Guardrail '{unknown}' is not configured on this gateway"),
                Some("guardrails"),
            ));
        }
        let key = caller.virtual_key();
        let exempt = key.is_some_and(|k| k.disable_global_guardrails);
        let list = self
            .all
            .iter()
            .filter(|g| {
                let name = &g.cfg.name;
                (g.cfg.default_on && !exempt)
                    || requested.contains(name)
                    || key.is_some_and(|k| k.guardrails.contains(name))
            })
            .cloned()
            .collect();
        Ok(Selection { list })
    }
}

impl Selection {
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    pub fn pre_call(&self) -> impl Iterator<Item = &Arc<Guardrail>> {
        self.list.iter().filter(|g| g.cfg.modes.pre_call)
    }

    pub fn during_call(&self) -> impl Iterator<Item = &Arc<Guardrail>> {
        self.list.iter().filter(|g| g.cfg.modes.during_call)
    }

    pub fn post_call(&self) -> impl Iterator<Item = &Arc<Guardrail>> {
        self.list.iter().filter(|g| g.cfg.modes.post_call)
    }

    pub fn has_post_call(&self) -> bool {
        self.post_call().next().is_some()
    }
}

/// Names of the guardrails that gave a verdict, for `x-litellm-applied-guardrails`.
#[derive(Debug, Default)]
pub struct Applied(Vec<String>);

impl Applied {
    pub fn add(&mut self, name: &str) {
        if !self.0.iter().any(|n| n == name) {
            self.0.push(name.to_owned());
        }
    }

    /// Record `name` when its check gave a verdict (pass, rewrite or block).
    fn record(&mut self, name: &str, result: &Result<Passed, Error>) {
        if is_block(result) || matches!(result, Ok(Passed::Yes | Passed::Rewritten(_))) {
            self.add(name);
        }
    }

    pub fn header_value(&self) -> Option<String> {
        (!self.0.is_empty()).then(|| self.0.join(","))
    }
}

/// The verdict's index in [`crate::metrics::VERDICTS`].
fn verdict_index(r: &Result<Passed, Error>) -> usize {
    match r {
        Ok(Passed::Yes) => 0,
        Err(Error::GuardrailBlocked(_)) => 1,
        Ok(Passed::Rewritten(_)) => 2,
        Ok(Passed::Skipped) | Err(_) => 3,
    }
}

fn is_block<T>(r: &Result<T, Error>) -> bool {
    matches!(r, Err(Error::GuardrailBlocked(_)))
}

/// Run the pre_call guardrails in order. Returns true when the messages were
/// rewritten (and must replace the request's messages upstream).
pub async fn pre_call(
    sel: &Selection,
    info: &CallInfo,
    applied: &mut Applied,
    messages: &mut Vec<Message>,
) -> Result<bool, Error> {
    let mut rewritten = false;
    for g in sel.pre_call() {
        let result = g.check_input(Hook::PreCall, info, messages).await;
        applied.record(&g.cfg.name, &result);
        if let Passed::Rewritten(new) = result? {
            *messages = new;
            rewritten = true;
        }
    }
    Ok(rewritten)
}

/// Run the during_call guardrails concurrently; the first block or failure
/// ends the wait. (An anonymize cannot apply: the upstream already has the
/// request. As in LiteLLM, it passes.)
/// The error names the guardrail that raised it.
pub async fn during_call(
    sel: &Selection,
    info: &CallInfo,
    messages: &[Message],
) -> Result<Vec<String>, (String, Error)> {
    let checks = sel.during_call().map(|g| async move {
        let result = g.check_input(Hook::During, info, messages).await;
        match result {
            Ok(Passed::Yes | Passed::Rewritten(_)) => Ok(Some(g.cfg.name.clone())),
            Ok(Passed::Skipped) => Ok(None),
            Err(e) => Err((g.cfg.name.clone(), e)),
        }
    });
    let names = futures_util::future::try_join_all(checks).await?;
    Ok(names.into_iter().flatten().collect())
}

#[derive(Deserialize)]
struct Completion {
    #[serde(default)]
    choices: Vec<Choice>,
}

#[derive(Deserialize)]
struct Choice {
    #[serde(default)]
    message: Option<ChoiceMessage>,
}

#[derive(Deserialize)]
struct ChoiceMessage {
    #[serde(default)]
    content: Option<serde_json::Value>,
}

/// Check every choice of a completion with each post_call guardrail in turn.
/// Returns the body to send: the original bytes, or the rewritten completion.
pub async fn post_call(
    sel: &Selection,
    info: &CallInfo,
    applied: &mut Applied,
    input: &[Message],
    body: Bytes,
) -> Result<Bytes, Error> {
    let not_completion = || {
        Error::UpstreamUnreachable(
            "the upstream answer is not a chat completion; the guardrails cannot check it".into(),
        )
    };
    let completion: Completion = serde_json::from_slice(&body).map_err(|_| not_completion())?;
    let mut contents: Vec<String> = completion
        .choices
        .into_iter()
        .map(|c| match c.message.and_then(|m| m.content) {
            Some(serde_json::Value::String(s)) => s,
            _ => String::new(),
        })
        .collect();
    let mut changed = vec![false; contents.len()];
    for g in sel.post_call() {
        let checks = contents.iter().map(|content| {
            let mut messages = Vec::with_capacity(input.len() + 1);
            messages.extend_from_slice(input);
            messages.push(Message {
                role: "assistant".into(),
                content: content.clone(),
            });
            async move { g.check_output(info, &messages).await }
        });
        let results = join_all(checks).await;
        for r in &results {
            applied.record(&g.cfg.name, r);
        }
        if results.is_empty() {
            applied.add(&g.cfg.name);
        }
        // A block wins over any failure in the other choices.
        if let Some(block) = results.iter().position(is_block) {
            return Err(results
                .into_iter()
                .nth(block)
                .and_then(Result::err)
                .unwrap_or_else(not_completion));
        }
        for (i, result) in results.into_iter().enumerate() {
            if let Passed::Rewritten(new) = result?
                && let Some(last) = new.into_iter().last()
            {
                contents[i] = last.content;
                changed[i] = true;
            }
        }
    }
    if !changed.contains(&true) {
        return Ok(body);
    }
    let mut value: serde_json::Value =
        serde_json::from_slice(&body).map_err(|_| not_completion())?;
    if let Some(choices) = value.get_mut("choices").and_then(|c| c.as_array_mut()) {
        for (i, choice) in choices.iter_mut().enumerate() {
            if changed.get(i) == Some(&true)
                && let Some(message) = choice.get_mut("message").and_then(|m| m.as_object_mut())
            {
                message.insert(
                    "content".into(),
                    serde_json::Value::String(contents[i].clone()),
                );
            }
        }
    }
    serde_json::to_vec(&value)
        .map(Bytes::from)
        .map_err(|e| Error::Internal(e.to_string()))
}

impl Guardrail {
    async fn check_input(
        &self,
        hook: Hook,
        info: &CallInfo,
        messages: &[Message],
    ) -> Result<Passed, Error> {
        let started = std::time::Instant::now();
        let verdict = self
            .client
            .analyze(hook, info, messages)
            .instrument(self.span(hook))
            .await;
        let passed = self.decide(hook, verdict, false);
        self.stats
            .call(hook.index(), verdict_index(&passed), started.elapsed());
        passed
    }

    async fn check_output(&self, info: &CallInfo, messages: &[Message]) -> Result<Passed, Error> {
        let started = std::time::Instant::now();
        let verdict = self
            .client
            .analyze(Hook::Output, info, messages)
            .instrument(self.span(Hook::Output))
            .await;
        let passed = self.decide(Hook::Output, verdict, true);
        self.stats.call(
            Hook::Output.index(),
            verdict_index(&passed),
            started.elapsed(),
        );
        passed
    }

    fn span(&self, hook: Hook) -> tracing::Span {
        tracing::info_span!("guardrail", guardrail = %self.cfg.name, hook = hook.header_value())
    }

    fn decide(
        &self,
        hook: Hook,
        verdict: Result<aim::Verdict, aim::Failure>,
        output: bool,
    ) -> Result<Passed, Error> {
        let name = &self.cfg.name;
        match verdict {
            Err(failure) => self.failed(hook, failure),
            Ok(aim::Verdict::Pass) => Ok(Passed::Yes),
            Ok(aim::Verdict::Monitor) => {
                tracing::info!(guardrail = %name, hook = hook.header_value(), "guardrail monitor action");
                Ok(Passed::Yes)
            }
            Ok(aim::Verdict::Block(message)) => {
                tracing::info!(guardrail = %name, hook = hook.header_value(), "guardrail blocked");
                Err(Error::GuardrailBlocked(message))
            }
            Ok(aim::Verdict::Anonymize(redacted)) => {
                match redacted_messages(redacted.as_ref(), output) {
                    Some(messages) => Ok(Passed::Rewritten(messages)),
                    None => {
                        tracing::warn!(guardrail = %name, hook = hook.header_value(), "guardrail sent a malformed redaction");
                        Err(Error::invalid(
                            format!(
                                "guardrail '{name}' returned an anonymization that cannot be applied"
                            ),
                            None,
                        ))
                    }
                }
            }
            Ok(aim::Verdict::Unknown(action)) => {
                tracing::warn!(guardrail = %name, action = %action, "unknown guardrail action, passing");
                Ok(Passed::Yes)
            }
        }
    }

    /// Aim gave no verdict: fail closed, or pass when `fail_open`.
    fn failed(&self, hook: Hook, failure: aim::Failure) -> Result<Passed, Error> {
        let name = &self.cfg.name;
        // The gateway's own shortage, not Aim's: never a reason to let the
        // request through unchecked, whatever `fail_open` says.
        if let aim::Failure::OverBudget = failure {
            return Err(crate::proxy::upstream::over_budget(&self.client.budget));
        }
        if self.cfg.fail_open {
            tracing::warn!(guardrail = %name, hook = hook.header_value(), reason = %failure, "guardrail unavailable; failing open");
            self.stats.fail_open();
            Ok(Passed::Skipped)
        } else {
            tracing::warn!(guardrail = %name, hook = hook.header_value(), reason = %failure, "guardrail unavailable; failing closed");
            Err(Error::GuardrailUnavailable {
                name: name.clone(),
                reason: failure.to_string(),
                timed_out: failure.is_timeout(),
            })
        }
    }
}

/// `redacted_chat.all_redacted_messages` as messages, or None when malformed.
/// For an output check the last entry must be the assistant's.
fn redacted_messages(redacted: Option<&serde_json::Value>, output: bool) -> Option<Vec<Message>> {
    let list = redacted?.get("all_redacted_messages")?.as_array()?;
    if list.is_empty() {
        return None;
    }
    let mut out = Vec::with_capacity(list.len());
    for entry in list {
        let entry = entry.as_object()?;
        let content = entry.get("content")?.as_str()?;
        let role = entry.get("role").and_then(|r| r.as_str()).unwrap_or("user");
        out.push(Message {
            role: role.to_owned(),
            content: content.to_owned(),
        });
    }
    if output && out.last().is_some_and(|m| m.role != "assistant") {
        return None;
    }
    Some(out)
}

/// The chat messages flattened for inspection (aim.md section 4).
pub fn flatten(messages: &[crate::proxy::request::MessageView]) -> Vec<Message> {
    messages
        .iter()
        .filter_map(|m| {
            let text = text_of(m.content?)?;
            // Validated as a string already: compared as written, parsed
            // only when it has escapes. Other roles (developer, tool, ...)
            // count as the user's.
            let unescaped;
            let role = match m.role.map(RawValue::get) {
                Some(r) if r.contains('\\') => {
                    unescaped = serde_json::from_str::<String>(r).ok();
                    unescaped.as_deref()
                }
                Some(r) => r.get(1..r.len().saturating_sub(1)),
                None => None,
            };
            let role = match role {
                Some(r @ ("system" | "assistant")) => r.to_owned(),
                _ => "user".to_owned(),
            };
            Some(Message {
                role,
                content: text,
            })
        })
        .collect()
}

fn text_of(content: &RawValue) -> Option<String> {
    // Told apart by the first byte: an untagged enum would buffer the whole
    // value to try each shape in turn.
    let raw = content.get();
    let text = match raw.as_bytes().first()? {
        b'"' => serde_json::from_str::<String>(raw).ok()?,
        b'[' => serde_json::from_str::<Vec<serde_json::Value>>(raw)
            .ok()?
            .iter()
            .filter(|p| p.get("type").and_then(|t| t.as_str()) == Some("text"))
            .filter_map(|p| p.get("text").and_then(|t| t.as_str()))
            .collect::<Vec<_>>()
            .join("\n"),
        _ => return None,
    };
    (!text.is_empty()).then_some(text)
}

/// The messages as JSON, to replace the request's `messages` upstream.
pub fn messages_json(messages: &[Message]) -> Vec<u8> {
    serde_json::to_vec(messages).unwrap_or_else(|_| b"[]".to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `messages` as the request parser hands them over.
    fn flat(messages: &str) -> Vec<Message> {
        let body = format!(r#"{{"model":"m","messages":{messages}}}"#);
        let req = crate::proxy::request::ChatRequest::parse(body.as_bytes()).unwrap();
        flatten(&req.message_views)
    }

    #[test]
    fn flatten_example_of_aim_md() {
        let flat = flat(
            r#"[{"role":"user","content":"weather in SF"},{"role":"assistant","content":"","tool_calls":[{"id":"1"}]},{"role":"tool","content":"sunny","tool_call_id":"1"}]"#,
        );
        assert_eq!(
            serde_json::to_string(&flat).unwrap(),
            r#"[{"role":"user","content":"weather in SF"},{"role":"user","content":"sunny"}]"#
        );
    }

    #[test]
    fn flatten_parts() {
        let flat = flat(
            r#"[{"role":"developer","content":[{"type":"text","text":"a"},{"type":"image_url","image_url":{"url":"x"}},{"type":"text","text":"b"}]},{"role":"assistant","content":null}]"#,
        );
        assert_eq!(
            flat,
            vec![Message {
                role: "user".into(),
                content: "a\nb".into()
            }]
        );
    }

    #[test]
    fn flatten_reads_roles_as_json_strings() {
        let flat = flat(
            r#"[{"role":"sys\u0074em","content":"a"},{"role":"assistant","content":"b"},{"role":"\"user\"","content":"c"}]"#,
        );
        let roles: Vec<&str> = flat.iter().map(|m| m.role.as_str()).collect();
        assert_eq!(roles, ["system", "assistant", "user"]);
    }

    #[test]
    fn malformed_redactions() {
        use serde_json::json;
        for bad in [
            json!(null),
            json!({}),
            json!({"all_redacted_messages": {}}),
            json!({"all_redacted_messages": []}),
            json!({"all_redacted_messages": ["x"]}),
            json!({"all_redacted_messages": [{"role": "user"}]}),
            json!({"all_redacted_messages": [{"role": "user", "content": null}]}),
            json!({"all_redacted_messages": [{"role": "user", "content": 3}]}),
        ] {
            assert!(redacted_messages(Some(&bad), false).is_none(), "{bad}");
        }
        let user_last = json!({"all_redacted_messages": [{"role": "user", "content": "x"}]});
        assert!(redacted_messages(Some(&user_last), false).is_some());
        assert!(redacted_messages(Some(&user_last), true).is_none());
    }
}
