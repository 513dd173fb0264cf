//! Keeps the limiter and the store in step (docs/limits.md): every
//! `limits.flush_interval` the usage this instance counted is added to the
//! stored per-key, per-period totals, and the fleet's totals for the current
//! periods are read back (the memory backend counts from them; the Redis
//! backend seeds lost counters from them). Every second the limiter's recovery
//! step runs (back to Redis after an outage, reconciling).

use std::sync::Arc;
use std::time::Duration;

use fastgate_auth::QuotaPeriod;
use fastgate_limits::{Limiter, LimiterSettings, Period, PeriodUsage, RedisSettings, Totals};
use fastgate_proxy::AppState;
use fastgate_store::{KeyPeriodUsage, StoreError};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The limiter the config asks for: in memory, or a fleet's on Redis (not yet
/// connected: [`connect_at_start`]).
pub fn build_limiter(config: &fastgate_config::Config) -> Limiter {
    let settings: LimiterSettings = fastgate_proxy::admission::limiter_settings(config);
    let clock = Arc::new(fastgate_limits::SystemClock);
    match &config.redis.url {
        Some(url) => Limiter::fleet(
            clock,
            settings,
            RedisSettings {
                url: url.expose().clone(),
                key_prefix: config.redis.key_prefix.clone(),
                connect_timeout: config.redis.connect_timeout,
                command_timeout: config.redis.command_timeout,
                lease: config.limits.reservation_ttl,
            },
        ),
        None => Limiter::in_memory(clock, settings),
    }
}

/// A fleet's first connection. An unreachable Redis does not stop the start:
/// the failure policy applies until the recovery loop reaches it.
pub async fn connect_at_start(limiter: &Limiter) {
    if limiter.mode() == "memory" {
        return;
    }
    match limiter.connect().await {
        // `connect` logs the switch itself.
        Ok(()) => {}
        Err(e) => tracing::error!(
            error = %e,
            "limits backend: fallback (Redis unreachable at start); the failure policy applies until it answers"
        ),
    }
}

pub fn spawn(state: AppState, cancel: CancellationToken) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut last_flush = tokio::time::Instant::now();
        let mut tick = tokio::time::interval(Limiter::TICK.min(flush_interval(&state)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = cancel.cancelled() => return,
                _ = tick.tick() => {}
            }
            state.limiter().tick().await;
            if last_flush.elapsed() >= flush_interval(&state) {
                last_flush = tokio::time::Instant::now();
                if let Err(e) = sync(&state).await {
                    tracing::warn!(error = %e, "limits: usage not written to the database; kept for the next try");
                }
            }
        }
    })
}

fn flush_interval(state: &AppState) -> Duration {
    state.inner().config.load().limits.flush_interval
}

/// Flush this instance's usage, then read back the current periods' totals.
pub async fn sync(state: &AppState) -> Result<(), StoreError> {
    flush(state).await?;
    load_totals(state).await
}

/// Add the usage counted here to the store; on failure it stays pending.
pub async fn flush(state: &AppState) -> Result<(), StoreError> {
    let limiter = state.limiter();
    let drained = limiter.drain_usage();
    if drained.is_empty() {
        return Ok(());
    }
    let rows: Vec<KeyPeriodUsage> = drained.iter().map(to_row).collect();
    match state.store().add_key_period_usage(&rows).await {
        Ok(totals) => {
            let totals: Vec<PeriodUsage> = totals.iter().map(from_row).collect();
            limiter.apply_totals(&totals, &drained);
            Ok(())
        }
        Err(e) => {
            limiter.restore_usage(drained);
            Err(e)
        }
    }
}

/// The fleet's totals for the periods now current (never, today, this month).
pub async fn load_totals(state: &AppState) -> Result<(), StoreError> {
    let limiter = state.limiter();
    let now = limiter.now_ms();
    let tz = limiter.settings().tz;
    let periods: Vec<String> = [QuotaPeriod::Never, QuotaPeriod::Daily, QuotaPeriod::Monthly]
        .into_iter()
        .map(|p| Period::at(p, now, tz).id)
        .collect();
    let rows = state.store().list_key_period_usage(&periods).await?;
    let totals: Vec<PeriodUsage> = rows.iter().map(from_row).collect();
    limiter.apply_totals(&totals, &[]);
    Ok(())
}

fn to_row(u: &PeriodUsage) -> KeyPeriodUsage {
    KeyPeriodUsage {
        key_id: u.key_id.clone(),
        period: u.period.clone(),
        requests: u.totals.requests,
        tokens: u.totals.tokens,
        cost_nanos: fastgate_limits::usd_to_nanos(u.totals.cost),
    }
}

pub fn from_row(r: &KeyPeriodUsage) -> PeriodUsage {
    PeriodUsage {
        key_id: r.key_id.clone(),
        period: r.period.clone(),
        totals: Totals {
            requests: r.requests,
            tokens: r.tokens,
            cost: fastgate_limits::nanos_to_usd(r.cost_nanos),
        },
    }
}
