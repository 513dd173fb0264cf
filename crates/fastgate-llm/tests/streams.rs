//! Stream translation and passthrough, driven by recorded transcripts.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests and their helpers fail the test on error"
)]

mod common;

use common::{datas, events, fixture, opts, run, run_split};
use fastgate_llm::{Protocol, StreamOptions, stream_processor};
use serde_json::{Value, json};

fn no_usage(model: &str) -> StreamOptions {
    StreamOptions {
        strip_usage_chunk: true,
        ..opts(model)
    }
}

/// OpenAI chunk deltas (choices[0].delta) in order, plus finish reasons and usage.
fn deltas(out: &[u8]) -> Vec<Value> {
    datas(out)
        .into_iter()
        .map(|d| match d.get("choices").and_then(|c| c.get(0)) {
            Some(c) if !c["finish_reason"].is_null() => json!({"finish": c["finish_reason"]}),
            Some(c) => c["delta"].clone(),
            None => d.get("usage").map(|u| json!({"usage": u})).unwrap_or(d),
        })
        .collect()
}

#[test]
fn anthropic_text_stream_to_openai() {
    let (out, p) = run(
        Protocol::Anthropic,
        Protocol::OpenAi,
        opts("pub"),
        &fixture("anthropic/stream_text.sse"),
    );
    assert_eq!(
        deltas(&out),
        vec![
            json!({"role":"assistant","content":""}),
            json!({"content":"Hello"}),
            json!({"content":"! Ça va? 😀"}),
            json!({"finish":"stop"}),
            json!({"usage":{"prompt_tokens":325,"completion_tokens":12,"total_tokens":337,"prompt_tokens_details":{"cached_tokens":300}}}),
            json!("[DONE]"),
        ]
    );
    let first = &datas(&out)[0];
    assert_eq!(first["object"], "chat.completion.chunk");
    assert_eq!(first["model"], "pub");
    assert_eq!(first["id"], "msg_S1");
    let u = p.usage().unwrap();
    assert_eq!(
        (u.input_tokens, u.cached_input_tokens, u.output_tokens),
        (325, 300, 12)
    );
    assert_eq!(p.text_so_far(), "Hello! Ça va? 😀");
    let m = p.merged().unwrap();
    assert_eq!(m["choices"][0]["message"]["content"], "Hello! Ça va? 😀");
    assert_eq!(m["choices"][0]["finish_reason"], "stop");
    assert_eq!(m["usage"]["prompt_tokens"], 325);
}

#[test]
fn anthropic_tool_stream_to_openai() {
    let (out, p) = run(
        Protocol::Anthropic,
        Protocol::OpenAi,
        no_usage("pub"),
        &fixture("anthropic/stream_tool_use.sse"),
    );
    assert_eq!(
        deltas(&out),
        vec![
            json!({"role":"assistant","content":""}),
            json!({"reasoning_content":"Need the weather tool."}),
            json!({"content":"Checking."}),
            json!({"tool_calls":[{"index":0,"id":"toolu_01T","type":"function","function":{"name":"get_weather","arguments":""}}]}),
            json!({"tool_calls":[{"index":0,"function":{"arguments":"{\"city\": \"San"}}]}),
            json!({"tool_calls":[{"index":0,"function":{"arguments":" Francisco\"}"}}]}),
            json!({"tool_calls":[{"index":1,"id":"toolu_02T","type":"function","function":{"name":"get_time","arguments":""}}]}),
            json!({"tool_calls":[{"index":1,"function":{"arguments":"{}"}}]}),
            json!({"finish":"tool_calls"}),
            json!("[DONE]"),
        ],
        "no usage chunk: the client did not ask"
    );
    assert_eq!(p.usage().unwrap().output_tokens, 89, "usage still recorded");
    let m = p.merged().unwrap();
    let calls = &m["choices"][0]["message"]["tool_calls"];
    assert_eq!(
        calls[0]["function"]["arguments"],
        "{\"city\": \"San Francisco\"}"
    );
    assert_eq!(calls[1]["function"]["name"], "get_time");
    assert_eq!(
        m["choices"][0]["message"]["reasoning_content"],
        "Need the weather tool."
    );
}

