//! The store handle: pool construction, migrations, health.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use crate::StoreError;

static SQLITE_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static PG_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// A cheap-to-clone handle on the database (SQLite or PostgreSQL).
#[derive(Clone)]
pub struct Store {
    pub(crate) inner: Inner,
}

#[derive(Clone)]
pub(crate) enum Inner {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.backend())
            .finish_non_exhaustive()
    }
}

/// Page size of a new SQLite database (an existing one keeps its own: in WAL mode it
/// cannot change). SQLite writes the WAL one page at a time and a checkpoint copies
/// it back the same way: at 4 KiB the audit writer made 0.64 `pwrite` and 0.24
/// `pread` calls per audit row. 16 KiB pages cut that to 0.21 and 0.09 for the same
/// bytes, and the SQLite thread's CPU per row by about a sixth; 64 KiB pages cut the
/// calls further but rewrote more of each partly filled page at every commit, and
/// cost more than they saved (docs/performance-profile.md).
const SQLITE_PAGE_SIZE: u32 = 16 * 1024;

/// WAL pages after which a commit also checkpoints: 4 MiB at 16 KiB pages, as
/// SQLite's default of 1,000 pages was at 4 KiB. A checkpoint copies the WAL into
/// the database file and syncs it, on the writer's thread, which shares the core
/// with requests in a one-core setup; 1,000 pages of 16 KiB made each checkpoint four
/// times larger (16 MiB to copy and sync at once).
const WAL_CHECKPOINT_PAGES: u32 = 4 * 1024 * 1024 / SQLITE_PAGE_SIZE;

impl Store {
    /// Connects and runs the embedded migrations.
    ///
    /// - `sqlite://path/to/file.db` (relative) or `sqlite:///abs/file.db`: creates the
    ///   parent directory and the file if missing; 16 KiB pages (new files), WAL
    ///   checkpointed every 4 MiB, `synchronous=NORMAL`,
    ///   `busy_timeout` 5 s, foreign keys on, case-sensitive `LIKE` (as PostgreSQL).
    /// - `sqlite::memory:`: a private in-memory database shared by the pool's
    ///   connections, alive as long as the pool (for tests).
    /// - `postgres://…` / `postgresql://…`.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Store, StoreError> {
        let max_connections = max_connections.max(1);
        if url.starts_with("sqlite:") {
            Self::connect_sqlite(url, max_connections).await
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let opts = PgConnectOptions::from_str(url)
                .map_err(|e| StoreError::InvalidUrl(format!("{}: {e}", redact_url(url))))?;
            Self::connect_pg_with(opts, max_connections).await
        } else {
            Err(StoreError::InvalidUrl(format!(
                "{}: expected sqlite:… or postgres://…",
                redact_url(url)
            )))
        }
    }

    async fn connect_sqlite(url: &str, max_connections: u32) -> Result<Store, StoreError> {
        let opts = SqliteConnectOptions::from_str(url)
            .map_err(|e| StoreError::InvalidUrl(format!("{url}: {e}")))?
            .create_if_missing(true)
            .page_size(SQLITE_PAGE_SIZE)
            .journal_mode(SqliteJournalMode::Wal)
            .pragma("wal_autocheckpoint", WAL_CHECKPOINT_PAGES.to_string())
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(5))
            .foreign_keys(true)
            .pragma("case_sensitive_like", "ON");
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        let mut pool_opts = SqlitePoolOptions::new().max_connections(max_connections);
        if in_memory {
            // The database lives as long as one connection does: keep one forever.
            pool_opts = pool_opts
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None);
        } else {
            create_parent_dir(opts.get_filename()).await?;
        }
        let pool = pool_opts.connect_with(opts).await?;
        SQLITE_MIGRATOR.run(&pool).await?;
        tracing::debug!(in_memory, "sqlite store ready");
        Ok(Store {
            inner: Inner::Sqlite(pool),
        })
    }

    /// Connects to PostgreSQL with explicit options (e.g. a `search_path`) and migrates.
    pub async fn connect_pg_with(
        opts: PgConnectOptions,
        max_connections: u32,
    ) -> Result<Store, StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(max_connections.max(1))
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(opts)
            .await?;
        PG_MIGRATOR.run(&pool).await?;
        tracing::debug!("postgres store ready");
        Ok(Store {
            inner: Inner::Postgres(pool),
        })
    }

    /// `"sqlite"` or `"postgres"`.
    pub fn backend(&self) -> &'static str {
        match self.inner {
            Inner::Sqlite(_) => "sqlite",
            Inner::Postgres(_) => "postgres",
        }
    }

    /// Round-trips a trivial query.
    pub async fn ping(&self) -> Result<(), StoreError> {
        with_pool!(self, pool, DB => {
            sqlx::query("SELECT 1").execute(pool).await?;
        });
        Ok(())
    }

    /// True once [`Store::close`] was called.
    pub fn is_closed(&self) -> bool {
        match &self.inner {
            Inner::Sqlite(p) => p.is_closed(),
            Inner::Postgres(p) => p.is_closed(),
        }
    }

    /// Closes the pool, waiting for checked-out connections to come back.
    pub async fn close(&self) {
        match &self.inner {
            Inner::Sqlite(p) => p.close().await,
            Inner::Postgres(p) => p.close().await,
        }
    }
}

async fn create_parent_dir(file: &Path) -> Result<(), StoreError> {
    match file.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => {
            tokio::fs::create_dir_all(dir).await?;
            Ok(())
        }
        _ => Ok(()),
    }
}

/// The URL without its password, for error messages.
pub(crate) fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (authority, tail) = match rest.find(['/', '?']) {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    match authority.rsplit_once('@') {
        Some((userinfo, host)) if userinfo.contains(':') => {
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}:***@{host}{tail}")
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::{Inner, Store, redact_url};

    /// Every connection of the pool checkpoints at 4 MiB of WAL (256 pages of 16 KiB),
    /// not at SQLite's default of 1,000 pages.
    #[tokio::test]
    async fn sqlite_connections_checkpoint_every_4_mib() {
        let dir = tempfile::tempdir().expect("dir");
        let url = format!("sqlite://{}", dir.path().join("c.db").display());
        let store = Store::connect(&url, 2).await.expect("store");
        let Inner::Sqlite(pool) = &store.inner else {
            unreachable!("a SQLite store")
        };
        let mut a = pool.acquire().await.expect("first connection");
        let mut b = pool.acquire().await.expect("second connection");
        for conn in [&mut a, &mut b] {
            let pages: i64 = sqlx::query_scalar("PRAGMA wal_autocheckpoint")
                .fetch_one(&mut **conn)
                .await
                .expect("pragma");
            assert_eq!(pages, 256);
        }
    }

    #[test]
    fn redacts_password() {
        assert_eq!(
            redact_url("postgres://u:secret@h:5432/db?x=1"),
            "postgres://u:***@h:5432/db?x=1"
        );
        assert_eq!(redact_url("postgres://h/db"), "postgres://h/db");
        assert_eq!(redact_url("sqlite::memory:"), "sqlite::memory:");
    }
}
