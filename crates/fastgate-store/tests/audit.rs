//! Test bodies run once per backend (`both_backends!`), so they are not `#[test]`
//! functions themselves: allow what tests may do.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use chrono::Duration;
use common::{at, audit};
use fastgate_store::{AuditFilter, AuditRecord, SortOrder, Store, StoreError};

fn ids(rows: &[AuditRecord]) -> Vec<&str> {
    rows.iter().map(|r| r.request_id.as_str()).collect()
}

async fn audit_round_trip_keeps_every_field(store: Store) {
    let mut r = audit("full", at(0));
    r.key_id = Some("k1".into());
    r.key_name = Some("key one".into());
    r.source = Some("team".into());
    r.query = Some("a=1".into());
    r.route = Some("openai".into());
    r.upstream = Some("oai".into());
    r.credential = Some("cred-1".into());
    r.target_url = Some("https://api.example/v1/chat/completions".into());
    r.status_code = 503;
    r.ttfb_ms = Some(12.25);
    r.duration_ms = 99.5;
    r.request_bytes = 1 << 40;
    r.response_bytes = 0;
    r.user_agent = Some("ua/1".into());
    r.client_ip = Some("10.0.0.1".into());
    r.is_stream = true;
    r.stream_chunks = 42;
    r.model = Some("gpt-4o".into());
    r.tokens_in = Some(10);
    r.tokens_out = Some(20);
    r.tokens_estimated = true;
    r.cost = Some(0.0125);
    r.error_message = Some("upstream timeout ünïcode".into());
    r.request_headers = Some(r#"{"authorization":"[redacted]"}"#.into());
    r.response_headers = Some("{}".into());
    r.request_body = Some("{\"x\":1}".into());
    r.response_body = Some("data: ...\n\n".into());
    assert_eq!(
        store
            .insert_audit_batch(std::slice::from_ref(&r))
            .await
            .unwrap(),
        1
    );
    assert_eq!(store.get_audit("full").await.unwrap(), Some(r));
    assert_eq!(store.get_audit("nope").await.unwrap(), None);

    let mut big = audit("big", at(0));
    big.stream_chunks = u64::MAX;
    let err = store.insert_audit_batch(&[big]).await.unwrap_err();
    assert!(matches!(err, StoreError::OutOfRange { .. }), "{err}");
    assert_eq!(store.count_audit(&AuditFilter::default()).await.unwrap(), 1);
}
both_backends!(audit_round_trip_keeps_every_field);

async fn audit_insert_is_idempotent(store: Store) {
    let rows = vec![audit("a", at(1)), audit("b", at(2)), audit("c", at(3))];
    assert_eq!(store.insert_audit_batch(&rows).await.unwrap(), 3);
    assert_eq!(store.insert_audit_batch(&rows).await.unwrap(), 0);
    let more = vec![audit("c", at(3)), audit("d", at(4))];
    assert_eq!(store.insert_audit_batch(&more).await.unwrap(), 1);
    let twice = vec![audit("e", at(5)), audit("e", at(6))];
    assert_eq!(store.insert_audit_batch(&twice).await.unwrap(), 1);
    assert_eq!(store.insert_audit_batch(&[]).await.unwrap(), 0);
    assert_eq!(store.count_audit(&AuditFilter::default()).await.unwrap(), 5);
    assert_eq!(
        store.get_audit("e").await.unwrap().unwrap().request_time,
        at(5)
    );
}
both_backends!(audit_insert_is_idempotent);

async fn audit_large_batch_is_chunked_and_limit_clamped(store: Store) {
    let rows: Vec<_> = (0..1234)
        .map(|i| audit(&format!("r{i:05}"), at(i)))
        .collect();
    assert_eq!(store.insert_audit_batch(&rows).await.unwrap(), 1234);
    assert_eq!(
        store.count_audit(&AuditFilter::default()).await.unwrap(),
        1234
    );

    let page = store.query_audit(&AuditFilter::default()).await.unwrap();
    assert_eq!(page.len(), 100, "default page size");
    assert_eq!(page[0].request_id, "r01233", "newest first by default");
    let f = AuditFilter {
        limit: Some(5000),
        ..AuditFilter::default()
    };
    assert_eq!(store.query_audit(&f).await.unwrap().len(), 1000);
    let f = AuditFilter {
        limit: Some(0),
        ..AuditFilter::default()
    };
    assert_eq!(store.query_audit(&f).await.unwrap().len(), 1);
}
both_backends!(audit_large_batch_is_chunked_and_limit_clamped);

async fn audit_paging_and_order(store: Store) {
    // Two records share a timestamp: request_id breaks the tie.
    let rows = vec![
        audit("p3", at(30)),
        audit("p1", at(10)),
        audit("p2b", at(20)),
        audit("p2a", at(20)),
        audit("p4", at(40)),
    ];
    store.insert_audit_batch(&rows).await.unwrap();
    let asc = AuditFilter {
        order: SortOrder::Asc,
        ..AuditFilter::default()
    };
    let all = store.query_audit(&asc).await.unwrap();
    assert_eq!(ids(&all), ["p1", "p2a", "p2b", "p3", "p4"]);
    let desc = store.query_audit(&AuditFilter::default()).await.unwrap();
    assert_eq!(ids(&desc), ["p4", "p3", "p2b", "p2a", "p1"]);

    let page = |offset| AuditFilter {
        order: SortOrder::Asc,
        limit: Some(2),
        offset: Some(offset),
        ..AuditFilter::default()
    };
    assert_eq!(
        ids(&store.query_audit(&page(0)).await.unwrap()),
        ["p1", "p2a"]
    );
    assert_eq!(
        ids(&store.query_audit(&page(2)).await.unwrap()),
        ["p2b", "p3"]
    );
    assert_eq!(ids(&store.query_audit(&page(4)).await.unwrap()), ["p4"]);
    assert!(store.query_audit(&page(6)).await.unwrap().is_empty());
    assert_eq!(
        store.count_audit(&page(4)).await.unwrap(),
        5,
        "count ignores paging"
    );
}
both_backends!(audit_paging_and_order);

/// A varied data set for filter tests.
fn dataset() -> Vec<AuditRecord> {
    let mut rows = Vec::new();
    let mut push = |id: &str, secs: i64, edit: &dyn Fn(&mut AuditRecord)| {
        let mut r = audit(id, at(secs));
        edit(&mut r);
        rows.push(r);
    };
    push("k1-ok", 0, &|r| {
        r.key_id = Some("k1".into());
        r.route = Some("openai".into());
        r.upstream = Some("oai".into());
        r.model = Some("gpt-4o".into());
        r.path = "/a_b/chat".into();
    });
    push("k1-err", 10, &|r| {
        r.key_id = Some("k1".into());
        r.route = Some("openai".into());
        r.upstream = Some("azure".into());
        r.status_code = 502;
        r.error_message = Some("bad gateway".into());
        r.path = "/aXb/chat".into();
    });
    push("k2-stream", 20, &|r| {
        r.key_id = Some("k2".into());
        r.route = Some("anthropic".into());
        r.is_stream = true;
        r.model = Some("claude-3".into());
        r.method = "GET".into();
        r.path = "/a%b/x".into();
    });
    push("k2-429", 30, &|r| {
        r.key_id = Some("k2".into());
        r.status_code = 429;
        r.error_message = Some(String::new());
        r.path = "/A_b/chat".into();
    });
    push("anon-404", 40, &|r| {
        r.status_code = 404;
        r.path = "/a\\b/x".into();
    });
    rows
}

/// A filter edit and the ids (ascending) it must select from `dataset()`.
type Case = (fn(&mut AuditFilter), &'static [&'static str]);

