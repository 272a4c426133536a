//! The guardrails on Anthropic's two ways in, over HTTP against the real
//! gateway, the mock Aim and the mock upstreams (Anthropic's Messages API
//! and OpenAI's chat), asserting on what crossed the wire: what Aim read,
//! what each upstream received, the exact bytes the client got.
//!
//! - one test per cell of (chat → `anthropic/`, `/v1/messages` →
//!   `anthropic/`, `/v1/messages` → `openai/`) x (pre_call, during_call,
//!   post_call) x (JSON, stream), each with a block and a pass;
//! - what a guardrail reads on `/v1/messages` (every text position, the
//!   `system` prompt included), what it cannot read (refused), images;
//! - anonymize: rewritten where the Messages body held a plain string,
//!   refused elsewhere;
//! - what Aim is told about the caller (user e-mail, key alias, call id);
//! - what post_call reads in an Anthropic answer (two `#[ignore]`d tests
//!   record bugs: answer blocks and citations the check never read reach
//!   the client);
//! - a property over generated Messages bodies: a secret in any text
//!   position either reaches Aim or the request is refused; it never
//!   reaches an upstream unread.

// Tests: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use gateway::server::Running;
use gateway_mock::aim::{AimMode, AimOptions, MockAim};
use gateway_mock::anthropic::{AnthropicOptions, MockAnthropic, ToolUse};
use gateway_mock::upstream::{MockUpstream, UpstreamOptions};
use serde_json::{Value, json};

const EMAIL: &str = "ishaan@berri.ai";
const DETECTION: &str = r#""ishaan@berri.ai" detected as email"#;
/// Aim's block on chat (aim.md section 6).
const CHAT_BLOCK: &str = r#"{"error":{"message":"\"ishaan@berri.ai\" detected as email","type":"invalid_request_error","param":null,"code":"400"}}"#;
/// Aim's block on `/v1/messages`: Anthropic's shape, Aim's message.
const MESSAGES_BLOCK: &str = r#"{"type":"error","error":{"type":"invalid_request_error","message":"\"ishaan@berri.ai\" detected as email"}}"#;
/// A reply the mocks stream in two chunks of 15 characters: the first
/// clean, the second the address alone (Aim's websocket checks chunk by
/// chunk).
const LEAKY_REPLY: &str = "Please contact ishaan@berri.ai";
const SYSTEM: &str = "Be terse.";

// ---- the rig ----

/// Every mock, and a gateway with one Anthropic and one OpenAI model, and
/// one guardrail per hook.
struct Rig {
    anthropic: MockAnthropic,
    up: MockUpstream,
    aim: MockAim,
    gw: Running,
}

/// Guardrails every rig has, all Aim's: one per hook, and a pre_call one
/// that refuses what it cannot read (the mock Aim's mode decides whether a
/// detection blocks or anonymizes).
const GUARDRAILS: &[(&str, &str)] = &[
    ("pre", "pre_call"),
    ("during", "during_call"),
    ("post", "post_call"),
    ("strict", "pre_call\n      block_uninspectable: true"),
];

impl Rig {
    async fn new() -> Rig {
        Self::with(AnthropicOptions::default(), UpstreamOptions::default(), "").await
    }

    async fn with(a: AnthropicOptions, u: UpstreamOptions, extra: &str) -> Rig {
        let anthropic = MockAnthropic::start(a).await;
        let up = MockUpstream::start(u).await;
        let aim = MockAim::start(AimOptions::default()).await;
        let mut yaml = format!(
            "model_list:\n  - model_name: claude\n    litellm_params:\n      model: anthropic/claude-sonnet-4-5-20250929\n      api_base: {}\n      api_key: sk-ant-upstream-secret\n{}guardrails:\n",
            anthropic.url(),
            model("gpt", &up.url()),
        );
        for (name, mode) in GUARDRAILS {
            yaml.push_str(&format!(
                "  - guardrail_name: {name}\n    litellm_params:\n      guardrail: aim\n      mode: {mode}\n      api_key: aim-mock-key\n      api_base: {}\n",
                aim.url()
            ));
        }
        yaml.push_str(extra);
        let gw = gateway(&yaml).await;
        Rig {
            anthropic,
            up,
            aim,
            gw,
        }
    }

    /// What the upstream behind `route` received, in order.
    fn upstream(&self, route: Route) -> Vec<gateway_mock::Recorded> {
        match route {
            Route::Chat | Route::MessagesClaude => self.anthropic.requests(),
            Route::MessagesGpt => self.up.requests(),
        }
    }

    /// The Aim calls' hooks and bodies.
    fn aim_calls(&self) -> Vec<(String, Value)> {
        self.aim
            .requests()
            .iter()
            .map(|r| {
                (
                    r.header("x-aim-litellm-hook")
                        .unwrap_or_default()
                        .to_owned(),
                    r.json(),
                )
            })
            .collect()
    }

    /// Both upstreams answer `reply` (`None`: an echo of the last user
    /// text), streams in two chunks.
    fn reply(&self, reply: Option<&str>) {
        self.anthropic.set_options(AnthropicOptions {
            reply: reply.map(str::to_owned),
            chunks: 2,
            ..Default::default()
        });
        self.up.set_options(UpstreamOptions {
            reply: reply.map(str::to_owned),
            chunks: 2,
            ..Default::default()
        });
    }

    fn reset(&self) {
        self.anthropic.reset();
        self.up.reset();
        self.aim.reset();
    }
}

/// A way in and the kind of deployment behind it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Route {
    /// `/v1/chat/completions` to `claude` (`anthropic/`).
    Chat,
    /// `/v1/messages` to `claude` (`anthropic/`).
    MessagesClaude,
    /// `/v1/messages` to `gpt` (`openai/`).
    MessagesGpt,
}

impl Route {
    fn path(self) -> &'static str {
        match self {
            Route::Chat => "/v1/chat/completions",
            _ => "/v1/messages",
        }
    }

    fn model(self) -> &'static str {
        match self {
            Route::MessagesGpt => "gpt",
            _ => "claude",
        }
    }

    fn block(self) -> &'static str {
        match self {
            Route::Chat => CHAT_BLOCK,
            _ => MESSAGES_BLOCK,
        }
    }

    /// A request with the system prompt and one user text, through
    /// `guardrail`.
    fn body(self, text: &str, guardrail: &str, stream: bool) -> Value {
        match self {
            Route::Chat => json!({
                "model": self.model(),
                "messages": [
                    {"role": "system", "content": SYSTEM},
                    {"role": "user", "content": text}
                ],
                "stream": stream,
                "guardrails": [guardrail]
            }),
            _ => json!({
                "model": self.model(),
                "max_tokens": 100,
                "system": SYSTEM,
                "messages": [{"role": "user", "content": text}],
                "stream": stream,
                "guardrails": [guardrail]
            }),
        }
    }
}

struct Answer {
    status: u16,
    content_type: String,
    body: String,
}

async fn post(gw: &Running, path: &str, body: &Value) -> Answer {
    post_raw(gw, path, body.to_string()).await
}

/// POST `body` as it is written.
async fn post_raw(gw: &Running, path: &str, body: String) -> Answer {
    let resp = client()
        .post(format!("{}{path}", gw.url()))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let content_type = header(&resp, "content-type").unwrap_or_default().to_owned();
    let body = resp.text().await.unwrap();
    Answer {
        status,
        content_type,
        body,
    }
}

/// `/v1/messages` with `body`.
async fn messages(gw: &Running, body: &Value) -> Answer {
    post(gw, "/v1/messages", body).await
}

/// The events of a Messages stream: (event type, data).
fn events(body: &str) -> Vec<(String, String)> {
    body.split("\n\n")
        .filter(|f| !f.is_empty())
        .map(|frame| {
            let mut kind = String::new();
            let mut data = String::new();
            for line in frame.lines() {
                if let Some(k) = line.strip_prefix("event: ") {
                    kind = k.to_owned();
                } else if let Some(d) = line.strip_prefix("data: ") {
                    data = d.to_owned();
                } else {
                    panic!("not an SSE line: {line:?} in {body:?}");
                }
            }
            (kind, data)
        })
        .collect()
}

/// The text a client reads from a stream of `route`: the chat chunks'
/// content, or the Messages events' text deltas.
fn streamed_text(route: Route, body: &str) -> String {
    match route {
        Route::Chat => sse_data(body)
            .iter()
            .filter_map(|d| serde_json::from_str::<Value>(d).ok())
            .filter_map(|v| {
                v["choices"][0]["delta"]["content"]
                    .as_str()
                    .map(str::to_owned)
            })
            .collect(),
        _ => events(body)
            .iter()
            .filter(|(k, _)| k == "content_block_delta")
            .map(|(_, d)| serde_json::from_str::<Value>(d).unwrap())
            .filter_map(|v| v["delta"]["text"].as_str().map(str::to_owned))
            .collect(),
    }
}

