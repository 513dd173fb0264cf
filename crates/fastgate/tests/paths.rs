//! Tricky request paths through the real server (THREATS row 14, issue 7 point 2):
//! dot segments hidden behind `;params`, double encoding and the usual admin tricks
//! never reach the upstream, the admin API or a route with `auth: true`, and an
//! encoded slash inside a segment is forwarded as a separator.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
mod raw;

use common::{ADMIN_TOKEN, Backend, Harness};
use serde_json::Value;

const ROUTES: &str = r#"
upstreams:
  - { name: mock, kind: http, base_url: "{MOCK}", credentials: [ { name: k1, key: "sk-x" } ] }
routes:
  - { name: public, auth: false, match: { path: "/public/**" }, upstream: mock }
  - { name: private, match: { path: "/private/**" }, upstream: mock }
  - { name: file-one, match: { path: "/v1/one/{id}" }, upstream: mock }
  - { name: files, match: { path: "/v1/files/**" }, upstream: mock }
"#;

/// `GET {target}` exactly as written (no client-side normalisation): the status and
/// the JSON body; an empty `bearer` sends no `Authorization`.
async fn raw_get(h: &Harness, target: &str, bearer: &str) -> (u16, Value) {
    let mut headers = vec!["Host: gateway.test".to_owned()];
    if !bearer.is_empty() {
        headers.push(format!("Authorization: Bearer {bearer}"));
    }
    let resp = raw::send(
        h.server().addr,
        &format!("GET {target} HTTP/1.1"),
        &headers,
        "",
    )
    .await;
    (resp.status, resp.json())
}

/// (raw request target, expected status, expected `error.code`).
const REFUSED: &[(&str, u16, &str)] = &[
    // `;params` dot segments: refused before anything else looks at the path.
    ("/..;/admin/api/keys", 400, "invalid_path"),
    ("/public/..;/admin/api/keys", 400, "invalid_path"),
    ("/public/..;/private/secret", 400, "invalid_path"),
    (
        "/public/..;jsessionid=1/private/secret",
        400,
        "invalid_path",
    ),
    ("/public/.;x/../private/secret", 400, "invalid_path"),
    ("/public/x/..;/..;/private/secret", 400, "invalid_path"),
    ("/public/%2e%2e;/private/secret", 400, "invalid_path"),
    ("/public/..%3b/private/secret", 400, "invalid_path"),
    ("/public%2f..;%2fprivate/secret", 400, "invalid_path"),
    ("/public/..;/", 400, "invalid_path"),
    // Double encoding: a second decoder behind us would see `..` or `/admin`.
    ("/public/%252e%252e/private/secret", 400, "invalid_path"),
    ("/public/%252e%252e/admin/api/keys", 400, "invalid_path"),
    ("/%2561dmin/api/keys", 400, "invalid_path"),
    (
        "/public/%25%32%65%25%32%65/private/secret",
        400,
        "invalid_path",
    ),
    ("/public/%255c..%255cprivate", 400, "invalid_path"),
    ("/public/%252f..%252fprivate/secret", 400, "invalid_path"),
    // Resolved by normalisation to the admin area: not a proxy route.
    ("/public/../admin/api/keys", 404, "route_not_found"),
    ("/public/%2e%2e/admin/api/keys", 404, "route_not_found"),
    ("//admin/api/keys", 404, "route_not_found"),
    ("/ADMIN/api/keys", 404, "route_not_found"),
    ("/admin;x/api/keys", 404, "route_not_found"),
    ("/admin%3Bx/api/keys", 404, "route_not_found"),
    ("/public%5c..%5cadmin/api/config", 404, "route_not_found"),
    // Resolved to the auth route: the admin token is no gateway key.
    ("/public/../private/secret", 401, "invalid_api_key"),
    ("/public/%2e%2e/private/secret", 401, "invalid_api_key"),
];

