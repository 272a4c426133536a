//! Connections handed to the event loops: one listening socket, one
//! acceptor, each new connection to the next loop in turn. The kernel's
//! `SO_REUSEPORT` would hash connections onto loops instead, and two busy
//! keep-alive connections (an app server's pool, a load balancer) would share
//! one core half the time; in turn, they never do.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Held while a connection is open: at the cap, new connections wait in
/// the kernel's backlog instead of taking memory and tasks here.
pub type Permit = OwnedSemaphorePermit;

/// One event loop's share of the connections.
pub struct Incoming {
    rx: UnboundedReceiver<(std::net::TcpStream, Permit)>,
}

impl Incoming {
    /// The next connection, registered with this loop; None once the
    /// acceptor has stopped (shutdown) and every connection was taken.
    pub async fn next(&mut self) -> Option<(TcpStream, Permit)> {
        loop {
            let (stream, permit) = self.rx.recv().await?;
            match TcpStream::from_std(stream) {
                Ok(stream) => return Some((stream, permit)),
                Err(e) => tracing::warn!(error = %e, "cannot take a connection"),
            }
        }
    }
}

/// Accept on `listener` until `stop` resolves, at most `cap` connections
/// open at once, handing them to `loops` event loops in turn. Returns the
/// acceptor (to run on any runtime) and each loop's [`Incoming`].
pub fn spread(
    listener: TcpListener,
    cap: usize,
    loops: usize,
    stop: impl Future<Output = ()> + Send + 'static,
) -> (impl Future<Output = ()> + Send + 'static, Vec<Incoming>) {
    let (senders, incomings): (Vec<_>, Vec<_>) = (0..loops.max(1))
        .map(|_| {
            let (tx, rx) = unbounded_channel();
            (tx, Incoming { rx })
        })
        .unzip();
    (accept(listener, cap, senders, stop), incomings)
}

async fn accept(
    listener: TcpListener,
    cap: usize,
    loops: Vec<UnboundedSender<(std::net::TcpStream, Permit)>>,
    stop: impl Future<Output = ()>,
) {
    let connections = Arc::new(Semaphore::new(cap));
    let mut next = 0;
    tokio::pin!(stop);
    loop {
        let permit = tokio::select! {
            permit = connections.clone().acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => break,
            },
            () = &mut stop => break,
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => stream,
                Err(e) => {
                    // Out of file descriptors and the like: back off, keep serving.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut stop => break,
        };
        let _ = stream.set_nodelay(true);
        let stream = match stream.into_std() {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "cannot hand a connection over");
                continue;
            }
        };
        if loops[next % loops.len()].send((stream, permit)).is_err() {
            // That loop has stopped: the process is shutting down.
            break;
        }
        next = next.wrapping_add(1);
    }
}
