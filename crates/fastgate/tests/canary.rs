//! The canary run: the real binary (a subprocess, debug logging, output captured)
//! serves two canary gateway keys, a canary provider key and canary transform
//! values through every feature: proxy routes, the LLM endpoints (chat,
//! streamed chat, translated Anthropic calls both ways), error paths, the admin
//! API, /metrics and the CLI. Then every canary (the keys, their SHA-256 hex, the
//! provider key, the config secret, the admin token) is searched for in the
//! captured logs, every audit row (database and admin API), every scrape, every
//! admin GET, every proxy/LLM response (errors included), the CLI output and the
//! raw bytes of every file in the data directory: 0 hits.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod subprocess;

use std::path::Path;
use std::time::Duration;

use fastgate_testkit::{MockReply, MockUpstream};
use serde_json::{Value, json};
use subprocess::Gateway;

const PROVIDER: &str = "sk-CANARYprovider4f1e9a7bd2";
const CONFIG_SECRET: &str = "CANARYconfigsecret93be61";

fn config(mock: &str, data: &Path) -> String {
    format!(
        r#"
server: {{ listen: "127.0.0.1:0" }}
data_dir: "{data}"
audit: {{ flush_interval: 20ms }}
upstreams:
  - name: mock
    kind: openai
    base_url: "{mock}"
    credentials: [ {{ name: c1, key: "{PROVIDER}" }} ]
    headers: {{ x-tenant-key: "{CONFIG_SECRET}" }}
    retries: 0
  - name: ant
    kind: anthropic
    base_url: "{mock}"
    credentials: [ {{ name: a1, key: "{PROVIDER}" }} ]
    retries: 0
routes:
  - name: proxied
    match: {{ path: "/proxy/**" }}
    upstream: mock
    strip_prefix: true
    add_headers: {{ x-route-secret: "{CONFIG_SECRET}" }}
    add_body_fields: {{ tenant: "{CONFIG_SECRET}" }}
    audit: {{ headers: true, bodies: true, body_max_bytes: 65536 }}
  - name: forbidden
    match: {{ path: "/forbidden/**" }}
    upstream: mock
    audit: {{ headers: true, bodies: true }}
models:
  - name: gpt-canary
    deployments:
      - {{ upstream: mock, model: gpt-up, add_headers: {{ x-dep-secret: "{CONFIG_SECRET}" }},
          add_body_fields: {{ user: "{CONFIG_SECRET}" }} }}
    price: {{ input: 1.0, output: 2.0 }}
  - name: claude-canary
    deployments: [ {{ upstream: ant, model: claude-up }} ]
llm:
  audit: {{ headers: true, bodies: true, body_max_bytes: 65536 }}
"#,
        data = data.display()
    )
}

/// Everything a reader could see, by where it was seen.
#[derive(Default)]
struct Surfaces(Vec<(String, String)>);

impl Surfaces {
    fn add(&mut self, what: impl Into<String>, text: impl Into<String>) {
        self.0.push((what.into(), text.into()));
    }

    /// Record a response (status, headers, body) and return (status, body).
    async fn response(&mut self, what: &str, resp: reqwest::Response) -> (u16, String) {
        let status = resp.status().as_u16();
        let headers = format!("{:?}", resp.headers());
        let body = tokio::time::timeout(Duration::from_secs(10), resp.text())
            .await
            .unwrap_or_else(|_| panic!("{what}: body not read within 10 s"))
            .unwrap();
        self.add(format!("{what} [{status}] headers"), headers);
        self.add(format!("{what} [{status}] body"), body.clone());
        (status, body)
    }
}

fn sha256_hex(s: &str) -> String {
    fastgate_auth::hash_key_hex(s)
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(15))
        .build()
        .unwrap()
}

