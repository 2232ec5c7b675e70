//! The stock Antminer web interface over real sockets on 127.76.0.0/16 (127.77 for the
//! other families): Digest auth, the CGI scripts, and what they change on the RPC side.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use common::command;
use digest_auth::{AuthContext, HttpMethod};
use pickaxe_sim::fleet::{parse_mix, Family};
use pickaxe_sim::{start_fleet, Fleet, FleetConfig, RebootReply};
use reqwest::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tokio::net::TcpStream;

/// Two stock S19 Pros from `base`, each on free ports, down 1 s per reboot.
async fn antminers(base: Ipv4Addr) -> Fleet {
    start_fleet(FleetConfig {
        count: 2,
        base,
        port: 0,
        mix: parse_mix("s19pro=2").unwrap(),
        reboot_secs: 1.0,
        web_port: Some(0),
        ..Default::default()
    })
    .await
    .unwrap()
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap()
}

/// The first miner's RPC and web addresses.
fn first(fleet: &Fleet) -> (SocketAddr, SocketAddr) {
    let m = &fleet.miners()[0];
    (m.addr, m.web_addr.expect("stock Antminers serve the web"))
}

/// A request answered with a Digest challenge, then again with `password`: (status, body).
async fn call(
    web: SocketAddr,
    method: Method,
    path: &str,
    body: &str,
    password: &str,
) -> (StatusCode, String) {
    let c = client();
    let url = format!("http://{web}{path}");
    let challenge = c.request(method.clone(), &url).send().await.unwrap();
    assert_eq!(challenge.status(), StatusCode::UNAUTHORIZED, "{path}");
    let www = challenge.headers()[WWW_AUTHENTICATE].to_str().unwrap();
    let mut prompt = digest_auth::parse(www).unwrap();
    let ctx = AuthContext::new_with_method(
        "root",
        password,
        path,
        Option::<&[u8]>::None,
        HttpMethod::from(method.as_str()),
    );
    let auth = prompt.respond(&ctx).unwrap().to_header_string();
    let r = c
        .request(method, &url)
        .header(AUTHORIZATION, auth)
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = r.status();
    (status, r.text().await.unwrap())
}

async fn get(web: SocketAddr, script: &str) -> Value {
    let (status, body) = call(web, Method::GET, &format!("/cgi-bin/{script}"), "", "root").await;
    assert_eq!(status, StatusCode::OK, "{script}: {body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{script}: {e}: {body}"))
}

async fn post(web: SocketAddr, script: &str, body: &str) -> Value {
    let (status, text) = call(
        web,
        Method::POST,
        &format!("/cgi-bin/{script}"),
        body,
        "root",
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{script}: {text}");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{script}: {e}: {text}"))
}

async fn rpc(addr: SocketAddr, cmd: &str) -> Value {
    serde_json::from_str(&command(addr, cmd).await).unwrap()
}

