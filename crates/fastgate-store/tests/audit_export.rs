//! The export walk (`Store::export_audit`): keyset chunks, in the list's order,
//! every matching row once. Bodies run on both backends (`both_backends!`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{at, audit};
use fastgate_store::{AuditExport, AuditFilter, AuditRecord, EXPORT_CHUNK_ROWS, SortOrder, Store};

/// Every chunk of `export`, in order.
async fn chunks(mut export: AuditExport) -> Vec<Vec<AuditRecord>> {
    let mut out = Vec::new();
    while let Some(chunk) = export.next_chunk().await.unwrap() {
        assert!(!chunk.is_empty(), "a chunk is never empty");
        out.push(chunk);
    }
    // Finished walks stay finished.
    assert!(export.next_chunk().await.unwrap().is_none());
    out
}

fn ids(rows: &[AuditRecord]) -> Vec<String> {
    rows.iter().map(|r| r.request_id.clone()).collect()
}

async fn twenty_thousand_rows_come_in_many_bounded_chunks(store: Store) {
    const N: usize = 20_000;
    let rows: Vec<_> = (0..N)
        .map(|i| {
            let mut r = audit(&format!("r{i:05}"), at((i / 3) as i64));
            r.status_code = if i % 10 == 0 { 500 } else { 200 };
            r
        })
        .collect();
    for batch in rows.chunks(2000) {
        store.insert_audit_batch(batch).await.unwrap();
    }
    let got = chunks(store.export_audit(AuditFilter::default())).await;
    // Streaming proof: never more than one chunk of rows in hand at a time.
    assert_eq!(got.len(), N / EXPORT_CHUNK_ROWS as usize, "chunks");
    assert!(got.iter().all(|c| c.len() <= EXPORT_CHUNK_ROWS as usize));
    let all: Vec<_> = got.into_iter().flatten().collect();
    assert_eq!(all.len(), N);
    // Newest first, ties (three rows a second) broken by request id, none twice.
    let mut expected: Vec<String> = (0..N).map(|i| format!("r{i:05}")).collect();
    expected.reverse();
    assert_eq!(ids(&all), expected);

    // A filter and a limit that ends inside a chunk.
    let filter = AuditFilter {
        status_min: Some(500),
        limit: Some(1500),
        order: SortOrder::Asc,
        ..AuditFilter::default()
    };
    let got = chunks(store.export_audit(filter)).await;
    assert_eq!(
        got.iter().map(Vec::len).collect::<Vec<_>>(),
        vec![1000, 500]
    );
    let all: Vec<_> = got.into_iter().flatten().collect();
    let expected: Vec<String> = (0..15_000)
        .step_by(10)
        .map(|i| format!("r{i:05}"))
        .collect();
    assert_eq!(ids(&all), expected);
}
both_backends!(twenty_thousand_rows_come_in_many_bounded_chunks);

/// Equal request times across chunk boundaries, small chunks, offset and both
/// orders: the walk returns exactly what the paged list returns.
async fn export_equals_the_paged_list(store: Store) {
    let rows: Vec<_> = (0..250)
        .map(|i| {
            let mut r = audit(&format!("id-{:03}", (i * 37) % 250), at((i % 4) as i64));
            r.route = Some(if i % 2 == 0 { "even" } else { "odd" }.into());
            r
        })
        .collect();
    store.insert_audit_batch(&rows).await.unwrap();
    for order in [SortOrder::Desc, SortOrder::Asc] {
        for (route, offset) in [(None, None), (Some("even"), Some(5)), (Some("odd"), None)] {
            let filter = AuditFilter {
                route: route.map(str::to_owned),
                offset,
                order,
                ..AuditFilter::default()
            };
            let listed = store
                .query_audit(&AuditFilter {
                    limit: Some(1000),
                    ..filter.clone()
                })
                .await
                .unwrap();
            let got = chunks(store.export_audit(filter).with_chunk_rows(7)).await;
            assert!(got.iter().all(|c| c.len() <= 7));
            let all: Vec<_> = got.into_iter().flatten().collect();
            assert_eq!(all, listed, "{order:?} {route:?} {offset:?}");
            assert!(!all.is_empty());
        }
    }
    // A filter nothing matches: no chunk at all.
    let none = AuditFilter {
        route: Some("none".into()),
        ..AuditFilter::default()
    };
    assert!(chunks(store.export_audit(none)).await.is_empty());
    let zero = AuditFilter {
        limit: Some(0),
        ..AuditFilter::default()
    };
    assert!(chunks(store.export_audit(zero)).await.is_empty());
}
both_backends!(export_equals_the_paged_list);
