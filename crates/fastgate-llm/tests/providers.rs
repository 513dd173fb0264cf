//! The OpenAI-compatible provider family (DeepSeek, Qwen/DashScope compatible mode,
//! OpenRouter, Ollama, vLLM), driven by fixtures recorded in each provider's documented
//! shapes (tests/fixtures/providers/<provider>/): reasoning text, usage quirks, reported
//! cost, streams without usage and non-OpenAI error bodies.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests and their helpers fail the test on error"
)]

mod common;

use common::{datas, events, fixture, json, opts, run, run_split};
use fastgate_llm::{
    Protocol, RequestOptions, StreamOptions, Usage, reported_cost_usd, stream_processor,
    translate_error, translate_request, translate_response, usage_from_response,
};
use serde_json::{Value, json};

const OPTS: RequestOptions = RequestOptions {
    upstream_model: "up-model",
    default_max_tokens: 4096,
    force_openai_stream_usage: true,
};

fn response(up: Protocol, client: Protocol, path: &str) -> (Value, Option<Usage>) {
    let (body, usage) = translate_response(up, client, &fixture(path), "public").unwrap();
    (serde_json::from_slice(&body).unwrap(), usage)
}

fn counts(u: &Usage) -> (u64, u64, u64, bool) {
    (
        u.input_tokens,
        u.output_tokens,
        u.cached_input_tokens,
        u.estimated,
    )
}

/// (event name, data) of an Anthropic stream.
fn anthropic_events(out: &[u8]) -> Vec<(String, Value)> {
    events(out)
        .into_iter()
        .map(|e| (e.event.unwrap(), serde_json::from_str(&e.data).unwrap()))
        .collect()
}

