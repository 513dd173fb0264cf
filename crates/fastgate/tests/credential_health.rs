//! Credential health end to end: a provider key that fails leaves rotation by
//! itself (rules and built-ins), the request in flight is saved on another key,
//! every firing is recorded and alerted, keys come back by themselves, daily
//! quotas exhaust a key, and the fleet shares every state.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use base64::Engine;
use common::{Backend, Harness, eventually};
use fastgate_testkit::{MockReply, MockUpstream};
use serde_json::{Value, json};

const KEY_A: &str = "sk-health-key-a-0123456789";
const KEY_B: &str = "sk-health-key-b-0123456789";

fn upstream(extra: &str) -> String {
    upstream_with("", extra)
}

/// `upstream_fields` go on the upstream (e.g. a `probe:` line).
fn upstream_with(upstream_fields: &str, extra: &str) -> String {
    format!(
        r#"
upstreams:
  - name: mock
    kind: openai
    base_url: "{{MOCK}}"
    strategy: round_robin{upstream_fields}
    credentials:
      - {{ name: a, key: "{KEY_A}" }}
      - {{ name: b, key: "{KEY_B}" }}
routes:
  - name: all
    match: {{ path: "/v1/**" }}
    upstream: mock
{extra}"#
    )
}

fn invalid_key_reply() -> MockReply {
    MockReply::Status {
        status: 401,
        body: json!({"error": {
            "message": format!("Incorrect API key provided: {KEY_A}. You can find your API key at your dashboard."),
            "type": "invalid_request_error",
            "code": "invalid_api_key"
        }})
        .to_string(),
        headers: Vec::new(),
    }
}

/// `GET /v1/models` through the gateway with the gateway key.
async fn models(h: &Harness, key: &str) -> reqwest::Response {
    send_models(&h.http, &h.url("/v1/models"), key).await
}

async fn send_models(http: &reqwest::Client, url: &str, key: &str) -> reqwest::Response {
    http.get(url).bearer_auth(key).send().await.unwrap()
}

