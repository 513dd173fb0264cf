//! The proxy end to end: credentials, transforms, errors, audit.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{Backend, DEFAULT_ROUTES, Harness};
use fastgate_testkit::MockReply;
use serde_json::{Value, json};

async fn forwards_with_provider_credential(backend: Backend) {
    let h = Harness::start(backend, DEFAULT_ROUTES).await;
    let key = h.key().await;
    let resp = h
        .http
        .post(h.url("/v1/chat/completions"))
        .bearer_auth(&key)
        .header("x-debug", "secret-debug")
        .header("x-keep", "yes")
        .header("connection", "x-keep2")
        .header("x-keep2", "dropped-by-connection")
        .json(&json!({ "model": "gpt-4o", "messages": [{ "role": "user", "content": "hi" }] }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let rid = resp.headers()["x-request-id"].to_str().unwrap().to_string();
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(body["model"], "gpt-4o");

    let seen = h.mock.last_request().unwrap();
    assert_eq!(
        seen.header("authorization"),
        Some("Bearer sk-provider-secret-1")
    );
    assert!(
        !format!("{:?}", seen.headers).contains(&key),
        "client key leaked upstream"
    );
    assert_eq!(seen.header("x-debug"), None, "remove_headers");
    assert_eq!(seen.header("x-keep2"), None, "connection-named header");
    assert_eq!(seen.header("x-keep"), Some("yes"));
    assert_eq!(seen.header("x-from"), Some("fastgate"), "add_headers");
    assert_eq!(seen.header("x-request-id"), Some(rid.as_str()));
    assert_eq!(
        seen.header("host"),
        Some(h.mock.addr().to_string().as_str())
    );

    let rec = h.audit_of(&rid).await;
    assert_eq!(rec.status_code, 200);
    assert_eq!(
        rec.error_message, None,
        "a complete response is not an error"
    );
    assert_eq!(rec.route.as_deref(), Some("chat"));
    assert_eq!(rec.upstream.as_deref(), Some("mock"));
    assert_eq!(rec.credential.as_deref(), Some("k1"));
    assert_eq!(rec.model.as_deref(), Some("gpt-4o"));
    assert!(rec.key_id.is_some());
    assert!(rec.ttfb_ms.is_some());
    assert!(rec.request_bytes > 0 && rec.response_bytes > 0);
    assert_eq!(rec.client_ip.as_deref(), Some("127.0.0.1"));
    let headers = rec.request_headers.unwrap();
    assert!(!headers.contains(&key), "audit headers must redact the key");
    assert!(headers.contains("[redacted]"));
    assert!(rec.request_body.unwrap().contains("gpt-4o"));
    assert!(rec.response_body.unwrap().contains("chat.completion"));
    h.stop().await;
}
both_backends!(
    forwards_with_provider_credential,
    forwards_with_provider_credential
);

async fn x_api_key_and_body_fields(backend: Backend) {
    let yaml = r#"
upstreams:
  - { name: claude, kind: anthropic, base_url: "{MOCK}", credentials: [ { name: a1, key: "sk-ant-secret" } ] }
routes:
  - name: msgs
    match: { path: "/v1/messages", methods: [POST] }
    upstream: claude
    target_path: "/echo/messages"
    add_body_fields: { user: "gateway", metadata: { team: "ml" } }
"#;
    let h = Harness::start(backend, yaml).await;
    let key = h.key().await;
    let resp = h
        .http
        .post(h.url("/v1/messages"))
        .header("x-api-key", &key)
        .json(&json!({ "model": "claude", "user": "client" }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let seen = h.mock.last_request().unwrap();
    assert_eq!(seen.path, "/echo/messages");
    assert_eq!(seen.header("x-api-key"), Some("sk-ant-secret"));
    assert_eq!(seen.header("authorization"), None);
    assert_eq!(seen.header("anthropic-version"), Some("2023-06-01"));
    let body = seen.json().unwrap();
    assert_eq!(body["user"], "gateway", "add_body_fields overrides");
    assert_eq!(body["metadata"]["team"], "ml");
    assert_eq!(body["model"], "claude");

    // Malformed JSON on a route that needs the body: 400, nothing forwarded.
    let before = h.mock.request_count();
    let resp = h
        .http
        .post(h.url("/v1/messages"))
        .header("x-api-key", &key)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let err: Value = resp.json().await.unwrap();
    assert_eq!(
        err["type"], "error",
        "anthropic error shape on /v1/messages"
    );
    assert_eq!(h.mock.request_count(), before);
    h.stop().await;
}
both_backends!(x_api_key_and_body_fields, x_api_key_and_body_fields);

async fn error_statuses(backend: Backend) {
    let yaml = r#"
upstreams:
  - { name: mock, kind: openai, base_url: "{MOCK}", credentials: [ { name: k1, key: "sk-1" } ] }
  - { name: dead, kind: openai, base_url: "{DEAD}", credentials: [ { name: k1, key: "sk-1" } ] }
routes:
  - { name: chat, match: { path: "/v1/chat/completions", methods: [POST] }, upstream: mock }
  - { name: other, match: { path: "/other/**" }, upstream: mock }
  - { name: dead, match: { path: "/dead" }, upstream: dead }
  - { name: slow, match: { path: "/slow" }, upstream: mock, target_path: "/echo/slow",
      timeout: { first_byte: 300ms } }
"#;
    let h = Harness::start(backend, yaml).await;
    let key = h.key().await;
    let (_, limited) = h
        .create_key(json!({ "name": "limited", "allowed_routes": ["chat"] }))
        .await;
    let chat = |k: Option<&str>| {
        let mut rb = h
            .http
            .post(h.url("/v1/chat/completions"))
            .json(&json!({ "model": "m" }));
        if let Some(k) = k {
            rb = rb.bearer_auth(k);
        }
        rb
    };
    let status_and_code = |resp: reqwest::Response| async move {
        let s = resp.status().as_u16();
        let v: Value = resp.json().await.unwrap();
        (
            s,
            v["error"]["code"].as_str().unwrap_or_default().to_string(),
            v,
        )
    };

    let (s, code, _) = status_and_code(chat(None).send().await.unwrap()).await;
    assert_eq!((s, code.as_str()), (401, "missing_api_key"));
    let (s, code, v) = status_and_code(chat(Some("fg_nope")).send().await.unwrap()).await;
    assert_eq!((s, code.as_str()), (401, "invalid_api_key"));
    assert_eq!(v["error"]["type"], "authentication_error");

    let (s, code, _) = status_and_code(
        h.http
            .get(h.url("/other/x"))
            .bearer_auth(&limited)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((s, code.as_str()), (403, "route_not_allowed"));
    let (s, code, _) = status_and_code(
        h.http
            .get(h.url("/nothing/here"))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((s, code.as_str()), (404, "route_not_found"));

    // Oversized body: 413 before any upstream connection.
    let conns = h.mock.connection_count();
    let big = vec![b'a'; 70_000];
    let resp = h
        .http
        .post(h.url("/other/big"))
        .bearer_auth(&key)
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 413);
    // Chunked (no Content-Length) too.
    let stream = futures_util::stream::iter(
        (0..40).map(|_| Ok::<_, std::io::Error>(bytes::Bytes::from(vec![b'b'; 4096]))),
    );
    let resp = h
        .http
        .post(h.url("/other/big"))
        .bearer_auth(&key)
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 413);
    assert_eq!(
        h.mock.connection_count(),
        conns,
        "no upstream connection for 413"
    );

    let (s, code, _) = status_and_code(
        h.http
            .get(h.url("/dead"))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((s, code.as_str()), (502, "upstream_unreachable"));
    let (s, code, _) = status_and_code(
        h.http
            .get(h.url("/slow"))
            .bearer_auth(&key)
            .header("x-mock-delay-ms", "3000")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((s, code.as_str()), (504, "upstream_timeout"));

    // Upstream errors pass through unchanged: status, headers and body bytes.
    let upstream_body =
        r#"{"error":{"message":"slow down (upstream)","type":"requests","code":"upstream_429"}}"#;
    h.mock.enqueue(MockReply::Status {
        status: 429,
        body: upstream_body.to_string(),
        headers: vec![
            ("retry-after".into(), "7".into()),
            ("x-ratelimit-remaining-requests".into(), "0".into()),
        ],
    });
    let resp = chat(Some(&key)).send().await.unwrap();
    assert_eq!(resp.status(), 429);
    assert_eq!(resp.headers()["retry-after"], "7");
    assert_eq!(resp.headers()["x-ratelimit-remaining-requests"], "0");
    assert_eq!(resp.headers()["content-type"], "application/json");
    assert!(
        resp.headers().contains_key("x-mock-request-index"),
        "the mock's answer"
    );
    assert_eq!(resp.text().await.unwrap(), upstream_body);

    // Every request above produced exactly one audit record.
    let records = h.audit().await;
    let statuses: Vec<u16> = records.iter().rev().map(|r| r.status_code).collect();
    assert_eq!(
        statuses,
        vec![401, 401, 403, 404, 413, 413, 502, 504, 429],
        "{records:#?}"
    );
    assert!(
        records
            .iter()
            .all(|r| r.error_message.is_some() || r.status_code == 429)
    );
    h.stop().await;
}
both_backends!(error_statuses, error_statuses);

async fn expired_and_revoked_keys(backend: Backend) {
    let h = Harness::start(backend, DEFAULT_ROUTES).await;
    let (id, key) = h
        .create_key(json!({ "name": "soon", "expires_in": "1h" }))
        .await;
    let (rid, rkey) = h.create_key(json!({ "name": "gone" })).await;
    let ok = h
        .http
        .get(h.url("/v1/models"))
        .bearer_auth(&rkey)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    let resp = h
        .http
        .delete(h.url(&format!("/admin/api/keys/{rid}")))
        .bearer_auth(common::ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let resp = h
        .http
        .get(h.url("/v1/models"))
        .bearer_auth(&rkey)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["code"], "revoked_api_key");

    // The key works while it is valid…
    let before = h.mock.request_count();
    let resp = h
        .http
        .get(h.url("/v1/models"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(h.mock.request_count(), before + 1);
    // …and not once its expiry is in the past.
    let past = (chrono::Utc::now() - chrono::Duration::minutes(1)).to_rfc3339();
    let resp = h
        .admin(
            reqwest::Method::PATCH,
            &format!("/admin/api/keys/{id}"),
            Some(json!({ "expires_at": past })),
        )
        .await;
    assert_eq!(resp.status(), 200);
    let resp = h
        .http
        .get(h.url("/v1/models"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["code"], "expired_api_key");
    assert_eq!(v["error"]["type"], "authentication_error");
    assert_eq!(h.mock.request_count(), before + 1, "nothing forwarded");
    assert_ne!(id, rid);
    h.stop().await;
}
both_backends!(expired_and_revoked_keys, expired_and_revoked_keys);

async fn traversal_never_reaches_admin(backend: Backend) {
    let h = Harness::start(backend, DEFAULT_ROUTES).await;
    let key = h.key().await;
    for path in [
        "/v1/../admin/api/keys",
        "/v1/%2e%2e/admin/api/keys",
        "/v1/%2E%2E%2Fadmin/api/keys",
        "//admin/api/keys",
        "/v1/..%5cadmin/api/keys",
        "/ADMIN/api/keys",
    ] {
        // reqwest would normalise dots itself: send the raw target with a socket.
        let (status, body) = raw_get(&h, path, &key).await;
        assert_ne!(status, 200, "{path} -> {body}");
        assert!(
            !body.contains("\"object\":\"list\""),
            "{path} reached admin: {body}"
        );
        assert!(!body.contains("fg_"), "{path}");
    }
    assert_eq!(h.mock.request_count(), 0, "nothing forwarded");
    h.stop().await;
}
both_backends!(traversal_never_reaches_admin, traversal_never_reaches_admin);

/// GET with an exact request target (no client-side normalisation); the reply
/// must arrive within the raw-socket deadline and carry a status line.
pub async fn raw_get(h: &Harness, target: &str, key: &str) -> (u16, String) {
    let req = format!(
        "GET {target} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\nConnection: close\r\n\r\n"
    );
    let out = h.raw(req.as_bytes()).await;
    (
        common::raw_status(&out),
        String::from_utf8_lossy(&out).into_owned(),
    )
}

async fn underscore_headers_rejected(backend: Backend) {
    let h = Harness::start(backend, DEFAULT_ROUTES).await;
    let key = h.key().await;
    let resp = h
        .http
        .get(h.url("/v1/models"))
        .bearer_auth(&key)
        .header("x_api_key", "x")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert_eq!(h.mock.request_count(), 0);
    h.stop().await;
}
both_backends!(underscore_headers_rejected, underscore_headers_rejected);

async fn key_rate_limits_and_concurrency(backend: Backend) {
    let h = Harness::start(backend, DEFAULT_ROUTES).await;
    let (_, key) = h
        .create_key(json!({ "name": "rl", "limits": { "requests_per_minute": 3 } }))
        .await;
    let mut remaining = Vec::new();
    for _ in 0..3 {
        let resp = h
            .http
            .get(h.url("/v1/models"))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.headers()["x-ratelimit-limit-requests"], "3");
        remaining.push(
            resp.headers()["x-ratelimit-remaining-requests"]
                .to_str()
                .unwrap()
                .to_string(),
        );
    }
    assert_eq!(remaining, vec!["2", "1", "0"]);
    let resp = h
        .http
        .get(h.url("/v1/models"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 429);
    let retry: u64 = resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    // The window opened with the first request: it resets a minute after it.
    assert!((50..=60).contains(&retry), "{retry}");
    assert_eq!(resp.headers()["x-ratelimit-remaining-requests"], "0");
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["code"], "rate_limit_exceeded");
    assert_eq!(v["error"]["type"], "rate_limit_error");
    assert_eq!(
        h.mock.request_count(),
        3,
        "the limited request was not forwarded"
    );

    // Concurrency: one stream in flight blocks the second request until it ends.
    let (_, ckey) = h
        .create_key(json!({ "name": "conc", "limits": { "max_concurrent": 1 } }))
        .await;
    let resp = h
        .http
        .post(h.url("/v1/chat/completions"))
        .bearer_auth(&ckey)
        .header("x-mock-hold", "conc")
        .json(&json!({ "model": "m", "stream": true }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let second = h
        .http
        .get(h.url("/v1/models"))
        .bearer_auth(&ckey)
        .send()
        .await
        .unwrap();
    assert_eq!(second.status(), 429);
    h.mock.release("conc");
    let _ = resp.bytes().await.unwrap();
    let third = h
        .http
        .get(h.url("/v1/models"))
        .bearer_auth(&ckey)
        .send()
        .await
        .unwrap();
    assert_eq!(third.status(), 200);
    let statuses: Vec<u16> = h.audit().await.iter().map(|r| r.status_code).collect();
    assert_eq!(statuses.iter().filter(|s| **s == 429).count(), 2);
    h.stop().await;
}
both_backends!(
    key_rate_limits_and_concurrency,
    key_rate_limits_and_concurrency
);

async fn forwarded_for_is_trusted_only_from_trusted_proxies(backend: Backend) {
    // Not trusted: the peer address is the client, whatever X-Forwarded-For says.
    let h = Harness::start(backend, DEFAULT_ROUTES).await;
    let key = h.key().await;
    let resp = h
        .http
        .get(h.url("/v1/models"))
        .bearer_auth(&key)
        .header("x-forwarded-for", "203.0.113.9")
        .send()
        .await
        .unwrap();
    let id = resp.headers()["x-request-id"].to_str().unwrap().to_string();
    assert_eq!(
        h.audit_of(&id).await.client_ip.as_deref(),
        Some("127.0.0.1")
    );
    h.stop().await;

    // Trusted loopback proxy: the first untrusted hop from the right is the client.
    let h = Harness::start_with_server_extra(
        backend,
        DEFAULT_ROUTES,
        "trusted_proxies: [\"127.0.0.0/8\"]",
    )
    .await;
    let key = h.key().await;
    let resp = h
        .http
        .get(h.url("/v1/models"))
        .bearer_auth(&key)
        .header("x-forwarded-for", "198.51.100.1, 203.0.113.9, 127.0.0.5")
        .send()
        .await
        .unwrap();
    let id = resp.headers()["x-request-id"].to_str().unwrap().to_string();
    assert_eq!(
        h.audit_of(&id).await.client_ip.as_deref(),
        Some("203.0.113.9")
    );
    h.stop().await;
}
both_backends!(
    forwarded_for_is_trusted_only_from_trusted_proxies,
    forwarded_for_is_trusted_only_from_trusted_proxies
);
