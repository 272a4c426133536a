//! Streaming post_call checks: the upstream stream relayed through Aim's
//! websocket (docs/spec/aim.md section 7), so that only verified chunks reach the client.
//!
//! Each post_call guardrail is one stage: a task that sends upstream chunks
//! to Aim as they arrive and passes on what Aim verifies. Stages chain, in
//! config order. Whatever ends a stage early (a block, Aim failing, the
//! upstream breaking off) ends the stream with one error frame; the client
//! going away ends every stage, which drops the upstream request.
//!
//! Bounded in time and memory whatever Aim and the upstream do (aim.md
//! section 7, point 5). A stage never awaits one thing alone: every turn of
//! its loop waits on the client going away, Aim's frames, writing to Aim,
//! the upstream and Aim's deadline at once, so a socket Aim stops reading
//! cannot hide the deadline or the client's departure. Aim owes an answer
//! within the guardrail's `timeout` whenever it holds unanswered chunks;
//! at most [`MAX_UNVERIFIED_CHUNKS`] chunks and [`MAX_UNVERIFIED_BYTES`]
//! bytes are sent to Aim ahead of its answers, and past that the stage
//! stops reading the upstream until Aim catches up.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Poll, ready};

use bytes::Bytes;
use futures_util::stream::SplitSink;
use futures_util::{SinkExt, Stream, StreamExt};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::{Error as WsError, Message as WsMessage, Utf8Bytes};
use tracing::Instrument;

use super::Guardrail;
use super::aim::{self, CallInfo, Hook, Socket, StreamFrame};
use crate::body::BodyStream;
use crate::error::Error;
use crate::sse;

/// What flows between stages.
#[derive(Debug)]
pub enum Item {
    /// One chunk's JSON.
    Data(Bytes),
    /// The stream is complete.
    Done,
    /// The stream ends with this error.
    Fail(Error),
}

pub type Items = Pin<Box<dyn Stream<Item = Item> + Send>>;

/// Parse an upstream SSE body into items.
pub fn items(body: BodyStream) -> Items {
    let state = (body, sse::Parser::default(), VecDeque::<Item>::new(), false);
    Box::pin(futures_util::stream::unfold(
        state,
        |(mut body, mut parser, mut queue, mut ended)| async move {
            loop {
                if let Some(item) = queue.pop_front() {
                    return Some((item, (body, parser, queue, ended)));
                }
                if ended {
                    return None;
                }
                let mut events = vec![];
                let failure = match body.next().await {
                    Some(Ok(chunk)) => parser
                        .push(&chunk, &mut events)
                        .err()
                        .map(|e| Error::UpstreamUnreachable(e.to_string())),
                    Some(Err(e)) => Some(e),
                    None => {
                        parser.finish(&mut events);
                        ended = true;
                        None
                    }
                };
                queue.extend(events.into_iter().map(|e| match e {
                    sse::Event::Data(d) => Item::Data(d),
                    sse::Event::Done => Item::Done,
                }));
                // Events before a failure still go out, in order.
                if let Some(e) = failure {
                    queue.push_back(Item::Fail(e));
                    ended = true;
                }
            }
        },
    ))
}

/// Serialise items for the client: chunks, then `[DONE]` or one error frame.
pub fn into_body(items: Items) -> BodyStream {
    Box::pin(futures_util::stream::unfold(
        (items, false),
        |(mut items, finished)| async move {
            if finished {
                return None;
            }
            match items.next().await? {
                Item::Data(d) => Some((Ok(sse::frame(&d)), (items, false))),
                Item::Done => Some((Ok(Bytes::from_static(sse::DONE_FRAME)), (items, true))),
                Item::Fail(e) => {
                    // The kind only: a block's message can quote the prompt.
                    tracing::info!(kind = e.kind(), "stream ended with an error frame");
                    Some((Ok(e.sse_frame()), (items, true)))
                }
            }
        },
    ))
}

/// Open the websocket of a guardrail before the response starts, so a
/// guardrail that cannot be reached is an ordinary error response.
/// `Ok(None)`: it failed and is `fail_open`.
pub async fn connect(g: &Guardrail, info: &CallInfo) -> Result<Option<Socket>, Error> {
    match g.client.open_stream(info).await {
        Ok(socket) => Ok(Some(socket)),
        Err(failure) => g.failed(Hook::Output, failure).map(|_| None),
    }
}

