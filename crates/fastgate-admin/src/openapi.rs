//! The OpenAPI 3.1 document of the admin API, generated from the handlers'
//! `#[utoipa::path]` attributes and the types' `ToSchema` derives, served at
//! `GET /admin/api/openapi.json` and rendered by the UI's reference page.
//!
//! Built once: [`document`] derives it, adds what every admin operation may
//! answer (401, 403, 500, 503) and turns every `allOf` schema (serde's
//! `flatten`: a config object plus the fields a view adds, or the fields of a
//! flattened part) into one plain object. A flattened part's own
//! `additionalProperties: false` would otherwise refuse the fields beside it.

use std::sync::{Arc, OnceLock};

use axum::response::{IntoResponse, Response};
use http::header;
use serde_json::{Map, Value, json};
use utoipa::OpenApi;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};

use crate::schemas;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "FastGate admin API",
        description = "Manage gateway keys, routes, upstreams and their provider keys, credential \
            health rules and model groups; read the audit log, statistics and the admin \
            trail. Every `/admin/api` operation needs the admin token \
            (`Authorization: Bearer <admin token>`); a browser signed in to the admin UI may \
            use its session cookie instead (changes then also need the page's `X-CSRF-Token`). \
            Request objects refuse unknown fields (400 naming the field). Errors always have \
            the shape `{\"error\": {\"message\", \"type\": \"admin_error\", \"code\"}}`.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    paths(
        crate::keys::list,
        crate::keys::create,
        crate::keys::show,
        crate::keys::update,
        crate::keys::revoke,
        crate::keys::rotate,
        crate::key_batch::batch,
        crate::key_usage::show,
        crate::routes::list,
        crate::routes::create,
        crate::routes::show,
        crate::routes::replace,
        crate::routes::delete,
        crate::routes::toggle,
        crate::route_test::test,
        crate::route_test::probe,
        crate::upstreams::list,
        crate::upstreams::create,
        crate::upstreams::show,
        crate::upstreams::replace,
        crate::upstreams::delete,
        crate::upstreams::credentials,
        crate::upstreams::add_credential,
        crate::upstreams::replace_credential,
        crate::upstreams::delete_credential,
        crate::health::set_state,
        crate::rules::list,
        crate::rules::create,
        crate::rules::show,
        crate::rules::replace,
        crate::rules::delete,
        crate::rules::toggle,
        crate::health::rule_events,
        crate::health::tasks,
        crate::events::list,
        crate::models::list,
        crate::models::create,
        crate::models::replace,
        crate::models::delete,
        crate::logs::query,
        crate::logs::detail,
        crate::export::export,
        crate::stats::summary,
        crate::stats::timeseries,
        crate::stats::top,
        crate::config,
        crate::reload,
        crate::openapi_json,
        crate::health,
        crate::metrics::metrics,
    ),
    components(schemas(schemas::ErrorBody, fastgate_config::Config)),
    modifiers(&AdminToken),
    security(("admin_token" = [])),
    tags(
        (name = "keys", description = "Gateway keys: the secret is shown once, at creation and rotation."),
        (name = "routes", description = "Routes of the config file (read-only, `source: config`) and routes created here (`source: api`)."),
        (name = "upstreams", description = "Upstreams and their provider keys (write-only: listings show `key_hint`), with each key's health."),
        (name = "rules", description = "Credential health rules and their firings."),
        (name = "models", description = "Model groups of the LLM endpoints."),
        (name = "logs", description = "The audit log of proxied requests: query, detail, export."),
        (name = "stats", description = "Request statistics from the audit rollups."),
        (name = "admin", description = "The admin trail, scheduled tasks, the effective configuration and its reload, this document."),
        (name = "system", description = "Health and metrics, outside `/admin/api`."),
    ),
)]
struct ApiDoc;

/// The `admin_token` bearer scheme the document's `security` names.
struct AdminToken;

impl utoipa::Modify for AdminToken {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let mut bearer = Http::new(HttpAuthScheme::Bearer);
        bearer.description = Some(
            "The admin token (`admin.token` in the config file, or generated into \
             `<data_dir>/admin_token`)."
                .into(),
        );
        components.add_security_scheme("admin_token", SecurityScheme::Http(bearer));
    }
}

/// What any `/admin/api` operation may answer besides its own statuses.
const COMMON_ERRORS: &[(&str, &str)] = &[
    (
        "401",
        "No admin token (or a wrong one), and no signed-in UI session.",
    ),
    (
        "403",
        "A signed-in UI session's change without its CSRF token, or a cross-site request.",
    ),
    (
        "500",
        "A storage failure (the detail is in the server log).",
    ),
    (
        "503",
        "The database is unavailable or busy; retry after `Retry-After` seconds.",
    ),
];

const SCHEMA_PREFIX: &str = "#/components/schemas/";

