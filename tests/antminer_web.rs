//! Stock Antminer commands end to end: the real daemon sends reboot, sleep / normal, pools
//! and the fault light through the miners' web interface (CGI with HTTP Digest auth) of
//! simulated S19 Pros, and confirms each effect over their RPC port.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use pickaxe_sim::{CommandRecord, FleetConfig};
use serde_json::{json, Value};
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const POOL_PASS: &str = "s3cret-pool-pw";
const WEB_PASS: &str = "farm-web-pw";

/// One RPC request to a simulated miner.
async fn rpc(addr: SocketAddr, command: &str) -> Value {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(json!({ "command": command }).to_string().as_bytes())
        .await
        .unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.unwrap();
    serde_json::from_slice(
        String::from_utf8(buf)
            .unwrap()
            .trim_end_matches('\0')
            .as_bytes(),
    )
    .unwrap()
}

/// A command for `m`, addressed to its web port as Foreman's `port`.
fn web_command(
    id: &str,
    name: &str,
    m: &pickaxe_sim::SimMinerInfo,
    extra: Value,
) -> pickaxe_sim::NewCommand {
    let mut extra = extra;
    extra["port"] = json!(m
        .web_addr
        .expect("a stock Antminer serves its web interface")
        .port());
    foreman_command(id, name, m.addr, 30_000, extra)
}

async fn run(
    site: &Site,
    daemon: &Daemon,
    cmds: Vec<pickaxe_sim::NewCommand>,
) -> Vec<CommandRecord> {
    let ids: Vec<String> = cmds.iter().map(|c| c.id.clone()).collect();
    site.foreman.queue_commands(cmds);
    wait_all_done(site, &ids, Duration::from_secs(60), daemon).await
}

