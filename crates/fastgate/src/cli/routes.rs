//! `fastgate routes list|test`: see which route a request would take without
//! sending any traffic.

use std::path::Path;

use clap::{Args, Subcommand};
use fastgate_proxy::Snapshot;
use fastgate_proxy::client::ClientCache;
use fastgate_proxy::dry_run::{DryRunRequest, dry_run};

use super::load_config_or_exit;

#[derive(Debug, Subcommand)]
pub enum RoutesCommand {
    /// List configured routes.
    List,
    /// Show which route matches a request and where it would be sent.
    Test(TestArgs),
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

pub fn run(path: Option<&Path>, json: bool, cmd: RoutesCommand) -> anyhow::Result<()> {
    let cfg = load_config_or_exit(path, json);
    let snap = Snapshot::build(&cfg, &ClientCache::default())?;
    match cmd {
        RoutesCommand::List => {
            if json {
                println!("{}", serde_json::to_string_pretty(&snap.route_names)?);
            } else {
                for r in &snap.route_names {
                    println!(
                        "{:<20} prio {:<5} {:<8} {:<32} -> {}{}",
                        r.name,
                        r.priority,
                        if r.methods.is_empty() {
                            "ANY".to_string()
                        } else {
                            r.methods.join(",")
                        },
                        r.path,
                        r.upstream,
                        if r.active { "" } else { " (inactive)" }
                    );
                }
            }
            Ok(())
        }
        RoutesCommand::Test(args) => test(&snap, json, &args),
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
    if json {
        println!("{}", serde_json::to_string(&report)?);
        return Ok(());
    }
    if !report.matched {
        println!(
            "no match for {} {}: {}",
            report.method,
            report.normalized_path,
            report.reason.as_deref().unwrap_or("no route matches")
        );
        return Ok(());
    }
    let show = |v: &Option<String>| v.clone().unwrap_or_default();
    println!(
        "route:    {}\nupstream: {}\ntarget:   {} {}",
        show(&report.route),
        show(&report.upstream),
        report.method,
        show(&report.target_url)
    );
    if let Some(cred) = &report.credential {
        println!("key:      {cred}");
    }
    for h in &report.headers {
        println!("header:   {}: {}", h.name, h.value);
    }
    if let Some(body) = &report.body {
        println!("body:     {body}");
    }
    Ok(())
}
