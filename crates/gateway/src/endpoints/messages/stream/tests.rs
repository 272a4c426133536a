//! The Messages stream translator's unit tests.

use super::*;
use proptest::prelude::*;
use serde_json::{Value, json};

/// Feed `chunks` (then `[DONE]`) and return the SSE text.
fn run(chunks: &[Value]) -> String {
    let mut t = Translator::new("alias");
    let mut out = vec![];
    for c in chunks {
        t.chunk(c.to_string().as_bytes(), &mut out).unwrap();
    }
    t.done(&mut out);
    assert!(t.is_finished());
    String::from_utf8(out).unwrap()
}

fn chunk(delta: Value, finish: Value) -> Value {
    json!({"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt",
           "choices":[{"index":0,"delta":delta,"finish_reason":finish}]})
}

fn usage(prompt: u64, completion: u64) -> Value {
    json!({"id":"chatcmpl-1","choices":[],"usage":{"prompt_tokens":prompt,"completion_tokens":completion,"total_tokens":prompt+completion}})
}

fn tool(index: u64, id: Option<&str>, name: Option<&str>, args: &str) -> Value {
    let mut f = json!({"arguments": args});
    if let Some(n) = name {
        f["name"] = json!(n);
    }
    let mut c = json!({"index": index, "type": "function", "function": f});
    if let Some(i) = id {
        c["id"] = json!(i);
    }
    c
}

const START: &str = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"chatcmpl-1\",\"type\":\"message\",\"role\":\"assistant\",\"content\":[],\"model\":\"alias\",\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":0,\"output_tokens\":0,\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":0}}}\n\n";
const STOP: &str = "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";

fn block_start(i: usize, block: &str) -> String {
    format!(
        "event: content_block_start\ndata: {{\"type\":\"content_block_start\",\"index\":{i},\"content_block\":{block}}}\n\n"
    )
}

fn delta(i: usize, kind: &str, field: &str, text: &str) -> String {
    format!(
        "event: content_block_delta\ndata: {{\"type\":\"content_block_delta\",\"index\":{i},\"delta\":{{\"type\":\"{kind}\",\"{field}\":{}}}}}\n\n",
        json!(text)
    )
}

fn block_stop(i: usize) -> String {
    format!(
        "event: content_block_stop\ndata: {{\"type\":\"content_block_stop\",\"index\":{i}}}\n\n"
    )
}

fn message_delta(reason: &str, usage: &str) -> String {
    format!(
        "event: message_delta\ndata: {{\"type\":\"message_delta\",\"delta\":{{\"stop_reason\":\"{reason}\",\"stop_sequence\":null}},\"usage\":{usage}}}\n\n"
    )
}

const TEXT: &str = r#"{"type":"text","text":""}"#;

