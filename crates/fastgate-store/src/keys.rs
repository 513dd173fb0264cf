//! Gateway keys (`api_keys`) and the change detector (`key_changes`).
//!
//! Change detection: `key_changes` holds one row whose `version` is bumped in the
//! same transaction as every insert, update, revoke and delete of a key. The bump is
//! the transaction's first statement, so on SQLite it takes the write lock up front
//! (no deferred-transaction upgrade failures) and on PostgreSQL it serialises key
//! mutations across instances; a mutation that turns out to be a no-op rolls back.
//! Usage updates ([`Store::record_key_usage`]) never touch it nor `updated_at`.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use fastgate_auth::{ApiKeyRecord, KeyLimits, KeyQuota, QuotaPeriod};

use crate::convert::{
    from_ms, i64_to_u64, list_from_json, list_to_json, now_ms, opt_from_ms, opt_i64_to_u32,
    opt_i64_to_u64, opt_storable, opt_to_ms, opt_u64_to_i64, storable, to_ms, u64_to_i64,
};
use crate::{Store, StoreError};

/// A cheap fingerprint of the `api_keys` table; it differs after any key mutation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeysVersion {
    /// Number of rows in `api_keys`.
    pub count: u64,
    /// Largest `updated_at` (unix ms), 0 when there are no keys.
    pub max_updated_at_ms: i64,
    /// Monotonic counter bumped by every insert/update/revoke/delete through the store.
    pub changes: i64,
}

/// Usage of one key to add in a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyUsage {
    pub key_id: String,
    pub count: u64,
    pub last_used_at: DateTime<Utc>,
}

macro_rules! key_cols {
    () => {
        "id, name, source, key_hash, prefix, created_at, updated_at, expires_at, revoked_at, \
         is_active, allowed_routes, allowed_models, rpm_limit, rpd_limit, tpm_limit, \
         max_concurrent, quota_requests, quota_tokens, quota_cost, quota_period, usage_count, \
         last_used_at"
    };
}

const BUMP: &str = "UPDATE key_changes SET version = version + 1 WHERE id = 1";
const RESOLVE: &str = "SELECT id FROM api_keys WHERE id = $1 OR name = $1 \
     ORDER BY CASE WHEN id = $1 THEN 0 ELSE 1 END LIMIT 1";
const SELECT_ONE: &str = concat!(
    "SELECT ",
    key_cols!(),
    " FROM api_keys WHERE id = $1 OR name = $1 \
     ORDER BY CASE WHEN id = $1 THEN 0 ELSE 1 END LIMIT 1"
);
const SELECT_ALL: &str = concat!(
    "SELECT ",
    key_cols!(),
    " FROM api_keys ORDER BY created_at, id"
);
const INSERT: &str = concat!(
    "INSERT INTO api_keys (",
    key_cols!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, \
     $18, $19, $20, $21, $22)"
);
/// `updated_at` strictly increases per row, even within one millisecond.
const UPDATE: &str = "UPDATE api_keys SET name = $2, source = $3, key_hash = $4, prefix = $5, \
     expires_at = $6, revoked_at = $7, is_active = $8, allowed_routes = $9, \
     allowed_models = $10, rpm_limit = $11, rpd_limit = $12, tpm_limit = $13, \
     max_concurrent = $14, quota_requests = $15, quota_tokens = $16, quota_cost = $17, \
     quota_period = $18, \
     updated_at = CASE WHEN updated_at >= $19 THEN updated_at + 1 ELSE $19 END \
     WHERE id = $1";
const REVOKE: &str = "UPDATE api_keys SET is_active = $2, \
     revoked_at = COALESCE(revoked_at, $3), \
     updated_at = CASE WHEN updated_at >= $3 THEN updated_at + 1 ELSE $3 END \
     WHERE id = $1";
