//! Settlement: what one admitted request holds in Redis, given back with its
//! real usage by one `settle.lua` call spawned off the request path; and the
//! bounded queue of settlements that Redis could not take.

use std::collections::VecDeque;
use std::sync::{Arc, LazyLock, Mutex, PoisonError};

use redis::{Script, ScriptInvocation};

use super::Inner;
use super::admit::exact;
use super::keys::QuotaKeys;
use crate::types::{Settle, Usage};

static SETTLE: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("settle.lua")));

/// Everything needed to settle one request, without the admission.
#[derive(Debug, Clone)]
pub(crate) struct SettleJob {
    pub request_id: Arc<str>,
    /// Minute windows that hold the worst case for tokens/minute, with the
    /// start of the window the request was counted in.
    pub windows: Vec<(String, i64)>,
    /// Concurrency sets holding a slot.
    pub slots: Vec<String>,
    pub quota: Option<QuotaKeys>,
    /// Worst-case tokens counted into the windows.
    pub held_tokens: u64,
    pub used_tokens: u64,
    pub used_nanos: u64,
}

impl SettleJob {
    pub fn holds_anything(&self) -> bool {
        !self.windows.is_empty() || !self.slots.is_empty() || self.quota.is_some()
    }

    pub fn invocation(&self) -> ScriptInvocation<'static> {
        let mut inv = SETTLE.prepare_invoke();
        for (key, _) in &self.windows {
            inv.key(key.as_str());
        }
        for key in &self.slots {
            inv.key(key.as_str());
        }
        if let Some(q) = &self.quota {
            inv.key(q.totals.as_str())
                .key(q.leases.as_str())
                .key(q.held.as_str());
        }
        inv.arg(&*self.request_id)
            .arg(exact(self.used_tokens))
            .arg(exact(self.used_nanos))
            .arg(exact(self.held_tokens))
            .arg(self.windows.len())
            .arg(self.slots.len())
            .arg(if self.quota.is_some() { "1" } else { "0" });
        for (_, start) in &self.windows {
            inv.arg(*start);
        }
        inv
    }
}

/// The [`Settle`] half of a Redis reservation.
pub(crate) struct RedisSettle {
    pub inner: Arc<Inner>,
    pub job: SettleJob,
}

impl Settle for RedisSettle {
    fn settle(self: Box<Self>, usage: Usage) {
        let RedisSettle { inner, mut job } = *self;
        job.used_tokens = usage.tokens;
        job.used_nanos = crate::usd_to_nanos(usage.cost);
        // Never block the caller (this also runs from a Drop): send from a task,
        // or queue when there is no runtime to send from.
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                handle.spawn(async move {
                    if let Err(e) = inner.send_settle(&job).await {
                        tracing::debug!(error = %e.error, "settlement queued");
                        inner.pending.push_back(job);
                    }
                });
            }
            Err(_) => inner.pending.push_back(job),
        }
    }
}

/// Settlements waiting for Redis, bounded: beyond `cap` the oldest are dropped
/// (counted by `fastgate_limits_settlements_dropped_total`); their holds come
/// back when their leases run out.
pub(crate) struct PendingQueue {
    jobs: Mutex<VecDeque<SettleJob>>,
    cap: usize,
}

impl PendingQueue {
    pub fn new(cap: usize) -> Self {
        Self {
            jobs: Mutex::new(VecDeque::new()),
            cap: cap.max(1),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<SettleJob>> {
        self.jobs.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn push_back(&self, job: SettleJob) {
        let mut jobs = self.lock();
        if jobs.len() >= self.cap {
            jobs.pop_front();
            metrics::counter!("fastgate_limits_settlements_dropped_total").increment(1);
        }
        jobs.push_back(job);
    }

    /// Puts back a job taken by [`Self::pop`] that could not be sent; it stays
    /// first in line (dropped instead if the queue filled up meanwhile).
    pub fn push_front(&self, job: SettleJob) {
        let mut jobs = self.lock();
        if jobs.len() >= self.cap {
            metrics::counter!("fastgate_limits_settlements_dropped_total").increment(1);
            return;
        }
        jobs.push_front(job);
    }

    pub fn pop(&self) -> Option<SettleJob> {
        self.lock().pop_front()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(id: &str) -> SettleJob {
        SettleJob {
            request_id: id.into(),
            windows: vec![],
            slots: vec!["s".into()],
            quota: None,
            held_tokens: 0,
            used_tokens: 0,
            used_nanos: 0,
        }
    }

    #[test]
    fn the_queue_drops_its_oldest_beyond_the_cap() {
        let q = PendingQueue::new(2);
        q.push_back(job("a"));
        q.push_back(job("b"));
        q.push_back(job("c"));
        assert_eq!(q.len(), 2);
        assert_eq!(q.pop().map(|j| j.request_id), Some("b".into()));
        q.push_front(job("x"));
        q.push_front(job("y"));
        assert_eq!(q.len(), 2, "a full queue takes nothing back");
        assert_eq!(q.pop().map(|j| j.request_id), Some("x".into()));
    }
}
