#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Rule engine tests; `now` is always given, so windows and cooldowns are exact.

mod builtins;
mod conditions;
mod firing;
mod output;

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use fastgate_config::{HealthConfig, RuleConfig};
use http::{HeaderMap, HeaderName, HeaderValue};

use super::*;

const MIN: Duration = Duration::from_secs(60);

fn parse(yaml: &str) -> Vec<RuleConfig> {
    yaml_serde::from_str(yaml).unwrap()
}

fn no_builtins() -> HealthConfig {
    HealthConfig {
        builtin_rules: false,
        ..HealthConfig::default()
    }
}

/// Rules from YAML, built-ins off.
fn set(yaml: &str) -> RuleSet {
    RuleSet::compile(&parse(yaml), &no_builtins()).unwrap()
}

/// One rule named `r` with condition `when` (YAML flow mapping), logging.
fn when(cond: &str) -> RuleSet {
    set(&format!(
        "- name: r\n  when: {cond}\n  actions: [ {{ log: true }} ]\n"
    ))
}

/// An answer under construction.
#[derive(Clone)]
struct Ans {
    upstream: &'static str,
    credential: &'static str,
    status: Option<u16>,
    headers: HeaderMap,
    body: Option<Vec<u8>>,
    latency: Duration,
    error: Option<&'static str>,
}

fn status(code: u16) -> Ans {
    Ans {
        upstream: "openai-main",
        credential: "k1",
        status: Some(code),
        headers: HeaderMap::new(),
        body: None,
        latency: Duration::from_millis(100),
        error: None,
    }
}

fn transport(error: &'static str) -> Ans {
    Ans {
        status: None,
        error: Some(error),
        ..status(200)
    }
}

impl Ans {
    fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = Some(body.into());
        self
    }
    fn header(mut self, name: &'static str, value: &str) -> Self {
        self.headers.append(
            HeaderName::from_static(name),
            HeaderValue::from_str(value).unwrap(),
        );
        self
    }
    fn at(mut self, upstream: &'static str, credential: &'static str) -> Self {
        self.upstream = upstream;
        self.credential = credential;
        self
    }
    fn latency_ms(mut self, ms: u64) -> Self {
        self.latency = Duration::from_millis(ms);
        self
    }
    fn outcome(&self) -> Outcome<'_> {
        Outcome {
            upstream: self.upstream,
            credential: self.credential,
            status: self.status,
            headers: Some(&self.headers),
            body: self.body.as_deref(),
            latency: self.latency,
            error: self.error,
        }
    }
}

/// Names of the rules that fire on `ans` at `now`.
fn fire(rules: &RuleSet, ans: &Ans, now: Instant) -> Vec<String> {
    rules
        .evaluate(&ans.outcome(), now)
        .into_iter()
        .map(|f| f.rule.to_string())
        .collect()
}

fn matches(rules: &RuleSet, ans: &Ans) -> bool {
    !fire(rules, ans, Instant::now()).is_empty()
}

const ISSUE_EXAMPLE: &str = r#"
- name: out-of-quota
  upstreams: [openai-main]
  when: { any: [ { status: [402, 429] }, { body_contains: "insufficient_quota" } ] }
  threshold: { hits: 1, within: 60s }
  cooldown: 5m
  actions: [ { disable: 10m }, { alert: [ops-feishu] } ]
"#;
fn threshold_rule(hits: u32, within: &str, cooldown: Option<&str>) -> RuleSet {
    let cooldown = cooldown
        .map(|c| format!("  cooldown: {c}\n"))
        .unwrap_or_default();
    set(&format!(
        "- name: r\n  when: {{ status: 500 }}\n  threshold: {{ hits: {hits}, within: {within} }}\n{cooldown}  actions: [ {{ ban: true }} ]\n"
    ))
}

fn health() -> HealthConfig {
    HealthConfig {
        auth_disable_for: Duration::from_secs(3600),
        rate_limit_cooldown: Duration::from_secs(60),
        max_cooldown: Duration::from_secs(600),
        ..HealthConfig::default()
    }
}

fn builtins_only() -> RuleSet {
    RuleSet::compile(&[], &health()).unwrap()
}

fn one(rules: &RuleSet, ans: &Ans) -> Firing {
    let mut firings = rules.evaluate(&ans.outcome(), Instant::now());
    assert_eq!(firings.len(), 1, "{firings:?}");
    firings.remove(0)
}
