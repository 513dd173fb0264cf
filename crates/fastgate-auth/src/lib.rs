//! Gateway keys: the `fg_` format, generation, hashing and the in-memory index
//! the request path authenticates against.

mod index;
mod key;
mod record;

pub use index::{KeyCheck, KeyIndex, glob_match};
pub use key::{
    GeneratedKey, KEY_PREFIX, display_prefix, from_hex32, generate_key, hash_key, hash_key_hex,
    is_well_formed, to_hex,
};
pub use record::{ApiKeyRecord, KeyLimits, KeyQuota, QuotaPeriod};

/// Build a new key record around a freshly generated key. The caller stores the
/// record and shows `GeneratedKey::secret` to the user exactly once.
pub fn new_key_record(
    name: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> (GeneratedKey, ApiKeyRecord) {
    let generated = generate_key();
    let record = ApiKeyRecord {
        id: uuid::Uuid::now_v7().to_string(),
        name: name.to_string(),
        source: None,
        key_hash: generated.hash.clone(),
        prefix: generated.prefix.clone(),
        created_at: now,
        updated_at: now,
        expires_at: None,
        revoked_at: None,
        is_active: true,
        allowed_routes: Vec::new(),
        allowed_models: Vec::new(),
        limits: KeyLimits::default(),
        quota: KeyQuota::default(),
        usage_count: 0,
        last_used_at: None,
    };
    (generated, record)
}
