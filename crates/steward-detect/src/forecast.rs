//! When will a series cross a threshold? A seasonal trend model: a daily or weekly
//! profile when the data show one (autocorrelation at the period's lag), and Holt's
//! linear exponential smoothing (ETS A,A,N) on what remains, its two smoothing weights
//! chosen by one-step squared error, with ETS's closed-form prediction interval.
//!
//! Written here rather than with augurs-mstl and augurs-ets: a resource's time to
//! exhaustion needs the recent trend and an honest interval, not a full MSTL
//! decomposition, and this keeps the build small on the two shared cores.

use serde::Serialize;
use steward_core::{Sample, TimestampMs};

/// What stops a forecast.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ForecastError {
    /// Fewer points than a trend needs.
    #[error("need at least {need} points to forecast, got {got}")]
    TooShort {
        /// The minimum.
        need: usize,
        /// What was given.
        got: usize,
    },
    /// The timestamps do not advance.
    #[error("the timestamps do not advance, so there is no time step to forecast with")]
    NoTimeStep,
    /// The threshold or horizon is not a usable number.
    #[error("{0}")]
    BadInput(String),
}

/// When the series is expected to cross the threshold.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Crossing {
    /// The expected crossing time (the forecast's mean path).
    pub at_ms: TimestampMs,
    /// The earliest plausible crossing (the 95% interval's near edge).
    pub earliest_ms: TimestampMs,
    /// The latest plausible crossing within the horizon (the interval's far edge), or
    /// the horizon's end when that edge does not cross within it.
    pub latest_ms: TimestampMs,
    /// True when the far edge does not cross within the horizon.
    pub latest_beyond_horizon: bool,
    /// True when the last point is already past the threshold.
    pub already_crossed: bool,
    /// `true` for a rise through the threshold, `false` for a fall.
    pub rising: bool,
    /// The trend, in value units per hour.
    pub slope_per_hour: f64,
    /// The seasonal period used, in ms, if any.
    pub period_ms: Option<i64>,
}

/// A forecast path with its 95% interval.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ForecastPath {
    /// Times of the forecast points.
    pub timestamps_ms: Vec<TimestampMs>,
    /// Expected values.
    pub mean: Vec<f64>,
    /// Interval low edge.
    pub lower: Vec<f64>,
    /// Interval high edge.
    pub upper: Vec<f64>,
    /// The trend, in value units per hour.
    pub slope_per_hour: f64,
    /// The seasonal period used, in ms, if any.
    pub period_ms: Option<i64>,
}

const MIN_POINTS: usize = 10;
/// At most this many forecast points; longer horizons are drawn at a coarser stride.
const MAX_STEPS: usize = 20_000;
const Z95: f64 = 1.96;

fn median(v: &mut [f64]) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    let mid = v.len() / 2;
    v.select_nth_unstable_by(mid, f64::total_cmp);
    v[mid]
}

struct Seasonal {
    period: usize,
    profile: Vec<f64>,
}

/// Picks a daily or weekly period when the detrended series correlates with itself at
/// that lag, and returns the mean profile by phase.
fn seasonal(y: &[f64], step_ms: i64) -> Option<Seasonal> {
    let n = y.len();
    // Detrend by differencing over the lag's candidates is noisy; use a straight line.
    let (a, b) = line_fit(y);
    let d: Vec<f64> = y
        .iter()
        .enumerate()
        .map(|(i, v)| v - (a + b * i as f64))
        .collect();
    let var: f64 = d.iter().map(|v| v * v).sum::<f64>() / n as f64;
    if var <= 0.0 {
        return None;
    }
    let mut best: Option<(f64, usize)> = None;
    for period_ms in [86_400_000i64, 7 * 86_400_000] {
        if step_ms <= 0 || period_ms % step_ms != 0 {
            continue;
        }
        let lag = (period_ms / step_ms) as usize;
        if lag < 2 || n < 2 * lag + 2 {
            continue;
        }
        let acf = d[lag..].iter().zip(&d).map(|(x, z)| x * z).sum::<f64>() / (n as f64 * var);
        if acf > 0.3 && best.is_none_or(|(b, _)| acf > b) {
            best = Some((acf, lag));
        }
    }
    let (_, period) = best?;
    let mut sum = vec![0.0; period];
    let mut cnt = vec![0usize; period];
    for (i, v) in d.iter().enumerate() {
        sum[i % period] += v;
        cnt[i % period] += 1;
    }
    let profile = sum
        .iter()
        .zip(&cnt)
        .map(|(s, &c)| s / c.max(1) as f64)
        .collect();
    Some(Seasonal { period, profile })
}

