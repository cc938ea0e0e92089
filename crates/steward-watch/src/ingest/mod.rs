//! Ingest: the protocols real clients speak, each decoded into steward's vocabulary.
//!
//! Every path reads its body through [`read_body`], which caps both the bytes on the
//! wire and what they decompress to, so no request can make the process allocate
//! without bound. A body that cannot be decoded at all is an [`IngestError`] (a 4xx
//! answer with a reason); a body of which only some records are bad is decoded into
//! the good ones plus a count and a reason for the rest ([`Decoded`]).

pub mod jsonl;
pub mod otlp;
pub mod remote_write;
pub mod scrape;
pub mod tail;

use std::io::Read;

use crate::counters::RejectReason;

/// Caps on what one request may carry.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// The most bytes read off the wire for one body.
    pub max_body_bytes: usize,
    /// The most bytes one body may decompress to.
    pub max_decoded_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: 16 << 20,
            max_decoded_bytes: 64 << 20,
        }
    }
}

/// Why a request body could not be taken in at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IngestError {
    /// The body or its decompressed form passed a cap.
    #[error("{what} larger than the limit of {limit} bytes")]
    TooLarge {
        /// `request body` or `decompressed body`.
        what: &'static str,
        /// The cap.
        limit: usize,
    },
    /// The body is not valid for its content type or encoding.
    #[error("{0}")]
    Malformed(String),
    /// A content type or encoding steward does not read.
    #[error("{0}")]
    Unsupported(String),
}

impl IngestError {
    /// The label this error is counted under.
    pub fn reason(&self) -> RejectReason {
        match self {
            IngestError::TooLarge { .. } => RejectReason::TooLarge,
            IngestError::Malformed(_) => RejectReason::Malformed,
            IngestError::Unsupported(_) => RejectReason::Unsupported,
        }
    }
}

/// What came out of one body: the good items and an account of the bad ones.
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded<T> {
    /// The items that decoded.
    pub items: Vec<T>,
    /// How many items were rejected.
    pub rejected: u64,
    /// Why the first rejected item was rejected.
    pub first_error: Option<String>,
}

impl<T> Default for Decoded<T> {
    fn default() -> Self {
        Decoded {
            items: Vec::new(),
            rejected: 0,
            first_error: None,
        }
    }
}

impl<T> Decoded<T> {
    /// Counts one rejected item, keeping the first reason.
    pub fn reject(&mut self, why: impl FnOnce() -> String) {
        self.rejected += 1;
        if self.first_error.is_none() {
            self.first_error = Some(why());
        }
    }
}

/// The wire formats of a request body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `application/x-protobuf`.
    Protobuf,
    /// `application/json`.
    Json,
}

impl Format {
    /// Reads the format from a `Content-Type` header; `None` for anything else.
    pub fn from_content_type(content_type: Option<&str>) -> Option<Format> {
        let mime = content_type?.split(';').next()?.trim().to_ascii_lowercase();
        match mime.as_str() {
            "application/x-protobuf" | "application/protobuf" => Some(Format::Protobuf),
            "application/json" => Some(Format::Json),
            _ => None,
        }
    }
}

/// How a body is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// Not compressed.
    Identity,
    /// `Content-Encoding: gzip`.
    Gzip,
    /// Snappy block format (Prometheus remote write).
    Snappy,
}

impl Encoding {
    /// Reads a `Content-Encoding` header.
    pub fn from_header(value: Option<&str>) -> Result<Encoding, IngestError> {
        match value.map(|v| v.trim().to_ascii_lowercase()).as_deref() {
            None | Some("" | "identity") => Ok(Encoding::Identity),
            Some("gzip" | "x-gzip") => Ok(Encoding::Gzip),
            Some("snappy") => Ok(Encoding::Snappy),
            Some(other) => Err(IngestError::Unsupported(format!(
                "unsupported Content-Encoding {other:?}: expected gzip or identity"
            ))),
        }
    }
}

/// Decompresses a body read off the wire, never past `limits.max_decoded_bytes`.
pub fn decompress(
    body: bytes_like::Bytes,
    encoding: Encoding,
    limits: &Limits,
) -> Result<bytes_like::Bytes, IngestError> {
    let too_large = || IngestError::TooLarge {
        what: "decompressed body",
        limit: limits.max_decoded_bytes,
    };
    match encoding {
        Encoding::Identity => Ok(body),
        Encoding::Gzip => {
            let cap = u64::try_from(limits.max_decoded_bytes).unwrap_or(u64::MAX);
            let mut out = Vec::with_capacity(body.len().saturating_mul(4).min(1 << 20));
            flate2::read::MultiGzDecoder::new(&body[..])
                .take(cap.saturating_add(1))
                .read_to_end(&mut out)
                .map_err(|e| IngestError::Malformed(format!("invalid gzip body: {e}")))?;
            if out.len() > limits.max_decoded_bytes {
                return Err(too_large());
            }
            Ok(out.into())
        }
        Encoding::Snappy => {
            let len = snap::raw::decompress_len(&body)
                .map_err(|e| IngestError::Malformed(format!("invalid snappy body: {e}")))?;
            if len > limits.max_decoded_bytes {
                return Err(too_large());
            }
            let out = snap::raw::Decoder::new()
                .decompress_vec(&body)
                .map_err(|e| IngestError::Malformed(format!("invalid snappy body: {e}")))?;
            Ok(out.into())
        }
    }
}

/// The byte buffer type bodies travel in (axum's, re-exported so callers need not
/// name the `bytes` crate).
pub mod bytes_like {
    pub use axum::body::Bytes;
}

/// Milliseconds since the epoch, now.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Converts OTLP nanoseconds to milliseconds; `None` for 0 (unset).
pub fn nanos_to_ms(nanos: u64) -> Option<i64> {
    (nanos != 0).then(|| i64::try_from(nanos / 1_000_000).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn gzip_is_capped_after_decompression() {
        let limits = Limits {
            max_body_bytes: 1 << 20,
            max_decoded_bytes: 1000,
        };
        let bomb = gzip(&vec![0u8; 1 << 20]);
        let err = decompress(bomb.into(), Encoding::Gzip, &limits).unwrap_err();
        assert_eq!(err.reason(), RejectReason::TooLarge);
        let ok = decompress(gzip(b"hello").into(), Encoding::Gzip, &limits).unwrap();
        assert_eq!(&ok[..], b"hello");
    }

    #[test]
    fn bad_gzip_and_snappy_are_malformed() {
        let limits = Limits::default();
        let err = decompress(b"nope".to_vec().into(), Encoding::Gzip, &limits).unwrap_err();
        assert_eq!(err.reason(), RejectReason::Malformed);
        let err = decompress(vec![0xff; 8].into(), Encoding::Snappy, &limits).unwrap_err();
        assert_eq!(err.reason(), RejectReason::Malformed);
    }

    #[test]
    fn content_types_and_encodings() {
        assert_eq!(
            Format::from_content_type(Some("application/json; charset=utf-8")),
            Some(Format::Json)
        );
        assert_eq!(Format::from_content_type(Some("text/plain")), None);
        assert!(Encoding::from_header(Some("br")).is_err());
    }
}
