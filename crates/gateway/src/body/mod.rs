//! Bodies read whole, bounded: the request body, and upstream and guardrail
//! answers within the gateway-wide memory [`budget`]; and the type of a body
//! streamed through ([`BodyStream`]), with the writer that coalesces what
//! arrives together ([`coalesce`]).

pub mod budget;
pub mod coalesce;

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, header};
use bytes::Bytes;
use futures_util::{Stream, StreamExt};

use crate::error::{Error, fmt_secs};

/// A response body as it arrives.
pub type BodyStream = Pin<Box<dyn Stream<Item = Result<Bytes, Error>> + Send>>;

/// The next piece of an upstream body, waiting at most `idle` for it: a
/// stall past `idle` is an [`Error::UpstreamTimeout`] item.
pub async fn next_within(body: &mut BodyStream, idle: Duration) -> Option<Result<Bytes, Error>> {
    match tokio::time::timeout(idle, body.next()).await {
        Ok(next) => next,
        Err(_) => Some(Err(Error::UpstreamTimeout(format!(
            "the upstream stalled for more than {}s",
            fmt_secs(idle)
        )))),
    }
}

/// Read the request body once, refusing it past `limit` bytes.
pub async fn read_body(body: Body, headers: &HeaderMap, limit: usize) -> Result<Bytes, Error> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(Error::PayloadTooLarge { limit });
    }
    // Outside the budget of answers: a request body is bounded by its own
    // limit and `request_body_timeout`.
    collect(body.into_data_stream(), limit, declared, None)
        .await
        .map_err(|e| match e {
            Collect::TooLarge | Collect::OverBudget => Error::PayloadTooLarge { limit },
            Collect::Failed(e) => {
                tracing::debug!(error = %e, "request body read failed");
                Error::invalid("Could not read the request body", None)
            }
        })
}

pub enum Collect<E> {
    TooLarge,
    /// The gateway-wide [`budget::Budget`] could not hold the body.
    OverBudget,
    Failed(E),
}

/// Gather a body of at most `limit` bytes, drawing on `budget` (none: the
/// body is outside the budget) as it grows; a declared length (`hint`) is
/// taken from the budget at once. One that arrives in a single chunk is
/// returned without a copy. The returned bytes hold their share of the
/// budget until the last copy of them is dropped.
pub async fn collect<S, E>(
    mut body: S,
    limit: usize,
    hint: Option<usize>,
    budget: Option<&Arc<budget::Budget>>,
) -> Result<Bytes, Collect<E>>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
{
    if hint.is_some_and(|n| n > limit) {
        return Err(Collect::TooLarge);
    }
    let mut share = budget::Share::new(budget);
    // A declared length is claimed before reading, so a body that cannot
    // fit is refused before its bytes arrive.
    if !share.resize(hint.unwrap_or(0)) {
        return Err(Collect::OverBudget);
    }
    let Some(first) = body.next().await else {
        return Ok(Bytes::new());
    };
    let first = first.map_err(Collect::Failed)?;
    if first.len() > limit {
        return Err(Collect::TooLarge);
    }
    let Some(second) = body.next().await else {
        if !share.resize(first.len()) {
            return Err(Collect::OverBudget);
        }
        return Ok(share.attach(first));
    };
    let second = second.map_err(Collect::Failed)?;
    // Boxed: most bodies are one chunk, and this state would make every
    // caller's future larger (and moved at a cost) for the exception.
    Box::pin(collect_rest(body, [first, second], limit, hint, share)).await
}

/// [`collect`] past its second chunk.
async fn collect_rest<S, E>(
    mut body: S,
    [first, second]: [Bytes; 2],
    limit: usize,
    hint: Option<usize>,
    mut share: budget::Share,
) -> Result<Bytes, Collect<E>>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
{
    let mut rope = Rope::new(hint.unwrap_or(0).min(limit));
    let mut next = Some(first);
    let mut after = Some(second);
    while let Some(chunk) = next {
        if rope.len + chunk.len() > limit {
            return Err(Collect::TooLarge);
        }
        if !rope.append(&chunk, &mut share) {
            return Err(Collect::OverBudget);
        }
        next = match after.take() {
            Some(c) => Some(c),
            None => match body.next().await {
                Some(c) => Some(c.map_err(Collect::Failed)?),
                None => None,
            },
        };
    }
    rope.into_bytes(share).ok_or(Collect::OverBudget)
}

/// A body gathered in pieces of our own: never one buffer grown by
/// reallocation (whose abandoned copies the allocator keeps, at two to
/// three times the body's size in RSS), nor the transport's chunks (which
/// can pin read buffers larger than themselves).
struct Rope {
    pieces: Vec<Vec<u8>>,
    len: usize,
}

/// The largest piece.
const PIECE: usize = 256 * 1024;

impl Rope {
    /// With a declared length, the first piece holds it all and the body
    /// is never copied again.
    fn new(declared: usize) -> Self {
        Rope {
            pieces: (declared > 0)
                .then(|| Vec::with_capacity(declared))
                .into_iter()
                .collect(),
            len: 0,
        }
    }

    fn capacity(&self) -> usize {
        self.pieces.iter().map(Vec::capacity).sum()
    }

