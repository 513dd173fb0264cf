//! Gemini as a client protocol end to end: `…/models/{model}:generateContent`,
//! `:streamGenerateContent` (SSE and JSON array), `:countTokens`, the model list, keys sent
//! the Google way, errors in Google's shape, through OpenAI, Anthropic and Gemini upstreams.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{Backend, Harness};
use fastgate_testkit::MockReply;
use fastgate_testkit::sse::parse_sse;
use serde_json::{Value, json};

const MODELS: &str = r#"
upstreams:
  - { name: oai, kind: openai, base_url: "{MOCK}", credentials: [ { name: o1, key: "sk-openai-secret" } ] }
  - { name: ant, kind: anthropic, base_url: "{MOCK}", credentials: [ { name: a1, key: "sk-ant-secret" } ] }
  - { name: goo, kind: gemini, base_url: "{MOCK}", credentials: [ { name: g1, key: "goog-upstream-secret" } ] }
models:
  - name: gpt
    deployments: [ { upstream: oai, model: gpt-4o-upstream } ]
    price: { input: 2.0, output: 8.0 }
  - name: claude
    deployments: [ { upstream: ant, model: claude-upstream } ]
  - name: gem
    deployments: [ { upstream: goo, model: gemini-upstream } ]
llm:
  audit: { headers: false, bodies: true, body_max_bytes: 65536 }
"#;

const ANSWER: &str = "tok0 tok1 tok2 tok3 tok4 ";

fn hello() -> Value {
    json!({
        "systemInstruction": { "parts": [{ "text": "be terse" }] },
        "contents": [{ "role": "user", "parts": [{ "text": "hello there" }] }],
        "generationConfig": { "maxOutputTokens": 64, "temperature": 0.3, "stopSequences": ["END"] }
    })
}

async fn post_goog(h: &Harness, key: &str, path: &str, body: &Value) -> reqwest::Response {
    h.http
        .post(h.url(path))
        .header("x-goog-api-key", key)
        .json(body)
        .send()
        .await
        .unwrap()
}

fn parts_text(v: &Value) -> String {
    v["candidates"][0]["content"]["parts"]
        .as_array()
        .map(|ps| ps.iter().filter_map(|p| p["text"].as_str()).collect())
        .unwrap_or_default()
}

