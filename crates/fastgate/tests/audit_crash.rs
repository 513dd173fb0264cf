//! `kill -9` of the real binary under load: after a restart, every response the client
//! saw complete has its audit row (the crash journal), and no request has two rows.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod audit_support;
mod common;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use audit_support::{Db, TIMEOUT, config_yaml, create_key, journal_bytes, rows_of_key};
use common::Backend;
use fastgate_testkit::MockUpstream;

/// Concurrent clients during the load.
const CLIENTS: usize = 8;
/// Completed responses before the kill (bounded by `LOAD_LIMIT` in time).
const COMPLETE_BEFORE_KILL: u64 = 400;
const LOAD_LIMIT: Duration = Duration::from_secs(20);

/// The gateway as a child process; killed (SIGKILL) when dropped.
struct Gateway {
    child: Child,
    base: String,
}

impl Gateway {
    /// Start `fastgate serve` and wait (with a deadline) for its "listening on" line.
    fn start(config: &Path, log: &Path) -> Gateway {
        let mut child = Command::new(env!("CARGO_BIN_EXE_fastgate"))
            .args(["serve", "--config"])
            .arg(config)
            .env_remove("FASTGATE_CONFIG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(log).unwrap())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(url) = line.split("listening on ").nth(1) {
                    let _ = tx.send(url.trim().to_owned());
                }
            }
        });
        let mut gw = Gateway {
            child,
            base: String::new(),
        };
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(base) => gw.base = base,
            Err(_) => panic!(
                "gateway did not start: {}",
                std::fs::read_to_string(log).unwrap_or_default()
            ),
        }
        gw
    }

    fn kill9(&mut self) {
        // std's Child::kill sends SIGKILL on Unix.
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// SIGTERM, then wait (bounded) for a graceful exit.
    fn stop(mut self) {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("gateway did not stop after SIGTERM");
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

struct Load {
    sent: AtomicU64,
    completed: std::sync::Mutex<Vec<String>>,
    stop: AtomicBool,
}

async fn client(load: Arc<Load>, http: reqwest::Client, base: String, key: String, n: usize) {
    let mut i = 0u64;
    while !load.stop.load(Ordering::SeqCst) {
        i += 1;
        load.sent.fetch_add(1, Ordering::SeqCst);
        let sent = http
            .post(format!("{base}/v1/chat/completions"))
            .bearer_auth(&key)
            .header("x-request-id", format!("crash-{n}-{i}"))
            .json(&serde_json::json!({ "model": "gpt-4o", "messages": [] }))
            .timeout(TIMEOUT)
            .send()
            .await;
        let Ok(resp) = sent else { continue };
        let status = resp.status().as_u16();
        let id = resp
            .headers()
            .get("x-fastgate-request-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        // Complete = the whole body arrived (the connection may die mid-body).
        let Ok(body) = resp.bytes().await else {
            continue;
        };
        if status == 200 && body.ends_with(b"}") {
            load.completed.lock().unwrap().push(id.unwrap());
        }
    }
}

async fn kill9_under_load_loses_no_completed_response(backend: Backend) {
    // A hang anywhere is a failure, not a stuck test run.
    tokio::time::timeout(Duration::from_secs(240), crash_test(backend))
        .await
        .expect("the kill -9 test finishes within 4 minutes");
}

async fn crash_test(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::new(backend, dir.path()).await;
    let mock = MockUpstream::start().await;
    // A long flush interval keeps up to a second of records in memory at the kill:
    // without the journal they would be lost.
    let yaml = config_yaml(&db.url, dir.path(), &mock.url(), "flush_interval: 1s");
    let config = dir.path().join("fastgate.yaml");
    std::fs::write(&config, yaml).unwrap();
    let log = dir.path().join("gateway.log");

    let mut gw = Gateway::start(&config, &log);
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let (key_id, key) = create_key(&http, &gw.base).await;

    let load = Arc::new(Load {
        sent: AtomicU64::new(0),
        completed: std::sync::Mutex::new(Vec::new()),
        stop: AtomicBool::new(false),
    });
    let clients: Vec<_> = (0..CLIENTS)
        .map(|n| {
            tokio::spawn(client(
                Arc::clone(&load),
                http.clone(),
                gw.base.clone(),
                key.clone(),
                n,
            ))
        })
        .collect();
    let started = Instant::now();
    while (load.completed.lock().unwrap().len() as u64) < COMPLETE_BEFORE_KILL {
        assert!(started.elapsed() < LOAD_LIMIT, "load too slow");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let journal_at_kill = journal_bytes(&dir.path().join("spill"));
    gw.kill9();
    load.stop.store(true, Ordering::SeqCst);
    for c in clients {
        tokio::time::timeout(Duration::from_secs(30), c)
            .await
            .expect("clients stop")
            .unwrap();
    }
    let sent = load.sent.load(Ordering::SeqCst);
    let completed: BTreeSet<String> = load.completed.lock().unwrap().iter().cloned().collect();
    let rows_before_restart = rows_of_key(&db.reader().await, &key_id).await.len();

    // Restart: the journal left by the crash is replayed before the server listens.
    let gw = Gateway::start(&config, &log);
    let reader = db.reader().await;
    let rows = rows_of_key(&reader, &key_id).await;
    let stored: BTreeSet<String> = rows.iter().map(|r| r.request_id.clone()).collect();
    let lost: Vec<_> = completed.difference(&stored).collect();
    eprintln!(
        "[{backend:?}] kill -9: requests sent {sent}, responses completed {}, rows before restart {rows_before_restart}, rows after restart {}, lost {}, journal at kill {journal_at_kill} B",
        completed.len(),
        rows.len(),
        lost.len()
    );
    assert!(
        lost.is_empty(),
        "{} completed responses have no audit row, e.g. {:?}",
        lost.len(),
        lost.first()
    );
    assert!(
        rows_before_restart < completed.len(),
        "the kill left records only in memory and the journal (else the test proves nothing)"
    );
    // No request has two rows; rows beyond the completed responses are requests whose
    // record was journaled while their last bytes were still on the way (in flight).
    let client_ids: BTreeSet<_> = rows.iter().map(|r| r.client_request_id.clone()).collect();
    assert_eq!(client_ids.len(), rows.len(), "no duplicates");
    assert!(
        rows.len() - completed.len() <= CLIENTS,
        "{} extra",
        rows.len() - completed.len()
    );
    assert!(rows.len() as u64 <= sent);
    gw.stop();
    db.cleanup().await;
}
both_backends!(
    kill9_under_load_loses_no_completed_response,
    kill9_under_load_loses_no_completed_response
);
