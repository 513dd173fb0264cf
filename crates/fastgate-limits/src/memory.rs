//! (being written by the memory-backend helper)
use crate::backend::{AdmitResult, BackendError, LimitBackend};
use crate::types::{AdmitRequest, KeyUsageView, PeriodUsage, QuotaCheck, Scope};

pub struct MemoryBackend;

impl LimitBackend for MemoryBackend {
    async fn admit(&self, _req: &AdmitRequest) -> Result<AdmitResult, BackendError> {
        Err(BackendError("not written yet".into()))
    }
    async fn usage(
        &self,
        _key_scope: Option<&Scope>,
        _quota: Option<&QuotaCheck>,
    ) -> Result<KeyUsageView, BackendError> {
        Err(BackendError("not written yet".into()))
    }
    fn apply_totals(&self, _totals: &[PeriodUsage], _flushed: &[PeriodUsage]) {}
}
impl MemoryBackend {
    pub fn new(_clock: std::sync::Arc<dyn crate::clock::Clock>) -> Self {
        Self
    }
    pub fn retain(&self, _keep: impl Fn(crate::types::ScopeKind, &str) -> bool) {}
}
