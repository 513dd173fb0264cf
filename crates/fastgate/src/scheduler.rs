//! Scheduled background tasks, each run once across a fleet: an instance runs
//! a due task only after taking its lease in the database (`task_leases`), and
//! records the outcome there (`GET /admin/api/tasks`).
//!
//! * `credential-recovery` (every 2 s): timed states whose end passed are
//!   stored as active again (the request path already treats them so).
//! * `quota-reset` (at each quota day's end, `health.quota_reset_hour` in
//!   `timezone`): the stored day counters restart.
//! * `credential-probes` (every 2 s; each credential at its `probe.interval`):
//!   rule-disabled credentials of upstreams with a `probe` get a cheap request;
//!   healthy ones return early, failing ones stay out.
//! * `retention` (hourly): audit rows and rule events older than
//!   `audit.retention_days`; quota usage of periods untouched for 400 days.

mod probes;

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use chrono::Utc;
use fastgate_proxy::AppState;
use fastgate_upstream::CredentialState;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

type TaskFuture<'a> = Pin<Box<dyn Future<Output = Result<String, String>> + Send + 'a>>;

struct Task {
    name: &'static str,
    /// When the task is next due, from now (ms since the epoch).
    next_run: fn(&AppState, i64) -> i64,
    run: for<'a> fn(&'a AppState, &'a mut probes::ProbeState) -> TaskFuture<'a>,
}

/// How long a lease holds: a holder that died frees the task after this.
const LEASE_MS: i64 = 120_000;
/// Longest a run may take.
const RUN_LIMIT: Duration = Duration::from_secs(60);

fn tasks() -> [Task; 4] {
    [
        Task {
            name: "credential-recovery",
            next_run: |_, now| now + 2_000,
            run: |s, _| Box::pin(recover(s)),
        },
        Task {
            name: "quota-reset",
            next_run: |s, _| s.health().quota_day().ends_ms,
            run: |s, _| Box::pin(reset_quotas(s)),
        },
        Task {
            name: "credential-probes",
            // Each upstream's `probe.interval` paces its own credentials.
            next_run: |_, now| now + 2_000,
            run: |s, p| Box::pin(probes::run(s, p)),
        },
        Task {
            name: "retention",
            next_run: |_, now| now + 3_600_000,
            run: |s, _| Box::pin(retention(s)),
        },
    ]
}

/// Run the scheduled tasks until `cancel` fires; `instance` names this
/// process in the leases.
pub fn spawn(state: AppState, instance: String, cancel: CancellationToken) -> JoinHandle<()> {
    tokio::spawn(async move {
        let tasks = tasks();
        let now = Utc::now().timestamp_millis();
        // Quota reset is due at the day's end; the others run soon after start.
        let mut due: Vec<i64> = tasks
            .iter()
            .map(|t| {
                if t.name == "quota-reset" {
                    (t.next_run)(&state, now)
                } else {
                    now + 1_000
                }
            })
            .collect();
        let mut probe_state = probes::ProbeState::default();
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        loop {
            tokio::select! {
                () = cancel.cancelled() => break,
                _ = tick.tick() => {}
            }
            for (task, next) in tasks.iter().zip(due.iter_mut()) {
                let now = Utc::now().timestamp_millis();
                if now < *next || cancel.is_cancelled() {
                    continue;
                }
                *next = (task.next_run)(&state, now);
                run_once(&state, &instance, task, *next, &mut probe_state, &cancel).await;
            }
        }
    })
}

async fn run_once(
    state: &AppState,
    instance: &str,
    task: &Task,
    next: i64,
    probe_state: &mut probes::ProbeState,
    cancel: &CancellationToken,
) {
    let store = state.store();
    let now = Utc::now().timestamp_millis();
    match store
        .try_acquire_task(task.name, instance, now, LEASE_MS)
        .await
    {
        Ok(true) => {}
        Ok(false) => return,
        Err(e) => {
            tracing::debug!(task = task.name, error = %e, "task lease not taken");
            return;
        }
    }
    let result = tokio::select! {
        r = tokio::time::timeout(RUN_LIMIT, (task.run)(state, probe_state)) => match r {
            Ok(r) => r,
            Err(_) => Err(format!("did not finish within {RUN_LIMIT:?}")),
        },
        () = cancel.cancelled() => Err("stopped at shutdown".into()),
    };
    let (ok, text) = match result {
        Ok(text) => (true, text),
        Err(text) => {
            tracing::warn!(task = task.name, error = %text, "scheduled task failed");
            (false, text)
        }
    };
    let finished = Utc::now().timestamp_millis();
    if let Err(e) = store
        .finish_task(task.name, instance, finished, ok, &text, Some(next))
        .await
    {
        tracing::warn!(task = task.name, error = %e, "task outcome not recorded");
    }
}

async fn recover(state: &AppState) -> Result<String, String> {
    let reg = state.health();
    let expired = reg.expired();
    for h in &expired {
        let reason = format!("returned: the {} period ended", h.stored_state().as_str());
        reg.set_state(h, CredentialState::Active, &reason, None, "scheduler");
    }
    Ok(format!(
        "{} credential(s) returned to rotation",
        expired.len()
    ))
}

async fn reset_quotas(state: &AppState) -> Result<String, String> {
    let day = state.health().quota_day();
    let n = state
        .store()
        .reset_credential_day_usage(&day.label)
        .await
        .map_err(|e| e.to_string())?;
    Ok(format!(
        "{n} credential day counter(s) reset for {}",
        day.label
    ))
}

async fn retention(state: &AppState) -> Result<String, String> {
    // Quota usage of past daily and monthly periods: kept 400 days (a year of
    // history for the usage API), whatever the audit retention.
    let usage_before = Utc::now() - chrono::Duration::days(USAGE_HISTORY_DAYS);
    let usage = state
        .store()
        .prune_key_period_usage(usage_before.timestamp_millis())
        .await
        .map_err(|e| e.to_string())?;
    // Statistics rollups: minute rows 2 days, hour rows 90 days, day rows kept,
    // whatever the audit retention.
    let rollups = state
        .store()
        .prune_rollups(Utc::now())
        .await
        .map_err(|e| e.to_string())?;
    let days = state.inner().config.load().audit.retention_days;
    if days == 0 {
        return Ok(format!(
            "audit retention off (audit.retention_days: 0); deleted {usage} old quota usage \
             row(s) and {rollups} statistics rollup row(s)"
        ));
    }
    let before = Utc::now() - chrono::Duration::days(i64::from(days));
    let audit = state
        .store()
        .delete_audit_before(before, 5_000)
        .await
        .map_err(|e| e.to_string())?;
    let events = state
        .store()
        .delete_rule_events_before(before.timestamp_millis(), 5_000)
        .await
        .map_err(|e| e.to_string())?;
    Ok(format!(
        "deleted {audit} audit row(s), {events} rule event(s), {usage} old quota usage row(s) \
         and {rollups} statistics rollup row(s)"
    ))
}

/// How long stored quota usage of past periods is kept.
const USAGE_HISTORY_DAYS: i64 = 400;
