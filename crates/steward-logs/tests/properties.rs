//! Properties that hold for any input: no line panics or is lost, snapshots restore
//! the same miner, format parsers never panic and never drop a line.

use proptest::prelude::*;
use steward_logs::format::{Format, LineParser};
use steward_logs::{Snapshot, TemplateMiner};

/// Lines that look like logs often enough to build templates, with odd bytes mixed in.
fn log_line() -> impl Strategy<Value = String> {
    let token = prop_oneof![
        Just("error".to_string()),
        Just("user".to_string()),
        Just("from".to_string()),
        Just("(uid=0)".to_string()),
        Just("****".to_string()),
        Just("tty=ssh".to_string()),
        "[a-z]{1,8}",
        "[0-9]{1,6}",
        "[0-9a-f]{8,16}",
        "/[a-z]{1,5}/[a-z0-9._-]{1,8}",
        "[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}(:[0-9]{2,5})?",
        "[a-z_]{1,6}=[a-z0-9:.]{0,6}",
        "\\PC{1,6}",
    ];
    proptest::collection::vec(token, 0..14).prop_map(|t| t.join(" "))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn every_line_gets_a_live_template_and_none_is_lost(
        lines in proptest::collection::vec(log_line(), 1..200),
        raw in proptest::collection::vec(any::<String>(), 0..20),
    ) {
        let mut miner = TemplateMiner::default();
        let mut ids = Vec::new();
        for line in lines.iter().chain(&raw) {
            let m = miner.add(line);
            prop_assert!(miner.template(m.template_id).is_some());
            ids.push(m.template_id);
        }
        // Every id a line was given still resolves (merged ids to their survivor).
        for id in ids {
            prop_assert!(miner.template(id).is_some());
        }
        let total: u64 = miner.templates().map(|t| t.count).sum();
        prop_assert_eq!(total, (lines.len() + raw.len()) as u64);
    }

    #[test]
    fn a_restored_snapshot_mines_like_the_original(
        first in proptest::collection::vec(log_line(), 0..100),
        second in proptest::collection::vec(log_line(), 0..100),
    ) {
        let mut miner = TemplateMiner::default();
        for line in &first {
            miner.add(line);
        }
        let bytes = miner.snapshot().to_bytes().unwrap();
        let mut restored = TemplateMiner::restore(Snapshot::from_bytes(&bytes).unwrap()).unwrap();
        prop_assert_eq!(restored.snapshot(), miner.snapshot());
        for line in &second {
            let a = miner.add(line);
            let b = restored.add(line);
            prop_assert_eq!(a, b);
        }
        prop_assert_eq!(restored.snapshot(), miner.snapshot());
    }

    #[test]
    fn parsers_never_panic_or_drop_a_line(line in any::<String>(), spec in "\\PC{0,40}") {
        let mut formats = vec![Format::Auto, Format::Raw, Format::Json, Format::Logfmt, Format::Syslog, Format::Access];
        if let Ok(f) = spec.parse::<Format>() {
            formats.push(f);
        }
        for format in formats {
            let mut parser = LineParser::new(format);
            let record = parser.parse(&line);
            let stats = parser.stats();
            prop_assert_eq!(stats.lines, 1);
            if stats.unmatched == 1 {
                prop_assert_eq!(&record.body, &line);
            }
        }
    }
}

#[test]
fn snapshots_of_another_version_are_refused() {
    let mut miner = TemplateMiner::default();
    miner.add("hello 1");
    let mut snapshot = miner.snapshot();
    snapshot.version = 99;
    let bytes = snapshot.to_bytes().unwrap();
    assert!(Snapshot::from_bytes(&bytes).is_err());
    assert!(TemplateMiner::restore(snapshot).is_err());
    assert!(Snapshot::from_bytes(b"not json").is_err());
}
