//! Request translation, driven by fixtures.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests and their helpers fail the test on error"
)]

mod common;

use common::{fixture, json};
use fastgate_llm::{LlmError, Protocol, RequestOptions, translate_request};
use serde_json::{Value, json};

const OPTS: RequestOptions = RequestOptions {
    upstream_model: "up-model",
    default_max_tokens: 4096,
    force_openai_stream_usage: true,
};

fn translate(
    from: Protocol,
    to: Protocol,
    body: &[u8],
) -> (Value, fastgate_llm::TranslatedRequest) {
    let tr = translate_request(from, to, body, &OPTS).unwrap();
    (serde_json::from_slice(&tr.body).unwrap(), tr)
}

#[test]
fn openai_to_anthropic_basic() {
    let (v, tr) = translate(
        Protocol::OpenAi,
        Protocol::Anthropic,
        &fixture("openai/request_basic.json"),
    );
    assert_eq!(tr.path, "/v1/messages");
    assert!(!tr.stream);
    assert_eq!(v["model"], "up-model");
    assert_eq!(
        v["max_tokens"], 4096,
        "Anthropic requires max_tokens: default applied"
    );
    assert_eq!(
        v["system"],
        json!([{"type":"text","text":"You are a terse assistant."},{"type":"text","text":"Answer in English."}])
    );
    let msgs = v["messages"].as_array().unwrap();
    assert_eq!(msgs.len(), 3, "consecutive user messages merged: {msgs:?}");
    assert_eq!(
        msgs[0],
        json!({"role":"user","content":"Name a prime number."})
    );
    assert_eq!(msgs[1], json!({"role":"assistant","content":"Seven."}));
    assert_eq!(
        msgs[2],
        json!({"role":"user","content":[{"type":"text","text":"Another one?"},{"type":"text","text":"Smaller than five."}]})
    );
    assert_eq!(v["temperature"], 1.0, "clamped to Anthropic's range");
    assert_eq!(v["top_p"], 0.9);
    assert_eq!(v["stop_sequences"], json!(["END"]));
    assert_eq!(v["metadata"], json!({"user_id":"user-42"}));
    assert!(v.get("seed").is_none());
}

#[test]
fn openai_to_anthropic_tools_images_results() {
    let (v, tr) = translate(
        Protocol::OpenAi,
        Protocol::Anthropic,
        &fixture("openai/request_tools.json"),
    );
    assert!(tr.stream);
    assert!(tr.client_wants_usage);
    assert_eq!(v["stream"], true);
    assert!(v.get("stream_options").is_none());
    assert_eq!(v["max_tokens"], 512);
    let msgs = v["messages"].as_array().unwrap();
    assert_eq!(msgs.len(), 3);
    let user0 = msgs[0]["content"].as_array().unwrap();
    assert_eq!(
        user0[1],
        json!({"type":"image","source":{"type":"url","url":"https://example.com/cat.png"}})
    );
    assert_eq!(
        user0[2],
        json!({"type":"image","source":{"type":"base64","media_type":"image/jpeg","data":"/9j/4AAQSkZJRg=="}})
    );
    assert_eq!(
        msgs[1]["content"],
        json!([
            {"type":"tool_use","id":"call_a1","name":"get_weather","input":{"city":"Paris"}},
            {"type":"tool_use","id":"call_b2","name":"get_weather","input":{"city":"Oslo"}}
        ])
    );
    // Two tool messages + the following user message: one user turn, results first.
    assert_eq!(
        msgs[2]["content"],
        json!([
            {"type":"tool_result","tool_use_id":"call_a1","content":"{\"temp_c\":18}"},
            {"type":"tool_result","tool_use_id":"call_b2","content":"{\"temp_c\":9}"},
            {"type":"text","text":"Thanks. Summarise."}
        ])
    );
    assert_eq!(v["tools"][0]["name"], "get_weather");
    assert_eq!(v["tools"][0]["input_schema"]["required"], json!(["city"]));
    assert_eq!(
        v["tools"][1]["input_schema"],
        json!({"type":"object","properties":{}})
    );
    assert_eq!(
        v["tool_choice"],
        json!({"type":"tool","name":"get_weather","disable_parallel_tool_use":true})
    );
}