/// The text of a JSON answer of `route`.
fn answer_text(route: Route, body: &str) -> String {
    let v: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"));
    match route {
        Route::Chat => v["choices"][0]["message"]["content"]
            .as_str()
            .unwrap_or_else(|| panic!("{body}"))
            .to_owned(),
        _ => {
            assert_eq!(v["type"], "message", "{body}");
            v["content"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(|b| b["text"].as_str())
                .collect()
        }
    }
}

/// The text of a chat chunk Aim verified (`{"verified_chunk": ...}`).
fn verified_text(rig: &Rig) -> String {
    rig.aim
        .streams()
        .iter()
        .flat_map(|s| s.sent.clone())
        .filter_map(|f| serde_json::from_str::<Value>(&f).ok())
        .filter_map(|v| {
            v["verified_chunk"]["choices"][0]["delta"]["content"]
                .as_str()
                .map(str::to_owned)
        })
        .collect()
}

/// The system prompt and the user text an upstream of `route` received.
fn upstream_saw(route: Route, rig: &Rig) -> (Value, Value) {
    let got = rig.upstream(route);
    assert_eq!(got.len(), 1, "one upstream call");
    let sent = got[0].json();
    match route {
        Route::MessagesGpt => (
            sent["messages"][0]["content"].clone(),
            sent["messages"][1]["content"].clone(),
        ),
        // Chat's system message becomes blocks; a Messages body passes
        // through as it was.
        Route::Chat => (
            sent["system"][0]["text"].clone(),
            sent["messages"][0]["content"][0]["text"].clone(),
        ),
        Route::MessagesClaude => (
            sent["system"].clone(),
            sent["messages"][0]["content"].clone(),
        ),
    }
}

/// Aim's input check of the cell requests: the system prompt and the user
/// text, both read.
fn input_check(text: &str) -> Value {
    json!({"messages": [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": text}
    ]})
}

#[derive(Clone, Copy, Debug)]
enum Hook {
    Pre,
    During,
    Post,
}

/// One cell: a block, then a pass, over `route` with the guardrail of
/// `hook`, as JSON or a stream.
async fn cell(route: Route, hook: Hook, stream: bool) {
    let rig = Rig::new().await;
    match hook {
        Hook::Pre | Hook::During => input_cell(&rig, route, hook, stream).await,
        Hook::Post if stream => output_stream_cell(&rig, route).await,
        Hook::Post => output_json_cell(&rig, route).await,
    }
}

async fn input_cell(rig: &Rig, route: Route, hook: Hook, stream: bool) {
    let (name, aim_hook) = match hook {
        Hook::Pre => ("pre", "pre_call"),
        _ => ("during", "moderation"),
    };
    // Block: the ordinary JSON 400 of the route, stream or not.
    let leaky = format!("hi my email is {EMAIL}");
    let got = post(&rig.gw, route.path(), &route.body(&leaky, name, stream)).await;
    assert_eq!((got.status, got.body.as_str()), (400, route.block()));
    assert_eq!(got.content_type, "application/json");
    assert_eq!(
        rig.aim_calls(),
        [(aim_hook.to_owned(), input_check(&leaky))],
        "Aim read the system prompt and the user text"
    );
    if let Hook::Pre = hook {
        assert!(
            rig.upstream(route).is_empty(),
            "pre_call blocks before the upstream"
        );
    }

    // Pass: Aim read the request, the upstream got it, the client the echo.
    rig.reset();
    rig.reply(None);
    let got = post(
        &rig.gw,
        route.path(),
        &route.body("hello there", name, stream),
    )
    .await;
    assert_eq!(got.status, 200, "{}", got.body);
    assert_eq!(
        rig.aim_calls(),
        [(aim_hook.to_owned(), input_check("hello there"))]
    );
    assert_eq!(
        upstream_saw(route, rig),
        (json!(SYSTEM), json!("hello there"))
    );
    let text = if stream {
        assert_eq!(got.content_type, "text/event-stream");
        assert_complete(route, &got.body);
        streamed_text(route, &got.body)
    } else {
        answer_text(route, &got.body)
    };
    assert_eq!(text, "hello there");
}

/// A stream that ended as it should: `[DONE]` or `message_stop`, no error.
fn assert_complete(route: Route, body: &str) {
    match route {
        Route::Chat => {
            assert!(body.ends_with("data: [DONE]\n\n"), "{body}");
            assert!(!body.contains("\"error\""), "{body}");
        }
        _ => {
            let ev = events(body);
            assert_eq!(
                ev.first().map(|e| e.0.as_str()),
                Some("message_start"),
                "{body}"
            );
            assert_eq!(
                ev.last().map(|e| e.0.as_str()),
                Some("message_stop"),
                "{body}"
            );
            assert!(ev.iter().all(|(k, _)| k != "error"), "{body}");
        }
    }
}

async fn output_json_cell(rig: &Rig, route: Route) {
    // Block: the answer carries an address; the client gets the 400 only.
    rig.reply(Some(LEAKY_REPLY));
    let got = post(&rig.gw, route.path(), &route.body("who?", "post", false)).await;
    assert_eq!((got.status, got.body.as_str()), (400, route.block()));
    assert_eq!(rig.upstream(route).len(), 1);
    let calls = rig.aim_calls();
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!(calls[0].0, "output");
    assert_eq!(
        calls[0].1,
        json!({"messages": [
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": "who?"},
            {"role": "assistant", "content": LEAKY_REPLY}
        ]})
    );

    // Pass: the answer as the upstream gave it (restamped), after the check.
    rig.reset();
    rig.reply(Some("Nobody."));
    let got = post(&rig.gw, route.path(), &route.body("who?", "post", false)).await;
    assert_eq!(got.status, 200, "{}", got.body);
    assert_eq!(answer_text(route, &got.body), "Nobody.");
    let calls = rig.aim_calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(
        calls[0].1["messages"][2],
        json!({"role": "assistant", "content": "Nobody."})
    );
    if route == Route::MessagesClaude {
        // Anthropic's answer, byte for byte but the model name.
        let upstream = String::from_utf8(rig.upstream(route)[0].response_body.clone()).unwrap();
        assert_eq!(
            got.body,
            upstream.replace(
                r#""model":"claude-sonnet-4-5-20250929""#,
                r#""model":"claude""#
            )
        );
    }
}

async fn output_stream_cell(rig: &Rig, route: Route) {
    // Block: the first chunk is verified and reaches the client, the second
    // is blocked; the stream ends with the route's error frame, and nothing
    // of the blocked chunk came before it.
    rig.reply(Some(LEAKY_REPLY));
    let got = post(&rig.gw, route.path(), &route.body("who?", "post", true)).await;
    assert_eq!(got.status, 200, "the status went out before the block");
    assert_eq!(got.content_type, "text/event-stream");
    let tail = match route {
        Route::Chat => format!("data: {CHAT_BLOCK}\n\n"),
        _ => format!("event: error\ndata: {MESSAGES_BLOCK}\n\n"),
    };
    let Some(before) = got.body.strip_suffix(&tail) else {
        panic!("the stream does not end with the block: {:?}", got.body);
    };
    assert!(
        !before.contains(EMAIL) && !before.contains("berri"),
        "{before}"
    );
    assert!(
        !before.contains("[DONE]") && !before.contains("message_stop"),
        "{before}"
    );
    assert!(!before.contains("error"), "one error frame: {}", got.body);
    assert_eq!(streamed_text(route, before), "Please contact ");
    assert_eq!(verified_text(rig), "Please contact ", "what Aim verified");
    if route != Route::Chat {
        let ev = events(&got.body);
        assert_eq!(ev[0].0, "message_start", "{}", got.body);
    }
    let ws = rig.aim.streams();
    assert_eq!(ws.len(), 1);
    assert_eq!(ws[0].header("x-aim-litellm-hook"), Some("output"));
    // The frame carries Aim's own blocking message.
    let blocked = ws[0]
        .sent
        .last()
        .map(|f| serde_json::from_str::<Value>(f).unwrap());
    assert_eq!(blocked, Some(json!({"blocking_message": DETECTION})));

    // Pass: every chunk verified, the whole text, a complete stream.
    rig.reset();
    rig.reply(Some("Nobody, sorry."));
    let got = post(&rig.gw, route.path(), &route.body("who?", "post", true)).await;
    assert_eq!(got.status, 200, "{}", got.body);
    assert_complete(route, &got.body);
    assert_eq!(streamed_text(route, &got.body), "Nobody, sorry.");
    assert_eq!(verified_text(rig), "Nobody, sorry.");
    let ws = rig.aim.streams();
    assert_eq!(ws.len(), 1);
    let last = ws[0]
        .frames
        .last()
        .map(|f| serde_json::from_str::<Value>(f).unwrap());
    assert_eq!(
        last,
        Some(json!({"done": true})),
        "the end of the stream went to Aim"
    );
}

macro_rules! cells {
    ($($name:ident: $route:ident, $hook:ident, $stream:expr;)*) => {$(
        #[tokio::test]
        async fn $name() {
            cell(Route::$route, Hook::$hook, $stream).await;
        }
    )*};
}

cells! {
    cell_chat_claude_pre_call_json: Chat, Pre, false;
    cell_chat_claude_pre_call_stream: Chat, Pre, true;
    cell_chat_claude_during_call_json: Chat, During, false;
    cell_chat_claude_during_call_stream: Chat, During, true;
    cell_chat_claude_post_call_json: Chat, Post, false;
    cell_chat_claude_post_call_stream: Chat, Post, true;
    cell_messages_claude_pre_call_json: MessagesClaude, Pre, false;
    cell_messages_claude_pre_call_stream: MessagesClaude, Pre, true;
    cell_messages_claude_during_call_json: MessagesClaude, During, false;
    cell_messages_claude_during_call_stream: MessagesClaude, During, true;
    cell_messages_claude_post_call_json: MessagesClaude, Post, false;
    cell_messages_claude_post_call_stream: MessagesClaude, Post, true;
    cell_messages_gpt_pre_call_json: MessagesGpt, Pre, false;
    cell_messages_gpt_pre_call_stream: MessagesGpt, Pre, true;
    cell_messages_gpt_during_call_json: MessagesGpt, During, false;
    cell_messages_gpt_during_call_stream: MessagesGpt, During, true;
    cell_messages_gpt_post_call_json: MessagesGpt, Post, false;
    cell_messages_gpt_post_call_stream: MessagesGpt, Post, true;
}

// ---- what a guardrail reads on /v1/messages ----

/// A tool the conversations below call, so that Anthropic takes them.
fn tools() -> Value {
    json!([{"name": "lookup", "description": "Look a name up", "input_schema": {"type": "object"}}])
}

/// A conversation where the assistant called `lookup` and the user sends
/// back `result` (the content of a tool_result block) and `after` blocks.
fn tool_turns(input: Value, result: Value, after: Value) -> Value {
    let mut user =
        vec![json!({"type": "tool_result", "tool_use_id": "toolu_1", "content": result})];
    user.extend(after.as_array().cloned().unwrap_or_default());
    json!([
        {"role": "user", "content": "who is it?"},
        {"role": "assistant", "content": [
            {"type": "text", "text": "Let me look."},
            {"type": "tool_use", "id": "toolu_1", "name": "lookup", "input": input}
        ]},
        {"role": "user", "content": user}
    ])
}

/// A Messages body with these top-level fields, to `model`, through `pre`.
fn with_fields(model: &str, fields: Value) -> Value {
    let mut body = json!({"model": model, "max_tokens": 100, "guardrails": ["pre"]});
    body.as_object_mut()
        .unwrap()
        .extend(fields.as_object().unwrap().clone());
    if body.get("messages").is_none() {
        body["messages"] = json!([{"role": "user", "content": "hi"}]);
    }
    body
}

/// `place(text)` puts `text` in one position of a Messages body (its
/// top-level fields). With an address there the pre_call check blocks the
/// request before either kind of deployment; with a clean word Aim reads
/// the word and the request goes on (so the body is one the gateway and
/// the upstream take, and the block is the address's doing).
async fn reads(place: impl Fn(&str) -> Value) {
    let rig = Rig::new().await;
    rig.reply(Some("ok"));
    for route in [Route::MessagesClaude, Route::MessagesGpt] {
        rig.reset();
        let body = with_fields(route.model(), place(&format!("write to {EMAIL} today")));
        let got = messages(&rig.gw, &body).await;
        assert_eq!(
            (got.status, got.body.as_str()),
            (400, MESSAGES_BLOCK),
            "{route:?}: {body}"
        );
        assert!(
            rig.upstream(route).is_empty(),
            "{route:?}: nothing goes upstream"
        );
        let calls = rig.aim.requests();
        assert_eq!(calls.len(), 1, "{route:?}");
        assert!(
            String::from_utf8_lossy(&calls[0].body).contains(EMAIL),
            "{route:?}: Aim read the address: {}",
            String::from_utf8_lossy(&calls[0].body)
        );

        rig.reset();
        let body = with_fields(route.model(), place("write to zqclean today"));
        let got = messages(&rig.gw, &body).await;
        assert_eq!(got.status, 200, "{route:?}: {}: {body}", got.body);
        let seen = String::from_utf8_lossy(&rig.aim.requests()[0].body).into_owned();
        assert!(seen.contains("zqclean"), "{route:?}: {seen}");
        let sent = &rig.upstream(route)[0];
        assert!(
            String::from_utf8_lossy(&sent.body).contains("zqclean"),
            "{route:?}: the upstream got it: {}",
            String::from_utf8_lossy(&sent.body)
        );
        let sent = sent.json();
        let guardrails = sent.get("guardrails");
        assert!(
            guardrails.is_none(),
            "{route:?}: the gateway's own field stays home"
        );
    }
}

macro_rules! reads {
    ($($name:ident: |$t:ident| $fields:expr;)*) => {$(
        #[tokio::test]
        async fn $name() {
            reads(|$t: &str| $fields).await;
        }
    )*};
}

reads! {
    reads_the_system_string: |t| json!({"system": t});
    reads_the_system_blocks: |t| json!({"system": [
        {"type": "text", "text": "Be terse."},
        {"type": "text", "text": t, "cache_control": {"type": "ephemeral"}}
    ]});
    reads_a_string_content: |t| json!({"messages": [{"role": "user", "content": t}]});
    reads_a_text_block: |t| json!({"messages": [{"role": "user", "content": [
        {"type": "text", "text": "first"},
        {"type": "text", "text": t}
    ]}]});
    reads_an_assistant_text_block: |t| json!({"messages": [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": [{"type": "text", "text": t}]},
        {"role": "user", "content": "go on"}
    ]});
    reads_an_assistant_prefill: |t| json!({"messages": [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": t}
    ]});
    reads_a_tool_use_input_value: |t| json!({"tools": tools(), "messages":
        tool_turns(json!({"query": {"names": [t]}}), json!("found"), json!([]))});
    reads_a_tool_use_input_key: |t| json!({"tools": tools(), "messages":
        tool_turns(json!({t: 1}), json!("found"), json!([]))});
    reads_a_tool_result_string: |t| json!({"tools": tools(), "messages":
        tool_turns(json!({}), json!(t), json!([]))});
    reads_tool_result_blocks: |t| json!({"tools": tools(), "messages":
        tool_turns(json!({}), json!([{"type": "text", "text": "found"}, {"type": "text", "text": t}]), json!([]))});
    reads_a_text_block_after_a_tool_result: |t| json!({"tools": tools(), "messages":
        tool_turns(json!({}), json!("found"), json!([{"type": "text", "text": t}]))});
    reads_a_text_document: |t| json!({"messages": [{"role": "user", "content": [
        {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": t}},
        {"type": "text", "text": "summarise"}
    ]}]});
    reads_a_document_title_and_context: |t| json!({"messages": [{"role": "user", "content": [
        {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "body"}, "title": t, "context": t},
        {"type": "text", "text": "summarise"}
    ]}]});
    reads_a_content_document: |t| json!({"messages": [{"role": "user", "content": [
        {"type": "document", "source": {"type": "content", "content": [{"type": "text", "text": t}]}},
        {"type": "text", "text": "summarise"}
    ]}]});
    reads_a_document_in_a_tool_result: |t| json!({"tools": tools(), "messages": tool_turns(json!({}), json!([
        {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": t}}
    ]), json!([]))});
    reads_thinking: |t| json!({"messages": [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": [
            {"type": "thinking", "thinking": t, "signature": "sig"},
            {"type": "text", "text": "Hello."}
        ]},
        {"role": "user", "content": "go on"}
    ]});
}

