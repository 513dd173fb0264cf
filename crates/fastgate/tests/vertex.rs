//! Vertex AI upstreams (`kind: vertex`) end to end: the service-account key traded
//! for an access token at the key's `token_uri` (the mock checks the JWT's
//! signature and claims), the token cached across requests, Gemini models at
//! `…/publishers/google/models/{model}:generateContent` for an OpenAI client,
//! Claude at `…/publishers/anthropic/models/{model}:rawPredict` for an Anthropic
//! client, streams of both, the key kept out of answers and the audit log, and a
//! token endpoint that is down.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{Backend, Harness};
use fastgate_testkit::sse::parse_sse;
use fastgate_testkit::{MockReply, MockUpstream, RecordedRequest, vertex_service_account_json};
use serde_json::{Value, json};

const EMAIL: &str = "gateway@test-project.iam.gserviceaccount.com";
const PREFIX: &str = "/v1/projects/test-project/locations/us-central1/publishers";

const CONFIG: &str = r#"
upstreams:
  - name: vx
    kind: vertex
    base_url: "{MOCK}"
    project: test-project
    location: us-central1
    credentials: [ { name: sa1, key: '{SA}' } ]
    retries: 0
  - name: vx-mixed
    kind: vertex
    base_url: "{MOCK}"
    project: test-project
    location: us-central1
    strategy: round_robin
    credentials: [ { name: sa-down, key: '{SA_DOWN}' }, { name: sa-up, key: '{SA}' } ]
    retries: 0
  - name: vx-down
    kind: vertex
    base_url: "{MOCK}"
    project: test-project
    location: global
    credentials: [ { name: sa-down, key: '{SA_DOWN}' } ]
    retries: 0
models:
  - name: flash
    deployments: [ { upstream: vx, model: gemini-2.0-flash } ]
  - name: sonnet
    deployments: [ { upstream: vx, model: "claude-sonnet-4@20250514" } ]
  - name: down
    deployments: [ { upstream: vx-down, model: gemini-2.0-flash } ]
  - name: down-then-flash
    deployments: [ { upstream: vx-down, model: gemini-2.0-flash } ]
    fallbacks: [ flash ]
  - name: mixed
    deployments: [ { upstream: vx-mixed, model: gemini-2.0-flash } ]
  - name: down-claude
    deployments: [ { upstream: vx-down, model: claude-haiku } ]
llm:
  audit: { headers: true, bodies: true, body_max_bytes: 65536 }
"#;

async fn start() -> (Harness, String) {
    let mock = MockUpstream::start().await;
    let sa = vertex_service_account_json(EMAIL, &format!("{}/token", mock.url()));
    let sa_down = vertex_service_account_json(EMAIL, &format!("{}/token", common::dead_url()));
    let yaml = CONFIG.replace("{SA_DOWN}", &sa_down).replace("{SA}", &sa);
    let h = Harness::start_with_mock(Backend::Sqlite, &yaml, mock).await;
    let key = h.key().await;
    (h, key)
}

fn token_calls(h: &Harness) -> usize {
    h.mock
        .requests()
        .iter()
        .filter(|r| r.path_only() == "/token")
        .count()
}

fn model_calls(h: &Harness) -> Vec<RecordedRequest> {
    h.mock
        .requests()
        .into_iter()
        .filter(|r| r.path_only() != "/token")
        .collect()
}

