//! OpenAI Responses API client ↔ Chat Completions representation.
//!
//! Requests: a Responses body (`input` string or items, `instructions`, function tools,
//! `tool_choice`, `max_output_tokens`, `text.format`, `reasoning`, …) becomes a Chat
//! Completions request, which then reaches any upstream protocol. Responses: a chat
//! completion becomes a Responses `response` object ([`super::responses_shape`]).
//! Stateless only: `previous_response_id`, `store: true`, `background: true`,
//! `conversation` and stored `prompt`s are refused here (the proxy passes them through to
//! upstreams that serve the Responses API themselves). The mapping is documented in the
//! crate docs ("Responses API client").

use std::collections::HashSet;

use serde_json::Value;

use super::anthropic_openai::wants_max_completion_tokens;
use super::responses_options::{reasoning_effort, response_format, tools};
use super::responses_parts::{Obj, invalid, part_object, part_text, take_string, user_part};
use super::responses_shape as shape;
use super::{Finish, unix_now};
use crate::wire::openai::{self as oa, ContentPart, MessageContent};
use crate::{LlmError, Protocol, RequestOptions, Usage};

/// Responses request body -> Chat Completions request (model: `opts.upstream_model`), its
/// media checked against `target`, the protocol of the upstream the chat request will be
/// translated to (OpenAI itself, Anthropic or Gemini).
pub(crate) fn request(
    body: Value,
    opts: &RequestOptions,
    target: Protocol,
) -> Result<oa::ChatRequest, LlmError> {
    let Value::Object(mut body) = body else {
        return Err(invalid("the request body must be a JSON object"));
    };
    refuse_stateful(&body)?;
    let mut messages = Vec::new();
    match body.remove("instructions") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) if s.is_empty() => {}
        Some(Value::String(s)) => messages.push(text_message("system", s)),
        Some(_) => return Err(invalid("instructions must be a string")),
    }
    match body.remove("input") {
        Some(Value::String(s)) => messages.push(text_message("user", s)),
        Some(Value::Array(items)) => input_items(items, target, &mut messages)?,
        None | Some(Value::Null) => {
            return Err(invalid(
                "input is required: a string or an array of input items",
            ));
        }
        Some(_) => return Err(invalid("input must be a string or an array of input items")),
    }
    if messages.iter().all(|m| m.role == "system") {
        return Err(invalid("input holds no message for the model to answer"));
    }
    let (tools, tool_choice) = tools(body.remove("tools"), body.remove("tool_choice"))?;
    let max = opt_u32(&body, "max_output_tokens")?;
    let (max_tokens, max_completion_tokens) = if wants_max_completion_tokens(opts.upstream_model) {
        (None, max)
    } else {
        (max, None)
    };
    let user = match opt_str(&body, "safety_identifier")? {
        Some(id) => Some(id),
        None => opt_str(&body, "user")?,
    };
    Ok(oa::ChatRequest {
        model: opts.upstream_model.to_owned(),
        messages,
        max_tokens,
        max_completion_tokens,
        temperature: opt_f64(&body, "temperature")?,
        top_p: opt_f64(&body, "top_p")?,
        stream: opt_bool(&body, "stream")?.filter(|s| *s),
        // Chat Completions rejects `parallel_tool_calls` without tools.
        parallel_tool_calls: opt_bool(&body, "parallel_tool_calls")?.filter(|_| tools.is_some()),
        tools,
        tool_choice,
        user,
        response_format: response_format(body.get("text"))?,
        reasoning_effort: reasoning_effort(body.get("reasoning"))?,
        ..Default::default()
    })
}

