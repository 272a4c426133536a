//! The Anthropic stream translator's unit tests.

use super::*;
use serde_json::{Value, json};

fn translator(context: ResponseContext) -> Translator {
    let mut t = Translator::new("claude", context, Arc::new(Secrets::default()));
    t.id = "chatcmpl-test".into();
    t.created = 7;
    t
}

/// The frames for `events`, each parsed (`[DONE]` as a string), and how
/// the stream ended.
fn run(t: &mut Translator, events: &[Value]) -> (Vec<Value>, Result<(), Error>) {
    let mut out = vec![];
    let mut result = Ok(());
    for e in events {
        if let Err(e) = t.push(&serde_json::to_vec(e).unwrap(), &mut out) {
            result = Err(e);
            break;
        }
    }
    if result.is_ok() {
        result = t.finish(&mut out);
    }
    (frames(&out), result)
}

fn frames(out: &[u8]) -> Vec<Value> {
    let text = std::str::from_utf8(out).unwrap();
    text.split_terminator("\n\n")
        .map(|f| {
            let data = f
                .strip_prefix("data: ")
                .unwrap_or_else(|| panic!("not a frame: {f:?}"));
            if data == "[DONE]" {
                json!("[DONE]")
            } else {
                serde_json::from_str(data).unwrap()
            }
        })
        .collect()
}

fn deltas(frames: &[Value]) -> Vec<Value> {
    frames
        .iter()
        .filter(|f| f.is_object())
        .map(|f| f["choices"][0]["delta"].clone())
        .collect()
}

fn start(usage: Value) -> Value {
    json!({"type": "message_start", "message": {"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5-20250929",
        "content": [], "stop_reason": null, "stop_sequence": null, "usage": usage}})
}
fn block_start(index: u64, block: Value) -> Value {
    json!({"type": "content_block_start", "index": index, "content_block": block})
}
fn delta(index: u64, delta: Value) -> Value {
    json!({"type": "content_block_delta", "index": index, "delta": delta})
}
fn stop(index: u64) -> Value {
    json!({"type": "content_block_stop", "index": index})
}
fn message_delta(reason: &str, output: u64) -> Value {
    json!({"type": "message_delta", "delta": {"stop_reason": reason, "stop_sequence": null}, "usage": {"output_tokens": output}})
}
fn text(t: &str) -> Value {
    json!({"type": "text_delta", "text": t})
}
fn args(j: &str) -> Value {
    json!({"type": "input_json_delta", "partial_json": j})
}
const MESSAGE_STOP: &str = r#"{"type":"message_stop"}"#;

