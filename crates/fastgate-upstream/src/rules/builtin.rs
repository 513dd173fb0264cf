//! The built-in rules, applied when no configured rule matched an answer:
//! 401/403 take the credential out for `health.auth_disable_for`; 429 cools it
//! down for the provider's `Retry-After` (capped) or `health.rate_limit_cooldown`.
//! Also reads the provider's error message out of an error body.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use http::HeaderMap;
use serde_json::Value;

use super::condition::Answer;
use super::redact::{REASON_MAX_CHARS, safe_line};
use super::{Firing, RuleAction};

pub const AUTH: &str = "builtin:auth";
pub const RATE_LIMIT: &str = "builtin:rate-limit";

/// Shortest cooldown taken from a `Retry-After`: a 429 that says "retry now"
/// still rests the credential a moment rather than not at all.
pub const MIN_RETRY_AFTER: Duration = Duration::from_secs(1);

#[derive(Debug)]
pub(super) struct Builtins {
    auth: Arc<str>,
    rate_limit: Arc<str>,
    auth_disable_for: Duration,
    rate_limit_cooldown: Duration,
    max_cooldown: Duration,
}

impl Builtins {
    pub(super) fn new(health: &fastgate_config::HealthConfig) -> Self {
        Self {
            auth: AUTH.into(),
            rate_limit: RATE_LIMIT.into(),
            auth_disable_for: health.auth_disable_for,
            rate_limit_cooldown: health.rate_limit_cooldown,
            max_cooldown: health.max_cooldown,
        }
    }

    pub(super) fn evaluate(
        &self,
        a: &Answer<'_>,
        wall_now: &dyn Fn() -> SystemTime,
    ) -> Option<Firing> {
        let status = a.outcome.status?;
        let (rule, disable_for) = match status {
            401 | 403 => (&self.auth, self.auth_disable_for),
            429 => {
                let provider = a.outcome.headers.and_then(|h| retry_after(h, wall_now));
                let cooldown = match provider {
                    Some(d) => d.max(MIN_RETRY_AFTER).min(self.max_cooldown),
                    None => self.rate_limit_cooldown,
                };
                (&self.rate_limit, cooldown)
            }
            _ => return None,
        };
        let reason = a
            .json()
            .and_then(provider_error)
            .and_then(|e| e.message)
            .map(|m| safe_line(m, REASON_MAX_CHARS))
            .filter(|m| !m.is_empty())
            .unwrap_or_else(|| status_text(status));
        Some(Firing {
            rule: Arc::clone(rule),
            builtin: true,
            actions: vec![RuleAction::Disable(disable_for)],
            status: Some(status),
            excerpt: super::excerpt_of(a),
            reason,
        })
    }
}

/// How long the provider asks to wait: `retry-after-ms` (milliseconds), else
/// `Retry-After` as seconds or an HTTP-date (past dates: zero).
pub fn retry_after(headers: &HeaderMap, wall_now: &dyn Fn() -> SystemTime) -> Option<Duration> {
    let text = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    if let Some(d) = text("retry-after-ms").and_then(|v| seconds(v, 1000.0)) {
        return Some(d);
    }
    let value = text("retry-after")?;
    if let Some(d) = seconds(value, 1.0) {
        return Some(d);
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(wall_now()).unwrap_or_default())
}

/// `value / per_second` seconds, when `value` is a non-negative number (too
/// large for a `Duration`: the longest one, capped later).
fn seconds(value: &str, per_second: f64) -> Option<Duration> {
    let n = value.parse::<f64>().ok()?;
    if n.is_nan() || n < 0.0 {
        return None;
    }
    Some(Duration::try_from_secs_f64(n / per_second).unwrap_or(Duration::MAX))
}

/// `429 Too Many Requests`.
pub(super) fn status_text(status: u16) -> String {
    let reason = http::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason());
    match reason {
        Some(reason) => format!("{status} {reason}"),
        None => status.to_string(),
    }
}

/// The error a provider described in its answer body (not yet redacted).
#[derive(Debug, Default, PartialEq)]
pub(super) struct ProviderError<'a> {
    /// `insufficient_quota`, `rate_limit_error`, `RESOURCE_EXHAUSTED`.
    pub(super) code: Option<&'a str>,
    pub(super) message: Option<&'a str>,
}

/// OpenAI `{"error": {"message", "type", "code"}}`, Anthropic `{"type": "error",
/// "error": {"type", "message"}}`, Gemini `{"error": {"code", "message",
/// "status"}}` (also inside a one-element array), or a bare `{"error": "…"}`,
/// `{"message": "…"}` or `{"detail": "…"}`.
pub(super) fn provider_error(doc: &Value) -> Option<ProviderError<'_>> {
    let doc = match doc {
        Value::Array(items) => items.first()?,
        other => other,
    };
    let found = match doc.get("error") {
        Some(Value::Object(err)) => {
            let str_of = |key: &str| err.get(key).and_then(Value::as_str);
            ProviderError {
                code: str_of("code")
                    .or_else(|| str_of("status"))
                    .or_else(|| str_of("type")),
                message: str_of("message"),
            }
        }
        Some(Value::String(message)) => ProviderError {
            code: None,
            message: Some(message),
        },
        _ => ProviderError {
            code: None,
            message: ["message", "detail"]
                .into_iter()
                .find_map(|key| doc.get(key).and_then(Value::as_str)),
        },
    };
    (found.code.is_some() || found.message.is_some()).then_some(found)
}
