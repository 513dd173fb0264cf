//! Relaying an upstream answer to the client: streams through a stream processor
//! (frame by frame), whole responses translated once, errors in the client's
//! protocol. Also the answers made locally (`/v1/models`, token estimates).

use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use fastgate_llm::{
    GeminiFraming, Protocol, StreamOptions, gemini_stream_processor, openai_embeddings_to_gemini,
    openai_model_list, stream_processor, translate_error, translate_response, usage_from_response,
};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use http_body_util::{BodyExt, Limited};
use serde_json::Value;

use super::{Endpoint, Sent};
use crate::body::{LlmStream, TrackedBody};
use crate::context::{Outcome, RequestContext, capture_text};
use crate::error::ProxyError;
use crate::handler::error_response;
use crate::headers;
use crate::snapshot::Snapshot;

/// Largest non-stream LLM response read into memory.
const MAX_RESPONSE_BYTES: usize = 32 * 1024 * 1024;
/// Largest upstream error body read (it is translated, then dropped).
const MAX_ERROR_BYTES: usize = 1024 * 1024;
/// Largest single SSE event accepted from an upstream.
const MAX_EVENT_BYTES: usize = 1024 * 1024;

fn client_headers(ctx: &RequestContext, content_type: HeaderValue) -> HeaderMap {
    let mut h = HeaderMap::with_capacity(6);
    h.insert(header::CONTENT_TYPE, content_type);
    ctx.insert_id_headers(&mut h);
    crate::admission::insert_rate_headers(&mut h, ctx.windows);
    h
}

fn full_response(
    ctx: &RequestContext,
    status: StatusCode,
    content_type: HeaderValue,
    body: Bytes,
) -> Response {
    let mut resp = Response::new(Body::from(body));
    *resp.status_mut() = status;
    *resp.headers_mut() = client_headers(ctx, content_type);
    resp
}

/// A JSON answer made by the gateway itself.
pub(super) fn local_json(ctx: RequestContext, value: &Value) -> Response {
    let body = Bytes::from(value.to_string());
    let resp = full_response(
        &ctx,
        StatusCode::OK,
        HeaderValue::from_static("application/json"),
        body.clone(),
    );
    let response_body = ctx
        .audit
        .bodies
        .then(|| capture_text(&body, ctx.audit.body_max_bytes));
    ctx.finish(Outcome {
        status: 200,
        response_bytes: body.len() as u64,
        response_body,
        ..Outcome::default()
    });
    resp
}

/// `GET /v1/models`: the model groups this key may use, in OpenAI's list shape.
pub(super) fn models(ctx: RequestContext, snapshot: &Snapshot) -> Response {
    let names: Vec<(&str, &str)> = snapshot
        .models
        .order
        .iter()
        .filter(|name| ctx.key.as_ref().is_none_or(|k| k.allows_model(name)))
        .map(|name| (name.as_str(), "fastgate"))
        .collect();
    let list = openai_model_list(&names, ctx.request_time.timestamp());
    local_json(ctx, &list)
}

/// `GET /v1/models/{model}`: the model object; 403 when the key may not use
/// it, 404 when no such group exists.
pub(super) fn model(mut ctx: RequestContext, snapshot: &Snapshot) -> Response {
    let name = ctx.path["/v1/models/".len()..].to_string();
    ctx.model = Some(name.clone());
    if !snapshot.models.by_name.contains_key(&name) {
        return error_response(ctx, ProxyError::ModelNotFound(name));
    }
    if let Some(key) = &ctx.key
        && !key.allows_model(&name)
    {
        return error_response(ctx, ProxyError::ModelForbidden(name));
    }
    let list = openai_model_list(&[(name.as_str(), "fastgate")], ctx.request_time.timestamp());
    let object = list["data"][0].clone();
    local_json(ctx, &object)
}

pub(super) async fn relay(ctx: RequestContext, sent: Sent) -> Response {
    let status = sent.resp.status();
    let is_sse = sent
        .resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("text/event-stream"));
    if status.is_success() && is_sse {
        return relay_stream(ctx, sent);
    }
    relay_whole(ctx, sent).await
}

