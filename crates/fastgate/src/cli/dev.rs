//! `fastgate dev ...`: developer tools. `seed-logs N` writes N synthetic audit rows
//! (and the keys they belong to) into the configured database through the same batch
//! insert the audit writer uses, so the statistics rollups are maintained as in
//! production. It exists to measure the admin API and the UI at scale (docs/ui.md,
//! `bench/admin_scale.sh`); the rows are marked (`user_agent: fastgate-seed`,
//! keys named `seed-key-NN` with source `seed`) and never mixed with real traffic's
//! keys.

use std::time::Instant;

use chrono::{DateTime, Duration, Utc};
use clap::{Args, Subcommand};
use fastgate_audit::AuditRecord;
use fastgate_auth::new_key_record;
use fastgate_store::Store;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::load_config_or_exit;

#[derive(Debug, Subcommand)]
pub enum DevCommand {
    /// Write N synthetic audit rows (spread over the last --days, in time order) and
    /// the --keys keys they use into the configured database.
    SeedLogs(SeedArgs),
}

#[derive(Debug, Args)]
pub struct SeedArgs {
    /// How many audit rows to write.
    pub rows: u64,
    /// The rows' time span, ending now.
    #[arg(long, default_value_t = 7)]
    pub days: u32,
    /// How many keys the rows are spread over (created as `seed-key-NN`, reused if present).
    #[arg(long, default_value_t = 20)]
    pub keys: u32,
    /// Rows per insert batch (the audit writer's batches are up to this size too).
    #[arg(long, default_value_t = 2000)]
    pub batch: usize,
    /// Seed of the generator: the same seed gives the same rows (ids and times aside).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Size in bytes of each captured request/response body (0: none captured).
    #[arg(long, default_value_t = 256)]
    pub body_bytes: usize,
}

pub async fn run(
    path: Option<&std::path::Path>,
    json: bool,
    cmd: DevCommand,
) -> anyhow::Result<()> {
    let DevCommand::SeedLogs(args) = cmd;
    anyhow::ensure!(args.batch > 0, "--batch must be at least 1");
    anyhow::ensure!(args.days > 0, "--days must be at least 1");
    anyhow::ensure!(args.keys > 0, "--keys must be at least 1");
    let cfg = load_config_or_exit(path, json);
    crate::data_dir::prepare(&cfg)?;
    let store = Store::connect(&cfg.database_url(), 2).await?;
    let result = seed(&store, &args, json).await;
    store.close().await;
    result
}

async fn seed(store: &Store, args: &SeedArgs, json: bool) -> anyhow::Result<()> {
    let keys = seed_keys(store, args.keys).await?;
    let mut generator = RowGenerator::new(args, keys);
    let started = Instant::now();
    let mut written = 0u64;
    let mut batch = Vec::with_capacity(args.batch);
    let mut next_report = 100_000u64;
    for i in 0..args.rows {
        batch.push(generator.row(i));
        if batch.len() == args.batch || i + 1 == args.rows {
            written += store.insert_audit_batch(&batch).await?;
            batch.clear();
            if !json && i + 1 >= next_report {
                eprintln!("seed-logs: {} rows written", i + 1);
                next_report += 100_000;
            }
        }
    }
    let secs = started.elapsed().as_secs_f64();
    let rate = if secs > 0.0 {
        written as f64 / secs
    } else {
        0.0
    };
    if json {
        println!(
            "{}",
            serde_json::json!({ "ok": true, "rows": written, "keys": generator.keys.len(), "seconds": secs, "rows_per_second": rate.round() })
        );
    } else {
        println!(
            "seed-logs: {written} audit rows for {} keys written in {secs:.1} s ({rate:.0} rows/s) to {}",
            generator.keys.len(),
            store.backend()
        );
    }
    Ok(())
}

/// (id, name) of `seed-key-00` .. : existing ones are reused, missing ones created.
async fn seed_keys(store: &Store, n: u32) -> anyhow::Result<Vec<(String, String)>> {
    let existing = store.list_keys().await?;
    let now = Utc::now();
    let mut keys = Vec::with_capacity(n as usize);
    for i in 0..n {
        let name = format!("seed-key-{i:02}");
        if let Some(k) = existing.iter().find(|k| k.name == name) {
            keys.push((k.id.clone(), name));
            continue;
        }
        let (_secret, mut rec) = new_key_record(&name, now);
        rec.source = Some("seed".into());
        store.insert_key(&rec).await?;
        keys.push((rec.id, name));
    }
    Ok(keys)
}

