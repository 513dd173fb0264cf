//! `rules:` checks: names, conditions (statuses, regexes, JSONPath, headers),
//! threshold, actions and the names they refer to (upstreams, alert channels).
//! `fastgate_upstream::rules::RuleSet::compile` refuses nothing these accept.

use std::collections::HashSet;

use super::Report;
use super::http::{check_header_name, check_name, header_value_problem};
use crate::model::Config;
use crate::rules::{
    ActionConfig, Condition, HeaderCondition, JsonPathCondition, MAX_THRESHOLD_HITS, RuleConfig,
    StatusMatch,
};

pub(super) fn check(cfg: &Config, r: &mut Report) {
    let upstreams: HashSet<&str> = cfg.upstreams.iter().map(|u| u.name.as_str()).collect();
    let channels: HashSet<&str> = cfg.alerts.iter().map(|a| a.name.as_str()).collect();
    let mut names: HashSet<&str> = HashSet::with_capacity(cfg.rules.len());
    for (i, rule) in cfg.rules.iter().enumerate() {
        let path = format!("rules[{i}]");
        let name_path = format!("{path}.name");
        if check_name(&name_path, &rule.name, r) && !names.insert(&rule.name) {
            r.err(&name_path, format!("duplicate rule name `{}`", rule.name));
        }
        scope(&path, rule, &upstreams, r);
        condition(&format!("{path}.when"), &rule.when, r);
        threshold(&path, rule, r);
        actions(&path, &rule.actions, &channels, r);
    }
}

fn scope(path: &str, rule: &RuleConfig, upstreams: &HashSet<&str>, r: &mut Report) {
    for (j, name) in rule.upstreams.iter().enumerate() {
        if !upstreams.contains(name.as_str()) {
            r.err(
                format!("{path}.upstreams[{j}]"),
                format!("unknown upstream `{name}` (not in upstreams[].name)"),
            );
        }
    }
    for (j, name) in rule.credentials.iter().enumerate() {
        if name.is_empty() {
            r.err(format!("{path}.credentials[{j}]"), "must not be empty");
        }
    }
}

fn threshold(path: &str, rule: &RuleConfig, r: &mut Report) {
    let t = &rule.threshold;
    if t.hits == 0 {
        r.err(format!("{path}.threshold.hits"), "must be at least 1");
    } else if t.hits > MAX_THRESHOLD_HITS {
        r.err(
            format!("{path}.threshold.hits"),
            format!("at most {MAX_THRESHOLD_HITS}"),
        );
    }
    r.positive(&format!("{path}.threshold.within"), t.within);
}

fn actions(path: &str, actions: &[ActionConfig], channels: &HashSet<&str>, r: &mut Report) {
    if actions.is_empty() {
        r.err(
            format!("{path}.actions"),
            "give at least one action (disable, ban, alert or log)",
        );
    }
    for (k, action) in actions.iter().enumerate() {
        let path = format!("{path}.actions[{k}]");
        match action {
            ActionConfig::Disable(d) => r.positive(&format!("{path}.disable"), *d),
            ActionConfig::Ban(false) => r.err(
                format!("{path}.ban"),
                "`ban: false` does nothing; write `ban: true` or remove the action",
            ),
            ActionConfig::Log(false) => r.err(
                format!("{path}.log"),
                "`log: false` does nothing; write `log: true` or remove the action",
            ),
            ActionConfig::Ban(true) | ActionConfig::Log(true) => {}
            ActionConfig::Alert(names) => {
                if names.is_empty() {
                    r.err(
                        format!("{path}.alert"),
                        "names no channel; list alerts[].name values",
                    );
                }
                for (m, name) in names.iter().enumerate() {
                    if !channels.contains(name.as_str()) {
                        r.err(
                            format!("{path}.alert[{m}]"),
                            format!("unknown alert channel `{name}` (not in alerts[].name)"),
                        );
                    }
                }
            }
        }
    }
}

