//! Usage per API key and quota period, shared by a fleet (`key_period_usage`): every
//! instance adds what it counted since its last flush, so each row holds the fleet's
//! total for one key in one period (`all`, `d2026-11-30`, `m2026-11`, …). The
//! period names are the caller's; the store only checks their spelling.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use sqlx::QueryBuilder;

use crate::convert::{i64_to_u64, now_ms, storable, u64_to_i64};
use crate::{Store, StoreError};

/// The usage of one key in one quota period: a delta to add, or a stored total.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct KeyPeriodUsage {
    pub key_id: String,
    /// 1 to 32 characters of `A-Z`, `a-z`, `0-9` and `-`, e.g. `all`, `d2026-11-30`.
    pub period: String,
    pub requests: u64,
    pub tokens: u64,
    /// Cost in nano-USD (integer, so sums are exact).
    pub cost_nanos: u64,
}

/// The one period [`Store::prune_key_period_usage`] never deletes.
const ALL_PERIOD: &str = "all";
const MAX_PERIOD_LEN: usize = 32;

const COLUMNS: &str = "key_id, period, requests, tokens, cost_nanos";

/// After the multi-row `VALUES`: adds to a row that exists. `DO UPDATE` reads the
/// row as it was, so each column adds exactly the delta; a sum above `i64::MAX`
/// fails the statement on both backends (see migration 0007).
const ADD_TAIL: &str = " ON CONFLICT (key_id, period) DO UPDATE SET \
     requests = key_period_usage.requests + excluded.requests, \
     tokens = key_period_usage.tokens + excluded.tokens, \
     cost_nanos = key_period_usage.cost_nanos + excluded.cost_nanos, \
     updated_at = excluded.updated_at \
     RETURNING key_id, period, requests, tokens, cost_nanos";

/// Rows per multi-row `INSERT`. Fixed sizes keep the number of distinct statements
/// (and so the driver's prepared-statement cache) small; 6 binds a row stay far
/// below both backends' bind limits.
const CHUNK_SIZES: [usize; 4] = [128, 32, 8, 1];

/// Cut `n` rows into chunks of the sizes in `CHUNK_SIZES`, largest first.
fn chunk_plan(mut n: usize) -> Vec<usize> {
    let mut plan = Vec::new();
    for size in CHUNK_SIZES {
        while n >= size {
            plan.push(size);
            n -= size;
        }
    }
    plan
}

#[derive(sqlx::FromRow)]
struct Record {
    key_id: String,
    period: String,
    requests: i64,
    tokens: i64,
    cost_nanos: i64,
}

impl Record {
    fn into_usage(self) -> Result<KeyPeriodUsage, StoreError> {
        Ok(KeyPeriodUsage {
            key_id: self.key_id,
            period: self.period,
            requests: i64_to_u64("requests", self.requests)?,
            tokens: i64_to_u64("tokens", self.tokens)?,
            cost_nanos: i64_to_u64("cost_nanos", self.cost_nanos)?,
        })
    }
}

fn into_usages(records: Vec<Record>) -> Result<Vec<KeyPeriodUsage>, StoreError> {
    records.into_iter().map(Record::into_usage).collect()
}

/// One row's deltas, checked to fit a `BIGINT`.
#[derive(Default)]
struct Sums {
    requests: i64,
    tokens: i64,
    cost_nanos: i64,
}

impl Sums {
    fn add(&mut self, d: &KeyPeriodUsage) -> Result<(), StoreError> {
        self.requests = checked_sum("requests", self.requests, d.requests)?;
        self.tokens = checked_sum("tokens", self.tokens, d.tokens)?;
        self.cost_nanos = checked_sum("cost_nanos", self.cost_nanos, d.cost_nanos)?;
        Ok(())
    }
}

fn checked_sum(field: &'static str, sum: i64, delta: u64) -> Result<i64, StoreError> {
    let delta = u64_to_i64(field, delta)?;
    sum.checked_add(delta)
        .ok_or_else(|| StoreError::out_of_range(field, format!("{sum} + {delta}")))
}

/// One stored row's share of a batch, ready to bind.
struct BoundRow {
    key_id: String,
    period: String,
    sums: Sums,
}

