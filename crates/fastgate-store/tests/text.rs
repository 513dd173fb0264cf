//! Text both stores can keep (NUL), and the audit identity columns.

mod common;

use common::{at, audit, each_backend, key};
use fastgate_store::{AuditFilter, NUL_REPLACEMENT, Store};

fn nul(s: &str) -> String {
    format!("{s}\0{s}\0")
}

fn replaced(s: &str) -> String {
    format!("{s}{NUL_REPLACEMENT}{s}{NUL_REPLACEMENT}")
}

#[tokio::test]
async fn nul_in_every_audit_text_field_is_stored_as_the_replacement_character() {
    each_backend(|store: Store| async move {
        let mut r = audit("nul-row", at(0));
        r.client_request_id = Some(nul("c"));
        r.key_id = Some(nul("k"));
        r.key_name = Some(nul("n"));
        r.source = Some(nul("s"));
        r.method = nul("M");
        r.path = nul("/p");
        r.query = Some(nul("q"));
        r.route = Some(nul("r"));
        r.upstream = Some(nul("u"));
        r.credential = Some(nul("cr"));
        r.target_url = Some(nul("t"));
        r.user_agent = Some(nul("ua"));
        r.client_ip = Some(nul("ip"));
        r.model = Some(nul("m"));
        r.error_message = Some(nul("e"));
        r.request_headers = Some(nul("rh"));
        r.response_headers = Some(nul("sh"));
        r.request_body = Some(nul("rb"));
        r.response_body = Some(nul("sb"));
        r.duration_ms = f64::NAN;
        r.cost = Some(f64::INFINITY);
        assert_eq!(
            store
                .insert_audit_batch(std::slice::from_ref(&r))
                .await
                .unwrap(),
            1
        );
        let got = store.get_audit("nul-row").await.unwrap().unwrap();
        assert_eq!(got.model.as_deref(), Some(replaced("m").as_str()));
        assert_eq!(got.method, replaced("M"));
        assert_eq!(got.path, replaced("/p"));
        assert_eq!(got.client_request_id, Some(replaced("c")));
        assert_eq!(got.response_body, Some(replaced("sb")));
        assert_eq!(got.duration_ms, 0.0);
        assert_eq!(got.cost, None);
        for text in [
            got.key_id,
            got.key_name,
            got.source,
            got.query,
            got.route,
            got.upstream,
            got.credential,
            got.target_url,
            got.user_agent,
            got.client_ip,
            got.error_message,
            got.request_headers,
            got.response_headers,
            got.request_body,
        ] {
            let text = text.unwrap();
            assert!(
                !text.contains('\0') && text.contains(NUL_REPLACEMENT),
                "{text:?}"
            );
        }
        // Lookups and filters holding NUL find what was stored, on both backends.
        let f = AuditFilter {
            model: Some(nul("m")),
            client_request_id: Some(nul("c")),
            path_prefix: Some("/p\0".into()),
            ..AuditFilter::default()
        };
        assert_eq!(store.count_audit(&f).await.unwrap(), 1);
        assert!(store.get_audit("nul\0row").await.unwrap().is_none());
    })
    .await;
}

#[tokio::test]
async fn nul_in_key_and_model_group_text_is_stored() {
    each_backend(|store: Store| async move {
        let mut k = key("nul-key");
        k.source = Some(nul("team"));
        k.allowed_models = vec![nul("gpt")];
        store.insert_key(&k).await.unwrap();
        let got = store.get_key(&k.id).await.unwrap().unwrap();
        assert_eq!(got.source, Some(replaced("team")));
        // List fields are JSON, where NUL is escaped: kept as given.
        assert_eq!(got.allowed_models, vec![nul("gpt")]);
        k.name = nul("renamed");
        assert!(store.update_key(&k).await.unwrap());
        assert!(store.get_key(&nul("renamed")).await.unwrap().is_some());
        assert!(store.revoke_key(&nul("renamed")).await.unwrap().is_some());
        assert!(store.delete_key(&nul("renamed")).await.unwrap());

        assert!(
            store
                .upsert_model_group(&nul("g"), "{\"a\":\"\0\"}")
                .await
                .unwrap()
        );
        let groups = store.list_model_groups().await.unwrap();
        assert_eq!(groups.len(), 1);
        assert_eq!(groups[0].name, replaced("g"));
        assert!(!groups[0].spec.contains('\0'));
        assert!(store.delete_model_group(&nul("g")).await.unwrap());
    })
    .await;
}

#[tokio::test]
async fn one_client_request_id_on_many_rows_is_not_deduplicated() {
    each_backend(|store: Store| async move {
        let rows: Vec<_> = (0..5)
            .map(|i| {
                let mut r = audit(&format!("gw-{i}"), at(i));
                r.client_request_id = Some("same-client-id".into());
                r
            })
            .collect();
        assert_eq!(store.insert_audit_batch(&rows).await.unwrap(), 5);
        // Replays stay idempotent on the gateway id.
        assert_eq!(store.insert_audit_batch(&rows).await.unwrap(), 0);
        let f = AuditFilter {
            client_request_id: Some("same-client-id".into()),
            ..AuditFilter::default()
        };
        let found = store.query_audit(&f).await.unwrap();
        assert_eq!(found.len(), 5);
        let other = AuditFilter {
            client_request_id: Some("other".into()),
            ..AuditFilter::default()
        };
        assert_eq!(store.count_audit(&other).await.unwrap(), 0);
    })
    .await;
}
