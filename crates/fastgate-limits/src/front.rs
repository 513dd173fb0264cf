//! [`Limiter`]: what the proxy holds. It admits through Redis when a fleet
//! shares one, else in memory; applies the failure policy while Redis is
//! unreachable and returns to it when it answers again; and keeps the usage
//! ledger that the store is fed from (every admitted request and its settled
//! tokens and cost, under its key's quota period).

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use arc_swap::ArcSwap;
use chrono_tz::Tz;
use fastgate_auth::KeyQuota;

use crate::backend::{BackendError, LimitBackend};
use crate::clock::{Clock, SystemClock};
use crate::ledger::UsageLedger;
use crate::memory::MemoryBackend;
use crate::redis::{RedisBackend, RedisSettings};
use crate::types::{
    AdmitError, AdmitRequest, Admitted, KeyUsageView, PeriodUsage, QuotaCheck, Refusal,
    Reservation, Scope, ScopeKind, Settle, Totals, Usage,
};

/// Gauge: 1 for the backend mode in force (`memory`, `redis`, `fallback`).
pub const BACKEND_MODE_METRIC: &str = "fastgate_limits_backend";

/// Rate limits while Redis is unreachable.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum RateFallback {
    /// Each instance enforces its share: the limit divided by the instance count.
    #[default]
    Local,
    Allow,
    Deny,
}

/// Quotas and budgets while Redis is unreachable.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum QuotaFallback {
    #[default]
    Deny,
    Local,
    Allow,
}

/// What may change on a reload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimiterSettings {
    /// Quota periods follow this zone.
    pub tz: Tz,
    pub expected_instances: u32,
    pub rate_fallback: RateFallback,
    pub quota_fallback: QuotaFallback,
}

impl Default for LimiterSettings {
    fn default() -> Self {
        Self {
            tz: Tz::UTC,
            expected_instances: 1,
            rate_fallback: RateFallback::Local,
            quota_fallback: QuotaFallback::Deny,
        }
    }
}

const MODE_MEMORY: u8 = 0;
const MODE_REDIS: u8 = 1;
const MODE_FALLBACK: u8 = 2;

fn mode_name(mode: u8) -> &'static str {
    match mode {
        MODE_REDIS => "redis",
        MODE_FALLBACK => "fallback",
        _ => "memory",
    }
}

struct Ledgers {
    /// Counted here, not yet added to the store.
    store: UsageLedger,
    /// Counted here while Redis was unreachable, not yet added to Redis.
    outage: UsageLedger,
}

pub struct Limiter {
    clock: Arc<dyn Clock>,
    settings: ArcSwap<LimiterSettings>,
    /// The backend of a single instance; with Redis, the fallback.
    local: MemoryBackend,
    /// With a fleet: where to connect, and the connection once made.
    fleet: Option<RedisSettings>,
    redis: OnceLock<RedisBackend>,
    /// Serialises connection attempts (recovery loop and start).
    connecting: tokio::sync::Mutex<()>,
    mode: AtomicU8,
    ledgers: Arc<Ledgers>,
    /// Redis's recent refusals, for [`Limiter::precheck`].
    refusals: crate::refusals::RefusalCache,
    /// The current quota periods, for [`Limiter::quota_check`].
    periods: crate::period::PeriodCache,
}

impl Default for Limiter {
    fn default() -> Self {
        Self::in_memory(Arc::new(SystemClock), LimiterSettings::default())
    }
}

impl Limiter {
    /// One instance: counters in this process.
    pub fn in_memory(clock: Arc<dyn Clock>, settings: LimiterSettings) -> Self {
        Self::build(clock, settings, None)
    }

    /// A fleet: counters in Redis, memory as the fallback. Starts in fallback
    /// mode; [`Limiter::connect`] (at start, then the recovery loop) moves it to
    /// Redis once Redis answers.
    pub fn fleet(clock: Arc<dyn Clock>, settings: LimiterSettings, redis: RedisSettings) -> Self {
        Self::build(clock, settings, Some(redis))
    }

