//! Counters shared by the sender and the writer tasks, mirrored into `metrics`.

use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

/// Metric names (all prefixed `fastgate_audit_`).
pub mod metric {
    /// Gauge: records waiting in the queue plus overflow records not yet spilled.
    pub const QUEUE_DEPTH: &str = "fastgate_audit_queue_depth";
    /// Gauge: bytes in the spill file (the backlog waiting for replay).
    pub const SPILL_BYTES: &str = "fastgate_audit_spill_bytes";
    /// Records the sink accepted from the live queue.
    pub const WRITTEN: &str = "fastgate_audit_written_total";
    /// Successful live batches.
    pub const BATCHES: &str = "fastgate_audit_batches_total";
    /// Records appended to the spill file (failed batches, overflow, late sends).
    pub const SPILLED: &str = "fastgate_audit_spilled_total";
    /// Records the sink accepted from the spill file.
    pub const REPLAYED: &str = "fastgate_audit_replayed_total";
    /// Records lost (could be neither written nor spilled). Should stay 0.
    pub const DROPPED: &str = "fastgate_audit_dropped_total";
    /// Records that found the queue full and took the overflow path to the spill file.
    pub const OVERFLOW: &str = "fastgate_audit_overflow_total";
    /// Records the sink rejected one by one while accepting others, moved to quarantine.
    pub const REJECTED: &str = "fastgate_audit_rejected_total";
    /// Damaged spill lines skipped during a replay (e.g. torn by `kill -9`).
    pub const CORRUPT_LINES: &str = "fastgate_audit_spill_corrupt_lines_total";
    /// Failed sink calls (errors and timeouts, each attempt counted).
    pub const SINK_ERRORS: &str = "fastgate_audit_sink_errors_total";
    /// Histogram: duration of each sink call, in seconds.
    pub const BATCH_SECONDS: &str = "fastgate_audit_batch_duration_seconds";
}

/// A snapshot of the writer's counters since start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct AuditStats {
    /// Records the sink accepted from the live queue.
    pub written: u64,
    /// Records appended to the spill file.
    pub spilled: u64,
    /// Records the sink accepted from the spill file (counted when a replay pass completes).
    pub replayed: u64,
    /// Records lost. Should stay 0.
    pub dropped: u64,
    /// Successful live batches.
    pub batches: u64,
    /// Failed sink calls (each attempt, live or replay).
    pub failures: u64,
    /// Records that found the queue full (they are part of `spilled` too).
    pub overflowed: u64,
    /// Records moved to the quarantine file because the sink kept rejecting them alone.
    pub rejected: u64,
    /// Damaged spill lines skipped.
    pub corrupt_lines: u64,
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    written: AtomicU64,
    spilled: AtomicU64,
    replayed: AtomicU64,
    dropped: AtomicU64,
    batches: AtomicU64,
    failures: AtomicU64,
    overflowed: AtomicU64,
    rejected: AtomicU64,
    corrupt_lines: AtomicU64,
    /// Overflow records handed to the spill task and not yet appended.
    overflow_pending: AtomicU64,
}

fn bump(cell: &AtomicU64, name: &'static str, n: u64) {
    if n > 0 {
        cell.fetch_add(n, Ordering::Relaxed);
        metrics::counter!(name).increment(n);
    }
}

impl Counters {
    pub(crate) fn written(&self, n: usize) {
        bump(&self.written, metric::WRITTEN, n as u64);
        bump(&self.batches, metric::BATCHES, 1);
    }

    pub(crate) fn spilled(&self, n: usize) {
        bump(&self.spilled, metric::SPILLED, n as u64);
    }

    pub(crate) fn replayed(&self, n: u64) {
        bump(&self.replayed, metric::REPLAYED, n);
    }

    pub(crate) fn dropped(&self, n: usize) {
        bump(&self.dropped, metric::DROPPED, n as u64);
    }

    pub(crate) fn failure(&self) {
        bump(&self.failures, metric::SINK_ERRORS, 1);
    }

    pub(crate) fn rejected(&self, n: usize) {
        bump(&self.rejected, metric::REJECTED, n as u64);
    }

    pub(crate) fn corrupt(&self, n: u64) {
        bump(&self.corrupt_lines, metric::CORRUPT_LINES, n);
    }

    /// A record took the overflow path and is now pending in the spill task.
    pub(crate) fn overflow_enter(&self) {
        bump(&self.overflowed, metric::OVERFLOW, 1);
        self.overflow_pending.fetch_add(1, Ordering::Relaxed);
    }

    /// `n` overflow records left the overflow path (spilled, or failed to be handed over).
    pub(crate) fn overflow_leave(&self, n: u64) {
        if n > 0 {
            self.overflow_pending.fetch_sub(n, Ordering::Relaxed);
        }
    }

    pub(crate) fn overflow_pending(&self) -> u64 {
        self.overflow_pending.load(Ordering::Relaxed)
    }

    pub(crate) fn snapshot(&self) -> AuditStats {
        let get = |cell: &AtomicU64| cell.load(Ordering::Relaxed);
        AuditStats {
            written: get(&self.written),
            spilled: get(&self.spilled),
            replayed: get(&self.replayed),
            dropped: get(&self.dropped),
            batches: get(&self.batches),
            failures: get(&self.failures),
            overflowed: get(&self.overflowed),
            rejected: get(&self.rejected),
            corrupt_lines: get(&self.corrupt_lines),
        }
    }
}

/// Publish the queue depth gauge.
pub(crate) fn report_depth(depth: usize) {
    metrics::gauge!(metric::QUEUE_DEPTH).set(depth as f64);
}

/// Publish the spill backlog gauge.
pub(crate) fn report_spill_bytes(bytes: u64) {
    metrics::gauge!(metric::SPILL_BYTES).set(bytes as f64);
}
