//! Local state on disk, private to the gateway's user: the data directory is
//! created 0700; the SQLite database is created 0600 before SQLite opens it, so
//! its `-wal` and `-shm` files (which SQLite creates with the database file's
//! mode) are 0600 too. Existing files that others can read are tightened.

use std::path::{Path, PathBuf};

use anyhow::Context;
use fastgate_config::Config;

/// Create the data directory (and, for SQLite, the database file) with owner-only
/// permissions. Called before anything is written there.
pub fn prepare(config: &Config) -> anyhow::Result<()> {
    create_private_dir(&config.data_dir)
        .with_context(|| format!("cannot create data_dir {}", config.data_dir.display()))?;
    if let Some(db) = sqlite_file(&config.database_url()) {
        prepare_sqlite(&db).with_context(|| format!("cannot prepare {}", db.display()))?;
    }
    Ok(())
}

/// `mkdir -p` with mode 0700 for every directory created; an existing directory
/// that others can enter is left alone (it may be shared on purpose) but logged.
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    if dir.as_os_str().is_empty() {
        return Ok(());
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        let existed = dir.is_dir();
        builder.mode(0o700);
        builder.create(dir)?;
        let mode = std::fs::metadata(dir)?.permissions().mode();
        if existed && mode & 0o077 != 0 {
            tracing::warn!(
                dir = %dir.display(),
                mode = format_args!("{:03o}", mode & 0o777),
                "the data directory is accessible to other users; consider chmod 700"
            );
        }
        Ok(())
    }
    #[cfg(not(unix))]
    builder.create(dir)
}

/// The database file of a `sqlite:` URL, or `None` (PostgreSQL, in-memory).
pub fn sqlite_file(url: &str) -> Option<PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    if path.is_empty() || path.contains(":memory:") || query.contains("mode=memory") {
        return None;
    }
    Some(PathBuf::from(path))
}

/// Create the database file 0600 if it is missing; tighten it and an existing
/// `-wal`/`-shm` to 0600 otherwise.
fn prepare_sqlite(db: &Path) -> std::io::Result<()> {
    if let Some(parent) = db.parent() {
        create_private_dir(parent)?;
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(db)
        {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
        let name = db.as_os_str().to_os_string();
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let mut file = name.clone();
            file.push(suffix);
            tighten(Path::new(&file))?;
        }
    }
    Ok(())
}

#[cfg(unix)]
fn tighten(file: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let meta = match std::fs::metadata(file) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    let mode = meta.permissions().mode();
    if mode & 0o077 != 0 {
        tracing::warn!(
            file = %file.display(),
            mode = format_args!("{:03o}", mode & 0o777),
            "database file was readable by other users; setting mode 600"
        );
        std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_paths() {
        assert_eq!(
            sqlite_file("sqlite:///tmp/x/fastgate.db?mode=rwc"),
            Some(PathBuf::from("/tmp/x/fastgate.db"))
        );
        assert_eq!(
            sqlite_file("sqlite://data/fastgate.db"),
            Some(PathBuf::from("data/fastgate.db"))
        );
        assert_eq!(sqlite_file("sqlite::memory:"), None);
        assert_eq!(sqlite_file("sqlite://x.db?mode=memory"), None);
        assert_eq!(sqlite_file("postgres://u@h/db"), None);
    }

    #[cfg(unix)]
    #[test]
    fn creates_private_dir_and_db_and_tightens_existing() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("a/b");
        create_private_dir(&dir).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&tmp.path().join("a")), 0o700);
        let db = dir.join("fastgate.db");
        prepare_sqlite(&db).unwrap();
        assert_eq!(mode(&db), 0o600);
        let wal = dir.join("fastgate.db-wal");
        std::fs::write(&wal, b"").unwrap();
        std::fs::set_permissions(&wal, std::fs::Permissions::from_mode(0o644)).unwrap();
        std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
        prepare_sqlite(&db).unwrap();
        assert_eq!(mode(&db), 0o600);
        assert_eq!(mode(&wal), 0o600);
    }
}
