//! The command line, as clap's derive API declares it. Each subcommand's arguments live
//! beside the code that runs it, in `commands/`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::commands;

const EXAMPLES: &str = "\
Examples:
  steward up                              the service: dashboard + API on :8080, OTLP/HTTP on :4318
  steward up --demo                       the same, with a built-in incident playing
  steward logs parse app.log.gz           templates of a log file, by count
  steward logs bench --data loghub-2k     template accuracy on labelled Loghub data
  steward detect latency.csv --plot a.svg anomalies in a series, drawn
  steward detect nab --data nab           NAB scores of the detector
  steward forecast disk.csv --threshold 90
                                          when a series will cross 90
  steward --json config show              the effective configuration and each value's source
";

/// steward: an AI partner for backend teams.
///
/// It watches services (logs and metrics in; anomalies, incidents and early warnings
/// out), turns raw logs into templates, and finds anomalies in time series.
#[derive(Debug, Parser)]
#[command(name = "steward", version, about, long_about, after_help = EXAMPLES)]
#[command(
    propagate_version = true,
    subcommand_required = true,
    arg_required_else_help = true
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Flags every subcommand takes.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Print machine-readable JSON instead of tables (each command documents its shape).
    #[arg(long, global = true)]
    pub json: bool,
    /// Read configuration from this TOML file instead of ./steward.toml.
    #[arg(long, global = true, value_name = "PATH", env = "STEWARD_CONFIG")]
    pub config: Option<PathBuf>,
    /// Set one configuration key, overriding the file and the environment
    /// (repeatable): --set logs.max_templates=1000.
    #[arg(long = "set", global = true, value_name = "SECTION.KEY=VALUE")]
    pub set: Vec<String>,
    /// More diagnostics on stderr (-v info, -vv debug, -vvv trace).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Only errors on stderr.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show the effective configuration: `steward config show`.
    #[command(subcommand)]
    Config(commands::config::ConfigCommand),
    /// Anomalies in a series from a CSV file, or NAB scores: `steward detect FILE.csv`,
    /// `steward detect nab --data DIR`.
    Detect(commands::detect::DetectArgs),
    /// When a series will cross a threshold: `steward forecast FILE.csv --threshold X`.
    Forecast(commands::forecast::ForecastArgs),
    /// Run the watch service: dashboard and API on :8080, OTLP/HTTP on :4318.
    Up(commands::up::UpArgs),
    /// Log templates: `steward logs parse FILE`, `steward logs bench --data DIR`.
    #[command(subcommand)]
    Logs(commands::logs::LogsCommand),
}
