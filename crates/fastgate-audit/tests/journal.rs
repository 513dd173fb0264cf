//! The crash journal against the in-memory sink: a writer whose runtime dies without a
//! shutdown (the in-process stand-in for `kill -9`) loses nothing when the journal is on;
//! segments are rotated and deleted once their records are durable elsewhere.
#![expect(clippy::unwrap_used, reason = "tests")]

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use fastgate_audit::testing::MemorySink;
use fastgate_audit::{
    AuditConfig, AuditSink, AuditTuning, AuditWriter, JOURNAL_PREFIX, SPILL_FILE_NAME,
    sample_record,
};

const WAIT: Duration = Duration::from_secs(10);

fn config(dir: &Path, journal: bool) -> AuditConfig {
    AuditConfig {
        queue_capacity: 10_000,
        batch_size: 64,
        // Long enough that nothing reaches the sink before the "crash".
        flush_interval: Duration::from_secs(30),
        spill_dir: dir.to_path_buf(),
        journal,
    }
}

fn tuning() -> AuditTuning {
    AuditTuning {
        max_attempts: 2,
        retry_base_delay: Duration::from_millis(1),
        sink_timeout: Duration::from_secs(5),
        replay_interval: Duration::from_millis(30),
        journal_rotate_interval: Duration::from_millis(40),
        journal_rotate_bytes: 1 << 20,
    }
}

async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let started = Instant::now();
    while !cond() {
        assert!(started.elapsed() < WAIT, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn segments(dir: &Path) -> Vec<(String, u64)> {
    let mut out: Vec<(String, u64)> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| {
            let e = e.ok()?;
            let name = e.file_name().to_str()?.to_owned();
            name.starts_with(JOURNAL_PREFIX)
                .then(|| (name, e.metadata().map(|m| m.len()).unwrap_or(0)))
        })
        .collect();
    out.sort();
    out
}

/// Sends `n` records from a writer on its own runtime, then drops that runtime without
/// shutting the writer down: the queue and the batch in memory vanish, as in a crash.
fn run_and_crash(dir: &Path, journal: bool, n: usize) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let sink = Arc::new(MemorySink::new());
    // The database hangs: nothing is written before the crash.
    sink.set_holding(true);
    let handle = rt.block_on(async {
        let dyn_sink: Arc<dyn AuditSink> = Arc::clone(&sink) as _;
        let (sender, handle) =
            AuditWriter::start_with_tuning(config(dir, journal), tuning(), dyn_sink)
                .await
                .unwrap();
        for i in 0..n {
            sender.send(sample_record(&format!("crash-{i:04}")));
        }
        handle
    });
    assert_eq!(sink.len(), 0);
    // No shutdown: the tasks are dropped with the runtime.
    std::mem::forget(handle);
    rt.shutdown_background();
}

/// A new writer (on a fresh runtime) over the same directory, shut down at once.
fn restart_and_count(dir: &Path) -> (Arc<MemorySink>, fastgate_audit::AuditStats) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let sink = Arc::new(MemorySink::new());
        let dyn_sink: Arc<dyn AuditSink> = Arc::clone(&sink) as _;
        let (_sender, handle) =
            AuditWriter::start_with_tuning(config(dir, true), tuning(), dyn_sink)
                .await
                .unwrap();
        let stats = handle.shutdown().await;
        (sink, stats)
    })
}

#[test]
fn a_crash_loses_no_journaled_record() {
    let dir = tempfile::tempdir().unwrap();
    run_and_crash(dir.path(), true, 500);
    assert!(
        !segments(dir.path()).is_empty(),
        "the crash left the journal"
    );
    let (sink, stats) = restart_and_count(dir.path());
    assert_eq!(
        sink.len(),
        500,
        "every record sent before the crash is back"
    );
    assert_eq!(stats.journal_recovered, 500);
    assert_eq!(stats.corrupt_lines, 0);
    // Recovered, replayed, and the journal and spill file are empty again.
    assert_eq!(
        std::fs::metadata(dir.path().join(SPILL_FILE_NAME))
            .unwrap()
            .len(),
        0
    );
    assert!(
        segments(dir.path()).is_empty(),
        "{:?}",
        segments(dir.path())
    );
}

#[test]
fn without_the_journal_a_crash_loses_the_queue() {
    // The control for the test above: the same crash with the journal off.
    let dir = tempfile::tempdir().unwrap();
    run_and_crash(dir.path(), false, 500);
    let (sink, stats) = restart_and_count(dir.path());
    assert_eq!(sink.len(), 0);
    assert_eq!(stats.journal_recovered, 0);
}

#[tokio::test]
async fn segments_are_rotated_and_deleted_once_their_records_are_stored() {
    let dir = tempfile::tempdir().unwrap();
    let sink = Arc::new(MemorySink::new());
    let dyn_sink: Arc<dyn AuditSink> = Arc::clone(&sink) as _;
    let mut cfg = config(dir.path(), true);
    cfg.flush_interval = Duration::from_millis(10);
    let (sender, handle) = AuditWriter::start_with_tuning(cfg, tuning(), dyn_sink)
        .await
        .unwrap();
    for round in 0..5 {
        for i in 0..40 {
            sender.send(sample_record(&format!("r{round}-{i:03}")));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    wait_until("all stored", || sink.len() == 200).await;
    // Old segments go away; only the current one is left, and it is empty once rotated.
    wait_until("journal drained", || {
        let s = segments(dir.path());
        s.len() == 1 && s[0].1 == 0
    })
    .await;
    let first = segments(dir.path())[0].0.clone();
    assert!(
        first > format!("{JOURNAL_PREFIX}{:020}", 1),
        "rotated: {first}"
    );
    let stats = handle.shutdown().await;
    assert_eq!(stats.journal_errors, 0);
    assert!(
        segments(dir.path()).is_empty(),
        "a clean shutdown removes the journal"
    );
}

#[test]
fn records_spilled_during_an_outage_let_segments_go_and_survive_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let sink = Arc::new(MemorySink::new());
    sink.set_failing(true);
    let path = dir.path().to_path_buf();
    let handle = rt.block_on(async {
        let dyn_sink: Arc<dyn AuditSink> = Arc::clone(&sink) as _;
        let mut cfg = config(&path, true);
        cfg.flush_interval = Duration::from_millis(5);
        let (sender, handle) = AuditWriter::start_with_tuning(cfg, tuning(), dyn_sink)
            .await
            .unwrap();
        for i in 0..300 {
            sender.send(sample_record(&format!("out-{i:04}")));
        }
        // Spilled, so the journal segments holding them are deleted.
        wait_until("spilled and journal drained", || {
            let s = segments(&path);
            handle.stats().spilled == 300 && s.len() == 1 && s[0].1 == 0
        })
        .await;
        handle
    });
    std::mem::forget(handle);
    rt.shutdown_background();
    let (sink, stats) = restart_and_count(dir.path());
    assert_eq!(sink.len(), 300);
    assert_eq!(stats.journal_recovered, 0, "nothing left in the journal");
    assert_eq!(stats.replayed, 300, "all from the spill file");
}
