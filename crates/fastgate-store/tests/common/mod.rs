//! Shared test helpers: run a test body against SQLite and PostgreSQL (the latter
//! reported as ignored when `FASTGATE_TEST_PG_URL` was unset at build time).

#![allow(dead_code, reason = "each test crate uses a different subset")]
#![allow(
    clippy::unwrap_used,
    clippy::panic,
    reason = "test helpers fail the test on error"
)]

use std::future::Future;

use chrono::{DateTime, Duration, Utc};
use fastgate_store::testing::{connect_isolated_pg, drop_isolated_pg, pg_test_url};
use fastgate_store::{ApiKeyRecord, AuditRecord, KeyLimits, KeyQuota, Store};

/// Runs `f` on a fresh in-memory SQLite store.
pub async fn on_sqlite<F, Fut>(f: F)
where
    F: FnOnce(Store) -> Fut,
    Fut: Future<Output = ()>,
{
    let sqlite = Store::connect("sqlite::memory:", 4).await.unwrap();
    assert_eq!(sqlite.backend(), "sqlite");
    f(sqlite.clone()).await;
    sqlite.close().await;
}

/// Runs `f` on a fresh isolated PostgreSQL schema. Fails (never skips) when
/// `FASTGATE_TEST_PG_URL` is unset or the server is unreachable: variants that
/// should not run are marked ignored at build time instead.
pub async fn on_postgres<F, Fut>(f: F)
where
    F: FnOnce(Store) -> Fut,
    Fut: Future<Output = ()>,
{
    let url = pg_test_url().unwrap_or_else(|| {
        panic!("FASTGATE_TEST_PG_URL is unset: the PostgreSQL variants were built to run")
    });
    let (pg, schema) = connect_isolated_pg(&url)
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL at FASTGATE_TEST_PG_URL unreachable: {e}"));
    assert_eq!(pg.backend(), "postgres");
    f(pg.clone()).await;
    pg.close().await;
    drop_isolated_pg(&url, &schema).await.unwrap();
}

/// `both_backends!(name)` turns `async fn name(store: Store)` into the tests
/// `name::sqlite` and `name::postgres`; the latter is listed as ignored, with the
/// reason, when `FASTGATE_TEST_PG_URL` was unset at build time.
#[macro_export]
macro_rules! both_backends {
    ($name:ident) => {
        mod $name {
            #[tokio::test]
            async fn sqlite() {
                $crate::common::on_sqlite(super::$name).await;
            }
            #[tokio::test]
            #[cfg_attr(
                not(fastgate_pg_tests),
                ignore = "set FASTGATE_TEST_PG_URL to run on PostgreSQL"
            )]
            async fn postgres() {
                $crate::common::on_postgres(super::$name).await;
            }
        }
    };
}

/// Now, truncated to whole milliseconds (the stored precision).
pub fn now() -> DateTime<Utc> {
    DateTime::from_timestamp_millis(Utc::now().timestamp_millis()).unwrap()
}

pub fn key(name: &str) -> ApiKeyRecord {
    let t = now();
    ApiKeyRecord {
        id: uuid::Uuid::now_v7().to_string(),
        name: name.to_owned(),
        source: None,
        key_hash: format!("hash-{name}"),
        prefix: "fg_ab12cd".to_owned(),
        created_at: t,
        updated_at: t,
        expires_at: None,
        revoked_at: None,
        is_active: true,
        allowed_routes: Vec::new(),
        allowed_models: Vec::new(),
        limits: KeyLimits::default(),
        quota: KeyQuota::default(),
        usage_count: 0,
        last_used_at: None,
    }
}

pub fn audit(request_id: &str, request_time: DateTime<Utc>) -> AuditRecord {
    AuditRecord {
        request_id: request_id.to_owned(),
        client_request_id: None,
        key_id: None,
        key_name: None,
        source: None,
        method: "POST".to_owned(),
        path: "/v1/chat/completions".to_owned(),
        query: None,
        route: None,
        upstream: None,
        credential: None,
        target_url: None,
        status_code: 200,
        request_time,
        ttfb_ms: None,
        duration_ms: 1.5,
        request_bytes: 10,
        response_bytes: 20,
        user_agent: None,
        client_ip: None,
        is_stream: false,
        stream_chunks: 0,
        model: None,
        tokens_in: None,
        tokens_out: None,
        tokens_estimated: false,
        cost: None,
        error_message: None,
        request_headers: None,
        response_headers: None,
        request_body: None,
        response_body: None,
    }
}

/// A fixed base time (ms precision) plus `secs` seconds.
pub fn at(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(1_700_000_000_000).unwrap() + Duration::seconds(secs)
}
