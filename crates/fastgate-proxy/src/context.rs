//! The per-request context: one typed struct that travels through the phases and
//! turns into exactly one audit record (and one set of metrics) when the request
//! ends, however it ends.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use fastgate_audit::AuditRecordRef;
use fastgate_auth::ApiKeyRecord;
use fastgate_config::RouteAuditConfig;
use http::{HeaderMap, HeaderValue, Method};

use crate::error::ClientProtocol;
use crate::metrics as m;
use crate::state::AppState;

/// Keeps the in-flight gauge right even when a future is dropped mid-way.
pub struct InFlightGuard;

impl InFlightGuard {
    #[expect(clippy::new_without_default, reason = "construction has a side effect")]
    pub fn new() -> Self {
        m::global().in_flight.increment(1.0);
        Self
    }
}

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        m::global().in_flight.decrement(1.0);
    }
}

pub struct RequestContext {
    pub state: AppState,
    /// The gateway's id for this request (UUIDv7): the audit record's key, returned to
    /// the client as `x-fastgate-request-id`. Never chosen by the client.
    pub gateway_id: HeaderValue,
    /// The `x-request-id` echoed to the client and sent upstream: the client's own
    /// (see [`RequestContext::set_client_request_id`]) or else `gateway_id`.
    pub request_id: HeaderValue,
    /// The client's plain `x-request-id`, stored as the record's `client_request_id`.
    pub client_request_id: Option<HeaderValue>,
    pub started: Instant,
    pub request_time: DateTime<Utc>,
    pub method: Method,
    pub path: String,
    pub query: Option<String>,
    pub protocol: ClientProtocol,
    pub client_ip: Option<String>,
    /// Kept as sent; turned into text only for the audit record.
    pub user_agent: Option<HeaderValue>,
    pub key: Option<Arc<ApiKeyRecord>>,
    pub route: Option<Arc<str>>,
    /// The matched route's metric handles.
    pub route_metrics: Option<Arc<m::RouteMetrics>>,
    pub upstream: Option<Arc<str>>,
    pub credential: Option<Arc<str>>,
    /// The credential of the current attempt, counted in flight until the
    /// response ends; the tokens it used count against its daily quota.
    pub credential_flight: Option<fastgate_upstream::InFlight>,
    pub target_url: Option<String>,
    pub request_bytes: u64,
    pub model: Option<String>,
    pub stream_requested: bool,
    pub audit: RouteAuditConfig,
    pub request_headers: Option<String>,
    pub request_body: Option<String>,
    /// Time spent waiting on the upstream for response headers.
    pub upstream_wait: Duration,
    /// The tightest request and token windows, echoed as `x-ratelimit-*` headers.
    pub windows: (
        Option<fastgate_limits::Window>,
        Option<fastgate_limits::Window>,
    ),
    /// Concurrency slots and the worst-case tokens and cost held for this
    /// request; settled with the real usage when it finishes.
    pub reservation: Option<fastgate_limits::Reservation>,
    /// The key's quota period, computed by the check before the body and
    /// reused by the admission after it.
    pub quota_check: Option<fastgate_limits::QuotaCheck>,
    /// The request body's share of the in-flight body budget, given back once
    /// the upstream has the request.
    pub body_permit: Option<crate::request_body::BodyPermit>,
    /// Set by the connection when the server cuts it (write timeout, shutdown).
    pub conn_abort: Option<crate::state::ConnAbort>,
    _in_flight: InFlightGuard,
}

/// How the exchange ended, as seen by the client.
#[derive(Default)]
pub struct Outcome {
    pub status: u16,
    pub ttfb: Option<Duration>,
    pub response_bytes: u64,
    pub is_stream: bool,
    pub chunks: u64,
    pub error: Option<String>,
    pub response_headers: Option<String>,
    pub response_body: Option<String>,
    /// Tokens and cost, for LLM requests.
    pub usage: Option<TokenUsage>,
}

/// Tokens of one LLM exchange and what they cost.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct TokenUsage {
    pub input: u64,
    pub output: u64,
    pub estimated: bool,
    pub cost: Option<f64>,
}

impl RequestContext {
    /// A context for a request just received; its `path` is set once the path is
    /// normalised (or, when it cannot be, as received).
    pub fn new(state: AppState, method: Method) -> Self {
        let gateway_id = crate::headers::gateway_request_id();
        Self {
            state,
            request_id: gateway_id.clone(),
            gateway_id,
            client_request_id: None,
            started: Instant::now(),
            request_time: Utc::now(),
            method,
            path: String::new(),
            query: None,
            protocol: ClientProtocol::OpenAi,
            client_ip: None,
            user_agent: None,
            key: None,
            route: None,
            route_metrics: None,
            upstream: None,
            credential: None,
            credential_flight: None,
            target_url: None,
            request_bytes: 0,
            model: None,
            stream_requested: false,
            audit: RouteAuditConfig::default(),
            request_headers: None,
            request_body: None,
            upstream_wait: Duration::ZERO,
            windows: (None, None),
            reservation: None,
            quota_check: None,
            body_permit: None,
            conn_abort: None,
            _in_flight: InFlightGuard::new(),
        }
    }

