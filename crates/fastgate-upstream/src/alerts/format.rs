//! What each platform expects: the message text, the request (URL and JSON body,
//! signed where a secret is set), and how to read its answer.
//!
//! - webhook: the event as JSON plus `text`; any 2xx is accepted.
//! - feishu (Lark custom bot): `{"msg_type":"text","content":{"text":…}}`; signed with
//!   `timestamp` (unix seconds, a string) and `sign` = base64(HMAC-SHA256 keyed by
//!   `timestamp + "\n" + secret` over nothing); accepted when `code` (older answers:
//!   `StatusCode`) is 0.
//! - dingtalk: `{"msgtype":"text","text":{"content":…}}`; signed in the URL with
//!   `timestamp` (unix milliseconds) and `sign` = urlencode(base64(HMAC-SHA256 keyed by
//!   the secret over `timestamp + "\n" + secret`)); accepted when `errcode` is 0.
//! - wecom (group robot): same body as DingTalk, unsigned; accepted when `errcode` is 0.
//! - slack (incoming webhook): `{"text":…}`; any 2xx is accepted (the body says `ok`).

use std::borrow::Cow;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, SecondsFormat, Utc};
use fastgate_config::AlertKind;
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use ring::hmac;
use serde_json::{Value, json};

use super::AlertEvent;
use super::sender::DeliveryError;

/// Longest reason kept in the text (WeCom refuses text over 2,048 bytes).
const MAX_REASON_CHARS: usize = 512;

/// Longest platform error message kept in logs.
const MAX_PLATFORM_MESSAGE_CHARS: usize = 200;

/// One request to make.
#[derive(Debug)]
pub(super) struct Outgoing {
    pub(super) url: url::Url,
    pub(super) body: Vec<u8>,
}

/// The human-readable message: a summary line, then the time of the change.
pub(super) fn text(e: &AlertEvent) -> String {
    let mut text = format!(
        "[FastGate] credential {}/{}: {} → {} by rule {}",
        one_line(&e.upstream),
        one_line(&e.credential),
        one_line(&e.state_before),
        one_line(&e.state_after),
        one_line(&e.rule),
    );
    if let Some(until) = e.until {
        text.push_str(" until ");
        text.push_str(&timestamp(until));
    }
    let reason = one_line(&e.reason);
    let reason = reason.trim();
    if !reason.is_empty() {
        text.push_str(" — ");
        text.push_str(&truncate(reason, MAX_REASON_CHARS));
    }
    text.push_str("\nat ");
    text.push_str(&timestamp(e.at));
    text
}

/// The request for `kind`, signed with `secret` (Feishu, DingTalk) at time `now`.
pub(super) fn request(
    kind: AlertKind,
    url: &url::Url,
    secret: Option<&str>,
    event: &AlertEvent,
    now: DateTime<Utc>,
) -> Result<Outgoing, DeliveryError> {
    let text = text(event);
    let mut url = url.clone();
    let body = match kind {
        AlertKind::Webhook => {
            let mut doc =
                serde_json::to_value(event).map_err(|e| DeliveryError::Format(e.to_string()))?;
            if let Value::Object(fields) = &mut doc {
                fields.insert("text".into(), Value::String(text));
            }
            doc
        }
        AlertKind::Feishu => {
            let mut doc = json!({ "msg_type": "text", "content": { "text": text } });
            if let (Some(secret), Value::Object(fields)) = (secret, &mut doc) {
                let ts = now.timestamp();
                fields.insert("timestamp".into(), Value::String(ts.to_string()));
                fields.insert("sign".into(), Value::String(feishu_sign(secret, ts)));
            }
            doc
        }
        AlertKind::Dingtalk => {
            if let Some(secret) = secret {
                url = dingtalk_url(&url, secret, now.timestamp_millis());
            }
            json!({ "msgtype": "text", "text": { "content": text } })
        }
        AlertKind::Wecom => json!({ "msgtype": "text", "text": { "content": text } }),
        AlertKind::Slack => json!({ "text": text }),
    };
    let body = serde_json::to_vec(&body).map_err(|e| DeliveryError::Format(e.to_string()))?;
    Ok(Outgoing { url, body })
}

