//! Error bodies and mid-stream error events in each protocol's shape.
//!
//! | status | OpenAI `type` (`code`)              | Anthropic `type`       | Gemini `status`      |
//! |--------|-------------------------------------|------------------------|----------------------|
//! | 400    | invalid_request_error               | invalid_request_error  | INVALID_ARGUMENT     |
//! | 401    | authentication_error (invalid_api_key) | authentication_error | UNAUTHENTICATED     |
//! | 403    | permission_error                    | permission_error       | PERMISSION_DENIED    |
//! | 404    | not_found_error (model_not_found)   | not_found_error        | NOT_FOUND            |
//! | 413    | invalid_request_error               | request_too_large      | INVALID_ARGUMENT     |
//! | 429    | rate_limit_error (rate_limit_exceeded) | rate_limit_error    | RESOURCE_EXHAUSTED   |
//! | 503/529| server_error (overloaded)           | overloaded_error       | UNAVAILABLE          |
//! | 5xx    | server_error                        | api_error              | INTERNAL             |
//!
//! The message is kept verbatim (an unparsable upstream body becomes the message, cut to
//! [`MAX_MESSAGE`] bytes). An OpenAI-shaped body with `code: "content_filter"` (Azure
//! OpenAI refusing a prompt) is an invalid request whose message starts with "the
//! provider's content filter refused the request"; an OpenAI client gets such a body
//! unchanged (its `code` included).
//!
//! OpenAI-compatible servers' own shapes are read too (message kept, kind from the
//! status): Ollama's `{"error": "<message>"}` and vLLM's unwrapped `{"object": "error",
//! "message": …, "type": …, "code": 400}`; an OpenAI client gets them rewritten in
//! OpenAI's shape, since its SDK cannot read them.

use bytes::Bytes;
use serde_json::json;

use crate::Protocol;
use crate::wire::{anthropic as an, gemini as gm, openai as oa};

/// Longest message copied from an unparsable upstream error body.
pub const MAX_MESSAGE: usize = 2048;

/// Protocol-neutral error kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    InvalidRequest,
    Authentication,
    Permission,
    NotFound,
    TooLarge,
    RateLimit,
    Overloaded,
    Server,
}

impl Kind {
    pub fn from_status(status: u16) -> Self {
        match status {
            401 => Kind::Authentication,
            403 => Kind::Permission,
            404 => Kind::NotFound,
            413 => Kind::TooLarge,
            429 => Kind::RateLimit,
            503 | 529 => Kind::Overloaded,
            s if s >= 500 => Kind::Server,
            _ => Kind::InvalidRequest,
        }
    }

    fn from_name(name: &str, status: u16) -> Self {
        match name {
            "invalid_request_error" | "INVALID_ARGUMENT" | "FAILED_PRECONDITION" => {
                Kind::InvalidRequest
            }
            "authentication_error" | "UNAUTHENTICATED" => Kind::Authentication,
            "permission_error" | "PERMISSION_DENIED" => Kind::Permission,
            "not_found_error" | "NOT_FOUND" => Kind::NotFound,
            "request_too_large" => Kind::TooLarge,
            "rate_limit_error" | "RESOURCE_EXHAUSTED" | "insufficient_quota" => Kind::RateLimit,
            "overloaded_error" | "UNAVAILABLE" => Kind::Overloaded,
            "api_error" | "server_error" | "INTERNAL" => Kind::Server,
            _ => Kind::from_status(status),
        }
    }

    fn status(self) -> u16 {
        match self {
            Kind::InvalidRequest => 400,
            Kind::Authentication => 401,
            Kind::Permission => 403,
            Kind::NotFound => 404,
            Kind::TooLarge => 413,
            Kind::RateLimit => 429,
            Kind::Overloaded => 503,
            Kind::Server => 500,
        }
    }

