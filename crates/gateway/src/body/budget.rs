//! The memory budget of buffered bodies: upstream answers and guardrail
//! answers read whole into memory (never streams, which are bounded per
//! stream instead).
//!
//! Each body is capped on its own, and all of them together draw on one
//! gateway-wide [`Budget`]. A body takes its share as it grows (or at once,
//! when its length is declared); a body that cannot get its share is refused
//! at once rather than waited for, so one flood of large answers turns into
//! clear 503s for the requests that did not fit while the others go on. The
//! share travels with the [`Bytes`] that [`super::collect`] returns and goes
//! back to the budget when the last copy of them is dropped (after the
//! answer has been written to the client).
//!
//! Nothing here knows about the transport: the collector takes any stream of
//! `Bytes`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use bytes::Bytes;

/// Default of `general_settings.max_response_size_mb`: the cap on one
/// upstream answer read whole.
pub const DEFAULT_MAX_RESPONSE: usize = 32 * 1024 * 1024;

/// Default of `general_settings.response_budget_mb`: what all
/// buffered bodies together may hold.
pub const DEFAULT_BUDGET: usize = 128 * 1024 * 1024;

/// What all buffered bodies may hold together, and what one upstream answer
/// may hold.
#[derive(Debug)]
pub struct Budget {
    limit: usize,
    used: AtomicUsize,
    max_response: usize,
    /// Answers refused because they did not fit.
    refused: AtomicU64,
}

impl Budget {
    /// The error for a request whose answer does not fit: the gateway could
    /// not hold one more buffered answer.
    pub fn refusal(&self) -> crate::error::Error {
        self.refused.fetch_add(1, Ordering::Relaxed);
        crate::error::Error::Overloaded(format!(
            "the gateway is holding as many answers in memory as it may ({} bytes, response_budget_mb); try again shortly",
            self.limit()
        ))
    }

    /// A budget of `limit` bytes in all, `max_response` per upstream answer.
    pub fn new(limit: usize, max_response: usize) -> Arc<Self> {
        Arc::new(Budget {
            limit,
            used: AtomicUsize::new(0),
            max_response,
            refused: AtomicU64::new(0),
        })
    }

    /// The cap on one upstream answer.
    pub fn max_response(&self) -> usize {
        self.max_response
    }

    /// The whole budget, in bytes.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Bytes held by buffered bodies right now.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    /// Answers refused so far because the budget was spent.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    fn take(&self, n: usize) -> bool {
        self.used
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |used| {
                used.checked_add(n).filter(|&total| total <= self.limit)
            })
            .is_ok()
    }

    fn give_back(&self, n: usize) {
        self.used.fetch_sub(n, Ordering::Relaxed);
    }
}

/// One body's part of a [`Budget`], given back when dropped.
#[derive(Debug)]
pub struct Share {
    budget: Option<Arc<Budget>>,
    bytes: usize,
}

impl Share {
    /// An empty share of `budget`; with `None`, a share that never runs out
    /// (for bodies outside the budget).
    pub fn new(budget: Option<&Arc<Budget>>) -> Self {
        Share {
            budget: budget.cloned(),
            bytes: 0,
        }
    }

    /// Grow or shrink the share to `bytes`; false (and unchanged) when the
    /// budget cannot give that much.
    pub fn resize(&mut self, bytes: usize) -> bool {
        let Some(budget) = &self.budget else {
            return true;
        };
        if bytes == self.bytes {
            return true;
        }
        if bytes > self.bytes {
            if !budget.take(bytes - self.bytes) {
                return false;
            }
        } else {
            budget.give_back(self.bytes - bytes);
        }
        self.bytes = bytes;
        true
    }

    /// `body` carrying this share: the share goes back to the budget when
    /// the last clone of the returned bytes is dropped.
    pub fn attach<T>(self, body: T) -> Bytes
    where
        T: AsRef<[u8]> + Send + 'static,
        Bytes: From<T>,
    {
        if self.budget.is_none() || self.bytes == 0 {
            return Bytes::from(body);
        }
        Bytes::from_owner(Held { body, _share: self })
    }
}

impl Drop for Share {
    fn drop(&mut self) {
        if let Some(budget) = &self.budget {
            budget.give_back(self.bytes);
        }
    }
}

/// A body and the share it holds.
struct Held<T> {
    body: T,
    _share: Share,
}

impl<T: AsRef<[u8]>> AsRef<[u8]> for Held<T> {
    fn as_ref(&self) -> &[u8] {
        self.body.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_come_back_when_the_bytes_go() {
        let budget = Budget::new(1000, 1000);
        let mut a = Share::new(Some(&budget));
        assert!(a.resize(600));
        let mut b = Share::new(Some(&budget));
        assert!(!b.resize(500), "600 + 500 is over the budget");
        assert!(b.resize(400));
        assert_eq!(budget.used(), 1000);
        assert!(b.resize(100));
        assert_eq!(budget.used(), 700);
        let bytes = a.attach(vec![1u8; 600]);
        let copy = bytes.clone();
        drop(bytes);
        assert_eq!(budget.used(), 700, "a clone still holds the share");
        drop(copy);
        assert_eq!(budget.used(), 100);
        drop(b);
        assert_eq!(budget.used(), 0);

        let mut free = Share::new(None);
        assert!(free.resize(usize::MAX));
        assert_eq!(free.attach(vec![7u8; 3]).len(), 3);
    }
}
