//! Model groups in the snapshot: each public model name, its deployments (with
//! the upstream's defaults and the deployment's overrides merged once, at build
//! time) and its fallbacks; plus the order in which a request tries them.

use foldhash::HashMap;
use std::sync::Arc;

use fastgate_config::{
    Config, DeploymentConfig, ModelKind, PriceConfig, TimeoutConfig, Transforms, UpstreamKind,
};
use fastgate_llm::{Price, Protocol};
use http::header::{HeaderName, HeaderValue};
use rand::Rng;

use crate::client::{ClientCache, ClientSettings, UpstreamClient};
use crate::error::ProxyError;
use crate::snapshot::{SnapshotError, UpstreamRuntime};

pub struct DeploymentRuntime {
    pub upstream: Arc<UpstreamRuntime>,
    pub client: Arc<UpstreamClient>,
    /// Model name sent upstream.
    pub model: String,
    pub weight: u32,
    pub timeout: TimeoutConfig,
    pub retries: u32,
    pub add_headers: Vec<(HeaderName, HeaderValue)>,
    pub remove_headers: Vec<HeaderName>,
    pub add_body_fields: Option<serde_json::Map<String, serde_json::Value>>,
    pub price: Option<Price>,
}

impl DeploymentRuntime {
    /// The protocol this deployment's upstream speaks (`mock` answers OpenAI-style);
    /// on `vertex` the model's publisher decides (`claude*`: Anthropic, else Gemini).
    pub fn protocol(&self) -> Protocol {
        if self.upstream.kind == UpstreamKind::Vertex {
            return super::vertex::protocol(&self.model);
        }
        protocol_of(self.upstream.kind)
    }

    /// The protocol a request to `endpoint` is sent in: a Responses API request goes
    /// to an upstream that serves it natively as is (`Protocol::Responses`), to any other
    /// in the deployment's own protocol (translated through Chat Completions).
    pub fn protocol_for(&self, endpoint: super::Endpoint) -> Protocol {
        if endpoint == super::Endpoint::Responses && self.upstream.native_responses {
            return Protocol::Responses;
        }
        self.protocol()
    }
}

impl DeploymentRuntime {
    /// The path a request built for OpenAI's `openai_path` (`/v1/chat/completions`,
    /// …) goes to on this deployment's upstream: unchanged but for `azure`, where
    /// it is [`azure_path`] (an endpoint Azure has no deployment path for is refused
    /// with 400, so that a fallback deployment may serve it).
    pub(crate) fn upstream_path(&self, openai_path: String) -> Result<String, ProxyError> {
        if self.upstream.kind != UpstreamKind::Azure {
            // Vertex paths are made with the body (`llm::vertex::adapt`).
            return Ok(openai_path);
        }
        azure_path(&self.model, &openai_path).ok_or_else(|| {
            ProxyError::BadRequest(format!(
                "{openai_path} is not served by Azure OpenAI upstreams (upstream `{}`): \
                 use /v1/chat/completions, /v1/completions or /v1/embeddings",
                self.upstream.name
            ))
        })
    }
}

/// Azure OpenAI's path for an OpenAI endpoint: `/openai/deployments/{deployment}/…`
/// with the deployment name percent-encoded as one path segment (the `api-version`
/// query is added by `forward::target_uri`). `None`: no deployment path exists for
/// it (the Responses API lives under Azure's `/openai/v1/`, with other versioning;
/// reach it by a route or the passthrough).
pub fn azure_path(deployment: &str, openai_path: &str) -> Option<String> {
    let op = match openai_path {
        "/v1/chat/completions" => "chat/completions",
        "/v1/completions" => "completions",
        "/v1/embeddings" => "embeddings",
        _ => return None,
    };
    let mut out = String::with_capacity(22 + deployment.len() * 3 + op.len());
    out.push_str("/openai/deployments/");
    push_segment(&mut out, deployment);
    out.push('/');
    out.push_str(op);
    Some(out)
}

/// Percent-encode `segment` so that it stays one path segment: everything but
/// RFC 3986 unreserved characters is encoded, and so are the dots of a dot-only
/// segment (which a server would read as `.`/`..`).
fn push_segment(out: &mut String, segment: &str) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let dots_only = segment.bytes().all(|b| b == b'.');
    for b in segment.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'~') || (b == b'.' && !dots_only)
        {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0x0f)]));
        }
    }
}

