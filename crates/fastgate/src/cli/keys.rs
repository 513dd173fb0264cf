//! `fastgate keys create|list|show|update|revoke|rotate`: key management
//! straight against the database. A running server picks changes up within a
//! second (it polls the key version).

use std::path::Path;

use chrono::Utc;
use clap::{Args, Subcommand};
use fastgate_admin::KeyInput;
use fastgate_auth::{ApiKeyRecord, QuotaPeriod, generate_key, new_key_record};
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
    /// A key's usage in its quota period and earlier ones. With `--admin-url`
    /// it asks the running gateway (live windows and reservations included);
    /// without, it reads what the database holds (written every
    /// `limits.flush_interval`).
    Usage(UsageArgs),
}

#[derive(Debug, Args)]
pub struct UsageArgs {
    pub id: String,
    #[command(flatten)]
    pub admin: super::admin_client::AdminArgs,
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
    /// Tokens per minute (prompt estimate plus output cap reserved at admission).
    #[arg(long)]
    pub tpm: Option<u64>,
    /// Quota: requests per period.
    #[arg(long)]
    pub quota_requests: Option<u64>,
    /// Quota: tokens per period.
    #[arg(long)]
    pub quota_tokens: Option<u64>,
    /// Budget: USD per period.
    #[arg(long)]
    pub budget: Option<f64>,
    /// Quota period: never, daily or monthly (in the config's `timezone`).
    #[arg(long, value_parser = parse_period)]
    pub quota_period: Option<QuotaPeriod>,
}

fn parse_period(s: &str) -> Result<QuotaPeriod, String> {
    QuotaPeriod::parse(s).ok_or_else(|| format!("'{s}' is not never, daily or monthly"))
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
        let limits_changed = self.rpm.is_some()
            || self.rpd.is_some()
            || self.max_concurrent.is_some()
            || self.tpm.is_some();
        limits.requests_per_minute = self.rpm.or(limits.requests_per_minute);
        limits.requests_per_day = self.rpd.or(limits.requests_per_day);
        limits.max_concurrent = self.max_concurrent.or(limits.max_concurrent);
        limits.tokens_per_minute = self.tpm.or(limits.tokens_per_minute);
        let mut quota = rec.quota.clone();
        let quota_changed = self.quota_requests.is_some()
            || self.quota_tokens.is_some()
            || self.budget.is_some()
            || self.quota_period.is_some();
        quota.requests = self.quota_requests.or(quota.requests);
        quota.tokens = self.quota_tokens.or(quota.tokens);
        quota.cost = self.budget.or(quota.cost);
        quota.period = self.quota_period.unwrap_or(quota.period);
        KeyInput {
            name,
            source: self.source,
            expires_in: self.expires_in,
            allowed_routes: self.routes,
            allowed_models: self.models,
            limits: limits_changed.then_some(limits),
            quota: quota_changed.then_some(quota),
            is_active: active,
            ..KeyInput::default()
        }
    }
}

pub async fn run(path: Option<&Path>, json: bool, cmd: KeysCommand) -> anyhow::Result<()> {
    if let KeysCommand::Usage(args) = &cmd
        && let Some(client) = super::admin_client::AdminClient::from_args(&args.admin)?
    {
        let usage = client.get(&["keys", &args.id, "usage"]).await?;
        return print_usage(&usage, json);
    }
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
        KeysCommand::Usage(a) => {
            let rec = find(store, &a.id).await?;
            let history = store.key_usage_history(&rec.id, 24).await?;
            let rows: Vec<serde_json::Value> = history
                .iter()
                .map(|r| {
                    serde_json::json!({
                        "period": r.period, "requests": r.requests, "tokens": r.tokens,
                        "cost": fastgate_limits::nanos_to_usd(r.cost_nanos),
                    })
                })
                .collect();
            let usage = serde_json::json!({
                "key_id": rec.id, "name": rec.name, "backend": "database",
                "limits": rec.limits, "quota": rec.quota, "history": rows,
            });
            print_usage(&usage, json)?;
        }
    }
    Ok(())
}

/// A key's usage as the API (or the database) gives it: JSON, or a summary.
fn print_usage(u: &serde_json::Value, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string(u)?);
        return Ok(());
    }
    let s = |v: &serde_json::Value| match v {
        serde_json::Value::Null => "-".to_string(),
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    println!("key:      {} ({})", s(&u["key_id"]), s(&u["name"]));
    println!("backend:  {}", s(&u["backend"]));
    let q = &u["quota"];
    println!(
        "quota:    requests {}  tokens {}  cost {}  period {}",
        s(&q["requests"]),
        s(&q["tokens"]),
        s(&q["cost"]),
        s(&q["period"])
    );
    if !u["period"].is_null() {
        let (used, held) = (&u["used"], &u["reserved"]);
        println!(
            "period:   {} (ends {})",
            s(&u["period"]["id"]),
            s(&u["period"]["ends_at"])
        );
        println!(
            "used:     requests {}  tokens {}  cost {}",
            s(&used["requests"]),
            s(&used["tokens"]),
            s(&used["cost"])
        );
        println!(
            "in flight: {} requests holding {} tokens, cost {}",
            s(&held["in_flight"]),
            s(&held["tokens"]),
            s(&held["cost"])
        );
    }
    for w in u["windows"].as_array().into_iter().flatten() {
        println!(
            "window:   {} {}/{} (resets in {}s)",
            s(&w["limit_kind"]),
            s(&w["used"]),
            s(&w["limit"]),
            s(&w["resets_in_secs"])
        );
    }
    println!(
        "{:<14} {:>10} {:>12} {:>12}",
        "period", "requests", "tokens", "cost"
    );
    for r in u["history"].as_array().into_iter().flatten() {
        println!(
            "{:<14} {:>10} {:>12} {:>12}",
            s(&r["period"]),
            s(&r["requests"]),
            s(&r["tokens"]),
            s(&r["cost"])
        );
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
