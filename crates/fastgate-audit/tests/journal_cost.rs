//! The request-path cost of the crash journal: CPU time of `AuditSender::send` with the
//! journal on and off. A measurement, not an assertion on timing; run it with
//! `cargo test --release -p fastgate-audit --test journal_cost -- --ignored --nocapture`.
#![expect(clippy::unwrap_used, reason = "a measurement harness")]

use std::sync::Arc;
use std::time::{Duration, Instant};

use fastgate_audit::testing::MemorySink;
use fastgate_audit::{
    AuditConfig, AuditRecord, AuditSink, AuditTuning, AuditWriter, sample_record,
};

const N: usize = 100_000;

/// User + system CPU seconds of this process so far (Linux `/proc/self/stat`).
fn process_cpu() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let after_comm = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = after_comm.split(' ').collect();
    // utime and stime are fields 14 and 15 of the full line (11 and 12 here).
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    ticks / 100.0
}

fn measure(journal: bool, record: &AuditRecord) -> (f64, f64) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    rt.block_on(async {
        let sink: Arc<dyn AuditSink> = Arc::new(MemorySink::new());
        let cfg = AuditConfig {
            queue_capacity: N + 1,
            batch_size: 512,
            flush_interval: Duration::from_millis(200),
            spill_dir: dir.path().to_path_buf(),
            journal,
        };
        let tuning = AuditTuning {
            journal_rotate_interval: Duration::from_secs(3600),
            journal_rotate_bytes: u64::MAX,
            ..AuditTuning::default()
        };
        let (sender, handle) = AuditWriter::start_with_tuning(cfg, tuning, sink)
            .await
            .unwrap();
        // On a current-thread runtime the writer tasks do not run during this loop:
        // only the request-path work of `send` is measured.
        let records: Vec<AuditRecord> = (0..N)
            .map(|i| {
                let mut r = record.clone();
                r.request_id = format!("cost-{i}");
                r
            })
            .collect();
        let cpu0 = process_cpu();
        let t0 = Instant::now();
        for r in records {
            sender.send(r);
        }
        let wall = t0.elapsed().as_secs_f64();
        let cpu = process_cpu() - cpu0;
        handle.shutdown().await;
        (wall / N as f64 * 1e6, cpu / N as f64 * 1e6)
    })
}

#[test]
#[ignore = "a measurement; run explicitly in release mode"]
fn journal_cost_per_record() {
    let small = sample_record("x");
    let mut heavy = sample_record("x");
    heavy.request_headers = Some("{\"content-type\":\"application/json\"}".repeat(8));
    heavy.request_body = Some("b".repeat(2000));
    heavy.response_body = Some("r".repeat(2000));
    // What the bench's chat route keeps: headers captured, bodies not.
    let mut headers = sample_record("x");
    headers.request_headers = Some(
        r#"{"host":"127.0.0.1:8080","authorization":"[redacted]","content-type":"application/json","content-length":"87","user-agent":"oha/1.4.0","accept":"*/*"}"#.into(),
    );
    headers.response_headers = Some(
        r#"{"content-type":"application/json","content-length":"512","date":"Sun, 29 Nov 2026 20:00:00 GMT"}"#.into(),
    );
    for (name, record) in [
        ("typical record", &small),
        ("headers captured", &headers),
        ("2 KB bodies", &heavy),
    ] {
        let line = serde_json::to_vec(record).unwrap().len();
        // Warm up, then measure each mode twice, alternating.
        let _ = measure(true, record);
        let mut on = Vec::new();
        let mut off = Vec::new();
        for _ in 0..2 {
            off.push(measure(false, record));
            on.push(measure(true, record));
        }
        let best = |v: &[(f64, f64)]| {
            v.iter()
                .copied()
                .fold((f64::MAX, f64::MAX), |a, b| (a.0.min(b.0), a.1.min(b.1)))
        };
        let (off_wall, off_cpu) = best(&off);
        let (on_wall, on_cpu) = best(&on);
        println!(
            "{name} ({line} B JSON): send() without journal {off_wall:.2} µs wall / {off_cpu:.2} µs CPU, with journal {on_wall:.2} µs wall / {on_cpu:.2} µs CPU; added {:.2} µs CPU per record",
            on_cpu - off_cpu
        );
    }
}
