//! Fixture replies of every family other than stock Antminer and generic cgminer, each read
//! through its dialect, with the values a user of the data would see.

use super::*;
use crate::miner::dialect::Command::{
    Config, Devdetails, Devs, Edevs, Fans, Pools, Power, Stats, Summary, Temps, Tunerstatus,
    V3DeviceInfo, V3Edevs, V3Pools, V3Summary, Version, WmGetErrorCode, WmGetMinerInfo,
    WmGetVersion, WmStatus,
};
use crate::model::{FanUnit, FirmwareKind, PowerMode};

fn duty_and_rpms(s: &MinerStats) -> (Option<f64>, Vec<(u32, f64)>) {
    (s.fan_duty, fan_rpms(s))
}

fn temps_of(s: &MinerStats) -> (Vec<Vec<f64>>, Vec<Vec<f64>>) {
    (
        s.boards.iter().map(|b| b.board_temps.clone()).collect(),
        s.boards.iter().map(|b| b.chip_temps.clone()).collect(),
    )
}

// ---------------------------------------------------------------------------------------- Braiins

#[test]
fn braiins_bosminer_plus_s9() {
    let s = read(
        Family::Braiins,
        &[
            (Version, &fx("braiins/S9-bOSplus_version.json")),
            (Summary, &fx("braiins/S9-bOSplus_summary.json")),
            (Pools, &fx("braiins/S9-bOSplus_pools.json")),
            (Devs, &fx("braiins/S9-bOSplus_devs.json")),
            (Temps, &fx("braiins/S9-bOSplus_temps.json")),
            (Fans, &fx("braiins/S9-bOSplus_fans.json")),
        ],
    );
    assert_eq!(s.identity.firmware.as_deref(), Some("0.2.0-36c56a9363"));
    assert_eq!(s.identity.firmware_kind, Some(FirmwareKind::BraiinsOs));
    assert_rate(s.hashrate, 15740915.842676325e6);
    assert_rate(s.hashrate_avg, 11988299.650652435e6);
    assert_eq!(s.uptime, Some(3680));
    // Chains 6..8 are slots 0..2; devs' Temperature 0 is no reading, temps' Board is.
    assert_eq!(slots(&s), [0, 1, 2]);
    assert_rates(
        &board_rates(&s),
        &[4683070.74742169e6, 4687913.424447901e6, 4213098.705765925e6],
    );
    assert!(s
        .boards
        .iter()
        .all(|b| b.hashrate_ideal == Some(4668300.0e6)));
    assert_rate(s.hashrate_ideal, 3.0 * 4668300.0e6);
    let (board, chip) = temps_of(&s);
    assert_eq!(board, [vec![75.0], vec![63.0], vec![70.0]]);
    assert!(chip.iter().all(Vec::is_empty), "Chip 0.0 is no reading");
    // Four connectors, two fans: the 0 RPM connectors are empty, not stopped fans.
    assert_eq!(
        duty_and_rpms(&s),
        (Some(40.0), vec![(0, 2820.0), (1, 3780.0)])
    );
    assert_eq!(s.pools.len(), 3);
    assert_eq!(
        (s.pools[0].accepted, s.pools[0].user.as_str()),
        (152, "antminer_1")
    );
    assert_eq!(s.is_hashing, Some(true));
    assert_eq!(s.power_mode, None);
}

#[test]
fn braiins_bosminer_s9_temps_fans_and_the_old_bos() {
    let s = read(
        Family::Braiins,
        &[
            (Version, &fx("braiins/S9-bOS_version.json")),
            (Summary, &fx("braiins/S9-bOS_summary.json")),
            (Pools, &fx("braiins/S9-bOS_pools.json")),
            (Temps, &fx("braiins/S9-bOS_temps.json")),
            (Fans, &fx("braiins/S9-bOS_fans.json")),
        ],
    );
    assert_eq!(s.identity.firmware.as_deref(), Some("0.2.0-d360818"));
    assert_rate(s.hashrate, 14274425.317759488e6);
    assert_rate(s.hashrate_avg, 16698158.653278796e6);
    assert_eq!(s.uptime, Some(92));
    // No devs: the boards come from temps alone, chains 6..8 → slots 0..2.
    assert_eq!(slots(&s), [0, 1, 2]);
    assert_eq!(temps_of(&s).0, [vec![53.0], vec![46.0], vec![52.0]]);
    assert_eq!(
        duty_and_rpms(&s),
        (Some(1.0), vec![(0, 1560.0), (1, 1560.0)])
    );
    assert_eq!(s.pools.len(), 2);
    assert!(!s.pools[1].alive);

    // The versions of every Braiins build name the firmware.
    for (file, firmware) in [
        (
            "braiins/S9-bOS-S9_version.json",
            "bOS_am1-s9-20181127-0_c34516b0",
        ),
        ("braiins/S9-bOSplus-S9_version.json", "0.2.0-36c56a9363"),
        (
            "braiins/bos-21.09_version.json",
            "boser-openwrt 0.1.0-11012d53",
        ),
        (
            "braiins/bos-24.09_version.json",
            "boser-buildroot 0.1.0-75912fc7",
        ),
    ] {
        let s = read(Family::Braiins, &[(Version, &fx(file))]);
        assert_eq!(s.identity.firmware.as_deref(), Some(firmware), "{file}");
        assert_eq!(s.hashrate, None, "{file}: no summary, no rate");
    }
}

