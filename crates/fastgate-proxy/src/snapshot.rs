//! The immutable, validated world the request path reads: compiled route table,
//! upstreams with their credentials, per-route transforms. Built off the hot path
//! from a validated `Config` and swapped in atomically.

use std::sync::Arc;

use fastgate_config::{
    Config, RouteAuditConfig, RouteConfig, TimeoutConfig, UpstreamConfig, UpstreamKind,
};
use fastgate_routing::RouteTable;
use http::header::{HeaderName, HeaderValue};
use http::uri::{Authority, Scheme};

use crate::client::{ClientCache, ClientSettings, UpstreamClient};
use fastgate_upstream::health::HealthSettings;
use fastgate_upstream::{CredentialHealth, HealthRegistry, PickContext};

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("{path}: {message}")]
    Invalid { path: String, message: String },
}

fn invalid(path: impl Into<String>, message: impl Into<String>) -> SnapshotError {
    SnapshotError::invalid(path, message)
}

impl SnapshotError {
    pub fn invalid(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid {
            path: path.into(),
            message: message.into(),
        }
    }
}

pub struct Snapshot {
    pub routes: RouteTable,
    /// Indexed by the route's position in the config (`RouteSpec::index`).
    pub route_rt: Vec<Option<RouteRuntime>>,
    pub upstreams: Vec<Arc<UpstreamRuntime>>,
    /// True if some active route needs no gateway key.
    pub has_public_routes: bool,
    pub route_names: Vec<RouteSummary>,
    /// Public model names and their deployments (LLM endpoints).
    pub models: crate::llm::models::ModelTable,
    /// Serve the built-in LLM endpoints.
    pub llm_endpoints: bool,
    pub default_max_tokens: u32,
    /// Audit options of the LLM endpoints.
    pub llm_audit: RouteAuditConfig,
    /// Route label of requests served by the LLM endpoints.
    pub llm_route: Arc<str>,
    pub llm_metrics: Arc<crate::metrics::RouteMetrics>,
}

/// What the admin API lists about a route.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RouteSummary {
    pub name: String,
    pub priority: i32,
    pub path: String,
    pub methods: Vec<String>,
    pub upstream: String,
    pub target_path: Option<String>,
    pub strip_prefix: bool,
    pub active: bool,
    pub auth: bool,
    pub retries: u32,
}

pub struct RouteRuntime {
    pub name: Arc<str>,
    pub metrics: Arc<crate::metrics::RouteMetrics>,
    pub upstream: Arc<UpstreamRuntime>,
    pub client: Arc<UpstreamClient>,
    pub add_headers: Vec<(HeaderName, HeaderValue)>,
    pub remove_headers: Vec<HeaderName>,
    pub add_body_fields: Option<serde_json::Map<String, serde_json::Value>>,
    pub timeout: TimeoutConfig,
    pub retries: u32,
    pub retry_on: crate::retry::RetryStatuses,
    pub audit: RouteAuditConfig,
    pub auth: bool,
    /// The route's own rate limits (every key together); `None`: unlimited.
    pub limits: Option<crate::admission::ScopeLimits>,
}

pub struct CredentialRuntime {
    pub name: Arc<str>,
    pub header_name: HeaderName,
    /// Marked sensitive so hyper never logs it and HPACK never indexes it.
    pub header_value: HeaderValue,
    /// `vertex`: the service account's tokens; `header_value` is then only a
    /// placeholder and `forward` puts a fresh `Bearer` token in its place.
    pub vertex: Option<Arc<fastgate_upstream::vertex::TokenSource>>,
}

