//! Runs the `drain3` crate (0.3.0) over a file of log message contents, one per line,
//! and prints lines per second and the number of templates.
//!
//! Usage: drain3-anchor FILE [--no-masks]
//! Settings match steward's side of the comparison: similarity 0.4, no limit on tokens
//! or bytes per line, and four generic masks (UUID, IP with optional port, hex, number).

use std::time::Instant;

use drain3::{Config, MaskingInstruction, Matcher};

fn main() {
    let mut args = std::env::args().skip(1);
    let path = args.next().expect("usage: drain3-anchor FILE [--no-masks]");
    let masks = args.next().as_deref() != Some("--no-masks");
    let text = std::fs::read_to_string(&path).expect("read the input");
    let lines: Vec<&str> = text.lines().collect();

    let masking = if masks {
        vec![
            MaskingInstruction {
                pattern: r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}".into(),
                mask: "<*>".into(),
            },
            MaskingInstruction {
                pattern: r"\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}(:\d+)?".into(),
                mask: "<*>".into(),
            },
            MaskingInstruction {
                pattern: r"0[xX][0-9a-fA-F]+".into(),
                mask: "<*>".into(),
            },
            MaskingInstruction {
                pattern: r"\d+".into(),
                mask: "<*>".into(),
            },
        ]
    } else {
        Vec::new()
    };
    let cfg = Config::builder()
        .similarity_threshold(0.4)
        .max_tokens(usize::MAX)
        .max_bytes(usize::MAX)
        .masking(masking)
        .build();
    let mut matcher = Matcher::new(cfg);
    let start = Instant::now();
    let mut errors = 0usize;
    for line in &lines {
        if matcher.add_log_message(line).is_err() {
            errors += 1;
        }
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "drain3-crate masks={} lines={} secs={:.3} lines_per_sec={:.0} errors={}",
        masks,
        lines.len(),
        secs,
        lines.len() as f64 / secs,
        errors
    );
}
