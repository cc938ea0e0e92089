//! Alert sinks: webhooks told when an incident opens, grows or resolves.
//!
//! Two payload shapes: generic JSON (`{"event": "opened", "incident": {...}}`) and
//! Slack-compatible (`{"text": "..."}`, which Slack, Mattermost and Rocket.Chat
//! incoming webhooks take). Each event is sent to each sink at most once (events are
//! deduplicated by incident, kind and member count) and retried with backoff when the
//! receiver is down or answers 429 or 5xx.
//!
//! Only `http://` URLs are spoken today; `https://` needs a TLS client and is refused
//! at start with a clear error rather than failing at the first incident.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};

use crate::counters::Counters;
use crate::pipeline::correlate::IncidentEvent;

/// The payload shape a webhook expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookFormat {
    /// `{"event", "incident"}`.
    Json,
    /// `{"text"}`.
    Slack,
}

/// One webhook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Webhook {
    /// Where to POST.
    pub url: String,
    /// What to POST.
    pub format: WebhookFormat,
}

/// Why a webhook could not be set up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AlertError {
    /// The URL is not `http://HOST[:PORT][/PATH]`.
    #[error("webhook URL {0:?}: expected http://HOST[:PORT][/PATH] (https is not supported yet)")]
    Url(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Target {
    host: String,
    addr: String,
    path: String,
}

fn parse_url(url: &str) -> Result<Target, AlertError> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| AlertError::Url(url.to_string()))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if authority.is_empty() || authority.contains('@') {
        return Err(AlertError::Url(url.to_string()));
    }
    let addr = if authority
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
    {
        authority.to_string()
    } else {
        format!("{authority}:80")
    };
    Ok(Target {
        host: authority.to_string(),
        addr,
        path: path.to_string(),
    })
}

impl Webhook {
    /// Checks the URL.
    pub fn validate(&self) -> Result<(), AlertError> {
        parse_url(&self.url).map(|_| ())
    }
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
                    "[steward] incident #{} {}: {} ({:?}, {} members){cause}",
                    incident.id,
                    event.name(),
                    incident.title,
                    incident.severity,
                    incident.members.len()
                )
            })
        }
    }
}

/// POSTs once; returns the status code.
async fn post(target: &Target, body: &[u8]) -> std::io::Result<u16> {
    let mut stream = tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(&target.addr))
        .await
        .map_err(|_| std::io::Error::other("connect timed out"))??;
    let head = format!(
        "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\nUser-Agent: steward\r\n\r\n",
        target.path,
        target.host,
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body).await?;
    let mut first = [0u8; 64];
    let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut first))
        .await
        .map_err(|_| std::io::Error::other("no answer"))??;
    let line = String::from_utf8_lossy(&first[..n]);
    line.split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other("not an HTTP answer"))
}

/// Sends with retries: up to 4 tries, 0.5 s, 1 s, 2 s apart.
async fn deliver(target: &Target, body: &[u8]) -> Result<(), String> {
    let mut wait = Duration::from_millis(500);
    let mut last = String::new();
    for attempt in 0..4 {
        if attempt > 0 {
            tokio::time::sleep(wait).await;
            wait *= 2;
        }
        match post(target, body).await {
            Ok(status) if (200..300).contains(&status) => return Ok(()),
            Ok(status) if status == 429 || status >= 500 => last = format!("HTTP {status}"),
            Ok(status) => return Err(format!("HTTP {status}")),
            Err(e) => last = e.to_string(),
        }
    }
    Err(last)
}

/// Sends incident events to the sinks until shutdown.
pub async fn run(
    sinks: Vec<Webhook>,
    mut events: mpsc::UnboundedReceiver<IncidentEvent>,
    counters: Arc<Counters>,
    mut shutdown: watch::Receiver<bool>,
) {
    let targets: Vec<(Target, WebhookFormat)> = sinks
        .iter()
        .filter_map(|s| parse_url(&s.url).ok().map(|t| (t, s.format)))
        .collect();
    let mut sent: HashSet<(u64, &'static str, usize)> = HashSet::new();
    loop {
        let event = tokio::select! {
            e = events.recv() => match e { Some(e) => e, None => return },
            _ = shutdown.wait_for(|stop| *stop) => return,
        };
        let incident = event.incident();
        if !sent.insert((incident.id, event.name(), incident.members.len())) {
            counters.alerts_deduplicated.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        for (target, format) in &targets {
            let body = payload(&event, *format).to_string();
            match deliver(target, body.as_bytes()).await {
                Ok(()) => {
                    counters.alerts_sent.fetch_add(1, Ordering::Relaxed);
                }
                Err(why) => {
                    counters.alerts_failed.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!("webhook {}{}: {why}", target.host, target.path);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let t = parse_url("http://127.0.0.1:9000/hooks/a").unwrap();
        assert_eq!(
            (t.addr.as_str(), t.path.as_str()),
            ("127.0.0.1:9000", "/hooks/a")
        );
        assert_eq!(
            parse_url("http://alerts.local").unwrap().addr,
            "alerts.local:80"
        );
        assert!(parse_url("https://hooks.slack.com/x").is_err());
        assert!(parse_url("http://user@host/").is_err());
    }
}
