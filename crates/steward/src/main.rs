//! The `steward` binary: parses the command line, loads the configuration, calls a job
//! crate and prints what it returns. Nothing here knows how a job is done.

mod cli;
mod commands;
mod output;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::Cli;

/// What a command that ran to the end says about its results.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Done; nothing failed a gate.
    Success,
    /// Done, and findings failed a `--fail-on` gate.
    GateFailed,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(cli.global.verbose, cli.global.quiet);
    match commands::run(cli) {
        Ok(Outcome::Success) => ExitCode::SUCCESS,
        Ok(Outcome::GateFailed) => ExitCode::from(1),
        Err(err) => {
            output::error(&err);
            ExitCode::from(2)
        }
    }
}

/// Diagnostics go to stderr so that stdout holds only results. `STEWARD_LOG` takes a
/// full `tracing` filter and wins over `-v`/`-q`.
fn init_tracing(verbose: u8, quiet: bool) {
    let level = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info",
        (false, 2) => "debug",
        (false, _) => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("STEWARD_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(output::stderr_has_colour())
        .with_target(false)
        .init();
}