async fn credential(h: &Harness, name: &str) -> Value {
    let list: Value = h
        .admin_get("/admin/api/upstreams/mock/credentials")
        .await
        .json()
        .await
        .unwrap();
    list["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .cloned()
        .unwrap_or_else(|| panic!("credential {name} listed: {list}"))
}

async fn rule_events(h: &Harness, query: &str) -> Vec<Value> {
    let v: Value = h
        .admin_get(&format!("/admin/api/rule-events?{query}"))
        .await
        .json()
        .await
        .unwrap();
    v["data"].as_array().cloned().unwrap_or_default()
}

fn keys_used(mock: &MockUpstream, from: usize) -> (usize, usize) {
    let seen = mock.requests();
    let with = |k: &str| {
        seen[from..]
            .iter()
            .filter(|r| r.header("authorization") == Some(format!("Bearer {k}").as_str()))
            .count()
    };
    (with(KEY_A), with(KEY_B))
}

/// Key A answers 401, key B works: every request succeeds (a POST too: the
/// provider refused it, so sending it again is safe), A is disabled with the
/// provider's message, exactly one rule event, one Feishu alert, signed.
async fn refused_key_leaves_rotation_and_alerts(backend: Backend) {
    let sink = MockUpstream::start().await;
    for _ in 0..3 {
        sink.enqueue(MockReply::Status {
            status: 200,
            body: r#"{"code":0,"msg":"success","data":{}}"#.into(),
            headers: Vec::new(),
        });
    }
    let extra = format!(
        r#"
alerts:
  - name: ops-feishu
    kind: feishu
    url: "{}/open-apis/bot/v2/hook/test-hook"
    secret: "feishu-signing-secret"
rules:
  - name: key-rejected
    upstreams: [mock]
    when: {{ status: [401, 403] }}
    actions: [ {{ disable: 1h }}, {{ alert: [ops-feishu] }} ]
"#,
        sink.url()
    );
    let h = Harness::start(backend, &upstream(&extra)).await;
    h.mock.fail_key(KEY_A, invalid_key_reply());
    let key = h.key().await;
    let before = h.mock.requests().len();
    for i in 0..10 {
        let resp = h
            .http
            .post(h.url("/v1/chat/completions"))
            .bearer_auth(&key)
            .json(&json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": format!("hi {i}")}]}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "request {i} saved by key b");
        let body: Value = resp.json().await.unwrap();
        assert!(body["choices"].is_array(), "{body}");
    }
    let (a, b) = keys_used(&h.mock, before);
    assert_eq!(a, 1, "key a was tried once, then left rotation");
    assert_eq!(b, 10, "key b served every request");

    let ca = credential(&h, "a").await;
    assert_eq!(ca["health"]["state"], "disabled", "{ca}");
    let reason = ca["health"]["reason"].as_str().unwrap();
    assert!(reason.contains("Incorrect API key provided"), "{reason}");
    assert!(
        !reason.contains(KEY_A),
        "the key in the provider's message is redacted: {reason}"
    );
    assert!(ca["health"]["until"].is_string(), "{ca}");
    assert_eq!(ca["health"]["errors"], 1, "{ca}");
    assert_eq!(credential(&h, "b").await["health"]["state"], "active");
    assert!(!ca.to_string().contains(KEY_A), "the key is never shown");

    let events = eventually(
        Duration::from_secs(5),
        "the rule event is stored",
        || async {
            let e = rule_events(&h, "credential=a").await;
            (!e.is_empty()).then_some(e)
        },
    )
    .await;
    assert_eq!(events.len(), 1, "{events:?}");
    let e = &events[0];
    assert_eq!(e["rule"], "key-rejected");
    assert_eq!(e["upstream"], "mock");
    assert_eq!(e["status"], 401);
    assert_eq!(e["state_before"], "active");
    assert_eq!(e["state_after"], "disabled");
    assert!(e["action"].as_str().unwrap().contains("disable 1h"), "{e}");
    assert!(!e.to_string().contains(KEY_A), "excerpt redacted: {e}");
    assert!(rule_events(&h, "credential=b").await.is_empty());

    assert!(
        sink.wait_for_requests(1, Duration::from_secs(10)).await,
        "the alert reached the sink"
    );
    let alert = sink.requests()[0].clone();
    assert_eq!(alert.path_only(), "/open-apis/bot/v2/hook/test-hook");
    let body = alert.json().unwrap();
    assert_eq!(body["msg_type"], "text", "{body}");
    let text = body["content"]["text"].as_str().unwrap();
    assert!(
        text.contains("mock/a") && text.contains("key-rejected"),
        "{text}"
    );
    // Feishu's signature: base64(HMAC-SHA256(key = timestamp + "\n" + secret, "")).
    let ts = body["timestamp"].as_str().unwrap();
    let signing = ring::hmac::Key::new(
        ring::hmac::HMAC_SHA256,
        format!("{ts}\nfeishu-signing-secret").as_bytes(),
    );
    let expected =
        base64::engine::general_purpose::STANDARD.encode(ring::hmac::sign(&signing, b"").as_ref());
    assert_eq!(body["sign"], expected.as_str());
    // One firing, one alert, even after more traffic.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(sink.request_count(), 1);
    h.stop().await;
}
both_backends!(refused_key, refused_key_leaves_rotation_and_alerts);

/// `disable: 2s`: the key returns by itself after the fault cleared.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disabled_key_returns_by_itself() {
    let extra = r#"
rules:
  - name: short-cooldown
    when: { status: 401 }
    actions: [ { disable: 2s } ]
"#;
    let h = Harness::start(Backend::Sqlite, &upstream(extra)).await;
    h.mock.fail_key(KEY_A, invalid_key_reply());
    let key = h.key().await;
    for _ in 0..4 {
        let resp = models(&h, &key).await;
        assert_eq!(resp.status(), 200);
    }
    assert_eq!(credential(&h, "a").await["health"]["state"], "disabled");
    h.mock.clear_key(KEY_A);
    eventually(Duration::from_secs(6), "key a returns after 2s", || async {
        (credential(&h, "a").await["health"]["state"] == "active").then_some(())
    })
    .await;
    let before = h.mock.requests().len();
    for _ in 0..4 {
        let resp = models(&h, &key).await;
        assert_eq!(resp.status(), 200);
    }
    assert_eq!(
        keys_used(&h.mock, before),
        (2, 2),
        "both keys in rotation again"
    );
    h.stop().await;
}

/// Built-ins: a 429 cools the key down for its Retry-After and the request
/// goes to the other key; with every key refused the client gets 503
/// `no_credential` with Retry-After.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limited_keys_cool_down_then_no_credential() {
    let h = Harness::start(Backend::Sqlite, &upstream("")).await;
    let key = h.key().await;
    h.mock.fail_key(
        KEY_A,
        MockReply::error(429).with_header("retry-after", "30"),
    );
    let resp = models(&h, &key).await;
    assert_eq!(resp.status(), 200, "saved by key b");
    let a = credential(&h, "a").await;
    assert_eq!(a["health"]["state"], "disabled", "{a}");
    assert_eq!(a["health"]["changed_by"], "rule:builtin:rate-limit", "{a}");
    h.mock.fail_key(
        KEY_B,
        MockReply::error(429).with_header("retry-after", "20"),
    );
    let resp = models(&h, &key).await;
    assert_eq!(resp.status(), 429, "the last key's refusal is relayed");
    let resp = models(&h, &key).await;
    assert_eq!(resp.status(), 503);
    let retry: u64 = resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (15..=21).contains(&retry),
        "the first key returns in about 20s: {retry}"
    );
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "no_credential", "{body}");
    h.stop().await;
}

