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
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.unwrap();
    assert!(
        body.to_string().contains("nmae"),
        "the error names the unknown field: {body}"
    );
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

/// The value of the series `name{labels}` in Prometheus text (labels exactly as
/// rendered), or `None` when absent.
fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        l.strip_prefix(series)?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
}

async fn health_and_metrics(backend: Backend) {
    // Metrics are process-wide and tests run in parallel: a route name of its own.
    let route = format!("metrics-{backend:?}").to_lowercase();
    let yaml = format!(
        r#"
upstreams:
  - {{ name: mock, kind: openai, base_url: "{{MOCK}}", credentials: [ {{ name: k1, key: "sk-1" }} ] }}
routes:
  - {{ name: {route}, match: {{ path: "/v1/chat/completions", methods: [POST] }}, upstream: mock }}
"#
    );
    let h = Harness::start(backend, &yaml).await;
    let resp = h.http.get(h.url("/health")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["database"], "ok");
    let key = h.key().await;
    for _ in 0..2 {
        let resp = h
            .http
            .post(h.url("/v1/chat/completions"))
            .bearer_auth(&key)
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let _ = resp.bytes().await.unwrap();
    }
    h.mock.enqueue(fastgate_testkit::MockReply::error(503));
    let resp = h
        .http
        .post(h.url("/v1/chat/completions"))
        .bearer_auth(&key)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 503);
    let _ = resp.bytes().await.unwrap();
    let text = h.metrics().await;
    let series = |s: &str| metric(&text, &s.replace("ROUTE", &route));
    assert_eq!(
        series(r#"fastgate_requests_total{route="ROUTE",status="200"}"#),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        series(r#"fastgate_requests_total{route="ROUTE",status="503"}"#),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        series(r#"fastgate_request_duration_seconds_count{route="ROUTE"}"#),
        Some(3.0),
        "{text}"
    );
    assert_eq!(
        series(r#"fastgate_upstream_ttfb_seconds_count{route="ROUTE"}"#),
        Some(3.0),
        "{text}"
    );
    for name in [
        "fastgate_requests_in_flight",
        "fastgate_audit_queue_depth",
        "fastgate_audit_queue_depth_peak",
    ] {
        let v = metric(&text, name).unwrap_or_else(|| panic!("missing {name}: {text}"));
        assert!(v >= 0.0, "{name} {v}");
    }
    assert!(!text.contains(&key));
    // Database gone: health says so.
    h.server().state.store().close().await;
    let resp = h.http.get(h.url("/health")).send().await.unwrap();
    assert_eq!(resp.status(), 503);
    let v: Value = resp.json().await.unwrap();
    assert_ne!(v["database"], "ok", "{v}");
    h.stop().await;
}
both_backends!(health_and_metrics, health_and_metrics);

async fn model_groups_through_the_admin_api(backend: Backend) {
    let yaml = r#"
upstreams:
  - { name: builtin, kind: mock }
  - { name: oai, kind: openai, base_url: "{MOCK}", credentials: [ { name: o1, key: "sk-oai" } ] }
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
    // Replace (now served by the mock upstream under another model name), then delete.
    assert_eq!(
        h.mock.request_count(),
        0,
        "the built-in mock answered so far"
    );
    let updated = json!({ "name": "team-model", "deployments": [ { "upstream": "oai", "model": "m2-upstream" } ], "fallbacks": ["from-file"] });
    let resp = admin(
        reqwest::Method::PUT,
        "/admin/api/models/team-model",
        Some(updated),
    )
    .await
    .unwrap();
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["name"], "team-model");
    assert_eq!(v["source"], "api");
    assert_eq!(v["deployments"][0]["upstream"], "oai");
    assert_eq!(v["deployments"][0]["model"], "m2-upstream");
    assert_eq!(v["fallbacks"], json!(["from-file"]));
    let list: Value = h.admin_get("/admin/api/models").await.json().await.unwrap();
    let stored = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "team-model")
        .unwrap();
    assert_eq!(stored["deployments"].as_array().unwrap().len(), 1);
    assert_eq!(stored["deployments"][0]["model"], "m2-upstream");
    assert_eq!(stored["fallbacks"], json!(["from-file"]));
    // The replacement serves at once: the request reaches the new deployment.
    assert_eq!(chat("team-model").await, 200);
    assert_eq!(h.mock.request_count(), 1);
    let seen = h.mock.last_request().unwrap();
    assert_eq!(seen.path_only(), "/v1/chat/completions");
    assert_eq!(seen.json().unwrap()["model"], "m2-upstream");
    assert_eq!(seen.header("authorization"), Some("Bearer sk-oai"));
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
