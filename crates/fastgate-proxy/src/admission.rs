//! Limits on the request path (docs/limits.md): the key's, the route's and the
//! model group's rate limits and the key's quota, checked in one call to the
//! limiter once everything they need is known (key, route, model, body); the
//! windows echoed as `x-ratelimit-*` headers; refusals mapped to client errors.

use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use fastgate_config::RateLimitsConfig;
use fastgate_limits::{
    AdmitError, AdmitRequest, Demand, LimitKind, Limits, Refusal, Scope, ScopeKind, Window,
};
use http::{HeaderMap, HeaderName, HeaderValue};

use crate::context::RequestContext;
use crate::error::ProxyError;
use crate::metrics as m;

/// The limiter's reloadable settings from the config.
pub fn limiter_settings(cfg: &fastgate_config::Config) -> fastgate_limits::LimiterSettings {
    use fastgate_config::{FailureMode, QuotaFailureMode};
    use fastgate_limits::{QuotaFallback, RateFallback};
    fastgate_limits::LimiterSettings {
        tz: cfg.timezone.0.parse().unwrap_or(chrono_tz::Tz::UTC),
        expected_instances: cfg.redis.expected_instances.max(1),
        rate_fallback: match cfg.redis.on_failure.rate_limits {
            FailureMode::Local => RateFallback::Local,
            FailureMode::Allow => RateFallback::Allow,
            FailureMode::Deny => RateFallback::Deny,
        },
        quota_fallback: match cfg.redis.on_failure.quotas {
            QuotaFailureMode::Deny => QuotaFallback::Deny,
            QuotaFailureMode::Local => QuotaFallback::Local,
            QuotaFailureMode::Allow => QuotaFallback::Allow,
        },
    }
}

/// The configured form as the limiter takes it.
pub fn limits_of(c: &RateLimitsConfig) -> Limits {
    Limits {
        requests_per_minute: c.requests_per_minute,
        requests_per_day: c.requests_per_day,
        tokens_per_minute: c.tokens_per_minute,
        max_concurrent: c.max_concurrent,
    }
}

/// The limits of a route or a model group, named for the limiter.
#[derive(Debug, Clone)]
pub struct ScopeLimits {
    pub id: Arc<str>,
    pub limits: Limits,
}

impl ScopeLimits {
    pub fn new(name: &str, config: &RateLimitsConfig) -> Option<Self> {
        let limits = limits_of(config);
        (!limits.is_unlimited()).then(|| Self {
            id: Arc::from(name),
            limits,
        })
    }
}

/// Does this request need its worst case computed (a token limit or a token
/// or cost quota applies)? Saves the prompt estimate for everyone else.
pub fn needs_demand(ctx: &RequestContext, others: &[Option<&ScopeLimits>]) -> bool {
    let key = ctx.key.as_deref();
    key.is_some_and(|k| {
        k.limits.tokens_per_minute.is_some() || k.quota.tokens.is_some() || k.quota.cost.is_some()
    }) || others
        .iter()
        .flatten()
        .any(|s| s.limits.tokens_per_minute.is_some())
}

/// Before the body is read: refuse a request that cannot pass its key's or
/// its route's request limits (counts nothing; [`admit`] decides later).
pub fn precheck(ctx: &mut RequestContext, route: Option<&ScopeLimits>) -> Result<(), ProxyError> {
    let key = ctx.key.as_deref();
    let key_limited = key.is_some_and(|k| {
        !Limits::from(&k.limits).is_unlimited()
            || k.quota.requests.is_some()
            || k.quota.tokens.is_some()
            || k.quota.cost.is_some()
    });
    if !key_limited && route.is_none() {
        return Ok(());
    }
    let limiter = Arc::clone(ctx.state.limiter());
    let mut scopes = Vec::with_capacity(2);
    let mut quota = None;
    if let Some(k) = key {
        let check = key_quota_check(&limiter, k);
        quota = (!check.is_unlimited()).then(|| check.clone());
        scopes.push(Scope {
            kind: ScopeKind::Key,
            id: Arc::clone(&check.key_id),
            limits: Limits::from(&k.limits),
        });
        // Computed once: the admission after the body reuses it.
        ctx.quota_check = Some(check);
    }
    scopes.extend(route.map(|r| scope(ScopeKind::Route, r)));
    limiter.precheck(&scopes, quota.as_ref()).map_err(|refusal| {
        metrics::counter!(m::RATE_LIMITED, "limit" => refusal.kind.as_str(), "scope" => refusal.scope.as_str())
            .increment(1);
        ProxyError::Limited(Box::new(refusal))
    })
}

