//! How the gateway uses the machine's cores, and the process's signals.
//!
//! - [`Runtime::MultiThread`] (the default): one tokio work-stealing runtime;
//!   any connection's work runs on any core, so a few busy keep-alive
//!   connections (an app server's pool, a load balancer) still use every
//!   core.
//! - [`Runtime::PerCore`]: one single-threaded event loop per worker thread,
//!   each with its own listening socket (`SO_REUSEPORT`) and upstream pool,
//!   and optional busy polling ([`spin`]). A request never crosses threads,
//!   which costs fewer instructions, but the kernel spreads connections, not
//!   requests.

pub mod spin;

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use clap::ValueEnum;

use crate::outbound::set_worker;

pub use spin::activity;

/// How requests are spread over the cores.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Runtime {
    /// One work-stealing runtime for every core.
    MultiThread,
    /// One event loop, listening socket and upstream pool per core.
    PerCore,
}

/// Where and how to serve.
#[derive(Clone, Debug)]
pub struct Options {
    pub host: String,
    pub port: u16,
    /// None: per-core with busy polling, multi-thread otherwise.
    pub runtime: Option<Runtime>,
    /// Worker threads (default: one per CPU).
    pub workers: Option<usize>,
    /// The busy-poll window (zero: off); per-core only.
    pub busy_poll: Duration,
}

impl Options {
    /// The runtime to run, or why these options cannot run.
    pub fn runtime(&self) -> Result<Runtime, String> {
        let busy = self.busy_poll > Duration::ZERO;
        match self.runtime {
            None if busy => Ok(Runtime::PerCore),
            None => Ok(Runtime::MultiThread),
            Some(Runtime::MultiThread) if busy => {
                Err("busy polling (--busy-poll-us) needs --runtime per-core".into())
            }
            Some(r) => Ok(r),
        }
    }

    /// Worker threads.
    pub fn workers(&self) -> usize {
        self.workers
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
            .clamp(1, 256)
    }
}

/// A stop signal for one event loop.
pub type Stop = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Serve on every listening socket with `serve(listener, stop)` until
/// SIGINT or SIGTERM, on the runtime `opts` says. `serve` accepts and
/// serves connections until `stop` resolves, then drains.
pub fn run<S, F>(opts: &Options, serve: S) -> Result<(), String>
where
    S: Fn(tokio::net::TcpListener, Stop) -> F + Send + Sync + Clone + 'static,
    F: Future<Output = std::io::Result<()>> + Send + 'static,
{
    let workers = opts.workers();
    match opts.runtime()? {
        Runtime::PerCore => per_core(opts, workers, serve),
        Runtime::MultiThread => multi_thread(opts, workers, serve),
    }
}

/// One work-stealing runtime of `workers` threads, one listening socket.
fn multi_thread<S, F>(opts: &Options, workers: usize, serve: S) -> Result<(), String>
where
    S: Fn(tokio::net::TcpListener, Stop) -> F,
    F: Future<Output = std::io::Result<()>>,
{
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .thread_name("gateway-worker")
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    let signal = shutdown_signal(&rt);
    rt.block_on(async move {
        let listener = bind(&opts.host, opts.port, 1)
            .await?
            .pop()
            .ok_or("no listener")?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        let listener = tokio::net::TcpListener::from_std(listener).map_err(|e| e.to_string())?;
        tokio::spawn(heartbeat());
        tracing::info!(
            workers,
            runtime = "multi-thread",
            "gateway listening on http://{addr}"
        );
        serve(listener, Box::pin(signal))
            .await
            .map_err(|e| e.to_string())
    })
}

/// Thread per core: each worker thread runs its own single-threaded event
/// loop on its own listening socket (`SO_REUSEPORT`, so the kernel spreads
/// connections), with its own upstream connection pool (see
/// [`crate::outbound::set_worker`]). A request is then served start to
/// finish on one thread, with no cross-thread wakeups on the hot path.
/// Shared state (router, limits, metrics) is `Sync`. The kernel spreads
/// connections, not requests: a few busy keep-alive connections can land on
/// one core.
fn per_core<S, F>(opts: &Options, workers: usize, serve: S) -> Result<(), String>
where
    S: Fn(tokio::net::TcpListener, Stop) -> F + Send + Sync + Clone + 'static,
    F: Future<Output = std::io::Result<()>> + 'static,
{
    let main_rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    let signal = shutdown_signal(&main_rt);
    let listeners = main_rt.block_on(bind(&opts.host, opts.port, workers))?;
    let addr = listeners[0].local_addr().map_err(|e| e.to_string())?;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let busy_poll = opts.busy_poll;
    let mut threads = Vec::with_capacity(workers);
    for (i, listener) in listeners.into_iter().enumerate() {
        let serve = serve.clone();
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
                    serve(listener, Box::pin(stopped))
                        .await
                        .map_err(|e| e.to_string())
                })
            })
            .map_err(|e| format!("cannot start worker {i}: {e}"))?;
        threads.push(thread);
    }
    tracing::info!(
        workers,
        runtime = "per-core",
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
