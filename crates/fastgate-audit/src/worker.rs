//! The two writer tasks: the batcher (queue -> sink) and the spill worker (overflow and
//! failed batches -> spill file -> replay into the sink).

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use crate::spill::{self, SpillFile};
use crate::stats::{Counters, metric, report_depth, report_spill_bytes};
use crate::writer::{AuditConfig, AuditTuning, Msg, SpillMsg};
use crate::{AuditSink, PackedRecord};

/// Most records the spill worker appends with one write.
const MAX_APPEND: usize = 4096;

/// What both tasks share: the sink, timing and counters.
pub(crate) struct Ctx {
    sink: Arc<dyn AuditSink>,
    tuning: AuditTuning,
    batch_size: usize,
    flush_interval: Duration,
    pub(crate) counters: Arc<Counters>,
    /// Result of the last sink call (for logging transitions only).
    healthy: AtomicBool,
    /// A record the sink accepted recently: rewriting it (idempotent) probes the sink.
    last_good: Mutex<Option<PackedRecord>>,
}

/// A sink call failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Failure {
    /// The sink refused the batch (perhaps because of one record in it).
    Error,
    /// The sink is down or locked: the records are fine.
    Unavailable,
    Timeout,
}

impl Ctx {
    pub(crate) fn new(
        sink: Arc<dyn AuditSink>,
        tuning: AuditTuning,
        cfg: &AuditConfig,
        counters: Arc<Counters>,
    ) -> Self {
        Self {
            sink,
            tuning,
            batch_size: cfg.batch_size,
            flush_interval: cfg.flush_interval,
            counters,
            healthy: AtomicBool::new(true),
            last_good: Mutex::new(None),
        }
    }

    /// One sink call with the timeout, timed and counted.
    async fn attempt(&self, rows: &[PackedRecord]) -> Result<u64, Failure> {
        let started = Instant::now();
        let result =
            tokio::time::timeout(self.tuning.sink_timeout, self.sink.write_batch(rows)).await;
        metrics::histogram!(metric::BATCH_SECONDS).record(started.elapsed().as_secs_f64());
        let (failure, message) = match result {
            Ok(Ok(inserted)) => {
                if !self.healthy.swap(true, Ordering::Relaxed) {
                    tracing::info!("audit sink recovered");
                }
                if let Some(last) = rows.last() {
                    *self
                        .last_good
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner) = Some(last.clone());
                }
                return Ok(inserted);
            }
            Ok(Err(err)) => {
                let kind = if err.is_unavailable() {
                    Failure::Unavailable
                } else {
                    Failure::Error
                };
                (kind, err.message().to_owned())
            }
            Err(_) => (Failure::Timeout, "timed out".to_owned()),
        };
        self.counters.failure();
        if self.healthy.swap(false, Ordering::Relaxed) {
            tracing::warn!(error = %message, rows = rows.len(), "audit sink failing; spilling to disk");
        } else {
            tracing::debug!(error = %message, rows = rows.len(), "audit sink call failed");
        }
        Err(failure)
    }

    /// Is the sink up right now? Rewrites a record it accepted before (idempotent). Without
    /// such a record there is no evidence, so: no.
    async fn probe(&self) -> bool {
        let last = self
            .last_good
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        match last {
            Some(record) => self.attempt(std::slice::from_ref(&record)).await.is_ok(),
            None => false,
        }
    }

    /// A live batch: a few quick attempts with exponential backoff. A timeout is not
    /// retried (the database is slow; the spill file is the faster place).
    async fn write_with_retry(&self, rows: &[PackedRecord]) -> bool {
        let mut delay = self.tuning.retry_base_delay;
        for attempt in 1..=self.tuning.max_attempts {
            match self.attempt(rows).await {
                Ok(_) => return true,
                Err(Failure::Timeout) => return false,
                Err(Failure::Error | Failure::Unavailable)
                    if attempt < self.tuning.max_attempts =>
                {
                    tokio::time::sleep(delay).await;
                    delay = delay.saturating_mul(2);
                }
                Err(Failure::Error | Failure::Unavailable) => {}
            }
        }
        false
    }
}

