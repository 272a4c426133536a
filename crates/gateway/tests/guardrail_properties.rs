//! The guardrail promise as a property, over generated requests and answers
//! sent through the real gateway to the recording mock Aim and mock upstream:
//!
//! - input: for every request, either the upstream was not called, or every
//!   marker the upstream received was in what Aim received (before the call:
//!   pre_call runs first); once with an OpenAI-compatible upstream, once with
//!   an `anthropic/` deployment (what the translation sends);
//! - output: every marker of a completion the client receives was in what Aim
//!   received, the completion sent whole or streamed (each choice's fields in
//!   one chunk, relayed through Aim's websocket);
//! - both again with Cato Networks' guardrail, which builds its own payload.
//!
//! The oracle is not the gateway's extractor: the generator plants a unique
//! marker word in every position a model reads (string content, each
//! text-bearing part whatever its type, tool call arguments, refusal, ... and
//! shapes the gateway cannot read, where the model might), junk everywhere
//! else, random Unicode around both (escapes, surrogate pairs, lone
//! surrogates, control characters), escaped keys, repeated keys and deep
//! nesting. It then looks for each marker in the raw bytes each side
//! received, decoding JSON escapes leniently itself.
//!
//! `PROPTEST_CASES` sets the number of cases (default 256 per property).
//! Failures shrink and are saved in `tests/guardrail_properties.regressions`,
//! which is replayed first on every run.

// Tests: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::fmt::Write as _;

use common::*;
use gateway::server::Running;
use gateway_mock::aim::{AimMode, AimOptions, MockAim};
use gateway_mock::anthropic::{AnthropicOptions, MockAnthropic};
use gateway_mock::upstream::{MockUpstream, UpstreamOptions};
use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence, TestCaseError, TestRunner};

// ---- the generated model ----

#[derive(Clone, Debug)]
enum Piece {
    /// Lowercase ASCII, digits, spaces.
    Plain(String),
    /// Any character, written raw (UTF-8).
    Raw(char),
    /// A BMP character as `\uXXXX`.
    Escaped(char),
    /// An astral character as an escaped surrogate pair.
    Pair(char),
    LoneHigh(u16),
    LoneLow(u16),
    /// A raw control character (invalid JSON).
    Control(u8),
    /// `\n`, `\t`, `\"`, `\\`, `\/`.
    Simple(char),
}

/// A JSON string: pieces, and a marker in the middle when it is in a
/// position the model reads.
#[derive(Clone, Debug)]
struct Text {
    before: Vec<Piece>,
    after: Vec<Piece>,
    /// Write the marker with every character escaped.
    escape_marker: bool,
}

#[derive(Clone, Debug)]
enum Junk {
    Str(Vec<Piece>),
    Num(i64),
    Null,
    /// Arrays nested this deep around a string.
    Deep(usize, Vec<Piece>),
    Obj(Vec<(String, Junk)>),
}

