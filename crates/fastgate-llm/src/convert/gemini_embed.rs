//! Gemini embeddings as a client protocol (`…/models/{model}:embedContent` and
//! `:batchEmbedContents`) ↔ OpenAI `/v1/embeddings`.
//!
//! Request: each request's `content.parts[].text` (joined with `\n`) becomes one `input`
//! string; `outputDimensionality` becomes `dimensions` (one value for the whole batch:
//! differing values are refused). `taskType` and `title` have no OpenAI equivalent and
//! are dropped (they tune Google's own models only). Non-text parts are refused.
//! Response: `data[i].embedding` (float arrays) → `embedding.values` /
//! `embeddings[i].values`, in `index` order.

use serde_json::{Map, Value, json};

use crate::LlmError;

/// A Gemini embed request (`batch`: a `batchEmbedContents` body) → an OpenAI embeddings
/// request body for `upstream_model`.
pub fn gemini_embed_to_openai(
    body: &Map<String, Value>,
    upstream_model: &str,
    batch: bool,
) -> Result<Value, LlmError> {
    let singles: Vec<(String, &Map<String, Value>)> = if batch {
        let requests = body
            .get("requests")
            .and_then(Value::as_array)
            .ok_or_else(|| invalid("`requests` must be an array of embed requests"))?;
        if requests.is_empty() {
            return Err(invalid("`requests` is empty"));
        }
        requests
            .iter()
            .enumerate()
            .map(|(i, r)| {
                r.as_object()
                    .map(|o| (format!("requests[{i}]"), o))
                    .ok_or_else(|| invalid(&format!("requests[{i}] must be an object")))
            })
            .collect::<Result<_, _>>()?
    } else {
        vec![(String::new(), body)]
    };
    let mut input = Vec::with_capacity(singles.len());
    let mut dimensions: Option<u64> = None;
    for (at, req) in &singles {
        input.push(Value::String(text_of(at, req)?));
        let dims = req
            .get("outputDimensionality")
            .or_else(|| req.get("output_dimensionality"));
        if let Some(d) = dims {
            let d = d.as_u64().filter(|d| *d > 0).ok_or_else(|| {
                invalid(&format!(
                    "{}outputDimensionality must be a positive integer",
                    prefix(at)
                ))
            })?;
            if dimensions.is_some_and(|prev| prev != d) {
                return Err(invalid(
                    "every request of a batch must ask the same outputDimensionality \
                     when the model's upstream is OpenAI-compatible",
                ));
            }
            dimensions = Some(d);
        }
    }
    let mut out = json!({ "model": upstream_model, "input": input, "encoding_format": "float" });
    if let Some(d) = dimensions {
        out["dimensions"] = json!(d);
    }
    Ok(out)
}

fn prefix(at: &str) -> String {
    if at.is_empty() {
        String::new()
    } else {
        format!("{at}.")
    }
}

/// The text of one embed request's `content.parts`.
fn text_of(at: &str, req: &Map<String, Value>) -> Result<String, LlmError> {
    let p = prefix(at);
    let parts = req
        .get("content")
        .and_then(|c| c.get("parts"))
        .and_then(Value::as_array)
        .ok_or_else(|| invalid(&format!("{p}content.parts must be an array of parts")))?;
    let mut text = String::new();
    for (j, part) in parts.iter().enumerate() {
        let Some(t) = part.get("text").and_then(Value::as_str) else {
            return Err(LlmError::Unsupported(format!(
                "{p}content.parts[{j}]: only text parts can be embedded by this model's \
                 upstream (OpenAI-compatible embeddings take text)"
            )));
        };
        if !text.is_empty() {
            text.push('\n');
        }
        text.push_str(t);
    }
    Ok(text)
}

fn invalid(msg: &str) -> LlmError {
    LlmError::InvalidRequest(msg.to_owned())
}

