//! A soak compressed in time: a fleet polled every second through a fault schedule of every
//! kind Foreman can throw (outage, 429, 5xx, 400, 413, a slow reply that commits before the
//! client gives up, a revoked key). Afterwards Foreman holds every sample exactly once with
//! its original timestamp, and the drop counters account for every sample that is missing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::net::Ipv4Addr;
use std::time::Duration;

use pickaxe::store::counter as names;
use pickaxe_sim::foreman::ScheduleEntry;
use pickaxe_sim::{ForemanFault, OutageMode};
use support::*;

const MINERS: usize = 200;

fn at(secs: f64, fault: ForemanFault) -> ScheduleEntry {
    ScheduleEntry {
        at_secs: secs,
        fault: Some(fault),
        clear: false,
    }
}

fn clear(secs: f64) -> ScheduleEntry {
    ScheduleEntry {
        at_secs: secs,
        fault: None,
        clear: true,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_fault_kind_and_still_exactly_once() {
    let site = Site::start(MINERS, Ipv4Addr::new(127, 71, 0, 1), "").await;
    // A short max_age so the long outage really hits a bound and drops (counted) samples.
    let config = site.write_config("1s", "");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        text.replacen("[store]\n", "[store]\nmax_age = \"6s\"\n", 1),
    )
    .unwrap();
    let db = site.db_path();
    let daemon = Daemon::spawn(&config, "daemon.log");
    let foreman = site.foreman.clone();
    wait_until(Duration::from_secs(30), "the first cycle delivered", || {
        foreman.summary().samples_received >= MINERS as u64
    })
    .await;

    let key = site.foreman.api_key();
    site.foreman
        .schedule(vec![
            at(
                0.0,
                ForemanFault::Outage {
                    mode: OutageMode::Refuse,
                    seconds: None,
                },
            ),
            clear(10.0),
            at(
                11.0,
                ForemanFault::RateLimit {
                    count: 4,
                    retry_after: Some(1),
                },
            ),
            at(
                14.0,
                ForemanFault::ServerError {
                    count: 4,
                    status: 503,
                },
            ),
            at(
                17.0,
                ForemanFault::Reject {
                    count: 1,
                    message: "simulated bad batch".into(),
                },
            ),
            at(19.0, ForemanFault::MaxBody { bytes: 2_500 }),
            clear(23.0),
            at(
                24.0,
                ForemanFault::SlowCommit {
                    count: 1,
                    seconds: 7.0,
                },
            ),
            at(32.0, ForemanFault::RevokeKey),
            at(36.0, ForemanFault::SetKey { key: key.clone() }),
            clear(36.5),
        ])
        .unwrap();
    tokio::time::sleep(Duration::from_secs(40)).await;
    wait_for(Duration::from_secs(60), "the backlog drained", || async {
        backlog(&db).await.batches == 0
    })
    .await;
    assert!(daemon.terminate().await.success());

    let summary = site.foreman.summary();
    let taken = counter(&db, names::SAMPLES_TAKEN).await;
    let dropped = counter(&db, "dropped_samples_max_age").await
        + counter(&db, "dropped_samples_max_bytes").await
        + counter(&db, "dropped_samples_disk_low").await;
    let dead = counter(&db, names::DEAD_LETTER_SAMPLES).await;
    eprintln!(
        "taken {taken}, received {}, dropped {dropped}, dead {dead}, summary {summary:?}",
        summary.samples_received
    );

    // Every fault kind was really met.
    let f = &summary.faults;
    assert!(
        f.rate_limited > 0 && f.server_error > 0 && f.reject > 0,
        "{f:?}"
    );
    assert!(
        f.max_body > 0 && f.slow_commit > 0 && f.revoked > 0,
        "{f:?}"
    );
    assert!(
        summary.batches_duplicate > 0,
        "the timed-out upload was re-sent under its key"
    );
    assert!(dropped > 0, "the outage should have hit max_age");

    assert_eq!(summary.samples_duplicate, 0, "no sample arrived twice");
    assert_eq!(
        summary.samples_received as i64 + dropped + dead,
        taken,
        "every sample taken is delivered, or counted as dropped or refused"
    );
    assert_eq!(
        dead, 0,
        "a one-off 400 is retried in halves, not dead-lettered"
    );
    // Original timestamps: each sample is stamped with a cycle the miner really served.
    for miner in site.foreman.samples() {
        let served = site
            .fleet
            .stats_served(format!("{}:{}", miner.ip, miner.port).parse().unwrap());
        let mut last = None;
        for s in &miner.samples {
            assert_eq!(s.count, 1);
            let ts = parse_timestamp(&s.timestamp);
            assert!(
                last.is_none_or(|l| l < ts),
                "per-miner timestamps are unique and ordered"
            );
            last = Some(ts);
            assert!(
                served
                    .iter()
                    .any(|p| p.at >= ts - chrono::Duration::milliseconds(5)
                        && p.at <= ts + chrono::Duration::milliseconds(1900)),
                "{}: {} is not the time of a served poll",
                miner.ip,
                s.timestamp
            );
        }
    }
}
