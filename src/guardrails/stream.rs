//! Streaming post_call checks: the upstream stream relayed through Aim's
//! websocket (aim.md section 7), so that only verified chunks reach the client.
//!
//! Each post_call guardrail is one stage: a task that sends upstream chunks
//! to Aim as they arrive and passes on what Aim verifies. Stages chain, in
//! config order. Whatever ends a stage early (a block, Aim failing, the
//! upstream breaking off) ends the stream with one error frame; the client
//! going away ends every stage, which drops the upstream request.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::{SinkExt, Stream, StreamExt};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tracing::Instrument;

use super::Guardrail;
use super::aim::{self, CallInfo, Hook, Socket, StreamFrame};
use crate::error::Error;
use crate::proxy::sse;
use crate::proxy::upstream::BodyStream;

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

async fn relay(g: Arc<Guardrail>, mut socket: Socket, mut input: Items, tx: mpsc::Sender<Item>) {
    let started = std::time::Instant::now();
    // Chunks sent to Aim and not yet answered; on a fail-open failure they
    // go to the client as they are.
    let mut pending: VecDeque<Bytes> = VecDeque::new();
    let mut input_done = false;
    // Set while Aim owes an answer; Aim must say something before it.
    let mut deadline: Option<Instant> = None;
    let timeout = g.client.timeout();
    let failure = loop {
        let sleep = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(d).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            biased;
            _ = tx.closed() => return,
            msg = socket.next() => {
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
                match aim::parse_stream_frame(&text) {
                    Ok(StreamFrame::Verified(chunk)) => {
                        pending.pop_front();
                        deadline = (input_done || !pending.is_empty())
                            .then(|| Instant::now() + timeout);
                        let chunk: Box<str> = chunk.into();
                        if tx.send(Item::Data(Bytes::from(chunk.into_boxed_bytes()))).await.is_err() {
                            return;
                        }
                    }
                    Ok(StreamFrame::Done) => {
                        g.stats.call(STREAM_HOOK, 0, started.elapsed());
                        let _ = tx.send(Item::Done).await;
                        close(socket).await;
                        return;
                    }
                    Ok(StreamFrame::Blocked(message)) => {
                        tracing::info!(guardrail = %g.cfg.name, "guardrail blocked a stream");
                        g.stats.call(STREAM_HOOK, 1, started.elapsed());
                        let _ = tx.send(Item::Fail(Error::GuardrailBlocked(message))).await;
                        close(socket).await;
                        return;
                    }
                    Err(f) => break f,
                }
            }
            item = input.next(), if !input_done => {
                let frame = match item {
                    Some(Item::Data(chunk)) => {
                        pending.push_back(chunk.clone());
                        chunk
                    }
                    Some(Item::Done) | None => {
                        input_done = true;
                        Bytes::from_static(br#"{"done": true}"#)
                    }
                    Some(Item::Fail(e)) => {
                        let _ = tx.send(Item::Fail(e)).await;
                        close(socket).await;
                        return;
                    }
                };
                if deadline.is_none() {
                    deadline = Some(Instant::now() + timeout);
                }
                let frame = match std::str::from_utf8(&frame) {
                    Ok(s) => WsMessage::text(s),
                    Err(_) => WsMessage::Binary(frame),
                };
                if socket.send(frame).await.is_err() {
                    break aim::Failure::StreamClosed;
                }
            }
            _ = sleep => break aim::Failure::Timeout(timeout),
        }
    };
    g.stats.call(STREAM_HOOK, 3, started.elapsed());
    match g.failed(Hook::Output, failure) {
        Err(e) => {
            let _ = tx.send(Item::Fail(e)).await;
        }
        Ok(_) => {
            // fail_open: what Aim had not answered, then the rest unverified.
            for chunk in pending {
                if tx.send(Item::Data(chunk)).await.is_err() {
                    return;
                }
            }
            if input_done {
                let _ = tx.send(Item::Done).await;
                return;
            }
            while let Some(item) = input.next().await {
                let last = !matches!(item, Item::Data(_));
                if tx.send(item).await.is_err() || last {
                    return;
                }
            }
            let _ = tx.send(Item::Done).await;
        }
    }
}

async fn close(mut socket: Socket) {
    let _ = tokio::time::timeout(std::time::Duration::from_secs(1), socket.close(None)).await;
}
