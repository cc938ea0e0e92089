//! What every decoder's answer must satisfy, whatever the bytes: shared by the targets
//! (each includes this file with `#[path]`, since fuzz targets are separate binaries).
#![allow(dead_code)]

use steward_core::SeriesKey;
use steward_watch::ingest::{Decoded, IngestError};

/// A decoder's account is whole: a reason is kept exactly when something was rejected.
pub fn accounted<T>(decoded: &Decoded<T>) {
    assert_eq!(
        decoded.rejected > 0,
        decoded.first_error.is_some(),
        "rejected {} with first_error {:?}",
        decoded.rejected,
        decoded.first_error
    );
}

/// A refused body says why.
pub fn explained(error: &IngestError) {
    assert!(
        !error.to_string().is_empty(),
        "an error without a message: {error:?}"
    );
}

/// Every sample belongs to a named series.
pub fn named<S: std::fmt::Debug>(items: &[(SeriesKey, S)]) {
    for (key, sample) in items {
        assert!(
            !key.name.is_empty(),
            "a sample of a series without a name: {key:?} {sample:?}"
        );
    }
}
