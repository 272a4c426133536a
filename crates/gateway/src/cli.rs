//! The command line: `gateway --config config.yaml` and friends. Kept in the
//! library so the quickstart (`gateway-mock quickstart`) runs exactly the
//! same startup as the real binary.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, ValueEnum};

use crate::config::{self, Env};
use crate::runtime::{self, Runtime};
use crate::server;
use crate::state::AppState;

#[derive(Parser, Debug, Clone)]
#[command(
    name = "gateway",
    version,
    about = "OpenAI-compatible LLM gateway with guardrails"
)]
pub struct Cli {
    /// The LiteLLM-style config file.
    #[arg(long, env = "GATEWAY_CONFIG")]
    pub config: Option<PathBuf>,
    /// Address to listen on.
    #[arg(long, default_value = "0.0.0.0")]
    pub host: String,
    /// Port to listen on.
    #[arg(long, default_value_t = 4000)]
    pub port: u16,
    /// Validate the config, print a summary (or every problem) and exit.
    #[arg(long)]
    pub check: bool,
    /// Log output: human-readable lines, or one JSON object per line.
    #[arg(long, value_enum, default_value_t = LogFormat::Pretty)]
    pub log_format: LogFormat,
    /// How requests are spread over the cores: `per-core` (the default), one
    /// event loop and upstream pool per worker thread, each new connection
    /// handed to the next loop in turn; or `multi-thread`, one work-stealing
    /// runtime (any connection's work on any core, at about a tenth of the
    /// throughput). Busy polling needs `per-core`.
    #[arg(long, value_enum, env = "GATEWAY_RUNTIME")]
    pub runtime: Option<Runtime>,
    /// Worker threads (default: one per CPU).
    #[arg(long, alias = "num_workers")]
    pub num_workers: Option<usize>,
    /// Busy-poll window in microseconds: after each request starts or ends, a
    /// worker keeps polling its sockets this long before it sleeps. Cuts the
    /// latency added at low load (no wake-up from sleep per hop) at the cost
    /// of CPU while idle. 0 (the default) turns it off; at most 1000000.
    /// Needs the `per-core` runtime (the default when this is set).
    #[arg(long, env = "GATEWAY_BUSY_POLL_US", default_value_t = 0)]
    pub busy_poll_us: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Pretty,
    Json,
}

/// Set up logging: `RUST_LOG` filters (default `info`).
///
/// Records of crates that log through the `log` crate (the websocket
/// library, rustls) are capped at `debug`: at `trace` tungstenite prints the
/// handshake request (with Aim's `Authorization` header) and every frame
/// (stream text). No level prints a key.
pub fn init_tracing(format: LogFormat) {
    let _ = tracing_log::LogTracer::builder()
        .with_max_level(tracing_log::log::LevelFilter::Debug)
        .init();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colours only for a terminal: escape codes have no place in a log file
    // or a container's log, and styling every span field cost ~6k
    // instructions per request at the default level (callgrind).
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    // Installed directly: `try_init` would install its own uncapped
    // LogTracer.
    let _ = match format {
        LogFormat::Pretty => tracing::subscriber::set_global_default(
            builder.fmt_fields(crate::logfmt::PlainFields).finish(),
        ),
        LogFormat::Json => tracing::subscriber::set_global_default(
            builder
                .json()
                .flatten_event(true)
                .with_current_span(false)
                .finish(),
        ),
    };
}

/// Run the gateway as the binary does; `env` overlays the process environment.
pub fn main(cli: Cli, env: Env) -> ExitCode {
    let config = match load(&cli, &env) {
        Ok(Some(config)) => config,
        Ok(None) => return ExitCode::SUCCESS,
        Err(code) => return code,
    };
    match run(&cli, config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Load and validate the config, reporting warnings and errors. `Ok(None)`:
/// `--check` passed and there is nothing more to do.
pub fn load(cli: &Cli, env: &Env) -> Result<Option<config::Config>, ExitCode> {
    let Some(path) = cli.config.clone() else {
        eprintln!("error: no config file: pass --config FILE or set GATEWAY_CONFIG");
        return Err(ExitCode::from(2));
    };
    if !cli.check {
        init_tracing(cli.log_format);
    }
    let (config, warnings) = match config::load(&path, env) {
        Ok(v) => v,
        Err(e) => {
            let refused = e.errors.iter().filter(|i| i.kind.is_refusal()).count();
            let text = format!(
                "{}: not loaded: {refused} refused, {} error(s), {} warning(s)\n{}",
                path.display(),
                e.errors.len() - refused,
                e.warnings.len(),
                issues(&e.errors, &e.warnings),
            );
            // --check's report is its output; a failed start reports on stderr.
            if cli.check {
                print!("{text}");
            } else {
                eprint!("{text}");
            }
            return Err(ExitCode::FAILURE);
        }
    };
    if cli.check {
        print!(
            "{}: ok, {} warning(s)\n{}{}",
            path.display(),
            warnings.len(),
            issues(&[], &warnings),
            config.summary()
        );
        return Ok(None);
    }
    for w in &warnings {
        tracing::warn!(path = %w.path, "config: {}: {}", w.kind.heading(), w.message);
    }
    Ok(Some(config))
}

/// Errors and warnings grouped by what they mean (see `config::compat`).
fn issues(errors: &[config::Issue], warnings: &[config::Issue]) -> String {
    let all: Vec<config::Issue> = errors.iter().chain(warnings).cloned().collect();
    config::report(&all)
}

/// Serve `config` on the CLI's address until SIGINT or SIGTERM.
pub fn run(cli: &Cli, config: config::Config) -> Result<(), String> {
    let opts = runtime::Options {
        host: cli.host.clone(),
        port: cli.port,
        runtime: cli.runtime,
        workers: cli.num_workers,
        busy_poll: Duration::from_micros(cli.busy_poll_us.min(1_000_000)),
        max_connections: config.server.max_connections,
    };
    // One upstream pool per event loop.
    let pools = match opts.runtime()? {
        Runtime::PerCore => opts.workers(),
        Runtime::MultiThread => 1,
    };
    tracing::info!(
        version = crate::VERSION,
        models = config.deployments.len(),
        guardrails = config.guardrails.len(),
        "starting"
    );
    let state = AppState::new(config, pools)?;
    runtime::run(&opts, move |incoming| {
        server::serve(incoming, state.clone())
    })
}
