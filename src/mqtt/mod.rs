//! Optional MQTT publisher: the live view of the site (durability comes from the Foreman
//! store-and-forward path, not from here).
//!
//! One task owns rumqttc's `EventLoop` and polls it (rumqttc sends nothing otherwise), with
//! exponential backoff and jitter between reconnects and a retained `online` on
//! `<prefix>/status` after every ConnAck (the last will is a retained `offline`). A second
//! task turns each stored poll cycle into per-miner messages with `try_publish` only. The poll
//! loop hands cycles over with `try_send` on a small bounded channel, so a slow or dead broker
//! never blocks polling: what cannot be queued is dropped, counted, and logged once per episode.

mod availability;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rumqttc::{AsyncClient, Event, EventLoop, LastWill, MqttOptions, Packet, QoS, Transport};
use serde::Serialize;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, error, info, warn};

use crate::config::{Config, MqttConfig};
use crate::foreman::metrics::{format_timestamp, miner_entry, MinerEntry, Sample};
use crate::foreman::retry::Backoff;
use crate::store::PollRecord;
pub use availability::{Availability, AvailabilityTracker};

/// Cycles waiting for the publisher; more means the broker side is stuck, so drop.
const CYCLE_QUEUE: usize = 2;
/// rumqttc's request channel: one cycle of a large site fits.
const REQUEST_QUEUE: usize = 20_000;
/// How long a clean shutdown waits for `offline` to reach the broker.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// What the poll loop hands over after a cycle is stored.
#[derive(Debug)]
pub struct CycleReport {
    pub taken_at: DateTime<Utc>,
    pub samples: Vec<Sample>,
    pub records: Vec<PollRecord>,
}

/// The poll loop's side: never blocks.
#[derive(Debug, Clone)]
pub struct MqttSender {
    tx: mpsc::Sender<CycleReport>,
    /// Cycles dropped because the publisher was behind (read by the publisher for its log).
    queue_drops: Arc<AtomicU64>,
}

impl MqttSender {
    /// Hands a stored cycle to the publisher, or drops it (counted) when it is behind.
    pub fn offer(&self, report: CycleReport) {
        let messages = report.records.len() as u64 * 2;
        if self.tx.try_send(report).is_err() {
            self.queue_drops
                .fetch_add(messages.max(1), Ordering::Relaxed);
        }
    }
}

/// Topics of this agent.
#[derive(Debug, Clone)]
struct Topics {
    prefix: String,
}

impl Topics {
    fn status(&self) -> String {
        format!("{}/status", self.prefix)
    }
    fn miner(&self, ip: &str, port: u16, leaf: &str) -> String {
        format!("{}/miners/{ip}_{port}/{leaf}", self.prefix)
    }
}

/// Starts the MQTT tasks when `[mqtt]` is configured; `None` means MQTT is off.
pub fn spawn(
    config: &Config,
    pickaxe_id: &str,
    shutdown: CancellationToken,
    tracker: &TaskTracker,
) -> anyhow::Result<Option<MqttSender>> {
    let Some(mqtt) = &config.mqtt else {
        return Ok(None);
    };
    let qos_metrics = rumqttc::qos(mqtt.qos_metrics)?;
    let qos_status = rumqttc::qos(mqtt.qos_status)?;
    let topics = Topics {
        prefix: mqtt
            .topic_prefix
            .clone()
            .unwrap_or_else(|| format!("pickaxe/{pickaxe_id}")),
    };
    let options = options(mqtt, pickaxe_id, &topics)?;
    let (client, eventloop) = AsyncClient::new(options, REQUEST_QUEUE);
    let (connected_tx, connected_rx) = watch::channel(0u64);
    let (tx, rx) = mpsc::channel(CYCLE_QUEUE);
    let queue_drops = Arc::new(AtomicU64::new(0));
    let backoff = Backoff::new(
        config.upload.min_backoff,
        config.upload.max_backoff.min(Duration::from_secs(60)),
    );
    info!(url = %mqtt.url, prefix = %topics.prefix, "MQTT publishing enabled.");
    tracker.spawn(
        Connection {
            client: client.clone(),
            eventloop,
            status_topic: topics.status(),
            qos_status,
            backoff,
            connected: connected_tx,
        }
        .run(shutdown.clone()),
    );
    tracker.spawn(
        Publisher {
            client,
            topics,
            qos_metrics,
            qos_status,
            connected: connected_rx,
            availability: AvailabilityTracker::default(),
            published: HashMap::new(),
            queue_drops: queue_drops.clone(),
            drops: DropEpisode::default(),
        }
        .run(rx, shutdown),
    );
    Ok(Some(MqttSender { tx, queue_drops }))
}

