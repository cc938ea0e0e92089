//! The metric side of the store: steward-tsdb's head and write-ahead log in front of
//! the store's chunk table.
//!
//! A sample is acknowledged once [`Tsdb::append_group`] has synced it into the log.
//! Series get their ids from steward-tsdb's interner and are copied into the store's
//! series table (so `/api/v1/series` lists them) before their first batch is answered.
//! Closed chunks go to the store as one blob each ([`MetricStore::persist`], on the
//! [`super::persister`] thread), after which the log may drop them.
//!
//! [`MetricStore`] is itself a [`Store`]: everything but series and points is passed to
//! the store it wraps, and points are answered from persisted chunks, chunks on their
//! way to the store, and the open head, so a sample is readable from the moment it is
//! acknowledged.

use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use steward_core::{Incident, IncidentStatus, Sample, SeriesKey, TimestampMs};
use steward_tsdb::{
    ChunkIter, ChunkMeta, ClosedChunk, ReplayReport, Row, Tsdb, TsdbOptions, rollup,
};

use super::{
    AnalysisBatch, Band, LogQuery, Point, SeriesId, SeriesInfo, SeriesPoints, Store, StoreError,
    StoreStats, StoredAnomaly, StoredChunk, StoredLog, TemplateRow, WriteBatch,
};

/// The label that holds a series' name, as Prometheus spells it.
pub const NAME_LABEL: &str = "__name__";

/// The head, and the chunks taken from it that the store does not hold yet.
#[derive(Debug)]
pub struct Head {
    /// The database.
    pub db: Tsdb,
    /// Chunks taken from the head and being written (or failed to be written) to the
    /// store; reads include them so that nothing acknowledged disappears meanwhile.
    unsaved: Vec<ClosedChunk>,
}

/// steward-tsdb in front of a [`Store`].
#[derive(Debug)]
pub struct MetricStore {
    inner: Arc<dyn Store>,
    head: Mutex<Head>,
    /// Held by `persist` from its store write until the chunks leave the unsaved list,
    /// and by reads that add the store's counts to the head's: without it such a read
    /// could take the store's count just before a chunk is committed and the head's
    /// just after the chunk left the unsaved list, missing the chunk (it was seen
    /// once: 120 of 84,960 acknowledged samples at 2.1 M samples/s).
    handover: Mutex<()>,
    /// Every id below this is in the store's series table.
    defined_below: AtomicU32,
}

/// A series key as the `(name, value)` pairs steward-tsdb interns: `__name__` and the
/// labels. Not sorted when a label name sorts before `__name__` (upper case): the
/// interner sorts such sets itself.
pub fn key_pairs(key: &SeriesKey) -> impl Iterator<Item = (&str, &str)> + Clone {
    std::iter::once((NAME_LABEL, key.name.as_str()))
        .chain(key.labels.iter().map(|(k, v)| (k.as_str(), v.as_str())))
}

/// The series key of interned pairs.
pub fn key_of<'a>(pairs: impl Iterator<Item = (&'a str, &'a str)>) -> SeriesKey {
    let mut key = SeriesKey::new("");
    for (name, value) in pairs {
        if name == NAME_LABEL {
            key.name = value.to_string();
        } else {
            key.labels.insert(name.to_string(), value.to_string());
        }
    }
    key
}

fn stored(c: &ClosedChunk) -> StoredChunk {
    StoredChunk {
        series: i64::from(c.meta.series),
        min_ts: c.meta.min_ts,
        max_ts: c.meta.max_ts,
        samples: u32::from(c.meta.samples),
        bytes: c.bytes.clone(),
    }
}

fn tsdb_id(id: SeriesId) -> Option<u32> {
    u32::try_from(id).ok()
}

