//! Credential health: the built-in rules, circuit breaker, daily quota reset,
//! per-credential quotas and probes (`health:`, `upstreams[].credentials[].quota`,
//! `upstreams[].probe`). The engine lives in `fastgate-upstream`.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// `health:` — what happens to a credential when its provider refuses or fails.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct HealthConfig {
    /// Apply the built-in rules when no configured rule matched a response:
    /// 401/403 disable the credential for `auth_disable_for`, 429 cools it down
    /// for its `Retry-After` (or `rate_limit_cooldown`).
    pub builtin_rules: bool,
    #[serde(with = "humantime_serde")]
    #[schema(value_type = String, example = "30s")]
    pub auth_disable_for: Duration,
    #[serde(with = "humantime_serde")]
    #[schema(value_type = String, example = "30s")]
    pub rate_limit_cooldown: Duration,
    /// Longest `Retry-After` honoured from a provider's 429.
    #[serde(with = "humantime_serde")]
    #[schema(value_type = String, example = "30s")]
    pub max_cooldown: Duration,
    /// Retry a request refused with 401/403/429 at once on another active
    /// credential of the same upstream.
    pub retry_other_credential: bool,
    /// Circuit breaker per credential (5xx answers and transport errors).
    pub circuit: CircuitConfig,
    /// Hour of the day (0-23, in the top-level `timezone`) at which daily
    /// credential quotas reset.
    pub quota_reset_hour: u8,
    /// How often each instance writes its credential counters to the database.
    #[serde(with = "humantime_serde")]
    #[schema(value_type = String, example = "30s")]
    pub counters_flush_interval: Duration,
}

impl Default for HealthConfig {
    fn default() -> Self {
        Self {
            builtin_rules: true,
            auth_disable_for: Duration::from_secs(3600),
            rate_limit_cooldown: Duration::from_secs(60),
            max_cooldown: Duration::from_secs(3600),
            retry_other_credential: true,
            circuit: CircuitConfig::default(),
            quota_reset_hour: 0,
            counters_flush_interval: Duration::from_secs(5),
        }
    }
}

/// `errors` failures (5xx or transport) within `within` open the circuit for
/// `open_for`; then one trial request (half-open) closes or reopens it.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct CircuitConfig {
    pub enabled: bool,
    pub errors: u32,
    #[serde(with = "humantime_serde")]
    #[schema(value_type = String, example = "30s")]
    pub within: Duration,
    #[serde(with = "humantime_serde")]
    #[schema(value_type = String, example = "30s")]
    pub open_for: Duration,
}

impl Default for CircuitConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            errors: 5,
            within: Duration::from_secs(60),
            open_for: Duration::from_secs(30),
        }
    }
}

/// `upstreams[].credentials[].quota`: reaching a limit makes the credential
/// `exhausted` until the next daily reset.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct CredentialQuota {
    pub requests_per_day: Option<u64>,
    pub tokens_per_day: Option<u64>,
}

impl CredentialQuota {
    pub fn is_set(&self) -> bool {
        self.requests_per_day.is_some() || self.tokens_per_day.is_some()
    }

    pub fn is_unset(&self) -> bool {
        !self.is_set()
    }
}

/// `upstreams[].probe`: a cheap request the scheduler sends with a disabled
/// credential to bring it back early (or keep it out).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProbeConfig {
    #[serde(default = "default_probe_method")]
    pub method: String,
    /// Path below the upstream's `base_url` (default by kind, e.g. `/v1/models`).
    #[serde(default)]
    pub path: Option<String>,
    #[serde(default = "default_probe_interval", with = "humantime_serde")]
    #[schema(value_type = String, example = "30s")]
    pub interval: Duration,
    #[serde(default = "default_probe_timeout", with = "humantime_serde")]
    #[schema(value_type = String, example = "30s")]
    pub timeout: Duration,
    /// Statuses that count as healthy (default any 2xx).
    #[serde(default)]
    pub expect_status: Vec<u16>,
}

fn default_probe_method() -> String {
    "GET".into()
}
fn default_probe_interval() -> Duration {
    Duration::from_secs(60)
}
fn default_probe_timeout() -> Duration {
    Duration::from_secs(10)
}
