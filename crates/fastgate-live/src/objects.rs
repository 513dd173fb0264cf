//! The API-managed objects as the gateway holds them (provider keys decrypted),
//! loading them from the store and writing a planned change back.

use fastgate_config::{ModelGroupConfig, RouteConfig, RuleConfig, Secret, UpstreamConfig};
use fastgate_store::{SpecTable, Store, StoredCredential};
use fastgate_upstream::MasterKey;

use crate::LiveError;
use crate::plan::{Planned, Write};

/// Everything stored through the admin API, ready to merge with the file.
#[derive(Debug, Clone, Default)]
pub struct LiveObjects {
    /// Upstreams; their `credentials` are always empty (see `credentials`).
    pub upstreams: Vec<UpstreamConfig>,
    /// Provider keys, for API upstreams and for upstreams of the file alike.
    pub credentials: Vec<LiveCredential>,
    pub routes: Vec<RouteConfig>,
    pub models: Vec<ModelGroupConfig>,
    /// Credential health rules, tried after the file's.
    pub rules: Vec<RuleConfig>,
    /// Stored objects that could not be used, one line each (e.g. a provider key
    /// sealed under another master key). They are left out and shown in listings.
    pub problems: Vec<String>,
    /// How many stored provider keys are sealed under another master key (after a
    /// rotation made elsewhere, the caller may re-read its key file and load again).
    pub other_master_key: usize,
}

/// A provider key stored through the API.
#[derive(Debug, Clone)]
pub struct LiveCredential {
    pub upstream: String,
    pub name: String,
    pub key: Secret<String>,
    pub key_hint: String,
    pub weight: u32,
    /// Daily limits (stored as JSON beside the sealed key).
    pub quota: fastgate_config::CredentialQuota,
}

impl LiveCredential {
    /// The AEAD context a key is sealed under: it binds the ciphertext to its row.
    pub fn context(&self) -> String {
        seal_context(&self.upstream, &self.name)
    }
}

pub(crate) fn seal_context(upstream: &str, name: &str) -> String {
    format!("{upstream}/{name}")
}

fn parse_spec<T: serde::de::DeserializeOwned>(
    kind: &'static str,
    name: &str,
    spec: &str,
    problems: &mut Vec<String>,
) -> Option<T> {
    match serde_json::from_str(spec) {
        Ok(v) => Some(v),
        Err(e) => {
            let err = LiveError::Unreadable {
                kind,
                name: name.to_owned(),
                message: e.to_string(),
            };
            tracing::warn!(error = %err, "stored object skipped");
            problems.push(err.to_string());
            None
        }
    }
}

/// Read every API-managed object from the store and decrypt the provider keys.
/// Objects that cannot be read are skipped and listed in `problems`; a storage
/// error fails the whole load (the caller keeps what it has).
pub async fn load(store: &Store, master: Option<&MasterKey>) -> Result<LiveObjects, LiveError> {
    let mut live = LiveObjects::default();
    for s in store.list_specs(SpecTable::Upstreams).await? {
        if let Some(mut u) =
            parse_spec::<UpstreamConfig>("upstream", &s.name, &s.spec, &mut live.problems)
        {
            u.credentials.clear();
            live.upstreams.push(u);
        }
    }
    for s in store.list_specs(SpecTable::Routes).await? {
        if let Some(r) = parse_spec("route", &s.name, &s.spec, &mut live.problems) {
            live.routes.push(r);
        }
    }
    for s in store.list_specs(SpecTable::Rules).await? {
        if let Some(r) = parse_spec("rule", &s.name, &s.spec, &mut live.problems) {
            live.rules.push(r);
        }
    }
    for s in store.list_model_groups().await? {
        if let Some(m) = parse_spec("model", &s.name, &s.spec, &mut live.problems) {
            live.models.push(m);
        }
    }
    for c in store.list_credentials().await? {
        let opened = match master {
            Some(master) => master
                .open(&c.sealed_key, &seal_context(&c.upstream, &c.name))
                .map_err(|e| {
                    if matches!(e, fastgate_upstream::VaultError::WrongKey { .. }) {
                        live.other_master_key += 1;
                    }
                    e.to_string()
                }),
            None => Err("no master key is configured".to_owned()),
        };
        match opened {
            Ok(key) => {
                let quota = match c.quota.as_deref().map(serde_json::from_str) {
                    None => Default::default(),
                    Some(Ok(q)) => q,
                    Some(Err(e)) => {
                        let line = format!(
                            "credential '{}/{}': stored quota unreadable ({e}); it has none",
                            c.upstream, c.name
                        );
                        tracing::warn!("{line}");
                        live.problems.push(line);
                        Default::default()
                    }
                };
                live.credentials.push(LiveCredential {
                    upstream: c.upstream,
                    name: c.name,
                    key,
                    key_hint: c.key_hint,
                    weight: c.weight,
                    quota,
                });
            }
            Err(reason) => {
                let line = format!(
                    "credential '{}/{}' cannot be decrypted: {reason}",
                    c.upstream, c.name
                );
                tracing::warn!("{line}; it is left out of rotation");
                live.problems.push(line);
            }
        }
    }
    Ok(live)
}

fn sealed(master: Option<&MasterKey>, c: &LiveCredential) -> Result<StoredCredential, LiveError> {
    let master = master.ok_or_else(|| {
        LiveError::Conflict("no master key is configured: provider keys cannot be stored".into())
    })?;
    Ok(StoredCredential {
        upstream: c.upstream.clone(),
        name: c.name.clone(),
        sealed_key: master.seal(c.key.expose(), &c.context())?,
        key_hint: c.key_hint.clone(),
        weight: c.weight,
        quota: if c.quota.is_set() {
            Some(spec_json(&c.quota)?)
        } else {
            None
        },
    })
}

fn spec_json<T: serde::Serialize>(v: &T) -> Result<String, LiveError> {
    serde_json::to_string(v).map_err(|e| LiveError::invalid("", e.to_string()))
}

/// Write a planned change to the store (provider keys sealed under `master`).
pub async fn store_change(
    store: &Store,
    master: Option<&MasterKey>,
    planned: &Planned,
) -> Result<(), LiveError> {
    match &planned.write {
        Write::Upstream { spec, credentials } => {
            // Seal first: nothing is written when a key cannot be stored.
            let sealed = credentials
                .iter()
                .map(|c| sealed(master, c))
                .collect::<Result<Vec<_>, _>>()?;
            store
                .upsert_spec(SpecTable::Upstreams, &spec.name, &spec_json(spec)?)
                .await?;
            for c in &sealed {
                store.upsert_credential(c).await?;
            }
        }
        Write::DeleteUpstream(name) => {
            store.delete_spec(SpecTable::Upstreams, name).await?;
        }
        Write::Credential(c) => {
            store.upsert_credential(&sealed(master, c)?).await?;
        }
        Write::DeleteCredential { upstream, name } => {
            store.delete_credential(upstream, name).await?;
        }
        Write::Route(r) => {
            store
                .upsert_spec(SpecTable::Routes, &r.name, &spec_json(r)?)
                .await?;
        }
        Write::DeleteRoute(name) => {
            store.delete_spec(SpecTable::Routes, name).await?;
        }
        Write::Rule(r) => {
            store
                .upsert_spec(SpecTable::Rules, &r.name, &spec_json(r)?)
                .await?;
        }
        Write::DeleteRule(name) => {
            store.delete_spec(SpecTable::Rules, name).await?;
        }
    }
    Ok(())
}