/// Requests that need state kept by OpenAI's Responses API are refused with a message
/// saying how to send them statelessly.
fn refuse_stateful(body: &Obj) -> Result<(), LlmError> {
    let set = |key: &str| body.get(key).is_some_and(|v| !v.is_null());
    let why = if set("previous_response_id") {
        "previous_response_id needs the Responses API's stored responses, which this model's \
         upstream does not keep: send the whole conversation in `input` (and `store: false`)"
    } else if body.get("store") == Some(&Value::Bool(true)) {
        "store: true asks the Responses API to keep the response for later retrieval, which \
         this model's upstream cannot do: send `store: false` (or leave `store` out)"
    } else if body.get("background") == Some(&Value::Bool(true)) {
        "background: true needs the Responses API's stored responses (the answer is fetched \
         later), which this model's upstream does not keep: send the request without it"
    } else if set("conversation") {
        "conversation needs the Responses API's stored conversations, which this model's \
         upstream does not keep: send the whole conversation in `input`"
    } else if set("prompt") {
        "prompt refers to a prompt template stored by OpenAI, which this model's upstream \
         cannot read: send its text in `instructions` and `input`"
    } else {
        return Ok(());
    };
    Err(invalid(why))
}

fn text_message(role: &str, text: String) -> oa::ChatMessage {
    oa::ChatMessage {
        role: role.to_owned(),
        content: Some(MessageContent::Text(text)),
        ..Default::default()
    }
}

/// `input` items -> chat messages, in order.
fn input_items(
    items: Vec<Value>,
    target: Protocol,
    out: &mut Vec<oa::ChatMessage>,
) -> Result<(), LlmError> {
    if items.is_empty() {
        return Err(invalid("input is an empty array"));
    }
    // Call ids answered so far must have been called (no stored state to look them up in).
    let mut calls: HashSet<String> = HashSet::new();
    for (i, item) in items.into_iter().enumerate() {
        let Value::Object(mut item) = item else {
            return Err(invalid(format!(
                "input[{i}] must be an object (an input item)"
            )));
        };
        let kind = match item.remove("type") {
            None | Some(Value::Null) => "message".to_owned(),
            Some(Value::String(k)) => k,
            Some(_) => return Err(invalid(format!("input[{i}].type must be a string"))),
        };
        match kind.as_str() {
            "message" => message(item, i, target, out)?,
            "function_call" => function_call(item, i, &mut calls, out)?,
            "function_call_output" => out.push(function_call_output(item, i, &calls)?),
            // Reasoning items carry OpenAI-side state (encrypted content) no other upstream
            // can use: dropped.
            "reasoning" => {}
            "item_reference" => {
                return Err(invalid(format!(
                    "input[{i}]: item type `item_reference` needs the Responses API's stored \
                     state, which this model's upstream does not keep: send the referenced \
                     item itself"
                )));
            }
            other => {
                return Err(invalid(format!(
                    "input[{i}]: item type `{other}` belongs to a built-in tool of OpenAI's \
                     Responses API, which this model's upstream cannot run (only function \
                     tools are carried)"
                )));
            }
        }
    }
    Ok(())
}

/// A `message` item (role user / assistant / system / developer; content a string or parts).
fn message(
    mut item: Obj,
    i: usize,
    target: Protocol,
    out: &mut Vec<oa::ChatMessage>,
) -> Result<(), LlmError> {
    let path = format!("input[{i}]");
    let Some(role) = take_string(&mut item, "role") else {
        return Err(invalid(format!("{path}: message without a string `role`")));
    };
    let content = item.remove("content");
    match role.as_str() {
        "user" => {
            if let Some(c) = user_content(content, &path, target)? {
                out.push(oa::ChatMessage {
                    role: "user".into(),
                    content: Some(c),
                    ..Default::default()
                });
            }
        }
        // `developer` is the newer name of `system`; many OpenAI-compatible servers only
        // know `system`.
        "system" | "developer" => {
            let text = text_content(content, &path, "\n")?;
            out.push(text_message("system", text));
        }
        "assistant" => out.push(text_message("assistant", text_content(content, &path, "")?)),
        other => {
            return Err(invalid(format!(
                "{path}: unknown role `{other}` (expected user, assistant, system or developer)"
            )));
        }
    }
    Ok(())
}