const DELETE: &str = "DELETE FROM api_keys WHERE id = $1";
const VERSION: &str = "SELECT (SELECT COUNT(*) FROM api_keys), \
     (SELECT COALESCE(MAX(updated_at), 0) FROM api_keys), \
     (SELECT version FROM key_changes WHERE id = 1)";
const USAGE: &str = "UPDATE api_keys SET usage_count = usage_count + $2, \
     last_used_at = CASE WHEN last_used_at IS NULL OR last_used_at < $3 THEN $3 \
     ELSE last_used_at END WHERE id = $1";

/// `api_keys` as stored.
#[derive(sqlx::FromRow)]
struct KeyRow {
    id: String,
    name: String,
    source: Option<String>,
    key_hash: String,
    prefix: String,
    created_at: i64,
    updated_at: i64,
    expires_at: Option<i64>,
    revoked_at: Option<i64>,
    is_active: bool,
    allowed_routes: String,
    allowed_models: String,
    rpm_limit: Option<i64>,
    rpd_limit: Option<i64>,
    tpm_limit: Option<i64>,
    max_concurrent: Option<i64>,
    quota_requests: Option<i64>,
    quota_tokens: Option<i64>,
    quota_cost: Option<f64>,
    quota_period: String,
    usage_count: i64,
    last_used_at: Option<i64>,
}

impl KeyRow {
    fn from_record(k: &ApiKeyRecord) -> Result<Self, StoreError> {
        Ok(Self {
            // Text as both stores keep it (NUL becomes U+FFFD).
            id: storable(&k.id),
            name: storable(&k.name),
            source: opt_storable(&k.source),
            key_hash: storable(&k.key_hash),
            prefix: storable(&k.prefix),
            created_at: to_ms(k.created_at),
            updated_at: to_ms(k.updated_at),
            expires_at: opt_to_ms(k.expires_at),
            revoked_at: opt_to_ms(k.revoked_at),
            is_active: k.is_active,
            allowed_routes: list_to_json("allowed_routes", &k.allowed_routes)?,
            allowed_models: list_to_json("allowed_models", &k.allowed_models)?,
            rpm_limit: k.limits.requests_per_minute.map(i64::from),
            rpd_limit: k.limits.requests_per_day.map(i64::from),
            tpm_limit: opt_u64_to_i64("tokens_per_minute", k.limits.tokens_per_minute)?,
            max_concurrent: k.limits.max_concurrent.map(i64::from),
            quota_requests: opt_u64_to_i64("quota.requests", k.quota.requests)?,
            quota_tokens: opt_u64_to_i64("quota.tokens", k.quota.tokens)?,
            quota_cost: k.quota.cost,
            quota_period: k.quota.period.as_str().to_owned(),
            usage_count: u64_to_i64("usage_count", k.usage_count)?,
            last_used_at: opt_to_ms(k.last_used_at),
        })
    }

    fn into_record(self) -> Result<ApiKeyRecord, StoreError> {
        let period = QuotaPeriod::parse(&self.quota_period).ok_or_else(|| {
            StoreError::Corrupt(format!(
                "quota_period: unknown value {:?}",
                self.quota_period
            ))
        })?;
        Ok(ApiKeyRecord {
            created_at: from_ms("created_at", self.created_at)?,
            updated_at: from_ms("updated_at", self.updated_at)?,
            expires_at: opt_from_ms("expires_at", self.expires_at)?,
            revoked_at: opt_from_ms("revoked_at", self.revoked_at)?,
            allowed_routes: list_from_json("allowed_routes", &self.allowed_routes)?,
            allowed_models: list_from_json("allowed_models", &self.allowed_models)?,
            limits: KeyLimits {
                requests_per_minute: opt_i64_to_u32("rpm_limit", self.rpm_limit)?,
                requests_per_day: opt_i64_to_u32("rpd_limit", self.rpd_limit)?,
                tokens_per_minute: opt_i64_to_u64("tpm_limit", self.tpm_limit)?,
                max_concurrent: opt_i64_to_u32("max_concurrent", self.max_concurrent)?,
            },
            quota: KeyQuota {
                requests: opt_i64_to_u64("quota_requests", self.quota_requests)?,
                tokens: opt_i64_to_u64("quota_tokens", self.quota_tokens)?,
                cost: self.quota_cost,
                period,
            },
            usage_count: i64_to_u64("usage_count", self.usage_count)?,
            last_used_at: opt_from_ms("last_used_at", self.last_used_at)?,
            id: self.id,
            name: self.name,
            source: self.source,
            key_hash: self.key_hash,
            prefix: self.prefix,
            is_active: self.is_active,
        })
    }
}