const ALL: &[&str] = &["k1-ok", "k1-err", "k2-stream", "k2-429", "anon-404"];

fn filter_cases() -> Vec<Case> {
    vec![
        (|_| {}, ALL),
        (
            |f| f.from = Some(at(10)),
            &["k1-err", "k2-stream", "k2-429", "anon-404"],
        ),
        (|f| f.to = Some(at(20)), &["k1-ok", "k1-err"]),
        (
            |f| (f.from, f.to) = (Some(at(10)), Some(at(30))),
            &["k1-err", "k2-stream"],
        ),
        (|f| f.key_id = Some("k2".into()), &["k2-stream", "k2-429"]),
        (|f| f.key_id = Some("nobody".into()), &[]),
        (|f| f.route = Some("openai".into()), &["k1-ok", "k1-err"]),
        (|f| f.upstream = Some("azure".into()), &["k1-err"]),
        (|f| f.status = Some(429), &["k2-429"]),
        (
            |f| f.status_min = Some(400),
            &["k1-err", "k2-429", "anon-404"],
        ),
        (
            |f| f.status_max = Some(429),
            &["k1-ok", "k2-stream", "k2-429", "anon-404"],
        ),
        (
            |f| (f.status_min, f.status_max) = (Some(500), Some(599)),
            &["k1-err"],
        ),
        // 2xx rows are not in the partial status index (migration 0011).
        (|f| f.status = Some(200), &["k1-ok", "k2-stream"]),
        (|f| f.status_min = Some(200), ALL),
        (
            |f| (f.status_min, f.status_max) = (Some(300), Some(499)),
            &["k2-429", "anon-404"],
        ),
        (|f| f.method = Some("GET".into()), &["k2-stream"]),
        (|f| f.is_stream = Some(true), &["k2-stream"]),
        (
            |f| f.is_stream = Some(false),
            &["k1-ok", "k1-err", "k2-429", "anon-404"],
        ),
        (|f| f.model = Some("claude-3".into()), &["k2-stream"]),
        (|f| f.has_error = Some(true), &["k1-err"]),
        (
            |f| f.has_error = Some(false),
            &["k1-ok", "k2-stream", "k2-429", "anon-404"],
        ),
        (
            |f| (f.key_id, f.status_min) = (Some("k1".into()), Some(500)),
            &["k1-err"],
        ),
        (|f| f.path_prefix = Some("/a_b".into()), &["k1-ok"]),
    ]
}

