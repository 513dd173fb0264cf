//! What a request would do, with no traffic sent: the route it takes, the URL,
//! the headers and the body the upstream would get. The request path's own
//! functions build them (`headers::upstream_headers`, `forward::outbound_headers`,
//! `forward::insert_credential`, `forward::target_uri`, the handler's
//! `add_fields`), so the answer cannot drift from what the proxy does.
//!
//! [`prepare`] builds the real request (credential included) for the admin probe;
//! [`dry_run`] shows it with everything that may be a secret redacted.

use std::collections::BTreeMap;

use bytes::Bytes;
use fastgate_routing::{BodyView, MatchOutcome, PathPattern, is_reserved_path, normalize_path};
use http::header::{HeaderMap, HeaderName, HeaderValue};
use http::{Method, Uri};
use serde_json::Value;

use crate::error::ProxyError;
use crate::forward::{insert_credential, outbound_headers, target_uri};
use crate::headers::{self, find_underscore_header, redact_query, strip_key_param};
use crate::snapshot::{CredentialRuntime, RouteRuntime, Snapshot, UpstreamRuntime};

/// What the admin API shows instead of a secret value.
const REDACTED: &str = "[redacted]";

fn get() -> String {
    "GET".to_string()
}

/// A request to explain: method, path (with an optional query), headers, body.
#[derive(Debug, Clone, Default, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DryRunRequest {
    #[serde(default = "get")]
    pub method: String,
    /// May include `?query`.
    pub path: String,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// JSON body (any JSON value; a JSON string is sent as that raw text).
    #[serde(default)]
    pub body: Option<Value>,
}

/// Where the request would go and what would be sent, secrets redacted.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct DryRunReport {
    pub matched: bool,
    pub normalized_path: String,
    pub route: Option<String>,
    pub upstream: Option<String>,
    pub method: String,
    /// Full URL including the query (secret query parameters redacted).
    pub target_url: Option<String>,
    /// Exactly what would be sent upstream, in order.
    pub headers: Vec<DryRunHeader>,
    /// After `add_body_fields` (added values redacted); raw text as a JSON string.
    pub body: Option<Value>,
    /// Name of the provider key that would be injected.
    pub credential: Option<String>,
    /// Why nothing matched.
    pub reason: Option<String>,
}

#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct DryRunHeader {
    pub name: String,
    pub value: String,
}

#[derive(Debug, thiserror::Error)]
pub enum DryRunError {
    #[error("method: '{0}' is not a valid HTTP method")]
    BadMethod(String),
    #[error("path: {0}")]
    BadPath(String),
    #[error("headers: '{0}' is not a valid header name")]
    BadHeaderName(String),
    #[error("headers.{0}: not a valid header value")]
    BadHeaderValue(String),
    #[error("headers: {0}")]
    RefusedHeader(String),
    #[error("body: {0}")]
    BadBody(String),
    #[error("cannot build the upstream request: {0}")]
    Target(String),
}

/// Which credential [`prepare`] puts in: the next in the rotation, moving it
/// (a real request), or the next without moving it (an explanation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialPick {
    /// Claimed like a request's (counts against the credential's daily quota).
    Next(fastgate_upstream::PickContext),
    Peek,
}

/// The upstream request a matched route would send, credential included.
pub struct PreparedRequest<'s> {
    pub route: &'s RouteRuntime,
    pub normalized_path: String,
    pub method: Method,
    pub uri: Uri,
    /// What goes upstream, real credential included: never show it as is.
    pub headers: HeaderMap,
    pub body: Bytes,
    pub credential: Option<&'s CredentialRuntime>,
    /// The body for a report: the client's, or after `add_body_fields` with the
    /// added values redacted.
    report_body: Option<Value>,
}

/// The outcome of [`prepare`].
pub enum Prepared<'s> {
    Matched(PreparedRequest<'s>),
    /// No route takes the request; the report says why.
    Unmatched(DryRunReport),
}

/// What a request would do: the route, URL, headers and body, secrets redacted.
/// Nothing is sent and the credential rotation does not move.
pub fn dry_run(snapshot: &Snapshot, req: &DryRunRequest) -> Result<DryRunReport, DryRunError> {
    Ok(match prepare(snapshot, req, CredentialPick::Peek)? {
        Prepared::Matched(p) => p.report(),
        Prepared::Unmatched(report) => report,
    })
}

/// The client's request as the gateway would parse it.
struct ClientRequest {
    method: Method,
    path: String,
    query: Option<String>,
    headers: HeaderMap,
    /// The bytes the client sends.
    raw: Bytes,
    /// The body as JSON, when it is JSON.
    json: Option<Value>,
}

