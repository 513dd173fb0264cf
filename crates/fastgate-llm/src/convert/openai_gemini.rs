//! OpenAI client -> Gemini upstream: the request OpenAI -> Gemini `generateContent`, the
//! response Gemini -> OpenAI.

use std::collections::HashMap;

use serde_json::Value;

use super::media::{PDF, TO_GEMINI, audio_mime, refuse};
use super::{Finish, arguments_to_object, guess_media_type, object_to_arguments, parse_data_url};
use crate::wire::gemini as gm;
use crate::wire::openai::{self as oa, ContentPart, MessageContent};
use crate::{LlmError, Usage};

/// Upstream path for a Gemini model: `/v1beta/models/{model}:generateContent` or
/// `:streamGenerateContent?alt=sse`. A leading `models/` in the name is accepted.
pub fn gemini_path(model: &str, stream: bool) -> String {
    let model = model.strip_prefix("models/").unwrap_or(model);
    if stream {
        format!("/v1beta/models/{model}:streamGenerateContent?alt=sse")
    } else {
        format!("/v1beta/models/{model}:generateContent")
    }
}

/// OpenAI chat request -> Gemini request.
pub(crate) fn request(req: oa::ChatRequest) -> Result<gm::GenerateRequest, LlmError> {
    let mut system = Vec::new();
    let mut contents: Vec<gm::Content> = Vec::new();
    // tool_call_id -> function name (Gemini function responses are matched by name).
    let mut call_names: HashMap<String, String> = HashMap::new();
    for (i, m) in req.messages.into_iter().enumerate() {
        match m.role.as_str() {
            "system" | "developer" => system.extend(text_parts(m.content)),
            "user" => push_merged(&mut contents, "user", user_parts(m.content, i)?),
            "assistant" => {
                let mut parts = text_parts(m.content);
                for call in m.tool_calls.unwrap_or_default() {
                    call_names.insert(call.id.clone(), call.function.name.clone());
                    parts.push(gm::Part {
                        function_call: Some(gm::FunctionCall {
                            id: None,
                            name: call.function.name,
                            args: arguments_to_object(&call.function.arguments),
                        }),
                        ..Default::default()
                    });
                }
                if !parts.is_empty() {
                    push_merged(&mut contents, "model", parts);
                }
            }
            "tool" => {
                let id = m.tool_call_id.unwrap_or_default();
                let name = call_names.get(&id).cloned().unwrap_or(id);
                let text: String = text_parts(m.content)
                    .into_iter()
                    .filter_map(|p| p.text)
                    .collect();
                let response = match serde_json::from_str::<Value>(&text) {
                    Ok(v @ Value::Object(_)) => v,
                    _ => serde_json::json!({ "content": text }),
                };
                let part = gm::Part {
                    function_response: Some(gm::FunctionResponse {
                        id: None,
                        name,
                        response,
                    }),
                    ..Default::default()
                };
                push_merged(&mut contents, "user", vec![part]);
            }
            other => return Err(LlmError::Unsupported(format!("message role {other:?}"))),
        }
    }
    if contents.is_empty() {
        return Err(LlmError::InvalidRequest(
            "no user or assistant messages".into(),
        ));
    }
    let (tools, tool_config) = tools(req.tools, req.tool_choice)?;
    Ok(gm::GenerateRequest {
        contents,
        system_instruction: (!system.is_empty()).then_some(gm::Content {
            role: None,
            parts: system,
        }),
        generation_config: Some(generation_config(
            req.temperature,
            req.top_p,
            req.max_completion_tokens.or(req.max_tokens),
            req.stop,
            req.n,
            req.response_format,
            (req.presence_penalty, req.frequency_penalty, req.seed),
        )),
        tools,
        tool_config,
    })
}

fn generation_config(
    temperature: Option<f64>,
    top_p: Option<f64>,
    max: Option<u32>,
    stop: Option<oa::Stop>,
    n: Option<u32>,
    format: Option<Value>,
    (presence_penalty, frequency_penalty, seed): (Option<f64>, Option<f64>, Option<i64>),
) -> gm::GenerationConfig {
    let (mime, schema) = match format
        .as_ref()
        .and_then(|f| f.get("type"))
        .and_then(Value::as_str)
    {
        Some("json_object") => (Some("application/json".to_owned()), None),
        Some("json_schema") => (
            Some("application/json".to_owned()),
            format
                .as_ref()
                .and_then(|f| f.pointer("/json_schema/schema"))
                .cloned(),
        ),
        _ => (None, None),
    };
    gm::GenerationConfig {
        temperature,
        top_p,
        max_output_tokens: max,
        stop_sequences: stop.map(oa::Stop::into_vec).filter(|v| !v.is_empty()),
        candidate_count: n.filter(|n| *n > 1),
        presence_penalty,
        frequency_penalty,
        seed,
        response_mime_type: mime,
        response_json_schema: schema,
    }
}

