//! Assembling and running the server: store, audit writer, state, HTTP listener
//! and background tasks, with graceful shutdown that drains in-flight requests
//! and flushes the audit queue.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use fastgate_audit::{AuditConfig as WriterConfig, AuditWriter, AuditWriterHandle};
use fastgate_auth::KeyIndex;
use fastgate_config::{Config, Secret};
use fastgate_proxy::{AppState, StateParts};
use fastgate_store::Store;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::admin_token::{AdminToken, resolve_admin_token};
use crate::sink::StoreAuditSink;

/// A running server. Dropping it does not stop it; call `shutdown`.
pub struct ServerHandle {
    pub addr: SocketAddr,
    pub state: AppState,
    pub admin_token: AdminToken,
    cancel: CancellationToken,
    accept: JoinHandle<()>,
    background: Vec<JoinHandle<()>>,
    audit: Option<AuditWriterHandle>,
}

/// Build everything and start listening. Returns once the listener is bound.
pub async fn start(config: Config) -> anyhow::Result<ServerHandle> {
    start_from(config, None).await
}

/// Like `start`, remembering the config file so it can be reloaded.
pub async fn start_from(
    config: Config,
    config_path: Option<std::path::PathBuf>,
) -> anyhow::Result<ServerHandle> {
    crate::data_dir::prepare(&config)?;
    let admin_token = resolve_admin_token(&config)?;
    // Build the token estimator's tables now rather than on the first LLM request
    // (about 24 MB, so only when model groups are configured).
    if !config.models.is_empty() {
        tokio::task::spawn_blocking(fastgate_llm::warm_up_estimator);
    }
    let store = Store::connect(&config.database_url(), config.database.max_connections)
        .await
        .context("cannot open the database")?;
    let (keys, skipped) = KeyIndex::build(store.list_keys().await.context("cannot load keys")?);
    if !skipped.is_empty() {
        tracing::warn!(?skipped, "keys with an unreadable hash were skipped");
    }
    let (master_key, master_key_file) = load_master_key(&config)?;
    let (audit_tx, audit_handle) = start_audit(&config, &store).await?;
    let (usage_tx, usage_rx) = mpsc::channel(65_536);
    let limiter = Arc::new(crate::limits_sync::build_limiter(&config));
    crate::limits_sync::connect_at_start(&limiter).await;
    let state = AppState::new(StateParts {
        config: config.clone(),
        store: store.clone(),
        audit: audit_tx,
        usage_tx,
        admin_token: Secret::new(admin_token.value.clone()),
        keys,
        config_path,
        master_key: Some(master_key),
        master_key_file,
        limiter,
    })?;
    // The recorder exists now (AppState installs it): show the limits mode.
    state.limiter().publish_metrics();

    if let Err(e) = fastgate_proxy::sync::reload_live(&state).await {
        tracing::warn!(error = %e, "stored upstreams, routes and model groups not applied");
    }
    if let Err(e) = fastgate_upstream::health::load_states(state.health(), &store).await {
        tracing::warn!(error = %e, "stored credential states not applied");
    }
    if let Err(e) = crate::limits_sync::load_totals(&state).await {
        tracing::warn!(error = %e, "stored quota usage not loaded; quotas count from zero until the next sync");
    }

    let listener = TcpListener::bind(config.server.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.server.listen))?;
    let addr = listener.local_addr()?;
    let instance = instance_name(addr);
    let cancel = CancellationToken::new();
    let background = vec![
        fastgate_proxy::sync::spawn_change_watcher(
            state.clone(),
            Duration::from_millis(500),
            cancel.child_token(),
        ),
        fastgate_proxy::sync::spawn_usage_flusher(
            state.clone(),
            usage_rx,
            Duration::from_secs(1),
            cancel.child_token(),
        ),
        crate::scheduler::spawn(state.clone(), instance.clone(), cancel.child_token()),
        crate::limits_sync::spawn(state.clone(), cancel.child_token()),
        health_worker(&state, &config, &instance, &cancel),
    ];
    let accept = tokio::spawn(crate::listener::serve(
        listener,
        fastgate_admin::router(state.clone()),
        state.clone(),
        config.clone(),
        cancel.clone(),
    ));
    Ok(ServerHandle {
        addr,
        state,
        admin_token,
        cancel,
        accept,
        background,
        audit: audit_handle,
    })
}

