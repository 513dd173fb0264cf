//! `/admin/api/routes/test` (what a request would do; nothing is sent) and
//! `/admin/api/routes/{name}/probe` (one real request through the route, to see
//! that its upstream answers). Both build the upstream request with
//! `fastgate_proxy::dry_run::prepare`, the proxy's own rules; the probe sends it
//! with the real credential, and neither ever shows a secret value.

use std::time::{Duration, Instant};

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use fastgate_proxy::AppState;
use fastgate_proxy::dry_run::{
    CredentialPick, DryRunHeader, DryRunReport, DryRunRequest, Prepared, PreparedRequest, dry_run,
    prepare,
};
use fastgate_proxy::headers::is_secret_header;
use fastgate_proxy::retry::AttemptError;
use fastgate_proxy::snapshot::Snapshot;
use http_body_util::{BodyExt, Full};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::error::AdminError;
use crate::redact::REDACTED;
use crate::validate::{self, Body, MAX_NAME};

/// Longest a probe may take, whatever the route's own timeout.
const PROBE_MAX: Duration = Duration::from_secs(30);
/// How much of the upstream's response body a probe shows.
const PREVIEW_BYTES: usize = 2048;

/// `POST /admin/api/routes/test`: the dry run's report.
#[utoipa::path(
    operation_id = "route_test_test",
    post,
    path = "/admin/api/routes/test",
    tag = "routes",
    summary = "Explain a request (dry run)",
    request_body = fastgate_proxy::dry_run::DryRunRequest,
    responses(
        (status = 200, description = "Where the request would go and what would be sent, secrets redacted; nothing is sent.", body = fastgate_proxy::dry_run::DryRunReport),
        (status = 400, description = "Invalid input; the message names the field.", body = crate::schemas::ErrorBody),
    )
)]
pub async fn test(
    State(state): State<AppState>,
    Body(req): Body<DryRunRequest>,
) -> Result<Json<DryRunReport>, AdminError> {
    let snap = state.inner().snapshot.load_full();
    dry_run(&snap, &req)
        .map(Json)
        .map_err(|e| AdminError::BadRequest(e.to_string()))
}

/// What a probe sends; every field is optional (defaults from the route).
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct ProbeInput {
    pub method: Option<String>,
    pub path: Option<String>,
    pub headers: std::collections::BTreeMap<String, String>,
    pub body: Option<Value>,
}

/// `POST /admin/api/routes/{name}/probe`: one real request through the route.
/// 200 whenever the probe ran, even if the upstream failed (`error` says how).
#[utoipa::path(
    operation_id = "route_test_probe",
    post,
    path = "/admin/api/routes/{name}/probe",
    tag = "routes",
    summary = "Send one real request through a route",
    description = "Every field is optional (defaults from the route); the body may be empty.",
    params(("name" = String, Path, description = "Route name.", example = "demo")),
    request_body = Option<ProbeInput>,
    responses(
        (status = 200, description = "What the upstream answered (or `error`).", body = crate::schemas::ProbeResult),
        (status = 400, description = "Invalid input; the message names the field.", body = crate::schemas::ErrorBody),
        (status = 404, description = "No such route.", body = crate::schemas::ErrorBody),
        (status = 409, description = "The route is switched off.", body = crate::schemas::ErrorBody),
    )
)]
pub async fn probe(
    State(state): State<AppState>,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, AdminError> {
    validate::name("name", &name, MAX_NAME)?;
    let input: ProbeInput = validate::optional_json(&body)?;
    let snap = state.inner().snapshot.load_full();
    let req = probe_request(&snap, &name, input)?;
    let prepared = match prepare(
        &snap,
        &req,
        CredentialPick::Next(state.health().pick_context()),
    )
    .map_err(|e| AdminError::BadRequest(e.to_string()))?
    {
        Prepared::Matched(p) => p,
        Prepared::Unmatched(report) => {
            return Err(AdminError::BadRequest(format!(
                "{} {} does not reach route '{name}': {}",
                report.method,
                report.normalized_path,
                report.reason.unwrap_or_default()
            )));
        }
    };
    if *prepared.route.name != *name {
        return Err(AdminError::BadRequest(format!(
            "{} {} matches route '{}', not '{name}': give a path route '{name}' takes",
            prepared.method, prepared.normalized_path, prepared.route.name
        )));
    }
    let answer = send(prepared).await;
    Ok(Json(answer))
}

/// The request a probe sends: the input, with the method and path defaulting to
/// the route's first method (or GET) and its pattern made concrete.
fn probe_request(
    snap: &Snapshot,
    name: &str,
    input: ProbeInput,
) -> Result<DryRunRequest, AdminError> {
    let summary = snap.route_names.iter().find(|r| r.name == name);
    match summary {
        Some(r) if !r.active => {
            return Err(AdminError::Conflict(format!(
                "route '{name}' is inactive: activate it to probe it"
            )));
        }
        // The generic passthrough routes have a runtime but no summary.
        None if !snap.route_rt.iter().flatten().any(|r| &*r.name == name) => {
            return Err(AdminError::NotFound(format!("route '{name}'")));
        }
        _ => {}
    }
    let method = input
        .method
        .or_else(|| {
            summary
                .and_then(|r| r.methods.first())
                .filter(|m| !m.eq_ignore_ascii_case("ANY"))
                .cloned()
        })
        .unwrap_or_else(|| "GET".to_string());
    let path = match (input.path, summary) {
        (Some(p), _) => p,
        (None, Some(r)) => probe_path(&r.path),
        (None, None) => {
            return Err(AdminError::BadRequest(format!(
                "route '{name}' has no default probe path: give a path"
            )));
        }
    };
    Ok(DryRunRequest {
        method,
        path,
        headers: input.headers,
        body: input.body,
    })
}

/// A concrete path for a route pattern: `**` dropped, `{param}` and `*` become
/// `probe`, `*.ext` becomes `probe.ext` ("/v1/**" -> "/v1/").
fn probe_path(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len() + 8);
    for (i, seg) in pattern.split('/').enumerate() {
        if i > 0 {
            out.push('/');
        }
        match seg {
            "**" => {}
            "*" => out.push_str("probe"),
            s if s.starts_with('{') && s.ends_with('}') => out.push_str("probe"),
            s if s.starts_with("*.") => {
                out.push_str("probe");
                out.push_str(s.trim_start_matches('*'));
            }
            s => out.push_str(s),
        }
    }
    out
}