fn options(mqtt: &MqttConfig, pickaxe_id: &str, topics: &Topics) -> anyhow::Result<MqttOptions> {
    let url = url::Url::parse(&mqtt.url)?;
    let host = url.host_str().unwrap_or_default().to_string();
    let port = url.port().unwrap_or(1883);
    let client_id = mqtt
        .client_id
        .clone()
        .unwrap_or_else(|| format!("pickaxe-{pickaxe_id}"));
    let mut options = MqttOptions::new(client_id, host, port);
    options.set_keep_alive(Duration::from_secs(30));
    options.set_clean_session(true);
    options.set_last_will(LastWill::new(
        topics.status(),
        "offline",
        QoS::AtLeastOnce,
        true,
    ));
    if let Some(user) = &mqtt.username {
        let password = mqtt.password.as_ref().map(|p| p.expose()).unwrap_or("");
        options.set_credentials(user.clone(), password);
    }
    if url.scheme() == "mqtts" {
        let Some(ca_file) = &mqtt.ca_file else {
            anyhow::bail!("mqtt.ca_file: missing: mqtts:// needs the broker's CA certificate");
        };
        let ca = std::fs::read(ca_file)
            .map_err(|e| anyhow::anyhow!("mqtt.ca_file: cannot read {}: {e}", ca_file.display()))?;
        options.set_transport(Transport::tls(ca, None, None));
    }
    Ok(options)
}

/// Owns the event loop: polls it, reconnects with backoff, announces `online`.
struct Connection {
    client: AsyncClient,
    eventloop: EventLoop,
    status_topic: String,
    qos_status: QoS,
    backoff: Backoff,
    /// Bumped on every ConnAck (the publisher re-sends retained availability); 0 = never.
    connected: watch::Sender<u64>,
}

impl Connection {
    async fn run(mut self, shutdown: CancellationToken) {
        let mut generation = 0u64;
        let mut down_logged = false;
        loop {
            let event = tokio::select! {
                biased;
                _ = shutdown.cancelled() => break,
                event = self.eventloop.poll() => event,
            };
            match event {
                Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                    self.backoff.reset();
                    generation += 1;
                    if let Err(e) =
                        self.client
                            .try_publish(&self.status_topic, self.qos_status, true, "online")
                    {
                        warn!(error = %e, "MQTT: cannot queue the online status.");
                    }
                    info!(
                        session_present = ack.session_present,
                        "MQTT connected; status online."
                    );
                    down_logged = false;
                    self.connected.send_replace(generation);
                }
                Ok(_) => {}
                Err(e) => {
                    self.connected.send_replace(0);
                    let delay = self.backoff.next_delay(None);
                    if down_logged {
                        debug!(error = %e, retry_in = ?delay, "MQTT still unreachable.");
                    } else {
                        warn!(error = %e, retry_in = ?delay, "MQTT connection lost; reconnecting with backoff.");
                        down_logged = true;
                    }
                    if crate::uplink::sleep_or_cancel(delay, &shutdown).await {
                        break;
                    }
                }
            }
        }
        self.say_offline().await;
    }

    /// Clean shutdown: the broker does not send the will on DISCONNECT, so say it ourselves.
    async fn say_offline(mut self) {
        if *self.connected.borrow() == 0 {
            return;
        }
        let queued = self
            .client
            .try_publish(&self.status_topic, QoS::AtLeastOnce, true, "offline")
            .and_then(|()| self.client.try_disconnect());
        if let Err(e) = queued {
            warn!(error = %e, "MQTT: cannot queue the offline status.");
            return;
        }
        let flushed = tokio::time::timeout(SHUTDOWN_GRACE, async {
            loop {
                match self.eventloop.poll().await {
                    Ok(Event::Outgoing(rumqttc::Outgoing::Disconnect)) | Err(_) => return,
                    Ok(_) => {}
                }
            }
        })
        .await;
        match flushed {
            Ok(()) => info!("MQTT disconnected; status offline."),
            Err(_) => warn!("MQTT: offline status not confirmed before shutdown."),
        }
    }
}

