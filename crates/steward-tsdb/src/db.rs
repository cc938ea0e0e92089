//! The head behind its write-ahead log.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::path::{Path, PathBuf};

use crate::head::{AppendOutcome, ChunkLimits, ChunkMeta, ClosedChunk, Head, Row};
use crate::interner::{Interned, Labels, SeriesInterner};
use crate::wal::{self, Corruption, Record, SyncPolicy, Wal, frames, io_err, segment_path};
use crate::{SeriesId, TsdbError};

/// How a [`Tsdb`] cuts chunks and writes its log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TsdbOptions {
    /// When open chunks are cut.
    pub limits: ChunkLimits,
    /// When a commit reaches the disk.
    pub sync: SyncPolicy,
    /// The size at which the log starts a new segment (at least 4 KiB).
    pub segment_bytes: u64,
}

impl Default for TsdbOptions {
    fn default() -> Self {
        TsdbOptions {
            limits: ChunkLimits::default(),
            sync: SyncPolicy::Always,
            segment_bytes: 128 << 20,
        }
    }
}

/// What opening the database found in its log.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplayReport {
    /// Segments read.
    pub segments: usize,
    /// Records read whole.
    pub records: usize,
    /// Series defined.
    pub series: usize,
    /// Samples put back into the head.
    pub samples: u64,
    /// Samples in the log not put back: already persisted by the store (or refused
    /// when they were first written, for the same reason).
    pub samples_skipped: u64,
    /// Records whose checksum held but whose content did not decode, or series
    /// definitions that conflicted with earlier ones; they were skipped.
    pub bad_records: usize,
    /// Torn or damaged frames; replay stopped at each for the rest of its segment.
    pub corruption: Vec<Corruption>,
}

/// The head behind a write-ahead log, in one directory.
///
/// Writes go through one `&mut Tsdb` at a time (the store's writer thread): intern the
/// series of a batch, then [`Tsdb::append`] it (or [`Tsdb::append_group`] several
/// batches with one sync). When either returns `Ok`, the batch is in the log and, with
/// [`SyncPolicy::Always`], on disk: the caller may acknowledge it.
///
/// Closed chunks are handed to the store by [`Tsdb::take_closed`]; once the store has
/// them durably, [`Tsdb::mark_persisted`] says so, and the log may drop segments that
/// only hold persisted samples.
#[derive(Debug)]
pub struct Tsdb {
    dir: PathBuf,
    interner: SeriesInterner,
    head: Head,
    wal: Wal,
    /// The segment holding each series' definition (`u32::MAX`: none).
    def_segment: Vec<u32>,
    /// Chunks taken by the store and not yet marked persisted, by first segment.
    in_flight: BTreeMap<u32, usize>,
    /// The last timestamp the store holds, per series (`i64::MIN`: none). Logged again
    /// with the definitions when old segments go, so that a replay still refuses
    /// samples the store already has.
    persisted_ts: Vec<i64>,
    truncation_checked_at: Option<u32>,
}

