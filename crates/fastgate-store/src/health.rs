//! Credential health shared by a fleet: the state of each provider credential
//! (`credential_states`, with its change counter `health_changes`) and the usage
//! counters every instance adds to (`credential_usage`, no change notification).

use std::collections::BTreeMap;

use serde::Serialize;

use crate::convert::{i64_to_u64, now_ms, opt_storable, storable, u64_to_i64};
use crate::{Store, StoreError};

const BUMP: &str = "UPDATE health_changes SET version = version + 1 WHERE id = 1";

/// The shared state of one provider credential.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CredentialStateRow {
    pub upstream: String,
    pub credential: String,
    /// `active`, `disabled`, `banned` or `exhausted` (the database refuses others).
    pub state: String,
    pub reason: String,
    /// Since when the credential is in this state (unix ms).
    pub since_ms: i64,
    /// When it returns to `active` on its own; `None`: only by hand.
    pub until_ms: Option<i64>,
    /// Who changed it: `rule:<name>`, `scheduler`, `admin-token@127.0.0.1`, …
    pub changed_by: String,
    /// When the row was written, as given by the writer (unix ms).
    pub updated_at_ms: i64,
}

/// What one instance adds to a credential's usage since its last flush.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CredentialUsageDelta {
    pub upstream: String,
    pub credential: String,
    pub requests: u64,
    pub errors: u64,
    pub tokens: u64,
    /// The newest error seen, if any (kept with `last_error_at_ms`).
    pub last_error: Option<String>,
    /// When `last_error` happened; an error without a time is stamped with the write time.
    pub last_error_at_ms: Option<i64>,
    pub last_used_at_ms: Option<i64>,
    /// The local date (`YYYY-MM-DD`) the requests and tokens count towards.
    pub quota_day: String,
}

/// A credential's usage as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CredentialUsageRow {
    pub upstream: String,
    pub credential: String,
    pub requests: u64,
    pub errors: u64,
    pub tokens: u64,
    pub last_error: Option<String>,
    pub last_error_at_ms: Option<i64>,
    pub last_used_at_ms: Option<i64>,
    /// The local date (`YYYY-MM-DD`) `day_requests` and `day_tokens` belong to.
    pub quota_day: String,
    pub day_requests: u64,
    pub day_tokens: u64,
    pub updated_at_ms: i64,
}

type StateTuple = (
    String,
    String,
    String,
    String,
    i64,
    Option<i64>,
    String,
    i64,
);

const UPSERT_STATE: &str = "INSERT INTO credential_states \
     (upstream, credential, state, reason, since_ms, until_ms, changed_by, updated_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
     ON CONFLICT (upstream, credential) DO UPDATE SET state = excluded.state, \
     reason = excluded.reason, since_ms = excluded.since_ms, until_ms = excluded.until_ms, \
     changed_by = excluded.changed_by, updated_at = excluded.updated_at";

/// Adds a delta. In `DO UPDATE` every expression reads the row as it was, so the
/// day comparison holds for each column: the same day adds, a later day restarts
/// the day counters from the delta, an older day leaves them (totals still add).
/// The error pair and `last_used_at_ms` move only forward in time.
const ADD_USAGE: &str = "INSERT INTO credential_usage \
     (upstream, credential, requests, errors, tokens, last_error, last_error_at_ms, \
      last_used_at_ms, quota_day, day_requests, day_tokens, updated_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $3, $5, $10) \
     ON CONFLICT (upstream, credential) DO UPDATE SET \
     requests = credential_usage.requests + excluded.requests, \
     errors = credential_usage.errors + excluded.errors, \
     tokens = credential_usage.tokens + excluded.tokens, \
     last_error = CASE WHEN excluded.last_error_at_ms IS NOT NULL \
         AND (credential_usage.last_error_at_ms IS NULL \
              OR excluded.last_error_at_ms >= credential_usage.last_error_at_ms) \
         THEN excluded.last_error ELSE credential_usage.last_error END, \
     last_error_at_ms = CASE WHEN excluded.last_error_at_ms IS NOT NULL \
         AND (credential_usage.last_error_at_ms IS NULL \
              OR excluded.last_error_at_ms >= credential_usage.last_error_at_ms) \
         THEN excluded.last_error_at_ms ELSE credential_usage.last_error_at_ms END, \
     last_used_at_ms = CASE WHEN excluded.last_used_at_ms IS NOT NULL \
         AND (credential_usage.last_used_at_ms IS NULL \
              OR excluded.last_used_at_ms > credential_usage.last_used_at_ms) \
         THEN excluded.last_used_at_ms ELSE credential_usage.last_used_at_ms END, \
     quota_day = CASE WHEN excluded.quota_day > credential_usage.quota_day \
         THEN excluded.quota_day ELSE credential_usage.quota_day END, \
     day_requests = CASE \
         WHEN excluded.quota_day = credential_usage.quota_day \
             THEN credential_usage.day_requests + excluded.day_requests \
         WHEN excluded.quota_day > credential_usage.quota_day THEN excluded.day_requests \
         ELSE credential_usage.day_requests END, \
     day_tokens = CASE \
         WHEN excluded.quota_day = credential_usage.quota_day \
             THEN credential_usage.day_tokens + excluded.day_tokens \
         WHEN excluded.quota_day > credential_usage.quota_day THEN excluded.day_tokens \
         ELSE credential_usage.day_tokens END, \
     updated_at = excluded.updated_at";

