//! The vocabulary shared by every backend: what a request asks for (scopes,
//! quota, worst-case demand), what it gets (windows for the `x-ratelimit-*`
//! headers and a reservation to settle), and why it may be refused.

use std::sync::Arc;
use std::time::Duration;

use fastgate_auth::{KeyLimits, KeyQuota};

/// Rate limits of one scope; `None` means unlimited. Zero is refused at input.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Limits {
    pub requests_per_minute: Option<u32>,
    pub requests_per_day: Option<u32>,
    pub tokens_per_minute: Option<u64>,
    pub max_concurrent: Option<u32>,
}

impl Limits {
    pub fn is_unlimited(&self) -> bool {
        self.requests_per_minute.is_none()
            && self.requests_per_day.is_none()
            && self.tokens_per_minute.is_none()
            && self.max_concurrent.is_none()
    }

    /// These limits shared by `instances` processes: each limit divided (rounded
    /// up, at least 1). Used by the fallback when the shared backend is down.
    pub fn divided(&self, instances: u32) -> Self {
        let n = instances.max(1);
        let d32 = |v: Option<u32>| v.map(|v| v.div_ceil(n).max(1));
        Self {
            requests_per_minute: d32(self.requests_per_minute),
            requests_per_day: d32(self.requests_per_day),
            tokens_per_minute: self
                .tokens_per_minute
                .map(|v| v.div_ceil(u64::from(n)).max(1)),
            max_concurrent: d32(self.max_concurrent),
        }
    }
}

impl From<&KeyLimits> for Limits {
    fn from(l: &KeyLimits) -> Self {
        Self {
            requests_per_minute: l.requests_per_minute,
            requests_per_day: l.requests_per_day,
            tokens_per_minute: l.tokens_per_minute,
            max_concurrent: l.max_concurrent,
        }
    }
}

/// Whose limits: the gateway key, the matched route (all keys together) or the
/// requested model group (all keys together).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ScopeKind {
    Key,
    Route,
    Model,
}

impl ScopeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Key => "key",
            Self::Route => "route",
            Self::Model => "model",
        }
    }
}

/// One set of rate limits a request counts against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    pub kind: ScopeKind,
    /// Key id, route name or model group name.
    pub id: Arc<str>,
    pub limits: Limits,
}

/// A key's quota in force for one request: the key's `quota` and the period
/// (see [`crate::period`]) the request falls in.
#[derive(Debug, Clone, PartialEq)]
pub struct QuotaCheck {
    pub key_id: Arc<str>,
    pub quota: KeyQuota,
    pub period: crate::period::Period,
}

impl QuotaCheck {
    pub fn is_unlimited(&self) -> bool {
        self.quota.requests.is_none() && self.quota.tokens.is_none() && self.quota.cost.is_none()
    }
}

/// The worst case of one request, reserved at admission: prompt tokens
/// estimated plus the output cap, and what that would cost (USD).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Demand {
    pub tokens: u64,
    pub cost: f64,
}

/// Everything one request is checked against, in one call (one Redis round trip).
#[derive(Debug, Clone)]
pub struct AdmitRequest {
    /// Unique per request (the gateway request id): names its concurrency slot
    /// and reservation so a crashed instance's holds expire.
    pub request_id: Arc<str>,
    /// At most one per kind; scopes without limits may be left out.
    pub scopes: Vec<Scope>,
    pub quota: Option<QuotaCheck>,
    pub demand: Demand,
}

impl AdmitRequest {
    /// Nothing to check: no scope has a limit and there is no quota.
    pub fn is_unlimited(&self) -> bool {
        self.scopes.iter().all(|s| s.limits.is_unlimited())
            && self.quota.as_ref().is_none_or(QuotaCheck::is_unlimited)
    }
}

/// Which limit refused a request (also the `limit` label of the metric).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LimitKind {
    RequestsPerMinute,
    RequestsPerDay,
    TokensPerMinute,
    Concurrency,
    QuotaRequests,
    QuotaTokens,
    Budget,
}

impl LimitKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RequestsPerMinute => "requests_per_minute",
            Self::RequestsPerDay => "requests_per_day",
            Self::TokensPerMinute => "tokens_per_minute",
            Self::Concurrency => "max_concurrent",
            Self::QuotaRequests => "quota_requests",
            Self::QuotaTokens => "quota_tokens",
            Self::Budget => "budget",
        }
    }

    /// Quotas and budgets (per period), as opposed to rate limits.
    pub fn is_quota(self) -> bool {
        matches!(self, Self::QuotaRequests | Self::QuotaTokens | Self::Budget)
    }
}

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    pub kind: LimitKind,
    pub scope: ScopeKind,
    /// The limit (requests, tokens, or USD for a budget).
    pub limit: f64,
    /// Already used plus held by requests in flight.
    pub used: f64,
    /// What this request asked for (1 request, its worst-case tokens or cost).
    pub requested: f64,
    /// When it may succeed: the window's reset, the quota period's end; `None`
    /// when waiting does not help (a `never` quota, or a request larger than the
    /// whole limit).
    pub retry_after: Option<Duration>,
}

