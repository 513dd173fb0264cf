//! The rules of `plan` and `merge` for credential health rules, without a database.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use fastgate_config::{ActionConfig, Config, RuleConfig};
use serde_json::{Value, json};

use crate::{Change, LiveError, LiveObjects, merge, plan};

fn file() -> Config {
    fastgate_config::load_str(
        r#"
upstreams:
  - name: file-up
    kind: openai
    base_url: "http://127.0.0.1:9"
    credentials: [ { name: k1, key: "sk-file-key-1" } ]
alerts:
  - { name: ops, kind: webhook, url: "http://127.0.0.1:9/hook" }
rules:
  - name: file-rule
    when: { status: 402 }
    actions: [ { ban: true } ]
"#,
        &|_| None,
    )
    .unwrap()
}

/// A rule from JSON, as the admin API receives it.
fn rule(v: Value) -> RuleConfig {
    serde_json::from_value(v).unwrap()
}

fn key_rejected() -> RuleConfig {
    rule(json!({
        "name": "key-rejected",
        "upstreams": ["file-up"],
        "when": { "status": [401] },
        "actions": [ { "disable": "1h" }, { "alert": ["ops"] } ]
    }))
}

fn put(rule: RuleConfig, must_be_new: bool) -> Change {
    Change::PutRule { rule, must_be_new }
}

fn invalid(err: LiveError) -> (String, String) {
    match err {
        LiveError::Invalid { path, message } => (path, message),
        other => panic!("expected a field error, got {other:?}"),
    }
}

#[test]
fn creates_merges_and_shows_the_file_shape() {
    let file = file();
    let p = plan(&file, &LiveObjects::default(), put(key_rejected(), true)).unwrap();
    assert_eq!(
        (p.action, p.kind, p.name.as_str()),
        ("create", "rule", "key-rejected")
    );
    assert!(p.before.is_none());
    let after = p.after.clone().unwrap();
    assert_eq!(after["source"], "api");
    assert_eq!(after["when"]["status"], json!([401]));
    assert_eq!(
        after["actions"],
        json!([ { "disable": "1h" }, { "alert": ["ops"] } ])
    );
    assert_eq!(after["enabled"], true);
    // The merged configuration: the file's rules first, then the API's.
    let names: Vec<&str> = p.merged.rules.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["file-rule", "key-rejected"]);
    assert_eq!(
        p.merged.rules[1].actions[0],
        ActionConfig::Disable(Duration::from_secs(3600))
    );
    // The view reads back as the same rule (a listed rule can be sent back).
    let mut back = after;
    back.as_object_mut().unwrap().remove("source");
    assert_eq!(rule(back), key_rejected());

    let again = plan(&file, &p.next, put(key_rejected(), true)).unwrap_err();
    assert!(
        matches!(again, LiveError::Conflict(ref m) if m.contains("already exists")),
        "{again}"
    );
    let mut changed = key_rejected();
    changed.cooldown = Some(Duration::from_secs(300));
    let update = plan(&file, &p.next, put(changed, false)).unwrap();
    assert_eq!(update.action, "update");
    assert_eq!(update.before.unwrap()["cooldown"], Value::Null);
    assert_eq!(update.after.unwrap()["cooldown"], "5m");
    assert_eq!(update.next.rules.len(), 1);
}

#[test]
fn file_rules_are_read_only_and_names_unique() {
    let file = file();
    let mut same_name = key_rejected();
    same_name.name = "file-rule".into();
    for change in [
        put(same_name.clone(), true),
        put(same_name.clone(), false),
        Change::DeleteRule("file-rule".into()),
        Change::ToggleRule {
            name: "file-rule".into(),
            enabled: None,
        },
    ] {
        let err = plan(&file, &LiveObjects::default(), change.clone()).unwrap_err();
        assert!(
            matches!(err, LiveError::Conflict(ref m) if m.contains("configuration file")),
            "{change:?}: {err}"
        );
    }
    let missing = plan(
        &file,
        &LiveObjects::default(),
        Change::DeleteRule("nope".into()),
    );
    assert!(matches!(missing, Err(LiveError::NotFound(ref m)) if m.contains("rule 'nope'")));
    // The file gained a rule of a stored rule's name: merging refuses it.
    let live = plan(&file, &LiveObjects::default(), put(key_rejected(), true))
        .unwrap()
        .next;
    let mut edited = file.clone();
    edited.rules.push(key_rejected());
    let err = merge(&edited, &live).unwrap_err();
    assert!(
        matches!(err, LiveError::Conflict(ref m) if m.contains("rule 'key-rejected'")),
        "{err}"
    );
}