fn ok(r: &CommandRecord, daemon: &Daemon) {
    assert_eq!(
        r.status(),
        Some("success"),
        "{}: {:?}\nlog:\n{}",
        r.id,
        r.message(),
        daemon.log_text()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stock_antminer_commands_go_through_the_web_interface() {
    let site = Site::start_with(FleetConfig {
        count: 4,
        base: Ipv4Addr::new(127, 78, 0, 1),
        mix: pickaxe_sim::parse_mix("s19pro=4").unwrap(),
        reboot_secs: 1.0,
        web_port: Some(0),
        ..FleetConfig::default()
    })
    .await;
    site.foreman.set_command_delay(Duration::from_millis(200));
    let m = site.fleet.miners();
    // m[3]'s web password was changed on the miner.
    site.fleet.set_password(m[3].addr, WEB_PASS).unwrap();
    let daemon = Daemon::spawn(&command_config(&site, true, ""), "antminer_web.log");

    let recs = run(
        &site,
        &daemon,
        vec![
            web_command("reboot", "reboot", &m[0], json!({})),
            web_command("sleep", "power-mode", &m[1], json!({"mode": "sleeping"})),
            web_command(
                "pools",
                "change-pools",
                &m[2],
                json!({"pools": [
                    {"url": "stratum+tcp://pool.example:3333", "user": "farm.w1", "pass": POOL_PASS},
                    {"url": "stratum+tcp://backup.example:3333", "user": "farm.w2", "pass": POOL_PASS},
                ]}),
            ),
            web_command("no-login", "reboot", &m[3], json!({})),
            web_command("low", "power-mode", &m[0], json!({"mode": "low"})),
        ],
    )
    .await;
    let by = |id: &str| recs.iter().find(|r| r.id == id).unwrap();
    let report = |addr| site.fleet.report(addr).unwrap();

    // Reboot: reboot.cgi, confirmed by the restarted uptime.
    ok(by("reboot"), &daemon);
    assert_eq!(report(m[0].addr).reboots, 1);

    // Sleep: the conf goes back with work mode 1, confirmed by a zero hashrate on the RPC.
    ok(by("sleep"), &daemon);
    assert_eq!(by("sleep").message(), Some("hashrate is zero"));
    let summary = rpc(m[1].addr, "summary").await;
    assert_eq!(
        summary["SUMMARY"][0]["GHS 5s"].as_f64().unwrap_or(-1.0),
        0.0,
        "{summary}"
    );

    // Pools: the conf goes back with the new pools; the RPC serves them, the first active.
    ok(by("pools"), &daemon);
    let pools = rpc(m[2].addr, "pools").await;
    let served: Vec<(&str, &str, bool)> = pools["POOLS"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["URL"].as_str().unwrap(),
                p["User"].as_str().unwrap(),
                p["Stratum Active"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        served,
        vec![
            ("stratum+tcp://pool.example:3333", "farm.w1", true),
            ("stratum+tcp://backup.example:3333", "farm.w2", false),
        ]
    );

    // A web login the miner refuses: failed with the reason, nothing done.
    let r = by("no-login");
    assert_eq!(r.status(), Some("failed"));
    assert!(
        r.message().unwrap().contains("refused the web login"),
        "{:?}",
        r.message()
    );
    assert_eq!(report(m[3].addr).reboots, 0);

    // Power levels: refused, not guessed.
    let r = by("low");
    assert_eq!(r.status(), Some("failed"));
    assert!(
        r.message()
            .unwrap()
            .contains("not supported on stock Antminer"),
        "{:?}",
        r.message()
    );

    // Back to normal; the right login; the fault light on and back off.
    let recs = run(
        &site,
        &daemon,
        vec![
            web_command("wake", "power-mode", &m[1], json!({"mode": "normal"})),
            web_command(
                "with-login",
                "reboot",
                &m[3],
                json!({"username": "root", "password": WEB_PASS}),
            ),
            web_command(
                "blink",
                "blink",
                &m[2],
                json!({"blinkDurationInSeconds": 1}),
            ),
        ],
    )
    .await;
    let by = |id: &str| recs.iter().find(|r| r.id == id).unwrap();
    for id in ["wake", "with-login", "blink"] {
        ok(by(id), &daemon);
    }
    assert_eq!(by("wake").message(), Some("miner is hashing"));
    assert_eq!(report(m[3].addr).reboots, 1);
    assert_eq!(by("blink").message(), Some("blinked, light back to normal"));

    // No password left the agent.
    for r in site.foreman.commands() {
        let all = format!("{:?} {:?} {:?}", r.start, r.updates, r.done);
        assert!(
            !all.contains(POOL_PASS) && !all.contains(WEB_PASS),
            "{}: {all}",
            r.id
        );
    }
    let log = daemon.log_text();
    assert!(
        !log.contains(POOL_PASS) && !log.contains(WEB_PASS),
        "a password reached the log"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stock_antminer_macs_come_from_the_web_interface() {
    // One web port for the whole site, as on a real LAN (the miners have their own IPs).
    let base = Ipv4Addr::new(127, 78, 1, 1);
    let port = std::net::TcpListener::bind((base, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let site = Site::start_with(FleetConfig {
        count: 3,
        base,
        mix: pickaxe_sim::parse_mix("s19pro=3").unwrap(),
        web_port: Some(port),
        ..FleetConfig::default()
    })
    .await;
    let m = site.fleet.miners();
    assert!(m.iter().all(|m| m.mac.is_none()), "no MAC over the RPC");
    // m[2]'s web password is not the site's: its MAC stays unknown.
    site.fleet
        .set_password(m[2].addr, "changed-on-the-miner")
        .unwrap();
    let config = command_config(
        &site,
        true,
        &format!(
            "mac_interval = \"1s\"\n[antminer_web]\nport = {port}\npassword = \"{WEB_PASS}\"\n"
        ),
    );
    for miner in &m[..2] {
        site.fleet.set_password(miner.addr, WEB_PASS).unwrap();
    }
    let daemon = Daemon::spawn(&config, "antminer_macs.log");
    let foreman = site.foreman.clone();
    wait_until(Duration::from_secs(30), "both MACs reported", || {
        foreman.macs().len() >= 2
    })
    .await;
    // One more report interval: nothing else arrives.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut got: Vec<(String, u64, String)> = site
        .foreman
        .macs()
        .iter()
        .map(|u| {
            (
                u["ip"].as_str().unwrap().to_string(),
                u["apiPort"].as_u64().unwrap(),
                u["mac"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    got.sort();
    let mut want: Vec<(String, u64, String)> = m[..2]
        .iter()
        .map(|m| {
            (
                m.addr.ip().to_string(),
                u64::from(m.addr.port()),
                m.web_mac.clone().unwrap().to_lowercase(),
            )
        })
        .collect();
    want.sort();
    assert_eq!(got, want, "log:\n{}", daemon.log_text());
    assert!(
        !daemon.log_text().contains(WEB_PASS),
        "the web password reached the log"
    );
}
