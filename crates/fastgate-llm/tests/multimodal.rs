//! Media parts beyond images (audio, video, PDFs, text documents) for every client /
//! upstream pair: passed through unchanged between the same protocols, carried where the
//! target has an equivalent, refused with a message naming the part where it has none.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests and their helpers fail the test on error"
)]

mod common;

use common::json;
use fastgate_llm::{
    LlmError, Protocol, RequestOptions, estimate_request_value, translate_request_value,
};
use serde_json::{Value, json};

const OPTS: RequestOptions = RequestOptions {
    upstream_model: "up-model",
    default_max_tokens: 4096,
    force_openai_stream_usage: true,
};

const WAV: &str = "UklGRiQAAABXQVZFZm10IBAAAAABAAEAQB8AAEAfAAABAAgAZGF0YQAAAAA=";
const MP3: &str = "SUQzBAAAAAAAI1RTU0UAAAAPAAADTGF2ZjU4Ljc2LjEwMAAAAAAAAAAAAAAA";
const PDF: &str = "JVBERi0xLjQKJcOkw7zDtsOfCjIgMCBvYmoKPDwvTGVuZ3RoIDMgMCBSPj4Kc3RyZWFtCg==";
const NOTES: &str = "Quarterly revenue grew 12%.";

fn translate(from: Protocol, to: Protocol, body: &Value) -> Result<Value, LlmError> {
    let map = body.as_object().unwrap().clone();
    let tr = translate_request_value(from, to, map, &OPTS)?;
    Ok(serde_json::from_slice(&tr.body).unwrap())
}

fn ok(from: Protocol, to: Protocol, body: &Value) -> Value {
    translate(from, to, body).unwrap_or_else(|e| panic!("{from:?} -> {to:?}: {e}"))
}

/// The request is refused as unsupported (a client 400), naming `path` and `part`.
fn refused(from: Protocol, to: Protocol, body: &Value, path: &str, part: &str) -> String {
    match translate(from, to, body) {
        Err(LlmError::Unsupported(msg)) => {
            assert!(
                msg.starts_with(&format!("{path}: {part}")),
                "{from:?} -> {to:?}: {msg:?} should name {path}: {part}"
            );
            msg
        }
        other => panic!("{from:?} -> {to:?}: expected Unsupported, got {other:?}"),
    }
}

// ---- same protocol: unchanged ----

#[test]
fn same_protocol_media_parts_pass_through_unchanged() {
    for (p, file, pointer) in [
        (
            Protocol::OpenAi,
            "multimodal/openai_request.json",
            "/messages",
        ),
        (
            Protocol::Anthropic,
            "multimodal/anthropic_request.json",
            "/messages",
        ),
        (
            Protocol::Gemini,
            "multimodal/gemini_request.json",
            "/contents",
        ),
        (
            Protocol::Gemini,
            "multimodal/gemini_request_video.json",
            "/contents",
        ),
    ] {
        let body = json(file);
        let out = ok(p, p, &body);
        assert_eq!(out.pointer(pointer), body.pointer(pointer), "{file}");
    }
}

// ---- OpenAI client ----

#[test]
fn openai_media_to_gemini() {
    let v = ok(
        Protocol::OpenAi,
        Protocol::Gemini,
        &json("multimodal/openai_request.json"),
    );
    assert_eq!(
        v["contents"][0]["parts"],
        json!([
            {"text": "Transcribe this, then read the report."},
            {"inlineData": {"mimeType": "audio/wav", "data": WAV}},
            {"inlineData": {"mimeType": "audio/mp3", "data": MP3}},
            {"inlineData": {"mimeType": "application/pdf", "data": PDF}},
            {"inlineData": {"mimeType": "text/plain", "data": "UXVhcnRlcmx5IHJldmVudWUgZ3JldyAxMiUuCg=="}},
            {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}}
        ])
    );
}

