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
//! [`IMAGE_TOKENS`]. Other media are counted from the size of their base64 payload (never
//! as text, never decoded): audio one token per [`AUDIO_BYTES_PER_TOKEN`] bytes (about 32
//! tokens a second of 16 kHz 16-bit WAV, Gemini's rate), video one per
//! [`VIDEO_BYTES_PER_TOKEN`], text/* documents one per 4 bytes, PDFs and other documents one
//! per [`DOCUMENT_BYTES_PER_TOKEN`]; media given by reference (URL, file id), whose size is
//! unknown, as [`REFERENCE_TOKENS`] (images as [`IMAGE_TOKENS`]).

use serde_json::Value;

use crate::Protocol;

/// Tokens counted for one image part.
pub const IMAGE_TOKENS: u64 = 768;
/// Decoded audio bytes per estimated token.
pub const AUDIO_BYTES_PER_TOKEN: u64 = 1000;
/// Decoded video bytes per estimated token.
pub const VIDEO_BYTES_PER_TOKEN: u64 = 4000;
/// Decoded PDF / other document bytes per estimated token.
pub const DOCUMENT_BYTES_PER_TOKEN: u64 = 32;
/// Tokens counted for a non-image media part given by reference (size unknown).
pub const REFERENCE_TOKENS: u64 = 1024;
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
            if let Some(Value::String(s)) = v.get("instructions") {
                acc.messages += 1;
                acc.push(s);
            }
            match v.get("input") {
                Some(Value::String(s)) => {
                    acc.messages += 1;
                    acc.push(s);
                }
                Some(Value::Array(items)) => items.iter().for_each(|item| acc.input_item(item)),
                _ => {}
            }
            acc.json_of(v.get("tools"));
        }
        Protocol::Gemini => {
            acc.walk(v.get("systemInstruction").or(v.get("system_instruction")));
            for c in field("contents") {
                acc.messages += 1;
                acc.walk(c.get("parts"));
            }
            // embedContent's one `content`, batchEmbedContents' `requests[].content`.
            acc.walk(v.get("content").and_then(|c| c.get("parts")));
            for r in field("requests") {
                acc.walk(r.get("content").and_then(|c| c.get("parts")));
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
    /// Tokens of media parts (images, audio, video, documents).
    media: u64,
    messages: u64,
}

/// Estimated tokens of an inline media payload of type `mime` (`b64_len` base64 bytes).
fn media_tokens(mime: &str, b64_len: usize) -> u64 {
    let bytes = (b64_len as u64) / 4 * 3;
    let per_token = match mime.split('/').next().unwrap_or("") {
        "image" => return IMAGE_TOKENS,
        "audio" => AUDIO_BYTES_PER_TOKEN,
        "video" => VIDEO_BYTES_PER_TOKEN,
        "text" => 4,
        _ => DOCUMENT_BYTES_PER_TOKEN,
    };
    (bytes / per_token).max(1)
}

/// Tokens of media given by reference (URL, file id): its size is unknown.
fn reference_tokens(mime: &str) -> u64 {
    if mime.starts_with("image/") {
        IMAGE_TOKENS
    } else {
        REFERENCE_TOKENS
    }
}

/// Tokens of a Responses API `input_file` part: inline data by its size (bare base64 typed
/// by the file name), a URL or file id as a reference.
fn input_file_tokens(o: &serde_json::Map<String, Value>) -> u64 {
    let name = o.get("filename").and_then(Value::as_str).unwrap_or("");
    match o.get("file_data").and_then(Value::as_str) {
        Some(data) => match data.strip_prefix("data:").and_then(|d| d.split_once(',')) {
            Some((meta, payload)) => {
                media_tokens(meta.strip_suffix(";base64").unwrap_or(meta), payload.len())
            }
            // Bare base64: the file name says what it is (a document when it does not).
            None => media_tokens(
                crate::convert::guess_media_type(name).unwrap_or(""),
                data.len(),
            ),
        },
        None => {
            let url = o.get("file_url").and_then(Value::as_str).unwrap_or(name);
            reference_tokens(crate::convert::guess_media_type(url).unwrap_or(""))
        }
    }
}

fn str_at<'a>(v: &'a Value, keys: &[&str]) -> &'a str {
    keys.iter()
        .find_map(|k| v.get(*k).and_then(Value::as_str))
        .unwrap_or("")
}

impl Acc {
    fn total(&self) -> u64 {
        estimate_text_tokens(&self.text)
            + self.media
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

    /// Tokens of a media part in any protocol's shape, or None if `o` is not one.
    fn media_of(&mut self, o: &serde_json::Map<String, Value>) -> Option<u64> {
        let kind = o.get("type").and_then(Value::as_str).unwrap_or("");
        // Before Gemini's snake_case `file_data`, which this part's `file_data` is not.
        if kind == "input_file" {
            return Some(input_file_tokens(o));
        }
        let blob = o.get("inlineData").or(o.get("inline_data"));
        if let Some(b) = blob {
            let mime = str_at(b, &["mimeType", "mime_type"]);
            return Some(media_tokens(mime, str_at(b, &["data"]).len()));
        }
        if let Some(f) = o.get("fileData").or(o.get("file_data")) {
            return Some(reference_tokens(str_at(f, &["mimeType", "mime_type"])));
        }
        Some(match kind {
            "image_url" | "image" | "input_image" => IMAGE_TOKENS,
            "input_audio" => {
                let data = o.get("input_audio").map_or("", |a| str_at(a, &["data"]));
                media_tokens("audio/", data.len())
            }
            "file" => {
                let data = o.get("file").map_or("", |f| str_at(f, &["file_data"]));
                match crate::convert::parse_data_url(data) {
                    Some((mime, payload)) => media_tokens(&mime, payload.len()),
                    None => REFERENCE_TOKENS,
                }
            }
            "document" => {
                let src = o.get("source").unwrap_or(&Value::Null);
                match str_at(src, &["type"]) {
                    "base64" => {
                        media_tokens(str_at(src, &["media_type"]), str_at(src, &["data"]).len())
                    }
                    "text" => {
                        self.push(str_at(src, &["data"]));
                        0
                    }
                    "content" => {
                        self.walk(src.get("content"));
                        0
                    }
                    _ => REFERENCE_TOKENS,
                }
            }
            _ => return None,
        })
    }

    /// One Responses API `input` item, counted like a chat message: its content, a function
    /// call's name and arguments, a call output, a reasoning item's summary (never its
    /// encrypted content); ids and call ids are not text.
    fn input_item(&mut self, item: &Value) {
        match item
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("message")
        {
            "message" => self.walk(item.get("content")),
            "function_call" => {
                self.text_of(item.get("name"));
                self.text_of(item.get("arguments"));
            }
            "function_call_output" => self.walk(item.get("output")),
            "reasoning" => self.walk(item.get("summary")),
            _ => self.walk(Some(item)),
        }
        self.messages += 1;
    }

    /// Collect text from any content shape; media parts are counted by [`Acc::media_of`]
    /// (base64 payloads are never counted as text).
    fn walk(&mut self, v: Option<&Value>) {
        match v {
            Some(Value::String(s)) => self.push(s),
            Some(Value::Array(a)) => a.iter().for_each(|x| self.walk(Some(x))),
            Some(Value::Object(o)) => {
                if let Some(tokens) = self.media_of(o) {
                    self.media += tokens;
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
