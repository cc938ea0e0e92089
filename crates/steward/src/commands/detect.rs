//! `steward detect`: anomalies in a series from a CSV file, and NAB scores.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};
use serde_json::json;
use steward_core::SeriesKey;
use steward_core::config::Override;
use steward_detect::nab::{Corpus, score_corpus, write_results};
use steward_detect::plot::{PlotLayers, plot_svg};
use steward_detect::report::detect_series;
use steward_detect::series::read_csv;
use steward_detect::time::format_timestamp;
use steward_detect::{DetectorConfig, score_nab};

use super::Invocation;
use crate::Outcome;

const EXAMPLES: &str = "\
Examples:
  steward detect cpu.csv                        anomalous points and windows, with reasons
  steward detect metrics.csv --column p99_ms --plot p99.svg
  steward --json detect cpu.csv                 the same as JSON
  steward detect nab --data ../shared/data/nab  NAB scores per profile
  steward detect nab --data nab --out results   also write NAB's results layout
";

/// `steward detect FILE.csv` or `steward detect nab --data DIR`.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
#[command(after_help = EXAMPLES)]
pub struct DetectArgs {
    #[command(subcommand)]
    pub command: Option<DetectCommand>,
    /// A CSV file with a header: a `timestamp` column (RFC 3339, `YYYY-MM-DD
    /// HH:MM:SS`, or Unix seconds or milliseconds) and a value column.
    ///
    /// --json prints {"file", "points", "threshold", "anomalies": [{"series", "kind",
    /// "start_ms", "end_ms", "score", "reason", "start", "end"}]}.
    #[arg(required = true, value_name = "FILE.csv")]
    pub file: Option<PathBuf>,
    /// The value column (default: `value`, else the first column after the timestamp).
    #[arg(long, value_name = "NAME")]
    pub column: Option<String>,
    /// Draw the series, its expected band and the anomalies to this SVG file.
    #[arg(long, value_name = "OUT.svg")]
    pub plot: Option<PathBuf>,
    /// Report points scoring at least this, in [0, 1] (sets detect.threshold).
    #[arg(long, value_name = "SCORE")]
    pub threshold: Option<f64>,
    /// Only rises are bad (latency, errors, disk used).
    #[arg(long, conflicts_with = "lower_is_worse")]
    pub higher_is_worse: bool,
    /// Only falls are bad (throughput, free memory).
    #[arg(long)]
    pub lower_is_worse: bool,
}

/// `steward detect nab`.
#[derive(Debug, Subcommand)]
pub enum DetectCommand {
    /// Run the default detector over every series of a Numenta Anomaly Benchmark layout
    /// (data/, labels/combined_windows.json, config/profiles.json) and score it with
    /// NAB's rules.
    ///
    /// --json prints {"standard", "reward_low_FP", "reward_low_FN", "files"}.
    Nab(NabArgs),
}

