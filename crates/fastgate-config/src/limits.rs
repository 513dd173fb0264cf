//! Limits beyond a key's own (docs/limits.md): `routes[].limits` and
//! `models[].limits`, the `limits:` settings and the shared `redis:` backend.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::secret::Secret;

/// Rate limits of a route or a model group, over every key's requests together
/// (the same fields as a key's `limits`). Absent = unlimited; 0 is refused.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitsConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requests_per_minute: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requests_per_day: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tokens_per_minute: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_concurrent: Option<u32>,
}

impl RateLimitsConfig {
    pub fn is_unset(&self) -> bool {
        *self == Self::default()
    }
}

/// `limits:` — how usage is kept.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// How often each instance adds the quota usage it counted to the database
    /// and reads the fleet's totals back.
    #[serde(with = "humantime_serde")]
    #[schema(value_type = String, example = "30s")]
    pub flush_interval: Duration,
    /// With Redis: how long a concurrency slot or a reservation is held for a
    /// request whose instance never settles it (it died). Longer than any request.
    #[serde(with = "humantime_serde")]
    #[schema(value_type = String, example = "30s")]
    pub reservation_ttl: Duration,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            flush_interval: Duration::from_secs(2),
            reservation_ttl: Duration::from_secs(15 * 60),
        }
    }
}

/// `redis:` — counters and reservations shared by a fleet. Off without `url`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct RedisConfig {
    /// `redis://[user:password@]host:port/db` or `rediss://` (TLS). Unset: every
    /// instance counts on its own.
    #[schema(value_type = Option<String>, format = Password)]
    pub url: Option<Secret<String>>,
    /// Prefix of every key FastGate writes (several fleets can share one Redis).
    pub key_prefix: String,
    #[serde(with = "humantime_serde")]
    #[schema(value_type = String, example = "30s")]
    pub connect_timeout: Duration,
    /// How long an admission waits for Redis before the failure policy applies.
    #[serde(with = "humantime_serde")]
    #[schema(value_type = String, example = "30s")]
    pub command_timeout: Duration,
    /// Instances sharing the limits: a rate limit enforced locally while Redis
    /// is unreachable is divided by this.
    pub expected_instances: u32,
    pub on_failure: RedisFailurePolicy,
}

impl Default for RedisConfig {
    fn default() -> Self {
        Self {
            url: None,
            key_prefix: "fastgate:".into(),
            connect_timeout: Duration::from_secs(2),
            command_timeout: Duration::from_millis(250),
            expected_instances: 1,
            on_failure: RedisFailurePolicy::default(),
        }
    }
}

/// What each kind of limit does while Redis is unreachable.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct RedisFailurePolicy {
    pub rate_limits: FailureMode,
    pub quotas: QuotaFailureMode,
}

/// Rate limits without Redis.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum FailureMode {
    /// Each instance enforces the limit divided by `expected_instances`.
    #[default]
    Local,
    /// Not enforced.
    Allow,
    /// Refused with 503.
    Deny,
}

/// Quotas and budgets without Redis.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum QuotaFailureMode {
    /// Requests of keys with a quota are refused with 503.
    #[default]
    Deny,
    /// Enforced on this instance's counters (from the database).
    Local,
    /// Not enforced.
    Allow,
}
