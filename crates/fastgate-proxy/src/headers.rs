//! Header handling: finding the client's gateway key, stripping hop-by-hop and
//! credential headers, and redacting secrets for audit capture.

use http::HeaderMap;
use http::header::{self, HeaderName, HeaderValue};

/// Headers that describe one hop and are never forwarded (RFC 9110 §7.6.1), plus
/// the proxy-auth pair.
const HOP_BY_HOP: [HeaderName; 8] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
    header::PROXY_AUTHORIZATION,
];

/// The client's request id, echoed back (and kept in the audit record).
pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
/// The gateway's own request id (the audit record's key).
pub const X_FASTGATE_REQUEST_ID: HeaderName = HeaderName::from_static("x-fastgate-request-id");
/// Sent by Anthropic clients (and added upstream when they leave it out).
pub(crate) const ANTHROPIC_VERSION: HeaderName = HeaderName::from_static("anthropic-version");
pub(crate) const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

const X_API_KEY: HeaderName = HeaderName::from_static("x-api-key");
pub(crate) const X_GOOG_API_KEY: HeaderName = HeaderName::from_static("x-goog-api-key");

/// Headers that may carry the client's gateway key; never forwarded upstream.
const CLIENT_CREDENTIALS: [HeaderName; 3] = [header::AUTHORIZATION, X_API_KEY, X_GOOG_API_KEY];

/// Where the client's key came from (so the right header can be stripped).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeySource {
    Bearer,
    XApiKey,
    GoogApiKey,
    Query,
}

/// Find the gateway key: `Authorization: Bearer`, `X-API-Key`, `x-goog-api-key`,
/// then `?key=`. Returns `None` when none is present.
pub fn extract_key<'a>(
    headers: &'a HeaderMap,
    query: Option<&'a str>,
) -> Option<(&'a str, KeySource)> {
    if let Some(v) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        let v = v.trim();
        let token = match v.split_once(' ') {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("bearer") => rest.trim(),
            _ if v.eq_ignore_ascii_case("bearer") => "",
            _ => v,
        };
        if !token.is_empty() {
            return Some((token, KeySource::Bearer));
        }
    }
    for (name, source) in [
        (X_API_KEY, KeySource::XApiKey),
        (X_GOOG_API_KEY, KeySource::GoogApiKey),
    ] {
        if let Some(v) = headers.get(name).and_then(|v| v.to_str().ok()) {
            let v = v.trim();
            if !v.is_empty() {
                return Some((v, source));
            }
        }
    }
    query.and_then(|q| {
        q.split('&')
            .find_map(|pair| pair.strip_prefix("key="))
            .filter(|k| !k.is_empty())
            .map(|k| (k, KeySource::Query))
    })
}

/// Remove `key=` from a query string (the client's key is never forwarded).
pub fn strip_key_param(query: &str) -> Option<String> {
    let kept: Vec<&str> = query
        .split('&')
        .filter(|p| !p.is_empty() && !p.starts_with("key="))
        .collect();
    (!kept.is_empty()).then(|| kept.join("&"))
}

/// Reject header names with '_' (aliasing with '-' in some upstream frameworks).
pub fn find_underscore_header(headers: &HeaderMap) -> Option<&str> {
    headers
        .keys()
        .map(HeaderName::as_str)
        .find(|name| name.contains('_'))
}

/// Build the headers sent upstream: the client's headers minus hop-by-hop headers,
/// headers the client's `Connection` names, its credentials, `Host` and
/// `Content-Length` (recomputed from the body), and the route's `remove_headers`.
pub fn upstream_headers(client: &HeaderMap, remove: &[HeaderName]) -> HeaderMap {
    let mut out = HeaderMap::with_capacity(client.len() + 4);
    // Borrowed tokens: no allocation unless the client sent `Connection`.
    let named_by_connection: Vec<&str> = client
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    for (name, value) in client {
        if HOP_BY_HOP.contains(name)
            || CLIENT_CREDENTIALS.contains(name)
            || name == header::HOST
            || name == header::CONTENT_LENGTH
            || remove.contains(name)
            || named_by_connection
                .iter()
                .any(|n| n.eq_ignore_ascii_case(name.as_str()))
        {
            continue;
        }
        out.append(name.clone(), value.clone());
    }
    out
}