#[derive(Clone, Debug)]
enum Part {
    Typed(&'static str, Text),
    Refusal(Text),
    Untyped(Text),
    Bare(Text),
    /// `{"type": "text", "text": {"value": marker}}`: a shape no guardrail
    /// reads, which a model might.
    TextObject(Text),
    /// A part type nobody knows, its text in a field of its own.
    Unknown(&'static str, Text),
    Image(Junk),
    Audio,
    Null,
}

#[derive(Clone, Debug)]
enum Content {
    Str(Text),
    Null,
    Parts(Vec<Part>),
    Number,
}

#[derive(Clone, Debug)]
enum Call {
    Function(Text),
    Custom(Text),
    /// Arguments as an object (not a string).
    ArgsObject(Text),
}

#[derive(Clone, Debug)]
enum Field {
    Content(Content),
    Refusal(Text),
    ToolCalls(Vec<Call>),
    FunctionCall(Text),
    Reasoning(Text),
    Name(Vec<Piece>),
    Extra(String, Junk),
    /// A second `content` under another spelling of the key (1 escaped,
    /// 2 capitals): read by a case-insensitive decoder upstream.
    Shadow(u8, Content),
}

#[derive(Clone, Debug)]
struct Message {
    role: &'static str,
    fields: Vec<Field>,
    /// Write the keys as they are (0), with an escaped character (1), or in
    /// capitals (2: a case-insensitive decoder upstream still reads them).
    key_style: u8,
}

#[derive(Clone, Debug)]
struct Request {
    messages: Vec<Message>,
    stream: bool,
    /// Which way the guardrail is selected (see `Harness::gateways`).
    selection: usize,
    tools: Option<Junk>,
}

// ---- strategies ----
//
// Each takes `Hostile`: which kind of thing the gateway must refuse a
// request may hold (lone surrogates and raw controls; shapes no guardrail
// reads; nesting past the limit; repeated keys in other spellings). One kind
// per request, so one cannot hide another behind its refusal; most requests
// hold none and reach the upstream, so the property has something to check.

#[derive(Clone, Copy, Debug, Default)]
struct Hostile {
    unicode: bool,
    shapes: bool,
    depth: bool,
    keys: bool,
}

const CALM: Hostile = Hostile {
    unicode: false,
    shapes: false,
    depth: false,
    keys: false,
};

fn piece(h: Hostile) -> BoxedStrategy<Piece> {
    let valid = prop_oneof![
        8 => "[a-z0-9 ]{1,6}".prop_map(Piece::Plain),
        3 => any::<char>()
            .prop_filter("not a quote, backslash or control", |c| !matches!(c, '"' | '\\') && !c.is_control())
            .prop_map(Piece::Raw),
        2 => any::<char>()
            .prop_filter("BMP", |c| (*c as u32) < 0x10000)
            .prop_map(Piece::Escaped),
        2 => (0x10000u32..0x110000)
            .prop_filter_map("a char", char::from_u32)
            .prop_map(Piece::Pair),
        2 => prop::sample::select(vec!['n', 't', '"', '\\', '/']).prop_map(Piece::Simple),
    ];
    if !h.unicode {
        return valid.boxed();
    }
    prop_oneof![
        12 => valid,
        1 => (0xD800u16..0xDC00).prop_map(Piece::LoneHigh),
        1 => (0xDC00u16..0xE000).prop_map(Piece::LoneLow),
        1 => (0u8..0x20).prop_map(Piece::Control),
    ]
    .boxed()
}

fn pieces(h: Hostile) -> BoxedStrategy<Vec<Piece>> {
    prop::collection::vec(piece(h), 0..4).boxed()
}

fn text(h: Hostile) -> BoxedStrategy<Text> {
    (pieces(h), pieces(h), prop::bool::weighted(0.15))
        .prop_map(|(before, after, escape_marker)| Text {
            before,
            after,
            escape_marker,
        })
        .boxed()
}

fn junk(h: Hostile) -> BoxedStrategy<Junk> {
    let depth = if h.depth {
        prop_oneof![0usize..8, 50usize..70, 120usize..140].boxed()
    } else {
        (0usize..20).boxed()
    };
    let leaf = prop_oneof![
        pieces(h).prop_map(Junk::Str),
        any::<i64>().prop_map(Junk::Num),
        Just(Junk::Null),
        (depth, pieces(h)).prop_map(|(d, p)| Junk::Deep(d, p)),
    ];
    leaf.prop_recursive(3, 12, 3, |inner| {
        prop::collection::vec(("[a-z_]{1,8}", inner), 0..3).prop_map(Junk::Obj)
    })
    .boxed()
}

fn part(h: Hostile) -> BoxedStrategy<Part> {
    let readable = prop_oneof![
        4 => (prop::sample::select(vec!["text", "input_text", "output_text", "summary_text", "hologram"]), text(h))
            .prop_map(|(k, t)| Part::Typed(k, t)),
        1 => text(h).prop_map(Part::Refusal),
        1 => text(h).prop_map(Part::Untyped),
        1 => text(h).prop_map(Part::Bare),
        2 => junk(h).prop_map(Part::Image),
        1 => Just(Part::Audio),
    ];
    if !h.shapes {
        return readable.boxed();
    }
    prop_oneof![
        8 => readable,
        1 => text(h).prop_map(Part::TextObject),
        1 => (prop::sample::select(vec!["hologram", "input_video", "x"]), text(h)).prop_map(|(k, t)| Part::Unknown(k, t)),
        1 => Just(Part::Null),
    ]
    .boxed()
}

fn content(h: Hostile) -> BoxedStrategy<Content> {
    let readable = prop_oneof![
        4 => text(h).prop_map(Content::Str),
        1 => Just(Content::Null),
        4 => prop::collection::vec(part(h), 0..4).prop_map(Content::Parts),
    ];
    if !h.shapes {
        return readable.boxed();
    }
    prop_oneof![9 => readable, 1 => Just(Content::Number)].boxed()
}

fn call(h: Hostile) -> BoxedStrategy<Call> {
    let readable = prop_oneof![
        4 => text(h).prop_map(Call::Function),
        1 => text(h).prop_map(Call::Custom),
    ];
    if !h.shapes {
        return readable.boxed();
    }
    prop_oneof![5 => readable, 1 => text(h).prop_map(Call::ArgsObject)].boxed()
}

fn field(h: Hostile) -> BoxedStrategy<Field> {
    let fields = prop_oneof![
        2 => content(h).prop_map(Field::Content),
        1 => text(h).prop_map(Field::Refusal),
        1 => prop::collection::vec(call(h), 1..3).prop_map(Field::ToolCalls),
        1 => text(h).prop_map(Field::FunctionCall),
        1 => text(h).prop_map(Field::Reasoning),
        1 => pieces(h).prop_map(Field::Name),
        1 => ("[a-z_]{1,8}", junk(h)).prop_map(|(k, j)| Field::Extra(k, j)),
    ];
    if !h.keys {
        return fields.boxed();
    }
    prop_oneof![
        2 => fields,
        1 => (1u8..3, content(h)).prop_map(|(style, c)| Field::Shadow(style, c)),
    ]
    .boxed()
}

fn message(h: Hostile) -> BoxedStrategy<Message> {
    (
        prop::sample::select(vec![
            "system",
            "user",
            "assistant",
            "tool",
            "developer",
            "function",
            "critic",
        ]),
        content(h),
        prop::collection::vec(field(h), 0..3),
        prop::sample::select(vec![0u8, 0, 0, 0, 0, 0, 0, 0, 1, 2]),
    )
        .prop_map(move |(role, content, mut fields, key_style)| {
            fields.insert(0, Field::Content(content));
            if !h.keys {
                // One of each: a repeated key is refused (see the hostile
                // requests), which would leave nothing to check.
                let mut seen = vec![];
                fields.retain(|f| {
                    let kind = match f {
                        Field::Extra(k, _) => format!("x_{k}"),
                        other => format!("{:?}", std::mem::discriminant(other)),
                    };
                    let new = !seen.contains(&kind);
                    seen.push(kind);
                    new
                });
            }
            Message {
                role,
                fields,
                key_style,
            }
        })
        .boxed()
}

fn request_of(h: Hostile) -> BoxedStrategy<Request> {
    (
        prop::collection::vec(message(h), 1..4),
        any::<bool>(),
        0usize..4,
        prop::option::weighted(0.2, junk(h)),
    )
        .prop_map(|(messages, stream, selection, tools)| Request {
            messages,
            stream,
            selection,
            tools,
        })
        .boxed()
}

/// Calm requests, and one kind of hostility at a time.
fn hostilities() -> [Hostile; 4] {
    [
        Hostile {
            unicode: true,
            ..CALM
        },
        Hostile {
            shapes: true,
            ..CALM
        },
        Hostile {
            depth: true,
            ..CALM
        },
        Hostile { keys: true, ..CALM },
    ]
}

fn request() -> impl Strategy<Value = Request> {
    let [unicode, shapes, depth, keys] = hostilities();
    prop_oneof![
        6 => request_of(CALM),
        1 => request_of(unicode),
        1 => request_of(shapes),
        1 => request_of(depth),
        2 => request_of(keys),
    ]
}

// ---- rendering ----

/// Renders JSON text, numbering the markers it plants.
#[derive(Default)]
struct Writer {
    out: String,
    markers: Vec<String>,
}

impl Writer {
    fn pieces(&mut self, pieces: &[Piece]) {
        for p in pieces {
            match p {
                Piece::Plain(s) => self.out.push_str(s),
                Piece::Raw(c) => self.out.push(*c),
                Piece::Escaped(c) => {
                    let _ = write!(self.out, "\\u{:04x}", *c as u32);
                }
                Piece::Pair(c) => {
                    let mut units = [0u16; 2];
                    for u in c.encode_utf16(&mut units) {
                        let _ = write!(self.out, "\\u{u:04x}");
                    }
                }
                Piece::LoneHigh(u) | Piece::LoneLow(u) => {
                    let _ = write!(self.out, "\\u{u:04x}");
                }
                Piece::Control(b) => self.out.push(char::from(*b)),
                Piece::Simple(c) => {
                    self.out.push('\\');
                    self.out.push(*c);
                }
            }
        }
    }

    fn junk_str(&mut self, pieces: &[Piece]) {
        self.out.push('"');
        self.pieces(pieces);
        self.out.push('"');
    }

    /// A string in a position the model reads: a new marker inside.
    fn text(&mut self, t: &Text) {
        let marker = format!("MRK{}Q", self.markers.len());
        self.out.push('"');
        self.pieces(&t.before);
        self.out.push(' ');
        if t.escape_marker {
            for c in marker.chars() {
                let _ = write!(self.out, "\\u{:04x}", c as u32);
            }
        } else {
            self.out.push_str(&marker);
        }
        self.out.push(' ');
        self.pieces(&t.after);
        self.out.push('"');
        self.markers.push(marker);
    }

    fn key(&mut self, key: &str, style: u8) {
        self.out.push('"');
        if style == 2 {
            self.out.push_str(&key.to_uppercase());
        } else if style == 1 && !key.is_empty() {
            let mut chars = key.chars();
            if let Some(c) = chars.next() {
                let _ = write!(self.out, "\\u{:04x}", c as u32);
            }
            self.out.extend(chars);
        } else {
            self.out.push_str(key);
        }
        self.out.push_str("\":");
    }

    fn junk(&mut self, j: &Junk) {
        match j {
            Junk::Str(p) => self.junk_str(p),
            Junk::Num(n) => {
                let _ = write!(self.out, "{n}");
            }
            Junk::Null => self.out.push_str("null"),
            Junk::Deep(d, p) => {
                self.out.push_str(&"[".repeat(*d));
                self.junk_str(p);
                self.out.push_str(&"]".repeat(*d));
            }
            Junk::Obj(fields) => {
                self.out.push('{');
                for (i, (k, v)) in fields.iter().enumerate() {
                    if i > 0 {
                        self.out.push(',');
                    }
                    self.key(k, 0);
                    self.junk(v);
                }
                self.out.push('}');
            }
        }
    }

    fn part(&mut self, p: &Part) {
        match p {
            Part::Typed(kind, t) => {
                let _ = write!(self.out, r#"{{"type":"{kind}","text":"#);
                self.text(t);
                self.out.push('}');
            }
            Part::Refusal(t) => {
                self.out.push_str(r#"{"type":"refusal","refusal":"#);
                self.text(t);
                self.out.push('}');
            }
            Part::Untyped(t) => {
                self.out.push_str(r#"{"text":"#);
                self.text(t);
                self.out.push('}');
            }
            Part::Bare(t) => self.text(t),
            Part::TextObject(t) => {
                self.out.push_str(r#"{"type":"text","text":{"value":"#);
                self.text(t);
                self.out.push_str("}}");
            }
            Part::Unknown(kind, t) => {
                let _ = write!(self.out, r#"{{"type":"{kind}","payload":"#);
                self.text(t);
                self.out.push('}');
            }
            Part::Image(j) => {
                self.out
                    .push_str(r#"{"type":"image_url","image_url":{"url":"#);
                self.junk(j);
                self.out.push_str("}}");
            }
            Part::Audio => self
                .out
                .push_str(r#"{"type":"input_audio","input_audio":{"data":"AAAA","format":"wav"}}"#),
            Part::Null => self.out.push_str("null"),
        }
    }

    fn content(&mut self, c: &Content) {
        match c {
            Content::Str(t) => self.text(t),
            Content::Null => self.out.push_str("null"),
            Content::Number => self.out.push('7'),
            Content::Parts(parts) => {
                self.out.push('[');
                for (i, p) in parts.iter().enumerate() {
                    if i > 0 {
                        self.out.push(',');
                    }
                    self.part(p);
                }
                self.out.push(']');
            }
        }
    }

    fn message(&mut self, m: &Message) {
        self.out.push('{');
        self.key("role", m.key_style);
        let _ = write!(self.out, "\"{}\"", m.role);
        for f in &m.fields {
            self.out.push(',');
            match f {
                Field::Content(c) => {
                    self.key("content", m.key_style);
                    self.content(c);
                }
                Field::Refusal(t) => {
                    self.key("refusal", m.key_style);
                    self.text(t);
                }
                Field::ToolCalls(calls) => {
                    self.key("tool_calls", m.key_style);
                    self.out.push('[');
                    for (i, c) in calls.iter().enumerate() {
                        if i > 0 {
                            self.out.push(',');
                        }
                        let _ = write!(self.out, r#"{{"id":"c{i}","#);
                        match c {
                            Call::Function(t) => {
                                self.out.push_str(
                                    r#""type":"function","function":{"name":"f","arguments":"#,
                                );
                                self.text(t);
                                self.out.push_str("}}");
                            }
                            Call::Custom(t) => {
                                self.out
                                    .push_str(r#""type":"custom","custom":{"name":"f","input":"#);
                                self.text(t);
                                self.out.push_str("}}");
                            }
                            Call::ArgsObject(t) => {
                                self.out.push_str(r#""type":"function","function":{"name":"f","arguments":{"to":"#);
                                self.text(t);
                                self.out.push_str("}}}");
                            }
                        }
                    }
                    self.out.push(']');
                }
                Field::FunctionCall(t) => {
                    self.key("function_call", m.key_style);
                    self.out.push_str(r#"{"name":"f","arguments":"#);
                    self.text(t);
                    self.out.push('}');
                }
                Field::Reasoning(t) => {
                    self.key("reasoning_content", m.key_style);
                    self.text(t);
                }
                Field::Name(p) => {
                    self.key("name", m.key_style);
                    self.junk_str(p);
                }
                Field::Extra(k, j) => {
                    self.key(&format!("x_{k}"), 0);
                    self.junk(j);
                }
                Field::Shadow(style, c) => {
                    self.key("content", *style);
                    self.content(c);
                }
            }
        }
        self.out.push('}');
    }

    fn request(mut self, r: &Request, select: &str) -> (String, Vec<String>) {
        let _ = write!(
            self.out,
            r#"{{"model":"m","stream":{},"messages":["#,
            r.stream
        );
        for (i, m) in r.messages.iter().enumerate() {
            if i > 0 {
                self.out.push(',');
            }
            self.message(m);
        }
        self.out.push(']');
        if let Some(tools) = &r.tools {
            self.out
                .push_str(r#","tools":[{"type":"function","function":{"name":"f","description":"#);
            self.junk(tools);
            self.out.push_str("}}]");
        }
        self.out.push_str(select);
        self.out.push('}');
        (self.out, self.markers)
    }
}

/// Every string literal in `body`, decoded leniently (a lone surrogate
/// becomes U+FFFD, invalid UTF-8 is replaced), joined with `\u{1}`.
fn decoded_strings(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let mut out = String::new();
    let mut chars = text.chars().peekable();
    let mut in_string = false;
    let mut pending_high: Option<u16> = None;
    while let Some(c) = chars.next() {
        if !in_string {
            if c == '"' {
                in_string = true;
            }
            continue;
        }
        if c != '\\' {
            if pending_high.take().is_some() {
                out.push('\u{FFFD}');
            }
            if c == '"' {
                in_string = false;
                out.push('\u{1}');
            } else {
                out.push(c);
            }
            continue;
        }
        let Some(e) = chars.next() else { break };
        if e != 'u' {
            if pending_high.take().is_some() {
                out.push('\u{FFFD}');
            }
            out.push(match e {
                'n' => '\n',
                't' => '\t',
                'r' => '\r',
                'b' => '\u{8}',
                'f' => '\u{c}',
                other => other,
            });
            continue;
        }
        let hex: String = chars.by_ref().take(4).collect();
        let Ok(unit) = u16::from_str_radix(&hex, 16) else {
            continue;
        };
        match (pending_high.take(), unit) {
            (Some(high), 0xDC00..=0xDFFF) => {
                let c = 0x10000 + ((u32::from(high) - 0xD800) << 10) + (u32::from(unit) - 0xDC00);
                out.push(char::from_u32(c).unwrap_or('\u{FFFD}'));
            }
            (high, 0xD800..=0xDBFF) => {
                if high.is_some() {
                    out.push('\u{FFFD}');
                }
                pending_high = Some(unit);
            }
            (high, _) => {
                if high.is_some() {
                    out.push('\u{FFFD}');
                }
                out.push(char::from_u32(u32::from(unit)).unwrap_or('\u{FFFD}'));
            }
        }
    }
    out
}

// ---- the harness ----

struct Harness {
    rt: tokio::runtime::Runtime,
    up: MockUpstream,
    /// When the model is an `anthropic/` deployment: the upstream.
    anthropic: Option<MockAnthropic>,
    aim: MockAim,
    /// One gateway per way of selecting the guardrail: pre_call requested,
    /// default_on pre_call, the key's pre_call, during_call requested.
    gateways: Vec<(Running, &'static str, &'static str)>,
}

impl Harness {
    fn new(post_call: bool) -> Harness {
        Harness::start(post_call, false, "aim")
    }

    /// The same gateways with the guardrail Cato Networks' (its own payload
    /// and output path).
    fn cato(post_call: bool) -> Harness {
        Harness::start(post_call, false, "cato_networks")
    }

    /// The input gateways with the model an `anthropic/` deployment: what
    /// the chat request becomes in Anthropic's format is what is checked.
    fn anthropic() -> Harness {
        Harness::start(false, true, "aim")
    }

    fn start(post_call: bool, anthropic: bool, vendor: &str) -> Harness {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let (up, claude, aim, gateways) = rt.block_on(async {
            let up = MockUpstream::start(UpstreamOptions::default()).await;
            let claude = match anthropic {
                true => Some(MockAnthropic::start(AnthropicOptions::default()).await),
                false => None,
            };
            let entry = match &claude {
                Some(c) => format!(
                    "  - model_name: m\n    litellm_params:\n      model: anthropic/claude-sonnet-4-5-20250929\n      api_base: {}\n      api_key: sk-ant-upstream-secret\n",
                    c.url()
                ),
                None => model("m", &up.url()),
            };
            let aim = MockAim::start(AimOptions {
                mode: AimMode::Pass,
                ..Default::default()
            })
            .await;
            let config = |params: &str| {
                format!(
                    "model_list:\n{}guardrails:\n  - guardrail_name: g\n    litellm_params:\n      guardrail: {vendor}\n      api_key: aim-mock-key\n      api_base: {}\n{params}general_settings:\n  master_key: sk-master\nvirtual_keys:\n  - key: sk-key\n    guardrails: [g]\n",
                    entry,
                    aim.url()
                )
            };
            let mut gateways = vec![];
            let requested = r#","guardrails":["g"]"#;
            if post_call {
                gateways.push((gateway(&config("      mode: post_call\n")).await, "sk-master", requested));
            } else {
                gateways.push((gateway(&config("      mode: pre_call\n")).await, "sk-master", requested));
                gateways.push((
                    gateway(&config("      mode: pre_call\n      default_on: true\n")).await,
                    "sk-master",
                    "",
                ));
                gateways.push((gateway(&config("      mode: pre_call\n")).await, "sk-key", ""));
                gateways.push((gateway(&config("      mode: during_call\n")).await, "sk-master", requested));
            }
            (up, claude, aim, gateways)
        });
        Harness {
            rt,
            up,
            anthropic: claude,
            aim,
            gateways,
        }
    }

    /// What the upstream (OpenAI's or Anthropic's) received.
    fn upstream(&self) -> Vec<gateway_mock::Recorded> {
        match &self.anthropic {
            Some(a) => a.requests(),
            None => self.up.requests(),
        }
    }

    fn reset(&self) {
        self.up.reset();
        self.aim.reset();
        if let Some(a) = &self.anthropic {
            a.reset();
        }
    }

    fn post(&self, which: usize, body: String) -> (u16, Vec<u8>) {
        let (gw, key, _) = &self.gateways[which % self.gateways.len()];
        self.rt.block_on(async {
            let resp = client()
                .post(format!("{}/v1/chat/completions", gw.url()))
                .bearer_auth(key)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .unwrap();
            let status = resp.status().as_u16();
            (status, resp.bytes().await.unwrap_or_default().to_vec())
        })
    }
}

fn runner() -> TestRunner {
    let base = Config::default();
    TestRunner::new(Config {
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource("regressions"))),
        source_file: Some(file!()),
        // The character strategies reject a few draws each (quotes, controls,
        // astral characters, surrogates); proptest's default cap on rejects
        // over a whole run (65,536) is reached near 100,000 cases.
        max_local_rejects: base.cases.saturating_mul(16),
        ..base
    })
}

/// What the mock Aim received (every call), decoded.
fn aim_saw(aim: &MockAim) -> String {
    aim.requests()
        .iter()
        .map(|r| decoded_strings(&r.body))
        .collect::<Vec<_>>()
        .join("\u{2}")
}

/// Input: every marker the upstream received, Aim had received.
fn check_input(h: &Harness, r: &Request, stats: &Stats) -> Result<(), TestCaseError> {
    h.reset();
    let select = h.gateways[r.selection % h.gateways.len()].2;
    let (body, markers) = Writer::default().request(r, select);
    let (status, answer) = h.post(r.selection, body.clone());
    let upstream = h.upstream();
    if let Ok(mut stats) = stats.lock() {
        stats.push((status, upstream.len(), markers.len()));
    }
    if upstream.is_empty() {
        return Ok(());
    }
    let seen = aim_saw(&h.aim);
    let received = decoded_strings(&upstream[0].body);
    for m in &markers {
        prop_assert!(
            !received.contains(m.as_str()) || seen.contains(m.as_str()),
            "{m} reached the upstream unread by Aim (status {status}, {})\nbody: {body}\nupstream got: {}\nAim got: {seen}",
            String::from_utf8_lossy(&answer),
            String::from_utf8_lossy(&upstream[0].body),
        );
    }
    Ok(())
}

/// Per case: status, upstream calls, markers planted.
type Stats = std::sync::Mutex<Vec<(u16, usize, usize)>>;

fn input_property(h: &Harness, least: usize) {
    let stats = Stats::default();
    runner()
        .run(&request(), |r| check_input(h, &r, &stats))
        .unwrap_or_else(|e| panic!("{e}"));
    // A property over requests that never reach the upstream checks
    // nothing: most valid requests must get there.
    let stats = stats.lock().unwrap();
    let reached = stats.iter().filter(|(_, up, _)| *up > 0).count();
    eprintln!("{reached} of {} requests reached the upstream", stats.len());
    assert!(
        reached * least >= stats.len(),
        "{reached} of {}",
        stats.len()
    );
}

#[test]
fn what_the_upstream_receives_aim_has_read() {
    input_property(&Harness::new(false), 4);
}

/// The same requests to an `anthropic/` deployment: the translation to
/// Anthropic's format brings nothing to the model that Aim did not read.
/// Anthropic takes fewer of them (no other roles, a user turn needed, tool
/// results tied to their calls): about one in six reaches it.
#[test]
fn what_an_anthropic_upstream_receives_aim_has_read() {
    input_property(&Harness::anthropic(), 10);
}

// ---- output ----

#[derive(Clone, Debug)]
enum OutField {
    Content(Content),
    Refusal(Text),
    ToolCalls(Vec<Call>),
    FunctionCall(Text),
    Reasoning(Text),
    Transcript(Text),
    Extra(String, Junk),
    Shadow(u8, Content),
}

#[derive(Clone, Debug)]
struct Completion {
    choices: Vec<Vec<OutField>>,
    logprobs: bool,
    usage_junk: Option<Junk>,
}

fn out_field(h: Hostile) -> BoxedStrategy<OutField> {
    let fields = prop_oneof![
        3 => content(h).prop_map(OutField::Content),
        1 => text(h).prop_map(OutField::Refusal),
        1 => prop::collection::vec(call(h), 1..3).prop_map(OutField::ToolCalls),
        1 => text(h).prop_map(OutField::FunctionCall),
        1 => text(h).prop_map(OutField::Reasoning),
        1 => text(h).prop_map(OutField::Transcript),
        1 => ("[a-z_]{1,8}", junk(h)).prop_map(|(k, j)| OutField::Extra(k, j)),
    ];
    if !h.keys {
        return fields.boxed();
    }
    prop_oneof![
        3 => fields,
        1 => (1u8..3, content(h)).prop_map(|(style, c)| OutField::Shadow(style, c)),
    ]
    .boxed()
}

fn out_fields(h: Hostile) -> BoxedStrategy<Vec<OutField>> {
    prop::collection::vec(out_field(h), 1..4)
        .prop_map(move |mut fields| {
            if !h.keys {
                let mut seen = vec![];
                fields.retain(|f| {
                    let kind = match f {
                        OutField::Extra(k, _) => format!("x_{k}"),
                        other => format!("{:?}", std::mem::discriminant(other)),
                    };
                    let new = !seen.contains(&kind);
                    seen.push(kind);
                    new
                });
            }
            fields
        })
        .boxed()
}

fn completion_of(h: Hostile) -> BoxedStrategy<Completion> {
    (
        prop::collection::vec(out_fields(h), 1..3),
        prop::bool::weighted(0.1),
        prop::option::weighted(0.2, junk(h)),
    )
        .prop_map(|(choices, logprobs, usage_junk)| Completion {
            choices,
            logprobs,
            usage_junk,
        })
        .boxed()
}

fn completion() -> impl Strategy<Value = Completion> {
    let [unicode, shapes, depth, keys] = hostilities();
    prop_oneof![
        6 => completion_of(CALM),
        1 => completion_of(unicode),
        1 => completion_of(shapes),
        1 => completion_of(depth),
        1 => completion_of(keys),
    ]
}

impl Writer {
    fn completion(mut self, c: &Completion) -> (String, Vec<String>) {
        self.out.push_str(
            r#"{"id":"chatcmpl-p","object":"chat.completion","created":1,"model":"m","choices":["#,
        );
        for (i, fields) in c.choices.iter().enumerate() {
            if i > 0 {
                self.out.push(',');
            }
            let _ = write!(self.out, r#"{{"index":{i},"message":{{"role":"assistant""#);
            self.fields(fields);
            self.out.push('}');
            if c.logprobs {
                self.out.push_str(r#","logprobs":{"content":[]}"#);
            }
            self.out.push_str(r#","finish_reason":"stop"}"#);
        }
        self.out.push(']');
        if let Some(j) = &c.usage_junk {
            self.out.push_str(r#","system_fingerprint":"#);
            self.junk(j);
        }
        self.out
            .push_str(r#","usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}"#);
        (self.out, self.markers)
    }

    /// A message's fields after its role (`,"content":...`), markers
    /// planted.
    fn fields(&mut self, fields: &[OutField]) {
        for f in fields {
            self.out.push(',');
            match f {
                OutField::Content(content) => {
                    self.key("content", 0);
                    self.content(content);
                }
                OutField::Refusal(t) => {
                    self.key("refusal", 0);
                    self.text(t);
                }
                OutField::ToolCalls(calls) => {
                    self.message_tool_calls(calls);
                }
                OutField::FunctionCall(t) => {
                    self.key("function_call", 0);
                    self.out.push_str(r#"{"name":"f","arguments":"#);
                    self.text(t);
                    self.out.push('}');
                }
                OutField::Reasoning(t) => {
                    self.key("reasoning_content", 0);
                    self.text(t);
                }
                OutField::Transcript(t) => {
                    self.key("audio", 0);
                    self.out
                        .push_str(r#"{"id":"a","data":"AAAA","transcript":"#);
                    self.text(t);
                    self.out.push('}');
                }
                OutField::Extra(k, j) => {
                    self.key(&format!("x_{k}"), 0);
                    self.junk(j);
                }
                OutField::Shadow(style, content) => {
                    self.key("content", *style);
                    self.content(content);
                }
            }
        }
    }

    /// The same completion as a stream: one chunk per choice carrying its
    /// fields in its delta, then one with its `finish_reason`.
    fn chunks(mut self, c: &Completion) -> (Vec<String>, Vec<String>) {
        let mut chunks = vec![];
        for (i, fields) in c.choices.iter().enumerate() {
            self.out.clear();
            let _ = write!(
                self.out,
                r#"{{"id":"chatcmpl-p","object":"chat.completion.chunk","created":1,"model":"m","choices":[{{"index":{i},"delta":{{"role":"assistant""#
            );
            self.fields(fields);
            self.out.push_str(r#"},"finish_reason":null}]}"#);
            chunks.push(std::mem::take(&mut self.out));
        }
        for i in 0..c.choices.len() {
            chunks.push(format!(
                r#"{{"id":"chatcmpl-p","object":"chat.completion.chunk","created":1,"model":"m","choices":[{{"index":{i},"delta":{{}},"finish_reason":"stop"}}]}}"#
            ));
        }
        (chunks, self.markers)
    }

    fn message_tool_calls(&mut self, calls: &[Call]) {
        let message = Message {
            role: "assistant",
            fields: vec![Field::ToolCalls(calls.to_vec())],
            key_style: 0,
        };
        // Render the call list alone: the message writer's tool_calls arm.
        let mut inner = Writer {
            out: String::new(),
            markers: std::mem::take(&mut self.markers),
        };
        inner.message(&message);
        self.markers = inner.markers;
        // `{"role":"assistant","tool_calls":[...]}` -> `"tool_calls":[...]`
        let start = inner.out.find("\"tool_calls\"").unwrap_or(0);
        self.out.push_str(&inner.out[start..inner.out.len() - 1]);
    }
}

/// Output: every marker the client receives, Aim had received.
fn check_output(
    h: &Harness,
    c: &Completion,
    stream: bool,
    stats: &OutStats,
) -> Result<(), TestCaseError> {
    h.up.reset();
    h.aim.reset();
    let (answer, markers) = if stream {
        let (chunks, markers) = Writer::default().chunks(c);
        h.up.set_options(UpstreamOptions {
            stream_chunks: Some(chunks.clone()),
            ..Default::default()
        });
        (chunks.join("\n"), markers)
    } else {
        let (answer, markers) = Writer::default().completion(c);
        h.up.set_options(UpstreamOptions {
            completion: Some(answer.clone()),
            ..Default::default()
        });
        (answer, markers)
    };
    let body = format!(
        r#"{{"model":"m","stream":{stream},"guardrails":["g"],"messages":[{{"role":"user","content":"hi"}}]}}"#
    );
    let (status, got) = h.post(0, body);
    if let Ok(mut stats) = stats.lock() {
        stats.push(status);
    }
    if !(200..300).contains(&status) {
        return Ok(());
    }
    let seen = aim_saw(&h.aim);
    let streams: String = h
        .aim
        .streams()
        .iter()
        .flat_map(|s| s.frames.iter().map(|f| decoded_strings(f.as_bytes())))
        .collect();
    let received = decoded_strings(&got);
    for m in &markers {
        prop_assert!(
            !received.contains(m.as_str())
                || seen.contains(m.as_str())
                || streams.contains(m.as_str()),
            "{m} reached the client unread by Aim\ncompletion: {answer}\nclient got: {}\nAim got: {seen}",
            String::from_utf8_lossy(&got),
        );
    }
    Ok(())
}

/// Per case: the status the client got.
type OutStats = std::sync::Mutex<Vec<u16>>;

fn output_property(h: &Harness, stream: bool) {
    let stats = OutStats::default();
    runner()
        .run(&completion(), |c| check_output(h, &c, stream, &stats))
        .unwrap_or_else(|e| panic!("{e}"));
    let stats = stats.lock().unwrap();
    let answered = stats.iter().filter(|s| (200..300).contains(*s)).count();
    eprintln!(
        "{answered} of {} completions reached the client",
        stats.len()
    );
    assert!(answered * 4 >= stats.len(), "{answered} of {}", stats.len());
}

#[test]
fn what_the_client_receives_aim_has_read() {
    output_property(&Harness::new(true), false);
}

/// The same answers streamed: each choice's fields in one chunk's delta,
/// relayed through Aim's websocket.
#[test]
fn what_a_streaming_client_receives_aim_has_read() {
    output_property(&Harness::new(true), true);
}

/// The input and output properties with Cato Networks' guardrail.
#[test]
fn what_the_upstream_and_the_client_receive_cato_has_read() {
    input_property(&Harness::cato(false), 4);
    output_property(&Harness::cato(true), false);
}

#[test]
fn the_oracle_decodes_what_json_says() {
    let s = decoded_strings(br#"{"a":"x\u004dRK1Q \ud83d\ude00 \ud800 \n"}"#);
    assert!(s.contains("xMRK1Q \u{1F600} \u{FFFD} \n"), "{s:?}");
}
