//! The miner on arbitrary lines: never panics, every line gets a live template, and a
//! snapshot restores to the same state.
//! `cargo +nightly fuzz run miner` from crates/steward-logs.
#![no_main]

use libfuzzer_sys::fuzz_target;
use steward_logs::{MinerConfig, Snapshot, TemplateMiner};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut miner = TemplateMiner::new(MinerConfig {
        max_templates: 8,
        ..MinerConfig::default()
    });
    let mut lines = 0u64;
    for line in text.lines() {
        let m = miner.add(line);
        assert!(miner.template(m.template_id).is_some());
        lines += 1;
    }
    assert_eq!(miner.lines(), lines);
    let bytes = miner.snapshot().to_bytes().expect("a snapshot serialises");
    let restored = TemplateMiner::restore(Snapshot::from_bytes(&bytes).expect("it reads back"))
        .expect("it restores");
    assert_eq!(restored.snapshot(), miner.snapshot());
});
