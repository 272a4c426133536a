//! Server-sent events from an upstream body, split into `data:` payloads.
//!
//! This is the one SSE parser of the gateway: every path that looks inside
//! a stream (the post_call relay, usage metering, and any provider adapter
//! to come) goes through [`Parser`], so the bound on an event holds
//! everywhere. A stream nobody inspects is passed through as raw bytes and
//! never parsed.
//!
//! One event (its `data:` lines joined, plus the line being read) is at most
//! [`MAX_EVENT`] bytes. An upstream that goes past it (a line that never
//! ends, or `data:` lines that never meet the blank line ending their event)
//! gets [`EventTooLarge`], and the stream ends with an error frame, instead
//! of the gateway buffering whatever it sends.

use bytes::{Buf, Bytes, BytesMut};

/// The most one SSE event may hold, in bytes. OpenAI's chunks are a few
/// hundred bytes; even a chunk carrying a whole long answer fits.
pub const MAX_EVENT: usize = 1024 * 1024;

/// One event of an OpenAI stream.
#[derive(Debug, PartialEq, Eq)]
pub enum Event {
    /// The JSON after `data: `.
    Data(Bytes),
    /// `data: [DONE]`.
    Done,
}

/// An event went past [`MAX_EVENT`]; the stream cannot be read further.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventTooLarge;

impl std::fmt::Display for EventTooLarge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the upstream sent a stream event over {} bytes",
            MAX_EVENT
        )
    }
}

/// Incremental parser: feed it body chunks, it returns complete events.
#[derive(Default)]
pub struct Parser {
    buf: BytesMut,
    /// Bytes of `buf` already searched for a newline: a line arriving in
    /// many small pieces is scanned once, not once per piece.
    scanned: usize,
    data: Vec<u8>,
    has_data: bool,
}

impl Parser {
    pub fn push(&mut self, chunk: &[u8], out: &mut Vec<Event>) -> Result<(), EventTooLarge> {
        self.buf.extend_from_slice(chunk);
        while let Some(at) = self.buf[self.scanned..].iter().position(|&b| b == b'\n') {
            let pos = self.scanned + at;
            self.scanned = 0;
            let line = self.buf.split_to(pos + 1);
            let mut line = &line[..pos];
            if line.last() == Some(&b'\r') {
                line = &line[..line.len() - 1];
            }
            self.line(line, out);
            if self.data.len() > MAX_EVENT {
                return Err(EventTooLarge);
            }
        }
        self.scanned = self.buf.len();
        if self.buf.len() + self.data.len() > MAX_EVENT {
            return Err(EventTooLarge);
        }
        Ok(())
    }

    /// The body ended: whatever was pending is one last event.
    pub fn finish(&mut self, out: &mut Vec<Event>) {
        self.scanned = 0;
        if !self.buf.is_empty() {
            let rest = self.buf.split();
            self.line(rest.chunk(), out);
        }
        self.dispatch(out);
    }

    fn line(&mut self, line: &[u8], out: &mut Vec<Event>) {
        if line.is_empty() {
            self.dispatch(out);
        } else if let Some(value) = line.strip_prefix(b"data:") {
            let value = value.strip_prefix(b" ").unwrap_or(value);
            if self.has_data {
                self.data.push(b'\n');
            }
            self.data.extend_from_slice(value);
            self.has_data = true;
        }
        // `event:`, `id:`, `retry:` and `:` comments carry nothing we forward.
    }

    fn dispatch(&mut self, out: &mut Vec<Event>) {
        if !self.has_data {
            return;
        }
        self.has_data = false;
        let data = std::mem::take(&mut self.data);
        if data.trim_ascii() == b"[DONE]" {
            out.push(Event::Done);
        } else {
            out.push(Event::Data(Bytes::from(data)));
        }
    }
}

/// `data: <payload>\n\n`
pub fn frame(payload: &[u8]) -> Bytes {
    let mut f = Vec::with_capacity(payload.len() + 8);
    f.extend_from_slice(b"data: ");
    f.extend_from_slice(payload);
    f.extend_from_slice(b"\n\n");
    f.into()
}

pub const DONE_FRAME: &[u8] = b"data: [DONE]\n\n";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_across_chunks() {
        let mut p = Parser::default();
        let mut out = vec![];
        p.push(b"data: {\"a\"", &mut out).unwrap();
        assert!(out.is_empty());
        p.push(b":1}\r\n\r\n: comment\n\ndata: [DONE]\n", &mut out)
            .unwrap();
        p.push(b"\n", &mut out).unwrap();
        assert_eq!(
            out,
            vec![Event::Data(Bytes::from_static(b"{\"a\":1}")), Event::Done]
        );
    }

    #[test]
    fn unterminated_last_event() {
        let mut p = Parser::default();
        let mut out = vec![];
        p.push(b"data:{}\n\ndata:[DONE]", &mut out).unwrap();
        p.finish(&mut out);
        assert_eq!(
            out,
            vec![Event::Data(Bytes::from_static(b"{}")), Event::Done]
        );
    }

    #[test]
    fn an_event_is_bounded_however_it_arrives() {
        // `data:` lines that never meet a blank line.
        let mut p = Parser::default();
        let mut out = vec![];
        let line = format!("data: {}\n", "x".repeat(1000));
        let mut sent = 0;
        let err = loop {
            if let Err(e) = p.push(line.as_bytes(), &mut out) {
                break e;
            }
            sent += line.len();
            assert!(sent < 2 * MAX_EVENT, "still buffering at {sent}");
        };
        assert_eq!(err, EventTooLarge);
        assert!(out.is_empty());

        // One line that never ends, a byte at a time.
        let mut p = Parser::default();
        let mut n = 0;
        while p.push(b"y", &mut out).is_ok() {
            n += 1;
        }
        assert_eq!(n, MAX_EVENT);

        // An event just under the bound is fine, and the parser goes on.
        let mut p = Parser::default();
        let big = format!("data: {}\n\ndata: [DONE]\n\n", "z".repeat(MAX_EVENT - 16));
        for piece in big.as_bytes().chunks(4096) {
            p.push(piece, &mut out).unwrap();
        }
        assert_eq!(out.len(), 2);
        assert_eq!(out[1], Event::Done);
    }
}