fn relay_stream(ctx: RequestContext, sent: Sent) -> Response {
    let (head, body) = sent.resp.into_parts();
    let dep = &sent.deployment;
    let opts = StreamOptions {
        client_model: sent.client_model.clone(),
        strip_usage_chunk: sent.forced_usage && !sent.client_wants_usage,
        collect_merge: ctx.audit.bodies,
        max_event_bytes: MAX_EVENT_BYTES,
    };
    let gemini = sent.client_protocol == Protocol::Gemini;
    let processor = if gemini {
        gemini_stream_processor(sent.upstream_protocol, sent.gemini_framing, opts)
    } else {
        stream_processor(sent.upstream_protocol, sent.client_protocol, opts)
    };
    // Without `?alt=sse` a Gemini client gets one JSON array, as Google sends it.
    let content_type = if gemini && sent.gemini_framing == GeminiFraming::JsonArray {
        HeaderValue::from_static("application/json")
    } else {
        HeaderValue::from_static("text/event-stream")
    };
    let outcome = Outcome {
        status: head.status.as_u16(),
        ttfb: Some(ctx.started.elapsed()),
        is_stream: true,
        response_headers: ctx
            .audit
            .headers
            .then(|| headers::redacted_json(&head.headers)),
        ..Outcome::default()
    };
    let mut resp_headers = client_headers(&ctx, content_type);
    resp_headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    let deadline = tokio::time::Instant::from_std(ctx.started + dep.timeout.total);
    let tracked = TrackedBody::new(body, ctx, outcome, dep.timeout.idle, deadline, None).with_llm(
        LlmStream {
            processor,
            accounting: sent.accounting,
        },
    );
    let mut resp = Response::new(Body::new(tracked));
    *resp.status_mut() = head.status;
    *resp.headers_mut() = resp_headers;
    resp
}

async fn relay_whole(ctx: RequestContext, sent: Sent) -> Response {
    let (head, body) = sent.resp.into_parts();
    let status = head.status;
    let upstream = sent.deployment.upstream.name.to_string();
    let limit = if status.is_success() {
        MAX_RESPONSE_BYTES
    } else {
        MAX_ERROR_BYTES
    };
    let deadline = tokio::time::Instant::from_std(ctx.started + sent.deployment.timeout.total);
    let bytes = match tokio::time::timeout_at(deadline, Limited::new(body, limit).collect()).await {
        Ok(Ok(c)) => c.to_bytes(),
        Ok(Err(e)) => {
            let reason = format!("cannot read the response: {e}");
            return error_response(ctx, ProxyError::UpstreamFailed { upstream, reason });
        }
        Err(_) => {
            let secs = sent.deployment.timeout.total.as_secs_f64();
            return error_response(ctx, ProxyError::UpstreamTimeout { upstream, secs });
        }
    };
    let ttfb = Some(ctx.started.elapsed());
    let response_headers = ctx
        .audit
        .headers
        .then(|| headers::redacted_json(&head.headers));
    if !status.is_success() {
        let out = Bytes::from(translate_error(
            sent.upstream_protocol,
            sent.client_protocol,
            status.as_u16(),
            &bytes,
        ));
        return finish_whole(
            ctx,
            status,
            out,
            ttfb,
            response_headers,
            None,
            Some(format!("upstream '{upstream}' returned {status}")),
        );
    }
    let translated = match sent.endpoint {
        Endpoint::Chat
        | Endpoint::Messages
        | Endpoint::Responses
        | Endpoint::GeminiGenerate
        | Endpoint::GeminiStream => translate_response(
            sent.upstream_protocol,
            sent.client_protocol,
            &bytes,
            &sent.client_model,
        ),
        Endpoint::GeminiEmbed | Endpoint::GeminiBatchEmbed
            if sent.upstream_protocol == Protocol::OpenAi =>
        {
            let batch = sent.endpoint == Endpoint::GeminiBatchEmbed;
            openai_embeddings_to_gemini(&bytes, batch).map(|v| {
                (
                    v.to_string().into_bytes(),
                    usage_from_response(Protocol::OpenAi, &bytes),
                )
            })
        }
        _ => Ok((
            bytes.to_vec(),
            usage_from_response(sent.upstream_protocol, &bytes),
        )),
    };
    match translated {
        Ok((out, usage)) => {
            let usage = sent
                .accounting
                .token_usage(usage, sent.upstream_protocol, &bytes);
            finish_whole(
                ctx,
                status,
                Bytes::from(out),
                ttfb,
                response_headers,
                Some(usage),
                None,
            )
        }
        Err(e) => {
            let reason = format!("unreadable response: {e}");
            error_response(ctx, ProxyError::UpstreamFailed { upstream, reason })
        }
    }
}

fn finish_whole(
    ctx: RequestContext,
    status: StatusCode,
    body: Bytes,
    ttfb: Option<std::time::Duration>,
    response_headers: Option<String>,
    usage: Option<crate::context::TokenUsage>,
    error: Option<String>,
) -> Response {
    let resp = full_response(
        &ctx,
        status,
        HeaderValue::from_static("application/json"),
        body.clone(),
    );
    let response_body = ctx
        .audit
        .bodies
        .then(|| capture_text(&body, ctx.audit.body_max_bytes));
    ctx.finish(Outcome {
        status: status.as_u16(),
        ttfb,
        response_bytes: body.len() as u64,
        response_headers,
        response_body,
        usage,
        error,
        ..Outcome::default()
    });
    resp
}
