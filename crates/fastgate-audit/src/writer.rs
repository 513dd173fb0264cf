//! The public face of the audit writer: configuration, the request-path sender and the
//! handle that flushes and shuts the writer down. See the crate docs for the design.

use std::io;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::journal::{self, Journal};
use crate::maintenance;
use crate::spill::{self, REJECTED_FILE_NAME, SPILL_FILE_NAME, SpillFile};
use crate::stats::{AuditStats, Counters, report_depth, report_journal_bytes};
use crate::worker::{self, Ctx, SpillWorker};
use crate::{AuditRecord, AuditRecordRef, AuditSink, PackedRecord};

/// Writer settings.
#[derive(Debug, Clone)]
pub struct AuditConfig {
    /// Capacity of the bounded in-memory queue between the request path and the writer.
    pub queue_capacity: usize,
    /// Most records per sink call.
    pub batch_size: usize,
    /// Longest a record waits for its batch to fill before the batch is written anyway.
    pub flush_interval: Duration,
    /// Directory of the spill file (`audit-spill.ndjson`) and of the journal segments;
    /// created (mode 0700) if missing.
    pub spill_dir: PathBuf,
    /// Append every record to the crash journal before queueing it (see the crate docs).
    pub journal: bool,
}

/// Retry and replay timing. The defaults suit production; tests shorten them.
#[derive(Debug, Clone)]
pub struct AuditTuning {
    /// Sink calls per live batch before it is spilled (at least 1).
    pub max_attempts: u32,
    /// Wait before the first retry; doubled for each further retry.
    pub retry_base_delay: Duration,
    /// A sink call taking longer than this counts as failed (and is not retried: the batch
    /// is spilled at once, so a hung database cannot stall the queue for long).
    pub sink_timeout: Duration,
    /// How often the spill file is replayed while it is not empty.
    pub replay_interval: Duration,
    /// A journal segment older than this (and not empty) is rotated out, then deleted
    /// once its records are in the database or the spill file.
    pub journal_rotate_interval: Duration,
    /// A journal segment larger than this is rotated out at the next check.
    pub journal_rotate_bytes: u64,
}

impl Default for AuditTuning {
    fn default() -> Self {
        Self {
            max_attempts: 3,
            retry_base_delay: Duration::from_millis(50),
            sink_timeout: Duration::from_secs(10),
            replay_interval: Duration::from_secs(5),
            journal_rotate_interval: Duration::from_secs(2),
            journal_rotate_bytes: 16 * 1024 * 1024,
        }
    }
}

/// Starting the writer failed.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("invalid audit config: {0}")]
    Config(&'static str),
    #[error("audit spill file {path}: {source}")]
    Spill {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("audit journal in {path}: {source}")]
    Journal {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// Message on the bounded queue.
#[expect(
    clippy::large_enum_variant,
    reason = "nearly every message is a record; boxing would add an allocation per request"
)]
pub(crate) enum Msg {
    Record(PackedRecord),
    /// Answered once every record queued before it was written or spilled: `true` when
    /// all of them are durable (none is stuck in memory).
    Flush(oneshot::Sender<bool>),
    /// Like `Flush`, without cutting the current batch short: answered once the batch
    /// being collected (holding every record queued before it) is delivered.
    Sync(oneshot::Sender<bool>),
}

/// Message to the spill task.
pub(crate) enum SpillMsg {
    /// A record that found the queue full (or closed).
    Overflow(PackedRecord),
    /// A batch the sink did not take.
    Failed(Vec<PackedRecord>),
    /// Answered once everything before it is in the spill file (`true`), or kept in
    /// memory because the file refused it (`false`).
    Flush(oneshot::Sender<bool>),
}

pub(crate) struct SenderInner {
    tx: mpsc::Sender<Msg>,
    spill_tx: mpsc::UnboundedSender<SpillMsg>,
    pub(crate) counters: Arc<Counters>,
    spill_path: PathBuf,
    /// Serialises the (rare) synchronous appends made after the writer stopped.
    late: Mutex<()>,
    pub(crate) journal: Option<Arc<Journal>>,
}

