//! Optional MQTT: the live view of the site on its own broker, and a command channel.
//!
//! * [`connection`] owns rumqttc's event loop: backoff and jitter between reconnects, a
//!   fresh request queue per connection (nothing stale is delivered late), retained
//!   `online` / last-will `offline` on `<prefix>/status`, subscriptions renewed each time.
//! * [`publisher`] turns each stored poll cycle into per-miner metrics and retained
//!   availability (and Home Assistant discovery) with `try_publish` only. The poll loop hands
//!   cycles over with `try_send`, so a slow or dead broker never blocks polling: what cannot
//!   be queued is dropped and counted (durability is the Foreman path's job).
//! * [`commands`] takes commands on `<prefix>/commands` into the same durable, exactly-once
//!   path as Foreman's; [`acks`] returns their results on `<prefix>/commands/<id>/status`
//!   from a durable outbox, confirmed by the broker's echo.

mod acks;
mod availability;
mod commands;
mod connection;
pub mod discovery;
pub mod message;
mod publisher;
mod stats;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rumqttc::{LastWill, MqttOptions, QoS, Transport};
use tokio::sync::{mpsc, watch, Notify};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

use crate::commands::CommandDesk;
use crate::config::{Config, MqttConfig};
use crate::foreman::metrics::Sample;
use crate::foreman::retry::Backoff;
use crate::store::{PollRecord, Store};
pub use availability::{Availability, AvailabilityTracker};
pub use stats::MqttStats;

/// Cycles waiting for the publisher; more means the broker side is stuck, so drop.
const CYCLE_QUEUE: usize = 2;
/// Commands waiting to be recorded; more is a flood, answered by not taking them.
const COMMAND_QUEUE: usize = 1024;
/// Largest message taken or sent: commands and statuses are small; a bigger one is an error.
const MAX_PACKET: usize = 1024 * 1024;

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
pub struct Topics {
    prefix: String,
}

impl Topics {
    pub fn new(prefix: impl Into<String>) -> Topics {
        Topics {
            prefix: prefix.into(),
        }
    }
    pub fn prefix(&self) -> &str {
        &self.prefix
    }
    pub fn status(&self) -> String {
        format!("{}/status", self.prefix)
    }
    pub fn miner(&self, ip: &str, port: u16, leaf: &str) -> String {
        format!("{}/miners/{ip}_{port}/{leaf}", self.prefix)
    }
    pub fn commands(&self) -> String {
        format!("{}/commands", self.prefix)
    }
    pub fn command_status(&self, id: &str) -> String {
        format!("{}/commands/{id}/status", self.prefix)
    }
    fn command_status_filter(&self) -> String {
        self.command_status("+")
    }
    /// Where malformed commands (without a usable id) are answered.
    pub fn rejected(&self) -> String {
        format!("{}/commands/rejected", self.prefix)
    }
    /// The command id of a status topic, if `topic` is one.
    fn status_topic_id<'a>(&self, topic: &'a str) -> Option<&'a str> {
        topic
            .strip_prefix(self.prefix.as_str())?
            .strip_prefix("/commands/")?
            .strip_suffix("/status")
            .filter(|id| !id.is_empty() && !id.contains('/'))
    }
}

