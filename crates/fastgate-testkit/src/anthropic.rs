//! Anthropic-shaped payloads (Messages API): whole messages and the SSE event
//! stream, with text or, when `x-mock-tool` names a tool, a `tool_use` block.

use bytes::Bytes;
use serde_json::{Value, json};

use crate::openai::{prompt_tokens, token};

pub(crate) struct MessagesRequest {
    pub model: String,
    pub stream: bool,
    pub input_tokens: u64,
}

impl MessagesRequest {
    pub(crate) fn parse(body: &[u8]) -> MessagesRequest {
        let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        MessagesRequest {
            model: v
                .get("model")
                .and_then(Value::as_str)
                .unwrap_or("claude-mock")
                .to_owned(),
            stream: v.get("stream").and_then(Value::as_bool).unwrap_or(false),
            input_tokens: prompt_tokens(&v),
        }
    }
}

fn text(n: usize) -> String {
    (0..n).map(token).collect()
}

/// A non-streaming message: `n` text tokens, or one `tool_use` block for `tool`.
pub(crate) fn message(id: &str, req: &MessagesRequest, n: usize, tool: Option<&str>) -> Value {
    let (content, stop) = match tool {
        Some(name) => (
            json!([{ "type": "tool_use", "id": "toolu_mock01", "name": name, "input": { "city": "Paris", "n": n } }]),
            "tool_use",
        ),
        None => (json!([{ "type": "text", "text": text(n) }]), "end_turn"),
    };
    json!({
        "id": id, "type": "message", "role": "assistant", "model": req.model,
        "content": content, "stop_reason": stop, "stop_sequence": null,
        "usage": { "input_tokens": req.input_tokens, "output_tokens": n,
                   "cache_read_input_tokens": 0, "cache_creation_input_tokens": 0 },
    })
}

fn event(name: &str, v: &Value) -> Bytes {
    Bytes::from(format!("event: {name}\ndata: {v}\n\n"))
}

/// The event stream of a message with `n` text deltas (or a tool call whose
/// arguments arrive in `n` `input_json_delta` pieces).
pub(crate) fn message_events(
    id: &str,
    req: &MessagesRequest,
    n: usize,
    tool: Option<&str>,
) -> Vec<Bytes> {
    let mut out = vec![event(
        "message_start",
        &json!({ "type": "message_start", "message": {
            "id": id, "type": "message", "role": "assistant", "model": req.model, "content": [],
            "stop_reason": null, "stop_sequence": null,
            "usage": { "input_tokens": req.input_tokens, "output_tokens": 1 } } }),
    )];
    let stop = match tool {
        Some(name) => {
            out.push(event("content_block_start", &json!({ "type": "content_block_start", "index": 0,
                "content_block": { "type": "tool_use", "id": "toolu_mock01", "name": name, "input": {} } })));
            let args = format!("{{\"city\": \"Paris\", \"n\": {n}}}");
            let step = args.len().div_ceil(n.max(1));
            let pieces: Vec<String> = args
                .as_bytes()
                .chunks(step.max(1))
                .map(|c| String::from_utf8_lossy(c).into_owned())
                .collect();
            for piece in pieces {
                out.push(event(
                    "content_block_delta",
                    &json!({ "type": "content_block_delta", "index": 0,
                    "delta": { "type": "input_json_delta", "partial_json": piece } }),
                ));
            }
            "tool_use"
        }
        None => {
            out.push(event(
                "content_block_start",
                &json!({ "type": "content_block_start", "index": 0,
                "content_block": { "type": "text", "text": "" } }),
            ));
            out.push(event("ping", &json!({ "type": "ping" })));
            for i in 0..n {
                out.push(event(
                    "content_block_delta",
                    &json!({ "type": "content_block_delta", "index": 0,
                    "delta": { "type": "text_delta", "text": token(i) } }),
                ));
            }
            "end_turn"
        }
    };
    out.push(event(
        "content_block_stop",
        &json!({ "type": "content_block_stop", "index": 0 }),
    ));
    out.push(event(
        "message_delta",
        &json!({ "type": "message_delta",
        "delta": { "stop_reason": stop, "stop_sequence": null }, "usage": { "output_tokens": n } }),
    ));
    out.push(event("message_stop", &json!({ "type": "message_stop" })));
    out
}

/// Anthropic's error shape.
pub(crate) fn error_body(status: u16) -> Value {
    let kind = match status {
        400 => "invalid_request_error",
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        429 => "rate_limit_error",
        529 => "overloaded_error",
        _ => "api_error",
    };
    json!({ "type": "error", "error": { "type": kind, "message": format!("mock error {status}") } })
}
