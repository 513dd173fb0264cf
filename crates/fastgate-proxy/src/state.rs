//! `AppState`: cheap to clone, holds the swappable snapshots and the handles the
//! request path needs. Nothing here is awaited on the request path.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};

use arc_swap::ArcSwap;
use fastgate_audit::{AuditRecordRef, AuditSender};
use fastgate_auth::{ApiKeyRecord, KeyIndex};
use fastgate_config::{Config, Secret};
use fastgate_store::Store;
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::sync::mpsc;

use crate::client::ClientCache;
use crate::snapshot::{Snapshot, SnapshotError};

/// Peer address of the connection, put on every request by the server.
#[derive(Debug, Clone, Copy)]
pub struct PeerAddr(pub SocketAddr);

/// Why the server cut a connection short, shared by the connection and its
/// requests so an unfinished response's audit record can say why it ended.
#[derive(Debug, Clone, Default)]
pub struct ConnAbort(Arc<AtomicU8>);

impl ConnAbort {
    const NONE: u8 = 0;
    const WRITE_TIMEOUT: u8 = 1;
    const SHUTDOWN: u8 = 2;

    /// The client accepted no byte for `server.write_timeout`.
    pub fn write_timed_out(&self) {
        self.0.store(Self::WRITE_TIMEOUT, Ordering::Relaxed);
    }

    /// The shutdown grace period ended with the response still running.
    pub fn shut_down(&self) {
        self.0.store(Self::SHUTDOWN, Ordering::Relaxed);
    }

    /// Why a response was cut, if the server cut it.
    pub fn reason(&self) -> Option<&'static str> {
        match self.0.load(Ordering::Relaxed) {
            Self::NONE => None,
            Self::WRITE_TIMEOUT => {
                Some("client stopped reading: no byte accepted within server.write_timeout")
            }
            _ => Some("aborted at shutdown: server.shutdown_grace ran out"),
        }
    }
}

/// What a reload swapped in.
#[derive(Debug, Clone, Copy, serde::Serialize, utoipa::ToSchema)]
pub struct ReloadSummary {
    pub routes: usize,
    pub upstreams: usize,
}

#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

pub struct Inner {
    pub config: ArcSwap<Config>,
    /// Upstreams, provider keys, routes and model groups managed through the
    /// admin API (stored in the database), served alongside the config file's.
    pub live: ArcSwap<fastgate_live::LiveObjects>,
    /// Encrypts the provider keys stored in the database (`None`: none could be
    /// loaded; stored keys are then left out and new ones refused). Swapped when
    /// a rotation made elsewhere replaced the key file.
    pub master_key: arc_swap::ArcSwapOption<fastgate_upstream::MasterKey>,
    /// The key file, re-read after a rotation (`None`: the key came from the
    /// environment, which only a restart changes).
    pub master_key_file: Option<PathBuf>,
    /// Serialises changes made through this instance's admin API, so two changes
    /// are never planned against the same state (not on the request path).
    pub admin_changes: tokio::sync::Mutex<()>,
    /// Orders reloads from the database (the change watcher's and an admin
    /// change's): a load that read older rows never installs after a newer one.
    pub reloads: tokio::sync::Mutex<()>,
    pub snapshot: ArcSwap<Snapshot>,
    /// Every credential's health, kept across snapshots.
    pub health: Arc<fastgate_upstream::HealthRegistry>,
    /// The health registry's events, until the health worker takes them.
    pub health_events:
        std::sync::Mutex<Option<mpsc::Receiver<fastgate_upstream::health::HealthEvent>>>,
    /// Sends alerts; set once the health worker started.
    pub alerter: std::sync::OnceLock<fastgate_upstream::alerts::Alerter>,
    pub keys: ArcSwap<KeyIndex>,
    pub clients: ClientCache,
    /// Rate limits, quotas and budgets (in memory or shared through Redis).
    pub limiter: Arc<fastgate_limits::Limiter>,
    pub store: Store,
    pub audit: Option<AuditSender>,
    pub usage_tx: mpsc::Sender<Arc<ApiKeyRecord>>,
    pub metrics: PrometheusHandle,
    pub admin_token: Secret<String>,
    pub trusted_proxies: Vec<IpNet>,
    pub db_healthy: AtomicBool,
    /// Request body bytes held by in-flight requests (`server.max_inflight_body_bytes`).
    pub body_budget: crate::request_body::BodyBudget,
    /// The file the config came from, for reloads (`None`: built-in defaults).
    pub config_path: Option<PathBuf>,
}

