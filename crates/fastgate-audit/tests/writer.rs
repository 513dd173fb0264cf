//! Writer behaviour against the in-memory sink: batching, flush, shutdown, spill, replay,
//! torn spill lines, overflow, poison records, late sends.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use fastgate_audit::testing::MemorySink;
use fastgate_audit::{
    AuditConfig, AuditSender, AuditStats, AuditTuning, AuditWriter, AuditWriterHandle,
    REJECTED_FILE_NAME, SPILL_FILE_NAME, sample_record,
};

const WAIT: Duration = Duration::from_secs(10);

fn config(
    dir: &Path,
    queue_capacity: usize,
    batch_size: usize,
    flush_interval: Duration,
) -> AuditConfig {
    AuditConfig {
        queue_capacity,
        batch_size,
        flush_interval,
        spill_dir: dir.to_path_buf(),
        journal: true,
    }
}

fn fast() -> AuditTuning {
    AuditTuning {
        max_attempts: 2,
        retry_base_delay: Duration::from_millis(1),
        sink_timeout: Duration::from_secs(5),
        replay_interval: Duration::from_millis(30),
        journal_rotate_interval: Duration::from_millis(50),
        journal_rotate_bytes: 1 << 20,
    }
}

#[expect(
    clippy::unwrap_used,
    reason = "a test helper: failing to start fails the test"
)]
async fn start(cfg: AuditConfig, sink: &Arc<MemorySink>) -> (AuditSender, AuditWriterHandle) {
    let sink: Arc<dyn fastgate_audit::AuditSink> = Arc::clone(sink) as _;
    AuditWriter::start_with_tuning(cfg, fast(), sink)
        .await
        .unwrap()
}

