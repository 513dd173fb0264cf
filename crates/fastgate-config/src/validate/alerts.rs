//! `alerts:` checks. Webhook URLs and signing secrets carry tokens: no message here
//! ever echoes them.

use super::Report;
use super::http::check_name;
use crate::alerts::{AlertConfig, AlertKind};
use crate::model::Config;

pub(super) fn check(cfg: &Config, r: &mut Report) {
    let mut names: Vec<&str> = Vec::with_capacity(cfg.alerts.len());
    for (i, alert) in cfg.alerts.iter().enumerate() {
        let path = format!("alerts[{i}]");
        let name_path = format!("{path}.name");
        if check_name(&name_path, &alert.name, r) {
            if names.contains(&alert.name.as_str()) {
                r.err(&name_path, format!("duplicate alert name `{}`", alert.name));
            }
            names.push(&alert.name);
        }
        url(&format!("{path}.url"), alert.url.expose(), r);
        secret(&format!("{path}.secret"), alert, r);
    }
}

/// An `http`/`https` URL with a host. Query strings are fine (DingTalk and WeCom put
/// their token there); user info is refused because it would never be sent.
fn url(path: &str, value: &str, r: &mut Report) {
    if value.trim().is_empty() {
        r.err(
            path,
            "must not be empty (an unset `${VAR:-}` interpolation?)",
        );
        return;
    }
    let url = match url::Url::parse(value) {
        Ok(url) => url,
        // The parser's message names the problem, never the input.
        Err(e) => {
            r.err(
                path,
                format!("not a valid URL ({e}); value not shown (it may carry a token)"),
            );
            return;
        }
    };
    if !matches!(url.scheme(), "http" | "https") {
        r.err(
            path,
            format!("scheme must be http or https, not `{}`", url.scheme()),
        );
    } else if url.host_str().is_none_or(str::is_empty) {
        r.err(path, "must include a host");
    } else if !url.username().is_empty() || url.password().is_some() {
        r.err(
            path,
            "must not contain user info (`user:password@`): it would not be sent; value not shown",
        );
    }
}

/// A signing secret is a Feishu and DingTalk setting; elsewhere it would be ignored,
/// which hides a misconfiguration.
fn secret(path: &str, alert: &AlertConfig, r: &mut Report) {
    let Some(secret) = &alert.secret else {
        return;
    };
    match alert.kind {
        AlertKind::Feishu | AlertKind::Dingtalk => {
            if secret.expose().trim().is_empty() {
                r.err(
                    path,
                    "must not be empty (an unset `${VAR:-}` interpolation?); remove it to send unsigned",
                );
            }
        }
        AlertKind::Webhook | AlertKind::Wecom | AlertKind::Slack => {
            r.err(
                path,
                format!(
                    "only feishu and dingtalk sign their messages; a `{}` channel has no secret \
                     (put its token in the url)",
                    kind_name(alert.kind)
                ),
            );
        }
    }
}

fn kind_name(kind: AlertKind) -> &'static str {
    match kind {
        AlertKind::Webhook => "webhook",
        AlertKind::Feishu => "feishu",
        AlertKind::Dingtalk => "dingtalk",
        AlertKind::Wecom => "wecom",
        AlertKind::Slack => "slack",
    }
}

#[cfg(test)]
mod tests {
    use crate::{ConfigError, load_str};

    fn load(yaml: &str) -> Result<crate::Config, ConfigError> {
        load_str(yaml, &|_| None)
    }

    /// One alert channel made of `fields` (YAML flow mapping entries).
    fn one(fields: &str) -> String {
        format!("alerts:\n  - {{ {fields} }}\n")
    }

    #[track_caller]
    fn refused(yaml: &str, path: &str) -> String {
        let err = load(yaml).expect_err("should be refused");
        assert_eq!(err.field_path(), Some(path), "{err}");
        let msg = err.to_string();
        assert!(!msg.contains('\n'), "one line: {msg}");
        msg
    }