fn push_merged(contents: &mut Vec<gm::Content>, role: &str, parts: Vec<gm::Part>) {
    if let Some(last) = contents
        .last_mut()
        .filter(|c| c.role.as_deref() == Some(role))
    {
        last.parts.extend(parts);
        return;
    }
    contents.push(gm::Content {
        role: Some(role.to_owned()),
        parts,
    });
}

fn text_part(text: String) -> gm::Part {
    gm::Part {
        text: Some(text),
        ..Default::default()
    }
}

fn text_parts(content: Option<MessageContent>) -> Vec<gm::Part> {
    match content {
        None => Vec::new(),
        Some(MessageContent::Text(t)) if t.is_empty() => Vec::new(),
        Some(MessageContent::Text(t)) => vec![text_part(t)],
        Some(MessageContent::Parts(parts)) => parts
            .into_iter()
            .filter_map(|p| match p {
                ContentPart::Text { text } | ContentPart::Refusal { refusal: text } => {
                    Some(text_part(text))
                }
                _ => None,
            })
            .collect(),
    }
}

fn user_parts(content: Option<MessageContent>, i: usize) -> Result<Vec<gm::Part>, LlmError> {
    let parts = match content {
        None => return Ok(Vec::new()),
        Some(MessageContent::Text(t)) => return Ok(vec![text_part(t)]),
        Some(MessageContent::Parts(p)) => p,
    };
    let mut out = Vec::with_capacity(parts.len());
    for (j, p) in parts.into_iter().enumerate() {
        match p {
            ContentPart::Text { text } | ContentPart::Refusal { refusal: text } => {
                out.push(text_part(text))
            }
            ContentPart::ImageUrl { image_url } => {
                out.push(media_part(image_url.url, None, "image/jpeg"))
            }
            ContentPart::File { file } => match file.file_data {
                Some(url) => out.push(media_part(url, file.filename.as_deref(), PDF)),
                None => {
                    return Err(refuse(
                        &format!("messages[{i}].content[{j}]"),
                        "file (file_id)",
                        TO_GEMINI,
                        "OpenAI file ids are readable only by OpenAI",
                    ));
                }
            },
            ContentPart::InputAudio { input_audio } => out.push(audio_part(&input_audio, i, j)?),
            ContentPart::Other => {}
        }
    }
    Ok(out)
}

/// data: URL -> `inlineData` (any media type); any other URL -> `fileData` (Gemini fetches
/// `fileUri`s it supports: Files API URIs, Cloud Storage, and public URLs on recent models),
/// its media type guessed from the file name or URL, else `default_mime`.
fn media_part(url: String, filename: Option<&str>, default_mime: &str) -> gm::Part {
    match parse_data_url(&url) {
        Some((mime_type, data)) => gm::Part {
            inline_data: Some(gm::Blob { mime_type, data }),
            ..Default::default()
        },
        None => {
            let mime = filename
                .and_then(guess_media_type)
                .or_else(|| guess_media_type(&url))
                .unwrap_or(default_mime);
            gm::Part {
                file_data: Some(gm::FileData {
                    mime_type: Some(mime.to_owned()),
                    file_uri: url,
                }),
                ..Default::default()
            }
        }
    }
}

/// `input_audio` {data, format} -> `inlineData` `audio/{format}` (`audio/wav`, `audio/mp3`).
fn audio_part(v: &Value, i: usize, j: usize) -> Result<gm::Part, LlmError> {
    let data = v.get("data").and_then(Value::as_str);
    let format = v.get("format").and_then(Value::as_str).unwrap_or("wav");
    match data {
        Some(d) => Ok(gm::Part {
            inline_data: Some(gm::Blob {
                mime_type: audio_mime(format),
                data: d.to_owned(),
            }),
            ..Default::default()
        }),
        None => Err(LlmError::InvalidRequest(format!(
            "messages[{i}].content[{j}]: input_audio without data"
        ))),
    }
}

type Tools = (Option<Vec<gm::Tool>>, Option<gm::ToolConfig>);

