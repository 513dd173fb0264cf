//! `/admin/api/upstreams` and their provider keys (`/credentials`). Objects of the
//! config file are listed read-only (`"source":"config"`); objects created here
//! are stored in the database (`"source":"api"`) and served by every instance
//! within a second. A provider key is write-only: responses show `key_hint`.

use axum::Json;
use axum::extract::{Path, State};
use axum::response::IntoResponse;
use fastgate_config::{Config, UpstreamConfig};
use fastgate_live::{
    Change, CredentialInput, LiveObjects, Source, credential_views, upstream_view,
};
use fastgate_proxy::AppState;
use http::StatusCode;
use serde_json::{Value, json};

use crate::error::AdminError;
use crate::events::Actor;
use crate::live::{apply, redacted};
use crate::validate::{self, Body, MAX_NAME};

/// Fields of a listed credential the API does not take as input.
const CREDENTIAL_READ_ONLY: &[&str] = &["source", "upstream", "key_hint"];

fn view(file: &Config, live: &LiveObjects, u: &UpstreamConfig, source: Source) -> Value {
    let creds = credential_views(file, live, &u.name);
    redacted("upstream", upstream_view(u, source, &creds))
}

fn find_view(state: &AppState, name: &str) -> Option<Value> {
    let file = state.inner().config.load_full();
    let live = state.inner().live.load_full();
    if let Some(u) = file.upstreams.iter().find(|u| u.name == name) {
        return Some(view(&file, &live, u, Source::Config));
    }
    live.upstreams
        .iter()
        .find(|u| u.name == name)
        .map(|u| view(&file, &live, u, Source::Api))
}

#[utoipa::path(
    operation_id = "upstreams_list",
    get,
    path = "/admin/api/upstreams",
    tag = "upstreams",
    summary = "List upstreams",
    responses(
        (status = 200, description = "The file's upstreams, then the API's.", body = crate::schemas::UpstreamList),
    )
)]
pub async fn list(State(state): State<AppState>) -> impl IntoResponse {
    let file = state.inner().config.load_full();
    let live = state.inner().live.load_full();
    let data: Vec<Value> = file
        .upstreams
        .iter()
        .map(|u| view(&file, &live, u, Source::Config))
        .chain(
            live.upstreams
                .iter()
                .map(|u| view(&file, &live, u, Source::Api)),
        )
        .collect();
    let master_key_id = state
        .inner()
        .master_key
        .load()
        .as_ref()
        .map(|k| k.id().to_owned());
    Json(
        json!({ "object": "list", "data": data, "problems": live.problems,
                 "master_key_id": master_key_id }),
    )
}

