//! The read API under `/api/v1`, `/healthz`, `/metrics` and `/openapi.json`.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use steward_core::{IncidentStatus, TimestampMs};

use super::{AppError, AppState};
use crate::pipeline::rates::TEMPLATE_RATE;
use crate::store::{LogQuery, Store, StoreError};

/// Runs a store read on a blocking thread.
pub async fn read<T: Send + 'static>(
    state: &AppState,
    f: impl FnOnce(&dyn Store) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, AppError> {
    let store = std::sync::Arc::clone(&state.store);
    tokio::task::spawn_blocking(move || f(store.as_ref()))
        .await
        .map_err(|e| AppError::Store(StoreError::Write(format!("read task failed: {e}"))))?
        .map_err(AppError::from)
}

/// `GET /healthz`.
pub async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// `GET /metrics`: steward's own counters, Prometheus text format.
pub async fn metrics(State(state): State<AppState>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.counters.render(),
    )
        .into_response()
}

/// `GET /api/v1/logs?q=&service=&level=&from=&to=&limit=`.
pub async fn logs(
    State(state): State<AppState>,
    Query(query): Query<LogQuery>,
) -> Result<Json<Value>, AppError> {
    let logs = read(&state, move |s| s.search_logs(&query)).await?;
    Ok(Json(json!({ "logs": logs })))
}

/// Query of `GET /api/v1/series`.
#[derive(Debug, Deserialize)]
pub struct SeriesParams {
    /// Text the metric name contains.
    pub name: Option<String>,
    /// `service` label.
    pub service: Option<String>,
    /// Other labels, `k=v,k2=v2`.
    pub labels: Option<String>,
    /// Most series listed (default 200).
    pub limit: Option<usize>,
}

/// `GET /api/v1/series?name=&service=&labels=k=v,..&limit=`.
pub async fn series(
    State(state): State<AppState>,
    Query(p): Query<SeriesParams>,
) -> Result<Json<Value>, AppError> {
    let mut labels = Vec::new();
    if let Some(service) = p.service.filter(|s| !s.is_empty()) {
        labels.push(("service".to_string(), service));
    }
    for pair in p
        .labels
        .iter()
        .flat_map(|l| l.split(','))
        .filter(|s| !s.is_empty())
    {
        let (k, v) = pair
            .split_once('=')
            .ok_or_else(|| AppError::BadRequest(format!("label {pair:?}: expected k=v")))?;
        labels.push((k.trim().to_string(), v.trim().to_string()));
    }
    let limit = p.limit.unwrap_or(200).clamp(1, 10_000);
    let name = p.name;
    let series = read(&state, move |s| s.series(name.as_deref(), &labels, limit)).await?;
    Ok(Json(json!({ "series": series })))
}

/// A time range and a point budget.
#[derive(Debug, Deserialize)]
pub struct RangeParams {
    /// Earliest, ms (default: all).
    pub from: Option<TimestampMs>,
    /// Latest, exclusive, ms (default: all).
    pub to: Option<TimestampMs>,
    /// Most points (default 500).
    pub max_points: Option<usize>,
    /// Downsampling step: milliseconds, or a number with a unit (`30s`, `5m`, `1h`).
    pub step: Option<String>,
    /// Most items (default 100).
    pub limit: Option<usize>,
    /// `open` or `resolved`.
    pub status: Option<String>,
}

