//! The built-in LLM endpoints end to end: model groups, translation both ways,
//! streaming, usage and cost, fallbacks, errors, the mock kind.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::{Backend, Harness};
use fastgate_testkit::MockReply;
use fastgate_testkit::sse::parse_sse;
use serde_json::{Value, json};

const MODELS: &str = r#"
upstreams:
  - { name: oai, kind: openai, base_url: "{MOCK}", credentials: [ { name: o1, key: "sk-openai-secret" } ] }
  - { name: ant, kind: anthropic, base_url: "{MOCK}", credentials: [ { name: a1, key: "sk-ant-secret" } ],
      timeout: { first_byte: 5s, idle: 5s }, retries: 0 }
  - { name: dead, kind: openai, base_url: "{DEAD}", credentials: [ { name: d1, key: "sk-dead" } ] }
  - { name: builtin, kind: mock }
  - { name: flaky, kind: openai, base_url: "{MOCK}", credentials: [ { name: f1, key: "sk-flaky" } ], retries: 0 }
models:
  - name: gpt
    deployments: [ { upstream: oai, model: gpt-4o-upstream } ]
    price: { input: 2.0, output: 8.0 }
  - name: claude
    deployments: [ { upstream: ant, model: claude-upstream } ]
  - name: failover
    deployments: [ { upstream: flaky, model: flaky-upstream } ]
    fallbacks: [ deadgroup, gpt ]
  - name: deadgroup
    deployments: [ { upstream: dead, model: x } ]
  - name: demo
    deployments: [ { upstream: builtin, model: mock-1 } ]
  - name: emb
    kind: embedding
    deployments: [ { upstream: oai, model: text-embedding-upstream } ]
llm:
  audit: { headers: false, bodies: true, body_max_bytes: 65536 }
"#;

async fn post(h: &Harness, key: &str, path: &str, body: Value) -> reqwest::Response {
    h.http
        .post(h.url(path))
        .bearer_auth(key)
        .json(&body)
        .send()
        .await
        .unwrap()
}

fn rid(resp: &reqwest::Response) -> String {
    resp.headers()["x-request-id"].to_str().unwrap().to_string()
}

async fn openai_client_openai_upstream(backend: Backend) {
    let h = Harness::start(backend, MODELS).await;
    let key = h.key().await;
    let resp = post(
        &h,
        &key,
        "/v1/chat/completions",
        json!({ "model": "gpt", "messages": [{ "role": "user", "content": "hello there" }] }),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let id = rid(&resp);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["model"], "gpt", "client model echoed");
    let seen = h.mock.last_request().unwrap().json().unwrap();
    assert_eq!(seen["model"], "gpt-4o-upstream", "upstream model rewritten");
    assert_eq!(
        h.mock.last_request().unwrap().header("authorization"),
        Some("Bearer sk-openai-secret")
    );
    let rec = h.audit_of(&id).await;
    assert_eq!(rec.route.as_deref(), Some("llm"));
    assert_eq!(rec.model.as_deref(), Some("gpt"));
    assert_eq!(rec.tokens_out, Some(5));
    assert!(!rec.tokens_estimated);
    let cost = rec.cost.unwrap();
    let expected = (rec.tokens_in.unwrap() as f64 * 2.0 + 5.0 * 8.0) / 1e6;
    assert!((cost - expected).abs() < 1e-12, "{cost} vs {expected}");

    // Streaming: usage is requested upstream but stripped from a client that did not ask.
    let resp = post(&h, &key, "/v1/chat/completions", json!({ "model": "gpt", "stream": true, "messages": [{ "role": "user", "content": "hi" }] })).await;
    let id = rid(&resp);
    let text = resp.text().await.unwrap();
    let upstream_req = h.mock.last_request().unwrap().json().unwrap();
    assert_eq!(upstream_req["stream_options"]["include_usage"], true);
    let events = parse_sse(&text);
    assert!(events.last().unwrap().is_done());
    assert!(
        events
            .iter()
            .filter_map(|e| e.json())
            .all(|c| c.get("usage").is_none_or(Value::is_null)),
        "{text}"
    );
    let content: String = events
        .iter()
        .filter_map(|e| e.json())
        .filter_map(|c| {
            c["choices"][0]["delta"]["content"]
                .as_str()
                .map(str::to_string)
        })
        .collect();
    assert_eq!(content, "tok0 tok1 tok2 tok3 tok4 ");
    let rec = h.audit_of(&id).await;
    assert!(rec.is_stream);
    assert_eq!(
        rec.tokens_out,
        Some(5),
        "usage read from the stripped chunk"
    );
    let merged: Value = serde_json::from_str(&rec.response_body.unwrap()).unwrap();
    assert_eq!(
        merged["choices"][0]["message"]["content"],
        "tok0 tok1 tok2 tok3 tok4 "
    );

    // A client that asks for usage gets the usage chunk.
    let resp = post(&h, &key, "/v1/chat/completions", json!({ "model": "gpt", "stream": true, "stream_options": { "include_usage": true }, "messages": [] })).await;
    let text = resp.text().await.unwrap();
    assert!(
        parse_sse(&text)
            .iter()
            .filter_map(|e| e.json())
            .any(|c| c["usage"]["completion_tokens"] == 5),
        "{text}"
    );

    // Embeddings pass through with the model rewritten.
    let resp = post(
        &h,
        &key,
        "/v1/embeddings",
        json!({ "model": "emb", "input": ["a", "b"] }),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["data"].as_array().unwrap().len(), 2);
    assert_eq!(
        h.mock.last_request().unwrap().json().unwrap()["model"],
        "text-embedding-upstream"
    );
    h.stop().await;
}
both_backends!(openai_client_openai_upstream, openai_client_openai_upstream);

