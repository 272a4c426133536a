//! `gateway-mock`: runs the mock servers of `gateway::mock` as a process, for
//! out-of-process users (a Python test, the benchmark, a demo).
//!
//! Each subcommand prints one line, `mock <name> listening on <url>`, then
//! serves until Ctrl-C. Once running, a mock is driven through its control
//! API (`/__mock/options`, `/__mock/requests`, `/__mock/reset`).

use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};
use gateway::mock::aim::{AimMode, AimOptions, MockAim};
use gateway::mock::upstream::{MockUpstream, UpstreamOptions};

#[derive(Parser)]
#[command(
    name = "gateway-mock",
    about = "Mock servers for the gateway: an OpenAI-compatible upstream and the Aim guardrail API"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// A mock OpenAI-compatible upstream (chat completions, streaming).
    Upstream(UpstreamArgs),
    /// A mock Aim Security API (HTTP analyze and the streaming websocket).
    Aim(AimArgs),
    // `quickstart` (gateway + both mocks in one process) goes here.
}

#[derive(Args)]
struct UpstreamArgs {
    #[arg(long, default_value = "127.0.0.1")]
    host: IpAddr,
    #[arg(long, default_value_t = 4001)]
    port: u16,
    /// Always answer this text (default: echo the last message).
    #[arg(long)]
    reply: Option<String>,
    /// Content chunks per stream.
    #[arg(long, default_value_t = 3)]
    chunks: usize,
    /// Delay before each response head, in milliseconds.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// Delay between stream frames, in milliseconds.
    #[arg(long, default_value_t = 0)]
    chunk_interval_ms: u64,
    /// Do not record requests (for benchmarks).
    #[arg(long)]
    no_record: bool,
}

#[derive(Args)]
struct AimArgs {
    #[arg(long, default_value = "127.0.0.1")]
    host: IpAddr,
    #[arg(long, default_value_t = 4002)]
    port: u16,
    /// The bearer token callers must send.
    #[arg(long, default_value = "aim-mock-key")]
    api_key: String,
    /// What a detected e-mail address leads to.
    #[arg(long, value_enum, default_value_t = Mode::Block)]
    mode: Mode,
    /// Block a stream whose chunk contains this text.
    #[arg(long)]
    stream_block_marker: Option<String>,
    /// Delay before each analyze answer, in milliseconds.
    #[arg(long, default_value_t = 0)]
    delay_ms: u64,
    /// Do not record calls and sessions (for benchmarks).
    #[arg(long)]
    no_record: bool,
}

#[derive(Clone, Copy, ValueEnum)]
enum Mode {
    Block,
    Anonymize,
    Monitor,
    Pass,
}

impl From<Mode> for AimMode {
    fn from(mode: Mode) -> Self {
        match mode {
            Mode::Block => AimMode::Block,
            Mode::Anonymize => AimMode::Anonymize,
            Mode::Monitor => AimMode::Monitor,
            Mode::Pass => AimMode::Pass,
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Upstream(args) => run_upstream(args).await,
        Command::Aim(args) => run_aim(args).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gateway-mock: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run_upstream(args: UpstreamArgs) -> std::io::Result<()> {
    let opts = UpstreamOptions {
        reply: args.reply,
        chunks: args.chunks,
        latency_ms: args.latency_ms,
        chunk_interval_ms: args.chunk_interval_ms,
        record: !args.no_record,
        ..UpstreamOptions::default()
    };
    let mock = MockUpstream::start_on(SocketAddr::new(args.host, args.port), opts).await?;
    println!("mock upstream listening on {}", mock.url());
    tokio::signal::ctrl_c().await?;
    mock.shutdown();
    Ok(())
}

async fn run_aim(args: AimArgs) -> std::io::Result<()> {
    let opts = AimOptions {
        api_key: args.api_key,
        mode: args.mode.into(),
        stream_block_marker: args.stream_block_marker,
        delay_ms: args.delay_ms,
        record: !args.no_record,
        ..AimOptions::default()
    };
    let mock = MockAim::start_on(SocketAddr::new(args.host, args.port), opts).await?;
    println!("mock aim listening on {}", mock.url());
    tokio::signal::ctrl_c().await?;
    mock.shutdown();
    Ok(())
}
