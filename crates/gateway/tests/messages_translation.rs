//! The `/v1/messages` translation for OpenAI-compatible deployments, end
//! to end against the project's mock upstream over HTTP (the route itself
//! is wired in later): a Messages request becomes the chat body the mock
//! records, and the mock's answer, JSON or stream, becomes the Messages
//! response a Claude client reads, byte for byte.

// Tests: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use bytes::Bytes;
use common::client;
use futures_util::StreamExt;
use gateway::endpoints::messages::request::MessagesRequest;
use gateway::endpoints::messages::response;
use gateway::endpoints::messages::stream::Translator;
use gateway::error::Error;
use gateway::sse;
use gateway::wire::ChatRequest;
use gateway_mock::upstream::{Failure, MockUpstream, UpstreamOptions};

const CONVERSATION: &str = r#""system":"Be terse.","messages":[
    {"role":"user","content":"What is up?"},
    {"role":"assistant","content":[{"type":"tool_use","id":"toolu_1","name":"lookup","input":{"q":"up"}}]},
    {"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_1","content":"nothing much"},{"type":"text","text":"Say hello world"}]}]"#;

/// The chat body the gateway sends for `messages` (as the route will:
/// through the chat parser, the upstream model swapped in).
fn upstream_body(messages: &str) -> Vec<u8> {
    let req = MessagesRequest::parse(messages.as_bytes()).expect("valid request");
    let chat = req.to_chat().bytes;
    ChatRequest::parse(&chat)
        .expect("the chat parser takes the translation")
        .upstream_body("mock-model", &[], &[])
}

async fn post(up: &MockUpstream, body: Vec<u8>) -> reqwest::Response {
    client()
        .post(format!("{}/chat/completions", up.url()))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("mock upstream answers")
}

/// Relay an upstream SSE body through the translator, as the route will.
async fn relay(response: reqwest::Response) -> String {
    let mut t = Translator::new("claude-alias");
    let mut parser = sse::Parser::default();
    let mut out = vec![];
    let mut body = response.bytes_stream();
    let mut events = vec![];
    while let Some(chunk) = body.next().await {
        let chunk: Bytes = match chunk {
            Ok(c) => c,
            Err(_) => {
                t.fail(
                    &Error::UpstreamUnreachable("the upstream stream broke off".into()),
                    &mut out,
                );
                break;
            }
        };
        parser.push(&chunk, &mut events).expect("SSE");
        for e in events.drain(..) {
            match e {
                sse::Event::Data(d) => {
                    if t.chunk(&d, &mut out).is_err() {
                        break;
                    }
                }
                sse::Event::Done => t.done(&mut out),
            }
        }
    }
    assert!(
        t.is_finished(),
        "the stream ends with message_stop or error"
    );
    String::from_utf8(out).unwrap()
}

#[tokio::test]
async fn json_round_trip() {
    let up = MockUpstream::start(UpstreamOptions::default()).await;
    let sent = upstream_body(&format!(
        r#"{{"model":"claude-alias","max_tokens":64,{CONVERSATION},"metadata":{{"user_id":"u1"}}}}"#
    ));
    assert_eq!(
        String::from_utf8(sent.clone()).unwrap(),
        concat!(
            r#"{"model":"mock-model","messages":[{"role":"system","content":"Be terse."},{"role":"user","content":"What is up?"},"#,
            r#"{"role":"assistant","content":null,"tool_calls":[{"id":"toolu_1","type":"function","function":{"name":"lookup","arguments":"{\"q\":\"up\"}"}}]},"#,
            r#"{"role":"tool","tool_call_id":"toolu_1","content":"nothing much"},{"role":"user","content":[{"type":"text","text":"Say hello world"}]}],"#,
            r#""max_tokens":64,"user":"u1"}"#
        )
    );
    let answer = post(&up, sent.clone()).await;
    assert_eq!(answer.status(), 200);
    let answer = answer.bytes().await.unwrap();
    assert_eq!(
        up.requests()[0].body,
        sent,
        "the mock received the chat body"
    );
    let message = response::from_completion(&answer, "claude-alias").unwrap();
    assert_eq!(
        String::from_utf8(message).unwrap(),
        r#"{"id":"chatcmpl-mock-1","type":"message","role":"assistant","model":"claude-alias","stop_sequence":null,"usage":{"input_tokens":10,"output_tokens":3},"content":[{"type":"text","text":"Say hello world"}],"stop_reason":"end_turn","stop_details":null}"#
    );
}