#[test]
fn braiins_devdetails_model_and_tuner() {
    let mut r = replies(&[(Devs, "cases/inputs/C-18a_bosminer_devs.bin")]);
    r.set(
        Devdetails,
        serde_json::json!({"STATUS":[{"STATUS":"S","Description":"BOSer boser-buildroot 0.1.0"}],
            "DEVDETAILS":[{"DEVDETAILS":0,"ID":6,"Chips":63,"Model":"Bitmain Antminer S19XP"},
                          {"DEVDETAILS":1,"ID":7,"Chips":63,"Model":"Bitmain Antminer S19XP"}]}),
    );
    r.set(
        Tunerstatus,
        serde_json::json!({"STATUS":[{"STATUS":"S"}],"TUNERSTATUS":[{"PowerLimit":3250,
            "ApproximateMinerPowerConsumption":3101,"TunerChainStatus":[
                {"HashchainIndex":6,"Status":"Stable"},{"HashchainIndex":7,"Status":"Tuning individual chips"},
                {"HashchainIndex":8,"Status":"Failed to tune"}]}]}),
    );
    let s = dialect::normalize(Family::Braiins, &r);
    assert_eq!(s.identity.make.as_deref(), Some("Antminer"));
    assert_eq!(s.identity.model.as_deref(), Some("S19 XP"));
    assert_eq!(
        s.boards
            .iter()
            .map(|b| b.expected_chips)
            .collect::<Vec<_>>(),
        [Some(63), Some(63), None]
    );
    assert_eq!((s.power, s.power_limit), (Some(3101.0), Some(3250.0)));
    assert_eq!(s.errors, ["hashchain 8: Failed to tune"]);
    assert!(s.has_errors());
    // No summary: realtime is the boards' 1 m rates.
    assert_rate(s.hashrate, (4600000.0 + 4590000.0 + 4610000.0) * 1e6);
}

// ---------------------------------------------------------------------------------------- LuxOS

#[test]
fn luxos_s19k_pro_all_sections() {
    let f = |c: &str| fx(&format!("luxos/S19kPro-2025.4_{c}.json"));
    let s = read(
        Family::LuxOs,
        &[
            (Version, &f("version")),
            (Summary, &f("summary")),
            (Pools, &f("pools")),
            (Stats, &f("stats")),
            (Devs, &f("devs")),
            (Temps, &f("temps")),
            (Fans, &f("fans")),
            (Power, &f("power")),
            (Config, &f("config")),
        ],
    );
    assert_eq!(s.identity.make.as_deref(), Some("Antminer"));
    assert_eq!(s.identity.model.as_deref(), Some("S19k Pro"));
    assert_eq!(
        s.identity.firmware.as_deref(),
        Some("2025.4.8.220305-57b389c7")
    );
    assert_eq!(s.identity.firmware_kind, Some(FirmwareKind::LuxOs));
    assert_eq!(s.identity.mac.as_deref(), Some("62:f7:5e:b7:10:46"));
    assert_eq!(s.identity.hostname.as_deref(), Some("UrlacherS19k"));
    assert_eq!(s.identity.serial.as_deref(), Some("JYZZB0UBDJABF06RB"));
    assert_rate(s.hashrate, 59756.06e9);
    assert_rate(s.hashrate_avg, 56917.91e9);
    assert_rate(s.hashrate_ideal, 61954.2e9);
    assert_eq!(s.uptime, Some(3453));
    // Boards by devs ID, 5 s rates in MH/s; chips from stats' chains 1..3.
    assert_eq!(slots(&s), [0, 1, 2]);
    assert_rates(
        &board_rates(&s),
        &[
            19773825.71692016e6,
            19230588.7466751e6,
            20751652.263361264e6,
        ],
    );
    assert!(s
        .boards
        .iter()
        .all(|b| b.chips == Some(77) && !b.has_chip_errors));
    assert!(s
        .boards
        .iter()
        .all(|b| b.hashrate_ideal == Some(20651400.0e6)));
    assert_eq!(s.boards[2].serial.as_deref(), Some("JYZZYRSBDJEBI06ZR"));
    let (board, chip) = temps_of(&s);
    assert_eq!(board[0], [47.0, 34.0, 47.0, 34.0]);
    assert_eq!(board[1], [47.0, 33.0, 47.0, 33.0]);
    assert_eq!(chip[0], [47.0, 34.0, 34.0, 47.0]);
    // FANS in ID order, duty 20 %, 4 fitted fans.
    assert_eq!(
        duty_and_rpms(&s),
        (
            Some(20.0),
            vec![(0, 1920.0), (1, 1920.0), (2, 2340.0), (3, 2340.0)]
        )
    );
    assert_eq!(s.expected_fans, Some(4));
    assert_eq!(s.has_fan_failure(), Some(false));
    assert_eq!(s.power, Some(1051.0));
    assert_eq!(s.power_mode, None, "CurtailMode None: mining");
    assert_eq!(s.pools[0].url, "stratum+tcp://ca.stratum.braiins.com:3333");
    assert_eq!(s.is_hashing, Some(true));
}

#[test]
fn luxos_stopped_fan_and_sleep() {
    // C-08: a LuxOS S19 XP with 4 fans, fan 4 at 0 RPM → fan failure.
    let mut fans = parsed("fixtures/luxos/S19kPro-2025.4_fans.json");
    fans["FANS"][3]["RPM"] = 0.into();
    let mut config = parsed("fixtures/luxos/S19kPro-2025.4_config.json");
    config["CONFIG"][0]["CurtailMode"] = "Sleep".into();
    let mut r = Replies::default();
    r.set(Fans, fans);
    r.set(Config, config);
    let s = dialect::normalize(Family::LuxOs, &r);
    assert_eq!(
        fan_rpms(&s),
        [(0, 1920.0), (1, 1920.0), (2, 2340.0), (3, 0.0)]
    );
    assert_eq!(s.has_fan_failure(), Some(true));
    assert_eq!(s.power_mode, Some(PowerMode::Sleeping));
    assert_eq!(s.is_hashing, Some(false));
}