/// Starts the MQTT tasks when `[mqtt]` is configured; `None` means MQTT is off. `desk` is
/// the command path MQTT commands go through (`None`: every command is refused).
pub fn spawn(
    config: &Config,
    pickaxe_id: &str,
    store: Store,
    desk: Option<CommandDesk>,
    stats: Arc<MqttStats>,
    shutdown: CancellationToken,
    tracker: &TaskTracker,
) -> anyhow::Result<Option<MqttSender>> {
    let Some(mqtt) = &config.mqtt else {
        return Ok(None);
    };
    let qos_metrics = rumqttc::qos(mqtt.qos_metrics)?;
    let qos_status = rumqttc::qos(mqtt.qos_status)?;
    let topics = Topics::new(
        mqtt.topic_prefix
            .clone()
            .unwrap_or_else(|| format!("pickaxe/{pickaxe_id}")),
    );
    let options = options(mqtt, pickaxe_id, &topics)?;
    let (link_tx, link_rx) = watch::channel(None);
    let (cycles_tx, cycles_rx) = mpsc::channel(CYCLE_QUEUE);
    let (commands_tx, commands_rx) = mpsc::channel(COMMAND_QUEUE);
    let (echoes_tx, echoes_rx) = mpsc::channel(COMMAND_QUEUE);
    let queue_drops = Arc::new(AtomicU64::new(0));
    let home_assistant = mqtt.home_assistant.then(|| {
        publisher::HomeAssistant::new(
            discovery::Discovery {
                discovery_prefix: mqtt.discovery_prefix.clone(),
                topic_prefix: topics.prefix().to_string(),
                pickaxe_id: pickaxe_id.to_string(),
            },
            Arc::new(Notify::new()),
        )
    });
    let backoff = Backoff::new(
        config.upload.min_backoff,
        config.upload.max_backoff.min(Duration::from_secs(60)),
    );
    let runner = desk
        .as_ref()
        .filter(|_| mqtt.commands)
        .map(|d| d.runner.clone());
    if mqtt.persistent_session && runner.is_none() {
        warn!("mqtt.persistent_session is on but commands are not taken (mqtt.commands = false): the broker keeps queuing commands that will all be refused.");
    }
    info!(
        url = %mqtt.url,
        prefix = %topics.prefix(),
        commands = runner.is_some(),
        persistent_session = mqtt.persistent_session,
        home_assistant = mqtt.home_assistant,
        "MQTT enabled."
    );
    tracker.spawn(
        connection::Connection {
            options,
            topics: topics.clone(),
            qos_status,
            backoff,
            link: link_tx,
            stats: stats.clone(),
            inbox_full: 0,
            manual_acks: mqtt.persistent_session,
            inbound: connection::Inbound {
                commands: commands_tx,
                echoes: echoes_tx,
                rediscover: home_assistant.as_ref().map(|h| {
                    (
                        format!("{}/status", mqtt.discovery_prefix),
                        h.rediscover.clone(),
                    )
                }),
            },
        }
        .run(shutdown.clone()),
    );
    tracker.spawn(
        commands::CommandInbox {
            policy: commands::Policy {
                enabled: runner.is_some(),
                max_age: mqtt.command_max_age,
                require_issued_at: mqtt.persistent_session,
            },
            runner,
            store: store.clone(),
            topics: topics.clone(),
            link: link_rx.clone(),
            stats: stats.clone(),
        }
        .run(commands_rx, shutdown.clone()),
    );
    tracker.spawn(
        acks::AckSender {
            store,
            topics: topics.clone(),
            link: link_rx.clone(),
            wake: desk.map_or_else(|| Arc::new(Notify::new()), |d| d.mqtt_results),
            retention: config.commands.retention,
        }
        .run(echoes_rx, shutdown.clone()),
    );
    tracker.spawn(
        publisher::Publisher::new(
            topics,
            publisher::Streams {
                metrics: mqtt.publish_metrics,
                availability: mqtt.publish_availability,
                qos_metrics,
                qos_status,
            },
            link_rx,
            queue_drops.clone(),
            home_assistant,
            stats,
        )
        .run(cycles_rx, shutdown),
    );
    Ok(Some(MqttSender {
        tx: cycles_tx,
        queue_drops,
    }))
}

fn client_id(mqtt: &MqttConfig, pickaxe_id: &str) -> String {
    mqtt.client_id
        .clone()
        .unwrap_or_else(|| format!("pickaxe-{pickaxe_id}"))
}

/// The agent's connection: its client id, session and last will.
fn options(mqtt: &MqttConfig, pickaxe_id: &str, topics: &Topics) -> anyhow::Result<MqttOptions> {
    let mut options = broker_options(mqtt, client_id(mqtt, pickaxe_id))?;
    // A persistent session needs the same client id every time; the default one is derived
    // from the pickaxe id, which never changes.
    options.set_clean_session(!mqtt.persistent_session);
    options.set_manual_acks(mqtt.persistent_session);
    options.set_last_will(LastWill::new(
        topics.status(),
        "offline",
        QoS::AtLeastOnce,
        true,
    ));
    Ok(options)
}

/// Where the broker is and how to log in to it.
fn broker_options(mqtt: &MqttConfig, client_id: String) -> anyhow::Result<MqttOptions> {
    let url = url::Url::parse(&mqtt.url)?;
    let host = url.host_str().unwrap_or_default().to_string();
    let port = url.port().unwrap_or(1883);
    let mut options = MqttOptions::new(client_id, host, port);
    options.set_keep_alive(mqtt.keep_alive);
    options.set_max_packet_size(MAX_PACKET, MAX_PACKET);
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

/// For `pickaxe check`: connects to the broker with the configured login and disconnects.
/// Under its own client id (`<client id>-check`, clean session, no will), so a running agent
/// keeps its connection and its queued commands.
pub async fn probe(mqtt: &MqttConfig, pickaxe_id: &str) -> anyhow::Result<()> {
    let options = broker_options(mqtt, format!("{}-check", client_id(mqtt, pickaxe_id)))?;
    let (client, mut eventloop) = rumqttc::AsyncClient::new(options, 10);
    let connected = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match eventloop.poll().await {
                Ok(rumqttc::Event::Incoming(rumqttc::Packet::ConnAck(_))) => return Ok(()),
                Ok(_) => {}
                Err(e) => return Err(anyhow::anyhow!("{e}")),
            }
        }
    })
    .await
    .map_err(|_| anyhow::anyhow!("no answer within 10 s"))?;
    connected?;
    if client.try_disconnect().is_ok() {
        let _ = tokio::time::timeout(Duration::from_secs(2), eventloop.poll()).await;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_topics_give_back_their_command_id() {
        let t = Topics::new("site/a");
        assert_eq!(t.status_topic_id(&t.command_status("r-1")), Some("r-1"));
        assert_eq!(t.status_topic_id("site/a/commands"), None);
        assert_eq!(t.status_topic_id("site/a/commands//status"), None);
        assert_eq!(t.status_topic_id("site/b/commands/r-1/status"), None);
        assert_eq!(t.status_topic_id("site/a/commands/x/y/status"), None);
    }
}
