//! `steward forecast`: when a series will cross a threshold.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use serde_json::json;
use steward_core::config::Override;
use steward_detect::forecast::{crossing_of, forecast};
use steward_detect::plot::{PlotLayers, plot_svg};
use steward_detect::series::read_csv;
use steward_detect::time::{format_timestamp, parse_duration};

use super::Invocation;
use crate::Outcome;

const EXAMPLES: &str = "\
Examples:
  steward forecast disk_used_pct.csv --threshold 90
  steward forecast pool.csv --column in_use --threshold 200 --horizon 2d --plot pool.svg
  steward --json forecast mem.csv --threshold 0.95
";

/// `steward forecast FILE.csv --threshold X`.
///
/// --json prints {"file", "threshold", "horizon_ms", "last": {"timestamp", "value"},
/// "crossing": null | {"at", "earliest", "latest", "at_ms", "earliest_ms", "latest_ms",
/// "latest_beyond_horizon", "already_crossed", "rising", "slope_per_hour", "period_ms"}}.
#[derive(Debug, Args)]
#[command(after_help = EXAMPLES)]
pub struct ForecastArgs {
    /// A CSV file: a `timestamp` column and a value column.
    #[arg(value_name = "FILE.csv")]
    pub file: PathBuf,
    /// The value whose crossing is forecast (a disk's 90%, a pool's size).
    #[arg(long, value_name = "X", allow_negative_numbers = true)]
    pub threshold: f64,
    /// How far past the last point to look, e.g. 7d, 12h (sets detect.horizon).
    #[arg(long, value_name = "DURATION")]
    pub horizon: Option<String>,
    /// The value column (default: `value`, else the first after the timestamp).
    #[arg(long, value_name = "NAME")]
    pub column: Option<String>,
    /// Draw the series, the forecast and its interval to this SVG file.
    #[arg(long, value_name = "OUT.svg")]
    pub plot: Option<PathBuf>,
}

/// Configuration keys set by flags of `forecast`.
pub fn flags(args: &ForecastArgs) -> Vec<Override> {
    args.horizon
        .as_ref()
        .map(|h| Override::flag("--horizon", "detect.horizon", h.clone()))
        .into_iter()
        .collect()
}

pub fn run(args: ForecastArgs, inv: &Invocation) -> anyhow::Result<Outcome> {
    let horizon_text = &inv.config.config.detect.horizon;
    let horizon_ms = parse_duration(horizon_text).with_context(|| {
        format!(
            "cannot read the horizon {horizon_text:?}: expected a duration such as 7d, 12h, 30m"
        )
    })?;
    anyhow::ensure!(
        args.threshold.is_finite(),
        "--threshold must be a finite number"
    );
    let samples = read_csv(&args.file, args.column.as_deref())?;
    let path = forecast(&samples, horizon_ms)
        .with_context(|| format!("cannot forecast {}", args.file.display()))?;
    let crossing = crossing_of(&samples, &path, args.threshold, horizon_ms)?;
    if let Some(out) = &args.plot {
        let svg = plot_svg(
            &format!(
                "{}: forecast against {}",
                args.file.display(),
                args.threshold
            ),
            &samples,
            &PlotLayers {
                points: None,
                threshold: 1.1,
                forecast: Some(&path),
                hline: Some(args.threshold),
            },
            1200,
            500,
        )?;
        std::fs::write(out, svg).with_context(|| format!("cannot write {}", out.display()))?;
    }
    let last = samples[samples.len() - 1];
    if inv.out.json() {
        let crossing_json = crossing.as_ref().map(|c| {
            let mut v = serde_json::to_value(c).unwrap_or_default();
            v["at"] = json!(format_timestamp(c.at_ms));
            v["earliest"] = json!(format_timestamp(c.earliest_ms));
            v["latest"] = json!(format_timestamp(c.latest_ms));
            v
        });
        inv.out.json_document(&json!({
            "file": args.file.display().to_string(),
            "threshold": args.threshold,
            "horizon_ms": horizon_ms,
            "last": {"timestamp": format_timestamp(last.timestamp_ms), "value": last.value},
            "crossing": crossing_json,
        }))?;
        return Ok(Outcome::Success);
    }
    let season = match path.period_ms {
        Some(86_400_000) => "daily seasonality",
        Some(_) => "weekly seasonality",
        None => "no seasonality",
    };
    let model = format!("trend {:+.4}/h, {season}", path.slope_per_hour);
    let text = match &crossing {
        Some(c) if c.already_crossed => format!(
            "{} is already past {} (last value {} at {}); {model}",
            args.file.display(),
            args.threshold,
            last.value,
            format_timestamp(last.timestamp_ms)
        ),
        Some(c) => {
            let hours = (c.at_ms - last.timestamp_ms) as f64 / 3_600_000.0;
            let latest = if c.latest_beyond_horizon {
                format!("after {}", format_timestamp(c.latest_ms))
            } else {
                format_timestamp(c.latest_ms)
            };
            format!(
                "{} will {} {} at {} (in {hours:.1} h), 95% interval {} .. {latest}; {model}",
                args.file.display(),
                if c.rising { "rise above" } else { "fall below" },
                args.threshold,
                format_timestamp(c.at_ms),
                format_timestamp(c.earliest_ms),
            )
        }
        None => format!(
            "{} is not expected to cross {} within {horizon_text} (last value {} at {}); {model}",
            args.file.display(),
            args.threshold,
            last.value,
            format_timestamp(last.timestamp_ms)
        ),
    };
    inv.out.line(&text)?;
    Ok(Outcome::Success)
}
