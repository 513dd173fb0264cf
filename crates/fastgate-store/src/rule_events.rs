//! Rule firings (`rule_events`): every time a health rule fired, on which
//! credential, what it did and the credential's state before and after.

use serde::Serialize;
use sqlx::QueryBuilder;

use crate::convert::{i32_to_u16, storable};
use crate::{Store, StoreError};

/// How many events a listing returns when the filter sets no limit.
pub const RULE_EVENTS_DEFAULT_LIMIT: u32 = 100;
/// The most events one listing returns.
pub const RULE_EVENTS_MAX_LIMIT: u32 = 1000;

/// A rule firing to record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NewRuleEvent {
    pub at_ms: i64,
    pub rule: String,
    pub upstream: String,
    pub credential: String,
    /// The upstream's status code, when the rule looked at a response.
    pub status: Option<u16>,
    /// The part of the response that matched (already cut short and free of secrets).
    pub excerpt: String,
    /// What the rule did, e.g. `disable 10m, alert ops-feishu`.
    pub action: String,
    pub state_before: String,
    pub state_after: String,
    /// The instance that saw the firing.
    pub instance: String,
}

/// A recorded rule firing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleEventRow {
    /// Grows with every insert: the order of recording and the paging cursor.
    pub id: i64,
    pub at_ms: i64,
    pub rule: String,
    pub upstream: String,
    pub credential: String,
    pub status: Option<u16>,
    pub excerpt: String,
    pub action: String,
    pub state_before: String,
    pub state_after: String,
    pub instance: String,
}

/// Which events to list: every set field must match. Newest (highest id) first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuleEventFilter {
    pub upstream: Option<String>,
    pub credential: Option<String>,
    pub rule: Option<String>,
    /// Only events at or after this time (unix ms).
    pub from_ms: Option<i64>,
    /// Only events before this time (unix ms).
    pub to_ms: Option<i64>,
    /// Paging cursor: only events with a smaller id.
    pub before_id: Option<i64>,
    /// At most this many (default [`RULE_EVENTS_DEFAULT_LIMIT`], at most
    /// [`RULE_EVENTS_MAX_LIMIT`], at least 1).
    pub limit: Option<u32>,
}

const INSERT: &str = "INSERT INTO rule_events (at_ms, rule, upstream, credential, status, \
     excerpt, action, state_before, state_after, instance) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)";

const DELETE_BATCH: &str = "DELETE FROM rule_events WHERE id IN \
     (SELECT id FROM rule_events WHERE at_ms < $1 LIMIT $2)";

#[derive(sqlx::FromRow)]
struct Record {
    id: i64,
    at_ms: i64,
    rule: String,
    upstream: String,
    credential: String,
    status: Option<i32>,
    excerpt: String,
    action: String,
    state_before: String,
    state_after: String,
    instance: String,
}

impl Record {
    fn into_row(self) -> Result<RuleEventRow, StoreError> {
        Ok(RuleEventRow {
            id: self.id,
            at_ms: self.at_ms,
            rule: self.rule,
            upstream: self.upstream,
            credential: self.credential,
            status: self.status.map(|s| i32_to_u16("status", s)).transpose()?,
            excerpt: self.excerpt,
            action: self.action,
            state_before: self.state_before,
            state_after: self.state_after,
            instance: self.instance,
        })
    }
}

impl Store {
    /// Records rule firings in one transaction (all or none).
    pub async fn insert_rule_events(&self, rows: &[NewRuleEvent]) -> Result<(), StoreError> {
        if rows.is_empty() {
            return Ok(());
        }
        with_pool!(self, pool, DB => {
            let mut tx = pool.begin().await?;
            for e in rows {
                sqlx::query(INSERT)
                    .bind(e.at_ms).bind(storable(&e.rule))
                    .bind(storable(&e.upstream)).bind(storable(&e.credential))
                    .bind(e.status.map(i32::from)).bind(storable(&e.excerpt))
                    .bind(storable(&e.action)).bind(storable(&e.state_before))
                    .bind(storable(&e.state_after)).bind(storable(&e.instance))
                    .execute(&mut *tx).await?;
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// Rule firings matching `f`, newest first.
    pub async fn list_rule_events(
        &self,
        f: &RuleEventFilter,
    ) -> Result<Vec<RuleEventRow>, StoreError> {
        let limit = i64::from(
            f.limit
                .unwrap_or(RULE_EVENTS_DEFAULT_LIMIT)
                .clamp(1, RULE_EVENTS_MAX_LIMIT),
        );
        let rows: Vec<Record> = with_pool!(self, pool, DB => {
            let mut q = QueryBuilder::<DB>::new(
                "SELECT id, at_ms, rule, upstream, credential, status, excerpt, action, \
                 state_before, state_after, instance FROM rule_events WHERE 1 = 1",
            );
            let text_filters = [
                (" AND upstream = ", &f.upstream),
                (" AND credential = ", &f.credential),
                (" AND rule = ", &f.rule),
            ];
            for (clause, value) in text_filters {
                if let Some(v) = value {
                    q.push(clause).push_bind(storable(v));
                }
            }
            let number_filters = [
                (" AND at_ms >= ", f.from_ms),
                (" AND at_ms < ", f.to_ms),
                (" AND id < ", f.before_id),
            ];
            for (clause, value) in number_filters {
                if let Some(v) = value {
                    q.push(clause).push_bind(v);
                }
            }
            q.push(" ORDER BY id DESC LIMIT ").push_bind(limit);
            q.build_query_as().fetch_all(pool).await?
        });
        rows.into_iter().map(Record::into_row).collect()
    }

    /// Retention: deletes events with `at_ms` before the given time, `batch` rows per
    /// statement (each its own transaction, so writers get in between), until none
    /// is left. Returns the number deleted.
    pub async fn delete_rule_events_before(
        &self,
        at_ms: i64,
        batch: u32,
    ) -> Result<u64, StoreError> {
        let batch = i64::from(batch.max(1));
        let mut total = 0u64;
        loop {
            let n = with_pool!(self, pool, DB => {
                sqlx::query(DELETE_BATCH)
                    .bind(at_ms).bind(batch)
                    .execute(pool).await?
                    .rows_affected()
            });
            if n == 0 {
                return Ok(total);
            }
            total += n;
            tokio::task::yield_now().await;
        }
    }
}
