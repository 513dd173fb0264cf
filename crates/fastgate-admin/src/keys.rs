//! `/admin/api/keys`: create (the secret is returned once), list, show, update,
//! revoke, rotate. Every change reloads this instance's key snapshot at once;
//! other instances pick it up on their next poll.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use fastgate_auth::{ApiKeyRecord, KeyLimits, KeyQuota, generate_key, new_key_record};
use fastgate_proxy::AppState;
use http::StatusCode;
use serde::Deserialize;

use crate::error::AdminError;
use crate::events::{self, Actor, Event};
use crate::key_list::KeyListQuery;
use crate::validate::{self, Body, MAX_LABEL, MAX_NAME};

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct KeyInput {
    pub name: Option<String>,
    pub source: Option<String>,
    /// Duration from now, e.g. `30d`, `12h`.
    pub expires_in: Option<String>,
    pub expires_at: Option<DateTime<Utc>>,
    pub allowed_routes: Option<Vec<String>>,
    pub allowed_models: Option<Vec<String>>,
    pub limits: Option<KeyLimits>,
    pub quota: Option<KeyQuota>,
    pub is_active: Option<bool>,
}

/// Parse `30d`, `12h`, `90m` (humantime) into an expiry instant.
pub fn expiry_from(input: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, AdminError> {
    validate::text("expires_in", input, 64)?;
    let d = humantime::parse_duration(input)
        .map_err(|e| AdminError::BadRequest(format!("expires_in: {e}")))?;
    let d = chrono::Duration::from_std(d)
        .map_err(|e| AdminError::BadRequest(format!("expires_in: {e}")))?;
    now.checked_add_signed(d)
        .ok_or_else(|| AdminError::BadRequest("expires_in: too far in the future".into()))
}

impl KeyInput {
    /// Apply the fields that are present to `rec` (shared by the API and the CLI).
    pub fn apply_to(self, rec: &mut ApiKeyRecord, now: DateTime<Utc>) -> Result<(), AdminError> {
        apply(rec, self, now)
    }
}

impl KeyInput {
    /// Every text field within its length and free of control characters; a
    /// failure names the field. Runs before anything is applied or stored.
    pub fn validate(&self) -> Result<(), AdminError> {
        if let Some(name) = &self.name {
            validate_name(name)?;
        }
        if let Some(source) = &self.source {
            validate::text("source", source, MAX_LABEL)?;
        }
        if let Some(routes) = &self.allowed_routes {
            validate::names("allowed_routes", routes, MAX_NAME)?;
        }
        if let Some(models) = &self.allowed_models {
            validate::names("allowed_models", models, MAX_LABEL)?;
        }
        if let Some(limits) = &self.limits {
            validate_limits(limits)?;
        }
        if let Some(quota) = &self.quota {
            validate_quota(quota)?;
        }
        Ok(())
    }
}

/// Every limit that is set can be enforced: at least 1 (docs/limits.md).
fn validate_limits(l: &KeyLimits) -> Result<(), AdminError> {
    let fields = [
        ("requests_per_minute", l.requests_per_minute.map(u64::from)),
        ("requests_per_day", l.requests_per_day.map(u64::from)),
        ("tokens_per_minute", l.tokens_per_minute),
        ("max_concurrent", l.max_concurrent.map(u64::from)),
    ];
    for (name, value) in fields {
        if value == Some(0) {
            return Err(AdminError::BadRequest(format!(
                "limits.{name}: must be at least 1 (omit it for no limit)"
            )));
        }
    }
    Ok(())
}

fn validate_quota(q: &KeyQuota) -> Result<(), AdminError> {
    for (name, value) in [("requests", q.requests), ("tokens", q.tokens)] {
        if value == Some(0) {
            return Err(AdminError::BadRequest(format!(
                "quota.{name}: must be at least 1 (omit it for no quota)"
            )));
        }
    }
    if let Some(cost) = q.cost
        && !(cost.is_finite() && cost > 0.0 && cost < 1e9)
    {
        return Err(AdminError::BadRequest(
            "quota.cost: must be a positive amount of USD below 1e9 (omit it for no budget)".into(),
        ));
    }
    Ok(())
}

fn apply(rec: &mut ApiKeyRecord, input: KeyInput, now: DateTime<Utc>) -> Result<(), AdminError> {
    input.validate()?;
    if let Some(name) = input.name {
        rec.name = name;
    }
    if let Some(s) = input.source {
        rec.source = Some(s);
    }
    if let Some(e) = input.expires_in {
        rec.expires_at = Some(expiry_from(&e, now)?);
    }
    if let Some(e) = input.expires_at {
        rec.expires_at = Some(e);
    }
    if let Some(r) = input.allowed_routes {
        rec.allowed_routes = r;
    }
    if let Some(m) = input.allowed_models {
        rec.allowed_models = m;
    }
    if let Some(l) = input.limits {
        rec.limits = l;
    }
    if let Some(q) = input.quota {
        rec.quota = q;
    }
    if let Some(a) = input.is_active {
        rec.is_active = a;
        if a {
            rec.revoked_at = None;
        }
    }
    Ok(())
}

fn validate_name(name: &str) -> Result<(), AdminError> {
    validate::name("name", name, MAX_NAME)
}

/// A key id (or name) from the URL path.
pub(crate) fn validate_id(id: &str) -> Result<(), AdminError> {
    validate::name("id", id, MAX_NAME)
}

fn created_body(rec: &ApiKeyRecord, secret: &str) -> serde_json::Value {
    let mut v = serde_json::to_value(rec).unwrap_or_default();
    if let Some(obj) = v.as_object_mut() {
        obj.insert("key".into(), serde_json::Value::String(secret.to_string()));
    }
    v
}

pub(crate) async fn find_key(state: &AppState, id: &str) -> Result<ApiKeyRecord, AdminError> {
    validate_id(id)?;
    state
        .store()
        .get_key(id)
        .await?
        .ok_or_else(|| AdminError::NotFound(format!("key '{id}'")))
}

/// Record a key change in the admin audit trail (the record never holds the secret).
pub(crate) async fn record(
    state: &AppState,
    actor: &Actor,
    action: &str,
    before: Option<&ApiKeyRecord>,
    after: &ApiKeyRecord,
) {
    let view = |k: &ApiKeyRecord| serde_json::to_value(k).ok();
    let event = Event {
        action,
        kind: "key",
        name: &after.id,
        before: before.and_then(view),
        after: view(after),
    };
    events::record(state, actor, event).await;
}

#[utoipa::path(
    operation_id = "keys_create",
    post,
    path = "/admin/api/keys",
    tag = "keys",
    summary = "Create a gateway key",
    description = "`name` is required. The secret is returned once, in `key`.",
    request_body = KeyInput,
    responses(
        (status = 201, description = "The key, with its secret `key` shown this once.", body = crate::schemas::KeyWithSecret),
        (status = 400, description = "Invalid input; the message names the field.", body = crate::schemas::ErrorBody),
        (status = 409, description = "A key of that id exists.", body = crate::schemas::ErrorBody),
    )
)]
pub async fn create(
    State(state): State<AppState>,
    actor: Actor,
    Body(input): Body<KeyInput>,
) -> Result<impl IntoResponse, AdminError> {
    let now = Utc::now();
    let name = input
        .name
        .clone()
        .ok_or_else(|| AdminError::BadRequest("name is required".into()))?;
    validate_name(&name)?;
    let (generated, mut rec) = new_key_record(&name, now);
    apply(&mut rec, input, now)?;
    state.store().insert_key(&rec).await?;
    fastgate_proxy::sync::reload_keys(&state).await;
    record(&state, &actor, "create", None, &rec).await;
    Ok((
        StatusCode::CREATED,
        Json(created_body(&rec, &generated.secret)),
    ))
}

