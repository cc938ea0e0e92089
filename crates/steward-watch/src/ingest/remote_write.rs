//! Prometheus remote write: `POST /api/v1/write`, a snappy-compressed `WriteRequest`.
//!
//! The body is decoded by a small hand-written protobuf walk over the decompressed
//! bytes ([`decode`]): label names and values stay where they are in the body and are
//! referred to by offset, samples go into one flat vector. prost has no borrowed
//! decoding, and its owned messages cost two `String`s per label and a `Vec` per series
//! (about 14,000 allocations for issue 10's 1,000-series request), which is where the
//! old path spent its time. The prost types ([`proto`]) stay for tests and for
//! encoding (the load generator). Metadata, exemplars and native histograms are
//! skipped.

use steward_tsdb::{Row, Tsdb};

use super::IngestError;
use super::bytes_like::Bytes;
use crate::store::StoreError;
use crate::store::metrics::NAME_LABEL;
/// The remote-write wire types.
#[allow(missing_docs)]
pub mod proto {
    /// `prometheus.WriteRequest`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct WriteRequest {
        #[prost(message, repeated, tag = "1")]
        pub timeseries: Vec<TimeSeries>,
    }

    /// `prometheus.TimeSeries`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct TimeSeries {
        #[prost(message, repeated, tag = "1")]
        pub labels: Vec<Label>,
        #[prost(message, repeated, tag = "2")]
        pub samples: Vec<Sample>,
    }

    /// `prometheus.Label`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Label {
        #[prost(string, tag = "1")]
        pub name: String,
        #[prost(string, tag = "2")]
        pub value: String,
    }

    /// `prometheus.Sample`.
    #[derive(Clone, Copy, PartialEq, prost::Message)]
    pub struct Sample {
        #[prost(double, tag = "1")]
        pub value: f64,
        #[prost(int64, tag = "2")]
        pub timestamp: i64,
    }
}

/// One decoded `WriteRequest`: the body it borrows from, series as offsets into it,
/// and the samples.
#[derive(Debug, Clone, Default)]
pub struct RemoteWrite {
    body: Bytes,
    /// `(name start, name len, value start, value len)` per label, series after
    /// series, each series' labels sorted by name.
    labels: Vec<[u32; 4]>,
    series: Vec<SeriesSpan>,
    samples: Vec<(i64, f64)>,
    /// Samples (or sample-less series) refused.
    pub rejected: u64,
    /// Why the first refused one was refused.
    pub first_error: Option<String>,
}

#[derive(Debug, Clone, Copy)]
struct SeriesSpan {
    labels: (u32, u32),
    samples: (u32, u32),
}

impl RemoteWrite {
    /// Samples accepted.
    pub fn len(&self) -> usize {
        self.samples.len()
    }

    /// True when no sample was accepted.
    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    /// Series accepted.
    pub fn series_count(&self) -> usize {
        self.series.len()
    }

    fn text(&self, start: u32, len: u32) -> &str {
        let (start, len) = (start as usize, len as usize);
        // Checked as UTF-8 when decoded; the fallback is unreachable.
        std::str::from_utf8(&self.body[start..start + len]).unwrap_or("")
    }

    /// The `(name, value)` pairs of series `i`, sorted by name.
    pub fn labels(&self, i: usize) -> impl Iterator<Item = (&str, &str)> + Clone {
        let (from, to) = self.series.get(i).map_or((0, 0), |s| s.labels);
        self.labels[from as usize..to as usize]
            .iter()
            .map(|l| (self.text(l[0], l[1]), self.text(l[2], l[3])))
    }

    /// The samples of series `i`.
    pub fn samples(&self, i: usize) -> &[(i64, f64)] {
        let (from, to) = self.series.get(i).map_or((0, 0), |s| s.samples);
        &self.samples[from as usize..to as usize]
    }

