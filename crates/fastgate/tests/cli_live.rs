//! The live-configuration commands of the `fastgate` binary: `upstreams`,
//! `credentials` (with `rotate-master-key`) and `routes`, on the database of
//! `--config` and through a running gateway's admin API.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::Duration;

use common::{ADMIN_TOKEN, Backend, DEFAULT_ROUTES, Harness};
use fastgate_store::{AdminEventFilter, Store, StoredCredential};
use fastgate_upstream::MasterKey;
use serde_json::Value;

const SECRET: &str = "sk-live-secret-abcd1234";

/// Runs the binary with a clean environment for the variables it reads.
fn fastgate(args: &[&str], envs: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_fastgate"));
    cmd.args(args);
    for var in [
        "FASTGATE_CONFIG",
        "FASTGATE_ADMIN_URL",
        "FASTGATE_ADMIN_TOKEN",
        "FASTGATE_MASTER_KEY",
    ] {
        cmd.env_remove(var);
    }
    for (k, v) in envs {
        cmd.env(k, v);
    }
    common::run_bounded(&mut cmd, Duration::from_secs(30))
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Runs and requires success; the provider key must never be printed.
fn ok(args: &[&str], envs: &[(&str, &str)]) -> String {
    let out = fastgate(args, envs);
    assert!(
        out.status.success(),
        "fastgate {args:?} failed:\n{}{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(!stdout(&out).contains(SECRET) && !stderr(&out).contains(SECRET));
    stdout(&out)
}

/// Runs with `--json` and parses stdout.
fn ok_json(args: &[&str], envs: &[(&str, &str)]) -> Value {
    let mut all = args.to_vec();
    all.push("--json");
    let text = ok(&all, envs);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{args:?}: {e}: {text}"))
}

fn names(list: &Value) -> Vec<String> {
    list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap().to_string())
        .collect()
}

/// A config file on its own database (SQLite in the directory, or an isolated
/// PostgreSQL schema) with one upstream and one route in the file.
struct Setup {
    dir: tempfile::TempDir,
    config: String,
    database_url: String,
    pg: Option<(String, String)>,
}

impl Setup {
    async fn new(backend: Backend) -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let (database_url, pg) = match backend {
            Backend::Sqlite => (
                format!("sqlite://{}/fastgate.db", dir.path().display()),
                None,
            ),
            Backend::Postgres => {
                let base = fastgate_store::testing::pg_test_url().unwrap();
                let (store, schema) = fastgate_store::testing::connect_isolated_pg(&base)
                    .await
                    .unwrap();
                store.close().await;
                let sep = if base.contains('?') { '&' } else { '?' };
                let url = format!("{base}{sep}options=-c%20search_path%3D{schema}");
                (url, Some((base, schema)))
            }
        };
        let config = dir.path().join("fastgate.yaml");
        std::fs::write(
            &config,
            format!(
                "database: {{ url: \"{database_url}\" }}\ndata_dir: \"{}\"\n\
                 upstreams: [ {{ name: filed, kind: http, base_url: \"{}\" }} ]\n\
                 routes: [ {{ name: file-route, match: {{ path: \"/file\" }}, upstream: filed }} ]\n",
                dir.path().display(),
                common::dead_url()
            ),
        )
        .unwrap();
        Setup {
            config: config.display().to_string(),
            dir,
            database_url,
            pg,
        }
    }

    fn file(&self, name: &str, text: &str) -> String {
        let p = self.dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p.display().to_string()
    }

    fn key_path(&self) -> PathBuf {
        self.dir.path().join("master_key")
    }

    /// `fastgate <args> --config <file>`.
    fn ok(&self, args: &[&str]) -> String {
        ok(&[args, &["--config", &self.config]].concat(), &[])
    }

    fn json(&self, args: &[&str]) -> Value {
        ok_json(&[args, &["--config", &self.config]].concat(), &[])
    }

    fn fails(&self, args: &[&str]) -> String {
        let out = fastgate(&[args, &["--config", &self.config]].concat(), &[]);
        assert!(
            !out.status.success(),
            "{args:?} succeeded: {}",
            stdout(&out)
        );
        assert!(!stdout(&out).contains(SECRET) && !stderr(&out).contains(SECRET));
        stderr(&out)
    }

    async fn store(&self) -> Store {
        Store::connect(&self.database_url, 1).await.unwrap()
    }

    async fn cleanup(self) {
        if let Some((base, schema)) = &self.pg {
            let _ = fastgate_store::testing::drop_isolated_pg(base, schema).await;
        }
    }
}

