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

/// A minimal HTTP CONNECT proxy on loopback that records where each tunnel went.
async fn connect_proxy() -> (u16, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let tunnels = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = tunnels.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut client, _)) = listener.accept().await else {
                return;
            };
            let seen = seen.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") && head.len() < 8192 {
                    if client.read_exact(&mut byte).await.is_err() {
                        return;
                    }
                    head.push(byte[0]);
                }
                let head = String::from_utf8_lossy(&head);
                let Some(target) = head
                    .lines()
                    .next()
                    .and_then(|l| l.strip_prefix("CONNECT "))
                    .and_then(|l| l.split(' ').next())
                    .map(str::to_string)
                else {
                    let _ = client.write_all(b"HTTP/1.1 405 CONNECT only\r\n\r\n").await;
                    return;
                };
                seen.lock().unwrap().push(target.clone());
                let Ok(mut upstream) = tokio::net::TcpStream::connect(&target).await else {
                    let _ = client.write_all(b"HTTP/1.1 502 Bad Gateway\r\n\r\n").await;
                    return;
                };
                if client
                    .write_all(b"HTTP/1.1 200 Connection Established\r\n\r\n")
                    .await
                    .is_ok()
                {
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
                }
            });
        }
    });
    (port, tunnels)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_go_through_the_https_proxy_of_the_environment() {
    let site = Site::start(5, Ipv4Addr::new(127, 97, 0, 1), "").await;
    let (proxy_port, tunnels) = connect_proxy().await;
    let config = site.write_config("1s", "");
    let proxy = format!("http://127.0.0.1:{proxy_port}");
    let daemon = Daemon::spawn_with_env(
        &config,
        "daemon.log",
        &[("HTTPS_PROXY", proxy.as_str()), ("NO_PROXY", "")],
    );
    let foreman = site.foreman.clone();
    wait_until(Duration::from_secs(30), "a cycle delivered", || {
        foreman.summary().samples_received >= 5
    })
    .await;
    let foreman_host = site
        .foreman
        .url()
        .trim_start_matches("https://")
        .to_string();
    let went = tunnels.lock().unwrap().clone();
    assert!(!went.is_empty(), "nothing went through the proxy");
    assert!(
        went.iter().all(|t| *t == foreman_host),
        "tunnels to {went:?}, expected only {foreman_host}"
    );
    drop(daemon);
}
