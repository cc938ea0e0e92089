//! The ingest handlers: read the body under its caps, decode, store, answer.

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use std::sync::atomic::{AtomicU64, Ordering};

use super::{AppError, AppState};
use crate::counters::Counters;
use crate::ingest::bytes_like::Bytes;
use crate::ingest::{
    Decoded, Encoding, Format, IngestError, decompress, jsonl, otlp, remote_write,
};
use crate::store::writer::Payload;

fn header_str(headers: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Reads a body under the wire cap and decompresses it under the decoded cap,
/// counting a refusal in `/metrics`.
async fn read_body(
    state: &AppState,
    headers: &HeaderMap,
    body: Body,
    default_encoding: Encoding,
    format: Option<Format>,
) -> Result<Bytes, AppError> {
    let fail = |error: IngestError| {
        state.counters.reject(error.reason());
        AppError::Ingest { error, format }
    };
    let limit = state.limits.max_body_bytes;
    let too_large = IngestError::TooLarge {
        what: "request body",
        limit,
    };
    let declared =
        header_str(headers, header::CONTENT_LENGTH).and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(fail(too_large));
    }
    let encoding = match header_str(headers, header::CONTENT_ENCODING) {
        None => default_encoding,
        some => Encoding::from_header(some).map_err(fail)?,
    };
    let bytes = axum::body::to_bytes(body, limit).await.map_err(|e| {
        let text = e.to_string();
        if text.contains("length limit") {
            fail(too_large.clone())
        } else {
            fail(IngestError::Malformed(format!(
                "cannot read request body: {text}"
            )))
        }
    })?;
    decompress(bytes, encoding, &state.limits).map_err(fail)
}

fn otlp_format(state: &AppState, headers: &HeaderMap) -> Result<Format, AppError> {
    let content_type = header_str(headers, header::CONTENT_TYPE);
    Format::from_content_type(content_type).ok_or_else(|| {
        let error = IngestError::Unsupported(format!(
            "unsupported Content-Type {:?}: expected application/x-protobuf or application/json",
            content_type.unwrap_or("")
        ));
        state.counters.reject(error.reason());
        AppError::ingest(error)
    })
}

fn otlp_answer(format: Format, body: Vec<u8>) -> Response {
    let content_type = match format {
        Format::Protobuf => "application/x-protobuf",
        Format::Json => "application/json",
    };
    (StatusCode::OK, [(header::CONTENT_TYPE, content_type)], body).into_response()
}

fn decode_failed(state: &AppState, error: IngestError, format: Format) -> AppError {
    state.counters.reject(error.reason());
    AppError::Ingest {
        error,
        format: Some(format),
    }
}

/// What differs between the OTLP signals: how to decode, where rejections are counted,
/// what the writer takes, and how the answer is built.
struct OtlpSignal<T> {
    decode: fn(&[u8], Format) -> Result<Decoded<T>, IngestError>,
    rejected: fn(&Counters) -> &AtomicU64,
    payload: fn(Vec<T>) -> Payload,
    respond: fn(u64, Option<&str>, Format) -> Vec<u8>,
}

/// One OTLP export: read under the caps, decode, count rejections, store (answered only
/// after the commit), and reply with `partial_success` when some records were refused.
async fn otlp_export<T>(
    state: AppState,
    headers: HeaderMap,
    body: Body,
    signal: OtlpSignal<T>,
) -> Result<Response, AppError> {
    let format = otlp_format(&state, &headers)?;
    let bytes = read_body(&state, &headers, body, Encoding::Identity, Some(format)).await?;
    let decoded = (signal.decode)(&bytes, format).map_err(|e| decode_failed(&state, e, format))?;
    drop(bytes);
    (signal.rejected)(&state.counters).fetch_add(decoded.rejected, Ordering::Relaxed);
    let not_stored = state
        .writer
        .try_write((signal.payload)(decoded.items))
        .await?;
    // Points the store refused (at or before their series' last timestamp, or of a
    // series it refused) are part of the partial success too, so the exporter learns
    // of them.
    let first_error = decoded.first_error.or_else(|| {
        not_stored
            .reason()
            .map(|why| format!("points not stored: {why}"))
    });
    let answer = (signal.respond)(
        decoded.rejected + not_stored.total(),
        first_error.as_deref(),
        format,
    );
    Ok(otlp_answer(format, answer))
}

