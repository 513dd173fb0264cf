//! Credential health rules through the admin API: a rule created at runtime
//! fires in place of the built-in, switched off or deleted it no longer does;
//! invalid rules are refused with their field path and store nothing; the
//! file's rules are read-only; a second instance serves the API's rules.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::{Backend, Harness, eventually};
use fastgate_testkit::MockReply;
use reqwest::Method;
use serde_json::{Value, json};

const KEY_A: &str = "sk-rules-api-key-a-0123456789";
const KEY_B: &str = "sk-rules-api-key-b-0123456789";
const SETTLE: Duration = Duration::from_secs(5);

fn config() -> String {
    format!(
        r#"
upstreams:
  - name: mock
    kind: openai
    base_url: "{{MOCK}}"
    strategy: round_robin
    credentials:
      - {{ name: a, key: "{KEY_A}" }}
      - {{ name: b, key: "{KEY_B}" }}
routes:
  - name: all
    match: {{ path: "/v1/**" }}
    upstream: mock
alerts:
  - {{ name: ops, kind: webhook, url: "{{DEAD}}/hook" }}
rules:
  - name: file-rule
    when: {{ status: 402 }}
    actions: [ {{ log: true }} ]
"#
    )
}

fn key_rejected() -> Value {
    json!({
        "name": "key-rejected",
        "description": "a refused key sits out an hour",
        "when": { "status": [401] },
        "actions": [ { "disable": "1h" } ]
    })
}

