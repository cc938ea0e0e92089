//! The head: the open chunk of every series, and the chunks that closed since the store
//! last took them.

use crate::SeriesId;
use crate::chunk::{ChunkAppender, ChunkIter, MAX_CHUNK_SAMPLES};

/// When a series' open chunk is cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkLimits {
    /// The most samples in one chunk (Prometheus: 120), 1 ..= 65 535.
    pub max_samples: u16,
    /// The widest time span of one chunk in milliseconds: a sample this far or farther
    /// past the chunk's first one starts a new chunk.
    pub max_span_ms: i64,
}

impl Default for ChunkLimits {
    fn default() -> Self {
        ChunkLimits {
            max_samples: 120,
            max_span_ms: 2 * 60 * 60 * 1000,
        }
    }
}

/// One row of a batch: a sample of an interned series.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Row {
    /// The series.
    pub series: SeriesId,
    /// When, in milliseconds since the Unix epoch.
    pub timestamp_ms: i64,
    /// The value.
    pub value: f64,
}

impl Row {
    /// A row.
    pub fn new(series: SeriesId, timestamp_ms: i64, value: f64) -> Row {
        Row {
            series,
            timestamp_ms,
            value,
        }
    }
}

/// What happened to the rows of one batch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AppendOutcome {
    /// Rows stored.
    pub appended: usize,
    /// Rows refused because their timestamp was not after the series' last one
    /// (duplicates included), as Prometheus refuses out-of-order samples.
    pub out_of_order: usize,
    /// Rows refused because their series id is not defined.
    pub unknown_series: usize,
}

impl AppendOutcome {
    /// Rows refused for any reason.
    pub fn refused(&self) -> usize {
        self.out_of_order + self.unknown_series
    }

    pub(crate) fn add(&mut self, other: AppendOutcome) {
        self.appended += other.appended;
        self.out_of_order += other.out_of_order;
        self.unknown_series += other.unknown_series;
    }
}

/// A chunk that will take no more samples: what the store persists as one blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClosedChunk {
    /// Where it belongs.
    pub meta: ChunkMeta,
    /// The encoded chunk; decode with [`ChunkIter`].
    pub bytes: Vec<u8>,
}

impl ClosedChunk {
    /// Its samples.
    pub fn iter(&self) -> ChunkIter<'_> {
        ChunkIter::new(&self.bytes)
    }
}

/// Which series and span a chunk covers, and the oldest log segment it depends on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ChunkMeta {
    /// The series.
    pub series: SeriesId,
    /// Its first timestamp.
    pub min_ts: i64,
    /// Its last timestamp.
    pub max_ts: i64,
    /// How many samples it holds.
    pub samples: u16,
    /// The write-ahead-log segment that holds its first sample; the log keeps that
    /// segment until the chunk is marked persisted.
    pub wal_segment: u32,
}

#[derive(Debug, Default)]
struct SeriesHead {
    open: Option<ChunkAppender>,
    open_segment: u32,
    /// The last timestamp appended or persisted; samples must come after it.
    last_ts: Option<i64>,
}

/// The open chunk per series and the closed chunks waiting for the store.
#[derive(Debug, Default)]
pub struct Head {
    limits: ChunkLimits,
    series: Vec<SeriesHead>,
    closed: Vec<ClosedChunk>,
    open_chunks: usize,
    samples: u64,
}

