//! The health of one provider credential: its state (shared with the fleet
//! through the database), its circuit, its daily quota and its counters.
//!
//! Everything the request path reads is an atomic; the details people read
//! (reason, last error) sit behind a mutex of this credential only, taken on
//! state changes, errors and admin reads.

use std::sync::atomic::{AtomicI64, AtomicU8, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use super::circuit::{Circuit, CircuitSettings, CircuitState};
use super::state::{CredentialState, Transition};

/// Quota left of a credential without a quota.
pub const UNLIMITED: u64 = u64::MAX;

#[derive(Debug, Default)]
struct Detail {
    reason: String,
    since_ms: i64,
    changed_by: String,
    last_error: Option<String>,
    last_error_at_ms: Option<i64>,
    /// Totals stored in the database by the fleet (at the last usage sync).
    stored_requests: u64,
    stored_errors: u64,
    stored_tokens: u64,
    stored_last_used_ms: Option<i64>,
}

/// Counters not yet written to the database.
#[derive(Debug, Default)]
struct Pending {
    requests: AtomicU64,
    errors: AtomicU64,
    tokens: AtomicU64,
    last_used_ms: AtomicI64,
    error_changed: std::sync::atomic::AtomicBool,
}

#[derive(Debug)]
pub struct CredentialHealth {
    upstream: Arc<str>,
    credential: Arc<str>,
    state: AtomicU8,
    /// When a timed state ends (0: it does not end by itself).
    until_ms: AtomicI64,
    in_flight: AtomicU32,
    requests_limit: AtomicU64,
    tokens_limit: AtomicU64,
    /// The quota day the day counters belong to.
    day: AtomicI64,
    day_requests: AtomicU64,
    day_tokens: AtomicU64,
    circuit: Circuit,
    pending: Pending,
    local_requests: AtomicU64,
    local_errors: AtomicU64,
    /// Which key the health is about (0: not known yet).
    key_id: AtomicU64,
    detail: Mutex<Detail>,
}

/// What the admin API shows of a credential (never the key).
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct CredentialStatus {
    pub state: CredentialState,
    pub reason: String,
    pub since: Option<chrono::DateTime<chrono::Utc>>,
    pub until: Option<chrono::DateTime<chrono::Utc>>,
    pub changed_by: String,
    pub circuit: CircuitState,
    pub circuit_open_until: Option<chrono::DateTime<chrono::Utc>>,
    pub in_flight: u32,
    pub requests: u64,
    pub errors: u64,
    pub tokens: u64,
    pub last_error: Option<String>,
    pub last_error_at: Option<chrono::DateTime<chrono::Utc>>,
    pub last_used_at: Option<chrono::DateTime<chrono::Utc>>,
    pub quota: Option<QuotaStatus>,
}

#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct QuotaStatus {
    pub requests_per_day: Option<u64>,
    pub tokens_per_day: Option<u64>,
    pub requests_today: u64,
    pub tokens_today: u64,
}

/// Counters to write to the database (see `Store::add_credential_usage`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageDelta {
    pub requests: u64,
    pub errors: u64,
    pub tokens: u64,
    pub last_error: Option<String>,
    pub last_error_at_ms: Option<i64>,
    pub last_used_at_ms: Option<i64>,
}

pub(crate) fn to_time(ms: i64) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::from_timestamp_millis(ms)
}

fn limit(v: Option<u64>) -> u64 {
    v.unwrap_or(UNLIMITED)
}

impl CredentialHealth {
    pub fn new(upstream: &str, credential: &str) -> Self {
        Self {
            upstream: Arc::from(upstream),
            credential: Arc::from(credential),
            state: AtomicU8::new(CredentialState::Active as u8),
            until_ms: AtomicI64::new(0),
            in_flight: AtomicU32::new(0),
            requests_limit: AtomicU64::new(UNLIMITED),
            tokens_limit: AtomicU64::new(UNLIMITED),
            day: AtomicI64::new(0),
            day_requests: AtomicU64::new(0),
            day_tokens: AtomicU64::new(0),
            circuit: Circuit::default(),
            pending: Pending::default(),
            local_requests: AtomicU64::new(0),
            local_errors: AtomicU64::new(0),
            key_id: AtomicU64::new(0),
            detail: Mutex::new(Detail::default()),
        }
    }

    pub fn upstream(&self) -> &Arc<str> {
        &self.upstream
    }

    pub fn credential(&self) -> &Arc<str> {
        &self.credential
    }

    fn detail(&self) -> std::sync::MutexGuard<'_, Detail> {
        self.detail.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn set_quota(&self, q: &fastgate_config::CredentialQuota) {
        self.requests_limit
            .store(limit(q.requests_per_day), Ordering::Relaxed);
        self.tokens_limit
            .store(limit(q.tokens_per_day), Ordering::Relaxed);
    }

