//! Forwarding: build the upstream request (credential injected, transforms
//! applied), send it on the pooled client with the first-byte timeout, and retry
//! with backoff while nothing has reached the client yet, where that is safe
//! (see `retry`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, Response, Uri};
use http_body_util::Full;
use rand::Rng;

use crate::client::{ResponseBody, UpstreamClient};
use crate::context::RequestContext;
use crate::error::ProxyError;
use crate::headers::ANTHROPIC_VERSION;
use crate::metrics as m;
use crate::retry::{AttemptError, RetryPolicy};
use crate::snapshot::{CredentialRuntime, RouteRuntime, UpstreamRuntime};
use crate::upstream_body::UpstreamBody;
use fastgate_config::{TimeoutConfig, UpstreamKind};
use fastgate_upstream::CredentialHealth;
use fastgate_upstream::rules::Outcome;

/// Where and how to send: the upstream, its pooled client, extra headers,
/// timeouts and retries (from a route, or from a model deployment).
pub struct Target<'a> {
    pub upstream: &'a UpstreamRuntime,
    pub client: &'a UpstreamClient,
    pub add_headers: &'a [(HeaderName, HeaderValue)],
    pub timeout: TimeoutConfig,
    pub retries: u32,
    pub retry: RetryPolicy,
}

impl<'a> Target<'a> {
    pub fn of_route(route: &'a RouteRuntime, method: &Method) -> Self {
        Self {
            upstream: &route.upstream,
            client: &route.client,
            add_headers: &route.add_headers,
            timeout: route.timeout,
            retries: route.retries,
            retry: RetryPolicy::for_route(method, route.retry_on),
        }
    }
}

pub struct ForwardPlan<'a> {
    pub target: Target<'a>,
    pub method: Method,
    pub upstream_path: String,
    pub query: Option<String>,
    /// Client headers already stripped of hop-by-hop and credential headers.
    pub headers: HeaderMap,
    pub body: Bytes,
    pub deadline: tokio::time::Instant,
}

const AZURE_API_KEY: HeaderName = HeaderName::from_static("api-key");

/// The upstream URL: base URL's scheme, authority and path, then `path` and `query`;
/// for an `azure` upstream, its `api-version` when the request carries none.
pub fn target_uri(
    up: &UpstreamRuntime,
    path: &str,
    query: Option<&str>,
) -> Result<Uri, ProxyError> {
    let query = query.filter(|q| !q.is_empty());
    let api_version = missing_api_version(up, path, query);
    let mut pq = String::with_capacity(
        up.base_path.len()
            + path.len()
            + query.map_or(0, |q| q.len() + 1)
            + api_version.map_or(0, |v| v.len() + 13),
    );
    pq.push_str(&up.base_path);
    pq.push_str(path);
    if let Some(q) = query {
        pq.push('?');
        pq.push_str(q);
    }
    if let Some(v) = api_version {
        pq.push(if pq.contains('?') { '&' } else { '?' });
        pq.push_str("api-version=");
        pq.push_str(v);
    }
    Uri::builder()
        .scheme(up.scheme.clone())
        .authority(up.authority.clone())
        .path_and_query(pq)
        .build()
        .map_err(|e| ProxyError::Internal(format!("cannot build upstream URI: {e}")))
}

/// The `api-version` an `azure` request must get: none when the client's query
/// (or a query in the path) already names one, and none for Azure's v1 API
/// (`/openai/v1/…`), which takes only `v1`/`preview` there (and needs none).
fn missing_api_version<'a>(
    up: &'a UpstreamRuntime,
    path: &str,
    query: Option<&str>,
) -> Option<&'a str> {
    let version = up.api_version.as_deref()?;
    let (bare, path_query) = match path.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (path, None),
    };
    let is_v1 = |p: &str| p == "/openai/v1" || p.starts_with("/openai/v1/");
    let v1 = if up.base_path.is_empty() {
        is_v1(bare)
    } else {
        is_v1(&format!("{}{bare}", up.base_path))
    };
    if v1 {
        return None;
    }
    let named = query
        .into_iter()
        .chain(path_query)
        .flat_map(|q| q.split('&'))
        .any(|pair| {
            pair.split('=')
                .next()
                .is_some_and(|k| k.eq_ignore_ascii_case("api-version"))
        });
    (!named).then_some(version)
}

