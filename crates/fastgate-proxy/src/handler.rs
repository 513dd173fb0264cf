//! The proxy handler: the request path's phases in order (DESIGN.md §1).
//!
//! normalise path → authenticate → read body (bounded) → match route →
//! authorise → transform → forward → stream back. Every phase reads only
//! in-memory snapshots; the only awaits are the client's body and the upstream.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use bytes::Bytes;
use chrono::Utc;
use fastgate_auth::KeyCheck;
use fastgate_limits::Demand;
use fastgate_routing::{BodyView, MatchOutcome, is_reserved_path, normalize_path};
use http::{header, request::Parts};
use serde::Deserialize;

use crate::body::TrackedBody;
use crate::context::{Outcome, RequestContext, capture_text};
use crate::error::{ClientProtocol, ProxyError};
use crate::forward::{ForwardPlan, Target, forward};
use crate::headers::{self, extract_key, find_underscore_header, strip_key_param};
use crate::llm::Endpoint;
use crate::metrics as m;
use crate::request_body::BodyLimits;
use crate::snapshot::Snapshot;
use crate::state::{AppState, ConnAbort, PeerAddr};

/// What a matched, authorised request needs to be forwarded.
struct Admitted {
    snapshot: Arc<Snapshot>,
    route_index: usize,
    upstream_path: String,
    body: Bytes,
}

/// Every request the admin router does not serve: CORS preflights (when `cors` is
/// on), `GET /`, then the proxy phases. With CORS off this costs one branch.
pub async fn proxy_handler(State(state): State<AppState>, req: Request) -> Response {
    let cors = crate::cors::for_request(&state, &req);
    if let Some(preflight) = cors.as_ref().and_then(|c| c.preflight(&req)) {
        return preflight;
    }
    let mut resp = match crate::root::answer(&state, &req) {
        Some(resp) => resp,
        None => proxy(state, req).await,
    };
    if let Some(cors) = cors {
        cors.apply(resp.headers_mut());
    }
    resp
}

async fn proxy(state: AppState, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let mut ctx = RequestContext::new(state.clone(), parts.method.clone());
    ctx.set_client_request_id(headers::request_id(&parts.headers));
    ctx.query = parts.uri.query().and_then(strip_key_param);
    ctx.protocol = ClientProtocol::detect(parts.uri.path(), &parts.headers, parts.uri.query());
    let peer = parts.extensions.get::<PeerAddr>().map(|p| p.0);
    ctx.conn_abort = parts.extensions.get::<ConnAbort>().cloned();
    ctx.client_ip = state.client_ip(peer, &parts.headers);
    ctx.user_agent = parts.headers.get(header::USER_AGENT).cloned();

    let result = match admit(&state, &mut ctx, &parts, body).await {
        Ok(Admission::Route(admitted)) => send(&mut ctx, &parts, admitted).await,
        Ok(Admission::Llm(endpoint, body, snapshot)) => {
            return crate::llm::handle(ctx, &parts, endpoint, body, snapshot).await;
        }
        Err(e) => Err(e),
    };
    match result {
        Ok((resp, idle, deadline, capture)) => {
            let (mut head, incoming) = resp.into_parts();
            let outcome = Outcome {
                status: head.status.as_u16(),
                ttfb: Some(ctx.started.elapsed()),
                is_stream: is_stream_response(&head.headers, ctx.stream_requested),
                response_headers: ctx
                    .audit
                    .headers
                    .then(|| headers::redacted_json(&head.headers)),
                ..Outcome::default()
            };
            head.headers = headers::response_headers(&head.headers);
            ctx.insert_id_headers(&mut head.headers);
            crate::admission::insert_rate_headers(&mut head.headers, ctx.windows);
            let tracked = TrackedBody::new(incoming, ctx, outcome, idle, deadline, capture);
            Response::from_parts(head, Body::new(tracked))
        }
        Err(err) => error_response(ctx, err),
    }
}