fn p2_events() -> Vec<Value> {
    vec![
        start(
            json!({"input_tokens": 21, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0, "output_tokens": 1}),
        ),
        block_start(0, json!({"type": "text", "text": ""})),
        json!({"type": "ping"}),
        delta(0, text("Hel")),
        delta(0, text("lo")),
        stop(0),
        block_start(
            1,
            json!({"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {}}),
        ),
        delta(1, args("")),
        delta(1, args("{\"city\":")),
        delta(1, args(" \"Paris\"}")),
        stop(1),
        message_delta("tool_use", 12),
        serde_json::from_str(MESSAGE_STOP).unwrap(),
    ]
}

/// P2: text, a tool call with input_json_delta, include_usage; byte for
/// byte.
#[test]
fn p2_stream_byte_exact() {
    let mut t = translator(ResponseContext {
        include_usage: true,
        ..ResponseContext::default()
    });
    let mut out = vec![];
    for e in p2_events() {
        t.push(&serde_json::to_vec(&e).unwrap(), &mut out).unwrap();
    }
    assert!(t.is_done());
    assert_eq!(t.usage(), (21, 12));
    let head = r#"data: {"id":"chatcmpl-test","object":"chat.completion.chunk","created":7,"model":"claude","choices":[{"index":0,"delta":"#;
    let expected = [
        r#"{"role":"assistant","content":"Hel"},"finish_reason":null}]}"#,
        r#"{"content":"lo"},"finish_reason":null}]}"#,
        r#"{"tool_calls":[{"id":"toolu_1","function":{"arguments":"","name":"get_weather"},"type":"function","index":0}]},"finish_reason":null}]}"#,
        r#"{"tool_calls":[{"function":{"arguments":""},"type":"function","index":0}]},"finish_reason":null}]}"#,
        r#"{"tool_calls":[{"function":{"arguments":"{\"city\":"},"type":"function","index":0}]},"finish_reason":null}]}"#,
        r#"{"tool_calls":[{"function":{"arguments":" \"Paris\"}"},"type":"function","index":0}]},"finish_reason":null}]}"#,
        r#"{},"finish_reason":"tool_calls"}]}"#,
        concat!(
            r#"{}}],"usage":{"completion_tokens":12,"prompt_tokens":21,"total_tokens":33,"completion_tokens_details":{"reasoning_tokens":0,"text_tokens":12},"#,
            r#""prompt_tokens_details":{"cache_write_tokens":0,"cached_tokens":0,"text_tokens":21,"cache_creation_tokens":0},"cache_creation_input_tokens":0,"cache_read_input_tokens":0}}"#
        ),
    ];
    let mut want = String::new();
    for e in expected {
        want.push_str(head);
        want.push_str(e);
        want.push_str("\n\n");
    }
    want.push_str("data: [DONE]\n\n");
    assert_eq!(String::from_utf8(out).unwrap(), want);
}

#[test]
fn without_include_usage_no_usage_chunk() {
    let (f, r) = run(&mut translator(ResponseContext::default()), &p2_events());
    r.unwrap();
    assert_eq!(f.last().unwrap(), "[DONE]");
    assert!(f.iter().all(|c| c.get("usage").is_none()));
    assert_eq!(f.len(), 8);
}

#[test]
fn tool_without_arguments_gets_an_empty_object() {
    let (f, r) = run(
        &mut translator(ResponseContext::default()),
        &[
            start(json!({"input_tokens": 3, "output_tokens": 1})),
            block_start(
                0,
                json!({"type": "tool_use", "id": "t0", "name": "now", "input": {}}),
            ),
            stop(0),
            block_start(
                1,
                json!({"type": "tool_use", "id": "t1", "name": "then", "input": {}}),
            ),
            delta(1, args("{}")),
            stop(1),
            message_delta("tool_use", 4),
        ],
    );
    r.unwrap();
    let d = deltas(&f);
    assert_eq!(
        d[1]["tool_calls"][0],
        json!({"function": {"arguments": "{}"}, "type": "function", "index": 0})
    );
    assert_eq!(d[2]["tool_calls"][0]["index"], 1);
    assert_eq!(d[2]["tool_calls"][0]["id"], "t1");
    assert_eq!(d.len(), 5);
    // message_stop never came, but message_delta did: complete.
    assert_eq!(f.last().unwrap(), "[DONE]");
}

#[test]
fn thinking_stream() {
    let (f, r) = run(
        &mut translator(ResponseContext {
            include_usage: true,
            ..ResponseContext::default()
        }),
        &[
            start(json!({"input_tokens": 3, "output_tokens": 1})),
            block_start(0, json!({"type": "thinking", "thinking": ""})),
            delta(0, json!({"type": "thinking_delta", "thinking": "hmm"})),
            delta(0, json!({"type": "signature_delta", "signature": "sig"})),
            stop(0),
            block_start(1, json!({"type": "redacted_thinking", "data": "opaque"})),
            stop(1),
            block_start(2, json!({"type": "text", "text": ""})),
            delta(2, text("ok")),
            stop(2),
            message_delta("end_turn", 9),
            serde_json::from_str(MESSAGE_STOP).unwrap(),
        ],
    );
    r.unwrap();
    let d = deltas(&f);
    let block = json!({"type": "thinking", "thinking": "hmm", "index": 0});
    assert_eq!(
        d[0],
        json!({"role": "assistant", "reasoning_content": "hmm", "thinking_blocks": [block], "provider_specific_fields": {"thinking_blocks": [block]}})
    );
    let sig = json!({"type": "thinking", "thinking": "", "signature": "sig", "index": 0});
    assert_eq!(
        d[1],
        json!({"reasoning_content": "", "thinking_blocks": [sig], "provider_specific_fields": {"thinking_blocks": [sig]}})
    );
    let red = json!({"type": "redacted_thinking", "data": "opaque", "index": 1});
    assert_eq!(
        d[2],
        json!({"thinking_blocks": [red], "provider_specific_fields": {"thinking_blocks": [red]}})
    );
    assert_eq!(d[3], json!({"content": "ok"}));
    assert_eq!(f[4]["choices"][0]["finish_reason"], "stop");
    assert_eq!(
        f[5]["usage"]["completion_tokens_details"],
        json!({"reasoning_tokens": null, "text_tokens": null})
    );
}

#[test]
fn usage_from_message_delta_is_cumulative() {
    let mut t = translator(ResponseContext {
        include_usage: true,
        ..ResponseContext::default()
    });
    let (f, r) = run(
        &mut t,
        &[
            start(
                json!({"input_tokens": 10, "cache_creation_input_tokens": 4, "cache_read_input_tokens": 50, "output_tokens": 1}),
            ),
            block_start(0, json!({"type": "text", "text": "Hi"})),
            stop(0),
            json!({"type": "message_delta", "delta": {"stop_reason": "max_tokens"}, "usage": {"output_tokens": 6, "input_tokens": 11}}),
            serde_json::from_str(MESSAGE_STOP).unwrap(),
        ],
    );
    r.unwrap();
    // The text of content_block_start itself is content.
    assert_eq!(deltas(&f)[0], json!({"role": "assistant", "content": "Hi"}));
    assert_eq!(f[1]["choices"][0]["finish_reason"], "length");
    let u = &f[2]["usage"];
    assert_eq!(
        (
            u["prompt_tokens"].clone(),
            u["completion_tokens"].clone(),
            u["cache_read_input_tokens"].clone()
        ),
        (json!(65), json!(6), json!(50))
    );
    assert_eq!(t.usage(), (65, 6));
}

#[test]
fn error_event_ends_the_stream_with_a_500() {
    let mut t = translator(ResponseContext::default());
    let (f, r) = run(
        &mut t,
        &[
            start(json!({"input_tokens": 1})),
            block_start(0, json!({"type": "text", "text": ""})),
            delta(0, text("partial")),
            json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}),
            delta(0, text("never")),
        ],
    );
    let e = r.unwrap_err();
    assert_eq!(e.status(), axum::http::StatusCode::INTERNAL_SERVER_ERROR);
    assert!(e.to_string().contains("Overloaded"));
    assert_eq!(
        deltas(&f),
        [json!({"role": "assistant", "content": "partial"})]
    );
    // Nothing after the error.
    let mut out = vec![];
    t.push(
        &serde_json::to_vec(&delta(0, text("late"))).unwrap(),
        &mut out,
    )
    .unwrap();
    assert!(out.is_empty());
}

