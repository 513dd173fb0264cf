#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::atomic::{AtomicUsize, Ordering};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use fastgate_config::Secret;
use ring::signature::{KeyPair as _, RSA_PKCS1_2048_8192_SHA256, UnparsedPublicKey};

use super::*;

const TEST_KEY: &str = include_str!("../../../fastgate-testkit/fixtures/vertex-test-key.pem");

fn sa() -> ServiceAccountKey {
    ServiceAccountKey {
        client_email: "gw@proj.iam.gserviceaccount.com".into(),
        private_key: Secret::new(TEST_KEY.into()),
        token_uri: "https://oauth2.example/token".into(),
    }
}

#[test]
fn the_assertion_is_a_verifiable_rs256_jwt() {
    let key = jwt::key_pair(TEST_KEY).unwrap();
    let token = jwt::assertion(
        &key,
        "gw@p.iam",
        "https://oauth2.example/token",
        1_700_000_000,
    )
    .unwrap();
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3);
    let header: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
    assert_eq!(header, serde_json::json!({"alg": "RS256", "typ": "JWT"}));
    let claims: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    assert_eq!(claims["iss"], "gw@p.iam");
    assert_eq!(claims["aud"], "https://oauth2.example/token");
    assert_eq!(claims["scope"], jwt::SCOPE);
    assert_eq!(claims["iat"], 1_700_000_000u64);
    assert_eq!(claims["exp"], 1_700_003_600u64);
    let public = UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, key.public_key().as_ref());
    let sig = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
    let signed = format!("{}.{}", parts[0], parts[1]);
    public.verify(signed.as_bytes(), &sig).unwrap();
    // A changed claim no longer verifies.
    let forged = format!("{}.{}x", parts[0], parts[1]);
    assert!(public.verify(forged.as_bytes(), &sig).is_err());
}

#[test]
fn a_bad_key_is_refused_without_quoting_it() {
    let e = jwt::key_pair("-----BEGIN PRIVATE KEY-----\nU0VDUkVU\n-----END PRIVATE KEY-----")
        .unwrap_err();
    assert!(matches!(e, TokenError::Key(_)));
    assert!(!e.to_string().contains("U0VDUkVU"));
}

/// A fake token endpoint: counts calls, answers `tok-{n}` valid `expires_in` seconds,
/// after `delay`.
fn counting(expires_in: u64, delay: Duration) -> (Fetch, Arc<AtomicUsize>) {
    let calls = Arc::new(AtomicUsize::new(0));
    let c = Arc::clone(&calls);
    let fetch: Fetch = Arc::new(move |assertion: String| {
        let n = c.fetch_add(1, Ordering::SeqCst);
        Box::pin(async move {
            assert_eq!(assertion.split('.').count(), 3);
            tokio::time::sleep(delay).await;
            Ok(TokenAnswer {
                access_token: format!("tok-{n}"),
                expires_in,
            })
        })
    });
    (fetch, calls)
}

#[tokio::test]
async fn tokens_are_cached_until_five_minutes_before_expiry() {
    let (fetch, calls) = counting(3600, Duration::ZERO);
    let src = TokenSource::with_fetch(&sa(), fetch).unwrap();
    let t0 = Instant::now();
    let a = src.header_at(t0).await.unwrap();
    let b = src.header_at(t0 + Duration::from_secs(60)).await.unwrap();
    assert_eq!(a, "Bearer tok-0");
    assert_eq!(b, "Bearer tok-0");
    assert!(a.is_sensitive());
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    // 3600 - 300 s later it is due again.
    let c = src.header_at(t0 + Duration::from_secs(3301)).await.unwrap();
    assert_eq!(c, "Bearer tok-1");
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn concurrent_callers_share_one_refresh() {
    let (fetch, calls) = counting(3600, Duration::from_millis(100));
    let src = Arc::new(TokenSource::with_fetch(&sa(), fetch).unwrap());
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let s = Arc::clone(&src);
        tasks.push(tokio::spawn(async move { s.header().await.unwrap() }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), "Bearer tok-0");
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_failed_refresh_is_an_error_and_is_retried_next_time() {
    let calls = Arc::new(AtomicUsize::new(0));
    let c = Arc::clone(&calls);
    let fetch: Fetch = Arc::new(move |_| {
        let n = c.fetch_add(1, Ordering::SeqCst);
        Box::pin(async move {
            if n == 0 {
                Err(TokenError::Status {
                    status: 503,
                    code: None,
                })
            } else {
                Ok(TokenAnswer {
                    access_token: "ok".into(),
                    expires_in: 3600,
                })
            }
        })
    });
    let src = TokenSource::with_fetch(&sa(), fetch).unwrap();
    let e = src.header().await.unwrap_err();
    assert_eq!(e.to_string(), "token endpoint answered 503");
    assert_eq!(src.header().await.unwrap(), "Bearer ok");
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[test]
fn shared_sources_are_one_per_key() {
    let a = TokenSource::shared(&sa()).unwrap();
    let b = TokenSource::shared(&sa()).unwrap();
    assert!(Arc::ptr_eq(&a, &b));
    let mut other = sa();
    other.client_email = "other@p.iam".into();
    let c = TokenSource::shared(&other).unwrap();
    assert!(!Arc::ptr_eq(&a, &c));
    assert!(!format!("{a:?}").contains("PRIVATE"));
}
