//! `/admin/api/rules`: credential health rules of the config file (read-only,
//! `"source":"config"`) and rules created here (stored, `"source":"api"`), in the
//! config file's shape (`actions: [{"disable": "10m"}]`). One rule also shows its
//! latest firings.

use axum::Json;
use axum::extract::{Path, State};
use axum::response::IntoResponse;
use bytes::Bytes;
use chrono::DateTime;
use fastgate_config::RuleConfig;
use fastgate_live::{Change, Source, rule_view};
use fastgate_proxy::AppState;
use fastgate_store::{RuleEventFilter, RuleEventRow};
use http::StatusCode;
use serde_json::{Value, json};

use crate::error::AdminError;
use crate::events::Actor;
use crate::live::apply;
use crate::validate::{self, Body, MAX_NAME};

/// How many of a rule's latest firings `GET /rules/{name}` shows.
const RECENT_EVENTS: u32 = 20;

/// Fields of a shown rule the API does not take as input (a shown rule may be
/// sent back as it is).
const READ_ONLY: &[&str] = &["source", "recent_events"];

fn find_view(state: &AppState, name: &str) -> Option<Value> {
    let file = state.inner().config.load_full();
    if let Some(r) = file.rules.iter().find(|r| r.name == name) {
        return Some(rule_view(r, Source::Config));
    }
    let live = state.inner().live.load_full();
    live.rules
        .iter()
        .find(|r| r.name == name)
        .map(|r| rule_view(r, Source::Api))
}

/// `{"object":"list","data":[…],"builtin_rules":bool}`: the file's rules, then
/// the API's (the order they are tried in). `builtin_rules` says whether the
/// built-ins apply when none of them matched.
#[utoipa::path(
    operation_id = "rules_list",
    get,
    path = "/admin/api/rules",
    tag = "rules",
    summary = "List credential health rules",
    responses(
        (status = 200, description = "The file's rules, then the API's (the order they are tried in).", body = crate::schemas::RuleList),
    )
)]
pub async fn list(State(state): State<AppState>) -> impl IntoResponse {
    let file = state.inner().config.load_full();
    let live = state.inner().live.load_full();
    let data: Vec<Value> = file
        .rules
        .iter()
        .map(|r| rule_view(r, Source::Config))
        .chain(live.rules.iter().map(|r| rule_view(r, Source::Api)))
        .collect();
    Json(json!({
        "object": "list",
        "data": data,
        "builtin_rules": file.health.builtin_rules,
    }))
}

/// A rule firing as the admin API shows it (`at` as an RFC 3339 time).
pub fn rule_event_view(e: RuleEventRow) -> Value {
    json!({
        "id": e.id,
        "at": DateTime::from_timestamp_millis(e.at_ms),
        "rule": e.rule,
        "upstream": e.upstream,
        "credential": e.credential,
        "status": e.status,
        "excerpt": e.excerpt,
        "action": e.action,
        "state_before": e.state_before,
        "state_after": e.state_after,
        "instance": e.instance,
    })
}

