//! The per-instance backend: counters and reservations in this process (exact
//! for one instance). Each scope and each key quota has its own small mutex in a
//! sharded map; an admission locks the states it involves, in one fixed order,
//! checks them all and counts only if all pass. No global lock, nothing awaited.

mod admit;
mod settle;
mod state;

#[cfg(test)]
mod test_support;
#[cfg(test)]
mod tests_quota;
#[cfg(test)]
mod tests_rate;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use dashmap::DashMap;
use foldhash::fast::RandomState;
use smallvec::SmallVec;

use crate::backend::{AdmitResult, BackendError, LimitBackend};
use crate::clock::{Clock, SystemClock};
use crate::types::{
    AdmitError, AdmitRequest, Admitted, KeyUsageView, LimitKind, PeriodUsage, QuotaCheck, Refusal,
    Reservation, ReservedView, Scope, ScopeKind, Totals, UsedView, WindowView,
};
use crate::usd_to_nanos_ceil;

use admit::{QuotaHold, ScopeHold, Windows};
use settle::MemorySettle;
use state::{Counts, DAY_MS, MINUTE_MS, QuotaState, ScopeState, lock};

type Shared<T> = Arc<Mutex<T>>;

pub struct MemoryBackend {
    clock: Arc<dyn Clock>,
    scopes: DashMap<(ScopeKind, Arc<str>), Shared<ScopeState>, RandomState>,
    quotas: DashMap<Arc<str>, Shared<QuotaState>, RandomState>,
}

impl Default for MemoryBackend {
    fn default() -> Self {
        Self::new(Arc::new(SystemClock))
    }
}

/// What the locked part of an admission produced (the `Arc`s stay outside,
/// since the guards borrow them).
struct Counted {
    windows: Windows,
    scopes: ScopeList<ScopeHold>,
    quota: Option<QuotaHold>,
}

/// A request's scopes (a key, a route, a credential, rarely more) and what goes with
/// them, kept inline: the admission made seven allocations a request with `Vec`s.
pub(super) type ScopeList<T> = SmallVec<[T; 4]>;

