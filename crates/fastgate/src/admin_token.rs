//! The admin token: from the config, else generated once and kept in
//! `<data_dir>/admin_token`, readable by the owner only. The token itself is
//! never printed: the startup banner names the file.

use std::io::Write;
use std::path::{Path, PathBuf};

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

impl std::fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminToken")
            .field("value", &"[redacted]")
            .field("file", &self.file)
            .field("generated_now", &self.generated_now)
            .finish()
    }
}

/// The admin-token file can be read by other users: refuse to start (the
/// operator fixes the mode or rotates the token; the gateway does not guess).
#[derive(Debug, thiserror::Error)]
#[error(
    "{path} is readable by other users (mode {mode:03o}); the admin token may have leaked. \
     Run `chmod 600 {path}` (and consider deleting the file to get a new token), then start again"
)]
pub struct InsecureTokenFile {
    pub path: String,
    pub mode: u32,
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
    check_private(&path)?;
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

/// Refuse an existing token file whose mode lets the group or others read it.
#[cfg(unix)]
fn check_private(path: &Path) -> Result<(), InsecureTokenFile> {
    use std::os::unix::fs::PermissionsExt;
    match std::fs::metadata(path) {
        Ok(meta) if meta.permissions().mode() & 0o077 != 0 => Err(InsecureTokenFile {
            path: path.display().to_string(),
            mode: meta.permissions().mode() & 0o777,
        }),
        _ => Ok(()),
    }
}

#[cfg(not(unix))]
fn check_private(_path: &Path) -> Result<(), InsecureTokenFile> {
    Ok(())
}

fn write_private(path: &Path, value: &str) -> std::io::Result<()> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    // `mode` applies only to a new file: tighten one that already existed.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    f.write_all(value.as_bytes())?;
    f.write_all(b"\n")?;
    f.sync_all()
}
