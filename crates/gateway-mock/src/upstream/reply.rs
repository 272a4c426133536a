//! The answers: a completion, its stream of chunks, and the bodies that
//! stall or break off; the counters of what is in flight.

use super::*;

#[derive(Serialize, Clone, Copy)]
pub(super) struct Usage {
    pub(super) prompt_tokens: usize,
    pub(super) completion_tokens: usize,
    pub(super) total_tokens: usize,
}

#[derive(Serialize)]
pub(super) struct Completion<'a> {
    pub(super) id: &'a str,
    pub(super) object: &'static str,
    pub(super) created: u64,
    pub(super) model: &'a str,
    pub(super) choices: Vec<Choice<'a>>,
    pub(super) usage: Usage,
}

#[derive(Serialize)]
pub(super) struct Choice<'a> {
    pub(super) index: usize,
    pub(super) message: AssistantMessage<'a>,
    pub(super) finish_reason: &'static str,
}

#[derive(Serialize)]
pub(super) struct AssistantMessage<'a> {
    pub(super) role: &'static str,
    pub(super) content: &'a str,
}

#[derive(Serialize)]
pub(super) struct Chunk<'a> {
    pub(super) id: &'a str,
    pub(super) object: &'static str,
    pub(super) created: u64,
    pub(super) model: &'a str,
    pub(super) choices: &'a [ChunkChoice<'a>],
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) usage: Option<Usage>,
}

#[derive(Serialize)]
pub(super) struct ChunkChoice<'a> {
    pub(super) index: usize,
    pub(super) delta: Delta<'a>,
    pub(super) finish_reason: Option<&'static str>,
}

#[derive(Serialize)]
pub(super) struct Delta<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) role: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) content: Option<&'a str>,
}

pub(super) fn words(text: &str) -> usize {
    text.split_whitespace().count()
}

/// Splits `text` into `n` pieces of as even a number of characters as
/// possible (the first pieces take the remainder); pieces may be empty.
pub(super) fn split_even(text: &str, n: usize) -> Vec<&str> {
    let total = text.chars().count();
    let (base, extra) = (total / n, total % n);
    let mut pieces = Vec::with_capacity(n);
    let mut rest = text;
    for i in 0..n {
        let take = base + usize::from(i < extra);
        let split = rest.char_indices().nth(take).map_or(rest.len(), |(b, _)| b);
        let (piece, tail) = rest.split_at(split);
        pieces.push(piece);
        rest = tail;
    }
    pieces
}

/// Every frame of a stream, `data: [DONE]` last.
pub(super) fn stream_frames(
    id: &str,
    created: u64,
    model: &str,
    content: &str,
    chunks: usize,
    usage: Option<Usage>,
) -> Vec<Bytes> {
    let frame = |choices: &[ChunkChoice<'_>], usage: Option<Usage>| {
        let mut buf = Vec::with_capacity(160 + content.len() / chunks.max(1));
        buf.extend_from_slice(b"data: ");
        let chunk = Chunk {
            id,
            object: "chat.completion.chunk",
            created,
            model,
            choices,
            usage,
        };
        // Serializing these plain structs into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut buf, &chunk);
        buf.extend_from_slice(b"\n\n");
        Bytes::from(buf)
    };
    pub(super) fn choice<'a>(
        delta: Delta<'a>,
        finish_reason: Option<&'static str>,
    ) -> [ChunkChoice<'a>; 1] {
        [ChunkChoice {
            index: 0,
            delta,
            finish_reason,
        }]
    }
    let mut frames = Vec::with_capacity(chunks + 4);
    frames.push(frame(
        &choice(
            Delta {
                role: Some("assistant"),
                content: Some(""),
            },
            None,
        ),
        None,
    ));
    for piece in split_even(content, chunks) {
        frames.push(frame(
            &choice(
                Delta {
                    role: None,
                    content: Some(piece),
                },
                None,
            ),
            None,
        ));
    }
    frames.push(frame(
        &choice(
            Delta {
                role: None,
                content: None,
            },
            Some("stop"),
        ),
        None,
    ));
    if let Some(usage) = usage {
        frames.push(frame(&[], Some(usage)));
    }
    frames.push(Bytes::from_static(DONE_FRAME));
    frames
}

/// Counts a chat request as in flight until dropped.
pub(super) struct InFlight(Arc<Shared>);

impl InFlight {
    pub(super) fn new(shared: &Arc<Shared>) -> Self {
        shared.in_flight.fetch_add(1, Relaxed);
        InFlight(shared.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Relaxed);
    }
}

/// Lives inside a response body stream: when the body is dropped before
/// `[DONE]` went out (the client went away), the stream counts as cancelled.
pub(super) struct StreamGuard {
    pub(super) flight: InFlight,
    /// Only SSE streams count as cancelled, not stalled non-streaming bodies.
    pub(super) counts: bool,
    /// `[DONE]` was sent, or the mock cut the body itself.
    pub(super) finished: bool,
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        if self.counts && !self.finished {
            self.flight.0.cancelled.fetch_add(1, Relaxed);
        }
    }
}

/// What a body stream does after its last frame.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum End {
    Finish,
    Stall,
    Abort,
}

pub(super) struct BodyState {
    pub(super) frames: Box<dyn Iterator<Item = Bytes> + Send>,
    pub(super) entry: Option<Arc<Entry>>,
    pub(super) interval: Duration,
    pub(super) first: bool,
    pub(super) end: End,
    pub(super) guard: StreamGuard,
}

pub(super) fn body_stream(state: BodyState) -> Body {
    Body::from_stream(stream::unfold(state, |mut st| async move {
        if let Some(frame) = st.frames.next() {
            if !st.first && !st.interval.is_zero() {
                tokio::time::sleep(st.interval).await;
            }
            st.first = false;
            if frame.as_ref() == DONE_FRAME {
                st.guard.finished = true;
                st.guard.flight.0.completed.fetch_add(1, Relaxed);
            }
            if let Some(entry) = &st.entry {
                entry.append(&frame);
            }
            return Some((Ok(frame), st));
        }
        match st.end {
            End::Finish => None,
            End::Stall => {
                std::future::pending::<()>().await;
                None
            }
            End::Abort => {
                // hyper drops whatever it has buffered when the body fails;
                // one trip through the scheduler lets it flush the head and
                // the frames first, so the client does see them.
                tokio::task::yield_now().await;
                st.guard.finished = true;
                st.end = End::Finish;
                let err =
                    std::io::Error::other("mock upstream: body cut by the close_after failure");
                Some((Err(err), st))
            }
        }
    }))
}

pub(super) fn record_and_respond(
    entry: Option<&Entry>,
    status: StatusCode,
    body: Vec<u8>,
) -> Response {
    if let Some(entry) = entry {
        entry.append(&body);
    }
    json_response(status, body)
}
