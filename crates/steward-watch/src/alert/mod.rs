//! Alert sinks: webhooks told when an incident opens, grows or resolves.
//!
//! Two payload shapes: generic JSON (`{"event": "opened", "incident": {...}}`) and
//! Slack-compatible (`{"text": "..."}`, which Slack, Mattermost and Rocket.Chat
//! incoming webhooks take). Each event is sent to each sink at most once (events are
//! deduplicated by incident, kind, kept members and severity) and retried with backoff
//! when the receiver is down or answers 429 or 5xx. A sink may ask only for incidents
//! of a minimum severity.
//!
//! Requests go through reqwest over rustls, so `https://` receivers (every Slack
//! webhook) work; the public web PKI roots are built in and a sink may trust extra
//! CAs from a PEM file (a receiver behind a private CA). Each sink has its own queue
//! and task, so a slow or dead receiver delays no other.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use serde_json::json;
use steward_core::Severity;
pub use steward_core::config::WebhookKind as WebhookFormat;
use tokio::sync::{mpsc, watch};

use crate::counters::Counters;
use crate::pipeline::correlate::IncidentEvent;

/// Tries per event and sink: the first and three retries, 0.5 s, 1 s and 2 s apart.
const TRIES: u32 = 4;
/// The first pause between tries; each later one doubles.
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
/// The longest a receiver's `Retry-After` is honoured.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(30);

/// One webhook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Webhook {
    /// Where to POST (`http://` or `https://`).
    pub url: String,
    /// What to POST.
    pub format: WebhookFormat,
    /// Incidents less severe than this are not sent.
    pub min_severity: Severity,
    /// Extra CA certificates (PEM) trusted for this sink.
    pub ca_file: Option<PathBuf>,
}

impl Webhook {
    /// A sink of `format` at `url` for every incident, trusting the public roots.
    pub fn new(url: impl Into<String>, format: WebhookFormat) -> Webhook {
        Webhook {
            url: url.into(),
            format,
            min_severity: Severity::Info,
            ca_file: None,
        }
    }

    /// The sink a `[[watch.webhook]]` table describes.
    pub fn from_config(config: &steward_core::config::WebhookConfig) -> Webhook {
        Webhook {
            url: config.url.clone(),
            format: config.kind,
            min_severity: config.min_severity,
            ca_file: config.ca_file.clone(),
        }
    }

    /// Checks the URL and the CA file, and builds the HTTP client.
    pub fn validate(&self) -> Result<(), AlertError> {
        self.sink().map(|_| ())
    }

    fn sink(&self) -> Result<Sink, AlertError> {
        let url = reqwest::Url::parse(&self.url)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
            .ok_or_else(|| AlertError::Url(self.url.clone()))?;
        let mut builder = reqwest::Client::builder()
            .user_agent(concat!("steward/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(10));
        if let Some(path) = &self.ca_file {
            for cert in read_certificates(path)? {
                builder = builder.add_root_certificate(cert);
            }
        }
        let client = builder.build().map_err(|e| AlertError::Client {
            url: self.url.clone(),
            reason: e.to_string(),
        })?;
        Ok(Sink {
            client,
            url,
            format: self.format,
            min_severity: self.min_severity,
        })
    }
}

fn read_certificates(path: &Path) -> Result<Vec<reqwest::Certificate>, AlertError> {
    let ca_error = |reason: String| AlertError::CaFile {
        path: path.to_path_buf(),
        reason,
    };
    let pem = std::fs::read(path).map_err(|e| ca_error(e.to_string()))?;
    let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| ca_error(e.to_string()))?;
    if certs.is_empty() {
        return Err(ca_error("no PEM certificate in it".into()));
    }
    Ok(certs)
}

/// Why a webhook could not be set up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AlertError {
    /// The URL is not an `http://` or `https://` URL with a host.
    #[error("webhook URL {0:?}: expected http(s)://HOST[:PORT][/PATH]")]
    Url(String),
    /// The extra CA file could not be read or holds no certificate.
    #[error("webhook CA file {}: {reason}", path.display())]
    CaFile {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The HTTP client could not be built.
    #[error("webhook {url}: cannot build the HTTP client: {reason}")]
    Client {
        /// The sink's URL.
        url: String,
        /// Why.
        reason: String,
    },
}

/// The body sent for an event.
pub fn payload(event: &IncidentEvent, format: WebhookFormat) -> serde_json::Value {
    let incident = event.incident();
    match format {
        WebhookFormat::Json => json!({ "event": event.name(), "incident": incident }),
        WebhookFormat::Slack => {
            let cause = incident
                .cause()
                .map_or_else(String::new, |c| format!("\nLikely cause: {}", c.reason));
            json!({
                "text": format!(
                    "[steward] incident #{} {}: {} ({}, {} members){cause}",
                    incident.id,
                    event.name(),
                    incident.title,
                    incident.severity,
                    incident.member_count()
                )
            })
        }
    }
}

/// A webhook ready to send.
#[derive(Debug)]
struct Sink {
    client: reqwest::Client,
    url: reqwest::Url,
    format: WebhookFormat,
    min_severity: Severity,
}

/// What one try came to.
enum Try {
    Delivered,
    /// Worth another try, after at least this long when the receiver said so.
    Retry(String, Option<Duration>),
    GiveUp(String),
}

impl Sink {
    async fn post(&self, body: &str) -> Try {
        let sent = self
            .client
            .post(self.url.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.to_string())
            .send()
            .await;
        let response = match sent {
            Ok(r) => r,
            // Connection refused, reset, timed out, TLS failures: the receiver may come
            // back; a certificate it will not fix by itself, but retrying costs little.
            Err(e) => return Try::Retry(error_chain(&e), None),
        };
        let status = response.status();
        if status.is_success() {
            return Try::Delivered;
        }
        if status == reqwest::StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
            let after = response
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(|s| Duration::from_secs(s).min(MAX_RETRY_AFTER));
            return Try::Retry(format!("HTTP {status}"), after);
        }
        Try::GiveUp(format!("HTTP {status}"))
    }