impl SenderInner {
    /// A barrier through the queue, then the spill channel (both FIFO). Returns `true`
    /// once everything sent before it is in the sink or fsynced in the spill file;
    /// `false` if some of it is only in memory or the writer stopped.
    pub(crate) async fn barrier(&self, lazy: bool) -> bool {
        let (ack, done) = oneshot::channel();
        let msg = if lazy {
            Msg::Sync(ack)
        } else {
            Msg::Flush(ack)
        };
        let ack = match self.tx.send(msg).await {
            Ok(()) => None,
            Err(mpsc::error::SendError(msg)) => match msg {
                Msg::Flush(ack) | Msg::Sync(ack) => Some(ack),
                Msg::Record(_) => None,
            },
        };
        // The queue is closed (shutting down): only the spill task may still hold records.
        if let Some(ack) = ack
            && self.spill_tx.send(SpillMsg::Flush(ack)).is_err()
        {
            return false;
        }
        // An error means the barrier was dropped because the writer stopped.
        done.await.unwrap_or(false)
    }
}

/// Hands audit records to the writer. Cheap to clone; never awaits, never blocks (except
/// for records sent after [`AuditWriterHandle::shutdown`], see the crate docs).
#[derive(Clone)]
pub struct AuditSender {
    inner: Arc<SenderInner>,
}

impl std::fmt::Debug for AuditSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditSender")
            .field("queue_depth", &self.queue_depth())
            .finish()
    }
}

impl AuditSender {
    /// Queue a record. If the queue is full the record takes the overflow path to the spill
    /// file (counted in `fastgate_audit_overflow_total`); it is never silently dropped.
    pub fn send(&self, record: AuditRecord) {
        self.send_ref(&record.view());
    }

    /// Queue a record made of borrowed text (see [`AuditSender::send`]). Its text is
    /// copied into one buffer ([`PackedRecord`]) here, on the caller's thread.
    pub fn send_ref(&self, record: &AuditRecordRef<'_>) {
        // Journal first; the segment is held until the record is queued (or spilled), so
        // that the segment cannot be deleted in between. Dropped at the end of `send_ref`.
        let _held = self
            .inner
            .journal
            .as_ref()
            .and_then(|j| j.append(record, &self.inner.counters));
        let record = PackedRecord::pack(record);
        let record = match self.inner.tx.try_send(Msg::Record(record)) {
            Ok(()) => return,
            Err(err) => match err.into_inner() {
                Msg::Record(record) => record,
                Msg::Flush(_) | Msg::Sync(_) => return,
            },
        };
        let counters = &self.inner.counters;
        counters.overflow_enter();
        match self.inner.spill_tx.send(SpillMsg::Overflow(record)) {
            Ok(()) => {}
            Err(mpsc::error::SendError(msg)) => {
                counters.overflow_leave(1);
                if let SpillMsg::Overflow(record) = msg {
                    self.late_append(&record);
                }
            }
        }
    }

    /// Records waiting in the queue plus overflow records not yet in the spill file.
    pub fn queue_depth(&self) -> usize {
        let tx = &self.inner.tx;
        let queued = tx.max_capacity().saturating_sub(tx.capacity());
        let pending = usize::try_from(self.inner.counters.overflow_pending()).unwrap_or(usize::MAX);
        queued.saturating_add(pending)
    }

    /// The writer has stopped: append straight to the spill file so that the record is
    /// replayed at the next start. Blocking file I/O, only reachable after shutdown.
    fn late_append(&self, record: &PackedRecord) {
        let _guard = self
            .inner
            .late
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let record = record.view();
        match spill::append_blocking(&self.inner.spill_path, &record) {
            Ok(()) => {
                self.inner.counters.spilled(1);
                tracing::warn!(
                    request_id = %record.request_id,
                    "audit record sent after the writer stopped; appended to the spill file"
                );
            }
            Err(err) => {
                self.inner.counters.dropped(1);
                tracing::error!(
                    request_id = %record.request_id,
                    error = %err,
                    "audit record lost: writer stopped and the spill file is not writable"
                );
            }
        }
    }
}

