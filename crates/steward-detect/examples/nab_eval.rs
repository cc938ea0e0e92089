//! Scores the default detector on a NAB corpus, with per-file detail: a tuning aid.
//! `DETAIL=T cargo run --release -p steward-detect --example nab_eval [NAB_DIR]`
//!
//! Validation mode (always printed): the files are split into two halves by a fixed rule
//! that ignores scores — within each category, files sorted by name, alternate ones go
//! to half A (0th, 2nd, ...) and half B (1st, 3rd, ...) — and each half is scored on its
//! own, with its own per-profile optimised thresholds and its own null/perfect
//! normalisation, as NAB would score that half as a corpus. A change counts as a gain
//! only if it helps on both halves and on the whole.
#![allow(clippy::print_stdout, clippy::unwrap_used)]

fn main() {
    let root = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "/work/shared/data/nab".into());
    let corpus = steward_detect::nab::Corpus::load(std::path::Path::new(&root)).unwrap();
    let t = std::time::Instant::now();
    let scores = steward_detect::score_nab(&corpus, &Default::default(), 2);
    let el = t.elapsed();
    for p in steward_detect::nab::score_corpus(&corpus, &scores) {
        println!(
            "{:20} {:6.2}  T={:.4} raw={:.2} tp={} fn={} fp_rows={}",
            p.profile,
            p.normalized,
            p.threshold,
            p.raw,
            p.true_positives,
            p.false_negatives,
            p.false_positive_rows
        );
    }
    println!("detector time {el:?}");
    for (half, name) in [(0usize, "A"), (1, "B")] {
        let (sub, sub_scores) = split_half(&corpus, &scores, half);
        let line: Vec<String> = steward_detect::nab::score_corpus(&sub, &sub_scores)
            .iter()
            .map(|p| format!("{:.2} (T={:.4})", p.normalized, p.threshold))
            .collect();
        println!(
            "half {name} ({} files, {} windows): {}",
            sub.series.len(),
            sub.window_count(),
            line.join(" / ")
        );
    }
    // TRACE=file_substring:from:to prints the rows and scores of one file.
    if let Ok(tr) = std::env::var("TRACE") {
        let parts: Vec<&str> = tr.split(':').collect();
        let (from, to): (usize, usize) = (parts[1].parse().unwrap(), parts[2].parse().unwrap());
        for (s, sc) in corpus.series.iter().zip(&scores) {
            if s.name.contains(parts[0]) {
                for (i, (v, c)) in s.values.iter().zip(sc).enumerate() {
                    if (from..to).contains(&i) {
                        println!("{i} {v} {c:.4}");
                    }
                }
            }
        }
    }
    let Ok(t) = std::env::var("DETAIL") else {
        return;
    };
    let t: f64 = t.parse().unwrap_or(0.5);
    for (s, sc) in corpus.series.iter().zip(&scores) {
        let p = s.probation();
        let inwin = |i: usize| s.windows.iter().any(|&(a, b)| i >= a && i <= b);
        let fps = (p..sc.len()).filter(|&i| sc[i] >= t && !inwin(i)).count();
        let max_out = (p..sc.len())
            .filter(|&i| !inwin(i))
            .map(|i| sc[i])
            .fold(0.0, f64::max);
        let wins: Vec<String> = s
            .windows
            .iter()
            .map(|&(a, b)| {
                let first = (a.max(p)..=b).find(|&i| sc[i] >= t);
                let (mut m, mut at) = (0.0, 0);
                for (i, &v) in sc.iter().enumerate().take(b + 1).skip(a.max(p)) {
                    if v > m {
                        m = v;
                        at = i - a;
                    }
                }
                match first {
                    Some(i) => format!("[{}]@{} max {m:.2}@{at}", b - a + 1, i - a),
                    None => format!("[{}]MISS max {m:.2}@{at}", b - a + 1),
                }
            })
            .collect();
        println!(
            "{:50} fp={:3} out={max_out:.2} {}",
            s.name.split('/').next_back().unwrap_or(""),
            fps,
            wins.join(" | ")
        );
    }
}

/// Half `half` (0 = A, 1 = B) of the corpus: within each category, files in name order,
/// every other one.
fn split_half(
    corpus: &steward_detect::nab::Corpus,
    scores: &[Vec<f64>],
    half: usize,
) -> (steward_detect::nab::Corpus, Vec<Vec<f64>>) {
    let mut idx: Vec<usize> = (0..corpus.series.len()).collect();
    idx.sort_by(|&a, &b| corpus.series[a].name.cmp(&corpus.series[b].name));
    let category = |i: usize| corpus.series[i].name.split('/').next().unwrap_or("");
    let mut picked = Vec::new();
    let mut rank = 0usize;
    let mut prev = "";
    for &i in &idx {
        if category(i) != prev {
            prev = category(i);
            rank = 0;
        }
        if rank % 2 == half {
            picked.push(i);
        }
        rank += 1;
    }
    let sub = steward_detect::nab::Corpus {
        series: picked.iter().map(|&i| corpus.series[i].clone()).collect(),
        profiles: corpus.profiles.clone(),
    };
    (sub, picked.iter().map(|&i| scores[i].clone()).collect())
}
