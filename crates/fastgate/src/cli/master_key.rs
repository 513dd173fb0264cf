//! `fastgate credentials rotate-master-key`: re-encrypt every stored provider key
//! under a new master key.
//!
//! The order never leaves the database sealed under a key that is not on disk:
//! the new key is written to `<key file>.new` first, then the database is
//! resealed in one transaction, then the old key is kept as `<key file>.old` and
//! `.new` is renamed into place. If the command dies after the transaction, the
//! new key is in `.new`; running it again with `--new-key-file <key file>.new`
//! finishes the job (keys already sealed under the new key are left as they are).

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::Args;
use fastgate_store::{AdminEvent, Store};
use fastgate_upstream::{MasterKey, MasterKeySource, sealed_key_id, write_key_file};

use super::live::{CLI_ACTOR, master_key_env};
use super::load_config_or_exit;

#[derive(Debug, Args)]
pub struct RotateArgs {
    /// Take the new master key from this file instead of generating one.
    #[arg(long)]
    pub new_key_file: Option<PathBuf>,
    /// Leave provider keys that the current master key cannot open as they are
    /// (they stay unusable) instead of refusing to rotate.
    #[arg(long)]
    pub skip_unreadable: bool,
}

/// The outcome, for the output.
struct Rotation {
    old_id: String,
    new_id: String,
    resealed: usize,
    already_new: usize,
    skipped: Vec<String>,
}

/// `(upstream, name, sealed under the new key)` for every key, plus counts.
async fn resealed(
    store: &Store,
    old: &MasterKey,
    new: &MasterKey,
    skip_unreadable: bool,
) -> anyhow::Result<(Vec<(String, String, String)>, usize, Vec<String>)> {
    let mut out = Vec::new();
    let mut already_new = 0;
    let mut unreadable = Vec::new();
    for c in store.list_credentials().await? {
        if sealed_key_id(&c.sealed_key) == Some(new.id()) {
            already_new += 1;
            continue;
        }
        let context = format!("{}/{}", c.upstream, c.name);
        match old.open(&c.sealed_key, &context) {
            Ok(key) => {
                let sealed = new.seal(key.expose(), &context)?;
                out.push((c.upstream, c.name, sealed));
            }
            Err(e) => unreadable.push(format!("{context}: {e}")),
        }
    }
    if !unreadable.is_empty() && !skip_unreadable {
        anyhow::bail!(
            "{} provider key(s) cannot be opened with the current master key {}; nothing was changed \
             (pass --skip-unreadable to rotate the others and leave these unusable):\n  {}",
            unreadable.len(),
            old.id(),
            unreadable.join("\n  ")
        );
    }
    Ok((out, already_new, unreadable))
}

/// The new key and its text form (from `--new-key-file`, or generated).
fn new_key(args: &RotateArgs) -> anyhow::Result<(MasterKey, String, bool)> {
    match &args.new_key_file {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            let key = MasterKey::from_text(&text)
                .with_context(|| format!("new master key in {}", path.display()))?;
            Ok((key, text.trim().to_owned(), false))
        }
        None => {
            let (key, text) = MasterKey::generate()?;
            Ok((key, text, true))
        }
    }
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

pub async fn rotate(path: Option<&Path>, json: bool, args: RotateArgs) -> anyhow::Result<()> {
    let cfg = load_config_or_exit(path, json);
    crate::data_dir::prepare(&cfg)?;
    let key_path = cfg.master_key_path();
    let env = master_key_env();
    let (old, source) = MasterKey::load(env.as_deref(), &key_path)?.ok_or_else(|| {
        anyhow::anyhow!(
            "no master key: neither {} nor {} is set; nothing was ever sealed, so there is nothing to rotate",
            fastgate_upstream::MASTER_KEY_ENV,
            key_path.display()
        )
    })?;
    let (new, new_text, generated) = new_key(&args)?;
    if new.id() == old.id() {
        anyhow::bail!("the new master key is the current one ({})", old.id());
    }
    let store = Store::connect(&cfg.database_url(), 1)
        .await
        .context("cannot open the database")?;
    let result = rotate_in(&store, &args, &old, &new, &new_text, &source).await;
    store.close().await;
    let rotation = result?;
    report(
        &rotation,
        &source,
        &key_path,
        generated.then_some(&new_text),
        json,
    );
    Ok(())
}