    /// The stored state, as set (a timed state whose time passed still reads
    /// as set here; see [`Self::effective_state`]).
    pub fn stored_state(&self) -> CredentialState {
        CredentialState::from_u8(self.state.load(Ordering::Acquire))
    }

    /// The state now: a disabled or exhausted credential whose `until` passed is active.
    pub fn effective_state(&self, now_ms: i64) -> CredentialState {
        let s = self.stored_state();
        if s == CredentialState::Active || self.expired(now_ms) {
            CredentialState::Active
        } else {
            s
        }
    }

    fn expired(&self, now_ms: i64) -> bool {
        let until = self.until_ms.load(Ordering::Acquire);
        until != 0 && now_ms >= until
    }

    /// Record the key's id; true when it replaced another key's.
    pub(crate) fn replace_key_id(&self, id: u64) -> bool {
        let before = self.key_id.swap(id, Ordering::AcqRel);
        before != 0 && before != id
    }

    /// A new key: its circuit closed and its day counters at zero.
    pub(crate) fn start_over(&self) {
        self.circuit.on_success();
        self.day_requests.store(0, Ordering::Release);
        self.day_tokens.store(0, Ordering::Release);
    }

    /// Who set the current state (`rule:…`, `quota`, `scheduler`, `probe`, an admin).
    pub fn changed_by(&self) -> String {
        self.detail().changed_by.clone()
    }

    /// Requests and errors this instance counted since it started (metrics;
    /// the fleet's totals are in [`Self::status`]).
    pub fn local_counts(&self) -> (u64, u64) {
        (
            self.local_requests.load(Ordering::Relaxed),
            self.local_errors.load(Ordering::Relaxed),
        )
    }

    /// When the current state was set (0: never changed).
    pub fn since_ms(&self) -> i64 {
        self.detail().since_ms
    }

    /// When the credential returns by itself (`None`: active, or only by hand).
    pub fn until_ms(&self) -> Option<i64> {
        let u = self.until_ms.load(Ordering::Acquire);
        (u != 0).then_some(u)
    }

    /// When a request could next go out with this credential (`None`: never by itself).
    pub fn available_at_ms(&self, now_ms: i64) -> Option<i64> {
        if self.effective_state(now_ms) != CredentialState::Active {
            return self.until_ms();
        }
        Some(self.circuit.open_until_ms().unwrap_or(now_ms))
    }

    fn quota_left_on(&self, day: i64) -> (u64, u64) {
        let (rl, tl) = (
            self.requests_limit.load(Ordering::Relaxed),
            self.tokens_limit.load(Ordering::Relaxed),
        );
        if self.day.load(Ordering::Acquire) != day {
            return (rl, tl);
        }
        (
            rl.saturating_sub(self.day_requests.load(Ordering::Relaxed)),
            tl.saturating_sub(self.day_tokens.load(Ordering::Relaxed)),
        )
    }

    /// Share of the daily quota left, in millionths ([`UNLIMITED`] without a
    /// quota): what `most_quota_left` compares.
    pub fn quota_score(&self, day: i64) -> u64 {
        let (rl, tl) = (
            self.requests_limit.load(Ordering::Relaxed),
            self.tokens_limit.load(Ordering::Relaxed),
        );
        let (r_left, t_left) = self.quota_left_on(day);
        let share = |left: u64, lim: u64| {
            if lim == UNLIMITED {
                UNLIMITED
            } else {
                ((u128::from(left) * 1_000_000) / u128::from(lim.max(1))) as u64
            }
        };
        share(r_left, rl).min(share(t_left, tl))
    }

    /// May a request use this credential now? Pure: takes nothing.
    pub fn is_usable(&self, now_ms: i64, day: i64, circuit: &CircuitSettings) -> bool {
        if self.effective_state(now_ms) != CredentialState::Active {
            return false;
        }
        let (r, t) = self.quota_left_on(day);
        r > 0 && t > 0 && (!circuit.enabled || self.circuit.admits(now_ms, circuit))
    }