pub struct UpstreamRuntime {
    pub name: Arc<str>,
    pub kind: UpstreamKind,
    pub scheme: Scheme,
    pub authority: Authority,
    /// Path prefix of base_url without trailing slash ("" for none).
    pub base_path: String,
    /// `azure`: the `api-version` query every request carries (added by
    /// `forward::target_uri` when the request has none).
    pub api_version: Option<Arc<str>>,
    /// `vertex`: `/v1/projects/{project}/locations/{location}/publishers/`, the
    /// start of every model path (`llm::vertex`).
    pub vertex_prefix: Option<Arc<str>>,
    /// Serves `/v1/responses` itself (`responses_api: native`): Responses requests pass
    /// through; otherwise they are translated to Chat Completions.
    pub native_responses: bool,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// One per configured credential, in order; `credential_pool` picks among them.
    pub credentials: Vec<CredentialRuntime>,
    pub credential_pool: fastgate_upstream::Pool,
    /// The rules that judge this upstream's answers (compiled once per snapshot).
    pub rules: Arc<fastgate_upstream::rules::RuleSet>,
    /// Sent by the scheduler with disabled credentials (`probe:`).
    pub probe: Option<fastgate_config::ProbeConfig>,
    pub pool: fastgate_config::PoolConfig,
}

impl UpstreamRuntime {
    /// The credential for the next request, by the upstream's `strategy`, among
    /// the active ones not in `skip` (those this request already tried); the
    /// pick is claimed (daily quota, circuit trial).
    pub fn pick_credential(
        &self,
        cx: &PickContext,
        skip: &[usize],
    ) -> Option<(usize, &CredentialRuntime)> {
        let i = self.credential_pool.pick_skipping(cx, skip)?;
        Some((i, self.credentials.get(i)?))
    }

    /// The credential [`Self::pick_credential`] would return next, without
    /// moving the rotation or claiming it (what a dry run reports).
    pub fn peek_credential(&self, cx: &PickContext) -> Option<&CredentialRuntime> {
        self.credentials.get(self.credential_pool.peek(cx)?)
    }

    /// The health of credential `i`.
    pub fn credential_health(&self, i: usize) -> Option<&Arc<CredentialHealth>> {
        self.credential_pool.health(i)
    }

    /// When the first credential comes back by itself (`None`: none will;
    /// only a person can bring them back).
    pub fn next_available_ms(&self, now_ms: i64) -> Option<i64> {
        (0..self.credential_pool.len())
            .filter_map(|i| self.credential_pool.health(i)?.available_at_ms(now_ms))
            .min()
    }
}

fn header_pairs(
    path: &str,
    map: &std::collections::BTreeMap<String, String>,
) -> Result<Vec<(HeaderName, HeaderValue)>, SnapshotError> {
    map.iter()
        .map(|(k, v)| {
            let name = HeaderName::from_bytes(k.as_bytes())
                .map_err(|_| invalid(format!("{path}.{k}"), "invalid header name"))?;
            let value = HeaderValue::from_str(v)
                .map_err(|_| invalid(format!("{path}.{k}"), "invalid header value"))?;
            Ok((name, value))
        })
        .collect()
}