fn line_fit(y: &[f64]) -> (f64, f64) {
    let n = y.len() as f64;
    let mx = (n - 1.0) / 2.0;
    let my = y.iter().sum::<f64>() / n;
    let (mut sxy, mut sxx) = (0.0, 0.0);
    for (i, v) in y.iter().enumerate() {
        let dx = i as f64 - mx;
        sxy += dx * (v - my);
        sxx += dx * dx;
    }
    let b = if sxx > 0.0 { sxy / sxx } else { 0.0 };
    (my - b * mx, b)
}

/// Holt's linear method: returns (level, trend, alpha, beta, residual sd).
fn holt(y: &[f64]) -> (f64, f64, f64, f64, f64) {
    let mut best = (f64::INFINITY, 0.0, 0.0, 0.0, 0.0, 0.0);
    let init_n = y.len().min(10);
    let (a0, b0) = line_fit(&y[..init_n]);
    for &alpha in &[0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9] {
        for &beta in &[0.001, 0.01, 0.03, 0.1, 0.3] {
            let (mut l, mut t) = (a0, b0);
            let mut sse = 0.0;
            for &v in y {
                let pred = l + t;
                let e = v - pred;
                sse += e * e;
                let nl = pred + alpha * e;
                t += alpha * beta * e;
                l = nl;
            }
            if sse < best.0 {
                best = (sse, l, t, alpha, beta, (sse / y.len() as f64).sqrt());
            }
        }
    }
    (best.1, best.2, best.3, best.4, best.5)
}

/// A fitted model: what a forecast path is drawn from.
struct Model {
    season: Option<Seasonal>,
    level: f64,
    trend: f64,
    alpha: f64,
    beta: f64,
    sd: f64,
    step_ms: i64,
    last_ms: TimestampMs,
    /// Points fitted (the seasonal phase of the next step).
    n: usize,
    /// Steps to the horizon, and the stride between drawn points.
    steps: usize,
    stride: usize,
}

impl Model {
    fn fit(samples: &[Sample], horizon_ms: i64) -> Result<Model, ForecastError> {
        if samples.len() < MIN_POINTS {
            return Err(ForecastError::TooShort {
                need: MIN_POINTS,
                got: samples.len(),
            });
        }
        if horizon_ms <= 0 {
            return Err(ForecastError::BadInput(format!(
                "the horizon must be positive, got {horizon_ms} ms"
            )));
        }
        let mut diffs: Vec<f64> = samples
            .windows(2)
            .map(|w| (w[1].timestamp_ms - w[0].timestamp_ms) as f64)
            .filter(|d| *d > 0.0)
            .collect();
        let step_ms = median(&mut diffs) as i64;
        if step_ms <= 0 {
            return Err(ForecastError::NoTimeStep);
        }
        let mut y: Vec<f64> = samples.iter().map(|s| s.value).collect();
        let season = seasonal(&y, step_ms);
        if let Some(s) = &season {
            for (i, v) in y.iter_mut().enumerate() {
                *v -= s.profile[i % s.period];
            }
        }
        let (level, trend, alpha, beta, sd) = holt(&y);
        let steps = (horizon_ms / step_ms).max(1) as usize;
        Ok(Model {
            season,
            level,
            trend,
            alpha,
            beta,
            sd,
            step_ms,
            last_ms: samples[samples.len() - 1].timestamp_ms,
            n: samples.len(),
            steps,
            stride: steps.div_ceil(MAX_STEPS).max(1),
        })
    }

    /// The drawn steps ahead: every `stride`-th up to the horizon.
    fn horizons(&self) -> impl Iterator<Item = usize> + use<> {
        (self.stride..=self.steps).step_by(self.stride)
    }

