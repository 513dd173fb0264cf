//! `cors:` checks. Origins are compared byte for byte with the browser's `Origin`
//! header, so only the form a browser sends is accepted: a typo or an uppercase
//! host would otherwise fail silently in the browser.

use super::Report;
use super::http::is_token;
use crate::cors::CorsConfig;

/// Largest `max_age` accepted (browsers cap it lower: Chromium at 2 h).
const MAX_AGE_LIMIT: u32 = 86_400;

pub(super) fn check(c: &CorsConfig, r: &mut Report) {
    let any = c.any_origin();
    if any && c.allowed_origins.len() > 1 {
        r.err(
            "cors.allowed_origins",
            "`*` allows every origin and must be the only entry",
        );
    }
    for (i, origin) in c.allowed_origins.iter().enumerate() {
        if origin != "*"
            && let Some(problem) = origin_problem(origin)
        {
            r.err(format!("cors.allowed_origins[{i}]"), problem);
        }
    }
    if c.allow_credentials && any {
        r.err(
            "cors.allow_credentials",
            "cannot be true with allowed_origins `*` (browsers refuse credentials with a \
             wildcard origin); list the origins",
        );
    }
    tokens(
        r,
        "cors.allowed_headers",
        &c.allowed_headers,
        c.allow_credentials,
    );
    tokens(
        r,
        "cors.allowed_methods",
        &c.allowed_methods,
        c.allow_credentials,
    );
    tokens(
        r,
        "cors.expose_headers",
        &c.expose_headers,
        c.allow_credentials,
    );
    if c.max_age > MAX_AGE_LIMIT {
        r.err(
            "cors.max_age",
            format!("at most {MAX_AGE_LIMIT} seconds, got {}", c.max_age),
        );
    }
}

/// Header or method names (RFC 9110 tokens), or `*` when credentials are off
/// (with credentials browsers read `*` as a literal name).
fn tokens(r: &mut Report, field: &str, values: &[String], credentials: bool) {
    for (i, v) in values.iter().enumerate() {
        let path = format!("{field}[{i}]");
        if v == "*" && credentials {
            r.err(
                path,
                "`*` is not a wildcard when allow_credentials is true; list the names",
            );
        } else if !is_token(v) {
            r.err(
                path,
                format!("`{}` is not a header or method name", v.escape_debug()),
            );
        }
    }
}

/// Why `origin` is not a browser's serialized origin (`scheme://host[:port]`).
pub(crate) fn origin_problem(origin: &str) -> Option<String> {
    const FORM: &str = "expected `scheme://host[:port]` as browsers send it (e.g. \
                        https://app.example.com or http://localhost:3000), or `*`";
    if origin == "null" {
        return Some("`null` (sandboxed pages, local files) cannot be allowed".into());
    }
    let Some((scheme, rest)) = origin.split_once("://") else {
        return Some(format!("`{}`: {FORM}", origin.escape_debug()));
    };
    let scheme_ok = scheme
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_lowercase())
        && scheme
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"+.-".contains(&b));
    let (host, port) = split_port(rest);
    let ipv6 = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .is_some_and(|h| {
            !h.is_empty()
                && h.bytes()
                    .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
        });
    let name = host
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
    let host_ok = !host.is_empty() && (ipv6 || name);
    let port_ok = port.is_none_or(|p| {
        !p.is_empty() && !p.starts_with('0') && p.parse::<u16>().is_ok_and(|n| n > 0)
    });
    if !scheme_ok || !host_ok || !port_ok {
        return Some(format!("`{}`: {FORM}", origin.escape_debug()));
    }
    if origin.bytes().any(|b| b.is_ascii_uppercase()) {
        return Some(format!(
            "`{origin}`: browsers send origins in lowercase; write `{}`",
            origin.to_ascii_lowercase()
        ));
    }
    let default_port = matches!(
        (scheme, port),
        ("https", Some("443")) | ("http", Some("80"))
    );
    if default_port {
        return Some(format!(
            "`{origin}`: browsers leave the default port out; write `{scheme}://{host}`"
        ));
    }
    None
}

