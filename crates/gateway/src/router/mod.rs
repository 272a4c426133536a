//! Model groups, load balancing, retries, fallbacks and cooldowns: LiteLLM's
//! router semantics, in front of one upstream call per attempt.
//!
//! [`Router::send`] is the one place that decides where a request goes:
//!
//! 1. choose a deployment of the group that is neither cooling down nor at
//!    its `rpm`/`tpm` limit, by the configured strategy (a retry prefers one
//!    not tried yet); when none is left the answer is 429 with `retry-after`;
//! 2. call it; connect errors, timeouts, 429 and 5xx are retried up to
//!    `num_retries` times, at once on another deployment, or with exponential
//!    backoff and jitter (honouring `retry-after`) on the same one; other 4xx
//!    are never retried;
//! 3. a failure counts towards the deployment's cooldown (`allowed_fails`
//!    within a minute → skipped for `cooldown_time`);
//! 4. when the group gives up, its fallbacks are tried in order
//!    (`context_window_fallbacks` / `content_policy_fallbacks` for those
//!    errors, else `fallbacks`, else `default_fallbacks`), at most
//!    `max_fallbacks` groups, each with its own retries.
//!
//! A streaming response is committed once its head arrives: nothing after
//! that is retried. Guardrails run outside the router, once per request.
//!
//! [`Router::resolve`] turns a requested model name into the [`Target`] that
//! serves it: an explicit group of that name; else a 400 for a model of a
//! kind the gateway does not serve; else the most specific wildcard group
//! (`model_name: "*"`, `"openai/*"`), whose deployments get the requested
//! name (see `config::models`). Fallback names resolve the same way.

pub mod health;

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::body::budget::Budget;
use crate::config::models::{self, Captures, Pattern};
use crate::config::{Deployment, RouterSettings, RoutingStrategy};
use crate::error::{Error, Secrets};
use crate::metrics::Metrics;
use crate::outbound::HttpClient;
use crate::providers::{self, Call, Payload, UpstreamResponse};
use health::Unavailable;
pub use health::{InFlight, Member};
use tracing::Instrument;

/// The deployments behind one public model name, in file order.
#[derive(Debug)]
pub struct Group {
    pub name: String,
    pub members: Vec<Arc<Member>>,
}

#[derive(Debug)]
pub struct Router {
    /// Groups without `*` in their name, in file order.
    groups: Vec<Group>,
    by_name: HashMap<String, usize>,
    /// Wildcard groups, most specific first.
    wildcards: Vec<(Pattern, Group)>,
    /// Names of models the gateway does not serve, and what they are.
    unserved: HashMap<String, String>,
    settings: RouterSettings,
    metrics: Arc<Metrics>,
    /// Whole answers are read within a memory budget; configured secrets
    /// are taken out of error bodies before a client sees them.
    reading: providers::Reading,
}

/// A requested model name resolved to the group that serves it.
#[derive(Clone, Debug)]
pub struct Target<'r> {
    pub group: &'r Group,
    /// Set when a wildcard group serves the name. (Boxed: a target lives in
    /// the request's future, where size counts, and wildcards are rarer.)
    wildcard: Option<Box<Wildcard>>,
}

#[derive(Clone, Debug)]
struct Wildcard {
    /// The name asked for.
    name: String,
    /// What the group's pattern matched.
    captures: Captures,
}

impl Target<'_> {
    /// The name asked for: the group's own, or one a wildcard group serves.
    pub fn name(&self) -> &str {
        self.wildcard.as_ref().map_or(&self.group.name, |w| &w.name)
    }

    /// The requested name when a wildcard group serves it.
    pub fn wildcard_name(&self) -> Option<String> {
        self.wildcard.as_ref().map(|w| w.name.clone())
    }

    /// The model name sent upstream to `d` (a member of the group).
    pub fn upstream_model<'d>(&self, d: &'d Deployment) -> Cow<'d, str> {
        match &self.wildcard {
            None => Cow::Borrowed(&d.upstream_model),
            Some(w) => Cow::Owned(models::upstream_name(
                &d.upstream_model,
                &d.provider,
                &w.captures,
            )),
        }
    }
}

/// What the router did for one request.
pub struct Routed {
    /// The deployment of the last attempt, if one was chosen.
    pub member: Option<Arc<Member>>,
    /// The group that answered (or was last tried), as configured: a
    /// wildcard group's pattern (what metrics are labelled with).
    pub group: String,
    /// The model name a wildcard group answered for (the requested name,
    /// for `x-litellm-model-group`); `None` for a group answering for itself.
    pub model: Option<String>,
    /// Keeps the answering deployment's in-flight count until dropped.
    pub in_flight: Option<InFlight>,
    pub retries: u32,
    pub fallbacks: u32,
}