/// Copy an upstream response's headers for the client, minus hop-by-hop ones.
pub fn response_headers(upstream: &HeaderMap) -> HeaderMap {
    let mut out = HeaderMap::with_capacity(upstream.len() + 1);
    for (name, value) in upstream {
        if HOP_BY_HOP.contains(name) {
            continue;
        }
        out.append(name.clone(), value.clone());
    }
    out
}

/// Header names whose values the audit log never stores. `name` is lowercase (as
/// `HeaderName` keeps it). Anything that looks like a credential counts: the exact
/// names providers use, `x-auth*`, and names that contain `token`, `secret`,
/// `password`, `credential`, `signature` or `apikey`, or end in `-key`.
pub fn is_secret_header(name: &str) -> bool {
    !is_common_plain_header(name) && looks_like_credential(name)
}

/// The full rule of [`is_secret_header`], without the shortcut for common names.
fn looks_like_credential(name: &str) -> bool {
    matches!(
        name,
        "authorization"
            | "proxy-authorization"
            | "x-api-key"
            | "x-goog-api-key"
            | "api-key"
            | "apikey"
            | "cookie"
            | "set-cookie"
            | "set-cookie2"
    ) || name.starts_with("x-auth")
        || name.ends_with("-key")
        || name.ends_with("-token")
        || name.ends_with("-secret")
        || contains_secret_word(name)
}

/// Names nearly every request or answer carries and that can never be credentials
/// (none contains a secret word or ends like one): answered without the pattern scan,
/// which cost more than the rest of the header capture.
fn is_common_plain_header(name: &str) -> bool {
    matches!(
        name,
        "accept"
            | "accept-encoding"
            | "accept-language"
            | "cache-control"
            | "connection"
            | "content-encoding"
            | "content-length"
            | "content-type"
            | "date"
            | "host"
            | "server"
            | "transfer-encoding"
            | "user-agent"
            | "vary"
            | "x-request-id"
            | "x-fastgate-request-id"
    )
}

/// Words that mark a credential anywhere in a header or query parameter name
/// (lowercase). Matched in one pass (this runs for every captured header of every
/// request); the plain scan is the fallback should the pattern ever fail to build.
fn contains_secret_word(name: &str) -> bool {
    const WORDS: [&str; 8] = [
        "token",
        "secret",
        "password",
        "passwd",
        "credential",
        "signature",
        "apikey",
        "api-key",
    ];
    static PATTERN: std::sync::LazyLock<Option<regex::Regex>> =
        std::sync::LazyLock::new(|| regex::Regex::new(&WORDS.join("|")).ok());
    match PATTERN.as_ref() {
        Some(re) => re.is_match(name),
        None => WORDS.iter().any(|w| name.contains(w)),
    }
}

/// Query parameter names whose values the audit log never stores (compared
/// case-insensitively, after percent-decoding the name).
const SECRET_PARAMS: [&str; 22] = [
    "key",
    "api_key",
    "apikey",
    "api-key",
    "access_token",
    "refresh_token",
    "id_token",
    "token",
    "auth",
    "auth_token",
    "authorization",
    "secret",
    "client_secret",
    "password",
    "passwd",
    "pwd",
    "sig",
    "signature",
    "code",
    "session",
    "sessionid",
    "jwt",
];

/// Is the query parameter `name` (raw, possibly percent-encoded) a credential?
pub fn is_secret_param(name: &str) -> bool {
    let decoded: String = url::form_urlencoded::parse(name.as_bytes())
        .next()
        .map(|(n, _)| n.to_ascii_lowercase())
        .unwrap_or_default();
    let n = decoded.trim();
    SECRET_PARAMS.contains(&n)
        || [
            "_token", "-token", "_key", "-key", "_secret", "-secret", ".token", ".key",
        ]
        .iter()
        .any(|suffix| n.ends_with(suffix))
        || contains_secret_word(n)
}