// ---------------------------------------------------------------------------------------- Whatsminer

#[test]
fn whatsminer_api_v2_2023() {
    let f = |c: &str| fx(&format!("whatsminer/apiv2-2023_{c}.json"));
    let s = read(
        Family::Whatsminer,
        &[
            (Summary, &f("summary")),
            (Pools, &f("pools")),
            (Devs, &f("devs")),
            (WmStatus, &f("status")),
            (WmGetVersion, &f("get_version")),
            (WmGetMinerInfo, &f("get_miner_info")),
            (WmGetErrorCode, &f("get_error_code_with_errors")),
        ],
    );
    assert_eq!(s.identity.make.as_deref(), Some("WhatsMiner"));
    assert_eq!(s.identity.firmware.as_deref(), Some("20230803.11.REL"));
    assert_eq!(s.identity.mac.as_deref(), Some("d4:01:02:03:04:05"));
    assert_eq!(s.identity.hostname.as_deref(), Some("WhatsMiner"));
    // `HS RT` is MH/s (no 5 s key in this summary); Factory GHS is GH/s.
    assert_rate(s.hashrate, 124500000.0e6);
    assert_rate(s.hashrate_avg, 125000000.0e6);
    assert_rate(s.hashrate_ideal, 126000.0e9);
    assert_eq!(s.uptime, Some(25000));
    assert_eq!((s.power, s.power_limit), (Some(3200.0), Some(3300.0)));
    assert_eq!(s.inlet_temp, Some(28.5));
    assert_eq!(fan_rpms(&s), [(0, 5400.0), (1, 5280.0)]);
    assert_eq!(slots(&s), [0, 1, 2]);
    assert_rates(
        &board_rates(&s),
        &[41500000.0e6, 41800000.0e6, 41700000.0e6],
    );
    assert!(s.boards.iter().all(|b| b.chips == Some(135)));
    let (board, _) = temps_of(&s);
    assert_eq!(board, [vec![65.0], vec![66.0], vec![67.0]]);
    assert_eq!(
        s.boards
            .iter()
            .map(|b| (b.temp_max, b.temp_avg))
            .collect::<Vec<_>>(),
        [
            (Some(80.0), Some(71.5)),
            (Some(81.0), Some(72.0)),
            (Some(81.0), Some(73.5))
        ]
    );
    assert_eq!(s.boards[0].serial.as_deref(), Some("BHM5CSD1302803K30001"));
    // Summary's "Normal" wins over status' "low"; status says mining.
    assert_eq!(s.power_mode, Some(PowerMode::Normal));
    assert_eq!(s.is_hashing, Some(true));
    let errors: Vec<(&str, String)> = s
        .error_codes
        .iter()
        .map(|e| (e.code.as_str(), e.at.unwrap().to_string()))
        .collect();
    assert_eq!(
        errors,
        [
            ("218", "2024-06-15 10:30:00".into()),
            ("110", "2024-06-15 09:15:00".into())
        ]
    );
    // The empty list: no errors.
    let s = read(
        Family::Whatsminer,
        &[(WmGetErrorCode, &f("get_error_code"))],
    );
    assert!(s.error_codes.is_empty());
    let s = read(
        Family::Whatsminer,
        &[(Summary, &f("summary")), (WmGetErrorCode, &f("get_psu"))],
    );
    assert!(s.error_codes.is_empty(), "get_psu carries no error list");
}

#[test]
fn whatsminer_api_v1_and_summary_errors() {
    let f = |c: &str| fx(&format!("whatsminer/apiv1-20210322_{c}.json"));
    let s = read(
        Family::Whatsminer,
        &[
            (Summary, &f("summary_with_errors")),
            (Pools, &f("pools")),
            (Devs, &f("devs")),
            (WmStatus, &f("status")),
            (WmGetVersion, &f("get_version")),
        ],
    );
    // The 5 s window, not `HS RT` (which follows the 5 m one here).
    assert_rate(s.hashrate, 70668114.52e6);
    assert_eq!(s.power, Some(3427.0), "Power_RT");
    assert_eq!(s.identity.firmware.as_deref(), Some("20210322.22.REL"));
    assert_eq!(
        s.error_codes
            .iter()
            .map(|e| e.code.as_str())
            .collect::<Vec<_>>(),
        ["110", "600"]
    );
    assert_eq!(s.pools.len(), 3);
    assert_eq!(
        s.pools[0].priority, 0,
        "Priority, not the 1-based POOL index"
    );
    assert_eq!(s.boards.len(), 3);
    assert_eq!(s.boards[1].temp_max, Some(90.11));
    let s = read(Family::Whatsminer, &[(Summary, &f("summary"))]);
    assert!(s.error_codes.is_empty());
    assert_eq!(s.identity.firmware.as_deref(), Some("20210322.22.REL"));
    let s = read(Family::Whatsminer, &[(WmGetErrorCode, &f("get_psu"))]);
    assert!(s.error_codes.is_empty());
}

