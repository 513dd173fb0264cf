//! `POST /admin/api/routes/test` (a dry run: nothing reaches the upstream) and
//! `POST /admin/api/routes/{name}/probe` (one real request through the route).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{Backend, Harness};
use reqwest::Method;
use serde_json::{Value, json};

const CONFIG: &str = r#"
upstreams:
  - name: mock
    kind: openai
    base_url: "{MOCK}/base"
    headers: { x-tenant: "tenant-config-value" }
    credentials: [ { name: k1, key: "sk-provider-secret-1" } ]
  - name: dead
    kind: openai
    base_url: "{DEAD}"
    credentials: [ { name: kd, key: "sk-provider-secret-dead" } ]
routes:
  - name: chat
    priority: 100
    match: { path: "/v1/chat/completions", methods: [POST] }
    upstream: mock
    remove_headers: [ x-debug ]
    add_headers: { x-from: "route-config-value" }
    add_body_fields: { user: "added-body-value" }
  - name: v1
    priority: 200
    match: { path: "/v1/**" }
    upstream: mock
    strip_prefix: true
  - name: gone
    match: { path: "/gone/**" }
    upstream: dead
  - name: off
    match: { path: "/off" }
    upstream: mock
    active: false
"#;

fn header<'v>(report: &'v Value, name: &str) -> Option<&'v str> {
    report["headers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["name"] == name)
        .and_then(|h| h["value"].as_str())
}

async fn post(h: &Harness, path: &str, body: Option<Value>) -> (u16, String) {
    let resp = h.admin(Method::POST, path, body).await;
    let status = resp.status().as_u16();
    (status, resp.text().await.unwrap())
}

async fn dry_run_sends_nothing(backend: Backend) {
    let h = Harness::start(backend, CONFIG).await;
    let (status, text) = post(
        &h,
        "/admin/api/routes/test",
        Some(json!({
            "method": "post",
            "path": "/v1/chat/completions?alt=1&access_token=tok-in-query",
            "headers": { "x-debug": "1", "x-keep": "kept", "authorization": "Bearer fg_client_key" },
            "body": { "model": "m", "messages": [] }
        })),
    )
    .await;
    assert_eq!(status, 200, "{text}");
    for secret in [
        "sk-provider-secret-1",
        "tenant-config-value",
        "route-config-value",
        "added-body-value",
        "tok-in-query",
        "fg_client_key",
    ] {
        assert!(!text.contains(secret), "{secret} in {text}");
    }
    let r: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(r["matched"], true);
    assert_eq!(r["route"], "chat");
    assert_eq!(r["upstream"], "mock");
    assert_eq!(r["method"], "POST");
    assert_eq!(r["credential"], "k1");
    assert_eq!(
        r["target_url"],
        format!(
            "{}/base/v1/chat/completions?alt=1&access_token=[redacted]",
            h.mock.url()
        )
    );
    assert_eq!(header(&r, "authorization"), Some("[redacted]"));
    assert_eq!(header(&r, "x-tenant"), Some("[redacted]"));
    assert_eq!(header(&r, "x-from"), Some("[redacted]"));
    assert_eq!(header(&r, "x-keep"), Some("kept"));
    assert_eq!(header(&r, "x-debug"), None);
    assert_eq!(r["body"]["model"], "m");
    assert_eq!(r["body"]["user"], "[redacted]");

    // strip_prefix, and an unmatched path with its reason.
    let (_, text) = post(
        &h,
        "/admin/api/routes/test",
        Some(json!({ "path": "/v1/models" })),
    )
    .await;
    let r: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(r["route"], "v1");
    assert_eq!(r["target_url"], format!("{}/base/models", h.mock.url()));
    let (status, text) = post(
        &h,
        "/admin/api/routes/test",
        Some(json!({ "path": "/nothing/here" })),
    )
    .await;
    assert_eq!(status, 200);
    let r: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(r["matched"], false);
    assert!(r["reason"].as_str().unwrap().contains("no route"), "{r}");

    assert_eq!(h.mock.request_count(), 0, "a dry run reached the upstream");
    h.stop().await;
}

async fn bad_input_and_auth(backend: Backend) {
    let h = Harness::start(backend, CONFIG).await;
    for (body, want) in [
        (json!({ "method": "G E T", "path": "/v1/x" }), "method"),
        (json!({ "path": "no-slash" }), "path"),
        (json!({ "path": "/v1/x", "bogus": 1 }), "bogus"),
        (
            json!({ "method": "POST", "path": "/v1/chat/completions", "body": [1] }),
            "JSON object",
        ),
    ] {
        let (status, text) = post(&h, "/admin/api/routes/test", Some(body)).await;
        assert_eq!(status, 400, "{text}");
        let v: Value = serde_json::from_str(&text).unwrap();
        let msg = v["error"]["message"].as_str().unwrap();
        assert!(msg.contains(want), "{want}: {msg}");
    }
    // No admin token, or a gateway key instead of it.
    let key = h.key().await;
    for path in ["/admin/api/routes/test", "/admin/api/routes/v1/probe"] {
        let resp = common::http_client()
            .post(h.url(path))
            .json(&json!({ "path": "/v1/x" }))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 401, "{path}");
        let resp = common::http_client()
            .post(h.url(path))
            .bearer_auth(&key)
            .json(&json!({ "path": "/v1/x" }))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 401, "{path}");
    }
    assert_eq!(h.mock.request_count(), 0);
    h.stop().await;
}

