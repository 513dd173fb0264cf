//! Prometheus metrics. Names are a public contract (dashboards scrape them).

use std::sync::OnceLock;

use metrics::{Counter, Gauge, Histogram};

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

pub const REQUESTS_TOTAL: &str = "fastgate_requests_total";
pub const REQUEST_DURATION: &str = "fastgate_request_duration_seconds";
pub const UPSTREAM_TTFB: &str = "fastgate_upstream_ttfb_seconds";
pub const GATEWAY_OVERHEAD: &str = "fastgate_gateway_overhead_seconds";
/// Tokens by key, model and type (input/output).
pub const TOKENS_TOTAL: &str = "fastgate_tokens_total";
/// Cost in micro-USD (a counter must be an integer) by key and model.
pub const COST_TOTAL: &str = "fastgate_cost_micro_usd_total";
pub const IN_FLIGHT: &str = "fastgate_requests_in_flight";
pub const ACTIVE_STREAMS: &str = "fastgate_active_streams";
pub const AUTH_FAILURES: &str = "fastgate_auth_failures_total";
pub const RATE_LIMITED: &str = "fastgate_rate_limited_total";
pub const UPSTREAM_ERRORS: &str = "fastgate_upstream_errors_total";
pub const UPSTREAM_RETRIES: &str = "fastgate_upstream_retries_total";
/// Requests refused because no credential of the upstream was active.
pub const NO_CREDENTIAL: &str = "fastgate_no_credential_total";
/// Requests moved to another credential after the provider refused one (401/403/429).
pub const CREDENTIAL_SWITCHES: &str = "fastgate_credential_switches_total";
pub const AUDIT_QUEUE_DEPTH: &str = "fastgate_audit_queue_depth";
pub const KEYS_LOADED: &str = "fastgate_keys_loaded";
pub const CONFIG_RELOADS: &str = "fastgate_config_reloads_total";

static HANDLE: OnceLock<Result<PrometheusHandle, String>> = OnceLock::new();

/// Install the process-wide recorder once; later calls (several servers in one
/// test process) share it. Concurrent first calls wait for the one installing.
pub fn prometheus_handle() -> Result<PrometheusHandle, String> {
    HANDLE.get_or_init(install).clone()
}

fn install() -> Result<PrometheusHandle, String> {
    let latency = [
        0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
        5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
    ];
    let overhead = [
        0.000005, 0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.01,
    ];
    PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Full(REQUEST_DURATION.into()), &latency)
        .and_then(|b| b.set_buckets_for_metric(Matcher::Full(UPSTREAM_TTFB.into()), &latency))
        .and_then(|b| b.set_buckets_for_metric(Matcher::Full(GATEWAY_OVERHEAD.into()), &overhead))
        .and_then(|b| b.set_buckets(&latency))
        .map_err(|e| e.to_string())?
        .install_recorder()
        .map_err(|e| e.to_string())
}

/// `"200"`, `"404"`… without allocating for the common codes.
pub fn status_label(status: u16) -> metrics::SharedString {
    match status {
        200 => "200".into(),
        201 => "201".into(),
        204 => "204".into(),
        400 => "400".into(),
        401 => "401".into(),
        403 => "403".into(),
        404 => "404".into(),
        413 => "413".into(),
        429 => "429".into(),
        500 => "500".into(),
        502 => "502".into(),
        503 => "503".into(),
        504 => "504".into(),
        other => other.to_string().into(),
    }
}

pub fn set_audit_depth(depth: usize) {
    metrics::gauge!(AUDIT_QUEUE_DEPTH).set(depth as f64);
}

/// Statuses whose request counter is registered once per route; others go
/// through the registry on each use.
const CACHED_STATUSES: [u16; 13] = [
    200, 201, 204, 400, 401, 403, 404, 413, 429, 500, 502, 503, 504,
];

/// A route's metric handles, registered once when the snapshot is built, so the
/// request path only touches atomics (no label hashing, no registry lookup).
pub struct RouteMetrics {
    route: metrics::SharedString,
    requests: [Counter; CACHED_STATUSES.len()],
    pub duration: Histogram,
    pub ttfb: Histogram,
}

impl RouteMetrics {
    pub fn new(route: &str) -> Self {
        let label = metrics::SharedString::from(route.to_string());
        let requests = CACHED_STATUSES.map(|status| {
            metrics::counter!(REQUESTS_TOTAL, "route" => label.clone(), "status" => status_label(status))
        });
        Self {
            duration: metrics::histogram!(REQUEST_DURATION, "route" => label.clone()),
            ttfb: metrics::histogram!(UPSTREAM_TTFB, "route" => label.clone()),
            requests,
            route: label,
        }
    }

    pub fn count(&self, status: u16) {
        match CACHED_STATUSES.iter().position(|s| *s == status) {
            Some(i) => self.requests[i].increment(1),
            None => metrics::counter!(REQUESTS_TOTAL, "route" => self.route.clone(), "status" => status_label(status))
                .increment(1),
        }
    }
}

/// Process-wide handles without labels.
pub struct GlobalMetrics {
    pub in_flight: Gauge,
    pub active_streams: Gauge,
    pub overhead: Histogram,
    /// Requests that matched no route (404, 401 before routing).
    pub unrouted: RouteMetrics,
}

static GLOBAL: OnceLock<GlobalMetrics> = OnceLock::new();

pub fn global() -> &'static GlobalMetrics {
    GLOBAL.get_or_init(|| GlobalMetrics {
        in_flight: metrics::gauge!(IN_FLIGHT),
        active_streams: metrics::gauge!(ACTIVE_STREAMS),
        overhead: metrics::histogram!(GATEWAY_OVERHEAD),
        unrouted: RouteMetrics::new(""),
    })
}