    /// The time, mean and 95% half-width `h` steps ahead. ETS(A,A,N)'s forecast
    /// variance is `sd^2 (1 + sum_{j=1}^{h-1} (alpha (1 + beta j))^2)`; the sum in
    /// closed form, so a week of one-second steps costs no more than a minute of them.
    fn at(&self, h: usize) -> (TimestampMs, f64, f64) {
        let m = h.saturating_sub(1) as f64;
        let sum = m
            + self.beta * m * (m + 1.0)
            + self.beta * self.beta * m * (m + 1.0) * (2.0 * m + 1.0) / 6.0;
        let var_sum = self.alpha * self.alpha * sum;
        let s = self
            .season
            .as_ref()
            .map_or(0.0, |s| s.profile[(self.n + h - 1) % s.period]);
        let mean = self.level + self.trend * h as f64 + s;
        let half = Z95 * self.sd * (1.0 + var_sum).sqrt();
        let ts = self
            .last_ms
            .saturating_add(self.step_ms.saturating_mul(h as i64));
        (ts, mean, half)
    }

    /// Whether the mean path can reach `threshold` within the horizon at all: its
    /// trend is a line, so its extreme lies at the first or the last drawn step, and
    /// the seasonal profile adds at most its own extreme. Most resource series are
    /// nowhere near their limit; this answers for them without walking the path.
    fn may_reach(&self, threshold: f64, rising: bool) -> bool {
        let Some(last_h) = self.horizons().last() else {
            return false;
        };
        let line = |h: usize| self.level + self.trend * h as f64;
        let (lo, hi) = (line(self.stride), line(last_h));
        let (lo, hi) = (lo.min(hi), lo.max(hi));
        let (s_lo, s_hi) = self.season.as_ref().map_or((0.0, 0.0), |s| {
            s.profile
                .iter()
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
                    (a.min(v), b.max(v))
                })
        });
        // A hair of slack for rounding: the walk decides the close calls.
        let slack = 1e-9 * (threshold.abs() + hi.abs().max(lo.abs()) + 1.0);
        if rising {
            hi + s_hi + slack >= threshold
        } else {
            lo + s_lo - slack <= threshold
        }
    }

    fn slope_per_hour(&self) -> f64 {
        self.trend * 3_600_000.0 / self.step_ms as f64
    }

    fn period_ms(&self) -> Option<i64> {
        self.season.as_ref().map(|s| s.period as i64 * self.step_ms)
    }
}

/// Forecasts `samples` up to `horizon_ms` past the last point.
pub fn forecast(samples: &[Sample], horizon_ms: i64) -> Result<ForecastPath, ForecastError> {
    let model = Model::fit(samples, horizon_ms)?;
    let mut path = ForecastPath {
        timestamps_ms: Vec::new(),
        mean: Vec::new(),
        lower: Vec::new(),
        upper: Vec::new(),
        slope_per_hour: model.slope_per_hour(),
        period_ms: model.period_ms(),
    };
    for h in model.horizons() {
        let (ts, mean, half) = model.at(h);
        path.timestamps_ms.push(ts);
        path.mean.push(mean);
        path.lower.push(mean - half);
        path.upper.push(mean + half);
    }
    Ok(path)
}

