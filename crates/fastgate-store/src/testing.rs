//! Test helpers for this and other crates: isolated PostgreSQL schemas.
//!
//! ```ignore
//! if let Some(url) = fastgate_store::testing::pg_test_url() {
//!     let (store, schema) = fastgate_store::testing::connect_isolated_pg(&url).await?;
//!     // … use store …
//!     store.close().await;
//!     fastgate_store::testing::drop_isolated_pg(&url, &schema).await?;
//! }
//! ```

use std::str::FromStr;

use sqlx::postgres::PgConnectOptions;
use sqlx::{AssertSqlSafe, Connection, PgConnection};

use crate::store::redact_url;
use crate::{Store, StoreError};

/// Environment variable holding the PostgreSQL URL for tests.
pub const PG_TEST_URL_ENV: &str = "FASTGATE_TEST_PG_URL";

/// `FASTGATE_TEST_PG_URL`, when set and not empty.
pub fn pg_test_url() -> Option<String> {
    std::env::var(PG_TEST_URL_ENV)
        .ok()
        .filter(|s| !s.trim().is_empty())
}

/// Creates a fresh schema `t_<uuid>` in the database of `base_url` and returns a
/// migrated store whose connections use it as `search_path`, plus the schema name
/// (for [`drop_isolated_pg`]). Parallel tests on one database do not interfere.
pub async fn connect_isolated_pg(base_url: &str) -> Result<(Store, String), StoreError> {
    let opts = PgConnectOptions::from_str(base_url)
        .map_err(|e| StoreError::InvalidUrl(format!("{}: {e}", redact_url(base_url))))?;
    let schema = format!("t_{}", uuid::Uuid::now_v7().simple());
    let mut admin = PgConnection::connect_with(&opts).await?;
    sqlx::query(AssertSqlSafe(format!("CREATE SCHEMA \"{schema}\"")))
        .execute(&mut admin)
        .await?;
    admin.close().await?;
    let opts = opts.options([("search_path", schema.as_str())]);
    let store = Store::connect_pg_with(opts, 4).await?;
    Ok((store, schema))
}

/// Drops a schema made by [`connect_isolated_pg`] (and everything in it).
/// Refuses names that [`connect_isolated_pg`] would not have made.
pub async fn drop_isolated_pg(base_url: &str, schema: &str) -> Result<(), StoreError> {
    let valid = schema.len() == 34
        && schema.starts_with("t_")
        && schema[2..].bytes().all(|b| b.is_ascii_hexdigit());
    if !valid {
        return Err(StoreError::InvalidUrl(format!(
            "not a test schema name: {schema:?}"
        )));
    }
    let opts = PgConnectOptions::from_str(base_url)
        .map_err(|e| StoreError::InvalidUrl(format!("{}: {e}", redact_url(base_url))))?;
    let mut admin = PgConnection::connect_with(&opts).await?;
    sqlx::query(AssertSqlSafe(format!(
        "DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"
    )))
    .execute(&mut admin)
    .await?;
    admin.close().await?;
    Ok(())
}