#[test]
fn cut_streams_and_garbage() {
    let (f, r) = run(
        &mut translator(ResponseContext::default()),
        &[
            start(json!({})),
            block_start(0, json!({"type": "text", "text": ""})),
            delta(0, text("half")),
        ],
    );
    assert_eq!(deltas(&f).len(), 1);
    assert!(matches!(r.unwrap_err(), Error::UpstreamUnreachable(_)));
    let mut t = translator(ResponseContext::default());
    let mut out = vec![];
    assert!(matches!(
        t.push(b"{not json", &mut out).unwrap_err(),
        Error::UpstreamUnreachable(_)
    ));
    assert!(matches!(
        t.push(br#"{"type":"content_block_delta","delta":5}"#, &mut out)
            .unwrap_err(),
        Error::UpstreamUnreachable(_)
    ));
}

#[test]
fn unknown_events_missing_indexes_and_strays() {
    let (f, r) = run(
        &mut translator(ResponseContext::default()),
        &[
            start(json!({"input_tokens": 1})),
            json!({"type": "brand_new_event", "delta": "anything", "content_block": [1, 2]}),
            json!({"no_type": true}),
            // A delta before any block, and without an index.
            json!({"type": "content_block_delta", "delta": {"type": "text_delta", "text": "a"}}),
            // Arguments with no tool block open: not a tool call.
            json!({"type": "content_block_delta", "delta": {"type": "input_json_delta", "partial_json": "{}"}}),
            block_start(0, json!({"type": "web_search_tool_result", "content": []})),
            delta(0, args("{\"x\":1}")),
            stop(0),
            json!({"type": "content_block_delta", "index": 99, "delta": {"type": "citations_delta", "citation": {"cited_text": "c"}}}),
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "mystery_delta", "x": 1}}),
            json!({"type": "content_block_stop"}),
            json!({"type": "message_delta", "delta": {}}),
            serde_json::from_str(MESSAGE_STOP).unwrap(),
            delta(0, text("after the end")),
        ],
    );
    r.unwrap();
    let d = deltas(&f);
    assert_eq!(d[0], json!({"role": "assistant", "content": "a"}));
    assert_eq!(
        d[1],
        json!({"provider_specific_fields": {"citation": {"cited_text": "c"}}})
    );
    assert_eq!(f[2]["choices"][0]["finish_reason"], "stop");
    assert_eq!(f.len(), 4);
}