async fn json_of(resp: reqwest::Response) -> (u16, Value) {
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    for secret in [KEY_A, KEY_B] {
        assert!(!text.contains(secret), "a provider key leaked: {text}");
    }
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// The health of credential `name` of upstream `mock`, as listed on `base`.
async fn health_on(base: &str, name: &str) -> Value {
    let resp = common::http_client()
        .get(format!("{base}/admin/api/upstreams/mock/credentials"))
        .bearer_auth(common::ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    let (status, list) = json_of(resp).await;
    assert_eq!(status, 200, "{list}");
    list["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .map(|c| c["health"].clone())
        .unwrap_or_else(|| panic!("credential {name} listed: {list}"))
}

/// Send `n` requests on `base`; every one must succeed (key b saves them).
async fn traffic(base: &str, key: &str, n: usize) {
    for i in 0..n {
        let resp = common::http_client()
            .get(format!("{base}/v1/models"))
            .bearer_auth(key)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "request {i}");
    }
}

async fn rule_events(h: &Harness, rule: &str) -> Vec<Value> {
    let (status, v) = json_of(
        h.admin_get(&format!("/admin/api/rule-events?rule={rule}"))
            .await,
    )
    .await;
    assert_eq!(status, 200, "{v}");
    v["data"].as_array().cloned().unwrap()
}

/// Put credential `a` back into rotation by hand.
async fn reactivate(h: &Harness) {
    let (status, body) = json_of(
        h.admin(
            Method::POST,
            "/admin/api/upstreams/mock/credentials/a/state",
            Some(json!({ "state": "active" })),
        )
        .await,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["health"]["state"], "active", "{body}");
}

/// Create a rule, see it fire (not the built-in), see its firing in the rule's
/// own view; switched off the built-in takes over; deleted it is gone.
async fn api_rule_fires_then_goes(backend: Backend) {
    let h = Harness::start(backend, &config()).await;
    let key = h.key().await;
    let (status, created) = json_of(
        h.admin(Method::POST, "/admin/api/rules", Some(key_rejected()))
            .await,
    )
    .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["source"], "api");
    assert_eq!(created["enabled"], true);
    assert_eq!(created["when"], json!({ "status": [401] }));
    assert_eq!(created["actions"], json!([ { "disable": "1h" } ]));
    let (status, again) = json_of(
        h.admin(Method::POST, "/admin/api/rules", Some(key_rejected()))
            .await,
    )
    .await;
    assert_eq!(status, 409, "{again}");
    let (_, list) = json_of(h.admin_get("/admin/api/rules").await).await;
    let listed: Vec<(&str, &str)> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["name"].as_str().unwrap(), r["source"].as_str().unwrap()))
        .collect();
    assert_eq!(
        listed,
        [("file-rule", "config"), ("key-rejected", "api")],
        "{list}"
    );
    assert_eq!(list["builtin_rules"], true);

    // Key a is refused: the API's rule takes it out, not the built-in.
    h.mock.fail_key(KEY_A, MockReply::error(401));
    traffic(&h.base, &key, 4).await;
    let a = health_on(&h.base, "a").await;
    assert_eq!(a["state"], "disabled", "{a}");
    assert_eq!(a["changed_by"], "rule:key-rejected", "{a}");
    assert_eq!(health_on(&h.base, "b").await["state"], "active");
    let events = eventually(SETTLE, "the rule event is stored", || async {
        let e = rule_events(&h, "key-rejected").await;
        (!e.is_empty()).then_some(e)
    })
    .await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(
        (&events[0]["credential"], &events[0]["status"]),
        (&json!("a"), &json!(401))
    );
    assert!(rule_events(&h, "builtin:auth").await.is_empty());
    let (status, shown) = json_of(h.admin_get("/admin/api/rules/key-rejected").await).await;
    assert_eq!(status, 200, "{shown}");
    assert_eq!(shown["description"], "a refused key sits out an hour");
    let recent = shown["recent_events"].as_array().unwrap();
    assert_eq!(recent.len(), 1, "{shown}");
    assert_eq!(recent[0]["rule"], "key-rejected");
    assert_eq!(recent[0]["state_after"], "disabled");
    let (_, file_rule) = json_of(h.admin_get("/admin/api/rules/file-rule").await).await;
    assert_eq!(file_rule["source"], "config");
    assert_eq!(file_rule["recent_events"], json!([]));

    // Switched off, the rule no longer matches: the built-in handles the 401.
    let (status, off) = json_of(
        h.admin(Method::POST, "/admin/api/rules/key-rejected/toggle", None)
            .await,
    )
    .await;
    assert_eq!((status, &off["enabled"]), (200, &json!(false)), "{off}");
    reactivate(&h).await;
    traffic(&h.base, &key, 4).await;
    let a = health_on(&h.base, "a").await;
    assert_eq!(a["changed_by"], "rule:builtin:auth", "{a}");
    let (_, on) = json_of(
        h.admin(
            Method::POST,
            "/admin/api/rules/key-rejected/toggle",
            Some(json!({ "enabled": true })),
        )
        .await,
    )
    .await;
    assert_eq!(on["enabled"], true, "{on}");

    // PUT replaces (200); the trail has every change with kind `rule`.
    let mut replaced = key_rejected();
    replaced["cooldown"] = json!("5m");
    let (status, body) = json_of(
        h.admin(Method::PUT, "/admin/api/rules/key-rejected", Some(replaced))
            .await,
    )
    .await;
    assert_eq!((status, &body["cooldown"]), (200, &json!("5m")), "{body}");
    let (_, trail) = json_of(h.admin_get("/admin/api/admin-events?kind=rule").await).await;
    let actions: Vec<&str> = trail["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["update", "toggle", "toggle", "create"], "{trail}");
    assert_eq!(trail["data"][0]["object_name"], "key-rejected");
    assert_eq!(trail["data"][0]["after"]["cooldown"], "5m");

    // Deleted: gone from the API, the store and the engine.
    let (status, body) = json_of(
        h.admin(Method::DELETE, "/admin/api/rules/key-rejected", None)
            .await,
    )
    .await;
    assert_eq!((status, &body["deleted"]), (200, &json!("key-rejected")));
    let (status, _) = json_of(h.admin_get("/admin/api/rules/key-rejected").await).await;
    assert_eq!(status, 404);
    let (status, _) = json_of(
        h.admin(Method::DELETE, "/admin/api/rules/key-rejected", None)
            .await,
    )
    .await;
    assert_eq!(status, 404);
    let store = fastgate_store::Store::connect(&h.database_url, 1)
        .await
        .unwrap();
    let stored = store
        .list_specs(fastgate_store::SpecTable::Rules)
        .await
        .unwrap();
    assert!(stored.is_empty(), "{:?}", stored.len());
    store.close().await;
    reactivate(&h).await;
    traffic(&h.base, &key, 4).await;
    assert_eq!(
        health_on(&h.base, "a").await["changed_by"],
        "rule:builtin:auth"
    );
    assert_eq!(rule_events(&h, "key-rejected").await.len(), 1);
    h.stop().await;
}
both_backends!(api_rule_fires_then_goes, api_rule_fires_then_goes);

