//! OpenAI Responses API clients: requests to OpenAI chat / Anthropic / Gemini upstreams
//! and refusals. (Responses, usage and estimates: `responses_api_output.rs`.)
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests and their helpers fail the test on error"
)]

mod common;
mod responses_support;

use common::json;
use fastgate_llm::Protocol;
use responses_support::{invalid_request, translate, upstream_body};
use serde_json::{Value, json};

#[test]
fn conversation_to_chat_request() {
    let t = translate(
        Protocol::OpenAi,
        &json("responses/request_conversation.json"),
        "gpt-4.1",
    )
    .unwrap();
    assert_eq!(t.path, "/v1/chat/completions");
    assert!(!t.stream);
    let c: Value = serde_json::from_slice(&t.body).unwrap();
    assert_eq!(c["model"], "gpt-4.1");
    let m = c["messages"].as_array().unwrap();
    assert_eq!(m.len(), 7, "{m:#?}");
    assert_eq!(
        m[0],
        json!({"role": "system", "content": "You are a concise travel assistant. Answer in English."})
    );
    assert_eq!(m[1]["role"], "user");
    assert_eq!(
        m[1]["content"][0],
        json!({"type": "text", "text": "Where is this, and what is the weather there and in Lyon?"})
    );
    assert_eq!(m[1]["content"][1]["type"], "image_url");
    assert_eq!(m[1]["content"][1]["image_url"]["detail"], "high");
    assert!(
        m[1]["content"][1]["image_url"]["url"]
            .as_str()
            .unwrap()
            .starts_with("https://upload.wikimedia.org/")
    );
    // The reasoning item is dropped; the assistant message and both calls are one message.
    assert_eq!(m[2]["role"], "assistant");
    assert_eq!(
        m[2]["content"],
        "That is the Eiffel Tower in Paris. Let me check the weather."
    );
    let calls = m[2]["tool_calls"].as_array().unwrap();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0]["id"], "call_PaRiS01");
    assert_eq!(calls[0]["type"], "function");
    assert_eq!(calls[0]["function"]["name"], "get_weather");
    assert_eq!(
        calls[0]["function"]["arguments"],
        "{\"city\":\"Paris\",\"unit\":\"celsius\"}"
    );
    assert_eq!(calls[1]["id"], "call_LyOn02");
    assert_eq!(
        m[3],
        json!({"role": "tool", "tool_call_id": "call_PaRiS01",
               "content": "{\"temperature\":18,\"conditions\":\"cloudy\"}"})
    );
    assert_eq!(
        m[4],
        json!({"role": "tool", "tool_call_id": "call_LyOn02", "content": "21 C, sunny"})
    );
    assert_eq!(
        m[5],
        json!({"role": "system", "content": "Reply with the JSON schema given."}),
        "developer -> system"
    );
    assert_eq!(
        m[6],
        json!({"role": "user", "content": "Summarise both cities."})
    );
    let body = c.as_object().unwrap();
    for dropped in [
        "metadata",
        "include",
        "truncation",
        "service_tier",
        "prompt_cache_key",
        "instructions",
        "input",
        "text",
        "reasoning",
        "store",
        "max_completion_tokens",
        "stream",
    ] {
        assert!(!body.contains_key(dropped), "{dropped} is not a chat field");
    }
}

#[test]
fn conversation_options_to_chat_request() {
    let c = upstream_body(
        Protocol::OpenAi,
        &json("responses/request_conversation.json"),
        "gpt-4.1",
    );
    assert_eq!(c["max_tokens"], 800);
    assert_eq!(c["temperature"], 0.4);
    assert_eq!(c["top_p"], 0.9);
    assert_eq!(c["parallel_tool_calls"], true);
    assert_eq!(c["tool_choice"], "auto");
    assert_eq!(c["user"], "user-7f3a9c", "safety_identifier -> user");
    assert_eq!(c["reasoning_effort"], "low");
    let tools = c["tools"].as_array().unwrap();
    assert_eq!(tools.len(), 2);
    assert_eq!(tools[0]["type"], "function");
    assert_eq!(tools[0]["function"]["name"], "get_weather");
    assert_eq!(
        tools[0]["function"]["description"],
        "Current weather for a city."
    );
    assert_eq!(tools[0]["function"]["strict"], true);
    assert_eq!(
        tools[0]["function"]["parameters"]["required"],
        json!(["city", "unit"])
    );
    let f = &c["response_format"];
    assert_eq!(f["type"], "json_schema");
    assert_eq!(f["json_schema"]["name"], "weather_summary");
    assert_eq!(f["json_schema"]["strict"], true);
    assert_eq!(f["json_schema"]["description"], "Weather per city.");
    assert_eq!(f["json_schema"]["schema"]["required"], json!(["cities"]));
}

