//! The command line: `gateway --config config.yaml` and friends. Kept in the
//! library so the quickstart (`gateway-mock quickstart`) runs exactly the
//! same startup as the real binary.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, ValueEnum};

use crate::config::{self, Env};
use crate::server::{AppState, serve};

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
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Pretty,
    Json,
}

/// Set up logging: `RUST_LOG` filters (default `info`).
pub fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Pretty => builder.try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init(),
    };
}

/// Run the gateway as the binary does; `env` overlays the process environment.
pub fn main(cli: Cli, env: Env) -> ExitCode {
    let config = match load(&cli, &env) {
        Ok(Some(config)) => config,
        Ok(None) => return ExitCode::SUCCESS,
        Err(code) => return code,
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(&cli, config)) {
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
            for w in &e.warnings {
                eprintln!("warning: {w}");
            }
            eprintln!("{}: {} error(s)", path.display(), e.errors.len());
            for err in &e.errors {
                eprintln!("  error: {err}");
            }
            return Err(ExitCode::FAILURE);
        }
    };
    if cli.check {
        for w in &warnings {
            eprintln!("warning: {w}");
        }
        print!("{}: ok\n{}", path.display(), config.summary());
        return Ok(None);
    }
    for w in &warnings {
        tracing::warn!(path = %w.path, "config: {}", w.message);
    }
    Ok(Some(config))
}

/// Serve `config` on the CLI's address until SIGINT or SIGTERM.
pub async fn run(cli: &Cli, config: config::Config) -> Result<(), String> {
    let models = config.deployments.len();
    let guardrails = config.guardrails.len();
    let state = AppState::new(config)?;
    let addr = format!("{}:{}", cli.host, cli.port);
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    tracing::info!(
        version = crate::VERSION,
        models,
        guardrails,
        "gateway listening on http://{addr}"
    );
    serve(listener, state, shutdown_signal())
        .await
        .map_err(|e| e.to_string())
}

/// SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutdown signal received");
}
