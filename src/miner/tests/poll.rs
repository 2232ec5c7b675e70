//! End-to-end polls against scripted miners on 127.0.0.1: fallback and caching (C-13), family
//! re-checks, framing (C-12), and every bound (timeouts, size, garbage, refused connections).

use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::time::Instant;

use super::server::{nul_reply, serve, Step};
use super::*;
use crate::miner::{poll, transport, Limits, MinerMemory, PollError};

fn limits(connect_ms: u64, read_ms: u64) -> Limits {
    Limits {
        connect_timeout: Duration::from_millis(connect_ms),
        read_timeout: Duration::from_millis(read_ms),
        max_reply_bytes: 64 * 1024,
    }
}

/// A miner that answers single commands from `per_command` and joined ones by assembling the
/// sub-replies, or refuses joins when `joins` is false. Unknown commands get code 14.
pub(super) fn miner_script(
    joins: bool,
    per_command: impl Fn(&str) -> Option<Vec<u8>> + Send + Sync + 'static,
) -> impl Fn(&str) -> Vec<Step> + Send + Sync + 'static {
    let invalid = raw("cases/inputs/C-13_multicommand_invalid.bin");
    move |command: &str| {
        if command.contains('+') {
            if !joins {
                return nul_reply(&invalid);
            }
            let parts: Vec<(&str, Vec<u8>)> = command
                .split('+')
                .map(|c| (c, per_command(c).unwrap_or_else(|| invalid.clone())))
                .collect();
            let refs: Vec<(&str, &[u8])> = parts.iter().map(|(c, b)| (*c, b.as_slice())).collect();
            return nul_reply(&joined_raw(&refs));
        }
        nul_reply(&per_command(command).unwrap_or_else(|| invalid.clone()))
    }
}

fn s19_pro(command: &str) -> Option<Vec<u8>> {
    matches!(command, "version" | "summary" | "pools" | "stats" | "devs")
        .then(|| raw(&format!("fixtures/antminer/S19Pro-2022fw_{command}.json")))
}

pub(super) fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

#[tokio::test]
async fn c13_refused_join_falls_back_to_single_commands_and_is_remembered() {
    let server = serve(miner_script(false, s19_pro)).await;
    let mut memory = MinerMemory::default();
    let s = poll(server.addr, &mut memory, &limits(1000, 3000))
        .await
        .unwrap();

    assert_eq!(memory.family(), Some(Family::Antminer));
    assert_eq!(memory.multicommand(), Some(false));
    assert_rate(s.hashrate, 110566.89e9);
    assert_rate(s.hashrate_avg, 111834.85e9);
    assert_eq!(s.boards.len(), 3);
    assert_eq!(s.pools.len(), 3);
    assert_eq!(s.identity.model.as_deref(), Some("S19 Pro"));
    let first = server.log.take_requests();
    // Detection: the joined probe is refused, then version and devdetails (denied) alone.
    assert_eq!(first[0], "version+devdetails");
    assert_eq!(sorted(first[1..3].to_vec()), ["devdetails", "version"]);
    assert_eq!(first[3], "version+summary+pools+stats");
    assert_eq!(sorted(first[4..].to_vec()), ["pools", "stats", "summary"]);

    // Next cycle: no join attempt, and no `version` (the stats block re-checks the family).
    let s = poll(server.addr, &mut memory, &limits(1000, 3000))
        .await
        .unwrap();
    assert_rate(s.hashrate, 110566.89e9);
    assert_eq!(s.identity.model.as_deref(), Some("S19 Pro"));
    assert_eq!(
        sorted(server.log.take_requests()),
        ["pools", "stats", "summary"]
    );
}

#[tokio::test]
async fn stock_antminer_accepting_joins_costs_one_round_trip_per_poll() {
    // S9 whose stats carry the `}{` defect, inside a joined reply without a summary part.
    let server = serve(miner_script(true, |c| {
        matches!(c, "version" | "pools" | "stats")
            .then(|| raw(&format!("fixtures/antminer/S9-bad-temps_{c}.json")))
    }))
    .await;
    let mut memory = MinerMemory::default();
    let s = poll(server.addr, &mut memory, &limits(1000, 3000))
        .await
        .unwrap();
    // First contact: one detection probe, then the poll.
    assert_eq!(
        server.log.take_requests(),
        ["version+devdetails", "version+summary+pools+stats"]
    );
    let again = poll(server.addr, &mut memory, &limits(1000, 3000))
        .await
        .unwrap();
    assert_eq!(server.log.take_requests(), ["version+summary+pools+stats"]);
    assert_eq!(again.hashrate, s.hashrate);
    assert_eq!(memory.multicommand(), Some(true));
    assert_eq!(memory.family(), Some(Family::Antminer));
    assert_eq!(s.family, Some(Family::Antminer));
    assert_rate(s.hashrate, 13883.81e9);
    assert_eq!(slots(&s), [0, 1, 2]);
    assert_eq!(s.pools.len(), 2);
}

