//! `chat3-bench`: parse the command line, build a runtime with enough threads that the client
//! side is not what limits, run the benchmark.

use clap::Parser;

fn main() -> anyhow::Result<()> {
    let cli = chat3_bench::cli::Cli::parse();
    let threads = std::thread::available_parallelism()
        .map_or(4, usize::from)
        .max(4);
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()?
        .block_on(chat3_bench::run(cli))
}