    fn build(
        clock: Arc<dyn Clock>,
        settings: LimiterSettings,
        fleet: Option<RedisSettings>,
    ) -> Self {
        let mode = if fleet.is_some() {
            MODE_FALLBACK
        } else {
            MODE_MEMORY
        };
        let limiter = Self {
            local: MemoryBackend::new(Arc::clone(&clock)),
            clock,
            settings: ArcSwap::from_pointee(settings),
            fleet,
            redis: OnceLock::new(),
            connecting: tokio::sync::Mutex::new(()),
            mode: AtomicU8::new(mode),
            ledgers: Arc::new(Ledgers {
                store: UsageLedger::new(),
                outage: UsageLedger::new(),
            }),
            refusals: crate::refusals::RefusalCache::default(),
            periods: crate::period::PeriodCache::default(),
        };
        limiter.publish_mode(mode);
        limiter
    }

    /// Connect to Redis (a fleet only) and switch to it, reconciling what was
    /// counted meanwhile. Ok at once when already connected or not a fleet.
    pub async fn connect(&self) -> Result<(), BackendError> {
        let Some(settings) = &self.fleet else {
            return Ok(());
        };
        let _one = self.connecting.lock().await;
        if self.redis.get().is_none() {
            let backend = RedisBackend::connect(settings.clone()).await?;
            let _ = self.redis.set(backend);
        }
        if self.mode.load(Ordering::Acquire) == MODE_FALLBACK
            && let Some(redis) = self.redis.get()
        {
            redis.ping().await?;
            self.reconcile(redis).await?;
            self.mode.store(MODE_REDIS, Ordering::Release);
            self.publish_mode(MODE_REDIS);
            tracing::info!("limits backend: redis");
        }
        Ok(())
    }

    pub fn configure(&self, settings: LimiterSettings) {
        if **self.settings.load() != settings {
            self.settings.store(Arc::new(settings));
        }
    }

    pub fn settings(&self) -> LimiterSettings {
        **self.settings.load()
    }

