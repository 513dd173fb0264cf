//! CORS for the proxy endpoints (`cors:` in the config, off by default).
//!
//! With CORS on, the gateway, not the upstream, speaks for its origin:
//! - a preflight (`OPTIONS` with `Origin` and `Access-Control-Request-Method`) is
//!   answered here, without a key and without reaching an upstream: 204 with the
//!   configured lists when the origin is allowed; 403 without any CORS header when
//!   it is not (the browser then blocks the real request; the 403 tells a person
//!   reading the network panel why);
//! - every other response, errors included (401, 404, 429…), gets
//!   `Access-Control-Allow-Origin` when the request's `Origin` is allowed, so pages
//!   can read why a call failed; CORS headers an upstream sent are dropped, so an
//!   upstream's `*` never widens the configured policy;
//! - a response that depends on the origin says `Vary: Origin`.
//!
//! Requests without `Origin` (servers, SDKs outside browsers) are served as ever:
//! CORS is not access control. Reserved paths (`/admin…`) never get CORS headers,
//! and the admin API, `/health` and `/metrics` are not served by the proxy at all.

use std::sync::Arc;

use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use fastgate_config::Config;
use fastgate_routing::{is_reserved_path, normalize_path};
use http::header::{
    ACCESS_CONTROL_ALLOW_CREDENTIALS, ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS,
    ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_EXPOSE_HEADERS, ACCESS_CONTROL_MAX_AGE,
    ACCESS_CONTROL_REQUEST_METHOD, HeaderName, ORIGIN, VARY,
};
use http::{HeaderMap, HeaderValue, Method, StatusCode};

use crate::state::AppState;

/// The CORS headers the gateway owns when CORS is on.
const OWNED: [HeaderName; 6] = [
    ACCESS_CONTROL_ALLOW_ORIGIN,
    ACCESS_CONTROL_ALLOW_CREDENTIALS,
    ACCESS_CONTROL_ALLOW_HEADERS,
    ACCESS_CONTROL_ALLOW_METHODS,
    ACCESS_CONTROL_EXPOSE_HEADERS,
    ACCESS_CONTROL_MAX_AGE,
];

/// CORS for one request: made only when CORS is on and the path is not reserved.
pub(crate) struct Cors {
    config: Arc<Config>,
    /// `Access-Control-Allow-Origin` to send: `*`, or the request's own origin
    /// when it is allowed; `None` when it has none or it is not allowed.
    allow_origin: Option<HeaderValue>,
}

/// The request's CORS, or `None` when CORS is off (the only cost then: one load
/// and one branch) or the path is reserved.
pub(crate) fn for_request(state: &AppState, req: &Request) -> Option<Cors> {
    if !state.inner().config.load().cors.is_enabled() {
        return None;
    }
    let path = normalize_path(req.uri().path()).ok();
    if path.as_deref().is_none_or(is_reserved_path) {
        return None;
    }
    let config = state.inner().config.load_full();
    let origin = req.headers().get(ORIGIN);
    let allow_origin = origin.and_then(|o| {
        if config.cors.any_origin() {
            Some(HeaderValue::from_static("*"))
        } else {
            let mut listed = config.cors.allowed_origins.iter();
            listed
                .any(|a| a.as_bytes() == o.as_bytes())
                .then(|| o.clone())
        }
    });
    Some(Cors {
        allow_origin,
        config,
    })
}

/// `OPTIONS` with `Origin` and `Access-Control-Request-Method`.
fn is_preflight(req: &Request) -> bool {
    req.method() == Method::OPTIONS
        && req.headers().contains_key(ORIGIN)
        && req.headers().contains_key(ACCESS_CONTROL_REQUEST_METHOD)
}

fn joined(list: &[String]) -> Option<HeaderValue> {
    if list.is_empty() {
        return None;
    }
    HeaderValue::from_str(&list.join(", ")).ok()
}

impl Cors {
    /// The answer to a preflight, or `None` when `req` is not one.
    pub(crate) fn preflight(&self, req: &Request) -> Option<Response> {
        if !is_preflight(req) {
            return None;
        }
        let Some(origin) = &self.allow_origin else {
            let body = serde_json::json!({"error": {
                "message": "CORS: this origin is not allowed (see cors.allowed_origins)",
                "type": "cors_origin_not_allowed",
            }});
            let mut resp = (StatusCode::FORBIDDEN, axum::Json(body)).into_response();
            self.vary(resp.headers_mut());
            return Some(resp);
        };
        let cors = &self.config.cors;
        let mut resp = StatusCode::NO_CONTENT.into_response();
        let h = resp.headers_mut();
        h.insert(ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
        if let Some(v) = joined(&cors.allowed_methods) {
            h.insert(ACCESS_CONTROL_ALLOW_METHODS, v);
        }
        if let Some(v) = joined(&cors.allowed_headers) {
            h.insert(ACCESS_CONTROL_ALLOW_HEADERS, v);
        }
        h.insert(ACCESS_CONTROL_MAX_AGE, HeaderValue::from(cors.max_age));
        if cors.allow_credentials {
            h.insert(
                ACCESS_CONTROL_ALLOW_CREDENTIALS,
                HeaderValue::from_static("true"),
            );
        }
        // The answer depends on these request headers: caches must key on them.
        for name in [
            "origin",
            "access-control-request-method",
            "access-control-request-headers",
        ] {
            h.append(VARY, HeaderValue::from_static(name));
        }
        Some(resp)
    }

    /// Sets the CORS headers of an actual (non-preflight) response.
    pub(crate) fn apply(&self, h: &mut HeaderMap) {
        for name in &OWNED {
            h.remove(name);
        }
        self.vary(h);
        let Some(origin) = &self.allow_origin else {
            return;
        };
        h.insert(ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
        if self.config.cors.allow_credentials {
            h.insert(
                ACCESS_CONTROL_ALLOW_CREDENTIALS,
                HeaderValue::from_static("true"),
            );
        }
        if let Some(v) = joined(&self.config.cors.expose_headers) {
            h.insert(ACCESS_CONTROL_EXPOSE_HEADERS, v);
        }
    }

    /// `Vary: Origin` unless every origin gets the same answer (`*`); also on
    /// answers to requests without `Origin`, which a cache could otherwise hand
    /// to a browser.
    fn vary(&self, h: &mut HeaderMap) {
        if !self.config.cors.any_origin() {
            h.append(VARY, HeaderValue::from_static("origin"));
        }
    }
}
