//! The usage API, input validation and the metrics of limits.

use super::*;

/// The first instant of the month after `now` (UTC, the default time zone).
fn next_month(now: DateTime<Utc>) -> DateTime<Utc> {
    let (y, m) = if now.month() == 12 {
        (now.year() + 1, 1)
    } else {
        (now.year(), now.month() + 1)
    };
    NaiveDate::from_ymd_opt(y, m, 1)
        .unwrap()
        .and_hms_opt(0, 0, 0)
        .unwrap()
        .and_utc()
}

/// A harness whose limiter writes usage to the database every 100 ms.
async fn fast_flushing(backend: Backend) -> Harness {
    Harness::start(
        backend,
        &format!("{MODELS}limits: {{ flush_interval: 100ms }}\n"),
    )
    .await
}

async fn the_usage_api_shows_a_quotas_period_reservations_and_windows(backend: Backend) {
    let h = fast_flushing(backend).await;
    let (id, key) = h
        .create_key(json!({ "name": "metered",
            "limits": { "requests_per_minute": 100 },
            "quota": { "requests": 10, "tokens": 1000000, "cost": 100.0, "period": "monthly" } }))
        .await;
    let held = chat(&h, &key, &chat_body("priced", 1000, true), Some("usage")).await;
    assert_eq!(held.status(), 200);

    let u = usage(&h, &id).await;
    let now = Utc::now();
    assert_eq!(u["key_id"], id.as_str(), "{u}");
    assert_eq!(u["name"], "metered", "{u}");
    assert_eq!(u["backend"], "memory", "{u}");
    let month = format!("m{}", now.format("%Y-%m"));
    assert_eq!(u["period"]["kind"], "monthly", "{u}");
    assert_eq!(u["period"]["id"], month.as_str(), "{u}");
    let ends: DateTime<Utc> = u["period"]["ends_at"].as_str().unwrap().parse().unwrap();
    assert_eq!(ends, next_month(now), "{u}");
    assert_eq!(u["quota"]["requests"], 10, "{u}");
    assert_eq!(u["used"]["requests"], 1, "counted at admission: {u}");
    assert_eq!(u["used"]["tokens"], 0, "{u}");
    assert_eq!(u["reserved"]["in_flight"], 1, "{u}");
    let tokens = u["reserved"]["tokens"].as_u64().unwrap();
    assert!(
        (1001..1100).contains(&tokens),
        "prompt estimate + max_tokens: {u}"
    );
    let cost = f64_of(&u["reserved"]["cost"]);
    assert!(close(cost, tokens as f64 / 1000.0), "{u}");
    assert_eq!(u["remaining"]["requests"], 9, "{u}");
    assert_eq!(u["remaining"]["tokens"], 1_000_000 - tokens, "{u}");
    assert!(close(f64_of(&u["remaining"]["cost"]), 100.0 - cost), "{u}");
    let windows = u["windows"].as_array().unwrap();
    assert_eq!(windows.len(), 1, "{u}");
    assert_eq!(windows[0]["limit_kind"], "requests_per_minute", "{u}");
    assert_eq!(windows[0]["limit"], 100, "{u}");
    assert_eq!(windows[0]["used"], 1, "{u}");
    let resets = windows[0]["resets_in_secs"].as_u64().unwrap();
    assert!((1..=60).contains(&resets), "{u}");

    // Settled: the reservation gives way to the real usage, then is stored.
    h.mock.release("usage");
    finish_stream(held).await;
    let u = eventually(SOON, "the usage stored", || async {
        let u = usage(&h, &id).await;
        let stored = u["history"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["period"] == month.as_str() && r["tokens"] == REAL_TOKENS);
        (stored && u["reserved"]["in_flight"] == 0).then_some(u)
    })
    .await;
    assert_eq!(u["used"]["requests"], 1, "{u}");
    assert_eq!(u["used"]["tokens"], REAL_TOKENS, "{u}");
    assert!(close(f64_of(&u["used"]["cost"]), REAL_COST), "{u}");
    assert_eq!(u["reserved"]["tokens"], 0, "{u}");
    assert_eq!(u["remaining"]["tokens"], 1_000_000 - REAL_TOKENS, "{u}");
    assert!(
        close(f64_of(&u["remaining"]["cost"]), 100.0 - REAL_COST),
        "{u}"
    );
    let row = &u["history"][0];
    assert_eq!(
        (row["period"].as_str(), row["requests"].as_u64()),
        (Some(month.as_str()), Some(1)),
        "{u}"
    );
    assert!(close(f64_of(&row["cost"]), REAL_COST), "{u}");
    h.stop().await;
}
both_backends!(
    the_usage_api_shows_a_quotas_period_reservations_and_windows,
    the_usage_api_shows_a_quotas_period_reservations_and_windows
);

