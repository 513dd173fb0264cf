//! OpenAI Responses API clients: non-stream responses from OpenAI chat, Anthropic and
//! Gemini upstreams, a native Responses body's usage, request estimates. (Requests:
//! `responses_api.rs`.)
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests and their helpers fail the test on error"
)]

mod common;

use common::fixture;
use fastgate_llm::{
    Protocol, Usage, estimate_request_tokens, translate_response, usage_from_response,
};
use serde_json::{Value, json};

fn response(up: Protocol, path: &str) -> (Value, Option<Usage>) {
    let (body, usage) =
        translate_response(up, Protocol::Responses, &fixture(path), "public-model").unwrap();
    (serde_json::from_slice(&body).unwrap(), usage)
}

fn assert_response_shape(v: &Value) {
    for (key, expected) in [
        ("object", json!("response")),
        ("model", json!("public-model")),
        ("error", Value::Null),
        ("store", json!(false)),
        ("previous_response_id", Value::Null),
        ("tools", json!([])),
        ("metadata", json!({})),
    ] {
        assert_eq!(v[key], expected, "{key}");
    }
    assert!(v["id"].as_str().unwrap().starts_with("resp_"));
    assert!(v["created_at"].as_i64().unwrap() > 0);
}

#[test]
fn openai_text_response() {
    let (v, usage) = response(Protocol::OpenAi, "openai/response_text.json");
    assert_response_shape(&v);
    assert_eq!(v["id"], "resp_9xYz");
    assert_eq!(v["created_at"], 1730000000);
    assert_eq!(v["status"], "completed");
    assert!(v["incomplete_details"].is_null());
    let out = v["output"].as_array().unwrap();
    assert_eq!(out.len(), 1);
    assert_eq!(
        out[0],
        json!({"type": "message", "id": "msg_9xYz_0", "status": "completed", "role": "assistant",
               "content": [{"type": "output_text", "text": "Two and three are both prime.",
                            "annotations": [], "logprobs": []}]})
    );
    assert_eq!(
        v["usage"],
        json!({"input_tokens": 1200, "input_tokens_details": {"cached_tokens": 1024},
               "output_tokens": 9, "output_tokens_details": {"reasoning_tokens": 0},
               "total_tokens": 1209})
    );
    let u = usage.unwrap();
    assert_eq!(
        (u.input_tokens, u.cached_input_tokens, u.output_tokens),
        (1200, 1024, 9)
    );
}

#[test]
fn openai_tool_calls_response() {
    let (v, usage) = response(Protocol::OpenAi, "openai/response_tool_calls.json");
    assert_response_shape(&v);
    assert_eq!(v["status"], "completed");
    let out = v["output"].as_array().unwrap();
    assert_eq!(out.len(), 2, "no empty message item");
    assert_eq!(
        out[0],
        json!({"type": "function_call", "id": "fc_tool1_0", "call_id": "call_x",
               "name": "get_weather", "arguments": "{\"city\":\"Paris\"}", "status": "completed"})
    );
    assert_eq!(out[1]["call_id"], "call_y");
    assert_eq!(out[1]["id"], "fc_tool1_1");
    assert_eq!(v["usage"]["total_tokens"], 120);
    assert_eq!(usage.unwrap().output_tokens, 40);
}

#[test]
fn openai_refusal_and_length_responses() {
    let (v, _) = response(Protocol::OpenAi, "responses/chat_refusal.json");
    assert_eq!(v["status"], "incomplete");
    assert_eq!(v["incomplete_details"], json!({"reason": "content_filter"}));
    assert_eq!(
        v["output"][0]["content"],
        json!([{"type": "refusal", "refusal": "I'm sorry, I can't help with that."}])
    );

    let (v, usage) = response(Protocol::OpenAi, "responses/chat_length_reasoning.json");
    assert_eq!(v["status"], "incomplete");
    assert_eq!(
        v["incomplete_details"],
        json!({"reason": "max_output_tokens"})
    );
    let out = v["output"].as_array().unwrap();
    assert_eq!(
        out[0],
        json!({"type": "reasoning", "id": "rs_LeNgth_0",
               "summary": [{"type": "summary_text", "text": "The user asks about granite formation."}]})
    );
    assert_eq!(out[1]["type"], "message");
    assert_eq!(out[1]["id"], "msg_LeNgth_1");
    assert_eq!(out[1]["content"][0]["text"], "Granite forms when magma");
    assert_eq!(v["usage"]["input_tokens_details"]["cached_tokens"], 8);
    assert_eq!(usage.unwrap().cached_input_tokens, 8);
}