async fn invalid_rules_store_nothing(backend: Backend) {
    let h = Harness::start(backend, &config()).await;
    let cases = [
        (
            json!({ "name": "bad-regex", "when": { "body_regex": "(unclosed" },
                    "actions": [ { "log": true } ] }),
            "rules[bad-regex].when.body_regex: not a valid regular expression",
        ),
        (
            json!({ "name": "bad-alert", "when": { "status": [401] },
                    "actions": [ { "disable": "1h" }, { "alert": ["pager"] } ] }),
            "rules[bad-alert].actions[1].alert[0]: unknown alert channel `pager`",
        ),
        (
            json!({ "name": "bad-scope", "upstreams": ["nowhere"], "when": { "status": 500 },
                    "actions": [ { "log": true } ] }),
            "rules[bad-scope].upstreams[0]: unknown upstream `nowhere`",
        ),
        (
            json!({ "name": "bad-action", "when": { "status": 401 },
                    "actions": [ { "disable": "1h", "ban": true } ] }),
            "actions[0]: an action has exactly one of the keys",
        ),
        (
            json!({ "name": "bad-field", "when": { "statuz": 401 },
                    "actions": [ { "log": true } ] }),
            "when.statuz: unknown field `statuz`",
        ),
        (
            json!({ "name": "bad name", "when": { "status": 401 },
                    "actions": [ { "log": true } ] }),
            "rules[bad name].name:",
        ),
    ];
    for (body, want) in cases {
        let (status, resp) =
            json_of(h.admin(Method::POST, "/admin/api/rules", Some(body)).await).await;
        assert_eq!(status, 400, "{resp}");
        let msg = resp["error"]["message"].as_str().unwrap();
        assert!(msg.starts_with(want), "want {want:?}, got {msg:?}");
    }
    // A PUT whose body names another rule.
    let (status, resp) = json_of(
        h.admin(Method::PUT, "/admin/api/rules/other", Some(key_rejected()))
            .await,
    )
    .await;
    assert_eq!(status, 400, "{resp}");
    let store = fastgate_store::Store::connect(&h.database_url, 1)
        .await
        .unwrap();
    let stored = store
        .list_specs(fastgate_store::SpecTable::Rules)
        .await
        .unwrap();
    assert!(stored.is_empty(), "{:?}", stored.len());
    store.close().await;
    let (_, list) = json_of(h.admin_get("/admin/api/rules").await).await;
    assert_eq!(list["data"].as_array().unwrap().len(), 1, "{list}");
    let (_, trail) = json_of(h.admin_get("/admin/api/admin-events?kind=rule").await).await;
    assert_eq!(trail["data"], json!([]));
    h.stop().await;
}
both_backends!(invalid_rules_store_nothing, invalid_rules_store_nothing);

async fn file_rules_are_read_only(backend: Backend) {
    let h = Harness::start(backend, &config()).await;
    let file_rule = json!({ "name": "file-rule", "when": { "status": 402 },
                            "actions": [ { "ban": true } ] });
    for (method, path, body) in [
        (
            Method::PUT,
            "/admin/api/rules/file-rule",
            Some(file_rule.clone()),
        ),
        (Method::POST, "/admin/api/rules", Some(file_rule)),
        (Method::DELETE, "/admin/api/rules/file-rule", None),
        (Method::POST, "/admin/api/rules/file-rule/toggle", None),
    ] {
        let (status, body) = json_of(h.admin(method.clone(), path, body).await).await;
        assert_eq!(status, 409, "{method} {path}: {body}");
        let msg = body["error"]["message"].as_str().unwrap();
        assert!(
            msg.contains("rule 'file-rule'") && msg.contains("configuration file"),
            "{method} {path}: {msg}"
        );
    }
    let (_, shown) = json_of(h.admin_get("/admin/api/rules/file-rule").await).await;
    assert_eq!(shown["actions"], json!([ { "log": true } ]), "unchanged");
    h.stop().await;
}
both_backends!(file_rules_are_read_only, file_rules_are_read_only);

