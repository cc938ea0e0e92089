//! Templates mined from short hand-made inputs, one `check` per behaviour: each case
//! shows every template with its count, so a failing case shows the whole outcome.

use expect_test::{Expect, expect};
use steward_logs::{MatchKind, MinerConfig, TemplateMiner};

fn mine(lines: &str) -> TemplateMiner {
    let mut miner = TemplateMiner::default();
    for line in lines.lines().map(str::trim).filter(|l| !l.is_empty()) {
        miner.add(line);
    }
    miner
}

fn check(lines: &str, expected: Expect) {
    let miner = mine(lines);
    let mut templates: Vec<_> = miner.templates().collect();
    templates.sort_by_key(|t| t.id);
    let text: String = templates
        .iter()
        .map(|t| format!("{} x{}: {}\n", t.id, t.count, t.text))
        .collect();
    expected.assert_eq(&text);
}

#[test]
fn numbers_ips_and_paths_are_variables() {
    check(
        "
        Received block blk_-1608999687919862906 of size 91178 from /10.250.10.6
        Received block blk_7503483334202473044 of size 233217 from /10.250.19.102
        Deleting block blk_1 file /mnt/hadoop/dfs/data/current/subdir19/blk_1
        ",
        expect![[r#"
            1 x2: Received block <*> of size <*> from <*>
            2 x1: Deleting block blk_1 file <*>
        "#]],
    );
}

#[test]
fn punctuation_around_values_is_kept() {
    check(
        "
        Finished task 1.0 in stage 2.0 (TID 42). 2087 bytes result sent to driver
        Finished task 3.0 in stage 2.0 (TID 44). 2087 bytes result sent to driver
        connection from 10.0.0.1 (host.example.com) at Sun Jul 24 02:40:18 2005
        connection from 10.0.0.2 () at Mon Jul 25 03:00:00 2005
        ",
        expect![[r#"
            1 x2: Finished task <*> in stage <*> (TID <*>). <*> bytes result sent to driver
            2 x2: connection from <*> (<*>) at <*> <*> <*> <*> <*>
        "#]],
    );
}

#[test]
fn a_word_that_always_differs_stays_apart_until_it_varies_enough() {
    // Four lifecycle events are four templates; many user names are one variable.
    check(
        "
        VM Started (Lifecycle Event)
        VM Paused (Lifecycle Event)
        VM Resumed (Lifecycle Event)
        VM Stopped (Lifecycle Event)
        VM Started (Lifecycle Event)
        Invalid login admin from 1.2.3.4
        Invalid login oracle from 1.2.3.5
        Invalid login test from 1.2.3.6
        Invalid login guest from 1.2.3.7
        Invalid login webmaster from 1.2.3.8
        Invalid login ftp from 1.2.3.9
        ",
        expect![[r#"
            1 x2: VM Started (Lifecycle Event)
            2 x1: VM Paused (Lifecycle Event)
            3 x1: VM Resumed (Lifecycle Event)
            4 x1: VM Stopped (Lifecycle Event)
            5 x6: Invalid login <*> from <*>
        "#]],
    );
}

#[test]
fn names_after_user_and_host_are_variables_at_once() {
    check(
        "
        session opened for user root by (uid=0)
        session opened for user news by (uid=9)
        check pass; user unknown
        ",
        expect![[r#"
            1 x2: session opened for user <*> by (uid=<*>)
            2 x1: check pass; user unknown
        "#]],
    );
}

#[test]
fn key_value_pairs_keep_their_keys() {
    check(
        "
        authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=1.2.3.4
        authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=a.b.example.com
        retry policy RetryUpToMaximumCountWithFixedSleep(maxRetries=10, sleepTime=1000 MILLISECONDS)
        ",
        expect![[r#"
            1 x2: authentication failure; logname= uid=<*> euid=<*> tty=ssh ruser= rhost=<*>
            2 x1: retry policy RetryUpToMaximumCountWithFixedSleep(maxRetries=<*>, sleepTime=<*> MILLISECONDS)
        "#]],
    );
}

#[test]
fn weak_identifiers_show_while_constant() {
    check(
        "
        Failed password for root from 1.2.3.4 port 22 ssh2
        Failed password for root from 1.2.3.5 port 23 ssh2
        Found block rdd_2_3 locally
        Found block rdd_2_4 locally
        Found block rdd_3_1 locally
        Found block rdd_3_2 locally
        Found block rdd_5_0 locally
        ",
        expect![[r#"
            1 x2: Failed password for root from <*> port <*> ssh2
            2 x5: Found block <*> locally
        "#]],
    );
}

#[test]
fn empty_and_odd_lines_are_templates_too() {
    check(
        "
        ****
        -
        Ünïcödé 42 ✓
        ",
        expect![[r#"
            1 x1: ****
            2 x1: -
            3 x1: Ünïcödé <*> ✓
        "#]],
    );
    let mut miner = TemplateMiner::default();
    let m = miner.add("");
    assert!(miner.template(m.template_id).is_some());
}

#[test]
fn generalising_keeps_the_id_and_records_the_change() {
    let mut miner = TemplateMiner::default();
    let first = miner.add("worker alpha started in 3 ms");
    assert_eq!(first.kind, MatchKind::New);
    let same = miner.add("worker alpha started in 5 ms");
    assert_eq!(same.kind, MatchKind::Existing);
    assert_eq!(same.params, vec!["5".to_string()]);
    let other = miner.add("worker alpha stopped in 5 ms");
    // `started`/`stopped` is a word difference: a new template, not a generalisation.
    assert_ne!(other.template_id, first.template_id);
    // `tty=ssh` shows as written until another tty comes: then it generalises in place.
    let tty = miner.add("login on tty=ssh uid=0");
    let g = miner.add("login on tty=:0 uid=1");
    assert_eq!(g.template_id, tty.template_id);
    assert_eq!(
        g.kind,
        MatchKind::Generalised {
            previous: "login on tty=ssh uid=<*>".into()
        }
    );
    let text = &miner.template(g.template_id).map(|t| t.text.clone());
    assert_eq!(text.as_deref(), Some("login on tty=<*> uid=<*>"));
    assert!(miner.changes().any(|c| c.id == tty.template_id));
}

#[test]
fn the_memory_bound_evicts_the_least_recently_seen() {
    let mut miner = TemplateMiner::new(MinerConfig {
        max_templates: 10,
        ..MinerConfig::default()
    });
    let keep = miner.add("heartbeat ok").template_id;
    for i in 0..100 {
        // A different first word each time: a template of its own.
        let word: String = [b'a' + (i % 26) as u8, b'a' + (i / 26) as u8]
            .iter()
            .map(|b| char::from(*b))
            .collect();
        miner.add(&format!("{word} happened"));
        miner.add("heartbeat ok");
    }
    assert!(miner.len() <= 10, "{} templates", miner.len());
    assert!(miner.evicted() > 0);
    assert!(
        miner.template(keep).is_some(),
        "a template seen often is kept"
    );
}
