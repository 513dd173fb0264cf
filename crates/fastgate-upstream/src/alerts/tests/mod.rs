//! End to end: the real sender against a local sink (see `sink`).

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use fastgate_config::{AlertConfig, AlertKind, Secret};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::format::{dingtalk_sign, feishu_sign};
use super::sender::{DeliveryError, SendOptions};
use super::{AlertEvent, AlertStats, Alerter};

mod sink;

use sink::{DEADLINE, Sink};

fn options() -> SendOptions {
    SendOptions {
        timeout: Duration::from_secs(3),
        attempts: 3,
        backoff_base: Duration::from_millis(1),
        queue_capacity: 16,
    }
}

fn channel(
    name: &str,
    kind: AlertKind,
    url: String,
    secret: Option<&str>,
    min_interval: Duration,
) -> AlertConfig {
    AlertConfig {
        name: name.into(),
        kind,
        url: Secret::new(url),
        secret: secret.map(|s| Secret::new(s.to_owned())),
        min_interval,
    }
}

fn event(channels: &[&str], credential: &str, rule: &str) -> AlertEvent {
    AlertEvent {
        channels: channels.iter().map(|c| Arc::from(*c)).collect(),
        rule: Arc::from(rule),
        upstream: Arc::from("openai-main"),
        credential: Arc::from(credential),
        state_before: "active".into(),
        state_after: "disabled".into(),
        reason: "429 insufficient_quota".into(),
        until: None,
        at: Utc::now(),
    }
}

