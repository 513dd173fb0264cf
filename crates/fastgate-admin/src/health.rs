//! Credential health through the admin API: each credential's state and
//! counters, changing a state by hand, the rule firings and the scheduled tasks.
//!
//! `POST /admin/api/upstreams/{name}/credentials/{cred}/state`,
//! `GET /admin/api/rule-events`, `GET /admin/api/tasks`.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::response::IntoResponse;
use chrono::{DateTime, Utc};
use fastgate_proxy::AppState;
use fastgate_store::RuleEventFilter;
use fastgate_upstream::CredentialState;
use serde_json::{Value, json};

use crate::error::AdminError;
use crate::events::{self, Actor, Event};
use crate::validate::{self, MAX_NAME};

/// The health of `upstream`'s credential `name` as the admin API shows it.
pub(crate) fn credential_health(state: &AppState, upstream: &str, name: &str) -> Value {
    let reg = state.health();
    match reg.find(upstream, name) {
        Some(h) => serde_json::to_value(h.status(reg.now_ms(), reg.quota_day().number))
            .unwrap_or(Value::Null),
        None => Value::Null,
    }
}

/// `{"state": "active|disabled|banned", "reason": "…", "until": "RFC 3339 time" | "10m"}`
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StateInput {
    pub state: String,
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub until: Option<String>,
}

fn parse_until(value: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, AdminError> {
    if let Ok(t) = DateTime::parse_from_rfc3339(value) {
        return Ok(t.with_timezone(&Utc));
    }
    let d = humantime::parse_duration(value).map_err(|_| {
        AdminError::field(
            "until",
            "an RFC 3339 time (2026-12-01T08:00:00Z) or a duration (10m, 2h)",
        )
    })?;
    chrono::Duration::from_std(d)
        .ok()
        .and_then(|d| now.checked_add_signed(d))
        .ok_or_else(|| AdminError::field("until", "too far in the future"))
}

#[utoipa::path(
    operation_id = "health_set_state",
    post,
    path = "/admin/api/upstreams/{name}/credentials/{cred}/state",
    tag = "upstreams",
    summary = "Set a provider key's state by hand",
    params(("name" = String, Path, description = "Upstream name.", example = "demo-http"), ("cred" = String, Path, description = "Provider key name.", example = "main")),
    request_body = StateInput,
    responses(
        (status = 200, description = "The key's health after the change.", body = crate::schemas::CredentialStateChanged),
        (status = 400, description = "Invalid input; the message names the field.", body = crate::schemas::ErrorBody),
        (status = 404, description = "No such provider key.", body = crate::schemas::ErrorBody),
        (status = 409, description = "The key used its daily quota; it returns at the next reset.", body = crate::schemas::ErrorBody),
    )
)]
pub async fn set_state(
    State(state): State<AppState>,
    actor: Actor,
    Path((upstream, name)): Path<(String, String)>,
    validate::Body(input): validate::Body<StateInput>,
) -> Result<impl IntoResponse, AdminError> {
    validate::name("upstream", &upstream, MAX_NAME)?;
    validate::name("credential", &name, MAX_NAME)?;
    let target = match input.state.as_str() {
        "active" => CredentialState::Active,
        "disabled" => CredentialState::Disabled,
        "banned" => CredentialState::Banned,
        _ => {
            return Err(AdminError::field(
                "state",
                "one of active, disabled, banned (exhausted is set by quotas only)",
            ));
        }
    };
    let reason = input.reason.unwrap_or_default();
    validate::text("reason", &reason, 500)?;
    let now = Utc::now();
    let until = match (&input.until, target) {
        (Some(_), CredentialState::Active | CredentialState::Banned) => {
            return Err(AdminError::field(
                "until",
                "only a disabled credential returns by itself",
            ));
        }
        (Some(v), _) => {
            let t = parse_until(v, now)?;
            if t <= now {
                return Err(AdminError::field("until", "must be in the future"));
            }
            Some(t.timestamp_millis())
        }
        (None, _) => None,
    };
    let reg = state.health();
    let health = reg
        .find(&upstream, &name)
        .ok_or_else(|| AdminError::NotFound(format!("credential '{upstream}/{name}'")))?;
    if target == CredentialState::Active {
        let day = reg.quota_day();
        if let Some(which) = health.quota_reached(day.number) {
            return Err(AdminError::Conflict(format!(
                "credential '{upstream}/{name}' used its daily quota ({which}); it returns at the \
                 next quota reset, or raise its quota in the configuration"
            )));
        }
    }
    let before = credential_health(&state, &upstream, &name);
    let reason = if reason.is_empty() {
        format!("set to {target} by hand")
    } else {
        reason
    };
    reg.set_state(&health, target, &reason, until, &actor.0);
    let after = credential_health(&state, &upstream, &name);
    events::record(
        &state,
        &actor,
        Event {
            action: "set_state",
            kind: "credential",
            name: &format!("{upstream}/{name}"),
            before: Some(before),
            after: Some(after.clone()),
        },
    )
    .await;
    Ok(Json(
        json!({ "upstream": upstream, "name": name, "health": after }),
    ))
}

