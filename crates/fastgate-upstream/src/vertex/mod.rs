//! Vertex AI credentials: a service-account key traded for an OAuth access token,
//! cached per key until five minutes before it expires, refreshed by one caller
//! at a time. The request path only reads the cache; it waits on the token
//! endpoint about once an hour per key. Neither the key nor a token is logged.

mod http;
pub mod jwt;

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ::http::HeaderValue;
use dashmap::DashMap;
use fastgate_config::vertex::ServiceAccountKey;
use ring::signature::RsaKeyPair;
use serde::Deserialize;
use sha2::{Digest, Sha256};

/// Refresh this long before the provider's expiry.
const REFRESH_MARGIN: Duration = Duration::from_secs(300);

/// Why no access token could be had. No variant carries the key or a token.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TokenError {
    #[error("unusable service-account key: {0}")]
    Key(&'static str),
    #[error("token endpoint unreachable: {0}")]
    Http(String),
    #[error("token endpoint answered {status}{}", code_suffix(.code))]
    Status { status: u16, code: Option<String> },
    #[error("token endpoint answer unreadable: {0}")]
    BadAnswer(String),
}

/// The token endpoint's answer.
#[derive(Debug, Clone, Deserialize)]
pub struct TokenAnswer {
    pub access_token: String,
    pub expires_in: u64,
}

type FetchFuture = Pin<Box<dyn Future<Output = Result<TokenAnswer, TokenError>> + Send>>;
/// Trades a signed assertion for a token (HTTP in production, a fake in tests).
pub type Fetch = Arc<dyn Fn(String) -> FetchFuture + Send + Sync>;

struct Cached {
    header: HeaderValue,
    refresh_at: Instant,
    expires_at: Instant,
}

/// The access tokens of one service-account key.
pub struct TokenSource {
    client_email: String,
    token_uri: String,
    key: RsaKeyPair,
    fetch: Fetch,
    cached: Mutex<Option<Arc<Cached>>>,
    /// Held by the one caller refreshing; the others wait for its result.
    refresh: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSource")
            .field("client_email", &self.client_email)
            .finish_non_exhaustive()
    }
}

impl TokenSource {
    /// A source calling `fetch` for tokens (tests); [`TokenSource::shared`] for production.
    pub fn with_fetch(sa: &ServiceAccountKey, fetch: Fetch) -> Result<Self, TokenError> {
        Ok(Self {
            client_email: sa.client_email.clone(),
            token_uri: sa.token_uri.clone(),
            key: jwt::key_pair(sa.private_key.expose())?,
            fetch,
            cached: Mutex::new(None),
            refresh: tokio::sync::Mutex::new(()),
        })
    }

    /// The process-wide source of this key, so that a config reload (a new
    /// snapshot) keeps the cached token instead of minting a new one.
    pub fn shared(sa: &ServiceAccountKey) -> Result<Arc<Self>, TokenError> {
        static SOURCES: OnceLock<DashMap<[u8; 32], Arc<TokenSource>>> = OnceLock::new();
        let mut h = Sha256::new();
        for part in [&sa.client_email, &sa.token_uri, sa.private_key.expose()] {
            h.update(part.as_bytes());
            h.update([0]);
        }
        let id: [u8; 32] = h.finalize().into();
        let sources = SOURCES.get_or_init(DashMap::new);
        if let Some(s) = sources.get(&id) {
            return Ok(Arc::clone(&s));
        }
        let fetch: Fetch = Arc::new(|_| Box::pin(async { unreachable_fetch() }));
        let mut source = Self::with_fetch(sa, fetch)?;
        let uri = source.token_uri.clone();
        source.fetch = Arc::new(move |assertion| {
            let uri = uri.clone();
            Box::pin(async move { http::exchange(&uri, &assertion).await })
        });
        Ok(Arc::clone(
            sources
                .entry(id)
                .or_insert_with(|| Arc::new(source))
                .value(),
        ))
    }

    /// `Bearer <access token>`, marked sensitive, from the cache or freshly minted.
    pub async fn header(&self) -> Result<HeaderValue, TokenError> {
        self.header_at(Instant::now()).await
    }

    /// [`Self::header`] as if the time were `now` (tests move the clock).
    pub async fn header_at(&self, now: Instant) -> Result<HeaderValue, TokenError> {
        let current = self.current();
        if let Some(c) = &current
            && now < c.refresh_at
        {
            return Ok(c.header.clone());
        }
        // Due for refresh but still valid: if someone is refreshing, use it.
        let guard = match self.refresh.try_lock() {
            Ok(g) => g,
            Err(_) => match &current {
                Some(c) if now < c.expires_at => return Ok(c.header.clone()),
                _ => self.refresh.lock().await,
            },
        };
        // Whoever held the lock may have refreshed it meanwhile.
        if let Some(c) = self.current()
            && now < c.refresh_at
        {
            return Ok(c.header.clone());
        }
        let fresh = self.mint(now).await;
        drop(guard);
        fresh
    }

    fn current(&self) -> Option<Arc<Cached>> {
        self.cached
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    async fn mint(&self, now: Instant) -> Result<HeaderValue, TokenError> {
        let iat = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let assertion = jwt::assertion(&self.key, &self.client_email, &self.token_uri, iat)?;
        let answer = (self.fetch)(assertion).await?;
        let mut header = HeaderValue::try_from(format!("Bearer {}", answer.access_token))
            .map_err(|_| TokenError::BadAnswer("access_token is not a header value".into()))?;
        header.set_sensitive(true);
        let lifetime = Duration::from_secs(answer.expires_in);
        // A short-lived token is refreshed halfway instead of never being cached.
        let refresh_in = lifetime
            .checked_sub(REFRESH_MARGIN)
            .filter(|d| !d.is_zero())
            .unwrap_or(lifetime / 2);
        let cached = Arc::new(Cached {
            header: header.clone(),
            refresh_at: now + refresh_in,
            expires_at: now + lifetime,
        });
        *self.cached.lock().unwrap_or_else(PoisonError::into_inner) = Some(cached);
        tracing::debug!(client_email = %self.client_email, expires_in = answer.expires_in, "vertex access token minted");
        Ok(header)
    }
}

fn code_suffix(code: &Option<String>) -> String {
    code.as_deref()
        .map(|c| format!(" ({c})"))
        .unwrap_or_default()
}

fn unreachable_fetch() -> Result<TokenAnswer, TokenError> {
    Err(TokenError::Http("token source not initialised".into()))
}

#[cfg(test)]
mod tests;
