//! Routing and resilience against mock upstreams that fail on command:
//! retries, fallbacks, cooldowns, load-balancing distributions, limits,
//! stream timeouts and hostile clients.

// Tests: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::*;
use gateway_mock::upstream::{Failure, MockUpstream, UpstreamOptions};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn failing(status: u16) -> UpstreamOptions {
    UpstreamOptions {
        failure: Some(Failure::Status {
            status,
            body: format!(
                r#"{{"error":{{"message":"failure {status}","type":"server_error","param":null,"code":null}}}}"#
            ),
            retry_after: None,
        }),
        ..Default::default()
    }
}

/// A deployment of group `group` with id `id` at `url`, plus extra param lines.
fn deployment(group: &str, id: &str, url: &str, extra: &str) -> String {
    format!(
        "  - model_name: {group}\n    litellm_params:\n      model: openai/{id}\n      api_base: {url}\n      api_key: k\n{extra}    model_info:\n      id: {id}\n"
    )
}

fn ask(group: &str) -> Value {
    json!({"model": group, "messages": [{"role": "user", "content": "hello world"}]})
}

fn hdr(r: &reqwest::Response, name: &str) -> String {
    header(r, name).unwrap_or_default().to_owned()
}

#[tokio::test]
async fn retries_land_on_the_healthy_deployment() {
    let bad = MockUpstream::start(failing(500)).await;
    let refused = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}/v1", l.local_addr().unwrap())
    };
    let hang = MockUpstream::start(UpstreamOptions {
        failure: Some(Failure::Hang),
        ..Default::default()
    })
    .await;
    let good = MockUpstream::start(UpstreamOptions::default()).await;
    let gw = gateway(&format!(
        "model_list:\n{}{}{}{}router_settings:\n  num_retries: 3\n  allowed_fails: 1000\n",
        deployment("m", "bad", &bad.url(), ""),
        deployment("m", "refused", &refused, ""),
        deployment("m", "hang", &hang.url(), "      timeout: 0.2\n"),
        deployment("m", "good", &good.url(), ""),
    ))
    .await;
    let mut retried = 0;
    for _ in 0..20 {
        let r = chat(&gw, &ask("m")).await;
        assert_eq!(r.status(), 200);
        assert_eq!(hdr(&r, "x-litellm-model-id"), "good");
        assert_eq!(hdr(&r, "x-litellm-model-group"), "m");
        assert_eq!(hdr(&r, "x-litellm-attempted-fallbacks"), "0");
        let retries: u32 = hdr(&r, "x-litellm-attempted-retries").parse().unwrap();
        assert!(retries <= 3);
        retried += retries;
    }
    assert_eq!(good.request_count(), 20);
    // Every failed attempt was followed by a retry (the refused deployment's
    // attempts are retries too, but leave no record to count).
    assert!(retried as usize >= bad.request_count() + hang.request_count());
    assert!(
        bad.request_count() > 0 && hang.request_count() > 0,
        "the failing ones were tried"
    );
}

