//! Responses API streams: chat / Anthropic / Gemini upstreams translated into the Responses
//! streaming events, and a native Responses stream passed through unchanged.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests and their helpers fail the test on error"
)]

mod common;

use common::{events, fixture, opts, run, run_split};
use fastgate_llm::{Protocol, stream_processor};
use serde_json::{Value, json};

const NATIVE: &str = "responses/stream_reasoning_text_tool.sse";

/// Each event as (SSE event name, data JSON); the name must equal `data.type`.
fn responses_events(out: &[u8]) -> Vec<(String, Value)> {
    events(out)
        .into_iter()
        .map(|e| {
            let name = e.event.expect("every Responses event is named");
            let data: Value = serde_json::from_str(&e.data).unwrap();
            assert_eq!(data["type"], name.as_str(), "event name and type differ");
            (name, data)
        })
        .collect()
}

fn names(evs: &[(String, Value)]) -> Vec<&str> {
    evs.iter().map(|(n, _)| n.as_str()).collect()
}

/// Sequence numbers are 0, 1, 2, … in order.
fn assert_sequence(evs: &[(String, Value)]) {
    for (i, (name, d)) in evs.iter().enumerate() {
        assert_eq!(d["sequence_number"], i as u64, "{name} at {i}");
    }
}

/// Concatenated `delta`s of events named `name`.
fn joined(evs: &[(String, Value)], name: &str) -> String {
    evs.iter()
        .filter(|(n, _)| n == name)
        .map(|(_, d)| d["delta"].as_str().unwrap())
        .collect()
}

fn last_response(evs: &[(String, Value)]) -> &Value {
    &evs.last().unwrap().1["response"]
}

#[test]
fn openai_chat_stream_to_responses_events() {
    let input = fixture("openai/stream_text.sse");
    let (out, p) = run(
        Protocol::OpenAi,
        Protocol::Responses,
        opts("my-model"),
        &input,
    );
    let text = String::from_utf8(out.clone()).unwrap();
    assert!(
        !text.contains("[DONE]"),
        "the Responses API sends no [DONE]"
    );
    let evs = responses_events(&out);
    assert_eq!(
        names(&evs),
        [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.content_part.added",
            "response.output_text.delta",
            "response.output_text.delta",
            "response.output_text.done",
            "response.content_part.done",
            "response.output_item.done",
            "response.completed",
        ]
    );
    assert_sequence(&evs);
    let created = &evs[0].1["response"];
    assert_eq!(
        created["id"], "resp_s1",
        "the same id rule as whole answers"
    );
    assert_eq!(created["status"], "in_progress");
    assert_eq!(created["model"], "my-model");
    assert_eq!(created["output"], json!([]));
    assert!(created["usage"].is_null());
    assert_eq!(evs[1].1["response"], *created);

    let full = "Hello there, ünïcödé 😀";
    assert_eq!(joined(&evs, "response.output_text.delta"), full);
    // The empty first chunk makes no delta event.
    let delta = &evs[5].1;
    assert_eq!(delta["item_id"], "msg_0");
    assert_eq!(
        (
            delta["output_index"].clone(),
            delta["content_index"].clone()
        ),
        (json!(0), json!(0))
    );
    assert_eq!(delta["logprobs"], json!([]));
    assert_eq!(
        evs[2].1["item"],
        json!({"type": "message", "id": "msg_0", "status": "in_progress",
            "role": "assistant", "content": []})
    );
    assert_eq!(evs[3].1["part"]["text"], "");
    assert_eq!(evs[6].1["text"], full);
    let message = json!({"type": "message", "id": "msg_0", "status": "completed",
        "role": "assistant", "content": [{"type": "output_text", "text": full,
        "annotations": [], "logprobs": []}]});
    assert_eq!(evs[7].1["part"], message["content"][0]);
    assert_eq!(evs[8].1["item"], message);

    let done = last_response(&evs);
    assert_eq!(done["status"], "completed");
    assert!(done["incomplete_details"].is_null());
    assert_eq!(done["output"], json!([message]));
    assert_eq!(
        done["usage"],
        json!({"input_tokens": 30, "input_tokens_details": {"cached_tokens": 12},
            "output_tokens": 5, "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": 35})
    );
    let u = p.final_usage(0);
    assert_eq!(
        (u.input_tokens, u.output_tokens, u.estimated),
        (30, 5, false)
    );
    // The audit record's merged answer is the same response object.
    let merged = p.merged().unwrap();
    assert_eq!(merged["output"], done["output"]);
    assert_eq!(merged["usage"], done["usage"]);
    assert_eq!(merged["id"], "resp_s1");
}