/// A rule created on one instance is listed and applied by another on the same
/// database; a change made on the other comes back; a delete reaches both.
async fn peer_serves_api_rules(backend: Backend) {
    let a = Harness::start(backend, &config()).await;
    let b = a.start_peer().await;
    let key = a.key().await;
    eventually(SETTLE, "B accepts A's new key", || async {
        let resp = common::http_client()
            .get(b.url("/v1/models"))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap();
        (resp.status() == 200).then_some(())
    })
    .await;
    let (status, body) = json_of(
        a.admin(Method::POST, "/admin/api/rules", Some(key_rejected()))
            .await,
    )
    .await;
    assert_eq!(status, 201, "{body}");
    eventually(SETTLE, "B lists the rule created on A", || async {
        let (status, shown) = json_of(
            b.admin(Method::GET, "/admin/api/rules/key-rejected", None)
                .await,
        )
        .await;
        (status == 200 && shown["source"] == "api").then_some(())
    })
    .await;
    // B's engine has it: a 401 seen by B fires the API's rule.
    a.mock.fail_key(KEY_A, MockReply::error(401));
    traffic(&b.base, &key, 4).await;
    let health = health_on(&b.base, "a").await;
    assert_eq!(health["changed_by"], "rule:key-rejected", "{health}");
    // Switched off on B: A follows.
    let (status, _) = json_of(
        b.admin(
            Method::POST,
            "/admin/api/rules/key-rejected/toggle",
            Some(json!({ "enabled": false })),
        )
        .await,
    )
    .await;
    assert_eq!(status, 200);
    eventually(SETTLE, "A sees the rule switched off on B", || async {
        let (_, shown) = json_of(a.admin_get("/admin/api/rules/key-rejected").await).await;
        (shown["enabled"] == false).then_some(())
    })
    .await;
    // Deleted on A: gone from B.
    let (status, _) = json_of(
        a.admin(Method::DELETE, "/admin/api/rules/key-rejected", None)
            .await,
    )
    .await;
    assert_eq!(status, 200);
    eventually(SETTLE, "B no longer has the deleted rule", || async {
        let (status, _) = json_of(
            b.admin(Method::GET, "/admin/api/rules/key-rejected", None)
                .await,
        )
        .await;
        (status == 404).then_some(())
    })
    .await;
    b.stop().await;
    a.stop().await;
}
both_backends!(peer_serves_api_rules, peer_serves_api_rules);

/// Runs the `fastgate` binary off the async workers, with a clean environment
/// for the variables it reads; `--admin-url` when `over_http`, else `--config`.
async fn cli(h: &Harness, over_http: bool, args: &[&str]) -> std::process::Output {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_fastgate"));
    cmd.args(args);
    for var in [
        "FASTGATE_CONFIG",
        "FASTGATE_ADMIN_URL",
        "FASTGATE_ADMIN_TOKEN",
        "FASTGATE_MASTER_KEY",
    ] {
        cmd.env_remove(var);
    }
    if over_http {
        cmd.args(["--admin-url", &h.base]);
        cmd.env("FASTGATE_ADMIN_TOKEN", common::ADMIN_TOKEN);
    } else {
        cmd.arg("--config").arg(h.dir.path().join("fastgate.yaml"));
    }
    tokio::task::spawn_blocking(move || common::run_bounded(&mut cmd, Duration::from_secs(30)))
        .await
        .unwrap()
}

/// Runs and requires success; stdout.
async fn cli_ok(h: &Harness, over_http: bool, args: &[&str]) -> String {
    let out = cli(h, over_http, args).await;
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert!(out.status.success(), "{args:?}: {stdout}{stderr}");
    stdout
}