/// `host[:port]` → (host, port); an IPv6 literal keeps its brackets.
fn split_port(authority: &str) -> (&str, Option<&str>) {
    let colon = match authority.rfind(']') {
        Some(end) => authority[end..].find(':').map(|i| end + i),
        None => authority.rfind(':'),
    };
    match colon {
        Some(i) => (&authority[..i], Some(&authority[i + 1..])),
        None => (authority, None),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn errors(c: &CorsConfig) -> Vec<String> {
        let mut r = Report::default();
        check(c, &mut r);
        r.errors.iter().map(ToString::to_string).collect()
    }

    fn with_origins(origins: &[&str]) -> CorsConfig {
        CorsConfig {
            allowed_origins: origins.iter().map(|s| (*s).to_owned()).collect(),
            ..CorsConfig::default()
        }
    }

    #[test]
    fn off_by_default_and_the_defaults_are_valid() {
        let c = CorsConfig::default();
        assert!(!c.is_enabled());
        assert!(errors(&c).is_empty());
        assert!(c.allowed_headers.iter().any(|h| h == "authorization"));
        assert!(
            c.expose_headers
                .iter()
                .any(|h| h == "x-ratelimit-remaining-requests")
        );
        assert_eq!(c.max_age, 600);
    }

    #[test]
    fn accepts_origins_as_browsers_send_them() {
        let ok = [
            "https://app.example.com",
            "http://localhost:3000",
            "http://127.0.0.1:8080",
            "http://[::1]:5173",
            "chrome-extension://abcdefghijklmnop",
        ];
        for o in ok {
            assert_eq!(origin_problem(o), None, "{o}");
        }
        assert!(errors(&with_origins(&ok)).is_empty());
        assert!(errors(&with_origins(&["*"])).is_empty());
    }

    #[test]
    fn refuses_what_no_browser_sends() {
        let bad = [
            ("app.example.com", "scheme://host"),
            ("https://app.example.com/", "scheme://host"),
            ("https://app.example.com/path", "scheme://host"),
            ("https://user@app.example.com", "scheme://host"),
            ("https://", "scheme://host"),
            ("https://a.com:", "scheme://host"),
            ("https://a.com:0", "scheme://host"),
            ("https://a.com:65536", "scheme://host"),
            ("https://a.com:08", "scheme://host"),
            ("https://*.example.com", "scheme://host"),
            ("HTTPS://a.com", "scheme://host"),
            ("https://App.Example.com", "write `https://app.example.com`"),
            ("https://a.com:443", "write `https://a.com`"),
            ("http://a.com:80", "write `http://a.com`"),
            ("null", "cannot be allowed"),
        ];
        for (o, want) in bad {
            let problem = origin_problem(o).unwrap_or_default();
            assert!(problem.contains(want), "{o}: {problem}");
        }
        let errs = errors(&with_origins(&["https://ok.com", "https://a.com/x"]));
        assert_eq!(errs.len(), 1);
        assert!(errs[0].starts_with("cors.allowed_origins[1]"), "{errs:?}");
    }

    #[test]
    fn wildcard_is_alone_and_never_with_credentials() {
        let errs = errors(&with_origins(&["*", "https://a.com"]));
        assert!(errs[0].contains("must be the only entry"), "{errs:?}");

        let mut c = with_origins(&["*"]);
        c.allow_credentials = true;
        let errs = errors(&c);
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert!(errs[0].starts_with("cors.allow_credentials"), "{errs:?}");

        let mut c = with_origins(&["https://a.com"]);
        c.allow_credentials = true;
        assert!(errors(&c).is_empty());
        c.allowed_headers = vec!["*".into()];
        let errs = errors(&c);
        assert!(errs[0].starts_with("cors.allowed_headers[0]"), "{errs:?}");
        c.allow_credentials = false;
        assert!(errors(&c).is_empty());
    }

    #[test]
    fn names_max_age_and_header_syntax() {
        let mut c = with_origins(&["https://a.com"]);
        c.allowed_headers = vec!["x-ok".into(), "bad header".into()];
        c.allowed_methods = vec!["POST".into(), "".into()];
        c.expose_headers = vec!["x:y".into()];
        c.max_age = 86_401;
        let errs = errors(&c);
        assert_eq!(errs.len(), 4, "{errs:?}");
        assert!(errs[0].starts_with("cors.allowed_headers[1]"), "{errs:?}");
        assert!(errs[1].starts_with("cors.allowed_methods[1]"), "{errs:?}");
        assert!(errs[2].starts_with("cors.expose_headers[0]"), "{errs:?}");
        assert!(errs[3].starts_with("cors.max_age"), "{errs:?}");
    }

    #[test]
    fn loads_from_yaml() {
        let cfg = crate::load_str(
            "cors:\n  allowed_origins: [\"https://app.example.com\"]\n  max_age: 60\n",
            &|_| None,
        )
        .unwrap();
        assert!(cfg.cors.is_enabled());
        assert_eq!(cfg.cors.max_age, 60);
        assert_eq!(cfg.cors.allowed_methods, ["GET", "POST", "OPTIONS"]);
        let err = crate::load_str(
            "cors:\n  allowed_origins: [\"*\"]\n  allow_credentials: true\n",
            &|_| None,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("cors.allow_credentials"), "{err}");
        let err = crate::load_str("cors:\n  origins: []\n", &|_| None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("origins"), "{err}");
    }
}
