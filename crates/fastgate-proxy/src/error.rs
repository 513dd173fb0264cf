//! Every error a client can see, and its one mapping to HTTP.
//!
//! The body is JSON in the protocol the client speaks: OpenAI's
//! `{"error":{"message","type","param","code"}}` by default, Anthropic's
//! `{"type":"error","error":{"type","message"}}` for Anthropic-style requests, Google's
//! `{"error":{"code","message","status"}}` for Gemini-style requests.

use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{HeaderValue, StatusCode, header};

/// Which error shape the client expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientProtocol {
    OpenAi,
    Anthropic,
    Gemini,
}

impl ClientProtocol {
    /// Anthropic clients call `/v1/messages…` or send `anthropic-version`; Gemini clients
    /// call `/v1beta/…` or `…/models/{model}:{method}`, or send their key the Google way
    /// (`x-goog-api-key`, `?key=`).
    pub fn detect(path: &str, headers: &http::HeaderMap, query: Option<&str>) -> Self {
        let gemini_path = path.starts_with("/v1beta/")
            || path == "/v1beta"
            || path
                .rsplit_once('/')
                .is_some_and(|(dir, last)| dir.ends_with("/models") && last.contains(':'));
        let google_key = headers.contains_key(crate::headers::X_GOOG_API_KEY)
            || query.is_some_and(|q| q.split('&').any(|p| p.starts_with("key=")));
        if path.starts_with("/v1/messages")
            || headers.contains_key(crate::headers::ANTHROPIC_VERSION)
        {
            Self::Anthropic
        } else if gemini_path || google_key {
            Self::Gemini
        } else {
            Self::OpenAi
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error("missing API key: send it as 'Authorization: Bearer <key>' or 'X-API-Key'")]
    MissingKey,
    #[error("invalid API key")]
    UnknownKey,
    #[error("API key has expired")]
    ExpiredKey,
    #[error("API key has been revoked")]
    RevokedKey,
    #[error("this API key is not allowed to use route '{0}'")]
    RouteForbidden(String),
    #[error("no route matches {method} {path}")]
    NoRoute { method: String, path: String },
    #[error("invalid request path: {0}")]
    BadPath(String),
    #[error("request body exceeds the limit of {limit} bytes")]
    BodyTooLarge { limit: usize },
    #[error("request body was not received in time")]
    BodyTimeout,
    #[error("could not read request body: {0}")]
    BodyRead(String),
    #[error("request body is not valid JSON: {0}")]
    BadJson(String),
    #[error("request body must be a JSON object to add fields")]
    BodyNotObject,
    #[error("invalid request header: {0}")]
    BadHeader(String),
    #[error("upstream '{upstream}' is unreachable: {reason}")]
    UpstreamConnect { upstream: String, reason: String },
    #[error("upstream '{upstream}' did not answer within {secs:.1}s")]
    UpstreamTimeout { upstream: String, secs: f64 },
    #[error("upstream '{upstream}' failed: {reason}")]
    UpstreamFailed { upstream: String, reason: String },
    /// A `vertex` credential could not be traded for an access token (the token
    /// endpoint failed); nothing was sent to the model.
    #[error("upstream '{upstream}': no access token for credential '{credential}': {reason}")]
    UpstreamToken {
        upstream: String,
        credential: String,
        reason: String,
    },
    #[error("upstream '{upstream}' has no usable credential{}", retry_hint(*.retry_after_secs))]
    NoCredential {
        upstream: String,
        /// When the first credential returns by itself (`None`: only by hand).
        retry_after_secs: Option<u64>,
    },
    /// A rate limit, quota or budget refused the request.
    #[error("{}", crate::admission::refusal_message(.0))]
    Limited(Box<fastgate_limits::Refusal>),
    /// The shared limits store is unreachable and the failure policy refuses.
    #[error("limits unavailable: {0}")]
    LimitsUnavailable(String),
    #[error("the model '{0}' does not exist or is not served here")]
    ModelNotFound(String),
    #[error("this API key is not allowed to use model '{0}'")]
    ModelForbidden(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("upstream '{upstream}' returned status {status}")]
    UpstreamStatus { upstream: String, status: u16 },
    #[error("the gateway is holding too many request bodies; retry after {retry_after_secs}s")]
    Overloaded { retry_after_secs: u64 },
    #[error("internal error: {0}")]
    Internal(String),
}

impl ProxyError {
    /// The upstream never received the request (it could not be reached), so
    /// another upstream may be tried without risking a duplicate.
    pub fn is_unsent_upstream_failure(&self) -> bool {
        // No credential: nothing was sent, the next deployment may serve it.
        matches!(
            self,
            Self::UpstreamConnect { .. } | Self::NoCredential { .. } | Self::UpstreamToken { .. }
        )
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Self::MissingKey | Self::UnknownKey | Self::ExpiredKey | Self::RevokedKey => {
                StatusCode::UNAUTHORIZED
            }
            Self::RouteForbidden(_) | Self::ModelForbidden(_) => StatusCode::FORBIDDEN,
            Self::ModelNotFound(_) => StatusCode::NOT_FOUND,
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::UpstreamStatus { status, .. } => {
                StatusCode::from_u16(*status).unwrap_or(StatusCode::BAD_GATEWAY)
            }
            Self::NoRoute { .. } => StatusCode::NOT_FOUND,
            Self::BadPath(_)
            | Self::BadJson(_)
            | Self::BodyNotObject
            | Self::BadHeader(_)
            | Self::BodyRead(_) => StatusCode::BAD_REQUEST,
            Self::BodyTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::BodyTimeout => StatusCode::REQUEST_TIMEOUT,
            Self::UpstreamConnect { .. }
            | Self::UpstreamFailed { .. }
            | Self::UpstreamToken { .. } => StatusCode::BAD_GATEWAY,
            Self::UpstreamTimeout { .. } => StatusCode::GATEWAY_TIMEOUT,
            Self::NoCredential { .. } | Self::Overloaded { .. } | Self::LimitsUnavailable(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Self::Limited(r) if r.kind == fastgate_limits::LimitKind::Budget => {
                StatusCode::PAYMENT_REQUIRED
            }
            Self::Limited(_) => StatusCode::TOO_MANY_REQUESTS,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// OpenAI `code` / machine-readable reason.
    pub fn code(&self) -> &'static str {
        match self {
            Self::MissingKey => "missing_api_key",
            Self::UnknownKey => "invalid_api_key",
            Self::ExpiredKey => "expired_api_key",
            Self::RevokedKey => "revoked_api_key",
            Self::RouteForbidden(_) => "route_not_allowed",
            Self::ModelForbidden(_) => "model_not_allowed",
            Self::ModelNotFound(_) => "model_not_found",
            Self::BadRequest(_) => "invalid_request",
            Self::UpstreamStatus { .. } => "upstream_error",
            Self::NoRoute { .. } => "route_not_found",
            Self::BadPath(_) => "invalid_path",
            Self::BodyTooLarge { .. } => "body_too_large",
            Self::BodyTimeout => "body_timeout",
            Self::BodyRead(_) => "body_read_error",
            Self::BadJson(_) | Self::BodyNotObject => "invalid_json",
            Self::BadHeader(_) => "invalid_header",
            Self::UpstreamConnect { .. } => "upstream_unreachable",
            Self::UpstreamTimeout { .. } => "upstream_timeout",
            Self::UpstreamFailed { .. } => "upstream_error",
            Self::UpstreamToken { .. } => "upstream_auth_failed",
            Self::NoCredential { .. } => "no_credential",
            Self::Limited(r) => match r.kind {
                fastgate_limits::LimitKind::Budget => "budget_exceeded",
                k if k.is_quota() => "quota_exceeded",
                _ => "rate_limit_exceeded",
            },
            Self::LimitsUnavailable(_) => "limits_unavailable",
            Self::Overloaded { .. } => "overloaded",
            Self::Internal(_) => "internal_error",
        }
    }

    fn openai_type(&self) -> &'static str {
        if let Self::Limited(r) = self
            && r.kind.is_quota()
        {
            return "insufficient_quota";
        }
        match self.status().as_u16() {
            401 => "authentication_error",
            403 => "permission_error",
            404 => "not_found_error",
            400 | 408 | 413 => "invalid_request_error",
            429 => "rate_limit_error",
            _ => "api_error",
        }
    }

