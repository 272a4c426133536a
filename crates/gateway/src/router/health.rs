//! What the router knows about each deployment: requests in flight, recent
//! latency, requests and tokens in the current minute, recent failures and
//! cooldown. One short mutex per deployment; nothing is held across an await.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::config::Deployment;
use crate::limits::{MINUTE, Window, lock};
use crate::metrics::DeploymentStats;

/// One deployment and its live state.
#[derive(Debug)]
pub struct Member {
    pub d: Arc<Deployment>,
    /// `x-litellm-model-id`: the deployment's id, built once.
    pub id_header: Option<axum::http::HeaderValue>,
    /// The headers of every call to this deployment, encoded once.
    pub request_head: crate::outbound::HeaderBlock,
    /// This deployment's metrics.
    pub stats: Arc<DeploymentStats>,
    in_flight: AtomicUsize,
    /// Exponentially weighted latency in microseconds; 0 until measured.
    latency_us: AtomicU64,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    window: Window,
    failures: VecDeque<Instant>,
    cooldown_until: Option<Instant>,
}

/// Why a deployment cannot take a request now, and for how long.
pub enum Unavailable {
    CoolingDown(Duration),
    AtLimit(Duration),
}

impl Member {
    pub fn new(d: Arc<Deployment>, stats: Arc<DeploymentStats>) -> Self {
        Member {
            id_header: axum::http::HeaderValue::from_str(&d.id).ok(),
            request_head: crate::providers::request_head(&d),
            d,
            stats,
            in_flight: AtomicUsize::new(0),
            latency_us: AtomicU64::new(0),
            state: Mutex::new(State::default()),
        }
    }

    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// The latency estimate; `None` before the first success.
    pub fn latency(&self) -> Option<Duration> {
        match self.latency_us.load(Ordering::Relaxed) {
            0 => None,
            us => Some(Duration::from_micros(us)),
        }
    }

    /// Tokens used in the current window (for usage-based routing).
    pub fn tokens_this_minute(&self) -> u64 {
        let mut s = lock(&self.state);
        s.window.roll(Instant::now());
        s.window.tokens
    }

    pub fn check(&self, now: Instant) -> Result<(), Unavailable> {
        let mut s = lock(&self.state);
        if let Some(until) = s.cooldown_until {
            if until > now {
                return Err(Unavailable::CoolingDown(until - now));
            }
            s.cooldown_until = None;
        }
        let reset = s.window.roll(now);
        let over_rpm = self.d.rpm.is_some_and(|rpm| s.window.requests >= rpm);
        let over_tpm = self.d.tpm.is_some_and(|tpm| s.window.tokens >= tpm);
        if over_rpm || over_tpm {
            return Err(Unavailable::AtLimit(reset));
        }
        Ok(())
    }

    /// An attempt starts: counted against rpm and in flight until the guard drops.
    pub fn start(self: &Arc<Self>) -> InFlight {
        lock(&self.state).window.requests += 1;
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(self.clone())
    }

    pub fn succeeded(&self, latency: Duration) {
        let us = (latency.as_micros() as u64).max(1);
        let old = self.latency_us.load(Ordering::Relaxed);
        // EWMA with weight 1/4 on the new sample: recent enough to follow a
        // slowing upstream, smooth enough not to flap.
        let new = if old == 0 { us } else { (old * 3 + us) / 4 };
        self.latency_us.store(new.max(1), Ordering::Relaxed);
    }

    /// Count a failure; returns true when it put the deployment in cooldown.
    pub fn failed(&self, allowed_fails: u32, cooldown: Duration) -> bool {
        let now = Instant::now();
        let mut s = lock(&self.state);
        while s
            .failures
            .front()
            .is_some_and(|t| now.duration_since(*t) >= MINUTE)
        {
            s.failures.pop_front();
        }
        s.failures.push_back(now);
        if cooldown > Duration::ZERO && s.failures.len() >= allowed_fails.max(1) as usize {
            s.failures.clear();
            s.cooldown_until = Some(now + cooldown);
            return true;
        }
        false
    }

    pub fn add_tokens(&self, tokens: u64) {
        let mut s = lock(&self.state);
        s.window.roll(Instant::now());
        s.window.tokens += tokens;
    }
}

/// Holds a deployment's in-flight count until the response is over (for a
/// stream: until its body ends or the client leaves).
#[derive(Debug)]
pub struct InFlight(Arc<Member>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}
