//! Background work that keeps the in-memory state in step with the database:
//! the key watcher (a key created or revoked anywhere is seen within a second)
//! and the key-usage flusher (usage counts aggregated in memory, written in
//! batches). Both stop on the cancellation token, the flusher after a last flush.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use fastgate_auth::KeyIndex;
use fastgate_store::KeyUsage;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::state::AppState;

/// Load every key from the store and swap in a new index. On a storage error
/// the current index keeps serving.
pub async fn reload_keys(state: &AppState) -> bool {
    match state.store().list_keys().await {
        Ok(keys) => {
            let (index, skipped) = KeyIndex::build(keys);
            if !skipped.is_empty() {
                tracing::warn!(?skipped, "keys with an unreadable hash were skipped");
            }
            state.set_keys(index);
            true
        }
        Err(e) => {
            tracing::warn!(error = %e, "could not reload keys; keeping the current set");
            false
        }
    }
}

/// Poll the store's key version every `every`; reload when it changes.
pub fn spawn_key_watcher(
    state: AppState,
    every: Duration,
    cancel: CancellationToken,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut last = state.store().keys_version().await.ok();
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = cancel.cancelled() => break,
                _ = tick.tick() => {}
            }
            match state.store().keys_version().await {
                Ok(v) => {
                    state.set_db_healthy(true);
                    if last != Some(v) && reload_keys(&state).await {
                        last = Some(v);
                    }
                }
                Err(e) => {
                    state.set_db_healthy(false);
                    tracing::debug!(error = %e, "key version poll failed");
                }
            }
        }
    })
}

/// Aggregate key uses from `rx` and write them every `every`; flush on cancel.
pub fn spawn_usage_flusher(
    state: AppState,
    mut rx: mpsc::Receiver<Arc<str>>,
    every: Duration,
    cancel: CancellationToken,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut counts: HashMap<Arc<str>, u64> = HashMap::new();
        let mut tick = tokio::time::interval(every);
        loop {
            tokio::select! {
                () = cancel.cancelled() => break,
                id = rx.recv() => match id {
                    Some(id) => *counts.entry(id).or_default() += 1,
                    None => break,
                },
                _ = tick.tick() => flush(&state, &mut counts).await,
            }
        }
        while let Ok(id) = rx.try_recv() {
            *counts.entry(id).or_default() += 1;
        }
        flush(&state, &mut counts).await;
    })
}

async fn flush(state: &AppState, counts: &mut HashMap<Arc<str>, u64>) {
    if counts.is_empty() {
        return;
    }
    let now = Utc::now();
    let batch: Vec<KeyUsage> = counts
        .iter()
        .map(|(id, n)| KeyUsage {
            key_id: id.to_string(),
            count: *n,
            last_used_at: now,
        })
        .collect();
    match state.store().record_key_usage(&batch).await {
        Ok(()) => counts.clear(),
        Err(e) => tracing::warn!(error = %e, "could not record key usage; will retry"),
    }
}