#[test]
fn openai_documents_to_anthropic_and_audio_refused() {
    let mut body = json("multimodal/openai_request.json");
    refused(
        Protocol::OpenAi,
        Protocol::Anthropic,
        &body,
        "messages[1].content[1]",
        "input_audio cannot be carried to an Anthropic upstream (it has no audio input)",
    );
    // Without the audio parts, the files become documents.
    let parts = body["messages"][1]["content"].as_array_mut().unwrap();
    parts.drain(1..3);
    let v = ok(Protocol::OpenAi, Protocol::Anthropic, &body);
    assert_eq!(
        v["messages"][0]["content"],
        json!([
            {"type": "text", "text": "Transcribe this, then read the report."},
            {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": PDF}},
            {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": format!("{NOTES}\n")}},
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}}
        ])
    );
}

#[test]
fn openai_refusals_name_the_part() {
    let body = |part: Value| {
        json!({"model": "m", "messages": [
            {"role": "user", "content": "first"},
            {"role": "assistant", "content": "ok"},
            {"role": "user", "content": [{"type": "text", "text": "see"}, part]}
        ]})
    };
    let file_id = body(json!({"type": "file", "file": {"file_id": "file-abc123"}}));
    for to in [Protocol::Anthropic, Protocol::Gemini] {
        let msg = refused(
            Protocol::OpenAi,
            to,
            &file_id,
            "messages[2].content[1]",
            "file (file_id)",
        );
        assert!(msg.contains("readable only by OpenAI"), "{msg}");
    }
    let video = body(json!({"type": "file", "file": {"filename": "clip.mp4",
        "file_data": "data:video/mp4;base64,AAAAIGZ0eXA="}}));
    let msg = refused(
        Protocol::OpenAi,
        Protocol::Anthropic,
        &video,
        "messages[2].content[1]",
        "file (video/mp4)",
    );
    assert!(msg.contains("no video input"), "{msg}");
    // Gemini takes video.
    let v = ok(Protocol::OpenAi, Protocol::Gemini, &video);
    assert_eq!(
        v["contents"][2]["parts"][1]["inlineData"]["mimeType"],
        "video/mp4"
    );
    let docx = body(json!({"type": "file", "file": {"file_data":
        "data:application/vnd.openxmlformats-officedocument.wordprocessingml.document;base64,UEsDBA=="}}));
    let msg = refused(
        Protocol::OpenAi,
        Protocol::Anthropic,
        &docx,
        "messages[2].content[1]",
        "file (application/vnd.openxmlformats",
    );
    assert!(msg.contains("PDF or plain text"), "{msg}");
}

// ---- Anthropic client ----

