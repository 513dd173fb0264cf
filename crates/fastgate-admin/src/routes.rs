//! `/admin/api/routes`: routes of the config file (read-only, `"source":"config"`)
//! and routes created here (stored, `"source":"api"`), in the config file's
//! shape plus the flat `path` and `methods` of the earlier listing.

use axum::Json;
use axum::extract::{Path, State};
use axum::response::IntoResponse;
use bytes::Bytes;
use fastgate_config::RouteConfig;
use fastgate_live::{Change, Source, route_view};
use fastgate_proxy::AppState;
use http::StatusCode;
use serde_json::{Value, json};

use crate::error::AdminError;
use crate::events::Actor;
use crate::live::{apply, redacted};
use crate::validate::{self, Body, MAX_NAME};

fn view(r: &RouteConfig, source: Source) -> Value {
    let mut v = redacted("route", route_view(r, source));
    if let Some(obj) = v.as_object_mut() {
        obj.insert("path".into(), json!(r.matcher.path));
        obj.insert("methods".into(), json!(r.matcher.methods));
    }
    v
}

fn find_view(state: &AppState, name: &str) -> Option<Value> {
    let file = state.inner().config.load_full();
    if let Some(r) = file.routes.iter().find(|r| r.name == name) {
        return Some(view(r, Source::Config));
    }
    let live = state.inner().live.load_full();
    live.routes
        .iter()
        .find(|r| r.name == name)
        .map(|r| view(r, Source::Api))
}

#[utoipa::path(
    operation_id = "routes_list",
    get,
    path = "/admin/api/routes",
    tag = "routes",
    summary = "List routes",
    responses(
        (status = 200, description = "The file's routes, then the API's.", body = crate::schemas::RouteList),
    )
)]
pub async fn list(State(state): State<AppState>) -> impl IntoResponse {
    let file = state.inner().config.load_full();
    let live = state.inner().live.load_full();
    let data: Vec<Value> = file
        .routes
        .iter()
        .map(|r| view(r, Source::Config))
        .chain(live.routes.iter().map(|r| view(r, Source::Api)))
        .collect();
    Json(json!({ "object": "list", "data": data }))
}

#[utoipa::path(
    operation_id = "routes_show",
    get,
    path = "/admin/api/routes/{name}",
    tag = "routes",
    summary = "Show a route",
    params(("name" = String, Path, description = "Route name.", example = "demo")),
    responses(
        (status = 200, description = "The route.", body = crate::schemas::RouteView),
        (status = 400, description = "Invalid input; the message names the field.", body = crate::schemas::ErrorBody),
        (status = 404, description = "No such route.", body = crate::schemas::ErrorBody),
    )
)]
pub async fn show(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<impl IntoResponse, AdminError> {
    validate::name("name", &name, MAX_NAME)?;
    find_view(&state, &name)
        .map(Json)
        .ok_or_else(|| AdminError::NotFound(format!("route '{name}'")))
}

/// A route from a request body: the config file's shape. The listing's flat
/// `path`/`methods` are accepted in place of `match` (and ignored beside it).
fn parse_route(state: &AppState, body: Value) -> Result<RouteConfig, AdminError> {
    let mut body = crate::live::prepared_body(body, |name| {
        let live = state.inner().live.load();
        live.routes
            .iter()
            .find(|r| r.name == name)
            .and_then(|r| serde_json::to_value(r).ok())
    })?;
    let Some(obj) = body.as_object_mut() else {
        return Err(AdminError::BadRequest(
            "request body: expected a JSON object".into(),
        ));
    };
    let path = obj.remove("path");
    let methods = obj.remove("methods");
    if !obj.contains_key("match")
        && let Some(path) = path
    {
        let mut m = serde_json::Map::new();
        m.insert("path".into(), path);
        if let Some(methods) = methods {
            m.insert("methods".into(), methods);
        }
        obj.insert("match".into(), Value::Object(m));
    }
    let route: RouteConfig = serde_json::from_value(body)
        .map_err(|e| AdminError::BadRequest(format!("request body: {e}")))?;
    validate::name("name", &route.name, MAX_NAME)?;
    Ok(route)
}

#[utoipa::path(
    operation_id = "routes_create",
    post,
    path = "/admin/api/routes",
    tag = "routes",
    summary = "Create a route",
    description = "The config file's shape; the listing's flat `path` and `methods` are accepted in place of `match`.",
    request_body = fastgate_config::RouteConfig,
    responses(
        (status = 201, description = "The route as shown.", body = crate::schemas::RouteView),
        (status = 400, description = "Invalid input; the message names the field.", body = crate::schemas::ErrorBody),
        (status = 409, description = "A route of that name exists.", body = crate::schemas::ErrorBody),
    )
)]
pub async fn create(
    State(state): State<AppState>,
    actor: Actor,
    Body(body): Body<Value>,
) -> Result<impl IntoResponse, AdminError> {
    let spec = parse_route(&state, body)?;
    let name = spec.name.clone();
    apply(
        &state,
        &actor,
        Change::PutRoute {
            spec,
            must_be_new: true,
        },
    )
    .await?;
    Ok((StatusCode::CREATED, Json(find_view(&state, &name))))
}

