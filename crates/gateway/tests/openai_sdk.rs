//! A real OpenAI client (the `async-openai` crate) against the gateway:
//! plain and streaming completions, model listing, and a guardrail block
//! surfacing as the SDK's API error; the same against an `anthropic/`
//! deployment.

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

/// The same client against an `anthropic/` deployment: its answers are
/// translated into what the SDK parses, plain, streamed (with usage) and
/// checked by the guardrail.
#[tokio::test]
async fn an_anthropic_model_through_the_sdk() {
    use gateway_mock::anthropic::{AnthropicOptions, MockAnthropic};
    let claude = MockAnthropic::start(AnthropicOptions::default()).await;
    let aim = MockAim::start(AimOptions::default()).await;
    let gw = gateway(&format!(
        "model_list:\n  - model_name: claude\n    litellm_params: {{model: anthropic/claude-sonnet-4-5-20250929, api_key: sk-ant-mock, api_base: '{}'}}\nguardrails:\n  - guardrail_name: aim-protected-app\n    litellm_params:\n      guardrail: aim\n      mode: [pre_call, post_call]\n      default_on: true\n      api_key: aim-mock-key\n      api_base: {}\ngeneral_settings:\n  master_key: sk-master\n",
        claude.url(),
        aim.url()
    ))
    .await;
    let client = sdk(&gw);
    let ask = |text: &str, stream: bool| {
        let mut r = request(text, stream);
        r.model = "claude".into();
        if stream {
            r.stream_options = Some(async_openai::types::chat::ChatCompletionStreamOptions {
                include_usage: Some(true),
                include_obfuscation: None,
            });
        }
        r
    };
    let resp = client
        .chat()
        .create(ask("hello claude", false))
        .await
        .unwrap();
    assert_eq!(resp.model, "claude");
    assert_eq!(
        resp.choices[0].message.content.as_deref(),
        Some("hello claude")
    );
    let usage = resp.usage.unwrap();
    assert!(usage.prompt_tokens > 0 && usage.completion_tokens == 2);

    let mut stream = client
        .chat()
        .create_stream(ask("hello streaming claude", true))
        .await
        .unwrap();
    let (mut text, mut usage, mut finish) = (String::new(), None, None);
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.unwrap();
        usage = usage.or(chunk.usage);
        for choice in chunk.choices {
            text.push_str(choice.delta.content.as_deref().unwrap_or(""));
            finish = finish.or(choice.finish_reason);
        }
    }
    assert_eq!(text, "hello streaming claude");
    assert!(finish.is_some(), "a finish_reason came");
    assert_eq!(usage.map(|u| u.completion_tokens), Some(3));

    let err = client
        .chat()
        .create(ask("hi my email is ishaan@berri.ai", false))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, OpenAIError::ApiError(api) if api.api_error.message == "\"ishaan@berri.ai\" detected as email"),
        "{err:?}"
    );
    assert_eq!(claude.request_count(), 2, "the blocked request never left");
}
