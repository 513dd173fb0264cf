//! Counters shared by the sender and the writer tasks, mirrored into `metrics`.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use serde::Serialize;

/// Metric names (all prefixed `fastgate_audit_`).
pub mod metric {
    /// Gauge: records waiting in the queue plus overflow records not yet spilled.
    pub const QUEUE_DEPTH: &str = "fastgate_audit_queue_depth";
    /// Gauge: the deepest the queue has been since start (records waiting, overflow not
    /// yet spilled included), as the writer finds it each time it reads the queue. Only
    /// the writer takes records out, so the depth it finds is the highest since its
    /// previous read: a scrape after a burst tells how close the queue came to its
    /// capacity without sampling it during the burst.
    pub const QUEUE_DEPTH_PEAK: &str = "fastgate_audit_queue_depth_peak";
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
    /// Gauge: bytes in the crash journal's segments (current and retired, not yet deleted).
    pub const JOURNAL_BYTES: &str = "fastgate_audit_journal_bytes";
    /// Journal appends that failed (the record still went to the queue, but was not
    /// protected against a crash). Should stay 0.
    pub const JOURNAL_ERRORS: &str = "fastgate_audit_journal_errors_total";
    /// Records found in journal segments left by a previous run (crash) and handed to the
    /// spill file for replay at start.
    pub const JOURNAL_RECOVERED: &str = "fastgate_audit_journal_recovered_total";
    /// Gauge: age in seconds of the oldest finished request whose record is not in the
    /// database yet (waiting in a batch or in the spill file); 0 when none is waiting.
    pub const OLDEST_UNFLUSHED_SECONDS: &str = "fastgate_audit_oldest_unflushed_seconds";
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
    /// Failed journal appends.
    pub journal_errors: u64,
    /// Records recovered from journal segments at start.
    pub journal_recovered: u64,
    /// The deepest the queue has been (see [`metric::QUEUE_DEPTH_PEAK`]).
    pub queue_depth_peak: u64,
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
    journal_errors: AtomicU64,
    journal_recovered: AtomicU64,
    /// Overflow records handed to the spill task and not yet appended.
    overflow_pending: AtomicU64,
    queue_depth_peak: AtomicU64,
    /// Completion time (unix ms) of the oldest record in the batch being collected or
    /// written; 0 when none.
    batch_oldest_ms: AtomicI64,
    /// Completion time (unix ms) of the oldest record in the spill file; 0 when empty.
    spill_oldest_ms: AtomicI64,
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

    /// The batcher found `depth` records waiting: keep the highest.
    pub(crate) fn queue_depth_seen(&self, depth: usize) {
        let depth = u64::try_from(depth).unwrap_or(u64::MAX);
        let before = self.queue_depth_peak.fetch_max(depth, Ordering::Relaxed);
        // At 0 on the first call, so the gauge is there from the start.
        if depth > before || depth == 0 && before == 0 {
            metrics::gauge!(metric::QUEUE_DEPTH_PEAK).set(depth as f64);
        }
    }

    pub(crate) fn journal_error(&self) {
        bump(&self.journal_errors, metric::JOURNAL_ERRORS, 1);
    }

    pub(crate) fn journal_recovered(&self, n: u64) {
        bump(&self.journal_recovered, metric::JOURNAL_RECOVERED, n);
    }

    /// The batcher started a batch whose first record completed at `ms` (0: no batch).
    pub(crate) fn set_batch_oldest(&self, ms: i64) {
        self.batch_oldest_ms.store(ms, Ordering::Relaxed);
    }

    /// Records completed at `ms` reached the spill file: keep the oldest.
    pub(crate) fn spill_holds(&self, ms: i64) {
        let _ = self
            .spill_oldest_ms
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |cur| {
                (cur == 0 || ms < cur).then_some(ms)
            });
    }

    /// The spill file was emptied.
    pub(crate) fn spill_emptied(&self) {
        self.spill_oldest_ms.store(0, Ordering::Relaxed);
    }

    /// Seconds since the oldest record not yet in the database completed (0 if none).
    pub(crate) fn oldest_unflushed_seconds(&self, now_ms: i64) -> f64 {
        let oldest = [&self.batch_oldest_ms, &self.spill_oldest_ms]
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .filter(|&ms| ms > 0)
            .min();
        oldest.map_or(0.0, |ms| (now_ms.saturating_sub(ms)).max(0) as f64 / 1000.0)
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
            journal_errors: get(&self.journal_errors),
            journal_recovered: get(&self.journal_recovered),
            queue_depth_peak: get(&self.queue_depth_peak),
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

/// Publish the journal size gauge.
pub(crate) fn report_journal_bytes(bytes: u64) {
    metrics::gauge!(metric::JOURNAL_BYTES).set(bytes as f64);
}

/// Publish the oldest-unflushed-record gauge.
pub(crate) fn report_oldest(counters: &Counters) {
    let now = chrono::Utc::now().timestamp_millis();
    metrics::gauge!(metric::OLDEST_UNFLUSHED_SECONDS).set(counters.oldest_unflushed_seconds(now));
}
