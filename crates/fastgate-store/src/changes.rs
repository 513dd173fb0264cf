//! The change feed: how an instance learns that keys, model groups, live
//! objects (upstreams, provider keys, routes, rules) or credential states changed
//! in the database.
//!
//! Every change bumps a one-row counter in the same transaction. On SQLite (one
//! host) instances compare the counters in one cheap query. On PostgreSQL a
//! trigger on each counter notifies `fastgate_changes` at commit and instances
//! LISTEN: N instances cost the database O(1) per change instead of a poll each
//! per second.

use sqlx::postgres::PgListener;

use crate::keys::KeysVersion;
use crate::store::Inner;
use crate::{Store, StoreError};

/// The channel the PostgreSQL triggers notify.
pub const CHANGE_CHANNEL: &str = "fastgate_changes";

/// What changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    Keys,
    Models,
    Live,
    /// A credential's shared state (`credential_states`).
    Health,
}

/// All change counters, read in one query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChangeVersions {
    pub keys: KeysVersion,
    pub models: i64,
    pub live: i64,
    pub health: i64,
}

const VERSIONS: &str = "SELECT (SELECT COUNT(*) FROM api_keys), \
     (SELECT COALESCE(MAX(updated_at), 0) FROM api_keys), \
     (SELECT version FROM key_changes WHERE id = 1), \
     (SELECT version FROM model_changes WHERE id = 1), \
     (SELECT version FROM live_changes WHERE id = 1), \
     (SELECT version FROM health_changes WHERE id = 1)";

impl Store {
    /// Every change counter in one round trip.
    pub async fn change_versions(&self) -> Result<ChangeVersions, StoreError> {
        type Versions = (i64, i64, Option<i64>, i64, i64, i64);
        let (count, max_updated_at_ms, keys, models, live, health): Versions = with_pool!(self, pool, DB => {
            sqlx::query_as(VERSIONS).fetch_one(pool).await?
        });
        Ok(ChangeVersions {
            keys: KeysVersion {
                count: u64::try_from(count)
                    .map_err(|_| StoreError::Corrupt(format!("key count {count}")))?,
                max_updated_at_ms,
                changes: keys.unwrap_or(0),
            },
            models,
            live,
            health,
        })
    }

    /// A listener on the change feed, on PostgreSQL; `None` on SQLite (poll
    /// [`Store::change_versions`] instead).
    pub async fn change_listener(&self) -> Result<Option<ChangeListener>, StoreError> {
        let Inner::Postgres(pool) = &self.inner else {
            return Ok(None);
        };
        let schema: String = sqlx::query_scalar("SELECT current_schema()::text")
            .fetch_one(pool)
            .await?;
        let mut listener = PgListener::connect_with(pool).await?;
        listener.listen(CHANGE_CHANNEL).await?;
        Ok(Some(ChangeListener {
            listener,
            prefix: format!("{schema}:"),
        }))
    }
}

/// Notifications of changes made by any instance on the same PostgreSQL schema.
pub struct ChangeListener {
    listener: PgListener,
    /// Payloads are `<schema>:<counter table>`; other schemas' are ignored.
    prefix: String,
}

impl ChangeListener {
    /// The next change. `Ok(None)`: the connection was lost (it reconnects on the
    /// next call) and changes may have been missed, so reload everything.
    pub async fn recv(&mut self) -> Result<Option<ChangeKind>, StoreError> {
        loop {
            let Some(n) = self.listener.try_recv().await? else {
                return Ok(None);
            };
            let Some(table) = n.payload().strip_prefix(&self.prefix) else {
                continue;
            };
            match table {
                "key_changes" => return Ok(Some(ChangeKind::Keys)),
                "model_changes" => return Ok(Some(ChangeKind::Models)),
                "live_changes" => return Ok(Some(ChangeKind::Live)),
                "health_changes" => return Ok(Some(ChangeKind::Health)),
                _ => continue,
            }
        }
    }
}
