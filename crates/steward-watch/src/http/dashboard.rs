//! The dashboard: server-rendered HTML with inline SVG charts and inline CSS, no
//! script and no external asset, so it works offline and behind any proxy.
//!
//! Pages: `/` (open incidents, a timeline, forecasts, top templates), `/incidents/{id}`
//! (members charted with their expected bands and anomalies marked, related templates,
//! likely cause), `/templates` (top, new, surging), `/series` (explorer) and
//! `/forecasts`.

use std::fmt::Write as _;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::response::Html;
use axum::routing::get;
use serde::Deserialize;
use steward_core::{Anomaly, Incident, IncidentStatus, TimestampMs};

use super::api::read;
use super::{AppError, AppState};
use crate::pipeline::forecast::{Forecast, human_duration};
use crate::pipeline::rates::TEMPLATE_RATE;
use crate::store::{Point, StoredAnomaly, TemplateRow};

/// The dashboard's routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(overview))
        .route("/incidents/{id}", get(incident))
        .route("/templates", get(templates))
        .route("/series", get(series))
        .route("/forecasts", get(forecasts))
}

/// Escapes text for HTML.
fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `2026-11-25 12:34:56` UTC.
fn clock(ms: TimestampMs) -> String {
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

const STYLE: &str = "body{font:14px/1.45 system-ui,sans-serif;margin:0;color:#1d2330;background:#f6f7f9}\
header{background:#1d2330;color:#fff;padding:10px 24px;display:flex;gap:24px;align-items:center}\
header a{color:#cfd6e4;text-decoration:none}header b{font-size:16px;margin-right:12px}\
main{padding:16px 24px;max-width:1200px}h1{font-size:20px}h2{font-size:16px;margin-top:28px}\
table{border-collapse:collapse;width:100%;background:#fff}td,th{padding:6px 8px;border-bottom:1px solid #e4e7ec;text-align:left;vertical-align:top}\
th{font-weight:600;color:#5b6475;font-size:12px;text-transform:uppercase}\
.sev{display:inline-block;padding:1px 8px;border-radius:10px;font-size:12px;color:#fff;background:#8a94a6}\
.sev.critical,.sev.high{background:#c62828}.sev.medium{background:#ef6c00}.sev.low{background:#5c6bc0}\
.card{background:#fff;border:1px solid #e4e7ec;border-radius:6px;padding:12px;margin:12px 0}\
code{font:12px ui-monospace,monospace;background:#eef1f5;padding:1px 4px;border-radius:3px;word-break:break-all}\
.muted{color:#6b7385}.stats span{margin-right:24px}svg{background:#fff;border:1px solid #e4e7ec;border-radius:4px}";

fn page(title: &str, body: &str) -> Html<String> {
    Html(format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
<link rel=\"icon\" href=\"data:,\"><title>{} · steward</title><style>{STYLE}</style></head>\
<body><header><b>steward</b><a href=\"/\">Overview</a><a href=\"/templates\">Templates</a>\
<a href=\"/series\">Series</a><a href=\"/forecasts\">Forecasts</a>\
<a href=\"/openapi.json\">API</a></header><main>{body}</main></body></html>",
        esc(title)
    ))
}

fn severity(incident: &Incident) -> String {
    let s = format!("{:?}", incident.severity).to_ascii_lowercase();
    format!("<span class=\"sev {s}\">{s}</span>")
}

