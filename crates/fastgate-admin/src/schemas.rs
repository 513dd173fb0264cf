//! Response shapes of the admin API that handlers build as JSON values (lists,
//! views of config objects with their `source`, statistics). These types only
//! describe those bodies for the OpenAPI document (`openapi.rs`); they are never
//! built. A handler that changes a body's shape changes its type here too, and
//! the contract test (`.ci/openapi/run.sh`) checks the two agree.
#![allow(dead_code)]

use chrono::{DateTime, Utc};
use fastgate_audit::AuditRecord;
use fastgate_auth::{ApiKeyRecord, KeyLimits, KeyQuota};
use fastgate_config::{ModelGroupConfig, RouteConfig, RuleConfig, UpstreamConfig};
use fastgate_limits::{Period, ReservedView, UsedView, WindowView};
use fastgate_live::{CredentialView, Source};
use fastgate_store::AdminEvent;
use fastgate_upstream::health::CredentialStatus;
use serde::Serialize;
use utoipa::ToSchema;

/// Every error of the admin API: `{"error": {"message", "type", "code"}}`.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Serialize, ToSchema)]
pub struct ErrorDetail {
    /// What went wrong, for people (names the offending field on a 400).
    pub message: String,
    /// Always `admin_error`.
    #[serde(rename = "type")]
    #[schema(example = "admin_error")]
    pub kind: String,
    /// The HTTP status again.
    #[schema(example = 400)]
    pub code: u16,
}

/// `{"deleted": "<name>"}` (a credential: `"<upstream>/<name>"`).
#[derive(Serialize, ToSchema)]
pub struct Deleted {
    pub deleted: String,
}

/// `object` of every list: always `list`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ListObject {
    List,
}

#[derive(Serialize, ToSchema)]
pub struct KeyList {
    pub object: ListObject,
    pub data: Vec<ApiKeyRecord>,
}

/// What `POST /admin/api/keys/batch` does to every key.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum KeyBatchAction {
    Revoke,
    Enable,
    Disable,
}

/// The answer of `POST /admin/api/keys/batch`.
#[derive(Serialize, ToSchema)]
pub struct KeyBatchResult {
    pub object: ListObject,
    /// The action asked for.
    pub action: KeyBatchAction,
    pub succeeded: u64,
    pub failed: u64,
    /// One entry per id, in the order given.
    pub data: Vec<KeyBatchItem>,
}

/// The outcome for one id of a batch.
#[derive(Serialize, ToSchema)]
pub struct KeyBatchItem {
    /// The id or name as given.
    pub id: String,
    pub ok: bool,
    /// The key after the change (when `ok`).
    pub key: Option<ApiKeyRecord>,
    /// Why it failed (when not `ok`).
    pub error: Option<KeyBatchError>,
}

#[derive(Serialize, ToSchema)]
pub struct KeyBatchError {
    pub message: String,
    /// The HTTP status the single change would have answered.
    pub code: u16,
}

/// A key as created or rotated: the record plus `key`, the secret, shown this
/// once and never again.
#[derive(Serialize, ToSchema)]
pub struct KeyWithSecret {
    #[serde(flatten)]
    pub record: ApiKeyRecord,
    /// The gateway key itself (`fg_…`); store it now.
    pub key: String,
}

/// What a key may still use in the current period (`null`: no quota of that kind).
#[derive(Serialize, ToSchema)]
pub struct Remaining {
    pub requests: Option<u64>,
    pub tokens: Option<u64>,
    pub cost: Option<f64>,
}

/// Stored usage of a key in one earlier period.
#[derive(Serialize, ToSchema)]
pub struct PeriodTotals {
    pub period: String,
    pub requests: u64,
    pub tokens: u64,
    /// USD.
    pub cost: f64,
}

/// `GET /keys/{id}/usage`.
#[derive(Serialize, ToSchema)]
pub struct KeyUsage {
    pub key_id: String,
    pub name: String,
    /// `memory`, `redis`, or `fallback` (Redis unreachable).
    pub backend: String,
    pub limits: KeyLimits,
    pub quota: KeyQuota,
    pub period: Option<Period>,
    pub used: UsedView,
    pub reserved: ReservedView,
    pub remaining: Remaining,
    pub windows: Vec<WindowView>,
    /// Up to 24 earlier periods, newest first.
    pub history: Vec<PeriodTotals>,
}