#[test]
fn validation_names_the_rule_and_field() {
    let file = file();
    let live = LiveObjects::default();
    let cases = [
        (
            json!({ "name": "r", "when": { "body_regex": "(" }, "actions": [ { "log": true } ] }),
            "rules[r].when.body_regex",
            "regular expression",
        ),
        (
            json!({ "name": "r", "when": { "status": 401 },
                    "actions": [ { "log": true }, { "alert": ["ops", "pager"] } ] }),
            "rules[r].actions[1].alert[1]",
            "pager",
        ),
        (
            json!({ "name": "r", "upstreams": ["nowhere"], "when": { "status": 401 },
                    "actions": [ { "log": true } ] }),
            "rules[r].upstreams[0]",
            "nowhere",
        ),
        (
            json!({ "name": "r", "when": { "status": "500-700" }, "actions": [ { "log": true } ] }),
            "rules[r].when.status",
            "599",
        ),
        (
            json!({ "name": "r", "when": { "status": 401 }, "actions": [] }),
            "rules[r].actions",
            "at least one action",
        ),
        (
            json!({ "name": "a b", "when": { "status": 401 }, "actions": [ { "log": true } ] }),
            "rules[a b].name",
            "letters",
        ),
    ];
    for (body, want_path, want_message) in cases {
        let err = plan(&file, &live, put(rule(body.clone()), true)).unwrap_err();
        let (path, message) = invalid(err);
        assert_eq!(path, want_path, "{body}");
        assert!(message.contains(want_message), "{body}: {message}");
    }
}

#[test]
fn toggle_flips_and_delete_removes() {
    let file = file();
    let live = plan(&file, &LiveObjects::default(), put(key_rejected(), true))
        .unwrap()
        .next;
    let toggle = |live: &LiveObjects, enabled| {
        plan(
            &file,
            live,
            Change::ToggleRule {
                name: "key-rejected".into(),
                enabled,
            },
        )
        .unwrap()
    };
    let off = toggle(&live, None);
    assert_eq!(off.action, "toggle");
    assert_eq!(off.before.as_ref().unwrap()["enabled"], true);
    assert_eq!(off.after.as_ref().unwrap()["enabled"], false);
    assert!(!off.next.rules[0].enabled);
    assert!(!toggle(&off.next, Some(false)).next.rules[0].enabled);
    assert!(toggle(&off.next, None).next.rules[0].enabled);

    let gone = plan(&file, &live, Change::DeleteRule("key-rejected".into())).unwrap();
    assert_eq!((gone.action, gone.kind), ("delete", "rule"));
    assert!(gone.after.is_none());
    assert!(gone.next.rules.is_empty());
    assert_eq!(gone.merged.rules.len(), 1, "the file's rule stays");
}

#[test]
fn upstream_named_by_a_rule_is_kept() {
    let file = file();
    let live = plan(
        &file,
        &LiveObjects::default(),
        Change::PutUpstream {
            spec: serde_json::from_value(
                json!({ "name": "api-up", "kind": "openai", "base_url": "http://127.0.0.1:9" }),
            )
            .unwrap(),
            credentials: vec![],
            must_be_new: true,
        },
    )
    .unwrap()
    .next;
    let mut scoped = key_rejected();
    scoped.upstreams = vec!["api-up".into()];
    let live = plan(&file, &live, put(scoped, true)).unwrap().next;
    let err = plan(&file, &live, Change::DeleteUpstream("api-up".into())).unwrap_err();
    assert!(
        matches!(err, LiveError::Conflict(ref m) if m.contains("rule 'key-rejected'")),
        "{err}"
    );
}
