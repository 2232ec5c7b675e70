//! Field cases from `shared/cases/README.md`, each with the values it states.

use super::*;
use crate::miner::dialect::Command::{
    Devs, Fans, Pools, Stats, Summary, Temps, Version, WmGetErrorCode, WmStatus,
};
use crate::miner::pool_url::PoolEndpoint;
use crate::model::{FanUnit, FirmwareKind, PowerMode};

const CASES: &str = "cases/inputs/";

fn case(name: &str) -> String {
    format!("{CASES}{name}")
}

#[test]
fn c01_missing_comma_between_stats_objects() {
    let v = parsed(&case("C-01_stats_missing_comma.bin"));
    assert_eq!(reply::section(&v, "STATS").len(), 2);
    // The repair acted between tokens only.
    assert_eq!(v["STATS"][1]["note"], "text with }{ inside a string");

    let s = antminer(&[(Stats, &case("C-01_stats_missing_comma.bin"))]);
    assert_rate(s.hashrate, 14.04604e12);
    assert_rate(s.hashrate_avg, 14.0188e12);
    let chain_sum: f64 = s.boards.iter().filter_map(|b| b.hashrate).sum();
    assert_rate(Some(chain_sum), 14.04604e12);
    assert_eq!(fan_rpms(&s), [(2, 6000.0), (5, 5640.0)]);
    let pcb: Vec<f64> = s.board_temps().collect();
    let chip: Vec<f64> = s.chip_temps().collect();
    assert_eq!(pcb, [74.0, 72.0, 71.0]);
    assert_eq!(chip, [89.0, 87.0, 86.0]);
    assert_eq!(s.identity.model.as_deref(), Some("S9"));
}

#[test]
fn c02_bare_nan_and_inf_are_unknown() {
    let v = parsed(&case("C-02_avalon_summary_bare_nan.bin"));
    let summary = reply::first_obj(&v, "SUMMARY").unwrap();
    assert_eq!(reply::field(summary, "MHS av"), None);
    assert_eq!(reply::field(summary, "Device Hardware%"), None);
    assert_eq!(reply::field(summary, "MHS 1m"), Some(0.0));
    assert_eq!(reply::field_u64(summary, "Accepted"), Some(6));
    // Quoted forms are unknown too.
    for quoted in ["nan", "inf", "-inf"] {
        assert_eq!(reply::num(&Value::from(quoted)), None);
    }
    let s = generic(&[(Summary, &case("C-02_avalon_summary_bare_nan.bin"))]);
    assert_eq!(s.hashrate_avg, None);
    // Nothing non-finite survives into the serialized model.
    let json = serde_json::to_string(&s).unwrap();
    assert!(!json.contains("NaN") && !json.contains("inf"), "{json}");
}

#[test]
fn c03_string_hashrates_and_empty_chain_slots() {
    // Braiins OS S9 summary: a string beside a number.
    let s = generic(&[(Summary, &case("C-03_bos_summary_string_hashrate.bin"))]);
    assert_rate(s.hashrate, 13.30138e12);
    assert_rate(s.hashrate_avg, 13.2427e12);

    let s = antminer(&[(Stats, &case("C-03_s19_stats_empty_chain.bin"))]);
    assert_eq!(slots(&s), [0, 1, 2], "slot 4 is empty, not a dead board");
    assert_rates(&board_rates(&s), &[34.4367e12, 32.45758e12, 33.29321e12]);
    // No "GHS 5s" in this stats block: realtime is the sum of the chains.
    assert_rate(s.hashrate, 100.18749e12);
    // The 30-minute rate (rate_unit GH) is the average this reply offers.
    assert_rate(s.hashrate_avg, 101.36062e12);
    assert!(s.boards.iter().all(|b| b.chips == Some(76)));
    assert_eq!(s.boards[2].chip_temps, [64.0, 64.0, 74.0, 74.0]);
}

