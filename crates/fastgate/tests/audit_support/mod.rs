//! Shared by the audit durability tests: a database (SQLite file or an isolated
//! PostgreSQL schema whose gateway connections carry a known `application_name`), a
//! config for it, and a separate reader of the audit rows.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use fastgate_store::testing::{DbLock, connect_isolated_pg, drop_isolated_pg, pg_test_url};
use fastgate_store::{AuditFilter, AuditRecord, SortOrder, Store};
use serde_json::Value;

use crate::common::{ADMIN_TOKEN, Backend};

pub const TIMEOUT: Duration = Duration::from_secs(10);

pub struct Db {
    pub url: String,
    sqlite_path: Option<PathBuf>,
    /// (base url, schema, application name)
    pg: Option<(String, String, String)>,
}

impl Db {
    pub async fn new(backend: Backend, dir: &Path) -> Db {
        match backend {
            Backend::Sqlite => {
                let path = dir.join("fastgate.db");
                Db {
                    url: format!("sqlite://{}", path.display()),
                    sqlite_path: Some(path),
                    pg: None,
                }
            }
            Backend::Postgres => {
                let base = pg_test_url().expect("pg url");
                let (store, schema) = connect_isolated_pg(&base).await.unwrap();
                store.close().await;
                let app = format!("fg-{schema}");
                let sep = if base.contains('?') { '&' } else { '?' };
                Db {
                    url: format!(
                        "{base}{sep}options=-c%20search_path%3D{schema}&application_name={app}"
                    ),
                    sqlite_path: None,
                    pg: Some((base, schema, app)),
                }
            }
        }
    }

    /// A separate connection pool for reading what the gateway wrote.
    pub async fn reader(&self) -> Store {
        match &self.pg {
            None => Store::connect(&self.url, 2).await.unwrap(),
            Some((base, schema, _)) => fastgate_store::testing::connect_pg_schema(base, schema)
                .await
                .unwrap(),
        }
    }

    /// Make the audit table unwritable for the gateway until the lock is released.
    /// SQLite: another connection holds `BEGIN EXCLUSIVE`. PostgreSQL: the table is
    /// locked `ACCESS EXCLUSIVE` and the gateway's connections are terminated.
    pub async fn outage(&self) -> DbLock {
        match (&self.sqlite_path, &self.pg) {
            (Some(path), _) => fastgate_store::testing::lock_sqlite_exclusive(path)
                .await
                .unwrap(),
            (None, Some((base, schema, app))) => {
                let (lock, terminated) =
                    fastgate_store::testing::lock_pg_audit_table(base, schema, app)
                        .await
                        .unwrap();
                assert!(terminated > 0, "no gateway connection found to terminate");
                eprintln!("outage: terminated {terminated} gateway connections");
                lock
            }
            (None, None) => unreachable!(),
        }
    }

    pub async fn cleanup(self) {
        if let Some((base, schema, _)) = self.pg {
            let _ = drop_isolated_pg(&base, &schema).await;
        }
    }
}

/// A full config: the database, a fixed admin token, `data_dir`, one route to the mock.
pub fn config_yaml(db_url: &str, data_dir: &Path, mock_url: &str, audit: &str) -> String {
    format!(
        "server: {{ listen: \"127.0.0.1:0\" }}\n\
         database: {{ url: \"{db_url}\" }}\n\
         admin: {{ token: \"{ADMIN_TOKEN}\" }}\n\
         data_dir: \"{}\"\n\
         audit: {{ {audit} }}\n\
         upstreams:\n  - name: mock\n    kind: openai\n    base_url: \"{mock_url}\"\n\
         routes:\n  - name: v1\n    match: {{ path: \"/v1/**\" }}\n    upstream: mock\n",
        data_dir.display()
    )
}

/// Create a key through the admin API of the gateway at `base`: (id, secret).
pub async fn create_key(http: &reqwest::Client, base: &str) -> (String, String) {
    let resp = http
        .post(format!("{base}/admin/api/keys"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&serde_json::json!({ "name": "load" }))
        .timeout(TIMEOUT)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let v: Value = resp.json().await.unwrap();
    (
        v["id"].as_str().unwrap().to_owned(),
        v["key"].as_str().unwrap().to_owned(),
    )
}

/// Every audit row of `key_id`, oldest first.
pub async fn rows_of_key(store: &Store, key_id: &str) -> Vec<AuditRecord> {
    let mut out = Vec::new();
    loop {
        let page = store
            .query_audit(&AuditFilter {
                key_id: Some(key_id.to_owned()),
                order: SortOrder::Asc,
                limit: Some(1000),
                offset: Some(u32::try_from(out.len()).unwrap()),
                ..AuditFilter::default()
            })
            .await
            .unwrap();
        let n = page.len();
        out.extend(page);
        if n < 1000 {
            return out;
        }
    }
}

/// Total bytes of the audit journal segments in `spill_dir`.
pub fn journal_bytes(spill_dir: &Path) -> u64 {
    std::fs::read_dir(spill_dir).map_or(0, |entries| {
        entries
            .filter_map(Result::ok)
            .filter(|e| {
                e.file_name()
                    .to_str()
                    .is_some_and(|n| n.starts_with(fastgate_audit::JOURNAL_PREFIX))
            })
            .filter_map(|e| e.metadata().ok())
            .map(|m| m.len())
            .sum()
    })
}
