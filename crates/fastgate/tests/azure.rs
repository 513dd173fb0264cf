//! Azure OpenAI upstreams (`kind: azure`) end to end: deployment paths with the
//! `api-version` query, the key in `api-key` (or an Entra token in
//! `authorization`), both client protocols, streaming with Azure's annotation
//! chunk, the content filter, and explicit routes / the passthrough. The mock
//! checks every `/openai/…` request as Azure would (path, `api-version`, exactly
//! one credential) and answers in Azure's shape.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{Backend, Harness};
use fastgate_testkit::RecordedRequest;
use fastgate_testkit::sse::parse_sse;
use serde_json::{Value, json};

const PROVIDER_KEY: &str = "azk-provider-secret";
const CLIENT_API_KEY: &str = "client-own-azure-key";

const CONFIG: &str = r#"
upstreams:
  - name: az
    kind: azure
    base_url: "{MOCK}"
    api_version: "2024-10-21"
    credentials: [ { name: a1, key: "azk-provider-secret" } ]
    retries: 0
  - name: az-entra
    kind: azure
    base_url: "{MOCK}"
    api_version: "2025-04-01-preview"
    auth_header: authorization
    auth_scheme: "Bearer "
    credentials: [ { name: e1, key: "entra-token-1" } ]
models:
  - name: gpt
    deployments: [ { upstream: az, model: "team/gpt-4o" } ]
  - name: emb
    kind: embedding
    deployments: [ { upstream: az, model: emb-3 } ]
  - name: entra
    deployments: [ { upstream: az-entra, model: gpt-4o } ]
routes:
  - name: azure-raw
    match: { path: "/az/**" }
    upstream: az
    strip_prefix: true
"#;

/// The chat path of deployment `team/gpt-4o`, its name encoded as one segment.
const CHAT_PATH: &str = "/openai/deployments/team%2Fgpt-4o/chat/completions";

async fn start() -> (Harness, String) {
    let h = Harness::start(Backend::Sqlite, CONFIG).await;
    let key = h.key().await;
    (h, key)
}

fn last(h: &Harness) -> RecordedRequest {
    h.mock.last_request().expect("the upstream got a request")
}

/// The Azure request carried the provider key in `api-key` and nothing of the
/// client's credentials.
#[track_caller]
fn assert_provider_key_only(seen: &RecordedRequest) {
    assert_eq!(
        seen.header("api-key"),
        Some(PROVIDER_KEY),
        "{:?}",
        seen.headers
    );
    assert_eq!(seen.header("authorization"), None, "client key forwarded");
    assert_eq!(seen.header("x-api-key"), None, "client key forwarded");
}

fn openai_chat(h: &Harness, key: &str, body: Value) -> reqwest::RequestBuilder {
    h.http
        .post(h.url("/v1/chat/completions"))
        .bearer_auth(key)
        .header("api-key", CLIENT_API_KEY)
        .json(&body)
}

fn anthropic_messages(h: &Harness, key: &str, body: Value) -> reqwest::RequestBuilder {
    h.http
        .post(h.url("/v1/messages"))
        .header("x-api-key", key)
        .header("anthropic-version", "2023-06-01")
        .json(&body)
}