    /// Take this credential for one request: counts it against the daily quota
    /// (exactly: concurrent claims never pass the limit) and takes the circuit's
    /// trial when half-open. False: someone else took the last of it.
    pub fn claim(&self, now_ms: i64, day: i64, circuit: &CircuitSettings) -> bool {
        if !self.is_usable(now_ms, day, circuit) {
            return false;
        }
        self.roll_day(day);
        let lim = self.requests_limit.load(Ordering::Relaxed);
        if lim != UNLIMITED {
            let before = self.day_requests.fetch_add(1, Ordering::AcqRel);
            if before >= lim {
                self.day_requests.fetch_sub(1, Ordering::AcqRel);
                return false;
            }
        } else {
            self.day_requests.fetch_add(1, Ordering::Relaxed);
        }
        if circuit.enabled && !self.circuit.claim(now_ms, circuit) {
            self.day_requests.fetch_sub(1, Ordering::AcqRel);
            return false;
        }
        self.pending.requests.fetch_add(1, Ordering::Relaxed);
        self.local_requests.fetch_add(1, Ordering::Relaxed);
        self.pending.last_used_ms.store(now_ms, Ordering::Relaxed);
        true
    }

    /// A new quota day restarts the day counters (once, whoever sees it first).
    fn roll_day(&self, day: i64) {
        let seen = self.day.load(Ordering::Acquire);
        if seen != day
            && self
                .day
                .compare_exchange(seen, day, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        {
            self.day_requests.store(0, Ordering::Release);
            self.day_tokens.store(0, Ordering::Release);
        }
    }

    /// Does the credential have a daily quota at all?
    pub fn has_quota(&self) -> bool {
        self.requests_limit.load(Ordering::Relaxed) != UNLIMITED
            || self.tokens_limit.load(Ordering::Relaxed) != UNLIMITED
    }

    /// Has the daily quota run out (after this request was counted)?
    pub fn quota_reached(&self, day: i64) -> Option<&'static str> {
        let (r, t) = self.quota_left_on(day);
        if r == 0 {
            Some("requests_per_day")
        } else if t == 0 {
            Some("tokens_per_day")
        } else {
            None
        }
    }

    /// Count tokens a finished request used.
    pub fn add_tokens(&self, tokens: u64, day: i64) {
        if tokens == 0 {
            return;
        }
        self.roll_day(day);
        self.day_tokens.fetch_add(tokens, Ordering::AcqRel);
        self.pending.tokens.fetch_add(tokens, Ordering::Relaxed);
    }

    pub fn circuit(&self) -> &Circuit {
        &self.circuit
    }

    /// Count a failed attempt (error answer or transport error) and keep its text.
    pub fn record_error(&self, text: &str, now_ms: i64) {
        self.pending.errors.fetch_add(1, Ordering::Relaxed);
        self.local_errors.fetch_add(1, Ordering::Relaxed);
        let mut d = self.detail();
        d.last_error = Some(text.chars().take(300).collect());
        d.last_error_at_ms = Some(now_ms);
        self.pending.error_changed.store(true, Ordering::Release);
    }

