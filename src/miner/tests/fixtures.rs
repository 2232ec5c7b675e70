//! Every RPC reply fixture of the stock Antminer and generic cgminer directories parses, the
//! malformed ones to exactly what their correct form would give, and a representative set
//! normalizes to the values a user expects.

use serde_json::Value;

use super::*;
use crate::miner::dialect::Command::{Devs, Pools, Stats, Summary, Version};
use crate::model::{Pool, PowerMode};

/// What a fixture is, per its request column in `SOURCES.tsv`.
fn is_tcp_reply(path: &str, request: &str) -> bool {
    let web = request.starts_with('/')
        || request.starts_with("GET ")
        || request.starts_with("POST ")
        || request.starts_with("HTTP")
        || request.starts_with("n/a")
        || request.starts_with("(this file IS the request)");
    // A name that says web must agree with the request column.
    let named_web = [
        "_web_",
        "get_system_info",
        "system_info",
        "get_miner_conf",
        "set_miner_conf",
        "overview",
        "network_info",
        "psu_status",
        "_gql_",
        "-rest_",
        "_cfg_",
        "get_minerinfo",
        "updatedashboard",
        "NOT-WIRE",
    ]
    .iter()
    .any(|w| path.contains(w));
    assert!(
        !named_web || web,
        "{path}: request {request:?} disagrees with its name"
    );
    !web
}

/// Replies a miner sends on its TCP API (not web/CGI bodies, client requests or parsed forms),
/// per `SOURCES.tsv`, for every vendor directory.
fn rpc_fixtures() -> Vec<String> {
    let index = String::from_utf8(raw("fixtures/SOURCES.tsv")).unwrap();
    let mut listed = Vec::new();
    let mut rpc = Vec::new();
    for line in index.lines().skip(1) {
        let cols: Vec<&str> = line.split('\t').collect();
        let (path, request) = (cols[0], cols.get(5).copied().unwrap_or(""));
        listed.push(path.to_string());
        if is_tcp_reply(path, request) {
            rpc.push(format!("fixtures/{path}"));
        }
    }
    // The index covers every file on disk, so nothing escapes the test.
    for dir in std::fs::read_dir(shared_path("fixtures")).unwrap() {
        let dir = dir.unwrap().path();
        if !dir.is_dir() {
            continue;
        }
        let vendor = dir.file_name().unwrap().to_string_lossy().to_string();
        for entry in std::fs::read_dir(&dir).unwrap() {
            let name = format!("{vendor}/{}", entry.unwrap().file_name().to_string_lossy());
            assert!(listed.contains(&name), "{name} is not in SOURCES.tsv");
        }
    }
    rpc
}

/// The miner's own refusals among the fixtures, with what they say.
const ERROR_REPLIES: &[(&str, &str, &str)] = &[
    (
        "VolcMiner-D1_invalid-command_ERROR.json",
        "E",
        "Invalid command",
    ),
    (
        "M30S-new-firmware_multi_pools-summary-edevs.json",
        "E",
        "Missing JSON 'command'",
    ),
    ("Avalon1047-old_ascset_0_setpool.json", "E", "failed"),
    (
        "M31S-20201220_write-writeapi-disabled_enc-response_decrypted.json",
        "E",
        "can't access write cmd",
    ),
];