fn parse_request(req: &DryRunRequest) -> Result<ClientRequest, DryRunError> {
    let method = Method::from_bytes(req.method.trim().to_ascii_uppercase().as_bytes())
        .map_err(|_| DryRunError::BadMethod(req.method.clone()))?;
    let (raw_path, query) = match req.path.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (req.path.as_str(), None),
    };
    let path = normalize_path(raw_path).map_err(|e| DryRunError::BadPath(e.to_string()))?;
    let mut headers = HeaderMap::with_capacity(req.headers.len());
    for (name, value) in &req.headers {
        let n = HeaderName::from_bytes(name.trim().as_bytes())
            .map_err(|_| DryRunError::BadHeaderName(name.clone()))?;
        let v = HeaderValue::from_str(value.trim())
            .map_err(|_| DryRunError::BadHeaderValue(name.clone()))?;
        headers.append(n, v);
    }
    if let Some(name) = find_underscore_header(&headers) {
        return Err(DryRunError::RefusedHeader(format!(
            "the gateway refuses header names with '_': {name}"
        )));
    }
    let (raw, json) = match &req.body {
        None => (Bytes::new(), None),
        Some(Value::String(text)) => (
            Bytes::from(text.clone().into_bytes()),
            serde_json::from_str(text).ok(),
        ),
        Some(v) => (
            serde_json::to_vec(v)
                .map(Bytes::from)
                .map_err(|e| DryRunError::BadBody(e.to_string()))?,
            Some(v.clone()),
        ),
    };
    Ok(ClientRequest {
        method,
        path,
        query: query.and_then(strip_key_param),
        headers,
        raw,
        json,
    })
}

/// Match `req` as the proxy would and build the upstream request it would send,
/// with the credential `pick` chooses. The route's key checks and limits are not
/// applied (there is no client key here).
pub fn prepare<'s>(
    snapshot: &'s Snapshot,
    req: &DryRunRequest,
    pick: CredentialPick,
) -> Result<Prepared<'s>, DryRunError> {
    let client = parse_request(req)?;
    let (index, upstream_path) = match find_route(snapshot, &client) {
        Ok(found) => found,
        Err(reason) => return Ok(Prepared::Unmatched(unmatched(&client, reason))),
    };
    let Some(route) = snapshot.route(index) else {
        let reason = "the matched route is inactive".to_string();
        return Ok(Prepared::Unmatched(unmatched(&client, reason)));
    };
    let up = &route.upstream;
    let uri = target_uri(up, &upstream_path, client.query.as_deref()).map_err(target_error)?;
    let request_id =
        headers::request_id(&client.headers).unwrap_or_else(headers::gateway_request_id);
    let mut out = outbound_headers(
        headers::upstream_headers(&client.headers, &route.remove_headers),
        up,
        &route.add_headers,
        request_id,
    );
    let credential = match pick {
        CredentialPick::Next(cx) => up.pick_credential(&cx, &[]).map(|(_, c)| c),
        CredentialPick::Peek => up.peek_credential(&fastgate_upstream::PickContext::now()),
    };
    if let Some(cred) = credential {
        insert_credential(&mut out, cred);
    }
    let (body, report_body) = match &route.add_body_fields {
        Some(fields) => {
            let body = crate::handler::add_fields(client.json.clone(), &client.raw, fields)
                .map_err(body_error)?;
            (body.clone(), Some(redacted_body(&body, fields)))
        }
        None => (client.raw.clone(), req.body.clone()),
    };
    Ok(Prepared::Matched(PreparedRequest {
        route,
        normalized_path: client.path,
        method: client.method,
        uri,
        headers: out,
        body,
        credential,
        report_body,
    }))
}

/// The matched route's index and upstream path, or why none matched (the
/// handler's order: without the body first, then with it when a route asks).
fn find_route(snapshot: &Snapshot, c: &ClientRequest) -> Result<(usize, String), String> {
    if is_reserved_path(&c.path) {
        return Err("the admin area (/admin) is never proxied".into());
    }
    let routes = &snapshot.routes;
    let outcome = match routes.find(&c.method, &c.path, &c.headers, BodyView::NotLoaded) {
        MatchOutcome::NeedBody => match &c.json {
            Some(v) => routes.find(&c.method, &c.path, &c.headers, BodyView::Json(v)),
            None if c.raw.is_empty() => {
                return Err(
                    "a candidate route has body conditions: give a JSON body to match it".into(),
                );
            }
            None => {
                return Err(
                    "a candidate route has body conditions and the body is not JSON \
                     (the gateway would answer 400)"
                        .into(),
                );
            }
        },
        other => other,
    };
    match outcome {
        MatchOutcome::Matched(m) => Ok((m.index(), m.upstream_path(&c.path))),
        MatchOutcome::NeedBody | MatchOutcome::NotFound => Err(no_route_reason(snapshot, c)),
    }
}

