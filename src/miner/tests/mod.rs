//! Tests against the shared fixtures (`../shared/fixtures`) and field cases
//! (`../shared/cases/inputs`), and end-to-end polls against small TCP servers on 127.0.0.1.
//! Every assertion states a value a user of the data would see.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod cases;
mod detection;
mod families;
mod fixtures;
mod poll;
mod poll_families;
mod props;
mod server;

use std::path::PathBuf;

use serde_json::Value;

use super::dialect::{self, Command, Replies};
use super::{detect, repair, reply};
use crate::model::{Family, MinerStats};

const SHARED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/");

fn shared_path(rel: &str) -> PathBuf {
    PathBuf::from(SHARED).join(rel)
}

/// Raw bytes of a file under `shared/`.
pub(crate) fn raw(rel: &str) -> Vec<u8> {
    let path = shared_path(rel);
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// A fixture parsed the way a poll parses a reply (strict, then repair).
fn parsed(rel: &str) -> Value {
    repair::parse_reply(&raw(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// Replies of one poll, from fixture files.
fn replies(files: &[(Command, &str)]) -> Replies {
    let mut r = Replies::default();
    for &(command, rel) in files {
        r.set(command, parsed(rel));
    }
    r
}

/// Normalized stats of `family` from fixture files.
fn read(family: Family, files: &[(Command, &str)]) -> MinerStats {
    dialect::normalize(family, &replies(files))
}

fn antminer(files: &[(Command, &str)]) -> MinerStats {
    read(Family::Antminer, files)
}

fn generic(files: &[(Command, &str)]) -> MinerStats {
    read(Family::Cgminer, files)
}

/// A fixture under `fixtures/`.
fn fx(rel: &str) -> String {
    format!("fixtures/{rel}")
}

/// `actual` equals `expected` up to float rounding of the unit conversion.
#[track_caller]
fn assert_rate(actual: Option<f64>, expected: f64) {
    let a = actual.unwrap_or_else(|| panic!("expected {expected}, got None"));
    let tolerance = expected.abs() * 1e-12 + 1e-9;
    assert!(
        (a - expected).abs() <= tolerance,
        "expected {expected}, got {a}"
    );
}

#[track_caller]
fn assert_rates(actual: &[Option<f64>], expected: &[f64]) {
    assert_eq!(actual.len(), expected.len(), "{actual:?} vs {expected:?}");
    for (a, e) in actual.iter().zip(expected) {
        assert_rate(*a, *e);
    }
}

fn board_rates(s: &MinerStats) -> Vec<Option<f64>> {
    s.boards.iter().map(|b| b.hashrate).collect()
}

fn slots(s: &MinerStats) -> Vec<u32> {
    s.boards.iter().map(|b| b.slot).collect()
}

fn fan_rpms(s: &MinerStats) -> Vec<(u32, f64)> {
    s.fans
        .iter()
        .inspect(|f| assert_eq!(f.unit, crate::model::FanUnit::Rpm))
        .map(|f| (f.slot, f.speed))
        .collect()
}

/// A joined reply (`{"version":[..],"summary":[..],...,"id":1}`) assembled from raw reply bytes,
/// so malformed parts stay exactly as malformed as on the wire.
fn joined_raw(parts: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = b"{".to_vec();
    for (name, body) in parts {
        out.extend_from_slice(format!("\"{name}\":[").as_bytes());
        let end = body
            .iter()
            .rposition(|b| !b.is_ascii_whitespace() && *b != 0)
            .map_or(0, |i| i + 1);
        out.extend_from_slice(&body[..end]);
        out.extend_from_slice(b"],");
    }
    out.extend_from_slice(b"\"id\":1}");
    out
}