#[utoipa::path(
    operation_id = "upstreams_show",
    get,
    path = "/admin/api/upstreams/{name}",
    tag = "upstreams",
    summary = "Show an upstream",
    params(("name" = String, Path, description = "Upstream name.", example = "demo-http")),
    responses(
        (status = 200, description = "The upstream.", body = crate::schemas::UpstreamView),
        (status = 400, description = "Invalid input; the message names the field.", body = crate::schemas::ErrorBody),
        (status = 404, description = "No such upstream.", body = crate::schemas::ErrorBody),
    )
)]
pub async fn show(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<impl IntoResponse, AdminError> {
    validate::name("name", &name, MAX_NAME)?;
    find_view(&state, &name)
        .map(Json)
        .ok_or_else(|| AdminError::NotFound(format!("upstream '{name}'")))
}

/// The upstream of a request body (the config file's shape; `credentials` may
/// carry keys to create or update with it).
fn parse_upstream(
    state: &AppState,
    body: Value,
) -> Result<(UpstreamConfig, Vec<CredentialInput>), AdminError> {
    let mut body = crate::live::prepared_body(body, |name| {
        let live = state.inner().live.load();
        live.upstreams
            .iter()
            .find(|u| u.name == name)
            .and_then(|u| serde_json::to_value(u).ok())
    })?;
    let Some(obj) = body.as_object_mut() else {
        return Err(AdminError::BadRequest(
            "request body: expected a JSON object".into(),
        ));
    };
    let credentials = match obj.remove("credentials") {
        Some(mut v) => {
            // Entries as listed (`key_hint`, `source`, …) may be sent back as they are.
            for c in v.as_array_mut().into_iter().flatten() {
                if let Some(c) = c.as_object_mut() {
                    for f in CREDENTIAL_READ_ONLY {
                        c.remove(*f);
                    }
                }
            }
            serde_json::from_value::<Vec<CredentialInput>>(v)
                .map_err(|e| AdminError::field("credentials", e))?
        }
        None => Vec::new(),
    };
    let spec: UpstreamConfig = serde_json::from_value(body)
        .map_err(|e| AdminError::BadRequest(format!("request body: {e}")))?;
    validate::name("name", &spec.name, MAX_NAME)?;
    for (i, c) in credentials.iter().enumerate() {
        validate::name(&format!("credentials[{i}].name"), &c.name, MAX_NAME)?;
    }
    Ok((spec, credentials))
}

fn saved_status(action: &str) -> StatusCode {
    if action == "create" {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    }
}

#[utoipa::path(
    operation_id = "upstreams_create",
    post,
    path = "/admin/api/upstreams",
    tag = "upstreams",
    summary = "Create an upstream",
    description = "The config file's shape; `credentials` may carry provider keys to create with it.",
    request_body = crate::schemas::UpstreamInput,
    responses(
        (status = 201, description = "The upstream as shown.", body = crate::schemas::UpstreamView),
        (status = 400, description = "Invalid input; the message names the field.", body = crate::schemas::ErrorBody),
        (status = 409, description = "An upstream of that name exists.", body = crate::schemas::ErrorBody),
    )
)]
pub async fn create(
    State(state): State<AppState>,
    actor: Actor,
    Body(body): Body<Value>,
) -> Result<impl IntoResponse, AdminError> {
    let (spec, credentials) = parse_upstream(&state, body)?;
    let name = spec.name.clone();
    let change = Change::PutUpstream {
        spec,
        credentials,
        must_be_new: true,
    };
    apply(&state, &actor, change).await?;
    Ok((StatusCode::CREATED, Json(find_view(&state, &name))))
}

#[utoipa::path(
    operation_id = "upstreams_replace",
    put,
    path = "/admin/api/upstreams/{name}",
    tag = "upstreams",
    summary = "Create or replace an upstream",
    params(("name" = String, Path, description = "Upstream name.", example = "demo-http")),
    request_body = crate::schemas::UpstreamInput,
    responses(
        (status = 200, description = "Replaced.", body = crate::schemas::UpstreamView),
        (status = 201, description = "Created.", body = crate::schemas::UpstreamView),
        (status = 400, description = "Invalid input; the message names the field.", body = crate::schemas::ErrorBody),
        (status = 409, description = "The upstream belongs to the config file (read-only).", body = crate::schemas::ErrorBody),
    )
)]
pub async fn replace(
    State(state): State<AppState>,
    actor: Actor,
    Path(name): Path<String>,
    Body(body): Body<Value>,
) -> Result<impl IntoResponse, AdminError> {
    validate::name("name", &name, MAX_NAME)?;
    let (spec, credentials) = parse_upstream(&state, body)?;
    if spec.name != name {
        return Err(AdminError::BadRequest(format!(
            "the body names upstream '{}', the path '{name}'",
            spec.name
        )));
    }
    let change = Change::PutUpstream {
        spec,
        credentials,
        must_be_new: false,
    };
    let planned = apply(&state, &actor, change).await?;
    Ok((saved_status(planned.action), Json(find_view(&state, &name))))
}

#[utoipa::path(
    operation_id = "upstreams_delete",
    delete,
    path = "/admin/api/upstreams/{name}",
    tag = "upstreams",
    summary = "Delete an upstream",
    params(("name" = String, Path, description = "Upstream name.", example = "demo-http")),
    responses(
        (status = 200, description = "Deleted.", body = crate::schemas::Deleted),
        (status = 400, description = "Invalid input; the message names the field.", body = crate::schemas::ErrorBody),
        (status = 404, description = "No such upstream.", body = crate::schemas::ErrorBody),
        (status = 409, description = "The upstream belongs to the config file, or routes or models use it.", body = crate::schemas::ErrorBody),
    )
)]
pub async fn delete(
    State(state): State<AppState>,
    actor: Actor,
    Path(name): Path<String>,
) -> Result<impl IntoResponse, AdminError> {
    validate::name("name", &name, MAX_NAME)?;
    apply(&state, &actor, Change::DeleteUpstream(name.clone())).await?;
    forget_health(&state, &name, None).await;
    Ok(Json(json!({ "deleted": name })))
}