/// The headers every attempt sends, but for the credential: `client` (already
/// filtered by [`crate::headers::upstream_headers`]), then the upstream's `headers`
/// and the route's `add_headers` (configuration wins over the client; an `azure`
/// upstream never gets the client's own `api-key`),
/// `anthropic-version` when an Anthropic upstream gets none, and `x-request-id`.
/// The proxy and the dry run (`crate::dry_run`) both build them here.
pub fn outbound_headers(
    client: HeaderMap,
    up: &UpstreamRuntime,
    add_headers: &[(HeaderName, HeaderValue)],
    request_id: HeaderValue,
) -> HeaderMap {
    let mut headers = client;
    if up.kind == UpstreamKind::Azure {
        // Azure's own key header: whatever a client put there is never forwarded.
        headers.remove(&AZURE_API_KEY);
    }
    for (name, value) in up.headers.iter().chain(add_headers.iter()) {
        headers.insert(name.clone(), value.clone());
    }
    if up.kind == UpstreamKind::Anthropic && !headers.contains_key(&ANTHROPIC_VERSION) {
        headers.insert(ANTHROPIC_VERSION, HeaderValue::from_static("2023-06-01"));
    }
    headers.insert(crate::headers::X_REQUEST_ID, request_id);
    headers
}

/// Add the provider credential (last, so nothing the client or the config sent
/// under the same name survives).
pub fn insert_credential(headers: &mut HeaderMap, cred: &CredentialRuntime) {
    headers.insert(cred.header_name.clone(), cred.header_value.clone());
}

fn backoff(attempt: u32) -> Duration {
    let base = 25u64.saturating_mul(1 << attempt.min(5)).min(1000);
    let jitter = rand::rng().random_range(0..=base / 2);
    Duration::from_millis(base + jitter)
}

/// The credential an attempt uses: its index, and its health counted in flight.
struct Attempting {
    index: usize,
    health: Arc<CredentialHealth>,
}

/// A `vertex` credential's token for this attempt, in place of its placeholder
/// (cached; the token endpoint is called about once an hour per key).
async fn insert_vertex_token(
    ctx: &RequestContext,
    up: &UpstreamRuntime,
    headers: &mut HeaderMap,
) -> Result<(), ProxyError> {
    let Some(name) = &ctx.credential else {
        return Ok(());
    };
    let Some(source) = up
        .credentials
        .iter()
        .find(|c| &c.name == name)
        .and_then(|c| c.vertex.as_ref())
    else {
        return Ok(());
    };
    match source.header().await {
        Ok(value) => {
            headers.insert(http::header::AUTHORIZATION, value);
            Ok(())
        }
        Err(e) => {
            tracing::warn!(upstream = %up.name, credential = %name, error = %e, "vertex access token unavailable");
            metrics::counter!(m::UPSTREAM_ERRORS, "upstream" => metrics::SharedString::from(up.name.clone())).increment(1);
            Err(ProxyError::UpstreamToken {
                upstream: up.name.to_string(),
                credential: name.to_string(),
                reason: e.to_string(),
            })
        }
    }
}

/// Choose the credential for the next attempt and put it in `headers`: one not
/// tried yet if there is one, else any active one (a plain retry may reuse it).
fn choose_credential(
    ctx: &mut RequestContext,
    up: &UpstreamRuntime,
    headers: &mut HeaderMap,
    tried: &[usize],
) -> Result<Option<Attempting>, ProxyError> {
    if up.credentials.is_empty() {
        return Ok(None);
    }
    let registry = Arc::clone(ctx.state.health());
    let cx = registry.pick_context();
    let picked = up.pick_credential(&cx, tried).or_else(|| {
        (!tried.is_empty())
            .then(|| up.pick_credential(&cx, &[]))
            .flatten()
    });
    let Some((index, cred)) = picked else {
        let retry_after_secs = up.next_available_ms(cx.now_ms).map(|at| {
            let wait_ms = u64::try_from(at.saturating_sub(cx.now_ms)).unwrap_or(0);
            wait_ms.div_ceil(1000).max(1)
        });
        metrics::counter!(m::NO_CREDENTIAL, "upstream" => metrics::SharedString::from(up.name.clone())).increment(1);
        return Err(ProxyError::NoCredential {
            upstream: up.name.to_string(),
            retry_after_secs,
        });
    };
    insert_credential(headers, cred);
    ctx.credential = Some(cred.name.clone());
    let Some(health) = up.credential_health(index).cloned() else {
        return Ok(None);
    };
    registry.check_quota(&health);
    ctx.credential_flight = Some(health.begin());
    Ok(Some(Attempting { index, health }))
}

