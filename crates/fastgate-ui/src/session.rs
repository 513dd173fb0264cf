//! Browser sessions for the admin UI, without server-side state.
//!
//! Signing in with the admin token sets the `fg_session` cookie: `expiry.nonce.tag`
//! (base64url), the tag an HMAC-SHA256 over expiry and nonce with a key derived from
//! the admin token. Any instance of a fleet sharing the token verifies it; changing
//! the admin token ends every session. The cookie is `HttpOnly`, `SameSite=Strict`,
//! scoped to `/admin` (and `Secure` when the request came over HTTPS).
//!
//! CSRF: a request authenticated by the cookie that changes anything (any method but
//! GET/HEAD/OPTIONS) must carry `X-CSRF-Token`, the HMAC of the session's nonce that the
//! page embeds; and a browser's `Origin`, when sent, must be this host's. A cross-site
//! form or script can send the cookie (SameSite aside) but can read neither the token
//! nor the page.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::{HeaderMap, HeaderValue, Method, header};
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};
use subtle::ConstantTimeEq;

/// The session cookie's name.
pub const COOKIE: &str = "fg_session";
/// The header carrying the CSRF token on state-changing requests.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// How long a session lasts.
pub const LIFETIME_SECS: u64 = 12 * 3600;

const NONCE_LEN: usize = 16;

/// Why a cookie-authenticated request is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denied {
    /// No valid session (absent, forged, expired, or signed with an older admin token).
    NoSession,
    /// A state-changing request without the session's CSRF token.
    Csrf,
    /// A browser request from another origin.
    CrossOrigin,
}

/// A verified session.
#[derive(Debug, Clone)]
pub struct Session {
    nonce: [u8; NONCE_LEN],
    key: hmac::Key,
}

impl Session {
    /// The CSRF token pages embed and scripts send back in `X-CSRF-Token`.
    pub fn csrf_token(&self) -> String {
        csrf_of(&self.key, &self.nonce)
    }
}

fn key_for(admin_token: &str) -> hmac::Key {
    // A key of its own, so the cookie's tag never reveals anything about the token.
    let base = hmac::Key::new(hmac::HMAC_SHA256, admin_token.as_bytes());
    let derived = hmac::sign(&base, b"fastgate-ui-session-v1");
    hmac::Key::new(hmac::HMAC_SHA256, derived.as_ref())
}

fn csrf_of(key: &hmac::Key, nonce: &[u8]) -> String {
    let mut msg = Vec::with_capacity(5 + nonce.len());
    msg.extend_from_slice(b"csrf:");
    msg.extend_from_slice(nonce);
    URL_SAFE_NO_PAD.encode(hmac::sign(key, &msg).as_ref())
}

fn signed_part(expiry: u64, nonce: &[u8]) -> Vec<u8> {
    let mut msg = Vec::with_capacity(8 + nonce.len());
    msg.extend_from_slice(&expiry.to_be_bytes());
    msg.extend_from_slice(nonce);
    msg
}

/// A new session cookie value for `admin_token`, valid until `now + LIFETIME_SECS`.
/// None when the system's random source fails (the sign-in then fails).
pub fn issue(admin_token: &str, now_secs: u64) -> Option<String> {
    let mut nonce = [0u8; NONCE_LEN];
    SystemRandom::new().fill(&mut nonce).ok()?;
    let expiry = now_secs.saturating_add(LIFETIME_SECS);
    let key = key_for(admin_token);
    let tag = hmac::sign(&key, &signed_part(expiry, &nonce));
    Some(format!(
        "{}.{}.{}",
        expiry,
        URL_SAFE_NO_PAD.encode(nonce),
        URL_SAFE_NO_PAD.encode(tag.as_ref())
    ))
}

/// The session a cookie value proves, if it is genuine and unexpired.
pub fn verify(admin_token: &str, value: &str, now_secs: u64) -> Option<Session> {
    if admin_token.is_empty() {
        return None;
    }
    let mut it = value.split('.');
    let (expiry, nonce, tag) = (it.next()?, it.next()?, it.next()?);
    if it.next().is_some() {
        return None;
    }
    let expiry: u64 = expiry.parse().ok()?;
    if expiry <= now_secs {
        return None;
    }
    let nonce: [u8; NONCE_LEN] = URL_SAFE_NO_PAD.decode(nonce).ok()?.try_into().ok()?;
    let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
    let key = key_for(admin_token);
    hmac::verify(&key, &signed_part(expiry, &nonce), &tag).ok()?;
    Some(Session { nonce, key })
}

/// The `fg_session` value among the request's cookies.
pub fn cookie_value(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value)
}

/// The session of a request, if its cookie proves one.
pub fn from_headers(admin_token: &str, headers: &HeaderMap, now_secs: u64) -> Option<Session> {
    verify(admin_token, cookie_value(headers)?, now_secs)
}