fn credential_list(state: &AppState, upstream: &str) -> Result<Vec<Value>, AdminError> {
    let file = state.inner().config.load_full();
    let live = state.inner().live.load_full();
    let known = file
        .upstreams
        .iter()
        .chain(&live.upstreams)
        .any(|u| u.name == upstream);
    if !known {
        return Err(AdminError::NotFound(format!("upstream '{upstream}'")));
    }
    Ok(credential_views(&file, &live, upstream)
        .into_iter()
        .filter_map(|c| {
            let mut v = serde_json::to_value(&c).ok()?;
            if let Some(obj) = v.as_object_mut() {
                obj.insert(
                    "health".into(),
                    crate::health::credential_health(state, upstream, &c.name),
                );
            }
            Some(v)
        })
        .collect())
}

fn credential_view(state: &AppState, upstream: &str, name: &str) -> Result<Value, AdminError> {
    credential_list(state, upstream)?
        .into_iter()
        .find(|c| c["name"] == name)
        .ok_or_else(|| AdminError::NotFound(format!("credential '{upstream}/{name}'")))
}

#[utoipa::path(
    operation_id = "upstreams_credentials",
    get,
    path = "/admin/api/upstreams/{name}/credentials",
    tag = "upstreams",
    summary = "List an upstream's provider keys",
    params(("name" = String, Path, description = "Upstream name.", example = "demo-http")),
    responses(
        (status = 200, description = "Its provider keys (`key_hint`, never the key) and their health.", body = crate::schemas::CredentialList),
        (status = 400, description = "Invalid input; the message names the field.", body = crate::schemas::ErrorBody),
        (status = 404, description = "No such upstream.", body = crate::schemas::ErrorBody),
    )
)]
pub async fn credentials(
    State(state): State<AppState>,
    Path(upstream): Path<String>,
) -> Result<impl IntoResponse, AdminError> {
    validate::name("upstream", &upstream, MAX_NAME)?;
    Ok(Json(
        json!({ "object": "list", "data": credential_list(&state, &upstream)? }),
    ))
}

#[utoipa::path(
    operation_id = "upstreams_add_credential",
    post,
    path = "/admin/api/upstreams/{name}/credentials",
    tag = "upstreams",
    summary = "Add a provider key",
    description = "`key` is required.",
    params(("name" = String, Path, description = "Upstream name.", example = "demo-http")),
    request_body = fastgate_live::CredentialInput,
    responses(
        (status = 201, description = "The provider key as listed.", body = crate::schemas::CredentialListed),
        (status = 400, description = "Invalid input; the message names the field.", body = crate::schemas::ErrorBody),
        (status = 404, description = "No such upstream.", body = crate::schemas::ErrorBody),
        (status = 409, description = "A key of that name exists, or the upstream belongs to the config file.", body = crate::schemas::ErrorBody),
    )
)]
pub async fn add_credential(
    State(state): State<AppState>,
    actor: Actor,
    Path(upstream): Path<String>,
    Body(input): Body<CredentialInput>,
) -> Result<impl IntoResponse, AdminError> {
    validate::name("upstream", &upstream, MAX_NAME)?;
    validate::name("name", &input.name, MAX_NAME)?;
    if input.key.is_none() {
        return Err(AdminError::field("key", "required"));
    }
    let name = input.name.clone();
    let change = Change::PutCredential {
        upstream: upstream.clone(),
        credential: input,
        must_be_new: true,
    };
    apply(&state, &actor, change).await?;
    Ok((
        StatusCode::CREATED,
        Json(credential_view(&state, &upstream, &name)?),
    ))
}

/// `PUT …/credentials/{cred}`: `{key?, weight?, quota?}` (and `name`, which must match the path).
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CredentialUpdate {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    #[schema(value_type = Option<String>, format = Password)]
    key: Option<fastgate_config::Secret<String>>,
    #[serde(default)]
    weight: Option<u32>,
    #[serde(default)]
    quota: Option<fastgate_config::CredentialQuota>,
}