async fn audit_every_filter(store: Store) {
    store.insert_audit_batch(&dataset()).await.unwrap();
    for (edit, want) in filter_cases() {
        let mut f = AuditFilter {
            order: SortOrder::Asc,
            ..AuditFilter::default()
        };
        edit(&mut f);
        let got = store.query_audit(&f).await.unwrap();
        assert_eq!(ids(&got), want, "{f:?}");
        assert_eq!(
            store.count_audit(&f).await.unwrap(),
            want.len() as u64,
            "{f:?}"
        );
    }
}
both_backends!(audit_every_filter);

async fn audit_path_prefix_is_literal_and_case_sensitive(store: Store) {
    store.insert_audit_batch(&dataset()).await.unwrap();
    let prefix = |p: &'static str, want: &'static [&'static str]| {
        let store = store.clone();
        async move {
            let f = AuditFilter {
                path_prefix: Some(p.into()),
                order: SortOrder::Asc,
                ..AuditFilter::default()
            };
            assert_eq!(
                ids(&store.query_audit(&f).await.unwrap()),
                want,
                "prefix {p:?}"
            );
            assert_eq!(store.count_audit(&f).await.unwrap(), want.len() as u64);
        }
    };
    prefix("/a_b", &["k1-ok"]).await; // `_` is not a wildcard, and no match on /A_b
    prefix("/a%", &["k2-stream"]).await; // `%` is not a wildcard
    prefix("/a\\b", &["anon-404"]).await; // backslash is literal
    prefix("/A", &["k2-429"]).await;
    prefix("/a", &["k1-ok", "k1-err", "k2-stream", "anon-404"]).await;
    prefix("", &["k1-ok", "k1-err", "k2-stream", "k2-429", "anon-404"]).await;
    prefix("/aXb/chat/more", &[]).await;
    prefix("' OR 1=1 --", &[]).await;
}
both_backends!(audit_path_prefix_is_literal_and_case_sensitive);

async fn audit_retention_deletes_in_batches(store: Store) {
    let rows: Vec<_> = (0..25).map(|i| audit(&format!("t{i:02}"), at(i))).collect();
    store.insert_audit_batch(&rows).await.unwrap();
    assert_eq!(store.delete_audit_before(at(0), 10).await.unwrap(), 0);
    assert_eq!(store.delete_audit_before(at(17), 4).await.unwrap(), 17);
    let left = store
        .query_audit(&AuditFilter {
            order: SortOrder::Asc,
            ..AuditFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(left.first().map(|r| r.request_id.as_str()), Some("t17"));
    assert_eq!(left.len(), 8);
    // batch 0 is treated as 1; everything older than the future goes.
    assert_eq!(
        store
            .delete_audit_before(at(100) + Duration::days(1), 0)
            .await
            .unwrap(),
        8
    );
    assert_eq!(store.count_audit(&AuditFilter::default()).await.unwrap(), 0);
}
both_backends!(audit_retention_deletes_in_batches);
