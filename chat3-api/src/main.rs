//! `chat3-api`: parse the command line, start logging, hand over to the library.

use chat3_api::config::{Cli, Command};
use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    chat3_core::telemetry::init(&cli.log);
    chat3_core::telemetry::exit_code(run(cli.command).await)
}

async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Serve(config) => {
            let shutdown = chat3_core::shutdown::on_signal();
            let running = chat3_api::start(*config, shutdown).await?;
            running.task.await?
        }
        Command::Tenant(cmd) => chat3_api::cli::tenant(cmd).await,
        Command::Key(cmd) => chat3_api::cli::key(cmd).await,
    }
}
