//! Client-side limits: a virtual key's `rpm_limit`, `tpm_limit` and
//! `max_parallel_requests`, and the gateway-wide
//! `global_max_parallel_requests`. Over a limit the answer is 429 with
//! `retry-after` and `x-ratelimit-*` headers, never a queue.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::http::{HeaderName, HeaderValue};

use crate::config::VirtualKey;
use crate::error::Error;

/// The length of a rate window.
pub const MINUTE: Duration = Duration::from_secs(60);

/// Requests and tokens counted over a one-minute window that starts with its
/// first request (so a limit of N allows N per window, with no clock-edge
/// bursts from aligning windows to the wall clock).
#[derive(Debug, Default)]
pub struct Window {
    start: Option<Instant>,
    pub requests: u64,
    pub tokens: u64,
}

impl Window {
    /// Roll over when the window has expired; returns the time until it ends.
    pub fn roll(&mut self, now: Instant) -> Duration {
        match self.start {
            Some(s) if now.duration_since(s) < MINUTE => MINUTE - now.duration_since(s),
            _ => {
                self.start = Some(now);
                self.requests = 0;
                self.tokens = 0;
                MINUTE
            }
        }
    }
}

/// Locks a mutex, ignoring poisoning: every critical section leaves the
/// counters valid.
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The live counters of one virtual key.
#[derive(Debug, Default)]
pub struct KeyLimiter {
    window: std::sync::Mutex<Window>,
    in_flight: AtomicU64,
}

/// Held while a request of the key is in flight (for a stream: until it ends).
#[derive(Debug)]
pub struct KeyPermit(Arc<KeyLimiter>);

impl Drop for KeyPermit {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

const H_LIMIT_REQ: HeaderName = HeaderName::from_static("x-ratelimit-limit-requests");
const H_REMAIN_REQ: HeaderName = HeaderName::from_static("x-ratelimit-remaining-requests");
const H_RESET_REQ: HeaderName = HeaderName::from_static("x-ratelimit-reset-requests");
const H_LIMIT_TOK: HeaderName = HeaderName::from_static("x-ratelimit-limit-tokens");
const H_REMAIN_TOK: HeaderName = HeaderName::from_static("x-ratelimit-remaining-tokens");
const H_RESET_TOK: HeaderName = HeaderName::from_static("x-ratelimit-reset-tokens");

impl KeyLimiter {
    /// Admit one request of `key`, or say which limit it hit.
    pub fn admit(self: &Arc<Self>, key: &VirtualKey) -> Result<KeyPermit, Error> {
        let now = Instant::now();
        let mut w = lock(&self.window);
        let reset = w.roll(now);
        let headers = rate_headers(key, &w, reset);
        if let Some(limit) = key.rpm_limit
            && w.requests >= limit
        {
            return Err(limited(
                format!("Rate limit exceeded for this key: {limit} requests per minute"),
                reset,
                headers,
            ));
        }
        if let Some(limit) = key.tpm_limit
            && w.tokens >= limit
        {
            return Err(limited(
                format!("Rate limit exceeded for this key: {limit} tokens per minute"),
                reset,
                headers,
            ));
        }
        if let Some(max) = key.max_parallel_requests {
            if self.in_flight.fetch_add(1, Ordering::Relaxed) >= max {
                self.in_flight.fetch_sub(1, Ordering::Relaxed);
                return Err(limited(
                    format!("Max parallel request limit reached for this key: {max}"),
                    Duration::from_secs(1),
                    headers,
                ));
            }
        } else {
            self.in_flight.fetch_add(1, Ordering::Relaxed);
        }
        w.requests += 1;
        Ok(KeyPermit(self.clone()))
    }

    pub fn add_tokens(&self, tokens: u64) {
        let mut w = lock(&self.window);
        w.roll(Instant::now());
        w.tokens += tokens;
    }

    /// The `x-ratelimit-*` headers for a key with limits, after admission.
    pub fn headers(&self, key: &VirtualKey) -> Vec<(HeaderName, HeaderValue)> {
        if key.rpm_limit.is_none() && key.tpm_limit.is_none() {
            return vec![];
        }
        let mut w = lock(&self.window);
        let reset = w.roll(Instant::now());
        rate_headers(key, &w, reset)
    }
}

fn rate_headers(key: &VirtualKey, w: &Window, reset: Duration) -> Vec<(HeaderName, HeaderValue)> {
    let mut h = Vec::with_capacity(6);
    let reset = HeaderValue::from_str(&format!("{}s", reset.as_secs().max(1)))
        .unwrap_or(HeaderValue::from_static("60s"));
    if let Some(limit) = key.rpm_limit {
        h.push((H_LIMIT_REQ, HeaderValue::from(limit)));
        h.push((
            H_REMAIN_REQ,
            HeaderValue::from(limit.saturating_sub(w.requests)),
        ));
        h.push((H_RESET_REQ, reset.clone()));
    }
    if let Some(limit) = key.tpm_limit {
        h.push((H_LIMIT_TOK, HeaderValue::from(limit)));
        h.push((
            H_REMAIN_TOK,
            HeaderValue::from(limit.saturating_sub(w.tokens)),
        ));
        h.push((H_RESET_TOK, reset));
    }
    h
}

fn limited(
    message: String,
    retry_after: Duration,
    headers: Vec<(HeaderName, HeaderValue)>,
) -> Error {
    Error::RateLimited {
        message,
        retry_after,
        kind: "rate_limit_error",
        headers,
    }
}

/// `global_max_parallel_requests`: requests in flight across all keys.
#[derive(Debug)]
pub struct GlobalLimit {
    max: Option<u64>,
    in_flight: Arc<AtomicU64>,
}

#[derive(Debug)]
pub struct GlobalPermit(Arc<AtomicU64>);

impl Drop for GlobalPermit {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl GlobalLimit {
    pub fn new(max: Option<u64>) -> Self {
        GlobalLimit {
            max,
            in_flight: Arc::new(AtomicU64::new(0)),
        }
    }

    pub fn admit(&self) -> Result<GlobalPermit, Error> {
        let before = self.in_flight.fetch_add(1, Ordering::Relaxed);
        let permit = GlobalPermit(self.in_flight.clone());
        match self.max {
            Some(max) if before >= max => Err(limited(
                format!("The gateway is at its limit of {max} requests in flight"),
                Duration::from_secs(1),
                vec![],
            )),
            _ => Ok(permit),
        }
    }
}
