//! Per-template rates: how many records of each template each service wrote in each
//! bucket of time. Each (service, template) pair becomes a series the detectors watch.
//!
//! A bucket with records is always a point. A bucket without any is a point (0) only
//! when a zero says something: the template is *steady* (it had records in each of the
//! last [`STEADY_RUN`] buckets, at least [`STEADY_MEAN`] a bucket on average, so a
//! Poisson source of that rate is silent for a whole bucket well under 1% of the time)
//! and it is not a warning or error template (errors stopping is not an alarm).
//! Otherwise the empty bucket is no data: a rare template (a checkpoint every five
//! minutes), a burst (a deploy's log lines) or an error surge that ends do not become
//! a "dip to 0".

use std::collections::{BTreeMap, HashMap};

use steward_core::{Sample, SeriesKey, TimestampMs};

/// The metric name of template-rate series.
pub const TEMPLATE_RATE: &str = "steward_template_rate";

/// A template with no record for this many buckets is forgotten (its next record
/// starts it afresh); a steady one is reported as 0 until then, so that detectors see
/// it stop.
const IDLE_BUCKETS: u32 = 30;

/// Buckets in a row with records before a template counts as steady.
pub const STEADY_RUN: u32 = 10;
/// Records per bucket, on average over that run, for a template to count as steady:
/// P(no record in a bucket) = e^-5 < 0.7% for a Poisson source of this rate.
pub const STEADY_MEAN: f64 = 5.0;

/// Most later buckets a template keeps counts for ahead of its open one (records
/// stamped further ahead count in the last of them).
const MAX_AHEAD: usize = 64;

#[derive(Debug)]
struct Counter {
    bucket_start: TimestampMs,
    count: u64,
    /// Counts of buckets after the open one: a batch may carry records of the next
    /// minute before the current one closes (a client that sends a minute at once).
    ahead: BTreeMap<TimestampMs, u64>,
    idle: u32,
    /// Buckets in a row, up to the last closed one, that had records.
    run: u32,
    /// Records in those buckets.
    run_records: u64,
    /// Whether a zero bucket is reported: decided at the last bucket with records.
    steady: bool,
    /// A warning or error template.
    problem: bool,
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

    /// Counts one record; `problem` when the template is of warning or error level.
    pub fn add(&mut self, service: &str, template: u64, ts: TimestampMs, problem: bool) {
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
            ahead: BTreeMap::new(),
            idle: 0,
            run: 0,
            run_records: 0,
            steady: false,
            problem,
        });
        // A late record of a closed bucket counts in the open one; a record of a later
        // bucket waits for it.
        if bucket > counter.bucket_start {
            let bucket = if counter.ahead.len() >= MAX_AHEAD && !counter.ahead.contains_key(&bucket)
            {
                counter.ahead.keys().next_back().copied().unwrap_or(bucket)
            } else {
                bucket
            };
            *counter.ahead.entry(bucket).or_default() += 1;
        } else {
            counter.count += 1;
        }
        counter.idle = 0;
        counter.problem |= problem;
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
                    if c.count > 0 || (c.steady && !c.problem) {
                        #[allow(clippy::cast_precision_loss)]
                        out.push((
                            RateAggregator::key(service, *template),
                            Sample::new(c.bucket_start, c.count as f64),
                        ));
                    }
                    if c.count == 0 {
                        c.run = 0;
                        c.run_records = 0;
                        c.idle += 1;
                        if c.idle >= IDLE_BUCKETS {
                            return false;
                        }
                    } else {
                        c.run = c.run.saturating_add(1);
                        c.run_records = c.run_records.saturating_add(c.count);
                        #[allow(clippy::cast_precision_loss)]
                        let mean = c.run_records as f64 / f64::from(c.run);
                        c.steady = c.run >= STEADY_RUN && mean >= STEADY_MEAN;
                    }
                    c.bucket_start += bucket_ms;
                    c.count = c.ahead.remove(&c.bucket_start).unwrap_or(0);
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

    fn points(rates: &mut RateAggregator) -> Vec<(i64, f64)> {
        let mut points: Vec<_> = rates
            .close()
            .into_iter()
            .map(|(_, s)| (s.timestamp_ms, s.value))
            .collect();
        points.sort_by_key(|p| p.0);
        points
    }

    #[test]
    fn a_new_template_s_empty_buckets_are_no_data() {
        let mut rates = RateAggregator::new(1000, 0);
        rates.add("a", 1, 100, false);
        rates.add("a", 1, 900, false);
        rates.add("a", 1, 3500, false);
        // The template is not steady yet, so the empty buckets are no data; the record
        // at 3500 waits for its own bucket.
        assert_eq!(points(&mut rates), [(0, 2.0)]);
        rates.advance(4000);
        assert_eq!(points(&mut rates), [(3000, 1.0)]);
    }

    #[test]
    fn a_steady_template_that_stops_reads_zero_a_rare_or_error_one_does_not() {
        let mut rates = RateAggregator::new(1000, 0);
        let mut closed = Vec::new();
        // Buckets close as the data's clock passes them, as the pipeline closes them
        // after each batch.
        for bucket in 0..15 {
            rates.advance(bucket * 1000);
            closed.extend(rates.close());
            if bucket >= 12 {
                continue;
            }
            for i in 0..20 {
                rates.add("api", 1, bucket * 1000 + i * 10, false); // steady
                rates.add("api", 3, bucket * 1000 + i * 10, true); // steady errors
            }
            if bucket % 3 == 0 {
                rates.add("db", 2, bucket * 1000 + 500, false); // rare
            }
        }
        rates.advance(15_000);
        closed.extend(rates.close());
        let of = |service: &str, template: u64| -> Vec<(i64, f64)> {
            let key = RateAggregator::key(service, template);
            let mut p: Vec<_> = closed
                .iter()
                .filter(|(k, _)| *k == key)
                .map(|(_, s)| (s.timestamp_ms, s.value))
                .collect();
            p.sort_by_key(|p| p.0);
            p
        };
        let steady = of("api", 1);
        assert_eq!(steady.len(), 15, "{steady:?}");
        assert_eq!(&steady[12..], [(12_000, 0.0), (13_000, 0.0), (14_000, 0.0)]);
        assert!(of("api", 3).iter().all(|p| p.1 == 20.0));
        assert_eq!(
            of("db", 2),
            [(0, 1.0), (3000, 1.0), (6000, 1.0), (9000, 1.0)]
        );
    }

    #[test]
    fn records_of_a_later_bucket_wait_for_it() {
        let mut rates = RateAggregator::new(1000, 0);
        // One batch holds two buckets' records before either closes.
        for i in 0..10 {
            rates.add("a", 1, i * 100, false);
            rates.add("a", 1, 1000 + i * 50, false);
        }
        rates.add("a", 1, 1999, false);
        assert_eq!(points(&mut rates), [(0, 10.0)]);
        rates.advance(2000);
        assert_eq!(points(&mut rates), [(1000, 11.0)]);
    }
}
