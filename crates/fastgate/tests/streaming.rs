//! Streaming: chunk-by-chunk pass-through, client disconnect, upstream reset.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::{Backend, DEFAULT_ROUTES, Harness};
use fastgate_testkit::sse::SseParser;
use futures_util::StreamExt;
use serde_json::{Value, json};

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
    // role, 5 tokens, finish, [DONE]: each event one chunk, as the mock sent them.
    assert_eq!(events.len(), 8);
    assert_eq!(h.mock.chunks_sent(), 8);
    let rec = h.audit_of(&rid).await;
    assert!(rec.is_stream);
    assert_eq!(rec.stream_chunks, 8);
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
        .header("x-mock-hold", "nd")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/x-ndjson");
    let rid = resp.headers()["x-request-id"].to_str().unwrap().to_string();
    let mut stream = resp.bytes_stream();
    // The 4 content lines arrive while the mock holds the final line.
    let mut text = String::new();
    while text.matches('\n').count() < 4 {
        let chunk = tokio::time::timeout(Duration::from_secs(5), stream.next())
            .await
            .expect("content lines before the final one")
            .unwrap()
            .unwrap();
        text.push_str(std::str::from_utf8(&chunk).unwrap());
    }
    assert_eq!(h.mock.chunks_sent(), 4, "the final line is still held");
    h.mock.release("nd");
    while let Some(chunk) = stream.next().await {
        text.push_str(std::str::from_utf8(&chunk.unwrap()).unwrap());
    }
    // Exactly the mock's lines, unchanged: one JSON object per line, '\n'-terminated.
    assert!(text.ends_with('\n'), "{text:?}");
    let lines: Vec<&str> = text.split_terminator('\n').collect();
    assert_eq!(lines.len(), 5, "{text:?}");
    for (i, line) in lines.iter().enumerate() {
        let mut v: Value = serde_json::from_str(line).unwrap();
        assert!(v["created_at"].as_u64().unwrap() > 0);
        v.as_object_mut().unwrap().remove("created_at");
        let want = if i < 4 {
            json!({ "model": "gpt-4o", "message": { "role": "assistant", "content": format!("tok{i} ") }, "done": false })
        } else {
            json!({ "model": "gpt-4o", "message": { "role": "assistant", "content": "" }, "done": true,
                    "done_reason": "stop", "prompt_eval_count": 1, "eval_count": 4 })
        };
        assert_eq!(v, want, "line {i}: {line}");
    }
    let rec = h.audit_of(&rid).await;
    assert!(rec.is_stream);
    assert_eq!(rec.stream_chunks, 5);
    assert_eq!(rec.response_bytes, text.len() as u64);
    assert!(rec.error_message.is_none(), "{:?}", rec.error_message);
    h.stop().await;
}
both_backends!(ndjson_passes_through, ndjson_passes_through);
