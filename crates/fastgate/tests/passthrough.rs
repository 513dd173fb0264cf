//! The generic passthrough by upstream name: `ANY /proxy/{upstream}/{path…}`
//! forwards to that upstream with its credential, under the key's permissions,
//! after every explicit route.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{Backend, Harness};
use serde_json::{Value, json};

const CONFIG: &str = r#"
upstreams:
  - name: mock
    kind: openai
    base_url: "{MOCK}/base"
    credentials: [ { name: k1, key: "sk-passthrough-provider" } ]
    add_headers: { x-from-upstream: "yes" }
  - name: builtin
    kind: mock
routes:
  - name: explicit
    match: { path: "/proxy/mock/explicit/**" }
    upstream: mock
    target_path: "/chosen-by-route"
"#;

async fn get(h: &Harness, key: &str, path: &str) -> (u16, Value) {
    let resp = common::http_client()
        .get(h.url(path))
        .bearer_auth(key)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn passthrough(backend: Backend) {
    let h = Harness::start(backend, CONFIG).await;
    let key = h.key().await;

    let (status, body) = get(&h, &key, "/proxy/mock/v1/things/7?page=2").await;
    assert_eq!(status, 200, "{body}");
    let seen = h.mock.last_request().unwrap();
    assert_eq!(seen.path_only(), "/base/v1/things/7");
    assert_eq!(seen.path, "/base/v1/things/7?page=2");
    assert_eq!(
        seen.header("authorization"),
        Some("Bearer sk-passthrough-provider")
    );
    assert_eq!(seen.header("x-from-upstream"), Some("yes"));
    assert!(
        !format!("{:?}", seen.headers).contains(&key),
        "the gateway key reached the upstream"
    );
    let record = h
        .audit()
        .await
        .into_iter()
        .find(|r| r.path == "/proxy/mock/v1/things/7")
        .expect("audit row");
    assert_eq!(record.route.as_deref(), Some("proxy:mock"));
    assert_eq!(record.upstream.as_deref(), Some("mock"));

    // An explicit route on the same path wins.
    let (status, _) = get(&h, &key, "/proxy/mock/explicit/x").await;
    assert_eq!(status, 200);
    assert_eq!(
        h.mock.last_request().unwrap().path_only(),
        "/base/chosen-by-route"
    );

    // Unknown upstreams and the built-in mock kind are not proxied.
    let before = h.mock.request_count();
    let (status, body) = get(&h, &key, "/proxy/nope/v1/x").await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["error"]["code"], "route_not_found");
    let (status, _) = get(&h, &key, "/proxy/builtin/v1/x").await;
    assert_eq!(status, 404);
    assert_eq!(h.mock.request_count(), before);

    // A key needs `proxy:{upstream}` in its allowed_routes (or no list at all).
    let (_, narrow) = h
        .create_key(json!({ "name": "narrow", "allowed_routes": ["explicit"] }))
        .await;
    let (status, body) = get(&h, &narrow, "/proxy/mock/v1/x").await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["code"], "route_not_allowed");
    let (_, allowed) = h
        .create_key(json!({ "name": "proxy-ok", "allowed_routes": ["proxy:mock"] }))
        .await;
    let (status, _) = get(&h, &allowed, "/proxy/mock/v1/x").await;
    assert_eq!(status, 200);

    // No key, no passthrough.
    let resp = common::http_client()
        .get(h.url("/proxy/mock/v1/x"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(h.mock.request_count(), before + 1);
    h.stop().await;
}

both_backends!(passthrough_by_upstream_name, passthrough);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_prefix_turns_the_passthrough_off() {
    let h = Harness::start(Backend::Sqlite, &format!("proxy_prefix: \"\"\n{CONFIG}")).await;
    let key = h.key().await;
    let (status, body) = get(&h, &key, "/proxy/mock/v1/x").await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(h.mock.request_count(), 0);
    h.stop().await;
}

#[test]
fn a_prefix_must_be_literal_segments_outside_admin() {
    for bad in [
        "proxy",
        "/proxy/",
        "/pro{x}y",
        "/**",
        "/admin",
        "/Admin/raw",
        "/a//b",
    ] {
        let yaml = format!("proxy_prefix: \"{bad}\"\n");
        let err = fastgate_config::load_str(&yaml, &|_| None)
            .err()
            .unwrap_or_else(|| panic!("'{bad}' was accepted"));
        assert!(err.to_string().contains("proxy_prefix"), "{bad}: {err}");
    }
    for good in ["", "/proxy", "/gw/raw"] {
        let yaml = format!("proxy_prefix: \"{good}\"\n");
        assert!(
            fastgate_config::load_str(&yaml, &|_| None).is_ok(),
            "{good}"
        );
    }
}
