//! Gorilla-compressed chunks: delta-of-delta timestamps and XOR-encoded values.
//!
//! The layout follows Prometheus's XOR chunk (`tsdb/chunkenc/xor.go`), itself the
//! encoding of Facebook's Gorilla paper (VLDB 2015, section 4.1):
//!
//! ```text
//! u16 big-endian   number of samples
//! varint           first timestamp (zig-zag)
//! 64 bits          first value
//! uvarint          second timestamp - first timestamp
//! xor              second value
//! then per sample:
//!   delta of delta: '0' | '10' + 14 bits | '110' + 17 bits | '1110' + 20 bits | '1111' + 64 bits
//!   xor of value:   '0' (same) | '10' + bits in the previous window
//!                   | '11' + 5 bits leading zeros + 6 bits length + the meaningful bits
//! ```
//!
//! Timestamps must not decrease within a chunk (equal ones are fine). Arithmetic on
//! them wraps, so any i64 timestamps round-trip, however far apart. Values are stored
//! by their bits: NaN payloads, infinities and -0.0 come back exactly.

use crate::ChunkError;
use crate::bits::{BitReader, BitWriter};

/// The most samples one chunk can hold (its count is a u16).
pub const MAX_CHUNK_SAMPLES: usize = u16::MAX as usize;

/// Appends samples to one chunk.
#[derive(Debug, Clone)]
pub struct ChunkAppender {
    bits: BitWriter,
    count: u16,
    min_ts: i64,
    last_ts: i64,
    last_delta: u64,
    last_bits: u64,
    leading: u8,
    trailing: u8,
}

impl Default for ChunkAppender {
    fn default() -> Self {
        ChunkAppender::new()
    }
}

impl ChunkAppender {
    /// An empty chunk.
    pub fn new() -> ChunkAppender {
        ChunkAppender {
            // 120 samples of ordinary data take about 1.4 bytes each.
            bits: BitWriter::with_capacity(192),
            count: 0,
            min_ts: 0,
            last_ts: 0,
            last_delta: 0,
            last_bits: 0,
            leading: u8::MAX,
            trailing: 0,
        }
    }

    /// Samples appended so far.
    pub fn len(&self) -> usize {
        usize::from(self.count)
    }

    /// Whether no sample has been appended.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The first timestamp, if any.
    pub fn min_ts(&self) -> Option<i64> {
        (self.count > 0).then_some(self.min_ts)
    }

    /// The last timestamp, if any.
    pub fn max_ts(&self) -> Option<i64> {
        (self.count > 0).then_some(self.last_ts)
    }

    /// The encoded size so far, header included.
    pub fn size_bytes(&self) -> usize {
        2 + self.bits.len_bytes()
    }

    /// Appends a sample. Fails, leaving the chunk as it was, when the chunk is full or
    /// `ts` is before the last timestamp.
    pub fn append(&mut self, ts: i64, value: f64) -> Result<(), ChunkError> {
        if usize::from(self.count) >= MAX_CHUNK_SAMPLES {
            return Err(ChunkError::Full);
        }
        let bits = value.to_bits();
        match self.count {
            0 => {
                self.bits.write_varint(ts);
                self.bits.write_bits(bits, 64);
                self.min_ts = ts;
                self.leading = u8::MAX;
            }
            1 => {
                if ts < self.last_ts {
                    return Err(ChunkError::OutOfOrder {
                        last: self.last_ts,
                        ts,
                    });
                }
                let delta = ts.wrapping_sub(self.last_ts) as u64;
                self.bits.write_uvarint(delta);
                self.write_value(bits);
                self.last_delta = delta;
            }
            _ => {
                if ts < self.last_ts {
                    return Err(ChunkError::OutOfOrder {
                        last: self.last_ts,
                        ts,
                    });
                }
                let delta = ts.wrapping_sub(self.last_ts) as u64;
                let dod = delta.wrapping_sub(self.last_delta) as i64;
                if dod == 0 {
                    self.bits.write_bit(false);
                } else if fits(dod, 14) {
                    self.bits.write_bits(0b10, 2);
                    self.bits.write_bits(dod as u64, 14);
                } else if fits(dod, 17) {
                    self.bits.write_bits(0b110, 3);
                    self.bits.write_bits(dod as u64, 17);
                } else if fits(dod, 20) {
                    self.bits.write_bits(0b1110, 4);
                    self.bits.write_bits(dod as u64, 20);
                } else {
                    self.bits.write_bits(0b1111, 4);
                    self.bits.write_bits(dod as u64, 64);
                }
                self.write_value(bits);
                self.last_delta = delta;
            }
        }
        self.last_ts = ts;
        self.last_bits = bits;
        self.count += 1;
        Ok(())
    }