#[test]
fn anthropic_thinking_text_and_tools_to_responses_items() {
    let input = fixture("anthropic/stream_tool_use.sse");
    let (out, _) = run(Protocol::Anthropic, Protocol::Responses, opts("m"), &input);
    let evs = responses_events(&out);
    assert_sequence(&evs);
    assert_eq!(
        names(&evs),
        [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.reasoning_summary_part.added",
            "response.reasoning_summary_text.delta",
            "response.reasoning_summary_text.done",
            "response.reasoning_summary_part.done",
            "response.output_item.done",
            "response.output_item.added",
            "response.content_part.added",
            "response.output_text.delta",
            "response.output_text.done",
            "response.content_part.done",
            "response.output_item.done",
            "response.output_item.added",
            "response.function_call_arguments.delta",
            "response.function_call_arguments.delta",
            "response.output_item.added",
            "response.function_call_arguments.delta",
            "response.function_call_arguments.done",
            "response.output_item.done",
            "response.function_call_arguments.done",
            "response.output_item.done",
            "response.completed",
        ]
    );
    let reasoning = json!({"type": "reasoning", "id": "rs_0",
        "summary": [{"type": "summary_text", "text": "Need the weather tool."}]});
    assert_eq!(evs[7].1["item"], reasoning);
    assert_eq!(evs[4].1["summary_index"], 0);
    assert_eq!(
        evs[14].1["item"],
        json!({"type": "function_call", "id": "fc_2", "call_id": "toolu_01T",
            "name": "get_weather", "arguments": "", "status": "in_progress"})
    );
    assert_eq!(evs[15].1["item_id"], "fc_2");
    assert_eq!(evs[15].1["output_index"], 2);
    assert!(evs[15].1.get("logprobs").is_none());
    assert_eq!(
        evs[19].1,
        json!({"type": "response.function_call_arguments.done", "sequence_number": 19,
            "item_id": "fc_2", "output_index": 2, "name": "get_weather",
            "arguments": "{\"city\": \"San Francisco\"}"})
    );
    let weather = json!({"type": "function_call", "id": "fc_2", "call_id": "toolu_01T",
        "name": "get_weather", "arguments": "{\"city\": \"San Francisco\"}",
        "status": "completed"});
    let time = json!({"type": "function_call", "id": "fc_3", "call_id": "toolu_02T",
        "name": "get_time", "arguments": "{}", "status": "completed"});
    assert_eq!(evs[20].1["item"], weather);
    assert_eq!(evs[22].1["item"], time);
    let done = last_response(&evs);
    assert_eq!(done["status"], "completed");
    assert_eq!(done["id"], "resp_msg_S2");
    let output = done["output"].as_array().unwrap();
    assert_eq!(output.len(), 4);
    assert_eq!(output[0], reasoning);
    assert_eq!(output[1]["content"][0]["text"], "Checking.");
    assert_eq!((&output[2], &output[3]), (&weather, &time));
    assert_eq!(done["usage"]["input_tokens"], 472);
    assert_eq!(done["usage"]["output_tokens"], 89);
    assert_eq!(done["usage"]["total_tokens"], 561);
}

#[test]
fn gemini_stream_to_responses() {
    let input = fixture("gemini/stream_thought_text_tool.sse");
    let (out, _) = run(Protocol::Gemini, Protocol::Responses, opts("m"), &input);
    let evs = responses_events(&out);
    assert_sequence(&evs);
    let n = names(&evs);
    assert_eq!(n.first(), Some(&"response.created"));
    assert_eq!(n.last(), Some(&"response.completed"));
    assert_eq!(
        joined(&evs, "response.reasoning_summary_text.delta"),
        "The user wants the weather; I should call the tool."
    );
    assert_eq!(
        joined(&evs, "response.output_text.delta"),
        "Checking Paris."
    );
    let done = last_response(&evs);
    assert_eq!(done["id"], "resp_resp-s9");
    let kinds: Vec<&str> = done["output"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["reasoning", "message", "function_call"]);
    let call = &done["output"][2];
    assert_eq!(call["call_id"], "fc-7");
    assert_eq!(call["name"], "get_weather");
    let args: Value = serde_json::from_str(call["arguments"].as_str().unwrap()).unwrap();
    assert_eq!(args, json!({"city": "Paris", "unit": "celsius"}));
    assert_eq!(done["usage"]["input_tokens_details"]["cached_tokens"], 8);
}