#[utoipa::path(
    operation_id = "keys_list",
    get,
    path = "/admin/api/keys",
    tag = "keys",
    summary = "List gateway keys",
    params(KeyListQuery),
    responses(
        (status = 200, description = "Every key (never a secret); with `search`, `limit` or `offset` the matching page.", body = crate::schemas::KeyList,
            headers(("x-total-count" = u64, description = "Keys matching `search` (sent when `search`, `limit` or `offset` is given)."))),
        (status = 400, description = "Invalid input; the message names the field.", body = crate::schemas::ErrorBody),
    )
)]
/// Every key; with `search`, `limit` or `offset` the matching page of them and
/// the number matching in `X-Total-Count` (same body shape either way).
pub async fn list(
    State(state): State<AppState>,
    Query(query): Query<KeyListQuery>,
) -> Result<Response, AdminError> {
    let keys = state.store().list_keys().await?;
    let Some(paging) = query.paging()? else {
        return Ok(Json(serde_json::json!({ "object": "list", "data": keys })).into_response());
    };
    let (page, total) = paging.apply(keys);
    let body = Json(serde_json::json!({ "object": "list", "data": page }));
    Ok(([(crate::key_list::X_TOTAL_COUNT, total.to_string())], body).into_response())
}

#[utoipa::path(
    operation_id = "keys_show",
    get,
    path = "/admin/api/keys/{id}",
    tag = "keys",
    summary = "Show a gateway key",
    params(("id" = String, Path, description = "Key id.", example = "demo")),
    responses(
        (status = 200, description = "The key.", body = fastgate_auth::ApiKeyRecord),
        (status = 400, description = "Invalid input; the message names the field.", body = crate::schemas::ErrorBody),
        (status = 404, description = "No such key.", body = crate::schemas::ErrorBody),
    )
)]
pub async fn show(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, AdminError> {
    let key = find_key(&state, &id).await?;
    Ok(Json(key))
}

#[utoipa::path(
    operation_id = "keys_update",
    patch,
    path = "/admin/api/keys/{id}",
    tag = "keys",
    summary = "Change a gateway key",
    description = "Only the fields present change.",
    params(("id" = String, Path, description = "Key id.", example = "demo")),
    request_body = KeyInput,
    responses(
        (status = 200, description = "The key as changed.", body = fastgate_auth::ApiKeyRecord),
        (status = 400, description = "Invalid input; the message names the field.", body = crate::schemas::ErrorBody),
        (status = 404, description = "No such key.", body = crate::schemas::ErrorBody),
        (status = 409, description = "Another key has that name.", body = crate::schemas::ErrorBody),
    )
)]
pub async fn update(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
    Body(input): Body<KeyInput>,
) -> Result<impl IntoResponse, AdminError> {
    let mut key = find_key(&state, &id).await?;
    let before = key.clone();
    apply(&mut key, input, Utc::now())?;
    state.store().update_key(&key).await?;
    fastgate_proxy::sync::reload_keys(&state).await;
    record(&state, &actor, "update", Some(&before), &key).await;
    Ok(Json(key))
}