#[test]
fn forced_json_tool_streams_as_content() {
    let (f, r) = run(
        &mut translator(ResponseContext {
            json_tool: true,
            ..ResponseContext::default()
        }),
        &[
            start(json!({"input_tokens": 1})),
            block_start(
                0,
                json!({"type": "tool_use", "id": "t", "name": JSON_TOOL_NAME, "input": {}}),
            ),
            delta(0, args("{\"n\":")),
            delta(0, args(" 3}")),
            stop(0),
            message_delta("tool_use", 2),
        ],
    );
    r.unwrap();
    let d = deltas(&f);
    assert_eq!(d[0], json!({"role": "assistant", "content": "{\"n\":"}));
    assert_eq!(d[1], json!({"content": " 3}"}));
    assert_eq!(f[2]["choices"][0]["finish_reason"], "stop");
}

#[test]
fn tool_names_map_back() {
    let (f, _) = run(
        &mut translator(ResponseContext {
            tool_names: vec![("a_b".into(), "a.b".into())],
            ..ResponseContext::default()
        }),
        &[
            start(json!({})),
            block_start(
                0,
                json!({"type": "tool_use", "id": "t", "name": "a_b", "input": {}}),
            ),
        ],
    );
    assert_eq!(deltas(&f)[0]["tool_calls"][0]["function"]["name"], "a.b");
}

