//! Why a live change was refused or could not be read.

use fastgate_store::StoreError;
use fastgate_upstream::VaultError;

#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    /// The object does not exist (the message names it).
    #[error("{0} not found")]
    NotFound(String),
    /// The change contradicts the current state: a file object, a taken name, an
    /// upstream still in use.
    #[error("{0}")]
    Conflict(String),
    /// The merged configuration breaks a rule; `path` is the field path.
    #[error("{path}: {message}")]
    Invalid { path: String, message: String },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("provider key encryption: {0}")]
    Vault(#[from] VaultError),
    /// A stored spec no longer parses (written by a newer version?).
    #[error("stored {kind} '{name}' is unreadable: {message}")]
    Unreadable {
        kind: &'static str,
        name: String,
        message: String,
    },
}

impl LiveError {
    pub(crate) fn invalid(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid {
            path: path.into(),
            message: message.into(),
        }
    }
}

impl From<fastgate_config::ConfigError> for LiveError {
    fn from(e: fastgate_config::ConfigError) -> Self {
        match e.field_path() {
            Some(path) => Self::Invalid {
                path: path.to_owned(),
                message: e
                    .to_string()
                    .strip_prefix(&format!("{path}: "))
                    .map(str::to_owned)
                    .unwrap_or_else(|| e.to_string()),
            },
            None => Self::invalid("", e.to_string()),
        }
    }
}
