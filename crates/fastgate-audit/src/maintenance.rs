//! The maintenance task: publishes the oldest-unflushed gauge, rotates the journal and
//! deletes journal segments whose records are all in the database or the spill file.

use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

use crate::journal::{self, Journal};
use crate::stats::{report_journal_bytes, report_oldest};
use crate::writer::{AuditTuning, SenderInner};

/// Longest wait for senders to let go of a rotated segment before trying again later.
const QUIESCE_LIMIT: Duration = Duration::from_secs(1);

/// Runs until `cancel`, or until every sender and the handle are gone.
pub(crate) async fn run(inner: Weak<SenderInner>, tuning: AuditTuning, cancel: CancellationToken) {
    let every = tuning
        .journal_rotate_interval
        .min(Duration::from_secs(1))
        .max(Duration::from_millis(10));
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            () = cancel.cancelled() => return,
            _ = tick.tick() => {}
        }
        let Some(inner) = inner.upgrade() else {
            return;
        };
        report_oldest(&inner.counters);
        let Some(journal) = inner.journal.clone() else {
            continue;
        };
        maybe_rotate(&journal, &tuning);
        tokio::select! {
            biased;
            () = cancel.cancelled() => return,
            () = retire(&inner, &journal) => {}
        }
        report_journal_bytes(journal.bytes());
    }
}

fn maybe_rotate(journal: &Journal, tuning: &AuditTuning) {
    let Some((age, len)) = journal.current_state() else {
        return;
    };
    let due =
        len >= tuning.journal_rotate_bytes || (len > 0 && age >= tuning.journal_rotate_interval);
    if due && let Err(err) = journal.rotate() {
        tracing::warn!(error = %err, "cannot start a new audit journal segment; still appending to the current one");
    }
}

/// Delete the retired segments once no sender holds them and a barrier confirms that
/// everything handed over before it is durable. Segments that cannot be deleted yet are
/// handed back (also when this future is dropped at shutdown).
async fn retire(inner: &SenderInner, journal: &Journal) {
    let segments = HandBack {
        journal,
        segments: journal.take_retired(),
    };
    if segments.segments.is_empty() {
        return;
    }
    if !journal::quiesce(&segments.segments, QUIESCE_LIMIT).await {
        return;
    }
    if inner.barrier(true).await {
        let mut segments = segments;
        let done = std::mem::take(&mut segments.segments);
        journal.delete(&done);
    }
}

/// Gives segments back to the journal when dropped (unless they were deleted).
struct HandBack<'a> {
    journal: &'a Journal,
    segments: Vec<Arc<journal::Segment>>,
}

impl Drop for HandBack<'_> {
    fn drop(&mut self) {
        if !self.segments.is_empty() {
            self.journal.give_back(std::mem::take(&mut self.segments));
        }
    }
}