fn stream_text(events: &[fastgate_testkit::sse::SseEvent]) -> String {
    events
        .iter()
        .filter_map(|e| e.json())
        .filter_map(|c| {
            c["choices"][0]["delta"]["content"]
                .as_str()
                .or(c["delta"]["text"].as_str())
                .map(str::to_string)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openai_client_chat_whole_and_streamed() {
    let (h, key) = start().await;
    let msgs = json!([{ "role": "user", "content": "hello there" }]);
    let resp = openai_chat(&h, &key, json!({ "model": "gpt", "messages": msgs }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(
        v["choices"][0]["message"]["content"],
        "tok0 tok1 tok2 tok3 tok4 "
    );
    assert_eq!(v["model"], "gpt", "client model echoed");
    let seen = last(&h);
    assert_eq!(seen.path_only(), CHAT_PATH);
    assert_eq!(seen.azure_deployment().as_deref(), Some("team/gpt-4o"));
    assert_eq!(seen.query_param("api-version"), Some("2024-10-21"));
    assert_provider_key_only(&seen);
    assert_eq!(seen.json().unwrap()["model"], "team/gpt-4o");

    let resp = openai_chat(
        &h,
        &key,
        json!({ "model": "gpt", "stream": true, "messages": msgs }),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(resp.status(), 200);
    let id = resp.headers()["x-request-id"].to_str().unwrap().to_string();
    let text = resp.text().await.unwrap();
    let events = parse_sse(&text);
    // Azure's first chunk (no choices, prompt_filter_results) reaches the client.
    let first = events[0].json().unwrap();
    assert_eq!(first["choices"], json!([]), "{text}");
    assert!(first["prompt_filter_results"].is_array(), "{text}");
    assert_eq!(stream_text(&events), "tok0 tok1 tok2 tok3 tok4 ");
    assert!(events.last().unwrap().is_done(), "{text}");
    let seen = last(&h);
    assert_eq!(seen.path_only(), CHAT_PATH);
    assert_eq!(seen.query_param("api-version"), Some("2024-10-21"));
    assert_provider_key_only(&seen);
    assert_eq!(
        seen.json().unwrap()["stream_options"]["include_usage"],
        true
    );
    let rec = h.audit_of(&id).await;
    assert_eq!(rec.tokens_out, Some(5), "usage read from Azure's stream");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anthropic_client_whole_and_streamed() {
    let (h, key) = start().await;
    let body = json!({ "model": "gpt", "max_tokens": 100, "system": "be nice",
                       "messages": [{ "role": "user", "content": "hi" }] });
    let resp = anthropic_messages(&h, &key, body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["type"], "message");
    assert_eq!(v["content"][0]["text"], "tok0 tok1 tok2 tok3 tok4 ");
    assert_eq!(v["stop_reason"], "end_turn");
    let seen = last(&h);
    assert_eq!(seen.path_only(), CHAT_PATH);
    assert_eq!(seen.query_param("api-version"), Some("2024-10-21"));
    assert_provider_key_only(&seen);
    assert_eq!(seen.header("anthropic-version"), None);
    let sent = seen.json().unwrap();
    assert_eq!(
        sent["messages"][0]["role"], "system",
        "OpenAI shape upstream"
    );

    let mut streamed = body;
    streamed["stream"] = json!(true);
    let resp = anthropic_messages(&h, &key, streamed).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let text = resp.text().await.unwrap();
    let events = parse_sse(&text);
    let names: Vec<&str> = events.iter().filter_map(|e| e.event.as_deref()).collect();
    assert_eq!(names.first(), Some(&"message_start"), "{text}");
    assert_eq!(names.last(), Some(&"message_stop"), "{text}");
    let start = events[0].json().unwrap();
    let id = start["message"]["id"].as_str().unwrap();
    // The message id comes from the first real chunk, past Azure's annotation chunk.
    assert!(id.starts_with("chatcmpl-mock"), "{id}");
    assert_eq!(stream_text(&events), "tok0 tok1 tok2 tok3 tok4 ");
    let delta = events
        .iter()
        .filter_map(|e| e.json())
        .find(|v| v["type"] == "message_delta")
        .unwrap();
    assert_eq!(delta["delta"]["stop_reason"], "end_turn");
    let seen = last(&h);
    assert_eq!(seen.path_only(), CHAT_PATH);
    assert_eq!(seen.query_param("api-version"), Some("2024-10-21"));
    assert_provider_key_only(&seen);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embeddings_and_completions_paths() {
    let (h, key) = start().await;
    let resp = h
        .http
        .post(h.url("/v1/embeddings"))
        .bearer_auth(&key)
        .json(&json!({ "model": "emb", "input": ["a", "b c"] }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["data"].as_array().unwrap().len(), 2);
    let seen = last(&h);
    assert_eq!(seen.path_only(), "/openai/deployments/emb-3/embeddings");
    assert_eq!(seen.query_param("api-version"), Some("2024-10-21"));
    assert_provider_key_only(&seen);

    let resp = h
        .http
        .post(h.url("/v1/completions"))
        .bearer_auth(&key)
        .json(&json!({ "model": "gpt", "prompt": "say" }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["choices"][0]["text"], "tok0 tok1 tok2 tok3 tok4 ");
    let seen = last(&h);
    assert_eq!(
        seen.path_only(),
        "/openai/deployments/team%2Fgpt-4o/completions"
    );
    assert_eq!(seen.query_param("api-version"), Some("2024-10-21"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entra_token_in_authorization() {
    let (h, key) = start().await;
    let resp = openai_chat(
        &h,
        &key,
        json!({ "model": "entra", "messages": [{ "role": "user", "content": "hi" }] }),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(resp.status(), 200);
    let seen = last(&h);
    assert_eq!(
        seen.path_only(),
        "/openai/deployments/gpt-4o/chat/completions"
    );
    assert_eq!(seen.query_param("api-version"), Some("2025-04-01-preview"));
    assert_eq!(seen.header("authorization"), Some("Bearer entra-token-1"));
    assert_eq!(
        seen.header("api-key"),
        None,
        "the client's api-key is never forwarded"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn content_filter_refusal_in_both_protocols() {
    let (h, key) = start().await;
    let msgs = json!([{ "role": "user", "content": "something bad" }]);
    let resp = openai_chat(&h, &key, json!({ "model": "gpt", "messages": msgs }))
        .header("x-mock-content-filter", "prompt")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["code"], "content_filter", "{v}");
    assert_eq!(last(&h).path_only(), CHAT_PATH);

    let resp = anthropic_messages(
        &h,
        &key,
        json!({ "model": "gpt", "max_tokens": 50, "messages": msgs }),
    )
    .header("x-mock-content-filter", "prompt")
    .send()
    .await
    .unwrap();
    assert_eq!(resp.status(), 400);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["type"], "error", "{v}");
    assert_eq!(v["error"]["type"], "invalid_request_error", "{v}");
    let msg = v["error"]["message"].as_str().unwrap();
    assert!(
        msg.starts_with(
            "the provider's content filter refused the request (filtered: violence (medium))"
        ),
        "{msg}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn content_filter_finish_reason_mapped() {
    let (h, key) = start().await;
    let msgs = json!([{ "role": "user", "content": "tell a story" }]);
    let resp = openai_chat(&h, &key, json!({ "model": "gpt", "messages": msgs }))
        .header("x-mock-content-filter", "completion")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["choices"][0]["finish_reason"], "content_filter", "{v}");

    let body = json!({ "model": "gpt", "max_tokens": 50, "messages": msgs });
    let resp = anthropic_messages(&h, &key, body.clone())
        .header("x-mock-content-filter", "completion")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["stop_reason"], "refusal", "{v}");

    let mut streamed = body;
    streamed["stream"] = json!(true);
    let resp = anthropic_messages(&h, &key, streamed)
        .header("x-mock-content-filter", "completion")
        .send()
        .await
        .unwrap();
    let text = resp.text().await.unwrap();
    let delta = parse_sse(&text)
        .iter()
        .filter_map(|e| e.json())
        .find(|v| v["type"] == "message_delta")
        .unwrap_or_else(|| panic!("no message_delta: {text}"));
    assert_eq!(delta["delta"]["stop_reason"], "refusal", "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn responses_translated_for_azure() {
    let (h, key) = start().await;
    // A Responses client reaches the deployment's chat completions, translated.
    let resp = h
        .http
        .post(h.url("/v1/responses"))
        .bearer_auth(&key)
        .json(&json!({ "model": "gpt", "input": "hi", "instructions": "be brief" }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await.unwrap();
    let seen = last(&h);
    assert_provider_key_only(&seen);
    assert_eq!(seen.azure_deployment().as_deref(), Some("team/gpt-4o"));
    assert!(
        seen.path_only().ends_with("/chat/completions"),
        "{}",
        seen.path
    );
    let up = seen.json().unwrap();
    assert_eq!(up["messages"][0]["content"], "be brief");
    assert_eq!(v["object"], "response");
    assert_eq!(v["status"], "completed");
    assert_eq!(v["output"][0]["type"], "message", "{v}");
    let before = h.mock.request_count();

    // Anthropic token counting is estimated locally, as for any OpenAI-protocol upstream.
    let resp = h
        .http
        .post(h.url("/v1/messages/count_tokens"))
        .header("x-api-key", &key)
        .json(&json!({ "model": "gpt", "messages": [{ "role": "user", "content": "count these words" }] }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await.unwrap();
    assert!(v["input_tokens"].as_u64().unwrap() > 0, "{v}");
    assert_eq!(h.mock.request_count(), before, "nothing sent upstream");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passthrough_and_routes_add_api_version() {
    let (h, key) = start().await;
    let chat = json!({ "model": "d1", "messages": [{ "role": "user", "content": "hi" }] });
    // The passthrough: the credential in api-key, the upstream's api-version added.
    let resp = h
        .http
        .post(h.url("/proxy/az/openai/deployments/d1/chat/completions"))
        .bearer_auth(&key)
        .header("api-key", CLIENT_API_KEY)
        .json(&chat)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
    let seen = last(&h);
    assert_eq!(seen.path_only(), "/openai/deployments/d1/chat/completions");
    assert_eq!(seen.query_param("api-version"), Some("2024-10-21"));
    assert_provider_key_only(&seen);

    // The client's own api-version wins (and is not doubled).
    let resp = h
        .http
        .post(h.url("/proxy/az/openai/deployments/d1/chat/completions?api-version=2023-05-15&x=1"))
        .bearer_auth(&key)
        .json(&chat)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let seen = last(&h);
    assert_eq!(seen.query_param("api-version"), Some("2023-05-15"));
    assert_eq!(seen.path.matches("api-version").count(), 1, "{}", seen.path);

    // Azure's v1 API takes no dated version (the mock refuses one).
    let resp = h
        .http
        .post(h.url("/proxy/az/openai/v1/responses"))
        .bearer_auth(&key)
        .json(&json!({ "model": "d1", "input": "hi" }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
    let seen = last(&h);
    assert_eq!(seen.path, "/openai/v1/responses");
    assert_provider_key_only(&seen);

    // An explicit route: same rules.
    let resp = h
        .http
        .post(h.url("/az/openai/deployments/emb-3/embeddings"))
        .bearer_auth(&key)
        .json(&json!({ "model": "emb-3", "input": "x" }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let seen = last(&h);
    assert_eq!(seen.path_only(), "/openai/deployments/emb-3/embeddings");
    assert_eq!(seen.query_param("api-version"), Some("2024-10-21"));
    assert_provider_key_only(&seen);
}
