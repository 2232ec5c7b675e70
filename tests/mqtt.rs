//! MQTT end to end: the real daemon against a simulated site and a real `mosquitto` broker on
//! a free loopback port. Metrics and availability per miner, retained agent status with a last
//! will, a broker outage that neither stops Foreman uploads nor the reconnect, commands over
//! MQTT that run once and report truthfully across broker restarts, refusals, and a half-open
//! connection replaced thanks to keep-alive, and a persistent session that keeps commands sent
//! while the agent was away.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use support::*;

const MINERS: usize = 5;
const MOSQUITTO: &str = "/usr/sbin/mosquitto";
const PREFIX: &str = "it/mqtt";

/// A real mosquitto on 127.0.0.1:`port`, killed when dropped.
struct Broker {
    child: Child,
}

impl Broker {
    fn start(dir: &Path, port: u16) -> Broker {
        assert!(
            Path::new(MOSQUITTO).exists(),
            "{MOSQUITTO} is missing: install mosquitto (apt-get install mosquitto); this test does not skip"
        );
        let conf = dir.join("mosquitto.conf");
        std::fs::write(
            &conf,
            format!("listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"),
        )
        .unwrap();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("mosquitto.log"))
            .unwrap();
        let child = Command::new(MOSQUITTO)
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {MOSQUITTO}: {e}"));
        let mut broker = Broker { child };
        for _ in 0..100 {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return broker;
            }
            if let Some(status) = broker.child.try_wait().unwrap() {
                panic!(
                    "mosquitto exited ({status}): {}",
                    std::fs::read_to_string(dir.join("mosquitto.log")).unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("mosquitto did not listen on 127.0.0.1:{port} within 5 s");
    }

    fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[derive(Debug, Clone)]
struct Message {
    topic: String,
    payload: String,
    retain: bool,
}

type Inbox = Arc<Mutex<Vec<Message>>>;

/// A subscriber to `PREFIX/#` that keeps every message and reconnects when the broker is back.
fn subscribe(port: u16, id: &str) -> (Inbox, tokio::task::JoinHandle<()>) {
    let (got, task, _client) = client(port, id);
    (got, task)
}

/// Like [`subscribe`], with the client to publish through (the task polls its event loop).
fn client(port: u16, id: &str) -> (Inbox, tokio::task::JoinHandle<()>, AsyncClient) {
    let got = Arc::new(Mutex::new(Vec::new()));
    let mut options = MqttOptions::new(id, "127.0.0.1", port);
    options.set_keep_alive(Duration::from_secs(5));
    let (client, mut eventloop) = AsyncClient::new(options, 100);
    let publisher = client.clone();
    let sink = got.clone();
    let task = tokio::spawn(async move {
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    client
                        .try_subscribe(format!("{PREFIX}/#"), QoS::AtLeastOnce)
                        .unwrap();
                }
                Ok(Event::Incoming(Packet::Publish(p))) => sink.lock().unwrap().push(Message {
                    topic: p.topic.clone(),
                    payload: String::from_utf8_lossy(&p.payload).into_owned(),
                    retain: p.retain,
                }),
                Ok(_) => {}
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
    });
    (got, task, publisher)
}

/// What a fresh client receives as the retained message of `topic`.
async fn retained(port: u16, topic: &str) -> Option<String> {
    let (got, task) = subscribe(port, &format!("it-probe-{}", free_port()));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    let mut found = None;
    while tokio::time::Instant::now() < deadline && found.is_none() {
        found = got
            .lock()
            .unwrap()
            .iter()
            .find(|m| m.topic == topic && m.retain)
            .map(|m| m.payload.clone());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    task.abort();
    found
}

fn metrics_topic(addr: std::net::SocketAddr) -> String {
    format!("{PREFIX}/miners/{}_{}/metrics", addr.ip(), addr.port())
}

fn has_metrics_for_all(got: &Mutex<Vec<Message>>, site: &Site) -> bool {
    let got = got.lock().unwrap();
    site.fleet
        .miners()
        .iter()
        .all(|m| got.iter().any(|g| g.topic == metrics_topic(m.addr)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_availability_status_and_broker_outage() {
    let site = Site::start(MINERS, Ipv4Addr::new(127, 91, 0, 1), "").await;
    let (broker_dir, port, broker) = own_broker();
    let metrics_port = free_port();
    let config = site.write_config(
        "1s",
        &format!(
            "[mqtt]\nurl = \"mqtt://127.0.0.1:{port}\"\ntopic_prefix = \"{PREFIX}\"\nusername = \"u\"\npassword = \"mqtt-secret-pw\"\n\
             home_assistant = true\ndiscovery_prefix = \"{PREFIX}/ha\"\n\
             [metrics]\nlisten = \"127.0.0.1:{metrics_port}\"\n"
        ),
    );
    let (got, _sub) = subscribe(port, "it-sub");
    let mut daemon = Daemon::spawn(&config, "daemon.log");

    wait_until(Duration::from_secs(30), "metrics for every miner", || {
        has_metrics_for_all(&got, &site)
    })
    .await;
    daemon.assert_running();

    // The same hashRate as the Foreman upload of the same cycle.
    let messages = got.lock().unwrap().clone();
    let foreman = site.foreman.clone();
    for miner in site.fleet.miners() {
        let m = messages
            .iter()
            .find(|g| g.topic == metrics_topic(miner.addr))
            .unwrap();
        let body: serde_json::Value = serde_json::from_str(&m.payload).unwrap();
        assert!(!m.retain, "metrics are not retained");
        assert_eq!(body["ip"], miner.addr.ip().to_string());
        assert_eq!(body["model"].as_str(), Some(miner.model_name.as_str()));
        let ts = body["timestamp"].as_str().unwrap().to_string();
        let rate_ths = body["hashrate_ths"].as_f64().unwrap();
        let ip = miner.addr.ip().to_string();
        wait_until(Duration::from_secs(20), "Foreman has that cycle", || {
            foreman
                .samples()
                .iter()
                .any(|s| s.ip == ip && s.samples.iter().any(|x| x.timestamp == ts))
        })
        .await;
        let uploaded = foreman
            .samples()
            .into_iter()
            .find(|s| s.ip == ip && s.port == miner.addr.port())
            .unwrap()
            .samples
            .into_iter()
            .find(|x| x.timestamp == ts)
            .unwrap();
        // The same realtime rate as the Foreman upload of that cycle (H/s there, TH/s here).
        let uploaded_ths = uploaded.hash_rate.parse::<f64>().unwrap() / 1e12;
        assert!(
            (rate_ths - uploaded_ths).abs() < 0.001 && rate_ths > 0.0,
            "{}: {rate_ths} TH/s on MQTT, {uploaded_ths} TH/s to Foreman",
            miner.addr
        );
        let availability = format!("{PREFIX}/miners/{}_{}/availability", ip, miner.addr.port());
        assert_eq!(
            retained(port, &availability).await.as_deref(),
            Some("online")
        );
    }
    let status = format!("{PREFIX}/status");
    assert_eq!(retained(port, &status).await.as_deref(), Some("online"));

    // Home Assistant discovery: a retained hashrate sensor per miner reading its metrics.
    let discovery = |got: &Mutex<Vec<Message>>| -> Vec<(String, serde_json::Value)> {
        got.lock()
            .unwrap()
            .iter()
            .filter(|m| {
                m.topic.starts_with(&format!("{PREFIX}/ha/")) && m.topic.ends_with("/config")
            })
            .map(|m| (m.topic.clone(), serde_json::from_str(&m.payload).unwrap()))
            .collect()
    };
    let configs = discovery(&got);
    for miner in site.fleet.miners() {
        let hashrate = configs
            .iter()
            .find(|(_, c)| {
                c["state_topic"] == metrics_topic(miner.addr) && c["unit_of_measurement"] == "TH/s"
            })
            .unwrap_or_else(|| panic!("no hashrate sensor for {}", miner.addr));
        assert!(
            retained(port, &hashrate.0).await.is_some(),
            "discovery is retained"
        );
    }
    assert!(
        configs
            .iter()
            .any(|(_, c)| c["device_class"] == "connectivity"),
        "the agent announces itself"
    );
    // Home Assistant restarts: everything is announced again.
    let before = configs.len();
    let (_, _task, operator) = client(port, "it-ha");
    tokio::time::sleep(Duration::from_millis(300)).await;
    operator
        .publish(
            format!("{PREFIX}/ha/status"),
            QoS::AtLeastOnce,
            false,
            "online",
        )
        .await
        .unwrap();
    wait_until(Duration::from_secs(10), "discovery sent again", || {
        discovery(&got).len() >= 2 * before
    })
    .await;

    // Broker down: Foreman uploads go on.
    broker.kill();
    let before = site.foreman.summary().samples_received;
    wait_until(
        Duration::from_secs(20),
        "Foreman keeps receiving while the broker is down",
        || foreman.summary().samples_received >= before + 3 * MINERS as u64,
    )
    .await;
    daemon.assert_running();

    // Broker back on the same port: the agent reconnects and publishes again.
    got.lock().unwrap().clear();
    let broker = Broker::start(broker_dir.path(), port);
    wait_until(
        Duration::from_secs(30),
        "metrics again after the restart",
        || has_metrics_for_all(&got, &site),
    )
    .await;
    assert_eq!(retained(port, &status).await.as_deref(), Some("online"));

    // /metrics tells the story: connected again, messages published, the outage's drops.
    let scrape = scrape_metrics(metrics_port).await;
    let value = |name: &str| metric_value(&scrape, name);
    assert_eq!(value("pickaxe_mqtt_connected"), 1.0);
    assert!(value("pickaxe_mqtt_connections_total") >= 2.0);
    assert!(value("pickaxe_mqtt_published_total") >= 2.0 * MINERS as f64);
    assert!(
        value("pickaxe_mqtt_dropped_total") >= MINERS as f64,
        "the outage's messages are counted as dropped"
    );

    // SIGKILL: the broker publishes the last will.
    daemon.assert_running();
    let log = daemon.log_text();
    daemon.kill_hard();
    assert!(
        !log.contains("mqtt-secret-pw"),
        "the MQTT password leaked into the log"
    );
    let mut last = None;
    for _ in 0..30 {
        last = retained(port, &status).await;
        if last.as_deref() == Some("offline") {
            break;
        }
    }
    assert_eq!(last.as_deref(), Some("offline"), "last will after SIGKILL");
    drop(broker);
}

/// A site of miners that reboot over their API (LuxOS, Whatsminer, Avalon) in ~1 s.
async fn reboot_site(base: Ipv4Addr, reboot_secs: f64) -> Site {
    let site = Site::start_with(pickaxe_sim::FleetConfig {
        count: 4,
        base,
        mix: pickaxe_sim::parse_mix("luxos-s19kpro=2,m31s=1,avalonq=1").unwrap(),
        reboot_secs,
        // Sent in every command's args: it must never show up in a log or a status.
        whatsminer_password: "miner-secret-pw".into(),
        ..pickaxe_sim::FleetConfig::default()
    })
    .await;
    site.foreman.set_command_delay(Duration::from_millis(300));
    site
}

/// A daemon config with `[mqtt]` (plus `mqtt_extra`) and fast command verification.
fn command_config(site: &Site, port: u16, control: bool, mqtt_extra: &str) -> std::path::PathBuf {
    let path = site.write_config(
        "1s",
        &format!(
            "[commands]\nverify_interval = \"300ms\"\nminer_timeout = \"1s\"\n\
             [mqtt]\nurl = \"mqtt://127.0.0.1:{port}\"\ntopic_prefix = \"{PREFIX}\"\n{mqtt_extra}\n"
        ),
    );
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, format!("control = {control}\n{text}")).unwrap();
    path
}

fn reboot_command(id: &str, addr: SocketAddr) -> String {
    serde_json::json!({
        "id": id,
        "command": "reboot",
        "args": {"ip": addr.ip().to_string(), "apiPort": addr.port(), "deadlineMillis": 30000, "password": "miner-secret-pw"},
        "issued_at": chrono::Utc::now().to_rfc3339(),
    })
    .to_string()
}

fn status_topic(id: &str) -> String {
    format!("{PREFIX}/commands/{id}/status")
}

/// The states published on a command's status topic, in order.
fn states(got: &Mutex<Vec<Message>>, id: &str) -> Vec<String> {
    let topic = status_topic(id);
    got.lock()
        .unwrap()
        .iter()
        .filter(|m| m.topic == topic && !m.payload.is_empty())
        .map(|m| {
            let v: serde_json::Value = serde_json::from_str(&m.payload).unwrap();
            v["state"].as_str().unwrap_or("?").to_string()
        })
        .collect()
}

/// Waits until the command's status topic carried a final state, and returns its message.
async fn final_status(got: &Inbox, id: &str, within: Duration) -> serde_json::Value {
    let topic = status_topic(id);
    let mut found = None;
    wait_until(within, &format!("a final status for {id}"), || {
        found = got
            .lock()
            .unwrap()
            .iter()
            .filter(|m| m.topic == topic && !m.payload.is_empty())
            .map(|m| serde_json::from_str::<serde_json::Value>(&m.payload).unwrap())
            .find(|v| {
                matches!(
                    v["state"].as_str(),
                    Some("succeeded" | "failed" | "refused")
                )
            });
        found.is_some()
    })
    .await;
    found.unwrap()
}

async fn send(client: &AsyncClient, body: &str) {
    client
        .publish(format!("{PREFIX}/commands"), QoS::AtLeastOnce, false, body)
        .await
        .unwrap();
}

/// Waits for the agent's retained `online` (connected and subscribed: subscriptions are
/// queued before anything else on a new connection).
async fn wait_online(port: u16) {
    let status = format!("{PREFIX}/status");
    for _ in 0..20 {
        if retained(port, &status).await.as_deref() == Some("online") {
            return;
        }
    }
    panic!("the agent never said online");
}

/// The state database's write lock, held as a backup would hold it, until released.
struct DatabaseLock(sqlx::SqliteConnection);

impl DatabaseLock {
    async fn take(db: &Path) -> DatabaseLock {
        use sqlx::Connection;
        let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", db.display()))
            .await
            .unwrap();
        sqlx::query("BEGIN IMMEDIATE")
            .execute(&mut conn)
            .await
            .unwrap();
        DatabaseLock(conn)
    }

    async fn release(mut self) {
        use sqlx::Connection;
        sqlx::query("ROLLBACK").execute(&mut self.0).await.unwrap();
        self.0.close().await.unwrap();
    }
}

/// A broker of the test's own; its directory is kept for a restart on the same port.
fn own_broker() -> (tempfile::TempDir, u16, Broker) {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let broker = Broker::start(dir.path(), port);
    (dir, port, broker)
}

/// Starts the agent, waits until it is online (so subscribed), then connects an operator
/// who sees everything under the prefix.
async fn start_agent(
    config: &Path,
    port: u16,
) -> (Daemon, Inbox, tokio::task::JoinHandle<()>, AsyncClient) {
    let daemon = Daemon::spawn(config, "daemon.log");
    wait_online(port).await;
    let (got, task, client) = client(port, "it-operator");
    tokio::time::sleep(Duration::from_millis(500)).await;
    (daemon, got, task, client)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_sent_twice_runs_once_and_reports_across_broker_restarts() {
    let site = reboot_site(Ipv4Addr::new(127, 92, 0, 1), 3.0).await;
    let miners = site.fleet.miners();
    let (broker_dir, port, broker) = own_broker();
    let config = command_config(&site, port, true, "commands = true");
    let (daemon, got, _task, client) = start_agent(&config, port).await;

    // Sent twice with the same id, as a QoS 1 redelivery would: one reboot, one result.
    let first = reboot_command("r-1", miners[0].addr);
    send(&client, &first).await;
    send(&client, &first).await;
    let done = final_status(&got, "r-1", Duration::from_secs(40)).await;
    assert_eq!(done["state"], "succeeded", "{done}");
    assert_eq!(
        site.fleet.reboots(miners[0].addr),
        1,
        "rebooted exactly once"
    );
    let seen = states(&got, "r-1");
    assert_eq!(
        seen.first().map(String::as_str),
        Some("received"),
        "{seen:?}"
    );
    assert_eq!(
        seen.iter().filter(|s| *s == "succeeded").count(),
        1,
        "one final status: {seen:?}"
    );
    // The final status stays on the broker for whoever looks later.
    let kept = retained(port, &status_topic("r-1")).await.unwrap();
    assert!(kept.contains("succeeded"), "{kept}");
    // A command from MQTT is not reported to Foreman, which never sent it.
    assert!(site.foreman.commands().iter().all(|c| c.id != "r-1"));

    // The broker restarts while a reboot is being verified: its result still arrives.
    send(&client, &reboot_command("r-2", miners[1].addr)).await;
    let fleet = site.fleet.clone();
    let second = miners[1].addr;
    wait_until(Duration::from_secs(20), "the second reboot sent", || {
        fleet.reboots(second) == 1
    })
    .await;
    broker.kill();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let broker = Broker::start(broker_dir.path(), port);
    wait_online(port).await;
    let done = final_status(&got, "r-2", Duration::from_secs(40)).await;
    assert_eq!(done["state"], "succeeded", "{done}");

    // After the restart: subscribed again, a redelivered old id still does not run, a new
    // command does.
    send(&client, &first).await;
    send(&client, &reboot_command("r-3", miners[2].addr)).await;
    let done = final_status(&got, "r-3", Duration::from_secs(40)).await;
    assert_eq!(done["state"], "succeeded", "{done}");
    assert_eq!(site.fleet.reboots(miners[0].addr), 1, "r-1 never ran again");
    assert_eq!(site.fleet.reboots(miners[2].addr), 1);

    let log = daemon.log_text();
    // Everything on the broker but the commands themselves.
    let statuses: String = got
        .lock()
        .unwrap()
        .iter()
        .filter(|m| m.topic != format!("{PREFIX}/commands"))
        .map(|m| m.payload.clone())
        .collect();
    assert!(
        !log.contains("miner-secret-pw"),
        "miner password in the log"
    );
    assert!(
        !statuses.contains("miner-secret-pw"),
        "miner password published"
    );
    drop(daemon);
    drop(broker);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_are_refused_unless_enabled_and_monitor_only_applies() {
    let site = reboot_site(Ipv4Addr::new(127, 93, 0, 1), 1.0).await;
    let miner = site.fleet.miners()[0].addr;
    let (_broker_dir, port, _broker) = own_broker();
    let (got, _task, client) = client(port, "it-operator");

    // A retained command left on the broker is cleared when the agent connects, and never
    // replayed: not on this connection, not on any later one.
    client
        .publish(
            format!("{PREFIX}/commands"),
            QoS::AtLeastOnce,
            true,
            reboot_command("ret-1", miner),
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(retained(port, &format!("{PREFIX}/commands"))
        .await
        .is_some());

    // Not enabled: refused, nothing recorded, nothing rebooted.
    let mut daemon = Daemon::spawn(&command_config(&site, port, true, ""), "off.log");
    wait_online(port).await;
    send(&client, &reboot_command("d-1", miner)).await;
    let refused = final_status(&got, "d-1", Duration::from_secs(20)).await;
    assert_eq!(refused["state"], "refused");
    assert!(
        refused["message"]
            .as_str()
            .unwrap()
            .contains("mqtt.commands"),
        "{refused}"
    );
    // Garbage gets an answer too, and the agent keeps running.
    send(&client, "reboot now please").await;
    wait_until(
        Duration::from_secs(10),
        "malformed command rejected",
        || {
            got.lock()
                .unwrap()
                .iter()
                .any(|m| m.topic == format!("{PREFIX}/commands/rejected"))
        },
    )
    .await;
    daemon.assert_running();
    assert_eq!(
        retained(port, &format!("{PREFIX}/commands")).await,
        None,
        "the retained command was cleared"
    );
    daemon.terminate().await;

    // Enabled, but the pickaxe is monitor-only: recorded, and failed with the reason.
    let daemon = Daemon::spawn(
        &command_config(&site, port, false, "commands = true"),
        "monitor.log",
    );
    wait_online(port).await;
    send(&client, &reboot_command("d-2", miner)).await;
    let failed = final_status(&got, "d-2", Duration::from_secs(20)).await;
    assert_eq!(failed["state"], "failed");
    assert!(
        failed["message"]
            .as_str()
            .unwrap()
            .contains("control disabled"),
        "{failed}"
    );
    // Stale: issued long ago, refused.
    let stale = serde_json::json!({
        "id": "d-3", "command": "reboot",
        "args": {"ip": miner.ip().to_string(), "apiPort": miner.port()},
        "issued_at": (chrono::Utc::now() - chrono::Duration::hours(2)).to_rfc3339(),
    });
    send(&client, &stale.to_string()).await;
    let refused = final_status(&got, "d-3", Duration::from_secs(20)).await;
    assert_eq!(refused["state"], "refused");
    assert!(refused["message"].as_str().unwrap().starts_with("stale"));
    assert_eq!(site.fleet.reboots(miner), 0, "nothing was rebooted");
    drop(daemon);
}

/// A TCP relay to the broker that can go silent on its open connections while still
/// accepting new ones: what a dead NAT entry or a pulled cable looks like to the agent.
struct Relay {
    port: u16,
    epoch: Arc<std::sync::atomic::AtomicU64>,
}

impl Relay {
    async fn start(broker_port: u16) -> Relay {
        use std::sync::atomic::{AtomicU64, Ordering};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let epoch = Arc::new(AtomicU64::new(0));
        let current = epoch.clone();
        tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                let born = current.load(Ordering::SeqCst);
                let current = current.clone();
                tokio::spawn(async move {
                    let Ok(outbound) =
                        tokio::net::TcpStream::connect(("127.0.0.1", broker_port)).await
                    else {
                        return;
                    };
                    let (ir, iw) = inbound.into_split();
                    let (or, ow) = outbound.into_split();
                    let pump = |mut from: tokio::net::tcp::OwnedReadHalf,
                                mut to: tokio::net::tcp::OwnedWriteHalf,
                                current: Arc<AtomicU64>| async move {
                        use tokio::io::{AsyncReadExt, AsyncWriteExt};
                        let mut buf = vec![0u8; 16 * 1024];
                        loop {
                            let n = match from.read(&mut buf).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => n,
                            };
                            if current.load(Ordering::SeqCst) != born {
                                // Silent: hold both sockets open, forward nothing, forever.
                                std::future::pending::<()>().await;
                            }
                            if to.write_all(&buf[..n]).await.is_err() {
                                return;
                            }
                        }
                    };
                    tokio::join!(pump(ir, ow, current.clone()), pump(or, iw, current));
                });
            }
        });
        Relay { port, epoch }
    }

    /// Every connection open now goes silent; new ones work.
    fn silence_open_connections(&self) {
        self.epoch.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_half_open_connection_is_replaced_by_keep_alive() {
    let site = reboot_site(Ipv4Addr::new(127, 94, 0, 1), 1.0).await;
    let miner = site.fleet.miners()[0].addr;
    let (_broker_dir, port, _broker) = own_broker();
    let relay = Relay::start(port).await;
    let config = command_config(
        &site,
        relay.port,
        true,
        "commands = true\nkeep_alive = \"5s\"",
    );
    let (daemon, got, _task, client) = start_agent(&config, port).await;

    relay.silence_open_connections();
    let silenced = std::time::Instant::now();
    got.lock().unwrap().clear();
    // Without keep-alive the agent would write into the void forever; with 5 s it notices
    // within two intervals, connects again and subscribes again.
    let status = format!("{PREFIX}/status");
    wait_until(
        Duration::from_secs(30),
        "online again after the silence",
        || {
            got.lock()
                .unwrap()
                .iter()
                .any(|m| m.topic == status && m.payload == "online")
        },
    )
    .await;
    let replaced_after = silenced.elapsed();
    send(&client, &reboot_command("h-1", miner)).await;
    let done = final_status(&got, "h-1", Duration::from_secs(30)).await;
    assert_eq!(done["state"], "succeeded", "{done}");
    assert!(
        daemon.log_text().contains("MQTT connection lost"),
        "the dead connection was noticed"
    );
    eprintln!("half-open connection replaced after {replaced_after:?}");
    drop(daemon);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_persistent_session_runs_commands_sent_while_the_agent_was_away() {
    let site = reboot_site(Ipv4Addr::new(127, 95, 0, 1), 1.0).await;
    let miners = site.fleet.miners();
    let (_broker_dir, port, _broker) = own_broker();
    let config = command_config(
        &site,
        port,
        true,
        "commands = true\npersistent_session = true",
    );
    let (daemon, got, _task, client) = start_agent(&config, port).await;

    // The agent stops (an upgrade, say); commands are sent while it is away.
    assert!(daemon.terminate().await.success());
    let status = format!("{PREFIX}/status");
    assert_eq!(retained(port, &status).await.as_deref(), Some("offline"));
    send(&client, &reboot_command("p-1", miners[0].addr)).await;
    let undated = serde_json::json!({
        "id": "p-2",
        "command": "reboot",
        "args": {"ip": miners[1].addr.ip().to_string(), "apiPort": miners[1].addr.port()},
    });
    send(&client, &undated.to_string()).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(states(&got, "p-1").is_empty(), "nobody took p-1 yet");

    // Back: the broker hands over what it queued.
    let daemon = Daemon::spawn(&config, "daemon-again.log");
    let done = final_status(&got, "p-1", Duration::from_secs(40)).await;
    assert_eq!(done["state"], "succeeded", "{done}");
    assert_eq!(site.fleet.reboots(miners[0].addr), 1);
    // Without issued_at a queued command could be days old: refused, never run.
    let refused = final_status(&got, "p-2", Duration::from_secs(10)).await;
    assert_eq!(refused["state"], "refused", "{refused}");
    assert!(
        refused["message"].as_str().unwrap().contains("issued_at"),
        "{refused}"
    );
    assert_eq!(site.fleet.reboots(miners[1].addr), 0);
    drop(daemon);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_is_acknowledged_only_once_recorded() {
    let site = reboot_site(Ipv4Addr::new(127, 96, 0, 1), 1.0).await;
    let miner = site.fleet.miners()[0].addr;
    let (_broker_dir, port, _broker) = own_broker();
    let config = command_config(
        &site,
        port,
        true,
        "commands = true\npersistent_session = true",
    );
    let (daemon, got, _task, client) = start_agent(&config, port).await;

    // The state database is busy (a backup holding its lock, say) when a command arrives,
    // and the agent dies before it could record it.
    let lock = DatabaseLock::take(&site.db_path()).await;
    send(&client, &reboot_command("k-1", miner)).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    daemon.kill_hard();
    lock.release().await;
    assert!(states(&got, "k-1").is_empty(), "k-1 was never recorded");
    assert_eq!(site.fleet.reboots(miner), 0);

    // The broker never got an acknowledgement, so it still has the command for the agent.
    let daemon = Daemon::spawn(&config, "daemon-again.log");
    let done = final_status(&got, "k-1", Duration::from_secs(40)).await;
    assert_eq!(done["state"], "succeeded", "{done}");
    assert_eq!(site.fleet.reboots(miner), 1);
    drop(daemon);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_reports_whether_the_broker_takes_the_login() {
    let site = Site::start(1, Ipv4Addr::new(127, 98, 0, 1), "").await;
    let (_broker_dir, port, broker) = own_broker();
    let config = command_config(&site, port, true, "");
    let check = move || {
        let out = Command::new(env!("CARGO_BIN_EXE_pickaxe"))
            .args(["check", "--config"])
            .arg(&config)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr),
        )
    };
    let (ok, text) = tokio::task::spawn_blocking(check.clone()).await.unwrap();
    assert!(ok, "{text}");
    assert!(
        text.contains("mqtt:     reachable, login accepted"),
        "{text}"
    );

    broker.kill();
    let (ok, text) = tokio::task::spawn_blocking(check).await.unwrap();
    assert!(!ok, "check passed without a broker: {text}");
    assert!(text.contains("mqtt: mqtt://127.0.0.1:"), "{text}");
}

/// A message larger than the agent takes (1 MiB) kills the connection that receives it. With
/// a persistent session the broker keeps it and delivers it first on every reconnect: the
/// session must be given up, or no command (and no status) ever gets through again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_command_does_not_wedge_a_persistent_session() {
    let site = reboot_site(Ipv4Addr::new(127, 150, 0, 1), 1.0).await;
    let miner = site.fleet.miners()[0].addr;
    let (broker_dir, port, _broker) = own_broker();
    let config = command_config(
        &site,
        port,
        true,
        "commands = true\npersistent_session = true\nclient_id = \"it-big-agent\"",
    );
    let (daemon, got, _task, client) = start_agent(&config, port).await;

    let mut options = MqttOptions::new("it-big", "127.0.0.1", port);
    options.set_max_packet_size(4 << 20, 4 << 20);
    let (big, mut eventloop) = AsyncClient::new(options, 10);
    let pump = tokio::spawn(async move { while eventloop.poll().await.is_ok() {} });
    big.publish(
        format!("{PREFIX}/commands"),
        QoS::AtLeastOnce,
        false,
        vec![b'x'; 2 << 20],
    )
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_secs(4)).await;
    pump.abort();

    send(&client, &reboot_command("big-2", miner)).await;
    let done = final_status(&got, "big-2", Duration::from_secs(30)).await;
    assert_eq!(done["state"], "succeeded", "{done}");
    assert!(daemon.log_text().contains("session dropped"));

    // One clean connection dropped the session; the agent is on a persistent one again.
    let log = std::fs::read_to_string(broker_dir.path().join("mosquitto.log")).unwrap();
    let sessions: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("as it-big-agent ("))
        .map(|l| {
            if l.contains(" c1,") {
                "clean"
            } else {
                "persistent"
            }
        })
        .collect();
    assert!(sessions.contains(&"clean"), "{log}");
    assert_eq!(sessions.last(), Some(&"persistent"), "{log}");
    drop(daemon);
}

/// A broker that takes the connection and never answers: `check` gives up in bounded time
/// and says so, without the password.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_gives_up_on_a_silent_broker_without_showing_the_password() {
    let site = Site::start(1, Ipv4Addr::new(127, 151, 0, 1), "").await;
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let config = command_config(
        &site,
        port,
        true,
        "username = \"u\"\npassword = \"mqtt-secret-pw\"",
    );
    let started = std::time::Instant::now();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_pickaxe"))
            .args(["check", "--config"])
            .arg(&config)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{text}");
    assert!(started.elapsed() < Duration::from_secs(20), "{text}");
    assert!(text.contains("mqtt: mqtt://127.0.0.1:"), "{text}");
    assert!(!text.contains("mqtt-secret-pw"), "{text}");
    drop(silent);
}

/// A command recorded whose acknowledgement was lost (the connection died just then) comes
/// back from the broker on the next connection, maybe stale by then: it was taken, so it
/// must not be reported refused over its real result.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_delivered_again_after_it_was_taken_is_not_reported_refused() {
    let site = reboot_site(Ipv4Addr::new(127, 153, 0, 1), 1.0).await;
    let miner = site.fleet.miners()[0].addr;
    let (_broker_dir, port, _broker) = own_broker();
    let relay = Relay::start(port).await;
    let config = command_config(
        &site,
        relay.port,
        true,
        "commands = true\npersistent_session = true\nkeep_alive = \"5s\"\ncommand_max_age = \"3s\"",
    );
    let (daemon, got, _task, client) = start_agent(&config, port).await;

    // The command waits in the agent for a locked database; meanwhile the link goes dead,
    // so its acknowledgement, sent once it is recorded, never reaches the broker.
    let lock = DatabaseLock::take(&site.db_path()).await;
    send(&client, &reboot_command("t-1", miner)).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    relay.silence_open_connections();
    lock.release().await;

    // Keep-alive replaces the connection; the broker delivers t-1 again, stale by now.
    let done = final_status(&got, "t-1", Duration::from_secs(40)).await;
    assert_eq!(done["state"], "succeeded", "{done}");
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        daemon.log_text().contains("MQTT connection lost"),
        "the connection was replaced"
    );
    let states = states(&got, "t-1");
    assert!(!states.contains(&"refused".to_string()), "{states:?}");
    assert_eq!(site.fleet.reboots(miner), 1);
    drop(daemon);
}
