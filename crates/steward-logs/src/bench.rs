//! The accuracy benchmark on labelled Loghub-style data.
//!
//! A data directory holds one folder per dataset, `X/X_2k.log` and
//! `X/X_2k.log_structured_corrected.csv` (the truth in its `EventId` and `EventTemplate`
//! columns), and `formats.json` mapping each dataset to its header format, the only
//! per-dataset input. Each dataset is mined with a fresh [`TemplateMiner`] in the
//! default configuration and scored with [`crate::score`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::format::{FormatError, HeaderFormat};
use crate::miner::{MinerConfig, TemplateMiner};
use crate::score::{self, Labelled};

/// Why the benchmark could not run.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// `formats.json` is not a map of names to formats.
    #[error("{path} is not a JSON object of dataset name to header format: {source}")]
    Formats {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: serde_json::Error,
    },
    /// A header format does not compile.
    #[error("dataset {dataset}: {source}")]
    Format {
        /// The dataset.
        dataset: String,
        /// The cause.
        source: FormatError,
    },
    /// The truth CSV is malformed.
    #[error("{path}: {reason}")]
    Truth {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// No dataset folder was found.
    #[error(
        "no dataset in {0} (expected folders X with X/X_2k.log and X/X_2k.log_structured_corrected.csv)"
    )]
    Empty(PathBuf),
}

/// One dataset's figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatasetResult {
    /// The dataset's name.
    pub name: String,
    /// Grouping accuracy.
    pub ga: f64,
    /// Parsing accuracy.
    pub pa: f64,
    /// F1 of grouping accuracy.
    pub fga: f64,
    /// F1 of template accuracy.
    pub fta: f64,
    /// Templates found.
    pub templates: usize,
    /// Templates in the truth.
    pub true_templates: usize,
    /// Lines parsed and mined per second (header parsing included).
    pub lines_per_sec: f64,
}

/// Averages over the datasets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Average {
    /// Mean GA.
    pub ga: f64,
    /// Mean PA.
    pub pa: f64,
    /// Mean FGA.
    pub fga: f64,
    /// Mean FTA.
    pub fta: f64,
    /// Mean templates found.
    pub templates: f64,
    /// Mean true templates.
    pub true_templates: f64,
    /// Mean lines per second.
    pub lines_per_sec: f64,
}

/// The whole report, as `steward logs bench --json` prints it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BenchReport {
    /// Per dataset, by name.
    pub datasets: Vec<DatasetResult>,
    /// The means.
    pub average: Average,
}

/// One line of truth.
#[derive(Debug, Clone)]
struct TruthRow {
    content: String,
    event_id: String,
    template: String,
}

#[derive(Debug, Deserialize)]
struct CsvRow {
    #[serde(rename = "Content")]
    content: String,
    #[serde(rename = "EventId")]
    event_id: String,
    #[serde(rename = "EventTemplate")]
    template: String,
}

fn read(path: &Path) -> Result<String, BenchError> {
    std::fs::read_to_string(path).map_err(|source| BenchError::Io {
        path: path.to_path_buf(),
        source,
    })
}

fn read_truth(path: &Path) -> Result<Vec<TruthRow>, BenchError> {
    let mut reader = csv::Reader::from_path(path).map_err(|e| BenchError::Truth {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    let mut rows = Vec::new();
    for row in reader.deserialize::<CsvRow>() {
        let row = row.map_err(|e| BenchError::Truth {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        rows.push(TruthRow {
            content: row.content,
            event_id: row.event_id,
            template: row.template,
        });
    }
    Ok(rows)
}

/// Runs every dataset of `dir` with the default miner configuration.
pub fn run_loghub(dir: &Path) -> Result<BenchReport, BenchError> {
    run_loghub_with(dir, &MinerConfig::default())
}

/// Runs every dataset of `dir` with `config`.
pub fn run_loghub_with(dir: &Path, config: &MinerConfig) -> Result<BenchReport, BenchError> {
    let formats_path = dir.join("formats.json");
    let formats: BTreeMap<String, String> =
        serde_json::from_str(&read(&formats_path)?).map_err(|source| BenchError::Formats {
            path: formats_path.clone(),
            source,
        })?;
    let mut datasets = Vec::new();
    for (name, spec) in &formats {
        let folder = dir.join(name);
        let log = folder.join(format!("{name}_2k.log"));
        let truth = folder.join(format!("{name}_2k.log_structured_corrected.csv"));
        if !log.is_file() || !truth.is_file() {
            continue;
        }
        let header = HeaderFormat::new(spec).map_err(|source| BenchError::Format {
            dataset: name.clone(),
            source,
        })?;
        datasets.push(run_dataset(
            name,
            &read(&log)?,
            &read_truth(&truth)?,
            &header,
            config,
        ));
    }
    if datasets.is_empty() {
        return Err(BenchError::Empty(dir.to_path_buf()));
    }
    let n = datasets.len() as f64;
    let mean = |f: &dyn Fn(&DatasetResult) -> f64| datasets.iter().map(f).sum::<f64>() / n;
    let average = Average {
        ga: mean(&|d| d.ga),
        pa: mean(&|d| d.pa),
        fga: mean(&|d| d.fga),
        fta: mean(&|d| d.fta),
        templates: mean(&|d| d.templates as f64),
        true_templates: mean(&|d| d.true_templates as f64),
        lines_per_sec: mean(&|d| d.lines_per_sec),
    };
    Ok(BenchReport { datasets, average })
}

/// Mines one dataset's log with its header format and scores it against the truth.
/// Raw lines and truth rows are paired in order; a line the header does not match is
/// mined whole, as `steward logs parse` would.
fn run_dataset(
    name: &str,
    log: &str,
    truth: &[TruthRow],
    header: &HeaderFormat,
    config: &MinerConfig,
) -> DatasetResult {
    let lines: Vec<&str> = log.lines().filter(|l| !l.trim().is_empty()).collect();
    let mut miner = TemplateMiner::new(config.clone());
    let start = Instant::now();
    let mut ids = Vec::with_capacity(lines.len());
    for line in &lines {
        let content = header.content(line).unwrap_or(line);
        ids.push(miner.add(content).template_id);
    }
    let elapsed = start.elapsed().as_secs_f64().max(1e-9);
    let resolved: Vec<(u64, String)> = ids
        .iter()
        .map(|id| {
            let id = miner.resolve_id(*id);
            let text = miner
                .template(id)
                .map(|t| t.text.clone())
                .unwrap_or_default();
            (id.0, text)
        })
        .collect();
    let paired = resolved.len().min(truth.len());
    let labelled: Vec<Labelled<'_, u64, &str>> = (0..paired)
        .map(|i| Labelled {
            group: resolved[i].0,
            template: &resolved[i].1,
            true_group: truth[i].event_id.as_str(),
            true_template: &truth[i].template,
        })
        .collect();
    let _ = truth.first().map(|t| &t.content);
    let s = score::score(&labelled);
    DatasetResult {
        name: name.to_string(),
        ga: s.ga,
        pa: s.pa,
        fga: s.fga,
        fta: s.fta,
        templates: s.predicted_groups,
        true_templates: s.true_groups,
        lines_per_sec: lines.len() as f64 / elapsed,
    }
}