/// Longest `retry-after` worth waiting for before retrying the same deployment.
const MAX_RETRY_WAIT: Duration = Duration::from_secs(30);
const BACKOFF_BASE: Duration = Duration::from_millis(100);
const BACKOFF_CAP: Duration = Duration::from_secs(5);

/// How an upstream failure is handled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Class {
    /// Connect error, timeout, 429, 5xx: retry, count towards cooldown.
    Transient,
    ContextWindow,
    ContentPolicy,
    /// Any other upstream answer (401, 403, ...): no retry, but fallbacks apply.
    Other,
    /// The request itself is wrong (400, 404, 413, 422): nothing will help.
    Fatal,
}

fn classify(e: &Error) -> Class {
    match e {
        Error::UpstreamUnreachable(_) | Error::UpstreamTimeout(_) | Error::RateLimited { .. } => {
            Class::Transient
        }
        Error::Upstream { status, body, .. } => {
            let text = body
                .as_deref()
                .map(|b| String::from_utf8_lossy(b).to_ascii_lowercase())
                .unwrap_or_default();
            // OpenAI's codes, and the error classes of LiteLLM's messages
            // (which translated providers' errors carry).
            if text.contains("context_length_exceeded")
                || text.contains("maximum context length")
                || text.contains("contextwindowexceedederror")
            {
                Class::ContextWindow
            } else if text.contains("content_policy_violation")
                || text.contains("content_filter")
                || text.contains("contentpolicyviolationerror")
            {
                Class::ContentPolicy
            } else if status.as_u16() == 429 || status.is_server_error() {
                Class::Transient
            } else if matches!(status.as_u16(), 400 | 404 | 413 | 422) {
                Class::Fatal
            } else {
                Class::Other
            }
        }
        // The gateway's own shortage: another attempt would need the same.
        Error::Overloaded(_) => Class::Fatal,
        _ => Class::Other,
    }
}

fn retry_after(e: &Error) -> Option<Duration> {
    match e {
        Error::Upstream {
            retry_after: Some(s),
            ..
        } => Some(Duration::from_secs_f64(s.max(0.0))),
        _ => None,
    }
}

impl Router {
    pub fn new(
        deployments: &[Arc<Deployment>],
        settings: RouterSettings,
        metrics: Arc<Metrics>,
        secrets: Arc<Secrets>,
        budget: Arc<Budget>,
    ) -> Self {
        let mut all: Vec<Group> = vec![];
        let mut index: HashMap<String, usize> = HashMap::new();
        for d in deployments {
            let stats = metrics.deployment(&d.model_name, &d.id);
            let member = Arc::new(Member::new(d.clone(), stats));
            match index.get(&d.model_name) {
                Some(&i) => all[i].members.push(member),
                None => {
                    index.insert(d.model_name.clone(), all.len());
                    all.push(Group {
                        name: d.model_name.clone(),
                        members: vec![member],
                    });
                }
            }
        }
        // Wildcard groups are found by pattern, not by name, and /v1/models
        // does not list them.
        let mut groups: Vec<Group> = vec![];
        let mut wildcards: Vec<(Pattern, Group)> = vec![];
        for g in all {
            match g.members.first().and_then(|m| m.d.pattern.clone()) {
                Some(p) => wildcards.push((p, g)),
                None => groups.push(g),
            }
        }
        models::sort_by_specificity(&mut wildcards);
        let by_name = groups
            .iter()
            .enumerate()
            .map(|(i, g)| (g.name.clone(), i))
            .collect();
        let unserved = settings
            .unserved
            .iter()
            .map(|u| (u.model_name.clone(), u.kind.describe()))
            .collect();
        Router {
            groups,
            by_name,
            wildcards,
            unserved,
            settings,
            metrics,
            reading: providers::Reading { budget, secrets },
        }
    }

    /// The group named `name` exactly (no wildcard).
    pub fn group(&self, name: &str) -> Option<&Group> {
        self.by_name.get(name).map(|&i| &self.groups[i])
    }

