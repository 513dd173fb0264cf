//! The Responses API `response` object and its output items, as FastGate produces them (the
//! non-stream converter builds them; the stream encoder's final event can reuse them). One
//! shape for both, documented in the module docs of the crate ("Responses API client").

use serde_json::{Value, json};

use super::Finish;
use crate::Usage;

/// `resp_<id>` from the upstream's id (its `chatcmpl-` prefix removed), or a fresh one when
/// the upstream gave none.
pub(crate) fn response_id(upstream_id: &str) -> String {
    let id = upstream_id.strip_prefix("chatcmpl-").unwrap_or(upstream_id);
    if id.is_empty() {
        return generated_id();
    }
    if id.starts_with("resp_") {
        return id.to_owned();
    }
    format!("resp_{id}")
}

/// An id unique within this process (time + counter), for upstreams that send none.
fn generated_id() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("resp_{nanos:x}{n:04x}")
}

/// Id of the `n`th output item of response `response_id`: `msg_<base>_<n>`, `fc_…`, `rs_…`.
pub(crate) fn item_id(prefix: &str, response_id: &str, n: usize) -> String {
    let base = response_id.strip_prefix("resp_").unwrap_or(response_id);
    format!("{prefix}_{base}_{n}")
}

/// (`status`, `incomplete_details.reason`) for a finish reason: stop and tool calls complete
/// the response; length and content filtering leave it incomplete.
pub(crate) fn status_of(finish: &Finish) -> (&'static str, Option<&'static str>) {
    match finish {
        Finish::Length => ("incomplete", Some("max_output_tokens")),
        Finish::ContentFilter => ("incomplete", Some("content_filter")),
        Finish::Stop | Finish::StopSequence(_) | Finish::ToolCalls => ("completed", None),
    }
}

/// [`status_of`] for a stream that may end without a finish reason (completed).
pub(crate) fn status_for(finish: Option<&Finish>) -> (&'static str, Option<&'static str>) {
    finish.map_or(("completed", None), status_of)
}

/// What varies in a `response` object.
pub(crate) struct ResponseParts<'a> {
    pub id: &'a str,
    pub created_at: i64,
    pub model: &'a str,
    pub status: &'a str,
    pub incomplete_reason: Option<&'a str>,
    pub output: Vec<Value>,
    pub usage: Option<&'a Usage>,
}

/// The `response` object. Request echo fields (`tools`, `temperature`, …) carry neutral
/// defaults: FastGate does not keep the request next to the response.
pub(crate) fn response_object(p: ResponseParts<'_>) -> Value {
    let ResponseParts {
        id,
        created_at,
        model,
        status,
        incomplete_reason,
        output,
        usage,
    } = p;
    json!({
        "id": id,
        "object": "response",
        "created_at": created_at,
        "status": status,
        "error": null,
        "incomplete_details": incomplete_reason.map(|r| json!({"reason": r})),
        "instructions": null,
        "max_output_tokens": null,
        "model": model,
        "output": output,
        "parallel_tool_calls": true,
        "previous_response_id": null,
        "reasoning": {"effort": null, "summary": null},
        "store": false,
        "temperature": null,
        "text": {"format": {"type": "text"}},
        "tool_choice": "auto",
        "tools": [],
        "top_p": null,
        "truncation": "disabled",
        "usage": usage.map(usage_json),
        "metadata": {},
    })
}

/// The Responses `usage` object (normalised usage: cached tokens are a subset of input).
pub(crate) fn usage_json(u: &Usage) -> Value {
    json!({
        "input_tokens": u.input_tokens,
        "input_tokens_details": {"cached_tokens": u.cached_input_tokens},
        "output_tokens": u.output_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": u.input_tokens + u.output_tokens,
    })
}

/// An `output_text` content part.
pub(crate) fn output_text(text: &str) -> Value {
    json!({"type": "output_text", "text": text, "annotations": [], "logprobs": []})
}