pub(crate) fn error_response(ctx: RequestContext, err: ProxyError) -> Response {
    if matches!(
        err,
        ProxyError::MissingKey
            | ProxyError::UnknownKey
            | ProxyError::ExpiredKey
            | ProxyError::RevokedKey
    ) {
        metrics::counter!(m::AUTH_FAILURES, "reason" => err.code()).increment(1);
    }
    let mut resp = err.to_response(ctx.protocol);
    ctx.insert_id_headers(resp.headers_mut());
    let body_len = http_body::Body::size_hint(resp.body()).exact().unwrap_or(0);
    ctx.finish(Outcome {
        status: err.status().as_u16(),
        response_bytes: body_len,
        error: Some(err.to_string()),
        ..Outcome::default()
    });
    resp
}

fn is_stream_response(headers: &http::HeaderMap, requested: bool) -> bool {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    ct.starts_with("text/event-stream")
        || ct.starts_with("application/x-ndjson")
        || (requested && !headers.contains_key(header::CONTENT_LENGTH))
}

/// Where an admitted request goes.
enum Admission {
    Route(Admitted),
    /// A built-in LLM endpoint (no explicit route matched the path).
    Llm(Endpoint, Bytes, Arc<Snapshot>),
}

/// Phases up to the decision to forward: path, key, route, permission, limits,
/// and only then the body. A request refused on any of them costs no body read
/// (a route with body conditions is the exception: it needs the body to match).
async fn admit(
    state: &AppState,
    ctx: &mut RequestContext,
    parts: &Parts,
    body: Body,
) -> Result<Admission, ProxyError> {
    ctx.path = match normalize_path(parts.uri.path()) {
        Ok(path) => path,
        Err(e) => {
            ctx.path = parts.uri.path().to_string();
            return Err(ProxyError::BadPath(e.to_string()));
        }
    };
    if is_reserved_path(&ctx.path) {
        return Err(no_route(ctx, parts));
    }
    if let Some(name) = find_underscore_header(&parts.headers) {
        return Err(ProxyError::BadHeader(format!(
            "header names may not contain '_': {name}"
        )));
    }
    let snapshot = state.inner().snapshot.load_full();
    authenticate(state, ctx, parts, &snapshot)?;

    let mut parsed: Option<serde_json::Value> = None;
    let (route_index, upstream_path, body) = match snapshot.routes.find(
        &parts.method,
        &ctx.path,
        &parts.headers,
        BodyView::NotLoaded,
    ) {
        MatchOutcome::Matched(m) => {
            let (index, upstream_path) = (m.index(), m.upstream_path(&ctx.path));
            admit_route(ctx, &snapshot, index)?;
            let limits = snapshot.route(index).and_then(|rt| rt.limits.as_ref());
            crate::admission::precheck(ctx, limits)?;
            let body = read_body(state, ctx, parts, body).await?;
            (index, upstream_path, body)
        }
        MatchOutcome::NeedBody => {
            let body = read_body(state, ctx, parts, body).await?;
            let value = parse_json(&body)?;
            let found = match snapshot.routes.find(
                &parts.method,
                &ctx.path,
                &parts.headers,
                BodyView::Json(&value),
            ) {
                MatchOutcome::Matched(m) => Some((m.index(), m.upstream_path(&ctx.path))),
                MatchOutcome::NeedBody | MatchOutcome::NotFound => None,
            };
            parsed = Some(value);
            let Some((index, upstream_path)) = found else {
                let endpoint = llm_endpoint(ctx, parts, &snapshot)?;
                admit_llm(ctx, &snapshot)?;
                return Ok(Admission::Llm(endpoint, body, snapshot));
            };
            admit_route(ctx, &snapshot, index)?;
            (index, upstream_path, body)
        }
        MatchOutcome::NotFound => {
            let endpoint = llm_endpoint(ctx, parts, &snapshot)?;
            admit_llm(ctx, &snapshot)?;
            crate::admission::precheck(ctx, None)?;
            let body = read_body(state, ctx, parts, body).await?;
            return Ok(Admission::Llm(endpoint, body, snapshot));
        }
    };
    let rt = snapshot
        .route(route_index)
        .ok_or_else(|| ProxyError::Internal("matched route has no runtime".into()))?;
    probe_model(ctx, parts, &body, parsed.as_ref())?;
    crate::admission::admit(ctx, rt.limits.as_ref(), None, Demand::default()).await?;
    // The audit keeps what the client sent, not the route's added fields (they
    // may carry secrets).
    if ctx.audit.headers {
        ctx.request_headers = Some(headers::redacted_json(&parts.headers));
    }
    if ctx.audit.bodies {
        ctx.request_body = Some(capture_text(&body, ctx.audit.body_max_bytes));
    }
    let body = match &rt.add_body_fields {
        Some(fields) => add_fields(parsed.take(), &body, fields)?,
        None => body,
    };
    Ok(Admission::Route(Admitted {
        route_index,
        upstream_path,
        body,
        snapshot,
    }))
}