    pub fn in_flight(&self) -> u32 {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// Count a request in flight until the guard drops.
    pub fn begin(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(Arc::clone(self))
    }

    /// Change the state here (the caller persists the transition).
    pub fn set_state(
        &self,
        state: CredentialState,
        reason: &str,
        until_ms: Option<i64>,
        changed_by: &str,
        now_ms: i64,
    ) -> Transition {
        let mut d = self.detail();
        let before = self.effective_state(now_ms);
        let until = if state == CredentialState::Active {
            None
        } else {
            until_ms
        };
        self.until_ms.store(until.unwrap_or(0), Ordering::Release);
        self.state.store(state as u8, Ordering::Release);
        d.reason = reason.to_string();
        d.since_ms = now_ms;
        d.changed_by = changed_by.to_string();
        Transition {
            upstream: Arc::clone(&self.upstream),
            credential: Arc::clone(&self.credential),
            before,
            after: state,
            reason: d.reason.clone(),
            since_ms: now_ms,
            until_ms: until,
            changed_by: d.changed_by.clone(),
        }
    }

    /// Take a state another instance (or an earlier run) stored.
    pub fn apply_stored(
        &self,
        state: CredentialState,
        reason: &str,
        since_ms: i64,
        until_ms: Option<i64>,
        changed_by: &str,
    ) {
        let mut d = self.detail();
        self.until_ms
            .store(until_ms.unwrap_or(0), Ordering::Release);
        self.state.store(state as u8, Ordering::Release);
        d.reason = reason.to_string();
        d.since_ms = since_ms;
        d.changed_by = changed_by.to_string();
    }

    /// Take the fleet's stored counters; `day` is the current quota day's
    /// number and whether the stored day counters belong to it.
    pub fn apply_stored_usage(&self, u: &StoredUsage, day: i64) {
        let mut d = self.detail();
        d.stored_requests = u.requests;
        d.stored_errors = u.errors;
        d.stored_tokens = u.tokens;
        d.stored_last_used_ms = u.last_used_at_ms;
        if d.last_error_at_ms
            .is_none_or(|t| u.last_error_at_ms.is_some_and(|s| s > t))
        {
            d.last_error.clone_from(&u.last_error);
            d.last_error_at_ms = u.last_error_at_ms;
        }
        drop(d);
        if u.is_current_day {
            self.roll_day(day);
            // The fleet's count plus what this instance has not written yet.
            let local_r = self.pending.requests.load(Ordering::Relaxed);
            let local_t = self.pending.tokens.load(Ordering::Relaxed);
            self.day_requests
                .store(u.day_requests.saturating_add(local_r), Ordering::Release);
            self.day_tokens
                .store(u.day_tokens.saturating_add(local_t), Ordering::Release);
        }
    }

    /// The counters not yet written, zeroed here (`None`: nothing new).
    pub fn take_usage(&self) -> Option<UsageDelta> {
        let requests = self.pending.requests.swap(0, Ordering::AcqRel);
        let errors = self.pending.errors.swap(0, Ordering::AcqRel);
        let tokens = self.pending.tokens.swap(0, Ordering::AcqRel);
        let error_changed = self.pending.error_changed.swap(false, Ordering::AcqRel);
        let last_used = self.pending.last_used_ms.load(Ordering::Relaxed);
        if requests == 0 && errors == 0 && tokens == 0 && !error_changed {
            return None;
        }
        let mut d = self.detail();
        d.stored_requests = d.stored_requests.saturating_add(requests);
        d.stored_errors = d.stored_errors.saturating_add(errors);
        d.stored_tokens = d.stored_tokens.saturating_add(tokens);
        if last_used != 0 {
            d.stored_last_used_ms = Some(last_used);
        }
        Some(UsageDelta {
            requests,
            errors,
            tokens,
            last_error: d.last_error.clone().filter(|_| error_changed),
            last_error_at_ms: d.last_error_at_ms.filter(|_| error_changed),
            last_used_at_ms: (last_used != 0).then_some(last_used),
        })
    }

    /// What the admin API shows.
    pub fn status(&self, now_ms: i64, day: i64) -> CredentialStatus {
        let d = self.detail();
        let state = self.effective_state(now_ms);
        let expired = state != self.stored_state();
        let rl = self.requests_limit.load(Ordering::Relaxed);
        let tl = self.tokens_limit.load(Ordering::Relaxed);
        let on_day = self.day.load(Ordering::Acquire) == day;
        let last_used = self.pending.last_used_ms.load(Ordering::Relaxed);
        CredentialStatus {
            state,
            reason: if expired {
                format!("returned at the end of: {}", d.reason)
            } else {
                d.reason.clone()
            },
            since: if expired {
                self.until_ms().and_then(to_time)
            } else {
                (d.since_ms != 0).then(|| to_time(d.since_ms)).flatten()
            },
            until: if expired {
                None
            } else {
                self.until_ms().and_then(to_time)
            },
            changed_by: d.changed_by.clone(),
            circuit: self.circuit.state(),
            circuit_open_until: self.circuit.open_until_ms().and_then(to_time),
            in_flight: self.in_flight(),
            requests: d.stored_requests + self.pending.requests.load(Ordering::Relaxed),
            errors: d.stored_errors + self.pending.errors.load(Ordering::Relaxed),
            tokens: d.stored_tokens + self.pending.tokens.load(Ordering::Relaxed),
            last_error: d.last_error.clone(),
            last_error_at: d.last_error_at_ms.and_then(to_time),
            last_used_at: if last_used != 0 {
                to_time(last_used)
            } else {
                d.stored_last_used_ms.and_then(to_time)
            },
            quota: (rl != UNLIMITED || tl != UNLIMITED).then(|| QuotaStatus {
                requests_per_day: (rl != UNLIMITED).then_some(rl),
                tokens_per_day: (tl != UNLIMITED).then_some(tl),
                requests_today: if on_day {
                    self.day_requests.load(Ordering::Relaxed)
                } else {
                    0
                },
                tokens_today: if on_day {
                    self.day_tokens.load(Ordering::Relaxed)
                } else {
                    0
                },
            }),
        }
    }
}

/// The fleet's counters of one credential, as stored.
#[derive(Debug, Clone, Default)]
pub struct StoredUsage {
    pub requests: u64,
    pub errors: u64,
    pub tokens: u64,
    pub last_error: Option<String>,
    pub last_error_at_ms: Option<i64>,
    pub last_used_at_ms: Option<i64>,
    /// The stored day counters belong to the current quota day.
    pub is_current_day: bool,
    pub day_requests: u64,
    pub day_tokens: u64,
}

/// A request in flight on a credential; dropping it ends the count.
#[derive(Debug)]
pub struct InFlight(Arc<CredentialHealth>);

impl InFlight {
    pub fn health(&self) -> &Arc<CredentialHealth> {
        &self.0
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}