/// Check and count the request against every limit that applies to it; on
/// admission the reservation and windows go into `ctx` (settled at finish).
pub async fn admit(
    ctx: &mut RequestContext,
    route: Option<&ScopeLimits>,
    model: Option<&ScopeLimits>,
    demand: Demand,
) -> Result<(), ProxyError> {
    let Some(key) = ctx.key.clone() else {
        // Public routes: only the route's own limits.
        let Some(route) = route else { return Ok(()) };
        return admit_request(
            ctx,
            vec![scope(ScopeKind::Route, route)],
            None,
            None,
            demand,
        )
        .await;
    };
    let limiter = Arc::clone(ctx.state.limiter());
    let count_as = match ctx.quota_check.take() {
        Some(check) => check,
        None => key_quota_check(&limiter, &key),
    };
    let key_id = Arc::clone(&count_as.key_id);
    let mut scopes = Vec::with_capacity(3);
    let key_limits = Limits::from(&key.limits);
    if !key_limits.is_unlimited() {
        scopes.push(Scope {
            kind: ScopeKind::Key,
            id: key_id,
            limits: key_limits,
        });
    }
    scopes.extend(route.map(|r| scope(ScopeKind::Route, r)));
    scopes.extend(model.map(|m| scope(ScopeKind::Model, m)));
    let quota = (!count_as.is_unlimited()).then(|| count_as.clone());
    admit_request(ctx, scopes, quota, Some(count_as), demand).await
}

/// The key's quota period now (the request counts in the period it arrived in).
fn key_quota_check(
    limiter: &fastgate_limits::Limiter,
    key: &fastgate_auth::ApiKeyRecord,
) -> fastgate_limits::QuotaCheck {
    limiter.quota_check(&Arc::from(key.id.as_str()), &key.quota)
}

fn scope(kind: ScopeKind, s: &ScopeLimits) -> Scope {
    Scope {
        kind,
        id: Arc::clone(&s.id),
        limits: s.limits,
    }
}

async fn admit_request(
    ctx: &mut RequestContext,
    scopes: Vec<Scope>,
    quota: Option<fastgate_limits::QuotaCheck>,
    count_as: Option<fastgate_limits::QuotaCheck>,
    demand: Demand,
) -> Result<(), ProxyError> {
    let req = AdmitRequest {
        request_id: Arc::from(String::from_utf8_lossy(ctx.gateway_id.as_bytes()).as_ref()),
        scopes,
        quota,
        demand,
    };
    let limiter = Arc::clone(ctx.state.limiter());
    match limiter.admit(&req, count_as.as_ref()).await {
        Ok(admitted) => {
            ctx.windows = (admitted.requests, admitted.tokens);
            ctx.reservation = Some(admitted.reservation);
            Ok(())
        }
        Err(AdmitError::Limited(refusal)) => {
            metrics::counter!(m::RATE_LIMITED, "limit" => refusal.kind.as_str(), "scope" => refusal.scope.as_str())
                .increment(1);
            Err(ProxyError::Limited(Box::new(refusal)))
        }
        Err(AdmitError::Unavailable(reason)) => {
            metrics::counter!(m::RATE_LIMITED, "limit" => "unavailable", "scope" => "backend")
                .increment(1);
            Err(ProxyError::LimitsUnavailable(reason))
        }
    }
}

/// The client-facing message of a refusal.
pub fn refusal_message(r: &Refusal) -> String {
    let whose = match r.scope {
        ScopeKind::Key => "this API key",
        ScopeKind::Route => "this route",
        ScopeKind::Model => "this model",
    };
    let when = r
        .retry_after
        .map(|d| format!("; retry after {}s", ceil_secs(d)))
        .unwrap_or_default();
    match r.kind {
        LimitKind::Budget if r.too_large() => format!(
            "budget exceeded: this request may cost up to ${:.6} (prompt estimate plus its output cap), more than {whose}'s whole budget of ${:.6}; lower max_tokens",
            r.requested, r.limit
        ),
        LimitKind::Budget => format!(
            "budget exceeded: {whose}'s budget of ${:.6} is spent or held by requests in flight (${:.6}); this request may cost up to ${:.6}{when}",
            r.limit, r.used, r.requested
        ),
        LimitKind::QuotaRequests => format!(
            "quota exceeded: {whose}'s quota of {} requests is used up{when}",
            r.limit
        ),
        LimitKind::QuotaTokens if r.too_large() => format!(
            "quota exceeded: this request may use up to {} tokens (prompt estimate plus its output cap), more than {whose}'s whole token quota of {}; lower max_tokens",
            r.requested, r.limit
        ),
        LimitKind::QuotaTokens => format!(
            "quota exceeded: {whose}'s quota of {} tokens is used or held by requests in flight ({}); this request may use up to {}{when}",
            r.limit, r.used, r.requested
        ),
        LimitKind::TokensPerMinute if r.too_large() => format!(
            "request too large for {whose}'s tokens_per_minute limit: it may use up to {} tokens (prompt estimate plus its output cap), the limit is {}; lower max_tokens",
            r.requested, r.limit
        ),
        LimitKind::Concurrency => format!(
            "rate limit exceeded: {whose} allows {} concurrent requests{when}",
            r.limit
        ),
        kind => format!(
            "rate limit exceeded: {whose}'s {} of {} is reached{when}",
            kind.as_str(),
            r.limit
        ),
    }
}

