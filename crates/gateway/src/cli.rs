//! The command line: `gateway --config config.yaml` and friends. Kept in the
//! library so the quickstart (`gateway-mock quickstart`) runs exactly the
//! same startup as the real binary.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, ValueEnum};

use crate::config::{self, Env};
use crate::outbound::set_worker;
use crate::server::{AppState, serve};
use crate::spin;

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
    /// Worker threads, each with its own event loop and listening socket
    /// (default: one per CPU).
    #[arg(long, alias = "num_workers")]
    pub num_workers: Option<usize>,
    /// Busy-poll window in microseconds: after each request starts or ends, a
    /// worker keeps polling its sockets this long before it sleeps. Cuts the
    /// latency added at low load (no wake-up from sleep per hop) at the cost
    /// of CPU while idle. 0 (the default) turns it off; at most 1000000.
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
///
/// Thread per core: each worker thread runs its own single-threaded event
/// loop on its own listening socket (`SO_REUSEPORT`, so the kernel spreads
/// connections), with its own upstream connection pool. A request is then
/// served start to finish on one thread, with no cross-thread wakeups on the
/// hot path. Shared state (router, limits, metrics) is `Sync`.
pub fn run(cli: &Cli, config: config::Config) -> Result<(), String> {
    let workers = cli
        .num_workers
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .clamp(1, 256);
    let models = config.deployments.len();
    let guardrails = config.guardrails.len();
    let state = AppState::new(config, workers)?;
    let main_rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    let signal = shutdown_signal(&main_rt);
    let listeners = main_rt.block_on(bind(&cli.host, cli.port, workers))?;
    let addr = listeners[0].local_addr().map_err(|e| e.to_string())?;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let busy_poll = Duration::from_micros(cli.busy_poll_us.min(1_000_000));
    let mut threads = Vec::with_capacity(workers);
    for (i, listener) in listeners.into_iter().enumerate() {
        let state = state.clone();
        let mut stop = stop_rx.clone();
        let thread = std::thread::Builder::new()
            .name(format!("gateway-worker-{i}"))
            .spawn(move || -> Result<(), String> {
                set_worker(i);
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| format!("cannot start worker {i}: {e}"))?;
                rt.block_on(async move {
                    tokio::spawn(heartbeat());
                    if busy_poll > Duration::ZERO {
                        tokio::spawn(spin::spin(busy_poll));
                    }
                    let listener =
                        tokio::net::TcpListener::from_std(listener).map_err(|e| e.to_string())?;
                    let stopped = async move {
                        let _ = stop.wait_for(|s| *s).await;
                    };
                    serve(listener, state, stopped)
                        .await
                        .map_err(|e| e.to_string())
                })
            })
            .map_err(|e| format!("cannot start worker {i}: {e}"))?;
        threads.push(thread);
    }
    tracing::info!(
        version = crate::VERSION,
        models,
        guardrails,
        workers,
        "gateway listening on http://{addr}"
    );
    main_rt.block_on(signal);
    let _ = stop_tx.send(true);
    let mut result = Ok(());
    for t in threads {
        match t.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => result = Err(e),
            Err(_) => result = Err("a worker thread panicked".to_owned()),
        }
    }
    result
}

/// Keeps a timer at most a second away on a worker's runtime. Each response
/// arms hyper's header-read timer for the connection's next request; when
/// that deadline is earlier than every other timer, tokio's time driver wakes
/// its own thread through an eventfd (one `write` and one extra `epoll_wait`
/// per request). With this tick pending, the driver's next wake-up is already
/// earlier, so arming the timer costs no system call. It costs one wake-up a
/// second on an idle worker.
async fn heartbeat() {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
    }
}

/// `count` listening sockets on one address (`SO_REUSEPORT`); with port 0,
/// the first picks the port and the others share it.
async fn bind(host: &str, port: u16, count: usize) -> Result<Vec<std::net::TcpListener>, String> {
    let mut addr = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| format!("cannot resolve {host}: {e}"))?
        .next()
        .ok_or_else(|| format!("cannot resolve {host}"))?;
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        let socket = if addr.is_ipv4() {
            tokio::net::TcpSocket::new_v4()
        } else {
            tokio::net::TcpSocket::new_v6()
        }
        .map_err(|e| e.to_string())?;
        socket.set_reuseaddr(true).map_err(|e| e.to_string())?;
        #[cfg(unix)]
        socket.set_reuseport(true).map_err(|e| e.to_string())?;
        socket
            .bind(addr)
            .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
        let listener = socket
            .listen(1024)
            .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
        addr = listener.local_addr().map_err(|e| e.to_string())?;
        out.push(listener.into_std().map_err(|e| e.to_string())?);
        // Without SO_REUSEPORT a second socket cannot share the address.
        if cfg!(not(unix)) {
            break;
        }
    }
    Ok(out)
}

/// SIGINT or SIGTERM. The handlers are installed when this is called, not
/// when the future is first polled: from then on a signal starts a graceful
/// shutdown instead of killing the process (the default action), so call it
/// before the port accepts connections.
pub fn shutdown_signal(rt: &tokio::runtime::Runtime) -> impl Future<Output = ()> + use<> {
    let _in_runtime = rt.enter();
    #[cfg(unix)]
    let (interrupt, terminate) = {
        use tokio::signal::unix::{SignalKind, signal};
        (
            signal(SignalKind::interrupt()).ok(),
            signal(SignalKind::terminate()).ok(),
        )
    };
    async move {
        #[cfg(unix)]
        {
            let recv = |s: Option<tokio::signal::unix::Signal>| async move {
                match s {
                    Some(mut s) => {
                        s.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                () = recv(interrupt) => {},
                () = recv(terminate) => {},
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
        tracing::info!("shutdown signal received");
    }
}
