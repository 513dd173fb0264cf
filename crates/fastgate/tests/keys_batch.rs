//! The keys list's search and paging, and batch revoke / enable / disable.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{Backend, DEFAULT_ROUTES, Harness};
use reqwest::Method;
use serde_json::{Value, json};

/// The names of a key list body, in order.
fn names(list: &Value) -> Vec<String> {
    list["data"]
        .as_array()
        .unwrap_or_else(|| panic!("no data array: {list}"))
        .iter()
        .map(|k| k["name"].as_str().unwrap().to_owned())
        .collect()
}

/// `GET path`: the `X-Total-Count` header (if any) and the body.
async fn listed(h: &Harness, path: &str) -> (Option<String>, Value) {
    let resp = h.admin_get(path).await;
    assert_eq!(resp.status(), 200, "{path}");
    let total = resp
        .headers()
        .get("x-total-count")
        .map(|v| v.to_str().unwrap().to_owned());
    (total, resp.json().await.unwrap())
}

async fn chat_status(h: &Harness, key: &str) -> u16 {
    h.http
        .post(h.url("/v1/chat/completions"))
        .bearer_auth(key)
        .json(&json!({ "model": "m" }))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn search_and_paging(backend: Backend) {
    let h = Harness::start(backend, DEFAULT_ROUTES).await;
    for name in ["team-alpha", "team-beta", "ops", "Team-Gamma"] {
        h.create_key(json!({ "name": name })).await;
    }
    // Without parameters: the whole list, the old shape, no header.
    let (total, all) = listed(&h, "/admin/api/keys").await;
    assert_eq!(total, None);
    assert_eq!(all["object"], "list");
    assert_eq!(
        names(&all),
        ["team-alpha", "team-beta", "ops", "Team-Gamma"]
    );

    let (total, page) = listed(&h, "/admin/api/keys?search=TEAM&limit=2").await;
    assert_eq!(total.as_deref(), Some("3"));
    assert_eq!(page["object"], "list");
    assert_eq!(names(&page), ["team-alpha", "team-beta"]);
    let (total, page) = listed(&h, "/admin/api/keys?search=team&limit=2&offset=2").await;
    assert_eq!(total.as_deref(), Some("3"));
    assert_eq!(names(&page), ["Team-Gamma"]);
    let (total, page) = listed(&h, "/admin/api/keys?offset=3").await;
    assert_eq!(total.as_deref(), Some("4"));
    assert_eq!(names(&page), ["Team-Gamma"]);
    // A search by prefix finds its key; the secret and hash are never listed.
    let prefix = all["data"][2]["prefix"].as_str().unwrap().to_owned();
    let (total, page) = listed(&h, &format!("/admin/api/keys?search={prefix}")).await;
    assert_eq!(total.as_deref(), Some("1"));
    assert_eq!(names(&page), ["ops"]);
    assert!(!page.to_string().contains("key_hash"));

    for (query, field) in [
        ("limit=0", "limit"),
        ("limit=5000", "limit"),
        ("offset=-1", "offset"),
        ("search=a%00b", "search"),
    ] {
        let resp = h.admin_get(&format!("/admin/api/keys?{query}")).await;
        assert_eq!(resp.status(), 400, "{query}");
        let body: Value = resp.json().await.unwrap();
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.starts_with(field), "{query}: {message}");
    }
    h.stop().await;
}
both_backends!(search_and_paging, search_and_paging);

