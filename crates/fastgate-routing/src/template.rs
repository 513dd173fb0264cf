//! `target_path` templates: literal text with `{param}` and `{**}` placeholders,
//! compiled once against the route's pattern.

use crate::pattern::{PathPattern, is_param_name};
use thiserror::Error;

/// Why a `target_path` template was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TemplateError {
    /// The template does not start with '/'.
    #[error("target_path must start with '/'")]
    NotAbsolute,
    /// A '{' without a matching '}' (or a stray '}').
    #[error("unbalanced '{{' or '}}'")]
    Unbalanced,
    /// `{name}` where the name is not a valid parameter name.
    #[error("bad placeholder '{{{0}}}'")]
    BadPlaceholder(String),
    /// `{name}` where the pattern has no such parameter.
    #[error("unknown parameter '{{{0}}}' (not in the pattern)")]
    UnknownParam(String),
    /// `{**}` but the pattern does not end with `**`.
    #[error("'{{**}}' needs a pattern ending with '**'")]
    RestWithoutWildcard,
    /// A control character in the template.
    #[error("control character in target_path")]
    ControlChar,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(Box<str>),
    /// Index into the pattern's parameter list.
    Param(usize),
    Rest,
}

/// A compiled `target_path`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TargetTemplate {
    parts: Box<[Part]>,
    literal_len: usize,
}

impl TargetTemplate {
    /// Compile `template` for routes using `pattern`.
    pub(crate) fn parse(template: &str, pattern: &PathPattern) -> Result<Self, TemplateError> {
        if !template.starts_with('/') {
            return Err(TemplateError::NotAbsolute);
        }
        if template.bytes().any(|b| b < 0x20 || b == 0x7f) {
            return Err(TemplateError::ControlChar);
        }
        let mut parts = Vec::new();
        let mut rest = template;
        while let Some(open) = rest.find(['{', '}']) {
            let (lit, tail) = rest.split_at(open);
            if tail.starts_with('}') {
                return Err(TemplateError::Unbalanced);
            }
            push_literal(&mut parts, lit);
            let close = tail.find('}').ok_or(TemplateError::Unbalanced)?;
            let name = tail.get(1..close).ok_or(TemplateError::Unbalanced)?;
            parts.push(placeholder(name, pattern)?);
            rest = tail.get(close + 1..).unwrap_or("");
        }
        push_literal(&mut parts, rest);
        let literal_len = parts
            .iter()
            .map(|p| match p {
                Part::Literal(l) => l.len(),
                _ => 0,
            })
            .sum();
        Ok(TargetTemplate {
            parts: parts.into(),
            literal_len,
        })
    }

    /// Render with the captured parameter values and the `**` remainder.
    ///
    /// `{**}` inserts the remainder; when the remainder is non-empty and the text
    /// before it does not end with '/', a '/' is inserted, so `/v2{**}` and `/v2/{**}`
    /// both render `a/b` as `/v2/a/b`.
    pub(crate) fn render(&self, params: &[String], remainder: &str) -> String {
        let mut out = String::with_capacity(self.literal_len + remainder.len() + 16);
        for part in self.parts.iter() {
            match part {
                Part::Literal(l) => out.push_str(l),
                Part::Param(i) => out.push_str(params.get(*i).map_or("", String::as_str)),
                Part::Rest => {
                    if !remainder.is_empty() && !out.ends_with('/') {
                        out.push('/');
                    }
                    out.push_str(remainder);
                }
            }
        }
        out
    }
}

fn push_literal(parts: &mut Vec<Part>, lit: &str) {
    if !lit.is_empty() {
        parts.push(Part::Literal(lit.into()));
    }
}

fn placeholder(name: &str, pattern: &PathPattern) -> Result<Part, TemplateError> {
    if name == "**" {
        return if pattern.has_rest() {
            Ok(Part::Rest)
        } else {
            Err(TemplateError::RestWithoutWildcard)
        };
    }
    if !is_param_name(name) {
        return Err(TemplateError::BadPlaceholder(name.to_owned()));
    }
    pattern
        .param_index(name)
        .map(Part::Param)
        .ok_or_else(|| TemplateError::UnknownParam(name.to_owned()))
}
