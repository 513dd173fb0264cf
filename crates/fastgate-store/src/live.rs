//! Upstreams, provider keys, routes and rules managed through the admin API
//! (`upstreams`, `upstream_credentials`, `routes`, `rules`) and their change counter
//! (`live_changes`).
//! Specs are opaque JSON here and provider keys opaque sealed text: their shape,
//! validation and encryption belong to other crates.

use sqlx::AssertSqlSafe;

use crate::convert::{i64_to_u64, now_ms, storable, u64_to_i64};
use crate::{Store, StoreError};

const BUMP: &str = "UPDATE live_changes SET version = version + 1 WHERE id = 1";

/// A stored upstream, route or rule: its name and its JSON spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSpec {
    pub name: String,
    pub spec: String,
}

/// A stored provider key. `sealed_key` is the encrypted key, never the key itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCredential {
    pub upstream: String,
    pub name: String,
    pub sealed_key: String,
    pub key_hint: String,
    pub weight: u32,
    /// The daily quota as JSON (`{"requests_per_day": N, "tokens_per_day": N}`), if any.
    pub quota: Option<String>,
}

/// The tables that hold one JSON spec per name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpecTable {
    Upstreams,
    Routes,
    Rules,
}

impl SpecTable {
    fn table(self) -> &'static str {
        match self {
            Self::Upstreams => "upstreams",
            Self::Routes => "routes",
            Self::Rules => "rules",
        }
    }
}

impl Store {
    /// Every stored object of `table`, by name.
    pub async fn list_specs(&self, table: SpecTable) -> Result<Vec<StoredSpec>, StoreError> {
        let sql = format!("SELECT name, spec FROM {} ORDER BY name", table.table());
        let rows: Vec<(String, String)> = with_pool!(self, pool, DB => {
            sqlx::query_as(AssertSqlSafe(sql)).fetch_all(pool).await?
        });
        Ok(rows
            .into_iter()
            .map(|(name, spec)| StoredSpec { name, spec })
            .collect())
    }

    /// Insert or replace an object of `table`. Returns true when it was new.
    pub async fn upsert_spec(
        &self,
        table: SpecTable,
        name: &str,
        spec: &str,
    ) -> Result<bool, StoreError> {
        let (name, spec) = (storable(name), storable(spec));
        let t = table.table();
        let update = format!("UPDATE {t} SET spec = $1, updated_at = $2 WHERE name = $3");
        let insert = format!("INSERT INTO {t} (name, spec, updated_at) VALUES ($3, $1, $2)");
        let now = now_ms();
        // Write first: on SQLite a transaction that reads before it writes fails
        // at once (SQLITE_BUSY) when another connection committed in between.
        let created = with_pool!(self, pool, DB => {
            let mut tx = pool.begin().await?;
            sqlx::query(BUMP).execute(&mut *tx).await?;
            let n = sqlx::query(AssertSqlSafe(update))
                .bind(&spec).bind(now).bind(&name)
                .execute(&mut *tx).await?
                .rows_affected();
            if n == 0 {
                sqlx::query(AssertSqlSafe(insert))
                    .bind(&spec).bind(now).bind(&name)
                    .execute(&mut *tx).await?;
            }
            tx.commit().await?;
            n == 0
        });
        Ok(created)
    }

    /// Delete an object of `table`; false when there was none. Deleting an upstream
    /// deletes its stored provider keys in the same transaction.
    pub async fn delete_spec(&self, table: SpecTable, name: &str) -> Result<bool, StoreError> {
        let name = storable(name);
        let delete = format!("DELETE FROM {} WHERE name = $1", table.table());
        let deleted = with_pool!(self, pool, DB => {
            let mut tx = pool.begin().await?;
            let n = sqlx::query(AssertSqlSafe(delete))
                .bind(&name)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if n > 0 {
                if table == SpecTable::Upstreams {
                    sqlx::query("DELETE FROM upstream_credentials WHERE upstream = $1")
                        .bind(&name)
                        .execute(&mut *tx)
                        .await?;
                }
                sqlx::query(BUMP).execute(&mut *tx).await?;
                tx.commit().await?;
            } else {
                tx.rollback().await?;
            }
            n > 0
        });
        Ok(deleted)
    }