/// Feishu: base64(HMAC-SHA256(key = `"{timestamp}\n{secret}"`, message = empty)).
pub(super) fn feishu_sign(secret: &str, timestamp_secs: i64) -> String {
    let key = hmac::Key::new(
        hmac::HMAC_SHA256,
        format!("{timestamp_secs}\n{secret}").as_bytes(),
    );
    STANDARD.encode(hmac::sign(&key, b""))
}

/// DingTalk: base64(HMAC-SHA256(key = secret, message = `"{timestamp}\n{secret}"`)),
/// before URL encoding.
pub(super) fn dingtalk_sign(secret: &str, timestamp_millis: i64) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
    STANDARD.encode(hmac::sign(
        &key,
        format!("{timestamp_millis}\n{secret}").as_bytes(),
    ))
}

/// `url` with `timestamp` and `sign` appended to its query (which keeps the
/// `access_token` DingTalk puts there).
fn dingtalk_url(url: &url::Url, secret: &str, timestamp_millis: i64) -> url::Url {
    let sign = dingtalk_sign(secret, timestamp_millis);
    let signature = format!(
        "timestamp={timestamp_millis}&sign={}",
        utf8_percent_encode(&sign, NON_ALPHANUMERIC)
    );
    let query = match url.query() {
        Some(q) if !q.is_empty() => format!("{q}&{signature}"),
        _ => signature,
    };
    let mut signed = url.clone();
    signed.set_query(Some(&query));
    signed
}

/// Whether the platform took the message, from its status and (bounded) body.
pub(super) fn check_answer(kind: AlertKind, status: u16, body: &[u8]) -> Result<(), DeliveryError> {
    if !(200..300).contains(&status) {
        return Err(DeliveryError::Status(status));
    }
    match kind {
        AlertKind::Webhook | AlertKind::Slack => Ok(()),
        AlertKind::Feishu => {
            platform_code(body, &["code", "StatusCode"], &["msg", "StatusMessage"])
        }
        AlertKind::Dingtalk | AlertKind::Wecom => platform_code(body, &["errcode"], &["errmsg"]),
    }
}

/// The first of `code_fields` present decides: 0 is success.
fn platform_code(
    body: &[u8],
    code_fields: &[&str],
    message_fields: &[&str],
) -> Result<(), DeliveryError> {
    let Ok(answer) = serde_json::from_slice::<Value>(body) else {
        return Err(DeliveryError::Unexpected("the answer is not JSON".into()));
    };
    let Some(code) = code_fields.iter().find_map(|f| answer.get(*f)?.as_i64()) else {
        return Err(DeliveryError::Unexpected(format!(
            "no numeric `{}` in the answer",
            code_fields.join("` or `")
        )));
    };
    if code == 0 {
        return Ok(());
    }
    let message = message_fields
        .iter()
        .find_map(|f| answer.get(*f)?.as_str())
        .unwrap_or("");
    Err(DeliveryError::Platform {
        code,
        message: truncate(&one_line(message), MAX_PLATFORM_MESSAGE_CHARS),
    })
}

fn timestamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Control characters (line breaks included) become spaces.
fn one_line(s: &str) -> Cow<'_, str> {
    if s.chars().any(char::is_control) {
        Cow::Owned(
            s.chars()
                .map(|c| if c.is_control() { ' ' } else { c })
                .collect(),
        )
    } else {
        Cow::Borrowed(s)
    }
}