fn incident_rows(incidents: &[Incident]) -> String {
    if incidents.is_empty() {
        return "<p class=\"muted\">None.</p>".into();
    }
    let mut out = String::from(
        "<table><tr><th>#</th><th>severity</th><th>incident</th><th>opened</th><th>members</th><th>likely cause</th></tr>",
    );
    for i in incidents {
        let cause = i.cause().map_or_else(String::new, |c| esc(&c.reason));
        let _ = write!(
            out,
            "<tr><td><a href=\"/incidents/{id}\">{id}</a></td><td>{}</td>\
<td><a href=\"/incidents/{id}\">{}</a>{}</td><td>{}</td><td>{}</td><td>{cause}</td></tr>",
            severity(i),
            esc(&i.title),
            if i.status == IncidentStatus::Resolved {
                " <span class=\"muted\">(resolved)</span>"
            } else {
                ""
            },
            clock(i.opened_ms),
            i.member_count(),
            id = i.id,
        );
    }
    out.push_str("</table>");
    out
}

/// A timeline of incidents: one bar per incident from its first member's start to
/// its last activity, over the span they cover.
fn timeline(incidents: &[Incident]) -> String {
    let spans: Vec<(u64, i64, i64, bool)> = incidents
        .iter()
        .map(|i| {
            let end = i.resolved_ms.unwrap_or_else(|| {
                i.members
                    .iter()
                    .map(|m| m.end_ms)
                    .max()
                    .unwrap_or(i.opened_ms)
            });
            (
                i.id,
                i.opened_ms,
                end.max(i.opened_ms),
                i.status == IncidentStatus::Open,
            )
        })
        .collect();
    let (Some(lo), Some(hi)) = (
        spans.iter().map(|s| s.1).min(),
        spans.iter().map(|s| s.2).max(),
    ) else {
        return String::new();
    };
    let span = (hi - lo).max(60_000);
    let (w, row) = (1000.0, 22.0);
    #[allow(clippy::cast_precision_loss)]
    let h = row * spans.len() as f64 + 30.0;
    let mut svg = format!(
        "<svg role=\"img\" aria-label=\"incident timeline\" viewBox=\"0 0 {w} {h}\" width=\"100%\" height=\"{h}\">"
    );
    #[allow(clippy::cast_precision_loss)]
    let x = |t: i64| 150.0 + (t - lo) as f64 / span as f64 * (w - 170.0);
    for (n, (id, start, end, open)) in spans.iter().enumerate() {
        #[allow(clippy::cast_precision_loss)]
        let y = 8.0 + row * n as f64;
        let colour = if *open { "#c62828" } else { "#8a94a6" };
        let _ = write!(
            svg,
            "<a href=\"/incidents/{id}\"><text x=\"8\" y=\"{}\" font-size=\"12\">#{id}</text>\
<rect x=\"{:.1}\" y=\"{y}\" width=\"{:.1}\" height=\"14\" rx=\"3\" fill=\"{colour}\"/></a>",
            y + 11.0,
            x(*start),
            (x(*end) - x(*start)).max(4.0)
        );
    }
    let _ = write!(
        svg,
        "<text x=\"150\" y=\"{}\" font-size=\"11\" fill=\"#6b7385\">{}</text>\
<text x=\"{}\" y=\"{}\" font-size=\"11\" fill=\"#6b7385\" text-anchor=\"end\">{}</text></svg>",
        h - 6.0,
        clock(lo),
        w - 20.0,
        h - 6.0,
        clock(hi)
    );
    svg
}

