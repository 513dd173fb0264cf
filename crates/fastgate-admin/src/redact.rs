//! What the admin API shows of the configuration: the values of headers and body
//! fields the gateway adds upstream are replaced by `[redacted]` (they often
//! carry provider keys or tenant secrets); their names stay visible.
//! Credentials and the database URL are `Secret`s and redact themselves.

use serde_json::{Map, Value};

pub const REDACTED: &str = "[redacted]";

/// Replace every value of the object at `obj[field]` (if it is one).
fn redact_values(obj: &mut Map<String, Value>, field: &str) {
    if let Some(Value::Object(map)) = obj.get_mut(field) {
        for v in map.values_mut() {
            *v = Value::String(REDACTED.into());
        }
    }
}

/// `add_headers` and `add_body_fields` of a route, upstream or deployment.
fn redact_transforms(obj: &mut Map<String, Value>) {
    redact_values(obj, "add_headers");
    redact_values(obj, "add_body_fields");
}

fn each_object(v: Option<&mut Value>) -> impl Iterator<Item = &mut Map<String, Value>> {
    v.and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
        .filter_map(Value::as_object_mut)
}

/// A model group as the admin API shows it.
pub fn model_group(v: &mut Value) {
    if let Some(group) = v.as_object_mut() {
        for dep in each_object(group.get_mut("deployments")) {
            redact_transforms(dep);
        }
    }
}

fn redact_upstream(up: &mut Map<String, Value>) {
    redact_values(up, "headers");
    redact_transforms(up);
}

fn redact_route(route: &mut Map<String, Value>) {
    redact_transforms(route);
    // Match conditions stay readable, except on credential-like header names.
    if let Some(Value::Object(headers)) = route.get_mut("match").and_then(|m| m.get_mut("headers"))
    {
        for (name, value) in headers.iter_mut() {
            if fastgate_proxy::headers::is_secret_header(&name.to_ascii_lowercase()) {
                *value = Value::String(REDACTED.into());
            }
        }
    }
}

/// An upstream as the admin API shows it (its keys are already `key_hint`s).
pub fn upstream(v: &mut Value) {
    if let Some(up) = v.as_object_mut() {
        redact_upstream(up);
    }
}

/// A route as the admin API shows it.
pub fn route(v: &mut Value) {
    if let Some(r) = v.as_object_mut() {
        redact_route(r);
    }
}

/// The whole effective configuration as `GET /admin/api/config` shows it.
pub fn config(v: &mut Value) {
    let Some(root) = v.as_object_mut() else {
        return;
    };
    for up in each_object(root.get_mut("upstreams")) {
        redact_upstream(up);
    }
    for route in each_object(root.get_mut("routes")) {
        redact_route(route);
    }
    if let Some(Value::Array(models)) = root.get_mut("models") {
        models.iter_mut().for_each(model_group);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn hides_values_keeps_names() {
        let mut v = json!({
            "upstreams": [ { "name": "u", "headers": { "x-tenant-key": "c1" },
                             "add_headers": { "x-a": "c2" }, "add_body_fields": { "user": { "id": "c3" } },
                             "remove_headers": ["x-debug"] } ],
            "routes": [ { "name": "r", "add_headers": { "x-b": "c4" }, "add_body_fields": { "k": "c5" },
                          "match": { "path": "/a", "headers": { "x-shared-secret": "c6", "x-tenant": "visible" } },
                          "audit": { "headers": true } } ],
            "models": [ { "name": "m", "deployments": [ { "model": "x", "add_headers": { "x-c": "c7" },
                                                           "add_body_fields": { "k": "c8" } } ] } ]
        });
        config(&mut v);
        let text = v.to_string();
        for c in ["c1", "c2", "c3", "c4", "c5", "c6", "c7", "c8"] {
            assert!(!text.contains(&format!("\"{c}\"")), "{c} in {text}");
        }
        assert_eq!(v["upstreams"][0]["headers"]["x-tenant-key"], REDACTED);
        assert_eq!(v["upstreams"][0]["add_body_fields"]["user"], REDACTED);
        assert_eq!(v["upstreams"][0]["remove_headers"][0], "x-debug");
        assert_eq!(v["routes"][0]["match"]["headers"]["x-tenant"], "visible");
        assert_eq!(v["routes"][0]["audit"]["headers"], true);
        assert_eq!(v["models"][0]["deployments"][0]["model"], "x");
    }
}
