//! The built-in LLM endpoints: OpenAI `/v1/chat/completions`, `/v1/completions`,
//! `/v1/embeddings`, `/v1/responses`, `/v1/models`; Anthropic `/v1/messages` and
//! `/v1/messages/count_tokens`; Gemini `/v1beta/models/{model}:generateContent`,
//! `:streamGenerateContent`, `:countTokens` (also under `/v1/`) and `GET /v1beta/models`.
//! The request's `model` (Gemini: the path's `{model}`) picks a model group; its
//! deployments (then its fallbacks) are tried in order until one answers, with
//! the request translated to each deployment's protocol.

pub mod accounting;
mod gemini;
mod limits;
pub mod mock;
pub mod models;
mod respond;
pub mod vertex;

use std::sync::Arc;

use axum::response::Response;
use bytes::Bytes;
use fastgate_config::UpstreamKind;
use fastgate_limits::Demand;
use fastgate_llm::{
    Protocol, RequestOptions, estimate_request_value, translate_gemini_request,
    translate_request_value,
};
use http::{Method, StatusCode, header, request::Parts};
use http_body_util::Either;
use serde_json::{Map, Value};

use crate::context::RequestContext;
use crate::error::{ClientProtocol, ProxyError};
use crate::forward::{ForwardPlan, Target, forward};
use crate::handler::error_response;
use crate::headers;
use crate::retry::RetryPolicy;
use crate::snapshot::Snapshot;
use accounting::LlmAccounting;
use mock::MockBody;
use models::DeploymentRuntime;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    Chat,
    Completions,
    Embeddings,
    Responses,
    Models,
    /// `GET /v1/models/{model}`: one model, if the key may use it.
    Model,
    Messages,
    CountTokens,
    /// Gemini `…/models/{model}:generateContent`.
    GeminiGenerate,
    /// Gemini `…/models/{model}:streamGenerateContent` (`?alt=sse` or a JSON array).
    GeminiStream,
    /// Gemini `…/models/{model}:countTokens`.
    GeminiCountTokens,
    /// Gemini `…/models/{model}:embedContent`.
    GeminiEmbed,
    /// Gemini `…/models/{model}:batchEmbedContents`.
    GeminiBatchEmbed,
    /// Gemini `GET /v1beta/models` (and `GET /v1/models` with a Google-style key).
    GeminiModels,
    /// Gemini `GET /v1beta/models/{model}` (and `GET /v1/models/{model}` likewise).
    GeminiModel,
}

impl Endpoint {
    pub fn recognise(method: &Method, path: &str) -> Option<Self> {
        if let Some(ep) = gemini::recognise(method, path) {
            return Some(ep);
        }
        let ep = match path {
            "/v1/chat/completions" => Self::Chat,
            "/v1/completions" => Self::Completions,
            "/v1/embeddings" => Self::Embeddings,
            "/v1/responses" => Self::Responses,
            "/v1/messages" => Self::Messages,
            "/v1/messages/count_tokens" => Self::CountTokens,
            "/v1/models" => return (method == Method::GET).then_some(Self::Models),
            p if p.len() > "/v1/models/".len() && p.starts_with("/v1/models/") => {
                return (method == Method::GET).then_some(Self::Model);
            }
            _ => return None,
        };
        (method == Method::POST).then_some(ep)
    }

    pub fn client_protocol(self) -> Protocol {
        match self {
            Self::Messages | Self::CountTokens => Protocol::Anthropic,
            Self::GeminiGenerate
            | Self::GeminiStream
            | Self::GeminiCountTokens
            | Self::GeminiEmbed
            | Self::GeminiBatchEmbed
            | Self::GeminiModels
            | Self::GeminiModel => Protocol::Gemini,
            Self::Responses => Protocol::Responses,
            _ => Protocol::OpenAi,
        }
    }

    /// The path for a same-protocol passthrough to an OpenAI-kind upstream.
    fn openai_path(self) -> &'static str {
        match self {
            Self::Completions => "/v1/completions",
            Self::Embeddings => "/v1/embeddings",
            Self::Responses => "/v1/responses",
            _ => "/v1/chat/completions",
        }
    }
}

pub type UpstreamBody = Either<crate::upstream_body::UpstreamBody, MockBody>;

/// An upstream answer (headers received), with what is needed to relay it.
pub(crate) struct Sent {
    pub resp: http::Response<UpstreamBody>,
    pub deployment: Arc<DeploymentRuntime>,
    pub upstream_protocol: Protocol,
    pub client_protocol: Protocol,
    pub endpoint: Endpoint,
    pub client_model: String,
    pub client_wants_usage: bool,
    pub forced_usage: bool,
    /// Gemini clients' stream framing (`?alt=sse` or a JSON array).
    pub gemini_framing: fastgate_llm::GeminiFraming,
    pub accounting: LlmAccounting,
}