    fn write_value(&mut self, bits: u64) {
        let xor = bits ^ self.last_bits;
        if xor == 0 {
            self.bits.write_bit(false);
            return;
        }
        self.bits.write_bit(true);
        // At most 31 leading zeros fit the 5-bit field.
        let leading = (xor.leading_zeros() as u8).min(31);
        let trailing = xor.trailing_zeros() as u8;
        if self.leading != u8::MAX && leading >= self.leading && trailing >= self.trailing {
            // The meaningful bits fit the previous window.
            self.bits.write_bit(false);
            let width = 64 - u32::from(self.leading) - u32::from(self.trailing);
            self.bits.write_bits(xor >> self.trailing, width);
            return;
        }
        self.leading = leading;
        self.trailing = trailing;
        self.bits.write_bit(true);
        self.bits.write_bits(u64::from(leading), 5);
        let width = 64 - u32::from(leading) - u32::from(trailing);
        // A width of 64 is written as 0: 1..=63 and 64 share the six bits.
        self.bits.write_bits(u64::from(width) & 0x3f, 6);
        self.bits.write_bits(xor >> trailing, width);
    }

    /// The encoded chunk as it is now (count header and bit stream).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.size_bytes());
        out.extend_from_slice(&self.count.to_be_bytes());
        self.bits.copy_to(&mut out);
        out
    }

    /// Decodes the chunk as it is now.
    pub fn iter(&self) -> ChunkIter<'static> {
        ChunkIter::owned(self.to_bytes())
    }
}

/// Whether `v` fits Prometheus's n-bit delta-of-delta bucket: -(2^(n-1) - 1) ..= 2^(n-1).
#[inline]
fn fits(v: i64, n: u32) -> bool {
    let half = 1i64 << (n - 1);
    -(half - 1) <= v && v <= half
}

/// Sign-extends the low `n` bits as Prometheus's decoder does.
#[inline]
fn from_bucket(bits: u64, n: u32) -> i64 {
    let half = 1u64 << (n - 1);
    if bits > half {
        bits.wrapping_sub(1u64 << n) as i64
    } else {
        bits as i64
    }
}

#[derive(Debug)]
enum Source<'a> {
    Borrowed(&'a [u8]),
    Owned(Vec<u8>),
}

/// Decodes a chunk's samples in order, as `(timestamp_ms, value)`.
///
/// Any byte string is safe to decode: a chunk that is cut short or malformed yields one
/// `Err` and then ends.
#[derive(Debug)]
pub struct ChunkIter<'a> {
    source: Source<'a>,
    pos: usize,
    count: u16,
    read: u16,
    ts: i64,
    delta: u64,
    bits: u64,
    leading: u32,
    trailing: u32,
    done: bool,
}

impl<'a> ChunkIter<'a> {
    /// Decodes encoded chunk bytes (as from [`ChunkAppender::to_bytes`]).
    pub fn new(bytes: &'a [u8]) -> ChunkIter<'a> {
        ChunkIter::with_source(Source::Borrowed(bytes))
    }

    fn owned(bytes: Vec<u8>) -> ChunkIter<'static> {
        ChunkIter::with_source(Source::Owned(bytes))
    }