#[test]
fn every_rpc_reply_of_every_vendor_parses_and_has_a_readable_status() {
    let files = rpc_fixtures();
    assert_eq!(files.len(), 221, "TCP API replies in fixtures/");
    let mut by_kind = std::collections::BTreeMap::<&str, usize>::new();
    for rel in &files {
        let name = rel.rsplit('/').next().unwrap();
        let bytes = raw(rel);
        if bytes.iter().all(u8::is_ascii_whitespace) {
            // Avalon `ascset|0,reboot,0`: the miner closes without a reply.
            assert!(matches!(
                repair::parse_reply(&bytes),
                Err(repair::ParseError::Empty)
            ));
            *by_kind.entry("empty").or_default() += 1;
            continue;
        }
        let v = parsed(rel);
        let kind = if v.get("enc").is_some() {
            // Encrypted Whatsminer write reply: opaque until decrypted.
            assert!(v["enc"].is_string(), "{rel}");
            "encrypted"
        } else if v.get("code").is_some() {
            reply::check_v3(&v).unwrap_or_else(|e| panic!("{rel}: {e}"));
            "whatsminer-v3"
        } else if v.get("STATUS").is_none() && rel.contains("_multi_") {
            // A joined reply: every part carries its own status.
            let names: Vec<String> = v
                .as_object()
                .unwrap()
                .keys()
                .filter(|k| *k != "id")
                .cloned()
                .collect();
            assert!(names.len() >= 2, "{rel}");
            let parts = reply::split_multi(v, names.iter().map(String::as_str)).unwrap();
            for (name, part) in names.iter().zip(parts) {
                reply::check_status(&part.unwrap()).unwrap_or_else(|e| panic!("{rel} {name}: {e}"));
            }
            "joined"
        } else if v.get("STATUS").is_none() {
            // ccminer's text form has no status section.
            assert!(rel.contains("ccminer"), "{rel}: no STATUS");
            "ccminer"
        } else if let Some((_, status, msg)) = ERROR_REPLIES.iter().find(|(n, _, _)| *n == name) {
            let e = reply::check_status(&v).unwrap_err();
            assert_eq!(
                (e.status.as_str(), e.msg.as_str()),
                (*status, *msg),
                "{rel}"
            );
            "error"
        } else {
            reply::check_status(&v).unwrap_or_else(|e| panic!("{rel}: {e}"));
            "ok"
        };
        *by_kind.entry(kind).or_default() += 1;
    }
    assert_eq!(
        by_kind.into_iter().collect::<Vec<_>>(),
        [
            ("ccminer", 3),
            ("empty", 1),
            ("encrypted", 2),
            ("error", 4),
            ("joined", 6),
            ("ok", 200),
            ("whatsminer-v3", 5),
        ]
    );
}

/// The correct form of a malformed fixture, made by fixing its known defects by hand.
fn corrected(rel: &str, bytes: &[u8]) -> Vec<u8> {
    let mut text = String::from_utf8(bytes.to_vec()).unwrap();
    let original = text.clone();
    if text.matches("}{").count() == 1 {
        text = text.replace("}{", "},{");
    }
    if let Some(stripped) = text.trim_end().strip_suffix("}\"}") {
        text = format!("{stripped}}}"); // S9k: `...,"id":1}"}`
    } else if let Some(stripped) = text.trim_end().strip_suffix("}\"") {
        text = format!("{stripped}}}"); // Avalon: `...,"id":1}"`
    }
    if text.contains("\\'") {
        text = text.replace("\\'", "'"); // Whatsminer: `\'` is no JSON escape
    }
    if text.contains(":nan,") {
        text = text.replace(":nan,", ":null,"); // Avalon: bare nan
    }
    if text.trim_end().contains('\n') && serde_json::from_str::<Value>(&text).is_err() {
        text = text.trim_end().replace('\n', "\\n"); // StrongU: raw newline inside a string
    }
    assert_ne!(text, original, "{rel}: no known defect to correct");
    text.into_bytes()
}

#[test]
fn malformed_replies_give_what_the_correct_reply_gives() {
    let mut malformed = Vec::new();
    for rel in rpc_fixtures() {
        let bytes = raw(&rel);
        let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
        if serde_json::from_slice::<Value>(&bytes).is_ok() || first != Some(&b'{') {
            continue;
        }
        let good: Value = serde_json::from_slice(&corrected(&rel, &bytes))
            .unwrap_or_else(|e| panic!("{rel}: the hand-corrected form is not JSON: {e}"));
        assert_eq!(parsed(&rel), good, "{rel}");
        malformed.push(rel.trim_start_matches("fixtures/").to_string());
    }
    malformed.sort();
    assert_eq!(
        malformed,
        [
            "antminer/D3_stats.json",
            "antminer/L3_stats.json",
            "antminer/L3_stats_v2.json",
            "antminer/S9-bad-temps_stats.json",
            "antminer/S9k_version.json",
            "antminer/Z11-chipless_stats.json",
            "antminer/Z11_stats.json",
            "antminer_altfw/S9-mskminer_stats.json",
            "avalon/Avalon10XX_multi_pools-summary-stats_v2.json",
            "cgminer_generic/Blackminer-F1-Ultra_stats.json",
            "cgminer_generic/StrongU-STU-6_pools.json",
            "cgminer_generic/VolcMiner-D1_stats_MALFORMED-concat.json",
            "hiveon/S9-Hiveon_stats.json",
            "vnish/S9-NiceHash_stats.json",
            "whatsminer/M20S-new-firmware_summary.json",
        ]
    );
}

