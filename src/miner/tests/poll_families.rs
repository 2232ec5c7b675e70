//! End-to-end polls of every family against scripted miners on 127.0.0.1: detection with the
//! fewest round trips, each family's plan (joined and separate requests), Whatsminer API v3 on
//! its own length-prefixed port, and the identity cache.

use std::time::Duration;

use super::poll::{miner_script, sorted};
use super::server::{nul_reply, serve, v3_reply, Step};
use super::*;
use crate::miner::{poll, Limits, MinerMemory};
use crate::model::{FirmwareKind, PowerMode};

fn limits() -> Limits {
    Limits {
        connect_timeout: Duration::from_millis(1000),
        read_timeout: Duration::from_millis(3000),
        max_reply_bytes: 256 * 1024,
    }
}

fn braiins(command: &str) -> Option<Vec<u8>> {
    match command {
        "devdetails" => Some(
            br#"{"STATUS":[{"STATUS":"S","When":1,"Code":69,"Msg":"Device Details","Description":"BOSminer+ 0.2.0-36c56a9363"}],"DEVDETAILS":[{"DEVDETAILS":0,"ID":6,"Chips":63,"Model":"Bitmain Antminer S9"},{"DEVDETAILS":1,"ID":7,"Chips":63,"Model":"Bitmain Antminer S9"},{"DEVDETAILS":2,"ID":8,"Chips":63,"Model":"Bitmain Antminer S9"}],"id":1}"#
                .to_vec(),
        ),
        "version" | "summary" | "pools" | "devs" | "temps" | "fans" => {
            Some(raw(&format!("fixtures/braiins/S9-bOSplus_{command}.json")))
        }
        _ => None,
    }
}

#[tokio::test]
async fn braiins_detected_in_one_probe_then_read_in_one_join() {
    let server = serve(miner_script(true, braiins)).await;
    let mut memory = MinerMemory::default();
    let s = poll(server.addr, &mut memory, &limits()).await.unwrap();
    assert_eq!(memory.family(), Some(Family::Braiins));
    assert_eq!(
        server.log.take_requests(),
        [
            "version+devdetails",
            "version+summary+pools+devs+temps+fans+tunerstatus"
        ]
    );
    // Model from devdetails (read at detection, cached), values from the join.
    assert_eq!(
        (s.identity.make.as_deref(), s.identity.model.as_deref()),
        (Some("Antminer"), Some("S9"))
    );
    assert_eq!(s.identity.firmware_kind, Some(FirmwareKind::BraiinsOs));
    assert_rate(s.hashrate, 15740915.842676325e6);
    assert_eq!(s.board_temps().collect::<Vec<_>>(), [75.0, 63.0, 70.0]);
    assert_eq!(s.fans.len(), 2);
    // `tunerstatus` is unknown to this build: a partial reply, not a failure.
    assert_eq!(s.power, None);
    let s = poll(server.addr, &mut memory, &limits()).await.unwrap();
    assert_eq!(
        server.log.take_requests(),
        ["version+summary+pools+devs+temps+fans+tunerstatus"]
    );
    assert_eq!(s.identity.model.as_deref(), Some("S9"), "from the cache");
}

