//! The phases every endpoint's request path is made of (gateway.md
//! section 4), each a function of its own; `chat` and `messages` compose
//! them in order:
//!
//! 1. `admit`: authenticate the caller, take the global and key permits;
//! 2. `read`: read the body once (bounded), then the endpoint parses it;
//! 3. `resolve`: the model group, which the key must be allowed;
//! 4. `select` the guardrails, derive what they read (`conversation`)
//!    and run the pre_call ones (an anonymize rewrites what goes upstream);
//! 5. `call`: the upstream through the router, while the during_call
//!    checks run and (for a checked stream) the guardrail websockets open;
//! 6. the endpoint's answer: post_call checks of a whole answer, or the
//!    stream metered and relayed through the post_call guardrails
//!    (`guard_stream`);
//! 7. [`respond`]: the call id, model id, applied guardrails and overhead
//!    headers on success and error alike, and the request's metrics.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use tokio::time::Instant;
use tracing::Instrument;

use super::chat::meter::{self, Accounting, Holds, UsageChunk};
use super::{chat, messages};
use crate::auth::Caller;
use crate::body::{BodyStream, coalesce, read_body};
use crate::config::{Deployment, RoutingStrategy};
use crate::context::{CallContext, OVERHEAD_HEADER, millis};
use crate::error::Error;
use crate::guardrails::{
    self, Applied, CallInfo, Conversation, Guardrail, Selection, stream as gstream,
};
use crate::metrics::Route;
use crate::outbound::Socket;
use crate::providers::{Payload, UpstreamResponse};
use crate::router::{InFlight, Member, Target};
use crate::state::AppState;
use crate::wire::{ChatRequest, chat as request};

/// The API a request speaks: the shape of its body, answers and errors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Api {
    /// OpenAI's chat completions.
    Chat,
    /// Anthropic's Messages.
    Messages,
}

// Built at compile time: `from_static` outside a const validates every call.
const MODEL_ID: HeaderName = HeaderName::from_static("x-litellm-model-id");
const MODEL_GROUP: HeaderName = HeaderName::from_static("x-litellm-model-group");
const ATTEMPTED_RETRIES: HeaderName = HeaderName::from_static("x-litellm-attempted-retries");
const ATTEMPTED_FALLBACKS: HeaderName = HeaderName::from_static("x-litellm-attempted-fallbacks");
const APPLIED_GUARDRAILS: HeaderName = HeaderName::from_static("x-litellm-applied-guardrails");
pub(super) const ACCEL_BUFFERING: HeaderName = HeaderName::from_static("x-accel-buffering");

/// What the response headers report, filled in as the request goes.
#[derive(Default)]
pub(super) struct Meta {
    pub(super) member: Option<Arc<Member>>,
    /// The configured group: a wildcard group's pattern (metrics labels
    /// never carry a client's text).
    pub(super) group: Option<String>,
    /// The requested name a wildcard group answered for.
    pub(super) model: Option<String>,
    pub(super) applied: Applied,
    pub(super) retries: u32,
    pub(super) fallbacks: u32,
    /// Time spent waiting on the upstream model, not counted as overhead.
    pub(super) upstream_wait: Duration,
    /// `x-ratelimit-*` for a key with limits.
    pub(super) rate_headers: Vec<(HeaderName, HeaderValue)>,
    /// Headers of the upstream's answer for the client (where the key's
    /// own limits say nothing).
    pub(super) upstream_headers: Vec<(HeaderName, HeaderValue)>,
}

