//! `update-worker run|replay|reprocess`: parse the command line, start logging, hand over to the
//! library.

use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = chat3_update_worker::Cli::parse();
    chat3_core::telemetry::init(cli.command.log());
    let shutdown = chat3_core::shutdown::on_signal();
    chat3_core::telemetry::exit_code(chat3_update_worker::run(cli.command, shutdown).await)
}