fn strongu(command: &str) -> Option<Vec<u8>> {
    match command {
        "version" => Some(
            br#"{"STATUS":[{"STATUS":"S","When":1592273807,"Code":22,"Msg":"CGMiner versions","Description":"cgminer 4.11.1"}],"VERSION":[{"CGMiner":"4.11.1","API":"3.7"}],"id":1}"#
                .to_vec(),
        ),
        "summary" | "pools" | "devs" => Some(raw(&format!("fixtures/cgminer_generic/StrongU-STU-6_{command}.json"))),
        _ => None,
    }
}

#[tokio::test]
async fn a_wrong_cached_family_does_not_stick() {
    // Cached as stock Antminer, but the miner is a generic cgminer (no `stats` it understands).
    let server = serve(miner_script(true, strongu)).await;
    let mut memory = MinerMemory {
        family: Some(Family::Antminer),
        multicommand: Some(true),
        ..MinerMemory::default()
    };
    let s = poll(server.addr, &mut memory, &limits(1000, 3000))
        .await
        .unwrap();
    assert_eq!(memory.family(), Some(Family::Cgminer));
    // The version part names no Antminer: detect again (the unmarked version earns a look at
    // `stats`, refused here), then the generic join, all within this poll.
    assert_eq!(
        server.log.take_requests(),
        [
            "version+summary+pools+stats",
            "version+devdetails",
            "stats",
            "version+summary+pools+devs"
        ]
    );
    assert_rate(s.hashrate, 397759.08e6);
    assert_eq!(s.boards.len(), 2);
    assert_eq!(s.boards[1].board_temps, [55.62]);
    // From now on the generic join.
    poll(server.addr, &mut memory, &limits(1000, 3000))
        .await
        .unwrap();
    assert_eq!(server.log.take_requests(), ["version+summary+pools+devs"]);

    // The other way round: cached generic, really a stock S19.
    let server = serve(miner_script(true, s19_pro)).await;
    let mut memory = MinerMemory {
        family: Some(Family::Cgminer),
        multicommand: Some(true),
        ..MinerMemory::default()
    };
    let s = poll(server.addr, &mut memory, &limits(1000, 3000))
        .await
        .unwrap();
    assert_eq!(memory.family(), Some(Family::Antminer));
    assert_eq!(
        server.log.requests(),
        [
            "version+summary+pools+devs",
            "version+devdetails",
            "version+summary+pools+stats"
        ]
    );
    assert_rates(&board_rates(&s), &[37603.30e9, 35536.22e9, 37427.38e9]);
}

#[tokio::test]
async fn single_command_mode_rechecks_the_family_on_the_stats_block() {
    // Cached stock Antminer without joins, now running LuxOS (Antminer type, LUXminer software).
    let server = serve(miner_script(false, |c| {
        matches!(
            c,
            "version"
                | "summary"
                | "pools"
                | "stats"
                | "devs"
                | "temps"
                | "fans"
                | "power"
                | "config"
        )
        .then(|| raw(&format!("fixtures/luxos/S19kPro-2025.4_{c}.json")))
    }))
    .await;
    let mut memory = MinerMemory {
        family: Some(Family::Antminer),
        multicommand: Some(false),
        ..MinerMemory::default()
    };
    let s = poll(server.addr, &mut memory, &limits(1000, 3000))
        .await
        .unwrap();
    assert_eq!(memory.family(), Some(Family::LuxOs));
    let requests = server.log.requests();
    // Singles (stats says LUXminer), detection, then the LuxOS plan, refused as a join.
    assert_eq!(
        sorted(requests[..3].to_vec()),
        ["pools", "stats", "summary"]
    );
    assert_eq!(requests[3], "version+devdetails");
    assert_eq!(
        requests.iter().filter(|r| r.contains('+')).count(),
        2,
        "{requests:?}"
    );
    assert!(requests.contains(&"config".to_string()));
    assert_rate(s.hashrate, 59756.06e9);
    assert_eq!(s.boards.len(), 3);
    assert_eq!(s.identity.mac.as_deref(), Some("62:f7:5e:b7:10:46"));
    assert_eq!(s.power, Some(1051.0));
}