/// A matched route: may this key use it? (Its limits are checked after the body.)
fn admit_route(
    ctx: &mut RequestContext,
    snapshot: &Snapshot,
    route_index: usize,
) -> Result<(), ProxyError> {
    let rt = snapshot
        .route(route_index)
        .ok_or_else(|| ProxyError::Internal("matched route has no runtime".into()))?;
    ctx.route = Some(Arc::clone(&rt.name));
    ctx.route_metrics = Some(Arc::clone(&rt.metrics));
    ctx.upstream = Some(Arc::clone(&rt.upstream.name));
    ctx.audit = rt.audit;
    match &ctx.key {
        None if rt.auth => Err(ProxyError::MissingKey),
        Some(key) if !key.allows_route(&rt.name) => {
            Err(ProxyError::RouteForbidden(rt.name.to_string()))
        }
        _ => Ok(()),
    }
}

fn no_route(ctx: &RequestContext, parts: &Parts) -> ProxyError {
    ProxyError::NoRoute {
        method: parts.method.to_string(),
        path: ctx.path.clone(),
    }
}

/// The built-in LLM endpoint for this request (no explicit route matched it).
fn llm_endpoint(
    ctx: &RequestContext,
    parts: &Parts,
    snapshot: &Snapshot,
) -> Result<Endpoint, ProxyError> {
    snapshot
        .llm_endpoints
        .then(|| Endpoint::recognise(&parts.method, &ctx.path))
        .flatten()
        .ok_or_else(|| no_route(ctx, parts))
}

/// The LLM endpoints need a key (its limits are checked once the model is known).
fn admit_llm(ctx: &mut RequestContext, snapshot: &Snapshot) -> Result<(), ProxyError> {
    if ctx.key.is_none() {
        return Err(ProxyError::MissingKey);
    }
    ctx.route = Some(Arc::clone(&snapshot.llm_route));
    ctx.route_metrics = Some(Arc::clone(&snapshot.llm_metrics));
    Ok(())
}

fn authenticate(
    state: &AppState,
    ctx: &mut RequestContext,
    parts: &Parts,
    snapshot: &Snapshot,
) -> Result<(), ProxyError> {
    match extract_key(&parts.headers, parts.uri.query()) {
        Some((presented, _)) => match state.inner().keys.load().check(presented, Utc::now()) {
            KeyCheck::Valid(rec) => {
                ctx.key = Some(rec);
                Ok(())
            }
            KeyCheck::Unknown => Err(ProxyError::UnknownKey),
            KeyCheck::Expired(rec) => {
                ctx.key = Some(rec);
                Err(ProxyError::ExpiredKey)
            }
            KeyCheck::Revoked(rec) => {
                ctx.key = Some(rec);
                Err(ProxyError::RevokedKey)
            }
        },
        None if !snapshot.has_public_routes => Err(ProxyError::MissingKey),
        None => Ok(()),
    }
}

async fn read_body(
    state: &AppState,
    ctx: &mut RequestContext,
    parts: &Parts,
    body: Body,
) -> Result<Bytes, ProxyError> {
    let limits = {
        let cfg = state.inner().config.load();
        BodyLimits {
            max_bytes: cfg.server.max_body_bytes,
            timeout: cfg.server.body_read_timeout,
            inflight_max: cfg.server.max_inflight_body_bytes,
        }
    };
    let content_length = match parts.headers.get(header::CONTENT_LENGTH) {
        Some(v) => Some(
            v.to_str()
                .ok()
                .and_then(|s| s.parse::<u64>().ok())
                .ok_or_else(|| ProxyError::BadHeader("invalid Content-Length".into()))?,
        ),
        None => None,
    };
    let (bytes, permit) =
        crate::request_body::read_body(body, content_length, &limits, &state.inner().body_budget)
            .await?;
    ctx.request_bytes = bytes.len() as u64;
    ctx.body_permit = permit;
    Ok(bytes)
}

