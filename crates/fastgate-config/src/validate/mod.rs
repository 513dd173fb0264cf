//! Phase two of loading: rules that serde cannot express (ranges, cross references,
//! syntax of strings). Every error carries the field path of the offending value.

mod alerts;
mod cors;
mod health;
mod http;
mod limits;
mod models;
mod routes;
mod rules;
mod upstreams;

use std::net::IpAddr;
use std::time::Duration;

use crate::error::ConfigError;
use crate::model::{AdminConfig, AuditConfig, Config, ServerConfig};

/// Minimum length of `admin.token` (THREATS 38: empty or weak tokens are refused).
pub const MIN_ADMIN_TOKEN_LEN: usize = 16;

/// Highest `routes[].retries` accepted.
pub const MAX_RETRIES: u32 = 10;

/// Collected errors, in document order.
#[derive(Debug, Default)]
pub(crate) struct Report {
    pub(crate) errors: Vec<ConfigError>,
}

impl Report {
    pub(crate) fn err(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.errors.push(ConfigError::invalid(path, message));
    }

    /// `value` must be non-zero.
    pub(crate) fn positive(&mut self, path: &str, value: Duration) {
        if value.is_zero() {
            self.err(path, "must be greater than 0");
        }
    }
}

/// Checks the whole configuration and returns the first problem found.
pub fn validate(cfg: &Config) -> Result<(), ConfigError> {
    match validate_all(cfg).into_iter().next() {
        Some(err) => Err(err),
        None => Ok(()),
    }
}

/// Checks the whole configuration and returns every problem found (for `fastgate check`).
pub fn validate_all(cfg: &Config) -> Vec<ConfigError> {
    let mut r = Report::default();
    server(&cfg.server, &mut r);
    database(cfg, &mut r);
    admin(&cfg.admin, &mut r);
    audit(&cfg.audit, &mut r);
    if cfg.log.level.trim().is_empty() {
        r.err("log.level", "must not be empty (e.g. `info`)");
    }
    upstreams::check(&cfg.upstreams, &mut r);
    routes::check(&cfg.routes, &cfg.upstreams, &mut r);
    models::check(&cfg.models, &cfg.upstreams, &mut r);
    proxy_prefix(&cfg.proxy_prefix.0, &mut r);
    health::check(cfg, &mut r);
    rules::check(cfg, &mut r);
    alerts::check(cfg, &mut r);
    limits::check(cfg, &mut r);
    cors::check(&cfg.cors, &mut r);
    if cfg.llm.default_max_tokens == 0 {
        r.err("llm.default_max_tokens", "must be greater than 0");
    }
    r.errors
}

/// Empty (off) or literal segments: `/proxy`, `/gw/raw`.
fn proxy_prefix(prefix: &str, r: &mut Report) {
    if prefix.is_empty() {
        return;
    }
    let literal = prefix.len() > 1
        && prefix.starts_with('/')
        && !prefix.ends_with('/')
        && !prefix.contains("//")
        && prefix[1..].split('/').all(|seg| {
            seg != "."
                && seg != ".."
                && seg
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
        });
    if !literal {
        r.err(
            "proxy_prefix",
            format!("must be empty or literal path segments like /proxy, got '{prefix}'"),
        );
    } else if prefix.eq_ignore_ascii_case("/admin")
        || prefix.to_ascii_lowercase().starts_with("/admin/")
    {
        r.err("proxy_prefix", "may not be under /admin");
    }
}

fn server(s: &ServerConfig, r: &mut Report) {
    if s.max_body_bytes == 0 {
        r.err("server.max_body_bytes", "must be greater than 0");
    }
    if s.max_connections == 0 {
        r.err("server.max_connections", "must be greater than 0");
    }
    r.positive("server.header_read_timeout", s.header_read_timeout);
    r.positive("server.idle_timeout", s.idle_timeout);
    r.positive("server.body_read_timeout", s.body_read_timeout);
    r.positive("server.write_timeout", s.write_timeout);
    if s.max_inflight_body_bytes < s.max_body_bytes {
        r.err(
            "server.max_inflight_body_bytes",
            format!(
                "must be at least server.max_body_bytes ({})",
                s.max_body_bytes
            ),
        );
    }
    for (i, peer) in s.trusted_proxies.iter().enumerate() {
        if !is_ip_or_cidr(peer) {
            r.err(
                format!("server.trusted_proxies[{i}]"),
                format!("`{peer}` is not an IP address or CIDR block (e.g. 10.0.0.0/8)"),
            );
        }
    }
}

fn is_ip_or_cidr(s: &str) -> bool {
    let (addr, prefix) = match s.split_once('/') {
        Some((addr, prefix)) => (addr, Some(prefix)),
        None => (s, None),
    };
    let Ok(ip) = addr.parse::<IpAddr>() else {
        return false;
    };
    let max = if ip.is_ipv4() { 32 } else { 128 };
    prefix.is_none_or(|p| p.parse::<u8>().is_ok_and(|p| p <= max))
}

