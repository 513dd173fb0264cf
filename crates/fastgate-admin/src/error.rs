//! Admin API errors, mapped to HTTP in one place.
//!
//! A database error never reaches a response body: the detail is logged once on
//! the server, the client gets a fixed message (503 when the database is
//! unreachable or busy, 500 otherwise).

use axum::Json;
use axum::response::{IntoResponse, Response};
use fastgate_store::StoreError;
use http::StatusCode;

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("admin token required: send 'Authorization: Bearer <admin token>'")]
    Unauthorized,
    /// Authenticated, but this request may not proceed (e.g. a UI session's change
    /// without its CSRF token).
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    /// The database is unreachable or overloaded; worth retrying.
    #[error("the database is unavailable; try again shortly")]
    Unavailable,
    /// Any other storage failure; the detail is in the server log.
    #[error("internal storage error (details are in the server log)")]
    Storage,
    /// A failure inside the gateway that is not the database's; the detail is in the
    /// server log.
    #[error("internal error (details are in the server log)")]
    Internal,
}

impl AdminError {
    pub(crate) fn status(&self) -> StatusCode {
        match self {
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::Storage | Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// A 400 naming the offending field.
    pub fn field(field: &str, problem: impl std::fmt::Display) -> Self {
        Self::BadRequest(format!("{field}: {problem}"))
    }
}

impl From<StoreError> for AdminError {
    fn from(e: StoreError) -> Self {
        match e {
            // The constraint name is the database's wording: keep it in the log.
            StoreError::Conflict(_) => {
                tracing::debug!(error = %e, "admin change refused by a unique constraint");
                Self::Conflict("already exists: the name or id is in use".into())
            }
            // A number the client sent that the database cannot hold (a `u64`
            // above `i64::MAX`): the client's input, not the database's state.
            StoreError::OutOfRange { field, .. } => {
                Self::BadRequest(format!("{field}: must be at most {}", i64::MAX))
            }
            e if e.is_transient() => {
                tracing::warn!(error = %e, "admin request: database unavailable");
                Self::Unavailable
            }
            e => {
                tracing::error!(error = %e, "admin request: storage error");
                Self::Storage
            }
        }
    }
}

impl IntoResponse for AdminError {
    fn into_response(self) -> Response {
        let status = self.status();
        let body = serde_json::json!({
            "error": { "message": self.to_string(), "type": "admin_error", "code": status.as_u16() }
        });
        let mut resp = (status, Json(body)).into_response();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            resp.headers_mut().insert(
                http::header::RETRY_AFTER,
                http::HeaderValue::from_static("1"),
            );
        }
        resp
    }
}

/// Largest plain-text error body rewritten by [`json_errors`].
const MAX_REJECTION_TEXT: usize = 16 * 1024;

/// Axum's extractor rejections (a query string or a path segment that does not
/// parse) answer in plain text; in the admin API every error has the one JSON
/// shape, so such an answer is rewritten with its text as the message. Status
/// and other headers are kept.
pub(crate) async fn json_errors(resp: Response) -> Response {
    let status = resp.status();
    let is_json = resp
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return resp;
    }
    let (mut parts, body) = resp.into_parts();
    let text = axum::body::to_bytes(body, MAX_REJECTION_TEXT)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_owned())
        .unwrap_or_default();
    let message = if text.is_empty() {
        status.canonical_reason().unwrap_or("error").to_owned()
    } else {
        text
    };
    let body = serde_json::json!({
        "error": { "message": message, "type": "admin_error", "code": status.as_u16() }
    });
    parts.headers.remove(http::header::CONTENT_LENGTH);
    let mut resp = Json(body).into_response();
    *resp.status_mut() = status;
    for (name, value) in parts.headers.iter() {
        if name != http::header::CONTENT_TYPE {
            resp.headers_mut().insert(name.clone(), value.clone());
        }
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn store_errors_never_reach_the_body() {
        let raw = "ERROR: invalid byte sequence for encoding \"UTF8\": 0x00 (secret-ish detail)";
        let cases = [
            (StoreError::Corrupt(raw.into()), 500),
            (StoreError::InvalidUrl(raw.into()), 500),
            (StoreError::Conflict(raw.into()), 409),
            (StoreError::Io(std::io::Error::other(raw)), 503),
        ];
        for (e, status) in cases {
            let resp = AdminError::from(e).into_response();
            assert_eq!(resp.status().as_u16(), status);
            let body = axum::body::to_bytes(resp.into_body(), 4096).await.unwrap();
            let text = String::from_utf8_lossy(&body);
            assert!(!text.contains("0x00") && !text.contains("UTF8"), "{text}");
            assert!(text.contains("admin_error"), "{text}");
        }
    }

    #[test]
    fn numbers_the_database_cannot_hold_are_the_clients_error() {
        let e = AdminError::from(StoreError::OutOfRange {
            field: "tokens_per_minute",
            value: u64::MAX.to_string(),
        });
        assert_eq!(e.status(), StatusCode::BAD_REQUEST);
        assert!(
            e.to_string()
                .starts_with("tokens_per_minute: must be at most")
        );
    }

    #[tokio::test]
    async fn plain_text_rejections_get_the_json_shape() {
        let plain = (
            StatusCode::BAD_REQUEST,
            "Failed to deserialize query string",
        )
            .into_response();
        let resp = json_errors(plain).await;
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
        assert_eq!(
            resp.headers()[http::header::CONTENT_TYPE],
            "application/json"
        );
        let body = axum::body::to_bytes(resp.into_body(), 4096).await.unwrap();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["error"]["message"], "Failed to deserialize query string");
        assert_eq!(v["error"]["code"], 400);
        let ok = json_errors((StatusCode::OK, "text").into_response()).await;
        assert_eq!(
            ok.headers()[http::header::CONTENT_TYPE],
            "text/plain; charset=utf-8"
        );
    }
}
