//! MQTT end to end: the real daemon against a simulated site and a real `mosquitto` broker on
//! a free loopback port. Metrics and availability per miner, retained agent status with a last
//! will, and a broker outage that neither stops Foreman uploads nor the reconnect.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::net::{Ipv4Addr, TcpListener, TcpStream};
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

/// A subscriber to `PREFIX/#` that keeps every message and reconnects when the broker is back.
fn subscribe(port: u16, id: &str) -> (Arc<Mutex<Vec<Message>>>, tokio::task::JoinHandle<()>) {
    let got = Arc::new(Mutex::new(Vec::new()));
    let mut options = MqttOptions::new(id, "127.0.0.1", port);
    options.set_keep_alive(Duration::from_secs(5));
    let (client, mut eventloop) = AsyncClient::new(options, 100);
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
    (got, task)
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
    let broker_dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let broker = Broker::start(broker_dir.path(), port);
    let config = site.write_config(
        "1s",
        &format!(
            "[mqtt]\nurl = \"mqtt://127.0.0.1:{port}\"\ntopic_prefix = \"{PREFIX}\"\nusername = \"u\"\npassword = \"mqtt-secret-pw\"\n"
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
        assert_eq!(body["apiIp"], miner.addr.ip().to_string());
        let ts = body["timestamp"].as_str().unwrap().to_string();
        let rate = body["asics"][0]["hashRate"].as_str().unwrap().to_string();
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
        assert_eq!(rate, uploaded.hash_rate, "{}: hashRate", miner.addr);
        assert!(rate.parse::<f64>().unwrap() > 0.0);
        let availability = format!("{PREFIX}/miners/{}_{}/availability", ip, miner.addr.port());
        assert_eq!(
            retained(port, &availability).await.as_deref(),
            Some("online")
        );
    }
    let status = format!("{PREFIX}/status");
    assert_eq!(retained(port, &status).await.as_deref(), Some("online"));

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