async fn probe_reaches_the_upstream(backend: Backend) {
    let h = Harness::start(backend, CONFIG).await;
    // No body: the route's pattern "/v1/**" becomes "/v1/", method GET.
    let (status, text) = post(&h, "/admin/api/routes/v1/probe", None).await;
    assert_eq!(status, 200, "{text}");
    assert!(!text.contains("sk-provider-secret-1"), "{text}");
    let r: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(r["route"], "v1");
    assert_eq!(r["status"], 200, "{r}");
    assert_eq!(r["error"], Value::Null);
    assert_eq!(r["target_url"], format!("{}/base/", h.mock.url()));
    assert!(r["duration_ms"].as_u64().is_some() && r["ttfb_ms"].as_u64().is_some());
    // The mock echoes the request, credential included: the preview shows the
    // echo with the credential and the configured values scrubbed.
    let preview = r["body_preview"].as_str().unwrap();
    assert!(preview.contains("\"path\":\"/base/\""), "{preview}");
    assert!(
        preview.contains("\"authorization\":\"[redacted]\""),
        "{preview}"
    );
    assert!(!preview.contains("tenant-config-value"), "{preview}");
    assert!(
        r["response_headers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|h| h["name"] == "content-type"),
        "{r}"
    );
    let seen = h.mock.last_request().unwrap();
    assert_eq!(h.mock.request_count(), 1);
    assert_eq!(seen.method, "GET");
    assert_eq!(seen.path, "/base/");
    assert_eq!(
        seen.header("authorization"),
        Some("Bearer sk-provider-secret-1")
    );
    assert_eq!(seen.header("x-tenant"), Some("tenant-config-value"));

    // A body and a path: the route's transforms apply, as on the proxy.
    let (status, text) = post(
        &h,
        "/admin/api/routes/chat/probe",
        Some(
            json!({ "path": "/v1/chat/completions", "headers": { "x-debug": "1" },
                     "body": { "model": "m", "messages": [] } }),
        ),
    )
    .await;
    assert_eq!(status, 200, "{text}");
    let seen = h.mock.last_request().unwrap();
    assert_eq!(seen.method, "POST");
    assert_eq!(seen.header("x-from"), Some("route-config-value"));
    assert_eq!(seen.header("x-debug"), None);
    assert_eq!(seen.json().unwrap()["user"], "added-body-value");
    h.stop().await;
}

async fn probe_errors(backend: Backend) {
    let h = Harness::start(backend, CONFIG).await;
    // Nothing listens: the probe ran, the upstream did not answer.
    let (status, text) = post(&h, "/admin/api/routes/gone/probe", None).await;
    assert_eq!(status, 200, "{text}");
    let r: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(r["status"], Value::Null);
    let err = r["error"].as_str().unwrap();
    assert!(err.contains("cannot connect to upstream 'dead'"), "{err}");
    assert!(!text.contains("sk-provider-secret-dead"), "{text}");

    let (status, text) = post(&h, "/admin/api/routes/nope/probe", None).await;
    assert_eq!(status, 404, "{text}");
    assert!(text.contains("route 'nope'"), "{text}");
    let (status, text) = post(&h, "/admin/api/routes/off/probe", None).await;
    assert_eq!(status, 409, "{text}");
    assert!(text.contains("inactive"), "{text}");
    // A path another route takes.
    let (status, text) = post(
        &h,
        "/admin/api/routes/chat/probe",
        Some(json!({ "path": "/v1/models" })),
    )
    .await;
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("matches route 'v1'"), "{text}");
    let (status, text) = post(
        &h,
        "/admin/api/routes/v1/probe",
        Some(json!({ "method": "BAD METHOD" })),
    )
    .await;
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("method"), "{text}");
    assert_eq!(h.mock.request_count(), 0);
    h.stop().await;
}

both_backends!(dry_run_sends_nothing_upstream, dry_run_sends_nothing);
both_backends!(bad_input_and_auth_are_refused, bad_input_and_auth);
both_backends!(probe_sends_one_real_request, probe_reaches_the_upstream);
both_backends!(probe_reports_failures, probe_errors);
