//! The main job end to end: the real `pickaxe` binary polls a simulated fleet, buffers in
//! SQLite and uploads to a fake Foreman over HTTPS, through an uplink outage and a SIGKILL.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::net::Ipv4Addr;
use std::time::Duration;

use pickaxe::store::counter as names;
use pickaxe_sim::{ForemanFault, OutageMode};
use support::*;

const MINERS: usize = 50;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outage_is_buffered_and_replayed_once_with_original_timestamps() {
    let site = Site::start(MINERS, Ipv4Addr::new(127, 41, 0, 1), "").await;
    let config = site.write_config("1s", "");
    let daemon = Daemon::spawn(&config, "daemon.log");
    let foreman = site.foreman.clone();
    wait_until(Duration::from_secs(30), "two cycles delivered", || {
        foreman.summary().samples_received >= 2 * MINERS as u64
    })
    .await;

    let outage_start = chrono::Utc::now();
    site.foreman.inject(ForemanFault::Outage {
        mode: OutageMode::Refuse,
        seconds: None,
    });
    let db = site.db_path();
    let cycles_before = counter(&db, names::CYCLES).await;
    wait_for(
        Duration::from_secs(20),
        "three cycles buffered during the outage",
        || async { counter(&db, names::CYCLES).await >= cycles_before + 3 },
    )
    .await;
    let buffered = backlog(&db).await;
    assert!(
        buffered.samples >= 3 * MINERS as i64,
        "buffered only {buffered:?}"
    );
    site.foreman.clear_faults();
    let outage_end = chrono::Utc::now();

    wait_for(Duration::from_secs(30), "the backlog drained", || async {
        backlog(&db).await.batches == 0
    })
    .await;
    let status = daemon.terminate().await;
    assert!(status.success(), "daemon exit: {status:?}");

    let taken = counter(&db, names::SAMPLES_TAKEN).await;
    let summary = site.foreman.summary();
    assert_eq!(backlog(&db).await.samples, 0, "nothing may stay behind");
    assert_eq!(
        summary.samples_received as i64, taken,
        "every sample taken arrived"
    );
    assert_eq!(summary.samples_duplicate, 0, "no sample arrived twice");

    // Samples stamped inside the outage arrived after it, with their original time.
    let mut replayed = 0;
    for miner in site.foreman.samples() {
        for s in &miner.samples {
            let ts = parse_timestamp(&s.timestamp);
            if ts > outage_start && ts < outage_end {
                assert!(
                    s.received_at >= outage_end,
                    "{} at {} arrived during the outage",
                    miner.ip,
                    s.timestamp
                );
                replayed += 1;
            }
        }
    }
    assert!(
        replayed >= 3 * MINERS,
        "only {replayed} samples were replayed"
    );
    let cycles = counter(&db, names::CYCLES).await;
    let checked = assert_samples_match_polls(&site, cycles, 0);
    assert_eq!(checked as i64, taken);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_loses_at_most_the_cycle_in_flight_and_duplicates_nothing() {
    let site = Site::start(MINERS, Ipv4Addr::new(127, 42, 0, 1), "").await;
    let config = site.write_config("1s", "");
    let db = site.db_path();
    let daemon = Daemon::spawn(&config, "daemon-1.log");
    let foreman = site.foreman.clone();
    wait_until(Duration::from_secs(30), "a cycle delivered", || {
        foreman.summary().samples_received >= MINERS as u64
    })
    .await;

    // Cut the uplink so the buffer holds several cycles, then kill the daemon outright.
    site.foreman.inject(ForemanFault::Outage {
        mode: OutageMode::Refuse,
        seconds: None,
    });
    let cycles = counter(&db, names::CYCLES).await;
    wait_for(Duration::from_secs(20), "cycles buffered", || async {
        counter(&db, names::CYCLES).await >= cycles + 3
    })
    .await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    daemon.kill_hard();
    let buffered_at_kill = backlog(&db).await;
    assert!(buffered_at_kill.samples >= 3 * MINERS as i64);

    // Back up, with a slow Foreman so the restarted daemon is killed mid-upload too.
    site.foreman.clear_faults();
    site.foreman.inject(ForemanFault::Slow {
        count: 2,
        seconds: 2.0,
    });
    let daemon = Daemon::spawn(&config, "daemon-2.log");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    daemon.kill_hard();

    let daemon = Daemon::spawn(&config, "daemon-3.log");
    wait_for(
        Duration::from_secs(30),
        "the backlog drained after restart",
        || async {
            backlog(&db).await.batches == 0 && counter(&db, names::CYCLES).await >= cycles + 6
        },
    )
    .await;
    let status = daemon.terminate().await;
    assert!(status.success());

    let taken = counter(&db, names::SAMPLES_TAKEN).await;
    let summary = site.foreman.summary();
    assert_eq!(summary.samples_duplicate, 0, "no sample may arrive twice");
    assert_eq!(
        summary.samples_received as i64, taken,
        "every stored sample arrived"
    );
    // Each kill may cost the one cycle that was being polled, nothing else.
    let stored = counter(&db, names::CYCLES).await;
    assert_samples_match_polls(&site, stored, 2);
}