/// One rule as listed plus `recent_events`: its latest firings, newest first.
#[utoipa::path(
    operation_id = "rules_show",
    get,
    path = "/admin/api/rules/{name}",
    tag = "rules",
    summary = "Show a rule and its latest firings",
    params(("name" = String, Path, description = "Rule name.", example = "demo")),
    responses(
        (status = 200, description = "The rule.", body = crate::schemas::RuleDetail),
        (status = 400, description = "Invalid input; the message names the field.", body = crate::schemas::ErrorBody),
        (status = 404, description = "No such rule.", body = crate::schemas::ErrorBody),
    )
)]
pub async fn show(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<impl IntoResponse, AdminError> {
    validate::name("name", &name, MAX_NAME)?;
    let mut view =
        find_view(&state, &name).ok_or_else(|| AdminError::NotFound(format!("rule '{name}'")))?;
    let filter = RuleEventFilter {
        rule: Some(name),
        limit: Some(RECENT_EVENTS),
        ..Default::default()
    };
    let events: Vec<Value> = state
        .store()
        .list_rule_events(&filter)
        .await?
        .into_iter()
        .map(rule_event_view)
        .collect();
    if let Some(obj) = view.as_object_mut() {
        obj.insert("recent_events".into(), Value::Array(events));
    }
    Ok(Json(view))
}

/// A rule from a request body: the config file's shape, JSON for YAML. A field
/// that does not parse is named by its path (`actions[0].disable: …`).
fn parse_rule(body: Value) -> Result<RuleConfig, AdminError> {
    let mut body = crate::live::prepared_body(body, |_| None)?;
    if let Some(obj) = body.as_object_mut() {
        for field in READ_ONLY {
            obj.remove(*field);
        }
    }
    let rule: RuleConfig = serde_path_to_error::deserialize(body).map_err(|e| {
        let path = e.path().to_string();
        if path.is_empty() || path == "." {
            AdminError::BadRequest(format!("request body: {}", e.inner()))
        } else {
            AdminError::field(&path, e.inner())
        }
    })?;
    validate::name("name", &rule.name, MAX_NAME)?;
    Ok(rule)
}

fn saved_status(action: &str) -> StatusCode {
    if action == "create" {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    }
}

#[utoipa::path(
    operation_id = "rules_create",
    post,
    path = "/admin/api/rules",
    tag = "rules",
    summary = "Create a rule",
    request_body = fastgate_config::RuleConfig,
    responses(
        (status = 201, description = "The rule as shown.", body = crate::schemas::RuleView),
        (status = 400, description = "Invalid input; the message names the field.", body = crate::schemas::ErrorBody),
        (status = 409, description = "A rule of that name exists.", body = crate::schemas::ErrorBody),
    )
)]
pub async fn create(
    State(state): State<AppState>,
    actor: Actor,
    Body(body): Body<Value>,
) -> Result<impl IntoResponse, AdminError> {
    let rule = parse_rule(body)?;
    let name = rule.name.clone();
    let change = Change::PutRule {
        rule,
        must_be_new: true,
    };
    apply(&state, &actor, change).await?;
    Ok((StatusCode::CREATED, Json(find_view(&state, &name))))
}

#[utoipa::path(
    operation_id = "rules_replace",
    put,
    path = "/admin/api/rules/{name}",
    tag = "rules",
    summary = "Create or replace a rule",
    params(("name" = String, Path, description = "Rule name.", example = "demo")),
    request_body = fastgate_config::RuleConfig,
    responses(
        (status = 200, description = "Replaced.", body = crate::schemas::RuleView),
        (status = 201, description = "Created.", body = crate::schemas::RuleView),
        (status = 400, description = "Invalid input; the message names the field.", body = crate::schemas::ErrorBody),
        (status = 409, description = "The rule belongs to the config file (read-only).", body = crate::schemas::ErrorBody),
    )
)]
pub async fn replace(
    State(state): State<AppState>,
    actor: Actor,
    Path(name): Path<String>,
    Body(body): Body<Value>,
) -> Result<impl IntoResponse, AdminError> {
    validate::name("name", &name, MAX_NAME)?;
    let rule = parse_rule(body)?;
    if rule.name != name {
        return Err(AdminError::BadRequest(format!(
            "the body names rule '{}', the path '{name}'",
            rule.name
        )));
    }
    let change = Change::PutRule {
        rule,
        must_be_new: false,
    };
    let planned = apply(&state, &actor, change).await?;
    Ok((saved_status(planned.action), Json(find_view(&state, &name))))
}

