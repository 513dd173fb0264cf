//! OpenAI client -> Anthropic upstream: the request OpenAI -> Anthropic, the response
//! Anthropic -> OpenAI.

use super::media::{PDF, TO_ANTHROPIC, anthropic_lacks, base64_text, gemini_only_uri, refuse};
use super::{
    Finish, arguments_to_object, empty_schema, guess_media_type, object_to_arguments,
    parse_data_url,
};
use crate::wire::anthropic::{self as an, ContentBlock};
use crate::wire::openai::{self as oa, ContentPart, MessageContent};
use crate::{LlmError, RequestOptions, Usage};

/// OpenAI chat request -> Anthropic messages request.
pub(crate) fn request(
    req: oa::ChatRequest,
    opts: &RequestOptions,
) -> Result<an::MessagesRequest, LlmError> {
    if req.n.unwrap_or(1) > 1 {
        return Err(LlmError::Unsupported(
            "n > 1 with an Anthropic upstream".into(),
        ));
    }
    let mut system: Vec<ContentBlock> = Vec::new();
    let mut messages: Vec<an::Message> = Vec::new();
    for (i, m) in req.messages.into_iter().enumerate() {
        match m.role.as_str() {
            "system" | "developer" => {
                for text in texts(m.content).into_iter().filter(|t| !t.is_empty()) {
                    system.push(ContentBlock::text(text));
                }
            }
            "user" => {
                // Anthropic rejects empty text blocks and empty messages.
                let blocks = user_blocks(m.content, i)?;
                if !blocks.is_empty() {
                    push_merged(&mut messages, "user", blocks);
                }
            }
            "assistant" => {
                let blocks = assistant_blocks(m);
                if !blocks.is_empty() {
                    push_merged(&mut messages, "assistant", blocks);
                }
            }
            "tool" => {
                let block = ContentBlock::ToolResult {
                    tool_use_id: m.tool_call_id.unwrap_or_default(),
                    content: Some(an::ToolResultContent::Text(texts(m.content).join(""))),
                    is_error: None,
                };
                push_merged(&mut messages, "user", vec![block]);
            }
            other => return Err(LlmError::Unsupported(format!("message role {other:?}"))),
        }
    }
    if messages.is_empty() {
        return Err(LlmError::InvalidRequest(
            "no user or assistant messages".into(),
        ));
    }
    let (tools, tool_choice) = tools(req.tools, req.tool_choice, req.parallel_tool_calls)?;
    Ok(an::MessagesRequest {
        model: opts.upstream_model.to_owned(),
        messages,
        system: system_prompt(system),
        max_tokens: Some(
            req.max_completion_tokens
                .or(req.max_tokens)
                .unwrap_or(opts.default_max_tokens),
        ),
        stop_sequences: req.stop.map(oa::Stop::into_vec).filter(|v| !v.is_empty()),
        // OpenAI allows 0..=2, Anthropic 0..=1.
        temperature: req.temperature.map(|t| t.clamp(0.0, 1.0)),
        top_p: req.top_p,
        top_k: None,
        stream: req.stream.filter(|s| *s),
        tools,
        tool_choice,
        metadata: req.user.map(|u| an::Metadata { user_id: Some(u) }),
        thinking: None,
    })
}

fn system_prompt(mut blocks: Vec<ContentBlock>) -> Option<an::System> {
    match blocks.len() {
        0 => None,
        1 => match blocks.pop() {
            Some(ContentBlock::Text { text, .. }) => Some(an::System::Text(text)),
            _ => None,
        },
        _ => Some(an::System::Blocks(blocks)),
    }
}

/// Append blocks, merging into the previous message when it has the same role
/// (Anthropic requires alternation; consecutive tool results become one user message).
pub(crate) fn push_merged(messages: &mut Vec<an::Message>, role: &str, blocks: Vec<ContentBlock>) {
    if let Some(last) = messages.last_mut().filter(|m| m.role == role) {
        let prev = std::mem::replace(&mut last.content, an::Content::Blocks(Vec::new()));
        let mut all = prev.into_blocks();
        all.extend(blocks);
        last.content = an::Content::Blocks(all);
        return;
    }
    let content = match blocks.as_slice() {
        [
            ContentBlock::Text {
                text,
                cache_control: None,
            },
        ] => an::Content::Text(text.clone()),
        _ => an::Content::Blocks(blocks),
    };
    messages.push(an::Message {
        role: role.to_owned(),
        content,
    });
}

