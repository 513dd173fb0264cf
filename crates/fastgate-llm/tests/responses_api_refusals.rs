//! OpenAI Responses API clients: media parts per upstream, and the requests refused
//! (stateful features, built-in tools, malformed input), each with its message.
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
use responses_support::{invalid_request, translate, unsupported, upstream_body, user_parts};
use serde_json::json;

#[test]
fn files_per_upstream() {
    let body = json("responses/request_files.json");
    let c = upstream_body(Protocol::OpenAi, &body, "gpt-4.1");
    let parts = &c["messages"][0]["content"];
    assert_eq!(
        parts[1],
        json!({"type": "file", "file": {"filename": "report.pdf",
            "file_data": "data:application/pdf;base64,JVBERi0xLjQKJcfsj6IKNSAwIG9iago8PC9MZW5ndGggNiAwIFI+PgpzdHJlYW0K"}})
    );
    assert_eq!(
        parts[2],
        json!({"type": "text", "text": "Revenue up 12%."}),
        "a text file is sent as text to Chat Completions"
    );

    let a = upstream_body(Protocol::Anthropic, &body, "claude-sonnet-4-5");
    let blocks = &a["messages"][0]["content"];
    assert_eq!(blocks[1]["type"], "document");
    assert_eq!(blocks[1]["source"]["type"], "base64");
    assert_eq!(blocks[1]["source"]["media_type"], "application/pdf");
    assert_eq!(
        blocks[2]["source"],
        json!({"type": "text", "media_type": "text/plain", "data": "Revenue up 12%."})
    );

    let g = upstream_body(Protocol::Gemini, &body, "gemini-2.5-flash");
    let parts = &g["contents"][0]["parts"];
    assert_eq!(parts[1]["inlineData"]["mimeType"], "application/pdf");
    assert_eq!(
        parts[2]["inlineData"],
        json!({"mimeType": "text/plain", "data": "UmV2ZW51ZSB1cCAxMiUu"})
    );
}

#[test]
fn files_by_url_and_id() {
    let by_url = user_parts(
        json!([{"type": "input_file", "file_url": "https://example.com/papers/attention.pdf"}]),
    );
    let g = upstream_body(Protocol::Gemini, &by_url, "gemini-2.5-flash");
    assert_eq!(
        g["contents"][0]["parts"][0]["fileData"],
        json!({"mimeType": "application/pdf", "fileUri": "https://example.com/papers/attention.pdf"})
    );
    let a = upstream_body(Protocol::Anthropic, &by_url, "claude-sonnet-4-5");
    assert_eq!(
        a["messages"][0]["content"][0]["source"],
        json!({"type": "url", "url": "https://example.com/papers/attention.pdf"})
    );
    let msg = unsupported(Protocol::OpenAi, by_url);
    assert_eq!(
        msg,
        "input[0].content[0]: input_file (file_url) cannot be carried to an OpenAI upstream \
         (Chat Completions takes files only inline or by file_id)"
    );

    let by_id =
        user_parts(json!([{"type": "input_file", "file_id": "file-6F2ksmvXxt4VdoqmHRw6kL"}]));
    let c = upstream_body(Protocol::OpenAi, &by_id, "gpt-4.1");
    assert_eq!(
        c["messages"][0]["content"][0],
        json!({"type": "file", "file": {"file_id": "file-6F2ksmvXxt4VdoqmHRw6kL"}})
    );
    let msg = unsupported(Protocol::Gemini, by_id);
    assert!(
        msg.starts_with(
            "input[0].content[0]: input_file (file_id) cannot be carried to a Gemini upstream"
        ),
        "{msg}"
    );
}

