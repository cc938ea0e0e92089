//! steward-watch: the `steward up` service.
//!
//! Logs and metrics come in through [`ingest`] (OTLP/HTTP, JSON lines, Prometheus
//! remote write), are stored by the [`store`] writer (acknowledged only once
//! committed), and then flow through the [`pipeline`] (template miner, per-template
//! rates, streaming detectors, forecasts, incident correlation). [`http`] serves the
//! API, steward's own `/metrics` and the dashboard. Follow a record by following the
//! folders: `ingest/` → `store/` → `pipeline/` → `http/`.
//!
//! [`Service::start`] binds the listeners and starts everything; [`Service::stop`]
//! drains it in order (servers, then the writer, then the pipeline).
#![deny(missing_docs)]

pub mod alert;
pub mod counters;
pub mod demo;
mod error;
pub mod http;
pub mod ingest;
pub mod pipeline;
pub mod store;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::watch;

pub use error::WatchError;

use crate::counters::Counters;
use crate::http::AppState;
use crate::ingest::Limits;
use crate::pipeline::{PipelineConfig, Shared};
use crate::store::Store;
use crate::store::metrics::MetricStore;
use crate::store::sqlite::SqliteStore;
use crate::store::writer::Writer;

/// The directory, inside the data directory, of the metric head's write-ahead log.
pub const TSDB_DIR: &str = "tsdb";

/// Open chunks of series with no sample for this long are closed and stored.
const IDLE_CLOSE: std::time::Duration = std::time::Duration::from_secs(3600);

/// Everything `steward up` needs to start.
#[derive(Debug, Clone)]
pub struct WatchOptions {
    /// Address of the API and dashboard.
    pub listen: String,
    /// Address of the OTLP/HTTP receiver.
    pub otlp: String,
    /// Where the embedded store lives.
    pub data_dir: PathBuf,
    /// `embedded` or a `postgres://` URL.
    pub store: String,
    /// Days raw logs are kept.
    pub retention_days: u32,
    /// Body caps.
    pub limits: Limits,
    /// Pipeline settings.
    pub pipeline: PipelineConfig,
    /// Prometheus targets scraped.
    pub scrape: Vec<ingest::scrape::Target>,
    /// How often targets without an interval of their own are scraped.
    pub scrape_interval: std::time::Duration,
    /// Log files (or globs) followed.
    pub tail: Vec<ingest::tail::Source>,
    /// Webhooks told about incidents.
    pub webhooks: Vec<alert::Webhook>,
    /// Play the built-in demo scenario into the service, one simulated minute per
    /// this much wall time.
    pub demo: Option<std::time::Duration>,
}

impl WatchOptions {
    /// The options a steward configuration gives.
    pub fn from_config(config: &steward_core::config::Config) -> WatchOptions {
        WatchOptions {
            listen: config.watch.listen.clone(),
            otlp: config.watch.otlp.clone(),
            data_dir: config.watch.data_dir.clone(),
            store: config.watch.store.clone(),
            retention_days: config.watch.retention_days,
            limits: Limits::default(),
            pipeline: PipelineConfig::from_config(config),
            scrape: config
                .watch
                .scrape
                .iter()
                .map(ingest::scrape::Target::from_config)
                .collect(),
            scrape_interval: steward_core::config::parse_duration_ms(&config.watch.scrape_interval)
                .and_then(|ms| u64::try_from(ms).ok())
                .map_or(
                    std::time::Duration::from_secs(15),
                    std::time::Duration::from_millis,
                ),
            tail: config
                .watch
                .tail
                .iter()
                .map(ingest::tail::Source::from_config)
                .collect(),
            webhooks: config
                .watch
                .webhook
                .iter()
                .map(alert::Webhook::from_config)
                .collect(),
            demo: None,
        }
    }
}

