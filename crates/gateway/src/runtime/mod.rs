//! How the gateway uses the machine's cores, and the process's signals.
//!
//! - [`Runtime::PerCore`] (the default): one single-threaded event loop per
//!   worker thread, each with its own upstream pool, and optional busy
//!   polling ([`spin`]). A request never crosses threads, which costs the
//!   fewest instructions. One acceptor hands each new connection to the
//!   next loop in turn ([`accept`]): two busy keep-alive connections (an app
//!   server's pool, a load balancer) always land on two cores, which
//!   `SO_REUSEPORT`'s hash did only half the time.
//! - [`Runtime::MultiThread`]: one tokio work-stealing runtime; any
//!   connection's work runs on any core, so even uneven connections spread,
//!   at about a tenth of the throughput (`docs/performance.md`).

pub mod accept;
pub mod spin;

use std::future::Future;
use std::time::Duration;

use clap::ValueEnum;

use crate::outbound::set_worker;

pub use accept::{Incoming, Permit, spread};
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
    /// None: per-core.
    pub runtime: Option<Runtime>,
    /// Worker threads (default: one per CPU).
    pub workers: Option<usize>,
    /// The busy-poll window (zero: off); per-core only.
    pub busy_poll: Duration,
    /// Open client connections at most (`max_connections`).
    pub max_connections: usize,
}

impl Options {
    /// The runtime to run, or why these options cannot run.
    pub fn runtime(&self) -> Result<Runtime, String> {
        let busy = self.busy_poll > Duration::ZERO;
        match self.runtime {
            None => Ok(Runtime::PerCore),
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

/// Serve with `serve(incoming)` on every event loop until SIGINT or SIGTERM,
/// on the runtime `opts` says: one listening socket, whose connections go to
/// the loops in turn ([`accept`]); `serve` serves a loop's connections until
/// its [`Incoming`] ends, then drains.
pub fn run<S, F>(opts: &Options, serve: S) -> Result<(), String>
where
    S: Fn(Incoming) -> F + Send + Sync + Clone + 'static,
    F: Future<Output = std::io::Result<()>> + Send + 'static,
{
    let workers = opts.workers();
    match opts.runtime()? {
        Runtime::PerCore => per_core(opts, workers, serve),
        Runtime::MultiThread => multi_thread(opts, workers, serve),
    }
}

/// One work-stealing runtime of `workers` threads, serving every connection.
fn multi_thread<S, F>(opts: &Options, workers: usize, serve: S) -> Result<(), String>
where
    S: Fn(Incoming) -> F,
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
        let listener = bind(&opts.host, opts.port).await?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        let (acceptor, incoming) = spread(listener, opts.max_connections, 1, signal);
        tokio::spawn(acceptor);
        tokio::spawn(heartbeat());
        tracing::info!(
            workers,
            runtime = "multi-thread",
            "gateway listening on http://{addr}"
        );
        let incoming = incoming.into_iter().next().ok_or("no event loop")?;
        serve(incoming).await.map_err(|e| e.to_string())
    })
}

/// Thread per core: each worker thread runs its own single-threaded event
/// loop with its own upstream connection pool (see
/// [`crate::outbound::set_worker`]), and the main thread accepts and hands
/// each new connection to the next worker in turn. A request is then served
/// start to finish on one thread, with no cross-thread wakeups on the hot
/// path. Shared state (router, limits, metrics) is `Sync`.
fn per_core<S, F>(opts: &Options, workers: usize, serve: S) -> Result<(), String>
where
    S: Fn(Incoming) -> F + Send + Sync + Clone + 'static,
    F: Future<Output = std::io::Result<()>> + 'static,
{
    let main_rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    let signal = shutdown_signal(&main_rt);
    let listener = main_rt.block_on(bind(&opts.host, opts.port))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let (acceptor, incomings) = {
        let _in_runtime = main_rt.enter();
        spread(listener, opts.max_connections, workers, signal)
    };
    let busy_poll = opts.busy_poll;
    let mut threads = Vec::with_capacity(workers);
    for (i, incoming) in incomings.into_iter().enumerate() {
        let serve = serve.clone();
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
                    serve(incoming).await.map_err(|e| e.to_string())
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
    // Accepts until the signal; the workers then drain and end.
    main_rt.block_on(acceptor);
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

/// The listening socket.
async fn bind(host: &str, port: u16) -> Result<tokio::net::TcpListener, String> {
    let addr = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| format!("cannot resolve {host}: {e}"))?
        .next()
        .ok_or_else(|| format!("cannot resolve {host}"))?;
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()
    } else {
        tokio::net::TcpSocket::new_v6()
    }
    .map_err(|e| e.to_string())?;
    socket.set_reuseaddr(true).map_err(|e| e.to_string())?;
    socket
        .bind(addr)
        .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    socket
        .listen(1024)
        .map_err(|e| format!("cannot listen on {addr}: {e}"))
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
