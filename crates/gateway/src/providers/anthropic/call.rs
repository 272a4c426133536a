//! The `anthropic/` deployment as a [`Provider`]: the request's OpenAI chat
//! body translated ([`super::request::to_anthropic`]), the answer and the
//! stream translated back, errors classed as LiteLLM classes them; and the
//! pieces of a `/v1/messages` call that goes to Anthropic as it is
//! ([`native`]).

use std::sync::Arc;

use axum::http::{HeaderName, HeaderValue, StatusCode};
use bytes::Bytes;

use super::{error, request, response, stream};
use crate::body::BodyStream;
use crate::config::{AnthropicParams, Deployment};
use crate::error::{Error, Secrets};
use crate::outbound::HeaderBlock;
use crate::providers::{Answer, Outgoing, Payload, Provider};

static ANTHROPIC_BETA: HeaderName = HeaderName::from_static("anthropic-beta");

pub struct Anthropic;

/// The deployment's Anthropic settings (every `anthropic/` deployment has
/// them).
fn params(d: &Deployment) -> Result<&AnthropicParams, Error> {
    d.anthropic
        .as_deref()
        .ok_or_else(|| Error::Internal("an anthropic deployment without its settings".into()))
}

impl Provider for Anthropic {
    fn request_head(&self, d: &Deployment) -> HeaderBlock {
        let fixed = d
            .anthropic
            .as_deref()
            .and_then(|p| p.endpoint.as_ref())
            .map(|e| e.headers(&[], &[]))
            .unwrap_or_default();
        // `anthropic-beta` is one header per call, merged from everywhere
        // ([`beta_header`]); the deployment's own values go into it.
        HeaderBlock::new(
            d.url.as_ref(),
            fixed
                .iter()
                .chain(&d.extra_headers)
                .filter(|(n, _)| *n != ANTHROPIC_BETA)
                .map(|(n, v)| (n, v)),
        )
    }

    fn request(&self, d: &Deployment, chat: Vec<u8>) -> Result<Outgoing, Error> {
        let p = params(d)?;
        if p.endpoint.is_none() {
            return Err(error::missing_key());
        }
        let options = request::Options {
            drop_params: p.drop_params,
        };
        let t = request::to_anthropic(&chat, &options)?;
        let client: Vec<&str> = t.client_betas.iter().map(String::as_str).collect();
        Ok(Outgoing {
            body: t.body,
            headers: beta_header(d, &t.betas, &client),
            answer: Answer::Anthropic(Box::new(t.context)),
        })
    }

    fn map_answer(
        &self,
        _d: &Deployment,
        answer: &Answer,
        alias: &str,
        secrets: &Arc<Secrets>,
        body: Bytes,
    ) -> Result<Bytes, Error> {
        let Answer::Anthropic(context) = answer else {
            return Ok(body);
        };
        response::to_openai(&body, alias, context, secrets).map(Bytes::from)
    }

    fn map_stream(
        &self,
        _d: &Deployment,
        answer: Answer,
        alias: &str,
        secrets: &Arc<Secrets>,
        body: BodyStream,
    ) -> BodyStream {
        let Answer::Anthropic(context) = answer else {
            return body;
        };
        let translator = stream::Translator::new(alias, *context, secrets.clone());
        Box::pin(stream::translate(body, translator, |_| {}))
    }

    fn map_error(
        &self,
        _d: &Deployment,
        status: StatusCode,
        body: Option<Bytes>,
        retry_after: Option<f64>,
    ) -> Error {
        // `body` is already scrubbed of every configured secret.
        error::from_upstream(
            status,
            body.as_deref().unwrap_or_default(),
            retry_after,
            &Secrets::default(),
        )
    }
}

/// The `anthropic-beta` header of one call to `d`, if it needs one: the
/// key's (OAuth), the body's (`body_betas`), the deployment's
/// (`extra_headers`), the client's (`client`, comma-separated values), each
/// value once.
pub fn beta_header(
    d: &Deployment,
    body_betas: &[&str],
    client: &[&str],
) -> Vec<(HeaderName, HeaderValue)> {
    let Some(endpoint) = d.anthropic.as_deref().and_then(|p| p.endpoint.as_ref()) else {
        return vec![];
    };
    let own = d
        .extra_headers
        .iter()
        .filter(|(n, _)| *n == ANTHROPIC_BETA)
        .filter_map(|(_, v)| v.to_str().ok());
    let extra: Vec<&str> = own.chain(client.iter().copied()).collect();
    endpoint
        .headers(body_betas, &extra)
        .into_iter()
        .filter(|(n, _)| *n == ANTHROPIC_BETA)
        .collect()
}

/// A `/v1/messages` body for `d` as it is, with the client's
/// `anthropic-beta` values; LiteLLM's 401 when `d` has no key.
pub fn native(d: &Deployment, body: Vec<u8>, client_betas: &[&str]) -> Result<Payload, Error> {
    if params(d)?.endpoint.is_none() {
        return Err(error::missing_key());
    }
    Ok(Payload::Native {
        body,
        headers: beta_header(d, &[], client_betas),
    })
}