/// An OpenAI embeddings response → Gemini's `{"embedding": {"values": […]}}` (or, for
/// `batch`, `{"embeddings": [{"values": […]}, …]}` in input order).
pub fn openai_embeddings_to_gemini(body: &[u8], batch: bool) -> Result<Value, LlmError> {
    let v: Value = serde_json::from_slice(body).map_err(LlmError::json)?;
    let data = v
        .get("data")
        .and_then(Value::as_array)
        .ok_or_else(|| LlmError::InvalidJson("embeddings response without `data`".into()))?;
    let mut rows: Vec<(u64, Value)> = Vec::with_capacity(data.len());
    for (i, d) in data.iter().enumerate() {
        let values = d
            .get("embedding")
            .filter(|e| e.is_array())
            .cloned()
            .ok_or_else(|| {
                LlmError::InvalidJson(format!(
                    "embeddings response data[{i}] has no float `embedding` array"
                ))
            })?;
        let index = d.get("index").and_then(Value::as_u64).unwrap_or(i as u64);
        rows.push((index, json!({ "values": values })));
    }
    rows.sort_by_key(|(i, _)| *i);
    if batch {
        let embeddings: Vec<Value> = rows.into_iter().map(|(_, e)| e).collect();
        return Ok(json!({ "embeddings": embeddings }));
    }
    let first = rows
        .into_iter()
        .next()
        .map(|(_, e)| e)
        .ok_or_else(|| LlmError::InvalidJson("embeddings response with no embedding".into()))?;
    Ok(json!({ "embedding": first }))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn single_and_batch_requests() {
        let single = obj(json!({
            "model": "models/text-embedding-004",
            "content": { "parts": [{ "text": "hello" }, { "text": "world" }] },
            "taskType": "RETRIEVAL_QUERY", "outputDimensionality": 256
        }));
        let out = gemini_embed_to_openai(&single, "text-embedding-3-small", false).unwrap();
        assert_eq!(
            out,
            json!({"model": "text-embedding-3-small", "input": ["hello\nworld"],
                   "encoding_format": "float", "dimensions": 256})
        );
        let batch = obj(json!({ "requests": [
            { "model": "models/e", "content": { "parts": [{ "text": "a" }] } },
            { "model": "models/e", "content": { "parts": [{ "text": "b" }] } }
        ]}));
        let out = gemini_embed_to_openai(&batch, "emb", true).unwrap();
        assert_eq!(out["input"], json!(["a", "b"]));
        assert!(out.get("dimensions").is_none());
    }

    #[test]
    fn refusals_name_the_part() {
        let img = obj(
            json!({ "content": { "parts": [{ "inlineData": { "mimeType": "image/png", "data": "AA==" } }] } }),
        );
        let e = gemini_embed_to_openai(&img, "m", false)
            .unwrap_err()
            .to_string();
        assert!(e.contains("content.parts[0]"), "{e}");
        let mixed = obj(json!({ "requests": [
            { "content": { "parts": [{ "text": "a" }] }, "outputDimensionality": 8 },
            { "content": { "parts": [{ "text": "b" }] }, "outputDimensionality": 16 }
        ]}));
        let e = gemini_embed_to_openai(&mixed, "m", true)
            .unwrap_err()
            .to_string();
        assert!(e.contains("outputDimensionality"), "{e}");
        let e = gemini_embed_to_openai(&obj(json!({ "requests": [1] })), "m", true)
            .unwrap_err()
            .to_string();
        assert!(e.contains("requests[0]"), "{e}");
        let e = gemini_embed_to_openai(&obj(json!({})), "m", false)
            .unwrap_err()
            .to_string();
        assert!(e.contains("content.parts"), "{e}");
    }

    #[test]
    fn responses_in_index_order() {
        let body = br#"{"object":"list","data":[
            {"object":"embedding","index":1,"embedding":[0.5,0.25]},
            {"object":"embedding","index":0,"embedding":[1.0,2.0]}],
            "model":"m","usage":{"prompt_tokens":4,"total_tokens":4}}"#;
        assert_eq!(
            openai_embeddings_to_gemini(body, true).unwrap(),
            json!({"embeddings": [{"values": [1.0, 2.0]}, {"values": [0.5, 0.25]}]})
        );
        assert_eq!(
            openai_embeddings_to_gemini(body, false).unwrap(),
            json!({"embedding": {"values": [1.0, 2.0]}})
        );
        assert!(openai_embeddings_to_gemini(b"{}", false).is_err());
    }
}