#[test]
fn length_and_content_filter_finishes_are_incomplete() {
    for (reason, expected) in [
        ("length", "max_output_tokens"),
        ("content_filter", "content_filter"),
    ] {
        let input = format!(
            "data: {{\"id\":\"c1\",\"model\":\"x\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"Cut\"}},\"finish_reason\":null}}]}}\n\n\
             data: {{\"id\":\"c1\",\"model\":\"x\",\"choices\":[{{\"index\":0,\"delta\":{{}},\"finish_reason\":\"{reason}\"}}]}}\n\n\
             data: [DONE]\n\n"
        );
        let (out, p) = run(
            Protocol::OpenAi,
            Protocol::Responses,
            opts("m"),
            input.as_bytes(),
        );
        let evs = responses_events(&out);
        assert_sequence(&evs);
        let (name, last) = evs.last().unwrap();
        assert_eq!(name, "response.incomplete");
        assert_eq!(last["response"]["status"], "incomplete");
        assert_eq!(
            last["response"]["incomplete_details"],
            json!({"reason": expected})
        );
        assert_eq!(last["response"]["output"][0]["content"][0]["text"], "Cut");
        let merged = p.merged().unwrap();
        assert_eq!(merged["status"], "incomplete");
        assert_eq!(merged["incomplete_details"]["reason"], expected);
    }
}

#[test]
fn upstream_end_after_finish_without_done_still_completes() {
    // A Gemini upstream has no end marker: the response closes when the upstream ends.
    let input = fixture("gemini/stream_text.sse");
    let (out, _) = run(Protocol::Gemini, Protocol::Responses, opts("m"), &input);
    let evs = responses_events(&out);
    assert_sequence(&evs);
    assert_eq!(evs.last().unwrap().0, "response.completed");
}

#[test]
fn failure_mid_stream_is_one_error_event_continuing_the_sequence() {
    let input = fixture("openai/stream_text.sse");
    let mut p = stream_processor(Protocol::OpenAi, Protocol::Responses, opts("m"));
    let mut out = p.feed(&input[..input.len() / 2]).unwrap().to_vec();
    out.extend_from_slice(&p.error_event("upstream connection reset"));
    let evs = responses_events(&out);
    assert_sequence(&evs);
    let (name, err) = evs.last().unwrap();
    assert_eq!(name, "error");
    assert_eq!(
        *err,
        json!({"type": "error", "code": "server_error", "message": "upstream connection reset",
            "param": null, "sequence_number": evs.len() - 1})
    );
    assert!(evs.len() > 3, "output before the failure is kept");
    assert!(!names(&evs).contains(&"response.completed"));
    assert!(
        p.feed(&input[input.len() / 2..]).unwrap().is_empty(),
        "nothing after the error"
    );
    assert!(p.finish().unwrap().is_empty());

    // A clean upstream end before any finish reason: an error, not a completed response.
    let cut = input
        .windows(2)
        .enumerate()
        .filter(|(_, w)| w == b"\n\n")
        .nth(2)
        .unwrap()
        .0
        + 2;
    let (out, _) = run(
        Protocol::OpenAi,
        Protocol::Responses,
        opts("m"),
        &input[..cut],
    );
    let evs = responses_events(&out);
    assert_sequence(&evs);
    assert_eq!(evs.last().unwrap().0, "error");
    assert!(!names(&evs).contains(&"response.completed"));

    // An upstream error event mid-stream: the same, with the upstream's message.
    let mut input = fixture("anthropic/stream_text.sse");
    let cut = input.len() / 2;
    input.truncate(input[..cut].windows(2).rposition(|w| w == b"\n\n").unwrap() + 2);
    input.extend_from_slice(b"event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n");
    let (out, _) = run(Protocol::Anthropic, Protocol::Responses, opts("m"), &input);
    let evs = responses_events(&out);
    assert_sequence(&evs);
    let (name, err) = evs.last().unwrap();
    assert_eq!(name, "error");
    assert_eq!(
        (err["message"].as_str(), err["code"].as_str()),
        (Some("Overloaded"), Some("overloaded"))
    );
}

