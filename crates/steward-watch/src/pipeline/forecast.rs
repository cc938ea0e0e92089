//! Forecasts: gauges that trend toward a limit get a time-to-exhaustion estimate, and
//! an exhaustion anomaly when it falls under the warning horizon.

use std::collections::VecDeque;
use std::time::Instant;

use serde::Serialize;
use steward_core::{Sample, SeriesKey, TimestampMs};

/// Points kept per forecast series.
const WINDOW: usize = 120;
/// Fewest points a forecast is made from.
const MIN_POINTS: usize = 10;
/// How many times the window's span a forecast may reach ahead and still warn.
const EXTRAPOLATION: i64 = 3;
/// The least data time between two forecasts of one series. A forecast fits trend and
/// seasonality over the window (tens of microseconds); doing that for every point of a
/// series scraped every second took three quarters of the pipeline at 10^5 points/s,
/// and a time to exhaustion measured in hours does not move in a minute.
const FORECAST_EVERY_MS: i64 = 60_000;
/// Data time a due forecast waits before it asks the budget again, when it had none.
const RETRY_MS: i64 = 10_000;

/// A cap on the forecaster's fits per second of wall time, shared by every series.
///
/// The minute of data time between two fits of a series bounds the work per series,
/// but not per second: when data arrives faster than real time (a backfill, a burst
/// after an outage, remote write from a Prometheus that fell behind) every resource
/// series comes due at once, and the fits (tens of microseconds each) took most of
/// the pipeline. A token bucket keeps them to a small share of one core; a series
/// whose fit is deferred keeps its last forecast and asks again a little later.
#[derive(Debug)]
pub struct FitBudget {
    per_second: f64,
    tokens: f64,
    last: Instant,
    /// Fits deferred for want of budget.
    pub deferred: u64,
}

impl FitBudget {
    /// The pipeline's budget: a fit with its crossing search takes up to ~60 µs
    /// (measured under remote-write load), so this is under 4% of a core.
    pub const PER_SECOND: f64 = 600.0;

    /// A budget of `per_second` fits, with a second's worth ready at once.
    pub fn new(per_second: f64) -> FitBudget {
        FitBudget {
            per_second,
            tokens: per_second.max(1.0),
            last: Instant::now(),
            deferred: 0,
        }
    }

    /// Takes one fit if the budget has it.
    fn take(&mut self) -> bool {
        if self.tokens < 1.0 {
            let now = Instant::now();
            let refill = now.duration_since(self.last).as_secs_f64() * self.per_second;
            self.tokens = (self.tokens + refill).min(self.per_second.max(1.0));
            self.last = now;
        }
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            self.deferred += 1;
            false
        }
    }
}

/// A resource's forecast.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Forecast {
    /// The series id.
    pub series_id: i64,
    /// The series.
    pub series: SeriesKey,
    /// The limit it runs out at.
    pub limit: f64,
    /// Its latest value.
    pub current: f64,
    /// Growth per hour, from a least-squares line over recent points.
    pub slope_per_hour: f64,
    /// When the line crosses the limit, if it rises.
    pub exhausted_at_ms: Option<TimestampMs>,
    /// Time of the latest point.
    pub as_of_ms: TimestampMs,
    /// True when `exhausted_at_ms` is within the warning horizon.
    pub warning: bool,
}

/// The limit a series runs out at, judged from its name and values: ratios of disk,
/// memory or pool usage at 1, percentages at 100.
pub fn limit_for(key: &SeriesKey, value: f64) -> Option<f64> {
    const WORDS: [&str; 10] = [
        "disk",
        "filesystem",
        "fs_",
        "memory",
        "mem_",
        "pool",
        "usage",
        "utilization",
        "utilisation",
        "inode",
    ];
    let name = key.name.to_ascii_lowercase();
    if !WORDS.iter().any(|w| name.contains(w)) || name.ends_with("_total") {
        return None;
    }
    if name.contains("ratio") || name.contains("fraction") || (0.0..=1.0).contains(&value) {
        Some(1.0)
    } else if name.contains("percent") || name.contains("pct") || (0.0..=100.0).contains(&value) {
        Some(100.0)
    } else {
        None
    }
}