/// One stage: relay `input` through the guardrail's socket.
pub fn stage(g: Arc<Guardrail>, socket: Socket, input: Items) -> Items {
    let (tx, mut rx) = mpsc::channel::<Item>(16);
    let span = tracing::info_span!("guardrail_stream", guardrail = %g.cfg.name);
    tokio::spawn(relay(g, socket, input, tx).instrument(span));
    Box::pin(futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx)))
}

/// `output_stream` in [`crate::metrics::HOOKS`]; verdicts 0 pass, 1 block, 3 error.
const STREAM_HOOK: usize = 3;

/// At most this many chunks are sent to Aim ahead of its answers.
pub const MAX_UNVERIFIED_CHUNKS: usize = 1024;
/// At most this many bytes of chunks are sent to Aim ahead of its answers
/// (the chunk that crosses the line still goes: one SSE event, at most
/// [`sse::MAX_EVENT`], may come on top).
pub const MAX_UNVERIFIED_BYTES: usize = 1024 * 1024;

/// Chunks sent (or queued) to Aim and not yet answered, oldest first. Aim
/// answers one `verified_chunk` per chunk; on a fail-open failure the
/// unanswered ones go to the client as they are.
#[derive(Default)]
struct Unverified {
    chunks: VecDeque<Bytes>,
    bytes: usize,
}

impl Unverified {
    fn push(&mut self, chunk: Bytes) {
        self.bytes += chunk.len();
        self.chunks.push_back(chunk);
    }

    fn answered(&mut self) {
        if let Some(chunk) = self.chunks.pop_front() {
            self.bytes -= chunk.len();
        }
    }

    fn is_empty(&self) -> bool {
        self.chunks.is_empty()
    }

    fn has_room(&self) -> bool {
        self.chunks.len() < MAX_UNVERIFIED_CHUNKS && self.bytes < MAX_UNVERIFIED_BYTES
    }
}

type Sender<'a> = mpsc::Permit<'a, Item>;
type AimSink = SplitSink<Socket, WsMessage>;

