//! Property tests over the whole read path (framing, repair, parse, every dialect's normalize)
//! on arbitrary bytes and on mutated fixtures: deleted keys, truncation, type swaps, junk. The
//! properties: no panic, repair output bounded by its input, and never a non-finite value in
//! `MinerStats`.

use std::sync::OnceLock;

use proptest::prelude::*;
use serde_json::{Map, Value};

use super::fixtures::{floats, normalize_everywhere};
use super::*;
use crate::miner::transport;

/// Replies of every family, raw.
fn corpus() -> &'static [Vec<u8>] {
    static CORPUS: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    CORPUS.get_or_init(|| {
        [
            "fixtures/antminer/S19Pro-2022fw_stats.json",
            "fixtures/antminer/S9-bad-temps_stats.json",
            "fixtures/antminer/S9k_version.json",
            "fixtures/braiins/S9-bOSplus_devs.json",
            "fixtures/braiins/S9-bOS_temps.json",
            "fixtures/luxos/S19kPro-2025.4_stats.json",
            "fixtures/luxos/S19kPro-2025.4_fans.json",
            "fixtures/whatsminer/M31S-new-firmware_summary.json",
            "fixtures/whatsminer/M20S-new-firmware_summary.json",
            "fixtures/whatsminer/apiv2-2023_get_error_code_with_errors.json",
            "fixtures/whatsminer/apiv3-M60S-20251209_get_miner_status_summary.json",
            "fixtures/whatsminer/apiv3-M60S-20251209_get_device_info_with_errors.json",
            "fixtures/avalon/Avalon1246-21072802_stats.json",
            "fixtures/avalon/Avalon10XX_multi_pools-summary-stats_v2.json",
            "fixtures/avalon/AvalonQ-25052801_stats.json",
            "fixtures/hiveon/S9-Hiveon_stats.json",
            "fixtures/cgminer_generic/StrongU-STU-6_pools.json",
            "cases/inputs/C-05_whatsminer_error_code_listdict.bin",
            "cases/inputs/C-06_avalon_nano3_stats.bin",
            "cases/inputs/C-11_cgminer_text_version.bin",
            "cases/inputs/C-14a_wm_status_mining.bin",
        ]
        .iter()
        .map(|f| raw(f))
        .collect()
    })
}

/// Parse, normalize as every family, check the invariants.
fn check(bytes: &[u8]) {
    let trimmed_len = bytes.len();
    if bytes.first() == Some(&b'{') {
        let fixed = repair::repair_json(bytes);
        // Bounded memory: the repair at most escapes bytes (6×) and adds a few brackets.
        assert!(
            fixed.len() <= trimmed_len * 6 + 16,
            "{} → {}",
            trimmed_len,
            fixed.len()
        );
    }
    if let Ok(v) = repair::parse_reply(bytes) {
        for s in normalize_everywhere(&v) {
            for x in floats(&s) {
                assert!(
                    x.is_finite(),
                    "non-finite value from {:?}",
                    String::from_utf8_lossy(bytes)
                );
            }
            // The model serializes (no NaN reaches the cloud payload).
            let json = serde_json::to_string(&s).unwrap();
            assert!(!json.contains("NaN") && !json.contains("inf"));
        }
    }
}

/// Every object path of a value, as key lists.
fn object_paths(v: &Value, path: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    match v {
        Value::Object(map) => {
            for (k, x) in map {
                path.push(k.clone());
                out.push(path.clone());
                object_paths(x, path, out);
                path.pop();
            }
        }
        Value::Array(items) => {
            for (i, x) in items.iter().enumerate() {
                path.push(format!("#{i}"));
                object_paths(x, path, out);
                path.pop();
            }
        }
        _ => {}
    }
}

fn at_mut<'a>(v: &'a mut Value, path: &[String]) -> Option<&'a mut Value> {
    let mut cur = v;
    for step in path {
        cur = match step.strip_prefix('#') {
            Some(i) => cur.get_mut(i.parse::<usize>().ok()?)?,
            None => cur.get_mut(step.as_str())?,
        };
    }
    Some(cur)
}

