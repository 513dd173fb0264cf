//! Compiled path patterns (SPEC §3).
//!
//! A pattern is a '/'-separated list of segments, each one of:
//!
//! | segment   | matches                                          |
//! |-----------|--------------------------------------------------|
//! | `abc`     | exactly `abc` (case-sensitive)                   |
//! | `{name}`  | any non-empty segment, captured as `name`        |
//! | `*`       | any non-empty segment                            |
//! | `*.json`  | a segment ending in `.json` with a non-empty stem |
//! | `**`      | last segment only: zero or more segments         |
//!
//! `/api/v2/**` matches `/api/v2`, `/api/v2/` and `/api/v2/x/y`; the remainder after
//! the literal part (`""`, `""`, `x/y`) is available as `{**}`. A pattern must already
//! be in normalised form (see [`crate::normalize_path`]); a trailing '/' is significant
//! (`/a/` matches `/a/` but not `/a`).

use crate::normalize::{PathError, normalize_path};
use thiserror::Error;

/// Why a path pattern was refused by [`PathPattern::parse`].
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PatternError {
    /// The pattern is the empty string.
    #[error("pattern is empty")]
    Empty,
    /// The pattern does not start with '/'.
    #[error("pattern must start with '/'")]
    NotAbsolute,
    /// The pattern is not a valid path (bad escape, control character, `..` above root).
    #[error("pattern is not a valid path: {0}")]
    InvalidPath(PathError),
    /// The pattern would change under normalisation, so it could never match as written.
    #[error("pattern is not in normalised form; write it as '{0}'")]
    NotNormalized(String),
    /// `**` somewhere other than the whole last segment.
    #[error("'**' is only allowed as the whole last segment")]
    MisplacedDoubleStar,
    /// A `*` that is neither a whole segment nor `*.ext`.
    #[error("bad wildcard segment '{0}': use '*' or '*.ext' as a whole segment")]
    BadWildcard(String),
    /// A brace that is not a whole `{name}` segment.
    #[error("bad parameter segment '{0}': use '{{name}}' as a whole segment")]
    BadParam(String),
    /// A parameter name outside `[A-Za-z_][A-Za-z0-9_]*`.
    #[error("bad parameter name '{0}': use [A-Za-z_][A-Za-z0-9_]*")]
    BadParamName(String),
    /// The same parameter name twice in one pattern.
    #[error("duplicate parameter '{0}'")]
    DuplicateParam(String),
}

/// One compiled segment.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    /// Exact text; the empty literal only occurs as the last segment (trailing '/').
    Literal(Box<str>),
    /// `{name}`: the value is the n-th captured parameter.
    Param,
    /// `*`.
    Star,
    /// `*.ext`, holding the suffix including the dot.
    StarExt(Box<str>),
    /// `**` (always last).
    Rest,
}

/// Specificity class of a pattern: lower is more specific.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Class {
    /// Only literal segments.
    Exact = 0,
    /// Has `{param}` segments, no wildcards.
    Param = 1,
    /// Has `*` or `*.ext`, no `**`.
    Star = 2,
    /// Ends with `**`.
    Rest = 3,
}

/// A compiled path pattern. Build once with [`PathPattern::parse`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathPattern {
    source: Box<str>,
    segments: Box<[Segment]>,
    params: Box<[Box<str>]>,
    class: Class,
    literal_segments: usize,
    ext_segments: usize,
    prefix_len: usize,
}

impl PathPattern {
    /// Parse and validate a pattern such as `/v1/*`, `/api/**`, `/user/{id}`,
    /// `/file/*.json` or `/a/b`.
    pub fn parse(pattern: &str) -> Result<PathPattern, PatternError> {
        if pattern.is_empty() {
            return Err(PatternError::Empty);
        }
        if !pattern.starts_with('/') {
            return Err(PatternError::NotAbsolute);
        }
        let normalized = normalize_path(pattern).map_err(PatternError::InvalidPath)?;
        if normalized != pattern {
            return Err(PatternError::NotNormalized(normalized));
        }
        let raw: Vec<&str> = pattern[1..].split('/').collect();
        let mut segments = Vec::with_capacity(raw.len());
        let mut params: Vec<Box<str>> = Vec::new();
        for (i, seg) in raw.iter().enumerate() {
            segments.push(parse_segment(seg, i + 1 == raw.len(), &mut params)?);
        }
        Ok(Self::from_parts(pattern, segments, params))
    }

