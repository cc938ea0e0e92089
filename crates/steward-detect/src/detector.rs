//! The streaming detector: one point at a time, bounded state, a score in `[0, 1]` from
//! the past alone.
//!
//! Each point is compared with several expectations, each an "expert" that knows one
//! shape of trouble:
//!
//! - the baseline: the robust local level (the median of the last few points) or, when
//!   the data show it explains the series better, the daily or weekly profile learned
//!   per time-of-day bin, plus a local offset. Residuals are scaled by a winsorised
//!   exponentially weighted mean absolute deviation (a streaming MAD): one spike cannot
//!   inflate the scale that judges the next one;
//! - a level-shift test: the short average of residuals against what noise allows;
//! - rate of change: the step from the last point against the usual step;
//! - a trend test: a fast slope against a slow one;
//! - novelty: a value outside every value seen so far (with a tolerance).
//!
//! The strongest surprise, as a number of standard deviations, is turned into a raw
//! score, and the final score is an anomaly *likelihood* in the manner of Numenta's
//! HTM detector: how improbable the recent average of raw scores is under their own
//! long-run distribution, on a log scale. That makes one threshold mean the same on a
//! calm series and a noisy one. After a confident alarm the score is damped for a while,
//! so one event raises one alarm and not fifty.
//!
//! State is a few hundred numbers whatever the length of the series
//! ([`StreamingDetector::state_bytes`]); augurs' detectors work on whole batches, so
//! this one is written here.

use serde::{Deserialize, Serialize};
use steward_core::{AnomalyKind, TimestampMs};

use crate::time::format_clock;

/// What a user may say about a series. The default suits every series.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct DetectorConfig {
    /// `Some(true)` when only rises matter (latency, errors, disk used), `Some(false)`
    /// when only falls matter (throughput, free memory); `None` watches both.
    pub higher_is_worse: Option<bool>,
    /// The unit, used only in reasons (`"ms"`, `"%"`).
    pub unit: Option<String>,
}

/// The verdict on one point.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PointScore {
    /// Anomaly score in `[0, 1]`; 0.5 and above is an alarm worth a look.
    pub score: f64,
    /// The value the detector expected.
    pub expected: f64,
    /// The low end of the expected band.
    pub lower: f64,
    /// The high end of the expected band.
    pub upper: f64,
    /// The shape, when the point is anomalous.
    pub kind: Option<AnomalyKind>,
    /// Why, in words, when the point is anomalous.
    pub reason: Option<String>,
}

/// How many recent values the robust level is the median of.
const RECENT: usize = 16;
/// Time-of-day bins, at most (5-minute resolution).
const DAY_BINS_MAX: usize = 288;
/// Hour-of-week bins.
const WEEK_BINS: usize = 168;
const DAY_MS: i64 = 86_400_000;
const WEEK_MS: i64 = 7 * DAY_MS;
/// Points before any score above zero.
const WARMUP: u64 = 24;
/// The score from which an alarm damps the next ones.
const ALARM: f64 = 0.5;
/// The weight of the newest raw score in the short average.
const SHORT_ALPHA: f64 = 0.3;
/// Decades of improbability that make a score of 1.
const LIKELIHOOD_DECADES: f64 = 20.0;

/// Exponentially weighted mean and mean absolute deviation, winsorised.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
struct EwStat {
    mean: f64,
    dev: f64,
    n: u32,
}

impl EwStat {
    fn update(&mut self, x: f64, alpha_min: f64) {
        self.n = self.n.saturating_add(1);
        let a = (1.0 / f64::from(self.n)).max(alpha_min);
        let d = x - self.mean;
        self.mean += a * d;
        self.dev += a * (d.abs() - self.dev);
    }
}

/// A seasonal profile: per-bin level, learned from the data.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Profile {
    period_ms: i64,
    level: Vec<f32>,
    visits: Vec<u8>,
    /// Local offset of the series from the profile.
    offset: f64,
    /// Mean absolute one-step prediction error of this profile.
    err: f64,
    err_n: u32,
}