async fn tricky_paths_with_admin_token(backend: Backend) {
    let h = Harness::start(backend, ROUTES).await;
    for (target, status, code) in REFUSED {
        let (got, body) = raw_get(&h, target, ADMIN_TOKEN).await;
        assert_eq!(
            (got, body["error"]["code"].as_str()),
            (*status, Some(*code)),
            "{target} -> {body}"
        );
        let text = body.to_string();
        assert!(
            !text.contains("\"object\":\"list\"") && !text.contains("fg_"),
            "{target} reached admin: {text}"
        );
    }
    // Without any token the public route would forward what it matched: the shapes a
    // server behind us could resolve into `/private/...` must not get that far.
    for (target, status, code) in REFUSED.iter().filter(|c| c.1 == 400) {
        let (got, body) = raw_get(&h, target, "").await;
        assert_eq!(
            (got, body["error"]["code"].as_str()),
            (*status, Some(*code)),
            "{target} (no token) -> {body}"
        );
    }
    assert_eq!(
        h.mock.request_count(),
        0,
        "forwarded: {:?}",
        h.mock
            .requests()
            .iter()
            .map(|r| r.path.clone())
            .collect::<Vec<_>>()
    );

    // Control: the public route does forward (without a token; the admin token is
    // refused as a gateway key even there), so the count above can fail.
    let (got, body) = raw_get(&h, "/public/ok", ADMIN_TOKEN).await;
    assert_eq!(
        (got, body["error"]["code"].as_str()),
        (401, Some("invalid_api_key"))
    );
    let (got, _) = raw_get(&h, "/public/ok", "").await;
    assert_eq!(got, 200);
    assert_eq!(h.mock.last_request().unwrap().path, "/public/ok");
    assert_eq!(h.mock.request_count(), 1);
    h.stop().await;
}
both_backends!(tricky_paths_with_admin_token, tricky_paths_with_admin_token);

/// `%2F` inside a segment is decoded once, like `%2E` and `%5C`: the gateway routes
/// on `/v1/files/a/b` and the upstream receives `/v1/files/a/b` (not `a%2Fb`), so
/// what is authorised is what is forwarded. A one-segment pattern therefore does not
/// match `a%2Fb`. Other reserved escapes (`%3F`, `%23`, `%20`) stay encoded.
async fn encoded_slash_is_a_separator(backend: Backend) {
    let h = Harness::start(backend, ROUTES).await;
    let key = h.key().await;
    for (target, upstream) in [
        ("/v1/files/a%2Fb", "/v1/files/a/b"),
        ("/v1/files/a%2fb", "/v1/files/a/b"),
        ("/v1/files/a%5Cb", "/v1/files/a/b"),
        ("/v1/files/a%2F%2Fb", "/v1/files/a/b"),
        ("/v1/files/a%3Fb%23c%20d", "/v1/files/a%3Fb%23c%20d"),
        ("/v1/files/a%3fb", "/v1/files/a%3Fb"),
        ("/v1/files/%7Euser", "/v1/files/~user"),
        ("/v1/files/a%2Fb?x=1", "/v1/files/a/b?x=1"),
    ] {
        let before = h.mock.request_count();
        let (got, body) = raw_get(&h, target, &key).await;
        assert_eq!(got, 200, "{target} -> {body}");
        assert_eq!(h.mock.request_count(), before + 1, "{target}");
        assert_eq!(h.mock.last_request().unwrap().path, upstream, "{target}");
    }

    // `/v1/one/{id}` is one segment; the decoded slash makes two.
    let (got, body) = raw_get(&h, "/v1/one/a%2Fb", &key).await;
    assert_eq!(
        (got, body["error"]["code"].as_str()),
        (404, Some("route_not_found"))
    );
    let (got, _) = raw_get(&h, "/v1/one/a%3Bb", &key).await;
    assert_eq!(got, 200);
    assert_eq!(h.mock.last_request().unwrap().path, "/v1/one/a%3Bb");
    h.stop().await;
}
both_backends!(encoded_slash_is_a_separator, encoded_slash_is_a_separator);