pub(crate) async fn handle(
    mut ctx: RequestContext,
    parts: &Parts,
    endpoint: Endpoint,
    body: Bytes,
    snapshot: Arc<Snapshot>,
) -> Response {
    // `GET /v1/models[/{model}]` with a key sent the Google way is a Gemini SDK.
    let google_key = gemini::wants_list(&parts.headers, parts.uri.query());
    let endpoint = match endpoint {
        Endpoint::Models if google_key => Endpoint::GeminiModels,
        Endpoint::Model if google_key => Endpoint::GeminiModel,
        other => other,
    };
    // Model lookups are shared by both protocols: keep the detected error shape.
    if !matches!(endpoint, Endpoint::Models | Endpoint::Model) {
        ctx.protocol = match endpoint.client_protocol() {
            Protocol::Anthropic => ClientProtocol::Anthropic,
            Protocol::Gemini => ClientProtocol::Gemini,
            // Responses API errors are OpenAI-shaped.
            Protocol::OpenAi | Protocol::Responses => ClientProtocol::OpenAi,
        };
    }
    ctx.audit = snapshot.llm_audit;
    if ctx.audit.headers {
        ctx.request_headers = Some(headers::redacted_json(&parts.headers));
    }
    if ctx.audit.bodies {
        ctx.request_body = Some(crate::context::capture_text(
            &body,
            ctx.audit.body_max_bytes,
        ));
    }
    if matches!(
        endpoint,
        Endpoint::Models | Endpoint::Model | Endpoint::GeminiModels | Endpoint::GeminiModel
    ) {
        // Listings count against the key's request limits, with no model's.
        if let Err(e) = crate::admission::admit(&mut ctx, None, None, Demand::default()).await {
            return error_response(ctx, e);
        }
        return match endpoint {
            Endpoint::Models => respond::models(ctx, &snapshot),
            Endpoint::GeminiModels => {
                let list = gemini::model_list(&ctx, &snapshot);
                respond::local_json(ctx, &list)
            }
            Endpoint::GeminiModel => match gemini::model(&mut ctx, &snapshot) {
                Ok(v) => respond::local_json(ctx, &v),
                Err(e) => error_response(ctx, e),
            },
            _ => respond::model(ctx, &snapshot),
        };
    }
    let dispatched = dispatch(&mut ctx, parts, endpoint, &body, &snapshot).await;
    ctx.body_permit = None;
    match dispatched {
        Ok(Dispatched::Sent(sent)) => respond::relay(ctx, *sent).await,
        Ok(Dispatched::Local(value)) => respond::local_json(ctx, &value),
        Err(e) => error_response(ctx, e),
    }
}

enum Dispatched {
    Sent(Box<Sent>),
    /// Answered without an upstream (e.g. a token count estimate).
    Local(Value),
}

/// Parse the client's body (the only time it is parsed), read `model` and
/// `stream`, and check the key may use the model.
fn read_request(
    ctx: &mut RequestContext,
    endpoint: Endpoint,
    body: &[u8],
) -> Result<(String, Map<String, Value>), ProxyError> {
    let v: Map<String, Value> =
        serde_json::from_slice(body).map_err(|e| ProxyError::BadJson(e.to_string()))?;
    let model = if endpoint.client_protocol() == Protocol::Gemini {
        // Gemini names the model in the path; the stream in the method.
        ctx.stream_requested = endpoint == Endpoint::GeminiStream;
        gemini::path_model(&ctx.path)
            .ok_or_else(|| ProxyError::BadRequest("the path must name a model".into()))?
            .to_string()
    } else {
        ctx.stream_requested = v.get("stream").and_then(Value::as_bool).unwrap_or(false);
        v.get("model")
            .and_then(Value::as_str)
            .ok_or_else(|| ProxyError::BadRequest("the request must name a `model`".into()))?
            .to_string()
    };
    ctx.model = Some(model.clone());
    if let Some(key) = &ctx.key
        && !key.allows_model(&model)
    {
        return Err(ProxyError::ModelForbidden(model));
    }
    Ok((model, v))
}