/// A line chart of points with the detector's expected band shaded and anomalies
/// marked in red.
pub fn chart(
    title: &str,
    points: &[Point],
    anomalies: &[&Anomaly],
    forecast: Option<&Forecast>,
) -> String {
    let (w, h, pad) = (900.0_f64, 220.0_f64, 40.0_f64);
    if points.is_empty() {
        return format!("<p class=\"muted\">{}: no points.</p>", esc(title));
    }
    let (mut lo_t, mut hi_t) = (i64::MAX, i64::MIN);
    let (mut lo_v, mut hi_v) = (f64::INFINITY, f64::NEG_INFINITY);
    for p in points {
        lo_t = lo_t.min(p.timestamp_ms);
        hi_t = hi_t.max(p.timestamp_ms);
        for v in [
            Some(p.value),
            p.band.map(|b| b.lower),
            p.band.map(|b| b.upper),
            p.min,
            p.max,
        ]
        .into_iter()
        .flatten()
        .filter(|v| v.is_finite())
        {
            lo_v = lo_v.min(v);
            hi_v = hi_v.max(v);
        }
    }
    if let Some(f) = forecast {
        hi_v = hi_v.max(f.limit);
    }
    if !lo_v.is_finite() || !hi_v.is_finite() {
        return format!("<p class=\"muted\">{}: no finite points.</p>", esc(title));
    }
    if hi_v - lo_v < 1e-9 {
        hi_v += 1.0;
        lo_v -= 1.0;
    }
    let span_t = (hi_t - lo_t).max(1);
    #[allow(clippy::cast_precision_loss)]
    let x = |t: i64| pad + (t - lo_t) as f64 / span_t as f64 * (w - 2.0 * pad);
    let y = |v: f64| h - pad / 2.0 - (v - lo_v) / (hi_v - lo_v) * (h - pad);
    let mut svg = format!(
        "<svg role=\"img\" aria-label=\"{t}\" viewBox=\"0 0 {w} {h}\" width=\"100%\" height=\"{h}\">\
<text x=\"{pad}\" y=\"14\" font-size=\"12\" font-weight=\"600\">{t}</text>",
        t = esc(title)
    );
    // The expected band, as one polygon: upper edge forward, lower edge back.
    let banded: Vec<(i64, f64, f64)> = points
        .iter()
        .filter_map(|p| p.band.map(|b| (p.timestamp_ms, b.lower, b.upper)))
        .filter(|(_, l, u)| l.is_finite() && u.is_finite())
        .collect();
    if banded.len() > 1 {
        let mut poly = String::new();
        for (t, _, u) in &banded {
            let _ = write!(poly, "{:.1},{:.1} ", x(*t), y(u.min(hi_v)));
        }
        for (t, l, _) in banded.iter().rev() {
            let _ = write!(poly, "{:.1},{:.1} ", x(*t), y(l.max(lo_v)));
        }
        let _ = write!(
            svg,
            "<polygon points=\"{poly}\" fill=\"#90caf9\" fill-opacity=\"0.35\" stroke=\"none\"><title>expected band</title></polygon>"
        );
    }
    // A downsampled point's min and max, as a grey envelope: a spike the mean smooths
    // out still shows.
    let spread: Vec<(i64, f64, f64)> = points
        .iter()
        .filter_map(|p| Some((p.timestamp_ms, p.min?, p.max?)))
        .filter(|(_, l, u)| l.is_finite() && u.is_finite())
        .collect();
    if spread.len() > 1 {
        let mut poly = String::new();
        for (t, _, u) in &spread {
            let _ = write!(poly, "{:.1},{:.1} ", x(*t), y(*u));
        }
        for (t, l, _) in spread.iter().rev() {
            let _ = write!(poly, "{:.1},{:.1} ", x(*t), y(*l));
        }
        let _ = write!(
            svg,
            "<polygon points=\"{poly}\" fill=\"#9e9e9e\" fill-opacity=\"0.3\" stroke=\"none\" class=\"spread\"><title>min and max per step</title></polygon>"
        );
    }
    for a in anomalies {
        let (x0, x1) = (x(a.start_ms.max(lo_t)), x(a.end_ms.min(hi_t)));
        let _ = write!(
            svg,
            "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"#ef5350\" fill-opacity=\"0.15\"><title>{}</title></rect>",
            x0 - 2.0,
            pad / 2.0,
            (x1 - x0).max(0.0) + 4.0,
            h - pad,
            esc(&a.reason)
        );
    }
    let mut line = String::new();
    for p in points.iter().filter(|p| p.value.is_finite()) {
        let _ = write!(line, "{:.1},{:.1} ", x(p.timestamp_ms), y(p.value));
    }
    let _ = write!(
        svg,
        "<polyline points=\"{line}\" fill=\"none\" stroke=\"#1d2330\" stroke-width=\"1.5\"/>"
    );
    for p in points {
        let hit = anomalies
            .iter()
            .any(|a| p.timestamp_ms >= a.start_ms && p.timestamp_ms <= a.end_ms);
        if hit && p.value.is_finite() {
            let _ = write!(
                svg,
                "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3.5\" fill=\"#c62828\" class=\"anomaly\"/>",
                x(p.timestamp_ms),
                y(p.value)
            );
        }
    }
    if let Some(f) = forecast {
        let _ = write!(
            svg,
            "<line x1=\"{pad}\" x2=\"{:.1}\" y1=\"{:.1}\" y2=\"{:.1}\" stroke=\"#ef6c00\" stroke-dasharray=\"4 3\"><title>limit {}</title></line>",
            w - pad,
            y(f.limit),
            y(f.limit),
            f.limit
        );
    }
    let _ = write!(
        svg,
        "<text x=\"4\" y=\"{:.1}\" font-size=\"10\" fill=\"#6b7385\">{}</text>\
<text x=\"4\" y=\"{:.1}\" font-size=\"10\" fill=\"#6b7385\">{}</text>\
<text x=\"{pad}\" y=\"{:.1}\" font-size=\"10\" fill=\"#6b7385\">{}</text>\
<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"10\" fill=\"#6b7385\" text-anchor=\"end\">{}</text></svg>",
        y(hi_v) + 10.0,
        short(hi_v),
        y(lo_v),
        short(lo_v),
        h - 2.0,
        clock(lo_t),
        w - pad,
        h - 2.0,
        clock(hi_t)
    );
    svg
}

