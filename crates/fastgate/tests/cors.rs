//! CORS for the proxy endpoints (`cors:`), and `GET /`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{ADMIN_TOKEN, Backend, DEFAULT_ROUTES, Harness};
use fastgate_testkit::MockReply;
use reqwest::Method;
use serde_json::{Value, json};

const APP: &str = "https://app.example.com";
const EVIL: &str = "https://evil.example.net";

fn with_cors(cors: &str) -> String {
    format!("{DEFAULT_ROUTES}cors: {cors}\n")
}

fn header<'a>(resp: &'a reqwest::Response, name: &str) -> Option<&'a str> {
    resp.headers().get(name).map(|v| v.to_str().unwrap())
}

/// Every `Vary` value, lowercase, split on commas.
fn vary(resp: &reqwest::Response) -> Vec<String> {
    resp.headers()
        .get_all("vary")
        .iter()
        .flat_map(|v| v.to_str().unwrap().split(','))
        .map(|s| s.trim().to_ascii_lowercase())
        .collect()
}

fn no_cors_headers(resp: &reqwest::Response, what: &str) {
    let found: Vec<_> = resp
        .headers()
        .keys()
        .filter(|k| k.as_str().starts_with("access-control-"))
        .collect();
    assert!(found.is_empty(), "{what}: {found:?}");
}

async fn preflight(h: &Harness, path: &str, origin: &str) -> reqwest::Response {
    h.http
        .request(Method::OPTIONS, h.url(path))
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization,content-type",
        )
        .send()
        .await
        .unwrap()
}

