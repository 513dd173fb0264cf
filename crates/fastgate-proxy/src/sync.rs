//! Background work that keeps the in-memory state in step with the database:
//! the key watcher (a key created or revoked anywhere is seen within a second)
//! and the key-usage flusher (usage counts aggregated in memory, written in
//! batches). Both stop on the cancellation token, the flusher after a last flush.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use fastgate_auth::{ApiKeyRecord, KeyIndex};
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

/// Load the API-managed model groups from the store and swap in a snapshot
/// with them. Unreadable or invalid groups keep the current set serving.
pub async fn reload_models(state: &AppState) -> Result<(), String> {
    let stored = state
        .store()
        .list_model_groups()
        .await
        .map_err(|e| e.to_string())?;
    let mut models = Vec::with_capacity(stored.len());
    for group in stored {
        match serde_json::from_str(&group.spec) {
            Ok(m) => models.push(m),
            Err(e) => {
                tracing::warn!(model = %group.name, error = %e, "stored model group is unreadable; skipped")
            }
        }
    }
    state.set_api_models(models)
}

/// Poll the store's key and model-group versions every `every`; reload what changed.
pub fn spawn_key_watcher(
    state: AppState,
    every: Duration,
    cancel: CancellationToken,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut last = state.store().keys_version().await.ok();
        let mut last_models = None;
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = cancel.cancelled() => break,
                _ = tick.tick() => {}
            }
            match state.store().model_groups_version().await {
                Ok(v) if last_models != Some(v) => match reload_models(&state).await {
                    Ok(()) => last_models = Some(v),
                    Err(e) => tracing::warn!(error = %e, "could not apply stored model groups"),
                },
                Ok(_) => {}
                Err(e) => tracing::debug!(error = %e, "model version poll failed"),
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
    mut rx: mpsc::Receiver<Arc<ApiKeyRecord>>,
    every: Duration,
    cancel: CancellationToken,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut counts: HashMap<String, u64> = HashMap::new();
        let mut tick = tokio::time::interval(every);
        loop {
            tokio::select! {
                () = cancel.cancelled() => break,
                key = rx.recv() => match key {
                    Some(key) => count(&mut counts, &key.id),
                    None => break,
                },
                _ = tick.tick() => flush(&state, &mut counts).await,
            }
        }
        while let Ok(key) = rx.try_recv() {
            count(&mut counts, &key.id);
        }
        flush(&state, &mut counts).await;
    })
}

fn count(counts: &mut HashMap<String, u64>, id: &str) {
    match counts.get_mut(id) {
        Some(n) => *n += 1,
        None => {
            counts.insert(id.to_string(), 1);
        }
    }
}

async fn flush(state: &AppState, counts: &mut HashMap<String, u64>) {
    if counts.is_empty() {
        return;
    }
    let now = Utc::now();
    let batch: Vec<KeyUsage> = counts
        .iter()
        .map(|(id, n)| KeyUsage {
            key_id: id.clone(),
            count: *n,
            last_used_at: now,
        })
        .collect();
    match state.store().record_key_usage(&batch).await {
        Ok(()) => counts.clear(),
        Err(e) => tracing::warn!(error = %e, "could not record key usage; will retry"),
    }
}
