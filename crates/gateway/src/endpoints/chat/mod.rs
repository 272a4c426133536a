//! `POST /v1/chat/completions`: the request path of docs/spec/gateway.md section 4.
//!
//! `handle` runs the phases in order; each is a function of its own:
//!
//! 1. `admit`: authenticate the caller, take the global and key permits;
//! 2. `read`: read the body once (bounded), then parse it
//!    ([`ChatRequest::parse`]: one decode of every byte);
//! 3. `resolve`: the model group, which the key must be allowed;
//! 4. `select` the guardrails, derive what they read (`conversation`)
//!    and run the pre_call ones (an anonymize rewrites what goes upstream);
//! 5. `call`: the upstream through the router, while the during_call
//!    checks run and (for a checked stream) the guardrail websockets open;
//! 6. `answer` (post_call checks of a whole completion) or `relay` (the
//!    stream through the post_call guardrails);
//! 7. [`respond`]: the call id, model id, applied guardrails and overhead
//!    headers on success and error alike, and the request's metrics.

pub mod meter;

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use tokio::time::Instant;
use tracing::Instrument;

use crate::auth::Caller;
use crate::body::{BodyStream, coalesce, read_body};
use crate::config::{Deployment, RoutingStrategy};
use crate::context::{CallContext, OVERHEAD_HEADER, millis};
use crate::error::Error;
use crate::guardrails::{
    self, Applied, CallInfo, Conversation, Guardrail, Selection, stream as gstream,
};
use crate::outbound::Socket;
use crate::providers::{UpstreamBody, UpstreamResponse};
use crate::router::{InFlight, Member, Target};
use crate::state::AppState;
use crate::wire::{ChatRequest, chat as request};
use meter::{Accounting, Holds, UsageChunk};

// Built at compile time: `from_static` outside a const validates every call.
const MODEL_ID: HeaderName = HeaderName::from_static("x-litellm-model-id");
const MODEL_GROUP: HeaderName = HeaderName::from_static("x-litellm-model-group");
const ATTEMPTED_RETRIES: HeaderName = HeaderName::from_static("x-litellm-attempted-retries");
const ATTEMPTED_FALLBACKS: HeaderName = HeaderName::from_static("x-litellm-attempted-fallbacks");
const APPLIED_GUARDRAILS: HeaderName = HeaderName::from_static("x-litellm-applied-guardrails");
const ACCEL_BUFFERING: HeaderName = HeaderName::from_static("x-accel-buffering");

/// What the response headers report, filled in as the request goes.
#[derive(Default)]
struct Meta {
    member: Option<Arc<Member>>,
    /// The configured group: a wildcard group's pattern (metrics labels
    /// never carry a client's text).
    group: Option<String>,
    /// The requested name a wildcard group answered for.
    model: Option<String>,
    applied: Applied,
    retries: u32,
    fallbacks: u32,
    /// Time spent waiting on the upstream model, not counted as overhead.
    upstream_wait: Duration,
    /// `x-ratelimit-*` for a key with limits.
    rate_headers: Vec<(HeaderName, HeaderValue)>,
}

/// A chat completion, start to finish: the response, errors included, with
/// the `x-litellm-*` headers and the request's metrics recorded.
pub async fn respond(
    state: &AppState,
    ctx: &CallContext,
    headers: &HeaderMap,
    body: Body,
) -> Response {
    let mut meta = Meta::default();
    let span = tracing::info_span!(
        "request",
        call_id = ctx.call_id.to_str().unwrap_or_default(),
        model = tracing::field::Empty,
        key_alias = tracing::field::Empty,
        stream = tracing::field::Empty,
        status = tracing::field::Empty,
    );
    // Boxed: axum and tower move the handler future several times on its
    // way to the executor; a pointer moves cheaply.
    let handled = Box::pin(handle(state, ctx, headers, body, &mut meta))
        .instrument(span.clone())
        .await;
    let mut response = match handled {
        Ok(r) => r,
        Err(e) => span.in_scope(|| e.into_response()),
    };
    let status = response.status().as_u16();
    let took = ctx.started.elapsed();
    span.record("status", status);
    tracing::debug!(parent: &span, status, took_ms = took.as_secs_f64() * 1000.0, "request finished");
    match &meta.member {
        Some(m) => m.stats.request(status, took),
        None => state
            .metrics
            .unrouted(meta.group.as_deref().unwrap_or_default(), status, took),
    }
    let h = response.headers_mut();
    if let Some(v) = meta.member.as_ref().and_then(|m| m.id_header.clone()) {
        h.insert(MODEL_ID, v);
    }
    if let Some(g) = meta.model.as_ref().or(meta.group.as_ref())
        && let Ok(v) = HeaderValue::from_str(g)
    {
        h.insert(MODEL_GROUP, v);
        h.insert(ATTEMPTED_RETRIES, HeaderValue::from(meta.retries));
        h.insert(ATTEMPTED_FALLBACKS, HeaderValue::from(meta.fallbacks));
    }
    if let Some(applied) = meta.applied.header_value()
        && let Ok(v) = HeaderValue::from_str(&applied)
    {
        h.insert(APPLIED_GUARDRAILS, v);
    }
    for (name, value) in meta.rate_headers.drain(..) {
        h.entry(name).or_insert(value);
    }
    let overhead = ctx.started.elapsed().saturating_sub(meta.upstream_wait);
    h.insert(OVERHEAD_HEADER, millis(overhead));
    response
}