async fn the_usage_api_shows_a_key_without_quota_from_the_store(backend: Backend) {
    let h = fast_flushing(backend).await;
    // Its usage is counted and stored all the same.
    let (plain_id, plain) = h.create_key(json!({ "name": "plain" })).await;
    for _ in 0..2 {
        let resp = chat(&h, &plain, &chat_body("priced", 1000, false), None).await;
        assert_eq!(resp.status(), 200);
    }
    eventually(SOON, "the plain key's usage stored", || async {
        let u = usage(&h, &plain_id).await;
        let stored =
            u["history"].as_array().unwrap().iter().any(|r| {
                r["period"] == "all" && r["requests"] == 2 && r["tokens"] == 2 * REAL_TOKENS
            });
        stored.then_some(())
    })
    .await;
    let u = usage(&h, &plain_id).await;
    assert_eq!(u["period"]["kind"], "never", "{u}");
    assert_eq!(u["period"]["id"], "all", "{u}");
    assert!(u["period"]["ends_at"].is_null(), "{u}");
    assert_eq!(
        u["used"]["requests"], 2,
        "store and pending not counted twice: {u}"
    );
    assert_eq!(u["used"]["tokens"], 2 * REAL_TOKENS, "{u}");
    assert!(close(f64_of(&u["used"]["cost"]), 2.0 * REAL_COST), "{u}");
    assert_eq!(u["reserved"]["in_flight"], 0, "{u}");
    assert!(u["remaining"]["requests"].is_null(), "{u}");
    assert!(u["remaining"]["cost"].is_null(), "{u}");
    assert_eq!(u["windows"], json!([]), "{u}");

    // An unknown key; no admin token; a wrong one.
    let unknown = format!("/admin/api/keys/{}/usage", uuid::Uuid::now_v7());
    assert_eq!(h.admin_get(&unknown).await.status(), 404);
    let path = format!("/admin/api/keys/{plain_id}/usage");
    let resp = h.http.get(h.url(&path)).send().await.unwrap();
    assert_eq!(resp.status(), 401);
    let resp = h
        .http
        .get(h.url(&path))
        .bearer_auth(format!("{ADMIN_TOKEN}-wrong"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    h.stop().await;
}
both_backends!(
    the_usage_api_shows_a_key_without_quota_from_the_store,
    the_usage_api_shows_a_key_without_quota_from_the_store
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_that_cannot_be_enforced_are_refused_at_input() {
    let h = Harness::start(Backend::Sqlite, MODELS).await;
    let cases = [
        (
            json!({ "name": "zero-rpm", "limits": { "requests_per_minute": 0 } }),
            "limits.requests_per_minute",
        ),
        (
            json!({ "name": "negative-budget", "quota": { "cost": -1.0 } }),
            "quota.cost",
        ),
    ];
    for (body, field) in cases {
        let resp = h
            .admin(reqwest::Method::POST, "/admin/api/keys", Some(body))
            .await;
        assert_eq!(resp.status(), 400, "{field}");
        let v: Value = resp.json().await.unwrap();
        let message = v["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(field), "{v}");
    }
    let keys: Value = h.admin_get("/admin/api/keys").await.json().await.unwrap();
    assert_eq!(keys["data"], json!([]), "nothing created: {keys}");
    h.stop().await;

    let yaml = "upstreams: [{name: u, kind: openai, base_url: 'http://127.0.0.1:9'}]\n\
                routes: [{name: r, match: {path: /r}, upstream: u, limits: {max_concurrent: 0}}]\n";
    let e = fastgate_config::load_str(yaml, &|_| None)
        .expect_err("a zero limit must be refused")
        .to_string();
    assert!(e.contains("routes[0].limits.max_concurrent"), "{e}");
}

/// The value of the first sample of `name` whose labels include all of `labels`.
fn sample(text: &str, name: &str, labels: &[&str]) -> Option<f64> {
    text.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")))
        .find(|l| labels.iter().all(|p| l.contains(p)))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_and_the_backend_mode_are_in_the_metrics() {
    let h = Harness::start(Backend::Sqlite, MODELS).await;
    let (_, key) = h
        .create_key(json!({ "name": "metrics", "limits": { "requests_per_minute": 1 } }))
        .await;
    assert_eq!(
        chat(&h, &key, &chat_body("gpt", 16, false), None)
            .await
            .status(),
        200
    );
    assert_eq!(
        chat(&h, &key, &chat_body("gpt", 16, false), None)
            .await
            .status(),
        429
    );
    let text = h.metrics().await;
    let refused = sample(
        &text,
        "fastgate_rate_limited_total",
        &["limit=\"requests_per_minute\"", "scope=\"key\""],
    )
    .unwrap_or_else(|| panic!("no key refusal counted:\n{text}"));
    assert!(refused >= 1.0, "{refused}");
    assert_eq!(
        sample(&text, "fastgate_limits_backend", &["mode=\"memory\""]),
        Some(1.0),
        "{text}"
    );
    // /health says which backend the limits run in.
    let health: Value = h
        .http
        .get(h.url("/health"))
        .timeout(SOON)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["limits"], "memory", "{health}");
    h.stop().await;
}
