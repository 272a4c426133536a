//! `POST /v1/messages`: the request path of [`crate::endpoints::pipeline`]
//! for Anthropic's Messages body.
//!
//! The body is decoded once ([`MessagesRequest::parse`]) and translated to
//! a chat body, which the chat parser reads: the guardrails inspect that
//! (the module doc of [`super`] says why it covers both kinds of
//! deployment). Each deployment the router tries gets the client's own
//! bytes when it speaks Messages itself ([`providers::speaks_messages`],
//! model swapped), or the chat body otherwise. The answer comes back in
//! the client's format either way:
//!
//! | deployment | JSON | stream |
//! |---|---|---|
//! | Anthropic | restamped ([`native::answer`]) | relayed ([`native::relay`]) |
//! | Anthropic, post_call | read as chat for the check; restamped, or rebuilt from the rewrite | Anthropic → chat chunks → checks → Messages events |
//! | OpenAI, Azure | chat → Messages ([`from_completion`]) | chat chunks (→ checks) → Messages events |

use axum::body::Body;
use axum::http::HeaderMap;
use axum::response::Response;
use bytes::Bytes;
use futures_util::StreamExt;

use super::native;
use super::request::MessagesRequest;
use super::response::from_completion;
use super::stream::Translator;
use crate::body::BodyStream;
use crate::config::Deployment;
use crate::context::CallContext;
use crate::endpoints::chat::meter::{UsageChunk, usage_of};
use crate::endpoints::pipeline::{
    Guarded, Meta, Plan, accounting, admit, call, conversation, guard_stream, json, read, record,
    resolve, rewrite_list, rewritten_messages, select, sse_response,
};
use crate::error::Error;
use crate::guardrails::inspect::cannot_rewrite;
use crate::guardrails::stream::{self as gstream, Item, Items};
use crate::guardrails::{self, Selection};
use crate::providers::{self, Payload, UpstreamBody, anthropic};
use crate::state::AppState;
use crate::wire::ChatRequest;

