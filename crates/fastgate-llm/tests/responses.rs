//! Non-stream responses, errors, usage, cost, model list.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests and their helpers fail the test on error"
)]

mod common;

use common::{fixture, json};
use fastgate_llm::{
    Price, Protocol, Usage, cost, estimate_request_tokens, estimate_text_tokens, openai_model_list,
    translate_error, translate_response, usage_from_response,
};
use serde_json::{Value, json};

fn response(up: Protocol, client: Protocol, path: &str) -> (Value, Option<Usage>) {
    let (body, usage) = translate_response(up, client, &fixture(path), "public-model").unwrap();
    (serde_json::from_slice(&body).unwrap(), usage)
}

#[test]
fn anthropic_response_to_openai() {
    let (v, usage) = response(
        Protocol::Anthropic,
        Protocol::OpenAi,
        "anthropic/response_text.json",
    );
    assert_eq!(v["object"], "chat.completion");
    assert_eq!(v["model"], "public-model");
    let m = &v["choices"][0]["message"];
    assert_eq!(m["role"], "assistant");
    assert_eq!(m["content"], "Two is the only even prime.");
    assert_eq!(
        m["reasoning_content"], "The user wants a prime.",
        "thinking exposed as reasoning_content"
    );
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    // Anthropic input 20 + cache read 2000 + cache write 100 = 2120 prompt tokens for OpenAI.
    assert_eq!(
        v["usage"],
        json!({"prompt_tokens":2120,"completion_tokens":15,"total_tokens":2135,"prompt_tokens_details":{"cached_tokens":2000}})
    );
    let u = usage.unwrap();
    assert_eq!(
        (
            u.input_tokens,
            u.cached_input_tokens,
            u.cache_creation_tokens,
            u.output_tokens
        ),
        (2120, 2000, 100, 15)
    );
    assert!(!u.estimated);
}

#[test]
fn anthropic_tool_use_response_to_openai() {
    let (v, _) = response(
        Protocol::Anthropic,
        Protocol::OpenAi,
        "anthropic/response_tool_use.json",
    );
    let m = &v["choices"][0]["message"];
    assert_eq!(m["content"], "I'll look that up.");
    assert_eq!(m["tool_calls"][0]["id"], "toolu_01A");
    assert_eq!(m["tool_calls"][0]["type"], "function");
    assert_eq!(m["tool_calls"][0]["function"]["name"], "get_weather");
    let args: Value = serde_json::from_str(
        m["tool_calls"][0]["function"]["arguments"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(args, json!({"city":"San Francisco","unit":"celsius"}));
    assert_eq!(v["choices"][0]["finish_reason"], "tool_calls");
}

#[test]
fn openai_response_to_anthropic() {
    let (v, usage) = response(
        Protocol::OpenAi,
        Protocol::Anthropic,
        "openai/response_text.json",
    );
    assert_eq!(v["type"], "message");
    assert_eq!(v["role"], "assistant");
    assert_eq!(v["model"], "public-model");
    assert_eq!(
        v["content"],
        json!([{"type":"text","text":"Two and three are both prime."}])
    );
    assert_eq!(v["stop_reason"], "end_turn");
    // OpenAI 1200 prompt incl. 1024 cached -> Anthropic input 176 + cache read 1024.
    assert_eq!(
        v["usage"],
        json!({"input_tokens":176,"output_tokens":9,"cache_creation_input_tokens":0,"cache_read_input_tokens":1024})
    );
    let u = usage.unwrap();
    assert_eq!(
        (u.input_tokens, u.cached_input_tokens, u.output_tokens),
        (1200, 1024, 9)
    );

    let (v, _) = response(
        Protocol::OpenAi,
        Protocol::Anthropic,
        "openai/response_tool_calls.json",
    );
    assert_eq!(v["stop_reason"], "tool_use");
    assert_eq!(
        v["content"],
        json!([
            {"type":"tool_use","id":"call_x","name":"get_weather","input":{"city":"Paris"}},
            {"type":"tool_use","id":"call_y","name":"get_weather","input":{"city":"Oslo"}}
        ])
    );
}

#[test]
fn gemini_responses_to_openai() {
    let (v, usage) = response(
        Protocol::Gemini,
        Protocol::OpenAi,
        "gemini/response_text.json",
    );
    let m = &v["choices"][0]["message"];
    assert_eq!(m["content"], "Two is prime.");
    assert_eq!(m["reasoning_content"], "Considering primes...");
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    let u = usage.unwrap();
    // thoughts (16) are output; cached (32) is inside the prompt count.
    assert_eq!(
        (u.input_tokens, u.output_tokens, u.cached_input_tokens),
        (50, 20, 32)
    );
    assert_eq!(v["usage"]["prompt_tokens_details"]["cached_tokens"], 32);

    let (v, _) = response(
        Protocol::Gemini,
        Protocol::OpenAi,
        "gemini/response_function_call.json",
    );
    assert_eq!(v["choices"][0]["finish_reason"], "tool_calls");
    let calls = v["choices"][0]["message"]["tool_calls"].as_array().unwrap();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[1]["function"]["arguments"], "{\"city\":\"Oslo\"}");
    assert!(v["choices"][0]["message"]["content"].is_null());
}

#[test]
fn same_protocol_response_echoes_client_model() {
    let (v, usage) = response(
        Protocol::OpenAi,
        Protocol::OpenAi,
        "openai/response_text.json",
    );
    let mut expected = json("openai/response_text.json");
    expected["model"] = "public-model".into();
    assert_eq!(v, expected);
    assert_eq!(usage.unwrap().input_tokens, 1200);
    let raw = b"not json at all";
    let (b, u) = translate_response(Protocol::Anthropic, Protocol::Anthropic, raw, "m").unwrap();
    assert_eq!(b, raw.to_vec());
    assert!(u.is_none());
    assert!(translate_response(Protocol::Anthropic, Protocol::OpenAi, raw, "m").is_err());
}

#[test]
fn errors_map_between_protocols() {
    let out = translate_error(
        Protocol::Anthropic,
        Protocol::OpenAi,
        529,
        &fixture("anthropic/error_overloaded.json"),
    );
    let v: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(
        v,
        json!({"error":{"message":"Overloaded","type":"server_error","param":null,"code":"overloaded"}})
    );

    let out = translate_error(
        Protocol::Anthropic,
        Protocol::OpenAi,
        400,
        &fixture("anthropic/error_invalid.json"),
    );
    let v: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["error"]["type"], "invalid_request_error");
    assert_eq!(v["error"]["message"], "max_tokens: Field required");

    let out = translate_error(
        Protocol::OpenAi,
        Protocol::Anthropic,
        429,
        &fixture("openai/error_rate_limit.json"),
    );
    let v: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(
        v,
        json!({"type":"error","error":{"type":"rate_limit_error","message":"Rate limit reached for requests"}})
    );

    let out = translate_error(
        Protocol::OpenAi,
        Protocol::Anthropic,
        401,
        &fixture("openai/error_invalid_key.json"),
    );
    let v: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["error"]["type"], "authentication_error");

    let out = translate_error(
        Protocol::Gemini,
        Protocol::OpenAi,
        400,
        &fixture("gemini/error_invalid.json"),
    );
    let v: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["error"]["type"], "invalid_request_error");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("API key not valid")
    );

    // Same protocol: unchanged. Unparsable: status decides, body becomes the message.
    let body = fixture("anthropic/error_overloaded.json");
    assert_eq!(
        translate_error(Protocol::Anthropic, Protocol::Anthropic, 529, &body),
        body
    );
    let out = translate_error(
        Protocol::OpenAi,
        Protocol::OpenAi,
        502,
        b"<html>Bad gateway</html>",
    );
    let v: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["error"]["message"], "<html>Bad gateway</html>");
    assert_eq!(v["error"]["type"], "server_error");
    let out = translate_error(Protocol::OpenAi, Protocol::Anthropic, 404, b"");
    let v: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["error"]["type"], "not_found_error");
    assert_eq!(v["error"]["message"], "upstream returned status 404");
}