/// `GET /api/v1/series/{id}?from=&to=&max_points=&step=`: points with their expected
/// band, anomalies and the forecast. Without `step`, a range with more than
/// `max_points` samples comes back downsampled to at most that many steps; with it, one
/// point per step (mean as value, with min, max and count).
pub async fn series_points(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    Query(p): Query<RangeParams>,
) -> Result<Json<Value>, AppError> {
    let (from, to) = (p.from.unwrap_or(i64::MIN), p.to.unwrap_or(i64::MAX));
    let max = p.max_points.unwrap_or(500).clamp(2, 20_000);
    let step = p.step.as_deref().map(parse_step).transpose()?;
    let (key, points, anomalies) = read(&state, move |s| {
        let key = s.series_key(id)?;
        let points = s.points_by_step(id, from, to, step, max)?;
        let anomalies = s.anomalies(from, to, 10_000)?;
        Ok((key, points, anomalies))
    })
    .await?;
    let key = key.ok_or_else(|| AppError::NotFound(format!("no series {id}")))?;
    check_step_fits(step, points.points.len(), max)?;
    let anomalies: Vec<_> = anomalies
        .into_iter()
        .filter(|a| a.series_id == Some(id) || a.anomaly.series == key)
        .collect();
    Ok(Json(json!({
        "id": id,
        "key": key,
        "selector": key.to_string(),
        "step_ms": points.step_ms,
        "points": points.points,
        "anomalies": anomalies,
        "forecast": state.shared.forecast(id),
    })))
}

/// Reads a `step`: whole milliseconds (`60000`) or a whole number with a unit (`500ms`,
/// `30s`, `5m`, `1h`, `1d`), above zero. Hand-written: five units do not need a crate.
fn parse_step(raw: &str) -> Result<i64, AppError> {
    let bad = || {
        AppError::BadRequest(format!(
            "step {raw:?}: expected a positive whole number of ms or with a unit (500ms, 30s, 5m, 1h, 1d)"
        ))
    };
    let raw_t = raw.trim();
    let digits = raw_t
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(raw_t.len());
    let (number, unit) = raw_t.split_at(digits);
    let number: i64 = number.parse().map_err(|_| bad())?;
    let factor = match unit {
        "" | "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return Err(bad()),
    };
    match number.checked_mul(factor) {
        Some(step) if step > 0 => Ok(step),
        _ => Err(bad()),
    }
}

/// An explicit step is the caller's choice, so it is not widened behind their back; when
/// it gives more points than `max_points`, the caller is told instead.
fn check_step_fits(step: Option<i64>, points: usize, max: usize) -> Result<(), AppError> {
    match step {
        Some(step) if points > max => Err(AppError::BadRequest(format!(
            "step {step} ms gives {points} points over the range, more than max_points {max}: \
             choose a larger step, a shorter range or a larger max_points"
        ))),
        _ => Ok(()),
    }
}

/// `GET /api/v1/templates?limit=`: most frequent first.
pub async fn templates(
    State(state): State<AppState>,
    Query(p): Query<RangeParams>,
) -> Result<Json<Value>, AppError> {
    let limit = p.limit.unwrap_or(100).clamp(1, 10_000);
    let templates = read(&state, move |s| s.templates(limit)).await?;
    Ok(Json(json!({ "templates": templates })))
}

/// `GET /api/v1/templates/{id}`: one template and its rate per service over time.
pub async fn template(
    State(state): State<AppState>,
    Path(id): Path<u64>,
    Query(p): Query<RangeParams>,
) -> Result<Json<Value>, AppError> {
    let (from, to) = (p.from.unwrap_or(i64::MIN), p.to.unwrap_or(i64::MAX));
    let max = p.max_points.unwrap_or(500).clamp(2, 20_000);
    let step = p.step.as_deref().map(parse_step).transpose()?;
    let (template, rates) = read(&state, move |s| {
        let template = s.template(id)?;
        let series = s.series(
            Some(TEMPLATE_RATE),
            &[("template".to_string(), id.to_string())],
            100,
        )?;
        let mut rates = Vec::new();
        for info in series {
            let points = s.points_by_step(info.id, from, to, step, max)?;
            rates.push((info, points));
        }
        Ok((template, rates))
    })
    .await?;
    let template = template.ok_or_else(|| AppError::NotFound(format!("no template {id}")))?;
    let mut out = Vec::with_capacity(rates.len());
    for (info, points) in rates {
        check_step_fits(step, points.points.len(), max)?;
        out.push(json!({
            "series_id": info.id,
            "service": info.key.label("service"),
            "step_ms": points.step_ms,
            "points": points.points,
        }));
    }
    let rates = out;
    Ok(Json(json!({ "template": template, "rates": rates })))
}