impl Profile {
    fn new(period_ms: i64, bins: usize) -> Profile {
        Profile {
            period_ms,
            level: vec![0.0; bins],
            visits: vec![0; bins],
            offset: 0.0,
            err: 0.0,
            err_n: 0,
        }
    }

    fn bin(&self, ts: TimestampMs) -> usize {
        let bins = self.level.len() as i64;
        let phase = ts.rem_euclid(self.period_ms);
        ((phase * bins / self.period_ms) as usize).min(self.level.len() - 1)
    }

    /// The expected value at `ts`, if the bin has been seen often enough.
    fn predict(&self, ts: TimestampMs) -> Option<f64> {
        let b = self.bin(ts);
        (self.visits[b] >= 2).then(|| f64::from(self.level[b]) + self.offset)
    }

    fn learn(&mut self, ts: TimestampMs, x: f64, predicted: Option<f64>, clip: f64) {
        if let Some(p) = predicted {
            let e = (x - p).abs().min(clip);
            self.err_n = self.err_n.saturating_add(1);
            let a = (1.0 / f64::from(self.err_n)).max(0.01);
            self.err += a * (e - self.err);
        }
        let b = self.bin(ts);
        let v = self.visits[b];
        let a = 1.0 / f64::from(v.min(4) + 1);
        let base = f64::from(self.level[b]);
        // The bin learns the value less the local offset, so a shift of the whole
        // series lives in the offset and the shape in the bins.
        let target = if v == 0 { x } else { x - self.offset };
        self.level[b] = (base + a * (target - base)) as f32;
        self.visits[b] = v.saturating_add(1);
        if v > 0 {
            let resid = x - (base + self.offset);
            self.offset += 0.05 * resid.clamp(-clip, clip);
        }
    }
}

/// Which baseline the detector believes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
enum Baseline {
    Level,
    Daily,
    Weekly,
}

/// A streaming anomaly detector for one series. Serialisable, so the watch service can
/// evict an idle series to its store and bring it back.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StreamingDetector {
    config: DetectorConfig,
    n: u64,
    last_ts: Option<TimestampMs>,
    last_x: f64,
    step_ms: i64,
    recent: Vec<f64>,
    recent_pos: usize,
    /// Residuals against the level baseline.
    resid: EwStat,
    /// One-step differences.
    diff: EwStat,
    /// Short average of residuals, for level shifts.
    short_resid: f64,
    /// Fast and slow slope estimates, for trend changes.
    slope_fast: f64,
    slope_slow: f64,
    slope_dev: f64,
    level_err: f64,
    min_seen: f64,
    max_seen: f64,
    daily: Option<Profile>,
    weekly: Option<Profile>,
    /// Long-run mean and variance of raw scores, and their short average.
    raw_mean: f64,
    raw_var: f64,
    raw_short: f64,
    /// Points since the last alarm, and its score.
    since_alarm: u64,
    alarm_score: f64,
}

impl Default for StreamingDetector {
    fn default() -> Self {
        StreamingDetector::new(DetectorConfig::default())
    }
}

