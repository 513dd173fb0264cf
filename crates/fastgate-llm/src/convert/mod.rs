//! Request/response converters, one module per (client, upstream) protocol pair, plus the
//! same-protocol rewrite. Shared helpers live here.

pub(crate) mod anthropic_openai;
pub(crate) mod gemini_embed;
pub(crate) mod gemini_openai;
pub(crate) mod media;
pub(crate) mod openai_anthropic;
pub(crate) mod openai_gemini;
pub(crate) mod responses_chat;
pub(crate) mod responses_options;
pub(crate) mod responses_parts;
pub(crate) mod responses_shape;
pub(crate) mod same;

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::Value;

/// Protocol-neutral finish reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Finish {
    Stop,
    StopSequence(Option<String>),
    Length,
    ToolCalls,
    ContentFilter,
}

impl Finish {
    pub fn from_openai(s: &str) -> Self {
        match s {
            "length" => Finish::Length,
            "tool_calls" | "function_call" => Finish::ToolCalls,
            "content_filter" => Finish::ContentFilter,
            _ => Finish::Stop,
        }
    }

    pub fn to_openai(&self) -> &'static str {
        match self {
            Finish::Stop | Finish::StopSequence(_) => "stop",
            Finish::Length => "length",
            Finish::ToolCalls => "tool_calls",
            Finish::ContentFilter => "content_filter",
        }
    }

    pub fn from_anthropic(s: &str, seq: Option<String>) -> Self {
        match s {
            "stop_sequence" => Finish::StopSequence(seq),
            "max_tokens" | "model_context_window_exceeded" => Finish::Length,
            "tool_use" => Finish::ToolCalls,
            "refusal" => Finish::ContentFilter,
            _ => Finish::Stop, // end_turn, pause_turn, unknown
        }
    }

    /// (stop_reason, stop_sequence)
    pub fn to_anthropic(&self) -> (&'static str, Option<String>) {
        match self {
            Finish::Stop => ("end_turn", None),
            Finish::StopSequence(s) => ("stop_sequence", s.clone()),
            Finish::Length => ("max_tokens", None),
            Finish::ToolCalls => ("tool_use", None),
            Finish::ContentFilter => ("refusal", None),
        }
    }

    /// `saw_tool_calls`: Gemini says STOP even when it called functions.
    pub fn from_gemini(s: &str, saw_tool_calls: bool) -> Self {
        match s {
            "MAX_TOKENS" => Finish::Length,
            "SAFETY" | "RECITATION" | "BLOCKLIST" | "PROHIBITED_CONTENT" | "SPII"
            | "IMAGE_SAFETY" => Finish::ContentFilter,
            _ if saw_tool_calls => Finish::ToolCalls,
            _ => Finish::Stop,
        }
    }

    pub fn to_gemini(&self) -> &'static str {
        match self {
            Finish::Length => "MAX_TOKENS",
            Finish::ContentFilter => "SAFETY",
            _ => "STOP",
        }
    }
}

/// `data:<media>;base64,<payload>` -> (media type, payload).
pub(crate) fn parse_data_url(url: &str) -> Option<(String, String)> {
    let rest = url.strip_prefix("data:")?;
    let (meta, data) = rest.split_once(',')?;
    let media = meta.strip_suffix(";base64")?;
    let media = if media.is_empty() {
        "application/octet-stream"
    } else {
        media
    };
    Some((media.to_owned(), data.to_owned()))
}

pub(crate) fn data_url(media_type: &str, data: &str) -> String {
    format!("data:{media_type};base64,{data}")
}

/// Media type guessed from a URL's extension (for Gemini `fileData`, which wants one), or
/// None when the extension says nothing. YouTube links (which Gemini reads as video) are
/// video.
pub(crate) fn guess_media_type(url: &str) -> Option<&'static str> {
    let path = url.split(['?', '#']).next().unwrap_or(url);
    let host = path.split("://").nth(1).and_then(|r| r.split('/').next());
    if let Some(host) = host.map(str::to_ascii_lowercase)
        && (host == "youtu.be" || host == "youtube.com" || host.ends_with(".youtube.com"))
    {
        return Some("video/mp4");
    }
    let name = path.rsplit('/').next().unwrap_or(path);
    let ext = name.rsplit_once('.')?.1.to_ascii_lowercase();
    Some(match ext.as_str() {
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "heic" => "image/heic",
        "heif" => "image/heif",
        "pdf" => media::PDF,
        "txt" => "text/plain",
        "md" => "text/markdown",
        "csv" => "text/csv",
        "html" | "htm" => "text/html",
        "mp3" => "audio/mp3",
        "wav" => "audio/wav",
        "ogg" => "audio/ogg",
        "flac" => "audio/flac",
        "aac" => "audio/aac",
        "aiff" => "audio/aiff",
        "mp4" => "video/mp4",
        "mpeg" | "mpg" => "video/mpeg",
        "mov" => "video/mov",
        "avi" => "video/avi",
        "webm" => "video/webm",
        "3gp" => "video/3gpp",
        _ => return None,
    })
}

