//! Bounded in time and memory whatever Aim and the upstream do (aim.md
//! section 7 point 5): each way a peer can misbehave, against the real
//! `gateway` binary run as a child process (so its RSS is its own, not the
//! test's) and the in-process mocks.
//!
//! Every case checks the time to the error frame, that `/metrics` shows no
//! request in flight afterwards, that a key with `max_parallel_requests: 1`
//! is served again within a second, and that the gateway's peak RSS stays
//! under [`RSS_BOUND_MB`] (the README's figure: idle RSS of a debug build is
//! about 25 MB).

// Tests: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![cfg(target_os = "linux")]

mod common;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use gateway_mock::aim::{AimMode, AimOptions, MockAim};
use gateway_mock::upstream::{Failure, MockUpstream, UpstreamOptions};
use serde_json::{Value, json};

/// The gateway's peak RSS (VmHWM) in every test here.
const RSS_BOUND_MB: f64 = 64.0;

/// A key that may have one request in flight.
const ONE: &str = "sk-one-at-a-time";
/// A key without a parallel limit.
const MANY: &str = "sk-many";

/// The `gateway` binary on a free port, killed when dropped.
struct Gateway {
    child: Child,
    url: String,
    config: PathBuf,
}

impl Gateway {
    async fn start(yaml: &str) -> Gateway {
        let config =
            std::env::temp_dir().join(format!("gateway-bounds-{}.yaml", uuid::Uuid::new_v4()));
        std::fs::write(&config, yaml).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(env!("CARGO_BIN_EXE_gateway"))
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .arg("--config")
            .arg(&config)
            .env("RUST_LOG", "error")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let gw = Gateway {
            child,
            url: format!("http://127.0.0.1:{port}"),
            config,
        };
        let mut gw = gw;
        let started = Instant::now();
        loop {
            if let Ok(Some(status)) = gw.child.try_wait() {
                panic!("the gateway exited at startup ({status}):\n{yaml}");
            }
            let ready = common::client()
                .get(format!("{}/health/readiness", gw.url))
                .send()
                .await;
            if ready.is_ok_and(|r| r.status() == 200) {
                return gw;
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "the gateway did not start"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// VmHWM: the most the process ever held.
    fn peak_rss_mb(&self) -> f64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let kb: f64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap();
        kb / 1024.0
    }

    fn assert_rss_bounded(&self) {
        let peak = self.peak_rss_mb();
        assert!(
            peak < RSS_BOUND_MB,
            "the gateway's peak RSS is {peak:.1} MB (bound {RSS_BOUND_MB} MB)"
        );
    }

    async fn chat(&self, key: &str, body: &Value) -> reqwest::Response {
        common::client()
            .post(format!("{}/v1/chat/completions", self.url))
            .bearer_auth(key)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    async fn in_flight(&self) -> f64 {
        self.metric("gateway_requests_in_flight").await
    }

    /// The value of an unlabelled metric on `/metrics`.
    async fn metric(&self, name: &str) -> f64 {
        let text = common::client()
            .get(format!("{}/metrics", self.url))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("{name} not in /metrics"))
    }

    /// Within a second of `since`: nothing in flight, and the key limited
    /// to one request at a time is served again.
    async fn assert_released(&self, since: Instant, what: &str) {
        let deadline = since + Duration::from_secs(1);
        loop {
            if self.in_flight().await == 0.0 {
                let r = self
                    .chat(
                        ONE,
                        &json!({"model": "plain", "messages": [{"role": "user", "content": "x"}]}),
                    )
                    .await;
                if r.status() == 200 {
                    return;
                }
                assert_eq!(r.status(), 429, "{what}: {}", r.text().await.unwrap());
            }
            assert!(
                Instant::now() < deadline,
                "{what}: still holding a request (in flight: {}) {:?} later",
                self.in_flight().await,
                since.elapsed()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Read a streamed answer to its end, failing when it takes longer than
    /// `limit` or the gateway's RSS goes past the bound on the way (so a
    /// regression fails fast instead of eating the machine). Returns the
    /// body and when it ended.
    async fn read_to_end(&self, resp: reqwest::Response, limit: Duration) -> (String, Instant) {
        let started = Instant::now();
        let mut body = Vec::new();
        let mut stream = resp.bytes_stream();
        loop {
            let next = tokio::time::timeout(Duration::from_millis(100), stream.next()).await;
            self.assert_rss_bounded();
            assert!(
                started.elapsed() < limit,
                "the stream did not end within {limit:?}; it sent {} bytes",
                body.len()
            );
            match next {
                Err(_) => continue,
                Ok(None) => break,
                Ok(Some(chunk)) => body.extend_from_slice(&chunk.unwrap()),
            }
        }
        (String::from_utf8_lossy(&body).into_owned(), Instant::now())
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        eprintln!("the gateway's peak RSS: {:.1} MB", self.peak_rss_mb());
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.config);
    }
}

/// Model `m` on `up`, model `plain` answering without a network call,
/// guardrails `aim` (timeout `timeout` s) and `aim-patient` (30 s) on
/// `aim`, and the two keys. `extra`: more top-level YAML.
fn config(up: &MockUpstream, aim: &MockAim, timeout: f64, extra: &str) -> String {
    format!(
        "model_list:
  - model_name: m
    litellm_params:
      model: openai/m
      api_base: {up}
      api_key: sk-upstream
  - model_name: plain
    litellm_params:
      model: openai/plain
      mock_response: ok
guardrails:
  - guardrail_name: aim
    litellm_params:
      guardrail: aim
      mode: post_call
      api_key: aim-mock-key
      api_base: {aim}
      timeout: {timeout}
  - guardrail_name: aim-patient
    litellm_params:
      guardrail: aim
      mode: post_call
      api_key: aim-mock-key
      api_base: {aim}
      timeout: 30
virtual_keys:
  - key: {ONE}
    max_parallel_requests: 1
  - key: {MANY}
{extra}",
        up = up.url(),
        aim = aim.url(),
    )
}

fn guarded_stream(guardrail: &str) -> Value {
    json!({
        "model": "m",
        "stream": true,
        "messages": [{"role": "user", "content": "go"}],
        "guardrails": [guardrail]
    })
}

/// The `data:` payloads of an SSE body.
fn events(body: &str) -> Vec<&str> {
    body.split("\n\n")
        .filter_map(|e| e.strip_prefix("data: "))
        .collect()
}

/// The last event, as the error frame it should be.
fn error_frame(body: &str) -> Value {
    let last = events(body).last().copied().unwrap_or_default();
    let v: Value = serde_json::from_str(last).unwrap_or_else(|_| {
        panic!(
            "the stream does not end with an error frame: ...{:?}",
            &body[body.len().saturating_sub(300)..]
        )
    });
    assert!(v["error"].is_object(), "{v}");
    assert!(!body.contains("[DONE]"));
    v
}

/// A long answer: `mb` MB of text in chunks of about 4 KB.
fn long_answer(mb: usize) -> UpstreamOptions {
    UpstreamOptions {
        reply: Some("lorem ipsum ".repeat(mb * 1024 * 1024 / 12)),
        chunks: mb * 256,
        record: false,
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_aim_that_stops_reading_its_socket_fails_within_the_timeout() {
    // Far more than the socket buffers between the gateway and Aim hold, so
    // a relay that waits on its writes to Aim would block for good.
    let up = MockUpstream::start(long_answer(24)).await;
    let aim = MockAim::start(AimOptions {
        mode: AimMode::Pass,
        ws_stop_reading_after: Some(3),
        ..Default::default()
    })
    .await;
    let gw = Gateway::start(&config(&up, &aim, 2.0, "")).await;

    let resp = gw.chat(ONE, &guarded_stream("aim")).await;
    assert_eq!(resp.status(), 200);
    let head = Instant::now();
    let (body, ended) = gw.read_to_end(resp, Duration::from_secs(12)).await;
    let took = ended - head;
    // Aim answered the chunks it read; the last answer restarted the 2 s
    // deadline.
    assert!(
        took >= Duration::from_millis(1800) && took < Duration::from_secs(6),
        "the error frame came after {took:?}"
    );
    let err = error_frame(&body);
    assert_eq!(err["error"]["type"], "guardrail_unavailable");
    assert_eq!(err["error"]["code"], "504");
    assert!(events(&body).len() >= 2, "the verified chunks went first");
    gw.assert_released(ended, "after the error frame").await;
    common::eventually("the upstream request is dropped", || {
        up.cancelled_streams() == 1
    })
    .await;

    // The client leaves while Aim is stalled and the deadline is far off:
    // everything it held goes at once.
    let resp = gw.chat(ONE, &guarded_stream("aim-patient")).await;
    assert_eq!(resp.status(), 200);
    let mut stream = resp.bytes_stream();
    stream.next().await.unwrap().unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    drop(stream);
    let left = Instant::now();
    gw.assert_released(left, "after the client left").await;
    common::eventually("the upstream request is dropped", || {
        up.cancelled_streams() == 2
    })
    .await;
    gw.assert_rss_bounded();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_that_never_ends_ends_the_stream() {
    let up = MockUpstream::start(UpstreamOptions {
        reply: Some("word ".repeat(2000)),
        chunks: 4,
        failure: Some(Failure::EndlessEvent),
        record: false,
        ..Default::default()
    })
    .await;
    let aim = MockAim::start(AimOptions {
        mode: AimMode::Pass,
        ..Default::default()
    })
    .await;
    let gw = Gateway::start(&config(&up, &aim, 1.0, "")).await;
    let too_large = format!(
        "the upstream sent a stream event over {} bytes",
        gateway::sse::MAX_EVENT
    );

    // Through the post_call relay: nothing reaches Aim or the client.
    let resp = gw.chat(ONE, &guarded_stream("aim-patient")).await;
    assert_eq!(resp.status(), 200);
    let head = Instant::now();
    let (body, ended) = gw.read_to_end(resp, Duration::from_secs(10)).await;
    assert!(ended - head < Duration::from_secs(5), "{:?}", ended - head);
    let err = error_frame(&body);
    assert_eq!(err["error"]["type"], "upstream_error");
    assert_eq!(err["error"]["code"], "502");
    assert_eq!(err["error"]["message"], too_large.as_str());
    assert_eq!(events(&body).len(), 1, "only the error frame: {body:.300}");
    gw.assert_released(ended, "guarded").await;
    common::eventually("the upstream request is dropped", || {
        up.cancelled_streams() == 1
    })
    .await;

    // Metered for `include_usage` (any client can ask): the bytes pass
    // through as they come, and the parser reading them stops at the bound.
    let resp = gw
        .chat(
            ONE,
            &json!({
                "model": "m",
                "stream": true,
                "stream_options": {"include_usage": true},
                "messages": [{"role": "user", "content": "go"}]
            }),
        )
        .await;
    assert_eq!(resp.status(), 200);
    let head = Instant::now();
    let (body, ended) = gw.read_to_end(resp, Duration::from_secs(10)).await;
    assert!(ended - head < Duration::from_secs(5), "{:?}", ended - head);
    // The upstream's lines never ended their event, so the error frame's
    // line joins it as far as an SSE reader is concerned: look at the bytes.
    let tail = body.rsplit("data: ").next().unwrap();
    let err: Value = serde_json::from_str(tail.trim_end()).unwrap();
    assert_eq!(err["error"]["message"], too_large.as_str());
    assert!(body.len() < 2 * gateway::sse::MAX_EVENT);
    gw.assert_released(ended, "metered").await;
    common::eventually("the upstream request is dropped", || {
        up.cancelled_streams() == 2
    })
    .await;
    gw.assert_rss_bounded();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_aim_holds_the_upstream_back() {
    let up = MockUpstream::start(long_answer(8)).await;
    // Reads every frame at once, answers one every 20 ms: the upstream is
    // far faster.
    let aim = MockAim::start(AimOptions {
        mode: AimMode::Pass,
        ws_answer_interval_ms: 20,
        ..Default::default()
    })
    .await;
    let gw = Gateway::start(&config(&up, &aim, 2.0, "")).await;
    let unanswered_within_bounds = |what: &str| {
        let s = aim.streams().pop().unwrap();
        let unanswered = &s.frames[s.sent.len().min(s.frames.len())..];
        let bytes: usize = unanswered.iter().map(String::len).sum();
        assert!(
            unanswered.len() <= gateway::guardrails::stream::MAX_UNVERIFIED_CHUNKS
                && bytes
                    <= gateway::guardrails::stream::MAX_UNVERIFIED_BYTES + gateway::sse::MAX_EVENT,
            "{what}: Aim holds {} unanswered chunks, {bytes} bytes",
            unanswered.len()
        );
        s
    };

    // The stream goes at Aim's pace, with no more than the window sent
    // ahead of Aim's answers.
    let resp = gw.chat(ONE, &guarded_stream("aim")).await;
    assert_eq!(resp.status(), 200);
    let mut stream = resp.bytes_stream();
    let mut got = 0;
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(3) {
        got += stream.next().await.unwrap().unwrap().len();
        gw.assert_rss_bounded();
        unanswered_within_bounds("while streaming");
    }
    assert!(got > 40 * 4096, "verified chunks keep coming: {got} bytes");
    unanswered_within_bounds("after 3 s");

    // The client leaves: the upstream request, the socket, the gauge and
    // the key's slot all go within a second.
    drop(stream);
    let left = Instant::now();
    gw.assert_released(left, "after the client left").await;
    common::eventually("the upstream request is dropped", || {
        up.cancelled_streams() == 1
    })
    .await;
    common::eventually("the socket is closed", || {
        aim.streams().pop().unwrap().ended
    })
    .await;
    assert!(left.elapsed() < Duration::from_secs(2));

    // Slower than the timeout: stuck with a full window, the stream ends
    // with an error frame once Aim has been silent for the timeout.
    aim.set_options(AimOptions {
        mode: AimMode::Pass,
        ws_answer_interval_ms: 10_000,
        ..Default::default()
    });
    let resp = gw.chat(ONE, &guarded_stream("aim")).await;
    assert_eq!(resp.status(), 200);
    let head = Instant::now();
    let (body, ended) = gw.read_to_end(resp, Duration::from_secs(10)).await;
    let took = ended - head;
    assert!(
        took >= Duration::from_millis(1800) && took < Duration::from_secs(6),
        "the error frame came after {took:?}"
    );
    assert_eq!(error_frame(&body)["error"]["type"], "guardrail_unavailable");
    unanswered_within_bounds("stuck");
    gw.assert_released(ended, "after the error frame").await;
    gw.assert_rss_bounded();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_past_the_memory_budget_get_503_while_the_others_go_on() {
    // Each answer is about 3 MB and arrives in two halves 500 ms apart, so
    // all of them are half-read at once; together they need far more than
    // the 8 MB budget.
    let up = MockUpstream::start(UpstreamOptions {
        reply: Some("x".repeat(3 << 20)),
        body_pause_ms: 500,
        record: false,
        ..Default::default()
    })
    .await;
    let aim = MockAim::start(AimOptions::default()).await;
    let gw = Gateway::start(&config(
        &up,
        &aim,
        1.0,
        "general_settings:\n  max_response_size_mb: 4\n  response_budget_mb: 8\n",
    ))
    .await;
    let ask = json!({"model": "m", "messages": [{"role": "user", "content": "x"}]});
    let answers = futures_util::future::join_all((0..12).map(|_| async {
        let r = gw.chat(MANY, &ask).await;
        let status = r.status().as_u16();
        let retry_after = common::header(&r, "retry-after").map(str::to_owned);
        (status, retry_after, r.text().await.unwrap())
    }))
    .await;
    let mut served = 0;
    let mut refused = 0;
    for (status, retry_after, body) in &answers {
        match status {
            200 => {
                let v: Value = serde_json::from_str(body).unwrap();
                assert_eq!(
                    v["choices"][0]["message"]["content"]
                        .as_str()
                        .unwrap()
                        .len(),
                    3 << 20
                );
                served += 1;
            }
            503 => {
                let v: Value = serde_json::from_str(body).unwrap();
                assert_eq!(v["error"]["type"], "service_unavailable");
                assert!(
                    v["error"]["message"]
                        .as_str()
                        .unwrap()
                        .contains("response_budget_mb"),
                    "{v}"
                );
                assert_eq!(retry_after.as_deref(), Some("1"));
                refused += 1;
            }
            other => panic!("{other}: {body:.300}"),
        }
    }
    assert!(
        served >= 1 && refused >= 1,
        "{served} served, {refused} refused"
    );
    gw.assert_rss_bounded();
    // What the answers held went back to the budget.
    assert_eq!(gw.chat(MANY, &ask).await.status(), 200);
    assert_eq!(gw.in_flight().await, 0.0);
    assert_eq!(gw.metric("gateway_response_budget_bytes").await, 0.0);
    assert_eq!(
        gw.metric("gateway_response_budget_limit_bytes").await,
        (8 << 20) as f64
    );
    assert_eq!(
        gw.metric("gateway_response_budget_refused_total").await,
        refused as f64
    );

    // One answer over max_response_size_mb is a 502, whatever the budget.
    up.set_options(UpstreamOptions {
        reply: Some("x".repeat(5 << 20)),
        record: false,
        ..Default::default()
    });
    let r = gw.chat(MANY, &ask).await;
    assert_eq!(r.status(), 502);
    let v: Value = r.json().await.unwrap();
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("max_response_size_mb"),
        "{v}"
    );
}