async fn create_key(
    http: &reqwest::Client,
    gw: &Gateway,
    admin: &str,
    body: Value,
) -> (String, String) {
    let resp = http
        .post(gw.url("/admin/api/keys"))
        .bearer_auth(admin)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    // The one place a secret is shown, by design: not recorded as a surface.
    let v: Value = resp.json().await.unwrap();
    (
        v["id"].as_str().unwrap().to_string(),
        v["key"].as_str().unwrap().to_string(),
    )
}

/// Proxy routes: credentials in every carrier, secrets in headers and query.
async fn proxy_traffic(http: &reqwest::Client, gw: &Gateway, k1: &str, s: &mut Surfaces) {
    let chat = json!({ "model": "m", "messages": [ { "role": "user", "content": "hello" } ] });
    let url = gw.url(&format!(
        "/proxy/v1/chat/completions?api_key={k1}&access_token={PROVIDER}&Signature={k1}&x=1"
    ));
    let resp = http
        .post(url)
        .bearer_auth(k1)
        .header("x-auth-canary", k1)
        .header("cookie", format!("session={k1}"))
        .header("x-session-token", PROVIDER)
        .header("apikey", k1)
        .header("x-mock-chunks", "3")
        .json(&chat)
        .send()
        .await
        .unwrap();
    let (status, body) = s.response("proxy chat", resp).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("chat.completion"), "{body}");
    for (name, value) in [("x-api-key", k1), ("x-goog-api-key", k1)] {
        let resp = http
            .get(gw.url("/proxy/v1/models"))
            .header(name, value)
            .send()
            .await
            .unwrap();
        let (status, body) = s.response(&format!("proxy models via {name}"), resp).await;
        assert_eq!(status, 200, "{body}");
    }
    let resp = http
        .get(gw.url(&format!("/proxy/v1/models?key={k1}&alt=json")))
        .send()
        .await
        .unwrap();
    let (status, _) = s.response("proxy models via ?key=", resp).await;
    assert_eq!(status, 200);
    // An upstream error relayed (a 429 comes last: see `provider_refusal`).
    let resp = http
        .post(gw.url("/proxy/v1/chat/completions"))
        .bearer_auth(k1)
        .header("x-mock-status", "500")
        .json(&chat)
        .send()
        .await
        .unwrap();
    let (status, _) = s.response("proxy upstream 500", resp).await;
    assert_eq!(status, 500);
}

/// A provider's 429 is relayed and cools the only key down (the built-in
/// rule): the next request gets 503 `no_credential`. The rule event, the stored
/// state and its reason are surfaces the canaries must not reach either.
async fn provider_refusal(http: &reqwest::Client, gw: &Gateway, k1: &str, s: &mut Surfaces) {
    let chat =
        json!({ "model": "gpt-canary", "messages": [ { "role": "user", "content": "hi" } ] });
    let resp = http
        .post(gw.url("/proxy/v1/chat/completions"))
        .bearer_auth(k1)
        .header("x-mock-status", "429")
        .json(&chat)
        .send()
        .await
        .unwrap();
    let (status, _) = s.response("proxy upstream 429", resp).await;
    assert_eq!(status, 429);
    let resp = http
        .post(gw.url("/proxy/v1/chat/completions"))
        .bearer_auth(k1)
        .json(&chat)
        .send()
        .await
        .unwrap();
    let (status, body) = s.response("no credential after a 429", resp).await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("no_credential"), "{body}");
}