/// The gateway key never reaches the upstream, by header or query.
fn assert_key_not_forwarded(h: &Harness, key: &str) {
    let req = h.mock.last_request().unwrap();
    assert!(
        !req.path.contains(key),
        "key in the upstream URL: {}",
        req.path
    );
    assert!(!req.path.contains("key="), "{}", req.path);
    for (name, value) in req.headers.iter() {
        assert!(
            !value.to_str().unwrap_or("").contains(key),
            "key forwarded in {name}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generate_content_through_openai_and_anthropic() {
    let h = Harness::start(Backend::Sqlite, MODELS).await;
    let key = h.key().await;

    // OpenAI upstream, key in x-goog-api-key, the current SDK's /v1 path.
    let resp = post_goog(&h, &key, "/v1/models/gpt:generateContent", &hello()).await;
    assert_eq!(resp.status(), 200);
    let rid = resp.headers()["x-request-id"].to_str().unwrap().to_string();
    let v: Value = resp.json().await.unwrap();
    let seen = h.mock.last_request().unwrap();
    assert_eq!(seen.path_only(), "/v1/chat/completions");
    assert_eq!(
        seen.header("authorization"),
        Some("Bearer sk-openai-secret")
    );
    assert_eq!(seen.header("x-goog-api-key"), None);
    let up = seen.json().unwrap();
    assert_eq!(up["model"], "gpt-4o-upstream");
    assert_eq!(
        up["messages"][0],
        json!({"role": "system", "content": "be terse"})
    );
    assert_eq!(up["messages"][1]["content"], "hello there");
    assert_eq!(up["max_tokens"], 64);
    assert_eq!(up["temperature"], 0.3);
    assert_eq!(up["stop"], json!(["END"]));
    assert_eq!(parts_text(&v), ANSWER);
    assert_eq!(v["candidates"][0]["content"]["role"], "model");
    assert_eq!(v["candidates"][0]["finishReason"], "STOP");
    let u = &v["usageMetadata"];
    assert_eq!(u["candidatesTokenCount"], 5);
    let prompt = u["promptTokenCount"].as_u64().unwrap();
    assert!(prompt > 0);
    assert_eq!(u["totalTokenCount"].as_u64().unwrap(), prompt + 5);
    let rec = h.audit_of(&rid).await;
    assert_eq!(rec.model.as_deref(), Some("gpt"));
    assert_eq!(rec.tokens_out, Some(5));
    assert!(!rec.tokens_estimated);
    assert!(rec.cost.unwrap() > 0.0);

    // Anthropic upstream, key in ?key=, the /v1beta path.
    let resp = h
        .http
        .post(h.url(&format!("/v1beta/models/claude:generateContent?key={key}")))
        .json(&hello())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await.unwrap();
    let seen = h.mock.last_request().unwrap();
    assert_eq!(seen.path_only(), "/v1/messages");
    assert_eq!(seen.header("x-api-key"), Some("sk-ant-secret"));
    let up = seen.json().unwrap();
    assert_eq!(up["model"], "claude-upstream");
    assert_eq!(up["system"], "be terse");
    assert_eq!(up["max_tokens"], 64);
    assert_eq!(up["stop_sequences"], json!(["END"]));
    assert_eq!(up["messages"][0]["role"], "user");
    assert_eq!(parts_text(&v), ANSWER);
    assert_eq!(v["candidates"][0]["finishReason"], "STOP");
    assert_eq!(v["usageMetadata"]["candidatesTokenCount"], 5);
    assert_key_not_forwarded(&h, &key);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_generate_content_sse_and_json_array() {
    let h = Harness::start(Backend::Sqlite, MODELS).await;
    let key = h.key().await;

    let resp = post_goog(
        &h,
        &key,
        "/v1beta/models/gpt:streamGenerateContent?alt=sse",
        &hello(),
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let rid = resp.headers()["x-request-id"].to_str().unwrap().to_string();
    let text = resp.text().await.unwrap();
    let up = h.mock.last_request().unwrap().json().unwrap();
    assert_eq!(up["stream"], true);
    assert_eq!(up["stream_options"]["include_usage"], true);
    let chunks: Vec<Value> = parse_sse(&text).iter().filter_map(|e| e.json()).collect();
    assert!(chunks.len() >= 2, "{text}");
    let all: String = chunks.iter().map(parts_text).collect();
    assert_eq!(all, ANSWER);
    let last = chunks.last().unwrap();
    assert_eq!(last["candidates"][0]["finishReason"], "STOP");
    assert_eq!(last["usageMetadata"]["candidatesTokenCount"], 5);
    assert!(chunks[0].get("usageMetadata").is_none());
    let rec = h.audit_of(&rid).await;
    assert!(rec.is_stream);
    assert_eq!(rec.tokens_out, Some(5));

    // No alt=sse: one JSON array, as Google streams it.
    let resp = post_goog(&h, &key, "/v1/models/gpt:streamGenerateContent", &hello()).await;
    assert_eq!(resp.status(), 200);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let arr: Value = resp.json().await.unwrap();
    let arr = arr.as_array().unwrap();
    let all: String = arr.iter().map(parts_text).collect();
    assert_eq!(all, ANSWER);
    let last = arr.last().unwrap();
    assert_eq!(last["candidates"][0]["finishReason"], "STOP");
    assert!(last["usageMetadata"]["totalTokenCount"].as_u64().unwrap() > 5);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn function_calling_round_trip() {
    let h = Harness::start(Backend::Sqlite, MODELS).await;
    let key = h.key().await;
    let tools = json!([{ "functionDeclarations": [{
        "name": "get_weather", "description": "weather by city",
        "parameters": { "type": "OBJECT", "properties": { "city": { "type": "STRING" } }, "required": ["city"] }
    }]}]);
    // The OpenAI upstream calls the tool.
    h.mock.enqueue(MockReply::Status {
        status: 200,
        body: json!({ "id": "chatcmpl-t", "object": "chat.completion", "created": 0, "model": "x",
            "choices": [{ "index": 0, "finish_reason": "tool_calls", "message": { "role": "assistant", "content": null,
                "tool_calls": [{ "id": "call_abc", "type": "function",
                    "function": { "name": "get_weather", "arguments": "{\"city\":\"Oslo\"}" } }] } }],
            "usage": { "prompt_tokens": 9, "completion_tokens": 4, "total_tokens": 13 } })
        .to_string(),
        headers: Vec::new(),
    });
    let body = json!({
        "contents": [{ "role": "user", "parts": [{ "text": "weather in Oslo?" }] }],
        "tools": tools,
        "toolConfig": { "functionCallingConfig": { "mode": "ANY", "allowedFunctionNames": ["get_weather"] } }
    });
    let resp = post_goog(&h, &key, "/v1beta/models/gpt:generateContent", &body).await;
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await.unwrap();
    let up = h.mock.last_request().unwrap().json().unwrap();
    assert_eq!(up["tools"][0]["type"], "function");
    assert_eq!(up["tools"][0]["function"]["name"], "get_weather");
    assert_eq!(up["tools"][0]["function"]["parameters"]["type"], "object");
    assert_eq!(up["tool_choice"]["function"]["name"], "get_weather");
    let fc = &v["candidates"][0]["content"]["parts"][0]["functionCall"];
    assert_eq!(fc["name"], "get_weather");
    assert_eq!(fc["args"], json!({"city": "Oslo"}));
    assert_eq!(v["candidates"][0]["finishReason"], "STOP");
    assert_eq!(v["usageMetadata"]["totalTokenCount"], 13);

    // The client answers the call: the result goes back as a tool message for that call.
    let body = json!({
        "contents": [
            { "role": "user", "parts": [{ "text": "weather in Oslo?" }] },
            { "role": "model", "parts": [{ "functionCall": { "id": fc["id"], "name": "get_weather", "args": { "city": "Oslo" } } }] },
            { "role": "user", "parts": [{ "functionResponse": { "name": "get_weather", "response": { "temp": 3 } } }] }
        ],
        "tools": tools
    });
    let resp = post_goog(&h, &key, "/v1beta/models/gpt:generateContent", &body).await;
    assert_eq!(resp.status(), 200);
    let up = h.mock.last_request().unwrap().json().unwrap();
    let msgs = up["messages"].as_array().unwrap();
    assert_eq!(msgs[1]["tool_calls"][0]["id"], "call_abc");
    assert_eq!(msgs[2]["role"], "tool");
    assert_eq!(msgs[2]["tool_call_id"], "call_abc");
    assert_eq!(msgs[2]["content"], r#"{"temp":3}"#);

    // A streamed call through Anthropic arrives as one whole functionCall part.
    let resp = h
        .http
        .post(h.url("/v1beta/models/claude:streamGenerateContent?alt=sse"))
        .header("x-goog-api-key", &key)
        .header("x-mock-tool", "get_weather")
        .json(&json!({ "contents": [{ "parts": [{ "text": "weather?" }] }], "tools": tools }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let text = resp.text().await.unwrap();
    let chunks: Vec<Value> = parse_sse(&text).iter().filter_map(|e| e.json()).collect();
    let call = chunks
        .iter()
        .find_map(|c| {
            c["candidates"][0]["content"]["parts"][0]
                .get("functionCall")
                .cloned()
        })
        .unwrap_or_else(|| panic!("no functionCall in {text}"));
    assert_eq!(call["name"], "get_weather");
    assert!(call["args"].is_object());
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gemini_upstream_passthrough_and_count_tokens() {
    let h = Harness::start(Backend::Sqlite, MODELS).await;
    let key = h.key().await;
    let body = hello();
    let resp = h
        .http
        .post(h.url(&format!("/v1beta/models/gem:generateContent?key={key}")))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await.unwrap();
    let seen = h.mock.last_request().unwrap();
    assert_eq!(seen.path, "/v1beta/models/gemini-upstream:generateContent");
    assert_eq!(seen.header("x-goog-api-key"), Some("goog-upstream-secret"));
    assert_eq!(seen.json().unwrap(), body, "body unchanged");
    assert_eq!(v["modelVersion"], "gemini-mock", "answer passed through");
    assert_eq!(parts_text(&v), ANSWER);
    assert_key_not_forwarded(&h, &key);

    // Stream passthrough (alt=sse) and re-framing as a JSON array.
    let resp = post_goog(
        &h,
        &key,
        "/v1/models/gem:streamGenerateContent?alt=sse",
        &body,
    )
    .await;
    assert_eq!(resp.status(), 200);
    let text = resp.text().await.unwrap();
    assert_eq!(
        h.mock.last_request().unwrap().path,
        "/v1beta/models/gemini-upstream:streamGenerateContent?alt=sse"
    );
    let chunks: Vec<Value> = parse_sse(&text).iter().filter_map(|e| e.json()).collect();
    assert_eq!(chunks.iter().map(parts_text).collect::<String>(), ANSWER);
    assert_eq!(chunks[0]["modelVersion"], "gemini-mock");
    let resp = post_goog(&h, &key, "/v1/models/gem:streamGenerateContent", &body).await;
    let arr: Value = resp.json().await.unwrap();
    let arr = arr.as_array().unwrap();
    assert_eq!(arr.iter().map(parts_text).collect::<String>(), ANSWER);
    assert_eq!(arr.last().unwrap()["candidates"][0]["finishReason"], "STOP");

    // countTokens: passed to a Gemini upstream, estimated locally otherwise.
    h.mock.enqueue(MockReply::Status {
        status: 200,
        body: json!({ "totalTokens": 4242 }).to_string(),
        headers: Vec::new(),
    });
    let resp = post_goog(&h, &key, "/v1beta/models/gem:countTokens", &body).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.json::<Value>().await.unwrap()["totalTokens"], 4242);
    assert_eq!(
        h.mock.last_request().unwrap().path,
        "/v1beta/models/gemini-upstream:countTokens"
    );
    let before = h.mock.request_count();
    let resp = post_goog(&h, &key, "/v1beta/models/gpt:countTokens", &body).await;
    assert_eq!(resp.status(), 200);
    let n = resp.json::<Value>().await.unwrap()["totalTokens"]
        .as_u64()
        .unwrap();
    assert!(n > 0 && n < 100, "{n}");
    assert_eq!(h.mock.request_count(), before, "estimated locally");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn model_list_follows_allowed_models() {
    let h = Harness::start(Backend::Sqlite, MODELS).await;
    let (_, limited) = h
        .create_key(json!({ "name": "lim", "allowed_models": ["gpt", "gem"] }))
        .await;
    let names = |v: &Value| -> Vec<String> {
        v["models"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["name"].as_str().unwrap().to_string())
            .collect()
    };
    let resp = h
        .http
        .get(h.url("/v1beta/models"))
        .header("x-goog-api-key", &limited)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(names(&v), vec!["models/gpt", "models/gem"]);
    assert_eq!(v["models"][0]["displayName"], "gpt");
    assert!(
        v["models"][0]["supportedGenerationMethods"]
            .as_array()
            .unwrap()
            .contains(&json!("generateContent"))
    );
    // /v1/models: Gemini's shape with a Google-style key, OpenAI's with a bearer one.
    let resp = h
        .http
        .get(h.url(&format!("/v1/models?key={limited}")))
        .send()
        .await
        .unwrap();
    let v: Value = resp.json().await.unwrap();
    assert_eq!(names(&v), vec!["models/gpt", "models/gem"]);
    let resp = h
        .http
        .get(h.url("/v1/models"))
        .bearer_auth(&limited)
        .send()
        .await
        .unwrap();
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["object"], "list");
    // One model, in Gemini's shape; 403 / 404 in Google's error shape.
    let get = |path: String| {
        h.http
            .get(h.url(&path))
            .header("x-goog-api-key", &limited)
            .send()
    };
    let resp = get("/v1beta/models/gem".into()).await.unwrap();
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["name"], "models/gem");
    let resp = get("/v1/models/gpt".into()).await.unwrap();
    assert_eq!(resp.json::<Value>().await.unwrap()["name"], "models/gpt");
    let resp = get("/v1beta/models/claude".into()).await.unwrap();
    assert_eq!(resp.status(), 403);
    assert_eq!(
        resp.json::<Value>().await.unwrap()["error"]["status"],
        "PERMISSION_DENIED"
    );
    let resp = get("/v1beta/models/nope".into()).await.unwrap();
    assert_eq!(resp.status(), 404);
    assert_eq!(
        resp.json::<Value>().await.unwrap()["error"]["status"],
        "NOT_FOUND"
    );
    // A model the key may not use.
    let resp = post_goog(
        &h,
        &limited,
        "/v1beta/models/claude:generateContent",
        &hello(),
    )
    .await;
    assert_eq!(resp.status(), 403);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["status"], "PERMISSION_DENIED");
    assert_eq!(v["error"]["code"], 403);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_in_google_shape() {
    let h = Harness::start(Backend::Sqlite, MODELS).await;
    let check = |v: &Value, code: u16, status: &str| {
        assert_eq!(v["error"]["code"], code, "{v}");
        assert_eq!(v["error"]["status"], status, "{v}");
        assert!(!v["error"]["message"].as_str().unwrap().is_empty());
    };
    // Bad key, by header and by query.
    let resp = post_goog(
        &h,
        "fg_nope",
        "/v1beta/models/gpt:generateContent",
        &hello(),
    )
    .await;
    assert_eq!(resp.status(), 401);
    check(&resp.json().await.unwrap(), 401, "UNAUTHENTICATED");
    let resp = h
        .http
        .get(h.url("/v1/models?key=fg_nope"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    check(&resp.json().await.unwrap(), 401, "UNAUTHENTICATED");

    // Unknown model.
    let key = h.key().await;
    let resp = post_goog(&h, &key, "/v1beta/models/nope:generateContent", &hello()).await;
    assert_eq!(resp.status(), 404);
    check(&resp.json().await.unwrap(), 404, "NOT_FOUND");

    // An upstream error is translated.
    h.mock.enqueue(MockReply::error(400));
    let resp = post_goog(
        &h,
        &key,
        "/v1beta/models/gpt:streamGenerateContent?alt=sse",
        &hello(),
    )
    .await;
    assert_eq!(resp.status(), 400);
    check(&resp.json().await.unwrap(), 400, "INVALID_ARGUMENT");

    // A key limit: 429 with Retry-After, in Google's shape.
    let (_, rpm1) = h
        .create_key(json!({ "name": "rpm1", "limits": { "requests_per_minute": 1 } }))
        .await;
    let resp = post_goog(&h, &rpm1, "/v1beta/models/gpt:generateContent", &hello()).await;
    assert_eq!(resp.status(), 200);
    let before = h.mock.request_count();
    let resp = post_goog(&h, &rpm1, "/v1beta/models/gpt:generateContent", &hello()).await;
    assert_eq!(resp.status(), 429);
    let retry: u64 = resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry >= 1);
    check(&resp.json().await.unwrap(), 429, "RESOURCE_EXHAUSTED");
    assert_eq!(
        h.mock.request_count(),
        before,
        "refused before the upstream"
    );

    // A body that is not a GenerateContentRequest.
    let resp = post_goog(
        &h,
        &key,
        "/v1beta/models/gpt:generateContent",
        &json!({"x": 1}),
    )
    .await;
    let status = resp.status();
    let v: Value = resp.json().await.unwrap();
    assert_eq!(status, 400, "{v}");
    check(&v, 400, "INVALID_ARGUMENT");

    // Last: an upstream 429 also cools the credential down for later requests.
    h.mock.enqueue(MockReply::error(429));
    let resp = post_goog(&h, &key, "/v1beta/models/gpt:generateContent", &hello()).await;
    assert_eq!(resp.status(), 429);
    check(&resp.json().await.unwrap(), 429, "RESOURCE_EXHAUSTED");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embeddings_through_openai_and_gemini() {
    let h = Harness::start(Backend::Sqlite, MODELS).await;
    let key = h.key().await;

    // batchEmbedContents (what google-genai's embed_content calls) to an OpenAI upstream.
    let batch = json!({ "requests": [
        { "model": "models/gpt", "content": { "parts": [{ "text": "first text" }] }, "outputDimensionality": 8 },
        { "model": "models/gpt", "content": { "parts": [{ "text": "second" }, { "text": "text" }] }, "outputDimensionality": 8 }
    ]});
    let resp = post_goog(&h, &key, "/v1beta/models/gpt:batchEmbedContents", &batch).await;
    assert_eq!(resp.status(), 200);
    let rid = resp.headers()["x-request-id"].to_str().unwrap().to_string();
    let v: Value = resp.json().await.unwrap();
    let seen = h.mock.last_request().unwrap();
    assert_eq!(seen.path_only(), "/v1/embeddings");
    assert_eq!(
        seen.header("authorization"),
        Some("Bearer sk-openai-secret")
    );
    let up = seen.json().unwrap();
    assert_eq!(up["model"], "gpt-4o-upstream");
    assert_eq!(up["input"], json!(["first text", "second\ntext"]));
    assert_eq!(up["dimensions"], 8);
    let embeddings = v["embeddings"].as_array().unwrap();
    assert_eq!(embeddings.len(), 2, "{v}");
    assert_eq!(embeddings[0]["values"].as_array().unwrap().len(), 8);
    assert_ne!(embeddings[0]["values"], embeddings[1]["values"]);
    let rec = h.audit_of(&rid).await;
    assert_eq!(rec.model.as_deref(), Some("gpt"));
    assert!(rec.tokens_in.unwrap() > 0);

    // embedContent, one text.
    let one = json!({ "content": { "parts": [{ "text": "just one" }] } });
    let v: Value = post_goog(&h, &key, "/v1/models/gpt:embedContent", &one)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["embedding"]["values"].as_array().unwrap().len(), 8, "{v}");

    // A Gemini upstream gets the request as sent, its models renamed.
    h.mock.enqueue(MockReply::Status {
        status: 200,
        body: json!({ "embeddings": [{ "values": [0.1, 0.2] }, { "values": [0.3, 0.4] }] })
            .to_string(),
        headers: Vec::new(),
    });
    let mut batch = batch;
    batch["requests"][0]["model"] = json!("models/gem");
    batch["requests"][1]["model"] = json!("models/gem");
    let resp = post_goog(&h, &key, "/v1beta/models/gem:batchEmbedContents", &batch).await;
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["embeddings"][1]["values"], json!([0.3, 0.4]));
    let seen = h.mock.last_request().unwrap();
    assert_eq!(
        seen.path_only(),
        "/v1beta/models/gemini-upstream:batchEmbedContents"
    );
    let up = seen.json().unwrap();
    assert_eq!(up["requests"][0]["model"], "models/gemini-upstream");
    assert_eq!(up["requests"][1]["content"]["parts"][1]["text"], "text");

    // Anthropic has no embeddings: 400 in Google's shape, nothing sent.
    let before = h.mock.request_count();
    let resp = post_goog(&h, &key, "/v1beta/models/claude:embedContent", &one).await;
    assert_eq!(resp.status(), 400);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["status"], "INVALID_ARGUMENT");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("embedContent"),
        "{v}"
    );
    assert_eq!(h.mock.request_count(), before);

    // An image cannot be embedded by an OpenAI-compatible upstream: named.
    let img = json!({ "content": { "parts": [{ "inlineData": { "mimeType": "image/png", "data": "AAAA" } }] } });
    let resp = post_goog(&h, &key, "/v1beta/models/gpt:embedContent", &img).await;
    assert_eq!(resp.status(), 400);
    let v: Value = resp.json().await.unwrap();
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("content.parts[0]"),
        "{v}"
    );
    h.stop().await;
}