impl MetricStore {
    /// Opens (creating if needed) the head's log in `dir`, replays it, and copies
    /// into `inner` any series definition the log has and the store lacks (the
    /// process may have died between the two).
    pub fn open(
        inner: Arc<dyn Store>,
        dir: &Path,
        options: TsdbOptions,
    ) -> Result<(MetricStore, ReplayReport), StoreError> {
        let (db, report) = Tsdb::open(dir, options)?;
        if !report.corruption.is_empty() || report.bad_records > 0 {
            tracing::warn!(
                "time-series log: {} damaged frames, {} bad records skipped",
                report.corruption.len(),
                report.bad_records
            );
        }
        let below = match inner.highest_series_id()? {
            Some(id) => u32::try_from(id.saturating_add(1)).unwrap_or(0),
            None => 0,
        };
        let store = MetricStore {
            inner,
            head: Mutex::new(Head {
                db,
                unsaved: Vec::new(),
            }),
            handover: Mutex::new(()),
            defined_below: AtomicU32::new(below),
        };
        store.define_pending()?;
        Ok((store, report))
    }

    /// The store behind the head.
    pub fn inner(&self) -> &Arc<dyn Store> {
        &self.inner
    }

    /// Locks the head: the writer thread interns and appends under it.
    pub fn lock(&self) -> Result<MutexGuard<'_, Head>, StoreError> {
        self.head.lock().map_err(|_| StoreError::Poisoned)
    }

    /// Copies the definitions of series the store does not have yet. Ids are dense
    /// and handed out in order, so "not yet" is every id from the last copied on.
    pub fn define_pending(&self) -> Result<usize, StoreError> {
        let from = self.defined_below.load(Ordering::Acquire);
        let (defs, bound) = {
            let head = self.lock()?;
            let bound = u32::try_from(head.db.interner().id_bound()).unwrap_or(u32::MAX);
            if bound <= from {
                return Ok(0);
            }
            let defs: Vec<(SeriesId, SeriesKey)> = (from..bound)
                .filter_map(|id| Some((i64::from(id), key_of(head.db.labels(id)?))))
                .collect();
            (defs, bound)
        };
        self.inner.define_series(&defs)?;
        self.defined_below.fetch_max(bound, Ordering::AcqRel);
        Ok(defs.len())
    }

    /// The key of an interned series.
    pub fn key(&self, id: SeriesId) -> Option<SeriesKey> {
        let head = self.lock().ok()?;
        head.db.labels(tsdb_id(id)?).map(key_of)
    }

    /// The keys of several series, under one lock.
    pub fn keys(&self, ids: &[SeriesId]) -> Vec<Option<SeriesKey>> {
        let Ok(head) = self.lock() else {
            return vec![None; ids.len()];
        };
        ids.iter()
            .map(|&id| head.db.labels(tsdb_id(id)?).map(key_of))
            .collect()
    }

    /// Interns keyed samples and appends them in one commit: the pipeline's
    /// template-rate points. Returns the id of each item.
    pub fn append_keyed(&self, items: &[(SeriesKey, Sample)]) -> Result<Vec<Row>, StoreError> {
        let rows = {
            let mut head = self.lock()?;
            let mut rows = Vec::with_capacity(items.len());
            intern_keyed(&mut head.db, items, &mut rows, &mut 0)?;
            head.db.append(&rows)?;
            rows
        };
        self.define_pending()?;
        Ok(rows)
    }

    /// Moves closed chunks (all open ones too when `close_all`) to the store and
    /// marks them persisted, so the log may drop them. Returns how many were stored.
    /// The store write runs without the lock; until it is done, reads find the
    /// chunks in the unsaved list.
    pub fn persist(&self, close_all: bool) -> Result<usize, StoreError> {
        let batch: Vec<StoredChunk> = {
            let mut head = self.lock()?;
            if close_all {
                head.db.close_all();
            }
            let closed = head.db.take_closed();
            head.unsaved.extend(closed);
            head.unsaved.iter().map(stored).collect()
        };
        if batch.is_empty() {
            return Ok(0);
        }
        let _handover = self.handover.lock().map_err(|_| StoreError::Poisoned)?;
        self.inner.save_chunks(&batch)?;
        let mut head = self.lock()?;
        let saved: Vec<ChunkMeta> = head.unsaved.drain(..batch.len()).map(|c| c.meta).collect();
        head.db.mark_persisted(&saved)?;
        Ok(saved.len())
    }

    /// Closes the open chunks of series with no sample since `before` (gone quiet),
    /// so that their samples reach the store and the log can shrink.
    pub fn close_idle(&self, before: TimestampMs) -> Result<usize, StoreError> {
        Ok(self.lock()?.db.close_idle(before))
    }

    /// The samples the head holds for one series in `[from, to)`: its open chunk,
    /// closed chunks not yet taken, and chunks on their way to the store.
    fn head_chunks(&self, id: u32) -> Result<Vec<ClosedChunk>, StoreError> {
        let head = self.lock()?;
        let mut out: Vec<ClosedChunk> = head
            .unsaved
            .iter()
            .chain(head.db.head().closed_pending())
            .filter(|c| c.meta.series == id)
            .cloned()
            .collect();
        out.extend(head.db.head().open_chunk(id));
        Ok(out)
    }

    /// Samples in the head (open chunks and chunks not yet stored), per series asked.
    fn head_summary(&self, ids: &[SeriesId]) -> Result<Vec<Option<HeadSummary>>, StoreError> {
        let head = self.lock()?;
        Ok(ids
            .iter()
            .map(|&id| {
                let id = tsdb_id(id)?;
                let mut summary: Option<HeadSummary> = None;
                let pending = head
                    .unsaved
                    .iter()
                    .chain(head.db.head().closed_pending())
                    .filter(|c| c.meta.series == id)
                    .cloned();
                for chunk in pending.chain(head.db.head().open_chunk(id)) {
                    let last = chunk.iter().filter_map(Result::ok).last();
                    let s = summary.get_or_insert_default();
                    s.points += u64::from(chunk.meta.samples);
                    if let Some((ts, v)) = last
                        && s.last.is_none_or(|(t, _)| ts >= t)
                    {
                        s.last = Some((ts, v));
                    }
                }
                summary
            })
            .collect())
    }
}