/// `created_at` differs between processors made in different seconds; nothing else may.
fn normalize(out: &[u8]) -> String {
    let s = String::from_utf8_lossy(out);
    let mut r = String::new();
    let mut rest: &str = &s;
    while let Some(i) = rest.find("\"created_at\":") {
        r.push_str(&rest[..i + 13]);
        rest = rest[i + 13..].trim_start_matches(|c: char| c.is_ascii_digit());
        r.push('0');
    }
    r.push_str(rest);
    r
}

#[test]
fn every_two_way_split_gives_identical_output() {
    let cases = [
        (Protocol::OpenAi, "openai/stream_text.sse"),
        (Protocol::OpenAi, "openai/stream_tool_calls.sse"),
        (Protocol::Anthropic, "anthropic/stream_tool_use.sse"),
        (Protocol::Gemini, "gemini/stream_thought_text_tool.sse"),
        (Protocol::Responses, NATIVE),
    ];
    for (up, path) in cases {
        let input = fixture(path);
        let mut p = stream_processor(up, Protocol::Responses, opts("m"));
        let whole = normalize(&run_split(p.as_mut(), &input, &[]));
        assert!(whole.contains("response.completed"), "{path}");
        for cut in 0..=input.len() {
            let mut p = stream_processor(up, Protocol::Responses, opts("m"));
            let split = normalize(&run_split(p.as_mut(), &input, &[cut]));
            assert_eq!(split, whole, "{path} split at {cut}");
        }
    }
}

#[test]
fn native_responses_stream_is_forwarded_unchanged_and_read_on_the_side() {
    let input = fixture(NATIVE);
    let (out, p) = run(Protocol::Responses, Protocol::Responses, opts("m"), &input);
    assert_eq!(out, input, "forwarded byte for byte");
    assert!(p.passthrough_unchanged());
    let u = p.final_usage(0);
    assert_eq!(
        (
            u.input_tokens,
            u.cached_input_tokens,
            u.output_tokens,
            u.estimated
        ),
        (84, 64, 147, false)
    );
    let text = p.text_so_far();
    assert!(text.contains("The user asks about Paris."), "{text}");
    assert!(text.contains("Let me check — ünïcödé 😀."), "{text}");
    assert!(text.contains("get_weather{\"city\":\"Paris\"}"), "{text}");

    let merged = p.merged().unwrap();
    assert_eq!(merged["object"], "response");
    assert_eq!(
        merged["id"],
        "resp_68af4030592c81938ec0a5fbab4a3e9f05438e46b5f69a3b"
    );
    assert_eq!(merged["status"], "completed");
    assert_eq!(
        merged["output"][0]["summary"][0]["text"],
        "**Checking the weather**\n\nThe user asks about Paris."
    );
    assert_eq!(
        merged["output"][1]["content"][0]["text"],
        "Let me check — ünïcödé 😀."
    );
    let call = &merged["output"][2];
    assert_eq!(
        (
            call["call_id"].as_str(),
            call["name"].as_str(),
            call["arguments"].as_str()
        ),
        (
            Some("call_Wq3oXvD9yM2"),
            Some("get_weather"),
            Some("{\"city\":\"Paris\"}")
        )
    );
    assert_eq!(merged["usage"]["total_tokens"], 231);
}

