//! Admin API errors, mapped to HTTP in one place.

use axum::Json;
use axum::response::{IntoResponse, Response};
use http::StatusCode;

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("admin token required: send 'Authorization: Bearer <admin token>'")]
    Unauthorized,
    #[error("{0}")]
    BadRequest(String),
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("storage error: {0}")]
    Store(String),
}

impl AdminError {
    fn status(&self) -> StatusCode {
        match self {
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

impl From<fastgate_store::StoreError> for AdminError {
    fn from(e: fastgate_store::StoreError) -> Self {
        if matches!(e, fastgate_store::StoreError::Conflict(_)) {
            Self::Conflict(format!("already exists ({e})"))
        } else {
            tracing::error!(error = %e, "admin storage error");
            Self::Store(e.to_string())
        }
    }
}

impl IntoResponse for AdminError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({
            "error": { "message": self.to_string(), "type": "admin_error", "code": self.status().as_u16() }
        });
        (self.status(), Json(body)).into_response()
    }
}
