//! Busy-polling on idle worker threads (`--busy-poll-us`).
//!
//! A proxied request wakes the gateway's worker thread twice: once when the
//! client's request arrives, once when the upstream answers. A thread that
//! went to sleep in `epoll_wait` costs tens of microseconds to wake on a
//! virtual machine (an inter-processor interrupt, a context switch, cold
//! caches), which is most of the latency the gateway adds at low load.
//!
//! With a window set, a worker keeps polling its sockets (`epoll_wait` with a
//! zero timeout, giving the core to any other runnable thread between polls
//! with `sched_yield`) for up to the window after its last request started or
//! ended, and sleeps only when nothing happened for that long. ScyllaDB's
//! Seastar does the same (`--idle-poll-time-us`). The price is CPU: an idle
//! worker spins for one window after each request, so a busy-poll window is
//! a poor fit for a CPU-quota'd container, and it is off by default.

use std::cell::{Cell, RefCell};
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

thread_local! {
    /// Bumped when a request starts or ends on this thread.
    static ACTIVITY: Cell<u64> = const { Cell::new(0) };
    /// The spinner's waker while it sleeps.
    static SLEEPING: RefCell<Option<Waker>> = const { RefCell::new(None) };
    /// Polls made by this thread's spinner (for the tests).
    static POLLS: Cell<u64> = const { Cell::new(0) };
}

/// A request started or ended on this thread: restart the busy-poll window
/// (waking the spinner if it went to sleep). Cheap when nothing spins.
pub fn activity() {
    ACTIVITY.with(|a| a.set(a.get().wrapping_add(1)));
    if let Some(waker) = SLEEPING.with(|s| s.borrow_mut().take()) {
        waker.wake();
    }
}

fn seen() -> u64 {
    ACTIVITY.with(Cell::get)
}

/// The spinner task of one worker's current-thread runtime: poll for up to
/// `window` after the last activity, then sleep until the next. Runs until
/// the runtime stops.
pub async fn spin(window: Duration) {
    loop {
        let mut last = seen();
        let mut since = Instant::now();
        loop {
            // Lets the runtime run every ready task, then poll its sockets
            // and timers without blocking, before this task runs again.
            tokio::task::yield_now().await;
            // Hands the core to the upstream, the client or anything else
            // runnable on it: the spin only uses time nobody else wants.
            std::thread::yield_now();
            POLLS.with(|p| p.set(p.get() + 1));
            let now = seen();
            if now != last {
                last = now;
                since = Instant::now();
            } else if since.elapsed() >= window {
                break;
            }
        }
        let asleep_at = seen();
        std::future::poll_fn(|cx| {
            if seen() != asleep_at {
                return Poll::Ready(());
            }
            SLEEPING.with(|s| *s.borrow_mut() = Some(cx.waker().clone()));
            Poll::Pending
        })
        .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn polls() -> u64 {
        POLLS.with(Cell::get)
    }

    fn asleep() -> bool {
        SLEEPING.with(|s| s.borrow().is_some())
    }

    /// Lets the runtime run until the spinner has gone to sleep (bounded).
    async fn until_asleep() {
        for _ in 0..2000 {
            if asleep() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        panic!("the spinner never went to sleep");
    }

    #[test]
    fn spins_after_activity_and_sleeps_when_idle() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            tokio::spawn(spin(Duration::from_millis(5)));
            // The first window runs out: the spinner goes to sleep.
            until_asleep().await;
            let slept_at = polls();
            assert!(slept_at > 0, "the spinner never polled");
            tokio::time::sleep(Duration::from_millis(20)).await;
            assert_eq!(polls(), slept_at, "the spinner kept polling while idle");
            // A request starts: it wakes and polls again, for one more window.
            activity();
            assert!(!asleep(), "activity did not wake the spinner");
            tokio::task::yield_now().await;
            tokio::task::yield_now().await;
            assert!(polls() > slept_at, "the spinner did not poll again");
            until_asleep().await;
            let again = polls();
            tokio::time::sleep(Duration::from_millis(20)).await;
            assert_eq!(polls(), again, "the spinner did not go back to sleep");
        });
    }

    #[test]
    fn activity_without_a_spinner_is_harmless() {
        for _ in 0..3 {
            activity();
        }
        assert_eq!(polls(), 0);
    }
}