async fn add_upstream_and_key(s: &Setup) {
    let out = s.ok(&[
        "upstreams",
        "add",
        "--name",
        "api-up",
        "--kind",
        "openai",
        "--base-url",
        &common::dead_url(),
    ]);
    assert!(out.contains("created upstream 'api-up'"), "{out}");
    let key_file = s.file("provider.key", &format!("{SECRET}\n"));
    let v = s.json(&[
        "credentials",
        "add",
        "api-up",
        "--name",
        "k1",
        "--key-file",
        &key_file,
        "--weight",
        "2",
        "--requests-per-day",
        "500",
    ]);
    assert_eq!(v["key_hint"], "…1234");
    assert_eq!(v["weight"], 2);
    assert_eq!(v["quota"]["requests_per_day"], 500, "{v}");
    assert_eq!(v["source"], "api");
}

async fn upstreams_credentials_and_routes_in_db(backend: Backend) {
    let s = Setup::new(backend).await;
    add_upstream_and_key(&s).await;

    let text = s.ok(&["credentials", "list", "api-up"]);
    assert!(text.contains("k1") && text.contains("…1234"), "{text}");
    let list = s.json(&["upstreams", "list"]);
    assert_eq!(list["object"], "list");
    assert_eq!(names(&list), ["filed", "api-up"]);
    assert_eq!(list["data"][0]["source"], "config");
    assert_eq!(list["data"][1]["credentials"][0]["key_hint"], "…1234");
    let shown = s.json(&["upstreams", "show", "api-up"]);
    assert_eq!(shown["kind"], "openai");

    let route = s.file(
        "route.yaml",
        "name: api-route\nmatch: { path: \"/api/**\" }\nupstream: api-up\n\
         add_headers: { x-tenant: tenant-secret }\n",
    );
    assert!(
        s.ok(&["routes", "add", "--file", &route])
            .contains("created route 'api-route'")
    );
    let routes = s.json(&["routes", "list"]);
    assert_eq!(names(&routes), ["file-route", "api-route"]);
    assert_eq!(routes["data"][1]["add_headers"]["x-tenant"], "[redacted]");
    assert!(s.ok(&["routes", "list"]).contains("api-route"));

    // A route to an unknown upstream: the field path, and nothing stored.
    let bad = s.file(
        "bad.json",
        r#"{"name":"bad","match":{"path":"/bad"},"upstream":"nope"}"#,
    );
    let err = s.fails(&["routes", "add", "--file", &bad]);
    assert!(
        err.contains("routes[bad].upstream") && err.contains("nope"),
        "{err}"
    );
    assert_eq!(
        names(&s.json(&["routes", "list"])),
        ["file-route", "api-route"]
    );
    // A field of the wrong type names the field.
    let typo = s.file(
        "typo.yaml",
        "name: t\nmatch: { path: \"/t\" }\nupstream: api-up\npriority: high\n",
    );
    let err = s.fails(&["routes", "add", "--file", &typo]);
    assert!(err.contains("priority"), "{err}");

    let t = s.json(&["routes", "toggle", "api-route", "--active", "false"]);
    assert_eq!(t["active"], false);
    assert!(s.ok(&["routes", "list"]).contains("(inactive)"));
    assert!(
        s.ok(&["routes", "toggle", "api-route"])
            .contains("now active")
    );

    // File objects are read-only; an upstream in use is kept.
    assert!(
        s.fails(&["upstreams", "remove", "filed"])
            .contains("read-only")
    );
    assert!(
        s.fails(&["upstreams", "remove", "api-up"])
            .contains("in use")
    );

    let store = s.store().await;
    let events = store
        .list_admin_events(&AdminEventFilter {
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(events.iter().all(|e| e.actor == "cli"));
    let route_event = events
        .iter()
        .find(|e| e.object_kind == "route" && e.action == "create")
        .unwrap();
    assert_eq!(
        route_event.after.as_ref().unwrap()["add_headers"]["x-tenant"],
        "[redacted]"
    );
    let all = serde_json::to_string(
        &events
            .iter()
            .map(|e| (&e.before, &e.after))
            .collect::<Vec<_>>(),
    )
    .unwrap();
    assert!(!all.contains(SECRET) && !all.contains("tenant-secret"));
    store.close().await;

    s.ok(&["routes", "remove", "api-route"]);
    s.ok(&["credentials", "remove", "api-up", "k1"]);
    s.ok(&["upstreams", "remove", "api-up"]);
    assert_eq!(names(&s.json(&["upstreams", "list"])), ["filed"]);
    assert_eq!(names(&s.json(&["routes", "list"])), ["file-route"]);
    s.cleanup().await;
}

both_backends!(
    upstreams_credentials_and_routes_in_db,
    upstreams_credentials_and_routes_in_db
);

#[test]
fn provider_key_from_env_and_upstream_from_file() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let s = rt.block_on(Setup::new(Backend::Sqlite));
    let up = s.file(
        "up.yaml",
        &format!(
            "name: from-file\nkind: http\nbase_url: \"{}\"\ncredentials: [ {{ name: inline, key: \"{SECRET}\" }} ]\n",
            common::dead_url()
        ),
    );
    let v = s.json(&["upstreams", "add", "-f", &up]);
    assert_eq!(v["credentials"][0]["name"], "inline");
    assert_eq!(v["credentials"][0]["key_hint"], "…1234");
    let args = [
        "credentials",
        "add",
        "from-file",
        "--name",
        "env",
        "--key-env",
        "PROVIDER_KEY",
        "--config",
        &s.config,
    ];
    ok(&args, &[("PROVIDER_KEY", SECRET)]);
    // Adding the same name again is refused; --replace changes the weight only.
    let key_file = s.file("provider.key", SECRET);
    let again = s.fails(&[
        "credentials",
        "add",
        "from-file",
        "--name",
        "env",
        "--key-file",
        &key_file,
    ]);
    assert!(again.contains("already exists"), "{again}");
    let v = s.json(&[
        "credentials",
        "add",
        "from-file",
        "--name",
        "env",
        "--replace",
        "--weight",
        "5",
    ]);
    assert_eq!(v["weight"], 5);
    assert_eq!(v["key_hint"], "…1234");
    let err = s.fails(&["credentials", "add", "from-file", "--name", "none"]);
    assert!(err.contains("--key-file"), "{err}");
}

/// Seal `key` under a key that is not the gateway's (an unreadable credential).
async fn store_foreign_credential(store: &Store) {
    let (other, _) = MasterKey::generate().unwrap();
    store
        .upsert_credential(&StoredCredential {
            upstream: "api-up".into(),
            name: "foreign".into(),
            sealed_key: other.seal("sk-foreign-0000", "api-up/foreign").unwrap(),
            key_hint: "…0000".into(),
            weight: 1,
            quota: None,
        })
        .await
        .unwrap();
}

async fn rotate_master_key_in_files(backend: Backend) {
    let s = Setup::new(backend).await;
    add_upstream_and_key(&s).await;
    let old_text = std::fs::read_to_string(s.key_path()).unwrap();
    let old = MasterKey::from_text(&old_text).unwrap();
    let store = s.store().await;
    store_foreign_credential(&store).await;

    // One key the current master key cannot open: refused, nothing changed.
    let err = s.fails(&["credentials", "rotate-master-key"]);
    assert!(err.contains("api-up/foreign"), "{err}");
    assert_eq!(std::fs::read_to_string(s.key_path()).unwrap(), old_text);
    assert!(!s.dir.path().join("master_key.new").exists());

    let v = s.json(&["credentials", "rotate-master-key", "--skip-unreadable"]);
    assert_eq!(v["resealed"], 1);
    assert_eq!(v["old_key_id"], old.id());
    assert!(
        v.get("new_master_key").is_none(),
        "the key is in the file: {v}"
    );
    let new_text = std::fs::read_to_string(s.key_path()).unwrap();
    let new = MasterKey::from_text(&new_text).unwrap();
    assert_eq!(v["new_key_id"], new.id());
    assert_ne!(new.id(), old.id());
    assert_eq!(
        std::fs::read_to_string(s.dir.path().join("master_key.old"))
            .unwrap()
            .trim(),
        old_text.trim()
    );
    assert!(!s.dir.path().join("master_key.new").exists());

    let sealed = store.list_credentials().await.unwrap();
    let k1 = sealed.iter().find(|c| c.name == "k1").unwrap();
    assert_eq!(
        new.open(&k1.sealed_key, "api-up/k1").unwrap().expose(),
        SECRET
    );
    assert!(old.open(&k1.sealed_key, "api-up/k1").is_err());
    let live = fastgate_live::load(&store, Some(&new)).await.unwrap();
    let k1 = live.credentials.iter().find(|c| c.name == "k1").unwrap();
    assert_eq!(k1.key.expose(), SECRET);
    assert_eq!(live.problems.len(), 1, "{:?}", live.problems);

    let events = store
        .list_admin_events(&AdminEventFilter {
            action: Some("rotate-master-key".into()),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].object_kind, "master_key");
    assert_eq!(
        events[0].before.as_ref().unwrap(),
        &serde_json::json!({ "key_id": old.id() })
    );
    assert_eq!(
        events[0].after.as_ref().unwrap(),
        &serde_json::json!({ "key_id": new.id() })
    );
    store.close().await;

    // The CLI (like a restarted gateway) now reads the key with the new master key.
    assert!(s.ok(&["credentials", "list", "api-up"]).contains("…1234"));
    s.cleanup().await;
}

both_backends!(rotate_master_key_in_files, rotate_master_key_in_files);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotate_master_key_from_env_prints_the_new_key_and_writes_no_file() {
    let s = Setup::new(Backend::Sqlite).await;
    let (env_key, env_text) = MasterKey::generate().unwrap();
    let env = [("FASTGATE_MASTER_KEY", env_text.as_str())];
    let key_file = s.file("provider.key", SECRET);
    let base = ["--config", s.config.as_str()];
    ok(
        &[
            &[
                "upstreams",
                "add",
                "--name",
                "api-up",
                "--kind",
                "http",
                "--base-url",
                "http://127.0.0.1:9",
            ][..],
            &base,
        ]
        .concat(),
        &env,
    );
    ok(
        &[
            &[
                "credentials",
                "add",
                "api-up",
                "--name",
                "k1",
                "--key-file",
                &key_file,
            ][..],
            &base,
        ]
        .concat(),
        &env,
    );
    assert!(!s.key_path().exists(), "the env key is used, no file");

    let v = ok_json(
        &[&["credentials", "rotate-master-key"][..], &base].concat(),
        &env,
    );
    assert_eq!(v["resealed"], 1);
    assert_eq!(v["old_key_id"], env_key.id());
    let new = MasterKey::from_text(v["new_master_key"].as_str().unwrap()).unwrap();
    assert_eq!(v["new_key_id"], new.id());
    assert!(!s.key_path().exists());
    assert!(!s.dir.path().join("master_key.new").exists());

    let store = s.store().await;
    let live = fastgate_live::load(&store, Some(&new)).await.unwrap();
    assert_eq!(live.credentials[0].key.expose(), SECRET);
    assert!(live.problems.is_empty());
    let old_view = fastgate_live::load(&store, Some(&env_key)).await.unwrap();
    assert!(old_view.credentials.is_empty());
    store.close().await;

    // With --admin-url the rotation is refused: it needs the database and the key file.
    let out = fastgate(
        &[
            &[
                "credentials",
                "rotate-master-key",
                "--admin-url",
                "http://127.0.0.1:9",
                "--admin-token",
                "t",
            ][..],
            &base,
        ]
        .concat(),
        &[],
    );
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("drop --admin-url"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn admin_url_errors_are_reported() {
    let dead = common::dead_url();
    let out = fastgate(&["upstreams", "list", "--admin-url", &dead], &[]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("FASTGATE_ADMIN_TOKEN"),
        "{}",
        stderr(&out)
    );
    let out = fastgate(
        &["upstreams", "list"],
        &[("FASTGATE_ADMIN_URL", &dead), ("FASTGATE_ADMIN_TOKEN", "t")],
    );
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("cannot reach the admin API"),
        "{}",
        stderr(&out)
    );
    assert!(!stderr(&out).contains("\"t\""));
}

/// Runs the CLI against the harness's admin API (off the async workers).
async fn http_cli(h: &Harness, args: &[&str]) -> Output {
    let mut all: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    all.extend(["--admin-url".into(), h.base.clone()]);
    tokio::task::spawn_blocking(move || {
        let refs: Vec<&str> = all.iter().map(String::as_str).collect();
        fastgate(&refs, &[("FASTGATE_ADMIN_TOKEN", ADMIN_TOKEN)])
    })
    .await
    .unwrap()
}

async fn http_json(h: &Harness, args: &[&str]) -> Value {
    let out = http_cli(h, &[args, &["--json"]].concat()).await;
    assert!(
        out.status.success(),
        "{args:?}: {}{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(!stdout(&out).contains(SECRET));
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{args:?}: {e}: {}", stdout(&out)))
}

async fn cli_over_admin_api(backend: Backend) {
    let h = Harness::start(backend, DEFAULT_ROUTES).await;
    let list = http_json(&h, &["upstreams", "list"]).await;
    assert!(names(&list).contains(&"mock".to_string()), "{list}");

    let mock_url = h.mock.url();
    http_json(
        &h,
        &[
            "upstreams",
            "add",
            "--name",
            "api-up",
            "--kind",
            "openai",
            "--base-url",
            &mock_url,
        ],
    )
    .await;
    let key_file = h.dir.path().join("provider.key");
    std::fs::write(&key_file, SECRET).unwrap();
    let key_file = key_file.display().to_string();
    http_json(
        &h,
        &[
            "credentials",
            "add",
            "api-up",
            "--name",
            "k1",
            "--key-file",
            &key_file,
        ],
    )
    .await;
    let creds = http_json(&h, &["credentials", "list", "api-up"]).await;
    assert_eq!(creds["data"][0]["key_hint"], "…1234");

    let route = h.dir.path().join("route.yaml");
    std::fs::write(
        &route,
        "name: api-route\nmatch: { path: \"/api/**\" }\nupstream: api-up\n",
    )
    .unwrap();
    let route = route.display().to_string();
    http_json(&h, &["routes", "add", "--file", &route]).await;
    let report = http_json(&h, &["routes", "test", "--path", "/api/x"]).await;
    assert_eq!(report["route"], "api-route");
    let toggled = http_json(&h, &["routes", "toggle", "api-route", "--active", "false"]).await;
    assert_eq!(toggled["active"], false);

    let bad = h.dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        "name: bad\nmatch: { path: \"/bad\" }\nupstream: nope\n",
    )
    .unwrap();
    let out = http_cli(&h, &["routes", "add", "--file", &bad.display().to_string()]).await;
    assert!(!out.status.success());
    assert!(stderr(&out).contains("upstream"), "{}", stderr(&out));

    for args in [
        &["routes", "remove", "api-route"][..],
        &["credentials", "remove", "api-up", "k1"],
        &["upstreams", "remove", "api-up"],
    ] {
        let out = http_cli(&h, args).await;
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
    }
    let list = http_json(&h, &["upstreams", "list"]).await;
    assert!(!names(&list).contains(&"api-up".to_string()));
    h.stop().await;
}

both_backends!(over_http, cli_over_admin_api);
