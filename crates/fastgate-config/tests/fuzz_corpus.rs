//! The `config_load` fuzz target's seed corpus (`fuzz/corpus/config_load/`) replayed
//! as an ordinary test, with the invariants the fuzz target checks (`fuzz/checks.rs`).
//! A crash found by fuzzing is fixed and its input added to the corpus.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../fuzz/checks.rs"]
mod checks;

use std::path::PathBuf;

/// Every corpus file passes the fuzz target's checks, and at least 3 of them load
/// (so the accepted-path invariants run too).
#[test]
fn config_load_corpus() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/config_load");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .collect();
    files.sort();
    assert!(
        files.len() >= 10,
        "{}: only {} files",
        dir.display(),
        files.len()
    );
    let mut accepted = 0;
    for path in files {
        let data = std::fs::read(&path).unwrap();
        let result = std::panic::catch_unwind(|| checks::config_load(&data));
        match result {
            Ok(ok) => accepted += usize::from(ok),
            Err(_) => panic!("config_load: {} fails", path.display()),
        }
    }
    assert!(accepted >= 3, "only {accepted} corpus documents load");
}
