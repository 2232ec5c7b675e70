//! `change-pools` end to end on LuxOS and Avalon: the real daemon against simulated miners
//! whose pool lists really change (cgminer `addpool` / `switchpool` / `removepool` on LuxOS,
//! `ascset setpool` into slots and a reboot on Avalon), and a fake Foreman that queues the
//! command and records every start / update / done.

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
        reboot_secs: 1.0,
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
async fn change_pools_replaces_luxos_pools() {
    let site = site(2, Ipv4Addr::new(127, 75, 0, 1), "luxos-s19kpro=2").await;
    let lux = site.fleet.miners();
    assert_eq!(lux.len(), 2);
    let daemon = Daemon::spawn(&command_config(&site, true, ""), "pool_changes.log");
    let pools = json!({"pools": [
        {"url": "stratum+tcp://pool.example:3333", "user": "farm.w1", "pass": POOL_PASS},
        {"url": "stratum+tcp://backup.example:3333", "user": "farm.w2", "pass": POOL_PASS},
    ]});
    let ids: Vec<String> = vec!["lux-0".into(), "lux-1".into()];
    site.foreman.queue_commands(vec![
        foreman_command(&ids[0], "change-pools", lux[0].addr, 20_000, pools.clone()),
        foreman_command(&ids[1], "change-pools", lux[1].addr, 20_000, pools),
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

    // The pool password went to the miners only.
    let recs = site.foreman.commands();
    assert_eq!(recs.len(), 3);
    assert_no_secret(&recs, POOL_PASS);
    assert_eq!(
        by("lux-0").start.as_ref().unwrap()["args"]["pools"][0]["url"],
        "stratum+tcp://pool.example:3333",
        "the start still echoes the command"
    );
    let log = daemon.log_text();
    assert!(!log.contains(POOL_PASS), "a pool password reached the log");
}

/// No start, update or done Foreman received carries `secret`.
fn assert_no_secret(recs: &[pickaxe_sim::CommandRecord], secret: &str) {
    for r in recs {
        for body in [&r.start, &r.done] {
            let text = body.as_ref().unwrap().to_string();
            assert!(!text.contains(secret), "{}: {text}", r.id);
        }
        for u in &r.updates {
            assert!(!u.to_string().contains(secret), "{}: {u}", r.id);
        }
    }
}

fn pool(url: &str, user: &str) -> Value {
    json!({"url": url, "user": user, "pass": POOL_PASS})
}

fn sorted(mut pools: Vec<(String, String, bool, u64)>) -> Vec<(String, String, bool, u64)> {
    pools.sort_by_key(|p| p.3);
    pools
}

fn served(list: &[(&str, &str)]) -> Vec<(String, String, bool, u64)> {
    list.iter()
        .enumerate()
        .map(|(i, (url, user))| (url.to_string(), user.to_string(), i == 0, i as u64))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn change_pools_on_avalon_saves_the_slots_and_reboots_to_apply_them() {
    let site = site(5, Ipv4Addr::new(127, 75, 1, 1), "avalon1566=2,avalonq=3").await;
    let miners = site.fleet.miners();
    let a1566: Vec<_> = miners.iter().filter(|m| m.model == "avalon1566").collect();
    let aq: Vec<_> = miners.iter().filter(|m| m.model == "avalonq").collect();
    // a1566[0]: three pools, factory web login. a1566[1]: two pools, its own web login.
    // aq[0]: older firmware, one pool. aq[1]: older firmware, two pools.
    // aq[2]: the web password changed on the miner, none in the command.
    const WEB_PASS: &str = "farm-web-pw";
    site.fleet.set_password(a1566[1].addr, WEB_PASS).unwrap();
    site.fleet.set_legacy_setpool(aq[0].addr, true).unwrap();
    site.fleet.set_legacy_setpool(aq[1].addr, true).unwrap();
    site.fleet
        .set_password(aq[2].addr, "changed-on-the-miner")
        .unwrap();
    let before_aq1 = served_pools(aq[1].addr).await;
    let before_aq2 = served_pools(aq[2].addr).await;

    let daemon = Daemon::spawn(&command_config(&site, true, ""), "pool_changes_avalon.log");
    let three = json!({"pools": [
        pool("stratum+tcp://pool.example:3333", "farm.a1"),
        pool("stratum+tcp://backup.example:3333", "farm.a2"),
        pool("stratum+tcp://third.example:3333", "farm.a3"),
    ]});
    let two = json!({"username": "root", "password": WEB_PASS, "pools": [
        pool("stratum+tcp://pool.example:3333", "farm.b1"),
        pool("stratum+tcp://backup.example:3333", "farm.b2"),
    ]});
    let one = json!({"pools": [pool("stratum+tcp://pool.example:3333", "farm.c1")]});
    let ids: Vec<String> = [
        "three",
        "two-own-login",
        "older-one",
        "older-two",
        "wrong-login",
    ]
    .map(String::from)
    .to_vec();
    site.foreman.queue_commands(vec![
        foreman_command(&ids[0], "change-pools", a1566[0].addr, 30_000, three),
        foreman_command(&ids[1], "change-pools", a1566[1].addr, 30_000, two.clone()),
        foreman_command(&ids[2], "change-pools", aq[0].addr, 30_000, one.clone()),
        foreman_command(&ids[3], "change-pools", aq[1].addr, 30_000, two),
        foreman_command(&ids[4], "change-pools", aq[2].addr, 30_000, one),
    ]);
    let recs = wait_all_done(&site, &ids, Duration::from_secs(90), &daemon).await;
    let by = |id: &str| recs.iter().find(|r| r.id == id).unwrap();
    let reboots = |addr| site.fleet.report(addr).unwrap().reboots;

    // Saved into the slots, applied by one reboot, confirmed from the pools the miner serves.
    for (id, addr, want) in [
        (
            "three",
            a1566[0].addr,
            served(&[
                ("stratum+tcp://pool.example:3333", "farm.a1"),
                ("stratum+tcp://backup.example:3333", "farm.a2"),
                ("stratum+tcp://third.example:3333", "farm.a3"),
            ]),
        ),
        (
            "older-one",
            aq[0].addr,
            served(&[("stratum+tcp://pool.example:3333", "farm.c1")]),
        ),
    ] {
        let r = by(id);
        assert_eq!(
            r.status(),
            Some("success"),
            "{id}: {:?}\n{}",
            r.message(),
            daemon.log_text()
        );
        assert_eq!(r.message(), Some("miner reports the new pools"), "{id}");
        assert_eq!(sorted(served_pools(addr).await), want, "{id}");
        assert_eq!(reboots(addr), 1, "{id}: one reboot applies the pools");
    }
    let sent = by("three").updates[0]["update"]["detail"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        sent.contains("saved slot 0 (stratum+tcp://pool.example:3333)")
            && sent.contains("slot 2 (stratum+tcp://third.example:3333)")
            && sent.contains("reboot sent"),
        "{sent}"
    );
    // Two pools with the login the command carries: the third slot stays unused.
    let r = by("two-own-login");
    assert_eq!(r.status(), Some("success"), "{:?}", r.message());
    assert_eq!(
        sorted(served_pools(a1566[1].addr).await),
        served(&[
            ("stratum+tcp://pool.example:3333", "farm.b1"),
            ("stratum+tcp://backup.example:3333", "farm.b2"),
        ])
    );
    assert_eq!(reboots(a1566[1].addr), 1);

    // Older firmware and two pools: refused before anything changed, no reboot.
    let r = by("older-two");
    assert_eq!(r.status(), Some("failed"));
    let msg = r.message().unwrap();
    assert!(
        msg.contains("older Avalon firmware takes only one pool")
            && msg.ends_with("nothing changed on the miner"),
        "{msg}"
    );
    assert_eq!(served_pools(aq[1].addr).await, before_aq1);
    assert_eq!(reboots(aq[1].addr), 0);

    // A login the miner refuses: both forms fail, the hint names the login, no reboot.
    let r = by("wrong-login");
    assert_eq!(r.status(), Some("failed"));
    let msg = r.message().unwrap();
    assert!(
        msg.contains("both forms")
            && msg.contains("wrong web login")
            && msg.ends_with("nothing changed on the miner"),
        "{msg}"
    );
    assert_eq!(served_pools(aq[2].addr).await, before_aq2);
    assert_eq!(reboots(aq[2].addr), 0);

    // The miner echoes the worker password in its answer; neither password leaves the agent.
    let recs = site.foreman.commands();
    assert_no_secret(&recs, POOL_PASS);
    assert_no_secret(&recs, WEB_PASS);
    let log = daemon.log_text();
    assert!(
        !log.contains(POOL_PASS) && !log.contains(WEB_PASS),
        "a password reached the log"
    );
}