/// The master key that encrypts stored provider keys: `FASTGATE_MASTER_KEY`, else
/// the key file (generated on first start).
fn load_master_key(
    config: &Config,
) -> anyhow::Result<(fastgate_upstream::MasterKey, Option<std::path::PathBuf>)> {
    let env = std::env::var(fastgate_upstream::MASTER_KEY_ENV).ok();
    let path = config.master_key_path();
    let (key, source) = fastgate_upstream::MasterKey::load_or_create(env.as_deref(), &path)
        .context("cannot load the master key")?;
    match &source {
        fastgate_upstream::MasterKeySource::Generated(p) => tracing::info!(
            key_id = key.id(),
            file = %p.display(),
            "generated a master key for provider keys stored in the database; back it up, and give every instance sharing the database the same key"
        ),
        _ => tracing::debug!(key_id = key.id(), ?source, "master key loaded"),
    }
    let file = (source != fastgate_upstream::MasterKeySource::Env).then_some(path);
    Ok((key, file))
}

async fn start_audit(
    config: &Config,
    store: &Store,
) -> anyhow::Result<(
    Option<fastgate_audit::AuditSender>,
    Option<AuditWriterHandle>,
)> {
    if !config.audit.enabled {
        return Ok((None, None));
    }
    let writer_cfg = WriterConfig {
        queue_capacity: config.audit.queue_capacity,
        batch_size: config.audit.batch_size,
        flush_interval: config.audit.flush_interval,
        spill_dir: config.data_dir.join("spill"),
        journal: config.audit.journal,
    };
    let (tx, handle) = AuditWriter::start(writer_cfg, Arc::new(StoreAuditSink(store.clone())))
        .await
        .context("cannot start the audit writer")?;
    Ok((Some(tx), Some(handle)))
}

impl ServerHandle {
    /// Stop accepting, let in-flight requests and streams finish (up to the grace
    /// period), stop background tasks, flush the audit queue, close the store.
    pub async fn shutdown(self) {
        self.cancel.cancel();
        let _ = self.accept.await;
        for task in self.background {
            let _ = task.await;
        }
        // Every request has settled by now: keep its usage.
        if let Err(e) = crate::limits_sync::flush(&self.state).await {
            tracing::warn!(error = %e, "limits: final usage not written to the database");
        }
        if let Some(audit) = self.audit {
            audit.shutdown().await;
        }
        self.state.store().close().await;
    }

    /// The audit writer's counters (None when the audit log is off).
    pub fn audit_stats(&self) -> Option<fastgate_audit::AuditStats> {
        self.audit.as_ref().map(AuditWriterHandle::stats)
    }

    /// Wait until everything queued for the audit log so far is written.
    pub async fn flush_audit(&self) {
        if let Some(audit) = &self.audit {
            audit.flush().await;
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

/// Where the SQLite database and state live, for messages.
pub fn describe_data_dir(dir: &Path) -> String {
    std::fs::canonicalize(dir)
        .unwrap_or_else(|_| dir.to_path_buf())
        .display()
        .to_string()
}

/// This process in task leases and rule events: host, port and process id.
fn instance_name(listen: std::net::SocketAddr) -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into());
    format!("{host}:{}:{}", listen.port(), std::process::id())
}

/// Start the credential health worker: stores state changes and rule events,
/// sends alerts, syncs counters.
fn health_worker(
    state: &AppState,
    config: &Config,
    instance: &str,
    cancel: &CancellationToken,
) -> tokio::task::JoinHandle<()> {
    let events = state
        .inner()
        .health_events
        .lock()
        .ok()
        .and_then(|mut e| e.take());
    let (alerter, alert_task) =
        fastgate_upstream::alerts::Alerter::start(&config.alerts, cancel.child_token());
    state.set_alerter(alerter.clone());
    let worker = fastgate_upstream::health::HealthWorker {
        registry: std::sync::Arc::clone(state.health()),
        store: state.store().clone(),
        alerter: Some(alerter),
        instance: instance.to_string(),
        flush_every: config.health.counters_flush_interval,
    };
    let cancel = cancel.child_token();
    tokio::spawn(async move {
        if let Some(events) = events {
            // The worker stops with `cancel`; a panic in it is logged by tokio.
            let _ = worker.spawn(events, cancel.clone()).await;
        }
        let _ = alert_task.await;
    })
}