/// Five 5xx answers in a minute open the key's circuit; traffic moves to the
/// other key without any rule configured.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_key_opens_its_circuit() {
    let h = Harness::start(Backend::Sqlite, &upstream("")).await;
    let key = h.key().await;
    h.mock.fail_key(KEY_A, MockReply::error(500));
    let mut failed = 0;
    for _ in 0..20 {
        let resp = models(&h, &key).await;
        failed += usize::from(resp.status() == 500);
    }
    assert_eq!(
        failed, 5,
        "key a failed five times, then its circuit opened"
    );
    let before = h.mock.requests().len();
    for _ in 0..6 {
        let resp = models(&h, &key).await;
        assert_eq!(resp.status(), 200);
    }
    assert_eq!(
        keys_used(&h.mock, before),
        (0, 6),
        "the open circuit keeps key a out"
    );
    assert_eq!(credential(&h, "a").await["health"]["circuit"], "open");
    let events = eventually(Duration::from_secs(5), "the circuit event", || async {
        let e = rule_events(&h, "rule=builtin:circuit").await;
        (!e.is_empty()).then_some(e)
    })
    .await;
    assert_eq!(events[0]["credential"], "a");
    h.stop().await;
}

/// A key with `requests_per_day: 3` serves three requests, then is exhausted
/// until the next quota day (503 with Retry-After up to the reset).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daily_quota_exhausts_a_key() {
    let yaml = r#"
timezone: Asia/Shanghai
upstreams:
  - name: mock
    kind: openai
    base_url: "{MOCK}"
    credentials:
      - { name: a, key: "sk-quota-key-a", quota: { requests_per_day: 3 } }
routes:
  - name: all
    match: { path: "/v1/**" }
    upstream: mock
"#;
    let h = Harness::start(Backend::Sqlite, yaml).await;
    let key = h.key().await;
    for i in 0..3 {
        let resp = models(&h, &key).await;
        assert_eq!(resp.status(), 200, "request {i}");
    }
    let resp = models(&h, &key).await;
    assert_eq!(resp.status(), 503);
    let retry: u64 = resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (1..=86_400).contains(&retry),
        "until the next reset: {retry}"
    );
    assert_eq!(
        h.mock.requests().len(),
        3,
        "the fourth never reached the provider"
    );
    let a = credential(&h, "a").await;
    assert_eq!(a["health"]["state"], "exhausted", "{a}");
    assert_eq!(a["health"]["quota"]["requests_today"], 3, "{a}");
    assert_eq!(a["health"]["quota"]["requests_per_day"], 3, "{a}");
    h.stop().await;
}

