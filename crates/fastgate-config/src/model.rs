//! The configuration model: what `fastgate.yaml` may contain.
//!
//! Every struct denies unknown fields so a typo fails loudly with its field path.
//! Defaults are chosen so that an empty file is a working single-node gateway.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::secret::Secret;

/// The whole configuration file.
#[derive(Debug, Clone, Default, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub server: ServerConfig,
    pub database: DatabaseConfig,
    pub admin: AdminConfig,
    pub audit: AuditConfig,
    pub log: LogConfig,
    pub metrics: MetricsConfig,
    /// Directory for local state (SQLite file, generated admin token, spill files).
    #[schema(value_type = String)]
    pub data_dir: PathBuf,
    pub upstreams: Vec<UpstreamConfig>,
    pub routes: Vec<RouteConfig>,
    /// Public model names and the deployments that serve them (LLM endpoints).
    pub models: Vec<crate::llm::ModelGroupConfig>,
    /// Settings of the built-in LLM endpoints.
    pub llm: crate::llm::LlmConfig,
    /// `ANY {proxy_prefix}/{upstream}/{path…}` forwards to that upstream (empty: off).
    pub proxy_prefix: ProxyPrefix,
    /// File holding the master key that encrypts provider keys stored in the
    /// database (generated with mode 0600 when missing). The `FASTGATE_MASTER_KEY`
    /// variable (the key itself) takes precedence. Empty: `<data_dir>/master_key`.
    #[schema(value_type = String)]
    pub master_key_file: PathBuf,
    /// IANA time zone for daily resets and times shown to people (default `UTC`).
    pub timezone: Timezone,
    /// Credential health: built-in rules, circuit breaker, quota reset hour.
    pub health: crate::health::HealthConfig,
    /// Rules that take credentials out of rotation on matching answers.
    pub rules: Vec<crate::rules::RuleConfig>,
    /// Alert channels named by rules' `alert` actions.
    pub alerts: Vec<crate::alerts::AlertConfig>,
    /// How quota usage is kept (docs/limits.md).
    pub limits: crate::limits::LimitsConfig,
    /// Shared counters for a fleet; off without `redis.url`.
    pub redis: crate::limits::RedisConfig,
    /// CORS for the proxy endpoints (browsers calling the gateway); off by default.
    pub cors: crate::cors::CorsConfig,
}

/// An IANA time zone name (`UTC`, `Asia/Shanghai`), checked by validation.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(transparent)]
pub struct Timezone(pub String);

impl Default for Timezone {
    fn default() -> Self {
        Self("UTC".into())
    }
}

/// The path prefix of the generic passthrough by upstream name (default `/proxy`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(transparent)]
pub struct ProxyPrefix(pub String);