fn short(v: f64) -> String {
    if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.3}")
    }
}

fn template_table(rows: &[TemplateRow]) -> String {
    if rows.is_empty() {
        return "<p class=\"muted\">None.</p>".into();
    }
    let mut out = String::from(
        "<table><tr><th>#</th><th>count</th><th>level</th><th>services</th><th>template</th><th>sample</th><th>first seen</th></tr>",
    );
    for t in rows {
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td><td class=\"muted\">{}</td><td>{}</td></tr>",
            t.id,
            t.count,
            esc(t.level.as_deref().unwrap_or("")),
            esc(&t.services.join(", ")),
            esc(&t.text),
            esc(&t.sample),
            clock(t.first_seen_ms)
        );
    }
    out.push_str("</table>");
    out
}

fn forecast_table(forecasts: &[Forecast]) -> String {
    if forecasts.is_empty() {
        return "<p class=\"muted\">No resource series yet (disk, memory, pool usage).</p>".into();
    }
    let mut out = String::from(
        "<table><tr><th>series</th><th>now</th><th>limit</th><th>trend / h</th><th>runs out</th></tr>",
    );
    for f in forecasts {
        let eta = f.exhausted_at_ms.map_or_else(
            || "not within sight".to_string(),
            |at| format!("{} (in {})", clock(at), human_duration(at - f.as_of_ms)),
        );
        let warn = if f.warning {
            " <span class=\"sev high\">warning</span>"
        } else {
            ""
        };
        let _ = write!(
            out,
            "<tr><td><a href=\"/series?id={}\"><code>{}</code></a></td><td>{}</td><td>{}</td><td>{:+.4}</td><td>{eta}{warn}</td></tr>",
            f.series_id,
            esc(&f.series.to_string()),
            short(f.current),
            f.limit,
            f.slope_per_hour
        );
    }
    out.push_str("</table>");
    out
}

