//! Usage counted by this instance per key and quota period, waiting to be added
//! to the store's totals (and, after a Redis outage, to Redis's counters).

use std::sync::Arc;

use dashmap::DashMap;

use crate::types::{PeriodUsage, Totals};

#[derive(Default)]
pub struct UsageLedger {
    pending: DashMap<(Arc<str>, String), Totals, foldhash::fast::RandomState>,
}

impl UsageLedger {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn record(&self, key_id: &Arc<str>, period: &str, delta: Totals) {
        if delta.is_zero() {
            return;
        }
        if let Some(mut t) = self
            .pending
            .get_mut(&(Arc::clone(key_id), period.to_string()))
        {
            t.add(&delta);
            return;
        }
        self.pending
            .entry((Arc::clone(key_id), period.to_string()))
            .or_default()
            .add(&delta);
    }

    /// Everything pending, removed.
    pub fn drain(&self) -> Vec<PeriodUsage> {
        let keys: Vec<_> = self.pending.iter().map(|e| e.key().clone()).collect();
        keys.into_iter()
            .filter_map(|k| self.pending.remove(&k))
            .map(|((key_id, period), totals)| PeriodUsage {
                key_id: key_id.to_string(),
                period,
                totals,
            })
            .collect()
    }

    /// Put back what could not be written.
    pub fn restore(&self, usage: Vec<PeriodUsage>) {
        for u in usage {
            let key: Arc<str> = Arc::from(u.key_id.as_str());
            self.record(&key, &u.period, u.totals);
        }
    }

    /// What is pending for one key and period, left in place.
    pub fn peek(&self, key_id: &str, period: &str) -> Totals {
        self.pending
            .get(&(Arc::from(key_id), period.to_string()))
            .map(|t| *t)
            .unwrap_or_default()
    }

    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_merge_drain_and_restore() {
        let l = UsageLedger::new();
        let k: Arc<str> = "k1".into();
        let one = Totals {
            requests: 1,
            tokens: 10,
            cost: 0.5,
        };
        l.record(&k, "all", one);
        l.record(&k, "all", one);
        l.record(&k, "d2026-11-30", Totals::default());
        let d = l.drain();
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].totals.requests, 2);
        assert_eq!(d[0].totals.tokens, 20);
        assert!(l.is_empty());
        l.restore(d);
        assert_eq!(l.drain()[0].totals.cost, 1.0);
    }
}
