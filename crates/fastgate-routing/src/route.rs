//! Route specifications and their compiled form.

use crate::pattern::{PathPattern, PatternError};
use crate::template::{TargetTemplate, TemplateError};
use http::header::{HeaderName, HeaderValue};
use http::{HeaderMap, Method};
use serde_json::Value;
use std::cmp::Reverse;
use thiserror::Error;

/// One route as configured; compiled by [`crate::RouteTable::build`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RouteSpec {
    /// Position in the configuration; the final precedence tie-break (lower first).
    pub index: usize,
    /// Route name, used in errors and reported on a match.
    pub name: String,
    /// Lower wins.
    pub priority: i32,
    /// Path pattern, see [`PathPattern`].
    pub pattern: String,
    /// Allowed methods; empty or containing `ANY` means all. Case-insensitive.
    pub methods: Vec<String>,
    /// Header name (case-insensitive) -> exact value (case-sensitive). A header sent
    /// several times matches when any of its values is equal.
    pub headers: Vec<(String, String)>,
    /// Top-level JSON body field -> exact value (numbers compare by value, so `1`
    /// equals `1.0`).
    pub body: Vec<(String, Value)>,
    /// Upstream path template; may use `{param}` and `{**}`. Wins over `strip_prefix`.
    pub target_path: Option<String>,
    /// Remove the pattern's literal prefix from the upstream path.
    pub strip_prefix: bool,
}

/// Why a route was refused by [`crate::RouteTable::build`]; always names the route.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RouteError {
    /// The path pattern is invalid.
    #[error("route {route:?}: bad pattern {pattern:?}: {source}")]
    Pattern {
        /// Route name.
        route: String,
        /// The pattern as configured.
        pattern: String,
        /// Why.
        source: PatternError,
    },
    /// A method is not a valid HTTP method token.
    #[error("route {route:?}: bad method {method:?}")]
    Method {
        /// Route name.
        route: String,
        /// The method as configured.
        method: String,
    },
    /// A header condition has an invalid name or value.
    #[error("route {route:?}: bad header condition {header:?}: {reason}")]
    Header {
        /// Route name.
        route: String,
        /// The header name as configured.
        header: String,
        /// Why.
        reason: &'static str,
    },
    /// The target path template is invalid (unknown `{param}`, `{**}` without `**`, ...).
    #[error("route {route:?}: bad target_path {target:?}: {source}")]
    TargetPath {
        /// Route name.
        route: String,
        /// The template as configured.
        target: String,
        /// Why.
        source: TemplateError,
    },
}

/// A compiled route.
#[derive(Debug, Clone)]
pub(crate) struct Route {
    pub(crate) index: usize,
    pub(crate) name: Box<str>,
    pub(crate) priority: i32,
    pub(crate) pattern: PathPattern,
    /// None = any method.
    methods: Option<Box<[Method]>>,
    headers: Box<[(HeaderName, HeaderValue)]>,
    body: Box<[(Box<str>, Value)]>,
    pub(crate) target: Option<TargetTemplate>,
    pub(crate) strip_prefix: bool,
}

/// Result of checking body conditions.
pub(crate) enum BodyCheck {
    Pass,
    Fail,
    NeedBody,
}

/// Precedence key: smaller sorts first. See the crate docs.
pub(crate) type PrecedenceKey = (
    i32,
    crate::pattern::Class,
    Reverse<usize>,
    Reverse<usize>,
    Reverse<usize>,
    usize,
);