impl Default for ProxyPrefix {
    fn default() -> Self {
        Self("/proxy".into())
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address the gateway listens on.
    #[schema(value_type = String, example = "127.0.0.1:8514")]
    pub listen: SocketAddr,
    /// Largest request body accepted; larger ones get 413 before any upstream connection.
    pub max_body_bytes: usize,
    /// Time allowed to receive the request headers.
    #[serde(with = "humantime_serde")]
    #[schema(value_type = String, example = "30s")]
    pub header_read_timeout: Duration,
    /// Close a client connection after this long without any byte in either
    /// direction (an in-flight response is allowed to finish).
    #[serde(with = "humantime_serde")]
    #[schema(value_type = String, example = "30s")]
    pub idle_timeout: Duration,
    /// Time allowed to receive a buffered request body.
    #[serde(with = "humantime_serde")]
    #[schema(value_type = String, example = "30s")]
    pub body_read_timeout: Duration,
    /// How long in-flight requests may take to finish on shutdown.
    #[serde(with = "humantime_serde")]
    #[schema(value_type = String, example = "30s")]
    pub shutdown_grace: Duration,
    /// Maximum concurrent client connections.
    pub max_connections: usize,
    /// Async runtime worker threads; 0 = one per CPU core.
    pub worker_threads: usize,
    /// Peers whose `X-Forwarded-For` is trusted for the client IP.
    pub trusted_proxies: Vec<String>,
    /// Abort a response whose client has not accepted a byte for this long
    /// (the upstream request is cancelled and the audit record closed with an error).
    #[serde(with = "humantime_serde")]
    #[schema(value_type = String, example = "30s")]
    pub write_timeout: Duration,
    /// Request body bytes all in-flight requests may hold together; past it new
    /// requests get 503 with `Retry-After` instead of growing memory.
    pub max_inflight_body_bytes: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8514)),
            max_body_bytes: 4 * 1024 * 1024,
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(75),
            body_read_timeout: Duration::from_secs(30),
            shutdown_grace: Duration::from_secs(30),
            max_connections: 10_000,
            worker_threads: 0,
            trusted_proxies: Vec::new(),
            write_timeout: Duration::from_secs(60),
            max_inflight_body_bytes: 256 * 1024 * 1024,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    /// `sqlite://path` or `postgres://…`. Empty means `sqlite://<data_dir>/fastgate.db`.
    #[schema(value_type = String, format = Password)]
    pub url: Secret<String>,
    pub max_connections: u32,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            url: Secret::new(String::new()),
            max_connections: 8,
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    /// Admin bearer token. When absent, one is generated on first start and stored in
    /// `<data_dir>/admin_token` (mode 0600).
    #[schema(value_type = Option<String>, format = Password)]
    pub token: Option<Secret<String>>,
}

#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct AuditConfig {
    pub enabled: bool,
    /// Bounded queue between the request path and the batch writer.
    pub queue_capacity: usize,
    pub batch_size: usize,
    #[serde(with = "humantime_serde")]
    #[schema(value_type = String, example = "30s")]
    pub flush_interval: Duration,
    /// Delete audit rows older than this many days (0 = keep forever).
    pub retention_days: u32,
    /// Append every record to a crash journal in `<data_dir>/spill` before it is
    /// queued, so that `kill -9` loses no record of a completed response.
    pub journal: bool,
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            queue_capacity: 65_536,
            batch_size: 512,
            flush_interval: Duration::from_millis(200),
            retention_days: 30,
            journal: true,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `tracing` filter directive, e.g. `info` or `fastgate_proxy=debug`.
    pub level: String,
    pub format: LogFormat,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            level: "info".into(),
            format: LogFormat::Text,
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    pub enabled: bool,
    /// Require the admin token on `/metrics`.
    pub require_auth: bool,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            require_auth: false,
        }
    }
}

/// Which protocol an upstream speaks; decides the header the credential goes in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum UpstreamKind {
    /// `Authorization: Bearer <key>`
    Openai,
    /// `x-api-key: <key>` plus `anthropic-version` if the client sent none.
    Anthropic,
    /// Generic HTTP: `Authorization: Bearer <key>` unless `auth_header` says otherwise.
    Http,
    /// Google Gemini API: `x-goog-api-key: <key>`.
    Gemini,
    /// Azure OpenAI: `api-key: <key>`; OpenAI's protocol at
    /// `/openai/deployments/{deployment}/…?api-version={api_version}`.
    Azure,
    /// Google Vertex AI: a service-account JSON per credential, exchanged for an
    /// OAuth access token (`Authorization: Bearer …`); Gemini models speak
    /// Gemini's protocol, `claude*` models Anthropic's (`rawPredict`).
    Vertex,
    /// Built in: answers OpenAI-style, deterministically, without any network
    /// (demos, tests, load tests). `base_url` is not needed.
    Mock,
}

/// How Responses API requests reach an upstream (see `UpstreamConfig::responses_api`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ResponsesApi {
    /// Passed through to the upstream's own `/v1/responses` (stateful features included).
    Native,
    /// Translated to Chat Completions (stateless: `previous_response_id` and
    /// `store: true` are refused with a 400).
    Chat,
}

impl UpstreamConfig {
    /// The effective `responses_api`: as set, else `native` for `openai` upstreams and
    /// `chat` for the rest.
    pub fn effective_responses_api(&self) -> ResponsesApi {
        self.responses_api
            .unwrap_or(if self.kind == UpstreamKind::Openai {
                ResponsesApi::Native
            } else {
                ResponsesApi::Chat
            })
    }
}

