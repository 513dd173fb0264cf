//! Checked conversions between domain types and column types.

use std::borrow::Cow;

use chrono::{DateTime, Utc};

use crate::StoreError;

/// What NUL (U+0000) becomes in stored text: PostgreSQL cannot store NUL in `TEXT`,
/// and SQLite's string functions stop at it, so both stores get U+FFFD instead.
pub const NUL_REPLACEMENT: char = '\u{FFFD}';

/// `s` as both stores keep it: NUL replaced by U+FFFD (a Rust `str` is always valid
/// UTF-8; bytes that were not have been decoded lossily before they became a `String`).
pub(crate) fn storable(s: &str) -> String {
    storable_cow(s).into_owned()
}

/// [`storable`] without a copy when `s` holds no NUL.
pub(crate) fn storable_cow(s: &str) -> Cow<'_, str> {
    if s.contains('\0') {
        Cow::Owned(s.replace('\0', NUL_REPLACEMENT.encode_utf8(&mut [0; 4])))
    } else {
        Cow::Borrowed(s)
    }
}

pub(crate) fn opt_storable(s: &Option<String>) -> Option<String> {
    s.as_deref().map(storable)
}

/// Unix milliseconds of `t`.
pub(crate) fn to_ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

pub(crate) fn opt_to_ms(t: Option<DateTime<Utc>>) -> Option<i64> {
    t.map(to_ms)
}

pub(crate) fn from_ms(field: &'static str, ms: i64) -> Result<DateTime<Utc>, StoreError> {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .ok_or_else(|| StoreError::Corrupt(format!("{field}: timestamp {ms} out of range")))
}

pub(crate) fn opt_from_ms(
    field: &'static str,
    ms: Option<i64>,
) -> Result<Option<DateTime<Utc>>, StoreError> {
    ms.map(|v| from_ms(field, v)).transpose()
}

pub(crate) fn now_ms() -> i64 {
    to_ms(Utc::now())
}

/// `u64` -> `BIGINT`, failing above `i64::MAX`.
pub(crate) fn u64_to_i64(field: &'static str, v: u64) -> Result<i64, StoreError> {
    i64::try_from(v).map_err(|_| StoreError::out_of_range(field, v))
}

pub(crate) fn opt_u64_to_i64(
    field: &'static str,
    v: Option<u64>,
) -> Result<Option<i64>, StoreError> {
    v.map(|x| u64_to_i64(field, x)).transpose()
}

/// `BIGINT` -> `u64`, failing on negative values.
pub(crate) fn i64_to_u64(field: &'static str, v: i64) -> Result<u64, StoreError> {
    u64::try_from(v).map_err(|_| StoreError::Corrupt(format!("{field}: negative value {v}")))
}

pub(crate) fn opt_i64_to_u64(
    field: &'static str,
    v: Option<i64>,
) -> Result<Option<u64>, StoreError> {
    v.map(|x| i64_to_u64(field, x)).transpose()
}

/// `BIGINT` -> `u32`, failing when out of range.
pub(crate) fn opt_i64_to_u32(
    field: &'static str,
    v: Option<i64>,
) -> Result<Option<u32>, StoreError> {
    v.map(|x| {
        u32::try_from(x).map_err(|_| StoreError::Corrupt(format!("{field}: {x} out of range")))
    })
    .transpose()
}

pub(crate) fn i32_to_u16(field: &'static str, v: i32) -> Result<u16, StoreError> {
    u16::try_from(v).map_err(|_| StoreError::Corrupt(format!("{field}: {v} out of range")))
}

/// JSON text of a string list.
pub(crate) fn list_to_json(field: &'static str, v: &[String]) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(|e| StoreError::out_of_range(field, e))
}

pub(crate) fn list_from_json(field: &'static str, s: &str) -> Result<Vec<String>, StoreError> {
    serde_json::from_str(s).map_err(|e| StoreError::Corrupt(format!("{field}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nul_becomes_the_replacement_character() {
        assert_eq!(storable("a\0b\0"), "a\u{FFFD}b\u{FFFD}");
        assert_eq!(storable("plain ünï"), "plain ünï");
        assert_eq!(
            opt_storable(&Some("\0".into())),
            Some(NUL_REPLACEMENT.to_string())
        );
        assert_eq!(opt_storable(&None), None);
    }

    #[test]
    fn a_nul_anywhere_in_a_long_text_is_found_and_plain_text_is_not_copied() {
        let plain = "x".repeat(300);
        assert!(matches!(storable_cow(&plain), Cow::Borrowed(_)));
        for at in [0, 1, 31, 32, 33, 150, 299] {
            let mut bytes = plain.clone().into_bytes();
            bytes[at] = 0;
            let text = String::from_utf8(bytes).unwrap();
            let stored = storable_cow(&text);
            assert!(matches!(stored, Cow::Owned(_)), "NUL at {at}");
            assert_eq!(stored.chars().filter(|&c| c == NUL_REPLACEMENT).count(), 1);
            assert!(!stored.contains('\0'));
        }
    }

    #[test]
    fn u64_overflow_is_an_error() {
        assert!(u64_to_i64("x", u64::MAX).is_err());
        assert_eq!(u64_to_i64("x", 7).ok(), Some(7));
        assert!(i64_to_u64("x", -1).is_err());
        assert!(opt_i64_to_u32("x", Some(i64::from(u32::MAX) + 1)).is_err());
        assert!(i32_to_u16("x", 70_000).is_err());
    }

    #[test]
    fn ms_round_trip() {
        let t = from_ms("t", 1_700_000_000_123).ok();
        assert_eq!(t.map(to_ms), Some(1_700_000_000_123));
    }

    #[test]
    fn lists_round_trip() {
        let v = vec!["a".to_owned(), "claude-*".to_owned()];
        let s = list_to_json("l", &v).unwrap_or_default();
        assert_eq!(list_from_json("l", &s).ok(), Some(v));
        assert!(list_from_json("l", "nope").is_err());
    }
}