#[tokio::test]
async fn c12_nul_terminated_reply_on_a_socket_left_open() {
    let body = raw("cases/inputs/C-12_summary_nul_terminated.bin");
    assert_eq!(body.last(), Some(&0));
    let server = serve(move |_| vec![Step::Send(body.clone()), Step::Hold]).await;
    let deadline = Instant::now() + Duration::from_secs(5);
    let reply = transport::exchange(
        server.addr,
        br#"{"command":"summary"}"#,
        &limits(1000, 5000),
        deadline,
    )
    .await
    .unwrap();
    let returned = Instant::now();
    let nul_sent = *server.log.sent_at.lock().unwrap().last().unwrap();
    assert!(
        returned - nul_sent < Duration::from_millis(100),
        "took {:?} after the NUL",
        returned - nul_sent
    );
    assert!(!reply.contains(&0));
    let s = dialect::normalize(Family::Cgminer, &{
        let mut r = Replies::default();
        r.set(Command::Summary, repair::parse_reply(&reply).unwrap());
        r
    });
    assert_rate(s.hashrate, 100e9);
    // We closed our side: the fake miner sees it promptly.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let closed = server.log.client_closed_at.lock().unwrap().clone();
    assert_eq!(closed.len(), 1);
    assert!(closed[0] - nul_sent < Duration::from_millis(150));
    assert_eq!(server.log.open.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn c12_pretty_reply_split_at_a_line_break_is_assembled() {
    let part1 = raw("cases/inputs/C-12_pretty_part1.bin");
    let part2 = raw("cases/inputs/C-12_pretty_part2.bin");
    assert_eq!(part1.last(), Some(&b'\n'));
    for hold in [false, true] {
        let (p1, p2) = (part1.clone(), part2.clone());
        let server = serve(move |_| {
            let mut steps = vec![
                Step::Send(p1.clone()),
                Step::Pause(Duration::from_millis(300)),
                Step::Send(p2.clone()),
            ];
            if hold {
                // No NUL, no EOF: the complete document followed by silence ends the read.
                steps.push(Step::Hold);
            }
            steps
        })
        .await;
        let started = Instant::now();
        let deadline = started + Duration::from_secs(5);
        let reply = transport::exchange(
            server.addr,
            br#"{"command":"summary"}"#,
            &limits(1000, 5000),
            deadline,
        )
        .await
        .unwrap();
        let took = started.elapsed();
        assert!(
            took >= Duration::from_millis(300),
            "stopped at the first line break"
        );
        assert!(took < Duration::from_millis(600), "took {took:?}");
        let v = repair::parse_reply(&reply).unwrap();
        assert_eq!(v["SUMMARY"][0]["GHS 5s"], 100.0);
        assert_eq!(v["id"], 1);
    }
}

#[tokio::test]
async fn whole_poll_on_miners_that_never_close() {
    // Every reply NUL-terminated and the socket held open: the poll still ends at once.
    let server = serve(|c| {
        let mut steps = nul_reply(
            &s19_pro(c).unwrap_or_else(|| raw("cases/inputs/C-13_multicommand_invalid.bin")),
        );
        steps.push(Step::Hold);
        steps
    })
    .await;
    let started = Instant::now();
    let mut memory = MinerMemory::default();
    let s = poll(server.addr, &mut memory, &limits(1000, 5000))
        .await
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_millis(1000),
        "took {:?}",
        started.elapsed()
    );
    assert_rate(s.hashrate, 110566.89e9);
}

#[tokio::test]
async fn hung_miner_times_out_within_the_deadline_without_piling_up_sockets() {
    let server = serve(|_| vec![Step::Hold]).await;
    let mut memory = MinerMemory::default();
    for _ in 0..3 {
        let started = Instant::now();
        let e = poll(server.addr, &mut memory, &limits(200, 300))
            .await
            .unwrap_err();
        let took = started.elapsed();
        assert_eq!(e.kind(), "timeout", "{e}");
        assert!(matches!(e, PollError::Timeout { stage: "read", .. }));
        assert!(
            took >= Duration::from_millis(290) && took < Duration::from_millis(700),
            "took {took:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(
            server.log.open.load(Ordering::SeqCst),
            0,
            "socket left open"
        );
    }
    assert_eq!(server.log.max_open.load(Ordering::SeqCst), 1);
    // Nothing learned from a miner that never answered.
    assert_eq!(memory.family(), None);
    assert_eq!(memory.multicommand(), None);
}

#[tokio::test]
async fn dripping_miner_times_out() {
    let server = serve(|_| {
        let mut steps = vec![Step::Send(b"{\"STATUS\":[".to_vec())];
        for _ in 0..100 {
            steps.push(Step::Pause(Duration::from_millis(50)));
            steps.push(Step::Send(b" ".to_vec()));
        }
        steps
    })
    .await;
    let started = Instant::now();
    let e = poll(server.addr, &mut MinerMemory::default(), &limits(200, 400))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), "timeout");
    assert!(started.elapsed() < Duration::from_millis(800));
}

