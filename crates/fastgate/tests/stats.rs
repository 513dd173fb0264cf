//! `/admin/api/stats/*` end to end: requests through the real server, their audit
//! rows, and the summary, time series and top lists read from the rollups, with
//! their 400s and the admin token.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::{Backend, Harness, eventually};
use fastgate_audit::AuditRecord;
use fastgate_testkit::MockReply;
use serde_json::{Value, json};

const CONFIG: &str = r#"
upstreams:
  - { name: oai, kind: openai, base_url: "{MOCK}", credentials: [ { name: o1, key: "sk-openai-secret" } ], retries: 0 }
models:
  - name: gpt
    deployments: [ { upstream: oai, model: gpt-4o-upstream } ]
    price: { input: 2.0, output: 8.0 }
"#;

async fn chat(h: &Harness, key: Option<&str>, model: &str) -> u16 {
    let mut rb = h.http.post(h.url("/v1/chat/completions")).json(
        &json!({ "model": model, "messages": [{ "role": "user", "content": "hello there" }] }),
    );
    if let Some(k) = key {
        rb = rb.bearer_auth(k);
    }
    let resp = rb.send().await.unwrap();
    let status = resp.status().as_u16();
    let _ = resp.bytes().await.unwrap();
    status
}

async fn get_json(h: &Harness, path: &str) -> (u16, Value) {
    let resp = h.admin_get(path).await;
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap())
}

/// Sends the traffic; returns (alpha's id, beta's id).
async fn traffic(h: &Harness) -> (String, String) {
    let (alpha, alpha_key) = h.create_key(json!({ "name": "alpha" })).await;
    let (beta, beta_key) = h.create_key(json!({ "name": "beta" })).await;
    for _ in 0..4 {
        assert_eq!(chat(h, Some(&alpha_key), "gpt").await, 200);
    }
    assert_eq!(chat(h, Some(&beta_key), "gpt").await, 200);
    // Refused by the gateway itself: an unknown model, a missing key.
    assert_eq!(chat(h, Some(&beta_key), "no-such-model").await, 404);
    assert_eq!(chat(h, None, "gpt").await, 401);
    // The upstream fails.
    h.mock.enqueue(MockReply::error(500));
    assert_eq!(chat(h, Some(&beta_key), "gpt").await, 500);
    (alpha, beta)
}

/// The audit rows of the 8 requests, once all are written.
async fn audit_rows(h: &Harness) -> Vec<AuditRecord> {
    eventually(Duration::from_secs(10), "8 audit rows", || async {
        let rows = h.audit().await;
        (rows.len() == 8).then_some(rows)
    })
    .await
}

fn count(rows: &[AuditRecord], pred: impl Fn(&AuditRecord) -> bool) -> u64 {
    rows.iter().filter(|r| pred(r)).count() as u64
}

fn nanos(rows: &[AuditRecord]) -> u64 {
    rows.iter()
        .map(|r| r.cost.map_or(0, |c| (c * 1e9).round() as u64))
        .sum()
}

fn check_summary(v: &Value, rows: &[AuditRecord]) {
    let errors = count(rows, |r| r.status_code >= 400 || r.error_message.is_some());
    assert_eq!(v["requests"], 8, "{v}");
    assert_eq!(v["errors"]["total"], errors, "{v}");
    assert_eq!(v["errors"]["4xx"], 2, "{v}");
    assert_eq!(v["errors"]["5xx"], 1, "{v}");
    let gateway = count(rows, |r| r.error_message.is_some());
    assert!(gateway >= 2, "the 404 and the 401 are the gateway's own");
    assert_eq!(v["errors"]["gateway"], gateway, "{v}");
    let rate = v["success_rate"].as_f64().unwrap();
    assert!((rate - (8 - errors) as f64 / 8.0).abs() < 1e-12, "{v}");
    let tokens_in: u64 = rows.iter().filter_map(|r| r.tokens_in).sum();
    let tokens_out: u64 = rows.iter().filter_map(|r| r.tokens_out).sum();
    assert!(tokens_out >= 25, "5 successful completions of 5 tokens");
    assert_eq!(v["tokens_in"], tokens_in, "{v}");
    assert_eq!(v["tokens_out"], tokens_out, "{v}");
    assert_eq!(v["cost_nanos"], nanos(rows), "{v}");
    assert!(v["cost"].as_f64().unwrap() > 0.0, "{v}");
    assert_eq!(v["active_keys"], 2, "{v}");
    // Every request of the mock is fast: under a second, well above zero.
    let p95 = v["latency_ms"]["p95"].as_u64().unwrap();
    assert!((1..=1000).contains(&p95), "{v}");
    assert!(v["latency_ms"]["avg"].as_f64().unwrap() > 0.0, "{v}");
    assert!(v["ttfb_ms"]["p50"].as_u64().is_some(), "{v}");
}