/// The request path, phase by phase (the pipeline's doc numbers them).
pub(in crate::endpoints) async fn handle(
    state: &AppState,
    ctx: &CallContext,
    headers: &HeaderMap,
    body: Body,
    meta: &mut Meta,
) -> Result<Response, Error> {
    let (caller, holds) = admit(state, headers, meta)?;
    let bytes = read(state, headers, body).await?;
    let m = MessagesRequest::parse(&bytes)?;
    let chat = m.to_chat();
    let req = ChatRequest::parse(&chat.bytes)?;
    record(&req, &caller);
    let target = resolve(state, &caller, &req, meta)?;
    let (selection, info) = select(state, ctx, headers, &caller, &req)?;
    check_readable(&selection, &m)?;
    let mut conv = conversation(&selection, &req)?;
    guardrails::pre_call(&selection, &info, &mut meta.applied, &req, &mut conv).await?;
    let new_messages = rewritten_messages(&req, &conv);
    let rewrites = rewrite_list(new_messages.as_deref(), &conv);
    let plan = Plan::new(state, &caller, &req, &rewrites);
    let betas: Vec<&str> = headers
        .get_all("anthropic-beta")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    let build = |d: &Deployment, model: &str| {
        if !providers::speaks_messages(d) {
            return Ok(Payload::Chat(plan.body(d, model)));
        }
        if !conv.fields.is_empty() {
            return Err(cannot_rewrite(
                "anonymize action requested for fields of the request other than its messages",
                "request",
            ));
        }
        let body = if new_messages.is_some() {
            m.anthropic_body_rewritten(model, &chat.origins, &conv.rewritten)?
        } else {
            m.anthropic_body(model)
        };
        anthropic::call::native(d, body, &betas)
    };
    let guarded = Guarded {
        selection: &selection,
        info: &info,
        conv: &conv,
    };
    let called = call(state, &caller, &target, &req, &build, &guarded, meta).await?;
    let (member, acct) = accounting(ctx, &caller, holds, called.in_flight, meta)?;
    let native = providers::speaks_messages(&member.d);
    let status = called.upstream.status;
    let model = req.model.as_str();
    match called.upstream.body {
        UpstreamBody::Full(body) if native => {
            let (usage, restamped) = native::answer(&body, model)?;
            if let Some(u) = usage {
                acct.record(u);
            }
            if !selection.has_post_call() {
                return Ok(json(status, restamped.into()));
            }
            // The check reads the answer as a chat completion; what the
            // client gets is the answer as it came, unless a guardrail
            // rewrote it. So nothing the chat view leaves out may be in it.
            if let Some(what) = native::unread_block(&body) {
                return Err(crate::guardrails::inspect::not_checkable(&what));
            }
            let secrets = &state.router.reading().secrets;
            let context = anthropic::ResponseContext::default();
            let completion = Bytes::from(anthropic::response::to_openai(
                &body, model, &context, secrets,
            )?);
            let (sel, info, conv) = (&selection, &info, &conv);
            let checked =
                guardrails::post_call(sel, info, &mut meta.applied, &req, conv, completion.clone())
                    .await?;
            let body = if checked == completion {
                restamped
            } else {
                from_completion(&checked, model)?
            };
            Ok(json(status, body.into()))
        }
        UpstreamBody::Full(body) => {
            if let Some(u) = usage_of(&body) {
                acct.record(u);
            }
            let body = if selection.has_post_call() {
                let (sel, info, conv) = (&selection, &info, &conv);
                guardrails::post_call(sel, info, &mut meta.applied, &req, conv, body).await?
            } else {
                body
            };
            Ok(json(status, from_completion(&body, model)?.into()))
        }
        UpstreamBody::Stream(body) => {
            let idle = state.router.idle_timeout(&member.d);
            if native && called.sockets.is_empty() {
                let secrets = state.router.reading().secrets.clone();
                let body = native::relay(body, model.to_owned(), idle, acct, secrets);
                return Ok(sse_response(status, body));
            }
            let (body, usage) = if native {
                // Read as chat chunks (usage included) for the checks.
                let context = anthropic::ResponseContext {
                    include_usage: true,
                    ..Default::default()
                };
                let secrets = state.router.reading().secrets.clone();
                let t =
                    anthropic::stream::Translator::new(model, context, secrets).keep_upstream_id();
                let chunks: BodyStream = Box::pin(anthropic::stream::translate(body, t, |_| {}));
                (chunks, UsageChunk::Forward)
            } else {
                (body, plan.usage_chunk(&member.d, &req))
            };
            let items = match guard_stream(body, usage, idle, acct, called.sockets, meta) {
                Ok(items) => items,
                Err(body) => gstream::items(body),
            };
            Ok(sse_response(status, events(items, Translator::new(model))))
        }
    }
}

/// What a selected guardrail cannot read is refused before anything is
/// sent: blocks the chat translation has no place for, and (with
/// `block_uninspectable`) content without text.
fn check_readable(selection: &Selection, m: &MessagesRequest) -> Result<(), Error> {
    if selection.is_empty() {
        return Ok(());
    }
    if let Some(e) = m.unreadable() {
        return Err(e);
    }
    if let Some(name) = selection.blocking_uninspectable()
        && let Some((path, kind)) = m.first_opaque()
    {
        return Err(Error::invalid(
            format!(
                "{path} is a block of type '{kind}', which guardrail '{name}' cannot read (block_uninspectable)"
            ),
            Some(&path),
        ));
    }
    Ok(())
}

/// Verified chat chunks as Messages events: the translator's events, and
/// one `error` event if the stream fails.
fn events(items: Items, translator: Translator) -> BodyStream {
    Box::pin(futures_util::stream::unfold(
        (items, translator),
        |(mut items, mut t)| async move {
            loop {
                if t.is_finished() {
                    return None;
                }
                let mut out = Vec::new();
                match items.next().await {
                    Some(Item::Data(d)) => {
                        // A chunk that cannot be translated ends the stream
                        // with an error event, already in `out`.
                        let _ = t.chunk(&d, &mut out);
                    }
                    Some(Item::Done) => t.done(&mut out),
                    Some(Item::Fail(e)) => {
                        tracing::info!(kind = e.kind(), "stream ended with an error event");
                        t.fail(&e, &mut out);
                    }
                    None => {
                        // The upstream ended without `[DONE]`.
                        t.done(&mut out);
                    }
                }
                if !out.is_empty() {
                    return Some((Ok(Bytes::from(out)), (items, t)));
                }
            }
        },
    ))
}
