//! Gemini client -> OpenAI representation: the request Gemini `generateContent` -> OpenAI
//! chat (then, for Anthropic upstreams, the existing OpenAI -> Anthropic converter), and the
//! response OpenAI chat completion -> Gemini `GenerateContentResponse`.
//!
//! Composing through OpenAI keeps one converter per protocol instead of one per pair.

use std::collections::{HashMap, VecDeque};

use serde_json::Value;

use super::guess_media_type;
use super::media::{
    PDF, TO_ANTHROPIC, TO_OPENAI, anthropic_lacks, base64_text, gemini_only_uri,
    openai_audio_format, openai_lacks, refuse,
};
use super::{Finish, arguments_to_object, data_url, object_to_arguments};
use crate::wire::gemini as gm;
use crate::wire::openai::{self as oa, ContentPart, MessageContent};
use crate::{LlmError, Protocol, Usage};

/// Ids given to function calls, by function name, so a later `functionResponse` (matched by
/// name in Gemini) finds the id its OpenAI `tool` message needs.
#[derive(Default)]
struct CallIds {
    next: usize,
    pending: HashMap<String, VecDeque<String>>,
}

impl CallIds {
    fn call(&mut self, name: &str, id: Option<String>) -> String {
        let id = id.unwrap_or_else(|| {
            self.next += 1;
            format!("call_{}", self.next)
        });
        self.pending
            .entry(name.to_owned())
            .or_default()
            .push_back(id.clone());
        id
    }

    fn response(&mut self, name: &str, id: Option<String>) -> String {
        let queued = self.pending.get_mut(name).and_then(VecDeque::pop_front);
        id.or(queued).unwrap_or_else(|| name.to_owned())
    }
}

/// Gemini request -> OpenAI chat request for `model`, bound for an upstream of protocol
/// `target` (OpenAI, or Anthropic through the OpenAI -> Anthropic converter). Media parts
/// are checked against `target` here so refusals name the client's `contents[i].parts[j]`.
pub(crate) fn request_for(
    req: gm::GenerateRequest,
    model: &str,
    stream: bool,
    target: Protocol,
) -> Result<oa::ChatRequest, LlmError> {
    let mut messages = Vec::new();
    if let Some(sys) = req.system_instruction {
        let text: Vec<String> = sys.parts.into_iter().filter_map(|p| p.text).collect();
        if !text.is_empty() {
            messages.push(oa::ChatMessage {
                role: "system".into(),
                content: Some(MessageContent::Text(text.join("\n"))),
                ..Default::default()
            });
        }
    }
    let mut ids = CallIds::default();
    for (i, c) in req.contents.into_iter().enumerate() {
        match c.role.as_deref() {
            Some("model") => messages.push(assistant(c.parts, &mut ids)),
            Some("user") | Some("function") | Some("tool") | None => {
                user(c.parts, &mut ids, &mut messages, (i, target))?
            }
            Some(other) => return Err(LlmError::Unsupported(format!("content role {other:?}"))),
        }
    }
    if messages.iter().all(|m| m.role == "system") {
        return Err(LlmError::InvalidRequest("`contents` is empty".into()));
    }
    let (tools, tool_choice) = tools(req.tools, req.tool_config);
    let g = req.generation_config.unwrap_or_default();
    let response_format = match g.response_mime_type.as_deref() {
        Some("application/json") => Some(match g.response_json_schema {
            Some(schema) => serde_json::json!({
                "type": "json_schema",
                "json_schema": {"name": "response", "schema": schema}
            }),
            None => serde_json::json!({"type": "json_object"}),
        }),
        _ => None,
    };
    Ok(oa::ChatRequest {
        model: model.to_owned(),
        messages,
        max_tokens: g.max_output_tokens,
        temperature: g.temperature,
        top_p: g.top_p,
        n: g.candidate_count.filter(|n| *n > 1),
        stop: g
            .stop_sequences
            .filter(|s| !s.is_empty())
            .map(oa::Stop::Many),
        stream: stream.then_some(true),
        // Usage is always asked for, so a stream's last event can carry `usageMetadata`.
        stream_options: stream.then_some(oa::StreamOptions {
            include_usage: Some(true),
        }),
        tools,
        tool_choice,
        presence_penalty: g.presence_penalty,
        frequency_penalty: g.frequency_penalty,
        seed: g.seed,
        response_format,
        ..Default::default()
    })
}

