//! Property: nothing an Anthropic deployment answers reaches the client
//! unread by a post_call guardrail, on `/v1/chat/completions` and on
//! `/v1/messages`, JSON and streams.
//!
//! The generator writes an Anthropic answer (a JSON message, or the SSE
//! events of one) whose blocks carry a fresh marker word in every place a
//! client could read text: text blocks (some with cited text), thinking,
//! tool_use input keys and values (streamed as `input_json_delta` pieces),
//! and blocks no check reads (a server tool's call and result, a block or
//! a delta type newer than the gateway, a field newer than it); sometimes written with `\u` escapes, with
//! redacted thinking among them. The mock Anthropic sends it byte for byte;
//! the mock Aim passes everything. For every case: each marker found in
//! what the client received was in what Aim received (its analyze calls
//! and its websocket frames). The oracle is not the gateway's: markers are
//! found in the raw bytes each side received, every JSON string literal
//! decoded by this file. Markers are never split over stream events, so a
//! marker the client got whole is one Aim got whole.
//!
//! Run with an Aim guardrail and with a Cato Networks one.
//!
//! `PROPTEST_CASES` sets the number of cases (default 256). Failures shrink
//! and are saved in `tests/anthropic_output_properties.regressions`.

// Tests: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use gateway::server::Running;
use gateway_mock::aim::{AimMode, AimOptions, MockAim};
use gateway_mock::anthropic::{AnthropicOptions, MockAnthropic};
use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence, TestCaseError, TestRunner};
use serde_json::json;

#[derive(Clone, Debug)]
struct Txt {
    before: String,
    after: String,
    /// Written with every character `\u`-escaped.
    escape: bool,
}

#[derive(Clone, Debug)]
enum Block {
    Text(Txt),
    /// A text block citing a source (the cited text is in the citation).
    Cited(Txt, Txt),
    Thinking(Txt),
    Redacted,
    /// Markers as keys and values.
    ToolUse(Vec<(Txt, Txt)>),
    ServerToolUse(Txt),
    SearchResult(Txt),
    Unknown(Txt),
    /// A text block whose text comes (in a stream) in a delta type newer
    /// than the gateway.
    UnknownDelta(Txt),
}

#[derive(Clone, Debug)]
struct Case {
    blocks: Vec<Block>,
    stream: bool,
    /// `/v1/messages` (else chat).
    messages: bool,
    /// Text deltas per streamed text (at least 1).
    pieces: usize,
}

fn txt() -> impl Strategy<Value = Txt> {
    let piece = prop_oneof![
        Just("a b"),
        Just("\n"),
        Just("\""),
        Just("\\"),
        Just("é"),
        Just("\u{1F600}"),
        Just("{\"k\":1}"),
        Just("\u{2028}"),
    ];
    let text = prop::collection::vec(piece, 0..3).prop_map(|v| v.concat());
    (text.clone(), text, prop::bool::weighted(0.3)).prop_map(|(before, after, escape)| Txt {
        before,
        after,
        escape,
    })
}

fn block() -> impl Strategy<Value = Block> {
    prop_oneof![
        6 => txt().prop_map(Block::Text),
        1 => (txt(), txt()).prop_map(|(t, c)| Block::Cited(t, c)),
        2 => txt().prop_map(Block::Thinking),
        1 => Just(Block::Redacted),
        4 => prop::collection::vec((txt(), txt()), 1..3).prop_map(Block::ToolUse),
        1 => txt().prop_map(Block::ServerToolUse),
        1 => txt().prop_map(Block::SearchResult),
        1 => txt().prop_map(Block::Unknown),
        1 => txt().prop_map(Block::UnknownDelta),
    ]
}

fn case() -> impl Strategy<Value = Case> {
    (
        prop::collection::vec(block(), 1..5),
        any::<bool>(),
        any::<bool>(),
        1..4usize,
    )
        .prop_map(|(blocks, stream, messages, pieces)| Case {
            blocks,
            stream,
            messages,
            pieces,
        })
}

// ---- writing an answer ----

/// `s` as a JSON string literal, every character `\u`-escaped when `escape`.
fn lit(s: &str, escape: bool) -> String {
    if !escape {
        return serde_json::to_string(s).unwrap();
    }
    let mut out = String::from("\"");
    for unit in s.encode_utf16() {
        out.push_str(&format!("\\u{unit:04x}"));
    }
    out.push('"');
    out
}

