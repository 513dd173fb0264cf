//! `fastgate keys create|list|show|update|revoke|rotate`: key management
//! straight against the database. A running server picks changes up within a
//! second (it polls the key version).

use std::path::Path;

use chrono::Utc;
use clap::{Args, Subcommand};
use fastgate_admin::KeyInput;
use fastgate_auth::{ApiKeyRecord, generate_key, new_key_record};
use fastgate_store::Store;

use super::load_config_or_exit;

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create a key; the secret is printed once.
    Create(CreateArgs),
    /// List keys.
    List,
    /// Show one key by id or name.
    Show { id: String },
    /// Change a key's name, permissions or expiry.
    Update(UpdateArgs),
    /// Revoke a key (it is rejected within a second).
    Revoke { id: String },
    /// Give a key a new secret; the old one stops working.
    Rotate { id: String },
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    #[arg(long)]
    pub name: String,
    #[command(flatten)]
    pub fields: KeyFields,
}

#[derive(Debug, Args)]
pub struct UpdateArgs {
    pub id: String,
    #[arg(long)]
    pub name: Option<String>,
    #[command(flatten)]
    pub fields: KeyFields,
    /// Re-activate (true) or deactivate (false).
    #[arg(long)]
    pub active: Option<bool>,
}

/// Key settings shared by `create` and `update`; absent flags leave a field as it is.
#[derive(Debug, Args)]
pub struct KeyFields {
    /// Owner / source label.
    #[arg(long)]
    pub source: Option<String>,
    /// Lifetime such as `30d`, `12h`.
    #[arg(long)]
    pub expires_in: Option<String>,
    /// Allowed route names, comma separated (default: all).
    #[arg(long, value_delimiter = ',')]
    pub routes: Option<Vec<String>>,
    /// Allowed model patterns, comma separated (default: all).
    #[arg(long, value_delimiter = ',')]
    pub models: Option<Vec<String>>,
    /// Requests per minute (rate limit).
    #[arg(long)]
    pub rpm: Option<u32>,
    /// Requests per day (rate limit).
    #[arg(long)]
    pub rpd: Option<u32>,
    /// Maximum concurrent requests.
    #[arg(long)]
    pub max_concurrent: Option<u32>,
}

impl KeyFields {
    /// The same change expressed as the admin API's input, so both apply it alike.
    fn into_input(
        self,
        rec: &ApiKeyRecord,
        name: Option<String>,
        active: Option<bool>,
    ) -> KeyInput {
        let mut limits = rec.limits.clone();
        let limits_changed =
            self.rpm.is_some() || self.rpd.is_some() || self.max_concurrent.is_some();
        limits.requests_per_minute = self.rpm.or(limits.requests_per_minute);
        limits.requests_per_day = self.rpd.or(limits.requests_per_day);
        limits.max_concurrent = self.max_concurrent.or(limits.max_concurrent);
        KeyInput {
            name,
            source: self.source,
            expires_in: self.expires_in,
            allowed_routes: self.routes,
            allowed_models: self.models,
            limits: limits_changed.then_some(limits),
            is_active: active,
            ..KeyInput::default()
        }
    }
}

pub async fn run(path: Option<&Path>, json: bool, cmd: KeysCommand) -> anyhow::Result<()> {
    let cfg = load_config_or_exit(path, json);
    crate::data_dir::prepare(&cfg)?;
    let store = Store::connect(&cfg.database_url(), 2).await?;
    let result = dispatch(&store, json, cmd).await;
    store.close().await;
    result
}

async fn find(store: &Store, id: &str) -> anyhow::Result<ApiKeyRecord> {
    store
        .get_key(id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no key with id or name '{id}'"))
}

async fn dispatch(store: &Store, json: bool, cmd: KeysCommand) -> anyhow::Result<()> {
    let now = Utc::now();
    match cmd {
        KeysCommand::Create(a) => {
            let (generated, mut rec) = new_key_record(&a.name, now);
            let input = a.fields.into_input(&rec, None, None);
            input
                .apply_to(&mut rec, now)
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            store.insert_key(&rec).await?;
            print_secret(&rec, &generated.secret, json);
        }
        KeysCommand::List => {
            let keys = store.list_keys().await?;
            if json {
                println!("{}", serde_json::to_string(&keys)?);
            } else {
                println!(
                    "{:<38} {:<20} {:<12} {:<8} {:>8}  expires",
                    "id", "name", "prefix", "state", "uses"
                );
                for k in keys {
                    println!(
                        "{:<38} {:<20} {:<12} {:<8} {:>8}  {}",
                        k.id,
                        k.name,
                        k.prefix,
                        state_of(&k),
                        k.usage_count,
                        k.expires_at
                            .map(|t| t.to_rfc3339())
                            .unwrap_or_else(|| "never".into())
                    );
                }
            }
        }
        KeysCommand::Show { id } => print_key(&find(store, &id).await?, json)?,
        KeysCommand::Update(a) => {
            let mut rec = find(store, &a.id).await?;
            let input = a.fields.into_input(&rec, a.name, a.active);
            input
                .apply_to(&mut rec, now)
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            store.update_key(&rec).await?;
            print_key(&rec, json)?;
        }
        KeysCommand::Revoke { id } => {
            let rec = store
                .revoke_key(&id)
                .await?
                .ok_or_else(|| anyhow::anyhow!("no key with id or name '{id}'"))?;
            if json {
                println!("{}", serde_json::to_string(&rec)?);
            } else {
                println!("revoked key {} ({})", rec.id, rec.name);
            }
        }
        KeysCommand::Rotate { id } => {
            let mut rec = find(store, &id).await?;
            let generated = generate_key();
            rec.key_hash = generated.hash.clone();
            rec.prefix = generated.prefix.clone();
            store.update_key(&rec).await?;
            print_secret(&rec, &generated.secret, json);
        }
    }
    Ok(())
}

fn state_of(k: &ApiKeyRecord) -> &'static str {
    if !k.is_active || k.revoked_at.is_some() {
        "revoked"
    } else if k.expires_at.is_some_and(|t| t <= Utc::now()) {
        "expired"
    } else {
        "active"
    }
}

fn print_secret(rec: &ApiKeyRecord, secret: &str, json: bool) {
    if json {
        println!(
            "{}",
            serde_json::json!({ "id": rec.id, "key": secret, "name": rec.name, "prefix": rec.prefix })
        );
    } else {
        println!(
            "key id:   {}\nname:     {}\nkey:      {secret}\n\nStore the key now: it is not shown again.",
            rec.id, rec.name
        );
    }
}

fn print_key(k: &ApiKeyRecord, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string(k)?);
    } else {
        println!("{}", serde_json::to_string_pretty(k)?);
    }
    Ok(())
}
