//! Streaming: chunk-by-chunk pass-through, client disconnect, upstream reset.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::{Backend, DEFAULT_ROUTES, Harness};
use fastgate_testkit::sse::SseParser;
use futures_util::StreamExt;
use serde_json::json;

fn chat_stream(h: &Harness, key: &str) -> reqwest::RequestBuilder {
    h.http
        .post(h.url("/v1/chat/completions"))
        .bearer_auth(key)
        .json(&json!({ "model": "gpt-4o", "stream": true, "messages": [] }))
}

async fn first_chunk_before_last_is_sent(backend: Backend) {
    let h = Harness::start(backend, DEFAULT_ROUTES).await;
    let key = h.key().await;
    let resp = chat_stream(&h, &key)
        .header("x-mock-chunks", "5")
        .header("x-mock-hold", "g1")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let rid = resp.headers()["x-request-id"].to_str().unwrap().to_string();
    let mut stream = resp.bytes_stream();
    let mut parser = SseParser::new();
    // The mock holds the last chunk until released: we must see events before that.
    let mut events = Vec::new();
    while events.is_empty() {
        let chunk = tokio::time::timeout(Duration::from_secs(5), stream.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        events.extend(parser.feed(&chunk));
    }
    assert!(events[0].json().unwrap()["object"] == "chat.completion.chunk");
    h.mock.release("g1");
    while let Some(chunk) = tokio::time::timeout(Duration::from_secs(5), stream.next())
        .await
        .unwrap()
    {
        events.extend(parser.feed(&chunk.unwrap()));
    }
    assert!(events.last().unwrap().is_done(), "ends with [DONE]");
    let rec = h.audit_of(&rid).await;
    assert!(rec.is_stream);
    assert!(rec.stream_chunks >= 2, "{}", rec.stream_chunks);
    assert_eq!(rec.status_code, 200);
    assert!(rec.error_message.is_none());
    h.stop().await;
}
both_backends!(
    first_chunk_before_last_is_sent,
    first_chunk_before_last_is_sent
);

async fn client_disconnect_cancels_upstream(backend: Backend) {
    let h = Harness::start(backend, DEFAULT_ROUTES).await;
    let key = h.key().await;
    let resp = chat_stream(&h, &key)
        .header("x-mock-chunks", "200")
        .header("x-mock-chunk-delay-ms", "20")
        .send()
        .await
        .unwrap();
    let rid = resp.headers()["x-request-id"].to_str().unwrap().to_string();
    let mut stream = resp.bytes_stream();
    let _ = stream.next().await.unwrap().unwrap();
    drop(stream);
    assert!(
        h.mock
            .wait_until(Duration::from_secs(2), |m| m.streams_cancelled() == 1)
            .await,
        "upstream stream not cancelled"
    );
    assert!(h.mock.chunks_sent() < 150);
    let rec = h.audit_of(&rid).await;
    assert!(rec.error_message.unwrap().contains("client disconnected"));
    h.stop().await;
}
both_backends!(
    client_disconnect_cancels_upstream,
    client_disconnect_cancels_upstream
);

async fn upstream_reset_mid_stream(backend: Backend) {
    let h = Harness::start(backend, DEFAULT_ROUTES).await;
    let key = h.key().await;
    let resp = chat_stream(&h, &key)
        .header("x-mock-chunks", "10")
        .header("x-mock-reset-after", "3")
        .send()
        .await
        .unwrap();
    let rid = resp.headers()["x-request-id"].to_str().unwrap().to_string();
    let mut stream = resp.bytes_stream();
    let mut saw_error = false;
    let mut text = String::new();
    while let Some(item) = stream.next().await {
        match item {
            Ok(b) => text.push_str(&String::from_utf8_lossy(&b)),
            Err(_) => {
                saw_error = true;
                break;
            }
        }
    }
    assert!(saw_error, "client must see the stream fail, got: {text}");
    assert!(!text.contains("[DONE]"), "no fake [DONE]");
    let rec = h.audit_of(&rid).await;
    assert!(rec.error_message.is_some());
    h.stop().await;
}
both_backends!(upstream_reset_mid_stream, upstream_reset_mid_stream);

async fn ndjson_passes_through(backend: Backend) {
    let h = Harness::start(backend, DEFAULT_ROUTES).await;
    let key = h.key().await;
    let resp = chat_stream(&h, &key)
        .header("x-mock-ndjson", "1")
        .header("x-mock-chunks", "4")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let text = resp.text().await.unwrap();
    assert!(
        text.lines().filter(|l| !l.is_empty()).count() >= 4,
        "{text}"
    );
    h.stop().await;
}
both_backends!(ndjson_passes_through, ndjson_passes_through);
