//! The backend trait: where counters and reservations live. [`crate::MemoryBackend`]
//! keeps them in this process; [`crate::RedisBackend`] in Redis, shared by a fleet.

use std::future::Future;

use crate::types::{AdmitRequest, KeyUsageView, PeriodUsage, QuotaCheck, Scope};

/// A backend failed to answer (network, timeout, script error). The caller
/// applies the failure policy; a backend never decides it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BackendError(pub String);

/// The outcome of one admission at a backend.
pub type AdmitResult = Result<crate::types::Admitted, crate::types::AdmitError>;

pub trait LimitBackend: Send + Sync + 'static {
    /// Check every scope and the quota of `req` and, only if all pass, count the
    /// request and hold its concurrency slots and worst-case demand, atomically
    /// (all or nothing). `Err(BackendError)` means nothing was counted or held.
    fn admit(
        &self,
        req: &AdmitRequest,
    ) -> impl Future<Output = Result<AdmitResult, BackendError>> + Send;

    /// What `key_scope` and `quota` stand at, without counting anything.
    fn usage(
        &self,
        key_scope: Option<&Scope>,
        quota: Option<&QuotaCheck>,
    ) -> impl Future<Output = Result<KeyUsageView, BackendError>> + Send;

    /// The store's fleet totals for some (key, period)s, read right after
    /// `flushed` (this instance's usage since the previous call, as drained
    /// from the ledger) was added to them. The memory backend counts from these
    /// totals; the Redis backend seeds lost counters from them.
    fn apply_totals(&self, totals: &[PeriodUsage], flushed: &[PeriodUsage]);
}
