//! Prometheus scraping: targets' `/metrics` pages in the text exposition format, read
//! every interval into samples, as Prometheus itself would.
//!
//! Targets are `http://` or `https://` URLs, each with its own interval, `job` and
//! extra labels (`[[watch.scrape]]`); the page is capped like every other body.

use std::collections::BTreeMap;
use std::time::Duration;

use steward_core::{Sample, SeriesKey, TimestampMs};
use tokio::sync::watch;

use super::{Decoded, Limits, now_ms};
use crate::store::writer::{Payload, Writer};

/// Parses one page of the text exposition format. Lines that do not parse are counted
/// and skipped; `# HELP` and `# TYPE` lines are comments here.
pub fn parse(
    text: &str,
    default_ts: TimestampMs,
    extra: &[(&str, &str)],
) -> Decoded<(SeriesKey, Sample)> {
    let mut out = Decoded::default();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        match parse_line(line) {
            Some((mut key, value, ts)) => {
                for (k, v) in extra {
                    key.labels
                        .entry((*k).to_string())
                        .or_insert_with(|| (*v).to_string());
                }
                out.items
                    .push((key, Sample::new(ts.unwrap_or(default_ts), value)));
            }
            None => out.reject(|| format!("line {}: not a sample: {line:.80}", n + 1)),
        }
    }
    out
}

fn parse_value(s: &str) -> Option<f64> {
    match s {
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        "NaN" => Some(f64::NAN),
        _ => s.parse().ok(),
    }
}

fn parse_line(line: &str) -> Option<(SeriesKey, f64, Option<TimestampMs>)> {
    let name_end = line
        .find(|c: char| c == '{' || c.is_whitespace())
        .unwrap_or(line.len());
    let name = &line[..name_end];
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
    {
        return None;
    }
    let mut key = SeriesKey::new(name);
    let mut rest = &line[name_end..];
    if let Some(after) = rest.strip_prefix('{') {
        let mut chars = after.char_indices().peekable();
        let consumed = loop {
            // Skip separators.
            while let Some((_, c)) = chars.peek() {
                if *c == ',' || c.is_whitespace() {
                    chars.next();
                } else {
                    break;
                }
            }
            let (start, c) = *chars.peek()?;
            if c == '}' {
                break start + 1;
            }
            let mut label = String::new();
            while let Some((_, c)) = chars.peek() {
                if *c == '=' {
                    break;
                }
                label.push(*c);
                chars.next();
            }
            chars.next(); // '='
            if chars.next()?.1 != '"' {
                return None;
            }
            let mut value = String::new();
            loop {
                match chars.next()?.1 {
                    '\\' => match chars.next()?.1 {
                        'n' => value.push('\n'),
                        other => value.push(other),
                    },
                    '"' => break,
                    c => value.push(c),
                }
            }
            key.labels.insert(label.trim().to_string(), value);
        };
        rest = &after[consumed..];
    }
    let mut parts = rest.split_whitespace();
    let value = parse_value(parts.next()?)?;
    let ts = match parts.next() {
        Some(t) => Some(t.parse::<i64>().ok()?),
        None => None,
    };
    Some((key, value, ts))
}

/// One Prometheus target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The page, `http(s)://HOST[:PORT]/PATH`.
    pub url: String,
    /// The `job` label added to its samples, if any.
    pub job: Option<String>,
    /// How often it is scraped; the service's default when `None`.
    pub interval: Option<Duration>,
    /// Labels added to its samples (the page's own win).
    pub labels: BTreeMap<String, String>,
}

impl From<String> for Target {
    /// A target with no job, labels or interval of its own (the `--scrape` flag).
    fn from(url: String) -> Target {
        Target {
            url,
            job: None,
            interval: None,
            labels: BTreeMap::new(),
        }
    }
}

impl Target {
    /// The target a `[[watch.scrape]]` table describes.
    pub fn from_config(config: &steward_core::config::ScrapeConfig) -> Target {
        Target {
            url: config.url.clone(),
            job: config.job.clone(),
            interval: config
                .interval
                .as_deref()
                .and_then(steward_core::config::parse_duration_ms)
                .and_then(|ms| u64::try_from(ms).ok())
                .map(Duration::from_millis),
            labels: config.labels.clone(),
        }
    }

    /// The `instance` label: the target's `host:port`, as Prometheus sets it.
    pub fn instance(&self) -> String {
        reqwest::Url::parse(&self.url).map_or_else(
            |_| self.url.clone(),
            |u| {
                let host = u.host_str().unwrap_or("");
                match u.port_or_known_default() {
                    Some(port) => format!("{host}:{port}"),
                    None => host.to_string(),
                }
            },
        )
    }

    /// The labels added to each sample: `instance`, `job`, then the configured ones.
    fn extra_labels(&self) -> Vec<(String, String)> {
        let mut out = vec![("instance".to_string(), self.instance())];
        if let Some(job) = &self.job {
            out.push(("job".into(), job.clone()));
        }
        out.extend(self.labels.iter().map(|(k, v)| (k.clone(), v.clone())));
        out
    }
}

