//! Store and forward under faults: the real daemon against the fake Foreman.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::net::Ipv4Addr;
use std::process::Command;
use std::time::Duration;

use pickaxe::store::counter as names;
use pickaxe_sim::{ForemanFault, OutageMode};
use rand::Rng;
use support::*;

const MINERS: usize = 30;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_and_metrics_show_an_outage_and_its_backlog() {
    let site = Site::start(MINERS, Ipv4Addr::new(127, 51, 0, 1), "").await;
    let port = free_port();
    let config = site.write_config("1s", &format!("[metrics]\nlisten = \"127.0.0.1:{port}\"\n"));
    let daemon = Daemon::spawn(&config, "daemon.log");
    let foreman = site.foreman.clone();
    wait_until(Duration::from_secs(30), "a cycle delivered", || {
        foreman.summary().samples_received >= MINERS as u64
    })
    .await;
    site.foreman.inject(ForemanFault::Outage {
        mode: OutageMode::Unavailable,
        seconds: None,
    });
    let db = site.db_path();
    wait_for(Duration::from_secs(20), "two cycles buffered", || async {
        backlog(&db).await.samples >= 2 * MINERS as i64
    })
    .await;

    let metrics = scrape_metrics(port).await;
    let value = |name: &str| metric_value(&metrics, name);
    assert!(value("pickaxe_buffer_samples") >= 2.0 * MINERS as f64);
    assert_eq!(value("pickaxe_uplink_up"), 0.0);
    assert!(value("pickaxe_buffer_oldest_age_seconds") >= 1.0);
    assert!(metrics.contains("pickaxe_dropped_samples_total{reason=\"max_bytes\"} 0"));

    let out = Command::new(env!("CARGO_BIN_EXE_pickaxe"))
        .args(["status", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("uplink:         retrying: HTTP 503"),
        "{text}"
    );
    assert!(
        text.contains(&format!("miners:         {MINERS}")),
        "{text}"
    );
    assert!(
        !text.contains(&site.foreman.api_key()),
        "the key leaked into status"
    );

    site.foreman.clear_faults();
    wait_for(Duration::from_secs(30), "the backlog drained", || async {
        backlog(&db).await.batches == 0
    })
    .await;
    assert!(daemon.terminate().await.success());
    assert!(
        !std::fs::read_to_string(config.with_file_name("daemon.log"))
            .unwrap()
            .contains(&site.foreman.api_key())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_buffer_is_set_aside_and_the_agent_runs() {
    let site = Site::start(MINERS, Ipv4Addr::new(127, 52, 0, 1), "").await;
    let config = site.write_config("1s", "");
    let db = site.db_path();
    std::fs::create_dir_all(db.parent().unwrap()).unwrap();
    let mut junk = b"SQLite format 3\0".to_vec();
    junk.extend(std::iter::repeat_n(0xA5u8, 20_000));
    std::fs::write(&db, &junk).unwrap();

    let daemon = Daemon::spawn(&config, "daemon.log");
    let foreman = site.foreman.clone();
    wait_until(
        Duration::from_secs(30),
        "samples delivered from a fresh buffer",
        || foreman.summary().samples_received >= 2 * MINERS as u64,
    )
    .await;
    assert!(daemon.terminate().await.success());
    let aside: Vec<_> = std::fs::read_dir(db.parent().unwrap())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("pickaxe.db.corrupt-")
        })
        .collect();
    assert_eq!(aside.len(), 1, "the corrupt file is kept aside");
    assert_eq!(std::fs::read(aside[0].path()).unwrap(), junk);
    assert_eq!(counter(&db, names::CORRUPT_RESETS).await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_sigkills_during_upload_lose_nothing_and_duplicate_nothing() {
    let site = Site::start(MINERS, Ipv4Addr::new(127, 53, 0, 1), "").await;
    let config = site.write_config("1s", "");
    let db = site.db_path();
    let mut rng = rand::rng();
    for round in 0..20 {
        // Slow answers keep uploads in flight, so kills land mid-request too.
        site.foreman.inject(ForemanFault::Slow {
            count: 2,
            seconds: 0.3,
        });
        let mut daemon = Daemon::spawn(&config, &format!("daemon-{round}.log"));
        tokio::time::sleep(Duration::from_millis(rng.random_range(300..1500))).await;
        daemon.assert_running();
        daemon.kill_hard();
    }
    site.foreman.clear_faults();
    let daemon = Daemon::spawn(&config, "daemon-final.log");
    wait_for(
        Duration::from_secs(60),
        "everything stored has been delivered",
        || async { backlog(&db).await.batches == 0 },
    )
    .await;
    assert!(daemon.terminate().await.success());

    let taken = counter(&db, names::SAMPLES_TAKEN).await;
    let summary = site.foreman.summary();
    assert!(
        taken >= 20 * MINERS as i64,
        "only {taken} samples were taken"
    );
    assert_eq!(summary.samples_duplicate, 0, "no sample may arrive twice");
    assert_eq!(
        summary.samples_received as i64, taken,
        "every stored sample arrived"
    );
    let cycles = counter(&db, names::CYCLES).await;
    // Each of the 20 kills may cost the cycle being polled, nothing more.
    assert_samples_match_polls(&site, cycles, 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limiting_is_honoured_and_nothing_is_lost() {
    let site = Site::start(MINERS, Ipv4Addr::new(127, 54, 0, 1), "").await;
    let config = site.write_config("1s", "[metrics]\nenabled = false\n");
    let db = site.db_path();
    let daemon = Daemon::spawn(&config, "daemon.log");
    let foreman = site.foreman.clone();
    wait_until(Duration::from_secs(30), "a cycle delivered", || {
        foreman.summary().samples_received >= MINERS as u64
    })
    .await;
    let before = site.foreman.summary().requests.faulted;
    // Ten 429s asking for 2 s each: the agent must wait at least that long between tries.
    site.foreman.inject(ForemanFault::RateLimit {
        count: 10,
        retry_after: Some(2),
    });
    let started = std::time::Instant::now();
    tokio::time::sleep(Duration::from_secs(6)).await;
    let answered_429 = site.foreman.summary().requests.faulted - before;
    assert!(
        answered_429 <= 4,
        "{answered_429} requests in 6 s despite Retry-After: 2"
    );
    assert!(
        answered_429 >= 2,
        "the agent stopped retrying ({answered_429})"
    );
    site.foreman.clear_faults();
    wait_for(Duration::from_secs(30), "the backlog drained", || async {
        backlog(&db).await.batches == 0
    })
    .await;
    assert!(started.elapsed() > Duration::from_secs(6));
    assert!(daemon.terminate().await.success());
    let taken = counter(&db, names::SAMPLES_TAKEN).await;
    let summary = site.foreman.summary();
    assert_eq!(summary.samples_received as i64, taken);
    assert_eq!(summary.samples_duplicate, 0);
}

/// C-23: Foreman answers 500 to every batch holding one bad sample and 2xx to the rest. The
/// batch is split until the sample is alone and set aside; everything else arrives once, and
/// the backlog behind it drains.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sample_foreman_always_fails_on_costs_only_itself() {
    const COUNT: usize = 20;
    let site = Site::start(COUNT, Ipv4Addr::new(127, 74, 0, 1), "").await;
    let db = site.db_path();
    let daemon = Daemon::spawn(&site.write_config("1s", ""), "daemon.log");
    let foreman = site.foreman.clone();
    wait_until(Duration::from_secs(30), "the first cycle delivered", || {
        foreman.summary().samples_received >= COUNT as u64
    })
    .await;
    let poisoned = site.fleet.miners()[3].addr.ip().to_string();
    site.foreman.inject(ForemanFault::Poison {
        ip: poisoned.clone(),
        count: 1,
        status: 500,
    });
    wait_for(
        Duration::from_secs(90),
        "the bad sample set aside",
        || async { counter(&db, names::DEAD_LETTER_SAMPLES).await == 1 },
    )
    .await;
    wait_for(Duration::from_secs(30), "the backlog drained", || async {
        backlog(&db).await.batches == 0
    })
    .await;
    let log = daemon.log_text();
    assert!(daemon.terminate().await.success());

    let summary = site.foreman.summary();
    let taken = counter(&db, names::SAMPLES_TAKEN).await;
    assert!(summary.faults.poison >= 5, "{:?}", summary.faults);
    assert_eq!(summary.samples_duplicate, 0);
    assert_eq!(
        summary.samples_received as i64 + 1,
        taken,
        "everything but the one bad sample arrived"
    );
    assert_eq!(counter(&db, names::DEAD_LETTER_SAMPLES).await, 1);
    assert!(log.contains("Foreman keeps failing on one batch"), "{log}");
}