/// Whether a request authenticated by its session cookie may proceed: a valid session,
/// a same-origin browser request, and for state-changing methods the CSRF token.
pub fn authorize(
    admin_token: &str,
    method: &Method,
    headers: &HeaderMap,
    now_secs: u64,
) -> Result<Session, Denied> {
    let session = from_headers(admin_token, headers, now_secs).ok_or(Denied::NoSession)?;
    if !same_origin(headers) {
        return Err(Denied::CrossOrigin);
    }
    if !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
        let sent = headers
            .get(CSRF_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let expected = session.csrf_token();
        if !bool::from(sent.as_bytes().ct_eq(expected.as_bytes())) {
            return Err(Denied::Csrf);
        }
    }
    Ok(session)
}

/// A browser's `Origin` (sent on cross-origin requests and on same-origin POSTs) names
/// this host; requests without one (same-origin GETs, non-browser clients) pass.
pub fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let Some(host) = headers.get(header::HOST).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let authority = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"));
    authority.is_some_and(|a| a.eq_ignore_ascii_case(host))
}

/// `Set-Cookie` for a new session; `secure` when the request came over HTTPS.
pub fn set_cookie(value: &str, secure: bool) -> Option<HeaderValue> {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{COOKIE}={value}; Path=/admin; HttpOnly; SameSite=Strict; Max-Age={LIFETIME_SECS}{secure}"
    ))
    .ok()
}

/// `Set-Cookie` ending the session.
pub fn clear_cookie() -> HeaderValue {
    HeaderValue::from_static("fg_session=; Path=/admin; HttpOnly; SameSite=Strict; Max-Age=0")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const TOKEN: &str = "admin-token-0123456789abcdef";

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn a_cookie_is_valid_until_it_expires_and_only_for_its_token() {
        let v = issue(TOKEN, 1000).unwrap();
        assert!(verify(TOKEN, &v, 1000).is_some());
        assert!(verify(TOKEN, &v, 1000 + LIFETIME_SECS - 1).is_some());
        assert!(verify(TOKEN, &v, 1000 + LIFETIME_SECS).is_none(), "expired");
        assert!(verify("another-token", &v, 1000).is_none(), "token changed");
        assert!(verify("", &v, 1000).is_none());
        // Any altered part fails.
        let (exp, rest) = v.split_once('.').unwrap();
        let later = format!("{}.{rest}", exp.parse::<u64>().unwrap() + 3600);
        assert!(verify(TOKEN, &later, 1000).is_none(), "expiry extended");
        let mut tampered = v.clone().into_bytes();
        let last = tampered.len() - 1;
        tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
        assert!(verify(TOKEN, std::str::from_utf8(&tampered).unwrap(), 1000).is_none());
        assert!(verify(TOKEN, "1.2", 0).is_none());
        assert!(verify(TOKEN, "x.y.z.w", 0).is_none());
        assert_ne!(issue(TOKEN, 1000).unwrap(), v, "a fresh nonce each time");
    }

    #[test]
    fn state_changes_need_the_csrf_token_and_the_same_origin() {
        let v = issue(TOKEN, 0).unwrap();
        let cookie = format!("theme=dark; {COOKIE}={v}");
        let csrf = verify(TOKEN, &v, 0).unwrap().csrf_token();
        let get = headers(&[("cookie", &cookie), ("host", "gw.example:8514")]);
        assert!(authorize(TOKEN, &Method::GET, &get, 0).is_ok());
        assert_eq!(
            authorize(TOKEN, &Method::POST, &get, 0).unwrap_err(),
            Denied::Csrf
        );
        let post = headers(&[
            ("cookie", &cookie),
            ("host", "gw.example:8514"),
            ("origin", "http://gw.example:8514"),
            ("x-csrf-token", &csrf),
        ]);
        assert!(authorize(TOKEN, &Method::POST, &post, 0).is_ok());
        let wrong = headers(&[
            ("cookie", &cookie),
            ("host", "gw.example:8514"),
            ("x-csrf-token", "forged"),
        ]);
        assert_eq!(
            authorize(TOKEN, &Method::DELETE, &wrong, 0).unwrap_err(),
            Denied::Csrf
        );
        let cross = headers(&[
            ("cookie", &cookie),
            ("host", "gw.example:8514"),
            ("origin", "https://evil.example"),
            ("x-csrf-token", &csrf),
        ]);
        assert_eq!(
            authorize(TOKEN, &Method::POST, &cross, 0).unwrap_err(),
            Denied::CrossOrigin
        );
        let none = headers(&[("host", "gw.example:8514")]);
        assert_eq!(
            authorize(TOKEN, &Method::GET, &none, 0).unwrap_err(),
            Denied::NoSession
        );
    }

    #[test]
    fn cookie_flags() {
        let c = set_cookie("abc", true).unwrap();
        let c = c.to_str().unwrap();
        for flag in ["HttpOnly", "SameSite=Strict", "Path=/admin", "Secure"] {
            assert!(c.contains(flag), "{c}");
        }
        assert!(
            !set_cookie("abc", false)
                .unwrap()
                .to_str()
                .unwrap()
                .contains("Secure")
        );
    }
}