#[utoipa::path(
    operation_id = "routes_replace",
    put,
    path = "/admin/api/routes/{name}",
    tag = "routes",
    summary = "Create or replace a route",
    params(("name" = String, Path, description = "Route name.", example = "demo")),
    request_body = fastgate_config::RouteConfig,
    responses(
        (status = 200, description = "Replaced.", body = crate::schemas::RouteView),
        (status = 201, description = "Created.", body = crate::schemas::RouteView),
        (status = 400, description = "Invalid input; the message names the field.", body = crate::schemas::ErrorBody),
        (status = 409, description = "The route belongs to the config file (read-only).", body = crate::schemas::ErrorBody),
    )
)]
pub async fn replace(
    State(state): State<AppState>,
    actor: Actor,
    Path(name): Path<String>,
    Body(body): Body<Value>,
) -> Result<impl IntoResponse, AdminError> {
    validate::name("name", &name, MAX_NAME)?;
    let spec = parse_route(&state, body)?;
    if spec.name != name {
        return Err(AdminError::BadRequest(format!(
            "the body names route '{}', the path '{name}'",
            spec.name
        )));
    }
    let planned = apply(
        &state,
        &actor,
        Change::PutRoute {
            spec,
            must_be_new: false,
        },
    )
    .await?;
    let status = if planned.action == "create" {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(find_view(&state, &name))))
}

#[utoipa::path(
    operation_id = "routes_delete",
    delete,
    path = "/admin/api/routes/{name}",
    tag = "routes",
    summary = "Delete a route",
    params(("name" = String, Path, description = "Route name.", example = "demo")),
    responses(
        (status = 200, description = "Deleted.", body = crate::schemas::Deleted),
        (status = 400, description = "Invalid input; the message names the field.", body = crate::schemas::ErrorBody),
        (status = 404, description = "No such route.", body = crate::schemas::ErrorBody),
        (status = 409, description = "The route belongs to the config file (read-only).", body = crate::schemas::ErrorBody),
    )
)]
pub async fn delete(
    State(state): State<AppState>,
    actor: Actor,
    Path(name): Path<String>,
) -> Result<impl IntoResponse, AdminError> {
    validate::name("name", &name, MAX_NAME)?;
    apply(&state, &actor, Change::DeleteRoute(name.clone())).await?;
    Ok(Json(json!({ "deleted": name })))
}

#[derive(Debug, Default, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct ToggleInput {
    active: Option<bool>,
}

/// `POST /routes/{name}/toggle`: flip `active`, or set it with `{"active": bool}`.
#[utoipa::path(
    operation_id = "routes_toggle",
    post,
    path = "/admin/api/routes/{name}/toggle",
    tag = "routes",
    summary = "Switch a route on or off",
    description = "Flips `active`, or sets it with `{\"active\": bool}` (the body may be empty).",
    params(("name" = String, Path, description = "Route name.", example = "demo")),
    request_body = Option<ToggleInput>,
    responses(
        (status = 200, description = "The route.", body = crate::schemas::RouteView),
        (status = 400, description = "Invalid input; the message names the field.", body = crate::schemas::ErrorBody),
        (status = 404, description = "No such route.", body = crate::schemas::ErrorBody),
        (status = 409, description = "The route belongs to the config file (read-only).", body = crate::schemas::ErrorBody),
    )
)]
pub async fn toggle(
    State(state): State<AppState>,
    actor: Actor,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<impl IntoResponse, AdminError> {
    validate::name("name", &name, MAX_NAME)?;
    let input: ToggleInput = validate::optional_json(&body)?;
    let change = Change::ToggleRoute {
        name: name.clone(),
        active: input.active,
    };
    apply(&state, &actor, change).await?;
    Ok(Json(find_view(&state, &name)))
}