/// Recent points of one resource series.
#[derive(Debug, Clone)]
pub struct Tracker {
    limit: f64,
    points: VecDeque<(TimestampMs, f64)>,
    last_forecast: TimestampMs,
}

impl Tracker {
    /// A tracker for a series that runs out at `limit`.
    pub fn new(limit: f64) -> Tracker {
        Tracker {
            limit,
            points: VecDeque::with_capacity(WINDOW),
            last_forecast: i64::MIN,
        }
    }

    /// Adds a point to the window without forecasting (history read back on start).
    /// Returns false, keeping nothing, for a value that is not finite or a point at or
    /// before the last one (a resend, or out of order: the store refused it too).
    pub fn remember(&mut self, ts: TimestampMs, value: f64) -> bool {
        if !value.is_finite() || self.points.back().is_some_and(|&(last, _)| ts <= last) {
            return false;
        }
        if self.points.len() == WINDOW {
            self.points.pop_front();
        }
        self.points.push_back((ts, value));
        true
    }

    /// Adds a point and, when one is due, forecasts from the window; the forecaster's
    /// fit is taken from `budget` (without it, the forecast waits).
    pub fn update(
        &mut self,
        series_id: i64,
        key: &SeriesKey,
        ts: TimestampMs,
        value: f64,
        horizon_ms: i64,
        budget: &mut FitBudget,
    ) -> Option<Forecast> {
        if !self.remember(ts, value) {
            return None;
        }
        if self.points.len() < MIN_POINTS
            || ts.saturating_sub(self.last_forecast) < FORECAST_EVERY_MS
        {
            return None;
        }
        let (t0, _) = *self.points.front()?;
        #[allow(clippy::cast_precision_loss)]
        let n = self.points.len() as f64;
        #[allow(clippy::cast_precision_loss)]
        let xs = self.points.iter().map(|(t, _)| (t - t0) as f64);
        let mean_x = xs.clone().sum::<f64>() / n;
        let mean_y = self.points.iter().map(|(_, v)| v).sum::<f64>() / n;
        let (mut sxy, mut sxx) = (0.0, 0.0);
        for (x, (_, y)) in xs.zip(&self.points) {
            sxy += (x - mean_x) * (y - mean_y);
            sxx += (x - mean_x) * (x - mean_x);
        }
        if sxx <= 0.0 {
            self.last_forecast = ts;
            return None;
        }
        let slope = sxy / sxx; // per ms
        #[allow(clippy::cast_precision_loss)]
        let fitted_now = mean_y + slope * ((ts - t0) as f64 - mean_x);
        let linear = if slope > 0.0 && fitted_now < self.limit {
            let ms = (self.limit - fitted_now) / slope;
            #[allow(clippy::cast_possible_truncation)]
            (ms.is_finite() && ms < 1e15).then(|| ts + ms as i64)
        } else if value >= self.limit {
            Some(ts)
        } else {
            None
        };
        // steward-detect's forecaster (trend and seasonality with an interval) when it
        // can fit the window; the least-squares line otherwise. A series whose line
        // does not rise and that is under its limit cannot be heading for it: the fit
        // (most of the pipeline's time at 10^5 points/s) is skipped for it.
        let (exhausted_at_ms, slope_per_hour) = if slope <= 0.0 && value < self.limit {
            (None, slope * 3_600_000.0)
        } else if budget.take() {
            self.fit(ts, linear, slope, horizon_ms)
        } else {
            // Due again after a short wait, not a whole interval.
            self.last_forecast = ts.saturating_sub(FORECAST_EVERY_MS - RETRY_MS);
            return None;
        };
        self.last_forecast = ts;
        Some(Forecast {
            series_id,
            series: key.clone(),
            limit: self.limit,
            current: value,
            slope_per_hour,
            exhausted_at_ms,
            as_of_ms: ts,
            // A line fitted to a short window says little about a week: warn only
            // when the crossing is within the horizon and within a few window spans.
            warning: exhausted_at_ms
                .is_some_and(|at| at - ts <= horizon_ms.min(EXTRAPOLATION * (ts - t0).max(0))),
        })
    }

