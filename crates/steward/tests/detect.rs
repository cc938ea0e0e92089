//! `steward detect` and `steward forecast` against the built binary: generated series
//! with known anomalies and crossings, bad input, and NAB on the shared data.
// A test binary: its helpers panic on failure by design, like the tests themselves.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use serde_json::Value;

fn steward(dir: &tempfile::TempDir) -> Command {
    let mut cmd = Command::cargo_bin("steward").unwrap();
    cmd.current_dir(dir.path()).env_clear();
    if let Some(path) = std::env::var_os("PATH") {
        cmd.env("PATH", path);
    }
    cmd
}

/// White noise in [-0.5, 0.5), reproducible (SplitMix64 of the index).
fn noise(i: i64) -> f64 {
    let mut z = (i as u64)
        .wrapping_add(1)
        .wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64 - 0.5
}

/// Writes `timestamp,<column>` rows at 5-minute steps from 2024-05-01 00:00 UTC.
fn write_series(dir: &Path, name: &str, column: &str, len: i64, f: impl Fn(i64) -> f64) -> PathBuf {
    let start = 1_714_521_600i64; // 2024-05-01T00:00:00Z
    let mut text = format!("timestamp,other,{column}\n");
    for i in 0..len {
        text.push_str(&format!("{},0,{}\n", start + i * 300, f(i)));
    }
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn json_of(cmd: &mut Command) -> Value {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn detect_finds_a_known_spike_and_plots_it() {
    let dir = tempfile::tempdir().unwrap();
    // 2000 points; a spike at row 1500, which is 2024-05-06 05:00 UTC.
    let csv = write_series(dir.path(), "cpu.csv", "cpu", 2000, |i| {
        40.0 + noise(i) + if i == 1500 { 12.0 } else { 0.0 }
    });
    let svg = dir.path().join("cpu.svg");
    let v = json_of(
        steward(&dir)
            .args(["--json", "detect"])
            .arg(&csv)
            .args(["--column", "cpu", "--plot"])
            .arg(&svg),
    );
    let anomalies = v["anomalies"].as_array().unwrap();
    assert_eq!(v["points"], 2000);
    let hit = anomalies
        .iter()
        .find(|a| a["start"] == "2024-05-06 05:00:00")
        .unwrap_or_else(|| panic!("no anomaly at the spike: {v:#}"));
    assert_eq!(hit["kind"], "spike");
    assert!(
        hit["reason"].as_str().unwrap().contains("at 05:00"),
        "{hit}"
    );
    assert!(anomalies.len() <= 2, "noise should stay quiet: {v:#}");
    let drawn = std::fs::read_to_string(&svg).unwrap();
    assert!(
        drawn.starts_with("<svg") && drawn.contains("<circle"),
        "{}",
        &drawn[..200.min(drawn.len())]
    );

    // The table names the reason too.
    let out = steward(&dir)
        .arg("detect")
        .arg(&csv)
        .args(["--column", "cpu"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("spike to 5"), "{text}");
}

#[test]
fn bad_csv_exits_2_naming_file_line_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("bad.csv");
    std::fs::write(
        &csv,
        "timestamp,value\n2024-05-01 00:00:00,1\n2024-05-01 00:05:00,oops\n",
    )
    .unwrap();
    let out = steward(&dir).arg("detect").arg(&csv).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("bad.csv:3: field `value`"), "{err}");
    assert!(err.contains("oops"), "{err}");

    std::fs::write(&csv, "timestamp,value\nlast tuesday,1\n").unwrap();
    let out = steward(&dir)
        .args(["forecast", "--threshold", "5"])
        .arg(&csv)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("bad.csv:2: field `timestamp`"));

    let out = steward(&dir)
        .arg("detect")
        .arg(dir.path().join("missing.csv"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn forecast_finds_a_known_crossing_with_an_interval() {
    let dir = tempfile::tempdir().unwrap();
    // Disk use: 50% rising 1% an hour (12 points), so 90% is 40 h after the start;
    // three days of history would already be past it, so give 30 h (360 points).
    let csv = write_series(dir.path(), "disk.csv", "used_pct", 360, |i| {
        50.0 + i as f64 / 12.0 + 0.2 * noise(i)
    });
    let v = json_of(
        steward(&dir)
            .args([
                "--json",
                "forecast",
                "--threshold",
                "90",
                "--horizon",
                "2d",
                "--column",
                "used_pct",
            ])
            .arg(&csv),
    );
    let c = &v["crossing"];
    let start_ms = 1_714_521_600_000i64;
    let at_h = (c["at_ms"].as_i64().unwrap() - start_ms) as f64 / 3_600_000.0;
    assert!((at_h - 40.0).abs() < 1.0, "crossing at {at_h} h: {v:#}");
    assert!(c["earliest_ms"].as_i64() <= c["at_ms"].as_i64());
    assert!(c["at_ms"].as_i64() <= c["latest_ms"].as_i64());
    assert_eq!(c["rising"], true);

    // Beyond the horizon: no crossing, and the sentence says so.
    let out = steward(&dir)
        .args([
            "forecast",
            "--threshold",
            "90",
            "--horizon",
            "2h",
            "--column",
            "used_pct",
        ])
        .arg(&csv)
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("not expected to cross 90 within 2h"));
    let svg = dir.path().join("f.svg");
    steward(&dir)
        .args([
            "forecast",
            "--threshold",
            "90",
            "--column",
            "used_pct",
            "--plot",
        ])
        .arg(&svg)
        .arg(&csv)
        .assert()
        .success();
    assert!(std::fs::read_to_string(&svg).unwrap().starts_with("<svg"));
}

/// The shared NAB corpus: `$STEWARD_SHARED_DATA/nab`, else `shared/data/nab` beside an
/// ancestor of this crate.
fn nab_dir() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os("STEWARD_SHARED_DATA") {
        let p = PathBuf::from(d).join("nab");
        if p.join("labels").is_dir() {
            return Some(p);
        }
    }
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .map(|a| a.join("shared").join("data").join("nab"))
        .find(|p| p.join("labels").is_dir())
}

#[test]
fn detect_nab_scores_the_shared_corpus() {
    let Some(nab) = nab_dir() else {
        eprintln!(
            "skipped: no shared/data/nab found above {}",
            env!("CARGO_MANIFEST_DIR")
        );
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("results");
    let v = json_of(
        steward(&dir)
            .args(["--json", "detect", "nab", "--data"])
            .arg(&nab)
            .arg("--out")
            .arg(&out_dir),
    );
    let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        ["files", "reward_low_FN", "reward_low_FP", "standard"]
    );
    assert_eq!(v["files"], 42);
    // Ahead of every published peer up to CAD OSE's level would be the goal; this
    // guards against regressions below the level reached when it was written.
    for (k, floor) in [
        ("standard", 60.0),
        ("reward_low_FP", 45.0),
        ("reward_low_FN", 65.0),
    ] {
        let got = v[k].as_f64().unwrap();
        assert!(got >= floor, "{k} = {got}, below {floor}");
    }
    let one = out_dir.join("steward/realKnownCause/steward_nyc_taxi.csv");
    let text = std::fs::read_to_string(&one).unwrap();
    assert!(text.starts_with("timestamp,value,anomaly_score,label\n2014-07-01 00:00:00,10844,"));
    assert_eq!(text.lines().count(), 10321);
}
