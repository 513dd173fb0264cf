//! The `fastgate` binary: `check`, `keys`, `routes test`, `version`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::{Backend, DEFAULT_ROUTES, Harness};
use serde_json::Value;

/// Runs the binary; a command that does not finish within 30 s fails the test
/// (e.g. `serve` accepting a configuration it should refuse).
fn fastgate(args: &[&str]) -> Output {
    common::run_bounded(
        Command::new(env!("CARGO_BIN_EXE_fastgate"))
            .args(args)
            .env_remove("FASTGATE_CONFIG"),
        Duration::from_secs(30),
    )
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

#[test]
fn check_accepts_valid_and_rejects_invalid_with_field_path() {
    let dir = tempfile::tempdir().unwrap();
    let dead = common::dead_url();
    let good = write(
        dir.path(),
        "good.yaml",
        &format!(
            r#"
upstreams: [ {{ name: up, kind: openai, base_url: "{dead}" }} ]
routes: [ {{ name: r, match: {{ path: "/v1/*" }}, upstream: up }} ]
"#
        ),
    );
    let out = fastgate(&["check", "--config", &good]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("1 route"));

    let upstream = format!("upstreams: [ {{ name: up, kind: http, base_url: \"{dead}\" }} ]\n");
    let cases = [
        (
            "unknown-field",
            "server: { listn: \"x\" }\n".to_string(),
            "server",
        ),
        (
            "missing-upstream",
            "routes: [ { name: r, match: { path: \"/a\" }, upstream: nope } ]\n".to_string(),
            "routes[0].upstream",
        ),
        (
            "bad-pattern",
            format!(
                "{upstream}routes: [ {{ name: r, match: {{ path: \"/a/**/b\" }}, upstream: up }} ]\n"
            ),
            "routes[0].match.path",
        ),
        (
            "bad-duration",
            format!(
                "{upstream}routes: [ {{ name: r, match: {{ path: \"/a\" }}, upstream: up, timeout: {{ connect: 5 parsecs }} }} ]\n"
            ),
            "routes[0].timeout.connect",
        ),
    ];
    for (name, yaml, path) in cases {
        let file = write(dir.path(), &format!("{name}.yaml"), &yaml);
        let out = fastgate(&["check", "--config", &file]);
        assert_eq!(out.status.code(), Some(2), "{name}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(path), "{name}: {err}");
        // serve refuses it too, with the same exit code.
        let out = fastgate(&["serve", "--config", &file]);
        assert_eq!(out.status.code(), Some(2), "serve {name}");
    }
}

#[test]
fn version_prints() {
    let out = fastgate(&["version", "--json"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["version"], env!("CARGO_PKG_VERSION"));
}

#[test]
fn routes_test_explains_the_match() {
    let dir = tempfile::tempdir().unwrap();
    let dead = common::dead_url();
    let cfg = write(
        dir.path(),
        "r.yaml",
        &format!(
            r#"
upstreams: [ {{ name: up, kind: http, base_url: "{dead}/base", credentials: [ {{ name: k1, key: "sk-cli-secret" }} ] }} ]
routes:
  - {{ name: users, match: {{ path: "/user/{{id}}" }}, upstream: up, target_path: "/v2/users/{{id}}" }}
"#
        ),
    );
    let out = fastgate(&[
        "routes",
        "test",
        "--config",
        &cfg,
        "--json",
        "--path",
        "/user/42?x=1",
    ]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["route"], "users");
    assert_eq!(
        v["target_url"],
        format!("{dead}/base/v2/users/42?x=1").as_str()
    );
    assert_eq!(v["credential"], "k1");
    // The text output shows the headers too, the credential redacted.
    let out = fastgate(&["routes", "test", "--config", &cfg, "--path", "/user/42"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("route:    users"), "{text}");
    assert!(
        text.contains("header:   authorization: [redacted]"),
        "{text}"
    );
    assert!(!text.contains("sk-cli-secret"), "{text}");
}

async fn wait_status(h: &Harness, key: &str, want: u16) -> Duration {
    let start = Instant::now();
    loop {
        let s = h
            .http
            .get(h.url("/v1/models"))
            .bearer_auth(key)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16();
        if s == want {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < Duration::from_secs(3),
            "status {s}, wanted {want}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

async fn keys_created_by_cli_work_on_running_server(backend: Backend) {
    let h = Harness::start(backend, DEFAULT_ROUTES).await;
    let cfg = write(
        h.dir.path(),
        "cli.yaml",
        &format!(
            "database: {{ url: \"{}\" }}\ndata_dir: \"{}\"\n",
            h.database_url,
            h.dir.path().display()
        ),
    );
    let out = fastgate(&[
        "keys",
        "create",
        "--config",
        &cfg,
        "--name",
        "alice",
        "--expires-in",
        "30d",
        "--routes",
        "v1",
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let key = v["key"].as_str().unwrap().to_string();
    let id = v["id"].as_str().unwrap().to_string();
    assert_eq!(v["name"], "alice");
    assert!(key.starts_with("fg_"));
    let took = wait_status(&h, &key, 200).await;
    assert!(took < Duration::from_secs(1), "accepted after {took:?}");
    // The key is limited to route v1.
    let resp = h
        .http
        .post(h.url("/v1/chat/completions"))
        .bearer_auth(&key)
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);

    let out = fastgate(&["keys", "list", "--config", &cfg, "--json"]);
    let list: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        list.as_array()
            .unwrap()
            .iter()
            .any(|k| k["id"] == id.as_str())
    );
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains(&key),
        "list never shows the secret"
    );
    let out = fastgate(&["keys", "show", "--config", &cfg, "--json", "alice"]);
    let shown: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(shown["id"], id.as_str());
    assert!(shown.get("key_hash").is_none(), "hash never shown");

    let out = fastgate(&["keys", "revoke", "--config", &cfg, &id]);
    assert!(out.status.success());
    let took = wait_status(&h, &key, 401).await;
    assert!(took < Duration::from_secs(1), "rejected after {took:?}");

    // Rotate: new secret works, the revoked one stays dead; reactivate via update.
    let out = fastgate(&["keys", "update", "--config", &cfg, &id, "--active", "true"]);
    assert!(out.status.success());
    wait_status(&h, &key, 200).await;
    let out = fastgate(&["keys", "rotate", "--config", &cfg, "--json", &id]);
    let rotated: Value = serde_json::from_slice(&out.stdout).unwrap();
    let new_key = rotated["key"].as_str().unwrap().to_string();
    wait_status(&h, &new_key, 200).await;
    wait_status(&h, &key, 401).await;
    h.stop().await;
}
both_backends!(
    keys_created_by_cli_work_on_running_server,
    keys_created_by_cli_work_on_running_server
);

/// `keys usage --json` through the running gateway's admin API.
fn usage_via_api(h: &Harness, name: &str) -> Value {
    let url = h.url("");
    let out = fastgate(&[
        "keys",
        "usage",
        name,
        "--admin-url",
        &url,
        "--admin-token",
        common::ADMIN_TOKEN,
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

async fn key_quotas_set_by_cli_are_enforced_and_shown(backend: Backend) {
    let h = Harness::start(backend, DEFAULT_ROUTES).await;
    let cfg = write(
        h.dir.path(),
        "cli.yaml",
        &format!(
            "database: {{ url: \"{}\" }}\ndata_dir: \"{}\"\n",
            h.database_url,
            h.dir.path().display()
        ),
    );
    let out = fastgate(&[
        "keys",
        "create",
        "--config",
        &cfg,
        "--name",
        "metered",
        "--quota-requests",
        "3",
        "--budget",
        "2.5",
        "--quota-period",
        "daily",
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let key = v["key"].as_str().unwrap().to_string();
    // The first admitted request (the key became known) counts as one.
    wait_status(&h, &key, 200).await;
    for _ in 0..2 {
        wait_status(&h, &key, 200).await;
    }
    let refused = h
        .http
        .get(h.url("/v1/models"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 429);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "quota_exceeded");

    let live = usage_via_api(&h, "metered");
    assert_eq!(live["quota"]["requests"], 3);
    assert_eq!(live["quota"]["cost"], 2.5);
    assert_eq!(live["period"]["kind"], "daily");
    assert_eq!(live["used"]["requests"], 3);
    assert_eq!(live["remaining"]["requests"], 0);

    // Without --admin-url: what the database holds, once the gateway flushed it.
    let start = Instant::now();
    loop {
        let out = fastgate(&["keys", "usage", "--config", &cfg, "--json", "metered"]);
        assert!(out.status.success());
        let stored: Value = serde_json::from_slice(&out.stdout).unwrap();
        if stored["history"][0]["requests"] == 3 {
            assert!(
                stored["history"][0]["period"]
                    .as_str()
                    .unwrap()
                    .starts_with('d')
            );
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "stored usage: {stored}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Raising the quota from the CLI lets the key through again within a second.
    let out = fastgate(&[
        "keys",
        "update",
        "--config",
        &cfg,
        "metered",
        "--quota-requests",
        "5",
    ]);
    assert!(out.status.success());
    let took = wait_status(&h, &key, 200).await;
    assert!(took < Duration::from_secs(1), "admitted after {took:?}");
    h.stop().await;
}
both_backends!(
    key_quotas_set_by_cli_are_enforced_and_shown,
    key_quotas_set_by_cli_are_enforced_and_shown
);