/// Every part of every chunk of a Gemini stream, and the last chunk's usage.
fn gemini_parts(out: &[u8]) -> (Vec<Value>, Value) {
    let chunks = datas(out);
    let parts = chunks
        .iter()
        .flat_map(|c| {
            c["candidates"][0]["content"]["parts"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .collect();
    (parts, chunks.last().unwrap()["usageMetadata"].clone())
}

// ---------------------------------------------------------------- DeepSeek

#[test]
fn deepseek_response_keeps_reasoning_and_counts_cache_hits() {
    let (body, usage) = response(
        Protocol::OpenAi,
        Protocol::OpenAi,
        "providers/deepseek/response_reasoner.json",
    );
    let msg = &body["choices"][0]["message"];
    assert_eq!(
        msg["reasoning_content"],
        "Compare the tenths: 1 < 8, so 9.11 < 9.8."
    );
    assert_eq!(msg["content"], "9.11 is smaller than 9.8.");
    assert_eq!(body["model"], "public");
    assert_eq!(body["usage"]["prompt_cache_hit_tokens"], 1024, "body kept");
    // No prompt_tokens_details: the cache hits are the cached input tokens.
    let u = usage.unwrap();
    assert_eq!(counts(&u), (1200, 95, 1024, false));
    assert_eq!(u.uncached_input_tokens(), 176);
}

#[test]
fn deepseek_response_to_anthropic_and_gemini_clients() {
    let (body, usage) = response(
        Protocol::OpenAi,
        Protocol::Anthropic,
        "providers/deepseek/response_reasoner.json",
    );
    // Anthropic clients: reasoning is dropped (no Anthropic signature can be made for it)
    // and never leaks into the answer's text.
    assert_eq!(
        body["content"],
        json!([{"type": "text", "text": "9.11 is smaller than 9.8."}])
    );
    assert_eq!(body["usage"]["input_tokens"], 176);
    assert_eq!(body["usage"]["cache_read_input_tokens"], 1024);
    assert_eq!(body["usage"]["output_tokens"], 95);
    assert_eq!(counts(&usage.unwrap()), (1200, 95, 1024, false));

    let (body, usage) = response(
        Protocol::OpenAi,
        Protocol::Gemini,
        "providers/deepseek/response_reasoner.json",
    );
    assert_eq!(
        body["candidates"][0]["content"]["parts"],
        json!([
            {"text": "Compare the tenths: 1 < 8, so 9.11 < 9.8.", "thought": true},
            {"text": "9.11 is smaller than 9.8."}
        ])
    );
    assert_eq!(body["usageMetadata"]["cachedContentTokenCount"], 1024);
    assert_eq!(body["usageMetadata"]["promptTokenCount"], 1200);
    assert_eq!(counts(&usage.unwrap()), (1200, 95, 1024, false));
}

#[test]
fn deepseek_stream_passthrough_reads_usage_on_the_finish_chunk() {
    let input = fixture("providers/deepseek/stream_reasoner.sse");
    let (out, p) = run(Protocol::OpenAi, Protocol::OpenAi, opts("public"), &input);
    assert_eq!(
        out, input,
        "forwarded unchanged, reasoning_content included"
    );
    assert_eq!(counts(&p.usage().unwrap()), (1200, 95, 1024, false));
    assert_eq!(
        p.text_so_far(),
        "Compare the tenths: 1 < 8.9.11 is smaller than 9.8."
    );
    let merged = p.merged().unwrap();
    let msg = &merged["choices"][0]["message"];
    assert_eq!(msg["reasoning_content"], "Compare the tenths: 1 < 8.");
    assert_eq!(msg["content"], "9.11 is smaller than 9.8.");
    assert_eq!(p.reported_cost(), None);
}

#[test]
fn deepseek_stream_to_anthropic_and_gemini_clients() {
    let input = fixture("providers/deepseek/stream_reasoner.sse");
    let (out, p) = run(
        Protocol::OpenAi,
        Protocol::Anthropic,
        opts("public"),
        &input,
    );
    let ev = anthropic_events(&out);
    let deltas: Vec<&Value> = ev
        .iter()
        .filter(|(n, _)| n == "content_block_delta")
        .map(|(_, v)| &v["delta"])
        .collect();
    assert_eq!(
        deltas,
        [
            &json!({"type": "text_delta", "text": "9.11 is smaller"}),
            &json!({"type": "text_delta", "text": " than 9.8."})
        ]
    );
    let (_, delta) = ev.iter().find(|(n, _)| n == "message_delta").unwrap();
    assert_eq!(delta["usage"]["cache_read_input_tokens"], 1024);
    assert_eq!(delta["usage"]["input_tokens"], 176);
    assert_eq!(ev.last().unwrap().0, "message_stop");
    assert_eq!(counts(&p.usage().unwrap()), (1200, 95, 1024, false));

    let (out, p) = run(Protocol::OpenAi, Protocol::Gemini, opts("public"), &input);
    let (parts, usage) = gemini_parts(&out);
    assert_eq!(
        parts,
        [
            json!({"text": "Compare the tenths", "thought": true}),
            json!({"text": ": 1 < 8.", "thought": true}),
            json!({"text": "9.11 is smaller"}),
            json!({"text": " than 9.8."}),
        ]
    );
    assert_eq!(usage["cachedContentTokenCount"], 1024);
    assert_eq!(counts(&p.usage().unwrap()), (1200, 95, 1024, false));
}

#[test]
fn thinking_blocks_sent_back_never_reach_an_openai_upstream() {
    // DeepSeek refuses earlier turns' reasoning_content; an Anthropic client (Claude
    // Code...) sends its thinking blocks back with every turn.
    let body = fixture("providers/deepseek/request_anthropic_thinking_history.json");
    let tr = translate_request(Protocol::Anthropic, Protocol::OpenAi, &body, &OPTS).unwrap();
    let text = String::from_utf8(tr.body.clone()).unwrap();
    assert!(!text.contains("Compare the tenths"), "{text}");
    assert!(!text.contains("EqQBCkYIARgCIkB0c2lnbmF0dXJl"), "{text}");
    assert!(!text.contains("reasoning_content"), "{text}");
    let v: Value = serde_json::from_slice(&tr.body).unwrap();
    assert!(v.get("thinking").is_none());
    let roles: Vec<&str> = v["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["role"].as_str().unwrap())
        .collect();
    assert_eq!(roles, ["user", "assistant", "user"]);
    let assistant = &v["messages"][1]["content"];
    let assistant_text = match assistant {
        Value::String(s) => s.clone(),
        parts => parts[0]["text"].as_str().unwrap().to_owned(),
    };
    assert_eq!(assistant_text, "9.8 is larger.");
}

// ---------------------------------------------------------------- Qwen (DashScope)

#[test]
fn qwen_response_usage_and_reasoning() {
    let path = "providers/qwen/response_qwen3.json";
    let (body, usage) = response(Protocol::OpenAi, Protocol::OpenAi, path);
    assert_eq!(
        body["choices"][0]["message"]["reasoning_content"],
        "The user asks for the capital of France. That is Paris."
    );
    assert_eq!(counts(&usage.unwrap()), (3019, 104, 2048, false));
    let (body, _) = response(Protocol::OpenAi, Protocol::Gemini, path);
    let parts = &body["candidates"][0]["content"]["parts"];
    assert_eq!(parts[0]["thought"], true);
    assert_eq!(parts[1]["text"], "The capital of France is Paris.");
}

#[test]
fn qwen_stream_usage_chunk_is_stripped_for_clients_that_did_not_ask() {
    let input = fixture("providers/qwen/stream_include_usage.sse");
    let o = StreamOptions {
        strip_usage_chunk: true,
        ..opts("public")
    };
    let (out, p) = run(Protocol::OpenAi, Protocol::OpenAi, o, &input);
    let chunks = datas(&out);
    assert_eq!(chunks.len(), 7, "six content chunks and [DONE]");
    assert!(chunks.iter().all(|c| c.get("choices") != Some(&json!([]))));
    assert_eq!(
        chunks[1]["choices"][0]["delta"]["reasoning_content"],
        "The user wants"
    );
    assert_eq!(counts(&p.usage().unwrap()), (22, 31, 0, false));

    // Translated: identical whatever the splits.
    let whole = run(Protocol::OpenAi, Protocol::Anthropic, opts("m"), &input).0;
    for cut in (1..input.len()).step_by(97) {
        let mut p = stream_processor(Protocol::OpenAi, Protocol::Anthropic, opts("m"));
        assert_eq!(run_split(p.as_mut(), &input, &[cut]), whole, "cut at {cut}");
        assert_eq!(counts(&p.usage().unwrap()), (22, 31, 0, false));
    }
}

#[test]
fn usage_on_every_chunk_is_replaced_not_added() {
    let input = fixture("providers/qwen/stream_usage_every_chunk.sse");
    for client in [Protocol::OpenAi, Protocol::Anthropic, Protocol::Gemini] {
        let (out, p) = run(Protocol::OpenAi, client, opts("public"), &input);
        assert_eq!(
            counts(&p.usage().unwrap()),
            (40, 6, 32, false),
            "{client:?}"
        );
        assert_eq!(p.final_usage(999), p.usage().unwrap());
        if client == Protocol::Anthropic {
            let ev = anthropic_events(&out);
            let (_, delta) = ev.iter().find(|(n, _)| n == "message_delta").unwrap();
            assert_eq!(delta["usage"]["output_tokens"], 6);
            assert_eq!(delta["usage"]["cache_read_input_tokens"], 32);
        }
    }
}

#[test]
fn running_usage_of_a_cut_stream_is_only_partial() {
    // Cut after the third chunk: its running figure (5 output tokens) is not final.
    let input = fixture("providers/qwen/stream_usage_every_chunk.sse");
    let text = String::from_utf8(input).unwrap();
    let cut: String = text.split_inclusive("\n\n").take(3).collect();
    let mut p = stream_processor(Protocol::OpenAi, Protocol::OpenAi, opts("m"));
    p.feed(cut.as_bytes()).unwrap();
    assert!(p.usage().is_none());
    assert_eq!(p.partial_usage().unwrap().output_tokens, 5);
    let u = p.final_usage(999);
    assert!(u.estimated);
    assert_eq!((u.input_tokens, u.cached_input_tokens), (40, 32));
    assert!(u.output_tokens >= 5);
}

// ---------------------------------------------------------------- OpenRouter

#[test]
fn openrouter_request_fields_pass_through_unchanged() {
    let body = fixture("providers/openrouter/request.json");
    let tr = translate_request(Protocol::OpenAi, Protocol::OpenAi, &body, &OPTS).unwrap();
    let sent: Value = serde_json::from_slice(&tr.body).unwrap();
    let mut want = json("providers/openrouter/request.json");
    want["model"] = json!("up-model");
    assert_eq!(sent, want);
    assert_eq!(tr.path, "/v1/chat/completions");
}

#[test]
fn openrouter_response_usage_and_reported_cost() {
    let path = "providers/openrouter/response.json";
    let raw = fixture(path);
    let (body, usage) = response(Protocol::OpenAi, Protocol::OpenAi, path);
    let mut want = json(path);
    want["model"] = json!("public");
    assert_eq!(body, want, "only the model is rewritten");
    assert_eq!(counts(&usage.unwrap()), (194, 20, 128, false));
    assert_eq!(reported_cost_usd(Protocol::OpenAi, &raw), Some(0.000882));
    assert_eq!(
        counts(&usage_from_response(Protocol::OpenAi, &raw).unwrap()),
        (194, 20, 128, false)
    );

    let (body, usage) = response(Protocol::OpenAi, Protocol::Anthropic, path);
    assert_eq!(
        body["content"][0]["text"],
        "Forty-two, according to Douglas Adams."
    );
    assert_eq!(body["usage"]["cache_read_input_tokens"], 128);
    assert_eq!(counts(&usage.unwrap()), (194, 20, 128, false));
}

#[test]
fn openrouter_stream_comments_usage_and_cost() {
    let input = fixture("providers/openrouter/stream.sse");
    let (out, p) = run(Protocol::OpenAi, Protocol::OpenAi, opts("public"), &input);
    assert_eq!(out, input);
    assert_eq!(counts(&p.usage().unwrap()), (14, 4, 0, false));
    assert_eq!(p.reported_cost(), Some(0.000075));

    let (out, p) = run(
        Protocol::OpenAi,
        Protocol::Anthropic,
        opts("public"),
        &input,
    );
    let ev = anthropic_events(&out);
    assert_eq!(ev.last().unwrap().0, "message_stop");
    assert_eq!(p.reported_cost(), Some(0.000075));
    assert_eq!(p.merged().unwrap()["content"][0]["text"], "Forty-two.");
}

// ---------------------------------------------------------------- Ollama, vLLM

#[test]
fn ollama_and_vllm_non_stream_usage() {
    let (body, usage) = response(
        Protocol::OpenAi,
        Protocol::Anthropic,
        "providers/ollama/response.json",
    );
    assert_eq!(body["usage"]["input_tokens"], 31);
    assert_eq!(counts(&usage.unwrap()), (31, 11, 0, false));

    // vLLM: `prompt_tokens_details: null`, `tool_calls: []`, `reasoning_content`.
    let path = "providers/vllm/response.json";
    let (body, usage) = response(Protocol::OpenAi, Protocol::Anthropic, path);
    assert_eq!(
        body["content"],
        json!([{"type": "text", "text": "2 + 2 = 4."}])
    );
    assert_eq!(body["stop_reason"], "end_turn");
    assert_eq!(counts(&usage.unwrap()), (17, 23, 0, false));
    let (body, _) = response(Protocol::OpenAi, Protocol::Gemini, path);
    assert_eq!(
        body["candidates"][0]["content"]["parts"][0],
        json!({"text": "Two plus two is four.", "thought": true})
    );
}

#[test]
fn streams_without_usage_are_estimated_and_marked() {
    for (path, text) in [
        (
            "providers/ollama/stream_no_usage.sse",
            "The sky is blue because of Rayleigh scattering.",
        ),
        (
            "providers/vllm/stream_no_usage.sse",
            "Rust is a systems programming language focused on safety.",
        ),
    ] {
        let input = fixture(path);
        for client in [Protocol::OpenAi, Protocol::Anthropic, Protocol::Gemini] {
            let (out, p) = run(Protocol::OpenAi, client, opts("public"), &input);
            assert!(p.usage().is_none(), "{path} {client:?}");
            assert_eq!(p.text_so_far(), text);
            let u = p.final_usage(57);
            assert!(u.estimated);
            assert_eq!(u.input_tokens, 57, "the request's estimate");
            assert_eq!(u.output_tokens, fastgate_llm::estimate_text_tokens(text));
            assert!(u.output_tokens >= 5);
            assert!(!out.is_empty());
        }
    }
}

// ---------------------------------------------------------------- error bodies

fn error(status: u16, path: &str, client: Protocol) -> Value {
    serde_json::from_slice(&translate_error(
        Protocol::OpenAi,
        client,
        status,
        &fixture(path),
    ))
    .unwrap()
}

#[test]
fn ollama_string_error_becomes_a_proper_error() {
    let path = "providers/ollama/error_model_not_found.json";
    let msg = "model 'llama9' not found";
    assert_eq!(
        error(404, path, Protocol::OpenAi),
        json!({"error": {"message": msg, "type": "not_found_error", "param": null,
                         "code": "model_not_found"}})
    );
    assert_eq!(
        error(404, path, Protocol::Anthropic),
        json!({"type": "error", "error": {"type": "not_found_error", "message": msg}})
    );
    assert_eq!(
        error(404, path, Protocol::Gemini),
        json!({"error": {"code": 404, "message": msg, "status": "NOT_FOUND"}})
    );
}

#[test]
fn ollama_openai_api_error_is_typed_by_its_status() {
    let path = "providers/ollama/error_openai_api_not_found.json";
    let raw = fixture(path);
    assert_eq!(
        translate_error(Protocol::OpenAi, Protocol::OpenAi, 404, &raw),
        raw,
        "an OpenAI-shaped body reaches OpenAI clients unchanged"
    );
    let v = error(404, path, Protocol::Anthropic);
    assert_eq!(v["error"]["type"], "not_found_error", "not api_error: {v}");
    assert_eq!(
        v["error"]["message"],
        "model \"llama9\" not found, try pulling it first"
    );
}

#[test]
fn vllm_unwrapped_error_becomes_a_proper_error() {
    let path = "providers/vllm/error_bad_request.json";
    let msg = json("providers/vllm/error_bad_request.json")["message"].clone();
    let v = error(400, path, Protocol::OpenAi);
    assert_eq!(v["error"]["message"], msg);
    assert_eq!(v["error"]["type"], "invalid_request_error");
    let v = error(400, path, Protocol::Anthropic);
    assert_eq!(
        v,
        json!({"type": "error", "error": {"type": "invalid_request_error", "message": msg}})
    );
    let v = error(400, path, Protocol::Gemini);
    assert_eq!(v["error"]["status"], "INVALID_ARGUMENT");
    assert_eq!(v["error"]["message"], msg);

    let v = error(
        404,
        "providers/vllm/error_not_found.json",
        Protocol::Anthropic,
    );
    assert_eq!(v["error"]["type"], "not_found_error");
    assert_eq!(v["error"]["message"], "The model `llama-9` does not exist.");
}

#[test]
fn a_bare_string_error_mid_stream_keeps_its_message() {
    let input = fixture("providers/ollama/stream_no_usage.sse");
    let text = String::from_utf8(input).unwrap();
    let first: String = text.split_inclusive("\n\n").take(1).collect();
    let cut = format!(
        "{first}data: {{\"error\":\"an error was encountered while running the model\"}}\n\n"
    );
    let (out, p) = run(
        Protocol::OpenAi,
        Protocol::Anthropic,
        opts("m"),
        cut.as_bytes(),
    );
    let ev = anthropic_events(&out);
    let (name, last) = ev.last().unwrap();
    assert_eq!(name, "error");
    assert_eq!(
        last["error"]["message"],
        "an error was encountered while running the model"
    );
    assert!(p.usage().is_none());
    assert!(p.final_usage(10).estimated);
}
