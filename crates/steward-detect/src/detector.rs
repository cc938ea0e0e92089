//! The streaming detector: one point at a time, bounded state, a score in `[0, 1]` from
//! the past alone.
//!
//! Each point is compared with several expectations, each an "expert" that knows one
//! shape of trouble:
//!
//! - the baseline: the robust local level (the median of the last few points) or, when
//!   the data show it explains the series better (its error a fifth below the level's
//!   to be taken, no worse to be kept), the daily or weekly profile learned per
//!   time-of-day bin, plus a local offset (points the detector alarmed on, and
//!   never-seen levels, are kept out of the profiles). Residuals are scaled by a
//!   winsorised exponentially weighted mean absolute deviation (a streaming MAD): one
//!   spike cannot inflate the scale that judges the next one;
//! - a level-shift test: the short average of residuals against what noise allows;
//! - rate of change: the step from the last point, less the step a seasonal baseline
//!   expects, against the usual such step;
//! - a trend test: a fast slope against a slow one;
//! - novelty: a value outside every value seen so far (with a tolerance);
//! - level novelty ([`novelty`]): a value in a bucket of a fixed grid that the series
//!   has never visited, which alone makes a report when the value is also at least
//!   one deviation from the expected one.
//!
//! The strongest surprise, as a number of standard deviations, is turned into a raw
//! score, and the final score is an anomaly *likelihood* in the manner of Numenta's
//! HTM detector: how improbable the recent average of raw scores is under their own
//! long-run distribution, on a log scale. That makes one threshold mean the same on a
//! calm series and a noisy one. A surprise that lasts longer than any before is a
//! record too, in the reported score. After a confident alarm the score is damped for
//! a while, and after a report the next ones are damped for [`REST`] points, so one
//! event raises one alarm and not fifty. A point escapes that rest only as a report of
//! a new event, once the reported one has had [`DEVELOP`] points to unfold: a new
//! departure from an alarm's hold that goes farther than the reported point, or a
//! departure more than [`FAR_RATIO`] times the reported one and the band.
//!
//! State is a few hundred numbers whatever the length of the series
//! ([`StreamingDetector::state_bytes`]); augurs' detectors work on whole batches, so
//! this one is written here.

use serde::{Deserialize, Serialize};
use steward_core::{AnomalyKind, TimestampMs};

use crate::time::format_clock;

mod novelty;
mod sorted;
use novelty::LevelNovelty;
use sorted::{RECENT, SortedRecent};

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

