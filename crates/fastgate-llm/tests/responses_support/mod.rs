//! Helpers of the Responses API request tests.
#![allow(dead_code)]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests and their helpers fail the test on error"
)]

use fastgate_llm::{LlmError, Protocol, RequestOptions, TranslatedRequest, translate_request};
use serde_json::{Value, json};

pub fn opts(model: &str) -> RequestOptions<'_> {
    RequestOptions {
        upstream_model: model,
        default_max_tokens: 4096,
        force_openai_stream_usage: true,
    }
}

pub fn translate(to: Protocol, body: &Value, model: &str) -> Result<TranslatedRequest, LlmError> {
    translate_request(
        Protocol::Responses,
        to,
        body.to_string().as_bytes(),
        &opts(model),
    )
}

pub fn upstream_body(to: Protocol, body: &Value, model: &str) -> Value {
    let t = translate(to, body, model).unwrap();
    serde_json::from_slice(&t.body).unwrap()
}

/// The error message of a refused request (any upstream).
pub fn refusal(to: Protocol, body: Value) -> LlmError {
    match translate(to, &body, "gpt-4.1") {
        Ok(t) => panic!(
            "expected a refusal, got {}",
            String::from_utf8_lossy(&t.body)
        ),
        Err(e) => e,
    }
}

pub fn invalid_request(to: Protocol, body: Value) -> String {
    match refusal(to, body) {
        LlmError::InvalidRequest(m) => m,
        other => panic!("expected InvalidRequest, got {other:?}"),
    }
}

pub fn unsupported(to: Protocol, body: Value) -> String {
    match refusal(to, body) {
        LlmError::Unsupported(m) => m,
        other => panic!("expected Unsupported, got {other:?}"),
    }
}

pub fn user_parts(parts: Value) -> Value {
    json!({"model": "m", "input": [{"role": "user", "content": parts}]})
}
