//! The fuzz targets' seed corpora (`fuzz/corpus/<target>/`) replayed as ordinary tests,
//! with the same invariants the fuzz targets check (`fuzz/checks.rs`). A crash found by
//! fuzzing is fixed and its input added to the corpus, so it stays fixed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../fuzz/checks.rs"]
mod checks;

use std::path::PathBuf;

fn replay(target: &str, min: usize, check: fn(&[u8])) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .collect();
    files.sort();
    assert!(
        files.len() >= min,
        "{}: only {} files",
        dir.display(),
        files.len()
    );
    for path in files {
        let data = std::fs::read(&path).unwrap();
        let result = std::panic::catch_unwind(|| check(&data));
        assert!(result.is_ok(), "{target}: {} fails", path.display());
    }
}

#[test]
fn sse_decode_corpus() {
    replay("sse_decode", 10, checks::sse_decode);
}

#[test]
fn stream_translate_corpus() {
    replay("stream_translate", 10, checks::stream_translate);
}