    fn with_source(source: Source<'_>) -> ChunkIter<'_> {
        let bytes = match &source {
            Source::Borrowed(b) => *b,
            Source::Owned(b) => b.as_slice(),
        };
        let (count, done) = match bytes.get(..2) {
            Some(h) => (u16::from_be_bytes([h[0], h[1]]), false),
            None => (0, true),
        };
        ChunkIter {
            source,
            pos: 0,
            count,
            read: 0,
            ts: 0,
            delta: 0,
            bits: 0,
            leading: 0,
            trailing: 0,
            done,
        }
    }

    /// The number of samples the chunk says it holds.
    pub fn declared_len(&self) -> usize {
        usize::from(self.count)
    }

    fn bytes(&self) -> &[u8] {
        let all = match &self.source {
            Source::Borrowed(b) => b,
            Source::Owned(b) => b.as_slice(),
        };
        all.get(2..).unwrap_or(&[])
    }

    fn decode_next(&mut self) -> Option<(i64, f64)> {
        // The reader is rebuilt per sample from a saved bit position, so the iterator
        // can own its bytes without borrowing from itself.
        let mut r = BitReader::at(self.bytes(), self.pos);
        let (mut ts, mut delta, mut bits, mut leading, mut trailing) =
            (self.ts, self.delta, self.bits, self.leading, self.trailing);
        match self.read {
            0 => {
                ts = r.read_varint()?;
                bits = r.read_bits(64)?;
            }
            1 => {
                delta = r.read_uvarint()?;
                ts = ts.wrapping_add(delta as i64);
                bits = read_value(&mut r, bits, &mut leading, &mut trailing)?;
            }
            _ => {
                let mut prefix = 0u32;
                while prefix < 4 {
                    if !r.read_bit()? {
                        break;
                    }
                    prefix += 1;
                }
                let dod = match prefix {
                    0 => 0,
                    1 => from_bucket(r.read_bits(14)?, 14),
                    2 => from_bucket(r.read_bits(17)?, 17),
                    3 => from_bucket(r.read_bits(20)?, 20),
                    _ => r.read_bits(64)? as i64,
                };
                delta = delta.wrapping_add(dod as u64);
                ts = ts.wrapping_add(delta as i64);
                bits = read_value(&mut r, bits, &mut leading, &mut trailing)?;
            }
        }
        let new_pos = r.pos_bits();
        self.pos = new_pos;
        (self.ts, self.delta, self.bits, self.leading, self.trailing) =
            (ts, delta, bits, leading, trailing);
        Some((ts, f64::from_bits(bits)))
    }
}

fn read_value(
    r: &mut BitReader<'_>,
    prev: u64,
    leading: &mut u32,
    trailing: &mut u32,
) -> Option<u64> {
    if !r.read_bit()? {
        return Some(prev);
    }
    if r.read_bit()? {
        let l = r.read_bits(5)? as u32;
        let mut width = r.read_bits(6)? as u32;
        if width == 0 {
            width = 64;
        }
        if l + width > 64 {
            return None;
        }
        *leading = l;
        *trailing = 64 - l - width;
    }
    // A window reused before any was set (only in a corrupt chunk) is the full
    // 64-bit window the decoder starts with: it decodes without panicking.
    let width = 64 - *leading - *trailing;
    if width == 0 || width > 64 {
        return None;
    }
    let meaningful = r.read_bits(width)?;
    Some(prev ^ (meaningful << *trailing))
}

impl Iterator for ChunkIter<'_> {
    type Item = Result<(i64, f64), ChunkError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done || self.read >= self.count {
            return None;
        }
        match self.decode_next() {
            Some(s) => {
                self.read += 1;
                Some(Ok(s))
            }
            None => {
                self.done = true;
                Some(Err(ChunkError::Truncated {
                    decoded: usize::from(self.read),
                    declared: usize::from(self.count),
                }))
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = usize::from(self.count.saturating_sub(self.read));
        (0, Some(left))
    }
}

/// Decodes a whole chunk into `out` (appending). On error, the samples decoded before
/// the flaw stay in `out`.
pub fn decode_into(bytes: &[u8], out: &mut Vec<(i64, f64)>) -> Result<(), ChunkError> {
    if bytes.len() < 2 {
        return Err(ChunkError::Truncated {
            decoded: 0,
            declared: 0,
        });
    }
    let it = ChunkIter::new(bytes);
    out.reserve(it.declared_len());
    for s in it {
        out.push(s?);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn encode(samples: &[(i64, f64)]) -> Vec<u8> {
        let mut c = ChunkAppender::new();
        for &(t, v) in samples {
            c.append(t, v).unwrap();
        }
        c.to_bytes()
    }

    fn decode(bytes: &[u8]) -> Vec<(i64, f64)> {
        let mut out = Vec::new();
        decode_into(bytes, &mut out).unwrap();
        out
    }

    fn same(a: &[(i64, f64)], b: &[(i64, f64)]) -> bool {
        a.len() == b.len()
            && a.iter()
                .zip(b)
                .all(|(x, y)| x.0 == y.0 && x.1.to_bits() == y.1.to_bits())
    }

    /// Values that stress the XOR windows: specials, repeats, tiny and huge changes.
    fn value() -> impl Strategy<Value = f64> {
        prop_oneof![
            Just(f64::NAN),
            Just(f64::from_bits(0x7ff8_0000_0000_0001)),
            Just(f64::INFINITY),
            Just(f64::NEG_INFINITY),
            Just(-0.0),
            Just(0.0),
            Just(1.0),
            Just(f64::MIN_POSITIVE),
            Just(f64::MAX),
            (0i64..1000).prop_map(|v| v as f64),
            any::<f64>(),
            any::<u64>().prop_map(f64::from_bits),
        ]
    }

    /// Steps between timestamps: equal, regular, jittered, huge.
    fn step() -> impl Strategy<Value = u64> {
        prop_oneof![
            Just(0u64),
            Just(15_000),
            14_990u64..15_010,
            0u64..(1 << 21),
            any::<u64>().prop_map(|v| v >> 1),
            Just(u64::MAX),
        ]
    }

    fn series() -> impl Strategy<Value = Vec<(i64, f64)>> {
        (
            any::<i64>(),
            proptest::collection::vec((step(), value()), 0..300),
        )
            .prop_map(|(start, points)| {
                let mut t = start;
                let mut out = Vec::with_capacity(points.len());
                for (d, v) in points {
                    // Saturate: timestamps never decrease, even near i64::MAX.
                    t = t.saturating_add_unsigned(d);
                    out.push((t, v));
                }
                out
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn chunks_round_trip(samples in series()) {
            let bytes = encode(&samples);
            prop_assert!(same(&decode(&bytes), &samples));
        }

        #[test]
        fn any_bytes_decode_without_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let declared = ChunkIter::new(&bytes).declared_len();
            let n = ChunkIter::new(&bytes).take(declared + 1).count();
            prop_assert!(n <= declared + 1);
        }

        #[test]
        fn truncated_chunks_report_an_error(samples in series(), cut in 0usize..64) {
            prop_assume!(!samples.is_empty());
            let bytes = encode(&samples);
            let keep = bytes.len().saturating_sub(cut + 1).max(2);
            let mut out = Vec::new();
            let _ = decode_into(&bytes[..keep], &mut out);
            // Whatever decoded before the cut is a prefix of the truth.
            prop_assert!(out.len() <= samples.len());
        }
    }

    #[test]
    fn extremes_round_trip() {
        let samples = [
            (i64::MIN, f64::NAN),
            (i64::MIN, -0.0),
            (0, f64::INFINITY),
            (i64::MAX, f64::NEG_INFINITY),
            (i64::MAX, 0.0),
        ];
        assert!(same(&decode(&encode(&samples)), &samples));
    }

    #[test]
    fn regular_series_compress_to_under_two_bytes_a_sample() {
        let samples: Vec<(i64, f64)> = (0..120)
            .map(|i| (1_700_000_000_000 + i * 15_000, (i * 3) as f64))
            .collect();
        let bytes = encode(&samples);
        assert!(bytes.len() < 2 * 120, "{} bytes", bytes.len());
        assert!(same(&decode(&bytes), &samples));
    }

    #[test]
    fn out_of_order_is_refused_and_leaves_the_chunk_intact() {
        let mut c = ChunkAppender::new();
        c.append(10, 1.0).unwrap();
        c.append(20, 2.0).unwrap();
        assert!(matches!(
            c.append(19, 3.0),
            Err(ChunkError::OutOfOrder { .. })
        ));
        c.append(20, 4.0).unwrap();
        assert!(same(
            &decode(&c.to_bytes()),
            &[(10, 1.0), (20, 2.0), (20, 4.0)]
        ));
        assert_eq!(c.iter().count(), 3);
    }
}
