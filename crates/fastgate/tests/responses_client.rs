//! The OpenAI Responses API as a client protocol end to end: `POST /v1/responses` served
//! by OpenAI chat, Anthropic and Gemini upstreams through translation (whole answers and
//! the streaming event sequence), passed through to OpenAI upstreams that serve it natively,
//! stateful requests refused where no state is kept, and a provider's reported cost.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{Backend, Harness};
use fastgate_testkit::MockReply;
use fastgate_testkit::sse::{SseEvent, parse_sse};
use serde_json::{Value, json};

const MODELS: &str = r#"
upstreams:
  - { name: oai, kind: openai, base_url: "{MOCK}", responses_api: chat, credentials: [ { name: o1, key: "sk-openai-secret" } ] }
  - { name: native, kind: openai, base_url: "{MOCK}", credentials: [ { name: n1, key: "sk-native-secret" } ] }
  - { name: ant, kind: anthropic, base_url: "{MOCK}", credentials: [ { name: a1, key: "sk-ant-secret" } ] }
  - { name: goo, kind: gemini, base_url: "{MOCK}", credentials: [ { name: g1, key: "goog-upstream-secret" } ] }
  - { name: router, kind: openai, base_url: "{MOCK}", credentials: [ { name: r1, key: "sk-or-secret" } ] }
models:
  - name: gpt
    deployments: [ { upstream: oai, model: gpt-4o-upstream } ]
    price: { input: 2.0, output: 8.0 }
  - name: gpt-native
    deployments: [ { upstream: native, model: gpt-5-upstream } ]
  - name: claude
    deployments: [ { upstream: ant, model: claude-upstream } ]
  - name: gem
    deployments: [ { upstream: goo, model: gemini-upstream } ]
  - name: routed
    deployments: [ { upstream: router, model: openai/gpt-4o } ]
llm:
  audit: { headers: false, bodies: true, body_max_bytes: 65536 }
"#;

const ANSWER: &str = "tok0 tok1 tok2 tok3 tok4 ";

fn request(model: &str, stream: bool) -> Value {
    json!({
        "model": model,
        "instructions": "be terse",
        "input": [
            { "role": "user", "content": [{ "type": "input_text", "text": "hello there" }] }
        ],
        "max_output_tokens": 64,
        "temperature": 0.3,
        "stream": stream,
    })
}

async fn post(h: &Harness, key: &str, body: &Value) -> reqwest::Response {
    h.http
        .post(h.url("/v1/responses"))
        .bearer_auth(key)
        .json(body)
        .send()
        .await
        .unwrap()
}

/// The text of a `response` object's message items.
fn output_text(v: &Value) -> String {
    let mut out = String::new();
    for item in v["output"].as_array().unwrap() {
        if item["type"] == "message" {
            for part in item["content"].as_array().unwrap() {
                if part["type"] == "output_text" {
                    out.push_str(part["text"].as_str().unwrap());
                }
            }
        }
    }
    out
}

