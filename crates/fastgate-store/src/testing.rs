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

/// A database made unavailable on purpose by a test (see [`lock_sqlite_exclusive`] and
/// [`lock_pg_audit_table`]); it stays so until [`DbLock::release`].
pub struct DbLock {
    conn: LockConn,
}

enum LockConn {
    Sqlite(sqlx::SqliteConnection),
    Postgres(PgConnection),
}

impl DbLock {
    /// End the outage: commit the locking transaction and close the connection.
    pub async fn release(self) -> Result<(), StoreError> {
        match self.conn {
            LockConn::Sqlite(mut c) => {
                sqlx::query("COMMIT").execute(&mut c).await?;
                c.close().await?;
            }
            LockConn::Postgres(mut c) => {
                sqlx::query("COMMIT").execute(&mut c).await?;
                c.close().await?;
            }
        }
        Ok(())
    }
}

/// Opens another connection to the SQLite database file at `path` and takes an
/// exclusive lock (`BEGIN EXCLUSIVE`): no other connection can write until released.
pub async fn lock_sqlite_exclusive(path: &std::path::Path) -> Result<DbLock, StoreError> {
    let opts = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(path)
        .busy_timeout(std::time::Duration::from_secs(10));
    let mut conn = sqlx::SqliteConnection::connect_with(&opts).await?;
    sqlx::query("BEGIN EXCLUSIVE").execute(&mut conn).await?;
    Ok(DbLock {
        conn: LockConn::Sqlite(conn),
    })
}

/// Takes `LOCK TABLE audit_logs IN ACCESS EXCLUSIVE MODE` in `schema` (a schema made by
/// [`connect_isolated_pg`]) in a transaction held until released, then terminates every
/// other backend whose `application_name` is `application_name` (the gateway's
/// connections; give the gateway's URL `application_name=…`). Returns the lock and the
/// number of backends terminated.
pub async fn lock_pg_audit_table(
    base_url: &str,
    schema: &str,
    application_name: &str,
) -> Result<(DbLock, u64), StoreError> {
    let opts = PgConnectOptions::from_str(base_url)
        .map_err(|e| StoreError::InvalidUrl(format!("{}: {e}", redact_url(base_url))))?;
    let mut conn = PgConnection::connect_with(&opts).await?;
    sqlx::query("BEGIN").execute(&mut conn).await?;
    let ident = schema.replace('"', "");
    sqlx::query(AssertSqlSafe(format!(
        "LOCK TABLE \"{ident}\".audit_logs IN ACCESS EXCLUSIVE MODE"
    )))
    .execute(&mut conn)
    .await?;
    let mut other = PgConnection::connect_with(&opts).await?;
    let killed: Vec<(bool,)> = sqlx::query_as(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE application_name = $1 AND pid <> pg_backend_pid()",
    )
    .bind(application_name)
    .fetch_all(&mut other)
    .await?;
    other.close().await?;
    let terminated = killed.iter().filter(|(ok,)| *ok).count() as u64;
    Ok((
        DbLock {
            conn: LockConn::Postgres(conn),
        },
        terminated,
    ))
}

/// A store on an existing schema made by [`connect_isolated_pg`] (e.g. to read what a
/// gateway under test wrote there).
pub async fn connect_pg_schema(base_url: &str, schema: &str) -> Result<Store, StoreError> {
    let opts = PgConnectOptions::from_str(base_url)
        .map_err(|e| StoreError::InvalidUrl(format!("{}: {e}", redact_url(base_url))))?
        .options([("search_path", schema)]);
    Store::connect_pg_with(opts, 2).await
}