async fn openai_client_anthropic_upstream(backend: Backend) {
    let h = Harness::start(backend, MODELS).await;
    let key = h.key().await;
    let resp = post(&h, &key, "/v1/chat/completions", json!({
        "model": "claude",
        "messages": [{ "role": "system", "content": "be brief" }, { "role": "user", "content": "hello" }]
    })).await;
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["object"], "chat.completion");
    assert_eq!(
        v["choices"][0]["message"]["content"],
        "tok0 tok1 tok2 tok3 tok4 "
    );
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    assert_eq!(v["usage"]["completion_tokens"], 5);
    let seen = h.mock.last_request().unwrap();
    assert_eq!(seen.path_only(), "/v1/messages");
    assert_eq!(seen.header("x-api-key"), Some("sk-ant-secret"));
    let body = seen.json().unwrap();
    assert_eq!(body["model"], "claude-upstream");
    assert_eq!(
        body["system"]
            .as_str()
            .or(body["system"][0]["text"].as_str()),
        Some("be brief")
    );
    assert!(
        body["max_tokens"].as_u64().unwrap() > 0,
        "Anthropic requires max_tokens"
    );

    // Streamed tool call: arguments arrive as deltas with index 0, finish reason tool_calls.
    let resp = h
        .http
        .post(h.url("/v1/chat/completions"))
        .bearer_auth(&key)
        .header("x-mock-tool", "get_weather")
        .header("x-mock-chunks", "4")
        .json(&json!({ "model": "claude", "stream": true, "messages": [{ "role": "user", "content": "weather?" }],
                       "tools": [{ "type": "function", "function": { "name": "get_weather", "parameters": { "type": "object" } } }] }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let text = resp.text().await.unwrap();
    let chunks: Vec<Value> = parse_sse(&text).iter().filter_map(|e| e.json()).collect();
    let mut args = String::new();
    let mut name = None;
    for c in &chunks {
        if let Some(calls) = c["choices"][0]["delta"]["tool_calls"].as_array() {
            for call in calls {
                assert_eq!(call["index"], 0);
                if let Some(n) = call["function"]["name"].as_str() {
                    name = Some(n.to_string());
                }
                args.push_str(call["function"]["arguments"].as_str().unwrap_or(""));
            }
        }
    }
    assert_eq!(name.as_deref(), Some("get_weather"));
    let parsed: Value = serde_json::from_str(&args).unwrap();
    assert_eq!(parsed["city"], "Paris");
    assert!(
        chunks
            .iter()
            .any(|c| c["choices"][0]["finish_reason"] == "tool_calls"),
        "{text}"
    );
    assert!(text.trim_end().ends_with("data: [DONE]"));

    // Upstream errors come back in the client's (OpenAI) shape with the status.
    h.mock.enqueue(MockReply::Status {
        status: 400,
        body: json!({ "type": "error", "error": { "type": "invalid_request_error", "message": "bad thing" } }).to_string(),
        headers: vec![("content-type".into(), "application/json".into())],
    });
    let resp = post(
        &h,
        &key,
        "/v1/chat/completions",
        json!({ "model": "claude", "messages": [{ "role": "user", "content": "x" }] }),
    )
    .await;
    assert_eq!(resp.status(), 400);
    let v: Value = resp.json().await.unwrap();
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("bad thing"),
        "{v}"
    );
    h.stop().await;
}
both_backends!(
    openai_client_anthropic_upstream,
    openai_client_anthropic_upstream
);

