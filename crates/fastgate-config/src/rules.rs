//! `rules:` — what a provider's answer does to the credential that got it.
//! Compiled and evaluated by `fastgate_upstream::rules`.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// One rule: when `when` matches `threshold.hits` times within
/// `threshold.within` for one credential, the `actions` run (then not again
/// for that credential before `cooldown` has passed).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, utoipa::ToSchema)]
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
    #[schema(value_type = Option<String>, example = "10m")]
    pub cooldown: Option<Duration>,
    pub actions: Vec<ActionConfig>,
}

fn default_true() -> bool {
    true
}

/// A condition: every key given must match (`{status: [429], body_contains: x}`
/// means both); `all`, `any` and `not` nest.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Condition {
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(no_recursion)]
    pub all: Option<Vec<Condition>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(no_recursion)]
    pub any: Option<Vec<Condition>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(no_recursion)]
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
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum StatusMatch {
    One(StatusItem),
    List(Vec<StatusItem>),
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum StatusItem {
    Code(u16),
    /// `"500-599"` (or `"429"`).
    Range(String),
}

/// `json_path: {path: "$.error.code", equals: "insufficient_quota"}`: exactly one
/// of `equals`, `matches` (regex on the string value), `gt`, `lt`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, utoipa::ToSchema)]
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
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HeaderCondition {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub equals: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contains: Option<String>,
}

/// How many matches within how long fire the rule (default 1 within 60 s).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Threshold {
    pub hits: u32,
    #[serde(with = "humantime_serde")]
    #[schema(value_type = String, example = "30s")]
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
///
/// (De)serialized through [`ActionRepr`], a mapping with exactly one key: the
/// derived externally tagged form reads only YAML tags (`!disable 10m`) once the
/// document has become a YAML value, and the documented form is the mapping.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(try_from = "ActionRepr", into = "ActionRepr")]
pub enum ActionConfig {
    /// Take the credential out of rotation for this long, then back automatically.
    Disable(Duration),
    /// Take it out until someone re-enables it by hand.
    Ban(bool),
    /// Notify these `alerts[]` channels.
    Alert(Vec<String>),
    /// Write a log line (warn level).
    Log(bool),
}

/// The written form of an [`ActionConfig`]: one of its keys.
#[derive(Debug, Clone, Default, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ActionRepr {
    #[serde(
        default,
        with = "humantime_serde",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<String>, example = "10m")]
    pub disable: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ban: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alert: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log: Option<bool>,
}

impl TryFrom<ActionRepr> for ActionConfig {
    type Error = String;

    fn try_from(repr: ActionRepr) -> Result<Self, String> {
        let mut actions = Vec::with_capacity(1);
        actions.extend(repr.disable.map(Self::Disable));
        actions.extend(repr.ban.map(Self::Ban));
        actions.extend(repr.alert.map(Self::Alert));
        actions.extend(repr.log.map(Self::Log));
        match (actions.pop(), actions.is_empty()) {
            (Some(action), true) => Ok(action),
            _ => Err(
                "an action has exactly one of the keys disable, ban, alert, log \
                      (e.g. `{disable: 10m}` or `{alert: [ops]}`)"
                    .into(),
            ),
        }
    }
}

impl From<ActionConfig> for ActionRepr {
    fn from(action: ActionConfig) -> Self {
        let mut repr = Self::default();
        match action {
            ActionConfig::Disable(d) => repr.disable = Some(d),
            ActionConfig::Ban(b) => repr.ban = Some(b),
            ActionConfig::Alert(names) => repr.alert = Some(names),
            ActionConfig::Log(b) => repr.log = Some(b),
        }
        repr
    }
}

/// Highest `threshold.hits` accepted: the engine keeps the time of every hit
/// inside the window, so this bounds its memory per credential.
pub const MAX_THRESHOLD_HITS: u32 = 10_000;

/// Lowest and highest HTTP status a `status` condition may name.
pub const STATUS_MIN: u16 = 100;
pub const STATUS_MAX: u16 = 599;

impl Condition {
    /// No key given: such a condition would match nothing (validation refuses it).
    pub fn is_empty(&self) -> bool {
        self.all.is_none()
            && self.any.is_none()
            && self.not.is_none()
            && self.status.is_none()
            && self.body_contains.is_none()
            && self.body_regex.is_none()
            && self.json_path.is_none()
            && self.header.is_none()
            && self.latency_ms_over.is_none()
            && self.transport_error.is_none()
    }

    /// This condition, or one nested in it, looks at the answer's body
    /// (`body_contains`, `body_regex` or `json_path`).
    pub fn reads_body(&self) -> bool {
        self.body_contains.is_some()
            || self.body_regex.is_some()
            || self.json_path.is_some()
            || self.all.iter().flatten().any(Condition::reads_body)
            || self.any.iter().flatten().any(Condition::reads_body)
            || self.not.as_deref().is_some_and(Condition::reads_body)
    }
}

impl StatusMatch {
    /// The items, whether one was given or a list.
    pub fn items(&self) -> &[StatusItem] {
        match self {
            Self::One(item) => std::slice::from_ref(item),
            Self::List(items) => items,
        }
    }
}

impl StatusItem {
    /// The inclusive range of statuses this item stands for, or why it is not
    /// one: codes within 100-599, a range `"a-b"` with `a <= b`.
    pub fn bounds(&self) -> Result<(u16, u16), String> {
        let (low, high) = match self {
            Self::Code(code) => (*code, *code),
            Self::Range(text) => {
                let parse = |s: &str| {
                    s.trim().parse::<u16>().map_err(|_| {
                        format!("`{text}`: expected a status like 429 or a range like \"500-599\"")
                    })
                };
                match text.split_once('-') {
                    Some((a, b)) => (parse(a)?, parse(b)?),
                    None => {
                        let code = parse(text)?;
                        (code, code)
                    }
                }
            }
        };
        for code in [low, high] {
            if !(STATUS_MIN..=STATUS_MAX).contains(&code) {
                return Err(format!(
                    "{code} is not an HTTP status ({STATUS_MIN} to {STATUS_MAX})"
                ));
            }
        }
        if low > high {
            return Err(format!(
                "range {low}-{high} is empty (the first status must not be above the second)"
            ));
        }
        Ok((low, high))
    }
}

impl JsonPathCondition {
    /// How many of `equals`, `matches`, `gt`, `lt` are given (exactly one is valid).
    pub fn operator_count(&self) -> usize {
        usize::from(self.equals.is_some())
            + usize::from(self.matches.is_some())
            + usize::from(self.gt.is_some())
            + usize::from(self.lt.is_some())
    }
}

impl HeaderCondition {
    /// How many of `equals`, `contains` are given (exactly one is valid).
    pub fn operator_count(&self) -> usize {
        usize::from(self.equals.is_some()) + usize::from(self.contains.is_some())
    }
}

/// The document shows an action in its written form, [`ActionRepr`].
impl utoipa::PartialSchema for ActionConfig {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::Ref::from_schema_name("ActionRepr").into()
    }
}

impl utoipa::ToSchema for ActionConfig {
    fn schemas(
        schemas: &mut Vec<(
            String,
            utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>,
        )>,
    ) {
        schemas.push((
            "ActionRepr".into(),
            <ActionRepr as utoipa::PartialSchema>::schema(),
        ));
        <ActionRepr as utoipa::ToSchema>::schemas(schemas);
    }
}
