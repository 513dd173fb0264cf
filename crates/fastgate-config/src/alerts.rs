//! `alerts:` — channels that rule firings and credential state changes notify.
//! Sent by `fastgate_upstream::alerts`.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::secret::Secret;

#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AlertConfig {
    /// Name rules use in their `alert` actions: letters, digits, `_`, `.`, `-`; unique.
    pub name: String,
    /// Which platform the URL belongs to; decides the message format and signing.
    pub kind: AlertKind,
    /// The webhook URL (often carries a token: kept secret, never shown).
    #[schema(value_type = String, format = Password)]
    pub url: Secret<String>,
    /// Signing secret (Feishu and DingTalk "signature" security setting). Refused for
    /// the other kinds, which do not sign.
    #[serde(default)]
    #[schema(value_type = Option<String>, format = Password)]
    pub secret: Option<Secret<String>>,
    /// At most one message per upstream, credential and rule within this period
    /// (default 5m; `0s` sends every event).
    #[serde(default = "default_min_interval", with = "humantime_serde")]
    #[schema(value_type = String, example = "30s")]
    pub min_interval: Duration,
}

fn default_min_interval() -> Duration {
    Duration::from_secs(300)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum AlertKind {
    /// A JSON document describing the event, POSTed as is.
    Webhook,
    /// Feishu / Lark custom bot (`msg_type: text`), optionally signed.
    Feishu,
    /// DingTalk custom robot (`msgtype: text`), optionally signed in the URL.
    Dingtalk,
    /// WeCom (WeChat Work) group robot (`msgtype: text`).
    Wecom,
    /// Slack incoming webhook (`{"text": …}`).
    Slack,
}
