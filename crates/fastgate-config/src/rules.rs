//! `rules:` — what a provider's answer does to the credential that got it.
//! Compiled and evaluated by `fastgate_upstream::rules`.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// One rule: when `when` matches `threshold.hits` times within
/// `threshold.within` for one credential, the `actions` run (then not again
/// for that credential before `cooldown` has passed).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Only answers from these upstreams (empty: all).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub upstreams: Vec<String>,
    /// Only these credentials, by name (empty: all).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub credentials: Vec<String>,
    pub when: Condition,
    #[serde(default)]
    pub threshold: Threshold,
    #[serde(
        default,
        with = "humantime_serde",
        skip_serializing_if = "Option::is_none"
    )]
    pub cooldown: Option<Duration>,
    pub actions: Vec<ActionConfig>,
}

fn default_true() -> bool {
    true
}

/// A condition: every key given must match (`{status: [429], body_contains: x}`
/// means both); `all`, `any` and `not` nest.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Condition {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub all: Option<Vec<Condition>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub any: Option<Vec<Condition>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not: Option<Box<Condition>>,
    /// `429`, `[402, 429]`, `"500-599"` or a list mixing both.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<StatusMatch>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body_contains: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body_regex: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub json_path: Option<JsonPathCondition>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub header: Option<HeaderCondition>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_ms_over: Option<u64>,
    /// Matches (true) when no answer came: connection failed, reset or timed out.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transport_error: Option<bool>,
}

/// A status, a `"500-599"` range, or a list of either.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(untagged)]
pub enum StatusMatch {
    One(StatusItem),
    List(Vec<StatusItem>),
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(untagged)]
pub enum StatusItem {
    Code(u16),
    /// `"500-599"` (or `"429"`).
    Range(String),
}

/// `json_path: {path: "$.error.code", equals: "insufficient_quota"}`: exactly one
/// of `equals`, `matches` (regex on the string value), `gt`, `lt`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct JsonPathCondition {
    pub path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub equals: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matches: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gt: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lt: Option<f64>,
}

/// `header: {name: x-ratelimit-remaining-requests, equals: "0"}`: exactly one of
/// `equals`, `contains` (case-insensitive name; values compared as given).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HeaderCondition {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub equals: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contains: Option<String>,
}

/// How many matches within how long fire the rule (default 1 within 60 s).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Threshold {
    pub hits: u32,
    #[serde(with = "humantime_serde")]
    pub within: Duration,
}

impl Default for Threshold {
    fn default() -> Self {
        Self {
            hits: 1,
            within: Duration::from_secs(60),
        }
    }
}

/// One action: `{disable: 10m}`, `{ban: true}`, `{alert: [ops-feishu]}`, `{log: true}`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum ActionConfig {
    /// Take the credential out of rotation for this long, then back automatically.
    Disable(#[serde(with = "humantime_serde")] Duration),
    /// Take it out until someone re-enables it by hand.
    Ban(bool),
    /// Notify these `alerts[]` channels.
    Alert(Vec<String>),
    /// Write a log line (warn level).
    Log(bool),
}
