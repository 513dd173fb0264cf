//! The admin token: from the config, else generated once and kept in
//! `<data_dir>/admin_token`, readable by the owner only.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use fastgate_config::Config;
use rand::Rng;
use rand::distr::Alphanumeric;

pub struct AdminToken {
    pub value: String,
    /// Set when the token came from (or was just written to) the data directory.
    pub file: Option<PathBuf>,
    pub generated_now: bool,
}

pub fn resolve_admin_token(config: &Config) -> anyhow::Result<AdminToken> {
    if let Some(token) = &config.admin.token {
        return Ok(AdminToken {
            value: token.expose().clone(),
            file: None,
            generated_now: false,
        });
    }
    let path = config.data_dir.join("admin_token");
    if let Ok(existing) = std::fs::read_to_string(&path) {
        let value = existing.trim().to_string();
        if value.len() >= 16 {
            return Ok(AdminToken {
                value,
                file: Some(path),
                generated_now: false,
            });
        }
    }
    let random: String = rand::rng()
        .sample_iter(&Alphanumeric)
        .take(40)
        .map(char::from)
        .collect();
    let value = format!("fga_{random}");
    write_private(&path, &value).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(AdminToken {
        value,
        file: Some(path),
        generated_now: true,
    })
}

fn write_private(path: &std::path::Path, value: &str) -> std::io::Result<()> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    f.write_all(value.as_bytes())?;
    f.write_all(b"\n")?;
    f.sync_all()
}
