//! The fuzz targets' seed corpora (`fuzz/corpus/<target>/`) replayed as ordinary tests,
//! with the same invariants the fuzz targets check (`fuzz/checks.rs`). A crash found by
//! fuzzing is fixed and its input added to the corpus, so it stays fixed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../fuzz/checks.rs"]
mod checks;

use std::path::PathBuf;

/// Every file of `fuzz/corpus/<target>/`, sorted by name; at least `min` of them.
fn corpus(target: &str, min: usize) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut files: Vec<(PathBuf, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| {
            let path = entry.unwrap().path();
            let data = std::fs::read(&path).unwrap();
            (path, data)
        })
        .collect();
    files.sort();
    assert!(
        files.len() >= min,
        "{}: {} files, expected at least {min}",
        dir.display(),
        files.len()
    );
    files
}

fn replay(target: &str, min: usize, check: fn(&[u8])) {
    for (path, data) in corpus(target, min) {
        let result = std::panic::catch_unwind(|| check(&data));
        assert!(result.is_ok(), "{target}: {} fails", path.display());
    }
}

#[test]
fn normalize_path_corpus() {
    replay("normalize_path", 20, checks::normalize_path);
}

#[test]
fn route_match_corpus() {
    replay("route_match", 10, checks::route_match);
}