/// Text written with `\u` escapes is read as the model reads it: decoded.
#[tokio::test]
async fn reads_escaped_text_decoded() {
    let rig = Rig::new().await;
    let escaped: String = EMAIL
        .chars()
        .map(|c| format!("\\u{:04x}", c as u32))
        .collect();
    let places = [
        format!(r#""system":"mail {escaped}","messages":[{{"role":"user","content":"hi"}}]"#),
        format!(
            r#""messages":[{{"role":"user","content":[{{"type":"text","text":"mail {escaped}"}}]}}]"#
        ),
        format!(
            r#""tools":[{{"name":"lookup","input_schema":{{"type":"object"}}}}],"messages":[{{"role":"user","content":"hi"}},{{"role":"assistant","content":[{{"type":"tool_use","id":"toolu_1","name":"lookup","input":{{"{escaped}":"x"}}}}]}},{{"role":"user","content":[{{"type":"tool_result","tool_use_id":"toolu_1","content":"ok"}}]}}]"#
        ),
    ];
    for route in [Route::MessagesClaude, Route::MessagesGpt] {
        for place in &places {
            rig.reset();
            let body = format!(
                r#"{{"model":"{}","max_tokens":10,"guardrails":["pre"],{place}}}"#,
                route.model()
            );
            let got = post_raw(&rig.gw, "/v1/messages", body.clone()).await;
            assert_eq!(
                (got.status, got.body.as_str()),
                (400, MESSAGES_BLOCK),
                "{body}"
            );
            assert!(rig.upstream(route).is_empty());
            let aim = rig.aim.requests()[0].json();
            assert!(aim.to_string().contains(EMAIL), "{aim}");
        }
    }
}

// ---- what no guardrail can read ----

/// A block no guardrail reads is refused with Anthropic's 400 whenever a
/// guardrail is selected, before Aim and before any upstream; without a
/// guardrail it goes on (the refusal is the guardrail's, not the parser's).
async fn refused(fields: Value, path: &str) {
    let rig = Rig::new().await;
    for route in [Route::MessagesClaude, Route::MessagesGpt] {
        for guardrail in ["pre", "during", "post"] {
            rig.reset();
            let mut body = with_fields(route.model(), fields.clone());
            body["guardrails"] = json!([guardrail]);
            let got = messages(&rig.gw, &body).await;
            assert_eq!(got.status, 400, "{route:?} {guardrail}: {}", got.body);
            let v: Value = serde_json::from_str(&got.body).unwrap();
            assert_eq!(v["type"], "error");
            assert_eq!(v["error"]["type"], "invalid_request_error");
            let message = v["error"]["message"].as_str().unwrap();
            assert!(message.starts_with(path), "{message}");
            assert!(message.contains("no guardrail can read it"), "{message}");
            assert!(rig.upstream(route).is_empty(), "{route:?} {guardrail}");
            assert!(rig.aim.requests().is_empty() && rig.aim.streams().is_empty());
        }
    }
    rig.reset();
    let mut body = with_fields("claude", fields);
    body.as_object_mut().unwrap().remove("guardrails");
    messages(&rig.gw, &body).await;
    assert_eq!(rig.anthropic.requests().len(), 1, "unguarded, it goes on");
}

#[tokio::test]
async fn refuses_a_search_result() {
    refused(
        json!({"messages": [{"role": "user", "content": [
            {"type": "search_result", "source": "https://example.com", "title": "t",
             "content": [{"type": "text", "text": "secret"}]},
            {"type": "text", "text": "what does it say?"}
        ]}]}),
        "messages.0.content.0: a block of type 'search_result'",
    )
    .await;
}

#[tokio::test]
async fn refuses_a_search_result_in_a_tool_result() {
    refused(
        json!({"tools": tools(), "messages": tool_turns(json!({}), json!([
            {"type": "search_result", "source": "s", "title": "t", "content": [{"type": "text", "text": "secret"}]}
        ]), json!([]))}),
        "messages.2.content.0.content.0: a block of type 'search_result'",
    )
    .await;
}

#[tokio::test]
async fn refuses_an_unknown_block() {
    refused(
        json!({"messages": [{"role": "user", "content": [
            {"type": "brand_new_block", "payload": "secret"},
            {"type": "text", "text": "see above"}
        ]}]}),
        "messages.0.content.0: a block of type 'brand_new_block'",
    )
    .await;
}

#[tokio::test]
async fn refuses_a_server_tool_result() {
    refused(
        json!({"messages": [
            {"role": "user", "content": "search"},
            {"role": "assistant", "content": [
                {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {"query": "q"}},
                {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_1",
                 "content": [{"type": "web_search_result", "url": "https://e.com", "title": "t", "encrypted_content": "x"}]}
            ]},
            {"role": "user", "content": "and?"}
        ]}),
        "messages.1.content.0: a block of type 'server_tool_use'",
    )
    .await;
}

#[tokio::test]
async fn refuses_a_text_block_with_citations() {
    refused(
        json!({"messages": [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": [{"type": "text", "text": "says so", "citations": [
                {"type": "char_location", "cited_text": "secret", "document_index": 0, "start_char_index": 0, "end_char_index": 6}
            ]}]},
            {"role": "user", "content": "sure?"}
        ]}),
        "messages.1.content.0: a text block with citations",
    )
    .await;
}

