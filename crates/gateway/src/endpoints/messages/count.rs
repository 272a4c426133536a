//! `POST /v1/messages/count_tokens` (Claude Code calls it before a turn):
//! `{"input_tokens": N}` for a Messages body without `max_tokens`.
//!
//! For a group whose first deployment is an Anthropic one, the body goes
//! to that deployment's `.../v1/messages/count_tokens` (model swapped, the
//! gateway's `guardrails` field removed) and its answer comes back as it
//! is. For any other model the gateway estimates: one token per four bytes
//! of the body's `system`, `messages` and `tools`, as JSON. The caller must
//! be allowed the model.
//!
//! No model reads a count_tokens body, so no guardrail runs on it (as in
//! LiteLLM); but the provider would still receive the prompt. So when a
//! guardrail would run on the same request to `/v1/messages` (a default_on
//! one, the key's, or one the body names), the prompt is not sent
//! anywhere: the answer is the estimate.

use axum::body::Body;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use bytes::Bytes;
use serde::Deserialize;
use serde_json::value::RawValue;

use super::error::into_response;
use super::native::Members;
use super::response::json_str;
use crate::body::collect;
use crate::context::CallContext;
use crate::endpoints::pipeline::{Meta, admit, json, read};
use crate::error::Error;
use crate::providers;
use crate::state::AppState;

/// The fields an estimate reads; the rest is Anthropic's to validate.
#[derive(Deserialize)]
struct Body_<'a> {
    model: String,
    #[serde(borrow, default)]
    system: Option<&'a RawValue>,
    #[serde(borrow, default)]
    messages: Option<&'a RawValue>,
    #[serde(borrow, default)]
    tools: Option<&'a RawValue>,
    /// The gateway's own: guardrails the request asks for.
    #[serde(default)]
    guardrails: Option<Vec<String>>,
    #[serde(default)]
    metadata: Option<Metadata>,
}

#[derive(Deserialize)]
struct Metadata {
    #[serde(default)]
    guardrails: Option<Vec<String>>,
}

/// Upper bound on the answer read from Anthropic (`{"input_tokens":N}`).
const MAX_ANSWER: usize = 64 * 1024;

pub async fn count_tokens(
    state: &AppState,
    _ctx: &CallContext,
    headers: &HeaderMap,
    body: Body,
) -> Response {
    match count(state, headers, body).await {
        Ok(r) => r,
        Err(e) => into_response(e),
    }
}

async fn count(state: &AppState, headers: &HeaderMap, body: Body) -> Result<Response, Error> {
    let mut meta = Meta::default();
    let (caller, _holds) = admit(state, headers, &mut meta)?;
    let bytes = read(state, headers, body).await?;
    let parsed: Body_<'_> = serde_json::from_slice(&bytes)
        .map_err(|e| Error::invalid(format!("Invalid request body: {e}"), None))?;
    let target = state.router.resolve(&parsed.model)?;
    if !caller.may_use(&parsed.model) {
        return Err(Error::ModelAccessDenied {
            model: parsed.model.clone(),
            allowed: caller
                .virtual_key()
                .map(|k| k.models.clone())
                .unwrap_or_default(),
        });
    }
    let Some(member) = target.group.members.first() else {
        return Err(Error::UnknownModel(parsed.model.clone()));
    };
    let d = &member.d;
    let requested: Vec<String> = parsed
        .guardrails
        .iter()
        .flatten()
        .chain(
            parsed
                .metadata
                .iter()
                .flat_map(|m| m.guardrails.iter().flatten()),
        )
        .cloned()
        .collect();
    let guarded = !state.guardrails.select(&caller, &requested)?.is_empty();
    if guarded || !providers::speaks_messages(d) {
        let size: usize = [parsed.system, parsed.messages, parsed.tools]
            .iter()
            .flatten()
            .map(|r| r.get().len())
            .sum();
        let mut out = Vec::with_capacity(24);
        out.extend_from_slice(b"{\"input_tokens\":");
        out.extend_from_slice(itoa::Buffer::new().format(size.div_ceil(4)).as_bytes());
        out.push(b'}');
        return Ok(json(StatusCode::OK, out.into()));
    }
    let Some(url) = d
        .url
        .as_ref()
        .and_then(|u| format!("{u}/count_tokens").parse::<Uri>().ok())
    else {
        return Err(Error::Internal("deployment without a URL".into()));
    };
    let upstream = upstream_body(&bytes, &target.upstream_model(d))?;
    let providers::Payload::Native { body, headers } =
        providers::anthropic::call::native(d, upstream, &betas(headers))?
    else {
        return Err(Error::Internal("not a native payload".into()));
    };
    let extra = headers.iter().map(|(n, v)| (n, v));
    let timeout = state.router.timeout(d, false);
    let call = state.http.get().post(
        d.ssl_verify.as_ref(),
        &url,
        &member.request_head,
        extra,
        Bytes::from(body),
    );
    let unreachable = || {
        Error::UpstreamUnreachable(format!(
            "the upstream for model '{}' did not answer count_tokens",
            d.model_name
        ))
    };
    let response = tokio::time::timeout(timeout, async {
        let response = call.await.map_err(|_| unreachable())?;
        let status = response.status();
        let read = collect(
            http_body_util::BodyExt::into_data_stream(response.into_body()),
            MAX_ANSWER,
            None,
            None,
        );
        let body = read.await.map_err(|_| unreachable())?;
        Ok::<_, Error>((status, body))
    })
    .await
    .map_err(|_| unreachable())??;
    let (status, body) = response;
    if !status.is_success() {
        let body = state.router.reading().secrets.scrub(body);
        return Err(providers::anthropic::error::from_upstream(
            status,
            &body,
            None,
            &crate::error::Secrets::default(),
        ));
    }
    Ok(json(status, body))
}

/// The client's `anthropic-beta` values.
fn betas(headers: &HeaderMap) -> Vec<&str> {
    headers
        .get_all("anthropic-beta")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect()
}

/// The body with `model` swapped and the gateway's `guardrails` removed.
fn upstream_body(bytes: &[u8], model: &str) -> Result<Vec<u8>, Error> {
    let Members(members) = serde_json::from_slice(bytes)
        .map_err(|_| Error::invalid("Invalid request body: expected a JSON object", None))?;
    let mut out = Vec::with_capacity(bytes.len() + model.len());
    out.push(b'{');
    let mut first = true;
    for (k, v) in &members {
        if k == "guardrails" {
            continue;
        }
        if !first {
            out.push(b',');
        }
        first = false;
        json_str(&mut out, k);
        out.push(b':');
        if k == "model" {
            json_str(&mut out, model);
        } else {
            out.extend_from_slice(v.get().as_bytes());
        }
    }
    out.push(b'}');
    Ok(out)
}