/// A running service.
#[derive(Debug)]
pub struct Service {
    /// Where the API and dashboard answer.
    pub api_addr: SocketAddr,
    /// Where the OTLP/HTTP receiver answers.
    pub otlp_addr: SocketAddr,
    state: Option<AppState>,
    shutdown: watch::Sender<bool>,
    servers: Vec<tokio::task::JoinHandle<Result<(), std::io::Error>>>,
    background: Vec<tokio::task::JoinHandle<()>>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

fn parse_addr(key: &'static str, value: &str) -> Result<SocketAddr, WatchError> {
    let value = value.trim();
    let with_host;
    let text = if value.starts_with(':') {
        with_host = format!("127.0.0.1{value}");
        with_host.as_str()
    } else {
        value
    };
    text.parse().map_err(|source| WatchError::Address {
        key,
        value: value.to_string(),
        source,
    })
}

async fn bind(addr: SocketAddr) -> Result<TcpListener, WatchError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| WatchError::Bind {
            addr: addr.to_string(),
            source,
        })
}

/// Opens the store named by the options and the metric head in front of it (its log
/// in `<data dir>/tsdb`). Blocking: call it off the async threads.
pub fn open_store(options: &WatchOptions) -> Result<Arc<MetricStore>, WatchError> {
    let inner = open_inner_store(options)?;
    let dir = options.data_dir.join(TSDB_DIR);
    let (metrics, report) = MetricStore::open(inner, &dir, steward_tsdb::TsdbOptions::default())?;
    if report.samples > 0 {
        tracing::info!(
            "time-series log: {} series, {} samples replayed",
            report.series,
            report.samples
        );
    }
    Ok(Arc::new(metrics))
}

fn open_inner_store(options: &WatchOptions) -> Result<Arc<dyn Store>, WatchError> {
    match options.store.as_str() {
        url if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
            Ok(Arc::new(store::postgres::PostgresStore::open(url)?))
        }
        "" | "embedded" | "sqlite" => {
            std::fs::create_dir_all(&options.data_dir).map_err(|source| WatchError::DataDir {
                path: options.data_dir.clone(),
                source,
            })?;
            Ok(Arc::new(SqliteStore::open(&options.data_dir)?))
        }
        other => Err(WatchError::UnsupportedStore(other.to_string())),
    }
}

impl Service {
    /// Opens the store, starts the writer and pipeline threads, binds both
    /// listeners and starts serving. Ports given as 0 are picked by the system; the
    /// chosen addresses are in [`Service::api_addr`] and [`Service::otlp_addr`].
    pub async fn start(options: WatchOptions) -> Result<Service, WatchError> {
        let api_addr = parse_addr("watch.listen", &options.listen)?;
        let otlp_addr = parse_addr("watch.otlp", &options.otlp)?;
        for hook in &options.webhooks {
            hook.validate()?;
        }
        for (i, source) in options.tail.iter().enumerate() {
            source.validate().map_err(|message| WatchError::Setting {
                key: format!("watch.tail[{i}] ({})", source.path),
                message,
            })?;
        }
        let metrics = {
            let options = options.clone();
            tokio::task::spawn_blocking(move || open_store(&options))
                .await
                .map_err(|e| WatchError::Thread(std::io::Error::other(e.to_string())))??
        };
        let store: Arc<dyn Store> = Arc::clone(&metrics) as Arc<dyn Store>;
        let counters = Arc::new(Counters::default());
        let shared = Arc::new(Shared::default());
        let (events_tx, events_rx) = tokio::sync::mpsc::unbounded_channel();
        let events = (!options.webhooks.is_empty()).then_some(events_tx);

        // Starting the pipeline reads the store: off the async threads.
        let (pipeline_tx, pipeline_thread) = {
            let (metrics, counters, shared) = (
                Arc::clone(&metrics),
                Arc::clone(&counters),
                Arc::clone(&shared),
            );
            let config = options.pipeline.clone();
            tokio::task::spawn_blocking(move || {
                pipeline::start(metrics, counters, shared, config, events)
            })
            .await
            .map_err(|e| WatchError::Thread(std::io::Error::other(e.to_string())))??
        };
        let (persister_stop, persister_rx) = std::sync::mpsc::channel();
        let persister_thread =
            store::persister::start(Arc::clone(&metrics), persister_rx, IDLE_CLOSE)
                .map_err(WatchError::Thread)?;
        let (writer, writer_thread) = Writer::start(
            Arc::clone(&metrics),
            Some(pipeline_tx),
            Arc::clone(&counters),
            Some(persister_stop),
        )
        .map_err(WatchError::Thread)?;
        let state = AppState {
            store: Arc::clone(&store),
            writer,
            counters,
            shared,
            limits: options.limits,
        };

        let api = bind(api_addr).await?;
        let api_addr = api.local_addr().map_err(WatchError::Serve)?;
        let same_port = otlp_addr == api_addr;
        let (shutdown, rx) = watch::channel(false);
        let mut servers = Vec::new();
        servers.push(serve(api, http::router(state.clone()), rx.clone()));
        let otlp_addr = if same_port {
            api_addr
        } else {
            let otlp = bind(otlp_addr).await?;
            let addr = otlp.local_addr().map_err(WatchError::Serve)?;
            servers.push(serve(otlp, http::otlp_router(state.clone()), rx.clone()));
            addr
        };

        let mut background = Vec::new();
        background.push(tokio::spawn(retention(
            Arc::clone(&store),
            options.retention_days,
            rx.clone(),
        )));
        if !options.webhooks.is_empty() {
            background.push(tokio::spawn(alert::run(
                options.webhooks.clone(),
                events_rx,
                Arc::clone(&state.counters),
                rx.clone(),
            )));
        }
        if !options.scrape.is_empty() {
            background.push(tokio::spawn(ingest::scrape::run(
                options.scrape.clone(),
                options.scrape_interval,
                options.limits,
                state.writer.clone(),
                rx.clone(),
            )));
        }
        if !options.tail.is_empty() {
            let tailer = ingest::tail::Tailer::new(options.tail.clone());
            background.push(tokio::spawn(tailer.run(
                std::time::Duration::from_millis(500),
                state.writer.clone(),
                rx.clone(),
            )));
        }
        if let Some(step) = options.demo {
            background.push(tokio::spawn(demo::run(state.writer.clone(), step, rx)));
        }
        Ok(Service {
            api_addr,
            otlp_addr,
            state: Some(state),
            shutdown,
            servers,
            background,
            threads: vec![writer_thread, persister_thread, pipeline_thread],
        })
    }

