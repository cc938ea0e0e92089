//! Acknowledged samples survive `kill -9`: a child process (this test binary, run again
//! with an environment variable) writes batches and prints each acknowledgement; the
//! parent kills it with SIGKILL mid-stream, reopens the database and checks that every
//! acknowledged sample is there.

#![allow(clippy::unwrap_used, clippy::print_stdout)] // a test fails loudly; the child reports on stdout

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use steward_tsdb::{ChunkIter, ChunkLimits, Row, SyncPolicy, Tsdb, TsdbOptions};

const CHILD_ENV: &str = "STEWARD_TSDB_KILL9_DIR";
const SERIES: u32 = 200;

fn options() -> TsdbOptions {
    TsdbOptions {
        limits: ChunkLimits {
            max_samples: 16,
            max_span_ms: i64::MAX,
        },
        sync: SyncPolicy::Always,
        segment_bytes: 64 << 10,
    }
}

/// The child: writes batch after batch until it is killed.
#[test]
fn child_writer() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return; // only runs when the parent starts it
    };
    let (mut db, _) = Tsdb::open(&dir, options()).unwrap();
    let ids: Vec<u32> = (0..SERIES)
        .map(|i| {
            db.intern([("__name__", "m"), ("i", i.to_string().as_str())])
                .unwrap()
        })
        .collect();
    let mut out = std::io::stdout().lock();
    for round in 0i64.. {
        let rows: Vec<Row> = ids
            .iter()
            .map(|&id| Row::new(id, round, (round * 1000 + i64::from(id)) as f64))
            .collect();
        db.append(&rows).unwrap();
        // The store's part, as steward-watch would do it, minus the store.
        let closed = db.take_closed();
        let metas: Vec<_> = closed.iter().map(|c| c.meta).collect();
        if round % 3 == 0 {
            db.mark_persisted(&metas).unwrap();
        }
        writeln!(out, "acked {round}").unwrap();
        out.flush().unwrap();
    }
}

#[test]
fn acknowledged_samples_survive_kill_9() {
    if std::env::var(CHILD_ENV).is_ok() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_writer", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut acked = -1i64;
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(n) = line.strip_prefix("acked ") {
            acked = n.parse().unwrap();
            if acked >= 60 {
                break;
            }
        }
    }
    child.kill().unwrap(); // SIGKILL
    // Acknowledgements printed before the kill landed count too.
    for line in lines {
        if let Some(n) = line.unwrap().strip_prefix("acked ") {
            acked = n.parse().unwrap();
        }
    }
    child.wait().unwrap();
    assert!(acked >= 60, "the child acknowledged only {acked} batches");

    let (mut db, report) = Tsdb::open(dir.path(), options()).unwrap();
    // Persisted chunks were "stored" by a store that died with the child: only the log
    // is checked here, so count what it still holds and what it says was persisted.
    assert_eq!(report.series, SERIES as usize, "{report:?}");
    db.close_all();
    let closed = db.take_closed();
    for id in 0..SERIES {
        let mut ts: Vec<i64> = Vec::new();
        for c in closed.iter().filter(|c| c.meta.series == id) {
            for s in ChunkIter::new(&c.bytes) {
                let (t, v) = s.unwrap();
                assert_eq!(v, (t * 1000 + i64::from(id)) as f64);
                ts.push(t);
            }
        }
        // Every acknowledged round after the last persisted chunk is in the log, in
        // order and without gaps; rounds before it were handed to the store.
        let last = *ts.last().unwrap_or(&-1);
        assert!(
            last >= acked,
            "series {id}: last {last}, acknowledged {acked}"
        );
        assert!(
            ts.windows(2).all(|w| w[1] == w[0] + 1),
            "series {id}: gap in {ts:?}"
        );
    }
}
