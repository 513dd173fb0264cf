//! Anthropic clients with a Gemini upstream: requests, responses, streams and errors,
//! translated through the OpenAI representation.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests and their helpers fail the test on error"
)]

mod common;

use common::{datas, events, fixture, json, opts, run, run_split};
use fastgate_llm::{
    Protocol, RequestOptions, stream_processor, translate_error, translate_request,
    translate_response,
};
use serde_json::{Value, json};

const OPTS: RequestOptions = RequestOptions {
    upstream_model: "gemini-2.5-flash",
    default_max_tokens: 4096,
    force_openai_stream_usage: true,
};

fn to_gemini(body: &Value) -> (Value, fastgate_llm::TranslatedRequest) {
    let bytes = serde_json::to_vec(body).unwrap();
    let tr = translate_request(Protocol::Anthropic, Protocol::Gemini, &bytes, &OPTS).unwrap();
    (serde_json::from_slice(&tr.body).unwrap(), tr)
}

#[test]
fn request_system_text_images_and_config() {
    let (v, tr) = to_gemini(&json("anthropic/request_basic.json"));
    assert_eq!(tr.path, "/v1beta/models/gemini-2.5-flash:generateContent");
    assert!(!tr.stream);
    assert_eq!(
        v["systemInstruction"],
        json!({"parts": [{"text": "You are a helpful geologist.\nKeep answers short."}]})
    );
    let contents = v["contents"].as_array().unwrap();
    assert_eq!(contents.len(), 3);
    assert_eq!(
        contents[0],
        json!({"role": "user", "parts": [{"text": "Why is the sky blue?"}]})
    );
    // The thinking block is dropped (it has no meaning for Gemini), the text kept.
    assert_eq!(
        contents[1],
        json!({"role": "model", "parts": [{"text": "Rayleigh scattering."}]})
    );
    assert_eq!(
        contents[2]["parts"],
        json!([
            {"text": "And what is this rock?"},
            {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}},
            {"fileData": {"mimeType": "image/jpeg", "fileUri": "https://example.com/rock.jpg"}}
        ])
    );
    let g = &v["generationConfig"];
    assert_eq!(g["maxOutputTokens"], 1024);
    assert_eq!(g["temperature"], 0.5);
    assert_eq!(g["stopSequences"], json!(["\n\nHuman:"]));
    assert!(v.get("model").is_none(), "the model is in the path");
}

#[test]
fn request_tool_use_and_tool_result_round_trip() {
    let (v, tr) = to_gemini(&json("anthropic/request_tools.json"));
    assert!(tr.stream);
    assert_eq!(
        tr.path,
        "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
    );
    let contents = v["contents"].as_array().unwrap();
    assert_eq!(contents.len(), 3);
    assert_eq!(contents[1]["role"], "model");
    assert_eq!(
        contents[1]["parts"],
        json!([
            {"text": "Let me check."},
            {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}},
            {"functionCall": {"name": "get_weather", "args": {"city": "Oslo"}}}
        ])
    );
    // Tool results answer the calls by name, in order, before the user's text.
    assert_eq!(contents[2]["role"], "user");
    assert_eq!(
        contents[2]["parts"],
        json!([
            {"functionResponse": {"name": "get_weather", "response": {"content": "18C and sunny"}}},
            {"functionResponse": {"name": "get_weather", "response": {"content": "9C, rain"}}},
            {"text": "Which is warmer?"}
        ])
    );
    let decl = &v["tools"][0]["functionDeclarations"][0];
    assert_eq!(decl["name"], "get_weather");
    assert_eq!(decl["description"], "Current weather for a city");
    assert_eq!(decl["parameters"]["required"], json!(["city"]));
    // tool_choice any -> ANY.
    assert_eq!(
        v["toolConfig"],
        json!({"functionCallingConfig": {"mode": "ANY"}})
    );
    assert_eq!(v["generationConfig"]["maxOutputTokens"], 700);
}