/// An image carries no text: it passes with a guardrail, unless the
/// guardrail sets `block_uninspectable`, which refuses it before anything
/// is sent. The same for a PDF document, in a tool result too.
#[tokio::test]
async fn images_pass_unless_block_uninspectable() {
    let image = json!({"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}});
    let pdf = json!({"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0="}});
    let cases = [
        (
            json!({"messages": [{"role": "user", "content": [image.clone(), {"type": "text", "text": "what is it?"}]}]}),
            "messages.0.content.0 is a block of type 'image'",
        ),
        (
            json!({"messages": [{"role": "user", "content": [{"type": "text", "text": "read"}, pdf]}]}),
            "messages.0.content.1 is a block of type 'document'",
        ),
        (
            json!({"tools": tools(), "messages": tool_turns(json!({}), json!([image]), json!([]))}),
            "messages.2.content.0.content.0 is a block of type 'image'",
        ),
    ];
    let rig = Rig::new().await;
    rig.reply(Some("a picture"));
    for (fields, refusal) in cases {
        for route in [Route::MessagesClaude, Route::MessagesGpt] {
            rig.reset();
            let body = with_fields(route.model(), fields.clone());
            let got = messages(&rig.gw, &body).await;
            assert_eq!(got.status, 200, "{route:?}: {}", got.body);
            assert_eq!(rig.upstream(route).len(), 1);
            assert_eq!(rig.aim.requests().len(), 1, "the text was read");

            rig.reset();
            let mut body = body;
            body["guardrails"] = json!(["strict"]);
            let got = messages(&rig.gw, &body).await;
            assert_eq!(got.status, 400, "{route:?}: {}", got.body);
            let v: Value = serde_json::from_str(&got.body).unwrap();
            assert_eq!(v["error"]["type"], "invalid_request_error");
            let message = v["error"]["message"].as_str().unwrap();
            assert!(
                message.starts_with(refusal) && message.contains("'strict'"),
                "{message}"
            );
            assert!(rig.upstream(route).is_empty());
            assert!(rig.aim.requests().is_empty());
        }
    }
}

// ---- anonymize ----

fn anonymize(rig: &Rig) {
    rig.aim.set_options(AimOptions {
        mode: AimMode::Anonymize,
        ..Default::default()
    });
}

/// The body a client sent, as an Anthropic deployment should receive it:
/// the upstream model, without the gateway's own field.
fn as_forwarded(mut body: Value) -> Value {
    body["model"] = json!("claude-sonnet-4-5-20250929");
    body.as_object_mut().unwrap().remove("guardrails");
    body
}

/// An anonymize of the system string and of string contents rewrites
/// exactly those in what the Anthropic deployment receives; every other
/// byte is the client's.
#[tokio::test]
async fn anonymize_rewrites_the_system_string_and_string_contents() {
    let rig = Rig::new().await;
    anonymize(&rig);
    rig.reply(Some("done"));
    let body = json!({
        "model": "claude",
        "max_tokens": 100,
        "guardrails": ["pre"],
        "system": format!("Reply to {EMAIL} only."),
        "messages": [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": "hello"},
            {"role": "user", "content": "cc a.b@example.com please"}
        ],
        "temperature": 0.5
    });
    let got = messages(&rig.gw, &body).await;
    assert_eq!(got.status, 200, "{}", got.body);
    assert_eq!(answer_text(Route::MessagesClaude, &got.body), "done");
    let sent = rig.anthropic.requests();
    assert_eq!(sent.len(), 1);
    let mut expected = as_forwarded(body);
    expected["system"] = json!("Reply to [EMAIL_1] only.");
    expected["messages"][2]["content"] = json!("cc [EMAIL_2] please");
    assert_eq!(sent[0].json(), expected);
    let raw = String::from_utf8_lossy(&sent[0].body);
    assert!(
        !raw.contains(EMAIL) && !raw.contains("example.com"),
        "{raw}"
    );

    // One of them alone: the other is left as it was.
    for place in ["system", "content"] {
        rig.reset();
        let (system, content) = if place == "system" {
            (format!("to {EMAIL}"), "plain".to_owned())
        } else {
            ("plain".to_owned(), format!("to {EMAIL}"))
        };
        let body = json!({"model": "claude", "max_tokens": 10, "guardrails": ["pre"],
            "system": system, "messages": [{"role": "user", "content": content}]});
        let got = messages(&rig.gw, &body).await;
        assert_eq!(got.status, 200, "{place}: {}", got.body);
        let sent = rig.anthropic.requests()[0].json();
        let mut expected = as_forwarded(body);
        if place == "system" {
            expected["system"] = json!("to [EMAIL_1]");
        } else {
            expected["messages"][0]["content"] = json!("to [EMAIL_1]");
        }
        assert_eq!(sent, expected, "{place}");
    }
}

/// Text inside blocks cannot be rewritten in place: an anonymize verdict
/// on it refuses the request, and nothing goes upstream unredacted.
#[tokio::test]
async fn anonymize_of_text_in_blocks_is_refused() {
    let rig = Rig::new().await;
    anonymize(&rig);
    let leaky = format!("to {EMAIL}");
    let cases = [
        json!({"system": [{"type": "text", "text": leaky}]}),
        json!({"messages": [{"role": "user", "content": [{"type": "text", "text": leaky}]}]}),
        json!({"messages": [{"role": "user", "content": [
            {"type": "text", "text": "first"}, {"type": "text", "text": leaky}
        ]}]}),
        json!({"tools": tools(), "messages": tool_turns(json!({}), json!(leaky), json!([]))}),
        json!({"tools": tools(), "messages": tool_turns(json!({"to": leaky}), json!("ok"), json!([]))}),
        json!({"messages": [{"role": "user", "content": [
            {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": leaky}},
            {"type": "text", "text": "summarise"}
        ]}]}),
        // Text blocks of an assistant turn become one chat string, which an
        // anonymize can rewrite, but not back into the blocks.
        json!({"messages": [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": [{"type": "text", "text": leaky}]},
            {"role": "user", "content": "and?"}
        ]}),
        // A tool result alone is a chat tool message with a string content.
        json!({"tools": tools(), "messages": [{"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_1", "content": leaky}
        ]}]}),
        // The address in the system string, blocks elsewhere: the verdict
        // covers the whole conversation.
        json!({"system": leaky, "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]}),
    ];
    for fields in cases {
        for route in [Route::MessagesClaude, Route::MessagesGpt] {
            rig.reset();
            let body = with_fields(route.model(), fields.clone());
            let got = messages(&rig.gw, &body).await;
            let sent: Vec<String> = rig
                .upstream(route)
                .iter()
                .map(|r| String::from_utf8_lossy(&r.body).into_owned())
                .collect();
            assert!(
                sent.iter().all(|s| !s.contains(EMAIL)),
                "{route:?}: forwarded unredacted: {sent:?}"
            );
            if route == Route::MessagesClaude {
                assert_eq!(got.status, 400, "{route:?} {fields}: {}", got.body);
            }
            if got.status == 400 {
                let v: Value = serde_json::from_str(&got.body).unwrap();
                assert_eq!(v["type"], "error", "{}", got.body);
                assert_eq!(v["error"]["type"], "invalid_request_error");
                assert!(!got.body.contains(EMAIL), "{}", got.body);
                assert!(sent.is_empty(), "{route:?}: refused, yet sent {sent:?}");
            } else {
                // An OpenAI deployment gets the rewritten chat itself.
                assert_eq!(got.status, 200, "{route:?} {fields}: {}", got.body);
                assert_eq!(sent.len(), 1);
                assert!(sent[0].contains("[EMAIL_1]"), "{sent:?}");
            }
        }
    }
}

/// Over chat to an Anthropic deployment, the rewritten chat is what is
/// translated: the Anthropic body carries the redacted text.
#[tokio::test]
async fn anonymize_over_chat_reaches_anthropic_redacted() {
    let rig = Rig::new().await;
    anonymize(&rig);
    rig.reply(Some("done"));
    let body = json!({
        "model": "claude",
        "guardrails": ["pre"],
        "messages": [
            {"role": "system", "content": format!("Reply to {EMAIL}.")},
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": "hello"},
            {"role": "user", "content": "cc a.b@example.com"}
        ]
    });
    let got = post(&rig.gw, "/v1/chat/completions", &body).await;
    assert_eq!(got.status, 200, "{}", got.body);
    let sent = rig.anthropic.requests()[0].json();
    assert_eq!(
        sent["system"],
        json!([{"type": "text", "text": "Reply to [EMAIL_1]."}])
    );
    assert_eq!(
        sent["messages"],
        json!([
            {"role": "user", "content": [{"type": "text", "text": "hi"}]},
            {"role": "assistant", "content": [{"type": "text", "text": "hello"}]},
            {"role": "user", "content": [{"type": "text", "text": "cc [EMAIL_2]"}]}
        ])
    );
    let raw = String::from_utf8_lossy(&rig.anthropic.requests()[0].body).into_owned();
    assert!(
        !raw.contains(EMAIL) && !raw.contains("example.com"),
        "{raw}"
    );
}

/// An anonymizing post_call check on `/v1/messages` returns the redacted
/// answer, JSON or stream; the address never reaches the client.
#[tokio::test]
async fn anonymize_rewrites_answers_on_messages() {
    let rig = Rig::new().await;
    anonymize(&rig);
    for route in [Route::MessagesClaude, Route::MessagesGpt] {
        for stream in [false, true] {
            rig.reset();
            rig.reply(Some(LEAKY_REPLY));
            let got = post(&rig.gw, route.path(), &route.body("who?", "post", stream)).await;
            assert_eq!(got.status, 200, "{route:?} {stream}: {}", got.body);
            assert!(
                !got.body.contains(EMAIL),
                "{route:?} {stream}: {}",
                got.body
            );
            let text = if stream {
                assert_complete(route, &got.body);
                streamed_text(route, &got.body)
            } else {
                answer_text(route, &got.body)
            };
            assert_eq!(text, "Please contact [EMAIL_1]", "{route:?} {stream}");
        }
    }
}

// ---- what Aim is told about the caller ----

/// Aim hears the same about a caller on `/v1/messages` as on chat: the
/// client's `x-aim-user-email`, the key's alias (never the key), the call
/// id, on every call (input, output, the stream's websocket). A Claude
/// client's `x-api-key` authenticates it and goes no further.
#[tokio::test]
async fn aim_hears_the_caller_on_messages_as_on_chat() {
    let keys = "general_settings:\n  master_key: sk-master\nvirtual_keys:\n  - key: sk-alice-secret\n    key_alias: alice-app\n";
    let rig = Rig::with(
        AnthropicOptions::default(),
        UpstreamOptions::default(),
        keys,
    )
    .await;
    for route in [Route::Chat, Route::MessagesClaude, Route::MessagesGpt] {
        for stream in [false, true] {
            rig.reset();
            let mut body = route.body("hello", "pre", stream);
            body["guardrails"] = json!(["pre", "post"]);
            let auth = match route {
                Route::Chat => ("authorization", "Bearer sk-alice-secret"),
                _ => ("x-api-key", "sk-alice-secret"),
            };
            let resp = client()
                .post(format!("{}{}", rig.gw.url(), route.path()))
                .header(auth.0, auth.1)
                .header("x-aim-user-email", "u@example.com")
                .header("x-litellm-call-id", "call-xyz")
                .json(&body)
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 200, "{route:?} {stream}");
            assert_eq!(header(&resp, "x-litellm-call-id"), Some("call-xyz"));
            assert_eq!(
                header(&resp, "x-litellm-applied-guardrails"),
                Some("pre,post"),
                "{route:?} {stream}"
            );
            let text = resp.text().await.unwrap();
            let calls = rig.aim.requests();
            let ws = rig.aim.streams();
            let mut heard: Vec<(&str, &[(String, String)])> = calls
                .iter()
                .map(|c| {
                    (
                        c.header("x-aim-litellm-hook").unwrap(),
                        c.headers.as_slice(),
                    )
                })
                .collect();
            heard.extend(
                ws.iter()
                    .map(|s| ("output (websocket)", s.headers.as_slice())),
            );
            let hooks: Vec<&str> = heard.iter().map(|(h, _)| *h).collect();
            let expected = if stream {
                ["pre_call", "output (websocket)"]
            } else {
                ["pre_call", "output"]
            };
            assert_eq!(hooks, expected, "{route:?} {stream}: {text}");
            for (hook, headers) in heard {
                let get = |name: &str| {
                    headers
                        .iter()
                        .find(|(k, _)| k == name)
                        .map(|(_, v)| v.as_str())
                };
                let what = format!("{route:?} {stream} {hook}");
                assert_eq!(get("x-aim-user-email"), Some("u@example.com"), "{what}");
                assert_eq!(get("x-aim-gateway-key-alias"), Some("alice-app"), "{what}");
                assert_eq!(get("x-aim-call-id"), Some("call-xyz"), "{what}");
                assert_eq!(get("authorization"), Some("Bearer aim-mock-key"), "{what}");
                assert_eq!(get("x-aim-litellm-version"), Some("1.108.7"), "{what}");
                for (k, v) in headers {
                    assert!(!v.contains("sk-alice"), "{what}: {k} leaks the key");
                }
            }
            for c in &calls {
                assert!(!String::from_utf8_lossy(&c.body).contains("sk-alice"));
            }
            let sent = &rig.upstream(route)[0];
            for (k, v) in &sent.headers {
                assert!(!v.contains("sk-alice"), "{route:?}: {k} sent upstream");
            }
            if route != Route::MessagesGpt {
                assert_eq!(sent.header("x-api-key"), Some("sk-ant-upstream-secret"));
            }
        }
    }
}

// ---- what post_call reads in an Anthropic answer ----

/// An Anthropic answer (JSON) with `content` blocks, as the mock sends it.
fn anthropic_message(content: Value) -> String {
    json!({
        "id": "msg_1", "type": "message", "role": "assistant",
        "model": "claude-sonnet-4-5-20250929", "content": content,
        "stop_reason": "end_turn", "stop_sequence": null,
        "usage": {"input_tokens": 5, "output_tokens": 7}
    })
    .to_string()
}

/// The answer's text, its tool_use input and its thinking are all checked
/// by post_call, over chat and over `/v1/messages`: an address in any of
/// them blocks the answer.
#[tokio::test]
async fn post_call_reads_text_tool_input_and_thinking_of_an_answer() {
    let leaky = format!("write to {EMAIL}");
    let answers = [
        json!([{"type": "text", "text": "Sure."}, {"type": "text", "text": leaky}]),
        json!([{"type": "text", "text": "Calling."},
               {"type": "tool_use", "id": "toolu_1", "name": "send", "input": {"to": [leaky]}}]),
        json!([{"type": "thinking", "thinking": leaky, "signature": "s"},
               {"type": "text", "text": "Done."}]),
    ];
    let rig = Rig::new().await;
    for content in answers {
        for route in [Route::Chat, Route::MessagesClaude] {
            rig.reset();
            rig.anthropic.set_options(AnthropicOptions {
                message: Some(anthropic_message(content.clone())),
                ..Default::default()
            });
            let got = post(&rig.gw, route.path(), &route.body("go", "post", false)).await;
            assert_eq!(
                (got.status, got.body.as_str()),
                (400, route.block()),
                "{route:?}: {content}"
            );
            let calls = rig.aim.requests();
            assert_eq!(calls.len(), 1);
            assert!(String::from_utf8_lossy(&calls[0].body).contains(EMAIL));
        }
    }
}

/// The same for streams: an address in a streamed tool_use input (split
/// over `input_json_delta` events) or in streamed thinking ends the stream
/// with the route's block, and never reaches the client.
#[tokio::test]
async fn post_call_reads_streamed_tool_input_and_thinking() {
    let leaky = format!("write to {EMAIL}");
    let answers = [
        AnthropicOptions {
            reply: Some("Calling.".into()),
            tool_use: Some(ToolUse {
                name: "send".into(),
                input: json!({"to": [leaky]}),
                id: None,
                json_chunks: 3,
            }),
            ..Default::default()
        },
        AnthropicOptions {
            reply: Some("Done.".into()),
            thinking: Some(leaky.clone()),
            ..Default::default()
        },
    ];
    let rig = Rig::new().await;
    for opts in answers {
        for route in [Route::Chat, Route::MessagesClaude] {
            rig.reset();
            rig.anthropic.set_options(opts.clone());
            let got = post(&rig.gw, route.path(), &route.body("go", "post", true)).await;
            assert_eq!(got.status, 200, "{route:?}: {}", got.body);
            let tail = match route {
                Route::Chat => format!("data: {CHAT_BLOCK}\n\n"),
                _ => format!("event: error\ndata: {MESSAGES_BLOCK}\n\n"),
            };
            let before = got.body.strip_suffix(&tail);
            assert!(
                before.is_some_and(|b| !b.contains("berri")),
                "{route:?} {opts:?}: {}",
                got.body
            );
        }
    }
}

/// `content` as an Anthropic deployment's JSON answer, through a post_call
/// guardrail over `route`: what the client got.
async fn checked_answer(rig: &Rig, route: Route, content: &Value) -> Answer {
    rig.reset();
    rig.anthropic.set_options(AnthropicOptions {
        message: Some(anthropic_message(content.clone())),
        ..Default::default()
    });
    post(&rig.gw, route.path(), &route.body("go", "post", false)).await
}

/// An answer block the check cannot read (a server tool's result, a block
/// newer than the gateway, cited text) must not reach the client
/// unchecked. Over chat the translation leaves such blocks out; over
/// `/v1/messages` the answer goes back as Anthropic sent it.
#[tokio::test]
async fn post_call_never_returns_unread_answer_blocks() {
    let answers = [
        json!([{"type": "text", "text": "Here is what I found."},
               {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_1", "content": [
                   {"type": "web_search_result", "url": "https://e.com", "title": format!("mail {EMAIL}"),
                    "encrypted_content": "x", "page_age": null}]}]),
        json!([{"type": "text", "text": "Ok."},
               {"type": "brand_new_block", "text": format!("mail {EMAIL}")}]),
        json!([{"type": "text", "text": "It says so.", "citations": [
                   {"type": "web_search_result_location", "url": "https://e.com", "title": "t",
                    "encrypted_index": "x", "cited_text": format!("mail {EMAIL}")}]}]),
    ];
    let rig = Rig::new().await;
    for content in answers {
        for route in [Route::Chat, Route::MessagesClaude] {
            let got = checked_answer(&rig, route, &content).await;
            if route == Route::Chat && content[0].get("citations").is_some() {
                // Over chat, citations are their own (ignored) test.
                continue;
            }
            assert!(
                !got.body.contains(EMAIL),
                "{route:?} {content}: unchecked text reached the client ({}): {}",
                got.status,
                got.body
            );
        }
    }
}