impl UpstreamKind {
    /// Kinds that can serve model deployments.
    pub fn is_llm(self) -> bool {
        !matches!(self, Self::Http)
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpstreamConfig {
    pub name: String,
    pub kind: UpstreamKind,
    /// Required for every kind but `mock` and `vertex` (which defaults to
    /// `https://{location}-aiplatform.googleapis.com`).
    #[serde(default)]
    pub base_url: String,
    /// The `api-version` query sent to an `azure` upstream (e.g. `2024-10-21`);
    /// required for that kind, refused on the others.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    /// How a Responses API client (`POST /v1/responses`) is served by this
    /// upstream: `native` passes the request through to the upstream's own
    /// `/v1/responses` (the default for `openai`, the only kind that may say so);
    /// `chat` translates it to Chat Completions (the default, and the only
    /// choice, for every other kind; set it on `openai` upstreams that are
    /// OpenAI-compatible servers without a Responses API: DeepSeek, vLLM, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub responses_api: Option<ResponsesApi>,
    /// The Google Cloud project of a `vertex` upstream; required for that kind,
    /// refused on the others.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    /// The Vertex AI location (`us-central1`, `europe-west4`, `global`, …) of a
    /// `vertex` upstream; required for that kind, refused on the others.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// Header name that carries the credential, overriding the kind's default.
    #[serde(default)]
    pub auth_header: Option<String>,
    /// Prefix put before the credential value (default `Bearer ` for Authorization).
    #[serde(default)]
    pub auth_scheme: Option<String>,
    /// Headers sent on every request to this upstream.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default)]
    pub credentials: Vec<CredentialConfig>,
    /// How the next credential is chosen (default `weighted`).
    #[serde(default)]
    pub strategy: CredentialStrategy,
    #[serde(default)]
    pub pool: PoolConfig,
    /// A cheap request sent with disabled credentials to bring them back early.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probe: Option<crate::health::ProbeConfig>,
    /// Default timeouts for model deployments on this upstream.
    #[serde(default)]
    pub timeout: Option<TimeoutConfig>,
    /// Default retry count for model deployments on this upstream.
    #[serde(default)]
    pub retries: Option<u32>,
    /// Transforms applied to every model request sent to this upstream.
    #[serde(default, flatten)]
    pub transforms: Transforms,
}

/// Header and body transforms (same shapes as on routes).
#[derive(Debug, Clone, Default, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Transforms {
    #[serde(default)]
    pub add_headers: BTreeMap<String, String>,
    #[serde(default)]
    pub remove_headers: Vec<String>,
    #[serde(default)]
    #[schema(value_type = Object)]
    pub add_body_fields: serde_json::Map<String, serde_json::Value>,
}

/// How an upstream chooses among its credentials.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CredentialStrategy {
    /// Each credential in turn, weights ignored.
    RoundRobin,
    /// A random credential, in proportion to its weight.
    Random,
    /// In turn, each credential as often as its weight, spread out
    /// (weights 3 and 1 give A A B A).
    #[default]
    Weighted,
    /// The active credential with the most daily quota left.
    MostQuotaLeft,
    /// The active credential with the fewest requests in flight.
    LeastInFlight,
}

#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CredentialConfig {
    pub name: String,
    #[schema(value_type = String, format = Password)]
    pub key: Secret<String>,
    #[serde(default = "default_weight")]
    pub weight: u32,
    /// Daily limits; reaching one makes the credential `exhausted` until the reset.
    #[serde(
        default,
        skip_serializing_if = "crate::health::CredentialQuota::is_unset"
    )]
    pub quota: crate::health::CredentialQuota,
}

fn default_weight() -> u32 {
    1
}

#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct PoolConfig {
    pub max_idle_per_host: usize,
    #[serde(with = "humantime_serde")]
    #[schema(value_type = String, example = "30s")]
    pub idle_timeout: Duration,
}

