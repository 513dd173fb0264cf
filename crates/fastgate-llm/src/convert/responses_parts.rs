//! Content parts of a Responses API request (`input_text`, `input_image`, `input_file`,
//! `input_audio`, …) -> Chat Completions content parts, checked against the capabilities of
//! the upstream they will reach, so a refusal names the client's own
//! `input[i].content[j]`.

use serde_json::{Map, Value, json};

use super::media::{
    PDF, TO_ANTHROPIC, TO_GEMINI, TO_OPENAI, anthropic_lacks, audio_mime, base64_text,
    gemini_only_uri, openai_audio_format, openai_lacks, refuse,
};
use super::{data_url, guess_media_type, parse_data_url};
use crate::wire::openai::{self as oa, ContentPart};
use crate::{LlmError, Protocol};

pub(crate) type Obj = Map<String, Value>;

pub(crate) fn invalid(msg: impl Into<String>) -> LlmError {
    LlmError::InvalidRequest(msg.into())
}

/// Remove `key` when it is a string (None when absent, null or not a string).
pub(crate) fn take_string(o: &mut Obj, key: &str) -> Option<String> {
    match o.remove(key) {
        Some(Value::String(s)) => Some(s),
        _ => None,
    }
}

/// The part as an object and its `type`.
pub(crate) fn part_object(part: Value, path: &str) -> Result<(Obj, String), LlmError> {
    let Value::Object(mut p) = part else {
        return Err(invalid(format!(
            "{path} must be an object (a content part)"
        )));
    };
    let Some(kind) = take_string(&mut p, "type") else {
        return Err(invalid(format!("{path}: content part without a `type`")));
    };
    Ok((p, kind))
}

/// The text of a text part (`input_text`, `output_text`: `text`; `refusal`: `refusal`), or
/// None when `kind` is not a text kind.
pub(crate) fn part_text(p: &mut Obj, kind: &str, path: &str) -> Result<Option<String>, LlmError> {
    let key = match kind {
        "input_text" | "output_text" | "text" => "text",
        "refusal" => "refusal",
        _ => return Ok(None),
    };
    take_string(p, key)
        .map(Some)
        .ok_or_else(|| invalid(format!("{path}: {kind} without a string `{key}`")))
}

/// One part of a user message.
pub(crate) fn user_part(
    part: Value,
    path: &str,
    target: Protocol,
) -> Result<ContentPart, LlmError> {
    let (mut p, kind) = part_object(part, path)?;
    if let Some(text) = part_text(&mut p, &kind, path)? {
        return Ok(ContentPart::Text { text });
    }
    match kind.as_str() {
        "input_image" => image_part(p, path, target),
        "input_file" => file_part(p, path, target),
        "input_audio" => audio_part(p, path, target),
        other => Err(invalid(format!(
            "{path}: unknown content part type `{other}`"
        ))),
    }
}

fn target_name(target: Protocol) -> &'static str {
    match target {
        Protocol::Anthropic => TO_ANTHROPIC,
        Protocol::Gemini => TO_GEMINI,
        Protocol::OpenAi | Protocol::Responses => TO_OPENAI,
    }
}

/// `input_image`: `image_url` (http(s) or `data:` URL) -> `image_url` part with its
/// `detail`; a `file_id` names a file in OpenAI's storage, which no translation can read.
fn image_part(mut p: Obj, path: &str, target: Protocol) -> Result<ContentPart, LlmError> {
    let detail =
        take_string(&mut p, "detail").filter(|d| matches!(d.as_str(), "auto" | "low" | "high"));
    if let Some(url) = take_string(&mut p, "image_url") {
        return Ok(ContentPart::ImageUrl {
            image_url: oa::ImageUrl { url, detail },
        });
    }
    if p.get("file_id").is_some_and(|f| !f.is_null()) {
        return Err(refuse(
            path,
            "input_image (file_id)",
            target_name(target),
            "only images given by URL or data: URL are carried",
        ));
    }
    Err(invalid(format!(
        "{path}: input_image needs `image_url` or `file_id`"
    )))
}

/// `input_file`: inline data (`file_data`, a data: URL or bare base64 named by
/// `filename`), a URL (`file_url`) or an OpenAI file id (`file_id`).
fn file_part(mut p: Obj, path: &str, target: Protocol) -> Result<ContentPart, LlmError> {
    let filename = take_string(&mut p, "filename");
    if let Some(data) = take_string(&mut p, "file_data") {
        return inline_file(data, filename, path, target);
    }
    if let Some(url) = take_string(&mut p, "file_url") {
        return url_file(url, filename, path, target);
    }
    if let Some(id) = take_string(&mut p, "file_id") {
        if target != Protocol::OpenAi {
            return Err(refuse(
                path,
                "input_file (file_id)",
                target_name(target),
                "OpenAI file ids are readable only by OpenAI",
            ));
        }
        return Ok(file(None, Some(id), filename));
    }
    Err(invalid(format!(
        "{path}: input_file needs `file_data`, `file_url` or `file_id`"
    )))
}