#[test]
fn text_split_across_chunks_with_a_usage_chunk() {
    let out = run(&[
        chunk(json!({"role":"assistant","content":""}), Value::Null),
        chunk(json!({"content":"Hel"}), Value::Null),
        chunk(json!({"content":"lo \"x\""}), Value::Null),
        chunk(json!({}), json!("stop")),
        usage(9, 4),
    ]);
    assert_eq!(
        out,
        [
            START.to_owned(),
            block_start(0, TEXT),
            delta(0, "text_delta", "text", "Hel"),
            delta(0, "text_delta", "text", "lo \"x\""),
            block_stop(0),
            message_delta("end_turn", r#"{"input_tokens":9,"output_tokens":4}"#),
            STOP.to_owned(),
        ]
        .concat()
    );
}

#[test]
fn text_then_tool_calls_split_across_chunks() {
    let out = run(&[
        chunk(
            json!({"role":"assistant","content":"Checking."}),
            Value::Null,
        ),
        chunk(
            json!({"tool_calls":[tool(0, Some("call_a"), Some("get_weather"), "")]}),
            Value::Null,
        ),
        chunk(
            json!({"tool_calls":[tool(0, None, None, "{\"city\":")]}),
            Value::Null,
        ),
        chunk(
            json!({"tool_calls":[tool(0, None, None, " \"Paris\"}")]}),
            Value::Null,
        ),
        chunk(
            json!({"tool_calls":[tool(1, Some("call:b"), Some("get_time"), "{}")]}),
            Value::Null,
        ),
        chunk(json!({}), json!("tool_calls")),
        usage(20, 11),
    ]);
    assert_eq!(
        out,
        [
            START.to_owned(),
            block_start(0, TEXT),
            delta(0, "text_delta", "text", "Checking."),
            block_stop(0),
            block_start(
                1,
                r#"{"type":"tool_use","id":"call_a","name":"get_weather","input":{}}"#
            ),
            delta(1, "input_json_delta", "partial_json", "{\"city\":"),
            delta(1, "input_json_delta", "partial_json", " \"Paris\"}"),
            block_stop(1),
            block_start(
                2,
                r#"{"type":"tool_use","id":"call_b","name":"get_time","input":{}}"#
            ),
            delta(2, "input_json_delta", "partial_json", "{}"),
            block_stop(2),
            message_delta("tool_use", r#"{"input_tokens":20,"output_tokens":11}"#),
            STOP.to_owned(),
        ]
        .concat()
    );
}

#[test]
fn several_tool_calls_in_one_chunk_and_without_index() {
    let out = run(&[chunk(
        json!({"tool_calls":[tool(0, Some("a"), Some("f"), "{\"x\":1}"), tool(1, Some("b"), Some("g"), "{}")]}),
        json!("tool_calls"),
    )]);
    assert_eq!(
        out,
        [
            START.to_owned(),
            block_start(0, r#"{"type":"tool_use","id":"a","name":"f","input":{}}"#),
            delta(0, "input_json_delta", "partial_json", "{\"x\":1}"),
            block_stop(0),
            block_start(1, r#"{"type":"tool_use","id":"b","name":"g","input":{}}"#),
            delta(1, "input_json_delta", "partial_json", "{}"),
            block_stop(1),
            message_delta("tool_use", r#"{"input_tokens":0,"output_tokens":0}"#),
            STOP.to_owned(),
        ]
        .concat()
    );
    // Some upstreams leave the index out: the id tells calls apart.
    let no_index = |id: Option<&str>, name: Option<&str>, args: &str| {
        let mut c = tool(0, id, name, args);
        c.as_object_mut().unwrap().remove("index");
        c
    };
    let out = run(&[
        chunk(
            json!({"tool_calls":[no_index(Some("a"), Some("f"), "{")]}),
            Value::Null,
        ),
        chunk(
            json!({"tool_calls":[no_index(None, None, "}")]}),
            Value::Null,
        ),
        chunk(
            json!({"tool_calls":[no_index(Some("b"), Some("g"), "{}")]}),
            json!("tool_calls"),
        ),
    ]);
    assert_eq!(out.matches("content_block_start").count(), 2 * 2, "{out}");
    assert!(out.contains(&delta(0, "input_json_delta", "partial_json", "}")));
    assert!(out.contains(&block_start(
        1,
        r#"{"type":"tool_use","id":"b","name":"g","input":{}}"#
    )));
}

#[test]
fn anthropic_thinking_blocks_keep_their_signature_and_redacted_data() {
    let thinking = |text: &str, sig: Option<&str>| {
        let mut b = json!({"type": "thinking", "thinking": text, "index": 0});
        if let Some(s) = sig {
            b["signature"] = json!(s);
        }
        chunk(
            json!({"reasoning_content": text, "thinking_blocks": [b]}),
            Value::Null,
        )
    };
    let out = run(&[
        thinking("hmm", None),
        thinking("", Some("sig-1")),
        chunk(
            json!({"reasoning_content": "", "thinking_blocks": [{"type": "redacted_thinking", "data": "opaque", "index": 1}]}),
            Value::Null,
        ),
        chunk(json!({"content": "answer"}), json!("stop")),
    ]);
    assert_eq!(
        out,
        [
            START.to_owned(),
            block_start(0, r#"{"type":"thinking","thinking":"","signature":""}"#),
            delta(0, "thinking_delta", "thinking", "hmm"),
            delta(0, "signature_delta", "signature", "sig-1"),
            block_stop(0),
            block_start(1, r#"{"type":"redacted_thinking","data":"opaque"}"#),
            block_stop(1),
            block_start(2, TEXT),
            delta(2, "text_delta", "text", "answer"),
            block_stop(2),
            message_delta("end_turn", r#"{"input_tokens":0,"output_tokens":0}"#),
            STOP.to_owned(),
        ]
        .concat()
    );
}

#[test]
fn reasoning_then_text_refusal_and_finish_without_content() {
    let out = run(&[
        chunk(json!({"reasoning_content":"think"}), Value::Null),
        chunk(json!({"content":"answer"}), Value::Null),
        chunk(json!({"refusal":"no"}), json!("stop")),
    ]);
    assert_eq!(
        out,
        [
            START.to_owned(),
            block_start(0, r#"{"type":"thinking","thinking":"","signature":""}"#),
            delta(0, "thinking_delta", "thinking", "think"),
            block_stop(0),
            block_start(1, TEXT),
            delta(1, "text_delta", "text", "answer"),
            delta(1, "text_delta", "text", "no"),
            block_stop(1),
            "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"refusal\",\"stop_sequence\":null,\"stop_details\":{\"type\":\"refusal\",\"category\":null,\"explanation\":null}},\"usage\":{\"input_tokens\":0,\"output_tokens\":0}}\n\n".to_owned(),
            STOP.to_owned(),
        ]
        .concat()
    );
    assert_eq!(
        run(&[
            chunk(json!({"role":"assistant"}), Value::Null),
            chunk(json!({}), json!("length"))
        ]),
        [
            START.to_owned(),
            message_delta("max_tokens", r#"{"input_tokens":0,"output_tokens":0}"#),
            STOP.to_owned()
        ]
        .concat()
    );
    // Nothing at all before [DONE].
    let out = run(&[]);
    assert!(
        out.starts_with(
            "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_"
        ),
        "{out}"
    );
    assert!(
        out.ends_with(
            &[
                message_delta("end_turn", r#"{"input_tokens":0,"output_tokens":0}"#),
                STOP.to_owned()
            ]
            .concat()
        )
    );
}

#[test]
fn failures_end_the_stream_with_one_error_event() {
    let mut t = Translator::new("alias");
    let mut out = vec![];
    t.chunk(
        chunk(json!({"content":"partial"}), Value::Null)
            .to_string()
            .as_bytes(),
        &mut out,
    )
    .unwrap();
    out.clear();
    t.fail(
        &Error::GuardrailBlocked("\"a@b.com\" detected as email".into()),
        &mut out,
    );
    assert_eq!(
        String::from_utf8(out.clone()).unwrap(),
        "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"invalid_request_error\",\"message\":\"\\\"a@b.com\\\" detected as email\"}}\n\n"
    );
    out.clear();
    t.chunk(
        chunk(json!({"content":"more"}), Value::Null)
            .to_string()
            .as_bytes(),
        &mut out,
    )
    .unwrap();
    t.done(&mut out);
    t.fail(&Error::UpstreamTimeout("late".into()), &mut out);
    assert!(out.is_empty(), "nothing after the end");

    // A chunk that is not a chat chunk.
    for bad in [
        &b"not json"[..],
        b"[]",
        br#"{"choices":[{"delta":{"content":"\ud800"}}]}"#,
        br#"{"choices":[{"delta":{"content":1}}]}"#,
    ] {
        let mut t = Translator::new("alias");
        let mut out = vec![];
        assert!(t.chunk(bad, &mut out).is_err());
        assert!(t.is_finished());
        let out = String::from_utf8(out).unwrap();
        assert_eq!(
            out,
            "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"api_error\",\"message\":\"the upstream sent a stream chunk the gateway cannot translate\"}}\n\n"
        );
    }

    // A tool call reopened after another began cannot be placed.
    let mut t = Translator::new("alias");
    let mut out = vec![];
    for c in [
        chunk(
            json!({"tool_calls":[tool(0, Some("a"), Some("f"), "{")]}),
            Value::Null,
        ),
        chunk(
            json!({"tool_calls":[tool(1, Some("b"), Some("g"), "{")]}),
            Value::Null,
        ),
    ] {
        t.chunk(c.to_string().as_bytes(), &mut out).unwrap();
    }
    let err = t.chunk(
        chunk(
            json!({"tool_calls":[tool(0, None, None, "}")]}),
            Value::Null,
        )
        .to_string()
        .as_bytes(),
        &mut out,
    );
    assert_eq!(err.unwrap_err().status().as_u16(), 502);
    assert!(String::from_utf8(out).unwrap().ends_with(
        "\"message\":\"the upstream sent more of a tool call it had already ended\"}}\n\n"
    ));
}

#[test]
fn other_choices_and_unknown_fields_are_ignored() {
    let out = run(&[
        json!({"id":"chatcmpl-1","choices":[{"index":1,"delta":{"content":"other"}},{"index":0,"delta":{"content":"mine","audio":{}},"logprobs":null}],"system_fingerprint":"x"}),
        json!({"id":"chatcmpl-1","choices":[{"index":0,"delta":{"Content":"hidden"},"finish_reason":"stop"}]}),
    ]);
    assert!(
        out.contains("mine") && !out.contains("other") && !out.contains("hidden"),
        "{out}"
    );
}

// ---- every order an upstream can send ----

#[derive(Clone, Debug)]
enum Step {
    Text(String),
    Reasoning(String),
    Refusal(String),
    /// A new tool call (the next index) with its first arguments.
    NewTool(String),
    /// More arguments for the current tool call.
    Args(String),
    /// Empty delta (a role chunk, a keep-alive).
    Empty,
    Finish(&'static str),
    Usage(u64, u64),
}

fn step() -> impl Strategy<Value = Step> {
    let text = "[a-z \"\\\\é\n]{0,6}";
    prop_oneof![
        text.prop_map(Step::Text),
        text.prop_map(Step::Reasoning),
        text.prop_map(Step::Refusal),
        text.prop_map(Step::NewTool),
        text.prop_map(Step::Args),
        Just(Step::Empty),
        prop_oneof![
            Just("stop"),
            Just("length"),
            Just("tool_calls"),
            Just("content_filter")
        ]
        .prop_map(Step::Finish),
        (0u64..1000, 0u64..1000).prop_map(|(a, b)| Step::Usage(a, b)),
    ]
}

/// Check the events are Anthropic's grammar and give back, per block,
/// its type and the concatenation of its deltas.
fn parse_events(sse: &str) -> Result<Vec<(String, String)>, String> {
    let mut blocks: Vec<(String, String)> = vec![];
    let mut open: Option<usize> = None;
    let mut phase = 0; // 0: before start, 1: blocks, 2: after message_delta, 3: stopped
    for frame in sse.split_terminator("\n\n") {
        let (event, data) = frame
            .strip_prefix("event: ")
            .and_then(|f| f.split_once("\ndata: "))
            .ok_or_else(|| format!("not an SSE frame: {frame:?}"))?;
        let v: Value = serde_json::from_str(data).map_err(|e| format!("{e}: {data}"))?;
        if v["type"] != event {
            return Err(format!("event {event} carries {}", v["type"]));
        }
        match (event, phase) {
            ("message_start", 0) => phase = 1,
            ("content_block_start", 1) if open.is_none() => {
                if v["index"] != blocks.len() {
                    return Err(format!("index {} for block {}", v["index"], blocks.len()));
                }
                blocks.push((
                    v["content_block"]["type"].as_str().unwrap_or("").to_owned(),
                    String::new(),
                ));
                open = Some(blocks.len() - 1);
            }
            ("content_block_delta", 1) if open.is_some() => {
                let i = open.unwrap_or_default();
                if v["index"] != i {
                    return Err("delta for another block".into());
                }
                let d = &v["delta"];
                let (want, field) = match blocks[i].0.as_str() {
                    "text" => ("text_delta", "text"),
                    "thinking" => ("thinking_delta", "thinking"),
                    _ => ("input_json_delta", "partial_json"),
                };
                if d["type"] != want {
                    return Err(format!("{} in a {} block", d["type"], blocks[i].0));
                }
                blocks[i].1.push_str(d[field].as_str().unwrap_or_default());
            }
            ("content_block_stop", 1) if open.is_some() => {
                if v["index"] != open.unwrap_or_default() {
                    return Err("stop for another block".into());
                }
                open = None;
            }
            ("message_delta", 1) if open.is_none() => phase = 2,
            ("message_stop", 2) => phase = 3,
            ("error", p) if p < 3 => return Ok(blocks),
            _ => return Err(format!("{event} out of place (phase {phase})")),
        }
    }
    if phase != 3 {
        return Err(format!("ended in phase {phase}"));
    }
    Ok(blocks)
}

proptest! {
    /// Whatever order of deltas an OpenAI upstream sends, the client
    /// gets a well-formed Anthropic stream whose blocks carry exactly
    /// the upstream's text, reasoning and arguments, in order.
    #[test]
    fn any_order_makes_a_valid_stream(steps in prop::collection::vec(step(), 0..24)) {
        let mut t = Translator::new("alias");
        let mut out = vec![];
        let mut expected: Vec<(String, String)> = vec![];
        let mut tools = 0u64;
        let mut last_kind = "";
        for s in &steps {
            let (c, kind, text) = match s {
                Step::Text(x) => (chunk(json!({"content": x}), Value::Null), "text", x.clone()),
                Step::Refusal(x) => (chunk(json!({"refusal": x}), Value::Null), "text", x.clone()),
                Step::Reasoning(x) => (chunk(json!({"reasoning_content": x}), Value::Null), "thinking", x.clone()),
                Step::NewTool(x) => {
                    tools += 1;
                    (chunk(json!({"tool_calls":[tool(tools - 1, Some(&format!("id{tools}")), Some("f"), x)]}), Value::Null), "new_tool", x.clone())
                }
                Step::Args(x) if tools > 0 => (chunk(json!({"tool_calls":[tool(tools - 1, None, None, x)]}), Value::Null), "tool_use", x.clone()),
                Step::Args(_) | Step::Empty => (chunk(json!({}), Value::Null), "", String::new()),
                Step::Finish(f) => (chunk(json!({}), json!(f)), "finish", String::new()),
                Step::Usage(a, b) => (usage(*a, *b), "", String::new()),
            };
            if t.chunk(c.to_string().as_bytes(), &mut out).is_err() {
                // Only more arguments for a tool call that was closed
                // (by other content or a finish) cannot be placed.
                prop_assert!(kind == "tool_use" && last_kind != "tool_use", "{steps:?}");
                let sse = String::from_utf8(out).unwrap();
                parse_events(&sse).map_err(|e| TestCaseError::fail(format!("{e}\n{sse}")))?;
                prop_assert!(sse.ends_with("already ended\"}}\n\n"), "{sse}");
                return Ok(());
            }
            // The model of what the blocks should hold.
            match kind {
                "text" | "thinking" | "tool_use" if !text.is_empty() => {
                    if last_kind != kind {
                        expected.push((kind.to_owned(), String::new()));
                        last_kind = kind;
                    }
                    if let Some(b) = expected.last_mut() { b.1.push_str(&text) }
                }
                "new_tool" => {
                    expected.push(("tool_use".to_owned(), text));
                    last_kind = "tool_use";
                }
                "finish" => last_kind = "",
                _ => {}
            }
        }
        t.done(&mut out);
        let sse = String::from_utf8(out).unwrap();
        let blocks = parse_events(&sse).map_err(|e| TestCaseError::fail(format!("{e}\n{sse}")))?;
        prop_assert_eq!(blocks, expected, "{}", sse);
    }
}
