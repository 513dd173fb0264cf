//! OpenAI-shaped payloads (chat completions, chunks, embeddings, models, errors) and an
//! Ollama-like NDJSON stream.

use bytes::Bytes;
use serde_json::{Value, json};

/// What the mock needs from a chat request body.
pub(crate) struct ChatRequest {
    pub model: String,
    pub stream: bool,
    pub include_usage: bool,
    pub prompt_tokens: u64,
}

impl ChatRequest {
    pub(crate) fn parse(body: &[u8]) -> ChatRequest {
        let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        let model = v
            .get("model")
            .and_then(Value::as_str)
            .unwrap_or("mock-model")
            .to_owned();
        let stream = v.get("stream").and_then(Value::as_bool).unwrap_or(false);
        let include_usage = v
            .pointer("/stream_options/include_usage")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        ChatRequest {
            model,
            stream,
            include_usage,
            prompt_tokens: prompt_tokens(&v),
        }
    }
}

/// Deterministic prompt token estimate: whitespace-separated words in all message text
/// contents (string contents and `text` parts), at least 1.
pub(crate) fn prompt_tokens(v: &Value) -> u64 {
    let mut words = 0usize;
    let count = |s: &str| s.split_whitespace().count();
    if let Some(messages) = v.get("messages").and_then(Value::as_array) {
        for m in messages {
            match m.get("content") {
                Some(Value::String(s)) => words += count(s),
                Some(Value::Array(parts)) => {
                    for p in parts {
                        if let Some(t) = p.get("text").and_then(Value::as_str) {
                            words += count(t);
                        }
                    }
                }
                _ => {}
            }
        }
    }
    u64::try_from(words.max(1)).unwrap_or(1)
}

/// The content token `i`: `"tok{i} "`.
pub(crate) fn token(i: usize) -> String {
    format!("tok{i} ")
}

pub(crate) fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn usage(prompt: u64, completion: u64) -> Value {
    json!({
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    })
}

/// A non-streaming `chat.completion` with `n` tokens of content.
pub(crate) fn chat_completion(id: &str, req: &ChatRequest, n: usize) -> Value {
    let content: String = (0..n).map(token).collect();
    json!({
        "id": id,
        "object": "chat.completion",
        "created": now_secs(),
        "model": req.model,
        "system_fingerprint": "fp_mock",
        "choices": [{
            "index": 0,
            "message": { "role": "assistant", "content": content, "refusal": null },
            "logprobs": null,
            "finish_reason": "stop",
        }],
        "usage": usage(req.prompt_tokens, n as u64),
    })
}

fn chunk(id: &str, created: u64, req: &ChatRequest, delta: Value, finish: Option<&str>) -> Value {
    let mut c = json!({
        "id": id,
        "object": "chat.completion.chunk",
        "created": created,
        "model": req.model,
        "system_fingerprint": "fp_mock",
        "choices": [{ "index": 0, "delta": delta, "logprobs": null, "finish_reason": finish }],
    });
    if req.include_usage {
        c["usage"] = Value::Null;
    }
    c
}

fn sse(v: &Value) -> Bytes {
    Bytes::from(format!("data: {v}\n\n"))
}

/// The SSE events of a streamed chat completion with `n` content chunks:
/// `[role, tok0 .. tok{n-1}, finish(stop), usage?, [DONE]]`.
pub(crate) fn chat_sse_events(id: &str, req: &ChatRequest, n: usize) -> Vec<Bytes> {
    let created = now_secs();
    let mut out = Vec::with_capacity(n + 4);
    out.push(sse(&chunk(
        id,
        created,
        req,
        json!({ "role": "assistant", "content": "", "refusal": null }),
        None,
    )));
    for i in 0..n {
        out.push(sse(&chunk(
            id,
            created,
            req,
            json!({ "content": token(i) }),
            None,
        )));
    }
    out.push(sse(&chunk(id, created, req, json!({}), Some("stop"))));
    if req.include_usage {
        out.push(sse(&json!({
            "id": id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": req.model,
            "system_fingerprint": "fp_mock",
            "choices": [],
            "usage": usage(req.prompt_tokens, n as u64),
        })));
    }
    out.push(Bytes::from_static(b"data: [DONE]\n\n"));
    out
}

/// NDJSON lines (Ollama-like): `n` content lines, then a `done: true` line with counts.
pub(crate) fn ndjson_lines(req: &ChatRequest, n: usize) -> Vec<Bytes> {
    let line = |v: Value| Bytes::from(format!("{v}\n"));
    let mut out: Vec<Bytes> = (0..n)
        .map(|i| {
            line(json!({
                "model": req.model,
                "created_at": now_secs(),
                "message": { "role": "assistant", "content": token(i) },
                "done": false,
            }))
        })
        .collect();
    out.push(line(json!({
        "model": req.model,
        "created_at": now_secs(),
        "message": { "role": "assistant", "content": "" },
        "done": true,
        "done_reason": "stop",
        "prompt_eval_count": req.prompt_tokens,
        "eval_count": n,
    })));
    out
}

/// `POST /v1/embeddings`: one 8-dimensional embedding per input.
pub(crate) fn embeddings(body: &[u8]) -> Value {
    let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let model = v
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or("mock-embedding");
    let inputs: Vec<String> = match v.get("input") {
        Some(Value::Array(items)) => items.iter().map(|i| i.to_string()).collect(),
        Some(Value::String(s)) => vec![s.clone()],
        Some(other) => vec![other.to_string()],
        None => vec![String::new()],
    };
    let mut tokens = 0u64;
    let data: Vec<Value> = inputs
        .iter()
        .enumerate()
        .map(|(index, text)| {
            tokens += text.split_whitespace().count().max(1) as u64;
            let seed = text.len() as f64;
            let embedding: Vec<f64> = (0..8)
                .map(|d| ((seed + d as f64) * 0.1).sin() / 2.0)
                .collect();
            json!({ "object": "embedding", "index": index, "embedding": embedding })
        })
        .collect();
    json!({
        "object": "list",
        "data": data,
        "model": model,
        "usage": { "prompt_tokens": tokens, "total_tokens": tokens },
    })
}

/// `GET /v1/models`.
pub(crate) fn models() -> Value {
    let model = |id: &str| json!({ "id": id, "object": "model", "created": 1_700_000_000u64, "owned_by": "fastgate-mock" });
    json!({
        "object": "list",
        "data": [model("mock-model"), model("mock-embedding")],
    })
}

/// An OpenAI-style error body for `status`.
pub(crate) fn error_body(status: u16) -> Value {
    let (kind, code) = match status {
        400 => ("invalid_request_error", Value::Null),
        401 => ("invalid_request_error", json!("invalid_api_key")),
        403 => (
            "invalid_request_error",
            json!("unsupported_country_region_territory"),
        ),
        404 => ("invalid_request_error", json!("model_not_found")),
        429 => ("requests", json!("rate_limit_exceeded")),
        500..=599 => ("server_error", Value::Null),
        _ => ("invalid_request_error", Value::Null),
    };
    json!({
        "error": {
            "message": format!("mock upstream error (status {status})"),
            "type": kind,
            "param": null,
            "code": code,
        }
    })
}