/// What came back from the upstream (or why nothing did).
#[derive(Default)]
struct Outcome {
    status: Option<u16>,
    ttfb: Option<Duration>,
    headers: Vec<DryRunHeader>,
    preview: Option<String>,
    error: Option<String>,
}

/// Send the request on the route's pooled client, within min(route total, 30 s)
/// (the first byte within the route's first-byte timeout), and read at most
/// [`PREVIEW_BYTES`] of the answer.
async fn send(p: PreparedRequest<'_>) -> Value {
    let route = p.route;
    let report = p.report();
    let secrets = secret_texts(&p);
    let total = route.timeout.total.min(PROBE_MAX);
    let first_byte = route.timeout.first_byte.min(total);
    let started = Instant::now();
    let deadline = tokio::time::Instant::now() + total;

    let mut req = http::Request::new(Full::new(p.body));
    *req.method_mut() = p.method;
    *req.uri_mut() = p.uri;
    *req.headers_mut() = p.headers;

    let upstream = &route.upstream.name;
    let mut out = Outcome::default();
    match tokio::time::timeout(first_byte, route.client.send(req)).await {
        Err(_) => {
            out.error = Some(format!(
                "no response from upstream '{upstream}' within {first_byte:?}"
            ))
        }
        Ok(Err(e)) => {
            out.error = Some(match AttemptError::from_client(&e) {
                AttemptError::Connect(reason) => {
                    format!("cannot connect to upstream '{upstream}': {reason}")
                }
                other => format!("upstream '{upstream}' failed: {other}"),
            });
        }
        Ok(Ok(resp)) => {
            out.ttfb = Some(started.elapsed());
            out.status = Some(resp.status().as_u16());
            out.headers = response_headers(resp.headers(), &secrets);
            let (preview, error) = preview(resp.into_body(), deadline).await;
            out.preview = Some(scrub(preview, &secrets));
            out.error = error;
        }
    }
    tracing::info!(route = %route.name, status = ?out.status, error = ?out.error, "route probe");
    json!({
        "route": report.route,
        "upstream": report.upstream,
        "method": report.method,
        "target_url": report.target_url,
        "status": out.status,
        "duration_ms": millis(started.elapsed()),
        "ttfb_ms": out.ttfb.map(millis),
        "response_headers": out.headers,
        "body_preview": out.preview,
        "error": out.error,
    })
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Secret text that may come back in an answer (an upstream that echoes requests):
/// the credential header value and the key after its scheme (`Bearer `), and the
/// values the configuration adds (headers, string body fields), longest first.
fn secret_texts(p: &PreparedRequest<'_>) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(value) = p.credential.and_then(|c| c.header_value.to_str().ok()) {
        out.push(value.to_string());
        if let Some((_, key)) = value.split_once(' ') {
            out.push(key.trim().to_string());
        }
    }
    let route = p.route;
    for (_, value) in route.upstream.headers.iter().chain(&route.add_headers) {
        if let Ok(v) = value.to_str() {
            out.push(v.to_string());
        }
    }
    for value in route.add_body_fields.iter().flat_map(|f| f.values()) {
        if let Value::String(v) = value {
            out.push(v.clone());
        }
    }
    // Too short to be told apart from ordinary text: not looked for.
    out.retain(|s| s.len() >= 8);
    out.sort_by_key(|s| std::cmp::Reverse(s.len()));
    out
}

