//! Stream timeouts: `idle` (longest silence between two upstream chunks) and
//! `total` (the whole exchange) cut a stream that breaks them, cancel the upstream
//! request and close the audit record with the error.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::{Duration, Instant};

use common::{Backend, Harness};
use fastgate_testkit::sse::SseParser;
use futures_util::StreamExt;
use serde_json::json;

const ROUTES: &str = r#"
upstreams:
  - { name: mock, kind: openai, base_url: "{MOCK}", credentials: [ { name: k1, key: "sk-1" } ] }
  - { name: slow-llm, kind: openai, base_url: "{MOCK}", credentials: [ { name: s1, key: "sk-slow" } ],
      timeout: { connect: 1s, first_byte: 2s, idle: 300ms, total: 10s }, retries: 0 }
models:
  - { name: stalling, deployments: [ { upstream: slow-llm, model: stalling-upstream } ] }
routes:
  - name: idle
    match: { path: "/idle/chat/completions", methods: [POST] }
    upstream: mock
    target_path: "/v1/chat/completions"
    timeout: { connect: 1s, first_byte: 2s, idle: 300ms, total: 10s }
  - name: total
    match: { path: "/total/chat/completions", methods: [POST] }
    upstream: mock
    target_path: "/v1/chat/completions"
    timeout: { connect: 500ms, first_byte: 500ms, idle: 500ms, total: 1s }
"#;

/// What a client saw of one stream.
struct Seen {
    request_id: String,
    events: Vec<String>,
    /// The body ended with a transport error (not a clean end).
    broke: bool,
    /// From sending the request to the end (clean or broken) of the body.
    elapsed: Duration,
}

async fn stream(h: &Harness, key: &str, path: &str, model: &str, headers: &[(&str, &str)]) -> Seen {
    let start = Instant::now();
    let mut rb = h
        .http
        .post(h.url(path))
        .bearer_auth(key)
        .json(&json!({ "model": model, "stream": true, "messages": [{ "role": "user", "content": "hi" }] }));
    for (k, v) in headers {
        rb = rb.header(*k, *v);
    }
    let resp = rb.send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let request_id = resp.headers()["x-request-id"].to_str().unwrap().to_string();
    let mut body = resp.bytes_stream();
    let mut parser = SseParser::new();
    let mut events = Vec::new();
    let mut broke = false;
    while let Some(item) = body.next().await {
        match item {
            Ok(chunk) => events.extend(parser.feed(&chunk).into_iter().map(|e| e.data)),
            Err(_) => {
                broke = true;
                break;
            }
        }
    }
    Seen {
        request_id,
        events,
        broke,
        elapsed: start.elapsed(),
    }
}

async fn idle_timeout_cuts_a_stalled_stream(backend: Backend) {
    let h = Harness::start(backend, ROUTES).await;
    let key = h.key().await;
    // The role chunk comes at once, then 3 s of silence before each next one.
    let seen = stream(
        &h,
        &key,
        "/idle/chat/completions",
        "gpt-4o",
        &[("x-mock-chunks", "3"), ("x-mock-chunk-delay-ms", "3000")],
    )
    .await;
    assert!(
        seen.broke,
        "the client sees the stream fail: {:?}",
        seen.events
    );
    assert_eq!(
        seen.events.len(),
        1,
        "only the role chunk: {:?}",
        seen.events
    );
    assert!(!seen.events.iter().any(|e| e == "[DONE]"));
    assert!(
        seen.elapsed >= Duration::from_millis(280) && seen.elapsed < Duration::from_millis(2500),
        "cut after {:?}, before the next chunk (3 s)",
        seen.elapsed
    );
    assert!(
        h.mock
            .wait_until(Duration::from_secs(5), |m| m.streams_cancelled() == 1)
            .await,
        "the upstream request was cancelled"
    );
    assert_eq!(h.mock.chunks_sent(), 1);
    let rec = h.audit_of(&seen.request_id).await;
    assert_eq!(rec.route.as_deref(), Some("idle"));
    assert_eq!(rec.status_code, 200);
    assert!(rec.is_stream);
    assert_eq!(rec.stream_chunks, 1);
    assert_eq!(
        rec.error_message.as_deref(),
        Some("upstream sent nothing for 300ms")
    );
    h.stop().await;
}
both_backends!(
    idle_timeout_cuts_a_stalled_stream,
    idle_timeout_cuts_a_stalled_stream
);

