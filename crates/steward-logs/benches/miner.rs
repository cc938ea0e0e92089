//! The miner's hot path: adding lines to a warm miner, on synthetic lines made from a
//! few dozen templates with random values (no third-party data in the repository); and
//! header-format parsing of the same lines behind three Loghub-style headers.
//!
//! `cargo bench -p steward-logs --bench miner`

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use steward_logs::TemplateMiner;
use steward_logs::format::HeaderFormat;

const TEMPLATES: &[&str] = &[
    "Received block blk_{n} of size {n} from /{ip}",
    "PacketResponder {d} for block blk_{n} terminating",
    "Failed password for {user} from {ip} port {n} ssh2",
    "Accepted publickey for {user} from {ip} port {n} ssh2: RSA SHA256:{hex}",
    "session opened for user {user} by (uid={d})",
    "Finished task {d}.0 in stage {d}.0 (TID {n}). {n} bytes result sent to driver",
    "Block rdd_{d}_{d} stored as bytes in memory (estimated size {d}.{d} KB, free {n}.{d} MB)",
    "{ip} \"GET /v2/{hex}/servers/detail HTTP/1.1\" status: 200 len: {n} time: 0.{n}",
    "[instance: {uuid}] VM Started (Lifecycle Event)",
    "[instance: {uuid}] VM Paused (Lifecycle Event)",
    "Connection broken for id {n}, my id = {d}, error =",
    "Retrying connect to server: host-{d}.example.com/{ip}:{n}. Already tried {d} time(s)",
    "workerEnv.init() ok /etc/httpd/conf/workers{d}.properties",
    "jk2_init() Found child {n} in scoreboard slot {d}",
    "generating core.{n}",
    "instruction cache parity error corrected",
    "Took {d}.{n} seconds to spawn the instance on the hypervisor.",
    "disk /dev/sd{d} at {n}% usage, {n} GiB free, mount /var/lib/data{d}",
    "request_id={uuid} method=GET path=/api/v1/items/{n} status=200 duration={n}ms",
    "Expiring session 0x{hex}, timeout of {n}ms exceeded",
];

const USERS: &[&str] = &[
    "root", "admin", "oracle", "test", "guest", "nagios", "deploy",
];

struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
}

fn lines(n: usize) -> Vec<String> {
    let mut rng = Lcg(42);
    (0..n)
        .map(|_| {
            let t = TEMPLATES[(rng.next() as usize) % TEMPLATES.len()];
            let mut out = String::with_capacity(t.len() + 32);
            let mut rest = t;
            while let Some(open) = rest.find('{') {
                out.push_str(&rest[..open]);
                let close = open + rest[open..].find('}').unwrap_or(0);
                let value = match &rest[open + 1..close] {
                    "n" => (rng.next() % 100_000).to_string(),
                    "d" => (rng.next() % 10).to_string(),
                    "ip" => format!(
                        "10.{}.{}.{}",
                        rng.next() % 256,
                        rng.next() % 256,
                        rng.next() % 256
                    ),
                    "hex" => format!("{:012x}", rng.next() * rng.next()),
                    "user" => USERS[(rng.next() as usize) % USERS.len()].to_string(),
                    _ => format!(
                        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
                        rng.next() as u32,
                        rng.next() % 65536,
                        rng.next() % 65536,
                        rng.next() % 65536,
                        rng.next() * rng.next()
                    ),
                };
                out.push_str(&value);
                rest = &rest[close + 1..];
            }
            out.push_str(rest);
            out
        })
        .collect()
}

fn add(c: &mut Criterion) {
    let input = lines(20_000);
    let mut group = c.benchmark_group("miner");
    group.throughput(Throughput::Elements(input.len() as u64));
    group.bench_function("add_warm", |b| {
        let mut miner = TemplateMiner::default();
        for line in &input {
            miner.add(line);
        }
        b.iter(|| {
            for line in &input {
                black_box(miner.add(black_box(line)));
            }
        });
    });
    group.bench_function("add_cold", |b| {
        b.iter(|| {
            let mut miner = TemplateMiner::default();
            for line in &input {
                black_box(miner.add(black_box(line)));
            }
            miner.len()
        });
    });
    group.finish();
}

/// Header lines in three Loghub-style formats around the same messages: the compiled
/// matcher taking the content, the regular expression it replaced, and full records.
fn headers(c: &mut Criterion) {
    let messages = lines(20_000);
    let formats = [
        (
            "<Date> <Time> <Pid> <Level> <Component>: <Content>",
            "081109 203615 148 INFO dfs.DataNode$PacketResponder: ",
        ),
        (
            r"<Date> <Time> - <Level>  \[<Node>:<Component>@<Id>\] - <Content>",
            "2015-07-29 17:41:44,747 - INFO  [QuorumPeer[myid=1]/0:0:0:0:0:0:0:0:2181:FastLeaderElection@774] - ",
        ),
        (
            r"<Month> <Date> <Time> <Level> <Component>(\[<PID>\])?: <Content>",
            "Jun 14 15:16:01 combo sshd(pam_unix)[19939]: ",
        ),
    ];
    let mut group = c.benchmark_group("header");
    for (i, (spec, prefix)) in formats.iter().enumerate() {
        let format = HeaderFormat::new(spec).expect("the bench's formats compile");
        let input: Vec<String> = messages.iter().map(|m| format!("{prefix}{m}")).collect();
        group.throughput(Throughput::Elements(input.len() as u64));
        group.bench_function(format!("content_compiled/{i}"), |b| {
            b.iter(|| {
                for line in &input {
                    black_box(format.content(black_box(line)));
                }
            });
        });
        group.bench_function(format!("content_regex/{i}"), |b| {
            b.iter(|| {
                for line in &input {
                    black_box(format.content_by_regex(black_box(line)));
                }
            });
        });
        group.bench_function(format!("record/{i}"), |b| {
            b.iter(|| {
                for line in &input {
                    black_box(format.parse(black_box(line)));
                }
            });
        });
    }
    group.finish();
}

criterion_group!(benches, add, headers);
criterion_main!(benches);