fn replacement(kind: u8) -> Value {
    match kind % 8 {
        0 => Value::Null,
        1 => Value::from(""),
        2 => Value::from("nan"),
        3 => Value::from(-273.0),
        4 => Value::from(1e300),
        5 => Value::Array(vec![Value::from("x"), Value::Null]),
        6 => Value::Object(Map::new()),
        _ => Value::from("51-85"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 200,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048), cut in 0usize..2048) {
        let cut = cut.min(bytes.len());
        let _ = transport::framed_chunks([&bytes[..cut], &bytes[cut..]]);
        check(&bytes);
    }

    #[test]
    fn json_like_bytes_never_panic(
        tokens in proptest::collection::vec(
            prop_oneof![
                Just("{"), Just("}"), Just("["), Just("]"), Just(","), Just(":"), Just("\""),
                Just("\"STATS\""), Just("\"MM ID0\""), Just("\"GHS 5s\""), Just("nan"), Just("-inf"),
                Just("1e400"), Just("\\'"), Just("\n"), Just("\"chain_rate6\""), Just("\"Msg\""),
                Just("\"error_code\""), Just("\"FANS\""), Just("\"DEVS\""), Just("0"), Just("-273"),
                Just("\"Fan1[3030] FanR[41%] PVT_T0[ 1 2 ]\""), Just("\u{0}"), Just("\"HS RT\"")
            ],
            0..200,
        )
    ) {
        let text: String = tokens.concat();
        check(text.as_bytes());
    }

    #[test]
    fn mutated_fixtures_never_panic(
        pick in 0usize..64,
        op in 0u8..5,
        where_ in any::<prop::sample::Index>(),
        kind in any::<u8>(),
        junk in proptest::collection::vec(any::<u8>(), 0..16),
    ) {
        let corpus = corpus();
        let bytes = &corpus[pick % corpus.len()];
        match op {
            // Truncation anywhere.
            0 => check(&bytes[..where_.index(bytes.len() + 1)]),
            // Junk spliced in anywhere.
            1 => {
                let at = where_.index(bytes.len() + 1);
                let mut b = bytes[..at].to_vec();
                b.extend_from_slice(&junk);
                b.extend_from_slice(&bytes[at..]);
                check(&b);
            }
            // Delete a key / swap a value's type, on the parsed reply.
            _ => {
                let Ok(mut v) = repair::parse_reply(bytes) else { return Ok(()) };
                let mut paths = Vec::new();
                object_paths(&v, &mut Vec::new(), &mut paths);
                if paths.is_empty() {
                    return Ok(());
                }
                let path = &paths[where_.index(paths.len())];
                if op == 2 {
                    let (last, parent) = path.split_last().unwrap();
                    if let Some(Value::Object(m)) = at_mut(&mut v, parent) {
                        m.remove(last);
                    }
                } else if let Some(slot) = at_mut(&mut v, path) {
                    *slot = replacement(kind);
                }
                let text = serde_json::to_vec(&v).unwrap();
                check(&text);
            }
        }
    }
}

#[test]
fn every_key_of_every_family_deleted_in_turn() {
    // C-09's rule, exhaustively on a few replies: a partial record, never a crash.
    for bytes in corpus().iter().take(8) {
        let Ok(v) = repair::parse_reply(bytes) else {
            continue;
        };
        let mut paths = Vec::new();
        object_paths(&v, &mut Vec::new(), &mut paths);
        for path in paths.iter().take(400) {
            let mut m = v.clone();
            let (last, parent) = path.split_last().unwrap();
            if let Some(Value::Object(o)) = at_mut(&mut m, parent) {
                o.remove(last);
            }
            for s in normalize_everywhere(&m) {
                assert!(floats(&s).iter().all(|x| x.is_finite()));
            }
        }
    }
}