#[test]
fn anthropic_error_event_to_openai() {
    let (out, p) = run(
        Protocol::Anthropic,
        Protocol::OpenAi,
        opts("pub"),
        &fixture("anthropic/stream_error.sse"),
    );
    let d = datas(&out);
    assert_eq!(
        d.last().unwrap(),
        &json!({"error":{"message":"Overloaded","type":"server_error","param":null,"code":"overloaded"}})
    );
    assert!(!String::from_utf8_lossy(&out).contains("[DONE]"));
    assert!(p.usage().is_none());
    let u = p.final_usage(999);
    assert!(u.estimated);
    assert_eq!(u.input_tokens, 10, "input from message_start");
    assert!(u.output_tokens >= 1);
    assert_eq!(p.merged().unwrap()["fastgate_error"], "Overloaded");
}

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
fn openai_text_stream_to_anthropic() {
    let (out, p) = run(
        Protocol::OpenAi,
        Protocol::Anthropic,
        opts("claude-pub"),
        &fixture("openai/stream_text.sse"),
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
    assert_eq!(ev[0].1["message"]["model"], "claude-pub");
    assert_eq!(ev[0].1["message"]["role"], "assistant");
    assert_eq!(ev[1].1["content_block"], json!({"type":"text","text":""}));
    assert_eq!(
        ev[2].1["delta"],
        json!({"type":"text_delta","text":"Hello"})
    );
    assert_eq!(ev[3].1["delta"]["text"], " there, ünïcödé 😀");
    assert_eq!(
        ev[5].1["delta"],
        json!({"stop_reason":"end_turn","stop_sequence":null})
    );
    assert_eq!(
        ev[5].1["usage"],
        json!({"input_tokens":18,"output_tokens":5,"cache_creation_input_tokens":0,"cache_read_input_tokens":12})
    );
    let u = p.usage().unwrap();
    assert_eq!((u.input_tokens, u.cached_input_tokens), (30, 12));
    let m = p.merged().unwrap();
    assert_eq!(
        m["content"],
        json!([{"type":"text","text":"Hello there, ünïcödé 😀"}])
    );
    assert_eq!(m["stop_reason"], "end_turn");
}

#[test]
fn openai_tool_stream_to_anthropic() {
    let (out, p) = run(
        Protocol::OpenAi,
        Protocol::Anthropic,
        opts("c"),
        &fixture("openai/stream_tool_calls.sse"),
    );
    let ev = anthropic_events(&out);
    let compact: Vec<Value> = ev
        .iter()
        .skip(1)
        .map(|(n, v)| match n.as_str() {
            "content_block_start" => json!({"start": v["index"], "block": v["content_block"]}),
            "content_block_delta" => json!({"delta": v["index"], "json": v["delta"]["partial_json"]}),
            "content_block_stop" => json!({"stop": v["index"]}),
            "message_delta" => json!({"stop_reason": v["delta"]["stop_reason"], "out": v["usage"]["output_tokens"]}),
            _ => json!(n),
        })
        .collect();
    assert_eq!(
        compact,
        vec![
            json!({"start":0,"block":{"type":"tool_use","id":"call_p","name":"get_weather","input":{}}}),
            json!({"delta":0,"json":"{\"ci"}),
            json!({"delta":0,"json":"ty\":\"Paris\"}"}),
            json!({"stop":0}),
            json!({"start":1,"block":{"type":"tool_use","id":"call_q","name":"get_weather","input":{}}}),
            json!({"delta":1,"json":"{\"city\":\"Oslo\"}"}),
            json!({"stop":1}),
            json!({"stop_reason":"tool_use","out":33}),
            json!("message_stop"),
        ]
    );
    let m = p.merged().unwrap();
    assert_eq!(m["content"][0]["input"], json!({"city":"Paris"}));
    assert_eq!(m["content"][1]["input"], json!({"city":"Oslo"}));
    assert_eq!(m["stop_reason"], "tool_use");
}

#[test]
fn gemini_streams_to_openai() {
    let (out, p) = run(
        Protocol::Gemini,
        Protocol::OpenAi,
        opts("g"),
        &fixture("gemini/stream_text.sse"),
    );
    assert_eq!(
        deltas(&out),
        vec![
            json!({"role":"assistant","content":""}),
            json!({"content":"The quick"}),
            json!({"content":" brown fox"}),
            json!({"content":" jumps."}),
            json!({"finish":"stop"}),
            json!({"usage":{"prompt_tokens":9,"completion_tokens":7,"total_tokens":16,"prompt_tokens_details":{"cached_tokens":0}}}),
            json!("[DONE]"),
        ]
    );
    assert_eq!(p.usage().unwrap().output_tokens, 7);

    let (out, _) = run(
        Protocol::Gemini,
        Protocol::OpenAi,
        no_usage("g"),
        &fixture("gemini/stream_function_call.sse"),
    );
    assert_eq!(
        deltas(&out),
        vec![
            json!({"role":"assistant","content":""}),
            json!({"content":"Let me check."}),
            json!({"tool_calls":[{"index":0,"id":"call_0","type":"function","function":{"name":"get_weather","arguments":""}}]}),
            json!({"tool_calls":[{"index":0,"function":{"arguments":"{\"city\":\"Paris\"}"}}]}),
            json!({"tool_calls":[{"index":1,"id":"call_1","type":"function","function":{"name":"get_weather","arguments":""}}]}),
            json!({"tool_calls":[{"index":1,"function":{"arguments":"{\"city\":\"Oslo\"}"}}]}),
            json!({"finish":"tool_calls"}),
            json!("[DONE]"),
        ]
    );
}

#[test]
fn upstream_reset_gives_terminal_error_not_done() {
    let input = fixture("anthropic/stream_text.sse");
    let mut p = stream_processor(Protocol::Anthropic, Protocol::OpenAi, opts("m"));
    let mut out = p.feed(&input[..input.len() / 2]).unwrap().to_vec();
    out.extend_from_slice(&p.error_event("upstream connection reset"));
    let d = datas(&out);
    assert_eq!(
        d.last().unwrap()["error"]["message"],
        "upstream connection reset"
    );
    assert!(!d.contains(&json!("[DONE]")));
    assert!(
        p.feed(b"data: {}\n\n").unwrap().is_empty(),
        "nothing after the terminal event"
    );
    let u = p.final_usage(50);
    assert!(u.estimated);

    let mut p = stream_processor(Protocol::OpenAi, Protocol::Anthropic, opts("m"));
    let _ = p.feed(&fixture("openai/stream_text.sse")[..200]).unwrap();
    let ev = events(&p.error_event("reset"));
    assert_eq!(ev.last().unwrap().event.as_deref(), Some("error"));
    let v: Value = serde_json::from_str(&ev.last().unwrap().data).unwrap();
    assert_eq!(
        v,
        json!({"type":"error","error":{"type":"api_error","message":"reset"}})
    );
}

#[test]
fn clean_end_without_finish_is_an_error_not_a_fake_stop() {
    // The upstream closes cleanly after two text chunks: no finish_reason, no [DONE].
    let input = fixture("openai/stream_text.sse");
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
        Protocol::Anthropic,
        opts("m"),
        &input[..cut],
    );
    let names: Vec<String> = events(&out).into_iter().map(|e| e.event.unwrap()).collect();
    assert_eq!(names.last().unwrap(), "error");
    assert!(!names.contains(&"message_stop".to_string()));
}