async fn anthropic_client_openai_upstream(backend: Backend) {
    let h = Harness::start(backend, MODELS).await;
    let key = h.key().await;
    let resp = h
        .http
        .post(h.url("/v1/messages"))
        .header("x-api-key", &key)
        .header("anthropic-version", "2023-06-01")
        .json(&json!({ "model": "gpt", "max_tokens": 100, "system": "be nice", "messages": [{ "role": "user", "content": "hi" }] }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["type"], "message");
    assert_eq!(v["role"], "assistant");
    assert_eq!(v["content"][0]["text"], "tok0 tok1 tok2 tok3 tok4 ");
    assert_eq!(v["stop_reason"], "end_turn");
    assert_eq!(v["usage"]["output_tokens"], 5);
    let upstream = h.mock.last_request().unwrap();
    assert_eq!(upstream.path_only(), "/v1/chat/completions");
    assert_eq!(
        upstream.header("x-api-key"),
        None,
        "client key never forwarded"
    );
    let body = upstream.json().unwrap();
    assert_eq!(body["messages"][0]["role"], "system");

    let resp = h
        .http
        .post(h.url("/v1/messages"))
        .header("x-api-key", &key)
        .json(&json!({ "model": "gpt", "max_tokens": 100, "stream": true, "messages": [{ "role": "user", "content": "hi" }] }))
        .send()
        .await
        .unwrap();
    let text = resp.text().await.unwrap();
    let events = parse_sse(&text);
    let names: Vec<&str> = events.iter().filter_map(|e| e.event.as_deref()).collect();
    assert_eq!(names.first(), Some(&"message_start"), "{text}");
    assert_eq!(names.last(), Some(&"message_stop"), "{text}");
    assert!(names.contains(&"content_block_delta"));
    let joined: String = events
        .iter()
        .filter_map(|e| e.json())
        .filter_map(|v| v["delta"]["text"].as_str().map(str::to_string))
        .collect();
    assert_eq!(joined, "tok0 tok1 tok2 tok3 tok4 ");

    // Errors in Anthropic's shape; token counting estimated locally.
    let resp = h
        .http
        .post(h.url("/v1/messages"))
        .header("x-api-key", &key)
        .json(&json!({ "model": "nope", "messages": [] }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["type"], "error");
    let resp = h
        .http
        .post(h.url("/v1/messages/count_tokens"))
        .header("x-api-key", &key)
        .json(&json!({ "model": "gpt", "messages": [{ "role": "user", "content": "count these words please" }] }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await.unwrap();
    assert!(v["input_tokens"].as_u64().unwrap() > 0);
    h.stop().await;
}
both_backends!(
    anthropic_client_openai_upstream,
    anthropic_client_openai_upstream
);

async fn models_permissions_fallbacks_and_mock(backend: Backend) {
    let h = Harness::start(backend, MODELS).await;
    let (_, limited) = h
        .create_key(json!({ "name": "lim", "allowed_models": ["demo", "g*"] }))
        .await;
    let resp = h
        .http
        .get(h.url("/v1/models"))
        .bearer_auth(&limited)
        .send()
        .await
        .unwrap();
    let v: Value = resp.json().await.unwrap();
    let ids: Vec<&str> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec!["gpt", "demo"]);
    assert_eq!(v["object"], "list");

    let resp = post(
        &h,
        &limited,
        "/v1/chat/completions",
        json!({ "model": "claude", "messages": [] }),
    )
    .await;
    assert_eq!(resp.status(), 403);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["code"], "model_not_allowed");
    let resp = post(
        &h,
        &limited,
        "/v1/chat/completions",
        json!({ "model": "gpt-unknown", "messages": [] }),
    )
    .await;
    assert_eq!(resp.status(), 404);
    let resp = post(
        &h,
        &limited,
        "/v1/chat/completions",
        json!({ "messages": [] }),
    )
    .await;
    assert_eq!(resp.status(), 400);

    // The built-in mock answers without any network.
    let before = h.mock.request_count();
    let resp = post(
        &h,
        &limited,
        "/v1/chat/completions",
        json!({ "model": "demo", "messages": [{ "role": "user", "content": "ping" }] }),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await.unwrap();
    assert!(
        v["choices"][0]["message"]["content"]
            .as_str()
            .unwrap()
            .contains("ping")
    );
    let resp = post(&h, &limited, "/v1/chat/completions", json!({ "model": "demo", "stream": true, "messages": [{ "role": "user", "content": "ping" }] })).await;
    let text = resp.text().await.unwrap();
    assert!(text.trim_end().ends_with("data: [DONE]"), "{text}");
    assert_eq!(h.mock.request_count(), before);

    // Fallbacks in order: the failing deployment (503), then the group whose
    // upstream is unreachable, then `gpt`, which answers.
    h.mock.fail_key("sk-flaky", MockReply::error(503));
    let key = h.key().await;
    let resp = post(
        &h,
        &key,
        "/v1/chat/completions",
        json!({ "model": "failover", "messages": [] }),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let id = rid(&resp);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["model"], "failover");
    assert_eq!(
        v["choices"][0]["message"]["content"],
        "tok0 tok1 tok2 tok3 tok4 "
    );
    let seen: Vec<(String, String)> = h.mock.requests()[before..]
        .iter()
        .map(|r| {
            (
                r.json().unwrap()["model"].as_str().unwrap().to_string(),
                r.header("authorization").unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        vec![
            ("flaky-upstream".to_string(), "Bearer sk-flaky".to_string()),
            (
                "gpt-4o-upstream".to_string(),
                "Bearer sk-openai-secret".to_string()
            ),
        ],
        "one attempt on the failing deployment, then the fallback that answered"
    );
    let rec = h.audit_of(&id).await;
    assert_eq!(rec.status_code, 200);
    assert_eq!(rec.model.as_deref(), Some("failover"));
    assert_eq!(rec.upstream.as_deref(), Some("oai"), "{rec:?}");
    assert_eq!(rec.credential.as_deref(), Some("o1"), "{rec:?}");
    h.stop().await;
}
both_backends!(
    models_permissions_fallbacks_and_mock,
    models_permissions_fallbacks_and_mock
);

async fn explicit_route_wins_and_disconnect_estimates(backend: Backend) {
    let yaml = format!(
        "{MODELS}routes:\n  - {{ name: raw-chat, match: {{ path: \"/v1/chat/completions\", headers: {{ x-raw: \"1\" }} }}, upstream: oai }}\n"
    );
    let h = Harness::start(backend, &yaml).await;
    let key = h.key().await;
    let resp = h
        .http
        .post(h.url("/v1/chat/completions"))
        .bearer_auth(&key)
        .header("x-raw", "1")
        .json(&json!({ "model": "anything", "messages": [] }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let id = rid(&resp);
    assert_eq!(
        h.mock.last_request().unwrap().json().unwrap()["model"],
        "anything",
        "passthrough, no rewrite"
    );
    assert_eq!(h.audit_of(&id).await.route.as_deref(), Some("raw-chat"));

    // A client that goes away mid-stream: usage estimated and marked so.
    let resp = h
        .http
        .post(h.url("/v1/chat/completions"))
        .bearer_auth(&key)
        .header("x-mock-chunks", "100")
        .header("x-mock-chunk-delay-ms", "20")
        .json(&json!({ "model": "gpt", "stream": true, "messages": [{ "role": "user", "content": "tell me a long story" }] }))
        .send()
        .await
        .unwrap();
    let id = rid(&resp);
    let mut stream = resp.bytes_stream();
    use futures_util::StreamExt;
    let _ = stream.next().await;
    drop(stream);
    assert!(
        h.mock
            .wait_until(Duration::from_secs(2), |m| m.streams_cancelled() >= 1)
            .await
    );
    let rec = h.audit_of(&id).await;
    assert!(rec.tokens_estimated, "{rec:?}");
    assert!(rec.tokens_in.unwrap() > 0);
    h.stop().await;
}
both_backends!(
    explicit_route_wins_and_disconnect_estimates,
    explicit_route_wins_and_disconnect_estimates
);

async fn upstream_reset_ends_translated_stream_with_error_event(backend: Backend) {
    let h = Harness::start(backend, MODELS).await;
    let key = h.key().await;
    let resp = h
        .http
        .post(h.url("/v1/messages"))
        .header("x-api-key", &key)
        .header("x-mock-chunks", "10")
        .header("x-mock-reset-after", "3")
        .json(&json!({ "model": "gpt", "max_tokens": 50, "stream": true, "messages": [{ "role": "user", "content": "hi" }] }))
        .send()
        .await
        .unwrap();
    let id = rid(&resp);
    let text = resp.text().await.unwrap_or_default();
    let events = parse_sse(&text);
    let names: Vec<&str> = events.iter().filter_map(|e| e.event.as_deref()).collect();
    assert_eq!(names.last(), Some(&"error"), "terminal error event: {text}");
    assert!(!names.contains(&"message_stop"), "no fake end: {text}");
    let rec = h.audit_of(&id).await;
    assert!(rec.error_message.is_some());
    assert!(rec.tokens_estimated, "usage marked partial/estimated");
    h.stop().await;
}
both_backends!(
    upstream_reset_ends_translated_stream_with_error_event,
    upstream_reset_ends_translated_stream_with_error_event
);

async fn openai_client_gemini_upstream(backend: Backend) {
    let yaml = MODELS.replace(
        "  - { name: builtin, kind: mock }",
        "  - { name: builtin, kind: mock }\n  - { name: gem, kind: gemini, base_url: \"{MOCK}\", credentials: [ { name: g1, key: \"gem-secret\" } ] }",
    ) + "  - { name: flash, deployments: [ { upstream: gem, model: gemini-upstream } ] }\n";
    let yaml = yaml.replace(
        "llm:\n  audit: { headers: false, bodies: true, body_max_bytes: 65536 }\n",
        "",
    ) + "llm:\n  audit: { headers: false, bodies: true, body_max_bytes: 65536 }\n";
    let h = Harness::start(backend, &yaml).await;
    let key = h.key().await;
    let resp = post(
        &h,
        &key,
        "/v1/chat/completions",
        json!({ "model": "flash", "messages": [{ "role": "user", "content": "hi gemini" }] }),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(
        v["choices"][0]["message"]["content"],
        "tok0 tok1 tok2 tok3 tok4 "
    );
    assert_eq!(v["usage"]["completion_tokens"], 5);
    let seen = h.mock.last_request().unwrap();
    assert_eq!(seen.path, "/v1beta/models/gemini-upstream:generateContent");
    assert_eq!(seen.header("x-goog-api-key"), Some("gem-secret"));
    assert_eq!(seen.header("authorization"), None);

    let resp = post(&h, &key, "/v1/chat/completions", json!({ "model": "flash", "stream": true, "messages": [{ "role": "user", "content": "hi" }] })).await;
    let text = resp.text().await.unwrap();
    assert_eq!(
        h.mock.last_request().unwrap().path,
        "/v1beta/models/gemini-upstream:streamGenerateContent?alt=sse"
    );
    let content: String = parse_sse(&text)
        .iter()
        .filter_map(|e| e.json())
        .filter_map(|c| {
            c["choices"][0]["delta"]["content"]
                .as_str()
                .map(str::to_string)
        })
        .collect();
    assert_eq!(content, "tok0 tok1 tok2 tok3 tok4 ");
    assert!(text.trim_end().ends_with("data: [DONE]"), "{text}");
    h.stop().await;
}
both_backends!(openai_client_gemini_upstream, openai_client_gemini_upstream);

async fn responses_and_completions_pass_through(backend: Backend) {
    let h = Harness::start(backend, MODELS).await;
    let key = h.key().await;
    let resp = post(
        &h,
        &key,
        "/v1/responses",
        json!({ "model": "gpt", "input": "hello" }),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let seen = h.mock.last_request().unwrap();
    assert_eq!(seen.path, "/v1/responses");
    assert_eq!(seen.json().unwrap()["model"], "gpt-4o-upstream");
    assert_eq!(seen.json().unwrap()["input"], "hello");
    // Other upstreams serve it through translation (tests/responses_client.rs).
    let resp = post(
        &h,
        &key,
        "/v1/responses",
        json!({ "model": "claude", "input": "hello" }),
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(h.mock.last_request().unwrap().path_only(), "/v1/messages");
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["object"], "response");
    let resp = post(
        &h,
        &key,
        "/v1/completions",
        json!({ "model": "demo", "prompt": "say hi" }),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["object"], "text_completion");
    h.stop().await;
}
both_backends!(
    responses_and_completions_pass_through,
    responses_and_completions_pass_through
);