#[tokio::test]
async fn tool_use_answer() {
    let up = MockUpstream::start(UpstreamOptions {
        completion: Some(
            r#"{"id":"chatcmpl-t","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":null,"tool_calls":[{"id":"call_9","type":"function","function":{"name":"lookup","arguments":"{\"q\":\"down\"}"}}]},"finish_reason":"tool_calls"}],"usage":{"prompt_tokens":12,"completion_tokens":6,"total_tokens":18}}"#.into(),
        ),
        ..UpstreamOptions::default()
    })
    .await;
    let sent = upstream_body(&format!(
        r#"{{"model":"claude-alias","max_tokens":64,{CONVERSATION},"tools":[{{"name":"lookup","input_schema":{{"type":"object"}}}}],"tool_choice":{{"type":"any"}}}}"#
    ));
    let answer = post(&up, sent).await.bytes().await.unwrap();
    let body = String::from_utf8(up.requests()[0].body.to_vec()).unwrap();
    assert!(
        body.ends_with(r#""max_tokens":64,"tools":[{"type":"function","function":{"name":"lookup","parameters":{"type":"object"}}}],"tool_choice":"required"}"#),
        "{body}"
    );
    assert_eq!(
        String::from_utf8(response::from_completion(&answer, "claude-alias").unwrap()).unwrap(),
        r#"{"id":"chatcmpl-t","type":"message","role":"assistant","model":"claude-alias","stop_sequence":null,"usage":{"input_tokens":12,"output_tokens":6},"content":[{"type":"tool_use","id":"call_9","name":"lookup","input":{"q":"down"}}],"stop_reason":"tool_use","stop_details":null}"#
    );
}

#[tokio::test]
async fn stream_round_trip() {
    let up = MockUpstream::start(UpstreamOptions::default()).await;
    let sent = upstream_body(&format!(
        r#"{{"model":"claude-alias","max_tokens":64,"stream":true,{CONVERSATION}}}"#
    ));
    // The usage the final message_delta carries is asked for.
    assert!(
        String::from_utf8(sent.clone())
            .unwrap()
            .ends_with(r#""max_tokens":64,"stream":true,"stream_options":{"include_usage":true}}"#)
    );
    let events = relay(post(&up, sent).await).await;
    let start = r#"{"type":"message_start","message":{"id":"chatcmpl-mock-1","type":"message","role":"assistant","content":[],"model":"claude-alias","stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":0,"output_tokens":0,"cache_creation_input_tokens":0,"cache_read_input_tokens":0}}}"#;
    let delta = |text: &str| {
        format!(
            "event: content_block_delta\ndata: {{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{{\"type\":\"text_delta\",\"text\":\"{text}\"}}}}\n\n"
        )
    };
    assert_eq!(
        events,
        [
            format!("event: message_start\ndata: {start}\n\n"),
            "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n".to_owned(),
            delta("Say h"),
            delta("ello "),
            delta("world"),
            "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n".to_owned(),
            "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\",\"stop_sequence\":null},\"usage\":{\"input_tokens\":10,\"output_tokens\":3}}\n\n".to_owned(),
            "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n".to_owned(),
        ]
        .concat()
    );
}

#[tokio::test]
async fn a_stream_that_breaks_off_ends_with_an_error_event() {
    let up = MockUpstream::start(UpstreamOptions {
        failure: Some(Failure::CloseAfter { chunks: 2 }),
        ..UpstreamOptions::default()
    })
    .await;
    let sent = upstream_body(&format!(
        r#"{{"model":"claude-alias","max_tokens":64,"stream":true,{CONVERSATION}}}"#
    ));
    let events = relay(post(&up, sent).await).await;
    assert!(events.contains("\"text\":\"Say h\""), "{events}");
    assert!(
        events.ends_with("event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"api_error\",\"message\":\"the upstream stream broke off\"}}\n\n"),
        "{events}"
    );
    assert!(!events.contains("message_stop"));
}
