//! Helpers shared by the memory backend's tests.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use chrono_tz::Tz;
use fastgate_auth::{KeyQuota, QuotaPeriod};

use super::MemoryBackend;
use crate::backend::AdmitResult;
use crate::clock::FakeClock;
use crate::period::Period;
use crate::types::{
    AdmitError, AdmitRequest, Admitted, Demand, Limits, QuotaCheck, Refusal, Scope, ScopeKind,
};

/// 2026-11-29T10:00:00Z.
pub const T0: i64 = 1_795_946_400_000;

pub fn setup() -> (FakeClock, MemoryBackend) {
    let clock = FakeClock::at(T0);
    let backend = MemoryBackend::new(Arc::new(clock.clone()));
    (clock, backend)
}

pub fn scope(kind: ScopeKind, id: &str, limits: Limits) -> Scope {
    Scope {
        kind,
        id: id.into(),
        limits,
    }
}

pub fn rpm(n: u32) -> Limits {
    Limits {
        requests_per_minute: Some(n),
        ..Limits::default()
    }
}

pub fn request(
    scopes: Vec<Scope>,
    quota: Option<QuotaCheck>,
    tokens: u64,
    cost: f64,
) -> AdmitRequest {
    AdmitRequest {
        request_id: "req".into(),
        scopes,
        quota,
        demand: Demand { tokens, cost },
    }
}

pub fn quota(key: &str, q: KeyQuota, now_ms: i64, tz: Tz) -> QuotaCheck {
    QuotaCheck {
        key_id: key.into(),
        period: Period::at(q.period, now_ms, tz),
        quota: q,
    }
}

pub fn quota_of(
    requests: Option<u64>,
    tokens: Option<u64>,
    cost: Option<f64>,
    period: QuotaPeriod,
) -> KeyQuota {
    KeyQuota {
        requests,
        tokens,
        cost,
        period,
    }
}

pub fn admitted(r: AdmitResult) -> Admitted {
    match r {
        Ok(a) => a,
        Err(e) => panic!("expected admission, got {e:?}"),
    }
}

pub fn refused(r: AdmitResult) -> Refusal {
    match r {
        Err(AdmitError::Limited(refusal)) => refusal,
        other => panic!("expected a refusal, got {other:?}"),
    }
}
