//! Commands from Foreman end to end: the real daemon against simulated miners that really
//! reboot, sleep and switch pools, and a fake Foreman that queues commands and records every
//! start / update / done (issue #4; cases C-19, C-20, C-21, C-34).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use pickaxe_sim::{FleetConfig, NewCommand, RebootReply};
use serde_json::json;
use support::*;

/// A site whose miners reboot in `reboot_secs`, and a config tuned for short tests.
async fn site(count: usize, base: Ipv4Addr, mix: &str, reboot_secs: f64) -> Site {
    let site = Site::start_with(FleetConfig {
        count,
        base,
        mix: pickaxe_sim::parse_mix(mix).unwrap(),
        reboot_secs,
        ..FleetConfig::default()
    })
    .await;
    site.foreman.set_command_delay(Duration::from_millis(200));
    site
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reboot_of_20_mixed_miners_succeeds_once_each() {
    let site = site(
        20,
        Ipv4Addr::new(127, 61, 0, 1),
        "m31s=8,m60s=2,luxos-s19kpro=5,avalonq=3,avalon1566=2",
        1.0,
    )
    .await;
    let miners = site.fleet.miners();
    // The reply quirks of C-19: some close without a word, some hang.
    site.fleet
        .set_reboot_reply(miners[0].addr, RebootReply::Close)
        .unwrap();
    site.fleet
        .set_reboot_reply(miners[1].addr, RebootReply::Hang)
        .unwrap();
    let daemon = Daemon::spawn(&command_config(&site, true, ""), "reboot.log");
    let ids: Vec<String> = (0..miners.len()).map(|i| format!("reboot-{i}")).collect();
    site.foreman.queue_commands(
        miners
            .iter()
            .zip(&ids)
            .map(|(m, id)| foreman_command(id, "reboot", m.addr, 30_000, json!({})))
            .collect(),
    );
    let recs = wait_all_done(&site, &ids, Duration::from_secs(60), &daemon).await;
    for (m, id) in miners.iter().zip(&ids) {
        let r = recs.iter().find(|r| &r.id == id).unwrap();
        assert_eq!(
            r.status(),
            Some("success"),
            "{} ({}): {:?}",
            m.addr,
            m.model,
            r.message()
        );
        assert_eq!(r.starts, 1, "{id}: one start");
        assert_eq!(r.dones, 1, "{id}: one done");
        assert_eq!(
            r.start.as_ref().unwrap()["id"],
            id.as_str(),
            "start echoes the command"
        );
        assert_eq!(
            site.fleet.reboots(m.addr),
            1,
            "{} rebooted exactly once",
            m.addr
        );
    }
    drop(daemon);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_between_start_and_done_never_reboots_twice() {
    let site = site(
        10,
        Ipv4Addr::new(127, 62, 0, 1),
        "m31s=4,luxos-s19kpro=3,avalonq=3",
        4.0,
    )
    .await;
    let miners = site.fleet.miners();
    let cfg = command_config(&site, true, "");
    let daemon = Daemon::spawn(&cfg, "kill-1.log");
    let ids: Vec<String> = (0..miners.len()).map(|i| format!("k-{i}")).collect();
    site.foreman.queue_commands(
        miners
            .iter()
            .zip(&ids)
            .map(|(m, id)| foreman_command(id, "reboot", m.addr, 40_000, json!({})))
            .collect(),
    );
    // Every miner has been sent its reboot (it went down), none is done yet.
    let fleet = site.fleet.clone();
    let addrs: Vec<SocketAddr> = miners.iter().map(|m| m.addr).collect();
    wait_until(Duration::from_secs(20), "every reboot sent", || {
        addrs.iter().all(|a| fleet.reboots(*a) == 1)
    })
    .await;
    assert!(
        site.foreman.commands().iter().all(|c| c.done.is_none()),
        "killed before any done"
    );
    daemon.kill_hard();
    let daemon = Daemon::spawn(&cfg, "kill-2.log");
    let recs = wait_all_done(&site, &ids, Duration::from_secs(60), &daemon).await;
    for (m, id) in miners.iter().zip(&ids) {
        let r = recs.iter().find(|r| &r.id == id).unwrap();
        assert_eq!(r.status(), Some("success"), "{}: {:?}", m.addr, r.message());
        assert_eq!(r.dones, 1);
        assert_eq!(
            site.fleet.reboots(m.addr),
            1,
            "{} rebooted exactly once",
            m.addr
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_miner_that_never_returns_fails_at_the_deadline() {
    let site = site(
        2,
        Ipv4Addr::new(127, 63, 0, 1),
        "m31s=1,luxos-s19kpro=1",
        120.0,
    )
    .await;
    let miners = site.fleet.miners();
    let daemon = Daemon::spawn(&command_config(&site, true, ""), "never.log");
    let ids = vec!["gone-0".to_string(), "gone-1".to_string()];
    let started = std::time::Instant::now();
    site.foreman.queue_commands(
        miners
            .iter()
            .zip(&ids)
            .map(|(m, id)| foreman_command(id, "reboot", m.addr, 4_000, json!({})))
            .collect(),
    );
    let recs = wait_all_done(&site, &ids, Duration::from_secs(30), &daemon).await;
    for r in &recs {
        assert_eq!(r.status(), Some("failed"));
        assert!(
            r.message().unwrap().contains("miner never returned"),
            "{:?}",
            r.message()
        );
    }
    assert!(
        started.elapsed() >= Duration::from_secs(3),
        "not before the deadline"
    );
    for m in &miners {
        assert_eq!(site.fleet.reboots(m.addr), 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn power_down_100_then_staggered_power_up() {
    let site = site(
        100,
        Ipv4Addr::new(127, 64, 0, 1),
        "m31s=25,m60s=5,luxos-s19kpro=25,bos-s9=25,bosplus-s9=20",
        0.0,
    )
    .await;
    let miners = site.fleet.miners();
    let daemon = Daemon::spawn(
        &command_config(&site, true, "power_on_ramp = \"60ms\"\n"),
        "power.log",
    );
    let down: Vec<String> = (0..miners.len()).map(|i| format!("down-{i}")).collect();
    site.foreman.queue_commands(
        miners
            .iter()
            .zip(&down)
            .map(|(m, id)| {
                foreman_command(
                    id,
                    "power-mode",
                    m.addr,
                    30_000,
                    json!({"mode": "sleeping"}),
                )
            })
            .collect(),
    );
    let recs = wait_all_done(&site, &down, Duration::from_secs(60), &daemon).await;
    for r in &recs {
        assert_eq!(r.status(), Some("success"), "{}: {:?}", r.id, r.message());
    }
    assert!(
        site.fleet.miners().iter().all(|m| m.hashrate_ghs == 0.0),
        "all asleep"
    );

    let up: Vec<String> = (0..miners.len()).map(|i| format!("up-{i}")).collect();
    site.foreman.queue_commands(
        miners
            .iter()
            .zip(&up)
            .map(|(m, id)| {
                foreman_command(id, "power-mode", m.addr, 60_000, json!({"mode": "normal"}))
            })
            .collect(),
    );
    let recs = wait_all_done(&site, &up, Duration::from_secs(60), &daemon).await;
    for r in &recs {
        assert_eq!(r.status(), Some("success"), "{}: {:?}", r.id, r.message());
    }
    assert!(
        site.fleet.miners().iter().all(|m| m.hashrate_ghs > 0.0),
        "all hashing"
    );
    // Switched on one after the other, at least the ramp apart (a little scheduling slack).
    let mut on: Vec<i64> = miners
        .iter()
        .filter_map(|m| {
            site.fleet
                .power_log(m.addr)
                .iter()
                .rev()
                .find(|(_, on)| *on)
                .map(|(at, _)| *at)
        })
        .collect();
    assert_eq!(on.len(), 100);
    on.sort();
    for w in on.windows(2) {
        assert!(w[1] - w[0] >= 45, "power-on gap {} ms < ramp", w[1] - w[0]);
    }
    assert!(on[99] - on[0] >= 99 * 55, "ramp spans the group");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn monitor_only_refuses_control_commands() {
    let site = site(2, Ipv4Addr::new(127, 65, 0, 1), "m31s=1,avalonq=1", 0.0).await;
    let miners = site.fleet.miners();
    let daemon = Daemon::spawn(&command_config(&site, false, ""), "monitor.log");
    let ids = vec!["mo-0".to_string(), "mo-1".to_string()];
    site.foreman.queue_commands(vec![
        foreman_command(&ids[0], "reboot", miners[0].addr, 10_000, json!({})),
        foreman_command(
            &ids[1],
            "power-mode",
            miners[1].addr,
            10_000,
            json!({"mode": "sleeping"}),
        ),
    ]);
    let recs = wait_all_done(&site, &ids, Duration::from_secs(20), &daemon).await;
    for r in &recs {
        assert_eq!(r.status(), Some("failed"));
        assert_eq!(r.message(), Some("control disabled on this pickaxe"));
    }
    for m in &miners {
        assert_eq!(site.fleet.reboots(m.addr), 0);
        assert!(site.fleet.report(m.addr).unwrap().hashing);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_writes_fail_loudly_and_pools_change_for_real() {
    let site = site(3, Ipv4Addr::new(127, 66, 0, 1), "m31s=2,bos-s9=1", 0.0).await;
    let miners = site.fleet.miners();
    let wm: Vec<_> = miners.iter().filter(|m| m.model == "m31s").collect();
    let bos = miners.iter().find(|m| m.model == "bos-s9").unwrap();
    site.fleet.set_write_api(wm[0].addr, false).unwrap();
    let daemon = Daemon::spawn(&command_config(&site, true, ""), "refused.log");
    let pools = json!({"pools": [
        {"url": "stratum+tcp://pool.example:3333", "user": "farm.w1", "pass": "x"},
        {"url": "stratum+tcp://backup.example:3333", "user": "farm.w1", "pass": "x"},
    ]});
    let ids: Vec<String> = vec![
        "deny".into(),
        "pools".into(),
        "bos-reboot".into(),
        "wrong-pw".into(),
    ];
    site.foreman.queue_commands(vec![
        foreman_command(&ids[0], "reboot", wm[0].addr, 10_000, json!({})),
        foreman_command(&ids[1], "change-pools", wm[1].addr, 10_000, pools),
        foreman_command(&ids[2], "reboot", bos.addr, 10_000, json!({})),
        foreman_command(
            &ids[3],
            "power-mode",
            wm[1].addr,
            10_000,
            json!({"mode": "sleeping", "password": "not-it"}),
        ),
    ]);
    let recs = wait_all_done(&site, &ids, Duration::from_secs(30), &daemon).await;
    let by = |id: &str| recs.iter().find(|r| r.id == id).unwrap();
    assert_eq!(by("deny").status(), Some("failed"));
    assert!(
        by("deny").message().unwrap().contains("write API disabled"),
        "{:?}",
        by("deny").message()
    );
    assert_eq!(
        by("pools").status(),
        Some("success"),
        "{:?}",
        by("pools").message()
    );
    assert_eq!(by("bos-reboot").status(), Some("failed"));
    assert!(by("bos-reboot")
        .message()
        .unwrap()
        .contains("not supported"));
    assert_eq!(by("wrong-pw").status(), Some("failed"));
    assert!(
        by("wrong-pw")
            .message()
            .unwrap()
            .contains("authentication failed"),
        "{:?}",
        by("wrong-pw").message()
    );
    assert_eq!(site.fleet.reboots(wm[0].addr), 0);
    let log = daemon.log_text();
    assert!(!log.contains("not-it"), "a miner password reached the log");
}

/// The family name the agent gives a simulated model.
fn agent_family(m: &pickaxe_sim::SimMinerInfo) -> String {
    if m.model == "m60s" {
        return "whatsminer-v3".into();
    }
    m.family.name().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scan_of_a_24_finds_exactly_the_50_miners_and_macs_reach_foreman() {
    let site = site(
        50,
        Ipv4Addr::new(127, 67, 0, 1),
        "antminer=20,whatsminer=10,luxos=5,avalon=5,braiins=5,cgminer=5",
        0.0,
    )
    .await;
    let daemon = Daemon::spawn(
        &command_config(&site, true, "mac_interval = \"1s\"\n"),
        "scan.log",
    );
    let id = "scan-1".to_string();
    site.foreman.queue_commands(vec![NewCommand {
        id: id.clone(),
        command: "scan".into(),
        args: json!({"type": "asic", "port": 4028, "manufacturer": "antminer",
                     "start": "127.67.0.0", "stop": "127.67.0.255", "password": "secret-pw"}),
    }]);
    let recs = wait_all_done(
        &site,
        std::slice::from_ref(&id),
        Duration::from_secs(60),
        &daemon,
    )
    .await;
    let r = &recs[0];
    assert_eq!(r.status(), Some("success"), "{:?}", r.message());
    let found = r.done.as_ref().unwrap()["result"]["miners"]
        .as_array()
        .unwrap()
        .clone();
    let fleet = site.fleet.miners();
    assert_eq!(found.len(), 50, "exactly the 50 miners");
    for m in &fleet {
        let f = found
            .iter()
            .find(|f| f["ipAddress"] == m.addr.ip().to_string().as_str())
            .unwrap_or_else(|| panic!("{} not found", m.addr));
        assert_eq!(f["apiPort"], 4028);
        assert_eq!(f["category"], "ASIC");
        let key = f["key"].as_str().unwrap();
        assert!(
            key.starts_with(&agent_family(m)),
            "{}: key {key} for {}",
            m.addr,
            m.model
        );
        assert_eq!(
            f["parameters"]["mac"].as_str(),
            m.mac.as_deref(),
            "{} ({}) MAC",
            m.addr,
            m.model
        );
        assert!(
            f["parameters"].get("password").is_none(),
            "no credentials in results"
        );
    }
    let last = r.updates.last().expect("progress updates");
    assert_eq!(last["command"], "scan");
    assert_eq!(last["update"]["scanned"], 256);
    assert_eq!(last["update"]["remaining"], 0);
    assert_eq!(last["update"]["found"], 50);

    // MACs of the polled miners went to Foreman.
    let foreman = site.foreman.clone();
    let with_mac = fleet.iter().filter(|m| m.mac.is_some()).count();
    wait_until(
        Duration::from_secs(30),
        "MACs of polled miners reported",
        || foreman.macs().len() >= with_mac,
    )
    .await;
    for u in site.foreman.macs() {
        let mac = u["mac"].as_str().unwrap();
        assert_eq!(mac, mac.to_lowercase());
        let m = fleet
            .iter()
            .find(|m| m.addr.ip().to_string() == u["ip"].as_str().unwrap())
            .unwrap();
        assert_eq!(m.mac.as_deref(), Some(mac));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scan_cli_prints_the_miners_and_refuses_huge_ranges() {
    let site = site(
        12,
        Ipv4Addr::new(127, 68, 0, 1),
        "antminer=6,whatsminer=3,avalon=3",
        0.0,
    )
    .await;
    let out = tokio::task::spawn_blocking(|| {
        std::process::Command::new(env!("CARGO_BIN_EXE_pickaxe"))
            .args(["scan", "127.68.0.0/24", "--quiet", "--timeout", "1s"])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("12 miners found in 254 addresses"), "{text}");
    for m in site.fleet.miners() {
        let line = text
            .lines()
            .find(|l| l.starts_with(&format!("{} ", m.addr)))
            .unwrap_or_else(|| panic!("{} missing:\n{text}", m.addr));
        assert!(line.contains(&agent_family(&m)), "{line}");
        if let Some(mac) = &m.mac {
            assert!(line.contains(mac.as_str()), "{line}");
        }
    }
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_pickaxe"))
        .args(["scan", "127.0.0.0/15"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("at most 65536"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_reboot_within_the_cooldown_is_refused() {
    let site = site(1, Ipv4Addr::new(127, 69, 0, 1), "avalonq=1", 0.5).await;
    let m = site.fleet.miners()[0].addr;
    let daemon = Daemon::spawn(
        &command_config(&site, true, "reboot_cooldown = \"1h\"\n"),
        "cooldown.log",
    );
    let first = vec!["cool-1".to_string()];
    site.foreman.queue_commands(vec![foreman_command(
        &first[0],
        "reboot",
        m,
        20_000,
        json!({}),
    )]);
    let recs = wait_all_done(&site, &first, Duration::from_secs(30), &daemon).await;
    assert_eq!(recs[0].status(), Some("success"), "{:?}", recs[0].message());
    let second = vec!["cool-2".to_string()];
    site.foreman.queue_commands(vec![foreman_command(
        &second[0],
        "reboot",
        m,
        20_000,
        json!({}),
    )]);
    let recs = wait_all_done(&site, &second, Duration::from_secs(30), &daemon).await;
    assert_eq!(recs[0].status(), Some("failed"));
    assert!(
        recs[0].message().unwrap().contains("cooldown"),
        "{:?}",
        recs[0].message()
    );
    assert_eq!(site.fleet.reboots(m), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blink_switches_the_light_on_then_back_off() {
    let site = site(
        4,
        Ipv4Addr::new(127, 70, 0, 1),
        "m31s=1,m60s=1,luxos-s19kpro=1,avalonq=1",
        0.0,
    )
    .await;
    let miners = site.fleet.miners();
    let daemon = Daemon::spawn(&command_config(&site, true, ""), "blink.log");
    let ids: Vec<String> = (0..4).map(|i| format!("blink-{i}")).collect();
    site.foreman.queue_commands(
        miners
            .iter()
            .zip(&ids)
            .map(|(m, id)| {
                foreman_command(
                    id,
                    "blink",
                    m.addr,
                    20_000,
                    json!({"blinkDurationInSeconds": 2}),
                )
            })
            .collect(),
    );
    let fleet = site.fleet.clone();
    let addrs: Vec<SocketAddr> = miners.iter().map(|m| m.addr).collect();
    wait_until(Duration::from_secs(10), "every light on", || {
        addrs.iter().all(|a| fleet.led(*a) == Some(true))
    })
    .await;
    let recs = wait_all_done(&site, &ids, Duration::from_secs(30), &daemon).await;
    for r in &recs {
        assert_eq!(r.status(), Some("success"), "{}: {:?}", r.id, r.message());
    }
    for a in &addrs {
        assert_eq!(site.fleet.led(*a), Some(false), "{a}: light back to normal");
    }
}
