//! The write-ahead log: append-only segment files of framed records.
//!
//! A segment is `NNNNNNNN.wal` (decimal, eight digits) in the log directory. Each record
//! is framed as
//!
//! ```text
//! u32 little-endian   payload length
//! u32 little-endian   CRC-32 (IEEE) of the payload
//! payload             a type byte, then the record
//! ```
//!
//! Records: series definitions (id and label pairs), sample batches (series id, a
//! timestamp delta against the batch's first timestamp, the value's bits) and
//! "persisted" marks (series id and the last timestamp the store holds).
//!
//! Reading stops at the first frame whose length runs past the file or whose checksum
//! does not match: that is a torn write (the process died mid-append) or a damaged
//! disk. Either way it is reported with its place, never a panic.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::head::Row;
use crate::interner::{put_uvarint, take_uvarint};
use crate::{SeriesId, TsdbError};

/// When a commit reaches the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SyncPolicy {
    /// Every commit is `fdatasync`ed before it returns: an acknowledged batch survives
    /// `kill -9` and power loss. Group commit (several batches, one sync) keeps this
    /// affordable.
    #[default]
    Always,
    /// Commits are written to the OS and never synced by the log: they survive the
    /// process dying (`kill -9`) but not the machine. For benchmarks and tests.
    Never,
}

pub(crate) const REC_SERIES: u8 = 1;
pub(crate) const REC_SAMPLES: u8 = 2;
pub(crate) const REC_PERSISTED: u8 = 3;

/// A frame longer than this is taken for corruption (a batch is split well below it).
const MAX_PAYLOAD: usize = 64 << 20;
/// Rows per samples record; larger batches are split.
const ROWS_PER_RECORD: usize = 1 << 20;
const HEADER: usize = 8;

/// A flaw found while reading the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Corruption {
    /// The segment.
    pub segment: u32,
    /// Where its first bad frame starts.
    pub offset: u64,
    /// Bytes from there to the end of the segment, not replayed.
    pub dropped_bytes: u64,
    /// What was wrong.
    pub reason: String,
    /// Whether the segment was cut back to `offset` (done for the last segment, whose
    /// bad tail is a torn write).
    pub truncated: bool,
}

pub(crate) struct Wal {
    dir: PathBuf,
    file: File,
    segment: u32,
    first: u32,
    len: u64,
    buf: Vec<u8>,
    segment_bytes: u64,
    sync: SyncPolicy,
    broken: bool,
}

impl std::fmt::Debug for Wal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Wal")
            .field("dir", &self.dir)
            .field("segment", &self.segment)
            .field("first", &self.first)
            .field("len", &self.len)
            .field("broken", &self.broken)
            .finish_non_exhaustive()
    }
}

pub(crate) fn segment_path(dir: &Path, n: u32) -> PathBuf {
    dir.join(format!("{n:08}.wal"))
}

pub(crate) fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> TsdbError + '_ {
    move |source| TsdbError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The segment numbers in `dir`, ascending.
pub(crate) fn list_segments(dir: &Path) -> Result<Vec<u32>, TsdbError> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_err(dir))? {
        let entry = entry.map_err(io_err(dir))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(num) = name.strip_suffix(".wal") {
            if num.len() == 8 && num.bytes().all(|b| b.is_ascii_digit()) {
                if let Ok(n) = num.parse::<u32>() {
                    out.push(n);
                }
            }
        }
    }
    out.sort_unstable();
    Ok(out)
}

fn sync_dir(dir: &Path) -> Result<(), TsdbError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(dir))
}

impl Wal {
    /// Starts a new segment numbered `segment` in `dir`; `first` is the oldest segment
    /// still on disk.
    pub(crate) fn create(
        dir: &Path,
        segment: u32,
        first: u32,
        segment_bytes: u64,
        sync: SyncPolicy,
    ) -> Result<Wal, TsdbError> {
        let path = segment_path(dir, segment);
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(io_err(&path))?;
        let len = file.metadata().map_err(io_err(&path))?.len();
        sync_dir(dir)?;
        Ok(Wal {
            dir: dir.to_path_buf(),
            file,
            segment,
            first: first.min(segment),
            len,
            buf: Vec::with_capacity(1 << 20),
            segment_bytes: segment_bytes.max(1 << 12),
            sync,
            broken: false,
        })
    }

    pub(crate) fn segment(&self) -> u32 {
        self.segment
    }

    pub(crate) fn first_segment(&self) -> u32 {
        self.first
    }

    pub(crate) fn segment_len(&self) -> u64 {
        self.len
    }