async fn dispatch(
    ctx: &mut RequestContext,
    parts: &Parts,
    endpoint: Endpoint,
    body: &Bytes,
    snapshot: &Snapshot,
) -> Result<Dispatched, ProxyError> {
    let client_protocol = endpoint.client_protocol();
    let (model, request) = read_request(ctx, endpoint, body)?;
    // Fallback groups this key may not use are never tried.
    let key = ctx.key.clone();
    let candidates = snapshot.models.candidates(&model, |group| {
        key.as_ref().is_none_or(|k| k.allows_model(group))
    });
    if candidates.is_empty() {
        return Err(ProxyError::ModelNotFound(model));
    }
    let group = snapshot.models.by_name.get(&model);
    let group_limits = group.and_then(|g| g.limits.as_ref());
    let demand = if crate::admission::needs_demand(ctx, &[group_limits]) {
        limits::worst_case(
            endpoint,
            &request,
            group.and_then(|g| g.max_output_tokens),
            &candidates,
            snapshot.default_max_tokens,
        )
    } else {
        Demand::default()
    };
    crate::admission::admit(ctx, None, group_limits, demand).await?;
    if endpoint == Endpoint::CountTokens && candidates[0].protocol() != Protocol::Anthropic {
        let tokens = estimate_request_value(Protocol::Anthropic, &Value::Object(request));
        return Ok(Dispatched::Local(
            serde_json::json!({ "input_tokens": tokens }),
        ));
    }
    if endpoint == Endpoint::GeminiCountTokens && candidates[0].protocol() != Protocol::Gemini {
        return Ok(Dispatched::Local(gemini::count_tokens(request)));
    }
    let mut request = Some(request);
    let mut last_err = None;
    for (i, dep) in candidates.iter().enumerate() {
        let is_last = i + 1 == candidates.len();
        // The parsed body is cloned for a deployment that may fail, moved into the last.
        let this_request = if is_last {
            request.take().unwrap_or_default()
        } else {
            request.clone().unwrap_or_default()
        };
        let upstream_protocol = dep.protocol_for(endpoint);
        let req = match build_request(
            endpoint,
            upstream_protocol,
            this_request,
            dep,
            // The requested group's cap, which the reservation assumed.
            group
                .and_then(|g| g.max_output_tokens)
                .unwrap_or(snapshot.default_max_tokens),
        ) {
            Ok(req) => req,
            Err(e) if !is_last => {
                last_err = Some(e);
                continue;
            }
            Err(e) => return Err(e),
        };
        ctx.upstream = Some(Arc::clone(&dep.upstream.name));
        let result = send(ctx, parts, dep, &req, client_protocol, upstream_protocol).await;
        match result {
            Ok(resp) if !is_last && failover_status(resp.status()) => {
                last_err = Some(ProxyError::UpstreamStatus {
                    upstream: dep.upstream.name.to_string(),
                    status: resp.status().as_u16(),
                });
            }
            Ok(resp) => {
                let price = dep.price;
                return Ok(Dispatched::Sent(Box::new(Sent {
                    resp,
                    deployment: Arc::clone(dep),
                    upstream_protocol,
                    client_protocol,
                    endpoint,
                    client_model: model,
                    client_wants_usage: req.client_wants_usage,
                    forced_usage: req.forced_usage,
                    gemini_framing: gemini::framing(parts.uri.query()),
                    accounting: LlmAccounting {
                        price,
                        request: body.clone(),
                        protocol: client_protocol,
                    },
                })));
            }
            Err(e) if !is_last && failover_error(&e) => last_err = Some(e),
            Err(e) => return Err(e),
        }
        tracing::debug!(model = %model, upstream = %dep.upstream.name, "trying the next deployment");
    }
    Err(last_err.unwrap_or(ProxyError::ModelNotFound(model)))
}

fn failover_status(status: StatusCode) -> bool {
    RetryPolicy::Llm.retries_status(status)
}

/// The next deployment is tried only when this one provably never saw the request.
fn failover_error(e: &ProxyError) -> bool {
    e.is_unsent_upstream_failure()
}

/// The request for one deployment, in its upstream's protocol.
struct UpstreamRequest {
    body: Bytes,
    path: String,
    client_wants_usage: bool,
    forced_usage: bool,
}

