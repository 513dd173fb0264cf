//! Same-protocol requests: only `model` is rewritten (and, for OpenAI streaming requests,
//! `stream_options.include_usage` when forced); every other field is preserved as sent.

use serde_json::{Map, Value};

use crate::{LlmError, Protocol, RequestOptions, TranslatedRequest};

pub(crate) fn request(
    protocol: Protocol,
    mut v: Map<String, Value>,
    opts: &RequestOptions,
) -> Result<TranslatedRequest, LlmError> {
    let stream = v.get("stream").and_then(Value::as_bool).unwrap_or(false);
    let client_wants_usage = v
        .get("stream_options")
        .and_then(|o| o.get("include_usage"))
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let path = match protocol {
        Protocol::OpenAi => {
            v.insert(
                "model".into(),
                Value::String(opts.upstream_model.to_owned()),
            );
            if stream && opts.force_openai_stream_usage && !client_wants_usage {
                let so = v
                    .entry("stream_options")
                    .or_insert_with(|| Value::Object(Map::new()));
                if !so.is_object() {
                    *so = Value::Object(Map::new());
                }
                if let Value::Object(o) = so {
                    o.insert("include_usage".into(), Value::Bool(true));
                }
            }
            "/v1/chat/completions".to_owned()
        }
        Protocol::Responses => {
            v.insert(
                "model".into(),
                Value::String(opts.upstream_model.to_owned()),
            );
            "/v1/responses".to_owned()
        }
        Protocol::Anthropic => {
            v.insert(
                "model".into(),
                Value::String(opts.upstream_model.to_owned()),
            );
            "/v1/messages".to_owned()
        }
        // The Gemini model lives in the path; the body is forwarded as is. `stream` is not in
        // a Gemini body: the proxy knows it from the client's path (see `gemini_path`).
        Protocol::Gemini => super::openai_gemini::gemini_path(opts.upstream_model, false),
    };
    let body = serde_json::to_vec(&v).map_err(LlmError::json)?;
    Ok(TranslatedRequest {
        body,
        stream,
        path,
        client_wants_usage,
    })
}