async fn overview(State(state): State<AppState>) -> Result<Html<String>, AppError> {
    let (open, recent, templates, stats) = read(&state, |s| {
        Ok((
            s.incidents(Some(IncidentStatus::Open), 50)?,
            s.incidents(None, 30)?,
            s.templates(10)?,
            s.stats()?,
        ))
    })
    .await?;
    let forecasts = state.shared.forecasts();
    let c = &state.counters;
    let load = |a: &std::sync::atomic::AtomicU64| a.load(std::sync::atomic::Ordering::Relaxed);
    let body = format!(
        "<h1>Overview</h1><div class=\"card stats\"><span><b>{}</b> log records stored</span>\
<span><b>{}</b> series</span><span><b>{}</b> records in since start</span>\
<span><b>{}</b> rejected</span><span><b>{}</b> dropped</span></div>\
<h2>Open incidents</h2>{}<h2>Timeline</h2>{}<h2>Recent incidents</h2>{}<h2>Forecasts</h2>{}<h2>Top templates</h2>{}",
        stats.logs,
        stats.series,
        load(&c.logs_in) + load(&c.samples_in),
        load(&c.logs_rejected) + load(&c.samples_rejected),
        load(&c.dropped),
        incident_rows(&open),
        if recent.is_empty() {
            "<p class=\"muted\">No incidents yet.</p>".into()
        } else {
            timeline(&recent)
        },
        incident_rows(&recent),
        forecast_table(&forecasts.iter().take(10).cloned().collect::<Vec<_>>()),
        template_table(&templates)
    );
    Ok(page("Overview", &body))
}

async fn incident(
    State(state): State<AppState>,
    Path(id): Path<u64>,
) -> Result<Html<String>, AppError> {
    let found = read(&state, move |s| {
        let Some(incident) = s.incident(id)? else {
            return Ok(None);
        };
        let keys: Vec<_> = incident.members.iter().map(|m| &m.series).collect();
        let ids = s.intern(&keys)?;
        let from = incident.opened_ms - 3_600_000;
        let to = incident
            .members
            .iter()
            .map(|m| m.end_ms)
            .max()
            .unwrap_or(incident.opened_ms)
            + 3_600_000;
        let mut charts = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for (m, sid) in incident.members.iter().zip(&ids) {
            if seen.insert(*sid) && charts.len() < 8 {
                charts.push((*sid, m.series.to_string(), s.points(*sid, from, to, 300)?));
            }
        }
        let mut templates = Vec::new();
        for m in &incident.members {
            if m.series.name == TEMPLATE_RATE
                && let Some(t) = m.series.label("template").and_then(|t| t.parse().ok())
                && let Some(row) = s.template(t)?
                && !templates.iter().any(|r: &TemplateRow| r.id == row.id)
            {
                templates.push(row);
            }
        }
        Ok(Some((incident, charts, templates)))
    })
    .await?;
    let (incident, charts, templates) =
        found.ok_or_else(|| AppError::NotFound(format!("no incident {id}")))?;
    let mut body = format!(
        "<h1>Incident #{} {}</h1><div class=\"card\"><b>{}</b><br>{} · opened {}{}</div>",
        incident.id,
        severity(&incident),
        esc(&incident.title),
        if incident.status == IncidentStatus::Open {
            "open"
        } else {
            "resolved"
        },
        clock(incident.opened_ms),
        incident
            .resolved_ms
            .map_or_else(String::new, |r| format!(" · resolved {}", clock(r)))
    );
    if let Some(cause) = incident.cause() {
        let _ = write!(
            body,
            "<h2>Likely cause</h2><div class=\"card\" id=\"cause\"><code>{}</code><br>{} — {}</div>",
            esc(&cause.series.to_string()),
            esc(cause.kind.as_str()),
            esc(&cause.reason)
        );
    }
    body.push_str("<h2>Timeline</h2><table><tr><th>start</th><th>end</th><th>kind</th><th>series</th><th>score</th><th>reason</th></tr>");
    for m in &incident.members {
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td><td>{:.2}</td><td>{}</td></tr>",
            clock(m.start_ms),
            clock(m.end_ms),
            esc(m.kind.as_str()),
            esc(&m.series.to_string()),
            m.score,
            esc(&m.reason)
        );
    }
    body.push_str("</table>");
    if incident.more_members > 0 {
        // The correlator keeps an incident's earliest members and counts the rest.
        let _ = write!(
            body,
            "<p class=\"muted\">and {} later anomalies that joined, counted but not kept \
(<a href=\"/api/v1/anomalies\">the anomalies API</a> has each, with this incident's id)</p>",
            incident.more_members
        );
    }
    body.push_str("<h2>Members</h2>");
    for (sid, selector, points) in &charts {
        let marks: Vec<&Anomaly> = incident
            .members
            .iter()
            .filter(|m| m.series.to_string() == *selector)
            .collect();
        let _ = write!(
            body,
            "<div class=\"card\"><a href=\"/series?id={sid}\">series {sid}</a>{}</div>",
            chart(
                selector,
                points,
                &marks,
                state.shared.forecast(*sid).as_ref()
            )
        );
    }
    body.push_str("<h2>Related log templates</h2>");
    body.push_str(&template_table(&templates));
    Ok(page(&format!("Incident #{}", incident.id), &body))
}