#[test]
fn usage_semantics_per_protocol() {
    let oa = usage_from_response(Protocol::OpenAi, &fixture("openai/response_text.json")).unwrap();
    assert_eq!(oa.uncached_input_tokens(), 176);
    let an = usage_from_response(
        Protocol::Anthropic,
        &fixture("anthropic/response_text.json"),
    )
    .unwrap();
    assert_eq!(an.uncached_input_tokens(), 20);
    let gm = usage_from_response(Protocol::Gemini, &fixture("gemini/response_text.json")).unwrap();
    assert_eq!(gm.uncached_input_tokens(), 18);
    assert!(usage_from_response(Protocol::OpenAi, b"{}").is_none());
    assert!(usage_from_response(Protocol::OpenAi, b"garbage").is_none());
}

#[test]
fn cost_uses_tiers() {
    let u = Usage {
        input_tokens: 2_000_000,
        output_tokens: 1_000_000,
        cached_input_tokens: 500_000,
        cache_creation_tokens: 500_000,
        estimated: false,
    };
    let p = Price {
        input: 3.0,
        output: 15.0,
        cached_input: Some(0.3),
        cache_write: Some(3.75),
    };
    let c = cost(&u, &p);
    assert!((c - (3.0 + 0.15 + 1.875 + 15.0)).abs() < 1e-9, "{c}");
    let flat = Price {
        input: 1.0,
        output: 2.0,
        cached_input: None,
        cache_write: None,
    };
    assert!((cost(&u, &flat) - 4.0).abs() < 1e-9);
    let p: Price = serde_json::from_value(json!({"input": 1.0, "output": 2.0})).unwrap();
    assert_eq!(p, flat);
}

#[test]
fn estimates_are_plausible() {
    assert_eq!(estimate_text_tokens(""), 0);
    let n = estimate_text_tokens("Hello, world! This is a short sentence.");
    assert!((5..=15).contains(&n), "{n}");
    let req = fixture("openai/request_tools.json");
    let n = estimate_request_tokens(Protocol::OpenAi, &req);
    assert!(n > 2 * 768 && n < 2 * 768 + 400, "{n}");
    let n = estimate_request_tokens(
        Protocol::Anthropic,
        &fixture("anthropic/request_tools.json"),
    );
    assert!(n > 30 && n < 400, "{n}");
    assert_eq!(estimate_request_tokens(Protocol::Gemini, b"not json"), 2);
    // Long texts stay fast and monotone.
    let long = "word ".repeat(200_000);
    let n = estimate_text_tokens(&long);
    assert!(n > 150_000 && n < 300_000, "{n}");
}

#[test]
fn model_list_shape() {
    let v = openai_model_list(&[("gpt-4o", "openai"), ("claude", "anthropic")], 1700000000);
    assert_eq!(
        v,
        json!({"object":"list","data":[
            {"id":"gpt-4o","object":"model","created":1700000000,"owned_by":"openai"},
            {"id":"claude","object":"model","created":1700000000,"owned_by":"anthropic"}
        ]})
    );
}

#[test]
fn protocol_serde_names() {
    assert_eq!(serde_json::to_value(Protocol::OpenAi).unwrap(), "openai");
    assert_eq!(
        serde_json::from_value::<Protocol>(json!("anthropic")).unwrap(),
        Protocol::Anthropic
    );
    assert_eq!(
        serde_json::from_value::<Protocol>(json!("gemini")).unwrap(),
        Protocol::Gemini
    );
}
