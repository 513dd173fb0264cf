//! OpenAI Responses API client ↔ Chat Completions representation.
//!
//! Requests: a Responses body (`input` string or items, `instructions`, function tools,
//! `tool_choice`, `max_output_tokens`, `text.format`, `reasoning`, …) becomes a Chat
//! Completions request, which then reaches any upstream protocol. Responses: a chat
//! completion becomes a Responses `response` object. Stateless only: `previous_response_id`
//! and `store: true` are refused here (the proxy passes them through to upstreams that
//! serve the Responses API themselves).

use serde_json::Value;

use crate::wire::openai as oa;
use crate::{LlmError, RequestOptions, Usage};

/// Responses request body -> Chat Completions request (model: `opts.upstream_model`).
pub(crate) fn request(body: Value, opts: &RequestOptions) -> Result<oa::ChatRequest, LlmError> {
    let _ = (body, opts);
    Err(LlmError::Unsupported(
        "the Responses API is not translated yet".into(),
    ))
}

/// Chat completion (with the usage read from the upstream, if any) -> Responses `response`
/// object, `model` set to `client_model`.
pub(crate) fn response(
    chat: oa::ChatCompletion,
    usage: Option<Usage>,
    client_model: &str,
) -> Value {
    let _ = (chat, usage);
    serde_json::json!({"object": "response", "model": client_model, "status": "completed", "output": []})
}
