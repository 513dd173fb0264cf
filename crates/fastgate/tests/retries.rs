//! Retries only where safe: the exact number of upstream attempts for GET, POST
//! and LLM calls under the testkit's faults (fail once, reset after the request
//! was read, hang, unreachable).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{Backend, Harness};
use fastgate_testkit::MockReply;
use serde_json::{Value, json};

// The retry mechanics alone: the credential-health built-ins (a 429 cools the
// only key down; five failures open its circuit: see credential_health.rs)
// would turn the later cases into 503 no_credential.
const ROUTES: &str = r#"
health: { builtin_rules: false, circuit: { enabled: false } }
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
  - name: plain
    match: { path: "/plain/**" }
    upstream: mock
    retries: 2
    timeout: { first_byte: 400ms }
  - name: opted-in
    match: { path: "/opted/**" }
    upstream: mock
    retries: 2
    retry_on: [502, 503]
  - name: unreachable
    match: { path: "/dead/**" }
    upstream: dead
    retries: 2
models:
  - name: m
    fallbacks: [ m2 ]
    deployments:
      - { upstream: mock, model: up-m, retries: 2, timeout: { first_byte: 400ms } }
  - name: m2
    deployments:
      - { upstream: mock, model: up-m2 }
  - name: from-dead
    fallbacks: [ m2 ]
    deployments:
      - { upstream: dead, model: up-dead }
"#;

async fn start() -> (Harness, String) {
    let h = Harness::start(Backend::Sqlite, ROUTES).await;
    let key = h.key().await;
    (h, key)
}

async fn call(h: &Harness, key: &str, method: reqwest::Method, path: &str) -> (u16, Value) {
    let resp = common::http_client()
        .request(method, h.url(path))
        .bearer_auth(key)
        .body("{\"x\":1}")
        .header("content-type", "application/json")
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let body = resp.json().await.unwrap_or(Value::Null);
    (status, body)
}

