//! The stored form of a gateway key. Holds the SHA-256 hash, never the key.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum QuotaPeriod {
    #[default]
    Never,
    Daily,
    Monthly,
}

impl QuotaPeriod {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Never => "never",
            Self::Daily => "daily",
            Self::Monthly => "monthly",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "never" => Some(Self::Never),
            "daily" => Some(Self::Daily),
            "monthly" => Some(Self::Monthly),
            _ => None,
        }
    }
}

/// Rate limits of one key; `None` means unlimited. A misspelt field is refused
/// rather than ignored (it would leave the key unlimited).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct KeyLimits {
    pub requests_per_minute: Option<u32>,
    pub requests_per_day: Option<u32>,
    pub tokens_per_minute: Option<u64>,
    pub max_concurrent: Option<u32>,
}

/// Quotas of one key over `period`; `None` means unlimited. Misspelt fields
/// are refused.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct KeyQuota {
    pub requests: Option<u64>,
    pub tokens: Option<u64>,
    pub cost: Option<f64>,
    pub period: QuotaPeriod,
}

/// A gateway key as stored and as held in the in-memory index. Its `Debug` output
/// leaves the hash out (a hash of a key is a lookup handle for it).
#[derive(Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ApiKeyRecord {
    /// UUIDv7 string.
    pub id: String,
    pub name: String,
    /// Owner / source label.
    pub source: Option<String>,
    /// Lowercase hex SHA-256 of the full key. Never sent to clients.
    #[serde(skip_serializing)]
    pub key_hash: String,
    /// Non-secret display prefix, e.g. `fg_ab12cd`.
    pub prefix: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub is_active: bool,
    /// Route names this key may use; empty = all routes.
    pub allowed_routes: Vec<String>,
    /// Model patterns (`gpt-4o`, `claude-*`) this key may use; empty = all.
    pub allowed_models: Vec<String>,
    pub limits: KeyLimits,
    pub quota: KeyQuota,
    pub usage_count: u64,
    pub last_used_at: Option<DateTime<Utc>>,
}

impl std::fmt::Debug for ApiKeyRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKeyRecord")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("source", &self.source)
            .field("key_hash", &"[redacted]")
            .field("prefix", &self.prefix)
            .field("created_at", &self.created_at)
            .field("updated_at", &self.updated_at)
            .field("expires_at", &self.expires_at)
            .field("revoked_at", &self.revoked_at)
            .field("is_active", &self.is_active)
            .field("allowed_routes", &self.allowed_routes)
            .field("allowed_models", &self.allowed_models)
            .field("limits", &self.limits)
            .field("quota", &self.quota)
            .field("usage_count", &self.usage_count)
            .field("last_used_at", &self.last_used_at)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_the_hash() {
        let (generated, rec) = crate::new_key_record("alice", Utc::now());
        let shown = format!("{rec:?} {rec:#?}");
        assert!(!shown.contains(&generated.hash), "{shown}");
        assert!(!shown.contains(&generated.secret));
        assert!(shown.contains("alice") && shown.contains(&rec.prefix));
    }
}