#[test]
fn whatsminer_m2x_m3x_generations() {
    // M31S, new firmware: join reply with a 1-based POOL index, errors in the summary.
    let s = read(
        Family::Whatsminer,
        &[
            (Summary, &fx("whatsminer/M31S-new-firmware_summary.json")),
            (Pools, &fx("whatsminer/M31S-new-firmware_pools.json")),
            (Edevs, &fx("whatsminer/M31S-new-firmware_edevs.json")),
        ],
    );
    assert_rate(s.hashrate, 92768288.94e6);
    assert_rate(s.hashrate_ideal, 75697.0e9);
    assert_eq!(s.power_mode, Some(PowerMode::High));
    assert_eq!(s.identity.mac.as_deref(), Some("c6:06:12:00:2d:63"));
    assert_eq!(s.identity.firmware.as_deref(), Some("20201202.22.REL"));
    assert_eq!(fan_rpms(&s), [(0, 5700.0)], "Fan Speed Out 0 is no reading");
    assert_eq!(s.inlet_temp, Some(7.0));
    assert_eq!(
        s.error_codes
            .iter()
            .map(|e| e.code.as_str())
            .collect::<Vec<_>>(),
        ["110", "111", "131"]
    );
    assert_eq!(
        s.boards.iter().map(|b| b.chips).collect::<Vec<_>>(),
        [Some(105); 3]
    );
    assert_eq!(temps_of(&s).0, [vec![57.5], vec![72.0], vec![68.0]]);
    assert_eq!(
        s.pools.iter().map(|p| p.priority).collect::<Vec<_>>(),
        [0, 1, 2]
    );

    // The joined reply of the same miner gives the same values.
    let joined = parsed("fixtures/whatsminer/M31S-new-firmware_multi_pools-summary-edevs.json");
    let parts = reply::split_multi(joined, ["summary", "pools", "edevs"]).unwrap();
    let mut r = Replies::default();
    for (c, p) in [Summary, Pools, Edevs].into_iter().zip(parts) {
        r.set(c, p.unwrap());
    }
    let j = dialect::normalize(Family::Whatsminer, &r);
    assert_eq!(j.pools[0].url, "stratum+tcp://btc.luxor.tech:700");
    assert!(j.hashrate.is_some() && j.boards.len() == 3);

    // M30S: summary + edevs.
    let s = read(
        Family::Whatsminer,
        &[
            (Summary, &fx("whatsminer/M30S-new-firmware_summary.json")),
            (Pools, &fx("whatsminer/M30S-new-firmware_pools.json")),
            (Edevs, &fx("whatsminer/M30S-new-firmware_edevs.json")),
        ],
    );
    assert_rate(s.hashrate, 85038430.01e6);
    assert_eq!((s.power, s.power_limit), (Some(3232.0), Some(3600.0)));
    assert_eq!(
        s.error_codes
            .iter()
            .map(|e| e.code.as_str())
            .collect::<Vec<_>>(),
        ["205"]
    );
    assert_eq!(
        s.boards.iter().map(|b| b.chips).collect::<Vec<_>>(),
        [Some(156); 3]
    );
    assert_eq!(s.pools.len(), 3);

    // M20S new firmware: the `\'` escape in its summary repairs; devs instead of edevs.
    let s = read(
        Family::Whatsminer,
        &[
            (Summary, &fx("whatsminer/M20S-new-firmware_summary.json")),
            (Devs, &fx("whatsminer/M20S-new-firmware_devs.json")),
        ],
    );
    assert_eq!(s.identity.firmware.as_deref(), Some("20200917.22.REL"));
    assert_rate(s.hashrate, 64143777.95e6);
    assert_eq!(s.power, Some(3482.0));
    assert_rates(
        &board_rates(&s),
        &[19540157.81e6, 23015815.92e6, 21747874.70e6],
    );

    // Old M20S / M3: plain summaries, no power, fans in and out.
    let s = read(
        Family::Whatsminer,
        &[
            (Summary, &fx("whatsminer/M20S-old-firmware_summary.json")),
            (Pools, &fx("whatsminer/M20S-old-firmware_pools.json")),
        ],
    );
    assert_rate(s.hashrate, 65371302.78e6);
    assert_eq!(s.uptime, Some(97139));
    assert_eq!(fan_rpms(&s), [(0, 4590.0), (1, 4560.0)]);
    assert_eq!(s.power, None);
    assert_eq!(s.pools[0].accepted, 33825);
    let s = read(
        Family::Whatsminer,
        &[
            (Summary, &fx("whatsminer/M3_summary.json")),
            (Pools, &fx("whatsminer/M3_pools.json")),
        ],
    );
    assert_rate(s.hashrate, 12286819.78e6);
    assert_eq!(s.pools.len(), 3);
    assert_eq!(s.pools[1].accepted, 2628);
}

#[test]
fn whatsminer_status_shapes_c14() {
    let s = read(
        Family::Whatsminer,
        &[(WmStatus, "cases/inputs/C-14a_wm_status_mining.bin")],
    );
    assert_eq!(s.is_hashing, Some(true));
    assert_eq!(s.identity.firmware.as_deref(), Some("20230911.12.Rel"));
    assert_eq!(s.power_mode, None);
    let s = read(
        Family::Whatsminer,
        &[(WmStatus, "cases/inputs/C-14b_wm_status_btminer_down.bin")],
    );
    assert_eq!(s.is_hashing, Some(false));
    assert_eq!(s.stopped_reason.as_deref(), Some("btminer process off"));
    // A sleeping M31S (old key, quoted firmware).
    let s = read(
        Family::Whatsminer,
        &[(WmStatus, "fixtures/whatsminer/M31S-sleeping_status.json")],
    );
    assert_eq!(s.is_hashing, Some(false));
    assert_eq!(s.identity.firmware.as_deref(), Some("20210109.22.REL"));
    // `power_off` → mineroff: sleeping, even with a summary that still shows a rate of 0.
    let mut status = parsed("cases/inputs/C-14a_wm_status_mining.bin");
    status["Msg"]["mineroff"] = "true".into();
    status["Msg"]["mineroff_reason"] = "power off by api".into();
    let mut r = replies(&[(Summary, "cases/inputs/C-17_summary_avg_high_now_zero.bin")]);
    r.set(WmStatus, status);
    let s = dialect::normalize(Family::Whatsminer, &r);
    assert_eq!(s.power_mode, Some(PowerMode::Sleeping));
    assert_eq!(s.stopped_reason.as_deref(), Some("power off by api"));
    assert_eq!((s.hashrate, s.is_hashing), (Some(0.0), Some(false)));
    // Other Whatsminer-shaped replies of the fixtures read without a status section.
    for file in [
        "apiv1-20210322_get_psu.json",
        "apiv2-2023_get_psu.json",
        "M31S-new-firmware_get_token.json",
    ] {
        let v = parsed(&fx(&format!("whatsminer/{file}")));
        assert!(reply::check_status(&v).is_ok(), "{file}");
        assert!(
            crate::miner::dialect::whatsminer::msg(&v).is_some(),
            "{file}"
        );
    }
}