impl Refusal {
    /// The request alone exceeds the limit: it can never be admitted.
    pub fn too_large(&self) -> bool {
        self.requested > self.limit
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AdmitError {
    #[error("{} limit reached", .0.kind.as_str())]
    Limited(Refusal),
    /// The shared backend cannot be reached and the failure policy for this
    /// kind of limit is to refuse.
    #[error("limits backend unavailable: {0}")]
    Unavailable(String),
}

/// One limit's state after admission, for the `x-ratelimit-*` headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub limit: u64,
    pub remaining: u64,
    /// Until the window starts afresh.
    pub reset: Duration,
}

impl Window {
    /// The tighter of two windows (fewer remaining; then the later reset).
    pub fn tighter(a: Option<Window>, b: Window) -> Option<Window> {
        Some(match a {
            Some(a)
                if (a.remaining, std::cmp::Reverse(a.reset))
                    <= (b.remaining, std::cmp::Reverse(b.reset)) =>
            {
                a
            }
            _ => b,
        })
    }
}

/// What the client used, known at the end: settles a reservation.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Usage {
    pub tokens: u64,
    pub cost: f64,
}

/// Gives back what a backend held for one request. Called exactly once, by
/// [`Reservation`]; must not block (a network backend spawns its write).
pub trait Settle: Send + Sync + 'static {
    fn settle(self: Box<Self>, usage: Usage);
}

/// An admitted request's holds (concurrency slots, reserved tokens and cost).
/// [`Reservation::settle`] replaces the reservation by the real usage; dropping it
/// unsettled releases everything with zero usage (failure, disconnect).
pub struct Reservation {
    inner: Option<Box<dyn Settle>>,
}

impl std::fmt::Debug for Reservation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reservation")
            .field("held", &self.inner.is_some())
            .finish()
    }
}

impl Reservation {
    pub fn new(inner: Box<dyn Settle>) -> Self {
        Self { inner: Some(inner) }
    }

    /// Nothing held (an unlimited request).
    pub fn none() -> Self {
        Self { inner: None }
    }

    pub fn is_held(&self) -> bool {
        self.inner.is_some()
    }

    pub fn settle(mut self, usage: Usage) {
        if let Some(inner) = self.inner.take() {
            inner.settle(usage);
        }
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if let Some(inner) = self.inner.take() {
            inner.settle(Usage::default());
        }
    }
}

/// An admitted request: the tightest request and token windows (for headers)
/// and its reservation.
#[derive(Debug)]
pub struct Admitted {
    pub requests: Option<Window>,
    pub tokens: Option<Window>,
    pub reservation: Reservation,
}

impl Admitted {
    pub fn unlimited() -> Self {
        Self {
            requests: None,
            tokens: None,
            reservation: Reservation::none(),
        }
    }
}

/// Totals of one key in one quota period.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Totals {
    pub requests: u64,
    pub tokens: u64,
    pub cost: f64,
}

impl Totals {
    pub fn add(&mut self, other: &Totals) {
        self.requests = self.requests.saturating_add(other.requests);
        self.tokens = self.tokens.saturating_add(other.tokens);
        self.cost += other.cost;
    }

    pub fn is_zero(&self) -> bool {
        self.requests == 0 && self.tokens == 0 && self.cost == 0.0
    }
}

/// Usage of one key in one period, as the store keeps it (added by every
/// instance; the sum is the fleet's total).
#[derive(Debug, Clone, PartialEq)]
pub struct PeriodUsage {
    pub key_id: String,
    /// [`crate::period::Period::id`].
    pub period: String,
    pub totals: Totals,
}

/// What one key has used and holds, for the usage API.
#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct KeyUsageView {
    /// `memory`, `redis`, or `fallback` (Redis unreachable).
    #[schema(value_type = String)]
    pub backend: &'static str,
    pub period: Option<crate::period::Period>,
    /// Settled usage in the period (requests count from admission).
    pub used: UsedView,
    /// Held by requests in flight (worst case, released at settlement).
    pub reserved: ReservedView,
    /// The key's rate windows as they stand.
    pub windows: Vec<WindowView>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct UsedView {
    pub requests: u64,
    pub tokens: u64,
    pub cost: f64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct ReservedView {
    pub tokens: u64,
    pub cost: f64,
    pub in_flight: u64,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct WindowView {
    /// [`LimitKind::as_str`] of a rate limit.
    #[schema(value_type = String)]
    pub limit_kind: &'static str,
    pub limit: u64,
    pub used: u64,
    /// Seconds until the window starts afresh; 0 when no window is open.
    pub resets_in_secs: u64,
}
