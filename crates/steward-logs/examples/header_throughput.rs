//! Header parsing speed on Loghub-layout data, next to the miner's:
//! `cargo run --release -p steward-logs --example header_throughput -- DIR [LINES]`.
//!
//! For every dataset in DIR (`X/X_2k.log` and the format in `DIR/formats.json`), the
//! raw lines are repeated to LINES (default 200,000) in memory, then timed one after
//! the other: the compiled matcher taking the content, the regular expression doing the
//! same (the anchor), the full record with level, attributes and timestamp, and the
//! template miner on the contents.
#![allow(clippy::print_stdout)]

use std::collections::BTreeMap;
use std::time::Instant;

use steward_logs::TemplateMiner;
use steward_logs::format::HeaderFormat;

fn rate(lines: usize, start: Instant) -> f64 {
    lines as f64 / start.elapsed().as_secs_f64().max(1e-9)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let Some(dir) = args.next() else {
        println!("usage: header_throughput DIR [LINES]");
        return;
    };
    let total: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(200_000);
    let dir = std::path::Path::new(&dir);
    let formats: BTreeMap<String, String> = match std::fs::read_to_string(dir.join("formats.json"))
        .map_err(|e| e.to_string())
        .and_then(|t| serde_json::from_str(&t).map_err(|e| e.to_string()))
    {
        Ok(f) => f,
        Err(e) => {
            println!("cannot read {}/formats.json: {e}", dir.display());
            return;
        }
    };
    println!("dataset     compiled/s    regex/s  record/s   miner/s  stamped");
    for (name, spec) in &formats {
        let path = dir.join(name).join(format!("{name}_2k.log"));
        let Ok(text) = std::fs::read_to_string(&path) else {
            println!("{name}: cannot read {}", path.display());
            continue;
        };
        let Ok(format) = HeaderFormat::new(spec) else {
            println!("{name}: bad format {spec:?}");
            continue;
        };
        let raw: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        if raw.is_empty() {
            continue;
        }
        let lines: Vec<&str> = raw.iter().copied().cycle().take(total).collect();

        let start = Instant::now();
        let mut bytes = 0usize;
        for line in &lines {
            bytes += format.content(line).map_or(0, str::len);
        }
        let compiled = rate(lines.len(), start);

        let start = Instant::now();
        let mut regex_bytes = 0usize;
        for line in &lines {
            regex_bytes += format.content_by_regex(line).map_or(0, str::len);
        }
        let regex = rate(lines.len(), start);
        assert_eq!(bytes, regex_bytes, "{name}: the two ways disagree");

        let start = Instant::now();
        let mut stamped = 0usize;
        for line in &lines {
            if format.parse(line).is_some_and(|r| r.timestamp_ms.is_some()) {
                stamped += 1;
            }
        }
        let record = rate(lines.len(), start);

        let contents: Vec<&str> = lines
            .iter()
            .map(|l| format.content(l).unwrap_or(l))
            .collect();
        let mut miner = TemplateMiner::default();
        let start = Instant::now();
        for content in &contents {
            miner.add(content);
        }
        let mined = rate(lines.len(), start);
        println!(
            "{name:<10} {compiled:>10.0} {regex:>10.0} {record:>9.0} {mined:>9.0} {:>7.1}%",
            100.0 * stamped as f64 / lines.len() as f64
        );
    }
}
