//! The registry: every credential's health by upstream and name, kept across
//! config reloads, with the settings and the quota day the request path reads,
//! and the queue of changes the health worker stores and alerts on.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use tokio::sync::mpsc;

use super::circuit::CircuitSettings;
use super::clock::{Clock, DaySchedule, QuotaDay, SystemClock};
use super::credential::{CredentialHealth, StoredUsage};
use super::state::{CredentialState, Transition};
use crate::pool::PickContext;

/// The `health:` settings the request path reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HealthSettings {
    pub circuit: CircuitSettings,
    pub schedule: DaySchedule,
    pub retry_other_credential: bool,
}

impl Default for HealthSettings {
    fn default() -> Self {
        Self::from_config(&fastgate_config::Config::default())
    }
}

impl HealthSettings {
    pub fn from_config(cfg: &fastgate_config::Config) -> Self {
        Self {
            circuit: (&cfg.health.circuit).into(),
            schedule: DaySchedule::new(&cfg.timezone.0, cfg.health.quota_reset_hour),
            retry_other_credential: cfg.health.retry_other_credential,
        }
    }
}

/// A rule firing (or a built-in's) as stored in `rule_events` and alerted on.
#[derive(Debug, Clone)]
pub struct RuleEventRecord {
    pub at_ms: i64,
    pub rule: Arc<str>,
    pub upstream: Arc<str>,
    pub credential: Arc<str>,
    pub status: Option<u16>,
    /// What matched, secrets redacted.
    pub excerpt: String,
    /// What was done, e.g. `disable 10m, alert ops-feishu`.
    pub action: String,
    pub before: CredentialState,
    pub after: CredentialState,
    pub reason: String,
    pub until_ms: Option<i64>,
    /// Alert channels to notify.
    pub alert: Vec<Arc<str>>,
}

/// What the health worker stores and sends.
#[derive(Debug, Clone)]
pub enum HealthEvent {
    State(Transition),
    Rule(RuleEventRecord),
}

/// What one observed answer did.
#[derive(Debug, Default)]
pub struct Observed {
    /// The credential left rotation because of this answer.
    pub left_rotation: bool,
    pub firings: usize,
}

const EVENT_QUEUE: usize = 4096;

type Key = (Arc<str>, Arc<str>);

pub struct HealthRegistry {
    clock: Arc<dyn Clock>,
    settings: ArcSwap<HealthSettings>,
    day: ArcSwap<QuotaDay>,
    /// Taken when snapshots are built, states synced and admins read: never
    /// on the request path, which holds `Arc`s to its credentials.
    entries: Mutex<HashMap<Key, Arc<CredentialHealth>>>,
    events: mpsc::Sender<HealthEvent>,
}

impl std::fmt::Debug for HealthRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HealthRegistry")
            .field("settings", &**self.settings.load())
            .finish_non_exhaustive()
    }
}

impl HealthRegistry {
    /// A registry on the system clock, and the receiving end of its events.
    pub fn new(settings: HealthSettings) -> (Arc<Self>, mpsc::Receiver<HealthEvent>) {
        Self::with_clock(settings, Arc::new(SystemClock))
    }

    pub fn with_clock(
        settings: HealthSettings,
        clock: Arc<dyn Clock>,
    ) -> (Arc<Self>, mpsc::Receiver<HealthEvent>) {
        let (tx, rx) = mpsc::channel(EVENT_QUEUE);
        let day = settings.schedule.day_at(clock.now_ms());
        let reg = Self {
            clock,
            settings: ArcSwap::from_pointee(settings),
            day: ArcSwap::from_pointee(day),
            entries: Mutex::new(HashMap::new()),
            events: tx,
        };
        (Arc::new(reg), rx)
    }

    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    pub fn settings(&self) -> HealthSettings {
        **self.settings.load()
    }

    /// New settings after a config reload (the quota day follows a new zone or hour).
    pub fn configure(&self, settings: HealthSettings) {
        if settings.schedule != self.settings.load().schedule {
            self.day
                .store(Arc::new(settings.schedule.day_at(self.now_ms())));
        }
        self.settings.store(Arc::new(settings));
    }

    /// The current quota day (rolled over when its end passed).
    pub fn quota_day(&self) -> Arc<QuotaDay> {
        self.quota_day_at(self.now_ms())
    }

