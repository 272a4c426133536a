//! `gateway-mock`: runs the mock servers of `gateway_mock` as a process, for
//! out-of-process users (a Python test, the benchmark, a demo).
//!
//! Each subcommand prints one line, `mock <name> listening on <url>`, then
//! serves until Ctrl-C. Once running, a mock is driven through its control
//! API (`/__mock/options`, `/__mock/requests`, `/__mock/reset`).

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};
use gateway::cli::LogFormat;
use gateway::config::Env;
use gateway_mock::aim::{AimMode, AimOptions, MockAim};
use gateway_mock::upstream::{MockUpstream, UpstreamOptions};

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
    /// The gateway on a config (default config.example.yaml) with a mock
    /// upstream and a mock Aim beside it, all in this process: the README's
    /// quickstart, no account needed.
    Quickstart(QuickstartArgs),
}

#[derive(Args)]
struct QuickstartArgs {
    /// The gateway's config file.
    #[arg(long, default_value = "config.example.yaml")]
    config: PathBuf,
    /// Address the gateway listens on.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Port the gateway listens on.
    #[arg(long, default_value_t = 4000)]
    port: u16,
    /// Log output of the gateway.
    #[arg(long, value_enum, default_value_t = LogFormat::Pretty)]
    log_format: LogFormat,
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
        Command::Quickstart(args) => return run_quickstart(args).await,
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

/// Both mocks on ephemeral ports, then the gateway exactly as `gateway
/// --config` starts it, with the providers' env vars pointed at the mocks.
async fn run_quickstart(args: QuickstartArgs) -> ExitCode {
    let upstream = MockUpstream::start(UpstreamOptions::default()).await;
    let aim = MockAim::start(AimOptions::default()).await;
    let aim_key = AimOptions::default().api_key;
    println!("mock upstream listening on {}", upstream.url());
    println!("mock aim listening on {}", aim.url());
    let env = Env::default()
        .with("OPENAI_API_KEY", "sk-mock-openai")
        .with("OPENAI_API_BASE", upstream.url())
        // The mock upstream speaks Anthropic's Messages API too.
        .with("ANTHROPIC_API_KEY", "sk-ant-mock")
        .with("ANTHROPIC_API_BASE", format!("http://{}", upstream.addr()))
        .with("AIM_API_KEY", aim_key.clone())
        .with("AIM_API_BASE", aim.url())
        .with("CATO_API_KEY", aim_key)
        .with("CATO_API_BASE", aim.url());
    let cli = gateway::cli::Cli {
        config: Some(args.config),
        host: args.host,
        port: args.port,
        check: false,
        log_format: args.log_format,
        runtime: None,
        num_workers: None,
        busy_poll_us: 0,
    };
    let config = match gateway::cli::load(&cli, &env) {
        Ok(Some(config)) => config,
        Ok(None) => return ExitCode::SUCCESS,
        Err(code) => return code,
    };
    // The gateway runs its own worker threads and signal handling, as the
    // binary does; this runtime keeps serving the mocks meanwhile.
    let gateway = std::thread::spawn(move || gateway::cli::run(&cli, config));
    let result = tokio::task::spawn_blocking(move || gateway.join())
        .await
        .map_err(|e| e.to_string())
        .and_then(|joined| joined.unwrap_or_else(|_| Err("the gateway panicked".into())));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gateway-mock quickstart: {e}");
            ExitCode::FAILURE
        }
    }
}
