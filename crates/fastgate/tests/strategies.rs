//! Credential strategies end to end: the upstream's `strategy` decides which
//! provider key the mock receives.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{Backend, Harness};

fn config(strategy: &str) -> String {
    format!(
        r#"
upstreams:
  - name: mock
    kind: openai
    base_url: "{{MOCK}}"
    strategy: {strategy}
    credentials:
      - {{ name: a, key: "sk-strategy-a", weight: 3 }}
      - {{ name: b, key: "sk-strategy-b", weight: 1 }}
routes:
  - name: all
    match: {{ path: "/v1/**" }}
    upstream: mock
"#
    )
}

/// Send `n` requests; how many reached the mock with key a and with key b.
async fn keys_seen(h: &Harness, n: usize) -> (usize, usize) {
    let key = h.key().await;
    let before = h.mock.requests().len();
    for _ in 0..n {
        let resp = h
            .http
            .get(h.url("/v1/models"))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
    }
    let seen = h.mock.requests();
    let auth = |k: &str| {
        seen[before..]
            .iter()
            .filter(|r| r.header("authorization") == Some(format!("Bearer {k}").as_str()))
            .count()
    };
    (auth("sk-strategy-a"), auth("sk-strategy-b"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weighted_round_robin_and_random() {
    let h = Harness::start(Backend::Sqlite, &config("weighted")).await;
    assert_eq!(keys_seen(&h, 40).await, (30, 10));
    h.stop().await;
    let h = Harness::start(Backend::Sqlite, &config("round_robin")).await;
    assert_eq!(keys_seen(&h, 40).await, (20, 20));
    h.stop().await;
    let h = Harness::start(Backend::Sqlite, &config("random")).await;
    let (a, b) = keys_seen(&h, 40).await;
    assert_eq!(a + b, 40);
    assert!(a > 0 && b > 0, "both keys used: {a} {b}");
    h.stop().await;
}

#[test]
fn unknown_strategy_is_refused_with_the_choices() {
    let yaml = config("fastest").replace("{MOCK}", "http://127.0.0.1:9");
    let err = fastgate_config::load_str(&yaml, &|_| None)
        .unwrap_err()
        .to_string();
    assert!(err.contains("upstreams[0].strategy"), "{err}");
    assert!(
        err.contains("round_robin") && err.contains("weighted"),
        "{err}"
    );
}