    fn from_parts(source: &str, segments: Vec<Segment>, params: Vec<Box<str>>) -> Self {
        let mut class = Class::Exact;
        let mut literal_segments = 0;
        let mut ext_segments = 0;
        for seg in &segments {
            let seg_class = match seg {
                Segment::Literal(_) => {
                    literal_segments += 1;
                    Class::Exact
                }
                Segment::Param => Class::Param,
                Segment::Star => Class::Star,
                Segment::StarExt(_) => {
                    ext_segments += 1;
                    Class::Star
                }
                Segment::Rest => Class::Rest,
            };
            class = class.max(seg_class);
        }
        let prefix_len = segments
            .iter()
            .map_while(|s| match s {
                Segment::Literal(l) if !l.is_empty() => Some(1 + l.len()),
                _ => None,
            })
            .sum();
        PathPattern {
            source: source.into(),
            segments: segments.into(),
            params: params.into(),
            class,
            literal_segments,
            ext_segments,
            prefix_len,
        }
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Parameter names in order of appearance.
    pub fn param_names(&self) -> impl Iterator<Item = &str> {
        self.params.iter().map(|p| &**p)
    }

    /// The leading literal part, e.g. `/openai` for `/openai/**` (empty for `/{id}`).
    /// This is what `strip_prefix` removes.
    pub fn literal_prefix(&self) -> &str {
        self.source.get(..self.prefix_len).unwrap_or("")
    }

    /// True when the pattern has only literal segments.
    pub fn is_exact(&self) -> bool {
        self.class == Class::Exact
    }

    /// True when the pattern ends with `**`.
    pub fn has_rest(&self) -> bool {
        self.class == Class::Rest
    }

    /// Whether a (normalised) path matches, ignoring captures.
    pub fn matches(&self, path: &str) -> bool {
        let mut caps = Vec::new();
        self.match_into(path, &mut caps).is_some()
    }

    pub(crate) fn class(&self) -> Class {
        self.class
    }

    pub(crate) fn literal_segments(&self) -> usize {
        self.literal_segments
    }

    pub(crate) fn ext_segments(&self) -> usize {
        self.ext_segments
    }

    pub(crate) fn param_index(&self, name: &str) -> Option<usize> {
        self.params.iter().position(|p| &**p == name)
    }

    /// The first segment when it is a non-empty literal (used to bucket routes).
    pub(crate) fn first_literal(&self) -> Option<&str> {
        match self.segments.first() {
            Some(Segment::Literal(l)) if !l.is_empty() => Some(l),
            _ => None,
        }
    }

    /// Match `path`; on success return the byte offset where the `**` remainder starts
    /// (`path.len()` when there is none) and leave the parameter values in `caps`.
    /// Allocates only when the pattern has parameters.
    pub(crate) fn match_into(&self, path: &str, caps: &mut Vec<String>) -> Option<usize> {
        caps.clear();
        path.strip_prefix('/')?;
        // `pos` is the start of the next unread segment; None once the path is used up.
        let mut pos = Some(1);
        for seg in self.segments.iter() {
            if let Segment::Rest = seg {
                return Some(pos.unwrap_or(path.len()));
            }
            let start = pos?;
            let tail = path.get(start..)?;
            let (text, next) = match tail.find('/') {
                Some(i) => (tail.get(..i)?, Some(start + i + 1)),
                None => (tail, None),
            };
            let ok = match seg {
                Segment::Literal(l) => **l == *text,
                Segment::Param => {
                    if !text.is_empty() {
                        caps.push(text.to_owned());
                    }
                    !text.is_empty()
                }
                Segment::Star => !text.is_empty(),
                Segment::StarExt(ext) => text.len() > ext.len() && text.ends_with(&**ext),
                Segment::Rest => true,
            };
            if !ok {
                return None;
            }
            pos = next;
        }
        match pos {
            None => Some(path.len()),
            Some(_) => None,
        }
    }
}

impl std::fmt::Display for PathPattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.source)
    }
}

fn parse_segment(
    seg: &str,
    is_last: bool,
    params: &mut Vec<Box<str>>,
) -> Result<Segment, PatternError> {
    if seg == "**" {
        return if is_last {
            Ok(Segment::Rest)
        } else {
            Err(PatternError::MisplacedDoubleStar)
        };
    }
    if seg.contains("**") {
        return Err(PatternError::MisplacedDoubleStar);
    }
    if seg == "*" {
        return Ok(Segment::Star);
    }
    if let Some(ext) = seg.strip_prefix('*') {
        let valid =
            ext.len() > 1 && ext.starts_with('.') && !ext.contains(['*', '{', '}']) && ext != "..";
        return if valid {
            Ok(Segment::StarExt(ext.into()))
        } else {
            Err(PatternError::BadWildcard(seg.to_owned()))
        };
    }
    if seg.contains('*') {
        return Err(PatternError::BadWildcard(seg.to_owned()));
    }
    if let Some(name) = seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
        if name.contains(['{', '}']) {
            return Err(PatternError::BadParam(seg.to_owned()));
        }
        if !is_param_name(name) {
            return Err(PatternError::BadParamName(name.to_owned()));
        }
        if params.iter().any(|p| &**p == name) {
            return Err(PatternError::DuplicateParam(name.to_owned()));
        }
        params.push(name.into());
        return Ok(Segment::Param);
    }
    if seg.contains(['{', '}']) {
        return Err(PatternError::BadParam(seg.to_owned()));
    }
    Ok(Segment::Literal(seg.into()))
}

/// `[A-Za-z_][A-Za-z0-9_]*`
pub(crate) fn is_param_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    match bytes.next() {
        Some(b) if b.is_ascii_alphabetic() || b == b'_' => {}
        _ => return false,
    }
    bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

#[cfg(test)]
mod tests;
