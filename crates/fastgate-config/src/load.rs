//! The loading pipeline: read -> `${VAR}` interpolation -> YAML -> environment overrides
//! -> typed `Config` (errors carry the field path) -> defaults -> validation.

use std::path::{Path, PathBuf};

use yaml_serde::Value;

use crate::env::{self, Sources};
use crate::error::ConfigError;
use crate::interpolate::interpolate;
use crate::model::Config;
use crate::validate::validate_all;

/// `data_dir` when the file leaves it empty.
pub const DEFAULT_DATA_DIR: &str = "./data";

/// Loads, overrides and validates the configuration; the first problem is the error.
///
/// `None` loads the embedded defaults (an empty document) plus environment overrides.
/// Environment variables come from the process; `FASTGATE_…__…` variables that name no
/// setting are refused.
pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
    check(path).map_err(first)
}

/// Like [`load`], but reports every validation problem (for `fastgate check`). A file
/// that cannot be read, interpolated or parsed gives a single error.
pub fn check(path: Option<&Path>) -> Result<Config, Vec<ConfigError>> {
    let names: Vec<String> = std::env::vars_os()
        .filter_map(|(name, _)| name.into_string().ok())
        .collect();
    env::check_names(names.iter().map(String::as_str)).map_err(|e| vec![e])?;
    let lookup = |name: &str| std::env::var(name).ok();
    match path {
        None => check_str("", &lookup),
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|source| {
                vec![ConfigError::Io {
                    path: path.to_path_buf(),
                    source,
                }]
            })?;
            check_str(&text, &lookup)
        }
    }
}

/// The testable core of [`load`]: `env` looks up one environment variable by name
/// (for `${VAR}` interpolation and for overrides).
pub fn load_str(yaml: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
    check_str(yaml, env).map_err(first)
}

