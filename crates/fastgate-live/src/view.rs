//! What the admin API and the CLI show of upstreams, provider keys, routes and rules:
//! the config file's shape plus `source`, provider keys replaced by `key_hint`.
//! (Values of added headers and body fields are redacted by the caller.)

use fastgate_config::{Config, RouteConfig, RuleConfig, UpstreamConfig};
use serde::Serialize;
use serde_json::Value;

use crate::LiveObjects;

/// Where an object is defined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// The YAML file: read-only through the API.
    Config,
    /// The database, through the admin API or the CLI.
    Api,
}

/// A provider key as listings show it: never the key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct CredentialView {
    pub upstream: String,
    pub name: String,
    pub weight: u32,
    pub key_hint: String,
    pub source: Source,
    /// Daily limits, when set.
    #[serde(skip_serializing_if = "fastgate_config::CredentialQuota::is_unset")]
    pub quota: fastgate_config::CredentialQuota,
}

/// The provider keys of upstream `name`: the file's, then the API's.
pub fn credential_views(file: &Config, live: &LiveObjects, name: &str) -> Vec<CredentialView> {
    let from_file = file
        .upstreams
        .iter()
        .filter(|u| u.name == name)
        .flat_map(|u| &u.credentials)
        .map(|c| CredentialView {
            upstream: name.to_owned(),
            name: c.name.clone(),
            weight: c.weight,
            key_hint: fastgate_upstream::key_hint(c.key.expose()),
            source: Source::Config,
            quota: c.quota.clone(),
        });
    let from_api = live
        .credentials
        .iter()
        .filter(|c| c.upstream == name)
        .map(|c| CredentialView {
            upstream: name.to_owned(),
            name: c.name.clone(),
            weight: c.weight,
            key_hint: c.key_hint.clone(),
            source: Source::Api,
            quota: c.quota.clone(),
        });
    from_file.chain(from_api).collect()
}

/// An upstream with its provider keys (as [`CredentialView`]s) and its source.
pub fn upstream_view(u: &UpstreamConfig, source: Source, credentials: &[CredentialView]) -> Value {
    let mut v = serde_json::to_value(u).unwrap_or(Value::Null);
    if let Some(obj) = v.as_object_mut() {
        obj.insert(
            "credentials".into(),
            serde_json::to_value(credentials).unwrap_or(Value::Null),
        );
        obj.insert(
            "source".into(),
            serde_json::to_value(source).unwrap_or(Value::Null),
        );
    }
    v
}

/// A route in the file's shape plus its source.
pub fn route_view(r: &RouteConfig, source: Source) -> Value {
    with_source(serde_json::to_value(r).unwrap_or(Value::Null), source)
}

/// A credential health rule in the file's shape (`actions: [{disable: 10m}]`)
/// plus its source.
pub fn rule_view(r: &RuleConfig, source: Source) -> Value {
    with_source(serde_json::to_value(r).unwrap_or(Value::Null), source)
}

fn with_source(mut v: Value, source: Source) -> Value {
    if let Some(obj) = v.as_object_mut() {
        obj.insert(
            "source".into(),
            serde_json::to_value(source).unwrap_or(Value::Null),
        );
    }
    v
}
