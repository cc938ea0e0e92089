//! How often the default detector reports on generated series of shapes the shared
//! NAB files lack (bursty tweet-like counts, a random walk, log-normal latency, sparse
//! counts, a noisy daily wave): reports per 10,000 points after a 3,000-point warm-up,
//! 20 seeds each. A check on data we do not have: a change tuned to the NAB files that
//! reports more on these shows here.
//! `cargo run --release -p steward-detect --example generated_rates`
#![allow(clippy::print_stdout)]
use steward_detect::StreamingDetector;
struct Rng(u64);
impl Rng {
    fn u(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    }
    fn normal(&mut self) -> f64 {
        let (a, b) = (self.u().max(1e-12), self.u());
        (-2.0 * a.ln()).sqrt() * (2.0 * std::f64::consts::PI * b).cos()
    }
    fn poisson(&mut self, lam: f64) -> f64 {
        if lam > 30.0 {
            return (lam + lam.sqrt() * self.normal()).max(0.0).round();
        }
        let l = (-lam).exp();
        let mut k = 0.0;
        let mut p = 1.0;
        loop {
            p *= self.u();
            if p <= l {
                return k;
            }
            k += 1.0;
        }
    }
}
fn main() {
    let n = 20_000usize;
    let step = 300_000i64;
    let kinds = ["tweets", "walk", "latency", "counts_small", "daily_noisy"];
    for (ki, kind) in kinds.iter().enumerate() {
        let mut total = 0usize;
        for seed in 0..20u64 {
            let mut r = Rng(seed * 1000 + ki as u64);
            let mut d = StreamingDetector::default();
            let mut walk = 100.0;
            let mut burst = 0usize;
            let mut burst_amp = 0.0;
            let mut reports = 0;
            for i in 0..n {
                let day = (2.0 * std::f64::consts::PI * i as f64 / 288.0).sin();
                let v = match *kind {
                    "tweets" => {
                        if burst == 0 && r.u() < 0.002 {
                            burst = 1 + (r.u() * 30.0) as usize;
                            burst_amp = 2.0 + 8.0 * r.u();
                        }
                        let lam = 20.0
                            * (1.0 + 0.5 * day)
                            * if burst > 0 {
                                burst -= 1;
                                burst_amp
                            } else {
                                1.0
                            };
                        r.poisson(lam)
                    }
                    "walk" => {
                        walk += r.normal();
                        walk
                    }
                    "latency" => (4.0 + 0.5 * r.normal()).exp(),
                    "counts_small" => r.poisson(0.5 * (1.0 + day).max(0.0)),
                    _ => 50.0 + 10.0 * day + 5.0 * r.normal(),
                };
                let s = d.update(i as i64 * step, v);
                if i >= 3000 && s.score >= 0.5 {
                    reports += 1;
                }
            }
            total += reports;
        }
        println!(
            "{kind:14} reports per 10k points after warm-up: {:.2}",
            total as f64 / (20.0 * (n - 3000) as f64) * 10_000.0
        );
    }
}