async fn stats_endpoints(backend: Backend) {
    let h = Harness::start(backend, CONFIG).await;
    let (alpha, beta) = traffic(&h).await;
    let rows = audit_rows(&h).await;

    let (status, v) = get_json(&h, "/admin/api/stats/summary").await;
    assert_eq!(status, 200, "{v}");
    check_summary(&v, &rows);
    let (_, v) = get_json(
        &h,
        &format!("/admin/api/stats/summary?key={alpha}&model=gpt"),
    )
    .await;
    assert_eq!(
        (v["requests"].as_u64(), v["errors"]["total"].as_u64()),
        (Some(4), Some(0)),
        "{v}"
    );
    assert_eq!(v["filters"]["key"], alpha.as_str());
    assert_eq!(v["active_keys"], 1);
    let (_, v) = get_json(&h, "/admin/api/stats/summary?upstream=elsewhere").await;
    assert_eq!(v["requests"], 0, "{v}");
    assert_eq!(v["success_rate"], Value::Null);

    // Minute points over the last 10 minutes hold every request, nothing else.
    let now = chrono::Utc::now();
    let from = (now - chrono::Duration::minutes(10)).to_rfc3339();
    let to = (now + chrono::Duration::minutes(1)).to_rfc3339();
    let q = format!("from={}&to={}", urlenc(&from), urlenc(&to));
    let (status, v) = get_json(
        &h,
        &format!("/admin/api/stats/timeseries?bucket=minute&{q}"),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["bucket"], "minute");
    let points = v["points"].as_array().unwrap();
    assert!((11..=12).contains(&points.len()), "{v}");
    let sum = |key: &str| -> u64 { points.iter().map(|p| p[key].as_u64().unwrap()).sum() };
    assert_eq!(sum("requests"), 8);
    assert_eq!(
        sum("tokens_out"),
        rows.iter().filter_map(|r| r.tokens_out).sum::<u64>()
    );
    assert!(
        points
            .windows(2)
            .all(|w| w[0]["start"].as_str() < w[1]["start"].as_str())
    );
    let (_, v) = get_json(&h, "/admin/api/stats/timeseries").await;
    assert_eq!(v["bucket"], "hour", "default bucket");
    assert!(
        (24..=25).contains(&v["points"].as_array().unwrap().len()),
        "{v}"
    );
    let (_, v) = get_json(
        &h,
        &format!("/admin/api/stats/timeseries?bucket=day&key={beta}"),
    )
    .await;
    let day_total: u64 = v["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["requests"].as_u64().unwrap())
        .sum();
    assert_eq!(day_total, 3, "{v}");

    let (status, v) = get_json(&h, "/admin/api/stats/top?by=key").await;
    assert_eq!(status, 200, "{v}");
    let items = v["items"].as_array().unwrap();
    let firsts: Vec<_> = items
        .iter()
        .map(|i| {
            (
                i["value"].clone(),
                i["key_name"].clone(),
                i["requests"].clone(),
            )
        })
        .collect();
    assert_eq!(
        firsts,
        [
            (json!(alpha), json!("alpha"), json!(4)),
            (json!(beta), json!("beta"), json!(3)),
            (Value::Null, Value::Null, json!(1)),
        ],
        "{v}"
    );
    let (_, v) = get_json(&h, "/admin/api/stats/top?by=status&limit=2").await;
    let items = v["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{v}");
    assert_eq!(
        (items[0]["value"].as_str(), items[0]["requests"].as_u64()),
        (Some("200"), Some(5))
    );
    assert!(items[1].get("key_name").is_none());
    let (_, v) = get_json(&h, "/admin/api/stats/top?by=model").await;
    assert_eq!(v["items"][0]["value"], "gpt", "{v}");
    h.stop().await;
}
both_backends!(stats, stats_endpoints);

fn urlenc(s: &str) -> String {
    s.replace('+', "%2B").replace(':', "%3A")
}

async fn stats_refusals(backend: Backend) {
    let h = Harness::start(backend, CONFIG).await;
    let cases = [
        ("/admin/api/stats/summary?from=yesterday", "from:"),
        ("/admin/api/stats/summary?to=2026-13-01T00:00:00Z", "to:"),
        (
            "/admin/api/stats/summary?from=2026-11-30T10:00:00Z&to=2026-11-30T09:00:00Z",
            "from:",
        ),
        ("/admin/api/stats/timeseries?bucket=week", "bucket:"),
        (
            "/admin/api/stats/timeseries?bucket=minute&from=2025-01-01T00:00:00Z&to=2026-01-01T00:00:00Z",
            "bucket:",
        ),
        ("/admin/api/stats/top", "by:"),
        ("/admin/api/stats/top?by=colour", "by:"),
        ("/admin/api/stats/top?by=key&limit=0", "limit:"),
        ("/admin/api/stats/top?by=key&limit=1000", "limit:"),
        ("/admin/api/stats/summary?key=a%00b", "key:"),
    ];
    for (path, field) in cases {
        let (status, v) = get_json(&h, path).await;
        assert_eq!(status, 400, "{path}: {v}");
        let message = v["error"]["message"].as_str().unwrap();
        assert!(message.starts_with(field), "{path}: {message}");
    }
    // A minute series of a year is refused with its count; an hour series of a year is served.
    let (_, v) = get_json(
        &h,
        "/admin/api/stats/timeseries?bucket=minute&from=2025-01-01T00:00:00Z&to=2026-01-01T00:00:00Z",
    )
    .await;
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("525600 points"),
        "{v}"
    );
    let (status, v) = get_json(
        &h,
        "/admin/api/stats/timeseries?bucket=hour&from=2025-01-01T00:00:00Z&to=2025-12-01T00:00:00Z",
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(v["points"].as_array().unwrap().len(), 8016);
    for path in [
        "/admin/api/stats/summary",
        "/admin/api/stats/timeseries",
        "/admin/api/stats/top?by=key",
    ] {
        let resp = h.http.get(h.url(path)).send().await.unwrap();
        assert_eq!(resp.status(), 401, "{path}");
        let resp = h
            .http
            .get(h.url(path))
            .bearer_auth("wrong")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 401, "{path}");
    }
    h.stop().await;
}
both_backends!(refusals, stats_refusals);

/// The summary counts the provider credentials out of rotation now.
async fn credentials_not_active(backend: Backend) {
    let h = Harness::start(backend, CONFIG).await;
    let (status, s) = get_json(&h, "/admin/api/stats/summary").await;
    assert_eq!(status, 200);
    assert_eq!(
        (
            s["credentials"].as_u64(),
            s["credentials_not_active"].as_u64()
        ),
        (Some(1), Some(0)),
        "{s}"
    );
    for (state, not_active) in [("disabled", 1), ("active", 0), ("banned", 1)] {
        let resp = h
            .admin(
                reqwest::Method::POST,
                "/admin/api/upstreams/oai/credentials/o1/state",
                Some(json!({ "state": state, "reason": "stats test" })),
            )
            .await;
        assert_eq!(resp.status(), 200, "{state}");
        let (_, s) = get_json(&h, "/admin/api/stats/summary").await;
        assert_eq!(
            s["credentials_not_active"].as_u64(),
            Some(not_active),
            "{state}: {s}"
        );
        assert_eq!(s["credentials"].as_u64(), Some(1), "{s}");
    }
    h.stop().await;
}
both_backends!(credentials, credentials_not_active);
