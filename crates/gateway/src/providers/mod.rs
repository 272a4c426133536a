//! The upstream APIs: one module per provider behind one [`Provider`] trait
//! (build the request, map the answer, map the stream, map errors), and
//! [`send`], one call to one deployment: build the HTTP request, send it with
//! the shared pooled client, and turn what comes back into an
//! [`UpstreamResponse`] in the OpenAI chat format, whose body is a stream of
//! bytes, never collected unless the caller needs to.
//!
//! - [`openai`]: OpenAI and every OpenAI-compatible provider (the body and
//!   the answer pass through as they are);
//! - [`azure`]: Azure OpenAI (its deployment URL and `api-key` header);
//! - [`anthropic`]: Anthropic's Messages API (the chat body and the answer
//!   translated both ways; a `/v1/messages` body goes as it is);
//! - [`mock`]: a deployment with `mock_response` answers without any network
//!   call, so the rest of the request path cannot tell the difference.

pub mod anthropic;
pub mod azure;
pub mod mock;
pub mod openai;

use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use bytes::Bytes;
use futures_util::TryStreamExt;
use http_body_util::BodyExt;
use hyper::body::Body as _;
use tokio::time::Instant;

use crate::body::budget::Budget;
use crate::body::{BodyStream, Collect, collect};
use crate::config::{Deployment, Flavor};
use crate::error::fmt_secs;
use crate::error::{Error, Secrets};
use crate::outbound::{BodyError, HeaderBlock, HttpClient, PooledBody, SendError};

/// One kind of upstream API. The defaults are the OpenAI chat format, which
/// the rest of the gateway speaks: a provider that speaks it too overrides
/// only its request head.
pub trait Provider: Sync {
    /// The headers of every call to `d` (encoded once per deployment).
    fn request_head(&self, d: &Deployment) -> HeaderBlock;

    /// The call for `d`, from the OpenAI chat body the endpoint built.
    fn request(&self, _d: &Deployment, chat: Vec<u8>) -> Result<Outgoing, Error> {
        Ok(Outgoing {
            body: chat,
            headers: vec![],
            answer: Answer::AsIs,
        })
    }

    /// A whole 2xx answer, as an OpenAI chat completion. `alias`: the model
    /// name the client asked for; `secrets`: what to mask in an error the
    /// answer turns out to be.
    fn map_answer(
        &self,
        _d: &Deployment,
        _answer: &Answer,
        _alias: &str,
        _secrets: &Arc<Secrets>,
        body: Bytes,
    ) -> Result<Bytes, Error> {
        Ok(body)
    }

    /// A streamed 2xx answer, as OpenAI chat chunks (SSE).
    fn map_stream(
        &self,
        _d: &Deployment,
        _answer: Answer,
        _alias: &str,
        _secrets: &Arc<Secrets>,
        body: BodyStream,
    ) -> BodyStream {
        body
    }

    /// A non-2xx answer (its body, when one was read, already scrubbed of
    /// configured secrets).
    fn map_error(
        &self,
        d: &Deployment,
        status: StatusCode,
        body: Option<Bytes>,
        retry_after: Option<f64>,
    ) -> Error {
        openai::error(d, status, body, retry_after)
    }
}

/// What an endpoint sends to one deployment.
pub enum Payload {
    /// An OpenAI chat body: the provider translates it, and its answer back
    /// into OpenAI's format.
    Chat(Vec<u8>),
    /// A body in the deployment's own format (a `/v1/messages` body for an
    /// Anthropic deployment, see [`speaks_messages`]) with this call's own
    /// headers; the answer comes back as the upstream sent it.
    Native {
        body: Vec<u8>,
        headers: Vec<(HeaderName, HeaderValue)>,
    },
}

/// One call as a provider builds it.
pub struct Outgoing {
    pub body: Vec<u8>,
    /// Headers of this call alone (after the deployment's).
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// What the answer's mapping needs to know of the request.
    pub answer: Answer,
}

/// How an answer is mapped back, as the request's translation decided.
pub enum Answer {
    /// As it came (OpenAI's format, or a [`Payload::Native`] call).
    AsIs,
    /// An Anthropic message, to a chat completion.
    Anthropic(Box<anthropic::ResponseContext>),
}