/// A `refusal` content part.
pub(crate) fn refusal(text: &str) -> Value {
    json!({"type": "refusal", "refusal": text})
}

/// An assistant `message` item with the given content parts.
pub(crate) fn message_item_parts(id: &str, content: Vec<Value>) -> Value {
    json!({
        "type": "message",
        "id": id,
        "status": "completed",
        "role": "assistant",
        "content": content,
    })
}

/// An assistant `message` item holding one `output_text` part.
pub(crate) fn message_item(id: &str, text: &str) -> Value {
    message_item_parts(id, vec![output_text(text)])
}

/// A `message` item just opened in a stream: no content yet, `in_progress`.
pub(crate) fn message_item_open(id: &str) -> Value {
    json!({"type": "message", "id": id, "status": "in_progress", "role": "assistant",
        "content": []})
}

/// A `reasoning` item just opened in a stream: an empty summary.
pub(crate) fn reasoning_item_open(id: &str) -> Value {
    json!({"type": "reasoning", "id": id, "summary": []})
}

/// A `function_call` item just opened in a stream: no arguments yet, `in_progress`.
pub(crate) fn function_call_item_open(id: &str, call_id: &str, name: &str) -> Value {
    json!({"type": "function_call", "id": id, "call_id": call_id, "name": name,
        "arguments": "", "status": "in_progress"})
}

/// A `reasoning` item whose summary is the upstream's reasoning text.
pub(crate) fn reasoning_item(id: &str, text: &str) -> Value {
    json!({
        "type": "reasoning",
        "id": id,
        "summary": [{"type": "summary_text", "text": text}],
    })
}

/// A `function_call` item; `call_id` is the upstream's tool call id (the client answers
/// with it in `function_call_output.call_id`).
pub(crate) fn function_call_item(id: &str, call_id: &str, name: &str, arguments: &str) -> Value {
    json!({
        "type": "function_call",
        "id": id,
        "call_id": call_id,
        "name": name,
        "arguments": arguments,
        "status": "completed",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        assert_eq!(response_id("chatcmpl-abc"), "resp_abc");
        assert_eq!(response_id("msg_01X"), "resp_msg_01X");
        assert_eq!(response_id("resp_9"), "resp_9");
        let (a, b) = (response_id(""), response_id(""));
        assert!(a.starts_with("resp_") && a.len() > 5);
        assert_ne!(a, b, "generated ids differ");
        assert_eq!(item_id("fc", "resp_abc", 2), "fc_abc_2");
    }

    #[test]
    fn statuses() {
        assert_eq!(status_of(&Finish::ToolCalls), ("completed", None));
        assert_eq!(
            status_of(&Finish::Length),
            ("incomplete", Some("max_output_tokens"))
        );
        assert_eq!(
            status_of(&Finish::ContentFilter),
            ("incomplete", Some("content_filter"))
        );
    }

    #[test]
    fn object_shape() {
        let u = Usage {
            input_tokens: 10,
            output_tokens: 4,
            cached_input_tokens: 3,
            ..Default::default()
        };
        let v = response_object(ResponseParts {
            id: "resp_1",
            created_at: 7,
            model: "m",
            status: "incomplete",
            incomplete_reason: Some("max_output_tokens"),
            output: vec![message_item("msg_1_0", "hi")],
            usage: Some(&u),
        });
        assert_eq!(v["incomplete_details"]["reason"], "max_output_tokens");
        assert_eq!(v["output"][0]["content"][0]["text"], "hi");
        assert_eq!(v["usage"]["total_tokens"], 14);
        assert_eq!(v["usage"]["input_tokens_details"]["cached_tokens"], 3);
        let none = response_object(ResponseParts {
            id: "r",
            created_at: 0,
            model: "m",
            status: "completed",
            incomplete_reason: None,
            output: vec![],
            usage: None,
        });
        assert!(none["incomplete_details"].is_null() && none["usage"].is_null());
    }
}