/// GETs a page under the body cap; returns the body text. http and https (reqwest
/// over rustls, the same client as the webhooks).
pub async fn fetch(client: &reqwest::Client, url: &str, limits: &Limits) -> Result<String, String> {
    let mut response = client
        .get(url)
        .header(reqwest::header::ACCEPT, "text/plain;version=0.0.4")
        .send()
        .await
        .map_err(|e| format!("{url}: {}", error_chain(&e)))?;
    let status = response.status();
    if !status.is_success() {
        return Err(format!("{url}: HTTP {status}"));
    }
    // Read chunk by chunk so a huge page is refused at the cap, not after it is held.
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| format!("{url}: {}", error_chain(&e)))?
    {
        if body.len() + chunk.len() > limits.max_decoded_bytes {
            return Err(format!(
                "{url}: page larger than {} bytes",
                limits.max_decoded_bytes
            ));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(String::from_utf8_lossy(&body).into_owned())
}

/// reqwest's top-level message hides the cause (connection refused, ...); say it.
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

/// Scrapes every target at its interval (`default_interval` when it has none) into
/// the writer until shutdown. Each sample gets the target's `instance` (host:port),
/// `job` and configured labels unless it has them, and `up` is recorded per target
/// (1 scraped, 0 failed), as Prometheus does.
pub async fn run(
    targets: Vec<Target>,
    default_interval: Duration,
    limits: Limits,
    writer: Writer,
    shutdown: watch::Receiver<bool>,
) {
    let client = match reqwest::Client::builder()
        .user_agent(concat!("steward/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(10))
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!("scrape: cannot build the HTTP client: {e}");
            return;
        }
    };
    let mut tasks = tokio::task::JoinSet::new();
    for target in targets {
        let interval = target.interval.unwrap_or(default_interval);
        tasks.spawn(scrape_one(
            client.clone(),
            target,
            interval,
            limits,
            writer.clone(),
            shutdown.clone(),
        ));
    }
    drop(writer);
    while tasks.join_next().await.is_some() {}
}

async fn scrape_one(
    client: reqwest::Client,
    target: Target,
    interval: Duration,
    limits: Limits,
    writer: Writer,
    mut shutdown: watch::Receiver<bool>,
) {
    let extra = target.extra_labels();
    let extra: Vec<(&str, &str)> = extra
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let mut every = tokio::time::interval(interval);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = every.tick() => {}
            _ = shutdown.wait_for(|stop| *stop) => return,
        }
        let ts = now_ms();
        let (mut items, up) = match fetch(&client, &target.url, &limits).await {
            Ok(text) => (parse(&text, ts, &extra).items, 1.0),
            Err(why) => {
                tracing::warn!("scrape {why}");
                (Vec::new(), 0.0)
            }
        };
        let mut up_key = SeriesKey::new("up");
        for (k, v) in &extra {
            up_key = up_key.with_label(*k, *v);
        }
        items.push((up_key, Sample::new(ts, up)));
        if writer.write(Payload::Samples(items)).await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_lines() {
        let page = "# HELP http_requests_total The total.\n# TYPE http_requests_total counter\n\
            http_requests_total{method=\"post\",code=\"200\"} 1027 1395066363000\n\
            http_requests_total{method=\"post\",code=\"400\"}    3 1395066363000\n\
            msdos_file_access_time_seconds{path=\"C:\\\\DIR\\\\FILE.TXT\",error=\"Cannot find file:\\n\\\"FILE.TXT\\\"\"} 1.458255915e9\n\
            metric_without_timestamp_and_labels 12.47\n\
            something_weird{problem=\"division by zero\"} +Inf -3982045\n\
            http_request_duration_seconds_bucket{le=\"0.05\",} 24054\n\
            not a sample\n";
        let d = parse(page, 7, &[("instance", "a:1")]);
        assert_eq!(d.rejected, 1);
        let keys: Vec<String> = d.items.iter().map(|(k, _)| k.to_string()).collect();
        assert_eq!(
            keys[0],
            r#"http_requests_total{code="200",instance="a:1",method="post"}"#
        );
        assert_eq!(d.items[0].1, Sample::new(1_395_066_363_000, 1027.0));
        assert_eq!(d.items[2].0.label("path"), Some(r"C:\DIR\FILE.TXT"));
        assert_eq!(
            d.items[2].0.label("error"),
            Some("Cannot find file:\n\"FILE.TXT\"")
        );
        assert_eq!(d.items[3].1, Sample::new(7, 12.47));
        assert!(d.items[4].1.value.is_infinite());
        assert_eq!(d.items[5].0.label("le"), Some("0.05"));
    }

    #[test]
    fn a_target_labels_its_samples_with_instance_job_and_its_own_labels() {
        let config = steward_core::config::ScrapeConfig {
            url: "https://app.internal/metrics".into(),
            job: Some("api".into()),
            interval: Some("5s".into()),
            labels: [("env", "prod"), ("instance", "ignored")]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        };
        let target = Target::from_config(&config);
        assert_eq!(target.interval, Some(Duration::from_secs(5)));
        assert_eq!(target.instance(), "app.internal:443");
        let extra = target.extra_labels();
        let extra: Vec<(&str, &str)> = extra
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let d = parse("reqs{env=\"dev\"} 1\n", 5, &extra);
        let key = &d.items[0].0;
        assert_eq!(key.label("instance"), Some("app.internal:443"));
        assert_eq!(key.label("job"), Some("api"));
        // The page's own label wins over a configured one.
        assert_eq!(key.label("env"), Some("dev"));
    }
}