fn build_upstream(
    i: usize,
    u: &UpstreamConfig,
    health: &HealthRegistry,
    rules: &Arc<fastgate_upstream::rules::RuleSet>,
) -> Result<UpstreamRuntime, SnapshotError> {
    let path = format!("upstreams[{i}]");
    // The mock kind answers in-process; its URL is only a label.
    let vertex_base;
    let base_url = if u.kind == UpstreamKind::Mock && u.base_url.is_empty() {
        "http://mock.invalid"
    } else if u.kind == UpstreamKind::Vertex && u.base_url.is_empty() {
        vertex_base =
            fastgate_config::vertex::default_base_url(u.location.as_deref().unwrap_or(""));
        vertex_base.as_str()
    } else {
        u.base_url.as_str()
    };
    let uri: http::Uri = base_url
        .parse()
        .map_err(|e| invalid(format!("{path}.base_url"), format!("{e}")))?;
    let scheme = uri
        .scheme()
        .cloned()
        .ok_or_else(|| invalid(format!("{path}.base_url"), "missing scheme"))?;
    let authority = uri
        .authority()
        .cloned()
        .ok_or_else(|| invalid(format!("{path}.base_url"), "missing host"))?;
    let base_path = uri.path().trim_end_matches('/').to_string();
    let default_header = match u.kind {
        UpstreamKind::Anthropic => "x-api-key",
        UpstreamKind::Gemini => "x-goog-api-key",
        // Microsoft Entra tokens go in `authorization` (`auth_header`, `auth_scheme: Bearer`).
        UpstreamKind::Azure => "api-key",
        UpstreamKind::Openai | UpstreamKind::Http | UpstreamKind::Mock | UpstreamKind::Vertex => {
            "authorization"
        }
    };
    let header_name_str = u.auth_header.as_deref().unwrap_or(default_header);
    let header_name = HeaderName::from_bytes(header_name_str.as_bytes())
        .map_err(|_| invalid(format!("{path}.auth_header"), "invalid header name"))?;
    let scheme_prefix = match &u.auth_scheme {
        Some(s) => s.clone(),
        None if header_name == http::header::AUTHORIZATION => "Bearer ".to_string(),
        None => String::new(),
    };
    let mut credentials = Vec::new();
    for (j, c) in u.credentials.iter().enumerate() {
        if u.kind == UpstreamKind::Vertex {
            credentials.push(vertex_credential(&format!("{path}.credentials[{j}]"), c)?);
            continue;
        }
        let mut value = HeaderValue::from_str(&format!("{scheme_prefix}{}", c.key.expose()))
            .map_err(|_| {
                invalid(
                    format!("{path}.credentials[{j}].key"),
                    "not a valid header value",
                )
            })?;
        value.set_sensitive(true);
        credentials.push(CredentialRuntime {
            name: Arc::from(c.name.as_str()),
            header_name: header_name.clone(),
            header_value: value,
            vertex: None,
        });
    }
    let members = u
        .credentials
        .iter()
        .map(|c| {
            let key_id = fastgate_upstream::health::key_id(c.key.expose());
            (
                c.weight,
                health.credential(&u.name, &c.name, &c.quota, key_id),
            )
        })
        .collect();
    Ok(UpstreamRuntime {
        name: Arc::from(u.name.as_str()),
        kind: u.kind,
        scheme,
        authority,
        base_path,
        api_version: azure_api_version(&path, u)?,
        vertex_prefix: vertex_prefix(&path, u)?,
        native_responses: u.effective_responses_api() == fastgate_config::ResponsesApi::Native,
        headers: header_pairs(&format!("{path}.headers"), &u.headers)?,
        credentials,
        credential_pool: fastgate_upstream::Pool::with_health(u.strategy.into(), members),
        rules: Arc::clone(rules),
        probe: u.probe.clone(),
        pool: u.pool.clone(),
    })
}

/// An `azure` upstream's `api-version`, checked again here because it is put
/// into every URL as is (validation already refused other shapes).
fn azure_api_version(path: &str, u: &UpstreamConfig) -> Result<Option<Arc<str>>, SnapshotError> {
    if u.kind != UpstreamKind::Azure {
        return Ok(None);
    }
    match u.api_version.as_deref() {
        Some(v) if !v.is_empty() && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') => {
            Ok(Some(Arc::from(v)))
        }
        _ => Err(invalid(
            format!("{path}.api_version"),
            "kind azure needs an api_version like `2024-10-21`",
        )),
    }
}

/// A `vertex` credential: its key parsed and its token source (shared with
/// earlier snapshots of the same key). Errors never quote the key.
fn vertex_credential(
    path: &str,
    c: &fastgate_config::CredentialConfig,
) -> Result<CredentialRuntime, SnapshotError> {
    let sa = fastgate_config::vertex::load_service_account(c.key.expose())
        .map_err(|e| invalid(format!("{path}.key"), e.to_string()))?;
    let source = fastgate_upstream::vertex::TokenSource::shared(&sa)
        .map_err(|e| invalid(format!("{path}.key"), e.to_string()))?;
    let mut placeholder = HeaderValue::from_static("Bearer (minted per request)");
    placeholder.set_sensitive(true);
    Ok(CredentialRuntime {
        name: Arc::from(c.name.as_str()),
        header_name: http::header::AUTHORIZATION,
        header_value: placeholder,
        vertex: Some(source),
    })
}

