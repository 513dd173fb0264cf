//! The backfill of migration 0008 (records already in `audit_logs` when the table is
//! created) gives the rows the writer gives, on both backends.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use chrono::DateTime;
use fastgate_audit::AuditRecord;
use sqlx::{AssertSqlSafe, Row};

use super::MEASURE_COLUMNS;
use super::query::ints;
use crate::Store;

const SQLITE_MIGRATION: &str = include_str!("../../migrations/sqlite/0008_audit_rollups.sql");
const PG_MIGRATION: &str = include_str!("../../migrations/postgres/0008_audit_rollups.sql");

/// The backfill statement of a migration: everything from its `-- Backfill` comment.
fn backfill(migration: &str) -> String {
    let at = migration.find("-- Backfill").expect("a backfill statement");
    migration[at..].to_owned()
}

fn records() -> Vec<AuditRecord> {
    let base = 1_700_000_000_000i64;
    (0..300i64)
        .map(|i| AuditRecord {
            request_id: format!("r{i}"),
            client_request_id: None,
            key_id: (i % 4 != 0).then(|| format!("k{}", i % 3)),
            key_name: None,
            source: None,
            method: "POST".into(),
            path: if i % 7 == 0 {
                format!("/v1/{}", "é".repeat(260))
            } else {
                "/v1/x".into()
            },
            query: None,
            route: (i % 5 != 0).then(|| "r".into()),
            upstream: Some(format!("u{}", i % 2)),
            credential: None,
            target_url: None,
            status_code: [200, 404, 500, 200][(i % 4) as usize],
            request_time: DateTime::from_timestamp_millis(base + i * 1_234_567).unwrap(),
            ttfb_ms: (i % 3 != 0).then_some(i as f64 * 7.3),
            duration_ms: (i as f64 * 1.37).powf(2.2),
            request_bytes: 1,
            response_bytes: 1,
            user_agent: None,
            client_ip: None,
            is_stream: i % 2 == 0,
            stream_chunks: 0,
            model: (i % 6 != 0).then(|| "m".into()),
            tokens_in: (i % 5 != 0).then_some(i as u64 * 13),
            tokens_out: Some(i as u64),
            tokens_estimated: false,
            cost: (i % 4 != 1).then_some(i as f64 * 0.000_123_7),
            error_message: (i % 9 == 0).then(|| "cut".into()),
            request_headers: None,
            response_headers: None,
            request_body: None,
            response_body: None,
        })
        .collect()
}

type Snapshot = Vec<(Vec<String>, Vec<i64>)>;

/// Every rollup row, dimensions as text then the measures, in key order.
async fn snapshot(store: &Store) -> Snapshot {
    let sql = format!(
        "SELECT grain, key_id, route, model, upstream, path, bucket_start, \
         CAST(status_code AS BIGINT), {} FROM audit_rollups ORDER BY 1, 7, 2, 3, 4, 5, 6, 8",
        MEASURE_COLUMNS.join(", ")
    );
    with_pool!(store, pool, DB => {
        let rows = sqlx::query(AssertSqlSafe(sql)).fetch_all(pool).await.unwrap();
        rows.iter()
            .map(|r| {
                let dims = (0..6).map(|i| r.try_get::<String, _>(i).unwrap()).collect();
                (dims, ints(r, 6, 2 + MEASURE_COLUMNS.len()).unwrap())
            })
            .collect()
    })
}

async fn backfill_equals_the_writer(store: Store, migration: &str) {
    store.insert_audit_batch(&records()).await.unwrap();
    let written = snapshot(&store).await;
    assert!(written.len() > 300, "{}", written.len());
    with_pool!(store, pool, DB => {
        sqlx::query("DELETE FROM audit_rollups").execute(pool).await.unwrap();
        sqlx::raw_sql(AssertSqlSafe(backfill(migration))).execute(pool).await.unwrap();
    });
    assert_eq!(snapshot(&store).await, written);
}

#[tokio::test]
async fn sqlite_backfill_equals_the_writer() {
    let store = Store::connect("sqlite::memory:", 2).await.unwrap();
    backfill_equals_the_writer(store, SQLITE_MIGRATION).await;
}

#[tokio::test]
#[cfg_attr(
    not(fastgate_pg_tests),
    ignore = "set FASTGATE_TEST_PG_URL to run on PostgreSQL"
)]
async fn postgres_backfill_equals_the_writer() {
    let url = crate::testing::pg_test_url().expect("FASTGATE_TEST_PG_URL");
    let (store, schema) = crate::testing::connect_isolated_pg(&url).await.unwrap();
    backfill_equals_the_writer(store.clone(), PG_MIGRATION).await;
    store.close().await;
    crate::testing::drop_isolated_pg(&url, &schema)
        .await
        .unwrap();
}