    fn openai(self) -> (&'static str, Option<&'static str>) {
        match self {
            Kind::InvalidRequest | Kind::TooLarge => ("invalid_request_error", None),
            Kind::Authentication => ("authentication_error", Some("invalid_api_key")),
            Kind::Permission => ("permission_error", None),
            Kind::NotFound => ("not_found_error", Some("model_not_found")),
            Kind::RateLimit => ("rate_limit_error", Some("rate_limit_exceeded")),
            Kind::Overloaded => ("server_error", Some("overloaded")),
            Kind::Server => ("server_error", None),
        }
    }

    fn anthropic(self) -> &'static str {
        match self {
            Kind::InvalidRequest => "invalid_request_error",
            Kind::Authentication => "authentication_error",
            Kind::Permission => "permission_error",
            Kind::NotFound => "not_found_error",
            Kind::TooLarge => "request_too_large",
            Kind::RateLimit => "rate_limit_error",
            Kind::Overloaded => "overloaded_error",
            Kind::Server => "api_error",
        }
    }

    fn gemini(self) -> &'static str {
        match self {
            Kind::InvalidRequest | Kind::TooLarge => "INVALID_ARGUMENT",
            Kind::Authentication => "UNAUTHENTICATED",
            Kind::Permission => "PERMISSION_DENIED",
            Kind::NotFound => "NOT_FOUND",
            Kind::RateLimit => "RESOURCE_EXHAUSTED",
            Kind::Overloaded => "UNAVAILABLE",
            Kind::Server => "INTERNAL",
        }
    }
}

/// (kind, message) read from an upstream error body of any protocol.
pub(crate) fn parse(upstream: Protocol, status: u16, body: &[u8]) -> (Kind, String) {
    let parsed = match upstream {
        Protocol::OpenAi | Protocol::Responses => parse_openai(status, body),
        Protocol::Anthropic => serde_json::from_slice::<an::ErrorBody>(body)
            .ok()
            .map(|b| (Kind::from_name(&b.error.kind, status), b.error.message)),
        Protocol::Gemini => serde_json::from_slice::<gm::ErrorBody>(body)
            .ok()
            .map(|b| (Kind::from_name(&b.error.status, status), b.error.message)),
    };
    parsed.unwrap_or_else(|| (Kind::from_status(status), raw_message(status, body)))
}

/// An OpenAI-protocol error body: OpenAI's `{"error": {...}}`, or one of the shapes
/// OpenAI-compatible servers answer with instead.
fn parse_openai(status: u16, body: &[u8]) -> Option<(Kind, String)> {
    let Ok(b) = serde_json::from_slice::<oa::ErrorBody>(body) else {
        return parse_openai_compatible(status, body);
    };
    let name = b.error.kind.unwrap_or_default();
    let code = b.error.code.as_ref().and_then(|c| c.as_str()).unwrap_or("");
    if code == "content_filter" {
        return Some((
            Kind::InvalidRequest,
            content_filter_message(&b.error.message, body),
        ));
    }
    let kind = match Kind::from_name(&name, status) {
        Kind::InvalidRequest if code == "invalid_api_key" => Kind::Authentication,
        Kind::InvalidRequest if code == "model_not_found" => Kind::NotFound,
        // Ollama's OpenAI API types every error `api_error`, a 404 for an unknown
        // model included: a client error status says more than that name.
        Kind::Server if (400..500).contains(&status) => Kind::from_status(status),
        k => k,
    };
    Some((kind, b.error.message))
}

/// Error bodies of OpenAI-compatible servers that are not OpenAI's shape; the kind comes
/// from the HTTP status (their type names are not OpenAI's):
/// - Ollama's native API: `{"error": "model 'x' not found"}` (a string);
/// - vLLM (older versions): `{"object": "error", "message": …, "type": "BadRequestError",
///   "param": null, "code": 400}` (no `error` wrapper).
fn parse_openai_compatible(status: u16, body: &[u8]) -> Option<(Kind, String)> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    let message = match v.get("error") {
        Some(serde_json::Value::String(m)) => m.as_str(),
        _ if v.get("object").and_then(|o| o.as_str()) == Some("error") => {
            v.get("message")?.as_str()?
        }
        _ => return None,
    };
    Some((Kind::from_status(status), message.to_owned()))
}

