//! The checks and counts of one admission, on states already locked by the
//! caller (all of them at once, in a fixed order), so that a request is either
//! counted everywhere or nowhere.

use std::time::Duration;

use crate::nanos_to_usd;
use crate::types::{Demand, LimitKind, QuotaCheck, Refusal, Scope, ScopeKind, Window};

use super::state::{DAY_MS, MINUTE_MS, QuotaState, ScopeState};

/// A refusal; `retry_after` is dropped when the request alone exceeds the
/// limit, since waiting would never help.
fn refusal(
    kind: LimitKind,
    scope: ScopeKind,
    (limit, used, requested): (u64, u64, u64),
    retry_after: Option<Duration>,
) -> Refusal {
    Refusal {
        kind,
        scope,
        limit: limit as f64,
        used: used as f64,
        requested: requested as f64,
        retry_after: if requested > limit { None } else { retry_after },
    }
}

/// The first limit of `scope` that the request would break, in the documented
/// order: concurrency, requests per minute, requests per day, tokens per minute.
pub(super) fn check_scope(
    scope: &Scope,
    st: &ScopeState,
    demand_tokens: u64,
    now: i64,
) -> Result<(), Refusal> {
    let l = &scope.limits;
    if let Some(max) = l.max_concurrent.map(u64::from)
        && st.in_flight.saturating_add(1) > max
    {
        return Err(refusal(
            LimitKind::Concurrency,
            scope.kind,
            (max, st.in_flight, 1),
            Some(Duration::from_secs(1)),
        ));
    }
    let requests = [
        (
            LimitKind::RequestsPerMinute,
            l.requests_per_minute,
            &st.minute,
            MINUTE_MS,
        ),
        (
            LimitKind::RequestsPerDay,
            l.requests_per_day,
            &st.day,
            DAY_MS,
        ),
    ];
    for (kind, limit, window, len) in requests {
        if let Some(limit) = limit.map(u64::from) {
            let used = window.requests_at(now, len);
            if used.saturating_add(1) > limit {
                let reset = window.reset_ms(now, len).map(Duration::from_millis);
                return Err(refusal(kind, scope.kind, (limit, used, 1), reset));
            }
        }
    }
    if let Some(limit) = l.tokens_per_minute {
        let used = st.minute.tokens_at(now, MINUTE_MS);
        if used.saturating_add(demand_tokens) > limit {
            let reset = st
                .minute
                .reset_ms(now, MINUTE_MS)
                .map(Duration::from_millis);
            return Err(refusal(
                LimitKind::TokensPerMinute,
                scope.kind,
                (limit, used, demand_tokens),
                reset,
            ));
        }
    }
    Ok(())
}

/// What one admission added to a scope, for its settlement.
#[derive(Debug, Clone, Copy)]
pub(super) struct ScopeHold {
    /// The minute window the request's tokens were counted in.
    pub minute_start: i64,
    /// Tokens added to that window (`Some` only with `tokens_per_minute`).
    pub tokens: Option<u64>,
    /// A concurrency slot was taken.
    pub slot: bool,
}

impl ScopeHold {
    pub fn needs_settling(&self) -> bool {
        self.tokens.is_some() || self.slot
    }
}

/// The windows of one scope after an admission, for the `x-ratelimit-*` headers.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Windows {
    pub requests: Option<Window>,
    pub tokens: Option<Window>,
}

impl Windows {
    fn add_requests(&mut self, w: Window) {
        self.requests = Window::tighter(self.requests, w);
    }

    fn add_tokens(&mut self, w: Window) {
        self.tokens = Window::tighter(self.tokens, w);
    }
}

fn window(limit: u64, counted: u64, start: i64, len: i64, now: i64) -> Window {
    let end = start.saturating_add(len);
    Window {
        limit,
        remaining: limit.saturating_sub(counted),
        reset: Duration::from_millis(u64::try_from(end - now).unwrap_or(0)),
    }
}