/// One request of `api`, start to finish: the response, errors included
/// (in the API's own shape), with the `x-litellm-*` headers and the
/// request's metrics recorded.
pub async fn respond(
    state: &AppState,
    ctx: &CallContext,
    headers: &HeaderMap,
    body: Body,
    api: Api,
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
    let handled = match api {
        Api::Chat => {
            Box::pin(chat::handle(state, ctx, headers, body, &mut meta))
                .instrument(span.clone())
                .await
        }
        Api::Messages => {
            Box::pin(messages::handle(state, ctx, headers, body, &mut meta))
                .instrument(span.clone())
                .await
        }
    };
    let mut response = match handled {
        Ok(r) => r,
        Err(e) => span.in_scope(|| match api {
            Api::Chat => e.into_response(),
            Api::Messages => messages::error::into_response(e),
        }),
    };
    let status = response.status().as_u16();
    let took = ctx.started.elapsed();
    span.record("status", status);
    tracing::debug!(parent: &span, status, took_ms = took.as_secs_f64() * 1000.0, "request finished");
    let route = match api {
        Api::Chat => Route::Chat,
        Api::Messages => Route::Messages,
    };
    match &meta.member {
        Some(m) => m.stats.request(route, status, took),
        None => {
            let group = meta.group.as_deref().unwrap_or_default();
            state.metrics.unrouted(route, group, status, took)
        }
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
    for (name, value) in meta.upstream_headers.drain(..) {
        h.entry(name).or_insert(value);
    }
    let overhead = ctx.started.elapsed().saturating_sub(meta.upstream_wait);
    h.insert(OVERHEAD_HEADER, millis(overhead));
    response
}

/// Phase 1: authenticate, then take the global and the key's permits (429
/// past a limit).
pub(super) fn admit(
    state: &AppState,
    headers: &HeaderMap,
    meta: &mut Meta,
) -> Result<(Caller, Holds), Error> {
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
pub(super) async fn read(
    state: &AppState,
    headers: &HeaderMap,
    body: Body,
) -> Result<bytes::Bytes, Error> {
    let read = read_body(body, headers, state.settings.max_request_bytes);
    tokio::time::timeout(state.settings.body_timeout, read)
        .await
        .map_err(|_| Error::RequestTimeout(state.settings.body_timeout))?
}

/// The request's span gets what it is about (never the key).
pub(super) fn record(req: &ChatRequest, caller: &Caller) {
    let span = tracing::Span::current();
    span.record("model", req.model.as_str());
    span.record("stream", req.stream);
    if let Some(alias) = caller.alias() {
        span.record("key_alias", alias);
    }
}

/// Phase 3: the model group, which the key must be allowed.
pub(super) fn resolve<'s>(
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
pub(super) fn select(
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
pub(super) fn conversation<'r>(
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

/// The request's messages after an anonymizing pre_call guardrail rewrote
/// some of them (`None`: none was).
pub(super) fn rewritten_messages(req: &ChatRequest, conv: &Conversation) -> Option<Vec<u8>> {
    conv.rewritten
        .iter()
        .any(Option::is_some)
        .then(|| request::rewrite_contents(&req.messages, &conv.rewritten))
}

/// The top-level fields to replace upstream: the rewritten messages, and
/// fields a guardrail rewrote.
pub(super) fn rewrite_list<'a>(
    messages: Option<&'a [u8]>,
    conv: &'a Conversation,
) -> Vec<(&'a str, &'a [u8])> {
    messages
        .map(|m| ("messages", m))
        .into_iter()
        .chain(conv.fields.iter().map(|(k, v)| (*k, v.as_slice())))
        .collect()
}

/// How the upstream body is built for each deployment the router tries.
pub(super) struct Plan<'p> {
    req: &'p ChatRequest<'p>,
    rewrites: &'p [(&'p str, &'p [u8])],
    /// The key or the routing needs token counts.
    tokens: bool,
}

impl<'p> Plan<'p> {
    pub(super) fn new(
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

    pub(super) fn body(&self, d: &Deployment, model: &str) -> Vec<u8> {
        let extra: &[(&str, &str)] = if self.inject_usage(d) {
            &[("stream_options", r#"{"include_usage":true}"#)]
        } else {
            &[]
        };
        self.req.upstream_body(model, self.rewrites, extra)
    }

    pub(super) fn usage_chunk(&self, d: &Deployment, req: &ChatRequest) -> UsageChunk {
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
pub(super) struct Guarded<'g, 'r> {
    pub(super) selection: &'g Selection,
    pub(super) info: &'g CallInfo,
    pub(super) conv: &'g Conversation<'r>,
}

/// What phase 5 got: the answer, the guardrail websockets of a checked
/// stream, and the answering deployment's in-flight count.
pub(super) struct Called {
    pub(super) upstream: UpstreamResponse,
    pub(super) sockets: Vec<(Arc<Guardrail>, Option<Socket>)>,
    pub(super) in_flight: Option<InFlight>,
}

/// Phase 5: the upstream call through the router, the during_call checks
/// and (for a checked stream) the guardrail websockets, all at once; a
/// block or failure in any of them drops the others.
pub(super) async fn call(
    state: &AppState,
    caller: &Caller,
    target: &Target<'_>,
    req: &ChatRequest<'_>,
    build: &(dyn Fn(&Deployment, &str) -> Result<Payload, Error> + Sync),
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
        let (r, result) = state
            .router
            .send(state.http.get(), target, req.stream, &allowed, build)
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
    // A block or failure of a check drops the upstream call at once; an
    // upstream failure waits for the during_call checks instead, since it
    // is an answer too and none goes out before they pass (their block or
    // failure wins over it).
    let joined = tokio::try_join!(async { Ok(upstream.await) }, during, async {
        sockets.await.map_err(|e| (None, e))
    });
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
    let mut upstream = upstream?;
    meta.upstream_headers = std::mem::take(&mut upstream.headers);
    Ok(Called {
        upstream,
        sockets,
        in_flight,
    })
}

/// A stream passed through byte for byte; a failure after the first byte
/// becomes one SSE error frame, since the status has already gone out.
pub(super) fn passthrough(body: BodyStream) -> BodyStream {
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

pub(super) fn sse_response(status: StatusCode, body: BodyStream) -> Response {
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

/// Phase 6, a stream: metered (usage, idle timeout, time to first token),
/// then relayed through each post_call guardrail's websocket so that only
/// verified chunks go on (`None`: no post_call guardrail, the metered
/// stream is what goes on).
pub(super) fn guard_stream(
    body: BodyStream,
    usage: UsageChunk,
    idle: Duration,
    acct: Accounting,
    sockets: Vec<(Arc<Guardrail>, Option<Socket>)>,
    meta: &mut Meta,
) -> Result<gstream::Items, BodyStream> {
    let body = meter::meter(body, usage, idle, acct);
    if sockets.is_empty() {
        return Err(body);
    }
    let mut items = gstream::items(body);
    for (g, socket) in sockets {
        meta.applied.add(&g.cfg.name);
        if let Some(socket) = socket {
            items = gstream::stage(g, socket, items);
        }
    }
    Ok(items)
}

/// The accounting of a routed request: the answering deployment's tokens
/// and in-flight count, the key's tokens and permits.
pub(super) fn accounting(
    ctx: &CallContext,
    caller: &Caller,
    holds: Holds,
    called_in_flight: Option<InFlight>,
    meta: &Meta,
) -> Result<(Arc<Member>, Accounting), Error> {
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
            in_flight: called_in_flight,
            ..holds
        },
    };
    Ok((member, acct))
}

/// A JSON answer.
pub(super) fn json(status: StatusCode, body: bytes::Bytes) -> Response {
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
}
