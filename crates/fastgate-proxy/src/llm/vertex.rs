//! Vertex AI deployments: which protocol a model speaks there (Gemini for
//! Google's models, Anthropic's Messages for `claude*`), and the request as
//! Vertex wants it: the publisher's model path under
//! `/v1/projects/{project}/locations/{location}/publishers/`, and for Claude a
//! body without `model` but with `anthropic_version`.

use fastgate_llm::Protocol;
use serde_json::{Map, Value};

use crate::error::ProxyError;

/// The `anthropic_version` Claude on Vertex requires in the body.
pub const ANTHROPIC_VERSION: &str = "vertex-2023-10-16";

/// The protocol of `model` on Vertex: its publisher decides.
pub fn protocol(model: &str) -> Protocol {
    if model.starts_with("claude") {
        Protocol::Anthropic
    } else {
        Protocol::Gemini
    }
}

/// The body and path for Vertex, from those built for the provider's own API
/// (`/v1beta/models/{model}:…` for Gemini, `/v1/messages…` for Anthropic).
/// `prefix` is the upstream's `…/publishers/`.
pub fn adapt(
    prefix: &str,
    model: &str,
    protocol: Protocol,
    body: Vec<u8>,
    path: &str,
) -> Result<(Vec<u8>, String), ProxyError> {
    match protocol {
        Protocol::Gemini => {
            // `{model}:generateContent`, `:streamGenerateContent?alt=sse`, `:countTokens`.
            let rest = path
                .strip_prefix("/v1beta/models/")
                .or_else(|| path.strip_prefix("/v1/models/"))
                .ok_or_else(|| unsupported(path))?;
            Ok((body, format!("{prefix}google/models/{rest}")))
        }
        Protocol::Anthropic => {
            let mut obj: Map<String, Value> = serde_json::from_slice(&body)
                .map_err(|e| ProxyError::Internal(format!("vertex body: {e}")))?;
            obj.entry("anthropic_version")
                .or_insert_with(|| Value::String(ANTHROPIC_VERSION.into()));
            let path = match path {
                "/v1/messages" => {
                    // Vertex names the model in the path and refuses it in the body.
                    obj.remove("model");
                    let stream = obj.get("stream").and_then(Value::as_bool) == Some(true);
                    let op = if stream {
                        "streamRawPredict"
                    } else {
                        "rawPredict"
                    };
                    let mut p = format!("{prefix}anthropic/models/");
                    push_model(&mut p, model);
                    p.push(':');
                    p.push_str(op);
                    p
                }
                // Vertex's token counter is one endpoint taking the model in the body.
                "/v1/messages/count_tokens" => {
                    format!("{prefix}anthropic/models/count-tokens:rawPredict")
                }
                other => return Err(unsupported(other)),
            };
            let body = serde_json::to_vec(&obj).map_err(|e| ProxyError::Internal(e.to_string()))?;
            Ok((body, path))
        }
        Protocol::OpenAi | Protocol::Responses => Err(unsupported(path)),
    }
}

fn unsupported(path: &str) -> ProxyError {
    ProxyError::BadRequest(format!(
        "{path} has no Vertex AI equivalent: Vertex deployments serve chat, messages and \
         Gemini generateContent/countTokens"
    ))
}

/// The model as one path segment: RFC 3986 unreserved characters and `@`
/// (Claude versions, `claude-3-5-sonnet-v2@20241022`) stay, the rest is encoded.
fn push_model(out: &mut String, model: &str) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for b in model.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'~' | b'.' | b'@') {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0x0f)]));
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    const P: &str = "/v1/projects/p1/locations/us-central1/publishers/";

    #[test]
    fn protocol_by_model() {
        assert_eq!(protocol("claude-sonnet-4@20250514"), Protocol::Anthropic);
        assert_eq!(protocol("gemini-2.0-flash"), Protocol::Gemini);
    }

    #[test]
    fn gemini_paths() {
        let (b, p) = adapt(
            P,
            "gemini-2.0-flash",
            Protocol::Gemini,
            b"{}".to_vec(),
            "/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse",
        )
        .unwrap();
        assert_eq!(b, b"{}");
        assert_eq!(
            p,
            format!("{P}google/models/gemini-2.0-flash:streamGenerateContent?alt=sse")
        );
        assert!(adapt(P, "g", Protocol::Gemini, vec![], "/v1/embeddings").is_err());
    }

    #[test]
    fn claude_bodies_and_paths() {
        let body = br#"{"model":"claude-x@1","max_tokens":5,"stream":true,"messages":[]}"#;
        let (b, p) = adapt(
            P,
            "claude-x@1",
            Protocol::Anthropic,
            body.to_vec(),
            "/v1/messages",
        )
        .unwrap();
        assert_eq!(
            p,
            format!("{P}anthropic/models/claude-x@1:streamRawPredict")
        );
        let v: Value = serde_json::from_slice(&b).unwrap();
        assert!(v.get("model").is_none());
        assert_eq!(v["anthropic_version"], ANTHROPIC_VERSION);
        assert_eq!(v["max_tokens"], 5);
        let (_, p) = adapt(
            P,
            "claude x",
            Protocol::Anthropic,
            b"{}".to_vec(),
            "/v1/messages",
        )
        .unwrap();
        assert_eq!(p, format!("{P}anthropic/models/claude%20x:rawPredict"));
    }
}
