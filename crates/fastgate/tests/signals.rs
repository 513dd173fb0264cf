//! The real binary as a subprocess: SIGHUP reloads the configuration file;
//! SIGTERM lets a stream in flight run to its end, exits 0, and leaves that
//! stream's audit row in the database.
#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{ADMIN_TOKEN, http_client};
use fastgate_testkit::MockUpstream;
use fastgate_testkit::sse::SseParser;
use futures_util::StreamExt;
use serde_json::{Value, json};

const DEADLINE: Duration = Duration::from_secs(15);

/// A `fastgate serve` child process; killed on drop if still running.
struct Gateway {
    child: Child,
    /// Every line the process wrote to stdout or stderr so far.
    output: Arc<Mutex<Vec<String>>>,
    url: String,
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn collect(stream: impl std::io::Read + Send + 'static, into: Arc<Mutex<Vec<String>>>) {
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { return };
            into.lock().unwrap().push(line);
        }
    });
}

fn config(dir: &Path, mock: &str, extra_route: &str) -> String {
    format!(
        r#"server: {{ listen: "127.0.0.1:0" }}
database: {{ url: "sqlite://{dir}/fastgate.db" }}
admin: {{ token: "{ADMIN_TOKEN}" }}
data_dir: "{dir}"
audit: {{ flush_interval: 20ms }}
log: {{ level: info, format: text }}
upstreams:
  - {{ name: mock, kind: openai, base_url: "{mock}", credentials: [ {{ name: k1, key: "sk-1" }} ] }}
routes:
  - {{ name: chat, match: {{ path: "/v1/chat/completions", methods: [POST] }}, upstream: mock }}
{extra_route}"#,
        dir = dir.display()
    )
}

