//! The `fastgate` binary's library half: server assembly and the CLI, so the
//! integration tests can start the real server in-process.

pub mod admin_token;
pub mod cli;
pub mod data_dir;
pub mod limits_sync;
pub mod listener;
pub mod scheduler;
pub mod server;
pub mod sink;

use fastgate_config::{LogConfig, LogFormat};
use tracing_subscriber::EnvFilter;

/// Install the process-wide tracing subscriber (once; later calls are no-ops).
pub fn init_logging(cfg: &LogConfig) {
    let filter = EnvFilter::try_from_env("FASTGATE_LOG")
        .or_else(|_| EnvFilter::try_new(&cfg.level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false);
    let _ = match cfg.format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

/// Install the one TLS crypto provider (ring) for the whole process.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
