//! Mines a file of message contents (one per line) and prints lines per second:
//! `cargo run --release -p steward-logs --example throughput -- FILE`.
//! The file is read into memory first, so only the miner is timed.
#![allow(clippy::print_stdout)]

use std::time::Instant;

fn main() {
    let Some(path) = std::env::args().nth(1) else {
        println!("usage: throughput FILE");
        return;
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) => {
            println!("cannot read {path}: {e}");
            return;
        }
    };
    let lines: Vec<&str> = text.lines().collect();
    let mut miner = steward_logs::TemplateMiner::default();
    let start = Instant::now();
    let mut params = 0usize;
    for line in &lines {
        params += miner.add(line).params.len();
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "steward lines={} secs={:.3} lines_per_sec={:.0} templates={} params={}",
        lines.len(),
        secs,
        lines.len() as f64 / secs,
        miner.len(),
        params
    );
}
