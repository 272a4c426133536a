//! The guardrail pipeline: which guardrails run on a request (gateway.md
//! section 5) and what each verdict does to it (docs/spec/aim.md sections 5-9).
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
pub mod cato;
pub mod inspect;
pub mod stream;

use std::sync::Arc;

use bytes::Bytes;
use futures_util::future::join_all;
use serde_json::Value;
use tracing::Instrument;

use crate::auth::Caller;
use crate::body::budget::Budget;
use crate::config::{GuardrailConfig, Vendor};
use crate::error::Error;
use crate::metrics::{GuardrailStats, Metrics};
use crate::wire::chat::ChatRequest;
use crate::wire::completion;
use crate::wire::message::{ChatMessage, Content, Target};
pub use aim::{CallInfo, Hook, Message};
pub use inspect::Conversation;

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
    /// An anonymize verdict, applied.
    Rewritten,
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

    /// The first selected guardrail with `block_uninspectable: true`.
    pub fn blocking_uninspectable(&self) -> Option<&str> {
        self.list
            .iter()
            .find(|g| g.cfg.block_uninspectable)
            .map(|g| g.cfg.name.as_str())
    }

    /// Refuse (400) a request carrying a part no guardrail can read (an
    /// image, audio, a file) when a selected guardrail says
    /// `block_uninspectable: true`.
    pub fn check_inspectable(&self, conv: &Conversation) -> Result<(), Error> {
        let Some(g) = self.list.iter().find(|g| g.cfg.block_uninspectable) else {
            return Ok(());
        };
        let Some((i, kind)) = conv.opaque_part() else {
            return Ok(());
        };
        Err(Error::invalid(
            format!(
                "messages[{i}] has a content part of type '{kind}', which guardrail '{}' cannot read (block_uninspectable)",
                g.cfg.name
            ),
            Some(&format!("messages[{i}].content")),
        ))
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
        if is_block(result) || matches!(result, Ok(Passed::Yes | Passed::Rewritten)) {
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
        Ok(Passed::Rewritten) => 2,
        Ok(Passed::Skipped) | Err(_) => 3,
    }
}

fn is_block<T>(r: &Result<T, Error>) -> bool {
    matches!(r, Err(Error::GuardrailBlocked(_)))
}

/// Run the pre_call guardrails in order; an anonymize rewrites the
/// conversation (what goes upstream, and what the next guardrail reads).
pub async fn pre_call(
    sel: &Selection,
    info: &CallInfo,
    applied: &mut Applied,
    req: &ChatRequest<'_>,
    conv: &mut Conversation<'_>,
) -> Result<(), Error> {
    for g in sel.pre_call() {
        let result = g.check_input(info, req, conv).await;
        applied.record(&g.cfg.name, &result);
        result?;
    }
    Ok(())
}

/// Run the during_call guardrails concurrently; the first block or failure
/// ends the wait. (An anonymize cannot apply: the upstream already has the
/// request. As in LiteLLM, it passes.)
/// The error names the guardrail that raised it.
pub async fn during_call(
    sel: &Selection,
    info: &CallInfo,
    req: &ChatRequest<'_>,
    conv: &Conversation<'_>,
) -> Result<Vec<String>, (String, Error)> {
    let checks = sel.during_call().map(|g| async move {
        let body = g.input_body(req, conv).0;
        let result = g.check(Hook::During, info, body, |_| Ok(())).await;
        match result {
            Ok(Passed::Yes | Passed::Rewritten) => Ok(Some(g.cfg.name.clone())),
            Ok(Passed::Skipped) => Ok(None),
            Err(e) => Err((g.cfg.name.clone(), e)),
        }
    });
    let names = futures_util::future::try_join_all(checks).await?;
    Ok(names.into_iter().flatten().collect())
}

/// One choice of a completion as the post_call guardrails see it.
struct Output {
    /// Its text fragments and where each lives, after any rewrite.
    fragments: Vec<(Target, String)>,
    /// Its text is one plain string `content` (Aim's anonymize can apply).
    plain: bool,
    logprobs: bool,
    /// Fragments a guardrail rewrote.
    changed: Vec<Target>,
}