/// All families' normalisation of one parsed file, for robustness checks.
pub(super) fn normalize_everywhere(v: &Value) -> Vec<MinerStats> {
    let mut all = Replies::default();
    for c in Command::ALL {
        all.set(c, v.clone());
    }
    [
        Family::Antminer,
        Family::Braiins,
        Family::LuxOs,
        Family::Whatsminer,
        Family::WhatsminerV3,
        Family::Avalon,
        Family::Hiveon,
        Family::Vnish,
        Family::Cgminer,
    ]
    .into_iter()
    .map(|f| dialect::normalize(f, &all))
    .collect()
}

/// Every float of a normalized record, for finiteness checks.
pub(super) fn floats(s: &MinerStats) -> Vec<f64> {
    let mut out: Vec<f64> = [
        s.hashrate,
        s.hashrate_avg,
        s.hashrate_ideal,
        s.power,
        s.power_limit,
        s.fan_duty,
        s.inlet_temp,
        s.outlet_temp,
    ]
    .into_iter()
    .flatten()
    .collect();
    for b in &s.boards {
        out.extend(
            [b.hashrate, b.hashrate_ideal, b.temp_max, b.temp_avg]
                .into_iter()
                .flatten(),
        );
        out.extend(&b.board_temps);
        out.extend(&b.chip_temps);
    }
    out.extend(s.fans.iter().map(|f| f.speed));
    out
}

#[test]
fn every_fixture_and_case_input_is_handled_by_every_dialect_without_panic() {
    // All vendors, web bodies included: the parser and all dialects must survive anything.
    let mut files = Vec::new();
    for dir in ["fixtures", "cases/inputs"] {
        let mut stack = vec![shared_path(dir)];
        while let Some(d) = stack.pop() {
            for entry in std::fs::read_dir(d).unwrap() {
                let p = entry.unwrap().path();
                if p.is_dir() {
                    stack.push(p);
                } else {
                    files.push(p);
                }
            }
        }
    }
    assert!(files.len() > 300);
    let mut parsed_ok = 0;
    for path in files {
        let bytes = std::fs::read(&path).unwrap();
        let Ok(v) = repair::parse_reply(&bytes) else {
            continue;
        };
        parsed_ok += 1;
        for s in normalize_everywhere(&v) {
            for x in floats(&s) {
                assert!(x.is_finite(), "{}", path.display());
            }
        }
    }
    assert!(parsed_ok > 320, "only {parsed_ok} files parsed");
}