/// Time-of-day bins, at most (5-minute resolution).
const DAY_BINS_MAX: usize = 288;
/// A seasonal profile becomes the baseline when its error is below this fraction of
/// the level's...
const PROFILE_TAKE: f64 = 0.8;
/// ...and stays the baseline while its error is below this fraction.
const PROFILE_KEEP: f64 = 1.0;
/// Hour-of-week bins.
const WEEK_BINS: usize = 168;
const DAY_MS: i64 = 86_400_000;
const WEEK_MS: i64 = 7 * DAY_MS;
/// Points before any score above zero.
const WARMUP: u64 = 24;
/// The internal score from which an alarm damps the next ones.
const ALARM: f64 = 0.5;
/// The reported score from which a point gets a kind and a reason.
const REPORT: f64 = 0.5;
/// The weight of the newest raw score in their short average (about ten points, as
/// HTM's likelihood averages over).
const SHORT_ALPHA: f64 = 0.1;
/// Decades of improbability that make a score of one half.
const HALF_SCORE_DECADES: f64 = 5.0;
/// How much of the score rests on the recent surprise being a record.
const RECORD_WEIGHT: f64 = 0.5;
/// The half-life-like horizon, in points, of the record peak's decay.
const PEAK_HORIZON: f64 = 2000.0;
/// Points after an alarm during which smaller scores are damped.
const HOLD: u64 = 200;
/// The damping factor just after an alarm, rising linearly to 1 over the hold.
const HOLD_FLOOR: f64 = 0.6;
/// The weight of the slow level (for drift, i.e. trend changes).
const DRIFT_ALPHA: f64 = 0.01;
/// How much a drift counts against the other experts.
const TREND_WEIGHT: f64 = 1.0;
/// A departure this many times the current alarm's escapes its hold.
const ESCAPE_RATIO: f64 = 1.5;
/// The cap on a point's raw surprise, in decades (reached near 9.3 deviations).
const RAW_CAP: f64 = 20.0;
/// How much a single point's surprise counts against the short average's.
const INSTANT_WEIGHT: f64 = 1.0;
/// The reported score of a point at a level the series has never visited: above the
/// report threshold, since a user wants to see it, and below a confident surprise.
const NOVEL_SCORE: f64 = 0.6;
/// The departure from the expected value, in deviations, below which a never-seen
/// level is not reported.
const NOVEL_MIN_Z: f64 = 1.0;
/// The time at the start of a series whose runs of capped surprises do not set the
/// record of their length: with no daily profile yet, a daily pattern's every edge is
/// a surprise against the plain level, for as long as the edge lasts. Measured in time,
/// not points: a series with an irregular step (traffic sensors) has more points in
/// its first day than its smallest step suggests.
const RUN_LEARN_MS: i64 = DAY_MS;
/// Points after a report during which later scores are damped, from zero rising
/// linearly back to full: one event, one report (NAB, like a user, pays for the first
/// detection of an event and charges for each repeat).
const REST: u64 = 150;
/// Points after a report during which even a departure farther out than the reported
/// one is that event developing (a drop falling in steps, a burst still climbing, a
/// second spike right behind the first), not a new event: it stays in the rest. Two
/// hours at the common five-minute step.
const DEVELOP: u64 = 24;
/// A departure from the reported point's expected value this many times the reported
/// departure, and this many times the band, is a new event whatever came before it:
/// a minor report (a first visit to a new level, one deviation out) must not silence
/// the crash that follows it within the rest.
const FAR_RATIO: f64 = 2.0;

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
    /// The last timestamp binned and its bin: each point asks twice (predict, then
    /// learn), and a bin costs two 64-bit divisions.
    #[serde(skip)]
    last_bin: std::cell::Cell<Option<(TimestampMs, usize)>>,
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
            last_bin: std::cell::Cell::new(None),
        }
    }

    fn bin(&self, ts: TimestampMs) -> usize {
        if let Some((t, b)) = self.last_bin.get() {
            if t == ts {
                return b;
            }
        }
        let bins = self.level.len() as i64;
        let phase = ts.rem_euclid(self.period_ms);
        let b = ((phase * bins / self.period_ms) as usize).min(self.level.len() - 1);
        self.last_bin.set(Some((ts, b)));
        b
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
    /// The earliest timestamp seen: where the first day starts.
    #[serde(default)]
    first_ts: Option<TimestampMs>,
    last_x: f64,
    step_ms: i64,
    recent: Vec<f64>,
    recent_pos: usize,
    /// The recent values sorted, for their median.
    #[serde(skip)]
    sorted: SortedRecent,
    /// Residuals against the level baseline.
    resid: EwStat,
    /// One-step differences.
    diff: EwStat,
    /// Short average of residuals, for level shifts.
    short_resid: f64,
    /// The usual size of that short average: residuals are correlated (the baseline
    /// is built from the same recent points), so its scale is learned, not assumed.
    short_dev: f64,
    /// A slow level and the usual distance of the robust level from it: a drift far
    /// beyond the usual is a trend change.
    slow_level: f64,
    drift_dev: f64,
    level_err: f64,
    min_seen: f64,
    max_seen: f64,
    daily: Option<Profile>,
    weekly: Option<Profile>,
    /// Long-run mean and variance of raw scores, and their short average.
    raw_mean: f64,
    raw_var: f64,
    raw_short: f64,
    /// The largest recent short average of raw scores, decaying slowly.
    raw_peak: f64,
    /// Points since the last alarm, and its score.
    since_alarm: u64,
    alarm_score: f64,
    /// The strongest departure (in deviations) of the current alarm.
    #[serde(default)]
    alarm_z: f64,
    /// The largest raw surprise of a single point in the current alarm.
    #[serde(default)]
    alarm_raw: f64,
    /// The excursion behind the last alarm: the baseline it left, the band around that
    /// baseline, the side it went to, and whether the series is still out there.
    #[serde(default)]
    exc_base: f64,
    #[serde(default)]
    exc_band: f64,
    #[serde(default)]
    exc_up: bool,
    #[serde(default)]
    exc_live: bool,
    /// The farthest the excursion went from its baseline.
    #[serde(default)]
    exc_peak: f64,
    /// The previous point's departure from that baseline.
    #[serde(default)]
    exc_prev: f64,
    /// Which levels the series has visited.
    #[serde(default)]
    novelty: LevelNovelty,
    /// Points since the last reported anomaly.
    #[serde(default = "never")]
    since_report: u64,
    /// The expected value at the last report, and that point's departure from it.
    #[serde(default)]
    report_base: f64,
    #[serde(default)]
    report_dep: f64,
    /// The baseline the last point was judged against.
    #[serde(default)]
    last_baseline: Option<Baseline>,
    /// The expected value of the last point.
    #[serde(default)]
    prev_expected: f64,
    /// The current run of consecutive points at the raw cap, the longest such run that
    /// ended after the first day, and whether the current run has been reported.
    #[serde(default)]
    cap_run: u32,
    #[serde(default)]
    cap_run_record: u32,
    #[serde(default)]
    cap_run_reported: bool,
}