fn assistant(parts: Vec<gm::Part>, ids: &mut CallIds) -> oa::ChatMessage {
    let mut text = String::new();
    let mut calls = Vec::new();
    for p in parts {
        if let Some(fc) = p.function_call {
            calls.push(oa::ToolCall {
                id: ids.call(&fc.name, fc.id),
                kind: oa::function_type(),
                function: oa::FunctionCall {
                    arguments: object_to_arguments(&fc.args),
                    name: fc.name,
                },
            });
        } else if let Some(t) = p.text.filter(|_| p.thought != Some(true)) {
            text.push_str(&t);
        }
    }
    oa::ChatMessage {
        role: "assistant".into(),
        content: (!text.is_empty() || calls.is_empty()).then_some(MessageContent::Text(text)),
        tool_calls: (!calls.is_empty()).then_some(calls),
        ..Default::default()
    }
}

/// A user turn: its function responses become `tool` messages (first, answering the calls
/// just made), the rest one `user` message.
fn user(
    parts: Vec<gm::Part>,
    ids: &mut CallIds,
    messages: &mut Vec<oa::ChatMessage>,
    (i, target): (usize, Protocol),
) -> Result<(), LlmError> {
    let mut content = Vec::new();
    for (j, p) in parts.into_iter().enumerate() {
        if let Some(fr) = p.function_response {
            let text = match fr.response {
                Value::String(s) => s,
                v => v.to_string(),
            };
            messages.push(oa::ChatMessage {
                role: "tool".into(),
                tool_call_id: Some(ids.response(&fr.name, fr.id)),
                content: Some(MessageContent::Text(text)),
                ..Default::default()
            });
        } else if let Some(t) = p.text {
            content.push(ContentPart::Text { text: t });
        } else if let Some(blob) = p.inline_data {
            let path = format!("contents[{i}].parts[{j}]");
            content.push(inline_media(blob, &path, target)?);
        } else if let Some(file) = p.file_data {
            let path = format!("contents[{i}].parts[{j}]");
            content.push(file_media(file, &path, target)?);
        }
    }
    if content.is_empty() {
        return Ok(());
    }
    let content = match content.as_slice() {
        [ContentPart::Text { text }] => MessageContent::Text(text.clone()),
        _ => MessageContent::Parts(content),
    };
    messages.push(oa::ChatMessage {
        role: "user".into(),
        content: Some(content),
        ..Default::default()
    });
    Ok(())
}

fn target_name(target: Protocol) -> &'static str {
    match target {
        Protocol::Anthropic => TO_ANTHROPIC,
        _ => TO_OPENAI,
    }
}

/// Why `target` cannot take media of type `mime` at all, if it cannot.
fn lacks(target: Protocol, mime: &str) -> Option<&'static str> {
    match target {
        Protocol::Anthropic => anthropic_lacks(mime),
        _ => openai_lacks(mime),
    }
}

/// `inlineData`: images -> `image_url` (data: URL); wav/mp3 audio -> `input_audio` (OpenAI);
/// PDFs -> `file`; text/* -> a text part (OpenAI) or a `file` the Anthropic converter makes a
/// text document; the rest is refused.
fn inline_media(blob: gm::Blob, path: &str, target: Protocol) -> Result<ContentPart, LlmError> {
    let mime = blob.mime_type.to_ascii_lowercase();
    if let Some(why) = lacks(target, &mime) {
        let what = format!("inlineData ({mime})");
        return Err(refuse(path, &what, target_name(target), why));
    }
    if mime.starts_with("image/") {
        let url = data_url(&mime, &blob.data);
        return Ok(ContentPart::ImageUrl {
            image_url: oa::ImageUrl { url, detail: None },
        });
    }
    if let Some(format) = openai_audio_format(&mime) {
        return Ok(ContentPart::InputAudio {
            input_audio: serde_json::json!({"data": blob.data, "format": format}),
        });
    }
    if mime.starts_with("text/") && target == Protocol::OpenAi {
        return base64_text(&blob.data)
            .map(|text| ContentPart::Text { text })
            .ok_or_else(|| {
                LlmError::InvalidRequest(format!(
                    "{path}: inlineData ({mime}) is not base64-encoded UTF-8 text"
                ))
            });
    }
    Ok(file_part(data_url(&mime, &blob.data), &mime))
}

