//! The rules of `plan` and `merge`, without a database.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use fastgate_config::{Config, RouteConfig, Secret, UpstreamConfig};
use serde_json::json;

use crate::{Change, CredentialInput, LiveError, LiveObjects, merge, plan};

fn file() -> Config {
    fastgate_config::load_str(
        r#"
upstreams:
  - name: file-up
    kind: openai
    base_url: "http://127.0.0.1:9"
    credentials: [ { name: k1, key: "sk-file-key-1" } ]
routes:
  - name: file-route
    match: { path: "/f/**" }
    upstream: file-up
models:
  - name: smart
    deployments: [ { upstream: file-up, model: gpt-x } ]
"#,
        &|_| None,
    )
    .unwrap()
}

fn upstream(name: &str) -> UpstreamConfig {
    serde_json::from_value(
        json!({ "name": name, "kind": "openai", "base_url": "http://127.0.0.1:9" }),
    )
    .unwrap()
}

fn route(name: &str, upstream: &str) -> RouteConfig {
    serde_json::from_value(
        json!({ "name": name, "match": { "path": "/r/**" }, "upstream": upstream }),
    )
    .unwrap()
}

fn cred(name: &str, key: Option<&str>) -> CredentialInput {
    CredentialInput {
        name: name.into(),
        key: key.map(|k| Secret::new(k.to_string())),
        weight: None,
        quota: None,
    }
}

/// Apply a change the way the admin API does (without the store).
fn step(file: &Config, live: &LiveObjects, change: Change) -> Result<LiveObjects, LiveError> {
    plan(file, live, change).map(|p| p.next)
}

#[test]
fn creates_and_merges() {
    let file = file();
    let live = LiveObjects::default();
    let p = plan(
        &file,
        &live,
        Change::PutUpstream {
            spec: upstream("api-up"),
            credentials: vec![cred("c1", Some("sk-api-1"))],
            must_be_new: true,
        },
    )
    .unwrap();
    assert_eq!(
        (p.action, p.kind, p.name.as_str()),
        ("create", "upstream", "api-up")
    );
    assert!(p.before.is_none());
    let after = p.after.clone().unwrap();
    assert_eq!(
        after["credentials"][0]["key_hint"],
        fastgate_upstream::key_hint("sk-api-1")
    );
    assert!(
        !after.to_string().contains("sk-api-1"),
        "the view holds the key"
    );
    let live = p.next;
    let live = step(
        &file,
        &live,
        Change::PutRoute {
            spec: route("api-route", "api-up"),
            must_be_new: true,
        },
    )
    .unwrap();
    // A key of the API on an upstream of the file.
    let live = step(
        &file,
        &live,
        Change::PutCredential {
            upstream: "file-up".into(),
            credential: cred("k2", Some("sk-extra")),
            must_be_new: true,
        },
    )
    .unwrap();
    let merged = merge(&file, &live).unwrap();
    assert_eq!(merged.upstreams.len(), 2);
    assert_eq!(
        merged
            .routes
            .iter()
            .map(|r| r.name.as_str())
            .collect::<Vec<_>>(),
        ["file-route", "api-route"]
    );
    let file_up = &merged.upstreams[0];
    assert_eq!(
        file_up
            .credentials
            .iter()
            .map(|c| c.name.as_str())
            .collect::<Vec<_>>(),
        ["k1", "k2"]
    );
    assert_eq!(merged.upstreams[1].credentials[0].key.expose(), "sk-api-1");
}

#[test]
fn file_objects_are_read_only_and_names_unique() {
    let file = file();
    let live = LiveObjects::default();
    for change in [
        Change::PutUpstream {
            spec: upstream("file-up"),
            credentials: vec![],
            must_be_new: false,
        },
        Change::DeleteUpstream("file-up".into()),
        Change::PutRoute {
            spec: route("file-route", "file-up"),
            must_be_new: true,
        },
        Change::DeleteRoute("file-route".into()),
        Change::ToggleRoute {
            name: "file-route".into(),
            active: None,
        },
        Change::PutCredential {
            upstream: "file-up".into(),
            credential: cred("k1", Some("x")),
            must_be_new: false,
        },
        Change::DeleteCredential {
            upstream: "file-up".into(),
            name: "k1".into(),
        },
    ] {
        let err = plan(&file, &live, change.clone()).unwrap_err();
        assert!(
            matches!(err, LiveError::Conflict(ref m) if m.contains("configuration file")),
            "{change:?}: {err}"
        );
    }
    let live = step(
        &file,
        &live,
        Change::PutRoute {
            spec: route("r", "file-up"),
            must_be_new: true,
        },
    )
    .unwrap();
    let again = plan(
        &file,
        &live,
        Change::PutRoute {
            spec: route("r", "file-up"),
            must_be_new: true,
        },
    );
    assert!(matches!(again, Err(LiveError::Conflict(_))));
    let reserved = plan(
        &file,
        &live,
        Change::PutRoute {
            spec: route("proxy:x", "file-up"),
            must_be_new: true,
        },
    );
    assert!(matches!(reserved, Err(LiveError::Invalid { .. })));
    // The file gained a route of the same name: merging refuses it.
    let mut edited = file.clone();
    edited.routes.push(route("r", "file-up"));
    assert!(matches!(merge(&edited, &live), Err(LiveError::Conflict(_))));
}