#[test]
fn c04_temperature_encodings() {
    let s = antminer(&[(Stats, &case("C-04_antminer_temps_mixed.bin"))]);
    let pcb: Vec<f64> = s.board_temps().collect();
    let chip: Vec<f64> = s.chip_temps().collect();
    // temp1 = 0 (no chain), temp7 = 0 (broken sensor on a live chain), -83 and "-" are no readings.
    assert_eq!(pcb, [75.0, 73.0]);
    assert_eq!(pcb.iter().sum::<f64>() / pcb.len() as f64, 74.0);
    assert_eq!(chip.iter().copied().fold(f64::MIN, f64::max), 85.0);
    assert!(!chip.contains(&-83.0) && !chip.contains(&0.0));
    // Each encoding read right: "51-85", "29-54-30-55", "48-78", single numbers.
    let chip_lists: Vec<&[f64]> = s.boards.iter().map(|b| b.chip_temps.as_slice()).collect();
    assert!(chip_lists.contains(&&[51.0, 85.0][..]));
    assert!(chip_lists.contains(&&[29.0, 54.0, 30.0, 55.0][..]));
    assert!(chip_lists.contains(&&[48.0, 78.0][..]));
    assert_eq!(chip.iter().filter(|&&t| t == 62.0).count(), 2);
}

#[test]
fn c07_units_per_dialect() {
    let s = generic(&[(Summary, &case("C-07a_avalon_summary_mhs.bin"))]);
    assert_rate(s.hashrate_avg, 3.96111558e12);
    assert_rate(s.hashrate, 2.75912301e12);
    let s = antminer(&[(Stats, &case("C-03_s19_stats_empty_chain.bin"))]);
    assert_rate(s.hashrate_avg, 1.0136062e14);
}

#[test]
fn c08_s9_fans_in_slots_3_and_6() {
    let s = antminer(&[(Stats, &case("C-08_s9_fans.bin"))]);
    let speeds: Vec<f64> = s.fans.iter().map(|f| f.speed).collect();
    assert_eq!(speeds, [6000.0, 5640.0]);
    assert_eq!(fan_rpms(&s), [(2, 6000.0), (5, 5640.0)]);
}

#[test]
fn c10_pool_urls() {
    let s = antminer(&[(Pools, &case("C-10_pools_urls.bin"))]);
    // Pool 3 (empty URL) is an unused slot: left out, not an error.
    assert_eq!(s.pools.len(), 3);
    assert_eq!(
        s.pools[0].url, "stratum.braiins.com:3333",
        "kept exactly as the miner reports it"
    );
    let ends: Vec<PoolEndpoint> = s
        .pools
        .iter()
        .map(|p| PoolEndpoint::parse(&p.url).unwrap())
        .collect();
    assert_eq!(
        (ends[0].scheme.as_str(), ends[0].host.as_str(), ends[0].port),
        ("stratum+tcp", "stratum.braiins.com", Some(3333))
    );
    assert_eq!(
        (ends[1].host.as_str(), ends[1].port),
        ("pool.example", Some(3333))
    );
    assert!(!ends[1].is_v2());
    assert!(ends[2].is_v2());
    assert_eq!(
        (ends[2].host.as_str(), ends[2].port),
        ("pool.example", Some(3336))
    );
    assert_eq!(ends[2].path.as_deref(), Some("PUBKEYPLACEHOLDER"));
    assert!(PoolEndpoint::parse("").is_none());
}

#[test]
fn c11_plain_text_reply() {
    let v = parsed(&case("C-11_cgminer_text_version.bin"));
    assert!(reply::check_status(&v).is_ok());
    let version = reply::first_obj(&v, "VERSION").unwrap();
    assert_eq!(reply::field_str(version, "PROD"), Some("Avalon Mini3"));
    assert_eq!(reply::field_str(version, "MAC"), Some("02:00:00:00:00:01"));
    // An Avalon, read as one.
    assert_eq!(detect::classify(Some(&v), None).0, Family::Avalon);
    let s = read(
        Family::Avalon,
        &[(Version, &case("C-11_cgminer_text_version.bin"))],
    );
    assert_eq!(s.identity.make.as_deref(), Some("Avalon"));
    assert_eq!(s.identity.model.as_deref(), Some("Mini3"));
    assert_eq!(s.identity.mac.as_deref(), Some("02:00:00:00:00:01"));
    let s = generic(&[(Version, &case("C-11_cgminer_text_version.bin"))]);
    assert_eq!(s.identity.make.as_deref(), Some("Avalon"));
    assert_eq!(s.identity.model.as_deref(), Some("Mini3"));
    assert_eq!(s.identity.firmware.as_deref(), Some("cgminer 4.11.1"));
}

