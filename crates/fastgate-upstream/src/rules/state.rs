//! Hit windows and last firings, per (rule, upstream, credential).
//!
//! Touched only when a rule's condition matched, one map shard at a time
//! (never a lock over every evaluation). The map is swept of idle entries when
//! it grows past [`SWEEP_ABOVE`].

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use dashmap::DashMap;
use dashmap::mapref::entry::Entry as MapEntry;

/// Entries kept before idle ones are swept out.
pub(super) const SWEEP_ABOVE: usize = 10_000;

/// When a rule fires: `hits` matches within `within`, then not again for
/// `cooldown`.
#[derive(Debug, Clone, Copy)]
pub(super) struct Limits {
    pub(super) hits: u32,
    pub(super) within: Duration,
    pub(super) cooldown: Option<Duration>,
}

impl Limits {
    /// A rule that fires on every match needs no state at all.
    pub(super) fn stateless(&self) -> bool {
        self.hits <= 1 && self.cooldown.is_none_or(|c| c.is_zero())
    }

    /// How long an entry matters after its last hit or firing.
    fn keep_for(&self) -> Duration {
        self.within.max(self.cooldown.unwrap_or_default())
    }
}

#[derive(Debug, Hash, PartialEq, Eq)]
struct Key {
    rule: usize,
    upstream: Box<str>,
    credential: Box<str>,
}

#[derive(Debug)]
struct Entry {
    /// Times of the matches inside the window, oldest first (at most `hits`).
    hits: VecDeque<Instant>,
    last_fired: Option<Instant>,
    /// Last match or firing, for the sweep.
    last_seen: Instant,
    keep_for: Duration,
}

#[derive(Debug)]
pub(super) struct HitState {
    entries: DashMap<Key, Entry, foldhash::fast::RandomState>,
    /// Sweep when the map holds more entries than this.
    sweep_above: AtomicUsize,
}

impl Default for HitState {
    fn default() -> Self {
        Self {
            entries: DashMap::with_hasher(foldhash::fast::RandomState::default()),
            sweep_above: AtomicUsize::new(SWEEP_ABOVE),
        }
    }
}

impl HitState {
    /// Counts one match of rule `rule`; true when the rule fires now.
    pub(super) fn record(
        &self,
        rule: usize,
        limits: Limits,
        upstream: &str,
        credential: &str,
        now: Instant,
    ) -> bool {
        let key = Key {
            rule,
            upstream: upstream.into(),
            credential: credential.into(),
        };
        let (fired, inserted) = match self.entries.entry(key) {
            MapEntry::Occupied(mut slot) => (hit(slot.get_mut(), limits, now), false),
            MapEntry::Vacant(slot) => {
                let mut entry = Entry {
                    hits: VecDeque::new(),
                    last_fired: None,
                    last_seen: now,
                    keep_for: limits.keep_for(),
                };
                let fired = hit(&mut entry, limits, now);
                slot.insert(entry);
                (fired, true)
            }
        };
        // The shard lock is released here: the sweep takes every shard in turn.
        if inserted {
            self.maybe_sweep(now);
        }
        fired
    }

    fn maybe_sweep(&self, now: Instant) {
        let limit = self.sweep_above.load(Ordering::Relaxed);
        if self.entries.len() <= limit {
            return;
        }
        self.entries
            .retain(|_, e| now.saturating_duration_since(e.last_seen) < e.keep_for);
        // Entries still live stay; grow the limit so the next sweep is worth it.
        let next = SWEEP_ABOVE.max(self.entries.len().saturating_mul(2));
        self.sweep_above.store(next, Ordering::Relaxed);
    }

    /// Entries held.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.entries.len()
    }
}

fn hit(e: &mut Entry, limits: Limits, now: Instant) -> bool {
    if let (Some(last), Some(cooldown)) = (e.last_fired, limits.cooldown)
        && now.saturating_duration_since(last) < cooldown
    {
        return false;
    }
    e.last_seen = e.last_seen.max(now);
    while e
        .hits
        .front()
        .is_some_and(|&t| now.saturating_duration_since(t) >= limits.within)
    {
        e.hits.pop_front();
    }
    e.hits.push_back(now);
    let needed = usize::try_from(limits.hits.max(1)).unwrap_or(usize::MAX);
    if e.hits.len() >= needed {
        e.hits.clear();
        e.last_fired = Some(now);
        true
    } else {
        false
    }
}
