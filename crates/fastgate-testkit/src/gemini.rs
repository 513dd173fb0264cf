//! Gemini-shaped payloads (`generateContent` and `streamGenerateContent?alt=sse`).

use bytes::Bytes;
use serde_json::{Value, json};

use crate::openai::token;

fn prompt_tokens(body: &[u8]) -> u64 {
    let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let words: usize = v
        .get("contents")
        .and_then(Value::as_array)
        .map(|contents| {
            contents
                .iter()
                .flat_map(|c| {
                    c.get("parts")
                        .and_then(Value::as_array)
                        .cloned()
                        .unwrap_or_default()
                })
                .filter_map(|p| {
                    p.get("text")
                        .and_then(Value::as_str)
                        .map(|t| t.split_whitespace().count())
                })
                .sum()
        })
        .unwrap_or(0);
    u64::try_from(words.max(1)).unwrap_or(1)
}

fn usage(prompt: u64, n: usize) -> Value {
    json!({ "promptTokenCount": prompt, "candidatesTokenCount": n, "totalTokenCount": prompt + n as u64 })
}

/// A whole `generateContent` answer with `n` tokens.
pub(crate) fn generate(body: &[u8], n: usize) -> Value {
    let text: String = (0..n).map(token).collect();
    json!({
        "candidates": [{ "content": { "parts": [{ "text": text }], "role": "model" }, "finishReason": "STOP", "index": 0 }],
        "usageMetadata": usage(prompt_tokens(body), n),
        "modelVersion": "gemini-mock",
    })
}

/// The SSE events of `streamGenerateContent?alt=sse`: one candidate per token, the
/// last with `finishReason` and usage.
pub(crate) fn stream_events(body: &[u8], n: usize) -> Vec<Bytes> {
    let prompt = prompt_tokens(body);
    (0..n.max(1))
        .map(|i| {
            let mut candidate = json!({ "content": { "parts": [{ "text": token(i) }], "role": "model" }, "index": 0 });
            let mut v = json!({ "candidates": [], "modelVersion": "gemini-mock" });
            if i + 1 == n.max(1) {
                candidate["finishReason"] = json!("STOP");
                v["usageMetadata"] = usage(prompt, n);
            }
            v["candidates"] = json!([candidate]);
            Bytes::from(format!("data: {v}\r\n\r\n"))
        })
        .collect()
}