impl Head {
    /// An empty head whose chunks are cut at `limits`.
    pub fn new(limits: ChunkLimits) -> Head {
        let limits = ChunkLimits {
            max_samples: limits.max_samples.clamp(1, MAX_CHUNK_SAMPLES as u16),
            max_span_ms: limits.max_span_ms.max(1),
        };
        Head {
            limits,
            ..Head::default()
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> ChunkLimits {
        self.limits
    }

    /// Makes ids below `bound` known; rows of higher ids are refused as unknown.
    pub fn set_series_bound(&mut self, bound: usize) {
        if self.series.len() < bound {
            self.series.resize_with(bound, SeriesHead::default);
        }
    }

    /// Series with an open chunk.
    pub fn open_chunks(&self) -> usize {
        self.open_chunks
    }

    /// Samples appended since the head was made.
    pub fn samples_appended(&self) -> u64 {
        self.samples
    }

    /// Samples in open chunks now (a pass over every series).
    pub fn open_samples(&self) -> u64 {
        self.series
            .iter()
            .filter_map(|s| s.open.as_ref())
            .map(|c| c.len() as u64)
            .sum()
    }

    /// Appends a batch. `segment` is the log segment the batch was written to.
    pub fn append(&mut self, rows: &[Row], segment: u32) -> AppendOutcome {
        let mut out = AppendOutcome::default();
        for r in rows {
            let Some(s) = self.series.get_mut(r.series as usize) else {
                out.unknown_series += 1;
                continue;
            };
            if s.last_ts.is_some_and(|last| r.timestamp_ms <= last) {
                out.out_of_order += 1;
                continue;
            }
            if let Some(open) = &s.open {
                let full = open.len() >= usize::from(self.limits.max_samples);
                let wide = open.min_ts().is_some_and(|min| {
                    r.timestamp_ms.saturating_sub(min) >= self.limits.max_span_ms
                });
                if full || wide {
                    if let Some(chunk) = close(r.series, s) {
                        self.closed.push(chunk);
                        self.open_chunks -= 1;
                    }
                }
            }
            let open = match &mut s.open {
                Some(c) => c,
                None => {
                    self.open_chunks += 1;
                    s.open_segment = segment;
                    s.open.insert(ChunkAppender::new())
                }
            };
            // Timestamps were checked above, and a chunk is cut long before it is full.
            if open.append(r.timestamp_ms, r.value).is_ok() {
                s.last_ts = Some(r.timestamp_ms);
                out.appended += 1;
                self.samples += 1;
            } else {
                out.out_of_order += 1;
            }
        }
        out
    }

    /// Chunks closed since the last call, oldest first.
    pub fn take_closed(&mut self) -> Vec<ClosedChunk> {
        std::mem::take(&mut self.closed)
    }

    /// Chunks closed and not yet taken.
    pub fn closed_pending(&self) -> &[ClosedChunk] {
        &self.closed
    }

    /// Closes the open chunk of one series (an idle series being evicted).
    pub fn close_series(&mut self, id: SeriesId) {
        if let Some(s) = self.series.get_mut(id as usize) {
            if let Some(chunk) = close(id, s) {
                self.closed.push(chunk);
                self.open_chunks -= 1;
            }
        }
    }

    /// Closes every open chunk (at shutdown, so that the store can take them all).
    pub fn close_all(&mut self) {
        for (id, s) in self.series.iter_mut().enumerate() {
            if let Some(chunk) = close(id as SeriesId, s) {
                self.closed.push(chunk);
            }
        }
        self.open_chunks = 0;
    }

    /// Closes the open chunks whose last sample is before `ts` (series gone quiet).
    pub fn close_idle(&mut self, ts: i64) -> usize {
        let mut n = 0;
        for (id, s) in self.series.iter_mut().enumerate() {
            if s.open
                .as_ref()
                .and_then(ChunkAppender::max_ts)
                .is_some_and(|m| m < ts)
            {
                if let Some(chunk) = close(id as SeriesId, s) {
                    self.closed.push(chunk);
                    n += 1;
                }
            }
        }
        self.open_chunks -= n;
        n
    }

    /// The open chunk of a series, encoded as it is now.
    pub fn open_chunk(&self, id: SeriesId) -> Option<ClosedChunk> {
        let s = self.series.get(id as usize)?;
        let open = s.open.as_ref()?;
        Some(ClosedChunk {
            meta: meta(id, open, s.open_segment)?,
            bytes: open.to_bytes(),
        })
    }

    /// The last timestamp of a series (appended or restored), if any.
    pub fn last_ts(&self, id: SeriesId) -> Option<i64> {
        self.series.get(id as usize)?.last_ts
    }

    /// Samples at or before `ts` of this series are refused from now on: how a replay
    /// skips what the store already holds.
    pub fn set_floor(&mut self, id: SeriesId, ts: i64) {
        if let Some(s) = self.series.get_mut(id as usize) {
            if s.last_ts.is_none_or(|l| l < ts) {
                s.last_ts = Some(ts);
            }
        }
    }

    /// The oldest log segment an open or pending chunk depends on.
    pub(crate) fn oldest_segment(&self) -> Option<u32> {
        let open = self
            .series
            .iter()
            .filter(|s| s.open.is_some())
            .map(|s| s.open_segment)
            .min();
        let closed = self.closed.iter().map(|c| c.meta.wal_segment).min();
        match (open, closed) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Heap bytes held by open chunks and the series table (an estimate).
    pub fn heap_bytes(&self) -> usize {
        self.series.capacity() * std::mem::size_of::<SeriesHead>()
            + self
                .series
                .iter()
                .filter_map(|s| s.open.as_ref())
                .map(|c| c.size_bytes().max(192))
                .sum::<usize>()
            + self
                .closed
                .iter()
                .map(|c| c.bytes.capacity())
                .sum::<usize>()
    }
}

fn meta(series: SeriesId, open: &ChunkAppender, segment: u32) -> Option<ChunkMeta> {
    Some(ChunkMeta {
        series,
        min_ts: open.min_ts()?,
        max_ts: open.max_ts()?,
        samples: u16::try_from(open.len()).ok()?,
        wal_segment: segment,
    })
}

fn close(id: SeriesId, s: &mut SeriesHead) -> Option<ClosedChunk> {
    let open = s.open.take()?;
    Some(ClosedChunk {
        meta: meta(id, &open, s.open_segment)?,
        bytes: open.to_bytes(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_are_cut_at_the_sample_cap_and_the_span() {
        let mut h = Head::new(ChunkLimits {
            max_samples: 4,
            max_span_ms: 100,
        });
        h.set_series_bound(2);
        let rows: Vec<Row> = (0..10).map(|i| Row::new(0, i * 10, i as f64)).collect();
        assert_eq!(h.append(&rows, 0).appended, 10);
        let closed = h.take_closed();
        assert_eq!(closed.len(), 2);
        assert_eq!((closed[0].meta.min_ts, closed[0].meta.max_ts), (0, 30));
        assert_eq!(closed[1].iter().count(), 4);
        // A gap wider than the span cuts a chunk of one sample.
        h.append(&[Row::new(1, 0, 1.0), Row::new(1, 500, 2.0)], 3);
        let closed = h.take_closed();
        assert_eq!(closed.len(), 1);
        assert_eq!(closed[0].meta.samples, 1);
        assert_eq!(closed[0].meta.wal_segment, 3);
        assert_eq!(h.open_chunks(), 2);
        h.close_all();
        assert_eq!(h.take_closed().len(), 2);
        assert_eq!(h.open_chunks(), 0);
    }

    #[test]
    fn old_duplicate_and_unknown_rows_are_refused() {
        let mut h = Head::new(ChunkLimits::default());
        h.set_series_bound(1);
        let out = h.append(
            &[
                Row::new(0, 10, 1.0),
                Row::new(0, 10, 1.0),
                Row::new(0, 5, 1.0),
                Row::new(7, 10, 1.0),
                Row::new(0, 11, 1.0),
            ],
            0,
        );
        assert_eq!(
            out,
            AppendOutcome {
                appended: 2,
                out_of_order: 2,
                unknown_series: 1
            }
        );
        h.set_floor(0, 20);
        assert_eq!(h.append(&[Row::new(0, 20, 0.0)], 0).out_of_order, 1);
        assert_eq!(h.open_chunk(0).unwrap().iter().count(), 2);
        assert_eq!(h.close_idle(12), 1);
    }
}
