//! A minimal HTTP/1.1 keep-alive client: pre-built request bytes, one reused
//! read buffer per connection, `content-length` and `chunked` bodies (hyper's
//! client would hide the connection count).

use super::*;

pub(crate) struct Conn {
    pub(crate) stream: TcpStream,
    pub(crate) buf: Vec<u8>,
    pub(crate) pos: usize,
    pub(crate) len: usize,
}

/// The parts of a response the benchmark looks at.
pub(crate) struct Reply {
    pub(crate) status: u16,
    /// The connection may carry another request.
    pub(crate) keep_alive: bool,
    /// When the first body byte arrived (none for an empty body).
    pub(crate) first_byte: Option<Instant>,
}

pub(crate) fn invalid(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

impl Conn {
    pub(crate) async fn connect(addr: SocketAddr) -> io::Result<Conn> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(Conn {
            stream,
            buf: vec![0; 16 * 1024],
            pos: 0,
            len: 0,
        })
    }

    /// Reads more bytes into the buffer; EOF is an error (a response is
    /// always incomplete when more bytes are needed).
    pub(crate) async fn fill(&mut self) -> io::Result<()> {
        if self.pos == self.len {
            self.pos = 0;
            self.len = 0;
        } else if self.len == self.buf.len() {
            if self.pos > 0 {
                self.buf.copy_within(self.pos..self.len, 0);
                self.len -= self.pos;
                self.pos = 0;
            } else {
                let grown = self.buf.len() * 2;
                self.buf.resize(grown, 0);
            }
        }
        let n = self.stream.read(&mut self.buf[self.len..]).await?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed mid-response",
            ));
        }
        self.len += n;
        Ok(())
    }

    /// The next CRLF-terminated line, as a range into the buffer (valid
    /// until the next read).
    pub(crate) async fn line(&mut self) -> io::Result<(usize, usize)> {
        let mut from = self.pos;
        loop {
            if let Some(i) = self.buf[from..self.len]
                .windows(2)
                .position(|w| w == b"\r\n")
            {
                let start = self.pos;
                let end = from + i;
                self.pos = end + 2;
                return Ok((start, end));
            }
            // Searched up to len-1 (a CR may be the last byte).
            let searched = self.len.saturating_sub(1).max(self.pos);
            let offset = searched - self.pos;
            self.fill().await?;
            from = self.pos + offset;
        }
    }

    /// Skips `n` body bytes, noting when the first one arrived.
    pub(crate) async fn skip(
        &mut self,
        mut n: usize,
        first: &mut Option<Instant>,
        mut keep: Option<&mut Vec<u8>>,
    ) -> io::Result<()> {
        while n > 0 {
            if self.pos == self.len {
                self.fill().await?;
            }
            if first.is_none() {
                *first = Some(Instant::now());
            }
            let take = n.min(self.len - self.pos);
            if let Some(keep) = keep.as_deref_mut() {
                keep.extend_from_slice(&self.buf[self.pos..self.pos + take]);
            }
            self.pos += take;
            n -= take;
        }
        Ok(())
    }

    /// Sends `request` and reads the whole response; `keep` collects the
    /// body (for the preflight check only).
    pub(crate) async fn roundtrip(
        &mut self,
        request: &[u8],
        mut keep: Option<&mut Vec<u8>>,
    ) -> io::Result<Reply> {
        if self.pos != self.len {
            return Err(invalid("unexpected bytes before the response"));
        }
        self.stream.write_all(request).await?;

        // Status line.
        let (s, e) = self.line().await?;
        let status_line = &self.buf[s..e];
        if !status_line.starts_with(b"HTTP/1.") || status_line.len() < 12 {
            return Err(invalid(format!(
                "bad status line {:?}",
                String::from_utf8_lossy(status_line)
            )));
        }
        let http10 = status_line[7] == b'0';
        let status = std::str::from_utf8(&status_line[9..12])
            .ok()
            .and_then(|t| t.parse::<u16>().ok())
            .ok_or_else(|| invalid("bad status code"))?;

        // Headers.
        let mut content_length: Option<usize> = None;
        let mut chunked = false;
        let mut keep_alive = !http10;
        loop {
            let (s, e) = self.line().await?;
            if s == e {
                break;
            }
            let line = &self.buf[s..e];
            let Some(colon) = line.iter().position(|&b| b == b':') else {
                return Err(invalid("bad header line"));
            };
            let (name, value) = (&line[..colon], line[colon + 1..].trim_ascii());
            if name.eq_ignore_ascii_case(b"content-length") {
                let n = std::str::from_utf8(value)
                    .ok()
                    .and_then(|v| v.parse().ok())
                    .ok_or_else(|| invalid("bad content-length"))?;
                content_length = Some(n);
            } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
                chunked = value
                    .split(|&b| b == b',')
                    .any(|t| t.trim_ascii().eq_ignore_ascii_case(b"chunked"));
            } else if name.eq_ignore_ascii_case(b"connection") {
                if value.eq_ignore_ascii_case(b"close") {
                    keep_alive = false;
                } else if value.eq_ignore_ascii_case(b"keep-alive") {
                    keep_alive = true;
                }
            }
        }

        // Body.
        let mut first = None;
        if status == 204 || status == 304 || (100..200).contains(&status) {
            // No body.
        } else if chunked {
            loop {
                let (s, e) = self.line().await?;
                let line = &self.buf[s..e];
                let hex = line.split(|&b| b == b';').next().unwrap_or_default();
                let size = std::str::from_utf8(hex)
                    .ok()
                    .and_then(|h| usize::from_str_radix(h.trim(), 16).ok())
                    .ok_or_else(|| invalid("bad chunk size"))?;
                if size == 0 {
                    // Trailers, up to the empty line.
                    loop {
                        let (s, e) = self.line().await?;
                        if s == e {
                            break;
                        }
                    }
                    break;
                }
                self.skip(size, &mut first, keep.as_deref_mut()).await?;
                let (s, e) = self.line().await?;
                if s != e {
                    return Err(invalid("chunk not followed by CRLF"));
                }
            }
        } else if let Some(n) = content_length {
            self.skip(n, &mut first, keep.as_deref_mut()).await?;
        } else {
            // Body until EOF.
            loop {
                if self.pos < self.len && first.is_none() {
                    first = Some(Instant::now());
                }
                if let Some(keep) = keep.as_deref_mut() {
                    keep.extend_from_slice(&self.buf[self.pos..self.len]);
                }
                self.pos = self.len;
                match self.fill().await {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => break,
                    Err(e) => return Err(e),
                }
            }
            keep_alive = false;
        }
        Ok(Reply {
            status,
            keep_alive,
            first_byte: first,
        })
    }
}