fn ceil_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

/// `Retry-After` seconds of a refusal (at least 1), if waiting helps.
pub fn retry_after_secs(r: &Refusal) -> Option<u64> {
    r.retry_after.map(|d| ceil_secs(d).max(1))
}

/// The `x-ratelimit-*` headers of a refusal: the refused window, none left.
pub fn refusal_headers(h: &mut HeaderMap, r: &Refusal) {
    let window = HeaderWindow {
        limit: r.limit.max(0.0).round() as u64,
        remaining: 0,
        reset: r.retry_after,
    };
    match r.kind {
        LimitKind::RequestsPerMinute
        | LimitKind::RequestsPerDay
        | LimitKind::Concurrency
        | LimitKind::QuotaRequests => {
            insert_windows(h, [Some((REQUEST_WINDOW_NAMES, window)), None])
        }
        LimitKind::TokensPerMinute | LimitKind::QuotaTokens => {
            insert_windows(h, [Some((TOKEN_WINDOW_NAMES, window)), None])
        }
        LimitKind::Budget => {}
    }
}

/// The `x-ratelimit-*` headers of an admitted request, as OpenAI sends them.
pub fn insert_rate_headers(h: &mut HeaderMap, windows: (Option<Window>, Option<Window>)) {
    let header = |w: Window| HeaderWindow {
        limit: w.limit,
        remaining: w.remaining,
        reset: Some(w.reset),
    };
    insert_windows(
        h,
        [
            windows.0.map(|w| (REQUEST_WINDOW_NAMES, header(w))),
            windows.1.map(|w| (TOKEN_WINDOW_NAMES, header(w))),
        ],
    );
}

/// What the three headers of one window say.
struct HeaderWindow {
    limit: u64,
    remaining: u64,
    reset: Option<Duration>,
}

/// The three `x-ratelimit-*` names of a window's unit, parsed once: inserting with a
/// `&str` name validates and lowercases it on every call (six names on every admitted
/// response cost 4.7k instructions per request, callgrind, a32).
const REQUEST_WINDOW_NAMES: [HeaderName; 3] = [
    HeaderName::from_static("x-ratelimit-limit-requests"),
    HeaderName::from_static("x-ratelimit-remaining-requests"),
    HeaderName::from_static("x-ratelimit-reset-requests"),
];
const TOKEN_WINDOW_NAMES: [HeaderName; 3] = [
    HeaderName::from_static("x-ratelimit-limit-tokens"),
    HeaderName::from_static("x-ratelimit-remaining-tokens"),
    HeaderName::from_static("x-ratelimit-reset-tokens"),
];

/// Inserts each window's headers under its `[limit, remaining, reset]` names. The
/// values are written into one buffer that the headers share: one allocation where a
/// `HeaderValue` per number (and a `String` and a copy per reset) made eight.
fn insert_windows(h: &mut HeaderMap, windows: [Option<([HeaderName; 3], HeaderWindow)>; 2]) {
    let mut buf = BytesMut::with_capacity(128);
    let mut ends = [[0usize; 3]; 2];
    let mut digits = itoa::Buffer::new();
    for (window, ends) in windows.iter().zip(&mut ends) {
        let Some((_, w)) = window else { continue };
        buf.extend_from_slice(digits.format(w.limit).as_bytes());
        ends[0] = buf.len();
        buf.extend_from_slice(digits.format(w.remaining).as_bytes());
        ends[1] = buf.len();
        // A refusal that waiting cannot cure carries no reset.
        if let Some(d) = w.reset {
            push_openai_duration(&mut buf, d);
        }
        ends[2] = buf.len();
    }
    let values = buf.freeze();
    let mut start = 0;
    for (window, ends) in windows.into_iter().zip(ends) {
        let Some((names, _)) = window else { continue };
        for (name, end) in names.into_iter().zip(ends) {
            if end > start
                && let Ok(v) = HeaderValue::from_maybe_shared(values.slice(start..end))
            {
                h.insert(name, v);
            }
            start = end;
        }
    }
}

/// A duration as OpenAI writes its resets: `20ms`, `1s`, `6m0s`, `1h2m3s`.
pub fn openai_duration(d: Duration) -> String {
    let mut buf = BytesMut::new();
    push_openai_duration(&mut buf, d);
    String::from_utf8_lossy(&buf).into_owned()
}

