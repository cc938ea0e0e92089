//! The `steward` binary: parses the command line, loads the configuration, calls a job
//! crate and prints what it returns. Nothing here knows how a job is done.

mod cli;
mod commands;
mod output;

use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use steward_core::config::{ConfigInputs, LoadedConfig, Override};

use crate::cli::{Cli, Command, GlobalArgs};
use crate::output::Output;

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
    match run(cli) {
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

fn run(cli: Cli) -> anyhow::Result<Outcome> {
    let ctx = commands::Invocation {
        config: load_config(&cli.global, command_flags(&cli.command))?,
        out: Output::new(cli.global.json),
    };
    match cli.command {
        Command::Config(cmd) => commands::config::run(cmd, &ctx),
        Command::Detect(args) => commands::detect::run(args, &ctx),
        Command::Forecast(args) => commands::forecast::run(args, &ctx),
        Command::Up(args) => commands::up::run(args, &ctx),
        Command::Logs(cmd) => commands::logs::run(cmd, &ctx),
    }
}

/// Flags of a subcommand that set configuration keys, so they take part in the
/// file < env < flag precedence and show up in `config show`.
fn command_flags(command: &Command) -> Vec<Override> {
    match command {
        Command::Config(_) => Vec::new(),
        Command::Detect(args) => commands::detect::flags(args),
        Command::Forecast(args) => commands::forecast::flags(args),
        Command::Up(args) => commands::up::flags(args),
        Command::Logs(cmd) => commands::logs::flags(cmd),
    }
}

fn load_config(global: &GlobalArgs, mut flags: Vec<Override>) -> anyhow::Result<LoadedConfig> {
    let mut all = global
        .set
        .iter()
        .map(|a| Override::parse_assignment("--set", a))
        .collect::<Result<Vec<_>, _>>()?;
    all.append(&mut flags);
    let inputs = ConfigInputs {
        explicit_file: global.config.clone(),
        dir: std::env::current_dir().context("cannot read the working directory")?,
        env: std::env::vars().collect(),
        flags: all,
    };
    Ok(steward_core::config::load(&inputs)?)
}
