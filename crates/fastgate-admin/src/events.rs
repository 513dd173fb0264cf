//! The admin audit trail: who changed what through the admin API, when, and the
//! object before and after (secrets redacted). `GET /admin/api/admin-events`.

use axum::Json;
use axum::extract::{FromRequestParts, Query, State};
use axum::response::IntoResponse;
use chrono::{DateTime, Utc};
use fastgate_proxy::{AppState, PeerAddr};
use fastgate_store::{AdminEvent, AdminEventFilter};
use http::request::Parts;
use serde_json::{Value, json};

use crate::error::AdminError;
use crate::validate::{self, MAX_NAME};

/// Who made an admin change: the admin token, and the client address it came from.
#[derive(Debug, Clone)]
pub struct Actor(pub String);

impl FromRequestParts<AppState> for Actor {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let peer = parts.extensions.get::<PeerAddr>().map(|p| p.0);
        Ok(Actor(match state.client_ip(peer, &parts.headers) {
            Some(ip) => format!("admin-token@{ip}"),
            None => "admin-token".to_owned(),
        }))
    }
}

/// A change that was made, for the trail.
pub struct Event<'a> {
    pub action: &'a str,
    pub kind: &'a str,
    pub name: &'a str,
    pub before: Option<Value>,
    pub after: Option<Value>,
}

/// Write one event. The change itself is already made, so a failure here is
/// logged (loudly) rather than turned into an error for the caller.
pub async fn record(state: &AppState, actor: &Actor, event: Event<'_>) {
    let mut e = AdminEvent::now(&actor.0, event.action, event.kind, event.name);
    e.before = event.before;
    e.after = event.after;
    if let Err(err) = state.store().insert_admin_event(&e).await {
        tracing::error!(error = %err, action = event.action, kind = event.kind, name = event.name,
            "admin change made but not recorded in the admin audit trail");
    }
}

#[derive(Debug, Default, serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct EventQuery {
    /// Object kind: upstream, credential, route, rule, model, key, config, master_key.
    pub kind: Option<String>,
    pub name: Option<String>,
    pub action: Option<String>,
    pub actor: Option<String>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    /// Paging: events older than this event id (the previous page's `next_before`).
    pub before: Option<String>,
    /// 1-1000, default 100.
    pub limit: Option<u32>,
}

#[utoipa::path(
    operation_id = "events_list",
    get,
    path = "/admin/api/admin-events",
    tag = "admin",
    summary = "List admin changes (the admin trail)",
    params(EventQuery),
    responses(
        (status = 200, description = "Newest first; secrets redacted.", body = crate::schemas::AdminEventList),
        (status = 400, description = "Invalid input; the message names the field.", body = crate::schemas::ErrorBody),
    )
)]
pub async fn list(
    State(state): State<AppState>,
    query: Result<Query<EventQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<impl IntoResponse, AdminError> {
    let Query(q) = query.map_err(|e| AdminError::BadRequest(e.body_text()))?;
    for (field, value) in [
        ("kind", &q.kind),
        ("name", &q.name),
        ("action", &q.action),
        ("actor", &q.actor),
        ("before", &q.before),
    ] {
        if let Some(v) = value {
            validate::text(field, v, MAX_NAME * 2)?;
        }
    }
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(AdminError::field("limit", "must be between 1 and 1000"));
    }
    let filter = AdminEventFilter {
        object_kind: q.kind,
        object_name: q.name,
        action: q.action,
        actor: q.actor,
        since: q.since,
        until: q.until,
        before_id: q.before,
        limit,
    };
    let data = state.store().list_admin_events(&filter).await?;
    let next = (data.len() == limit as usize)
        .then(|| data.last().map(|e| e.id.clone()))
        .flatten();
    Ok(Json(
        json!({ "object": "list", "data": data, "next_before": next }),
    ))
}
