//! `fastgate check`: validate the configuration and print a summary.

use std::path::Path;

pub fn run(path: Option<&Path>, json: bool) -> anyhow::Result<()> {
    let cfg = match fastgate_config::check(path) {
        Ok(cfg) => cfg,
        Err(errors) => {
            let messages: Vec<String> = errors.iter().map(ToString::to_string).collect();
            if json {
                println!("{}", serde_json::json!({ "ok": false, "errors": messages }));
            } else {
                for m in &messages {
                    eprintln!("invalid configuration: {m}");
                }
            }
            std::process::exit(super::EXIT_INVALID_CONFIG);
        }
    };
    // Build the route table too, exactly as `serve` would.
    if let Err(e) =
        fastgate_proxy::Snapshot::build(&cfg, &fastgate_proxy::client::ClientCache::default())
    {
        if json {
            println!(
                "{}",
                serde_json::json!({ "ok": false, "error": e.to_string() })
            );
        } else {
            eprintln!("invalid configuration: {e}");
        }
        std::process::exit(super::EXIT_INVALID_CONFIG);
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
