//! OpenAI and every OpenAI-compatible provider (`openai/`, `hosted_vllm/`,
//! `groq/`, ...): `POST {base}/chat/completions` with `Authorization:
//! Bearer`; the body and the answer pass through as they are, and an error
//! answer that is OpenAI-shaped passes through too.

use axum::http::{StatusCode, header};
use bytes::Bytes;
use serde::Deserialize;

use super::Provider;
use crate::config::Deployment;
use crate::error::Error;
use crate::outbound::HeaderBlock;

pub struct OpenAi;

impl Provider for OpenAi {
    fn request_head(&self, d: &Deployment) -> HeaderBlock {
        super::json_head(d, &header::AUTHORIZATION)
    }
}

#[derive(Deserialize)]
struct ErrorShape {
    error: serde_json::Value,
}

/// A non-2xx answer: its OpenAI-shaped body, when it has one, passes
/// through; the status always does.
pub fn error(
    d: &Deployment,
    status: StatusCode,
    body: Option<Bytes>,
    retry_after: Option<f64>,
) -> Error {
    let shaped =
        body.filter(|b| serde_json::from_slice::<ErrorShape>(b).is_ok_and(|s| s.error.is_object()));
    Error::Upstream {
        status,
        body: shaped,
        message: format!(
            "the upstream for model '{}' answered HTTP {}",
            d.model_name,
            status.as_u16()
        ),
        retry_after,
    }
}