/// `POST /v1/logs`: OTLP logs, protobuf or JSON, optionally gzip.
pub async fn otlp_logs(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, AppError> {
    let signal = OtlpSignal {
        decode: otlp::decode_logs,
        rejected: |c| &c.logs_rejected,
        payload: Payload::Logs,
        respond: otlp::logs_response,
    };
    otlp_export(state, headers, body, signal).await
}

/// `POST /v1/metrics`: OTLP metrics, protobuf or JSON, optionally gzip.
pub async fn otlp_metrics(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, AppError> {
    let signal = OtlpSignal {
        decode: otlp::decode_metrics,
        rejected: |c| &c.samples_rejected,
        payload: Payload::Samples,
        respond: otlp::metrics_response,
    };
    otlp_export(state, headers, body, signal).await
}

/// `POST /ingest/logs`: JSON lines. Answers `{"accepted", "rejected", "first_error"}`;
/// a body in which every line was bad is a 400.
pub async fn json_lines(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, AppError> {
    let bytes = read_body(&state, &headers, body, Encoding::Identity, None).await?;
    let decoded = jsonl::decode(&bytes);
    drop(bytes);
    state
        .counters
        .logs_rejected
        .fetch_add(decoded.rejected, std::sync::atomic::Ordering::Relaxed);
    if decoded.items.is_empty() && decoded.rejected > 0 {
        let error = IngestError::Malformed(format!(
            "all {} lines rejected; first: {}",
            decoded.rejected,
            decoded.first_error.as_deref().unwrap_or("")
        ));
        state.counters.reject(error.reason());
        return Err(AppError::ingest(error));
    }
    let accepted = decoded.items.len();
    state.writer.try_write(Payload::Logs(decoded.items)).await?;
    Ok(axum::Json(json!({
        "accepted": accepted,
        "rejected": decoded.rejected,
        "first_error": decoded.first_error,
    }))
    .into_response())
}

/// `POST /api/v1/write`: Prometheus remote write (snappy protobuf). Answers 204 once
/// the samples are in the write-ahead log; 503 with `Retry-After` when ingest is
/// behind (Prometheus retries those); 400 naming how many samples were not stored and
/// why when some were invalid or at or before their series' last timestamp (the others
/// are stored), never a silent drop.
pub async fn remote_write(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, AppError> {
    let bytes = read_body(&state, &headers, body, Encoding::Snappy, None).await?;
    let decoded = remote_write::decode(bytes).map_err(|error| {
        state.counters.reject(error.reason());
        AppError::ingest(error)
    })?;
    state
        .counters
        .samples_rejected
        .fetch_add(decoded.rejected, std::sync::atomic::Ordering::Relaxed);
    if decoded.is_empty() && decoded.rejected > 0 {
        let error = IngestError::Malformed(format!(
            "all {} samples rejected; first: {}",
            decoded.rejected,
            decoded.first_error.as_deref().unwrap_or("")
        ));
        state.counters.reject(error.reason());
        return Err(AppError::ingest(error));
    }
    let valid = decoded.len() as u64;
    let rejected = decoded.rejected;
    let first_error = decoded.first_error.clone();
    let not_stored = state
        .writer
        .try_write(Payload::RemoteWrite(decoded))
        .await?;
    if rejected + not_stored.total() == 0 {
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    // Prometheus's own receiver answers 400 for samples it cannot store (out of order,
    // a resent batch, invalid), and a sender does not retry a 400: resending cannot
    // help. Unlike it, steward keeps the request's other samples.
    let mut why: Vec<String> = not_stored.reason().into_iter().collect();
    if rejected > 0 {
        why.push(format!(
            "{rejected} invalid (first: {})",
            first_error.as_deref().unwrap_or("")
        ));
    }
    let stored = valid.saturating_sub(not_stored.total());
    let message = format!(
        "{} of {} samples not stored: {}; the other {stored} are stored",
        rejected + not_stored.total(),
        valid + rejected,
        why.join("; ")
    );
    Ok((
        StatusCode::BAD_REQUEST,
        axum::Json(json!({
            "error": message,
            "stored": stored,
            "not_stored": not_stored.total(),
            "rejected": rejected,
        })),
    )
        .into_response())
}