#[test]
fn validation_names_the_object_and_field() {
    let file = file();
    let err = plan(
        &file,
        &LiveObjects::default(),
        Change::PutRoute {
            spec: route("bad", "nowhere"),
            must_be_new: true,
        },
    )
    .unwrap_err();
    match err {
        LiveError::Invalid { path, message } => {
            assert_eq!(path, "routes[bad].upstream");
            assert!(message.contains("nowhere"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    let no_key = plan(
        &file,
        &LiveObjects::default(),
        Change::PutCredential {
            upstream: "file-up".into(),
            credential: cred("new", None),
            must_be_new: true,
        },
    );
    assert!(matches!(no_key, Err(LiveError::Invalid { .. })));
    let unknown = plan(
        &file,
        &LiveObjects::default(),
        Change::PutCredential {
            upstream: "nope".into(),
            credential: cred("c", Some("k")),
            must_be_new: true,
        },
    );
    assert!(matches!(unknown, Err(LiveError::NotFound(_))));
}

#[test]
fn upstream_in_use_is_kept() {
    let file = file();
    let live = step(
        &file,
        &LiveObjects::default(),
        Change::PutUpstream {
            spec: upstream("api-up"),
            credentials: vec![],
            must_be_new: true,
        },
    )
    .unwrap();
    let live = step(
        &file,
        &live,
        Change::PutRoute {
            spec: route("uses-it", "api-up"),
            must_be_new: true,
        },
    )
    .unwrap();
    let err = plan(&file, &live, Change::DeleteUpstream("api-up".into())).unwrap_err();
    assert!(
        matches!(err, LiveError::Conflict(ref m) if m.contains("route 'uses-it'")),
        "{err}"
    );
    let live = step(&file, &live, Change::DeleteRoute("uses-it".into())).unwrap();
    let live = step(&file, &live, Change::DeleteUpstream("api-up".into())).unwrap();
    assert!(live.upstreams.is_empty());
}

#[test]
fn credential_update_keeps_the_key_and_toggle_flips() {
    let file = file();
    let live = step(
        &file,
        &LiveObjects::default(),
        Change::PutCredential {
            upstream: "file-up".into(),
            credential: cred("c", Some("sk-keep")),
            must_be_new: true,
        },
    )
    .unwrap();
    let mut weight_only = cred("c", None);
    weight_only.weight = Some(5);
    let p = plan(
        &file,
        &live,
        Change::PutCredential {
            upstream: "file-up".into(),
            credential: weight_only,
            must_be_new: false,
        },
    )
    .unwrap();
    assert_eq!(p.action, "update");
    assert_eq!(p.next.credentials[0].key.expose(), "sk-keep");
    assert_eq!(p.next.credentials[0].weight, 5);
    let live = step(
        &file,
        &p.next,
        Change::PutRoute {
            spec: route("t", "file-up"),
            must_be_new: true,
        },
    )
    .unwrap();
    let off = step(
        &file,
        &live,
        Change::ToggleRoute {
            name: "t".into(),
            active: None,
        },
    )
    .unwrap();
    assert!(!off.routes[0].active);
    let still_off = step(
        &file,
        &off,
        Change::ToggleRoute {
            name: "t".into(),
            active: Some(false),
        },
    )
    .unwrap();
    assert!(!still_off.routes[0].active);
    let on = step(
        &file,
        &still_off,
        Change::ToggleRoute {
            name: "t".into(),
            active: None,
        },
    )
    .unwrap();
    assert!(on.routes[0].active);
}
