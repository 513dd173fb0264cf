//! The credential-health rule engine: what a provider's answer does to the
//! credential that got it (`rules:` and the built-in rules of `health:`).
//!
//! A [`RuleSet`] is compiled once per configuration snapshot. The proxy calls
//! [`RuleSet::evaluate`] after each upstream answer (or transport error) and
//! carries out the [`Firing`]s it returns: disable or ban the credential, alert,
//! log. Evaluating an answer no rule matches takes no lock and, unless a rule
//! looks at the body, parses nothing.

mod builtin;
mod condition;
mod redact;
mod state;
#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use fastgate_config::rules::{ActionConfig, MAX_THRESHOLD_HITS};
use fastgate_config::{HealthConfig, RuleConfig};

pub use builtin::{AUTH as BUILTIN_AUTH, MIN_RETRY_AFTER, RATE_LIMIT as BUILTIN_RATE_LIMIT};
pub use redact::{EXCERPT_MAX_CHARS, redact_secrets};

use builtin::Builtins;
use condition::{Answer, Cond};
use redact::{REASON_MAX_CHARS, excerpt, safe_line};
use state::{HitState, Limits};

/// One upstream answer, or the failure to get one.
#[derive(Clone, Copy)]
pub struct Outcome<'a> {
    pub upstream: &'a str,
    /// The credential's name.
    pub credential: &'a str,
    /// `None`: transport error (no answer).
    pub status: Option<u16>,
    pub headers: Option<&'a http::HeaderMap>,
    /// At most 64 KiB of the answer body; `None` when not read.
    pub body: Option<&'a [u8]>,
    pub latency: Duration,
    /// Transport error text when `status` is `None`.
    pub error: Option<&'a str>,
}

/// Sizes instead of the headers and body, and the error text redacted: an
/// answer can echo a provider key.
impl std::fmt::Debug for Outcome<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outcome")
            .field("upstream", &self.upstream)
            .field("credential", &self.credential)
            .field("status", &self.status)
            .field("headers", &self.headers.map(http::HeaderMap::len))
            .field("body_bytes", &self.body.map(<[u8]>::len))
            .field("latency", &self.latency)
            .field("error", &self.error.map(redact_secrets))
            .finish()
    }
}

/// A rule that fired on an answer: what to do and why.
#[derive(Debug, Clone)]
pub struct Firing {
    /// The rule's name; built-ins are `builtin:auth` and `builtin:rate-limit`.
    pub rule: Arc<str>,
    pub builtin: bool,
    pub actions: Vec<RuleAction>,
    pub status: Option<u16>,
    /// What matched: body excerpt or error text, secrets redacted, at most
    /// [`EXCERPT_MAX_CHARS`] characters on one line.
    pub excerpt: String,
    /// One line for people, e.g. `rule out-of-quota: 429 insufficient_quota: You
    /// exceeded…`; for the built-ins the provider's error message (else the
    /// status text). Redacted.
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq)]
pub enum RuleAction {
    /// Out of rotation for this long, then back automatically.
    Disable(Duration),
    /// Out of rotation until re-enabled by hand.
    Ban,
    /// Notify these `alerts[]` channels.
    Alert(Vec<Arc<str>>),
    /// A warning in the log.
    Log,
}

/// What [`RuleSet::compile`] refuses (validation refuses the same, with the
/// configuration's field path).
#[derive(Debug, thiserror::Error)]
pub enum RuleError {
    #[error("rule `{rule}`: {path}: not a valid regular expression: {message}")]
    Regex {
        rule: String,
        path: String,
        message: String,
    },
    #[error("rule `{rule}`: {path}: not a valid JSONPath: {message}")]
    JsonPath {
        rule: String,
        path: String,
        message: String,
    },
    #[error("rule `{rule}`: {path}: {message}")]
    Invalid {
        rule: String,
        path: String,
        message: String,
    },
}

#[derive(Debug)]
struct CompiledRule {
    name: Arc<str>,
    upstreams: Box<[Box<str>]>,
    credentials: Box<[Box<str>]>,
    when: Cond,
    limits: Limits,
    actions: Vec<RuleAction>,
}

impl CompiledRule {
    fn compile(rule: &RuleConfig) -> Result<Self, RuleError> {
        let invalid = |path: &str, message: &str| RuleError::Invalid {
            rule: rule.name.clone(),
            path: path.to_owned(),
            message: message.to_owned(),
        };
        let t = &rule.threshold;
        if t.hits == 0 || t.hits > MAX_THRESHOLD_HITS {
            return Err(invalid(
                "threshold.hits",
                &format!("must be 1 to {MAX_THRESHOLD_HITS}"),
            ));
        }
        if t.within.is_zero() {
            return Err(invalid("threshold.within", "must be greater than 0"));
        }
        if rule.actions.is_empty() {
            return Err(invalid("actions", "give at least one action"));
        }
        let mut actions = Vec::with_capacity(rule.actions.len());
        for (k, action) in rule.actions.iter().enumerate() {
            actions.push(match action {
                ActionConfig::Disable(d) if !d.is_zero() => RuleAction::Disable(*d),
                ActionConfig::Ban(true) => RuleAction::Ban,
                ActionConfig::Log(true) => RuleAction::Log,
                ActionConfig::Alert(names) if !names.is_empty() => {
                    RuleAction::Alert(names.iter().map(|n| Arc::from(n.as_str())).collect())
                }
                _ => {
                    return Err(invalid(
                        &format!("actions[{k}]"),
                        "does nothing (disable 0, ban or log false, alert to no channel)",
                    ));
                }
            });
        }
        let boxed = |names: &[String]| names.iter().map(|n| n.as_str().into()).collect();
        Ok(Self {
            name: rule.name.as_str().into(),
            upstreams: boxed(&rule.upstreams),
            credentials: boxed(&rule.credentials),
            when: Cond::compile(&rule.when, &rule.name, "when")?,
            limits: Limits {
                hits: t.hits,
                within: t.within,
                cooldown: rule.cooldown,
            },
            actions,
        })
    }

