//! `fastgate credentials list|add|remove|rotate-master-key`: provider keys of an
//! upstream, stored sealed under the master key. Keys are never printed.

use std::io::Read as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::{ArgGroup, Args, Subcommand};
use fastgate_config::Secret;
use fastgate_live::{Change, CredentialInput};
use reqwest::Method;
use serde_json::Value;

use super::admin_client::{AdminArgs, AdminClient};
use super::live::LiveDb;
use super::master_key::RotateArgs;
use super::output::{done, print_done, print_list, text};

#[derive(Debug, Args)]
pub struct CredentialsArgs {
    #[command(flatten)]
    pub admin: AdminArgs,
    #[command(subcommand)]
    pub cmd: CredentialsCommand,
}

#[derive(Debug, Subcommand)]
pub enum CredentialsCommand {
    /// List the provider keys of an upstream (names, weights and hints only).
    List { upstream: String },
    /// Add a provider key to an upstream.
    Add(AddArgs),
    /// Delete an API-managed provider key.
    Remove { upstream: String, name: String },
    /// Re-encrypt every stored provider key under a new master key (database
    /// mode only; gateways reading the key file follow within a second, those
    /// given FASTGATE_MASTER_KEY need the new key and a restart).
    RotateMasterKey(RotateArgs),
}

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("key_source").args(["key", "key_file", "key_env"])))]
pub struct AddArgs {
    pub upstream: String,
    #[arg(long)]
    pub name: String,
    /// The provider key itself. Warning: argv is visible to other users (`ps`)
    /// and kept in shell history; prefer --key-file or --key-env.
    #[arg(long)]
    pub key: Option<String>,
    /// Read the key from this file (`-` for stdin); surrounding whitespace is dropped.
    #[arg(long)]
    pub key_file: Option<PathBuf>,
    /// Read the key from this environment variable.
    #[arg(long)]
    pub key_env: Option<String>,
    /// Share of the requests this key takes (default 1).
    #[arg(long)]
    pub weight: Option<u32>,
    /// Daily request limit of this key (it is `exhausted` until the reset).
    #[arg(long)]
    pub requests_per_day: Option<u64>,
    /// Daily token limit of this key (input plus output tokens).
    #[arg(long)]
    pub tokens_per_day: Option<u64>,
    /// Update the key when it exists (then the key may be left out to change
    /// only the weight) instead of refusing.
    #[arg(long)]
    pub replace: bool,
}

impl AddArgs {
    /// The quota flags, when any was given (otherwise an update keeps the stored one).
    fn quota(&self) -> Option<fastgate_config::CredentialQuota> {
        let quota = fastgate_config::CredentialQuota {
            requests_per_day: self.requests_per_day,
            tokens_per_day: self.tokens_per_day,
        };
        quota.is_set().then_some(quota)
    }

    /// The key from whichever source was given; none is allowed only with `--replace`.
    fn key(&self) -> anyhow::Result<Option<String>> {
        let key = if let Some(k) = &self.key {
            Some(k.clone())
        } else if let Some(path) = &self.key_file {
            Some(read_key_file(path)?)
        } else if let Some(var) = &self.key_env {
            let v = std::env::var(var)
                .with_context(|| format!("environment variable {var} is not set"))?;
            Some(v.trim().to_owned())
        } else {
            None
        };
        if key.is_none() && !self.replace {
            anyhow::bail!("give the provider key with --key-file, --key-env or --key");
        }
        if key.as_deref().is_some_and(str::is_empty) {
            anyhow::bail!("the provider key is empty");
        }
        Ok(key)
    }
}

fn read_key_file(path: &Path) -> anyhow::Result<String> {
    let mut text = String::new();
    if path == Path::new("-") {
        std::io::stdin()
            .read_to_string(&mut text)
            .context("cannot read the key from stdin")?;
    } else {
        text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
    }
    Ok(text.trim().to_owned())
}

