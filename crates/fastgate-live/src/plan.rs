//! Planning a change: check it against the file (read-only objects, names) and
//! the current API objects (existence, use), build the next set of objects and
//! the merged configuration, and validate it with `fastgate check`'s rules.
//! Nothing is stored here: a refused plan changes nothing.

use fastgate_config::{Config, RouteConfig, RuleConfig, Secret, UpstreamConfig};
use serde_json::Value;

use crate::objects::LiveCredential;
use crate::view::{Source, credential_views, route_view, upstream_view};
use crate::{LiveError, LiveObjects, merge};

/// A provider key as given to a change; `key` may be left out when the key
/// already exists (only its weight changes).
#[derive(Debug, Clone, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CredentialInput {
    pub name: String,
    #[serde(default)]
    #[schema(value_type = Option<String>, format = Password)]
    pub key: Option<Secret<String>>,
    #[serde(default)]
    pub weight: Option<u32>,
    /// Daily limits; kept as they were when not given.
    #[serde(default)]
    pub quota: Option<fastgate_config::CredentialQuota>,
}

/// One change to the API-managed objects.
#[derive(Debug, Clone)]
pub enum Change {
    /// Create (`must_be_new`) or create-or-replace an upstream. `credentials` are
    /// created or updated with it; the upstream's other stored keys are kept.
    PutUpstream {
        spec: UpstreamConfig,
        credentials: Vec<CredentialInput>,
        must_be_new: bool,
    },
    DeleteUpstream(String),
    PutCredential {
        upstream: String,
        credential: CredentialInput,
        must_be_new: bool,
    },
    DeleteCredential {
        upstream: String,
        name: String,
    },
    PutRoute {
        spec: RouteConfig,
        must_be_new: bool,
    },
    DeleteRoute(String),
    /// Set a route's `active` flag, or flip it when `active` is `None`.
    ToggleRoute {
        name: String,
        active: Option<bool>,
    },
    /// Create (`must_be_new`) or create-or-replace a credential health rule.
    PutRule {
        rule: RuleConfig,
        must_be_new: bool,
    },
    DeleteRule(String),
    /// Set a rule's `enabled` flag, or flip it when `enabled` is `None`.
    ToggleRule {
        name: String,
        enabled: Option<bool>,
    },
}

/// What to write to the store.
#[derive(Debug, Clone)]
pub(crate) enum Write {
    Upstream {
        spec: UpstreamConfig,
        credentials: Vec<LiveCredential>,
    },
    DeleteUpstream(String),
    Credential(LiveCredential),
    DeleteCredential {
        upstream: String,
        name: String,
    },
    Route(RouteConfig),
    DeleteRoute(String),
    Rule(RuleConfig),
    DeleteRule(String),
}

/// A checked change: the objects and configuration after it, and what it
/// changes (for the admin audit trail and the response).
#[derive(Debug, Clone)]
pub struct Planned {
    pub next: LiveObjects,
    /// The file plus `next`, validated.
    pub merged: Config,
    /// `create`, `update`, `delete` or `toggle`.
    pub action: &'static str,
    /// `upstream`, `credential`, `route` or `rule`.
    pub kind: &'static str,
    /// The object's name (`upstream/name` for a credential).
    pub name: String,
    /// The object as listings show it, before and after (None when absent).
    pub before: Option<Value>,
    pub after: Option<Value>,
    pub(crate) write: Write,
}

pub(crate) fn file_owned(kind: &str, name: &str) -> LiveError {
    LiveError::Conflict(format!(
        "{kind} '{name}' is defined in the configuration file and is read-only through the API: edit the file and reload"
    ))
}

/// Check `change` against the file and the current API objects.
pub fn plan(file: &Config, live: &LiveObjects, change: Change) -> Result<Planned, LiveError> {
    let planned = match change {
        Change::PutUpstream {
            spec,
            credentials,
            must_be_new,
        } => put_upstream(file, live, spec, credentials, must_be_new)?,
        Change::DeleteUpstream(name) => delete_upstream(file, live, &name)?,
        Change::PutCredential {
            upstream,
            credential,
            must_be_new,
        } => put_credential(file, live, &upstream, credential, must_be_new)?,
        Change::DeleteCredential { upstream, name } => {
            delete_credential(file, live, &upstream, &name)?
        }
        Change::PutRoute { spec, must_be_new } => put_route(file, live, spec, must_be_new)?,
        Change::DeleteRoute(name) => delete_route(file, live, &name)?,
        Change::ToggleRoute { name, active } => toggle_route(file, live, &name, active)?,
        Change::PutRule { rule, must_be_new } => {
            crate::plan_rules::put_rule(file, live, rule, must_be_new)?
        }
        Change::DeleteRule(name) => crate::plan_rules::delete_rule(file, live, &name)?,
        Change::ToggleRule { name, enabled } => {
            crate::plan_rules::toggle_rule(file, live, &name, enabled)?
        }
    };
    Ok(planned)
}