impl Default for PoolConfig {
    fn default() -> Self {
        Self {
            max_idle_per_host: 256,
            idle_timeout: Duration::from_secs(90),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    pub name: String,
    /// Lower number wins.
    #[serde(default = "default_priority")]
    pub priority: i32,
    #[serde(rename = "match")]
    pub matcher: MatchConfig,
    pub upstream: String,
    /// Path sent upstream; may use `{param}` and `{**}` (the `**` remainder).
    /// Absent: the request path (after `strip_prefix`).
    #[serde(default)]
    pub target_path: Option<String>,
    /// Remove the literal prefix of the pattern before forwarding.
    #[serde(default)]
    pub strip_prefix: bool,
    #[serde(default)]
    pub add_headers: BTreeMap<String, String>,
    #[serde(default)]
    pub remove_headers: Vec<String>,
    #[serde(default)]
    #[schema(value_type = Object)]
    pub add_body_fields: serde_json::Map<String, serde_json::Value>,
    #[serde(default)]
    pub timeout: TimeoutConfig,
    /// Extra attempts after a failure that is safe to retry (see `retry_on`).
    #[serde(default)]
    pub retries: u32,
    /// Upstream statuses (502, 503 or 504) retried for every method. Without it,
    /// 502-504 are retried only for idempotent methods (GET, HEAD, OPTIONS, PUT,
    /// DELETE, TRACE): a POST that got a 502 may already have been processed.
    #[serde(default)]
    pub retry_on: Vec<u16>,
    #[serde(default)]
    pub audit: RouteAuditConfig,
    #[serde(default = "default_true")]
    pub active: bool,
    /// Require a gateway key (default true). `false` makes a public route.
    #[serde(default = "default_true")]
    pub auth: bool,
    /// Rate limits over every key's requests through this route.
    #[serde(
        default,
        skip_serializing_if = "crate::limits::RateLimitsConfig::is_unset"
    )]
    pub limits: crate::limits::RateLimitsConfig,
}

impl RouteConfig {
    /// The route as the route table compiles it (the gateway, `validate` and the
    /// fuzz checks all build it this way).
    pub fn spec(&self, index: usize) -> fastgate_routing::RouteSpec {
        let m = &self.matcher;
        fastgate_routing::RouteSpec {
            index,
            name: self.name.clone(),
            priority: self.priority,
            pattern: m.path.clone(),
            methods: m.methods.clone(),
            headers: m
                .headers
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            body: m.body.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            target_path: self.target_path.clone(),
            strip_prefix: self.strip_prefix,
        }
    }
}

fn default_priority() -> i32 {
    100
}

fn default_true() -> bool {
    true
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MatchConfig {
    pub path: String,
    /// Empty or containing `ANY` matches every method.
    #[serde(default)]
    pub methods: Vec<String>,
    /// Header name -> exact value required.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Top-level JSON body field -> exact value required.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub body: serde_json::Map<String, serde_json::Value>,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct TimeoutConfig {
    #[serde(with = "humantime_serde")]
    #[schema(value_type = String, example = "30s")]
    pub connect: Duration,
    #[serde(with = "humantime_serde")]
    #[schema(value_type = String, example = "30s")]
    pub first_byte: Duration,
    /// Longest silence allowed between two response chunks.
    #[serde(with = "humantime_serde")]
    #[schema(value_type = String, example = "30s")]
    pub idle: Duration,
    /// Whole exchange, streaming included.
    #[serde(with = "humantime_serde")]
    #[schema(value_type = String, example = "30s")]
    pub total: Duration,
}

impl Default for TimeoutConfig {
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(5),
            first_byte: Duration::from_secs(60),
            idle: Duration::from_secs(60),
            total: Duration::from_secs(600),
        }
    }
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct RouteAuditConfig {
    pub headers: bool,
    pub bodies: bool,
    pub body_max_bytes: usize,
}

impl Default for RouteAuditConfig {
    fn default() -> Self {
        Self {
            headers: false,
            bodies: false,
            body_max_bytes: 10_240,
        }
    }
}