/// Whether connecting to `addr` is refused within 0.5 s (the listener closes asynchronously).
async fn refused(addr: SocketAddr) -> bool {
    for _ in 0..25 {
        if TcpStream::connect(addr).await.is_err() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

/// Polls `f` every 50 ms for up to 5 s.
async fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    for _ in 0..100 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test]
async fn digest_auth_guards_every_script() {
    let fleet = antminers(Ipv4Addr::new(127, 76, 0, 1)).await;
    let (addr, web) = first(&fleet);
    assert_eq!(
        web.ip(),
        addr.ip(),
        "the web interface is on the miner's IP"
    );
    let c = client();
    // No credentials: 401 with a Digest challenge in the firmware's realm.
    let r = c
        .get(format!("http://{web}/cgi-bin/get_miner_conf.cgi"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let www = r.headers()[WWW_AUTHENTICATE].to_str().unwrap().to_string();
    assert!(
        www.starts_with("Digest realm=\"antMiner Configuration\", qop=\"auth\", nonce=\""),
        "{www}"
    );
    // Basic auth and a made-up nonce are refused too.
    let r = c
        .get(format!("http://{web}/cgi-bin/get_miner_conf.cgi"))
        .basic_auth("root", Some("root"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let forged = www.replace("nonce=\"", "nonce=\"00");
    let mut prompt = digest_auth::parse(&forged).unwrap();
    let ctx = AuthContext::new("root", "root", "/cgi-bin/get_miner_conf.cgi");
    let auth = prompt.respond(&ctx).unwrap().to_header_string();
    let r = c
        .get(format!("http://{web}/cgi-bin/get_miner_conf.cgi"))
        .header(AUTHORIZATION, auth)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::UNAUTHORIZED,
        "a nonce the miner never issued"
    );
    assert!(r.headers()[WWW_AUTHENTICATE]
        .to_str()
        .unwrap()
        .contains("stale=true"));
    // Wrong password.
    let (status, _) = call(web, Method::GET, "/cgi-bin/get_miner_conf.cgi", "", "admin").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // The factory password works; an unknown script is a 404 once logged in.
    let (status, _) = call(web, Method::GET, "/cgi-bin/get_miner_conf.cgi", "", "root").await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = call(web, Method::GET, "/cgi-bin/nope.cgi", "", "root").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // The admin password knob changes the web login.
    fleet.set_password(addr, "s3cret").unwrap();
    let (status, _) = call(web, Method::GET, "/cgi-bin/get_miner_conf.cgi", "", "root").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = call(
        web,
        Method::GET,
        "/cgi-bin/get_miner_conf.cgi",
        "",
        "s3cret",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let r = fleet.report(addr).unwrap();
    assert_eq!(r.web_addr, Some(web));
    assert_eq!(r.web_requests["get_miner_conf.cgi"], 2);
    assert_eq!(r.web_requests["not_found"], 1);
    assert!(r.web_requests["unauthorized"] >= 8, "{:?}", r.web_requests);
    // The other miner has its own web port and login.
    let other = fleet.miners()[1].web_addr.unwrap();
    assert_ne!(other, web);
    let (status, _) = call(
        other,
        Method::GET,
        "/cgi-bin/get_blink_status.cgi",
        "",
        "root",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    fleet.shutdown().await;
}

#[tokio::test]
async fn miner_conf_sets_pools_and_sleep() {
    let fleet = antminers(Ipv4Addr::new(127, 76, 1, 1)).await;
    let (addr, web) = first(&fleet);
    let other = fleet.miners()[1].addr;
    let other_pools = rpc(other, "pools").await["POOLS"].clone();
    let conf = get(web, "get_miner_conf.cgi").await;
    let pools = conf["pools"].as_array().unwrap();
    assert_eq!(pools.len(), 3);
    // What RPC `pools` shows.
    let shown = rpc(addr, "pools").await;
    for (p, s) in pools.iter().zip(shown["POOLS"].as_array().unwrap()) {
        assert_eq!(p["url"], s["URL"]);
        assert_eq!(p["user"], s["User"]);
    }
    assert_eq!(conf["bitmain-work-mode"], "0");
    assert_eq!(conf["bitmain-fan-ctrl"], false);

    // New pools, the third slot unused; the rest of the conf sent back as read.
    let mut new = conf.clone();
    new["pools"] = json!([
        {"url": "stratum+tcp://pool-a.example:3333", "user": "farm.a1", "pass": "secret1"},
        {"url": "stratum+tcp://pool-b.example:443", "user": "farm.b1", "pass": "x"},
        {"url": "", "user": "", "pass": ""},
    ]);
    let v = post(web, "set_miner_conf.cgi", &new.to_string()).await;
    assert_eq!(v, json!({"stats": "success", "code": "M000", "msg": "OK!"}));
    let pools = rpc(addr, "pools").await;
    let list = pools["POOLS"].as_array().unwrap();
    assert_eq!(list.len(), 2, "{pools}");
    assert_eq!(list[0]["URL"], "stratum+tcp://pool-a.example:3333");
    assert_eq!(list[0]["User"], "farm.a1");
    assert_eq!(list[0]["Priority"], 0);
    assert_eq!(list[0]["Stratum Active"], true);
    assert_eq!(list[1]["URL"], "stratum+tcp://pool-b.example:443");
    assert_eq!(list[1]["Stratum Active"], false);
    let conf = get(web, "get_miner_conf.cgi").await;
    assert_eq!(conf["pools"], new["pools"], "the conf reads back as set");
    // The other miner kept its pools.
    assert_eq!(rpc(other, "pools").await["POOLS"], other_pools);

    // Not a conf: refused, nothing changes.
    for bad in [
        "not json",
        "{\"bitmain-work-mode\":\"1\"}",
        "{\"pools\":\"x\"}",
        "",
    ] {
        let v = post(web, "set_miner_conf.cgi", bad).await;
        assert_eq!(
            v,
            json!({"stats": "error", "code": "M001", "msg": "invalid conf"}),
            "{bad}"
        );
    }
    let mut unknown_mode = conf.clone();
    unknown_mode["bitmain-work-mode"] = json!("9");
    unknown_mode["pools"] = json!([]);
    let v = post(web, "set_miner_conf.cgi", &unknown_mode.to_string()).await;
    assert_eq!(v["code"], "M001");
    assert_eq!(
        rpc(addr, "pools").await["POOLS"].as_array().unwrap().len(),
        2
    );
    assert!(fleet.report(addr).unwrap().hashing);

    // Work mode 1 sleeps: zero hashrate on RPC, mode "1" in the conf, logged.
    let mut sleep = conf.clone();
    sleep["bitmain-work-mode"] = json!("1");
    assert_eq!(
        post(web, "set_miner_conf.cgi", &sleep.to_string()).await["code"],
        "M000"
    );
    let summary = rpc(addr, "summary").await;
    assert_eq!(
        summary["SUMMARY"][0]["GHS 5s"].as_f64(),
        Some(0.0),
        "{summary}"
    );
    let r = fleet.report(addr).unwrap();
    assert!(!r.hashing);
    assert_eq!(r.power_log.len(), 1);
    assert!(!r.power_log[0].1);
    assert_eq!(
        get(web, "get_miner_conf.cgi").await["bitmain-work-mode"],
        "1"
    );
    // Pools unchanged by a conf that only sleeps.
    assert_eq!(
        rpc(addr, "pools").await["POOLS"].as_array().unwrap().len(),
        2
    );

    // Mode 0 wakes it; the older `miner-mode` key works too.
    let mut wake = conf.clone();
    wake["bitmain-work-mode"] = json!("0");
    assert_eq!(
        post(web, "set_miner_conf.cgi", &wake.to_string()).await["code"],
        "M000"
    );
    let summary = rpc(addr, "summary").await;
    assert!(summary["SUMMARY"][0]["GHS 5s"].as_f64().unwrap() > 100_000.0);
    let mut old = conf.as_object().unwrap().clone();
    old.remove("bitmain-work-mode");
    old.insert("miner-mode".into(), json!(1));
    let v = post(
        web,
        "set_miner_conf.cgi",
        &Value::Object(old.clone()).to_string(),
    )
    .await;
    assert_eq!(v["code"], "M000");
    assert!(!fleet.report(addr).unwrap().hashing);
    // A high-power mode hashes and is remembered.
    old.insert("miner-mode".into(), json!("2"));
    post(web, "set_miner_conf.cgi", &Value::Object(old).to_string()).await;
    let r = fleet.report(addr).unwrap();
    assert!(r.hashing);
    let log: Vec<bool> = r.power_log.iter().map(|(_, on)| *on).collect();
    assert_eq!(log, [false, true, false, true]);
    assert_eq!(
        get(web, "get_miner_conf.cgi").await["bitmain-work-mode"],
        "2"
    );
    // Slept by other means, the conf says so.
    fleet.set_hashing(addr, false).unwrap();
    assert_eq!(
        get(web, "get_miner_conf.cgi").await["bitmain-work-mode"],
        "1"
    );
    fleet.shutdown().await;
}

#[tokio::test]
async fn reboot_cgi_takes_the_miner_down() {
    let fleet = antminers(Ipv4Addr::new(127, 76, 2, 1)).await;
    let (addr, web) = first(&fleet);
    for method in [Method::GET, Method::POST] {
        let before = fleet.reboots(addr);
        let (status, body) = call(web, method.clone(), "/cgi-bin/reboot.cgi", "{}", "root").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body, "");
        eventually("the reboot", || fleet.reboots(addr) == before + 1).await;
        // Down: RPC and web refuse connections, then both come back.
        assert!(refused(addr).await, "{method}: RPC down");
        assert!(refused(web).await, "{method}: web down");
        tokio::time::sleep(Duration::from_millis(1300)).await;
        assert!(rpc(addr, "version").await["VERSION"].is_array());
        let (status, _) = call(
            web,
            Method::GET,
            "/cgi-bin/get_blink_status.cgi",
            "",
            "root",
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{method}: web back");
    }
    assert_eq!(fleet.reboots(addr), 2);
    assert_eq!(fleet.report(addr).unwrap().web_requests["reboot.cgi"], 2);

    // `close`: no HTTP reply at all, the reboot happens all the same.
    fleet.set_reboot_reply(addr, RebootReply::Close).unwrap();
    let c = client();
    let url = format!("http://{web}/cgi-bin/reboot.cgi");
    let www = c.get(&url).send().await.unwrap().headers()[WWW_AUTHENTICATE]
        .to_str()
        .unwrap()
        .to_string();
    let mut prompt = digest_auth::parse(&www).unwrap();
    let auth = prompt
        .respond(&AuthContext::new("root", "root", "/cgi-bin/reboot.cgi"))
        .unwrap()
        .to_header_string();
    // A fresh client: a pooled connection that closes could be retried.
    let r = client().get(&url).header(AUTHORIZATION, auth).send().await;
    assert!(r.is_err(), "closed without a response: {r:?}");
    eventually("the third reboot", || fleet.reboots(addr) == 3).await;
    // The second miner never went down.
    assert_eq!(fleet.reboots(fleet.miners()[1].addr), 0);
    fleet.shutdown().await;
}

#[tokio::test]
async fn blink_and_system_info() {
    let fleet = antminers(Ipv4Addr::new(127, 76, 3, 1)).await;
    let (addr, web) = first(&fleet);
    assert_eq!(
        get(web, "get_blink_status.cgi").await,
        json!({"blink": false})
    );
    let v = post(web, "blink.cgi", r#"{"blink":"true"}"#).await;
    assert_eq!(v, json!({"code": "B000"}));
    assert_eq!(fleet.led(addr), Some(true));
    assert_eq!(
        get(web, "get_blink_status.cgi").await,
        json!({"blink": true})
    );
    let v = post(web, "blink.cgi", r#"{"blink":"false"}"#).await;
    assert_eq!(v, json!({"code": "B100"}));
    assert_eq!(fleet.led(addr), Some(false));
    assert_eq!(
        get(web, "get_blink_status.cgi").await,
        json!({"blink": false})
    );

    let info = get(web, "get_system_info.cgi").await;
    let m = &fleet.miners()[0];
    let mac = m.web_mac.clone().unwrap();
    assert_eq!(info["macaddr"], mac);
    assert_eq!(mac.len(), 17);
    assert_eq!(mac, mac.to_uppercase());
    assert_eq!(fleet.report(addr).unwrap().web_mac, Some(mac));
    assert_eq!(info["minertype"], "Antminer S19 Pro");
    assert_eq!(info["ipaddress"], addr.ip().to_string());
    assert_eq!(info["hostname"], "Antminer");
    let other = get(fleet.miners()[1].web_addr.unwrap(), "get_system_info.cgi").await;
    assert_ne!(other["macaddr"], info["macaddr"]);
    fleet.shutdown().await;
}

#[tokio::test]
async fn only_stock_antminers_serve_the_web() {
    let fleet = start_fleet(FleetConfig {
        count: 4,
        base: Ipv4Addr::new(127, 77, 0, 1),
        port: 0,
        mix: parse_mix("s9=1,bos-s9=1,m31s=1,hiveon-s9=1").unwrap(),
        web_port: Some(0),
        ..Default::default()
    })
    .await
    .unwrap();
    for m in fleet.miners() {
        let r = fleet.report(m.addr).unwrap();
        if m.family == Family::Antminer {
            let web = m.web_addr.expect("stock S9");
            assert_eq!(r.web_addr, Some(web));
            assert_eq!(
                get(web, "get_system_info.cgi").await["minertype"],
                "Antminer S9"
            );
        } else {
            assert_eq!(m.web_addr, None, "{}", m.model);
            assert_eq!(r.web_addr, None);
        }
    }
    fleet.shutdown().await;
}

#[tokio::test]
async fn the_web_interface_is_off_unless_a_port_is_set() {
    let fleet = start_fleet(FleetConfig {
        count: 2,
        base: Ipv4Addr::new(127, 77, 1, 1),
        port: 0,
        mix: parse_mix("s19pro=2").unwrap(),
        ..Default::default()
    })
    .await
    .unwrap();
    for m in fleet.miners() {
        assert_eq!(m.web_addr, None);
        assert_eq!(fleet.report(m.addr).unwrap().web_addr, None);
    }
}