fn condition(path: &str, c: &Condition, r: &mut Report) {
    if c.is_empty() {
        r.err(
            path,
            "an empty condition; give at least one of status, body_contains, body_regex, \
             json_path, header, latency_ms_over, transport_error, all, any, not",
        );
        return;
    }
    for (key, list) in [("all", &c.all), ("any", &c.any)] {
        if let Some(list) = list {
            if list.is_empty() {
                r.err(
                    format!("{path}.{key}"),
                    "an empty list; give at least one condition",
                );
            }
            for (j, inner) in list.iter().enumerate() {
                condition(&format!("{path}.{key}[{j}]"), inner, r);
            }
        }
    }
    if let Some(inner) = &c.not {
        condition(&format!("{path}.not"), inner, r);
    }
    if let Some(status) = &c.status {
        let items = status.items();
        if items.is_empty() {
            r.err(
                format!("{path}.status"),
                "an empty list; give at least one status",
            );
        }
        let one = matches!(status, StatusMatch::One(_));
        for (j, item) in items.iter().enumerate() {
            if let Err(problem) = item.bounds() {
                let p = if one {
                    format!("{path}.status")
                } else {
                    format!("{path}.status[{j}]")
                };
                r.err(p, problem);
            }
        }
    }
    if let Some(pattern) = &c.body_regex {
        regex(&format!("{path}.body_regex"), pattern, r);
    }
    if let Some(jp) = &c.json_path {
        json_path(&format!("{path}.json_path"), jp, r);
    }
    if let Some(h) = &c.header {
        header(&format!("{path}.header"), h, r);
    }
}

fn regex(path: &str, pattern: &str, r: &mut Report) {
    if let Err(e) = regex::Regex::new(pattern) {
        // The regex crate's message spans several lines (pattern, caret, reason).
        let one_line = e
            .to_string()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        r.err(path, format!("not a valid regular expression: {one_line}"));
    }
}

fn json_path(path: &str, jp: &JsonPathCondition, r: &mut Report) {
    if let Err(e) = serde_json_path::JsonPath::parse(&jp.path) {
        let one_line = e
            .to_string()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        r.err(
            format!("{path}.path"),
            format!("not a valid JSONPath (e.g. $.error.code): {one_line}"),
        );
    }
    if jp.operator_count() != 1 {
        r.err(path, "give exactly one of equals, matches, gt, lt");
    }
    if let Some(pattern) = &jp.matches {
        regex(&format!("{path}.matches"), pattern, r);
    }
    for (key, value) in [("gt", jp.gt), ("lt", jp.lt)] {
        if value.is_some_and(|v| !v.is_finite()) {
            r.err(format!("{path}.{key}"), "must be a finite number");
        }
    }
}

