//! Every miner family over real sockets on 127.0.0.0/8: framing, reply shapes, firmware state
//! (BOS pause, LuxOS sessions, Whatsminer crypto and power, Avalon soft power), API v3, faults.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use common::{command, query};
use pickaxe_sim::fleet::{model_keys, parse_mix, wm_crypto, Family, Framing, Malform, Terminator};
use pickaxe_sim::{start_fleet, Fault, Fleet, FleetConfig, SimMinerInfo};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// One miner of each given model on `base` upward, each on a free port.
async fn fleet_of(base: Ipv4Addr, models: &[&str]) -> Fleet {
    start_fleet(FleetConfig {
        count: models.len(),
        base,
        port: 0,
        mix: models.iter().map(|m| (m.to_string(), 1)).collect(),
        luxos_session_secs: 1.0,
        ..Default::default()
    })
    .await
    .unwrap()
}

fn info(fleet: &Fleet, model: &str) -> SimMinerInfo {
    fleet
        .miners()
        .into_iter()
        .find(|m| m.model == model)
        .unwrap_or_else(|| panic!("no {model}"))
}

/// A JSON command with a parameter; the reply without its NUL, parsed.
async fn cmd(addr: SocketAddr, command: &str, parameter: Option<&str>) -> Value {
    let req = match parameter {
        Some(p) => json!({"command": command, "parameter": p}),
        None => json!({ "command": command }),
    };
    let raw = query(addr, req.to_string().as_bytes()).await.unwrap();
    assert_eq!(raw.last(), Some(&0), "{addr} {command}: NUL-terminated");
    serde_json::from_slice(&raw[..raw.len() - 1])
        .unwrap_or_else(|e| panic!("{command}: {e}: {}", String::from_utf8_lossy(&raw)))
}

fn num(v: &Value) -> f64 {
    match v {
        Value::String(s) => s.parse().unwrap(),
        other => other.as_f64().unwrap(),
    }
}

/// Within the ±3 % jitter (and print rounding) of `expected`.
fn near(got: f64, expected: f64) -> bool {
    (got - expected).abs() <= expected * 0.0305 + 0.01
}

