//! The command line's contract: help, version, exit codes, `--json` shapes and the
//! configuration's precedence, checked against the built binary.

#![allow(clippy::unwrap_used)] // a test binary: a failed unwrap is a failed test

use assert_cmd::Command;
use predicates::prelude::*;
use serde_json::Value;

/// The binary, run in an empty directory with no STEWARD_* variables inherited.
fn steward(dir: &tempfile::TempDir) -> Command {
    let mut cmd = Command::cargo_bin("steward").unwrap();
    cmd.current_dir(dir.path()).env_clear();
    if let Some(path) = std::env::var_os("PATH") {
        cmd.env("PATH", path);
    }
    cmd
}

fn config_json(cmd: &mut Command) -> Value {
    let out = cmd.args(["--json", "config", "show"]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn help_lists_every_subcommand_with_a_summary_and_examples() {
    let dir = tempfile::tempdir().unwrap();
    let out = steward(&dir).arg("--help").output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    let commands: Vec<&str> = help
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .collect();
    assert!(
        commands
            .iter()
            .any(|l| l.trim_start().starts_with("config "))
    );
    for line in &commands {
        let summary = line.trim_start().split_once(' ').map(|(_, s)| s.trim());
        assert!(
            summary.is_some_and(|s| !s.is_empty()),
            "no summary: {line:?}"
        );
    }
    assert!(help.contains("Examples:"), "{help}");
}

#[test]
fn version_prints_the_crate_version() {
    let dir = tempfile::tempdir().unwrap();
    steward(&dir)
        .arg("--version")
        .assert()
        .success()
        .stdout(predicate::str::contains(env!("CARGO_PKG_VERSION")));
}

#[test]
fn usage_errors_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    steward(&dir).arg("no-such-command").assert().code(2);
    steward(&dir)
        .args(["config", "show", "--no-such-flag"])
        .assert()
        .code(2);
    steward(&dir)
        .args(["--set", "watch.listen", "config", "show"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("SECTION.KEY=VALUE"));
}

#[test]
fn config_show_json_has_every_key_with_value_and_source() {
    let dir = tempfile::tempdir().unwrap();
    let doc = config_json(&mut steward(&dir));
    assert_eq!(doc["file"], Value::Null);
    let keys = doc["keys"].as_object().unwrap();
    assert!(keys.len() >= 5);
    for (key, entry) in keys {
        assert!(key.contains('.'), "{key}");
        assert_eq!(entry["source"], "default", "{key}");
        assert!(!entry["value"].is_null(), "{key}");
    }
    assert_eq!(keys["watch.listen"]["value"], "127.0.0.1:8080");
}

#[test]
fn config_precedence_is_file_then_env_then_flag() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("steward.toml"),
        "[logs]\nmax_templates = 10\n\n[watch]\nretention_days = 3\nlisten = \"127.0.0.1:1\"\n",
    )
    .unwrap();

    let doc = config_json(
        steward(&dir)
            .env("STEWARD_WATCH_RETENTION_DAYS", "4")
            .env("STEWARD_WATCH_LISTEN", "127.0.0.1:2")
            .args(["--set", "watch.listen=127.0.0.1:3"]),
    );
    let keys = &doc["keys"];
    assert_eq!(keys["logs.max_templates"]["value"], 10);
    assert!(
        keys["logs.max_templates"]["source"]
            .as_str()
            .unwrap()
            .ends_with("steward.toml:2")
    );
    assert_eq!(keys["watch.retention_days"]["value"], 4);
    assert_eq!(
        keys["watch.retention_days"]["source"],
        "env STEWARD_WATCH_RETENTION_DAYS"
    );
    assert_eq!(keys["watch.listen"]["value"], "127.0.0.1:3");
    assert_eq!(keys["watch.listen"]["source"], "flag --set");
}

#[test]
fn explicit_config_file_is_read_and_must_exist() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("other.toml");
    std::fs::write(&path, "[detect]\nthreshold = 0.9\n").unwrap();
    let doc = config_json(steward(&dir).arg("--config").arg(&path));
    assert_eq!(doc["keys"]["detect.threshold"]["value"], 0.9);

    steward(&dir)
        .args(["--config", "missing.toml", "config", "show"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("missing.toml"));
}

#[test]
fn unknown_key_names_the_key_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("steward.toml"),
        "[watch]\nlisten = \"127.0.0.1:1\"\nlistn = \"oops\"\n",
    )
    .unwrap();
    steward(&dir)
        .args(["config", "show"])
        .assert()
        .code(2)
        .stdout(predicate::str::is_empty())
        .stderr(predicate::str::contains("steward.toml:3"))
        .stderr(predicate::str::contains("listn"));
}

#[test]
fn wrong_type_names_the_key() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("steward.toml"),
        "[logs]\nmax_templates = \"lots\"\n",
    )
    .unwrap();
    steward(&dir)
        .args(["config", "show"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("steward.toml:2"))
        .stderr(predicate::str::contains("max_templates").or(predicate::str::contains("integer")));

    steward(&dir)
        .env("STEWARD_DETECT_THRESHOLD", "high")
        .args(["--config", "/dev/null", "config", "show"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("STEWARD_DETECT_THRESHOLD"))
        .stderr(predicate::str::contains("detect.threshold"));
}

#[test]
fn no_colour_when_not_a_terminal_or_no_color_set() {
    let dir = tempfile::tempdir().unwrap();
    for no_color in [None, Some("1")] {
        let mut cmd = steward(&dir);
        if let Some(v) = no_color {
            cmd.env("NO_COLOR", v);
        }
        let out = cmd.args(["config", "show"]).output().unwrap();
        assert!(out.status.success());
        assert!(!out.stdout.contains(&0x1b), "escape codes in piped output");
    }
}