impl Store {
    /// Inserts a key as given (timestamps included). A duplicate id, name or key hash
    /// is [`StoreError::Conflict`].
    pub async fn insert_key(&self, key: &ApiKeyRecord) -> Result<(), StoreError> {
        let r = KeyRow::from_record(key)?;
        with_pool!(self, pool, DB => {
            let mut tx = pool.begin().await?;
            sqlx::query(BUMP).execute(&mut *tx).await?;
            sqlx::query(INSERT)
                .bind(&r.id).bind(&r.name).bind(&r.source).bind(&r.key_hash).bind(&r.prefix)
                .bind(r.created_at).bind(r.updated_at).bind(r.expires_at).bind(r.revoked_at)
                .bind(r.is_active).bind(&r.allowed_routes).bind(&r.allowed_models)
                .bind(r.rpm_limit).bind(r.rpd_limit).bind(r.tpm_limit).bind(r.max_concurrent)
                .bind(r.quota_requests).bind(r.quota_tokens).bind(r.quota_cost)
                .bind(&r.quota_period).bind(r.usage_count).bind(r.last_used_at)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
        });
        Ok(())
    }

    /// All keys, oldest first (by `created_at`, then id).
    pub async fn list_keys(&self) -> Result<Vec<ApiKeyRecord>, StoreError> {
        let rows: Vec<KeyRow> = with_pool!(self, pool, DB => {
            sqlx::query_as(SELECT_ALL).fetch_all(pool).await?
        });
        rows.into_iter().map(KeyRow::into_record).collect()
    }

    /// The key whose id is `id_or_name`, else the key with that name.
    pub async fn get_key(&self, id_or_name: &str) -> Result<Option<ApiKeyRecord>, StoreError> {
        let row: Option<KeyRow> = with_pool!(self, pool, DB => {
            sqlx::query_as(SELECT_ONE).bind(storable(id_or_name)).fetch_optional(pool).await?
        });
        row.map(KeyRow::into_record).transpose()
    }

    /// Replaces the key with `key.id`; false when there is none. Sets `updated_at` to
    /// now (strictly greater than before). Leaves `created_at`, `usage_count` and
    /// `last_used_at` alone: those belong to the store and [`Store::record_key_usage`].
    pub async fn update_key(&self, key: &ApiKeyRecord) -> Result<bool, StoreError> {
        let r = KeyRow::from_record(key)?;
        let now = now_ms();
        with_pool!(self, pool, DB => {
            let mut tx = pool.begin().await?;
            sqlx::query(BUMP).execute(&mut *tx).await?;
            let done = sqlx::query(UPDATE)
                .bind(&r.id).bind(&r.name).bind(&r.source).bind(&r.key_hash).bind(&r.prefix)
                .bind(r.expires_at).bind(r.revoked_at).bind(r.is_active)
                .bind(&r.allowed_routes).bind(&r.allowed_models)
                .bind(r.rpm_limit).bind(r.rpd_limit).bind(r.tpm_limit).bind(r.max_concurrent)
                .bind(r.quota_requests).bind(r.quota_tokens).bind(r.quota_cost)
                .bind(&r.quota_period).bind(now)
                .execute(&mut *tx)
                .await?;
            if done.rows_affected() == 0 {
                tx.rollback().await?;
                return Ok(false);
            }
            tx.commit().await?;
        });
        Ok(true)
    }