/// Text of a system/tool message (images are not allowed there).
fn texts(content: Option<MessageContent>) -> Vec<String> {
    match content {
        None => Vec::new(),
        Some(MessageContent::Text(t)) => vec![t],
        Some(MessageContent::Parts(parts)) => parts
            .into_iter()
            .filter_map(|p| match p {
                ContentPart::Text { text } => Some(text),
                _ => None,
            })
            .collect(),
    }
}

fn user_blocks(content: Option<MessageContent>, i: usize) -> Result<Vec<ContentBlock>, LlmError> {
    let parts = match content {
        None => return Ok(Vec::new()),
        Some(MessageContent::Text(t)) if t.is_empty() => return Ok(Vec::new()),
        Some(MessageContent::Text(t)) => return Ok(vec![ContentBlock::text(t)]),
        Some(MessageContent::Parts(parts)) => parts,
    };
    let mut blocks = Vec::with_capacity(parts.len());
    for (j, p) in parts.into_iter().enumerate() {
        if let Some(b) = part_block(p, &format!("messages[{i}].content[{j}]"))? {
            blocks.push(b);
        }
    }
    Ok(blocks)
}

fn part_block(p: ContentPart, path: &str) -> Result<Option<ContentBlock>, LlmError> {
    Ok(Some(match p {
        ContentPart::Text { text } if text.is_empty() => return Ok(None),
        ContentPart::Text { text } => ContentBlock::text(text),
        ContentPart::Refusal { refusal } => ContentBlock::text(refusal),
        ContentPart::ImageUrl { image_url } => ContentBlock::Image {
            source: image_source(&image_url.url),
        },
        ContentPart::File { file } => file_block(file, path)?,
        ContentPart::InputAudio { .. } => {
            return Err(refuse(
                path,
                "input_audio",
                TO_ANTHROPIC,
                "it has no audio input",
            ));
        }
        ContentPart::Other => return Ok(None),
    }))
}

pub(crate) fn image_source(url: &str) -> an::Source {
    match parse_data_url(url) {
        Some((media_type, data)) => an::Source::Base64 { media_type, data },
        None => an::Source::Url {
            url: url.to_owned(),
        },
    }
}

/// An OpenAI `file` part as an Anthropic block: PDFs become `document`s (base64, or url for
/// an http(s) URL, which Gemini clients' `fileData` produce), text/* a text-source document,
/// images an `image`; anything else is refused.
fn file_block(file: oa::FilePart, path: &str) -> Result<ContentBlock, LlmError> {
    let Some(url) = file.file_data else {
        return Err(refuse(
            path,
            "file (file_id)",
            TO_ANTHROPIC,
            "OpenAI file ids are readable only by OpenAI",
        ));
    };
    let Some((media_type, data)) = parse_data_url(&url) else {
        return url_document(url, file.filename.as_deref(), path);
    };
    if let Some(why) = anthropic_lacks(&media_type) {
        return Err(refuse(
            path,
            &format!("file ({media_type})"),
            TO_ANTHROPIC,
            why,
        ));
    }
    if media_type.starts_with("image/") {
        return Ok(ContentBlock::Image {
            source: an::Source::Base64 { media_type, data },
        });
    }
    if media_type.starts_with("text/") {
        let Some(text) = base64_text(&data) else {
            return Err(LlmError::InvalidRequest(format!(
                "{path}: file ({media_type}) is not base64-encoded UTF-8 text"
            )));
        };
        return Ok(ContentBlock::Document {
            source: an::Source::Text {
                media_type: "text/plain".into(),
                data: text,
            },
        });
    }
    Ok(ContentBlock::Document {
        source: an::Source::Base64 { media_type, data },
    })
}

/// A file given by URL: Anthropic fetches PDFs by http(s) URL (`document` url source).
fn url_document(url: String, filename: Option<&str>, path: &str) -> Result<ContentBlock, LlmError> {
    let mime = filename
        .and_then(guess_media_type)
        .or_else(|| guess_media_type(&url))
        .unwrap_or(PDF);
    if mime != PDF || gemini_only_uri(&url) {
        return Err(refuse(
            path,
            &format!("file by URL ({mime})"),
            TO_ANTHROPIC,
            "it fetches only PDFs at public http(s) URLs",
        ));
    }
    Ok(ContentBlock::Document {
        source: an::Source::Url { url },
    })
}

