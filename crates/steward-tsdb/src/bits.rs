//! The bit stream under a chunk.
//!
//! Written here rather than taken from a crate: the chunk codec needs exactly two
//! operations, "append the low n bits of a u64" and "read the next n bits", on the hot
//! path of every sample. `bitvec` is general (any order, any storage) and pays for it in
//! code size and speed; `bitstream-io` goes through `io::Write` per call. Forty lines with
//! a 64-bit accumulator do the job and keep the crate's dependencies to two.

/// Appends bits, most significant first, to a growing byte vector.
#[derive(Debug, Clone, Default)]
pub(crate) struct BitWriter {
    bytes: Vec<u8>,
    /// Bits not yet in `bytes`: the low `pending` bits, always fewer than 8.
    acc: u64,
    pending: u32,
}

impl BitWriter {
    pub(crate) fn with_capacity(bytes: usize) -> BitWriter {
        BitWriter {
            bytes: Vec::with_capacity(bytes),
            acc: 0,
            pending: 0,
        }
    }

    /// Appends the low `n` bits of `value` (`n` at most 64).
    #[inline]
    pub(crate) fn write_bits(&mut self, value: u64, n: u32) {
        if n == 0 {
            return;
        }
        if n > 56 {
            // Keep `pending + n` under 64 so the accumulator never overflows.
            self.write_bits(value >> 32, n - 32);
            self.write_bits(value & 0xffff_ffff, 32);
            return;
        }
        let value = value & ((1u64 << n) - 1);
        self.acc = (self.acc << n) | value;
        self.pending += n;
        while self.pending >= 8 {
            self.pending -= 8;
            self.bytes.push((self.acc >> self.pending) as u8);
        }
        self.acc &= (1u64 << self.pending) - 1;
    }

    #[inline]
    pub(crate) fn write_bit(&mut self, bit: bool) {
        self.write_bits(u64::from(bit), 1);
    }

    /// Appends a byte-sized varint (unaligned, as Prometheus's bstream does).
    pub(crate) fn write_uvarint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.write_bits((v & 0x7f) | 0x80, 8);
            v >>= 7;
        }
        self.write_bits(v, 8);
    }

    /// Appends a zig-zag signed varint.
    pub(crate) fn write_varint(&mut self, v: i64) {
        self.write_uvarint(((v << 1) ^ (v >> 63)) as u64);
    }

    /// The bytes written so far, the last partial byte padded with zero bits, appended
    /// to `out`.
    pub(crate) fn copy_to(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.bytes);
        if self.pending > 0 {
            out.push((self.acc << (8 - self.pending)) as u8);
        }
    }

    /// How many bytes [`BitWriter::copy_to`] appends.
    pub(crate) fn len_bytes(&self) -> usize {
        self.bytes.len() + usize::from(self.pending > 0)
    }
}

/// Reads bits, most significant first, from a byte slice. Running off the end is an
/// ordinary `None`, never a panic.
#[derive(Debug, Clone)]
pub(crate) struct BitReader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> BitReader<'a> {
    #[cfg(test)]
    pub(crate) fn new(data: &'a [u8]) -> BitReader<'a> {
        BitReader { data, pos: 0 }
    }

    /// A reader that starts `pos` bits into `data`.
    pub(crate) fn at(data: &'a [u8], pos: usize) -> BitReader<'a> {
        BitReader { data, pos }
    }

    /// Bits read from the start of `data`.
    pub(crate) fn pos_bits(&self) -> usize {
        self.pos
    }

    /// The next `n` bits (`n` at most 64) as the low bits of a u64.
    #[inline]
    pub(crate) fn read_bits(&mut self, n: u32) -> Option<u64> {
        if n == 0 {
            return Some(0);
        }
        if n > 56 {
            let hi = self.read_bits(n - 32)?;
            let lo = self.read_bits(32)?;
            return Some((hi << 32) | lo);
        }
        let end = self.pos.checked_add(n as usize)?;
        if end > self.data.len().checked_mul(8)? {
            return None;
        }
        let byte = self.pos / 8;
        let offset = (self.pos % 8) as u32;
        let rest = self.data.get(byte..)?;
        let word = if let Some(eight) = rest.get(..8) {
            let mut w = [0u8; 8];
            w.copy_from_slice(eight);
            u64::from_be_bytes(w)
        } else {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            u64::from_be_bytes(w)
        };
        self.pos = end;
        // offset <= 7 and n <= 56, so the bits fit in the word.
        Some((word << offset) >> (64 - n))
    }

    #[inline]
    pub(crate) fn read_bit(&mut self) -> Option<bool> {
        self.read_bits(1).map(|b| b == 1)
    }

    pub(crate) fn read_uvarint(&mut self) -> Option<u64> {
        let mut v = 0u64;
        for i in 0..10 {
            let b = self.read_bits(8)?;
            if i == 9 && b > 1 {
                return None;
            }
            v |= (b & 0x7f) << (7 * i);
            if b < 0x80 {
                return Some(v);
            }
        }
        None
    }

    pub(crate) fn read_varint(&mut self) -> Option<i64> {
        let u = self.read_uvarint()?;
        Some(((u >> 1) as i64) ^ -((u & 1) as i64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn bits_round_trip(fields in proptest::collection::vec((any::<u64>(), 0u32..=64), 0..200)) {
            let mut w = BitWriter::default();
            for &(v, n) in &fields {
                w.write_bits(v, n);
            }
            let mut bytes = Vec::new();
            w.copy_to(&mut bytes);
            prop_assert_eq!(bytes.len(), w.len_bytes());
            let mut r = BitReader::new(&bytes);
            for &(v, n) in &fields {
                let mask = if n == 64 { u64::MAX } else { (1u64 << n) - 1 };
                prop_assert_eq!(r.read_bits(n), Some(v & mask));
            }
        }

        #[test]
        fn varints_round_trip(values in proptest::collection::vec(any::<i64>(), 0..50), pad in 0u32..8) {
            let mut w = BitWriter::default();
            w.write_bits(0, pad);
            for &v in &values {
                w.write_varint(v);
                w.write_uvarint(v as u64);
            }
            let mut bytes = Vec::new();
            w.copy_to(&mut bytes);
            let mut r = BitReader::new(&bytes);
            r.read_bits(pad);
            for &v in &values {
                prop_assert_eq!(r.read_varint(), Some(v));
                prop_assert_eq!(r.read_uvarint(), Some(v as u64));
            }
        }
    }

    #[test]
    fn reading_past_the_end_is_none() {
        let mut r = BitReader::new(&[0xff]);
        assert_eq!(r.read_bits(4), Some(0xf));
        assert_eq!(r.read_bits(5), None);
        assert_eq!(r.read_bits(4), Some(0xf));
        assert_eq!(r.read_bit(), None);
        assert_eq!(BitReader::new(&[0x80; 10]).read_uvarint(), None);
    }
}
