//! Secrets stay secret: config and model redaction in the admin API, the
//! generated admin token never printed, private files, key-labelled metrics only
//! for an authenticated scrape, admin input validation without raw database
//! errors.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
mod subprocess;

use std::time::{Duration, Instant};

use common::{ADMIN_TOKEN, Backend, Harness};
use serde_json::{Value, json};

const CONFIG_SECRET: &str = "cfg-canary-7c1d0e";

fn transforms_yaml() -> String {
    r#"
upstreams:
  - name: mock
    kind: openai
    base_url: "{MOCK}"
    credentials: [ { name: k1, key: "sk-provider-canary" } ]
    headers: { x-tenant-key: "CS-up-headers" }
    add_headers: { x-up-add: "CS-up-add" }
    add_body_fields: { up_field: "CS-up-body" }
  - { name: builtin, kind: mock }
routes:
  - name: r
    match: { path: "/r/**", headers: { x-shared-secret: "CS-match" } }
    upstream: mock
    add_headers: { x-route-add: "CS-route-add" }
    add_body_fields: { route_field: { nested: "CS-route-body" } }
models:
  - name: m
    deployments:
      - { upstream: builtin, model: mock-1, add_headers: { x-dep: "CS-dep-add" }, add_body_fields: { dep_field: "CS-dep-body" } }
"#
    .replace("CS", CONFIG_SECRET)
}