fn assistant_blocks(m: oa::ChatMessage) -> Vec<ContentBlock> {
    let mut blocks = Vec::new();
    match m.content {
        Some(MessageContent::Text(t)) if !t.is_empty() => blocks.push(ContentBlock::text(t)),
        Some(MessageContent::Parts(parts)) => {
            for p in parts {
                match p {
                    ContentPart::Text { text } | ContentPart::Refusal { refusal: text }
                        if !text.is_empty() =>
                    {
                        blocks.push(ContentBlock::text(text))
                    }
                    _ => {}
                }
            }
        }
        _ => {}
    }
    for call in m.tool_calls.unwrap_or_default() {
        blocks.push(ContentBlock::ToolUse {
            id: call.id,
            name: call.function.name,
            input: arguments_to_object(&call.function.arguments),
        });
    }
    blocks
}

type Tools = (Option<Vec<an::Tool>>, Option<an::ToolChoice>);

fn tools(
    tools: Option<Vec<oa::Tool>>,
    choice: Option<oa::ToolChoice>,
    parallel: Option<bool>,
) -> Result<Tools, LlmError> {
    let Some(tools) = tools.filter(|t| !t.is_empty()) else {
        return Ok((None, None));
    };
    let mut out = Vec::with_capacity(tools.len());
    for t in tools {
        let f = match (t.kind.as_str(), t.function) {
            ("function", Some(f)) => f,
            (kind, _) => return Err(LlmError::Unsupported(format!("tool type {kind:?}"))),
        };
        out.push(an::Tool {
            kind: None,
            name: f.name,
            description: f.description,
            input_schema: Some(f.parameters.unwrap_or_else(empty_schema)),
        });
    }
    let mut choice = match choice {
        None => None,
        Some(oa::ToolChoice::Mode(m)) => match m.as_str() {
            "none" => Some(choice_of("none", None)),
            "required" => Some(choice_of("any", None)),
            _ => Some(choice_of("auto", None)),
        },
        Some(oa::ToolChoice::Named(n)) => Some(choice_of("tool", Some(n.function.name))),
    };
    if parallel == Some(false) {
        let c = choice.get_or_insert_with(|| choice_of("auto", None));
        if c.kind != "none" {
            c.disable_parallel_tool_use = Some(true);
        }
    }
    Ok((Some(out), choice))
}

fn choice_of(kind: &str, name: Option<String>) -> an::ToolChoice {
    an::ToolChoice {
        kind: kind.to_owned(),
        name,
        disable_parallel_tool_use: None,
    }
}

/// Anthropic response -> OpenAI chat completion.
pub(crate) fn response(
    resp: an::MessagesResponse,
    client_model: &str,
) -> (oa::ChatCompletion, Usage) {
    let usage = Usage::from_anthropic(&resp.usage);
    let mut text = String::new();
    let mut reasoning = String::new();
    let mut calls = Vec::new();
    for block in resp.content {
        match block {
            ContentBlock::Text { text: t, .. } => text.push_str(&t),
            ContentBlock::Thinking { thinking, .. } => reasoning.push_str(&thinking),
            ContentBlock::ToolUse { id, name, input } => calls.push(oa::ToolCall {
                id,
                kind: oa::function_type(),
                function: oa::FunctionCall {
                    name,
                    arguments: object_to_arguments(&input),
                },
            }),
            _ => {}
        }
    }
    let finish = resp
        .stop_reason
        .as_deref()
        .map(|r| Finish::from_anthropic(r, None).to_openai().to_owned());
    let message = oa::ChatMessage {
        role: "assistant".into(),
        content: (!text.is_empty() || calls.is_empty()).then_some(MessageContent::Text(text)),
        tool_calls: (!calls.is_empty()).then_some(calls),
        reasoning_content: (!reasoning.is_empty()).then_some(reasoning),
        ..Default::default()
    };
    let out = oa::ChatCompletion {
        id: resp.id,
        object: "chat.completion".into(),
        created: super::unix_now(),
        model: client_model.to_owned(),
        choices: vec![oa::Choice {
            index: 0,
            message,
            finish_reason: finish,
        }],
        usage: Some(usage.to_openai()),
    };
    (out, usage)
}