    /// Interns every series (a hash lookup on the borrowed labels; a new series is
    /// defined in the log) and appends its samples to `rows`. A series steward-tsdb
    /// refuses (too many series) is skipped and its samples counted in `refused`.
    pub fn rows(
        &self,
        db: &mut Tsdb,
        rows: &mut Vec<Row>,
        refused: &mut u64,
    ) -> Result<(), StoreError> {
        rows.reserve(self.samples.len());
        for i in 0..self.series.len() {
            let samples = self.samples(i);
            let id = match db.intern(self.labels(i)) {
                Ok(id) => id,
                Err(steward_tsdb::TsdbError::Labels(e)) => {
                    tracing::debug!("remote-write series refused: {e}");
                    *refused += samples.len() as u64;
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            rows.extend(samples.iter().map(|&(ts, v)| Row::new(id, ts, v)));
        }
        Ok(())
    }

    fn reject(&mut self, samples: usize, why: impl FnOnce() -> String) {
        self.rejected += samples.max(1) as u64;
        if self.first_error.is_none() {
            self.first_error = Some(why());
        }
    }
}

/// Where a protobuf walk is.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

fn malformed(what: &str, at: usize) -> IngestError {
    IngestError::Malformed(format!(
        "invalid remote-write protobuf: {what} at byte {at}"
    ))
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8], pos: usize) -> Reader<'a> {
        Reader { bytes, pos }
    }

    fn done(&self) -> bool {
        self.pos >= self.bytes.len()
    }

    fn varint(&mut self) -> Result<u64, IngestError> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let Some(&b) = self.bytes.get(self.pos) else {
                return Err(malformed("varint cut short", self.pos));
            };
            self.pos += 1;
            value |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                return Ok(value);
            }
        }
        Err(malformed("varint longer than 10 bytes", self.pos))
    }

    /// A field's key: `(field number, wire type)`.
    fn key(&mut self) -> Result<(u64, u8), IngestError> {
        let k = self.varint()?;
        Ok((k >> 3, (k & 7) as u8))
    }

    /// A length-delimited field: its `(start, end)` in the whole body.
    fn span(&mut self) -> Result<(usize, usize), IngestError> {
        let at = self.pos;
        let len = usize::try_from(self.varint()?).map_err(|_| malformed("length too large", at))?;
        let start = self.pos;
        let end = start
            .checked_add(len)
            .filter(|&e| e <= self.bytes.len())
            .ok_or_else(|| malformed("field longer than its message", at))?;
        self.pos = end;
        Ok((start, end))
    }

    fn fixed64(&mut self) -> Result<u64, IngestError> {
        let bytes = self
            .bytes
            .get(self.pos..self.pos + 8)
            .ok_or_else(|| malformed("fixed64 cut short", self.pos))?;
        self.pos += 8;
        let mut b = [0u8; 8];
        b.copy_from_slice(bytes);
        Ok(u64::from_le_bytes(b))
    }

    fn skip(&mut self, wire: u8) -> Result<(), IngestError> {
        self.skip_nested(wire, 0)
    }

    /// Skips a field; groups (wire types 3 and 4, deprecated but valid protobuf, and
    /// skipped by prost) are skipped whole, nested at most 32 deep.
    fn skip_nested(&mut self, wire: u8, depth: u32) -> Result<(), IngestError> {
        match wire {
            3 if depth < 32 => loop {
                let (_, inner) = self.key()?;
                if inner == 4 {
                    return Ok(());
                }
                self.skip_nested(inner, depth + 1)?;
            },
            0 => self.varint().map(drop),
            1 => self.fixed64().map(drop),
            2 => self.span().map(drop),
            5 => {
                if self.pos + 4 > self.bytes.len() {
                    return Err(malformed("fixed32 cut short", self.pos));
                }
                self.pos += 4;
                Ok(())
            }
            w => Err(malformed(&format!("unsupported wire type {w}"), self.pos)),
        }
    }

    /// Reads a message's fields until `end`, calling `f(field, wire, reader)` for each;
    /// `f` returns false to have the field skipped.
    fn fields(
        &mut self,
        end: usize,
        mut f: impl FnMut(u64, u8, &mut Reader<'a>) -> Result<bool, IngestError>,
    ) -> Result<(), IngestError> {
        let outer = self.bytes;
        let mut inner = Reader::new(&outer[..end], self.pos);
        while !inner.done() {
            let (field, wire) = inner.key()?;
            if !f(field, wire, &mut inner)? {
                inner.skip(wire)?;
            }
        }
        self.pos = end;
        Ok(())
    }
}

