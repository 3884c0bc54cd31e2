//! `chat3-api`: parse the command line, start logging, hand over to the library.

use chat3_api::config::{Cli, Command};
use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    chat3_core::telemetry::init(&cli.log);
    match cli.command {
        Command::Serve(config) => {
            let shutdown = chat3_core::shutdown::on_signal();
            let running = chat3_api::start(*config, shutdown).await?;
            running.task.await?
        }
        Command::Tenant(cmd) => chat3_api::cli::tenant(cmd).await,
        Command::Key(cmd) => chat3_api::cli::key(cmd).await,
    }
}