/// Poll `cond` every few milliseconds; fail the test after `WAIT`.
async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let started = Instant::now();
    while !cond() {
        assert!(started.elapsed() < WAIT, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn ids(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}-{i:04}")).collect()
}

fn send_all(sender: &AuditSender, ids: &[String]) {
    for id in ids {
        sender.send(sample_record(id));
    }
}

fn spill_len(dir: &Path) -> u64 {
    std::fs::metadata(dir.join(SPILL_FILE_NAME))
        .map(|m| m.len())
        .unwrap_or(0)
}

fn sorted(ids: &[String]) -> Vec<String> {
    ids.iter()
        .cloned()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

#[tokio::test]
async fn full_batches_are_written_without_waiting_for_the_interval() {
    let dir = tempfile::tempdir().unwrap();
    let sink = Arc::new(MemorySink::new());
    let (sender, handle) = start(
        config(dir.path(), 100, 10, Duration::from_secs(3600)),
        &sink,
    )
    .await;

    let sent = ids("b", 25);
    send_all(&sender, &sent);
    wait_until("two full batches", || sink.len() == 20).await;
    assert_eq!(sink.batch_sizes(), [10, 10]);

    // The remaining 5 wait for the (hour-long) interval, or a flush.
    handle.flush().await;
    assert_eq!(sink.batch_sizes(), [10, 10, 5]);
    assert_eq!(sink.ids(), sorted(&sent));
    let stats = handle.shutdown().await;
    assert_eq!(stats.written, 25);
    assert_eq!(stats.batches, 3);
    assert_eq!(stats.dropped, 0);
    assert_eq!(stats.spilled, 0);
}

#[tokio::test]
async fn partial_batches_are_written_after_the_flush_interval() {
    let dir = tempfile::tempdir().unwrap();
    let sink = Arc::new(MemorySink::new());
    let interval = Duration::from_millis(80);
    let (sender, handle) = start(config(dir.path(), 100, 1000, interval), &sink).await;

    let started = Instant::now();
    send_all(&sender, &ids("i", 3));
    wait_until("the interval flush", || sink.len() == 3).await;
    assert!(started.elapsed() >= interval, "written before the interval");
    assert_eq!(sink.batch_sizes(), [3]);
    assert_eq!(handle.shutdown().await.written, 3);
}

#[tokio::test]
async fn shutdown_drains_everything() {
    let dir = tempfile::tempdir().unwrap();
    let sink = Arc::new(MemorySink::new());
    let (sender, handle) = start(
        config(dir.path(), 1000, 7, Duration::from_secs(3600)),
        &sink,
    )
    .await;

    let sent = ids("s", 500);
    send_all(&sender, &sent);
    let stats = handle.shutdown().await;
    assert_eq!(sink.ids(), sorted(&sent));
    assert_eq!(stats.written, 500);
    assert_eq!(stats.dropped, 0);
    assert_eq!(stats.spilled, 0);
    assert!(sink.batch_sizes().iter().all(|&n| n <= 7));
    assert_eq!(spill_len(dir.path()), 0);
}

#[tokio::test]
async fn failing_sink_spills_then_the_spill_is_replayed_after_recovery() {
    let dir = tempfile::tempdir().unwrap();
    let sink = Arc::new(MemorySink::new());
    sink.set_failing(true);
    let (sender, handle) =
        start(config(dir.path(), 100, 8, Duration::from_millis(10)), &sink).await;

    let sent = ids("f", 30);
    send_all(&sender, &sent);
    handle.flush().await;
    let stats = handle.stats();
    assert_eq!(stats.spilled, 30, "{stats:?}");
    assert_eq!(stats.written, 0);
    assert!(stats.failures >= 4 * 2, "each batch tried twice: {stats:?}");
    assert!(sink.is_empty());
    let lines = std::fs::read_to_string(dir.path().join(SPILL_FILE_NAME)).unwrap();
    assert_eq!(lines.lines().count(), 30);

    sink.set_failing(false);
    wait_until("replay", || handle.stats().replayed == 30).await;
    assert_eq!(sink.ids(), sorted(&sent));
    assert_eq!(spill_len(dir.path()), 0);

    // Later traffic goes straight to the sink again.
    let more = ids("g", 5);
    send_all(&sender, &more);
    handle.flush().await;
    let stats = handle.shutdown().await;
    assert_eq!(sink.len(), 35);
    assert_eq!(stats.written, 5);
    assert_eq!(stats.dropped, 0);
}

#[tokio::test]
async fn shutdown_with_a_dead_sink_leaves_everything_in_the_spill_file_for_the_next_start() {
    let dir = tempfile::tempdir().unwrap();
    let sink = Arc::new(MemorySink::new());
    sink.set_failing(true);
    let (sender, handle) = start(
        config(dir.path(), 100, 16, Duration::from_secs(3600)),
        &sink,
    )
    .await;
    let sent = ids("d", 40);
    send_all(&sender, &sent);
    let stats = handle.shutdown().await;
    assert_eq!(stats.spilled, 40);
    assert_eq!(stats.dropped, 0);
    drop(sender);

    sink.set_failing(false);
    let (_sender, handle) = start(
        config(dir.path(), 100, 16, Duration::from_secs(3600)),
        &sink,
    )
    .await;
    // Replayed before start returned.
    assert_eq!(handle.stats().replayed, 40);
    assert_eq!(sink.ids(), sorted(&sent));
    assert_eq!(spill_len(dir.path()), 0);
    handle.shutdown().await;
}

#[tokio::test]
async fn a_torn_last_line_is_skipped_at_start_and_the_rest_replayed() {
    let dir = tempfile::tempdir().unwrap();
    let sink = Arc::new(MemorySink::new());
    sink.set_failing(true);
    let (sender, handle) =
        start(config(dir.path(), 100, 4, Duration::from_secs(3600)), &sink).await;
    let sent = ids("t", 10);
    send_all(&sender, &sent);
    assert_eq!(handle.shutdown().await.spilled, 10);

    // Simulate kill -9 in the middle of appending one more line.
    let path = dir.path().join(SPILL_FILE_NAME);
    let mut content = std::fs::read(&path).unwrap();
    let first_line = content.split(|&b| b == b'\n').next().unwrap().to_vec();
    content.extend_from_slice(&first_line[..first_line.len() / 2]);
    std::fs::write(&path, content).unwrap();

    sink.set_failing(false);
    let (_sender, handle) =
        start(config(dir.path(), 100, 4, Duration::from_secs(3600)), &sink).await;
    let stats = handle.stats();
    assert_eq!(stats.replayed, 10, "{stats:?}");
    assert_eq!(stats.corrupt_lines, 1, "{stats:?}");
    assert_eq!(sink.ids(), sorted(&sent));
    assert_eq!(spill_len(dir.path()), 0);
    handle.shutdown().await;
}

#[tokio::test]
async fn a_torn_line_is_not_glued_to_later_appends_when_the_sink_is_down_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let sink = Arc::new(MemorySink::new());
    sink.set_failing(true);
    let cfg = || config(dir.path(), 100, 4, Duration::from_secs(3600));
    let (sender, handle) = start(cfg(), &sink).await;
    let before = ids("before", 5);
    send_all(&sender, &before);
    assert_eq!(handle.shutdown().await.spilled, 5);
    let path = dir.path().join(SPILL_FILE_NAME);
    let mut content = std::fs::read(&path).unwrap();
    content.extend_from_slice(b"0123abcd {\"request_id\":\"tor");
    std::fs::write(&path, content).unwrap();

    // The sink is still down at start: the file is kept and appended to.
    let (sender, handle) = start(cfg(), &sink).await;
    assert_eq!(handle.stats().replayed, 0);
    let after = ids("after", 3);
    send_all(&sender, &after);
    handle.flush().await;
    assert_eq!(handle.stats().spilled, 3);

    sink.set_failing(false);
    wait_until("replay", || handle.stats().replayed == 8).await;
    let stats = handle.shutdown().await;
    assert_eq!(stats.corrupt_lines, 1, "{stats:?}");
    assert_eq!(sink.ids(), sorted(&[before, after].concat()));
}

#[tokio::test]
async fn the_queue_depth_peak_is_what_queued_up_while_the_writer_was_busy() {
    let dir = tempfile::tempdir().unwrap();
    let sink = Arc::new(MemorySink::new());
    sink.set_holding(true);
    let (sender, handle) =
        start(config(dir.path(), 1000, 1, Duration::from_millis(5)), &sink).await;
    assert_eq!(handle.stats().queue_depth_peak, 0);

    let sent = ids("peak", 61);
    send_all(&sender, &sent[..1]);
    wait_until("the writer is stuck in the sink", || sink.calls() == 1).await;
    send_all(&sender, &sent[1..]);
    assert_eq!(sender.queue_depth(), 60);
    sink.set_holding(false);
    wait_until("everything written", || sink.len() == 61).await;
    assert_eq!(sender.queue_depth(), 0);
    // The writer found the 60 records at once when the sink let it go; the peak stays
    // after the queue has drained.
    let stats = handle.shutdown().await;
    assert_eq!(stats.queue_depth_peak, 60, "{stats:?}");
    assert_eq!(sink.ids(), sorted(&sent));
}

#[tokio::test]
async fn a_full_queue_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let sink = Arc::new(MemorySink::new());
    sink.set_holding(true);
    let (sender, handle) = start(config(dir.path(), 4, 2, Duration::from_millis(5)), &sink).await;

    let sent = ids("q", 200);
    send_all(&sender, &sent[..1]);
    wait_until("the writer is stuck in the sink", || sink.calls() == 1).await;
    send_all(&sender, &sent[1..]);
    assert!(sender.queue_depth() >= 4, "depth {}", sender.queue_depth());
    // The overflow reaches the spill file while the sink is still stuck.
    wait_until("overflow spilled", || handle.stats().spilled >= 190).await;
    let stats = handle.stats();
    assert!(stats.overflowed >= 190, "{stats:?}");
    assert_eq!(stats.spilled, stats.overflowed);

    sink.set_holding(false);
    handle.flush().await;
    wait_until("replay of the overflow", || sink.len() == 200).await;
    let stats = handle.shutdown().await;
    assert_eq!(sink.ids(), sorted(&sent));
    assert_eq!(stats.dropped, 0);
    assert_eq!(stats.written + stats.replayed, 200, "{stats:?}");
    assert_eq!(stats.replayed, stats.spilled, "{stats:?}");
}