/// The compact metrics message of one miner: Foreman's miner entry plus the cycle time.
#[derive(Serialize)]
struct MetricsMessage<'a> {
    timestamp: &'a str,
    #[serde(flatten)]
    miner: MinerEntry<'a>,
}

/// Live messages dropped (queue full, broker down), logged when it starts and when it ends.
#[derive(Debug, Default)]
struct DropEpisode {
    /// Dropped in the ongoing episode; 0 = none ongoing.
    dropped: u64,
    /// Dropped since start.
    total: u64,
}

impl DropEpisode {
    fn add(&mut self, n: u64, why: &str) {
        if n == 0 {
            return;
        }
        if self.dropped == 0 {
            warn!(
                reason = why,
                "MQTT: dropping live messages until the broker keeps up."
            );
        }
        self.dropped += n;
        self.total += n;
    }

    fn cycle_clean(&mut self) {
        if self.dropped > 0 {
            info!(
                dropped = self.dropped,
                total = self.total,
                "MQTT publishing again; messages dropped in that episode."
            );
            self.dropped = 0;
        }
    }
}

/// Turns stored cycles into per-miner messages.
struct Publisher {
    client: AsyncClient,
    topics: Topics,
    qos_metrics: QoS,
    qos_status: QoS,
    connected: watch::Receiver<u64>,
    availability: AvailabilityTracker,
    /// Availability last queued on the current connection, by topic.
    published: HashMap<String, Availability>,
    queue_drops: Arc<AtomicU64>,
    drops: DropEpisode,
}

impl Publisher {
    async fn run(mut self, mut rx: mpsc::Receiver<CycleReport>, shutdown: CancellationToken) {
        loop {
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => return,
                changed = self.connected.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    // A new connection (clean session; the broker may have lost retained
                    // messages): send every miner's availability again.
                    self.published.clear();
                    if *self.connected.borrow_and_update() != 0 {
                        let mut dropped = 0;
                        self.sync_availability(&mut dropped);
                        self.drops.add(dropped, "broker unreachable or queue full");
                    }
                }
                report = rx.recv() => match report {
                    Some(report) => self.publish_cycle(report),
                    None => return,
                },
            }
        }
    }

    fn publish_cycle(&mut self, report: CycleReport) {
        let mut dropped = 0;
        let queue_drops = self.queue_drops.swap(0, Ordering::Relaxed);
        self.drops
            .add(queue_drops, "publisher behind: cycle queue full");
        for record in &report.records {
            self.availability.observe(record, &report.samples);
        }
        let connected = *self.connected.borrow() != 0;
        let timestamp = format_timestamp(report.taken_at);
        for sample in &report.samples {
            let topic = self.topics.miner(&sample.ip, sample.port, "metrics");
            if !connected {
                dropped += 1;
                continue;
            }
            let message = MetricsMessage {
                timestamp: &timestamp,
                miner: miner_entry(sample),
            };
            let payload = match serde_json::to_vec(&message) {
                Ok(p) => p,
                Err(e) => {
                    error!(error = %e, "MQTT: cannot encode a metrics message.");
                    continue;
                }
            };
            if self
                .client
                .try_publish(topic, self.qos_metrics, false, payload)
                .is_err()
            {
                dropped += 1;
            }
        }
        if connected {
            self.sync_availability(&mut dropped);
        }
        if dropped == 0 && queue_drops == 0 {
            self.drops.cycle_clean();
        } else {
            self.drops.add(dropped, "broker unreachable or queue full");
        }
    }

    /// Queues every availability that differs from what this connection last carried.
    fn sync_availability(&mut self, dropped: &mut u64) {
        for ((ip, port), state) in self.availability.states() {
            let topic = self.topics.miner(ip, *port, "availability");
            if self.published.get(&topic) == Some(&state) {
                continue;
            }
            match self
                .client
                .try_publish(&topic, self.qos_status, true, state.as_str())
            {
                Ok(()) => {
                    self.published.insert(topic, state);
                }
                Err(_) => *dropped += 1,
            }
        }
    }
}
