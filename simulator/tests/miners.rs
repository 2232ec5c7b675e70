//! Simulated miners over real sockets on 127.0.0.0/8.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use common::{command, query};
use pickaxe_sim::fleet::parse_mix;
use pickaxe_sim::{start_fleet, Fault, Fleet, FleetConfig};
use serde_json::Value;

/// One miner of each model, on `base`:4028 upward.
async fn one_of_each(base: Ipv4Addr) -> Fleet {
    start_fleet(FleetConfig {
        count: 6,
        base,
        port: 4028,
        mix: parse_mix("s19pro=1,s19-overheating=1,s17=1,t15=1,s9k=1,s9=1").unwrap(),
        seed: 1,
        ..Default::default()
    })
    .await
    .unwrap()
}

fn addr_of(fleet: &Fleet, model: &str) -> SocketAddr {
    fleet
        .miners()
        .into_iter()
        .find(|m| m.model == model)
        .unwrap_or_else(|| panic!("no {model}"))
        .addr
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

#[tokio::test]
async fn version_and_stats_end_with_nul_and_close() {
    let fleet = one_of_each(Ipv4Addr::new(127, 201, 0, 1)).await;
    assert_eq!(fleet.miners()[0].addr.to_string(), "127.201.0.1:4028");
    let s19 = addr_of(&fleet, "s19pro");

    let v: Value = serde_json::from_str(&command(s19, "version").await).unwrap();
    assert_eq!(v["VERSION"][0]["Type"], "Antminer S19 Pro");
    assert_eq!(v["STATUS"][0]["Code"], 22);
    let when = v["STATUS"][0]["When"].as_i64().unwrap();
    assert!((when - now()).abs() <= 2, "When is live");

    let text = command(s19, "stats").await;
    let v: Value = serde_json::from_str(&text).unwrap();
    let ghs = v["STATS"][1]["GHS 5s"].as_f64().unwrap();
    assert!(
        (ghs / 110566.89 - 1.0).abs() <= 0.0301,
        "jitter within 3%: {ghs}"
    );
    let elapsed = v["STATS"][1]["Elapsed"].as_i64().unwrap();
    assert!((600..=30 * 86_400 + 5).contains(&elapsed), "{elapsed}");

    // The text form of a request works too.
    let raw = query(s19, b"summary|").await.unwrap();
    assert_eq!(raw.last(), Some(&0));
    let v: Value = serde_json::from_slice(&raw[..raw.len() - 1]).unwrap();
    assert_eq!(v["STATUS"][0]["Msg"], "Summary");
    assert!(v["SUMMARY"][0]["GHS 5s"].is_number());

    // Every model answers every report command.
    for m in fleet.miners() {
        for cmd in ["version", "summary", "pools", "stats", "devs"] {
            let t = command(m.addr, cmd).await;
            assert!(t.starts_with('{'), "{} {cmd}", m.model);
        }
        let r = fleet.report(m.addr).unwrap();
        assert!(r.served.stats >= 1 && r.served.devs == 1, "{r:?}");
    }
    fleet.shutdown().await;
}

#[tokio::test]
async fn joins_rejected_on_s19_and_served_on_s17() {
    let fleet = one_of_each(Ipv4Addr::new(127, 201, 1, 1)).await;
    let s19 = addr_of(&fleet, "s19pro");
    let s17 = addr_of(&fleet, "s17");

    let t = command(s19, "summary+stats+pools").await;
    let v: Value = serde_json::from_str(&t).unwrap();
    assert_eq!(v["STATUS"][0]["STATUS"], "E");
    assert_eq!(v["STATUS"][0]["Code"], 14);
    assert_eq!(v["STATUS"][0]["Msg"], "Invalid command");
    assert_eq!(v["STATUS"][0]["Description"], "cgminer 1.0.0");
    assert_eq!(v["id"], 1);
    assert!(fleet.stats_served(s19).is_empty());

    let t = command(s17, "summary+stats+pools").await;
    let v: Value = serde_json::from_str(&t).unwrap();
    assert_eq!(v["id"], 1);
    assert_eq!(v["summary"][0]["STATUS"][0]["Code"], 11);
    assert_eq!(v["summary"][0]["SUMMARY"][0]["GHS av"], 54512.07);
    assert_eq!(v["stats"][0]["STATUS"][0]["Code"], 70);
    assert_eq!(v["pools"][0]["POOLS"].as_array().unwrap().len(), 3);
    // Realtime hashrate is the same in summary and stats of one reply, and recorded.
    let g_sum = v["summary"][0]["SUMMARY"][0]["GHS 5s"].as_str().unwrap();
    let g_stats = v["stats"][0]["STATS"][1]["GHS 5s"].as_str().unwrap();
    assert_eq!(g_sum, g_stats);
    let served = fleet.stats_served(s17);
    assert_eq!(served.len(), 1);
    assert_eq!(format!("{:.2}", served[0].ghs), g_stats);
    let r = fleet.report(s17).unwrap();
    assert_eq!(
        (r.served.summary, r.served.stats, r.served.pools),
        (1, 1, 1)
    );
    fleet.shutdown().await;
}

#[tokio::test]
async fn denied_invalid_and_malformed_fixtures() {
    let fleet = one_of_each(Ipv4Addr::new(127, 201, 2, 1)).await;
    let s19 = addr_of(&fleet, "s19pro");
    let v: Value = serde_json::from_str(&command(s19, "devdetails").await).unwrap();
    assert_eq!(v["STATUS"][0]["STATUS"], "E");
    assert_eq!(v["STATUS"][0]["Code"], 45);
    assert_eq!(
        v["STATUS"][0]["Msg"],
        "Access denied to 'devdetails' command"
    );
    let v: Value = serde_json::from_str(&command(s19, "restart").await).unwrap();
    assert_eq!(v["STATUS"][0]["Code"], 45);
    let v: Value = serde_json::from_str(&command(s19, "frobnicate").await).unwrap();
    assert_eq!(v["STATUS"][0]["Code"], 14);
    assert_eq!(fleet.report(s19).unwrap().served.other, 3);

    // S9k's version reply carries trailing junk; S9's stats has `}{`: both served as is.
    let t = command(addr_of(&fleet, "s9k"), "version").await;
    assert!(t.ends_with(",\"id\":1}\"}"), "{t}");
    assert!(serde_json::from_str::<Value>(&t).is_err());
    let t = command(addr_of(&fleet, "s9"), "stats").await;
    assert!(t.contains("V1.3.58\"}{\"STATS\":0"), "{t}");
    assert!(serde_json::from_str::<Value>(&t).is_err());
    // A join on S17 carrying a denied command keeps the others.
    let t = command(addr_of(&fleet, "s17"), "devdetails+version").await;
    let v: Value = serde_json::from_str(&t).unwrap();
    assert_eq!(v["devdetails"][0]["STATUS"][0]["Code"], 45);
    assert_eq!(v["version"][0]["STATUS"][0]["Code"], 22);
    fleet.shutdown().await;
}

#[tokio::test]
async fn stats_served_are_recorded_with_time_and_hashrate() {
    let fleet = one_of_each(Ipv4Addr::new(127, 201, 3, 1)).await;
    let t15 = addr_of(&fleet, "t15");
    let before = chrono::Utc::now();
    let mut served_ghs = Vec::new();
    for _ in 0..5 {
        let v: Value = serde_json::from_str(&command(t15, "stats").await).unwrap();
        served_ghs.push(v["STATS"][1]["GHS 5s"].as_str().unwrap().to_string());
    }
    let after = chrono::Utc::now();
    let rec = fleet.stats_served(t15);
    assert_eq!(rec.len(), 5);
    for (r, s) in rec.iter().zip(&served_ghs) {
        assert!(r.at >= before - chrono::Duration::milliseconds(1) && r.at <= after);
        assert_eq!(&format!("{:.2}", r.ghs), s);
        assert!((r.ghs / 21615.78 - 1.0).abs() <= 0.0301);
    }
    assert_eq!(fleet.report(t15).unwrap().served.stats, 5);
    fleet.shutdown().await;
}

#[tokio::test]
async fn faults_at_start_and_at_run_time() {
    let fleet = start_fleet(FleetConfig {
        count: 8,
        base: Ipv4Addr::new(127, 201, 4, 1),
        port: 0,
        faults: vec![
            (Fault::Hang, 1),
            (Fault::Refuse, 1),
            (Fault::Slow(Duration::from_millis(600)), 1),
            (Fault::Close, 1),
            (Fault::Garbage, 1),
            (Fault::Drip, 1),
        ],
        ..Default::default()
    })
    .await
    .unwrap();
    let m: Vec<SocketAddr> = fleet.miners().iter().map(|m| m.addr).collect();
    assert_eq!(fleet.fault(m[0]), Some(Fault::None));
    assert_eq!(fleet.fault(m[1]), Some(Fault::None));
    assert_eq!(fleet.fault(m[2]), Some(Fault::Hang));

    // hang: connected, nothing comes back.
    let r = tokio::time::timeout(
        Duration::from_millis(800),
        query(m[2], b"{\"command\":\"stats\"}"),
    )
    .await;
    assert!(r.is_err(), "hang must not answer");
    // refuse
    let e = tokio::net::TcpStream::connect(m[3]).await.unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused);
    // slow: the reply comes, late.
    let t0 = Instant::now();
    let t = command(m[4], "version").await;
    assert!(t0.elapsed() >= Duration::from_millis(600));
    assert!(t.contains("VERSION"));
    // close: EOF, no bytes.
    assert!(query(m[5], b"{\"command\":\"stats\"}")
        .await
        .unwrap()
        .is_empty());
    // garbage: bytes + NUL, not JSON.
    let g = query(m[6], b"{\"command\":\"stats\"}").await.unwrap();
    assert_eq!(g.last(), Some(&0));
    assert!(serde_json::from_slice::<Value>(&g[..g.len() - 1]).is_err());
    // drip: the first byte arrives, the second not within 1.5 s.
    let mut s = tokio::net::TcpStream::connect(m[7]).await.unwrap();
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    s.write_all(b"{\"command\":\"version\"}").await.unwrap();
    let mut b = [0u8; 16];
    let n = tokio::time::timeout(Duration::from_secs(2), s.read(&mut b))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&b[..n], b"{");
    assert!(
        tokio::time::timeout(Duration::from_millis(1500), s.read(&mut b))
            .await
            .is_err()
    );
    drop(s);

    // Run time: refuse, then back to normal on the same address.
    fleet.set_fault(m[0], Fault::Refuse).unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let e = tokio::net::TcpStream::connect(m[0]).await.unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused);
    fleet.set_fault(m[0], Fault::None).unwrap();
    let mut ok = false;
    for _ in 0..50 {
        if let Ok(r) = query(m[0], b"{\"command\":\"version\"}").await {
            ok = r.last() == Some(&0);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(ok, "miner answers again after refuse");
    fleet.set_fault(m[3], Fault::None).unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(command(m[3], "version").await.contains("VERSION"));
    assert!(fleet
        .set_fault("127.9.9.9:1".parse().unwrap(), Fault::Hang)
        .is_err());
    fleet.shutdown().await;
}

#[tokio::test]
async fn consecutive_ports_on_one_address() {
    let fleet = start_fleet(FleetConfig {
        count: 5,
        base: Ipv4Addr::new(127, 201, 5, 1),
        port: 14028,
        consecutive_ports: true,
        ..Default::default()
    })
    .await
    .unwrap();
    let addrs: Vec<String> = fleet.miners().iter().map(|m| m.addr.to_string()).collect();
    assert_eq!(addrs[0], "127.201.5.1:14028");
    assert_eq!(addrs[4], "127.201.5.1:14032");
    for m in fleet.miners() {
        assert!(command(m.addr, "version").await.contains("VERSION"));
    }
    // A clash is a clear error.
    let e = start_fleet(FleetConfig {
        count: 1,
        base: Ipv4Addr::new(127, 201, 5, 1),
        port: 14030,
        consecutive_ports: true,
        ..Default::default()
    })
    .await
    .unwrap_err();
    assert!(format!("{e:#}").contains("127.201.5.1:14030"), "{e:#}");
    fleet.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fleet_of_2000_all_answer() {
    let t0 = Instant::now();
    let fleet = start_fleet(FleetConfig {
        count: 2000,
        base: Ipv4Addr::new(127, 202, 0, 1),
        seed: 42,
        ..Default::default()
    })
    .await
    .unwrap();
    let started = t0.elapsed();
    let miners = fleet.miners();
    assert_eq!(miners.len(), 2000);
    assert_eq!(miners[1999].addr.to_string(), "127.202.7.222:4028");
    let sem = std::sync::Arc::new(tokio::sync::Semaphore::new(64));
    let mut tasks = tokio::task::JoinSet::new();
    for m in miners.clone() {
        let sem = sem.clone();
        tasks.spawn(async move {
            let _p = sem.acquire_owned().await.unwrap();
            let t = command(m.addr, "version").await;
            assert!(t.contains("VERSION"), "{}: {t}", m.addr);
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.unwrap();
    }
    for m in &miners {
        assert_eq!(fleet.report(m.addr).unwrap().served.version, 1);
    }
    eprintln!(
        "2000 miners: start {started:?}, all answered after {:?}",
        t0.elapsed()
    );
    fleet.shutdown().await;
}