/// Starts the writer.
pub struct AuditWriter;

impl AuditWriter {
    /// Replays any spill file found in `spill_dir` first (idempotent thanks to
    /// `request_id`), then spawns the batch and spill tasks. A sink that is down at start
    /// is not an error: the spill file is kept and replayed later.
    pub async fn start(
        cfg: AuditConfig,
        sink: Arc<dyn AuditSink>,
    ) -> Result<(AuditSender, AuditWriterHandle), AuditError> {
        Self::start_with_tuning(cfg, AuditTuning::default(), sink).await
    }

    /// [`AuditWriter::start`] with explicit retry and replay timing.
    pub async fn start_with_tuning(
        cfg: AuditConfig,
        tuning: AuditTuning,
        sink: Arc<dyn AuditSink>,
    ) -> Result<(AuditSender, AuditWriterHandle), AuditError> {
        check_settings(&cfg, &tuning)?;
        let spill_error = |source| AuditError::Spill {
            path: cfg.spill_dir.join(SPILL_FILE_NAME),
            source,
        };
        let mut file = SpillFile::open(&cfg.spill_dir, SPILL_FILE_NAME)
            .await
            .map_err(spill_error)?;
        let spill_path = file.path().to_path_buf();
        let counters = Arc::new(Counters::default());

        // Journal segments left by a crash go to the spill file first (even with the
        // journal now switched off), so that the replay below inserts them.
        let recovered = recover_journal(&cfg, &mut file, &counters).await?;

        let (tx, rx) = mpsc::channel(cfg.queue_capacity);
        let (spill_tx, spill_rx) = mpsc::unbounded_channel();
        let ctx = Arc::new(Ctx::new(sink, tuning.clone(), &cfg, Arc::clone(&counters)));

        let mut spill_worker = SpillWorker::new(
            Arc::clone(&ctx),
            file,
            cfg.spill_dir.join(REJECTED_FILE_NAME),
            spill_rx,
        );
        if !spill_worker.spill_is_empty() {
            tracing::info!(path = %spill_path.display(), "replaying audit spill file");
            spill_worker.replay(None).await;
        }

        let journal = if cfg.journal {
            let journal = Journal::open(&cfg.spill_dir, recovered.last_seq.saturating_add(1))
                .map_err(|source| AuditError::Journal {
                    path: cfg.spill_dir.clone(),
                    source,
                })?;
            Some(Arc::new(journal))
        } else {
            None
        };

        let cancel = CancellationToken::new();
        let batcher_done = CancellationToken::new();
        let tracker = TaskTracker::new();
        {
            let (ctx, spill_tx, cancel) = (Arc::clone(&ctx), spill_tx.clone(), cancel.clone());
            let done_guard = batcher_done.clone().drop_guard();
            tracker.spawn(async move {
                let _done_guard = done_guard;
                worker::run_batcher(ctx, rx, spill_tx, cancel).await;
            });
        }
        tracker.spawn(spill_worker.run(cancel.clone(), batcher_done));

        let inner = Arc::new(SenderInner {
            tx,
            spill_tx,
            counters: Arc::clone(&counters),
            spill_path,
            late: Mutex::new(()),
            journal,
        });
        tracker.spawn(maintenance::run(
            Arc::downgrade(&inner),
            tuning,
            cancel.clone(),
        ));
        tracker.close();
        let sender = AuditSender {
            inner: Arc::clone(&inner),
        };
        Ok((
            sender,
            AuditWriterHandle {
                inner,
                cancel,
                tracker,
            },
        ))
    }
}