pub fn protocol_of(kind: UpstreamKind) -> Protocol {
    match kind {
        UpstreamKind::Anthropic => Protocol::Anthropic,
        // Vertex: Gemini unless the model is Claude (`DeploymentRuntime::protocol`).
        UpstreamKind::Gemini | UpstreamKind::Vertex => Protocol::Gemini,
        // Azure OpenAI speaks OpenAI's protocol at its own paths (`azure_path`).
        UpstreamKind::Openai | UpstreamKind::Azure | UpstreamKind::Http | UpstreamKind::Mock => {
            Protocol::OpenAi
        }
    }
}

pub struct ModelGroupRuntime {
    pub name: String,
    pub kind: ModelKind,
    pub deployments: Vec<Arc<DeploymentRuntime>>,
    pub fallbacks: Vec<String>,
    /// The group's own rate limits (every key together); `None`: unlimited.
    pub limits: Option<crate::admission::ScopeLimits>,
    /// Output cap assumed for a request without `max_tokens`.
    pub max_output_tokens: Option<u32>,
}

/// All model groups, by public name, in config order for listings.
#[derive(Default)]
pub struct ModelTable {
    pub by_name: HashMap<String, Arc<ModelGroupRuntime>>,
    pub order: Vec<String>,
}

fn price(p: &PriceConfig) -> Price {
    Price {
        input: p.input,
        output: p.output,
        cached_input: p.cached_input,
        cache_write: p.cache_write,
    }
}

fn headers(path: &str, t: &[&Transforms]) -> Result<Vec<(HeaderName, HeaderValue)>, SnapshotError> {
    let mut out: Vec<(HeaderName, HeaderValue)> = Vec::new();
    for transforms in t {
        for (k, v) in &transforms.add_headers {
            let name = HeaderName::from_bytes(k.as_bytes())
                .map_err(|_| SnapshotError::invalid(path, "invalid header name"))?;
            let value = HeaderValue::from_str(v)
                .map_err(|_| SnapshotError::invalid(path, "invalid header value"))?;
            out.retain(|(n, _)| n != name);
            out.push((name, value));
        }
    }
    Ok(out)
}

