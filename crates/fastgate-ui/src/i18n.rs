//! The UI's two languages. The server renders a page's fixed text in the chosen
//! language and embeds the same dictionary (as JSON data, never as script) for the
//! text the page's script writes. The choice: the `fg_lang` cookie (set by the
//! switch), else the browser's `Accept-Language`, else English.

use http::{HeaderMap, header};

/// A UI language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    En,
    Zh,
}

/// The language cookie's name.
pub const COOKIE: &str = "fg_lang";

impl Lang {
    /// `en` / `zh`.
    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Zh => "zh",
        }
    }

    /// The `lang` attribute of the page.
    pub fn html_lang(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Zh => "zh-CN",
        }
    }

    pub fn parse(code: &str) -> Option<Lang> {
        match code {
            "en" => Some(Lang::En),
            "zh" => Some(Lang::Zh),
            _ => None,
        }
    }

    /// The language a request asks for.
    pub fn of(headers: &HeaderMap) -> Lang {
        let cookie = headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|p| p.trim().split_once('='))
            .find(|(n, _)| *n == COOKIE)
            .and_then(|(_, v)| Lang::parse(v));
        if let Some(lang) = cookie {
            return lang;
        }
        let accept = headers
            .get(header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        // The first language the browser lists decides.
        let first = accept.split(',').next().unwrap_or("").trim();
        if first.to_ascii_lowercase().starts_with("zh") {
            Lang::Zh
        } else {
            Lang::En
        }
    }

    /// The text of `key` (the key itself when missing, so a gap shows, never breaks).
    pub fn t(self, key: &'static str) -> &'static str {
        all_text()
            .find(|(k, _, _)| *k == key)
            .map_or(key, |(_, en, zh)| match self {
                Lang::En => en,
                Lang::Zh => zh,
            })
    }

    /// The whole dictionary for this language as a JSON object (for the page's script).
    pub fn dictionary_json(self) -> String {
        let map: serde_json::Map<String, serde_json::Value> = all_text()
            .map(|(k, en, zh)| {
                let text = match self {
                    Lang::En => en,
                    Lang::Zh => zh,
                };
                ((*k).to_owned(), serde_json::Value::from(*text))
            })
            .collect();
        serde_json::Value::Object(map).to_string()
    }
}

/// Every entry: the shell's and the common ones here, the management pages' in
/// `i18n_manage`.
fn all_text() -> impl Iterator<Item = &'static (&'static str, &'static str, &'static str)> {
    TEXT.iter().chain(crate::i18n_manage::TEXT.iter())
}

