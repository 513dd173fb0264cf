//! Credential states and the record of a change.

use std::sync::Arc;

/// Where a credential stands. Only `active` ones serve requests.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
#[repr(u8)]
pub enum CredentialState {
    Active = 0,
    /// Out of rotation until `until` (a rule, a built-in or by hand).
    Disabled = 1,
    /// Out of rotation until someone re-enables it.
    Banned = 2,
    /// Its daily quota ran out: back at the next reset.
    Exhausted = 3,
}

impl CredentialState {
    pub(crate) fn from_u8(v: u8) -> Self {
        match v {
            1 => Self::Disabled,
            2 => Self::Banned,
            3 => Self::Exhausted,
            _ => Self::Active,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Disabled => "disabled",
            Self::Banned => "banned",
            Self::Exhausted => "exhausted",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "active" => Some(Self::Active),
            "disabled" => Some(Self::Disabled),
            "banned" => Some(Self::Banned),
            "exhausted" => Some(Self::Exhausted),
            _ => None,
        }
    }
}

impl std::fmt::Display for CredentialState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One state change, to store, show and alert on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    pub upstream: Arc<str>,
    pub credential: Arc<str>,
    pub before: CredentialState,
    pub after: CredentialState,
    pub reason: String,
    pub since_ms: i64,
    pub until_ms: Option<i64>,
    pub changed_by: String,
}