/// A hundred thousand blocks: the machine keeps counters, not blocks.
#[test]
fn many_blocks_constant_state() {
    let mut t = translator(ResponseContext::default());
    let mut out = vec![];
    t.push(&serde_json::to_vec(&start(json!({}))).unwrap(), &mut out)
        .unwrap();
    for i in 0..100_000u64 {
        t.push(
            &serde_json::to_vec(&block_start(
                i,
                json!({"type": "tool_use", "id": "t", "name": "f", "input": {}}),
            ))
            .unwrap(),
            &mut out,
        )
        .unwrap();
        t.push(&serde_json::to_vec(&stop(i)).unwrap(), &mut out)
            .unwrap();
        out.clear();
    }
    assert_eq!(t.tool_index, 99_999);
    assert_eq!(std::mem::size_of::<Translator>(), std::mem::size_of_val(&t));
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    #[derive(Clone, Debug)]
    enum B {
        Text(Vec<String>),
        Tool(String, Vec<String>),
        Thinking(Vec<String>),
    }

    fn block() -> impl Strategy<Value = B> {
        prop_oneof![
            prop::collection::vec("[a-z \"\\\\é\n]{0,6}", 0..4).prop_map(B::Text),
            (
                "[a-z]{1,5}",
                prop::collection::vec("[a-z{}:\",0-9 ]{0,5}", 0..4)
            )
                .prop_map(|(n, a)| B::Tool(n, a)),
            prop::collection::vec("[a-z ]{0,6}", 0..3).prop_map(B::Thinking),
        ]
    }

    fn events(blocks: &[B], reason: &str) -> Vec<Value> {
        let mut ev = vec![start(json!({"input_tokens": 5, "output_tokens": 1}))];
        for (i, b) in blocks.iter().enumerate() {
            let i = i as u64;
            match b {
                B::Text(parts) => {
                    ev.push(block_start(i, json!({"type": "text", "text": ""})));
                    ev.extend(parts.iter().map(|p| delta(i, text(p))));
                }
                B::Tool(name, parts) => {
                    ev.push(block_start(i, json!({"type": "tool_use", "id": format!("toolu_{i}"), "name": name, "input": {}})));
                    ev.extend(parts.iter().map(|p| delta(i, args(p))));
                }
                B::Thinking(parts) => {
                    ev.push(block_start(i, json!({"type": "thinking", "thinking": ""})));
                    ev.extend(
                        parts
                            .iter()
                            .map(|p| delta(i, json!({"type": "thinking_delta", "thinking": p}))),
                    );
                    ev.push(delta(
                        i,
                        json!({"type": "signature_delta", "signature": "s"}),
                    ));
                }
            }
            ev.push(json!({"type": "ping"}));
            ev.push(stop(i));
        }
        ev.push(message_delta(reason, 3));
        ev.push(serde_json::from_str(MESSAGE_STOP).unwrap());
        ev
    }

    proptest! {
        /// Any well-formed stream: the client gets exactly the text, each
        /// tool's arguments whole under its own index, one finish
        /// reason, [DONE] last, one id throughout, role first.
        #[test]
        fn well_formed_streams_translate_exactly(blocks in prop::collection::vec(block(), 0..6),
                                                 reason in prop_oneof![Just("end_turn"), Just("tool_use"), Just("max_tokens"), Just("pause_turn")],
                                                 usage in any::<bool>()) {
            let mut t = translator(ResponseContext { include_usage: usage, ..ResponseContext::default() });
            let (f, r) = run(&mut t, &events(&blocks, reason));
            prop_assert!(r.is_ok());
            prop_assert_eq!(f.last().unwrap(), "[DONE]");
            prop_assert_eq!(f.iter().filter(|x| *x == "[DONE]").count(), 1);
            let chunks: Vec<&Value> = f.iter().filter(|x| x.is_object()).collect();
            prop_assert!(chunks.iter().all(|c| c["id"] == "chatcmpl-test" && c["model"] == "claude"));
            prop_assert_eq!(&chunks[0]["choices"][0]["delta"]["role"], "assistant");
            prop_assert_eq!(chunks.iter().filter(|c| c["choices"][0]["delta"].get("role").is_some()).count(), 1);
            let finishes: Vec<&Value> = chunks.iter().map(|c| &c["choices"][0]["finish_reason"]).filter(|r| r.is_string()).collect();
            let want = json!(finish_reason(Some(reason)));
            prop_assert_eq!(finishes, vec![&want]);
            prop_assert_eq!(chunks.iter().filter(|c| c.get("usage").is_some()).count(), usize::from(usage));

            let d = deltas(&f);
            let content: String = d.iter().filter_map(|x| x["content"].as_str()).collect();
            let want: String = blocks.iter().filter_map(|b| match b { B::Text(p) => Some(p.concat()), _ => None }).collect();
            prop_assert_eq!(content, want);
            let reasoning: String = d.iter().filter_map(|x| x["reasoning_content"].as_str()).collect();
            let want: String = blocks.iter().filter_map(|b| match b { B::Thinking(p) => Some(p.concat()), _ => None }).collect();
            prop_assert_eq!(reasoning, want);
            let tools: Vec<(&String, &Vec<String>)> = blocks.iter().filter_map(|b| match b { B::Tool(n, a) => Some((n, a)), _ => None }).collect();
            for (k, (name, parts)) in tools.iter().enumerate() {
                let calls: Vec<&Value> = d.iter().filter_map(|x| x.get("tool_calls")).map(|c| &c[0]).filter(|c| c["index"] == k).collect();
                prop_assert_eq!(&calls[0]["function"]["name"], &json!(name));
                prop_assert!(calls[0]["id"].is_string());
                let got: String = calls.iter().map(|c| c["function"]["arguments"].as_str().unwrap()).collect();
                let sent = parts.concat();
                prop_assert_eq!(got, if sent.is_empty() { "{}".to_owned() } else { sent });
            }
        }

        /// Any order at all, anything missing or repeated: no panic, only
        /// valid frames, nothing after [DONE] or an error.
        #[test]
        fn any_event_order_is_safe(order in prop::collection::vec(0usize..14, 0..40), include_usage in any::<bool>()) {
            let vocabulary = [
                start(json!({"input_tokens": 2})),
                block_start(0, json!({"type": "text", "text": "t"})),
                block_start(1, json!({"type": "tool_use", "id": "x", "name": "f", "input": {}})),
                block_start(2, json!({"type": "thinking", "thinking": ""})),
                block_start(3, json!({"type": "redacted_thinking", "data": "d"})),
                delta(0, text("a")),
                delta(1, args("{\"k\"")),
                delta(2, json!({"type": "thinking_delta", "thinking": "z"})),
                json!({"type": "content_block_delta", "delta": {"type": "signature_delta", "signature": "s"}}),
                stop(0),
                message_delta("end_turn", 4),
                serde_json::from_str(MESSAGE_STOP).unwrap(),
                json!({"type": "ping"}),
                json!({"type": "error", "error": {"type": "api_error", "message": "boom"}}),
            ];
            let events: Vec<Value> = order.iter().map(|&i| vocabulary[i].clone()).collect();
            let mut t = translator(ResponseContext { include_usage, ..ResponseContext::default() });
            let (f, r) = run(&mut t, &events);
            let done = f.iter().position(|x| x == "[DONE]");
            if let Some(at) = done {
                prop_assert_eq!(at, f.len() - 1);
                prop_assert!(r.is_ok());
            }
            if r.is_err() {
                prop_assert!(done.is_none());
            }
            let chunks: Vec<&Value> = f.iter().filter(|x| x.is_object()).collect();
            if let Some(first) = chunks.first() {
                prop_assert_eq!(&first["choices"][0]["delta"]["role"], "assistant");
            }
            if done.is_some() {
                let finishes = chunks.iter().filter(|c| c["choices"][0]["finish_reason"].is_string()).count();
                prop_assert!(finishes >= 1);
            }
            prop_assert!(t.is_done());
        }
    }
}

