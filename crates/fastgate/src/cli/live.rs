//! The database mode of the live-configuration commands: load the file and the
//! stored objects, plan a change with the gateway's own rules, check that the
//! gateway could build its routing table from the result, store it and record
//! an admin event. Running gateways pick the change up within a second.

use std::path::Path;

use anyhow::Context as _;
use fastgate_config::Config;
use fastgate_live::{Change, LiveObjects, Planned, Source};
use fastgate_proxy::Snapshot;
use fastgate_proxy::client::ClientCache;
use fastgate_store::{AdminEvent, Store};
use fastgate_upstream::MasterKey;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::load_config_or_exit;

/// Who the admin audit trail names for changes made here.
pub const CLI_ACTOR: &str = "cli";

/// The configuration file, its database and the objects stored there.
pub struct LiveDb {
    pub cfg: Config,
    pub store: Store,
    pub master: MasterKey,
    pub live: LiveObjects,
}

impl LiveDb {
    /// Put the stored values back where `body` (an object as `show --json` prints
    /// it) carries `[redacted]`; see `fastgate_admin::restore_redacted`.
    pub fn restore_redacted(&self, kind: &str, body: &mut Value) -> anyhow::Result<()> {
        let name = body["name"].as_str().unwrap_or_default().to_owned();
        let existing = match kind {
            "upstream" => self
                .live
                .upstreams
                .iter()
                .find(|u| u.name == name)
                .and_then(|u| serde_json::to_value(u).ok()),
            _ => self
                .live
                .routes
                .iter()
                .find(|r| r.name == name)
                .and_then(|r| serde_json::to_value(r).ok()),
        };
        fastgate_admin::restore_redacted(body, existing).map_err(|e| anyhow::anyhow!("{e}"))
    }
}

/// Read `FASTGATE_MASTER_KEY` (empty counts as unset).
pub fn master_key_env() -> Option<String> {
    std::env::var(fastgate_upstream::MASTER_KEY_ENV)
        .ok()
        .filter(|v| !v.trim().is_empty())
}

impl LiveDb {
    /// Load the config (exit 2 when invalid), open its database, load or create
    /// the master key (as `serve` does) and read the stored objects. Objects
    /// that cannot be read are reported on stderr.
    pub async fn open(path: Option<&Path>, json: bool) -> anyhow::Result<LiveDb> {
        let cfg = load_config_or_exit(path, json);
        crate::data_dir::prepare(&cfg)?;
        let (master, _) =
            MasterKey::load_or_create(master_key_env().as_deref(), &cfg.master_key_path())
                .context("cannot load the master key")?;
        let store = Store::connect(&cfg.database_url(), 1)
            .await
            .context("cannot open the database")?;
        let live = match fastgate_live::load(&store, Some(&master)).await {
            Ok(live) => live,
            Err(e) => {
                store.close().await;
                return Err(e).context("cannot read the stored configuration");
            }
        };
        for problem in &live.problems {
            eprintln!("warning: {problem}");
        }
        Ok(LiveDb {
            cfg,
            store,
            master,
            live,
        })
    }

    pub async fn close(self) {
        self.store.close().await;
    }

    /// Plan `change`, check the gateway can build its routes from the result,
    /// store it and record the admin event. Nothing is stored when any check fails.
    pub async fn apply(&self, change: Change) -> anyhow::Result<Planned> {
        let planned = fastgate_live::plan(&self.cfg, &self.live, change)?;
        Snapshot::build(&planned.merged, &ClientCache::default())
            .map_err(|e| anyhow::anyhow!("the gateway could not use this change: {e}"))?;
        fastgate_live::store_change(&self.store, Some(&self.master), &planned).await?;
        let mut event = AdminEvent::now(CLI_ACTOR, planned.action, planned.kind, &planned.name);
        event.before = planned.before.clone().map(|v| redacted(planned.kind, v));
        event.after = planned.after.clone().map(|v| redacted(planned.kind, v));
        if let Err(e) = self.store.insert_admin_event(&event).await {
            // The change is stored; only its record is missing.
            eprintln!("warning: the change was stored but its admin event was not: {e}");
        }
        Ok(planned)
    }

