//! Small syntax checks shared by the validators: names, HTTP header names and values,
//! method tokens. Messages never echo header values (they may carry credentials).

use std::collections::BTreeMap;

use super::Report;

/// Header names a configuration must not set: they frame the message or belong to one
/// hop. Letting a route set them would invite request smuggling.
const FRAMING_HEADERS: &[&str] = &[
    "connection",
    "content-length",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Header names only the gateway sets on an upstream request: `Host` comes from the
/// upstream's `base_url` (a configured one would send the request to one host under
/// another's name).
const GATEWAY_HEADERS: &[&str] = &["host"];

const STANDARD_METHODS: &[&str] = &[
    "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
];

/// RFC 9110 `token`: header names and method names.
pub(crate) fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes().all(|b| {
            b.is_ascii_alphanumeric()
                || matches!(
                    b,
                    b'!' | b'#'
                        | b'$'
                        | b'%'
                        | b'&'
                        | b'\''
                        | b'*'
                        | b'+'
                        | b'-'
                        | b'.'
                        | b'^'
                        | b'_'
                        | b'`'
                        | b'|'
                        | b'~'
                )
        })
}

/// Why `value` cannot be an HTTP header value, if it cannot (same rule as
/// `http::HeaderValue`: visible characters, space and tab; no CR, LF, NUL or DEL).
pub(crate) fn header_value_problem(value: &str) -> Option<&'static str> {
    if value.contains(['\r', '\n']) {
        Some("contains a line break (CR or LF); not allowed in an HTTP header value")
    } else if value.contains('\0') {
        Some("contains a NUL byte; not allowed in an HTTP header value")
    } else if value.bytes().any(|b| (b < 0x20 && b != b'\t') || b == 0x7f) {
        Some("contains a control character; not allowed in an HTTP header value")
    } else {
        None
    }
}

/// Object names (upstreams, routes, credentials): `[A-Za-z0-9_.-]+`.
pub(crate) fn check_name(path: &str, name: &str, r: &mut Report) -> bool {
    if name.is_empty() {
        r.err(path, "must not be empty");
        false
    } else if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
    {
        r.err(
            path,
            format!("`{name}`: use only letters, digits, `_`, `.` and `-`"),
        );
        false
    } else {
        true
    }
}

pub(crate) fn check_header_name(path: &str, name: &str, r: &mut Report) -> bool {
    if is_token(name) {
        true
    } else {
        r.err(
            path,
            format!(
                "`{}` is not a valid HTTP header name (letters, digits and !#$%&'*+-.^_`|~ only)",
                name.escape_debug()
            ),
        );
        false
    }
}

/// A header map the gateway will send: names valid, no case-insensitive duplicates,
/// values valid; when `sending`, framing and hop-by-hop headers are refused.
pub(crate) fn check_headers(
    path: &str,
    headers: &BTreeMap<String, String>,
    sending: bool,
    r: &mut Report,
) {
    let mut seen: Vec<String> = Vec::with_capacity(headers.len());
    for (name, value) in headers {
        let entry = format!("{path}.{name}");
        if !check_header_name(&entry, name, r) {
            continue;
        }
        let lower = name.to_ascii_lowercase();
        if seen.contains(&lower) {
            r.err(&entry, "duplicate header (names are case-insensitive)");
        }
        if sending && FRAMING_HEADERS.contains(&lower.as_str()) {
            r.err(
                &entry,
                "framing and hop-by-hop headers cannot be set by configuration",
            );
        }
        if sending && GATEWAY_HEADERS.contains(&lower.as_str()) {
            r.err(
                &entry,
                "`host` is set by the gateway from the upstream's base_url and cannot be set by configuration",
            );
        }
        if let Some(problem) = header_value_problem(value) {
            r.err(&entry, problem);
        }
        seen.push(lower);
    }
}

/// Framing, hop-by-hop and gateway-only headers (`host`): never carry a credential.
pub(crate) fn is_framing_header(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    FRAMING_HEADERS.contains(&lower.as_str()) || GATEWAY_HEADERS.contains(&lower.as_str())
}

/// A method in a route's `match.methods`: a method token or `ANY`. Standard methods are
/// case-sensitive, so `post` is refused with a hint.
pub(crate) fn check_method(path: &str, method: &str, r: &mut Report) {
    if method == "ANY" {
        return;
    }
    if !is_token(method) {
        r.err(
            path,
            format!(
                "`{}` is not an HTTP method (e.g. GET, POST) or ANY",
                method.escape_debug()
            ),
        );
        return;
    }
    let upper = method.to_ascii_uppercase();
    if upper != method && (upper == "ANY" || STANDARD_METHODS.contains(&upper.as_str())) {
        r.err(
            path,
            format!("`{method}`: methods are case-sensitive; write `{upper}`"),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens() {
        assert!(is_token("x-team"));
        assert!(is_token("X_Custom.1"));
        assert!(!is_token(""));
        assert!(!is_token("bad name"));
        assert!(!is_token("a:b"));
        assert!(!is_token("é"));
    }

    #[test]
    fn values() {
        assert!(header_value_problem("Bearer abc\tdef é").is_none());
        assert!(header_value_problem("a\r\nb").is_some());
        assert!(header_value_problem("a\0").is_some());
        assert!(header_value_problem("a\x7f").is_some());
    }

    #[test]
    fn methods() {
        let mut r = Report::default();
        check_method("m", "POST", &mut r);
        check_method("m", "ANY", &mut r);
        check_method("m", "PROPFIND", &mut r);
        assert!(r.errors.is_empty());
        check_method("m", "post", &mut r);
        check_method("m", "GE T", &mut r);
        assert_eq!(r.errors.len(), 2);
    }
}
