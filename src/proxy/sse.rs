//! Server-sent events from an upstream body, split into `data:` payloads.
//! Only used where the gateway must look inside a stream; a stream nobody
//! inspects is passed through as raw bytes.

use bytes::{Buf, Bytes, BytesMut};

/// One event of an OpenAI stream.
#[derive(Debug, PartialEq, Eq)]
pub enum Event {
    /// The JSON after `data: `.
    Data(Bytes),
    /// `data: [DONE]`.
    Done,
}

/// Incremental parser: feed it body chunks, it returns complete events.
#[derive(Default)]
pub struct Parser {
    buf: BytesMut,
    data: Vec<u8>,
    has_data: bool,
}

/// A line longer than this without a newline is not SSE worth buffering.
const MAX_LINE: usize = 16 * 1024 * 1024;

impl Parser {
    pub fn push(&mut self, chunk: &[u8], out: &mut Vec<Event>) -> Result<(), &'static str> {
        self.buf.extend_from_slice(chunk);
        while let Some(pos) = self.buf.iter().position(|&b| b == b'\n') {
            let line = self.buf.split_to(pos + 1);
            let mut line = &line[..pos];
            if line.last() == Some(&b'\r') {
                line = &line[..line.len() - 1];
            }
            self.line(line, out);
        }
        if self.buf.len() > MAX_LINE {
            return Err("an SSE line is too long");
        }
        Ok(())
    }

    /// The body ended: whatever was pending is one last event.
    pub fn finish(&mut self, out: &mut Vec<Event>) {
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
}