/// When `samples` will cross `threshold` within `horizon_ms` after the last point, or
/// `None` when the expected path does not cross within the horizon. The same answer
/// as [`crossing_of`] on [`forecast`]'s path, without drawing the path: the watch
/// service asks this of every resource series, and a week's path is 20,000 points.
pub fn forecast_crossing(
    samples: &[Sample],
    threshold: f64,
    horizon_ms: i64,
) -> Result<Option<Crossing>, ForecastError> {
    if !threshold.is_finite() {
        return Err(ForecastError::BadInput(format!(
            "the threshold must be a finite number, got {threshold}"
        )));
    }
    let model = Model::fit(samples, horizon_ms)?;
    let found = Found {
        slope_per_hour: model.slope_per_hour(),
        period_ms: model.period_ms(),
    };
    let (last_ms, rising) = match standing(samples, threshold)? {
        Standing::Crossed { last_ms } => return Ok(Some(found.crossed_now(last_ms))),
        Standing::Away { last_ms, rising } => (last_ms, rising),
    };
    if !model.may_reach(threshold, rising) {
        return Ok(None);
    }
    let crosses = |v: f64| {
        if rising {
            v >= threshold
        } else {
            v <= threshold
        }
    };
    let (mut at, mut near, mut far) = (None, None, None);
    for h in model.horizons() {
        let (ts, mean, half) = model.at(h);
        let (near_v, far_v) = if rising {
            (mean + half, mean - half)
        } else {
            (mean - half, mean + half)
        };
        if near.is_none() && crosses(near_v) {
            near = Some(ts);
        }
        if at.is_none() && crosses(mean) {
            at = Some(ts);
        }
        if crosses(far_v) {
            // The far edge lies beyond the mean, which lies beyond the near edge: it
            // is the last of the three to cross.
            far = Some(ts);
            break;
        }
    }
    Ok(at.map(|at_ms| found.crossing(last_ms, horizon_ms, rising, at_ms, near, far)))
}

/// The crossing of `threshold` by a forecast path of `samples`.
pub fn crossing_of(
    samples: &[Sample],
    path: &ForecastPath,
    threshold: f64,
    horizon_ms: i64,
) -> Result<Option<Crossing>, ForecastError> {
    let found = Found {
        slope_per_hour: path.slope_per_hour,
        period_ms: path.period_ms,
    };
    let (last_ms, rising) = match standing(samples, threshold)? {
        Standing::Crossed { last_ms } => return Ok(Some(found.crossed_now(last_ms))),
        Standing::Away { last_ms, rising } => (last_ms, rising),
    };
    let crosses = |v: f64| {
        if rising {
            v >= threshold
        } else {
            v <= threshold
        }
    };
    let first = |v: &[f64]| {
        v.iter()
            .position(|&x| crosses(x))
            .map(|i| path.timestamps_ms[i])
    };
    let (near, far) = if rising {
        (&path.upper, &path.lower)
    } else {
        (&path.lower, &path.upper)
    };
    Ok(first(&path.mean)
        .map(|at_ms| found.crossing(last_ms, horizon_ms, rising, at_ms, first(near), first(far))))
}

/// Where the series stands against the threshold at its last point.
enum Standing {
    /// Past it, having come from below.
    Crossed { last_ms: TimestampMs },
    /// Not there yet: a rise would cross it, or a fall.
    Away { last_ms: TimestampMs, rising: bool },
}

fn standing(samples: &[Sample], threshold: f64) -> Result<Standing, ForecastError> {
    let Some(last) = samples.last() else {
        return Err(ForecastError::TooShort {
            need: MIN_POINTS,
            got: 0,
        });
    };
    // Above the threshold now counts as crossed only if the series was rising towards
    // it, i.e. most of the series lies below.
    if threshold < last.value {
        let below = samples.iter().filter(|s| s.value < threshold).count();
        if below * 2 > samples.len() {
            return Ok(Standing::Crossed {
                last_ms: last.timestamp_ms,
            });
        }
    }
    Ok(Standing::Away {
        last_ms: last.timestamp_ms,
        rising: last.value < threshold,
    })
}

/// What the model says besides the crossing times.
struct Found {
    slope_per_hour: f64,
    period_ms: Option<i64>,
}

impl Found {
    fn crossed_now(&self, last_ms: TimestampMs) -> Crossing {
        Crossing {
            at_ms: last_ms,
            earliest_ms: last_ms,
            latest_ms: last_ms,
            latest_beyond_horizon: false,
            already_crossed: true,
            rising: true,
            slope_per_hour: self.slope_per_hour,
            period_ms: self.period_ms,
        }
    }