async fn config_and_models_redact_transform_values(backend: Backend) {
    let h = Harness::start(backend, &transforms_yaml()).await;
    let resp = h
        .http
        .post(h.url("/admin/api/models"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({ "name": "api-m", "deployments": [ {
            "upstream": "builtin", "model": "mock-1",
            "add_headers": { "x-api-dep": format!("{CONFIG_SECRET}-api-add") },
            "add_body_fields": { "f": format!("{CONFIG_SECRET}-api-body") } } ] }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let created = resp.text().await.unwrap();
    assert!(!created.contains(CONFIG_SECRET), "{created}");

    let config: Value = h.admin_get("/admin/api/config").await.json().await.unwrap();
    let models: Value = h.admin_get("/admin/api/models").await.json().await.unwrap();
    for (what, v) in [("config", &config), ("models", &models)] {
        let text = v.to_string();
        assert!(!text.contains(CONFIG_SECRET), "{what}: {text}");
        assert!(!text.contains("sk-provider-canary"), "{what}: {text}");
    }
    // Names stay visible, values are replaced.
    let up = &config["upstreams"][0];
    assert_eq!(up["headers"]["x-tenant-key"], "[redacted]");
    assert_eq!(up["add_headers"]["x-up-add"], "[redacted]");
    assert_eq!(up["add_body_fields"]["up_field"], "[redacted]");
    assert_eq!(up["credentials"][0]["key"], "[redacted]");
    let route = &config["routes"][0];
    assert_eq!(route["add_headers"]["x-route-add"], "[redacted]");
    assert_eq!(route["add_body_fields"]["route_field"], "[redacted]");
    assert_eq!(route["match"]["headers"]["x-shared-secret"], "[redacted]");
    assert_eq!(route["match"]["path"], "/r/**");
    assert_eq!(
        config["models"][0]["deployments"][0]["add_headers"]["x-dep"],
        "[redacted]"
    );
    let listed = models["data"].as_array().unwrap();
    let api = listed.iter().find(|m| m["name"] == "api-m").unwrap();
    assert_eq!(
        api["deployments"][0]["add_headers"]["x-api-dep"],
        "[redacted]"
    );
    assert_eq!(api["deployments"][0]["add_body_fields"]["f"], "[redacted]");
    assert_eq!(api["deployments"][0]["model"], "mock-1");
    let file = listed.iter().find(|m| m["name"] == "m").unwrap();
    assert_eq!(
        file["deployments"][0]["add_body_fields"]["dep_field"],
        "[redacted]"
    );
    h.stop().await;
}
both_backends!(
    config_and_models_redact_transform_values,
    config_and_models_redact_transform_values
);

/// 400, the field named in the message, and nothing of the database in the body.
async fn assert_bad_field(resp: reqwest::Response, field: &str) {
    let status = resp.status();
    let text = resp.text().await.unwrap();
    assert_eq!(status, 400, "{field}: {text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    let msg = v["error"]["message"].as_str().unwrap();
    assert!(msg.starts_with(&format!("{field}:")), "{field}: {msg}");
    for raw in ["database", "sqlx", "sqlite", "postgres", "UTF8", "0x00"] {
        assert!(!text.contains(raw), "{field}: raw error in {text}");
    }
}

async fn admin_input_with_nul_is_a_400_naming_the_field(backend: Backend) {
    let h = Harness::start(backend, common::DEFAULT_ROUTES).await;
    let post = |body: Value| {
        h.http
            .post(h.url("/admin/api/keys"))
            .bearer_auth(ADMIN_TOKEN)
            .json(&body)
            .send()
    };
    assert_bad_field(
        post(json!({ "name": "nul-source", "source": "team\u{0}a" }))
            .await
            .unwrap(),
        "source",
    )
    .await;
    assert_bad_field(post(json!({ "name": "a\u{0}b" })).await.unwrap(), "name").await;
    assert_bad_field(
        post(json!({ "name": "ok", "allowed_models": ["gpt", "x\u{0}"] }))
            .await
            .unwrap(),
        "allowed_models[1]",
    )
    .await;
    assert_bad_field(
        post(json!({ "name": "ok", "source": "s".repeat(300) }))
            .await
            .unwrap(),
        "source",
    )
    .await;
    assert_bad_field(
        post(json!({ "name": "ok", "nme": "typo" })).await.unwrap(),
        "request body",
    )
    .await;
    // Nothing was stored by the refused requests.
    let keys: Value = h.admin_get("/admin/api/keys").await.json().await.unwrap();
    assert_eq!(keys["data"].as_array().unwrap().len(), 0, "{keys}");

    let (id, _) = h.create_key(json!({ "name": "fine" })).await;
    let resp = h
        .http
        .patch(h.url(&format!("/admin/api/keys/{id}")))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({ "source": "x\u{0}" }))
        .send()
        .await
        .unwrap();
    assert_bad_field(resp, "source").await;
    assert_bad_field(h.admin_get("/admin/api/keys/ab%00cd").await, "id").await;
    assert_bad_field(h.admin_get("/admin/api/logs/ab%00cd").await, "id").await;
    assert_bad_field(h.admin_get("/admin/api/logs?model=a%00b").await, "model").await;
    assert_bad_field(h.admin_get("/admin/api/logs?key_id=a%00b").await, "key_id").await;
    let resp = h
        .http
        .post(h.url("/admin/api/models"))
        .bearer_auth(ADMIN_TOKEN)
        .json(
            &json!({ "name": "m", "deployments": [ { "upstream": "mock", "model": "x",
            "add_body_fields": { "f": "a\u{0}b" } } ] }),
        )
        .send()
        .await
        .unwrap();
    assert_bad_field(resp, "deployments[0].add_body_fields.f").await;
    let one: Value = h
        .admin_get(&format!("/admin/api/keys/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        one["source"],
        Value::Null,
        "refused update left the key alone"
    );

    // A storage failure: a fixed message, no database text.
    h.server().state.store().close().await;
    let resp = h.admin_get("/admin/api/keys").await;
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    assert!(status == 503 || status == 500, "{status} {text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    let msg = v["error"]["message"].as_str().unwrap();
    assert!(
        msg == "the database is unavailable; try again shortly"
            || msg == "internal storage error (details are in the server log)",
        "{msg}"
    );
    assert!(!text.contains("pool") && !text.contains("closed"), "{text}");
    h.stop().await;
}
both_backends!(
    admin_input_with_nul_is_a_400_naming_the_field,
    admin_input_with_nul_is_a_400_naming_the_field
);

const METRICS_MODELS: &str = r#"
upstreams:
  - { name: builtin, kind: mock }
models:
  - { name: priced, deployments: [ { upstream: builtin, model: mock-1 } ], price: { input: 1.0, output: 2.0 } }
"#;

async fn scrape(h: &Harness, token: Option<&str>) -> (u16, String) {
    let mut req = h
        .http
        .get(h.url("/metrics"))
        .timeout(Duration::from_secs(10));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

/// One chat call with a key named `name`; waits until an admin scrape shows its series.
async fn spend_with_key(h: &Harness, name: &str) {
    let (_, key) = h.create_key(json!({ "name": name })).await;
    let resp = h
        .http
        .post(h.url("/v1/chat/completions"))
        .bearer_auth(&key)
        .timeout(Duration::from_secs(10))
        .json(&json!({ "model": "priced", "messages": [ { "role": "user", "content": "hi" } ] }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    resp.bytes().await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (status, text) = scrape(h, Some(ADMIN_TOKEN)).await;
        assert_eq!(status, 200);
        let series = format!("fastgate_cost_micro_usd_total{{key=\"{name}\"");
        if text.contains(&series)
            && text.contains(&format!("key=\"{name}\",model=\"priced\",type=\"output\""))
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "no per-key series for {name}:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_per_key_series_only_for_an_authenticated_scrape() {
    let h = Harness::start(Backend::Sqlite, METRICS_MODELS).await;
    let name = format!("metrics-alice-{}", uuid::Uuid::now_v7());
    spend_with_key(&h, &name).await;
    let (status, anon) = scrape(&h, None).await;
    assert_eq!(status, 200, "anonymous scrape still works by default");
    assert!(
        anon.contains("fastgate_requests_total{route=\"llm\",status=\"200\"}"),
        "{anon}"
    );
    assert!(anon.contains("fastgate_requests_in_flight"), "{anon}");
    assert!(
        !anon.contains(&name),
        "key name in an anonymous scrape:\n{anon}"
    );
    assert!(!anon.contains("key=\""), "{anon}");
    assert!(!anon.contains("fastgate_tokens_total"), "{anon}");
    assert!(!anon.contains("fastgate_cost_micro_usd_total"), "{anon}");
    // A wrong token is anonymous.
    let (_, wrong) = scrape(&h, Some("not-the-admin-token-000")).await;
    assert!(!wrong.contains(&name));
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_require_auth_refuses_anonymous_scrapes() {
    let yaml = format!("metrics: {{ require_auth: true }}\n{METRICS_MODELS}");
    let h = Harness::start(Backend::Sqlite, &yaml).await;
    let name = format!("metrics-bob-{}", uuid::Uuid::now_v7());
    spend_with_key(&h, &name).await;
    let (status, body) = scrape(&h, None).await;
    assert_eq!(status, 401, "{body}");
    assert!(!body.contains(&name));
    let (status, full) = scrape(&h, Some(ADMIN_TOKEN)).await;
    assert_eq!(status, 200);
    assert!(full.contains(&format!("key=\"{name}\"")), "{full}");
    h.stop().await;
}

fn write_config(dir: &std::path::Path, data_dir: &std::path::Path) -> std::path::PathBuf {
    let cfg = dir.join("fastgate.yaml");
    std::fs::write(
        &cfg,
        format!(
            "server: {{ listen: \"127.0.0.1:0\" }}\ndata_dir: \"{}\"\n",
            data_dir.display()
        ),
    )
    .unwrap();
    cfg
}

#[cfg(unix)]
fn mode(p: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

/// The real binary on a fresh data directory: the generated admin token is in its
/// 0600 file and in no output; directory 0700; database, WAL and SHM 0600.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generated_admin_token_is_never_printed_and_state_is_private() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("state/data");
    let cfg = write_config(tmp.path(), &data);
    let gw = subprocess::Gateway::start(&cfg, tmp.path(), &[("FASTGATE_LOG", "debug")]);
    let token_file = data.join("admin_token");
    let token = std::fs::read_to_string(&token_file)
        .unwrap()
        .trim()
        .to_string();
    assert!(token.len() >= 16);
    // Use it, so the database is written (WAL and SHM exist).
    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let resp = http
        .post(gw.url("/admin/api/keys"))
        .bearer_auth(&token)
        .json(&json!({ "name": "perm-check" }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    assert_eq!(mode(&data), 0o700);
    assert_eq!(mode(&tmp.path().join("state")), 0o700);
    assert_eq!(mode(&token_file), 0o600);
    for f in ["fastgate.db", "fastgate.db-wal", "fastgate.db-shm"] {
        assert_eq!(mode(&data.join(f)), 0o600, "{f}");
    }
    let logs = gw.logs();
    assert!(
        logs.contains(&format!("saved to {}", token_file.display())),
        "the banner names the file:\n{logs}"
    );
    assert_eq!(gw.stop(), Some(0));
    let logs = std::fs::read_to_string(tmp.path().join("gateway.stdout")).unwrap()
        + &std::fs::read_to_string(tmp.path().join("gateway.stderr")).unwrap();
    assert!(!logs.contains(&token), "admin token printed:\n{logs}");

    // Second start: the existing token is reused, still not printed.
    let gw = subprocess::Gateway::start(&cfg, tmp.path(), &[]);
    // The banner is printed once the listener runs, so it may trail readiness.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !gw.logs().contains("admin token: stored in") && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        gw.logs().contains("admin token: stored in"),
        "{}",
        gw.logs()
    );
    assert!(!gw.logs().contains(&token));
    assert_eq!(gw.stop(), Some(0));
}

/// An admin-token file that group or others can read: `serve` refuses to start,
/// says why, and exits with the invalid-configuration code.
#[cfg(unix)]
#[test]
fn readable_admin_token_file_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let token_file = data.join("admin_token");
    std::fs::write(&token_file, "fga_0123456789abcdefghijklmnop\n").unwrap();
    let cfg = write_config(tmp.path(), &data);
    for m in [0o644, 0o640, 0o604] {
        std::fs::set_permissions(&token_file, std::fs::Permissions::from_mode(m)).unwrap();
        let child = std::process::Command::new(subprocess::BIN)
            .args(["serve", "--config"])
            .arg(&cfg)
            .env_remove("FASTGATE_CONFIG")
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(tmp.path().join("err")).unwrap())
            .spawn()
            .unwrap();
        let status = subprocess::wait_exit(child, Duration::from_secs(20))
            .unwrap_or_else(|| panic!("mode {m:o}: serve kept running"));
        let err = std::fs::read_to_string(tmp.path().join("err")).unwrap();
        assert_eq!(status.code(), Some(2), "mode {m:o}: {err}");
        assert!(err.contains(&token_file.display().to_string()), "{err}");
        assert!(
            err.contains("readable by other users") && err.contains("chmod 600"),
            "{err}"
        );
        assert!(!err.contains("fga_0123456789"), "token printed: {err}");
    }
}
