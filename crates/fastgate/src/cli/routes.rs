//! `fastgate routes list|test`: see which route a request would take without
//! sending any traffic.

use std::path::Path;

use clap::{Args, Subcommand};
use fastgate_proxy::Snapshot;
use fastgate_proxy::client::ClientCache;
use fastgate_routing::{BodyView, MatchOutcome, normalize_path};

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
    let method: http::Method = args.method.to_ascii_uppercase().parse()?;
    let (raw_path, query) = match args.path.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (args.path.as_str(), None),
    };
    let path = normalize_path(raw_path)?;
    let mut headers = http::HeaderMap::new();
    for h in &args.headers {
        let (k, v) = h
            .split_once(':')
            .ok_or_else(|| anyhow::anyhow!("header must be 'name: value': {h}"))?;
        headers.append(
            http::HeaderName::from_bytes(k.trim().as_bytes())?,
            v.trim().parse()?,
        );
    }
    let body: Option<serde_json::Value> =
        args.body.as_deref().map(serde_json::from_str).transpose()?;
    let view = body.as_ref().map_or(BodyView::NotLoaded, BodyView::Json);
    let result = match snap.routes.find(&method, &path, &headers, view) {
        MatchOutcome::Matched(m) => {
            let rt = snap
                .route(m.index())
                .ok_or_else(|| anyhow::anyhow!("route runtime missing"))?;
            let up = &rt.upstream;
            let target = format!(
                "{}://{}{}{}{}",
                up.scheme,
                up.authority,
                up.base_path,
                m.upstream_path(&path),
                query.map(|q| format!("?{q}")).unwrap_or_default()
            );
            serde_json::json!({ "matched": true, "route": m.name(), "normalized_path": path,
                "upstream": &*up.name, "target_url": target })
        }
        MatchOutcome::NeedBody => serde_json::json!({ "matched": false, "normalized_path": path,
            "reason": "a candidate route has body conditions: pass --body" }),
        MatchOutcome::NotFound => serde_json::json!({ "matched": false, "normalized_path": path,
            "reason": "no route matches" }),
    };
    if json {
        println!("{result}");
    } else if result["matched"] == true {
        println!(
            "route:    {}\nupstream: {}\ntarget:   {}",
            result["route"], result["upstream"], result["target_url"]
        );
    } else {
        println!("no match for {} {}: {}", method, path, result["reason"]);
    }
    Ok(())
}
