//! Level novelty: has the series ever been at this level before?
//!
//! The range of the first [`LEARN`] points is cut into [`LEVELS`] equal buckets, none
//! narrower than one deviation of those points' noise, and the grid is then fixed
//! (extended by whole buckets beyond that range). A point in a bucket
//! the series has never visited is novel. The idea is the contextual detectors' on NAB
//! (CAD OSE quantises values to three bits and flags never-seen contexts): on real
//! series a never-seen level is a common first sign of trouble, and because the grid
//! does not move, an outlier cannot coarsen it the way it inflates a range or a scale.
//! Longer contexts (never-seen sequences of levels) were tried and fired too often on
//! noise; see the detect section of bench/RESULTS.md.
//!
//! Written here rather than taken from a crate: it is a few lines over a 256-bit set.

use serde::{Deserialize, Serialize};

/// Points whose range sets the grid: a day at the common 5-minute step.
const LEARN: usize = 288;
/// Buckets across the learned range (CAD OSE's three bits).
const LEVELS: f64 = 8.0;
/// The narrowest bucket, in deviations of the first points' noise.
const MIN_WIDTH_NOISE: f64 = 1.0;
/// Buckets tracked below the learned range; as many again fit above it. Values
/// farther out share the edge bucket.
const BELOW: i64 = 124;
/// Buckets tracked in all: four 64-bit words.
const TRACKED: i64 = 256;

/// The learned grid and the buckets visited.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(super) struct LevelNovelty {
    /// The first points, kept only until the grid is set (then emptied).
    learning: Vec<f32>,
    /// The grid: the low end of the learned range and the bucket width; zero width
    /// means not learned yet.
    lo: f64,
    width: f64,
    /// Which buckets the series has visited.
    seen: [u64; 4],
}

impl LevelNovelty {
    /// Learns `x` and says whether its bucket was never visited before. Always false
    /// while the grid is being learned. `x` must be finite.
    pub(super) fn observe(&mut self, x: f64) -> bool {
        if self.width == 0.0 {
            // Exactly the learning period: at most 1,152 bytes, freed once the grid is set.
            self.learning
                .reserve_exact(LEARN.saturating_sub(self.learning.len()));
            self.learning.push(x as f32);
            if self.learning.len() >= LEARN {
                self.set_grid();
            }
            return false;
        }
        let b = self.bucket(x);
        let novel = self.seen[b / 64] & (1 << (b % 64)) == 0;
        self.seen[b / 64] |= 1 << (b % 64);
        novel
    }

    /// The heap bytes held (the learning buffer, until the grid is set).
    pub(super) fn heap_bytes(&self) -> usize {
        self.learning.capacity() * std::mem::size_of::<f32>()
    }

    fn set_grid(&mut self) {
        let (lo, hi) = self
            .learning
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
                (lo.min(f64::from(v)), hi.max(f64::from(v)))
            });
        // A flat start gets a grid finer than any real change, so any move is new.
        let floor = 1e-9 + 1e-6 * lo.abs().max(hi.abs());
        // Nor finer than the noise: on a calm first day (a range of a few deviations)
        // an eighth of the range is less than one deviation, and the noise of a
        // later day, or a slow drift the baseline follows, crossed into a new bucket
        // every few points. The noise is the median step between neighbours over
        // 0.954 (one deviation for white noise), so a series that repeats its values
        // (counts, zeros between bursts) keeps the fine grid.
        let mut steps: Vec<f64> = self
            .learning
            .windows(2)
            .map(|w| (f64::from(w[1]) - f64::from(w[0])).abs())
            .collect();
        let noise = if steps.is_empty() {
            0.0
        } else {
            let mid = steps.len() / 2;
            *steps.select_nth_unstable_by(mid, f64::total_cmp).1 / 0.954
        };
        // Never coarser than twice the plain grid, though: a series that switches
        // between two states steps by the whole swing, which is not noise, and its
        // never-visited middle must stay a level of its own.
        let width = ((hi - lo) / LEVELS)
            .max(floor)
            .max((MIN_WIDTH_NOISE * noise).min(2.0 * (hi - lo) / LEVELS));
        // Half a bucket of margin on each side, so noise just past the learned extremes
        // is not a new level.
        self.lo = lo - 0.5 * width;
        self.width = if width.is_finite() { width } else { f64::MAX };
        let learned = std::mem::take(&mut self.learning);
        for v in learned {
            let b = self.bucket(f64::from(v));
            self.seen[b / 64] |= 1 << (b % 64);
        }
    }

    fn bucket(&self, x: f64) -> usize {
        // `as` saturates (and maps NaN to 0), so no input can index out of range.
        let b = ((x - self.lo) / self.width).floor() as i64;
        (b.clamp(-BELOW, TRACKED - BELOW - 1) + BELOW) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_never_visited_level_is_novel_once() {
        let mut n = LevelNovelty::default();
        // Learn a range of 0..=8 (buckets of width 1).
        for i in 0..LEARN {
            assert!(!n.observe((i % 9) as f64));
        }
        assert!(!n.observe(3.5), "inside the learned range");
        assert!(n.observe(12.5), "above it");
        assert!(!n.observe(12.7), "the same bucket again");
        assert!(n.observe(-3.0), "below it");
        assert!(
            n.observe(1e300) && !n.observe(f64::MAX),
            "far out shares the edge"
        );
        assert!(n.heap_bytes() == 0, "the learning buffer is freed");
    }

    #[test]
    fn noise_is_not_a_new_level() {
        // A calm first day: white noise of deviation 1 (a range of about 5.5). An
        // eighth of that range is less than the noise, so the buckets are one
        // deviation wide, and a drift of four deviations over the next 600 points
        // finds at most three new levels (with buckets of an eighth of the range it
        // found five).
        let noise = |i: usize| {
            // Deterministic, roughly normal: the sum of four uniforms (SplitMix64 of
            // the index), scaled to a deviation of 1.
            let u = |k: usize| {
                let mut z = ((i * 4 + k) as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
                z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
                z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
                ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
            };
            (u(0) + u(1) + u(2) + u(3) - 2.0) * 3.0f64.sqrt()
        };
        let mut n = LevelNovelty::default();
        for i in 0..LEARN {
            n.observe(noise(i));
        }
        let new = (0..600)
            .filter(|&i| n.observe(noise(LEARN + i) + 4.0 * i as f64 / 600.0))
            .count();
        assert!(new <= 3, "{new} new levels");
        // A real new level, well beyond the noise, is still found.
        assert!(n.observe(20.0));
    }

    #[test]
    fn a_gap_inside_the_range_is_novel() {
        // A series that switches between 0 and 80: 40 was never seen.
        let mut n = LevelNovelty::default();
        for i in 0..LEARN {
            n.observe(if i % 2 == 0 { 0.0 } else { 80.0 });
        }
        assert!(n.observe(40.0));
    }

    #[test]
    fn a_flat_start_makes_any_move_novel() {
        let mut n = LevelNovelty::default();
        for _ in 0..LEARN {
            n.observe(7.0);
        }
        assert!(!n.observe(7.0));
        assert!(n.observe(7.01));
    }
}
