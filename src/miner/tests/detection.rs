//! Detection from each family's `version` / `devdetails` replies, including the traps where a
//! firmware shares a generic key with another (reference §11).

use super::*;
use crate::miner::detect::{classify, still_matches};
use crate::miner::dialect::Command::{Devdetails, Stats, Summary, Version, WmStatus};
use crate::model::FirmwareKind;

fn of(version: Option<&str>, devdetails: Option<&str>) -> (Family, Option<FirmwareKind>) {
    let v = version.map(parsed);
    let d = devdetails.map(parsed);
    classify(v.as_ref(), d.as_ref())
}

#[test]
fn every_version_fixture_names_its_family() {
    use Family::*;
    use FirmwareKind as K;
    let cases: &[(&str, Family, Option<FirmwareKind>)] = &[
        (
            "antminer/S19Pro-2022fw_version.json",
            Antminer,
            Some(K::Stock),
        ),
        ("antminer/S9_version.json", Antminer, Some(K::Stock)),
        ("antminer/S9k_version.json", Antminer, Some(K::Stock)),
        ("antminer/S17_version.json", Antminer, Some(K::Stock)),
        ("antminer/T15_version.json", Antminer, Some(K::Stock)),
        ("antminer/L3_version.json", Antminer, Some(K::Stock)),
        ("antminer/Z11_version.json", Antminer, Some(K::Stock)),
        ("antminer/B3_version.json", Antminer, Some(K::Stock)),
        (
            "antminer_altfw/S9-asicseer_version.json",
            Antminer,
            Some(K::Asicseer),
        ),
        (
            "antminer_altfw/S9-mskminer_version.json",
            Hiveon,
            Some(K::Mskminer),
        ),
        (
            "antminer_altfw/mskminer-S19NoPIC-2.6.0.39_rpc_version.json",
            Hiveon,
            Some(K::Mskminer),
        ),
        // asicdip writes no `Type` in `version`: generic until its stats say VNish.
        ("antminer_altfw/S17-asicdip_version.json", Cgminer, None),
        ("hiveon/S9-Hiveon_version.json", Hiveon, Some(K::Hiveon)),
        ("vnish/S9-NiceHash_version.json", Vnish, Some(K::Vnish)),
        ("luxos/S19kPro-2025.4_version.json", LuxOs, Some(K::LuxOs)),
        ("braiins/S9-bOS_version.json", Braiins, Some(K::BraiinsOs)),
        (
            "braiins/S9-bOSplus_version.json",
            Braiins,
            Some(K::BraiinsOs),
        ),
        (
            "braiins/S9-bOS-S9_version.json",
            Braiins,
            Some(K::BraiinsOs),
        ),
        (
            "braiins/S9-bOSplus-S9_version.json",
            Braiins,
            Some(K::BraiinsOs),
        ),
        (
            "braiins/bos-21.09_version.json",
            Braiins,
            Some(K::BraiinsOs),
        ),
        (
            "braiins/bos-24.09_version.json",
            Braiins,
            Some(K::BraiinsOs),
        ),
        (
            "avalon/Avalon1566-24102401_rpc_version.json",
            Avalon,
            Some(K::Stock),
        ),
        (
            "avalon/AvalonQ-25052801_version.json",
            Avalon,
            Some(K::Stock),
        ),
        ("auradine/FluxOS-v1_version.json", Cgminer, None),
        (
            "cgminer_generic/HammerD10-2023-05-28_rpc_version.json",
            Cgminer,
            None,
        ),
        (
            "cgminer_generic/SealMiner-bdminer-2025_version.json",
            Cgminer,
            None,
        ),
    ];
    for &(file, family, kind) in cases {
        assert_eq!(of(Some(&fx(file)), None), (family, kind), "{file}");
    }
    // Every version fixture of the stock directory is stock Antminer.
    for entry in std::fs::read_dir(shared_path("fixtures/antminer")).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().to_string();
        if name.ends_with("_version.json") || name.ends_with("_version_v2.json") {
            let rel = fx(&format!("antminer/{name}"));
            assert_eq!(of(Some(&rel), None).0, Antminer, "{name}");
        }
    }
    // Text-form version (C-11): an Avalon.
    assert_eq!(
        of(Some("cases/inputs/C-11_cgminer_text_version.bin"), None).0,
        Avalon
    );
    assert_eq!(
        of(Some("cases/inputs/C-16a_hiveon_version.bin"), None).0,
        Hiveon
    );
}

