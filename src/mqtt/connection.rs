//! The one task that owns rumqttc's event loop (nothing is sent unless somebody polls it).
//!
//! Every connection gets a fresh client and request queue: what was queued for a connection
//! that died is dropped with it, so stale live messages are never delivered long after a
//! reconnect (the durable command results are re-sent from SQLite instead). Between attempts
//! it waits with exponential backoff and jitter, which rumqttc does not do by itself. On each
//! ConnAck it publishes a retained `online`, subscribes again (a clean session, or a
//! persistent one the broker lost, has no subscriptions) and hands the new [`Link`] to the
//! other MQTT tasks.
//! A half-open connection is caught by rumqttc's keep-alive (no PINGRESP → error → replaced).

use std::sync::atomic::Ordering;
use std::time::Duration;

use rumqttc::{AsyncClient, Event, EventLoop, MqttOptions, Packet, Publish, QoS};
use tokio::sync::{mpsc, watch, Notify};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::Topics;
use crate::foreman::retry::Backoff;

/// rumqttc's request channel: one cycle of a large site fits.
const REQUEST_QUEUE: usize = 20_000;
/// A connection that lasted this long was healthy: the backoff starts again from the minimum.
/// One that died sooner (an oversized retained message, a status the broker refuses) keeps
/// backing off, so a poison message cannot make the agent reconnect several times a second.
const STABLE: Duration = Duration::from_secs(30);
/// How long a clean shutdown waits for `offline` to reach the broker.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// The live connection: publish through its client. Replaced on every reconnect.
#[derive(Clone)]
pub struct Link {
    pub client: AsyncClient,
}

/// Where incoming messages go.
pub struct Inbound {
    /// Messages on `<prefix>/commands`.
    pub commands: mpsc::Sender<Publish>,
    /// Our own command statuses, echoed back: proof the broker has them.
    pub echoes: mpsc::Sender<Publish>,
    /// Home Assistant said it (re)started: announce discovery again.
    pub rediscover: Option<(String, std::sync::Arc<Notify>)>,
}

pub struct Connection {
    pub options: MqttOptions,
    pub topics: Topics,
    pub qos_status: QoS,
    pub backoff: Backoff,
    pub link: watch::Sender<Option<Link>>,
    pub stats: std::sync::Arc<super::MqttStats>,
    pub inbound: Inbound,
    /// Commands not taken since the inbox filled up (0: not full).
    pub inbox_full: u64,
}

impl Connection {
    pub async fn run(mut self, shutdown: CancellationToken) {
        let mut down_logged = false;
        loop {
            let (client, mut eventloop) = AsyncClient::new(self.options.clone(), REQUEST_QUEUE);
            let mut connected_at: Option<std::time::Instant> = None;
            let error = loop {
                let event = tokio::select! {
                    biased;
                    _ = shutdown.cancelled() => {
                        let was_up = self.link.send_replace(None).is_some();
                        if was_up {
                            say_offline(&client, &mut eventloop, &self.topics).await;
                        }
                        return;
                    }
                    event = eventloop.poll() => event,
                };
                match event {
                    Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                        connected_at = Some(std::time::Instant::now());
                        self.on_connected(&client);
                        info!(
                            session_present = ack.session_present,
                            "MQTT connected; status online."
                        );
                        self.stats.connected.store(true, Ordering::Relaxed);
                        super::MqttStats::add(&self.stats.connections, 1);
                        self.link.send_replace(Some(Link {
                            client: client.clone(),
                        }));
                    }
                    Ok(Event::Incoming(Packet::Publish(publish))) => self.route(publish),
                    Ok(_) => {}
                    Err(e) => break e,
                }
            };
            self.link.send_replace(None);
            self.stats.connected.store(false, Ordering::Relaxed);
            if connected_at.is_some_and(|t| t.elapsed() >= STABLE) {
                self.backoff.reset();
                down_logged = false;
            }
            let delay = self.backoff.next_delay(None);
            if down_logged {
                debug!(error = %error, retry_in = ?delay, "MQTT still unreachable.");
            } else {
                warn!(error = %error, retry_in = ?delay, "MQTT connection lost; reconnecting with backoff.");
                down_logged = true;
            }
            // The client and its queue go: nothing stale is carried to the next connection.
            drop((client, eventloop));
            if crate::uplink::sleep_or_cancel(delay, &shutdown).await {
                return;
            }
        }
    }

    /// Queues what every new connection starts with: `online`, a clear of any retained
    /// command (they are refused anyway, and an oversized one would kill every connection),
    /// then the subscriptions. The broker handles them in this order, so the subscription
    /// finds no retained command to replay.
    fn on_connected(&self, client: &AsyncClient) {
        let mut queued = client
            .try_publish(self.topics.status(), self.qos_status, true, "online")
            .and_then(|()| {
                client.try_publish(self.topics.commands(), QoS::AtLeastOnce, true, Vec::new())
            });
        let mut filters = vec![self.topics.commands(), self.topics.command_status_filter()];
        if let Some((topic, _)) = &self.inbound.rediscover {
            filters.push(topic.clone());
        }
        for filter in filters {
            queued = queued.and_then(|()| client.try_subscribe(filter, QoS::AtLeastOnce));
        }
        if let Err(e) = queued {
            // Only possible with a full queue on a brand-new client; the next error
            // reconnects and tries again.
            warn!(error = %e, "MQTT: cannot queue status and subscriptions.");
        }
    }

    /// Hands an incoming message to its task without waiting: the event loop must keep
    /// turning (publishing from here could deadlock rumqttc).
    fn route(&mut self, publish: Publish) {
        let topic = publish.topic.as_str();
        if topic == self.topics.commands() {
            if publish.payload.is_empty() {
                // Our own clear of retained commands, echoed back.
                return;
            }
            if self.inbound.commands.try_send(publish).is_err() {
                if self.inbox_full == 0 {
                    warn!("MQTT: command inbox full; commands are not taken until it drains (their senders get no status and may resend).");
                }
                self.inbox_full += 1;
            } else if self.inbox_full > 0 {
                info!(not_taken = self.inbox_full, "MQTT: command inbox drained.");
                self.inbox_full = 0;
            }
        } else if self.topics.status_topic_id(topic).is_some() {
            // A lost echo only means the status is published once more.
            let _ = self.inbound.echoes.try_send(publish);
        } else if let Some((rediscover_topic, notify)) = &self.inbound.rediscover {
            if topic == rediscover_topic && publish.payload.as_ref() == b"online" {
                notify.notify_one();
            }
        }
    }
}

/// Clean shutdown: the broker does not send the will on DISCONNECT, so say `offline` ourselves.
async fn say_offline(client: &AsyncClient, eventloop: &mut EventLoop, topics: &Topics) {
    let queued = client
        .try_publish(topics.status(), QoS::AtLeastOnce, true, "offline")
        .and_then(|()| client.try_disconnect());
    if let Err(e) = queued {
        warn!(error = %e, "MQTT: cannot queue the offline status.");
        return;
    }
    let flushed = tokio::time::timeout(SHUTDOWN_GRACE, async {
        loop {
            match eventloop.poll().await {
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