/// `fileData`: an http(s) image -> `image_url`; an http(s) PDF -> a `file` holding the URL
/// (an Anthropic url document); Cloud Storage / Files API URIs, and files OpenAI cannot
/// fetch by URL, are refused.
fn file_media(file: gm::FileData, path: &str, target: Protocol) -> Result<ContentPart, LlmError> {
    let mime = file
        .mime_type
        .as_deref()
        .or_else(|| guess_media_type(&file.file_uri))
        .unwrap_or("image/jpeg")
        .to_ascii_lowercase();
    let to = target_name(target);
    let what = format!("fileData ({mime})");
    if let Some(why) = lacks(target, &mime) {
        return Err(refuse(path, &what, to, why));
    }
    if gemini_only_uri(&file.file_uri) {
        let why = "only Gemini reads Cloud Storage and Gemini Files API URIs";
        return Err(refuse(path, &what, to, why));
    }
    if mime.starts_with("image/") {
        return Ok(ContentPart::ImageUrl {
            image_url: oa::ImageUrl {
                url: file.file_uri,
                detail: None,
            },
        });
    }
    match (target, mime.as_str()) {
        (Protocol::Anthropic, PDF) => Ok(file_part(file.file_uri, &mime)),
        (Protocol::Anthropic, _) => Err(refuse(path, &what, to, "it fetches only PDFs by URL")),
        _ => Err(refuse(path, &what, to, "it fetches only images by URL")),
    }
}

fn file_part(file_data: String, mime: &str) -> ContentPart {
    let filename = if mime == PDF {
        "document.pdf"
    } else {
        "document"
    };
    ContentPart::File {
        file: oa::FilePart {
            file_data: Some(file_data),
            file_id: None,
            filename: Some(filename.into()),
        },
    }
}

fn tools(
    tools: Option<Vec<gm::Tool>>,
    config: Option<gm::ToolConfig>,
) -> (Option<Vec<oa::Tool>>, Option<oa::ToolChoice>) {
    let defs: Vec<oa::Tool> = tools
        .unwrap_or_default()
        .into_iter()
        .flat_map(|t| t.function_declarations.unwrap_or_default())
        .map(|d| oa::Tool {
            kind: oa::function_type(),
            function: Some(oa::FunctionDef {
                name: d.name,
                description: d.description,
                parameters: Some(d.parameters.map_or_else(super::empty_schema, lower_types)),
                strict: None,
            }),
        })
        .collect();
    if defs.is_empty() {
        return (None, None);
    }
    let choice = config.map(|c| {
        let f = c.function_calling_config;
        let names = f.allowed_function_names.unwrap_or_default();
        match (f.mode.as_str(), names.as_slice()) {
            ("NONE", _) => oa::ToolChoice::Mode("none".into()),
            ("ANY", [one]) => oa::ToolChoice::Named(oa::NamedToolChoice {
                kind: oa::function_type(),
                function: oa::NamedFunction { name: one.clone() },
            }),
            ("ANY", _) => oa::ToolChoice::Mode("required".into()),
            _ => oa::ToolChoice::Mode("auto".into()),
        }
    });
    (Some(defs), choice)
}

/// Gemini schemas may spell types in upper case (`OBJECT`, `STRING`); JSON schema wants
/// lower case.
fn lower_types(mut v: Value) -> Value {
    match &mut v {
        Value::Object(o) => {
            for (k, child) in o.iter_mut() {
                if k == "type"
                    && let Value::String(s) = child
                {
                    *s = s.to_ascii_lowercase();
                } else {
                    *child = lower_types(std::mem::take(child));
                }
            }
        }
        Value::Array(a) => {
            for child in a.iter_mut() {
                *child = lower_types(std::mem::take(child));
            }
        }
        _ => {}
    }
    v
}

