//! HTTP edge hardening with raw sockets (THREATS rows 1, 2, 6, 7, 10).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::{Duration, Instant};

use common::{Backend, DEFAULT_ROUTES, Harness, RAW_TIMEOUT, raw_status};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The whole reply to `raw`; no reply within the deadline fails the test.
async fn send_raw(h: &Harness, raw: &[u8]) -> String {
    String::from_utf8_lossy(&h.raw(raw).await).into_owned()
}

#[tokio::test]
async fn request_smuggling_shapes_are_refused() {
    let h = Harness::start(Backend::Sqlite, DEFAULT_ROUTES).await;
    let key = h.key().await;
    let cases = [
        format!(
            "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\nabcde"
        ),
        format!(
            "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\nTransfer-Encoding: gzip, chunked, identity\r\n\r\n0\r\n\r\n"
        ),
        format!(
            "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\nTransfer-Encoding: gzip\r\n\r\nabcd"
        ),
        format!(
            "GET /v1/models HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\nX-Folded: a\r\n b\r\n\r\n"
        ),
    ];
    for raw in &cases {
        let resp = send_raw(&h, raw.as_bytes()).await;
        assert_eq!(raw_status(resp.as_bytes()), 400, "{raw:?} -> {resp}");
    }
    assert_eq!(h.mock.request_count(), 0, "nothing forwarded");
    h.stop().await;
}

/// Content-Length together with Transfer-Encoding: hyper's parser follows RFC 9112
/// §6.3 (chunked wins, Content-Length is dropped, the connection is closed after
/// the response). FastGate re-frames the body it forwards, so the upstream sees one
/// request with its own Content-Length, and the pipelined bytes are never parsed
/// as a second request.
#[tokio::test]
async fn content_length_with_chunked_cannot_smuggle() {
    let h = Harness::start(Backend::Sqlite, DEFAULT_ROUTES).await;
    let key = h.key().await;
    let smuggled = "GET /v1/models HTTP/1.1\r\nHost: x\r\n\r\n";
    let body = "{\"a\":1}".to_string();
    let raw = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\nContent-Type: application/json\r\n\
         Content-Length: 200\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{body}\r\n0\r\n\r\n{smuggled}",
        body.len()
    );
    let resp = send_raw(&h, raw.as_bytes()).await;
    assert!(resp.contains("connection: close"), "{resp}");
    assert_eq!(
        resp.matches("HTTP/1.1").count(),
        1,
        "the smuggled request was not answered: {resp}"
    );
    assert_eq!(h.mock.request_count(), 1);
    let seen = h.mock.last_request().unwrap();
    assert_eq!(seen.path, "/v1/chat/completions");
    assert_eq!(&seen.body[..], body.as_bytes());
    assert_eq!(seen.header("transfer-encoding"), None);
    h.stop().await;
}

#[tokio::test]
async fn header_bombs_are_refused() {
    let h = Harness::start(Backend::Sqlite, DEFAULT_ROUTES).await;
    let key = h.key().await;
    let mut many = format!("GET /v1/models HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\n");
    for i in 0..200 {
        many.push_str(&format!("x-h{i}: v\r\n"));
    }
    many.push_str("\r\n");
    let resp = send_raw(&h, many.as_bytes()).await;
    assert_eq!(raw_status(resp.as_bytes()), 431, "{resp}");
    let big = format!(
        "GET /v1/models HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\nCookie: {}\r\n\r\n",
        "a".repeat(100_000)
    );
    let resp = send_raw(&h, big.as_bytes()).await;
    assert_eq!(
        raw_status(resp.as_bytes()),
        431,
        "{}",
        &resp[..resp.len().min(200)]
    );
    assert_eq!(h.mock.request_count(), 0);
    // The server is still fine.
    let ok = h
        .http
        .get(h.url("/v1/models"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    h.stop().await;
}

/// Reads until the server closes the connection; returns what it sent. Neither
/// a close nor a reply within [`RAW_TIMEOUT`] fails the test.
async fn read_until_closed(s: &mut TcpStream) -> String {
    let mut out = Vec::new();
    let read = tokio::time::timeout(RAW_TIMEOUT, s.read_to_end(&mut out)).await;
    assert!(read.is_ok(), "the server kept the connection open: {out:?}");
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn idle_and_slow_header_connections_are_closed() {
    let yaml = format!("{DEFAULT_ROUTES}\n");
    let h = Harness::start_with_server_extra(
        Backend::Sqlite,
        &yaml,
        "header_read_timeout: 500ms, idle_timeout: 500ms",
    )
    .await;
    // Idle: connect and send nothing.
    let mut idle = TcpStream::connect(h.server().addr).await.unwrap();
    // Slowloris: a partial request line, then a header line now and then.
    let mut slow = TcpStream::connect(h.server().addr).await.unwrap();
    slow.write_all(b"GET /v1/models HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let start = Instant::now();
    let idle_reply = read_until_closed(&mut idle).await;
    let idle_after = start.elapsed();
    let mut writes = 0;
    for _ in 0..10 {
        if slow.write_all(b"X-A: b\r\n").await.is_err() {
            break;
        }
        writes += 1;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let slow_reply = read_until_closed(&mut slow).await;
    let slow_after = start.elapsed();
    // No complete request arrived, so there is nothing to answer: the server
    // closes both connections without a reply, at the timeout (not before, and
    // long before the slow client would have finished its headers).
    assert_eq!(idle_reply, "", "idle connection");
    assert_eq!(slow_reply, "", "slow-header connection");
    assert!(
        idle_after >= Duration::from_millis(450) && idle_after < Duration::from_millis(1500),
        "idle connection closed after {idle_after:?}"
    );
    assert!(
        slow_after >= Duration::from_millis(450) && slow_after < Duration::from_millis(1500),
        "slow-header connection closed after {slow_after:?} ({writes} header lines accepted)"
    );
    assert!(writes < 10, "the slow client was never cut off");
    // The server still answers a normal client.
    let key = h.key().await;
    let ok = h
        .http
        .get(h.url("/v1/models"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    h.stop().await;
}
