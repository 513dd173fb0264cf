//! Token estimates, used only when an upstream did not report usage (client disconnect,
//! upstream reset, a server that ignores `stream_options`). Results are estimates and the
//! [`crate::Usage`] built from them carries `estimated: true`.
//!
//! With the default `tiktoken` feature, text is counted with the `cl100k_base` BPE (embedded
//! in the `tiktoken-rs` crate, nothing is downloaded; the encoder is built once, lazily, or
//! eagerly with [`warm_up`]). Anthropic and Gemini use other tokenizers, so for them it is an
//! approximation either way. Without the feature (or past [`EXACT_LIMIT`] bytes of one text) a
//! heuristic is used: one token per 4 bytes of ASCII text and one per CJK/other non-ASCII
//! character, at least one token for non-empty text.
//!
//! Request estimates add 3 tokens per message and 3 for the reply priming (OpenAI's published
//! rule of thumb), count tool definitions as their JSON text and each image as
//! [`IMAGE_TOKENS`].

use serde_json::Value;

use crate::Protocol;

/// Tokens counted for one image part.
pub const IMAGE_TOKENS: u64 = 768;
/// Longest text (bytes) tokenized exactly; beyond it the rest is counted by the heuristic,
/// so one estimate never costs more than a few milliseconds.
pub const EXACT_LIMIT: usize = 256 * 1024;
const PER_MESSAGE: u64 = 3;
const REPLY_PRIMING: u64 = 3;

/// Build the tokenizer now (call once at start so the first estimate is not slow).
pub fn warm_up() {
    #[cfg(feature = "tiktoken")]
    let _ = bpe::get();
}

/// Estimated tokens of an output text.
pub fn estimate_text_tokens(text: &str) -> u64 {
    if text.is_empty() {
        return 0;
    }
    let cut = floor_char_boundary(text, EXACT_LIMIT);
    let (head, tail) = text.split_at(cut);
    exact(head) + heuristic(tail)
}

fn floor_char_boundary(s: &str, max: usize) -> usize {
    if s.len() <= max {
        return s.len();
    }
    let mut i = max;
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

#[cfg(feature = "tiktoken")]
fn exact(text: &str) -> u64 {
    match bpe::get() {
        Some(b) => b.encode_ordinary(text).len() as u64,
        None => heuristic(text),
    }
}

#[cfg(not(feature = "tiktoken"))]
fn exact(text: &str) -> u64 {
    heuristic(text)
}

/// The documented fallback: ~4 ASCII bytes per token, one token per non-ASCII character.
pub fn heuristic(text: &str) -> u64 {
    if text.is_empty() {
        return 0;
    }
    let mut ascii = 0u64;
    let mut other = 0u64;
    for c in text.chars() {
        if c.is_ascii() {
            ascii += 1;
        } else {
            other += 1;
        }
    }
    (ascii.div_ceil(4) + other).max(1)
}

#[cfg(feature = "tiktoken")]
mod bpe {
    use std::sync::OnceLock;
    use tiktoken_rs::CoreBPE;

    static BPE: OnceLock<Option<CoreBPE>> = OnceLock::new();

    pub(super) fn get() -> Option<&'static CoreBPE> {
        BPE.get_or_init(|| tiktoken_rs::cl100k_base().ok()).as_ref()
    }
}

/// Estimated prompt tokens of a client request body in `protocol`. Unparsable bodies are
/// estimated from their length.
pub fn estimate_request_tokens(protocol: Protocol, body: &[u8]) -> u64 {
    match serde_json::from_slice::<Value>(body) {
        Ok(v) => estimate_request_value(protocol, &v),
        Err(_) => (body.len() as u64).div_ceil(4),
    }
}

/// [`estimate_request_tokens`] for a body already parsed.
pub fn estimate_request_value(protocol: Protocol, v: &Value) -> u64 {
    match v.as_object() {
        Some(obj) => estimate_request_object(protocol, obj),
        None => Acc::default().total(),
    }
}

/// [`estimate_request_tokens`] for a body already parsed into its top-level object.
pub fn estimate_request_object(protocol: Protocol, v: &serde_json::Map<String, Value>) -> u64 {
    let field = |key: &str| -> &[Value] {
        v.get(key)
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or(&[])
    };
    let mut acc = Acc::default();
    match protocol {
        Protocol::OpenAi => {
            for m in field("messages") {
                acc.messages += 1;
                acc.walk(m.get("content"));
                acc.walk(m.get("tool_calls"));
                acc.text_of(m.get("name"));
            }
            acc.json_of(v.get("tools"));
        }
        Protocol::Anthropic => {
            acc.walk(v.get("system"));
            for m in field("messages") {
                acc.messages += 1;
                acc.walk(m.get("content"));
            }
            acc.json_of(v.get("tools"));
        }
        Protocol::Responses => {
            acc.walk(v.get("instructions"));
            acc.walk(v.get("input"));
            acc.json_of(v.get("tools"));
        }
        Protocol::Gemini => {
            acc.walk(v.get("systemInstruction").or(v.get("system_instruction")));
            for c in field("contents") {
                acc.messages += 1;
                acc.walk(c.get("parts"));
            }
            acc.json_of(v.get("tools"));
        }
    }
    acc.total()
}

/// Body for Anthropic `POST /v1/messages/count_tokens` when the upstream cannot count:
/// `{"input_tokens": N}` from [`estimate_request_tokens`] (an estimate).
pub fn anthropic_count_tokens(body: &[u8]) -> Value {
    serde_json::json!({ "input_tokens": estimate_request_tokens(Protocol::Anthropic, body) })
}

#[derive(Default)]
struct Acc {
    text: String,
    images: u64,
    messages: u64,
}

impl Acc {
    fn total(&self) -> u64 {
        estimate_text_tokens(&self.text)
            + self.images * IMAGE_TOKENS
            + self.messages * PER_MESSAGE
            + if self.messages > 0 { REPLY_PRIMING } else { 0 }
    }

    fn text_of(&mut self, v: Option<&Value>) {
        if let Some(Value::String(s)) = v {
            self.push(s);
        }
    }

    fn json_of(&mut self, v: Option<&Value>) {
        if let Some(v) = v.filter(|v| !v.is_null()) {
            let s = v.to_string();
            self.push(&s);
        }
    }

    fn push(&mut self, s: &str) {
        if !self.text.is_empty() {
            self.text.push('\n');
        }
        self.text.push_str(s);
    }

    /// Collect text from any content shape; image-like objects count as images; base64
    /// payloads are not counted as text.
    fn walk(&mut self, v: Option<&Value>) {
        match v {
            Some(Value::String(s)) => self.push(s),
            Some(Value::Array(a)) => a.iter().for_each(|x| self.walk(Some(x))),
            Some(Value::Object(o)) => {
                let kind = o.get("type").and_then(Value::as_str).unwrap_or("");
                if matches!(kind, "image_url" | "image" | "input_image")
                    || o.contains_key("inlineData")
                    || o.contains_key("inline_data")
                    || o.contains_key("fileData")
                {
                    self.images += 1;
                    return;
                }
                for (k, x) in o {
                    match k.as_str() {
                        "type" | "id" | "tool_use_id" | "tool_call_id" | "cache_control"
                        | "signature" | "data" => {}
                        "input" | "args" | "response" if !x.is_string() => {
                            self.json_of(Some(x));
                        }
                        _ => self.walk(Some(x)),
                    }
                }
            }
            _ => {}
        }
    }
}
