//! The crash journal: every record is appended here, on the request path, before it is
//! queued, so that a record survives a crash of the process (`kill -9`, OOM kill, panic
//! abort) that loses the in-memory queue.
//!
//! * **Format.** Segment files `<spill_dir>/audit-journal-<seq>.log` holding checksummed
//!   binary frames (see `journal_codec`: a flat copy of the fields, much cheaper to make
//!   than JSON). A record is one frame written with a single `write(2)` on a file opened
//!   with `O_APPEND`: the kernel appends it atomically with respect to other appenders of
//!   the same file, so frames from concurrent requests never interleave, and no lock is
//!   taken (`&File` implements `Write`). There is no `fsync`:
//!   once `write` returns, the line is in the page cache and survives the death of the
//!   process, not a power loss or a kernel crash (see `docs/security.md`).
//! * **Rotation.** The maintenance task swaps in a new segment when the current one is
//!   older than `journal_rotate_interval` or larger than `journal_rotate_bytes`. The old
//!   segment is deleted only when (1) no sender still holds it — a sender holds an
//!   `Arc` to the segment from the moment it loads it until its record is in the queue
//!   or the overflow channel, so once the segment's strong count is 1 every record in it
//!   has been handed over — and (2) a flush barrier sent after that point came back
//!   clean: every record handed over before it is in the database or fsynced in the
//!   spill file.
//! * **Recovery.** At start, segments left by a previous run are read (damaged lines are
//!   skipped and counted), their records appended to the spill file (fsynced) and the
//!   segments deleted; the spill replay then inserts them. Most of them are usually in
//!   the database already: inserts are idempotent on the gateway's `request_id`.

use std::cell::RefCell;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;

use crate::AuditRecordRef;
use crate::journal_codec::{self, Frames};
use crate::spill::{self, SpillFile};
use crate::stats::Counters;

/// File name prefix of journal segments.
pub const JOURNAL_PREFIX: &str = "audit-journal-";
/// File name suffix of journal segments.
pub const JOURNAL_SUFFIX: &str = ".log";

/// Records copied from a leftover segment to the spill file per append.
const RECOVER_CHUNK: usize = 4096;
/// A thread's line buffer is given back to the allocator when a record made it larger.
const KEEP_BUFFER: usize = 64 * 1024;

thread_local! {
    static LINE: RefCell<Vec<u8>> = RefCell::new(Vec::with_capacity(4096));
}

/// One journal segment file.
pub(crate) struct Segment {
    seq: u64,
    path: PathBuf,
    file: std::fs::File,
    created: Instant,
}

impl Segment {
    fn create(dir: &Path, seq: u64) -> io::Result<Self> {
        let path = dir.join(segment_name(seq));
        let mut options = std::fs::OpenOptions::new();
        options.create(true).append(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let file = options.open(&path)?;
        spill::restrict_file(&file.metadata()?, &path)?;
        Ok(Self {
            seq,
            path,
            file,
            created: Instant::now(),
        })
    }

    fn len(&self) -> u64 {
        self.file.metadata().map_or(0, |m| m.len())
    }
}

fn segment_name(seq: u64) -> String {
    format!("{JOURNAL_PREFIX}{seq:020}{JOURNAL_SUFFIX}")
}

fn parse_segment_name(name: &str) -> Option<u64> {
    name.strip_prefix(JOURNAL_PREFIX)?
        .strip_suffix(JOURNAL_SUFFIX)?
        .parse()
        .ok()
}

/// The journal shared by every sender.
pub(crate) struct Journal {
    dir: PathBuf,
    current: ArcSwapOption<Segment>,
    next_seq: AtomicU64,
    /// Rotated out, waiting for their deletion (maintenance task and shutdown only).
    retired: Mutex<Vec<Arc<Segment>>>,
    /// The last append failed (for logging transitions only).
    failing: AtomicBool,
}

impl Journal {
    /// Open a fresh segment numbered `first_seq` in `dir` (which must exist).
    pub(crate) fn open(dir: &Path, first_seq: u64) -> io::Result<Self> {
        let first = Segment::create(dir, first_seq)?;
        Ok(Self {
            dir: dir.to_path_buf(),
            current: ArcSwapOption::from_pointee(first),
            next_seq: AtomicU64::new(first_seq.saturating_add(1)),
            retired: Mutex::new(Vec::new()),
            failing: AtomicBool::new(false),
        })
    }

