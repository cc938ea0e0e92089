//! The detector stage: one streaming detector per series, anomalies as windows of
//! consecutive anomalous points.

use std::sync::Arc;

use steward_core::{Anomaly, AnomalyKind, SeriesKey, TimestampMs};

use crate::counters::Counters;
use crate::store::{Band, SeriesId};

/// One point's score.
#[derive(Debug, Clone, PartialEq)]
pub struct Score {
    /// The expected band and score.
    pub band: Band,
    /// Set when the point is anomalous.
    pub kind: Option<AnomalyKind>,
    /// Why, in a sentence.
    pub reason: Option<String>,
}

/// A streaming detector over one series.
pub trait SeriesDetector: Send {
    /// Scores the next point.
    fn update(&mut self, ts: TimestampMs, value: f64) -> Score;
}

/// Makes a detector for a new series.
pub type DetectorFactory = Box<dyn Fn(&SeriesKey) -> Box<dyn SeriesDetector> + Send>;

/// steward-detect's streaming detector.
#[derive(Debug)]
pub struct Streaming(steward_detect::StreamingDetector);

impl Streaming {
    /// A detector for a series, told which direction is bad where the name says:
    /// template rates of problems, latencies and errors only matter when they rise.
    pub fn for_series(key: &SeriesKey) -> Streaming {
        let name = key.name.to_ascii_lowercase();
        let rising_is_bad = ["latency", "duration", "error", "fail", "timeout"]
            .iter()
            .any(|w| name.contains(w));
        Streaming(steward_detect::StreamingDetector::new(
            steward_detect::DetectorConfig {
                higher_is_worse: rising_is_bad.then_some(true),
                unit: None,
            },
        ))
    }
}

impl SeriesDetector for Streaming {
    fn update(&mut self, ts: TimestampMs, value: f64) -> Score {
        let s = self.0.update(ts, value);
        Score {
            band: Band {
                expected: s.expected,
                lower: s.lower,
                upper: s.upper,
                score: s.score,
            },
            kind: s.kind,
            reason: s.reason,
        }
    }
}

struct SeriesState {
    key: SeriesKey,
    detector: Box<dyn SeriesDetector>,
    open: Option<Anomaly>,
    last_ts: TimestampMs,
}

/// What one point did.
#[derive(Debug, Clone, PartialEq)]
pub struct Scored {
    /// Its band.
    pub band: Band,
    /// The anomaly it opened or extended.
    pub anomaly: Option<Anomaly>,
    /// True when the anomaly is new.
    pub opened: bool,
}

/// A detector per series.
pub struct DetectorStage {
    factory: DetectorFactory,
    /// Indexed by series id: ids are dense (steward-tsdb hands them out in order), so
    /// a vector is both smaller and faster than a map.
    series: Vec<Option<SeriesState>>,
    live: usize,
    threshold: f64,
    /// Points of a series this far apart or more belong to different anomalies.
    gap_ms: i64,
    counters: Arc<Counters>,
}

impl std::fmt::Debug for DetectorStage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DetectorStage")
            .field("series", &self.live)
            .finish_non_exhaustive()
    }
}

impl DetectorStage {
    /// A stage that reports points scoring at least `threshold`.
    pub fn new(
        factory: DetectorFactory,
        threshold: f64,
        gap_ms: i64,
        counters: Arc<Counters>,
    ) -> DetectorStage {
        DetectorStage {
            factory,
            series: Vec::new(),
            live: 0,
            threshold,
            gap_ms,
            counters,
        }
    }

    /// Scores one point. Points older than the series' last are skipped (`None`):
    /// detectors are streaming and see each series in order.
    pub fn update(
        &mut self,
        id: SeriesId,
        key: impl FnOnce() -> SeriesKey,
        ts: TimestampMs,
        value: f64,
    ) -> Option<Scored> {
        let slot = usize::try_from(id).ok()?;
        if self.series.len() <= slot {
            self.series.resize_with(slot + 1, || None);
        }
        let state = match &mut self.series[slot] {
            Some(state) => state,
            empty => {
                let key = key();
                self.live += 1;
                self.counters
                    .detector_series
                    .store(self.live as u64, std::sync::atomic::Ordering::Relaxed);
                empty.insert(SeriesState {
                    detector: (self.factory)(&key),
                    key,
                    open: None,
                    last_ts: i64::MIN,
                })
            }
        };
        if ts <= state.last_ts {
            return None;
        }
        state.last_ts = ts;
        let score = state.detector.update(ts, value);

        let anomalous = score.kind.is_some() && score.band.score >= self.threshold;
        if !anomalous {
            if state
                .open
                .as_ref()
                .is_some_and(|a| ts - a.end_ms >= self.gap_ms)
            {
                state.open = None;
            }
            return Some(Scored {
                band: score.band,
                anomaly: None,
                opened: false,
            });
        }
        let kind = score.kind.unwrap_or(AnomalyKind::Spike);
        let reason = score.reason.unwrap_or_else(|| kind.as_str().to_string());
        let (anomaly, opened) = match &mut state.open {
            Some(open) if ts - open.end_ms < self.gap_ms => {
                open.end_ms = ts;
                if score.band.score > open.score {
                    open.score = score.band.score;
                }
                (open.clone(), false)
            }
            slot => {
                let anomaly = Anomaly {
                    series: state.key.clone(),
                    kind,
                    start_ms: ts,
                    end_ms: ts,
                    score: score.band.score,
                    reason,
                };
                *slot = Some(anomaly.clone());
                self.counters
                    .anomalies
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                (anomaly, true)
            }
        };
        Some(Scored {
            band: score.band,
            anomaly: Some(anomaly),
            opened,
        })
    }

    /// The key of a series the stage has seen.
    pub fn key(&self, id: SeriesId) -> Option<&SeriesKey> {
        self.series
            .get(usize::try_from(id).ok()?)?
            .as_ref()
            .map(|s| &s.key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_700_000_000_000;

    #[test]
    fn a_spike_after_a_steady_run_is_one_anomaly() {
        let mut stage = DetectorStage::new(
            Box::new(|k| Box::new(Streaming::for_series(k))),
            0.5,
            3 * 60_000,
            Arc::new(Counters::default()),
        );
        let key = || SeriesKey::new("latency");
        let mut opened = 0;
        for t in 0..80 {
            let v = if (60..63).contains(&t) {
                500.0
            } else {
                100.0 + (t % 3) as f64
            };
            let s = stage.update(1, key, T0 + t * 60_000, v).unwrap();
            if s.opened {
                opened += 1;
                assert_eq!(s.anomaly.as_ref().unwrap().start_ms, T0 + 60 * 60_000);
            }
        }
        assert_eq!(opened, 1);
        assert!(stage.update(1, key, T0, 1.0).is_none());
    }
}