#[test]
fn media_refusals_name_the_client_part() {
    let docx = user_parts(json!([
        {"type": "input_text", "text": "read"},
        {"type": "input_file", "filename": "a.docx",
         "file_data": "data:application/vnd.openxmlformats-officedocument.wordprocessingml.document;base64,UEsDBA=="}
    ]));
    let msg = unsupported(Protocol::Anthropic, docx.clone());
    assert!(
        msg.starts_with("input[0].content[1]: input_file (application/vnd.openxmlformats"),
        "{msg}"
    );
    assert!(msg.contains("an Anthropic upstream"), "{msg}");
    let g = upstream_body(Protocol::Gemini, &docx, "gemini-2.5-flash");
    assert!(
        g["contents"][0]["parts"][1]["inlineData"]["mimeType"]
            .as_str()
            .unwrap()
            .ends_with("wordprocessingml.document")
    );

    let audio = user_parts(
        json!([{"type": "input_audio", "input_audio": {"data": "UklGRiQAAABXQVZF", "format": "wav"}}]),
    );
    assert_eq!(
        unsupported(Protocol::Anthropic, audio.clone()),
        "input[0].content[0]: input_audio cannot be carried to an Anthropic upstream (it has no audio input)"
    );
    let c = upstream_body(Protocol::OpenAi, &audio, "gpt-4o-audio-preview");
    assert_eq!(
        c["messages"][0]["content"][0]["input_audio"],
        json!({"data": "UklGRiQAAABXQVZF", "format": "wav"})
    );

    let image_id =
        user_parts(json!([{"type": "input_image", "file_id": "file-abc", "detail": "auto"}]));
    let msg = unsupported(Protocol::OpenAi, image_id);
    assert!(
        msg.starts_with("input[0].content[0]: input_image (file_id) cannot be carried"),
        "{msg}"
    );

    let data_image = user_parts(
        json!([{"type": "input_image", "image_url": "data:image/png;base64,iVBORw0KGgo=", "detail": "low"}]),
    );
    let a = upstream_body(Protocol::Anthropic, &data_image, "claude-sonnet-4-5");
    assert_eq!(
        a["messages"][0]["content"][0]["source"],
        json!({"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="})
    );
}

#[test]
fn stateful_requests_are_refused() {
    let cases = [
        (
            json!({"input": "x", "previous_response_id": "resp_123"}),
            "previous_response_id needs the Responses API's stored responses, which this model's \
             upstream does not keep: send the whole conversation in `input` (and `store: false`)",
        ),
        (
            json!({"input": "x", "store": true}),
            "store: true asks the Responses API",
        ),
        (
            json!({"input": "x", "background": true}),
            "background: true needs",
        ),
        (
            json!({"input": "x", "conversation": "conv_689667905b048191b4740501625afd940c7533ace33a2dab"}),
            "conversation needs the Responses API's stored conversations",
        ),
        (
            json!({"input": "x", "prompt": {"id": "pmpt_abc123", "version": "2"}}),
            "prompt refers to a prompt template stored by OpenAI",
        ),
    ];
    for (body, expected) in cases {
        for to in [Protocol::OpenAi, Protocol::Anthropic, Protocol::Gemini] {
            let msg = invalid_request(to, body.clone());
            assert!(msg.starts_with(expected), "{to:?}: {msg}");
        }
    }
    // store: false, store absent and previous_response_id: null are fine.
    for body in [
        json!({"input": "x", "store": false}),
        json!({"input": "x", "previous_response_id": null, "background": false}),
    ] {
        assert!(translate(Protocol::Anthropic, &body, "claude-sonnet-4-5").is_ok());
    }
}