/// The text every benchmark request sends (and the echo mocks answer).
pub(crate) const PROMPT: &str = "hello there, this is a benchmark request";

/// A complete chat POST, built once.
pub(crate) fn chat_request(addr: SocketAddr, path: &str, stream: bool, guardrail: bool) -> Vec<u8> {
    let body = format!(
        r#"{{"model":"bench-model","messages":[{{"role":"user","content":"{PROMPT}"}}]{}}}"#,
        options(stream, guardrail)
    );
    post(addr, path, "", &body)
}

/// A complete `/v1/messages` POST, built once, with the headers a Claude
/// client sends (the mock Anthropic requires them, as Anthropic does; the
/// gateway, without keys configured, ignores them).
pub(crate) fn messages_request(
    addr: SocketAddr,
    path: &str,
    stream: bool,
    guardrail: bool,
) -> Vec<u8> {
    let body = format!(
        r#"{{"model":"bench-model","max_tokens":256,"messages":[{{"role":"user","content":"{PROMPT}"}}]{}}}"#,
        options(stream, guardrail)
    );
    post(
        addr,
        path,
        "anthropic-version: 2023-06-01\r\nx-api-key: bench\r\n",
        &body,
    )
}

fn options(stream: bool, guardrail: bool) -> String {
    let mut out = String::new();
    if stream {
        out.push_str(r#","stream":true"#);
    }
    if guardrail {
        out.push_str(r#","guardrails":["aim-bench"]"#);
    }
    out
}

fn post(addr: SocketAddr, path: &str, headers: &str, body: &str) -> Vec<u8> {
    format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nAccept: */*\r\n{headers}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}