/// The query string as the audit log keeps it: the value of every parameter
/// named like a credential (`key`, `api_key`, `access_token`, `sig`, …) replaced
/// by `[redacted]`. Returns `query` itself when there is nothing to hide.
pub fn redact_query(query: String) -> String {
    let secret = |pair: &str| {
        pair.split_once('=')
            .is_some_and(|(n, _)| is_secret_param(n))
    };
    if !query.split('&').any(secret) {
        return query;
    }
    let mut out = String::with_capacity(query.len());
    for (i, pair) in query.split('&').enumerate() {
        if i > 0 {
            out.push('&');
        }
        match pair.split_once('=') {
            Some((name, _)) if is_secret_param(name) => {
                out.push_str(name);
                out.push_str("=[redacted]");
            }
            _ => out.push_str(pair),
        }
    }
    out
}

/// JSON object of headers for the audit log, secrets replaced by `[redacted]`;
/// repeated headers joined with `, `. Written straight into one string, in one walk
/// over the map: `HeaderMap::iter` yields the values of one name one after another,
/// so a repeated name is seen as the same name as the entry before it (a lookup of
/// every name by `get_all` hashed each name again).
pub fn redacted_json(headers: &HeaderMap) -> String {
    let mut out = String::with_capacity(64 + headers.len() * 48);
    out.push('{');
    let mut previous: Option<(&HeaderName, bool)> = None;
    for (name, value) in headers.iter() {
        let secret = match previous {
            Some((prev, secret)) if prev == name => {
                if !secret {
                    out.push_str(", ");
                    push_escaped(&mut out, &value_text(value));
                }
                continue;
            }
            Some(_) => {
                out.push_str("\",\"");
                is_secret_header(name.as_str())
            }
            None => {
                out.push('"');
                is_secret_header(name.as_str())
            }
        };
        // A header name is a token (letters, digits, `!#$%&'*+-.^_`|~`): never
        // anything JSON escapes, so it is copied as it is.
        debug_assert!(!name.as_str().bytes().any(needs_escape));
        out.push_str(name.as_str());
        out.push_str("\":\"");
        if secret {
            out.push_str("[redacted]");
        } else {
            push_escaped(&mut out, &value_text(value));
        }
        previous = Some((name, secret));
    }
    if previous.is_some() {
        out.push('"');
    }
    out.push('}');
    out
}

/// A header value as text for the audit log: `str::from_utf8` checks ASCII a word at
/// a time (borrowing); the lossy decoding only for the rare value that is not UTF-8.
pub(crate) fn value_text(value: &HeaderValue) -> std::borrow::Cow<'_, str> {
    match std::str::from_utf8(value.as_bytes()) {
        Ok(text) => std::borrow::Cow::Borrowed(text),
        Err(_) => String::from_utf8_lossy(value.as_bytes()),
    }
}

/// Append `s` escaped for the inside of a JSON string literal. Runs of bytes that
/// need no escape are copied whole (this runs for every captured header of every
/// request; a push per character cost more than the rest of the capture). Only
/// ASCII bytes are ever escaped, so the runs always end on a character boundary.
fn push_escaped(out: &mut String, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    // Most names and values need no escape at all: a fold without an early exit over
    // the whole string is vectorised, where the byte loop below is not.
    if !s
        .as_bytes()
        .iter()
        .fold(false, |any, &b| any | needs_escape(b))
    {
        out.push_str(s);
        return;
    }
    let mut plain_from = 0;
    for (i, &b) in s.as_bytes().iter().enumerate() {
        let escape: &str = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            0..=0x1f | 0x7f => "",
            _ => continue,
        };
        out.push_str(&s[plain_from..i]);
        plain_from = i + 1;
        if escape.is_empty() {
            out.push_str("\\u00");
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0xf)]));
        } else {
            out.push_str(escape);
        }
    }
    out.push_str(&s[plain_from..]);
}

/// Bytes a JSON string literal cannot hold as they are.
fn needs_escape(b: u8) -> bool {
    b < 0x20 || b == b'"' || b == b'\\' || b == 0x7f
}

