//! The fleet backend: counters and reservations in Redis, shared by every
//! instance (docs/limits.md, "One instance and a fleet").
//!
//! One admission is one `EVALSHA` of `admit.lua`, which checks and counts all
//! scopes and the quota atomically with Redis's own clock; a settlement is one
//! call of `settle.lua`, spawned off the request path. Settlements that cannot
//! be sent wait in a bounded queue until [`RedisBackend::replay_pending`].
//!
//! Needs one Redis (or a primary): the keys of one admission span several
//! scopes, which Redis Cluster could place on different nodes.

mod admit;
mod keys;
mod settle;
mod view;

use std::sync::{Arc, LazyLock, PoisonError, RwLock};
use std::time::Duration;

use dashmap::DashMap;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{FromRedisValue, Script, ScriptInvocation};

use crate::backend::{AdmitResult, BackendError, LimitBackend};
use crate::types::{AdmitRequest, KeyUsageView, PeriodUsage, QuotaCheck, Scope, Totals};

use keys::Keys;
use settle::{PendingQueue, SettleJob};

static ADD_USAGE: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("add_usage.lua")));

/// Settlements kept while Redis cannot take them; beyond this the oldest go.
const PENDING_CAP: usize = 100_000;
/// Quota totals added per script call by [`RedisBackend::add_usage`].
const ADD_USAGE_BATCH: usize = 256;

/// Where Redis is and how long to wait for it.
#[derive(Clone)]
pub struct RedisSettings {
    /// `redis://` or `rediss://` (TLS), with password and database if needed.
    pub url: String,
    /// Put before every key, e.g. `fastgate:`, so one Redis can serve several
    /// deployments.
    pub key_prefix: String,
    pub connect_timeout: Duration,
    /// Every command is abandoned after this (the admission then fails).
    pub command_timeout: Duration,
    /// How long a concurrency slot or reservation is held without being
    /// settled (`limits.reservation_ttl`): the longest a request may run.
    pub lease: Duration,
}

impl std::fmt::Debug for RedisSettings {
    // The URL may carry a password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisSettings")
            .field("url", &redact(&self.url))
            .field("key_prefix", &self.key_prefix)
            .field("connect_timeout", &self.connect_timeout)
            .field("command_timeout", &self.command_timeout)
            .field("lease", &self.lease)
            .finish()
    }
}

/// `scheme://host:port/db` without user name and password.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}***@{}", &url[..s + 3], &url[at + 1..]),
        _ => url.to_string(),
    }
}

/// The fleet backend. Cheap to clone: clones share one connection, one seed
/// cache and one queue of pending settlements.
#[derive(Clone)]
pub struct RedisBackend {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for RedisBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisBackend")
            .field("addr", &self.inner.addr)
            .field("pending", &self.inner.pending.len())
            .finish()
    }
}

pub(crate) struct Inner {
    keys: Keys,
    lease_ms: u64,
    command_timeout: Duration,
    connect_timeout: Duration,
    client: redis::Client,
    /// The connection and its generation; replaced after a timeout (see `renew`).
    conn: RwLock<(ConnectionManager, u64)>,
    /// The store's totals per (key id, period id): seeds for lost counters.
    seeds: DashMap<(String, String), Totals>,
    pending: PendingQueue,
    /// `host:port`, for messages (never the URL: it may hold a password).
    addr: String,
}

/// A failed call; `ambiguous` when Redis may have run it anyway (a timeout or
/// a connection lost after sending), so holds it took may need giving back.
pub(crate) struct CallError {
    error: BackendError,
    ambiguous: bool,
}

fn manager_config(connect_timeout: Duration, command_timeout: Duration) -> ConnectionManagerConfig {
    // Few reconnect retries: callers time out on their own and the limiter
    // pings every second, so a long retry ladder would only hide the outage.
    ConnectionManagerConfig::new()
        .set_connection_timeout(Some(connect_timeout))
        .set_response_timeout(Some(command_timeout))
        .set_number_of_retries(1)
        .set_max_delay(Duration::from_millis(500))
}

