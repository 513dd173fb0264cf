//! Admission: one `admit.lua` call for every scope and the quota, and the
//! reading of its reply into a refusal or the windows and reservation of an
//! admitted request.

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use redis::{Script, ScriptInvocation};

use super::keys::{QuotaKeys, ScopeKeys};
use super::settle::{RedisSettle, SettleJob};
use super::{CallError, Inner};
use crate::backend::{AdmitResult, BackendError};
use crate::types::{
    AdmitError, AdmitRequest, Admitted, LimitKind, QuotaCheck, Refusal, Reservation, Scope,
    ScopeKind, Window,
};

static ADMIT: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("admit.lua")));

pub(crate) const MINUTE_MS: i64 = 60_000;
pub(crate) const DAY_MS: i64 = 86_400_000;

/// Lua counts in doubles, exact up to 2^53: larger figures are clamped there
/// (2^53 tokens or nano-USD is beyond any real limit).
pub(crate) fn exact(v: u64) -> u64 {
    v.min((1 << 53) - 1)
}

/// A limit as a script argument; `-` when there is none.
fn limit_arg(v: Option<u64>) -> String {
    v.map_or_else(|| "-".to_string(), |v| exact(v).to_string())
}

/// What one admission touches: the limited scopes in check order and the quota.
struct Plan<'a> {
    scopes: Vec<(&'a Scope, ScopeKeys)>,
    quota: Option<(&'a QuotaCheck, QuotaKeys)>,
}

impl<'a> Plan<'a> {
    fn new(inner: &Inner, req: &'a AdmitRequest) -> Self {
        let mut scopes: Vec<&Scope> = req
            .scopes
            .iter()
            .filter(|s| !s.limits.is_unlimited())
            .collect();
        // The first failing check decides the refusal: scopes in (kind, id) order.
        scopes.sort_by(|a, b| (a.kind, &a.id).cmp(&(b.kind, &b.id)));
        Self {
            scopes: scopes
                .into_iter()
                .map(|s| (s, inner.keys.scope(s.kind, &s.id)))
                .collect(),
            quota: req
                .quota
                .as_ref()
                .filter(|q| !q.is_unlimited())
                .map(|q| (q, inner.keys.quota(&q.key_id, &q.period.id))),
        }
    }

    fn invocation(&self, inner: &Inner, req: &AdmitRequest) -> ScriptInvocation<'static> {
        let mut inv = ADMIT.prepare_invoke();
        for (_, k) in &self.scopes {
            inv.key(k.minute.as_str())
                .key(k.day.as_str())
                .key(k.slots.as_str());
        }
        inv.arg(&*req.request_id)
            .arg(inner.lease_ms)
            .arg(exact(req.demand.tokens))
            .arg(exact(crate::usd_to_nanos_ceil(req.demand.cost)))
            .arg(self.scopes.len())
            .arg(if self.quota.is_some() { "1" } else { "0" });
        for (s, _) in &self.scopes {
            let l = &s.limits;
            inv.arg(limit_arg(l.requests_per_minute.map(u64::from)))
                .arg(limit_arg(l.requests_per_day.map(u64::from)))
                .arg(limit_arg(l.tokens_per_minute))
                .arg(limit_arg(l.max_concurrent.map(u64::from)));
        }
        if let Some((q, k)) = &self.quota {
            inv.key(k.totals.as_str())
                .key(k.leases.as_str())
                .key(k.held.as_str());
            let budget = q.quota.cost.map(crate::usd_to_nanos_floor);
            let end = q.period.ends_at.map_or(-1, |t| t.timestamp_millis());
            let seed = inner
                .seeds
                .get(&(q.key_id.to_string(), q.period.id.clone()))
                .map(|t| *t)
                .unwrap_or_default();
            inv.arg(limit_arg(q.quota.requests))
                .arg(limit_arg(q.quota.tokens))
                .arg(limit_arg(budget))
                .arg(end)
                .arg(exact(seed.requests))
                .arg(exact(seed.tokens))
                .arg(exact(crate::usd_to_nanos(seed.cost)));
        }
        inv
    }

    /// What this request holds once admitted, to give back at settlement.
    fn job(&self, req: &AdmitRequest, minute_starts: &[i64]) -> SettleJob {
        let windows = self
            .scopes
            .iter()
            .zip(minute_starts)
            .filter(|((s, _), start)| s.limits.tokens_per_minute.is_some() && **start >= 0)
            .map(|((_, k), start)| (k.minute.clone(), *start))
            .collect();
        SettleJob {
            request_id: Arc::clone(&req.request_id),
            windows,
            slots: self
                .scopes
                .iter()
                .filter(|(s, _)| s.limits.max_concurrent.is_some())
                .map(|(_, k)| k.slots.clone())
                .collect(),
            quota: self.quota.as_ref().map(|(_, k)| k.clone()),
            held_tokens: exact(req.demand.tokens),
            used_tokens: 0,
            used_nanos: 0,
        }
    }
}

