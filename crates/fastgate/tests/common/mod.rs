//! Integration-test harness: the real server on a random loopback port, backed by
//! SQLite in a temp dir (or an isolated PostgreSQL schema), in front of the
//! testkit mock upstream.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::time::Duration;

use fastgate::server::{self, ServerHandle};
use fastgate_audit::AuditRecord;
use fastgate_testkit::MockUpstream;
use serde_json::Value;

pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789";

/// Upper bound on any one client exchange in the tests (connect to last body
/// byte): a gateway that stops answering fails the test instead of hanging it.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(20);

/// Upper bound on one raw socket read or write in the tests.
pub const RAW_TIMEOUT: Duration = Duration::from_secs(10);

/// The HTTP client every test uses: no proxy, and every request bounded by
/// [`CLIENT_TIMEOUT`] (the whole exchange, body included).
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(CLIENT_TIMEOUT)
        .connect_timeout(Duration::from_secs(5))
        .build()
        .unwrap()
}

/// A loopback port with nothing listening: bound on port 0, then released.
/// Connecting to it is refused (unless the OS hands it out again meanwhile, which
/// an ephemeral port chosen this way makes unlikely).
pub fn dead_port() -> u16 {
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
    listener.local_addr().unwrap().port()
}

/// `http://127.0.0.1:PORT` of a [`dead_port`].
pub fn dead_url() -> String {
    format!("http://127.0.0.1:{}", dead_port())
}

/// Write `raw` on a new connection to `addr`, then read until the server closes
/// it. Every step is bounded by [`RAW_TIMEOUT`]: a server that neither answers
/// nor closes fails the test.
pub async fn raw_exchange(addr: SocketAddr, raw: &[u8]) -> Vec<u8> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::time::timeout(RAW_TIMEOUT, tokio::net::TcpStream::connect(addr))
        .await
        .expect("connect timed out")
        .unwrap();
    tokio::time::timeout(RAW_TIMEOUT, s.write_all(raw))
        .await
        .expect("write timed out")
        .unwrap();
    let mut out = Vec::new();
    match tokio::time::timeout(RAW_TIMEOUT, s.read_to_end(&mut out)).await {
        Err(_) => panic!(
            "no end of reply within {RAW_TIMEOUT:?}; got so far: {}",
            String::from_utf8_lossy(&out)
        ),
        // A reset after the reply still leaves the reply in `out`.
        Ok(Err(e)) if out.is_empty() => panic!("read failed before any reply: {e}"),
        Ok(_) => out,
    }
}

/// Runs `cmd` to completion with stdout and stderr captured, killing it and
/// failing the test if it runs longer than `limit`.
pub fn run_bounded(cmd: &mut std::process::Command, limit: Duration) -> std::process::Output {
    use std::io::Read;
    use std::process::Stdio;
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let reader = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = r.read_to_end(&mut buf);
            buf
        })
    };
    let out = reader(Box::new(child.stdout.take().unwrap()));
    let err = reader(Box::new(child.stderr.take().unwrap()));
    let start = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{cmd:?} still running after {limit:?}; stderr: {}",
                String::from_utf8_lossy(&err.join().unwrap_or_default())
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    std::process::Output {
        status,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    }
}

/// The status code of a raw HTTP/1.1 reply (`HTTP/1.1 400 ...`); panics on an
/// empty or malformed reply.
pub fn raw_status(reply: &[u8]) -> u16 {
    let text = String::from_utf8_lossy(reply);
    assert!(
        !text.is_empty(),
        "empty reply: the connection closed without an answer"
    );
    text.strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP/1.1 reply: {text:?}"))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub struct Harness {
    pub server: Option<ServerHandle>,
    pub mock: MockUpstream,
    pub http: reqwest::Client,
    pub dir: tempfile::TempDir,
    pub base: String,
    pub database_url: String,
    pg_schema: Option<(String, String)>,
}

/// Routes used by most tests. In every YAML given to the harness, `{MOCK}` is
/// replaced by the mock's URL and `{DEAD}` by a URL where nothing listens.
pub const DEFAULT_ROUTES: &str = r#"
upstreams:
  - name: mock
    kind: openai
    base_url: "{MOCK}"
    credentials: [ { name: k1, key: "sk-provider-secret-1" } ]
routes:
  - name: chat
    priority: 100
    match: { path: "/v1/chat/completions", methods: [POST] }
    upstream: mock
    remove_headers: [ x-debug ]
    add_headers: { x-from: fastgate }
    audit: { headers: true, bodies: true, body_max_bytes: 4096 }
  - name: v1
    priority: 200
    match: { path: "/v1/**" }
    upstream: mock
"#;

