//! The one error type of this crate. Every variant displays as
//! `<where>: <one-line reason>` and never contains a secret value.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The configuration file could not be read.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// `${...}` syntax error in the raw text (unclosed brace, bad variable name).
    #[error("line {line}: {message}")]
    Interpolation { line: usize, message: String },
    /// An environment variable is missing, unusable or not a known override.
    #[error("environment variable {var}: {message}")]
    Env { var: String, message: String },
    /// The text is not well-formed YAML. `message` carries line and column.
    #[error("YAML syntax: {message}")]
    Yaml {
        line: Option<usize>,
        message: String,
    },
    /// The document does not fit the model: unknown field, wrong type, bad duration.
    /// `path` is the field path, e.g. `routes[0].timeout.connect`.
    #[error("{path}: {message}")]
    Parse { path: String, message: String },
    /// The document parsed but breaks a rule (cross reference, range, syntax of a value).
    #[error("{path}: {message}")]
    Invalid { path: String, message: String },
}

impl ConfigError {
    /// The field path of a `Parse` or `Invalid` error.
    pub fn field_path(&self) -> Option<&str> {
        match self {
            Self::Parse { path, .. } | Self::Invalid { path, .. } => Some(path),
            _ => None,
        }
    }

    pub(crate) fn invalid(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid {
            path: path.into(),
            message: message.into(),
        }
    }
}
