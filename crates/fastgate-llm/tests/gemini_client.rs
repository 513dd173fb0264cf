//! Gemini clients: streams from OpenAI / Anthropic / Gemini upstreams re-encoded as Gemini
//! `GenerateContentResponse` chunks, as SSE or as one JSON array.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests and their helpers fail the test on error"
)]

mod common;

use common::{datas, fixture, opts, run_split};
use fastgate_llm::{GeminiFraming, Protocol, gemini_stream_processor, translate_response};
use serde_json::Value;

fn texts(chunks: &[Value]) -> String {
    chunks
        .iter()
        .flat_map(|c| {
            c["candidates"][0]["content"]["parts"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .filter_map(|p| p["text"].as_str().map(str::to_string))
        .collect()
}

#[test]
fn openai_stream_to_gemini_sse_and_array_agree_however_split() {
    let input = fixture("openai/stream_text.sse");
    let mut p = gemini_stream_processor(Protocol::OpenAi, GeminiFraming::Sse, opts("g"));
    let sse = run_split(p.as_mut(), &input, &[]);
    let chunks = datas(&sse);
    let last = chunks.last().unwrap();
    assert_eq!(last["candidates"][0]["finishReason"], "STOP");
    assert!(last["usageMetadata"]["totalTokenCount"].as_u64().unwrap() > 0);
    assert!(!texts(&chunks).is_empty());
    assert!(p.usage().is_some());
    for cuts in [vec![1usize, 7, 30], vec![50, 51, 52, 200]] {
        let mut p = gemini_stream_processor(Protocol::OpenAi, GeminiFraming::JsonArray, opts("g"));
        let out = run_split(p.as_mut(), &input, &cuts);
        let arr: Value = serde_json::from_slice(&out).unwrap();
        let arr = arr.as_array().unwrap().clone();
        assert_eq!(texts(&arr), texts(&chunks));
        assert_eq!(arr.last().unwrap(), last);
    }
}

#[test]
fn anthropic_tool_stream_to_gemini_function_call() {
    let input = fixture("anthropic/stream_tool_use.sse");
    let mut p = gemini_stream_processor(Protocol::Anthropic, GeminiFraming::Sse, opts("g"));
    let out = run_split(p.as_mut(), &input, &[]);
    let chunks = datas(&out);
    let call = chunks
        .iter()
        .find_map(|c| {
            c["candidates"][0]["content"]["parts"][0]
                .get("functionCall")
                .cloned()
        })
        .unwrap();
    assert!(call["name"].is_string());
    assert!(call["args"].is_object());
    assert_eq!(
        chunks.last().unwrap()["candidates"][0]["finishReason"],
        "STOP"
    );
}

#[test]
fn gemini_upstream_array_framing_and_sse_passthrough() {
    let input = fixture("gemini/stream_text.sse");
    let p = gemini_stream_processor(Protocol::Gemini, GeminiFraming::Sse, opts("g"));
    assert!(p.passthrough_unchanged());
    let mut p = gemini_stream_processor(Protocol::Gemini, GeminiFraming::JsonArray, opts("g"));
    let out = run_split(p.as_mut(), &input, &[10]);
    let arr: Value = serde_json::from_slice(&out).unwrap();
    assert!(arr.as_array().unwrap().len() >= 2);
    assert!(p.usage().is_some());
}

#[test]
fn midstream_failure_closes_the_array_with_an_error() {
    let input = fixture("openai/stream_text.sse");
    let mut p = gemini_stream_processor(Protocol::OpenAi, GeminiFraming::JsonArray, opts("g"));
    let mut out = p.feed(&input[..input.len() / 2]).unwrap().to_vec();
    out.extend_from_slice(&p.error_event("upstream reset"));
    let arr: Value = serde_json::from_slice(&out).unwrap();
    let last = arr.as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["error"]["status"], "INTERNAL");
    assert_eq!(last["error"]["message"], "upstream reset");
}

#[test]
fn responses_from_openai_and_anthropic_in_gemini_shape() {
    for (up, file) in [
        (Protocol::OpenAi, "openai/response_text.json"),
        (Protocol::Anthropic, "anthropic/response_text.json"),
    ] {
        let (out, usage) = translate_response(up, Protocol::Gemini, &fixture(file), "g").unwrap();
        let v: Value = serde_json::from_slice(&out).unwrap();
        let c = &v["candidates"][0];
        assert!(
            !c["content"]["parts"][0]["text"]
                .as_str()
                .unwrap()
                .is_empty()
        );
        assert_eq!(c["finishReason"], "STOP");
        let u = usage.unwrap();
        assert_eq!(
            v["usageMetadata"]["totalTokenCount"].as_u64().unwrap(),
            u.input_tokens + u.output_tokens
        );
    }
}