fn truncate(s: &str, max_chars: usize) -> String {
    match s.char_indices().nth(max_chars) {
        Some((end, _)) => format!("{}…", &s[..end]),
        None => s.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use chrono::TimeZone;

    use super::*;

    fn event() -> AlertEvent {
        AlertEvent {
            channels: vec![Arc::from("ops")],
            rule: Arc::from("out-of-quota"),
            upstream: Arc::from("openai-main"),
            credential: Arc::from("key-a"),
            state_before: "active".into(),
            state_after: "disabled".into(),
            reason: "429 insufficient_quota".into(),
            until: Some(Utc.with_ymd_and_hms(2026, 11, 30, 10, 0, 0).unwrap()),
            at: Utc.with_ymd_and_hms(2026, 11, 30, 9, 12, 3).unwrap(),
        }
    }

    fn now() -> DateTime<Utc> {
        Utc.timestamp_millis_opt(1_700_000_000_123).unwrap()
    }

    fn url(s: &str) -> url::Url {
        url::Url::parse(s).unwrap()
    }

    fn body(out: &Outgoing) -> Value {
        serde_json::from_slice(&out.body).unwrap()
    }

    const TEXT: &str = "[FastGate] credential openai-main/key-a: active → disabled by rule \
                        out-of-quota until 2026-11-30T10:00:00Z — 429 insufficient_quota\n\
                        at 2026-11-30T09:12:03Z";

    #[test]
    fn text_is_a_summary_line_and_the_time() {
        assert_eq!(text(&event()), TEXT);

        let mut e = event();
        e.until = None;
        e.reason = " ".into();
        e.rule = Arc::from("manual");
        e.state_after = "banned".into();
        assert_eq!(
            text(&e),
            "[FastGate] credential openai-main/key-a: active → banned by rule manual\n\
             at 2026-11-30T09:12:03Z"
        );
    }

    #[test]
    fn text_stays_two_lines_and_bounded() {
        let mut e = event();
        e.reason = format!("bad\r\nline\u{7}{}", "é".repeat(2000));
        let t = text(&e);
        assert_eq!(t.lines().count(), 2, "{t}");
        assert!(t.contains("— bad  line "), "{t}");
        assert!(t.chars().count() < 700, "{}", t.chars().count());
        assert!(t.lines().next().unwrap().ends_with('…'));
    }

    #[test]
    fn webhook_posts_the_event_with_text() {
        let out = request(
            AlertKind::Webhook,
            &url("https://h/hook?t=1"),
            None,
            &event(),
            now(),
        )
        .unwrap();
        assert_eq!(out.url.as_str(), "https://h/hook?t=1");
        let b = body(&out);
        assert_eq!(b["text"], TEXT);
        assert_eq!(b["channels"], json!(["ops"]));
        assert_eq!(b["rule"], "out-of-quota");
        assert_eq!(b["upstream"], "openai-main");
        assert_eq!(b["credential"], "key-a");
        assert_eq!(b["state_before"], "active");
        assert_eq!(b["state_after"], "disabled");
        assert_eq!(b["reason"], "429 insufficient_quota");
        assert_eq!(b["until"], "2026-11-30T10:00:00Z");
        assert_eq!(b["at"], "2026-11-30T09:12:03Z");
    }

    #[test]
    fn feishu_unsigned_and_signed() {
        let u = url("https://open.feishu.cn/open-apis/bot/v2/hook/abc");
        let out = request(AlertKind::Feishu, &u, None, &event(), now()).unwrap();
        assert_eq!(out.url, u);
        assert_eq!(
            body(&out),
            json!({ "msg_type": "text", "content": { "text": TEXT } })
        );

        let out = request(
            AlertKind::Feishu,
            &u,
            Some("feishu-test-secret"),
            &event(),
            now(),
        )
        .unwrap();
        let b = body(&out);
        assert_eq!(b["msg_type"], "text");
        assert_eq!(b["content"]["text"], TEXT);
        assert_eq!(b["timestamp"], "1700000000", "unix seconds, as a string");
        let ts: i64 = b["timestamp"].as_str().unwrap().parse().unwrap();
        assert_eq!(b["sign"], feishu_sign("feishu-test-secret", ts));
    }

    #[test]
    fn feishu_sign_known_answer() {
        // Computed independently: base64(hmac_sha256(key=b"1700000000\nfeishu-test-secret", msg=b"")).
        assert_eq!(
            feishu_sign("feishu-test-secret", 1_700_000_000),
            "e3MJ8Q5llVxGJ8pVkGPBhexDAgjvYqpjPP1GkY9XceI="
        );
        assert_ne!(
            feishu_sign("feishu-test-secret", 1_700_000_001),
            feishu_sign("feishu-test-secret", 1_700_000_000)
        );
    }

    #[test]
    fn dingtalk_sign_known_answer() {
        // Computed independently: base64(hmac_sha256(key=secret, msg=b"1700000000123\n" + secret)).
        assert_eq!(
            dingtalk_sign("SECdingtalk-test-secret", 1_700_000_000_123),
            "fOuYqWxSobqx4ymWSK0TaWtw6Gvppol1edHzD8ZPvII="
        );
    }

    #[test]
    fn dingtalk_signs_in_the_query() {
        let u = url("https://oapi.dingtalk.com/robot/send?access_token=tok");
        let out = request(
            AlertKind::Dingtalk,
            &u,
            Some("SECdingtalk-test-secret"),
            &event(),
            now(),
        )
        .unwrap();
        assert_eq!(
            out.url.as_str(),
            "https://oapi.dingtalk.com/robot/send?access_token=tok&timestamp=1700000000123\
             &sign=fOuYqWxSobqx4ymWSK0TaWtw6Gvppol1edHzD8ZPvII%3D"
        );
        let pairs: Vec<(String, String)> = out.url.query_pairs().into_owned().collect();
        let ts: i64 = pairs
            .iter()
            .find(|(k, _)| k == "timestamp")
            .unwrap()
            .1
            .parse()
            .unwrap();
        let sign = &pairs.iter().find(|(k, _)| k == "sign").unwrap().1;
        assert_eq!(*sign, dingtalk_sign("SECdingtalk-test-secret", ts));
        assert_eq!(
            body(&out),
            json!({ "msgtype": "text", "text": { "content": TEXT } })
        );

        // Without a query the signature starts one; `+` and `/` are encoded too.
        let bare = dingtalk_url(&url("https://h/robot/send"), "s", 42);
        let q = bare.query().unwrap();
        assert!(q.starts_with("timestamp=42&sign="), "{q}");
        assert!(
            !q["timestamp=42&sign=".len()..].contains(['+', '/', '=']),
            "{q}"
        );
        let unsigned = request(AlertKind::Dingtalk, &u, None, &event(), now()).unwrap();
        assert_eq!(unsigned.url, u);
    }

    #[test]
    fn wecom_and_slack_bodies() {
        let u = url("https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k");
        let out = request(AlertKind::Wecom, &u, None, &event(), now()).unwrap();
        assert_eq!(out.url, u);
        assert_eq!(
            body(&out),
            json!({ "msgtype": "text", "text": { "content": TEXT } })
        );
        let out = request(
            AlertKind::Slack,
            &url("https://hooks.slack.com/services/T/B/X"),
            None,
            &event(),
            now(),
        )
        .unwrap();
        assert_eq!(body(&out), json!({ "text": TEXT }));
    }

    #[test]
    fn answers() {
        use AlertKind::*;
        let ok = |kind, status, body: &str| check_answer(kind, status, body.as_bytes());
        assert!(ok(Webhook, 204, "").is_ok());
        assert!(ok(Slack, 200, "ok").is_ok());
        assert!(matches!(
            ok(Slack, 404, "no_team"),
            Err(DeliveryError::Status(404))
        ));
        assert!(ok(Feishu, 200, r#"{"code":0,"msg":"success","data":{}}"#).is_ok());
        assert!(ok(Feishu, 200, r#"{"StatusCode":0,"StatusMessage":"success"}"#).is_ok());
        let err = ok(Feishu, 200, r#"{"code":19021,"msg":"sign match fail"}"#).unwrap_err();
        assert!(
            matches!(err, DeliveryError::Platform { code: 19021, .. }),
            "{err}"
        );
        assert_eq!(
            err.to_string(),
            "platform error code 19021: sign match fail"
        );
        assert!(err.retryable());
        assert!(ok(Dingtalk, 200, r#"{"errcode":0,"errmsg":"ok"}"#).is_ok());
        assert!(matches!(
            ok(
                Dingtalk,
                200,
                r#"{"errcode":310000,"errmsg":"sign not match"}"#
            ),
            Err(DeliveryError::Platform { code: 310000, .. })
        ));
        assert!(ok(Wecom, 200, r#"{"errcode":0,"errmsg":"ok"}"#).is_ok());
        assert!(matches!(
            ok(Wecom, 200, "<html>"),
            Err(DeliveryError::Unexpected(_))
        ));
        assert!(matches!(
            ok(Wecom, 200, r#"{"ok":true}"#),
            Err(DeliveryError::Unexpected(_))
        ));
        assert!(ok(Wecom, 500, "").unwrap_err().retryable());
        assert!(ok(Wecom, 429, "").unwrap_err().retryable());
        assert!(!ok(Webhook, 400, "").unwrap_err().retryable());
        assert!(!ok(Webhook, 301, "").unwrap_err().retryable());
    }
}