/// The batch merged per (key, period), in that order: one statement row per stored
/// row (PostgreSQL refuses to update a row twice in one statement), and concurrent
/// batches lock their rows in the same order (no deadlock).
fn merge(deltas: &[KeyPeriodUsage]) -> Result<Vec<BoundRow>, StoreError> {
    let mut merged: BTreeMap<(String, String), Sums> = BTreeMap::new();
    for d in deltas {
        check_period(&d.period)?;
        merged
            .entry((storable(&d.key_id), d.period.clone()))
            .or_default()
            .add(d)?;
    }
    Ok(merged
        .into_iter()
        .map(|((key_id, period), sums)| BoundRow {
            key_id,
            period,
            sums,
        })
        .collect())
}

/// Periods are names the caller compares as text: one plain spelling only.
fn check_period(period: &str) -> Result<(), StoreError> {
    let ok = (1..=MAX_PERIOD_LEN).contains(&period.len())
        && period
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-');
    if ok {
        return Ok(());
    }
    // Quote at most a short prefix: the value ends up in logs and responses.
    let shown: String = period.chars().take(MAX_PERIOD_LEN + 1).collect();
    let more = if shown.len() < period.len() {
        "…"
    } else {
        ""
    };
    Err(StoreError::out_of_range(
        "period",
        format!("{shown:?}{more}"),
    ))
}

impl Store {
    /// Adds a batch of deltas in one transaction and returns the resulting totals of
    /// exactly the rows it touched, by key then period. Entries for the same key and
    /// period add up. A period not spelled as [`KeyPeriodUsage::period`] says, or a
    /// value (or sum) above `i64::MAX`, is refused ([`StoreError::is_invalid_input`])
    /// and nothing of the batch is written.
    pub async fn add_key_period_usage(
        &self,
        deltas: &[KeyPeriodUsage],
    ) -> Result<Vec<KeyPeriodUsage>, StoreError> {
        if deltas.is_empty() {
            return Ok(Vec::new());
        }
        let rows = merge(deltas)?;
        let now = now_ms();
        let records: Vec<Record> = with_pool!(self, pool, DB => {
            let mut tx = pool.begin().await?;
            let mut out = Vec::with_capacity(rows.len());
            let mut rest = rows.as_slice();
            for size in chunk_plan(rows.len()) {
                let (chunk, tail) = rest.split_at(size);
                rest = tail;
                let mut qb = QueryBuilder::<DB>::new(
                    "INSERT INTO key_period_usage \
                     (key_id, period, requests, tokens, cost_nanos, updated_at) ",
                );
                qb.push_values(chunk, |mut b, r| {
                    b.push_bind(r.key_id.clone()).push_bind(r.period.clone())
                        .push_bind(r.sums.requests).push_bind(r.sums.tokens)
                        .push_bind(r.sums.cost_nanos).push_bind(now);
                });
                qb.push(ADD_TAIL);
                out.extend(qb.build_query_as::<Record>().fetch_all(&mut *tx).await?);
            }
            tx.commit().await?;
            out
        });
        let mut totals = into_usages(records)?;
        // RETURNING promises no order.
        totals.sort_by(|a, b| (&a.key_id, &a.period).cmp(&(&b.key_id, &b.period)));
        Ok(totals)
    }

    /// The total of one key in one period, if anything was added.
    pub async fn key_period_usage(
        &self,
        key_id: &str,
        period: &str,
    ) -> Result<Option<KeyPeriodUsage>, StoreError> {
        check_period(period)?;
        let sql =
            format!("SELECT {COLUMNS} FROM key_period_usage WHERE key_id = $1 AND period = $2");
        let record: Option<Record> = with_pool!(self, pool, DB => {
            sqlx::query_as(sqlx::AssertSqlSafe(sql))
                .bind(storable(key_id)).bind(period)
                .fetch_optional(pool).await?
        });
        record.map(Record::into_usage).transpose()
    }

