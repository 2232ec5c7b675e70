//! The poller against simulated miners on real sockets: one hung miner never delays the
//! others (case C-15), and every miner gets exactly one outcome per cycle.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use pickaxe::poller::Poller;
use pickaxe_sim::{start_fleet, Fault, FleetConfig};

#[tokio::test]
async fn a_hung_miner_costs_its_deadline_not_the_cycle() {
    let fleet = start_fleet(FleetConfig {
        count: 6,
        base: Ipv4Addr::new(127, 43, 0, 1),
        faults: vec![(Fault::Hang, 1)],
        ..FleetConfig::default()
    })
    .await
    .unwrap();
    let targets: Vec<_> = fleet.miners().iter().map(|m| m.addr).collect();
    let hung = *targets.last().unwrap();
    let deadline = Duration::from_secs(1);
    let mut poller = Poller::new(deadline, 100, 1 << 20);
    for _ in 0..3 {
        let started = Instant::now();
        let cycle = poller.run_cycle(&targets, chrono::Utc::now()).await;
        let took = started.elapsed();
        assert!(
            took < deadline + Duration::from_millis(500),
            "cycle took {took:?}"
        );
        assert_eq!(
            cycle.samples.len(),
            5,
            "the five healthy miners answer every cycle"
        );
        assert_eq!(cycle.records.len(), 6, "every miner has one outcome");
        let record = cycle
            .records
            .iter()
            .find(|r| r.ip == hung.ip().to_string())
            .unwrap();
        assert!(
            record.error.as_deref().unwrap_or("").starts_with("timeout"),
            "{record:?}"
        );
        for s in &cycle.samples {
            assert!(
                s.stats.hashrate.unwrap_or(0.0) > 1e12,
                "{} reported {:?}",
                s.ip,
                s.stats.hashrate
            );
        }
    }
    fleet.shutdown().await;
}
