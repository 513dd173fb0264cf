//! `fastgate upstreams list|show|add|remove`: upstreams managed at runtime, on a
//! running gateway (`--admin-url`) or in the database of `--config`.

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use fastgate_config::UpstreamConfig;
use fastgate_live::{Change, CredentialInput};
use reqwest::Method;
use serde_json::Value;

use super::admin_client::{AdminArgs, AdminClient};
use super::live::{LiveDb, read_object, typed};
use super::output::{done, print_done, print_list, print_object, text};

#[derive(Debug, Args)]
pub struct UpstreamsArgs {
    #[command(flatten)]
    pub admin: AdminArgs,
    #[command(subcommand)]
    pub cmd: UpstreamsCommand,
}

#[derive(Debug, Subcommand)]
pub enum UpstreamsCommand {
    /// List upstreams (the file's and the API's).
    List,
    /// Show one upstream with its provider keys (hints only).
    Show { name: String },
    /// Create an upstream from a file (`--file`) or from flags.
    Add(AddArgs),
    /// Delete an API-managed upstream and its provider keys.
    Remove { name: String },
}

#[derive(Debug, Args)]
pub struct AddArgs {
    /// The upstream in the config file's shape, YAML or JSON (`-` for stdin); it
    /// may list provider keys as `credentials: [{name, key, weight}]`.
    #[arg(long, short = 'f', conflicts_with_all = ["name", "kind", "base_url"])]
    pub file: Option<PathBuf>,
    #[arg(long, required_unless_present = "file")]
    pub name: Option<String>,
    /// `openai`, `anthropic`, `http`, … (as in the config file).
    #[arg(long, required_unless_present = "file")]
    pub kind: Option<String>,
    #[arg(long)]
    pub base_url: Option<String>,
    /// Replace the upstream when it exists instead of refusing.
    #[arg(long)]
    pub replace: bool,
}

impl AddArgs {
    /// The upstream as the admin API takes it.
    fn body(&self) -> anyhow::Result<Value> {
        if let Some(file) = &self.file {
            return read_object(file);
        }
        let mut v = serde_json::json!({ "name": self.name, "kind": self.kind });
        if let Some(url) = &self.base_url {
            v["base_url"] = Value::String(url.clone());
        }
        Ok(v)
    }
}

pub async fn run(path: Option<&Path>, json: bool, args: UpstreamsArgs) -> anyhow::Result<()> {
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

fn print_upstreams(items: &[Value], json: bool) {
    print_list(
        items,
        json,
        |u| {
            format!(
                "{:<20} {:<10} {:<40} {:>5}  {}",
                text(u, "name"),
                text(u, "kind"),
                text(u, "base_url"),
                u["credentials"].as_array().map_or(0, Vec::len),
                text(u, "source")
            )
        },
        &format!(
            "{:<20} {:<10} {:<40} {:>5}  source",
            "name", "kind", "base_url", "keys"
        ),
    );
}

async fn over_http(client: &AdminClient, json: bool, cmd: UpstreamsCommand) -> anyhow::Result<()> {
    match cmd {
        UpstreamsCommand::List => print_upstreams(&client.list(&["upstreams"]).await?, json),
        UpstreamsCommand::Show { name } => {
            print_object(&client.get(&["upstreams", &name]).await?, json);
        }
        UpstreamsCommand::Add(a) => {
            let body = a.body()?;
            let name = text(&body, "name");
            let after = if a.replace {
                client
                    .call(Method::PUT, &["upstreams", &name], Some(&body))
                    .await?
            } else {
                client
                    .call(Method::POST, &["upstreams"], Some(&body))
                    .await?
            };
            let action = if a.replace { "stored" } else { "created" };
            print_done(json, Some(&after), "upstream", &name, action);
        }
        UpstreamsCommand::Remove { name } => {
            let after = client
                .call(Method::DELETE, &["upstreams", &name], None)
                .await?;
            print_done(json, Some(&after), "upstream", &name, "deleted");
        }
    }
    Ok(())
}

/// The admin API's upstream body as a change: the upstream and its keys.
fn upstream_change(mut body: Value, must_be_new: bool) -> anyhow::Result<Change> {
    let obj = body
        .as_object_mut()
        .ok_or_else(|| anyhow::anyhow!("expected one object (a mapping)"))?;
    obj.remove("source");
    let credentials = match obj.remove("credentials") {
        Some(mut list) => {
            // Entries as `show --json` prints them may be given back unchanged.
            for c in list.as_array_mut().into_iter().flatten() {
                if let Some(c) = c.as_object_mut() {
                    for f in ["source", "upstream", "key_hint"] {
                        c.remove(f);
                    }
                }
            }
            typed::<Vec<CredentialInput>>(list)
                .map_err(|e| anyhow::anyhow!("credentials{}", prefixed(&e.to_string())))?
        }
        None => Vec::new(),
    };
    Ok(Change::PutUpstream {
        spec: typed::<UpstreamConfig>(body)?,
        credentials,
        must_be_new,
    })
}

/// `[0].key: …` stays as is after `credentials`; a message without a path gets `: `.
fn prefixed(message: &str) -> String {
    if message.starts_with('[') {
        message.to_owned()
    } else {
        format!(": {message}")
    }
}

async fn in_db(db: &LiveDb, json: bool, cmd: UpstreamsCommand) -> anyhow::Result<()> {
    match cmd {
        UpstreamsCommand::List => print_upstreams(&db.upstreams(), json),
        UpstreamsCommand::Show { name } => print_object(&db.upstream(&name)?, json),
        UpstreamsCommand::Add(a) => {
            let mut body = a.body()?;
            db.restore_redacted("upstream", &mut body)?;
            let planned = db.apply(upstream_change(body, !a.replace)?).await?;
            let after = planned.after.map(|v| super::live::redacted("upstream", v));
            print_done(
                json,
                after.as_ref(),
                "upstream",
                &planned.name,
                done(planned.action),
            );
        }
        UpstreamsCommand::Remove { name } => {
            let planned = db.apply(Change::DeleteUpstream(name)).await?;
            print_done(json, None, "upstream", &planned.name, done(planned.action));
        }
    }
    Ok(())
}
