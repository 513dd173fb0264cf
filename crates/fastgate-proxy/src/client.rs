//! The pooled upstream HTTP client (hyper-util over rustls).
//!
//! One client per distinct (connect timeout, pool settings) so upstreams with the
//! same settings share connections, and so a config reload keeps warm pools.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};

pub type RequestBody = Full<Bytes>;
pub type HttpClient = Client<HttpsConnector<HttpConnector>, RequestBody>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientSettings {
    pub connect_timeout: Duration,
    pub max_idle_per_host: usize,
    pub idle_timeout: Duration,
}

/// Clients by settings. The lock is taken only while building a snapshot, never
/// on the request path.
#[derive(Default)]
pub struct ClientCache {
    clients: Mutex<HashMap<ClientSettings, Arc<HttpClient>>>,
}

impl ClientCache {
    pub fn get(&self, settings: ClientSettings) -> Result<Arc<HttpClient>, String> {
        let mut map = self
            .clients
            .lock()
            .map_err(|_| "client cache lock poisoned".to_string())?;
        if let Some(client) = map.get(&settings) {
            return Ok(Arc::clone(client));
        }
        let client = Arc::new(build_client(settings)?);
        map.insert(settings, Arc::clone(&client));
        Ok(client)
    }
}

fn build_client(settings: ClientSettings) -> Result<HttpClient, String> {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(Some(settings.connect_timeout));
    http.set_keepalive(Some(Duration::from_secs(60)));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?
        .with_root_certificates(rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        })
        .with_no_client_auth();
    let https = HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .enable_http2()
        .wrap_connector(http);
    Ok(Client::builder(TokioExecutor::new())
        .pool_timer(TokioTimer::new())
        .timer(TokioTimer::new())
        .pool_idle_timeout(settings.idle_timeout)
        .pool_max_idle_per_host(settings.max_idle_per_host)
        .build(https))
}