impl Tsdb {
    /// Opens (creating if needed) the database in `dir` and replays its log.
    ///
    /// A damaged log is not an error: the good records are replayed, a torn tail of the
    /// last segment is cut off, and every flaw is in the report. Errors are I/O
    /// failures only.
    pub fn open(
        dir: impl AsRef<Path>,
        options: TsdbOptions,
    ) -> Result<(Tsdb, ReplayReport), TsdbError> {
        let dir = dir.as_ref().to_path_buf();
        fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        let segments = wal::list_segments(&dir)?;
        let mut report = ReplayReport {
            segments: segments.len(),
            ..ReplayReport::default()
        };
        let mut interner = SeriesInterner::new();
        let mut def_segment: Vec<u32> = Vec::new();
        let mut floors: HashMap<SeriesId, i64> = HashMap::new();
        let mut good_len = Vec::with_capacity(segments.len());
        let mut rows = Vec::new();

        // Pass 1: definitions and persisted marks, which samples in earlier segments
        // may need; and where each segment's good part ends.
        for (i, &seg) in segments.iter().enumerate() {
            let path = segment_path(&dir, seg);
            let data = fs::read(&path).map_err(io_err(&path))?;
            let mut good = data.len();
            for frame in frames(&data) {
                match frame {
                    Ok((_, payload)) => {
                        report.records += 1;
                        match wal::decode(payload, &mut rows) {
                            Some(Record::Series(defs)) => {
                                for (id, labels) in defs {
                                    if interner.define_with_id(id, labels.iter().copied()).is_err()
                                    {
                                        report.bad_records += 1;
                                        continue;
                                    }
                                    let idx = id as usize;
                                    if def_segment.len() <= idx {
                                        def_segment.resize(idx + 1, u32::MAX);
                                    }
                                    def_segment[idx] = seg;
                                }
                            }
                            Some(Record::Persisted(marks)) => {
                                for (id, ts) in marks {
                                    let f = floors.entry(id).or_insert(ts);
                                    *f = (*f).max(ts);
                                }
                            }
                            Some(Record::Samples) => {}
                            None => report.bad_records += 1,
                        }
                    }
                    Err((at, reason)) => {
                        good = at;
                        let last = i + 1 == segments.len();
                        if last {
                            // A torn write: the process died mid-append. Cut it off so
                            // that the segment reads clean next time.
                            fs::OpenOptions::new()
                                .write(true)
                                .open(&path)
                                .and_then(|f| {
                                    f.set_len(at as u64)?;
                                    f.sync_all()
                                })
                                .map_err(io_err(&path))?;
                        }
                        report.corruption.push(Corruption {
                            segment: seg,
                            offset: at as u64,
                            dropped_bytes: (data.len() - at) as u64,
                            reason,
                            truncated: last,
                        });
                    }
                }
            }
            good_len.push(good);
        }
        report.series = interner.len();

        // Pass 2: samples, in log order, over what the store does not hold yet.
        let mut head = Head::new(options.limits);
        head.set_series_bound(interner.id_bound());
        for (&id, &ts) in &floors {
            head.set_floor(id, ts);
        }
        for (&seg, &good) in segments.iter().zip(&good_len) {
            let path = segment_path(&dir, seg);
            let data = fs::read(&path).map_err(io_err(&path))?;
            let data = data.get(..good).unwrap_or(&data);
            for (_, payload) in frames(data).flatten() {
                if let Some(Record::Samples) = wal::decode(payload, &mut rows) {
                    let out = head.append(&rows, seg);
                    report.samples += out.appended as u64;
                    report.samples_skipped += out.refused() as u64;
                }
            }
        }

        let next = match segments.last() {
            Some(&l) => l.checked_add(1).ok_or(TsdbError::WalBroken)?,
            None => 0,
        };
        let first = segments.first().copied().unwrap_or(next);
        let wal = Wal::create(&dir, next, first, options.segment_bytes, options.sync)?;
        let mut persisted_ts = vec![i64::MIN; interner.id_bound()];
        for (&id, &ts) in &floors {
            if let Some(p) = persisted_ts.get_mut(id as usize) {
                *p = ts;
            }
        }
        Ok((
            Tsdb {
                dir,
                interner,
                head,
                wal,
                def_segment,
                in_flight: BTreeMap::new(),
                persisted_ts,
                truncation_checked_at: None,
            },
            report,
        ))
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The id of a label set, defining it (and logging the definition with the next
    /// commit) if it is new. Pairs sorted by name take the allocation-free path.
    pub fn intern<'a, I>(&mut self, labels: I) -> Result<SeriesId, TsdbError>
    where
        I: IntoIterator<Item = (&'a str, &'a str)>,
        I::IntoIter: Clone,
    {
        match self.interner.intern(labels)? {
            Interned::Existing(id) => Ok(id),
            Interned::New(id) => {
                if let Some(labels) = self.interner.labels(id) {
                    self.wal.log_series(id, labels);
                }
                let idx = id as usize;
                if self.def_segment.len() <= idx {
                    self.def_segment.resize(idx + 1, u32::MAX);
                }
                self.def_segment[idx] = self.wal.segment();
                if self.persisted_ts.len() <= idx {
                    self.persisted_ts.resize(idx + 1, i64::MIN);
                }
                self.head.set_series_bound(self.interner.id_bound());
                Ok(id)
            }
        }
    }

    /// The labels of a series.
    pub fn labels(&self, id: SeriesId) -> Option<Labels<'_>> {
        self.interner.labels(id)
    }

    /// The interner (read-only: define series through [`Tsdb::intern`]).
    pub fn interner(&self) -> &SeriesInterner {
        &self.interner
    }

    /// The head (read-only).
    pub fn head(&self) -> &Head {
        &self.head
    }

    /// Logs a batch, makes it durable, then appends it to the head.
    pub fn append(&mut self, rows: &[Row]) -> Result<AppendOutcome, TsdbError> {
        let mut out = AppendOutcome::default();
        for o in self.append_group(&[rows])? {
            out.add(o);
        }
        Ok(out)
    }

    /// Group commit: logs every batch, syncs once, then appends them in order. Each
    /// batch's outcome is returned; none is applied if the log write fails.
    pub fn append_group(&mut self, batches: &[&[Row]]) -> Result<Vec<AppendOutcome>, TsdbError> {
        for b in batches {
            self.wal.log_samples(b);
        }
        let segment = self.wal.commit()?;
        Ok(batches
            .iter()
            .map(|b| self.head.append(b, segment))
            .collect())
    }

    /// Writes and syncs pending series definitions (a commit does this too).
    pub fn sync(&mut self) -> Result<(), TsdbError> {
        if self.wal.has_pending() {
            self.wal.commit()?;
        }
        Ok(())
    }

    /// The chunks closed since the last call, for the store to persist. The log keeps
    /// their samples until [`Tsdb::mark_persisted`] names them.
    pub fn take_closed(&mut self) -> Vec<ClosedChunk> {
        let closed = self.head.take_closed();
        for c in &closed {
            *self.in_flight.entry(c.meta.wal_segment).or_default() += 1;
        }
        closed
    }

    /// Says that the store holds these chunks (from [`Tsdb::take_closed`]) durably.
    /// The marks are logged (one sync), and log segments that hold nothing unpersisted
    /// any more are deleted (the series definitions in them are logged again first).
    /// Returns how many segments were deleted. Call it once per store transaction, not
    /// per chunk: each call syncs.
    pub fn mark_persisted(&mut self, chunks: &[ChunkMeta]) -> Result<usize, TsdbError> {
        if chunks.is_empty() {
            return Ok(0);
        }
        let marks: Vec<(SeriesId, i64)> = chunks.iter().map(|m| (m.series, m.max_ts)).collect();
        self.wal.log_persisted(&marks);
        self.wal.commit()?;
        for m in chunks {
            if let Some(p) = self.persisted_ts.get_mut(m.series as usize) {
                *p = (*p).max(m.max_ts);
            }
            if let Some(n) = self.in_flight.get_mut(&m.wal_segment) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    self.in_flight.remove(&m.wal_segment);
                }
            }
        }
        // Scanning the head costs a pass over every series: do it once per segment
        // the log has moved on, not on every call.
        if self.truncation_checked_at == Some(self.wal.segment()) {
            return Ok(0);
        }
        self.truncate_wal()
    }

    /// Deletes the log segments that hold nothing unpersisted. Returns how many.
    pub fn truncate_wal(&mut self) -> Result<usize, TsdbError> {
        self.truncation_checked_at = Some(self.wal.segment());
        let mut needed = self.wal.segment();
        if let Some(s) = self.head.oldest_segment() {
            needed = needed.min(s);
        }
        if let Some((&s, _)) = self.in_flight.iter().next() {
            needed = needed.min(s);
        }
        if needed <= self.wal.first_segment() {
            return Ok(0);
        }
        let current = self.wal.segment();
        let mut marks = Vec::new();
        for (idx, seg) in self.def_segment.iter_mut().enumerate() {
            if *seg < needed {
                if let Some(labels) = self.interner.labels(idx as SeriesId) {
                    self.wal.log_series(idx as SeriesId, labels);
                    *seg = current;
                    // The mark that keeps persisted samples out of a replay may be in
                    // a segment about to go: log it again with the definition.
                    match self.persisted_ts.get(idx) {
                        Some(&ts) if ts != i64::MIN => marks.push((idx as SeriesId, ts)),
                        _ => {}
                    }
                }
            }
        }
        self.wal.log_persisted(&marks);
        self.wal.commit()?;
        self.wal.remove_before(needed)
    }

    /// Closes every open chunk (at shutdown), so that [`Tsdb::take_closed`] returns all.
    pub fn close_all(&mut self) {
        self.head.close_all();
    }

    /// Closes the open chunks whose last sample is before `ts` (series gone quiet).
    pub fn close_idle(&mut self, ts: i64) -> usize {
        self.head.close_idle(ts)
    }

    /// The oldest and the current log segment numbers.
    pub fn wal_segments(&self) -> (u32, u32) {
        (self.wal.first_segment(), self.wal.segment())
    }

    /// Bytes in the current log segment.
    pub fn wal_segment_len(&self) -> u64 {
        self.wal.segment_len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn opts() -> TsdbOptions {
        TsdbOptions {
            limits: ChunkLimits {
                max_samples: 8,
                max_span_ms: i64::MAX,
            },
            sync: SyncPolicy::Always,
            segment_bytes: 4096,
        }
    }

    fn all_samples(db: &mut Tsdb, closed: &[ClosedChunk], id: SeriesId) -> Vec<(i64, f64)> {
        let mut out: Vec<(i64, f64)> = closed
            .iter()
            .filter(|c| c.meta.series == id)
            .flat_map(|c| c.iter().map(Result::unwrap))
            .collect();
        if let Some(open) = db.head().open_chunk(id) {
            out.extend(open.iter().map(Result::unwrap));
        }
        out
    }

    #[test]
    fn acknowledged_samples_come_back_after_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (mut db, report) = Tsdb::open(dir.path(), opts()).unwrap();
            assert_eq!(report, ReplayReport::default());
            let a = db.intern([("__name__", "up"), ("job", "a")]).unwrap();
            let b = db.intern([("__name__", "up"), ("job", "b")]).unwrap();
            for t in 0..20 {
                let out = db
                    .append(&[Row::new(a, t, t as f64), Row::new(b, t, -(t as f64))])
                    .unwrap();
                assert_eq!(out.appended, 2);
            }
            // Dropped without any shutdown, as after kill -9.
        }
        let (mut db, report) = Tsdb::open(dir.path(), opts()).unwrap();
        assert_eq!(report.series, 2);
        assert_eq!(report.samples, 40);
        assert!(report.corruption.is_empty());
        let a = db.intern([("__name__", "up"), ("job", "a")]).unwrap();
        let closed = db.take_closed();
        let got = all_samples(&mut db, &closed, a);
        assert_eq!(got, (0..20).map(|t| (t, t as f64)).collect::<Vec<_>>());
    }

    #[test]
    fn a_torn_tail_is_cut_and_reported() {
        let dir = tempfile::tempdir().unwrap();
        let id;
        {
            let (mut db, _) = Tsdb::open(dir.path(), opts()).unwrap();
            id = db.intern([("x", "1")]).unwrap();
            db.append(&[Row::new(id, 1, 1.0)]).unwrap();
            db.append(&[Row::new(id, 2, 2.0)]).unwrap();
        }
        // A write that died half way: a frame header promising more than follows.
        let seg = segment_path(dir.path(), 0);
        let good = fs::metadata(&seg).unwrap().len();
        let mut f = fs::OpenOptions::new().append(true).open(&seg).unwrap();
        f.write_all(&[200, 0, 0, 0, 1, 2, 3, 4, 2, 1]).unwrap();
        drop(f);
        let (mut db, report) = Tsdb::open(dir.path(), opts()).unwrap();
        assert_eq!(report.samples, 2);
        assert_eq!(report.corruption.len(), 1);
        assert_eq!(report.corruption[0].offset, good);
        assert!(report.corruption[0].truncated);
        assert_eq!(fs::metadata(&seg).unwrap().len(), good);
        // The database goes on, and the next open is clean.
        db.append(&[Row::new(id, 3, 3.0)]).unwrap();
        drop(db);
        let (db, report) = Tsdb::open(dir.path(), opts()).unwrap();
        assert!(report.corruption.is_empty());
        assert_eq!(report.samples, 3);
        assert_eq!(db.head().last_ts(id), Some(3));
    }

    #[test]
    fn persisted_chunks_let_the_log_shrink_and_are_not_replayed() {
        let dir = tempfile::tempdir().unwrap();
        let n_series = 50u32;
        let mut persisted: Vec<ClosedChunk> = Vec::new();
        {
            let (mut db, _) = Tsdb::open(dir.path(), opts()).unwrap();
            let ids: Vec<SeriesId> = (0..n_series)
                .map(|i| db.intern([("s", i.to_string().as_str())]).unwrap())
                .collect();
            for t in 0..100i64 {
                let rows: Vec<Row> = ids.iter().map(|&id| Row::new(id, t, t as f64)).collect();
                db.append(&rows).unwrap();
                let closed = db.take_closed();
                let metas: Vec<ChunkMeta> = closed.iter().map(|c| c.meta).collect();
                persisted.extend(closed);
                db.mark_persisted(&metas).unwrap();
            }
            let (first, current) = db.wal_segments();
            assert!(first > 0, "segments {first}..{current}");
            assert!(
                wal::list_segments(dir.path()).unwrap().len() < (current as usize + 1),
                "old segments were deleted"
            );
        }
        let (mut db, report) = Tsdb::open(dir.path(), opts()).unwrap();
        assert!(report.corruption.is_empty(), "{report:?}");
        assert_eq!(report.series, n_series as usize);
        let closed = db.take_closed();
        assert!(
            closed.is_empty(),
            "persisted chunks came back: {}",
            closed.len()
        );
        for id in 0..n_series {
            let mut got: Vec<(i64, f64)> = persisted
                .iter()
                .filter(|c| c.meta.series == id)
                .flat_map(|c| c.iter().map(Result::unwrap))
                .collect();
            got.extend(all_samples(&mut db, &[], id));
            assert_eq!(
                got,
                (0..100).map(|t| (t, t as f64)).collect::<Vec<_>>(),
                "series {id}"
            );
        }
        // New series keep getting fresh ids.
        let fresh = db.intern([("s", "new")]).unwrap();
        assert_eq!(fresh, n_series);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

        /// Any damage to a log (a flipped byte, a cut) opens without panicking, reports
        /// itself, and replays only samples that were written.
        #[test]
        fn damaged_logs_open_and_report(flip in 0usize..4096, bit in 0u8..8, cut in 0usize..4096) {
            let dir = tempfile::tempdir().unwrap();
            {
                let (mut db, _) = Tsdb::open(dir.path(), TsdbOptions { segment_bytes: 1 << 20, ..opts() }).unwrap();
                let ids: Vec<SeriesId> = (0..5).map(|i| db.intern([("i", i.to_string().as_str())]).unwrap()).collect();
                for t in 0..30 {
                    let rows: Vec<Row> = ids.iter().map(|&id| Row::new(id, t, t as f64)).collect();
                    db.append(&rows).unwrap();
                }
            }
            let seg = segment_path(dir.path(), 0);
            let mut data = fs::read(&seg).unwrap();
            let at = flip % data.len();
            data[at] ^= 1 << bit;
            data.truncate(data.len() - cut % data.len());
            fs::write(&seg, &data).unwrap();
            let (mut db, report) = Tsdb::open(dir.path(), opts()).unwrap();
            proptest::prop_assert!(report.samples <= 150);
            // A flipped bit that was not cut away is always found (a clean cut at a
            // frame boundary is indistinguishable from a crash before those writes).
            if at < data.len() {
                proptest::prop_assert!(!report.corruption.is_empty() || report.bad_records > 0);
            }
            db.close_all();
            for c in db.take_closed() {
                proptest::prop_assert!(c.iter().all(|s| s.is_ok()));
            }
            // What was replayed is consistent: opening again finds no new damage.
            drop(db);
            let (_, again) = Tsdb::open(dir.path(), opts()).unwrap();
            proptest::prop_assert!(again.corruption.is_empty() || again.corruption.iter().all(|c| !c.truncated));
        }
    }

    #[test]
    fn the_persisted_floor_outlives_the_segments_that_held_it() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (mut db, _) = Tsdb::open(dir.path(), opts()).unwrap();
            let quiet = db.intern([("s", "quiet")]).unwrap();
            let busy = db.intern([("s", "busy")]).unwrap();
            db.append(&(0..10).map(|t| Row::new(quiet, t, 1.0)).collect::<Vec<_>>())
                .unwrap();
            db.close_idle(100);
            let metas: Vec<ChunkMeta> = db.take_closed().iter().map(|c| c.meta).collect();
            db.mark_persisted(&metas).unwrap();
            // Enough traffic on another series to roll and drop old segments.
            for t in 0..400 {
                db.append(&[Row::new(busy, t, t as f64)]).unwrap();
                let metas: Vec<ChunkMeta> = db.take_closed().iter().map(|c| c.meta).collect();
                db.mark_persisted(&metas).unwrap();
            }
            assert!(db.wal_segments().0 > 0, "no segment was dropped");
        }
        let (mut db, report) = Tsdb::open(dir.path(), opts()).unwrap();
        assert!(report.corruption.is_empty());
        assert_eq!(db.head().last_ts(0), Some(9));
        assert_eq!(db.append(&[Row::new(0, 5, 0.0)]).unwrap().out_of_order, 1);
        assert_eq!(db.append(&[Row::new(0, 10, 0.0)]).unwrap().appended, 1);
    }

    #[test]
    fn unpersisted_closed_chunks_come_back_after_a_crash() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (mut db, _) = Tsdb::open(dir.path(), opts()).unwrap();
            let id = db.intern([("a", "b")]).unwrap();
            let rows: Vec<Row> = (0..20).map(|t| Row::new(id, t, 0.5)).collect();
            db.append(&rows).unwrap();
            // Taken by the store, but the process dies before it is marked persisted.
            assert_eq!(db.take_closed().len(), 2);
        }
        let (mut db, report) = Tsdb::open(dir.path(), opts()).unwrap();
        assert_eq!(report.samples, 20);
        assert_eq!(db.take_closed().len(), 2);
        assert_eq!(db.head().open_chunk(0).unwrap().meta.samples, 4);
    }
}
