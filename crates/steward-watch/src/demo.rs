//! `steward up --demo`: a built-in generator that plays a small microservice system.

use tokio::sync::watch;

use crate::store::writer::Writer;

/// Plays the demo scenario into the writer until shutdown.
pub async fn run(_writer: Writer, mut shutdown: watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}
