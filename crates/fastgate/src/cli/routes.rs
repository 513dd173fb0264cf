//! `fastgate routes list|add|remove|toggle|test`: routes managed at runtime, on a
//! running gateway (`--admin-url`) or in the database of `--config`, and which
//! route a request would take, without sending any traffic.

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use fastgate_config::RouteConfig;
use fastgate_live::Change;
use fastgate_proxy::Snapshot;
use fastgate_proxy::client::ClientCache;
use fastgate_proxy::dry_run::{DryRunRequest, dry_run};
use reqwest::Method;
use serde_json::Value;

use super::admin_client::{AdminArgs, AdminClient};
use super::live::{LiveDb, read_object, redacted, typed};
use super::load_config_or_exit;
use super::output::{done, print_done, print_list, text};

#[derive(Debug, Args)]
pub struct RoutesArgs {
    #[command(flatten)]
    pub admin: AdminArgs,
    #[command(subcommand)]
    pub cmd: RoutesCommand,
}

#[derive(Debug, Subcommand)]
pub enum RoutesCommand {
    /// List routes (the file's and the API's).
    List,
    /// Create a route from a file in the config file's shape.
    Add(AddArgs),
    /// Delete an API-managed route.
    Remove { name: String },
    /// Switch an API-managed route on or off (flips it without --active).
    Toggle {
        name: String,
        #[arg(long)]
        active: Option<bool>,
    },
    /// Show which route matches a request and where it would be sent (offline:
    /// the routes of the configuration file; with --admin-url: the gateway's).
    Test(TestArgs),
}

#[derive(Debug, Args)]
pub struct AddArgs {
    /// The route in the config file's shape, YAML or JSON (`-` for stdin).
    #[arg(long, short = 'f')]
    pub file: PathBuf,
    /// Replace the route when it exists instead of refusing.
    #[arg(long)]
    pub replace: bool,
}

#[derive(Debug, Args)]
pub struct TestArgs {
    #[arg(long, default_value = "GET")]
    pub method: String,
    /// Request path, optionally with a query string.
    #[arg(long)]
    pub path: String,
    /// Request header as `name: value` (repeatable).
    #[arg(long = "header", short = 'H')]
    pub headers: Vec<String>,
    /// JSON request body.
    #[arg(long)]
    pub body: Option<String>,
}

pub async fn run(path: Option<&Path>, json: bool, args: RoutesArgs) -> anyhow::Result<()> {
    let client = AdminClient::from_args(&args.admin)?;
    match (client, args.cmd) {
        (Some(client), cmd) => over_http(&client, json, cmd).await,
        (None, RoutesCommand::Test(t)) => {
            let cfg = load_config_or_exit(path, json);
            let snap = Snapshot::build(&cfg, &ClientCache::default())?;
            test(&snap, json, &t)
        }
        (None, cmd) => {
            let db = LiveDb::open(path, json).await?;
            let result = in_db(&db, json, cmd).await;
            db.close().await;
            result
        }
    }
}

fn print_routes(items: &[Value], json: bool) {
    print_list(
        items,
        json,
        |r| {
            let methods = r["match"]["methods"]
                .as_array()
                .filter(|m| !m.is_empty())
                .map_or_else(
                    || "ANY".to_owned(),
                    |m| {
                        m.iter()
                            .filter_map(Value::as_str)
                            .collect::<Vec<_>>()
                            .join(",")
                    },
                );
            format!(
                "{:<20} prio {:<5} {:<8} {:<32} -> {:<16} {}{}",
                text(r, "name"),
                text(r, "priority"),
                methods,
                text(&r["match"], "path"),
                text(r, "upstream"),
                text(r, "source"),
                if r["active"] == false {
                    " (inactive)"
                } else {
                    ""
                }
            )
        },
        &format!(
            "{:<20} {:<10} {:<8} {:<32}    {:<16} source",
            "name", "priority", "methods", "path", "upstream"
        ),
    );
}

/// The test request as the admin API takes it.
fn test_body(args: &TestArgs) -> anyhow::Result<Value> {
    let mut headers = serde_json::Map::new();
    for h in &args.headers {
        let (k, v) = h
            .split_once(':')
            .ok_or_else(|| anyhow::anyhow!("header must be 'name: value': {h}"))?;
        headers.insert(k.trim().to_owned(), Value::String(v.trim().to_owned()));
    }
    let body = match &args.body {
        Some(b) => serde_json::from_str(b).unwrap_or_else(|_| Value::String(b.clone())),
        None => Value::Null,
    };
    Ok(
        serde_json::json!({ "method": args.method.to_ascii_uppercase(), "path": args.path,
        "headers": headers, "body": body }),
    )
}