/// A route as the API shows it: the config file's shape (values of added headers
/// and body fields `[redacted]`) plus `source` and the flat `path` and `methods`.
#[derive(Serialize, ToSchema)]
pub struct RouteView {
    #[serde(flatten)]
    pub route: RouteConfig,
    pub source: Source,
    /// `match.path`.
    pub path: String,
    /// `match.methods`.
    pub methods: Vec<String>,
}

#[derive(Serialize, ToSchema)]
pub struct RouteList {
    pub object: ListObject,
    pub data: Vec<RouteView>,
}

/// A provider key as listed: never the key, its `key_hint`; with its health.
#[derive(Serialize, ToSchema)]
pub struct CredentialListed {
    #[serde(flatten)]
    pub credential: CredentialView,
    /// `null` until the gateway has loaded the credential.
    pub health: Option<CredentialStatus>,
}

#[derive(Serialize, ToSchema)]
pub struct CredentialList {
    pub object: ListObject,
    pub data: Vec<CredentialListed>,
}

/// An upstream as the API shows it: the config file's shape (values of headers
/// `[redacted]`), its provider keys as listed, and `source`.
#[derive(Serialize, ToSchema)]
pub struct UpstreamView {
    #[serde(flatten)]
    pub upstream: UpstreamConfig,
    pub credentials: Vec<CredentialView>,
    pub source: Source,
}

#[derive(Serialize, ToSchema)]
pub struct UpstreamList {
    pub object: ListObject,
    pub data: Vec<UpstreamView>,
    /// Stored objects that could not be read (they are skipped).
    pub problems: Vec<String>,
    /// Id of the master key that encrypts stored provider keys (`null`: none).
    pub master_key_id: Option<String>,
}

/// The body of `POST …/credentials/{cred}/state`.
#[derive(Serialize, ToSchema)]
pub struct CredentialStateChanged {
    pub upstream: String,
    pub name: String,
    pub health: Option<CredentialStatus>,
}

/// A credential health rule in the config file's shape plus `source`.
#[derive(Serialize, ToSchema)]
pub struct RuleView {
    #[serde(flatten)]
    pub rule: RuleConfig,
    pub source: Source,
}

/// One rule plus its latest firings (newest first, at most 20).
#[derive(Serialize, ToSchema)]
pub struct RuleDetail {
    #[serde(flatten)]
    pub rule: RuleConfig,
    pub source: Source,
    pub recent_events: Vec<RuleEvent>,
}

#[derive(Serialize, ToSchema)]
pub struct RuleList {
    pub object: ListObject,
    pub data: Vec<RuleView>,
    /// Whether the built-in rules apply when none of these matched.
    pub builtin_rules: bool,
}

/// A rule firing.
#[derive(Serialize, ToSchema)]
pub struct RuleEvent {
    pub id: i64,
    pub at: Option<DateTime<Utc>>,
    pub rule: String,
    pub upstream: String,
    pub credential: String,
    pub status: Option<u16>,
    pub excerpt: String,
    pub action: String,
    pub state_before: String,
    pub state_after: String,
    pub instance: String,
}

#[derive(Serialize, ToSchema)]
pub struct RuleEventList {
    pub object: ListObject,
    pub data: Vec<RuleEvent>,
    /// The next page: pass it as `before` (`null`: this was the last page).
    pub next_before: Option<i64>,
}

/// A scheduled task and its lease.
#[derive(Serialize, ToSchema)]
pub struct Task {
    pub name: String,
    pub running: bool,
    pub holder: Option<String>,
    pub last_started: Option<DateTime<Utc>>,
    pub last_finished: Option<DateTime<Utc>>,
    pub last_ok: Option<bool>,
    pub last_result: Option<String>,
    pub next_run: Option<DateTime<Utc>>,
}

#[derive(Serialize, ToSchema)]
pub struct TaskList {
    pub object: ListObject,
    pub data: Vec<Task>,
}

#[derive(Serialize, ToSchema)]
pub struct AdminEventList {
    pub object: ListObject,
    pub data: Vec<AdminEvent>,
    /// The next page: pass it as `before` (`null`: this was the last page).
    pub next_before: Option<String>,
}

/// A model group in the config file's shape (transform values `[redacted]`)
/// plus `source`.
#[derive(Serialize, ToSchema)]
pub struct ModelView {
    #[serde(flatten)]
    pub model: ModelGroupConfig,
    pub source: Source,
}

#[derive(Serialize, ToSchema)]
pub struct ModelList {
    pub object: ListObject,
    pub data: Vec<ModelView>,
}

