//! Masking secrets in text that leaves the gateway (rule excerpts and reasons,
//! logs, alerts), and cutting such text to a short single line.

use std::sync::LazyLock;

use regex::{Captures, Regex};

/// Longest excerpt, in characters.
pub const EXCERPT_MAX_CHARS: usize = 500;

/// Longest reason, in characters.
pub(super) const REASON_MAX_CHARS: usize = 300;

/// Characters of a token: a window edge never cuts one in two (a cut secret
/// could slip under the length the masking looks for).
fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/' | '+' | '=' | '~')
}

pub(super) static SECRETS: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(concat!(
        // Authorization schemes: the token after them.
        r"(?P<auth>\b(?i:bearer|basic))\s+[A-Za-z0-9._~+/\-]{8,}=*",
        // Query or form parameters that carry keys.
        r#"|(?P<param>\b(?i:api[_-]?key|key|access[_-]?token|token|secret|password))=[^&\s"'<>]+"#,
        r"|\bsk-ant-[A-Za-z0-9_\-]{8,}",
        r"|\bsk-[A-Za-z0-9_\-]{8,}",
        r"|\bAIza[0-9A-Za-z_\-]{20,}",
        // Anything long and token-like (checked for letters and digits below).
        r"|[A-Za-z0-9_\-]{32,}",
    ))
    .ok()
});

/// `text` with provider keys and tokens masked: `sk-…` and `sk-ant-…` keys,
/// Google `AIza…` keys, `Bearer`/`Basic` credentials, `key=`/`api_key=`/`token=`
/// query values, and strings of 32 or more letters, digits, `-` and `_` that mix
/// letters and digits.
pub fn redact_secrets(text: &str) -> String {
    let Some(re) = SECRETS.as_ref() else {
        // Unreachable: the pattern is a constant that compiles (a test checks).
        return "[redacted]".into();
    };
    re.replace_all(text, |c: &Captures<'_>| {
        let all = c.get(0).map_or("", |m| m.as_str());
        if let Some(scheme) = c.name("auth") {
            format!("{} [redacted]", scheme.as_str())
        } else if let Some(name) = c.name("param") {
            format!("{}=[redacted]", name.as_str())
        } else if all.starts_with("sk-ant-") {
            "sk-ant-[redacted]".into()
        } else if all.starts_with("sk-") {
            "sk-[redacted]".into()
        } else if all.starts_with("AIza") {
            "AIza[redacted]".into()
        } else if all.bytes().any(|b| b.is_ascii_digit())
            && all.bytes().any(|b| b.is_ascii_alphabetic())
        {
            "[redacted]".into()
        } else {
            all.to_owned()
        }
    })
    .into_owned()
}

/// Whitespace runs and control characters become one space; trimmed.
pub(super) fn one_line(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(4096));
    let mut space = false;
    for c in text.chars() {
        if c.is_whitespace() || c.is_control() {
            space = !out.is_empty();
        } else {
            if space {
                out.push(' ');
                space = false;
            }
            out.push(c);
        }
    }
    out
}

/// At most `max` characters, the last one `…` when cut.
pub(super) fn truncate_chars(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        None => text.to_owned(),
        Some(_) => {
            let keep: String = text.chars().take(max.saturating_sub(1)).collect();
            format!("{keep}…")
        }
    }
}

/// Redacted, one line, at most `max` characters.
pub(super) fn safe_line(text: &str, max: usize) -> String {
    truncate_chars(&redact_secrets(&one_line(text)), max)
}

/// Bytes of context shown before a match.
const BEFORE: usize = 160;
/// Bytes taken in all, before masking and cutting.
const WINDOW: usize = 640;
/// How far a window edge moves out to avoid cutting a token.
const TOKEN_SLACK: usize = 256;

/// A single redacted line of `text` of at most [`EXCERPT_MAX_CHARS`]: around
/// `span` (a byte range that matched) or from the start.
pub(super) fn excerpt(text: &str, span: Option<(usize, usize)>) -> String {
    let start = span.map_or(0, |(s, _)| s.saturating_sub(BEFORE));
    let start = floor_boundary(text, start);
    let end = floor_boundary(text, start.saturating_add(WINDOW));
    let (start, end) = widen_to_tokens(text, start, end);
    let cut_front = start > 0;
    let body = safe_line(&text[start..end], EXCERPT_MAX_CHARS);
    if cut_front {
        truncate_chars(&format!("…{body}"), EXCERPT_MAX_CHARS)
    } else {
        body
    }
}

fn floor_boundary(text: &str, mut at: usize) -> usize {
    at = at.min(text.len());
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

fn widen_to_tokens(text: &str, mut start: usize, mut end: usize) -> (usize, usize) {
    let floor = start.saturating_sub(TOKEN_SLACK);
    while start > floor {
        match text[..start].chars().next_back() {
            Some(c) if is_token_char(c) => start -= c.len_utf8(),
            _ => break,
        }
    }
    let ceiling = end.saturating_add(TOKEN_SLACK);
    while end < ceiling {
        match text[end..].chars().next() {
            Some(c) if is_token_char(c) => end += c.len_utf8(),
            _ => break,
        }
    }
    (start, end)
}
