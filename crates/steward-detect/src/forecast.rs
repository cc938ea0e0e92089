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

/// Forecasts `samples` up to `horizon_ms` past the last point.
pub fn forecast(samples: &[Sample], horizon_ms: i64) -> Result<ForecastPath, ForecastError> {
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
    let y: Vec<f64> = samples.iter().map(|s| s.value).collect();
    let season = seasonal(&y, step_ms);
    let deseason: Vec<f64> = match &season {
        Some(s) => y
            .iter()
            .enumerate()
            .map(|(i, v)| v - s.profile[i % s.period])
            .collect(),
        None => y.clone(),
    };
    let (level, trend, alpha, beta, sd) = holt(&deseason);
    let steps = (horizon_ms / step_ms).max(1) as usize;
    let stride = steps.div_ceil(MAX_STEPS).max(1);
    let last = samples[samples.len() - 1].timestamp_ms;
    let n = y.len();
    let mut path = ForecastPath {
        timestamps_ms: Vec::new(),
        mean: Vec::new(),
        lower: Vec::new(),
        upper: Vec::new(),
        slope_per_hour: trend * 3_600_000.0 / step_ms as f64,
        period_ms: season.as_ref().map(|s| s.period as i64 * step_ms),
    };
    // ETS(A,A,N) forecast variance: sd^2 (1 + sum_{j<h} (alpha (1 + beta j))^2).
    let mut var_sum = 0.0;
    let mut h_done = 0usize;
    let mut h = stride;
    while h <= steps {
        for j in h_done..h {
            if j >= 1 {
                let c = alpha * (1.0 + beta * j as f64);
                var_sum += c * c;
            }
        }
        h_done = h;
        let s = season
            .as_ref()
            .map_or(0.0, |s| s.profile[(n + h - 1) % s.period]);
        let mean = level + trend * h as f64 + s;
        let half = Z95 * sd * (1.0 + var_sum).sqrt();
        path.timestamps_ms
            .push(last.saturating_add(step_ms.saturating_mul(h as i64)));
        path.mean.push(mean);
        path.lower.push(mean - half);
        path.upper.push(mean + half);
        h += stride;
    }
    Ok(path)
}

/// When `samples` will cross `threshold` within `horizon_ms` after the last point, or
/// `None` when the expected path does not cross within the horizon.
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
    let path = forecast(samples, horizon_ms)?;
    crossing_of(samples, &path, threshold, horizon_ms)
}

/// The crossing of `threshold` by a forecast path of `samples`.
pub fn crossing_of(
    samples: &[Sample],
    path: &ForecastPath,
    threshold: f64,
    horizon_ms: i64,
) -> Result<Option<Crossing>, ForecastError> {
    let Some(last) = samples.last() else {
        return Err(ForecastError::TooShort {
            need: MIN_POINTS,
            got: 0,
        });
    };
    let rising = last.value < threshold;
    let already = if threshold >= last.value {
        false
    } else {
        // Above the threshold now: that counts as crossed only if the series was
        // rising towards it, i.e. most of the series lies below.
        let below = samples.iter().filter(|s| s.value < threshold).count();
        below * 2 > samples.len()
    };
    if already {
        return Ok(Some(Crossing {
            at_ms: last.timestamp_ms,
            earliest_ms: last.timestamp_ms,
            latest_ms: last.timestamp_ms,
            latest_beyond_horizon: false,
            already_crossed: true,
            rising: true,
            slope_per_hour: path.slope_per_hour,
            period_ms: path.period_ms,
        }));
    }
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
    let Some(at_ms) = first(&path.mean) else {
        return Ok(None);
    };
    let (near, far) = if rising {
        (&path.upper, &path.lower)
    } else {
        (&path.lower, &path.upper)
    };
    let earliest_ms = first(near).unwrap_or(at_ms).min(at_ms);
    let (latest_ms, beyond) = match first(far) {
        Some(t) => (t.max(at_ms), false),
        None => (last.timestamp_ms.saturating_add(horizon_ms), true),
    };
    Ok(Some(Crossing {
        at_ms,
        earliest_ms,
        latest_ms,
        latest_beyond_horizon: beyond,
        already_crossed: false,
        rising,
        slope_per_hour: path.slope_per_hour,
        period_ms: path.period_ms,
    }))
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
}
