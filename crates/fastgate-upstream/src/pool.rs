//! Credential pools: which of an upstream's provider keys serves the next request.
//!
//! A pool holds one member per credential with the state selection needs, kept in
//! atomics so the request path picks with no lock and no database wait: whether
//! the member is usable (active), how many requests it has in flight, and how
//! much of its quota is left. The strategy decides among the usable members.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};

use rand::Rng;

/// How a pool chooses among its usable credentials (`strategy:` of an upstream).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, serde::Deserialize, serde::Serialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// Each usable credential in turn, weights ignored.
    RoundRobin,
    /// A random usable credential, in proportion to its weight.
    Random,
    /// In turn, each credential as often as its weight, spread out (smooth
    /// weighted round robin): weights 3 and 1 give A A B A, not A A A B.
    #[default]
    Weighted,
    /// The usable credential with the most quota left.
    MostQuotaLeft,
    /// The usable credential with the fewest requests in flight.
    LeastInFlight,
}

impl From<fastgate_config::CredentialStrategy> for Strategy {
    fn from(s: fastgate_config::CredentialStrategy) -> Self {
        match s {
            fastgate_config::CredentialStrategy::RoundRobin => Self::RoundRobin,
            fastgate_config::CredentialStrategy::Random => Self::Random,
            fastgate_config::CredentialStrategy::Weighted => Self::Weighted,
            fastgate_config::CredentialStrategy::MostQuotaLeft => Self::MostQuotaLeft,
            fastgate_config::CredentialStrategy::LeastInFlight => Self::LeastInFlight,
        }
    }
}

/// Quota left of a member without a quota.
pub const UNLIMITED: u64 = u64::MAX;

/// Longest weighted sequence kept; larger weight sums are scaled down to it.
const MAX_SEQUENCE: u64 = 4096;

struct Member {
    weight: u32,
    usable: AtomicBool,
    in_flight: AtomicU32,
    quota_left: AtomicU64,
}

/// The credentials of one upstream, by index (the order they were given in).
pub struct Pool {
    strategy: Strategy,
    members: Vec<Member>,
    /// `Weighted`: member indexes in smooth weighted round-robin order.
    sequence: Vec<u32>,
    cursor: AtomicUsize,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("strategy", &self.strategy)
            .field("members", &self.members.len())
            .finish_non_exhaustive()
    }
}

