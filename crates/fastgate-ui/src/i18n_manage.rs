//! The management pages' text (routes, upstreams and credentials, rules, models):
//! (key, English, Chinese). Kept apart from the shell's dictionary in `i18n`; both
//! are served to the page as one.

pub(crate) const TEXT: &[(&str, &str, &str)] = &[
    ("manage.title", "Manage", "管理"),
    // Common words of the management pages.
    ("manage.name", "Name", "名称"),
    (
        "manage.name_hint",
        "Letters, digits, _ . - only",
        "仅限字母、数字、_ . -",
    ),
    ("manage.state", "State", "状态"),
    ("manage.status", "Status", "状态码"),
    ("manage.source", "Source", "来源"),
    ("manage.source_config", "config file", "配置文件"),
    ("manage.source_api", "API", "API"),
    ("manage.enabled", "enabled", "已启用"),
    ("manage.disabled", "disabled", "已停用"),
    ("manage.enable", "Enable", "启用"),
    ("manage.disable", "Disable", "停用"),
    ("manage.ban", "Ban", "封禁"),
    ("manage.edit", "Edit", "编辑"),
    ("manage.editing", "Edit", "编辑"),
    ("manage.view", "View", "查看"),
    ("manage.close", "Close", "关闭"),
    ("manage.save", "Save", "保存"),
    ("manage.saved", "Saved", "已保存"),
    ("manage.delete", "Delete", "删除"),
    ("manage.deleted", "Deleted", "已删除"),
    (
        "manage.confirm_delete",
        "Delete for good?",
        "确定永久删除？",
    ),
    ("manage.all", "all", "全部"),
    ("manage.any", "any", "任意"),
    ("manage.optional", "optional", "可选"),
    (
        "manage.read_only",
        "Defined in the configuration file: read-only here. Edit the file and reload.",
        "定义于配置文件：此处只读。请修改配置文件并重新加载。",
    ),
    (
        "manage.advanced",
        "Advanced: the whole object as JSON",
        "高级：以 JSON 编辑完整对象",
    ),
    ("manage.json_full", "JSON", "JSON"),
    (
        "manage.json_hint",
        "Every field of the route; kept in step with the inputs above. Values shown as [redacted] keep their stored value.",
        "路由的全部字段，与上方输入框同步。显示为 [redacted] 的值将保留已存储的值。",
    ),
    ("manage.json_invalid", "Not valid JSON", "JSON 格式无效"),
    (
        "manage.json_object",
        "Expected a JSON object",
        "应为 JSON 对象",
    ),
    ("manage.upstream", "Upstream", "上游"),
    ("manage.upstreams", "Upstreams", "上游"),
    ("manage.method", "Method", "方法"),
    ("manage.target_url", "Target URL", "目标 URL"),
    ("manage.credential", "Credential", "凭据"),
    ("manage.reason", "Reason", "原因"),
    ("manage.header", "Header", "请求头"),
    ("manage.value", "Value", "值"),
    ("manage.error", "Error", "错误"),
    ("manage.duration", "Duration", "耗时"),
    ("manage.ttfb", "Time to first byte", "首字节时间"),
    ("manage.kind", "Kind", "类型"),
    ("manage.time", "Time", "时间"),
    // Routes.
    ("manage.route_new", "New route", "新建路由"),
    ("manage.route_path", "Path", "路径"),
    (
        "manage.route_path_hint",
        "A pattern: /v1/chat/completions, /v1/{model}/x, /or/**",
        "路径模式：/v1/chat/completions、/v1/{model}/x、/or/**",
    ),
    ("manage.route_methods", "Methods", "方法"),
    (
        "manage.route_methods_hint",
        "Comma-separated; empty: any",
        "以逗号分隔；留空表示任意",
    ),
    ("manage.route_priority", "Priority", "优先级"),
    (
        "manage.route_priority_hint",
        "Lower wins (default 100)",
        "数值越小越优先（默认 100）",
    ),
    ("manage.route_target", "Target path", "目标路径"),
    ("manage.route_retries", "Retries", "重试次数"),
    ("manage.route_strip", "Strip the prefix", "去除路径前缀"),
    ("manage.route_auth", "Needs a gateway key", "需要网关密钥"),
    ("manage.route_on", "Route enabled", "路由已启用"),
    ("manage.route_off", "Route disabled", "路由已停用"),
    ("manage.test_title", "Dry run", "试运行"),
    (
        "manage.test_hint",
        "What a request would do: the route it matches and what would be sent upstream. Nothing is sent.",
        "查看请求会如何处理：匹配的路由及将发往上游的内容。不会真正发送。",
    ),
    (
        "manage.test_headers",
        "Headers (name: value, one a line)",
        "请求头（每行一个 名称: 值）",
    ),
    ("manage.test_body", "Body (JSON)", "请求体（JSON）"),
    ("manage.test_run", "Run the dry run", "执行试运行"),
    ("manage.test_matched", "Matches route", "匹配路由"),
    (
        "manage.test_unmatched",
        "No route matches",
        "没有匹配的路由",
    ),
    (
        "manage.sent_headers",
        "Headers sent upstream",
        "发往上游的请求头",
    ),
    ("manage.sent_body", "Body sent upstream", "发往上游的请求体"),
    ("manage.no_body", "No body", "无请求体"),
    ("manage.probe", "Probe", "探测"),
    ("manage.probe_title", "Probe of route", "路由探测"),
    ("manage.probe_failed", "no answer", "无响应"),
    ("manage.response_headers", "Response headers", "响应头"),
    (
        "manage.body_preview",
        "Start of the response body",
        "响应体开头",
    ),
    // Upstreams and credentials.
    ("manage.upstream_new", "New upstream", "新建上游"),
    (
        "manage.upstream_json_hint",
        "The upstream in the configuration file's shape. Its provider keys are managed in the credentials table.",
        "按配置文件格式填写上游。其提供商密钥在凭据表中管理。",
    ),
    ("manage.base_url", "Base URL", "基础 URL"),
    ("manage.credentials", "Credentials", "凭据"),
    ("manage.key", "Provider key", "提供商密钥"),
    ("manage.key_hint", "Key", "密钥"),
    ("manage.weight", "Weight", "权重"),
    ("manage.since", "Since", "起始时间"),
    ("manage.until", "Until", "截止时间"),
    ("manage.changed_by", "Changed by", "修改者"),
    (
        "manage.counters",
        "Requests / errors / tokens",
        "请求 / 错误 / Token",
    ),
    ("manage.circuit", "Circuit", "熔断"),
    ("manage.last_error", "Last error", "最近错误"),
    ("manage.last_used", "Last used", "最近使用"),
    ("manage.quota", "Quota today", "今日配额"),
    ("manage.requests", "requests", "请求"),
    ("manage.tokens", "tokens", "Token"),
    ("manage.cred_add", "Add a credential", "添加凭据"),
    ("manage.cred_active", "active", "可用"),
    ("manage.cred_disabled", "disabled", "已停用"),
    ("manage.cred_banned", "banned", "已封禁"),
    ("manage.cred_exhausted", "exhausted", "配额用尽"),
    (
        "manage.state_hint",
        "For Disable and Ban:",
        "停用或封禁时：",
    ),
    (
        "manage.reason_optional",
        "Reason (optional)",
        "原因（可选）",
    ),
    (
        "manage.until_hint",
        "Disabled until: 2h, or a time",
        "停用至：2h 或具体时间",
    ),
    ("manage.master_key", "Master key", "主密钥"),
    // Rules.
    ("manage.rule", "Rule", "规则"),
    ("manage.rule_new", "New rule", "新建规则"),
    (
        "manage.rule_json_hint",
        "The rule in the configuration file's shape (when, threshold, cooldown, actions).",
        "按配置文件格式填写规则（when、threshold、cooldown、actions）。",
    ),
    ("manage.description", "Description", "描述"),
    ("manage.when", "When", "条件"),
    ("manage.actions", "Actions", "动作"),
    ("manage.action", "Action", "动作"),
    ("manage.excerpt", "Excerpt", "摘录"),
    ("manage.firings", "Firings", "触发记录"),
    ("manage.recent_firings", "Recent firings", "最近触发"),
    ("manage.older", "Older", "更早"),
    (
        "manage.builtin_on",
        "Built-in rules apply to answers no rule matched (401/403 disable for an hour, 429 cools down).",
        "未被任何规则匹配的响应由内置规则处理（401/403 停用一小时，429 冷却）。",
    ),
    (
        "manage.builtin_off",
        "Built-in rules are off (health.builtin_rules: false).",
        "内置规则已关闭（health.builtin_rules: false）。",
    ),
    // Models.
    ("manage.deployments", "Deployments", "部署"),
    ("manage.fallbacks", "Fallbacks", "回退"),
];

#[cfg(test)]
mod tests {
    use super::TEXT;

    /// Every `t("manage.…")` of the pages' scripts has an entry, in both languages.
    #[test]
    fn every_key_of_the_script_is_translated() {
        let script = [
            include_str!("../assets/manage.js"),
            include_str!("../assets/routes.js"),
        ]
        .concat();
        let mut missing = Vec::new();
        for (i, _) in script.match_indices("t(\"manage.") {
            let rest = &script[i + 3..];
            let key = &rest[..rest.find('"').unwrap_or(rest.len())];
            if !TEXT.iter().any(|(k, _, _)| *k == key) {
                missing.push(key.to_owned());
            }
        }
        assert!(missing.is_empty(), "no dictionary entry for {missing:?}");
        for state in ["active", "disabled", "banned", "exhausted"] {
            let key = format!("manage.cred_{state}");
            assert!(TEXT.iter().any(|(k, _, _)| *k == key), "{key}");
        }
        for (key, en, zh) in TEXT {
            assert!(!en.is_empty() && !zh.is_empty(), "{key}");
        }
    }
}