#[test]
fn s9_with_missing_comma_and_broken_sensors() {
    let s = antminer(&[
        (Version, "fixtures/antminer/S9-bad-temps_version.json"),
        (Pools, "fixtures/antminer/S9-bad-temps_pools.json"),
        (Stats, "fixtures/antminer/S9-bad-temps_stats.json"),
    ]);
    assert_eq!(s.identity.make.as_deref(), Some("Antminer"));
    assert_eq!(s.identity.model.as_deref(), Some("S9"));
    assert_eq!(
        s.identity.firmware.as_deref(),
        Some("Wed Jul 31 16:18:27 CST 2019")
    );
    // No summary: realtime and average come from STATS[1], GH/s → H/s.
    assert_rate(s.hashrate, 13883.81e9);
    assert_rate(s.hashrate_avg, 13890.36e9);
    assert_rate(s.hashrate_ideal, 13862.52e9);
    // Chains 6..8 are slots 0..2.
    assert_eq!(slots(&s), [0, 1, 2]);
    assert_rates(&board_rates(&s), &[4618.85e9, 4624.55e9, 4640.41e9]);
    assert!(s
        .boards
        .iter()
        .all(|b| b.chips == Some(63) && !b.has_chip_errors));
    // temp7 = 0 and temp2_7 = -83 on the hashing middle chain are no readings.
    let board: Vec<&[f64]> = s.boards.iter().map(|b| b.board_temps.as_slice()).collect();
    let chip: Vec<&[f64]> = s.boards.iter().map(|b| b.chip_temps.as_slice()).collect();
    assert_eq!(board, [&[75.0][..], &[], &[73.0]]);
    assert_eq!(chip, [&[62.0][..], &[], &[62.0]]);
    assert_eq!(fan_rpms(&s), [(4, 3720.0), (5, 2400.0)]);
    assert_eq!(s.uptime, Some(293628));
    assert_eq!(s.power, None);
    assert_eq!(s.is_hashing, Some(true));
    assert_eq!(
        s.pools,
        [
            Pool {
                url: "stratum+tcp://ss.antpool.com:3333".into(),
                user: "xxx".into(),
                priority: 0,
                alive: true,
                enabled: true,
                active: Some(true),
                accepted: 22673,
                rejected: 8,
                stale: 0,
            },
            Pool {
                url: "stratum+tcp://ss.antpool.com:443".into(),
                user: "xxx".into(),
                priority: 1,
                alive: true,
                enabled: true,
                active: Some(false),
                accepted: 0,
                rejected: 0,
                stale: 0,
            },
        ]
    );
}

#[test]
fn s17_pro() {
    let s = antminer(&[
        (Version, "fixtures/antminer/S17_version.json"),
        (Pools, "fixtures/antminer/S17_pools.json"),
        (Stats, "fixtures/antminer/S17_stats.json"),
    ]);
    assert_eq!(s.identity.model.as_deref(), Some("S17"));
    assert_eq!(
        s.compile_time.as_deref(),
        Some("Fri Aug 25 17:28:57 CST 2017")
    );
    assert_rate(s.hashrate, 54997.01e9); // "GHS 5s" is a string here
    assert_rate(s.hashrate_avg, 54512.07e9);
    assert_rate(s.hashrate_ideal, 53619.0e9);
    assert_eq!(slots(&s), [0, 1, 2]);
    assert_rates(&board_rates(&s), &[17968.26e9, 18418.00e9, 18610.75e9]);
    assert!(s.boards.iter().all(|b| b.chips == Some(48)));
    assert_eq!(s.boards[0].board_temps, [22.0, 53.0, 21.0, 50.0]);
    assert_eq!(s.boards[0].chip_temps, [48.0, 80.0, 49.0, 70.0]);
    assert_eq!(s.boards[2].board_temps, [15.0, 45.0, 12.0, 37.0]);
    assert_eq!(s.chip_temps().fold(f64::MIN, f64::max), 80.0);
    assert_eq!(
        fan_rpms(&s),
        [(0, 2400.0), (1, 3000.0), (2, 3120.0), (3, 2400.0)]
    );
    assert_eq!(s.uptime, Some(253447));
    assert_eq!(s.pools.len(), 3);
    assert_eq!(
        (s.pools[0].accepted, s.pools[0].rejected, s.pools[0].stale),
        (86241, 411, 116)
    );
    assert_eq!(s.pools[2].url, "stratum+tcp://stratum.slushpool.com:3333");
}