    fn anthropic_type(&self) -> &'static str {
        match self.status().as_u16() {
            401 => "authentication_error",
            403 => "permission_error",
            404 => "not_found_error",
            413 => "request_too_large",
            402 => "billing_error",
            400 | 408 => "invalid_request_error",
            429 => "rate_limit_error",
            503 => "overloaded_error",
            504 => "timeout_error",
            _ => "api_error",
        }
    }

    /// Google's canonical status name (Gemini clients).
    fn google_status(&self) -> &'static str {
        match self.status().as_u16() {
            401 => "UNAUTHENTICATED",
            403 => "PERMISSION_DENIED",
            404 => "NOT_FOUND",
            // A spent budget (402) is a resource exhausted too, as Google reports quotas.
            402 | 429 => "RESOURCE_EXHAUSTED",
            503 => "UNAVAILABLE",
            504 => "DEADLINE_EXCEEDED",
            s if s >= 500 => "INTERNAL",
            _ => "INVALID_ARGUMENT",
        }
    }

    /// The JSON body in the client's protocol.
    pub fn body(&self, protocol: ClientProtocol) -> Bytes {
        let message = self.to_string();
        let value = match protocol {
            ClientProtocol::OpenAi => serde_json::json!({
                "error": {
                    "message": message,
                    "type": self.openai_type(),
                    "param": null,
                    "code": self.code(),
                }
            }),
            ClientProtocol::Anthropic => serde_json::json!({
                "type": "error",
                "error": { "type": self.anthropic_type(), "message": message }
            }),
            ClientProtocol::Gemini => serde_json::json!({
                "error": {
                    "code": self.status().as_u16(),
                    "message": message,
                    "status": self.google_status(),
                }
            }),
        };
        Bytes::from(value.to_string())
    }

    pub fn to_response(&self, protocol: ClientProtocol) -> Response {
        let mut resp = (self.status(), self.body(protocol)).into_response();
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if let Self::Limited(refusal) = self {
            let h = resp.headers_mut();
            if let Some(secs) = crate::admission::retry_after_secs(refusal) {
                h.insert(header::RETRY_AFTER, HeaderValue::from(secs));
            }
            crate::admission::refusal_headers(h, refusal);
        }
        if let Self::LimitsUnavailable(_) = self {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(1u32));
        }
        if let Self::NoCredential {
            retry_after_secs: Some(secs),
            ..
        } = self
        {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(*secs));
        }
        if let Self::Overloaded { retry_after_secs } = self {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_secs));
        }
        if matches!(self, Self::MissingKey | Self::UnknownKey) {
            resp.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        resp
    }
}

