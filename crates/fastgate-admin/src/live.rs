//! Applying a change to the API-managed objects: plan it against the file and the
//! current objects (fastgate-live), check that the gateway can build it, store
//! it, apply it here at once (other instances follow through the change feed)
//! and record it in the admin audit trail.

use fastgate_live::{Change, LiveError, Planned};
use fastgate_proxy::AppState;

use crate::error::AdminError;
use crate::events::{self, Actor, Event};

impl From<LiveError> for AdminError {
    fn from(e: LiveError) -> Self {
        match e {
            LiveError::NotFound(what) => Self::NotFound(what),
            LiveError::Conflict(msg) => Self::Conflict(msg),
            e @ LiveError::Invalid { .. } => Self::BadRequest(e.to_string()),
            LiveError::Store(e) => e.into(),
            e @ (LiveError::Vault(_) | LiveError::Unreadable { .. }) => {
                tracing::error!(error = %e, "admin change failed");
                Self::Storage
            }
        }
    }
}

/// Redact a view (upstream, credential or route) for the trail and responses.
pub fn redacted(kind: &str, mut v: serde_json::Value) -> serde_json::Value {
    match kind {
        "upstream" => crate::redact::upstream(&mut v),
        "route" => crate::redact::route(&mut v),
        _ => {}
    }
    v
}

/// Plan, check, store, apply and record `change`. A refused change stores nothing
/// and leaves the current state serving.
pub async fn apply(state: &AppState, actor: &Actor, change: Change) -> Result<Planned, AdminError> {
    let _one_at_a_time = state.inner().admin_changes.lock().await;
    fastgate_proxy::sync::refresh_master_key(state);
    let file = state.inner().config.load_full();
    let live = state.inner().live.load_full();
    let planned = fastgate_live::plan(&file, &live, change)?;
    state
        .check_snapshot(&planned.merged)
        .map_err(|e| AdminError::BadRequest(e.to_string()))?;
    let master = state.inner().master_key.load_full();
    fastgate_live::store_change(state.store(), master.as_deref(), &planned).await?;
    // Reload from the store rather than installing the plan: it also brings in
    // changes other instances made meanwhile.
    if let Err(e) = fastgate_proxy::sync::reload_live(state).await {
        tracing::warn!(error = %e, "reloading after an admin change failed; applying the change alone");
        if let Err(e) = state.install(planned.next.clone(), &planned.merged) {
            tracing::error!(error = %e, "stored change could not be applied here");
        }
    }
    events::record(
        state,
        actor,
        Event {
            action: planned.action,
            kind: planned.kind,
            name: &planned.name,
            before: planned.before.clone().map(|v| redacted(planned.kind, v)),
            after: planned.after.clone().map(|v| redacted(planned.kind, v)),
        },
    )
    .await;
    Ok(planned)
}