#[test]
fn whatsminer_api_v3_m60s() {
    let f = |c: &str| fx(&format!("whatsminer/apiv3-M60S-20251209_{c}.json"));
    let s = read(
        Family::WhatsminerV3,
        &[
            (V3DeviceInfo, &f("get_device_info_with_errors")),
            (V3Summary, &f("get_miner_status_summary")),
            (V3Edevs, &f("get_miner_status_edevs")),
            (V3Pools, &f("get_miner_status_pools")),
        ],
    );
    assert_eq!(s.identity.model.as_deref(), Some("M60S VK40"));
    assert_eq!(s.identity.firmware.as_deref(), Some("20251209.16.Rel2"));
    assert_eq!(s.identity.mac.as_deref(), Some("ce:02:01:00:8c:36"));
    assert_eq!(
        s.identity.serial.as_deref(),
        Some("BTM3CS40HD24083100000000000000000")
    );
    // TH/s.
    assert_rate(s.hashrate, 171.259e12);
    assert_rate(s.hashrate_avg, 170.8e12);
    assert_rate(s.hashrate_ideal, 181.051e12);
    assert_eq!((s.power, s.power_limit), (Some(3156.0), Some(3600.0)));
    assert_eq!(s.uptime, Some(50000));
    assert_eq!(s.inlet_temp, Some(28.5));
    assert_eq!(fan_rpms(&s), [(0, 5400.0), (1, 5280.0)]);
    assert_rates(&board_rates(&s), &[57.2e12, 57.0e12, 57.1e12]);
    assert!(s.boards.iter().all(|b| b.chips == Some(75)));
    assert_eq!(temps_of(&s).0, [vec![41.1], vec![40.1], vec![41.5]]);
    assert_eq!(s.boards[1].temp_max, Some(82.0));
    assert_eq!(s.pools.len(), 3);
    assert_eq!(
        (s.pools[0].user.as_str(), s.pools[0].active),
        ("asic-rs.test", Some(true))
    );
    assert_eq!(s.error_codes.len(), 5);
    assert_eq!(s.error_codes[0].code, "264");
    assert_eq!(
        s.error_codes[0].reason.as_deref(),
        Some("Power xfer error. code: 0xffffffffc0000000")
    );
    assert_eq!(s.is_hashing, Some(true));
    let s = read(
        Family::WhatsminerV3,
        &[(V3DeviceInfo, &f("get_device_info"))],
    );
    assert!(s.error_codes.is_empty());
    assert_eq!(s.is_hashing, Some(true), "working: true, no rate read");
}

// ---------------------------------------------------------------------------------------- Avalon

#[test]
fn avalon_1246_and_1566() {
    let s = read(
        Family::Avalon,
        &[(Stats, &fx("avalon/Avalon1246-21072802_stats.json"))],
    );
    assert_eq!(s.identity.model.as_deref(), Some("1246-83"));
    assert_eq!(
        s.identity.firmware.as_deref(),
        Some("21072802_4ec6bb0_211fc46")
    );
    assert_rate(s.hashrate, 81072.68e9);
    assert_rate(s.hashrate_avg, 79656.63e9);
    assert_rate(s.hashrate_ideal, 83923.04e9);
    assert_rates(&board_rates(&s), &[26907.01e9, 26025.06e9, 26724.56e9]);
    assert_eq!(
        s.boards
            .iter()
            .map(|b| (b.temp_max, b.temp_avg))
            .collect::<Vec<_>>(),
        [
            (Some(77.0), Some(66.0)),
            (Some(77.0), Some(65.0)),
            (Some(76.0), Some(64.0))
        ]
    );
    assert!(s
        .boards
        .iter()
        .all(|b| b.chip_temps.len() == 120 && b.chips == Some(120)));
    assert_eq!(s.fan_duty, Some(72.0));
    assert_eq!(
        fan_rpms(&s),
        [(0, 5344.0), (1, 5392.0), (2, 5349.0), (3, 5309.0)]
    );
    assert_eq!(s.inlet_temp, Some(30.0));
    assert_eq!(s.power, Some(3504.0));
    assert_eq!(s.power_limit, Some(3200.0));
    assert_eq!(s.power_mode, None);
    assert!(s.error_codes.is_empty());

    let f = |c: &str| fx(&format!("avalon/Avalon1566-24102401_rpc_{c}.json"));
    let s = read(
        Family::Avalon,
        &[
            (Version, &f("version")),
            (Stats, &f("stats")),
            (Pools, &f("pools")),
            (Devs, &f("devs")),
        ],
    );
    assert_eq!(s.identity.make.as_deref(), Some("Avalon"));
    assert_eq!(s.identity.model.as_deref(), Some("15-194"));
    assert_eq!(
        s.identity.firmware.as_deref(),
        Some("24102401_25462b2_9ddf522")
    );
    assert_eq!(s.identity.mac.as_deref(), Some("12:34:56:78:90:12"));
    assert_rate(s.hashrate, 199241.07e9);
    assert_eq!(s.power, Some(3731.0), "WALLPOWER");
    assert_eq!(s.uptime, Some(975), "STATS[0].Elapsed");
    assert_eq!(s.boards.len(), 3);
    assert_eq!(s.fan_duty, Some(49.0));
    assert!(s.pools.iter().all(|p| !p.url.is_empty()));
}

