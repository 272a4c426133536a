//! `POST /v1/chat/completions`: the options in force decide the answer.

use super::*;

pub(super) async fn chat(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let flight = InFlight::new(&shared);
    let opts = shared.options();
    let seq = shared.requests.fetch_add(1, Relaxed) + 1;
    let entry = opts
        .record
        .then(|| shared.log.push(&method, uri.path(), &headers, body.clone()));

    if opts.latency_ms > 0 {
        tokio::time::sleep(Duration::from_millis(opts.latency_ms)).await;
    }

    let req: ChatRequest = match serde_json::from_slice(&body) {
        Ok(req) => req,
        Err(e) => {
            let msg = invalid_request_message(&body, &e);
            return record_and_respond(
                entry.as_deref(),
                StatusCode::BAD_REQUEST,
                openai_error(&msg, None),
            );
        }
    };

    let failure = opts.failure.as_ref().filter(|_| {
        opts.fail_first
            .is_none_or(|k| shared.since_options.fetch_add(1, Relaxed) < k)
    });
    let streaming = req.stream.unwrap_or(false);
    let endless = failure == Some(&Failure::EndlessEvent);
    let (frames_to_send, end) = match failure {
        None => (usize::MAX, End::Finish),
        Some(Failure::Status {
            status,
            body,
            retry_after,
        }) => {
            let status = StatusCode::from_u16(*status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let mut resp = record_and_respond(entry.as_deref(), status, body.clone().into_bytes());
            if let Some(secs) = retry_after {
                resp.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(*secs));
            }
            return resp;
        }
        Some(Failure::Hang) => std::future::pending().await,
        Some(Failure::ContextLength) => {
            return record_and_respond(
                entry.as_deref(),
                StatusCode::BAD_REQUEST,
                CONTEXT_LENGTH_BODY.into(),
            );
        }
        Some(Failure::ContentPolicy) => {
            return record_and_respond(
                entry.as_deref(),
                StatusCode::BAD_REQUEST,
                CONTENT_POLICY_BODY.into(),
            );
        }
        Some(Failure::StallAfter { chunks }) => (*chunks, End::Stall),
        Some(Failure::CloseAfter { chunks }) => (*chunks, End::Abort),
        Some(Failure::EndlessEvent) => (usize::MAX, End::Finish),
    };

    if let (false, Some(body)) = (streaming, &opts.completion) {
        return record_and_respond(entry.as_deref(), StatusCode::OK, body.clone().into_bytes());
    }
    let content: Cow<'_, str> = match &opts.reply {
        Some(reply) => Cow::Borrowed(reply),
        None => req.messages.last().map_or(Cow::Borrowed(""), Message::text),
    };
    let prompt_tokens: usize = req.messages.iter().map(|m| words(&m.text())).sum();
    let id = format!("chatcmpl-mock-{seq}");
    let created = crate::unix_secs();

    if !streaming {
        if end != End::Finish {
            // A non-streaming request under stall/close: the head goes out,
            // the body never completes.
            return cut_body(entry, flight, end);
        }
        let n = req.n.unwrap_or(1).max(1);
        let completion_tokens = words(&content) * n;
        let completion = Completion {
            id: &id,
            object: "chat.completion",
            created,
            model: &req.model,
            choices: (0..n)
                .map(|index| Choice {
                    index,
                    message: AssistantMessage {
                        role: "assistant",
                        content: &content,
                    },
                    finish_reason: "stop",
                })
                .collect(),
            usage: Usage {
                prompt_tokens,
                completion_tokens,
                total_tokens: prompt_tokens + completion_tokens,
            },
        };
        let body = to_json(&completion);
        if endless {
            // Not recorded: it would grow the record without end.
            let spaces = Bytes::from(vec![b' '; 64 * 1024]);
            let frames = std::iter::once(Bytes::from(body)).chain(std::iter::repeat(spaces));
            return json_body(body_stream(BodyState {
                frames: Box::new(frames),
                entry: None,
                interval: Duration::from_millis(opts.chunk_interval_ms),
                first: true,
                end,
                guard: StreamGuard {
                    flight,
                    counts: false,
                    finished: false,
                },
            }));
        }
        if opts.body_pause_ms > 0 {
            let mut body = Bytes::from(body);
            let first = body.split_to(body.len() / 2);
            return json_body(body_stream(BodyState {
                frames: Box::new([first, body].into_iter()),
                entry,
                interval: Duration::from_millis(opts.body_pause_ms),
                first: true,
                end,
                guard: StreamGuard {
                    flight,
                    counts: false,
                    finished: false,
                },
            }));
        }
        return record_and_respond(entry.as_deref(), StatusCode::OK, body);
    }

    let chunks = if opts.chunks == 0 { 3 } else { opts.chunks };
    let include_usage = req
        .stream_options
        .as_ref()
        .and_then(|o| o.include_usage)
        .unwrap_or(false);
    let usage = include_usage.then(|| {
        let completion_tokens = words(&content);
        Usage {
            prompt_tokens,
            completion_tokens,
            total_tokens: prompt_tokens + completion_tokens,
        }
    });
    let mut frames = match &opts.stream_chunks {
        Some(raw) => raw
            .iter()
            .map(|data| Bytes::from(format!("data: {data}\n\n")))
            .chain([Bytes::from_static(b"data: [DONE]\n\n")])
            .collect(),
        None => stream_frames(&id, created, &req.model, &content, chunks, usage),
    };
    if end != End::Finish || endless {
        // Only data frames count; `[DONE]` is never sent by a failing stream.
        frames.truncate(frames_to_send.min(frames.len() - 1));
    }
    let (frames, entry): (Box<dyn Iterator<Item = Bytes> + Send>, _) = if endless {
        // Each frame's blank line cut to a newline, so one event never
        // ends; not recorded, as it would grow the record without end.
        let lines: Vec<Bytes> = frames.into_iter().map(|f| f.slice(..f.len() - 1)).collect();
        (Box::new(lines.into_iter().cycle()), None)
    } else {
        (Box::new(frames.into_iter()), entry)
    };
    let body = body_stream(BodyState {
        frames,
        entry,
        interval: Duration::from_millis(opts.chunk_interval_ms),
        first: true,
        end,
        guard: StreamGuard {
            flight,
            counts: true,
            finished: false,
        },
    });
    sse_response(body)
}

pub(super) fn cut_body(entry: Option<Arc<Entry>>, flight: InFlight, end: End) -> Response {
    let body = body_stream(BodyState {
        frames: Box::new(std::iter::empty()),
        entry,
        interval: Duration::ZERO,
        first: true,
        end,
        guard: StreamGuard {
            flight,
            counts: false,
            finished: false,
        },
    });
    json_body(body)
}

pub(super) fn json_body(body: Body) -> Response {
    let mut resp = Response::new(body);
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

pub(super) fn sse_response(body: Body) -> Response {
    let mut resp = Response::new(body);
    let headers = resp.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    resp
}
