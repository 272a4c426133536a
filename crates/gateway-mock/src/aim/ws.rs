//! The streaming websocket: verified chunks, blocking messages, and the
//! ways it can misbehave (slow answers, a socket it stops reading, drops).

use super::*;

pub(super) async fn analyze_stream(
    State(st): State<AppState>,
    headers: HeaderMap,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let opts = st.shared.options();
    if let Err(detail) = check_auth(&headers, &opts.api_key) {
        return json_response(StatusCode::UNAUTHORIZED, detail);
    }
    match &opts.failure {
        Some(AimFailure::Status { status, body }) => {
            let status = StatusCode::from_u16(*status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            return json_response(status, body.clone());
        }
        Some(AimFailure::Hang) => std::future::pending().await,
        Some(AimFailure::Garbage) | None => {}
    }
    let ws = match ws {
        Ok(ws) => ws,
        Err(rejection) => return rejection.into_response(),
    };
    let record = opts.record.then(|| {
        let rec = Arc::new(Mutex::new(RecordedStream {
            headers: header_pairs(&headers),
            ..RecordedStream::default()
        }));
        push_capped(&st.shared.streams, rec.clone());
        rec
    });
    let closed = st.closed.clone();
    ws.on_upgrade(move |socket| {
        let session = Session {
            socket,
            opts,
            record,
            redactor: Redactor::default(),
            chunks: 0,
            tails: Default::default(),
        };
        session.run(closed)
    })
}

/// What to do with one received frame.
pub(super) enum Reply {
    /// Send this and keep reading.
    Send(String),
    /// Send this, then close normally.
    SendAndClose(String),
    /// Cut the connection without a word.
    Drop,
    /// Close with an error code and reason.
    Error(&'static str),
}

pub(super) struct Session {
    pub(super) socket: WebSocket,
    pub(super) opts: Arc<AimOptions>,
    pub(super) record: Option<Arc<Mutex<RecordedStream>>>,
    pub(super) redactor: Redactor,
    /// Chunk frames received so far, for `ws_drop_after`.
    pub(super) chunks: usize,
    /// The end of each field's text so far (at most [`TAIL`] bytes), so an
    /// address or a marker split over chunks is found too, as Aim, which
    /// sees the whole stream, finds it.
    pub(super) tails: std::collections::HashMap<String, String>,
}

/// How much of the text before a chunk the detector looks back over.
const TAIL: usize = 1024;

/// Close code for "invalid frame payload data" (RFC 6455, 7.4.1).
pub(super) const CLOSE_INVALID_PAYLOAD: u16 = 1007;
pub(super) const CLOSE_NORMAL: u16 = 1000;

impl Session {
    pub(super) async fn run(mut self, mut closed: watch::Receiver<()>) {
        let interval = Duration::from_millis(self.opts.ws_answer_interval_ms);
        // Frames read and not yet answered (more than one only with
        // `ws_answer_interval_ms`).
        let mut queue: VecDeque<String> = VecDeque::new();
        let mut next_answer = tokio::time::Instant::now();
        let mut read = 0;
        loop {
            let reading = self.opts.ws_stop_reading_after.is_none_or(|n| read < n);
            let due = !queue.is_empty();
            let msg = tokio::select! {
                biased;
                _ = closed.changed() => return,
                _ = tokio::time::sleep_until(next_answer), if due => None,
                msg = self.socket.recv(), if reading => Some(msg),
            };
            let Some(msg) = msg else {
                next_answer = tokio::time::Instant::now() + interval;
                if let Some(text) = queue.pop_front()
                    && !self.answer(&text, &mut closed).await
                {
                    return;
                }
                continue;
            };
            let text = match msg {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => {
                    if let Some(rec) = &self.record {
                        lock(rec).ended = true;
                    }
                    return;
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                Some(Ok(Message::Text(t))) => t.as_str().to_owned(),
                Some(Ok(Message::Binary(b))) => match String::from_utf8(b.into()) {
                    Ok(t) => t,
                    Err(_) => {
                        self.close(CLOSE_INVALID_PAYLOAD, "frame is not UTF-8", &mut closed)
                            .await;
                        return;
                    }
                },
            };
            if let Some(rec) = &self.record {
                lock(rec).frames.push(text.clone());
            }
            read += 1;
            queue.push_back(text);
        }
    }

    /// Answer one frame; false when the session is over.
    pub(super) async fn answer(&mut self, text: &str, closed: &mut watch::Receiver<()>) -> bool {
        match self.reply(text) {
            Reply::Send(out) => self.send(out).await,
            Reply::SendAndClose(out) => {
                if self.send(out).await {
                    self.close(CLOSE_NORMAL, "", closed).await;
                }
                false
            }
            // Dropping the socket closes the TCP connection without a
            // close frame.
            Reply::Drop => false,
            Reply::Error(reason) => {
                self.close(CLOSE_INVALID_PAYLOAD, reason, closed).await;
                false
            }
        }
    }

    pub(super) fn reply(&mut self, text: &str) -> Reply {
        let Ok(Value::Object(frame)) = serde_json::from_str::<Value>(text) else {
            return Reply::Error("frame is not a JSON object");
        };
        if frame.get("done") == Some(&Value::Bool(true)) {
            return match self.opts.failure {
                Some(AimFailure::Garbage) => Reply::Send("not json{".to_owned()),
                _ => Reply::SendAndClose(r#"{"done": true}"#.to_owned()),
            };
        }
        self.chunks += 1;
        if self.opts.ws_drop_after.is_some_and(|k| self.chunks >= k) {
            return Reply::Drop;
        }
        if self.opts.failure == Some(AimFailure::Garbage) {
            return Reply::Send("not json{".to_owned());
        }
        let mut frame = Value::Object(frame);
        // Every text of every choice's delta (content, refusal, reasoning,
        // tool call arguments; a redaction touches `content` only), each
        // after the tail of the same field's text in earlier chunks. Only
        // what ends in this chunk is found here (what ended before was
        // found then).
        let mut found = None;
        for (i, c) in frame["choices"]
            .as_array()
            .into_iter()
            .flatten()
            .enumerate()
        {
            for (field, t) in texts(&c["delta"], format!("{i}")) {
                let tail = self.tails.entry(field).or_default();
                let before = tail.len();
                let mut seen = std::mem::take(tail);
                seen.push_str(&t);
                if found.is_none() {
                    found = detect(&self.opts, &seen, before);
                }
                let mut cut = seen.len().saturating_sub(TAIL);
                while !seen.is_char_boundary(cut) {
                    cut += 1;
                }
                *tail = seen[cut..].to_owned();
            }
        }
        if let Some(message) = found {
            return blocking(&message);
        }
        match self.opts.mode {
            AimMode::Anonymize => {
                let mut changed = false;
                if let Some(choices) = frame.get_mut("choices").and_then(Value::as_array_mut) {
                    for choice in choices {
                        let Some(content) = choice.pointer_mut("/delta/content") else {
                            continue;
                        };
                        let redacted = content.as_str().and_then(|c| self.redactor.redact(c));
                        if let Some(redacted) = redacted {
                            *content = Value::String(redacted);
                            changed = true;
                        }
                    }
                }
                if changed {
                    return Reply::Send(to_string(&serde_json::json!({ "verified_chunk": frame })));
                }
            }
            AimMode::Block | AimMode::Monitor | AimMode::Pass | AimMode::Raw(_) => {}
        }
        // The chunk exactly as received.
        Reply::Send(format!(r#"{{"verified_chunk":{}}}"#, text.trim()))
    }

    /// Sends a text frame and records it; false when the peer is gone.
    async fn send(&mut self, text: String) -> bool {
        if let Some(rec) = &self.record {
            lock(rec).sent.push(text.clone());
        }
        let sent = self.socket.send(Message::Text(text.into())).await.is_ok();
        if !sent && let Some(rec) = &self.record {
            lock(rec).ended = true;
        }
        sent
    }

    /// Sends a close frame and waits (briefly) for the peer's, so the close
    /// handshake completes instead of looking like a dropped connection.
    async fn close(&mut self, code: u16, reason: &'static str, closed: &mut watch::Receiver<()>) {
        let frame = CloseFrame {
            code,
            reason: reason.into(),
        };
        if self.socket.send(Message::Close(Some(frame))).await.is_err() {
            return;
        }
        let drain = async {
            while let Some(Ok(msg)) = self.socket.recv().await {
                if matches!(msg, Message::Close(_)) {
                    break;
                }
            }
        };
        tokio::select! {
            _ = tokio::time::timeout(Duration::from_secs(2), drain) => {}
            _ = closed.changed() => {}
        }
    }
}

fn blocking(message: &str) -> Reply {
    #[derive(Serialize)]
    struct Blocking<'a> {
        blocking_message: &'a str,
    }
    Reply::SendAndClose(to_string(&Blocking {
        blocking_message: message,
    }))
}

fn to_string<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

/// The blocking message for a marker or (in block mode) an address in
/// `seen` that ends past `before`.
fn detect(opts: &AimOptions, seen: &str, before: usize) -> Option<String> {
    if let Some(marker) = opts.stream_block_marker.as_deref()
        && seen
            .match_indices(marker)
            .any(|(i, m)| i + m.len() > before)
    {
        return Some(format!("Stream blocked: found \"{marker}\""));
    }
    if opts.mode != AimMode::Block {
        return None;
    }
    let r = find_emails(seen).into_iter().find(|r| r.end > before)?;
    Some(detection_message(&seen[r]))
}

/// The texts of a chunk's delta, each with the field it continues: object
/// members by key (a list item by its `index` when it has one), leaving out
/// the members that carry no text (`role`, `type`, `id`, `index`,
/// `signature`).
fn texts(v: &Value, path: String) -> Vec<(String, String)> {
    match v {
        Value::String(s) => vec![(path, s.clone())],
        Value::Array(items) => items
            .iter()
            .enumerate()
            .flat_map(|(i, item)| {
                let i = item["index"].as_u64().map_or(i as u64, |n| n);
                texts(item, format!("{path}.{i}"))
            })
            .collect(),
        Value::Object(map) => map
            .iter()
            .filter(|(k, _)| !matches!(k.as_str(), "role" | "type" | "id" | "index" | "signature"))
            .flat_map(|(k, item)| texts(item, format!("{path}.{k}")))
            .collect(),
        _ => vec![],
    }
}