/// A state set by hand on one instance holds on every instance of the
/// database within a second, and survives a restart.
async fn fleet_shares_states(backend: Backend) {
    let h = Harness::start(backend, &upstream("")).await;
    let key = h.key().await;
    let peer = h.start_peer().await;
    let resp = h
        .admin(
            reqwest::Method::POST,
            "/admin/api/upstreams/mock/credentials/a/state",
            Some(json!({"state": "banned", "reason": "leaked in a public repo"})),
        )
        .await;
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
    eventually(Duration::from_secs(1), "the peer sees the ban", || async {
        let list: Value = peer
            .admin(
                reqwest::Method::GET,
                "/admin/api/upstreams/mock/credentials",
                None,
            )
            .await
            .json()
            .await
            .unwrap();
        let a = list["data"]
            .as_array()?
            .iter()
            .find(|c| c["name"] == "a")?
            .clone();
        (a["health"]["state"] == "banned").then_some(())
    })
    .await;
    // The peer's traffic avoids the banned key.
    let before = h.mock.requests().len();
    for _ in 0..4 {
        let resp = send_models(&h.http, &peer.url("/v1/models"), &key).await;
        assert_eq!(resp.status(), 200);
    }
    assert_eq!(keys_used(&h.mock, before), (0, 4));
    // Back by hand, on the peer this time.
    let resp = peer
        .admin(
            reqwest::Method::POST,
            "/admin/api/upstreams/mock/credentials/a/state",
            Some(json!({"state": "active"})),
        )
        .await;
    assert_eq!(resp.status(), 200);
    eventually(
        Duration::from_secs(1),
        "the first instance sees it",
        || async { (credential(&h, "a").await["health"]["state"] == "active").then_some(()) },
    )
    .await;
    peer.stop().await;
    h.stop().await;
}
both_backends!(fleet, fleet_shares_states);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_changes_by_hand_are_checked() {
    let h = Harness::start(Backend::Sqlite, &upstream("")).await;
    let post = |body: Value| {
        h.admin(
            reqwest::Method::POST,
            "/admin/api/upstreams/mock/credentials/a/state",
            Some(body),
        )
    };
    let resp = post(json!({"state": "exhausted"})).await;
    assert_eq!(resp.status(), 400);
    assert!(resp.text().await.unwrap().contains("state"));
    let resp = post(json!({"state": "banned", "until": "10m"})).await;
    assert_eq!(resp.status(), 400);
    let resp = post(json!({"state": "disabled", "until": "2020-01-01T00:00:00Z"})).await;
    assert_eq!(resp.status(), 400);
    let resp = post(json!({"state": "disabled", "until": "10m", "reason": "maintenance"})).await;
    assert_eq!(resp.status(), 200);
    let a = credential(&h, "a").await;
    assert_eq!(a["health"]["state"], "disabled");
    assert_eq!(a["health"]["reason"], "maintenance");
    assert!(
        a["health"]["changed_by"]
            .as_str()
            .unwrap()
            .starts_with("admin-token")
    );
    let resp = h
        .admin(
            reqwest::Method::POST,
            "/admin/api/upstreams/mock/credentials/nope/state",
            Some(json!({"state": "active"})),
        )
        .await;
    assert_eq!(resp.status(), 404);
    let events: Value = h
        .admin_get("/admin/api/admin-events?kind=credential")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(events["data"][0]["action"], "set_state", "{events}");
    h.stop().await;
}

/// A probe brings a rule-disabled key back before its `until` once the
/// provider accepts it again; the scheduler's tasks and the credential metrics
/// show it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_brings_a_key_back_early() {
    let extra = r#"
health: { counters_flush_interval: 100ms }
rules:
  - name: key-rejected
    when: { status: 401 }
    actions: [ { disable: 1h } ]
