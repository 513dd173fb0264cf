//! Checks on admin input before it reaches the database: lengths, no control
//! characters (PostgreSQL cannot store U+0000 in text; control characters in
//! names and labels garble logs and terminals). A failure is a 400 that names
//! the field.

use axum::Json;
use axum::extract::{FromRequest, Request};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::AdminError;

/// Longest key name, route name or id accepted.
pub const MAX_NAME: usize = 128;
/// Longest free-text label (`source`) or model pattern accepted.
pub const MAX_LABEL: usize = 256;
/// Most entries accepted in a list field (`allowed_routes`, `allowed_models`).
pub const MAX_ITEMS: usize = 256;

/// `value` is at most `max` bytes and has no control character.
pub fn text(field: &str, value: &str, max: usize) -> Result<(), AdminError> {
    if value.len() > max {
        return Err(AdminError::field(field, format!("longer than {max} bytes")));
    }
    if value.chars().any(char::is_control) {
        return Err(AdminError::field(
            field,
            "contains a control character (U+0000-U+001F or U+007F-U+009F)",
        ));
    }
    Ok(())
}

/// Like [`text`], and not empty or blank.
pub fn name(field: &str, value: &str, max: usize) -> Result<(), AdminError> {
    if value.trim().is_empty() {
        return Err(AdminError::field(field, "must not be empty"));
    }
    text(field, value, max)
}

/// At most [`MAX_ITEMS`] entries, each a valid [`name`] of at most `max` bytes.
pub fn names(field: &str, values: &[String], max: usize) -> Result<(), AdminError> {
    if values.len() > MAX_ITEMS {
        return Err(AdminError::field(
            field,
            format!("more than {MAX_ITEMS} entries"),
        ));
    }
    for (i, v) in values.iter().enumerate() {
        name(&format!("{field}[{i}]"), v, max)?;
    }
    Ok(())
}

/// The path of the first string (object key or value) in `v` that contains U+0000.
pub fn find_nul(v: &Value, path: &str) -> Option<String> {
    match v {
        Value::String(s) => s.contains('\0').then(|| path.to_string()),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, item)| find_nul(item, &format!("{path}[{i}]"))),
        Value::Object(map) => map.iter().find_map(|(k, item)| {
            let p = if path.is_empty() {
                k.clone()
            } else {
                format!("{path}.{k}")
            };
            if k.contains('\0') {
                Some(p)
            } else {
                find_nul(item, &p)
            }
        }),
        _ => None,
    }
}

/// A JSON request body; a body that does not parse (or has an unknown field) is
/// a 400 in the admin API's error shape, with serde's message naming the field.
pub struct Body<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Body<T> {
    type Rejection = AdminError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(Body(v)),
            Err(rejection) => Err(AdminError::BadRequest(format!(
                "request body: {}",
                rejection.body_text()
            ))),
        }
    }
}

/// An optional JSON body: empty (or only whitespace) gives the default.
pub fn optional_json<T: Default + DeserializeOwned>(body: &[u8]) -> Result<T, AdminError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body).map_err(|e| AdminError::BadRequest(format!("request body: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_control_characters_and_long_text() {
        assert!(text("source", "team a", MAX_LABEL).is_ok());
        let e = text("source", "a\u{0}b", MAX_LABEL)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("source:"), "{e}");
        assert!(text("source", "a\nb", MAX_LABEL).is_err());
        assert!(text("source", "a\u{85}b", MAX_LABEL).is_err());
        assert!(text("source", &"x".repeat(MAX_LABEL + 1), MAX_LABEL).is_err());
        assert!(name("name", "  ", MAX_NAME).is_err());
        let e = names("allowed_routes", &["ok".into(), "b\u{0}".into()], MAX_NAME)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("allowed_routes[1]:"), "{e}");
    }

    #[test]
    fn finds_nul_anywhere() {
        let v = serde_json::json!({ "name": "m", "deployments": [ { "model": "x\u{0}" } ] });
        assert_eq!(find_nul(&v, "").as_deref(), Some("deployments[0].model"));
        assert_eq!(find_nul(&serde_json::json!({ "a": ["b"] }), ""), None);
    }
}