#[test]
fn avalon_joined_replies_and_modules() {
    // 10XX: a joined pools+summary+stats reply; summary's 30 s window is the realtime rate.
    let v = parsed("fixtures/avalon/Avalon10XX_multi_pools-summary-stats.json");
    let parts = reply::split_multi(v, ["pools", "summary", "stats"]).unwrap();
    let mut r = Replies::default();
    for (c, p) in [Pools, Summary, Stats].into_iter().zip(parts) {
        r.set(c, p.unwrap());
    }
    let s = dialect::normalize(Family::Avalon, &r);
    assert_rate(s.hashrate, 32247416.81e6);
    assert_rate(s.hashrate_avg, 25536751.74e6);
    assert_eq!(s.uptime, Some(155));
    assert_eq!(s.boards.len(), 2);
    assert_rates(&board_rates(&s), &[12362.61e9, 12812.16e9]);
    assert_eq!(s.fan_duty, Some(31.0));
    assert_eq!(fan_rpms(&s), [(0, 2896.0), (1, 2927.0)]);
    assert_eq!(s.inlet_temp, Some(18.0));
    assert_eq!(s.power_limit, Some(2220.0));
    assert_eq!(s.pools.len(), 3);
    // ECHU[512 512]: one code per hash board.
    assert_eq!(
        s.error_codes
            .iter()
            .map(|e| e.code.as_str())
            .collect::<Vec<_>>(),
        ["512", "512"]
    );

    // Same with a bare `nan` average right after boot: unknown, never 0 or NaN.
    let v = parsed("fixtures/avalon/Avalon10XX_multi_pools-summary-stats_v2.json");
    let parts = reply::split_multi(v, ["summary"]).unwrap();
    let mut r = Replies::default();
    r.set(Summary, parts[0].clone().unwrap());
    let s = dialect::normalize(Family::Avalon, &r);
    assert_eq!(s.hashrate_avg, None);
    assert_eq!(s.hashrate, Some(0.0));

    // 1047 stats alone (pretty-printed; `Elapsed[..]BOOTBY[..]` without a blank).
    let s = read(
        Family::Avalon,
        &[(Stats, &fx("avalon/Avalon10XX_stats.json"))],
    );
    assert_rate(s.hashrate_avg, 37235.34e9);
    // No summary and no GHSspd on this build: realtime is the boards' MGHS.
    assert_rate(s.hashrate, (18727.58 + 18507.76) * 1e9);
    assert_eq!(s.power, Some(2288.0), "6-value PS: output power fifth");
    assert_eq!(s.uptime, Some(103808));

    // Avalon 7/8/9 behind an AUC: several modules, each one board.
    for (file, modules) in [
        ("avalon/Avalon7XX_stats.json", 10),
        ("avalon/Avalon8XX_stats.json", 3),
    ] {
        let s = read(Family::Avalon, &[(Stats, &fx(file))]);
        assert_eq!(s.boards.len(), modules, "{file}");
        assert!(
            s.boards.iter().all(|b| b.hashrate_ideal.is_some()),
            "{file}"
        );
    }
    let s = read(
        Family::Avalon,
        &[(Stats, &fx("avalon/Avalon8XX_stats.json"))],
    );
    assert_eq!(s.boards[0].temp_max, Some(84.0));
    assert_eq!(s.fan_duty, Some(100.0));
    assert_eq!(fan_rpms(&s), [(0, 5730.0)]);
    assert_rate(s.hashrate_ideal, (13646.20 + 11609.65 + 11513.45) * 1e9);
    for file in [
        "avalon/Avalon7XX_multi_pools-summary-stats.json",
        "avalon/Avalon8XX_multi_pools-summary-stats.json",
        "avalon/Avalon9XX_multi_pools-summary-stats.json",
    ] {
        let v = parsed(&fx(file));
        let parts = reply::split_multi(v, ["pools", "summary", "stats"]).unwrap();
        let mut r = Replies::default();
        for (c, p) in [Pools, Summary, Stats].into_iter().zip(parts) {
            r.set(c, p.unwrap());
        }
        let s = dialect::normalize(Family::Avalon, &r);
        assert!(s.hashrate.is_some_and(|h| h > 1e12), "{file}");
        assert!(!s.boards.is_empty() && !s.pools.is_empty(), "{file}");
    }
    let s = read(
        Family::Avalon,
        &[(Pools, &fx("avalon/Avalon7XX_pools.json"))],
    );
    assert!(!s.pools.is_empty());
}