#[test]
fn c12_inputs_parse() {
    let s = generic(&[(Summary, &case("C-12_summary_nul_terminated.bin"))]);
    assert_rate(s.hashrate, 100e9);
    let mut whole = raw(&case("C-12_pretty_part1.bin"));
    whole.extend(raw(&case("C-12_pretty_part2.bin")));
    let v = repair::parse_reply(&whole).unwrap();
    let summary = reply::first_obj(&v, "SUMMARY").unwrap();
    assert_eq!(reply::field(summary, "GHS 5s"), Some(100.0));
    // The first part alone is not a reply.
    assert!(repair::parse_reply(&raw(&case("C-12_pretty_part1.bin"))).is_err());
}

#[test]
fn c13_refused_join_and_a_failing_sub_command() {
    let v = parsed(&case("C-13_multicommand_invalid.bin"));
    let refusal = reply::split_multi(v, ["summary", "stats", "pools"]).unwrap_err();
    let e = reply::check_status(&refusal).unwrap_err();
    assert_eq!(
        (e.status.as_str(), e.code, e.msg.as_str()),
        ("E", Some(14), "Invalid command")
    );

    // A joined reply in which `stats` failed keeps summary and pools.
    let joined = joined_raw(&[
        (
            "summary",
            &raw("fixtures/antminer/S19Pro-2022fw_summary.json"),
        ),
        ("stats", &raw(&case("C-13_multicommand_invalid.bin"))),
        ("pools", &raw("fixtures/antminer/S19Pro-2022fw_pools.json")),
    ]);
    let parts = reply::split_multi(
        repair::parse_reply(&joined).unwrap(),
        ["summary", "stats", "pools"],
    )
    .unwrap();
    let ok: Vec<bool> = parts
        .iter()
        .map(|p| reply::check_status(p.as_ref().unwrap()).is_ok())
        .collect();
    assert_eq!(ok, [true, false, true]);
}

#[test]
fn c16_access_denied_is_one_commands_error() {
    let v = parsed(&case("C-16b_access_denied.bin"));
    let e = reply::check_status(&v).unwrap_err();
    assert_eq!(e.code, Some(reply::MinerError::ACCESS_DENIED));
    // Hiveon on an S19j Pro is not stock firmware.
    let version = parsed(&case("C-16a_hiveon_version.bin"));
    assert_eq!(
        detect::classify(Some(&version), Some(&v)),
        (Family::Hiveon, Some(FirmwareKind::Hiveon))
    );
    let s = read(
        Family::Hiveon,
        &[(Version, &case("C-16a_hiveon_version.bin"))],
    );
    assert_eq!(s.identity.make.as_deref(), Some("Antminer"));
    assert_eq!(s.identity.model.as_deref(), Some("S19j Pro"));
    assert_eq!(s.identity.firmware_kind, Some(FirmwareKind::Hiveon));
    // The denied command leaves summary, stats and pools readable (see poll tests).
}

#[test]
fn c17_answering_but_not_hashing() {
    let s = generic(&[(Summary, &case("C-17_summary_avg_high_now_zero.bin"))]);
    assert_eq!(s.hashrate, Some(0.0));
    assert_eq!(s.is_hashing, Some(false));
    assert_rate(s.hashrate_avg, 3.9e12);
    assert_eq!(s.uptime, Some(86000));
    // Same rule on the Antminer side: realtime 0 with a high average is not hashing.
    let s = antminer(&[(Stats, "fixtures/antminer/L3_stats_v2.json")]);
    assert_eq!(s.hashrate, Some(0.0));
    assert_eq!(s.is_hashing, Some(false));
    assert_rate(s.hashrate_avg, 500.28e6);
}

