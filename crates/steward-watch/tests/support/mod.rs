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
