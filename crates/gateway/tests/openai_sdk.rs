//! A real OpenAI client (the `async-openai` crate) against the gateway:
//! plain and streaming completions, model listing, and a guardrail block
//! surfacing as the SDK's API error.

// Tests: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use async_openai::Client;
use async_openai::config::OpenAIConfig;
use async_openai::error::OpenAIError;
use async_openai::types::chat::{
    ChatCompletionRequestUserMessageArgs, CreateChatCompletionRequestArgs,
};
use common::*;
use futures_util::StreamExt;
use gateway_mock::aim::{AimOptions, MockAim};
use gateway_mock::upstream::{MockUpstream, UpstreamOptions};

async fn setup() -> (MockUpstream, MockAim, gateway::server::Running) {
    let up = MockUpstream::start(UpstreamOptions {
        chunks: 3,
        ..Default::default()
    })
    .await;
    let aim = MockAim::start(AimOptions::default()).await;
    let gw = gateway(&format!(
        "model_list:\n{}guardrails:\n  - guardrail_name: aim-protected-app\n    litellm_params:\n      guardrail: aim\n      mode: [pre_call, post_call]\n      default_on: true\n      api_key: aim-mock-key\n      api_base: {}\ngeneral_settings:\n  master_key: sk-master\n",
        model("gpt-3.5-turbo", &up.url()),
        aim.url()
    ))
    .await;
    (up, aim, gw)
}

fn sdk(gw: &gateway::server::Running) -> Client<OpenAIConfig> {
    gateway::install_crypto();
    Client::with_config(
        OpenAIConfig::new()
            .with_api_base(format!("{}/v1", gw.url()))
            .with_api_key("sk-master"),
    )
}

fn request(text: &str, stream: bool) -> async_openai::types::chat::CreateChatCompletionRequest {
    CreateChatCompletionRequestArgs::default()
        .model("gpt-3.5-turbo")
        .stream(stream)
        .messages([ChatCompletionRequestUserMessageArgs::default()
            .content(text)
            .build()
            .unwrap()
            .into()])
        .build()
        .unwrap()
}

#[tokio::test]
async fn plain_streaming_and_models() {
    let (_up, aim, gw) = setup().await;
    let client = sdk(&gw);
    let resp = client
        .chat()
        .create(request("hello sdk", false))
        .await
        .unwrap();
    assert_eq!(
        resp.choices[0].message.content.as_deref(),
        Some("hello sdk")
    );

    let mut stream = client
        .chat()
        .create_stream(request("hello streaming sdk", true))
        .await
        .unwrap();
    let mut text = String::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.unwrap();
        for choice in chunk.choices {
            text.push_str(choice.delta.content.as_deref().unwrap_or(""));
        }
    }
    assert_eq!(text, "hello streaming sdk");
    assert_eq!(aim.streams().len(), 1, "the stream went through Aim");

    let models = client.models().list().await.unwrap();
    assert_eq!(models.data[0].id, "gpt-3.5-turbo");
}

#[tokio::test]
async fn a_block_is_an_api_error_with_the_detection_message() {
    let (up, _aim, gw) = setup().await;
    let err = sdk(&gw)
        .chat()
        .create(request("hi my email is ishaan@berri.ai", false))
        .await
        .unwrap_err();
    match err {
        OpenAIError::ApiError(api) => {
            assert_eq!(
                api.api_error.message,
                "\"ishaan@berri.ai\" detected as email"
            );
            assert_eq!(
                api.api_error.r#type.as_deref(),
                Some("invalid_request_error")
            );
        }
        other => panic!("expected an API error, got {other:?}"),
    }
    assert_eq!(up.request_count(), 0);
}