#[test]
fn anthropic_documents_to_openai() {
    let v = ok(
        Protocol::Anthropic,
        Protocol::OpenAi,
        &json("multimodal/anthropic_request.json"),
    );
    assert_eq!(
        v["messages"][0]["content"],
        json!([
            {"type": "file", "file": {"filename": "document.pdf",
                "file_data": format!("data:application/pdf;base64,{PDF}")}},
            {"type": "text", "text": NOTES},
            {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,/9j/4AAQSkZJRg=="}},
            {"type": "text", "text": "Compare the report with the notes and the chart."}
        ])
    );
}

#[test]
fn anthropic_documents_to_gemini() {
    let v = ok(
        Protocol::Anthropic,
        Protocol::Gemini,
        &json("multimodal/anthropic_request.json"),
    );
    assert_eq!(
        v["contents"][0]["parts"],
        json!([
            {"inlineData": {"mimeType": "application/pdf", "data": PDF}},
            {"text": NOTES},
            {"inlineData": {"mimeType": "image/jpeg", "data": "/9j/4AAQSkZJRg=="}},
            {"text": "Compare the report with the notes and the chart."}
        ])
    );
}

#[test]
fn anthropic_url_document_to_gemini_file_data_and_refused_by_openai() {
    let body = json("multimodal/anthropic_request_url_document.json");
    let v = ok(Protocol::Anthropic, Protocol::Gemini, &body);
    assert_eq!(
        v["contents"][2]["parts"][1],
        json!({"fileData": {"mimeType": "application/pdf", "fileUri": "https://arxiv.org/pdf/1706.03762"}})
    );
    let msg = refused(
        Protocol::Anthropic,
        Protocol::OpenAi,
        &body,
        "messages[2].content[1]",
        "document (url source) cannot be carried to an OpenAI upstream",
    );
    assert!(msg.contains("only inline or by file_id"), "{msg}");
}

// ---- Gemini client ----

#[test]
fn gemini_media_to_openai() {
    let mut body = json("multimodal/gemini_request.json");
    let v = ok(Protocol::Gemini, Protocol::OpenAi, &body);
    assert_eq!(
        v["messages"][0],
        json!({"role": "system", "content": "Be precise."})
    );
    assert_eq!(v["max_tokens"], 256, "snake_case generation_config");
    assert_eq!(
        v["messages"][1]["content"],
        json!([
            {"type": "text", "text": "Listen, read and compare."},
            {"type": "input_audio", "input_audio": {"data": WAV, "format": "wav"}},
            {"type": "input_audio", "input_audio": {"data": MP3, "format": "mp3"}},
            {"type": "file", "file": {"filename": "document.pdf",
                "file_data": format!("data:application/pdf;base64,{PDF}")}},
            {"type": "text", "text": format!("{NOTES}\n")},
            {"type": "image_url", "image_url": {"url": "https://example.com/chart.png"}}
        ])
    );
    body["contents"][0]["parts"][1]["inlineData"]["mimeType"] = json!("audio/ogg");
    let msg = refused(
        Protocol::Gemini,
        Protocol::OpenAi,
        &body,
        "contents[0].parts[1]",
        "inlineData (audio/ogg) cannot be carried to an OpenAI upstream",
    );
    assert!(msg.contains("wav and mp3"), "{msg}");
}

#[test]
fn gemini_media_to_anthropic() {
    let mut body = json("multimodal/gemini_request.json");
    refused(
        Protocol::Gemini,
        Protocol::Anthropic,
        &body,
        "contents[0].parts[1]",
        "inlineData (audio/wav) cannot be carried to an Anthropic upstream (it has no audio input)",
    );
    body["contents"][0]["parts"]
        .as_array_mut()
        .unwrap()
        .drain(1..3);
    let v = ok(Protocol::Gemini, Protocol::Anthropic, &body);
    assert_eq!(v["system"], "Be precise.");
    assert_eq!(
        v["messages"][0]["content"],
        json!([
            {"type": "text", "text": "Listen, read and compare."},
            {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": PDF}},
            {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": format!("{NOTES}\n")}},
            {"type": "image", "source": {"type": "url", "url": "https://example.com/chart.png"}}
        ])
    );
}

#[test]
fn gemini_video_refused_by_openai_and_anthropic() {
    let body = json("multimodal/gemini_request_video.json");
    for (to, name) in [
        (Protocol::OpenAi, "an OpenAI"),
        (Protocol::Anthropic, "an Anthropic"),
    ] {
        let msg = refused(
            Protocol::Gemini,
            to,
            &body,
            "contents[2].parts[1]",
            &format!("inlineData (video/mp4) cannot be carried to {name} upstream"),
        );
        assert!(msg.contains("no video input"), "{msg}");
    }
    // A YouTube link without a mimeType is a video too.
    let youtube = json!({"contents": [{"parts": [
        {"fileData": {"fileUri": "https://www.youtube.com/watch?v=9hE5-98ZeCg"}},
        {"text": "Summarise the video."}
    ]}]});
    refused(
        Protocol::Gemini,
        Protocol::OpenAi,
        &youtube,
        "contents[0].parts[0]",
        "fileData (video/mp4) cannot be carried to an OpenAI upstream (it has no video input)",
    );
    // Without the inline video, the Files API video is refused next, by its own index.
    let mut body = body;
    body["contents"][2]["parts"]
        .as_array_mut()
        .unwrap()
        .remove(1);
    refused(
        Protocol::Gemini,
        Protocol::Anthropic,
        &body,
        "contents[2].parts[1]",
        "fileData (video/mp4)",
    );
}

#[test]
fn gemini_file_uri_pdf_to_anthropic_url_document_and_refused_by_openai() {
    let body = json("multimodal/gemini_request_file_uri.json");
    let v = ok(Protocol::Gemini, Protocol::Anthropic, &body);
    assert_eq!(
        v["messages"][0]["content"][1],
        json!({"type": "document", "source": {"type": "url", "url": "https://arxiv.org/pdf/1706.03762"}})
    );
    let msg = refused(
        Protocol::Gemini,
        Protocol::OpenAi,
        &body,
        "contents[0].parts[1]",
        "fileData (application/pdf)",
    );
    assert!(msg.contains("only images by URL"), "{msg}");
    // A Cloud Storage URI is readable only by Gemini.
    let mut gs = body;
    gs["contents"][0]["parts"][1]["fileData"]["fileUri"] = json!("gs://bucket/paper.pdf");
    let msg = refused(
        Protocol::Gemini,
        Protocol::Anthropic,
        &gs,
        "contents[0].parts[1]",
        "fileData (application/pdf)",
    );
    assert!(msg.contains("Cloud Storage"), "{msg}");
}

// ---- estimates ----

#[test]
fn estimates_count_media_by_size_not_as_base64_text() {
    // ~300 KB of audio, ~300 KB of PDF: as text the base64 would be ~100k tokens each.
    let audio = "A".repeat(400_000);
    let pdf = "B".repeat(400_000);
    let openai = json!({"messages": [{"role": "user", "content": [
        {"type": "input_audio", "input_audio": {"data": audio, "format": "wav"}},
        {"type": "file", "file": {"file_data": format!("data:application/pdf;base64,{pdf}")}}
    ]}]});
    let n = estimate_request_value(Protocol::OpenAi, &openai);
    // 300 audio + 9375 PDF + message overhead.
    assert!((9_600..=9_800).contains(&n), "{n}");
    let gemini = json!({"contents": [{"parts": [
        {"inline_data": {"mime_type": "audio/wav", "data": audio}},
        {"inlineData": {"mimeType": "video/mp4", "data": pdf}},
        {"fileData": {"mimeType": "application/pdf", "fileUri": "gs://b/x.pdf"}}
    ]}]});
    let n = estimate_request_value(Protocol::Gemini, &gemini);
    // 300 audio + 75 video + 1024 by reference + overhead.
    assert!((1_390..=1_420).contains(&n), "{n}");
    let anthropic = json!({"messages": [{"role": "user", "content": [
        {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": pdf}},
        {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "hello there"}}
    ]}]});
    let n = estimate_request_value(Protocol::Anthropic, &anthropic);
    assert!((9_375..=9_400).contains(&n), "{n}");
}

#[test]
fn gemini_snake_case_fields_are_read() {
    let body = json!({
        "system_instruction": {"parts": [{"text": "terse"}]},
        "contents": [{"role": "user", "parts": [
            {"text": "weather?"},
            {"file_data": {"mime_type": "image/png", "file_uri": "https://example.com/sky.png"}}
        ]}],
        "tools": [{"function_declarations": [{"name": "get", "parameters": {"type": "OBJECT"}}]}],
        "tool_config": {"function_calling_config": {"mode": "ANY", "allowed_function_names": ["get"]}},
        "generation_config": {"max_output_tokens": 9, "top_p": 0.5, "stop_sequences": ["X"]}
    });
    let v = ok(Protocol::Gemini, Protocol::OpenAi, &body);
    assert_eq!(v["messages"][0]["content"], "terse");
    assert_eq!(
        v["messages"][1]["content"][1]["image_url"]["url"],
        "https://example.com/sky.png"
    );
    assert_eq!(v["tools"][0]["function"]["name"], "get");
    assert_eq!(v["tool_choice"]["function"]["name"], "get");
    assert_eq!(
        (v["max_tokens"].clone(), v["top_p"].clone()),
        (json!(9), json!(0.5))
    );
    assert_eq!(v["stop"], json!(["X"]));
}