/// The LLM endpoints: chat, streamed chat, both translations, models, errors.
async fn llm_traffic(
    http: &reqwest::Client,
    gw: &Gateway,
    mock: &MockUpstream,
    k1: &str,
    s: &mut Surfaces,
) {
    let msgs = json!([ { "role": "user", "content": "hi there" } ]);
    let resp = http
        .post(gw.url("/v1/chat/completions"))
        .bearer_auth(k1)
        .json(&json!({ "model": "gpt-canary", "messages": msgs }))
        .send()
        .await
        .unwrap();
    let (status, body) = s.response("llm chat", resp).await;
    assert_eq!(status, 200, "{body}");
    let resp = http
        .post(gw.url("/v1/chat/completions"))
        .header("x-api-key", k1)
        .json(
            &json!({ "model": "gpt-canary", "messages": msgs, "stream": true,
                       "stream_options": { "include_usage": true } }),
        )
        .send()
        .await
        .unwrap();
    let (status, body) = s.response("llm chat stream", resp).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("[DONE]"), "{body}");
    let resp = http
        .post(gw.url("/v1/messages"))
        .header("x-api-key", k1)
        .header("anthropic-version", "2023-06-01")
        .json(&json!({ "model": "gpt-canary", "max_tokens": 50, "messages": msgs }))
        .send()
        .await
        .unwrap();
    let (status, body) = s.response("anthropic client, openai upstream", resp).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"type\":\"message\""), "{body}");
    let resp = http
        .post(gw.url("/v1/chat/completions"))
        .bearer_auth(k1)
        .json(&json!({ "model": "claude-canary", "messages": msgs }))
        .send()
        .await
        .unwrap();
    let (status, body) = s.response("openai client, anthropic upstream", resp).await;
    assert_eq!(status, 200, "{body}");
    let resp = http
        .get(gw.url("/v1/models"))
        .bearer_auth(k1)
        .send()
        .await
        .unwrap();
    let (status, _) = s.response("llm models", resp).await;
    assert_eq!(status, 200);
    // Upstream 500 on the LLM path (one attempt: retries 0, no fallback).
    mock.enqueue(MockReply::error(500));
    let resp = http
        .post(gw.url("/v1/chat/completions"))
        .bearer_auth(k1)
        .json(&json!({ "model": "gpt-canary", "messages": msgs }))
        .send()
        .await
        .unwrap();
    let (status, body) = s.response("llm upstream 500", resp).await;
    assert!(status >= 500, "{status} {body}");
    // Bad JSON, both protocols; an unknown model.
    for (path, what) in [
        ("/v1/chat/completions", "openai"),
        ("/v1/messages", "anthropic"),
    ] {
        let resp = http
            .post(gw.url(path))
            .bearer_auth(k1)
            .header("content-type", "application/json")
            .body("{\"model\": \"gpt-canary\", not json")
            .send()
            .await
            .unwrap();
        let (status, body) = s.response(&format!("bad json {what}"), resp).await;
        assert_eq!(status, 400, "{body}");
    }
    let resp = http
        .post(gw.url("/v1/chat/completions"))
        .bearer_auth(k1)
        .json(&json!({ "model": "no-such-model", "messages": msgs }))
        .send()
        .await
        .unwrap();
    let (status, _) = s.response("llm unknown model", resp).await;
    assert!(status == 404 || status == 400, "{status}");
}

/// 401 (wrong, tampered, missing key), 403, 404, 429 from the gateway itself.
async fn gateway_errors(
    http: &reqwest::Client,
    gw: &Gateway,
    k1: &str,
    k2: &str,
    s: &mut Surfaces,
) {
    let tampered = format!("{k1}x");
    for (what, key) in [
        ("provider key", PROVIDER),
        ("tampered key", tampered.as_str()),
    ] {
        for path in ["/proxy/v1/models", "/v1/chat/completions"] {
            let resp = http
                .post(gw.url(path))
                .bearer_auth(key)
                .json(&json!({ "model": "gpt-canary", "messages": [] }))
                .send()
                .await
                .unwrap();
            let (status, _) = s.response(&format!("401 {what} {path}"), resp).await;
            assert_eq!(status, 401, "{what} {path}");
        }
    }
    let resp = http.get(gw.url("/proxy/v1/models")).send().await.unwrap();
    assert_eq!(s.response("401 no key", resp).await.0, 401);
    let resp = http
        .get(gw.url("/forbidden/x"))
        .bearer_auth(k2)
        .send()
        .await
        .unwrap();
    assert_eq!(s.response("403 route", resp).await.0, 403);
    let resp = http
        .post(gw.url("/v1/chat/completions"))
        .bearer_auth(k2)
        .json(&json!({ "model": "claude-canary", "messages": [ { "role": "user", "content": "x" } ] }))
        .send()
        .await
        .unwrap();
    assert_eq!(s.response("403 model", resp).await.0, 403);
    let resp = http
        .get(gw.url("/nowhere"))
        .bearer_auth(k1)
        .send()
        .await
        .unwrap();
    assert_eq!(s.response("404 no route", resp).await.0, 404);
    let mut limited = false;
    for i in 0..6 {
        let resp = http
            .get(gw.url("/proxy/v1/models"))
            .bearer_auth(k2)
            .send()
            .await
            .unwrap();
        let (status, _) = s.response(&format!("rate limit #{i}"), resp).await;
        if status == 429 {
            limited = true;
            break;
        }
        assert_eq!(status, 200);
    }
    assert!(limited, "requests_per_minute 2 never answered 429");
}

