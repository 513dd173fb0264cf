//! Live configuration through the admin API: upstreams, provider keys and routes
//! created at runtime, validated like the file, read-only file objects, the
//! admin audit trail, and two instances sharing one database.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::{Backend, Harness, eventually};
use reqwest::Method;
use serde_json::{Value, json};

const LIVE_SECRET: &str = "sk-live-provider-secret-1";
const SECOND_SECRET: &str = "sk-live-provider-secret-2";
const SETTLE: Duration = Duration::from_secs(5);

async fn json_of(resp: reqwest::Response) -> (u16, Value) {
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    for secret in [LIVE_SECRET, SECOND_SECRET, "sk-provider-secret-1"] {
        assert!(!text.contains(secret), "a provider key leaked: {text}");
    }
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn live_upstream(mock_url: &str) -> Value {
    json!({
        "name": "live-up", "kind": "openai", "base_url": format!("{mock_url}/live"),
        "add_headers": { "x-live": "tenant-secret-value" },
        "credentials": [ { "name": "c1", "key": LIVE_SECRET } ]
    })
}

fn live_route() -> Value {
    json!({ "name": "live-route", "priority": 10,
            "match": { "path": "/live/**", "methods": ["GET"] },
            "upstream": "live-up", "strip_prefix": true })
}

/// GET `path` with `key` on `base`; the status.
async fn status_of(base: &str, key: &str, path: &str) -> u16 {
    common::http_client()
        .get(format!("{base}{path}"))
        .bearer_auth(key)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn create_upstream_and_route(backend: Backend) {
    let h = Harness::start(backend, common::DEFAULT_ROUTES).await;
    let key = h.key().await;
    let (status, up) = json_of(
        h.admin(
            Method::POST,
            "/admin/api/upstreams",
            Some(live_upstream(&h.mock.url())),
        )
        .await,
    )
    .await;
    assert_eq!(status, 201, "{up}");
    assert_eq!(up["source"], "api");
    assert_eq!(up["credentials"][0]["name"], "c1");
    assert_eq!(
        up["credentials"][0]["key_hint"],
        fastgate_upstream::key_hint(LIVE_SECRET)
    );
    assert_eq!(up["add_headers"]["x-live"], "[redacted]");

    let (status, route) = json_of(
        h.admin(Method::POST, "/admin/api/routes", Some(live_route()))
            .await,
    )
    .await;
    assert_eq!(status, 201, "{route}");
    assert_eq!(route["source"], "api");
    assert_eq!(route["path"], "/live/**");

    // Applied on this instance at once.
    assert_eq!(status_of(&h.base, &key, "/live/things?x=1").await, 200);
    let seen = h.mock.last_request().unwrap();
    assert_eq!(seen.path, "/live/things?x=1");
    assert_eq!(
        seen.header("authorization"),
        Some(format!("Bearer {LIVE_SECRET}").as_str())
    );
    // The upstream's transforms apply to model requests; routes carry their own.
    assert_eq!(seen.header("x-live"), None);

    // A second key through PUT; both serve (round robin).
    let (status, c2) = json_of(
        h.admin(
            Method::PUT,
            "/admin/api/upstreams/live-up/credentials/c2",
            Some(json!({ "key": SECOND_SECRET, "weight": 1 })),
        )
        .await,
    )
    .await;
    assert_eq!(status, 201, "{c2}");
    let mut auths = std::collections::BTreeSet::new();
    for _ in 0..4 {
        assert_eq!(status_of(&h.base, &key, "/live/rr").await, 200);
        auths.insert(
            h.mock
                .last_request()
                .unwrap()
                .header("authorization")
                .unwrap()
                .to_string(),
        );
    }
    assert_eq!(auths.len(), 2, "both provider keys in rotation: {auths:?}");

    // Listings never show a key; the upstream is listed with its source.
    let (_, list) = json_of(h.admin_get("/admin/api/upstreams").await).await;
    let names: Vec<(&str, &str)> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| (u["name"].as_str().unwrap(), u["source"].as_str().unwrap()))
        .collect();
    assert_eq!(names, vec![("mock", "config"), ("live-up", "api")]);
    let (_, creds) = json_of(h.admin_get("/admin/api/upstreams/mock/credentials").await).await;
    assert_eq!(creds["data"][0]["source"], "config");

    // Stored encrypted: the database row does not hold the key.
    let store = fastgate_store::Store::connect(&h.database_url, 1)
        .await
        .unwrap();
    let stored = store.list_credentials().await.unwrap();
    assert_eq!(stored.len(), 2);
    for c in &stored {
        assert!(c.sealed_key.starts_with("v1."), "{}", c.sealed_key);
        assert!(!c.sealed_key.contains("sk-live"), "plain key stored");
    }
    store.close().await;

    // Delete the credential, the route, then the upstream.
    let (status, _) = json_of(
        h.admin(
            Method::DELETE,
            "/admin/api/upstreams/live-up/credentials/c2",
            None,
        )
        .await,
    )
    .await;
    assert_eq!(status, 200);
    let (status, body) = json_of(
        h.admin(Method::DELETE, "/admin/api/upstreams/live-up", None)
            .await,
    )
    .await;
    assert_eq!(status, 409, "in use by the route: {body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("route 'live-route'"),
        "{body}"
    );
    let (status, _) = json_of(
        h.admin(Method::DELETE, "/admin/api/routes/live-route", None)
            .await,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(status_of(&h.base, &key, "/live/things").await, 404);
    let (status, _) = json_of(
        h.admin(Method::DELETE, "/admin/api/upstreams/live-up", None)
            .await,
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = json_of(h.admin_get("/admin/api/upstreams/live-up").await).await;
    assert_eq!(status, 404);
    h.stop().await;
}
both_backends!(create_upstream_and_route, create_upstream_and_route);

async fn file_objects_are_read_only(backend: Backend) {
    let h = Harness::start(backend, common::DEFAULT_ROUTES).await;
    let mock = json!({ "name": "mock", "kind": "openai", "base_url": h.mock.url() });
    for (method, path, body) in [
        (Method::PUT, "/admin/api/upstreams/mock", Some(mock.clone())),
        (Method::POST, "/admin/api/upstreams", Some(mock)),
        (Method::DELETE, "/admin/api/upstreams/mock", None),
        (
            Method::DELETE,
            "/admin/api/upstreams/mock/credentials/k1",
            None,
        ),
        (
            Method::PUT,
            "/admin/api/upstreams/mock/credentials/k1",
            Some(json!({ "key": "x" })),
        ),
        (Method::DELETE, "/admin/api/routes/chat", None),
        (Method::POST, "/admin/api/routes/chat/toggle", None),
        (
            Method::POST,
            "/admin/api/routes",
            Some(json!({ "name": "chat", "match": { "path": "/x" }, "upstream": "mock" })),
        ),
    ] {
        let (status, body) = json_of(h.admin(method.clone(), path, body).await).await;
        assert_eq!(status, 409, "{method} {path}: {body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("configuration file"),
            "{method} {path}: {body}"
        );
    }
    // A provider key added through the API to an upstream of the file is allowed.
    let (status, body) = json_of(
        h.admin(
            Method::POST,
            "/admin/api/upstreams/mock/credentials",
            Some(json!({ "name": "extra", "key": LIVE_SECRET })),
        )
        .await,
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["source"], "api");
    h.stop().await;
}
both_backends!(file_objects_are_read_only, file_objects_are_read_only);

async fn invalid_changes_store_nothing(backend: Backend) {
    let h = Harness::start(backend, common::DEFAULT_ROUTES).await;
    let key = h.key().await;
    let bad_route = json!({ "name": "bad", "match": { "path": "/bad/**" }, "upstream": "nowhere" });
    let (status, body) = json_of(
        h.admin(Method::POST, "/admin/api/routes", Some(bad_route))
            .await,
    )
    .await;
    assert_eq!(status, 400, "{body}");
    let msg = body["error"]["message"].as_str().unwrap();
    assert!(msg.starts_with("routes[bad].upstream"), "{msg}");
    let bad_pattern =
        json!({ "name": "bad2", "match": { "path": "no-slash" }, "upstream": "mock" });
    let (status, body) = json_of(
        h.admin(Method::POST, "/admin/api/routes", Some(bad_pattern))
            .await,
    )
    .await;
    assert_eq!(status, 400, "{body}");
    let bad_url = json!({ "name": "u2", "kind": "openai", "base_url": "not a url" });
    let (status, body) = json_of(
        h.admin(Method::POST, "/admin/api/upstreams", Some(bad_url))
            .await,
    )
    .await;
    assert_eq!(status, 400, "{body}");
    let unknown_field =
        json!({ "name": "u3", "kind": "openai", "base_url": "http://x", "bogus": 1 });
    let (status, body) = json_of(
        h.admin(Method::POST, "/admin/api/upstreams", Some(unknown_field))
            .await,
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]["message"].as_str().unwrap().contains("bogus"),
        "{body}"
    );
    let no_key = json!({ "name": "c" });
    let (status, _) = json_of(
        h.admin(
            Method::POST,
            "/admin/api/upstreams/mock/credentials",
            Some(no_key),
        )
        .await,
    )
    .await;
    assert_eq!(status, 400);
    let (status, _) = json_of(
        h.admin(
            Method::POST,
            "/admin/api/upstreams/nope/credentials",
            Some(json!({ "name": "c", "key": "k" })),
        )
        .await,
    )
    .await;
    assert_eq!(status, 404);
    // Nothing stored, the file's routes still serve.
    let store = fastgate_store::Store::connect(&h.database_url, 1)
        .await
        .unwrap();
    assert!(
        store
            .list_specs(fastgate_store::SpecTable::Routes)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .list_specs(fastgate_store::SpecTable::Upstreams)
            .await
            .unwrap()
            .is_empty()
    );
    store.close().await;
    assert_eq!(status_of(&h.base, &key, "/v1/models").await, 200);
    h.stop().await;
}
both_backends!(invalid_changes_store_nothing, invalid_changes_store_nothing);

async fn toggle_and_admin_events(backend: Backend) {
    let h = Harness::start(backend, common::DEFAULT_ROUTES).await;
    let key = h.key().await;
    h.admin(
        Method::POST,
        "/admin/api/upstreams",
        Some(live_upstream(&h.mock.url())),
    )
    .await;
    h.admin(Method::POST, "/admin/api/routes", Some(live_route()))
        .await;
    assert_eq!(status_of(&h.base, &key, "/live/a").await, 200);
    let (status, r) = json_of(
        h.admin(Method::POST, "/admin/api/routes/live-route/toggle", None)
            .await,
    )
    .await;
    assert_eq!((status, &r["active"]), (200, &json!(false)), "{r}");
    assert_eq!(status_of(&h.base, &key, "/live/a").await, 404);
    let (_, r) = json_of(
        h.admin(
            Method::POST,
            "/admin/api/routes/live-route/toggle",
            Some(json!({ "active": true })),
        )
        .await,
    )
    .await;
    assert_eq!(r["active"], true);
    assert_eq!(status_of(&h.base, &key, "/live/a").await, 200);

    let (status, events) = json_of(h.admin_get("/admin/api/admin-events?limit=100").await).await;
    assert_eq!(status, 200);
    let seen: Vec<(String, String, String)> = events["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap().to_string(),
                e["object_kind"].as_str().unwrap().to_string(),
                e["object_name"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let expect = |a: &str, k: &str, n: &str| (a.to_string(), k.to_string(), n.to_string());
    assert_eq!(
        &seen[..4],
        &[
            expect("toggle", "route", "live-route"),
            expect("toggle", "route", "live-route"),
            expect("create", "route", "live-route"),
            expect("create", "upstream", "live-up"),
        ]
    );
    assert!(
        seen.iter().any(|e| e.1 == "key" && e.0 == "create"),
        "{seen:?}"
    );
    let first = &events["data"][0];
    assert_eq!(first["before"]["active"], false);
    assert_eq!(first["after"]["active"], true);
    assert!(
        first["actor"]
            .as_str()
            .unwrap()
            .starts_with("admin-token@127.0.0.1"),
        "{first}"
    );
    let created = &events["data"][3];
    assert!(created["before"].is_null());
    assert_eq!(created["after"]["add_headers"]["x-live"], "[redacted]");
    // Filters.
    let (_, only) = json_of(h.admin_get("/admin/api/admin-events?kind=upstream").await).await;
    assert_eq!(only["data"].as_array().unwrap().len(), 1);
    let (status, _) = json_of(h.admin_get("/admin/api/admin-events?limit=0").await).await;
    assert_eq!(status, 400);
    let (status, _) = json_of(h.admin_get("/admin/api/admin-events?since=yesterday").await).await;
    assert_eq!(status, 400);
    let resp = common::http_client()
        .get(h.url("/admin/api/admin-events"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    h.stop().await;
}
both_backends!(toggle_and_admin_events, toggle_and_admin_events);

/// Two instances on one database: a change through either is served by both
/// within the deadline, and a restart keeps everything.
async fn two_instances(backend: Backend) {
    let a = Harness::start(backend, common::DEFAULT_ROUTES).await;
    let b = a.start_peer().await;
    let key = a.key().await;
    // Keys made on A are accepted by B (the change feed).
    eventually(SETTLE, "B accepts A's new key", || async {
        (status_of(&b.base, &key, "/v1/models").await == 200).then_some(())
    })
    .await;

    a.admin(
        Method::POST,
        "/admin/api/upstreams",
        Some(live_upstream(&a.mock.url())),
    )
    .await;
    let (status, _) = json_of(
        a.admin(Method::POST, "/admin/api/routes", Some(live_route()))
            .await,
    )
    .await;
    assert_eq!(status, 201);
    eventually(SETTLE, "B serves the route created on A", || async {
        (status_of(&b.base, &key, "/live/from-b").await == 200).then_some(())
    })
    .await;
    let seen = a.mock.last_request().unwrap();
    assert_eq!(seen.path, "/live/from-b");
    assert_eq!(
        seen.header("authorization"),
        Some(format!("Bearer {LIVE_SECRET}").as_str())
    );

    // A credential replaced on A is the one B sends.
    let (status, _) = json_of(
        a.admin(
            Method::PUT,
            "/admin/api/upstreams/live-up/credentials/c1",
            Some(json!({ "key": SECOND_SECRET })),
        )
        .await,
    )
    .await;
    assert_eq!(status, 200);
    let second = format!("Bearer {SECOND_SECRET}");
    eventually(SETTLE, "B sends the credential replaced on A", || async {
        assert_eq!(status_of(&b.base, &key, "/live/cred").await, 200);
        let seen = a.mock.last_request().unwrap();
        (seen.header("authorization") == Some(second.as_str())).then_some(())
    })
    .await;

    // A toggle on B is honoured by A.
    let (status, _) = json_of(
        b.admin(Method::POST, "/admin/api/routes/live-route/toggle", None)
            .await,
    )
    .await;
    assert_eq!(status, 200);
    eventually(
        SETTLE,
        "A stops serving the route B switched off",
        || async { (status_of(&a.base, &key, "/live/x").await == 404).then_some(()) },
    )
    .await;
    b.admin(
        Method::POST,
        "/admin/api/routes/live-route/toggle",
        Some(json!({ "active": true })),
    )
    .await;

    // A restart keeps everything: a new instance on the same database serves it.
    b.stop().await;
    let c = a.start_peer().await;
    assert_eq!(status_of(&c.base, &key, "/live/after-restart").await, 200);
    assert_eq!(
        a.mock.last_request().unwrap().header("authorization"),
        Some(second.as_str())
    );
    let (_, list) = json_of(
        c.admin(Method::GET, "/admin/api/routes/live-route", None)
            .await,
    )
    .await;
    assert_eq!(list["source"], "api");
    c.stop().await;
    a.stop().await;
}
both_backends!(two_instances, two_instances);

/// A master key rotation made elsewhere (the CLI) while the gateway runs: the
/// gateway re-reads its key file and keeps the provider key in rotation.
async fn rotation_while_running(backend: Backend) {
    let h = Harness::start(backend, common::DEFAULT_ROUTES).await;
    let key = h.key().await;
    h.admin(
        Method::POST,
        "/admin/api/upstreams",
        Some(live_upstream(&h.mock.url())),
    )
    .await;
    h.admin(Method::POST, "/admin/api/routes", Some(live_route()))
        .await;
    assert_eq!(status_of(&h.base, &key, "/live/before").await, 200);

    let key_file = h.dir.path().join("master_key");
    let (old, _) = fastgate_upstream::MasterKey::load(None, &key_file)
        .unwrap()
        .unwrap();
    let (new, new_text) = fastgate_upstream::MasterKey::generate().unwrap();
    let store = fastgate_store::Store::connect(&h.database_url, 1)
        .await
        .unwrap();
    let resealed: Vec<(String, String, String)> = store
        .list_credentials()
        .await
        .unwrap()
        .into_iter()
        .map(|c| {
            let context = format!("{}/{}", c.upstream, c.name);
            let plain = old.open(&c.sealed_key, &context).unwrap();
            let sealed = new.seal(plain.expose(), &context).unwrap();
            (c.upstream, c.name, sealed)
        })
        .collect();
    assert_eq!(resealed.len(), 1);
    fastgate_upstream::write_key_file(&key_file, &new_text).unwrap();
    store.reseal_credentials(&resealed).await.unwrap();
    store.close().await;

    // The reload the reseal triggers finds keys under another master key, re-reads
    // the file, and the provider key stays in rotation.
    eventually(SETTLE, "the gateway reloads after the reseal", || async {
        let (_, list) = json_of(h.admin_get("/admin/api/upstreams").await).await;
        (list["master_key_id"] == new.id()).then_some(())
    })
    .await;
    let (_, list) = json_of(h.admin_get("/admin/api/upstreams").await).await;
    assert_eq!(list["problems"], json!([]), "{list}");
    assert_eq!(list["data"][1]["credentials"][0]["name"], "c1", "{list}");
    assert_eq!(status_of(&h.base, &key, "/live/after").await, 200);
    assert_eq!(
        h.mock.last_request().unwrap().header("authorization"),
        Some(format!("Bearer {LIVE_SECRET}").as_str())
    );
    // New keys are sealed under the new master key.
    let (status, body) = json_of(
        h.admin(
            Method::POST,
            "/admin/api/upstreams/live-up/credentials",
            Some(json!({ "name": "c2", "key": SECOND_SECRET })),
        )
        .await,
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let store = fastgate_store::Store::connect(&h.database_url, 1)
        .await
        .unwrap();
    for c in store.list_credentials().await.unwrap() {
        assert_eq!(
            fastgate_upstream::sealed_key_id(&c.sealed_key),
            Some(new.id())
        );
    }
    store.close().await;
    h.stop().await;
}
both_backends!(rotation_while_running, rotation_while_running);

/// An object as listed (values `[redacted]`, credentials as `key_hint`s) can be
/// sent back with PUT: the stored values are kept, not the marker.
async fn listed_objects_round_trip(backend: Backend) {
    let h = Harness::start(backend, common::DEFAULT_ROUTES).await;
    let key = h.key().await;
    h.admin(
        Method::POST,
        "/admin/api/upstreams",
        Some(live_upstream(&h.mock.url())),
    )
    .await;
    let mut route = live_route();
    route["add_headers"] = json!({ "x-route-secret": "route-value-1" });
    let (status, _) = json_of(
        h.admin(Method::POST, "/admin/api/routes", Some(route))
            .await,
    )
    .await;
    assert_eq!(status, 201);

    let (_, mut up) = json_of(h.admin_get("/admin/api/upstreams/live-up").await).await;
    up["retries"] = json!(2);
    let (status, body) = json_of(
        h.admin(Method::PUT, "/admin/api/upstreams/live-up", Some(up))
            .await,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["retries"], 2);
    let (_, mut r) = json_of(h.admin_get("/admin/api/routes/live-route").await).await;
    assert_eq!(r["add_headers"]["x-route-secret"], "[redacted]");
    r["priority"] = json!(5);
    let (status, body) = json_of(
        h.admin(Method::PUT, "/admin/api/routes/live-route", Some(r))
            .await,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["priority"], 5);

    assert_eq!(status_of(&h.base, &key, "/live/round-trip").await, 200);
    let seen = h.mock.last_request().unwrap();
    assert_eq!(seen.header("x-route-secret"), Some("route-value-1"));
    assert_eq!(
        seen.header("authorization"),
        Some(format!("Bearer {LIVE_SECRET}").as_str())
    );
    // The marker on a value that was never stored is refused.
    let (status, body) = json_of(
        h.admin(
            Method::POST,
            "/admin/api/routes",
            Some(
                json!({ "name": "new", "match": { "path": "/new/**" }, "upstream": "live-up",
                         "add_headers": { "x-a": "[redacted]" } }),
            ),
        )
        .await,
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("add_headers.x-a"),
        "{body}"
    );
    h.stop().await;
}
both_backends!(listed_objects_round_trip, listed_objects_round_trip);
