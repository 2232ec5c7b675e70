//! CPU per poll spent on our side of the bytes: parse (with repair when needed), split the
//! joined reply, detect the family, normalize. `cargo bench --bench parse`; reads the real
//! replies from `../shared/fixtures` as the unit tests do. The whole joined poll, kernel TCP
//! work included, has a budget of 0.4 ms per miner (`pickaxe bench` measures that end to end).

use std::hint::black_box;
use std::time::{Duration, Instant};

use pickaxe::miner::dialect::{self, Command, Replies};
use pickaxe::miner::{detect, repair, reply};
use pickaxe::model::Family;

const SHARED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/fixtures/");
const COMMANDS: [Command; 4] = [
    Command::Version,
    Command::Summary,
    Command::Pools,
    Command::Stats,
];

/// `{"version":[...],"summary":[...],...}` as a joined cgminer request is answered.
fn joined(prefix: &str, parts: &[&str]) -> std::io::Result<Vec<u8>> {
    let mut out = b"{".to_vec();
    for name in parts {
        let body = std::fs::read(format!("{SHARED}{prefix}{name}.json"))?;
        let end = body
            .iter()
            .rposition(|b| !b.is_ascii_whitespace() && *b != 0)
            .map_or(0, |i| i + 1);
        out.extend_from_slice(format!("\"{name}\":[").as_bytes());
        out.extend_from_slice(&body[..end]);
        out.extend_from_slice(b"],");
    }
    out.extend_from_slice(b"\"id\":1}");
    Ok(out)
}

fn one_poll(bytes: &[u8]) {
    let Ok(v) = repair::parse_reply(bytes) else {
        return;
    };
    let Ok(parts) = reply::split_multi(v, ["version", "summary", "pools", "stats"]) else {
        return;
    };
    let mut r = Replies::default();
    for (c, p) in COMMANDS.into_iter().zip(parts) {
        if let Some(p) = p.filter(|p| reply::check_status(p).is_ok()) {
            r.set(c, p);
        }
    }
    let family = r
        .get(Command::Version)
        .map_or(Family::Antminer, |v| detect::classify(Some(v), None).0);
    black_box(dialect::normalize(family, &r));
}

fn main() -> std::io::Result<()> {
    let cases = [
        (
            "S19 Pro joined, valid JSON",
            joined(
                "antminer/S19Pro-2022fw_",
                &["version", "summary", "pools", "stats"],
            )?,
        ),
        (
            "S9 joined, `}{` repaired",
            joined("antminer/S9-bad-temps_", &["version", "pools", "stats"])?,
        ),
    ];
    for (name, bytes) in cases {
        // Warm up, then the best of 5 rounds of 2,000 polls.
        for _ in 0..200 {
            one_poll(&bytes);
        }
        let mut best = Duration::MAX;
        for _ in 0..5 {
            let n = 2_000;
            let started = Instant::now();
            for _ in 0..n {
                one_poll(black_box(&bytes));
            }
            best = best.min(started.elapsed() / n);
        }
        println!("{name}: {} bytes, {best:?} per poll", bytes.len());
    }
    Ok(())
}