/// Runs and requires failure; stderr.
async fn cli_fails(h: &Harness, over_http: bool, args: &[&str]) -> String {
    let out = cli(h, over_http, args).await;
    assert!(!out.status.success(), "{args:?} succeeded");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn rule_names(list: &Value) -> Vec<String> {
    list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap().to_owned())
        .collect()
}

/// `fastgate rules`: on the database (the running gateway follows) and through
/// the admin API.
async fn cli_manages_rules(backend: Backend) {
    let h = Harness::start(backend, &config()).await;
    let section = h.dir.path().join("rules.yaml");
    std::fs::write(
        &section,
        "rules:\n\
         \x20 - { name: cli-a, when: { status: 403 }, actions: [ { disable: 10m } ] }\n\
         \x20 - { name: cli-b, when: { status: 429 }, actions: [ { log: true }, { alert: [ops] } ] }\n",
    )
    .unwrap();
    let section = section.display().to_string();
    let out = cli_ok(&h, false, &["rules", "apply", "-f", &section]).await;
    assert!(
        out.contains("created rule 'cli-a'") && out.contains("created rule 'cli-b'"),
        "{out}"
    );
    // The running gateway picks up what the CLI stored.
    eventually(SETTLE, "the gateway lists the CLI's rule", || async {
        let (status, shown) = json_of(h.admin_get("/admin/api/rules/cli-b").await).await;
        (status == 200).then_some(shown)
    })
    .await;
    let list: Value =
        serde_json::from_str(&cli_ok(&h, false, &["rules", "list", "--json"]).await).unwrap();
    assert_eq!(rule_names(&list), ["file-rule", "cli-a", "cli-b"], "{list}");
    let shown: Value =
        serde_json::from_str(&cli_ok(&h, false, &["rules", "show", "cli-a", "--json"]).await)
            .unwrap();
    assert_eq!(shown["actions"], json!([ { "disable": "10m" } ]), "{shown}");
    assert_eq!(shown["recent_events"], json!([]), "{shown}");
    let out = cli_ok(
        &h,
        false,
        &["rules", "toggle", "cli-a", "--enabled", "false"],
    )
    .await;
    assert!(out.contains("toggled rule 'cli-a'"), "{out}");

    let err = cli_fails(&h, false, &["rules", "delete", "file-rule"]).await;
    assert!(err.contains("configuration file"), "{err}");
    let bad = h.dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        "name: bad\nwhen: { status: 401 }\nactions: [ { alert: [pager] } ]\n",
    )
    .unwrap();
    let bad = bad.display().to_string();
    for over_http in [false, true] {
        let err = cli_fails(&h, over_http, &["rules", "apply", "-f", &bad]).await;
        assert!(err.contains("rules[bad].actions[0].alert[0]"), "{err}");
    }

    // Through the admin API.
    let one = h.dir.path().join("one.yaml");
    std::fs::write(
        &one,
        "name: cli-c\nwhen: { body_contains: insufficient_quota }\nactions: [ { ban: true } ]\n",
    )
    .unwrap();
    let one = one.display().to_string();
    let out = cli_ok(&h, true, &["rules", "apply", "-f", &one]).await;
    assert!(out.contains("stored rule 'cli-c'"), "{out}");
    cli_ok(&h, true, &["rules", "delete", "cli-b"]).await;
    let list: Value =
        serde_json::from_str(&cli_ok(&h, true, &["rules", "list", "--json"]).await).unwrap();
    assert_eq!(rule_names(&list), ["file-rule", "cli-a", "cli-c"], "{list}");
    assert_eq!(list["data"][1]["enabled"], false, "{list}");
    let (_, trail) = json_of(
        h.admin_get("/admin/api/admin-events?kind=rule&actor=cli")
            .await,
    )
    .await;
    assert_eq!(trail["data"].as_array().unwrap().len(), 3, "{trail}");
    h.stop().await;
}
both_backends!(cli_manages_rules, cli_manages_rules);