/// A request counted in flight on a member until dropped.
#[derive(Debug)]
pub struct InFlight<'a> {
    counter: &'a AtomicU32,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.counter.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Pool {
    /// A pool of `weights.len()` members, all usable, no quota, none in flight.
    /// A weight of 0 counts as 1.
    pub fn new(strategy: Strategy, weights: &[u32]) -> Self {
        let members: Vec<Member> = weights
            .iter()
            .map(|&w| Member {
                weight: w.max(1),
                usable: AtomicBool::new(true),
                in_flight: AtomicU32::new(0),
                quota_left: AtomicU64::new(UNLIMITED),
            })
            .collect();
        let sequence = if strategy == Strategy::Weighted {
            smooth_sequence(&members.iter().map(|m| m.weight).collect::<Vec<_>>())
        } else {
            Vec::new()
        };
        Self {
            strategy,
            members,
            sequence,
            cursor: AtomicUsize::new(0),
        }
    }

    pub fn strategy(&self) -> Strategy {
        self.strategy
    }

    pub fn len(&self) -> usize {
        self.members.len()
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Take member `i` in or out of rotation.
    pub fn set_usable(&self, i: usize, usable: bool) {
        if let Some(m) = self.members.get(i) {
            m.usable.store(usable, Ordering::Relaxed);
        }
    }

    pub fn is_usable(&self, i: usize) -> bool {
        self.members
            .get(i)
            .is_some_and(|m| m.usable.load(Ordering::Relaxed))
    }

    /// Record how much quota member `i` has left ([`UNLIMITED`] for none).
    pub fn set_quota_left(&self, i: usize, left: u64) {
        if let Some(m) = self.members.get(i) {
            m.quota_left.store(left, Ordering::Relaxed);
        }
    }

    /// Count a request in flight on member `i` until the guard is dropped.
    pub fn begin(&self, i: usize) -> Option<InFlight<'_>> {
        let m = self.members.get(i)?;
        m.in_flight.fetch_add(1, Ordering::Relaxed);
        Some(InFlight {
            counter: &m.in_flight,
        })
    }

    pub fn in_flight(&self, i: usize) -> u32 {
        self.members
            .get(i)
            .map_or(0, |m| m.in_flight.load(Ordering::Relaxed))
    }

    /// The member to use next, or `None` when no member is usable.
    pub fn pick(&self) -> Option<usize> {
        let n = self.members.len();
        if n == 0 {
            return None;
        }
        match self.strategy {
            Strategy::RoundRobin => self.next_in_turn(n, |k| k % n),
            Strategy::Weighted => {
                let len = self.sequence.len();
                self.next_in_turn(len, |k| self.sequence[k % len] as usize)
            }
            Strategy::Random => self.random(),
            Strategy::LeastInFlight => {
                self.best(|m| std::cmp::Reverse(m.in_flight.load(Ordering::Relaxed)))
            }
            Strategy::MostQuotaLeft => self.best(|m| m.quota_left.load(Ordering::Relaxed)),
        }
    }

    /// The member [`Self::pick`] would return next, without moving the rotation
    /// (what a dry run reports). For `Random` it is one possible pick.
    pub fn peek(&self) -> Option<usize> {
        let n = self.members.len();
        if n == 0 {
            return None;
        }
        let start = self.cursor.load(Ordering::Relaxed);
        let first_usable = |len: usize, member_at: &dyn Fn(usize) -> usize| {
            (0..len)
                .map(|step| member_at(start.wrapping_add(step)))
                .find(|&i| self.is_usable(i))
        };
        match self.strategy {
            Strategy::Weighted => {
                let len = self.sequence.len();
                first_usable(len, &|k| self.sequence[k % len] as usize)
            }
            _ => first_usable(n, &|k| k % n),
        }
    }

    /// Walk a cyclic order of `len` slots from the shared cursor to the first
    /// usable member; one full turn without one means none is usable.
    fn next_in_turn(&self, len: usize, member_at: impl Fn(usize) -> usize) -> Option<usize> {
        let start = self.cursor.fetch_add(1, Ordering::Relaxed);
        (0..len)
            .map(|step| member_at(start.wrapping_add(step)))
            .find(|&i| self.is_usable(i))
    }

    fn random(&self) -> Option<usize> {
        let usable = || {
            self.members
                .iter()
                .enumerate()
                .filter(|(_, m)| m.usable.load(Ordering::Relaxed))
        };
        let total: u64 = usable().map(|(_, m)| u64::from(m.weight)).sum();
        if total == 0 {
            return None;
        }
        let mut ticket = rand::rng().random_range(0..total);
        for (i, m) in usable() {
            let w = u64::from(m.weight);
            if ticket < w {
                return Some(i);
            }
            ticket -= w;
        }
        // A member left rotation between the two passes: take any usable one.
        usable().map(|(i, _)| i).next()
    }

    /// The usable member with the highest `score`; ties go round in turn, so equal
    /// members share the load.
    fn best<K: Ord>(&self, score: impl Fn(&Member) -> K) -> Option<usize> {
        let n = self.members.len();
        let start = self.cursor.fetch_add(1, Ordering::Relaxed);
        let mut best: Option<(usize, K)> = None;
        for step in 0..n {
            let i = start.wrapping_add(step) % n;
            let m = &self.members[i];
            if !m.usable.load(Ordering::Relaxed) {
                continue;
            }
            let s = score(m);
            if best.as_ref().is_none_or(|(_, b)| s > *b) {
                best = Some((i, s));
            }
        }
        best.map(|(i, _)| i)
    }
}

