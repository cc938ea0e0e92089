//! Scores the default detector on a NAB corpus, with per-file detail: a tuning aid.
//! `DETAIL=T cargo run --release -p steward-detect --example nab_eval [NAB_DIR]`
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