/// Decodes an uncompressed `WriteRequest` without copying its strings. A series
/// without a `__name__` label, with a label name twice, or with text that is not
/// UTF-8 is refused with all its samples; a body that is not a valid message is an
/// error.
pub fn decode(body: Bytes) -> Result<RemoteWrite, IngestError> {
    let mut out = RemoteWrite {
        body: body.clone(),
        ..RemoteWrite::default()
    };
    let bytes: &[u8] = &body;
    let mut r = Reader::new(bytes, 0);
    let mut ts_labels: Vec<[u32; 4]> = Vec::new();
    r.fields(bytes.len(), |field, wire, r| {
        if field != 1 || wire != 2 {
            return Ok(false);
        }
        let (start, end) = r.span()?;
        ts_labels.clear();
        let first_sample = out.samples.len();
        let mut m = Reader::new(bytes, start);
        m.fields(end, |field, wire, m| {
            match (field, wire) {
                (1, 2) => {
                    let (ls, le) = m.span()?;
                    let mut label = [0u32; 4];
                    let mut l = Reader::new(bytes, ls);
                    l.fields(le, |field, wire, l| {
                        if wire != 2 || !(field == 1 || field == 2) {
                            return Ok(false);
                        }
                        let (s, e) = l.span()?;
                        let slot = if field == 1 { 0 } else { 2 };
                        // Bodies are capped far below 4 GiB (ingest::Limits).
                        label[slot] = s as u32;
                        label[slot + 1] = (e - s) as u32;
                        Ok(true)
                    })?;
                    ts_labels.push(label);
                    Ok(true)
                }
                (2, 2) => {
                    let (ss, se) = m.span()?;
                    let mut sample = (0i64, 0f64);
                    let mut s = Reader::new(bytes, ss);
                    s.fields(se, |field, wire, s| match (field, wire) {
                        (1, 1) => {
                            sample.1 = f64::from_bits(s.fixed64()?);
                            Ok(true)
                        }
                        (2, 0) => {
                            sample.0 = s.varint()? as i64;
                            Ok(true)
                        }
                        _ => Ok(false),
                    })?;
                    out.samples.push(sample);
                    Ok(true)
                }
                _ => Ok(false),
            }
        })?;
        let n_samples = out.samples.len() - first_sample;
        if let Some(why) = check_labels(bytes, &mut ts_labels) {
            out.samples.truncate(first_sample);
            out.reject(n_samples, || why);
            return Ok(true);
        }
        if n_samples == 0 {
            return Ok(true);
        }
        let from = out.labels.len() as u32;
        out.labels.extend_from_slice(&ts_labels);
        out.series.push(SeriesSpan {
            labels: (from, out.labels.len() as u32),
            samples: (first_sample as u32, out.samples.len() as u32),
        });
        Ok(true)
    })?;
    Ok(out)
}