fn file(
    file_data: Option<String>,
    file_id: Option<String>,
    filename: Option<String>,
) -> ContentPart {
    ContentPart::File {
        file: oa::FilePart {
            file_data,
            file_id,
            filename,
        },
    }
}

/// Inline file data. OpenAI Chat Completions takes PDFs as `file` parts, images as
/// `image_url`, wav/mp3 as `input_audio` and text/* as text; Anthropic and Gemini get a
/// `file` part with a data: URL that their converters turn into documents / `inlineData`.
fn inline_file(
    data: String,
    filename: Option<String>,
    path: &str,
    target: Protocol,
) -> Result<ContentPart, LlmError> {
    let (mime, payload) = match parse_data_url(&data) {
        Some(parsed) => parsed,
        None => {
            let guessed = filename
                .as_deref()
                .and_then(guess_media_type)
                .unwrap_or(PDF);
            (guessed.to_owned(), data)
        }
    };
    let what = || format!("input_file ({mime})");
    match target {
        Protocol::OpenAi | Protocol::Responses => {
            if let Some(why) = openai_lacks(&mime) {
                return Err(refuse(path, &what(), TO_OPENAI, why));
            }
            if mime.starts_with("text/") {
                return base64_text(&payload)
                    .map(|text| ContentPart::Text { text })
                    .ok_or_else(|| {
                        invalid(format!(
                            "{path}: {} is not base64-encoded UTF-8 text",
                            what()
                        ))
                    });
            }
            if mime.starts_with("image/") {
                let url = data_url(&mime, &payload);
                return Ok(ContentPart::ImageUrl {
                    image_url: oa::ImageUrl { url, detail: None },
                });
            }
            if let Some(format) = openai_audio_format(&mime) {
                return Ok(ContentPart::InputAudio {
                    input_audio: json!({"data": payload, "format": format}),
                });
            }
            let name = filename.unwrap_or_else(|| "document.pdf".into());
            Ok(file(Some(data_url(&mime, &payload)), None, Some(name)))
        }
        Protocol::Anthropic => {
            if let Some(why) = anthropic_lacks(&mime) {
                return Err(refuse(path, &what(), TO_ANTHROPIC, why));
            }
            Ok(file(Some(data_url(&mime, &payload)), None, filename))
        }
        Protocol::Gemini => Ok(file(Some(data_url(&mime, &payload)), None, filename)),
    }
}

/// A file by URL: Chat Completions cannot fetch files; Anthropic fetches PDFs at public
/// http(s) URLs; Gemini reads URLs as `fileData`.
fn url_file(
    url: String,
    filename: Option<String>,
    path: &str,
    target: Protocol,
) -> Result<ContentPart, LlmError> {
    match target {
        Protocol::OpenAi | Protocol::Responses => Err(refuse(
            path,
            "input_file (file_url)",
            TO_OPENAI,
            "Chat Completions takes files only inline or by file_id",
        )),
        Protocol::Anthropic => {
            let mime = filename
                .as_deref()
                .and_then(guess_media_type)
                .or_else(|| guess_media_type(&url))
                .unwrap_or(PDF);
            if mime != PDF || gemini_only_uri(&url) {
                return Err(refuse(
                    path,
                    &format!("input_file by URL ({mime})"),
                    TO_ANTHROPIC,
                    "it fetches only PDFs at public http(s) URLs",
                ));
            }
            Ok(file(Some(url), None, filename))
        }
        Protocol::Gemini => Ok(file(Some(url), None, filename)),
    }
}

/// `input_audio` {`input_audio`: {data, format}} -> the Chat Completions part of the same
/// shape (Gemini: `inlineData`); Anthropic has no audio input.
fn audio_part(mut p: Obj, path: &str, target: Protocol) -> Result<ContentPart, LlmError> {
    let audio = match p.remove("input_audio") {
        Some(a @ Value::Object(_)) if a.get("data").is_some_and(Value::is_string) => a,
        _ => {
            return Err(invalid(format!(
                "{path}: input_audio needs `input_audio.data`"
            )));
        }
    };
    let format = audio.get("format").and_then(Value::as_str).unwrap_or("wav");
    match target {
        Protocol::Anthropic => Err(refuse(
            path,
            "input_audio",
            TO_ANTHROPIC,
            "it has no audio input",
        )),
        Protocol::OpenAi | Protocol::Responses
            if openai_audio_format(&audio_mime(format)).is_none() =>
        {
            Err(refuse(
                path,
                &format!("input_audio ({format})"),
                TO_OPENAI,
                "its audio input takes only wav and mp3",
            ))
        }
        _ => Ok(ContentPart::InputAudio { input_audio: audio }),
    }
}
