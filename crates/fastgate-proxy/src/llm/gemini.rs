//! Gemini as a client protocol: which paths are Gemini's (`/v1beta/models/{model}:{method}`,
//! also under `/v1/`), the model named by the path, the stream framing the client asked
//! for, and the answers made locally (the model list, token estimates).

use fastgate_config::ModelKind;
use fastgate_llm::{GeminiFraming, Protocol, estimate_request_value};
use http::{HeaderMap, Method};
use serde_json::{Map, Value, json};

use super::Endpoint;
use crate::context::RequestContext;
use crate::error::ProxyError;
use crate::snapshot::Snapshot;

/// The Gemini endpoint of `path`, if it is one: `POST …/models/{model}:generateContent`,
/// `:streamGenerateContent`, `:countTokens` under `/v1beta` or `/v1`, and `GET /v1beta/models`
/// (`GET /v1/models` is OpenAI's unless the key is sent the Google way: see [`wants_list`]).
pub fn recognise(method: &Method, path: &str) -> Option<Endpoint> {
    if path == "/v1beta/models" {
        return (method == Method::GET).then_some(Endpoint::GeminiModels);
    }
    if let Some(name) = path.strip_prefix("/v1beta/models/")
        && !name.is_empty()
        && !name.contains([':', '/'])
    {
        return (method == Method::GET).then_some(Endpoint::GeminiModel);
    }
    let (_, action) = model_and_action(path)?;
    let ep = match action {
        "generateContent" => Endpoint::GeminiGenerate,
        "streamGenerateContent" => Endpoint::GeminiStream,
        "countTokens" => Endpoint::GeminiCountTokens,
        "embedContent" => Endpoint::GeminiEmbed,
        "batchEmbedContents" => Endpoint::GeminiBatchEmbed,
        _ => return None,
    };
    (method == Method::POST).then_some(ep)
}

/// (`{model}`, `{method}`) of `/v1beta/models/{model}:{method}` or `/v1/models/…`.
fn model_and_action(path: &str) -> Option<(&str, &str)> {
    let rest = path
        .strip_prefix("/v1beta/models/")
        .or_else(|| path.strip_prefix("/v1/models/"))?;
    let (model, action) = rest.rsplit_once(':')?;
    (!model.is_empty() && !model.contains('/')).then_some((model, action))
}

/// The model group named by a Gemini path.
pub fn path_model(path: &str) -> Option<&str> {
    model_and_action(path).map(|(m, _)| m)
}

/// `GET /v1/models[/{model}]` answers in Gemini's shape when the key came the Google way.
pub fn wants_list(headers: &HeaderMap, query: Option<&str>) -> bool {
    headers.contains_key(crate::headers::X_GOOG_API_KEY)
        || query.is_some_and(|q| q.split('&').any(|p| p.starts_with("key=")))
}

/// `?alt=sse` asks for SSE; without it Google streams one JSON array.
pub fn framing(query: Option<&str>) -> GeminiFraming {
    if query.is_some_and(|q| q.split('&').any(|p| p == "alt=sse")) {
        GeminiFraming::Sse
    } else {
        GeminiFraming::JsonArray
    }
}

/// A Gemini embed request for an upstream of `upstream` protocol: (body, path). Gemini
/// upstreams get it as sent, each request's `model` naming the deployment's model;
/// OpenAI-protocol upstreams (`openai`, `azure`, `mock`) an `/v1/embeddings` request.
pub fn embed_request(
    body: Map<String, Value>,
    upstream: Protocol,
    dep_model: &str,
    batch: bool,
    vertex: bool,
) -> Result<(Vec<u8>, String), ProxyError> {
    let action = if batch {
        "batchEmbedContents"
    } else {
        "embedContent"
    };
    match upstream {
        Protocol::Gemini if !vertex => {
            let mut body = body;
            let model = Value::String(format!("models/{dep_model}"));
            if batch {
                if let Some(Value::Array(reqs)) = body.get_mut("requests") {
                    for r in reqs.iter_mut().filter_map(Value::as_object_mut) {
                        r.insert("model".into(), model.clone());
                    }
                }
            } else if body.contains_key("model") {
                body.insert("model".into(), model);
            }
            let out = serde_json::to_vec(&body).map_err(|e| ProxyError::Internal(e.to_string()))?;
            let mut path = String::from("/v1beta/models/");
            path.push_str(dep_model);
            path.push(':');
            path.push_str(action);
            Ok((out, path))
        }
        Protocol::OpenAi => {
            let v = fastgate_llm::gemini_embed_to_openai(&body, dep_model, batch)
                .map_err(|e| ProxyError::BadRequest(e.to_string()))?;
            let out = serde_json::to_vec(&v).map_err(|e| ProxyError::Internal(e.to_string()))?;
            Ok((out, "/v1/embeddings".to_string()))
        }
        _ => Err(ProxyError::BadRequest(format!(
            "{action} is served by gemini and OpenAI-compatible (openai, azure) upstreams; \
             this model's upstream has no embeddings API FastGate speaks"
        ))),
    }
}