#[test]
fn s19_pro_2022_firmware_all_four_commands() {
    let s = antminer(&[
        (Version, "fixtures/antminer/S19Pro-2022fw_version.json"),
        (Summary, "fixtures/antminer/S19Pro-2022fw_summary.json"),
        (Pools, "fixtures/antminer/S19Pro-2022fw_pools.json"),
        (Stats, "fixtures/antminer/S19Pro-2022fw_stats.json"),
    ]);
    assert_eq!(s.identity.model.as_deref(), Some("S19 Pro"));
    assert_eq!(
        s.identity.firmware.as_deref(),
        Some("Tue Dec  6 16:12:30 CST 2022")
    );
    assert_rate(s.hashrate, 110566.89e9);
    assert_rate(s.hashrate_avg, 111834.85e9); // summary wins over STATS[1]'s 111834.63
    assert_rate(s.hashrate_ideal, 110000.0e9);
    assert_rates(&board_rates(&s), &[37603.30e9, 35536.22e9, 37427.38e9]);
    assert!(s.boards.iter().all(|b| b.chips == Some(114)));
    assert_eq!(s.boards[0].board_temps, [73.0, 45.0, 64.0, 65.0]);
    assert_eq!(s.boards[1].chip_temps, [52.0, 55.0, 70.0, 71.0]);
    assert_eq!(
        fan_rpms(&s),
        [(0, 6000.0), (1, 5880.0), (2, 5040.0), (3, 5040.0)]
    );
    assert_eq!(s.uptime, Some(50474));
    assert_eq!(s.pools.len(), 3);
    assert_eq!(s.pools[0].user, "satokierepair.H04YK");
    assert_eq!(
        (s.pools[0].accepted, s.pools[0].rejected, s.pools[0].stale),
        (4057, 11, 1)
    );
    assert_eq!(s.is_hashing, Some(true));
}

#[test]
fn s19_overheating_all_chips_failed() {
    let s = antminer(&[(Stats, "fixtures/antminer/S19-overheating_stats.json")]);
    // Identity from STATS[0] when no version reply was read.
    assert_eq!(s.identity.model.as_deref(), Some("S19 Pro"));
    assert_rate(s.hashrate, 0.0);
    assert_rate(s.hashrate_avg, 737.37e9);
    assert_eq!(s.is_hashing, Some(false));
    assert_eq!(s.boards.len(), 3);
    assert!(s
        .boards
        .iter()
        .all(|b| b.has_chip_errors && b.hashrate == Some(0.0)));
    assert!(s.has_errors());
    assert_eq!(s.board_temps().fold(f64::MIN, f64::max), 92.0);
}

#[test]
fn sleeping_antminers() {
    let s = antminer(&[(Stats, "fixtures/antminer/S17plus-sleeping_stats.json")]);
    assert_eq!(s.power_mode, Some(PowerMode::Sleeping));
    assert_eq!(s.is_hashing, Some(false));
    assert!(s.boards.is_empty() && s.fans.is_empty());
    assert_eq!(s.hashrate_ideal, None); // 0.00 ideal is no information
                                        // S19 asleep: chain 1 is an empty slot, chains 2 and 3 keep their slots 1 and 2.
    let s = antminer(&[(Stats, "fixtures/antminer/S19-sleeping_stats.json")]);
    assert_eq!(slots(&s), [1, 2]);
    assert_eq!(s.boards[0].board_temps, [39.0, 37.0, 40.0, 39.0]);
    assert_eq!(s.is_hashing, Some(false));
    // Sub-zero board readings of a cold S19 are real ("2--1-20-22").
    let s = antminer(&[(Stats, "fixtures/antminer/S19-really-cold_stats.json")]);
    assert_eq!(s.boards[0].board_temps, [2.0, -1.0, 20.0, 22.0]);
    assert_eq!(s.boards[2].board_temps, [1.0, -2.0, 21.0, 19.0]);
}

#[test]
fn t15() {
    let s = antminer(&[
        (Version, "fixtures/antminer/T15_version.json"),
        (Pools, "fixtures/antminer/T15_pools.json"),
        (Stats, "fixtures/antminer/T15_stats.json"),
    ]);
    assert_eq!(s.identity.model.as_deref(), Some("T15"));
    assert_rate(s.hashrate, 21615.78e9);
    assert_rate(s.hashrate_avg, 22411.07e9);
    assert_rates(&board_rates(&s), &[8048.19e9, 6574.89e9, 6992.69e9]);
    assert_eq!(s.boards[0].chip_temps, [29.0, 54.0, 30.0, 55.0]);
    assert_eq!(s.boards[1].board_temps, [14.0, 35.0, 15.0, 35.0]);
    assert_eq!(fan_rpms(&s), [(0, 2880.0), (1, 2880.0)]);
    assert_eq!(s.pools.len(), 1);
    assert_eq!(s.pools[0].url, "stratum+tcp://x.pool.bitcoin.com:3333");
    assert_eq!(s.pools[0].accepted, 777);
}