    /// `memory`, `redis` or `fallback`.
    pub fn mode(&self) -> &'static str {
        mode_name(self.mode.load(Ordering::Acquire))
    }

    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    /// The quota check of a key for a request now (always present: the ledger
    /// counts every key's usage under its quota's period, `never` by default).
    pub fn quota_check(&self, key_id: &Arc<str>, quota: &KeyQuota) -> QuotaCheck {
        QuotaCheck {
            key_id: Arc::clone(key_id),
            quota: quota.clone(),
            period: self
                .periods
                .at(quota.period, self.clock.now_ms(), self.settings.load().tz),
        }
    }

    /// An early refusal, before the request's body is read, for a request that
    /// cannot pass: in memory an exact look at the counters (nothing counted);
    /// with Redis a refusal Redis gave a request of the same scope that still
    /// holds (no round trip). `Ok` does not admit: [`Limiter::admit`] decides.
    pub fn precheck(&self, scopes: &[Scope], quota: Option<&QuotaCheck>) -> Result<(), Refusal> {
        match self.mode.load(Ordering::Acquire) {
            MODE_MEMORY => self.local.peek_now(scopes, quota),
            MODE_REDIS => self.refusals.check(scopes, quota, self.clock.now_ms()),
            _ => Ok(()),
        }
    }

    /// Admit `req` against every limit in it (one Redis round trip at most).
    /// `count_as` is the key's quota period, under which the request and its
    /// settled usage are recorded for the store whether or not the quota has
    /// limits (`req.quota` carries it only when it has).
    pub async fn admit(
        &self,
        req: &AdmitRequest,
        count_as: Option<&QuotaCheck>,
    ) -> Result<Admitted, AdmitError> {
        let counted = count_as.map(|q| (Arc::clone(&q.key_id), q.period.id.clone()));
        let (result, outage) = if req.is_unlimited() {
            (Ok(Admitted::unlimited()), false)
        } else {
            self.admit_limited(req).await
        };
        if let (Err(AdmitError::Limited(refusal)), false) = (&result, outage) {
            self.refusals.remember(req, refusal, self.clock.now_ms());
        }
        let mut admitted = result?;
        if let Some((key_id, period)) = counted {
            let one = Totals {
                requests: 1,
                ..Totals::default()
            };
            self.ledgers.store.record(&key_id, &period, one);
            if outage {
                self.ledgers.outage.record(&key_id, &period, one);
            }
            let inner = std::mem::replace(&mut admitted.reservation, Reservation::none());
            admitted.reservation = Reservation::new(Box::new(Counted {
                inner,
                ledgers: Arc::clone(&self.ledgers),
                key_id,
                period,
                outage,
            }));
        }
        Ok(admitted)
    }

    /// The result, and whether it was decided without Redis during an outage.
    async fn admit_limited(&self, req: &AdmitRequest) -> (Result<Admitted, AdmitError>, bool) {
        let mode = self.mode.load(Ordering::Acquire);
        match (self.redis.get(), mode) {
            (Some(redis), MODE_REDIS) => match redis.admit(req).await {
                Ok(result) => (result, false),
                Err(e) => {
                    self.enter_fallback(&e);
                    (self.admit_fallback(req).await, true)
                }
            },
            (_, MODE_MEMORY) => (self.local_admit(req).await, false),
            _ => (self.admit_fallback(req).await, true),
        }
    }

    async fn local_admit(&self, req: &AdmitRequest) -> Result<Admitted, AdmitError> {
        match self.local.admit(req).await {
            Ok(result) => result,
            Err(e) => Err(AdmitError::Unavailable(e.0)),
        }
    }

    /// The failure policy: the request as this instance may check it alone.
    async fn admit_fallback(&self, req: &AdmitRequest) -> Result<Admitted, AdmitError> {
        let settings = self.settings();
        let mut local = req.clone();
        let rate_limited = req.scopes.iter().any(|s| !s.limits.is_unlimited());
        match settings.rate_fallback {
            RateFallback::Local => {
                for s in &mut local.scopes {
                    s.limits = s.limits.divided(settings.expected_instances);
                }
            }
            RateFallback::Allow => local.scopes.clear(),
            RateFallback::Deny if rate_limited => {
                return Err(AdmitError::Unavailable(
                    "rate limits cannot be checked: the shared limits store (Redis) is unreachable"
                        .into(),
                ));
            }
            RateFallback::Deny => {}
        }
        let has_quota = req.quota.as_ref().is_some_and(|q| !q.is_unlimited());
        match settings.quota_fallback {
            QuotaFallback::Deny if has_quota => {
                return Err(AdmitError::Unavailable(
                    "this key's quota cannot be checked: the shared limits store (Redis) is unreachable"
                        .into(),
                ));
            }
            QuotaFallback::Allow => local.quota = None,
            QuotaFallback::Deny | QuotaFallback::Local => {}
        }
        self.local_admit(&local).await
    }

    fn enter_fallback(&self, cause: &BackendError) {
        if self
            .mode
            .compare_exchange(
                MODE_REDIS,
                MODE_FALLBACK,
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .is_ok()
        {
            tracing::error!(error = %cause, "limits backend: fallback (Redis unreachable); failure policy in force");
            self.publish_mode(MODE_FALLBACK);
        }
    }

    /// Set the mode gauge again (once the metrics recorder is installed).
    pub fn publish_metrics(&self) {
        self.publish_mode(self.mode.load(Ordering::Acquire));
    }

    /// Forget remembered refusals: limits may have changed (a key or route
    /// update), and a raised limit must take effect at once.
    pub fn forget_refusals(&self) {
        self.refusals.clear();
    }

    fn publish_mode(&self, mode: u8) {
        for m in [MODE_MEMORY, MODE_REDIS, MODE_FALLBACK] {
            metrics::gauge!(BACKEND_MODE_METRIC, "mode" => mode_name(m)).set(if m == mode {
                1.0
            } else {
                0.0
            });
        }
    }

    /// One step of the recovery loop (run every [`Limiter::TICK`] by the
    /// server): in fallback, try Redis and return to it when it answers; in
    /// Redis mode, send settlements that could not be sent.
    pub async fn tick(&self) {
        if self.fleet.is_none() {
            return;
        }
        if self.mode.load(Ordering::Acquire) == MODE_FALLBACK {
            if let Err(e) = self.connect().await {
                tracing::debug!(error = %e, "limits backend: Redis still unreachable");
            }
            return;
        }
        // Settlements that could not be sent, and usage of requests admitted
        // during an outage that settled after it.
        if let Some(redis) = self.redis.get()
            && (redis.pending() > 0 || !self.ledgers.outage.is_empty())
            && let Err(e) = self.reconcile(redis).await
        {
            self.enter_fallback(&e);
        }
    }

    /// Settlements that failed, then the usage counted here during the outage.
    async fn reconcile(&self, redis: &RedisBackend) -> Result<(), BackendError> {
        redis.replay_pending().await?;
        let outage = self.ledgers.outage.drain();
        if outage.is_empty() {
            return Ok(());
        }
        if let Err(e) = redis.add_usage(&outage).await {
            self.ledgers.outage.restore(outage);
            return Err(e);
        }
        Ok(())
    }

    /// A key's standing: its rate windows and its quota period's usage.
    pub async fn usage(
        &self,
        key_scope: Option<&Scope>,
        quota: Option<&QuotaCheck>,
    ) -> Result<KeyUsageView, BackendError> {
        match (self.redis.get(), self.mode.load(Ordering::Acquire)) {
            (Some(redis), MODE_REDIS) => redis.usage(key_scope, quota).await,
            (_, MODE_MEMORY) => self.local.usage(key_scope, quota).await,
            _ => {
                let mut view = self.local.usage(key_scope, quota).await?;
                view.backend = "fallback";
                Ok(view)
            }
        }
    }

    /// Usage counted here since the last call, for the store.
    pub fn drain_usage(&self) -> Vec<PeriodUsage> {
        self.ledgers.store.drain()
    }

    /// Put back usage the store did not take.
    pub fn restore_usage(&self, usage: Vec<PeriodUsage>) {
        self.ledgers.store.restore(usage);
    }

    /// Usage counted here and not yet in the store, for one key and period.
    pub fn pending_usage(&self, key_id: &str, period: &str) -> Totals {
        self.ledgers.store.peek(key_id, period)
    }

    /// The store's totals after `flushed` was added (see [`LimitBackend::apply_totals`]).
    pub fn apply_totals(&self, totals: &[PeriodUsage], flushed: &[PeriodUsage]) {
        self.local.apply_totals(totals, flushed);
        if let Some(redis) = self.redis.get() {
            redis.apply_totals(totals, flushed);
        }
    }

    /// Forget in-memory state of scopes that no longer exist.
    pub fn retain(&self, keep: impl Fn(ScopeKind, &str) -> bool) {
        self.local.retain(keep);
    }

    /// How long the recovery loop waits between steps.
    pub const TICK: Duration = Duration::from_secs(1);
}

/// Wraps a backend's reservation: records the request's settled tokens and
/// cost in the ledger, then settles the backend's holds.
struct Counted {
    inner: Reservation,
    ledgers: Arc<Ledgers>,
    key_id: Arc<str>,
    period: String,
    outage: bool,
}

impl Settle for Counted {
    fn settle(self: Box<Self>, usage: Usage) {
        let delta = Totals {
            requests: 0,
            tokens: usage.tokens,
            cost: if usage.cost.is_finite() && usage.cost > 0.0 {
                usage.cost
            } else {
                0.0
            },
        };
        let this = *self;
        // The backend counts first: a flush between the two must never find in
        // the ledger what the memory backend has not counted yet.
        this.inner.settle(usage);
        this.ledgers.store.record(&this.key_id, &this.period, delta);
        if this.outage {
            this.ledgers
                .outage
                .record(&this.key_id, &this.period, delta);
        }
    }
}
