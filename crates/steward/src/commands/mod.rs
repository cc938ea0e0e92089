//! One module per subcommand: its arguments and the glue that calls a job crate.

pub mod config;
pub mod detect;
pub mod forecast;
pub mod logs;
pub mod up;

use anyhow::Context;
use steward_core::config::{ConfigInputs, LoadedConfig, Override};

use crate::Outcome;
use crate::cli::{Cli, Command, GlobalArgs};
use crate::output::Output;

/// What every command gets: the effective configuration and where to print.
#[derive(Debug)]
pub struct Invocation {
    pub config: LoadedConfig,
    pub out: Output,
}

pub fn run(cli: Cli) -> anyhow::Result<Outcome> {
    let ctx = Invocation {
        config: load_config(&cli.global, command_flags(&cli.command))?,
        out: Output::new(cli.global.json),
    };
    match cli.command {
        Command::Config(cmd) => config::run(cmd, &ctx),
        Command::Detect(args) => detect::run(args, &ctx),
        Command::Forecast(args) => forecast::run(args, &ctx),
        Command::Up(args) => up::run(args, &ctx),
        Command::Logs(cmd) => logs::run(cmd, &ctx),
    }
}

/// Flags of a subcommand that set configuration keys, so they take part in the
/// file < env < flag precedence and show up in `config show`.
fn command_flags(command: &Command) -> Vec<Override> {
    match command {
        Command::Config(_) => Vec::new(),
        Command::Detect(args) => detect::flags(args),
        Command::Forecast(args) => forecast::flags(args),
        Command::Up(args) => up::flags(args),
        Command::Logs(cmd) => logs::flags(cmd),
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