fn deployment(
    path: &str,
    d: &DeploymentConfig,
    group_price: Option<&PriceConfig>,
    upstreams: &[Arc<UpstreamRuntime>],
    cfg: &Config,
    clients: &ClientCache,
) -> Result<DeploymentRuntime, SnapshotError> {
    let (upstream, ucfg) = upstreams
        .iter()
        .zip(&cfg.upstreams)
        .find(|(u, _)| *u.name == d.upstream)
        .ok_or_else(|| {
            SnapshotError::invalid(
                format!("{path}.upstream"),
                format!("unknown upstream '{}'", d.upstream),
            )
        })?;
    let timeout = d.timeout.or(ucfg.timeout).unwrap_or_default();
    let client = clients
        .get(ClientSettings {
            connect_timeout: timeout.connect,
            max_idle_per_host: upstream.pool.max_idle_per_host,
            idle_timeout: upstream.pool.idle_timeout,
        })
        .map_err(|e| SnapshotError::invalid(path, e))?;
    let remove_headers = ucfg
        .transforms
        .remove_headers
        .iter()
        .chain(&d.transforms.remove_headers)
        .map(|h| {
            HeaderName::from_bytes(h.as_bytes())
                .map_err(|_| SnapshotError::invalid(path, format!("invalid header name '{h}'")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut fields = ucfg.transforms.add_body_fields.clone();
    fields.extend(d.transforms.add_body_fields.clone());
    Ok(DeploymentRuntime {
        upstream: Arc::clone(upstream),
        client,
        model: d.model.clone(),
        weight: d.weight.max(1),
        timeout,
        retries: d.retries.or(ucfg.retries).unwrap_or(0),
        add_headers: headers(path, &[&ucfg.transforms, &d.transforms])?,
        remove_headers,
        add_body_fields: (!fields.is_empty()).then_some(fields),
        price: d.price.as_ref().or(group_price).map(price),
    })
}

impl ModelTable {
    pub fn build(
        cfg: &Config,
        upstreams: &[Arc<UpstreamRuntime>],
        clients: &ClientCache,
    ) -> Result<Self, SnapshotError> {
        let mut table = ModelTable::default();
        for (i, g) in cfg.models.iter().enumerate() {
            let deployments = g
                .deployments
                .iter()
                .enumerate()
                .map(|(j, d)| {
                    deployment(
                        &format!("models[{i}].deployments[{j}]"),
                        d,
                        g.price.as_ref(),
                        upstreams,
                        cfg,
                        clients,
                    )
                    .map(Arc::new)
                })
                .collect::<Result<Vec<_>, _>>()?;
            table.order.push(g.name.clone());
            table.by_name.insert(
                g.name.clone(),
                Arc::new(ModelGroupRuntime {
                    name: g.name.clone(),
                    kind: g.kind,
                    deployments,
                    fallbacks: g.fallbacks.clone(),
                    limits: crate::admission::ScopeLimits::new(&g.name, &g.limits),
                    max_output_tokens: g.max_output_tokens,
                }),
            );
        }
        Ok(table)
    }

    /// Deployments to try for `model`, in order: the group's deployments in a
    /// weighted random order, then each fallback group's (each group once) that
    /// `may_use` allows (a key's `allowed_models` holds on fallbacks too).
    pub fn candidates(
        &self,
        model: &str,
        may_use: impl Fn(&str) -> bool,
    ) -> Vec<Arc<DeploymentRuntime>> {
        let mut out = Vec::new();
        let mut visited: Vec<&str> = Vec::new();
        let mut queue: Vec<&str> = vec![model];
        while let Some(name) = queue.first().copied() {
            queue.remove(0);
            if visited.contains(&name) {
                continue;
            }
            visited.push(name);
            let Some(group) = self.by_name.get(name) else {
                continue;
            };
            if name != model && !may_use(name) {
                continue;
            }
            out.extend(weighted_order(&group.deployments));
            queue.extend(group.fallbacks.iter().map(String::as_str));
        }
        out
    }
}

/// A weighted random permutation: each pick is proportional to weight among
/// the deployments not yet picked.
fn weighted_order(deployments: &[Arc<DeploymentRuntime>]) -> Vec<Arc<DeploymentRuntime>> {
    if deployments.len() == 1 {
        return deployments.to_vec();
    }
    let mut left: Vec<&Arc<DeploymentRuntime>> = deployments.iter().collect();
    let mut out = Vec::with_capacity(left.len());
    let mut rng = rand::rng();
    while !left.is_empty() {
        let total: u64 = left.iter().map(|d| u64::from(d.weight)).sum();
        let mut pick = rng.random_range(0..total.max(1));
        let idx = left
            .iter()
            .position(|d| {
                let w = u64::from(d.weight);
                if pick < w {
                    true
                } else {
                    pick -= w;
                    false
                }
            })
            .unwrap_or(0);
        out.push(Arc::clone(left.remove(idx)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::azure_path;

    #[test]
    fn azure_paths_per_endpoint() {
        assert_eq!(
            azure_path("gpt-4o", "/v1/chat/completions").as_deref(),
            Some("/openai/deployments/gpt-4o/chat/completions")
        );
        assert_eq!(
            azure_path("inst", "/v1/completions").as_deref(),
            Some("/openai/deployments/inst/completions")
        );
        assert_eq!(
            azure_path("emb.v3", "/v1/embeddings").as_deref(),
            Some("/openai/deployments/emb.v3/embeddings")
        );
        assert_eq!(azure_path("gpt-4o", "/v1/responses"), None);
        assert_eq!(azure_path("gpt-4o", "/v1/messages/count_tokens"), None);
    }

    #[test]
    fn deployment_is_one_encoded_segment() {
        assert_eq!(
            azure_path("a/b c:é", "/v1/chat/completions").as_deref(),
            Some("/openai/deployments/a%2Fb%20c%3A%C3%A9/chat/completions")
        );
        assert_eq!(
            azure_path("..", "/v1/embeddings").as_deref(),
            Some("/openai/deployments/%2E%2E/embeddings")
        );
    }
}
