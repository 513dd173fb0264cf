//! The `fg_` key format.
//!
//! `fg_` + 43 base62 characters of randomness (≥ 256 bits, i.e. at least 32 random
//! bytes) + 6 base62 characters of checksum over the random part. The fixed prefix
//! and checksum let secret scanners recognise a leaked key and let the gateway
//! reject a mistyped one without a table lookup.

use rand::Rng;
use rand::distr::Alphanumeric;
use sha2::{Digest, Sha256};

pub const KEY_PREFIX: &str = "fg_";
const RANDOM_LEN: usize = 43;
const CHECKSUM_LEN: usize = 6;
/// Characters of the random part shown in the display prefix.
const DISPLAY_CHARS: usize = 6;
const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// A freshly generated key: the secret (shown once) and what is stored.
#[derive(Clone)]
pub struct GeneratedKey {
    pub secret: String,
    pub hash: String,
    pub prefix: String,
}

impl std::fmt::Debug for GeneratedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GeneratedKey")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

/// Generate a new key from the OS-seeded thread RNG.
pub fn generate_key() -> GeneratedKey {
    let random: String = rand::rng()
        .sample_iter(&Alphanumeric)
        .take(RANDOM_LEN)
        .map(char::from)
        .collect();
    let secret = format!("{KEY_PREFIX}{random}{}", checksum(&random));
    GeneratedKey {
        hash: hash_key_hex(&secret),
        prefix: display_prefix(&secret),
        secret,
    }
}

fn checksum(random: &str) -> String {
    let digest = Sha256::digest(random.as_bytes());
    let mut n = u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]);
    let mut out = [b'0'; CHECKSUM_LEN];
    for slot in out.iter_mut().rev() {
        *slot = BASE62[(n % 62) as usize];
        n /= 62;
    }
    out.iter().map(|&b| char::from(b)).collect()
}

/// True when `key` has the `fg_` shape and a correct checksum. Cheap; no lookup.
pub fn is_well_formed(key: &str) -> bool {
    let Some(body) = key.strip_prefix(KEY_PREFIX) else {
        return false;
    };
    if body.len() != RANDOM_LEN + CHECKSUM_LEN || !body.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return false;
    }
    let (random, sum) = body.split_at(RANDOM_LEN);
    checksum(random) == sum
}

/// SHA-256 of the whole key.
pub fn hash_key(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

/// Lowercase hex SHA-256 of the whole key, the stored form.
pub fn hash_key_hex(key: &str) -> String {
    to_hex(&hash_key(key))
}

pub fn to_hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(HEX[usize::from(b >> 4)]));
        s.push(char::from(HEX[usize::from(b & 0xf)]));
    }
    s
}

/// Parse a 64-char lowercase/uppercase hex string into 32 bytes.
pub fn from_hex32(s: &str) -> Option<[u8; 32]> {
    let bytes = s.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in bytes.chunks_exact(2).enumerate() {
        let hi = (pair[0] as char).to_digit(16)?;
        let lo = (pair[1] as char).to_digit(16)?;
        out[i] = u8::try_from(hi * 16 + lo).ok()?;
    }
    Some(out)
}

/// Non-secret display form: `fg_` + the first few random characters.
pub fn display_prefix(key: &str) -> String {
    let body = key.strip_prefix(KEY_PREFIX).unwrap_or(key);
    let shown: String = body.chars().take(DISPLAY_CHARS).collect();
    format!("{KEY_PREFIX}{shown}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_are_well_formed_and_unique() {
        let a = generate_key();
        let b = generate_key();
        assert!(a.secret.starts_with("fg_"));
        assert_eq!(a.secret.len(), 3 + 43 + 6);
        assert!(is_well_formed(&a.secret));
        assert_ne!(a.secret, b.secret);
        assert_eq!(a.hash, hash_key_hex(&a.secret));
        assert!(a.secret.starts_with(&a.prefix));
        assert!(!format!("{a:?}").contains(&a.secret));
    }

    #[test]
    fn checksum_catches_typos() {
        let k = generate_key().secret;
        let mut chars: Vec<char> = k.chars().collect();
        chars[10] = if chars[10] == 'a' { 'b' } else { 'a' };
        let typo: String = chars.into_iter().collect();
        assert!(!is_well_formed(&typo));
        assert!(!is_well_formed("fg_short"));
        assert!(!is_well_formed("sk-something"));
        assert!(!is_well_formed(""));
    }

    #[test]
    fn hex_roundtrip() {
        let h = hash_key("x");
        assert_eq!(from_hex32(&to_hex(&h)), Some(h));
        assert_eq!(from_hex32("zz"), None);
    }
}
