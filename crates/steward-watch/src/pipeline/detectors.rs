//! The detector stage: one streaming detector per series, anomalies as windows of
//! consecutive anomalous points.
//!
//! Counters are judged by their rate. A Prometheus counter only ever rises (or
//! restarts from zero), so its raw value is always at a level never seen before and
//! every point of it looks like a break; what can be anomalous is how fast it rises.
//! Series named as counters by Prometheus's conventions ([`is_counter`]) have each
//! point turned into the per-second increase since the previous one before their
//! detector sees it (a drop is a reset, and that step is not scored), and the
//! expected band is turned back into the counter's own units.

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
    /// Its learned state as bytes, for a series evicted to the store (`None`: it has
    /// none worth keeping, or cannot be saved).
    fn save(&self) -> Option<Vec<u8>> {
        None
    }
    /// Bytes it holds in memory.
    fn state_bytes(&self) -> usize {
        0
    }
}

/// Makes a detector for a series: fresh, or from saved state when the bytes are given
/// (and decode).
pub type DetectorFactory = Box<dyn Fn(&SeriesKey, Option<&[u8]>) -> Box<dyn SeriesDetector> + Send>;

/// Whether a series is a monotonic counter by Prometheus's naming conventions:
/// `_total` (counters), `_count`, `_sum` and `_bucket` (histograms and summaries).
pub fn is_counter(key: &SeriesKey) -> bool {
    ["_total", "_count", "_sum", "_bucket"]
        .iter()
        .any(|suffix| key.name.ends_with(suffix))
}

/// The rate of a counter between two points, per second, and the seconds between
/// them; `None` across a reset (a fall: the process restarted, and how far it counted
/// before the restart is not known, so that step says nothing about its rate).
fn counter_rate(prev: (TimestampMs, f64), ts: TimestampMs, value: f64) -> Option<(f64, f64)> {
    let secs = (ts - prev.0) as f64 / 1000.0;
    (value >= prev.1 && secs > 0.0).then(|| ((value - prev.1) / secs, secs))
}

/// The state name a series' saved detector is stored under.
pub fn state_name(id: SeriesId) -> String {
    format!("detector.{id}")
}

/// steward-detect's streaming detector.
#[derive(Debug)]
pub struct Streaming(steward_detect::StreamingDetector);

impl Streaming {
    /// The detector of a series: restored from `saved` when it decodes, fresh otherwise.
    pub fn for_series_or_saved(key: &SeriesKey, saved: Option<&[u8]>) -> Streaming {
        saved
            .and_then(|b| serde_json::from_slice(b).ok())
            .map_or_else(|| Streaming::for_series(key), Streaming)
    }

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
                // A counter's detector sees its rate: its reasons say so.
                unit: is_counter(key).then(|| "/s".to_string()),
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

    fn save(&self) -> Option<Vec<u8>> {
        serde_json::to_vec(&self.0).ok()
    }

    fn state_bytes(&self) -> usize {
        self.0.state_bytes()
    }
}

struct SeriesState {
    key: SeriesKey,
    detector: Box<dyn SeriesDetector>,
    open: Option<Anomaly>,
    last_ts: TimestampMs,
    /// For a counter: `Some`, holding its last finite point once it has one.
    counter: Option<Option<(TimestampMs, f64)>>,
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

    /// Series whose detector is in memory.
    pub fn live(&self) -> usize {
        self.live
    }

    /// Bytes the detectors in memory hold (their own accounting).
    pub fn state_bytes(&self) -> usize {
        self.series
            .iter()
            .flatten()
            .map(|s| s.detector.state_bytes())
            .sum()
    }

    /// Takes the detectors of series with no point since `before` (data time) out of
    /// memory and returns their saved state, to be stored under [`state_name`].
    pub fn evict_idle(&mut self, before: TimestampMs) -> Vec<(SeriesId, Vec<u8>)> {
        let mut out = Vec::new();
        for (slot, entry) in self.series.iter_mut().enumerate() {
            if entry.as_ref().is_some_and(|s| s.last_ts < before) {
                if let Some(state) = entry.take() {
                    self.live -= 1;
                    if let Some(bytes) = state.detector.save() {
                        out.push((slot as SeriesId, bytes));
                    }
                }
            }
        }
        self.counters
            .detector_series
            .store(self.live as u64, std::sync::atomic::Ordering::Relaxed);
        out
    }

    /// The saved state of every detector in memory (at shutdown).
    pub fn save_all(&self) -> Vec<(SeriesId, Vec<u8>)> {
        self.series
            .iter()
            .enumerate()
            .filter_map(|(slot, s)| Some((slot as SeriesId, s.as_ref()?.detector.save()?)))
            .collect()
    }