/// Tell the credential's health how the attempt went; error answers are read
/// ahead (bounded) when a rule or a built-in needs their body.
async fn observe(
    ctx: &RequestContext,
    up: &UpstreamRuntime,
    using: &Attempting,
    result: Result<Response<ResponseBody>, AttemptError>,
    latency: Duration,
    idle: Duration,
) -> Result<Response<UpstreamBody>, AttemptError> {
    let registry = ctx.state.health();
    let rules = &up.rules;
    match result {
        Ok(resp) => {
            let status = resp.status().as_u16();
            let read_body = status >= 400
                && (rules.needs_body()
                    || (rules.builtin_rules() && matches!(status, 401 | 403 | 429)));
            let (parts, body) = resp.into_parts();
            let (seen, body) = if read_body {
                let (seen, body) = UpstreamBody::peek(body, idle).await;
                (Some(seen), body)
            } else {
                (None, UpstreamBody::new(body))
            };
            let outcome = Outcome {
                upstream: &up.name,
                credential: using.health.credential(),
                status: Some(status),
                headers: Some(&parts.headers),
                body: seen.as_deref(),
                latency,
                error: None,
            };
            registry.observe(rules, &using.health, &outcome);
            Ok(Response::from_parts(parts, body))
        }
        Err(e) => {
            let text = e.to_string();
            let outcome = Outcome {
                upstream: &up.name,
                credential: using.health.credential(),
                status: None,
                headers: None,
                body: None,
                latency,
                error: Some(&text),
            };
            registry.observe(rules, &using.health, &outcome);
            Err(e)
        }
    }
}

/// A provider refused this credential (auth, payment or quota): the request
/// may go at once to another active credential of the same upstream, for any
/// method, since the provider did not act on it.
fn refused_by_provider(status: http::StatusCode) -> bool {
    matches!(status.as_u16(), 401 | 402 | 403 | 429)
}

/// After a provider's refusal of the credential (401/402/403/429), should the
/// request go at once to another one? Yes when a usable one is left that this
/// request has not tried (the refused one is added to `tried`).
fn switch_credential(
    ctx: &RequestContext,
    up: &UpstreamRuntime,
    result: &Result<Response<UpstreamBody>, AttemptError>,
    using: Option<&Attempting>,
    tried: &mut Vec<usize>,
) -> bool {
    let (Ok(resp), Some(using)) = (result, using) else {
        return false;
    };
    if !refused_by_provider(resp.status()) {
        return false;
    }
    tried.push(using.index);
    let cx = ctx.state.health().pick_context();
    if !up.credential_pool.any_usable(&cx, tried) {
        return false;
    }
    tracing::debug!(
        status = resp.status().as_u16(),
        credential = %using.health.credential(),
        "provider refused the credential: trying another"
    );
    metrics::counter!(m::CREDENTIAL_SWITCHES, "upstream" => metrics::SharedString::from(up.name.clone())).increment(1);
    true
}