#[tokio::test]
async fn every_family_answers_its_reads_with_its_framing_and_shapes() {
    let keys = model_keys();
    let fleet = fleet_of(Ipv4Addr::new(127, 210, 0, 1), &keys).await;
    let reads: &[(Family, &[&str])] = &[
        (
            Family::Antminer,
            &["version", "summary", "pools", "stats", "devs"],
        ),
        (
            Family::Braiins,
            &[
                "version",
                "summary",
                "pools",
                "devs",
                "edevs",
                "devdetails",
                "stats",
                "fans",
                "temps",
                "tunerstatus",
            ],
        ),
        (
            Family::Luxos,
            &[
                "version", "summary", "pools", "stats", "devs", "config", "power", "fans", "temps",
                "session",
            ],
        ),
        (
            Family::Avalon,
            &["version", "summary", "pools", "devs", "stats", "litestats"],
        ),
        (
            Family::Hiveon,
            &["version", "summary", "pools", "stats", "devs"],
        ),
        (
            Family::Vnish,
            &["version", "summary", "pools", "stats", "devs"],
        ),
        (Family::Cgminer, &["version", "summary", "pools", "stats"]),
    ];
    // Captures that are malformed on purpose.
    let malformed = [
        ("s9", "stats"),
        ("s9k", "version"),
        ("hiveon-s9", "stats"),
        ("vnish-s9", "stats"),
    ];
    for m in fleet.miners() {
        assert!(!m.model_name.is_empty() && !m.firmware.is_empty(), "{m:?}");
        if m.family == Family::Whatsminer {
            continue;
        }
        let list = reads.iter().find(|(f, _)| *f == m.family).unwrap().1;
        for c in list {
            let text = command(m.addr, c).await;
            if malformed.contains(&(m.model.as_str(), c)) {
                assert!(serde_json::from_str::<Value>(&text).is_err());
                continue;
            }
            let v: Value = serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("{} {c}: {e}: {text}", m.model));
            assert_eq!(v["STATUS"][0]["STATUS"], "S", "{} {c}: {text}", m.model);
            assert_eq!(v["id"], 1);
        }
        let version = command(m.addr, "version").await.to_ascii_uppercase();
        let marker = match m.family {
            Family::Braiins => "BOSMINER",
            Family::Luxos => "LUXMINER",
            Family::Avalon => "AVALON",
            Family::Hiveon => "HIVEON",
            Family::Vnish => "VNISH",
            Family::Cgminer => "BDMINER",
            _ => "ANTMINER",
        };
        assert!(version.contains(marker), "{}: {version}", m.model);
        // A stock Antminer's API group A: other commands are denied.
        if m.family == Family::Antminer {
            assert_eq!(
                cmd(m.addr, "devdetails", None).await["STATUS"][0]["Code"],
                45
            );
        }
        if m.family == Family::Braiins {
            let devs = cmd(m.addr, "devs", None).await;
            let ids: Vec<i64> = devs["DEVS"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d["ID"].as_i64().unwrap())
                .collect();
            assert_eq!(ids, vec![6, 7, 8], "S9 chains");
            let v = cmd(m.addr, "summary+devs+temps", None).await;
            assert_eq!(v["temps"][0]["TEMPS"][0]["ID"], 6);
        }
    }
    // The realtime hashrate each serves agrees with what the simulator says it serves.
    let primary: &[(&str, &str, &str, f64)] = &[
        ("s19pro", "stats", "/STATS/1/GHS 5s", 1.0),
        ("s17", "summary", "/SUMMARY/0/GHS 5s", 1.0),
        ("bos-s9", "summary", "/SUMMARY/0/MHS 1m", 1e3),
        ("bosplus-s9", "summary", "/SUMMARY/0/MHS 5s", 1e3),
        ("luxos-s19kpro", "summary", "/SUMMARY/0/GHS 5s", 1.0),
        ("m31s", "summary", "/SUMMARY/0/MHS 1m", 1e3),
        ("m30s", "summary", "/SUMMARY/0/MHS 5s", 1e3),
        ("avalonq", "devs", "/DEVS/0/MHS 1m", 1e3),
        ("avalon1566", "summary", "/SUMMARY/0/MHS 1m", 1e3),
        ("hiveon-s9", "summary", "/SUMMARY/0/GHS 5s", 1.0),
        ("sealminer-a2", "summary", "/SUMMARY/0/MHS 5s", 1e3),
    ];
    for (model, c, ptr, unit) in primary {
        let m = info(&fleet, model);
        assert!(m.hashrate_ghs > 0.0, "{m:?}");
        let v = cmd(m.addr, c, None).await;
        let got = num(v.pointer(ptr).unwrap_or_else(|| panic!("{model} {ptr}"))) / unit;
        assert!(
            near(got, m.hashrate_ghs),
            "{model}: served {got} GH/s, says {}",
            m.hashrate_ghs
        );
    }
    // MACs: served in each firmware's own format, the same miner's everywhere.
    let lux = info(&fleet, "luxos-s19kpro");
    let mac = lux.mac.clone().unwrap();
    assert_eq!(
        cmd(lux.addr, "config", None).await["CONFIG"][0]["MACAddr"],
        mac.as_str()
    );
    assert_eq!(
        cmd(lux.addr, "stats", None).await["STATS"][1]["miner_id"],
        mac.replace(':', "")
    );
    let q = info(&fleet, "avalonq");
    assert_eq!(
        cmd(q.addr, "version", None).await["VERSION"][0]["MAC"],
        q.mac.unwrap().to_uppercase()
    );
    assert_eq!(
        info(&fleet, "s19pro").mac,
        None,
        "stock Antminers serve no MAC on 4028"
    );
    assert_ne!(fleet.miners()[0].mac, fleet.miners()[1].mac);
    fleet.shutdown().await;
}