/// Over chat, an Anthropic answer's citations go to the client in
/// `provider_specific_fields.citations` (as LiteLLM sends them), and their
/// `cited_text` is text the post_call check never read.
#[tokio::test]
async fn post_call_over_chat_never_returns_unread_citations() {
    let rig = Rig::new().await;
    let content = json!([{"type": "text", "text": "It says so.", "citations": [
        {"type": "web_search_result_location", "url": "https://e.com", "title": "t",
         "encrypted_index": "x", "cited_text": format!("mail {EMAIL}")}]}]);
    let got = checked_answer(&rig, Route::Chat, &content).await;
    assert!(
        !got.body.contains(EMAIL),
        "unchecked text reached the client ({}): {}",
        got.status,
        got.body
    );
}

/// Guardrails named in `metadata.guardrails` run on `/v1/messages`, and
/// the gateway's field never reaches Anthropic (metadata keeps `user_id`).
#[tokio::test]
async fn guardrails_named_in_metadata_run() {
    let rig = Rig::new().await;
    let mut body = Route::MessagesClaude.body(&format!("to {EMAIL}"), "pre", false);
    body.as_object_mut().unwrap().remove("guardrails");
    body["metadata"] = json!({"guardrails": ["pre"], "user_id": "u-1"});
    let got = messages(&rig.gw, &body).await;
    assert_eq!((got.status, got.body.as_str()), (400, MESSAGES_BLOCK));
    assert!(rig.anthropic.requests().is_empty());

    rig.reset();
    body["messages"][0]["content"] = json!("hello");
    let got = messages(&rig.gw, &body).await;
    assert_eq!(got.status, 200, "{}", got.body);
    assert_eq!(rig.aim.requests().len(), 1);
    let sent = rig.anthropic.requests()[0].json();
    assert_eq!(sent["metadata"], json!({"user_id": "u-1"}));
    assert!(sent.get("guardrails").is_none());
}

