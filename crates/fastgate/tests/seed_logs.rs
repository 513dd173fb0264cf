//! `fastgate dev seed-logs N`: the rows land in the audit log and in the statistics
//! rollups, spread over the asked span, on the seeded keys; a second run reuses them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::process::{Command, Output};
use std::time::Duration;

use chrono::Utc;
use fastgate_store::{AuditFilter, StatsFilter, Store};
use serde_json::Value;

fn fastgate(args: &[&str]) -> Output {
    common::run_bounded(
        Command::new(env!("CARGO_BIN_EXE_fastgate"))
            .args(args)
            .env_remove("FASTGATE_CONFIG")
            .env_remove("DATABASE_URL")
            .env_remove("FASTGATE_DATABASE_URL"),
        Duration::from_secs(60),
    )
}

fn seed(config: &str, rows: &str) -> Value {
    let out = fastgate(&[
        "--config",
        config,
        "--json",
        "dev",
        "seed-logs",
        rows,
        "--keys",
        "4",
        "--days",
        "1",
        "--batch",
        "700",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[tokio::test]
async fn seeded_rows_reach_the_log_and_the_rollups() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = dir.path().join("fastgate.yaml");
    std::fs::write(&config, format!("data_dir: \"{}\"\n", data.display())).unwrap();
    let config = config.display().to_string();

    let report = seed(&config, "2500");
    assert_eq!(report["rows"], 2500, "{report}");
    assert_eq!(report["keys"], 4, "{report}");
    let report = seed(&config, "500");
    assert_eq!(report["rows"], 500, "{report}");

    let store = Store::connect(
        &format!("sqlite://{}", data.join("fastgate.db").display()),
        1,
    )
    .await
    .unwrap();
    let keys = store.list_keys().await.unwrap();
    let mut names: Vec<&str> = keys.iter().map(|k| k.name.as_str()).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        ["seed-key-00", "seed-key-01", "seed-key-02", "seed-key-03"]
    );

    assert_eq!(
        store.count_audit(&AuditFilter::default()).await.unwrap(),
        3000
    );
    let now = Utc::now();
    let older = AuditFilter {
        to: Some(now - chrono::Duration::hours(25)),
        ..AuditFilter::default()
    };
    assert_eq!(
        store.count_audit(&older).await.unwrap(),
        0,
        "within --days 1"
    );
    let recent = AuditFilter {
        from: Some(now - chrono::Duration::hours(6)),
        ..AuditFilter::default()
    };
    let recent = store.count_audit(&recent).await.unwrap();
    assert!(
        recent > 300 && recent < 1500,
        "spread over the day: {recent} in 6 h"
    );

    let summary = store
        .stats_summary(
            now - chrono::Duration::days(2),
            now + chrono::Duration::minutes(2),
            &StatsFilter::default(),
        )
        .await
        .unwrap();
    assert_eq!(summary.totals.requests, 3000);
    assert!(summary.totals.errors > 0 && summary.totals.errors < 600);
    assert!(summary.totals.tokens_in > 0 && summary.totals.cost_nanos > 0);
    assert_eq!(summary.active_keys, 4);
    store.close().await;
}
