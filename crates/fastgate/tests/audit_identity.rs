//! The audit record's identity belongs to the gateway: a client's `X-Request-Id` is
//! echoed, forwarded and stored as `client_request_id`, never used as the record's key.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::{ADMIN_TOKEN, Backend, DEFAULT_ROUTES, Harness};
use fastgate_audit::AuditRecord;
use serde_json::{Value, json};

const TIMEOUT: Duration = Duration::from_secs(10);

async fn logs(h: &Harness, query: &str) -> Vec<AuditRecord> {
    h.server().flush_audit().await;
    let resp = h
        .http
        .get(h.url(&format!("/admin/api/logs?limit=1000{query}")))
        .bearer_auth(ADMIN_TOKEN)
        .timeout(TIMEOUT)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await.unwrap();
    serde_json::from_value(v["data"].clone()).unwrap()
}

async fn one_client_id_on_five_requests_gives_five_rows(backend: Backend) {
    let h = Harness::start(backend, DEFAULT_ROUTES).await;
    let key = h.key().await;
    let mut gateway_ids = Vec::new();
    for _ in 0..5 {
        let resp = h
            .http
            .post(h.url("/v1/chat/completions"))
            .bearer_auth(&key)
            .header("x-request-id", "dup-123")
            .json(&json!({ "model": "gpt-4o", "messages": [] }))
            .timeout(TIMEOUT)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        // The client's id is echoed; the gateway's own id is always exposed.
        assert_eq!(resp.headers()["x-request-id"], "dup-123");
        let gw = resp.headers()["x-fastgate-request-id"]
            .to_str()
            .unwrap()
            .to_owned();
        assert_eq!(uuid::Uuid::parse_str(&gw).unwrap().get_version_num(), 7);
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["object"], "chat.completion");
        // Upstream still gets the client's id.
        let seen = h.mock.last_request().unwrap();
        assert_eq!(seen.header("x-request-id"), Some("dup-123"));
        gateway_ids.push(gw);
    }
    let distinct: BTreeSet<_> = gateway_ids.iter().cloned().collect();
    assert_eq!(distinct.len(), 5, "{gateway_ids:?}");

    let rows = logs(&h, "&client_request_id=dup-123").await;
    assert_eq!(rows.len(), 5, "one row per request");
    let stored: BTreeSet<_> = rows.iter().map(|r| r.request_id.clone()).collect();
    assert_eq!(stored, distinct, "rows keyed by the gateway ids");
    for r in &rows {
        assert_eq!(r.client_request_id.as_deref(), Some("dup-123"));
        assert_eq!(r.status_code, 200);
    }
    // No other request carries that client id; the filter is exact.
    assert!(logs(&h, "&client_request_id=dup-12").await.is_empty());

    // Without a client id (or with one that is not plain), x-request-id is ours.
    for sent in [None, Some("not plain!")] {
        let mut req = h
            .http
            .post(h.url("/v1/chat/completions"))
            .bearer_auth(&key)
            .json(&json!({ "model": "gpt-4o", "messages": [] }))
            .timeout(TIMEOUT);
        if let Some(v) = sent {
            req = req.header("x-request-id", v);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), 200);
        let rid = resp.headers()["x-request-id"].to_str().unwrap().to_owned();
        assert_eq!(resp.headers()["x-fastgate-request-id"], rid.as_str());
        let _ = resp.bytes().await.unwrap();
        assert_eq!(
            h.mock.last_request().unwrap().header("x-request-id"),
            Some(rid.as_str())
        );
        let rec = h.audit_of(&rid).await;
        assert_eq!(rec.client_request_id, None);
    }

    // A gateway error response carries both ids too, and its record is keyed likewise.
    let resp = h
        .http
        .post(h.url("/v1/chat/completions"))
        .header("x-request-id", "dup-123")
        .timeout(TIMEOUT)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(resp.headers()["x-request-id"], "dup-123");
    let gw = resp.headers()["x-fastgate-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let rec = h.audit_of(&gw).await;
    assert_eq!(rec.status_code, 401);
    assert_eq!(rec.client_request_id.as_deref(), Some("dup-123"));
    assert_eq!(logs(&h, "&client_request_id=dup-123").await.len(), 6);
    h.stop().await;
}
both_backends!(
    one_client_id_on_five_requests_gives_five_rows,
    one_client_id_on_five_requests_gives_five_rows
);