// ---- the property: a secret anywhere is read, or the request refused ----

mod property {
    //! For generated Messages bodies with a fresh marker word planted in
    //! every position a model reads (the system prompt as a string or
    //! blocks, text blocks, string contents, tool_use input keys and
    //! values, tool results as a string or blocks, documents as text or
    //! content with their title and context, thinking), sometimes written
    //! with `\u` escapes, among images, PDFs, redacted thinking and blocks
    //! no guardrail reads (cited text, search results, server tools,
    //! unknown types), and with a repeated or miscased key now and then:
    //! every marker an upstream received was in what Aim received, and a
    //! request carrying an unreadable block never reaches an upstream. Run
    //! with an Aim guardrail and with a Cato Networks one.
    //!
    //! The oracle is not the gateway's: markers are found in the raw bytes
    //! each side received, every JSON string literal decoded by this file.
    //! `PROPTEST_CASES` sets the number of cases (default 256).

    use super::*;
    use proptest::prelude::*;
    use proptest::test_runner::{Config, FileFailurePersistence, TestCaseError, TestRunner};

    #[derive(Clone, Debug)]
    struct Txt {
        before: String,
        after: String,
        escape: bool,
    }

    #[derive(Clone, Debug)]
    enum Inner {
        Text(Txt),
        Image,
        Doc(Txt),
        SearchResult(Txt),
    }

    #[derive(Clone, Debug)]
    enum UserBlock {
        Text(Txt),
        Image,
        Pdf,
        Doc {
            data: Txt,
            title: Option<Txt>,
            context: Option<Txt>,
        },
        DocContent(Vec<Txt>),
        DocContentString(Txt),
        ResultString(Txt),
        ResultBlocks(Vec<Inner>),
        ResultNone,
        /// Not readable by any guardrail: the request must be refused.
        Cited(Txt),
        SearchResult(Txt),
        Unknown(Txt),
        /// `"text"` twice in one block.
        Repeated(Txt),
    }

    #[derive(Clone, Debug)]
    enum AssistantBlock {
        Text(Txt),
        Thinking(Txt),
        Redacted,
        /// Markers as keys and values, nested.
        ToolUse(Vec<(Txt, Txt)>),
        /// Not readable: refused.
        ServerToolUse(Txt),
    }

    #[derive(Clone, Debug)]
    enum Msg {
        UserString(Txt),
        User(Vec<UserBlock>),
        AssistantString(Txt),
        Assistant(Vec<AssistantBlock>),
    }

    #[derive(Clone, Debug)]
    enum Sys {
        None,
        Text(Txt),
        Blocks(Vec<Txt>),
        /// `"system"` twice.
        Repeated(Txt),
        /// `"System"`: another spelling of a known key.
        Miscased(Txt),
    }

    #[derive(Clone, Debug)]
    struct Case {
        system: Sys,
        /// Turns after the first user turn: (assistant, user).
        first: Msg,
        turns: Vec<(Msg, Msg)>,
        /// Claude or GPT.
        claude: bool,
        /// Which guardrail selection (see [`Harness`]).
        selection: usize,
        stream: bool,
    }

    fn txt() -> impl Strategy<Value = Txt> {
        let piece = prop_oneof![
            Just("a b"),
            Just("\\n"),
            Just("\\\""),
            Just("\\\\"),
            Just("\\/"),
            Just("\\u00e9"),
            Just("\\ud83d\\ude00"),
            Just("é"),
            Just("{\\\"k\\\":1}"),
        ];
        let text = prop::collection::vec(piece, 0..3).prop_map(|v| v.concat());
        (text.clone(), text, prop::bool::weighted(0.3)).prop_map(|(before, after, escape)| Txt {
            before,
            after,
            escape,
        })
    }