/// Azure OpenAI's content filter refused the prompt (`error.code: content_filter`,
/// a 400): the message says so in words any client shows, names the categories
/// `innererror.content_filter_result` marks as filtered, then keeps the
/// provider's own text.
fn content_filter_message(provider: &str, body: &[u8]) -> String {
    let filtered: Vec<String> = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| {
            v.pointer("/error/innererror/content_filter_result")?
                .as_object()
                .map(|cats| {
                    cats.iter()
                        .filter(|(_, c)| c.get("filtered").and_then(|f| f.as_bool()) == Some(true))
                        .map(
                            |(name, c)| match c.get("severity").and_then(|s| s.as_str()) {
                                Some(sev) => format!("{name} ({sev})"),
                                None => name.clone(),
                            },
                        )
                        .collect()
                })
        })
        .unwrap_or_default();
    let mut msg = String::from("the provider's content filter refused the request");
    if !filtered.is_empty() {
        msg.push_str(" (filtered: ");
        msg.push_str(&filtered.join(", "));
        msg.push(')');
    }
    if !provider.trim().is_empty() {
        msg.push_str(": ");
        msg.push_str(provider.trim());
    }
    msg
}

fn raw_message(status: u16, body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        return format!("upstream returned status {status}");
    }
    let mut end = text.len().min(MAX_MESSAGE);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}

/// Error JSON in `client`'s shape.
pub(crate) fn body(client: Protocol, kind: Kind, message: &str) -> serde_json::Value {
    match client {
        Protocol::OpenAi | Protocol::Responses => {
            let (t, code) = kind.openai();
            json!({"error": {"message": message, "type": t, "param": null, "code": code}})
        }
        Protocol::Anthropic => {
            json!({"type": "error", "error": {"type": kind.anthropic(), "message": message}})
        }
        Protocol::Gemini => json!({"error": {
            "code": kind.status(), "message": message, "status": kind.gemini()
        }}),
    }
}

/// Upstream error body -> client error JSON (same protocol: returned unchanged when it is a
/// well-formed error body of that protocol).
pub fn translate_error(
    upstream: Protocol,
    client: Protocol,
    status: u16,
    body_bytes: &[u8],
) -> Vec<u8> {
    if upstream == client && is_error_body(upstream, body_bytes) {
        return body_bytes.to_vec();
    }
    let (kind, message) = parse(upstream, status, body_bytes);
    body(client, kind, &message).to_string().into_bytes()
}

fn is_error_body(p: Protocol, b: &[u8]) -> bool {
    match p {
        Protocol::OpenAi | Protocol::Responses => {
            serde_json::from_slice::<oa::ErrorBody>(b).is_ok()
        }
        Protocol::Anthropic => serde_json::from_slice::<an::ErrorBody>(b).is_ok(),
        Protocol::Gemini => serde_json::from_slice::<gm::ErrorBody>(b).is_ok(),
    }
}

/// A terminal mid-stream error event in `client`'s protocol (never followed by `[DONE]`).
pub(crate) fn stream_event(client: Protocol, kind: Kind, message: &str) -> Bytes {
    if client == Protocol::Responses {
        return responses_error_event(kind, message, 0);
    }
    let data = body(client, kind, message).to_string();
    match client {
        Protocol::Anthropic => crate::sse::encode(Some("error"), &data),
        Protocol::OpenAi | Protocol::Gemini | Protocol::Responses => {
            crate::sse::encode(None, &data)
        }
    }
}

/// The Responses API's terminal `error` event: `{"type":"error","code","message","param",
/// "sequence_number"}` (the stream's next sequence number; 0 when nothing was sent).
pub(crate) fn responses_error_event(kind: Kind, message: &str, sequence_number: u64) -> Bytes {
    let (_, code) = kind.openai();
    let data = json!({
        "type": "error",
        "code": code.unwrap_or(kind.openai().0),
        "message": message,
        "param": null,
        "sequence_number": sequence_number,
    })
    .to_string();
    crate::sse::encode(Some("error"), &data)
}