#[test]
fn avalon_q_sleeping_with_hbinfo() {
    let f = |c: &str| fx(&format!("avalon/AvalonQ-25052801_{c}.json"));
    let s = read(
        Family::Avalon,
        &[
            (Version, &f("version")),
            (Summary, &f("summary")),
            (Pools, &f("pools")),
            (Stats, &f("stats")),
        ],
    );
    assert_eq!(s.identity.model.as_deref(), Some("Q"));
    assert_eq!(
        s.identity.firmware.as_deref(),
        Some("25052801_14a19a2"),
        "CGVERSION"
    );
    assert_eq!(s.identity.mac.as_deref(), Some("aa:bb:cc:dd:ee:ff"));
    // Soft-off: sleeping, not hashing; the since-boot average is kept apart.
    assert_eq!(s.power_mode, Some(PowerMode::Sleeping));
    assert_eq!((s.hashrate, s.is_hashing), (Some(0.0), Some(false)));
    assert_rate(s.hashrate_avg, 44539601.86e6);
    assert_eq!(s.boards.len(), 1);
    assert_eq!(
        s.boards[0].chip_temps.len(),
        160,
        "per-chip temps from HBinfo HB0"
    );
    assert_eq!(s.boards[0].chips, Some(160));
    assert_eq!(
        (s.boards[0].temp_max, s.boards[0].temp_avg),
        (None, None),
        "TMax[0] is no reading"
    );
    assert_eq!(s.fan_duty, Some(0.0));
    assert!(s.fans.is_empty(), "all fans at 0 while sleeping");
    assert_eq!((s.inlet_temp, s.outlet_temp), (Some(26.0), Some(27.0)));
    assert_eq!(s.power_limit, Some(800.0));
    assert_eq!(s.uptime, Some(37714));
    // litestats carries the same blob.
    let s = read(Family::Avalon, &[(Stats, &f("litestats"))]);
    assert_eq!(s.power_mode, Some(PowerMode::Sleeping));
    assert_rate(s.hashrate_avg, 44350.83e9);
    // devs, devdetails, config, coin and check read without a model of their own.
    let s = read(Family::Avalon, &[(Devs, &f("devs"))]);
    assert!(s.boards.is_empty());
}

// ------------------------------------------------------------------------------------- Hiveon, VNish

#[test]
fn hiveon_s9() {
    let f = |c: &str| fx(&format!("hiveon/S9-Hiveon_{c}.json"));
    let s = read(
        Family::Hiveon,
        &[
            (Version, &f("version")),
            (Pools, &f("pools")),
            (Stats, &f("stats")),
        ],
    );
    assert_eq!(s.identity.make.as_deref(), Some("Antminer"));
    assert_eq!(s.identity.model.as_deref(), Some("S9"));
    assert_eq!(s.identity.firmware_kind, Some(FirmwareKind::Hiveon));
    assert_rate(s.hashrate, 11781.40e9);
    assert_rate(s.hashrate_avg, 11609.55e9);
    assert_rates(&board_rates(&s), &[3911.64e9, 3913.70e9, 3956.05e9]);
    assert_eq!(slots(&s), [0, 1, 2]);
    assert_eq!(
        temps_of(&s),
        (
            vec![vec![59.0], vec![50.0], vec![57.0]],
            vec![vec![74.0], vec![65.0], vec![72.0]]
        )
    );
    assert_eq!(fan_rpms(&s), [(4, 3840.0), (5, 4920.0)]);
    // "34.65 (AB)" W at 11.8 TH/s is no power reading.
    assert_eq!(s.power, None);
    assert_eq!(s.uptime, Some(69));
    // Two empty slots left out; dev-fee pools are pools.
    assert_eq!(s.pools.len(), 3);
    assert_eq!(s.pools[0].accepted, 3038);
}

#[test]
fn vnish_nicehash_s9_and_asicdip_s17() {
    let f = |c: &str| fx(&format!("vnish/S9-NiceHash_{c}.json"));
    let s = read(
        Family::Vnish,
        &[
            (Version, &f("version")),
            (Pools, &f("pools")),
            (Stats, &f("stats")),
        ],
    );
    assert_eq!(s.identity.model.as_deref(), Some("S9"));
    assert_eq!(s.identity.firmware.as_deref(), Some("vnish 3.8.6"));
    assert_eq!(s.identity.firmware_kind, Some(FirmwareKind::Vnish));
    assert_rate(s.hashrate, 12795.48e9);
    assert_rates(&board_rates(&s), &[4264.48e9, 4298.32e9, 4232.67e9]);
    assert_eq!(s.power, Some(1485.0), "chain_consumption 6..8");
    assert_eq!(fan_rpms(&s), [(4, 5400.0), (5, 5880.0)]);
    assert_eq!(s.pools.len(), 4);
    assert_eq!(s.pools[3].url, "DevFee");

    let f = |c: &str| fx(&format!("antminer_altfw/S17-asicdip_{c}.json"));
    let s = read(
        Family::Vnish,
        &[
            (Version, &f("version")),
            (Pools, &f("pools")),
            (Stats, &f("stats")),
        ],
    );
    assert_eq!(s.identity.model.as_deref(), Some("S17+"));
    assert_eq!(s.identity.firmware.as_deref(), Some("vnish 2.0.3"));
    assert_rate(s.hashrate, 77458.73e9);
    assert_rates(&board_rates(&s), &[24326.87e9, 26800.28e9, 26331.57e9]);
    assert_eq!(s.power, Some(991.0 + 1013.0 + 987.0));
    assert!(s.boards[0].has_chip_errors, "xxxxx on chain 1");
    assert_eq!(s.boards[0].board_temps, [55.0, 66.0, 51.0, 60.0]);
    assert_eq!(s.fan_duty, Some(100.0));
    assert_eq!(s.expected_fans, Some(4));
    assert!(!s.pools.is_empty());
}