pub(crate) fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Tool-call arguments (JSON text) -> object for Anthropic `input` / Gemini `args`.
/// Empty text is `{}`; text that is not a JSON object is kept as `{"_raw_arguments": text}`
/// rather than failing the whole request (models do emit broken JSON).
pub(crate) fn arguments_to_object(args: &str) -> Value {
    if args.trim().is_empty() {
        return Value::Object(Default::default());
    }
    match serde_json::from_str::<Value>(args) {
        Ok(v @ Value::Object(_)) => v,
        _ => serde_json::json!({ "_raw_arguments": args }),
    }
}

/// Object -> JSON text for OpenAI `arguments`.
pub(crate) fn object_to_arguments(v: &Value) -> String {
    if v.is_null() {
        return "{}".to_owned();
    }
    v.to_string()
}

/// An empty JSON-schema object, for tools without parameters.
pub(crate) fn empty_schema() -> Value {
    serde_json::json!({"type": "object", "properties": {}})
}

pub(crate) fn to_vec<T: serde::Serialize>(v: &T) -> Result<Vec<u8>, crate::LlmError> {
    serde_json::to_vec(v).map_err(crate::LlmError::json)
}

pub(crate) fn from_slice<'a, T: serde::Deserialize<'a>>(b: &'a [u8]) -> Result<T, crate::LlmError> {
    serde_json::from_slice(b).map_err(crate::LlmError::json)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_urls() {
        assert_eq!(
            parse_data_url("data:image/png;base64,AAAA"),
            Some(("image/png".into(), "AAAA".into()))
        );
        assert_eq!(parse_data_url("data:text/plain,hello"), None, "only base64");
        assert_eq!(parse_data_url("https://x/y.png"), None);
        assert_eq!(data_url("image/gif", "R0"), "data:image/gif;base64,R0");
        assert_eq!(guess_media_type("https://x/a.PNG?sig=1"), Some("image/png"));
        assert_eq!(
            guess_media_type("gs://bucket/doc.pdf"),
            Some("application/pdf")
        );
        assert_eq!(guess_media_type("gs://bucket/clip.MP4"), Some("video/mp4"));
        assert_eq!(guess_media_type("https://x.example/img"), None);
        assert_eq!(
            guess_media_type("https://www.youtube.com/watch?v=9hE5-98ZeCg"),
            Some("video/mp4")
        );
    }

    #[test]
    fn finish_reasons_round_trip() {
        for f in [
            Finish::Stop,
            Finish::Length,
            Finish::ToolCalls,
            Finish::ContentFilter,
        ] {
            assert_eq!(Finish::from_openai(f.to_openai()), f);
            let (r, s) = f.to_anthropic();
            assert_eq!(Finish::from_anthropic(r, s), f);
        }
        let seq = Finish::StopSequence(Some("END".into()));
        assert_eq!(seq.to_anthropic(), ("stop_sequence", Some("END".into())));
        assert_eq!(seq.to_openai(), "stop");
        assert_eq!(Finish::from_gemini("STOP", true), Finish::ToolCalls);
        assert_eq!(Finish::from_gemini("SAFETY", true), Finish::ContentFilter);
        assert_eq!(Finish::from_anthropic("pause_turn", None), Finish::Stop);
    }

    #[test]
    fn arguments() {
        assert_eq!(arguments_to_object(""), serde_json::json!({}));
        assert_eq!(
            arguments_to_object("[1]"),
            serde_json::json!({"_raw_arguments": "[1]"})
        );
        assert_eq!(object_to_arguments(&Value::Null), "{}");
    }
}