    /// Queues a series definition; it is written with the next commit.
    pub(crate) fn log_series<'a>(
        &mut self,
        id: SeriesId,
        labels: impl Iterator<Item = (&'a str, &'a str)> + Clone,
    ) {
        let count = labels.clone().count();
        let start = self.begin(REC_SERIES);
        put_uvarint(&mut self.buf, 1);
        put_uvarint(&mut self.buf, u64::from(id));
        put_uvarint(&mut self.buf, count as u64);
        for (n, v) in labels {
            for s in [n, v] {
                put_uvarint(&mut self.buf, s.len() as u64);
                self.buf.extend_from_slice(s.as_bytes());
            }
        }
        self.end(start);
    }

    /// Queues persisted marks.
    pub(crate) fn log_persisted(&mut self, marks: &[(SeriesId, i64)]) {
        for part in marks.chunks(ROWS_PER_RECORD) {
            let start = self.begin(REC_PERSISTED);
            put_uvarint(&mut self.buf, part.len() as u64);
            for &(id, ts) in part {
                put_uvarint(&mut self.buf, u64::from(id));
                put_uvarint(&mut self.buf, zigzag(ts));
            }
            self.end(start);
        }
    }

    /// Queues sample batches.
    pub(crate) fn log_samples(&mut self, rows: &[Row]) {
        for part in rows.chunks(ROWS_PER_RECORD) {
            let start = self.begin(REC_SAMPLES);
            put_uvarint(&mut self.buf, part.len() as u64);
            let base = part.first().map_or(0, |r| r.timestamp_ms);
            put_uvarint(&mut self.buf, zigzag(base));
            for r in part {
                put_uvarint(&mut self.buf, u64::from(r.series));
                put_uvarint(&mut self.buf, zigzag(r.timestamp_ms.wrapping_sub(base)));
                self.buf.extend_from_slice(&r.value.to_bits().to_le_bytes());
            }
            self.end(start);
        }
    }

    fn begin(&mut self, kind: u8) -> usize {
        let start = self.buf.len();
        self.buf.extend_from_slice(&[0; HEADER]);
        self.buf.push(kind);
        start
    }

    fn end(&mut self, start: usize) {
        let payload = &self.buf[start + HEADER..];
        let len = payload.len() as u32;
        let crc = crc32fast::hash(payload);
        self.buf[start..start + 4].copy_from_slice(&len.to_le_bytes());
        self.buf[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
    }

    /// Writes what is queued and makes it durable as the policy says. Returns the
    /// segment it went to. After a failed write the log refuses further commits: the
    /// file may end in a torn record, and only a replay knows where the good part ends.
    pub(crate) fn commit(&mut self) -> Result<u32, TsdbError> {
        if self.broken {
            return Err(TsdbError::WalBroken);
        }
        let segment = self.segment;
        if self.buf.is_empty() {
            return Ok(segment);
        }
        let path = segment_path(&self.dir, self.segment);
        let written = self
            .file
            .write_all(&self.buf)
            .and_then(|()| match self.sync {
                SyncPolicy::Always => self.file.sync_data(),
                SyncPolicy::Never => Ok(()),
            });
        if let Err(e) = written {
            self.broken = true;
            self.buf.clear();
            return Err(io_err(&path)(e));
        }
        self.len += self.buf.len() as u64;
        self.buf.clear();
        if self.len >= self.segment_bytes {
            self.roll()?;
        }
        Ok(segment)
    }

    /// Whether anything is queued.
    pub(crate) fn has_pending(&self) -> bool {
        !self.buf.is_empty()
    }

    fn roll(&mut self) -> Result<(), TsdbError> {
        let next = self.segment.checked_add(1).ok_or(TsdbError::WalBroken)?;
        let path = segment_path(&self.dir, next);
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(io_err(&path));
        match file {
            Ok(f) => {
                self.file = f;
                self.segment = next;
                self.len = 0;
                sync_dir(&self.dir)
            }
            Err(e) => {
                self.broken = true;
                Err(e)
            }
        }
    }

    /// Deletes the segments before `keep`.
    pub(crate) fn remove_before(&mut self, keep: u32) -> Result<usize, TsdbError> {
        let keep = keep.min(self.segment);
        let mut removed = 0;
        for n in list_segments(&self.dir)? {
            if n < keep {
                let path = segment_path(&self.dir, n);
                fs::remove_file(&path).map_err(io_err(&path))?;
                removed += 1;
            }
        }
        self.first = self.first.max(keep);
        if removed > 0 {
            sync_dir(&self.dir)?;
        }
        Ok(removed)
    }
}

pub(crate) fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

pub(crate) fn unzigzag(u: u64) -> i64 {
    ((u >> 1) as i64) ^ -((u & 1) as i64)
}

/// The frames of one segment's bytes: `(offset, payload)`, then at most one error.
pub(crate) fn frames(data: &[u8]) -> Frames<'_> {
    Frames {
        data,
        pos: 0,
        done: false,
    }
}

#[derive(Debug)]
pub(crate) struct Frames<'a> {
    data: &'a [u8],
    pos: usize,
    done: bool,
}

impl<'a> Iterator for Frames<'a> {
    type Item = Result<(usize, &'a [u8]), (usize, String)>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done || self.pos >= self.data.len() {
            return None;
        }
        let at = self.pos;
        let fail = |this: &mut Frames<'a>, why: String| {
            this.done = true;
            Some(Err((at, why)))
        };
        let Some(header) = self.data.get(at..at + HEADER) else {
            return fail(self, "frame header cut short".into());
        };
        let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
        let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
        if len == 0 || len > MAX_PAYLOAD {
            return fail(self, format!("implausible record length {len}"));
        }
        let Some(payload) = self.data.get(at + HEADER..at + HEADER + len) else {
            return fail(self, format!("record of {len} bytes cut short"));
        };
        if crc32fast::hash(payload) != crc {
            return fail(self, "checksum mismatch".into());
        }
        self.pos = at + HEADER + len;
        Some(Ok((at, payload)))
    }
}