fn no_route_reason(snapshot: &Snapshot, c: &ClientRequest) -> String {
    // Inactive routes are not in the table: name one that would have matched.
    let inactive = snapshot.route_names.iter().find(|r| {
        !r.active
            && (r.methods.is_empty()
                || r.methods.iter().any(|m| {
                    m.eq_ignore_ascii_case("ANY") || m.eq_ignore_ascii_case(c.method.as_str())
                }))
            && PathPattern::parse(&r.path).is_ok_and(|p| p.matches(&c.path))
    });
    if let Some(r) = inactive {
        format!("route '{}' matches but is inactive", r.name)
    } else if snapshot.llm_endpoints
        && crate::llm::Endpoint::recognise(&c.method, &c.path).is_some()
    {
        "no route matches; the request is served by the built-in LLM endpoints".into()
    } else {
        format!("no route matches {} {}", c.method, c.path)
    }
}

fn unmatched(c: &ClientRequest, reason: String) -> DryRunReport {
    DryRunReport {
        matched: false,
        normalized_path: c.path.clone(),
        route: None,
        upstream: None,
        method: c.method.to_string(),
        target_url: None,
        headers: Vec::new(),
        body: None,
        credential: None,
        reason: Some(reason),
    }
}

fn target_error(e: ProxyError) -> DryRunError {
    DryRunError::Target(e.to_string())
}

fn body_error(e: ProxyError) -> DryRunError {
    match e {
        ProxyError::BodyNotObject => DryRunError::BadBody(
            "the route adds body fields, so the body must be a JSON object".into(),
        ),
        other => DryRunError::BadBody(other.to_string()),
    }
}

/// The body after `add_body_fields`, the added values replaced by `[redacted]`.
fn redacted_body(body: &[u8], fields: &serde_json::Map<String, Value>) -> Value {
    let mut value: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    if let Some(obj) = value.as_object_mut() {
        for name in fields.keys() {
            obj.insert(name.clone(), Value::String(REDACTED.into()));
        }
    }
    value
}

/// The URL with secret query parameters redacted.
pub fn redacted_url(uri: &Uri) -> String {
    let base = format!(
        "{}://{}{}",
        uri.scheme_str().unwrap_or("http"),
        uri.authority().map_or("", |a| a.as_str()),
        uri.path()
    );
    match uri.query() {
        Some(q) => format!("{base}?{}", redact_query(q.to_string())),
        None => base,
    }
}

/// Is `name` a header whose value the configuration supplies for this route?
fn configured(name: &HeaderName, up: &UpstreamRuntime, route: &RouteRuntime) -> bool {
    up.headers
        .iter()
        .chain(route.add_headers.iter())
        .any(|(n, _)| n == name)
}