#[test]
fn openai_passthrough_strips_exactly_the_usage_chunk() {
    let input = fixture("openai/stream_text.sse");
    let (out, p) = run(Protocol::OpenAi, Protocol::OpenAi, no_usage("m"), &input);
    let usage_event = input
        .split(|b| *b == b'\n')
        .find(|l| l.starts_with(b"data: {") && l.windows(14).any(|w| w == b"\"choices\":[],\""))
        .unwrap();
    let mut expected = Vec::new();
    for frame in input
        .split_inclusive(|b| *b == b'\n')
        .collect::<Vec<_>>()
        .chunks(2)
    {
        if frame[0].strip_suffix(b"\n") != Some(usage_event) {
            expected.extend(frame.concat());
        }
    }
    assert_eq!(
        String::from_utf8(out).unwrap(),
        String::from_utf8(expected).unwrap()
    );
    let u = p.usage().unwrap();
    assert_eq!(
        (u.input_tokens, u.cached_input_tokens, u.output_tokens),
        (30, 12, 5)
    );
    assert!(!p.passthrough_unchanged());

    // Without stripping: byte-for-byte the input, and usage still read.
    let (out, p) = run(Protocol::OpenAi, Protocol::OpenAi, opts("m"), &input);
    assert_eq!(out, input);
    assert!(p.passthrough_unchanged());
    assert_eq!(p.usage().unwrap().output_tokens, 5);
    assert_eq!(
        p.merged().unwrap()["choices"][0]["message"]["content"],
        "Hello there, ünïcödé 😀"
    );
}

