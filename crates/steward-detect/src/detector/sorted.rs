//! The last few values kept sorted, so their median is a lookup.
//!
//! The detector's robust level is the median of its last [`RECENT`] values, asked for
//! at every point. Selecting it afresh each time (copy, then quickselect) was the
//! largest single cost of scoring a point in the watch service; keeping a sorted copy
//! beside the ring costs one removal and one insertion into 16 values instead.

/// How many recent values the robust level is the median of.
pub(super) const RECENT: usize = 16;

/// A sorted copy of the detector's ring of recent values. Not serialised: rebuilt
/// from the ring when it does not match it (after a restore).
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct SortedRecent {
    values: [f64; RECENT],
    len: usize,
}

impl SortedRecent {
    /// Whether this holds as many values as the ring: false after a restore.
    pub(super) fn matches(&self, ring: &[f64]) -> bool {
        self.len == ring.len()
    }

    /// Rebuilds the copy from the ring.
    pub(super) fn rebuild(&mut self, ring: &[f64]) {
        let len = ring.len().min(RECENT);
        self.values[..len].copy_from_slice(&ring[..len]);
        self.values[..len].sort_unstable_by(f64::total_cmp);
        self.len = len;
    }

    /// Replaces `old` (a value the copy holds, or `None` while the ring fills) by `new`.
    /// The new value takes the old one's slot (or the next free one) and moves to its
    /// place by swaps: a series moves little from point to point, so that is a step or
    /// two, where removing and inserting shifted half the array twice.
    pub(super) fn replace(&mut self, old: Option<f64>, new: f64) {
        let held =
            old.map(|old| self.values[..self.len].partition_point(|v| v.total_cmp(&old).is_lt()));
        let at = match held {
            Some(at) if at < self.len => at,
            _ if self.len < RECENT => {
                self.len += 1;
                self.len - 1
            }
            _ => return,
        };
        self.values[at] = new;
        self.settle(at);
    }

    /// Moves the value at `at` up or down to its sorted place.
    fn settle(&mut self, mut at: usize) {
        let v = self.values[at];
        while at > 0 && self.values[at - 1].total_cmp(&v).is_gt() {
            self.values.swap(at - 1, at);
            at -= 1;
        }
        while at + 1 < self.len && self.values[at + 1].total_cmp(&v).is_lt() {
            self.values.swap(at, at + 1);
            at += 1;
        }
    }

    /// The median: the value at index `len / 2` of the sorted values (the upper of the
    /// two middle ones for an even count), or `None` when empty.
    pub(super) fn median(&self) -> Option<f64> {
        (self.len > 0).then(|| self.values[self.len / 2])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The median as the detector took it before: quickselect on a copy.
    fn selected(ring: &[f64]) -> f64 {
        let mut v = ring.to_vec();
        let mid = v.len() / 2;
        v.select_nth_unstable_by(mid, f64::total_cmp);
        v[mid]
    }

    #[test]
    fn the_median_is_the_selected_one_through_a_long_run() {
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        let mut ring: Vec<f64> = Vec::new();
        let mut pos = 0;
        let mut sorted = SortedRecent::default();
        for i in 0..10_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            // Repeats and signed zeros too: ties must not confuse the removal.
            let x = match i % 5 {
                0 => 0.0,
                1 => -0.0,
                _ => ((seed >> 40) % 7) as f64 - 3.0,
            };
            if ring.len() < RECENT {
                ring.push(x);
                sorted.replace(None, x);
            } else {
                let old = ring[pos];
                ring[pos] = x;
                pos = (pos + 1) % RECENT;
                sorted.replace(Some(old), x);
            }
            assert!(sorted.matches(&ring));
            assert_eq!(
                sorted.median().map(f64::to_bits),
                Some(selected(&ring).to_bits()),
                "at {i}"
            );
        }
        let mut rebuilt = SortedRecent::default();
        assert!(!rebuilt.matches(&ring));
        rebuilt.rebuild(&ring);
        assert_eq!(rebuilt.median(), sorted.median());
    }
}