fn whatsminer(fw_ver: &'static str) -> impl Fn(&str) -> Option<Vec<u8>> + Send + Sync + 'static {
    move |command: &str| {
        match command {
        // btminer does not know `version`; its refusal names it.
        "version" => Some(
            br#"{"STATUS":[{"STATUS":"E","When":1,"Code":14,"Msg":"invalid cmd","Description":"btminer"}],"id":1}"#
                .to_vec(),
        ),
        "devdetails" => Some(
            br#"{"STATUS":[{"STATUS":"S","When":1,"Code":69,"Msg":"Device Details","Description":"btminer"}],"DEVDETAILS":[{"DEVDETAILS":0,"Name":"SM","ID":0,"Driver":"bitmicro","Kernel":"","Model":"M30S++V40"}],"id":1}"#
                .to_vec(),
        ),
        "get_version" => Some(
            format!(
                r#"{{"STATUS":"S","When":1,"Code":131,"Msg":{{"api_ver":"2.0.5","fw_ver":"{fw_ver}","platform":"H616"}},"Description":""}}"#
            )
            .into_bytes(),
        ),
        "get_miner_info" => Some(raw("fixtures/whatsminer/apiv2-2023_get_miner_info.json")),
        "status" => Some(raw("fixtures/whatsminer/apiv2-2023_status.json")),
        "get_error_code" => Some(raw("fixtures/whatsminer/apiv2-2023_get_error_code_with_errors.json")),
        "summary" => Some(raw("fixtures/whatsminer/M31S-new-firmware_summary.json")),
        "pools" => Some(raw("fixtures/whatsminer/M31S-new-firmware_pools.json")),
        "edevs" => Some(raw("fixtures/whatsminer/M31S-new-firmware_edevs.json")),
        _ => None,
    }
    }
}

#[tokio::test]
async fn whatsminer_v2_joins_the_cgminer_commands_and_sends_the_rest_alongside() {
    let server = serve(miner_script(true, whatsminer("20230803.11.REL"))).await;
    let mut memory = MinerMemory::default();
    let s = poll(server.addr, &mut memory, &limits()).await.unwrap();
    assert_eq!(memory.family(), Some(Family::Whatsminer));
    let requests = server.log.take_requests();
    assert_eq!(requests[0], "version+devdetails");
    assert_eq!(
        sorted(requests[1..3].to_vec()),
        ["get_miner_info", "get_version"]
    );
    assert_eq!(
        sorted(requests[3..].to_vec()),
        ["get_error_code", "status", "summary+pools+edevs"]
    );
    assert_eq!(s.identity.model.as_deref(), Some("M30S++ V40"));
    // The summary's own `Firmware Version` (read every poll) wins over the detection cache.
    assert_eq!(s.identity.firmware.as_deref(), Some("20201202.22.REL"));
    assert_eq!(s.identity.hostname.as_deref(), Some("WhatsMiner"));
    assert_rate(s.hashrate, 92768288.94e6);
    assert_eq!(s.boards.len(), 3);
    assert_eq!(s.error_codes.len(), 2);
    assert_eq!(s.power_mode, Some(PowerMode::High));
    assert_eq!(s.is_hashing, Some(true));
    // Next polls: no identity commands until the refresh is due.
    poll(server.addr, &mut memory, &limits()).await.unwrap();
    assert_eq!(
        sorted(server.log.take_requests()),
        ["get_error_code", "status", "summary+pools+edevs"]
    );
}

/// A Whatsminer API v3 endpoint: length-prefixed replies from the M60S fixtures.
fn v3_script(command: &str) -> Vec<Step> {
    let file = match command {
        "get.device.info" => "get_device_info",
        "get.miner.status summary" => "get_miner_status_summary",
        "get.miner.status edevs" => "get_miner_status_edevs",
        "get.miner.status pools" => "get_miner_status_pools",
        _ => return v3_reply(br#"{"code":-1,"msg":"invalid command"}"#),
    };
    v3_reply(&raw(&format!(
        "fixtures/whatsminer/apiv3-M60S-20251209_{file}.json"
    )))
}

#[tokio::test]
async fn whatsminer_v3_when_port_4028_refuses() {
    let v3 = serve(v3_script).await;
    // Nothing listens on the cgminer port.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let cgminer_port = listener.local_addr().unwrap();
    drop(listener);
    let mut memory = MinerMemory::default().with_v3_port(v3.addr.port());
    let s = poll(cgminer_port, &mut memory, &limits()).await.unwrap();
    assert_eq!(memory.family(), Some(Family::WhatsminerV3));
    assert_eq!(s.family, Some(Family::WhatsminerV3));
    assert_eq!(s.identity.model.as_deref(), Some("M60S VK40"));
    assert_rate(s.hashrate, 171.259e12);
    assert_eq!(s.boards.len(), 3);
    assert_eq!(s.pools.len(), 3);
    let requests = v3.log.take_requests();
    assert_eq!(requests[0], "get.device.info");
    assert_eq!(
        sorted(requests[1..].to_vec()),
        [
            "get.device.info",
            "get.miner.status edevs",
            "get.miner.status pools",
            "get.miner.status summary"
        ]
    );
    // Polls stay on the v3 port.
    poll(cgminer_port, &mut memory, &limits()).await.unwrap();
    assert_eq!(v3.log.take_requests().len(), 4);
}

#[tokio::test]
async fn whatsminer_v2_firmware_from_2024_11_moves_to_v3() {
    let v2 = serve(miner_script(true, whatsminer("20241209.16.Rel2"))).await;
    let v3 = serve(v3_script).await;
    let mut memory = MinerMemory::default().with_v3_port(v3.addr.port());
    let s = poll(v2.addr, &mut memory, &limits()).await.unwrap();
    assert_eq!(memory.family(), Some(Family::WhatsminerV3));
    assert_rate(s.hashrate, 171.259e12);
    // Detection on 4028 only; the poll itself went to v3.
    assert_eq!(
        sorted(v2.log.take_requests()),
        ["get_miner_info", "get_version", "version+devdetails"]
    );

    // An older firmware stays on API v2 even though the v3 port answers.
    let v2 = serve(miner_script(true, whatsminer("20240624.18.REL"))).await;
    let mut memory = MinerMemory::default().with_v3_port(v3.addr.port());
    poll(v2.addr, &mut memory, &limits()).await.unwrap();
    assert_eq!(memory.family(), Some(Family::Whatsminer));
}

#[tokio::test]
async fn avalon_reads_its_stats_blob_in_one_join() {
    let server = serve(miner_script(true, |c| match c {
        "version" | "pools" | "stats" | "devs" => Some(raw(&format!(
            "fixtures/avalon/Avalon1566-24102401_rpc_{c}.json"
        ))),
        "summary" => Some(raw("cases/inputs/C-07a_avalon_summary_mhs.bin")),
        _ => None,
    }))
    .await;
    let mut memory = MinerMemory::default();
    let s = poll(server.addr, &mut memory, &limits()).await.unwrap();
    assert_eq!(memory.family(), Some(Family::Avalon));
    assert_eq!(
        server.log.take_requests(),
        ["version+devdetails", "version+summary+pools+stats"]
    );
    // C-07: the summary's 5 s window, MH/s.
    assert_rate(s.hashrate, 2.75912301e12);
    assert_rate(s.hashrate_avg, 3.96111558e12);
    assert_eq!(s.identity.mac.as_deref(), Some("12:34:56:78:90:12"));
    assert_eq!(s.boards.len(), 3);
    assert_eq!(s.power, Some(3731.0));
}

#[tokio::test]
async fn c16_hiveon_with_a_denied_command() {
    let denied = raw("cases/inputs/C-16b_access_denied.bin");
    let server = serve(miner_script(true, move |c| match c {
        "version" => Some(raw("cases/inputs/C-16a_hiveon_version.bin")),
        "devdetails" => Some(denied.clone()),
        "summary" | "pools" => Some(raw(&format!("fixtures/antminer/S19Pro-2022fw_{c}.json"))),
        "stats" => Some(raw("fixtures/hiveon/S9-Hiveon_stats.json")),
        _ => None,
    }))
    .await;
    let mut memory = MinerMemory::default();
    let s = poll(server.addr, &mut memory, &limits()).await.unwrap();
    assert_eq!(memory.family(), Some(Family::Hiveon));
    assert_eq!(s.identity.make.as_deref(), Some("Antminer"));
    assert_eq!(s.identity.model.as_deref(), Some("S19j Pro"));
    assert_eq!(s.identity.firmware_kind, Some(FirmwareKind::Hiveon));
    // Code 45 on devdetails took nothing away: summary, stats, pools give telemetry.
    assert_rate(s.hashrate, 110566.89e9);
    assert_eq!(s.boards.len(), 3);
    assert_eq!(s.pools.len(), 3);
}

#[tokio::test]
async fn identity_is_read_again_after_a_reboot() {
    // A Braiins miner whose uptime goes down between polls.
    let elapsed = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(3680));
    let e = elapsed.clone();
    let server = serve(move |command: &str| {
        if command.contains('+') {
            let parts: Vec<(String, Vec<u8>)> = command
                .split('+')
                .map(|c| {
                    let mut body = braiins(c)
                        .unwrap_or_else(|| raw("cases/inputs/C-13_multicommand_invalid.bin"));
                    if c == "summary" {
                        let up = e.load(std::sync::atomic::Ordering::SeqCst);
                        body = String::from_utf8(body)
                            .unwrap()
                            .replace("\"Elapsed\":3680", &format!("\"Elapsed\":{up}"))
                            .into_bytes();
                    }
                    (c.to_string(), body)
                })
                .collect();
            let refs: Vec<(&str, &[u8])> = parts
                .iter()
                .map(|(c, b)| (c.as_str(), b.as_slice()))
                .collect();
            return nul_reply(&joined_raw(&refs));
        }
        nul_reply(&braiins(command).unwrap_or_default())
    })
    .await;
    let mut memory = MinerMemory::default();
    poll(server.addr, &mut memory, &limits()).await.unwrap();
    server.log.take_requests();
    elapsed.store(12, std::sync::atomic::Ordering::SeqCst);
    let s = poll(server.addr, &mut memory, &limits()).await.unwrap();
    assert_eq!(s.uptime, Some(12));
    server.log.take_requests();
    // The poll after the reboot re-reads devdetails alongside the join.
    poll(server.addr, &mut memory, &limits()).await.unwrap();
    assert_eq!(
        sorted(server.log.take_requests()),
        [
            "devdetails",
            "version+summary+pools+devs+temps+fans+tunerstatus"
        ]
    );
}