pub(crate) async fn admit(
    inner: &Arc<Inner>,
    req: &AdmitRequest,
) -> Result<AdmitResult, BackendError> {
    if req.is_unlimited() {
        return Ok(Ok(Admitted::unlimited()));
    }
    let plan = Plan::new(inner, req);
    let reply: Vec<i64> = match inner.invoke(&plan.invocation(inner, req)).await {
        Ok(reply) => reply,
        Err(CallError { error, ambiguous }) => {
            // Redis may have admitted it without our hearing: give back any
            // slot and reservation it would hold (a no-op if it did not run)
            // rather than keep them until their lease ends.
            let release = plan.job(req, &[]);
            if ambiguous && release.holds_anything() {
                inner.pending.push_back(release);
            }
            return Err(error);
        }
    };
    match reply.as_slice() {
        [0, code, scope, used, retry] => Ok(Err(AdmitError::Limited(refusal(
            &plan, req, *code, *scope, *used, *retry,
        )?))),
        [1, now, rest @ ..] if rest.len() == plan.scopes.len() * 5 => {
            Ok(Ok(admitted(inner, &plan, req, *now, rest)))
        }
        _ => Err(BackendError(format!(
            "unexpected reply from the admission script: {reply:?}"
        ))),
    }
}

fn refusal(
    plan: &Plan<'_>,
    req: &AdmitRequest,
    code: i64,
    scope: i64,
    used: i64,
    retry_ms: i64,
) -> Result<Refusal, BackendError> {
    let bad = || BackendError(format!("admission script refused with code {code}"));
    let used_n = used.max(0) as f64;
    let tokens = req.demand.tokens as f64;
    let (kind, scope_kind, limit, used, requested) = if (1..=4).contains(&code) {
        let s = usize::try_from(scope - 1)
            .ok()
            .and_then(|i| plan.scopes.get(i))
            .map(|(s, _)| *s)
            .ok_or_else(bad)?;
        let l = &s.limits;
        let (kind, limit, requested) = match code {
            1 => (LimitKind::Concurrency, l.max_concurrent.map(f64::from), 1.0),
            2 => (
                LimitKind::RequestsPerMinute,
                l.requests_per_minute.map(f64::from),
                1.0,
            ),
            3 => (
                LimitKind::RequestsPerDay,
                l.requests_per_day.map(f64::from),
                1.0,
            ),
            _ => (
                LimitKind::TokensPerMinute,
                l.tokens_per_minute.map(|v| v as f64),
                tokens,
            ),
        };
        (kind, s.kind, limit.ok_or_else(bad)?, used_n, requested)
    } else {
        let q = &plan.quota.as_ref().ok_or_else(bad)?.0.quota;
        let (kind, limit, used, requested) = match code {
            5 => (
                LimitKind::QuotaRequests,
                q.requests.map(|v| v as f64),
                used_n,
                1.0,
            ),
            6 => (
                LimitKind::QuotaTokens,
                q.tokens.map(|v| v as f64),
                used_n,
                tokens,
            ),
            7 => (
                LimitKind::Budget,
                q.cost,
                crate::nanos_to_usd(u64::try_from(used).unwrap_or(0)),
                req.demand.cost,
            ),
            _ => return Err(bad()),
        };
        (
            kind,
            ScopeKind::Key,
            limit.ok_or_else(bad)?,
            used,
            requested,
        )
    };
    // Waiting does not help a request larger than the whole limit.
    let retry_after = (requested <= limit)
        .then(|| u64::try_from(retry_ms).ok().map(Duration::from_millis))
        .flatten();
    Ok(Refusal {
        kind,
        scope: scope_kind,
        limit,
        used,
        requested,
        retry_after,
    })
}

fn window(limit: u64, used: i64, start: i64, len: i64, now: i64) -> Window {
    Window {
        limit,
        remaining: limit.saturating_sub(u64::try_from(used).unwrap_or(0)),
        reset: Duration::from_millis(u64::try_from(start + len - now).unwrap_or(0)),
    }
}

/// The tightest request and token windows after this request, and its holds.
fn admitted(
    inner: &Arc<Inner>,
    plan: &Plan<'_>,
    req: &AdmitRequest,
    now: i64,
    rest: &[i64],
) -> Admitted {
    let mut requests = None;
    let mut tokens = None;
    let mut minute_starts = Vec::with_capacity(plan.scopes.len());
    for ((s, _), w) in plan.scopes.iter().zip(rest.chunks_exact(5)) {
        let (ms, mr, mt, ds, dr) = (w[0], w[1], w[2], w[3], w[4]);
        minute_starts.push(ms);
        let l = &s.limits;
        if let (Some(lim), true) = (l.requests_per_minute, ms >= 0) {
            requests = Window::tighter(requests, window(u64::from(lim), mr, ms, MINUTE_MS, now));
        }
        if let (Some(lim), true) = (l.requests_per_day, ds >= 0) {
            requests = Window::tighter(requests, window(u64::from(lim), dr, ds, DAY_MS, now));
        }
        if let (Some(lim), true) = (l.tokens_per_minute, ms >= 0) {
            tokens = Window::tighter(tokens, window(lim, mt, ms, MINUTE_MS, now));
        }
    }
    let job = plan.job(req, &minute_starts);
    let reservation = if job.holds_anything() {
        Reservation::new(Box::new(RedisSettle {
            inner: Arc::clone(inner),
            job,
        }))
    } else {
        Reservation::none()
    };
    Admitted {
        requests,
        tokens,
        reservation,
    }
}