/// The PostgreSQL URL for tests, or `None` (and a note) when unset.
///
/// Prefer [`both_backends!`]: its PostgreSQL variant is reported by libtest as
/// ignored (with the reason) when `FASTGATE_TEST_PG_URL` was unset at build time,
/// and fails when it is set but the server is unreachable.
pub fn pg_url_or_skip(test: &str) -> Option<String> {
    let url = fastgate_store::testing::pg_test_url();
    if url.is_none() {
        eprintln!("skipping {test} on postgres: FASTGATE_TEST_PG_URL unset");
    }
    url
}

impl Harness {
    pub async fn start(backend: Backend, yaml: &str) -> Harness {
        let mock = MockUpstream::start().await;
        Self::start_with_mock(backend, yaml, mock).await
    }

    /// Like `start`, with extra `server:` settings (flow-style YAML fields).
    pub async fn start_with_server_extra(
        backend: Backend,
        yaml: &str,
        server_extra: &str,
    ) -> Harness {
        let mock = MockUpstream::start().await;
        Self::start_full(backend, yaml, mock, server_extra).await
    }

    pub async fn start_with_mock(backend: Backend, yaml: &str, mock: MockUpstream) -> Harness {
        Self::start_full(backend, yaml, mock, "").await
    }

    async fn start_full(
        backend: Backend,
        yaml: &str,
        mock: MockUpstream,
        server_extra: &str,
    ) -> Harness {
        fastgate::install_crypto_provider();
        let dir = tempfile::tempdir().unwrap();
        let (database_url, pg_schema) = match backend {
            Backend::Sqlite => (
                format!("sqlite://{}/fastgate.db", dir.path().display()),
                None,
            ),
            Backend::Postgres => {
                let base = fastgate_store::testing::pg_test_url().unwrap_or_else(|| {
                    panic!(
                        "FASTGATE_TEST_PG_URL is unset: the PostgreSQL variants were built to run"
                    )
                });
                let (store, schema) = fastgate_store::testing::connect_isolated_pg(&base)
                    .await
                    .unwrap_or_else(|e| {
                        panic!("PostgreSQL at FASTGATE_TEST_PG_URL unreachable: {e}")
                    });
                store.close().await;
                let sep = if base.contains('?') { '&' } else { '?' };
                let url = format!("{base}{sep}options=-c%20search_path%3D{schema}");
                (url, Some((base, schema)))
            }
        };
        // A test may set its own body limit in `server_extra`.
        let body_limit = if server_extra.contains("max_body_bytes") {
            ""
        } else {
            ", max_body_bytes: 65536"
        };
        let full = format!(
            "server: {{ listen: \"127.0.0.1:0\"{body_limit}{server_extra} }}\n\
             database: {{ url: \"{database_url}\" }}\n\
             admin: {{ token: \"{ADMIN_TOKEN}\" }}\n\
             data_dir: \"{}\"\n\
             audit: {{ flush_interval: 20ms }}\n{}",
            dir.path().display(),
            yaml.replace("{MOCK}", &mock.url())
                .replace("{DEAD}", &dead_url()),
            server_extra = if server_extra.is_empty() {
                String::new()
            } else {
                format!(", {server_extra}")
            },
        );
        let cfg = fastgate_config::load_str(&full, &|_| None)
            .unwrap_or_else(|e| panic!("config: {e}\n{full}"));
        let config_file = dir.path().join("fastgate.yaml");
        std::fs::write(&config_file, &full).unwrap();
        let server = server::start_from(cfg, Some(config_file)).await.unwrap();
        let base = server.url();
        Harness {
            server: Some(server),
            mock,
            http: http_client(),
            dir,
            base,
            database_url,
            pg_schema,
        }
    }

    /// Rewrite the config file with new routes (same header section).
    pub fn rewrite_routes(&self, yaml: &str) {
        let file = self.dir.path().join("fastgate.yaml");
        let current = std::fs::read_to_string(&file).unwrap();
        let head: String = current
            .lines()
            .take_while(|l| !l.starts_with("upstreams:") && !l.is_empty())
            .map(|l| format!("{l}\n"))
            .collect();
        std::fs::write(
            &file,
            format!(
                "{head}{}",
                yaml.replace("{MOCK}", &self.mock.url())
                    .replace("{DEAD}", &dead_url())
            ),
        )
        .unwrap();
    }

    pub fn server(&self) -> &ServerHandle {
        self.server.as_ref().expect("server running")
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Create a key through the admin API; returns (id, secret).
    pub async fn create_key(&self, body: Value) -> (String, String) {
        let resp = self
            .http
            .post(self.url("/admin/api/keys"))
            .bearer_auth(ADMIN_TOKEN)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 201, "create key");
        let v: Value = resp.json().await.unwrap();
        (
            v["id"].as_str().unwrap().to_string(),
            v["key"].as_str().unwrap().to_string(),
        )
    }