/// Every admin GET, and /metrics both ways.
async fn admin_reads(
    http: &reqwest::Client,
    gw: &Gateway,
    admin: &str,
    ids: &[&str],
    s: &mut Surfaces,
) {
    let mut paths: Vec<String> = [
        "config",
        "models",
        "keys",
        "routes",
        "upstreams",
        "upstreams/mock/credentials",
        "rule-events",
        "tasks",
    ]
    .iter()
    .map(|p| format!("/admin/api/{p}"))
    .collect();
    paths.extend(ids.iter().map(|id| format!("/admin/api/keys/{id}")));
    paths.push("/health".into());
    for path in paths {
        let resp = http
            .get(gw.url(&path))
            .bearer_auth(admin)
            .send()
            .await
            .unwrap();
        let (status, body) = s.response(&format!("GET {path}"), resp).await;
        assert_eq!(status, 200, "{path}: {body}");
    }
    for (what, token) in [("anonymous", None), ("admin", Some(admin))] {
        let mut req = http.get(gw.url("/metrics"));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let (status, body) = s
            .response(&format!("metrics {what}"), req.send().await.unwrap())
            .await;
        assert_eq!(status, 200);
        assert!(body.contains("fastgate_requests_total"), "{body}");
        if token.is_some() {
            // Per-key series exist (names only, never secrets) for the admin.
            assert!(body.contains("key=\"canary-main\""), "{body}");
        } else {
            assert!(!body.contains("canary-main"), "{body}");
        }
    }
}

/// The audit log through the admin API: the list and every row's detail.
async fn audit_via_api(
    http: &reqwest::Client,
    gw: &Gateway,
    admin: &str,
    s: &mut Surfaces,
) -> Vec<Value> {
    let resp = http
        .get(gw.url("/admin/api/logs?limit=1000"))
        .bearer_auth(admin)
        .send()
        .await
        .unwrap();
    let (status, body) = s.response("GET /admin/api/logs", resp).await;
    assert_eq!(status, 200);
    let rows = serde_json::from_str::<Value>(&body).unwrap()["data"]
        .as_array()
        .unwrap()
        .clone();
    for row in &rows {
        let mut found = false;
        for field in ["id", "request_id"] {
            if let Some(id) = row[field].as_str() {
                let resp = http
                    .get(gw.url(&format!("/admin/api/logs/{id}")))
                    .bearer_auth(admin)
                    .send()
                    .await
                    .unwrap();
                let (status, _) = s.response(&format!("GET /admin/api/logs/{id}"), resp).await;
                found |= status == 200;
            }
        }
        assert!(found, "no detail for {row}");
    }
    rows
}