/// The request path, phase by phase (the module doc numbers them).
async fn handle(
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
    let new_messages = conv
        .rewritten
        .iter()
        .any(Option::is_some)
        .then(|| request::rewrite_contents(&req.messages, &conv.rewritten));
    let rewrites: Vec<(&str, &[u8])> = new_messages
        .as_deref()
        .map(|m| ("messages", m))
        .into_iter()
        .chain(conv.fields.iter().map(|(k, v)| (*k, v.as_slice())))
        .collect();
    let plan = Plan::new(state, &caller, &req, &rewrites);
    let guarded = Guarded {
        selection: &selection,
        info: &info,
        conv: &conv,
    };
    let called = call(state, &caller, &target, &req, &plan, &guarded, meta).await?;
    let Some(member) = meta.member.clone() else {
        return Err(Error::Internal("routed without a deployment".into()));
    };
    member.stats.upstream(meta.upstream_wait);
    let acct = Accounting {
        member: Some(member.clone()),
        key: caller.key_entry().map(|k| k.limiter.clone()),
        stats: member.stats.clone(),
        started: ctx.started,
        holds: Holds {
            in_flight: called.in_flight,
            ..holds
        },
    };
    match called.upstream.body {
        UpstreamBody::Full(body) => {
            let status = called.upstream.status;
            answer(body, status, acct, &req, &guarded, meta).await
        }
        UpstreamBody::Stream(body) => {
            let status = called.upstream.status;
            let usage = plan.usage_chunk(&member.d, &req);
            let idle = state.router.idle_timeout(&member.d);
            Ok(relay(body, status, usage, idle, acct, called.sockets, meta))
        }
    }
}

/// Phase 1: authenticate, then take the global and the key's permits (429
/// past a limit).
fn admit(state: &AppState, headers: &HeaderMap, meta: &mut Meta) -> Result<(Caller, Holds), Error> {
    let gauge = state.metrics.gauge();
    let caller = state.keys.authenticate(headers)?;
    let global = state.global.admit().inspect_err(|_| {
        state.metrics.rate_limited("global");
    })?;
    let key = match caller.key_entry() {
        Some(k) => {
            let permit = k
                .limiter
                .admit(&k.cfg)
                .inspect_err(|_| state.metrics.rate_limited("key"))?;
            meta.rate_headers = k.limiter.headers(&k.cfg);
            Some(permit)
        }
        None => None,
    };
    Ok((
        caller,
        Holds {
            gauge: Some(gauge),
            in_flight: None,
            key,
            global: Some(global),
        },
    ))
}

/// Phase 2: the body, read once within its size and time limits.
async fn read(state: &AppState, headers: &HeaderMap, body: Body) -> Result<bytes::Bytes, Error> {
    let read = read_body(body, headers, state.settings.max_request_bytes);
    tokio::time::timeout(state.settings.body_timeout, read)
        .await
        .map_err(|_| Error::RequestTimeout(state.settings.body_timeout))?
}

/// The request's span gets what it is about (never the key).
fn record(req: &ChatRequest, caller: &Caller) {
    let span = tracing::Span::current();
    span.record("model", req.model.as_str());
    span.record("stream", req.stream);
    if let Some(alias) = caller.alias() {
        span.record("key_alias", alias);
    }
}