async fn chat(h: &Harness, key: Option<&str>, origin: Option<&str>) -> reqwest::Response {
    let mut rb = h
        .http
        .post(h.url("/v1/chat/completions"))
        .json(&json!({"model": "gpt-4o-mini", "messages": []}));
    if let Some(k) = key {
        rb = rb.bearer_auth(k);
    }
    if let Some(o) = origin {
        rb = rb.header("origin", o);
    }
    rb.send().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn off_by_default() {
    let h = Harness::start(Backend::Sqlite, DEFAULT_ROUTES).await;
    let key = h.key().await;
    let resp = chat(&h, Some(&key), Some(APP)).await;
    assert_eq!(resp.status(), 200);
    no_cors_headers(&resp, "actual request");
    assert!(!vary(&resp).contains(&"origin".to_owned()));
    // A preflight is an ordinary request: no key, so 401, and no CORS.
    let resp = preflight(&h, "/v1/chat/completions", APP).await;
    assert_eq!(resp.status(), 401);
    no_cors_headers(&resp, "preflight");
    // Without a `cors` section, upstream CORS headers pass through untouched.
    h.mock.enqueue(MockReply::Status {
        status: 200,
        body: "{}".into(),
        headers: vec![("access-control-allow-origin".into(), "*".into())],
    });
    let resp = chat(&h, Some(&key), Some(APP)).await;
    assert_eq!(header(&resp, "access-control-allow-origin"), Some("*"));
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preflight_answered_without_a_key() {
    let h = Harness::start(
        Backend::Sqlite,
        &with_cors(r#"{ allowed_origins: ["https://app.example.com", "http://localhost:3000"], max_age: 120 }"#),
    )
    .await;
    for path in ["/v1/chat/completions", "/v1/messages", "/no/route/here"] {
        let resp = preflight(&h, path, APP).await;
        assert_eq!(resp.status(), 204, "{path}");
        assert_eq!(header(&resp, "access-control-allow-origin"), Some(APP));
        let methods = header(&resp, "access-control-allow-methods").unwrap();
        assert_eq!(methods, "GET, POST, OPTIONS");
        let allowed = header(&resp, "access-control-allow-headers").unwrap();
        for h in [
            "authorization",
            "content-type",
            "x-api-key",
            "anthropic-version",
        ] {
            assert!(allowed.split(", ").any(|a| a == h), "{h} in {allowed}");
        }
        assert_eq!(header(&resp, "access-control-max-age"), Some("120"));
        assert!(header(&resp, "access-control-allow-credentials").is_none());
        assert!(vary(&resp).contains(&"origin".to_owned()));
        assert!(resp.bytes().await.unwrap().is_empty());
    }
    let resp = preflight(&h, "/v1/chat/completions", "http://localhost:3000").await;
    assert_eq!(
        header(&resp, "access-control-allow-origin"),
        Some("http://localhost:3000")
    );
    // Not allowed: 403 and nothing a browser could take as permission.
    for origin in [
        EVIL,
        "https://app.example.com.evil.net",
        "http://app.example.com",
        "null",
    ] {
        let resp = preflight(&h, "/v1/chat/completions", origin).await;
        assert_eq!(resp.status(), 403, "{origin}");
        no_cors_headers(&resp, origin);
        let v: Value = resp.json().await.unwrap();
        assert_eq!(v["error"]["type"], "cors_origin_not_allowed");
    }
    // Preflights never reach the upstream, nor the audit log.
    assert_eq!(h.mock.request_count(), 0);
    assert!(h.audit().await.is_empty());
    // An OPTIONS that is not a preflight is proxied as before (here: no key).
    let resp = h
        .http
        .request(Method::OPTIONS, h.url("/v1/chat/completions"))
        .header("origin", APP)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(header(&resp, "access-control-allow-origin"), Some(APP));
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn responses_and_errors_carry_the_origin() {
    let h = Harness::start(
        Backend::Sqlite,
        &with_cors(r#"{ allowed_origins: ["https://app.example.com"] }"#),
    )
    .await;
    let (_, key) = h
        .create_key(json!({"name": "browser", "limits": {"requests_per_minute": 2}}))
        .await;
    let resp = chat(&h, Some(&key), Some(APP)).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, "access-control-allow-origin"), Some(APP));
    assert!(vary(&resp).contains(&"origin".to_owned()));
    let exposed = header(&resp, "access-control-expose-headers").unwrap();
    for name in [
        "x-request-id",
        "retry-after",
        "x-ratelimit-remaining-requests",
    ] {
        assert!(
            exposed.split(", ").any(|e| e == name),
            "{name} in {exposed}"
        );
    }
    assert!(header(&resp, "access-control-allow-credentials").is_none());

    // Errors too, so the page can read them: 401, 404, 429.
    let resp = chat(&h, None, Some(APP)).await;
    assert_eq!(resp.status(), 401);
    assert_eq!(header(&resp, "access-control-allow-origin"), Some(APP));
    let resp = h
        .http
        .get(h.url("/nothing/here"))
        .bearer_auth(&key)
        .header("origin", APP)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    assert_eq!(header(&resp, "access-control-allow-origin"), Some(APP));
    let _ = chat(&h, Some(&key), Some(APP)).await;
    let resp = chat(&h, Some(&key), Some(APP)).await;
    assert_eq!(resp.status(), 429);
    assert_eq!(header(&resp, "access-control-allow-origin"), Some(APP));
    assert!(header(&resp, "access-control-expose-headers").is_some());

    // Another origin is served (CORS is not access control) but gets no permission.
    let key2 = h.key().await;
    let resp = chat(&h, Some(&key2), Some(EVIL)).await;
    assert_eq!(resp.status(), 200);
    no_cors_headers(&resp, "other origin");
    assert!(vary(&resp).contains(&"origin".to_owned()));
    // No Origin at all: served, `Vary: Origin` for caches.
    let resp = chat(&h, Some(&key2), None).await;
    assert_eq!(resp.status(), 200);
    no_cors_headers(&resp, "no origin");
    assert!(vary(&resp).contains(&"origin".to_owned()));

    // The upstream's own CORS headers never widen the policy.
    for origin in [EVIL, APP] {
        h.mock.enqueue(MockReply::Status {
            status: 200,
            body: "{}".into(),
            headers: vec![
                ("access-control-allow-origin".into(), "*".into()),
                ("access-control-allow-credentials".into(), "true".into()),
            ],
        });
        let resp = h
            .http
            .get(h.url("/v1/models"))
            .bearer_auth(&key2)
            .header("origin", origin)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let want = (origin == APP).then_some(APP);
        assert_eq!(header(&resp, "access-control-allow-origin"), want);
        assert!(header(&resp, "access-control-allow-credentials").is_none());
    }
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_api_never_gets_cors() {
    let h = Harness::start(Backend::Sqlite, &with_cors(r#"{ allowed_origins: ["*"] }"#)).await;
    for path in ["/admin/api/keys", "/admin/api/logs", "/health", "/metrics"] {
        let resp = h
            .http
            .get(h.url(path))
            .bearer_auth(ADMIN_TOKEN)
            .header("origin", APP)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{path}");
        no_cors_headers(&resp, path);
    }
    for path in [
        "/admin/api/keys",
        "/admin/ui",
        "/admin/anything",
        "/v1/%2e%2e/admin/api/keys",
        "/ADMIN/x",
        "/health",
    ] {
        let resp = preflight(&h, path, APP).await;
        assert_ne!(resp.status(), 204, "{path}");
        no_cors_headers(&resp, path);
    }
    // `*`: every origin, no `Vary: Origin`.
    let key = h.key().await;
    let resp = chat(&h, Some(&key), Some(EVIL)).await;
    assert_eq!(header(&resp, "access-control-allow-origin"), Some("*"));
    assert!(!vary(&resp).contains(&"origin".to_owned()));
    let resp = preflight(&h, "/v1/chat/completions", EVIL).await;
    assert_eq!(resp.status(), 204);
    assert_eq!(header(&resp, "access-control-allow-origin"), Some("*"));
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_and_custom_lists() {
    let h = Harness::start(
        Backend::Sqlite,
        &with_cors(
            r#"{ allowed_origins: ["http://localhost:5173"], allow_credentials: true,
                 allowed_headers: [authorization, x-custom], allowed_methods: [POST],
                 expose_headers: [x-request-id] }"#,
        ),
    )
    .await;
    let origin = "http://localhost:5173";
    let resp = preflight(&h, "/v1/chat/completions", origin).await;
    assert_eq!(resp.status(), 204);
    assert_eq!(
        header(&resp, "access-control-allow-credentials"),
        Some("true")
    );
    assert_eq!(
        header(&resp, "access-control-allow-headers"),
        Some("authorization, x-custom")
    );
    assert_eq!(header(&resp, "access-control-allow-methods"), Some("POST"));
    assert_eq!(header(&resp, "access-control-max-age"), Some("600"));
    let key = h.key().await;
    let resp = chat(&h, Some(&key), Some(origin)).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, "access-control-allow-origin"), Some(origin));
    assert_eq!(
        header(&resp, "access-control-allow-credentials"),
        Some("true")
    );
    assert_eq!(
        header(&resp, "access-control-expose-headers"),
        Some("x-request-id")
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn root_document_unless_a_route_takes_slash() {
    let h = Harness::start(
        Backend::Sqlite,
        &with_cors(r#"{ allowed_origins: ["https://app.example.com"] }"#),
    )
    .await;
    let resp = h
        .http
        .get(h.url("/"))
        .header("origin", APP)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, "access-control-allow-origin"), Some(APP));
    assert!(
        header(&resp, "content-type")
            .unwrap()
            .starts_with("application/json")
    );
    let doc: Value = resp.json().await.unwrap();
    assert_eq!(doc["name"], "FastGate");
    assert_eq!(doc["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(doc["links"]["health"], "/health");
    assert_eq!(doc["links"]["metrics"], "/metrics");
    assert_eq!(doc["links"]["admin_api"], "/admin/api");
    assert_eq!(doc["links"]["openapi"], "/admin/api/openapi.json");
    assert_eq!(doc["links"]["ui"], "/admin/ui");
    let resp = h.http.head(h.url("/?x=1")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    // Other methods on `/` go through the proxy (no key: 401).
    let resp = h.http.post(h.url("/")).send().await.unwrap();
    assert_eq!(resp.status(), 401);
    h.stop().await;

    // A configured route on `/` wins.
    let routes = format!(
        "{DEFAULT_ROUTES}  - name: home\n    match: {{ path: \"/\", methods: [GET] }}\n    upstream: mock\n    auth: false\n"
    );
    let h = Harness::start(Backend::Sqlite, &routes).await;
    let resp = h.http.get(h.url("/")).send().await.unwrap();
    let status = resp.status();
    let text = resp.text().await.unwrap();
    assert!(!text.contains("FastGate"), "{status} {text}");
    assert_eq!(h.mock.request_count(), 1, "proxied to the upstream");
    assert_eq!(h.mock.last_request().unwrap().path_only(), "/");
    h.stop().await;
}
