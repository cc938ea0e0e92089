//! The dashboard: server-rendered HTML pages with inline SVG charts.

use axum::Router;
use axum::response::Html;
use axum::routing::get;

use super::AppState;

/// The dashboard's routes.
pub fn routes() -> Router<AppState> {
    Router::new().route("/", get(overview))
}

async fn overview() -> Html<&'static str> {
    Html("<!doctype html><title>steward</title><h1>steward</h1>")
}