#[test]
fn items_that_need_openai_are_refused() {
    let msg = invalid_request(
        Protocol::OpenAi,
        json!({"input": [
            {"role": "user", "content": "hi"},
            {"type": "reasoning", "id": "rs_1", "summary": []},
            {"role": "assistant", "content": "hello"},
            {"type": "item_reference", "id": "msg_abc"}
        ]}),
    );
    assert!(
        msg.starts_with(
            "input[3]: item type `item_reference` needs the Responses API's stored state"
        ),
        "{msg}"
    );
    let msg = invalid_request(
        Protocol::Anthropic,
        json!({"input": [
            {"role": "user", "content": "news?"},
            {"type": "web_search_call", "id": "ws_1", "status": "completed",
             "action": {"type": "search", "query": "news"}}
        ]}),
    );
    assert!(
        msg.starts_with("input[1]: item type `web_search_call` belongs to a built-in tool"),
        "{msg}"
    );
    let msg = invalid_request(
        Protocol::OpenAi,
        json!({"input": "x", "tools": [
            {"type": "function", "name": "f", "parameters": {"type": "object", "properties": {}}},
            {"type": "web_search"}
        ]}),
    );
    assert_eq!(
        msg,
        "tools[1]: `web_search` is a built-in tool of OpenAI's Responses API; this model's \
         upstream cannot run it"
    );
    for kind in [
        "file_search",
        "computer_use_preview",
        "code_interpreter",
        "mcp",
        "image_generation",
        "local_shell",
    ] {
        let msg = invalid_request(
            Protocol::Gemini,
            json!({"input": "x", "tools": [{"type": kind}]}),
        );
        assert!(
            msg.starts_with(&format!("tools[0]: `{kind}` is a built-in tool")),
            "{msg}"
        );
    }
    let msg = unsupported(
        Protocol::OpenAi,
        json!({"input": "x", "tools": [{"type": "custom", "name": "grammar_tool"}]}),
    );
    assert!(msg.starts_with("tools[0]: `custom` tools"), "{msg}");
    let msg = invalid_request(
        Protocol::OpenAi,
        json!({"input": "x", "tools": [{"type": "function", "name": "f"}],
               "tool_choice": {"type": "web_search_preview"}}),
    );
    assert!(
        msg.starts_with("tool_choice: `web_search_preview` is a built-in tool"),
        "{msg}"
    );
}

#[test]
fn malformed_inputs_are_refused_by_path() {
    let cases = [
        (json!({"model": "m"}), "input is required"),
        (json!({"input": 42}), "input must be a string or an array"),
        (json!({"input": []}), "input is an empty array"),
        (json!({"input": ["hi"]}), "input[0] must be an object"),
        (
            json!({"input": [{"role": "tool", "content": "x"}]}),
            "input[0]: unknown role `tool`",
        ),
        (
            json!({"input": [{"role": "user", "content": [{"type": "input_video"}]}]}),
            "input[0].content[0]: unknown content part type `input_video`",
        ),
        (
            json!({"input": [{"type": "function_call", "name": "f", "arguments": "{}"}]}),
            "input[0]: function_call needs string `call_id` and `name`",
        ),
        (
            json!({"input": [{"role": "user", "content": "x"},
                             {"type": "function_call_output", "call_id": "call_9", "output": "1"}]}),
            "input[1]: function_call_output answers call_id `call_9`, but no earlier function_call",
        ),
        (
            json!({"input": [{"type": "reasoning", "summary": []}]}),
            "input holds no message",
        ),
        (
            json!({"input": "x", "max_output_tokens": -1}),
            "max_output_tokens must be a non-negative integer",
        ),
        (
            json!({"input": "x", "temperature": "hot"}),
            "temperature must be a number",
        ),
    ];
    for (body, expected) in cases {
        let msg = invalid_request(Protocol::OpenAi, body);
        assert!(msg.starts_with(expected), "{expected:?} vs {msg:?}");
    }
    let msg = unsupported(
        Protocol::OpenAi,
        json!({"input": [
            {"type": "function_call", "call_id": "c1", "name": "screenshot", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "c1",
             "output": [{"type": "input_image", "image_url": "https://x.example/s.png"}]}
        ]}),
    );
    assert!(
        msg.starts_with(
            "input[1].output[0]: `input_image` in a function_call_output cannot be carried"
        ),
        "{msg}"
    );
    let msg = unsupported(
        Protocol::OpenAi,
        json!({"input": [{"role": "system", "content": [
            {"type": "input_image", "image_url": "https://x.example/a.png"}]}]}),
    );
    assert!(
        msg.starts_with("input[0].content[0]: `input_image` parts"),
        "{msg}"
    );
}
