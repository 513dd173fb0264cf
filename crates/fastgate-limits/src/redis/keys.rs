//! Redis key names. Ids (key ids, route names, model names, period ids) may hold
//! any character, so each is percent-encoded: every byte outside
//! `[A-Za-z0-9._-]` becomes `%XX`. The encoding is injective (`%` itself is
//! encoded), so two different ids never share a key, and a `:` in an id cannot
//! be mistaken for a separator.

use std::fmt::Write;

use crate::types::ScopeKind;

/// Appends `id`, percent-encoded, to `out`.
fn push_encoded(out: &mut String, id: &str) {
    for b in id.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-') {
            out.push(char::from(b));
        } else {
            // Writing to a String cannot fail.
            let _ = write!(out, "%{b:02X}");
        }
    }
}

fn kind_tag(kind: ScopeKind) -> &'static str {
    match kind {
        ScopeKind::Key => "k",
        ScopeKind::Route => "r",
        ScopeKind::Model => "m",
    }
}

/// The names of every key this backend uses, under one prefix.
#[derive(Debug, Clone)]
pub(crate) struct Keys {
    prefix: String,
}

/// The three keys of one scope's rate limits.
#[derive(Debug, Clone)]
pub(crate) struct ScopeKeys {
    /// Hash {s, r, t}: the minute window's start (ms), requests and tokens.
    pub minute: String,
    /// Hash {s, r}: the day window's start and requests.
    pub day: String,
    /// Sorted set: request ids in flight, scored by lease expiry (ms).
    pub slots: String,
}

/// The three keys of one key's quota in one period.
#[derive(Debug, Clone)]
pub(crate) struct QuotaKeys {
    /// Hash {req, tok, nanos, rtok, rnanos}: settled usage and reservations.
    pub totals: String,
    /// Sorted set: request ids holding a reservation, scored by lease expiry.
    pub leases: String,
    /// Hash: request id -> "tokens nanos" it holds.
    pub held: String,
}

impl Keys {
    pub fn new(prefix: &str) -> Self {
        Self {
            prefix: prefix.to_string(),
        }
    }

    fn name(&self, tag: &str, parts: &[&str]) -> String {
        let mut s = String::with_capacity(self.prefix.len() + 48);
        s.push_str(&self.prefix);
        s.push_str(tag);
        for p in parts {
            s.push(':');
            push_encoded(&mut s, p);
        }
        s
    }

    pub fn scope(&self, kind: ScopeKind, id: &str) -> ScopeKeys {
        let k = kind_tag(kind);
        ScopeKeys {
            minute: self.name("wm", &[k, id]),
            day: self.name("wd", &[k, id]),
            slots: self.name("c", &[k, id]),
        }
    }

    pub fn quota(&self, key_id: &str, period: &str) -> QuotaKeys {
        QuotaKeys {
            totals: self.name("q", &[key_id, period]),
            leases: self.name("qx", &[key_id, period]),
            held: self.name("qr", &[key_id, period]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_encoded_so_that_keys_never_collide() {
        let keys = Keys::new("fg:");
        let a = keys.scope(ScopeKind::Route, "a:b c");
        assert_eq!(a.minute, "fg:wm:r:a%3Ab%20c");
        assert_eq!(a.slots, "fg:c:r:a%3Ab%20c");
        // `%` is encoded too, so an id that looks encoded stays distinct.
        assert_eq!(keys.scope(ScopeKind::Route, "a%3Ab").day, "fg:wd:r:a%253Ab");
        let q = keys.quota("k:1", "d2026-11-30");
        assert_eq!(q.totals, "fg:q:k%3A1:d2026-11-30");
        assert_ne!(keys.quota("k", "1:x").totals, keys.quota("k:1", "x").totals);
        assert_eq!(
            keys.scope(ScopeKind::Model, "gpt-4o.mini_x").minute,
            "fg:wm:m:gpt-4o.mini_x"
        );
        assert_eq!(keys.scope(ScopeKind::Key, "é").minute, "fg:wm:k:%C3%A9");
    }
}