fn parse_json(body: &[u8]) -> Result<serde_json::Value, ProxyError> {
    serde_json::from_slice(body).map_err(|e| ProxyError::BadJson(e.to_string()))
}

/// Largest passthrough body scanned for `model` / `stream`.
const MODEL_PROBE_MAX_BYTES: usize = 32 * 1024;

#[derive(Deserialize)]
struct ModelProbe {
    model: Option<String>,
    stream: Option<bool>,
}

/// Read `model` and `stream` from a JSON body for the audit log and stream
/// detection, and hold the key to its `allowed_models` when the body names one.
fn probe_model(
    ctx: &mut RequestContext,
    parts: &Parts,
    body: &[u8],
    parsed: Option<&serde_json::Value>,
) -> Result<(), ProxyError> {
    let restricted = ctx
        .key
        .as_ref()
        .is_some_and(|k| !k.allowed_models.is_empty());
    if let Some(v) = parsed {
        ctx.model = v.get("model").and_then(|m| m.as_str()).map(str::to_owned);
        ctx.stream_requested = v
            .get("stream")
            .and_then(serde_json::Value::as_bool)
            .unwrap_or(false);
    } else {
        let is_json = parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.starts_with("application/json"));
        let looks_json = body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
        // Scanning a large body for `model` would cost more than the rest of the
        // request; passthrough routes read it from small ones only, unless the
        // key is limited to some models: then every body that may name one is read.
        let probe = if restricted {
            is_json || looks_json
        } else {
            is_json && !body.is_empty() && body.len() <= MODEL_PROBE_MAX_BYTES
        };
        if probe && let Ok(p) = serde_json::from_slice::<ModelProbe>(body) {
            ctx.model = p.model;
            ctx.stream_requested = p.stream.unwrap_or(false);
        }
    }
    if let (Some(key), Some(model)) = (&ctx.key, &ctx.model)
        && !key.allows_model(model)
    {
        return Err(ProxyError::ModelForbidden(model.clone()));
    }
    Ok(())
}

/// The body with the route's `add_body_fields` set (the body must be a JSON object,
/// or empty). Shared with the dry run.
pub(crate) fn add_fields(
    parsed: Option<serde_json::Value>,
    body: &[u8],
    fields: &serde_json::Map<String, serde_json::Value>,
) -> Result<Bytes, ProxyError> {
    let mut value = match parsed {
        Some(v) => v,
        None if body.is_empty() => serde_json::Value::Object(serde_json::Map::new()),
        None => parse_json(body)?,
    };
    let obj = value.as_object_mut().ok_or(ProxyError::BodyNotObject)?;
    for (k, v) in fields {
        obj.insert(k.clone(), v.clone());
    }
    serde_json::to_vec(&value)
        .map(Bytes::from)
        .map_err(|e| ProxyError::Internal(e.to_string()))
}

type Sent = (
    http::Response<crate::upstream_body::UpstreamBody>,
    Duration,
    tokio::time::Instant,
    Option<usize>,
);

async fn send(
    ctx: &mut RequestContext,
    parts: &Parts,
    admitted: Admitted,
) -> Result<Sent, ProxyError> {
    let rt = admitted
        .snapshot
        .route(admitted.route_index)
        .ok_or_else(|| ProxyError::Internal("matched route has no runtime".into()))?;
    let deadline = tokio::time::Instant::from_std(ctx.started + rt.timeout.total);
    let plan = ForwardPlan {
        target: Target::of_route(rt, &parts.method),
        method: parts.method.clone(),
        upstream_path: admitted.upstream_path,
        query: ctx.query.clone(),
        headers: headers::upstream_headers(&parts.headers, &rt.remove_headers),
        body: admitted.body,
        deadline,
    };
    let resp = forward(ctx, plan).await;
    // The upstream has the body (or never will): its bytes leave the budget.
    ctx.body_permit = None;
    let resp = resp?;
    let capture = ctx.audit.bodies.then_some(ctx.audit.body_max_bytes);
    Ok((resp, rt.timeout.idle, deadline, capture))
}