/// The document as JSON, built on first use.
pub fn document() -> Arc<Value> {
    static DOC: OnceLock<Arc<Value>> = OnceLock::new();
    Arc::clone(DOC.get_or_init(|| Arc::new(build_on_big_stack())))
}

/// The derived builder code nests deeply (one expression per schema tree), more
/// than a default thread stack holds in unoptimised builds: build on a thread
/// with room to spare.
fn build_on_big_stack() -> Value {
    const STACK: usize = 16 * 1024 * 1024;
    let built = std::thread::Builder::new()
        .name("openapi".into())
        .stack_size(STACK)
        .spawn(build)
        .map(|handle| handle.join());
    match built {
        Ok(Ok(doc)) => doc,
        _ => {
            tracing::error!("the OpenAPI document could not be built");
            Value::Null
        }
    }
}

/// The document serialized, built on first use.
fn document_text() -> &'static str {
    static TEXT: OnceLock<String> = OnceLock::new();
    TEXT.get_or_init(|| document().to_string())
}

/// `GET /admin/api/openapi.json`.
pub(crate) fn response() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        document_text(),
    )
        .into_response()
}

fn build() -> Value {
    let mut doc = serde_json::to_value(ApiDoc::openapi()).unwrap_or_default();
    add_common_errors(&mut doc);
    if let Some(schemas) = doc
        .pointer_mut("/components/schemas")
        .and_then(Value::as_object_mut)
    {
        let originals = schemas.clone();
        for schema in schemas.values_mut() {
            if schema.get("allOf").is_some() {
                *schema = merged(&originals, schema);
            }
        }
    }
    doc
}

fn add_common_errors(doc: &mut Value) {
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else {
        return;
    };
    for (path, item) in paths.iter_mut() {
        if !path.starts_with("/admin/api/") {
            continue;
        }
        let Some(item) = item.as_object_mut() else {
            continue;
        };
        for op in item.values_mut() {
            let Some(responses) = op.get_mut("responses").and_then(Value::as_object_mut) else {
                continue;
            };
            for (status, description) in COMMON_ERRORS {
                responses
                    .entry(*status)
                    .or_insert_with(|| error_response(description));
            }
        }
    }
}

fn error_response(description: &str) -> Value {
    json!({
        "description": description,
        "content": { "application/json": { "schema": { "$ref": format!("{SCHEMA_PREFIX}ErrorBody") } } }
    })
}

/// `schema` with every `allOf` resolved into one object: the properties of each
/// part in order (a later part's property replaces an earlier one of the same
/// name), the union of their `required`, no `additionalProperties` limit.
fn merged(schemas: &Map<String, Value>, schema: &Value) -> Value {
    let resolved = match schema.get("$ref").and_then(Value::as_str) {
        Some(r) => match r
            .strip_prefix(SCHEMA_PREFIX)
            .and_then(|name| schemas.get(name))
        {
            Some(target) => target,
            None => return schema.clone(),
        },
        None => schema,
    };
    let Some(parts) = resolved.get("allOf").and_then(Value::as_array) else {
        return resolved.clone();
    };
    let mut properties = Map::new();
    let mut required: Vec<Value> = Vec::new();
    for part in parts {
        let part = merged(schemas, part);
        if let Some(props) = part.get("properties").and_then(Value::as_object) {
            for (name, prop) in props {
                properties.insert(name.clone(), prop.clone());
            }
        }
        for name in part
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if !required.contains(name) {
                required.push(name.clone());
            }
        }
    }
    let mut out = Map::new();
    out.insert("type".into(), json!("object"));
    if let Some(description) = resolved.get("description") {
        out.insert("description".into(), description.clone());
    }
    out.insert("properties".into(), Value::Object(properties));
    if !required.is_empty() {
        out.insert("required".into(), Value::Array(required));
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn views_are_single_objects_with_their_added_fields() {
        let doc = document();
        let route = &doc["components"]["schemas"]["RouteView"];
        assert_eq!(route["type"], "object");
        assert!(route.get("allOf").is_none());
        for field in ["name", "match", "upstream", "source", "path", "methods"] {
            assert!(route["properties"].get(field).is_some(), "{field}");
        }
        let upstream = &doc["components"]["schemas"]["UpstreamView"];
        let creds = &upstream["properties"]["credentials"]["items"]["$ref"];
        assert_eq!(creds, "#/components/schemas/CredentialView");
    }

    #[test]
    fn every_admin_operation_documents_the_common_errors() {
        let doc = document();
        let op = &doc["paths"]["/admin/api/keys"]["get"]["responses"];
        for status in ["200", "401", "403", "500", "503"] {
            assert!(op.get(status).is_some(), "{status}");
        }
        assert_eq!(doc["openapi"], "3.1.0");
        assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));
    }
}
