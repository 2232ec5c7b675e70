//! `change-pools` end to end on LuxOS and Avalon: the real daemon against simulated miners
//! whose pool lists really change (cgminer `addpool` / `switchpool` / `removepool` on LuxOS),
//! and a fake Foreman that queues the command and records every start / update / done.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use pickaxe_sim::FleetConfig;
use serde_json::{json, Value};
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The pool password of the test: it must reach the miners and nothing else.
const POOL_PASS: &str = "s3cret-pool-pw";

async fn site(count: usize, base: Ipv4Addr, mix: &str) -> Site {
    let site = Site::start_with(FleetConfig {
        count,
        base,
        mix: pickaxe_sim::parse_mix(mix).unwrap(),
        ..FleetConfig::default()
    })
    .await;
    site.foreman.set_command_delay(Duration::from_millis(200));
    site
}

/// What the simulated miner serves for `pools`: (url, user, active, priority) per pool.
async fn served_pools(addr: SocketAddr) -> Vec<(String, String, bool, u64)> {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(br#"{"command":"pools"}"#).await.unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.unwrap();
    let text = String::from_utf8(buf).unwrap();
    let v: Value = serde_json::from_str(text.trim_end_matches('\0')).unwrap();
    v["POOLS"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["URL"].as_str().unwrap_or("").to_string(),
                p["User"].as_str().unwrap_or("").to_string(),
                p["Stratum Active"].as_bool().unwrap_or(false),
                p["Priority"].as_u64().unwrap_or(u64::MAX),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn change_pools_replaces_luxos_pools_and_refuses_avalon_clearly() {
    let site = site(3, Ipv4Addr::new(127, 75, 0, 1), "luxos-s19kpro=2,avalonq=1").await;
    let miners = site.fleet.miners();
    let lux: Vec<_> = miners
        .iter()
        .filter(|m| m.model == "luxos-s19kpro")
        .collect();
    let avalon = miners.iter().find(|m| m.model == "avalonq").unwrap();
    assert_eq!(lux.len(), 2);
    let avalon_before = served_pools(avalon.addr).await;
    let daemon = Daemon::spawn(&command_config(&site, true, ""), "pool_changes.log");
    let pools = json!({"pools": [
        {"url": "stratum+tcp://pool.example:3333", "user": "farm.w1", "pass": POOL_PASS},
        {"url": "stratum+tcp://backup.example:3333", "user": "farm.w2", "pass": POOL_PASS},
    ]});
    let ids: Vec<String> = vec!["lux-0".into(), "lux-1".into(), "avalon".into()];
    site.foreman.queue_commands(vec![
        foreman_command(&ids[0], "change-pools", lux[0].addr, 20_000, pools.clone()),
        foreman_command(&ids[1], "change-pools", lux[1].addr, 20_000, pools.clone()),
        foreman_command(&ids[2], "change-pools", avalon.addr, 20_000, pools),
    ]);
    let recs = wait_all_done(&site, &ids, Duration::from_secs(60), &daemon).await;
    let by = |id: &str| recs.iter().find(|r| r.id == id).unwrap();

    for (m, id) in lux.iter().zip(&ids) {
        let r = by(id);
        assert_eq!(
            r.status(),
            Some("success"),
            "{} ({id}): {:?}\nlog:\n{}",
            m.addr,
            r.message(),
            daemon.log_text()
        );
        assert_eq!(r.message(), Some("miner reports the new pools"));
        assert_eq!((r.starts, r.dones), (1, 1), "{id}");
        // The miner serves exactly the new pools, the first one active and first choice.
        let mut served = served_pools(m.addr).await;
        served.sort_by_key(|p| p.3);
        assert_eq!(
            served,
            vec![
                (
                    "stratum+tcp://pool.example:3333".into(),
                    "farm.w1".into(),
                    true,
                    0
                ),
                (
                    "stratum+tcp://backup.example:3333".into(),
                    "farm.w2".into(),
                    false,
                    1
                ),
            ],
            "{}",
            m.addr
        );
        // The send was reported: what was added, switched to and removed.
        let sent = r
            .updates
            .iter()
            .find_map(|u| u.pointer("/update/detail").and_then(Value::as_str))
            .unwrap_or_default()
            .to_string();
        assert!(sent.contains("added 2 pools"), "{sent}");
        assert!(sent.contains("removed 4 old pools"), "{sent}");
    }

    // Again, keeping one of the pools: only the missing one is added, the kept one becomes
    // the active first choice, the pool mined on so far is removed after the switch.
    let again = "lux-0-again".to_string();
    site.foreman.queue_commands(vec![foreman_command(
        &again,
        "change-pools",
        lux[0].addr,
        20_000,
        json!({"pools": [
            {"url": "stratum+tcp://backup.example:3333", "user": "farm.w2", "pass": POOL_PASS},
            {"url": "stratum+tcp://third.example:3333", "user": "farm.w3", "pass": POOL_PASS},
        ]}),
    )]);
    let r = wait_all_done(
        &site,
        std::slice::from_ref(&again),
        Duration::from_secs(60),
        &daemon,
    )
    .await
    .remove(0);
    assert_eq!(r.status(), Some("success"), "{:?}", r.message());
    let detail = r.updates[0]["update"]["detail"].as_str().unwrap();
    assert!(
        detail.contains("added 1 pool (stratum+tcp://third.example:3333)")
            && detail.contains("removed 1 old pool (stratum+tcp://pool.example:3333)"),
        "{detail}"
    );
    let mut served = served_pools(lux[0].addr).await;
    served.sort_by_key(|p| p.3);
    assert_eq!(
        served,
        vec![
            (
                "stratum+tcp://backup.example:3333".into(),
                "farm.w2".into(),
                true,
                0
            ),
            (
                "stratum+tcp://third.example:3333".into(),
                "farm.w3".into(),
                false,
                1
            ),
        ]
    );

    // Avalon: a clear refusal, nothing sent, its pools as they were.
    let r = by("avalon");
    assert_eq!(r.status(), Some("failed"));
    let msg = r.message().unwrap();
    assert!(
        msg.contains("not supported on Avalon") && msg.contains("setpool"),
        "{msg}"
    );
    assert_eq!(served_pools(avalon.addr).await, avalon_before);

    // The pool password went to the miners only.
    let recs = site.foreman.commands();
    assert_eq!(recs.len(), 4);
    for r in &recs {
        for body in [&r.start, &r.done] {
            let text = body.as_ref().unwrap().to_string();
            assert!(!text.contains(POOL_PASS), "{}: {text}", r.id);
        }
        for u in &r.updates {
            assert!(!u.to_string().contains(POOL_PASS), "{}: {u}", r.id);
        }
    }
    assert_eq!(
        by("lux-0").start.as_ref().unwrap()["args"]["pools"][0]["url"],
        "stratum+tcp://pool.example:3333",
        "the start still echoes the command"
    );
    let log = daemon.log_text();
    assert!(!log.contains(POOL_PASS), "a pool password reached the log");
}