/// A decoded record.
#[derive(Debug)]
pub(crate) enum Record<'a> {
    Series(Vec<(SeriesId, Vec<(&'a str, &'a str)>)>),
    Samples,
    Persisted(Vec<(SeriesId, i64)>),
}

/// Decodes a payload. Samples go to `rows` (cleared first) so that replay reuses one
/// buffer. `None` means the payload is malformed despite its good checksum.
pub(crate) fn decode<'a>(payload: &'a [u8], rows: &mut Vec<Row>) -> Option<Record<'a>> {
    let (&kind, mut p) = payload.split_first()?;
    let count = usize::try_from(take_uvarint(&mut p)?).ok()?;
    match kind {
        REC_SERIES => {
            let mut out = Vec::with_capacity(count.min(4096));
            for _ in 0..count {
                let id = SeriesId::try_from(take_uvarint(&mut p)?).ok()?;
                let pairs = usize::try_from(take_uvarint(&mut p)?).ok()?;
                let mut labels = Vec::with_capacity(pairs.min(64));
                for _ in 0..pairs {
                    let n = take_str(&mut p)?;
                    let v = take_str(&mut p)?;
                    labels.push((n, v));
                }
                out.push((id, labels));
            }
            Some(Record::Series(out))
        }
        REC_SAMPLES => {
            rows.clear();
            // Each row takes at least ten bytes: never trust a count beyond that.
            rows.reserve(count.min(p.len() / 10));
            let base = unzigzag(take_uvarint(&mut p)?);
            for _ in 0..count {
                let series = SeriesId::try_from(take_uvarint(&mut p)?).ok()?;
                let ts = base.wrapping_add(unzigzag(take_uvarint(&mut p)?));
                let bits = p.get(..8)?;
                let mut b = [0u8; 8];
                b.copy_from_slice(bits);
                p = p.get(8..)?;
                rows.push(Row::new(series, ts, f64::from_bits(u64::from_le_bytes(b))));
            }
            Some(Record::Samples)
        }
        REC_PERSISTED => {
            let mut out = Vec::with_capacity(count.min(p.len() / 2));
            for _ in 0..count {
                let id = SeriesId::try_from(take_uvarint(&mut p)?).ok()?;
                let ts = unzigzag(take_uvarint(&mut p)?);
                out.push((id, ts));
            }
            Some(Record::Persisted(out))
        }
        _ => None,
    }
}

fn take_str<'a>(p: &mut &'a [u8]) -> Option<&'a str> {
    let len = usize::try_from(take_uvarint(p)?).ok()?;
    let s = p.get(..len)?;
    *p = p.get(len..)?;
    std::str::from_utf8(s).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_damage_is_found() {
        let dir = tempfile::tempdir().unwrap();
        let mut wal = Wal::create(dir.path(), 0, 0, 1 << 20, SyncPolicy::Never).unwrap();
        wal.log_series(3, [("__name__", "up"), ("job", "é")].into_iter());
        wal.log_samples(&[Row::new(3, -5, f64::NAN), Row::new(3, i64::MAX, -0.0)]);
        wal.log_persisted(&[(3, 7)]);
        wal.commit().unwrap();
        let data = fs::read(segment_path(dir.path(), 0)).unwrap();
        let mut rows = Vec::new();
        let payloads: Vec<&[u8]> = frames(&data).map(|f| f.unwrap().1).collect();
        assert_eq!(payloads.len(), 3);
        match decode(payloads[0], &mut rows) {
            Some(Record::Series(s)) => {
                assert_eq!(s, vec![(3, vec![("__name__", "up"), ("job", "é")])])
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            decode(payloads[1], &mut rows),
            Some(Record::Samples)
        ));
        assert_eq!(rows.len(), 2);
        assert!(rows[0].value.is_nan());
        assert_eq!(rows[1].timestamp_ms, i64::MAX);
        assert_eq!(rows[1].value.to_bits(), (-0.0f64).to_bits());
        assert!(
            matches!(decode(payloads[2], &mut rows), Some(Record::Persisted(p)) if p == vec![(3, 7)])
        );

        // A flipped bit in the second frame stops reading there.
        let mut bad = data.clone();
        let second = frames(&data).nth(1).unwrap().unwrap().0;
        bad[second + HEADER + 3] ^= 0x10;
        let got: Vec<_> = frames(&bad).collect();
        assert_eq!(got.len(), 2);
        assert!(matches!(&got[1], Err((at, why)) if *at == second && why.contains("checksum")));
        // Every cut of the file yields whole frames and then at most one error.
        for cut in 0..data.len() {
            let got: Vec<_> = frames(&data[..cut]).collect();
            assert!(got.iter().filter(|f| f.is_err()).count() <= 1);
        }
    }
}