/// The adapter: an SSE body cut at every awkward place gives the same
/// frames as events pushed one by one.
#[tokio::test]
async fn adapter_over_split_bytes() {
    let mut sse_body = Vec::new();
    for e in p2_events() {
        let kind = e["type"].as_str().unwrap().to_owned();
        sse_body.extend_from_slice(format!("event: {kind}\ndata: {e}\n\n").as_bytes());
    }
    let mut direct = vec![];
    let mut t = translator(ResponseContext {
        include_usage: true,
        ..ResponseContext::default()
    });
    for e in p2_events() {
        t.push(&serde_json::to_vec(&e).unwrap(), &mut direct)
            .unwrap();
    }
    for size in [1, 7, 64, sse_body.len()] {
        let pieces: Vec<Result<Bytes, Error>> = sse_body
            .chunks(size)
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect();
        let (tx, rx) = std::sync::mpsc::channel();
        let t = translator(ResponseContext {
            include_usage: true,
            ..ResponseContext::default()
        });
        let s = translate(futures_util::stream::iter(pieces), t, move |t| {
            tx.send(t.usage()).unwrap()
        });
        let got: Vec<Result<Bytes, Error>> = s.collect().await;
        let bytes: Vec<u8> = got.into_iter().flat_map(|r| r.unwrap().to_vec()).collect();
        assert_eq!(
            String::from_utf8_lossy(&bytes),
            String::from_utf8_lossy(&direct),
            "size {size}"
        );
        assert_eq!(rx.recv().unwrap(), (21, 12));
    }
}

/// A client that goes away mid-stream: the usage so far is reported.
#[tokio::test]
async fn adapter_reports_usage_when_dropped() {
    let body = format!("data: {}\n\n", start(json!({"input_tokens": 9})));
    let (tx, rx) = std::sync::mpsc::channel();
    let pending = futures_util::stream::iter(vec![Ok(Bytes::from(body))])
        .chain(futures_util::stream::pending());
    let mut s = Box::pin(translate(
        pending,
        translator(ResponseContext::default()),
        move |t| tx.send(t.usage()).unwrap(),
    ));
    let next = tokio::time::timeout(std::time::Duration::from_millis(50), s.next()).await;
    assert!(next.is_err(), "nothing to send yet");
    assert!(rx.try_recv().is_err());
    drop(s);
    assert_eq!(rx.try_recv().unwrap(), (9, 0));
}

/// An upstream that stops mid-answer: the frames so far, then an error.
#[tokio::test]
async fn adapter_reports_a_cut_stream() {
    let body = format!(
        "data: {}\n\ndata: {}\n\ndata: {}\n\n",
        start(json!({})),
        block_start(0, json!({"type": "text", "text": ""})),
        delta(0, text("half"))
    );
    let s = translate(
        futures_util::stream::iter(vec![Ok(Bytes::from(body))]),
        translator(ResponseContext::default()),
        |_| {},
    );
    let got: Vec<Result<Bytes, Error>> = s.collect().await;
    assert_eq!(got.len(), 2);
    assert!(String::from_utf8_lossy(got[0].as_ref().unwrap()).contains("\"half\""));
    assert!(matches!(got[1], Err(Error::UpstreamUnreachable(_))));
}
