//! Usage per API key and quota period on SQLite and PostgreSQL: batches add and
//! return the totals, refused batches write nothing, listing by period, history,
//! deletion, retention, and concurrent batches from many tasks summing exactly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use fastgate_store::{KeyPeriodUsage, Store};
use tokio::sync::Barrier;

const DAY1: &str = "d2026-11-30";
const DAY2: &str = "d2026-12-01";
const MONTH: &str = "m2026-11";

fn usage(key: &str, period: &str, requests: u64, tokens: u64, cost_nanos: u64) -> KeyPeriodUsage {
    KeyPeriodUsage {
        key_id: key.into(),
        period: period.into(),
        requests,
        tokens,
        cost_nanos,
    }
}

/// Every row of the store, by key then period.
async fn all_rows(store: &Store) -> Vec<KeyPeriodUsage> {
    let periods = ["all", DAY1, DAY2, MONTH, "m2026-12", "d2026-11-29"].map(String::from);
    store.list_key_period_usage(&periods).await.unwrap()
}

/// Waits (polling, 5 s at most) until the clock has passed `ms`, so the next write
/// is stamped later than every write that finished before the call.
async fn after_ms(ms: i64) -> i64 {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let now = chrono::Utc::now().timestamp_millis();
        if now > ms {
            return now;
        }
        assert!(
            Instant::now() < deadline,
            "the clock did not move past {ms}"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

async fn adds_and_returns_totals(store: Store) {
    assert!(store.add_key_period_usage(&[]).await.unwrap().is_empty());
    assert_eq!(store.key_period_usage("k1", "all").await.unwrap(), None);

    let first = store
        .add_key_period_usage(&[
            usage("k1", DAY1, 2, 30, 400),
            usage("k1", "all", 2, 30, 400),
        ])
        .await
        .unwrap();
    assert_eq!(
        first,
        [
            usage("k1", "all", 2, 30, 400),
            usage("k1", DAY1, 2, 30, 400)
        ],
        "sorted by key then period"
    );
    // Another instance's flush adds to the same rows; only touched rows come back.
    store
        .add_key_period_usage(&[usage("k2", "all", 9, 9, 9)])
        .await
        .unwrap();
    let second = store
        .add_key_period_usage(&[usage("k1", "all", 1, 5, 7), usage("k1", DAY1, 1, 5, 7)])
        .await
        .unwrap();
    assert_eq!(
        second,
        [
            usage("k1", "all", 3, 35, 407),
            usage("k1", DAY1, 3, 35, 407)
        ]
    );
    assert_eq!(
        store.key_period_usage("k1", DAY1).await.unwrap(),
        Some(usage("k1", DAY1, 3, 35, 407))
    );
    assert_eq!(store.key_period_usage("k1", DAY2).await.unwrap(), None);
    assert_eq!(
        store.key_period_usage("k2", "all").await.unwrap(),
        Some(usage("k2", "all", 9, 9, 9))
    );
    // Zero deltas create a row (a key seen with nothing counted yet) and change none.
    let zero = store
        .add_key_period_usage(&[usage("k3", DAY1, 0, 0, 0), usage("k1", DAY1, 0, 0, 0)])
        .await
        .unwrap();
    assert_eq!(
        zero,
        [usage("k1", DAY1, 3, 35, 407), usage("k3", DAY1, 0, 0, 0)]
    );
    // NUL in a key id is stored as U+FFFD, as everywhere else.
    let nul = store
        .add_key_period_usage(&[usage("k\0", "all", 1, 1, 1)])
        .await
        .unwrap();
    assert_eq!(nul[0].key_id, "k\u{FFFD}");
    assert_eq!(
        store.key_period_usage("k\0", "all").await.unwrap(),
        Some(usage("k\u{FFFD}", "all", 1, 1, 1))
    );
}
both_backends!(adds_and_returns_totals);

async fn duplicates_in_one_batch(store: Store) {
    let totals = store
        .add_key_period_usage(&[
            usage("b", "all", 1, 10, 100),
            usage("a", "all", 2, 20, 200),
            usage("b", "all", 3, 30, 300),
            usage("b", DAY1, 4, 40, 400),
            usage("b", "all", 5, 50, 500),
        ])
        .await
        .unwrap();
    assert_eq!(
        totals,
        [
            usage("a", "all", 2, 20, 200),
            usage("b", "all", 9, 90, 900),
            usage("b", DAY1, 4, 40, 400),
        ],
        "one result per row, duplicates added up"
    );
    // Duplicates of a row that exists add to its total too.
    let totals = store
        .add_key_period_usage(&[usage("a", "all", 1, 1, 1), usage("a", "all", 1, 1, 1)])
        .await
        .unwrap();
    assert_eq!(totals, [usage("a", "all", 4, 22, 202)]);
    assert_eq!(all_rows(&store).await.len(), 3);
}
both_backends!(duplicates_in_one_batch);

const MAX: u64 = i64::MAX as u64;

async fn out_of_range_refused(store: Store) {
    // i64::MAX itself fits and round-trips.
    let max = store
        .add_key_period_usage(&[usage("z", "all", MAX, MAX - 1, MAX - 2)])
        .await
        .unwrap();
    assert_eq!(max, [usage("z", "all", MAX, MAX - 1, MAX - 2)]);

    let refused: [(&str, Vec<KeyPeriodUsage>); 4] = [
        // A delta above i64::MAX, in each column.
        ("requests", vec![usage("a", "all", MAX + 1, 0, 0)]),
        ("cost_nanos", vec![usage("a", "all", 0, 0, u64::MAX)]),
        // Duplicates summing above it.
        (
            "tokens",
            vec![
                usage("a", DAY1, 0, MAX / 2 + 1, 0),
                usage("a", DAY1, 0, MAX / 2 + 1, 0),
            ],
        ),
        // The stored total plus the delta above it (found by the database).
        ("cost_nanos", vec![usage("z", "all", 0, 0, 3)]),
    ];
    for (what, mut batch) in refused {
        // Good rows before, in the same batch, must not be written.
        batch.insert(0, usage("a", MONTH, 1, 1, 1));
        let err = store.add_key_period_usage(&batch).await.unwrap_err();
        assert!(err.is_invalid_input(), "{what}: {err}");
        assert_eq!(all_rows(&store).await, max, "{what}: nothing written");
    }

    // A batch of several statements: 200 good rows first, the overflow last. The
    // whole transaction goes.
    let mut batch: Vec<_> = (0..200)
        .map(|i| usage(&format!("k{i:03}"), DAY1, 1, 1, 1))
        .collect();
    batch.push(usage("z", "all", 1, 0, 0));
    let err = store.add_key_period_usage(&batch).await.unwrap_err();
    assert!(err.is_invalid_input(), "{err}");
    assert_eq!(all_rows(&store).await, max, "no partial write");
    // Without the overflow the same rows go in.
    batch.pop();
    assert_eq!(store.add_key_period_usage(&batch).await.unwrap().len(), 200);
    assert_eq!(all_rows(&store).await.len(), 201);
}
both_backends!(out_of_range_refused);

async fn bad_period_refused(store: Store) {
    let longest = "p".repeat(32);
    let ok = store
        .add_key_period_usage(&[usage("a", &longest, 1, 1, 1), usage("a", "A-9z", 1, 1, 1)])
        .await
        .unwrap();
    assert_eq!(ok.len(), 2);
    for bad in [
        "",
        &"p".repeat(33),
        "d2026/11/30",
        "d2026_11_30",
        "all ",
        "mäy",
        "a\0",
        "'; DROP TABLE key_period_usage; --",
    ] {
        let err = store
            .add_key_period_usage(&[usage("a", "all", 1, 1, 1), usage("b", bad, 1, 1, 1)])
            .await
            .unwrap_err();
        assert!(err.is_invalid_input(), "{bad:?}: {err}");
        let err = store.key_period_usage("a", bad).await.unwrap_err();
        assert!(err.is_invalid_input(), "{bad:?}: {err}");
        let err = store
            .list_key_period_usage(&["all".into(), bad.to_owned()])
            .await
            .unwrap_err();
        assert!(err.is_invalid_input(), "{bad:?}: {err}");
    }
    assert_eq!(store.key_period_usage("a", "all").await.unwrap(), None);
    assert_eq!(store.key_usage_history("a", 10).await.unwrap().len(), 2);
    assert!(store.key_usage_history("b", 10).await.unwrap().is_empty());
}
both_backends!(bad_period_refused);

async fn list_by_periods(store: Store) {
    store
        .add_key_period_usage(&[
            usage("c", DAY1, 1, 1, 1),
            usage("a", "all", 2, 2, 2),
            usage("a", DAY1, 3, 3, 3),
            usage("a", DAY2, 4, 4, 4),
            usage("b", MONTH, 5, 5, 5),
            usage("b", "all", 6, 6, 6),
            usage("B", DAY1, 7, 7, 7),
        ])
        .await
        .unwrap();
    let got = store
        .list_key_period_usage(&[DAY1.into(), "all".into(), DAY1.into()])
        .await
        .unwrap();
    assert_eq!(
        got,
        [
            usage("B", DAY1, 7, 7, 7),
            usage("a", "all", 2, 2, 2),
            usage("a", DAY1, 3, 3, 3),
            usage("b", "all", 6, 6, 6),
            usage("c", DAY1, 1, 1, 1),
        ],
        "by key then period, bytewise; a period asked twice counts once"
    );
    assert_eq!(
        store.list_key_period_usage(&[MONTH.into()]).await.unwrap(),
        [usage("b", MONTH, 5, 5, 5)]
    );
    assert!(store.list_key_period_usage(&[]).await.unwrap().is_empty());
    assert!(
        store
            .list_key_period_usage(&["d2027-01-01".into()])
            .await
            .unwrap()
            .is_empty()
    );
}
both_backends!(list_by_periods);

async fn history_order(store: Store) {
    // Written in an order unlike the periods' names; each write a later millisecond.
    let mut t = 0;
    for (period, requests) in [(MONTH, 1), ("d2026-11-29", 2), (DAY1, 3), ("all", 4)] {
        after_ms(t).await;
        store
            .add_key_period_usage(&[usage("k", period, requests, 0, 0)])
            .await
            .unwrap();
        t = now_ms();
    }
    store
        .add_key_period_usage(&[usage("other", "all", 1, 1, 1)])
        .await
        .unwrap();
    let periods = |rows: Vec<KeyPeriodUsage>| -> Vec<String> {
        assert!(rows.iter().all(|r| r.key_id == "k"), "{rows:?}");
        rows.into_iter().map(|r| r.period).collect()
    };
    assert_eq!(
        periods(store.key_usage_history("k", 10).await.unwrap()),
        ["all", DAY1, "d2026-11-29", MONTH]
    );
    // Adding to the month makes it the most recent.
    after_ms(t).await;
    store
        .add_key_period_usage(&[usage("k", MONTH, 1, 0, 0)])
        .await
        .unwrap();
    let history = store.key_usage_history("k", 2).await.unwrap();
    assert_eq!(
        history,
        [usage("k", MONTH, 2, 0, 0), usage("k", "all", 4, 0, 0)]
    );
    assert!(store.key_usage_history("k", 0).await.unwrap().is_empty());
    assert!(
        store
            .key_usage_history("nobody", 5)
            .await
            .unwrap()
            .is_empty()
    );
}
both_backends!(history_order);

async fn delete_and_prune(store: Store) {
    let old = [
        usage("a", "all", 1, 1, 1),
        usage("a", DAY1, 1, 1, 1),
        usage("b", "all", 1, 1, 1),
        usage("b", DAY1, 1, 1, 1),
        usage("b", MONTH, 1, 1, 1),
    ];
    store.add_key_period_usage(&old).await.unwrap();
    let cutoff = after_ms(now_ms()).await;
    // Written after the cutoff: a new day, and the month added to again.
    store
        .add_key_period_usage(&[usage("b", DAY2, 1, 1, 1), usage("b", MONTH, 1, 1, 1)])
        .await
        .unwrap();

    assert_eq!(store.prune_key_period_usage(0).await.unwrap(), 0);
    assert_eq!(
        store.prune_key_period_usage(cutoff).await.unwrap(),
        2,
        "a/DAY1 and b/DAY1"
    );
    assert_eq!(
        all_rows(&store).await,
        [
            usage("a", "all", 1, 1, 1),
            usage("b", "all", 1, 1, 1),
            usage("b", DAY2, 1, 1, 1),
            usage("b", MONTH, 2, 2, 2),
        ]
    );
    assert_eq!(store.prune_key_period_usage(cutoff).await.unwrap(), 0);
    // The lifetime totals are never pruned.
    assert_eq!(store.prune_key_period_usage(i64::MAX).await.unwrap(), 2);
    assert_eq!(
        all_rows(&store).await,
        [usage("a", "all", 1, 1, 1), usage("b", "all", 1, 1, 1)]
    );

    // Deleting a key deletes its rows only; a late flush of it is still stored.
    store
        .add_key_period_usage(&[usage("a", DAY2, 1, 1, 1)])
        .await
        .unwrap();
    assert_eq!(store.delete_key_period_usage("a").await.unwrap(), 2);
    assert_eq!(store.delete_key_period_usage("a").await.unwrap(), 0);
    assert_eq!(all_rows(&store).await, [usage("b", "all", 1, 1, 1)]);
    store
        .add_key_period_usage(&[usage("a", DAY2, 1, 1, 1)])
        .await
        .unwrap();
    assert_eq!(
        store.key_period_usage("a", DAY2).await.unwrap(),
        Some(usage("a", DAY2, 1, 1, 1))
    );
}
both_backends!(delete_and_prune);

const TASKS: u64 = 8;
const BATCHES: u64 = 50;
const KEYS: [&str; 4] = ["k0", "k1", "k2", "k3"];
const PERIODS: [&str; 2] = ["all", DAY1];

/// Batch `b` of task `t`: every (key, period) once plus a duplicate of one, in an
/// order that differs between tasks (reversed for odd tasks).
fn batch(t: u64, b: u64) -> Vec<KeyPeriodUsage> {
    let mut rows: Vec<_> = KEYS
        .iter()
        .flat_map(|k| PERIODS.iter().map(move |p| (*k, *p)))
        .map(|(k, p)| usage(k, p, 1, t + 1, b + 1))
        .collect();
    let dup = rows[usize::try_from((t + b) % 8).unwrap()].clone();
    rows.push(dup);
    if t % 2 == 1 {
        rows.reverse();
    }
    rows
}

async fn concurrent_adds(store: Store) {
    let mut expected: BTreeMap<(String, String), (u64, u64, u64)> = BTreeMap::new();
    for t in 0..TASKS {
        for b in 0..BATCHES {
            for d in batch(t, b) {
                let e = expected.entry((d.key_id, d.period)).or_default();
                *e = (e.0 + d.requests, e.1 + d.tokens, e.2 + d.cost_nanos);
            }
        }
    }
    let barrier = Arc::new(Barrier::new(usize::try_from(TASKS).unwrap()));
    let tasks: Vec<_> = (0..TASKS)
        .map(|t| {
            let (store, barrier) = (store.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                let mut seen = Vec::new();
                for b in 0..BATCHES {
                    let totals = store.add_key_period_usage(&batch(t, b)).await.unwrap();
                    assert_eq!(totals.len(), 8, "one total per row touched");
                    seen.extend(totals);
                }
                seen
            })
        })
        .collect();
    // Each batch adds at least one request to every row, so the totals it sees of
    // a row are all different: each batch saw the row after its own add only.
    let mut seen: BTreeMap<(String, String), Vec<u64>> = BTreeMap::new();
    for task in tasks {
        let result = tokio::time::timeout(Duration::from_secs(60), task)
            .await
            .expect("the batches did not finish within 60 s")
            .unwrap();
        for r in result {
            seen.entry((r.key_id, r.period))
                .or_default()
                .push(r.requests);
        }
    }
    let rows = all_rows(&store).await;
    assert_eq!(rows.len(), 8);
    for r in rows {
        let key = (r.key_id.clone(), r.period.clone());
        let (requests, tokens, cost) = expected[&key];
        assert_eq!(
            (r.requests, r.tokens, r.cost_nanos),
            (requests, tokens, cost),
            "{key:?}"
        );
        let mut totals = seen.remove(&key).unwrap();
        totals.sort_unstable();
        let n = totals.len();
        totals.dedup();
        assert_eq!(totals.len(), n, "{key:?}: a total seen twice");
        assert_eq!(totals.last(), Some(&requests), "{key:?}");
    }
}
both_backends!(concurrent_adds);
