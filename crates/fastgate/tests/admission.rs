//! Admission before work: a request refused for its key, route or limits costs
//! no body read, the in-flight body budget answers 503 instead of growing
//! memory, and a key's `allowed_models` holds on every path that carries a model.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::{Backend, Harness};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const ROUTES: &str = r#"
upstreams:
  - name: mock
    kind: openai
    base_url: "{MOCK}"
    credentials: [ { name: k1, key: "sk-provider-1" } ]
routes:
  - name: upload
    match: { path: "/upload/**" }
    upstream: mock
"#;

/// Read one response (head and whatever body arrives) with a timeout.
async fn read_response(stream: &mut TcpStream) -> String {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let read = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf)).await;
        let n = match read {
            Ok(Ok(n)) => n,
            Ok(Err(_)) => break,
            Err(_) => panic!("no complete response within 10s: {out:?}"),
        };
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&out);
        if let Some((head, body)) = text.split_once("\r\n\r\n")
            && let Some(len) = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length: "))
                .and_then(|v| v.trim().parse::<usize>().ok())
            && body.len() >= len
        {
            break;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_over_its_limit_is_refused_before_its_body_is_read() {
    let h = Harness::start_with_server_extra(
        Backend::Sqlite,
        ROUTES,
        "max_body_bytes: 8388608, body_read_timeout: 30s",
    )
    .await;
    let (_, key) = h
        .create_key(json!({ "name": "rpm1", "limits": { "requests_per_minute": 1 } }))
        .await;
    let ok = reqwest::Client::new()
        .post(h.url("/upload/first"))
        .bearer_auth(&key)
        .body("small")
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);

    // Announce 4 MB, send 64 KB of it, then wait for the answer.
    let mut stream = TcpStream::connect(h.server().addr).await.unwrap();
    let total = 4 * 1024 * 1024;
    let head = format!(
        "POST /upload/second HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {key}\r\n\
         content-type: application/octet-stream\r\ncontent-length: {total}\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&vec![b'a'; 64 * 1024]).await.unwrap();
    let resp = read_response(&mut stream).await;
    assert!(resp.starts_with("HTTP/1.1 429"), "{resp}");
    assert!(resp.to_ascii_lowercase().contains("retry-after:"), "{resp}");
    assert!(resp.contains("rate_limit_exceeded"), "{resp}");
    assert_eq!(
        h.mock
            .requests()
            .iter()
            .filter(|r| r.path_only() == "/upload/second")
            .count(),
        0
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_in_flight_body_budget_answers_503_then_recovers() {
    let h = Harness::start_with_server_extra(
        Backend::Sqlite,
        ROUTES,
        "max_inflight_body_bytes: 100000, body_read_timeout: 30s",
    )
    .await;
    let key = h.key().await;
    // A client that announces 60 kB and holds most of it back.
    let mut slow = TcpStream::connect(h.server().addr).await.unwrap();
    let head = format!(
        "POST /upload/slow HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {key}\r\n\
         content-length: 60000\r\n\r\n"
    );
    slow.write_all(head.as_bytes()).await.unwrap();
    slow.write_all(&[b'a'; 10]).await.unwrap();

    // Another 60 kB body does not fit beside it. Poll: the first reservation is
    // made when the gateway reads the slow request's head.
    let http = reqwest::Client::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let refused = loop {
        let resp = http
            .post(h.url("/upload/fast"))
            .bearer_auth(&key)
            .body(vec![b'b'; 60_000])
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .unwrap();
        if resp.status() == 503 {
            break resp;
        }
        assert!(std::time::Instant::now() < deadline, "never refused");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(refused.headers()["retry-after"], "1");
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "overloaded", "{body}");

    // The slow client finishes: its request goes through and the budget is free.
    slow.write_all(&vec![b'a'; 60000 - 10]).await.unwrap();
    let resp = read_response(&mut slow).await;
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    let resp = http
        .post(h.url("/upload/after"))
        .bearer_auth(&key)
        .body(vec![b'c'; 60_000])
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    h.stop().await;
}

const MODELS: &str = r#"
upstreams:
  - name: mock
    kind: openai
    base_url: "{MOCK}"
    credentials: [ { name: k1, key: "sk-provider-1" } ]
  - name: dead
    kind: openai
    base_url: "{DEAD}"
    credentials: [ { name: k1, key: "sk-provider-1" } ]
routes:
  - name: explicit-chat
    match: { path: "/explicit/chat/completions", methods: [POST] }
    upstream: mock
models:
  - name: allowed
    fallbacks: [ forbidden ]
    deployments: [ { upstream: dead, model: up-allowed } ]
  - name: forbidden
    deployments: [ { upstream: mock, model: up-forbidden } ]
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allowed_models_hold_on_routes_fallbacks_and_model_lookups() {
    let h = Harness::start(Backend::Sqlite, MODELS).await;
    let (_, key) = h
        .create_key(json!({ "name": "narrow", "allowed_models": ["allowed"] }))
        .await;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();

    // An explicit route whose JSON body names a model the key may not use.
    let resp = http
        .post(h.url("/explicit/chat/completions"))
        .bearer_auth(&key)
        .json(&json!({ "model": "forbidden", "messages": [] }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "model_not_allowed", "{body}");
    assert_eq!(h.mock.request_count(), 0);
    let resp = http
        .post(h.url("/explicit/chat/completions"))
        .bearer_auth(&key)
        .json(&json!({ "model": "allowed", "messages": [] }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(h.mock.request_count(), 1);

    // `allowed` cannot be reached; its fallback is a group this key may not use.
    let resp = http
        .post(h.url("/v1/chat/completions"))
        .bearer_auth(&key)
        .json(&json!({ "model": "allowed", "messages": [ { "role": "user", "content": "x" } ] }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 502);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "upstream_unreachable", "{body}");
    assert_eq!(h.mock.request_count(), 1, "the fallback was not tried");

    // A key without limits falls back.
    let open = h.key().await;
    let resp = http
        .post(h.url("/v1/chat/completions"))
        .bearer_auth(&open)
        .json(&json!({ "model": "allowed", "messages": [ { "role": "user", "content": "x" } ] }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        h.mock.last_request().unwrap().json().unwrap()["model"],
        "up-forbidden"
    );

    // Model lookups, in each client's shape.
    let get = |path: &str, anthropic: bool| {
        let mut req = http.get(h.url(path)).bearer_auth(&key);
        if anthropic {
            req = req.header("anthropic-version", "2023-06-01");
        }
        req.send()
    };
    let resp = get("/v1/models/forbidden", false).await.unwrap();
    assert_eq!(resp.status(), 403);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "model_not_allowed", "{body}");
    let resp = get("/v1/models/forbidden", true).await.unwrap();
    assert_eq!(resp.status(), 403);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["type"], "error", "{body}");
    assert_eq!(body["error"]["type"], "permission_error", "{body}");
    let resp = get("/v1/models/allowed", false).await.unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["id"], "allowed");
    assert_eq!(body["object"], "model");
    let resp = get("/v1/models/nothing-here", false).await.unwrap();
    assert_eq!(resp.status(), 404);
    let list: Value = get("/v1/models", false)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ids: Vec<&str> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["id"].as_str())
        .collect();
    assert_eq!(ids, ["allowed"]);
    h.stop().await;
}
