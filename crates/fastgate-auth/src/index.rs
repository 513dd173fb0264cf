//! The in-memory key index the request path authenticates against.
//!
//! Built off the hot path from the stored keys and swapped in atomically by the
//! caller. Lookup is by SHA-256 of the presented key; the final comparison of the
//! stored and computed hash is constant-time.

use foldhash::{HashMap, HashMapExt};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use subtle::ConstantTimeEq;

use crate::key::{from_hex32, hash_key, is_well_formed};
use crate::record::ApiKeyRecord;

/// Result of checking a presented key.
#[derive(Debug, Clone)]
pub enum KeyCheck {
    Valid(Arc<ApiKeyRecord>),
    /// Malformed, or no such key.
    Unknown,
    Expired(Arc<ApiKeyRecord>),
    Revoked(Arc<ApiKeyRecord>),
}

struct Entry {
    hash: [u8; 32],
    record: Arc<ApiKeyRecord>,
}

#[derive(Default)]
pub struct KeyIndex {
    by_hash: HashMap<[u8; 32], Entry>,
}

impl KeyIndex {
    /// Index the given keys. Records whose stored hash is not valid hex are skipped
    /// (they could never match) and reported back by id.
    pub fn build(records: impl IntoIterator<Item = ApiKeyRecord>) -> (Self, Vec<String>) {
        let mut by_hash = HashMap::new();
        let mut skipped = Vec::new();
        for record in records {
            match from_hex32(&record.key_hash) {
                Some(hash) => {
                    by_hash.insert(
                        hash,
                        Entry {
                            hash,
                            record: Arc::new(record),
                        },
                    );
                }
                None => skipped.push(record.id.clone()),
            }
        }
        (Self { by_hash }, skipped)
    }

    /// The ids of every indexed key.
    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.by_hash.values().map(|e| e.record.id.as_str())
    }

    pub fn len(&self) -> usize {
        self.by_hash.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_hash.is_empty()
    }

    /// Number of keys that are active and not expired at `now`.
    pub fn active_count(&self, now: DateTime<Utc>) -> usize {
        self.by_hash
            .values()
            .filter(|e| e.record.is_active && e.record.expires_at.is_none_or(|t| t > now))
            .count()
    }

    /// Check a presented key at time `now`.
    pub fn check(&self, presented: &str, now: DateTime<Utc>) -> KeyCheck {
        if !is_well_formed(presented) {
            return KeyCheck::Unknown;
        }
        let hash = hash_key(presented);
        let Some(entry) = self.by_hash.get(&hash) else {
            return KeyCheck::Unknown;
        };
        if !bool::from(entry.hash.ct_eq(&hash)) {
            return KeyCheck::Unknown;
        }
        let record = &entry.record;
        if !record.is_active || record.revoked_at.is_some() {
            return KeyCheck::Revoked(Arc::clone(record));
        }
        if record.expires_at.is_some_and(|t| t <= now) {
            return KeyCheck::Expired(Arc::clone(record));
        }
        KeyCheck::Valid(Arc::clone(record))
    }
}

impl ApiKeyRecord {
    /// May this key use the route named `route`? Empty list = every route.
    pub fn allows_route(&self, route: &str) -> bool {
        self.allowed_routes.is_empty() || self.allowed_routes.iter().any(|r| r == route)
    }

    /// May this key use `model`? Patterns support `*` wildcards. Empty list = all.
    pub fn allows_model(&self, model: &str) -> bool {
        self.allowed_models.is_empty() || self.allowed_models.iter().any(|p| glob_match(p, model))
    }
}

/// `*` matches any run of characters; everything else is literal.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let mut rest = text;
    let last = parts.len() - 1;
    for (i, part) in parts.iter().enumerate() {
        if i == 0 {
            let Some(r) = rest.strip_prefix(part) else {
                return false;
            };
            rest = r;
        } else if i == last {
            return rest.ends_with(part);
        } else if let Some(pos) = rest.find(part) {
            rest = &rest[pos + part.len()..];
        } else {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::generate_key;
    use crate::record::{KeyLimits, KeyQuota};
    use chrono::Duration;

    fn record(hash: &str) -> ApiKeyRecord {
        let now = Utc::now();
        ApiKeyRecord {
            id: "id1".into(),
            name: "alice".into(),
            source: None,
            key_hash: hash.into(),
            prefix: "fg_x".into(),
            created_at: now,
            updated_at: now,
            expires_at: None,
            revoked_at: None,
            is_active: true,
            allowed_routes: vec![],
            allowed_models: vec![],
            limits: KeyLimits::default(),
            quota: KeyQuota::default(),
            usage_count: 0,
            last_used_at: None,
        }
    }

    #[test]
    fn check_outcomes() {
        let now = Utc::now();
        let good = generate_key();
        let expired = generate_key();
        let revoked = generate_key();
        let mut r_exp = record(&expired.hash);
        r_exp.id = "e".into();
        r_exp.expires_at = Some(now - Duration::seconds(1));
        let mut r_rev = record(&revoked.hash);
        r_rev.id = "r".into();
        r_rev.is_active = false;
        let (idx, skipped) = KeyIndex::build([record(&good.hash), r_exp, r_rev, record("nothex")]);
        assert_eq!(skipped, vec!["id1".to_string()]);
        assert!(matches!(idx.check(&good.secret, now), KeyCheck::Valid(_)));
        assert!(matches!(
            idx.check(&expired.secret, now),
            KeyCheck::Expired(_)
        ));
        assert!(matches!(
            idx.check(&revoked.secret, now),
            KeyCheck::Revoked(_)
        ));
        assert!(matches!(
            idx.check(&generate_key().secret, now),
            KeyCheck::Unknown
        ));
        assert!(matches!(idx.check("garbage", now), KeyCheck::Unknown));
        assert_eq!(idx.active_count(now), 1);
    }

    #[test]
    fn globs() {
        assert!(glob_match("gpt-4o", "gpt-4o"));
        assert!(!glob_match("gpt-4o", "gpt-4o-mini"));
        assert!(glob_match("gpt-*", "gpt-4o-mini"));
        assert!(glob_match("*mini", "gpt-4o-mini"));
        assert!(glob_match("claude-*-4*", "claude-sonnet-4-5"));
        assert!(!glob_match("claude-*", "gpt"));
        assert!(glob_match("*", "anything"));
    }

    #[test]
    fn permissions() {
        let mut r = record("x");
        assert!(r.allows_route("chat"));
        r.allowed_routes = vec!["chat".into()];
        assert!(r.allows_route("chat"));
        assert!(!r.allows_route("embed"));
        r.allowed_models = vec!["gpt-*".into()];
        assert!(r.allows_model("gpt-4o"));
        assert!(!r.allows_model("claude-3"));
    }
}
