//! `steward logs`: templates of a log file, and the accuracy benchmark on Loghub data.

use std::fs::File;
use std::io::{BufRead, BufReader, IsTerminal, Read};
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, Subcommand};
use serde_json::json;
use steward_core::config::Override;
use steward_logs::format::{self, Format, LineParser};
use steward_logs::{MinerConfig, Snapshot, TemplateMiner};

use super::Invocation;
use crate::Outcome;

const EXAMPLES: &str = "\
Examples:
  steward logs parse app.log                     templates by count, with a sample line each
  steward logs parse app.log.gz --csv > t.csv    gzip is read as it is
  tail -n 100000 app.log | steward logs parse -  from stdin
  steward --json logs parse app.log              one JSON object per template
  steward logs parse app.log --state tpl.json    start from and save a snapshot
  steward logs parse hdfs.log --format '<Date> <Time> <Pid> <Level> <Component>: <Content>'
  steward logs bench --data ../shared/data/loghub-2k
";

/// `steward logs parse` or `steward logs bench`.
#[derive(Debug, Subcommand)]
#[command(after_help = EXAMPLES)]
pub enum LogsCommand {
    /// Mine the templates of a log file (or `-` for stdin; gzip accepted) and print
    /// them by count: id, count, template (`<*>` marks a variable) and one sample line.
    ///
    /// --json prints one JSON object per template: {"id", "count", "template",
    /// "sample", "first_seen", "last_seen"}.
    #[command(after_help = EXAMPLES)]
    Parse(ParseArgs),
    /// Mine every dataset of a Loghub-style directory with the default configuration
    /// and score it against the labelled truth: GA, PA, FGA, FTA, templates found
    /// versus true, lines per second, then the averages.
    ///
    /// --json prints {"datasets": [{"name", "ga", "pa", "fga", "fta", "templates",
    /// "true_templates", "lines_per_sec"}], "average": {...}}.
    #[command(after_help = EXAMPLES)]
    Bench(BenchArgs),
}

/// Arguments of `steward logs parse`.
#[derive(Debug, Args)]
pub struct ParseArgs {
    /// The log file, or `-` for standard input. Gzip is detected by its magic bytes.
    #[arg(value_name = "FILE|-")]
    pub file: PathBuf,
    /// The line format: auto, json, logfmt, syslog, access, raw, or a Loghub header
    /// format such as '<Date> <Time> <Level> <Component>: <Content>' (sets logs.format).
    #[arg(long, value_name = "FORMAT")]
    pub format: Option<String>,
    /// Print CSV (id,count,template,sample) instead of a table.
    #[arg(long)]
    pub csv: bool,
    /// Load the miner's state from this file if it exists, and save it there after.
    #[arg(long, value_name = "FILE")]
    pub state: Option<PathBuf>,
    /// Keep at most this many templates, evicting the least recently seen (sets
    /// logs.max_templates).
    #[arg(long, value_name = "N")]
    pub max_templates: Option<usize>,
    /// Show only the N most frequent templates in the table.
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,
}

/// Arguments of `steward logs bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// The data directory: formats.json and one folder per dataset holding X_2k.log and
    /// X_2k.log_structured_corrected.csv.
    #[arg(long, value_name = "DIR")]
    pub data: PathBuf,
}

/// Flags that set configuration keys.
pub fn flags(cmd: &LogsCommand) -> Vec<Override> {
    match cmd {
        LogsCommand::Parse(args) => {
            let mut out = Vec::new();
            if let Some(f) = &args.format {
                out.push(Override::flag("--format", "logs.format", f.clone()));
            }
            if let Some(n) = args.max_templates {
                out.push(Override::flag(
                    "--max-templates",
                    "logs.max_templates",
                    n.to_string(),
                ));
            }
            out
        }
        LogsCommand::Bench(_) => Vec::new(),
    }
}

