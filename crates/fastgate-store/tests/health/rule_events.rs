//! Rule events: recording, filters, paging, the limit cap, retention.

use fastgate_store::{NewRuleEvent, RuleEventFilter, RuleEventRow, Store};

fn event(at_ms: i64, rule: &str, upstream: &str, credential: &str) -> NewRuleEvent {
    NewRuleEvent {
        at_ms,
        rule: rule.into(),
        upstream: upstream.into(),
        credential: credential.into(),
        status: Some(429),
        excerpt: "{\"error\":{\"type\":\"insufficient_quota\"}}".into(),
        action: "disable 10m, alert ops-feishu".into(),
        state_before: "active".into(),
        state_after: "disabled".into(),
        instance: "gw-1".into(),
    }
}

fn same(row: &RuleEventRow, e: &NewRuleEvent) -> bool {
    (
        row.at_ms,
        &row.rule,
        &row.upstream,
        &row.credential,
        row.status,
        &row.excerpt,
        &row.action,
        &row.state_before,
        &row.state_after,
        &row.instance,
    ) == (
        e.at_ms,
        &e.rule,
        &e.upstream,
        &e.credential,
        e.status,
        &e.excerpt,
        &e.action,
        &e.state_before,
        &e.state_after,
        &e.instance,
    )
}

async fn list(store: &Store, f: RuleEventFilter) -> Vec<RuleEventRow> {
    store.list_rule_events(&f).await.unwrap()
}

/// The `at_ms` of each row, in the order listed.
fn times(rows: &[RuleEventRow]) -> Vec<i64> {
    rows.iter().map(|r| r.at_ms).collect()
}

async fn rule_events(store: Store) {
    store.insert_rule_events(&[]).await.unwrap();
    assert!(list(&store, RuleEventFilter::default()).await.is_empty());
    let mut latency = event(6_000, "slow", "b", "k1");
    latency.status = None;
    latency.excerpt = "latency 31 s \0".into();
    let events = [
        event(1_000, "quota", "a", "k1"),
        event(2_000, "quota", "a", "k2"),
        event(3_000, "auth", "a", "k1"),
        event(4_000, "quota", "b", "k1"),
        event(5_000, "auth", "a", "k1"),
        latency,
    ];
    store.insert_rule_events(&events[..2]).await.unwrap();
    store.insert_rule_events(&events[2..]).await.unwrap();

    let all = list(&store, RuleEventFilter::default()).await;
    assert_eq!(times(&all), [6_000, 5_000, 4_000, 3_000, 2_000, 1_000]);
    assert!(all.windows(2).all(|w| w[0].id > w[1].id), "newest first");
    assert!(same(&all[1], &events[4]), "{:?}", all[1]);
    assert_eq!(all[0].status, None);
    assert_eq!(all[0].excerpt, "latency 31 s \u{FFFD}");

    let filtered =
        |upstream: Option<&str>, credential: Option<&str>, rule: Option<&str>| RuleEventFilter {
            upstream: upstream.map(Into::into),
            credential: credential.map(Into::into),
            rule: rule.map(Into::into),
            ..Default::default()
        };
    let cases = [
        (
            filtered(Some("a"), None, None),
            vec![5_000, 3_000, 2_000, 1_000],
        ),
        (
            filtered(Some("a"), Some("k1"), None),
            vec![5_000, 3_000, 1_000],
        ),
        (
            filtered(None, Some("k1"), None),
            vec![6_000, 5_000, 4_000, 3_000, 1_000],
        ),
        (
            filtered(None, None, Some("quota")),
            vec![4_000, 2_000, 1_000],
        ),
        (
            filtered(Some("a"), Some("k1"), Some("auth")),
            vec![5_000, 3_000],
        ),
        (filtered(Some("b"), Some("k2"), None), vec![]),
        // A value is bound, never spliced into the SQL.
        (filtered(Some("a' OR '1'='1"), None, None), vec![]),
    ];
    for (f, want) in cases {
        assert_eq!(times(&list(&store, f.clone()).await), want, "{f:?}");
    }
    let window = RuleEventFilter {
        from_ms: Some(2_000),
        to_ms: Some(5_000),
        ..Default::default()
    };
    assert_eq!(
        times(&list(&store, window.clone()).await),
        [4_000, 3_000, 2_000]
    );
    let window_quota = RuleEventFilter {
        rule: Some("quota".into()),
        ..window
    };
    assert_eq!(times(&list(&store, window_quota).await), [4_000, 2_000]);
    let since = RuleEventFilter {
        from_ms: Some(5_000),
        ..Default::default()
    };
    assert_eq!(times(&list(&store, since).await), [6_000, 5_000]);

    // Paging by id: pages of 4 then 2, then nothing.
    let mut pages = Vec::new();
    let mut cursor = None;
    loop {
        let page = list(
            &store,
            RuleEventFilter {
                before_id: cursor,
                limit: Some(4),
                ..Default::default()
            },
        )
        .await;
        let Some(last) = page.last() else { break };
        cursor = Some(last.id);
        pages.push(times(&page));
    }
    assert_eq!(
        pages,
        [vec![6_000, 5_000, 4_000, 3_000], vec![2_000, 1_000]]
    );

    // Retention in small batches.
    assert_eq!(store.delete_rule_events_before(3_000, 1).await.unwrap(), 2);
    assert_eq!(
        times(&list(&store, RuleEventFilter::default()).await),
        [6_000, 5_000, 4_000, 3_000]
    );
    assert_eq!(store.delete_rule_events_before(3_000, 1).await.unwrap(), 0);
}
crate::both_backends!(rule_events);

async fn rule_events_limit(store: Store) {
    let many: Vec<_> = (0..1_005).map(|i| event(i, "quota", "a", "k1")).collect();
    store.insert_rule_events(&many).await.unwrap();
    let limited = |limit| RuleEventFilter {
        limit,
        ..Default::default()
    };
    assert_eq!(list(&store, limited(None)).await.len(), 100, "default");
    assert_eq!(list(&store, limited(Some(7))).await.len(), 7);
    assert_eq!(
        list(&store, limited(Some(0))).await.len(),
        1,
        "at least one"
    );
    let capped = list(&store, limited(Some(5_000))).await;
    assert_eq!(capped.len(), 1_000, "the cap");
    assert_eq!(capped[0].at_ms, 1_004);
    assert_eq!(
        store.delete_rule_events_before(1_000, 64).await.unwrap(),
        1_000
    );
    assert_eq!(
        times(&list(&store, limited(None)).await),
        [1_004, 1_003, 1_002, 1_001, 1_000]
    );
}
crate::both_backends!(rule_events_limit);