pub async fn run(path: Option<&Path>, json: bool, args: CredentialsArgs) -> anyhow::Result<()> {
    if let CredentialsCommand::RotateMasterKey(rotate) = args.cmd {
        if args.admin.admin_url.is_some() {
            anyhow::bail!(
                "rotate-master-key works on the database and the key file directly: drop --admin-url (or unset FASTGATE_ADMIN_URL)"
            );
        }
        return super::master_key::rotate(path, json, rotate).await;
    }
    match AdminClient::from_args(&args.admin)? {
        Some(client) => over_http(&client, json, args.cmd).await,
        None => {
            let db = LiveDb::open(path, json).await?;
            let result = in_db(&db, json, args.cmd).await;
            db.close().await;
            result
        }
    }
}

fn print_credentials(items: &[Value], json: bool) {
    print_list(
        items,
        json,
        |c| {
            format!(
                "{:<20} {:<20} {:>6}  {:<8} {}",
                text(c, "upstream"),
                text(c, "name"),
                text(c, "weight"),
                text(c, "key_hint"),
                text(c, "source")
            )
        },
        &format!(
            "{:<20} {:<20} {:>6}  {:<8} source",
            "upstream", "name", "weight", "key"
        ),
    );
}

async fn over_http(
    client: &AdminClient,
    json: bool,
    cmd: CredentialsCommand,
) -> anyhow::Result<()> {
    match cmd {
        CredentialsCommand::List { upstream } => {
            let items = client
                .list(&["upstreams", &upstream, "credentials"])
                .await?;
            print_credentials(&items, json);
        }
        CredentialsCommand::Add(a) => {
            let mut body = serde_json::json!({ "name": a.name });
            if let Some(key) = a.key()? {
                body["key"] = Value::String(key);
            }
            if let Some(w) = a.weight {
                body["weight"] = w.into();
            }
            if let Some(q) = a.quota() {
                body["quota"] = serde_json::to_value(q)?;
            }
            let after = if a.replace {
                let path = [
                    "upstreams",
                    a.upstream.as_str(),
                    "credentials",
                    a.name.as_str(),
                ];
                client.call(Method::PUT, &path, Some(&body)).await?
            } else {
                let path = ["upstreams", a.upstream.as_str(), "credentials"];
                client.call(Method::POST, &path, Some(&body)).await?
            };
            let full = format!("{}/{}", a.upstream, a.name);
            let action = if a.replace { "stored" } else { "created" };
            print_done(json, Some(&after), "credential", &full, action);
        }
        CredentialsCommand::Remove { upstream, name } => {
            let path = ["upstreams", upstream.as_str(), "credentials", name.as_str()];
            let after = client.call(Method::DELETE, &path, None).await?;
            print_done(
                json,
                Some(&after),
                "credential",
                &format!("{upstream}/{name}"),
                "deleted",
            );
        }
        CredentialsCommand::RotateMasterKey(_) => {
            anyhow::bail!("rotate-master-key works on the database only")
        }
    }
    Ok(())
}

async fn in_db(db: &LiveDb, json: bool, cmd: CredentialsCommand) -> anyhow::Result<()> {
    match cmd {
        CredentialsCommand::List { upstream } => {
            print_credentials(&db.credentials(&upstream)?, json);
        }
        CredentialsCommand::Add(a) => {
            let credential = CredentialInput {
                name: a.name.clone(),
                key: a.key()?.map(Secret::new),
                weight: a.weight,
                quota: a.quota(),
            };
            let planned = db
                .apply(Change::PutCredential {
                    upstream: a.upstream,
                    credential,
                    must_be_new: !a.replace,
                })
                .await?;
            let after = planned.after.as_ref();
            print_done(
                json,
                after,
                "credential",
                &planned.name,
                done(planned.action),
            );
        }
        CredentialsCommand::Remove { upstream, name } => {
            let planned = db
                .apply(Change::DeleteCredential { upstream, name })
                .await?;
            print_done(
                json,
                None,
                "credential",
                &planned.name,
                done(planned.action),
            );
        }
        CredentialsCommand::RotateMasterKey(_) => {
            anyhow::bail!("rotate-master-key is handled before opening the database")
        }
    }
    Ok(())
}