    fn inner() -> impl Strategy<Value = Inner> {
        prop_oneof![
            4 => txt().prop_map(Inner::Text),
            1 => Just(Inner::Image),
            2 => txt().prop_map(Inner::Doc),
            1 => txt().prop_map(Inner::SearchResult),
        ]
    }

    fn user_block() -> impl Strategy<Value = UserBlock> {
        prop_oneof![
            6 => txt().prop_map(UserBlock::Text),
            1 => Just(UserBlock::Image),
            1 => Just(UserBlock::Pdf),
            2 => (txt(), prop::option::of(txt()), prop::option::of(txt()))
                .prop_map(|(data, title, context)| UserBlock::Doc { data, title, context }),
            1 => prop::collection::vec(txt(), 1..3).prop_map(UserBlock::DocContent),
            1 => txt().prop_map(UserBlock::DocContentString),
            3 => txt().prop_map(UserBlock::ResultString),
            3 => prop::collection::vec(inner(), 1..4).prop_map(UserBlock::ResultBlocks),
            1 => Just(UserBlock::ResultNone),
            1 => txt().prop_map(UserBlock::Cited),
            1 => txt().prop_map(UserBlock::SearchResult),
            1 => txt().prop_map(UserBlock::Unknown),
            1 => txt().prop_map(UserBlock::Repeated),
        ]
    }

    fn assistant_block() -> impl Strategy<Value = AssistantBlock> {
        prop_oneof![
            4 => txt().prop_map(AssistantBlock::Text),
            2 => txt().prop_map(AssistantBlock::Thinking),
            1 => Just(AssistantBlock::Redacted),
            4 => prop::collection::vec((txt(), txt()), 1..3).prop_map(AssistantBlock::ToolUse),
            1 => txt().prop_map(AssistantBlock::ServerToolUse),
        ]
    }

    fn user() -> impl Strategy<Value = Msg> {
        prop_oneof![
            1 => txt().prop_map(Msg::UserString),
            3 => prop::collection::vec(user_block(), 1..4).prop_map(Msg::User),
        ]
    }

    fn assistant() -> impl Strategy<Value = Msg> {
        prop_oneof![
            1 => txt().prop_map(Msg::AssistantString),
            3 => prop::collection::vec(assistant_block(), 1..4).prop_map(Msg::Assistant),
        ]
    }

    fn case() -> impl Strategy<Value = Case> {
        let system = prop_oneof![
            2 => Just(Sys::None),
            3 => txt().prop_map(Sys::Text),
            3 => prop::collection::vec(txt(), 1..3).prop_map(Sys::Blocks),
            1 => txt().prop_map(Sys::Repeated),
            1 => txt().prop_map(Sys::Miscased),
        ];
        (
            system,
            user(),
            prop::collection::vec((assistant(), user()), 0..3),
            any::<bool>(),
            0..3usize,
            prop::bool::weighted(0.25),
        )
            .prop_map(|(system, first, turns, claude, selection, stream)| Case {
                system,
                first,
                turns,
                claude,
                selection,
                stream,
            })
    }

    // ---- writing a body ----

    #[derive(Default)]
    struct Writer {
        out: String,
        markers: Vec<String>,
        /// The body carries a block no guardrail can read.
        unreadable: bool,
    }

    impl Writer {
        fn push(&mut self, s: &str) {
            self.out.push_str(s);
        }

        /// A JSON string with a fresh marker in it.
        fn txt(&mut self, t: &Txt) {
            let marker = format!("zq{}x", self.markers.len());
            let written: String = if t.escape {
                marker
                    .chars()
                    .map(|c| format!("\\u{:04x}", c as u32))
                    .collect()
            } else {
                marker.clone()
            };
            self.out.push('"');
            self.out.push_str(&t.before);
            self.out.push(' ');
            self.out.push_str(&written);
            self.out.push(' ');
            self.out.push_str(&t.after);
            self.out.push('"');
            self.markers.push(marker);
        }

        fn list<T>(&mut self, items: &[T], mut f: impl FnMut(&mut Self, &T)) {
            self.push("[");
            for (i, it) in items.iter().enumerate() {
                if i > 0 {
                    self.push(",");
                }
                f(self, it);
            }
            self.push("]");
        }

