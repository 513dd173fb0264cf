//! `/admin/api/models`: model groups. Those from the config file are listed
//! read-only; those created here are stored in the database and served by every
//! instance within a second.

use axum::Json;
use axum::extract::{Path, State};
use axum::response::IntoResponse;
use fastgate_config::ModelGroupConfig;
use fastgate_proxy::AppState;
use http::StatusCode;
use serde_json::{Value, json};

use crate::error::AdminError;
use crate::events::{self, Actor, Event};
use crate::validate::{self, Body, MAX_NAME};

/// A model group as the API shows it: transform values redacted, `source` added.
fn with_source(m: &ModelGroupConfig, source: &str) -> Value {
    let mut v = serde_json::to_value(m).unwrap_or_default();
    crate::redact::model_group(&mut v);
    if let Some(obj) = v.as_object_mut() {
        obj.insert("source".into(), Value::String(source.into()));
    }
    v
}

#[utoipa::path(
    operation_id = "models_list",
    get,
    path = "/admin/api/models",
    tag = "models",
    summary = "List model groups",
    responses(
        (status = 200, description = "The file's model groups, then the API's.", body = crate::schemas::ModelList),
    )
)]
pub async fn list(State(state): State<AppState>) -> impl IntoResponse {
    let config = state.inner().config.load_full();
    let live = state.inner().live.load_full();
    let api = &live.models;
    let data: Vec<Value> = config
        .models
        .iter()
        .map(|m| with_source(m, "config"))
        .chain(api.iter().map(|m| with_source(m, "api")))
        .collect();
    Json(json!({ "object": "list", "data": data }))
}

/// Validate `group` against everything else, store it, and apply it here now.
async fn save(
    state: &AppState,
    group: ModelGroupConfig,
    must_be_new: bool,
) -> Result<bool, AdminError> {
    validate::name("name", &group.name, MAX_NAME)?;
    let spec_value =
        serde_json::to_value(&group).map_err(|e| AdminError::BadRequest(e.to_string()))?;
    if let Some(field) = validate::find_nul(&spec_value, "") {
        return Err(AdminError::field(&field, "contains U+0000"));
    }
    let mut models: Vec<ModelGroupConfig> = state.inner().live.load().models.clone();
    let exists = models.iter().any(|m| m.name == group.name);
    if must_be_new && exists {
        return Err(AdminError::Conflict(format!(
            "model '{}' already exists",
            group.name
        )));
    }
    models.retain(|m| m.name != group.name);
    models.push(group.clone());
    // Validate before storing: a bad group never reaches the database.
    state
        .set_api_models(models)
        .map_err(AdminError::BadRequest)?;
    let spec = serde_json::to_string(&group).map_err(|e| AdminError::BadRequest(e.to_string()))?;
    let created = match state.store().upsert_model_group(&group.name, &spec).await {
        Ok(created) => created,
        Err(e) => {
            // Not stored: go back to what the database holds.
            let _ = fastgate_proxy::sync::reload_live(state).await;
            return Err(e.into());
        }
    };
    if let Err(e) = fastgate_proxy::sync::reload_live(state).await {
        tracing::warn!(error = %e, "reloading model groups after a change failed");
    }
    Ok(created)
}

/// Record a model group change in the admin audit trail.
async fn record(
    state: &AppState,
    actor: &Actor,
    action: &str,
    name: &str,
    before: Option<Value>,
    after: Option<Value>,
) {
    let event = Event {
        action,
        kind: "model",
        name,
        before,
        after,
    };
    events::record(state, actor, event).await;
}

fn api_view(state: &AppState, name: &str) -> Option<Value> {
    state
        .inner()
        .live
        .load()
        .models
        .iter()
        .find(|m| m.name == name)
        .map(|m| with_source(m, "api"))
}

#[utoipa::path(
    operation_id = "models_create",
    post,
    path = "/admin/api/models",
    tag = "models",
    summary = "Create a model group",
    request_body = fastgate_config::ModelGroupConfig,
    responses(
        (status = 201, description = "The model group as shown.", body = crate::schemas::ModelView),
        (status = 400, description = "Invalid input; the message names the field.", body = crate::schemas::ErrorBody),
        (status = 409, description = "A model group of that name exists.", body = crate::schemas::ErrorBody),
    )
)]
pub async fn create(
    State(state): State<AppState>,
    actor: Actor,
    Body(group): Body<ModelGroupConfig>,
) -> Result<impl IntoResponse, AdminError> {
    save(&state, group.clone(), true).await?;
    record(
        &state,
        &actor,
        "create",
        &group.name,
        None,
        Some(with_source(&group, "api")),
    )
    .await;
    Ok((StatusCode::CREATED, Json(with_source(&group, "api"))))
}

#[utoipa::path(
    operation_id = "models_replace",
    put,
    path = "/admin/api/models/{name}",
    tag = "models",
    summary = "Create or replace a model group",
    params(("name" = String, Path, description = "Model group name.", example = "demo")),
    request_body = fastgate_config::ModelGroupConfig,
    responses(
        (status = 200, description = "Replaced.", body = crate::schemas::ModelView),
        (status = 201, description = "Created.", body = crate::schemas::ModelView),
        (status = 400, description = "Invalid input; the message names the field.", body = crate::schemas::ErrorBody),
        (status = 409, description = "The model group belongs to the config file (read-only).", body = crate::schemas::ErrorBody),
    )
)]
pub async fn replace(
    State(state): State<AppState>,
    actor: Actor,
    Path(name): Path<String>,
    Body(group): Body<ModelGroupConfig>,
) -> Result<impl IntoResponse, AdminError> {
    validate::name("name", &name, MAX_NAME)?;
    if group.name != name {
        return Err(AdminError::BadRequest(format!(
            "the body names model '{}', the path '{name}'",
            group.name
        )));
    }
    let before = api_view(&state, &name);
    let created = save(&state, group.clone(), false).await?;
    let action = if created { "create" } else { "update" };
    record(
        &state,
        &actor,
        action,
        &name,
        before,
        Some(with_source(&group, "api")),
    )
    .await;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(with_source(&group, "api"))))
}

#[utoipa::path(
    operation_id = "models_delete",
    delete,
    path = "/admin/api/models/{name}",
    tag = "models",
    summary = "Delete a model group",
    params(("name" = String, Path, description = "Model group name.", example = "demo")),
    responses(
        (status = 200, description = "Deleted.", body = crate::schemas::Deleted),
        (status = 400, description = "Invalid input; the message names the field.", body = crate::schemas::ErrorBody),
        (status = 404, description = "No such model group.", body = crate::schemas::ErrorBody),
        (status = 409, description = "The model group belongs to the config file (read-only).", body = crate::schemas::ErrorBody),
    )
)]
pub async fn delete(
    State(state): State<AppState>,
    actor: Actor,
    Path(name): Path<String>,
) -> Result<impl IntoResponse, AdminError> {
    validate::name("name", &name, MAX_NAME)?;
    if state
        .inner()
        .config
        .load()
        .models
        .iter()
        .any(|m| m.name == name)
    {
        return Err(AdminError::Conflict(format!(
            "model '{name}' is defined in the configuration file"
        )));
    }
    let before = api_view(&state, &name);
    if !state.store().delete_model_group(&name).await? {
        return Err(AdminError::NotFound(format!("model '{name}'")));
    }
    fastgate_proxy::sync::reload_live(&state)
        .await
        .map_err(AdminError::BadRequest)?;
    record(&state, &actor, "delete", &name, before, None).await;
    Ok(Json(json!({ "deleted": name })))
}
