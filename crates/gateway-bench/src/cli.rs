//! The command line: flags, and the scenarios a run is made of.

use super::*;

#[derive(Parser, Debug)]
#[command(
    name = "gateway-bench",
    about = "Benchmark the gateway against in-process mock upstream and mock Aim servers",
    long_about = "Benchmark the gateway against in-process mock upstream and mock Aim servers.\n\n\
        Build first: `cargo build --release`, then \
        `cargo run --release --bin gateway-bench -- [options]`."
)]
pub(crate) struct Cli {
    /// Seconds of measurement per scenario and concurrency level.
    #[arg(long, default_value_t = 5.0)]
    pub(crate) duration: f64,
    /// Seconds of warm-up (not measured) before each measurement.
    #[arg(long, default_value_t = 0.5)]
    pub(crate) warmup: f64,
    /// Concurrency levels (= keep-alive connections), comma-separated.
    /// Default 1,16,64,256; with --soak, the first level (default 64).
    #[arg(long, value_delimiter = ',')]
    pub(crate) concurrency: Vec<usize>,
    /// Scenarios to run, comma-separated (default: all).
    #[arg(long, value_enum, value_delimiter = ',')]
    pub(crate) scenarios: Vec<Scenario>,
    /// Delay of the mock upstreams (OpenAI and Anthropic) before each
    /// response head, in ms.
    #[arg(long, default_value_t = 0)]
    pub(crate) upstream_latency_ms: u64,
    /// Content chunks per streamed answer (text deltas on `/v1/messages`).
    #[arg(long, default_value_t = 8)]
    pub(crate) chunks: usize,
    /// Delay of the mock upstreams between stream frames, in ms (0: the whole
    /// stream is written at once, so time to first chunk is about the total).
    #[arg(long, default_value_t = 0)]
    pub(crate) chunk_interval_ms: u64,
    /// The mock Aim answers a streamed chunk no faster than one per this
    /// many ms (it still reads every frame at once): a slow Aim for
    /// `stream_post`.
    #[arg(long, default_value_t = 0)]
    pub(crate) aim_answer_interval_ms: u64,
    /// The gateway executable (default: `gateway` next to this executable).
    #[arg(long)]
    pub(crate) gateway_bin: Option<PathBuf>,
    /// Run the gateway with `--busy-poll-us N` (0: off, the gateway's
    /// default).
    #[arg(long, default_value_t = 0)]
    pub(crate) busy_poll_us: u64,
    /// Run the gateway with `--runtime R` (`multi-thread` or `per-core`;
    /// default: the gateway's own choice).
    #[arg(long)]
    pub(crate) runtime: Option<String>,
    /// Run every scenario and level this many times, interleaved (round 1
    /// of each cell, then round 2, ...), and end with the median of each
    /// figure over the rounds. On a shared machine the baseline drifts from
    /// minute to minute; a ratio taken within each round, then the median,
    /// is steadier than one run.
    #[arg(long, default_value_t = 1)]
    pub(crate) rounds: usize,
    /// Also write the figures as JSON to this file.
    #[arg(long)]
    pub(crate) json: Option<PathBuf>,
    /// Soak test: run one scenario at one concurrency for this many minutes,
    /// printing RSS and req/s every --interval seconds.
    #[arg(long)]
    pub(crate) soak: Option<f64>,
    /// The soak test's scenario.
    #[arg(long, value_enum, default_value_t = Scenario::PreCall)]
    pub(crate) scenario: Scenario,
    /// Seconds between soak reports.
    #[arg(long, default_value_t = 10.0)]
    pub(crate) interval: f64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, ValueEnum, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Scenario {
    /// Straight to the mock upstream (the baseline).
    #[value(name = "direct")]
    Direct,
    /// Through the gateway, no guardrail.
    #[value(name = "gateway")]
    Gateway,
    /// Through the gateway with an Aim pre_call guardrail.
    #[value(name = "pre_call")]
    PreCall,
    /// Through the gateway with an Aim pre_call + post_call guardrail.
    #[value(name = "pre_post")]
    PrePost,
    /// Streaming straight to the mock upstream (the stream baseline).
    #[value(name = "stream_direct")]
    StreamDirect,
    /// Streaming through the gateway, no guardrail.
    #[value(name = "stream")]
    Stream,
    /// Streaming through the gateway with an Aim post_call guardrail: the
    /// answer relayed through Aim's websocket.
    #[value(name = "stream_post")]
    StreamPost,
    /// `POST /v1/messages` straight to the mock Anthropic (the messages
    /// baseline).
    #[value(name = "messages_direct")]
    MessagesDirect,
    /// `POST /v1/messages` through the gateway to an `anthropic/`
    /// deployment: the body passes through with the model swapped, the
    /// answer comes back restamped.
    #[value(name = "messages")]
    Messages,
    /// The same with an Aim pre_call guardrail.
    #[value(name = "messages_pre_call")]
    MessagesPreCall,
    /// A `/v1/messages` stream straight to the mock Anthropic (the messages
    /// stream baseline).
    #[value(name = "messages_stream_direct")]
    MessagesStreamDirect,
    /// A `/v1/messages` stream through the gateway to an `anthropic/`
    /// deployment, relayed event by event.
    #[value(name = "messages_stream")]
    MessagesStream,
}

impl Scenario {
    pub(crate) const ALL: [Scenario; 12] = [
        Scenario::Direct,
        Scenario::Gateway,
        Scenario::PreCall,
        Scenario::PrePost,
        Scenario::StreamDirect,
        Scenario::Stream,
        Scenario::StreamPost,
        Scenario::MessagesDirect,
        Scenario::Messages,
        Scenario::MessagesPreCall,
        Scenario::MessagesStreamDirect,
        Scenario::MessagesStream,
    ];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Scenario::Direct => "direct",
            Scenario::Gateway => "gateway",
            Scenario::PreCall => "pre_call",
            Scenario::PrePost => "pre_post",
            Scenario::StreamDirect => "stream_direct",
            Scenario::Stream => "stream",
            Scenario::StreamPost => "stream_post",
            Scenario::MessagesDirect => "messages_direct",
            Scenario::Messages => "messages",
            Scenario::MessagesPreCall => "messages_pre_call",
            Scenario::MessagesStreamDirect => "messages_stream_direct",
            Scenario::MessagesStream => "messages_stream",
        }
    }

    pub(crate) fn uses_gateway(self) -> bool {
        !matches!(
            self,
            Scenario::Direct
                | Scenario::StreamDirect
                | Scenario::MessagesDirect
                | Scenario::MessagesStreamDirect
        )
    }

    /// Anthropic's Messages API (`/v1/messages`, an `anthropic/`
    /// deployment) rather than OpenAI's chat.
    pub(crate) fn messages(self) -> bool {
        matches!(
            self,
            Scenario::MessagesDirect
                | Scenario::Messages
                | Scenario::MessagesPreCall
                | Scenario::MessagesStreamDirect
                | Scenario::MessagesStream
        )
    }

    pub(crate) fn streaming(self) -> bool {
        matches!(
            self,
            Scenario::Stream
                | Scenario::StreamDirect
                | Scenario::StreamPost
                | Scenario::MessagesStreamDirect
                | Scenario::MessagesStream
        )
    }

    pub(crate) fn guardrail(self) -> bool {
        matches!(
            self,
            Scenario::PreCall
                | Scenario::PrePost
                | Scenario::StreamPost
                | Scenario::MessagesPreCall
        )
    }

    /// The guardrail modes of `aim-bench` in this scenario's gateway config.
    pub(crate) fn modes(self) -> &'static str {
        match self {
            Scenario::PrePost => "[pre_call, post_call]",
            Scenario::StreamPost => "[post_call]",
            _ => "[pre_call]",
        }
    }

    /// The scenario whose latency is subtracted to get the gateway's cost.
    pub(crate) fn baseline(self) -> Option<Scenario> {
        match self {
            Scenario::Direct
            | Scenario::StreamDirect
            | Scenario::MessagesDirect
            | Scenario::MessagesStreamDirect => None,
            Scenario::Stream | Scenario::StreamPost => Some(Scenario::StreamDirect),
            Scenario::Messages | Scenario::MessagesPreCall => Some(Scenario::MessagesDirect),
            Scenario::MessagesStream => Some(Scenario::MessagesStreamDirect),
            Scenario::Gateway | Scenario::PreCall | Scenario::PrePost => Some(Scenario::Direct),
        }
    }
}