    /// Copy `chunk` in, taking new pieces from the share; false when the
    /// budget cannot give them.
    fn append(&mut self, mut chunk: &[u8], share: &mut budget::Share) -> bool {
        while !chunk.is_empty() {
            let room = self.pieces.last().map_or(0, |p| p.capacity() - p.len());
            if room == 0 {
                // Small bodies start small; each piece doubles the last,
                // up to PIECE.
                let size = match self.pieces.last() {
                    None => chunk.len().clamp(4096, PIECE),
                    Some(last) => (last.capacity() * 2).clamp(4096, PIECE),
                };
                if !share.resize(self.capacity() + size) {
                    return false;
                }
                self.pieces.push(Vec::with_capacity(size));
                continue;
            }
            let n = room.min(chunk.len());
            if let Some(piece) = self.pieces.last_mut() {
                piece.extend_from_slice(&chunk[..n]);
            }
            self.len += n;
            chunk = &chunk[n..];
        }
        true
    }

    /// One contiguous body holding `share`; None when the copy that joins
    /// the pieces does not fit in the budget.
    fn into_bytes(mut self, mut share: budget::Share) -> Option<Bytes> {
        if self.pieces.len() <= 1 {
            let body = self.pieces.pop().unwrap_or_default();
            share.resize(body.capacity());
            return Some(share.attach(body));
        }
        // The pieces and the joined copy exist together for a moment.
        if !share.resize(self.capacity() + self.len) {
            return None;
        }
        let mut body = Vec::with_capacity(self.len);
        for piece in self.pieces {
            body.extend_from_slice(&piece);
        }
        share.resize(body.capacity());
        Some(share.attach(body))
    }
}

#[cfg(test)]
mod collect_tests {
    use super::*;

    fn chunks(sizes: &[usize]) -> impl Stream<Item = Result<Bytes, ()>> + Unpin {
        futures_util::stream::iter(
            sizes
                .iter()
                .map(|&n| Ok(Bytes::from(vec![b'x'; n])))
                .collect::<Vec<_>>(),
        )
    }

    #[tokio::test]
    async fn limits_hold_however_the_body_is_split() {
        assert!(matches!(
            collect(chunks(&[800, 800]), 1000, None, None).await,
            Err(Collect::TooLarge)
        ));
        assert!(matches!(
            collect(chunks(&[800, 800]), 1000, Some(5000), None).await,
            Err(Collect::TooLarge)
        ));
        assert!(matches!(
            collect(chunks(&[1001]), 1000, None, None).await,
            Err(Collect::TooLarge)
        ));
        assert_eq!(
            collect(chunks(&[400, 300, 300]), 1000, Some(1), None)
                .await
                .ok()
                .map(|b| b.len()),
            Some(1000)
        );
        assert_eq!(
            collect(chunks(&[]), 1000, None, None)
                .await
                .ok()
                .map(|b| b.len()),
            Some(0)
        );
    }

    #[tokio::test]
    async fn bodies_draw_on_the_budget_until_dropped() {
        const K: usize = 1024;
        let budget = budget::Budget::new(64 * K, 64 * K);
        let take = |sizes: &'static [usize], hint| {
            let budget = budget.clone();
            async move { collect(chunks(sizes), 64 * K, hint, Some(&budget)).await }
        };
        // Two small chunks: one piece of 4 KiB.
        let a = take(&[1000, 1000], None).await.ok().unwrap();
        assert_eq!(a.len(), 2000);
        assert_eq!(budget.used(), 4 * K);
        // One chunk: taken as it is, for its length.
        let b = take(&[40 * K], None).await.ok().unwrap();
        assert_eq!(budget.used(), 44 * K);
        // Pieces of 10 and 20 KiB, then the joined copy: past what is
        // left, refused, and what it took comes back.
        assert!(matches!(
            take(&[10 * K, 10 * K], None).await,
            Err(Collect::OverBudget)
        ));
        assert_eq!(budget.used(), 44 * K);
        // A declared length is claimed before a byte is read.
        assert!(matches!(
            take(&[10], Some(30 * K)).await,
            Err(Collect::OverBudget)
        ));
        assert_eq!(budget.used(), 44 * K);
        drop(a);
        drop(b);
        assert_eq!(budget.used(), 0);
        // Past the per-body limit, whatever the budget.
        assert!(matches!(
            take(&[40 * K, 40 * K], None).await,
            Err(Collect::TooLarge)
        ));
        assert!(matches!(
            take(&[10], Some(65 * K)).await,
            Err(Collect::TooLarge)
        ));
        assert_eq!(budget.used(), 0);

        // Many pieces joined: the body's share is its own length.
        let roomy = budget::Budget::new(1 << 20, 1 << 20);
        let body = collect(chunks(&[16 * K; 4]), 64 * K, None, Some(&roomy))
            .await
            .ok()
            .unwrap();
        assert_eq!(body.len(), 64 * K);
        assert!(body.iter().all(|&b| b == b'x'));
        assert_eq!(roomy.used(), 64 * K);
        drop(body);
        assert_eq!(roomy.used(), 0);
        // With the length declared, one piece and no copy.
        let body = collect(chunks(&[16 * K; 4]), 64 * K, Some(64 * K), Some(&roomy))
            .await
            .ok()
            .unwrap();
        assert_eq!(body.len(), 64 * K);
        assert_eq!(roomy.used(), 64 * K);
    }
}