#[tokio::test]
async fn whatsminer_v2_shapes_keys_crypto_power_and_write_api() {
    let fleet = fleet_of(Ipv4Addr::new(127, 210, 1, 1), &["m31s", "m30s"]).await;
    let m = info(&fleet, "m31s");
    let raw = |c: Value| async move {
        let r = query(m.addr, c.to_string().as_bytes()).await.unwrap();
        assert_eq!(r.last(), Some(&0));
        serde_json::from_slice::<Value>(&r[..r.len() - 1]).unwrap()
    };
    // cgminer-shaped reads, both keys.
    for key in ["command", "cmd"] {
        for c in ["summary", "pools", "devs", "edevs", "devdetails"] {
            let v = raw(json!({ key: c })).await;
            assert_eq!(v["STATUS"][0]["STATUS"], "S", "{key} {c}");
        }
    }
    let v = raw(json!({"cmd": "devdetails"})).await;
    assert_eq!(v["DEVDETAILS"][0]["Driver"], "bitmicro");
    assert_eq!(v["DEVDETAILS"][0]["Model"], "M31SV10");
    let v = raw(json!({"cmd": "summary"})).await;
    assert_eq!(
        v["SUMMARY"][0]["MAC"],
        m.mac.clone().unwrap().to_uppercase()
    );
    // Whatsminer-shaped reads: STATUS a bare string, Msg an object; not joinable.
    for c in [
        "get_version",
        "get_miner_info",
        "status",
        "get_error_code",
        "get_token",
    ] {
        let v = raw(json!({"cmd": c})).await;
        assert_eq!(v["STATUS"], "S", "{c}");
        assert!(v["Msg"].is_object(), "{c}: {v}");
    }
    let v = raw(json!({"cmd": "get_version"})).await;
    assert_eq!(v["Msg"]["fw_ver"], m.firmware.as_str());
    let v = raw(json!({"command": "summary+status"})).await;
    assert_eq!(v["status"][0]["STATUS"][0]["Code"], 45);
    // The 2020-05 firmware knows only "command".
    let old = info(&fleet, "m30s");
    let r = query(old.addr, br#"{"cmd":"pools+summary+edevs"}"#)
        .await
        .unwrap();
    let v: Value = serde_json::from_slice(&r[..r.len() - 1]).unwrap();
    assert_eq!(v["STATUS"][0]["Code"], 24);
    assert_eq!(v["STATUS"][0]["Msg"], "Missing JSON 'command'");
    // A write sent in the clear is refused.
    let v = raw(json!({"cmd": "reboot"})).await;
    assert_eq!(
        (v["STATUS"].as_str(), v["Code"].as_u64()),
        (Some("E"), Some(45))
    );

    // The encrypted write path, default password.
    let write = |body: Value, password: &'static str| async move {
        let t = raw(json!({"cmd": "get_token"})).await;
        assert_eq!(t["Code"], 134);
        let msg = &t["Msg"];
        let (sign, key) = wm_crypto::token_keys(
            password,
            msg["salt"].as_str().unwrap(),
            msg["time"].as_str().unwrap(),
            msg["newsalt"].as_str().unwrap(),
        );
        let mut body = body;
        body["token"] = sign.into();
        let data = wm_crypto::encrypt(&key, body.to_string().as_bytes());
        let r = query(
            m.addr,
            json!({"enc": 1, "data": data}).to_string().as_bytes(),
        )
        .await
        .unwrap();
        let v: Value = serde_json::from_slice(&r[..r.len() - 1]).unwrap();
        match v["enc"].as_str() {
            Some(enc) => {
                serde_json::from_slice::<Value>(&wm_crypto::decrypt(&key, enc).unwrap()).unwrap()
            }
            None => v,
        }
    };
    let v = write(json!({"cmd": "power_off", "respbefore": "true"}), "admin").await;
    assert_eq!(
        (v["STATUS"].as_str(), v["Code"].as_u64()),
        (Some("S"), Some(131))
    );
    assert_eq!(
        raw(json!({"cmd": "status"})).await["Msg"]["btmineroff"],
        "true"
    );
    assert_eq!(
        raw(json!({"cmd": "summary"})).await["SUMMARY"][0]["MHS 1m"],
        0.0
    );
    assert_eq!(info(&fleet, "m31s").hashrate_ghs, 0.0);
    let v = write(json!({"cmd": "power_on"}), "admin").await;
    assert_eq!(v["STATUS"], "S");
    assert_eq!(
        raw(json!({"cmd": "status"})).await["Msg"]["btmineroff"],
        "false"
    );
    let v = write(
        json!({"cmd": "update_pools", "pool1": "stratum+tcp://new.pool:3333", "worker1": "w.1",
               "passwd1": "x", "pool2": "", "worker2": "", "passwd2": "", "pool3": "", "worker3": "", "passwd3": ""}),
        "admin",
    )
    .await;
    assert_eq!(v["STATUS"], "S");
    let pools = raw(json!({"cmd": "pools"})).await;
    assert_eq!(pools["POOLS"][0]["URL"], "stratum+tcp://new.pool:3333");
    assert_eq!(pools["POOLS"][0]["User"], "w.1");
    // A wrong password: the token check fails, in the clear.
    let v = write(json!({"cmd": "reboot"}), "wrong").await;
    assert_eq!(
        (v["STATUS"].as_str(), v["Code"].as_u64()),
        (Some("E"), Some(135))
    );
    // Write API disabled: the encrypted reply is Code 45 "can't access write cmd".
    fleet.set_write_api(m.addr, false).unwrap();
    let v = write(json!({"cmd": "power_off", "respbefore": "true"}), "admin").await;
    assert_eq!(v["STATUS"], "E");
    assert_eq!(v["Code"], 45);
    assert_eq!(v["Msg"], "can't access write cmd");
    assert!(info(&fleet, "m31s").hashrate_ghs > 0.0, "nothing happened");
    // Another password, and a reboot: acknowledged, then uptime starts again.
    fleet.set_write_api(m.addr, true).unwrap();
    fleet.set_password(m.addr, "s3cret").unwrap();
    let before = raw(json!({"cmd": "summary"})).await["SUMMARY"][0]["Elapsed"]
        .as_i64()
        .unwrap();
    let v = write(json!({"cmd": "reboot"}), "s3cret").await;
    assert_eq!(v["STATUS"], "S");
    let after = raw(json!({"cmd": "summary"})).await["SUMMARY"][0]["Elapsed"]
        .as_i64()
        .unwrap();
    assert!(after < 5 && before > 500, "{before} -> {after}");
    fleet.shutdown().await;
}