struct Batcher {
    ctx: Arc<Ctx>,
    spill_tx: mpsc::UnboundedSender<SpillMsg>,
    batch: Vec<PackedRecord>,
    /// When the current batch must be written even if not full.
    deadline: Option<Instant>,
    /// Lazy barriers waiting for the current batch to be delivered.
    waiting: Vec<oneshot::Sender<bool>>,
}

impl Batcher {
    async fn take(&mut self, msg: Msg) {
        match msg {
            Msg::Record(record) => {
                if self.batch.is_empty() {
                    self.deadline = Some(Instant::now() + self.ctx.flush_interval);
                    self.ctx
                        .counters
                        .set_batch_oldest(record.view().completed_ms());
                }
                self.batch.push(record);
                if self.batch.len() >= self.ctx.batch_size {
                    self.deliver().await;
                }
            }
            Msg::Flush(ack) => {
                self.deliver().await;
                // Failed batches are ahead of the barrier in the spill queue.
                let _ = self.spill_tx.send(SpillMsg::Flush(ack));
            }
            Msg::Sync(ack) => {
                if self.batch.is_empty() {
                    let _ = self.spill_tx.send(SpillMsg::Flush(ack));
                } else {
                    self.waiting.push(ack);
                }
            }
        }
    }

    /// Write the current batch, or hand it to the spill worker.
    async fn deliver(&mut self) {
        self.deadline = None;
        if self.batch.is_empty() {
            self.release_waiting();
            return;
        }
        let batch = std::mem::replace(&mut self.batch, Vec::with_capacity(self.ctx.batch_size));
        if self.ctx.write_with_retry(&batch).await {
            self.ctx.counters.written(batch.len());
        } else if let Err(mpsc::error::SendError(SpillMsg::Failed(batch))) =
            self.spill_tx.send(SpillMsg::Failed(batch))
        {
            // Unreachable in practice: the spill worker outlives the batcher.
            self.ctx.counters.dropped(batch.len());
            tracing::error!(rows = batch.len(), "audit batch lost: spill worker gone");
        }
        self.ctx.counters.set_batch_oldest(0);
        self.release_waiting();
    }

    /// The batch the lazy barriers waited for is delivered: pass them on to the spill
    /// worker (behind any failed batch).
    fn release_waiting(&mut self) {
        for ack in self.waiting.drain(..) {
            let _ = self.spill_tx.send(SpillMsg::Flush(ack));
        }
    }
}

/// How long a partly filled batch waits before the queue is read again. Reading
/// the queue in gulps rather than waking for every record keeps the writer from
/// competing with the request path for the CPU (one wake-up per record cost more
/// than the rest of the writer's work at a few thousand records a second).
const GATHER_PAUSE: Duration = Duration::from_millis(5);

/// Queue -> batches -> sink. On `cancel`: close the queue, drain it, write what is left.
///
/// With an empty batch the task waits for the next message; once a batch has
/// started it reads whatever has queued up every [`GATHER_PAUSE`] (or at the
/// batch's deadline, if sooner), delivering as soon as it is full.
pub(crate) async fn run_batcher(
    ctx: Arc<Ctx>,
    mut rx: mpsc::Receiver<Msg>,
    spill_tx: mpsc::UnboundedSender<SpillMsg>,
    cancel: CancellationToken,
) {
    let batch_size = ctx.batch_size;
    let mut b = Batcher {
        ctx,
        spill_tx,
        batch: Vec::with_capacity(batch_size),
        deadline: None,
        waiting: Vec::new(),
    };
    let mut gulp = Vec::with_capacity(batch_size.min(4096));
    b.ctx.counters.queue_depth_seen(0);
    loop {
        match b.deadline {
            None => {
                tokio::select! {
                    biased;
                    () = cancel.cancelled() => break,
                    msg = rx.recv() => match msg {
                        Some(msg) => b.take(msg).await,
                        None => break,
                    },
                }
            }
            Some(deadline) => {
                let pause = (Instant::now() + GATHER_PAUSE).min(deadline);
                tokio::select! {
                    biased;
                    () = cancel.cancelled() => break,
                    () = tokio::time::sleep_until(pause) => {}
                }
                if Instant::now() >= deadline {
                    b.deliver().await;
                }
            }
        }
        // Everything that queued up meanwhile, in batch-sized gulps.
        b.ctx
            .counters
            .queue_depth_seen(rx.len() + overflow_pending(&b.ctx));
        loop {
            let room = batch_size.saturating_sub(b.batch.len()).max(1);
            while gulp.len() < room {
                match rx.try_recv() {
                    Ok(msg) => gulp.push(msg),
                    Err(_) => break,
                }
            }
            if gulp.is_empty() {
                break;
            }
            for msg in gulp.drain(..) {
                b.take(msg).await;
            }
            if cancel.is_cancelled() {
                break;
            }
        }
        if b.batch.is_empty() {
            report_depth(rx.len() + overflow_pending(&b.ctx));
        }
    }
    rx.close();
    while let Some(msg) = rx.recv().await {
        b.take(msg).await;
    }
    b.deliver().await;
}