#[test]
fn openai_tool_choice_modes_map_to_anthropic() {
    for (oa, an) in [("auto", "auto"), ("none", "none"), ("required", "any")] {
        let body = json!({"messages":[{"role":"user","content":"hi"}],
            "tools":[{"type":"function","function":{"name":"f"}}], "tool_choice": oa});
        let (v, _) = translate(
            Protocol::OpenAi,
            Protocol::Anthropic,
            body.to_string().as_bytes(),
        );
        assert_eq!(v["tool_choice"]["type"], an);
    }
}

#[test]
fn openai_to_anthropic_rejects_what_it_cannot_carry() {
    let n2 = json!({"messages":[{"role":"user","content":"hi"}],"n":2});
    let audio = json!({"messages":[{"role":"user","content":[{"type":"input_audio","input_audio":{"data":"AA==","format":"wav"}}]}]});
    let empty = json!({"messages":[{"role":"system","content":"only system"}]});
    for (body, unsupported) in [(n2, true), (audio, true), (empty, false)] {
        let err = translate_request(
            Protocol::OpenAi,
            Protocol::Anthropic,
            body.to_string().as_bytes(),
            &OPTS,
        )
        .unwrap_err();
        assert_eq!(
            matches!(err, LlmError::Unsupported(_)),
            unsupported,
            "{err}"
        );
    }
    let bad =
        translate_request(Protocol::OpenAi, Protocol::Anthropic, b"{not json", &OPTS).unwrap_err();
    assert!(matches!(bad, LlmError::InvalidJson(_)));
}

