//! `POST /admin/api/keys/batch`: revoke, enable or disable many keys in one call.
//! Each key is changed and recorded in the admin audit trail as its single change
//! would be (`revoke`, or `update` with the key before and after); one key failing
//! does not stop the others, and the answer lists the outcome of every id.

use axum::Json;
use axum::extract::{Path, State};
use axum::response::Response;
use chrono::Utc;
use fastgate_auth::ApiKeyRecord;
use fastgate_proxy::AppState;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::error::AdminError;
use crate::events::Actor;
use crate::keys::{self, find_key, record, validate_id};
use crate::validate::Body;

/// Most ids in one call.
const MAX_IDS: usize = 1000;

/// `{"ids": ["…"], "action": "revoke" | "enable" | "disable"}`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchInput {
    /// Key ids or names, 1 to 1000.
    pub ids: Vec<String>,
    #[schema(value_type = crate::schemas::KeyBatchAction)]
    pub action: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Revoke,
    Enable,
    Disable,
}

impl Action {
    fn parse(s: &str) -> Result<Action, AdminError> {
        match s {
            "revoke" => Ok(Action::Revoke),
            "enable" => Ok(Action::Enable),
            "disable" => Ok(Action::Disable),
            other => Err(AdminError::field(
                "action",
                format!("expected revoke, enable or disable, got {other:?}"),
            )),
        }
    }
}

/// Change one key; the change is recorded before the next key is touched.
async fn change_one(
    state: &AppState,
    actor: &Actor,
    action: Action,
    id: &str,
) -> Result<ApiKeyRecord, AdminError> {
    if action == Action::Revoke {
        validate_id(id)?;
        let key = state
            .store()
            .revoke_key(id)
            .await?
            .ok_or_else(|| AdminError::NotFound(format!("key '{id}'")))?;
        record(state, actor, "revoke", None, &key).await;
        return Ok(key);
    }
    let mut key = find_key(state, id).await?;
    let before = key.clone();
    let input = keys::KeyInput {
        is_active: Some(action == Action::Enable),
        ..Default::default()
    };
    input.apply_to(&mut key, Utc::now())?;
    if !state.store().update_key(&key).await? {
        return Err(AdminError::NotFound(format!("key '{id}'")));
    }
    record(state, actor, "update", Some(&before), &key).await;
    Ok(key)
}

#[utoipa::path(
    operation_id = "keys_batch",
    post,
    path = "/admin/api/keys/batch",
    tag = "keys",
    summary = "Revoke, enable or disable many keys",
    request_body = BatchInput,
    responses(
        (status = 200, description = "The outcome of every id (one failing does not stop the others).", body = crate::schemas::KeyBatchResult),
        (status = 400, description = "Invalid input; the message names the field.", body = crate::schemas::ErrorBody),
    )
)]
pub async fn batch(
    State(state): State<AppState>,
    actor: Actor,
    Body(input): Body<BatchInput>,
) -> Result<Json<Value>, AdminError> {
    let action = Action::parse(&input.action)?;
    if input.ids.is_empty() || input.ids.len() > MAX_IDS {
        return Err(AdminError::field(
            "ids",
            format!("expected 1 to {MAX_IDS} key ids or names"),
        ));
    }
    let mut results = Vec::with_capacity(input.ids.len());
    let mut succeeded = 0usize;
    for id in &input.ids {
        results.push(match change_one(&state, &actor, action, id).await {
            Ok(key) => {
                succeeded += 1;
                json!({ "id": id, "ok": true, "key": key })
            }
            Err(e) => json!({
                "id": id,
                "ok": false,
                "error": { "message": e.to_string(), "code": e.status().as_u16() },
            }),
        });
    }
    if succeeded > 0 {
        fastgate_proxy::sync::reload_keys(&state).await;
    }
    Ok(Json(json!({
        "object": "list",
        "action": input.action,
        "succeeded": succeeded,
        "failed": results.len() - succeeded,
        "data": results,
    })))
}

/// A key named `batch` stays reachable at `/keys/batch` (the batch route takes that
/// path): GET, PATCH and DELETE there act on it as on `/keys/{id}`.
pub async fn show_named(state: State<AppState>) -> Result<Response, AdminError> {
    use axum::response::IntoResponse;
    Ok(keys::show(state, Path("batch".to_owned()))
        .await?
        .into_response())
}

pub async fn update_named(
    state: State<AppState>,
    actor: Actor,
    body: Body<keys::KeyInput>,
) -> Result<Response, AdminError> {
    use axum::response::IntoResponse;
    Ok(keys::update(state, actor, Path("batch".to_owned()), body)
        .await?
        .into_response())
}

pub async fn revoke_named(state: State<AppState>, actor: Actor) -> Result<Response, AdminError> {
    use axum::response::IntoResponse;
    Ok(keys::revoke(state, actor, Path("batch".to_owned()))
        .await?
        .into_response())
}