    /// The crossing from steward-detect's forecaster over the window, or from the line.
    fn fit(
        &self,
        ts: TimestampMs,
        linear: Option<TimestampMs>,
        slope: f64,
        horizon_ms: i64,
    ) -> (Option<TimestampMs>, f64) {
        let samples: Vec<Sample> = self
            .points
            .iter()
            .map(|(t, v)| Sample::new(*t, *v))
            .collect();
        match steward_detect::forecast_crossing(&samples, self.limit, horizon_ms) {
            Ok(Some(c)) if c.rising || c.already_crossed => (
                Some(if c.already_crossed { ts } else { c.at_ms }),
                c.slope_per_hour,
            ),
            Ok(_) => (
                linear.filter(|at| at - ts > horizon_ms),
                slope * 3_600_000.0,
            ),
            Err(_) => (linear, slope * 3_600_000.0),
        }
    }
}

/// "3h 20m", "2d 4h", "45s".
pub fn human_duration(ms: i64) -> String {
    let s = ms.max(0) / 1000;
    let (d, h, m) = (s / 86_400, (s % 86_400) / 3_600, (s % 3_600) / 60);
    if d > 0 {
        format!("{d}d {h}h")
    } else if h > 0 {
        format!("{h}h {m}m")
    } else if m > 0 {
        format!("{m}m {}s", s % 60)
    } else {
        format!("{s}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_filling_disk_warns_before_it_is_full() {
        let key = SeriesKey::new("disk_usage_ratio");
        assert_eq!(limit_for(&key, 0.4), Some(1.0));
        assert_eq!(limit_for(&SeriesKey::new("http_requests_total"), 3.0), None);
        let mut t = Tracker::new(1.0);
        let mut budget = FitBudget::new(FitBudget::PER_SECOND);
        let mut last = None;
        for i in 0..20 {
            // 1% per minute from 50%: full in 50 minutes from the start.
            last = t.update(
                1,
                &key,
                i * 60_000,
                0.5 + 0.01 * i as f64,
                3_600_000,
                &mut budget,
            );
        }
        let f = last.unwrap();
        assert!(f.warning);
        let at = f.exhausted_at_ms.unwrap();
        assert!((at - 50 * 60_000).abs() < 5 * 60_000, "{at}");
        assert_eq!(human_duration(3_700_000), "1h 1m");
    }

    #[test]
    fn without_budget_a_due_forecast_waits_and_comes_later() {
        let key = SeriesKey::new("disk_usage_ratio");
        let mut t = Tracker::new(1.0);
        // One fit at once, then one every ten seconds: far fewer than series due.
        let mut budget = FitBudget::new(0.1);
        let mut forecasts = Vec::new();
        for i in 0..40 {
            if let Some(f) = t.update(
                1,
                &key,
                i * 60_000,
                0.5 + 0.01 * i as f64,
                3_600_000,
                &mut budget,
            ) {
                forecasts.push(f.as_of_ms);
            }
        }
        // The first due point (the tenth) got the one fit; every later minute was
        // due too and waited.
        assert_eq!(forecasts, vec![9 * 60_000]);
        assert_eq!(budget.deferred, 30);
        // Budget back: the very next point is forecast, not a minute later.
        budget.tokens = 1.0;
        assert!(
            t.update(1, &key, 40 * 60_000, 0.9, 3_600_000, &mut budget)
                .is_some()
        );
    }

    #[test]
    fn points_out_of_order_are_not_learned() {
        let mut t = Tracker::new(1.0);
        assert!(t.remember(60_000, 0.5));
        assert!(!t.remember(60_000, 0.9), "a resend");
        assert!(!t.remember(0, 0.9), "out of order");
        assert!(!t.remember(120_000, f64::NAN));
        assert!(t.remember(120_000, 0.6));
        assert_eq!(t.points.len(), 2);
    }
}