async fn rotate_in(
    store: &Store,
    args: &RotateArgs,
    old: &MasterKey,
    new: &MasterKey,
    new_text: &str,
    source: &MasterKeySource,
) -> anyhow::Result<Rotation> {
    let (batch, already_new, skipped) = resealed(store, old, new, args.skip_unreadable).await?;
    match source {
        MasterKeySource::Env => store.reseal_credentials(&batch).await?,
        MasterKeySource::File(file) | MasterKeySource::Generated(file) => {
            let pending = with_suffix(file, ".new");
            write_key_file(&pending, new_text)?;
            if let Err(e) = store.reseal_credentials(&batch).await {
                // Nothing was resealed: the pending key is not needed.
                let _ = std::fs::remove_file(&pending);
                return Err(e.into());
            }
            install(file, &pending)?;
        }
    }
    let mut event = AdminEvent::now(CLI_ACTOR, "rotate-master-key", "master_key", "master_key");
    event.before = Some(serde_json::json!({ "key_id": old.id() }));
    event.after = Some(serde_json::json!({ "key_id": new.id() }));
    if let Err(e) = store.insert_admin_event(&event).await {
        eprintln!("warning: the rotation is done but its admin event was not stored: {e}");
    }
    Ok(Rotation {
        old_id: old.id().to_owned(),
        new_id: new.id().to_owned(),
        resealed: batch.len(),
        already_new,
        skipped,
    })
}

/// Keep the current key as `.old` and move `.new` into place (a rename, so the
/// key file always holds a whole key).
fn install(file: &Path, pending: &Path) -> anyhow::Result<()> {
    let old_text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let old_copy = with_suffix(file, ".old");
    write_key_file(&old_copy, old_text.trim()).with_context(|| {
        format!(
            "the database is sealed under the key in {}: move it to {} by hand",
            pending.display(),
            file.display()
        )
    })?;
    std::fs::rename(pending, file).with_context(|| {
        format!(
            "the database is sealed under the key in {}: move it to {} by hand",
            pending.display(),
            file.display()
        )
    })
}

fn report(
    r: &Rotation,
    source: &MasterKeySource,
    key_path: &Path,
    generated: Option<&String>,
    json: bool,
) {
    let from_env = *source == MasterKeySource::Env;
    if json {
        let mut v = serde_json::json!({
            "resealed": r.resealed, "already_new": r.already_new, "skipped": r.skipped,
            "old_key_id": r.old_id, "new_key_id": r.new_id,
        });
        if from_env {
            if let Some(text) = generated {
                v["new_master_key"] = text.as_str().into();
            }
        } else {
            v["key_file"] = key_path.display().to_string().into();
        }
        println!("{v}");
        return;
    }
    println!(
        "resealed {} provider key(s); master key {} -> {}",
        r.resealed, r.old_id, r.new_id
    );
    for s in &r.skipped {
        println!("left unusable: {s}");
    }
    if from_env {
        match generated {
            Some(text) => println!(
                "\nnew master key (shown once):\n{text}\n\nSet {} to it on every instance now.",
                fastgate_upstream::MASTER_KEY_ENV
            ),
            None => println!(
                "\nSet {} to the new key on every instance and restart them: until then they leave the resealed keys out of rotation.",
                fastgate_upstream::MASTER_KEY_ENV
            ),
        }
    } else {
        println!(
            "the new key is in {}, the old one in {}.old; running gateways that read this file switch to the new key within a second",
            key_path.display(),
            key_path.display()
        );
    }
}
