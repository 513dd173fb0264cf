//! `${VAR}` interpolation in the raw text of the configuration file.
//!
//! - `${NAME}`: the value of `NAME`; an error naming the variable and the line if unset.
//! - `${NAME:-default}`: `default` when `NAME` is unset or empty.
//! - `$${`: a literal `${`.
//! - Lines whose first non-blank character is `#` (whole-line comments) are copied as is,
//!   so a commented-out setting never needs its variable.
//!
//! Values are inserted verbatim into the YAML text, so `port: ${PORT}` becomes a number.
//! A value with a line break is refused: it could change the document's structure.

use crate::error::ConfigError;

pub(crate) fn interpolate(
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<String, ConfigError> {
    let mut out = String::with_capacity(text.len());
    for (index, line) in text.split_inclusive('\n').enumerate() {
        if line.trim_start().starts_with('#') || !line.contains('$') {
            out.push_str(line);
        } else {
            interpolate_line(line, index + 1, env, &mut out)?;
        }
    }
    Ok(out)
}

fn interpolate_line(
    line: &str,
    line_no: usize,
    env: &dyn Fn(&str) -> Option<String>,
    out: &mut String,
) -> Result<(), ConfigError> {
    let mut rest = line;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let tail = &rest[pos..];
        if let Some(after) = tail.strip_prefix("$${") {
            out.push_str("${");
            rest = after;
        } else if let Some(after) = tail.strip_prefix("${") {
            let Some(end) = after.find('}') else {
                return Err(ConfigError::Interpolation {
                    line: line_no,
                    message: "unclosed `${`: expected `}` on the same line (write `$${` for a literal `${`)".into(),
                });
            };
            out.push_str(&resolve(&after[..end], line_no, env)?);
            rest = &after[end + 1..];
        } else {
            out.push('$');
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
    Ok(())
}

fn resolve(
    expr: &str,
    line_no: usize,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<String, ConfigError> {
    let (name, default) = match expr.split_once(":-") {
        Some((name, default)) => (name, Some(default)),
        None => (expr, None),
    };
    if !is_var_name(name) {
        return Err(ConfigError::Interpolation {
            line: line_no,
            message: format!(
                "`${{{}}}`: expected `${{NAME}}` or `${{NAME:-default}}` with NAME made of letters, digits and `_`",
                truncate(expr, 40)
            ),
        });
    }
    if default.is_some_and(|d| d.contains("${")) {
        return Err(ConfigError::Interpolation {
            line: line_no,
            message: format!("`${{{name}:-...}}`: nested interpolation is not supported"),
        });
    }
    let value = match (env(name), default) {
        (Some(v), Some(d)) if v.is_empty() => d.to_owned(),
        (Some(v), _) => v,
        (None, Some(d)) => d.to_owned(),
        (None, None) => {
            return Err(ConfigError::Env {
                var: name.to_owned(),
                message: format!(
                    "not set (referenced as `${{{name}}}` on line {line_no}); set it or write `${{{name}:-default}}`"
                ),
            });
        }
    };
    if value.contains(['\n', '\r']) {
        return Err(ConfigError::Env {
            var: name.to_owned(),
            message: format!(
                "value contains a line break and cannot be interpolated (line {line_no})"
            ),
        });
    }
    Ok(value)
}

fn is_var_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn truncate(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "KEY" => Some("sk-123".into()),
            "EMPTY" => Some(String::new()),
            "MULTI" => Some("a\nb".into()),
            _ => None,
        }
    }

    fn run(text: &str) -> Result<String, ConfigError> {
        interpolate(text, &env)
    }

    #[test]
    fn substitutes_and_defaults() {
        assert_eq!(run("k: ${KEY}\n").unwrap(), "k: sk-123\n");
        assert_eq!(run("k: ${NOPE:-x y}").unwrap(), "k: x y");
        assert_eq!(run("k: ${EMPTY:-d}").unwrap(), "k: d");
        assert_eq!(run("k: ${EMPTY}").unwrap(), "k: ");
        assert_eq!(run("k: ${NOPE:-}").unwrap(), "k: ");
        assert_eq!(run("a${KEY}b${KEY}").unwrap(), "ask-123bsk-123");
        assert_eq!(run("price: $5 and $").unwrap(), "price: $5 and $");
    }

    #[test]
    fn escape_gives_literal() {
        assert_eq!(run("k: $${KEY}").unwrap(), "k: ${KEY}");
        assert_eq!(run("k: $${NOPE}").unwrap(), "k: ${NOPE}");
    }

    #[test]
    fn comment_lines_are_left_alone() {
        let text = "# token: ${NOPE}\n  # ${ALSO_NOPE}\nk: ${KEY}\n";
        assert_eq!(
            run(text).unwrap(),
            "# token: ${NOPE}\n  # ${ALSO_NOPE}\nk: sk-123\n"
        );
    }

    #[test]
    fn missing_var_names_var_and_line() {
        let err = run("a: 1\nb: 2\nc: \"${OPENAI_KEY}\"\n").unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("OPENAI_KEY"), "{msg}");
        assert!(msg.contains("line 3"), "{msg}");
        assert!(matches!(err, ConfigError::Env { ref var, .. } if var == "OPENAI_KEY"));
    }

    #[test]
    fn syntax_errors() {
        let err = run("a: 1\nb: ${KEY\n").unwrap_err();
        assert!(
            matches!(err, ConfigError::Interpolation { line: 2, .. }),
            "{err}"
        );
        let err = run("b: ${1BAD}").unwrap_err();
        assert!(err.to_string().contains("line 1"), "{err}");
        let err = run("b: ${A:-${B}}").unwrap_err();
        assert!(err.to_string().contains("nested"), "{err}");
    }

    #[test]
    fn multiline_value_refused_without_echo() {
        let err = run("b: ${MULTI}").unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("MULTI") && msg.contains("line break"), "{msg}");
        assert!(!msg.contains("a\nb"));
    }
}
