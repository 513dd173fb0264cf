//! Azure OpenAI's variations on OpenAI's protocol: annotation-only stream chunks
//! (`choices: []` with `prompt_filter_results`), `finish_reason: content_filter`,
//! and the content filter's 400 error.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests and their helpers fail the test on error"
)]

mod common;

use common::{datas, events, fixture, opts, run};
use fastgate_llm::{Protocol, StreamOptions, translate_error, translate_response};
use serde_json::{Value, json};

fn anthropic_events(out: &[u8]) -> Vec<(String, Value)> {
    events(out)
        .into_iter()
        .map(|e| {
            let v: Value = serde_json::from_str(&e.data).unwrap();
            let name = e.event.unwrap();
            assert_eq!(v["type"], name.as_str(), "event name matches data type");
            (name, v)
        })
        .collect()
}

#[test]
fn empty_choices_first_chunk_translated_to_anthropic() {
    let (out, p) = run(
        Protocol::OpenAi,
        Protocol::Anthropic,
        opts("claude-pub"),
        &fixture("azure/stream_filtered_prompt_first.sse"),
    );
    let ev = anthropic_events(&out);
    let names: Vec<&str> = ev.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "message_start",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ]
    );
    // The id is the first real chunk's, not the annotation chunk's empty one.
    assert_eq!(ev[0].1["message"]["id"], "chatcmpl-az1");
    assert_eq!(ev[0].1["message"]["model"], "claude-pub");
    assert_eq!(ev[2].1["delta"]["text"], "Hi");
    assert_eq!(ev[3].1["delta"]["text"], " there");
    assert_eq!(ev[5].1["delta"]["stop_reason"], "end_turn");
    assert_eq!(ev[5].1["usage"]["output_tokens"], 2);
    let u = p.usage().unwrap();
    assert_eq!((u.input_tokens, u.output_tokens), (9, 2));
    assert_eq!(p.text_so_far(), "Hi there");
}

#[test]
fn empty_choices_first_chunk_passes_through_to_openai() {
    let input = fixture("azure/stream_filtered_prompt_first.sse");
    let (out, p) = run(Protocol::OpenAi, Protocol::OpenAi, opts("pub"), &input);
    assert_eq!(out, input, "a same-protocol stream is forwarded unchanged");
    assert_eq!(p.text_so_far(), "Hi there");
    let u = p.usage().unwrap();
    assert_eq!((u.input_tokens, u.output_tokens), (9, 2));
    let m = p.merged().unwrap();
    assert_eq!(m["id"], "chatcmpl-az1");
    assert_eq!(m["choices"][0]["message"]["content"], "Hi there");
}

#[test]
fn empty_choices_chunk_kept_when_usage_chunk_is_stripped() {
    let input = fixture("azure/stream_filtered_prompt_first.sse");
    let o = StreamOptions {
        strip_usage_chunk: true,
        ..opts("pub")
    };
    let (out, p) = run(Protocol::OpenAi, Protocol::OpenAi, o, &input);
    let d = datas(&out);
    // Only the usage-only chunk is left out; the annotation chunk is the client's.
    assert_eq!(d.len(), 6, "{d:?}");
    assert!(d[0]["prompt_filter_results"].is_array());
    assert!(d.iter().all(|c| c.get("usage").is_none_or(Value::is_null)));
    assert_eq!(p.usage().unwrap().output_tokens, 2);
}

#[test]
fn only_annotation_chunks_make_an_empty_message() {
    let input = b"data: {\"choices\":[],\"created\":0,\"id\":\"\",\"model\":\"\",\"object\":\"\",\"prompt_filter_results\":[]}\n\ndata: [DONE]\n\n";
    let (out, _) = run(
        Protocol::OpenAi,
        Protocol::Anthropic,
        opts("claude-pub"),
        input,
    );
    let ev = anthropic_events(&out);
    let names: Vec<&str> = ev.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names.first(), Some(&"message_start"), "{names:?}");
    assert_eq!(names.last(), Some(&"message_stop"), "{names:?}");
}

#[test]
fn content_filter_finish_is_refusal_in_anthropic_stream() {
    let (out, p) = run(
        Protocol::OpenAi,
        Protocol::Anthropic,
        opts("claude-pub"),
        &fixture("azure/stream_content_filter_finish.sse"),
    );
    let ev = anthropic_events(&out);
    let delta = ev
        .iter()
        .find(|(n, _)| n == "message_delta")
        .expect("message_delta");
    assert_eq!(delta.1["delta"]["stop_reason"], "refusal");
    assert_eq!(ev[0].1["message"]["id"], "chatcmpl-az2");
    assert_eq!(p.text_so_far(), "Once");
    assert_eq!(p.merged().unwrap()["stop_reason"], "refusal");
}

#[test]
fn content_filter_finish_is_refusal_in_anthropic_response() {
    let (out, usage) = translate_response(
        Protocol::OpenAi,
        Protocol::Anthropic,
        &fixture("azure/response_content_filter.json"),
        "claude-pub",
    )
    .unwrap();
    let v: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["stop_reason"], "refusal");
    assert_eq!(v["type"], "message");
    assert_eq!(usage.unwrap().input_tokens, 12);
}

#[test]
fn content_filter_error_for_openai_client_is_unchanged() {
    let body = fixture("azure/error_content_filter.json");
    let out = translate_error(Protocol::OpenAi, Protocol::OpenAi, 400, &body);
    assert_eq!(out, body);
    let v: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["error"]["code"], "content_filter");
}

#[test]
fn content_filter_error_for_anthropic_client_says_so() {
    let out = translate_error(
        Protocol::OpenAi,
        Protocol::Anthropic,
        400,
        &fixture("azure/error_content_filter.json"),
    );
    let v: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["type"], "error");
    assert_eq!(v["error"]["type"], "invalid_request_error");
    let msg = v["error"]["message"].as_str().unwrap();
    assert!(
        msg.starts_with(
            "the provider's content filter refused the request (filtered: jailbreak, violence (medium)): "
        ),
        "{msg}"
    );
    assert!(
        msg.ends_with("Please modify your prompt and retry."),
        "{msg}"
    );
}

#[test]
fn content_filter_error_without_details_for_gemini_client() {
    let body = json!({"error": {"message": "", "code": "content_filter"}}).to_string();
    let out = translate_error(Protocol::OpenAi, Protocol::Gemini, 400, body.as_bytes());
    let v: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["error"]["status"], "INVALID_ARGUMENT");
    assert_eq!(
        v["error"]["message"],
        "the provider's content filter refused the request"
    );
}
