//! Anthropic client -> OpenAI upstream: the request Anthropic -> OpenAI, the response
//! OpenAI -> Anthropic.

use super::media::{TO_GEMINI, TO_OPENAI, base64_text, openai_lacks, refuse};
use super::{Finish, arguments_to_object, data_url, empty_schema, object_to_arguments};
use crate::wire::anthropic::{self as an, ContentBlock};
use crate::wire::openai::{self as oa, ContentPart, MessageContent};
use crate::{LlmError, Protocol, RequestOptions, Usage};

/// Anthropic messages request -> OpenAI chat request. Streaming requests always ask for the
/// usage chunk (an Anthropic client always gets usage).
pub(crate) fn request(
    req: an::MessagesRequest,
    opts: &RequestOptions,
) -> Result<oa::ChatRequest, LlmError> {
    request_for(req, opts, Protocol::OpenAi)
}

/// [`request`] for an upstream of protocol `target` reached through the OpenAI
/// representation (OpenAI itself, or Gemini via the OpenAI -> Gemini converter): media
/// parts are checked against `target`'s capabilities here, so refusals name the client's
/// own `messages[i].content[j]`, and parts only the target can take (a PDF by URL for
/// Gemini) are carried in the intermediate `file` part.
pub(crate) fn request_for(
    req: an::MessagesRequest,
    opts: &RequestOptions,
    target: Protocol,
) -> Result<oa::ChatRequest, LlmError> {
    let mut messages = Vec::with_capacity(req.messages.len() + 1);
    if let Some(system) = req.system {
        let text = match system {
            an::System::Text(t) => t,
            an::System::Blocks(b) => join_text(&b),
        };
        if !text.is_empty() {
            messages.push(text_message("system", text));
        }
    }
    for (i, m) in req.messages.into_iter().enumerate() {
        match m.role.as_str() {
            "user" => user_messages(m.content, &mut messages, (i, target))?,
            "assistant" => messages.push(assistant_message(m.content)),
            other => return Err(LlmError::InvalidRequest(format!("message role {other:?}"))),
        }
    }
    let stream = req.stream.unwrap_or(false);
    let max = req.max_tokens.or(Some(opts.default_max_tokens));
    let (max_tokens, max_completion_tokens) = if wants_max_completion_tokens(opts.upstream_model) {
        (None, max)
    } else {
        (max, None)
    };
    let (tools, tool_choice, parallel_tool_calls) = tools(req.tools, req.tool_choice)?;
    Ok(oa::ChatRequest {
        model: opts.upstream_model.to_owned(),
        messages,
        max_tokens,
        max_completion_tokens,
        temperature: req.temperature,
        top_p: req.top_p,
        stop: req
            .stop_sequences
            .filter(|s| !s.is_empty())
            .map(oa::Stop::Many),
        stream: stream.then_some(true),
        stream_options: stream.then_some(oa::StreamOptions {
            include_usage: Some(true),
        }),
        tools,
        tool_choice,
        parallel_tool_calls,
        user: req.metadata.and_then(|m| m.user_id),
        ..Default::default()
    })
}

/// OpenAI reasoning models reject `max_tokens`; most OpenAI-compatible servers only know it.
pub(crate) fn wants_max_completion_tokens(model: &str) -> bool {
    let m = model.rsplit('/').next().unwrap_or(model);
    ["o1", "o3", "o4", "gpt-5"].iter().any(|p| m.starts_with(p))
}

fn text_message(role: &str, text: String) -> oa::ChatMessage {
    oa::ChatMessage {
        role: role.to_owned(),
        content: Some(MessageContent::Text(text)),
        ..Default::default()
    }
}

fn join_text(blocks: &[ContentBlock]) -> String {
    let parts: Vec<&str> = blocks
        .iter()
        .filter_map(|b| match b {
            ContentBlock::Text { text, .. } => Some(text.as_str()),
            _ => None,
        })
        .collect();
    parts.join("\n")
}