    /// The group that serves a request for `name` (see the module doc).
    pub fn resolve<'r>(&'r self, name: &str) -> Result<Target<'r>, Error> {
        if let Some(group) = self.group(name) {
            return Ok(Target {
                group,
                wildcard: None,
            });
        }
        if let Some(kind) = self.unserved.get(name) {
            return Err(Error::invalid(
                format!(
                    "model '{name}' is {kind}; this gateway serves chat completions and does not serve it"
                ),
                Some("model"),
            ));
        }
        match models::route(&self.wildcards, name) {
            Some((group, captures)) => Ok(Target {
                group,
                wildcard: Some(Box::new(Wildcard {
                    name: name.to_owned(),
                    captures,
                })),
            }),
            None => Err(Error::UnknownModel(name.to_owned())),
        }
    }

    /// Every group with a name of its own (not a wildcard), in file order:
    /// what `/v1/models` lists.
    pub fn groups(&self) -> &[Group] {
        &self.groups
    }

    pub fn settings(&self) -> &RouterSettings {
        &self.settings
    }

    /// How answers are read (the memory budget, the secrets to mask).
    pub fn reading(&self) -> &providers::Reading {
        &self.reading
    }

    /// The time allowed for `d` to answer (for a stream: to send its head).
    pub fn timeout(&self, d: &Deployment, stream: bool) -> Duration {
        let plain = d.timeout.unwrap_or(self.settings.timeout);
        if stream {
            d.stream_timeout
                .or(self.settings.stream_timeout)
                .unwrap_or(plain)
        } else {
            plain
        }
    }

    /// The longest a stream may stall between chunks.
    pub fn idle_timeout(&self, d: &Deployment) -> Duration {
        d.stream_timeout
            .or(self.settings.stream_timeout)
            .unwrap_or_else(|| d.timeout.unwrap_or(self.settings.timeout))
    }

    /// Route one request: attempts, retries and fallbacks (see the module
    /// doc). Returns what was done, and the answer or the last error.
    /// `allowed` says which model names the caller may use: a fallback it
    /// may not is skipped, whatever kind of fallback names it. `build` makes
    /// the payload for a deployment, given the model name to send (an error
    /// ends the request: the request cannot be sent there as it is).
    pub async fn send(
        &self,
        http: &HttpClient,
        target: &Target<'_>,
        stream: bool,
        allowed: &(dyn Fn(&str) -> bool + Sync),
        build: impl Fn(&Deployment, &str) -> Result<Payload, Error>,
    ) -> (Routed, Result<UpstreamResponse, Error>) {
        let group = target.group;
        let mut routed = Routed {
            member: None,
            group: group.name.clone(),
            model: target.wildcard_name(),
            in_flight: None,
            retries: 0,
            fallbacks: 0,
        };
        let mut result = self
            .attempt_group(http, target, stream, &build, &mut routed)
            .await;
        let class = match &result {
            Ok(_) => return (routed, result),
            Err(e) => classify(e),
        };
        if class == Class::Fatal {
            return (routed, result);
        }
        for name in self
            .fallbacks_for(target.name(), class)
            .iter()
            .filter(|name| {
                let ok = allowed(name);
                if !ok {
                    tracing::debug!(from = %group.name, to = %name, "fallback skipped: the key may not use it");
                }
                ok
            })
            .take(self.settings.max_fallbacks)
        {
            let Ok(fallback) = self.resolve(name) else {
                continue;
            };
            routed.fallbacks += 1;
            self.metrics.fallback(&group.name, name);
            tracing::info!(from = %group.name, to = %name, "falling back");
            routed.group = fallback.group.name.clone();
            routed.model = fallback.wildcard_name();
            result = self
                .attempt_group(http, &fallback, stream, &build, &mut routed)
                .await;
            if result.is_ok() {
                break;
            }
        }
        (routed, result)
    }

    /// The fallback groups for a failure of the model `name`.
    fn fallbacks_for(&self, name: &str, class: Class) -> &[String] {
        let s = &self.settings;
        let specific = match class {
            Class::ContextWindow => find_fallbacks(&s.context_window_fallbacks, name),
            Class::ContentPolicy => find_fallbacks(&s.content_policy_fallbacks, name),
            _ => None,
        };
        specific
            .or_else(|| find_fallbacks(&s.fallbacks, name))
            .unwrap_or(&s.default_fallbacks)
    }

    /// Up to `num_retries + 1` attempts on `group`: the answer, or the
    /// last attempt's error.
    async fn attempt_group(
        &self,
        http: &HttpClient,
        target: &Target<'_>,
        stream: bool,
        build: &impl Fn(&Deployment, &str) -> Result<Payload, Error>,
        routed: &mut Routed,
    ) -> Result<UpstreamResponse, Error> {
        let group = target.group;
        let mut tried: Vec<usize> = Vec::new();
        let attempts = self.settings.num_retries + 1;
        let mut attempt = 0;
        loop {
            let idx = self.choose(group, &tried).inspect_err(|_| {
                self.metrics.rate_limited("deployment");
            })?;
            let member = &group.members[idx];
            tried.push(idx);
            let guard = member.start();
            let d = &member.d;
            let started = Instant::now();
            let span = tracing::info_span!("upstream", deployment = %d.id, attempt);
            let call = build(d, &target.upstream_model(d)).map(|payload| Call {
                d,
                head: &member.request_head,
                payload,
                stream,
                alias: target.name(),
            });
            let result = match call {
                Ok(call) => {
                    providers::send(http, call, self.timeout(d, stream), &self.reading)
                        .instrument(span)
                        .await
                }
                Err(e) => {
                    routed.member = Some(member.clone());
                    return Err(e);
                }
            };
            routed.member = Some(member.clone());
            match result {
                Ok(response) => {
                    member.succeeded(started.elapsed());
                    routed.in_flight = Some(guard);
                    return Ok(response);
                }
                Err(e) => {
                    drop(guard);
                    let class = classify(&e);
                    if class == Class::Transient
                        && member.failed(self.settings.allowed_fails, self.settings.cooldown_time)
                    {
                        tracing::warn!(deployment = %d.id, group = %group.name, "deployment cooling down");
                        self.metrics.cooldown(&group.name, &d.id);
                    }
                    tracing::debug!(deployment = %d.id, error = %e, attempt, "upstream attempt failed");
                    if class != Class::Transient || attempt + 1 == attempts {
                        return Err(e);
                    }
                    // The next attempt goes elsewhere when it can; on the
                    // same deployment it waits first.
                    let now = Instant::now();
                    let elsewhere = group
                        .members
                        .iter()
                        .enumerate()
                        .any(|(i, m)| !tried.contains(&i) && m.check(now).is_ok());
                    if !elsewhere {
                        let delay = retry_after(&e).unwrap_or_else(|| backoff(attempt));
                        if delay > MAX_RETRY_WAIT {
                            return Err(e);
                        }
                        tokio::time::sleep(delay).await;
                    }
                    routed.retries += 1;
                    self.metrics.retry(&group.name);
                    attempt += 1;
                }
            }
        }
    }

    /// Pick a deployment: one not yet tried when possible, by strategy.
    fn choose(&self, group: &Group, tried: &[usize]) -> Result<usize, Error> {
        let now = Instant::now();
        let mut ready: Vec<usize> = Vec::with_capacity(group.members.len());
        let mut soonest: Option<Duration> = None;
        let mut all_cooling = true;
        for (i, m) in group.members.iter().enumerate() {
            match m.check(now) {
                Ok(()) => ready.push(i),
                Err(Unavailable::CoolingDown(r)) => {
                    soonest = Some(soonest.map_or(r, |s| s.min(r)));
                }
                Err(Unavailable::AtLimit(r)) => {
                    all_cooling = false;
                    soonest = Some(soonest.map_or(r, |s| s.min(r)));
                }
            }
        }
        if ready.is_empty() {
            let why = if all_cooling {
                "every deployment is cooling down after failures"
            } else {
                "every deployment is at its rpm/tpm limit"
            };
            return Err(Error::RateLimited {
                message: format!("No deployments available for model '{}': {why}", group.name),
                retry_after: soonest.unwrap_or(Duration::from_secs(1)),
                kind: "rate_limit_error",
                headers: vec![],
            });
        }
        let fresh: Vec<usize> = ready
            .iter()
            .copied()
            .filter(|i| !tried.contains(i))
            .collect();
        let pool = if fresh.is_empty() { &ready } else { &fresh };
        Ok(self.pick(group, pool))
    }

    fn pick(&self, group: &Group, pool: &[usize]) -> usize {
        if pool.len() == 1 {
            return pool[0];
        }
        let members = &group.members;
        match self.settings.strategy {
            RoutingStrategy::SimpleShuffle => weighted(pool, |i| {
                let d = &members[i].d;
                d.weight
                    .or(d.rpm.map(|r| r as f64))
                    .or(d.tpm.map(|t| t as f64))
                    .unwrap_or(1.0)
            }),
            RoutingStrategy::LeastBusy => lowest(pool, |i| members[i].in_flight() as f64),
            RoutingStrategy::LatencyBased => {
                // Untried deployments first, then mostly the fastest, with a
                // little exploration so a recovered one is noticed.
                let unmeasured: Vec<usize> = pool
                    .iter()
                    .copied()
                    .filter(|&i| members[i].latency().is_none())
                    .collect();
                if !unmeasured.is_empty() {
                    return unmeasured[fastrand::usize(..unmeasured.len())];
                }
                if fastrand::f64() < LATENCY_EXPLORATION {
                    return pool[fastrand::usize(..pool.len())];
                }
                lowest(pool, |i| {
                    members[i].latency().map_or(0.0, |l| l.as_secs_f64())
                })
            }
            RoutingStrategy::UsageBased => lowest(pool, |i| {
                let m = &members[i];
                let used = m.tokens_this_minute() as f64;
                match m.d.tpm {
                    Some(tpm) if tpm > 0 => used / tpm as f64,
                    _ => used,
                }
            }),
        }
    }
}

