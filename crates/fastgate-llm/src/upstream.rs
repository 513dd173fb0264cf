//! What each upstream protocol expects on the wire besides the body (for the proxy).

use crate::Protocol;

/// `anthropic-version` sent to Anthropic upstreams when the client did not send one (always
/// when translating from another protocol).
pub const ANTHROPIC_VERSION: &str = "2023-06-01";

/// (header name, value) carrying an upstream credential:
/// OpenAI `authorization: Bearer KEY`, Anthropic `x-api-key: KEY`, Gemini `x-goog-api-key: KEY`.
pub fn auth_header(protocol: Protocol, key: &str) -> (&'static str, String) {
    match protocol {
        Protocol::OpenAi | Protocol::Responses => ("authorization", format!("Bearer {key}")),
        Protocol::Anthropic => ("x-api-key", key.to_owned()),
        Protocol::Gemini => ("x-goog-api-key", key.to_owned()),
    }
}

/// Fixed headers an upstream of `protocol` needs on every request (besides auth and
/// `content-type: application/json`).
pub fn required_headers(protocol: Protocol) -> &'static [(&'static str, &'static str)] {
    match protocol {
        Protocol::Anthropic => &[("anthropic-version", ANTHROPIC_VERSION)],
        Protocol::OpenAi | Protocol::Gemini | Protocol::Responses => &[],
    }
}

/// Request headers of the client's protocol that must not be forwarded to an upstream of a
/// different protocol (they mean nothing there or would leak the client's credential).
pub fn client_only_headers(client: Protocol) -> &'static [&'static str] {
    match client {
        Protocol::OpenAi | Protocol::Responses => {
            &["authorization", "openai-organization", "openai-project"]
        }
        Protocol::Anthropic => &["x-api-key", "anthropic-version", "anthropic-beta"],
        Protocol::Gemini => &["x-goog-api-key"],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers() {
        assert_eq!(
            auth_header(Protocol::Gemini, "k"),
            ("x-goog-api-key", "k".into())
        );
        assert_eq!(auth_header(Protocol::OpenAi, "k").1, "Bearer k");
        assert_eq!(
            required_headers(Protocol::Anthropic)[0].0,
            "anthropic-version"
        );
        assert!(client_only_headers(Protocol::Anthropic).contains(&"x-api-key"));
    }
}
