//! `steward logs parse` and `steward logs bench`, run as the built binary.

use std::io::Write;
use std::path::PathBuf;

use assert_cmd::Command;
use serde_json::Value;

/// The binary, run in an empty directory with no STEWARD_* variables inherited.
fn steward(dir: &tempfile::TempDir) -> Command {
    let mut cmd = Command::cargo_bin("steward").expect("the steward binary is built");
    cmd.current_dir(dir.path()).env_clear();
    if let Some(path) = std::env::var_os("PATH") {
        cmd.env("PATH", path);
    }
    cmd
}

const LOG: &str = "\
2024-05-01 10:00:00 INFO worker: job 17 finished in 35 ms
2024-05-01 10:00:01 INFO worker: job 18 finished in 12 ms
2024-05-01 10:00:02 WARN disk: volume /dev/sda1 is 91% full
2024-05-01 10:00:03 INFO worker: job 19 finished in 7 ms
this line has no header
";

const FORMAT: &str = "<Date> <Time> <Level> <Component>: <Content>";

fn write_log(dir: &tempfile::TempDir, name: &str, text: &str) -> PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, text).expect("write the log");
    path
}

fn json_lines(stdout: &[u8]) -> Vec<Value> {
    String::from_utf8_lossy(stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect()
}

#[test]
fn parse_prints_templates_by_count_with_a_sample() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = write_log(&dir, "app.log", LOG);
    let text = success_stdout(
        steward(&dir)
            .args(["logs", "parse", "--format", FORMAT])
            .arg(&log),
    );
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("id"), "{text}");
    assert!(lines[1].contains("job <*> finished in <*> ms"), "{text}");
    assert!(lines[1].contains(" 3 "), "the most frequent first: {text}");
    assert!(
        text.contains("this line has no header"),
        "an unmatched line is kept: {text}"
    );
    assert!(
        text.contains("5 lines") && text.contains("1 lines did not match"),
        "{text}"
    );
}

#[test]
fn parse_json_reads_gzip_and_stdin() {
    let dir = tempfile::tempdir().expect("tempdir");
    let gz = dir.path().join("app.log.gz");
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(LOG.as_bytes()).expect("gzip");
    std::fs::write(&gz, enc.finish().expect("gzip")).expect("write");
    let out = steward(&dir)
        .args(["--json", "logs", "parse", "--format", FORMAT])
        .arg(&gz)
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows = json_lines(&out.stdout);
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[0]["count"], 3);
    for key in [
        "id",
        "count",
        "template",
        "sample",
        "first_seen",
        "last_seen",
    ] {
        assert!(rows[0].get(key).is_some(), "{key} in {}", rows[0]);
    }
    let out = steward(&dir)
        .args(["--json", "logs", "parse", "-", "--format", FORMAT])
        .write_stdin(LOG)
        .output()
        .expect("run");
    assert!(out.status.success());
    assert_eq!(json_lines(&out.stdout).len(), 3);
}

#[test]
fn parse_csv_and_format_from_config() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = write_log(&dir, "app.log", LOG);
    std::fs::write(
        dir.path().join("steward.toml"),
        format!("[logs]\nformat = \"{FORMAT}\"\n"),
    )
    .expect("config");
    let text = success_stdout(steward(&dir).args(["logs", "parse", "--csv"]).arg(&log));
    let mut rdr = csv::Reader::from_reader(text.as_bytes());
    let rows: Vec<csv::StringRecord> = rdr.records().map(|r| r.expect("csv row")).collect();
    assert_eq!(rows.len(), 3);
    assert_eq!(&rows[0][2], "job <*> finished in <*> ms");
}

#[test]
fn parse_state_is_saved_and_resumed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = write_log(&dir, "app.log", LOG);
    let state = dir.path().join("state.json");
    for _ in 0..2 {
        let out = steward(&dir)
            .args(["--json", "logs", "parse", "--format", FORMAT, "--state"])
            .arg(&state)
            .arg(&log)
            .output()
            .expect("run");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let out = steward(&dir)
        .args(["--json", "logs", "parse", "--format", FORMAT, "--state"])
        .arg(&state)
        .arg(&log)
        .output()
        .expect("run");
    let rows = json_lines(&out.stdout);
    assert_eq!(
        rows[0]["count"], 9,
        "three runs over the same file: {rows:?}"
    );
    std::fs::write(&state, "garbage").expect("write");
    let out = steward(&dir)
        .args(["logs", "parse", "--state"])
        .arg(&state)
        .arg(&log)
        .output()
        .expect("run");
    assert_eq!(
        out.status.code(),
        Some(2),
        "a bad snapshot is an input error"
    );
}

#[test]
fn parse_errors_exit_2_with_a_reason() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = steward(&dir)
        .args(["logs", "parse", "missing.log"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing.log"));
    let log = write_log(&dir, "app.log", LOG);
    let out = steward(&dir)
        .args(["logs", "parse", "--format", "no fields here"])
        .arg(&log)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
}

fn loghub() -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/loghub-2k");
    if dir.join("formats.json").is_file() {
        Some(dir)
    } else {
        // Printed so a skipped run says why; the test harness shows it.
        #[allow(clippy::print_stdout)]
        {
            println!("skipped: no Loghub data at {}", dir.display());
        }
        None
    }
}

#[test]
fn bench_scores_the_shared_loghub_data() {
    let Some(data) = loghub() else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let out = steward(&dir)
        .args(["--json", "logs", "bench", "--data"])
        .arg(&data)
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let datasets = report["datasets"].as_array().expect("datasets");
    assert_eq!(datasets.len(), 10);
    for d in datasets {
        for key in [
            "name",
            "ga",
            "pa",
            "fga",
            "fta",
            "templates",
            "true_templates",
            "lines_per_sec",
        ] {
            assert!(d.get(key).is_some(), "{key} in {d}");
        }
        let ga = d["ga"].as_f64().expect("ga");
        assert!(ga >= 0.93, "{} GA {ga}", d["name"]);
    }
    let avg = &report["average"];
    assert!(avg["ga"].as_f64().expect("ga") >= 0.98, "{avg}");
    assert!(avg["pa"].as_f64().expect("pa") >= 0.90, "{avg}");

    let out = steward(&dir)
        .args(["logs", "bench", "--data"])
        .arg(&data)
        .output()
        .expect("run");
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).expect("utf-8");
    assert!(
        text.contains("average") && text.contains("OpenStack"),
        "{text}"
    );
}

#[test]
fn bench_on_an_empty_directory_is_an_input_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = steward(&dir)
        .args(["logs", "bench", "--data", "."])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
}

/// Runs the command, asserts it succeeded (showing its stderr if not) and returns stdout.
fn success_stdout(cmd: &mut Command) -> String {
    let out = cmd.output().expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}