/// What a `no_credential` message adds: when the first key returns, or that only a person can bring one back.
fn retry_hint(secs: Option<u64>) -> String {
    match secs {
        Some(s) => format!(": all are disabled, exhausted or failing; the first returns in {s}s"),
        None => ": all are disabled or banned until re-enabled by hand".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes() {
        let e = ProxyError::ExpiredKey;
        assert_eq!(e.status(), StatusCode::UNAUTHORIZED);
        let v: serde_json::Value = serde_json::from_slice(&e.body(ClientProtocol::OpenAi)).unwrap();
        assert_eq!(v["error"]["code"], "expired_api_key");
        assert_eq!(v["error"]["type"], "authentication_error");
        let v: serde_json::Value =
            serde_json::from_slice(&e.body(ClientProtocol::Anthropic)).unwrap();
        assert_eq!(v["type"], "error");
        assert_eq!(v["error"]["type"], "authentication_error");
        assert_ne!(
            ProxyError::UnknownKey.to_string(),
            ProxyError::RevokedKey.to_string()
        );
    }

    #[test]
    fn detect_protocol() {
        let h = http::HeaderMap::new();
        assert_eq!(
            ClientProtocol::detect("/v1/messages", &h, None),
            ClientProtocol::Anthropic
        );
        assert_eq!(
            ClientProtocol::detect("/v1/chat/completions", &h, None),
            ClientProtocol::OpenAi
        );
        assert_eq!(
            ClientProtocol::detect("/v1/models/g:generateContent", &h, None),
            ClientProtocol::Gemini
        );
        assert_eq!(
            ClientProtocol::detect("/v1beta/models", &h, None),
            ClientProtocol::Gemini
        );
        assert_eq!(
            ClientProtocol::detect("/v1/models", &h, Some("a=1&key=fg_x")),
            ClientProtocol::Gemini
        );
        assert_eq!(
            ClientProtocol::detect("/v1/models", &h, Some("monkey=1")),
            ClientProtocol::OpenAi
        );
    }

    #[test]
    fn google_shape() {
        let v: serde_json::Value =
            serde_json::from_slice(&ProxyError::UnknownKey.body(ClientProtocol::Gemini)).unwrap();
        assert_eq!(v["error"]["code"], 401);
        assert_eq!(v["error"]["status"], "UNAUTHENTICATED");
        let e = ProxyError::ModelNotFound("m".into());
        let v: serde_json::Value = serde_json::from_slice(&e.body(ClientProtocol::Gemini)).unwrap();
        assert_eq!(v["error"]["status"], "NOT_FOUND");
        assert!(v["error"]["message"].as_str().unwrap().contains("'m'"));
    }
}