/// Phase 3: the model group, which the key must be allowed.
fn resolve<'s>(
    state: &'s AppState,
    caller: &Caller,
    req: &ChatRequest,
    meta: &mut Meta,
) -> Result<Target<'s>, Error> {
    let target = state.router.resolve(&req.model)?;
    if !caller.may_use(&req.model) {
        return Err(Error::ModelAccessDenied {
            model: req.model.clone(),
            allowed: caller
                .virtual_key()
                .map(|k| k.models.clone())
                .unwrap_or_default(),
        });
    }
    meta.group = Some(target.group.name.clone());
    meta.model = target.wildcard_name();
    Ok(target)
}

/// Phase 4: the guardrails of this request, and what they tell the vendor
/// about it.
fn select(
    state: &AppState,
    ctx: &CallContext,
    headers: &HeaderMap,
    caller: &Caller,
    req: &ChatRequest,
) -> Result<(Selection, CallInfo), Error> {
    let selection = state.guardrails.select(caller, &req.requested_guardrails)?;
    let info = CallInfo {
        call_id: Some(ctx.call_id.clone()),
        user_email: headers.get("x-aim-user-email").cloned(),
        key_alias: caller.alias().map(str::to_owned),
        key_email: caller
            .virtual_key()
            .and_then(|k| k.user_email.as_deref())
            .and_then(|e| HeaderValue::from_str(e).ok()),
    };
    Ok((selection, info))
}

/// What the guardrails read, derived from the request being forwarded; a
/// request they cannot read whole is refused here, before any call.
fn conversation<'r>(
    selection: &Selection,
    req: &'r ChatRequest<'r>,
) -> Result<Conversation<'r>, Error> {
    if selection.is_empty() {
        return Ok(Conversation::unchecked(&req.messages));
    }
    let conv = Conversation::new(&req.messages)?;
    selection.check_inspectable(&conv)?;
    Ok(conv)
}

/// How the upstream body is built for each deployment the router tries.
struct Plan<'p> {
    req: &'p ChatRequest<'p>,
    rewrites: &'p [(&'p str, &'p [u8])],
    /// The key or the routing needs token counts.
    tokens: bool,
}

impl<'p> Plan<'p> {
    fn new(
        state: &AppState,
        caller: &Caller,
        req: &'p ChatRequest<'p>,
        rewrites: &'p [(&'p str, &'p [u8])],
    ) -> Self {
        let key_tpm = caller.virtual_key().is_some_and(|k| k.tpm_limit.is_some());
        let usage_based = state.router.settings().strategy == RoutingStrategy::UsageBased;
        Plan {
            req,
            rewrites,
            tokens: key_tpm || usage_based,
        }
    }

    /// Token accounting needs a stream's usage chunk: ask for it when the
    /// client did not (and take it out again on the way back).
    fn inject_usage(&self, d: &Deployment) -> bool {
        self.req.stream && !self.req.include_usage && (self.tokens || d.tpm.is_some())
    }