fn build_request(
    endpoint: Endpoint,
    upstream: Protocol,
    body: Map<String, Value>,
    dep: &DeploymentRuntime,
    default_max_tokens: u32,
) -> Result<UpstreamRequest, ProxyError> {
    let (mut out, path, client_wants_usage, forced_usage) = match endpoint {
        Endpoint::Chat | Endpoint::Messages => {
            let opts = RequestOptions {
                upstream_model: &dep.model,
                default_max_tokens,
                force_openai_stream_usage: upstream == Protocol::OpenAi,
            };
            let t = translate_request_value(endpoint.client_protocol(), upstream, body, &opts)
                .map_err(|e| ProxyError::BadRequest(e.to_string()))?;
            let forced = upstream == Protocol::OpenAi && t.stream;
            (t.body, t.path, t.client_wants_usage, forced)
        }
        Endpoint::GeminiGenerate | Endpoint::GeminiStream => {
            let opts = RequestOptions {
                upstream_model: &dep.model,
                default_max_tokens,
                force_openai_stream_usage: true,
            };
            let stream = endpoint == Endpoint::GeminiStream;
            let t = translate_gemini_request(upstream, Value::Object(body), stream, &opts)
                .map_err(|e| ProxyError::BadRequest(e.to_string()))?;
            (t.body, t.path, true, upstream == Protocol::OpenAi && stream)
        }
        Endpoint::Responses => {
            // Native passthrough (`Responses`) or a translation through Chat Completions.
            let opts = RequestOptions {
                upstream_model: &dep.model,
                default_max_tokens,
                force_openai_stream_usage: true,
            };
            let t = translate_request_value(Protocol::Responses, upstream, body, &opts)
                .map_err(|e| ProxyError::BadRequest(e.to_string()))?;
            (t.body, t.path, true, false)
        }
        Endpoint::GeminiEmbed | Endpoint::GeminiBatchEmbed => {
            let batch = endpoint == Endpoint::GeminiBatchEmbed;
            let vertex = dep.upstream.vertex_prefix.is_some();
            let (body, path) = gemini::embed_request(body, upstream, &dep.model, batch, vertex)?;
            (body, path, true, false)
        }
        Endpoint::GeminiCountTokens if upstream != Protocol::Gemini => {
            // Only reached for a fallback: the first deployment decides local estimates.
            return Err(ProxyError::BadRequest(
                "countTokens is only passed to Gemini upstreams".into(),
            ));
        }
        Endpoint::GeminiCountTokens => (
            serde_json::to_vec(&body).map_err(|e| ProxyError::Internal(e.to_string()))?,
            gemini::count_tokens_path(&dep.model),
            true,
            false,
        ),
        Endpoint::CountTokens => (
            rewrite_model(body, &dep.model)?,
            "/v1/messages/count_tokens".to_string(),
            true,
            false,
        ),
        _ if upstream != Protocol::OpenAi => {
            return Err(ProxyError::BadRequest(format!(
                "{} is only served by OpenAI-compatible upstreams",
                endpoint.openai_path()
            )));
        }
        _ => (
            rewrite_model(body, &dep.model)?,
            endpoint.openai_path().to_string(),
            true,
            false,
        ),
    };
    if let Some(fields) = &dep.add_body_fields {
        // Our own output, read back only when the deployment adds fields.
        let mut v: Value =
            serde_json::from_slice(&out).map_err(|e| ProxyError::Internal(e.to_string()))?;
        if let Some(obj) = v.as_object_mut() {
            for (k, val) in fields {
                obj.insert(k.clone(), val.clone());
            }
        }
        out = serde_json::to_vec(&v).map_err(|e| ProxyError::Internal(e.to_string()))?;
    }
    let path = match dep.upstream.vertex_prefix.as_deref() {
        Some(prefix) => {
            let (body, path) = vertex::adapt(prefix, &dep.model, upstream, out, &path)?;
            out = body;
            path
        }
        None => path,
    };
    Ok(UpstreamRequest {
        body: Bytes::from(out),
        // Azure's deployment paths (`models::azure_path`); others unchanged.
        path: dep.upstream_path(path)?,
        client_wants_usage,
        forced_usage,
    })
}

fn rewrite_model(mut body: Map<String, Value>, model: &str) -> Result<Vec<u8>, ProxyError> {
    body.insert("model".into(), Value::String(model.to_string()));
    serde_json::to_vec(&body).map_err(|e| ProxyError::Internal(e.to_string()))
}

async fn send(
    ctx: &mut RequestContext,
    parts: &Parts,
    dep: &DeploymentRuntime,
    req: &UpstreamRequest,
    client_protocol: Protocol,
    upstream_protocol: Protocol,
) -> Result<http::Response<UpstreamBody>, ProxyError> {
    if dep.upstream.kind == UpstreamKind::Mock {
        ctx.target_url = Some(format!("mock://{}{}", dep.upstream.name, req.path));
        return Ok(mock::respond(&req.path, &req.body).map(Either::Right));
    }
    let mut headers = headers::upstream_headers(&parts.headers, &dep.remove_headers);
    // The gateway reads LLM bodies (usage, translation): ask for them uncompressed.
    headers.remove(header::ACCEPT_ENCODING);
    if client_protocol != upstream_protocol {
        for name in fastgate_llm::upstream::client_only_headers(client_protocol) {
            headers.remove(*name);
        }
    }
    headers.insert(
        header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    let deadline = tokio::time::Instant::from_std(ctx.started + dep.timeout.total);
    let plan = ForwardPlan {
        target: Target {
            upstream: &dep.upstream,
            client: &dep.client,
            add_headers: &dep.add_headers,
            timeout: dep.timeout,
            retries: dep.retries,
            retry: RetryPolicy::Llm,
        },
        method: Method::POST,
        upstream_path: req.path.clone(),
        query: None,
        headers,
        body: req.body.clone(),
        deadline,
    };
    forward(ctx, plan).await.map(|r| r.map(Either::Left))
}
