//! `GET /admin/api/keys/{id}/usage`: a key's limits and quota, what it has used
//! in the current quota period (settled, and held by requests in flight), its
//! rate windows as they stand, and its stored usage in earlier periods.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::response::IntoResponse;
use fastgate_limits::{KeyUsageView, Limits, Scope, ScopeKind, nanos_to_usd};
use fastgate_proxy::AppState;
use serde_json::{Value, json};

use crate::error::AdminError;
use crate::keys::find_key;

/// Earlier periods listed.
const HISTORY: u32 = 24;

#[utoipa::path(
    operation_id = "key_usage_show",
    get,
    path = "/admin/api/keys/{id}/usage",
    tag = "keys",
    summary = "A key's usage",
    params(("id" = String, Path, description = "Key id.", example = "demo")),
    responses(
        (status = 200, description = "Limits, quota, use in the current period, rate windows and earlier periods.", body = crate::schemas::KeyUsage),
        (status = 400, description = "Invalid input; the message names the field.", body = crate::schemas::ErrorBody),
        (status = 404, description = "No such key.", body = crate::schemas::ErrorBody),
    )
)]
pub async fn show(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, AdminError> {
    let key = find_key(&state, &id).await?;
    let limiter = state.limiter();
    let key_id: Arc<str> = Arc::from(key.id.as_str());
    let check = limiter.quota_check(&key_id, &key.quota);
    let scope = Scope {
        kind: ScopeKind::Key,
        id: Arc::clone(&key_id),
        limits: Limits::from(&key.limits),
    };
    let limited_quota = (!check.is_unlimited()).then_some(&check);
    let mut view: KeyUsageView = limiter
        .usage(Some(&scope), limited_quota)
        .await
        .map_err(|e| {
            tracing::warn!(error = %e, "key usage: the limits backend did not answer");
            AdminError::Unavailable
        })?;
    if limited_quota.is_none() {
        // Keys without a quota are not tracked by the backend: the store's
        // totals plus what this instance has not written yet.
        let stored = state
            .store()
            .key_period_usage(&key.id, &check.period.id)
            .await?;
        let pending = limiter.pending_usage(&key.id, &check.period.id);
        if let Some(row) = stored {
            view.used.requests = row.requests;
            view.used.tokens = row.tokens;
            view.used.cost = nanos_to_usd(row.cost_nanos);
        }
        view.used.requests += pending.requests;
        view.used.tokens += pending.tokens;
        view.used.cost += pending.cost;
    }
    view.period = Some(check.period.clone());
    let history: Vec<Value> = state
        .store()
        .key_usage_history(&key.id, HISTORY)
        .await?
        .into_iter()
        .map(|r| {
            json!({
                "period": r.period,
                "requests": r.requests,
                "tokens": r.tokens,
                "cost": nanos_to_usd(r.cost_nanos),
            })
        })
        .collect();
    let q = &key.quota;
    let remaining = json!({
        "requests": q.requests.map(|n| n.saturating_sub(view.used.requests)),
        "tokens": q.tokens.map(|n| n.saturating_sub(view.used.tokens + view.reserved.tokens)),
        "cost": q.cost.map(|c| (c - view.used.cost - view.reserved.cost).max(0.0)),
    });
    Ok(Json(json!({
        "key_id": key.id,
        "name": key.name,
        "backend": view.backend,
        "limits": key.limits,
        "quota": key.quota,
        "period": view.period,
        "used": view.used,
        "reserved": view.reserved,
        "remaining": remaining,
        "windows": view.windows,
        "history": history,
    })))
}