    /// Sends with retries and exponential backoff.
    async fn deliver(&self, body: &str) -> Result<(), String> {
        let mut wait = FIRST_BACKOFF;
        let mut last = String::new();
        for attempt in 0..TRIES {
            match self.post(body).await {
                Try::Delivered => return Ok(()),
                Try::GiveUp(why) => return Err(why),
                Try::Retry(why, after) => {
                    last = why;
                    if attempt + 1 < TRIES {
                        tokio::time::sleep(after.unwrap_or(wait).max(wait)).await;
                        wait *= 2;
                    }
                }
            }
        }
        Err(last)
    }
}

/// reqwest's top-level message ("error sending request") hides the cause; the chain
/// says it (connection refused, certificate unknown, ...).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// Sends incident events to the sinks until shutdown.
pub async fn run(
    sinks: Vec<Webhook>,
    mut events: mpsc::UnboundedReceiver<IncidentEvent>,
    counters: Arc<Counters>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut queues = Vec::new();
    let mut tasks = tokio::task::JoinSet::new();
    for hook in &sinks {
        let sink = match hook.sink() {
            Ok(s) => s,
            // Service::start validated every sink; this only guards a direct call.
            Err(e) => {
                tracing::error!("{e}");
                continue;
            }
        };
        let (tx, rx) = mpsc::unbounded_channel::<IncidentEvent>();
        queues.push(tx);
        tasks.spawn(send_all(sink, rx, Arc::clone(&counters), shutdown.clone()));
    }
    // An event is told again when the incident's kept members or severity changed:
    // once an incident is full (the correlator keeps a bounded number of members), a
    // counted anomaly that raises the severity still alerts.
    let mut sent: HashSet<(u64, &'static str, usize, Severity)> = HashSet::new();
    loop {
        let event = tokio::select! {
            e = events.recv() => match e { Some(e) => e, None => break },
            _ = shutdown.wait_for(|stop| *stop) => break,
        };
        let incident = event.incident();
        if !sent.insert((
            incident.id,
            event.name(),
            incident.members.len(),
            incident.severity,
        )) {
            counters.alerts_deduplicated.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        for queue in &queues {
            let _ = queue.send(event.clone());
        }
    }
    drop(queues);
    while tasks.join_next().await.is_some() {}
}

/// One sink's queue, in order.
async fn send_all(
    sink: Sink,
    mut events: mpsc::UnboundedReceiver<IncidentEvent>,
    counters: Arc<Counters>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let event = tokio::select! {
            e = events.recv() => match e { Some(e) => e, None => return },
            _ = shutdown.wait_for(|stop| *stop) => return,
        };
        if event.incident().severity < sink.min_severity {
            continue;
        }
        let body = payload(&event, sink.format).to_string();
        let outcome = tokio::select! {
            r = sink.deliver(&body) => r,
            _ = shutdown.wait_for(|stop| *stop) => return,
        };
        match outcome {
            Ok(()) => {
                counters.alerts_sent.fetch_add(1, Ordering::Relaxed);
            }
            Err(why) => {
                counters.alerts_failed.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    "webhook {}: incident {} {}: {why}",
                    sink.url,
                    event.incident().id,
                    event.name()
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_and_https_urls_are_taken_others_refused() {
        for ok in [
            "http://127.0.0.1:9000/hooks/a",
            "http://alerts.local",
            "https://hooks.slack.com/services/T000/B000/your-webhook-token",
        ] {
            assert!(
                Webhook::new(ok, WebhookFormat::Slack).validate().is_ok(),
                "{ok}"
            );
        }
        for bad in [
            "ftp://x/",
            "hooks.slack.com/x",
            "http://",
            "mailto:ops@example.com",
        ] {
            assert_eq!(
                Webhook::new(bad, WebhookFormat::Json).validate(),
                Err(AlertError::Url(bad.into())),
                "{bad}"
            );
        }
    }

    #[test]
    fn a_ca_file_that_is_not_pem_is_refused_with_its_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.pem");
        std::fs::write(&path, "not a certificate").unwrap();
        let hook = Webhook {
            ca_file: Some(path.clone()),
            ..Webhook::new("https://alerts.local/", WebhookFormat::Json)
        };
        let err = hook.validate().unwrap_err().to_string();
        assert!(err.contains("ca.pem"), "{err}");
        let missing = Webhook {
            ca_file: Some(dir.path().join("missing.pem")),
            ..hook
        };
        assert!(
            missing
                .validate()
                .unwrap_err()
                .to_string()
                .contains("missing.pem")
        );
    }
}
