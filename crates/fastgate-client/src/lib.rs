//! FastGate's upstream HTTP client.
//!
//! HTTP/1.1 over TCP or rustls, with a keep-alive pool per upstream host. Unlike
//! a general-purpose pooled client, it runs no task per connection: the task
//! that sends a request drives the connection until the answer's head arrives,
//! and the answer's body ([`ResponseBody`]) drives it while it is read (in the
//! proxy, the task writing the answer to the client). A request then costs no
//! hand-off between tasks, each chunk of a stream reaches the client from the
//! task that read it, and an open stream holds one task, not two. A body read
//! to its end puts the connection back in the pool; one dropped before its end
//! closes it (the upstream stops working on an answer nobody reads).
//!
//! HTTP/1.1 only, as nginx speaks to its upstreams: TLS offers ALPN
//! `http/1.1`. The pool's lock is held only to push or pop an idle connection.

mod body;
mod connect;
mod error;
mod h1;
mod pool;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::header::{HOST, HeaderValue};
use http::uri::{PathAndQuery, Scheme};
use http::{Request, Response, Uri};
use http_body_util::Full;

pub use body::ResponseBody;
pub use error::{ClientError, WireError};

use connect::Connector;
use pool::{Checkout, HostKey, Pool};

/// What every request sends: its body is read in full before forwarding.
pub type RequestBody = Full<Bytes>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientSettings {
    pub connect_timeout: Duration,
    pub max_idle_per_host: usize,
    pub idle_timeout: Duration,
}

/// One upstream client: its settings, TLS configuration and connection pool.
/// Cheap to share (`Arc`); upstreams with the same settings share one.
pub struct UpstreamClient {
    connector: Connector,
    pool: Arc<Pool>,
}

impl UpstreamClient {
    /// A client trusting the web's public roots (webpki-roots).
    pub fn new(settings: ClientSettings) -> Result<Self, String> {
        let roots = rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        Self::with_roots(settings, roots)
    }

    /// A client trusting `roots` only (tests use a private CA).
    pub fn with_roots(
        settings: ClientSettings,
        roots: rustls::RootCertStore,
    ) -> Result<Self, String> {
        Ok(Self {
            connector: Connector::new(settings.connect_timeout, roots)?,
            pool: Pool::new(settings.max_idle_per_host, settings.idle_timeout),
        })
    }

    /// Send `req` (its URI absolute, `http` or `https`) and return the answer
    /// once its head has arrived. A pooled connection the upstream closed
    /// meanwhile is replaced by another when the request never left.
    pub async fn send(
        &self,
        mut req: Request<RequestBody>,
    ) -> Result<Response<ResponseBody>, ClientError> {
        let uri = req.uri().clone();
        let key = host_key(&uri)?;
        let Checkout {
            slot,
            conn: mut pooled,
            host_header,
        } = self.pool.checkout(&key);
        to_origin_form(&mut req, host_header, &uri)?;
        loop {
            let (conn, reused) = match pooled.take() {
                Some(conn) => (conn, true),
                // Boxed: the TLS handshake's state is large and rarely needed.
                None => (Box::pin(self.connector.connect(&key)).await?, false),
            };
            match body::exchange(conn, req, &self.pool, slot).await {
                Ok(resp) => return Ok(resp),
                Err((error, Some(unsent))) if reused => {
                    tracing::debug!(error = %error, "pooled upstream connection was closed: trying another");
                    req = unsent;
                    pooled = self.pool.checkout(&key).conn;
                }
                Err((error, _)) => return Err(ClientError::transport(&error)),
            }
        }
    }

    /// Idle connections kept for later requests, over all hosts.
    pub fn idle_connections(&self) -> usize {
        self.pool.idle_count()
    }
}

/// Where `uri` goes: `http` or `https`, its host and port.
fn host_key(uri: &Uri) -> Result<HostKey<'_>, ClientError> {
    let tls = match uri.scheme() {
        Some(s) if *s == Scheme::HTTPS => true,
        Some(s) if *s == Scheme::HTTP => false,
        _ => {
            return Err(ClientError::InvalidUri(format!(
                "{uri}: only http:// and https:// are supported"
            )));
        }
    };
    let Some(authority) = uri.authority() else {
        return Err(ClientError::InvalidUri(format!("{uri}: no host")));
    };
    Ok(HostKey {
        tls,
        host: authority.host(),
        port: authority.port_u16().unwrap_or(if tls { 443 } else { 80 }),
    })
}

/// `req` in origin form (`/path?query`), with the target's `Host` header
/// unless it has one.
fn to_origin_form(
    req: &mut Request<RequestBody>,
    host_header: Option<HeaderValue>,
    uri: &Uri,
) -> Result<(), ClientError> {
    if !req.headers().contains_key(HOST) {
        let value = host_header
            .ok_or_else(|| ClientError::InvalidUri(format!("{uri}: host is not a header value")))?;
        req.headers_mut().insert(HOST, value);
    }
    let path = uri
        .path_and_query()
        .cloned()
        .unwrap_or_else(|| PathAndQuery::from_static("/"));
    *req.uri_mut() = Uri::from(path);
    Ok(())
}

/// Clients by settings. The lock is taken only while building a snapshot, never
/// on the request path.
#[derive(Default)]
pub struct ClientCache {
    clients: Mutex<HashMap<ClientSettings, Arc<UpstreamClient>>>,
}

impl ClientCache {
    pub fn get(&self, settings: ClientSettings) -> Result<Arc<UpstreamClient>, String> {
        let mut map = self
            .clients
            .lock()
            .map_err(|_| "client cache lock poisoned".to_string())?;
        if let Some(client) = map.get(&settings) {
            return Ok(Arc::clone(client));
        }
        let client = Arc::new(UpstreamClient::new(settings)?);
        map.insert(settings, Arc::clone(&client));
        Ok(client)
    }
}

#[cfg(test)]
mod tests;