/// A user turn: its tool results become `tool` messages (first, as OpenAI wants them right
/// after the assistant's tool calls), the rest one user message.
fn user_messages(
    content: an::Content,
    out: &mut Vec<oa::ChatMessage>,
    (i, target): (usize, Protocol),
) -> Result<(), LlmError> {
    let blocks = match content {
        an::Content::Text(t) => {
            out.push(text_message("user", t));
            return Ok(());
        }
        an::Content::Blocks(b) => b,
    };
    let mut parts = Vec::new();
    for (j, b) in blocks.into_iter().enumerate() {
        let path = || format!("messages[{i}].content[{j}]");
        match b {
            ContentBlock::Text { text, .. } => parts.push(ContentPart::Text { text }),
            ContentBlock::Image { source } => parts.push(image_part(source, &path(), target)?),
            ContentBlock::Document { source } => {
                parts.push(document_part(source, &path(), target)?)
            }
            ContentBlock::ToolResult {
                tool_use_id,
                content,
                ..
            } => out.push(oa::ChatMessage {
                role: "tool".into(),
                content: Some(MessageContent::Text(tool_result_text(content))),
                tool_call_id: Some(tool_use_id),
                ..Default::default()
            }),
            _ => {} // thinking blocks and unknown blocks are dropped
        }
    }
    if parts.is_empty() {
        return Ok(());
    }
    let content = match parts.as_slice() {
        [ContentPart::Text { text }] => MessageContent::Text(text.clone()),
        _ => MessageContent::Parts(parts),
    };
    out.push(oa::ChatMessage {
        role: "user".into(),
        content: Some(content),
        ..Default::default()
    });
    Ok(())
}

fn tool_result_text(content: Option<an::ToolResultContent>) -> String {
    match content {
        None => String::new(),
        Some(an::ToolResultContent::Text(t)) => t,
        Some(an::ToolResultContent::Blocks(b)) => join_text(&b),
    }
}

fn target_name(target: Protocol) -> &'static str {
    match target {
        Protocol::OpenAi => TO_OPENAI,
        _ => TO_GEMINI,
    }
}

fn image_part(source: an::Source, path: &str, target: Protocol) -> Result<ContentPart, LlmError> {
    let url = match source {
        an::Source::Base64 { media_type, data } => data_url(&media_type, &data),
        an::Source::Url { url } => url,
        _ => {
            return Err(refuse(
                path,
                "image (source other than base64 or url)",
                target_name(target),
                "only base64 and url sources are translated",
            ));
        }
    };
    Ok(ContentPart::ImageUrl {
        image_url: oa::ImageUrl { url, detail: None },
    })
}

/// A `document` block: base64 -> a `file` part with a data: URL (PDF for OpenAI; any type
/// for Gemini), text source -> a text part, url source -> a `file` part holding the URL
/// (Gemini `fileData`; refused for OpenAI, whose Chat Completions cannot fetch files).
fn document_part(
    source: an::Source,
    path: &str,
    target: Protocol,
) -> Result<ContentPart, LlmError> {
    let to = target_name(target);
    match source {
        an::Source::Base64 { media_type, data } => {
            if target == Protocol::OpenAi {
                if let Some(why) = openai_lacks(&media_type) {
                    let what = format!("document ({media_type})");
                    return Err(refuse(path, &what, to, why));
                }
                if media_type.starts_with("text/") {
                    return base64_text(&data)
                        .map(|text| ContentPart::Text { text })
                        .ok_or_else(|| {
                            LlmError::InvalidRequest(format!(
                                "{path}: document ({media_type}) is not base64-encoded UTF-8 text"
                            ))
                        });
                }
            }
            Ok(file_part(data_url(&media_type, &data)))
        }
        an::Source::Text { data, .. } => Ok(ContentPart::Text { text: data }),
        an::Source::Url { url } if target != Protocol::OpenAi => Ok(file_part(url)),
        an::Source::Url { .. } => Err(refuse(
            path,
            "document (url source)",
            to,
            "Chat Completions takes files only inline or by file_id",
        )),
        an::Source::Other => Err(refuse(
            path,
            "document (source other than base64, text or url)",
            to,
            "only base64, text and url sources are translated",
        )),
    }
}

