//! Refusals Redis gave recently, remembered until they expire: a request of a
//! scope whose request window Redis said is full is refused here without a
//! round trip and before its body is read. Only limits that no request can pass
//! until a known time are remembered (request windows, a quota's requests);
//! token limits and budgets depend on each request's size and on settlements.

use std::sync::Arc;
use std::time::Duration;

use dashmap::DashMap;

use crate::types::{AdmitRequest, LimitKind, QuotaCheck, Refusal, Scope, ScopeKind};

/// Entries kept at most (a bound against many keys each refused once).
const MAX_ENTRIES: usize = 100_000;

#[derive(Default)]
pub(crate) struct RefusalCache {
    until: DashMap<(ScopeKind, Arc<str>), (i64, Refusal), foldhash::fast::RandomState>,
}

impl RefusalCache {
    pub fn remember(&self, req: &AdmitRequest, refusal: &Refusal, now_ms: i64) {
        let remembered = matches!(
            refusal.kind,
            LimitKind::RequestsPerMinute | LimitKind::RequestsPerDay | LimitKind::QuotaRequests
        );
        let Some(after) = refusal.retry_after.filter(|_| remembered) else {
            return;
        };
        let id = if refusal.kind == LimitKind::QuotaRequests {
            req.quota.as_ref().map(|q| Arc::clone(&q.key_id))
        } else {
            req.scopes
                .iter()
                .find(|s| s.kind == refusal.scope)
                .map(|s| Arc::clone(&s.id))
        };
        let Some(id) = id else { return };
        if self.until.len() >= MAX_ENTRIES {
            self.until.retain(|_, (t, _)| *t > now_ms);
            if self.until.len() >= MAX_ENTRIES {
                return;
            }
        }
        let until = now_ms.saturating_add(i64::try_from(after.as_millis()).unwrap_or(i64::MAX));
        let scope = if refusal.kind == LimitKind::QuotaRequests {
            ScopeKind::Key
        } else {
            refusal.scope
        };
        self.until.insert((scope, id), (until, refusal.clone()));
    }

    pub fn clear(&self) {
        if !self.until.is_empty() {
            self.until.clear();
        }
    }

    pub fn check(
        &self,
        scopes: &[Scope],
        quota: Option<&QuotaCheck>,
        now_ms: i64,
    ) -> Result<(), Refusal> {
        if self.until.is_empty() {
            return Ok(());
        }
        let ids = scopes
            .iter()
            .map(|s| (s.kind, &s.id))
            .chain(quota.map(|q| (ScopeKind::Key, &q.key_id)));
        for (kind, id) in ids {
            let key = (kind, Arc::clone(id));
            let Some(hit) = self.until.get(&key).map(|e| e.value().clone()) else {
                continue;
            };
            let (until, mut refusal) = hit;
            if until <= now_ms {
                self.until.remove_if(&key, |_, (t, _)| *t <= now_ms);
                continue;
            }
            refusal.retry_after = Some(Duration::from_millis(
                u64::try_from(until - now_ms).unwrap_or(0),
            ));
            return Err(refusal);
        }
        Ok(())
    }
}
