//! Admin API, health and metrics.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{ADMIN_TOKEN, Backend, DEFAULT_ROUTES, Harness};
use serde_json::{Value, json};

async fn admin_requires_token_and_manages_keys(backend: Backend) {
    let h = Harness::start(backend, DEFAULT_ROUTES).await;
    let resp = h.http.get(h.url("/admin/api/keys")).send().await.unwrap();
    assert_eq!(resp.status(), 401);
    let resp = h
        .http
        .get(h.url("/admin/api/keys"))
        .bearer_auth("wrong-token-wrong-token")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    // A gateway key is not an admin token.
    let key = h.key().await;
    let resp = h
        .http
        .get(h.url("/admin/api/keys"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);

    let (id, secret) = h
        .create_key(json!({ "name": "bob", "source": "team-a", "allowed_models": ["gpt-*"] }))
        .await;
    let list: Value = h.admin_get("/admin/api/keys").await.json().await.unwrap();
    let text = list.to_string();
    assert!(text.contains("bob"));
    assert!(!text.contains(&secret), "secret never listed");
    assert!(!text.contains("key_hash"));
    let one: Value = h
        .admin_get(&format!("/admin/api/keys/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(one["source"], "team-a");
    assert!(one["prefix"].as_str().unwrap().starts_with("fg_"));
    // Duplicate names conflict.
    let resp = h
        .http
        .post(h.url("/admin/api/keys"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({ "name": "bob" }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 409);
    let resp = h
        .http
        .post(h.url("/admin/api/keys"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({ "nmae": "typo" }))
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status(),
        400,
        "bad admin input is a 400 naming the field"
    );
    assert!(resp.text().await.unwrap().contains("nmae"));
    let resp = h.admin_get("/admin/api/keys/does-not-exist").await;
    assert_eq!(resp.status(), 404);

    let routes: Value = h.admin_get("/admin/api/routes").await.json().await.unwrap();
    let names: Vec<&str> = routes["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["chat", "v1"]);

    let cfg: Value = h.admin_get("/admin/api/config").await.json().await.unwrap();
    let text = cfg.to_string();
    assert!(
        !text.contains("sk-provider-secret-1"),
        "provider key redacted"
    );
    assert!(!text.contains(ADMIN_TOKEN), "admin token redacted");
    h.stop().await;
}
both_backends!(
    admin_requires_token_and_manages_keys,
    admin_requires_token_and_manages_keys
);

async fn logs_filter_and_page(backend: Backend) {
    let h = Harness::start(backend, DEFAULT_ROUTES).await;
    let (kid, key) = h.create_key(json!({ "name": "filters" })).await;
    for i in 0..3 {
        let resp = h
            .http
            .post(h.url("/v1/chat/completions"))
            .bearer_auth(&key)
            .json(&json!({ "model": format!("m{i}") }))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
    }
    let resp = h
        .http
        .get(h.url("/v1/models"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let resp = h.http.get(h.url("/v1/models")).send().await.unwrap();
    assert_eq!(resp.status(), 401);
    h.server().flush_audit().await;

    let get = |q: &'static str| {
        let h = &h;
        async move {
            let v: Value = h
                .admin_get(&format!("/admin/api/logs?{q}"))
                .await
                .json()
                .await
                .unwrap();
            v["data"].as_array().unwrap().clone()
        }
    };
    let all = get("limit=100").await;
    assert_eq!(all.len(), 5);
    // Newest first.
    assert_eq!(all[0]["status_code"], 401);
    assert_eq!(get("route=chat").await.len(), 3);
    assert_eq!(get("status=401").await.len(), 1);
    assert_eq!(get("status_min=200&status_max=299").await.len(), 4);
    assert_eq!(get("model=m1").await.len(), 1);
    assert_eq!(get("method=get").await.len(), 2);
    assert_eq!(get("path=/v1/chat").await.len(), 3);
    assert_eq!(get("error=true").await.len(), 1);
    let by_key = h
        .admin_get(&format!("/admin/api/logs?key_id={kid}"))
        .await
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(by_key["data"].as_array().unwrap().len(), 4);
    let page = get("limit=2&offset=1&order=asc").await;
    assert_eq!(page.len(), 2);
    assert_eq!(page[0]["route"], "chat");
    let future = get("from=2999-01-01T00:00:00Z").await;
    assert!(future.is_empty());
    let past = get("to=2000-01-01T00:00:00Z").await;
    assert!(past.is_empty());
    let resp = h.admin_get("/admin/api/logs?from=yesterday").await;
    assert_eq!(resp.status(), 400);
    // Detail.
    let rid = all[0]["request_id"].as_str().unwrap();
    let one: Value = h
        .admin_get(&format!("/admin/api/logs/{rid}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(one["request_id"], rid);
    // No record contains the key.
    assert!(!serde_json::to_string(&all).unwrap().contains(&key));
    h.stop().await;
}
both_backends!(logs_filter_and_page, logs_filter_and_page);

async fn health_and_metrics(backend: Backend) {
    let h = Harness::start(backend, DEFAULT_ROUTES).await;
    let resp = h.http.get(h.url("/health")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["database"], "ok");
    let key = h.key().await;
    let resp = h
        .http
        .post(h.url("/v1/chat/completions"))
        .bearer_auth(&key)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let text = h
        .http
        .get(h.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for name in [
        "fastgate_requests_total{route=\"chat\",status=\"200\"}",
        "fastgate_request_duration_seconds_bucket",
        "fastgate_upstream_ttfb_seconds_bucket",
        "fastgate_requests_in_flight",
        "fastgate_audit_queue_depth",
    ] {
        assert!(text.contains(name), "missing {name}");
    }
    assert!(!text.contains(&key));
    // Database gone: health says so.
    h.server().state.store().close().await;
    let resp = h.http.get(h.url("/health")).send().await.unwrap();
    assert_eq!(resp.status(), 503);
    h.stop().await;
}
both_backends!(health_and_metrics, health_and_metrics);

async fn model_groups_through_the_admin_api(backend: Backend) {
    let yaml = r#"
upstreams:
  - { name: builtin, kind: mock }
models:
  - { name: from-file, deployments: [ { upstream: builtin, model: m0 } ] }
"#;
    let h = Harness::start(backend, yaml).await;
    let key = h.key().await;
    let chat = |model: &'static str| {
        let h = &h;
        let key = key.clone();
        async move {
            h.http
                .post(h.url("/v1/chat/completions"))
                .bearer_auth(key)
                .json(&json!({ "model": model, "messages": [{ "role": "user", "content": "hi" }] }))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(chat("team-model").await, 404);
    let admin = |method: reqwest::Method, path: &str, body: Option<Value>| {
        let mut rb = h.http.request(method, h.url(path)).bearer_auth(ADMIN_TOKEN);
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        rb.send()
    };
    let group = json!({ "name": "team-model", "deployments": [ { "upstream": "builtin", "model": "m1" } ] });
    let resp = admin(
        reqwest::Method::POST,
        "/admin/api/models",
        Some(group.clone()),
    )
    .await
    .unwrap();
    assert_eq!(resp.status(), 201);
    assert_eq!(chat("team-model").await, 200);
    let resp = admin(reqwest::Method::POST, "/admin/api/models", Some(group))
        .await
        .unwrap();
    assert_eq!(resp.status(), 409);
    // Invalid: unknown upstream, with the field path; nothing stored.
    let bad = json!({ "name": "bad", "deployments": [ { "upstream": "nope", "model": "x" } ] });
    let resp = admin(reqwest::Method::POST, "/admin/api/models", Some(bad))
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert!(resp.text().await.unwrap().contains("upstream"));
    // File models are read-only here.
    let clash =
        json!({ "name": "from-file", "deployments": [ { "upstream": "builtin", "model": "x" } ] });
    let resp = admin(
        reqwest::Method::PUT,
        "/admin/api/models/from-file",
        Some(clash),
    )
    .await
    .unwrap();
    assert_eq!(resp.status(), 400);
    let resp = admin(reqwest::Method::DELETE, "/admin/api/models/from-file", None)
        .await
        .unwrap();
    assert_eq!(resp.status(), 409);
    let list: Value = h.admin_get("/admin/api/models").await.json().await.unwrap();
    let names: Vec<(String, String)> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["name"].as_str().unwrap().to_string(),
                m["source"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        names,
        vec![
            ("from-file".into(), "config".into()),
            ("team-model".into(), "api".into())
        ]
    );
    // Replace, then delete.
    let updated = json!({ "name": "team-model", "deployments": [ { "upstream": "builtin", "model": "m2" } ], "fallbacks": ["from-file"] });
    let resp = admin(
        reqwest::Method::PUT,
        "/admin/api/models/team-model",
        Some(updated),
    )
    .await
    .unwrap();
    assert_eq!(resp.status(), 200);
    let resp = admin(
        reqwest::Method::DELETE,
        "/admin/api/models/team-model",
        None,
    )
    .await
    .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(chat("team-model").await, 404);
    let resp = admin(
        reqwest::Method::DELETE,
        "/admin/api/models/team-model",
        None,
    )
    .await
    .unwrap();
    assert_eq!(resp.status(), 404);
    h.stop().await;
}
both_backends!(
    model_groups_through_the_admin_api,
    model_groups_through_the_admin_api
);