impl RedisBackend {
    /// Connects and pings; fails when Redis does not answer within the connect
    /// timeout (plus one command timeout for the ping).
    pub async fn connect(settings: RedisSettings) -> Result<Self, BackendError> {
        let shown = redact(&settings.url);
        let client = redis::Client::open(settings.url.as_str())
            .map_err(|e| BackendError(format!("redis url {shown}: {e}")))?;
        let addr = client.get_connection_info().addr().to_string();
        let config = manager_config(settings.connect_timeout, settings.command_timeout);
        let manager = tokio::time::timeout(
            settings.connect_timeout,
            ConnectionManager::new_with_config(client.clone(), config),
        )
        .await
        .map_err(|_| {
            BackendError(format!(
                "redis at {addr} did not accept a connection within {:?}",
                settings.connect_timeout
            ))
        })?
        .map_err(|e| BackendError(format!("redis at {addr}: {e}")))?;
        let backend = Self {
            inner: Arc::new(Inner {
                keys: Keys::new(&settings.key_prefix),
                lease_ms: u64::try_from(settings.lease.as_millis())
                    .unwrap_or(u64::MAX)
                    .max(1),
                command_timeout: settings.command_timeout,
                connect_timeout: settings.connect_timeout,
                client,
                conn: RwLock::new((manager, 0)),
                seeds: DashMap::new(),
                pending: PendingQueue::new(PENDING_CAP),
                addr,
            }),
        };
        backend.ping().await?;
        Ok(backend)
    }

    /// Whether Redis answers (the limiter's health probe).
    pub async fn ping(&self) -> Result<(), BackendError> {
        let (mut conn, generation) = self.inner.manager();
        let cmd = redis::cmd("PING");
        let out = self
            .inner
            .bounded(generation, cmd.query_async::<String>(&mut conn))
            .await
            .map_err(|e| e.error)?;
        if out == "PONG" {
            Ok(())
        } else {
            Err(BackendError(format!("redis ping answered {out:?}")))
        }
    }

    /// Settlements waiting to be sent.
    pub fn pending(&self) -> usize {
        self.inner.pending.len()
    }

    /// Sends the waiting settlements, oldest first; stops at the first failure
    /// and keeps it and the rest. Returns how many were sent.
    pub async fn replay_pending(&self) -> Result<usize, BackendError> {
        let mut sent = 0;
        while let Some(job) = self.inner.pending.pop() {
            if let Err(e) = self.inner.send_settle(&job).await {
                self.inner.pending.push_front(job);
                tracing::debug!(sent, error = %e.error, "replaying settlements stopped");
                return Err(e.error);
            }
            sent += 1;
        }
        Ok(sent)
    }

    /// Adds usage counted elsewhere (by the fallback during an outage) to the
    /// quota totals Redis has. Totals Redis has lost are left alone: they are
    /// seeded from the store, which already counts this usage.
    pub async fn add_usage(&self, usage: &[PeriodUsage]) -> Result<(), BackendError> {
        let live: Vec<&PeriodUsage> = usage.iter().filter(|u| !u.totals.is_zero()).collect();
        for batch in live.chunks(ADD_USAGE_BATCH) {
            let mut inv = ADD_USAGE.prepare_invoke();
            for u in batch {
                inv.key(self.inner.keys.quota(&u.key_id, &u.period).totals);
                inv.arg(admit::exact(u.totals.requests))
                    .arg(admit::exact(u.totals.tokens))
                    .arg(admit::exact(crate::usd_to_nanos(u.totals.cost)));
            }
            self.inner.invoke::<i64>(&inv).await.map_err(|e| e.error)?;
        }
        Ok(())
    }
}

