//! Credential pools: which of an upstream's provider keys serves the next request.
//!
//! A pool holds one member per credential with the state selection needs, kept in
//! atomics so the request path picks with no lock and no database wait: whether
//! the member is usable (active), how many requests it has in flight, and how
//! much of its quota is left. The strategy decides among the usable members.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use rand::Rng;

use crate::health::{CircuitSettings, CredentialHealth, CredentialState, InFlight};

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

/// Longest weighted sequence kept; larger weight sums are scaled down to it.
const MAX_SEQUENCE: u64 = 4096;

struct Member {
    weight: u32,
    health: Arc<CredentialHealth>,
}

/// The credentials of one upstream, by index (the order they were given in).
/// Each member's health lives in the [`crate::health::HealthRegistry`] and
/// outlives the pool: a reload builds a new pool over the same health.
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

/// What a pick needs to know besides the pool: the time, the quota day and
/// the circuit settings (read once per request from the registry).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PickContext {
    pub now_ms: i64,
    pub day: i64,
    pub circuit: CircuitSettings,
}

impl PickContext {
    /// Now, on quota day 0, with the default circuit (tests and tools).
    pub fn now() -> Self {
        Self {
            now_ms: chrono::Utc::now().timestamp_millis(),
            day: 0,
            circuit: CircuitSettings::default(),
        }
    }
}

impl Pool {
    /// A pool of `weights.len()` members with fresh health (all active, no
    /// quota). A weight of 0 counts as 1.
    pub fn new(strategy: Strategy, weights: &[u32]) -> Self {
        let members = weights
            .iter()
            .enumerate()
            .map(|(i, &w)| (w, Arc::new(CredentialHealth::new("", &format!("#{i}")))))
            .collect();
        Self::with_health(strategy, members)
    }

