//! Compiled conditions, and the view of one answer they read.
//!
//! Regexes and JSONPaths are compiled once per rule set. The answer's body is
//! decoded (lossy UTF-8) and parsed as JSON at most once per evaluation, and
//! only when a condition that needs it is reached.

use std::borrow::Cow;
use std::cell::{Cell, OnceCell};
use std::time::Duration;

use fastgate_config::rules::{Condition, HeaderCondition, JsonPathCondition};
use http::HeaderName;
use regex::Regex;
use serde_json::Value;
use serde_json_path::JsonPath;

use super::{Outcome, RuleError};

/// A condition ready to match: a config `Condition` with several keys becomes
/// `All` of its parts, cheap parts first.
#[derive(Debug)]
pub(super) enum Cond {
    All(Vec<Cond>),
    Any(Vec<Cond>),
    Not(Box<Cond>),
    /// Inclusive ranges.
    Status(Box<[(u16, u16)]>),
    TransportError(bool),
    LatencyOver(Duration),
    Header(HeaderName, HeaderTest),
    BodyContains(String),
    BodyRegex(Regex),
    JsonPath(JsonPath, JsonTest),
}

#[derive(Debug)]
pub(super) enum HeaderTest {
    Equals(String),
    Contains(String),
}

#[derive(Debug)]
pub(super) enum JsonTest {
    Equals(Value),
    Matches(Regex),
    Gt(f64),
    Lt(f64),
}

/// One upstream answer as the conditions see it.
pub(super) struct Answer<'a> {
    pub(super) outcome: &'a Outcome<'a>,
    text: OnceCell<Option<Cow<'a, str>>>,
    json: OnceCell<Option<Value>>,
    /// Byte span in the body text of the body condition that matched, so the
    /// excerpt shows it.
    hit: Cell<Option<(usize, usize)>>,
}

impl<'a> Answer<'a> {
    pub(super) fn new(outcome: &'a Outcome<'a>) -> Self {
        Self {
            outcome,
            text: OnceCell::new(),
            json: OnceCell::new(),
            hit: Cell::new(None),
        }
    }

    /// The body as text (decoded once), when there was an answer with a body.
    pub(super) fn text(&self) -> Option<&str> {
        self.text
            .get_or_init(|| {
                let body = self.outcome.body?;
                self.outcome.status?;
                Some(String::from_utf8_lossy(body))
            })
            .as_deref()
    }

    /// The body as JSON (parsed once), when it is JSON.
    pub(super) fn json(&self) -> Option<&Value> {
        self.json
            .get_or_init(|| {
                let body = self.outcome.body?;
                self.outcome.status?;
                serde_json::from_slice(body).ok()
            })
            .as_ref()
    }

    /// Where in [`Self::text`] the last matching body condition matched.
    pub(super) fn hit(&self) -> Option<(usize, usize)> {
        self.hit.get()
    }

    pub(super) fn clear_hit(&self) {
        self.hit.set(None);
    }
}

impl Cond {
    pub(super) fn compile(c: &Condition, rule: &str, path: &str) -> Result<Self, RuleError> {
        let invalid = |path: String, message: String| RuleError::Invalid {
            rule: rule.to_owned(),
            path,
            message,
        };
        let mut parts = Vec::new();
        if let Some(status) = &c.status {
            let mut ranges = Vec::with_capacity(status.items().len());
            for item in status.items() {
                let range = item
                    .bounds()
                    .map_err(|m| invalid(format!("{path}.status"), m))?;
                ranges.push(range);
            }
            if ranges.is_empty() {
                return Err(invalid(format!("{path}.status"), "an empty list".into()));
            }
            parts.push(Self::Status(ranges.into()));
        }
        if let Some(want) = c.transport_error {
            parts.push(Self::TransportError(want));
        }
        if let Some(ms) = c.latency_ms_over {
            parts.push(Self::LatencyOver(Duration::from_millis(ms)));
        }
        if let Some(h) = &c.header {
            parts.push(header(h, &invalid, &format!("{path}.header"))?);
        }
        if let Some(needle) = &c.body_contains {
            parts.push(Self::BodyContains(needle.clone()));
        }
        if let Some(pattern) = &c.body_regex {
            parts.push(Self::BodyRegex(regex(
                pattern,
                rule,
                &format!("{path}.body_regex"),
            )?));
        }
        if let Some(jp) = &c.json_path {
            parts.push(json_path(jp, rule, &format!("{path}.json_path"))?);
        }
        for (key, list, any) in [("all", &c.all, false), ("any", &c.any, true)] {
            let Some(list) = list else { continue };
            if list.is_empty() {
                return Err(invalid(format!("{path}.{key}"), "an empty list".into()));
            }
            let inner = list
                .iter()
                .enumerate()
                .map(|(j, c)| Self::compile(c, rule, &format!("{path}.{key}[{j}]")))
                .collect::<Result<Vec<_>, _>>()?;
            parts.push(if any {
                Self::Any(inner)
            } else {
                Self::All(inner)
            });
        }
        if let Some(inner) = &c.not {
            let inner = Self::compile(inner, rule, &format!("{path}.not"))?;
            parts.push(Self::Not(Box::new(inner)));
        }
        match parts.len() {
            0 => Err(invalid(path.to_owned(), "an empty condition".into())),
            1 => Ok(parts.remove(0)),
            _ => Ok(Self::All(parts)),
        }
    }

