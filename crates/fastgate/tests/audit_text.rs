//! Text the database cannot store: NUL in the strings an audit record keeps must not
//! cost the record its row (PostgreSQL refuses NUL in `TEXT`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::{Backend, DEFAULT_ROUTES, Harness};
use fastgate_store::NUL_REPLACEMENT;
use fastgate_testkit::MockReply;

const TIMEOUT: Duration = Duration::from_secs(10);

async fn nul_in_audited_strings_keeps_the_row(backend: Backend) {
    let h = Harness::start(backend, DEFAULT_ROUTES).await;
    let key = h.key().await;
    let fffd = NUL_REPLACEMENT.to_string();

    // 1. NUL in the JSON body's model (escaped in JSON, a real NUL once parsed), and a
    //    raw NUL in the upstream's answer (captured response body).
    h.mock.enqueue(MockReply::Status {
        status: 200,
        body: "{\"object\":\"chat.completion\",\"note\":\"raw\0nul\"}".into(),
        headers: Vec::new(),
    });
    let resp = h
        .http
        .post(h.url("/v1/chat/completions?q=a%00b"))
        .bearer_auth(&key)
        .header("content-type", "application/json")
        .body(r#"{"model":"gpt\u0000x","messages":[{"role":"user","content":"a\u0000b"}]}"#)
        .timeout(TIMEOUT)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let first = resp.headers()["x-fastgate-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(resp.bytes().await.unwrap().contains(&0u8));
    assert!(h.mock.last_request().unwrap().body.contains(&b'{'));

    // 2. Raw NUL bytes in a (non-JSON) request body.
    let resp = h
        .http
        .post(h.url("/v1/chat/completions"))
        .bearer_auth(&key)
        .header("content-type", "text/plain")
        .body(b"raw\0body\0".to_vec())
        .timeout(TIMEOUT)
        .send()
        .await
        .unwrap();
    let second = resp.headers()["x-fastgate-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let _ = resp.bytes().await.unwrap();

    let rec = h.audit_of(&first).await;
    assert_eq!(rec.model, Some(format!("gpt{fffd}x")));
    let response_body = rec.response_body.unwrap();
    assert!(
        response_body.contains(&format!("raw{fffd}nul")),
        "{response_body}"
    );
    assert!(!response_body.contains('\0'));
    assert_eq!(rec.query.as_deref(), Some("q=a%00b"));

    let rec = h.audit_of(&second).await;
    assert_eq!(rec.request_body, Some(format!("raw{fffd}body{fffd}")));

    // Nothing was quarantined.
    let rejected = h
        .dir
        .path()
        .join("spill")
        .join(fastgate_audit::REJECTED_FILE_NAME);
    assert!(!rejected.exists() || std::fs::metadata(&rejected).unwrap().len() == 0);
    h.stop().await;
}
both_backends!(
    nul_in_audited_strings_keeps_the_row,
    nul_in_audited_strings_keeps_the_row
);
