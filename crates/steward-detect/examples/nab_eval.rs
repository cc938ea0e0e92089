//! Scores the default detector on a NAB corpus, with per-file detail: a tuning aid.
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
    if std::env::var_os("DETAIL").is_some() {
        let t: f64 = std::env::var("DETAIL").unwrap().parse().unwrap_or(0.5);
        for (s, sc) in corpus.series.iter().zip(&scores) {
            let p = s.probation();
            let hits: Vec<usize> = (p..sc.len()).filter(|&i| sc[i] >= t).collect();
            let caught: Vec<String> = s
                .windows
                .iter()
                .map(|&(a, b)| match hits.iter().find(|&&i| i >= a && i <= b) {
                    Some(i) => format!("[{a}-{b}]@{}", i - a),
                    None => format!("[{a}-{b}]MISS"),
                })
                .collect();
            let fps = hits
                .iter()
                .filter(|&&i| !s.windows.iter().any(|&(a, b)| i >= a && i <= b))
                .count();
            println!(
                "{:55} n={:5} fp={:3} {}",
                s.name,
                sc.len(),
                fps,
                caught.join(" ")
            );
        }
    }
}
