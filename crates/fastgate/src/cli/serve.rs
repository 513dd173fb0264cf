//! `fastgate serve`: run until SIGTERM / Ctrl-C, then drain and flush.

use std::path::Path;

use clap::Args;

use super::load_config_or_exit;
use crate::server;

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Override `server.listen`, e.g. 127.0.0.1:9000.
    #[arg(long)]
    pub listen: Option<std::net::SocketAddr>,
}

pub async fn run(path: Option<&Path>, args: ServeArgs) -> anyhow::Result<()> {
    let mut cfg = load_config_or_exit(path, false);
    if let Some(listen) = args.listen {
        cfg.server.listen = listen;
    }
    crate::init_logging(&cfg.log);
    let handle = server::start_from(cfg.clone(), path.map(Path::to_path_buf)).await?;
    print_banner(&handle, &cfg, path);
    wait_for_stop(&handle).await;
    tracing::info!("shutting down: finishing in-flight requests");
    handle.shutdown().await;
    tracing::info!("stopped");
    Ok(())
}

fn print_banner(handle: &server::ServerHandle, cfg: &fastgate_config::Config, path: Option<&Path>) {
    let url = handle.url();
    let source = path.map_or_else(
        || "built-in defaults".to_string(),
        |p| p.display().to_string(),
    );
    println!("FastGate {} listening on {url}", env!("CARGO_PKG_VERSION"));
    println!("  config:     {source}");
    println!(
        "  database:   {} ({})",
        handle.state.store().backend(),
        redact_url(&cfg.database_url())
    );
    println!("  data dir:   {}", server::describe_data_dir(&cfg.data_dir));
    println!("  proxy API:  {url}/v1/...  (gateway key as 'Authorization: Bearer fg_...')");
    println!("  admin API:  {url}/admin/api  (admin token as 'Authorization: Bearer ...')");
    println!("  health:     {url}/health    metrics: {url}/metrics");
    println!(
        "  routes:     {}  upstreams: {}",
        cfg.routes.len(),
        cfg.upstreams.len()
    );
    match (&handle.admin_token.file, handle.admin_token.generated_now) {
        (Some(file), true) => println!(
            "  admin token (generated, saved to {}): {}",
            file.display(),
            handle.admin_token.value
        ),
        (Some(file), false) => println!("  admin token: stored in {}", file.display()),
        (None, _) => println!("  admin token: from configuration"),
    }
}

/// Hide a password in a database URL for display.
fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}://***@{}", &url[..s], &url[at + 1..]),
        _ => url.to_string(),
    }
}

/// Wait for SIGTERM or Ctrl-C; reload the config file on SIGHUP meanwhile.
async fn wait_for_stop(handle: &server::ServerHandle) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut term), Ok(mut hup)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::hangup()),
        ) else {
            let _ = tokio::signal::ctrl_c().await;
            return;
        };
        loop {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => return,
                _ = term.recv() => return,
                _ = hup.recv() => {
                    if let Err(e) = handle.state.reload_config() {
                        tracing::error!(error = %e, "configuration reload rejected; still serving the previous one");
                    }
                }
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = handle;
        let _ = tokio::signal::ctrl_c().await;
    }
}
