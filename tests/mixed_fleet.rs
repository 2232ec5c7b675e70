//! The daemon against a mixed fleet of every family, some of them faulty: each miner's
//! detected family and model, and the hashrate Foreman receives, match what the simulator
//! serves.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::net::Ipv4Addr;
use std::time::Duration;

use pickaxe_sim::fleet::Malform;
use pickaxe_sim::{Fault, FleetConfig};
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_family_is_detected_and_read_exactly() {
    let fleet = FleetConfig {
        count: 27,
        base: Ipv4Addr::new(127, 81, 0, 1),
        mix: pickaxe_sim::parse_mix(
            "antminer=6,braiins=4,luxos=3,whatsminer=6,avalon=4,hiveon=1,vnish=1,cgminer=2",
        )
        .unwrap(),
        // The last miners misbehave the way real ones do; all but the hung one still read.
        faults: vec![
            (Fault::Malformed(Malform::RawNewline), 1),
            (
                Fault::Split {
                    chunk: 1000,
                    delay_ms: 20,
                },
                1,
            ),
            (Fault::Hang, 1),
        ],
        ..FleetConfig::default()
    };
    let site = Site::start_with(fleet).await;
    let config = site.write_config("2s", "");
    let db = site.db_path();
    let daemon = Daemon::spawn(&config, "daemon.log");
    let miners = site.fleet.miners();
    let hung = site
        .fleet
        .reports(false)
        .into_iter()
        .find(|r| r.fault == Fault::Hang)
        .map(|r| r.addr)
        .unwrap();
    let foreman = site.foreman.clone();
    let expected = miners.len() - 1;
    let deadline = std::time::Instant::now() + Duration::from_secs(40);
    loop {
        let samples = foreman.samples();
        if samples.len() == expected && samples.iter().all(|m| m.samples.len() >= 2) {
            break;
        }
        if std::time::Instant::now() > deadline {
            let store = pickaxe::store::Store::open_read_only(&db).await.unwrap();
            let missing: Vec<String> = store
                .miner_status()
                .await
                .unwrap()
                .into_iter()
                .filter(|r| {
                    !samples
                        .iter()
                        .any(|m| m.ip == r.ip && m.port == r.port && m.samples.len() >= 2)
                })
                .map(|r| {
                    format!(
                        "{}:{} {:?} {:?} {:?}",
                        r.ip, r.port, r.family, r.model, r.last_error
                    )
                })
                .collect();
            panic!("miners without two samples: {missing:#?}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(daemon.terminate().await.success());

    let store = pickaxe::store::Store::open_read_only(&db).await.unwrap();
    let status = store.miner_status().await.unwrap();
    let samples = site.foreman.samples();
    for miner in &miners {
        let ip = miner.addr.ip().to_string();
        let row = status
            .iter()
            .find(|r| r.ip == ip && r.port == miner.addr.port())
            .unwrap_or_else(|| panic!("{} has no status", miner.addr));
        if miner.addr == hung {
            assert!(row.last_seen_ms.is_none(), "the hung miner never answered");
            assert!(
                row.last_error.as_deref().unwrap_or("").contains("timeout"),
                "{row:?}"
            );
            continue;
        }
        let family = format!("{:?}", miner.family).to_lowercase();
        let family = if miner.v3_addr.is_some() {
            "whatsminer-v3".to_string()
        } else {
            family
        };
        assert_eq!(
            row.family.as_deref(),
            Some(family.as_str()),
            "{} ({})",
            miner.addr,
            miner.model
        );
        let squash = |s: &str| s.to_lowercase().replace([' ', '-', '_'], "");
        let model = row.model.clone().unwrap_or_default();
        assert!(
            squash(&model).contains(&squash(&miner.model_name)),
            "{} ({}): detected model {model:?}, simulator serves {:?}",
            miner.addr,
            miner.model,
            miner.model_name
        );
        // Foreman's latest sample carries the rate the miner serves (±3 % jitter).
        let received = samples
            .iter()
            .find(|m| m.ip == ip && m.port == miner.addr.port())
            .unwrap();
        let last = received.samples.last().unwrap();
        let hs: f64 = last.hash_rate.parse().unwrap();
        let served = miner.hashrate_ghs * 1e9;
        assert!(
            (hs - served).abs() <= served * 0.05 + 1.0,
            "{} ({}): Foreman got {hs:e} H/s, simulator serves {served:e}",
            miner.addr,
            miner.model
        );
    }
    store.close().await;
}
