//! `steward up`: the watch service.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use serde_json::json;
use steward_core::config::Override;
use steward_watch::alert::{Webhook, WebhookFormat};
use steward_watch::{Service, WatchOptions};

use super::Invocation;
use crate::Outcome;

const EXAMPLES: &str = "\
Examples:
  steward up                                   dashboard http://127.0.0.1:8080, OTLP on :4318
  steward up --demo                            the same, with a built-in scenario playing
  steward up --data-dir /var/lib/steward --listen 0.0.0.0:8080
  steward --json up --listen 127.0.0.1:0 --otlp 127.0.0.1:0
                                               pick free ports; print them as one JSON line
";

/// `steward up [--listen ADDR] [--otlp ADDR] [--data-dir DIR] [--store URL] [--demo]`
#[derive(Debug, Args)]
#[command(after_help = EXAMPLES)]
pub struct UpArgs {
    /// Address of the dashboard and the API (config watch.listen).
    #[arg(long, value_name = "HOST:PORT")]
    pub listen: Option<String>,
    /// Address of the OTLP/HTTP receiver (config watch.otlp).
    #[arg(long, value_name = "HOST:PORT")]
    pub otlp: Option<String>,
    /// Where the embedded store keeps its files (config watch.data_dir).
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// `embedded`, or a postgres:// URL (config watch.store).
    #[arg(long, value_name = "URL")]
    pub store: Option<String>,
    /// Scrape this Prometheus target (http(s)://HOST:PORT/metrics) every
    /// watch.scrape_interval (repeatable; adds to the config's [[watch.scrape]]).
    #[arg(long, value_name = "URL")]
    pub scrape: Vec<String>,
    /// Follow this log file, across rotation (repeatable; adds to [[watch.tail]]); the
    /// service is the file's name without its extension.
    #[arg(long, value_name = "PATH")]
    pub tail: Vec<PathBuf>,
    /// POST incident events (opened, grew, resolved) as JSON to this http(s):// URL
    /// (repeatable; adds to [[watch.webhook]]).
    #[arg(long, value_name = "URL")]
    pub webhook: Vec<String>,
    /// POST incident events in Slack's incoming-webhook shape to this http(s):// URL
    /// (repeatable; adds to [[watch.webhook]]).
    #[arg(long, value_name = "URL")]
    pub slack_webhook: Vec<String>,
    /// Play a built-in microservice scenario with an injected incident.
    #[arg(long)]
    pub demo: bool,
}

/// The flags that set configuration keys.
pub fn flags(args: &UpArgs) -> Vec<Override> {
    let mut out = Vec::new();
    if let Some(v) = &args.listen {
        out.push(Override::flag("--listen", "watch.listen", v.clone()));
    }
    if let Some(v) = &args.otlp {
        out.push(Override::flag("--otlp", "watch.otlp", v.clone()));
    }
    if let Some(v) = &args.data_dir {
        out.push(Override::flag(
            "--data-dir",
            "watch.data_dir",
            v.display().to_string(),
        ));
    }
    if let Some(v) = &args.store {
        out.push(Override::flag("--store", "watch.store", v.clone()));
    }
    out
}

pub fn run(args: UpArgs, inv: &Invocation) -> anyhow::Result<Outcome> {
    let mut options = WatchOptions::from_config(&inv.config.config);
    // Flags add to the lists the configuration file gives.
    options
        .scrape
        .extend(args.scrape.iter().cloned().map(Into::into));
    options
        .tail
        .extend(args.tail.iter().cloned().map(Into::into));
    options.webhooks.extend(
        args.webhook
            .iter()
            .map(|url| Webhook::new(url.clone(), WebhookFormat::Json))
            .chain(
                args.slack_webhook
                    .iter()
                    .map(|url| Webhook::new(url.clone(), WebhookFormat::Slack)),
            ),
    );
    options.demo = args.demo.then_some(std::time::Duration::from_millis(500));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("steward-up")
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let data_dir = options.data_dir.clone();
        let service = Service::start(options).await?;
        let (api, otlp) = (service.api_addr, service.otlp_addr);
        if inv.out.json() {
            inv.out.json_line(&json!({
                "api": format!("http://{api}"),
                "otlp": format!("http://{otlp}"),
                "data_dir": data_dir.display().to_string(),
            }))?;
        } else {
            inv.out
                .line(&format!("steward up: dashboard and API  http://{api}/"))?;
            inv.out.line(&format!(
                "            OTLP/HTTP          http://{otlp}/v1/logs, /v1/metrics"
            ))?;
            inv.out.line(&format!(
                "            data               {}",
                data_dir.display()
            ))?;
        }
        wait_for_signal().await;
        tracing::info!("shutting down");
        service.stop().await?;
        Ok(Outcome::Success)
    })
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
