//! Model groups and LLM endpoint settings.

use serde::{Deserialize, Serialize};

use crate::model::{TimeoutConfig, Transforms};

/// Settings of the built-in LLM endpoints (`/v1/chat/completions`, `/v1/messages`, …).
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct LlmConfig {
    /// Serve the built-in LLM endpoints (an explicit route on the same path wins).
    pub endpoints: bool,
    /// `max_tokens` sent to Anthropic when the client gave none (Anthropic requires it).
    pub default_max_tokens: u32,
    /// What the audit log captures for LLM requests (streamed answers are merged).
    pub audit: crate::model::RouteAuditConfig,
}

impl Default for LlmConfig {
    fn default() -> Self {
        Self {
            endpoints: true,
            default_max_tokens: 4096,
            audit: crate::model::RouteAuditConfig::default(),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ModelKind {
    #[default]
    Chat,
    Embedding,
}

/// A public model name (what clients put in `model`) and who serves it.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ModelGroupConfig {
    pub name: String,
    #[serde(default)]
    pub kind: ModelKind,
    pub deployments: Vec<DeploymentConfig>,
    /// Other model names tried in order when every deployment of this one fails.
    #[serde(default)]
    pub fallbacks: Vec<String>,
    /// Price per 1M tokens, for cost accounting.
    #[serde(default)]
    pub price: Option<PriceConfig>,
    /// Output cap assumed when a request sets no `max_tokens`, for reserving its
    /// worst case against token limits and budgets (default `llm.default_max_tokens`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_output_tokens: Option<u32>,
    /// Rate limits over every key's requests for this model name.
    #[serde(
        default,
        skip_serializing_if = "crate::limits::RateLimitsConfig::is_unset"
    )]
    pub limits: crate::limits::RateLimitsConfig,
}

/// One upstream serving a model group, under its own model name.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeploymentConfig {
    pub upstream: String,
    /// Model name sent upstream.
    pub model: String,
    #[serde(default = "default_weight")]
    pub weight: u32,
    /// Overrides the upstream's `timeout`.
    #[serde(default)]
    pub timeout: Option<TimeoutConfig>,
    /// Overrides the upstream's `retries`.
    #[serde(default)]
    pub retries: Option<u32>,
    /// Added after the upstream's transforms (same keys override).
    #[serde(default, flatten)]
    pub transforms: Transforms,
    /// Overrides the group's price for this deployment.
    #[serde(default)]
    pub price: Option<PriceConfig>,
}

fn default_weight() -> u32 {
    1
}

/// USD per 1M tokens.
#[derive(Debug, Clone, Copy, Default, PartialEq, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PriceConfig {
    pub input: f64,
    pub output: f64,
    /// Cache reads; defaults to `input`.
    #[serde(default)]
    pub cached_input: Option<f64>,
    /// Cache writes (Anthropic); defaults to `input`.
    #[serde(default)]
    pub cache_write: Option<f64>,
}