/// The model call carried the minted token and none of the client's credentials.
#[track_caller]
fn assert_minted_token(seen: &RecordedRequest) {
    let auth = seen.header("authorization").unwrap_or_default();
    assert!(auth.starts_with("Bearer ya29.mock-"), "{:?}", seen.headers);
    assert_eq!(seen.header("x-api-key"), None, "client key forwarded");
    assert_eq!(seen.header("x-goog-api-key"), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openai_client_to_gemini_on_vertex() {
    let (h, key) = start().await;
    let msgs = json!([{ "role": "user", "content": "hello there" }]);
    let resp = h
        .http
        .post(h.url("/v1/chat/completions"))
        .bearer_auth(&key)
        .json(&json!({ "model": "flash", "messages": msgs }))
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let v: Value = resp.json().await.unwrap();
    assert_eq!(status, 200, "{v}");
    let text = v["choices"][0]["message"]["content"].as_str().unwrap();
    assert!(!text.is_empty(), "{v}");
    assert_eq!(v["model"], "flash");
    let calls = model_calls(&h);
    assert_eq!(calls.len(), 1);
    assert_eq!(
        calls[0].path,
        format!("{PREFIX}/google/models/gemini-2.0-flash:generateContent")
    );
    assert_minted_token(&calls[0]);
    assert!(
        calls[0].json().unwrap().get("contents").is_some(),
        "Gemini body"
    );

    // Streamed, with the same token: one token call for both requests.
    let resp = h
        .http
        .post(h.url("/v1/chat/completions"))
        .bearer_auth(&key)
        .json(&json!({ "model": "flash", "stream": true, "messages": msgs }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let events = parse_sse(&resp.text().await.unwrap());
    let streamed: String = events
        .iter()
        .filter_map(|e| e.json())
        .filter_map(|c| {
            c["choices"][0]["delta"]["content"]
                .as_str()
                .map(str::to_string)
        })
        .collect();
    assert_eq!(streamed, text, "stream and whole answer agree");
    assert_eq!(events.last().unwrap().data, "[DONE]");
    let calls = model_calls(&h);
    assert_eq!(
        calls[1].path,
        format!("{PREFIX}/google/models/gemini-2.0-flash:streamGenerateContent?alt=sse")
    );
    assert_eq!(
        calls[0].header("authorization"),
        calls[1].header("authorization")
    );
    assert_eq!(token_calls(&h), 1, "the token is cached");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anthropic_client_to_claude_on_vertex() {
    let (h, key) = start().await;
    let body = json!({
        "model": "sonnet",
        "max_tokens": 50,
        "messages": [{ "role": "user", "content": "hi" }],
    });
    let resp = h
        .http
        .post(h.url("/v1/messages"))
        .header("x-api-key", &key)
        .header("anthropic-version", "2023-06-01")
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let v: Value = resp.json().await.unwrap();
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["type"], "message");
    assert_eq!(v["content"][0]["text"], "tok0 tok1 tok2 tok3 tok4 ");
    let seen = model_calls(&h).pop().unwrap();
    assert_eq!(
        seen.path,
        format!("{PREFIX}/anthropic/models/claude-sonnet-4@20250514:rawPredict")
    );
    assert_minted_token(&seen);
    let sent = seen.json().unwrap();
    assert!(sent.get("model").is_none(), "{sent}");
    assert_eq!(sent["anthropic_version"], "vertex-2023-10-16");
    assert_eq!(sent["max_tokens"], 50);

    let mut stream_body = body.clone();
    stream_body["stream"] = json!(true);
    let resp = h
        .http
        .post(h.url("/v1/messages"))
        .header("x-api-key", &key)
        .header("anthropic-version", "2023-06-01")
        .json(&stream_body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let events = parse_sse(&resp.text().await.unwrap());
    let text: String = events
        .iter()
        .filter_map(|e| e.json())
        .filter_map(|c| c["delta"]["text"].as_str().map(str::to_string))
        .collect();
    assert_eq!(text, "tok0 tok1 tok2 tok3 tok4 ");
    assert!(
        events
            .iter()
            .any(|e| e.event.as_deref() == Some("message_stop"))
    );
    let seen = model_calls(&h).pop().unwrap();
    assert_eq!(
        seen.path,
        format!("{PREFIX}/anthropic/models/claude-sonnet-4@20250514:streamRawPredict")
    );
    assert_eq!(token_calls(&h), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_account_key_stays_out_of_answers_and_audit() {
    let (h, key) = start().await;
    let resp = h
        .http
        .post(h.url("/v1/chat/completions"))
        .bearer_auth(&key)
        .json(&json!({ "model": "flash", "messages": [{ "role": "user", "content": "x" }] }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let id = resp.headers()["x-request-id"].to_str().unwrap().to_string();
    let answer = resp.text().await.unwrap();
    let record = h.audit_of(&id).await;
    assert_eq!(record.upstream.as_deref(), Some("vx"));
    assert_eq!(record.credential.as_deref(), Some("sa1"));
    let audit = serde_json::to_string(&record).unwrap();
    let token = model_calls(&h)[0]
        .header("authorization")
        .unwrap()
        .trim_start_matches("Bearer ")
        .to_string();
    // A line of the test key's PEM body, and the whole key's distinctive parts.
    let pem_line = fastgate_testkit::VERTEX_TEST_KEY_PEM
        .lines()
        .find(|l| l.len() > 40 && !l.starts_with("-----"))
        .unwrap();
    for text in [&answer, &audit] {
        assert!(!text.contains(pem_line), "key in {text}");
        assert!(!text.contains("PRIVATE KEY"), "key in {text}");
        assert!(!text.contains(&token), "access token in {text}");
    }
    // The admin view of the upstreams does not show the key either.
    let upstreams = h
        .admin_get("/admin/api/upstreams")
        .await
        .text()
        .await
        .unwrap();
    assert!(!upstreams.contains(pem_line));
    assert!(!upstreams.contains("PRIVATE KEY"), "{upstreams}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_endpoint_that_is_down_is_a_clear_502_and_fails_over() {
    let (h, key) = start().await;
    let resp = h
        .http
        .post(h.url("/v1/chat/completions"))
        .bearer_auth(&key)
        .json(&json!({ "model": "down", "messages": [{ "role": "user", "content": "x" }] }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 502);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["code"], "upstream_auth_failed", "{v}");
    let msg = v["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains("no access token") && msg.contains("sa-down"),
        "{msg}"
    );
    assert!(!msg.contains("PRIVATE"), "{msg}");
    assert!(model_calls(&h).is_empty(), "nothing sent without a token");

    // Nothing was sent: the fallback group serves the request.
    let resp = h
        .http
        .post(h.url("/v1/chat/completions"))
        .bearer_auth(&key)
        .json(&json!({
            "model": "down-then-flash",
            "messages": [{ "role": "user", "content": "x" }],
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(model_calls(&h).len(), 1);

    // A credential without a token gives way to one with a token (round robin
    // starts each of these two requests on a different one).
    for _ in 0..2 {
        let resp = h
            .http
            .post(h.url("/v1/chat/completions"))
            .bearer_auth(&key)
            .json(&json!({ "model": "mixed", "messages": [{ "role": "user", "content": "x" }] }))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
    }
    assert_eq!(model_calls(&h).len(), 3);

    // An Anthropic client gets the error in Anthropic's shape.
    let resp = h
        .http
        .post(h.url("/v1/messages"))
        .header("x-api-key", &key)
        .header("anthropic-version", "2023-06-01")
        .json(&json!({ "model": "down-claude", "max_tokens": 5, "messages": [{ "role": "user", "content": "x" }] }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 502);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["type"], "error", "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no access token"),
        "{v}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_clients_and_endpoints_reach_vertex() {
    let (h, key) = start().await;
    // An OpenAI client to Claude on Vertex: translated to Messages, then rawPredict.
    let resp = h
        .http
        .post(h.url("/v1/chat/completions"))
        .bearer_auth(&key)
        .json(&json!({ "model": "sonnet", "messages": [{ "role": "user", "content": "hi" }] }))
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let v: Value = resp.json().await.unwrap();
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        v["choices"][0]["message"]["content"],
        "tok0 tok1 tok2 tok3 tok4 "
    );
    let seen = model_calls(&h).pop().unwrap();
    assert!(
        seen.path
            .ends_with("/anthropic/models/claude-sonnet-4@20250514:rawPredict")
    );

    // A Gemini client (native generateContent) to Gemini on Vertex.
    let resp = h
        .http
        .post(h.url("/v1beta/models/flash:generateContent"))
        .header("x-goog-api-key", &key)
        .json(&json!({ "contents": [{ "role": "user", "parts": [{ "text": "hi" }] }] }))
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let v: Value = resp.json().await.unwrap();
    assert_eq!(status, 200, "{v}");
    assert!(
        v["candidates"][0]["content"]["parts"][0]["text"].is_string(),
        "{v}"
    );
    let seen = model_calls(&h).pop().unwrap();
    assert_eq!(
        seen.path,
        format!("{PREFIX}/google/models/gemini-2.0-flash:generateContent")
    );
    assert_minted_token(&seen);

    // Anthropic's count_tokens to Claude on Vertex: its count-tokens endpoint.
    let resp = h
        .http
        .post(h.url("/v1/messages/count_tokens"))
        .header("x-api-key", &key)
        .header("anthropic-version", "2023-06-01")
        .json(&json!({ "model": "sonnet", "messages": [{ "role": "user", "content": "one two three" }] }))
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let v: Value = resp.json().await.unwrap();
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["input_tokens"], 3);
    let seen = model_calls(&h).pop().unwrap();
    assert_eq!(
        seen.path,
        format!("{PREFIX}/anthropic/models/count-tokens:rawPredict")
    );
    assert_eq!(seen.json().unwrap()["model"], "claude-sonnet-4@20250514");

    // Responses API and Anthropic clients reach both publishers, translated.
    for (model, endpoint, publisher_path) in [
        (
            "sonnet",
            "/v1/responses",
            "/anthropic/models/claude-sonnet-4@20250514:rawPredict",
        ),
        (
            "flash",
            "/v1/responses",
            "/google/models/gemini-2.0-flash:generateContent",
        ),
        (
            "flash",
            "/v1/messages",
            "/google/models/gemini-2.0-flash:generateContent",
        ),
    ] {
        let body = if endpoint == "/v1/responses" {
            json!({ "model": model, "input": "hi", "max_output_tokens": 32 })
        } else {
            json!({ "model": model, "max_tokens": 32, "messages": [{ "role": "user", "content": "hi" }] })
        };
        let resp = h
            .http
            .post(h.url(endpoint))
            .bearer_auth(&key)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = resp.status();
        let v: Value = resp.json().await.unwrap();
        assert_eq!(status, 200, "{model} {endpoint}: {v}");
        let text = if endpoint == "/v1/responses" {
            assert_eq!(v["status"], "completed", "{v}");
            v["output"][0]["content"][0]["text"].clone()
        } else {
            assert_eq!(v["type"], "message", "{v}");
            v["content"][0]["text"].clone()
        };
        assert!(
            text.as_str().is_some_and(|t| !t.is_empty()),
            "{model} {endpoint}: {v}"
        );
        let seen = model_calls(&h).pop().unwrap();
        assert_eq!(
            seen.path,
            format!("{PREFIX}{publisher_path}"),
            "{model} {endpoint}"
        );
        assert_minted_token(&seen);
    }

    // The passthrough gets a minted token too.
    let path = format!("{PREFIX}/google/models/gemini-2.0-flash:generateContent");
    let resp = h
        .http
        .post(h.url(&format!("/proxy/vx{path}")))
        .bearer_auth(&key)
        .json(&json!({ "contents": [{ "role": "user", "parts": [{ "text": "hi" }] }] }))
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let text = resp.text().await.unwrap();
    assert_eq!(status, 200, "{text}");
    let seen = model_calls(&h).pop().unwrap();
    assert_eq!(seen.path, path);
    assert_minted_token(&seen);
    assert_eq!(token_calls(&h), 1, "one token for every request");
}

/// A disabled Vertex credential is probed with a minted token (a placeholder
/// would be refused with 401), and the probe brings it back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_probe_carries_a_minted_token() {
    let mock = MockUpstream::start().await;
    let sa = vertex_service_account_json(EMAIL, &format!("{}/token", mock.url()));
    let probe_path = format!("{PREFIX}/google/models/gemini-2.0-flash:countTokens");
    let yaml = format!(
        r#"
upstreams:
  - name: vx
    kind: vertex
    base_url: "{{MOCK}}"
    project: test-project
    location: us-central1
    credentials: [ {{ name: sa1, key: '{sa}' }} ]
    probe: {{ interval: 1s, timeout: 2s, path: "{probe_path}" }}
models:
  - name: flash
    deployments: [ {{ upstream: vx, model: gemini-2.0-flash }} ]
health: {{ counters_flush_interval: 100ms }}
rules:
  - name: refused
    when: {{ status: 401 }}
    actions: [ {{ disable: 1h }} ]
"#
    );
    let h = Harness::start_with_mock(Backend::Sqlite, &yaml, mock).await;
    let key = h.key().await;
    let chat = || {
        h.http
            .post(h.url("/v1/chat/completions"))
            .bearer_auth(&key)
            .json(&json!({ "model": "flash", "messages": [{ "role": "user", "content": "x" }] }))
            .send()
    };
    assert_eq!(chat().await.unwrap().status(), 200);
    h.mock.enqueue(MockReply::Status {
        status: 401,
        body: json!({"error": {"code": 401, "status": "UNAUTHENTICATED"}}).to_string(),
        headers: Vec::new(),
    });
    assert_eq!(chat().await.unwrap().status(), 401);
    let state = || async {
        let list: Value = h
            .admin_get("/admin/api/upstreams/vx/credentials")
            .await
            .json()
            .await
            .unwrap();
        list["data"][0]["health"].clone()
    };
    assert_eq!(state().await["state"], "disabled");
    let health = common::eventually(
        std::time::Duration::from_secs(8),
        "the probe brings sa1 back",
        || async {
            let health = state().await;
            (health["state"] == "active").then_some(health)
        },
    )
    .await;
    assert_eq!(health["changed_by"], "probe", "{health}");
    let probe = h
        .mock
        .requests()
        .into_iter()
        .rfind(|r| r.method == "GET" && r.path == probe_path)
        .expect("a probe was sent");
    assert_minted_token(&probe);
    h.stop().await;
}
