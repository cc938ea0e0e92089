//! SVG plots of a series: its values, the expected band, anomalies and forecasts.

use plotters::prelude::*;
use steward_core::Sample;

use crate::detector::PointScore;
use crate::forecast::ForecastPath;

/// What went wrong drawing a plot.
#[derive(Debug, thiserror::Error)]
#[error("cannot draw the plot: {0}")]
pub struct PlotError(String);

fn err(e: impl std::fmt::Display) -> PlotError {
    PlotError(e.to_string())
}

/// What to draw besides the series itself.
#[derive(Debug, Default)]
pub struct PlotLayers<'a> {
    /// Each point's verdict: draws the expected band.
    pub points: Option<&'a [PointScore]>,
    /// Points scoring at least this are marked as anomalies.
    pub threshold: f64,
    /// A forecast: its path and interval.
    pub forecast: Option<&'a ForecastPath>,
    /// A horizontal line, e.g. the forecast threshold.
    pub hline: Option<f64>,
}

/// Draws `samples` and the given layers as an SVG document of `width` x `height`.
pub fn plot_svg(
    title: &str,
    samples: &[Sample],
    layers: &PlotLayers<'_>,
    width: u32,
    height: u32,
) -> Result<String, PlotError> {
    if samples.is_empty() {
        return Err(PlotError("no points to draw".into()));
    }
    let t0 = samples[0].timestamp_ms;
    let hours = |ms: i64| (ms - t0) as f64 / 3_600_000.0;
    let mut xs = vec![hours(samples[samples.len() - 1].timestamp_ms)];
    let mut ys: Vec<f64> = samples.iter().map(|s| s.value).collect();
    // The band is drawn clipped to the values' range: in the detector's first points
    // it is wide, and it must not squash the series into a line.
    if let Some(f) = layers.forecast {
        xs.extend(f.timestamps_ms.iter().map(|&t| hours(t)));
        ys.extend(f.lower.iter().chain(&f.upper).copied());
    }
    ys.extend(layers.hline);
    let finite = |v: &f64| v.is_finite();
    let x_max = xs
        .iter()
        .copied()
        .filter(finite)
        .fold(0.0, f64::max)
        .max(1e-9);
    let y_min = ys
        .iter()
        .copied()
        .filter(finite)
        .fold(f64::INFINITY, f64::min);
    let y_max = ys
        .iter()
        .copied()
        .filter(finite)
        .fold(f64::NEG_INFINITY, f64::max);
    let pad = ((y_max - y_min) * 0.1).max(1e-9);
    let (y_lo, y_hi) = (y_min - pad, y_max + pad);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (width, height)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 18))
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(60)
            .build_cartesian_2d(0.0..x_max, y_lo..y_hi)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc("hours since start")
            .light_line_style(WHITE)
            .draw()
            .map_err(err)?;
        let clamp = |v: f64| v.clamp(y_lo, y_hi);
        if let Some(points) = layers.points {
            let band = RGBColor(150, 180, 230).mix(0.5);
            for (key, pick) in [("upper", true), ("lower", false)] {
                let line = samples.iter().zip(points).map(|(s, p)| {
                    (
                        hours(s.timestamp_ms),
                        clamp(if pick { p.upper } else { p.lower }),
                    )
                });
                chart
                    .draw_series(LineSeries::new(line, band.stroke_width(1)))
                    .map_err(err)?
                    .label(format!("expected band ({key})"));
            }
        }
        chart
            .draw_series(LineSeries::new(
                samples.iter().map(|s| (hours(s.timestamp_ms), s.value)),
                BLACK.stroke_width(1),
            ))
            .map_err(err)?;
        if let Some(points) = layers.points {
            let marks = samples
                .iter()
                .zip(points)
                .filter(|(_, p)| p.score >= layers.threshold)
                .map(|(s, _)| Circle::new((hours(s.timestamp_ms), s.value), 4, RED.filled()));
            chart.draw_series(marks).map_err(err)?;
        }
        if let Some(f) = layers.forecast {
            let at = |v: &[f64]| {
                f.timestamps_ms
                    .iter()
                    .zip(v.to_vec())
                    .map(|(&t, y)| (hours(t), clamp(y)))
                    .collect::<Vec<_>>()
            };
            chart
                .draw_series(LineSeries::new(at(&f.mean), BLUE.stroke_width(2)))
                .map_err(err)?;
            for v in [&f.lower, &f.upper] {
                chart
                    .draw_series(LineSeries::new(at(v), BLUE.mix(0.4).stroke_width(1)))
                    .map_err(err)?;
            }
        }
        if let Some(h) = layers.hline {
            chart
                .draw_series(LineSeries::new(
                    [(0.0, h), (x_max, h)],
                    RGBColor(200, 0, 0).stroke_width(1),
                ))
                .map_err(err)?;
        }
        root.present().map_err(err)?;
    }
    Ok(svg)
}