/// The provider a deployment speaks.
pub fn provider(d: &Deployment) -> &'static dyn Provider {
    match d.flavor {
        Flavor::OpenAi => &openai::OpenAi,
        Flavor::Azure => &azure::Azure,
        Flavor::Anthropic => &anthropic::call::Anthropic,
    }
}

/// `d` takes Anthropic's Messages API itself: a `/v1/messages` request goes
/// to it as it is ([`Payload::Native`]) and its answer comes back so.
pub fn speaks_messages(d: &Deployment) -> bool {
    d.flavor == Flavor::Anthropic && d.mock_response.is_none()
}

/// A successful (2xx) upstream answer.
pub struct UpstreamResponse {
    pub status: StatusCode,
    pub body: UpstreamBody,
    /// Headers of the upstream's answer the client gets too (Anthropic's
    /// rate limits, as `x-ratelimit-*`).
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

pub enum UpstreamBody {
    /// A non-streaming answer, read whole within the timeout.
    Full(Bytes),
    /// A stream, read as the client reads it.
    Stream(BodyStream),
}

/// Upper bound on an error body read (an answer's own bound is
/// `general_settings.max_response_size_mb`, in the [`Budget`]).
const MAX_ERROR_BODY: usize = 64 * 1024;

/// The headers of every call to `d`: its provider's.
pub fn request_head(d: &Deployment) -> HeaderBlock {
    provider(d).request_head(d)
}

/// The headers of an OpenAI-style call: content type, the key in `key`,
/// extra headers.
pub(crate) fn json_head(d: &Deployment, key: &HeaderName) -> HeaderBlock {
    let content_type = HeaderValue::from_static("application/json");
    let key = d.api_key.is_some().then_some((key, &d.auth_header));
    HeaderBlock::new(
        d.url.as_ref(),
        [(&header::CONTENT_TYPE, &content_type)]
            .into_iter()
            .chain(key)
            .chain(d.extra_headers.iter().map(|(n, v)| (n, v))),
    )
}

/// How answers are read: whole ones within the gateway's memory budget,
/// error bodies with every configured secret masked.
#[derive(Debug)]
pub struct Reading {
    pub budget: Arc<Budget>,
    pub secrets: Arc<Secrets>,
}

/// One call to one deployment.
pub struct Call<'a> {
    pub d: &'a Deployment,
    /// `d`'s [`request_head`].
    pub head: &'a HeaderBlock,
    pub payload: Payload,
    pub stream: bool,
    /// The model name the client asked for (what a translated answer
    /// carries).
    pub alias: &'a str,
}