impl Output {
    fn new(m: &ChatMessage, logprobs: bool) -> Self {
        Output {
            fragments: m
                .fragments()
                .into_iter()
                .map(|(t, s)| (t, s.into_owned()))
                .collect(),
            plain: matches!(m.content, Content::Text(_)) && m.is_plain_text() && !logprobs,
            logprobs,
            changed: vec![],
        }
    }

    /// Aim's text of the choice: every fragment, joined with `"\n"`.
    fn text(&self) -> String {
        let texts: Vec<&str> = self.fragments.iter().map(|(_, t)| t.as_str()).collect();
        texts.join("\n")
    }

    fn set(&mut self, target: Target, text: String) {
        match self.fragments.iter_mut().find(|(t, _)| *t == target) {
            Some(slot) => slot.1 = text,
            None => self.fragments.push((target, text)),
        }
        if !self.changed.contains(&target) {
            self.changed.push(target);
        }
    }
}

/// Check every choice of a completion with each post_call guardrail in turn
/// (docs/spec/aim.md sections 4, 5 and 8). Returns the body to send: the original
/// bytes, or the completion with the rewritten fragments.
pub async fn post_call(
    sel: &Selection,
    info: &CallInfo,
    applied: &mut Applied,
    req: &ChatRequest<'_>,
    conv: &Conversation<'_>,
    body: Bytes,
) -> Result<Bytes, Error> {
    let choices = match completion::decode_completion(&body) {
        Ok(Some(choices)) => choices,
        Ok(None) => return Err(inspect::not_checkable("no choices list")),
        Err(e) => return Err(inspect::not_checkable(&e.to_string())),
    };
    let mut outputs = Vec::with_capacity(choices.len());
    for (i, c) in choices.iter().enumerate() {
        outputs.push(Output::new(inspect::choice_message(c, i)?, c.logprobs));
    }
    for g in sel.post_call() {
        if outputs.is_empty() {
            applied.add(&g.cfg.name);
            continue;
        }
        match g.cfg.vendor {
            Vendor::Aim => {
                g.check_outputs_aim(info, applied, conv, &mut outputs)
                    .await?
            }
            Vendor::CatoNetworks => {
                g.check_outputs_cato(info, applied, req, conv, &mut outputs)
                    .await?
            }
        }
    }
    if outputs.iter().all(|o| o.changed.is_empty()) {
        return Ok(body);
    }
    let not_completion = || inspect::not_checkable("the completion changed shape");
    let mut value: Value = serde_json::from_slice(&body).map_err(|_| not_completion())?;
    let choices = value
        .get_mut("choices")
        .and_then(Value::as_array_mut)
        .ok_or_else(not_completion)?;
    for (choice, out) in choices.iter_mut().zip(&outputs) {
        let message = choice
            .get_mut("message")
            .and_then(Value::as_object_mut)
            .ok_or_else(not_completion)?;
        for target in &out.changed {
            let text = out
                .fragments
                .iter()
                .find(|(t, _)| t == target)
                .map(|(_, s)| s.clone())
                .unwrap_or_default();
            cato::write_back(message, *target, text, out.logprobs)?;
        }
    }
    serde_json::to_vec(&value)
        .map(Bytes::from)
        .map_err(|e| Error::Internal(e.to_string()))
}

impl Guardrail {
    /// The vendor's payload for an input check (and Cato's inspection list,
    /// to map an anonymize back).
    fn input_body(
        &self,
        req: &ChatRequest,
        conv: &Conversation,
    ) -> (Vec<u8>, Option<cato::Payload>) {
        match self.cfg.vendor {
            Vendor::Aim => (aim::analyze_body(&conv.flat), None),
            Vendor::CatoNetworks => {
                let payload = cato::payload(req, conv);
                (payload.body(None), Some(payload))
            }
        }
    }

    /// A pre_call check; an anonymize rewrites `conv`.
    async fn check_input(
        &self,
        info: &CallInfo,
        req: &ChatRequest<'_>,
        conv: &mut Conversation<'_>,
    ) -> Result<Passed, Error> {
        let (body, payload) = self.input_body(req, conv);
        let vendor = self.vendor_name();
        self.check(Hook::PreCall, info, body, |redacted| match &payload {
            None => {
                let list = redacted_messages(redacted.as_ref())
                    .ok_or_else(|| malformed(vendor, "messages", "request"))?;
                conv.apply_aim(list, vendor)
            }
            Some(payload) => {
                let list = cato::redacted_contents(redacted.as_ref())
                    .ok_or_else(|| malformed(vendor, "messages", "request"))?;
                cato::apply(req, conv, payload, list)?;
                conv.reflatten();
                Ok(())
            }
        })
        .await
    }

