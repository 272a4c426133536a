//! `POST /v1/chat/completions`: the request path of docs/spec/gateway.md
//! section 4, as the phases of [`super::pipeline`] compose it for OpenAI's
//! chat body ([`ChatRequest::parse`]: one decode of every byte).

pub mod meter;

use axum::body::Body;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use super::pipeline::{
    Guarded, Meta, Plan, accounting, admit, call, conversation, guard_stream, json, passthrough,
    read, record, resolve, rewrite_list, rewritten_messages, select, sse_response,
};
use crate::config::Deployment;
use crate::context::CallContext;
use crate::error::Error;
use crate::guardrails::{self, stream as gstream};
use crate::providers::{Payload, UpstreamBody};
use crate::state::AppState;
use crate::wire::ChatRequest;
use meter::Accounting;

/// The request path, phase by phase (the pipeline's doc numbers them).
pub(super) async fn handle(
    state: &AppState,
    ctx: &CallContext,
    headers: &HeaderMap,
    body: Body,
    meta: &mut Meta,
) -> Result<Response, Error> {
    let (caller, holds) = admit(state, headers, meta)?;
    let bytes = read(state, headers, body).await?;
    let req = ChatRequest::parse(&bytes)?;
    record(&req, &caller);
    let target = resolve(state, &caller, &req, meta)?;
    let (selection, info) = select(state, ctx, headers, &caller, &req)?;
    let mut conv = conversation(&selection, &req)?;
    guardrails::pre_call(&selection, &info, &mut meta.applied, &req, &mut conv).await?;
    let new_messages = rewritten_messages(&req, &conv);
    let rewrites = rewrite_list(new_messages.as_deref(), &conv);
    let plan = Plan::new(state, &caller, &req, &rewrites);
    let guarded = Guarded {
        selection: &selection,
        info: &info,
        conv: &conv,
    };
    let build = |d: &Deployment, model: &str| Ok(Payload::Chat(plan.body(d, model)));
    let called = call(state, &caller, &target, &req, &build, &guarded, meta).await?;
    let (member, acct) = accounting(ctx, &caller, holds, called.in_flight, meta)?;
    let status = called.upstream.status;
    match called.upstream.body {
        UpstreamBody::Full(body) => answer(body, status, acct, &req, &guarded, meta).await,
        UpstreamBody::Stream(body) => {
            let usage = plan.usage_chunk(&member.d, &req);
            let idle = state.router.idle_timeout(&member.d);
            let body = match guard_stream(body, usage, idle, acct, called.sockets, meta) {
                Ok(items) => gstream::into_body(items),
                Err(body) => passthrough(body),
            };
            Ok(sse_response(status, body))
        }
    }
}

/// Phase 6, a whole answer: its tokens counted, post_call checks, then the
/// JSON.
async fn answer(
    body: bytes::Bytes,
    status: StatusCode,
    acct: Accounting,
    req: &ChatRequest<'_>,
    guarded: &Guarded<'_, '_>,
    meta: &mut Meta,
) -> Result<Response, Error> {
    if let Some(usage) = meter::usage_of(&body) {
        acct.record(usage);
    }
    let body = if guarded.selection.has_post_call() {
        let (sel, info, conv) = (guarded.selection, guarded.info, guarded.conv);
        guardrails::post_call(sel, info, &mut meta.applied, req, conv, body).await?
    } else {
        body
    };
    Ok(json(status, body))
}

/// Future sizes are part of the hot path: a large request future is copied
/// whole each time axum, tower and hyper move it (a 26 KB one cost half the
/// gateway's instructions per request). These bounds keep them in check.
#[cfg(test)]
#[allow(unreachable_code, unused_variables, clippy::diverging_sub_expression)]
mod future_sizes {
    use super::*;

    fn size<F: Fn() -> Fut, Fut>(_f: F) -> usize {
        std::mem::size_of::<Fut>()
    }

    #[test]
    fn request_futures_stay_small() {
        let outer =
            size(|| super::super::pipeline::respond(todo!(), todo!(), todo!(), todo!(), todo!()));
        let inner = size(|| handle(todo!(), todo!(), todo!(), todo!(), todo!()));
        assert!(outer <= 1024, "respond future is {outer} bytes");
        assert!(inner <= 8 * 1024, "handle future is {inner} bytes");
    }
}
