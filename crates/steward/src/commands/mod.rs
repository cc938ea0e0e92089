//! One module per subcommand: its arguments and the glue that calls a job crate.
//! Dispatch lives in `main.rs`, so these modules never import the command-line root.

pub mod config;
pub mod detect;
pub mod forecast;
pub mod logs;
pub mod up;

use steward_core::config::LoadedConfig;

use crate::output::Output;

/// What every command gets: the effective configuration and where to print.
#[derive(Debug)]
pub struct Invocation {
    pub config: LoadedConfig,
    pub out: Output,
}
