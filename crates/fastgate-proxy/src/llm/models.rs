//! Model groups in the snapshot: each public model name, its deployments (with
//! the upstream's defaults and the deployment's overrides merged once, at build
//! time) and its fallbacks; plus the order in which a request tries them.

use std::collections::HashMap;
use std::sync::Arc;

use fastgate_config::{
    Config, DeploymentConfig, ModelKind, PriceConfig, TimeoutConfig, Transforms, UpstreamKind,
};
use fastgate_llm::{Price, Protocol};
use http::header::{HeaderName, HeaderValue};
use rand::Rng;

use crate::client::{ClientCache, ClientSettings, HttpClient};
use crate::snapshot::{SnapshotError, UpstreamRuntime};

pub struct DeploymentRuntime {
    pub upstream: Arc<UpstreamRuntime>,
    pub client: Arc<HttpClient>,
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
    /// The protocol this deployment's upstream speaks (`mock` answers OpenAI-style).
    pub fn protocol(&self) -> Protocol {
        protocol_of(self.upstream.kind)
    }
}

pub fn protocol_of(kind: UpstreamKind) -> Protocol {
    match kind {
        UpstreamKind::Anthropic => Protocol::Anthropic,
        UpstreamKind::Gemini => Protocol::Gemini,
        UpstreamKind::Openai | UpstreamKind::Http | UpstreamKind::Mock => Protocol::OpenAi,
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