"#;
    let yaml = upstream_with("\n    probe: { interval: 1s, timeout: 2s }", extra);
    let h = Harness::start(Backend::Sqlite, &yaml).await;
    h.mock.fail_key(KEY_A, invalid_key_reply());
    let key = h.key().await;
    for _ in 0..2 {
        let resp = h
            .http
            .post(h.url("/v1/chat/completions"))
            .bearer_auth(&key)
            .json(&json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
    }
    assert_eq!(credential(&h, "a").await["health"]["state"], "disabled");
    eventually(Duration::from_secs(5), "the state metric", || async {
        let m = h.metrics().await;
        m.lines()
            .any(|l| {
                l.starts_with("fastgate_credential_state{")
                    && l.contains("credential=\"a\"")
                    && l.contains("state=\"disabled\"")
                    && l.ends_with(" 1")
            })
            .then_some(())
    })
    .await;
    // Probes with the key still refused keep it out.
    let probes_before = probes_with(&h.mock, KEY_A);
    eventually(Duration::from_secs(8), "a failing probe", || async {
        (probes_with(&h.mock, KEY_A) > probes_before).then_some(())
    })
    .await;
    assert_eq!(credential(&h, "a").await["health"]["state"], "disabled");
    h.mock.clear_key(KEY_A);
    let a = eventually(
        Duration::from_secs(8),
        "the probe brings key a back",
        || async {
            let a = credential(&h, "a").await;
            (a["health"]["state"] == "active").then_some(a)
        },
    )
    .await;
    assert_eq!(a["health"]["changed_by"], "probe", "{a}");
    assert!(
        a["health"]["reason"]
            .as_str()
            .unwrap()
            .contains("/v1/models"),
        "{a}"
    );
    let tasks: Value = h.admin_get("/admin/api/tasks").await.json().await.unwrap();
    let task = |name: &str| {
        tasks["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("task {name} listed: {tasks}"))
    };
    assert_eq!(task("credential-probes")["last_ok"], true, "{tasks}");
    assert_eq!(task("credential-recovery")["last_ok"], true, "{tasks}");
    h.stop().await;
}

/// Requests the mock received on `GET /v1/models` with `key` (the probes).
fn probes_with(mock: &MockUpstream, key: &str) -> usize {
    mock.requests()
        .iter()
        .filter(|r| {
            r.method == "GET"
                && r.path_only() == "/v1/models"
                && r.header("authorization") == Some(format!("Bearer {key}").as_str())
        })
        .count()
}

/// A provider key added through the admin API carries its daily quota: stored
/// (sealed key and quota), enforced, and shown.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_credentials_carry_a_daily_quota() {
    let h = Harness::start(Backend::Sqlite, &upstream("")).await;
    let resp = h
        .admin(
            reqwest::Method::POST,
            "/admin/api/upstreams",
            Some(json!({
                "name": "api-up",
                "kind": "openai",
                "base_url": h.mock.url(),
                "credentials": [
                    { "name": "q", "key": "sk-api-quota-key-0123", "quota": { "requests_per_day": 2 } }
                ]
            })),
        )
        .await;
    assert_eq!(resp.status(), 201, "{}", resp.text().await.unwrap());
    let key = h.key().await;
    for i in 0..2 {
        let resp = send_models(&h.http, &h.url("/proxy/api-up/v1/models"), &key).await;
        assert_eq!(resp.status(), 200, "request {i}");
    }
    let resp = send_models(&h.http, &h.url("/proxy/api-up/v1/models"), &key).await;
    assert_eq!(resp.status(), 503, "the quota of 2 is used up");
    let list: Value = h
        .admin_get("/admin/api/upstreams/api-up/credentials")
        .await
        .json()
        .await
        .unwrap();
    let q = &list["data"][0]["health"];
    assert_eq!(q["state"], "exhausted", "{list}");
    assert_eq!(q["quota"]["requests_per_day"], 2, "{list}");
    // A zero quota is refused with its field path; the stored one is kept.
    let resp = h
        .admin(
            reqwest::Method::PUT,
            "/admin/api/upstreams/api-up/credentials/q",
            Some(json!({ "quota": { "requests_per_day": 0 } })),
        )
        .await;
    assert_eq!(resp.status(), 400);
    assert!(resp.text().await.unwrap().contains("requests_per_day"));
    let list: Value = h
        .admin_get("/admin/api/upstreams/api-up/credentials")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["data"][0]["health"]["quota"]["requests_per_day"], 2);
    h.stop().await;
}
