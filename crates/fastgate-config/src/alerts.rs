//! `alerts:` — channels that rule firings and credential state changes notify.
//! Sent by `fastgate_upstream::alerts`.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::secret::Secret;

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AlertConfig {
    pub name: String,
    pub kind: AlertKind,
    /// The webhook URL (often carries a token: kept secret, never shown).
    pub url: Secret<String>,
    /// Signing secret (Feishu and DingTalk "signature" security setting).
    #[serde(default)]
    pub secret: Option<Secret<String>>,
    /// At most one message per credential and rule within this period.
    #[serde(default = "default_min_interval", with = "humantime_serde")]
    pub min_interval: Duration,
}

fn default_min_interval() -> Duration {
    Duration::from_secs(300)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertKind {
    /// A JSON document describing the event, POSTed as is.
    Webhook,
    Feishu,
    Dingtalk,
    Wecom,
    Slack,
}