    fn body(&self, d: &Deployment, model: &str) -> Vec<u8> {
        let extra: &[(&str, &str)] = if self.inject_usage(d) {
            &[("stream_options", r#"{"include_usage":true}"#)]
        } else {
            &[]
        };
        self.req.upstream_body(model, self.rewrites, extra)
    }

    fn usage_chunk(&self, d: &Deployment, req: &ChatRequest) -> UsageChunk {
        if self.inject_usage(d) {
            UsageChunk::Strip
        } else if req.include_usage {
            UsageChunk::Forward
        } else {
            UsageChunk::Absent
        }
    }
}

/// The guardrails of a request, as the later phases need them.
struct Guarded<'g, 'r> {
    selection: &'g Selection,
    info: &'g CallInfo,
    conv: &'g Conversation<'r>,
}

/// What phase 5 got: the answer, the guardrail websockets of a checked
/// stream, and the answering deployment's in-flight count.
struct Called {
    upstream: UpstreamResponse,
    sockets: Vec<(Arc<Guardrail>, Option<Socket>)>,
    in_flight: Option<InFlight>,
}

/// Phase 5: the upstream call through the router, the during_call checks
/// and (for a checked stream) the guardrail websockets, all at once; a
/// block or failure in any of them drops the others.
async fn call(
    state: &AppState,
    caller: &Caller,
    target: &Target<'_>,
    req: &ChatRequest<'_>,
    plan: &Plan<'_>,
    guarded: &Guarded<'_, '_>,
    meta: &mut Meta,
) -> Result<Called, Error> {
    let checked_stream = req.stream && guarded.selection.has_post_call();
    let mut routed = None;
    let mut waited = Duration::ZERO;
    let upstream = async {
        let started = Instant::now();
        // A fallback is tried only if the key may use it too.
        let allowed = |name: &str| caller.may_use(name);
        let build = |d: &Deployment, model: &str| plan.body(d, model);
        let (r, result) = state
            .router
            .send(state.http.get(), target, req.stream, &allowed, &build)
            .await;
        waited = started.elapsed();
        routed = Some(r);
        result
    };
    let during = async {
        guardrails::during_call(guarded.selection, guarded.info, req, guarded.conv)
            .await
            .map_err(|(name, e)| (Some(name), e))
    };
    let sockets = async {
        let mut sockets = vec![];
        if checked_stream {
            for g in guarded.selection.post_call() {
                // Boxed: the websocket handshake future is ~11 KB, and this
                // path is the exception; it would bloat every request.
                sockets.push((
                    g.clone(),
                    Box::pin(gstream::connect(g, guarded.info)).await?,
                ));
            }
        }
        Ok(sockets)
    };
    let joined = tokio::try_join!(
        async { upstream.await.map_err(|e| (None, e)) },
        during,
        async { sockets.await.map_err(|e| (None, e)) }
    );
    meta.upstream_wait = waited;
    let mut in_flight = None;
    if let Some(r) = routed {
        meta.member = r.member;
        meta.group = Some(r.group);
        meta.model = r.model;
        meta.retries = r.retries;
        meta.fallbacks = r.fallbacks;
        in_flight = r.in_flight;
    }
    let (upstream, during_names, sockets) = match joined {
        Ok(v) => v,
        Err((name, e)) => {
            if let (Some(name), Error::GuardrailBlocked(_)) = (&name, &e) {
                meta.applied.add(name);
            }
            return Err(e);
        }
    };
    for name in &during_names {
        meta.applied.add(name);
    }
    Ok(Called {
        upstream,
        sockets,
        in_flight,
    })
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
    Ok((
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response())
}

/// Phase 6, a stream: metered (usage, idle timeout, time to first token),
/// then passed through, or relayed through each post_call guardrail's
/// websocket so that only verified chunks reach the client.
fn relay(
    body: BodyStream,
    status: StatusCode,
    usage: UsageChunk,
    idle: Duration,
    acct: Accounting,
    sockets: Vec<(Arc<Guardrail>, Option<Socket>)>,
    meta: &mut Meta,
) -> Response {
    let body = meter::meter(body, usage, idle, acct);
    let body: BodyStream = if sockets.is_empty() {
        passthrough(body)
    } else {
        let mut items = gstream::items(body);
        for (g, socket) in sockets {
            meta.applied.add(&g.cfg.name);
            if let Some(socket) = socket {
                items = gstream::stage(g, socket, items);
            }
        }
        gstream::into_body(items)
    };
    sse_response(status, body)
}

/// A stream passed through byte for byte; a failure after the first byte
/// becomes one SSE error frame, since the status has already gone out.
fn passthrough(body: BodyStream) -> BodyStream {
    Box::pin(futures_util::stream::unfold(
        Some(body),
        |body| async move {
            let mut body = body?;
            match body.next().await? {
                Ok(chunk) => Some((Ok(chunk), Some(body))),
                Err(e) => Some((Ok(e.sse_frame()), None)),
            }
        },
    ))
}

fn sse_response(status: StatusCode, body: BodyStream) -> Response {
    let mut response = Response::new(Body::from_stream(coalesce::Coalesce::new(body)));
    *response.status_mut() = status;
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(ACCEL_BUFFERING, HeaderValue::from_static("no"));
    response
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
        let outer = size(|| respond(todo!(), todo!(), todo!(), todo!()));
        let inner = size(|| handle(todo!(), todo!(), todo!(), todo!(), todo!()));
        assert!(outer <= 1024, "respond future is {outer} bytes");
        assert!(inner <= 8 * 1024, "handle future is {inner} bytes");
    }
}
