//! `pickaxe::miner::poll` against every simulated model of every family: detection, the joined
//! or single-command path each firmware takes, and the values read back, twice per miner (the
//! second poll runs on what the first one learned).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::Ipv4Addr;
use std::time::Duration;

use pickaxe::miner::{poll, Limits, MinerMemory};
use pickaxe::model::Family;
use pickaxe_sim::{start_fleet, FleetConfig};

fn limits() -> Limits {
    Limits {
        connect_timeout: Duration::from_secs(1),
        read_timeout: Duration::from_secs(3),
        max_reply_bytes: 1 << 20,
    }
}

#[tokio::test]
async fn every_simulated_model_reads_back() {
    let models = ["s19pro", "s19-overheating", "s17", "t15", "s9k", "s9"];
    let fleet = start_fleet(FleetConfig {
        count: models.len(),
        base: Ipv4Addr::new(127, 44, 0, 1),
        port: 0,
        mix: models.iter().map(|m| (m.to_string(), 1)).collect(),
        ..FleetConfig::default()
    })
    .await
    .unwrap();
    let limits = limits();
    for m in fleet.miners() {
        let mut memory = MinerMemory::default();
        for round in 0..2 {
            let s = poll(m.addr, &mut memory, &limits)
                .await
                .unwrap_or_else(|e| panic!("{m:?} round {round}: {e}"));
            let expected_model = m.type_name.strip_prefix("Antminer ").unwrap();
            assert_eq!(memory.family(), Some(Family::Antminer), "{m:?}");
            assert!(
                memory.multicommand().is_some(),
                "{m:?}: join support learned"
            );
            assert_eq!(s.family, Some(Family::Antminer));
            assert_eq!(s.identity.make.as_deref(), Some("Antminer"));
            assert_eq!(s.identity.model.as_deref(), Some(expected_model), "{m:?}");
            let rate = s.hashrate.unwrap_or_else(|| panic!("{m:?}: no hashrate"));
            assert!(rate.is_finite() && rate >= 0.0);
            assert_eq!(s.is_hashing, Some(rate > 0.0));
            assert_eq!(s.boards.len(), 3, "{m:?}");
            assert!(s.fans.len() >= 2, "{m:?}");
            // The simulator writes its configured pools into the captures (none here: it then
            // leaves the URLs empty, which are unused slots, never pools).
            assert!(s.pools.iter().all(|p| !p.url.is_empty()), "{m:?}");
        }
    }
    fleet.shutdown().await;
}

#[tokio::test]
async fn every_simulated_family_is_detected_and_read() {
    let keys = [
        ("bos-s9", Family::Braiins),
        ("bosplus-s9", Family::Braiins),
        ("luxos-s19kpro", Family::LuxOs),
        ("m31s", Family::Whatsminer),
        ("m30s", Family::Whatsminer),
        ("m60s", Family::WhatsminerV3),
        ("avalonq", Family::Avalon),
        ("avalon1566", Family::Avalon),
        ("hiveon-s9", Family::Hiveon),
        ("vnish-s9", Family::Vnish),
        ("sealminer-a2", Family::Cgminer),
    ];
    let fleet = start_fleet(FleetConfig {
        count: keys.len(),
        base: Ipv4Addr::new(127, 44, 1, 1),
        port: 0,
        mix: keys.iter().map(|(k, _)| (k.to_string(), 1)).collect(),
        ..FleetConfig::default()
    })
    .await
    .unwrap();
    let mut seen = Vec::new();
    for m in fleet.miners() {
        let family = keys
            .iter()
            .find(|(k, _)| *k == m.model)
            .map(|(_, f)| *f)
            .unwrap();
        let mut memory = MinerMemory::default();
        if let Some(v3) = m.v3_addr {
            assert_eq!(v3.ip(), m.addr.ip());
            memory = memory.with_v3_port(v3.port());
        }
        for round in 0..2 {
            let s = poll(m.addr, &mut memory, &limits())
                .await
                .unwrap_or_else(|e| panic!("{m:?} round {round}: {e}"));
            assert_eq!(memory.family(), Some(family), "{m:?}");
            assert_eq!(s.family, Some(family), "{m:?}");
            if family != Family::Cgminer {
                let make = s.identity.make.as_deref().unwrap_or_default();
                assert!(make.eq_ignore_ascii_case(&m.make), "{m:?}: {make}");
                // We keep the hardware revision (`M31S V10`) where the firmware gives one.
                let model = s.identity.model.clone().unwrap_or_default();
                assert!(model.starts_with(&m.model_name), "{m:?}: {model}");
                assert!(!s.boards.is_empty(), "{m:?}");
            }
            if let Some(mac) = &m.mac {
                assert_eq!(s.identity.mac.as_ref(), Some(mac), "{m:?}");
            }
            let rate = s.hashrate.unwrap_or_else(|| panic!("{m:?}: no hashrate"));
            let nominal = m.hashrate_ghs * 1e9;
            assert!(
                (rate - nominal).abs() <= nominal * 0.05 + 1.0,
                "{m:?}: read {rate}, serves about {nominal}"
            );
            assert_eq!(s.is_hashing, Some(rate > 0.0), "{m:?}");
        }
        seen.push(m.model.clone());
    }
    assert_eq!(seen.len(), keys.len());
    fleet.shutdown().await;
}
