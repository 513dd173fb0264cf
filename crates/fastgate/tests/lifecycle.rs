//! Start on defaults, admin token generation, graceful shutdown with a stream in flight.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::{Backend, DEFAULT_ROUTES, Harness};
use futures_util::StreamExt;
use serde_json::json;

#[tokio::test]
async fn defaults_generate_a_private_admin_token_once() {
    fastgate::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let yaml = format!(
        "server: {{ listen: \"127.0.0.1:0\" }}\ndata_dir: \"{}\"\n",
        dir.path().display()
    );
    let cfg = fastgate_config::load_str(&yaml, &|_| None).unwrap();
    assert!(cfg.database_url().starts_with("sqlite://"));
    let server = fastgate::server::start(cfg.clone()).await.unwrap();
    assert!(server.admin_token.generated_now);
    let token = server.admin_token.value.clone();
    let file = dir.path().join("admin_token");
    assert_eq!(std::fs::read_to_string(&file).unwrap().trim(), token);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    assert!(dir.path().join("fastgate.db").exists());
    let client = common::http_client();
    let resp = client
        .get(format!("{}/health", server.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let resp = client
        .get(format!("{}/admin/api/keys", server.url()))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    server.shutdown().await;

    // Second start reuses the token.
    let server = fastgate::server::start(cfg).await.unwrap();
    assert!(!server.admin_token.generated_now);
    assert_eq!(server.admin_token.value, token);
    server.shutdown().await;
}

async fn shutdown_lets_streams_finish_and_flushes_audit(backend: Backend) {
    let mut h = Harness::start(backend, DEFAULT_ROUTES).await;
    let key = h.key().await;
    let resp = h
        .http
        .post(h.url("/v1/chat/completions"))
        .bearer_auth(&key)
        .header("x-mock-hold", "shutdown")
        .json(&json!({ "model": "m", "stream": true }))
        .send()
        .await
        .unwrap();
    let rid = resp.headers()["x-request-id"].to_str().unwrap().to_string();
    let mut stream = resp.bytes_stream();
    let _first = stream.next().await.unwrap().unwrap();

    let server = h.server.take().unwrap();
    let store = server.state.store().clone();
    let shutdown = tokio::spawn(server.shutdown());
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        !shutdown.is_finished(),
        "shutdown waits for the stream in flight"
    );
    h.mock.release("shutdown");
    let mut rest = Vec::new();
    while let Some(chunk) = stream.next().await {
        rest.extend_from_slice(&chunk.unwrap());
    }
    assert!(
        String::from_utf8_lossy(&rest).contains("[DONE]"),
        "stream completed"
    );
    tokio::time::timeout(Duration::from_secs(10), shutdown)
        .await
        .unwrap()
        .unwrap();

    // After shutdown the audit row is in the database (store closed: reopen).
    let reopened = fastgate_store::Store::connect(&h.database_url, 1)
        .await
        .unwrap();
    let rec = reopened
        .get_audit(&rid)
        .await
        .unwrap()
        .expect("audit row flushed on shutdown");
    assert_eq!(rec.status_code, 200);
    assert!(rec.is_stream);
    assert!(rec.error_message.is_none(), "{:?}", rec.error_message);
    reopened.close().await;
    drop(store);
    h.stop().await;
}
both_backends!(
    shutdown_lets_streams_finish_and_flushes_audit,
    shutdown_lets_streams_finish_and_flushes_audit
);

async fn reload_swaps_routes_and_rejects_bad_files(backend: Backend) {
    let h = Harness::start(backend, DEFAULT_ROUTES).await;
    let key = h.key().await;
    let get = |path: &'static str| {
        let h = &h;
        let key = key.clone();
        async move {
            h.http
                .get(h.url(path))
                .bearer_auth(key)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(get("/new/x").await, 404);

    // Requests keep flowing during 20 reloads; none fails.
    let load = {
        let http = h.http.clone();
        let url = h.url("/v1/models");
        let key = key.clone();
        tokio::spawn(async move {
            let mut statuses = Vec::new();
            for _ in 0..200 {
                statuses.push(
                    http.get(&url)
                        .bearer_auth(&key)
                        .send()
                        .await
                        .unwrap()
                        .status()
                        .as_u16(),
                );
            }
            statuses
        })
    };
    let with_new = format!(
        "{DEFAULT_ROUTES}  - {{ name: new, match: {{ path: \"/new/**\" }}, upstream: mock }}\n"
    );
    for i in 0..20 {
        h.rewrite_routes(if i % 2 == 0 {
            &with_new
        } else {
            DEFAULT_ROUTES
        });
        let resp = h
            .http
            .post(h.url("/admin/api/config/reload"))
            .bearer_auth(common::ADMIN_TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
    }
    let statuses = load.await.unwrap();
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");

    h.rewrite_routes(&with_new);
    let resp = h
        .http
        .post(h.url("/admin/api/config/reload"))
        .bearer_auth(common::ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(get("/new/x").await, 200);

    // A bad file is rejected with the reason; the previous routes keep serving.
    h.rewrite_routes(
        "upstreams: []\nroutes: [ { name: r, match: { path: \"/x\" }, upstream: missing } ]\n",
    );
    let resp = h
        .http
        .post(h.url("/admin/api/config/reload"))
        .bearer_auth(common::ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let body = resp.text().await.unwrap();
    assert!(body.contains("routes[0].upstream"), "{body}");
    assert_eq!(get("/new/x").await, 200);
    assert_eq!(get("/v1/models").await, 200);
    h.stop().await;
}
both_backends!(
    reload_swaps_routes_and_rejects_bad_files,
    reload_swaps_routes_and_rejects_bad_files
);
