//! The admin API's OpenAPI document (`GET /admin/api/openapi.json`): served behind
//! the admin token, an OpenAPI 3.1 document, and complete — every operation the
//! admin router serves is in it and it names no other, so an endpoint added
//! without documentation fails here. Also the reference page the UI renders from
//! it. (The schema-driven fuzzer that checks responses against the document is
//! `.ci/openapi/run.sh`.)
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::{ADMIN_TOKEN, Backend, Harness};
use serde_json::Value;

const CONFIG: &str = "routes: []\n";

/// Every operation the gateway's router serves under `/admin/api`, plus `/health`
/// and `/metrics` (see `fastgate_admin::router`). Add a line with a new endpoint.
const SERVED: &[(&str, &str)] = &[
    ("get", "/admin/api/keys"),
    ("post", "/admin/api/keys"),
    ("get", "/admin/api/keys/{id}"),
    ("patch", "/admin/api/keys/{id}"),
    ("delete", "/admin/api/keys/{id}"),
    ("post", "/admin/api/keys/{id}/rotate"),
    ("post", "/admin/api/keys/batch"),
    ("get", "/admin/api/keys/{id}/usage"),
    ("get", "/admin/api/routes"),
    ("post", "/admin/api/routes"),
    ("get", "/admin/api/routes/{name}"),
    ("put", "/admin/api/routes/{name}"),
    ("delete", "/admin/api/routes/{name}"),
    ("post", "/admin/api/routes/test"),
    ("post", "/admin/api/routes/{name}/toggle"),
    ("post", "/admin/api/routes/{name}/probe"),
    ("get", "/admin/api/upstreams"),
    ("post", "/admin/api/upstreams"),
    ("get", "/admin/api/upstreams/{name}"),
    ("put", "/admin/api/upstreams/{name}"),
    ("delete", "/admin/api/upstreams/{name}"),
    ("get", "/admin/api/upstreams/{name}/credentials"),
    ("post", "/admin/api/upstreams/{name}/credentials"),
    ("put", "/admin/api/upstreams/{name}/credentials/{cred}"),
    ("delete", "/admin/api/upstreams/{name}/credentials/{cred}"),
    (
        "post",
        "/admin/api/upstreams/{name}/credentials/{cred}/state",
    ),
    ("get", "/admin/api/rules"),
    ("post", "/admin/api/rules"),
    ("get", "/admin/api/rules/{name}"),
    ("put", "/admin/api/rules/{name}"),
    ("delete", "/admin/api/rules/{name}"),
    ("post", "/admin/api/rules/{name}/toggle"),
    ("get", "/admin/api/rule-events"),
    ("get", "/admin/api/tasks"),
    ("get", "/admin/api/admin-events"),
    ("get", "/admin/api/models"),
    ("post", "/admin/api/models"),
    ("put", "/admin/api/models/{name}"),
    ("delete", "/admin/api/models/{name}"),
    ("get", "/admin/api/logs"),
    ("get", "/admin/api/logs/export"),
    ("get", "/admin/api/logs/{id}"),
    ("get", "/admin/api/stats/summary"),
    ("get", "/admin/api/stats/timeseries"),
    ("get", "/admin/api/stats/top"),
    ("get", "/admin/api/config"),
    ("post", "/admin/api/config/reload"),
    ("get", "/admin/api/openapi.json"),
    ("get", "/health"),
    ("get", "/metrics"),
];

const METHODS: [&str; 8] = [
    "get", "post", "put", "patch", "delete", "head", "options", "trace",
];

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