    /// Append `record` with one `write`. Returns the segment, which the caller must keep
    /// until the record is in the queue or the overflow channel. `None` once closed.
    pub(crate) fn append(
        &self,
        record: &AuditRecordRef<'_>,
        counters: &Counters,
    ) -> Option<Arc<Segment>> {
        let segment = self.current.load_full()?;
        let written = LINE
            .try_with(|cell| match cell.try_borrow_mut() {
                Ok(mut buf) => {
                    buf.clear();
                    let result = write_line(&segment.file, record, &mut buf);
                    if buf.capacity() > KEEP_BUFFER {
                        *buf = Vec::with_capacity(4096);
                    }
                    result
                }
                Err(_) => write_line(&segment.file, record, &mut Vec::new()),
            })
            .unwrap_or_else(|_| write_line(&segment.file, record, &mut Vec::new()));
        match written {
            Ok(()) => {
                if self.failing.load(Ordering::Relaxed)
                    && self.failing.swap(false, Ordering::Relaxed)
                {
                    tracing::info!("audit journal writable again");
                }
            }
            Err(err) => {
                counters.journal_error();
                if !self.failing.swap(true, Ordering::Relaxed) {
                    tracing::error!(error = %err, path = %segment.path.display(), "cannot append to the audit journal: records are not protected against a crash until it works again");
                }
            }
        }
        Some(segment)
    }

    /// Age and size of the current segment.
    pub(crate) fn current_state(&self) -> Option<(Duration, u64)> {
        let segment = self.current.load_full()?;
        Some((segment.created.elapsed(), segment.len()))
    }

    /// Swap in a new segment; the old one joins the retired list.
    pub(crate) fn rotate(&self) -> io::Result<()> {
        let seq = self.next_seq.fetch_add(1, Ordering::Relaxed);
        let fresh = Arc::new(Segment::create(&self.dir, seq)?);
        if let Some(old) = self.current.swap(Some(fresh)) {
            self.retired_list().push(old);
        }
        Ok(())
    }

    /// Stop journaling (shutdown); the last segment joins the retired list.
    pub(crate) fn close(&self) {
        if let Some(old) = self.current.swap(None) {
            self.retired_list().push(old);
        }
    }

    fn retired_list(&self) -> std::sync::MutexGuard<'_, Vec<Arc<Segment>>> {
        self.retired.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Take the retired segments (to delete them after a barrier).
    pub(crate) fn take_retired(&self) -> Vec<Arc<Segment>> {
        std::mem::take(&mut *self.retired_list())
    }

    /// Give back segments that could not be deleted yet.
    pub(crate) fn give_back(&self, mut segments: Vec<Arc<Segment>>) {
        let mut list = self.retired_list();
        segments.append(&mut list);
        segments.sort_by_key(|s| s.seq);
        *list = segments;
    }

    /// Bytes in every segment still on disk.
    pub(crate) fn bytes(&self) -> u64 {
        let current = self.current.load_full().map_or(0, |s| s.len());
        current + self.retired_list().iter().map(|s| s.len()).sum::<u64>()
    }

    /// Delete segments whose records are all accounted for.
    pub(crate) fn delete(&self, segments: &[Arc<Segment>]) {
        for segment in segments {
            if let Err(err) = std::fs::remove_file(&segment.path)
                && err.kind() != io::ErrorKind::NotFound
            {
                tracing::warn!(error = %err, path = %segment.path.display(), "cannot delete an audit journal segment; it will be replayed at the next start");
            }
        }
    }
}

/// Wait until no sender holds any of `segments` (each then has a strong count of 1: ours).
/// Senders hold a segment only for the few instructions between loading it and queueing
/// their record, so this is short; gives up (false) after `limit`.
pub(crate) async fn quiesce(segments: &[Arc<Segment>], limit: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if segments.iter().all(|s| Arc::strong_count(s) == 1) {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

fn write_line(
    file: &std::fs::File,
    record: &AuditRecordRef<'_>,
    buf: &mut Vec<u8>,
) -> io::Result<()> {
    journal_codec::encode(record, buf);
    // One write(2) for the whole frame (O_APPEND): a short write happens only when the
    // disk is full, and then the frame is torn and its checksum fails at recovery.
    let mut out = file;
    out.write_all(buf)
}

/// Segments in `dir` left by an earlier run, oldest first.
pub(crate) fn leftovers(dir: &Path) -> io::Result<Vec<(u64, PathBuf)>> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if let Some(seq) = entry.file_name().to_str().and_then(parse_segment_name) {
            found.push((seq, entry.path()));
        }
    }
    found.sort();
    Ok(found)
}

/// What recovery found.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Recovered {
    pub(crate) records: u64,
    pub(crate) corrupt: u64,
    /// Highest segment number seen (new segments are numbered after it).
    pub(crate) last_seq: u64,
}