/// The client's `x-request-id`, when it is short (1..=128 bytes) and plain (ASCII
/// letters, digits, `-_.:`). It is echoed back, sent upstream and stored in the audit
/// record's `client_request_id`, but it never identifies the record: that is
/// [`gateway_request_id`]. Anything else is ignored.
pub fn request_id(headers: &HeaderMap) -> Option<HeaderValue> {
    let v = headers.get(X_REQUEST_ID)?;
    let b = v.as_bytes();
    let plain = !b.is_empty()
        && b.len() <= 128
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || b"-_.:".contains(c));
    plain.then(|| v.clone())
}

/// A new gateway request id: a UUIDv7 (time-ordered), the audit record's key.
pub fn gateway_request_id() -> HeaderValue {
    let id = uuid::Uuid::now_v7();
    let mut buf = uuid::Uuid::encode_buffer();
    HeaderValue::from_str(id.hyphenated().encode_lower(&mut buf))
        .unwrap_or_else(|_| HeaderValue::from_static("invalid"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_header_name_needs_a_json_escape() {
        // redacted_json copies names unescaped: every byte a name may hold is safe.
        for b in 0..=u8::MAX {
            if let Ok(name) = HeaderName::from_bytes(&[b'x', b]) {
                assert!(!name.as_str().bytes().any(needs_escape), "byte {b:#x}");
            }
        }
    }

    fn map(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    #[test]
    fn extracts_keys_in_order() {
        let h = map(&[
            ("authorization", "Bearer fg_abc"),
            ("x-api-key", "fg_other"),
        ]);
        assert_eq!(extract_key(&h, None), Some(("fg_abc", KeySource::Bearer)));
        let h = map(&[("x-api-key", "fg_x")]);
        assert_eq!(extract_key(&h, None), Some(("fg_x", KeySource::XApiKey)));
        let h = map(&[("x-goog-api-key", "fg_g")]);
        assert_eq!(extract_key(&h, None), Some(("fg_g", KeySource::GoogApiKey)));
        assert_eq!(
            extract_key(&HeaderMap::new(), Some("a=1&key=fg_q")),
            Some(("fg_q", KeySource::Query))
        );
        assert_eq!(extract_key(&HeaderMap::new(), Some("a=1")), None);
        assert_eq!(
            extract_key(&map(&[("authorization", "Bearer ")]), None),
            None
        );
    }

    #[test]
    fn strips_hop_by_hop_credentials_and_connection_named() {
        let h = map(&[
            ("authorization", "Bearer fg_abc"),
            ("x-api-key", "fg_abc"),
            ("connection", "keep-alive, x-custom"),
            ("x-custom", "1"),
            ("x-keep", "2"),
            ("x-debug", "3"),
            ("host", "evil.example"),
            ("content-length", "10"),
            ("transfer-encoding", "chunked"),
        ]);
        let out = upstream_headers(&h, &[HeaderName::from_static("x-debug")]);
        let names: Vec<&str> = out.keys().map(|k| k.as_str()).collect();
        assert_eq!(names, vec!["x-keep"]);
    }

    #[test]
    fn header_json_is_valid_and_joined() {
        let h = map(&[
            ("x-a", "1"),
            ("x-a", "2"),
            ("x-q", "say \"hi\" \\ there"),
            ("cookie", "c"),
        ]);
        let v: serde_json::Value = serde_json::from_str(&redacted_json(&h)).unwrap();
        assert_eq!(v["x-a"], "1, 2");
        assert_eq!(v["x-q"], "say \"hi\" \\ there");
        assert_eq!(v["cookie"], "[redacted]");
        assert_eq!(redacted_json(&HeaderMap::new()), "{}");
        // Repeated names, a repeated secret last: each name once, in order.
        let h = map(&[
            ("x-a", "1"),
            ("set-cookie", "s=canary"),
            ("x-a", "2"),
            ("x-b", "3"),
            ("set-cookie", "t=canary"),
        ]);
        assert_eq!(
            redacted_json(&h),
            r#"{"x-a":"1, 2","set-cookie":"[redacted]","x-b":"3"}"#
        );
        // A value that is not UTF-8 (obs-text) is kept, its stray byte replaced.
        let mut h = HeaderMap::new();
        h.insert("x-l1", HeaderValue::from_bytes(b"caf\xe9 \"ok\"").unwrap());
        let v: serde_json::Value = serde_json::from_str(&redacted_json(&h)).unwrap();
        assert_eq!(v["x-l1"], "caf\u{fffd} \"ok\"");
    }

    #[test]
    fn escaping_round_trips_through_a_json_parser() {
        for text in [
            "",
            "plain",
            "\"",
            "a\\b",
            "tab\there\u{1}\u{1f}\u{7f}end",
            "é日本\"語\\ü",
            "\"\"\\\\",
        ] {
            let mut out = String::from("\"");
            push_escaped(&mut out, text);
            out.push('"');
            let back: String = serde_json::from_str(&out).unwrap();
            assert_eq!(back, text, "{out}");
        }
    }

    #[test]
    fn redacts_secrets() {
        let h = map(&[
            ("authorization", "Bearer sk-canary"),
            ("cookie", "s=canary"),
            ("x-ok", "v"),
        ]);
        let j = redacted_json(&h);
        assert!(!j.contains("canary"));
        assert!(j.contains("x-ok"));
    }

    #[test]
    fn redacts_credential_like_header_names() {
        for name in [
            "authorization",
            "proxy-authorization",
            "apikey",
            "x-api-key",
            "x-auth",
            "x-auth-user-hash",
            "x-session-token",
            "x-upstream-key",
            "x-client-secret",
            "cookie",
            "set-cookie",
            "x-amz-security-token",
            "x-db-password",
        ] {
            assert!(is_secret_header(name), "{name}");
            let h = map(&[(name, "canary-value")]);
            assert!(!redacted_json(&h).contains("canary"), "{name}");
        }
        for name in [
            "content-type",
            "x-request-id",
            "user-agent",
            "x-keep",
            "accept",
        ] {
            assert!(!is_secret_header(name), "{name}");
        }
    }

    #[test]
    fn the_common_header_shortcut_agrees_with_the_full_check() {
        for name in [
            "accept",
            "accept-encoding",
            "accept-language",
            "cache-control",
            "connection",
            "content-encoding",
            "content-length",
            "content-type",
            "date",
            "host",
            "server",
            "transfer-encoding",
            "user-agent",
            "vary",
            "x-request-id",
            "x-fastgate-request-id",
        ] {
            assert!(is_common_plain_header(name), "{name}");
            assert!(
                !looks_like_credential(name),
                "{name} looks like a credential"
            );
        }
        assert!(!is_common_plain_header("x-content-type-token"));
    }

    #[test]
    fn redacts_credential_like_query_params() {
        let q = "a=1&KEY=k1&api_key=k2&ApiKey=k3&access_token=t1&token=t2&secret=s1\
                 &password=p1&sig=g1&Signature=g2&x_api%5Fkey=k4&my-token=t3&alt=sse&flag";
        let out = redact_query(q.to_string());
        for leaked in [
            "k1", "k2", "k3", "k4", "t1", "t2", "t3", "s1", "p1", "g1", "g2",
        ] {
            assert!(!out.contains(leaked), "{leaked} in {out}");
        }
        assert!(
            out.starts_with("a=1&KEY=[redacted]&api_key=[redacted]"),
            "{out}"
        );
        assert!(out.ends_with("&alt=sse&flag"), "{out}");
        // Nothing to hide: the same string back.
        assert_eq!(redact_query("a=1&b=2".into()), "a=1&b=2");
        assert_eq!(redact_query("monkey=1".into()), "monkey=1");
    }

    #[test]
    fn query_key_stripped() {
        assert_eq!(
            strip_key_param("key=fg_x&alt=sse").as_deref(),
            Some("alt=sse")
        );
        assert_eq!(strip_key_param("key=fg_x"), None);
    }

    #[test]
    fn request_ids() {
        let h = map(&[("x-request-id", "abc-123")]);
        assert_eq!(request_id(&h).unwrap(), "abc-123");
        let h = map(&[("x-request-id", "bad id with spaces")]);
        assert_eq!(request_id(&h), None);
        assert_eq!(
            request_id(&map(&[("x-request-id", &"a".repeat(129))])),
            None
        );
        assert_eq!(request_id(&HeaderMap::new()), None);
        let (a, b) = (gateway_request_id(), gateway_request_id());
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
    }
}