/// The path with each `{param}` replaced by a value no object has.
fn concrete(path: &str) -> String {
    path.split('/')
        .map(|seg| {
            if seg.starts_with('{') {
                "no-such-object"
            } else {
                seg
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

async fn document(h: &Harness) -> Value {
    let resp = h.admin_get("/admin/api/openapi.json").await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/json");
    resp.json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_document_is_openapi_3_1_and_needs_the_admin_token() {
    let h = Harness::start(Backend::Sqlite, CONFIG).await;
    let http = client();

    let resp = http
        .get(h.url("/admin/api/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["type"], "admin_error");
    let resp = http
        .get(h.url("/admin/api/openapi.json"))
        .bearer_auth("not-the-admin-token")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);

    let doc = document(&h).await;
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(
        doc["components"]["securitySchemes"]["admin_token"]["scheme"],
        "bearer"
    );
    assert_eq!(doc["security"][0]["admin_token"], Value::Array(vec![]));
    // The structure of an OpenAPI document: every operation has responses, each
    // JSON response a schema; every path parameter is declared.
    let paths = doc["paths"].as_object().unwrap();
    assert!(!paths.is_empty());
    for (path, item) in paths {
        for method in METHODS.iter().filter(|m| item.get(**m).is_some()) {
            let op = &item[*method];
            assert!(op["operationId"].is_string(), "{method} {path}");
            assert!(op["summary"].is_string(), "{method} {path}");
            let responses = op["responses"].as_object().unwrap();
            assert!(!responses.is_empty(), "{method} {path}");
            for (status, response) in responses {
                assert!(
                    response["description"].is_string(),
                    "{method} {path} {status}"
                );
                if let Some(json) = response["content"].get("application/json") {
                    assert!(json["schema"].is_object(), "{method} {path} {status}");
                }
            }
            for param in path.split('/').filter_map(|s| s.strip_prefix('{')) {
                let name = param.trim_end_matches('}');
                let declared = op["parameters"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|p| p["name"] == name && p["in"] == "path" && p["required"] == true);
                assert!(declared, "{method} {path}: parameter {name}");
            }
        }
    }
    let ids: Vec<&str> = paths
        .values()
        .flat_map(|item| {
            METHODS
                .iter()
                .filter_map(|m| item[*m]["operationId"].as_str())
        })
        .collect();
    let unique: BTreeSet<&str> = ids.iter().copied().collect();
    assert_eq!(unique.len(), ids.len(), "operation ids are unique");

    // Every `$ref` names a schema the document holds.
    let text = doc.to_string();
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    for part in text.split("\"#/components/schemas/").skip(1) {
        let name = &part[..part.find('"').unwrap()];
        assert!(schemas.contains_key(name), "dangling $ref to {name}");
    }

    // Built once: the same bytes every time.
    let again = document(&h).await;
    assert_eq!(again, doc);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_served_operation_is_documented_and_no_other() {
    let h = Harness::start(Backend::Sqlite, CONFIG).await;
    let doc = document(&h).await;

    let documented: BTreeSet<(String, String)> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, item)| {
            METHODS
                .iter()
                .filter(|m| item.get(**m).is_some())
                .map(|m| (m.to_string(), path.clone()))
                .collect::<Vec<_>>()
        })
        .collect();
    let served: BTreeSet<(String, String)> = SERVED
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    let undocumented: Vec<_> = served.difference(&documented).collect();
    let not_served: Vec<_> = documented.difference(&served).collect();
    assert!(
        undocumented.is_empty(),
        "served, not documented: {undocumented:?}"
    );
    assert!(
        not_served.is_empty(),
        "documented, not served: {not_served:?}"
    );

    // The list above is what the router serves: each operation reaches a handler
    // (the admin fallback's 404 says "admin endpoint not found"; a method the
    // path does not take is a 405).
    let http = client();
    for (method, path) in SERVED {
        let url = h.url(&concrete(path));
        let m = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        let resp = http
            .request(m, &url)
            .bearer_auth(ADMIN_TOKEN)
            .header("content-type", "application/json")
            .body(if *method == "get" || *method == "delete" {
                ""
            } else {
                "{}"
            })
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let body = resp.text().await.unwrap();
        assert_ne!(status, 405, "{method} {path}: {body}");
        assert!(
            !body.contains("admin endpoint not found"),
            "{method} {path} is not served: {body}"
        );
        // Every answer is one the document lists for the operation.
        let responses = &doc["paths"][path][method]["responses"];
        assert!(
            responses.get(status.to_string()).is_some(),
            "{method} {path} answered {status}, not documented: {body}"
        );
    }

    // Each operation lists its errors with the one error shape.
    let keys = &doc["paths"]["/admin/api/keys/{id}"]["get"]["responses"];
    for status in ["400", "401", "403", "404", "500", "503"] {
        assert_eq!(
            keys[status]["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/ErrorBody",
            "{status}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reference_page_renders_for_a_signed_in_session() {
    let h = Harness::start(Backend::Sqlite, CONFIG).await;
    let http = client();

    // Signed out: to the sign-in form, like every page.
    let resp = http
        .get(h.url("/admin/ui/api-reference"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    assert_eq!(resp.headers()["location"], "/admin/ui/login");

    let resp = http
        .get(h.url(&format!("/admin/ui/login?token={ADMIN_TOKEN}")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    let cookie = resp
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .find(|c| c.starts_with("fg_session="))
        .unwrap();
    let cookie = cookie.split(';').next().unwrap().to_string();

    // The session cookie reaches the document too, like the rest of the admin API.
    let resp = http
        .get(h.url("/admin/api/openapi.json"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let doc: Value = resp.json().await.unwrap();
    assert_eq!(doc["openapi"], "3.1.0");

    let resp = http
        .get(h.url("/admin/ui/api-reference"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let csp = resp.headers()["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("default-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let html = resp.text().await.unwrap();
    // No script at all, nothing loaded from elsewhere (URLs in descriptions are
    // text, never an attribute).
    assert!(!html.contains("<script"), "the page carries a script");
    for attr in ["src=\"http", "href=\"http", "href=\"//", "src=\"//"] {
        assert!(!html.contains(attr), "{attr}");
    }
    // Operations with their method, path and summary; schemas with anchors that
    // the `$ref` links point at.
    assert!(html.contains("/admin/api/keys/{id}/rotate"));
    assert!(html.contains("Rotate a key&#39;s secret") || html.contains("Rotate a key's secret"));
    assert!(html.contains("id=\"schema-ApiKeyRecord\""));
    assert!(html.contains("href=\"#schema-ApiKeyRecord\""));
    assert!(html.contains("id=\"schema-ErrorBody\""));
    // Escaped: the error shape's description quotes JSON.
    assert!(
        html.contains("{&quot;error&quot;"),
        "descriptions are escaped"
    );
}