#[derive(Serialize, ToSchema)]
pub struct LogList {
    pub object: ListObject,
    pub data: Vec<AuditRecord>,
    pub limit: Option<u32>,
    pub offset: u32,
}

/// What `POST /routes/{name}/probe` saw (200 whenever the probe ran, even if
/// the upstream failed: `error` says how).
#[derive(Serialize, ToSchema)]
pub struct ProbeResult {
    pub route: Option<String>,
    pub upstream: Option<String>,
    pub method: String,
    pub target_url: Option<String>,
    /// The upstream's status (`null`: no answer).
    pub status: Option<u16>,
    pub duration_ms: u64,
    pub ttfb_ms: Option<u64>,
    pub response_headers: Vec<fastgate_proxy::dry_run::DryRunHeader>,
    /// At most 2 KiB of the answer, secrets scrubbed.
    pub body_preview: Option<String>,
    pub error: Option<String>,
}

/// Error counts of a range.
#[derive(Serialize, ToSchema)]
pub struct ErrorCounts {
    pub total: u64,
    #[serde(rename = "4xx")]
    pub status_4xx: u64,
    #[serde(rename = "5xx")]
    pub status_5xx: u64,
    /// Errors of the gateway itself (no upstream answer).
    pub gateway: u64,
}

/// Milliseconds (`null` without requests).
#[derive(Serialize, ToSchema)]
pub struct Timing {
    pub avg: Option<f64>,
    pub p50: Option<u64>,
    pub p95: Option<u64>,
}

/// The figures of a range, a bucket or a top entry.
#[derive(Serialize, ToSchema)]
pub struct Figures {
    pub requests: u64,
    /// 0-1 (`null` without requests).
    pub success_rate: Option<f64>,
    pub errors: ErrorCounts,
    pub latency_ms: Timing,
    pub ttfb_ms: Timing,
    pub tokens_in: u64,
    pub tokens_out: u64,
    /// USD.
    pub cost: f64,
    pub cost_nanos: u64,
    pub streams: u64,
}

/// The filters in force (`null`: not filtered).
#[derive(Serialize, ToSchema)]
pub struct StatsFilters {
    pub key: Option<String>,
    pub route: Option<String>,
    pub model: Option<String>,
    pub upstream: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct StatsSummary {
    pub from: String,
    pub to: String,
    pub filters: StatsFilters,
    #[serde(flatten)]
    pub figures: Figures,
    /// Keys that made at least one request in the range.
    pub active_keys: u64,
}

#[derive(Serialize, ToSchema)]
pub struct StatsPoint {
    /// Start of the bucket (RFC 3339).
    pub start: String,
    #[serde(flatten)]
    pub figures: Figures,
}

#[derive(Serialize, ToSchema)]
pub struct StatsTimeseries {
    /// `minute`, `hour` or `day`.
    pub bucket: String,
    pub from: Option<String>,
    pub to: Option<String>,
    pub filters: StatsFilters,
    pub points: Vec<StatsPoint>,
}

#[derive(Serialize, ToSchema)]
pub struct TopEntry {
    /// The dimension's value (`null`: requests without one).
    pub value: Option<String>,
    /// Only with `by=key`.
    pub key_name: Option<String>,
    #[serde(flatten)]
    pub figures: Figures,
}

#[derive(Serialize, ToSchema)]
pub struct StatsTop {
    pub by: String,
    pub from: Option<String>,
    pub to: Option<String>,
    pub limit: u32,
    pub filters: StatsFilters,
    pub items: Vec<TopEntry>,
}

/// An upstream in a request: the config file's shape; `credentials` are
/// provider keys to create or update with it (the upstream's other stored keys
/// are kept). Entries as listed (`key_hint`, `source`, …) may be sent back.
#[derive(serde::Deserialize, ToSchema)]
pub struct UpstreamInput {
    #[serde(flatten)]
    pub upstream: UpstreamConfig,
    #[serde(default)]
    pub credentials: Vec<fastgate_live::CredentialInput>,
}

/// `GET /health`.
#[derive(Serialize, ToSchema)]
pub struct Health {
    /// `ok`, or `degraded` when the database is unreachable.
    pub status: String,
    /// `ok` or `unreachable`.
    pub database: String,
    /// `sqlite` or `postgres`.
    pub backend: String,
    /// Audit records waiting to be written.
    pub audit_queue_depth: u64,
    /// The limits backend: `memory`, `redis`, or `fallback` (Redis unreachable:
    /// the failure policy in force).
    pub limits: String,
    pub version: String,
}