#[derive(Default)]
struct Writer {
    markers: Vec<String>,
}

impl Writer {
    /// The text of `t` with a fresh marker in it.
    fn text(&mut self, t: &Txt) -> String {
        let marker = format!("zq{}x", self.markers.len());
        self.markers.push(marker.clone());
        format!("{} {marker} {}", t.before, t.after)
    }

    /// A JSON string literal carrying a fresh marker.
    fn lit(&mut self, t: &Txt) -> String {
        let text = self.text(t);
        lit(&text, t.escape)
    }

    /// A tool input object whose keys and values carry markers, as its
    /// members' texts (`"k":"v"`), for a JSON answer or a stream's pieces.
    fn members(&mut self, pairs: &[(Txt, Txt)]) -> Vec<String> {
        pairs
            .iter()
            .map(|(k, v)| {
                let marker = format!("zq{}x", self.markers.len());
                self.markers.push(marker.clone());
                let key = lit(&marker, k.escape);
                format!("{key}:{}", self.lit(v))
            })
            .collect()
    }

    /// A whole block, as a JSON answer carries it.
    fn block(&mut self, b: &Block) -> String {
        match b {
            Block::Text(t) => format!(r#"{{"type":"text","text":{}}}"#, self.lit(t)),
            Block::Cited(t, c) => format!(
                r#"{{"type":"text","text":{},"citations":[{{"type":"web_search_result_location","url":"https://e.com","title":"t","encrypted_index":"x","cited_text":{}}}]}}"#,
                self.lit(t),
                self.lit(c)
            ),
            Block::Thinking(t) => format!(
                r#"{{"type":"thinking","thinking":{},"signature":"sig"}}"#,
                self.lit(t)
            ),
            Block::Redacted => r#"{"type":"redacted_thinking","data":"ZW5jcnlwdGVk"}"#.into(),
            Block::ToolUse(pairs) => format!(
                r#"{{"type":"tool_use","id":"toolu_1","name":"send","input":{{{}}}}}"#,
                self.members(pairs).join(",")
            ),
            Block::ServerToolUse(t) => format!(
                r#"{{"type":"server_tool_use","id":"srvtoolu_1","name":"web_search","input":{{"query":{}}}}}"#,
                self.lit(t)
            ),
            Block::SearchResult(t) => format!(
                r#"{{"type":"web_search_tool_result","tool_use_id":"srvtoolu_1","content":[{{"type":"web_search_result","url":"https://e.com","title":{},"encrypted_content":"x","page_age":null}}]}}"#,
                self.lit(t)
            ),
            Block::Unknown(t) => format!(r#"{{"type":"brand_new_block","text":{}}}"#, self.lit(t)),
            Block::UnknownDelta(t) => format!(
                r#"{{"type":"text","text":"","brand_new_field":{}}}"#,
                self.lit(t)
            ),
        }
    }

    fn message(&mut self, blocks: &[Block]) -> String {
        let content: Vec<String> = blocks.iter().map(|b| self.block(b)).collect();
        format!(
            r#"{{"id":"msg_1","type":"message","role":"assistant","model":"claude-sonnet-4-5-20250929","content":[{}],"stop_reason":"end_turn","stop_sequence":null,"usage":{{"input_tokens":3,"output_tokens":5}}}}"#,
            content.join(",")
        )
    }

    /// The events of a stream of `blocks`, each text in `pieces` deltas
    /// (split around its marker, never through it).
    fn events(&mut self, blocks: &[Block], pieces: usize) -> Vec<String> {
        let mut ev = vec![
            r#"{"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","content":[],"model":"claude-sonnet-4-5-20250929","stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":3,"output_tokens":1}}}"#.to_owned(),
        ];
        let delta = |i: usize, d: String| {
            format!(r#"{{"type":"content_block_delta","index":{i},"delta":{d}}}"#)
        };
        for (i, b) in blocks.iter().enumerate() {
            let start = |cb: String| {
                format!(r#"{{"type":"content_block_start","index":{i},"content_block":{cb}}}"#)
            };
            match b {
                Block::Text(t) | Block::Cited(t, _) => {
                    ev.push(start(r#"{"type":"text","text":""}"#.into()));
                    for p in self.split(t, pieces) {
                        ev.push(delta(i, format!(r#"{{"type":"text_delta","text":{p}}}"#)));
                    }
                    if let Block::Cited(_, c) = b {
                        ev.push(delta(
                            i,
                            format!(
                                r#"{{"type":"citations_delta","citation":{{"type":"web_search_result_location","url":"https://e.com","title":"t","encrypted_index":"x","cited_text":{}}}}}"#,
                                self.lit(c)
                            ),
                        ));
                    }
                }
                Block::Thinking(t) => {
                    ev.push(start(
                        r#"{"type":"thinking","thinking":"","signature":""}"#.into(),
                    ));
                    for p in self.split(t, pieces) {
                        ev.push(delta(
                            i,
                            format!(r#"{{"type":"thinking_delta","thinking":{p}}}"#),
                        ));
                    }
                    ev.push(delta(
                        i,
                        r#"{"type":"signature_delta","signature":"sig"}"#.into(),
                    ));
                }
                Block::ToolUse(pairs) => {
                    ev.push(start(
                        r#"{"type":"tool_use","id":"toolu_1","name":"send","input":{}}"#.into(),
                    ));
                    let escape = pairs[0].1.escape;
                    let members = self.members(pairs);
                    let mut parts = vec!["{".to_owned()];
                    for (j, m) in members.iter().enumerate() {
                        if j > 0 {
                            parts.push(",".into());
                        }
                        parts.push(m.clone());
                    }
                    parts.push("}".into());
                    for p in parts {
                        ev.push(delta(
                            i,
                            format!(
                                r#"{{"type":"input_json_delta","partial_json":{}}}"#,
                                lit(&p, escape)
                            ),
                        ));
                    }
                }
                Block::ServerToolUse(t) => {
                    ev.push(start(
                        r#"{"type":"server_tool_use","id":"srvtoolu_1","name":"web_search","input":{}}"#
                            .into(),
                    ));
                    let partial = format!(r#"{{"query":{}}}"#, self.lit(t));
                    ev.push(delta(
                        i,
                        format!(
                            r#"{{"type":"input_json_delta","partial_json":{}}}"#,
                            lit(&partial, false)
                        ),
                    ));
                }
                Block::UnknownDelta(t) => {
                    ev.push(start(r#"{"type":"text","text":""}"#.into()));
                    ev.push(delta(
                        i,
                        format!(r#"{{"type":"brand_new_delta","text":{}}}"#, self.lit(t)),
                    ));
                }
                Block::Redacted | Block::SearchResult(_) | Block::Unknown(_) => {
                    ev.push(start(self.block(b)));
                }
            }
            ev.push(format!(r#"{{"type":"content_block_stop","index":{i}}}"#));
        }
        ev.push(r#"{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":5}}"#.into());
        ev.push(r#"{"type":"message_stop"}"#.into());
        ev
    }

    /// The text of `t` (with a fresh marker) as up to `n` JSON string
    /// literals, cut only outside the marker.
    fn split(&mut self, t: &Txt, n: usize) -> Vec<String> {
        let text = self.text(t);
        let marker = self.markers.last().unwrap().clone();
        let at = text.find(&marker).unwrap();
        let (head, rest) = text.split_at(at);
        let (mid, tail) = rest.split_at(marker.len());
        let mut parts: Vec<String> = vec![head.into(), mid.into(), tail.into()];
        parts.retain(|p| !p.is_empty());
        // Fewer pieces: join neighbours.
        while parts.len() > n.max(1) {
            let last = parts.pop().unwrap();
            parts.last_mut().unwrap().push_str(&last);
        }
        parts.iter().map(|p| lit(p, t.escape)).collect()
    }
}

// ---- the oracle ----

// ---- the harness ----

struct Harness {
    rt: tokio::runtime::Runtime,
    anthropic: MockAnthropic,
    aim: MockAim,
    gw: Running,
}

impl Harness {
    fn new(vendor: &str) -> Harness {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let (anthropic, aim, gw) = rt.block_on(async {
            let anthropic = MockAnthropic::start(AnthropicOptions::default()).await;
            let aim = MockAim::start(AimOptions {
                mode: AimMode::Pass,
                ..Default::default()
            })
            .await;
            let gw = gateway(&format!(
                "model_list:\n  - model_name: claude\n    litellm_params:\n      model: anthropic/claude-sonnet-4-5-20250929\n      api_base: {}\n      api_key: sk-ant-upstream-secret\nguardrails:\n  - guardrail_name: g\n    litellm_params:\n      guardrail: {vendor}\n      mode: post_call\n      api_key: aim-mock-key\n      api_base: {}\n",
                anthropic.url(),
                aim.url()
            ))
            .await;
            (anthropic, aim, gw)
        });
        Harness {
            rt,
            anthropic,
            aim,
            gw,
        }
    }
}

/// Per case: (status, markers the client received).
type Stats = std::sync::Mutex<Vec<(u16, usize)>>;

fn check(h: &Harness, c: &Case, stats: &Stats) -> Result<(), TestCaseError> {
    h.aim.reset();
    let mut w = Writer::default();
    let mut opts = AnthropicOptions::default();
    if c.stream {
        opts.events = Some(w.events(&c.blocks, c.pieces));
    } else {
        opts.message = Some(w.message(&c.blocks));
    }
    h.anthropic.set_options(opts);
    let (path, body) = if c.messages {
        (
            "/v1/messages",
            json!({"model": "claude", "max_tokens": 50, "stream": c.stream, "guardrails": ["g"],
                   "messages": [{"role": "user", "content": "go"}]}),
        )
    } else {
        (
            "/v1/chat/completions",
            json!({"model": "claude", "stream": c.stream, "guardrails": ["g"],
                   "messages": [{"role": "user", "content": "go"}]}),
        )
    };
    let (status, answer) = h.rt.block_on(async {
        let resp = client()
            .post(format!("{}{path}", h.gw.url()))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        (status, resp.bytes().await.unwrap())
    });
    let got = json_strings(&answer);
    let mut seen: String = h
        .aim
        .requests()
        .iter()
        .map(|r| json_strings(&r.body))
        .collect();
    for s in h.aim.streams() {
        for f in &s.frames {
            seen.push_str(&json_strings(f.as_bytes()));
        }
    }
    let reached: Vec<&String> = w
        .markers
        .iter()
        .filter(|m| got.contains(m.as_str()))
        .collect();
    if let Ok(mut s) = stats.lock() {
        s.push((status, reached.len()));
    }
    for m in reached {
        prop_assert!(
            seen.contains(m.as_str()),
            "{m} reached the client unread by Aim ({status}, {path}, stream {})\nclient got: {}\nAim got: {seen}",
            c.stream,
            String::from_utf8_lossy(&answer),
        );
    }
    Ok(())
}

#[test]
fn what_the_client_receives_aim_has_read() {
    property("aim");
}

/// The same with Cato Networks' guardrail (its own output path).
#[test]
fn what_the_client_receives_cato_has_read() {
    property("cato_networks");
}

fn property(vendor: &str) {
    let h = Harness::new(vendor);
    let stats = Stats::default();
    let base = Config::default();
    let mut runner = TestRunner::new(Config {
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource("regressions"))),
        source_file: Some(file!()),
        ..base
    });
    runner
        .run(&case(), |c| check(&h, &c, &stats))
        .unwrap_or_else(|e| panic!("{e}"));
    // A property over answers that never reach the client checks nothing.
    let stats = stats.lock().unwrap();
    let delivered = stats.iter().filter(|(_, m)| *m > 0).count();
    eprintln!(
        "{delivered} of {} answers delivered markers to the client",
        stats.len()
    );
    assert!(
        delivered * 3 >= stats.len(),
        "{delivered} of {}",
        stats.len()
    );
}

#[test]
fn the_oracle_decodes_every_string_and_partial_json() {
    let s = json_strings(br#"{"a\u0062":"x\u004dRK","p":"{\"zq1x\":\"v\"}"}"#);
    assert!(s.contains("ab") && s.contains("xMRK"), "{s}");
    assert!(s.contains("\u{1}zq1x\u{1}"), "{s}");
    assert_eq!(lit("é\u{1F600}", true), r#""\u00e9\ud83d\ude00""#);
}