/// Chunks closer together than the idle limit keep a stream alive however long
/// it runs in all (here 6 × 150 ms against a 300 ms idle limit): the idle clock
/// restarts at every chunk.
async fn idle_timeout_spares_a_stream_that_keeps_sending(backend: Backend) {
    let h = Harness::start(backend, ROUTES).await;
    let key = h.key().await;
    let seen = stream(
        &h,
        &key,
        "/idle/chat/completions",
        "gpt-4o",
        &[("x-mock-chunks", "6"), ("x-mock-chunk-delay-ms", "150")],
    )
    .await;
    assert!(!seen.broke, "the stream was cut: {:?}", seen.events);
    assert_eq!(
        seen.events.last().map(String::as_str),
        Some("[DONE]"),
        "{:?}",
        seen.events
    );
    assert!(
        seen.elapsed >= Duration::from_millis(600),
        "the stream ran past the idle limit several times over: {:?}",
        seen.elapsed
    );
    let rec = h.audit_of(&seen.request_id).await;
    assert_eq!(rec.status_code, 200);
    assert_eq!(rec.error_message, None);
    h.stop().await;
}
both_backends!(
    idle_timeout_spares_a_stream_that_keeps_sending,
    idle_timeout_spares_a_stream_that_keeps_sending
);

async fn total_timeout_cuts_a_slow_stream(backend: Backend) {
    let h = Harness::start(backend, ROUTES).await;
    let key = h.key().await;
    // 30 tokens 100 ms apart (each gap under `idle`): about 3.1 s, `total` is 1 s.
    let seen = stream(
        &h,
        &key,
        "/total/chat/completions",
        "gpt-4o",
        &[("x-mock-chunks", "30"), ("x-mock-chunk-delay-ms", "100")],
    )
    .await;
    assert!(seen.broke, "the client sees the stream fail");
    assert!(!seen.events.iter().any(|e| e == "[DONE]"));
    assert!(
        seen.elapsed >= Duration::from_millis(950) && seen.elapsed < Duration::from_millis(2500),
        "cut after {:?}, total is 1 s",
        seen.elapsed
    );
    // About 10 of the 33 events made it (the role chunk, then one per 100 ms).
    assert!(
        (3..=20).contains(&seen.events.len()),
        "{} events",
        seen.events.len()
    );
    assert!(
        h.mock
            .wait_until(Duration::from_secs(5), |m| m.streams_cancelled() == 1)
            .await,
        "the upstream request was cancelled"
    );
    let rec = h.audit_of(&seen.request_id).await;
    assert_eq!(rec.route.as_deref(), Some("total"));
    assert_eq!(rec.status_code, 200);
    assert_eq!(rec.stream_chunks, seen.events.len() as u64);
    assert_eq!(
        rec.error_message.as_deref(),
        Some("request exceeded its total time limit")
    );
    assert!(
        rec.duration_ms >= 950.0 && rec.duration_ms < 2500.0,
        "{}",
        rec.duration_ms
    );
    h.stop().await;
}
both_backends!(
    total_timeout_cuts_a_slow_stream,
    total_timeout_cuts_a_slow_stream
);

/// On the LLM endpoints a stalled deployment ends the stream with a terminal
/// error event in the client's protocol (never a fake `[DONE]`).
async fn idle_timeout_on_an_llm_stream_ends_with_an_error_event(backend: Backend) {
    let h = Harness::start(backend, ROUTES).await;
    let key = h.key().await;
    let seen = stream(
        &h,
        &key,
        "/v1/chat/completions",
        "stalling",
        &[("x-mock-chunks", "3"), ("x-mock-chunk-delay-ms", "3000")],
    )
    .await;
    assert!(
        seen.elapsed < Duration::from_millis(2500),
        "cut after {:?}, before the next chunk (3 s)",
        seen.elapsed
    );
    assert!(
        !seen.events.iter().any(|e| e == "[DONE]"),
        "{:?}",
        seen.events
    );
    let last: serde_json::Value = serde_json::from_str(seen.events.last().unwrap()).unwrap();
    assert!(
        last["error"]["message"]
            .as_str()
            .unwrap()
            .contains("upstream sent nothing for 300ms"),
        "{last}"
    );
    assert!(
        h.mock
            .wait_until(Duration::from_secs(5), |m| m.streams_cancelled() == 1)
            .await,
        "the upstream request was cancelled"
    );
    let rec = h.audit_of(&seen.request_id).await;
    assert_eq!(rec.model.as_deref(), Some("stalling"));
    assert_eq!(
        rec.error_message.as_deref(),
        Some("upstream sent nothing for 300ms")
    );
    h.stop().await;
}
both_backends!(
    idle_timeout_on_an_llm_stream_ends_with_an_error_event,
    idle_timeout_on_an_llm_stream_ends_with_an_error_event
);
