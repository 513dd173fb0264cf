//! The usage view of one key (`GET /admin/api/keys/{id}/usage`): one read-only
//! `view.lua` call.

use std::sync::LazyLock;

use redis::Script;

use super::Inner;
use super::admit::{DAY_MS, MINUTE_MS};
use crate::backend::BackendError;
use crate::types::{
    KeyUsageView, LimitKind, QuotaCheck, ReservedView, Scope, UsedView, WindowView,
};

static VIEW: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("view.lua")));

/// Whole seconds until a window that started at `start` ends (rounded up);
/// 0 when no window is open.
fn resets_in_secs(start: i64, len: i64, now: i64) -> u64 {
    if start < 0 {
        return 0;
    }
    u64::try_from(start + len - now).map_or(0, |ms| ms.div_ceil(1000))
}

fn count(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

pub(crate) async fn usage(
    inner: &Inner,
    key_scope: Option<&Scope>,
    quota: Option<&QuotaCheck>,
) -> Result<KeyUsageView, BackendError> {
    let mut inv = VIEW.prepare_invoke();
    if let Some(s) = key_scope {
        let k = inner.keys.scope(s.kind, &s.id);
        inv.key(k.minute).key(k.day).key(k.slots);
    }
    if let Some(q) = quota {
        let k = inner.keys.quota(&q.key_id, &q.period.id);
        inv.key(k.totals).key(k.leases).key(k.held);
    }
    inv.arg(if key_scope.is_some() { "1" } else { "0" })
        .arg(if quota.is_some() { "1" } else { "0" });
    let r: Vec<i64> = inner.invoke(&inv).await.map_err(|e| e.error)?;
    let [
        now,
        ms,
        mr,
        mt,
        ds,
        dr,
        slots,
        exists,
        req,
        tok,
        nanos,
        rtok,
        rnanos,
        live,
    ] = r.as_slice()
    else {
        return Err(BackendError(format!(
            "unexpected reply from the usage script: {r:?}"
        )));
    };
    let used = if *exists == 1 {
        UsedView {
            requests: count(*req),
            tokens: count(*tok),
            cost: crate::nanos_to_usd(count(*nanos)),
        }
    } else {
        // Redis has no counters (yet): what they would be seeded with.
        let seed = quota
            .and_then(|q| {
                inner
                    .seeds
                    .get(&(q.key_id.to_string(), q.period.id.clone()))
                    .map(|t| *t)
            })
            .unwrap_or_default();
        UsedView {
            requests: seed.requests,
            tokens: seed.tokens,
            cost: seed.cost,
        }
    };
    let limits = key_scope.map(|s| s.limits).unwrap_or_default();
    let mut windows = Vec::new();
    let mut push = |kind: LimitKind, limit: Option<u64>, used: i64, resets: u64| {
        if let Some(limit) = limit {
            windows.push(WindowView {
                limit_kind: kind.as_str(),
                limit,
                used: count(used),
                resets_in_secs: resets,
            });
        }
    };
    let minute_reset = resets_in_secs(*ms, MINUTE_MS, *now);
    push(
        LimitKind::RequestsPerMinute,
        limits.requests_per_minute.map(u64::from),
        *mr,
        minute_reset,
    );
    push(
        LimitKind::RequestsPerDay,
        limits.requests_per_day.map(u64::from),
        *dr,
        resets_in_secs(*ds, DAY_MS, *now),
    );
    push(
        LimitKind::TokensPerMinute,
        limits.tokens_per_minute,
        *mt,
        minute_reset,
    );
    push(
        LimitKind::Concurrency,
        limits.max_concurrent.map(u64::from),
        *slots,
        0,
    );
    Ok(KeyUsageView {
        backend: "redis",
        period: quota.map(|q| q.period.clone()),
        used,
        reserved: ReservedView {
            tokens: count(*rtok),
            cost: crate::nanos_to_usd(count(*rnanos)),
            // Slots when the key limits concurrency, else its live reservations.
            in_flight: if limits.max_concurrent.is_some() {
                count(*slots)
            } else {
                count(*live)
            },
        },
        windows,
    })
}
