//! One write per burst of stream chunks, not one per chunk.
//!
//! The upstream body comes one chunk at a time (each `chunked` chunk is a
//! frame of its own, even when many arrived in one read), and hyper's
//! server flushes each time the body it writes has nothing more ready.
//! Relayed as is, a streamed answer whose chunks arrive together in one read
//! from the upstream went out in one `writev` per chunk: ten system calls
//! instead of one for a short answer, most of the CPU of a streamed request.
//!
//! [`Coalesce`] gives the producer a couple of turns of the event loop after
//! each chunk and merges whatever became ready meanwhile. It never waits for
//! data that has not arrived: when the turns bring nothing, what it holds
//! goes out, so a chunk is delayed by `TURNS` scheduler passes at most
//! (microseconds), never by a timer.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use futures_util::Stream;

use crate::error::Error;

/// Past this many bytes held, send without waiting for more.
const MAX_HELD: usize = 64 * 1024;
/// Event-loop turns given to the producer before what is held goes out.
/// Measured with hyper's client, whose connection runs as a task of its own:
/// the next chunk it had already read was ready on the second turn.
const TURNS: u8 = 2;

type Item = Result<Bytes, Error>;

pub struct Coalesce<S> {
    inner: S,
    held: Held,
    /// Turns given to the producer since the last chunk was taken.
    turns: u8,
    /// An error or the end, to report after what is held.
    after: Option<Option<Error>>,
}

enum Held {
    Nothing,
    One(Bytes),
    Many(BytesMut),
}

impl Held {
    fn len(&self) -> usize {
        match self {
            Held::Nothing => 0,
            Held::One(b) => b.len(),
            Held::Many(b) => b.len(),
        }
    }

    fn push(&mut self, chunk: Bytes) {
        *self = match std::mem::replace(self, Held::Nothing) {
            Held::Nothing => Held::One(chunk),
            Held::One(first) => {
                let mut buf = BytesMut::with_capacity((first.len() + chunk.len()) * 4);
                buf.extend_from_slice(&first);
                buf.extend_from_slice(&chunk);
                Held::Many(buf)
            }
            Held::Many(mut buf) => {
                buf.extend_from_slice(&chunk);
                Held::Many(buf)
            }
        };
    }

    fn take(&mut self) -> Option<Bytes> {
        match std::mem::replace(self, Held::Nothing) {
            Held::Nothing => None,
            Held::One(b) => Some(b),
            Held::Many(b) => Some(b.freeze()),
        }
    }
}

impl<S> Coalesce<S> {
    pub fn new(inner: S) -> Self {
        Coalesce {
            inner,
            held: Held::Nothing,
            turns: 0,
            after: None,
        }
    }
}