/// What `AppState::new` needs.
pub struct StateParts {
    pub config: Config,
    pub store: Store,
    pub audit: Option<AuditSender>,
    pub usage_tx: mpsc::Sender<Arc<ApiKeyRecord>>,
    pub admin_token: Secret<String>,
    pub keys: KeyIndex,
    pub config_path: Option<PathBuf>,
    pub master_key: Option<fastgate_upstream::MasterKey>,
    pub master_key_file: Option<PathBuf>,
    /// Built by the server (it connects to Redis when a fleet shares one).
    pub limiter: Arc<fastgate_limits::Limiter>,
}

impl AppState {
    pub fn new(parts: StateParts) -> Result<Self, SnapshotError> {
        // The recorder first: the snapshot registers its metric handles with it.
        let metrics = crate::metrics::prometheus_handle().map_err(|e| SnapshotError::Invalid {
            path: "metrics".into(),
            message: e,
        })?;
        let clients = ClientCache::default();
        let (health, health_events) = fastgate_upstream::HealthRegistry::new(
            fastgate_upstream::health::HealthSettings::from_config(&parts.config),
        );
        let snapshot = Snapshot::build_with(&parts.config, &clients, &health)?;
        let trusted_proxies = parts
            .config
            .server
            .trusted_proxies
            .iter()
            .filter_map(|s| IpNet::parse(s))
            .collect();
        Ok(Self {
            inner: Arc::new(Inner {
                config: ArcSwap::from_pointee(parts.config),
                live: ArcSwap::from_pointee(fastgate_live::LiveObjects::default()),
                master_key: arc_swap::ArcSwapOption::from_pointee(parts.master_key),
                master_key_file: parts.master_key_file,
                admin_changes: tokio::sync::Mutex::new(()),
                reloads: tokio::sync::Mutex::new(()),
                snapshot: ArcSwap::from_pointee(snapshot),
                health,
                health_events: std::sync::Mutex::new(Some(health_events)),
                alerter: std::sync::OnceLock::new(),
                keys: ArcSwap::from_pointee(parts.keys),
                clients,
                limiter: parts.limiter,
                store: parts.store,
                audit: parts.audit,
                usage_tx: parts.usage_tx,
                metrics,
                admin_token: parts.admin_token,
                trusted_proxies,
                db_healthy: AtomicBool::new(true),
                body_budget: crate::request_body::BodyBudget::default(),
                config_path: parts.config_path,
            }),
        })
    }