#[test]
fn anthropic_responses() {
    let (v, usage) = response(Protocol::Anthropic, "anthropic/response_tool_use.json");
    assert_response_shape(&v);
    assert_eq!(v["status"], "completed");
    let out = v["output"].as_array().unwrap();
    assert_eq!(out.len(), 2);
    assert_eq!(out[0]["content"][0]["text"], "I'll look that up.");
    assert_eq!(out[1]["type"], "function_call");
    assert_eq!(out[1]["call_id"], "toolu_01A");
    assert_eq!(out[1]["name"], "get_weather");
    let args: Value = serde_json::from_str(out[1]["arguments"].as_str().unwrap()).unwrap();
    assert_eq!(args, json!({"city": "San Francisco", "unit": "celsius"}));
    assert_eq!(v["usage"]["input_tokens"], 400);
    assert_eq!(usage.unwrap().output_tokens, 60);

    let (v, _) = response(Protocol::Anthropic, "anthropic/response_text.json");
    let out = v["output"].as_array().unwrap();
    assert_eq!(out[0]["type"], "reasoning");
    assert_eq!(out[0]["summary"][0]["text"], "The user wants a prime.");
    assert_eq!(out[1]["content"][0]["text"], "Two is the only even prime.");
    // Anthropic input 20 + cache read 2000 + cache write 100.
    assert_eq!(v["usage"]["input_tokens"], 2120);
    assert_eq!(v["usage"]["input_tokens_details"]["cached_tokens"], 2000);
    assert_eq!(v["usage"]["total_tokens"], 2135);
}

#[test]
fn gemini_responses() {
    let (v, usage) = response(Protocol::Gemini, "gemini/response_function_call.json");
    assert_response_shape(&v);
    assert_eq!(v["status"], "completed");
    let out = v["output"].as_array().unwrap();
    assert_eq!(out.len(), 2);
    assert_eq!(out[0]["type"], "function_call");
    assert_eq!(out[0]["name"], "get_weather");
    assert_eq!(out[0]["arguments"], "{\"city\":\"Paris\"}");
    assert_ne!(out[0]["call_id"], out[1]["call_id"]);
    assert_eq!(v["usage"]["input_tokens"], 70);
    assert_eq!(usage.unwrap().output_tokens, 20);

    let (v, _) = response(Protocol::Gemini, "gemini/response_max_tokens.json");
    assert_eq!(v["status"], "incomplete");
    assert_eq!(v["incomplete_details"]["reason"], "max_output_tokens");
    assert_eq!(
        v["output"][0]["content"][0]["text"],
        "Granite is an igneous rock formed"
    );

    let (v, _) = response(Protocol::Gemini, "gemini/response_text.json");
    let out = v["output"].as_array().unwrap();
    assert_eq!(out[0]["type"], "reasoning");
    assert_eq!(out[0]["summary"][0]["text"], "Considering primes...");
    assert_eq!(out[1]["content"][0]["text"], "Two is prime.");
    // Thoughts are billed as output.
    assert_eq!(v["usage"]["output_tokens"], 20);

    let (v, _) = response(Protocol::Gemini, "gemini/response_safety.json");
    assert_eq!(v["status"], "incomplete");
    assert_eq!(v["incomplete_details"]["reason"], "content_filter");
}

#[test]
fn native_responses_usage() {
    let u = usage_from_response(
        Protocol::Responses,
        &fixture("responses/response_native.json"),
    )
    .unwrap();
    assert_eq!(
        u,
        Usage {
            input_tokens: 2036,
            output_tokens: 148,
            cached_input_tokens: 1920,
            cache_creation_tokens: 0,
            estimated: false,
        }
    );
    assert_eq!(u.uncached_input_tokens(), 116);
    assert_eq!(
        usage_from_response(Protocol::Responses, br#"{"usage": null}"#),
        None
    );
    assert_eq!(usage_from_response(Protocol::Responses, b"not json"), None);
    let capped = usage_from_response(
        Protocol::Responses,
        br#"{"usage":{"input_tokens":5,"output_tokens":1,"input_tokens_details":{"cached_tokens":9}}}"#,
    )
    .unwrap();
    assert_eq!(capped.cached_input_tokens, 5);
}

#[test]
fn estimates() {
    let short = estimate_request_tokens(
        Protocol::Responses,
        br#"{"input": "What is the capital of France?"}"#,
    );
    // ~7 text tokens + 3 per message + 3 reply priming.
    assert!((10..=16).contains(&short), "{short}");
    let with_instructions = estimate_request_tokens(
        Protocol::Responses,
        br#"{"instructions": "Be brief.", "input": "What is the capital of France?"}"#,
    );
    assert!(
        with_instructions > short + 3,
        "{with_instructions} vs {short}"
    );

    let conversation = estimate_request_tokens(
        Protocol::Responses,
        &fixture("responses/request_conversation.json"),
    );
    // Text, two tool schemas, one image (768), nine items.
    assert!((900..=1600).contains(&conversation), "{conversation}");

    // A 300 KB base64 PDF counts by payload size (not as ~100k text tokens).
    let pdf = "A".repeat(300_000);
    let body = json!({"input": [{"role": "user", "content": [
        {"type": "input_file", "filename": "big.pdf", "file_data": format!("data:application/pdf;base64,{pdf}")},
        {"type": "input_file", "filename": "big2.pdf", "file_data": pdf}
    ]}]});
    let big = estimate_request_tokens(Protocol::Responses, body.to_string().as_bytes());
    // 225 000 decoded bytes / 32 per token, twice.
    assert!((14_000..=14_100).contains(&big), "{big}");
    let encrypted = json!({"input": [
        {"role": "user", "content": "hi"},
        {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "Z".repeat(100_000)}
    ]});
    let n = estimate_request_tokens(Protocol::Responses, encrypted.to_string().as_bytes());
    assert!(n < 20, "encrypted reasoning is not text: {n}");
}
