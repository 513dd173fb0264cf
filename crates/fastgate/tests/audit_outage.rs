//! The database unavailable for 30 s under steady load (20 requests/s): every request
//! is served, the spill file grows, and once the database is back the audit rows are
//! exactly the requests, without duplicates.
//!
//! SQLite: another connection holds `BEGIN EXCLUSIVE`. PostgreSQL: the gateway's
//! connections are terminated and `audit_logs` is locked `ACCESS EXCLUSIVE`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod audit_support;
mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use audit_support::{Db, TIMEOUT, config_yaml, create_key, rows_of_key};
use common::Backend;
use fastgate_testkit::MockUpstream;

const OUTAGE: Duration = Duration::from_secs(30);
const RATE_PER_SEC: u64 = 20;
const REQUESTS: u64 = 30 * RATE_PER_SEC;
/// Longest wait for the backlog to reach the database once it is back.
const RECOVERY: Duration = Duration::from_secs(120);

fn spill_len(dir: &std::path::Path) -> u64 {
    std::fs::metadata(dir.join(fastgate_audit::SPILL_FILE_NAME)).map_or(0, |m| m.len())
}

async fn outage_under_load_loses_nothing(backend: Backend) {
    // A hang anywhere is a failure, not a stuck test run.
    tokio::time::timeout(Duration::from_secs(300), outage_test(backend))
        .await
        .expect("the outage test finishes within 5 minutes");
}

async fn outage_test(backend: Backend) {
    fastgate::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let db = Db::new(backend, dir.path()).await;
    let mock = MockUpstream::start().await;
    let yaml = config_yaml(&db.url, dir.path(), &mock.url(), "flush_interval: 50ms");
    let cfg = fastgate_config::load_str(&yaml, &|_| None).unwrap();
    let server = fastgate::server::start_from(cfg, None).await.unwrap();
    let base = server.url();
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let (key_id, key) = create_key(&http, &base).await;
    let spill_dir = dir.path().join("spill");

    // Warm the pool so that PostgreSQL has gateway connections to terminate.
    let warm = http
        .post(format!("{base}/v1/chat/completions"))
        .bearer_auth(&key)
        .json(&serde_json::json!({ "model": "gpt-4o", "messages": [] }))
        .header("x-request-id", "warm-up")
        .timeout(TIMEOUT)
        .send()
        .await
        .unwrap();
    assert_eq!(warm.status(), 200);
    let _ = warm.bytes().await;
    server.flush_audit().await;

    let lock = db.outage().await;
    let started = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(1000 / RATE_PER_SEC));
    let mut tasks = Vec::new();
    let mut spill_max = 0u64;
    for i in 0..REQUESTS {
        tick.tick().await;
        let (http, base, key) = (http.clone(), base.clone(), key.clone());
        tasks.push(tokio::spawn(async move {
            let resp = http
                .post(format!("{base}/v1/chat/completions"))
                .bearer_auth(&key)
                .header("x-request-id", format!("outage-{i:04}"))
                .json(&serde_json::json!({ "model": "gpt-4o", "messages": [] }))
                .timeout(TIMEOUT)
                .send()
                .await
                .unwrap();
            let status = resp.status().as_u16();
            let gateway_id = resp.headers()["x-fastgate-request-id"]
                .to_str()
                .unwrap()
                .to_owned();
            let body = resp.bytes().await.unwrap();
            assert!(body.starts_with(b"{"), "a complete answer");
            (status, gateway_id)
        }));
        spill_max = spill_max.max(spill_len(&spill_dir));
    }
    let mut served = BTreeSet::new();
    for task in tasks {
        let (status, gateway_id) = task.await.unwrap();
        assert_eq!(status, 200, "every request is served during the outage");
        served.insert(gateway_id);
    }
    spill_max = spill_max.max(spill_len(&spill_dir));
    let elapsed = started.elapsed();
    assert!(elapsed >= OUTAGE - Duration::from_secs(1), "{elapsed:?}");
    // (Reading the table now would wait for the lock too.)
    lock.release().await.unwrap();
    let released = Instant::now();
    assert!(spill_max > 0, "the spill file grew during the outage");

    let reader = db.reader().await;
    let rows = loop {
        let rows = rows_of_key(&reader, &key_id).await;
        let outage_rows = rows
            .iter()
            .filter(|r| {
                r.client_request_id
                    .as_deref()
                    .is_some_and(|c| c.starts_with("outage-"))
            })
            .count() as u64;
        if outage_rows >= REQUESTS {
            break rows;
        }
        assert!(
            released.elapsed() < RECOVERY,
            "only {outage_rows} of {REQUESTS} rows after {RECOVERY:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let recovered_in = released.elapsed();
    // Exactly the requests: the warm-up plus one row per request, no duplicates.
    let rows: Vec<_> = rows
        .into_iter()
        .filter(|r| r.client_request_id.as_deref() != Some("warm-up"))
        .collect();
    assert_eq!(rows.len() as u64, REQUESTS);
    let ids: BTreeSet<_> = rows.iter().map(|r| r.request_id.clone()).collect();
    assert_eq!(ids, served, "the rows are the requests the client saw");
    let client_ids: BTreeSet<_> = rows
        .iter()
        .map(|r| r.client_request_id.clone().unwrap())
        .collect();
    let expected: BTreeSet<_> = (0..REQUESTS).map(|i| format!("outage-{i:04}")).collect();
    assert_eq!(client_ids, expected, "each request exactly once");
    assert!(rows.iter().all(|r| r.status_code == 200));

    let stats = server.audit_stats();
    eprintln!(
        "[{backend:?}] outage {elapsed:?}: sent {REQUESTS}, served {}, spill file max {spill_max} B, rows after recovery {} (in {recovered_in:?}); writer stats {stats:?}",
        served.len(),
        rows.len(),
    );
    server.shutdown().await;
    db.cleanup().await;
}
both_backends!(
    outage_under_load_loses_nothing,
    outage_under_load_loses_nothing
);