    pub fn inner(&self) -> &Inner {
        &self.inner
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// Build a snapshot from `config` (plus the API-managed objects) and swap it
    /// in; on error the old one keeps serving.
    pub fn apply_config(&self, config: Config) -> Result<(), String> {
        let live = self.inner.live.load_full();
        let merged = fastgate_live::merge(&config, &live).map_err(|e| e.to_string())?;
        fastgate_config::validate(&merged).map_err(|e| e.to_string())?;
        let snapshot = self.build_serving(&merged)?;
        self.inner.snapshot.store(Arc::new(snapshot));
        self.inner.config.store(Arc::new(config));
        self.forget_unused_credentials();
        self.forget_unused_limits();
        Ok(())
    }

    /// Replace the API-managed objects: merged with the config file (names may not
    /// clash), validated by `fastgate check`'s rules, then a new snapshot. On error
    /// the current state keeps serving.
    pub fn set_live(&self, live: fastgate_live::LiveObjects) -> Result<(), String> {
        let config = self.inner.config.load_full();
        let merged = fastgate_live::merge(&config, &live).map_err(|e| e.to_string())?;
        fastgate_config::validate(&merged).map_err(|e| e.to_string())?;
        self.install(live, &merged)
    }

    /// Build the snapshot of `merged` (already validated) and swap in `live` with
    /// it; on error nothing changes.
    pub fn install(&self, live: fastgate_live::LiveObjects, merged: &Config) -> Result<(), String> {
        let snapshot = self.build_serving(merged)?;
        self.inner.live.store(Arc::new(live));
        self.inner.snapshot.store(Arc::new(snapshot));
        self.forget_unused_credentials();
        self.forget_unused_limits();
        Ok(())
    }

    /// The snapshot to serve `merged` with: its credentials' health carried
    /// over from the current one, the health settings updated.
    fn build_serving(&self, merged: &Config) -> Result<Snapshot, String> {
        let snapshot = Snapshot::build_with(merged, &self.inner.clients, &self.inner.health)
            .map_err(|e| e.to_string())?;
        self.inner
            .health
            .configure(fastgate_upstream::health::HealthSettings::from_config(
                merged,
            ));
        if let Some(alerter) = self.inner.alerter.get() {
            alerter.update(&merged.alerts);
        }
        self.inner
            .limiter
            .configure(crate::admission::limiter_settings(merged));
        Ok(snapshot)
    }

    /// Drop the health of credentials the serving snapshot no longer has.
    fn forget_unused_credentials(&self) {
        let snapshot = self.inner.snapshot.load();
        self.inner.health.retain(|upstream, credential| {
            snapshot.upstreams.iter().any(|u| {
                &*u.name == upstream && u.credentials.iter().any(|c| &*c.name == credential)
            })
        });
    }

    /// Hand the alert sender to the state (once), so reloads update its channels.
    pub fn set_alerter(&self, alerter: fastgate_upstream::alerts::Alerter) {
        let _ = self.inner.alerter.set(alerter);
    }

    pub fn limiter(&self) -> &Arc<fastgate_limits::Limiter> {
        &self.inner.limiter
    }

    /// Drop the limit counters of keys, routes and model groups that are gone.
    fn forget_unused_limits(&self) {
        let snapshot = self.inner.snapshot.load();
        let keys = self.inner.keys.load();
        let key_ids: std::collections::HashSet<&str> = keys.ids().collect();
        // A changed limit takes effect at once, not when a remembered refusal ends.
        self.inner.limiter.forget_refusals();
        self.inner.limiter.retain(|kind, id| match kind {
            fastgate_limits::ScopeKind::Key => key_ids.contains(id),
            fastgate_limits::ScopeKind::Route => {
                snapshot.route_rt.iter().flatten().any(|r| &*r.name == id)
            }
            fastgate_limits::ScopeKind::Model => snapshot.models.by_name.contains_key(id),
        });
    }

    pub fn health(&self) -> &Arc<fastgate_upstream::HealthRegistry> {
        &self.inner.health
    }

    /// Whether `merged` (already validated) builds a snapshot, without installing it.
    pub fn check_snapshot(&self, merged: &Config) -> Result<(), SnapshotError> {
        Snapshot::build(merged, &self.inner.clients).map(drop)
    }

    /// Replace the API-managed model groups (the rest of the live objects stays).
    pub fn set_api_models(
        &self,
        models: Vec<fastgate_config::ModelGroupConfig>,
    ) -> Result<(), String> {
        let mut live = self.inner.live.load().as_ref().clone();
        live.models = models;
        self.set_live(live)
    }

    /// Re-read the config file and swap in its routes and upstreams. A file that
    /// fails to load or validate is rejected and the current snapshot keeps
    /// serving. Listener, database, audit and runtime settings need a restart.
    pub fn reload_config(&self) -> Result<ReloadSummary, String> {
        let path = self.inner.config_path.as_deref().ok_or_else(|| {
            "running on built-in defaults: there is no file to reload".to_string()
        })?;
        let config = fastgate_config::load(Some(path)).map_err(|e| e.to_string())?;
        let summary = ReloadSummary {
            routes: config.routes.len(),
            upstreams: config.upstreams.len(),
        };
        self.apply_config(config)?;
        metrics::counter!(crate::metrics::CONFIG_RELOADS).increment(1);
        tracing::info!(
            routes = summary.routes,
            upstreams = summary.upstreams,
            "configuration reloaded"
        );
        Ok(summary)
    }

    pub fn set_keys(&self, index: KeyIndex) {
        metrics::gauge!(crate::metrics::KEYS_LOADED).set(index.len() as f64);
        self.inner.keys.store(Arc::new(index));
        self.forget_unused_limits();
    }

    /// Is there an audit log to write to? (Without one no record is built.)
    pub fn audits(&self) -> bool {
        self.inner.audit.is_some()
    }

    pub fn send_audit(&self, record: &AuditRecordRef<'_>) {
        if let Some(tx) = &self.inner.audit {
            tx.send_ref(record);
        }
    }

    /// Count a use of key `id`; aggregated and written in batches. Never waits:
    /// if the usage queue is full the count is dropped (usage counters are
    /// informational; the audit log is the record of truth).
    pub fn record_key_use(&self, key: &Arc<ApiKeyRecord>) {
        let _ = self.inner.usage_tx.try_send(Arc::clone(key));
    }

    pub fn audit_queue_depth(&self) -> usize {
        self.inner
            .audit
            .as_ref()
            .map_or(0, AuditSender::queue_depth)
    }

    pub fn set_db_healthy(&self, ok: bool) {
        self.inner.db_healthy.store(ok, Ordering::Relaxed);
    }

    pub fn db_healthy(&self) -> bool {
        self.inner.db_healthy.load(Ordering::Relaxed)
    }

    /// The client's address: the peer, or the first untrusted hop of
    /// `X-Forwarded-For` when the peer is a trusted proxy.
    pub fn client_ip(&self, peer: Option<SocketAddr>, headers: &http::HeaderMap) -> Option<String> {
        let peer = peer?;
        let trusted = |ip: &IpAddr| self.inner.trusted_proxies.iter().any(|n| n.contains(*ip));
        if !trusted(&peer.ip()) {
            return Some(ip_text(peer.ip()));
        }
        let forwarded = headers
            .get(crate::headers::X_FORWARDED_FOR)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.split(',')
                    .rev()
                    .map(str::trim)
                    .filter_map(|s| s.parse::<IpAddr>().ok())
                    .find(|ip| !trusted(ip))
            });
        Some(ip_text(forwarded.unwrap_or(peer.ip())))
    }
}

