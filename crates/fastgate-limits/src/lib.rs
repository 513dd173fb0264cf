//! Rate limits, quotas and budgets (docs/limits.md).
//!
//! A request is admitted in one call against every limit that applies to it
//! (its key's, its route's, its model group's, its key's quota): all pass and
//! are counted, or nothing is. Token limits and budgets hold the request's worst
//! case until it is settled with the real usage.
//!
//! Backends: [`MemoryBackend`] (one instance) and [`RedisBackend`] (a fleet; Lua
//! scripts, one round trip per admission). [`Limiter`] is what the proxy holds:
//! it picks the backend, applies the failure policy when Redis is unreachable,
//! and keeps the per-period usage ledger the store is fed from.

pub mod backend;
pub mod clock;
pub mod front;
pub mod ledger;
pub mod memory;
pub mod period;
pub mod redis;
mod refusals;
pub mod types;

pub use backend::{AdmitResult, BackendError, LimitBackend};
pub use clock::{Clock, FakeClock, SystemClock};
pub use front::{BACKEND_MODE_METRIC, Limiter, LimiterSettings, QuotaFallback, RateFallback};
pub use ledger::UsageLedger;
pub use memory::MemoryBackend;
pub use period::Period;
pub use redis::{RedisBackend, RedisSettings};
pub use types::*;

/// Nano-USD: costs are counted as integers so that budget checks are exact.
pub fn usd_to_nanos_ceil(usd: f64) -> u64 {
    if usd.is_finite() && usd > 0.0 {
        (usd * 1e9).ceil().min(u64::MAX as f64) as u64
    } else {
        0
    }
}

/// Nano-USD, rounded to the nearest (settled usage).
pub fn usd_to_nanos(usd: f64) -> u64 {
    if usd.is_finite() && usd > 0.0 {
        (usd * 1e9).round().min(u64::MAX as f64) as u64
    } else {
        0
    }
}

/// Nano-USD, a budget: rounded down so that the check never lets more through.
pub fn usd_to_nanos_floor(usd: f64) -> u64 {
    if usd.is_finite() && usd > 0.0 {
        (usd * 1e9).floor().min(u64::MAX as f64) as u64
    } else {
        0
    }
}

pub fn nanos_to_usd(nanos: u64) -> f64 {
    nanos as f64 / 1e9
}