        fn text_block(&mut self, t: &Txt) {
            self.push(r#"{"type":"text","text":"#);
            self.txt(t);
            self.push("}");
        }

        fn image(&mut self) {
            self.push(r#"{"type":"image","source":{"type":"base64","media_type":"image/png","data":"iVBORw0KGgo="}}"#);
        }

        fn text_doc(&mut self, t: &Txt) {
            self.push(
                r#"{"type":"document","source":{"type":"text","media_type":"text/plain","data":"#,
            );
            self.txt(t);
            self.push("}}");
        }

        fn search_result(&mut self, t: &Txt) {
            self.unreadable = true;
            self.push(r#"{"type":"search_result","source":"s","title":"t","content":[{"type":"text","text":"#);
            self.txt(t);
            self.push("}]}");
        }

        fn inner(&mut self, b: &Inner) {
            match b {
                Inner::Text(t) => self.text_block(t),
                Inner::Image => self.image(),
                Inner::Doc(t) => self.text_doc(t),
                Inner::SearchResult(t) => self.search_result(t),
            }
        }

        /// A user turn: its tool results first (answering `ids`, the tool
        /// calls of the assistant turn before), then its other blocks.
        fn user(&mut self, m: &Msg, ids: &[String]) {
            let blocks = match m {
                Msg::UserString(t) | Msg::AssistantString(t) => {
                    self.push(r#"{"role":"user","content":"#);
                    self.txt(t);
                    self.push("}");
                    return;
                }
                Msg::User(b) => b,
                Msg::Assistant(_) => unreachable!(),
            };
            let is_result = |b: &&UserBlock| {
                matches!(
                    b,
                    UserBlock::ResultString(_) | UserBlock::ResultBlocks(_) | UserBlock::ResultNone
                )
            };
            // Tool results answer the calls before; the first turn has none.
            let results: Vec<&UserBlock> =
                blocks.iter().filter(is_result).take(ids.len()).collect();
            let others: Vec<&UserBlock> = blocks.iter().filter(|b| !is_result(b)).collect();
            self.push(r#"{"role":"user","content":["#);
            let mut first = true;
            for (b, id) in results.iter().zip(ids) {
                if !std::mem::take(&mut first) {
                    self.push(",");
                }
                self.push(&format!(r#"{{"type":"tool_result","tool_use_id":"{id}""#));
                match b {
                    UserBlock::ResultString(t) => {
                        self.push(r#","content":"#);
                        self.txt(t);
                    }
                    UserBlock::ResultBlocks(bs) => {
                        self.push(r#","content":"#);
                        self.list(bs, |w, b| w.inner(b));
                    }
                    _ => {}
                }
                self.push("}");
            }
            if results.is_empty() && others.is_empty() {
                self.push(r#"{"type":"text","text":"go on"}"#);
            }
            for b in others {
                if !std::mem::take(&mut first) {
                    self.push(",");
                }
                match b {
                    UserBlock::Text(t) => self.text_block(t),
                    UserBlock::Image => self.image(),
                    UserBlock::Pdf => self.push(r#"{"type":"document","source":{"type":"base64","media_type":"application/pdf","data":"JVBERi0="}}"#),
                    UserBlock::Doc {
                        data,
                        title,
                        context,
                    } => {
                        self.push(r#"{"type":"document","source":{"type":"text","media_type":"text/plain","data":"#);
                        self.txt(data);
                        self.push("}");
                        for (key, t) in [("title", title), ("context", context)] {
                            if let Some(t) = t {
                                self.push(&format!(r#","{key}":"#));
                                self.txt(t);
                            }
                        }
                        self.push("}");
                    }
                    UserBlock::DocContent(ts) => {
                        self.push(r#"{"type":"document","source":{"type":"content","content":"#);
                        self.list(ts, |w, t| w.text_block(t));
                        self.push("}}");
                    }
                    UserBlock::DocContentString(t) => {
                        self.push(r#"{"type":"document","source":{"type":"content","content":"#);
                        self.txt(t);
                        self.push("}}");
                    }
                    UserBlock::Cited(t) => {
                        self.unreadable = true;
                        self.push(r#"{"type":"text","text":"#);
                        self.txt(t);
                        self.push(r#","citations":[{"type":"char_location","cited_text":"c","document_index":0,"start_char_index":0,"end_char_index":1}]}"#);
                    }
                    UserBlock::SearchResult(t) => self.search_result(t),
                    UserBlock::Unknown(t) => {
                        self.unreadable = true;
                        self.push(r#"{"type":"brand_new","text":"#);
                        self.txt(t);
                        self.push("}");
                    }
                    UserBlock::Repeated(t) => {
                        self.push(r#"{"type":"text","text":"clean","text":"#);
                        self.txt(t);
                        self.push("}");
                    }
                    UserBlock::ResultString(_) | UserBlock::ResultBlocks(_) | UserBlock::ResultNone => {
                        unreachable!()
                    }
                }
            }
            self.push("]}");
        }

        /// An assistant turn, with at least `calls` tool calls (the tool
        /// results of the next turn answer them); their ids.
        fn assistant(&mut self, m: &Msg, turn: usize, calls: usize) -> Vec<String> {
            let blocks = match m {
                Msg::AssistantString(t) | Msg::UserString(t) if calls == 0 => {
                    self.push(r#"{"role":"assistant","content":"#);
                    self.txt(t);
                    self.push("}");
                    return vec![];
                }
                Msg::Assistant(b) => b.clone(),
                Msg::AssistantString(t) | Msg::UserString(t) => {
                    vec![AssistantBlock::Text(t.clone())]
                }
                Msg::User(_) => unreachable!(),
            };
            let mut ids = vec![];
            self.push(r#"{"role":"assistant","content":["#);
            let mut first = true;
            for b in &blocks {
                if !std::mem::take(&mut first) {
                    self.push(",");
                }
                match b {
                    AssistantBlock::Text(t) => self.text_block(t),
                    AssistantBlock::Thinking(t) => {
                        self.push(r#"{"type":"thinking","signature":"sig","thinking":"#);
                        self.txt(t);
                        self.push("}");
                    }
                    AssistantBlock::Redacted => {
                        self.push(r#"{"type":"redacted_thinking","data":"enc"}"#)
                    }
                    AssistantBlock::ToolUse(pairs) => {
                        let id = format!("toolu_{turn}_{}", ids.len());
                        self.push(&format!(
                            r#"{{"type":"tool_use","id":"{id}","name":"lookup","input":{{"q":[{{"#
                        ));
                        for (i, (k, v)) in pairs.iter().enumerate() {
                            if i > 0 {
                                self.push(",");
                            }
                            self.txt(k);
                            self.push(":");
                            self.txt(v);
                        }
                        self.push("}]}}");
                        ids.push(id);
                    }
                    AssistantBlock::ServerToolUse(t) => {
                        self.unreadable = true;
                        self.push(r#"{"type":"server_tool_use","id":"srvtoolu_1","name":"web_search","input":{"query":"#);
                        self.txt(t);
                        self.push("}}");
                    }
                }
            }
            while ids.len() < calls {
                let id = format!("toolu_{turn}_{}", ids.len());
                self.push(&format!(
                    r#",{{"type":"tool_use","id":"{id}","name":"lookup","input":{{}}}}"#
                ));
                ids.push(id);
            }
            self.push("]}");
            ids
        }

        fn body(c: &Case, model: &str, select: &str) -> Writer {
            let mut w = Writer::default();
            w.push(&format!(
                r#"{{"model":"{model}","max_tokens":20,"stream":{}{select},"tools":[{{"name":"lookup","input_schema":{{"type":"object"}}}}],"#,
                c.stream
            ));
            match &c.system {
                Sys::None => {}
                Sys::Text(t) => {
                    w.push(r#""system":"#);
                    w.txt(t);
                    w.push(",");
                }
                Sys::Blocks(ts) => {
                    w.push(r#""system":"#);
                    w.list(ts, |w, t| w.text_block(t));
                    w.push(",");
                }
                Sys::Repeated(t) => {
                    w.push(r#""system":"clean","system":"#);
                    w.txt(t);
                    w.push(",");
                }
                Sys::Miscased(t) => {
                    w.push(r#""System":"#);
                    w.txt(t);
                    w.push(",");
                }
            }
            w.push(r#""messages":["#);
            w.user(&c.first, &[]);
            for (turn, (a, u)) in c.turns.iter().enumerate() {
                let results = match u {
                    Msg::User(bs) => bs
                        .iter()
                        .filter(|b| {
                            matches!(
                                b,
                                UserBlock::ResultString(_)
                                    | UserBlock::ResultBlocks(_)
                                    | UserBlock::ResultNone
                            )
                        })
                        .count(),
                    _ => 0,
                };
                w.push(",");
                let ids = w.assistant(a, turn, results);
                w.push(",");
                w.user(u, &ids);
            }
            w.push("]}");
            w
        }
    }

    // ---- the oracle ----

    // ---- the harness ----

    struct Harness {
        rt: tokio::runtime::Runtime,
        anthropic: MockAnthropic,
        up: MockUpstream,
        aim: MockAim,
        /// pre_call and during_call requested by name; a default_on
        /// pre_call (nothing requested).
        gateways: Vec<(Running, &'static str)>,
    }

    impl Harness {
        fn new(vendor: &str) -> Harness {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            let (anthropic, up, aim, gateways) = rt.block_on(async {
                let anthropic = MockAnthropic::start(AnthropicOptions {
                    reply: Some("ok".into()),
                    ..Default::default()
                })
                .await;
                let up = MockUpstream::start(UpstreamOptions {
                    reply: Some("ok".into()),
                    ..Default::default()
                })
                .await;
                let aim = MockAim::start(AimOptions {
                    mode: AimMode::Pass,
                    ..Default::default()
                })
                .await;
                let config = |mode: &str| {
                    format!(
                        "model_list:\n  - model_name: claude\n    litellm_params:\n      model: anthropic/claude-sonnet-4-5-20250929\n      api_base: {}\n      api_key: sk-ant-upstream-secret\n{}guardrails:\n  - guardrail_name: g\n    litellm_params:\n      guardrail: {vendor}\n      mode: {mode}\n      api_key: aim-mock-key\n      api_base: {}\n",
                        anthropic.url(),
                        model("gpt", &up.url()),
                        aim.url()
                    )
                };
                let requested = r#","guardrails":["g"]"#;
                let gateways = vec![
                    (gateway(&config("pre_call")).await, requested),
                    (gateway(&config("during_call")).await, requested),
                    (
                        gateway(&config("pre_call\n      default_on: true")).await,
                        "",
                    ),
                ];
                (anthropic, up, aim, gateways)
            });
            Harness {
                rt,
                anthropic,
                up,
                aim,
                gateways,
            }
        }
    }

    /// Per case: (status, reached an upstream, markers planted).
    type Stats = std::sync::Mutex<Vec<(u16, bool, usize)>>;

    fn check(h: &Harness, c: &Case, stats: &Stats) -> Result<(), TestCaseError> {
        h.anthropic.reset();
        h.up.reset();
        h.aim.reset();
        let (gw, select) = &h.gateways[c.selection];
        let model = if c.claude { "claude" } else { "gpt" };
        let w = Writer::body(c, model, select);
        let (status, answer) = h.rt.block_on(async {
            let got = post_raw(gw, "/v1/messages", w.out.clone()).await;
            (got.status, got.body)
        });
        let upstream: Vec<_> = h
            .anthropic
            .requests()
            .into_iter()
            .chain(h.up.requests())
            .collect();
        if let Ok(mut s) = stats.lock() {
            s.push((status, !upstream.is_empty(), w.markers.len()));
        }
        if w.unreadable {
            prop_assert!(
                status == 400 && upstream.is_empty() && h.aim.requests().is_empty(),
                "a block no guardrail reads went on ({status}: {answer})\nbody: {}",
                w.out
            );
        }
        if upstream.is_empty() {
            return Ok(());
        }
        let seen: String = h
            .aim
            .requests()
            .iter()
            .map(|r| json_strings(&r.body))
            .collect();
        let received: String = upstream.iter().map(|r| json_strings(&r.body)).collect();
        for m in &w.markers {
            prop_assert!(
                !received.contains(m.as_str()) || seen.contains(m.as_str()),
                "{m} reached the upstream unread by Aim ({status})\nbody: {}\nupstream got: {}\nAim got: {seen}",
                w.out,
                String::from_utf8_lossy(&upstream[0].body),
            );
        }
        Ok(())
    }

    #[test]
    fn a_secret_in_any_text_position_is_read_or_refused() {
        property("aim");
    }

    /// The same with Cato Networks' guardrail (its own payload).
    #[test]
    fn a_secret_in_any_text_position_is_read_by_cato_or_refused() {
        property("cato_networks");
    }

    fn property(vendor: &str) {
        let h = Harness::new(vendor);
        let stats = Stats::default();
        let cases = std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(256);
        let mut runner = TestRunner::new(Config {
            cases,
            failure_persistence: Some(Box::new(FileFailurePersistence::WithSource("regressions"))),
            source_file: Some(file!()),
            ..Config::default()
        });
        runner
            .run(&case(), |c| check(&h, &c, &stats))
            .unwrap_or_else(|e| panic!("{e}"));
        // A property over requests that never get anywhere checks nothing.
        let stats = stats.lock().unwrap();
        let reached = stats.iter().filter(|(_, up, _)| *up).count();
        let markers: usize = stats
            .iter()
            .filter(|(_, up, _)| *up)
            .map(|(_, _, m)| m)
            .sum();
        eprintln!(
            "{reached} of {} requests reached an upstream, with {markers} markers",
            stats.len()
        );
        assert!(reached * 3 >= stats.len(), "{reached} of {}", stats.len());
    }

    #[test]
    fn the_oracle_decodes_every_string() {
        let s = json_strings(br#"{"a\u0062":"x\u004dRK \ud83d\ude00 \" q","b":"\ud800"}"#);
        assert!(s.starts_with("ab\u{1}xMRK \u{1F600} \" q\u{1}"), "{s:?}");
        assert!(s.ends_with("b\u{1}\"\\ud800\"\u{1}"), "{s:?}");
    }
}