    #[test]
    fn valid_channels_load() {
        let cfg = load(
            r#"
alerts:
  - { name: ops-feishu, kind: feishu, url: "https://open.feishu.cn/open-apis/bot/v2/hook/abc", secret: "s3cret" }
  - { name: ops.ding_1, kind: dingtalk, url: "https://oapi.dingtalk.com/robot/send?access_token=t", secret: "SECx" }
  - { name: wecom, kind: wecom, url: "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k" }
  - { name: slack, kind: slack, url: "https://hooks.slack.com/services/T/B/X", min_interval: 0s }
  - { name: hook, kind: webhook, url: "http://127.0.0.1:9000/alerts", min_interval: 1m }
"#,
        )
        .unwrap();
        assert_eq!(cfg.alerts.len(), 5);
        assert!(cfg.alerts[3].min_interval.is_zero());
        assert_eq!(cfg.alerts[4].min_interval.as_secs(), 60);
        assert_eq!(cfg.alerts[2].min_interval.as_secs(), 300, "default");
    }

    #[test]
    fn names() {
        refused(
            &one(r#"name: "", kind: slack, url: "https://h/x""#),
            "alerts[0].name",
        );
        let msg = refused(
            &one(r#"name: "ops alerts", kind: slack, url: "https://h/x""#),
            "alerts[0].name",
        );
        assert!(msg.contains("letters, digits"), "{msg}");
        let msg = refused(
            r#"
alerts:
  - { name: ops, kind: slack, url: "https://h/x" }
  - { name: ops, kind: wecom, url: "https://h/y" }
"#,
            "alerts[1].name",
        );
        assert!(msg.contains("duplicate"), "{msg}");
    }

    #[test]
    fn urls_are_checked_and_never_echoed() {
        for (url, hint) in [
            ("", "empty"),
            ("   ", "empty"),
            ("not a url tok-canary", "not a valid URL"),
            ("ftp://h/tok-canary", "scheme"),
            ("mailto:tok-canary@h", "scheme"),
            ("http://user:tok-canary@h/x", "user info"),
            ("https://tok-canary@h/x", "user info"),
        ] {
            let msg = refused(
                &one(&format!(r#"name: a, kind: webhook, url: "{url}""#)),
                "alerts[0].url",
            );
            assert!(msg.contains(hint), "{url}: {msg}");
            assert!(!msg.contains("canary"), "URL echoed: {msg}");
        }
        load(&one(
            r#"name: a, kind: dingtalk, url: "https://h/robot/send?access_token=tok-canary""#,
        ))
        .unwrap();
    }

    #[test]
    fn secrets_only_where_they_sign() {
        for kind in ["webhook", "wecom", "slack"] {
            let msg = refused(
                &one(&format!(
                    r#"name: a, kind: {kind}, url: "https://h/x", secret: "tok-canary""#
                )),
                "alerts[0].secret",
            );
            assert!(
                msg.contains("feishu and dingtalk") && msg.contains(kind),
                "{msg}"
            );
            assert!(!msg.contains("canary"), "{msg}");
        }
        for kind in ["feishu", "dingtalk"] {
            refused(
                &one(&format!(
                    r#"name: a, kind: {kind}, url: "https://h/x", secret: " ""#
                )),
                "alerts[0].secret",
            );
            load(&one(&format!(
                r#"name: a, kind: {kind}, url: "https://h/x", secret: "s""#
            )))
            .unwrap();
        }
    }

    #[test]
    fn shape_errors_carry_paths() {
        let err = load(&one(r#"name: a, kind: teams, url: "https://h/x""#)).unwrap_err();
        assert_eq!(err.field_path(), Some("alerts[0].kind"), "{err}");
        let err = load(&one(
            r#"name: a, kind: slack, url: "https://h/x", min_interval: soon"#,
        ))
        .unwrap_err();
        assert_eq!(err.field_path(), Some("alerts[0].min_interval"), "{err}");
    }

    #[test]
    fn every_problem_reported_in_order() {
        let errors = crate::check_str(
            r#"
alerts:
  - { name: "a b", kind: slack, url: "ftp://h", secret: x }
  - { name: ok, kind: feishu, url: "https://h/x", secret: "" }
"#,
            &|_| None,
        )
        .unwrap_err();
        let paths: Vec<_> = errors.iter().filter_map(|e| e.field_path()).collect();
        assert_eq!(
            paths,
            [
                "alerts[0].name",
                "alerts[0].url",
                "alerts[0].secret",
                "alerts[1].secret"
            ]
        );
    }
}
