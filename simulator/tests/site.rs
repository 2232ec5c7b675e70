//! A whole site in-process, and the `pickaxe-sim` binary's ready line.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader};
use std::net::Ipv4Addr;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{command, http_client, https_client};
use pickaxe_sim::{start_site, Fault, FleetConfig, ForemanConfig};
use serde_json::{json, Value};

#[tokio::test]
async fn site_assigns_the_fleet_and_serves_admin_fleet() {
    let dir = std::env::temp_dir().join(format!("pickaxe-sim-site-{}", std::process::id()));
    let ca = dir.join("ca.pem");
    let site = start_site(
        FleetConfig {
            count: 20,
            base: Ipv4Addr::new(127, 203, 0, 1),
            ..Default::default()
        },
        ForemanConfig {
            ca_out: ca.clone(),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert!(ca.exists());
    let c = https_client(&std::fs::read_to_string(&ca).unwrap());
    let list: Vec<Value> = c
        .get(format!(
            "{}/api/config/1/pk/0.1.0/?hostname=h&ip=127.0.0.1",
            site.foreman.url()
        ))
        .header("Authorization", "Token test-key")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list.len(), 20);
    assert_eq!(
        list[0],
        json!({"apiIp":"127.203.0.1","apiPort":4028,"apiType":19,"params":[]})
    );

    let first = site.fleet.miners()[0].addr;
    let text = command(first, "stats").await;
    assert!(text.contains("STATS"));

    let a = http_client();
    let fleet: Vec<Value> = a
        .get(format!("{}/admin/fleet", site.foreman.admin_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(fleet.len(), 20);
    let m0 = &fleet[0];
    assert_eq!(m0["ip"], "127.203.0.1");
    assert_eq!(m0["port"], 4028);
    assert_eq!(m0["fault"], "none");
    assert!(m0["model"].is_string());
    assert_eq!(m0["served"]["stats"], 1);
    let at = m0["stats_served"][0]["at"].as_str().unwrap();
    assert!(at.ends_with('Z') && at.len() == 24, "{at}");
    let ghs = m0["stats_served"][0]["ghs"].as_str().unwrap();
    assert!(text.contains(ghs), "served {ghs} in {text}");

    let r = a
        .post(format!("{}/admin/fleet/fault", site.foreman.admin_url()))
        .json(&json!({"ip":"127.203.0.2","port":4028,"fault":"hang"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        site.fleet.fault("127.203.0.2:4028".parse().unwrap()),
        Some(Fault::Hang)
    );
    let r = a
        .post(format!("{}/admin/fleet/fault", site.foreman.admin_url()))
        .json(&json!({"ip":"127.203.0.2","port":4028,"fault":"slow","delay_secs":1.5}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        site.fleet.fault("127.203.0.2:4028".parse().unwrap()),
        Some(Fault::Slow(Duration::from_millis(1500)))
    );
    let one: Vec<Value> = a
        .get(format!(
            "{}/admin/fleet?ip=127.203.0.2&port=4028&stats=false",
            site.foreman.admin_url()
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(one.len(), 1);
    assert_eq!(one[0]["fault"], "slow");
    let r = a
        .post(format!("{}/admin/fleet/fault", site.foreman.admin_url()))
        .json(&json!({"ip":"127.203.9.9","port":4028,"fault":"hang"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    site.shutdown().await;
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn binary_prints_one_ready_line_and_stops_on_sigterm() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_pickaxe-sim"))
        .args([
            "site",
            "--count",
            "5",
            "--base",
            "127.204.0.1",
            "--mix",
            "s19pro=1,s9=1",
            "--faults",
            "hang=1",
        ])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let v: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(v["event"], "ready");
    assert_eq!(v["miners"], 5);
    assert_eq!(v["first_miner"], "127.204.0.1:4028");
    assert!(v["foreman"]
        .as_str()
        .unwrap()
        .starts_with("https://127.0.0.1:"));
    assert!(v["admin"]
        .as_str()
        .unwrap()
        .starts_with("http://127.0.0.1:"));
    let ca = v["ca"].as_str().unwrap();
    assert!(std::fs::read_to_string(ca)
        .unwrap()
        .contains("BEGIN CERTIFICATE"));

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    for _ in 0..100 {
        if let Some(st) = child.try_wait().unwrap() {
            assert!(st.success(), "{st:?}");
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    panic!("pickaxe-sim did not stop on SIGTERM");
}