/// A template's records per minute between its first and last record.
#[allow(clippy::cast_precision_loss)]
fn per_minute(t: &TemplateRow) -> f64 {
    let minutes = ((t.last_seen_ms - t.first_seen_ms) as f64 / 60_000.0).max(1.0);
    t.count as f64 / minutes
}

/// How recently a template must have first appeared, before the newest record, to be
/// listed as new.
const NEW_WITHIN_MS: i64 = 24 * 3_600_000;

/// The templates page's three lists, from the stored templates and anomalies.
///
/// - Surging: templates whose rate rose in an anomaly (a spike or an upward level
///   shift), and new templates written at least once a minute since they appeared (a
///   template with no past has no baseline to spike from, yet a new error written 30
///   times a minute is exactly a surge), fastest first.
/// - New: first seen within a day of the newest record, newest first.
/// - Top: by count.
fn template_lists(
    top: &[TemplateRow],
    anomalies: &[StoredAnomaly],
) -> (Vec<TemplateRow>, Vec<TemplateRow>) {
    let newest_ms = top.iter().map(|t| t.last_seen_ms).max().unwrap_or(0);
    let oldest_ms = top.iter().map(|t| t.first_seen_ms).min().unwrap_or(0);
    // Templates there from the start are not new, however recent the start.
    let is_new = |t: &TemplateRow| {
        t.first_seen_ms > oldest_ms + 60_000 && newest_ms - t.first_seen_ms <= NEW_WITHIN_MS
    };
    let mut newest: Vec<TemplateRow> = top.iter().filter(|t| is_new(t)).cloned().collect();
    newest.sort_by_key(|t| std::cmp::Reverse(t.first_seen_ms));
    newest.truncate(20);

    let rose: std::collections::HashSet<u64> = anomalies
        .iter()
        .filter(|a| {
            a.anomaly.series.name == TEMPLATE_RATE
                && match a.anomaly.kind {
                    steward_core::AnomalyKind::Spike => true,
                    steward_core::AnomalyKind::LevelShift => a.anomaly.reason.contains(" up"),
                    _ => false,
                }
        })
        .filter_map(|a| a.anomaly.series.label("template")?.parse().ok())
        .collect();
    let mut surging: Vec<TemplateRow> = top
        .iter()
        .filter(|t| rose.contains(&t.id) || (is_new(t) && per_minute(t) >= 1.0))
        .cloned()
        .collect();
    surging.sort_by(|a, b| per_minute(b).total_cmp(&per_minute(a)));
    surging.truncate(20);
    (surging, newest)
}

