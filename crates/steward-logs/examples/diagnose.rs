//! Shows where the miner and the truth disagree on one dataset:
//! `cargo run -p steward-logs --example diagnose -- DIR NAME`.
#![allow(clippy::print_stdout, clippy::unwrap_used)]

use std::collections::{BTreeMap, HashMap};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let dir = std::path::Path::new(&args[1]);
    let name = &args[2];
    let formats: BTreeMap<String, String> =
        serde_json::from_str(&std::fs::read_to_string(dir.join("formats.json")).unwrap()).unwrap();
    let header = steward_logs::format::HeaderFormat::new(&formats[name]).unwrap();
    let log = std::fs::read_to_string(dir.join(name).join(format!("{name}_2k.log"))).unwrap();
    let mut rdr = csv::Reader::from_path(
        dir.join(name)
            .join(format!("{name}_2k.log_structured_corrected.csv")),
    )
    .unwrap();
    let hdr = rdr.headers().unwrap().clone();
    let ci = hdr.iter().position(|h| h == "Content").unwrap();
    let ei = hdr.iter().position(|h| h == "EventId").unwrap();
    let ti = hdr.iter().position(|h| h == "EventTemplate").unwrap();
    let truth: Vec<(String, String, String)> = rdr
        .records()
        .map(|r| {
            let r = r.unwrap();
            (r[ci].to_string(), r[ei].to_string(), r[ti].to_string())
        })
        .collect();
    let mut miner = steward_logs::TemplateMiner::default();
    let mut ids = Vec::new();
    let mut unmatched = 0;
    for (i, line) in log.lines().filter(|l| !l.trim().is_empty()).enumerate() {
        let body = match header.parse(line) {
            Some(r) => r.body,
            None => {
                unmatched += 1;
                line.to_string()
            }
        };
        if i < truth.len() && body != truth[i].0 && i < 3 {
            println!("content differs: {body:?} vs {:?}", truth[i].0);
        }
        ids.push(miner.add(&body).template_id);
    }
    println!("unmatched header lines: {unmatched}");
    let ids: Vec<u64> = ids.iter().map(|i| miner.resolve_id(*i).0).collect();
    // true group -> predicted groups
    let mut t2p: BTreeMap<&str, HashMap<u64, usize>> = BTreeMap::new();
    let mut p2t: HashMap<u64, HashMap<&str, usize>> = HashMap::new();
    for (i, (_, e, _)) in truth.iter().enumerate().take(ids.len()) {
        *t2p.entry(e).or_default().entry(ids[i]).or_default() += 1;
        *p2t.entry(ids[i]).or_default().entry(e).or_default() += 1;
    }
    let ttext: HashMap<&str, &str> = truth
        .iter()
        .map(|(_, e, t)| (e.as_str(), t.as_str()))
        .collect();
    println!("--- over-merged predicted groups");
    for (p, ts) in &p2t {
        if ts.len() > 1 {
            println!(
                "P{p} {:?}",
                miner.template(steward_logs::TemplateId(*p)).unwrap().text
            );
            for (t, n) in ts {
                println!("    {n:>5} {}", ttext[t]);
            }
        }
    }
    println!("--- split true groups");
    for (t, ps) in &t2p {
        if ps.len() > 1 {
            println!("T {:?}", ttext[t]);
            for (p, n) in ps {
                println!(
                    "    {n:>5} {}",
                    miner.template(steward_logs::TemplateId(*p)).unwrap().text
                );
            }
        }
    }
    println!("--- template text mismatches (correct groups)");
    for (t, ps) in &t2p {
        if ps.len() == 1 {
            let p = *ps.keys().next().unwrap();
            if p2t[&p].len() == 1 {
                let mine = &miner.template(steward_logs::TemplateId(p)).unwrap().text;
                if steward_logs::score::normalise(mine) != steward_logs::score::normalise(ttext[t])
                {
                    println!("  {:>4} mine {mine:?}\n       true {:?}", ps[&p], ttext[t]);
                }
            }
        }
    }
}