/// `ip` as `Display` writes it. IPv4 (nearly every client) without the formatter,
/// which cost more than a thousand instructions a request.
fn ip_text(ip: IpAddr) -> String {
    let IpAddr::V4(v4) = ip else {
        return ip.to_string();
    };
    let mut text = String::with_capacity(15);
    for (i, octet) in v4.octets().into_iter().enumerate() {
        if i > 0 {
            text.push('.');
        }
        if octet >= 100 {
            text.push(char::from(b'0' + octet / 100));
        }
        if octet >= 10 {
            text.push(char::from(b'0' + octet / 10 % 10));
        }
        text.push(char::from(b'0' + octet % 10));
    }
    text
}

/// An address block from `server.trusted_proxies` (`10.0.0.0/8`, or one address).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNet {
    addr: IpAddr,
    prefix: u8,
}

impl IpNet {
    pub fn parse(s: &str) -> Option<Self> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a.parse::<IpAddr>().ok()?, Some(p.parse::<u8>().ok()?)),
            None => (s.parse::<IpAddr>().ok()?, None),
        };
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(max);
        (prefix <= max).then_some(Self { addr, prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ip_text_writes_what_display_writes() {
        let ips = [
            "0.0.0.0",
            "127.0.0.1",
            "9.10.99.100",
            "255.255.255.255",
            "192.168.10.1",
            "::1",
            "::ffff:1.2.3.4",
            "2001:db8::8a2e:370:7334",
        ];
        for ip in ips {
            let ip: IpAddr = ip.parse().unwrap();
            assert_eq!(ip_text(ip), ip.to_string());
        }
        for n in [
            0u32,
            1,
            9,
            10,
            99,
            100,
            199,
            200,
            255,
            256,
            65_535,
            0x0a00_0001,
            u32::MAX,
        ] {
            let ip = IpAddr::V4(std::net::Ipv4Addr::from(n));
            assert_eq!(ip_text(ip), ip.to_string());
        }
    }

    #[test]
    fn ip_blocks() {
        let net = IpNet::parse("10.0.0.0/8").unwrap();
        assert!(net.contains("10.1.2.3".parse().unwrap()));
        assert!(!net.contains("11.0.0.1".parse().unwrap()));
        let one = IpNet::parse("127.0.0.1").unwrap();
        assert!(one.contains("127.0.0.1".parse().unwrap()));
        assert!(!one.contains("127.0.0.2".parse().unwrap()));
        let all = IpNet::parse("0.0.0.0/0").unwrap();
        assert!(all.contains("8.8.8.8".parse().unwrap()));
        let v6 = IpNet::parse("fd00::/8").unwrap();
        assert!(v6.contains("fd12::1".parse().unwrap()));
        assert!(!v6.contains("10.0.0.1".parse().unwrap()));
        assert!(IpNet::parse("10.0.0.0/33").is_none());
        assert!(IpNet::parse("nope").is_none());
    }
}