#[test]
fn reasoning_models_get_max_completion_tokens() {
    for model in ["o4-mini", "gpt-5", "openai/o3"] {
        let c = upstream_body(
            Protocol::OpenAi,
            &json("responses/request_conversation.json"),
            model,
        );
        assert_eq!(c["max_completion_tokens"], 800, "{model}");
        assert!(c.get("max_tokens").is_none(), "{model}");
    }
}

#[test]
fn string_input_and_stream() {
    let body = json!({"model": "m", "input": "Say hi.", "stream": true, "user": "u-1",
                      "instructions": "Be brief.", "stream_options": {"include_obfuscation": false}});
    let t = translate(Protocol::OpenAi, &body, "gpt-4.1-mini").unwrap();
    assert!(t.stream);
    let c: Value = serde_json::from_slice(&t.body).unwrap();
    assert_eq!(
        c["messages"],
        json!([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Say hi."}])
    );
    assert_eq!(c["stream"], true);
    assert_eq!(c["stream_options"], json!({"include_usage": true}));
    assert_eq!(c["user"], "u-1");
    assert!(
        c.get("tools").is_none() && c.get("tool_choice").is_none() && c.get("max_tokens").is_none()
    );
}

#[test]
fn conversation_to_anthropic_pairs_tool_results_with_calls() {
    let t = translate(
        Protocol::Anthropic,
        &json("responses/request_conversation.json"),
        "claude-sonnet-4-5",
    )
    .unwrap();
    assert_eq!(t.path, "/v1/messages");
    let a: Value = serde_json::from_slice(&t.body).unwrap();
    assert_eq!(
        a["system"],
        json!([
            {"type": "text", "text": "You are a concise travel assistant. Answer in English."},
            {"type": "text", "text": "Reply with the JSON schema given."}
        ])
    );
    let m = a["messages"].as_array().unwrap();
    assert_eq!(m.len(), 3, "{m:#?}");
    assert_eq!(m[0]["role"], "user");
    assert_eq!(m[0]["content"][1]["type"], "image");
    assert_eq!(m[0]["content"][1]["source"]["type"], "url");
    assert_eq!(m[1]["role"], "assistant");
    let blocks = m[1]["content"].as_array().unwrap();
    assert_eq!(blocks[0]["type"], "text");
    assert_eq!(
        blocks[1],
        json!({"type": "tool_use", "id": "call_PaRiS01", "name": "get_weather",
               "input": {"city": "Paris", "unit": "celsius"}})
    );
    assert_eq!(blocks[2]["id"], "call_LyOn02");
    assert_eq!(m[2]["role"], "user");
    let results = m[2]["content"].as_array().unwrap();
    assert_eq!(results[0]["type"], "tool_result");
    assert_eq!(results[0]["tool_use_id"], "call_PaRiS01");
    assert_eq!(
        results[0]["content"],
        "{\"temperature\":18,\"conditions\":\"cloudy\"}"
    );
    assert_eq!(results[1]["tool_use_id"], "call_LyOn02");
    assert_eq!(results[1]["content"], "21 C, sunny");
    assert_eq!(
        results[2],
        json!({"type": "text", "text": "Summarise both cities."})
    );
    assert_eq!(a["max_tokens"], 800);
    assert_eq!(a["temperature"], 0.4);
    assert_eq!(a["metadata"]["user_id"], "user-7f3a9c");
    assert_eq!(a["tools"][0]["name"], "get_weather");
    assert_eq!(
        a["tools"][0]["input_schema"]["required"],
        json!(["city", "unit"])
    );
    assert_eq!(a["tool_choice"]["type"], "auto");
    assert!(a.get("reasoning_effort").is_none());
}

#[test]
fn conversation_to_gemini_pairs_function_responses_with_calls() {
    let t = translate(
        Protocol::Gemini,
        &json("responses/request_conversation.json"),
        "gemini-2.5-flash",
    )
    .unwrap();
    assert_eq!(t.path, "/v1beta/models/gemini-2.5-flash:generateContent");
    let g: Value = serde_json::from_slice(&t.body).unwrap();
    let system = &g["systemInstruction"]["parts"];
    assert_eq!(
        system[0]["text"],
        "You are a concise travel assistant. Answer in English."
    );
    assert_eq!(system[1]["text"], "Reply with the JSON schema given.");
    let c = g["contents"].as_array().unwrap();
    assert_eq!(c.len(), 3, "{c:#?}");
    assert_eq!(c[0]["role"], "user");
    assert_eq!(c[0]["parts"][1]["fileData"]["mimeType"], "image/jpeg");
    assert_eq!(c[1]["role"], "model");
    assert_eq!(
        c[1]["parts"][1]["functionCall"],
        json!({"name": "get_weather", "args": {"city": "Paris", "unit": "celsius"}})
    );
    assert_eq!(c[1]["parts"][2]["functionCall"]["args"]["city"], "Lyon");
    assert_eq!(c[2]["role"], "user");
    assert_eq!(
        c[2]["parts"][0]["functionResponse"],
        json!({"name": "get_weather", "response": {"temperature": 18, "conditions": "cloudy"}})
    );
    assert_eq!(
        c[2]["parts"][1]["functionResponse"],
        json!({"name": "get_weather", "response": {"content": "21 C, sunny"}})
    );
    assert_eq!(c[2]["parts"][2]["text"], "Summarise both cities.");
    let gc = &g["generationConfig"];
    assert_eq!(gc["maxOutputTokens"], 800);
    assert_eq!(gc["responseMimeType"], "application/json");
    assert_eq!(gc["responseJsonSchema"]["required"], json!(["cities"]));
    let decls = &g["tools"][0]["functionDeclarations"];
    assert_eq!(decls[1]["name"], "book_hotel");
    assert!(
        decls[0]["parameters"].get("additionalProperties").is_none(),
        "cleaned for Gemini"
    );
    assert_eq!(g["toolConfig"]["functionCallingConfig"]["mode"], "AUTO");
}

#[test]
fn tool_choice_variants() {
    let base = json("responses/request_conversation.json");
    let with = |choice: Value| {
        let mut b = base.clone();
        b["tool_choice"] = choice;
        upstream_body(Protocol::OpenAi, &b, "gpt-4.1")
    };
    assert_eq!(with(json!("required"))["tool_choice"], "required");
    assert_eq!(with(json!("none"))["tool_choice"], "none");
    assert_eq!(
        with(json!({"type": "function", "name": "book_hotel"}))["tool_choice"],
        json!({"type": "function", "function": {"name": "book_hotel"}})
    );
    let c = with(json!({"type": "allowed_tools", "mode": "required",
                        "tools": [{"type": "function", "name": "book_hotel"}]}));
    assert_eq!(c["tool_choice"], "required");
    let tools = c["tools"].as_array().unwrap();
    assert_eq!(tools.len(), 1, "restricted to the allowed tools");
    assert_eq!(tools[0]["function"]["name"], "book_hotel");

    let mut b = base.clone();
    b["tool_choice"] = json!({"type": "allowed_tools", "mode": "auto",
                              "tools": [{"type": "function", "name": "get_weather"}]});
    let g = upstream_body(Protocol::Gemini, &b, "gemini-2.5-flash");
    let decls = g["tools"][0]["functionDeclarations"].as_array().unwrap();
    assert_eq!(decls.len(), 1);
    assert_eq!(decls[0]["name"], "get_weather");

    let mut b = base.clone();
    b["tool_choice"] = json!({"type": "function", "name": "get_weather"});
    let a = upstream_body(Protocol::Anthropic, &b, "claude-sonnet-4-5");
    assert_eq!(
        a["tool_choice"],
        json!({"type": "tool", "name": "get_weather"})
    );

    let msg = invalid_request(
        Protocol::OpenAi,
        json!({"input": "x", "tools": base["tools"], "tool_choice": {"type": "function", "name": "nope"}}),
    );
    assert!(msg.contains("`nope` is not in `tools`"), "{msg}");
}

#[test]
fn text_formats() {
    let with = |format: Value| {
        upstream_body(
            Protocol::OpenAi,
            &json!({"input": "x", "text": {"format": format}}),
            "gpt-4.1",
        )
    };
    assert_eq!(
        with(json!({"type": "json_object"}))["response_format"],
        json!({"type": "json_object"})
    );
    assert!(
        with(json!({"type": "text"}))
            .get("response_format")
            .is_none()
    );
    let msg = invalid_request(
        Protocol::OpenAi,
        json!({"input": "x", "text": {"format": {"type": "json_schema", "schema": {}}}}),
    );
    assert!(msg.starts_with("text.format: json_schema needs"), "{msg}");
}

#[test]
fn function_calls_without_assistant_text_make_one_message() {
    let body = json!({"input": [
        {"role": "user", "content": "weather in Paris and Oslo?"},
        {"type": "function_call", "call_id": "call_a", "name": "get_weather", "arguments": "{\"city\":\"Paris\"}"},
        {"type": "function_call", "call_id": "call_b", "name": "get_weather", "arguments": "{\"city\":\"Oslo\"}"},
        {"type": "function_call_output", "call_id": "call_a", "output": "12C"},
        {"type": "function_call_output", "call_id": "call_b", "output": "3C"}
    ]});
    let c = upstream_body(Protocol::OpenAi, &body, "gpt-4.1");
    let m = c["messages"].as_array().unwrap();
    assert_eq!(m.len(), 4);
    assert_eq!(m[1]["role"], "assistant");
    assert!(m[1]["content"].is_null());
    assert_eq!(m[1]["tool_calls"].as_array().unwrap().len(), 2);
    assert_eq!(m[2]["tool_call_id"], "call_a");
    assert_eq!(m[3]["tool_call_id"], "call_b");
}
