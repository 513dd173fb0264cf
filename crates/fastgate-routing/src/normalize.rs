//! Request-path normalisation (THREATS row 14).
//!
//! [`normalize_path`] runs once per request, before authentication, routing, limits and
//! forwarding, so every later phase sees the same path. It makes exactly one decoding
//! pass followed by one dot-segment resolution pass, over a single output buffer.

use thiserror::Error;

/// Why a raw request path was refused by [`normalize_path`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum PathError {
    /// The path is the empty string.
    #[error("path is empty")]
    Empty,
    /// The path does not start with '/'.
    #[error("path must start with '/'")]
    NotAbsolute,
    /// A '%' is not followed by two hexadecimal digits.
    #[error("invalid percent-escape at byte {0}")]
    InvalidEscape(usize),
    /// A NUL byte, raw or as `%00`.
    #[error("NUL byte (raw or %00) in path")]
    Nul,
    /// A control character (< 0x20 or 0x7f), raw or percent-encoded.
    #[error("control character in path")]
    ControlChar,
    /// A `..` segment would climb above the root.
    #[error("'..' climbs above the root")]
    Traversal,
    /// A segment that is `.` or `..` once a `;params` suffix is removed (`..;`,
    /// `.;x`, `..;jsessionid=1`, also with `%3B`). Servers that strip path parameters
    /// (Tomcat, Spring, Jetty) would resolve it as a dot segment after routing.
    #[error("dot segment with ';' parameters in path")]
    DotSegmentParams,
    /// `%25` followed by two hex digits (`%252e`, `%2541`): a double-encoded escape
    /// that a second decoding upstream would turn into something else.
    #[error("double-encoded escape (%25 followed by two hex digits) in path")]
    DoubleEncoded,
    /// The decoded path is not valid UTF-8 (cannot happen for `&str` input; kept so
    /// the conversion needs no panic).
    #[error("path is not valid UTF-8 after decoding")]
    InvalidUtf8,
}

/// Normalise a raw request path (no query string) once, before auth, routing, limits
/// and forwarding.
///
/// Rules, applied in this order:
/// 1. the path must start with '/';
/// 2. one decoding pass: `%2E` ('.'), `%2F` ('/'), `%5C` ('\\') and every unreserved
///    character (ALPHA / DIGIT / `-._~`) are decoded; other escapes are kept with their
///    two hex digits uppercased (`%3b` -> `%3B`); `%00`, any raw or encoded control
///    character (< 0x20, 0x7f) and malformed escapes are errors;
/// 3. a decoded result holding `%25` followed by two hex digits is double-encoded
///    input and an error ([`PathError::DoubleEncoded`]: `%252e`, `%25%32%65`, `%2541`);
///    a lone `%25` (`/100%25`, `/%25zz`) is fine;
/// 4. '\\' (raw or decoded) is a '/';
/// 5. a segment that is `.` or `..` once a `;params` suffix is removed (`..;`, `.;x`,
///    `..%3Bx`) is an error ([`PathError::DotSegmentParams`]); then repeated '/'
///    collapse, `.` segments vanish, `..` removes the previous segment
///    ([`PathError::Traversal`] if there is none);
/// 6. a trailing '/' is kept when the input ended with '/', `/.` or `/..` (RFC 3986
///    `remove_dot_segments`), except that the root is just `/`.
///
/// Otherwise ';' has no special meaning: `/a;b` is the single literal segment `a;b`
/// (but see [`is_reserved_path`], which looks through `;` in the first segment).
///
/// The result is a fixed point: `normalize_path(&normalize_path(x)?)? == normalize_path(x)?`.
pub fn normalize_path(raw: &str) -> Result<String, PathError> {
    let bytes = raw.as_bytes();
    match bytes.first() {
        None => return Err(PathError::Empty),
        Some(b'/') => {}
        Some(_) => return Err(PathError::NotAbsolute),
    }
    let mut buf = Vec::with_capacity(bytes.len());
    decode_into(bytes, &mut buf)?;
    if has_double_encoding(&buf) {
        return Err(PathError::DoubleEncoded);
    }
    resolve_in_place(&mut buf)?;
    String::from_utf8(buf).map_err(|_| PathError::InvalidUtf8)
}