#[test]
fn whatsminer_crypto_matches_the_test_vectors() {
    let v: Value = serde_json::from_str(include_str!(
        "../fixtures/whatsminer/TEST_VECTORS_apiv2_crypto.json"
    ))
    .unwrap();
    let msg = &v["get_token_reply"]["Msg"];
    let pw = v["password"].as_str().unwrap();
    let salt = msg["salt"].as_str().unwrap();
    assert_eq!(wm_crypto::md5crypt(pw, salt), "WssMFDgz6KlzbAfbu9Jph/");
    let (sign, key) = wm_crypto::token_keys(
        pw,
        salt,
        msg["time"].as_str().unwrap(),
        msg["newsalt"].as_str().unwrap(),
    );
    assert_eq!(sign, ".8Wiv910uBxIJcqnY6BFC.");
    for ex in v["exchanges"].as_array().unwrap() {
        let wire: Value = serde_json::from_str(ex["request_wire"].as_str().unwrap()).unwrap();
        let plain = wm_crypto::decrypt(&key, wire["data"].as_str().unwrap()).unwrap();
        assert_eq!(plain, ex["decrypted_request"].as_str().unwrap().as_bytes());
        assert_eq!(
            wm_crypto::encrypt(&key, &plain),
            wire["data"].as_str().unwrap()
        );
    }
}

