//! Route matching through the real server: every pattern kind, methods, header
//! and body conditions, priority, target paths and strip_prefix.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{Backend, Harness};
use serde_json::{Value, json};

const ROUTES: &str = r#"
upstreams:
  - { name: mock, kind: http, base_url: "{MOCK}/base", credentials: [ { name: k1, key: "sk-x" } ] }
routes:
  - { name: exact, priority: 100, match: { path: "/a/b" }, upstream: mock }
  - { name: one-seg, priority: 100, match: { path: "/v1/*", methods: [GET] }, upstream: mock }
  - { name: deep, priority: 100, match: { path: "/api/v2/**" }, upstream: mock,
      target_path: "/echo/v2/{**}" }
  - { name: user, priority: 100, match: { path: "/user/{id}" }, upstream: mock,
      target_path: "/echo/users/{id}/profile" }
  - { name: ext, priority: 100, match: { path: "/file/*.json" }, upstream: mock }
  - { name: any-file, priority: 100, match: { path: "/file/*" }, upstream: mock }
  - { name: strip, priority: 100, match: { path: "/openai/**" }, upstream: mock, strip_prefix: true }
  - { name: team-ml, priority: 50, match: { path: "/team", headers: { x-team: ml } }, upstream: mock }
  - { name: team-any, priority: 60, match: { path: "/team" }, upstream: mock }
  - { name: model-4o, priority: 10, match: { path: "/chat", methods: [POST], body: { model: "gpt-4o" } }, upstream: mock }
  - { name: chat-other, priority: 20, match: { path: "/chat", methods: [POST] }, upstream: mock }
  - { name: low, priority: 500, match: { path: "/prio/**" }, upstream: mock }
  - { name: high, priority: 5, match: { path: "/prio/x" }, upstream: mock }
  - { name: off, active: false, match: { path: "/off" }, upstream: mock }
  - { name: public, auth: false, match: { path: "/public/**" }, upstream: mock }
"#;

/// Send a request and return (status, route recorded in the audit log, upstream path).
async fn probe(
    h: &Harness,
    key: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<Value>,
) -> (u16, Option<String>, Option<String>) {
    let before = h.mock.request_count();
    let mut rb = h
        .http
        .request(method.parse().unwrap(), h.url(path))
        .bearer_auth(key);
    for (k, v) in headers {
        rb = rb.header(*k, *v);
    }
    if let Some(b) = body {
        rb = rb.json(&b);
    }
    let resp = rb.send().await.unwrap();
    let status = resp.status().as_u16();
    let rid = resp.headers()["x-request-id"].to_str().unwrap().to_string();
    let _ = resp.bytes().await;
    let rec = h.audit_of(&rid).await;
    let upstream_path =
        (h.mock.request_count() > before).then(|| h.mock.last_request().unwrap().path);
    (status, rec.route, upstream_path)
}

/// method, path, headers, body, expected status, route, upstream path.
type Case = (
    &'static str,
    &'static str,
    Vec<(&'static str, &'static str)>,
    Option<Value>,
    u16,
    Option<&'static str>,
    Option<&'static str>,
);

async fn every_pattern_kind(backend: Backend) {
    let h = Harness::start(backend, ROUTES).await;
    let key = h.key().await;
    let cases: Vec<Case> = vec![
        (
            "GET",
            "/a/b",
            vec![],
            None,
            200,
            Some("exact"),
            Some("/base/a/b"),
        ),
        ("GET", "/a/b/c", vec![], None, 404, None, None),
        (
            "GET",
            "/v1/models",
            vec![],
            None,
            200,
            Some("one-seg"),
            Some("/base/v1/models"),
        ),
        ("POST", "/v1/models", vec![], None, 404, None, None),
        ("GET", "/v1/a/b", vec![], None, 404, None, None),
        (
            "GET",
            "/api/v2",
            vec![],
            None,
            200,
            Some("deep"),
            Some("/base/echo/v2/"),
        ),
        (
            "GET",
            "/api/v2/x/y?q=1",
            vec![],
            None,
            200,
            Some("deep"),
            Some("/base/echo/v2/x/y?q=1"),
        ),
        (
            "GET",
            "/user/42",
            vec![],
            None,
            200,
            Some("user"),
            Some("/base/echo/users/42/profile"),
        ),
        (
            "GET",
            "/file/data.json",
            vec![],
            None,
            200,
            Some("ext"),
            Some("/base/file/data.json"),
        ),
        (
            "GET",
            "/file/data.txt",
            vec![],
            None,
            200,
            Some("any-file"),
            Some("/base/file/data.txt"),
        ),
        (
            "GET",
            "/openai/v1/chat",
            vec![],
            None,
            200,
            Some("strip"),
            Some("/base/v1/chat"),
        ),
        (
            "GET",
            "/team",
            vec![("x-team", "ml")],
            None,
            200,
            Some("team-ml"),
            Some("/base/team"),
        ),
        (
            "GET",
            "/team",
            vec![("x-team", "web")],
            None,
            200,
            Some("team-any"),
            Some("/base/team"),
        ),
        (
            "POST",
            "/chat",
            vec![],
            Some(json!({ "model": "gpt-4o" })),
            200,
            Some("model-4o"),
            Some("/base/chat"),
        ),
        (
            "POST",
            "/chat",
            vec![],
            Some(json!({ "model": "other" })),
            200,
            Some("chat-other"),
            Some("/base/chat"),
        ),
        (
            "GET",
            "/prio/x",
            vec![],
            None,
            200,
            Some("high"),
            Some("/base/prio/x"),
        ),
        (
            "GET",
            "/prio/y",
            vec![],
            None,
            200,
            Some("low"),
            Some("/base/prio/y"),
        ),
        ("GET", "/off", vec![], None, 404, None, None),
        // Encoded tricks resolve before matching.
        (
            "GET",
            "/user/%34%32",
            vec![],
            None,
            200,
            Some("user"),
            Some("/base/echo/users/42/profile"),
        ),
        (
            "GET",
            "/a//b",
            vec![],
            None,
            200,
            Some("exact"),
            Some("/base/a/b"),
        ),
    ];
    for (method, path, headers, body, status, route, upstream_path) in cases {
        let got = probe(&h, &key, method, path, &headers, body).await;
        assert_eq!(got.0, status, "{method} {path}");
        assert_eq!(got.1.as_deref(), route, "{method} {path}");
        assert_eq!(got.2.as_deref(), upstream_path, "{method} {path}");
    }
    // A public route needs no key; others still do.
    let resp = h.http.get(h.url("/public/x")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let resp = h.http.get(h.url("/a/b")).send().await.unwrap();
    assert_eq!(resp.status(), 401);
    h.stop().await;
}
both_backends!(every_pattern_kind, every_pattern_kind);