async fn batch_revoke_enable_disable(backend: Backend) {
    let h = Harness::start(backend, DEFAULT_ROUTES).await;
    let (id_a, key_a) = h.create_key(json!({ "name": "batch-a" })).await;
    let (id_b, key_b) = h.create_key(json!({ "name": "batch-b" })).await;
    let (_, key_c) = h.create_key(json!({ "name": "batch-c" })).await;
    for key in [&key_a, &key_b, &key_c] {
        assert_eq!(chat_status(&h, key).await, 200);
    }

    let resp = h
        .admin(
            Method::POST,
            "/admin/api/keys/batch",
            Some(json!({ "ids": [id_a, "batch-b", "no-such-key"], "action": "revoke" })),
        )
        .await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["action"], "revoke");
    assert_eq!(
        (body["succeeded"].as_u64(), body["failed"].as_u64()),
        (Some(2), Some(1))
    );
    let data = body["data"].as_array().unwrap();
    assert_eq!(data[0]["id"], id_a.as_str());
    assert_eq!(data[0]["ok"], true);
    assert_eq!(data[0]["key"]["is_active"], false);
    assert!(data[0]["key"]["revoked_at"].is_string());
    assert_eq!(data[1]["key"]["id"], id_b.as_str());
    assert_eq!(data[2]["ok"], false);
    assert_eq!(data[2]["error"]["code"], 404);
    assert!(
        data[2]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no-such-key"),
        "{body}"
    );
    assert!(!body.to_string().contains("key_hash"));

    // The revoked keys are refused by the proxy at once; the third still works.
    assert_eq!(chat_status(&h, &key_a).await, 401);
    assert_eq!(chat_status(&h, &key_b).await, 401);
    assert_eq!(chat_status(&h, &key_c).await, 200);

    // Each change is in the admin audit trail, as a single revoke would be.
    let events: Value = h
        .admin_get("/admin/api/admin-events?kind=key&action=revoke")
        .await
        .json()
        .await
        .unwrap();
    let revoked: Vec<&str> = events["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["object_name"].as_str().unwrap_or_else(|| panic!("{e}")))
        .collect();
    assert!(
        revoked.contains(&id_a.as_str()) && revoked.contains(&id_b.as_str()),
        "{events}"
    );
    assert_eq!(revoked.len(), 2, "{events}");

    // Enable brings a revoked key back; disable stops a working one.
    let resp = h
        .admin(
            Method::POST,
            "/admin/api/keys/batch",
            Some(json!({ "ids": [id_a], "action": "enable" })),
        )
        .await;
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["data"][0]["key"]["is_active"], true, "{body}");
    assert!(body["data"][0]["key"]["revoked_at"].is_null(), "{body}");
    assert_eq!(chat_status(&h, &key_a).await, 200);
    let resp = h
        .admin(
            Method::POST,
            "/admin/api/keys/batch",
            Some(json!({ "ids": ["batch-c"], "action": "disable" })),
        )
        .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(chat_status(&h, &key_c).await, 401);
    let events: Value = h
        .admin_get("/admin/api/admin-events?kind=key&action=update")
        .await
        .json()
        .await
        .unwrap();
    let updates = events["data"].as_array().unwrap();
    assert_eq!(updates.len(), 2, "{events}");
    let enabled = updates
        .iter()
        .find(|e| e["object_name"] == id_a.as_str())
        .unwrap_or_else(|| panic!("{events}"));
    assert_eq!(enabled["before"]["is_active"], false);
    assert_eq!(enabled["after"]["is_active"], true);

    // Bad bodies change nothing.
    for (body, field) in [
        (json!({ "ids": [id_b], "action": "delete" }), "action"),
        (json!({ "ids": [], "action": "enable" }), "ids"),
        (
            json!({ "ids": [id_b], "action": "enable", "x": 1 }),
            "request body",
        ),
    ] {
        let resp = h
            .admin(Method::POST, "/admin/api/keys/batch", Some(body.clone()))
            .await;
        assert_eq!(resp.status(), 400, "{body}");
        let v: Value = resp.json().await.unwrap();
        assert!(
            v["error"]["message"].as_str().unwrap().starts_with(field),
            "{v}"
        );
    }
    assert_eq!(chat_status(&h, &key_b).await, 401);
    h.stop().await;
}
both_backends!(batch_revoke_enable_disable, batch_revoke_enable_disable);

/// The batch path does not hide a key named `batch`.
async fn a_key_named_batch(backend: Backend) {
    let h = Harness::start(backend, DEFAULT_ROUTES).await;
    let (id, _) = h.create_key(json!({ "name": "batch" })).await;
    let one: Value = h
        .admin_get("/admin/api/keys/batch")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(one["id"], id.as_str());
    let resp = h
        .admin(
            Method::PATCH,
            "/admin/api/keys/batch",
            Some(json!({ "source": "kept" })),
        )
        .await;
    assert_eq!(resp.status(), 200);
    let resp = h.admin(Method::DELETE, "/admin/api/keys/batch", None).await;
    let v: Value = resp.json().await.unwrap();
    assert_eq!(
        (v["source"].as_str(), v["is_active"].as_bool()),
        (Some("kept"), Some(false))
    );
    h.stop().await;
}
both_backends!(a_key_named_batch, a_key_named_batch);
