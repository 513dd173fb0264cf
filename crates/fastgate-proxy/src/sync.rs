//! Background work that keeps the in-memory state in step with the database:
//! the change watcher (a key, upstream, provider key, route or model group
//! changed anywhere is applied within a second)
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
    let _in_order = state.inner().reloads.lock().await;
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

/// Load the API-managed objects (upstreams, provider keys, routes, model groups)
/// from the store and swap in a snapshot with them. A storage error or an
/// invalid combination keeps the current state serving.
pub async fn reload_live(state: &AppState) -> Result<(), String> {
    let _in_order = state.inner().reloads.lock().await;
    let master = state.inner().master_key.load_full();
    let mut live = fastgate_live::load(state.store(), master.as_deref())
        .await
        .map_err(|e| e.to_string())?;
    if live.other_master_key > 0 && refresh_master_key(state) {
        let master = state.inner().master_key.load_full();
        live = fastgate_live::load(state.store(), master.as_deref())
            .await
            .map_err(|e| e.to_string())?;
    }
    state.set_live(live)
}

/// After a rotation made elsewhere the key file holds a new master key. Re-read
/// it (when the key came from a file); true when a different key was swapped in.
/// Called when stored keys are sealed under another key, and before sealing a
/// new one (so a key added just after a rotation is sealed under the new key).
pub fn refresh_master_key(state: &AppState) -> bool {
    let Some(path) = &state.inner().master_key_file else {
        return false;
    };
    let current = state.inner().master_key.load_full();
    match fastgate_upstream::MasterKey::load(None, path) {
        Ok(Some((key, _))) if current.as_deref().map(|k| k.id()) != Some(key.id()) => {
            tracing::info!(
                key_id = key.id(),
                "master key file changed (rotation); using the new key"
            );
            state
                .inner()
                .master_key
                .store(Some(std::sync::Arc::new(key)));
            true
        }
        Ok(_) => false,
        Err(e) => {
            tracing::warn!(error = %e, "cannot re-read the master key file");
            false
        }
    }
}

/// Safety net under the PostgreSQL change feed: compare the counters this often
/// in case a notification was lost without the connection dropping.
const FEED_RESYNC: Duration = Duration::from_secs(30);

/// Keep keys and live objects in step with the database: PostgreSQL's change
/// feed (LISTEN/NOTIFY) where available, else (SQLite) one counter query every
/// `poll`. Either way, a change is applied within about a second.
pub fn spawn_change_watcher(
    state: AppState,
    poll: Duration,
    cancel: CancellationToken,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut seen = Seen::default();
        seen.sync(&state).await;
        match state.store().change_listener().await {
            Ok(Some(listener)) => listen(&state, listener, &mut seen, &cancel).await,
            Ok(None) => poll_versions(&state, poll, &mut seen, &cancel).await,
            Err(e) => {
                tracing::warn!(error = %e, "change feed unavailable; polling instead");
                poll_versions(&state, poll, &mut seen, &cancel).await;
            }
        }
    })
}

/// The change counters last applied.
#[derive(Default)]
struct Seen {
    keys: Option<fastgate_store::KeysVersion>,
    models: Option<i64>,
    live: Option<i64>,
    health: Option<i64>,
}

impl Seen {
    /// Read the counters and reload whatever changed since the last call.
    async fn sync(&mut self, state: &AppState) {
        let v = match state.store().change_versions().await {
            Ok(v) => {
                state.set_db_healthy(true);
                v
            }
            Err(e) => {
                state.set_db_healthy(false);
                tracing::debug!(error = %e, "change counter check failed");
                return;
            }
        };
        if self.keys != Some(v.keys) && reload_keys(state).await {
            self.keys = Some(v.keys);
        }
        if self.models != Some(v.models) || self.live != Some(v.live) {
            match reload_live(state).await {
                Ok(()) => {
                    self.models = Some(v.models);
                    self.live = Some(v.live);
                }
                Err(e) => tracing::warn!(error = %e, "could not apply stored objects"),
            }
        }
        if self.health != Some(v.health) {
            match fastgate_upstream::health::load_states(state.health(), state.store()).await {
                Ok(()) => self.health = Some(v.health),
                Err(e) => tracing::debug!(error = %e, "could not read credential states"),
            }
        }
    }
}

async fn poll_versions(
    state: &AppState,
    every: Duration,
    seen: &mut Seen,
    cancel: &CancellationToken,
) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = cancel.cancelled() => break,
            _ = tick.tick() => seen.sync(state).await,
        }
    }
}

async fn listen(
    state: &AppState,
    listener: fastgate_store::ChangeListener,
    seen: &mut Seen,
    cancel: &CancellationToken,
) {
    let mut resync = tokio::time::interval(FEED_RESYNC);
    resync.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut listener = Some(listener);
    loop {
        let Some(feed) = listener.as_mut() else {
            // The feed failed: its connection is dropped (a closing pool waits for
            // it), and a new one is opened after a pause.
            if state.store().is_closed() {
                break;
            }
            tokio::select! {
                () = cancel.cancelled() => break,
                () = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
            match state.store().change_listener().await {
                Ok(l) => listener = l,
                Err(e) => tracing::debug!(error = %e, "change feed still unavailable"),
            }
            seen.sync(state).await;
            continue;
        };
        tokio::select! {
            () = cancel.cancelled() => break,
            _ = resync.tick() => seen.sync(state).await,
            change = feed.recv() => match change {
                // Any change: the counters say what to reload (cheap, and a burst
                // of notifications costs one reload per counter).
                Ok(_) => seen.sync(state).await,
                Err(e) => {
                    state.set_db_healthy(false);
                    tracing::warn!(error = %e, "change feed lost; reconnecting");
                    listener = None;
                }
            },
        }
    }
}

/// How often the usage queue is read. The flusher reads it in gulps on a clock
/// rather than waking for every request (a wake-up per request cost more than
/// counting); at this pace the queue (65,536) holds up to about 650,000 req/s.
const USAGE_DRAIN_EVERY: Duration = Duration::from_millis(100);

/// Aggregate key uses from `rx` and write them every `every`; flush on cancel.
pub fn spawn_usage_flusher(
    state: AppState,
    mut rx: mpsc::Receiver<Arc<ApiKeyRecord>>,
    every: Duration,
    cancel: CancellationToken,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut counts: HashMap<String, u64> = HashMap::new();
        let mut drain = tokio::time::interval(USAGE_DRAIN_EVERY.min(every));
        drain.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_flush = tokio::time::Instant::now();
        loop {
            tokio::select! {
                () = cancel.cancelled() => break,
                _ = drain.tick() => {}
            }
            let closed = loop {
                match rx.try_recv() {
                    Ok(key) => count(&mut counts, &key.id),
                    Err(mpsc::error::TryRecvError::Empty) => break false,
                    Err(mpsc::error::TryRecvError::Disconnected) => break true,
                }
            };
            if closed {
                break;
            }
            if last_flush.elapsed() >= every {
                flush(&state, &mut counts).await;
                last_flush = tokio::time::Instant::now();
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