    /// A pool over credentials whose health the registry keeps.
    pub fn with_health(strategy: Strategy, members: Vec<(u32, Arc<CredentialHealth>)>) -> Self {
        let members: Vec<Member> = members
            .into_iter()
            .map(|(w, health)| Member {
                weight: w.max(1),
                health,
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

    pub fn health(&self, i: usize) -> Option<&Arc<CredentialHealth>> {
        self.members.get(i).map(|m| &m.health)
    }

    /// Take member `i` in or out of rotation by hand (tests and tools; the
    /// registry changes states with a reason).
    pub fn set_usable(&self, i: usize, usable: bool) {
        if let Some(m) = self.members.get(i) {
            let state = if usable {
                CredentialState::Active
            } else {
                CredentialState::Disabled
            };
            m.health.set_state(state, "set by hand", None, "pool", 0);
        }
    }

    pub fn is_usable(&self, i: usize, cx: &PickContext) -> bool {
        self.members
            .get(i)
            .is_some_and(|m| m.health.is_usable(cx.now_ms, cx.day, &cx.circuit))
    }

    /// Is some member usable that is not in `skip`?
    pub fn any_usable(&self, cx: &PickContext, skip: &[usize]) -> bool {
        (0..self.members.len()).any(|i| !skip.contains(&i) && self.is_usable(i, cx))
    }

    /// Count a request in flight on member `i` until the guard is dropped.
    pub fn begin(&self, i: usize) -> Option<InFlight> {
        self.members.get(i).map(|m| m.health.begin())
    }

    pub fn in_flight(&self, i: usize) -> u32 {
        self.members.get(i).map_or(0, |m| m.health.in_flight())
    }

    /// The member to use next, now, skipping none (tests and tools).
    pub fn pick(&self) -> Option<usize> {
        self.pick_skipping(&PickContext::now(), &[])
    }

    /// The member to use next, not one of `skip` (those a request already
    /// tried), or `None` when no other member is usable. The chosen member is
    /// claimed: its daily quota counts the request and a half-open circuit
    /// gives it its one trial; when another request took the last of it, the
    /// next member is chosen.
    pub fn pick_skipping(&self, cx: &PickContext, skip: &[usize]) -> Option<usize> {
        let mut taken: Vec<usize> = Vec::new();
        loop {
            let allowed =
                |i: usize| !skip.contains(&i) && !taken.contains(&i) && self.is_usable(i, cx);
            let i = self.choose(cx, &allowed)?;
            if self.members[i].health.claim(cx.now_ms, cx.day, &cx.circuit) {
                return Some(i);
            }
            taken.push(i);
        }
    }

    fn choose(&self, cx: &PickContext, allowed: &dyn Fn(usize) -> bool) -> Option<usize> {
        let n = self.members.len();
        if n == 0 {
            return None;
        }
        match self.strategy {
            Strategy::RoundRobin => self.next_in_turn(n, |k| k % n, allowed),
            Strategy::Weighted => {
                let len = self.sequence.len();
                self.next_in_turn(len, |k| self.sequence[k % len] as usize, allowed)
            }
            Strategy::Random => self.random(allowed),
            Strategy::LeastInFlight => {
                let start = self.cursor.fetch_add(1, Ordering::Relaxed);
                self.best_from(start, allowed, |m| std::cmp::Reverse(m.health.in_flight()))
            }
            Strategy::MostQuotaLeft => {
                let start = self.cursor.fetch_add(1, Ordering::Relaxed);
                self.best_from(start, allowed, |m| m.health.quota_score(cx.day))
            }
        }
    }

    /// The member [`Self::pick`] would return next, without moving the rotation
    /// or claiming anything (what a dry run reports). For `Random` it is one
    /// possible pick.
    pub fn peek(&self, cx: &PickContext) -> Option<usize> {
        let n = self.members.len();
        if n == 0 {
            return None;
        }
        let start = self.cursor.load(Ordering::Relaxed);
        let allowed = |i: usize| self.is_usable(i, cx);
        let first_allowed = |len: usize, member_at: &dyn Fn(usize) -> usize| {
            (0..len)
                .map(|step| member_at(start.wrapping_add(step)))
                .find(|&i| allowed(i))
        };
        match self.strategy {
            Strategy::Weighted => {
                let len = self.sequence.len();
                first_allowed(len, &|k| self.sequence[k % len] as usize)
            }
            Strategy::LeastInFlight => {
                self.best_from(start, &allowed, |m| std::cmp::Reverse(m.health.in_flight()))
            }
            Strategy::MostQuotaLeft => {
                self.best_from(start, &allowed, |m| m.health.quota_score(cx.day))
            }
            Strategy::RoundRobin | Strategy::Random => first_allowed(n, &|k| k % n),
        }
    }

    /// Walk a cyclic order of `len` slots from the shared cursor to the first
    /// allowed member; one full turn without one means none is.
    fn next_in_turn(
        &self,
        len: usize,
        member_at: impl Fn(usize) -> usize,
        allowed: &dyn Fn(usize) -> bool,
    ) -> Option<usize> {
        let start = self.cursor.fetch_add(1, Ordering::Relaxed);
        (0..len)
            .map(|step| member_at(start.wrapping_add(step)))
            .find(|&i| allowed(i))
    }

    fn random(&self, allowed: &dyn Fn(usize) -> bool) -> Option<usize> {
        let mut total = 0u64;
        for (i, m) in self.members.iter().enumerate() {
            if allowed(i) {
                total += u64::from(m.weight);
            }
        }
        if total == 0 {
            return None;
        }
        let mut ticket = rand::rng().random_range(0..total);
        let mut last = None;
        for (i, m) in self.members.iter().enumerate() {
            if !allowed(i) {
                continue;
            }
            let w = u64::from(m.weight);
            if ticket < w {
                return Some(i);
            }
            ticket -= w;
            last = Some(i);
        }
        // A member left rotation between the two passes: take one still allowed.
        last
    }

    /// The allowed member with the highest `score`, looking from `start`; ties
    /// go round in turn, so equal members share the load.
    fn best_from<K: Ord>(
        &self,
        start: usize,
        allowed: &dyn Fn(usize) -> bool,
        score: impl Fn(&Member) -> K,
    ) -> Option<usize> {
        let n = self.members.len();
        let mut best: Option<(usize, K)> = None;
        for step in 0..n {
            let i = start.wrapping_add(step) % n;
            if !allowed(i) {
                continue;
            }
            let s = score(&self.members[i]);
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
                let next = pool.peek(&PickContext::now());
                assert_eq!(
                    pool.peek(&PickContext::now()),
                    next,
                    "{strategy:?}: peek moved the rotation"
                );
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
        let quota = |n| fastgate_config::CredentialQuota {
            requests_per_day: Some(n),
            tokens_per_day: None,
        };
        let cx = PickContext::now();
        pool.health(0).unwrap().set_quota(&quota(10));
        pool.health(1).unwrap().set_quota(&quota(10));
        pool.health(2).unwrap().set_quota(&quota(10));
        // Use 6 of member 0's and 3 of member 2's requests.
        for _ in 0..6 {
            assert!(
                pool.health(0)
                    .unwrap()
                    .claim(cx.now_ms, cx.day, &cx.circuit)
            );
        }
        for _ in 0..3 {
            assert!(
                pool.health(2)
                    .unwrap()
                    .claim(cx.now_ms, cx.day, &cx.circuit)
            );
        }
        // Member 1 (10 left) takes picks until it is level with member 2 (7),
        // then they share; member 0 (4 left) waits.
        let pick = || pool.pick_skipping(&cx, &[]).unwrap();
        let first: Vec<usize> = (0..3).map(|_| pick()).collect();
        assert_eq!(first, vec![1, 1, 1]);
        let mut next: Vec<usize> = (0..2).map(|_| pick()).collect();
        next.sort_unstable();
        assert_eq!(next, vec![1, 2], "level members share");
        // No quota counts as the most left.
        pool.health(0)
            .unwrap()
            .set_quota(&fastgate_config::CredentialQuota::default());
        assert_eq!(pool.pick_skipping(&cx, &[]), Some(0));
    }

    #[test]
    fn a_daily_quota_is_never_overdrawn() {
        let pool = Pool::new(Strategy::RoundRobin, &[1, 1]);
        let q = fastgate_config::CredentialQuota {
            requests_per_day: Some(3),
            tokens_per_day: None,
        };
        pool.health(0).unwrap().set_quota(&q);
        pool.health(1).unwrap().set_quota(&q);
        let cx = PickContext::now();
        let c =
            (0..10)
                .filter_map(|_| pool.pick_skipping(&cx, &[]))
                .fold(vec![0, 0], |mut c, i| {
                    c[i] += 1;
                    c
                });
        assert_eq!(c, vec![3, 3]);
        // The next quota day starts from zero.
        let tomorrow = PickContext {
            day: cx.day + 1,
            ..cx
        };
        assert!(pool.pick_skipping(&tomorrow, &[]).is_some());
    }

    #[test]
    fn skipped_members_are_not_picked() {
        let pool = Pool::new(Strategy::Weighted, &[1, 1, 1]);
        let cx = PickContext::now();
        for _ in 0..10 {
            assert_eq!(pool.pick_skipping(&cx, &[0, 2]), Some(1));
        }
        assert_eq!(pool.pick_skipping(&cx, &[0, 1, 2]), None);
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
