//! `pickaxe::miner::poll` against every simulated Antminer model: detection, the joined or
//! single-command path each firmware takes, and the values read back, twice per miner (the
//! second poll runs on what the first one learned).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::Ipv4Addr;
use std::time::Duration;

use pickaxe::miner::{poll, Limits, MinerMemory};
use pickaxe::model::Family;
use pickaxe_sim::{start_fleet, FleetConfig};

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
    let limits = Limits {
        connect_timeout: Duration::from_secs(1),
        read_timeout: Duration::from_secs(3),
        max_reply_bytes: 1 << 20,
    };
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
            assert!(s.pools.iter().all(|p| !p.url.is_empty()), "{m:?}");
            assert!(!s.pools.is_empty(), "{m:?}");
        }
    }
    fleet.shutdown().await;
}
