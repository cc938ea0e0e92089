//! steward's time-series intelligence.
//!
//! - [`StreamingDetector`]: one per series, one point at a time, bounded state, an
//!   anomaly score in `[0, 1]` from the past alone, with the expected band and a reason.
//! - [`report`]: a whole series through the detector, anomalous points grouped into
//!   windows ([`report::detect_series`]), and its SVG plot ([`plot`]).
//! - [`forecast`]: when a series will cross a threshold, with an interval.
//! - [`correlate`]: anomalies from many series grouped into incidents with a likely cause.
//! - [`nab`]: the Numenta Anomaly Benchmark's corpus, scorer and results layout.
//!
//! **Architecture Invariant:** this crate depends on `steward-core` only among steward's
//! crates, and does no I/O except reading the CSV and NAB files it is pointed at and
//! writing the files it is asked to.
#![deny(missing_docs)]

pub mod correlate;
mod detector;
pub mod forecast;
pub mod nab;
pub mod plot;
pub mod report;
pub mod series;
pub mod time;

pub use correlate::{Correlator, CorrelatorConfig, IncidentEvent};
pub use detector::{DetectorConfig, PointScore, StreamingDetector};
pub use forecast::{Crossing, ForecastError, forecast_crossing};

/// Runs a fresh default detector over every series of a NAB corpus and returns each
/// series' scores, using up to `threads` threads.
pub fn score_nab(corpus: &nab::Corpus, config: &DetectorConfig, threads: usize) -> Vec<Vec<f64>> {
    let run = |s: &nab::NabSeries| {
        let mut d = StreamingDetector::new(config.clone());
        s.timestamps
            .iter()
            .zip(&s.values)
            .map(|(&t, &v)| d.update(t, v).score)
            .collect::<Vec<f64>>()
    };
    let threads = threads.max(1);
    let mut out: Vec<Vec<f64>> = vec![Vec::new(); corpus.series.len()];
    std::thread::scope(|scope| {
        for (k, chunk) in out
            .chunks_mut(corpus.series.len().div_ceil(threads).max(1))
            .enumerate()
        {
            let start = k * corpus.series.len().div_ceil(threads).max(1);
            let run = &run;
            scope.spawn(move || {
                for (j, slot) in chunk.iter_mut().enumerate() {
                    *slot = run(&corpus.series[start + j]);
                }
            });
        }
    });
    out
}
