use clap::Parser;

/// mimalloc instead of the system allocator: the request path allocates many
/// small objects (headers, audit records) and glibc's malloc/free were 15-19% of
/// CPU under load (docs/performance.md). The `system-allocator` feature keeps
/// the system allocator instead, so heap profilers that hook malloc (valgrind's
/// massif and dhat) can see every allocation (docs/performance-profile.md).
#[cfg(not(feature = "system-allocator"))]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use fastgate::cli::{Cli, Command, run};

fn main() -> std::process::ExitCode {
    fastgate::install_crypto_provider();
    let cli = Cli::parse();
    // `serve` sizes the runtime from the config; every other command is small.
    let workers = match &cli.command {
        Command::Serve(_) => {
            fastgate::cli::load_config_or_exit(cli.config.as_deref(), false)
                .server
                .worker_threads
        }
        _ => 2,
    };
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if workers > 0 {
        builder.worker_threads(workers);
    }
    let runtime = match builder.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