/// Arguments of `steward detect nab`.
#[derive(Debug, Args)]
pub struct NabArgs {
    /// The NAB root: holds data/ and labels/.
    #[arg(long, value_name = "DIR")]
    pub data: PathBuf,
    /// Also write NAB's results layout here: <DIR>/steward/<category>/steward_<file>.csv.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

/// Configuration keys set by flags of `detect`.
pub fn flags(args: &DetectArgs) -> Vec<Override> {
    args.threshold
        .map(|t| Override::flag("--threshold", "detect.threshold", t.to_string()))
        .into_iter()
        .collect()
}

pub fn run(args: DetectArgs, inv: &Invocation) -> anyhow::Result<Outcome> {
    match args.command {
        Some(DetectCommand::Nab(nab)) => run_nab(&nab, inv),
        None => run_file(&args, inv),
    }
}

fn run_file(args: &DetectArgs, inv: &Invocation) -> anyhow::Result<Outcome> {
    let Some(file) = &args.file else {
        anyhow::bail!("a FILE.csv is required");
    };
    let threshold = inv.config.config.detect.threshold;
    anyhow::ensure!(
        (0.0..=1.0).contains(&threshold),
        "detect.threshold must be in [0, 1], got {threshold}"
    );
    let samples = read_csv(file, args.column.as_deref())?;
    let name = args.column.clone().unwrap_or_else(|| {
        file.file_stem()
            .map_or_else(|| "series".into(), |s| s.to_string_lossy().into_owned())
    });
    let config = DetectorConfig {
        higher_is_worse: match (args.higher_is_worse, args.lower_is_worse) {
            (true, _) => Some(true),
            (_, true) => Some(false),
            _ => None,
        },
        unit: None,
    };
    let report = detect_series(&SeriesKey::new(name.clone()), &samples, &config, threshold);
    if let Some(path) = &args.plot {
        let svg = plot_svg(
            &format!("{} — {} anomalies", file.display(), report.anomalies.len()),
            &samples,
            &PlotLayers {
                points: Some(&report.points),
                threshold,
                forecast: None,
                hline: None,
            },
            1200,
            500,
        )?;
        std::fs::write(path, svg).with_context(|| format!("cannot write {}", path.display()))?;
    }
    if inv.out.json() {
        let anomalies: Vec<_> = report
            .anomalies
            .iter()
            .map(|a| {
                let mut v = serde_json::to_value(a).unwrap_or_default();
                v["start"] = json!(format_timestamp(a.start_ms));
                v["end"] = json!(format_timestamp(a.end_ms));
                v
            })
            .collect();
        inv.out.json_document(&json!({
            "file": file.display().to_string(),
            "points": samples.len(),
            "threshold": threshold,
            "anomalies": anomalies,
        }))?;
    } else {
        let rows = report
            .anomalies
            .iter()
            .map(|a| {
                vec![
                    format_timestamp(a.start_ms),
                    format_timestamp(a.end_ms),
                    a.kind.as_str().to_string(),
                    format!("{:.2}", a.score),
                    a.reason.clone(),
                ]
            })
            .collect();
        inv.out
            .table(&["start", "end", "kind", "score", "reason"], rows)?;
        inv.out.line(&format!(
            "{} anomalies in {} points of {} (threshold {threshold})",
            report.anomalies.len(),
            samples.len(),
            file.display()
        ))?;
    }
    Ok(Outcome::Success)
}

fn run_nab(args: &NabArgs, inv: &Invocation) -> anyhow::Result<Outcome> {
    let corpus = Corpus::load(&args.data)
        .with_context(|| format!("cannot read the NAB corpus at {}", args.data.display()))?;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let scores = score_nab(&corpus, &DetectorConfig::default(), threads);
    if let Some(out) = &args.out {
        write_results(out, "steward", &corpus, &scores)?;
    }
    let results = score_corpus(&corpus, &scores);
    let get = |name: &str| {
        results
            .iter()
            .find(|r| r.profile == name)
            .map_or(0.0, |r| (r.normalized * 100.0).round() / 100.0)
    };
    if inv.out.json() {
        inv.out.json_document(&json!({
            "standard": get("standard"),
            "reward_low_FP": get("reward_low_FP_rate"),
            "reward_low_FN": get("reward_low_FN_rate"),
            "files": corpus.series.len(),
        }))?;
    } else {
        let rows = results
            .iter()
            .map(|r| {
                vec![
                    r.profile.clone(),
                    format!("{:.2}", r.normalized),
                    format!("{:.4}", r.threshold),
                    format!("{:.2}", r.raw),
                    r.true_positives.to_string(),
                    r.false_negatives.to_string(),
                    r.false_positive_rows.to_string(),
                ]
            })
            .collect();
        inv.out.table(
            &[
                "profile",
                "score",
                "threshold",
                "raw",
                "windows caught",
                "missed",
                "false-alarm rows",
            ],
            rows,
        )?;
        inv.out.line(&format!(
            "{} files, {} windows, from {}",
            corpus.series.len(),
            corpus.window_count(),
            args.data.display()
        ))?;
    }
    Ok(Outcome::Success)
}
