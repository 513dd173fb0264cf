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
    /// Add a built-in mock upstream serving model `demo` and print a gateway
    /// key named `demo` (a new secret each start): a working chat call offline.
    #[arg(long)]
    pub demo: bool,
}

pub async fn run(path: Option<&Path>, args: ServeArgs) -> anyhow::Result<()> {
    let mut cfg = load_config_or_exit(path, false);
    if let Some(listen) = args.listen {
        cfg.server.listen = listen;
    }
    if args.demo {
        add_demo_model(&mut cfg);
    }
    crate::init_logging(&cfg.log);
    // Before the banner: a supervisor may signal as soon as it sees "listening".
    let signals = StopSignals::install();
    let handle = match server::start_from(cfg.clone(), path.map(Path::to_path_buf)).await {
        Ok(handle) => handle,
        Err(e) => match e.downcast_ref::<crate::admin_token::InsecureTokenFile>() {
            // A configuration problem the operator must fix: same exit code as one.
            Some(insecure) => super::exit_invalid_config(&[insecure.to_string()], false),
            None => return Err(e),
        },
    };
    print_banner(&handle, &cfg, path);
    if args.demo {
        let key = demo_key(&handle).await?;
        print_demo(&handle.url(), &key);
    }
    wait_for_stop(&handle, signals).await;
    tracing::info!("shutting down: finishing in-flight requests");
    handle.shutdown().await;
    tracing::info!("stopped");
    Ok(())
}

fn add_demo_model(cfg: &mut fastgate_config::Config) {
    use fastgate_config::{
        DeploymentConfig, ModelGroupConfig, ModelKind, UpstreamConfig, UpstreamKind,
    };
    if !cfg.upstreams.iter().any(|u| u.name == "demo") {
        cfg.upstreams.push(UpstreamConfig {
            name: "demo".into(),
            kind: UpstreamKind::Mock,
            base_url: String::new(),
            api_version: None,
            responses_api: None,
            project: None,
            location: None,
            auth_header: None,
            auth_scheme: None,
            headers: Default::default(),
            credentials: Vec::new(),
            strategy: Default::default(),
            pool: Default::default(),
            probe: None,
            timeout: None,
            retries: None,
            transforms: Default::default(),
        });
    }
    if !cfg.models.iter().any(|m| m.name == "demo") {
        cfg.models.push(ModelGroupConfig {
            name: "demo".into(),
            kind: ModelKind::Chat,
            deployments: vec![DeploymentConfig {
                upstream: "demo".into(),
                model: "mock-1".into(),
                weight: 1,
                timeout: None,
                retries: None,
                transforms: Default::default(),
                price: None,
            }],
            fallbacks: Vec::new(),
            price: None,
            max_output_tokens: None,
            limits: Default::default(),
        });
    }
}

/// The `demo` key with a fresh secret (created on first use).
async fn demo_key(handle: &server::ServerHandle) -> anyhow::Result<String> {
    let store = handle.state.store();
    let generated = match store.get_key("demo").await? {
        Some(mut rec) => {
            let generated = fastgate_auth::generate_key();
            rec.key_hash = generated.hash.clone();
            rec.prefix = generated.prefix.clone();
            rec.is_active = true;
            rec.revoked_at = None;
            store.update_key(&rec).await?;
            generated
        }
        None => {
            let (generated, rec) = fastgate_auth::new_key_record("demo", chrono::Utc::now());
            store.insert_key(&rec).await?;
            generated
        }
    };
    fastgate_proxy::sync::reload_keys(&handle.state).await;
    Ok(generated.secret)
}

fn print_demo(url: &str, key: &str) {
    println!();
    println!("Demo: model `demo` is served by a built-in mock upstream. Try:");
    println!("  curl {url}/v1/chat/completions -H 'Authorization: Bearer {key}' \\");
    println!("       -H 'Content-Type: application/json' \\");
    println!(
        "       -d '{{\"model\":\"demo\",\"messages\":[{{\"role\":\"user\",\"content\":\"Hello\"}}]}}'"
    );
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
    println!("  admin UI:   {url}/admin/ui  (sign in with the admin token)");
    println!("  admin API:  {url}/admin/api  (admin token as 'Authorization: Bearer ...')");
    println!("  health:     {url}/health    metrics: {url}/metrics");
    println!(
        "  routes:     {}  upstreams: {}",
        cfg.routes.len(),
        cfg.upstreams.len()
    );
    // The token itself is never printed (terminal scrollback and service logs
    // keep stdout): only where to read it.
    match (&handle.admin_token.file, handle.admin_token.generated_now) {
        (Some(file), true) => println!(
            "  admin token: generated, saved to {} (mode 600; read it there)",
            file.display()
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

/// SIGTERM and SIGHUP handlers, registered once at start (a signal that arrives
/// before registration would take the process down with its default action).
struct StopSignals {
    #[cfg(unix)]
    streams: Option<(tokio::signal::unix::Signal, tokio::signal::unix::Signal)>,
}

impl StopSignals {
    fn install() -> Self {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let streams = match (
                signal(SignalKind::terminate()),
                signal(SignalKind::hangup()),
            ) {
                (Ok(term), Ok(hup)) => Some((term, hup)),
                _ => None,
            };
            Self { streams }
        }
        #[cfg(not(unix))]
        {
            Self {}
        }
    }
}

/// Wait for SIGTERM or Ctrl-C; reload the config file on SIGHUP meanwhile.
async fn wait_for_stop(handle: &server::ServerHandle, signals: StopSignals) {
    #[cfg(unix)]
    {
        let Some((mut term, mut hup)) = signals.streams else {
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
        let _ = (handle, signals);
        let _ = tokio::signal::ctrl_c().await;
    }
}