/// A `vertex` upstream's path start, from its project and location (checked
/// again here because they go into every URL as they are).
fn vertex_prefix(path: &str, u: &UpstreamConfig) -> Result<Option<Arc<str>>, SnapshotError> {
    if u.kind != UpstreamKind::Vertex {
        return Ok(None);
    }
    use fastgate_config::vertex::is_path_safe;
    let (Some(project), Some(location)) = (u.project.as_deref(), u.location.as_deref()) else {
        return Err(invalid(path, "kind vertex needs a project and a location"));
    };
    if !is_path_safe(project, true) || !is_path_safe(location, false) {
        return Err(invalid(
            path,
            "project/location: only lower-case letters, digits and `-`",
        ));
    }
    Ok(Some(Arc::from(format!(
        "/v1/projects/{project}/locations/{location}/publishers/"
    ))))
}

/// A route's audit options, all off when the audit log is disabled (nothing is
/// captured that would not be written).
fn effective_audit(cfg: &Config, audit: RouteAuditConfig) -> RouteAuditConfig {
    if cfg.audit.enabled {
        audit
    } else {
        RouteAuditConfig {
            headers: false,
            bodies: false,
            ..audit
        }
    }
}

fn build_route(
    i: usize,
    r: &RouteConfig,
    upstreams: &[Arc<UpstreamRuntime>],
    clients: &ClientCache,
    audit: RouteAuditConfig,
) -> Result<RouteRuntime, SnapshotError> {
    let path = format!("routes[{i}]");
    let upstream = upstreams
        .iter()
        .find(|u| &*u.name == r.upstream.as_str())
        .cloned()
        .ok_or_else(|| {
            invalid(
                format!("{path}.upstream"),
                format!("unknown upstream '{}'", r.upstream),
            )
        })?;
    let client = clients
        .get(ClientSettings {
            connect_timeout: r.timeout.connect,
            max_idle_per_host: upstream.pool.max_idle_per_host,
            idle_timeout: upstream.pool.idle_timeout,
        })
        .map_err(|e| invalid(&path, e))?;
    let remove_headers = r
        .remove_headers
        .iter()
        .map(|h| {
            HeaderName::from_bytes(h.as_bytes()).map_err(|_| {
                invalid(
                    format!("{path}.remove_headers"),
                    format!("invalid header name '{h}'"),
                )
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(RouteRuntime {
        name: Arc::from(r.name.as_str()),
        metrics: Arc::new(crate::metrics::RouteMetrics::new(&r.name)),
        upstream,
        client,
        add_headers: header_pairs(&format!("{path}.add_headers"), &r.add_headers)?,
        remove_headers,
        add_body_fields: (!r.add_body_fields.is_empty()).then(|| r.add_body_fields.clone()),
        timeout: r.timeout,
        retries: r.retries,
        retry_on: crate::retry::RetryStatuses::from_list(&r.retry_on),
        audit,
        auth: r.auth,
        limits: crate::admission::ScopeLimits::new(&r.name, &r.limits),
    })
}

/// The generic passthrough (`{proxy_prefix}/{upstream}/{path…}`) as one route per
/// upstream, named `proxy:{upstream}`, after every configured route (explicit routes
/// win). It carries the upstream's own timeouts, retries and transforms, always needs
/// a key, and a key's `allowed_routes` permits it by that name. The built-in `mock`
/// kind has no address to forward to; names that are not plain path segments are
/// left out.
fn passthrough_routes(cfg: &Config) -> Vec<fastgate_config::RouteConfig> {
    let prefix = &cfg.proxy_prefix.0;
    if prefix.is_empty() {
        return Vec::new();
    }
    cfg.upstreams
        .iter()
        .filter(|u| u.kind != UpstreamKind::Mock)
        .filter(|u| {
            !u.name.is_empty()
                && u.name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
        })
        .map(|u| fastgate_config::RouteConfig {
            name: format!("proxy:{}", u.name),
            priority: i32::MAX,
            matcher: fastgate_config::MatchConfig {
                path: format!("{prefix}/{}/**", u.name),
                ..Default::default()
            },
            upstream: u.name.clone(),
            target_path: None,
            strip_prefix: true,
            add_headers: u.transforms.add_headers.clone(),
            remove_headers: u.transforms.remove_headers.clone(),
            add_body_fields: u.transforms.add_body_fields.clone(),
            timeout: u.timeout.unwrap_or_default(),
            retries: u.retries.unwrap_or(0),
            retry_on: Vec::new(),
            audit: RouteAuditConfig::default(),
            active: true,
            auth: true,
            limits: Default::default(),
        })
        .collect()
}

impl Snapshot {
    /// A snapshot whose credentials have health of their own (checks, tools).
    pub fn build(cfg: &Config, clients: &ClientCache) -> Result<Snapshot, SnapshotError> {
        let (health, _events) = HealthRegistry::new(HealthSettings::from_config(cfg));
        Self::build_with(cfg, clients, &health)
    }

    /// A snapshot whose credentials' health `health` keeps (the serving one).
    pub fn build_with(
        cfg: &Config,
        clients: &ClientCache,
        health: &HealthRegistry,
    ) -> Result<Snapshot, SnapshotError> {
        let rules = fastgate_upstream::rules::RuleSet::compile(&cfg.rules, &cfg.health)
            .map(Arc::new)
            .map_err(|e| invalid("rules", e.to_string()))?;
        let upstreams = cfg
            .upstreams
            .iter()
            .enumerate()
            .map(|(i, u)| build_upstream(i, u, health, &rules).map(Arc::new))
            .collect::<Result<Vec<_>, _>>()?;
        let mut route_rt = Vec::with_capacity(cfg.routes.len());
        let mut specs = Vec::new();
        let mut has_public_routes = false;
        let mut route_names = Vec::new();
        for (i, r) in cfg.routes.iter().enumerate() {
            route_names.push(RouteSummary {
                name: r.name.clone(),
                priority: r.priority,
                path: r.matcher.path.clone(),
                methods: r.matcher.methods.clone(),
                upstream: r.upstream.clone(),
                target_path: r.target_path.clone(),
                strip_prefix: r.strip_prefix,
                active: r.active,
                auth: r.auth,
                retries: r.retries,
            });
            if !r.active {
                route_rt.push(None);
                continue;
            }
            has_public_routes |= !r.auth;
            let audit = effective_audit(cfg, r.audit);
            route_rt.push(Some(build_route(i, r, &upstreams, clients, audit)?));
            specs.push(r.spec(i));
        }
        for r in passthrough_routes(cfg) {
            let index = route_rt.len();
            let audit = effective_audit(cfg, r.audit);
            route_rt.push(Some(build_route(index, &r, &upstreams, clients, audit)?));
            specs.push(r.spec(index));
        }
        let routes = RouteTable::build(specs).map_err(|e| invalid("routes", e.to_string()))?;
        let models = crate::llm::models::ModelTable::build(cfg, &upstreams, clients)?;
        Ok(Snapshot {
            routes,
            route_rt,
            upstreams,
            has_public_routes,
            route_names,
            models,
            llm_endpoints: cfg.llm.endpoints,
            default_max_tokens: cfg.llm.default_max_tokens,
            llm_audit: effective_audit(cfg, cfg.llm.audit),
            llm_route: Arc::from("llm"),
            llm_metrics: Arc::new(crate::metrics::RouteMetrics::new("llm")),
        })
    }

    pub fn route(&self, index: usize) -> Option<&RouteRuntime> {
        self.route_rt.get(index).and_then(Option::as_ref)
    }
}