#[tokio::test]
async fn a_poison_record_is_quarantined_and_does_not_block_the_backlog() {
    let dir = tempfile::tempdir().unwrap();
    let sink = Arc::new(MemorySink::new());
    let sent = ids("p", 10);
    // First in its batch, so the bisection needs the probe.
    sink.poison(&sent[0]);
    let (sender, handle) = start(
        config(dir.path(), 100, 10, Duration::from_secs(3600)),
        &sink,
    )
    .await;
    // One good record written first, so the sink has a known-good probe record.
    sender.send(sample_record("good-first"));
    handle.flush().await;

    send_all(&sender, &sent);
    handle.flush().await;
    assert_eq!(handle.stats().spilled, 10);
    wait_until("quarantine", || handle.stats().rejected == 1).await;
    let stats = handle.shutdown().await;
    assert_eq!(stats.replayed, 9, "{stats:?}");
    assert_eq!(stats.dropped, 0);
    assert_eq!(sink.len(), 10);
    assert!(!sink.contains(&sent[0]));
    let rejected = std::fs::read_to_string(dir.path().join(REJECTED_FILE_NAME)).unwrap();
    assert_eq!(rejected.lines().count(), 1);
    assert!(rejected.contains(&sent[0]));
    assert_eq!(spill_len(dir.path()), 0);
}

#[tokio::test]
async fn records_sent_after_shutdown_are_spilled_and_replayed_at_the_next_start() {
    let dir = tempfile::tempdir().unwrap();
    let sink = Arc::new(MemorySink::new());
    let (sender, handle) =
        start(config(dir.path(), 10, 10, Duration::from_secs(3600)), &sink).await;
    let stats: AuditStats = handle.shutdown().await;
    assert_eq!(stats, AuditStats::default());

    sender.send(sample_record("late-1"));
    sender.send(sample_record("late-2"));
    assert!(sink.is_empty());
    assert!(spill_len(dir.path()) > 0);

    let (_sender, handle) =
        start(config(dir.path(), 10, 10, Duration::from_secs(3600)), &sink).await;
    assert_eq!(handle.stats().replayed, 2);
    assert_eq!(sink.ids(), ["late-1", "late-2"]);
    handle.shutdown().await;
}

