//! The built-in `mock` upstream kind: answers OpenAI-style requests in-process,
//! deterministically, without any network — for demos, tests and load tests.

use std::convert::Infallible;

use bytes::Bytes;
use fastgate_llm::{Protocol, estimate_request_tokens, estimate_text_tokens};
use http::{Response, StatusCode, header};
use http_body::Frame;
use http_body_util::StreamBody;
use serde_json::{Value, json};

pub type MockFrames =
    futures_util::stream::Iter<std::vec::IntoIter<Result<Frame<Bytes>, Infallible>>>;
pub type MockBody = StreamBody<MockFrames>;

fn body(frames: Vec<Bytes>) -> MockBody {
    let frames: Vec<Result<Frame<Bytes>, Infallible>> =
        frames.into_iter().map(|b| Ok(Frame::data(b))).collect();
    StreamBody::new(futures_util::stream::iter(frames))
}

fn reply(status: StatusCode, content_type: &'static str, frames: Vec<Bytes>) -> Response<MockBody> {
    let mut resp = Response::new(body(frames));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        http::HeaderValue::from_static(content_type),
    );
    resp
}

fn json_reply(value: &Value) -> Response<MockBody> {
    reply(
        StatusCode::OK,
        "application/json",
        vec![Bytes::from(value.to_string())],
    )
}

/// The text of the last user message (string or text parts).
fn last_user_text(req: &Value) -> String {
    let Some(messages) = req.get("messages").and_then(Value::as_array) else {
        return req
            .get("prompt")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
    };
    let Some(last) = messages
        .iter()
        .rev()
        .find(|m| m.get("role").and_then(Value::as_str) == Some("user"))
    else {
        return String::new();
    };
    match last.get("content") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(parts)) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join(" "),
        _ => String::new(),
    }
}

fn answer_for(req: &Value) -> String {
    let asked: String = last_user_text(req).chars().take(200).collect();
    if asked.trim().is_empty() {
        "This is a mock response from FastGate.".to_string()
    } else {
        format!("This is a mock response from FastGate to: {asked}")
    }
}

/// Answer `path` with request `body` (OpenAI format).
pub fn respond(path: &str, raw: &[u8]) -> Response<MockBody> {
    let req: Value = serde_json::from_slice(raw).unwrap_or(Value::Null);
    let model = req
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or("mock")
        .to_string();
    if path.ends_with("/embeddings") {
        return json_reply(&embeddings(&req, &model, raw));
    }
    let answer = answer_for(&req);
    let prompt_tokens = estimate_request_tokens(Protocol::OpenAi, raw);
    let completion_tokens = estimate_text_tokens(&answer);
    let usage = json!({ "prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                        "total_tokens": prompt_tokens + completion_tokens });
    if path.ends_with("/completions") && !path.ends_with("/chat/completions") {
        return json_reply(
            &json!({ "id": "cmpl-mock", "object": "text_completion", "created": 0, "model": model,
            "choices": [{ "index": 0, "text": answer, "finish_reason": "stop", "logprobs": null }], "usage": usage }),
        );
    }
    if !path.ends_with("/chat/completions") {
        let err = json!({ "error": { "message": format!("the mock upstream does not serve {path}"),
                                     "type": "invalid_request_error", "param": null, "code": "not_found" } });
        return reply(
            StatusCode::NOT_FOUND,
            "application/json",
            vec![Bytes::from(err.to_string())],
        );
    }
    if req.get("stream").and_then(Value::as_bool) == Some(true) {
        let include_usage = req
            .pointer("/stream_options/include_usage")
            .and_then(Value::as_bool)
            == Some(true);
        return reply(
            StatusCode::OK,
            "text/event-stream",
            stream_frames(&model, &answer, include_usage.then_some(usage)),
        );
    }
    json_reply(&json!({
        "id": "chatcmpl-mock", "object": "chat.completion", "created": 0, "model": model,
        "choices": [{ "index": 0, "message": { "role": "assistant", "content": answer }, "finish_reason": "stop", "logprobs": null }],
        "usage": usage,
    }))
}

fn stream_frames(model: &str, answer: &str, usage: Option<Value>) -> Vec<Bytes> {
    let chunk = |delta: Value, finish: Value| {
        let v = json!({ "id": "chatcmpl-mock", "object": "chat.completion.chunk", "created": 0, "model": model,
                        "choices": [{ "index": 0, "delta": delta, "finish_reason": finish }] });
        Bytes::from(format!("data: {v}\n\n"))
    };
    let mut frames = vec![chunk(
        json!({ "role": "assistant", "content": "" }),
        Value::Null,
    )];
    let mut words = answer.split_inclusive(' ').peekable();
    while let Some(word) = words.next() {
        frames.push(chunk(json!({ "content": word }), Value::Null));
        if words.peek().is_none() {
            break;
        }
    }
    frames.push(chunk(json!({}), json!("stop")));
    if let Some(usage) = usage {
        let v = json!({ "id": "chatcmpl-mock", "object": "chat.completion.chunk", "created": 0, "model": model,
                        "choices": [], "usage": usage });
        frames.push(Bytes::from(format!("data: {v}\n\n")));
    }
    frames.push(Bytes::from_static(b"data: [DONE]\n\n"));
    frames
}

fn embeddings(req: &Value, model: &str, raw: &[u8]) -> Value {
    let inputs: Vec<String> = match req.get("input") {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string))
            .collect(),
        _ => vec![String::new()],
    };
    let data: Vec<Value> = inputs
        .iter()
        .enumerate()
        .map(|(i, text)| {
            // A deterministic vector derived from the text (FNV-1a per dimension).
            let vector: Vec<f64> = (0..8u64)
                .map(|d| {
                    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ d;
                    for b in text.bytes() {
                        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
                    }
                    (h % 2000) as f64 / 1000.0 - 1.0
                })
                .collect();
            json!({ "object": "embedding", "index": i, "embedding": vector })
        })
        .collect();
    let tokens = estimate_request_tokens(Protocol::OpenAi, raw);
    json!({ "object": "list", "data": data, "model": model, "usage": { "prompt_tokens": tokens, "total_tokens": tokens } })
}