impl Gateway {
    fn start(config_file: &Path) -> Gateway {
        let mut child = Command::new(env!("CARGO_BIN_EXE_fastgate"))
            .args(["serve", "--config"])
            .arg(config_file)
            .env_remove("FASTGATE_CONFIG")
            .env("FASTGATE_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let output = Arc::new(Mutex::new(Vec::new()));
        collect(child.stdout.take().unwrap(), output.clone());
        collect(child.stderr.take().unwrap(), output.clone());
        let mut gw = Gateway {
            child,
            output,
            url: String::new(),
        };
        // The banner names the address it bound (the config says port 0).
        let line = gw.wait_line("the listen banner", |l| l.contains(" listening on http://"));
        gw.url = line
            .split(" listening on ")
            .nth(1)
            .unwrap()
            .trim()
            .to_string();
        gw
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn output(&self) -> String {
        self.output.lock().unwrap().join("\n")
    }

    /// Polls the process output for a line matching `pred`; fails after DEADLINE.
    fn wait_line(&mut self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            if let Some(l) = self.output.lock().unwrap().iter().find(|l| pred(l)) {
                return l.clone();
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("exited ({status}) before {what}:\n{}", self.output());
            }
            assert!(
                start.elapsed() < DEADLINE,
                "no {what} within {DEADLINE:?}:\n{}",
                self.output()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits until the process catches `signals` (its handlers are installed
    /// after the banner): `SigCgt` in /proc/PID/status is the caught set.
    fn wait_for_handlers(&mut self, signals: &[u32]) {
        let start = Instant::now();
        loop {
            let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
            let caught = status
                .lines()
                .find_map(|l| l.strip_prefix("SigCgt:"))
                .map(|hex| u64::from_str_radix(hex.trim(), 16).unwrap())
                .unwrap();
            if signals.iter().all(|s| caught & (1 << (s - 1)) != 0) {
                return;
            }
            assert!(
                start.elapsed() < DEADLINE,
                "signal handlers {signals:?} not installed (SigCgt {caught:x})"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn signal(&self, name: &str) {
        let ok = Command::new("kill")
            .args([format!("-{name}"), self.pid().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{name}");
    }

    /// Waits (bounded) for the process to exit.
    async fn wait_exit(&mut self) -> ExitStatus {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                start.elapsed() < DEADLINE,
                "still running {DEADLINE:?} after SIGTERM:\n{}",
                self.output()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

const SIGHUP: u32 = 1;
const SIGTERM: u32 = 15;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_and_sigterm_finishes_the_stream_in_flight() {
    let mock = MockUpstream::start().await;
    let dir = tempfile::tempdir().unwrap();
    let config_file = dir.path().join("fastgate.yaml");
    std::fs::write(&config_file, config(dir.path(), &mock.url(), "")).unwrap();
    let mut gw = Gateway::start(&config_file);
    gw.wait_for_handlers(&[SIGHUP, SIGTERM]);
    let http = http_client();
    let resp = http
        .post(format!("{}/admin/api/keys", gw.url))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({ "name": "signals" }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201, "{}", gw.output());
    let key = resp.json::<Value>().await.unwrap()["key"]
        .as_str()
        .unwrap()
        .to_string();
    let get_new = || {
        http.get(format!("{}/new/x", gw.url))
            .bearer_auth(&key)
            .send()
    };
    let resp = get_new().await.unwrap();
    assert_eq!(resp.status(), 404);
    assert_eq!(
        resp.json::<Value>().await.unwrap()["error"]["code"],
        "route_not_found"
    );

    // SIGHUP: the new route in the file is served.
    std::fs::write(
        &config_file,
        config(
            dir.path(),
            &mock.url(),
            "  - { name: new, match: { path: \"/new/**\" }, upstream: mock }\n",
        ),
    )
    .unwrap();
    gw.signal("HUP");
    let start = Instant::now();
    loop {
        let resp = get_new().await.unwrap();
        if resp.status() == 200 {
            break;
        }
        assert_eq!(resp.status(), 404);
        assert!(
            start.elapsed() < DEADLINE,
            "new route not served after SIGHUP:\n{}",
            gw.output()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let seen = mock.last_request().unwrap();
    assert_eq!(seen.path, "/new/x");
    assert_eq!(seen.header("authorization"), Some("Bearer sk-1"));

    // SIGTERM with a stream in flight: it runs to its end, then the process exits 0.
    let resp = http
        .post(format!("{}/v1/chat/completions", gw.url))
        .bearer_auth(&key)
        .header("x-mock-hold", "term")
        .json(&json!({ "model": "m", "stream": true }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let rid = resp.headers()["x-request-id"].to_str().unwrap().to_string();
    let mut body = resp.bytes_stream();
    let mut parser = SseParser::new();
    let mut events = Vec::new();
    while events.is_empty() {
        let chunk = tokio::time::timeout(DEADLINE, body.next())
            .await
            .expect("first event")
            .unwrap()
            .unwrap();
        events.extend(parser.feed(&chunk));
    }
    gw.signal("TERM");
    gw.wait_line("the shutdown log line", |l| l.contains("shutting down"));
    // Draining: new connections are no longer served.
    let start = Instant::now();
    while http_client()
        .get(format!("{}/health", gw.url))
        .send()
        .await
        .is_ok()
    {
        assert!(start.elapsed() < DEADLINE, "still accepting after SIGTERM");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        gw.child.try_wait().unwrap().is_none(),
        "exited with a stream in flight:\n{}",
        gw.output()
    );
    mock.release("term");
    while let Some(chunk) = tokio::time::timeout(DEADLINE, body.next())
        .await
        .expect("rest of the stream")
    {
        events.extend(parser.feed(&chunk.unwrap()));
    }
    assert_eq!(
        events.len(),
        8,
        "role, 5 tokens, finish, [DONE]: {events:?}"
    );
    assert!(events.last().unwrap().is_done());
    let status = gw.wait_exit().await;
    assert_eq!(status.code(), Some(0), "{}", gw.output());

    // The stream's audit row is in the database.
    let store = fastgate_store::Store::connect(
        &format!("sqlite://{}/fastgate.db", dir.path().display()),
        1,
    )
    .await
    .unwrap();
    let rec = store
        .get_audit(&rid)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("no audit row for {rid}:\n{}", gw.output()));
    assert_eq!(rec.status_code, 200);
    assert!(rec.is_stream);
    assert_eq!(rec.stream_chunks, 8);
    assert!(rec.error_message.is_none(), "{:?}", rec.error_message);
    assert_eq!(rec.route.as_deref(), Some("chat"));
    store.close().await;
}