#[utoipa::path(
    operation_id = "rules_delete",
    delete,
    path = "/admin/api/rules/{name}",
    tag = "rules",
    summary = "Delete a rule",
    params(("name" = String, Path, description = "Rule name.", example = "demo")),
    responses(
        (status = 200, description = "Deleted.", body = crate::schemas::Deleted),
        (status = 400, description = "Invalid input; the message names the field.", body = crate::schemas::ErrorBody),
        (status = 404, description = "No such rule.", body = crate::schemas::ErrorBody),
        (status = 409, description = "The rule belongs to the config file (read-only).", body = crate::schemas::ErrorBody),
    )
)]
pub async fn delete(
    State(state): State<AppState>,
    actor: Actor,
    Path(name): Path<String>,
) -> Result<impl IntoResponse, AdminError> {
    validate::name("name", &name, MAX_NAME)?;
    apply(&state, &actor, Change::DeleteRule(name.clone())).await?;
    Ok(Json(json!({ "deleted": name })))
}

#[derive(Debug, Default, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = RuleToggleInput)]
struct ToggleInput {
    enabled: Option<bool>,
}

/// `POST /rules/{name}/toggle`: flip `enabled`, or set it with `{"enabled": bool}`.
#[utoipa::path(
    operation_id = "rules_toggle",
    post,
    path = "/admin/api/rules/{name}/toggle",
    tag = "rules",
    summary = "Switch a rule on or off",
    description = "Flips `enabled`, or sets it with `{\"enabled\": bool}` (the body may be empty).",
    params(("name" = String, Path, description = "Rule name.", example = "demo")),
    request_body = Option<ToggleInput>,
    responses(
        (status = 200, description = "The rule.", body = crate::schemas::RuleView),
        (status = 400, description = "Invalid input; the message names the field.", body = crate::schemas::ErrorBody),
        (status = 404, description = "No such rule.", body = crate::schemas::ErrorBody),
        (status = 409, description = "The rule belongs to the config file (read-only).", body = crate::schemas::ErrorBody),
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
    let change = Change::ToggleRule {
        name: name.clone(),
        enabled: input.enabled,
    };
    apply(&state, &actor, change).await?;
    Ok(Json(find_view(&state, &name)))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_yaml_shapes_from_json() {
        let rule = parse_rule(json!({
            "name": "out-of-quota",
            "upstreams": ["openai-main"],
            "when": { "any": [ { "status": [402, "500-599"] },
                               { "body_contains": "insufficient_quota" } ] },
            "threshold": { "hits": 2, "within": "30s" },
            "cooldown": "5m",
            "actions": [ { "disable": "10m" }, { "alert": ["ops"] }, { "log": true } ],
            "source": "api",
            "recent_events": []
        }))
        .unwrap();
        assert_eq!(rule.threshold.hits, 2);
        assert_eq!(
            rule.actions[0],
            fastgate_config::ActionConfig::Disable(std::time::Duration::from_secs(600))
        );
        // Shown as it was written.
        let shown = rule_view(&rule, Source::Api);
        assert_eq!(shown["actions"][0], json!({ "disable": "10m" }));
        assert_eq!(shown["threshold"]["within"], "30s");
    }

    #[test]
    fn names_the_field_that_does_not_parse() {
        let cases = [
            (
                json!({ "name": "r", "when": { "status": 401 }, "actions": [ { "disable": "soon" } ] }),
                "actions[0].disable",
            ),
            (
                json!({ "name": "r", "when": { "status": 401 }, "actions": [ { "pause": "1m" } ] }),
                "actions[0].pause",
            ),
            (
                json!({ "name": "r", "when": { "statuz": 401 }, "actions": [ { "log": true } ] }),
                "when.statuz",
            ),
            (
                json!({ "name": "r", "when": { "status": 401 }, "actions": [ { "log": true } ],
                        "threshold": { "hits": "many" } }),
                "threshold.hits",
            ),
        ];
        for (body, path) in cases {
            let msg = parse_rule(body.clone()).unwrap_err().to_string();
            assert!(msg.starts_with(&format!("{path}: ")), "{body}: {msg}");
        }
        let msg = parse_rule(json!({ "name": "", "when": { "status": 401 }, "actions": [] }))
            .unwrap_err()
            .to_string();
        assert!(msg.starts_with("name:"), "{msg}");
        let msg = parse_rule(json!([1])).unwrap_err().to_string();
        assert!(msg.starts_with("request body"), "{msg}");
    }
}