#[test]
fn anthropic_and_gemini_passthrough_are_unchanged() {
    let input = fixture("anthropic/stream_tool_use.sse");
    let (out, p) = run(Protocol::Anthropic, Protocol::Anthropic, opts("m"), &input);
    assert_eq!(out, input, "thinking blocks untouched");
    let u = p.usage().unwrap();
    assert_eq!((u.input_tokens, u.output_tokens), (472, 89));
    let m = p.merged().unwrap();
    assert_eq!(
        m["content"][0],
        json!({"type":"thinking","thinking":"Need the weather tool.","signature":"EqQBCgIYAhIM1gbcDa9GJwZA"})
    );
    assert_eq!(m["content"][2]["input"], json!({"city":"San Francisco"}));
    assert_eq!(m["stop_reason"], "tool_use");

    let input = fixture("gemini/stream_text.sse");
    let mut p = stream_processor(Protocol::Gemini, Protocol::Gemini, opts("g"));
    for c in input.chunks(7) {
        p.observe(c).unwrap();
    }
    assert!(p.finish().unwrap().is_empty());
    assert_eq!(p.usage().unwrap().output_tokens, 7);
    assert_eq!(
        p.merged().unwrap()["candidates"][0]["content"]["parts"][0]["text"],
        "The quick brown fox jumps."
    );
}

#[test]
fn missing_usage_is_estimated() {
    // An OpenAI-compatible upstream that ignores include_usage.
    let input: Vec<u8> = fixture("openai/stream_text.sse")
        .split_inclusive(|b| *b == b'\n')
        .filter(|l| !l.windows(13).any(|w| w == b"\"choices\":[],"))
        .flatten()
        .copied()
        .collect();
    let (out, p) = run(Protocol::OpenAi, Protocol::Anthropic, opts("m"), &input);
    assert!(p.usage().is_none());
    let u = p.final_usage(40);
    assert!(u.estimated);
    assert_eq!(u.input_tokens, 40);
    assert!(u.output_tokens > 0);
    let ev = events(&out);
    assert_eq!(ev.last().unwrap().event.as_deref(), Some("message_stop"));
}

/// `created` differs between processors made in different seconds; nothing else may.
fn normalize(out: &[u8]) -> String {
    let s = String::from_utf8_lossy(out);
    let mut r = String::new();
    let mut rest: &str = &s;
    while let Some(i) = rest.find("\"created\":") {
        r.push_str(&rest[..i + 10]);
        rest = rest[i + 10..].trim_start_matches(|c: char| c.is_ascii_digit());
        r.push('0');
    }
    r.push_str(rest);
    r
}