    /// The handler state, for tests that drive the router directly.
    pub fn state(&self) -> Option<&AppState> {
        self.state.as_ref()
    }

    /// Stops serving, lets the writer finish what was acknowledged and the pipeline
    /// write its findings, then returns.
    pub async fn stop(mut self) -> Result<(), WatchError> {
        let _ = self.shutdown.send(true);
        for server in self.servers.drain(..) {
            if let Ok(Err(e)) = server.await {
                return Err(WatchError::Serve(e));
            }
        }
        for task in self.background.drain(..) {
            let _ = task.await;
        }
        // The last writer handle goes with the state: the writer thread then drains
        // and ends, which ends the pipeline thread. The state (and with it the store,
        // whose PostgreSQL client must not be dropped on an async thread) is dropped
        // on a blocking thread after them.
        let state = self.state.take();
        let threads = std::mem::take(&mut self.threads);
        let _ = tokio::task::spawn_blocking(move || {
            let writer = state.as_ref().map(|s| s.writer.clone());
            drop(writer);
            let store = state.map(|s| {
                let store = Arc::clone(&s.store);
                drop(s);
                store
            });
            for t in threads {
                let _ = t.join();
            }
            drop(store);
        })
        .await;
        Ok(())
    }
}

fn serve(
    listener: TcpListener,
    router: axum::Router,
    mut shutdown: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<Result<(), std::io::Error>> {
    tokio::spawn(async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(async move {
                let _ = shutdown.wait_for(|stop| *stop).await;
            })
            .await
    })
}

/// Deletes raw logs past the retention, hourly, starting an hour after start (so a
/// restart does not stall on a large delete before it serves).
async fn retention(store: Arc<dyn Store>, days: u32, mut shutdown: watch::Receiver<bool>) {
    let hour = std::time::Duration::from_secs(3600);
    let mut every = tokio::time::interval_at(tokio::time::Instant::now() + hour, hour);
    loop {
        tokio::select! {
            _ = every.tick() => {}
            _ = shutdown.wait_for(|stop| *stop) => return,
        }
        let before = ingest::now_ms() - i64::from(days) * 86_400_000;
        let store = Arc::clone(&store);
        match tokio::task::spawn_blocking(move || store.prune_logs(before)).await {
            Ok(Ok(n)) if n > 0 => tracing::info!("retention: deleted {n} log records"),
            Ok(Err(e)) => tracing::warn!("retention: {e}"),
            _ => {}
        }
    }
}
