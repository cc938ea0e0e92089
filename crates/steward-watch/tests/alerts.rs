//! Webhook sinks against local receivers: an https one behind a private CA (trusted
//! through the sink's `ca_file`, refused without it), and a plain http one for the
//! severity filter and deduplication.
#![allow(clippy::unwrap_used)] // a test that cannot set up should fail loudly

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use steward_core::{Anomaly, AnomalyKind, Incident, IncidentStatus, SeriesKey, Severity};
use steward_watch::alert::{Webhook, WebhookFormat};
use steward_watch::counters::Counters;
use steward_watch::pipeline::correlate::IncidentEvent;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_rustls::rustls;

type Bodies = Arc<Mutex<Vec<Value>>>;

/// Reads one HTTP request (head, then Content-Length bytes of body), keeps the body
/// and answers 200.
async fn answer(mut stream: impl AsyncRead + AsyncWrite + Unpin, bodies: Bodies) {
    let mut raw = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        let n = stream.read(&mut buf).await.unwrap_or(0);
        if n == 0 {
            return;
        }
        raw.extend_from_slice(&buf[..n]);
        let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") else {
            continue;
        };
        let head = String::from_utf8_lossy(&raw[..end]).to_lowercase();
        let len: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        if raw.len() >= end + 4 + len {
            let body = serde_json::from_slice(&raw[end + 4..end + 4 + len]).unwrap();
            bodies.lock().unwrap().push(body);
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                .await;
            let _ = stream.shutdown().await;
            return;
        }
    }
}

/// A plain http receiver; its URL and what it got.
async fn http_receiver() -> (String, Bodies) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let bodies = Bodies::default();
    let kept = Arc::clone(&bodies);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(answer(stream, Arc::clone(&kept)));
        }
    });
    (url, bodies)
}

/// An https receiver for `localhost` whose certificate a fresh private CA signed; its
/// URL, the CA's PEM and what it got.
async fn https_receiver() -> (String, String, Bodies) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "steward test CA");
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).unwrap();
    let leaf_key = rcgen::KeyPair::generate().unwrap();
    let leaf = rcgen::CertificateParams::new(vec!["localhost".to_string()])
        .unwrap()
        .signed_by(&leaf_key, &ca)
        .unwrap();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into());
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![leaf.der().clone()], key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "https://localhost:{}/services/T0/B0/x",
        listener.local_addr().unwrap().port()
    );
    let bodies = Bodies::default();
    let kept = Arc::clone(&bodies);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (acceptor, kept) = (acceptor.clone(), Arc::clone(&kept));
            tokio::spawn(async move {
                // A client that does not trust the CA aborts the handshake.
                if let Ok(tls) = acceptor.accept(stream).await {
                    answer(tls, kept).await;
                }
            });
        }
    });
    (url, ca.as_ref().pem(), bodies)
}

fn incident(id: u64, severity: Severity) -> Incident {
    Incident {
        id,
        title: "spike in db_query_duration_ms".into(),
        status: IncidentStatus::Open,
        severity,
        opened_ms: 1_700_000_000_000,
        resolved_ms: None,
        members: vec![Anomaly {
            series: SeriesKey::new("db_query_duration_ms").with_label("service", "checkout"),
            kind: AnomalyKind::Spike,
            start_ms: 1_700_000_000_000,
            end_ms: 1_700_000_060_000,
            score: 0.95,
            reason: "spike to 240 at 12:00, expected 12".into(),
        }],
        likely_cause: 0,
        more_members: 0,
    }
}

/// Runs the sinks over `events`, until every one is handled, and returns the counters.
async fn deliver(
    sinks: Vec<Webhook>,
    events: Vec<IncidentEvent>,
    done: impl Fn(&Counters) -> bool,
) -> Arc<Counters> {
    for sink in &sinks {
        sink.validate().unwrap();
    }
    let counters = Arc::new(Counters::default());
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(steward_watch::alert::run(
        sinks,
        rx,
        Arc::clone(&counters),
        shutdown,
    ));
    for e in events {
        tx.send(e).unwrap();
    }
    for _ in 0..100 {
        if done(&counters) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = stop.send(true);
    task.await.unwrap();
    counters
}

#[tokio::test]
async fn an_https_webhook_behind_a_private_ca_gets_the_slack_payload() {
    let (url, ca_pem, bodies) = https_receiver().await;
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca_pem).unwrap();

    // Without the CA the receiver's certificate is refused: nothing is delivered.
    let untrusted = Webhook::new(url.clone(), WebhookFormat::Slack);
    let counters = deliver(
        vec![untrusted],
        vec![IncidentEvent::Opened(incident(7, Severity::High))],
        |c| c.alerts_failed.load(Ordering::Relaxed) > 0,
    )
    .await;
    assert!(bodies.lock().unwrap().is_empty());
    assert_eq!(counters.alerts_sent.load(Ordering::Relaxed), 0);
    assert_eq!(counters.alerts_failed.load(Ordering::Relaxed), 1);

    let trusted = Webhook {
        ca_file: Some(ca_file),
        ..Webhook::new(url, WebhookFormat::Slack)
    };
    let got = Arc::clone(&bodies);
    let counters = deliver(
        vec![trusted],
        vec![IncidentEvent::Opened(incident(7, Severity::High))],
        move |_| !got.lock().unwrap().is_empty(),
    )
    .await;
    let bodies = bodies.lock().unwrap().clone();
    assert_eq!(bodies.len(), 1, "{bodies:?}");
    let text = bodies[0]["text"].as_str().unwrap();
    assert!(
        text.starts_with("[steward] incident #7 opened: spike in db_query_duration_ms"),
        "{text}"
    );
    assert!(text.contains("Likely cause: spike to 240"), "{text}");
    assert_eq!(counters.alerts_sent.load(Ordering::Relaxed), 1);
}

#[tokio::test]
async fn a_sink_gets_each_event_once_and_only_at_its_severity() {
    let (url, bodies) = http_receiver().await;
    let sink = Webhook {
        min_severity: Severity::High,
        ..Webhook::new(url, WebhookFormat::Json)
    };
    let got = Arc::clone(&bodies);
    let counters = deliver(
        vec![sink],
        vec![
            IncidentEvent::Opened(incident(1, Severity::Low)),
            IncidentEvent::Opened(incident(2, Severity::High)),
            IncidentEvent::Opened(incident(2, Severity::High)),
            IncidentEvent::Resolved(Incident {
                status: IncidentStatus::Resolved,
                ..incident(2, Severity::High)
            }),
        ],
        move |_| got.lock().unwrap().len() >= 2,
    )
    .await;
    let bodies = bodies.lock().unwrap().clone();
    let seen: Vec<(u64, &str)> = bodies
        .iter()
        .map(|b| {
            (
                b["incident"]["id"].as_u64().unwrap(),
                b["event"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(seen, [(2, "opened"), (2, "resolved")]);
    assert_eq!(counters.alerts_deduplicated.load(Ordering::Relaxed), 1);
    assert_eq!(counters.alerts_sent.load(Ordering::Relaxed), 2);
}
