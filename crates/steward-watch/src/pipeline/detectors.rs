//! The detector stage: one streaming detector per series, anomalies as windows of
//! consecutive anomalous points.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

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

/// A small robust detector used until steward-detect's is wired in: an exponentially
/// weighted mean and variance, with a noise floor so flat series do not alarm on
/// rounding, and a warm-up before it reports anything.
#[derive(Debug, Clone)]
pub struct EwmaDetector {
    alpha: f64,
    mean: f64,
    var: f64,
    seen: u32,
    warmup: u32,
    z_alarm: f64,
}

impl Default for EwmaDetector {
    fn default() -> Self {
        EwmaDetector {
            alpha: 0.1,
            mean: 0.0,
            var: 0.0,
            seen: 0,
            warmup: 8,
            z_alarm: 4.0,
        }
    }
}

impl SeriesDetector for EwmaDetector {
    fn update(&mut self, _ts: TimestampMs, value: f64) -> Score {
        if !value.is_finite() {
            return Score {
                band: Band {
                    expected: self.mean,
                    lower: self.mean,
                    upper: self.mean,
                    score: 0.0,
                },
                kind: None,
                reason: None,
            };
        }
        if self.seen == 0 {
            self.mean = value;
        }
        let sigma = self
            .var
            .sqrt()
            .max(0.05 * self.mean.abs())
            .max(self.mean.abs().sqrt() * 0.5)
            .max(1e-6);
        let z = (value - self.mean) / sigma;
        let band = Band {
            expected: self.mean,
            lower: self.mean - 3.0 * sigma,
            upper: self.mean + 3.0 * sigma,
            score: if self.seen < self.warmup {
                0.0
            } else {
                (1.0 - (-(z.abs() / self.z_alarm).powi(2) * std::f64::consts::LN_2).exp())
                    .clamp(0.0, 1.0)
            },
        };
        let anomalous = self.seen >= self.warmup && z.abs() >= self.z_alarm;
        let (kind, reason) = if anomalous {
            let pct = if self.mean.abs() > 1e-9 {
                format!(" ({:+.0}%)", (value - self.mean) / self.mean.abs() * 100.0)
            } else {
                String::new()
            };
            let (kind, word) = if z > 0.0 {
                (AnomalyKind::Spike, "above")
            } else {
                (AnomalyKind::Dip, "below")
            };
            (
                Some(kind),
                Some(format!(
                    "{} {value:.4} is {:.1} sigma {word} the expected {:.4}{pct}",
                    kind.as_str(),
                    z.abs(),
                    self.mean
                )),
            )
        } else {
            (None, None)
        };
        // Anomalous points move the baseline slowly, so a level shift is learned
        // without a single spike dragging the band.
        let alpha = if anomalous {
            self.alpha * 0.2
        } else {
            self.alpha
        };
        let diff = value - self.mean;
        self.mean += alpha * diff;
        self.var = (1.0 - alpha) * (self.var + alpha * diff * diff);
        self.seen = self.seen.saturating_add(1);
        Score { band, kind, reason }
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
    series: HashMap<SeriesId, SeriesState>,
    threshold: f64,
    /// Points of a series this far apart or more belong to different anomalies.
    gap_ms: i64,
    counters: Arc<Counters>,
}

impl std::fmt::Debug for DetectorStage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DetectorStage")
            .field("series", &self.series.len())
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
            series: HashMap::new(),
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
        let factory = &self.factory;
        let state = self.series.entry(id).or_insert_with(|| {
            let key = key();
            SeriesState {
                detector: factory(&key),
                key,
                open: None,
                last_ts: i64::MIN,
            }
        });
        if ts <= state.last_ts {
            return None;
        }
        state.last_ts = ts;
        let started = Instant::now();
        let score = state.detector.update(ts, value);
        self.counters.observe_detector_latency(started.elapsed());

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
        self.series.get(&id).map(|s| &s.key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spike_after_a_steady_run_is_one_anomaly() {
        let mut stage = DetectorStage::new(
            Box::new(|_| Box::new(EwmaDetector::default())),
            0.5,
            3,
            Arc::new(Counters::default()),
        );
        let key = || SeriesKey::new("latency");
        let mut opened = 0;
        for t in 0..50 {
            let v = if (30..33).contains(&t) {
                500.0
            } else {
                100.0 + (t % 3) as f64
            };
            let s = stage.update(1, key, t, v).unwrap();
            if s.opened {
                opened += 1;
                assert_eq!(s.anomaly.as_ref().unwrap().start_ms, 30);
            }
            if t == 32 {
                assert_eq!(s.anomaly.unwrap().end_ms, 32);
            }
        }
        assert_eq!(opened, 1);
        assert!(stage.update(1, key, 10, 1.0).is_none());
    }
}