impl PreparedRequest<'_> {
    /// The headers as a report shows them: the credential, anything named like a
    /// secret and every value from the configuration redacted.
    pub fn redacted_headers(&self) -> Vec<DryRunHeader> {
        let up = &self.route.upstream;
        let cred_header = self.credential.map(|c| &c.header_name);
        self.headers
            .iter()
            .map(|(name, value)| {
                let hidden = cred_header == Some(name)
                    || value.is_sensitive()
                    || headers::is_secret_header(name.as_str())
                    || configured(name, up, self.route);
                DryRunHeader {
                    name: name.as_str().to_string(),
                    value: if hidden {
                        REDACTED.to_string()
                    } else {
                        String::from_utf8_lossy(value.as_bytes()).into_owned()
                    },
                }
            })
            .collect()
    }

    /// The request as a report shows it (no secret in it).
    pub fn report(&self) -> DryRunReport {
        DryRunReport {
            matched: true,
            normalized_path: self.normalized_path.clone(),
            route: Some(self.route.name.to_string()),
            upstream: Some(self.route.upstream.name.to_string()),
            method: self.method.to_string(),
            target_url: Some(redacted_url(&self.uri)),
            headers: self.redacted_headers(),
            body: self.report_body.clone(),
            credential: self.credential.map(|c| c.name.to_string()),
            reason: None,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use crate::client::ClientCache;

    const YAML: &str = r#"
upstreams:
  - name: api
    kind: openai
    base_url: "http://up.example:8080/base"
    headers: { x-tenant: "tenant-secret-1" }
    credentials: [ { name: k1, key: "sk-provider-secret-1" } ]
  - name: claude
    kind: anthropic
    base_url: "https://claude.example"
    credentials: [ { name: ck, key: "sk-ant-secret" } ]
routes:
  - name: users
    match: { path: "/user/{id}", methods: [GET] }
    upstream: api
    target_path: "/v2/users/{id}"
  - name: stripped
    match: { path: "/svc/**" }
    upstream: api
    strip_prefix: true
    add_headers: { x-route: "route-secret-2" }
    remove_headers: [ x-debug ]
  - name: fields
    match: { path: "/fields" }
    upstream: api
    add_body_fields: { user: "added-secret-3", n: 1 }
  - name: by-model
    match: { path: "/chat", body: { model: "big" } }
    upstream: claude
  - name: off
    match: { path: "/off/{x}" }
    upstream: api
    active: false
"#;

    fn snapshot() -> Snapshot {
        let cfg = fastgate_config::load_str(YAML, &|_| None).unwrap();
        Snapshot::build(&cfg, &ClientCache::default()).unwrap()
    }

    fn request(method: &str, path: &str, headers: &[(&str, &str)]) -> DryRunRequest {
        DryRunRequest {
            method: method.into(),
            path: path.into(),
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            body: None,
        }
    }

    fn header<'r>(r: &'r DryRunReport, name: &str) -> Option<&'r str> {
        r.headers
            .iter()
            .find(|h| h.name == name)
            .map(|h| h.value.as_str())
    }

    #[test]
    fn target_path_and_credential_redacted() {
        let snap = snapshot();
        let r = dry_run(&snap, &request("get", "/user/42?x=1&api_key=abc", &[])).unwrap();
        assert!(r.matched, "{r:?}");
        assert_eq!(r.route.as_deref(), Some("users"));
        assert_eq!(r.upstream.as_deref(), Some("api"));
        assert_eq!(r.method, "GET");
        assert_eq!(
            r.target_url.as_deref(),
            Some("http://up.example:8080/base/v2/users/42?x=1&api_key=[redacted]")
        );
        assert_eq!(header(&r, "authorization"), Some(REDACTED));
        assert_eq!(header(&r, "x-tenant"), Some(REDACTED));
        assert_eq!(r.credential.as_deref(), Some("k1"));
        let text = serde_json::to_string(&r).unwrap();
        assert!(!text.contains("sk-provider-secret-1"), "{text}");
        assert!(!text.contains("tenant-secret-1"), "{text}");
        // The credential is last, the request id before it.
        let names: Vec<&str> = r.headers.iter().map(|h| h.name.as_str()).collect();
        assert_eq!(names, ["x-tenant", "x-request-id", "authorization"]);
    }

    #[test]
    fn strip_prefix_add_and_remove_headers() {
        let snap = snapshot();
        let req = request(
            "POST",
            "/svc/a/b?key=fg_client",
            &[
                ("X-Debug", "1"),
                ("x-keep", "visible"),
                ("x-request-id", "abc-1"),
                ("x-session-token", "client-secret"),
                ("authorization", "Bearer fg_gateway_key"),
            ],
        );
        let r = dry_run(&snap, &req).unwrap();
        assert_eq!(r.route.as_deref(), Some("stripped"));
        // The client's key= is never forwarded.
        assert_eq!(
            r.target_url.as_deref(),
            Some("http://up.example:8080/base/a/b")
        );
        assert_eq!(header(&r, "x-debug"), None);
        assert_eq!(header(&r, "x-keep"), Some("visible"));
        assert_eq!(header(&r, "x-route"), Some(REDACTED));
        assert_eq!(header(&r, "x-session-token"), Some(REDACTED));
        assert_eq!(header(&r, "x-request-id"), Some("abc-1"));
        let text = serde_json::to_string(&r).unwrap();
        for secret in [
            "route-secret-2",
            "client-secret",
            "fg_gateway_key",
            "fg_client",
        ] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
    }

    #[test]
    fn body_fields_added_and_redacted() {
        let snap = snapshot();
        let mut req = request("POST", "/fields", &[]);
        req.body = Some(serde_json::json!({ "prompt": "hi" }));
        let r = dry_run(&snap, &req).unwrap();
        let body = r.body.unwrap();
        assert_eq!(body["prompt"], "hi");
        assert_eq!(body["user"], REDACTED);
        assert_eq!(body["n"], REDACTED);
        // The request itself carries the real values.
        let Prepared::Matched(p) = prepare(&snap, &req, CredentialPick::Peek).unwrap() else {
            panic!("no match");
        };
        let sent: Value = serde_json::from_slice(&p.body).unwrap();
        assert_eq!(sent["user"], "added-secret-3");
        assert_eq!(sent["n"], 1);
        // An empty body becomes an object; a JSON array cannot take fields.
        let r = dry_run(&snap, &request("POST", "/fields", &[])).unwrap();
        assert_eq!(r.body.unwrap()["user"], REDACTED);
        req.body = Some(serde_json::json!([1]));
        let e = dry_run(&snap, &req).unwrap_err().to_string();
        assert!(e.contains("JSON object"), "{e}");
    }

    #[test]
    fn raw_text_body_passes_through() {
        let snap = snapshot();
        let mut req = request("POST", "/svc/x", &[]);
        req.body = Some(Value::String("plain text".into()));
        let Prepared::Matched(p) = prepare(&snap, &req, CredentialPick::Peek).unwrap() else {
            panic!("no match");
        };
        assert_eq!(&p.body[..], b"plain text");
        assert_eq!(p.report().body, Some(Value::String("plain text".into())));
    }

    #[test]
    fn not_found_and_need_body() {
        let snap = snapshot();
        let r = dry_run(&snap, &request("GET", "/nowhere/../else", &[])).unwrap();
        assert!(!r.matched);
        assert_eq!(r.normalized_path, "/else");
        assert!(r.reason.unwrap().contains("no route matches"));
        assert!(r.headers.is_empty() && r.target_url.is_none());

        let r = dry_run(&snap, &request("POST", "/chat", &[])).unwrap();
        assert!(!r.matched);
        assert!(r.reason.unwrap().contains("body conditions"), "need body");
        let mut req = request("POST", "/chat", &[]);
        req.body = Some(serde_json::json!({ "model": "big" }));
        let r = dry_run(&snap, &req).unwrap();
        assert_eq!(r.route.as_deref(), Some("by-model"));
        assert_eq!(header(&r, "x-api-key"), Some(REDACTED));
        assert_eq!(header(&r, "anthropic-version"), Some("2023-06-01"));

        let r = dry_run(&snap, &request("GET", "/admin/api/keys", &[])).unwrap();
        assert!(r.reason.unwrap().contains("admin"));
        let r = dry_run(&snap, &request("GET", "/off/1", &[])).unwrap();
        assert_eq!(
            r.reason.as_deref(),
            Some("route 'off' matches but is inactive")
        );
    }

    #[test]
    fn llm_endpoint_reason() {
        let snap = snapshot();
        let r = dry_run(&snap, &request("POST", "/v1/chat/completions", &[])).unwrap();
        assert!(!r.matched);
        assert!(snap.llm_endpoints);
        let reason = r.reason.unwrap();
        assert!(reason.contains("built-in LLM endpoints"), "{reason}");
    }

    #[test]
    fn bad_input_is_an_error() {
        let snap = snapshot();
        for (req, want) in [
            (request("G E T", "/user/1", &[]), "method"),
            (request("GET", "user/1", &[]), "path"),
            (request("GET", "/a/%00", &[]), "path"),
            (request("GET", "/user/1", &[("bad name", "v")]), "header"),
            (request("GET", "/user/1", &[("x-a", "v\nw")]), "header"),
            (request("GET", "/user/1", &[("x_a", "v")]), "'_'"),
        ] {
            let e = dry_run(&snap, &req).unwrap_err().to_string();
            assert!(e.contains(want), "{e}");
        }
    }

    #[test]
    fn dry_run_does_not_move_the_rotation() {
        let snap = snapshot();
        let up = &snap.upstreams[0];
        let before = up
            .peek_credential(&fastgate_upstream::PickContext::now())
            .map(|c| c.name.clone());
        dry_run(&snap, &request("GET", "/user/1", &[])).unwrap();
        assert_eq!(
            up.peek_credential(&fastgate_upstream::PickContext::now())
                .map(|c| c.name.clone()),
            before
        );
        let Prepared::Matched(p) = prepare(
            &snap,
            &request("GET", "/user/1", &[]),
            CredentialPick::Next(fastgate_upstream::PickContext::now()),
        )
        .unwrap() else {
            panic!("no match");
        };
        assert_eq!(
            p.headers.get("authorization").unwrap(),
            "Bearer sk-provider-secret-1"
        );
    }
}