impl Route {
    pub(crate) fn compile(spec: RouteSpec) -> Result<Route, RouteError> {
        let RouteSpec {
            index,
            name,
            priority,
            pattern,
            methods,
            headers,
            body,
            target_path,
            strip_prefix,
        } = spec;
        let compiled = match PathPattern::parse(&pattern) {
            Ok(p) => p,
            Err(source) => {
                return Err(RouteError::Pattern {
                    route: name,
                    pattern,
                    source,
                });
            }
        };
        let methods = compile_methods(&name, &methods)?;
        let headers = compile_headers(&name, &headers)?;
        let target = match target_path {
            None => None,
            Some(t) => match TargetTemplate::parse(&t, &compiled) {
                Ok(tt) => Some(tt),
                Err(source) => {
                    return Err(RouteError::TargetPath {
                        route: name,
                        target: t,
                        source,
                    });
                }
            },
        };
        Ok(Route {
            index,
            name: name.into(),
            priority,
            pattern: compiled,
            methods,
            headers,
            body: body.into_iter().map(|(k, v)| (k.into(), v)).collect(),
            target,
            strip_prefix,
        })
    }

    pub(crate) fn precedence_key(&self) -> PrecedenceKey {
        let p = &self.pattern;
        (
            self.priority,
            p.class(),
            Reverse(p.literal_segments()),
            Reverse(p.ext_segments()),
            Reverse(p.literal_prefix().len()),
            self.index,
        )
    }

    pub(crate) fn method_ok(&self, method: &Method) -> bool {
        self.methods
            .as_deref()
            .is_none_or(|ms| ms.iter().any(|m| m == method))
    }

    pub(crate) fn headers_ok(&self, headers: &HeaderMap) -> bool {
        self.headers.iter().all(|(name, want)| {
            headers
                .get_all(name)
                .iter()
                .any(|v| v.as_bytes() == want.as_bytes())
        })
    }

    pub(crate) fn body_check(&self, body: Option<&Value>) -> BodyCheck {
        if self.body.is_empty() {
            return BodyCheck::Pass;
        }
        let Some(body) = body else {
            return BodyCheck::NeedBody;
        };
        let Some(obj) = body.as_object() else {
            return BodyCheck::Fail;
        };
        let all = self
            .body
            .iter()
            .all(|(k, want)| obj.get(&**k).is_some_and(|got| json_eq(got, want)));
        if all {
            BodyCheck::Pass
        } else {
            BodyCheck::Fail
        }
    }
}

fn compile_methods(route: &str, methods: &[String]) -> Result<Option<Box<[Method]>>, RouteError> {
    let mut out = Vec::with_capacity(methods.len());
    let mut any = methods.is_empty();
    for m in methods {
        if m.eq_ignore_ascii_case("ANY") {
            any = true;
            continue;
        }
        let parsed = Method::from_bytes(m.to_ascii_uppercase().as_bytes()).map_err(|_| {
            RouteError::Method {
                route: route.to_owned(),
                method: m.clone(),
            }
        })?;
        if !out.contains(&parsed) {
            out.push(parsed);
        }
    }
    Ok(if any { None } else { Some(out.into()) })
}

fn compile_headers(
    route: &str,
    headers: &[(String, String)],
) -> Result<Box<[(HeaderName, HeaderValue)]>, RouteError> {
    let err = |header: &str, reason| RouteError::Header {
        route: route.to_owned(),
        header: header.to_owned(),
        reason,
    };
    headers
        .iter()
        .map(|(name, value)| {
            if name.contains('_') {
                return Err(err(
                    name,
                    "underscore header names are refused by the gateway",
                ));
            }
            let n =
                HeaderName::from_bytes(name.as_bytes()).map_err(|_| err(name, "invalid name"))?;
            let v = HeaderValue::from_str(value).map_err(|_| err(name, "invalid value"))?;
            Ok((n, v))
        })
        .collect()
}

/// Equality for body conditions: numbers compare by value when either is a float
/// (`1 == 1.0`); everything else uses `serde_json` equality.
fn json_eq(got: &Value, want: &Value) -> bool {
    match (got, want) {
        (Value::Number(a), Value::Number(b)) if a.is_f64() || b.is_f64() => {
            matches!((a.as_f64(), b.as_f64()), (Some(x), Some(y)) if x == y)
        }
        _ => got == want,
    }
}
