//! `timezone`, `health:`, credential quotas and upstream probes.

use super::Report;
use crate::model::Config;

pub(super) fn check(cfg: &Config, r: &mut Report) {
    if cfg.timezone.0.parse::<chrono_tz::Tz>().is_err() {
        r.err(
            "timezone",
            format!(
                "unknown time zone `{}` (an IANA name such as `UTC` or `Asia/Shanghai`)",
                cfg.timezone.0
            ),
        );
    }
    let h = &cfg.health;
    if h.quota_reset_hour > 23 {
        r.err("health.quota_reset_hour", "an hour of the day, 0 to 23");
    }
    r.positive("health.auth_disable_for", h.auth_disable_for);
    r.positive("health.rate_limit_cooldown", h.rate_limit_cooldown);
    r.positive("health.max_cooldown", h.max_cooldown);
    r.positive("health.counters_flush_interval", h.counters_flush_interval);
    if h.circuit.enabled {
        if h.circuit.errors == 0 {
            r.err("health.circuit.errors", "must be greater than 0");
        }
        r.positive("health.circuit.within", h.circuit.within);
        r.positive("health.circuit.open_for", h.circuit.open_for);
    }
    for (i, up) in cfg.upstreams.iter().enumerate() {
        for (j, c) in up.credentials.iter().enumerate() {
            let path = format!("upstreams[{i}].credentials[{j}].quota");
            if c.quota.requests_per_day == Some(0) {
                r.err(
                    format!("{path}.requests_per_day"),
                    "must be greater than 0 (omit it for no limit)",
                );
            }
            if c.quota.tokens_per_day == Some(0) {
                r.err(
                    format!("{path}.tokens_per_day"),
                    "must be greater than 0 (omit it for no limit)",
                );
            }
        }
        if let Some(p) = &up.probe {
            let path = format!("upstreams[{i}].probe");
            if p.method.is_empty() || !p.method.bytes().all(|b| b.is_ascii_uppercase()) {
                r.err(
                    format!("{path}.method"),
                    "an HTTP method in capitals, e.g. `GET`",
                );
            }
            if let Some(pp) = &p.path
                && (!pp.starts_with('/') || pp.contains(char::is_whitespace))
            {
                r.err(
                    format!("{path}.path"),
                    "must start with `/` and contain no spaces",
                );
            }
            r.positive(&format!("{path}.interval"), p.interval);
            r.positive(&format!("{path}.timeout"), p.timeout);
            for (k, s) in p.expect_status.iter().enumerate() {
                if !(100..=599).contains(s) {
                    r.err(
                        format!("{path}.expect_status[{k}]"),
                        "an HTTP status, 100 to 599",
                    );
                }
            }
        }
    }
}