#[test]
fn request_named_and_none_tool_choice() {
    let mut body = json!({
        "model": "claude-sonnet-4-5", "max_tokens": 300,
        "tools": [
            {"name": "get_weather", "input_schema": {
                "$schema": "http://json-schema.org/draft-07/schema#", "type": "object",
                "additionalProperties": false, "properties": {"city": {"type": "string"}}}},
            {"name": "get_time", "input_schema": {"type": "object", "properties": {}}}
        ],
        "tool_choice": {"type": "tool", "name": "get_time"},
        "messages": [{"role": "user", "content": "What time is it in Oslo?"}]
    });
    let (v, _) = to_gemini(&body);
    assert_eq!(
        v["toolConfig"],
        json!({"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["get_time"]}})
    );
    let params = &v["tools"][0]["functionDeclarations"][0]["parameters"];
    assert!(params.get("$schema").is_none() && params.get("additionalProperties").is_none());
    body["tool_choice"] = json!({"type": "none"});
    let (v, _) = to_gemini(&body);
    assert_eq!(v["toolConfig"]["functionCallingConfig"]["mode"], "NONE");
    body["tool_choice"] = json!({"type": "auto"});
    let (v, _) = to_gemini(&body);
    assert_eq!(v["toolConfig"]["functionCallingConfig"]["mode"], "AUTO");
}

fn response(fixture_name: &str) -> (Value, Option<fastgate_llm::Usage>) {
    let body = fixture(fixture_name);
    let (out, usage) =
        translate_response(Protocol::Gemini, Protocol::Anthropic, &body, "claude-x").unwrap();
    (serde_json::from_slice(&out).unwrap(), usage)
}

#[test]
fn response_text_and_usage() {
    let (v, usage) = response("gemini/response_text.json");
    assert_eq!(v["type"], "message");
    assert_eq!(v["role"], "assistant");
    assert_eq!(v["model"], "claude-x");
    // The thought summary is not turned into a thinking block (no Anthropic signature).
    assert_eq!(
        v["content"],
        json!([{"type": "text", "text": "Two is prime."}])
    );
    assert_eq!(v["stop_reason"], "end_turn");
    // promptTokenCount 50 includes 32 cached; output = candidates 4 + thoughts 16.
    assert_eq!(v["usage"]["input_tokens"], 18);
    assert_eq!(v["usage"]["cache_read_input_tokens"], 32);
    assert_eq!(v["usage"]["output_tokens"], 20);
    let u = usage.unwrap();
    assert_eq!((u.input_tokens, u.output_tokens), (50, 20));
    assert_eq!(u.cached_input_tokens, 32);
}

#[test]
fn response_tool_calls() {
    let (v, usage) = response("gemini/response_function_call.json");
    assert_eq!(v["stop_reason"], "tool_use");
    let content = v["content"].as_array().unwrap();
    assert_eq!(content.len(), 2);
    for (block, city) in content.iter().zip(["Paris", "Oslo"]) {
        assert_eq!(block["type"], "tool_use");
        assert_eq!(block["name"], "get_weather");
        assert_eq!(block["input"], json!({"city": city}));
        assert!(!block["id"].as_str().unwrap().is_empty());
    }
    assert_ne!(content[0]["id"], content[1]["id"]);
    assert_eq!(v["usage"]["input_tokens"], 70);
    assert_eq!(v["usage"]["output_tokens"], 20);
    assert_eq!(usage.unwrap().input_tokens, 70);
}

#[test]
fn response_stop_reasons() {
    let (v, _) = response("gemini/response_max_tokens.json");
    assert_eq!(v["stop_reason"], "max_tokens");
    assert_eq!(v["content"][0]["text"], "Granite is an igneous rock formed");
    let (v, _) = response("gemini/response_safety.json");
    assert_eq!(v["stop_reason"], "refusal");
    assert_eq!(v["content"], json!([]));
}

/// The Anthropic event names in order, and their data.
fn anthropic_events(out: &[u8]) -> (Vec<String>, Vec<Value>) {
    let names = events(out)
        .into_iter()
        .map(|e| e.event.unwrap_or_default())
        .collect();
    (names, datas(out))
}

#[test]
fn stream_thought_text_tool_call_and_usage() {
    let input = fixture("gemini/stream_thought_text_tool.sse");
    let (out, p) = run(
        Protocol::Gemini,
        Protocol::Anthropic,
        opts("claude-x"),
        &input,
    );
    let (names, data) = anthropic_events(&out);
    assert_eq!(
        names,
        [
            "message_start",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "content_block_start",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop",
        ]
    );
    assert_eq!(data[0]["message"]["id"], "resp-s9");
    assert_eq!(data[0]["message"]["model"], "claude-x");
    assert_eq!(
        data[1]["content_block"],
        json!({"type": "text", "text": ""})
    );
    assert_eq!(
        data[2]["delta"],
        json!({"type": "text_delta", "text": "Checking "})
    );
    assert_eq!(data[3]["delta"]["text"], "Paris.");
    assert_eq!(data[4]["index"], 0);
    assert_eq!(
        data[5]["content_block"],
        json!({"type": "tool_use", "id": "fc-7", "name": "get_weather", "input": {}})
    );
    assert_eq!(data[5]["index"], 1);
    let args: Value =
        serde_json::from_str(data[6]["delta"]["partial_json"].as_str().unwrap()).unwrap();
    assert_eq!(args, json!({"city": "Paris", "unit": "celsius"}));
    assert_eq!(data[7]["index"], 1);
    assert_eq!(data[8]["delta"]["stop_reason"], "tool_use");
    // Final usage: 31 prompt (8 cached), 19 + 12 thought tokens out.
    assert_eq!(data[8]["usage"]["input_tokens"], 23);
    assert_eq!(data[8]["usage"]["cache_read_input_tokens"], 8);
    assert_eq!(data[8]["usage"]["output_tokens"], 31);
    let u = p.usage().unwrap();
    assert_eq!(
        (u.input_tokens, u.output_tokens, u.cached_input_tokens),
        (31, 31, 8)
    );
    assert!(!u.estimated);
    let merged = p.merged().unwrap();
    let blocks = merged["content"].as_array().unwrap();
    let text = blocks.iter().find(|b| b["type"] == "text").unwrap();
    assert_eq!(text["text"], "Checking Paris.");
    let tool = blocks.iter().find(|b| b["type"] == "tool_use").unwrap();
    assert_eq!(tool["input"], json!({"city": "Paris", "unit": "celsius"}));
}

#[test]
fn stream_is_the_same_however_split() {
    let input = fixture("gemini/stream_text.sse");
    let (whole, _) = run(Protocol::Gemini, Protocol::Anthropic, opts("c"), &input);
    let (names, data) = anthropic_events(&whole);
    assert_eq!(names.first().unwrap(), "message_start");
    assert_eq!(names.last().unwrap(), "message_stop");
    let text: String = data
        .iter()
        .filter_map(|d| d["delta"]["text"].as_str())
        .collect();
    assert_eq!(text, "The quick brown fox jumps.");
    assert_eq!(data[data.len() - 2]["delta"]["stop_reason"], "end_turn");
    for cuts in [vec![1usize, 2, 3, 100], vec![40, 41, 300, 301]] {
        let mut p = stream_processor(Protocol::Gemini, Protocol::Anthropic, opts("c"));
        let out = run_split(p.as_mut(), &input, &cuts);
        assert_eq!(datas(&out), data);
    }
}

#[test]
fn stream_cut_before_finish_ends_with_an_error_event() {
    let input = fixture("gemini/stream_text.sse");
    // The fixture's events end with CRLF CRLF; keep the first two (no finishReason).
    let text = String::from_utf8(input).unwrap();
    let end = text
        .find(" jumps.")
        .and_then(|i| text[..i].rfind("data:"))
        .unwrap();
    let (out, p) = run(
        Protocol::Gemini,
        Protocol::Anthropic,
        opts("c"),
        &text.as_bytes()[..end],
    );
    let (names, data) = anthropic_events(&out);
    assert_eq!(names.last().unwrap(), "error");
    assert_eq!(data[2]["delta"]["text"], "The quick");
    assert!(!names.contains(&"message_stop".to_string()));
    assert!(p.final_usage(9).estimated);
}

#[test]
fn errors_are_anthropic_shaped() {
    let out = translate_error(
        Protocol::Gemini,
        Protocol::Anthropic,
        400,
        &fixture("gemini/error_invalid.json"),
    );
    let v: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(
        v,
        json!({"type": "error", "error": {"type": "invalid_request_error",
            "message": "API key not valid. Please pass a valid API key."}})
    );
    let out = translate_error(
        Protocol::Gemini,
        Protocol::Anthropic,
        429,
        &fixture("gemini/error_rate_limit.json"),
    );
    let v: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["error"]["type"], "rate_limit_error");
    // A mid-stream Gemini error becomes an Anthropic `error` event.
    let input = b"data: {\"error\": {\"code\": 503, \"message\": \"overloaded\", \"status\": \"UNAVAILABLE\"}}\n\n";
    let (out, _) = run(Protocol::Gemini, Protocol::Anthropic, opts("c"), input);
    let ev = events(&out);
    assert_eq!(ev.last().unwrap().event.as_deref(), Some("error"));
    let data = datas(&out);
    assert_eq!(data.last().unwrap()["error"]["type"], "overloaded_error");
}