/// A count of points since an event that has not happened.
fn never() -> u64 {
    u64::MAX
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
    let (x, poly) = erfc_factor(z);
    0.5 * poly * (-x * x).exp()
}

/// For `z >= 0`: `x = z / sqrt 2` and the polynomial factor of Abramowitz and Stegun
/// 7.1.26, `erfc(x) ~ poly * exp(-x^2)`.
fn erfc_factor(z: f64) -> (f64, f64) {
    let x = z / std::f64::consts::SQRT_2;
    let t = 1.0 / (1.0 + 0.327_591_1 * x);
    let poly = t
        * (0.254_829_592
            + t * (-0.284_496_736
                + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
    (x, poly)
}

/// `-log10 Q(z)`: the same approximation counted in decades, without the `exp` for
/// `z >= 0` (and so without its underflow past `z` near 38). Three of these per point
/// were a tenth of the watch service's scoring time as `log10(normal_tail(z))`.
fn tail_decades(z: f64) -> f64 {
    use std::f64::consts::LOG10_E;
    if z < 0.0 {
        // -log10(1 - Q(-z)).
        return -(-normal_tail(-z)).ln_1p() * LOG10_E;
    }
    let (x, poly) = erfc_factor(z);
    x * x * LOG10_E - (0.5 * poly).log10()
}

impl StreamingDetector {
    /// A detector with no history.
    pub fn new(config: DetectorConfig) -> Self {
        StreamingDetector {
            config,
            n: 0,
            last_ts: None,
            first_ts: None,
            last_x: 0.0,
            step_ms: 0,
            recent: Vec::with_capacity(RECENT),
            recent_pos: 0,
            sorted: SortedRecent::default(),
            resid: EwStat::default(),
            diff: EwStat::default(),
            short_resid: 0.0,
            short_dev: 0.0,
            slow_level: 0.0,
            drift_dev: 0.0,
            level_err: 0.0,
            min_seen: f64::INFINITY,
            max_seen: f64::NEG_INFINITY,
            daily: None,
            weekly: None,
            raw_mean: 0.0,
            raw_var: 0.0,
            raw_short: 0.0,
            raw_peak: 0.0,
            since_alarm: u64::MAX,
            alarm_score: 0.0,
            alarm_z: 0.0,
            alarm_raw: 0.0,
            exc_base: 0.0,
            exc_band: 0.0,
            exc_up: false,
            exc_live: false,
            exc_peak: 0.0,
            exc_prev: 0.0,
            novelty: LevelNovelty::default(),
            since_report: never(),
            report_base: 0.0,
            report_dep: 0.0,
            last_baseline: None,
            prev_expected: 0.0,
            cap_run: 0,
            cap_run_record: 0,
            cap_run_reported: false,
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
            + self.novelty.heap_bytes()
    }

    fn median_recent(&mut self) -> f64 {
        if !self.sorted.matches(&self.recent) {
            self.sorted.rebuild(&self.recent);
        }
        self.sorted.median().unwrap_or(self.last_x)
    }

    /// Puts `x` in the ring of recent values (and their sorted copy).
    fn remember_recent(&mut self, x: f64) {
        if !self.sorted.matches(&self.recent) {
            self.sorted.rebuild(&self.recent);
        }
        if self.recent.len() < RECENT {
            self.recent.push(x);
            self.sorted.replace(None, x);
        } else {
            let old = std::mem::replace(&mut self.recent[self.recent_pos], x);
            self.recent_pos = (self.recent_pos + 1) % RECENT;
            self.sorted.replace(Some(old), x);
        }
    }

    fn baseline(&self) -> Baseline {
        let level = self.level_err;
        // Hysteresis: a profile must beat the level by a fifth to be taken, and is kept
        // while it does no worse. Without it the choice flaps on a series where the two
        // are close (a noisy square wave: the level's misses at each edge against the
        // profile's jitter), and every flap back to the level scores that day's edge
        // as a surprise, which teaches the likelihood that surprises are usual.
        let keep = self.last_baseline.is_some_and(|b| b != Baseline::Level);
        let ratio = if keep { PROFILE_KEEP } else { PROFILE_TAKE };
        let pick = |p: &Option<Profile>| {
            p.as_ref()
                .filter(|p| p.err_n > 200 && p.err < ratio * level)
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
        // The earliest timestamp seen. A detector restored from a state saved before
        // it was kept has learned already: its first day is long over.
        let first_ts = match self.first_ts {
            Some(first) => first.min(timestamp_ms),
            None if self.n > 0 => TimestampMs::MIN,
            None => timestamp_ms,
        };
        self.first_ts = Some(first_ts);
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

        // The grid does not depend on the rest of the state; asked first, so that a
        // point at a never-seen level does not teach the seasonal profiles either.
        let level_novel = self.novelty.observe(x);
        let have_history = !self.recent.is_empty();
        let level = if have_history {
            self.median_recent()
        } else {
            x
        };
        let daily_pred = self.daily.as_ref().and_then(|p| p.predict(timestamp_ms));
        let weekly_pred = self.weekly.as_ref().and_then(|p| p.predict(timestamp_ms));
        let baseline = self.baseline();
        let same_baseline = self.last_baseline == Some(baseline);
        if self.last_baseline.is_some_and(|b| b != baseline) {
            // The short average of residuals against the old baseline says nothing
            // about a shift against the new one (a two-state series' residuals
            // against its median are ±half the swing; against its profile, noise).
            self.short_resid = 0.0;
        }
        self.last_baseline = Some(baseline);
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
        let z_shift = short.abs() / (sigma * (short_alpha / (2.0 - short_alpha)).sqrt()).max(floor);

        // The step is judged net of the step the baseline itself expects: a daily
        // profile expects the edges of its day, and an edge that comes on time is not
        // a surprise (without this, every edge of a square wave was a capped one, and
        // the likelihood learned that such surprises are usual).
        let expected_step = if same_baseline && baseline != Baseline::Level {
            expected - self.prev_expected
        } else {
            0.0
        };
        self.prev_expected = expected;
        let dx = x - self.last_x - expected_step;
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

        let drift = level - self.slow_level;
        let z_trend = if self.n > WARMUP {
            drift.abs() / (1.2533 * self.drift_dev).max(floor)
        } else {
            0.0
        };

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
            (z_shift, AnomalyKind::LevelShift),
            (z_trend * TREND_WEIGHT, AnomalyKind::TrendChange),
            (
                z_diff,
                if up {
                    AnomalyKind::Spike
                } else {
                    AnomalyKind::Dip
                },
            ),
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
        if baseline != Baseline::Level && matches!(kind, AnomalyKind::Spike | AnomalyKind::Dip) {
            // Against the plain level the point is less odd than against the profile:
            // the shape of the day or week broke, not the level.
            let lvl_z = (x - level).abs() / (1.2533 * self.resid.dev.max(floor));
            if lvl_z < z_point {
                kind = AnomalyKind::SeasonalBreak;
            }
        }

        // Raw score: the surprise of z, in decades of improbability (z = 3 is 2.6,
        // z = 5 is 6.2), capped.
        let raw = if self.n < WARMUP {
            0.0
        } else {
            (tail_decades(z) - std::f64::consts::LOG10_2)
                .min(20.0)
                .clamp(0.0, RAW_CAP)
        };
        // Likelihood of the recent raw average under the long-run raw distribution:
        // a surprise only counts as much as it is rare for this series.
        let short_alpha = SHORT_ALPHA;
        let raw_short = self.raw_short + short_alpha * (raw - self.raw_short);
        let sd = (self.raw_var * short_alpha / (2.0 - short_alpha))
            .sqrt()
            .max(0.05);
        let short_decades = tail_decades((raw_short - self.raw_mean) / sd).min(300.0);
        let mut score = if self.n < 2 * WARMUP {
            0.0
        } else {
            // A tail of one half is no evidence at all.
            let short = short_decades;
            // A lone extreme point counts at once, judged against single raw scores.
            let sd_one = self.raw_var.sqrt().max(0.05);
            // ...beyond what the largest of this many ordinary points would reach.
            let seen = if self.n >= 10_000 {
                4.0
            } else {
                (self.n as f64).log10()
            };
            let one = tail_decades((raw - self.raw_mean) / sd_one)
                .min(300.0)
                .min(raw - seen);
            let decades = (short.max(INSTANT_WEIGHT * one) - std::f64::consts::LOG10_2).max(0.0);
            (decades / (decades + HALF_SCORE_DECADES)).clamp(0.0, 1.0)
        };
        // One event, one alarm: after a confident alarm, damp what follows for a while,
        // but only the same excursion. While the series is still away from the
        // baseline the alarm left, or back near it with only the short average of raw
        // scores still raised, later points are its echo. Once it has come back, a new
        // departure from that baseline that goes farther than the last one did, and
        // holds for a second point (a lone spike in the hold is still an echo), is a
        // new event: it is not damped, and it counts as a record even when both
        // excursions hit the cap of the raw surprise.
        let dep = x - self.exc_base;
        let still_out =
            self.exc_live && (dep > self.exc_band) == self.exc_up && dep.abs() > self.exc_band;
        let new_departure = self.since_alarm < HOLD
            && !still_out
            && dep.abs() > self.exc_band.max(self.exc_peak)
            && self.exc_prev * dep > 0.0
            && self.exc_prev.abs() > self.exc_band;
        // A record: the recent surprise against the largest one seen lately.
        let peak = self.raw_peak.max(self.raw_mean + 3.0 * sd);
        let mut record = raw_short / (raw_short + peak).max(1e-12);
        if new_departure {
            record = record.max(dep.abs() / (dep.abs() + self.exc_peak).max(1e-12));
        }
        // A surprise that lasts longer than any before is a record of its own, even when
        // every point of it sits at the raw cap, where neither the point's surprise nor
        // the short average's record can grow: a daily wave that fails to jump is a run
        // of capped points longer than each day's edges. The run is measured against
        // the longest earlier run (there must be one), and only until it is reported.
        // It counts in the reported score only: the alarm, its hold and what the
        // profiles learn go on from the score without it (fed to them, it raised the
        // alarm earlier in the run, and the hold then damped the rest of the run as
        // its echo).
        let capped = raw >= RAW_CAP;
        let cap_run = if capped {
            self.cap_run.saturating_add(1)
        } else {
            0
        };
        let long_run = capped
            && !self.cap_run_reported
            && self.cap_run_record > 0
            && cap_run > self.cap_run_record;
        let shown_record = if long_run {
            let run = f64::from(cap_run);
            record.max(run / (run + f64::from(self.cap_run_record)))
        } else {
            record
        };
        let mut shown = (1.0 - RECORD_WEIGHT) * score + RECORD_WEIGHT * shown_record * score.sqrt();
        score = (1.0 - RECORD_WEIGHT) * score + RECORD_WEIGHT * record * score.sqrt();
        // A departure far larger than the alarm's own is a new event too.
        let echo = z < ESCAPE_RATIO * self.alarm_z && !new_departure;
        // A point may outscore the alarm and escape its hold only if it is itself as
        // surprising as the alarm's strongest point: an ordinary point just after a
        // spike scores high through the short average of raw scores, which the spike
        // raised, and that is the spike's echo, not a new event. A growing event
        // whose every point is at the raw cap still passes.
        let outscores = score >= self.alarm_score + 0.1 && raw >= self.alarm_raw;
        if self.since_alarm < HOLD && !outscores && echo {
            let damp = HOLD_FLOOR + (1.0 - HOLD_FLOOR) * (self.since_alarm as f64 / HOLD as f64);
            score *= damp;
            shown *= damp;
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
        let sclip = if self.n < WARMUP {
            f64::INFINITY
        } else {
            5.0 * self.short_dev
        };
        self.short_dev +=
            (1.0 / (self.n + 1) as f64).max(0.01) * (short.abs().min(sclip) - self.short_dev);
        if self.n == 0 {
            self.slow_level = x;
        }
        let dclip_drift = if self.n < WARMUP {
            f64::INFINITY
        } else {
            5.0 * self.drift_dev.max(floor)
        };
        self.drift_dev += (1.0 / (self.n + 1) as f64).max(DRIFT_ALPHA)
            * (drift.abs().min(dclip_drift) - self.drift_dev);
        self.slow_level += DRIFT_ALPHA
            * (x.clamp(self.slow_level - clip, self.slow_level + clip) - self.slow_level);
        // A point the detector alarmed on, or at a level the series never visited, does
        // not teach the seasonal profiles (neither their bins nor their error): the
        // winsorising clip is 5σ, too wide on a wide-spread series to keep an anomaly
        // out, and a learned anomaly alarms again at the same clock time a day (or a
        // week) later.
        if score < ALARM && !level_novel {
            if let Some(p) = self.daily.as_mut() {
                p.learn(timestamp_ms, x, daily_pred, clip);
            }
            if let Some(p) = self.weekly.as_mut() {
                p.learn(timestamp_ms, x, weekly_pred, clip);
            }
        }
        self.remember_recent(x);
        self.min_seen = self.min_seen.min(x);
        self.max_seen = self.max_seen.max(x);
        if self.n >= WARMUP {
            let a = (1.0 / ((self.n - WARMUP + 1) as f64)).max(1.0 / 2000.0);
            let d = raw - self.raw_mean;
            self.raw_mean += a * d;
            self.raw_var = (1.0 - a) * (self.raw_var + a * d * d);
        }
        self.raw_short = raw_short;
        if self.n >= 2 * WARMUP {
            self.raw_peak = (self.raw_peak * (1.0 - 1.0 / PEAK_HORIZON)).max(raw_short);
        }
        if !capped {
            // A run ends: it sets the record unless it ended within the first day.
            if timestamp_ms.saturating_sub(first_ts) >= RUN_LEARN_MS {
                self.cap_run_record = self.cap_run_record.max(self.cap_run);
            }
            self.cap_run_reported = false;
        }
        self.cap_run = cap_run;
        if self.exc_live && !still_out {
            self.exc_live = false;
        }
        if still_out {
            self.exc_peak = self.exc_peak.max(dep.abs());
        }
        self.exc_prev = dep;
        if score >= ALARM {
            if !still_out {
                self.exc_base = expected;
                self.exc_band = 3.0 * sigma;
                self.exc_up = r > 0.0;
                self.exc_live = true;
                self.exc_peak = r.abs();
            }
            // A fresh alarm (not one inside the last one's hold) starts its own measure
            // of departure. The test must be made before the count restarts: made
            // after it, it never held, and the largest departure of any alarm ever
            // raised stayed the bar that a later event had to beat to escape its hold.
            let fresh = self.since_alarm >= HOLD;
            self.since_alarm = 0;
            self.alarm_z = if fresh { z } else { self.alarm_z.max(z) };
            self.alarm_raw = if fresh { raw } else { self.alarm_raw.max(raw) };
            self.alarm_score = self.alarm_score.max(score);
        } else {
            if self.since_alarm < HOLD {
                self.alarm_z = self.alarm_z.max(z);
                self.alarm_raw = self.alarm_raw.max(raw);
            }
            self.since_alarm = self.since_alarm.saturating_add(1);
            if self.since_alarm >= HOLD {
                self.alarm_score = 0.0;
            }
        }
        self.n += 1;
        self.last_ts = Some(timestamp_ms);
        self.last_x = x;

        // Report on a calmer scale than the one the detector reasons on: 0.5 out means
        // twice the evidence of the internal alarm, so a default threshold of 0.5 stays
        // quiet on plain noise. The map is monotone, so rankings (and NAB) are unchanged.
        let evidence = HALF_SCORE_DECADES * shown / (1.0 - shown).max(1e-12);
        let mut score = (evidence / (evidence + 2.0 * HALF_SCORE_DECADES)).clamp(0.0, 1.0);
        // A never-seen level is material only when the point is also away from what
        // was expected: a slow drift or a small new high that the baseline follows
        // crosses into new buckets without being news.
        let novel = level_novel && direction_ok && z_point >= NOVEL_MIN_Z;
        // When the new level is what makes the report, the reason says so.
        let novel_reason = novel && score < NOVEL_SCORE;
        if novel {
            score = score.max(NOVEL_SCORE);
        }
        // After a report, damp what follows: the echo of the same event, and the
        // other levels a new regime visits for the first time. A new departure that
        // goes farther than the last one and holds (a dip, then the outage) is a new
        // event and is not damped, unless it goes no farther than the reported point
        // went, the same way: then it is the reported event again (a spiky series
        // spiking as high as before). A never-seen level alone is not enough to
        // escape: a burst of counts climbs through a new level at each point, and
        // letting each one past the rest reported one event several times. Nor does a
        // departure in the first points after the report, however far: the reported
        // event is still unfolding (a staged drop reported at each step). And a new
        // event escapes only as a report: a new departure whose own score is below the
        // report level is not reported either way, and undamped it stood out of the
        // rest as the one high score after the report (a second spike on a spiky
        // series, a little higher than the reported one), which a lower threshold
        // then counted as a second alarm. A departure far beyond the reported one (and
        // the band) is new whether or not an alarm's hold stood behind the report: a
        // report on a never-seen level alone raises no alarm, and its rest silenced the
        // machine's crash to a fraction of that level hours later.
        let dep = x - self.report_base;
        let repeat = dep * self.report_dep > 0.0 && dep.abs() <= self.report_dep.abs();
        let far = dep.abs() > FAR_RATIO * self.report_dep.abs().max(3.0 * sigma);
        let new_event =
            (new_departure || far) && !repeat && self.since_report >= DEVELOP && score >= REPORT;
        if self.since_report < REST && !new_event {
            score *= self.since_report as f64 / REST as f64;
        }
        if score >= REPORT && capped {
            self.cap_run_reported = true;
        }
        if score >= REPORT {
            self.since_report = 0;
            self.report_base = expected;
            self.report_dep = x - expected;
        } else {
            self.since_report = self.since_report.saturating_add(1);
        }
        let band = 3.0 * sigma;
        let anomalous = score >= REPORT;
        if novel_reason {
            kind = if x >= expected {
                AnomalyKind::Spike
            } else {
                AnomalyKind::Dip
            };
        }
        let reason = anomalous.then(|| {
            if novel_reason {
                let unit = self.config.unit.as_deref().unwrap_or("");
                format!(
                    "new level {x:.4}{unit} at {}, never seen before (expected {expected:.4}{unit})",
                    format_clock(timestamp_ms)
                )
            } else {
                self.reason(kind, x, expected, timestamp_ms)
            }
        });
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

#[cfg(test)]
mod tests;