    /// Every row whose period is one of `periods` (the fleet's totals of the current
    /// periods), by key then period. Invalid period names are refused.
    pub async fn list_key_period_usage(
        &self,
        periods: &[String],
    ) -> Result<Vec<KeyPeriodUsage>, StoreError> {
        let mut wanted = BTreeSet::new();
        for p in periods {
            check_period(p)?;
            wanted.insert(p.as_str());
        }
        if wanted.is_empty() {
            return Ok(Vec::new());
        }
        let head = format!("SELECT {COLUMNS} FROM key_period_usage WHERE period IN (");
        let records: Vec<Record> = with_pool!(self, pool, DB => {
            let mut qb = QueryBuilder::<DB>::new(head.as_str());
            let mut list = qb.separated(", ");
            for p in &wanted {
                list.push_bind(p.to_string());
            }
            qb.push(") ORDER BY key_id, period");
            qb.build_query_as().fetch_all(pool).await?
        });
        into_usages(records)
    }

    /// Up to `limit` rows of one key, the most recently updated first (then by
    /// period, newest name first, for rows updated in the same millisecond).
    pub async fn key_usage_history(
        &self,
        key_id: &str,
        limit: u32,
    ) -> Result<Vec<KeyPeriodUsage>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM key_period_usage WHERE key_id = $1 \
             ORDER BY updated_at DESC, period DESC LIMIT $2"
        );
        let records: Vec<Record> = with_pool!(self, pool, DB => {
            sqlx::query_as(sqlx::AssertSqlSafe(sql))
                .bind(storable(key_id)).bind(i64::from(limit))
                .fetch_all(pool).await?
        });
        into_usages(records)
    }

    /// Deletes every row of a key (the key was deleted). Returns the number deleted.
    pub async fn delete_key_period_usage(&self, key_id: &str) -> Result<u64, StoreError> {
        let n = with_pool!(self, pool, DB => {
            sqlx::query("DELETE FROM key_period_usage WHERE key_id = $1")
                .bind(storable(key_id))
                .execute(pool).await?
                .rows_affected()
        });
        Ok(n)
    }

    /// Retention: deletes the rows not updated since `older_than_ms` (unix ms,
    /// exclusive), except the lifetime totals (period `all`). Returns the number
    /// deleted.
    pub async fn prune_key_period_usage(&self, older_than_ms: i64) -> Result<u64, StoreError> {
        let n = with_pool!(self, pool, DB => {
            sqlx::query("DELETE FROM key_period_usage WHERE updated_at < $1 AND period <> $2")
                .bind(older_than_ms).bind(ALL_PERIOD)
                .execute(pool).await?
                .rows_affected()
        });
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn period_spelling() {
        for good in ["all", "d2026-11-30", "m2026-11", "A-9", &"x".repeat(32)] {
            assert!(check_period(good).is_ok(), "{good:?}");
        }
        for bad in ["", "d2026_11_30", "all ", "é", "d2026/11", &"x".repeat(33)] {
            let err = check_period(bad).err();
            assert!(err.is_some_and(|e| e.is_invalid_input()), "{bad:?}");
        }
        let long = check_period(&"y".repeat(10_000))
            .err()
            .map(|e| e.to_string());
        assert!(long.is_some_and(|m| m.len() < 100 && m.ends_with('…')));
    }

    #[test]
    fn chunks_cover_every_row() {
        for n in [0, 1, 7, 8, 128, 129, 200, 1000] {
            let plan = chunk_plan(n);
            assert_eq!(plan.iter().sum::<usize>(), n);
            assert!(plan.windows(2).all(|w| w[0] >= w[1]));
        }
    }

    #[test]
    fn merging_adds_duplicates_and_checks_sums() {
        let d = |key: &str, requests: u64| KeyPeriodUsage {
            key_id: key.into(),
            period: "all".into(),
            requests,
            tokens: 1,
            cost_nanos: 2,
        };
        let merged = merge(&[d("b", 1), d("a", 2), d("b", 3)])
            .ok()
            .unwrap_or_default();
        let got: Vec<_> = merged
            .iter()
            .map(|r| {
                (
                    r.key_id.as_str(),
                    r.sums.requests,
                    r.sums.tokens,
                    r.sums.cost_nanos,
                )
            })
            .collect();
        assert_eq!(got, [("a", 2, 1, 2), ("b", 4, 2, 4)]);
        let half = u64::try_from(i64::MAX / 2 + 1).unwrap_or_default();
        assert!(merge(&[d("a", half), d("a", half)]).is_err());
        assert!(merge(&[d("a", u64::MAX)]).is_err());
    }
}
