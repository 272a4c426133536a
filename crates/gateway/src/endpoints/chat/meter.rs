//! Token accounting and stream supervision between the upstream and the
//! client.
//!
//! Tokens come from the upstream's `usage`: the completion's, or a stream's
//! final usage chunk. When the gateway needs tokens (a `tpm` limit, or
//! usage-based routing) and the client did not ask for that chunk, the
//! gateway asks for it (`stream_options.include_usage`) and removes it again
//! from what the client sees. A stream that stalls longer than the idle
//! timeout between chunks ends with an error.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde::Deserialize;

use crate::body::{BodyStream, next_within};
use crate::error::Error;
use crate::limits::{GlobalPermit, KeyLimiter, KeyPermit};
use crate::metrics::{DeploymentStats, Gauge};
use crate::router::{InFlight, Member};
use crate::sse;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct Usage {
    #[serde(default)]
    pub prompt_tokens: u64,
    #[serde(default)]
    pub completion_tokens: u64,
}

#[derive(Deserialize)]
struct WithUsage {
    #[serde(default)]
    usage: Option<Usage>,
}

/// The `usage` of a completion body.
pub fn usage_of(body: &[u8]) -> Option<Usage> {
    // `usage` comes last in a completion: read just that object rather than
    // parse the whole answer. A `"usage"` inside a string is escaped
    // (`\"usage\"`), so a match not preceded by a backslash is the key.
    let key = body
        .windows(7)
        .rposition(|w| w == b"\"usage\"")
        .filter(|&i| i == 0 || body[i - 1] != b'\\');
    if let Some(i) = key {
        let rest = body[i + 7..].trim_ascii_start();
        if let Some(value) = rest.strip_prefix(b":") {
            let mut de = serde_json::Deserializer::from_slice(value);
            if let Ok(u) = <Option<Usage> as serde::Deserialize>::deserialize(&mut de) {
                return u;
            }
        }
    }
    serde_json::from_slice::<WithUsage>(body).ok()?.usage
}

/// Where a request's tokens and its end are recorded, and what it holds
/// while it lasts (in-flight counts, key and global permits).
pub struct Accounting {
    pub member: Option<Arc<Member>>,
    pub key: Option<Arc<KeyLimiter>>,
    pub stats: Arc<DeploymentStats>,
    pub started: Instant,
    pub holds: Holds,
}

/// Released when the response is over.
#[derive(Default)]
pub struct Holds {
    pub gauge: Option<Gauge>,
    pub in_flight: Option<InFlight>,
    pub key: Option<KeyPermit>,
    pub global: Option<GlobalPermit>,
}

impl Accounting {
    pub fn record(&self, usage: Usage) {
        let total = usage.prompt_tokens + usage.completion_tokens;
        if let Some(m) = &self.member {
            m.add_tokens(total);
        }
        if let Some(k) = &self.key {
            k.add_tokens(total);
        }
        self.stats
            .tokens(usage.prompt_tokens, usage.completion_tokens);
    }
}

/// Supervise a stream: idle timeout, usage capture (and removal when the
/// gateway asked for it), time to first token. Errors stay `Err` items.
/// Whether a stream will carry a final usage chunk, and who asked for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UsageChunk {
    /// Nobody asked: there is nothing to look for, bytes pass untouched.
    Absent,
    /// The client asked: read it on the way past, forward it.
    Forward,
    /// The gateway asked: read it and keep it from the client.
    Strip,
}