fn header(path: &str, h: &HeaderCondition, r: &mut Report) {
    check_header_name(&format!("{path}.name"), &h.name, r);
    if h.operator_count() != 1 {
        r.err(path, "give exactly one of equals, contains");
    }
    for (key, value) in [("equals", &h.equals), ("contains", &h.contains)] {
        if let Some(problem) = value.as_deref().and_then(header_value_problem) {
            r.err(format!("{path}.{key}"), problem);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use crate::{ConfigError, load_str};

    const BASE: &str = r#"
upstreams:
  - { name: openai-main, kind: openai, base_url: "https://api.openai.com", credentials: [ { name: k1, key: "sk-1" } ] }
  - { name: claude, kind: anthropic, base_url: "https://api.anthropic.com" }
alerts:
  - { name: ops-feishu, kind: feishu, url: "https://hooks.example/feishu" }
"#;

    fn load(rules: &str) -> Result<crate::Config, Vec<ConfigError>> {
        crate::check_str(&format!("{BASE}rules:\n{rules}"), &|_| None)
    }

    /// The rules are refused, first at `path`; returns the message.
    #[track_caller]
    fn refused(rules: &str, path: &str) -> String {
        let errors = load(rules).expect_err("should be refused");
        let first = &errors[0];
        assert_eq!(first.field_path(), Some(path), "{errors:?}");
        let msg = first.to_string();
        assert!(!msg.contains('\n'), "one line: {msg}");
        msg
    }

    #[track_caller]
    fn accepted(rules: &str) -> crate::Config {
        match load(rules) {
            Ok(cfg) => cfg,
            Err(errors) => panic!("should be accepted: {errors:?}"),
        }
    }

    #[test]
    fn issue_example_is_accepted() {
        let cfg = accepted(
            r#"
  - name: out-of-quota
    upstreams: [openai-main]
    when: { any: [ { status: [402, 429] }, { body_contains: "insufficient_quota" } ] }
    threshold: { hits: 1, within: 60s }
    cooldown: 5m
    actions: [ { disable: 10m }, { alert: [ops-feishu] } ]
"#,
        );
        assert_eq!(cfg.rules.len(), 1);
        assert_eq!(cfg.rules[0].name, "out-of-quota");
    }

    #[test]
    fn every_condition_kind_is_accepted() {
        accepted(
            r#"
  - name: all.kinds_1
    credentials: [k1]
    when:
      all:
        - { status: "500-599" }
        - { status: [401, "402-403", "429"] }
        - { body_regex: "(?i)quota\\s+exceeded" }
        - { json_path: { path: "$.error.code", equals: "insufficient_quota" } }
        - { json_path: { path: "$.error.message", matches: "^You exceeded" } }
        - { json_path: { path: "$..remaining", lt: 1 } }
        - { header: { name: X-RateLimit-Remaining-Requests, equals: "0" } }
        - { header: { name: content-type, contains: "json" } }
        - { latency_ms_over: 30000 }
        - not: { transport_error: true }
    actions: [ { ban: true }, { log: true } ]
"#,
        );
    }

    #[test]
    fn names() {
        let ok = "    when: { status: 429 }\n    actions: [ { log: true } ]\n";
        refused(&format!("  - name: \"\"\n{ok}"), "rules[0].name");
        let msg = refused(&format!("  - name: \"a b\"\n{ok}"), "rules[0].name");
        assert!(msg.contains("letters, digits"), "{msg}");
        let msg = refused(
            &format!("  - name: twice\n{ok}  - name: twice\n{ok}"),
            "rules[1].name",
        );
        assert!(msg.contains("duplicate"), "{msg}");
    }

    #[test]
    fn actions() {
        let rule = |actions: &str| {
            format!("  - name: r\n    when: {{ status: 429 }}\n    actions: {actions}\n")
        };
        let msg = refused(&rule("[]"), "rules[0].actions");
        assert!(msg.contains("at least one action"), "{msg}");
        refused(&rule("[ { disable: 0s } ]"), "rules[0].actions[0].disable");
        let msg = refused(
            &rule("[ { log: true }, { ban: false } ]"),
            "rules[0].actions[1].ban",
        );
        assert!(msg.contains("does nothing"), "{msg}");
        refused(&rule("[ { log: false } ]"), "rules[0].actions[0].log");
        refused(&rule("[ { alert: [] } ]"), "rules[0].actions[0].alert");
        let msg = refused(
            &rule("[ { alert: [ops-feishu, pager] } ]"),
            "rules[0].actions[0].alert[1]",
        );
        assert!(msg.contains("unknown alert channel `pager`"), "{msg}");
    }

    #[test]
    fn action_shapes() {
        use crate::rules::ActionConfig;
        use std::time::Duration;
        let rule = |actions: &str| {
            format!("  - name: r\n    when: {{ status: 429 }}\n    actions: {actions}\n")
        };
        let cfg = accepted(&rule(
            "[ { disable: 1h 30m }, { ban: true }, { alert: [ops-feishu] }, { log: true } ]",
        ));
        assert_eq!(
            cfg.rules[0].actions,
            [
                ActionConfig::Disable(Duration::from_secs(5400)),
                ActionConfig::Ban(true),
                ActionConfig::Alert(vec!["ops-feishu".into()]),
                ActionConfig::Log(true),
            ]
        );
        let msg = refused(
            &rule("[ { disable: 1m, ban: true } ]"),
            "rules[0].actions[0]",
        );
        assert!(msg.contains("exactly one of the keys"), "{msg}");
        refused(&rule("[ {} ]"), "rules[0].actions[0]");
        let msg = refused(&rule("[ { pause: 1m } ]"), "rules[0].actions[0].pause");
        assert!(
            msg.contains("expected one of `disable`, `ban`, `alert`, `log`"),
            "{msg}"
        );

        // Written back in the same shape, in YAML and JSON.
        let yaml = yaml_serde::to_string(&cfg.rules[0].actions).unwrap();
        assert_eq!(
            yaml,
            "- disable: 1h 30m\n- ban: true\n- alert:\n  - ops-feishu\n- log: true\n"
        );
        let json = serde_json::to_string(&cfg.rules[0].actions).unwrap();
        assert_eq!(
            json,
            r#"[{"disable":"1h 30m"},{"ban":true},{"alert":["ops-feishu"]},{"log":true}]"#
        );
        let back: Vec<ActionConfig> = serde_json::from_str(&json).unwrap();
        assert_eq!(back, cfg.rules[0].actions);
    }

    #[test]
    fn unknown_upstream_is_named() {
        let msg = refused(
            "  - name: r\n    upstreams: [openai-main, gemini]\n    when: { status: 429 }\n    actions: [ { log: true } ]\n",
            "rules[0].upstreams[1]",
        );
        assert!(msg.contains("unknown upstream `gemini`"), "{msg}");
    }

    #[test]
    fn threshold() {
        let rule = |t: &str| {
            format!(
                "  - name: r\n    when: {{ status: 429 }}\n    threshold: {t}\n    actions: [ {{ log: true }} ]\n"
            )
        };
        refused(&rule("{ hits: 0, within: 60s }"), "rules[0].threshold.hits");
        refused(
            &rule("{ hits: 10001, within: 60s }"),
            "rules[0].threshold.hits",
        );
        refused(
            &rule("{ hits: 3, within: 0s }"),
            "rules[0].threshold.within",
        );
        accepted(&rule("{ hits: 3 }"));
    }

    /// One rule whose `when` is `cond`.
    fn when(cond: &str) -> String {
        format!("  - name: r\n    when: {cond}\n    actions: [ {{ log: true }} ]\n")
    }

    #[test]
    fn empty_conditions() {
        let msg = refused(&when("{}"), "rules[0].when");
        assert!(msg.contains("empty condition"), "{msg}");
        refused(
            &when("{ any: [ { status: 429 }, {} ] }"),
            "rules[0].when.any[1]",
        );
        refused(&when("{ all: [] }"), "rules[0].when.all");
        refused(&when("{ not: {} }"), "rules[0].when.not");
        refused(&when("{ status: [] }"), "rules[0].when.status");
    }

    #[test]
    fn statuses() {
        refused(&when("{ status: 99 }"), "rules[0].when.status");
        refused(&when("{ status: 600 }"), "rules[0].when.status");
        refused(
            &when("{ any: [ { status: 429 }, { status: [500, \"599-500\"] } ] }"),
            "rules[0].when.any[1].status[1]",
        );
        let msg = refused(&when("{ status: \"5xx\" }"), "rules[0].when.status");
        assert!(msg.contains("500-599"), "{msg}");
        refused(&when("{ status: \"500-700\" }"), "rules[0].when.status");
        refused(&when("{ status: \"-500\" }"), "rules[0].when.status");
        accepted(&when("{ status: \"500-500\" }"));
        accepted(&when("{ status: [\" 500 - 599 \"] }"));
    }

    #[test]
    fn body_regex_must_compile() {
        let msg = refused(
            &when("{ body_regex: \"quota(\" }"),
            "rules[0].when.body_regex",
        );
        assert!(msg.contains("not a valid regular expression"), "{msg}");
    }

    #[test]
    fn json_paths() {
        let msg = refused(
            &when("{ json_path: { path: \"error.code\", equals: x } }"),
            "rules[0].when.json_path.path",
        );
        assert!(msg.contains("JSONPath"), "{msg}");
        refused(
            &when("{ json_path: { path: \"$.error.code\" } }"),
            "rules[0].when.json_path",
        );
        refused(
            &when("{ json_path: { path: \"$.n\", gt: 1, lt: 5 } }"),
            "rules[0].when.json_path",
        );
        refused(
            &when("{ json_path: { path: \"$.m\", matches: \"[\" } }"),
            "rules[0].when.json_path.matches",
        );
        refused(
            &when("{ json_path: { path: \"$.n\", gt: .nan } }"),
            "rules[0].when.json_path.gt",
        );
        accepted(&when(
            "{ json_path: { path: \"$.error.code\", equals: 429 } }",
        ));
    }

    #[test]
    fn headers() {
        refused(
            &when("{ header: { name: \"x rate\", equals: \"0\" } }"),
            "rules[0].when.header.name",
        );
        refused(&when("{ header: { name: x-a } }"), "rules[0].when.header");
        refused(
            &when("{ header: { name: x-a, equals: \"0\", contains: \"0\" } }"),
            "rules[0].when.header",
        );
        refused(
            &when("{ header: { name: x-a, contains: \"a\\nb\" } }"),
            "rules[0].when.header.contains",
        );
    }

    #[test]
    fn every_problem_is_reported() {
        let errors = load(
            "  - name: r\n    when: { status: 42, body_regex: \"(\" }\n    actions: [ { ban: false } ]\n",
        )
        .unwrap_err();
        let paths: Vec<_> = errors.iter().filter_map(|e| e.field_path()).collect();
        assert_eq!(
            paths,
            [
                "rules[0].when.status",
                "rules[0].when.body_regex",
                "rules[0].actions[0].ban"
            ]
        );
    }

    #[test]
    fn disabled_rules_are_still_checked() {
        refused(
            "  - name: r\n    enabled: false\n    when: { status: 1000 }\n    actions: [ { log: true } ]\n",
            "rules[0].when.status",
        );
    }

    #[test]
    fn load_str_returns_the_first_problem() {
        let err = load_str(
            &format!("{BASE}rules:\n  - name: r\n    when: {{ status: 429 }}\n    actions: []\n"),
            &|_| None,
        )
        .unwrap_err();
        assert_eq!(err.field_path(), Some("rules[0].actions"));
    }
}