#[derive(Debug, Default, Clone, Copy)]
struct HeadSummary {
    points: u64,
    last: Option<(TimestampMs, f64)>,
}

/// Interns keyed samples into rows. Consecutive samples of one key are interned once.
/// A key steward-tsdb refuses (too many series, a label set too long) is skipped and
/// counted in `refused`.
pub fn intern_keyed(
    db: &mut Tsdb,
    items: &[(SeriesKey, Sample)],
    rows: &mut Vec<Row>,
    refused: &mut u64,
) -> Result<(), StoreError> {
    let mut last: Option<(&SeriesKey, u32)> = None;
    for (key, sample) in items {
        let id = match last {
            Some((k, id)) if k == key => id,
            _ => match db.intern(key_pairs(key)) {
                Ok(id) => {
                    last = Some((key, id));
                    id
                }
                Err(steward_tsdb::TsdbError::Labels(e)) => {
                    tracing::debug!("series {key} refused: {e}");
                    *refused += 1;
                    continue;
                }
                Err(e) => return Err(e.into()),
            },
        };
        rows.push(Row::new(id, sample.timestamp_ms, sample.value));
    }
    Ok(())
}

/// Decodes chunks into points in `[from, to)`, one per timestamp (a chunk stored and
/// also replayed after a crash holds the same samples), with the bands stored for
/// their timestamps. With `step_ms`, or when there are more than `max_points` samples,
/// they are rolled up per step (see [`downsample`]) instead of thinned, so that a spike
/// between kept points is not lost.
pub fn points_of(
    stored: &[StoredChunk],
    head: Option<&[ClosedChunk]>,
    bands: &[(TimestampMs, Band)],
    from: TimestampMs,
    to: TimestampMs,
    step_ms: Option<i64>,
    max_points: usize,
) -> SeriesPoints {
    let mut samples: Vec<(i64, f64)> = Vec::new();
    let mut take = |iter: ChunkIter<'_>| {
        // A damaged blob yields what decoded before the flaw.
        samples.extend(
            iter.map_while(Result::ok)
                .filter(|(ts, _)| *ts >= from && *ts < to),
        );
    };
    for c in stored {
        take(ChunkIter::new(&c.bytes));
    }
    for c in head.unwrap_or_default() {
        take(c.iter());
    }
    samples.sort_by_key(|(ts, _)| *ts);
    samples.dedup_by_key(|(ts, _)| *ts);
    let mut bands = bands.to_vec();
    bands.sort_by_key(|(ts, _)| *ts);
    let max_points = max_points.max(1);
    let step = match step_ms {
        Some(step) => step.max(1),
        None if samples.len() <= max_points => {
            let points = samples
                .into_iter()
                .map(|(ts, value)| Point {
                    timestamp_ms: ts,
                    value,
                    band: bands
                        .binary_search_by_key(&ts, |(t, _)| *t)
                        .ok()
                        .map(|i| bands[i].1),
                    min: None,
                    max: None,
                    count: None,
                })
                .collect();
            return SeriesPoints {
                step_ms: None,
                points,
            };
        }
        None => auto_step(&samples, max_points),
    };
    let mut step = step;
    loop {
        let points = downsample(&samples, &bands, step);
        // Steps are aligned to multiples of the step, so the first guess can give one
        // step too many; an explicit step is the caller's choice and is kept. At the
        // widest step, samples on both sides of zero still take up to three steps.
        if step_ms.is_some() || points.len() <= max_points || step == i64::MAX {
            return SeriesPoints {
                step_ms: Some(step),
                points,
            };
        }
        step = step.saturating_mul(2);
    }
}