fn overflow_pending(ctx: &Ctx) -> usize {
    usize::try_from(ctx.counters.overflow_pending()).unwrap_or(usize::MAX)
}

/// Owns the spill file: appends overflow records and failed batches, replays the file into
/// the sink every `replay_interval` while it is not empty, quarantines poison records.
pub(crate) struct SpillWorker {
    ctx: Arc<Ctx>,
    file: SpillFile,
    rejected_path: PathBuf,
    rx: mpsc::UnboundedReceiver<SpillMsg>,
    /// Records the spill file would not take (disk full?), retried on every tick.
    stuck: Vec<PackedRecord>,
}

impl SpillWorker {
    pub(crate) fn new(
        ctx: Arc<Ctx>,
        file: SpillFile,
        rejected_path: PathBuf,
        rx: mpsc::UnboundedReceiver<SpillMsg>,
    ) -> Self {
        report_spill_bytes(file.len());
        if !file.is_empty() {
            // Unknown age: count from now.
            ctx.counters
                .spill_holds(chrono::Utc::now().timestamp_millis());
        }
        Self {
            ctx,
            file,
            rejected_path,
            rx,
            stuck: Vec::new(),
        }
    }

    pub(crate) fn spill_is_empty(&self) -> bool {
        self.file.is_empty()
    }