#[test]
fn broken_tool_arguments_are_kept_not_fatal() {
    let body = json!({"messages":[{"role":"user","content":"hi"},
        {"role":"assistant","tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"{oops"}}]},
        {"role":"tool","tool_call_id":"c","content":"ok"}]});
    let (v, _) = translate(
        Protocol::OpenAi,
        Protocol::Anthropic,
        body.to_string().as_bytes(),
    );
    assert_eq!(
        v["messages"][1]["content"][0]["input"],
        json!({"_raw_arguments":"{oops"})
    );
}

#[test]
fn anthropic_to_openai_basic() {
    let (v, tr) = translate(
        Protocol::Anthropic,
        Protocol::OpenAi,
        &fixture("anthropic/request_basic.json"),
    );
    assert_eq!(tr.path, "/v1/chat/completions");
    assert_eq!(v["model"], "up-model");
    assert_eq!(v["max_tokens"], 1024);
    let msgs = v["messages"].as_array().unwrap();
    assert_eq!(
        msgs[0],
        json!({"role":"system","content":"You are a helpful geologist.\nKeep answers short."})
    );
    assert_eq!(
        msgs[1],
        json!({"role":"user","content":"Why is the sky blue?"})
    );
    assert_eq!(
        msgs[2]["content"], "Rayleigh scattering.",
        "thinking dropped"
    );
    assert_eq!(
        msgs[3]["content"],
        json!([
            {"type":"text","text":"And what is this rock?"},
            {"type":"image_url","image_url":{"url":"data:image/png;base64,iVBORw0KGgo="}},
            {"type":"image_url","image_url":{"url":"https://example.com/rock.jpg"}}
        ])
    );
    assert_eq!(v["stop"], json!(["\n\nHuman:"]));
    assert_eq!(v["temperature"], 0.5);
    assert_eq!(v["user"], "u-1");
    assert!(v.get("top_k").is_none() && v.get("thinking").is_none());
}

#[test]
fn anthropic_to_openai_tools_and_results() {
    let (v, tr) = translate(
        Protocol::Anthropic,
        Protocol::OpenAi,
        &fixture("anthropic/request_tools.json"),
    );
    assert!(tr.stream);
    assert_eq!(v["stream_options"], json!({"include_usage": true}));
    let msgs = v["messages"].as_array().unwrap();
    assert_eq!(msgs[1]["content"], "Let me check.");
    assert_eq!(
        msgs[1]["tool_calls"],
        json!([
            {"id":"toolu_01","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}},
            {"id":"toolu_02","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Oslo\"}"}}
        ])
    );
    assert_eq!(
        msgs[2],
        json!({"role":"tool","content":"18C and sunny","tool_call_id":"toolu_01"})
    );
    assert_eq!(
        msgs[3],
        json!({"role":"tool","content":"9C, rain","tool_call_id":"toolu_02"})
    );
    assert_eq!(msgs[4], json!({"role":"user","content":"Which is warmer?"}));
    assert_eq!(
        v["tools"][0]["function"]["parameters"]["required"],
        json!(["city"])
    );
    assert_eq!(v["tool_choice"], "required");
    assert_eq!(v["parallel_tool_calls"], false);
}

#[test]
fn anthropic_to_openai_reasoning_models_use_max_completion_tokens() {
    let body = fixture("anthropic/request_basic.json");
    let opts = RequestOptions {
        upstream_model: "o3-mini",
        ..OPTS
    };
    let tr = translate_request(Protocol::Anthropic, Protocol::OpenAi, &body, &opts).unwrap();
    let v: Value = serde_json::from_slice(&tr.body).unwrap();
    assert_eq!(v["max_completion_tokens"], 1024);
    assert!(v.get("max_tokens").is_none());
}

#[test]
fn anthropic_server_tools_are_unsupported_on_openai() {
    let body = json!({"max_tokens":10,"messages":[{"role":"user","content":"hi"}],
        "tools":[{"type":"web_search_20250305","name":"web_search"}]});
    let err = translate_request(
        Protocol::Anthropic,
        Protocol::OpenAi,
        body.to_string().as_bytes(),
        &OPTS,
    )
    .unwrap_err();
    assert!(matches!(err, LlmError::Unsupported(_)));
}

#[test]
fn same_protocol_only_rewrites_model_and_forces_usage() {
    let body = json!({"model":"public","stream":true,"messages":[{"role":"user","content":"hi"}],"x_custom":{"a":1}});
    let (v, tr) = translate(
        Protocol::OpenAi,
        Protocol::OpenAi,
        body.to_string().as_bytes(),
    );
    assert_eq!(v["model"], "up-model");
    assert_eq!(v["stream_options"], json!({"include_usage": true}));
    assert_eq!(v["x_custom"], json!({"a":1}), "unknown fields kept");
    assert!(tr.stream && !tr.client_wants_usage);

    let no_force = RequestOptions {
        force_openai_stream_usage: false,
        ..OPTS
    };
    let tr = translate_request(
        Protocol::OpenAi,
        Protocol::OpenAi,
        body.to_string().as_bytes(),
        &no_force,
    )
    .unwrap();
    let v: Value = serde_json::from_slice(&tr.body).unwrap();
    assert!(v.get("stream_options").is_none());

    let asked =
        json!({"model":"m","stream":true,"stream_options":{"include_usage":true},"messages":[]});
    let (_, tr) = translate(
        Protocol::OpenAi,
        Protocol::OpenAi,
        asked.to_string().as_bytes(),
    );
    assert!(tr.client_wants_usage);

    let an = fixture("anthropic/request_tools.json");
    let (v, tr) = translate(Protocol::Anthropic, Protocol::Anthropic, &an);
    let mut orig = json("anthropic/request_tools.json");
    orig["model"] = "up-model".into();
    assert_eq!(v, orig);
    assert_eq!(tr.path, "/v1/messages");
}

#[test]
fn openai_to_gemini_request() {
    let (v, tr) = translate(
        Protocol::OpenAi,
        Protocol::Gemini,
        &fixture("openai/request_tools.json"),
    );
    assert!(tr.stream);
    assert_eq!(
        tr.path,
        "/v1beta/models/up-model:streamGenerateContent?alt=sse"
    );
    let contents = v["contents"].as_array().unwrap();
    assert_eq!(contents[0]["role"], "user");
    assert_eq!(
        contents[0]["parts"][1],
        json!({"fileData":{"mimeType":"image/png","fileUri":"https://example.com/cat.png"}})
    );
    assert_eq!(
        contents[0]["parts"][2],
        json!({"inlineData":{"mimeType":"image/jpeg","data":"/9j/4AAQSkZJRg=="}})
    );
    assert_eq!(contents[1]["role"], "model");
    assert_eq!(
        contents[1]["parts"][0],
        json!({"functionCall":{"name":"get_weather","args":{"city":"Paris"}}})
    );
    assert_eq!(contents[2]["role"], "user");
    assert_eq!(
        contents[2]["parts"][0],
        json!({"functionResponse":{"name":"get_weather","response":{"temp_c":18}}})
    );
    assert_eq!(
        contents[2]["parts"][2],
        json!({"text":"Thanks. Summarise."})
    );
    let decl = &v["tools"][0]["functionDeclarations"][0];
    assert!(decl["parameters"].get("additionalProperties").is_none());
    assert_eq!(
        v["toolConfig"],
        json!({"functionCallingConfig":{"mode":"ANY","allowedFunctionNames":["get_weather"]}})
    );
    assert_eq!(v["generationConfig"]["maxOutputTokens"], 512);

    let (v, tr) = translate(
        Protocol::OpenAi,
        Protocol::Gemini,
        &fixture("openai/request_basic.json"),
    );
    assert_eq!(tr.path, "/v1beta/models/up-model:generateContent");
    assert_eq!(
        v["systemInstruction"],
        json!({"parts":[{"text":"You are a terse assistant."},{"text":"Answer in English."}]})
    );
    assert_eq!(v["generationConfig"]["temperature"], 1.4);
    assert_eq!(v["generationConfig"]["stopSequences"], json!(["END"]));
    assert_eq!(v["contents"].as_array().unwrap().len(), 3);
}

#[test]
fn unsupported_pairs() {
    // Anthropic -> Gemini is translated now (tests/anthropic_gemini.rs).
    let body = fixture("anthropic/request_basic.json");
    let tr = translate_request(Protocol::Anthropic, Protocol::Gemini, &body, &OPTS).unwrap();
    assert_eq!(tr.path, "/v1beta/models/up-model:generateContent");
    // Gemini clients are translated now; a body without `contents` is refused.
    assert!(translate_request(Protocol::Gemini, Protocol::OpenAi, b"{}", &OPTS).is_err());
}

#[test]
fn gemini_client_to_openai_and_anthropic() {
    let body = br#"{"systemInstruction":{"parts":[{"text":"terse"}]},
        "contents":[{"role":"user","parts":[{"text":"hi"}]}],
        "generationConfig":{"maxOutputTokens":12,"temperature":1.6}}"#;
    let tr = translate_request(Protocol::Gemini, Protocol::OpenAi, body, &OPTS).unwrap();
    assert_eq!(tr.path, "/v1/chat/completions");
    let v: Value = serde_json::from_slice(&tr.body).unwrap();
    assert_eq!(v["model"], "up-model");
    assert_eq!(v["messages"][0], json!({"role":"system","content":"terse"}));
    assert_eq!(v["max_tokens"], 12);
    let tr = translate_request(Protocol::Gemini, Protocol::Anthropic, body, &OPTS).unwrap();
    assert_eq!(tr.path, "/v1/messages");
    let v: Value = serde_json::from_slice(&tr.body).unwrap();
    assert_eq!(v["system"], "terse");
    assert_eq!(v["max_tokens"], 12);
    assert_eq!(v["temperature"], 1.0, "clamped for Anthropic");
    assert_eq!(v["messages"][0]["role"], "user");
}

#[test]
fn gemini_passthrough_keeps_body() {
    let body = br#"{"contents":[{"parts":[{"text":"hi"}]}]}"#;
    let tr = translate_request(Protocol::Gemini, Protocol::Gemini, body, &OPTS).unwrap();
    assert_eq!(tr.body, body.to_vec());
    assert_eq!(
        fastgate_llm::gemini_path("models/g-1", true),
        "/v1beta/models/g-1:streamGenerateContent?alt=sse"
    );
}

#[test]
fn empty_texts_are_not_sent_to_anthropic() {
    let body = json!({"messages":[{"role":"system","content":""},{"role":"user","content":""},
        {"role":"user","content":[{"type":"text","text":""},{"type":"text","text":"hi"}]}]});
    let (v, _) = translate(
        Protocol::OpenAi,
        Protocol::Anthropic,
        body.to_string().as_bytes(),
    );
    assert!(v.get("system").is_none());
    assert_eq!(v["messages"], json!([{"role":"user","content":"hi"}]));
}

#[test]
fn count_tokens_estimate_shape() {
    let v = fastgate_llm::anthropic_count_tokens(&fixture("anthropic/request_basic.json"));
    let n = v["input_tokens"].as_u64().unwrap();
    assert!(n > 2 * 768, "{n}");
}