/// The fallbacks listed for `name`, else those under LiteLLM's generic key
/// `"*"`.
fn find_fallbacks<'a>(list: &'a [(String, Vec<String>)], name: &str) -> Option<&'a [String]> {
    let of = |key: &str| {
        list.iter()
            .find(|(from, _)| from == key)
            .map(|(_, to)| to.as_slice())
    };
    of(name).or_else(|| of("*"))
}

/// Share of latency-based picks that go to a random deployment.
const LATENCY_EXPLORATION: f64 = 0.1;

fn backoff(attempt: u32) -> Duration {
    let exp = BACKOFF_BASE.saturating_mul(1 << attempt.min(16));
    let cap = exp.min(BACKOFF_CAP);
    // Jitter in [cap/2, cap]: spread retries without ever retrying at once.
    cap.mul_f64(0.5 + fastrand::f64() * 0.5)
}

/// Weighted random choice.
fn weighted(pool: &[usize], weight: impl Fn(usize) -> f64) -> usize {
    let total: f64 = pool.iter().map(|&i| weight(i).max(0.0)).sum();
    if total <= 0.0 {
        return pool[fastrand::usize(..pool.len())];
    }
    let mut x = fastrand::f64() * total;
    for &i in pool {
        x -= weight(i).max(0.0);
        if x < 0.0 {
            return i;
        }
    }
    pool[pool.len() - 1]
}