fn database(cfg: &Config, r: &mut Report) {
    if cfg.database.max_connections == 0 {
        r.err("database.max_connections", "must be greater than 0");
    }
    let url = cfg.database.url.expose();
    if url.is_empty() {
        let dir = cfg.data_dir.to_str();
        if dir.is_none_or(|d| d.contains(['?', '#', '%'])) {
            r.err(
                "data_dir",
                "must be valid UTF-8 without `?`, `#` or `%` while database.url is empty \
                 (it becomes sqlite://<data_dir>/fastgate.db)",
            );
        }
        return;
    }
    // The URL may hold a password: the messages below never echo it.
    let scheme = url.split_once(':').map(|(scheme, _)| scheme);
    match scheme {
        Some("sqlite") => {}
        Some("postgres" | "postgresql") => {
            if let Err(e) = url::Url::parse(url) {
                r.err(
                    "database.url",
                    format!("not a valid PostgreSQL URL ({e}); value not shown"),
                );
            }
        }
        Some(s)
            if !s.is_empty()
                && s.len() <= 16
                && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'+') =>
        {
            r.err(
                "database.url",
                format!("unsupported scheme `{s}:`; use sqlite:, postgres: or postgresql:"),
            );
        }
        _ => r.err(
            "database.url",
            "expected a URL starting with sqlite:, postgres: or postgresql: \
             (e.g. sqlite://./data/fastgate.db); value not shown",
        ),
    }
}

fn admin(a: &AdminConfig, r: &mut Report) {
    if let Some(token) = &a.token
        && let Some(problem) = weak_token(token.expose())
    {
        r.err("admin.token", problem);
    }
}

/// Why an admin token is refused, if it is (the token itself is never shown).
fn weak_token(token: &str) -> Option<String> {
    const PLACEHOLDERS: &[&str] = &[
        "changeme",
        "change-me",
        "change_me",
        "password",
        "placeholder",
        "example",
        "xxxxxxxx",
    ];
    let len = token.chars().count();
    if token.trim().is_empty() {
        return Some(format!(
            "is empty; remove the setting to have a token generated in <data_dir>/admin_token, \
             or set at least {MIN_ADMIN_TOKEN_LEN} random characters"
        ));
    }
    if !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Some("must contain only printable ASCII characters, without spaces".into());
    }
    if len < MIN_ADMIN_TOKEN_LEN {
        return Some(format!(
            "too short ({len} characters); use at least {MIN_ADMIN_TOKEN_LEN} random characters \
             (e.g. `openssl rand -hex 32`)"
        ));
    }
    let mut distinct: Vec<u8> = token.bytes().collect();
    distinct.sort_unstable();
    distinct.dedup();
    if distinct.len() < 5 {
        return Some("too weak: it repeats a few characters; use random characters".into());
    }
    let lower = token.to_ascii_lowercase();
    if PLACEHOLDERS.iter().any(|p| lower.contains(p)) {
        return Some(
            "looks like a placeholder; use random characters (e.g. `openssl rand -hex 32`)".into(),
        );
    }
    None
}

fn audit(a: &AuditConfig, r: &mut Report) {
    if a.batch_size == 0 {
        r.err("audit.batch_size", "must be greater than 0");
    } else if a.queue_capacity < a.batch_size {
        r.err(
            "audit.queue_capacity",
            format!(
                "must be at least audit.batch_size ({}), got {}",
                a.batch_size, a.queue_capacity
            ),
        );
    }
    r.positive("audit.flush_interval", a.flush_interval);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidrs() {
        assert!(is_ip_or_cidr("10.0.0.1"));
        assert!(is_ip_or_cidr("10.0.0.0/8"));
        assert!(is_ip_or_cidr("::1"));
        assert!(is_ip_or_cidr("fd00::/8"));
        assert!(!is_ip_or_cidr("10.0.0.0/33"));
        assert!(!is_ip_or_cidr("localhost"));
        assert!(!is_ip_or_cidr("10.0.0.0/"));
    }

    #[test]
    fn tokens() {
        assert!(weak_token("k3J9x2Qp7Lm4Vn8R").is_none());
        assert!(weak_token("").is_some());
        assert!(weak_token("   ").is_some());
        assert!(weak_token("short").is_some());
        assert!(weak_token("aaaaaaaaaaaaaaaaaaaa").is_some());
        assert!(weak_token("abababababababababab").is_some());
        assert!(weak_token("changeme-changeme-123").is_some());
        assert!(weak_token("k3J9x2Qp 7Lm4Vn8R").is_some());
        assert!(weak_token("k3J9x2Qp7Lm4Vn8R\n").is_some());
    }
}
