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

/// Redact a view (upstream, credential or route; rules hold no secret) for the
/// trail and responses.
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

/// Maps of an upstream or route whose values listings show as `[redacted]`.
pub const REDACTED_MAPS: &[&[&str]] = &[
    &["headers"],
    &["add_headers"],
    &["add_body_fields"],
    &["match", "headers"],
];

fn map_at<'a>(
    v: &'a mut serde_json::Value,
    path: &[&str],
) -> Option<&'a mut serde_json::Map<String, serde_json::Value>> {
    path.iter()
        .try_fold(v, |v, key| v.get_mut(*key))
        .and_then(serde_json::Value::as_object_mut)
}

/// A listed object sent back (GET, edit, PUT) carries `[redacted]` where a value
/// was hidden: keep the stored value there instead of storing the marker. A
/// marker with no stored value behind it is refused.
pub fn restore_redacted(
    body: &mut serde_json::Value,
    existing: Option<serde_json::Value>,
) -> Result<(), AdminError> {
    let mut existing = existing.unwrap_or(serde_json::Value::Null);
    for path in REDACTED_MAPS {
        let Some(map) = map_at(body, path) else {
            continue;
        };
        let old = map_at(&mut existing, path);
        for (k, v) in map.iter_mut() {
            if v.as_str() != Some(crate::redact::REDACTED) {
                continue;
            }
            match old.as_ref().and_then(|o| o.get(k)) {
                Some(stored) => *v = stored.clone(),
                None => {
                    return Err(AdminError::field(
                        &format!("{}.{k}", path.join(".")),
                        "is \"[redacted]\" and there is no stored value to keep: send the real value",
                    ));
                }
            }
        }
    }
    Ok(())
}

/// A request body for an upstream or a route: an object without U+0000, with the
/// stored values back where a listed copy says `[redacted]` (`stored` finds the
/// stored object of that name) and without the read-only `source`.
pub fn prepared_body(
    mut body: serde_json::Value,
    stored: impl FnOnce(&str) -> Option<serde_json::Value>,
) -> Result<serde_json::Value, AdminError> {
    if let Some(field) = crate::validate::find_nul(&body, "") {
        return Err(AdminError::field(&field, "contains U+0000"));
    }
    let existing = body["name"].as_str().and_then(stored);
    restore_redacted(&mut body, existing)?;
    body.as_object_mut()
        .ok_or_else(|| AdminError::BadRequest("request body: expected a JSON object".into()))?
        .remove("source");
    Ok(body)
}