async fn relay(g: Arc<Guardrail>, socket: Socket, mut input: Items, tx: mpsc::Sender<Item>) {
    let started = std::time::Instant::now();
    let timeout = g.client.timeout();
    let (mut sink, mut frames) = socket.split();
    let mut unverified = Unverified::default();
    // Frames for Aim not yet handed to the socket; bounded by the window.
    let mut outbox: VecDeque<WsMessage> = VecDeque::new();
    let mut unflushed = false;
    let mut input_done = false;
    // Set while Aim owes an answer; Aim must say something before it.
    let mut deadline: Option<Instant> = None;
    // Room for one item towards the client. Aim is read only while there
    // is room, so a slow client slows Aim down instead of piling up
    // verified chunks here (and Aim's deadline waits with it).
    let mut room: Option<Sender<'_>> = None;
    let failure = loop {
        let listening = room.is_some();
        let sending = !outbox.is_empty() || unflushed;
        let reading = !input_done && unverified.has_room();
        let sleep = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(d).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            biased;
            _ = tx.closed() => return,
            reserved = tx.reserve(), if !listening => match reserved {
                Ok(r) => room = Some(r),
                Err(_) => return,
            },
            msg = frames.next(), if listening => {
                let text = match msg {
                    Some(Ok(WsMessage::Text(t))) => Bytes::from(t),
                    Some(Ok(WsMessage::Binary(b))) => b,
                    Some(Ok(WsMessage::Ping(_) | WsMessage::Pong(_) | WsMessage::Frame(_))) => continue,
                    Some(Ok(WsMessage::Close(_))) | None => break aim::Failure::StreamClosed,
                    Some(Err(e)) => {
                        tracing::debug!(error = %e, "guardrail websocket error");
                        break aim::Failure::StreamClosed;
                    }
                };
                let item = match aim::parse_stream_frame(&text) {
                    Ok(StreamFrame::Verified(chunk)) => {
                        unverified.answered();
                        deadline = (input_done || !unverified.is_empty())
                            .then(|| Instant::now() + timeout);
                        let chunk: Box<str> = chunk.into();
                        if let Some(r) = room.take() {
                            r.send(Item::Data(Bytes::from(chunk.into_boxed_bytes())));
                        }
                        continue;
                    }
                    Ok(StreamFrame::Done) => {
                        g.stats.call(STREAM_HOOK, 0, started.elapsed());
                        Item::Done
                    }
                    Ok(StreamFrame::Blocked(message)) => {
                        tracing::info!(guardrail = %g.cfg.name, "guardrail blocked a stream");
                        g.stats.call(STREAM_HOOK, 1, started.elapsed());
                        Item::Fail(Error::GuardrailBlocked(message))
                    }
                    Err(f) => break f,
                };
                // The upstream request and what it holds go first, so they
                // are released by the time the client sees the end.
                drop(input);
                finish(&tx, room, item, Some(sink)).await;
                return;
            }
            sent = send_queued(&mut sink, &mut outbox, &mut unflushed), if sending => {
                if let Err(e) = sent {
                    tracing::debug!(error = %e, "guardrail websocket error");
                    break aim::Failure::StreamClosed;
                }
            }
            item = input.next(), if reading => {
                match item {
                    Some(Item::Data(chunk)) => {
                        unverified.push(chunk.clone());
                        outbox.push_back(match Utf8Bytes::try_from(chunk.clone()) {
                            Ok(text) => WsMessage::Text(text),
                            Err(_) => WsMessage::Binary(chunk),
                        });
                    }
                    Some(Item::Done) | None => {
                        input_done = true;
                        outbox.push_back(WsMessage::Text(Utf8Bytes::from_static(r#"{"done": true}"#)));
                    }
                    Some(Item::Fail(e)) => {
                        drop(input);
                        finish(&tx, room, Item::Fail(e), Some(sink)).await;
                        return;
                    }
                }
                if deadline.is_none() {
                    deadline = Some(Instant::now() + timeout);
                }
            }
            _ = sleep, if listening => break aim::Failure::Timeout(timeout),
        }
    };
    g.stats.call(STREAM_HOOK, 3, started.elapsed());
    // The socket is of no more use, whatever happens next.
    drop((sink, frames, outbox));
    let e = match g.failed(Hook::Output, failure) {
        Err(e) => e,
        Ok(_) => return pass_through(&tx, room, unverified, input_done, input).await,
    };
    drop(input);
    finish(&tx, room, Item::Fail(e), None).await;
}

/// Hand every queued frame to the socket and flush it. Everything lives in
/// the arguments, so dropping the future half-way loses nothing: the next
/// call goes on where it stopped.
async fn send_queued(
    sink: &mut AimSink,
    outbox: &mut VecDeque<WsMessage>,
    unflushed: &mut bool,
) -> Result<(), WsError> {
    std::future::poll_fn(|cx| {
        while !outbox.is_empty() {
            ready!(sink.poll_ready_unpin(cx))?;
            if let Some(frame) = outbox.pop_front() {
                sink.start_send_unpin(frame)?;
                *unflushed = true;
            }
        }
        ready!(sink.poll_flush_unpin(cx))?;
        *unflushed = false;
        Poll::Ready(Ok(()))
    })
    .await
}

/// fail_open: what Aim had not answered, then the rest of the upstream,
/// unverified. Still raced against the client going away.
async fn pass_through(
    tx: &mpsc::Sender<Item>,
    mut room: Option<Sender<'_>>,
    unverified: Unverified,
    input_done: bool,
    mut input: Items,
) {
    let mut queue: VecDeque<Item> = unverified.chunks.into_iter().map(Item::Data).collect();
    if input_done {
        queue.push_back(Item::Done);
    }
    loop {
        let item = match queue.pop_front() {
            Some(item) => item,
            None => tokio::select! {
                biased;
                _ = tx.closed() => return,
                item = input.next() => item.unwrap_or(Item::Done),
            },
        };
        let last = !matches!(item, Item::Data(_));
        let sent = match room.take() {
            Some(r) => {
                r.send(item);
                true
            }
            None => tx.send(item).await.is_ok(),
        };
        if !sent || last {
            return;
        }
    }
}

/// The stage's last item; the socket (when still open) is closed around it,
/// within a second.
async fn finish(
    tx: &mpsc::Sender<Item>,
    room: Option<Sender<'_>>,
    item: Item,
    socket: Option<AimSink>,
) {
    match room {
        Some(r) => {
            r.send(item);
            if let Some(s) = socket {
                close(s).await;
            }
        }
        None => {
            if let Some(s) = socket {
                close(s).await;
            }
            // Fails only when the client is gone.
            let _ = tx.send(item).await;
        }
    }
}

async fn close(mut socket: AimSink) {
    let _ = tokio::time::timeout(std::time::Duration::from_secs(1), socket.close()).await;
}