/// Anthropic documents are PDFs (base64 and url sources), hence the file name.
fn file_part(file_data: String) -> ContentPart {
    ContentPart::File {
        file: oa::FilePart {
            file_data: Some(file_data),
            file_id: None,
            filename: Some("document.pdf".into()),
        },
    }
}

fn assistant_message(content: an::Content) -> oa::ChatMessage {
    let mut text = String::new();
    let mut calls = Vec::new();
    for b in content.into_blocks() {
        match b {
            ContentBlock::Text { text: t, .. } => text.push_str(&t),
            ContentBlock::ToolUse { id, name, input } => calls.push(oa::ToolCall {
                id,
                kind: oa::function_type(),
                function: oa::FunctionCall {
                    name,
                    arguments: object_to_arguments(&input),
                },
            }),
            _ => {} // thinking / redacted_thinking are dropped
        }
    }
    oa::ChatMessage {
        role: "assistant".into(),
        content: (!text.is_empty() || calls.is_empty()).then_some(MessageContent::Text(text)),
        tool_calls: (!calls.is_empty()).then_some(calls),
        ..Default::default()
    }
}

type Tools = (Option<Vec<oa::Tool>>, Option<oa::ToolChoice>, Option<bool>);

fn tools(tools: Option<Vec<an::Tool>>, choice: Option<an::ToolChoice>) -> Result<Tools, LlmError> {
    let Some(tools) = tools.filter(|t| !t.is_empty()) else {
        return Ok((None, None, None));
    };
    let mut out = Vec::with_capacity(tools.len());
    for t in tools {
        if let Some(kind) = t.kind.as_deref().filter(|k| *k != "custom") {
            return Err(LlmError::Unsupported(format!(
                "server tool {kind:?} with an OpenAI upstream"
            )));
        }
        out.push(oa::Tool {
            kind: oa::function_type(),
            function: Some(oa::FunctionDef {
                name: t.name,
                description: t.description,
                parameters: Some(t.input_schema.unwrap_or_else(empty_schema)),
                strict: None,
            }),
        });
    }
    let parallel = choice
        .as_ref()
        .and_then(|c| c.disable_parallel_tool_use)
        .filter(|d| *d)
        .map(|_| false);
    let choice = choice.map(|c| match c.kind.as_str() {
        "any" => oa::ToolChoice::Mode("required".into()),
        "none" => oa::ToolChoice::Mode("none".into()),
        "tool" => oa::ToolChoice::Named(oa::NamedToolChoice {
            kind: oa::function_type(),
            function: oa::NamedFunction {
                name: c.name.unwrap_or_default(),
            },
        }),
        _ => oa::ToolChoice::Mode("auto".into()),
    });
    Ok((Some(out), choice, parallel))
}

/// OpenAI chat completion -> Anthropic message. `reasoning_content` is dropped (an OpenAI
/// upstream never produces Anthropic thinking blocks: they need Anthropic's signature).
pub(crate) fn response(
    resp: oa::ChatCompletion,
    client_model: &str,
) -> (an::MessagesResponse, Option<Usage>) {
    let usage = resp.usage.as_ref().map(Usage::from_openai);
    let mut content = Vec::new();
    let mut finish = None;
    if let Some(choice) = resp.choices.into_iter().next() {
        finish = choice.finish_reason;
        let m = choice.message;
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
            content.push(ContentBlock::text(text));
        }
        for call in m.tool_calls.unwrap_or_default() {
            content.push(ContentBlock::ToolUse {
                id: call.id,
                name: call.function.name,
                input: arguments_to_object(&call.function.arguments),
            });
        }
    }
    let (stop_reason, stop_sequence) =
        Finish::from_openai(finish.as_deref().unwrap_or("stop")).to_anthropic();
    let out = an::MessagesResponse {
        id: resp.id,
        kind: "message".into(),
        role: "assistant".into(),
        model: client_model.to_owned(),
        content,
        stop_reason: Some(stop_reason.to_owned()),
        stop_sequence,
        usage: usage.unwrap_or_default().to_anthropic(),
    };
    (out, usage)
}
