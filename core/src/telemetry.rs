//! Structured logging with `tracing`: human-readable text or one JSON object per line.

use tracing_subscriber::{fmt, EnvFilter};

use crate::config::{LogArgs, LogFormat};

/// Installs the global subscriber. Safe to call more than once (later calls do nothing), so
/// tests that start several services in one process can call it freely.
pub fn init(args: &LogArgs) {
    let filter = EnvFilter::try_new(&args.log_level).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = fmt().with_env_filter(filter).with_target(true);
    let _ = match args.log_format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

/// A progress bar on stderr for the operator commands (drawn only on a terminal), or a hidden
/// one when `quiet`.
pub fn progress_bar(len: u64, quiet: bool) -> indicatif::ProgressBar {
    if quiet {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(len);
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} ({per_sec}, eta {eta}) {msg}",
    ) {
        bar.set_style(style);
    }
    bar
}

/// The exit of a binary's `main`: success, or the error and its causes on one line of stderr
/// (`error: ...: ...`) and exit code 1. Operator commands fail for ordinary reasons (an unknown
/// tenant, a missing `--yes`), so no backtrace is printed even when `RUST_BACKTRACE` is set.
pub fn exit_code(result: anyhow::Result<()>) -> std::process::ExitCode {
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
