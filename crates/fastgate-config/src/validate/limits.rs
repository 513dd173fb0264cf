//! `routes[].limits`, `models[].limits`, `models[].max_output_tokens`, `limits:`
//! and `redis:` (docs/limits.md). Zero limits are refused: a limit of 0 would
//! refuse every request, which is what deactivating a route or key is for.

use super::Report;
use crate::limits::RateLimitsConfig;
use crate::model::Config;

pub(super) fn check(cfg: &Config, r: &mut Report) {
    for (i, route) in cfg.routes.iter().enumerate() {
        let path = format!("routes[{i}].limits");
        rate_limits(&path, &route.limits, r);
        if route.limits.tokens_per_minute.is_some() {
            // A route forwards any HTTP API: it reads no token usage, so a
            // token limit on it could never be enforced.
            r.err(
                format!("{path}.tokens_per_minute"),
                "routes count requests, not tokens: put token limits on the model group (models[].limits) or the key",
            );
        }
    }
    for (i, group) in cfg.models.iter().enumerate() {
        rate_limits(&format!("models[{i}].limits"), &group.limits, r);
        if group.max_output_tokens == Some(0) {
            r.err(
                format!("models[{i}].max_output_tokens"),
                "must be greater than 0 (omit it to use llm.default_max_tokens)",
            );
        }
    }
    r.positive("limits.flush_interval", cfg.limits.flush_interval);
    r.positive("limits.reservation_ttl", cfg.limits.reservation_ttl);
    redis(cfg, r);
}

/// Every limit that is set is at least 1.
pub(super) fn rate_limits(path: &str, l: &RateLimitsConfig, r: &mut Report) {
    let fields = [
        ("requests_per_minute", l.requests_per_minute.map(u64::from)),
        ("requests_per_day", l.requests_per_day.map(u64::from)),
        ("tokens_per_minute", l.tokens_per_minute),
        ("max_concurrent", l.max_concurrent.map(u64::from)),
    ];
    for (name, value) in fields {
        if value == Some(0) {
            r.err(
                format!("{path}.{name}"),
                "must be at least 1 (omit it for no limit)",
            );
        }
    }
}

fn redis(cfg: &Config, r: &mut Report) {
    let redis = &cfg.redis;
    if let Some(url) = &redis.url {
        let url = url.expose();
        match url::Url::parse(url) {
            Ok(u) if matches!(u.scheme(), "redis" | "rediss") && u.host_str().is_some() => {}
            Ok(u) => r.err(
                "redis.url",
                format!(
                    "must be redis://host:port or rediss://host:port, got scheme `{}`",
                    u.scheme()
                ),
            ),
            // The URL may hold a password: say what is wrong, not what it was.
            Err(e) => r.err("redis.url", format!("is not a valid URL: {e}")),
        }
    }
    if redis.key_prefix.len() > 64 || redis.key_prefix.chars().any(char::is_control) {
        r.err(
            "redis.key_prefix",
            "must be at most 64 characters without control characters",
        );
    }
    r.positive("redis.connect_timeout", redis.connect_timeout);
    r.positive("redis.command_timeout", redis.command_timeout);
    if redis.expected_instances == 0 {
        r.err("redis.expected_instances", "must be at least 1");
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use crate::load_str;

    fn err(yaml: &str) -> String {
        load_str(yaml, &|_| None)
            .expect_err("must be refused")
            .to_string()
    }

    #[test]
    fn zero_limits_are_refused_with_their_path() {
        let base = "upstreams: [{name: u, kind: openai, base_url: 'http://127.0.0.1:9'}]\n";
        let e = err(&format!(
            "{base}routes: [{{name: r, match: {{path: /r}}, upstream: u, limits: {{requests_per_minute: 0}}}}]"
        ));
        assert!(e.contains("routes[0].limits.requests_per_minute"), "{e}");
        let e = err(&format!(
            "{base}routes: [{{name: r, match: {{path: /r}}, upstream: u, limits: {{tokens_per_minute: 10}}}}]"
        ));
        assert!(
            e.contains("routes[0].limits.tokens_per_minute") && e.contains("model group"),
            "{e}"
        );
        let e = err(&format!(
            "{base}models: [{{name: m, deployments: [{{upstream: u, model: x}}], limits: {{tokens_per_minute: 0}}}}]"
        ));
        assert!(e.contains("models[0].limits.tokens_per_minute"), "{e}");
        let e = err(&format!(
            "{base}models: [{{name: m, deployments: [{{upstream: u, model: x}}], max_output_tokens: 0}}]"
        ));
        assert!(e.contains("models[0].max_output_tokens"), "{e}");
    }

    #[test]
    fn redis_settings_are_checked_without_echoing_the_url() {
        let e = err("redis: {url: 'http://user:hunter2@host:1'}");
        assert!(e.contains("redis.url") && !e.contains("hunter2"), "{e}");
        let e = err("redis: {url: 'redis://127.0.0.1:6379', expected_instances: 0}");
        assert!(e.contains("redis.expected_instances"), "{e}");
        let e = err("redis: {on_failure: {quotas: maybe}}");
        assert!(e.contains("quotas"), "{e}");
        let ok = load_str(
            "redis: {url: 'rediss://:pw@cache:6380/2', expected_instances: 3, on_failure: {rate_limits: deny, quotas: local}}\nlimits: {flush_interval: 1s}",
            &|_| None,
        )
        .unwrap();
        assert_eq!(ok.redis.expected_instances, 3);
        assert_eq!(ok.limits.flush_interval, std::time::Duration::from_secs(1));
    }
}
