//! The audit record: one per request, whatever its outcome.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// One audited request. Never holds a gateway key, a provider key or their hashes:
/// only the key's id and name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuditRecord {
    /// The gateway's own id for the request (a UUIDv7, also sent to the client as
    /// `x-fastgate-request-id`). Unique; inserts are idempotent on it, so replaying a
    /// spill file or the journal is safe. Never taken from the client.
    pub request_id: String,
    /// The client's `X-Request-Id`, when it sent a plain, short one. Informational only:
    /// many records may carry the same value, and it is never used to deduplicate.
    #[serde(default)]
    pub client_request_id: Option<String>,
    pub key_id: Option<String>,
    pub key_name: Option<String>,
    /// The key's owner/source label.
    pub source: Option<String>,
    pub method: String,
    /// Normalised request path (no query string).
    pub path: String,
    pub query: Option<String>,
    pub route: Option<String>,
    pub upstream: Option<String>,
    /// Name of the provider credential used (never its value).
    pub credential: Option<String>,
    /// URL sent upstream, without query secrets.
    pub target_url: Option<String>,
    pub status_code: u16,
    /// When the request arrived (UTC).
    pub request_time: DateTime<Utc>,
    /// Milliseconds from arrival to the first response byte from upstream.
    pub ttfb_ms: Option<f64>,
    /// Milliseconds from arrival to the last byte sent to the client.
    pub duration_ms: f64,
    pub request_bytes: u64,
    pub response_bytes: u64,
    pub user_agent: Option<String>,
    pub client_ip: Option<String>,
    pub is_stream: bool,
    pub stream_chunks: u64,
    pub model: Option<String>,
    pub tokens_in: Option<u64>,
    pub tokens_out: Option<u64>,
    pub tokens_estimated: bool,
    pub cost: Option<f64>,
    pub error_message: Option<String>,
    /// JSON object of captured request headers (secrets redacted), when enabled.
    pub request_headers: Option<String>,
    pub response_headers: Option<String>,
    /// Captured bodies, capped at the route's `body_max_bytes`, when enabled.
    pub request_body: Option<String>,
    pub response_body: Option<String>,
}

/// Sort order for audit queries (by `request_time`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SortOrder {
    #[default]
    Desc,
    Asc,
}

/// Filters for reading the audit log. All present filters must hold (AND).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct AuditFilter {
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    pub key_id: Option<String>,
    /// Records whose `client_request_id` equals this value.
    pub client_request_id: Option<String>,
    pub route: Option<String>,
    pub upstream: Option<String>,
    pub status: Option<u16>,
    /// Inclusive status range, e.g. 500..=599.
    pub status_min: Option<u16>,
    pub status_max: Option<u16>,
    pub method: Option<String>,
    /// Prefix of the path; `%` and `_` are matched literally.
    pub path_prefix: Option<String>,
    pub is_stream: Option<bool>,
    pub model: Option<String>,
    /// Only records with (true) or without (false) an error message.
    pub has_error: Option<bool>,
    /// Page size, clamped to 1..=1000 by the store (default 100).
    pub limit: Option<u32>,
    pub offset: Option<u32>,
    pub order: SortOrder,
}
