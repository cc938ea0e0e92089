//! The errors of the watch service.

use std::path::PathBuf;

/// What can stop the service from starting or keep it from serving.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    /// An address in the configuration is not `HOST:PORT`.
    #[error("invalid address {value:?} for `{key}`: {source}")]
    Address {
        /// The configuration key, e.g. `watch.listen`.
        key: &'static str,
        /// The value given.
        value: String,
        /// Why it did not parse.
        source: std::net::AddrParseError,
    },
    /// A listener could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: String,
        /// Why.
        source: std::io::Error,
    },
    /// The data directory could not be created.
    #[error("cannot create data directory {}: {source}", path.display())]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The store could not be opened or written.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// The `store` setting names no store steward has.
    #[error("unsupported store {0:?}: expected `embedded` or a postgres:// URL")]
    UnsupportedStore(String),
    /// A webhook is not usable.
    #[error(transparent)]
    Alert(#[from] crate::alert::AlertError),
    /// A setting is not usable (a tail source's format or glob, say).
    #[error("`{key}`: {message}")]
    Setting {
        /// The setting, e.g. `watch.tail[0]`.
        key: String,
        /// What is wrong.
        message: String,
    },
    /// Serving failed.
    #[error("server error: {0}")]
    Serve(#[source] std::io::Error),
    /// A background thread could not be started.
    #[error("cannot start thread: {0}")]
    Thread(#[source] std::io::Error),
}
