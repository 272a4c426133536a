//! One call to one deployment: build the HTTP request, send it with the shared
//! pooled client, and turn what comes back into an [`UpstreamResponse`] whose
//! body is a stream of bytes, never collected unless the caller needs to.
//!
//! A deployment with `mock_response` answers here too, without any network
//! call, so the rest of the request path cannot tell the difference.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use bytes::Bytes;
use futures_util::{Stream, TryStreamExt};
use http_body_util::BodyExt;
use hyper::body::Body as _;
use serde::Deserialize;
use tokio::time::Instant;

use crate::config::{Deployment, Flavor};
use crate::error::{Error, Secrets};
use crate::outbound::{BodyError, HeaderBlock, HttpClient, PooledBody, SendError};
use crate::proxy::budget::Budget;
use crate::proxy::{Collect, collect, mock};

static AZURE_KEY: HeaderName = HeaderName::from_static("api-key");

/// A response body as it arrives.
pub type BodyStream = Pin<Box<dyn Stream<Item = Result<Bytes, Error>> + Send>>;

/// A successful (2xx) upstream answer.
pub struct UpstreamResponse {
    pub status: StatusCode,
    pub body: UpstreamBody,
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

/// The headers of every call to `d`: content type, key, extra headers.
pub fn request_head(d: &Deployment) -> HeaderBlock {
    let content_type = HeaderValue::from_static("application/json");
    let name = match d.flavor {
        Flavor::OpenAi => &header::AUTHORIZATION,
        Flavor::Azure => &AZURE_KEY,
    };
    let key = d.api_key.is_some().then_some((name, &d.auth_header));
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

/// Send `body` to `d`, with `head` (its [`request_head`]). Within
/// `timeout`: the response head for a stream, the whole answer otherwise. Non-2xx answers become [`Error::Upstream`]
/// with the upstream's status.
pub async fn send(
    http: &HttpClient,
    d: &Deployment,
    head: &HeaderBlock,
    body: Vec<u8>,
    stream: bool,
    timeout: Duration,
    reading: &Reading,
) -> Result<UpstreamResponse, Error> {
    let budget = &reading.budget;
    if let Some(text) = &d.mock_response {
        return Ok(mock::respond(text, &d.upstream_model, stream));
    }
    let Some(url) = &d.url else {
        return Err(Error::Internal("deployment without a URL".into()));
    };
    let deadline = Instant::now() + timeout;
    let call = http.post(d.ssl_verify.as_ref(), url, head, [], Bytes::from(body));
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
                body: UpstreamBody::Full(body),
            }),
            Ok(Err(Collect::TooLarge)) => Err(Error::UpstreamUnreachable(format!(
                "the upstream for model '{}' sent an answer over {limit} bytes (max_response_size_mb)",
                d.model_name
            ))),
            Ok(Err(Collect::OverBudget)) => Err(over_budget(budget)),
            Ok(Err(Collect::Failed(e))) => Err(broke_off(&d.model_name, &e)),
        };
    }
    let model = d.model_name.clone();
    let body = body.map_err(move |e| broke_off(&model, &e));
    Ok(UpstreamResponse {
        status,
        body: UpstreamBody::Stream(Box::pin(body)),
    })
}

/// The gateway could not hold one more buffered answer.
pub fn over_budget(budget: &Budget) -> Error {
    Error::Overloaded(format!(
        "the gateway is holding as many answers in memory as it may ({} bytes, response_budget_mb); try again shortly",
        budget.limit()
    ))
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

pub fn fmt_secs(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s.fract() == 0.0 {
        format!("{s:.0}")
    } else {
        format!("{s}")
    }
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

#[derive(Deserialize)]
struct ErrorShape {
    error: serde_json::Value,
}

/// Map a non-2xx answer: an OpenAI-shaped body passes through, with every
/// configured secret masked (an upstream's 401 may quote the key it got).
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
    let shaped = body
        .filter(|b| serde_json::from_slice::<ErrorShape>(b).is_ok_and(|s| s.error.is_object()))
        .map(|b| secrets.scrub(b));
    tracing::debug!(model = %d.model_name, status = status.as_u16(), "upstream answered with an error");
    Error::Upstream {
        status,
        body: shaped,
        message: format!(
            "the upstream for model '{}' answered HTTP {}",
            d.model_name,
            status.as_u16()
        ),
        retry_after: retry_after.and_then(|v| v.to_str().ok()?.trim().parse::<f64>().ok()),
    }
}
