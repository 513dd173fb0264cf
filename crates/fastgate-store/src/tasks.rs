//! Fleet-wide task leases (`task_leases`): a named background task (quota reset,
//! retention, probes) is run by one instance at a time. The lease is taken and
//! checked in one statement, so the database decides who wins a race.

use serde::Serialize;

use crate::convert::storable;
use crate::{Store, StoreError};

/// A named task's lease and last run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TaskRow {
    pub name: String,
    /// The instance that took the lease last (it still holds it while
    /// `lease_until_ms` is in the future).
    pub holder: Option<String>,
    /// Until when the holder may run the task; 0 once released.
    pub lease_until_ms: i64,
    pub last_started_ms: Option<i64>,
    pub last_finished_ms: Option<i64>,
    pub last_ok: Option<bool>,
    pub last_result: Option<String>,
    /// When the task is due next, as its last holder said; no instance takes a
    /// released lease before then.
    pub next_run_ms: Option<i64>,
}

/// Takes the lease when there is no row yet; or when it is still ours (a renewal);
/// or when it is free (expired or released) and the task is due. On PostgreSQL a
/// racing insert waits for the winner and then evaluates the `WHERE` on its row;
/// on SQLite writers are serialised. Either way exactly one caller gets a row.
const ACQUIRE: &str = "INSERT INTO task_leases (name, holder, lease_until_ms, last_started_ms) \
     VALUES ($1, $2, $3, $4) \
     ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, \
     lease_until_ms = excluded.lease_until_ms, last_started_ms = excluded.last_started_ms \
     WHERE (task_leases.lease_until_ms > $4 AND task_leases.holder = $2) \
     OR (task_leases.lease_until_ms <= $4 \
         AND (task_leases.next_run_ms IS NULL OR task_leases.next_run_ms <= $4))";

const FINISH: &str = "UPDATE task_leases SET lease_until_ms = 0, last_finished_ms = $3, \
     last_ok = $4, last_result = $5, next_run_ms = $6 WHERE name = $1 AND holder = $2";

type TaskTuple = (
    String,
    Option<String>,
    i64,
    Option<i64>,
    Option<i64>,
    Option<bool>,
    Option<String>,
    Option<i64>,
);

impl Store {
    /// Takes the lease of task `name` for `holder` until `now_ms + lease_ms` and
    /// records `last_started_ms = now_ms`. True when taken: the task had no lease
    /// yet; or `holder` holds it (renewed); or the lease expired or was released
    /// and the task is due (`next_run_ms` unset or not after `now_ms`). Of callers
    /// racing for a free lease exactly one gets true. `lease_ms` must be positive.
    pub async fn try_acquire_task(
        &self,
        name: &str,
        holder: &str,
        now_ms: i64,
        lease_ms: i64,
    ) -> Result<bool, StoreError> {
        let until = now_ms
            .checked_add(lease_ms)
            .filter(|_| lease_ms > 0)
            .ok_or_else(|| StoreError::out_of_range("lease_ms", lease_ms))?;
        let (name, holder) = (storable(name), storable(holder));
        let n = with_pool!(self, pool, DB => {
            sqlx::query(ACQUIRE)
                .bind(&name).bind(&holder).bind(until).bind(now_ms)
                .execute(pool).await?
                .rows_affected()
        });
        Ok(n > 0)
    }

    /// Releases the lease of task `name` (`lease_until_ms = 0`) and records the
    /// run's outcome and when the task is due next. Only the holder can: fails with
    /// [`StoreError::Conflict`] when `holder` does not hold the task (it never did,
    /// or another instance took over an expired lease), recording nothing.
    pub async fn finish_task(
        &self,
        name: &str,
        holder: &str,
        now_ms: i64,
        ok: bool,
        result: &str,
        next_run_ms: Option<i64>,
    ) -> Result<(), StoreError> {
        let (name, holder) = (storable(name), storable(holder));
        let n = with_pool!(self, pool, DB => {
            sqlx::query(FINISH)
                .bind(&name).bind(&holder).bind(now_ms).bind(ok)
                .bind(storable(result)).bind(next_run_ms)
                .execute(pool).await?
                .rows_affected()
        });
        if n == 0 {
            return Err(StoreError::Conflict(format!(
                "task {name} is not held by {holder}"
            )));
        }
        Ok(())
    }

    /// Every task that was ever leased, by name.
    pub async fn list_tasks(&self) -> Result<Vec<TaskRow>, StoreError> {
        let rows: Vec<TaskTuple> = with_pool!(self, pool, DB => {
            sqlx::query_as(
                "SELECT name, holder, lease_until_ms, last_started_ms, last_finished_ms, \
                 last_ok, last_result, next_run_ms FROM task_leases ORDER BY name",
            )
            .fetch_all(pool)
            .await?
        });
        Ok(rows
            .into_iter()
            .map(
                |(name, holder, lease_until_ms, started, finished, ok, result, next)| TaskRow {
                    name,
                    holder,
                    lease_until_ms,
                    last_started_ms: started,
                    last_finished_ms: finished,
                    last_ok: ok,
                    last_result: result,
                    next_run_ms: next,
                },
            )
            .collect())
    }
}