/// `text` with every secret text replaced by `[redacted]`, and a trailing
/// start of one (cut by the preview limit) removed.
fn scrub(mut text: String, secrets: &[String]) -> String {
    for secret in secrets {
        if text.contains(secret.as_str()) {
            text = text.replace(secret.as_str(), REDACTED);
        }
        let longest = (4..secret.len())
            .rev()
            .find(|&n| secret.get(..n).is_some_and(|head| text.ends_with(head)));
        if let Some(n) = longest {
            text.truncate(text.len() - n);
        }
    }
    text
}

/// Response headers for display: secret ones redacted, secret texts scrubbed.
fn response_headers(headers: &http::HeaderMap, secrets: &[String]) -> Vec<DryRunHeader> {
    headers
        .iter()
        .map(|(name, value)| DryRunHeader {
            name: name.as_str().to_string(),
            value: if is_secret_header(name.as_str()) || value.is_sensitive() {
                REDACTED.to_string()
            } else {
                scrub(
                    String::from_utf8_lossy(value.as_bytes()).into_owned(),
                    secrets,
                )
            },
        })
        .collect()
}

/// The first [`PREVIEW_BYTES`] of `body` as lossy UTF-8 (reading stops there),
/// and the error that cut it short, if any.
async fn preview<B>(mut body: B, deadline: tokio::time::Instant) -> (String, Option<String>)
where
    B: http_body::Body<Data = Bytes> + Unpin,
    B::Error: std::fmt::Display,
{
    let mut buf: Vec<u8> = Vec::with_capacity(PREVIEW_BYTES);
    let mut error = None;
    while buf.len() < PREVIEW_BYTES {
        match tokio::time::timeout_at(deadline, body.frame()).await {
            Err(_) => {
                error = Some("the response body did not arrive in time".to_string());
                break;
            }
            Ok(None) => break,
            Ok(Some(Err(e))) => {
                error = Some(format!("reading the response body failed: {e}"));
                break;
            }
            Ok(Some(Ok(frame))) => {
                if let Ok(data) = frame.into_data() {
                    let room = PREVIEW_BYTES - buf.len();
                    buf.extend_from_slice(&data[..data.len().min(room)]);
                }
            }
        }
    }
    (String::from_utf8_lossy(&buf).into_owned(), error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrubs_echoed_credentials() {
        let secrets = vec![
            "Bearer sk-secret-123".to_string(),
            "sk-secret-123".to_string(),
        ];
        let out = scrub(
            "{\"authorization\":\"Bearer sk-secret-123\",\"k\":\"sk-secret-123\"}".into(),
            &secrets,
        );
        assert!(!out.contains("sk-secret"), "{out}");
        assert_eq!(out.matches(REDACTED).count(), 2, "{out}");
        // Cut by the preview limit inside the key.
        assert_eq!(scrub("abc sk-secr".into(), &secrets), "abc ");
        assert_eq!(scrub("plain sk-".into(), &secrets), "plain sk-");
    }

    #[test]
    fn probe_paths() {
        assert_eq!(probe_path("/v1/**"), "/v1/");
        assert_eq!(probe_path("/**"), "/");
        assert_eq!(probe_path("/user/{id}/x"), "/user/probe/x");
        assert_eq!(probe_path("/files/*.json"), "/files/probe.json");
        assert_eq!(probe_path("/a/*/b/"), "/a/probe/b/");
        assert_eq!(probe_path("/exact"), "/exact");
    }
}