impl Inner {
    fn manager(&self) -> (ConnectionManager, u64) {
        let guard = self.conn.read().unwrap_or_else(PoisonError::into_inner);
        (guard.0.clone(), guard.1)
    }

    /// Replaces the connection after a timeout. The connection manager only
    /// reconnects on errors it sees; a connection that went silent (a network
    /// partition, a dead peer without a reset) would otherwise stay in use.
    /// Only the first caller per generation replaces it.
    fn renew(&self, generation: u64) {
        let mut guard = self.conn.write().unwrap_or_else(PoisonError::into_inner);
        if guard.1 != generation {
            return;
        }
        let config = manager_config(self.connect_timeout, self.command_timeout);
        match ConnectionManager::new_lazy_with_config(self.client.clone(), config) {
            Ok(manager) => {
                *guard = (manager, generation.wrapping_add(1));
                tracing::debug!(addr = %self.addr, "redis connection replaced after a timeout");
            }
            Err(e) => tracing::debug!(addr = %self.addr, error = %e, "redis reconnect failed"),
        }
    }

    /// Runs one Redis call within the command timeout.
    async fn bounded<T>(
        &self,
        generation: u64,
        call: impl Future<Output = redis::RedisResult<T>>,
    ) -> Result<T, CallError> {
        match tokio::time::timeout(self.command_timeout, call).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => {
                if e.is_timeout() {
                    self.renew(generation);
                }
                Err(CallError {
                    ambiguous: e.is_timeout() || (e.is_io_error() && !e.is_connection_refusal()),
                    error: BackendError(format!("redis at {}: {e}", self.addr)),
                })
            }
            Err(_) => {
                self.renew(generation);
                Err(CallError {
                    ambiguous: true,
                    error: BackendError(format!(
                        "redis at {} did not answer within {:?}",
                        self.addr, self.command_timeout
                    )),
                })
            }
        }
    }

    async fn invoke<T: FromRedisValue>(&self, inv: &ScriptInvocation<'_>) -> Result<T, CallError> {
        let (mut conn, generation) = self.manager();
        self.bounded(generation, inv.invoke_async(&mut conn)).await
    }

    async fn send_settle(&self, job: &SettleJob) -> Result<(), CallError> {
        self.invoke::<i64>(&job.invocation()).await.map(|_| ())
    }
}

impl LimitBackend for RedisBackend {
    async fn admit(&self, req: &AdmitRequest) -> Result<AdmitResult, BackendError> {
        admit::admit(&self.inner, req).await
    }

    async fn usage(
        &self,
        key_scope: Option<&Scope>,
        quota: Option<&QuotaCheck>,
    ) -> Result<KeyUsageView, BackendError> {
        view::usage(&self.inner, key_scope, quota).await
    }

    /// Keeps the store's totals as seeds for counters Redis has lost (only the
    /// totals matter here: Redis already counted what this instance flushed).
    fn apply_totals(&self, totals: &[PeriodUsage], _flushed: &[PeriodUsage]) {
        for t in totals {
            self.inner
                .seeds
                .insert((t.key_id.clone(), t.period.clone()), t.totals);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_show() {
        assert_eq!(
            redact("rediss://user:s3cret@cache.example:6380/2"),
            "rediss://***@cache.example:6380/2"
        );
        assert_eq!(redact("redis://127.0.0.1:6379"), "redis://127.0.0.1:6379");
        let s = RedisSettings {
            url: "redis://:pw@h:1".into(),
            key_prefix: "p:".into(),
            connect_timeout: Duration::from_secs(1),
            command_timeout: Duration::from_secs(1),
            lease: Duration::from_secs(1),
        };
        assert!(!format!("{s:?}").contains("pw"));
    }

    #[test]
    fn tls_urls_are_accepted() {
        let c = redis::Client::open("rediss://:pw@cache.example:6380/0");
        assert!(c.is_ok(), "rediss URL refused");
    }
}