/// The smallest step (in whole ms) at which the samples' time span fits `max_points`
/// steps, before alignment.
fn auto_step(samples: &[(i64, f64)], max_points: usize) -> i64 {
    let (Some(first), Some(last)) = (samples.first(), samples.last()) else {
        return 1;
    };
    let span = i128::from(last.0) - i128::from(first.0) + 1;
    let slots = i128::try_from(max_points.saturating_sub(1).max(1)).unwrap_or(i128::MAX);
    let step = (span + slots - 1) / slots;
    i64::try_from(step).unwrap_or(i64::MAX).max(1)
}

/// One point per step that holds samples: stamped at the step's start, valued at its
/// mean, with its min, max and count (steward-tsdb's rollup). Its band, where the
/// detector scored samples of the step, is the mean of their expected values and edges
/// with the highest score, so an anomalous sample still marks its step.
fn downsample(samples: &[(i64, f64)], bands: &[(TimestampMs, Band)], step: i64) -> Vec<Point> {
    rollup(samples.iter().copied(), step)
        .into_iter()
        .map(|r| {
            let end = r.start_ms.saturating_add(step);
            let lo = bands.partition_point(|(t, _)| *t < r.start_ms);
            let hi = bands.partition_point(|(t, _)| *t < end);
            Point {
                timestamp_ms: r.start_ms,
                value: r.mean(),
                band: mean_band(&bands[lo..hi]),
                min: Some(r.min),
                max: Some(r.max),
                count: Some(r.count),
            }
        })
        .collect()
}

fn mean_band(bands: &[(TimestampMs, Band)]) -> Option<Band> {
    if bands.is_empty() {
        return None;
    }
    #[allow(clippy::cast_precision_loss)]
    let n = bands.len() as f64;
    let mean = |f: fn(&Band) -> f64| bands.iter().map(|(_, b)| f(b)).sum::<f64>() / n;
    Some(Band {
        expected: mean(|b| b.expected),
        lower: mean(|b| b.lower),
        upper: mean(|b| b.upper),
        score: bands.iter().map(|(_, b)| b.score).fold(0.0, f64::max),
    })
}

