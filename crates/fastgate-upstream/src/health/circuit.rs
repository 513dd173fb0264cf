//! The circuit breaker of one credential: `errors` failures (5xx answers or
//! transport errors) within `within` open it for `open_for`; then a single
//! trial request (half-open) closes it again or reopens it.
//!
//! The request path reads one atomic; the failure window is behind a mutex of
//! this credential alone, taken only when an answer failed.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU8, Ordering};

/// The circuit settings in milliseconds (`health.circuit`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CircuitSettings {
    pub enabled: bool,
    pub errors: u32,
    pub within_ms: i64,
    pub open_for_ms: i64,
}

impl From<&fastgate_config::CircuitConfig> for CircuitSettings {
    fn from(c: &fastgate_config::CircuitConfig) -> Self {
        Self {
            enabled: c.enabled,
            errors: c.errors.max(1),
            within_ms: i64::try_from(c.within.as_millis()).unwrap_or(i64::MAX),
            open_for_ms: i64::try_from(c.open_for.as_millis()).unwrap_or(i64::MAX),
        }
    }
}

impl Default for CircuitSettings {
    fn default() -> Self {
        (&fastgate_config::CircuitConfig::default()).into()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CircuitState {
    Closed,
    Open,
    HalfOpen,
}

const CLOSED: u8 = 0;
const OPEN: u8 = 1;
const HALF_OPEN: u8 = 2;

/// What a reported outcome did to the circuit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CircuitChange {
    Opened { until_ms: i64, failures: u32 },
    Reopened { until_ms: i64 },
    Closed,
}

#[derive(Debug, Default)]
pub struct Circuit {
    state: AtomicU8,
    /// Open: when the trial may start. Half-open: when the trial started.
    at_ms: AtomicI64,
    failures: Mutex<VecDeque<i64>>,
}

impl Circuit {
    pub fn state(&self) -> CircuitState {
        match self.state.load(Ordering::Acquire) {
            OPEN => CircuitState::Open,
            HALF_OPEN => CircuitState::HalfOpen,
            _ => CircuitState::Closed,
        }
    }

    /// When an open circuit lets its trial through (`None` unless open).
    pub fn open_until_ms(&self) -> Option<i64> {
        (self.state.load(Ordering::Acquire) == OPEN).then(|| self.at_ms.load(Ordering::Acquire))
    }

    /// May a request go now? Pure: an open circuit whose time is up says yes,
    /// but only [`Self::claim`] takes the single trial.
    pub fn admits(&self, now_ms: i64, s: &CircuitSettings) -> bool {
        match self.state.load(Ordering::Acquire) {
            CLOSED => true,
            OPEN => now_ms >= self.at_ms.load(Ordering::Acquire),
            // A trial that never reported (cancelled) frees the slot after open_for.
            _ => now_ms.saturating_sub(self.at_ms.load(Ordering::Acquire)) >= s.open_for_ms,
        }
    }

    /// Take the right to send: always when closed; the one trial when the open
    /// time is up (exactly one caller wins).
    pub fn claim(&self, now_ms: i64, s: &CircuitSettings) -> bool {
        match self.state.load(Ordering::Acquire) {
            CLOSED => true,
            OPEN => {
                let until = self.at_ms.load(Ordering::Acquire);
                now_ms >= until
                    && self
                        .state
                        .compare_exchange(OPEN, HALF_OPEN, Ordering::AcqRel, Ordering::Acquire)
                        .is_ok()
                    && {
                        self.at_ms.store(now_ms, Ordering::Release);
                        true
                    }
            }
            _ => {
                let started = self.at_ms.load(Ordering::Acquire);
                now_ms.saturating_sub(started) >= s.open_for_ms
                    && self
                        .at_ms
                        .compare_exchange(started, now_ms, Ordering::AcqRel, Ordering::Acquire)
                        .is_ok()
            }
        }
    }

    /// An answer that was not a failure: a half-open circuit closes.
    pub fn on_success(&self) -> Option<CircuitChange> {
        if self.state.load(Ordering::Acquire) == CLOSED {
            return None;
        }
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        failures.clear();
        let before = self.state.swap(CLOSED, Ordering::AcqRel);
        (before != CLOSED).then_some(CircuitChange::Closed)
    }

    /// A 5xx answer or a transport error.
    pub fn on_failure(&self, now_ms: i64, s: &CircuitSettings) -> Option<CircuitChange> {
        if !s.enabled {
            return None;
        }
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let until_ms = now_ms.saturating_add(s.open_for_ms);
        match self.state.load(Ordering::Acquire) {
            HALF_OPEN => {
                self.at_ms.store(until_ms, Ordering::Release);
                self.state.store(OPEN, Ordering::Release);
                failures.clear();
                Some(CircuitChange::Reopened { until_ms })
            }
            OPEN => None,
            _ => {
                failures.push_back(now_ms);
                while failures
                    .front()
                    .is_some_and(|&t| now_ms.saturating_sub(t) > s.within_ms)
                {
                    failures.pop_front();
                }
                let count = u32::try_from(failures.len()).unwrap_or(u32::MAX);
                if count < s.errors {
                    return None;
                }
                failures.clear();
                self.at_ms.store(until_ms, Ordering::Release);
                self.state.store(OPEN, Ordering::Release);
                Some(CircuitChange::Opened {
                    until_ms,
                    failures: count,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    fn settings() -> CircuitSettings {
        CircuitSettings {
            enabled: true,
            errors: 5,
            within_ms: 60_000,
            open_for_ms: 30_000,
        }
    }

    #[test]
    fn five_failures_in_a_minute_open_then_one_trial_decides() {
        let c = Circuit::default();
        let s = settings();
        for i in 0..4 {
            assert_eq!(c.on_failure(i * 1000, &s), None);
        }
        assert_eq!(
            c.on_failure(4_000, &s),
            Some(CircuitChange::Opened {
                until_ms: 34_000,
                failures: 5
            })
        );
        assert!(!c.admits(33_999, &s));
        assert!(!c.claim(33_999, &s));
        assert!(c.admits(34_000, &s));
        assert!(c.claim(34_000, &s), "the trial");
        assert!(!c.claim(34_001, &s), "only one trial");
        assert_eq!(c.state(), CircuitState::HalfOpen);
        assert_eq!(
            c.on_failure(35_000, &s),
            Some(CircuitChange::Reopened { until_ms: 65_000 })
        );
        assert!(c.claim(65_000, &s));
        assert_eq!(c.on_success(), Some(CircuitChange::Closed));
        assert_eq!(c.state(), CircuitState::Closed);
        assert!(c.claim(65_001, &s));
    }

    #[test]
    fn failures_spread_out_do_not_open() {
        let c = Circuit::default();
        let s = settings();
        for i in 0..20 {
            assert_eq!(c.on_failure(i * 20_000, &s), None);
        }
        assert_eq!(c.state(), CircuitState::Closed);
    }

    #[test]
    fn a_lost_trial_is_retried_after_open_for() {
        let c = Circuit::default();
        let s = CircuitSettings {
            errors: 1,
            ..settings()
        };
        c.on_failure(0, &s);
        assert!(c.claim(30_000, &s));
        assert!(!c.claim(40_000, &s));
        assert!(c.claim(60_000, &s), "the first trial never reported");
    }

    #[test]
    fn disabled_circuit_never_opens() {
        let c = Circuit::default();
        let s = CircuitSettings {
            enabled: false,
            errors: 1,
            ..settings()
        };
        assert_eq!(c.on_failure(0, &s), None);
        assert!(c.claim(1, &s));
    }
}
