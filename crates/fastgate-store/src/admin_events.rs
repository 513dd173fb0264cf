//! The admin audit trail (`admin_events`): every change made through the admin
//! API, with the object before and after (already redacted by the caller).

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::QueryBuilder;

use crate::convert::{from_ms, storable, to_ms};
use crate::{Store, StoreError};

/// One change made through the admin API.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct AdminEvent {
    /// UUIDv7: sorts by time.
    pub id: String,
    pub at: DateTime<Utc>,
    /// Who made the change (e.g. `admin-token@127.0.0.1`, `cli`).
    pub actor: String,
    /// `create`, `update`, `delete`, `toggle`, `revoke`, `rotate`, `reload`, …
    pub action: String,
    /// `upstream`, `credential`, `route`, `model`, `key`, `config`, …
    pub object_kind: String,
    pub object_name: String,
    /// The object before the change (None for a create), secrets redacted.
    pub before: Option<serde_json::Value>,
    /// The object after the change (None for a delete), secrets redacted.
    pub after: Option<serde_json::Value>,
}

impl AdminEvent {
    /// A new event stamped now with a fresh id.
    pub fn now(actor: &str, action: &str, object_kind: &str, object_name: &str) -> Self {
        Self {
            id: uuid::Uuid::now_v7().to_string(),
            at: Utc::now(),
            actor: actor.to_owned(),
            action: action.to_owned(),
            object_kind: object_kind.to_owned(),
            object_name: object_name.to_owned(),
            before: None,
            after: None,
        }
    }
}

/// Which events to list: every set field must match. Newest first.
#[derive(Debug, Clone, Default)]
pub struct AdminEventFilter {
    pub object_kind: Option<String>,
    pub object_name: Option<String>,
    pub action: Option<String>,
    pub actor: Option<String>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    /// Paging cursor: only events older than this id.
    pub before_id: Option<String>,
    pub limit: u32,
}

type Row = (
    String,
    i64,
    String,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
);

fn json_of(
    field: &'static str,
    text: Option<String>,
) -> Result<Option<serde_json::Value>, StoreError> {
    text.map(|t| serde_json::from_str(&t).map_err(|e| StoreError::Corrupt(format!("{field}: {e}"))))
        .transpose()
}

impl Store {
    pub async fn insert_admin_event(&self, e: &AdminEvent) -> Result<(), StoreError> {
        let before = e.before.as_ref().map(|v| storable(&v.to_string()));
        let after = e.after.as_ref().map(|v| storable(&v.to_string()));
        with_pool!(self, pool, DB => {
            sqlx::query(
                "INSERT INTO admin_events (id, at, actor, action, object_kind, object_name, \
                 before_json, after_json) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(&e.id).bind(to_ms(e.at)).bind(storable(&e.actor)).bind(storable(&e.action))
            .bind(storable(&e.object_kind)).bind(storable(&e.object_name))
            .bind(before).bind(after)
            .execute(pool).await?;
        });
        Ok(())
    }

    pub async fn list_admin_events(
        &self,
        f: &AdminEventFilter,
    ) -> Result<Vec<AdminEvent>, StoreError> {
        let limit = i64::from(f.limit.clamp(1, 1000));
        let rows: Vec<Row> = with_pool!(self, pool, DB => {
            let mut q = QueryBuilder::<DB>::new(
                "SELECT id, at, actor, action, object_kind, object_name, before_json, after_json \
                 FROM admin_events WHERE 1 = 1",
            );
            let text_filters = [
                (" AND object_kind = ", &f.object_kind),
                (" AND object_name = ", &f.object_name),
                (" AND action = ", &f.action),
                (" AND actor = ", &f.actor),
                (" AND id < ", &f.before_id),
            ];
            for (clause, value) in text_filters {
                if let Some(v) = value {
                    q.push(clause).push_bind(storable(v));
                }
            }
            if let Some(t) = f.since {
                q.push(" AND at >= ").push_bind(to_ms(t));
            }
            if let Some(t) = f.until {
                q.push(" AND at < ").push_bind(to_ms(t));
            }
            q.push(" ORDER BY id DESC LIMIT ").push_bind(limit);
            q.build_query_as().fetch_all(pool).await?
        });
        rows.into_iter()
            .map(
                |(id, at, actor, action, object_kind, object_name, before, after)| {
                    Ok(AdminEvent {
                        id,
                        at: from_ms("at", at)?,
                        actor,
                        action,
                        object_kind,
                        object_name,
                        before: json_of("before_json", before)?,
                        after: json_of("after_json", after)?,
                    })
                },
            )
            .collect()
    }
}
