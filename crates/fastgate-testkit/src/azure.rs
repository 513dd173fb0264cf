//! Azure OpenAI-shaped requests and payloads.
//!
//! A request under `/openai/` is checked the way Azure would before any answer:
//! `/openai/deployments/{deployment}/{operation}` needs an `api-version` query, and
//! every request needs a key in `api-key` or an Entra token in `authorization:
//! Bearer …` (not both: a gateway that forwards a client's credential beside its
//! own is caught). Azure's v1 API (`/openai/v1/…`) takes no dated `api-version`.
//! Answers then carry Azure's annotations: a first stream chunk with `choices: []`
//! and `prompt_filter_results`, and `content_filter_results` on choices.
//!
//! `x-mock-content-filter: prompt` answers 400 with Azure's content filter error;
//! `x-mock-content-filter: completion` ends the answer with `finish_reason:
//! "content_filter"` (a whole answer then has `content: null`).

use bytes::Bytes;
use http::{HeaderMap, header};
use serde_json::{Value, json};

use crate::RecordedRequest;

/// The deployment named by an Azure deployment path (percent-decoded).
pub(crate) fn deployment(path_only: &str) -> Option<String> {
    let tail = path_only.strip_prefix("/openai/deployments/")?;
    let (name, _) = tail.split_once('/')?;
    (!name.is_empty()).then(|| percent_decode(name))
}

/// `Ok(false)`: not an Azure path; `Ok(true)`: a valid Azure request; `Err`: the
/// status and body Azure would answer.
pub(crate) fn check(req: &RecordedRequest) -> Result<bool, (u16, Value)> {
    let path = req.path_only();
    let Some(rest) = path.strip_prefix("/openai/") else {
        return Ok(false);
    };
    let query = req.path.split_once('?').map_or("", |(_, q)| q);
    let version = query
        .split('&')
        .filter_map(|p| p.split_once('='))
        .find(|(k, _)| *k == "api-version")
        .map(|(_, v)| v);
    let v1 = rest.starts_with("v1/");
    if let Some(tail) = rest.strip_prefix("deployments/") {
        let Some((name, op)) = tail.split_once('/') else {
            return Err(not_found());
        };
        if name.is_empty() || !matches!(op, "chat/completions" | "completions" | "embeddings") {
            return Err(not_found());
        }
    }
    match version {
        Some(_) if v1 => {
            return Err(error(
                400,
                "BadRequest",
                "api-version query parameter is not allowed when using /v1 path",
            ));
        }
        Some("") => return Err(missing_version()),
        None if !v1 => return Err(missing_version()),
        _ => {}
    }
    check_key(&req.headers)?;
    Ok(true)
}

fn check_key(h: &HeaderMap) -> Result<(), (u16, Value)> {
    let api_key = h
        .get("api-key")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| !v.trim().is_empty());
    let bearer = h
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .is_some_and(|(s, t)| s.eq_ignore_ascii_case("bearer") && !t.trim().is_empty());
    match (api_key, bearer) {
        (true, false) | (false, true) => Ok(()),
        (true, true) => Err(error(
            400,
            "400",
            "mock: both api-key and Authorization were sent (a client credential leaked?)",
        )),
        (false, false) => Err(error(
            401,
            "401",
            "Access denied due to invalid subscription key or wrong API endpoint.",
        )),
    }
}

fn error(status: u16, code: &str, message: &str) -> (u16, Value) {
    (
        status,
        json!({ "error": { "code": code, "message": message } }),
    )
}

fn not_found() -> (u16, Value) {
    error(404, "404", "Resource not found")
}

fn missing_version() -> (u16, Value) {
    error(
        400,
        "MissingApiVersionParameter",
        "The api-version query parameter (?api-version=) is required for all requests.",
    )
}

