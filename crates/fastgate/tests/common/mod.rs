//! Integration-test harness: the real server on a random loopback port, backed by
//! SQLite in a temp dir (or an isolated PostgreSQL schema), in front of the
//! testkit mock upstream.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use fastgate::server::{self, ServerHandle};
use fastgate_audit::AuditRecord;
use fastgate_testkit::MockUpstream;
use serde_json::Value;

pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789";

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

/// Routes used by most tests; `{MOCK}` is replaced by the mock's URL.
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
                let base = fastgate_store::testing::pg_test_url().expect("pg url");
                let (store, schema) = fastgate_store::testing::connect_isolated_pg(&base)
                    .await
                    .unwrap();
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
            yaml.replace("{MOCK}", &mock.url()),
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
            http: reqwest::Client::builder().no_proxy().build().unwrap(),
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
            format!("{head}{}", yaml.replace("{MOCK}", &self.mock.url())),
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

    /// The audit record of one request id, waiting briefly for streams to close.
    pub async fn audit_of(&self, request_id: &str) -> AuditRecord {
        for _ in 0..100 {
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

    pub async fn stop(mut self) {
        if let Some(server) = self.server.take() {
            server.shutdown().await;
        }
        if let Some((base, schema)) = self.pg_schema.take() {
            let _ = fastgate_store::testing::drop_isolated_pg(&base, &schema).await;
        }
    }
}

/// Run an async test body against SQLite and, when configured, PostgreSQL.
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
            async fn postgres() {
                if common::pg_url_or_skip(stringify!($name)).is_some() {
                    $body(common::Backend::Postgres).await;
                }
            }
        }
    };
}
