//! The token exchange over HTTP: one form POST to the key's `token_uri`.

use std::sync::OnceLock;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use super::{TokenAnswer, TokenError};

type HttpClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// Connect, send and read the answer: a token endpoint slower than this fails
/// the request rather than holding it.
const TIMEOUT: Duration = Duration::from_secs(10);
const MAX_ANSWER: usize = 64 * 1024;

/// One client for every token source (token calls are rare: once an hour each).
fn client() -> Result<&'static HttpClient, TokenError> {
    static CLIENT: OnceLock<Result<HttpClient, String>> = OnceLock::new();
    CLIENT
        .get_or_init(|| {
            let mut http = HttpConnector::new();
            http.enforce_http(false);
            http.set_connect_timeout(Some(Duration::from_secs(5)));
            let https = hyper_rustls::HttpsConnectorBuilder::new()
                .with_provider_and_webpki_roots(rustls::crypto::ring::default_provider())
                .map_err(|e| format!("TLS setup: {e}"))?
                .https_or_http()
                .enable_http1()
                .wrap_connector(http);
            Ok(Client::builder(TokioExecutor::new())
                .pool_timer(TokioTimer::new())
                .pool_idle_timeout(Duration::from_secs(30))
                .pool_max_idle_per_host(1)
                .build(https))
        })
        .as_ref()
        .map_err(|e| TokenError::Http(e.clone()))
}

/// POST the assertion; the answer's `access_token` and `expires_in`.
pub async fn exchange(token_uri: &str, assertion: &str) -> Result<TokenAnswer, TokenError> {
    let client = client()?;
    let body = format!(
        "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion={assertion}"
    );
    let req = http::Request::post(token_uri)
        .header(
            http::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        )
        .body(Full::new(Bytes::from(body)))
        .map_err(|_| TokenError::Http("the key's token_uri is not a valid URI".into()))?;
    let call = async {
        let resp = client
            .request(req)
            .await
            .map_err(|e| TokenError::Http(e.to_string()))?;
        let status = resp.status();
        let body = Limited::new(resp.into_body(), MAX_ANSWER)
            .collect()
            .await
            .map_err(|e| TokenError::Http(e.to_string()))?
            .to_bytes();
        if !status.is_success() {
            // OAuth's `error` code (e.g. `invalid_grant`) says why without secrets.
            let code = serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_string));
            return Err(TokenError::Status {
                status: status.as_u16(),
                code,
            });
        }
        serde_json::from_slice::<TokenAnswer>(&body)
            .map_err(|e| TokenError::BadAnswer(e.to_string()))
    };
    tokio::time::timeout(TIMEOUT, call)
        .await
        .map_err(|_| TokenError::Http(format!("no answer within {}s", TIMEOUT.as_secs())))?
}