/// `GET /api/v1/anomalies?from=&to=&limit=`.
pub async fn anomalies(
    State(state): State<AppState>,
    Query(p): Query<RangeParams>,
) -> Result<Json<Value>, AppError> {
    let (from, to) = (p.from.unwrap_or(i64::MIN), p.to.unwrap_or(i64::MAX));
    let limit = p.limit.unwrap_or(100).clamp(1, 10_000);
    let anomalies = read(&state, move |s| s.anomalies(from, to, limit)).await?;
    Ok(Json(json!({ "anomalies": anomalies })))
}

fn parse_status(status: Option<&str>) -> Result<Option<IncidentStatus>, AppError> {
    match status {
        None | Some("" | "all") => Ok(None),
        Some("open") => Ok(Some(IncidentStatus::Open)),
        Some("resolved") => Ok(Some(IncidentStatus::Resolved)),
        Some(other) => Err(AppError::BadRequest(format!(
            "status {other:?}: expected open, resolved or all"
        ))),
    }
}

/// `GET /api/v1/incidents?status=open|resolved&limit=`.
pub async fn incidents(
    State(state): State<AppState>,
    Query(p): Query<RangeParams>,
) -> Result<Json<Value>, AppError> {
    let status = parse_status(p.status.as_deref())?;
    let limit = p.limit.unwrap_or(100).clamp(1, 10_000);
    let incidents = read(&state, move |s| s.incidents(status, limit)).await?;
    Ok(Json(json!({ "incidents": incidents })))
}

/// `GET /api/v1/incidents/{id}`: the incident, its members' series ids, and the log
/// templates among its members with their samples.
pub async fn incident(
    State(state): State<AppState>,
    Path(id): Path<u64>,
) -> Result<Json<Value>, AppError> {
    let found = read(&state, move |s| {
        let Some(incident) = s.incident(id)? else {
            return Ok(None);
        };
        let keys: Vec<_> = incident.members.iter().map(|m| &m.series).collect();
        let ids = s.intern(&keys)?;
        let mut templates = BTreeMap::new();
        for m in &incident.members {
            if m.series.name == TEMPLATE_RATE
                && let Some(t) = m
                    .series
                    .label("template")
                    .and_then(|t| t.parse().ok())
                    .map(|t| s.template(t))
                    .transpose()?
                    .flatten()
            {
                templates.insert(t.id, t);
            }
        }
        Ok(Some((
            incident,
            ids,
            templates.into_values().collect::<Vec<_>>(),
        )))
    })
    .await?;
    let (incident, ids, templates) =
        found.ok_or_else(|| AppError::NotFound(format!("no incident {id}")))?;
    Ok(Json(json!({
        "incident": incident,
        "cause": incident.cause(),
        "member_series": ids,
        "templates": templates,
    })))
}

/// `GET /api/v1/forecasts`: resources and when they run out, soonest first.
pub async fn forecasts(State(state): State<AppState>) -> Json<Value> {
    Json(json!({ "forecasts": state.shared.forecasts() }))
}

/// `GET /openapi.json`: the API's OpenAPI 3.1 document.
pub async fn openapi() -> Json<Value> {
    Json(openapi_document())
}

fn get_op(summary: &str, params: &[(&str, &str, &str)]) -> Value {
    let parameters: Vec<Value> = params
        .iter()
        .map(|(name, kind, desc)| {
            let location = if name.starts_with('{') {
                "path"
            } else {
                "query"
            };
            json!({
                "name": name.trim_matches(|c| c == '{' || c == '}'),
                "in": location,
                "required": location == "path",
                "description": desc,
                "schema": { "type": kind },
            })
        })
        .collect();
    json!({ "get": {
        "summary": summary,
        "parameters": parameters,
        "responses": { "200": { "description": "OK", "content": { "application/json": {} } } },
    }})
}

