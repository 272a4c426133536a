//! Azure OpenAI: `POST {base}/openai/deployments/{model}/chat/completions?
//! api-version=...` (the URL is built with the deployment) with the key in
//! `api-key`; otherwise OpenAI's format.

use axum::http::HeaderName;

use super::Provider;
use crate::config::Deployment;
use crate::outbound::HeaderBlock;

static API_KEY: HeaderName = HeaderName::from_static("api-key");

pub struct Azure;

impl Provider for Azure {
    fn request_head(&self, d: &Deployment) -> HeaderBlock {
        super::json_head(d, &API_KEY)
    }
}