    /// Every stored provider key (sealed), by upstream then name.
    pub async fn list_credentials(&self) -> Result<Vec<StoredCredential>, StoreError> {
        type Row = (String, String, String, String, i64, Option<String>);
        let rows: Vec<Row> = with_pool!(self, pool, DB => {
            sqlx::query_as(
                "SELECT upstream, name, sealed_key, key_hint, weight, quota FROM upstream_credentials \
                 ORDER BY upstream, name",
            )
            .fetch_all(pool)
            .await?
        });
        rows.into_iter()
            .map(|(upstream, name, sealed_key, key_hint, weight, quota)| {
                let weight = u32::try_from(i64_to_u64("weight", weight)?)
                    .map_err(|_| StoreError::Corrupt(format!("weight {weight} out of range")))?;
                Ok(StoredCredential {
                    upstream,
                    name,
                    sealed_key,
                    key_hint,
                    weight,
                    quota,
                })
            })
            .collect()
    }

    /// Insert or replace a provider key. Returns true when it was new.
    pub async fn upsert_credential(&self, c: &StoredCredential) -> Result<bool, StoreError> {
        let (upstream, name) = (storable(&c.upstream), storable(&c.name));
        let weight = u64_to_i64("weight", u64::from(c.weight))?;
        let now = now_ms();
        let created = with_pool!(self, pool, DB => {
            let mut tx = pool.begin().await?;
            sqlx::query(BUMP).execute(&mut *tx).await?;
            let n = sqlx::query(
                "UPDATE upstream_credentials SET sealed_key = $3, key_hint = $4, weight = $5, \
                 updated_at = $6, quota = $7 WHERE upstream = $1 AND name = $2",
            )
            .bind(&upstream).bind(&name).bind(&c.sealed_key).bind(storable(&c.key_hint))
            .bind(weight).bind(now).bind(c.quota.as_deref())
            .execute(&mut *tx).await?
            .rows_affected();
            if n == 0 {
                sqlx::query(
                    "INSERT INTO upstream_credentials \
                     (upstream, name, sealed_key, key_hint, weight, updated_at, quota) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(&upstream).bind(&name).bind(&c.sealed_key).bind(storable(&c.key_hint))
                .bind(weight).bind(now).bind(c.quota.as_deref())
                .execute(&mut *tx).await?;
            }
            tx.commit().await?;
            n == 0
        });
        Ok(created)
    }

    /// Delete a provider key; false when there was none.
    pub async fn delete_credential(&self, upstream: &str, name: &str) -> Result<bool, StoreError> {
        let (upstream, name) = (storable(upstream), storable(name));
        let deleted = with_pool!(self, pool, DB => {
            let mut tx = pool.begin().await?;
            let n = sqlx::query("DELETE FROM upstream_credentials WHERE upstream = $1 AND name = $2")
                .bind(&upstream).bind(&name)
                .execute(&mut *tx).await?
                .rows_affected();
            if n > 0 {
                sqlx::query(BUMP).execute(&mut *tx).await?;
                tx.commit().await?;
            } else {
                tx.rollback().await?;
            }
            n > 0
        });
        Ok(deleted)
    }

    /// Replace the sealed form of many provider keys in one transaction (master key
    /// rotation): all or nothing. `resealed` holds (upstream, name, new sealed key);
    /// fails with `Conflict` if a key was deleted meanwhile.
    pub async fn reseal_credentials(
        &self,
        resealed: &[(String, String, String)],
    ) -> Result<(), StoreError> {
        let now = now_ms();
        with_pool!(self, pool, DB => {
            let mut tx = pool.begin().await?;
            for (upstream, name, sealed) in resealed {
                let n = sqlx::query(
                    "UPDATE upstream_credentials SET sealed_key = $3, updated_at = $4 \
                     WHERE upstream = $1 AND name = $2",
                )
                .bind(upstream).bind(name).bind(sealed).bind(now)
                .execute(&mut *tx).await?
                .rows_affected();
                if n == 0 {
                    tx.rollback().await?;
                    return Err(StoreError::Conflict(format!(
                        "credential {upstream}/{name} disappeared during the rotation"
                    )));
                }
            }
            sqlx::query(BUMP).execute(&mut *tx).await?;
            tx.commit().await?;
        });
        Ok(())
    }

    /// Changes whenever an upstream, provider key, route or rule is stored or deleted.
    pub async fn live_version(&self) -> Result<i64, StoreError> {
        let v: i64 = with_pool!(self, pool, DB => {
            sqlx::query_scalar("SELECT version FROM live_changes WHERE id = 1").fetch_one(pool).await?
        });
        Ok(v)
    }
}
