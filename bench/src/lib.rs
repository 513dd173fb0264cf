//! FastGate benchmark tools.
//!
//! * [`mock`]: a fast mock upstream speaking OpenAI JSON and SSE (`bench-mock`).
//! * [`stream`]: a streaming client measuring time to first byte, total time and
//!   the gaps between SSE events (`bench-stream`).
//! * [`cli`]: both command lines (clap).
//! * [`stats`], [`procfs`]: small helpers shared by both.
//!
//! The orchestration (`bench/run.sh` → `bench/harness.py`) starts these next to
//! nginx and FastGate and writes `docs/performance.md`.

pub mod cli;
pub mod mock;
pub mod procfs;
pub mod stats;
pub mod stream;

/// Builds a Tokio runtime: `threads <= 1` gives a current-thread runtime (the
/// cheapest for a process pinned to one core), more gives a multi-thread one.
pub fn runtime(threads: usize) -> anyhow::Result<tokio::runtime::Runtime> {
    let rt = if threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build()?
    };
    Ok(rt)
}