/// Polls the counters until `done` holds (they change after the sink answered).
async fn wait_stats(alerter: &Alerter, done: impl Fn(&AlertStats) -> bool) -> AlertStats {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let stats = alerter.stats();
        if done(&stats) {
            return stats;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "counters never got there: {stats:?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

const HOUR: Duration = Duration::from_secs(3600);

#[tokio::test]
async fn feishu_signed_message_reaches_the_sink() {
    let sink = Sink::start(&[(200, r#"{"code":0,"msg":"success","data":{}}"#)]).await;
    let url = sink.url("/open-apis/bot/v2/hook/tok-123");
    let cfg = [channel(
        "ops",
        AlertKind::Feishu,
        url,
        Some("fs-secret"),
        HOUR,
    )];
    let (alerter, _task) = Alerter::start_with(&cfg, CancellationToken::new(), options());

    alerter.notify(event(&["ops"], "key-a", "out-of-quota"));
    let stats = wait_stats(&alerter, |s| s.sent == 1).await;
    let got = sink.requests();
    assert_eq!(got.len(), 1);
    let req = &got[0];
    assert_eq!(req.method, "POST");
    assert_eq!(req.target, "/open-apis/bot/v2/hook/tok-123");
    assert_eq!(req.content_type.as_deref(), Some("application/json"));
    let body = req.json();
    assert_eq!(body["msg_type"], "text");
    let text = body["content"]["text"].as_str().unwrap();
    assert!(
        text.starts_with(
            "[FastGate] credential openai-main/key-a: active → disabled by rule out-of-quota — 429 insufficient_quota\nat "
        ),
        "{text}"
    );
    let ts: i64 = body["timestamp"].as_str().unwrap().parse().unwrap();
    assert!((Utc::now().timestamp() - ts).abs() < 60, "seconds: {ts}");
    assert_eq!(body["sign"], feishu_sign("fs-secret", ts));
    assert_ne!(body["sign"], feishu_sign("other-secret", ts));
    assert_eq!((stats.failed, stats.channels["ops"].sent), (0, 1));
}

#[tokio::test]
async fn retries_after_a_500_then_succeeds() {
    let sink = Sink::start(&[(500, "busy"), (200, "")]).await;
    let cfg = [channel(
        "hook",
        AlertKind::Webhook,
        sink.url("/alerts"),
        None,
        HOUR,
    )];
    let (alerter, _task) = Alerter::start_with(&cfg, CancellationToken::new(), options());

    alerter.notify(event(&["hook"], "key-a", "builtin:auth"));
    let stats = wait_stats(&alerter, |s| s.sent == 1).await;
    let got = sink.requests();
    assert_eq!(got.len(), 2, "exactly one retry: {got:?}");
    assert_eq!(got[0].body, got[1].body, "the same message again");
    let body = got[1].json();
    assert_eq!(body["rule"], "builtin:auth");
    assert_eq!(body["credential"], "key-a");
    assert!(
        body["text"]
            .as_str()
            .unwrap()
            .contains("by rule builtin:auth")
    );
    assert_eq!(stats.failed, 0);
}

#[tokio::test]
async fn platform_error_code_fails_after_every_attempt() {
    let sink = Sink::start(&[(200, r#"{"errcode":310000,"errmsg":"sign not match"}"#)]).await;
    let url = sink.url("/robot/send?access_token=tok");
    let cfg = [channel(
        "ding",
        AlertKind::Dingtalk,
        url,
        Some("SECding"),
        HOUR,
    )];
    let (alerter, _task) = Alerter::start_with(&cfg, CancellationToken::new(), options());

    alerter.notify(event(&["ding"], "key-a", "out-of-quota"));
    let stats = wait_stats(&alerter, |s| s.failed == 1).await;
    let got = sink.requests();
    assert_eq!(got.len(), 3, "three attempts: {got:?}");
    for req in &got {
        assert!(
            req.target
                .starts_with("/robot/send?access_token=tok&timestamp="),
            "{}",
            req.target
        );
        let ts: i64 = req.query("timestamp").unwrap().parse().unwrap();
        assert!(
            (Utc::now().timestamp_millis() - ts).abs() < 60_000,
            "millis: {ts}"
        );
        assert_eq!(req.query("sign").unwrap(), dingtalk_sign("SECding", ts));
        assert_eq!(req.json()["msgtype"], "text");
        assert!(
            req.json()["text"]["content"]
                .as_str()
                .unwrap()
                .contains("key-a")
        );
    }
    assert_eq!((stats.sent, stats.channels["ding"].failed), (0, 1));
}

#[tokio::test]
async fn client_errors_are_not_retried() {
    let sink = Sink::start(&[(404, "no_service")]).await;
    let cfg = [channel(
        "slack",
        AlertKind::Slack,
        sink.url("/services/T/B/X"),
        None,
        HOUR,
    )];
    let (alerter, _task) = Alerter::start_with(&cfg, CancellationToken::new(), options());
    alerter.notify(event(&["slack"], "key-a", "r"));
    wait_stats(&alerter, |s| s.failed == 1).await;
    let got = sink.requests();
    assert_eq!(got.len(), 1);
    assert!(
        got[0].json()["text"]
            .as_str()
            .unwrap()
            .starts_with("[FastGate] credential")
    );
}

#[tokio::test]
async fn rate_limited_per_channel_upstream_credential_and_rule() {
    let sink = Sink::start(&[(200, r#"{"errcode":0,"errmsg":"ok"}"#)]).await;
    let cfg = [
        channel("ops", AlertKind::Wecom, sink.url("/send?key=k"), None, HOUR),
        channel(
            "loud",
            AlertKind::Wecom,
            sink.url("/send?key=l"),
            None,
            Duration::ZERO,
        ),
    ];
    let (alerter, _task) = Alerter::start_with(&cfg, CancellationToken::new(), options());

    alerter.notify(event(&["ops"], "key-a", "quota"));
    alerter.notify(event(&["ops"], "key-a", "quota")); // same key: suppressed
    alerter.notify(event(&["ops"], "key-b", "quota")); // another credential
    alerter.notify(event(&["ops"], "key-a", "auth")); // another rule
    let mut other_upstream = event(&["ops"], "key-a", "quota");
    other_upstream.upstream = Arc::from("anthropic");
    alerter.notify(other_upstream);
    alerter.notify(event(&["loud"], "key-a", "quota")); // min_interval 0: every time
    alerter.notify(event(&["loud"], "key-a", "quota"));

    let stats = wait_stats(&alerter, |s| s.sent == 6).await;
    assert_eq!(stats.rate_limited, 1);
    assert_eq!(stats.channels["ops"].sent, 4);
    assert_eq!(stats.channels["ops"].rate_limited, 1);
    assert_eq!(
        (
            stats.channels["loud"].sent,
            stats.channels["loud"].rate_limited
        ),
        (2, 0)
    );
    let got = sink.requests();
    assert_eq!(got.len(), 6);
    let to_ops = got.iter().filter(|r| r.target == "/send?key=k").count();
    assert_eq!(to_ops, 4);
}

#[tokio::test]
async fn unknown_channels_are_counted_and_update_replaces_channels() {
    let old = Sink::start(&[(200, "ok")]).await;
    let new = Sink::start(&[(200, "ok")]).await;
    let cfg = [
        channel(
            "kept",
            AlertKind::Slack,
            old.url("/kept"),
            None,
            Duration::ZERO,
        ),
        channel(
            "gone",
            AlertKind::Slack,
            old.url("/gone"),
            None,
            Duration::ZERO,
        ),
    ];
    let (alerter, _task) = Alerter::start_with(&cfg, CancellationToken::new(), options());
    alerter.notify(event(&["kept", "nowhere"], "key-a", "r"));
    let stats = wait_stats(&alerter, |s| s.sent == 1).await;
    assert_eq!(stats.unknown_channel, 1);

    alerter.update(&[
        channel(
            "kept",
            AlertKind::Slack,
            new.url("/kept-v2"),
            None,
            Duration::ZERO,
        ),
        channel(
            "added",
            AlertKind::Webhook,
            new.url("/added"),
            None,
            Duration::ZERO,
        ),
    ]);
    alerter.notify(event(&["gone", "kept", "added", "added"], "key-a", "r"));
    let stats = wait_stats(&alerter, |s| s.sent == 3).await;
    assert_eq!(stats.unknown_channel, 2, "`gone` is no longer known");
    let names: Vec<&str> = stats.channels.keys().map(String::as_str).collect();
    assert_eq!(names, ["added", "kept"]);
    assert_eq!(
        stats.channels["kept"].sent, 2,
        "counters of a kept name go on"
    );
    assert_eq!(
        stats.channels["added"].sent, 1,
        "a name listed twice is sent once"
    );
    assert_eq!(stats.channels["added"].kind, AlertKind::Webhook);
    let targets: Vec<String> = new.requests().into_iter().map(|r| r.target).collect();
    assert_eq!(targets.len(), 2);
    assert!(targets.contains(&"/kept-v2".to_string()) && targets.contains(&"/added".to_string()));
    assert_eq!(old.requests().len(), 1, "nothing more to the old URLs");
}

#[tokio::test]
async fn full_queue_drops_and_counts() {
    let sink = Sink::start_with(&[(200, "")], true).await;
    let cfg = [channel(
        "hook",
        AlertKind::Webhook,
        sink.url("/a"),
        None,
        Duration::ZERO,
    )];
    let opts = SendOptions {
        queue_capacity: 1,
        ..options()
    };
    let (alerter, _task) = Alerter::start_with(&cfg, CancellationToken::new(), opts);

    alerter.notify(event(&["hook"], "key-1", "r"));
    sink.wait_requests(1).await; // the sender is busy with the first one
    alerter.notify(event(&["hook"], "key-2", "r")); // fills the queue
    alerter.notify(event(&["hook"], "key-3", "r")); // no room
    let stats = alerter.stats();
    assert_eq!((stats.dropped, stats.channels["hook"].dropped), (1, 1));

    sink.release(10);
    let stats = wait_stats(&alerter, |s| s.sent == 2).await;
    let credentials: Vec<Value> = sink
        .requests()
        .iter()
        .map(|r| r.json()["credential"].clone())
        .collect();
    assert_eq!(credentials, ["key-1", "key-2"]);
    assert_eq!(stats.failed, 0);
}

#[tokio::test]
async fn timeout_counts_as_a_failed_attempt() {
    let sink = Sink::start_with(&[(200, "")], true).await; // never answers
    let cfg = [channel(
        "hook",
        AlertKind::Webhook,
        sink.url("/slow"),
        None,
        HOUR,
    )];
    let opts = SendOptions {
        timeout: Duration::from_millis(50),
        attempts: 2,
        ..options()
    };
    let (alerter, _task) = Alerter::start_with(&cfg, CancellationToken::new(), opts);
    alerter.notify(event(&["hook"], "key-a", "r"));
    wait_stats(&alerter, |s| s.failed == 1).await;
    assert_eq!(sink.requests().len(), 2);
}

#[tokio::test]
async fn cancel_stops_promptly_even_while_waiting_to_retry() {
    let sink = Sink::start(&[(503, "")]).await;
    let cfg = [channel(
        "hook",
        AlertKind::Webhook,
        sink.url("/a"),
        None,
        Duration::ZERO,
    )];
    let opts = SendOptions {
        backoff_base: Duration::from_secs(600),
        ..options()
    };
    let cancel = CancellationToken::new();
    let (alerter, task) = Alerter::start_with(&cfg, cancel.clone(), opts);
    alerter.notify(event(&["hook"], "key-a", "r"));
    sink.wait_requests(1).await;
    alerter.notify(event(&["hook"], "key-b", "r")); // queued behind the first

    cancel.cancel();
    tokio::time::timeout(Duration::from_secs(2), task)
        .await
        .expect("the sender should stop promptly")
        .unwrap();
    let stats = alerter.stats();
    assert_eq!((stats.failed, stats.dropped), (1, 1), "{stats:?}");
    alerter.notify(event(&["hook"], "key-c", "r")); // the queue is closed now
    assert_eq!(alerter.stats().dropped, 2);
    assert_eq!(sink.requests().len(), 1, "no retry after cancel");
}

#[tokio::test]
async fn idle_sender_stops_on_cancel_or_when_handles_are_gone() {
    let cancel = CancellationToken::new();
    let (_alerter, task) = Alerter::start(&[], cancel.clone());
    cancel.cancel();
    tokio::time::timeout(Duration::from_secs(2), task)
        .await
        .unwrap()
        .unwrap();

    let (alerter, task) = Alerter::start(&[], CancellationToken::new());
    let copy = alerter.clone();
    drop(alerter);
    drop(copy);
    tokio::time::timeout(Duration::from_secs(2), task)
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn an_unusable_url_fails_without_a_request() {
    let cfg = [channel(
        "bad",
        AlertKind::Slack,
        "not a url".into(),
        None,
        HOUR,
    )];
    let (alerter, _task) = Alerter::start_with(&cfg, CancellationToken::new(), options());
    alerter.notify(event(&["bad"], "key-a", "r"));
    let stats = wait_stats(&alerter, |s| s.failed == 1).await;
    assert_eq!(stats.channels["bad"].failed, 1);
}

#[tokio::test]
async fn urls_and_secrets_never_shown() {
    let url = "https://open.feishu.cn/open-apis/bot/v2/hook/tok-canary".to_string();
    let cfg = [channel(
        "ops",
        AlertKind::Feishu,
        url,
        Some("sec-canary"),
        HOUR,
    )];
    let (alerter, _task) = Alerter::start_with(&cfg, CancellationToken::new(), options());
    let debug = format!("{alerter:?}");
    assert!(
        debug.contains("ops") && !debug.contains("canary"),
        "{debug}"
    );
    let channels = alerter.shared.channels();
    let debug = format!("{:?}", channels["ops"]);
    assert!(
        debug.contains("signed: true") && !debug.contains("canary"),
        "{debug}"
    );
    let stats = serde_json::to_string(&alerter.stats()).unwrap();
    assert!(!stats.contains("canary"), "{stats}");

    let echoed = DeliveryError::Platform {
        code: 1,
        message: "bad token tok-canary for https://open.feishu.cn/open-apis/bot/v2/hook/tok-canary, secret sec-canary".into(),
    };
    let shown = super::sender::redact(&echoed, &channels["ops"]);
    assert!(!shown.contains("canary"), "{shown}");
    assert!(
        shown.starts_with("platform error code 1: bad token [redacted] for [redacted]"),
        "{shown}"
    );
}