/// Merge and validate `next`; the error names the field, with the object's name
/// in place of its position in the merged lists (`routes[my-route].upstream`).
pub(crate) fn checked(file: &Config, next: &LiveObjects) -> Result<Config, LiveError> {
    let merged = merge(file, next)?;
    if let Err(e) = fastgate_config::validate(&merged) {
        return Err(match LiveError::from(e) {
            LiveError::Invalid { path, message } => LiveError::Invalid {
                path: named_path(&merged, &path),
                message,
            },
            other => other,
        });
    }
    Ok(merged)
}

/// `routes[3].x` -> `routes[<name of routes[3]>].x` (same for upstreams, models
/// and rules).
fn named_path(cfg: &Config, path: &str) -> String {
    let Some((section, rest)) = path.split_once('[') else {
        return path.to_owned();
    };
    let Some((index, tail)) = rest.split_once(']') else {
        return path.to_owned();
    };
    let Ok(i) = index.parse::<usize>() else {
        return path.to_owned();
    };
    let name = match section {
        "upstreams" => cfg.upstreams.get(i).map(|u| u.name.as_str()),
        "routes" => cfg.routes.get(i).map(|r| r.name.as_str()),
        "models" => cfg.models.get(i).map(|m| m.name.as_str()),
        "rules" => cfg.rules.get(i).map(|r| r.name.as_str()),
        _ => None,
    };
    match name {
        Some(name) => format!("{section}[{name}]{tail}"),
        None => path.to_owned(),
    }
}

fn upstream_snapshot(file: &Config, live: &LiveObjects, name: &str) -> Option<Value> {
    let u = live.upstreams.iter().find(|u| u.name == name)?;
    Some(upstream_view(
        u,
        Source::Api,
        &credential_views(file, live, name),
    ))
}

fn credential_snapshot(
    file: &Config,
    live: &LiveObjects,
    upstream: &str,
    name: &str,
) -> Option<Value> {
    credential_views(file, live, upstream)
        .into_iter()
        .find(|c| c.name == name && c.source == Source::Api)
        .and_then(|c| serde_json::to_value(c).ok())
}

/// The key of a credential input: the given one, or the stored one when the
/// credential exists already.
fn credential_of(
    upstream: &str,
    input: CredentialInput,
    existing: Option<&LiveCredential>,
) -> Result<LiveCredential, LiveError> {
    let key = match (input.key, existing) {
        (Some(key), _) => key,
        (None, Some(old)) => old.key.clone(),
        (None, None) => {
            return Err(LiveError::invalid(
                format!("credentials[{}].key", input.name),
                "required for a new credential",
            ));
        }
    };
    if key.expose().is_empty() {
        return Err(LiveError::invalid(
            format!("credentials[{}].key", input.name),
            "must not be empty",
        ));
    }
    Ok(LiveCredential {
        upstream: upstream.to_owned(),
        key_hint: fastgate_upstream::key_hint(key.expose()),
        weight: input.weight.or(existing.map(|c| c.weight)).unwrap_or(1),
        quota: input
            .quota
            .or_else(|| existing.map(|c| c.quota.clone()))
            .unwrap_or_default(),
        name: input.name,
        key,
    })
}

