//! `POST /v1/chat/completions`: the request path of gateway.md section 4.
//!
//! 1. authenticate the caller;
//! 2. read the body once (bounded) and parse a view of it;
//! 3. resolve the model group and check the key may use it;
//! 4. select guardrails and run pre_call ones (a rewrite replaces messages);
//! 5. call the upstream through the router, while during_call guardrails run
//!    and (for a checked stream) the guardrail websockets open;
//! 6. post_call: check the completion, or relay the stream through the
//!    guardrails;
//! 7. respond, with the call id, model id, applied guardrails and overhead
//!    headers on success and error alike.

pub mod mock;
pub mod request;
pub mod sse;
pub mod upstream;

use std::sync::Arc;
use std::time::Duration;

use axum::Extension;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::{Bytes, BytesMut};
use futures_util::{Stream, StreamExt};
use tokio::time::Instant;

use crate::config::Deployment;
use crate::error::Error;
use crate::guardrails::{self, Applied, CallInfo, stream as gstream};
use crate::server::{AppState, CallContext};
use request::ChatRequest;
use upstream::{BodyStream, UpstreamBody};

/// What the response headers report, filled in as the request goes.
#[derive(Default)]
struct Meta {
    deployment: Option<Arc<Deployment>>,
    applied: Applied,
    /// Time spent waiting on the upstream model, not counted as overhead.
    upstream_wait: Duration,
}

pub async fn chat_completions(
    State(state): State<Arc<AppState>>,
    Extension(ctx): Extension<CallContext>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let mut meta = Meta::default();
    let mut response = match handle(&state, &ctx, &headers, body, &mut meta).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    };
    let h = response.headers_mut();
    if let Some(d) = &meta.deployment
        && let Ok(v) = HeaderValue::from_str(&d.id)
    {
        h.insert(HeaderName::from_static("x-litellm-model-id"), v);
    }
    if let Some(applied) = meta.applied.header_value()
        && let Ok(v) = HeaderValue::from_str(&applied)
    {
        h.insert(HeaderName::from_static("x-litellm-applied-guardrails"), v);
    }
    let overhead = ctx.started.elapsed().saturating_sub(meta.upstream_wait);
    h.insert(
        crate::server::OVERHEAD_HEADER,
        crate::server::millis(overhead),
    );
    response
}

async fn handle(
    state: &AppState,
    ctx: &CallContext,
    headers: &HeaderMap,
    body: Body,
    meta: &mut Meta,
) -> Result<Response, Error> {
    let caller = state.keys.authenticate(headers)?;
    let bytes = read_body(body, headers, state.settings.max_request_bytes).await?;
    let req = ChatRequest::parse(&bytes)?;
    let group = state
        .router
        .group(&req.model)
        .ok_or_else(|| Error::UnknownModel(req.model.clone()))?;
    if !caller.may_use(&req.model) {
        return Err(Error::ModelAccessDenied {
            model: req.model.clone(),
            allowed: caller
                .virtual_key()
                .map(|k| k.models.clone())
                .unwrap_or_default(),
        });
    }

    let selection = state
        .guardrails
        .select(&caller, &req.requested_guardrails)?;
    let info = CallInfo {
        call_id: ctx.call_id.to_str().unwrap_or_default().to_owned(),
        user_email: headers.get("x-aim-user-email").cloned(),
        key_alias: caller.alias().map(str::to_owned),
    };
    let mut messages = if selection.is_empty() {
        vec![]
    } else {
        guardrails::flatten(req.messages)
    };
    let rewritten =
        guardrails::pre_call(&selection, &info, &mut meta.applied, &mut messages).await?;
    let new_messages = rewritten.then(|| guardrails::messages_json(&messages));
    let build = |d: &Deployment| req.upstream_body(&d.upstream_model, new_messages.as_deref(), &[]);

    // The upstream call, the during_call checks and (for a checked stream)
    // the guardrail websockets all start now; a block or failure in any of
    // them drops the others.
    let checked_stream = req.stream && selection.has_post_call();
    let mut chosen = None;
    let mut waited = Duration::ZERO;
    let call = async {
        let started = Instant::now();
        let routed = state
            .router
            .send(&state.http, group, req.stream, &build)
            .await;
        chosen = routed.deployment;
        waited = started.elapsed();
        routed.result
    };
    let during = async {
        guardrails::during_call(&selection, &info, &messages)
            .await
            .map_err(|(name, e)| (Some(name), e))
    };
    let sockets = async {
        let mut sockets = vec![];
        if checked_stream {
            for g in selection.post_call() {
                sockets.push((g.clone(), gstream::connect(g, &info).await?));
            }
        }
        Ok(sockets)
    };
    let joined = tokio::try_join!(async { call.await.map_err(|e| (None, e)) }, during, async {
        sockets.await.map_err(|e| (None, e))
    });
    meta.deployment = chosen;
    meta.upstream_wait = waited;
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

    match upstream.body {
        UpstreamBody::Full(body) => {
            let body = if selection.has_post_call() {
                guardrails::post_call(&selection, &info, &mut meta.applied, &messages, body).await?
            } else {
                body
            };
            Ok((
                upstream.status,
                [(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                )],
                body,
            )
                .into_response())
        }
        UpstreamBody::Stream(body) => {
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
            Ok(sse_response(upstream.status, body))
        }
    }
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
    let mut response = Response::new(Body::from_stream(body));
    *response.status_mut() = status;
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        HeaderName::from_static("x-accel-buffering"),
        HeaderValue::from_static("no"),
    );
    response
}

/// Read the request body once, refusing it past `limit` bytes.
async fn read_body(body: Body, headers: &HeaderMap, limit: usize) -> Result<Bytes, Error> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(Error::PayloadTooLarge { limit });
    }
    collect(body.into_data_stream(), limit, declared)
        .await
        .map_err(|e| match e {
            Collect::TooLarge => Error::PayloadTooLarge { limit },
            Collect::Failed(e) => {
                tracing::debug!(error = %e, "request body read failed");
                Error::invalid("Could not read the request body", None)
            }
        })
}

pub enum Collect<E> {
    TooLarge,
    Failed(E),
}

/// Gather a body of at most `limit` bytes; one that arrives in a single
/// chunk is returned without a copy.
pub async fn collect<S, E>(
    mut body: S,
    limit: usize,
    hint: Option<usize>,
) -> Result<Bytes, Collect<E>>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
{
    let Some(first) = body.next().await else {
        return Ok(Bytes::new());
    };
    let first = first.map_err(Collect::Failed)?;
    if first.len() > limit {
        return Err(Collect::TooLarge);
    }
    let Some(second) = body.next().await else {
        return Ok(first);
    };
    let second = second.map_err(Collect::Failed)?;
    let mut buf =
        BytesMut::with_capacity(hint.unwrap_or(0).clamp(first.len() + second.len(), limit));
    buf.extend_from_slice(&first);
    let mut next = Some(second);
    while let Some(chunk) = next {
        if buf.len() + chunk.len() > limit {
            return Err(Collect::TooLarge);
        }
        buf.extend_from_slice(&chunk);
        next = match body.next().await {
            Some(c) => Some(c.map_err(Collect::Failed)?),
            None => None,
        };
    }
    Ok(buf.freeze())
}