#[tokio::test]
async fn a_429_is_retried_after_its_retry_after() {
    let up = MockUpstream::start(UpstreamOptions {
        failure: Some(Failure::Status { status: 429, body: r#"{"error":{"message":"slow down","type":"requests","param":null,"code":"rate_limit_exceeded"}}"#.into(), retry_after: Some(1) }),
        fail_first: Some(1),
        ..Default::default()
    })
    .await;
    let gw = gateway(&format!(
        "model_list:\n{}router_settings:\n  num_retries: 2\n",
        deployment("m", "only", &up.url(), "")
    ))
    .await;
    let started = Instant::now();
    let r = chat(&gw, &ask("m")).await;
    assert_eq!(r.status(), 200);
    assert!(
        started.elapsed() >= Duration::from_millis(950),
        "retry-after honoured: {:?}",
        started.elapsed()
    );
    assert_eq!(hdr(&r, "x-litellm-attempted-retries"), "1");
    assert_eq!(up.request_count(), 2);
}

#[tokio::test]
async fn client_errors_are_never_retried() {
    for (status, body) in [
        (
            400,
            r#"{"error":{"message":"bad","type":"invalid_request_error","param":null,"code":null}}"#,
        ),
        (
            401,
            r#"{"error":{"message":"bad key","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}"#,
        ),
    ] {
        let up = MockUpstream::start(UpstreamOptions {
            failure: Some(Failure::Status {
                status,
                body: body.into(),
                retry_after: None,
            }),
            ..Default::default()
        })
        .await;
        let other = MockUpstream::start(UpstreamOptions::default()).await;
        let gw = gateway(&format!(
            "model_list:\n{}router_settings:\n  num_retries: 3\n",
            deployment("m", "x", &up.url(), "")
        ))
        .await;
        let r = chat(&gw, &ask("m")).await;
        assert_eq!(r.status().as_u16(), status);
        assert_eq!(hdr(&r, "x-litellm-attempted-retries"), "0");
        assert_eq!(r.text().await.unwrap(), body);
        assert_eq!(up.request_count(), 1, "{status} not retried");
        drop(other);
    }
}

#[tokio::test]
async fn a_started_stream_is_not_retried() {
    let up = MockUpstream::start(UpstreamOptions {
        chunks: 6,
        failure: Some(Failure::CloseAfter { chunks: 2 }),
        ..Default::default()
    })
    .await;
    let gw = gateway(&format!(
        "model_list:\n{}router_settings:\n  num_retries: 3\n",
        deployment("m", "x", &up.url(), "")
    ))
    .await;
    let mut body = ask("m");
    body["stream"] = json!(true);
    let r = chat(&gw, &body).await;
    assert_eq!(r.status(), 200);
    let frames = sse_data(&r.text().await.unwrap());
    assert_eq!(
        frames.len(),
        3,
        "two chunks then the error frame: {frames:?}"
    );
    let err: Value = serde_json::from_str(&frames[2]).unwrap();
    assert_eq!(err["error"]["type"], "upstream_error");
    assert_eq!(up.request_count(), 1);
}

#[tokio::test]
async fn a_stalled_stream_ends_with_an_error_frame() {
    let up = MockUpstream::start(UpstreamOptions {
        chunks: 6,
        failure: Some(Failure::StallAfter { chunks: 2 }),
        ..Default::default()
    })
    .await;
    let gw = gateway(&format!(
        "model_list:\n{}",
        deployment("m", "x", &up.url(), "      stream_timeout: 0.4\n")
    ))
    .await;
    let mut body = ask("m");
    body["stream"] = json!(true);
    let started = Instant::now();
    let r = chat(&gw, &body).await;
    let frames = sse_data(&r.text().await.unwrap());
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(frames.len(), 3, "{frames:?}");
    let err: Value = serde_json::from_str(&frames[2]).unwrap();
    assert_eq!(err["error"]["type"], "timeout");
    assert_eq!(err["error"]["code"], "504");
}

#[tokio::test]
async fn fallbacks_are_tried_in_order() {
    let a = MockUpstream::start(failing(500)).await;
    let b = MockUpstream::start(failing(503)).await;
    let c = MockUpstream::start(UpstreamOptions::default()).await;
    let d = MockUpstream::start(UpstreamOptions::default()).await;
    let gw = gateway(&format!(
        "model_list:\n{}{}{}{}router_settings:\n  num_retries: 1\n  allowed_fails: 1000\n  fallbacks: [{{a: [b, c, d]}}]\n",
        deployment("a", "a1", &a.url(), ""),
        deployment("b", "b1", &b.url(), ""),
        deployment("c", "c1", &c.url(), ""),
        deployment("d", "d1", &d.url(), ""),
    ))
    .await;
    let r = chat(&gw, &ask("a")).await;
    assert_eq!(r.status(), 200);
    assert_eq!(hdr(&r, "x-litellm-model-group"), "c");
    assert_eq!(hdr(&r, "x-litellm-model-id"), "c1");
    assert_eq!(hdr(&r, "x-litellm-attempted-fallbacks"), "2");
    assert_eq!(
        hdr(&r, "x-litellm-attempted-retries"),
        "2",
        "one retry in a, one in b"
    );
    assert_eq!(
        (
            a.request_count(),
            b.request_count(),
            c.request_count(),
            d.request_count()
        ),
        (2, 2, 1, 0)
    );
    // The fallback deployment got its own upstream model name.
    assert_eq!(c.requests()[0].json()["model"], "c1");
}

#[tokio::test]
async fn max_fallbacks_bounds_the_chain() {
    let a = MockUpstream::start(failing(500)).await;
    let b = MockUpstream::start(failing(500)).await;
    let c = MockUpstream::start(UpstreamOptions::default()).await;
    let gw = gateway(&format!(
        "model_list:\n{}{}{}router_settings:\n  fallbacks: [{{a: [b, c]}}]\n  max_fallbacks: 1\n",
        deployment("a", "a1", &a.url(), ""),
        deployment("b", "b1", &b.url(), ""),
        deployment("c", "c1", &c.url(), ""),
    ))
    .await;
    let r = chat(&gw, &ask("a")).await;
    assert_eq!(r.status(), 500);
    assert_eq!(hdr(&r, "x-litellm-attempted-fallbacks"), "1");
    assert_eq!(c.request_count(), 0);
}

#[tokio::test]
async fn context_window_and_content_policy_fallbacks() {
    let small = MockUpstream::start(UpstreamOptions {
        failure: Some(Failure::ContextLength),
        ..Default::default()
    })
    .await;
    let strict = MockUpstream::start(UpstreamOptions {
        failure: Some(Failure::ContentPolicy),
        ..Default::default()
    })
    .await;
    let big = MockUpstream::start(UpstreamOptions::default()).await;
    let lenient = MockUpstream::start(UpstreamOptions::default()).await;
    let general = MockUpstream::start(UpstreamOptions::default()).await;
    let gw = gateway(&format!(
        "model_list:\n{}{}{}{}{}router_settings:\n  num_retries: 2\n  fallbacks: [{{small: [general]}}, {{strict: [general]}}]\n  context_window_fallbacks: [{{small: [big]}}]\n  content_policy_fallbacks: [{{strict: [lenient]}}]\n",
        deployment("small", "s", &small.url(), ""),
        deployment("strict", "st", &strict.url(), ""),
        deployment("big", "b", &big.url(), ""),
        deployment("lenient", "l", &lenient.url(), ""),
        deployment("general", "g", &general.url(), ""),
    ))
    .await;
    let r = chat(&gw, &ask("small")).await;
    assert_eq!(
        (r.status().as_u16(), hdr(&r, "x-litellm-model-group")),
        (200, "big".into())
    );
    let r = chat(&gw, &ask("strict")).await;
    assert_eq!(
        (r.status().as_u16(), hdr(&r, "x-litellm-model-group")),
        (200, "lenient".into())
    );
    assert_eq!(small.request_count(), 1, "a context error is not retried");
    assert_eq!(strict.request_count(), 1);
    assert_eq!(general.request_count(), 0);
}

#[tokio::test]
async fn default_fallbacks_apply_when_a_group_has_none() {
    let a = MockUpstream::start(failing(502)).await;
    let spare = MockUpstream::start(UpstreamOptions::default()).await;
    let gw = gateway(&format!(
        "model_list:\n{}{}litellm_settings:\n  default_fallbacks: [spare]\n",
        deployment("a", "a1", &a.url(), ""),
        deployment("spare", "s1", &spare.url(), ""),
    ))
    .await;
    let r = chat(&gw, &ask("a")).await;
    assert_eq!(
        (r.status().as_u16(), hdr(&r, "x-litellm-model-group")),
        (200, "spare".into())
    );
}

#[tokio::test]
async fn cooldown_is_entered_and_left() {
    let flaky = MockUpstream::start(failing(500)).await;
    let steady = MockUpstream::start(UpstreamOptions::default()).await;
    let gw = gateway(&format!(
        "model_list:\n{}{}router_settings:\n  num_retries: 1\n  allowed_fails: 2\n  cooldown_time: 1\n",
        deployment("m", "flaky", &flaky.url(), ""),
        deployment("m", "steady", &steady.url(), ""),
    ))
    .await;
    // Until flaky has failed twice it keeps getting picked now and then.
    for _ in 0..200 {
        assert_eq!(chat(&gw, &ask("m")).await.status(), 200);
        if flaky.request_count() >= 2 {
            break;
        }
    }
    assert_eq!(flaky.request_count(), 2);
    for _ in 0..30 {
        assert_eq!(chat(&gw, &ask("m")).await.status(), 200);
    }
    assert_eq!(flaky.request_count(), 2, "cooling down: skipped");
    let metrics = metrics_text(&gw).await;
    assert!(
        metrics.contains("gateway_cooldowns_total{model_group=\"m\",deployment=\"flaky\"} 1"),
        "{metrics}"
    );

    tokio::time::sleep(Duration::from_millis(1100)).await;
    flaky.set_options(UpstreamOptions::default());
    for _ in 0..200 {
        chat(&gw, &ask("m")).await;
        if flaky.request_count() > 2 {
            return;
        }
    }
    panic!("the cooldown never ended");
}

#[tokio::test]
async fn when_every_deployment_cools_down_the_client_gets_429() {
    let up = MockUpstream::start(failing(500)).await;
    let gw = gateway(&format!(
        "model_list:\n{}router_settings:\n  allowed_fails: 1\n  cooldown_time: 5\n",
        deployment("m", "only", &up.url(), ""),
    ))
    .await;
    assert_eq!(chat(&gw, &ask("m")).await.status(), 500);
    let started = Instant::now();
    let r = chat(&gw, &ask("m")).await;
    assert!(started.elapsed() < Duration::from_millis(500), "no hang");
    assert_eq!(r.status(), 429);
    let retry: u64 = hdr(&r, "retry-after").parse().unwrap();
    assert!((1..=5).contains(&retry));
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["type"], "rate_limit_error");
    assert_eq!(v["error"]["code"], "429");
    assert_eq!(up.request_count(), 1);
}

/// Model ids of `n` sequential answers from mock_response deployments.
async fn distribution(yaml: &str, n: usize) -> HashMap<String, usize> {
    let gw = gateway(yaml).await;
    let mut counts = HashMap::new();
    for _ in 0..n {
        let r = chat(&gw, &ask("m")).await;
        assert_eq!(r.status(), 200);
        *counts.entry(hdr(&r, "x-litellm-model-id")).or_default() += 1;
    }
    counts
}

fn canned(id: &str, extra: &str) -> String {
    format!(
        "  - model_name: m\n    litellm_params:\n      model: openai/{id}\n      mock_response: hi from {id}\n{extra}    model_info:\n      id: {id}\n"
    )
}

#[tokio::test]
async fn simple_shuffle_follows_weights() {
    let counts = distribution(
        &format!(
            "model_list:\n{}{}",
            canned("heavy", "      weight: 3\n"),
            canned("light", "      weight: 1\n")
        ),
        800,
    )
    .await;
    let heavy = counts["heavy"] as f64 / 800.0;
    assert!((0.69..=0.81).contains(&heavy), "{counts:?}");
    // rpm works as a weight when no weight is set.
    let counts = distribution(
        &format!(
            "model_list:\n{}{}",
            canned("big", "      rpm: 90000\n"),
            canned("small", "      rpm: 10000\n")
        ),
        500,
    )
    .await;
    assert!(counts["big"] as f64 / 500.0 > 0.83, "{counts:?}");
}

#[tokio::test]
async fn least_busy_picks_the_idle_deployment() {
    let a = MockUpstream::start(UpstreamOptions {
        latency_ms: 1500,
        ..Default::default()
    })
    .await;
    let b = MockUpstream::start(UpstreamOptions {
        latency_ms: 1500,
        ..Default::default()
    })
    .await;
    let gw = gateway(&format!(
        "model_list:\n{}{}router_settings:\n  routing_strategy: least-busy\n",
        deployment("m", "a", &a.url(), ""),
        deployment("m", "b", &b.url(), ""),
    ))
    .await;
    let mut tasks = vec![];
    for _ in 0..10 {
        let url = format!("{}/v1/chat/completions", gw.url());
        tasks.push(tokio::spawn(async move {
            client()
                .post(url)
                .json(&ask("m"))
                .send()
                .await
                .unwrap()
                .status()
        }));
        // Each pick sees the previous ones in flight.
        tokio::time::sleep(Duration::from_millis(40)).await;
    }
    assert_eq!(
        (a.in_flight(), b.in_flight()),
        (5, 5),
        "alternates while both are busy"
    );
    for t in tasks {
        assert_eq!(t.await.unwrap(), 200);
    }
}

#[tokio::test]
async fn latency_based_prefers_the_fast_deployment() {
    let slow = MockUpstream::start(UpstreamOptions {
        latency_ms: 80,
        ..Default::default()
    })
    .await;
    let fast = MockUpstream::start(UpstreamOptions::default()).await;
    let gw = gateway(&format!(
        "model_list:\n{}{}router_settings:\n  routing_strategy: latency-based-routing\n",
        deployment("m", "slow", &slow.url(), ""),
        deployment("m", "fast", &fast.url(), ""),
    ))
    .await;
    for _ in 0..60 {
        assert_eq!(chat(&gw, &ask("m")).await.status(), 200);
    }
    // Each is measured once, then about 95% go to the fast one.
    assert!(slow.request_count() >= 1);
    assert!(
        fast.request_count() >= 48,
        "fast {} slow {}",
        fast.request_count(),
        slow.request_count()
    );
}

#[tokio::test]
async fn usage_based_balances_tokens_and_asks_streams_for_usage() {
    let a = MockUpstream::start(UpstreamOptions::default()).await;
    let b = MockUpstream::start(UpstreamOptions::default()).await;
    let gw = gateway(&format!(
        "model_list:\n{}{}router_settings:\n  routing_strategy: usage-based-routing\n",
        deployment("m", "a", &a.url(), "      tpm: 100000\n"),
        deployment("m", "b", &b.url(), "      tpm: 100000\n"),
    ))
    .await;
    for _ in 0..40 {
        assert_eq!(chat(&gw, &ask("m")).await.status(), 200);
    }
    let (na, nb) = (a.request_count() as i64, b.request_count() as i64);
    assert!((na - nb).abs() <= 2, "a {na} b {nb}");

    // A stream: the gateway asks for usage and hides the usage chunk.
    let mut body = ask("m");
    body["stream"] = json!(true);
    let r = chat(&gw, &body).await;
    let text = r.text().await.unwrap();
    let rec = a
        .requests()
        .into_iter()
        .chain(b.requests())
        .find(|r| r.json()["stream"] == json!(true))
        .unwrap();
    assert_eq!(rec.json()["stream_options"], json!({"include_usage": true}));
    assert!(String::from_utf8_lossy(&rec.response_body).contains("\"usage\""));
    assert!(
        !text.contains("\"usage\""),
        "the client did not ask for usage: {text}"
    );
    assert!(text.ends_with("data: [DONE]\n\n"));

    // A client that asked for usage gets it, byte for byte.
    body["stream_options"] = json!({"include_usage": true});
    let text = chat(&gw, &body).await.text().await.unwrap();
    assert!(text.contains("\"usage\""));
    let metrics = metrics_text(&gw).await;
    assert!(
        metrics.contains("gateway_tokens_total{model_group=\"m\""),
        "{metrics}"
    );
}

#[tokio::test]
async fn deployment_rpm_limit_gives_429() {
    let up = MockUpstream::start(UpstreamOptions::default()).await;
    let gw = gateway(&format!(
        "model_list:\n{}",
        deployment("m", "x", &up.url(), "      rpm: 2\n")
    ))
    .await;
    assert_eq!(chat(&gw, &ask("m")).await.status(), 200);
    assert_eq!(chat(&gw, &ask("m")).await.status(), 200);
    let r = chat(&gw, &ask("m")).await;
    assert_eq!(r.status(), 429);
    let retry: u64 = hdr(&r, "retry-after").parse().unwrap();
    assert!((50..=60).contains(&retry), "{retry}");
    assert_eq!(up.request_count(), 2);
}

#[tokio::test]
async fn key_limits_give_429_with_rate_headers() {
    let up = MockUpstream::start(UpstreamOptions {
        latency_ms: 0,
        ..Default::default()
    })
    .await;
    let slow = MockUpstream::start(UpstreamOptions {
        chunks: 4,
        chunk_interval_ms: 150,
        ..Default::default()
    })
    .await;
    let gw = gateway(&format!(
        "model_list:\n{}{}virtual_keys:\n  - key: sk-rpm\n    rpm_limit: 2\n  - key: sk-tpm\n    tpm_limit: 5\n  - key: sk-par\n    max_parallel_requests: 1\n",
        deployment("m", "x", &up.url(), ""),
        deployment("slow", "s", &slow.url(), ""),
    ))
    .await;
    let send = |key: &'static str, body: Value| {
        let url = format!("{}/v1/chat/completions", gw.url());
        async move {
            client()
                .post(url)
                .bearer_auth(key)
                .json(&body)
                .send()
                .await
                .unwrap()
        }
    };

    let r = send("sk-rpm", ask("m")).await;
    assert_eq!(r.status(), 200);
    assert_eq!(hdr(&r, "x-ratelimit-limit-requests"), "2");
    assert_eq!(hdr(&r, "x-ratelimit-remaining-requests"), "1");
    assert_eq!(send("sk-rpm", ask("m")).await.status(), 200);
    let r = send("sk-rpm", ask("m")).await;
    assert_eq!(r.status(), 429);
    assert_eq!(hdr(&r, "x-ratelimit-remaining-requests"), "0");
    assert!(hdr(&r, "retry-after").parse::<u64>().unwrap() >= 1);
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        (v["error"]["type"].as_str(), v["error"]["code"].as_str()),
        (Some("rate_limit_error"), Some("429"))
    );

    // "hello world" + echo: 2 prompt + 2 completion tokens per request.
    assert_eq!(send("sk-tpm", ask("m")).await.status(), 200);
    assert_eq!(send("sk-tpm", ask("m")).await.status(), 200);
    let r = send("sk-tpm", ask("m")).await;
    assert_eq!(r.status(), 429);
    assert_eq!(hdr(&r, "x-ratelimit-limit-tokens"), "5");
    assert_eq!(hdr(&r, "x-ratelimit-remaining-tokens"), "0");

    let mut stream = ask("slow");
    stream["stream"] = json!(true);
    let first = send("sk-par", stream.clone()).await;
    assert_eq!(first.status(), 200);
    let r = send("sk-par", ask("m")).await;
    assert_eq!(r.status(), 429, "one in flight already (the stream)");
    assert!(header(&r, "retry-after").is_some());
    first.text().await.unwrap();
    assert_eq!(
        send("sk-par", ask("m")).await.status(),
        200,
        "freed when the stream ended"
    );
}