/// The model groups this key may use, in Gemini's list shape.
pub fn model_list(ctx: &RequestContext, snapshot: &Snapshot) -> Value {
    let models: Vec<Value> = snapshot
        .models
        .order
        .iter()
        .filter(|name| ctx.key.as_ref().is_none_or(|k| k.allows_model(name)))
        .filter_map(|name| snapshot.models.by_name.get(name.as_str()))
        .map(|g| model_json(&g.name, g.kind))
        .collect();
    json!({ "models": models })
}

fn model_json(name: &str, kind: ModelKind) -> Value {
    let methods: &[&str] = match kind {
        ModelKind::Embedding => &["embedContent"],
        ModelKind::Chat => &["generateContent", "streamGenerateContent", "countTokens"],
    };
    json!({
        "name": format!("models/{name}"),
        "displayName": name,
        "supportedGenerationMethods": methods,
    })
}

/// `GET …/models/{model}` in Gemini's shape: 404 when no such group, 403 when the key may
/// not use it.
pub fn model(ctx: &mut RequestContext, snapshot: &Snapshot) -> Result<Value, ProxyError> {
    let name = ctx
        .path
        .rsplit_once("/models/")
        .map(|(_, n)| n.to_string())
        .unwrap_or_default();
    ctx.model = Some(name.clone());
    let Some(group) = snapshot.models.by_name.get(&name) else {
        return Err(ProxyError::ModelNotFound(name));
    };
    if let Some(key) = &ctx.key
        && !key.allows_model(&name)
    {
        return Err(ProxyError::ModelForbidden(name));
    }
    Ok(model_json(&name, group.kind))
}

/// A local `countTokens` answer (the upstream is not Gemini's, so it cannot count).
/// `generateContentRequest` wraps the request when the client sends a whole one.
pub fn count_tokens(request: Map<String, Value>) -> Value {
    let total = match request.get("generateContentRequest") {
        Some(inner) => estimate_request_value(Protocol::Gemini, inner),
        None => estimate_request_value(Protocol::Gemini, &Value::Object(request)),
    };
    json!({ "totalTokens": total })
}

/// The upstream path of a passed-through `countTokens`.
pub fn count_tokens_path(model: &str) -> String {
    let model = model.strip_prefix("models/").unwrap_or(model);
    format!("/v1beta/models/{model}:countTokens")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        let post = Method::POST;
        assert_eq!(
            recognise(&post, "/v1beta/models/g-1:generateContent"),
            Some(Endpoint::GeminiGenerate)
        );
        assert_eq!(
            recognise(&post, "/v1/models/g-1:streamGenerateContent"),
            Some(Endpoint::GeminiStream)
        );
        assert_eq!(
            recognise(&post, "/v1/models/g:countTokens"),
            Some(Endpoint::GeminiCountTokens)
        );
        assert_eq!(
            recognise(&post, "/v1/models/g:embedContent"),
            Some(Endpoint::GeminiEmbed)
        );
        assert_eq!(
            recognise(&post, "/v1beta/models/g:batchEmbedContents"),
            Some(Endpoint::GeminiBatchEmbed)
        );
        assert_eq!(recognise(&post, "/v1/models/g:predict"), None);
        assert_eq!(
            recognise(&Method::GET, "/v1/models/g:generateContent"),
            None
        );
        assert_eq!(
            recognise(&Method::GET, "/v1beta/models"),
            Some(Endpoint::GeminiModels)
        );
        assert_eq!(
            recognise(&Method::GET, "/v1beta/models/gem"),
            Some(Endpoint::GeminiModel)
        );
        assert_eq!(recognise(&post, "/v1beta/models/gem"), None);
        assert_eq!(
            path_model("/v1beta/models/gem:generateContent"),
            Some("gem")
        );
        assert_eq!(path_model("/v1beta/models/:generateContent"), None);
        assert_eq!(framing(Some("alt=sse")), GeminiFraming::Sse);
        assert_eq!(framing(Some("salt=sse")), GeminiFraming::JsonArray);
        assert_eq!(framing(None), GeminiFraming::JsonArray);
        assert_eq!(
            count_tokens_path("models/x"),
            "/v1beta/models/x:countTokens"
        );
    }
}