#[tokio::test]
async fn invalid_config_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let sink: Arc<dyn fastgate_audit::AuditSink> = Arc::new(MemorySink::new());
    let bad = config(dir.path(), 0, 10, Duration::from_secs(1));
    assert!(AuditWriter::start(bad, Arc::clone(&sink)).await.is_err());
    let bad = config(dir.path(), 10, 0, Duration::from_secs(1));
    assert!(AuditWriter::start(bad, sink).await.is_err());
}

#[tokio::test]
async fn a_sink_outage_during_replay_quarantines_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let sink = Arc::new(MemorySink::new());
    let (sender, handle) = start(
        config(dir.path(), 100, 10, Duration::from_secs(3600)),
        &sink,
    )
    .await;
    sender.send(sample_record("known-good"));
    handle.flush().await;

    sink.set_failing(true);
    let sent = ids("o", 10);
    send_all(&sender, &sent);
    handle.flush().await;
    assert_eq!(handle.stats().spilled, 10);
    // Let a few replay passes (with their bisection and probes) fail.
    let calls = sink.calls();
    wait_until("several failed replay calls", || sink.calls() >= calls + 15).await;
    let stats = handle.stats();
    assert_eq!(stats.rejected, 0, "{stats:?}");
    assert_eq!(stats.replayed, 0, "{stats:?}");
    assert!(!dir.path().join(REJECTED_FILE_NAME).exists());

    sink.set_failing(false);
    wait_until("replay", || handle.stats().replayed == 10).await;
    let stats = handle.shutdown().await;
    assert_eq!(stats.rejected, 0);
    assert_eq!(sink.len(), 11);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_senders_with_a_flapping_sink_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let sink = Arc::new(MemorySink::new());
    let (sender, handle) = start(config(dir.path(), 16, 8, Duration::from_millis(2)), &sink).await;

    let mut tasks = Vec::new();
    for t in 0..4 {
        let sender = sender.clone();
        tasks.push(tokio::spawn(async move {
            let sent = ids(&format!("c{t}"), 500);
            for (i, id) in sent.iter().enumerate() {
                sender.send(sample_record(id));
                if i % 50 == 0 {
                    tokio::task::yield_now().await;
                }
            }
            sent
        }));
    }
    let flapper = {
        let sink = Arc::clone(&sink);
        tokio::spawn(async move {
            for i in 0..20 {
                sink.set_failing(i % 2 == 0);
                tokio::time::sleep(Duration::from_millis(3)).await;
            }
            sink.set_failing(false);
        })
    };
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.unwrap());
    }
    flapper.await.unwrap();
    handle.flush().await;
    wait_until("everything in the sink", || sink.len() == all.len()).await;
    let stats = handle.shutdown().await;
    assert_eq!(sink.ids(), sorted(&all));
    assert_eq!(stats.dropped, 0, "{stats:?}");
    assert_eq!(stats.rejected, 0, "{stats:?}");
    assert_eq!(stats.written + stats.replayed, 2000, "{stats:?}");
}

#[tokio::test]
async fn a_hung_sink_times_out_and_the_batch_is_spilled_without_retries() {
    let dir = tempfile::tempdir().unwrap();
    let sink = Arc::new(MemorySink::new());
    sink.set_holding(true);
    let tuning = AuditTuning {
        sink_timeout: Duration::from_millis(50),
        max_attempts: 3,
        replay_interval: Duration::from_secs(3600),
        ..fast()
    };
    let cfg = config(dir.path(), 100, 5, Duration::from_secs(3600));
    let dyn_sink: Arc<dyn fastgate_audit::AuditSink> = Arc::clone(&sink) as _;
    let (sender, handle) = AuditWriter::start_with_tuning(cfg, tuning, dyn_sink)
        .await
        .unwrap();
    send_all(&sender, &ids("h", 5));
    handle.flush().await;
    let stats = handle.stats();
    assert_eq!(stats.spilled, 5, "{stats:?}");
    assert_eq!(stats.failures, 1, "a timeout is not retried: {stats:?}");
    assert_eq!(sink.calls(), 1);
    sink.set_holding(false);
    let stats = handle.shutdown().await;
    assert_eq!(stats.dropped, 0);
    assert!(spill_len(dir.path()) > 0);
}
