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

/// An audit record borrowed from wherever its text lives: the request's own state
/// when it is made, a [`crate::PackedRecord`]'s frame while it waits to be written.
/// Serialises exactly as [`AuditRecord`] does (same fields, same order), so the spill
/// file's lines are the same whichever form wrote them.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct AuditRecordRef<'a> {
    pub request_id: &'a str,
    pub client_request_id: Option<&'a str>,
    pub key_id: Option<&'a str>,
    pub key_name: Option<&'a str>,
    pub source: Option<&'a str>,
    pub method: &'a str,
    pub path: &'a str,
    pub query: Option<&'a str>,
    pub route: Option<&'a str>,
    pub upstream: Option<&'a str>,
    pub credential: Option<&'a str>,
    pub target_url: Option<&'a str>,
    pub status_code: u16,
    pub request_time: DateTime<Utc>,
    pub ttfb_ms: Option<f64>,
    pub duration_ms: f64,
    pub request_bytes: u64,
    pub response_bytes: u64,
    pub user_agent: Option<&'a str>,
    pub client_ip: Option<&'a str>,
    pub is_stream: bool,
    pub stream_chunks: u64,
    pub model: Option<&'a str>,
    pub tokens_in: Option<u64>,
    pub tokens_out: Option<u64>,
    pub tokens_estimated: bool,
    pub cost: Option<f64>,
    pub error_message: Option<&'a str>,
    pub request_headers: Option<&'a str>,
    pub response_headers: Option<&'a str>,
    pub request_body: Option<&'a str>,
    pub response_body: Option<&'a str>,
}

impl AuditRecord {
    /// The record as a borrowed view.
    pub fn view(&self) -> AuditRecordRef<'_> {
        AuditRecordRef {
            request_id: &self.request_id,
            client_request_id: self.client_request_id.as_deref(),
            key_id: self.key_id.as_deref(),
            key_name: self.key_name.as_deref(),
            source: self.source.as_deref(),
            method: &self.method,
            path: &self.path,
            query: self.query.as_deref(),
            route: self.route.as_deref(),
            upstream: self.upstream.as_deref(),
            credential: self.credential.as_deref(),
            target_url: self.target_url.as_deref(),
            status_code: self.status_code,
            request_time: self.request_time,
            ttfb_ms: self.ttfb_ms,
            duration_ms: self.duration_ms,
            request_bytes: self.request_bytes,
            response_bytes: self.response_bytes,
            user_agent: self.user_agent.as_deref(),
            client_ip: self.client_ip.as_deref(),
            is_stream: self.is_stream,
            stream_chunks: self.stream_chunks,
            model: self.model.as_deref(),
            tokens_in: self.tokens_in,
            tokens_out: self.tokens_out,
            tokens_estimated: self.tokens_estimated,
            cost: self.cost,
            error_message: self.error_message.as_deref(),
            request_headers: self.request_headers.as_deref(),
            response_headers: self.response_headers.as_deref(),
            request_body: self.request_body.as_deref(),
            response_body: self.response_body.as_deref(),
        }
    }
}

impl AuditRecordRef<'_> {
    /// An owned copy.
    pub fn to_record(&self) -> AuditRecord {
        let own = |s: Option<&str>| s.map(str::to_owned);
        AuditRecord {
            request_id: self.request_id.to_owned(),
            client_request_id: own(self.client_request_id),
            key_id: own(self.key_id),
            key_name: own(self.key_name),
            source: own(self.source),
            method: self.method.to_owned(),
            path: self.path.to_owned(),
            query: own(self.query),
            route: own(self.route),
            upstream: own(self.upstream),
            credential: own(self.credential),
            target_url: own(self.target_url),
            status_code: self.status_code,
            request_time: self.request_time,
            ttfb_ms: self.ttfb_ms,
            duration_ms: self.duration_ms,
            request_bytes: self.request_bytes,
            response_bytes: self.response_bytes,
            user_agent: own(self.user_agent),
            client_ip: own(self.client_ip),
            is_stream: self.is_stream,
            stream_chunks: self.stream_chunks,
            model: own(self.model),
            tokens_in: self.tokens_in,
            tokens_out: self.tokens_out,
            tokens_estimated: self.tokens_estimated,
            cost: self.cost,
            error_message: own(self.error_message),
            request_headers: own(self.request_headers),
            response_headers: own(self.response_headers),
            request_body: own(self.request_body),
            response_body: own(self.response_body),
        }
    }

    /// When the request finished (unix ms): arrival plus duration.
    pub fn completed_ms(&self) -> i64 {
        let duration = if self.duration_ms.is_finite() && self.duration_ms > 0.0 {
            self.duration_ms as i64
        } else {
            0
        };
        self.request_time
            .timestamp_millis()
            .saturating_add(duration)
            .max(1)
    }
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