/// A user message's content: a string, or parts (text, images, files, audio). None when
/// it has no parts.
fn user_content(
    content: Option<Value>,
    path: &str,
    target: Protocol,
) -> Result<Option<MessageContent>, LlmError> {
    let parts = match content {
        Some(Value::String(s)) => return Ok(Some(MessageContent::Text(s))),
        Some(Value::Array(parts)) => parts,
        _ => {
            return Err(invalid(format!(
                "{path}: content must be a string or an array"
            )));
        }
    };
    let mut out = Vec::with_capacity(parts.len());
    for (j, part) in parts.into_iter().enumerate() {
        out.push(user_part(part, &format!("{path}.content[{j}]"), target)?);
    }
    Ok(match out.len() {
        0 => None,
        1 if matches!(out[0], ContentPart::Text { .. }) => match out.pop() {
            Some(ContentPart::Text { text }) => Some(MessageContent::Text(text)),
            _ => None,
        },
        _ => Some(MessageContent::Parts(out)),
    })
}

/// The text of a system or assistant message (text, output_text and refusal parts joined
/// by `sep`); other parts cannot be carried there.
fn text_content(content: Option<Value>, path: &str, sep: &str) -> Result<String, LlmError> {
    let parts = match content {
        Some(Value::String(s)) => return Ok(s),
        Some(Value::Array(parts)) => parts,
        _ => {
            return Err(invalid(format!(
                "{path}: content must be a string or an array"
            )));
        }
    };
    let mut texts = Vec::with_capacity(parts.len());
    for (j, part) in parts.into_iter().enumerate() {
        let path = format!("{path}.content[{j}]");
        let (mut p, kind) = part_object(part, &path)?;
        match part_text(&mut p, &kind, &path)? {
            Some(text) => texts.push(text),
            None => {
                return Err(LlmError::Unsupported(format!(
                    "{path}: `{kind}` parts are carried only in user messages (this one is not)"
                )));
            }
        }
    }
    Ok(texts.join(sep))
}

/// A `function_call` item -> a tool call of an assistant message: consecutive calls, and
/// the assistant message right before them, become one message.
fn function_call(
    mut item: Obj,
    i: usize,
    calls: &mut HashSet<String>,
    out: &mut Vec<oa::ChatMessage>,
) -> Result<(), LlmError> {
    let (Some(call_id), Some(name)) = (
        take_string(&mut item, "call_id"),
        take_string(&mut item, "name"),
    ) else {
        return Err(invalid(format!(
            "input[{i}]: function_call needs string `call_id` and `name`"
        )));
    };
    let arguments = match item.remove("arguments") {
        Some(Value::String(s)) => s,
        None | Some(Value::Null) => "{}".to_owned(),
        Some(other) => other.to_string(),
    };
    calls.insert(call_id.clone());
    let call = oa::ToolCall {
        id: call_id,
        kind: oa::function_type(),
        function: oa::FunctionCall { name, arguments },
    };
    match out.last_mut() {
        Some(m) if m.role == "assistant" => m.tool_calls.get_or_insert_with(Vec::new).push(call),
        _ => out.push(oa::ChatMessage {
            role: "assistant".into(),
            tool_calls: Some(vec![call]),
            ..Default::default()
        }),
    }
    Ok(())
}

/// A `function_call_output` item -> a `tool` message. Tool results reach every upstream as
/// text, so image and file parts in `output` are refused.
fn function_call_output(
    mut item: Obj,
    i: usize,
    calls: &HashSet<String>,
) -> Result<oa::ChatMessage, LlmError> {
    let Some(call_id) = take_string(&mut item, "call_id") else {
        return Err(invalid(format!(
            "input[{i}]: function_call_output needs a string `call_id`"
        )));
    };
    if !calls.contains(&call_id) {
        return Err(invalid(format!(
            "input[{i}]: function_call_output answers call_id `{call_id}`, but no earlier \
             function_call item has it (this model's upstream keeps no stored state: send the \
             function_call item too)"
        )));
    }
    let output = match item.remove("output") {
        Some(Value::String(s)) => s,
        Some(Value::Array(parts)) => output_text(parts, i)?,
        _ => {
            return Err(invalid(format!(
                "input[{i}]: function_call_output needs `output`, a string or an array of parts"
            )));
        }
    };
    Ok(oa::ChatMessage {
        role: "tool".into(),
        content: Some(MessageContent::Text(output)),
        tool_call_id: Some(call_id),
        ..Default::default()
    })
}