pub async fn forward(
    ctx: &mut RequestContext,
    plan: ForwardPlan<'_>,
) -> Result<Response<UpstreamBody>, ProxyError> {
    let route = &plan.target;
    let up = route.upstream;
    let uri = target_uri(up, &plan.upstream_path, plan.query.as_deref())?;
    // For the audit record: the URL without the client's query (one exact-size
    // allocation instead of a formatting pass).
    let parts = [
        up.scheme.as_str(),
        "://",
        up.authority.as_str(),
        &up.base_path,
        &plan.upstream_path,
    ];
    ctx.target_url = Some(parts.concat());

    let base_headers =
        outbound_headers(plan.headers, up, route.add_headers, ctx.request_id.clone());
    let switch_on_refusal = ctx.state.health().settings().retry_other_credential;

    let mut attempt = 0u32;
    let mut tried: Vec<usize> = Vec::new();
    loop {
        let mut headers = base_headers.clone();
        let using = choose_credential(ctx, up, &mut headers, &tried)?;
        if up.kind == UpstreamKind::Vertex
            && let Err(e) = insert_vertex_token(ctx, up, &mut headers).await
        {
            // Nothing was sent: another credential of this upstream may have a token.
            if let Some(using) = &using {
                tried.push(using.index);
                let cx = ctx.state.health().pick_context();
                if up.credential_pool.any_usable(&cx, &tried) {
                    continue;
                }
            }
            return Err(e);
        }
        let mut req = Request::new(Full::new(plan.body.clone()));
        *req.method_mut() = plan.method.clone();
        *req.uri_mut() = uri.clone();
        *req.headers_mut() = headers;

        let now = tokio::time::Instant::now();
        let wait = route
            .timeout
            .first_byte
            .min(plan.deadline.saturating_duration_since(now));
        let sent_at = Instant::now();
        let result = match tokio::time::timeout(wait, route.client.send(req)).await {
            Ok(Ok(resp)) => Ok(resp),
            Ok(Err(e)) => Err(AttemptError::from_client(&e)),
            Err(_) => Err(AttemptError::Timeout(wait)),
        };
        let latency = sent_at.elapsed();
        ctx.upstream_wait += latency;
        let result = match &using {
            Some(using) => observe(ctx, up, using, result, latency, route.timeout.idle).await,
            None => result.map(|r| r.map(UpstreamBody::new)),
        };
        if switch_on_refusal && switch_credential(ctx, up, &result, using.as_ref(), &mut tried) {
            continue;
        }
        let delay = backoff(attempt);
        let can_retry =
            attempt < route.retries && tokio::time::Instant::now() + delay < plan.deadline;
        match result {
            Ok(resp) if can_retry && route.retry.retries_status(resp.status()) => {
                tracing::debug!(
                    status = resp.status().as_u16(),
                    attempt,
                    "retrying upstream status"
                );
                if let Some(using) = &using {
                    tried.push(using.index);
                }
            }
            Ok(resp) => return Ok(resp),
            Err(e) if can_retry && e.is_retryable(route.retry) => {
                tracing::debug!(error = %e, attempt, "retrying upstream error");
                if let Some(using) = &using {
                    tried.push(using.index);
                }
            }
            Err(e) => {
                metrics::counter!(m::UPSTREAM_ERRORS, "upstream" => metrics::SharedString::from(up.name.clone())).increment(1);
                return Err(e.into_proxy_error(&up.name));
            }
        }
        metrics::counter!(m::UPSTREAM_RETRIES, "upstream" => metrics::SharedString::from(up.name.clone())).increment(1);
        tokio::time::sleep(delay).await;
        attempt += 1;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::client::ClientCache;
    use crate::snapshot::Snapshot;

    const YAML: &str = r#"
upstreams:
  - { name: az, kind: azure, base_url: "https://res.example", api_version: "2024-10-21",
      credentials: [ { name: k1, key: "azk" } ] }
  - { name: apim, kind: azure, base_url: "https://apim.example/aoai/", api_version: "2025-04-01-preview" }
  - { name: oai, kind: openai, base_url: "https://api.example" }
"#;

    fn snapshot() -> Snapshot {
        let cfg = fastgate_config::load_str(YAML, &|_| None).unwrap();
        Snapshot::build(&cfg, &ClientCache::default()).unwrap()
    }

    fn uri(s: &Snapshot, up: usize, path: &str, query: Option<&str>) -> String {
        target_uri(&s.upstreams[up], path, query)
            .unwrap()
            .to_string()
    }

    #[test]
    fn azure_gets_its_api_version_once() {
        let s = snapshot();
        let chat = "/openai/deployments/d/chat/completions";
        assert_eq!(
            uri(&s, 0, chat, None),
            format!("https://res.example{chat}?api-version=2024-10-21")
        );
        assert_eq!(
            uri(&s, 0, chat, Some("")),
            format!("https://res.example{chat}?api-version=2024-10-21")
        );
        assert_eq!(
            uri(&s, 0, chat, Some("x=1")),
            format!("https://res.example{chat}?x=1&api-version=2024-10-21")
        );
        assert_eq!(
            uri(&s, 0, chat, Some("x=1&api-version=2023-05-15")),
            format!("https://res.example{chat}?x=1&api-version=2023-05-15")
        );
        assert_eq!(
            uri(&s, 0, "/openai/models?api-version=2024-02-01", None),
            "https://res.example/openai/models?api-version=2024-02-01"
        );
        assert_eq!(
            uri(&s, 0, "/openai/v1/responses", None),
            "https://res.example/openai/v1/responses"
        );
        assert_eq!(
            uri(&s, 1, chat, None),
            format!("https://apim.example/aoai{chat}?api-version=2025-04-01-preview")
        );
        assert_eq!(
            uri(&s, 2, "/v1/chat/completions", None),
            "https://api.example/v1/chat/completions"
        );
    }

    #[test]
    fn azure_drops_the_clients_api_key() {
        let s = snapshot();
        let mut client = HeaderMap::new();
        client.insert("api-key", HeaderValue::from_static("client-key"));
        client.insert("x-keep", HeaderValue::from_static("1"));
        let rid = HeaderValue::from_static("rid");
        let h = outbound_headers(client.clone(), &s.upstreams[0], &[], rid.clone());
        assert!(h.get("api-key").is_none());
        assert_eq!(h.get("x-keep").unwrap(), "1");
        let mut h = h;
        insert_credential(&mut h, &s.upstreams[0].credentials[0]);
        assert_eq!(h.get("api-key").unwrap(), "azk");
        // Other kinds are left as they were.
        let h = outbound_headers(client, &s.upstreams[2], &[], rid);
        assert_eq!(h.get("api-key").unwrap(), "client-key");
    }
}