pub fn meter(body: BodyStream, usage: UsageChunk, idle: Duration, acct: Accounting) -> BodyStream {
    struct State {
        body: BodyStream,
        parser: sse::Parser,
        usage: UsageChunk,
        idle: Duration,
        acct: Accounting,
        first: bool,
        done: bool,
    }
    let state = State {
        body,
        parser: sse::Parser::default(),
        usage,
        idle,
        acct,
        first: true,
        done: false,
    };
    Box::pin(futures_util::stream::unfold(state, |mut st| async move {
        loop {
            if st.done {
                return None;
            }
            let chunk = match next_within(&mut st.body, st.idle).await {
                None => {
                    st.done = true;
                    if st.usage == UsageChunk::Strip {
                        let mut events = vec![];
                        st.parser.finish(&mut events);
                        let out = reframe(&st.acct, events);
                        if !out.is_empty() {
                            return Some((Ok(out), st));
                        }
                    }
                    return None;
                }
                Some(Err(e)) => {
                    st.done = true;
                    return Some((Err(e), st));
                }
                Some(Ok(chunk)) => chunk,
            };
            if st.first {
                st.first = false;
                st.acct.stats.first_token(st.acct.started.elapsed());
            }
            if st.usage == UsageChunk::Absent {
                return Some((Ok(chunk), st));
            }
            let mut events = vec![];
            if let Err(e) = st.parser.push(&chunk, &mut events) {
                st.done = true;
                return Some((Err(Error::UpstreamUnreachable(e.to_string())), st));
            }
            if st.usage == UsageChunk::Forward {
                for e in &events {
                    if let sse::Event::Data(d) = e
                        && let Some(u) = stream_usage(d)
                    {
                        st.acct.record(u);
                    }
                }
                return Some((Ok(chunk), st));
            }
            let out = reframe(&st.acct, events);
            if !out.is_empty() {
                return Some((Ok(out), st));
            }
        }
    }))
}

/// Re-emit events as frames, keeping the usage-only chunk out.
fn reframe(acct: &Accounting, events: Vec<sse::Event>) -> Bytes {
    let mut out = Vec::new();
    for e in events {
        match e {
            sse::Event::Done => out.extend_from_slice(sse::DONE_FRAME),
            sse::Event::Data(d) => {
                if let Some(u) = stream_usage(&d) {
                    acct.record(u);
                    if usage_only(&d) {
                        continue;
                    }
                }
                out.extend_from_slice(&sse::frame(&d));
            }
        }
    }
    out.into()
}

/// The usage of a stream chunk, if it carries one.
fn stream_usage(data: &[u8]) -> Option<Usage> {
    // Most chunks carry no usage: skip the parse for them.
    if !contains(data, b"\"usage\"") {
        return None;
    }
    usage_of(data)
}

/// The final usage chunk: no choices (OpenAI's), or only choices with an
/// empty delta and no finish_reason (LiteLLM's, which the `anthropic/`
/// translation writes).
fn usage_only(data: &[u8]) -> bool {
    #[derive(Deserialize)]
    struct Chunk {
        #[serde(default)]
        choices: Option<Vec<Choice>>,
    }
    #[derive(Deserialize)]
    struct Choice {
        #[serde(default)]
        delta: Option<serde_json::Map<String, serde_json::Value>>,
        #[serde(default)]
        finish_reason: Option<serde::de::IgnoredAny>,
    }
    serde_json::from_slice::<Chunk>(data).ok().is_some_and(|c| {
        c.choices.is_none_or(|choices| {
            choices
                .iter()
                .all(|c| c.finish_reason.is_none() && c.delta.as_ref().is_none_or(|d| d.is_empty()))
        })
    })
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_parsing() {
        assert_eq!(
            usage_of(br#"{"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":4,"total_tokens":7}}"#),
            Some(Usage {
                prompt_tokens: 3,
                completion_tokens: 4
            })
        );
        assert_eq!(
            usage_of(
                br#"{"choices":[{"message":{"content":"my \"usage\": {\"prompt_tokens\": 99}"}}],"usage" : {"prompt_tokens":1,"completion_tokens":2}}"#
            ),
            Some(Usage {
                prompt_tokens: 1,
                completion_tokens: 2
            })
        );
        assert_eq!(usage_of(br#"{"usage":null}"#), None);
        assert_eq!(usage_of(br#"{"id":"x"}"#), None);
        assert!(usage_only(br#"{"choices":[],"usage":{}}"#));
        assert!(!usage_only(
            br#"{"choices":[{"index":0,"delta":{"content":"x"}}],"usage":{}}"#
        ));
        assert!(!usage_only(
            br#"{"choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"usage":{}}"#
        ));
        assert!(usage_only(
            br#"{"choices":[{"index":0,"delta":{}}],"usage":{}}"#
        ));
        assert_eq!(stream_usage(br#"{"choices":[{"delta":{}}]}"#), None);
    }
}