#[test]
fn c18_devs_temperature_zero_is_no_reading() {
    let s = generic(&[(Command::Devs, &case("C-18a_bosminer_devs.bin"))]);
    assert_eq!(slots(&s), [0, 1, 2]);
    assert!(s.boards.iter().all(|b| b.board_temps.is_empty()));
    assert_eq!(s.board_temps().count(), 0);

    // Braiins: the real temperatures come from `temps`, matched by chain ID 6..8.
    let s = read(
        Family::Braiins,
        &[
            (Devs, &case("C-18a_bosminer_devs.bin")),
            (Temps, &case("C-18b_bosminer_temps.bin")),
        ],
    );
    assert_eq!(slots(&s), [0, 1, 2]);
    let board: Vec<f64> = s.board_temps().collect();
    let chip: Vec<f64> = s.chip_temps().collect();
    assert_eq!(board, [58.0, 60.0, 57.0]);
    assert_eq!(chip, [71.5, 74.0, 70.0]);
    assert_rates(&board_rates(&s), &[4.6e12, 4.59e12, 4.61e12]);
    let s = read(Family::Braiins, &[(Devs, &case("C-18a_bosminer_devs.bin"))]);
    assert_eq!(s.board_temps().count(), 0, "Temperature 0 is never 0 °C");
}