#[test]
fn s9k_with_trailing_junk_after_the_version() {
    let s = antminer(&[
        (Version, "fixtures/antminer/S9k_version.json"),
        (Pools, "fixtures/antminer/S9k_pools.json"),
        (Stats, "fixtures/antminer/S9k_stats.json"),
    ]);
    assert_eq!(s.identity.model.as_deref(), Some("S9k"));
    assert_eq!(
        s.identity.firmware.as_deref(),
        Some("Sun Sep 29 15:25:10 CST 2019")
    );
    assert_rate(s.hashrate, 14359.19e9);
    assert_rates(&board_rates(&s), &[4661.79e9, 4815.72e9, 4881.69e9]);
    assert_eq!(s.boards[0].board_temps, [25.0, 61.0]);
    assert_eq!(s.boards[0].chip_temps, [51.0, 85.0]);
    assert_eq!(fan_rpms(&s), [(0, 2280.0), (1, 3720.0)]);
    // Two empty slots left out; the two dev-fee pools are real pools.
    let urls: Vec<&str> = s.pools.iter().map(|p| p.url.as_str()).collect();
    assert_eq!(
        urls,
        [
            "stratum+tcp://dash-eu.coinmine.pl:6099",
            "stratum+tcp://dash.suprnova.cc:9991",
            "stratum+tcp://dash-eu.coinmine.pl:6099"
        ]
    );
    assert_eq!(s.pools[1].priority, 9998);
}

#[test]
fn non_sha256_antminers_report_in_their_own_units() {
    // L3+: no rate_unit; "GHS" fields are MH/s (scrypt).
    let s = antminer(&[
        (Version, "fixtures/antminer/L3_version.json"),
        (Pools, "fixtures/antminer/L3_pools.json"),
        (Stats, "fixtures/antminer/L3_stats.json"),
    ]);
    assert_eq!(s.identity.model.as_deref(), Some("L3")); // this capture's version says "L3"
    assert_rate(s.hashrate, 504.56e6);
    assert_rate(s.hashrate_avg, 500.28e6);
    assert_rates(&board_rates(&s), &[126.12e6, 125.79e6, 126.06e6, 126.59e6]);
    assert_eq!(slots(&s), [0, 1, 2, 3]);
    let chip: Vec<f64> = s.chip_temps().collect();
    assert_eq!(chip, [54.0, 56.0, 56.0, 53.0]);
    assert_eq!(fan_rpms(&s), [(0, 3840.0), (1, 3810.0)]);
    assert_eq!(s.pools[0].user, "obmllc.l3_1");

    // D3 (X11, custom Blissz build): MH/s.
    let s = antminer(&[(Stats, "fixtures/antminer/D3_stats.json")]);
    assert_rate(s.hashrate, 16346.64e6);
    assert_rates(&board_rates(&s), &[5287.83e6, 5631.41e6, 5427.41e6]);

    // E3 (ethash): MH/s, chains 1..3 and 8..13 keep their numbering.
    let s = antminer(&[(Stats, "fixtures/antminer/E3_stats.json")]);
    assert_rate(s.hashrate, 197.30e6);
    assert_eq!(slots(&s), [0, 1, 2, 7, 8, 9, 10, 11, 12]);
    assert_eq!(fan_rpms(&s), [(4, 3600.0), (5, 3720.0)]);

    // Z11 (equihash): kSol/s.
    let s = antminer(&[
        (Version, "fixtures/antminer/Z11_version.json"),
        (Stats, "fixtures/antminer/Z11_stats.json"),
    ]);
    assert_rate(s.hashrate, 141.54e3);
    assert_rates(&board_rates(&s), &[53.24e3, 42.26e3, 46.03e3]);
    assert!(s.boards.iter().all(|b| b.chips == Some(3)));

    // A Z11 build that prints its totals in Sol/s but its chains in kSol/s.
    let s = antminer(&[(Stats, "fixtures/antminer/Z11-chipless_stats.json")]);
    assert_rate(s.hashrate, 145474.39);
    assert_rate(s.hashrate_avg, 143682.17);
    assert_rates(&board_rates(&s), &[42.59e3, 47.84e3, 55.04e3]);

    // rate_unit wins over the model default: an L3 stats block declaring TH/s.
    let mut stats = parsed("fixtures/antminer/L3_stats.json");
    stats["STATS"][1]["rate_unit"] = "TH".into();
    let mut r = Replies::default();
    r.set(Stats, stats);
    let s = dialect::normalize(Family::Antminer, &r);
    assert_rate(s.hashrate, 504.56e12);
}

