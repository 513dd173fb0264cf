//! Printing the live-configuration commands' results: the admin API's JSON
//! shapes with `--json`, readable tables otherwise.

use serde_json::Value;

/// A list as the admin API returns it.
pub fn print_list(items: &[Value], json: bool, row: impl Fn(&Value) -> String, header: &str) {
    if json {
        println!("{}", serde_json::json!({ "object": "list", "data": items }));
    } else {
        println!("{header}");
        for item in items {
            println!("{}", row(item));
        }
    }
}

/// One object: compact JSON, or pretty JSON for reading.
pub fn print_object(v: &Value, json: bool) {
    if json {
        println!("{v}");
    } else {
        println!(
            "{}",
            serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string())
        );
    }
}

/// The result of a change: the object after it (JSON) or one line of text.
pub fn print_done(json: bool, after: Option<&Value>, kind: &str, name: &str, action: &str) {
    if json {
        let v = match after {
            Some(v) if !v.is_null() => v.clone(),
            _ => serde_json::json!({ "object": kind, "name": name, "action": action }),
        };
        println!("{v}");
    } else {
        println!("{action} {kind} '{name}'");
    }
}

/// A string field, or `-`.
pub fn text(v: &Value, field: &str) -> String {
    match &v[field] {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

/// Past tense of a planned action, for messages.
pub fn done(action: &str) -> &str {
    match action {
        "create" => "created",
        "update" => "updated",
        "delete" => "deleted",
        "toggle" => "toggled",
        other => other,
    }
}