pub fn run(cmd: LogsCommand, inv: &Invocation) -> anyhow::Result<Outcome> {
    match cmd {
        LogsCommand::Parse(args) => parse(&args, inv),
        LogsCommand::Bench(args) => bench(&args, inv),
    }
}

/// Files at least this large get a progress bar (on a terminal only).
const PROGRESS_MIN_BYTES: u64 = 8 << 20;

/// How many first lines `auto` looks at.
const DETECT_LINES: usize = 50;

fn open_input(path: &Path) -> anyhow::Result<(Box<dyn BufRead>, Option<indicatif::ProgressBar>)> {
    let (raw, progress): (Box<dyn Read>, Option<indicatif::ProgressBar>) = if path == Path::new("-")
    {
        (Box::new(std::io::stdin().lock()), None)
    } else {
        let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
        let len = file.metadata().map(|m| m.len()).unwrap_or(0);
        if len >= PROGRESS_MIN_BYTES && std::io::stderr().is_terminal() {
            let bar = indicatif::ProgressBar::new(len);
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            (Box::new(bar.wrap_read(file)), Some(bar))
        } else {
            (Box::new(file), None)
        }
    };
    let mut reader = BufReader::with_capacity(1 << 16, raw);
    let is_gzip = reader
        .fill_buf()
        .map(|b| b.starts_with(&[0x1f, 0x8b]))
        .unwrap_or(false);
    let reader: Box<dyn BufRead> = if is_gzip {
        Box::new(BufReader::with_capacity(
            1 << 16,
            flate2::bufread::MultiGzDecoder::new(reader),
        ))
    } else {
        Box::new(reader)
    };
    Ok((reader, progress))
}

fn load_miner(state: Option<&Path>, config: MinerConfig) -> anyhow::Result<TemplateMiner> {
    let Some(path) = state.filter(|p| p.exists()) else {
        return Ok(TemplateMiner::new(config));
    };
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let snapshot = Snapshot::from_bytes(&bytes)
        .with_context(|| format!("{} is not a steward template snapshot", path.display()))?;
    let mut miner = TemplateMiner::restore(snapshot)
        .with_context(|| format!("cannot restore {}", path.display()))?;
    miner.set_max_templates(config.max_templates);
    Ok(miner)
}