    fn quota_day_at(&self, now_ms: i64) -> Arc<QuotaDay> {
        let day = self.day.load_full();
        if now_ms < day.ends_ms {
            return day;
        }
        let next = Arc::new(self.settings.load().schedule.day_at(now_ms));
        self.day.store(Arc::clone(&next));
        next
    }

    /// What a pick needs, read once per request.
    pub fn pick_context(&self) -> PickContext {
        let now_ms = self.now_ms();
        PickContext {
            now_ms,
            day: self.quota_day_at(now_ms).number,
            circuit: self.settings.load().circuit,
        }
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Arc<CredentialHealth>>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The health of a credential, created active the first time; its quota
    /// is set from the config each time (a reload may change it). `key_id`
    /// identifies the key (see [`key_id`]): a credential whose key was replaced
    /// starts over (active, circuit closed, day counters at zero).
    pub fn credential(
        &self,
        upstream: &str,
        credential: &str,
        quota: &fastgate_config::CredentialQuota,
        key_id: u64,
    ) -> Arc<CredentialHealth> {
        let key: Key = (Arc::from(upstream), Arc::from(credential));
        let health = Arc::clone(
            self.entries()
                .entry(key)
                .or_insert_with(|| Arc::new(CredentialHealth::new(upstream, credential))),
        );
        health.set_quota(quota);
        if health.replace_key_id(key_id) {
            health.start_over();
            if health.stored_state() != CredentialState::Active {
                self.set_state(
                    &health,
                    CredentialState::Active,
                    "the key was replaced",
                    None,
                    "config",
                );
            }
        }
        health
    }

    pub fn find(&self, upstream: &str, credential: &str) -> Option<Arc<CredentialHealth>> {
        let key: Key = (Arc::from(upstream), Arc::from(credential));
        self.entries().get(&key).cloned()
    }

    /// Every credential known, ordered by upstream and name.
    pub fn all(&self) -> Vec<Arc<CredentialHealth>> {
        let mut v: Vec<_> = self.entries().values().cloned().collect();
        v.sort_by(|a, b| (a.upstream(), a.credential()).cmp(&(b.upstream(), b.credential())));
        v
    }

    /// Forget credentials no snapshot uses any more.
    pub fn retain(&self, keep: impl Fn(&str, &str) -> bool) {
        self.entries().retain(|(u, c), _| keep(u, c));
    }

    fn emit(&self, event: HealthEvent) {
        if self.events.try_send(event).is_err() {
            metrics::counter!("fastgate_health_events_dropped_total").increment(1);
            tracing::warn!("credential health event queue full: an event was dropped");
        }
    }

    /// Change a credential's state (admin, scheduler, rules) and queue the
    /// change to be stored for the fleet.
    pub fn set_state(
        &self,
        health: &CredentialHealth,
        state: CredentialState,
        reason: &str,
        until_ms: Option<i64>,
        changed_by: &str,
    ) -> Transition {
        let t = health.set_state(state, reason, until_ms, changed_by, self.now_ms());
        tracing::info!(
            upstream = %t.upstream,
            credential = %t.credential,
            before = %t.before,
            after = %t.after,
            reason = %t.reason,
            by = %t.changed_by,
            "credential state changed"
        );
        self.emit(HealthEvent::State(t.clone()));
        t
    }

    /// Record a rule firing (stored, alerted on).
    pub fn record_rule_event(&self, record: RuleEventRecord) {
        // "disable 10m, alert ops" -> "disable+alert": the kinds, not the arguments.
        let kinds: Vec<&str> = record
            .action
            .split(", ")
            .filter_map(|a| a.split(' ').next())
            .collect();
        metrics::counter!(
            "fastgate_rule_firings_total",
            "rule" => record.rule.to_string(),
            "action" => kinds.join("+"),
        )
        .increment(1);
        self.emit(HealthEvent::Rule(record));
    }

    /// A claimed request may have used up the daily quota: the credential is
    /// then exhausted until the next reset.
    pub fn check_quota(&self, health: &CredentialHealth) {
        // Most credentials have no quota: no clock read, no day lookup for them.
        if !health.has_quota() {
            return;
        }
        let day = self.quota_day();
        let Some(which) = health.quota_reached(day.number) else {
            return;
        };
        if health.effective_state(self.now_ms()) != CredentialState::Active {
            return;
        }
        let reason = format!("daily quota {which} reached; resets at the next quota day");
        let t = self.set_state(
            health,
            CredentialState::Exhausted,
            &reason,
            Some(day.ends_ms),
            "quota",
        );
        self.record_rule_event(RuleEventRecord {
            at_ms: t.since_ms,
            rule: Arc::from("builtin:quota"),
            upstream: t.upstream.clone(),
            credential: t.credential.clone(),
            status: None,
            excerpt: String::new(),
            action: format!("exhaust until {}", fmt_ms(day.ends_ms)),
            before: t.before,
            after: t.after,
            reason,
            until_ms: Some(day.ends_ms),
            alert: Vec::new(),
        });
    }

    /// Apply the states stored in the database (another instance's changes,
    /// or this one's before a restart). Credentials without a row are active.
    pub fn apply_stored_states(&self, rows: &[StoredState]) {
        // A change made here moments ago may not be stored yet: the database
        // does not undo it until it is older than this.
        const UNSTORED_GRACE_MS: i64 = 10_000;
        let now = self.now_ms();
        let entries = self.entries();
        for h in entries.values() {
            let local_since = h.since_ms();
            let local_is_stale = now.saturating_sub(local_since) > UNSTORED_GRACE_MS;
            let row = rows
                .iter()
                .find(|r| *r.upstream == **h.upstream() && *r.credential == **h.credential());
            match row {
                Some(r) if r.since_ms >= local_since || local_is_stale => {
                    h.apply_stored(r.state, &r.reason, r.since_ms, r.until_ms, &r.changed_by);
                }
                None if h.stored_state() != CredentialState::Active && local_is_stale => {
                    h.apply_stored(CredentialState::Active, "", 0, None, "");
                }
                _ => {}
            }
        }
    }

    /// Apply the fleet's stored counters.
    pub fn apply_stored_usage(&self, rows: &[(String, String, StoredUsage)]) {
        let day = self.quota_day().number;
        let entries = self.entries();
        for (u, c, usage) in rows {
            if let Some(h) = entries.get(&(Arc::from(u.as_str()), Arc::from(c.as_str()))) {
                h.apply_stored_usage(usage, day);
            }
        }
    }

    /// Counters not yet stored, per credential.
    pub fn take_usage(&self) -> Vec<(Arc<CredentialHealth>, super::UsageDelta)> {
        self.all()
            .into_iter()
            .filter_map(|h| h.take_usage().map(|d| (h, d)))
            .collect()
    }

    /// Timed states whose end passed, to store as active again (the request
    /// path already treats them as active).
    pub fn expired(&self) -> Vec<Arc<CredentialHealth>> {
        let now = self.now_ms();
        self.all()
            .into_iter()
            .filter(|h| {
                h.stored_state() != CredentialState::Active
                    && h.effective_state(now) == CredentialState::Active
            })
            .collect()
    }
}

/// Identifies a provider key within this process without keeping it: a
/// replaced key gives another id.
pub fn key_id(key: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    key.hash(&mut h);
    h.finish().max(1)
}

/// A state as stored in the database.
#[derive(Debug, Clone)]
pub struct StoredState {
    pub upstream: String,
    pub credential: String,
    pub state: CredentialState,
    pub reason: String,
    pub since_ms: i64,
    pub until_ms: Option<i64>,
    pub changed_by: String,
}

pub(crate) fn fmt_ms(ms: i64) -> String {
    super::credential::to_time(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use crate::health::FakeClock;
    use crate::pool::{Pool, Strategy};

    fn ms(s: &str) -> i64 {
        chrono::DateTime::parse_from_rfc3339(s)
            .unwrap()
            .timestamp_millis()
    }

    fn shanghai_at_eight() -> HealthSettings {
        HealthSettings {
            schedule: DaySchedule::new("Asia/Shanghai", 8),
            ..HealthSettings::default()
        }
    }

    #[test]
    fn three_requests_a_day_exhaust_until_the_reset_then_return() {
        let clock = FakeClock::at(ms("2026-11-30T10:00:00Z"));
        let (reg, mut events) =
            HealthRegistry::with_clock(shanghai_at_eight(), Arc::new(clock.clone()));
        let quota = fastgate_config::CredentialQuota {
            requests_per_day: Some(3),
            tokens_per_day: None,
        };
        let a = reg.credential("openai-main", "a", &quota, 1);
        let pool = Pool::with_health(Strategy::Weighted, vec![(1, Arc::clone(&a))]);
        for _ in 0..3 {
            assert_eq!(pool.pick_skipping(&reg.pick_context(), &[]), Some(0));
            reg.check_quota(&a);
        }
        assert_eq!(a.effective_state(reg.now_ms()), CredentialState::Exhausted);
        // 08:00 in Shanghai is 00:00 UTC.
        assert_eq!(a.until_ms(), Some(ms("2026-12-01T00:00:00Z")));
        assert_eq!(pool.pick_skipping(&reg.pick_context(), &[]), None);
        let HealthEvent::State(t) = events.try_recv().unwrap() else {
            panic!("a state change first")
        };
        assert_eq!(
            (t.before, t.after),
            (CredentialState::Active, CredentialState::Exhausted)
        );
        assert!(t.reason.contains("requests_per_day"), "{}", t.reason);
        let HealthEvent::Rule(r) = events.try_recv().unwrap() else {
            panic!("then the rule event")
        };
        assert_eq!(&*r.rule, "builtin:quota");

        clock.set(ms("2026-11-30T23:59:59Z"));
        assert_eq!(
            pool.pick_skipping(&reg.pick_context(), &[]),
            None,
            "not before the reset"
        );
        clock.set(ms("2026-12-01T00:00:00Z"));
        assert_eq!(a.effective_state(reg.now_ms()), CredentialState::Active);
        assert_eq!(reg.expired().len(), 1, "the scheduler stores the return");
        for _ in 0..3 {
            assert_eq!(
                pool.pick_skipping(&reg.pick_context(), &[]),
                Some(0),
                "a fresh day"
            );
        }
        reg.check_quota(&a);
        assert_eq!(a.effective_state(reg.now_ms()), CredentialState::Exhausted);
    }

    #[test]
    fn stored_states_apply_and_missing_rows_mean_active() {
        let (reg, _rx) = HealthRegistry::new(HealthSettings::default());
        let none = fastgate_config::CredentialQuota::default();
        let a = reg.credential("up", "a", &none, 1);
        let b = reg.credential("up", "b", &none, 1);
        reg.set_state(&b, CredentialState::Banned, "by hand", None, "admin");
        reg.apply_stored_states(&[StoredState {
            upstream: "up".into(),
            credential: "a".into(),
            state: CredentialState::Disabled,
            reason: "401 from the provider".into(),
            since_ms: reg.now_ms(),
            until_ms: Some(reg.now_ms() + 60_000),
            changed_by: "rule:builtin:auth".into(),
        }]);
        assert_eq!(a.effective_state(reg.now_ms()), CredentialState::Disabled);
        assert_eq!(
            b.effective_state(reg.now_ms()),
            CredentialState::Banned,
            "a change made here moments ago is not undone before it is stored"
        );
        b.apply_stored(CredentialState::Banned, "old", 1, None, "admin");
        reg.apply_stored_states(&[]);
        assert_eq!(
            b.effective_state(reg.now_ms()),
            CredentialState::Active,
            "no row: active"
        );
        let s = a.status(reg.now_ms(), reg.quota_day().number);
        assert_eq!(s.reason, "401 from the provider");
        assert!(s.until.is_some());
    }

    #[test]
    fn health_outlives_a_reload() {
        let (reg, _rx) = HealthRegistry::new(HealthSettings::default());
        let none = fastgate_config::CredentialQuota::default();
        let first = reg.credential("up", "a", &none, 7);
        reg.set_state(&first, CredentialState::Banned, "leaked", None, "admin");
        let again = reg.credential("up", "a", &none, 7);
        assert!(Arc::ptr_eq(&first, &again));
        assert_eq!(
            again.stored_state(),
            CredentialState::Banned,
            "same key: state kept"
        );
        let replaced = reg.credential("up", "a", &none, 8);
        assert_eq!(
            replaced.stored_state(),
            CredentialState::Active,
            "a new key starts over"
        );
        reg.retain(|_, c| c != "a");
        assert!(reg.find("up", "a").is_none());
    }
}