/// Sorts one series' labels by name (Prometheus sends them sorted: then this is one
/// pass) and says what is wrong with them, if anything.
fn check_labels(bytes: &[u8], labels: &mut [[u32; 4]]) -> Option<String> {
    let text = |start: u32, len: u32| bytes.get(start as usize..(start + len) as usize);
    for l in labels.iter() {
        for (s, n) in [(l[0], l[1]), (l[2], l[3])] {
            if std::str::from_utf8(text(s, n)?).is_err() {
                return Some("label text is not UTF-8".into());
            }
        }
    }
    let name = |l: &[u32; 4]| text(l[0], l[1]).unwrap_or_default();
    if !labels.windows(2).all(|w| name(&w[0]) < name(&w[1])) {
        labels.sort_unstable_by(|a, b| name(a).cmp(name(b)));
        if let Some(w) = labels.windows(2).find(|w| name(&w[0]) == name(&w[1])) {
            return Some(format!(
                "label name {:?} appears twice",
                String::from_utf8_lossy(name(&w[0]))
            ));
        }
    }
    let has_name = labels
        .iter()
        .any(|l| name(l) == NAME_LABEL.as_bytes() && l[3] > 0);
    (!has_name).then(|| "series has no __name__ label".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    #[test]
    fn write_request_round_trips_through_snappy() {
        let request = proto::WriteRequest {
            timeseries: vec![
                proto::TimeSeries {
                    labels: vec![
                        proto::Label {
                            name: "__name__".into(),
                            value: "up".into(),
                        },
                        proto::Label {
                            name: "job".into(),
                            value: "api".into(),
                        },
                    ],
                    samples: vec![
                        proto::Sample {
                            value: 1.0,
                            timestamp: 1000,
                        },
                        proto::Sample {
                            value: 0.0,
                            timestamp: 2000,
                        },
                    ],
                },
                proto::TimeSeries {
                    labels: vec![proto::Label {
                        name: "job".into(),
                        value: "x".into(),
                    }],
                    samples: vec![proto::Sample {
                        value: 1.0,
                        timestamp: 1000,
                    }],
                },
            ],
        };
        let compressed = snap::raw::Encoder::new()
            .compress_vec(&request.encode_to_vec())
            .unwrap();
        let body = crate::ingest::decompress(
            compressed.into(),
            crate::ingest::Encoding::Snappy,
            &crate::ingest::Limits::default(),
        )
        .unwrap();
        let decoded = decode(body).unwrap();
        assert_eq!(decoded.len(), 2);
        assert_eq!(decoded.series_count(), 1);
        assert_eq!(
            decoded.labels(0).collect::<Vec<_>>(),
            [("__name__", "up"), ("job", "api")]
        );
        assert_eq!(decoded.samples(0), [(1000, 1.0), (2000, 0.0)]);
        assert_eq!(decoded.rejected, 1);
        assert_eq!(
            decoded.first_error.as_deref(),
            Some("series has no __name__ label")
        );
    }

    fn encode(series: Vec<proto::TimeSeries>) -> Bytes {
        proto::WriteRequest { timeseries: series }
            .encode_to_vec()
            .into()
    }

    fn label(name: &str, value: &str) -> proto::Label {
        proto::Label {
            name: name.into(),
            value: value.into(),
        }
    }

    #[test]
    fn unsorted_labels_are_sorted_and_duplicates_refused() {
        let sample = proto::Sample {
            value: 2.5,
            timestamp: 7,
        };
        let body = encode(vec![
            proto::TimeSeries {
                labels: vec![
                    label("job", "a"),
                    label("__name__", "x"),
                    label("Zone", "z"),
                ],
                samples: vec![sample],
            },
            proto::TimeSeries {
                labels: vec![label("__name__", "x"), label("a", "1"), label("a", "2")],
                samples: vec![sample, sample],
            },
        ]);
        let decoded = decode(body).unwrap();
        assert_eq!(
            decoded.labels(0).collect::<Vec<_>>(),
            [("Zone", "z"), ("__name__", "x"), ("job", "a")]
        );
        assert_eq!(decoded.rejected, 2);
        assert!(decoded.first_error.unwrap().contains("appears twice"));
    }

    #[test]
    fn broken_bodies_are_errors_not_panics() {
        let good = encode(vec![proto::TimeSeries {
            labels: vec![label("__name__", "up")],
            samples: vec![proto::Sample {
                value: 1.0,
                timestamp: 1,
            }],
        }]);
        // Every prefix, and a few flipped bytes: an error or a decode, never a panic.
        for cut in 0..good.len() {
            let _ = decode(good.slice(..cut));
        }
        for at in 0..good.len() {
            let mut b = good.to_vec();
            b[at] ^= 0xff;
            let _ = decode(b.into());
        }
        let err = decode(vec![0x0a, 0xff, 0xff, 0x01].into()).unwrap_err();
        assert!(err.to_string().contains("longer than its message"), "{err}");
    }
}