fn put_upstream(
    file: &Config,
    live: &LiveObjects,
    mut spec: UpstreamConfig,
    credentials: Vec<CredentialInput>,
    must_be_new: bool,
) -> Result<Planned, LiveError> {
    let name = spec.name.clone();
    if file.upstreams.iter().any(|u| u.name == name) {
        return Err(file_owned("upstream", &name));
    }
    let exists = live.upstreams.iter().any(|u| u.name == name);
    if must_be_new && exists {
        return Err(LiveError::Conflict(format!(
            "upstream '{name}' already exists"
        )));
    }
    spec.credentials.clear();
    let mut next = live.clone();
    next.upstreams.retain(|u| u.name != name);
    next.upstreams.push(spec.clone());
    let mut written = Vec::with_capacity(credentials.len());
    for input in credentials {
        let existing = live
            .credentials
            .iter()
            .find(|c| c.upstream == name && c.name == input.name);
        let c = credential_of(&name, input, existing)?;
        next.credentials
            .retain(|o| !(o.upstream == c.upstream && o.name == c.name));
        next.credentials.push(c.clone());
        written.push(c);
    }
    let merged = checked(file, &next)?;
    Ok(Planned {
        before: upstream_snapshot(file, live, &name),
        after: upstream_snapshot(file, &next, &name),
        next,
        merged,
        action: if exists { "update" } else { "create" },
        kind: "upstream",
        name,
        write: Write::Upstream {
            spec,
            credentials: written,
        },
    })
}

/// Names of the routes, model groups and rules (file and API) that use `upstream`.
fn users_of(file: &Config, live: &LiveObjects, upstream: &str) -> Vec<String> {
    let routes = file
        .routes
        .iter()
        .chain(&live.routes)
        .filter(|r| r.upstream == upstream)
        .map(|r| format!("route '{}'", r.name));
    let models = file
        .models
        .iter()
        .chain(&live.models)
        .filter(|m| m.deployments.iter().any(|d| d.upstream == upstream))
        .map(|m| format!("model '{}'", m.name));
    let rules = file
        .rules
        .iter()
        .chain(&live.rules)
        .filter(|r| r.upstreams.iter().any(|u| u == upstream))
        .map(|r| format!("rule '{}'", r.name));
    routes.chain(models).chain(rules).collect()
}

fn delete_upstream(file: &Config, live: &LiveObjects, name: &str) -> Result<Planned, LiveError> {
    if file.upstreams.iter().any(|u| u.name == name) {
        return Err(file_owned("upstream", name));
    }
    if !live.upstreams.iter().any(|u| u.name == name) {
        return Err(LiveError::NotFound(format!("upstream '{name}'")));
    }
    let users = users_of(file, live, name);
    if !users.is_empty() {
        return Err(LiveError::Conflict(format!(
            "upstream '{name}' is in use by {}: change or delete them first",
            users.join(", ")
        )));
    }
    let mut next = live.clone();
    next.upstreams.retain(|u| u.name != name);
    next.credentials.retain(|c| c.upstream != name);
    let merged = checked(file, &next)?;
    Ok(Planned {
        before: upstream_snapshot(file, live, name),
        after: None,
        next,
        merged,
        action: "delete",
        kind: "upstream",
        name: name.to_owned(),
        write: Write::DeleteUpstream(name.to_owned()),
    })
}

fn upstream_exists(file: &Config, live: &LiveObjects, name: &str) -> Result<(), LiveError> {
    let known = file
        .upstreams
        .iter()
        .chain(&live.upstreams)
        .any(|u| u.name == name);
    if known {
        Ok(())
    } else {
        Err(LiveError::NotFound(format!("upstream '{name}'")))
    }
}

fn file_credential(file: &Config, upstream: &str, name: &str) -> bool {
    file.upstreams
        .iter()
        .filter(|u| u.name == upstream)
        .any(|u| u.credentials.iter().any(|c| c.name == name))
}

fn put_credential(
    file: &Config,
    live: &LiveObjects,
    upstream: &str,
    input: CredentialInput,
    must_be_new: bool,
) -> Result<Planned, LiveError> {
    upstream_exists(file, live, upstream)?;
    let full = format!("{upstream}/{}", input.name);
    if file_credential(file, upstream, &input.name) {
        return Err(file_owned("credential", &full));
    }
    let existing = live
        .credentials
        .iter()
        .find(|c| c.upstream == upstream && c.name == input.name);
    if must_be_new && existing.is_some() {
        return Err(LiveError::Conflict(format!(
            "credential '{full}' already exists"
        )));
    }
    let c = credential_of(upstream, input, existing)?;
    let mut next = live.clone();
    next.credentials
        .retain(|o| !(o.upstream == c.upstream && o.name == c.name));
    next.credentials.push(c.clone());
    let merged = checked(file, &next)?;
    Ok(Planned {
        before: credential_snapshot(file, live, upstream, &c.name),
        after: credential_snapshot(file, &next, upstream, &c.name),
        next,
        merged,
        action: if existing.is_some() {
            "update"
        } else {
            "create"
        },
        kind: "credential",
        name: full,
        write: Write::Credential(c),
    })
}