    /// Runs until the batcher has finished (after `cancel`) or every sender is gone, then
    /// appends what is still queued and fsyncs the file.
    pub(crate) async fn run(mut self, cancel: CancellationToken, batcher_done: CancellationToken) {
        let every = self.ctx.tuning.replay_interval;
        let mut tick = tokio::time::interval_at(Instant::now() + every, every);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                biased;
                () = batcher_done.cancelled() => break,
                msg = self.rx.recv() => match msg {
                    Some(msg) => self.absorb(msg).await,
                    None => break,
                },
                _ = tick.tick() => {
                    if !cancel.is_cancelled() {
                        self.retry_stuck().await;
                        if !self.file.is_empty() {
                            self.replay(Some(&cancel)).await;
                        }
                    }
                }
            }
        }
        self.rx.close();
        while let Some(msg) = self.rx.recv().await {
            self.absorb(msg).await;
        }
        self.retry_stuck().await;
        if !self.stuck.is_empty() {
            self.ctx.counters.dropped(self.stuck.len());
            tracing::error!(
                rows = self.stuck.len(),
                "audit records lost at shutdown: spill file not writable and sink failing"
            );
        }
        if let Err(err) = self.file.sync_all().await {
            tracing::error!(error = %err, "audit spill file fsync failed at shutdown");
        }
    }

    /// Append `first` and whatever else is ready, then answer the flush barriers among them.
    async fn absorb(&mut self, first: SpillMsg) {
        let mut records = Vec::new();
        let mut acks: Vec<oneshot::Sender<bool>> = Vec::new();
        let mut overflow = 0u64;
        let mut next = Some(first);
        while let Some(msg) = next {
            match msg {
                SpillMsg::Overflow(record) => {
                    overflow += 1;
                    records.push(record);
                }
                SpillMsg::Failed(batch) => records.extend(batch),
                SpillMsg::Flush(ack) => acks.push(ack),
            }
            if records.len() >= MAX_APPEND {
                break;
            }
            next = self.rx.try_recv().ok();
        }
        self.persist(records).await;
        self.ctx.counters.overflow_leave(overflow);
        let durable = self.stuck.is_empty();
        for ack in acks {
            let _ = ack.send(durable);
        }
    }

    /// Absorb every message already waiting (between replay batches).
    async fn absorb_ready(&mut self) {
        while let Ok(msg) = self.rx.try_recv() {
            self.absorb(msg).await;
        }
    }

    async fn persist(&mut self, records: Vec<PackedRecord>) {
        if records.is_empty() {
            return;
        }
        match self.file.append(&records).await {
            Ok(()) => {
                self.ctx.counters.spilled(records.len());
                report_spill_bytes(self.file.len());
                self.note_oldest(&records);
            }
            Err(err) => {
                tracing::error!(error = %err, rows = records.len(), path = %self.file.path().display(), "cannot append to the audit spill file; keeping records in memory");
                self.stuck.extend(records);
            }
        }
    }

    fn note_oldest(&self, records: &[PackedRecord]) {
        if let Some(oldest) = records.iter().map(|r| r.view().completed_ms()).min() {
            self.ctx.counters.spill_holds(oldest);
        }
    }

    /// Records the file refused earlier: try the file again, then the sink.
    async fn retry_stuck(&mut self) {
        if self.stuck.is_empty() {
            return;
        }
        let stuck = std::mem::take(&mut self.stuck);
        if self.file.append(&stuck).await.is_ok() {
            self.ctx.counters.spilled(stuck.len());
            report_spill_bytes(self.file.len());
            self.note_oldest(&stuck);
            return;
        }
        let mut left = Vec::new();
        for chunk in stuck.chunks(self.ctx.batch_size) {
            if self.ctx.attempt(chunk).await.is_ok() {
                self.ctx.counters.written(chunk.len());
            } else {
                left.extend_from_slice(chunk);
            }
        }
        self.stuck = left;
    }

    /// Replay the whole spill file into the sink in batches, then truncate it. Stops at
    /// the first batch the sink will not take (the file is kept; a later pass resends
    /// from the start, which is idempotent). Returns whether the file was emptied.
    pub(crate) async fn replay(&mut self, cancel: Option<&CancellationToken>) -> bool {
        let mut reader = match self.file.reader().await {
            Ok(reader) => reader,
            Err(err) => {
                tracing::warn!(error = %err, "cannot read the audit spill file");
                return false;
            }
        };
        let batch_size = self.ctx.batch_size;
        let mut batch = Vec::with_capacity(batch_size);
        let (mut replayed, mut corrupt) = (0u64, 0u64);
        // Evidence, within this pass, that the sink is up (needed to call a record poison).
        let mut sink_up = false;
        loop {
            let eof = match reader.next_line().await {
                Ok(Some(line)) => {
                    match spill::decode_line(line) {
                        Ok(record) => batch.push(PackedRecord::from(&record)),
                        Err(_) => corrupt += 1,
                    }
                    false
                }
                Ok(None) => true,
                Err(err) => {
                    tracing::warn!(error = %err, "cannot read the audit spill file");
                    return false;
                }
            };
            if batch.len() >= batch_size || (eof && !batch.is_empty()) {
                if cancel.is_some_and(CancellationToken::is_cancelled) {
                    return false;
                }
                let result = self.ctx.attempt(&batch).await;
                if result.is_ok() {
                    sink_up = true;
                    replayed += batch.len() as u64;
                    batch.clear();
                } else if matches!(result, Err(Failure::Timeout | Failure::Unavailable)) {
                    // Down, locked, slow or hung, not a poison record: try again next pass.
                    return false;
                } else {
                    let failed = std::mem::replace(&mut batch, Vec::with_capacity(batch_size));
                    match self.isolate_poison(failed, &mut sink_up).await {
                        Some(written) => replayed += written,
                        None => return false,
                    }
                }
                if !eof {
                    // Keep overflow moving during a long replay; appended lines are read
                    // later in this same pass.
                    self.absorb_ready().await;
                }
            }
            if eof {
                break;
            }
        }
        // Nothing was appended since the last read returned end-of-file (this task is the
        // only writer), so truncating loses nothing.
        if let Err(err) = self.file.truncate().await {
            tracing::warn!(error = %err, "cannot truncate the audit spill file; it will be replayed again");
            return false;
        }
        report_spill_bytes(0);
        self.ctx.counters.spill_emptied();
        self.ctx.counters.replayed(replayed);
        self.ctx.counters.corrupt(corrupt);
        if corrupt > 0 {
            tracing::warn!(
                skipped = corrupt,
                "skipped damaged lines in the audit spill file"
            );
        }
        tracing::info!(rows = replayed, "audit spill file replayed");
        true
    }

    /// The sink refused a replay batch. Bisect it: records the sink keeps refusing alone
    /// while it demonstrably accepts others are poison and go to the quarantine file
    /// (counted as rejected, kept for an operator, never lost). Returns how many records
    /// were written, or `None` if the sink looks down (give up until the next pass).
    async fn isolate_poison(
        &mut self,
        batch: Vec<PackedRecord>,
        sink_up: &mut bool,
    ) -> Option<u64> {
        let mut written = 0u64;
        let mut suspects: Vec<PackedRecord> = Vec::new();
        let mut stack: Vec<Vec<PackedRecord>> = Vec::new();
        push_halves(&mut stack, batch);
        while let Some(group) = stack.pop() {
            let result = self.ctx.attempt(&group).await;
            if result.is_ok() {
                *sink_up = true;
                written += group.len() as u64;
            } else if matches!(result, Err(Failure::Timeout | Failure::Unavailable)) {
                return None;
            } else if group.len() > 1 {
                push_halves(&mut stack, group);
            } else {
                if !*sink_up && !suspects.is_empty() {
                    // Two records refused alone and nothing accepted: ask a known-good
                    // record whether the sink is up at all.
                    *sink_up = self.ctx.probe().await;
                    if !*sink_up {
                        return None;
                    }
                }
                suspects.extend(group);
            }
        }
        if !*sink_up && !self.ctx.probe().await {
            return None;
        }
        *sink_up = true;
        // A second chance, so that a blip during the bisection cannot quarantine.
        let mut rejected = Vec::new();
        for record in suspects {
            if self
                .ctx
                .attempt(std::slice::from_ref(&record))
                .await
                .is_ok()
            {
                written += 1;
            } else {
                rejected.push(record);
            }
        }
        // Quarantine only if the sink is still up right now.
        if !rejected.is_empty() {
            let up = self.ctx.probe().await;
            if !up || !self.quarantine(&rejected).await {
                return None;
            }
        }
        Some(written)
    }

    async fn quarantine(&mut self, rejected: &[PackedRecord]) -> bool {
        let dir = self
            .rejected_path
            .parent()
            .map(PathBuf::from)
            .unwrap_or_default();
        let name = self
            .rejected_path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or(spill::REJECTED_FILE_NAME)
            .to_owned();
        let result = match SpillFile::open(&dir, &name).await {
            Ok(mut file) => file.append(rejected).await,
            Err(err) => Err(err),
        };
        match result {
            Ok(()) => {
                self.ctx.counters.rejected(rejected.len());
                let ids: Vec<&str> = rejected.iter().map(|r| r.view().request_id).collect();
                tracing::error!(?ids, path = %self.rejected_path.display(), "audit sink rejects these records; moved to quarantine");
                true
            }
            Err(err) => {
                tracing::error!(error = %err, "cannot write the audit quarantine file");
                false
            }
        }
    }
}

fn push_halves(stack: &mut Vec<Vec<PackedRecord>>, mut group: Vec<PackedRecord>) {
    if group.len() <= 1 {
        stack.push(group);
        return;
    }
    let right = group.split_off(group.len() / 2);
    // Left half is popped first.
    stack.push(right);
    stack.push(group);
}