pub(crate) fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| char::from(c).to_digit(16);
        if b[i] == b'%'
            && let (Some(h), Some(l)) = (
                b.get(i + 1).copied().and_then(hex),
                b.get(i + 2).copied().and_then(hex),
            )
        {
            out.push(u8::try_from(h * 16 + l).unwrap_or(b'?'));
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The `x-mock-content-filter` mode, if any.
pub(crate) fn filter_mode(h: &HeaderMap) -> Option<&str> {
    h.get("x-mock-content-filter").and_then(|v| v.to_str().ok())
}

/// Azure's 400 when the prompt trips the content filter.
pub(crate) fn content_filter_error() -> Value {
    json!({ "error": {
        "message": "The response was filtered due to the prompt triggering Azure OpenAI's content management policy. Please modify your prompt and retry.",
        "type": null,
        "param": "prompt",
        "code": "content_filter",
        "status": 400,
        "innererror": {
            "code": "ResponsibleAIPolicyViolation",
            "content_filter_result": {
                "hate": { "filtered": false, "severity": "safe" },
                "self_harm": { "filtered": false, "severity": "safe" },
                "sexual": { "filtered": false, "severity": "safe" },
                "violence": { "filtered": true, "severity": "medium" }
            }
        }
    }})
}

fn safe_results() -> Value {
    json!({
        "hate": { "filtered": false, "severity": "safe" },
        "self_harm": { "filtered": false, "severity": "safe" },
        "sexual": { "filtered": false, "severity": "safe" },
        "violence": { "filtered": false, "severity": "safe" }
    })
}

fn prompt_filter_results() -> Value {
    json!([{ "prompt_index": 0, "content_filter_results": safe_results() }])
}

/// The first chunk of an Azure stream: no choices, empty id and model.
pub(crate) fn prompt_filter_chunk() -> Bytes {
    let v = json!({
        "choices": [],
        "created": 0,
        "id": "",
        "model": "",
        "object": "",
        "prompt_filter_results": prompt_filter_results(),
    });
    Bytes::from(format!("data: {v}\n\n"))
}

/// Adds Azure's annotations to a whole chat completion; with `filtered`, the
/// answer is cut by the content filter.
pub(crate) fn annotate_completion(v: &mut Value, filtered: bool) {
    v["prompt_filter_results"] = prompt_filter_results();
    if let Some(choice) = v.pointer_mut("/choices/0") {
        if filtered {
            choice["finish_reason"] = json!("content_filter");
            choice["message"]["content"] = Value::Null;
            choice["content_filter_results"] =
                json!({ "violence": { "filtered": true, "severity": "high" } });
        } else {
            choice["content_filter_results"] = safe_results();
        }
    }
}

/// Rewrites the finish chunk of a stream to `finish_reason: "content_filter"`.
pub(crate) fn filter_finish(events: &mut [Bytes]) {
    for ev in events.iter_mut() {
        let text = String::from_utf8_lossy(ev);
        if text.contains("\"finish_reason\":\"stop\"") {
            *ev = Bytes::from(text.replace(
                "\"finish_reason\":\"stop\"",
                "\"finish_reason\":\"content_filter\"",
            ));
        }
    }
}

/// A legacy completions answer (`/completions`) with `n` tokens.
pub(crate) fn text_completion(id: &str, model: &str, n: usize) -> Value {
    let text: String = (0..n).map(crate::openai::token).collect();
    json!({
        "id": id,
        "object": "text_completion",
        "created": crate::openai::now_secs(),
        "model": model,
        "choices": [{ "index": 0, "text": text, "finish_reason": "stop", "logprobs": null }],
        "usage": { "prompt_tokens": 1, "completion_tokens": n, "total_tokens": n + 1 },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(path: &str, headers: &[(&str, &str)]) -> RecordedRequest {
        let mut h = HeaderMap::new();
        for (k, v) in headers {
            h.insert(
                header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        RecordedRequest {
            method: "POST".into(),
            path: path.into(),
            headers: h,
            body: Bytes::new(),
        }
    }

    #[test]
    fn checks_path_version_and_key() {
        let key = [("api-key", "k")];
        assert_eq!(check(&req("/v1/chat/completions", &[])), Ok(false));
        assert_eq!(
            check(&req(
                "/openai/deployments/my%2Fdep/chat/completions?api-version=2024-10-21",
                &key
            )),
            Ok(true)
        );
        assert_eq!(
            deployment("/openai/deployments/my%2Fdep%20x/chat/completions").as_deref(),
            Some("my/dep x")
        );
        assert_eq!(deployment("/openai/models"), None);
        let status = |r: Result<bool, (u16, Value)>| r.err().map(|e| e.0);
        assert_eq!(
            status(check(&req("/openai/deployments/d/chat/completions", &key))),
            Some(400)
        );
        assert_eq!(
            status(check(&req(
                "/openai/deployments/d/chat/completions?api-version=",
                &key
            ))),
            Some(400)
        );
        assert_eq!(
            status(check(&req(
                "/openai/deployments/d/chat?api-version=1",
                &key
            ))),
            Some(404)
        );
        assert_eq!(
            status(check(&req(
                "/openai/deployments/d/embeddings?api-version=1",
                &[]
            ))),
            Some(401)
        );
        assert_eq!(
            status(check(&req(
                "/openai/deployments/d/embeddings?api-version=1",
                &[("api-key", "k"), ("authorization", "Bearer x")]
            ))),
            Some(400)
        );
        assert_eq!(
            check(&req(
                "/openai/deployments/d/embeddings?api-version=1",
                &[("authorization", "Bearer entra")]
            )),
            Ok(true)
        );
        assert_eq!(
            status(check(&req("/openai/v1/responses?api-version=1", &key))),
            Some(400)
        );
        assert_eq!(check(&req("/openai/v1/responses", &key)), Ok(true));
    }
}
