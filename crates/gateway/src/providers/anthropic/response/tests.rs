//! The Anthropic answer mapping's unit tests.

use super::*;
use serde_json::{Value, json};

fn map(answer: Value, context: &ResponseContext) -> Value {
    let out = to_openai(
        &serde_json::to_vec(&answer).unwrap(),
        "claude",
        context,
        &Secrets::default(),
    )
    .unwrap();
    serde_json::from_slice(&out).unwrap()
}

fn message(content: Value, stop_reason: &str, usage: Value) -> Value {
    json!({"id": "msg_01", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5-20250929",
           "content": content, "stop_reason": stop_reason, "stop_sequence": null, "usage": usage})
}

fn usage(input: u64, output: u64) -> Value {
    json!({"input_tokens": input, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0, "output_tokens": output})
}

/// P1, byte for byte after the id and the timestamp.
#[test]
fn p1_answer_byte_exact() {
    let answer = message(
        json!([{"type": "text", "text": "Let me check."}, {"type": "tool_use", "id": "toolu_01", "name": "get_weather", "input": {"city": "Paris"}}]),
        "tool_use",
        usage(21, 12),
    );
    let out = to_openai(
        &serde_json::to_vec(&answer).unwrap(),
        "claude",
        &ResponseContext::default(),
        &Secrets::default(),
    )
    .unwrap();
    let out = String::from_utf8(out).unwrap();
    assert!(out.starts_with(r#"{"id":"chatcmpl-"#), "{out}");
    let id_len = r#"{"id":"chatcmpl-"#.len() + 36 + 2;
    assert!(out[id_len..].starts_with(r#""created":"#), "{out}");
    let tail = &out[out.find(r#","model":"#).unwrap()..];
    assert_eq!(
        tail,
        concat!(
            r#","model":"claude","object":"chat.completion","choices":[{"finish_reason":"tool_calls","index":0,"message":{"#,
            r#""content":"Let me check.","role":"assistant","tool_calls":[{"index":1,"function":{"arguments":"{\"city\": \"Paris\"}","name":"get_weather"},"id":"toolu_01","type":"function"}],"#,
            r#""provider_specific_fields":{"citations":null,"thinking_blocks":null}}}],"#,
            r#""usage":{"completion_tokens":12,"prompt_tokens":21,"total_tokens":33,"completion_tokens_details":{"reasoning_tokens":0,"text_tokens":12},"prompt_tokens_details":{"cache_write_tokens":0,"cached_tokens":0,"text_tokens":21,"cache_creation_tokens":0},"cache_creation_input_tokens":0,"cache_read_input_tokens":0}}"#
        )
    );
}

#[test]
fn usage_with_cache_tokens() {
    let v = map(
        message(
            json!([{"type": "text", "text": "hi"}]),
            "end_turn",
            json!({
            "input_tokens": 10, "cache_creation_input_tokens": 5, "cache_read_input_tokens": 100, "output_tokens": 7,
            "cache_creation": {"ephemeral_5m_input_tokens": 5, "ephemeral_1h_input_tokens": 0}}),
        ),
        &ResponseContext::default(),
    );
    assert_eq!(
        v["usage"],
        json!({"completion_tokens": 7, "prompt_tokens": 115, "total_tokens": 122,
            "completion_tokens_details": {"reasoning_tokens": 0, "text_tokens": 7},
            "prompt_tokens_details": {"cache_write_tokens": 5, "cached_tokens": 100, "text_tokens": 10, "cache_creation_tokens": 5,
                "cache_creation_token_details": {"ephemeral_5m_input_tokens": 5, "ephemeral_1h_input_tokens": 0}},
            "cache_creation_input_tokens": 5, "cache_read_input_tokens": 100})
    );
    assert_eq!(v["choices"][0]["message"]["content"], "hi");
    assert!(v["choices"][0]["message"].get("tool_calls").is_none());
}

#[test]
fn thinking() {
    let blocks = json!([
        {"type": "thinking", "thinking": "Let me think", "signature": "sig"},
        {"type": "redacted_thinking", "data": "abc"},
        {"type": "text", "text": "42"}
    ]);
    let v = map(
        message(blocks.clone(), "end_turn", usage(5, 30)),
        &ResponseContext::default(),
    );
    let m = &v["choices"][0]["message"];
    assert_eq!(m["content"], "42");
    assert_eq!(m["reasoning_content"], "Let me think");
    assert_eq!(m["thinking_blocks"], json!([blocks[0], blocks[1]]));
    assert_eq!(
        m["provider_specific_fields"],
        json!({"citations": null, "thinking_blocks": [blocks[0], blocks[1]]})
    );
    // No count from Anthropic, no tokenizer here: unknown.
    assert_eq!(
        v["usage"]["completion_tokens_details"],
        json!({"reasoning_tokens": null, "text_tokens": null})
    );
    let mut u = usage(5, 30);
    u["output_tokens_details"] = json!({"thinking_tokens": 20});
    let v = map(message(blocks, "end_turn", u), &ResponseContext::default());
    assert_eq!(
        v["usage"]["completion_tokens_details"],
        json!({"reasoning_tokens": 20, "text_tokens": 10})
    );
}

#[test]
fn finish_reasons() {
    for (stop, finish) in [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("tool_use", "tool_calls"),
        ("refusal", "content_filter"),
        ("compaction", "length"),
        ("pause_turn", "stop"),
        ("something_new", "stop"),
    ] {
        let v = map(
            message(json!([{"type": "text", "text": "x"}]), stop, usage(1, 1)),
            &ResponseContext::default(),
        );
        assert_eq!(v["choices"][0]["finish_reason"], finish, "{stop}");
    }
    assert_eq!(finish_reason(None), "stop");
}

#[test]
fn empty_content_is_null_and_names_map_back() {
    let ctx = ResponseContext {
        tool_names: vec![("db_query_2".into(), "db.query".into())],
        ..ResponseContext::default()
    };
    let v = map(
        message(
            json!([{"type": "tool_use", "id": "t1", "name": "db_query_2", "input": {"q": "é\u{1F600}", "n": [1, 2.5, true, null]}}]),
            "tool_use",
            usage(1, 1),
        ),
        &ctx,
    );
    let m = &v["choices"][0]["message"];
    assert_eq!(m["content"], Value::Null);
    assert_eq!(m["tool_calls"][0]["index"], 0);
    assert_eq!(m["tool_calls"][0]["function"]["name"], "db.query");
    // Python's json.dumps: spaced separators, non-ASCII escaped.
    assert_eq!(
        m["tool_calls"][0]["function"]["arguments"],
        r#"{"q": "\u00e9\ud83d\ude00", "n": [1, 2.5, true, null]}"#
    );
}

#[test]
fn forced_json_tool_is_the_content() {
    let ctx = ResponseContext {
        json_tool: true,
        ..ResponseContext::default()
    };
    let v = map(
        message(
            json!([{"type": "tool_use", "id": "t1", "name": JSON_TOOL_NAME, "input": {"n": 3}}]),
            "tool_use",
            usage(1, 1),
        ),
        &ctx,
    );
    assert_eq!(v["choices"][0]["message"]["content"], r#"{"n": 3}"#);
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    assert!(v["choices"][0]["message"].get("tool_calls").is_none());
    // With a real tool call beside it: both, the JSON after the text.
    let v = map(
        message(
            json!([{"type": "text", "text": "ok "}, {"type": "tool_use", "id": "t1", "name": JSON_TOOL_NAME, "input": {"n": 3}},
                       {"type": "tool_use", "id": "t2", "name": "f", "input": {}}]),
            "tool_use",
            usage(1, 1),
        ),
        &ctx,
    );
    assert_eq!(v["choices"][0]["message"]["content"], r#"ok {"n": 3}"#);
    assert_eq!(
        v["choices"][0]["message"]["tool_calls"][0]["function"]["name"],
        "f"
    );
    assert_eq!(v["choices"][0]["finish_reason"], "tool_calls");
}

#[test]
fn prefix_and_citations() {
    let ctx = ResponseContext {
        prefix: Some("The answer:".into()),
        ..ResponseContext::default()
    };
    let v = map(
        message(
            json!([{"type": "text", "text": " 42", "citations": [{"type": "char_location", "cited_text": "x"}]}]),
            "end_turn",
            usage(1, 1),
        ),
        &ctx,
    );
    assert_eq!(v["choices"][0]["message"]["content"], "The answer: 42");
    assert_eq!(
        v["choices"][0]["message"]["provider_specific_fields"]["citations"],
        json!([[{"type": "char_location", "cited_text": "x", "supported_text": " 42"}]])
    );
}

#[test]
fn tool_inputs_that_are_not_objects() {
    let v = map(
        message(
            json!([{"type": "tool_use", "id": "a", "name": "f", "input": "not an object"}, {"type": "tool_use", "id": "b", "name": "g"}]),
            "tool_use",
            usage(1, 1),
        ),
        &ResponseContext::default(),
    );
    let calls = &v["choices"][0]["message"]["tool_calls"];
    assert_eq!(calls[0]["function"]["arguments"], r#""not an object""#);
    assert_eq!(calls[1]["function"]["arguments"], "null");
}

#[test]
fn bad_answers_are_errors() {
    let bad = |body: &[u8]| {
        to_openai(
            body,
            "claude",
            &ResponseContext::default(),
            &Secrets::default(),
        )
        .unwrap_err()
    };
    assert!(matches!(bad(b"not json"), Error::UpstreamUnreachable(_)));
    assert!(matches!(
        bad(b"{\"type\":\"message\"}"),
        Error::UpstreamUnreachable(_)
    ));
    assert!(matches!(
        bad(b"{\"content\":[5]}"),
        Error::UpstreamUnreachable(_)
    ));
    let e = bad(br#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#);
    assert_eq!(e.status(), StatusCode::INTERNAL_SERVER_ERROR);
    // Unknown block types are skipped, not fatal.
    let v = map(
        message(
            json!([{"type": "mystery"}, {"type": "text", "text": "x"}]),
            "end_turn",
            usage(1, 1),
        ),
        &ResponseContext::default(),
    );
    assert_eq!(v["choices"][0]["message"]["content"], "x");
}

#[test]
fn ratelimit_header_names() {
    let mut h = HeaderMap::new();
    h.insert(
        "anthropic-ratelimit-requests-limit",
        HeaderValue::from_static("50"),
    );
    h.insert(
        "anthropic-ratelimit-requests-remaining",
        HeaderValue::from_static("49"),
    );
    h.insert(
        "anthropic-ratelimit-tokens-limit",
        HeaderValue::from_static("1000"),
    );
    h.insert(
        "anthropic-ratelimit-tokens-remaining",
        HeaderValue::from_static("900"),
    );
    h.insert("request-id", HeaderValue::from_static("req_1"));
    let got: Vec<(String, String)> = ratelimit_headers(&h)
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap().to_owned()))
        .collect();
    assert_eq!(
        got,
        [
            ("x-ratelimit-limit-requests", "50"),
            ("x-ratelimit-remaining-requests", "49"),
            ("x-ratelimit-limit-tokens", "1000"),
            ("x-ratelimit-remaining-tokens", "900"),
        ]
        .map(|(a, b)| (a.to_owned(), b.to_owned()))
    );
}