const USAGE_COLUMNS: &str = "upstream, credential, requests, errors, tokens, last_error, \
     last_error_at_ms, last_used_at_ms, quota_day, day_requests, day_tokens, updated_at";

#[derive(sqlx::FromRow)]
struct UsageRecord {
    upstream: String,
    credential: String,
    requests: i64,
    errors: i64,
    tokens: i64,
    last_error: Option<String>,
    last_error_at_ms: Option<i64>,
    last_used_at_ms: Option<i64>,
    quota_day: String,
    day_requests: i64,
    day_tokens: i64,
    updated_at: i64,
}

impl UsageRecord {
    fn into_row(self) -> Result<CredentialUsageRow, StoreError> {
        Ok(CredentialUsageRow {
            upstream: self.upstream,
            credential: self.credential,
            requests: i64_to_u64("requests", self.requests)?,
            errors: i64_to_u64("errors", self.errors)?,
            tokens: i64_to_u64("tokens", self.tokens)?,
            last_error: self.last_error,
            last_error_at_ms: self.last_error_at_ms,
            last_used_at_ms: self.last_used_at_ms,
            quota_day: self.quota_day,
            day_requests: i64_to_u64("day_requests", self.day_requests)?,
            day_tokens: i64_to_u64("day_tokens", self.day_tokens)?,
            updated_at_ms: self.updated_at,
        })
    }
}

/// A delta ready to bind: checked numbers, storable text.
struct BoundDelta {
    upstream: String,
    credential: String,
    requests: i64,
    errors: i64,
    tokens: i64,
    last_error: Option<String>,
    last_error_at_ms: Option<i64>,
    last_used_at_ms: Option<i64>,
    quota_day: String,
}

impl BoundDelta {
    fn new(d: &CredentialUsageDelta, now: i64) -> Result<Self, StoreError> {
        check_day(&d.quota_day)?;
        let last_error_at_ms = match (&d.last_error, d.last_error_at_ms) {
            (Some(_), None) => Some(now),
            (_, at) => at,
        };
        Ok(Self {
            upstream: storable(&d.upstream),
            credential: storable(&d.credential),
            requests: u64_to_i64("requests", d.requests)?,
            errors: u64_to_i64("errors", d.errors)?,
            tokens: u64_to_i64("tokens", d.tokens)?,
            last_error: opt_storable(&d.last_error),
            last_error_at_ms,
            last_used_at_ms: d.last_used_at_ms,
            quota_day: d.quota_day.clone(),
        })
    }
}

/// Days are compared as text, so only the one spelling `YYYY-MM-DD` is accepted.
fn check_day(day: &str) -> Result<(), StoreError> {
    let canonical = chrono::NaiveDate::parse_from_str(day, "%Y-%m-%d")
        .is_ok_and(|d| d.format("%Y-%m-%d").to_string() == day);
    if canonical {
        Ok(())
    } else {
        Err(StoreError::out_of_range("quota_day", format!("{day:?}")))
    }
}

impl Store {
    /// Insert or replace the state of a credential; bumps the health counter in the
    /// same transaction. A state other than the four known ones is refused
    /// ([`StoreError::is_invalid_input`]).
    pub async fn set_credential_state(&self, row: &CredentialStateRow) -> Result<(), StoreError> {
        with_pool!(self, pool, DB => {
            let mut tx = pool.begin().await?;
            // The counter first, in every health write: on SQLite the transaction
            // starts with a write (no stale-snapshot SQLITE_BUSY), on PostgreSQL
            // every writer locks the counter row before any state row (no deadlock).
            sqlx::query(BUMP).execute(&mut *tx).await?;
            sqlx::query(UPSERT_STATE)
                .bind(storable(&row.upstream)).bind(storable(&row.credential))
                .bind(storable(&row.state)).bind(storable(&row.reason))
                .bind(row.since_ms).bind(row.until_ms)
                .bind(storable(&row.changed_by)).bind(row.updated_at_ms)
                .execute(&mut *tx).await?;
            tx.commit().await?;
        });
        Ok(())
    }

    /// Every stored credential state, by upstream then credential.
    pub async fn list_credential_states(&self) -> Result<Vec<CredentialStateRow>, StoreError> {
        let rows: Vec<StateTuple> = with_pool!(self, pool, DB => {
            sqlx::query_as(
                "SELECT upstream, credential, state, reason, since_ms, until_ms, changed_by, \
                 updated_at FROM credential_states ORDER BY upstream, credential",
            )
            .fetch_all(pool)
            .await?
        });
        Ok(rows
            .into_iter()
            .map(
                |(upstream, credential, state, reason, since_ms, until_ms, changed_by, at)| {
                    CredentialStateRow {
                        upstream,
                        credential,
                        state,
                        reason,
                        since_ms,
                        until_ms,
                        changed_by,
                        updated_at_ms: at,
                    }
                },
            )
            .collect())
    }

