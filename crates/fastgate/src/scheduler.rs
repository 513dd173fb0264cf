//! Scheduled jobs: audit retention (delete rows older than `retention_days`).

use std::time::Duration;

use chrono::Utc;
use fastgate_proxy::AppState;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub fn spawn_retention(
    state: AppState,
    retention_days: u32,
    cancel: CancellationToken,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        if retention_days == 0 {
            return;
        }
        let mut tick = tokio::time::interval(Duration::from_secs(3600));
        loop {
            tokio::select! {
                () = cancel.cancelled() => break,
                _ = tick.tick() => {}
            }
            let before = Utc::now() - chrono::Duration::days(i64::from(retention_days));
            match state.store().delete_audit_before(before, 5_000).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(deleted = n, "audit retention"),
                Err(e) => tracing::warn!(error = %e, "audit retention failed"),
            }
        }
    })
}