    /// Whether this condition looks at the body.
    pub(super) fn reads_body(&self) -> bool {
        match self {
            Self::All(list) | Self::Any(list) => list.iter().any(Self::reads_body),
            Self::Not(inner) => inner.reads_body(),
            Self::BodyContains(_) | Self::BodyRegex(_) | Self::JsonPath(..) => true,
            Self::Status(_) | Self::TransportError(_) | Self::LatencyOver(_) | Self::Header(..) => {
                false
            }
        }
    }

    pub(super) fn matches(&self, a: &Answer<'_>) -> bool {
        let o = a.outcome;
        match self {
            Self::All(list) => list.iter().all(|c| c.matches(a)),
            Self::Any(list) => list.iter().any(|c| c.matches(a)),
            Self::Not(inner) => {
                // A body match under `not` is not what made the rule match.
                let before = a.hit.get();
                let matched = inner.matches(a);
                a.hit.set(before);
                !matched
            }
            Self::Status(ranges) => o
                .status
                .is_some_and(|s| ranges.iter().any(|&(low, high)| (low..=high).contains(&s))),
            Self::TransportError(want) => o.status.is_none() == *want,
            Self::LatencyOver(limit) => o.latency > *limit,
            Self::Header(name, test) => o.status.is_some() && header_matches(o, name, test),
            Self::BodyContains(needle) => a.text().is_some_and(|text| {
                text.find(needle.as_str()).is_some_and(|at| {
                    a.hit.set(Some((at, at + needle.len())));
                    true
                })
            }),
            Self::BodyRegex(re) => a.text().is_some_and(|text| {
                re.find(text).is_some_and(|m| {
                    a.hit.set(Some((m.start(), m.end())));
                    true
                })
            }),
            Self::JsonPath(path, test) => a
                .json()
                .is_some_and(|doc| path.query(doc).iter().any(|node| test.matches(node))),
        }
    }
}

fn header(
    h: &HeaderCondition,
    invalid: &dyn Fn(String, String) -> RuleError,
    path: &str,
) -> Result<Cond, RuleError> {
    let name = HeaderName::from_bytes(h.name.as_bytes()).map_err(|_| {
        invalid(
            format!("{path}.name"),
            "not a valid HTTP header name".into(),
        )
    })?;
    let test = match (&h.equals, &h.contains) {
        (Some(value), None) => HeaderTest::Equals(value.clone()),
        (None, Some(part)) => HeaderTest::Contains(part.clone()),
        _ => {
            return Err(invalid(
                path.to_owned(),
                "give exactly one of equals, contains".into(),
            ));
        }
    };
    Ok(Cond::Header(name, test))
}

fn header_matches(o: &Outcome<'_>, name: &HeaderName, test: &HeaderTest) -> bool {
    let Some(headers) = o.headers else {
        return false;
    };
    headers.get_all(name).iter().any(|value| {
        let value = value.as_bytes();
        match test {
            HeaderTest::Equals(want) => value == want.as_bytes(),
            HeaderTest::Contains(part) => contains_bytes(value, part.as_bytes()),
        }
    })
}

fn contains_bytes(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
}

fn regex(pattern: &str, rule: &str, path: &str) -> Result<Regex, RuleError> {
    Regex::new(pattern).map_err(|e| RuleError::Regex {
        rule: rule.to_owned(),
        path: path.to_owned(),
        message: e
            .to_string()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" "),
    })
}

fn json_path(jp: &JsonPathCondition, rule: &str, path: &str) -> Result<Cond, RuleError> {
    let compiled = JsonPath::parse(&jp.path).map_err(|e| RuleError::JsonPath {
        rule: rule.to_owned(),
        path: format!("{path}.path"),
        message: e
            .to_string()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" "),
    })?;
    let test = match (&jp.equals, &jp.matches, jp.gt, jp.lt) {
        (Some(value), None, None, None) => JsonTest::Equals(value.clone()),
        (None, Some(pattern), None, None) => {
            JsonTest::Matches(regex(pattern, rule, &format!("{path}.matches"))?)
        }
        (None, None, Some(bound), None) if bound.is_finite() => JsonTest::Gt(bound),
        (None, None, None, Some(bound)) if bound.is_finite() => JsonTest::Lt(bound),
        _ => {
            return Err(RuleError::Invalid {
                rule: rule.to_owned(),
                path: path.to_owned(),
                message: "give exactly one of equals, matches, gt, lt (a finite number)".into(),
            });
        }
    };
    Ok(Cond::JsonPath(compiled, test))
}

impl JsonTest {
    fn matches(&self, node: &Value) -> bool {
        match self {
            Self::Equals(want) => json_eq(node, want),
            Self::Matches(re) => node.as_str().is_some_and(|s| re.is_match(s)),
            Self::Gt(bound) => node.as_f64().is_some_and(|n| n > *bound),
            Self::Lt(bound) => node.as_f64().is_some_and(|n| n < *bound),
        }
    }
}

/// JSON equality where numbers compare by value: `3` equals `3.0`.
pub(super) fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            if let (Some(x), Some(y)) = (x.as_i64(), y.as_i64()) {
                x == y
            } else if let (Some(x), Some(y)) = (x.as_u64(), y.as_u64()) {
                x == y
            } else {
                x.as_f64() == y.as_f64()
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| json_eq(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_eq(v, w)))
        }
        _ => a == b,
    }
}
