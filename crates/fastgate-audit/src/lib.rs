//! Audit events: the record type, the sink trait the store implements, and the
//! bounded, batching writer that keeps the request path free of database waits.
//!
//! # Design
//!
//! ```text
//!                      ┌──write(2), O_APPEND──▶ journal segment (crash protection)
//! request path ── AuditSender::send ──try_send──▶ bounded queue ──▶ batcher task ──▶ sink
//!                      │ (queue full)                                   │ (sink fails after
//!                      ▼                                                ▼  retries/timeout)
//!                 overflow channel ───────────────────────────▶ spill task ──▶ audit-spill.ndjson
//!                                                                   │   every replay_interval
//!                                                                   └──── replay ──▶ sink
//! ```
//!
//! * **Journal** (when [`AuditConfig::journal`] is on). [`AuditSender::send`] first
//!   appends the record to the current journal segment with a single `write(2)` (page
//!   cache, no `fsync`), then queues it. `send` runs synchronously when a request finishes,
//!   before its response's last byte is released, so a record of every response a client
//!   saw complete survives a crash of the process. Segments rotate and are deleted once a
//!   barrier confirms that their records are in the sink or the spill file; segments left
//!   by a crash are moved to the spill file at start (see the `journal` module).
//! * **Request path.** [`AuditSender::send`] never awaits and never blocks: it copies the
//!   record's text into one buffer ([`PackedRecord`]; a batch of records held as separate
//!   strings came back to the request path's allocations cold) and `try_send`s it
//!   into a bounded queue (`queue_capacity`). When the queue is full, the record goes to
//!   an *overflow channel* read by the spill task, which appends it to the spill file at
//!   once. That channel is unbounded in type but drained at local-disk speed (one write
//!   plus `fdatasync` per group of up to 4096 records), and its content is counted in the
//!   `queue_depth` gauge and `fastgate_audit_overflow_total`. Overflowed records reach the
//!   database through the next replay.
//! * **Batcher task.** Collects up to `batch_size` records, or whatever arrived within
//!   `flush_interval` of a batch's first record, and calls [`AuditSink::write_batch`]. On
//!   an error it retries quickly with exponential backoff ([`AuditTuning`]); a call that
//!   exceeds `sink_timeout` is not retried. A batch that still fails goes to the spill
//!   task. The queue therefore keeps moving even while the database is down.
//! * **Spill file** `<spill_dir>/audit-spill.ndjson`, one record per line, each line
//!   prefixed by the CRC-32 of its JSON (`<8 hex> <json>\n`). Appends are `fdatasync`ed
//!   before a record counts as spilled. A torn or damaged line (e.g. `kill -9` mid-write)
//!   fails its checksum and is skipped and counted; a torn tail is newline-terminated when
//!   the file is opened so later appends start on a fresh line.
//! * **Replay.** At [`AuditWriter::start`] (before the tasks start) and then every
//!   `replay_interval` while the file is not empty, the spill task streams the file into
//!   the sink in batches and truncates it once everything was accepted. If a batch fails,
//!   the pass stops and the file is kept; the next pass starts again from the top, which
//!   is safe because inserts are idempotent on `request_id`. Overflow keeps being appended
//!   between replay batches (and is replayed in the same pass).
//! * **Poison records.** If a replay batch fails while the sink demonstrably accepts other
//!   writes (a probe rewrites a record it accepted before), the batch is bisected; records
//!   refused alone, twice, are moved to `<spill_dir>/audit-rejected.ndjson` (same format)
//!   and counted as `rejected`, so one bad row cannot block the backlog forever.
//! * **Transient failures.** A [`SinkError::unavailable`] (database down, locked, busy) or a
//!   timeout never triggers the poison bisection: the replay pass stops and waits.
//! * **Flush and shutdown.** [`AuditWriterHandle::flush`] sends a barrier through the
//!   queue and then the spill channel (both FIFO), so it returns once every record sent
//!   before it was written or spilled. [`AuditWriterHandle::shutdown`] closes the queue
//!   (later sends overflow to the spill task), drains it into the sink (spilling what the
//!   sink refuses), appends the remaining overflow, `fsync`s the spill file and returns the
//!   final [`AuditStats`]. A record sent after shutdown is appended to the spill file
//!   synchronously (blocking I/O, logged) and replayed at the next start.
//! * **Nothing silently lost.** A record is only counted `dropped` (with an error log) if
//!   it can be neither written nor appended to the spill file, e.g. a full disk at shutdown
//!   while the database is also down. Records the spill file refuses while running are kept
//!   in memory and retried every `replay_interval` (file first, then the sink).
//!
//! Both tasks run on a [`tokio_util::task::TaskTracker`] owned by the handle. If the handle
//! is dropped without `shutdown`, they keep running until every [`AuditSender`] is gone.
//!
//! Metrics (all `fastgate_audit_*`) are listed in [`metric`].

mod journal;
mod journal_codec;
mod maintenance;
mod packed;
mod record;
mod sink;
mod spill;
mod stats;
#[doc(hidden)]
pub mod testing;
mod worker;
mod writer;

pub use journal::{JOURNAL_PREFIX, JOURNAL_SUFFIX};
pub use packed::{AsAuditRef, PackedRecord};
pub use record::{AuditFilter, AuditRecord, AuditRecordRef, SortOrder};
pub use sink::{AuditSink, SinkError};
pub use spill::{REJECTED_FILE_NAME, SPILL_FILE_NAME};
pub use stats::{AuditStats, metric};
#[doc(hidden)]
pub use testing::sample_record;
pub use writer::{
    AuditConfig, AuditError, AuditSender, AuditTuning, AuditWriter, AuditWriterHandle,
};
