//! (being written by the Redis-backend helper)
use crate::backend::{AdmitResult, BackendError, LimitBackend};
use crate::types::{AdmitRequest, KeyUsageView, PeriodUsage, QuotaCheck, Scope};

pub struct RedisBackend;

impl LimitBackend for RedisBackend {
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

#[derive(Clone)]
pub struct RedisSettings {
    pub url: String,
    pub key_prefix: String,
    pub connect_timeout: std::time::Duration,
    pub command_timeout: std::time::Duration,
    pub lease: std::time::Duration,
}
impl RedisBackend {
    pub async fn connect(_s: RedisSettings) -> Result<Self, BackendError> {
        Err(BackendError("not written yet".into()))
    }
    pub async fn ping(&self) -> Result<(), BackendError> {
        Err(BackendError("not written yet".into()))
    }
    pub fn pending(&self) -> usize {
        0
    }
    pub async fn replay_pending(&self) -> Result<usize, BackendError> {
        Ok(0)
    }
    pub async fn add_usage(&self, _u: &[PeriodUsage]) -> Result<(), BackendError> {
        Ok(())
    }
}