/// Checks the Responses streaming contract on a whole event stream and returns the
/// final `response` object: `event:` names equal each `type`, sequence numbers count
/// from 0, the stream opens with created/in_progress and closes with completed (nothing
/// after it, no `[DONE]`), and the text deltas add up to the final output text.
fn check_stream(events: &[SseEvent]) -> Value {
    assert!(events.len() >= 4, "too few events: {events:?}");
    let mut deltas = String::new();
    for (i, ev) in events.iter().enumerate() {
        assert!(!ev.is_done(), "the Responses API sends no [DONE]");
        let data = ev.json().unwrap();
        assert_eq!(ev.event.as_deref(), data["type"].as_str(), "{data}");
        assert_eq!(data["sequence_number"], i as u64, "{data}");
        if data["type"] == "response.output_text.delta" {
            deltas.push_str(data["delta"].as_str().unwrap());
        }
    }
    let types: Vec<&str> = events.iter().filter_map(|e| e.event.as_deref()).collect();
    assert_eq!(types[0], "response.created");
    assert_eq!(types[1], "response.in_progress");
    assert_eq!(*types.last().unwrap(), "response.completed", "{types:?}");
    let done = events.last().unwrap().json().unwrap();
    let response = done["response"].clone();
    assert_eq!(response["status"], "completed");
    assert_eq!(output_text(&response), deltas);
    response
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whole_answers_through_chat_anthropic_and_gemini() {
    let h = Harness::start(Backend::Sqlite, MODELS).await;
    let key = h.key().await;

    // An OpenAI-compatible chat upstream (`responses_api: chat`).
    let resp = post(&h, &key, &request("gpt", false)).await;
    assert_eq!(resp.status(), 200);
    let rid = resp.headers()["x-request-id"].to_str().unwrap().to_string();
    let v: Value = resp.json().await.unwrap();
    let seen = h.mock.last_request().unwrap();
    assert_eq!(seen.path_only(), "/v1/chat/completions");
    assert_eq!(
        seen.header("authorization"),
        Some("Bearer sk-openai-secret")
    );
    let up = seen.json().unwrap();
    assert_eq!(up["model"], "gpt-4o-upstream");
    assert_eq!(
        up["messages"][0],
        json!({"role": "system", "content": "be terse"})
    );
    assert_eq!(up["messages"][1]["role"], "user");
    assert_eq!(up["temperature"], 0.3);
    assert_eq!(v["object"], "response");
    assert_eq!(v["status"], "completed");
    assert_eq!(v["model"], "gpt");
    assert_eq!(output_text(&v), ANSWER);
    assert_eq!(v["usage"]["output_tokens"], 5);
    let input = v["usage"]["input_tokens"].as_u64().unwrap();
    assert!(input > 0);
    assert_eq!(v["usage"]["total_tokens"].as_u64().unwrap(), input + 5);
    let rec = h.audit_of(&rid).await;
    assert_eq!(rec.model.as_deref(), Some("gpt"));
    assert_eq!(rec.tokens_out, Some(5));
    assert!(!rec.tokens_estimated);
    assert!(rec.cost.unwrap() > 0.0);

    // Anthropic.
    let v: Value = post(&h, &key, &request("claude", false))
        .await
        .json()
        .await
        .unwrap();
    let seen = h.mock.last_request().unwrap();
    assert_eq!(seen.path_only(), "/v1/messages");
    assert_eq!(seen.header("x-api-key"), Some("sk-ant-secret"));
    assert_eq!(
        seen.header("authorization"),
        None,
        "gateway key not forwarded"
    );
    let up = seen.json().unwrap();
    assert_eq!(up["system"], "be terse");
    assert_eq!(up["max_tokens"], 64);
    assert_eq!(output_text(&v), ANSWER);
    assert_eq!(v["status"], "completed");
    assert_eq!(v["usage"]["output_tokens"], 5);

    // Gemini.
    let v: Value = post(&h, &key, &request("gem", false))
        .await
        .json()
        .await
        .unwrap();
    let seen = h.mock.last_request().unwrap();
    assert_eq!(
        seen.path_only(),
        "/v1beta/models/gemini-upstream:generateContent"
    );
    assert_eq!(seen.header("x-goog-api-key"), Some("goog-upstream-secret"));
    let up = seen.json().unwrap();
    assert_eq!(up["systemInstruction"]["parts"][0]["text"], "be terse");
    assert_eq!(up["generationConfig"]["maxOutputTokens"], 64);
    assert_eq!(output_text(&v), ANSWER);
    assert_eq!(v["status"], "completed");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_through_chat_anthropic_and_gemini() {
    let h = Harness::start(Backend::Sqlite, MODELS).await;
    let key = h.key().await;
    for (model, path) in [
        ("gpt", "/v1/chat/completions"),
        ("claude", "/v1/messages"),
        (
            "gem",
            "/v1beta/models/gemini-upstream:streamGenerateContent",
        ),
    ] {
        let resp = post(&h, &key, &request(model, true)).await;
        assert_eq!(resp.status(), 200, "{model}");
        assert!(
            resp.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/event-stream")
        );
        let rid = resp.headers()["x-request-id"].to_str().unwrap().to_string();
        let text = resp.text().await.unwrap();
        let seen = h.mock.last_request().unwrap();
        assert_eq!(seen.path_only(), path, "{model}");
        if model == "gpt" {
            // The chat stream is asked for its usage, which response.completed carries.
            let up = seen.json().unwrap();
            assert_eq!(up["stream"], true);
            assert_eq!(up["stream_options"]["include_usage"], true);
        }
        let events = parse_sse(&text);
        let response = check_stream(&events);
        assert_eq!(output_text(&response), ANSWER, "{model}");
        assert_eq!(response["model"], model);
        assert_eq!(response["usage"]["output_tokens"], 5, "{model}: {response}");
        let types: Vec<&str> = events.iter().filter_map(|e| e.event.as_deref()).collect();
        for t in [
            "response.output_item.added",
            "response.content_part.added",
            "response.output_text.delta",
            "response.output_text.done",
            "response.content_part.done",
            "response.output_item.done",
        ] {
            assert!(types.contains(&t), "{model}: no {t} in {types:?}");
        }
        let rec = h.audit_of(&rid).await;
        assert!(rec.is_stream);
        assert_eq!(rec.tokens_out, Some(5), "{model}");
        assert!(!rec.tokens_estimated, "{model}");
    }
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn function_calls_round_trip_through_anthropic() {
    let h = Harness::start(Backend::Sqlite, MODELS).await;
    let key = h.key().await;
    let tools = json!([{
        "type": "function", "name": "get_weather", "description": "weather of a city",
        "parameters": { "type": "object", "properties": { "city": { "type": "string" } }, "required": ["city"] }
    }]);
    // The model calls the tool (the mock answers with a tool_use block).
    let body = json!({
        "model": "claude", "input": "weather in Paris?", "tools": tools, "tool_choice": "required",
    });
    let resp = h
        .http
        .post(h.url("/v1/responses"))
        .bearer_auth(&key)
        .header("x-mock-tool", "get_weather")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await.unwrap();
    let up = h.mock.last_request().unwrap().json().unwrap();
    assert_eq!(up["tools"][0]["name"], "get_weather");
    assert_eq!(up["tools"][0]["input_schema"]["required"], json!(["city"]));
    assert_eq!(up["tool_choice"]["type"], "any");
    let call = v["output"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["type"] == "function_call")
        .unwrap_or_else(|| panic!("no function_call item: {v}"))
        .clone();
    assert_eq!(call["name"], "get_weather");
    assert_eq!(call["call_id"], "toolu_mock01");
    let args: Value = serde_json::from_str(call["arguments"].as_str().unwrap()).unwrap();
    assert_eq!(args["city"], "Paris");

    // The client sends the call and its output back: they reach Anthropic paired.
    let body = json!({
        "model": "claude",
        "input": [
            { "role": "user", "content": "weather in Paris?" },
            { "type": "function_call", "call_id": call["call_id"], "name": "get_weather", "arguments": call["arguments"] },
            { "type": "function_call_output", "call_id": call["call_id"], "output": "sunny, 21C" }
        ],
        "tools": tools,
    });
    let v: Value = post(&h, &key, &body).await.json().await.unwrap();
    assert_eq!(output_text(&v), ANSWER);
    let up = h.mock.last_request().unwrap().json().unwrap();
    let msgs = up["messages"].as_array().unwrap();
    assert_eq!(msgs[1]["role"], "assistant");
    assert_eq!(msgs[1]["content"][0]["type"], "tool_use");
    assert_eq!(msgs[1]["content"][0]["id"], "toolu_mock01");
    assert_eq!(msgs[2]["role"], "user");
    assert_eq!(msgs[2]["content"][0]["type"], "tool_result");
    assert_eq!(msgs[2]["content"][0]["tool_use_id"], "toolu_mock01");

    // Streamed, the call arrives as a function_call item with its argument deltas.
    let mut body =
        json!({ "model": "claude", "input": "weather in Paris?", "tools": tools, "stream": true });
    body["tool_choice"] = json!({ "type": "function", "name": "get_weather" });
    let text = h
        .http
        .post(h.url("/v1/responses"))
        .bearer_auth(&key)
        .header("x-mock-tool", "get_weather")
        .json(&body)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let events = parse_sse(&text);
    let response = check_stream(&events);
    let mut args = String::new();
    for ev in &events {
        let d = ev.json().unwrap();
        if d["type"] == "response.function_call_arguments.delta" {
            args.push_str(d["delta"].as_str().unwrap());
        }
    }
    let args: Value = serde_json::from_str(&args).unwrap();
    assert_eq!(args["city"], "Paris");
    let item = response["output"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["type"] == "function_call")
        .unwrap()
        .clone();
    assert_eq!(item["call_id"], "toolu_mock01");
    assert_eq!(item["status"], "completed");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stateful_requests_are_refused_unless_the_upstream_is_native() {
    let h = Harness::start(Backend::Sqlite, MODELS).await;
    let key = h.key().await;
    for (field, value) in [
        ("previous_response_id", json!("resp_abc")),
        ("store", json!(true)),
    ] {
        let mut body = request("claude", false);
        body[field] = value.clone();
        let before = h.mock.request_count();
        let resp = post(&h, &key, &body).await;
        assert_eq!(resp.status(), 400, "{field}");
        let v: Value = resp.json().await.unwrap();
        assert_eq!(v["error"]["type"], "invalid_request_error", "{v}");
        let msg = v["error"]["message"].as_str().unwrap();
        assert!(msg.contains(field), "{field}: {msg}");
        assert_eq!(h.mock.request_count(), before, "nothing sent upstream");

        // A native upstream keeps the state: the field goes through.
        h.mock.enqueue(MockReply::Status {
            status: 200,
            body: native_response().to_string(),
            headers: Vec::new(),
        });
        let mut body = request("gpt-native", false);
        body[field] = value;
        let resp = post(&h, &key, &body).await;
        assert_eq!(resp.status(), 200, "{field}");
        let up = h.mock.last_request().unwrap().json().unwrap();
        assert_eq!(up[field], body[field], "{field} passed through");
    }
    h.stop().await;
}

fn native_response() -> Value {
    json!({
        "id": "resp_native1", "object": "response", "created_at": 1_741_476_542,
        "status": "completed", "model": "gpt-5-upstream-2025",
        "output": [{
            "type": "message", "id": "msg_1", "status": "completed", "role": "assistant",
            "content": [{ "type": "output_text", "text": "native hello", "annotations": [] }]
        }],
        "usage": {
            "input_tokens": 36, "input_tokens_details": { "cached_tokens": 4 },
            "output_tokens": 87, "output_tokens_details": { "reasoning_tokens": 0 },
            "total_tokens": 123
        }
    })
}

const NATIVE_STREAM: &str = concat!(
    "event: response.created\n",
    "data: {\"type\":\"response.created\",\"sequence_number\":0,\"response\":{\"id\":\"resp_n2\",\"object\":\"response\",\"status\":\"in_progress\",\"model\":\"gpt-5-upstream\",\"output\":[],\"usage\":null}}\n\n",
    "event: response.output_item.added\n",
    "data: {\"type\":\"response.output_item.added\",\"sequence_number\":1,\"output_index\":0,\"item\":{\"id\":\"msg_2\",\"type\":\"message\",\"status\":\"in_progress\",\"role\":\"assistant\",\"content\":[]}}\n\n",
    "event: response.output_text.delta\n",
    "data: {\"type\":\"response.output_text.delta\",\"sequence_number\":2,\"item_id\":\"msg_2\",\"output_index\":0,\"content_index\":0,\"delta\":\"Hi there\"}\n\n",
    "event: response.completed\n",
    "data: {\"type\":\"response.completed\",\"sequence_number\":3,\"response\":{\"id\":\"resp_n2\",\"object\":\"response\",\"status\":\"completed\",\"model\":\"gpt-5-upstream\",\"output\":[{\"id\":\"msg_2\",\"type\":\"message\",\"status\":\"completed\",\"role\":\"assistant\",\"content\":[{\"type\":\"output_text\",\"text\":\"Hi there\",\"annotations\":[]}]}],\"usage\":{\"input_tokens\":11,\"input_tokens_details\":{\"cached_tokens\":0},\"output_tokens\":3,\"output_tokens_details\":{\"reasoning_tokens\":0},\"total_tokens\":14}}}\n\n",
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_native_upstream_gets_the_request_as_sent() {
    let h = Harness::start(Backend::Sqlite, MODELS).await;
    let key = h.key().await;
    h.mock.enqueue(MockReply::Status {
        status: 200,
        body: native_response().to_string(),
        headers: Vec::new(),
    });
    let mut body = request("gpt-native", false);
    body["include"] = json!(["reasoning.encrypted_content"]);
    let resp = post(&h, &key, &body).await;
    assert_eq!(resp.status(), 200);
    let rid = resp.headers()["x-request-id"].to_str().unwrap().to_string();
    let v: Value = resp.json().await.unwrap();
    let seen = h.mock.last_request().unwrap();
    assert_eq!(seen.path_only(), "/v1/responses");
    assert_eq!(
        seen.header("authorization"),
        Some("Bearer sk-native-secret")
    );
    let up = seen.json().unwrap();
    assert_eq!(up["model"], "gpt-5-upstream");
    assert_eq!(up["instructions"], "be terse", "body unchanged");
    assert_eq!(up["include"], json!(["reasoning.encrypted_content"]));
    assert_eq!(output_text(&v), "native hello");
    assert_eq!(v["model"], "gpt-native", "the client's model echoed");
    let rec = h.audit_of(&rid).await;
    assert_eq!(rec.tokens_in, Some(36));
    assert_eq!(rec.tokens_out, Some(87));
    assert!(!rec.tokens_estimated);

    // Streams pass through byte for byte; the usage is read from response.completed.
    h.mock.enqueue(MockReply::Status {
        status: 200,
        body: NATIVE_STREAM.into(),
        headers: vec![("content-type".into(), "text/event-stream".into())],
    });
    let resp = post(&h, &key, &request("gpt-native", true)).await;
    assert_eq!(resp.status(), 200);
    let rid = resp.headers()["x-request-id"].to_str().unwrap().to_string();
    assert_eq!(resp.text().await.unwrap(), NATIVE_STREAM);
    let rec = h.audit_of(&rid).await;
    assert!(rec.is_stream);
    assert_eq!(rec.tokens_in, Some(11));
    assert_eq!(rec.tokens_out, Some(3));
    assert!(!rec.tokens_estimated);

    // Native errors reach the client unchanged.
    h.mock.enqueue(MockReply::Status {
        status: 400,
        body: json!({"error": {"message": "Previous response with id 'resp_x' not found.",
            "type": "invalid_request_error", "param": "previous_response_id", "code": "previous_response_not_found"}})
        .to_string(),
        headers: Vec::new(),
    });
    let resp = post(&h, &key, &request("gpt-native", false)).await;
    assert_eq!(resp.status(), 400);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["code"], "previous_response_not_found");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_errors_and_bad_requests_are_openai_shaped() {
    let h = Harness::start(Backend::Sqlite, MODELS).await;
    let key = h.key().await;
    // An Anthropic error becomes an OpenAI-shaped one.
    h.mock.enqueue(MockReply::Status {
        status: 429,
        body: json!({"type": "error", "error": {"type": "rate_limit_error", "message": "slow down please"}})
            .to_string(),
        headers: Vec::new(),
    });
    let resp = post(&h, &key, &request("claude", false)).await;
    assert_eq!(resp.status(), 429);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["type"], "rate_limit_error");
    assert_eq!(v["error"]["message"], "slow down please");

    // A built-in tool cannot be run by a translated upstream: 400 naming it.
    let mut body = request("gem", false);
    body["tools"] = json!([{ "type": "web_search" }]);
    let resp = post(&h, &key, &body).await;
    assert_eq!(resp.status(), 400);
    let v: Value = resp.json().await.unwrap();
    let msg = v["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains("tools[0]") && msg.contains("web_search"),
        "{msg}"
    );

    // No input at all.
    let resp = post(&h, &key, &json!({ "model": "gpt" })).await;
    assert_eq!(resp.status(), 400);
    let v: Value = resp.json().await.unwrap();
    assert!(
        v["error"]["message"].as_str().unwrap().contains("input"),
        "{v}"
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_reported_cost_is_recorded_when_no_price_is_set() {
    let h = Harness::start(Backend::Sqlite, MODELS).await;
    let key = h.key().await;
    let completion = |cost: f64| {
        json!({
            "id": "gen-1", "object": "chat.completion", "created": 1_741_476_542, "model": "openai/gpt-4o",
            "provider": "OpenAI",
            "choices": [{ "index": 0, "message": { "role": "assistant", "content": "hi" }, "finish_reason": "stop" }],
            "usage": { "prompt_tokens": 10, "completion_tokens": 2, "total_tokens": 12, "cost": cost, "is_byok": false }
        })
        .to_string()
    };
    h.mock.enqueue(MockReply::Status {
        status: 200,
        body: completion(0.0125),
        headers: Vec::new(),
    });
    let body = json!({ "model": "routed", "messages": [{ "role": "user", "content": "hi" }],
        "provider": { "order": ["OpenAI"], "allow_fallbacks": false } });
    let resp = h
        .http
        .post(h.url("/v1/chat/completions"))
        .bearer_auth(&key)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let rid = resp.headers()["x-request-id"].to_str().unwrap().to_string();
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["usage"]["cost"], 0.0125, "passed through to the client");
    assert_eq!(v["provider"], "OpenAI");
    let up = h.mock.last_request().unwrap().json().unwrap();
    assert_eq!(
        up["provider"]["order"],
        json!(["OpenAI"]),
        "routing field kept"
    );
    let rec = h.audit_of(&rid).await;
    assert_eq!(rec.cost, Some(0.0125));

    // With a price configured, the price decides (the `gpt` group's chat upstream).
    h.mock.enqueue(MockReply::Status {
        status: 200,
        body: completion(99.0),
        headers: Vec::new(),
    });
    let body = json!({ "model": "gpt", "messages": [{ "role": "user", "content": "hi" }] });
    let resp = h
        .http
        .post(h.url("/v1/chat/completions"))
        .bearer_auth(&key)
        .json(&body)
        .send()
        .await
        .unwrap();
    let rid = resp.headers()["x-request-id"].to_str().unwrap().to_string();
    let rec = h.audit_of(&rid).await;
    let expected = (10.0 * 2.0 + 2.0 * 8.0) / 1e6;
    assert!(
        (rec.cost.unwrap() - expected).abs() < 1e-12,
        "{:?}",
        rec.cost
    );
    h.stop().await;
}