impl Store for MetricStore {
    fn append(&self, batch: &WriteBatch) -> Result<Option<i64>, StoreError> {
        self.inner.append(batch)
    }
    fn logs_after(&self, after: i64, limit: usize) -> Result<Vec<StoredLog>, StoreError> {
        self.inner.logs_after(after, limit)
    }
    fn intern(&self, keys: &[&SeriesKey]) -> Result<Vec<SeriesId>, StoreError> {
        let ids = {
            let mut head = self.lock()?;
            let mut ids = Vec::with_capacity(keys.len());
            for key in keys {
                ids.push(i64::from(head.db.intern(key_pairs(key))?));
            }
            head.db.sync()?;
            ids
        };
        self.define_pending()?;
        Ok(ids)
    }
    fn define_series(&self, defs: &[(SeriesId, SeriesKey)]) -> Result<(), StoreError> {
        self.inner.define_series(defs)
    }
    fn highest_series_id(&self) -> Result<Option<SeriesId>, StoreError> {
        self.inner.highest_series_id()
    }
    fn save_chunks(&self, chunks: &[StoredChunk]) -> Result<(), StoreError> {
        self.inner.save_chunks(chunks)
    }
    fn chunks(
        &self,
        id: SeriesId,
        from: TimestampMs,
        to: TimestampMs,
    ) -> Result<Vec<StoredChunk>, StoreError> {
        self.inner.chunks(id, from, to)
    }
    fn bands(
        &self,
        id: SeriesId,
        from: TimestampMs,
        to: TimestampMs,
    ) -> Result<Vec<(TimestampMs, Band)>, StoreError> {
        self.inner.bands(id, from, to)
    }
    fn save_analysis(&self, batch: &AnalysisBatch) -> Result<(), StoreError> {
        self.inner.save_analysis(batch)
    }
    fn state(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.inner.state(name)
    }
    fn search_logs(&self, query: &LogQuery) -> Result<Vec<StoredLog>, StoreError> {
        self.inner.search_logs(query)
    }
    fn series(
        &self,
        name: Option<&str>,
        labels: &[(String, String)],
        limit: usize,
    ) -> Result<Vec<SeriesInfo>, StoreError> {
        let _handover = self.handover.lock().map_err(|_| StoreError::Poisoned)?;
        let mut list = self.inner.series(name, labels, limit)?;
        let ids: Vec<SeriesId> = list.iter().map(|s| s.id).collect();
        let heads = self.head_summary(&ids)?;
        for (info, head) in list.iter_mut().zip(heads) {
            if let Some(h) = head {
                info.points += h.points;
                if let Some((ts, v)) = h.last
                    && info.last_ms.is_none_or(|l| ts >= l)
                {
                    info.last_ms = Some(ts);
                    info.last_value = Some(v);
                }
            }
        }
        Ok(list)
    }
    fn series_key(&self, id: SeriesId) -> Result<Option<SeriesKey>, StoreError> {
        match self.key(id) {
            Some(key) => Ok(Some(key)),
            None => self.inner.series_key(id),
        }
    }
    fn points_by_step(
        &self,
        id: SeriesId,
        from: TimestampMs,
        to: TimestampMs,
        step_ms: Option<i64>,
        max_points: usize,
    ) -> Result<SeriesPoints, StoreError> {
        let head = match tsdb_id(id) {
            Some(id) => self.head_chunks(id)?,
            None => Vec::new(),
        };
        let stored = self.inner.chunks(id, from, to)?;
        let bands = self.inner.bands(id, from, to)?;
        Ok(points_of(
            &stored,
            Some(&head),
            &bands,
            from,
            to,
            step_ms,
            max_points,
        ))
    }
    fn templates(&self, limit: usize) -> Result<Vec<TemplateRow>, StoreError> {
        self.inner.templates(limit)
    }
    fn template(&self, id: u64) -> Result<Option<TemplateRow>, StoreError> {
        self.inner.template(id)
    }
    fn anomalies(
        &self,
        from: TimestampMs,
        to: TimestampMs,
        limit: usize,
    ) -> Result<Vec<StoredAnomaly>, StoreError> {
        self.inner.anomalies(from, to, limit)
    }
    fn incidents(
        &self,
        status: Option<IncidentStatus>,
        limit: usize,
    ) -> Result<Vec<Incident>, StoreError> {
        self.inner.incidents(status, limit)
    }
    fn incident(&self, id: u64) -> Result<Option<Incident>, StoreError> {
        self.inner.incident(id)
    }
    fn prune_logs(&self, before: TimestampMs) -> Result<u64, StoreError> {
        self.inner.prune_logs(before)
    }
    fn stats(&self) -> Result<StoreStats, StoreError> {
        let _handover = self.handover.lock().map_err(|_| StoreError::Poisoned)?;
        let mut stats = self.inner.stats()?;
        let head = self.lock()?;
        let pending: u64 = head
            .unsaved
            .iter()
            .chain(head.db.head().closed_pending())
            .map(|c| u64::from(c.meta.samples))
            .sum();
        stats.samples += pending + head.db.head().open_samples();
        stats.series = stats.series.max(head.db.interner().len() as u64);
        Ok(stats)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use steward_tsdb::ChunkAppender;

    fn chunk(samples: &[(i64, f64)]) -> StoredChunk {
        let mut c = ChunkAppender::new();
        for &(ts, v) in samples {
            c.append(ts, v).unwrap();
        }
        StoredChunk {
            series: 1,
            min_ts: samples[0].0,
            max_ts: samples[samples.len() - 1].0,
            samples: u32::try_from(samples.len()).unwrap(),
            bytes: c.to_bytes(),
        }
    }

    fn band(expected: f64, score: f64) -> Band {
        Band {
            expected,
            lower: expected - 1.0,
            upper: expected + 1.0,
            score,
        }
    }

    #[test]
    fn over_budget_ranges_roll_up_and_keep_the_spike() {
        let samples: Vec<(i64, f64)> = (0..1_000)
            .map(|i| (i * 1_000, if i == 617 { 50.0 } else { 2.0 }))
            .collect();
        // The same samples twice (stored and replayed) count once.
        let stored = [chunk(&samples[..600]), chunk(&samples[500..])];
        let bands = [(617_000, band(2.0, 0.99)), (618_000, band(4.0, 0.1))];
        let got = points_of(&stored, None, &bands, 0, i64::MAX, None, 10);
        let step = got.step_ms.unwrap();
        assert!(got.points.len() <= 10 && got.points.len() >= 5);
        let total: u64 = got.points.iter().filter_map(|p| p.count).sum();
        assert_eq!(total, 1_000);
        let spiked = got.points.iter().find(|p| p.max == Some(50.0)).unwrap();
        assert!(spiked.timestamp_ms <= 617_000 && 617_000 < spiked.timestamp_ms + step);
        let n = spiked.count.unwrap() as f64;
        assert!((spiked.value - (2.0 * (n - 1.0) + 50.0) / n).abs() < 1e-12);
        assert_eq!(spiked.min, Some(2.0));
        let b = spiked.band.unwrap();
        assert_eq!((b.expected, b.lower, b.score), (3.0, 2.0, 0.99));
        assert!(
            got.points
                .iter()
                .filter(|p| p.max != Some(50.0))
                .all(|p| p.band.is_none())
        );

        // Within budget: raw samples, no rollup fields.
        let raw = points_of(&stored, None, &bands, 617_000, 620_000, None, 10);
        assert_eq!(raw.step_ms, None);
        assert_eq!(raw.points.len(), 3);
        assert_eq!((raw.points[0].value, raw.points[0].count), (50.0, None));
        assert_eq!(raw.points[0].band, Some(bands[0].1));

        // An explicit step is kept even past the budget; the API refuses that case.
        let fine = points_of(&stored, None, &[], 0, i64::MAX, Some(100_000), 3);
        assert_eq!(fine.step_ms, Some(100_000));
        assert_eq!(fine.points.len(), 10);
        assert!(fine.points.iter().all(|p| p.count == Some(100)));
    }

    #[test]
    fn extreme_timestamps_end_the_search_for_a_step() {
        let samples = [(i64::MIN, 1.0), (-1, 2.0), (0, 3.0), (i64::MAX - 1, 4.0)];
        let got = points_of(&[chunk(&samples)], None, &[], i64::MIN, i64::MAX, None, 1);
        assert_eq!(got.step_ms, Some(i64::MAX));
        assert_eq!(got.points.iter().filter_map(|p| p.count).sum::<u64>(), 4);
    }

    #[test]
    fn a_budget_of_one_gives_one_point() {
        let samples: Vec<(i64, f64)> = (0..7).map(|i| (i * 333 + 5, i as f64)).collect();
        let got = points_of(&[chunk(&samples)], None, &[], 0, i64::MAX, None, 1);
        assert_eq!(got.points.len(), 1);
        assert_eq!(got.points[0].count, Some(7));
        assert_eq!(got.points[0].value, 3.0);
        assert_eq!(
            (got.points[0].min, got.points[0].max),
            (Some(0.0), Some(6.0))
        );
    }
}