#[utoipa::path(
    operation_id = "upstreams_replace_credential",
    put,
    path = "/admin/api/upstreams/{name}/credentials/{cred}",
    tag = "upstreams",
    summary = "Create or change a provider key",
    params(("name" = String, Path, description = "Upstream name.", example = "demo-http"), ("cred" = String, Path, description = "Provider key name.", example = "main")),
    request_body = CredentialUpdate,
    responses(
        (status = 200, description = "Changed.", body = crate::schemas::CredentialListed),
        (status = 201, description = "Created.", body = crate::schemas::CredentialListed),
        (status = 400, description = "Invalid input; the message names the field.", body = crate::schemas::ErrorBody),
        (status = 404, description = "No such upstream.", body = crate::schemas::ErrorBody),
        (status = 409, description = "The upstream belongs to the config file.", body = crate::schemas::ErrorBody),
    )
)]
pub async fn replace_credential(
    State(state): State<AppState>,
    actor: Actor,
    Path((upstream, name)): Path<(String, String)>,
    Body(input): Body<CredentialUpdate>,
) -> Result<impl IntoResponse, AdminError> {
    validate::name("upstream", &upstream, MAX_NAME)?;
    validate::name("name", &name, MAX_NAME)?;
    if input.name.as_ref().is_some_and(|n| *n != name) {
        return Err(AdminError::BadRequest(format!(
            "the body names credential '{}', the path '{name}'",
            input.name.unwrap_or_default()
        )));
    }
    let new_key = input.key.is_some();
    let credential = CredentialInput {
        name: name.clone(),
        key: input.key,
        weight: input.weight,
        quota: input.quota,
    };
    let change = Change::PutCredential {
        upstream: upstream.clone(),
        credential,
        must_be_new: false,
    };
    let planned = apply(&state, &actor, change).await?;
    if new_key {
        forget_health(&state, &upstream, Some(&name)).await;
    }
    Ok((
        saved_status(planned.action),
        Json(credential_view(&state, &upstream, &name)?),
    ))
}

/// A deleted credential's (or upstream's) stored state and counters go too, so
/// a credential added later under the same name starts active; a replaced key
/// starts over likewise. Failures are logged: the change itself is made.
async fn forget_health(state: &AppState, upstream: &str, credential: Option<&str>) {
    let store = state.store();
    if let Err(e) = store.delete_credential_states(upstream, credential).await {
        tracing::warn!(error = %e, upstream, ?credential, "stored credential state not removed");
    }
    if let Err(e) = store.delete_credential_usage(upstream, credential).await {
        tracing::warn!(error = %e, upstream, ?credential, "stored credential counters not removed");
    }
}

#[utoipa::path(
    operation_id = "upstreams_delete_credential",
    delete,
    path = "/admin/api/upstreams/{name}/credentials/{cred}",
    tag = "upstreams",
    summary = "Delete a provider key",
    params(("name" = String, Path, description = "Upstream name.", example = "demo-http"), ("cred" = String, Path, description = "Provider key name.", example = "main")),
    responses(
        (status = 200, description = "Deleted (`<upstream>/<name>`).", body = crate::schemas::Deleted),
        (status = 400, description = "Invalid input; the message names the field.", body = crate::schemas::ErrorBody),
        (status = 404, description = "No such provider key.", body = crate::schemas::ErrorBody),
        (status = 409, description = "The upstream belongs to the config file.", body = crate::schemas::ErrorBody),
    )
)]
pub async fn delete_credential(
    State(state): State<AppState>,
    actor: Actor,
    Path((upstream, name)): Path<(String, String)>,
) -> Result<impl IntoResponse, AdminError> {
    validate::name("upstream", &upstream, MAX_NAME)?;
    validate::name("name", &name, MAX_NAME)?;
    let change = Change::DeleteCredential {
        upstream: upstream.clone(),
        name: name.clone(),
    };
    apply(&state, &actor, change).await?;
    forget_health(&state, &upstream, Some(&name)).await;
    Ok(Json(json!({ "deleted": format!("{upstream}/{name}") })))
}
