//! Settling a memory reservation: gives back concurrency slots and replaces the
//! reserved worst case by the real usage.

use std::sync::{Arc, Mutex};

use crate::types::{Settle, Usage};
use crate::usd_to_nanos;

use super::admit::{QuotaHold, ScopeHold};
use super::state::{QuotaState, ScopeState, lock};

/// The states one admission touched (held by `Arc`, so that a scope forgotten
/// by `retain` meanwhile is settled in its own, now unreachable, state and a
/// recreated state is never touched) and what was added to each.
pub(super) struct MemorySettle {
    pub scopes: super::ScopeList<(Arc<Mutex<ScopeState>>, ScopeHold)>,
    pub quota: Option<(Arc<Mutex<QuotaState>>, QuotaHold)>,
}

impl Settle for MemorySettle {
    fn settle(self: Box<Self>, usage: Usage) {
        // One lock at a time: never two held, so no order to respect.
        for (state, hold) in &self.scopes {
            let mut st = lock(state);
            if hold.slot {
                st.in_flight = st.in_flight.saturating_sub(1);
            }
            // A window that has closed since keeps its count: it no longer
            // matters, and the new window must not pay for an old request.
            if let Some(reserved) = hold.tokens
                && st.minute.start_ms == Some(hold.minute_start)
            {
                st.minute.tokens = st
                    .minute
                    .tokens
                    .saturating_add(usage.tokens)
                    .saturating_sub(reserved);
            }
        }
        if let Some((state, hold)) = &self.quota {
            let mut st = lock(state);
            // After a period change the reservation was dropped with the old
            // period's counts, and the usage belongs to the old period.
            if st.is_on(&hold.period) {
                st.reserved_tokens = st.reserved_tokens.saturating_sub(hold.tokens);
                st.reserved_nanos = st.reserved_nanos.saturating_sub(hold.nanos);
                st.in_flight = st.in_flight.saturating_sub(1);
                st.local.tokens = st.local.tokens.saturating_add(usage.tokens);
                st.local.nanos = st.local.nanos.saturating_add(usd_to_nanos(usage.cost));
            }
        }
    }
}