/// [`openai_duration`], appended to `out`.
fn push_openai_duration(out: &mut BytesMut, d: Duration) {
    let mut digits = itoa::Buffer::new();
    let mut push = |n: u64, unit: &str| {
        out.extend_from_slice(digits.format(n).as_bytes());
        out.extend_from_slice(unit.as_bytes());
    };
    let ms = d.as_millis();
    if ms < 1000 {
        push(ms as u64, "ms");
        return;
    }
    let secs = d.as_secs() + u64::from(d.subsec_millis() >= 500);
    let (h, m, s) = (secs / 3600, (secs % 3600) / 60, secs % 60);
    if h > 0 {
        push(h, "h");
    }
    if h > 0 || m > 0 {
        push(m, "m");
    }
    push(s, "s");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_headers_carry_both_windows() {
        let mut h = HeaderMap::new();
        let requests = Window {
            limit: 100_000_000,
            remaining: 99_999_998,
            reset: Duration::from_millis(20),
        };
        let tokens = Window {
            limit: 7,
            remaining: 0,
            reset: Duration::from_secs(3723),
        };
        insert_rate_headers(&mut h, (Some(requests), Some(tokens)));
        let get = |n: &str| h.get(n).and_then(|v| v.to_str().ok()).map(str::to_owned);
        assert_eq!(
            get("x-ratelimit-limit-requests").as_deref(),
            Some("100000000")
        );
        assert_eq!(
            get("x-ratelimit-remaining-requests").as_deref(),
            Some("99999998")
        );
        assert_eq!(get("x-ratelimit-reset-requests").as_deref(), Some("20ms"));
        assert_eq!(get("x-ratelimit-limit-tokens").as_deref(), Some("7"));
        assert_eq!(get("x-ratelimit-remaining-tokens").as_deref(), Some("0"));
        assert_eq!(get("x-ratelimit-reset-tokens").as_deref(), Some("1h2m3s"));
        assert_eq!(h.len(), 6);

        // Only the token window: the request headers stay absent.
        let mut h = HeaderMap::new();
        insert_rate_headers(&mut h, (None, Some(tokens)));
        assert_eq!(h.len(), 3);
        assert!(h.get("x-ratelimit-limit-requests").is_none());
        assert_eq!(
            h.get("x-ratelimit-limit-tokens").map(|v| v.as_bytes()),
            Some(&b"7"[..])
        );
    }

    #[test]
    fn a_refusal_without_a_reset_sends_no_reset_header() {
        let mut h = HeaderMap::new();
        let window = HeaderWindow {
            limit: 5,
            remaining: 0,
            reset: None,
        };
        insert_windows(&mut h, [Some((REQUEST_WINDOW_NAMES, window)), None]);
        assert_eq!(h.len(), 2);
        assert_eq!(
            h.get("x-ratelimit-limit-requests").map(|v| v.as_bytes()),
            Some(&b"5"[..])
        );
        assert_eq!(
            h.get("x-ratelimit-remaining-requests")
                .map(|v| v.as_bytes()),
            Some(&b"0"[..])
        );
        assert!(h.get("x-ratelimit-reset-requests").is_none());
    }

    #[test]
    fn durations_read_like_openai() {
        assert_eq!(openai_duration(Duration::from_millis(20)), "20ms");
        assert_eq!(openai_duration(Duration::from_millis(1000)), "1s");
        assert_eq!(openai_duration(Duration::from_secs(360)), "6m0s");
        assert_eq!(openai_duration(Duration::from_secs(3723)), "1h2m3s");
    }

    #[test]
    fn messages_name_the_limit_and_the_remedy() {
        let r = Refusal {
            kind: LimitKind::Budget,
            scope: ScopeKind::Key,
            limit: 1.0,
            used: 0.9,
            requested: 0.2,
            retry_after: Some(Duration::from_secs(3600)),
        };
        let m = refusal_message(&r);
        assert!(
            m.starts_with("budget exceeded")
                && m.contains("$1.000000")
                && m.contains("retry after 3600s"),
            "{m}"
        );
        let big = Refusal {
            kind: LimitKind::TokensPerMinute,
            requested: 5000.0,
            limit: 1000.0,
            retry_after: None,
            ..r
        };
        let m = refusal_message(&big);
        assert!(
            m.contains("lower max_tokens") && !m.contains("retry"),
            "{m}"
        );
        let mut h = HeaderMap::new();
        refusal_headers(&mut h, &big);
        assert_eq!(h["x-ratelimit-limit-tokens"], "1000");
        assert_eq!(h["x-ratelimit-remaining-tokens"], "0");
    }
}
