//! The per-instance limiter the proxy used before the backends (removed once the proxy is ported).

//! Per-key admission: requests per minute, requests per day (GCRA via
//! `governor`, which also tells how much burst capacity remains) and a cap on
//! concurrent requests (an atomic counter released by a guard).
//!
//! Limiters live in a sharded map keyed by key id, created on first use and
//! replaced when the key's limits change. Nothing here blocks or awaits.
//! This is the per-instance backend; limits shared across instances (Redis)
//! build on the same `Decision` shape.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use dashmap::DashMap;
use fastgate_auth::KeyLimits;
use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};

type Gcra = RateLimiter<NotKeyed, InMemoryState, DefaultClock, StateInformationMiddleware>;

/// Which limit a decision is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitKind {
    RequestsPerMinute,
    RequestsPerDay,
    Concurrency,
}

impl LimitKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RequestsPerMinute => "requests_per_minute",
            Self::RequestsPerDay => "requests_per_day",
            Self::Concurrency => "max_concurrent",
        }
    }
}

/// The tightest request-rate window, for `x-ratelimit-*` headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateInfo {
    pub limit: u32,
    pub remaining: u32,
    /// Time until the full burst is available again.
    pub reset: Duration,
}

#[derive(Debug)]
pub enum Decision {
    Allowed {
        info: Option<RateInfo>,
        /// Holds a concurrency slot until dropped (end of the response).
        guard: Option<ConcurrencyGuard>,
    },
    Limited {
        kind: LimitKind,
        limit: u32,
        retry_after: Duration,
    },
}

/// Releases a concurrency slot when dropped.
#[derive(Debug)]
pub struct ConcurrencyGuard {
    counter: Arc<AtomicU32>,
}

impl Drop for ConcurrencyGuard {
    fn drop(&mut self) {
        self.counter.fetch_sub(1, Ordering::AcqRel);
    }
}

struct KeyLimiter {
    limits: KeyLimits,
    per_minute: Option<(u32, Gcra)>,
    per_day: Option<(u32, Gcra)>,
    in_flight: Arc<AtomicU32>,
}

impl KeyLimiter {
    fn new(limits: &KeyLimits) -> Self {
        let gcra = |n: Option<u32>, period: Duration| {
            let n = NonZeroU32::new(n?)?;
            let quota = Quota::with_period(period / n.get())?.allow_burst(n);
            Some((
                n.get(),
                RateLimiter::direct(quota).with_middleware::<StateInformationMiddleware>(),
            ))
        };
        Self {
            limits: limits.clone(),
            per_minute: gcra(limits.requests_per_minute, Duration::from_secs(60)),
            per_day: gcra(limits.requests_per_day, Duration::from_secs(86_400)),
            in_flight: Arc::new(AtomicU32::new(0)),
        }
    }
}

/// All keys' limiters.
#[derive(Default)]
pub struct Limiter {
    keys: DashMap<String, Arc<KeyLimiter>>,
}

fn unlimited(l: &KeyLimits) -> bool {
    l.requests_per_minute.is_none() && l.requests_per_day.is_none() && l.max_concurrent.is_none()
}

impl Limiter {
    pub fn new() -> Self {
        Self::default()
    }

    fn limiter_for(&self, key_id: &str, limits: &KeyLimits) -> Arc<KeyLimiter> {
        if let Some(existing) = self.keys.get(key_id)
            && existing.limits == *limits
        {
            return Arc::clone(&existing);
        }
        // Slow path, under the shard's write lock so concurrent first requests
        // share one limiter.
        let mut entry = self
            .keys
            .entry(key_id.to_string())
            .or_insert_with(|| Arc::new(KeyLimiter::new(limits)));
        if entry.limits != *limits {
            *entry = Arc::new(KeyLimiter::new(limits));
        }
        Arc::clone(&entry)
    }