#[test]
fn devdetails_traps_and_markers() {
    // Braiins lists "Antminer" models in devdetails: its own marker decides.
    let bos = serde_json::json!({"STATUS":[{"STATUS":"S","Code":69,"Description":"BOSer boser-buildroot 0.1.0-75912fc7"}],
        "DEVDETAILS":[{"DEVDETAILS":0,"Name":"","ID":6,"Driver":"bitmain","Kernel":"","Model":"Bitmain Antminer S19 XP","Chips":110}]});
    assert_eq!(classify(None, Some(&bos)).0, Family::Braiins);
    // Stock Antminer refuses devdetails (code 45): the version decides.
    let denied = parsed("cases/inputs/C-16b_access_denied.bin");
    let s19 = parsed(&fx("antminer/S19Pro-2022fw_version.json"));
    assert_eq!(classify(Some(&s19), Some(&denied)).0, Family::Antminer);
    // Whatsminer: `btminer` in the status of any reply, `bitmicro` as the driver.
    let wm = serde_json::json!({"STATUS":[{"STATUS":"S","Code":69,"Msg":"Device Details","Description":"btminer"}],
        "DEVDETAILS":[{"DEVDETAILS":0,"Name":"SM","ID":0,"Driver":"bitmicro","Kernel":"","Model":"M30S++V40"}]});
    assert_eq!(classify(None, Some(&wm)).0, Family::Whatsminer);
    let refused = serde_json::json!({"STATUS":[{"STATUS":"E","Code":14,"Msg":"Invalid command","Description":"whatsminer v1.4.0"}]});
    assert_eq!(classify(Some(&refused), None).0, Family::Whatsminer);
    // Avalon Q devdetails: driver "avalon".
    assert_eq!(
        of(None, Some(&fx("avalon/AvalonQ-25052801_devdetails.json"))).0,
        Family::Avalon
    );
    // Nothing at all: generic.
    assert_eq!(classify(None, None), (Family::Cgminer, None));
}

#[test]
fn identity_at_detection() {
    // Whatsminer: model from devdetails, firmware from get_version, MAC/hostname from get_miner_info.
    let mut r = Replies::default();
    r.set(
        Devdetails,
        serde_json::json!({"STATUS":[{"STATUS":"S","Description":"btminer"}],
            "DEVDETAILS":[{"ID":0,"Driver":"bitmicro","Model":"M30S++V40"}]}),
    );
    r.set(
        Command::WmGetVersion,
        parsed(&fx("whatsminer/apiv2-2023_get_version.json")),
    );
    r.set(
        Command::WmGetMinerInfo,
        parsed(&fx("whatsminer/apiv2-2023_get_miner_info.json")),
    );
    let id = dialect::normalize(Family::Whatsminer, &r).identity;
    assert_eq!(
        (
            id.make.as_deref(),
            id.model.as_deref(),
            id.firmware.as_deref(),
            id.mac.as_deref()
        ),
        (
            Some("WhatsMiner"),
            Some("M30S++ V40"),
            Some("20230803.11.REL"),
            Some("d4:01:02:03:04:05")
        )
    );
    // The v2 firmware date decides API v2 vs v3.
    for (file, v3) in [
        ("whatsminer/apiv2-2023_get_version.json", false),
        ("whatsminer/apiv1-20210322_get_version.json", false),
    ] {
        let v = parsed(&fx(file));
        let date = dialect::whatsminer::msg(&v)
            .and_then(|m| reply::field_str(m, "fw_ver"))
            .and_then(detect::whatsminer_fw_date)
            .unwrap();
        assert_eq!(date >= detect::WHATSMINER_V3_SINCE, v3, "{file}");
    }
    // Avalon: model, firmware and MAC from version.
    let id = read(
        Family::Avalon,
        &[(Version, &fx("avalon/AvalonQ-25052801_version.json"))],
    )
    .identity;
    assert_eq!(
        (id.model.as_deref(), id.mac.as_deref()),
        (Some("Q"), Some("aa:bb:cc:dd:ee:ff"))
    );
}

#[test]
fn replies_that_stop_matching_are_noticed() {
    let luxos_stats = replies(&[(Stats, &fx("luxos/S19kPro-2025.4_stats.json"))]);
    assert!(!still_matches(Family::Antminer, &luxos_stats));
    assert!(still_matches(Family::LuxOs, &luxos_stats));
    let s19 = replies(&[(Version, &fx("antminer/S19Pro-2022fw_version.json"))]);
    assert!(still_matches(Family::Antminer, &s19));
    assert!(!still_matches(Family::Braiins, &s19));
    assert!(!still_matches(Family::Cgminer, &s19));
    assert!(!still_matches(Family::Hiveon, &s19));
    // asicdip: generic version, VNish stats.
    let asicdip = replies(&[
        (Version, &fx("antminer_altfw/S17-asicdip_version.json")),
        (Stats, &fx("antminer_altfw/S17-asicdip_stats.json")),
    ]);
    assert!(still_matches(Family::Vnish, &asicdip));
    assert!(!still_matches(Family::Antminer, &asicdip));
    // Whatsminer: summary shape, and the Whatsminer-shaped status.
    let wm = replies(&[(Summary, &fx("whatsminer/M20S-old-firmware_summary.json"))]);
    assert!(still_matches(Family::Whatsminer, &wm));
    let not_wm = replies(&[(Summary, &fx("antminer/S19Pro-2022fw_summary.json"))]);
    assert!(!still_matches(Family::Whatsminer, &not_wm));
    let status = replies(&[(WmStatus, "cases/inputs/C-14a_wm_status_mining.bin")]);
    assert!(still_matches(Family::Whatsminer, &status));
    // Avalon without a version reply: its stats blob.
    let av = replies(&[(Stats, "cases/inputs/C-06_avalon_nano3_stats.bin")]);
    assert!(still_matches(Family::Avalon, &av));
    assert!(!still_matches(
        Family::Avalon,
        &replies(&[(Stats, &fx("antminer/S17_stats.json"))])
    ));
}