#[test]
fn native_responses_incomplete_failed_and_error_events() {
    let incomplete = b"event: response.created\ndata: {\"type\":\"response.created\",\"sequence_number\":0,\"response\":{\"id\":\"resp_1\",\"status\":\"in_progress\",\"output\":[]}}\n\n\
event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"sequence_number\":1,\"item_id\":\"msg_1\",\"output_index\":0,\"content_index\":0,\"delta\":\"Par\",\"logprobs\":[]}\n\n\
event: response.incomplete\ndata: {\"type\":\"response.incomplete\",\"sequence_number\":2,\"response\":{\"id\":\"resp_1\",\"status\":\"incomplete\",\"incomplete_details\":{\"reason\":\"max_output_tokens\"},\"usage\":{\"input_tokens\":9,\"output_tokens\":16,\"total_tokens\":25}}}\n\n";
    let (out, p) = run(
        Protocol::Responses,
        Protocol::Responses,
        opts("m"),
        incomplete,
    );
    assert_eq!(out, incomplete);
    let merged = p.merged().unwrap();
    assert_eq!(merged["status"], "incomplete");
    assert_eq!(merged["incomplete_details"]["reason"], "max_output_tokens");
    assert_eq!(p.final_usage(0).output_tokens, 16);

    // A failed response: its error message is recorded; the usage is estimated.
    let failed = b"event: response.failed\ndata: {\"type\":\"response.failed\",\"sequence_number\":3,\"response\":{\"id\":\"resp_2\",\"status\":\"failed\",\"error\":{\"code\":\"server_error\",\"message\":\"The model crashed\"}}}\n\n";
    let (_, p) = run(Protocol::Responses, Protocol::Responses, opts("m"), failed);
    assert_eq!(p.merged().unwrap()["fastgate_error"], "The model crashed");
    assert!(p.final_usage(5).estimated);

    // Unknown event types are no error; a cut stream's terminal error continues the
    // upstream's sequence numbers.
    let input = fixture(NATIVE);
    let cut = input
        .windows(2)
        .enumerate()
        .filter(|(_, w)| w == b"\n\n")
        .nth(4)
        .unwrap()
        .0
        + 2;
    let mut p = stream_processor(Protocol::Responses, Protocol::Responses, opts("m"));
    let mut out = p
        .feed(b"event: response.queued_thing\ndata: {\"type\":\"response.queued_thing\"}\n\n")
        .unwrap()
        .to_vec();
    out.extend_from_slice(&p.feed(&input[..cut]).unwrap());
    out.extend_from_slice(&p.error_event("reset"));
    let evs = events(&out);
    let last: Value = serde_json::from_str(&evs.last().unwrap().data).unwrap();
    assert_eq!(last["type"], "error");
    assert_eq!(last["sequence_number"], 5);
    assert_eq!(last["message"], "reset");
}

#[test]
fn native_function_call_sent_whole_is_read_from_its_done_item() {
    let input = b"event: response.created\ndata: {\"type\":\"response.created\",\"sequence_number\":0,\"response\":{\"id\":\"resp_3\",\"status\":\"in_progress\",\"output\":[]}}\n\n\
event: response.output_item.added\ndata: {\"type\":\"response.output_item.added\",\"sequence_number\":1,\"output_index\":0,\"item\":{\"id\":\"fc_9\",\"type\":\"function_call\",\"status\":\"in_progress\",\"arguments\":\"\",\"call_id\":\"call_9\",\"name\":\"lookup\"}}\n\n\
event: response.output_item.done\ndata: {\"type\":\"response.output_item.done\",\"sequence_number\":2,\"output_index\":0,\"item\":{\"id\":\"fc_9\",\"type\":\"function_call\",\"status\":\"completed\",\"arguments\":\"{\\\"q\\\":1}\",\"call_id\":\"call_9\",\"name\":\"lookup\"}}\n\n\
event: response.completed\ndata: {\"type\":\"response.completed\",\"sequence_number\":3,\"response\":{\"id\":\"resp_3\",\"status\":\"completed\",\"usage\":{\"input_tokens\":3,\"output_tokens\":4,\"total_tokens\":7}}}\n\n";
    let (out, p) = run(Protocol::Responses, Protocol::Responses, opts("m"), input);
    assert_eq!(out, input);
    let merged = p.merged().unwrap();
    assert_eq!(
        merged["output"],
        json!([{"type": "function_call", "id": "fc_0", "call_id": "call_9", "name": "lookup",
            "arguments": "{\"q\":1}", "status": "completed"}])
    );
    assert_eq!(p.text_so_far(), "lookup{\"q\":1}");
}
