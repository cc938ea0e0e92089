//! Prometheus scraping: targets' `/metrics` pages in the text exposition format, read
//! every interval into samples, as Prometheus itself would.
//!
//! Targets are `http://` URLs. Requests are HTTP/1.0, so the answer is never chunked
//! and ends when the connection closes; the page is capped like every other body.

use std::time::Duration;

use steward_core::{Sample, SeriesKey, TimestampMs};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
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

/// GETs a page over HTTP/1.0 under the body cap; returns the body text.
pub async fn fetch(url: &str, limits: &Limits) -> Result<String, String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("{url}: only http:// targets are supported"))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/metrics"),
    };
    let addr = if authority
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
    {
        authority.to_string()
    } else {
        format!("{authority}:80")
    };
    let io = async {
        let mut stream = TcpStream::connect(&addr).await?;
        let request = format!(
            "GET {path} HTTP/1.0\r\nHost: {authority}\r\nAccept: text/plain;version=0.0.4\r\nUser-Agent: steward\r\n\r\n"
        );
        stream.write_all(request.as_bytes()).await?;
        let cap = u64::try_from(limits.max_decoded_bytes).unwrap_or(u64::MAX);
        let mut raw = Vec::new();
        (&mut stream).take(cap + 1).read_to_end(&mut raw).await?;
        Ok::<_, std::io::Error>(raw)
    };
    let raw = tokio::time::timeout(Duration::from_secs(10), io)
        .await
        .map_err(|_| format!("{url}: timed out"))?
        .map_err(|e| format!("{url}: {e}"))?;
    if raw.len() > limits.max_decoded_bytes {
        return Err(format!(
            "{url}: page larger than {} bytes",
            limits.max_decoded_bytes
        ));
    }
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| format!("{url}: not an HTTP answer"))?;
    let head = String::from_utf8_lossy(&raw[..split]);
    let status = head.split(' ').nth(1).unwrap_or("");
    if !status.starts_with('2') {
        return Err(format!("{url}: HTTP {status}"));
    }
    Ok(String::from_utf8_lossy(&raw[split + 4..]).into_owned())
}

/// Scrapes `targets` every `interval` into the writer until shutdown. Each sample gets
/// an `instance` label (the target's host:port) unless it has one, and `up` is
/// recorded per target (1 scraped, 0 failed), as Prometheus does.
pub async fn run(
    targets: Vec<String>,
    interval: Duration,
    limits: Limits,
    writer: Writer,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut every = tokio::time::interval(interval);
    loop {
        tokio::select! {
            _ = every.tick() => {}
            _ = shutdown.wait_for(|stop| *stop) => return,
        }
        for url in &targets {
            let instance = url
                .trim_start_matches("http://")
                .split('/')
                .next()
                .unwrap_or("")
                .to_string();
            let ts = now_ms();
            let (mut items, up) = match fetch(url, &limits).await {
                Ok(text) => (parse(&text, ts, &[("instance", &instance)]).items, 1.0),
                Err(why) => {
                    tracing::warn!("scrape {why}");
                    (Vec::new(), 0.0)
                }
            };
            items.push((
                SeriesKey::new("up").with_label("instance", instance.clone()),
                Sample::new(ts, up),
            ));
            if writer.write(Payload::Samples(items)).await.is_err() {
                return;
            }
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
}