    /// Aim's output checks: one call per choice, all at once; any block
    /// fails the response.
    async fn check_outputs_aim(
        &self,
        info: &CallInfo,
        applied: &mut Applied,
        conv: &Conversation<'_>,
        outputs: &mut [Output],
    ) -> Result<(), Error> {
        let inspected = conv.flat.len();
        let checks = outputs.iter().map(|out| {
            let mut messages = Vec::with_capacity(inspected + 1);
            messages.extend_from_slice(&conv.flat);
            messages.push(Message {
                role: "assistant".into(),
                content: out.text(),
            });
            let body = aim::analyze_body(&messages);
            let plain = out.plain;
            let vendor = self.vendor_name();
            async move {
                let mut new = None;
                let passed = self
                    .check(Hook::Output, info, body, |redacted| {
                        new = Some(aim_output_redaction(
                            redacted.as_ref(),
                            inspected,
                            plain,
                            vendor,
                        )?);
                        Ok(())
                    })
                    .await;
                (passed, new)
            }
        });
        let results = join_all(checks).await;
        for (r, _) in &results {
            applied.record(&self.cfg.name, r);
        }
        // A block wins over any failure in the other choices.
        if let Some(at) = results.iter().position(|(r, _)| is_block(r)) {
            return results
                .into_iter()
                .nth(at)
                .map_or(Ok(()), |(r, _)| r.map(|_| ()));
        }
        for (out, (result, new)) in outputs.iter_mut().zip(results) {
            result?;
            if let Some(text) = new {
                out.set(Target::Content, text);
            }
        }
        Ok(())
    }

    /// Cato's output checks: each fragment of each choice in sequence; a
    /// block stops at once.
    async fn check_outputs_cato(
        &self,
        info: &CallInfo,
        applied: &mut Applied,
        req: &ChatRequest<'_>,
        conv: &Conversation<'_>,
        outputs: &mut [Output],
    ) -> Result<(), Error> {
        let payload = cato::payload(req, conv);
        let at = payload.entries();
        let vendor = self.vendor_name();
        for out in outputs.iter_mut() {
            let fragments = out.fragments.clone();
            for (target, text) in fragments {
                let body = payload.body(Some(
                    &serde_json::json!({"role": "assistant", "content": text}),
                ));
                let mut new = None;
                let result = self
                    .check(Hook::Output, info, body, |redacted| {
                        let list = cato::redacted_contents(redacted.as_ref())
                            .ok_or_else(|| malformed(vendor, "output", "response"))?;
                        match list.get(at) {
                            Some(Some(text)) => {
                                new = Some(text.clone());
                                Ok(())
                            }
                            _ => Err(malformed(vendor, "output", "response")),
                        }
                    })
                    .await;
                applied.record(&self.cfg.name, &result);
                result?;
                if let Some(new) = new
                    && new != text
                {
                    out.set(target, new);
                }
            }
        }
        Ok(())
    }

    /// One analyze call and what its verdict does: a block is the 400, an
    /// anonymize goes to `anonymize` (which applies it or refuses), a
    /// failure fails closed unless `fail_open`.
    async fn check(
        &self,
        hook: Hook,
        info: &CallInfo,
        body: Vec<u8>,
        anonymize: impl FnOnce(Option<Value>) -> Result<(), Error>,
    ) -> Result<Passed, Error> {
        let started = std::time::Instant::now();
        let verdict = self
            .client
            .analyze(hook, info, body)
            .instrument(self.span(hook))
            .await;
        let name = &self.cfg.name;
        let passed = match verdict {
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
            Ok(aim::Verdict::Anonymize(redacted)) => match anonymize(redacted) {
                Ok(()) => Ok(Passed::Rewritten),
                Err(e) => {
                    tracing::warn!(guardrail = %name, hook = hook.header_value(), "guardrail anonymization cannot be applied");
                    Err(e)
                }
            },
            Ok(aim::Verdict::Unknown(action)) => {
                tracing::warn!(guardrail = %name, action = %action, "unknown guardrail action, passing");
                Ok(Passed::Yes)
            }
        };
        self.stats
            .call(hook.index(), verdict_index(&passed), started.elapsed());
        passed
    }