/// (key, English, Chinese).
const TEXT: &[(&str, &str, &str)] = &[
    ("app.title", "FastGate admin", "FastGate 管理"),
    ("nav.dashboard", "Dashboard", "仪表盘"),
    ("nav.keys", "Keys", "密钥"),
    ("nav.routes", "Routes", "路由"),
    ("nav.upstreams", "Upstreams", "上游"),
    ("nav.models", "Models", "模型"),
    ("nav.rules", "Rules", "规则"),
    ("nav.logs", "Logs", "日志"),
    ("nav.settings", "Settings", "设置"),
    ("nav.events", "Admin events", "管理事件"),
    ("nav.signout", "Sign out", "退出登录"),
    ("nav.api", "API reference", "API 参考"),
    ("lang.switch", "中文", "English"),
    ("signin.title", "Sign in", "登录"),
    ("signin.token", "Admin token", "管理令牌"),
    ("signin.submit", "Sign in", "登录"),
    (
        "signin.hint",
        "The admin token is in data/admin_token or the config's admin.token.",
        "管理令牌位于 data/admin_token 或配置中的 admin.token。",
    ),
    (
        "signin.wrong",
        "That token is not the admin token.",
        "该令牌不是管理令牌。",
    ),
    ("common.loading", "Loading…", "加载中…"),
    ("common.error", "Could not load", "加载失败"),
    ("common.refresh", "Refresh", "刷新"),
    (
        "common.autorefresh",
        "Auto-refresh (30 s)",
        "自动刷新（30 秒）",
    ),
    ("common.search", "Search", "搜索"),
    ("common.prev", "Previous", "上一页"),
    ("common.next", "Next", "下一页"),
    ("common.none", "Nothing yet", "暂无数据"),
    ("common.copy", "Copy", "复制"),
    ("common.copied", "Copied", "已复制"),
    ("common.create", "Create", "创建"),
    ("common.cancel", "Cancel", "取消"),
    ("common.revoke", "Revoke", "吊销"),
    ("common.details", "Details", "详情"),
    ("dash.requests", "Requests (24 h)", "请求数（24 小时）"),
    ("dash.success", "Success rate", "成功率"),
    ("dash.latency", "Latency avg / p95", "延迟 平均 / p95"),
    ("dash.tokens", "Tokens in / out", "Token 输入 / 输出"),
    ("dash.cost", "Cost", "费用"),
    ("dash.active_keys", "Active keys", "活跃密钥"),
    ("dash.latest", "Latest requests", "最近请求"),
    (
        "dash.trend",
        "Requests and errors, last 24 h",
        "最近 24 小时请求与错误",
    ),
    ("dash.top_models", "Top models", "热门模型"),
    ("dash.top_keys", "Top keys", "热门密钥"),
    ("dash.statuses", "Status codes", "状态码分布"),
    ("keys.name", "Name", "名称"),
    ("keys.prefix", "Key", "密钥"),
    ("keys.status", "Status", "状态"),
    ("keys.created", "Created", "创建时间"),
    ("keys.expires", "Expires", "过期时间"),
    ("keys.new", "New key", "新建密钥"),
    (
        "keys.once",
        "Copy this key now: it is shown only once.",
        "请立即复制此密钥：它只显示这一次。",
    ),
    ("keys.active", "active", "启用"),
    ("keys.rotate", "Rotate", "轮换"),
    ("logs.status_min", "Status ≥", "状态码 ≥"),
    ("keys.revoked", "revoked", "已吊销"),
    ("logs.time", "Time", "时间"),
    ("logs.method", "Method", "方法"),
    ("logs.path", "Path", "路径"),
    ("logs.status", "Status", "状态码"),
    ("logs.model", "Model", "模型"),
    ("logs.key", "Key", "密钥"),
    ("logs.duration", "Duration", "耗时"),
    ("logs.export", "Export", "导出"),
    ("common.save", "Save", "保存"),
    ("dash.top_routes", "Top routes", "热门路由"),
    (
        "dash.credentials_not_active",
        "Credentials not active",
        "未启用的上游凭据",
    ),
    ("dash.see_upstreams", "See upstreams", "查看上游"),
    ("keys.disabled", "disabled", "已停用"),
    ("keys.enable", "Enable", "启用"),
    ("keys.edit", "Edit", "编辑"),
    ("keys.usage", "Usage", "用量"),
    (
        "keys.usage_chart",
        "Requests and errors with this key, last 24 h",
        "该密钥最近 24 小时的请求与错误",
    ),
    ("keys.used_requests", "Requests this period", "本周期请求数"),
    ("keys.used_tokens", "Tokens", "Token 数"),
    ("keys.used_cost", "Cost this period", "本周期费用"),
    (
        "keys.remaining",
        "Remaining (requests / tokens / cost)",
        "剩余（请求 / Token / 费用）",
    ),
    ("keys.limits", "Limits", "限额"),
    ("keys.quota", "Quota", "配额"),
    ("keys.allowed_routes", "Allowed routes", "允许的路由"),
    ("keys.allowed_models", "Allowed models", "允许的模型"),
    (
        "keys.list_hint",
        "Comma-separated; empty allows all",
        "以逗号分隔；留空表示全部允许",
    ),
    ("keys.rpm", "Requests per minute", "每分钟请求数"),
    ("keys.rpd", "Requests per day", "每天请求数"),
    ("keys.tpm", "Tokens per minute", "每分钟 Token 数"),
    (
        "keys.concurrent",
        "Max concurrent requests",
        "最大并发请求数",
    ),
    ("keys.concurrent_short", "concurrent", "并发"),
    ("keys.per_min", "/min", "/分钟"),
    ("keys.per_day", "/day", "/天"),
    ("keys.quota_requests", "Quota: requests", "配额：请求数"),
    ("keys.quota_tokens", "Quota: tokens", "配额：Token 数"),
    ("keys.quota_cost", "Quota: cost (USD)", "配额：费用（美元）"),
    ("keys.period", "Period", "周期"),
    ("keys.period_never", "whole lifetime", "整个有效期"),
    ("keys.period_daily", "daily", "每天"),
    ("keys.period_monthly", "monthly", "每月"),
    (
        "keys.empty_unlimited",
        "An empty field means no limit.",
        "留空表示不限制。",
    ),
    ("keys.saved", "Saved.", "已保存。"),
    (
        "keys.bad_time",
        "Expiry: enter a date and time.",
        "过期时间：请输入日期和时间。",
    ),
    ("keys.select_all", "Select all on this page", "全选本页"),
    ("keys.select_first", "Select keys first.", "请先选择密钥。"),
    ("keys.batch_revoke", "Revoke selected", "吊销所选"),
    ("keys.batch_enable", "Enable selected", "启用所选"),
    ("keys.batch_disable", "Disable selected", "停用所选"),
    ("keys.batch_done", "Changed:", "已更改："),
    ("keys.batch_failed", "failed:", "失败："),
    ("logs.route", "Route", "路由"),
    ("logs.upstream", "Upstream", "上游"),
    ("logs.any_key", "Any key", "全部密钥"),
    ("logs.from", "From", "开始时间"),
    ("logs.to", "To", "结束时间"),
    ("logs.clear", "Clear", "清除"),
    (
        "soon",
        "This page comes with a later release.",
        "此页面将在后续版本提供。",
    ),
];

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn choice_and_lookup() {
        let mut h = HeaderMap::new();
        assert_eq!(Lang::of(&h), Lang::En);
        h.insert(
            header::ACCEPT_LANGUAGE,
            HeaderValue::from_static("zh-CN,zh;q=0.9,en;q=0.8"),
        );
        assert_eq!(Lang::of(&h), Lang::Zh);
        h.insert(header::COOKIE, HeaderValue::from_static("fg_lang=en"));
        assert_eq!(Lang::of(&h), Lang::En, "the switch wins");
        assert_eq!(Lang::Zh.t("nav.keys"), "密钥");
        assert_eq!(Lang::En.t("no.such.key"), "no.such.key");
        let d: serde_json::Value =
            serde_json::from_str(&Lang::Zh.dictionary_json()).unwrap_or_default();
        assert_eq!(d["nav.logs"], "日志");
    }

    #[test]
    fn every_key_is_unique() {
        let mut keys: Vec<&str> = all_text().map(|(k, _, _)| *k).collect();
        keys.sort_unstable();
        let n = keys.len();
        keys.dedup();
        assert_eq!(keys.len(), n);
    }
}