    /// Deactivates a key: `is_active = false`, `revoked_at` = now (kept if it was
    /// already revoked), `updated_at` = now. Returns the key as stored afterwards.
    pub async fn revoke_key(&self, id_or_name: &str) -> Result<Option<ApiKeyRecord>, StoreError> {
        let now = now_ms();
        let row: Option<KeyRow> = with_pool!(self, pool, DB => {
            let mut tx = pool.begin().await?;
            sqlx::query(BUMP).execute(&mut *tx).await?;
            let id: Option<String> = sqlx::query_scalar(RESOLVE)
                .bind(storable(id_or_name))
                .fetch_optional(&mut *tx)
                .await?;
            let Some(id) = id else {
                tx.rollback().await?;
                return Ok(None);
            };
            sqlx::query(REVOKE).bind(&id).bind(false).bind(now).execute(&mut *tx).await?;
            let row: Option<KeyRow> =
                sqlx::query_as(SELECT_ONE).bind(&id).fetch_optional(&mut *tx).await?;
            tx.commit().await?;
            row
        });
        row.map(KeyRow::into_record).transpose()
    }

    /// Deletes the key with that id (else name); false when there is none.
    pub async fn delete_key(&self, id_or_name: &str) -> Result<bool, StoreError> {
        with_pool!(self, pool, DB => {
            let mut tx = pool.begin().await?;
            sqlx::query(BUMP).execute(&mut *tx).await?;
            let id: Option<String> = sqlx::query_scalar(RESOLVE)
                .bind(storable(id_or_name))
                .fetch_optional(&mut *tx)
                .await?;
            let Some(id) = id else {
                tx.rollback().await?;
                return Ok(false);
            };
            sqlx::query(DELETE).bind(&id).execute(&mut *tx).await?;
            tx.commit().await?;
        });
        Ok(true)
    }

    /// The change detector servers poll: `(count, max updated_at, change counter)`.
    /// Any insert/update/revoke/delete through the store changes it (the counter
    /// always moves); [`Store::record_key_usage`] never does.
    pub async fn keys_version(&self) -> Result<KeysVersion, StoreError> {
        let (count, max_updated_at_ms, changes): (i64, i64, Option<i64>) = with_pool!(self, pool, DB => {
            sqlx::query_as(VERSION).fetch_one(pool).await?
        });
        Ok(KeysVersion {
            count: i64_to_u64("count", count)?,
            max_updated_at_ms,
            changes: changes.unwrap_or(0),
        })
    }

    /// Adds usage in one transaction: `usage_count += count`,
    /// `last_used_at = max(last_used_at, at)`. Entries for the same key are merged;
    /// unknown keys are ignored. Does not change [`Store::keys_version`].
    pub async fn record_key_usage(&self, batch: &[KeyUsage]) -> Result<(), StoreError> {
        // Merged and sorted by id: one statement per key, a stable lock order.
        let mut merged: BTreeMap<&str, (u64, i64)> = BTreeMap::new();
        for u in batch {
            let e = merged.entry(u.key_id.as_str()).or_insert((0, i64::MIN));
            e.0 =
                e.0.checked_add(u.count)
                    .ok_or_else(|| StoreError::out_of_range("usage count", u.count))?;
            e.1 = e.1.max(to_ms(u.last_used_at));
        }
        if merged.is_empty() {
            return Ok(());
        }
        let merged = merged
            .into_iter()
            .map(|(id, (n, at))| Ok((id, u64_to_i64("usage count", n)?, at)))
            .collect::<Result<Vec<_>, StoreError>>()?;
        with_pool!(self, pool, DB => {
            let mut tx = pool.begin().await?;
            for (id, n, at) in &merged {
                sqlx::query(USAGE).bind(storable(id)).bind(*n).bind(*at).execute(&mut *tx).await?;
            }
            tx.commit().await?;
        });
        Ok(())
    }
}