#[tokio::test]
async fn braiins_pause_and_resume() {
    let fleet = fleet_of(Ipv4Addr::new(127, 210, 2, 1), &["bosplus-s9"]).await;
    let a = fleet.miners()[0].addr;
    let v = cmd(a, "pause", None).await;
    assert_eq!(v["STATUS"][0]["STATUS"], "S");
    assert_eq!(v["PAUSE"][0]["Paused"], true);
    assert_eq!(cmd(a, "summary", None).await["SUMMARY"][0]["MHS 5s"], 0.0);
    assert_eq!(fleet.miners()[0].hashrate_ghs, 0.0);
    assert_eq!(
        cmd(a, "summary+pause", None).await["pause"][0]["STATUS"][0]["Code"],
        45
    );
    let v = cmd(a, "resume", None).await;
    assert_eq!(v["RESUME"][0]["Resumed"], true);
    assert!(num(&cmd(a, "summary", None).await["SUMMARY"][0]["MHS 5s"]) > 1e6);
    fleet.shutdown().await;
}

#[tokio::test]
async fn luxos_one_session_idle_expiry_and_curtail() {
    // Session idle expiry is 1 s here (60 s on the firmware).
    let fleet = fleet_of(Ipv4Addr::new(127, 210, 3, 1), &["luxos-s19kpro"]).await;
    let a = fleet.miners()[0].addr;
    assert_eq!(cmd(a, "session", None).await["SESSION"][0]["SessionID"], "");
    let v = cmd(a, "logon", None).await;
    assert_eq!(v["STATUS"][0]["Code"], 316);
    let sid = v["SESSION"][0]["SessionID"].as_str().unwrap().to_string();
    assert_eq!(sid.len(), 8);
    assert_eq!(
        cmd(a, "logon", None).await["STATUS"][0]["STATUS"],
        "E",
        "one at a time"
    );
    assert_eq!(
        cmd(a, "session", None).await["SESSION"][0]["SessionID"],
        sid.as_str()
    );
    let v = cmd(a, "curtail", Some(&format!("{sid},sleep"))).await;
    assert_eq!(v["STATUS"][0]["Code"], 335);
    assert_eq!(v["CURTAIL"][0]["Action"], "sleep mode");
    assert_eq!(cmd(a, "summary", None).await["SUMMARY"][0]["GHS 5s"], 0.0);
    assert_eq!(cmd(a, "stats", None).await["STATS"][1]["GHS 5s"], 0.0);
    // Joins only for parameterless reads.
    let v = cmd(a, "version+summary+logon", None).await;
    assert_eq!(v["version"][0]["STATUS"][0]["STATUS"], "S");
    assert_eq!(v["logon"][0]["STATUS"][0]["Code"], 45);
    // Used, the session lives on; idle for longer than the expiry, it is gone.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let v = cmd(a, "curtail", Some(&format!("{sid},wakeup"))).await;
    assert_eq!(v["CURTAIL"][0]["Action"], "wake up");
    assert!(num(&cmd(a, "summary", None).await["SUMMARY"][0]["GHS 5s"]) > 50_000.0);
    tokio::time::sleep(Duration::from_millis(1300)).await;
    assert_eq!(cmd(a, "session", None).await["SESSION"][0]["SessionID"], "");
    let v = cmd(a, "curtail", Some(&format!("{sid},sleep"))).await;
    assert_eq!(v["STATUS"][0]["STATUS"], "E");
    assert!(fleet.miners()[0].hashrate_ghs > 0.0);
    let v = cmd(a, "logon", None).await;
    assert_ne!(v["SESSION"][0]["SessionID"], sid.as_str());
    fleet.shutdown().await;
}