    /// Record the client's `x-request-id` (from [`crate::headers::request_id`]): it
    /// becomes the echoed and forwarded `x-request-id`; the record keeps its gateway id.
    pub fn set_client_request_id(&mut self, id: Option<HeaderValue>) {
        if let Some(id) = &id {
            self.request_id = id.clone();
        }
        self.client_request_id = id;
    }

    /// Put `x-request-id` (the client's, else ours) and `x-fastgate-request-id` (ours,
    /// the key of the audit record) on a response to the client.
    pub fn insert_id_headers(&self, h: &mut HeaderMap) {
        // Named by constants: a `&str` name is parsed and checked on every insert.
        h.insert(crate::headers::X_REQUEST_ID, self.request_id.clone());
        h.insert(
            crate::headers::X_FASTGATE_REQUEST_ID,
            self.gateway_id.clone(),
        );
    }

    /// Close the request: limits settled, metrics, key usage, and one audit record.
    pub fn finish(mut self, outcome: Outcome) {
        if let Some(reservation) = self.reservation.take() {
            let usage = outcome
                .usage
                .map_or_else(Default::default, |u| fastgate_limits::Usage {
                    tokens: u.input.saturating_add(u.output),
                    cost: u.cost.unwrap_or(0.0),
                });
            reservation.settle(usage);
        }
        let elapsed = self.started.elapsed();
        let route_metrics = self
            .route_metrics
            .as_deref()
            .unwrap_or(&m::global().unrouted);
        route_metrics.count(outcome.status);
        route_metrics.duration.record(elapsed.as_secs_f64());
        if let Some(ttfb) = outcome.ttfb {
            route_metrics.ttfb.record(ttfb.as_secs_f64());
            // Gateway's own share before the first byte: arrival to first byte minus
            // the time the upstream took to answer.
            let overhead = ttfb.saturating_sub(self.upstream_wait);
            m::global().overhead.record(overhead.as_secs_f64());
        }
        if let Some(key) = &self.key {
            self.state.record_key_use(key);
        }
        if let Some(u) = &outcome.usage {
            self.record_usage_metrics(u);
            if let Some(flight) = &self.credential_flight {
                let health = self.state.health();
                flight
                    .health()
                    .add_tokens(u.input + u.output, health.quota_day().number);
                health.check_quota(flight.health());
            }
        }
        if self.state.audits() {
            self.send_record(&outcome, elapsed);
        }
    }

    fn record_usage_metrics(&self, u: &TokenUsage) {
        let key: metrics::SharedString = self
            .key
            .as_ref()
            .map_or_else(|| "".into(), |k| k.name.clone().into());
        let model: metrics::SharedString = self.model.clone().unwrap_or_default().into();
        metrics::counter!(m::TOKENS_TOTAL, "key" => key.clone(), "model" => model.clone(), "type" => "input").increment(u.input);
        metrics::counter!(m::TOKENS_TOTAL, "key" => key.clone(), "model" => model.clone(), "type" => "output").increment(u.output);
        if let Some(cost) = u.cost {
            metrics::counter!(m::COST_TOTAL, "key" => key, "model" => model)
                .increment((cost * 1e6).round() as u64);
        }
    }

    /// The request's audit record, borrowing the context's own text: the sender packs
    /// it into one buffer, and the strings are freed here, still in the cache.
    fn send_record(&mut self, o: &Outcome, elapsed: Duration) {
        use crate::headers::value_text;
        let request_id = value_text(&self.gateway_id);
        let client_request_id = self.client_request_id.as_ref().map(value_text);
        let user_agent = self.user_agent.as_ref().map(value_text);
        let query = self.query.take().map(crate::headers::redact_query);
        let key = self.key.as_deref();
        let usage = o.usage;
        let record = AuditRecordRef {
            request_id: &request_id,
            client_request_id: client_request_id.as_deref(),
            key_id: key.map(|k| k.id.as_str()),
            key_name: key.map(|k| k.name.as_str()),
            source: key.and_then(|k| k.source.as_deref()),
            method: self.method.as_str(),
            path: &self.path,
            query: query.as_deref(),
            route: self.route.as_deref(),
            upstream: self.upstream.as_deref(),
            credential: self.credential.as_deref(),
            target_url: self.target_url.as_deref(),
            status_code: o.status,
            request_time: self.request_time,
            ttfb_ms: o.ttfb.map(|d| d.as_secs_f64() * 1000.0),
            duration_ms: elapsed.as_secs_f64() * 1000.0,
            request_bytes: self.request_bytes,
            response_bytes: o.response_bytes,
            user_agent: user_agent.as_deref(),
            client_ip: self.client_ip.as_deref(),
            is_stream: o.is_stream,
            stream_chunks: o.chunks,
            model: self.model.as_deref(),
            tokens_in: usage.map(|u| u.input),
            tokens_out: usage.map(|u| u.output),
            tokens_estimated: usage.is_some_and(|u| u.estimated),
            cost: usage.and_then(|u| u.cost),
            error_message: o.error.as_deref(),
            request_headers: self.request_headers.as_deref(),
            response_headers: o.response_headers.as_deref(),
            request_body: self.request_body.as_deref(),
            response_body: o.response_body.as_deref(),
        };
        self.state.send_audit(&record);
    }
}

/// Up to `max` bytes of `body` as text for the audit log (lossy UTF-8).
pub fn capture_text(body: &[u8], max: usize) -> String {
    let cut = &body[..body.len().min(max)];
    String::from_utf8_lossy(cut).into_owned()
}
