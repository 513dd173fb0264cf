//! Drives the mock upstream with a plain hyper client.

// Test code.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use bytes::Bytes;
use fastgate_testkit::sse::{SseEvent, SseParser, parse_sse};
use fastgate_testkit::{MockReply, MockUpstream};
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};

const T: Duration = Duration::from_secs(5);

fn client() -> Client<HttpConnector, Full<Bytes>> {
    Client::builder(TokioExecutor::new()).build_http()
}

async fn try_send(
    c: &Client<HttpConnector, Full<Bytes>>,
    mock: &MockUpstream,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Result<Response<Incoming>, hyper_util::client::legacy::Error> {
    let mut b = Request::builder()
        .method(method)
        .uri(format!("{}{path}", mock.url()));
    for (n, v) in headers {
        b = b.header(*n, *v);
    }
    // Bounded: a mock that never answers fails the test (tests of hangs wrap
    // this in a shorter timeout of their own).
    tokio::time::timeout(
        T,
        c.request(b.body(Full::new(Bytes::from(body.to_owned()))).unwrap()),
    )
    .await
    .unwrap_or_else(|_| panic!("no answer from the mock within {T:?}"))
}

async fn send(
    mock: &MockUpstream,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Response<Incoming> {
    try_send(&client(), mock, method, path, headers, body)
        .await
        .unwrap()
}

async fn text(resp: Response<Incoming>) -> String {
    let bytes = tokio::time::timeout(T, resp.into_body().collect())
        .await
        .unwrap_or_else(|_| panic!("body not complete within {T:?}"))
        .unwrap()
        .to_bytes();
    String::from_utf8(bytes.to_vec()).unwrap()
}

async fn json_of(resp: Response<Incoming>) -> Value {
    serde_json::from_str(&text(resp).await).unwrap()
}

/// Reads frames until `n` events were parsed in total (or the body ends).
async fn read_events(
    body: &mut Incoming,
    parser: &mut SseParser,
    out: &mut Vec<SseEvent>,
    n: usize,
) {
    while out.len() < n {
        let Some(frame) = tokio::time::timeout(T, body.frame()).await.unwrap() else {
            return;
        };
        if let Ok(data) = frame.unwrap().into_data() {
            out.extend(parser.feed(&data));
        }
    }
}

fn content(events: &[SseEvent]) -> String {
    events
        .iter()
        .filter_map(SseEvent::json)
        .filter_map(|v| {
            v.pointer("/choices/0/delta/content")
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .collect()
}

const CHAT: &str =
    r#"{"model":"gpt-test","messages":[{"role":"user","content":"say three words"}]}"#;
const CHAT_STREAM: &str =
    r#"{"model":"gpt-test","stream":true,"messages":[{"role":"user","content":"hi"}]}"#;

#[tokio::test]
async fn chat_completion_has_openai_shape() {
    let mock = MockUpstream::start().await;
    let resp = send(
        &mock,
        "POST",
        "/v1/chat/completions",
        &[("content-type", "application/json")],
        CHAT,
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/json");
    let v = json_of(resp).await;
    assert!(v["id"].as_str().unwrap().starts_with("chatcmpl-"));
    assert_eq!(v["object"], "chat.completion");
    assert!(v["created"].as_u64().unwrap() > 1_600_000_000);
    assert_eq!(v["model"], "gpt-test");
    assert_eq!(v["choices"][0]["index"], 0);
    assert_eq!(v["choices"][0]["message"]["role"], "assistant");
    assert_eq!(
        v["choices"][0]["message"]["content"],
        "tok0 tok1 tok2 tok3 tok4 "
    );
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    assert_eq!(
        v["usage"],
        json!({"prompt_tokens": 3, "completion_tokens": 5, "total_tokens": 8})
    );
}

#[tokio::test]
async fn chat_stream_sends_chunks_then_done() {
    let mock = MockUpstream::start().await;
    let resp = send(
        &mock,
        "POST",
        "/v1/chat/completions",
        &[("x-mock-chunks", "3")],
        CHAT_STREAM,
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let events = parse_sse(&text(resp).await);
    assert_eq!(events.len(), 6, "{events:?}");
    let first = events[0].json().unwrap();
    assert_eq!(first["object"], "chat.completion.chunk");
    assert_eq!(first["model"], "gpt-test");
    assert_eq!(first["choices"][0]["delta"]["role"], "assistant");
    assert!(first.get("usage").is_none());
    assert_eq!(content(&events), "tok0 tok1 tok2 ");
    let last = events[4].json().unwrap();
    assert_eq!(last["choices"][0]["finish_reason"], "stop");
    assert_eq!(last["id"], first["id"]);
    assert!(events[5].is_done());
    assert_eq!(mock.chunks_sent(), 6);
    assert_eq!(mock.streams_cancelled(), 0);
}

#[tokio::test]
async fn chat_stream_include_usage_adds_usage_chunk() {
    let mock = MockUpstream::start().await;
    let body = r#"{"model":"m","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"a b"}]}"#;
    let events =
        parse_sse(&text(send(&mock, "POST", "/v1/chat/completions", &[], body).await).await);
    assert_eq!(events.len(), 1 + 5 + 1 + 1 + 1);
    let usage = events[7].json().unwrap();
    assert_eq!(usage["choices"], json!([]));
    assert_eq!(
        usage["usage"],
        json!({"prompt_tokens": 2, "completion_tokens": 5, "total_tokens": 7})
    );
    assert_eq!(events[0].json().unwrap()["usage"], Value::Null);
    assert!(events[8].is_done());
}

#[tokio::test]
async fn chunk_delay_paces_the_stream() {
    let mock = MockUpstream::start().await;
    let headers = [("x-mock-chunks", "2"), ("x-mock-chunk-delay-ms", "40")];
    let resp = send(&mock, "POST", "/v1/chat/completions", &headers, CHAT_STREAM).await;
    let mut body = resp.into_body();
    let (mut parser, mut events) = (SseParser::new(), Vec::new());
    read_events(&mut body, &mut parser, &mut events, 1).await;
    let start = Instant::now();
    read_events(&mut body, &mut parser, &mut events, 5).await;
    assert!(
        start.elapsed() >= Duration::from_millis(120),
        "{:?}",
        start.elapsed()
    );
    assert!(events[4].is_done());
}

#[tokio::test]
async fn status_header_gives_openai_error() {
    let mock = MockUpstream::start().await;
    let headers = [("x-mock-status", "429"), ("x-mock-retry-after", "2")];
    let resp = send(&mock, "POST", "/v1/chat/completions", &headers, CHAT).await;
    assert_eq!(resp.status(), 429);
    assert_eq!(resp.headers()["retry-after"], "2");
    let v = json_of(resp).await;
    assert_eq!(v["error"]["code"], "rate_limit_exceeded");
    let v = json_of(send(&mock, "GET", "/anything", &[("x-mock-status", "503")], "").await).await;
    assert_eq!(v["error"]["type"], "server_error");
    assert_eq!(mock.request_count(), 2);
}

#[tokio::test]
async fn hold_gate_releases_the_rest_of_the_stream() {
    let mock = MockUpstream::start().await;
    let headers = [("x-mock-chunks", "2"), ("x-mock-hold", "g1")];
    let resp = send(&mock, "POST", "/v1/chat/completions", &headers, CHAT_STREAM).await;
    let mut body = resp.into_body();
    let (mut parser, mut events) = (SseParser::new(), Vec::new());
    read_events(&mut body, &mut parser, &mut events, 3).await;
    assert_eq!(content(&events), "tok0 tok1 ");
    assert_eq!(mock.chunks_sent(), 3);
    assert!(
        !mock
            .wait_until(Duration::from_millis(50), |m| m.chunks_sent() > 3)
            .await
    );
    mock.release("g1");
    read_events(&mut body, &mut parser, &mut events, usize::MAX).await;
    assert_eq!(events.len(), 5);
    assert_eq!(
        events[3].json().unwrap()["choices"][0]["finish_reason"],
        "stop"
    );
    assert!(events[4].is_done());
    // Gates stay open.
    let events = parse_sse(
        &text(send(&mock, "POST", "/v1/chat/completions", &headers, CHAT_STREAM).await).await,
    );
    assert_eq!(events.len(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_after_truncates_the_stream_with_an_error() {
    let mock = MockUpstream::start().await;
    let headers = [("x-mock-chunks", "5"), ("x-mock-reset-after", "3")];
    let resp = send(&mock, "POST", "/v1/chat/completions", &headers, CHAT_STREAM).await;
    let mut body = resp.into_body();
    let mut received = Vec::new();
    let error = loop {
        match tokio::time::timeout(T, body.frame()).await.unwrap() {
            Some(Ok(frame)) => received.extend_from_slice(&frame.into_data().unwrap()),
            Some(Err(e)) => break e,
            None => panic!("stream ended cleanly"),
        }
    };
    // RST: "connection reset by peer"; without it hyper would report an incomplete body.
    let debug = format!("{error:?}");
    assert!(
        debug.contains("ConnectionReset") || error.is_incomplete_message(),
        "{debug}"
    );
    let events = parse_sse(std::str::from_utf8(&received).unwrap());
    assert_eq!(events.len(), 3, "{events:?}");
    assert_eq!(content(&events), "tok0 tok1 ");
    assert_eq!(mock.chunks_sent(), 3);
    assert_eq!(mock.streams_cancelled(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_disconnect_counts_a_cancelled_stream() {
    let mock = MockUpstream::start().await;
    let headers = [("x-mock-hold", "never")];
    let resp = send(&mock, "POST", "/v1/chat/completions", &headers, CHAT_STREAM).await;
    let mut body = resp.into_body();
    let (mut parser, mut events) = (SseParser::new(), Vec::new());
    read_events(&mut body, &mut parser, &mut events, 2).await;
    drop(body);
    assert!(mock.wait_until(T, |m| m.streams_cancelled() == 1).await);
}

#[tokio::test]
async fn records_requests_and_echoes() {
    let mock = MockUpstream::start().await;
    let c = client();
    let resp = try_send(
        &c,
        &mock,
        "POST",
        "/echo/a/b?x=1&y=2",
        &[("x-test", "yes")],
        "hello",
    )
    .await
    .unwrap();
    let v = json_of(resp).await;
    assert_eq!(v["method"], "POST");
    assert_eq!(v["path"], "/echo/a/b?x=1&y=2");
    assert_eq!(v["headers"]["x-test"], "yes");
    assert_eq!(v["body"], "hello");
    let resp = try_send(
        &c,
        &mock,
        "PUT",
        "/other",
        &[("content-type", "application/json")],
        r#"{"k":[1,2]}"#,
    )
    .await
    .unwrap();
    assert_eq!(resp.headers()["x-mock-request-index"], "1");
    assert_eq!(json_of(resp).await["body"], r#"{"k":[1,2]}"#);

    let all = mock.requests();
    assert_eq!(all.len(), 2);
    assert_eq!(all[0].method, "POST");
    assert_eq!(all[0].path, "/echo/a/b?x=1&y=2");
    assert_eq!(all[0].path_only(), "/echo/a/b");
    assert_eq!(all[0].header("x-test"), Some("yes"));
    assert_eq!(&all[0].body[..], b"hello");
    assert!(all[0].json().is_none());
    let last = mock.last_request().unwrap();
    assert_eq!(last.method, "PUT");
    assert_eq!(last.json().unwrap()["k"][1], 2);
    // The pooled client reused its connection.
    assert_eq!(mock.connection_count(), 1);
    let _ = send(&mock, "GET", "/", &[], "").await;
    assert_eq!(mock.connection_count(), 2);
}

#[tokio::test]
async fn enqueued_replies_are_consumed_in_order() {
    let mock = MockUpstream::start().await;
    mock.enqueue(MockReply::Status {
        status: 418,
        body: "teapot".into(),
        headers: vec![("x-extra".into(), "1".into())],
    });
    mock.enqueue(MockReply::Delay(Duration::from_millis(30)));
    mock.enqueue(MockReply::Reset);
    mock.enqueue(MockReply::Hang);

    let resp = send(&mock, "GET", "/x", &[], "").await;
    assert_eq!(resp.status(), 418);
    assert_eq!(resp.headers()["x-extra"], "1");
    assert_eq!(text(resp).await, "teapot");

    let start = Instant::now();
    let resp = send(&mock, "GET", "/x", &[], "").await;
    assert_eq!(resp.status(), 200);
    assert!(start.elapsed() >= Duration::from_millis(30));

    assert!(
        try_send(&client(), &mock, "GET", "/x", &[], "")
            .await
            .is_err()
    );

    let hung = tokio::time::timeout(
        Duration::from_millis(100),
        send(&mock, "GET", "/x", &[], ""),
    )
    .await;
    assert!(hung.is_err(), "hang answered");

    assert_eq!(send(&mock, "GET", "/x", &[], "").await.status(), 200);
    assert_eq!(mock.request_count(), 5);
}

#[tokio::test]
async fn header_controls_hang_delay_and_reset() {
    let mock = MockUpstream::start().await;
    let hung = tokio::time::timeout(
        Duration::from_millis(100),
        send(&mock, "GET", "/x", &[("x-mock-hang", "1")], ""),
    )
    .await;
    assert!(hung.is_err());
    let start = Instant::now();
    let _ = text(send(&mock, "GET", "/x", &[("x-mock-delay-ms", "50")], "").await).await;
    assert!(start.elapsed() >= Duration::from_millis(50));
    let reset = try_send(
        &client(),
        &mock,
        "POST",
        "/v1/chat/completions",
        &[("x-mock-reset-after", "0")],
        CHAT,
    )
    .await;
    assert!(reset.is_err());
}

#[tokio::test]
async fn fail_key_only_affects_that_key() {
    let mock = MockUpstream::start().await;
    mock.fail_key(
        "sk-a",
        MockReply::error(429).with_header("retry-after", "1"),
    );
    let a = send(
        &mock,
        "POST",
        "/v1/chat/completions",
        &[("authorization", "Bearer sk-a")],
        CHAT,
    )
    .await;
    assert_eq!(a.status(), 429);
    assert_eq!(a.headers()["retry-after"], "1");
    assert_eq!(json_of(a).await["error"]["code"], "rate_limit_exceeded");
    let b = send(
        &mock,
        "POST",
        "/v1/chat/completions",
        &[("authorization", "Bearer sk-b")],
        CHAT,
    )
    .await;
    assert_eq!(b.status(), 200);
    mock.clear_key("sk-a");
    let a = send(
        &mock,
        "POST",
        "/v1/chat/completions",
        &[("x-api-key", "sk-a")],
        CHAT,
    )
    .await;
    assert_eq!(a.status(), 200);
}

#[tokio::test]
async fn embeddings_models_filler_and_ndjson() {
    let mock = MockUpstream::start().await;
    let v = json_of(
        send(
            &mock,
            "POST",
            "/v1/embeddings",
            &[],
            r#"{"model":"e","input":["a","b c"]}"#,
        )
        .await,
    )
    .await;
    assert_eq!(v["object"], "list");
    assert_eq!(v["model"], "e");
    assert_eq!(v["data"][1]["object"], "embedding");
    assert_eq!(v["data"][1]["index"], 1);
    assert_eq!(v["data"][0]["embedding"].as_array().unwrap().len(), 8);
    assert!(v["usage"]["total_tokens"].as_u64().unwrap() >= 2);

    let v = json_of(send(&mock, "GET", "/v1/models", &[], "").await).await;
    assert_eq!(v["object"], "list");
    assert_eq!(v["data"][0]["object"], "model");

    let body = text(send(&mock, "GET", "/big", &[("x-mock-body-bytes", "100000")], "").await).await;
    assert_eq!(body.len(), 100_000);

    let resp = send(
        &mock,
        "POST",
        "/api/chat",
        &[("x-mock-ndjson", "1"), ("x-mock-chunks", "3")],
        CHAT,
    )
    .await;
    assert_eq!(resp.headers()["content-type"], "application/x-ndjson");
    let lines: Vec<Value> = text(resp)
        .await
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 4);
    assert_eq!(lines[2]["message"]["content"], "tok2 ");
    assert_eq!(lines[3]["done"], true);
    assert_eq!(mock.chunks_sent(), 4);
}

#[tokio::test]
async fn wait_for_requests_and_drop_shuts_down() {
    let mock = MockUpstream::start().await;
    let url = mock.url();
    assert!(url.starts_with("http://127.0.0.1:"));
    assert!(!mock.wait_for_requests(1, Duration::from_millis(20)).await);
    let hanging = {
        let req = Request::get(format!("{url}/hang"))
            .header("x-mock-hang", "1")
            .body(Full::new(Bytes::new()))
            .unwrap();
        let c = client();
        tokio::spawn(async move { c.request(req).await })
    };
    assert!(mock.wait_for_requests(1, T).await);
    let addr = mock.addr();
    drop(mock);
    // The hanging request fails once the server is gone, and nothing listens any more.
    let res = tokio::time::timeout(T, hanging).await.unwrap().unwrap();
    assert!(res.is_err());
    let refused = tokio::time::timeout(T, async {
        loop {
            if tokio::net::TcpStream::connect(addr).await.is_err() {
                return;
            }
            tokio::task::yield_now().await;
        }
    })
    .await;
    assert!(refused.is_ok());
}
