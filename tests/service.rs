//! The daemon under a fake systemd: READY, STATUS, watchdog pings, SIGHUP reload (good and
//! bad config) and a clean SIGTERM stop, read from a real notify socket.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::net::Ipv4Addr;
use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

use support::*;

/// Collects notify datagrams until one satisfies `want`, or fails after `within`.
fn expect_message(
    socket: &UnixDatagram,
    seen: &mut Vec<String>,
    within: Duration,
    want: &dyn Fn(&str) -> bool,
) -> String {
    let deadline = Instant::now() + within;
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        socket
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        if let Ok(n) = socket.recv(&mut buf) {
            let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
            seen.push(msg.clone());
            if want(&msg) {
                return msg;
            }
        }
    }
    panic!("no matching notify message within {within:?}; got {seen:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notify_watchdog_reload_and_stop() {
    let site = Site::start(10, Ipv4Addr::new(127, 61, 0, 1), "").await;
    let config = site.write_config("1s", "");
    let socket_path = site.dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    let socket_env = socket_path.display().to_string();
    let mut daemon = Daemon::spawn_with_env(
        &config,
        "daemon.log",
        &[
            ("NOTIFY_SOCKET", socket_env.as_str()),
            ("WATCHDOG_USEC", "2000000"),
        ],
    );
    let mut seen = Vec::new();
    let long = Duration::from_secs(20);

    let ready = expect_message(&socket, &mut seen, long, &|m| m.contains("READY=1"));
    assert!(ready.contains("STATUS=polling"), "{ready}");
    // STATUS follows the cycles: the 10 miners show up as polled.
    expect_message(&socket, &mut seen, long, &|m| {
        m.contains("STATUS=polling 10 miners (10 ok)")
    });
    // The watchdog is fed every WATCHDOG_USEC / 2 while the loops make progress.
    expect_message(&socket, &mut seen, Duration::from_secs(3), &|m| {
        m.contains("WATCHDOG=1")
    });
    expect_message(&socket, &mut seen, Duration::from_secs(3), &|m| {
        m.contains("WATCHDOG=1")
    });

    // A bad config on SIGHUP is refused and the running one stays.
    let good = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, good.replace("[poll]", "[poll]\nbogus = 1")).unwrap();
    daemon.signal("HUP");
    expect_message(&socket, &mut seen, long, &|m| {
        m.contains("RELOADING=1") && m.contains("MONOTONIC_USEC=")
    });
    let refused = expect_message(&socket, &mut seen, long, &|m| m.contains("READY=1"));
    assert!(
        refused.contains("config reload refused") && refused.contains("poll.bogus"),
        "{refused}"
    );
    daemon.assert_running();
    let before = site.foreman.summary().samples_received;
    let foreman = site.foreman.clone();
    wait_until(long, "polling goes on after a refused reload", || {
        foreman.summary().samples_received > before + 10
    })
    .await;

    // A good config is applied: a new generation starts with it and keeps polling.
    std::fs::write(
        &config,
        good.replace("timeout = \"900ms\"", "timeout = \"800ms\""),
    )
    .unwrap();
    daemon.signal("HUP");
    expect_message(&socket, &mut seen, long, &|m| m.contains("RELOADING=1"));
    expect_message(&socket, &mut seen, long, &|m| {
        m.contains("READY=1") && m.contains("STATUS=polling")
    });
    let before = site.foreman.summary().samples_received;
    wait_until(long, "polling after the reload", || {
        foreman.summary().samples_received > before + 10
    })
    .await;

    daemon.signal("TERM");
    expect_message(&socket, &mut seen, long, &|m| m.contains("STOPPING=1"));
    let status = daemon.terminate_wait().await;
    assert!(status.success(), "{status:?}");
    assert_eq!(site.foreman.summary().samples_duplicate, 0);
    let log = std::fs::read_to_string(config.with_file_name("daemon.log")).unwrap();
    assert!(
        !log.contains(&site.foreman.api_key()),
        "the API key leaked into the log"
    );
}