fn save_miner(path: &Path, miner: &TemplateMiner) -> anyhow::Result<()> {
    let bytes = miner.snapshot().to_bytes()?;
    // Write beside the target and rename, so a crash never leaves half a snapshot.
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

fn parse(args: &ParseArgs, inv: &Invocation) -> anyhow::Result<Outcome> {
    let logs = &inv.config.config.logs;
    let format: Format = logs
        .format
        .parse()
        .with_context(|| format!("invalid logs.format {:?}", logs.format))?;
    let miner_config = MinerConfig {
        max_templates: logs.max_templates.max(1),
        ..MinerConfig::default()
    };
    let mut miner = load_miner(args.state.as_deref(), miner_config)?;
    let (mut reader, progress) = open_input(&args.file)?;

    let mut buf = Vec::with_capacity(4096);
    let mut pending: Vec<String> = Vec::new();
    let mut parser = None;
    let mut read_line = |buf: &mut Vec<u8>| -> anyhow::Result<Option<String>> {
        buf.clear();
        let n = reader
            .read_until(b'\n', buf)
            .with_context(|| format!("cannot read {}", args.file.display()))?;
        if n == 0 {
            return Ok(None);
        }
        while buf.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
            buf.pop();
        }
        // Invalid UTF-8 is replaced, not fatal: a log line is never dropped.
        Ok(Some(String::from_utf8_lossy(buf).into_owned()))
    };
    if matches!(format, Format::Auto) {
        while pending.len() < DETECT_LINES {
            match read_line(&mut buf)? {
                Some(line) => pending.push(line),
                None => break,
            }
        }
        let sample: Vec<&str> = pending.iter().map(String::as_str).collect();
        let detected = format::detect(&sample);
        tracing::info!(format = %detected, "detected the line format");
        parser = Some(LineParser::new(detected));
    }
    let mut parser = parser.unwrap_or_else(|| LineParser::new(format));
    for line in std::mem::take(&mut pending) {
        miner.add(&parser.parse(&line).body);
    }
    while let Some(line) = read_line(&mut buf)? {
        miner.add(&parser.parse(&line).body);
    }
    if let Some(bar) = progress {
        bar.finish_and_clear();
    }
    if let Some(path) = &args.state {
        save_miner(path, &miner)?;
    }

    let mut templates: Vec<&steward_logs::Template> = miner.templates().collect();
    templates.sort_by(|a, b| b.count.cmp(&a.count).then(a.id.cmp(&b.id)));
    let stats = parser.stats();
    if inv.out.json() {
        for t in &templates {
            inv.out.json_line(&json!({
                "id": t.id,
                "count": t.count,
                "template": t.text,
                "sample": t.sample,
                "first_seen": t.first_seen,
                "last_seen": t.last_seen,
            }))?;
        }
    } else if args.csv {
        let mut w = csv::Writer::from_writer(Vec::new());
        w.write_record(["id", "count", "template", "sample"])?;
        for t in &templates {
            w.write_record([
                t.id.to_string(),
                t.count.to_string(),
                t.text.clone(),
                t.sample.clone(),
            ])?;
        }
        let bytes = w.into_inner().context("cannot write CSV")?;
        inv.out.line(String::from_utf8_lossy(&bytes).trim_end())?;
    } else {
        let shown = args.limit.unwrap_or(usize::MAX);
        let rows = templates
            .iter()
            .take(shown)
            .map(|t| {
                vec![
                    t.id.to_string(),
                    t.count.to_string(),
                    t.text.clone(),
                    t.sample.clone(),
                ]
            })
            .collect();
        inv.out
            .table(&["id", "count", "template", "sample"], rows)?;
        inv.out.line(&format!(
            "{} lines, {} templates, {} lines did not match the format {} (kept whole), {} templates evicted",
            stats.lines,
            templates.len(),
            stats.unmatched,
            parser.format(),
            miner.evicted()
        ))?;
    }
    Ok(Outcome::Success)
}

fn bench(args: &BenchArgs, inv: &Invocation) -> anyhow::Result<Outcome> {
    let report = steward_logs::bench::run_loghub(&args.data)
        .with_context(|| format!("cannot run the benchmark on {}", args.data.display()))?;
    if inv.out.json() {
        inv.out.json_document(&report)?;
        return Ok(Outcome::Success);
    }
    let row = |name: &str,
               ga: f64,
               pa: f64,
               fga: f64,
               fta: f64,
               found: String,
               truth: String,
               lps: f64| {
        vec![
            name.to_string(),
            format!("{ga:.3}"),
            format!("{pa:.3}"),
            format!("{fga:.3}"),
            format!("{fta:.3}"),
            found,
            truth,
            format!("{lps:.0}"),
        ]
    };
    let mut rows: Vec<Vec<String>> = report
        .datasets
        .iter()
        .map(|d| {
            row(
                &d.name,
                d.ga,
                d.pa,
                d.fga,
                d.fta,
                d.templates.to_string(),
                d.true_templates.to_string(),
                d.lines_per_sec,
            )
        })
        .collect();
    let a = &report.average;
    rows.push(row(
        "average",
        a.ga,
        a.pa,
        a.fga,
        a.fta,
        format!("{:.1}", a.templates),
        format!("{:.1}", a.true_templates),
        a.lines_per_sec,
    ));
    inv.out.table(
        &[
            "dataset",
            "GA",
            "PA",
            "FGA",
            "FTA",
            "templates",
            "true",
            "lines/s",
        ],
        rows,
    )?;
    Ok(Outcome::Success)
}