#[test]
fn other_antminer_firmwares() {
    // mskminer S9 (rwglr without Hiveon): one fan in slot 6, chains 6..8.
    let f = |c: &str| fx(&format!("antminer_altfw/S9-mskminer_{c}.json"));
    let s = read(
        Family::Hiveon,
        &[
            (Version, &f("version")),
            (Pools, &f("pools")),
            (Stats, &f("stats")),
        ],
    );
    assert_eq!(s.identity.model.as_deref(), Some("S9 Pro"));
    assert_eq!(s.identity.firmware_kind, Some(FirmwareKind::Mskminer));
    assert_rate(s.hashrate, 9039.731e9);
    assert_eq!(s.power, Some(967.5));
    assert_eq!(fan_rpms(&s), [(5, 5280.0)]);
    assert_eq!(s.expected_fans, Some(1));
    assert!(!s.pools.is_empty());
    // mskminer S19 NoPIC: per-chain power summed.
    let f = |c: &str| {
        fx(&format!(
            "antminer_altfw/mskminer-S19NoPIC-2.6.0.39_rpc_{c}.json"
        ))
    };
    let s = read(
        Family::Hiveon,
        &[
            (Version, &f("version")),
            (Pools, &f("pools")),
            (Stats, &f("stats")),
        ],
    );
    assert_eq!(s.identity.model.as_deref(), Some("S19-88"));
    assert_rate(s.hashrate, 99989.59e9);
    assert_eq!(s.power, Some(1135.0 + 1103.0 + 1118.0));
    assert!(s.boards.iter().all(|b| b.chips == Some(88)));
    assert_eq!(s.boards[2].board_temps, [47.0, 43.0, 47.0, 43.0]);
    assert!(!s.pools.is_empty());
    // asicseer S9: stock dialect, its own firmware build.
    let f = |c: &str| fx(&format!("antminer_altfw/S9-asicseer_{c}.json"));
    let s = read(
        Family::Antminer,
        &[
            (Version, &f("version")),
            (Pools, &f("pools")),
            (Stats, &f("stats")),
        ],
    );
    assert_eq!(s.identity.firmware_kind, Some(FirmwareKind::Asicseer));
    assert_rates(&board_rates(&s), &[4467.65e9, 4431.33e9, 4503.15e9]);
    assert_eq!(temps_of(&s).1, [vec![87.0], vec![74.0], vec![86.0]]);
    assert!(!s.pools.is_empty());
}

#[test]
fn fan_units_are_explicit() {
    // Every fan of every family's fixtures is RPM; duty lives in `fan_duty` only.
    let s = read(
        Family::Avalon,
        &[(Stats, "cases/inputs/C-06_avalon_nano3_stats.bin")],
    );
    assert!(s.fans.iter().all(|f| f.unit == FanUnit::Rpm));
    assert_eq!(s.fan_duty, Some(41.0));
}

#[test]
fn generic_sealminer_identity_from_stats() {
    let f = |c: &str| fx(&format!("cgminer_generic/SealMiner-bdminer-2025_{c}.json"));
    let s = read(
        Family::Cgminer,
        &[
            (Version, &f("version")),
            (Summary, &f("summary")),
            (Pools, &f("pools")),
            (Stats, &f("stats")),
        ],
    );
    assert_eq!(
        (
            s.identity.make.as_deref(),
            s.identity.model.as_deref(),
            s.identity.mac.as_deref()
        ),
        (Some("SealMiner"), Some("A2"), Some("50:d4:48:4b:86:78"))
    );
    assert_eq!(s.identity.firmware.as_deref(), Some("bdminer 4.11.1"));
    assert!(s.hashrate.is_some_and(|h| h > 1e14));
    assert!(!s.pools.is_empty());
}

#[test]
fn antminer_new_api_structured_stats() {
    // `{"command":"stats","new_api":true}`: `STATS[0].chain[]` (shape per reference §2c).
    let stats = serde_json::json!({"STATUS":[{"STATUS":"S","Description":"cgminer 1.0.0"}],
        "STATS":[{"rate_unit":"GH","elapsed":3600,"rate_5s":200000.5,"rate_avg":199000.0,"rate_ideal":200000.0,
            "fan_num":4,"fan":["5340","5400","0","5400"],
            "chain":[
                {"index":0,"rate_real":66000.5,"asic_num":108,"temp_pcb":[40,42,55,57],"temp_chip":[60,62,75,77],"sn":"SN0","asic":"oooo oooo"},
                {"index":1,"rate_real":67000.0,"asic_num":108,"temp_pcb":[41,0,-273,56],"temp_chip":["61","",76],"sn":"","asic":"ooxo"},
                {"index":2,"rate_real":"","asic_num":0}]}]});
    let mut r = Replies::default();
    r.set(Stats, stats);
    r.set(Version, parsed(&fx("antminer/S19Pro-2022fw_version.json")));
    let s = dialect::normalize(Family::Antminer, &r);
    assert_rate(s.hashrate, 200000.5e9);
    assert_rate(s.hashrate_avg, 199000.0e9);
    assert_rate(s.hashrate_ideal, 200000.0e9);
    assert_eq!(s.uptime, Some(3600));
    assert_eq!(slots(&s), [0, 1], "an empty chain is no board");
    assert_rates(&board_rates(&s), &[66000.5e9, 67000.0e9]);
    assert_eq!(s.boards[0].board_temps, [40.0, 42.0, 55.0, 57.0]);
    assert_eq!(
        s.boards[1].board_temps,
        [41.0, 56.0],
        "0 and -273 are no readings"
    );
    assert_eq!(s.boards[1].chip_temps, [61.0, 76.0]);
    assert_eq!(s.boards[0].serial.as_deref(), Some("SN0"));
    assert!(s.boards[1].has_chip_errors && !s.boards[0].has_chip_errors);
    assert_eq!(
        fan_rpms(&s),
        [(0, 5340.0), (1, 5400.0), (2, 0.0), (3, 5400.0)]
    );
    assert_eq!(s.has_fan_failure(), Some(true));
}
