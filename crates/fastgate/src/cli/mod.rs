//! The command line: `fastgate serve|check|keys|upstreams|credentials|routes|rules|migrate|dev|version`.

pub mod admin_client;
pub mod check;
pub mod credentials;
pub mod dev;
pub mod keys;
pub mod live;
mod master_key;
mod output;
pub mod routes;
pub mod rules;
pub mod serve;
pub mod upstreams;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "fastgate",
    version,
    about = "FastGate: a fast LLM and HTTP API gateway"
)]
pub struct Cli {
    /// Configuration file (YAML). Without it, built-in defaults are used.
    #[arg(long, short = 'c', global = true, env = "FASTGATE_CONFIG")]
    pub config: Option<PathBuf>,
    /// Machine-readable JSON output.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the gateway.
    Serve(serve::ServeArgs),
    /// Validate the configuration file and exit (exit code 2 when invalid).
    Check,
    /// Manage gateway keys.
    #[command(subcommand)]
    Keys(keys::KeysCommand),
    /// Manage upstreams (on a running gateway with --admin-url, else in the database).
    Upstreams(upstreams::UpstreamsArgs),
    /// Manage provider keys of upstreams; rotate the master key that seals them.
    Credentials(credentials::CredentialsArgs),
    /// Manage and test routes.
    Routes(routes::RoutesArgs),
    /// Manage credential health rules (on a running gateway with --admin-url, else in the database).
    Rules(rules::RulesArgs),
    /// Create or upgrade the database schema, then exit.
    Migrate,
    /// Developer tools (`dev seed-logs N`: synthetic audit rows for measuring at scale).
    #[command(subcommand)]
    Dev(dev::DevCommand),
    /// Print the version.
    Version,
}

/// Exit code for an invalid configuration.
pub const EXIT_INVALID_CONFIG: i32 = 2;

/// Print configuration errors (text or JSON) and exit with code 2.
pub fn exit_invalid_config(messages: &[String], json: bool) -> ! {
    if json {
        println!("{}", serde_json::json!({ "ok": false, "errors": messages }));
    } else {
        for m in messages {
            eprintln!("invalid configuration: {m}");
        }
    }
    std::process::exit(EXIT_INVALID_CONFIG);
}

/// Load and validate the config, or print the error and exit with code 2.
pub fn load_config_or_exit(path: Option<&std::path::Path>, json: bool) -> fastgate_config::Config {
    fastgate_config::load(path).unwrap_or_else(|e| exit_invalid_config(&[e.to_string()], json))
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(args) => serve::run(cli.config.as_deref(), args).await,
        Command::Check => check::run(cli.config.as_deref(), cli.json),
        Command::Keys(cmd) => keys::run(cli.config.as_deref(), cli.json, cmd).await,
        Command::Upstreams(args) => upstreams::run(cli.config.as_deref(), cli.json, args).await,
        Command::Credentials(args) => credentials::run(cli.config.as_deref(), cli.json, args).await,
        Command::Routes(args) => routes::run(cli.config.as_deref(), cli.json, args).await,
        Command::Rules(args) => rules::run(cli.config.as_deref(), cli.json, args).await,
        Command::Dev(cmd) => dev::run(cli.config.as_deref(), cli.json, cmd).await,
        Command::Migrate => {
            let cfg = load_config_or_exit(cli.config.as_deref(), cli.json);
            crate::data_dir::prepare(&cfg)?;
            let store = fastgate_store::Store::connect(&cfg.database_url(), 1).await?;
            store.close().await;
            if cli.json {
                println!(
                    "{}",
                    serde_json::json!({ "ok": true, "backend": store.backend() })
                );
            } else {
                println!("database schema is up to date ({})", store.backend());
            }
            Ok(())
        }
        Command::Version => {
            if cli.json {
                println!(
                    "{}",
                    serde_json::json!({ "version": env!("CARGO_PKG_VERSION") })
                );
            } else {
                println!("fastgate {}", env!("CARGO_PKG_VERSION"));
            }
            Ok(())
        }
    }
}