#[utoipa::path(
    operation_id = "keys_revoke",
    delete,
    path = "/admin/api/keys/{id}",
    tag = "keys",
    summary = "Revoke a gateway key",
    params(("id" = String, Path, description = "Key id.", example = "demo")),
    responses(
        (status = 200, description = "The key, revoked (kept for the audit log).", body = fastgate_auth::ApiKeyRecord),
        (status = 400, description = "Invalid input; the message names the field.", body = crate::schemas::ErrorBody),
        (status = 404, description = "No such key.", body = crate::schemas::ErrorBody),
    )
)]
pub async fn revoke(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, AdminError> {
    validate_id(&id)?;
    let key = state
        .store()
        .revoke_key(&id)
        .await?
        .ok_or_else(|| AdminError::NotFound(format!("key '{id}'")))?;
    fastgate_proxy::sync::reload_keys(&state).await;
    record(&state, &actor, "revoke", None, &key).await;
    Ok(Json(key))
}

/// New secret for the same key id; the old secret stops working at once.
#[utoipa::path(
    operation_id = "keys_rotate",
    post,
    path = "/admin/api/keys/{id}/rotate",
    tag = "keys",
    summary = "Rotate a key's secret",
    params(("id" = String, Path, description = "Key id.", example = "demo")),
    responses(
        (status = 200, description = "The key with its new secret `key`, shown this once; the old secret stops working at once.", body = crate::schemas::KeyWithSecret),
        (status = 400, description = "Invalid input; the message names the field.", body = crate::schemas::ErrorBody),
        (status = 404, description = "No such key.", body = crate::schemas::ErrorBody),
    )
)]
pub async fn rotate(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, AdminError> {
    let mut key = find_key(&state, &id).await?;
    let generated = generate_key();
    key.key_hash = generated.hash.clone();
    key.prefix = generated.prefix.clone();
    state.store().update_key(&key).await?;
    fastgate_proxy::sync::reload_keys(&state).await;
    record(&state, &actor, "rotate", None, &key).await;
    Ok(Json(created_body(&key, &generated.secret)))
}