/// The lowest score; ties broken at random.
fn lowest(pool: &[usize], score: impl Fn(usize) -> f64) -> usize {
    let scores: Vec<f64> = pool.iter().map(|&i| score(i)).collect();
    let min = scores.iter().copied().fold(f64::INFINITY, f64::min);
    let best: Vec<usize> = pool
        .iter()
        .zip(&scores)
        .filter(|(_, s)| **s <= min)
        .map(|(&i, _)| i)
        .collect();
    best[fastrand::usize(..best.len())]
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;

    fn upstream(status: u16, body: &str) -> Error {
        Error::Upstream {
            status: StatusCode::from_u16(status).unwrap(),
            body: Some(bytes::Bytes::copy_from_slice(body.as_bytes())),
            message: String::new(),
            retry_after: None,
        }
    }

    #[test]
    fn classification() {
        assert_eq!(classify(&upstream(500, "{}")), Class::Transient);
        assert_eq!(classify(&upstream(429, "{}")), Class::Transient);
        assert_eq!(classify(&upstream(400, "{}")), Class::Fatal);
        assert_eq!(classify(&upstream(401, "{}")), Class::Other);
        assert_eq!(
            classify(&upstream(
                400,
                r#"{"error":{"code":"context_length_exceeded"}}"#
            )),
            Class::ContextWindow
        );
        assert_eq!(
            classify(&upstream(
                400,
                r#"{"error":{"code":"content_policy_violation"}}"#
            )),
            Class::ContentPolicy
        );
        assert_eq!(
            classify(&Error::UpstreamTimeout(String::new())),
            Class::Transient
        );
    }

    #[test]
    fn backoff_grows_with_jitter() {
        for attempt in 0..6 {
            let b = backoff(attempt);
            let cap = BACKOFF_BASE.saturating_mul(1 << attempt).min(BACKOFF_CAP);
            assert!(b >= cap / 2 && b <= cap, "{attempt}: {b:?}");
        }
    }
}