async fn templates(State(state): State<AppState>) -> Result<Html<String>, AppError> {
    let (top, anomalies) = read(&state, |s| {
        Ok((s.templates(2_000)?, s.anomalies(i64::MIN, i64::MAX, 2_000)?))
    })
    .await?;
    let (surging, newest) = template_lists(&top, &anomalies);
    let body = format!(
        "<h1>Templates</h1><h2>Surging</h2>{}<h2>New</h2>{}<h2>Top</h2>{}",
        template_table(&surging),
        template_table(&newest),
        template_table(&top.iter().take(50).cloned().collect::<Vec<_>>())
    );
    Ok(page("Templates", &body))
}

/// Query of `/series`.
#[derive(Debug, Deserialize)]
struct SeriesQuery {
    id: Option<i64>,
    name: Option<String>,
}

async fn series(
    State(state): State<AppState>,
    Query(q): Query<SeriesQuery>,
) -> Result<Html<String>, AppError> {
    let name = q.name.clone();
    let id = q.id;
    let (list, detail) = read(&state, move |s| {
        let list = s.series(name.as_deref(), &[], 500)?;
        let detail = match id {
            Some(id) => match s.series_key(id)? {
                Some(key) => {
                    let points = s.points(id, i64::MIN, i64::MAX, 600)?;
                    let anomalies: Vec<Anomaly> = s
                        .anomalies(i64::MIN, i64::MAX, 10_000)?
                        .into_iter()
                        .filter(|a| a.series_id == Some(id) || a.anomaly.series == key)
                        .map(|a| a.anomaly)
                        .collect();
                    Some((key, points, anomalies))
                }
                None => None,
            },
            None => None,
        };
        Ok((list, detail))
    })
    .await?;
    let mut body = String::from(
        "<h1>Series</h1><form method=\"get\" action=\"/series\"><input name=\"name\" placeholder=\"metric name contains\"> <button>Filter</button></form>",
    );
    if let (Some(id), Some((key, points, anomalies))) = (q.id, detail) {
        let marks: Vec<&Anomaly> = anomalies.iter().collect();
        let _ = write!(
            body,
            "<div class=\"card\">{}</div>",
            chart(
                &key.to_string(),
                &points,
                &marks,
                state.shared.forecast(id).as_ref()
            )
        );
    }
    body.push_str("<table><tr><th>id</th><th>series</th><th>points</th><th>last</th></tr>");
    for s in &list {
        let _ = write!(
            body,
            "<tr><td>{}</td><td><a href=\"/series?id={}\"><code>{}</code></a></td><td>{}</td><td>{}</td></tr>",
            s.id,
            s.id,
            esc(&s.selector),
            s.points,
            s.last_value.map_or_else(String::new, short)
        );
    }
    body.push_str("</table>");
    Ok(page("Series", &body))
}

async fn forecasts(State(state): State<AppState>) -> Html<String> {
    let all = state.shared.forecasts();
    page(
        "Forecasts",
        &format!("<h1>Forecasts</h1>{}", forecast_table(&all)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_and_escaping() {
        assert_eq!(clock(0), "1970-01-01 00:00:00");
        assert_eq!(clock(951_868_800_100), "2000-03-01 00:00:00");
        assert_eq!(
            esc("<a href=\"x\">&</a>"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&lt;/a&gt;"
        );
    }

    #[test]
    fn downsampled_points_get_a_min_max_envelope() {
        let point = |t: i64, max: f64| Point {
            timestamp_ms: t,
            value: 1.0,
            band: None,
            min: Some(0.5),
            max: Some(max),
            count: Some(10),
        };
        let svg = chart("q", &[point(0, 1.5), point(60_000, 90.0)], &[], None);
        assert!(svg.contains("class=\"spread\""), "{svg}");
        let raw = Point {
            min: None,
            max: None,
            count: None,
            ..point(0, 1.0)
        };
        let plain = chart(
            "q",
            &[
                raw,
                Point {
                    timestamp_ms: 1,
                    ..raw
                },
            ],
            &[],
            None,
        );
        assert!(!plain.contains("spread"));
    }
}
