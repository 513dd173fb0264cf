//! `GET /`: a small JSON document naming the gateway and its entry points, unless
//! a configured route matches `/` (routes take precedence).

use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use fastgate_routing::{BodyView, MatchOutcome};
use http::Method;

use crate::state::AppState;

/// The document for `GET /` (or `HEAD /`), or `None` when the request is not for
/// it: another path or method, or a route that matches `/`.
pub(crate) fn answer(state: &AppState, req: &Request) -> Option<Response> {
    if req.uri().path() != "/" || !matches!(*req.method(), Method::GET | Method::HEAD) {
        return None;
    }
    let snapshot = state.inner().snapshot.load();
    let found = snapshot
        .routes
        .find(req.method(), "/", req.headers(), BodyView::NotLoaded);
    if !matches!(found, MatchOutcome::NotFound) {
        return None;
    }
    Some(axum::Json(document()).into_response())
}

/// Name, version and links (paths on this server).
fn document() -> serde_json::Value {
    serde_json::json!({
        "name": "FastGate",
        "version": env!("CARGO_PKG_VERSION"),
        "links": {
            "health": "/health",
            "metrics": "/metrics",
            "admin_api": "/admin/api",
            "openapi": "/admin/api/openapi.json",
            "ui": "/admin/ui",
        },
    })
}
