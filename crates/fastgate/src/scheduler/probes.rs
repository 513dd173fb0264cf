//! Probes: a cheap request per kind (`GET /v1/models` and the like) sent with a
//! disabled credential of an upstream that has a `probe`. A healthy answer
//! brings the credential back before its `until`; a failing one keeps it out
//! for another interval when it was about to return.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use fastgate_config::{ProbeConfig, UpstreamKind};
use fastgate_proxy::AppState;
use fastgate_proxy::client::ClientSettings;
use fastgate_proxy::snapshot::UpstreamRuntime;
use fastgate_upstream::{CredentialHealth, CredentialState};
use http::{HeaderMap, Method, Request};
use http_body_util::Full;

/// When each credential was last probed (this instance; the lease keeps one
/// instance probing at a time).
#[derive(Default)]
pub struct ProbeState {
    last: HashMap<(Arc<str>, Arc<str>), i64>,
}

fn default_path(kind: UpstreamKind) -> Option<&'static str> {
    match kind {
        UpstreamKind::Openai | UpstreamKind::Anthropic => Some("/v1/models"),
        UpstreamKind::Gemini => Some("/v1beta/models"),
        // `api-version` is added by `target_uri`.
        UpstreamKind::Azure => Some("/openai/models"),
        // Vertex has no cheap model-free GET common to every location: give `path`.
        UpstreamKind::Http | UpstreamKind::Mock | UpstreamKind::Vertex => None,
    }
}

pub async fn run(state: &AppState, probes: &mut ProbeState) -> Result<String, String> {
    let snapshot = state.inner().snapshot.load_full();
    let reg = state.health();
    let (mut healthy, mut failing) = (0, 0);
    for up in &snapshot.upstreams {
        let Some(probe) = &up.probe else { continue };
        let Some(path) = probe.path.as_deref().or_else(|| default_path(up.kind)) else {
            continue;
        };
        for (i, cred) in up.credentials.iter().enumerate() {
            let Some(health) = up.credential_health(i) else {
                continue;
            };
            let now = reg.now_ms();
            // Probes judge what a rule or a built-in decided; a person's
            // decision (or a quota) is not overruled by a probe.
            let by = health.changed_by();
            if health.effective_state(now) != CredentialState::Disabled
                || !(by.starts_with("rule:") || by == "probe")
            {
                continue;
            }
            let key = (Arc::clone(&up.name), Arc::clone(&cred.name));
            let interval = i64::try_from(probe.interval.as_millis()).unwrap_or(i64::MAX);
            if probes.last.get(&key).is_some_and(|&t| now - t < interval) {
                continue;
            }
            probes.last.insert(key, now);
            match send(state, up, i, probe, path).await {
                Ok(()) => {
                    healthy += 1;
                    reg.set_state(
                        health,
                        CredentialState::Active,
                        &format!("returned early: probe {} {path} succeeded", probe.method),
                        None,
                        "probe",
                    );
                }
                Err(why) => {
                    failing += 1;
                    keep_out(state, health, interval, &why);
                }
            }
        }
    }
    Ok(format!(
        "{healthy} credential(s) returned early, {failing} kept out"
    ))
}

/// A failing probe: a credential about to return stays out one more interval.
fn keep_out(state: &AppState, health: &CredentialHealth, interval_ms: i64, why: &str) {
    let reg = state.health();
    let now = reg.now_ms();
    let Some(until) = health.until_ms() else {
        return;
    };
    if until - now > interval_ms {
        return;
    }
    reg.set_state(
        health,
        CredentialState::Disabled,
        &format!("kept out: probe failed ({why})"),
        Some(now + interval_ms),
        "probe",
    );
}

async fn send(
    state: &AppState,
    up: &UpstreamRuntime,
    index: usize,
    probe: &ProbeConfig,
    path: &str,
) -> Result<(), String> {
    let cred = up.credentials.get(index).ok_or("no such credential")?;
    let client = state
        .inner()
        .clients
        .get(ClientSettings {
            connect_timeout: probe.timeout,
            max_idle_per_host: 2,
            idle_timeout: Duration::from_secs(30),
        })
        .map_err(|e| e.to_string())?;
    let uri = fastgate_proxy::forward::target_uri(up, path, None).map_err(|e| e.to_string())?;
    let mut headers = fastgate_proxy::forward::outbound_headers(
        HeaderMap::new(),
        up,
        &[],
        fastgate_proxy::headers::gateway_request_id(),
    );
    fastgate_proxy::forward::insert_credential(&mut headers, cred);
    if let Some(source) = &cred.vertex {
        // A Vertex credential's header is a placeholder: probe with a real token.
        let token = tokio::time::timeout(probe.timeout, source.header())
            .await
            .map_err(|_| format!("no access token within {:?}", probe.timeout))?
            .map_err(|e| e.to_string())?;
        headers.insert(http::header::AUTHORIZATION, token);
    }
    let method = Method::from_bytes(probe.method.as_bytes()).map_err(|e| e.to_string())?;
    let mut req = Request::new(Full::new(Bytes::new()));
    *req.method_mut() = method;
    *req.uri_mut() = uri;
    *req.headers_mut() = headers;
    let resp = tokio::time::timeout(probe.timeout, client.send(req))
        .await
        .map_err(|_| format!("no answer within {:?}", probe.timeout))?
        .map_err(|e| format!("request failed: {e}"))?;
    let status = resp.status().as_u16();
    let ok = if probe.expect_status.is_empty() {
        (200..300).contains(&status)
    } else {
        probe.expect_status.contains(&status)
    };
    if ok {
        Ok(())
    } else {
        Err(format!("status {status}"))
    }
}
