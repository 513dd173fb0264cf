//! Clients that stop reading, upstreams that never pause, and shutdown with
//! work still running: every response ends, its upstream request is cancelled,
//! its key's concurrency slot comes back and its audit record says why.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::{Duration, Instant};

use common::{Backend, Harness};
use fastgate_audit::{AuditFilter, AuditRecord};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

const ROUTES: &str = r#"
upstreams:
  - name: mock
    kind: openai
    base_url: "{MOCK}"
    credentials: [ { name: k1, key: "sk-provider-1" } ]
routes:
  - name: streams
    match: { path: "/stream/**" }
    upstream: mock
  - name: short
    match: { path: "/short/**" }
    upstream: mock
    timeout: { connect: 500ms, first_byte: 2s, idle: 2s, total: 2s }
"#;

/// Poll `check` until it holds or `within` passes.
async fn eventually(within: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if check() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    check()
}

/// The audit record of the one request to `path` (polling while it is written).
async fn record_for(h: &Harness, path: &str) -> AuditRecord {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(r) = h.audit().await.into_iter().find(|r| r.path == path) {
            return r;
        }
        assert!(Instant::now() < deadline, "no audit record for {path}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A client socket with a tiny receive buffer, so the server's writes block soon.
async fn small_window_client(h: &Harness) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    socket.connect(h.server().addr).await.unwrap()
}

/// Read until the end of the response head (with a timeout).
async fn read_head(stream: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf))
            .await
            .expect("response head within 10s")
            .unwrap();
        assert!(n > 0, "connection closed before the response head");
        head.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&head).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_is_cut_off() {
    let h = Harness::start_with_server_extra(Backend::Sqlite, ROUTES, "write_timeout: 1s").await;
    let (_, key) = h
        .create_key(json!({ "name": "one-at-a-time", "limits": { "max_concurrent": 1 } }))
        .await;
    let mut stream = small_window_client(&h).await;
    let request = format!(
        "GET /stream/stalled HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {key}\r\n\
         x-mock-ndjson: 1\r\nx-mock-chunks: 300000\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let head = read_head(&mut stream).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    // Stop reading. The socket buffers fill, the gateway's writes block, and
    // after write_timeout the response is aborted and the upstream cancelled.
    assert!(
        eventually(Duration::from_secs(20), || h.mock.streams_cancelled() >= 1).await,
        "the upstream stream was never cancelled"
    );
    let record = record_for(&h, "/stream/stalled").await;
    let error = record.error_message.clone().unwrap_or_default();
    assert!(error.contains("stopped reading"), "audit error: {error:?}");
    assert!(
        record.stream_chunks < 300_000,
        "{} chunks",
        record.stream_chunks
    );
    // The key's single concurrency slot is free again.
    let resp = reqwest::Client::new()
        .get(h.url("/stream/after"))
        .bearer_auth(&key)
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    drop(stream);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_total_limit_holds_while_the_upstream_never_pauses() {
    let h = Harness::start(Backend::Sqlite, ROUTES).await;
    let key = h.key().await;
    let started = Instant::now();
    let mut resp = reqwest::Client::new()
        .get(h.url("/short/firehose"))
        .bearer_auth(&key)
        .header("x-mock-body-bytes", "20000000")
        .timeout(Duration::from_secs(30))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    // A slow reader: the upstream always has data waiting, so the body never
    // sees the upstream pending; the total limit (2s) must still end it.
    let reader = tokio::spawn(async move {
        while let Ok(Some(_)) = resp.chunk().await {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    // The record is written when the response ends: here, when the limit cuts it.
    let record = record_for(&h, "/short/firehose").await;
    assert!(started.elapsed() >= Duration::from_secs(2), "{record:?}");
    let error = record.error_message.clone().unwrap_or_default();
    assert!(error.contains("total time limit"), "audit error: {error:?}");
    assert!(record.response_bytes < 20_000_000);
    reader.abort();
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_aborts_what_outlives_the_grace_period() {
    let h =
        Harness::start_with_server_extra(Backend::Sqlite, ROUTES, "shutdown_grace: 500ms").await;
    let key = h.key().await;
    let mut resp = reqwest::Client::new()
        .post(h.url("/stream/held/v1/chat/completions"))
        .bearer_auth(&key)
        .header("x-mock-hold", "never")
        .json(&json!({ "model": "m", "stream": true, "messages": [] }))
        .timeout(Duration::from_secs(30))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let first = tokio::time::timeout(Duration::from_secs(10), resp.chunk())
        .await
        .unwrap()
        .unwrap();
    assert!(first.is_some());
    let database_url = h.database_url.clone();
    let mut h = h;
    let server = h.server.take().unwrap();
    let started = Instant::now();
    tokio::time::timeout(Duration::from_secs(15), server.shutdown())
        .await
        .expect("shutdown ends soon after the grace period");
    assert!(started.elapsed() >= Duration::from_millis(400));
    // The client sees the stream end without its final events.
    let rest = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match resp.chunk().await {
                Ok(Some(_)) => {}
                Ok(None) => return true,
                Err(_) => return false,
            }
        }
    })
    .await
    .expect("the client stream ends");
    assert!(!rest, "the cut stream looked complete to the client");
    assert!(h.mock.streams_cancelled() >= 1);
    // The audit record was written before the process would exit.
    let store = fastgate_store::Store::connect(&database_url, 1)
        .await
        .unwrap();
    let rows = store.query_audit(&AuditFilter::default()).await.unwrap();
    let row = rows
        .iter()
        .find(|r| r.path == "/stream/held/v1/chat/completions")
        .expect("audit row");
    let error = row.error_message.clone().unwrap_or_default();
    assert!(error.contains("shutdown"), "audit error: {error:?}");
    store.close().await;
    h.stop().await;
}
