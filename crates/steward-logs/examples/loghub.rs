//! Prints the Loghub accuracy table: `cargo run -p steward-logs --example loghub -- DIR`.
#![allow(clippy::print_stdout)]

fn main() {
    let dir = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "../shared/data/loghub-2k".into());
    match steward_logs::bench::run_loghub(std::path::Path::new(&dir)) {
        Ok(report) => {
            for d in &report.datasets {
                println!(
                    "{:<10} GA {:.3} PA {:.3} FGA {:.3} FTA {:.3} templates {:>4}/{:<4} {:>9.0} lines/s",
                    d.name,
                    d.ga,
                    d.pa,
                    d.fga,
                    d.fta,
                    d.templates,
                    d.true_templates,
                    d.lines_per_sec
                );
            }
            let a = &report.average;
            println!(
                "{:<10} GA {:.3} PA {:.3} FGA {:.3} FTA {:.3}",
                "average", a.ga, a.pa, a.fga, a.fta
            );
        }
        Err(e) => println!("error: {e}"),
    }
}
