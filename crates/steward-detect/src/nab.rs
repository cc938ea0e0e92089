//! The Numenta Anomaly Benchmark: its corpus layout, its scoring rules and its results
//! layout, written from the rules in NAB's documentation (anomaly windows, the scaled
//! sigmoid, the three application profiles, the probationary period, a threshold
//! optimised over the whole corpus per profile, and normalisation between the null and
//! the perfect detector).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::series::{CsvError, read_csv};
use crate::time::{format_timestamp, parse_timestamp};

/// What went wrong reading a NAB corpus.
#[derive(Debug, thiserror::Error)]
pub enum NabError {
    /// A file or folder could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A data file is not a valid series.
    #[error(transparent)]
    Csv(#[from] CsvError),
    /// A label or profile file is not the JSON NAB writes.
    #[error("{}: {message}", path.display())]
    Json {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The folder holds no series with labels.
    #[error("{}: no labelled series under data/", path.display())]
    NoSeries {
        /// The corpus root.
        path: PathBuf,
    },
}

/// The weights of one application profile.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Profile {
    /// NAB's name: `standard`, `reward_low_FP_rate`, `reward_low_FN_rate`.
    pub name: String,
    /// The reward for a caught window, at its first row.
    pub tp: f64,
    /// The cost of a missed window.
    pub fn_: f64,
    /// The cost of a false-alarm row far from any window.
    pub fp: f64,
}

impl Profile {
    /// NAB's three profiles, with the weights of its `config/profiles.json`.
    pub fn defaults() -> Vec<Profile> {
        let p = |name: &str, tp, fn_, fp| Profile {
            name: name.into(),
            tp,
            fn_,
            fp,
        };
        vec![
            p("standard", 1.0, 1.0, 0.11),
            p("reward_low_FP_rate", 1.0, 1.0, 0.22),
            p("reward_low_FN_rate", 1.0, 2.0, 0.11),
        ]
    }
}

/// One labelled series of the corpus.
#[derive(Debug, Clone)]
pub struct NabSeries {
    /// `category/file.csv`, as the label file names it.
    pub name: String,
    /// Row timestamps, in ms.
    pub timestamps: Vec<i64>,
    /// Row values.
    pub values: Vec<f64>,
    /// Anomaly windows as inclusive row ranges `(first, last)`.
    pub windows: Vec<(usize, usize)>,
}

impl NabSeries {
    /// The number of warm-up rows: `min(floor(0.15 n), 750)`.
    pub fn probation(&self) -> usize {
        probation(self.values.len())
    }
}

/// The number of warm-up rows of a file of `n` rows: `min(floor(0.15 n), 750)`.
pub fn probation(n: usize) -> usize {
    (n * 15 / 100).min(750)
}

/// A NAB corpus: series with their windows.
#[derive(Debug, Clone)]
pub struct Corpus {
    /// The series, in name order.
    pub series: Vec<NabSeries>,
    /// The profiles to score with.
    pub profiles: Vec<Profile>,
}

fn json_err(path: &Path, message: impl Into<String>) -> NabError {
    NabError::Json {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

fn read_text(path: &Path) -> Result<String, NabError> {
    std::fs::read_to_string(path).map_err(|source| NabError::Io {
        path: path.to_path_buf(),
        source,
    })
}

impl Corpus {
    /// Reads `root/data/<category>/<file>.csv`, `root/labels/combined_windows.json` and,
    /// when present, `root/config/profiles.json`. Only files named in the label file
    /// are read.
    pub fn load(root: &Path) -> Result<Corpus, NabError> {
        let labels_path = root.join("labels").join("combined_windows.json");
        let labels: BTreeMap<String, Vec<Vec<String>>> =
            serde_json::from_str(&read_text(&labels_path)?)
                .map_err(|e| json_err(&labels_path, e.to_string()))?;
        let profiles = match root.join("config").join("profiles.json") {
            p if p.is_file() => read_profiles(&p)?,
            _ => Profile::defaults(),
        };
        let mut series = Vec::new();
        for (name, windows) in labels {
            let path = root.join("data").join(&name);
            if !path.is_file() {
                continue;
            }
            let samples = read_csv(&path, Some("value"))?;
            let timestamps: Vec<i64> = samples.iter().map(|s| s.timestamp_ms).collect();
            let values = samples.iter().map(|s| s.value).collect();
            let mut rows = Vec::new();
            for w in windows {
                let [start, end] = w.as_slice() else {
                    return Err(json_err(
                        &labels_path,
                        format!("{name}: a window is not [start, end]"),
                    ));
                };
                let (Some(s), Some(e)) = (parse_timestamp(start), parse_timestamp(end)) else {
                    return Err(json_err(
                        &labels_path,
                        format!("{name}: bad timestamp in {w:?}"),
                    ));
                };
                // NAB's files are in time order save for a rare clock step back, so
                // the window is the first to last row whose time falls inside it.
                let inside = |i: &usize| (s..=e).contains(&timestamps[*i]);
                let a = (0..timestamps.len()).find(inside);
                let b = (0..timestamps.len()).rev().find(inside);
                if let (Some(a), Some(b)) = (a, b) {
                    rows.push((a, b));
                }
            }
            series.push(NabSeries {
                name,
                timestamps,
                values,
                windows: rows,
            });
        }
        if series.is_empty() {
            return Err(NabError::NoSeries {
                path: root.to_path_buf(),
            });
        }
        Ok(Corpus { series, profiles })
    }

    /// The number of windows over all series.
    pub fn window_count(&self) -> usize {
        self.series.iter().map(|s| s.windows.len()).sum()
    }
}

fn read_profiles(path: &Path) -> Result<Vec<Profile>, NabError> {
    let v: serde_json::Value =
        serde_json::from_str(&read_text(path)?).map_err(|e| json_err(path, e.to_string()))?;
    let mut out = Vec::new();
    for p in Profile::defaults() {
        let m = &v[&p.name]["CostMatrix"];
        let get = |k: &str| {
            m[k].as_f64()
                .ok_or_else(|| json_err(path, format!("{}.CostMatrix.{k} missing", p.name)))
        };
        out.push(Profile {
            tp: get("tpWeight")?,
            fn_: get("fnWeight")?,
            fp: get("fpWeight")?,
            name: p.name,
        });
    }
    Ok(out)
}

/// NAB's scaled sigmoid: `2 / (1 + exp(5x)) - 1`, and `-1` past `x = 3`.
pub fn scaled_sigmoid(x: f64) -> f64 {
    if x > 3.0 {
        -1.0
    } else {
        2.0 / (1.0 + (5.0 * x).exp()) - 1.0
    }
}

/// What each scored row of a file would contribute if it were a detection.
#[derive(Debug, Clone, Copy)]
enum RowRole {
    /// Inside window `k`: worth this fraction of `A_TP`.
    InWindow { window: usize, tp_fraction: f64 },
    /// Outside windows: costs this fraction of `A_FP` (a value in `[-1, 0]`).
    Outside { fp_sigmoid: f64 },
}

fn row_roles(n: usize, windows: &[(usize, usize)]) -> Vec<Option<RowRole>> {
    let p = probation(n);
    let s_first = scaled_sigmoid(-1.0);
    let mut out = vec![None; n];
    let mut prev: Option<(usize, usize)> = None;
    let mut next = 0;
    for (i, slot) in out.iter_mut().enumerate() {
        while next < windows.len() && windows[next].1 < i {
            prev = Some(windows[next]);
            next += 1;
        }
        if i < p {
            continue;
        }
        let inside = windows
            .iter()
            .enumerate()
            .skip(next)
            .take_while(|(_, w)| w.0 <= i)
            .find(|(_, w)| w.0 <= i && i <= w.1);
        *slot = Some(match inside {
            Some((k, &(a, b))) => {
                let w = (b - a + 1) as f64;
                let x = -((b - i + 1) as f64) / w;
                RowRole::InWindow {
                    window: k,
                    tp_fraction: scaled_sigmoid(x) / s_first,
                }
            }
            None => match prev {
                Some((a, b)) if b > a => {
                    let x = (i - b) as f64 / (b - a) as f64;
                    RowRole::Outside {
                        fp_sigmoid: scaled_sigmoid(x),
                    }
                }
                _ => RowRole::Outside { fp_sigmoid: -1.0 },
            },
        });
    }
    out
}

/// The raw score and counts of one profile at one threshold.
#[derive(Debug, Clone, Serialize)]
pub struct ProfileScore {
    /// The profile's name.
    pub profile: String,
    /// The threshold that maximised the raw score over the corpus.
    pub threshold: f64,
    /// The raw score at that threshold.
    pub raw: f64,
    /// The raw score of the null detector.
    pub raw_null: f64,
    /// The raw score of the perfect detector.
    pub raw_perfect: f64,
    /// `100 (raw - null) / (perfect - null)`.
    pub normalized: f64,
    /// Windows caught.
    pub true_positives: usize,
    /// Windows missed.
    pub false_negatives: usize,
    /// Detection rows outside every window.
    pub false_positive_rows: usize,
}

/// Scores a detector's output (one score vector per series, same order and lengths as
/// the corpus) under every profile, each with its own corpus-optimised threshold.
pub fn score_corpus(corpus: &Corpus, scores: &[Vec<f64>]) -> Vec<ProfileScore> {
    let null: Vec<Vec<f64>> = corpus
        .series
        .iter()
        .map(|s| vec![0.5; s.values.len()])
        .collect();
    corpus
        .profiles
        .iter()
        .map(|p| {
            let best = optimise(corpus, scores, p);
            let null_best = optimise(corpus, &null, p);
            let perfect = p.tp * corpus.window_count() as f64;
            let denom = perfect - null_best.raw;
            ProfileScore {
                profile: p.name.clone(),
                threshold: best.threshold,
                raw: best.raw,
                raw_null: null_best.raw,
                raw_perfect: perfect,
                normalized: if denom.abs() > f64::EPSILON {
                    100.0 * (best.raw - null_best.raw) / denom
                } else {
                    0.0
                },
                true_positives: best.tp,
                false_negatives: best.fn_,
                false_positive_rows: best.fp_rows,
            }
        })
        .collect()
}

#[derive(Debug, Clone, Copy)]
struct Sweep {
    threshold: f64,
    raw: f64,
    tp: usize,
    fn_: usize,
    fp_rows: usize,
}

/// Finds the threshold that maximises the raw score: every scored row of every file,
/// sorted by score descending, switched on a group of equal scores at a time.
fn optimise(corpus: &Corpus, scores: &[Vec<f64>], p: &Profile) -> Sweep {
    struct Row {
        score: f64,
        window: Option<usize>,
        value: f64,
    }
    let mut rows = Vec::new();
    let mut window_base = 0;
    for (s, sc) in corpus.series.iter().zip(scores) {
        for (i, role) in row_roles(s.values.len(), &s.windows)
            .into_iter()
            .enumerate()
        {
            let score = sc.get(i).copied().unwrap_or(0.0);
            let score = if score.is_finite() { score } else { 0.0 };
            match role {
                Some(RowRole::InWindow {
                    window,
                    tp_fraction,
                }) => rows.push(Row {
                    score,
                    window: Some(window_base + window),
                    value: p.tp * tp_fraction,
                }),
                Some(RowRole::Outside { fp_sigmoid }) => rows.push(Row {
                    score,
                    window: None,
                    value: p.fp * fp_sigmoid,
                }),
                None => {}
            }
        }
        window_base += s.windows.len();
    }
    rows.sort_by(|a, b| b.score.total_cmp(&a.score));
    let n_windows = window_base;
    let mut best_in: Vec<Option<f64>> = vec![None; n_windows];
    let mut raw = -p.fn_ * n_windows as f64;
    let (mut tp, mut fp_rows) = (0, 0);
    let mut best = Sweep {
        threshold: 1.1,
        raw,
        tp: 0,
        fn_: n_windows,
        fp_rows: 0,
    };
    let mut i = 0;
    while i < rows.len() {
        let t = rows[i].score;
        while i < rows.len() && rows[i].score == t {
            let r = &rows[i];
            match r.window {
                Some(k) => match best_in[k] {
                    None => {
                        raw += p.fn_ + r.value;
                        best_in[k] = Some(r.value);
                        tp += 1;
                    }
                    Some(old) if r.value > old => {
                        raw += r.value - old;
                        best_in[k] = Some(r.value);
                    }
                    Some(_) => {}
                },
                None => {
                    raw += r.value;
                    fp_rows += 1;
                }
            }
            i += 1;
        }
        if raw > best.raw + 1e-12 {
            best = Sweep {
                threshold: t,
                raw,
                tp,
                fn_: n_windows - tp,
                fp_rows,
            };
        }
    }
    best
}

/// Writes NAB's results layout under `out`: `<detector>/<category>/<detector>_<file>.csv`
/// with `timestamp,value,anomaly_score,label`.
pub fn write_results(
    out: &Path,
    detector: &str,
    corpus: &Corpus,
    scores: &[Vec<f64>],
) -> Result<(), NabError> {
    for (s, sc) in corpus.series.iter().zip(scores) {
        let (category, file) = s.name.rsplit_once('/').unwrap_or(("", s.name.as_str()));
        let dir = out.join(detector).join(category);
        std::fs::create_dir_all(&dir).map_err(|source| NabError::Io {
            path: dir.clone(),
            source,
        })?;
        let mut text = String::from("timestamp,value,anomaly_score,label\n");
        for i in 0..s.values.len() {
            let label = s.windows.iter().any(|&(a, b)| a <= i && i <= b);
            text.push_str(&format!(
                "{},{},{},{}\n",
                format_timestamp(s.timestamps[i]),
                s.values[i],
                sc.get(i).copied().unwrap_or(0.0),
                u8::from(label)
            ));
        }
        let path = dir.join(format!("{detector}_{file}"));
        std::fs::write(&path, text).map_err(|source| NabError::Io { path, source })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-3
    }

    #[test]
    fn sigmoid_matches_the_rules() {
        assert!(close(scaled_sigmoid(-1.0), 0.98661));
        assert!(close(scaled_sigmoid(-0.5), 0.84828));
        assert!(close(scaled_sigmoid(0.0), 0.0));
        assert!(close(scaled_sigmoid(1.0), -0.98661));
        assert_eq!(scaled_sigmoid(3.01), -1.0);
    }

    /// A corpus of one file: 1000 rows (warm-up 150), one 100-row window at 500..=599.
    fn one_file(scores_at: &[usize]) -> (Corpus, Vec<Vec<f64>>) {
        let n = 1000;
        let series = NabSeries {
            name: "x/f.csv".into(),
            timestamps: (0..n as i64).collect(),
            values: vec![0.0; n],
            windows: vec![(500, 599)],
        };
        let mut sc = vec![0.0; n];
        for &i in scores_at {
            sc[i] = 1.0;
        }
        (
            Corpus {
                series: vec![series],
                profiles: Profile::defaults(),
            },
            vec![sc],
        )
    }

    fn raw(scores_at: &[usize], profile: usize) -> f64 {
        let (c, s) = one_file(scores_at);
        // Evaluate at threshold 1.0 by checking that the optimum includes the detections
        // when they help; the worked examples use hits that help or a lone cost.
        optimise(&c, &s, &c.profiles[profile]).raw
    }

    #[test]
    fn worked_examples_by_hand() {
        // Caught at the first row: +1.
        assert!(close(raw(&[500], 0), 1.0));
        // A quarter of the way in, x = -0.75: 0.9540 / 0.9866 = 0.967.
        assert!(close(raw(&[525], 0), 0.9670), "{}", raw(&[525], 0));
        // Halfway: 0.860.
        assert!(close(raw(&[550], 0), 0.8598));
        // Last row of the 100-row window, x = -0.01: 0.025.
        assert!(close(raw(&[599], 0), 0.0253), "{}", raw(&[599], 0));
        // Later detections in the same window add nothing.
        assert!(close(raw(&[500, 510, 590], 0), 1.0));
        // A missed window: -1 (the optimiser then switches nothing on).
        assert!(close(raw(&[], 0), -1.0));
        assert!(close(raw(&[], 2), -2.0));
        // Caught, plus one false alarm before the window: 1 - 0.11; low FP: 1 - 0.22.
        assert!(close(raw(&[500, 300], 0), 0.89));
        assert!(close(raw(&[500, 300], 1), 0.78));
        // One row right after the window (x = 1/99): -0.0028; 99 rows after: -0.1085.
        assert!(
            close(raw(&[500, 600], 0), 1.0 - 0.0028),
            "{}",
            raw(&[500, 600], 0)
        );
        assert!(
            close(raw(&[500, 698], 0), 1.0 - 0.1085),
            "{}",
            raw(&[500, 698], 0)
        );
        // Detections in the warm-up count for nothing.
        assert!(close(raw(&[500, 100], 0), 1.0));
    }

    #[test]
    fn optimiser_prefers_no_detection_over_costly_ones() {
        // A detector that fires only on 20 rows before the window: cost 2.2 > gain 0.
        let (c, mut s) = one_file(&[]);
        for v in &mut s[0][200..220] {
            *v = 0.9;
        }
        let best = optimise(&c, &s, &c.profiles[0]);
        assert_eq!(best.threshold, 1.1);
        assert!(close(best.raw, -1.0));
        let scored = score_corpus(&c, &s);
        assert!(close(scored[0].normalized, 0.0));
        let (c, s) = one_file(&[500]);
        assert!(close(score_corpus(&c, &s)[0].normalized, 100.0));
        // Caught halfway: (0.860 + 1) / 2 = 93.0.
        let (c, s) = one_file(&[550]);
        assert!(
            close(score_corpus(&c, &s)[0].normalized, 92.99),
            "{}",
            score_corpus(&c, &s)[0].normalized
        );
    }
}