    /// Deletes the state of one credential, or of every credential of `upstream`
    /// when `credential` is `None` (the credential or upstream was deleted). Bumps
    /// the health counter when a row went. Returns the number of rows deleted.
    pub async fn delete_credential_states(
        &self,
        upstream: &str,
        credential: Option<&str>,
    ) -> Result<u64, StoreError> {
        let upstream = storable(upstream);
        let credential = credential.map(storable);
        let deleted = with_pool!(self, pool, DB => {
            let mut tx = pool.begin().await?;
            sqlx::query(BUMP).execute(&mut *tx).await?;
            let n = sqlx::query(
                "DELETE FROM credential_states WHERE upstream = $1 \
                 AND ($2 IS NULL OR credential = $2)",
            )
            .bind(&upstream).bind(&credential)
            .execute(&mut *tx).await?
            .rows_affected();
            if n > 0 {
                tx.commit().await?;
            } else {
                // Nothing changed: undo the bump (no notification either).
                tx.rollback().await?;
            }
            n
        });
        Ok(deleted)
    }

    /// The health counter alone (also in [`Store::change_versions`]).
    pub async fn health_version(&self) -> Result<i64, StoreError> {
        let v: i64 = with_pool!(self, pool, DB => {
            sqlx::query_scalar("SELECT version FROM health_changes WHERE id = 1")
                .fetch_one(pool).await?
        });
        Ok(v)
    }

    /// Adds a batch of usage deltas in one transaction (see [`CredentialUsageDelta`]):
    /// totals add; `last_*` keep the newer value; the day counters add on the same
    /// `quota_day`, restart from the delta on a later one, and ignore an older one.
    /// A `quota_day` not spelled `YYYY-MM-DD` is refused before anything is written.
    pub async fn add_credential_usage(
        &self,
        deltas: &[CredentialUsageDelta],
    ) -> Result<(), StoreError> {
        if deltas.is_empty() {
            return Ok(());
        }
        let now = now_ms();
        // Sorted by credential: concurrent batches lock rows in the same order.
        let mut sorted: BTreeMap<(&str, &str), Vec<BoundDelta>> = BTreeMap::new();
        for d in deltas {
            sorted
                .entry((&d.upstream, &d.credential))
                .or_default()
                .push(BoundDelta::new(d, now)?);
        }
        with_pool!(self, pool, DB => {
            let mut tx = pool.begin().await?;
            for d in sorted.values().flatten() {
                sqlx::query(ADD_USAGE)
                    .bind(&d.upstream).bind(&d.credential)
                    .bind(d.requests).bind(d.errors).bind(d.tokens)
                    .bind(&d.last_error).bind(d.last_error_at_ms).bind(d.last_used_at_ms)
                    .bind(&d.quota_day).bind(now)
                    .execute(&mut *tx).await?;
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// Every credential's usage, by upstream then credential.
    pub async fn list_credential_usage(&self) -> Result<Vec<CredentialUsageRow>, StoreError> {
        let sql =
            format!("SELECT {USAGE_COLUMNS} FROM credential_usage ORDER BY upstream, credential");
        let rows: Vec<UsageRecord> = with_pool!(self, pool, DB => {
            sqlx::query_as(sqlx::AssertSqlSafe(sql)).fetch_all(pool).await?
        });
        rows.into_iter().map(UsageRecord::into_row).collect()
    }

    /// The quota reset: rows counting a day older than `quota_day` start `quota_day`
    /// at zero. Returns the number of rows reset.
    pub async fn reset_credential_day_usage(&self, quota_day: &str) -> Result<u64, StoreError> {
        check_day(quota_day)?;
        let now = now_ms();
        let n = with_pool!(self, pool, DB => {
            sqlx::query(
                "UPDATE credential_usage SET quota_day = $1, day_requests = 0, day_tokens = 0, \
                 updated_at = $2 WHERE quota_day < $1",
            )
            .bind(quota_day).bind(now)
            .execute(pool).await?
            .rows_affected()
        });
        Ok(n)
    }

    /// Deletes the usage of one credential, or of every credential of `upstream`
    /// when `credential` is `None`. Returns the number of rows deleted.
    pub async fn delete_credential_usage(
        &self,
        upstream: &str,
        credential: Option<&str>,
    ) -> Result<u64, StoreError> {
        let upstream = storable(upstream);
        let credential = credential.map(storable);
        let n = with_pool!(self, pool, DB => {
            sqlx::query(
                "DELETE FROM credential_usage WHERE upstream = $1 \
                 AND ($2 IS NULL OR credential = $2)",
            )
            .bind(&upstream).bind(&credential)
            .execute(pool).await?
            .rows_affected()
        });
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::check_day;

    #[test]
    fn only_canonical_days_are_accepted() {
        assert!(check_day("2026-11-30").is_ok());
        for bad in [
            "2026-1-30",
            "2026-11-31",
            "20261130",
            "",
            "2026-11-30 ",
            "tomorrow",
        ] {
            assert!(check_day(bad).is_err(), "{bad:?}");
        }
    }
}