/// Smooth weighted round robin (as nginx spreads upstream weights), run once at
/// build time for one full cycle: each member appears `weight` times, spread out.
fn smooth_sequence(weights: &[u32]) -> Vec<u32> {
    let sum: u64 = weights.iter().map(|&w| u64::from(w)).sum();
    // Very large weights keep their proportions in a bounded sequence.
    let scaled: Vec<i64> = weights
        .iter()
        .map(|&w| {
            let w = u64::from(w);
            let w = if sum > MAX_SEQUENCE {
                (w * MAX_SEQUENCE / sum).max(1)
            } else {
                w
            };
            i64::try_from(w).unwrap_or(1)
        })
        .collect();
    let total: i64 = scaled.iter().sum();
    let mut current = vec![0i64; scaled.len()];
    let mut out = Vec::with_capacity(usize::try_from(total).unwrap_or(0));
    for _ in 0..total {
        for (c, w) in current.iter_mut().zip(&scaled) {
            *c += w;
        }
        let Some((i, _)) = current
            .iter()
            .enumerate()
            .max_by_key(|&(i, c)| (*c, std::cmp::Reverse(i)))
        else {
            break;
        };
        current[i] -= total;
        out.push(u32::try_from(i).unwrap_or(0));
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    fn counts(pool: &Pool, picks: usize) -> Vec<usize> {
        let mut c = vec![0; pool.len()];
        for _ in 0..picks {
            c[pool.pick().expect("a usable member")] += 1;
        }
        c
    }

    #[test]
    fn round_robin_is_even_and_ignores_weights() {
        let pool = Pool::new(Strategy::RoundRobin, &[5, 1, 1]);
        let c = counts(&pool, 1000);
        assert!(c.iter().all(|&n| (333..=334).contains(&n)), "{c:?}");
    }

    #[test]
    fn weighted_follows_weights_exactly_and_spreads_them() {
        let pool = Pool::new(Strategy::Weighted, &[3, 1]);
        assert_eq!(counts(&pool, 1000), vec![750, 250]);
        let pool = Pool::new(Strategy::Weighted, &[3, 1]);
        let order: Vec<usize> = (0..4).map(|_| pool.pick().unwrap()).collect();
        assert_eq!(order, vec![0, 0, 1, 0], "spread, not A A A B");
        let pool = Pool::new(Strategy::Weighted, &[5, 3, 2]);
        assert_eq!(counts(&pool, 1000), vec![500, 300, 200]);
    }

    #[test]
    fn weighted_scales_huge_weights() {
        let pool = Pool::new(Strategy::Weighted, &[u32::MAX, u32::MAX / 3]);
        assert!(pool.sequence.len() <= MAX_SEQUENCE as usize + 2);
        let c = counts(&pool, 4000);
        assert!((2950..=3050).contains(&c[0]), "{c:?}");
    }

    #[test]
    fn random_is_within_binomial_bounds() {
        // p = 0.75 over 1,000 picks: sd ~13.7; 5 sd either side.
        let pool = Pool::new(Strategy::Random, &[3, 1]);
        let c = counts(&pool, 1000);
        assert!((680..=820).contains(&c[0]), "{c:?}");
        assert_eq!(c[0] + c[1], 1000);
    }

    #[test]
    fn every_strategy_skips_unusable_members() {
        for strategy in [
            Strategy::RoundRobin,
            Strategy::Random,
            Strategy::Weighted,
            Strategy::MostQuotaLeft,
            Strategy::LeastInFlight,
        ] {
            let pool = Pool::new(strategy, &[1, 4, 1]);
            pool.set_usable(1, false);
            let c = counts(&pool, 300);
            assert_eq!(c[1], 0, "{strategy:?}: {c:?}");
            assert!(c[0] > 0 && c[2] > 0, "{strategy:?} uses the rest: {c:?}");
            pool.set_usable(0, false);
            pool.set_usable(2, false);
            assert_eq!(pool.pick(), None, "{strategy:?}: none usable");
            pool.set_usable(1, true);
            assert_eq!(pool.pick(), Some(1), "{strategy:?}: back in rotation");
        }
        assert_eq!(Pool::new(Strategy::Weighted, &[]).pick(), None);
    }

    #[test]
    fn peek_names_the_next_pick_without_moving() {
        for strategy in [Strategy::RoundRobin, Strategy::Weighted] {
            let pool = Pool::new(strategy, &[2, 1, 1]);
            pool.set_usable(0, false);
            for _ in 0..5 {
                let next = pool.peek();
                assert_eq!(pool.peek(), next, "{strategy:?}: peek moved the rotation");
                assert_eq!(pool.pick(), next, "{strategy:?}");
            }
        }
    }

    #[test]
    fn least_in_flight_prefers_the_idle_member() {
        let pool = Pool::new(Strategy::LeastInFlight, &[1, 1, 1]);
        let a = pool.begin(0).unwrap();
        let _b = pool.begin(1).unwrap();
        let _b2 = pool.begin(1).unwrap();
        assert_eq!(counts(&pool, 10), vec![0, 0, 10]);
        let _c = pool.begin(2).unwrap();
        let _c2 = pool.begin(2).unwrap();
        assert_eq!(pool.pick(), Some(0));
        drop(a);
        assert_eq!(pool.in_flight(0), 0);
        // Equal load is shared in turn.
        let pool = Pool::new(Strategy::LeastInFlight, &[1, 1]);
        assert_eq!(counts(&pool, 1000), vec![500, 500]);
    }

    #[test]
    fn most_quota_left_prefers_the_fullest_member() {
        let pool = Pool::new(Strategy::MostQuotaLeft, &[1, 1, 1]);
        pool.set_quota_left(0, 10);
        pool.set_quota_left(1, 500);
        pool.set_quota_left(2, 20);
        assert_eq!(counts(&pool, 10), vec![0, 10, 0]);
        pool.set_quota_left(1, 5);
        assert_eq!(pool.pick(), Some(2));
        // No quota counts as the most left.
        pool.set_quota_left(0, UNLIMITED);
        assert_eq!(pool.pick(), Some(0));
    }

    #[test]
    fn strategies_parse_from_config_names() {
        for (name, s) in [
            ("round_robin", Strategy::RoundRobin),
            ("random", Strategy::Random),
            ("weighted", Strategy::Weighted),
            ("most_quota_left", Strategy::MostQuotaLeft),
            ("least_in_flight", Strategy::LeastInFlight),
        ] {
            let parsed: Strategy = serde_json::from_value(serde_json::json!(name)).unwrap();
            assert_eq!(parsed, s);
        }
        assert!(serde_json::from_value::<Strategy>(serde_json::json!("fastest")).is_err());
        assert_eq!(Strategy::default(), Strategy::Weighted);
    }
}