#[derive(Debug, Default, serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RuleEventQuery {
    pub upstream: Option<String>,
    pub credential: Option<String>,
    pub rule: Option<String>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    /// Paging: events older than this id (the previous page's `next_before`).
    pub before: Option<i64>,
    /// 1-1000, default 100.
    pub limit: Option<u32>,
}

#[utoipa::path(
    operation_id = "health_rule_events",
    get,
    path = "/admin/api/rule-events",
    tag = "rules",
    summary = "List rule firings",
    params(RuleEventQuery),
    responses(
        (status = 200, description = "Newest first.", body = crate::schemas::RuleEventList),
        (status = 400, description = "Invalid input; the message names the field.", body = crate::schemas::ErrorBody),
    )
)]
pub async fn rule_events(
    State(state): State<AppState>,
    query: Result<Query<RuleEventQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<impl IntoResponse, AdminError> {
    let Query(q) = query.map_err(|e| AdminError::BadRequest(e.body_text()))?;
    for (field, value) in [
        ("upstream", &q.upstream),
        ("credential", &q.credential),
        ("rule", &q.rule),
    ] {
        if let Some(v) = value {
            validate::text(field, v, MAX_NAME * 2)?;
        }
    }
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(AdminError::field("limit", "must be between 1 and 1000"));
    }
    let filter = RuleEventFilter {
        upstream: q.upstream,
        credential: q.credential,
        rule: q.rule,
        from_ms: q.from.map(|t| t.timestamp_millis()),
        to_ms: q.to.map(|t| t.timestamp_millis()),
        before_id: q.before,
        limit: Some(limit),
    };
    let rows = state.store().list_rule_events(&filter).await?;
    let next = (rows.len() == limit as usize)
        .then(|| rows.last().map(|e| e.id))
        .flatten();
    let data: Vec<Value> = rows
        .into_iter()
        .map(crate::rules::rule_event_view)
        .collect();
    Ok(Json(
        json!({ "object": "list", "data": data, "next_before": next }),
    ))
}

#[utoipa::path(
    operation_id = "health_tasks",
    get,
    path = "/admin/api/tasks",
    tag = "admin",
    summary = "List scheduled tasks",
    responses(
        (status = 200, description = "Each task and its lease.", body = crate::schemas::TaskList),
    )
)]
pub async fn tasks(State(state): State<AppState>) -> Result<impl IntoResponse, AdminError> {
    let rows = state.store().list_tasks().await?;
    let now = Utc::now().timestamp_millis();
    let time = |ms: Option<i64>| ms.and_then(DateTime::from_timestamp_millis);
    let data: Vec<Value> = rows
        .into_iter()
        .map(|t| {
            json!({
                "name": t.name,
                "running": t.lease_until_ms > now,
                "holder": t.holder,
                "last_started": time(t.last_started_ms),
                "last_finished": time(t.last_finished_ms),
                "last_ok": t.last_ok,
                "last_result": t.last_result,
                "next_run": time(t.next_run_ms),
            })
        })
        .collect();
    Ok(Json(json!({ "object": "list", "data": data })))
}