const PAIRS: &[(Protocol, Protocol, &str)] = &[
    (
        Protocol::Anthropic,
        Protocol::OpenAi,
        "anthropic/stream_text.sse",
    ),
    (
        Protocol::Anthropic,
        Protocol::OpenAi,
        "anthropic/stream_tool_use.sse",
    ),
    (
        Protocol::Anthropic,
        Protocol::OpenAi,
        "anthropic/stream_error.sse",
    ),
    (
        Protocol::OpenAi,
        Protocol::Anthropic,
        "openai/stream_text.sse",
    ),
    (
        Protocol::OpenAi,
        Protocol::Anthropic,
        "openai/stream_tool_calls.sse",
    ),
    (Protocol::Gemini, Protocol::OpenAi, "gemini/stream_text.sse"),
    (
        Protocol::Gemini,
        Protocol::OpenAi,
        "gemini/stream_function_call.sse",
    ),
    (Protocol::OpenAi, Protocol::OpenAi, "openai/stream_text.sse"),
    (
        Protocol::Anthropic,
        Protocol::Anthropic,
        "anthropic/stream_tool_use.sse",
    ),
];

#[test]
fn every_two_way_split_gives_identical_output() {
    for (up, client, path) in PAIRS {
        let input = fixture(path);
        for strip in [false, true] {
            let o = StreamOptions {
                strip_usage_chunk: strip,
                ..opts("m")
            };
            let whole = normalize(&run(*up, *client, o.clone(), &input).0);
            for cut in 0..=input.len() {
                let mut p = stream_processor(*up, *client, o.clone());
                let split = normalize(&run_split(p.as_mut(), &input, &[cut]));
                assert_eq!(
                    split, whole,
                    "{path} {up:?}->{client:?} strip={strip} cut={cut}"
                );
            }
        }
    }
}

#[test]
fn oversized_event_is_a_deterministic_error() {
    let mut input = fixture("anthropic/stream_text.sse");
    let big = format!(
        "event: content_block_delta\ndata: {{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{{\"type\":\"text_delta\",\"text\":\"{}\"}}}}\n\n",
        "x".repeat(3000)
    );
    let at = input.windows(2).position(|w| w == b"\n\n").unwrap() + 2;
    input.splice(at..at, big.into_bytes());
    let o = StreamOptions {
        max_event_bytes: 1024,
        ..opts("m")
    };
    let whole = normalize(&run(Protocol::Anthropic, Protocol::OpenAi, o.clone(), &input).0);
    let last = datas(whole.as_bytes()).pop().unwrap();
    assert!(
        last["error"]["message"]
            .as_str()
            .unwrap()
            .contains("exceeds 1024 bytes"),
        "{last}"
    );
    for cut in (0..input.len()).step_by(97) {
        let mut p = stream_processor(Protocol::Anthropic, Protocol::OpenAi, o.clone());
        assert_eq!(
            normalize(&run_split(p.as_mut(), &input, &[cut, cut + 500])),
            whole
        );
    }
}

#[test]
fn bad_utf8_is_replaced_deterministically() {
    let mut input = fixture("anthropic/stream_text.sse");
    let pos = input.windows(5).position(|w| w == b"Hello").unwrap();
    input[pos + 1] = 0xFF; // "H\xFFllo"
    let (out, p) = run(Protocol::Anthropic, Protocol::OpenAi, opts("m"), &input);
    assert!(p.text_so_far().starts_with("H\u{FFFD}llo"));
    let whole = normalize(&out);
    for cut in 0..input.len() {
        let mut p = stream_processor(Protocol::Anthropic, Protocol::OpenAi, opts("m"));
        assert_eq!(normalize(&run_split(p.as_mut(), &input, &[cut])), whole);
    }
}

#[test]
fn malformed_json_event_fails_translation_but_not_passthrough() {
    let input = b"event: message_start\ndata: {not json\n\n";
    let (out, _) = run(Protocol::Anthropic, Protocol::OpenAi, opts("m"), input);
    assert!(
        datas(&out).last().unwrap()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("bad upstream event")
    );
    let (out, _) = run(Protocol::Anthropic, Protocol::Anthropic, opts("m"), input);
    assert_eq!(out, input.to_vec());
}

mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn random_splits_give_identical_output(pair in 0..PAIRS.len(), cuts in proptest::collection::vec(0usize..4000, 0..12)) {
            let (up, client, path) = PAIRS[pair];
            let input = fixture(path);
            let whole = normalize(&run(up, client, opts("m"), &input).0);
            let mut p = stream_processor(up, client, opts("m"));
            prop_assert_eq!(normalize(&run_split(p.as_mut(), &input, &cuts)), whole);
        }

        #[test]
        fn arbitrary_bytes_never_panic(pair in 0..PAIRS.len(), data in proptest::collection::vec(any::<u8>(), 0..600), cut in 0usize..600) {
            let (up, client, _) = PAIRS[pair];
            let o = StreamOptions { max_event_bytes: 64, ..opts("m") };
            let mut a = stream_processor(up, client, o.clone());
            let whole = normalize(&run_split(a.as_mut(), &data, &[]));
            let mut b = stream_processor(up, client, o);
            let split = normalize(&run_split(b.as_mut(), &data, &[cut]));
            if up != client {
                prop_assert_eq!(split, whole);
            } else {
                // Unchanged passthrough forwards chunks as they come: identical to the input
                // unless an event broke the bound, then it ends with one error event.
                for out in [&split, &whole] {
                    let ok = **out == normalize(&data)
                        || (out.contains("exceeds 64 bytes") && out.ends_with("}\n\n"));
                    prop_assert!(ok, "{:?}", out);
                }
            }
        }
    }
}

#[test]
fn interleaved_openai_tool_calls_keep_their_block_index() {
    let chunk = |delta: Value| {
        format!(
            "data: {}\n\n",
            json!({"id":"c","choices":[{"index":0,"delta":delta,"finish_reason":null}]})
        )
    };
    let mut input = String::new();
    input +=
        &chunk(json!({"tool_calls":[{"index":0,"id":"a","function":{"name":"f","arguments":""}}]}));
    input += &chunk(
        json!({"tool_calls":[{"index":1,"id":"b","function":{"name":"g","arguments":"{}"}}]}),
    );
    input += &chunk(json!({"tool_calls":[{"index":0,"function":{"arguments":"{\"x\":1}"}}]}));
    // A server that repeats id/name on every delta must not open a new block.
    input +=
        &chunk(json!({"tool_calls":[{"index":0,"id":"a","function":{"name":"f","arguments":""}}]}));
    input += "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"tool_calls\"}]}\n\ndata: [DONE]\n\n";
    let (out, p) = run(
        Protocol::OpenAi,
        Protocol::Anthropic,
        opts("m"),
        input.as_bytes(),
    );
    let deltas: Vec<(u64, String)> = events(&out)
        .into_iter()
        .filter(|e| e.event.as_deref() == Some("content_block_delta"))
        .map(|e| {
            let v: Value = serde_json::from_str(&e.data).unwrap();
            (
                v["index"].as_u64().unwrap(),
                v["delta"]["partial_json"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        deltas,
        vec![(1, "{}".to_owned()), (0, "{\"x\":1}".to_owned())]
    );
    let starts = events(&out)
        .iter()
        .filter(|e| e.event.as_deref() == Some("content_block_start"))
        .count();
    assert_eq!(starts, 2);
    let m = p.merged().unwrap();
    assert_eq!(m["content"][0]["input"], json!({"x":1}));
}

#[test]
fn merge_is_optional_and_unsupported_pairs_fail_cleanly() {
    let o = StreamOptions {
        collect_merge: false,
        ..opts("m")
    };
    let (_, p) = run(
        Protocol::Anthropic,
        Protocol::OpenAi,
        o,
        &fixture("anthropic/stream_text.sse"),
    );
    assert!(p.merged().is_none());
    assert!(p.usage().is_some());

    // Gemini -> Anthropic is translated now (tests/anthropic_gemini.rs); a failure still
    // ends the stream with one Anthropic error event.
    let mut p = stream_processor(Protocol::Gemini, Protocol::Anthropic, opts("m"));
    assert!(p.feed(b"data: {}\n\n").is_ok());
    let ev = events(&p.error_event("upstream reset"));
    assert_eq!(ev.last().unwrap().event.as_deref(), Some("error"));
}

#[test]
fn stream_error_event_helper() {
    let b = fastgate_llm::stream_error_event(Protocol::OpenAi, "boom");
    assert_eq!(
        datas(&b),
        vec![json!({"error":{"message":"boom","type":"server_error","param":null,"code":null}})]
    );
}