/// Send `call.payload` to `call.d`. Within `timeout`: the response head for
/// a stream, the whole answer otherwise. Non-2xx answers become
/// [`Error::Upstream`] with the upstream's status.
pub async fn send(
    http: &HttpClient,
    call: Call<'_>,
    timeout: Duration,
    reading: &Reading,
) -> Result<UpstreamResponse, Error> {
    let Call {
        d,
        head,
        payload,
        stream,
        alias,
    } = call;
    let budget = &reading.budget;
    if let Some(text) = &d.mock_response {
        return Ok(mock::respond(text, &d.upstream_model, stream));
    }
    let provider = provider(d);
    let outgoing = match payload {
        Payload::Chat(chat) => provider.request(d, chat)?,
        Payload::Native { body, headers } => Outgoing {
            body,
            headers,
            answer: Answer::AsIs,
        },
    };
    let Some(url) = &d.url else {
        return Err(Error::Internal("deployment without a URL".into()));
    };
    let deadline = Instant::now() + timeout;
    let extra = outgoing.headers.iter().map(|(n, v)| (n, v));
    let call = http.post(
        d.ssl_verify.as_ref(),
        url,
        head,
        extra,
        Bytes::from(outgoing.body),
    );
    let answer = outgoing.answer;
    let response = match tokio::time::timeout_at(deadline, call).await {
        Err(_) => return Err(timed_out(d, timeout)),
        Ok(Err(e)) => return Err(transport_error(d, &e)),
        Ok(Ok(r)) => r,
    };
    let status = response.status();
    if status.is_informational() || status.is_redirection() || status.as_u16() > 599 {
        // Not an answer a client could act on (and a redirect would point it
        // at the upstream itself).
        tracing::debug!(model = %d.model_name, status = status.as_u16(), "upstream answered an unexpected status");
        return Err(Error::UpstreamUnreachable(format!(
            "the upstream for model '{}' answered with an unexpected HTTP status {}",
            d.model_name,
            status.as_u16()
        )));
    }
    if !status.is_success() {
        return Err(upstream_error(d, response, deadline, reading).await);
    }
    let headers = match d.flavor {
        Flavor::Anthropic => anthropic::response::ratelimit_headers(response.headers()),
        _ => vec![],
    };
    // The declared length, as the body knows it (whatever the transport).
    let declared = response
        .body()
        .size_hint()
        .exact()
        .and_then(|n| usize::try_from(n).ok());
    let body = response.into_body().into_data_stream();
    if !stream {
        let limit = budget.max_response();
        let read = collect(body, limit, declared, Some(budget));
        return match tokio::time::timeout_at(deadline, read).await {
            Err(_) => Err(timed_out(d, timeout)),
            Ok(Ok(body)) => Ok(UpstreamResponse {
                status,
                headers,
                body: UpstreamBody::Full(match answer {
                    Answer::AsIs => body,
                    _ => provider.map_answer(d, &answer, alias, &reading.secrets, body)?,
                }),
            }),
            Ok(Err(Collect::TooLarge)) => Err(Error::UpstreamUnreachable(format!(
                "the upstream for model '{}' sent an answer over {limit} bytes (max_response_size_mb)",
                d.model_name
            ))),
            Ok(Err(Collect::OverBudget)) => Err(budget.refusal()),
            Ok(Err(Collect::Failed(e))) => Err(broke_off(&d.model_name, &e)),
        };
    }
    let model = d.model_name.clone();
    let body = body.map_err(move |e| broke_off(&model, &e));
    Ok(UpstreamResponse {
        status,
        headers,
        body: UpstreamBody::Stream(match answer {
            Answer::AsIs => Box::pin(body),
            _ => provider.map_stream(d, answer, alias, &reading.secrets, Box::pin(body)),
        }),
    })
}

fn broke_off(model: &str, e: &BodyError) -> Error {
    tracing::warn!(model = %model, error = %e, "upstream body failed");
    Error::UpstreamUnreachable(format!(
        "the upstream for model '{model}' broke off its response"
    ))
}

fn timed_out(d: &Deployment, timeout: Duration) -> Error {
    Error::UpstreamTimeout(format!(
        "the upstream for model '{}' timed out after {}s",
        d.model_name,
        fmt_secs(timeout)
    ))
}

fn transport_error(d: &Deployment, e: &SendError) -> Error {
    tracing::debug!(model = %d.model_name, error = ?e, "upstream request failed");
    let what = if e.is_connect() {
        "could not connect"
    } else {
        "the connection failed"
    };
    Error::UpstreamUnreachable(format!(
        "the upstream for model '{}' is unreachable: {what}",
        d.model_name
    ))
}

/// Read a non-2xx answer (bounded, within the deadline) and let the
/// provider map it; every configured secret is masked first (an upstream's
/// 401 may quote the key it got).
async fn upstream_error(
    d: &Deployment,
    response: axum::http::Response<PooledBody>,
    deadline: Instant,
    reading: &Reading,
) -> Error {
    let (secrets, budget) = (&reading.secrets, &reading.budget);
    let status = response.status();
    let retry_after = response.headers().get(header::RETRY_AFTER).cloned();
    let read = collect(
        response.into_body().into_data_stream(),
        MAX_ERROR_BODY,
        None,
        Some(budget),
    );
    let body = tokio::time::timeout_at(deadline, read)
        .await
        .ok()
        .and_then(Result::ok);
    tracing::debug!(model = %d.model_name, status = status.as_u16(), "upstream answered with an error");
    let retry_after = retry_after.and_then(|v| v.to_str().ok()?.trim().parse::<f64>().ok());
    provider(d).map_error(d, status, body.map(|b| secrets.scrub(b)), retry_after)
}
