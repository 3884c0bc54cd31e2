//! `bff serve`: parse the configuration, start logging, run until SIGTERM/Ctrl-C.

use chat3_bff::{Cli, Command};
use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    chat3_core::telemetry::exit_code(run(Cli::parse()).await)
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(config) => {
            chat3_core::telemetry::init(&config.log);
            tracing::info!(config = ?config, "starting bff");
            let shutdown = chat3_core::shutdown::on_signal();
            let running = chat3_bff::start(*config, shutdown).await?;
            running.task.await?
        }
    }
}
