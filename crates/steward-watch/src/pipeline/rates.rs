//! Per-template rates: how many records of each template each service wrote in each
//! bucket of time. Each (service, template) pair becomes a series the detectors watch.

use std::collections::HashMap;

use steward_core::{Sample, SeriesKey, TimestampMs};

/// The metric name of template-rate series.
pub const TEMPLATE_RATE: &str = "steward_template_rate";

/// A bucket with no record is still reported as 0 for this many buckets after the
/// last one that had records, so that detectors see a template stop.
const IDLE_BUCKETS: u32 = 30;

#[derive(Debug)]
struct Counter {
    bucket_start: TimestampMs,
    count: u64,
    idle: u32,
}

/// Counts records per (service, template) per bucket, and closes buckets as the data's
/// clock (the watermark) passes them.
#[derive(Debug)]
pub struct RateAggregator {
    bucket_ms: i64,
    grace_ms: i64,
    watermark: TimestampMs,
    counters: HashMap<String, HashMap<u64, Counter>>,
}

impl RateAggregator {
    /// Buckets of `bucket_ms`; a bucket closes `grace_ms` after its end.
    pub fn new(bucket_ms: i64, grace_ms: i64) -> RateAggregator {
        RateAggregator {
            bucket_ms: bucket_ms.max(1),
            grace_ms: grace_ms.max(0),
            watermark: i64::MIN,
            counters: HashMap::new(),
        }
    }

    /// The series key of a template's rate in one service.
    pub fn key(service: &str, template: u64) -> SeriesKey {
        SeriesKey::new(TEMPLATE_RATE)
            .with_label("service", service)
            .with_label("template", template.to_string())
    }

    /// Counts one record.
    pub fn add(&mut self, service: &str, template: u64, ts: TimestampMs) {
        let bucket = ts.div_euclid(self.bucket_ms) * self.bucket_ms;
        self.watermark = self.watermark.max(ts);
        // Looked up by &str first, so the common case allocates nothing.
        let per_service = match self.counters.get_mut(service) {
            Some(m) => m,
            None => self.counters.entry(service.to_string()).or_default(),
        };
        let counter = per_service.entry(template).or_insert(Counter {
            bucket_start: bucket,
            count: 0,
            idle: 0,
        });
        // A late record of a closed bucket counts in the open one.
        counter.count += 1;
        counter.idle = 0;
    }

    /// Moves the data clock forward without a record (wall-clock time, when data is
    /// live), so quiet templates' buckets still close.
    pub fn advance(&mut self, now: TimestampMs) {
        self.watermark = self.watermark.max(now);
    }

    /// Closes every bucket the watermark has passed; returns their points.
    pub fn close(&mut self) -> Vec<(SeriesKey, Sample)> {
        let mut out = Vec::new();
        let limit = self.watermark.saturating_sub(self.grace_ms);
        let bucket_ms = self.bucket_ms;
        for (service, templates) in &mut self.counters {
            templates.retain(|template, c| {
                while c.bucket_start.saturating_add(bucket_ms) <= limit {
                    #[allow(clippy::cast_precision_loss)]
                    out.push((
                        RateAggregator::key(service, *template),
                        Sample::new(c.bucket_start, c.count as f64),
                    ));
                    if c.count == 0 {
                        c.idle += 1;
                        if c.idle >= IDLE_BUCKETS {
                            return false;
                        }
                    }
                    c.count = 0;
                    c.bucket_start += bucket_ms;
                }
                true
            });
        }
        self.counters.retain(|_, templates| !templates.is_empty());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_close_with_zeros_between() {
        let mut rates = RateAggregator::new(1000, 0);
        rates.add("a", 1, 100);
        rates.add("a", 1, 900);
        rates.add("a", 1, 3500);
        let mut points: Vec<_> = rates
            .close()
            .into_iter()
            .map(|(_, s)| (s.timestamp_ms, s.value))
            .collect();
        points.sort_by_key(|p| p.0);
        // The record at 3500 was counted into the open bucket when it arrived.
        assert_eq!(points, [(0, 3.0), (1000, 0.0), (2000, 0.0)]);
    }
}
