//! Media parts (images, audio, video, documents) across protocols: what each upstream can
//! carry, and the refusals for what it cannot.
//!
//! Capabilities (inline = base64 in the body; by reference = a URL or file id):
//!
//! | media | OpenAI Chat Completions | Anthropic Messages | Gemini |
//! |---|---|---|---|
//! | image | `image_url` (data: URL or http URL) | `image` (base64 or url) | `inlineData` / `fileData` |
//! | audio | `input_audio` (inline wav / mp3 only) | — | `inlineData` / `fileData` |
//! | video | — | — | `inlineData` / `fileData` |
//! | PDF | `file` (inline, or an OpenAI `file_id`) | `document` (base64 or url) | `inlineData` / `fileData` |
//! | text/* document | as a text part | `document` (text source) | `inlineData` / `fileData` |
//! | other documents | — | — | `inlineData` / `fileData` |
//!
//! A part the target cannot carry is refused with [`LlmError::Unsupported`] (a client 400)
//! naming the part (`messages[1].content[2]: input_audio …`); nothing is dropped silently.

use crate::LlmError;

/// Refusal of one part: "`path`: `what` cannot be carried to `target` upstream (`why`)".
pub(crate) fn refuse(path: &str, what: &str, target: &str, why: &str) -> LlmError {
    LlmError::Unsupported(format!(
        "{path}: {what} cannot be carried to {target} upstream ({why})"
    ))
}

/// Target names used in refusals.
pub(crate) const TO_OPENAI: &str = "an OpenAI";
pub(crate) const TO_ANTHROPIC: &str = "an Anthropic";
pub(crate) const TO_GEMINI: &str = "a Gemini";

/// Why a media type has no equivalent at an OpenAI Chat Completions upstream, if it has none.
pub(crate) fn openai_lacks(mime: &str) -> Option<&'static str> {
    if mime.starts_with("video/") {
        Some("it has no video input")
    } else if mime.starts_with("audio/") && openai_audio_format(mime).is_none() {
        Some("its audio input takes only wav and mp3")
    } else if !(mime.starts_with("image/")
        || mime.starts_with("audio/")
        || mime.starts_with("text/")
        || mime == PDF)
    {
        Some("its file input takes only PDF")
    } else {
        None
    }
}

/// Why a media type has no equivalent at an Anthropic upstream, if it has none.
pub(crate) fn anthropic_lacks(mime: &str) -> Option<&'static str> {
    if mime.starts_with("audio/") {
        Some("it has no audio input")
    } else if mime.starts_with("video/") {
        Some("it has no video input")
    } else if !(mime.starts_with("image/") || mime.starts_with("text/") || mime == PDF) {
        Some("its documents are PDF or plain text only")
    } else {
        None
    }
}

pub(crate) const PDF: &str = "application/pdf";

/// OpenAI `input_audio.format` for an audio media type (OpenAI accepts wav and mp3 only).
pub(crate) fn openai_audio_format(mime: &str) -> Option<&'static str> {
    match mime.to_ascii_lowercase().as_str() {
        "audio/wav" | "audio/x-wav" | "audio/wave" | "audio/vnd.wave" => Some("wav"),
        "audio/mp3" | "audio/mpeg" | "audio/mpeg3" | "audio/x-mpeg-3" => Some("mp3"),
        _ => None,
    }
}

/// Media type of an OpenAI `input_audio.format` (Gemini names mp3 `audio/mp3`).
pub(crate) fn audio_mime(format: &str) -> String {
    format!("audio/{}", format.to_ascii_lowercase())
}

/// A URI only Gemini can read: Cloud Storage (`gs://`), a Gemini Files API URI, anything
/// that is not plain http(s).
pub(crate) fn gemini_only_uri(uri: &str) -> bool {
    let lower = uri.to_ascii_lowercase();
    !(lower.starts_with("https://") || lower.starts_with("http://"))
        || lower.contains("generativelanguage.googleapis.com/")
}

/// Standard base64 (padding optional, whitespace ignored) -> UTF-8 text; None if the
/// payload is not base64 or not UTF-8. Used for text/* documents a target takes as text.
pub(crate) fn base64_text(data: &str) -> Option<String> {
    let mut out = Vec::with_capacity(data.len() / 4 * 3);
    let mut acc: u32 = 0;
    let mut bits = 0u32;
    for b in data.bytes() {
        let v = match b {
            b'A'..=b'Z' => b - b'A',
            b'a'..=b'z' => b - b'a' + 26,
            b'0'..=b'9' => b - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            b'=' | b' ' | b'\n' | b'\r' | b'\t' => continue,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_text_decodes() {
        assert_eq!(
            base64_text("aGVsbG8gd29ybGQ=").as_deref(),
            Some("hello world")
        );
        assert_eq!(base64_text("aGk").as_deref(), Some("hi"));
        assert_eq!(base64_text("a$b"), None);
        assert_eq!(base64_text("/w=="), None, "0xFF is not UTF-8");
    }

    #[test]
    fn capabilities() {
        assert_eq!(openai_audio_format("audio/mpeg"), Some("mp3"));
        assert_eq!(openai_audio_format("audio/flac"), None);
        assert!(openai_lacks("audio/wav").is_none());
        assert!(openai_lacks("audio/ogg").is_some());
        assert!(openai_lacks("video/mp4").is_some());
        assert!(openai_lacks(PDF).is_none());
        assert!(openai_lacks("application/msword").is_some());
        assert!(anthropic_lacks("audio/wav").is_some());
        assert!(anthropic_lacks("text/plain").is_none());
        assert!(gemini_only_uri("gs://b/a.pdf"));
        assert!(gemini_only_uri(
            "https://generativelanguage.googleapis.com/v1beta/files/abc"
        ));
        assert!(!gemini_only_uri("https://example.com/a.pdf"));
    }
}
