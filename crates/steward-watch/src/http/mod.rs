//! HTTP: the ingest endpoints, the API, steward's own health, and the dashboard.
//!
//! Two routers: [`otlp_router`] for the OTLP/HTTP port (only `/v1/logs` and
//! `/v1/metrics`, as collectors expect) and [`router`] for the main port (everything,
//! including the OTLP paths). Every handler returns `Result<_, AppError>`, and
//! [`AppError`] is the one place errors become responses.

pub mod api;
pub mod dashboard;
pub mod ingest;

use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use prost::Message;

use crate::counters::Counters;
use crate::ingest::{Format, IngestError, Limits};
use crate::pipeline::Shared;
use crate::store::writer::Writer;
use crate::store::{Store, StoreError};

/// What every handler can reach.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The store, for reads.
    pub store: Arc<dyn Store>,
    /// The store writer, for ingest.
    pub writer: Writer,
    /// steward's own counters.
    pub counters: Arc<Counters>,
    /// What the pipeline shares (forecasts).
    pub shared: Arc<Shared>,
    /// Body caps.
    pub limits: Limits,
}

/// An error on its way to becoming a response.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// A request body that could not be taken in, answered in the request's format.
    #[error("{error}")]
    Ingest {
        /// What was wrong.
        error: IngestError,
        /// The format to answer in (OTLP answers with a `google.rpc.Status`).
        format: Option<Format>,
    },
    /// A query parameter or path is not valid.
    #[error("{0}")]
    BadRequest(String),
    /// Nothing there.
    #[error("{0}")]
    NotFound(String),
    /// The store failed; the client should retry.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl AppError {
    /// An ingest error in the JSON format.
    pub fn ingest(error: IngestError) -> AppError {
        AppError::Ingest {
            error,
            format: None,
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let message = self.to_string();
        match self {
            AppError::Ingest { error, format } => {
                let status = match error {
                    IngestError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
                    IngestError::Malformed(_) => StatusCode::BAD_REQUEST,
                    IngestError::Unsupported(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
                };
                // gRPC status code 3: INVALID_ARGUMENT.
                if format == Some(Format::Protobuf) {
                    let body =
                        crate::ingest::otlp::proto::Status { code: 3, message }.encode_to_vec();
                    return (
                        status,
                        [(header::CONTENT_TYPE, "application/x-protobuf")],
                        body,
                    )
                        .into_response();
                }
                let body = serde_json::json!({
                    "error": message,
                    "reason": error.reason().as_str(),
                    "code": 3,
                    "message": message,
                });
                (status, axum::Json(body)).into_response()
            }
            AppError::BadRequest(_) => (
                StatusCode::BAD_REQUEST,
                axum::Json(serde_json::json!({ "error": message })),
            )
                .into_response(),
            AppError::NotFound(_) => (
                StatusCode::NOT_FOUND,
                axum::Json(serde_json::json!({ "error": message })),
            )
                .into_response(),
            AppError::Store(e) => {
                tracing::error!("store error: {e}");
                let mut response = (
                    StatusCode::SERVICE_UNAVAILABLE,
                    axum::Json(serde_json::json!({ "error": message })),
                )
                    .into_response();
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
                response
            }
        }
    }
}

/// The router of the OTLP/HTTP port.
pub fn otlp_router(state: AppState) -> Router {
    Router::new()
        .route("/v1/logs", post(ingest::otlp_logs))
        .route("/v1/metrics", post(ingest::otlp_metrics))
        .with_state(state)
}

/// The router of the main port: API, dashboard, health and every ingest path.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/v1/logs", post(ingest::otlp_logs))
        .route("/v1/metrics", post(ingest::otlp_metrics))
        .route("/ingest/logs", post(ingest::json_lines))
        .route("/api/v1/write", post(ingest::remote_write))
        .route("/healthz", get(api::healthz))
        .route("/metrics", get(api::metrics))
        .route("/openapi.json", get(api::openapi))
        .route("/api/v1/logs", get(api::logs))
        .route("/api/v1/series", get(api::series))
        .route("/api/v1/series/{id}", get(api::series_points))
        .route("/api/v1/templates", get(api::templates))
        .route("/api/v1/templates/{id}", get(api::template))
        .route("/api/v1/anomalies", get(api::anomalies))
        .route("/api/v1/incidents", get(api::incidents))
        .route("/api/v1/incidents/{id}", get(api::incident))
        .route("/api/v1/forecasts", get(api::forecasts))
        .merge(dashboard::routes())
        .with_state(state)
}