impl MemoryBackend {
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Self {
            clock,
            scopes: DashMap::with_hasher(RandomState::default()),
            quotas: DashMap::with_hasher(RandomState::default()),
        }
    }

    /// Forgets the state of scopes (and, with [`ScopeKind::Key`], key quotas)
    /// for which `keep` is false: keys, routes and model groups that no longer
    /// exist. Reservations still held keep their own `Arc`s and settle into the
    /// forgotten state; a state created afresh later is never touched by them.
    pub fn retain(&self, keep: impl Fn(ScopeKind, &str) -> bool) {
        self.scopes.retain(|(kind, id), _| keep(*kind, id));
        self.quotas.retain(|id, _| keep(ScopeKind::Key, id));
    }

    fn scope_state(&self, scope: &Scope) -> Shared<ScopeState> {
        let key = (scope.kind, Arc::clone(&scope.id));
        // A read first: the common case must not take a shard's write lock.
        if let Some(s) = self.scopes.get(&key) {
            return Arc::clone(s.value());
        }
        Arc::clone(self.scopes.entry(key).or_default().value())
    }

    fn quota_state(&self, key_id: &str) -> Shared<QuotaState> {
        if let Some(s) = self.quotas.get(key_id) {
            return Arc::clone(s.value());
        }
        Arc::clone(self.quotas.entry(Arc::from(key_id)).or_default().value())
    }

    /// [`LimitBackend::admit`] without the future: everything is synchronous.
    pub fn admit_now(&self, req: &AdmitRequest) -> AdmitResult {
        let quota = req.quota.as_ref().filter(|q| !q.is_unlimited());
        let mut scopes: ScopeList<&Scope> = req
            .scopes
            .iter()
            .filter(|s| !s.limits.is_unlimited())
            .collect();
        if scopes.is_empty() && quota.is_none() {
            return Ok(Admitted::unlimited());
        }
        // One order for every admission (quota last), so two admissions never
        // wait for each other's locks in a cycle; a scope listed twice (against
        // the contract) is locked once instead of deadlocking.
        scopes.sort_by(|a, b| (a.kind, &*a.id).cmp(&(b.kind, &*b.id)));
        scopes.dedup_by(|a, b| a.kind == b.kind && a.id == b.id);
        let states: ScopeList<_> = scopes.iter().map(|s| self.scope_state(s)).collect();
        let quota_state = quota.map(|q| self.quota_state(&q.key_id));

        let counted =
            self.check_and_count(req, &scopes, &states, quota.zip(quota_state.as_ref()))?;

        let held_scopes: ScopeList<_> = states
            .into_iter()
            .zip(counted.scopes)
            .filter(|(_, hold)| hold.needs_settling())
            .collect();
        let held_quota = quota_state.zip(counted.quota);
        let reservation = if held_scopes.is_empty() && held_quota.is_none() {
            Reservation::none()
        } else {
            Reservation::new(Box::new(MemorySettle {
                scopes: held_scopes,
                quota: held_quota,
            }))
        };
        Ok(Admitted {
            requests: counted.windows.requests,
            tokens: counted.windows.tokens,
            reservation,
        })
    }

    /// Would a request with no token demand be refused now? Counts nothing and
    /// locks one state at a time: an early answer that saves reading the body
    /// of a request that cannot pass (the admission itself decides).
    pub fn peek_now(&self, scopes: &[Scope], quota: Option<&QuotaCheck>) -> Result<(), Refusal> {
        let now = self.clock.now_ms();
        for scope in scopes.iter().filter(|s| !s.limits.is_unlimited()) {
            let key = (scope.kind, Arc::clone(&scope.id));
            let Some(state) = self.scopes.get(&key).map(|s| Arc::clone(s.value())) else {
                continue;
            };
            admit::check_scope(scope, &lock(&state), 0, now)?;
        }
        if let Some(q) = quota.filter(|q| !q.is_unlimited())
            && let Some(state) = self.quotas.get(&*q.key_id).map(|s| Arc::clone(s.value()))
        {
            let st = lock(&state);
            if st.is_on(&q.period.id) {
                admit::check_quota(q, &st, &crate::types::Demand::default(), 0, now)?;
            }
        }
        Ok(())
    }

    /// Locks every state (in the order given), checks everything, then counts.
    fn check_and_count(
        &self,
        req: &AdmitRequest,
        scopes: &[&Scope],
        states: &[Shared<ScopeState>],
        quota: Option<(&QuotaCheck, &Shared<QuotaState>)>,
    ) -> Result<Counted, AdmitError> {
        let mut guards: ScopeList<_> = states.iter().map(|s| lock(s)).collect();
        let mut quota = quota.map(|(q, s)| (q, lock(s)));
        // Read with every lock held: admissions of one scope see times in the
        // order they count, so a window never starts after a later `now`.
        let now = self.clock.now_ms();
        let demand = &req.demand;
        let demand_nanos = usd_to_nanos_ceil(demand.cost);

        for (scope, st) in scopes.iter().zip(&guards) {
            admit::check_scope(scope, st, demand.tokens, now).map_err(AdmitError::Limited)?;
        }
        if let Some((q, st)) = quota.as_mut() {
            st.enter(&q.period.id);
            admit::check_quota(q, st, demand, demand_nanos, now).map_err(AdmitError::Limited)?;
        }

        let mut windows = Windows::default();
        let holds = scopes
            .iter()
            .zip(guards.iter_mut())
            .map(|(scope, st)| admit::apply_scope(scope, st, demand.tokens, now, &mut windows))
            .collect();
        let quota_hold = quota
            .as_mut()
            .map(|(q, st)| admit::apply_quota(q, st, demand, demand_nanos));
        Ok(Counted {
            windows,
            scopes: holds,
            quota: quota_hold,
        })
    }

    /// [`LimitBackend::usage`] without the future.
    pub fn usage_now(&self, key_scope: Option<&Scope>, quota: Option<&QuotaCheck>) -> KeyUsageView {
        let now = self.clock.now_ms();
        let mut used = UsedView::default();
        let mut reserved = ReservedView::default();
        if let Some(q) = quota
            && let Some(state) = self.quotas.get(&*q.key_id).map(|s| Arc::clone(s.value()))
        {
            let st = lock(&state);
            // A state still on an earlier period has nothing in this one yet.
            if st.is_on(&q.period.id) {
                let u = st.used();
                used = UsedView {
                    requests: u.requests,
                    tokens: u.tokens,
                    cost: u.cost_usd(),
                };
                reserved = ReservedView {
                    tokens: st.reserved_tokens,
                    cost: crate::nanos_to_usd(st.reserved_nanos),
                    in_flight: st.in_flight,
                };
            }
        }
        KeyUsageView {
            backend: "memory",
            period: quota.map(|q| q.period.clone()),
            used,
            reserved,
            windows: key_scope.map_or_else(Vec::new, |s| self.window_views(s, now)),
        }
    }

    fn window_views(&self, scope: &Scope, now: i64) -> Vec<WindowView> {
        let key = (scope.kind, Arc::clone(&scope.id));
        let state = self.scopes.get(&key).map(|s| Arc::clone(s.value()));
        let st = state.as_ref().map(|s| lock(s));
        let st = st.as_deref();
        let secs = |ms: Option<u64>| ms.map_or(0, |ms| ms.div_ceil(1000));
        let l = &scope.limits;
        let mut out = Vec::new();
        let mut push = |kind: LimitKind, limit: Option<u64>, used: u64, resets: u64| {
            if let Some(limit) = limit {
                out.push(WindowView {
                    limit_kind: kind.as_str(),
                    limit,
                    used,
                    resets_in_secs: resets,
                });
            }
        };
        let minute = st.map(|s| s.minute).unwrap_or_default();
        let day = st.map(|s| s.day).unwrap_or_default();
        let minute_reset = secs(minute.reset_ms(now, MINUTE_MS));
        push(
            LimitKind::RequestsPerMinute,
            l.requests_per_minute.map(u64::from),
            minute.requests_at(now, MINUTE_MS),
            minute_reset,
        );
        push(
            LimitKind::RequestsPerDay,
            l.requests_per_day.map(u64::from),
            day.requests_at(now, DAY_MS),
            secs(day.reset_ms(now, DAY_MS)),
        );
        push(
            LimitKind::TokensPerMinute,
            l.tokens_per_minute,
            minute.tokens_at(now, MINUTE_MS),
            minute_reset,
        );
        // Concurrency has no window: in flight now, never "resets".
        push(
            LimitKind::Concurrency,
            l.max_concurrent.map(u64::from),
            st.map_or(0, |s| s.in_flight),
            0,
        );
        out
    }

    /// [`LimitBackend::apply_totals`].
    ///
    /// Why `base + local` stays exact: `flushed` is what this instance counted
    /// (and so added to `local`) and the ledger then handed to the store; the
    /// store's `totals` were read after `flushed` was added to them. Taking the
    /// totals as `base` therefore counts `flushed` a second time unless it
    /// leaves `local` at once — which is what the subtraction does. What was
    /// counted here after the ledger was drained is in `local` but in neither
    /// `flushed` nor `totals`, and stays in `local`. (Rounding cost to nanos per
    /// request here and per flush in the ledger may differ by a few nano-USD;
    /// the subtraction saturates at zero.)
    fn apply_totals_now(&self, totals: &[PeriodUsage], flushed: &[PeriodUsage]) {
        let flushed: HashMap<(&str, &str), &Totals> = flushed
            .iter()
            .map(|f| ((f.key_id.as_str(), f.period.as_str()), &f.totals))
            .collect();
        // A state that has counted nothing yet takes the latest period the store
        // has for its key (ids of one kind sort in time order), so that a flush
        // straddling midnight does not leave it on yesterday.
        let mut latest: HashMap<&str, &str> = HashMap::new();
        for t in totals {
            let e = latest.entry(t.key_id.as_str()).or_insert(t.period.as_str());
            if t.period.as_str() > *e {
                *e = t.period.as_str();
            }
        }
        for t in totals {
            let state = self.quota_state(&t.key_id);
            let mut st = lock(&state);
            if st.period.is_none() {
                let period = latest.get(t.key_id.as_str()).copied().unwrap_or(&t.period);
                st.enter(period);
            }
            // Totals of another period than the one counted here say nothing
            // about it: the current period's own entry (if any) does.
            if !st.is_on(&t.period) {
                continue;
            }
            st.base = Counts::from_totals(&t.totals);
            if let Some(f) = flushed.get(&(t.key_id.as_str(), t.period.as_str())) {
                st.local = st.local.minus(Counts::from_totals(f));
            }
        }
    }
}

impl LimitBackend for MemoryBackend {
    async fn admit(&self, req: &AdmitRequest) -> Result<AdmitResult, BackendError> {
        Ok(self.admit_now(req))
    }

    async fn usage(
        &self,
        key_scope: Option<&Scope>,
        quota: Option<&QuotaCheck>,
    ) -> Result<KeyUsageView, BackendError> {
        Ok(self.usage_now(key_scope, quota))
    }

    fn apply_totals(&self, totals: &[PeriodUsage], flushed: &[PeriodUsage]) {
        self.apply_totals_now(totals, flushed);
    }
}