/// The normal upper tail probability `Q(z)`, to about 1e-7 (Abramowitz and Stegun 7.1.26
/// on erfc).
fn normal_tail(z: f64) -> f64 {
    if z < 0.0 {
        return 1.0 - normal_tail(-z);
    }
    let x = z / std::f64::consts::SQRT_2;
    let t = 1.0 / (1.0 + 0.327_591_1 * x);
    let poly = t
        * (0.254_829_592
            + t * (-0.284_496_736
                + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
    0.5 * poly * (-x * x).exp()
}

impl StreamingDetector {
    /// A detector with no history.
    pub fn new(config: DetectorConfig) -> Self {
        StreamingDetector {
            config,
            n: 0,
            last_ts: None,
            last_x: 0.0,
            step_ms: 0,
            recent: Vec::with_capacity(RECENT),
            recent_pos: 0,
            resid: EwStat::default(),
            diff: EwStat::default(),
            short_resid: 0.0,
            slope_fast: 0.0,
            slope_slow: 0.0,
            slope_dev: 0.0,
            level_err: 0.0,
            min_seen: f64::INFINITY,
            max_seen: f64::NEG_INFINITY,
            daily: None,
            weekly: None,
            raw_mean: 0.0,
            raw_var: 0.0,
            raw_short: 0.0,
            since_alarm: u64::MAX,
            alarm_score: 0.0,
        }
    }

    /// The bytes this detector holds, heap included: what one series costs.
    pub fn state_bytes(&self) -> usize {
        let profile = |p: &Option<Profile>| {
            p.as_ref()
                .map_or(0, |p| p.level.capacity() * 4 + p.visits.capacity())
        };
        std::mem::size_of::<Self>()
            + self.recent.capacity() * 8
            + profile(&self.daily)
            + profile(&self.weekly)
            + self.config.unit.as_ref().map_or(0, String::capacity)
    }

    fn median_recent(&self) -> f64 {
        let mut buf = [0.0f64; RECENT];
        let k = self.recent.len();
        buf[..k].copy_from_slice(&self.recent);
        let s = &mut buf[..k];
        let mid = k / 2;
        s.select_nth_unstable_by(mid, f64::total_cmp);
        s[mid]
    }

    fn baseline(&self) -> Baseline {
        let level = self.level_err;
        let pick = |p: &Option<Profile>| {
            p.as_ref()
                .filter(|p| p.err_n > 200 && p.err < 0.8 * level)
                .map(|p| p.err)
        };
        match (pick(&self.daily), pick(&self.weekly)) {
            (Some(d), Some(w)) if w < 0.9 * d => Baseline::Weekly,
            (Some(_), _) => Baseline::Daily,
            (None, Some(_)) => Baseline::Weekly,
            (None, None) => Baseline::Level,
        }
    }

    /// Scores one point from the history alone, then learns from it. Timestamps should
    /// increase; a value that is not finite scores 0 and is not learned.
    pub fn update(&mut self, timestamp_ms: TimestampMs, value: f64) -> PointScore {
        if !value.is_finite() {
            return PointScore {
                score: 0.0,
                expected: self.last_x,
                lower: self.last_x,
                upper: self.last_x,
                kind: None,
                reason: None,
            };
        }
        let x = value;
        if let Some(prev) = self.last_ts {
            let d = timestamp_ms.saturating_sub(prev);
            if d > 0 && (self.step_ms == 0 || d < self.step_ms) {
                self.step_ms = d;
            }
        }
        if self.daily.is_none() && self.step_ms > 0 && self.step_ms <= DAY_MS / 24 {
            let bins = ((DAY_MS / self.step_ms) as usize).clamp(24, DAY_BINS_MAX);
            self.daily = Some(Profile::new(DAY_MS, bins));
        }
        if self.weekly.is_none() && self.step_ms > 0 && self.step_ms <= DAY_MS {
            self.weekly = Some(Profile::new(WEEK_MS, WEEK_BINS));
        }

        let have_history = !self.recent.is_empty();
        let level = if have_history {
            self.median_recent()
        } else {
            x
        };
        let daily_pred = self.daily.as_ref().and_then(|p| p.predict(timestamp_ms));
        let weekly_pred = self.weekly.as_ref().and_then(|p| p.predict(timestamp_ms));
        let baseline = self.baseline();
        let expected = match baseline {
            Baseline::Daily => daily_pred.unwrap_or(level),
            Baseline::Weekly => weekly_pred.unwrap_or(level),
            Baseline::Level => level,
        };

        // Scale: the streaming MAD of residuals, floored so a flat series does not
        // divide by zero and a near-flat one does not alarm on rounding.
        let typical = self.resid.mean.abs().max(level.abs());
        let floor = 1e-9 + 1e-3 * typical;
        let scale = match baseline {
            Baseline::Daily => self.daily.as_ref().map_or(self.resid.dev, |p| p.err),
            Baseline::Weekly => self.weekly.as_ref().map_or(self.resid.dev, |p| p.err),
            Baseline::Level => self.resid.dev,
        }
        .max(floor);
        let sigma = 1.2533 * scale;
        let r = x - expected;
        let z_point = r.abs() / sigma;

        let short_alpha = 0.25;
        let short = self.short_resid + short_alpha * (r - self.short_resid);
        let z_shift = short.abs() / (sigma * (short_alpha / (2.0 - short_alpha)).sqrt());

        let dx = x - self.last_x;
        let dscale = (1.2533 * self.diff.dev).max(floor);
        let z_diff = if have_history {
            (dx - self.diff.mean).abs() / dscale
        } else {
            0.0
        };

        let range = (self.max_seen - self.min_seen).max(0.0);
        let tol = 0.1 * range + sigma;
        let z_novel = if self.n > WARMUP && (x > self.max_seen + tol || x < self.min_seen - tol) {
            let beyond = if x > self.max_seen {
                x - self.max_seen
            } else {
                self.min_seen - x
            };
            3.0 + 3.0 * beyond / (range + sigma)
        } else {
            0.0
        };

        let fast = self.slope_fast + 0.05 * (dx - self.slope_fast);
        let z_trend = (fast - self.slope_slow).abs()
            / ((self.slope_dev * 1.2533).max(floor) * (0.05f64 / 1.95).sqrt());

        // Which way the point moved matters when the user said which way is bad.
        let up = r > 0.0;
        let direction_ok = self.config.higher_is_worse.is_none_or(|h| h == up);
        let experts = [
            (
                z_point,
                if up {
                    AnomalyKind::Spike
                } else {
                    AnomalyKind::Dip
                },
            ),
            (z_shift * 0.9, AnomalyKind::LevelShift),
            (
                z_diff * 0.8,
                if up {
                    AnomalyKind::Spike
                } else {
                    AnomalyKind::Dip
                },
            ),
            (z_trend * 0.5, AnomalyKind::TrendChange),
            (
                z_novel,
                if up {
                    AnomalyKind::Spike
                } else {
                    AnomalyKind::Dip
                },
            ),
        ];
        let (mut z, mut kind) =
            experts
                .iter()
                .copied()
                .fold(
                    (0.0, AnomalyKind::Spike),
                    |acc, e| if e.0 > acc.0 { e } else { acc },
                );
        if !direction_ok {
            z = 0.0;
        }
        if baseline != Baseline::Level && kind != AnomalyKind::LevelShift {
            // The level baseline would have found the point ordinary: the shape of the
            // day or week broke, not the level.
            let lvl_z = (x - level).abs() / (1.2533 * self.resid.dev.max(floor));
            if lvl_z < 2.0 && z_point > 3.0 {
                kind = AnomalyKind::SeasonalBreak;
            }
        }

        // Raw score: the surprise of z, in decades of improbability (z = 3 is 2.6,
        // z = 5 is 6.2), capped.
        let raw = if self.n < WARMUP {
            0.0
        } else {
            (-(2.0 * normal_tail(z)).max(1e-20).log10()).clamp(0.0, 20.0)
        };
        // Likelihood of the recent raw average under the long-run raw distribution:
        // a surprise only counts as much as it is rare for this series.
        let raw_short = self.raw_short + SHORT_ALPHA * (raw - self.raw_short);
        let sd = (self.raw_var * SHORT_ALPHA / (2.0 - SHORT_ALPHA))
            .sqrt()
            .max(0.05);
        let tail = normal_tail((raw_short - self.raw_mean) / sd).max(1e-300);
        let mut score = if self.n < 2 * WARMUP {
            0.0
        } else {
            ((-tail.log10()) / LIKELIHOOD_DECADES).clamp(0.0, 1.0)
        };
        // One event, one alarm: damp what follows a confident alarm for a while.
        if self.since_alarm < 100 && score < self.alarm_score + 0.1 {
            score *= 0.3 + 0.7 * (self.since_alarm as f64 / 100.0);
        }

        // --- learn ---
        // Winsorise only once the scale has been learned, or it could never grow.
        let clip = if self.n < WARMUP {
            f64::INFINITY
        } else {
            5.0 * sigma
        };
        let dclip = if self.n < WARMUP {
            f64::INFINITY
        } else {
            5.0 * dscale
        };
        let level_resid = x - level;
        if have_history {
            self.level_err += (1.0 / (self.n.min(1000) as f64)).max(0.01)
                * (level_resid.abs().min(clip) - self.level_err);
        }
        self.resid.update(level_resid.clamp(-clip, clip), 0.01);
        if have_history {
            self.diff.update(dx.clamp(-dclip, dclip), 0.01);
        }
        self.short_resid = short.clamp(-clip, clip);
        let fast_c = self.slope_fast + 0.05 * (dx.clamp(-dclip, dclip) - self.slope_fast);
        self.slope_dev += 0.01 * ((fast_c - self.slope_slow).abs() - self.slope_dev);
        self.slope_fast = fast_c;
        self.slope_slow += 0.005 * (fast_c - self.slope_slow);
        if let Some(p) = self.daily.as_mut() {
            p.learn(timestamp_ms, x, daily_pred, clip);
        }
        if let Some(p) = self.weekly.as_mut() {
            p.learn(timestamp_ms, x, weekly_pred, clip);
        }
        if self.recent.len() < RECENT {
            self.recent.push(x);
        } else {
            self.recent[self.recent_pos] = x;
            self.recent_pos = (self.recent_pos + 1) % RECENT;
        }
        self.min_seen = self.min_seen.min(x);
        self.max_seen = self.max_seen.max(x);
        if self.n >= WARMUP {
            let a = (1.0 / ((self.n - WARMUP + 1) as f64)).max(1.0 / 2000.0);
            let d = raw - self.raw_mean;
            self.raw_mean += a * d;
            self.raw_var = (1.0 - a) * (self.raw_var + a * d * d);
        }
        self.raw_short = raw_short;
        if score >= ALARM {
            self.since_alarm = 0;
            self.alarm_score = self.alarm_score.max(score);
        } else {
            self.since_alarm = self.since_alarm.saturating_add(1);
            if self.since_alarm >= 100 {
                self.alarm_score = 0.0;
            }
        }
        self.n += 1;
        self.last_ts = Some(timestamp_ms);
        self.last_x = x;

        let band = 3.0 * sigma;
        let anomalous = score >= ALARM;
        let reason = anomalous.then(|| self.reason(kind, x, expected, timestamp_ms));
        PointScore {
            score,
            expected,
            lower: expected - band,
            upper: expected + band,
            kind: anomalous.then_some(kind),
            reason,
        }
    }

    fn reason(&self, kind: AnomalyKind, x: f64, expected: f64, ts: TimestampMs) -> String {
        let pct = if expected.abs() > 1e-12 {
            format!(" {:.0}%", 100.0 * (x - expected).abs() / expected.abs())
        } else {
            String::new()
        };
        let dir = if x >= expected { "up" } else { "down" };
        let unit = self.config.unit.as_deref().unwrap_or("");
        let at = format_clock(ts);
        match kind {
            AnomalyKind::LevelShift => format!("level shift {dir}{pct} at {at}"),
            AnomalyKind::TrendChange => format!("trend change ({dir}) at {at}"),
            AnomalyKind::SeasonalBreak => {
                let which = match self.baseline() {
                    Baseline::Weekly => "weekly",
                    _ => "daily",
                };
                format!(
                    "{which} pattern broken at {at}: {x:.4}{unit}, expected {expected:.4}{unit}"
                )
            }
            AnomalyKind::Dip => {
                format!("dip to {x:.4}{unit} at {at}, expected {expected:.4}{unit}")
            }
            _ => format!("spike to {x:.4}{unit} at {at}, expected {expected:.4}{unit}"),
        }
    }
}