/// Move the records of leftover segments into the spill file (fsynced), then delete the
/// segments. A segment is deleted only after its records are durable in the spill file.
pub(crate) async fn recover(dir: &Path, spill: &mut SpillFile) -> io::Result<Recovered> {
    let mut out = Recovered::default();
    for (seq, path) in leftovers(dir)? {
        out.last_seq = out.last_seq.max(seq);
        // Segments are bounded by the rotation (`journal_rotate_bytes` plus what arrives
        // until the next check), so one is read whole.
        let data = tokio::fs::read(&path).await?;
        let mut frames = Frames::new(&data);
        let mut batch = Vec::with_capacity(RECOVER_CHUNK);
        for record in frames.by_ref() {
            batch.push(record);
            if batch.len() >= RECOVER_CHUNK {
                spill.append(&batch).await?;
                out.records += batch.len() as u64;
                batch.clear();
            }
        }
        if !batch.is_empty() {
            spill.append(&batch).await?;
            out.records += batch.len() as u64;
        }
        out.corrupt += frames.corrupt;
        std::fs::remove_file(&path)?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::sample_record;

    #[test]
    fn segment_names_round_trip() {
        assert_eq!(parse_segment_name(&segment_name(42)), Some(42));
        assert_eq!(parse_segment_name("audit-journal-x.log"), None);
        assert_eq!(parse_segment_name("audit-spill.ndjson"), None);
        assert!(segment_name(1) < segment_name(10));
    }

    #[tokio::test]
    async fn appends_are_whole_lines_and_recovery_moves_them_to_the_spill_file() {
        let dir = tempfile::tempdir().unwrap();
        let counters = Counters::default();
        let journal = Journal::open(dir.path(), 7).unwrap();
        let held = journal
            .append(&sample_record("a").view(), &counters)
            .unwrap();
        assert_eq!(Arc::strong_count(&held), 2);
        drop(held);
        journal.rotate().unwrap();
        drop(journal.append(&sample_record("b").view(), &counters));
        assert_eq!(journal.take_retired().len(), 1);
        // Simulate a torn last line (power loss) in the newest segment.
        let newest = dir.path().join(segment_name(8));
        let mut torn = Vec::new();
        crate::journal_codec::encode(&sample_record("c").view(), &mut torn);
        torn.truncate(torn.len() / 2);
        std::fs::OpenOptions::new()
            .append(true)
            .open(&newest)
            .unwrap()
            .write_all(&torn)
            .unwrap();
        drop(journal);

        let mut spill_file = SpillFile::open(dir.path(), spill::SPILL_FILE_NAME)
            .await
            .unwrap();
        let found = recover(dir.path(), &mut spill_file).await.unwrap();
        assert_eq!(
            found,
            Recovered {
                records: 2,
                corrupt: 1,
                last_seq: 8
            }
        );
        assert!(leftovers(dir.path()).unwrap().is_empty());
        let mut reader = spill_file.reader().await.unwrap();
        let mut ids = Vec::new();
        while let Some(line) = reader.next_line().await.unwrap() {
            ids.push(spill::decode_line(line).unwrap().request_id);
        }
        assert_eq!(ids, ["a", "b"]);
        assert_eq!(counters.snapshot().journal_errors, 0);
    }

    #[cfg(unix)]
    #[test]
    fn segments_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let journal = Journal::open(dir.path(), 1).unwrap();
        let mode = std::fs::metadata(dir.path().join(segment_name(1)))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        drop(journal);
    }

    #[tokio::test]
    async fn quiesce_waits_for_holders() {
        let dir = tempfile::tempdir().unwrap();
        let segment = Arc::new(Segment::create(dir.path(), 1).unwrap());
        let holder = Arc::clone(&segment);
        assert!(!quiesce(std::slice::from_ref(&segment), Duration::from_millis(5)).await);
        drop(holder);
        assert!(quiesce(std::slice::from_ref(&segment), Duration::from_millis(5)).await);
    }
}
