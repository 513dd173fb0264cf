//! The counters the memory backend keeps: per scope (rate windows and
//! concurrency) and per key quota (usage in one period and what is reserved).

use std::sync::{Mutex, MutexGuard, PoisonError};

use crate::types::Totals;
use crate::{nanos_to_usd, usd_to_nanos};

pub(super) const MINUTE_MS: i64 = 60_000;
pub(super) const DAY_MS: i64 = 86_400_000;

/// Locks without panicking: every update below leaves the state consistent at
/// each step, so a guard poisoned by a panic elsewhere is still safe to use.
pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A fixed window: opened by the first request counted in it, over `len` ms
/// later; the next request opens a new one.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(super) struct RateWindow {
    /// `None` before the first request.
    pub start_ms: Option<i64>,
    pub requests: u64,
    /// Worst-case tokens reserved plus settled corrections (minute window of a
    /// scope with `tokens_per_minute` only).
    pub tokens: u64,
}

impl RateWindow {
    /// The start of the window still running at `now`.
    fn open_start(&self, now: i64, len: i64) -> Option<i64> {
        self.start_ms.filter(|&s| now < s.saturating_add(len))
    }

    /// Requests counted in the window running at `now` (0 when none runs).
    pub fn requests_at(&self, now: i64, len: i64) -> u64 {
        self.open_start(now, len).map_or(0, |_| self.requests)
    }

    pub fn tokens_at(&self, now: i64, len: i64) -> u64 {
        self.open_start(now, len).map_or(0, |_| self.tokens)
    }

    /// Milliseconds until the running window ends; `None` when none runs.
    pub fn reset_ms(&self, now: i64, len: i64) -> Option<u64> {
        self.open_start(now, len)
            .map(|s| u64::try_from(s.saturating_add(len) - now).unwrap_or(0))
    }

    /// Makes sure a window runs at `now` (opening a fresh one if the last is
    /// over) and returns its start.
    pub fn roll(&mut self, now: i64, len: i64) -> i64 {
        match self.open_start(now, len) {
            Some(s) => s,
            None => {
                *self = Self {
                    start_ms: Some(now),
                    requests: 0,
                    tokens: 0,
                };
                now
            }
        }
    }
}

/// One scope's rate state.
#[derive(Debug, Default)]
pub(super) struct ScopeState {
    pub minute: RateWindow,
    pub day: RateWindow,
    pub in_flight: u64,
}

/// Requests, tokens and cost (nano-USD, so that budget checks are exact).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(super) struct Counts {
    pub requests: u64,
    pub tokens: u64,
    pub nanos: u64,
}

impl Counts {
    pub fn from_totals(t: &Totals) -> Self {
        Self {
            requests: t.requests,
            tokens: t.tokens,
            nanos: usd_to_nanos(t.cost),
        }
    }

    pub fn plus(self, o: Self) -> Self {
        Self {
            requests: self.requests.saturating_add(o.requests),
            tokens: self.tokens.saturating_add(o.tokens),
            nanos: self.nanos.saturating_add(o.nanos),
        }
    }

    pub fn minus(self, o: Self) -> Self {
        Self {
            requests: self.requests.saturating_sub(o.requests),
            tokens: self.tokens.saturating_sub(o.tokens),
            nanos: self.nanos.saturating_sub(o.nanos),
        }
    }

    pub fn cost_usd(self) -> f64 {
        nanos_to_usd(self.nanos)
    }
}

/// One key's quota state in one period.
#[derive(Debug, Default)]
pub(super) struct QuotaState {
    /// The period counted; `None` until the first admission or store total.
    pub period: Option<String>,
    /// The store's fleet total, as last applied.
    pub base: Counts,
    /// Counted here since `base` was read.
    pub local: Counts,
    pub reserved_tokens: u64,
    pub reserved_nanos: u64,
    pub in_flight: u64,
}

impl QuotaState {
    pub fn is_on(&self, period: &str) -> bool {
        self.period.as_deref() == Some(period)
    }

    /// Moves to `period` if the state counts another one. The new period
    /// starts from zero; reservations of the old one are released by their
    /// settlement without touching the new counts (it checks the period).
    pub fn enter(&mut self, period: &str) {
        if !self.is_on(period) {
            *self = Self {
                period: Some(period.to_owned()),
                ..Self::default()
            };
        }
    }

    /// Settled usage in the period, fleet-wide as far as known here.
    pub fn used(&self) -> Counts {
        self.base.plus(self.local)
    }
}
