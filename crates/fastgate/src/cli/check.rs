//! `fastgate check`: validate the configuration and print a summary.

use std::path::Path;

pub fn run(path: Option<&Path>, json: bool) -> anyhow::Result<()> {
    let cfg = fastgate_config::check(path).unwrap_or_else(|errors| {
        let messages: Vec<String> = errors.iter().map(ToString::to_string).collect();
        super::exit_invalid_config(&messages, json)
    });
    // Build the route table too, exactly as `serve` would.
    if let Err(e) =
        fastgate_proxy::Snapshot::build(&cfg, &fastgate_proxy::client::ClientCache::default())
    {
        super::exit_invalid_config(&[e.to_string()], json);
    }
    if json {
        println!(
            "{}",
            serde_json::json!({ "ok": true, "upstreams": cfg.upstreams.len(), "routes": cfg.routes.len() })
        );
    } else {
        println!(
            "configuration OK: {} upstream(s), {} route(s)",
            cfg.upstreams.len(),
            cfg.routes.len()
        );
    }
    Ok(())
}