fn output_text(parts: Vec<Value>, i: usize) -> Result<String, LlmError> {
    let mut text = String::new();
    for (j, part) in parts.into_iter().enumerate() {
        let path = format!("input[{i}].output[{j}]");
        let (mut p, kind) = part_object(part, &path)?;
        match part_text(&mut p, &kind, &path)? {
            Some(t) => text.push_str(&t),
            None => {
                return Err(LlmError::Unsupported(format!(
                    "{path}: `{kind}` in a function_call_output cannot be carried (tool \
                     results reach this model's upstream as text only)"
                )));
            }
        }
    }
    Ok(text)
}

fn opt_f64(body: &Obj, key: &str) -> Result<Option<f64>, LlmError> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => Ok(n.as_f64()),
        Some(_) => Err(invalid(format!("{key} must be a number"))),
    }
}

fn opt_u32(body: &Obj, key: &str) -> Result<Option<u32>, LlmError> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .map(Some)
            .ok_or_else(|| invalid(format!("{key} must be a non-negative integer"))),
    }
}

fn opt_bool(body: &Obj, key: &str) -> Result<Option<bool>, LlmError> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(invalid(format!("{key} must be a boolean"))),
    }
}

fn opt_str(body: &Obj, key: &str) -> Result<Option<String>, LlmError> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(invalid(format!("{key} must be a string"))),
    }
}

/// Chat completion (with the usage read from the upstream, if any) -> Responses `response`
/// object, `model` set to `client_model`. From the first choice: reasoning first, then the
/// message (text, refusal), then one `function_call` item per tool call.
pub(crate) fn response(
    chat: oa::ChatCompletion,
    usage: Option<Usage>,
    client_model: &str,
) -> Value {
    let usage = usage.or_else(|| chat.usage.as_ref().map(Usage::from_openai));
    let id = shape::response_id(&chat.id);
    let created_at = if chat.created > 0 {
        chat.created
    } else {
        unix_now()
    };
    let mut output = Vec::new();
    let mut finish = Finish::Stop;
    if let Some(choice) = chat.choices.into_iter().next() {
        finish = Finish::from_openai(choice.finish_reason.as_deref().unwrap_or("stop"));
        output_items(choice.message, &id, &mut output);
    }
    let (status, reason) = shape::status_of(&finish);
    shape::response_object(shape::ResponseParts {
        id: &id,
        created_at,
        model: client_model,
        status,
        incomplete_reason: reason,
        output,
        usage: usage.as_ref(),
    })
}

fn output_items(m: oa::ChatMessage, id: &str, output: &mut Vec<Value>) {
    if let Some(r) = m.reasoning_content.filter(|r| !r.is_empty()) {
        output.push(shape::reasoning_item(
            &shape::item_id("rs", id, output.len()),
            &r,
        ));
    }
    let text = match m.content {
        Some(MessageContent::Text(t)) => t,
        Some(MessageContent::Parts(parts)) => parts
            .into_iter()
            .filter_map(|p| match p {
                ContentPart::Text { text } => Some(text),
                _ => None,
            })
            .collect(),
        None => String::new(),
    };
    let mut content = Vec::new();
    if !text.is_empty() {
        content.push(shape::output_text(&text));
    }
    if let Some(refusal) = m.refusal.filter(|r| !r.is_empty()) {
        content.push(shape::refusal(&refusal));
    }
    if !content.is_empty() {
        let item_id = shape::item_id("msg", id, output.len());
        output.push(shape::message_item_parts(&item_id, content));
    }
    for call in m.tool_calls.unwrap_or_default() {
        let item_id = shape::item_id("fc", id, output.len());
        output.push(shape::function_call_item(
            &item_id,
            &call.id,
            &call.function.name,
            &call.function.arguments,
        ));
    }
}