    /// Scores one point. Points older than the series' last are skipped (`None`):
    /// detectors are streaming and see each series in order. So are a counter's first
    /// point and the point after its reset, which have no rate. A series seen for the
    /// first time (in this process, or since it was evicted) gets its detector from
    /// `saved` when that returns stored state, fresh otherwise.
    pub fn update(
        &mut self,
        id: SeriesId,
        key: impl FnOnce() -> SeriesKey,
        saved: impl FnOnce() -> Option<Vec<u8>>,
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
                let saved = saved();
                if saved.is_some() {
                    self.counters
                        .detector_restored
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                self.live += 1;
                self.counters
                    .detector_series
                    .store(self.live as u64, std::sync::atomic::Ordering::Relaxed);
                empty.insert(SeriesState {
                    detector: (self.factory)(&key, saved.as_deref()),
                    counter: is_counter(&key).then_some(None),
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
        let score = match &mut state.counter {
            None => state.detector.update(ts, value),
            // A value that is not finite (Prometheus's staleness marker is a NaN) is
            // no point of the counter: its detector skips it, the rate goes on from
            // the last finite one.
            Some(_) if !value.is_finite() => state.detector.update(ts, value),
            Some(last) => {
                // The first point of a counter has no rate yet: nothing to score.
                let prev = last.replace((ts, value))?;
                let (rate, secs) = counter_rate(prev, ts, value)?;
                let mut score = state.detector.update(ts, rate);
                // The band, from rates back to the counter's own units.
                let band = &mut score.band;
                band.expected = prev.1 + band.expected * secs;
                band.lower = prev.1 + band.lower.max(0.0) * secs;
                band.upper = prev.1 + band.upper.max(0.0) * secs;
                score
            }
        };

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
            Box::new(|k, saved| Box::new(Streaming::for_series_or_saved(k, saved))),
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
            let s = stage.update(1, key, || None, T0 + t * 60_000, v).unwrap();
            if s.opened {
                opened += 1;
                assert_eq!(s.anomaly.as_ref().unwrap().start_ms, T0 + 60 * 60_000);
            }
        }
        assert_eq!(opened, 1);
        assert!(stage.update(1, key, || None, T0, 1.0).is_none());
    }

    #[test]
    fn an_evicted_detector_comes_back_with_what_it_learned() {
        let counters = Arc::new(Counters::default());
        let factory = || -> DetectorFactory {
            Box::new(|k, saved| Box::new(Streaming::for_series_or_saved(k, saved)))
        };
        let mut kept = DetectorStage::new(factory(), 0.5, 60_000, Arc::clone(&counters));
        let mut evicted = DetectorStage::new(factory(), 0.5, 60_000, Arc::clone(&counters));
        let key = || SeriesKey::new("latency");
        let value = |t: i64| 100.0 + (t % 5) as f64;
        let mut saved: Vec<(SeriesId, Vec<u8>)> = Vec::new();
        for t in 0..200 {
            kept.update(3, key, || None, T0 + t * 60_000, value(t));
            let restore = (t == 121).then(|| saved[0].1.clone());
            evicted.update(3, key, move || restore, T0 + t * 60_000, value(t));
            if t == 120 {
                saved = evicted.evict_idle(i64::MAX);
                assert_eq!(saved.len(), 1);
                assert_eq!(evicted.live(), 0);
            }
        }
        // Restored, the detector scores exactly as the one that never left memory.
        let a = kept
            .update(3, key, || None, T0 + 200 * 60_000, 500.0)
            .unwrap();
        let b = evicted
            .update(3, key, || None, T0 + 200 * 60_000, 500.0)
            .unwrap();
        assert_eq!(a.band, b.band);
        assert_eq!(
            counters
                .detector_restored
                .load(std::sync::atomic::Ordering::Relaxed),
            1
        );
    }

    fn stage() -> DetectorStage {
        DetectorStage::new(
            Box::new(|k, saved| Box::new(Streaming::for_series_or_saved(k, saved))),
            0.5,
            3 * 60_000,
            Arc::new(Counters::default()),
        )
    }

    #[test]
    fn a_counter_is_judged_by_its_rate() {
        let mut stage = stage();
        let key = || SeriesKey::new("http_requests_total");
        assert!(is_counter(&key()) && !is_counter(&SeriesKey::new("queue_depth")));
        // Ten requests a second, give or take, for 2,000 points at 15 s; a restart at
        // 1,200; then the rate triples at 1,800.
        let mut value = 0.0;
        let mut opened = Vec::new();
        for t in 0..2_000i64 {
            let rate = if t >= 1_800 { 30.0 } else { 10.0 };
            value += 15.0 * rate + (t % 7) as f64;
            if t == 1_200 {
                value = 3.0;
            }
            let Some(s) = stage.update(1, key, || None, T0 + t * 15_000, value) else {
                assert!(
                    t == 0 || t == 1_200,
                    "only the first point and the reset go unscored, not {t}"
                );
                continue;
            };
            // The band is in the counter's units: about one step's rise above the last.
            if t > 500 && t < 1_800 {
                assert!(
                    s.band.lower <= value + 1.0 && value <= s.band.upper + 1.0,
                    "t {t}: {value} outside {:?}",
                    s.band
                );
            }
            if s.opened {
                opened.push((t, s.anomaly.unwrap().reason));
            }
        }
        // A counter climbing forever is not a new level at every point: the only
        // anomaly is the rate's jump.
        assert_eq!(opened.len(), 1, "{opened:?}");
        let (t, reason) = &opened[0];
        assert!((1_800..1_810).contains(t), "at {t}");
        assert!(reason.contains("/s"), "{reason}");
    }
}