fn tools(tools: Option<Vec<oa::Tool>>, choice: Option<oa::ToolChoice>) -> Result<Tools, LlmError> {
    let Some(tools) = tools.filter(|t| !t.is_empty()) else {
        return Ok((None, None));
    };
    let mut decls = Vec::with_capacity(tools.len());
    for t in tools {
        let f = match (t.kind.as_str(), t.function) {
            ("function", Some(f)) => f,
            (kind, _) => return Err(LlmError::Unsupported(format!("tool type {kind:?}"))),
        };
        decls.push(gm::FunctionDeclaration {
            name: f.name,
            description: f.description,
            parameters: f.parameters.map(clean_schema),
        });
    }
    let config = choice.map(|c| {
        let (mode, names) = match c {
            oa::ToolChoice::Mode(m) => match m.as_str() {
                "none" => ("NONE", None),
                "required" => ("ANY", None),
                _ => ("AUTO", None),
            },
            oa::ToolChoice::Named(n) => ("ANY", Some(vec![n.function.name])),
        };
        gm::ToolConfig {
            function_calling_config: gm::FunctionCallingConfig {
                mode: mode.to_owned(),
                allowed_function_names: names,
            },
        }
    });
    Ok((
        Some(vec![gm::Tool {
            function_declarations: Some(decls),
        }]),
        config,
    ))
}

/// Gemini `parameters` take an OpenAPI subset: drop the JSON-schema keys it rejects.
fn clean_schema(mut v: Value) -> Value {
    if let Value::Object(o) = &mut v {
        o.remove("$schema");
        o.remove("additionalProperties");
        o.remove("strict");
        for (_, child) in o.iter_mut() {
            *child = clean_schema(std::mem::take(child));
        }
    } else if let Value::Array(a) = &mut v {
        for child in a.iter_mut() {
            *child = clean_schema(std::mem::take(child));
        }
    }
    v
}

/// Gemini response -> OpenAI chat completion (one choice per candidate).
pub(crate) fn response(
    resp: gm::GenerateResponse,
    client_model: &str,
) -> (oa::ChatCompletion, Option<Usage>) {
    let usage = resp.usage_metadata.as_ref().map(Usage::from_gemini);
    let mut choices = Vec::new();
    for (i, cand) in resp.candidates.into_iter().enumerate() {
        let mut text = String::new();
        let mut reasoning = String::new();
        let mut calls = Vec::new();
        for part in cand.content.map(|c| c.parts).unwrap_or_default() {
            if let Some(fc) = part.function_call {
                calls.push(oa::ToolCall {
                    id: fc.id.unwrap_or_else(|| format!("call_{i}_{}", calls.len())),
                    kind: oa::function_type(),
                    function: oa::FunctionCall {
                        name: fc.name,
                        arguments: object_to_arguments(&fc.args),
                    },
                });
            } else if let Some(t) = part.text {
                if part.thought == Some(true) {
                    reasoning.push_str(&t);
                } else {
                    text.push_str(&t);
                }
            }
        }
        let finish = cand.finish_reason.as_deref().map(|r| {
            Finish::from_gemini(r, !calls.is_empty())
                .to_openai()
                .to_owned()
        });
        choices.push(oa::Choice {
            index: cand.index.unwrap_or(i as u32),
            message: oa::ChatMessage {
                role: "assistant".into(),
                content: (!text.is_empty() || calls.is_empty())
                    .then_some(MessageContent::Text(text)),
                tool_calls: (!calls.is_empty()).then_some(calls),
                reasoning_content: (!reasoning.is_empty()).then_some(reasoning),
                ..Default::default()
            },
            finish_reason: finish,
        });
    }
    if choices.is_empty() && resp.prompt_feedback.and_then(|f| f.block_reason).is_some() {
        choices.push(oa::Choice {
            index: 0,
            message: oa::ChatMessage {
                role: "assistant".into(),
                content: Some(MessageContent::Text(String::new())),
                ..Default::default()
            },
            finish_reason: Some("content_filter".into()),
        });
    }
    let out = oa::ChatCompletion {
        id: resp
            .response_id
            .map(|id| format!("chatcmpl-{id}"))
            .unwrap_or_else(|| "chatcmpl-gemini".into()),
        object: "chat.completion".into(),
        created: super::unix_now(),
        model: client_model.to_owned(),
        choices,
        usage: usage.map(|u| u.to_openai()),
    };
    (out, usage)
}
