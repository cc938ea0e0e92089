//! Helpers shared by the service's integration tests.
#![allow(clippy::unwrap_used, dead_code)] // a test helper: a failed unwrap is a failed test

use serde_json::Value;
use steward_watch::Service;

/// `GET path` on a running service's router, without a socket; the body as JSON.
pub async fn get(service: &Service, path: &str) -> Value {
    let state = service.state().unwrap().clone();
    let response = tower::ServiceExt::oneshot(
        steward_watch::http::router(state),
        axum::http::Request::get(path)
            .body(axum::body::Body::empty())
            .unwrap(),
    )
    .await
    .unwrap();
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    serde_json::from_slice(&body).unwrap()
}

/// `GET path` from a server on a real socket, as HTTP/1.0 (so the answer is never
/// chunked and ends when the connection closes): the status and the body as text.
pub async fn http_get(addr: std::net::SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    stream
        .write_all(format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())
        .await?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await?;
    let text = String::from_utf8_lossy(&answer);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("no HTTP status line in {head:.80}")))?;
    Ok((status, body.to_string()))
}

/// The options of a service on free local ports with an embedded store in `data_dir`,
/// writing to the store every 100 ms.
pub fn watch_options(data_dir: &std::path::Path) -> steward_watch::WatchOptions {
    steward_watch::WatchOptions {
        listen: "127.0.0.1:0".into(),
        otlp: "127.0.0.1:0".into(),
        data_dir: data_dir.to_path_buf(),
        store: "embedded".into(),
        retention_days: 7,
        limits: Default::default(),
        pipeline: steward_watch::pipeline::PipelineConfig {
            flush_every: std::time::Duration::from_millis(100),
            ..steward_watch::pipeline::PipelineConfig::default()
        },
        scrape: Vec::new(),
        scrape_interval: std::time::Duration::from_secs(15),
        tail: Vec::new(),
        webhooks: Vec::new(),
        demo: None,
    }
}