/// (model, route, upstream, path, price per token in USD).
const TRAFFIC: &[(&str, &str, &str, &str, f64)] = &[
    (
        "gpt-4o-mini",
        "openai",
        "openai",
        "/v1/chat/completions",
        0.000_000_6,
    ),
    (
        "gpt-4o",
        "openai",
        "openai",
        "/v1/chat/completions",
        0.000_01,
    ),
    (
        "claude-sonnet-4",
        "anthropic",
        "anthropic",
        "/v1/messages",
        0.000_015,
    ),
    (
        "gemini-2.5-flash",
        "gemini",
        "gemini",
        "/v1/chat/completions",
        0.000_002_5,
    ),
    (
        "deepseek-chat",
        "deepseek",
        "deepseek",
        "/v1/chat/completions",
        0.000_001_1,
    ),
    (
        "text-embedding-3-small",
        "openai",
        "openai",
        "/v1/embeddings",
        0.000_000_02,
    ),
];

/// Status codes with their weights out of 1000.
const STATUSES: &[(u16, u32)] = &[
    (200, 940),
    (429, 20),
    (400, 10),
    (401, 10),
    (502, 15),
    (504, 5),
];

struct RowGenerator {
    rng: StdRng,
    keys: Vec<(String, String)>,
    start: DateTime<Utc>,
    step_ms: f64,
    body: String,
}

impl RowGenerator {
    fn new(args: &SeedArgs, keys: Vec<(String, String)>) -> Self {
        let span = Duration::days(i64::from(args.days));
        let step_ms = span.num_milliseconds() as f64 / args.rows.max(1) as f64;
        Self {
            rng: StdRng::seed_from_u64(args.seed),
            keys,
            start: Utc::now() - span,
            step_ms,
            body: "x".repeat(args.body_bytes),
        }
    }

    fn status(&mut self) -> u16 {
        let mut pick = self.rng.random_range(0..1000u32);
        for (code, weight) in STATUSES {
            if pick < *weight {
                return *code;
            }
            pick -= weight;
        }
        200
    }

    fn row(&mut self, i: u64) -> AuditRecord {
        let jitter = self.rng.random_range(0.0..self.step_ms.max(1.0));
        let at = self.start + Duration::milliseconds((i as f64 * self.step_ms + jitter) as i64);
        // Skewed towards the first keys and models, as real traffic is.
        let key_ix = (self.rng.random_range(0.0f64..1.0).powi(2) * self.keys.len() as f64) as usize;
        let (key_id, key_name) = self.keys[key_ix.min(self.keys.len() - 1)].clone();
        let t_ix = (self.rng.random_range(0.0f64..1.0).powi(2) * TRAFFIC.len() as f64) as usize;
        let (model, route, upstream, path, price) = TRAFFIC[t_ix.min(TRAFFIC.len() - 1)];
        let status = self.status();
        let unauthenticated = status == 401;
        let ok = status < 400;
        let is_stream = ok && path != "/v1/embeddings" && self.rng.random_bool(0.4);
        let duration_ms = self.rng.random_range(80.0..4000.0f64);
        let tokens_in = ok.then(|| self.rng.random_range(10..4000u64));
        let tokens_out = ok.then(|| self.rng.random_range(1..1200u64));
        let cost = ok.then(|| (tokens_in.unwrap_or(0) + tokens_out.unwrap_or(0)) as f64 * price);
        let body = (!self.body.is_empty()).then(|| self.body.clone());
        AuditRecord {
            request_id: uuid::Uuid::now_v7().to_string(),
            client_request_id: None,
            key_id: (!unauthenticated).then_some(key_id),
            key_name: (!unauthenticated).then_some(key_name),
            source: (!unauthenticated).then(|| "seed".to_owned()),
            method: "POST".into(),
            path: path.into(),
            query: None,
            route: (!unauthenticated).then(|| route.to_owned()),
            upstream: (!unauthenticated && status != 429).then(|| upstream.to_owned()),
            credential: (!unauthenticated && status != 429).then(|| format!("{upstream}-1")),
            target_url: None,
            status_code: status,
            request_time: at,
            ttfb_ms: ok.then(|| duration_ms * self.rng.random_range(0.05..0.6)),
            duration_ms,
            request_bytes: self.rng.random_range(200..20_000),
            response_bytes: if ok {
                self.rng.random_range(200..40_000)
            } else {
                120
            },
            user_agent: Some("fastgate-seed".into()),
            client_ip: Some("127.0.0.1".into()),
            is_stream,
            stream_chunks: if is_stream {
                self.rng.random_range(5..400)
            } else {
                0
            },
            model: Some(model.into()),
            tokens_in,
            tokens_out,
            tokens_estimated: false,
            cost,
            error_message: (!ok).then(|| format!("seeded error {status}")),
            request_headers: None,
            response_headers: None,
            request_body: body.clone(),
            response_body: body,
        }
    }
}