async fn over_http(client: &AdminClient, json: bool, cmd: RoutesCommand) -> anyhow::Result<()> {
    match cmd {
        RoutesCommand::List => print_routes(&client.list(&["routes"]).await?, json),
        RoutesCommand::Add(a) => {
            let body = read_object(&a.file)?;
            let name = text(&body, "name");
            let after = if a.replace {
                client
                    .call(Method::PUT, &["routes", &name], Some(&body))
                    .await?
            } else {
                client.call(Method::POST, &["routes"], Some(&body)).await?
            };
            let action = if a.replace { "stored" } else { "created" };
            print_done(json, Some(&after), "route", &name, action);
        }
        RoutesCommand::Remove { name } => {
            let after = client
                .call(Method::DELETE, &["routes", &name], None)
                .await?;
            print_done(json, Some(&after), "route", &name, "deleted");
        }
        RoutesCommand::Toggle { name, active } => {
            let body = active.map(|a| serde_json::json!({ "active": a }));
            let path = ["routes", name.as_str(), "toggle"];
            let after = client.call(Method::POST, &path, body.as_ref()).await?;
            print_done(json, Some(&after), "route", &name, "toggled");
        }
        RoutesCommand::Test(t) => {
            let report = client
                .call(Method::POST, &["routes", "test"], Some(&test_body(&t)?))
                .await?;
            print_test(&report, json);
        }
    }
    Ok(())
}

async fn in_db(db: &LiveDb, json: bool, cmd: RoutesCommand) -> anyhow::Result<()> {
    let (change, deleted) = match cmd {
        RoutesCommand::List => {
            print_routes(&db.routes(), json);
            return Ok(());
        }
        RoutesCommand::Add(a) => {
            let mut body = read_object(&a.file)?;
            db.restore_redacted("route", &mut body)?;
            if let Some(obj) = body.as_object_mut() {
                obj.remove("source");
                if obj.contains_key("match") {
                    obj.remove("path");
                    obj.remove("methods");
                }
            }
            let spec: RouteConfig = typed(body)?;
            let must_be_new = !a.replace;
            (Change::PutRoute { spec, must_be_new }, false)
        }
        RoutesCommand::Remove { name } => (Change::DeleteRoute(name), true),
        RoutesCommand::Toggle { name, active } => (Change::ToggleRoute { name, active }, false),
        RoutesCommand::Test(_) => anyhow::bail!("routes test runs offline from the file"),
    };
    let planned = db.apply(change).await?;
    let after = planned
        .after
        .filter(|_| !deleted)
        .map(|v| redacted("route", v));
    if !json && planned.action == "toggle" {
        let state = after.as_ref().map_or("", |v| {
            if v["active"] == false {
                " (now inactive)"
            } else {
                " (now active)"
            }
        });
        println!("toggled route '{}'{state}", planned.name);
        return Ok(());
    }
    print_done(
        json,
        after.as_ref(),
        "route",
        &planned.name,
        done(planned.action),
    );
    Ok(())
}

/// A dry-run report (from `dry_run` or `POST /admin/api/routes/test`).
fn print_test(report: &Value, json: bool) {
    if json {
        println!("{report}");
        return;
    }
    let field = |name: &str| report[name].as_str().unwrap_or_default().to_owned();
    if report["matched"] != true {
        let reason = report["reason"].as_str().unwrap_or("no route matches");
        println!(
            "no match for {} {}: {reason}",
            field("method"),
            field("normalized_path")
        );
        return;
    }
    println!(
        "route:    {}\nupstream: {}\ntarget:   {} {}",
        field("route"),
        field("upstream"),
        field("method"),
        field("target_url")
    );
    if let Some(cred) = report["credential"].as_str() {
        println!("key:      {cred}");
    }
    for h in report["headers"].as_array().into_iter().flatten() {
        println!(
            "header:   {}: {}",
            h["name"].as_str().unwrap_or_default(),
            h["value"].as_str().unwrap_or_default()
        );
    }
    if !report["body"].is_null() {
        println!("body:     {}", report["body"]);
    }
}

fn test(snap: &Snapshot, json: bool, args: &TestArgs) -> anyhow::Result<()> {
    let mut headers = std::collections::BTreeMap::new();
    for h in &args.headers {
        let (k, v) = h
            .split_once(':')
            .ok_or_else(|| anyhow::anyhow!("header must be 'name: value': {h}"))?;
        headers.insert(k.trim().to_string(), v.trim().to_string());
    }
    let body: Option<serde_json::Value> =
        args.body.as_deref().map(serde_json::from_str).transpose()?;
    let report = dry_run(
        snap,
        &DryRunRequest {
            method: args.method.clone(),
            path: args.path.clone(),
            headers,
            body,
        },
    )?;
    print_test(&serde_json::to_value(&report)?, json);
    Ok(())
}