/// How many requests the mock received on paths starting with `prefix`.
fn attempts(h: &Harness, prefix: &str) -> usize {
    h.mock
        .requests()
        .iter()
        .filter(|r| r.path_only().starts_with(prefix))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_errors_are_retried_for_idempotent_methods_only() {
    let (h, key) = start().await;
    use reqwest::Method;

    h.mock.enqueue(MockReply::error(502));
    let (status, body) = call(&h, &key, Method::GET, "/plain/get").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["path"], "/plain/get", "the retry was answered: {body}");
    assert_eq!(attempts(&h, "/plain/get"), 2);

    h.mock.enqueue(MockReply::error(502));
    let (status, body) = call(&h, &key, Method::POST, "/plain/post").await;
    assert_eq!(status, 502, "a POST is not retried after a 502: {body}");
    assert_eq!(attempts(&h, "/plain/post"), 1);

    // A 500 is never retried, whatever the method.
    h.mock.enqueue(MockReply::error(500));
    let (status, _) = call(&h, &key, Method::GET, "/plain/500").await;
    assert_eq!(status, 500);
    assert_eq!(attempts(&h, "/plain/500"), 1);

    // The route opts POSTs in for 502 and 503, not 504.
    h.mock.enqueue(MockReply::error(503));
    let (status, body) = call(&h, &key, Method::POST, "/opted/post").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(attempts(&h, "/opted/post"), 2);
    h.mock.enqueue(MockReply::error(504));
    let (status, _) = call(&h, &key, Method::POST, "/opted/504").await;
    assert_eq!(status, 504);
    assert_eq!(attempts(&h, "/opted/504"), 1);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_that_may_have_been_sent_is_not_resent() {
    let (h, key) = start().await;
    use reqwest::Method;

    // Reset after the mock read the whole request: a POST may have been processed.
    h.mock.enqueue(MockReply::Reset);
    let (status, body) = call(&h, &key, Method::POST, "/plain/reset-post").await;
    assert_eq!(status, 502, "{body}");
    assert_eq!(body["error"]["code"], "upstream_error");
    assert_eq!(attempts(&h, "/plain/reset-post"), 1);

    // The same fault on a GET: sending it twice is harmless, so it is retried.
    h.mock.enqueue(MockReply::Reset);
    let (status, _) = call(&h, &key, Method::GET, "/plain/reset-get").await;
    assert_eq!(status, 200);
    assert_eq!(attempts(&h, "/plain/reset-get"), 2);

    // An upstream that hangs is still working on the request: never retried.
    h.mock.enqueue(MockReply::Hang);
    let (status, body) = call(&h, &key, Method::GET, "/plain/hang").await;
    assert_eq!(status, 504, "{body}");
    assert_eq!(body["error"]["code"], "upstream_timeout");
    assert_eq!(attempts(&h, "/plain/hang"), 1);

    // Nothing listens: nothing was sent, so even a POST is tried again; it still fails.
    let (status, body) = call(&h, &key, Method::POST, "/dead/x").await;
    assert_eq!(status, 502);
    assert_eq!(body["error"]["code"], "upstream_unreachable");
    h.stop().await;
}

async fn chat(h: &Harness, key: &str, model: &str) -> (u16, Value) {
    let resp = common::http_client()
        .post(h.url("/v1/chat/completions"))
        .bearer_auth(key)
        .json(&json!({ "model": model, "messages": [ { "role": "user", "content": "hi" } ] }))
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// Upstream models the mock was asked for, in order.
fn models_asked(h: &Harness) -> Vec<String> {
    h.mock
        .requests()
        .iter()
        .filter_map(|r| r.json())
        .filter_map(|v| v["model"].as_str().map(str::to_owned))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn llm_deployments_retry_refusals_but_never_a_sent_request() {
    let (h, key) = start().await;

    // 429 then 200 on the same deployment: retried, no fallback needed.
    h.mock.enqueue(MockReply::error(429));
    let (status, body) = chat(&h, &key, "m").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(models_asked(&h), ["up-m", "up-m"]);

    // 500 three times: the deployment's 2 retries, then the fallback group.
    for _ in 0..3 {
        h.mock.enqueue(MockReply::error(500));
    }
    let (status, body) = chat(&h, &key, "m").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(models_asked(&h)[2..], ["up-m", "up-m", "up-m", "up-m2"]);

    // Reset after the request was read: the provider may be generating; no retry,
    // no fallback.
    let before = h.mock.request_count();
    h.mock.enqueue(MockReply::Reset);
    let (status, body) = chat(&h, &key, "m").await;
    assert_eq!(status, 502, "{body}");
    assert_eq!(h.mock.request_count() - before, 1);

    // Hang past the first-byte timeout: 504, one attempt.
    let before = h.mock.request_count();
    h.mock.enqueue(MockReply::Hang);
    let (status, body) = chat(&h, &key, "m").await;
    assert_eq!(status, 504, "{body}");
    assert_eq!(h.mock.request_count() - before, 1);

    // A deployment that cannot be reached never saw the request: next group.
    let before = h.mock.request_count();
    let (status, body) = chat(&h, &key, "from-dead").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(h.mock.request_count() - before, 1);
    assert_eq!(models_asked(&h).last().map(String::as_str), Some("up-m2"));
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_is_retried_once_a_byte_reached_the_client() {
    let (h, key) = start().await;
    // A plain GET stream (retries: 2) that breaks after its first lines.
    let resp = common::http_client()
        .get(h.url("/plain/stream"))
        .bearer_auth(&key)
        .header("x-mock-ndjson", "1")
        .header("x-mock-chunks", "5")
        .header("x-mock-reset-after", "3")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body = resp.bytes().await;
    assert!(body.is_err(), "the broken stream looked complete: {body:?}");
    assert_eq!(attempts(&h, "/plain/stream"), 1);

    // An LLM stream (deployment retries: 2, a fallback group) that breaks mid-way.
    let before = h.mock.request_count();
    let resp = common::http_client()
        .post(h.url("/v1/chat/completions"))
        .bearer_auth(&key)
        .header("x-mock-reset-after", "3")
        .json(&json!({ "model": "m", "stream": true,
                       "messages": [ { "role": "user", "content": "hi" } ] }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let text = String::from_utf8_lossy(&resp.bytes().await.unwrap_or_default()).into_owned();
    assert!(text.contains("tok0"), "{text}");
    assert!(
        text.contains("error"),
        "the stream ends with an error event: {text}"
    );
    assert!(
        !text.contains("[DONE]"),
        "a broken stream never ends with [DONE]: {text}"
    );
    assert_eq!(h.mock.request_count() - before, 1);
    h.stop().await;
}