#[tokio::test]
async fn global_in_flight_cap() {
    let slow = MockUpstream::start(UpstreamOptions {
        latency_ms: 400,
        ..Default::default()
    })
    .await;
    let gw = gateway(&format!(
        "model_list:\n{}general_settings:\n  global_max_parallel_requests: 1\n",
        deployment("m", "x", &slow.url(), "")
    ))
    .await;
    let url = format!("{}/v1/chat/completions", gw.url());
    let first = tokio::spawn(async move {
        client()
            .post(url)
            .json(&ask("m"))
            .send()
            .await
            .unwrap()
            .status()
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let r = chat(&gw, &ask("m")).await;
    assert_eq!(r.status(), 429);
    assert_eq!(first.await.unwrap(), 200);
    assert_eq!(chat(&gw, &ask("m")).await.status(), 200);
    let metrics = metrics_text(&gw).await;
    assert!(
        metrics.contains("gateway_rate_limited_total{scope=\"global\"} 1"),
        "{metrics}"
    );
}

#[tokio::test]
async fn slow_clients_cannot_hold_the_gateway() {
    let up = MockUpstream::start(UpstreamOptions::default()).await;
    let gw = gateway(&format!(
        "model_list:\n{}general_settings:\n  request_header_timeout: 0.5\n  request_body_timeout: 0.5\n",
        deployment("m", "x", &up.url(), "")
    ))
    .await;
    // Slowloris: many connections trickling headers.
    let mut slow = vec![];
    for _ in 0..100 {
        let mut s = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
        s.write_all(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        slow.push(s);
    }
    let started = Instant::now();
    assert_eq!(chat(&gw, &ask("m")).await.status(), 200);
    assert!(
        started.elapsed() < Duration::from_millis(300),
        "others are served at once"
    );
    // The slow ones are cut after the header timeout.
    tokio::time::sleep(Duration::from_millis(800)).await;
    for s in &mut slow {
        let mut buf = [0u8; 256];
        let n = tokio::time::timeout(Duration::from_secs(1), s.read(&mut buf)).await;
        assert!(
            matches!(n, Ok(Ok(_)) | Ok(Err(_))),
            "connection still held open"
        );
    }

    // A body that never finishes arriving: 408.
    let mut s = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
    s.write_all(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"model\":").await.unwrap();
    let mut buf = vec![0u8; 2048];
    let n = tokio::time::timeout(Duration::from_secs(3), s.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8_lossy(&buf[..n]);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("\"type\":\"timeout\""), "{text}");
}

#[tokio::test]
async fn connection_cap_queues_instead_of_refusing() {
    let up = MockUpstream::start(UpstreamOptions::default()).await;
    let gw = gateway(&format!(
        "model_list:\n{}general_settings:\n  max_connections: 2\n",
        deployment("m", "x", &up.url(), "")
    ))
    .await;
    let a = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
    let b = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let url = format!("{}/v1/chat/completions", gw.url());
    let third = tokio::spawn(async move {
        client()
            .post(url)
            .json(&ask("m"))
            .send()
            .await
            .unwrap()
            .status()
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !third.is_finished(),
        "the third connection waits while two are open"
    );
    drop(a);
    let status = tokio::time::timeout(Duration::from_secs(3), third)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status, 200);
    drop(b);
}

#[tokio::test]
async fn guardrails_run_once_per_request_not_per_attempt() {
    use gateway_mock::aim::{AimOptions, MockAim};
    let a = MockUpstream::start(failing(500)).await;
    let b = MockUpstream::start(UpstreamOptions::default()).await;
    let aim = MockAim::start(AimOptions::default()).await;
    let gw = gateway(&format!(
        "model_list:\n{}{}guardrails:\n  - guardrail_name: g\n    litellm_params:\n      guardrail: aim\n      mode: [pre_call, during_call, post_call]\n      default_on: true\n      api_key: aim-mock-key\n      api_base: {}\nrouter_settings:\n  num_retries: 2\n  allowed_fails: 1000\n  fallbacks: [{{a: [b]}}]\n",
        deployment("a", "a1", &a.url(), ""),
        deployment("b", "b1", &b.url(), ""),
        aim.url()
    ))
    .await;
    let r = chat(&gw, &ask("a")).await;
    assert_eq!(r.status(), 200);
    assert_eq!(hdr(&r, "x-litellm-attempted-retries"), "2");
    assert_eq!(hdr(&r, "x-litellm-attempted-fallbacks"), "1");
    assert_eq!(a.request_count(), 3);
    let hooks: Vec<String> = aim
        .requests()
        .iter()
        .map(|c| {
            c.header("x-aim-litellm-hook")
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    let mut sorted = hooks.clone();
    sorted.sort();
    assert_eq!(sorted, ["moderation", "output", "pre_call"], "{hooks:?}");
}