#[tokio::test]
async fn avalon_softoff_zeroes_hashrate_in_text_and_json() {
    let fleet = fleet_of(Ipv4Addr::new(127, 210, 4, 1), &["avalonq", "avalon1566"]).await;
    let now = chrono::Utc::now().timestamp();
    for key in ["avalonq", "avalon1566"] {
        let a = info(&fleet, key).addr;
        // Text in, text out (as foreman talks to Avalons).
        let r = query(a, format!("ascset|0,softoff,1:{now}").as_bytes())
            .await
            .unwrap();
        let text = String::from_utf8(r[..r.len() - 1].to_vec()).unwrap();
        assert!(
            text.starts_with("STATUS=I,") && text.contains(&format!("success softoff:{now}")),
            "{key}: {text}"
        );
        assert_eq!(
            cmd(a, "summary", None).await["SUMMARY"][0]["MHS 1m"],
            0.0,
            "{key}"
        );
        let stats = cmd(a, "stats", None).await;
        let mm = stats["STATS"][0]
            .as_object()
            .unwrap()
            .iter()
            .find(|(k, _)| k.starts_with("MM ID"))
            .unwrap()
            .1
            .as_str()
            .unwrap()
            .to_string();
        assert!(
            mm.contains("SoftOFF[4]") && mm.contains("GHSspd[0.00]") && mm.contains("In Idle"),
            "{key}: {mm}"
        );
        assert_eq!(info(&fleet, key).hashrate_ghs, 0.0);
        let r = query(
            a,
            json!({"command": "ascset", "parameter": format!("0,softon,1:{now}")})
                .to_string()
                .as_bytes(),
        )
        .await
        .unwrap();
        if key == "avalon1566" {
            assert!(r.is_empty(), "softon closes without a reply on this build");
        } else {
            assert!(String::from_utf8_lossy(&r).contains("success softon"));
        }
        let mm = cmd(a, "litestats", None).await.to_string();
        assert!(
            mm.contains("SoftOFF[0]") && mm.contains("In Work"),
            "{key}: {mm}"
        );
        assert!(info(&fleet, key).hashrate_ghs > 0.0);
    }
    // A softoff in the future waits for its time.
    let a = info(&fleet, "avalon1566").addr;
    cmd(a, "ascset", Some(&format!("0,softoff,1:{}", now + 3600))).await;
    assert!(info(&fleet, "avalon1566").hashrate_ghs > 0.0);
    // LED and the bare-nan fault right after boot.
    assert_eq!(
        cmd(a, "ascset", Some("0,led,1-1")).await["STATUS"][0]["Msg"],
        "ASC 0 set OK"
    );
    assert!(cmd(a, "stats", None).await.to_string().contains("Led[1]"));
    fleet.set_fault(a, Fault::Malformed(Malform::Nan)).unwrap();
    let r = query(a, br#"{"command":"summary"}"#).await.unwrap();
    assert!(String::from_utf8_lossy(&r).contains("\"MHS av\":nan"));
    fleet.shutdown().await;
}

async fn v3(s: &mut TcpStream, req: Value) -> Value {
    let body = req.to_string();
    s.write_all(&(body.len() as u32).to_le_bytes())
        .await
        .unwrap();
    s.write_all(body.as_bytes()).await.unwrap();
    let mut len = [0u8; 4];
    s.read_exact(&mut len).await.unwrap();
    let mut buf = vec![0u8; u32::from_le_bytes(len) as usize];
    s.read_exact(&mut buf).await.unwrap();
    serde_json::from_slice(&buf).unwrap()
}

#[tokio::test]
async fn whatsminer_v3_length_prefixed_exchange() {
    let fleet = fleet_of(Ipv4Addr::new(127, 210, 5, 1), &["m60s"]).await;
    let m = fleet.miners()[0].clone();
    let addr = m.v3_addr.expect("an API v3 port");
    assert_eq!(addr.ip(), m.addr.ip());
    let mut s = TcpStream::connect(addr).await.unwrap();
    let v = v3(&mut s, json!({"cmd": "get.device.info"})).await;
    assert_eq!(v["code"], 0);
    assert_eq!(v["desc"], "get.device.info");
    assert_eq!(v["msg"]["miner"]["type"], "M60S_VK40");
    assert_eq!(
        v["msg"]["network"]["mac"],
        m.mac.clone().unwrap().to_uppercase()
    );
    assert!((v["when"].as_i64().unwrap() - chrono::Utc::now().timestamp()).abs() <= 2);
    // Several requests on one connection.
    let v = v3(
        &mut s,
        json!({"cmd": "get.miner.status", "param": "summary"}),
    )
    .await;
    let th = v["msg"]["summary"]["hash-realtime"].as_f64().unwrap();
    assert!(near(th * 1000.0, m.hashrate_ghs), "{th} TH/s");
    let v = v3(&mut s, json!({"cmd": "get.miner.status", "param": "edevs"})).await;
    assert_eq!(v["msg"]["edevs"].as_array().unwrap().len(), 3);
    let v = v3(&mut s, json!({"cmd": "get.miner.status", "param": "pools"})).await;
    assert_eq!(v["msg"]["pools"][0]["status"], "alive");
    let v = v3(&mut s, json!({"cmd": "no.such.cmd"})).await;
    assert_ne!(v["code"], 0);
    // On 4028 it answers what clients detect it with, and tells its firmware date.
    let v = cmd(m.addr, "devdetails", None).await;
    assert_eq!(v["DEVDETAILS"][0]["Driver"], "bitmicro");
    let r = query(m.addr, br#"{"cmd":"get_version"}"#).await.unwrap();
    let v: Value = serde_json::from_slice(&r[..r.len() - 1]).unwrap();
    assert_eq!(v["Msg"]["fw_ver"], "20251209.16.Rel2");
    let rep = fleet.report(m.addr).unwrap();
    assert_eq!(rep.commands.get("v3:summary"), Some(&1));
    assert_eq!(rep.stats_served.len(), 1);
    fleet.shutdown().await;
}

/// Reads until `stop` (or EOF, or 2 s); returns the bytes and how many reads it took.
async fn read_until(s: &mut TcpStream, stop: u8) -> (Vec<u8>, usize) {
    let mut out = Vec::new();
    let mut reads = 0;
    let mut b = [0u8; 4096];
    while let Ok(Ok(n)) = tokio::time::timeout(Duration::from_secs(2), s.read(&mut b)).await {
        if n == 0 {
            break;
        }
        reads += 1;
        out.extend_from_slice(&b[..n]);
        if out.last() == Some(&stop) {
            break;
        }
    }
    (out, reads)
}

#[tokio::test]
async fn faults_and_framing_knobs() {
    let fleet = fleet_of(Ipv4Addr::new(127, 210, 6, 1), &["s17"]).await;
    let a = fleet.miners()[0].addr;
    let get = |c: &'static str| async move {
        let r = query(a, format!("{{\"command\":\"{c}\"}}").as_bytes())
            .await
            .unwrap();
        String::from_utf8_lossy(&r).into_owned()
    };
    fleet
        .set_fault(a, Fault::Malformed(Malform::MissingComma))
        .unwrap();
    let s = get("stats").await;
    assert!(s.contains("\"}{\"STATS\":0"), "{s}");
    fleet
        .set_fault(a, Fault::Malformed(Malform::TrailingJunk))
        .unwrap();
    assert!(get("version").await.ends_with("\"id\":1}\"}\0"));
    fleet
        .set_fault(a, Fault::Malformed(Malform::BadEscape))
        .unwrap();
    assert!(get("summary").await.contains("\\'Summary\\'"));
    fleet
        .set_fault(a, Fault::Malformed(Malform::RawNewline))
        .unwrap();
    assert!(get("summary").await.contains("Summary\n\""));
    fleet.set_fault(a, Fault::SocketText).unwrap();
    assert_eq!(
        get("summary").await,
        "Socket connect failed: Connection refused\n"
    );
    // Split writes: 100-byte pieces 30 ms apart, all of it arrives.
    fleet
        .set_fault(a, "split:100:0.03".parse().unwrap())
        .unwrap();
    let mut s = TcpStream::connect(a).await.unwrap();
    s.write_all(br#"{"command":"stats"}"#).await.unwrap();
    let (bytes, reads) = read_until(&mut s, 0).await;
    assert!(reads > 5, "{reads} reads");
    assert!(serde_json::from_slice::<Value>(&bytes[..bytes.len() - 1]).is_ok());
    // Framing: newline-terminated and kept open.
    fleet.set_fault(a, Fault::None).unwrap();
    fleet
        .set_framing(
            a,
            Framing {
                terminator: Terminator::Newline,
                keep_open: true,
            },
        )
        .unwrap();
    let mut s = TcpStream::connect(a).await.unwrap();
    s.write_all(br#"{"command":"summary"}"#).await.unwrap();
    let (bytes, _) = read_until(&mut s, b'\n').await;
    assert_eq!(bytes.last(), Some(&b'\n'));
    assert!(!bytes.contains(&0));
    let mut b = [0u8; 16];
    let still_open = tokio::time::timeout(Duration::from_millis(300), s.read(&mut b)).await;
    assert!(still_open.is_err(), "the socket stays open after the reply");
    fleet
        .set_framing(
            a,
            Framing {
                terminator: Terminator::None,
                keep_open: false,
            },
        )
        .unwrap();
    let r = query(a, br#"{"command":"version"}"#).await.unwrap();
    assert_eq!(r.last(), Some(&b'}'));
    fleet.shutdown().await;
}

#[tokio::test]
async fn mixed_fleet_by_family_and_bounded_history() {
    let fleet = start_fleet(FleetConfig {
        count: 100,
        base: Ipv4Addr::new(127, 210, 7, 1),
        port: 0,
        mix: parse_mix("antminer=40,whatsminer=30,braiins=10,luxos=10,avalon=10").unwrap(),
        history: Some(3),
        ..Default::default()
    })
    .await
    .unwrap();
    let miners = fleet.miners();
    let count = |f: Family| miners.iter().filter(|m| m.family == f).count();
    assert_eq!(
        [
            count(Family::Antminer),
            count(Family::Whatsminer),
            count(Family::Braiins),
            count(Family::Luxos),
            count(Family::Avalon)
        ],
        [40, 30, 10, 10, 10]
    );
    // A family spreads over its models.
    assert_eq!(miners.iter().filter(|m| m.model == "m31s").count(), 10);
    let types: Vec<u32> = fleet.config_entries().iter().map(|e| e.api_type).collect();
    assert_eq!(types.iter().filter(|t| **t == 28).count(), 30);
    assert_eq!(types.iter().filter(|t| **t == 29).count(), 10);
    let s17 = miners.iter().find(|m| m.model == "s17").unwrap().addr;
    for _ in 0..5 {
        command(s17, "stats").await;
    }
    assert_eq!(fleet.stats_served(s17).len(), 3, "history bounded");
    assert!(parse_mix("asicmax=1").is_err());
    fleet.shutdown().await;
    let big = FleetConfig {
        count: 2001,
        ..Default::default()
    };
    assert_eq!(big.history_len(), 64);
    assert_eq!(FleetConfig::default().history_len(), 1000);
}

#[tokio::test]
async fn admin_fleet_shows_what_each_miner_serves() {
    let fleet = fleet_of(Ipv4Addr::new(127, 210, 8, 1), &["m31s", "bos-s9"]).await;
    let admin = pickaxe_sim::serve_fleet_admin(fleet.clone(), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let http = common::http_client();
    let m = info(&fleet, "m31s");
    let list: Value = http
        .get(format!("{}/admin/fleet?stats=false", admin.url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let wm = list
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["model"] == "m31s")
        .unwrap();
    assert_eq!(wm["family"], "whatsminer");
    assert_eq!(wm["model_name"], "M31S");
    assert_eq!(wm["mac"], m.mac.clone().unwrap().as_str());
    assert_eq!(wm["hashrate_ghs"].as_f64().unwrap(), m.hashrate_ghs);
    assert_eq!(wm["write_api"], true);
    let body = json!({"ip": m.addr.ip().to_string(), "port": m.addr.port(), "hashing": false,
                      "write_api": false, "terminator": "newline", "keep_open": false});
    let v: Value = http
        .post(format!("{}/admin/fleet/miner", admin.url()))
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (v["hashing"].as_bool(), v["write_api"].as_bool()),
        (Some(false), Some(false))
    );
    assert_eq!(v["framing"]["terminator"], "newline");
    let r = query(m.addr, br#"{"command":"summary"}"#).await.unwrap();
    assert_eq!(r.last(), Some(&b'\n'));
    let split = json!({"ip": m.addr.ip().to_string(), "port": m.addr.port(), "fault": "split",
                       "chunk": 64, "delay_secs": 0.01});
    let r = http
        .post(format!("{}/admin/fleet/fault", admin.url()))
        .json(&split)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    assert_eq!(
        fleet.fault(m.addr),
        Some(Fault::split(64, Duration::from_millis(10)))
    );
    admin.shutdown().await;
    fleet.shutdown().await;
}