impl<S: Stream<Item = Item> + Unpin> Stream for Coalesce<S> {
    type Item = Item;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Item>> {
        let this = self.get_mut();
        if let Some(after) = &mut this.after {
            return Poll::Ready(after.take().map(Err));
        }
        loop {
            match Pin::new(&mut this.inner).poll_next(cx) {
                Poll::Ready(Some(Ok(chunk))) => {
                    this.held.push(chunk);
                    this.turns = 0;
                    if this.held.len() >= MAX_HELD {
                        return Poll::Ready(this.held.take().map(Ok));
                    }
                }
                Poll::Ready(end) => {
                    let error = end.and_then(Result::err);
                    return match this.held.take() {
                        Some(held) => {
                            this.after = Some(error);
                            Poll::Ready(Some(Ok(held)))
                        }
                        None => {
                            this.after = Some(None);
                            Poll::Ready(error.map(Err))
                        }
                    };
                }
                Poll::Pending if this.held.len() == 0 => return Poll::Pending,
                Poll::Pending if this.turns < TURNS => {
                    // A turn for the producer: come back after the tasks
                    // that are ready now have run.
                    this.turns += 1;
                    cx.waker().wake_by_ref();
                    return Poll::Pending;
                }
                Poll::Pending => {
                    this.turns = 0;
                    return Poll::Ready(this.held.take().map(Ok));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;
    use futures_util::stream;
    use std::time::Duration;

    fn ok(s: &'static str) -> Item {
        Ok(Bytes::from_static(s.as_bytes()))
    }

    #[tokio::test]
    async fn chunks_ready_together_go_out_as_one() {
        let mut s = Coalesce::new(stream::iter([ok("a"), ok("b"), ok("c")]));
        assert_eq!(s.next().await.unwrap().unwrap(), "abc");
        assert!(s.next().await.is_none());
        assert!(s.next().await.is_none());
    }

    #[tokio::test]
    async fn a_chunk_never_waits_for_one_that_has_not_arrived() {
        let (sender, receiver) = tokio::sync::mpsc::unbounded_channel::<Item>();
        let mut s = Coalesce::new(tokio_stream_from(receiver));
        sender.send(ok("first")).unwrap();
        let got = tokio::time::timeout(Duration::from_secs(1), s.next())
            .await
            .expect("held back waiting for more");
        assert_eq!(got.unwrap().unwrap(), "first");
        sender.send(ok("second")).unwrap();
        sender.send(ok("third")).unwrap();
        assert_eq!(s.next().await.unwrap().unwrap(), "secondthird");
        drop(sender);
        assert!(s.next().await.is_none());
    }

    #[tokio::test]
    async fn what_is_held_goes_out_before_an_error() {
        let mut s = Coalesce::new(stream::iter([
            ok("a"),
            ok("b"),
            Err(Error::Internal("x".into())),
            ok("never"),
        ]));
        assert_eq!(s.next().await.unwrap().unwrap(), "ab");
        assert!(s.next().await.unwrap().is_err());
        assert!(s.next().await.is_none());
        let mut s = Coalesce::new(stream::iter([Err(Error::Internal("x".into()))]));
        assert!(s.next().await.unwrap().is_err());
        assert!(s.next().await.is_none());
    }

    #[tokio::test]
    async fn big_bursts_are_split() {
        let big = Bytes::from(vec![b'x'; MAX_HELD]);
        let mut s = Coalesce::new(stream::iter([ok("a"), Ok(big), ok("b")]));
        assert_eq!(s.next().await.unwrap().unwrap().len(), MAX_HELD + 1);
        assert_eq!(s.next().await.unwrap().unwrap(), "b");
        assert!(s.next().await.is_none());
    }

    /// The reason for all this: chunks the outbound client has already read
    /// come out of its response body in one piece.
    #[tokio::test]
    async fn an_upstream_burst_read_at_once_goes_out_as_one() {
        use http_body_util::BodyExt;
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut buf = vec![0u8; 4096];
            let _ = socket.read(&mut buf).await.unwrap();
            socket
                .write_all(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n3\r\ndef\r\n3\r\nghi\r\n0\r\n\r\n")
                .await
                .unwrap();
            std::future::pending::<()>().await;
        });
        let clients = crate::outbound::Clients::build(&Default::default(), [], 1).unwrap();
        let request = axum::http::Request::post(format!("http://{addr}/"))
            .body(Bytes::new())
            .unwrap();
        let response = clients.get().request(request).await.unwrap();
        let body = response
            .into_body()
            .into_data_stream()
            .map(|r| r.map_err(|e| Error::Internal(e.to_string())));
        let mut s = Coalesce::new(body);
        assert_eq!(s.next().await.unwrap().unwrap(), "abcdefghi");
        assert!(s.next().await.is_none());
    }

    fn tokio_stream_from(
        mut rx: tokio::sync::mpsc::UnboundedReceiver<Item>,
    ) -> impl Stream<Item = Item> + Unpin {
        Box::pin(stream::poll_fn(move |cx| rx.poll_recv(cx)))
    }
}