/// OpenAI chat completion -> Gemini response (one candidate per choice).
pub(crate) fn response(
    resp: oa::ChatCompletion,
    usage: Option<Usage>,
    client_model: &str,
) -> gm::GenerateResponse {
    let candidates = resp
        .choices
        .into_iter()
        .map(|choice| {
            let m = choice.message;
            let mut parts = Vec::new();
            if let Some(r) = m.reasoning_content.filter(|r| !r.is_empty()) {
                parts.push(gm::Part {
                    text: Some(r),
                    thought: Some(true),
                    ..Default::default()
                });
            }
            let text = match m.content {
                Some(MessageContent::Text(t)) => t,
                Some(MessageContent::Parts(p)) => p
                    .into_iter()
                    .filter_map(|p| match p {
                        ContentPart::Text { text } => Some(text),
                        _ => None,
                    })
                    .collect(),
                None => m.refusal.unwrap_or_default(),
            };
            if !text.is_empty() {
                parts.push(gm::Part {
                    text: Some(text),
                    ..Default::default()
                });
            }
            for call in m.tool_calls.unwrap_or_default() {
                parts.push(gm::Part {
                    function_call: Some(gm::FunctionCall {
                        id: Some(call.id),
                        args: arguments_to_object(&call.function.arguments),
                        name: call.function.name,
                    }),
                    ..Default::default()
                });
            }
            gm::Candidate {
                content: Some(gm::Content {
                    role: Some("model".into()),
                    parts,
                }),
                finish_reason: Some(
                    Finish::from_openai(choice.finish_reason.as_deref().unwrap_or("stop"))
                        .to_gemini()
                        .to_owned(),
                ),
                index: Some(choice.index),
            }
        })
        .collect();
    gm::GenerateResponse {
        candidates,
        usage_metadata: usage.map(|u| u.to_gemini()),
        model_version: Some(client_model.to_owned()),
        response_id: (!resp.id.is_empty()).then_some(resp.id),
        ..Default::default()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn parse(v: Value) -> gm::GenerateRequest {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn request_maps_roles_tools_and_config() {
        let req = parse(serde_json::json!({
            "systemInstruction": {"parts": [{"text": "be brief"}]},
            "contents": [
                {"role": "user", "parts": [{"text": "weather?"},
                    {"inline_data": {"mime_type": "image/png", "data": "AAAA"}}]},
                {"role": "model", "parts": [{"functionCall": {"name": "get", "args": {"city": "Oslo"}}}]},
                {"role": "user", "parts": [{"functionResponse": {"name": "get", "response": {"t": 3}}}]}
            ],
            "tools": [{"functionDeclarations": [{"name": "get", "parameters": {"type": "OBJECT", "properties": {"city": {"type": "STRING"}}}}]}],
            "toolConfig": {"functionCallingConfig": {"mode": "ANY"}},
            "generationConfig": {"temperature": 0.5, "topP": 0.9, "maxOutputTokens": 77, "stopSequences": ["END"]}
        }));
        let out = request_for(req, "up", true, Protocol::OpenAi).unwrap();
        let v = serde_json::to_value(&out).unwrap();
        assert_eq!(v["model"], "up");
        assert_eq!(v["messages"][0]["role"], "system");
        assert_eq!(v["messages"][0]["content"], "be brief");
        assert_eq!(v["messages"][1]["content"][1]["type"], "image_url");
        assert_eq!(
            v["messages"][1]["content"][1]["image_url"]["url"],
            "data:image/png;base64,AAAA"
        );
        let call_id = v["messages"][2]["tool_calls"][0]["id"].clone();
        assert_eq!(
            v["messages"][2]["tool_calls"][0]["function"]["arguments"],
            r#"{"city":"Oslo"}"#
        );
        assert_eq!(v["messages"][3]["role"], "tool");
        assert_eq!(v["messages"][3]["tool_call_id"], call_id);
        assert_eq!(v["messages"][3]["content"], r#"{"t":3}"#);
        assert_eq!(v["tools"][0]["function"]["parameters"]["type"], "object");
        assert_eq!(
            v["tools"][0]["function"]["parameters"]["properties"]["city"]["type"],
            "string"
        );
        assert_eq!(v["tool_choice"], "required");
        assert_eq!(v["max_tokens"], 77);
        assert_eq!(v["temperature"], 0.5);
        assert_eq!(v["top_p"], 0.9);
        assert_eq!(v["stop"][0], "END");
        assert_eq!(v["stream"], true);
        assert_eq!(v["stream_options"]["include_usage"], true);
    }

    #[test]
    fn empty_contents_are_refused() {
        let req = parse(serde_json::json!({"contents": []}));
        assert!(request_for(req, "m", false, Protocol::OpenAi).is_err());
    }

    #[test]
    fn response_maps_text_calls_finish_and_usage() {
        let resp: oa::ChatCompletion = serde_json::from_value(serde_json::json!({
            "id": "x", "choices": [{"index": 0, "finish_reason": "length",
                "message": {"role": "assistant", "content": "hi",
                    "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{\"a\":1}"}}]}}]
        }))
        .unwrap();
        let usage = Usage {
            input_tokens: 3,
            output_tokens: 4,
            ..Default::default()
        };
        let v = serde_json::to_value(response(resp, Some(usage), "g")).unwrap();
        let c = &v["candidates"][0];
        assert_eq!(c["content"]["role"], "model");
        assert_eq!(c["content"]["parts"][0]["text"], "hi");
        assert_eq!(c["content"]["parts"][1]["functionCall"]["args"]["a"], 1);
        assert_eq!(c["finishReason"], "MAX_TOKENS");
        assert_eq!(v["usageMetadata"]["promptTokenCount"], 3);
        assert_eq!(v["usageMetadata"]["candidatesTokenCount"], 4);
        assert_eq!(v["usageMetadata"]["totalTokenCount"], 7);
        assert_eq!(v["modelVersion"], "g");
    }
}