    /// Every upstream (the file's, then the API's) as the admin API shows it.
    pub fn upstreams(&self) -> Vec<Value> {
        let file = self.cfg.upstreams.iter().map(|u| (u, Source::Config));
        let api = self.live.upstreams.iter().map(|u| (u, Source::Api));
        file.chain(api)
            .map(|(u, source)| {
                let creds = fastgate_live::credential_views(&self.cfg, &self.live, &u.name);
                redacted("upstream", fastgate_live::upstream_view(u, source, &creds))
            })
            .collect()
    }

    pub fn upstream(&self, name: &str) -> anyhow::Result<Value> {
        self.upstreams()
            .into_iter()
            .find(|u| u["name"] == name)
            .ok_or_else(|| anyhow::anyhow!("upstream '{name}' not found"))
    }

    /// The provider keys of one upstream (never the keys themselves).
    pub fn credentials(&self, upstream: &str) -> anyhow::Result<Vec<Value>> {
        let known = self
            .cfg
            .upstreams
            .iter()
            .chain(&self.live.upstreams)
            .any(|u| u.name == upstream);
        if !known {
            anyhow::bail!("upstream '{upstream}' not found");
        }
        fastgate_live::credential_views(&self.cfg, &self.live, upstream)
            .into_iter()
            .map(|c| serde_json::to_value(c).map_err(anyhow::Error::from))
            .collect()
    }

    /// Every route (the file's, then the API's) as the admin API shows it.
    pub fn routes(&self) -> Vec<Value> {
        let file = self.cfg.routes.iter().map(|r| (r, Source::Config));
        let api = self.live.routes.iter().map(|r| (r, Source::Api));
        file.chain(api)
            .map(|(r, source)| redacted("route", fastgate_live::route_view(r, source)))
            .collect()
    }
}

/// An upstream or route view with the values of added headers and body fields
/// redacted, as the admin API shows it (other kinds hold no secrets).
pub fn redacted(kind: &str, mut v: Value) -> Value {
    match kind {
        "upstream" => fastgate_admin::redact::upstream(&mut v),
        "route" => fastgate_admin::redact::route(&mut v),
        _ => {}
    }
    v
}

/// Read an object in the config file's shape (YAML or JSON) from `path`, or
/// from stdin when `path` is `-`.
pub fn read_object(path: &Path) -> anyhow::Result<Value> {
    let text = if path == Path::new("-") {
        std::io::read_to_string(std::io::stdin()).context("cannot read stdin")?
    } else {
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?
    };
    let v: Value = yaml_serde::from_str(&text)
        .with_context(|| format!("{} is neither YAML nor JSON", path.display()))?;
    if !v.is_object() {
        anyhow::bail!("{}: expected one object (a mapping)", path.display());
    }
    Ok(v)
}

/// Deserialize `v`; the error names the field (`match.path: …`).
pub fn typed<T: DeserializeOwned>(v: Value) -> anyhow::Result<T> {
    serde_path_to_error::deserialize(v).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path == "." {
            anyhow::anyhow!("{inner}")
        } else {
            anyhow::anyhow!("{path}: {inner}")
        }
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn added_header_values_are_redacted() {
        let v = serde_json::json!({ "name": "u", "headers": { "x-tenant": "t1" },
            "add_headers": { "x-k": "secret" } });
        let r = redacted("upstream", v);
        assert_eq!(r["headers"]["x-tenant"], fastgate_admin::redact::REDACTED);
        assert_eq!(r["add_headers"]["x-k"], fastgate_admin::redact::REDACTED);
        assert_eq!(r["name"], "u");
        let c = redacted("credential", serde_json::json!({ "name": "k" }));
        assert_eq!(c["name"], "k");
    }

    #[test]
    fn typed_errors_name_the_field() {
        let v = serde_json::json!({ "name": "r", "match": { "path": 5 }, "upstream": "u" });
        let e = typed::<fastgate_config::RouteConfig>(v)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("match.path"), "{e}");
    }
}
