//! Downsampled rollups: min, max, sum and count per time step, for long ranges.

use std::collections::BTreeMap;

use crate::ChunkError;
use crate::chunk::ChunkIter;

/// The aggregate of one step of a series.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rollup {
    /// The step's start (a multiple of the step), in milliseconds.
    pub start_ms: i64,
    /// The smallest value.
    pub min: f64,
    /// The largest value.
    pub max: f64,
    /// The sum of the values.
    pub sum: f64,
    /// How many values.
    pub count: u64,
}

impl Rollup {
    /// The mean of the values.
    pub fn mean(&self) -> f64 {
        self.sum / self.count as f64
    }

    fn add(&mut self, v: f64) {
        self.min = self.min.min(v);
        self.max = self.max.max(v);
        self.sum += v;
        self.count += 1;
    }
}

/// Rolls samples up into steps of `step_ms` (e.g. 300 000 for five minutes), aligned to
/// multiples of the step. NaN values (Prometheus's staleness markers among them) are
/// left out; a step with only NaNs has no rollup. Samples may come in any order. A step
/// below 1 ms counts as 1 ms.
pub fn rollup<I>(samples: I, step_ms: i64) -> Vec<Rollup>
where
    I: IntoIterator<Item = (i64, f64)>,
{
    let step = step_ms.max(1);
    let mut steps: BTreeMap<i64, Rollup> = BTreeMap::new();
    let mut last: Option<Rollup> = None;
    for (ts, v) in samples {
        if v.is_nan() {
            continue;
        }
        let start = ts.div_euclid(step).saturating_mul(step);
        match &mut last {
            // Ordered input, the common case, stays out of the map until a step ends.
            Some(r) if r.start_ms == start => r.add(v),
            _ => {
                if let Some(done) = last.take() {
                    merge(&mut steps, done);
                }
                last = Some(Rollup {
                    start_ms: start,
                    min: v,
                    max: v,
                    sum: v,
                    count: 1,
                });
            }
        }
    }
    if let Some(done) = last {
        merge(&mut steps, done);
    }
    steps.into_values().collect()
}

fn merge(steps: &mut BTreeMap<i64, Rollup>, r: Rollup) {
    steps
        .entry(r.start_ms)
        .and_modify(|s| {
            s.min = s.min.min(r.min);
            s.max = s.max.max(r.max);
            s.sum += r.sum;
            s.count += r.count;
        })
        .or_insert(r);
}

/// Rolls up the samples of encoded chunks (as the store holds them). A malformed chunk
/// is an error; nothing is rolled up then.
pub fn rollup_chunks<'a, I>(chunks: I, step_ms: i64) -> Result<Vec<Rollup>, ChunkError>
where
    I: IntoIterator<Item = &'a [u8]>,
{
    let mut samples = Vec::new();
    for c in chunks {
        for s in ChunkIter::new(c) {
            samples.push(s?);
        }
    }
    Ok(rollup(samples, step_ms))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ChunkAppender;

    #[test]
    fn five_minute_rollups_over_chunks() {
        let mut a = ChunkAppender::new();
        let mut b = ChunkAppender::new();
        for i in 0..20i64 {
            let c = if i < 10 { &mut a } else { &mut b };
            c.append(i * 60_000, i as f64).unwrap();
        }
        b.append(20 * 60_000, f64::NAN).unwrap();
        let (a, b) = (a.to_bytes(), b.to_bytes());
        let r = rollup_chunks([a.as_slice(), b.as_slice()], 300_000).unwrap();
        assert_eq!(r.len(), 4);
        assert_eq!(
            r[1],
            Rollup {
                start_ms: 300_000,
                min: 5.0,
                max: 9.0,
                sum: 35.0,
                count: 5
            }
        );
        assert_eq!(r[3].count, 5);
        assert_eq!(r[3].mean(), 17.0);
        assert!(rollup_chunks([&a[..3]], 300_000).is_err());
    }

    #[test]
    fn unordered_and_negative_times_land_in_their_steps() {
        let r = rollup([(5, 1.0), (-1, 2.0), (7, 3.0), (-10, f64::INFINITY)], 10);
        assert_eq!(r.len(), 2);
        assert_eq!(
            (r[0].start_ms, r[0].count, r[0].max),
            (-10, 2, f64::INFINITY)
        );
        assert_eq!((r[1].start_ms, r[1].sum, r[1].min), (0, 4.0, 1.0));
        assert!(rollup([(0, 1.0)], 0).len() == 1);
    }
}