#[tokio::test]
async fn reply_over_the_size_limit_is_an_error_not_a_truncation() {
    let max = 4096;
    let mut big = br#"{"STATUS":[{"STATUS":"S"}],"pad":""#.to_vec();
    big.resize(max * 3, b'x');
    big.extend_from_slice(b"\"}\0");
    let server = serve(move |_| vec![Step::Send(big.clone())]).await;
    let l = Limits {
        max_reply_bytes: max,
        ..limits(500, 1000)
    };
    let e = poll(server.addr, &mut MinerMemory::default(), &l)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), "too_large", "{e}");

    // Exactly at the limit (NUL not counted) is fine.
    let mut exact = br#"{"STATUS":[{"STATUS":"S"}],"pad":""#.to_vec();
    exact.resize(max - 2, b'x');
    exact.extend_from_slice(b"\"}");
    assert_eq!(exact.len(), max);
    let mut wire = exact.clone();
    wire.push(0);
    let server = serve(move |_| vec![Step::Send(wire.clone())]).await;
    let got = transport::exchange(
        server.addr,
        b"{}",
        &l,
        Instant::now() + Duration::from_secs(2),
    )
    .await
    .unwrap();
    assert_eq!(got, exact);
}

#[tokio::test]
async fn garbage_is_a_parse_error() {
    for garbage in [
        b"\x16\x03\x01\x02\x00\x01\x00\xff\xfe garbage".to_vec(),
        b"Socket connect failed: Connection refused\n".to_vec(),
        b"{\"STATUS\":[{\"STATUS\":\"S\"}],\"x\":".to_vec(),
        b"HTTP/1.1 400 Bad Request\r\n\r\n".to_vec(),
    ] {
        let server = serve(move |_| vec![Step::Send(garbage.clone())]).await;
        let mut memory = MinerMemory::default();
        let e = poll(server.addr, &mut memory, &limits(500, 1000))
            .await
            .unwrap_err();
        assert_eq!(e.kind(), "parse", "{e}");
        // Nothing is concluded about a miner that only sent garbage.
        assert_eq!((memory.family(), memory.multicommand()), (None, None));
    }
}

#[tokio::test]
async fn refused_and_empty_connections() {
    // A port nobody listens on.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let e = poll(addr, &mut MinerMemory::default(), &limits(500, 1000))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), "connect", "{e}");

    // Accepts and closes without a byte (a miner rebooting).
    let server = serve(|_| vec![]).await;
    let e = poll(server.addr, &mut MinerMemory::default(), &limits(500, 1000))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), "io", "{e}");
}

#[tokio::test]
async fn join_dropped_without_a_refusal_still_reads_single_commands() {
    // A firmware that closes the socket on a joined command instead of answering code 14.
    let server = serve(|c| {
        if c.contains('+') {
            vec![]
        } else {
            nul_reply(&s19_pro(c).unwrap())
        }
    })
    .await;
    let mut memory = MinerMemory::default();
    let s = poll(server.addr, &mut memory, &limits(1000, 3000))
        .await
        .unwrap();
    assert_rate(s.hashrate, 110566.89e9);
    assert_eq!(
        (memory.family(), memory.multicommand()),
        (Some(Family::Antminer), Some(false))
    );
}

#[tokio::test]
async fn miner_refusing_everything_is_a_miner_error() {
    let invalid = raw("cases/inputs/C-13_multicommand_invalid.bin");
    let server = serve(move |_| nul_reply(&invalid)).await;
    let e = poll(server.addr, &mut MinerMemory::default(), &limits(500, 1000))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), "miner_error", "{e}");
    assert!(e.to_string().contains("Invalid command"), "{e}");
}