    /// Admit one request of key `key_id` with `limits`, or say which limit it hit.
    pub fn admit(&self, key_id: &str, limits: &KeyLimits) -> Decision {
        if unlimited(limits) {
            return Decision::Allowed {
                info: None,
                guard: None,
            };
        }
        let kl = self.limiter_for(key_id, limits);
        let guard = match limits.max_concurrent {
            Some(max) => {
                let prev = kl.in_flight.fetch_add(1, Ordering::AcqRel);
                let guard = ConcurrencyGuard {
                    counter: Arc::clone(&kl.in_flight),
                };
                if prev >= max {
                    drop(guard);
                    return Decision::Limited {
                        kind: LimitKind::Concurrency,
                        limit: max,
                        retry_after: Duration::from_secs(1),
                    };
                }
                Some(guard)
            }
            None => None,
        };
        let mut info: Option<RateInfo> = None;
        for (kind, slot) in [
            (LimitKind::RequestsPerMinute, &kl.per_minute),
            (LimitKind::RequestsPerDay, &kl.per_day),
        ] {
            let Some((limit, gcra)) = slot else { continue };
            match gcra.check() {
                Ok(snapshot) => {
                    let remaining = snapshot.remaining_burst_capacity();
                    let reset =
                        snapshot.quota().replenish_interval() * (limit - remaining.min(*limit));
                    if info.is_none_or(|i| remaining < i.remaining) {
                        info = Some(RateInfo {
                            limit: *limit,
                            remaining,
                            reset,
                        });
                    }
                }
                Err(not_until) => {
                    let retry_after = not_until.wait_time_from(DefaultClock::default().now());
                    return Decision::Limited {
                        kind,
                        limit: *limit,
                        retry_after,
                    };
                }
            }
        }
        Decision::Allowed { info, guard }
    }

    /// Forget limiters of keys that no longer exist.
    pub fn retain(&self, mut keep: impl FnMut(&str) -> bool) {
        self.keys.retain(|id, _| keep(id));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(rpm: Option<u32>, conc: Option<u32>) -> KeyLimits {
        KeyLimits {
            requests_per_minute: rpm,
            max_concurrent: conc,
            ..KeyLimits::default()
        }
    }

    #[test]
    fn unlimited_keys_pass() {
        let l = Limiter::new();
        for _ in 0..1000 {
            assert!(matches!(
                l.admit("k", &KeyLimits::default()),
                Decision::Allowed {
                    info: None,
                    guard: None
                }
            ));
        }
    }

    #[test]
    fn per_minute_admits_exactly_n_then_limits() {
        let l = Limiter::new();
        let lim = limits(Some(5), None);
        let mut remaining = Vec::new();
        for _ in 0..5 {
            match l.admit("k", &lim) {
                Decision::Allowed { info: Some(i), .. } => remaining.push(i.remaining),
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(remaining, vec![4, 3, 2, 1, 0]);
        match l.admit("k", &lim) {
            Decision::Limited {
                kind,
                limit,
                retry_after,
            } => {
                assert_eq!(kind, LimitKind::RequestsPerMinute);
                assert_eq!(limit, 5);
                assert!(
                    retry_after > Duration::from_secs(5) && retry_after <= Duration::from_secs(12)
                );
            }
            other => panic!("{other:?}"),
        }
        // Another key is independent.
        assert!(matches!(l.admit("other", &lim), Decision::Allowed { .. }));
        // Changing the limits gives a fresh limiter.
        assert!(matches!(
            l.admit("k", &limits(Some(6), None)),
            Decision::Allowed { .. }
        ));
    }

    #[test]
    fn concurrency_is_released_by_the_guard() {
        let l = Limiter::new();
        let lim = limits(None, Some(2));
        let a = l.admit("k", &lim);
        let b = l.admit("k", &lim);
        assert!(matches!(a, Decision::Allowed { guard: Some(_), .. }));
        assert!(matches!(b, Decision::Allowed { guard: Some(_), .. }));
        assert!(matches!(
            l.admit("k", &lim),
            Decision::Limited {
                kind: LimitKind::Concurrency,
                ..
            }
        ));
        drop(a);
        assert!(matches!(
            l.admit("k", &lim),
            Decision::Allowed { guard: Some(_), .. }
        ));
    }

    #[test]
    fn concurrent_admission_is_exact() {
        let l = Arc::new(Limiter::new());
        let lim = limits(Some(100), None);
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let l = Arc::clone(&l);
                let lim = lim.clone();
                std::thread::spawn(move || {
                    (0..100)
                        .filter(|_| matches!(l.admit("k", &lim), Decision::Allowed { .. }))
                        .count()
                })
            })
            .collect();
        let admitted: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
        assert_eq!(admitted, 100);
    }
}