#[test]
fn generic_cgminer_devices() {
    let s = generic(&[
        (
            Summary,
            "fixtures/cgminer_generic/StrongU-STU-6_summary.json",
        ),
        (Pools, "fixtures/cgminer_generic/StrongU-STU-6_pools.json"),
        (Devs, "fixtures/cgminer_generic/StrongU-STU-6_devs.json"),
    ]);
    assert_rate(s.hashrate, 397759.08e6);
    assert_rate(s.hashrate_avg, 387186.77e6);
    assert_eq!(s.uptime, Some(2416));
    assert_eq!(slots(&s), [0, 1]);
    assert_rates(&board_rates(&s), &[191920.49e6, 208240.11e6]);
    assert_eq!(s.boards[0].board_temps, [54.56]);
    assert_eq!(s.boards[1].board_temps, [55.62]);
    assert!(s.boards.iter().all(|b| b.chips == Some(70)));
    assert_eq!(fan_rpms(&s), [(0, 7800.0), (1, 7800.0)]);
    assert_eq!(s.pools.len(), 3);
    assert_eq!(
        (s.pools[0].accepted, s.pools[0].rejected, s.pools[0].stale),
        (162, 4, 1)
    );

    // ccminer-based Blackminer: GHS keys as strings, padded share counts.
    let s = generic(&[(
        Summary,
        "fixtures/cgminer_generic/Blackminer-F1-Ultra_summary.json",
    )]);
    assert_rate(s.hashrate, 4.2088e9);
    assert_rate(s.hashrate_avg, 4.5009e9);

    let s = generic(&[
        (
            Version,
            "fixtures/cgminer_generic/HammerD10-2023-05-28_rpc_version.json",
        ),
        (
            Summary,
            "fixtures/cgminer_generic/HammerD10-2023-05-28_rpc_summary.json",
        ),
    ]);
    assert_eq!(s.identity.make.as_deref(), Some("Hammer"));
    assert_eq!(s.identity.model.as_deref(), Some("D10"));
    assert_eq!(s.identity.firmware.as_deref(), Some("ccminer 2.3.3"));
    assert_rate(s.hashrate, 4885.0813e6);

    let s = generic(&[(
        Summary,
        "fixtures/cgminer_generic/Innosilicon-A9-old_summary.json",
    )]);
    assert_rate(s.hashrate, 51451.63e6);
    assert_rate(s.hashrate_avg, 51274.60e6);

    // S19 2022 devs: one pseudo device with the misspelt "Tenperature": 0.0 → no reading.
    let s = generic(&[(Devs, "fixtures/antminer/S19Pro-2022fw_devs.json")]);
    assert_eq!(s.boards.len(), 1);
    assert!(s.boards[0].board_temps.is_empty());
}

#[test]
fn stats_survive_every_key_deleted_in_turn() {
    // C-09's rule for all parsers: deleting any one key gives a partial record, never a panic.
    let base = parsed("fixtures/antminer/S17_stats.json");
    let keys: Vec<String> = base["STATS"][1]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    assert_eq!(keys.len(), 225);
    for key in keys {
        let mut stats = base.clone();
        stats["STATS"][1].as_object_mut().unwrap().remove(&key);
        let mut r = Replies::default();
        r.set(Stats, stats);
        let s = dialect::normalize(Family::Antminer, &r);
        assert!(s.boards.len() <= 3, "{key}");
    }
}

#[test]
fn truncated_replies_never_panic() {
    for rel in [
        "fixtures/antminer/S9-bad-temps_stats.json",
        "fixtures/antminer/S9k_version.json",
        "fixtures/cgminer_generic/StrongU-STU-6_pools.json",
    ] {
        let bytes = raw(rel);
        for end in (0..bytes.len()).step_by(3) {
            let _ = repair::parse_reply(&bytes[..end]);
        }
    }
}