fn post_op(summary: &str, types: &[&str]) -> Value {
    let content: serde_json::Map<String, Value> = types
        .iter()
        .map(|t| ((*t).to_string(), json!({})))
        .collect();
    json!({ "post": {
        "summary": summary,
        "requestBody": { "required": true, "content": content },
        "responses": {
            "200": { "description": "Stored (OTLP: partial_success lists rejected records)" },
            "204": { "description": "Remote write: every sample stored" },
            "400": { "description": "Malformed body, with a reason; remote write: some samples not stored (out of order, resent, invalid, or of a refused series), with `stored`, `not_stored` and `rejected` counts, the others stored" },
            "413": { "description": "Body or decompressed body over its cap" },
            "415": { "description": "Unsupported content type or encoding" },
            "503": { "description": "Store unavailable; retry after Retry-After" },
        },
    }})
}

/// The OpenAPI document, built once per request (it is small).
pub fn openapi_document() -> Value {
    let range = [
        ("from", "integer", "earliest timestamp, ms"),
        ("to", "integer", "latest timestamp (exclusive), ms"),
    ];
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "steward watch API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Logs and metrics in; templates, anomalies, incidents and forecasts out.",
        },
        "paths": {
            "/v1/logs": post_op("OTLP/HTTP logs (protobuf or JSON, gzip allowed)", &["application/x-protobuf", "application/json"]),
            "/v1/metrics": post_op("OTLP/HTTP metrics (protobuf or JSON, gzip allowed)", &["application/x-protobuf", "application/json"]),
            "/ingest/logs": post_op("JSON lines, one log record per line", &["application/x-ndjson"]),
            "/api/v1/write": post_op("Prometheus remote write (snappy protobuf)", &["application/x-protobuf"]),
            "/healthz": get_op("Liveness", &[]),
            "/metrics": get_op("steward's own counters, Prometheus text format", &[]),
            "/api/v1/logs": get_op("Search raw logs, newest first", &[
                ("q", "string", "text the body contains"),
                ("service", "string", "service name"),
                ("level", "string", "lowest level"),
                range[0], range[1],
                ("limit", "integer", "most records (default 100)"),
            ]),
            "/api/v1/series": get_op("List series", &[
                ("name", "string", "text the metric name contains"),
                ("service", "string", "service label"),
                ("labels", "string", "k=v,k2=v2"),
                ("limit", "integer", "most series"),
            ]),
            "/api/v1/series/{id}": get_op("Points of a series with expected band, anomalies and forecast", &[
                ("{id}", "integer", "series id"), range[0], range[1],
                ("max_points", "integer", "most points (default 500, at most 20000); a range with more samples comes back one point per step: the step's mean as value, with min, max and count"),
                ("step", "string", "downsampling step: whole ms or with a unit (500ms, 30s, 5m, 1h, 1d); one point per step that holds samples; 400 when not a positive duration or when it gives more than max_points points"),
            ]),
            "/api/v1/templates": get_op("Log templates, most frequent first", &[("limit", "integer", "most templates")]),
            "/api/v1/templates/{id}": get_op("One template and its rate per service", &[("{id}", "integer", "template id"), range[0], range[1],
                ("max_points", "integer", "most points per rate series (default 500)"),
                ("step", "string", "downsampling step, as for /api/v1/series/{id}"),
            ]),
            "/api/v1/anomalies": get_op("Anomalies, newest first", &[range[0], range[1], ("limit", "integer", "most anomalies")]),
            "/api/v1/incidents": get_op("Incidents, newest first", &[("status", "string", "open, resolved or all"), ("limit", "integer", "most incidents")]),
            "/api/v1/incidents/{id}": get_op("One incident with its likely cause and related templates", &[("{id}", "integer", "incident id")]),
            "/api/v1/forecasts": get_op("Resources and when they run out", &[]),
        },
    })
}