fn delete_credential(
    file: &Config,
    live: &LiveObjects,
    upstream: &str,
    name: &str,
) -> Result<Planned, LiveError> {
    let full = format!("{upstream}/{name}");
    if file_credential(file, upstream, name) {
        return Err(file_owned("credential", &full));
    }
    if !live
        .credentials
        .iter()
        .any(|c| c.upstream == upstream && c.name == name)
    {
        return Err(LiveError::NotFound(format!("credential '{full}'")));
    }
    let mut next = live.clone();
    next.credentials
        .retain(|c| !(c.upstream == upstream && c.name == name));
    let merged = checked(file, &next)?;
    Ok(Planned {
        before: credential_snapshot(file, live, upstream, name),
        after: None,
        next,
        merged,
        action: "delete",
        kind: "credential",
        name: full,
        write: Write::DeleteCredential {
            upstream: upstream.to_owned(),
            name: name.to_owned(),
        },
    })
}

fn route_snapshot(live: &LiveObjects, name: &str) -> Option<Value> {
    live.routes
        .iter()
        .find(|r| r.name == name)
        .map(|r| route_view(r, Source::Api))
}

/// Names the passthrough routes take (`proxy:{upstream}`).
const RESERVED_ROUTE_PREFIX: &str = "proxy:";

fn put_route(
    file: &Config,
    live: &LiveObjects,
    spec: RouteConfig,
    must_be_new: bool,
) -> Result<Planned, LiveError> {
    let name = spec.name.clone();
    if name.starts_with(RESERVED_ROUTE_PREFIX) {
        return Err(LiveError::invalid(
            "name",
            "names starting with 'proxy:' belong to the passthrough routes",
        ));
    }
    if file.routes.iter().any(|r| r.name == name) {
        return Err(file_owned("route", &name));
    }
    let exists = live.routes.iter().any(|r| r.name == name);
    if must_be_new && exists {
        return Err(LiveError::Conflict(format!(
            "route '{name}' already exists"
        )));
    }
    let mut next = live.clone();
    next.routes.retain(|r| r.name != name);
    next.routes.push(spec.clone());
    let merged = checked(file, &next)?;
    Ok(Planned {
        before: route_snapshot(live, &name),
        after: route_snapshot(&next, &name),
        next,
        merged,
        action: if exists { "update" } else { "create" },
        kind: "route",
        name,
        write: Write::Route(spec),
    })
}

fn api_route<'a>(
    file: &Config,
    live: &'a LiveObjects,
    name: &str,
) -> Result<&'a RouteConfig, LiveError> {
    if file.routes.iter().any(|r| r.name == name) {
        return Err(file_owned("route", name));
    }
    live.routes
        .iter()
        .find(|r| r.name == name)
        .ok_or_else(|| LiveError::NotFound(format!("route '{name}'")))
}

fn delete_route(file: &Config, live: &LiveObjects, name: &str) -> Result<Planned, LiveError> {
    api_route(file, live, name)?;
    let mut next = live.clone();
    next.routes.retain(|r| r.name != name);
    let merged = checked(file, &next)?;
    Ok(Planned {
        before: route_snapshot(live, name),
        after: None,
        next,
        merged,
        action: "delete",
        kind: "route",
        name: name.to_owned(),
        write: Write::DeleteRoute(name.to_owned()),
    })
}

fn toggle_route(
    file: &Config,
    live: &LiveObjects,
    name: &str,
    active: Option<bool>,
) -> Result<Planned, LiveError> {
    let mut route = api_route(file, live, name)?.clone();
    route.active = active.unwrap_or(!route.active);
    let mut next = live.clone();
    if let Some(r) = next.routes.iter_mut().find(|r| r.name == name) {
        *r = route.clone();
    }
    let merged = checked(file, &next)?;
    Ok(Planned {
        before: route_snapshot(live, name),
        after: route_snapshot(&next, name),
        next,
        merged,
        action: "toggle",
        kind: "route",
        name: name.to_owned(),
        write: Write::Route(route),
    })
}