    pub async fn key(&self) -> String {
        self.create_key(serde_json::json!({ "name": format!("k-{}", uuid::Uuid::now_v7()) }))
            .await
            .1
    }

    /// An admin API request with the admin token and an optional JSON body.
    pub async fn admin(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> reqwest::Response {
        let mut rb = self
            .http
            .request(method, self.url(path))
            .bearer_auth(ADMIN_TOKEN);
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        rb.send().await.unwrap()
    }

    /// The Prometheus text of `/metrics`, scraped with the admin token.
    pub async fn metrics(&self) -> String {
        let resp = self.admin_get("/metrics").await;
        assert_eq!(resp.status(), 200, "/metrics");
        resp.text().await.unwrap()
    }

    /// Write `raw` to the gateway and read its whole reply (see [`raw_exchange`]).
    pub async fn raw(&self, raw: &[u8]) -> Vec<u8> {
        raw_exchange(self.server().addr, raw).await
    }

    pub async fn admin_get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(self.url(path))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .unwrap()
    }

    /// All audit records written so far, newest first (flushes the queue first).
    pub async fn audit(&self) -> Vec<AuditRecord> {
        self.server().flush_audit().await;
        let v: Value = self
            .admin_get("/admin/api/logs?limit=1000")
            .await
            .json()
            .await
            .unwrap();
        serde_json::from_value(v["data"].clone()).unwrap()
    }

    /// The audit record of one request id, waiting (up to 5 s) for streams to close.
    pub async fn audit_of(&self, request_id: &str) -> AuditRecord {
        for _ in 0..250 {
            if let Some(r) = self
                .audit()
                .await
                .into_iter()
                .find(|r| r.request_id == request_id)
            {
                return r;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("no audit record for {request_id}");
    }

    /// A second gateway instance on the same database and master key (its own
    /// data directory and port), as a fleet member would run.
    pub async fn start_peer(&self) -> Peer {
        let dir = tempfile::tempdir().unwrap();
        let current = std::fs::read_to_string(self.dir.path().join("fastgate.yaml")).unwrap();
        let own = format!("data_dir: \"{}\"", self.dir.path().display());
        assert!(current.contains(&own), "harness config names its data_dir");
        let text = current.replace(
            &own,
            &format!(
                "data_dir: \"{}\"\nmaster_key_file: \"{}\"",
                dir.path().display(),
                self.dir.path().join("master_key").display()
            ),
        );
        let cfg = fastgate_config::load_str(&text, &|_| None)
            .unwrap_or_else(|e| panic!("peer config: {e}\n{text}"));
        let file = dir.path().join("fastgate.yaml");
        std::fs::write(&file, &text).unwrap();
        let server = server::start_from(cfg, Some(file)).await.unwrap();
        Peer {
            base: server.url(),
            server: Some(server),
            _dir: dir,
        }
    }

    pub async fn stop(mut self) {
        if let Some(server) = self.server.take() {
            server.shutdown().await;
        }
        if let Some((base, schema)) = self.pg_schema.take() {
            let _ = fastgate_store::testing::drop_isolated_pg(&base, &schema).await;
        }
    }
}

/// Another instance started by [`Harness::start_peer`]; stop it before the harness.
pub struct Peer {
    pub server: Option<ServerHandle>,
    pub base: String,
    _dir: tempfile::TempDir,
}

impl Peer {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// An admin API request with the admin token and an optional JSON body.
    pub async fn admin(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> reqwest::Response {
        let mut rb = http_client()
            .request(method, self.url(path))
            .bearer_auth(ADMIN_TOKEN);
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        rb.send().await.unwrap()
    }

    pub async fn stop(mut self) {
        if let Some(server) = self.server.take() {
            server.shutdown().await;
        }
    }
}

/// Poll `check` every 20 ms until it returns `Some`, failing the test with
/// `what` after `deadline`.
pub async fn eventually<T, F, Fut>(deadline: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = std::time::Instant::now();
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            start.elapsed() < deadline,
            "not within {deadline:?}: {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Run an async test body against SQLite (`NAME::sqlite`) and PostgreSQL
/// (`NAME::postgres`). The PostgreSQL variant is listed as ignored, with the
/// reason, when `FASTGATE_TEST_PG_URL` was unset at build time (`build.rs` sets
/// `cfg(fastgate_pg_tests)`); when it is set, the variant runs and fails if the
/// database is unreachable.
#[macro_export]
macro_rules! both_backends {
    ($name:ident, $body:path) => {
        mod $name {
            use super::*;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                $body(common::Backend::Sqlite).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            #[cfg_attr(
                not(fastgate_pg_tests),
                ignore = "set FASTGATE_TEST_PG_URL to run on PostgreSQL"
            )]
            async fn postgres() {
                $body(common::Backend::Postgres).await;
            }
        }
    };
}