    fn vendor_name(&self) -> &'static str {
        match self.cfg.vendor {
            Vendor::Aim => "Aim",
            Vendor::CatoNetworks => "Cato",
        }
    }

    fn span(&self, hook: Hook) -> tracing::Span {
        tracing::info_span!("guardrail", guardrail = %self.cfg.name, hook = hook.header_value())
    }

    /// Aim gave no verdict: fail closed, or pass when `fail_open`.
    fn failed(&self, hook: Hook, failure: aim::Failure) -> Result<Passed, Error> {
        let name = &self.cfg.name;
        // The gateway's own shortage, not Aim's: never a reason to let the
        // request through unchecked, whatever `fail_open` says.
        if let aim::Failure::OverBudget = failure {
            return Err(self.client.budget.refusal());
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

/// The 400 for a redaction that is not the documented shape.
fn malformed(vendor: &str, what: &str, subject: &str) -> Error {
    inspect::cannot_rewrite(
        &format!("{vendor}: anonymize action returned malformed redacted {what}"),
        subject,
    )
}

/// `redacted_chat.all_redacted_messages` as messages, or None when malformed:
/// not a non-empty list of objects each with a string `content`.
fn redacted_messages(redacted: Option<&Value>) -> Option<Vec<Message>> {
    let list = redacted?.get("all_redacted_messages")?.as_array()?;
    if list.is_empty() {
        return None;
    }
    let mut out = Vec::with_capacity(list.len());
    for entry in list {
        let entry = entry.as_object()?;
        let content = entry.get("content")?.as_str()?;
        let role = entry.get("role").and_then(Value::as_str).unwrap_or("user");
        out.push(Message {
            role: role.to_owned(),
            content: content.to_owned(),
        });
    }
    Some(out)
}

/// An Aim output anonymize: the inspected input plus exactly one entry, the
/// assistant's, with text, for a choice whose text is one plain string.
fn aim_output_redaction(
    redacted: Option<&Value>,
    inspected: usize,
    plain: bool,
    vendor: &str,
) -> Result<String, Error> {
    let list =
        redacted_messages(redacted).ok_or_else(|| malformed(vendor, "output", "response"))?;
    if list.len() != inspected + 1 {
        return Err(inspect::cannot_rewrite(
            &format!("{vendor}: anonymize action returned an invalid redacted output count"),
            "response",
        ));
    }
    let Some(last) = list.into_iter().last().filter(|m| m.role == "assistant") else {
        return Err(malformed(vendor, "output", "response"));
    };
    if last.content.is_empty() {
        return Err(inspect::cannot_rewrite(
            &format!("{vendor}: anonymize action returned empty redacted output"),
            "response",
        ));
    }
    if !plain {
        return Err(inspect::cannot_rewrite(
            &format!(
                "{vendor}: anonymize action requested for output whose text is not one plain string content"
            ),
            "response",
        ));
    }
    Ok(last.content)
}

#[cfg(test)]
mod tests {
    use super::*;

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
            assert!(redacted_messages(Some(&bad)).is_none(), "{bad}");
        }
        let user_last = json!({"all_redacted_messages": [{"role": "user", "content": "x"}]});
        assert!(redacted_messages(Some(&user_last)).is_some());
        assert!(aim_output_redaction(Some(&user_last), 0, true, "Aim").is_err());
        let two = json!({"all_redacted_messages": [{"role": "user", "content": "x"}, {"role": "assistant", "content": "y"}]});
        assert_eq!(
            aim_output_redaction(Some(&two), 1, true, "Aim").unwrap(),
            "y"
        );
        assert!(aim_output_redaction(Some(&two), 0, true, "Aim").is_err());
        assert!(aim_output_redaction(Some(&two), 1, false, "Aim").is_err());
        let empty = json!({"all_redacted_messages": [{"role": "user", "content": "x"}, {"role": "assistant", "content": ""}]});
        assert!(aim_output_redaction(Some(&empty), 1, true, "Aim").is_err());
    }
}
