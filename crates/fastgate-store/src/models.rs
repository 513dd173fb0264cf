//! Model groups managed through the admin API (`model_groups`) and their change
//! counter (`model_changes`). The group itself is opaque JSON here: its shape and
//! validation belong to the configuration crate.

use chrono::Utc;

use crate::convert::storable;
use crate::{Store, StoreError};

const BUMP: &str = "UPDATE model_changes SET version = version + 1 WHERE id = 1";

/// A stored model group: its name and its JSON spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredModelGroup {
    pub name: String,
    pub spec: String,
}

impl Store {
    /// Every stored model group, by name.
    pub async fn list_model_groups(&self) -> Result<Vec<StoredModelGroup>, StoreError> {
        let rows: Vec<(String, String)> = with_pool!(self, pool, DB => {
            sqlx::query_as("SELECT name, spec FROM model_groups ORDER BY name").fetch_all(pool).await?
        });
        Ok(rows
            .into_iter()
            .map(|(name, spec)| StoredModelGroup { name, spec })
            .collect())
    }

    /// Insert or replace a model group. Returns true when it was new. Text is stored as
    /// both backends can keep it (NUL becomes U+FFFD).
    pub async fn upsert_model_group(&self, name: &str, spec: &str) -> Result<bool, StoreError> {
        let (name, spec) = (storable(name), storable(spec));
        let (name, spec) = (name.as_str(), spec.as_str());
        let now = Utc::now().timestamp_millis();
        let created = with_pool!(self, pool, DB => {
            let mut tx = pool.begin().await?;
            // Write first (see `upsert_spec`): no read-then-write upgrade on SQLite.
            sqlx::query(BUMP).execute(&mut *tx).await?;
            let n = sqlx::query("UPDATE model_groups SET spec = $1, updated_at = $2 WHERE name = $3")
                .bind(spec).bind(now).bind(name)
                .execute(&mut *tx).await?
                .rows_affected();
            if n == 0 {
                sqlx::query("INSERT INTO model_groups (name, spec, updated_at) VALUES ($3, $1, $2)")
                    .bind(spec).bind(now).bind(name)
                    .execute(&mut *tx).await?;
            }
            tx.commit().await?;
            n == 0
        });
        Ok(created)
    }

    /// Delete a model group; false when there was none.
    pub async fn delete_model_group(&self, name: &str) -> Result<bool, StoreError> {
        let name = storable(name);
        let name = name.as_str();
        let deleted = with_pool!(self, pool, DB => {
            let mut tx = pool.begin().await?;
            let n = sqlx::query("DELETE FROM model_groups WHERE name = $1")
                .bind(name)
                .execute(&mut *tx)
                .await?
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

    /// Changes whenever a model group is created, replaced or deleted.
    pub async fn model_groups_version(&self) -> Result<i64, StoreError> {
        let v: i64 = with_pool!(self, pool, DB => {
            sqlx::query_scalar("SELECT version FROM model_changes WHERE id = 1").fetch_one(pool).await?
        });
        Ok(v)
    }
}