    /// The crossing at `at_ms` of the mean path, its interval's near edge crossing at
    /// `near` and far edge at `far` (if they do within the horizon).
    fn crossing(
        &self,
        last_ms: TimestampMs,
        horizon_ms: i64,
        rising: bool,
        at_ms: TimestampMs,
        near: Option<TimestampMs>,
        far: Option<TimestampMs>,
    ) -> Crossing {
        let (latest_ms, beyond) = match far {
            Some(t) => (t.max(at_ms), false),
            None => (last_ms.saturating_add(horizon_ms), true),
        };
        Crossing {
            at_ms,
            earliest_ms: near.unwrap_or(at_ms).min(at_ms),
            latest_ms,
            latest_beyond_horizon: beyond,
            already_crossed: false,
            rising,
            slope_per_hour: self.slope_per_hour,
            period_ms: self.period_ms,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A disk filling at 0.5%/hour from 40%, with a daily wave and noise: it reaches 90%
    /// 100 hours after the start.
    fn disk(hours: i64) -> Vec<Sample> {
        let mut seed = 7u64;
        (0..hours * 12)
            .map(|i| {
                seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                let noise = ((seed >> 33) as f64 / (1u64 << 31) as f64 - 0.5) * 0.6;
                let t = i as f64 / 12.0;
                let wave = 2.0 * (2.0 * std::f64::consts::PI * t / 24.0).sin();
                Sample::new(i * 300_000, 40.0 + 0.5 * t + wave + noise)
            })
            .collect()
    }

    #[test]
    fn finds_a_known_crossing_time() {
        let s = disk(72);
        let c = forecast_crossing(&s, 90.0, 7 * 86_400_000)
            .unwrap()
            .unwrap();
        let hours = c.at_ms as f64 / 3_600_000.0;
        assert!((hours - 100.0).abs() < 3.0, "crossing at {hours} h");
        assert!(c.earliest_ms <= c.at_ms && c.at_ms <= c.latest_ms);
        assert!(
            (c.slope_per_hour - 0.5).abs() < 0.05,
            "{}",
            c.slope_per_hour
        );
        assert_eq!(c.period_ms, Some(86_400_000));
        assert!(c.rising && !c.already_crossed);
    }

    #[test]
    fn no_crossing_beyond_the_horizon_and_bad_input() {
        let s = disk(72);
        assert_eq!(forecast_crossing(&s, 90.0, 3_600_000).unwrap(), None);
        assert!(forecast_crossing(&s[..3], 90.0, 1).is_err());
        assert!(forecast_crossing(&s, f64::NAN, 1).is_err());
        let flat: Vec<Sample> = (0..50).map(|i| Sample::new(0, i as f64)).collect();
        assert_eq!(
            forecast_crossing(&flat, 90.0, 1),
            Err(ForecastError::NoTimeStep)
        );
    }

    #[test]
    fn the_crossing_without_a_path_is_the_crossing_on_the_path() {
        let falling: Vec<Sample> = disk(72)
            .iter()
            .map(|s| Sample::new(s.timestamp_ms, 100.0 - s.value))
            .collect();
        let fast: Vec<Sample> = (0..120)
            .map(|i| Sample::new(i * 1_000, 20.0 + 0.01 * i as f64 + (i % 3) as f64))
            .collect();
        let cases = [
            (disk(72), 90.0),
            (disk(72), 41.0),
            (disk(72), 1e9),
            (falling, 10.0),
            (fast.clone(), 100.0),
            (fast, 21.5),
        ];
        for (samples, threshold) in &cases {
            for horizon in [3_600_000, 7 * 86_400_000, 30 * 86_400_000] {
                let path = forecast(samples, horizon).unwrap();
                assert_eq!(
                    forecast_crossing(samples, *threshold, horizon).unwrap(),
                    crossing_of(samples, &path, *threshold, horizon).unwrap(),
                    "threshold {threshold}, horizon {horizon}"
                );
            }
        }
    }

    #[test]
    fn the_interval_sum_in_closed_form_is_the_sum() {
        let model = Model::fit(&disk(72), 7 * 86_400_000).unwrap();
        let mut sum = 0.0;
        for h in 1..5_000usize {
            if h >= 2 {
                let c = model.alpha * (1.0 + model.beta * (h - 1) as f64);
                sum += c * c;
            }
            let (_, _, half) = model.at(h);
            let want = Z95 * model.sd * (1.0 + sum).sqrt();
            assert!(
                (half - want).abs() <= 1e-9 * want,
                "h {h}: {half} vs {want}"
            );
        }
    }
}