fn cli(cfg: &Path, args: &[&str], s: &mut Surfaces) -> Value {
    let cfg = cfg.display().to_string();
    let mut all = vec!["keys"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--json", "--config", &cfg]);
    let out = subprocess::run(&all, &[("FASTGATE_LOG", "debug"), ("RUST_LOG", "debug")]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    s.add(format!("cli {args:?} stdout"), stdout.clone());
    s.add(
        format!("cli {args:?} stderr"),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert!(out.status.success(), "cli {args:?}: {stdout}");
    serde_json::from_str(&stdout).unwrap()
}

fn data_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            data_files(&path, out);
        } else {
            out.push(path);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn canaries_appear_nowhere() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let mock = MockUpstream::start().await;
    let cfg = tmp.path().join("fastgate.yaml");
    std::fs::write(&cfg, config(&mock.url(), &data)).unwrap();
    let env = [("FASTGATE_LOG", "debug"), ("RUST_LOG", "debug")];
    let gw = Gateway::start(&cfg, tmp.path(), &env);
    let admin = std::fs::read_to_string(data.join("admin_token"))
        .unwrap()
        .trim()
        .to_string();
    let http = client();
    let mut s = Surfaces::default();

    let (id1, k1) = create_key(
        &http,
        &gw,
        &admin,
        json!({ "name": "canary-main", "source": "canary-team" }),
    )
    .await;
    let (id2, k2) = create_key(
        &http,
        &gw,
        &admin,
        json!({ "name": "canary-limited", "allowed_routes": ["proxied"],
                "allowed_models": ["gpt-canary"], "limits": { "requests_per_minute": 2 } }),
    )
    .await;

    proxy_traffic(&http, &gw, &k1, &mut s).await;
    llm_traffic(&http, &gw, &mock, &k1, &mut s).await;
    gateway_errors(&http, &gw, &k1, &k2, &mut s).await;
    provider_refusal(&http, &gw, &k1, &mut s).await;
    admin_reads(&http, &gw, &admin, &[&id1, &id2, "canary-main"], &mut s).await;
    let listed = cli(&cfg, &["list"], &mut s);
    assert!(
        listed
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k["id"] == id1.as_str())
    );
    let shown = cli(&cfg, &["show", &id1], &mut s);
    assert_eq!(shown["name"], "canary-main");

    // The files while the gateway runs (the WAL holds the recent writes; a clean
    // stop checkpoints and removes it).
    let live = raw_files(&data);
    assert!(
        live.iter().any(|(f, _)| f.ends_with("fastgate.db-wal")),
        "no WAL while running"
    );
    // Stop (SIGTERM flushes the audit queue), then read the audit log back
    // through a second start of the same binary, and the database directly.
    assert_eq!(gw.stop(), Some(0));
    let first_logs = std::fs::read_to_string(tmp.path().join("gateway.stdout")).unwrap()
        + &std::fs::read_to_string(tmp.path().join("gateway.stderr")).unwrap();
    assert!(
        first_logs.contains("DEBUG") && first_logs.lines().count() > 50,
        "debug logging was not on:\n{first_logs}"
    );
    s.add("gateway logs (first run)", first_logs);
    let gw = Gateway::start(&cfg, tmp.path(), &env);
    let rows = audit_via_api(&http, &gw, &admin, &mut s).await;
    assert_eq!(gw.stop(), Some(0));
    s.add(
        "gateway logs (second run)",
        std::fs::read_to_string(tmp.path().join("gateway.stdout")).unwrap()
            + &std::fs::read_to_string(tmp.path().join("gateway.stderr")).unwrap(),
    );

    let mut raw = raw_files(&data);
    raw.extend(live);
    let db_rows = audit_via_db(&data, &mut s).await;

    let canaries: Vec<(&str, String)> = vec![
        ("gateway key 1", k1.clone()),
        ("gateway key 2", k2.clone()),
        ("sha256(key 1)", sha256_hex(&k1)),
        ("sha256(key 2)", sha256_hex(&k2)),
        ("provider key", PROVIDER.to_string()),
        ("config secret", CONFIG_SECRET.to_string()),
        ("admin token", admin.clone()),
    ];
    let hits = find_hits(&canaries, &s, &raw);
    assert!(
        hits.is_empty(),
        "{} canary hit(s) across {} surfaces and {} files:\n{}",
        hits.len(),
        s.0.len(),
        raw.len(),
        hits.join("\n")
    );
    assert_exercised(&db_rows, rows.len());
    mock.shutdown().await;
}

/// The run really exercised what it claims.
fn assert_exercised(db_rows: &[fastgate_audit::AuditRecord], api_rows: usize) {
    assert_eq!(db_rows.len(), api_rows, "admin API and database disagree");
    assert!(db_rows.len() >= 25, "only {} audit rows", db_rows.len());
    let redacted_headers = db_rows.iter().any(|r| {
        r.request_headers.as_deref().is_some_and(|h| {
            h.contains("\"x-auth-canary\":\"[redacted]\"")
                && h.contains("\"cookie\":\"[redacted]\"")
        })
    });
    assert!(redacted_headers, "no audit row with redacted headers");
    assert!(
        db_rows.iter().any(|r| r
            .query
            .as_deref()
            .is_some_and(|q| q.contains("api_key=[redacted]") && q.contains("x=1"))),
        "no audit row with a redacted query"
    );
    assert!(
        db_rows.iter().any(|r| r
            .request_body
            .as_deref()
            .is_some_and(|b| b.contains("hi there"))),
        "LLM bodies were not captured"
    );
    assert!(db_rows.iter().any(|r| r.status_code == 429));
    assert!(db_rows.iter().any(|r| r.status_code == 401));
}

/// Every canary found in a surface or a file (with some context), except the
/// two expected on disk: key hashes in the database, the admin token in its file.
fn find_hits(canaries: &[(&str, String)], s: &Surfaces, raw: &[(String, String)]) -> Vec<String> {
    let mut hits = Vec::new();
    for (what, text) in &s.0 {
        for (name, canary) in canaries {
            if text.contains(canary.as_str()) {
                let at = text.find(canary.as_str()).unwrap();
                let from = text[..at]
                    .char_indices()
                    .rev()
                    .nth(120)
                    .map_or(0, |(i, _)| i);
                let ctx: String = text[from..].chars().take(240 + canary.len()).collect();
                hits.push(format!("{name} in {what}: …{ctx}…"));
            }
        }
    }
    for (file, text) in raw {
        // The database keeps each key's hash (that is how keys are checked), and
        // the token file keeps the admin token: those two are expected there.
        for (name, canary) in canaries {
            let expected = (name.starts_with("sha256") && file.contains("fastgate.db"))
                || (*name == "admin token" && file.ends_with("admin_token"));
            if !expected && text.contains(canary.as_str()) {
                hits.push(format!("{name} in file {file}"));
            }
        }
    }
    hits
}

/// Raw bytes (as lossy text) of every file the gateway keeps: database, WAL,
/// spill, token.
fn raw_files(data: &Path) -> Vec<(String, String)> {
    let mut files = Vec::new();
    data_files(data, &mut files);
    assert!(
        files.iter().any(|f| f.ends_with("fastgate.db")),
        "{files:?}"
    );
    files
        .iter()
        .map(|f| {
            let bytes = std::fs::read(f).unwrap();
            (
                f.display().to_string(),
                String::from_utf8_lossy(&bytes).into_owned(),
            )
        })
        .collect()
}

/// Every audit row, read from the database directly (recorded as surfaces).
async fn audit_via_db(data: &Path, s: &mut Surfaces) -> Vec<fastgate_audit::AuditRecord> {
    let store = fastgate_store::Store::connect(
        &format!("sqlite://{}", data.join("fastgate.db").display()),
        1,
    )
    .await
    .unwrap();
    let db_rows = store
        .query_audit(&fastgate_audit::AuditFilter {
            limit: Some(10_000),
            ..Default::default()
        })
        .await
        .unwrap();
    store.close().await;
    for row in &db_rows {
        s.add(
            format!("audit row (db) {}", row.request_id),
            serde_json::to_string(row).unwrap(),
        );
    }
    db_rows
}