/// Settings the writer cannot run with.
fn check_settings(cfg: &AuditConfig, tuning: &AuditTuning) -> Result<(), AuditError> {
    if cfg.queue_capacity == 0 {
        return Err(AuditError::Config("queue_capacity must be at least 1"));
    }
    if cfg.batch_size == 0 {
        return Err(AuditError::Config("batch_size must be at least 1"));
    }
    if tuning.max_attempts == 0 {
        return Err(AuditError::Config("max_attempts must be at least 1"));
    }
    if tuning.replay_interval.is_zero() || tuning.sink_timeout.is_zero() {
        return Err(AuditError::Config(
            "replay_interval and sink_timeout must be positive",
        ));
    }
    if cfg.journal && (tuning.journal_rotate_interval.is_zero() || tuning.journal_rotate_bytes == 0)
    {
        return Err(AuditError::Config(
            "journal_rotate_interval and journal_rotate_bytes must be positive",
        ));
    }
    Ok(())
}

/// Copy the journal segments a previous run left (a crash) into the spill file.
async fn recover_journal(
    cfg: &AuditConfig,
    file: &mut SpillFile,
    counters: &Counters,
) -> Result<journal::Recovered, AuditError> {
    let recovered = journal::recover(&cfg.spill_dir, file)
        .await
        .map_err(|source| AuditError::Journal {
            path: cfg.spill_dir.clone(),
            source,
        })?;
    if recovered.records > 0 || recovered.corrupt > 0 {
        tracing::warn!(
            records = recovered.records,
            damaged_lines = recovered.corrupt,
            "recovered audit records from the journal of a previous run (a crash?)"
        );
        counters.journal_recovered(recovered.records);
        counters.corrupt(recovered.corrupt);
    }
    Ok(recovered)
}

/// Controls a running writer. Call [`AuditWriterHandle::shutdown`] on the way out; if the
/// handle is merely dropped, the tasks keep running until every [`AuditSender`] is gone
/// and then drain and stop on their own.
#[must_use = "call shutdown() to drain the audit queue on exit"]
pub struct AuditWriterHandle {
    inner: Arc<SenderInner>,
    cancel: CancellationToken,
    tracker: TaskTracker,
}

impl std::fmt::Debug for AuditWriterHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditWriterHandle")
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl AuditWriterHandle {
    /// Graceful: stop accepting, drain the queue into the sink (spilling what it will not
    /// take), fsync the spill file, then return the final stats. Records sent afterwards
    /// are appended to the spill file synchronously.
    pub async fn shutdown(self) -> AuditStats {
        // Stop journaling first and wait for senders still holding the last segment, so
        // that everything in the journal is in the queue before the queue is drained.
        let journal = self.inner.journal.clone();
        if let Some(journal) = &journal {
            journal.close();
        }
        let segments = journal
            .as_ref()
            .map(|j| j.take_retired())
            .unwrap_or_default();
        let quiet = journal::quiesce(&segments, Duration::from_secs(5)).await;
        self.cancel.cancel();
        self.tracker.wait().await;
        report_depth(0);
        let stats = self.stats();
        if let Some(journal) = &journal {
            // The maintenance task may have handed segments back on its way out.
            let mut all = segments;
            all.extend(journal.take_retired());
            if quiet && stats.dropped == 0 {
                journal.delete(&all);
                report_journal_bytes(0);
            } else {
                tracing::warn!(
                    segments = all.len(),
                    "audit journal kept: some records may not have reached the database or the spill file; they will be replayed at the next start"
                );
            }
        }
        tracing::info!(?stats, "audit writer stopped");
        stats
    }

    /// Counters since start.
    pub fn stats(&self) -> AuditStats {
        self.inner.counters.snapshot()
    }

    /// Wait until everything sent before this call has been written or spilled. Returns
    /// early only if the writer has stopped.
    pub async fn flush(&self) {
        self.inner.barrier(false).await;
    }
}