#[test]
fn c05_whatsminer_error_code_list_written_like_a_dict() {
    let v = parsed(&case("C-05_whatsminer_error_code_listdict.bin"));
    // The repair touched only the broken list: STATUS is still an array.
    assert!(v["STATUS"].is_array());
    assert!(reply::check_status(&v).is_ok());
    let s = read(
        Family::Whatsminer,
        &[(
            WmGetErrorCode,
            &case("C-05_whatsminer_error_code_listdict.bin"),
        )],
    );
    let got: Vec<(&str, String)> = s
        .error_codes
        .iter()
        .map(|e| {
            (
                e.code.as_str(),
                e.at.unwrap().format("%Y-%m-%dT%H:%M:%S").to_string(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("329", "2023-01-01T00:00:00".to_string()),
            ("2010", "2023-01-01T00:00:05".to_string())
        ]
    );
    assert!(s.has_errors());
    // The normal forms.
    for form in [
        r#"{"STATUS":"S","Code":131,"Msg":{"error_code":[{"329":"2023-01-01 00:00:00"}]}}"#,
        r#"{"STATUS":"S","Code":131,"Msg":{"error_code":["329"]}}"#,
    ] {
        let mut r = Replies::default();
        r.set(
            WmGetErrorCode,
            repair::parse_reply(form.as_bytes()).unwrap(),
        );
        let s = dialect::normalize(Family::Whatsminer, &r);
        assert_eq!(s.error_codes.len(), 1, "{form}");
        assert_eq!(s.error_codes[0].code, "329");
    }
}

#[test]
fn c06_avalon_nano3_bracket_blob() {
    let s = read(
        Family::Avalon,
        &[(Stats, &case("C-06_avalon_nano3_stats.bin"))],
    );
    assert_rate(s.hashrate, 2.63098e12);
    assert_rate(s.hashrate_avg, 2.47477e12);
    assert_rate(s.hashrate_ideal, 3.20356e12);
    assert_eq!(s.fans.len(), 1);
    assert_eq!((s.fans[0].speed, s.fans[0].unit), (3030.0, FanUnit::Rpm));
    assert_eq!(s.fan_duty, Some(41.0), "FanR is a duty, never RPM");
    assert_eq!(s.boards.len(), 1);
    let b = &s.boards[0];
    assert_eq!(b.chip_temps.len(), 10);
    assert_eq!(b.chip_temps.iter().copied().fold(f64::MIN, f64::max), 87.0);
    assert_eq!((b.temp_max, b.temp_avg), (Some(87.0), Some(85.0)));
    assert_rate(b.hashrate, 2474.77e9);
    assert_eq!((s.inlet_temp, s.outlet_temp), (Some(38.0), Some(41.0)));
    assert_eq!(s.identity.model.as_deref(), Some("nano3"));
    assert_eq!(s.uptime, Some(512933));
    assert_eq!(s.power_limit, Some(90.0));
    assert_eq!(s.power_mode, None);
    assert!(s.error_codes.is_empty());
}

#[test]
fn c08_fans_rpm_and_duty() {
    // Avalon: RPM [3030] plus duty 41 %.
    let s = read(
        Family::Avalon,
        &[(Stats, &case("C-06_avalon_nano3_stats.bin"))],
    );
    assert_eq!((fan_rpms(&s), s.fan_duty), (vec![(0, 3030.0)], Some(41.0)));
    // BOSminer: [6240, 6180, 0, 0] on a 2-fan miner → 2 fans, no alert.
    let fans = serde_json::json!({"STATUS":[{"STATUS":"S","Code":202}],"FANS":[
        {"FAN":0,"ID":0,"RPM":6240,"Speed":60},{"FAN":1,"ID":1,"RPM":6180,"Speed":60},
        {"FAN":2,"ID":2,"RPM":0,"Speed":60},{"FAN":3,"ID":3,"RPM":0,"Speed":60}]});
    let mut r = Replies::default();
    r.set(Fans, fans);
    let s = dialect::normalize(Family::Braiins, &r);
    assert_eq!(fan_rpms(&s), [(0, 6240.0), (1, 6180.0)]);
    assert_eq!(s.fan_duty, Some(60.0));
    assert_ne!(s.has_fan_failure(), Some(true));
    // S9: two fans in slots 3 and 6 of 8, fan_num 2 → no alert.
    let s = antminer(&[(Stats, &case("C-08_s9_fans.bin"))]);
    assert_eq!(s.expected_fans, Some(2));
    assert_eq!(s.has_fan_failure(), Some(false));
}

#[test]
fn c09_avalon_q_incomplete_hbinfo() {
    // The case's parsed form, as the wire carries it: `HB0` empty, then no HBinfo at all.
    for hbinfo in [Some("'HB0':{}"), Some(""), None] {
        let mut device = serde_json::json!({"STATS":0,"ID":"AVALON0","Elapsed":100,
            "MM ID0:Summary":"'STATS':{MGHS[100.0] HBITemp[50.0] ITemp[40.0]}"});
        if let Some(hb) = hbinfo {
            device["HBinfo"] = hb.into();
        }
        let mut r = Replies::default();
        r.set(
            Stats,
            serde_json::json!({"STATUS":[{"STATUS":"S"}],"STATS":[device]}),
        );
        let s = dialect::normalize(Family::Avalon, &r);
        assert_eq!(s.boards.len(), 1, "{hbinfo:?}");
        assert_rate(s.boards[0].hashrate, 100e9);
        assert_eq!(s.boards[0].chips, None, "no chip data: unknown, not 0");
        assert!(s.boards[0].chip_temps.is_empty());
        assert_eq!(s.inlet_temp, Some(40.0));
    }
    // The case file itself (a client-side parsed form) reads without a panic and without data.
    let v = parsed(&case("C-09_avalon_q_incomplete.json"));
    let mut r = Replies::default();
    r.set(Stats, v);
    let s = dialect::normalize(Family::Avalon, &r);
    assert!(s.boards.is_empty() && s.hashrate.is_none());
}

#[test]
fn c14_whatsminer_status_shape() {
    for (file, hashing, reason) in [
        ("C-14a_wm_status_mining.bin", true, None),
        (
            "C-14b_wm_status_btminer_down.bin",
            false,
            Some("btminer process off"),
        ),
    ] {
        let v = parsed(&case(file));
        assert!(
            reply::check_status(&v).is_ok(),
            "{file}: the validator accepts the shape"
        );
        let s = read(Family::Whatsminer, &[(WmStatus, &case(file))]);
        assert_eq!(s.is_hashing, Some(hashing), "{file}");
        assert_eq!(s.stopped_reason.as_deref(), reason, "{file}");
        assert_eq!(s.identity.firmware.as_deref(), Some("20230911.12.Rel"));
    }
    let s = read(
        Family::Whatsminer,
        &[(WmStatus, &case("C-14b_wm_status_btminer_down.bin"))],
    );
    assert_ne!(s.power_mode, Some(PowerMode::Normal));
}