/// Counts an admitted request in `scope` (its checks have passed) and folds
/// its windows into `out`. Requests are counted in both windows whatever the
/// limits, so that a limit added later starts from the real count; tokens only
/// where `tokens_per_minute` is set (nothing else reads them).
pub(super) fn apply_scope(
    scope: &Scope,
    st: &mut ScopeState,
    demand_tokens: u64,
    now: i64,
    out: &mut Windows,
) -> ScopeHold {
    let l = &scope.limits;
    let minute_start = st.minute.roll(now, MINUTE_MS);
    st.minute.requests = st.minute.requests.saturating_add(1);
    let day_start = st.day.roll(now, DAY_MS);
    st.day.requests = st.day.requests.saturating_add(1);
    let tokens = l.tokens_per_minute.map(|_| demand_tokens);
    if tokens.is_some() {
        st.minute.tokens = st.minute.tokens.saturating_add(demand_tokens);
    }
    let slot = l.max_concurrent.is_some();
    if slot {
        st.in_flight = st.in_flight.saturating_add(1);
    }
    if let Some(limit) = l.requests_per_minute.map(u64::from) {
        out.add_requests(window(
            limit,
            st.minute.requests,
            minute_start,
            MINUTE_MS,
            now,
        ));
    }
    if let Some(limit) = l.requests_per_day.map(u64::from) {
        out.add_requests(window(limit, st.day.requests, day_start, DAY_MS, now));
    }
    if let Some(limit) = l.tokens_per_minute {
        out.add_tokens(window(
            limit,
            st.minute.tokens,
            minute_start,
            MINUTE_MS,
            now,
        ));
    }
    ScopeHold {
        minute_start,
        tokens,
        slot,
    }
}

/// The first quota limit the request would break: requests, tokens, budget.
/// `st` has already entered the request's period.
pub(super) fn check_quota(
    q: &QuotaCheck,
    st: &QuotaState,
    demand: &Demand,
    demand_nanos: u64,
    now: i64,
) -> Result<(), Refusal> {
    let retry = q
        .period
        .remaining_ms(now)
        .map(|ms| Duration::from_millis(u64::try_from(ms).unwrap_or(0)));
    let used = st.used();
    if let Some(limit) = q.quota.requests
        && used.requests.saturating_add(1) > limit
    {
        let counts = (limit, used.requests, 1);
        return Err(refusal(
            LimitKind::QuotaRequests,
            ScopeKind::Key,
            counts,
            retry,
        ));
    }
    if let Some(limit) = q.quota.tokens {
        let held = used.tokens.saturating_add(st.reserved_tokens);
        if held.saturating_add(demand.tokens) > limit {
            let counts = (limit, held, demand.tokens);
            return Err(refusal(
                LimitKind::QuotaTokens,
                ScopeKind::Key,
                counts,
                retry,
            ));
        }
    }
    if let Some(cost) = q.quota.cost {
        let budget = crate::usd_to_nanos_floor(cost);
        let held = used.nanos.saturating_add(st.reserved_nanos);
        if held.saturating_add(demand_nanos) > budget {
            // Reported in USD, but decided (and judged too large) in nanos.
            return Err(Refusal {
                kind: LimitKind::Budget,
                scope: ScopeKind::Key,
                limit: nanos_to_usd(budget),
                used: nanos_to_usd(held),
                requested: nanos_to_usd(demand_nanos),
                retry_after: if demand_nanos > budget { None } else { retry },
            });
        }
    }
    Ok(())
}

/// What one admission added to a key's quota, for its settlement.
#[derive(Debug, Clone)]
pub(super) struct QuotaHold {
    pub period: String,
    pub tokens: u64,
    pub nanos: u64,
}

/// Counts an admitted request in the key's quota and reserves its worst case.
pub(super) fn apply_quota(
    q: &QuotaCheck,
    st: &mut QuotaState,
    demand: &Demand,
    demand_nanos: u64,
) -> QuotaHold {
    st.local.requests = st.local.requests.saturating_add(1);
    st.reserved_tokens = st.reserved_tokens.saturating_add(demand.tokens);
    st.reserved_nanos = st.reserved_nanos.saturating_add(demand_nanos);
    st.in_flight = st.in_flight.saturating_add(1);
    QuotaHold {
        period: q.period.id.clone(),
        tokens: demand.tokens,
        nanos: demand_nanos,
    }
}