    fn in_scope(&self, o: &Outcome<'_>) -> bool {
        (self.upstreams.is_empty() || self.upstreams.iter().any(|u| **u == *o.upstream))
            && (self.credentials.is_empty()
                || self.credentials.iter().any(|c| **c == *o.credential))
    }

    fn firing(&self, a: &Answer<'_>) -> Firing {
        Firing {
            rule: Arc::clone(&self.name),
            builtin: false,
            actions: self.actions.clone(),
            status: a.outcome.status,
            excerpt: excerpt_of(a),
            reason: safe_line(
                &format!("rule {}: {}", self.name, summary(a)),
                REASON_MAX_CHARS,
            ),
        }
    }
}

/// The compiled rules of one configuration snapshot, with their hit counts.
#[derive(Debug)]
pub struct RuleSet {
    rules: Vec<CompiledRule>,
    builtins: Option<Builtins>,
    needs_body: bool,
    state: HitState,
}

impl RuleSet {
    /// Compile once per config snapshot. Fails only on what validation also
    /// refuses. Disabled rules are left out.
    pub fn compile(rules: &[RuleConfig], health: &HealthConfig) -> Result<Self, RuleError> {
        let rules = rules
            .iter()
            .filter(|r| r.enabled)
            .map(CompiledRule::compile)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            needs_body: rules.iter().any(|r| r.when.reads_body()),
            builtins: health.builtin_rules.then(|| Builtins::new(health)),
            rules,
            state: HitState::default(),
        })
    }

    /// No rules, built-ins off.
    pub fn empty() -> Self {
        Self {
            rules: Vec::new(),
            builtins: None,
            needs_body: false,
            state: HitState::default(),
        }
    }

    /// Some enabled rule looks at the body (`body_contains`, `body_regex`,
    /// `json_path`): the caller passes the body of error answers.
    pub fn needs_body(&self) -> bool {
        self.needs_body
    }

    /// Built-ins on: the caller should pass the body of 401/403/429 answers so
    /// the reason can carry the provider's message.
    pub fn builtin_rules(&self) -> bool {
        self.builtins.is_some()
    }

    /// The rules that fire on this answer now: condition matched, threshold
    /// reached within its window, not in cooldown for this credential.
    /// Configured rules in order; if none of them matched (fired or not) and the
    /// built-ins are on, the built-ins.
    pub fn evaluate(&self, outcome: &Outcome<'_>, now: Instant) -> Vec<Firing> {
        self.evaluate_with(outcome, now, &SystemTime::now)
    }

    /// [`Self::evaluate`] with the wall clock given (`Retry-After` dates).
    fn evaluate_with(
        &self,
        outcome: &Outcome<'_>,
        now: Instant,
        wall_now: &dyn Fn() -> SystemTime,
    ) -> Vec<Firing> {
        let answer = Answer::new(outcome);
        let mut fired = Vec::new();
        let mut matched = false;
        for (i, rule) in self.rules.iter().enumerate() {
            if !rule.in_scope(outcome) {
                continue;
            }
            answer.clear_hit();
            if !rule.when.matches(&answer) {
                continue;
            }
            matched = true;
            let fires = rule.limits.stateless()
                || self
                    .state
                    .record(i, rule.limits, outcome.upstream, outcome.credential, now);
            if fires {
                fired.push(rule.firing(&answer));
            }
        }
        if !matched && let Some(builtins) = &self.builtins {
            answer.clear_hit();
            fired.extend(builtins.evaluate(&answer, wall_now));
        }
        fired
    }

    /// Enabled rules compiled.
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }
}

impl Default for RuleSet {
    fn default() -> Self {
        Self::empty()
    }
}

/// The excerpt of a firing: the error text of a transport error, else the
/// body around what matched (or its start).
fn excerpt_of(a: &Answer<'_>) -> String {
    match (a.outcome.status, a.text()) {
        (None, _) => safe_line(a.outcome.error.unwrap_or(""), EXCERPT_MAX_CHARS),
        (Some(_), Some(text)) => excerpt(text, a.hit()),
        (Some(_), None) => String::new(),
    }
}

/// `429 insufficient_quota: You exceeded…`, `transport error: connection reset`.
fn summary(a: &Answer<'_>) -> String {
    let Some(status) = a.outcome.status else {
        return match a.outcome.error {
            Some(e) => format!("transport error: {e}"),
            None => "transport error".into(),
        };
    };
    let detail = match a.json().and_then(builtin::provider_error) {
        Some(builtin::ProviderError {
            code: Some(code),
            message: Some(message),
        }) => format!("{code}: {message}"),
        Some(builtin::ProviderError { code, message }) => {
            code.or(message).unwrap_or_default().to_owned()
        }
        None => a.text().map(|t| excerpt(t, a.hit())).unwrap_or_default(),
    };
    if detail.is_empty() {
        builtin::status_text(status)
    } else {
        format!("{status} {detail}")
    }
}