/// The testable core of [`check`]: every validation problem, in document order.
pub fn check_str(
    yaml: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, Vec<ConfigError>> {
    let (cfg, sources) = parse(yaml, env).map_err(|e| vec![e])?;
    let errors = validate_all(&cfg);
    if errors.is_empty() {
        Ok(cfg)
    } else {
        Err(errors.into_iter().map(|e| annotate(e, &sources)).collect())
    }
}

fn first(errors: Vec<ConfigError>) -> ConfigError {
    // Callers only fail with at least one error; the fallback is never reached.
    errors
        .into_iter()
        .next()
        .unwrap_or_else(|| ConfigError::invalid(".", "invalid configuration"))
}

/// Interpolation, YAML, overrides, typed model and defaults; no validation.
fn parse(
    yaml: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(Config, Sources), ConfigError> {
    let text = interpolate(yaml, env)?;
    let mut doc = parse_yaml(&text)?;
    let sources = env::apply(&mut doc, env)?;
    let mut cfg = deserialize(doc).map_err(|e| annotate(e, &sources))?;
    if cfg.data_dir.as_os_str().is_empty() {
        cfg.data_dir = PathBuf::from(DEFAULT_DATA_DIR);
    }
    Ok((cfg, sources))
}

impl Config {
    /// `database.url`, or `sqlite://<data_dir>/fastgate.db` when it is empty.
    /// The result may hold a password: never log it.
    pub fn database_url(&self) -> String {
        let url = self.database.url.expose();
        if !url.is_empty() {
            return url.clone();
        }
        let dir = if self.data_dir.as_os_str().is_empty() {
            Path::new(DEFAULT_DATA_DIR)
        } else {
            self.data_dir.as_path()
        };
        format!("sqlite://{}", dir.join("fastgate.db").display())
    }

    /// `data_dir`, or the default one when it is empty.
    pub fn data_dir_or_default(&self) -> &Path {
        if self.data_dir.as_os_str().is_empty() {
            Path::new(DEFAULT_DATA_DIR)
        } else {
            self.data_dir.as_path()
        }
    }

    /// `master_key_file`, or `<data_dir>/master_key` when it is empty.
    pub fn master_key_path(&self) -> std::path::PathBuf {
        if self.master_key_file.as_os_str().is_empty() {
            self.data_dir_or_default().join("master_key")
        } else {
            self.master_key_file.clone()
        }
    }
}

fn parse_yaml(text: &str) -> Result<Value, ConfigError> {
    let mut doc: Value = yaml_serde::from_str(text).map_err(|e| ConfigError::Yaml {
        line: e.location().map(|l| l.line()),
        message: e.to_string(),
    })?;
    doc.apply_merge().map_err(|e| ConfigError::Yaml {
        line: e.location().map(|l| l.line()),
        message: format!("merge key `<<`: {e}"),
    })?;
    Ok(doc)
}

fn deserialize(doc: Value) -> Result<Config, ConfigError> {
    serde_path_to_error::deserialize(doc).map_err(|e| {
        let path = match e.path().to_string() {
            p if p == "." => "(document)".to_owned(),
            p => p,
        };
        let message = friendly(&e.inner().to_string());
        let message = if path == "(document)" && message.starts_with("invalid type") {
            "must be a mapping of settings (server:, upstreams:, routes:, ...)".to_owned()
        } else if holds_secret(&path) {
            redact_value(&message)
        } else {
            message
        };
        ConfigError::Parse { path, message }
    })
}

/// serde's wording, for people who write YAML rather than Rust.
fn friendly(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(pos) = rest.find("struct ") {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + "struct ".len()..];
        let end = after
            .find(|c: char| !c.is_ascii_alphanumeric())
            .unwrap_or(after.len());
        out.push_str("a mapping");
        rest = &after[end..];
    }
    out.push_str(rest);
    if out.ends_with("expected a duration") {
        out.push_str(" such as 5s, 250ms or 1m 30s");
    }
    out
}

/// Paths whose value is, or contains, a secret: a type error there must not echo it.
fn holds_secret(path: &str) -> bool {
    matches!(path, "database" | "database.url" | "admin" | "admin.token")
        || (path.starts_with("upstreams[") && path.contains("].credentials"))
}

/// serde's `invalid type: string "sk-…", expected …` without the value.
fn redact_value(message: &str) -> String {
    let is_value_error =
        message.starts_with("invalid type") || message.starts_with("invalid value");
    match message.rsplit_once(", expected ") {
        Some((_, expected)) if is_value_error => {
            format!(
                "invalid type or value (not shown: the field holds a secret), expected {expected}"
            )
        }
        _ if is_value_error => "invalid type or value (not shown: the field holds a secret)".into(),
        _ => message.to_owned(),
    }
}

fn annotate(err: ConfigError, sources: &Sources) -> ConfigError {
    match err {
        ConfigError::Parse { path, message } => {
            let message = with_source(&path, message, sources);
            ConfigError::Parse { path, message }
        }
        ConfigError::Invalid { path, message } => {
            let message = with_source(&path, message, sources);
            ConfigError::Invalid { path, message }
        }
        other => other,
    }
}

fn with_source(path: &str, message: String, sources: &Sources) -> String {
    match env::source_of(path, sources) {
        Some(var) => format!("{message} (set by environment variable {var})"),
        None => message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction_keeps_expectation() {
        let msg =
            redact_value("invalid type: string \"sk-canary\", expected struct CredentialConfig");
        assert!(!msg.contains("canary"));
        assert!(msg.ends_with("expected struct CredentialConfig"), "{msg}");
        assert_eq!(
            friendly("invalid type: string \"x\", expected struct CredentialConfig"),
            "invalid type: string \"x\", expected a mapping"
        );
        assert_eq!(
            friendly("invalid type: integer `5`, expected a duration"),
            "invalid type: integer `5`, expected a duration such as 5s, 250ms or 1m 30s"
        );
        assert_eq!(redact_value("unknown field `x`"), "unknown field `x`");
    }

    #[test]
    fn secret_paths() {
        assert!(holds_secret("upstreams[3].credentials[0]"));
        assert!(holds_secret("upstreams[3].credentials[0].key"));
        assert!(holds_secret("admin.token"));
        assert!(!holds_secret("upstreams[3].base_url"));
    }
}
