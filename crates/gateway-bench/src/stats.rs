//! What each load worker counts.

use super::*;

/// What a worker measured since the last drain.
#[derive(Default)]
pub(crate) struct Counts {
    pub(crate) ok: u64,
    pub(crate) errors: u64,
    pub(crate) latency: Hist,
    pub(crate) ttft: Hist,
    pub(crate) first_error: Option<String>,
}

impl Counts {
    pub(crate) fn merge(&mut self, other: &Counts) {
        self.ok += other.ok;
        self.errors += other.errors;
        self.latency.merge(&other.latency);
        self.ttft.merge(&other.ttft);
        if self.first_error.is_none() {
            self.first_error.clone_from(&other.first_error);
        }
    }

    /// Moves everything into `into` and starts over (keeping allocations).
    pub(crate) fn drain_into(&mut self, into: &mut Counts) {
        into.merge(self);
        self.ok = 0;
        self.errors = 0;
        self.latency.clear();
        self.ttft.clear();
        self.first_error = None;
    }

    pub(crate) fn error(&mut self, what: String) {
        self.errors += 1;
        if self.first_error.is_none() {
            self.first_error = Some(what);
        }
    }
}

pub(crate) type Shared = Arc<Mutex<Counts>>;

pub(crate) fn lock(m: &Mutex<Counts>) -> MutexGuard<'_, Counts> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