/// True when a normalised path is the admin area: its first segment is `admin` in any
/// letter case (`/admin`, `/admin/`, `/ADMIN/x`). Anything after a ';' (or `%3B`) in
/// the first segment is ignored (`/admin;x/y` and `/admin%3Bx` are reserved), because
/// some servers strip `;` path parameters. `/administrator` is not reserved.
///
/// The proxy refuses reserved paths on proxy routes. Pass the output of
/// [`normalize_path`]; a raw path may hide `/admin` behind escapes or dot segments.
pub fn is_reserved_path(p: &str) -> bool {
    // Every request asks this, so it looks at the first bytes only instead of
    // splitting the segment (the substring search for `%3B` scanned the whole path).
    let Some(rest) = p.as_bytes().strip_prefix(b"/") else {
        return false;
    };
    let (Some(head), Some(after)) = (rest.get(..5), rest.get(5..)) else {
        return false;
    };
    head.eq_ignore_ascii_case(b"admin")
        && (after.is_empty()
            || after.starts_with(b"/")
            || after.starts_with(b";")
            || after.starts_with(b"%3B"))
}

/// Decode `raw` into `out` (rules 2 and 3 of [`normalize_path`]).
fn decode_into(raw: &[u8], out: &mut Vec<u8>) -> Result<(), PathError> {
    let mut i = 0;
    while let Some(&b) = raw.get(i) {
        match b {
            b'%' => {
                let (Some(&hi), Some(&lo)) = (raw.get(i + 1), raw.get(i + 2)) else {
                    return Err(PathError::InvalidEscape(i));
                };
                let (Some(h), Some(l)) = (hex_value(hi), hex_value(lo)) else {
                    return Err(PathError::InvalidEscape(i));
                };
                let v = (h << 4) | l;
                check_control(v)?;
                match v {
                    b'/' | b'\\' => out.push(b'/'),
                    v if is_unreserved(v) => out.push(v),
                    _ => out.extend_from_slice(&[
                        b'%',
                        hi.to_ascii_uppercase(),
                        lo.to_ascii_uppercase(),
                    ]),
                }
                i += 3;
            }
            b'\\' => {
                out.push(b'/');
                i += 1;
            }
            _ => {
                check_control(b)?;
                out.push(b);
                i += 1;
            }
        }
    }
    Ok(())
}

/// Collapse empty segments and resolve `.` / `..` in place (rules 4 and 5).
///
/// `buf` starts with '/'. The write cursor `w` never passes the read cursor, because
/// every kept segment `/seg` was read from at least as many bytes before it.
fn resolve_in_place(buf: &mut Vec<u8>) -> Result<(), PathError> {
    let n = buf.len();
    let mut w = 0;
    let mut r = 1;
    let mut trailing;
    loop {
        let end = buf
            .get(r..)
            .and_then(|s| s.iter().position(|&b| b == b'/'))
            .map_or(n, |i| r + i);
        let segment = buf.get(r..end).unwrap_or_default();
        if is_dot_with_params(segment) {
            return Err(PathError::DotSegmentParams);
        }
        match segment {
            b"" | b"." => trailing = true,
            b".." => {
                if w == 0 {
                    return Err(PathError::Traversal);
                }
                w = buf
                    .get(..w)
                    .and_then(|s| s.iter().rposition(|&b| b == b'/'))
                    .unwrap_or(0);
                trailing = true;
            }
            _ => {
                if let Some(slot) = buf.get_mut(w) {
                    *slot = b'/';
                }
                buf.copy_within(r..end, w + 1);
                w += 1 + (end - r);
                trailing = false;
            }
        }
        if end >= n {
            break;
        }
        r = end + 1;
    }
    buf.truncate(w);
    if w == 0 || trailing {
        buf.push(b'/');
    }
    Ok(())
}

/// `%25` followed by two hex digits anywhere in the decoded buffer. Checked after
/// decoding, so hex digits that were themselves encoded (`%25%32%65`) count too.
fn has_double_encoding(buf: &[u8]) -> bool {
    buf.windows(5).any(
        |w| matches!(w, [b'%', b'2', b'5', a, b] if a.is_ascii_hexdigit() && b.is_ascii_hexdigit()),
    )
}

/// A segment with path parameters (`;` or a kept `%3B`) whose part before them is
/// `.` or `..`. Plain `.` and `..` are resolved, not refused.
fn is_dot_with_params(segment: &[u8]) -> bool {
    let semi = segment.iter().position(|&b| b == b';');
    let enc = segment.windows(3).position(|w| w == b"%3B");
    let cut = match (semi, enc) {
        (Some(a), Some(b)) => a.min(b),
        (Some(a), None) | (None, Some(a)) => a,
        (None, None) => return false,
    };
    matches!(segment.get(..cut), Some(b"." | b".."))
}

fn check_control(b: u8) -> Result<(), PathError> {
    match b {
        0 => Err(PathError::Nul),
        0x01..=0x1f | 0x7f => Err(PathError::ControlChar),
        _ => Ok(()),
    }
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
