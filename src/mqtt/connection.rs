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
//!
//! With a persistent session, incoming messages are acknowledged by hand once handled (a
//! command: once recorded in SQLite), so a crash in between leaves the broker holding the
//! message and delivering it again when the agent is back.

use std::sync::atomic::Ordering;
use std::time::Duration;

use rumqttc::{
    AsyncClient, ConnectionError, Event, EventLoop, MqttOptions, Packet, Publish, QoS, StateError,
};
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

/// An incoming message, with the connection to acknowledge it on when acks are manual.
pub struct Delivery {
    pub publish: Publish,
    ack_on: Option<AsyncClient>,
}

impl Delivery {
    /// Tells the broker the message is handled, waiting for room in a full request queue: an
    /// ack given up on a live connection keeps the message in flight until the connection
    /// ends, and the broker sends nothing more once its in-flight window (mosquitto: 20) is
    /// used up. A dead connection returns at once (its event loop is dropped): the broker
    /// still has the message and delivers it again.
    pub async fn ack(self) {
        if let Some(client) = self.ack_on {
            if client.ack(&self.publish).await.is_err() {
                debug!(topic = %self.publish.topic, "MQTT: acknowledgement not sent; the broker delivers the message again.");
            }
        }
    }
}

/// Where incoming messages go.
pub struct Inbound {
    /// Messages on `<prefix>/commands`.
    pub commands: mpsc::Sender<Delivery>,
    /// Our own command statuses, echoed back: proof the broker has them.
    pub echoes: mpsc::Sender<Delivery>,
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
    /// Acknowledge incoming messages by hand, once handled (persistent sessions: otherwise
    /// the broker forgets an unacknowledged message with the connection anyway).
    pub manual_acks: bool,
}

/// A message larger than we take kills the connection before it can be acknowledged.
fn too_large(error: &ConnectionError) -> bool {
    matches!(
        error,
        ConnectionError::MqttState(StateError::Deserialization(
            rumqttc::mqttbytes::Error::PayloadSizeLimitExceeded(_)
        ))
    )
}

impl Connection {
    pub async fn run(mut self, shutdown: CancellationToken) {
        let mut down_logged = false;
        let mut drop_session = false;
        loop {
            let mut options = self.options.clone();
            if drop_session {
                options.set_clean_session(true);
            }
            let (client, mut eventloop) = AsyncClient::new(options, REQUEST_QUEUE);
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
                    Ok(Event::Incoming(Packet::ConnAck(_))) if drop_session => {
                        // The broker dropped the session; a persistent one starts again at
                        // once (a DISCONNECT, so no last will in between).
                        warn!("MQTT: the persistent session held a message over 1 MiB, which kills every connection it reaches: session dropped, with the commands it still queued.");
                        drop_session = false;
                        let _ = client.try_disconnect();
                        let _ = tokio::time::timeout(SHUTDOWN_GRACE, async {
                            while !matches!(
                                eventloop.poll().await,
                                Ok(Event::Outgoing(rumqttc::Outgoing::Disconnect)) | Err(_)
                            ) {}
                        })
                        .await;
                        break None;
                    }
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
                    Ok(Event::Incoming(Packet::Publish(publish))) => self.route(publish, &client),
                    Ok(_) => {}
                    Err(e) => break Some(e),
                }
            };
            let Some(error) = error else {
                continue;
            };
            // With a persistent session the broker keeps such a message and sends it first on
            // every reconnect: only a clean session gets rid of it.
            drop_session |= self.manual_acks && too_large(&error);
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
    fn route(&mut self, publish: Publish, client: &AsyncClient) {
        let topic = publish.topic.as_str();
        if topic == self.topics.commands() {
            if publish.payload.is_empty() {
                // Our own clear of retained commands, echoed back.
                self.ack_now(publish, client);
                return;
            }
            // Not taken, it stays unacknowledged: with a persistent session the broker
            // delivers it again on the next connection.
            if self
                .inbound
                .commands
                .try_send(self.delivery(publish, client))
                .is_err()
            {
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
            if let Err(lost) = self.inbound.echoes.try_send(self.delivery(publish, client)) {
                tokio::spawn(lost.into_inner().ack());
            }
        } else {
            if let Some((rediscover_topic, notify)) = &self.inbound.rediscover {
                if topic == rediscover_topic && publish.payload.as_ref() == b"online" {
                    notify.notify_one();
                }
            }
            self.ack_now(publish, client);
        }
    }

    fn delivery(&self, publish: Publish, client: &AsyncClient) -> Delivery {
        Delivery {
            publish,
            ack_on: self.manual_acks.then(|| client.clone()),
        }
    }

    /// Acknowledges a message handled right here, from a task: the event loop must not block,
    /// and the ack must not be dropped when the queue is full (see [`Delivery::ack`]).
    fn ack_now(&self, publish: Publish, client: &AsyncClient) {
        if self.manual_acks {
            tokio::spawn(self.delivery(publish, client).ack());
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A client whose request queue (one slot) is full, as under a burst of metrics.
    fn congested() -> (AsyncClient, EventLoop) {
        let mut options = MqttOptions::new("t", "127.0.0.1", 1);
        options.set_manual_acks(true);
        let (client, eventloop) = AsyncClient::new(options, 1);
        client
            .try_publish("t/metrics", QoS::AtMostOnce, false, "fill")
            .unwrap();
        (client, eventloop)
    }

    fn command() -> Publish {
        let mut p = Publish::new("p/commands", QoS::AtLeastOnce, "{}");
        p.pkid = 7;
        p
    }

    /// An ack given up on a live connection is never sent: the broker keeps the message in
    /// flight until the connection ends, and after 20 of them (mosquitto) sends nothing more.
    #[tokio::test(start_paused = true)]
    async fn acknowledgements_wait_for_room_on_a_live_connection() {
        let (client, mut eventloop) = congested();
        let delivery = Delivery {
            publish: command(),
            ack_on: Some(client.clone()),
        };
        let acked = tokio::spawn(delivery.ack());
        let stats = std::sync::Arc::new(super::super::MqttStats::default());
        let (commands, _c) = mpsc::channel(1);
        let (echoes, _e) = mpsc::channel(1);
        let mut connection = Connection {
            options: MqttOptions::new("t", "127.0.0.1", 1),
            topics: Topics::new("p"),
            qos_status: QoS::AtLeastOnce,
            backoff: Backoff::new(Duration::from_secs(1), Duration::from_secs(2)),
            link: watch::channel(None).0,
            stats,
            inbound: Inbound {
                commands,
                echoes,
                rediscover: None,
            },
            inbox_full: 0,
            manual_acks: true,
        };
        // Handled on the spot: our own clear of retained commands, echoed back.
        connection.route(Publish::new("p/commands", QoS::AtLeastOnce, ""), &client);
        let waiting = || {
            tokio::runtime::Handle::current()
                .metrics()
                .num_alive_tasks()
        };
        tokio::time::sleep(Duration::from_secs(60)).await;
        assert_eq!(waiting(), 2, "an ack gave up instead of waiting");
        // The queue drains: the acks get their turn.
        for _ in 0..4 {
            eventloop.clean();
            tokio::task::yield_now().await;
        }
        assert_eq!(waiting(), 0);
        acked.await.unwrap();
        // A dead connection: the ack returns at once (the broker sends the message again).
        let (client, eventloop) = congested();
        drop(eventloop);
        Delivery {
            publish: command(),
            ack_on: Some(client),
        }
        .ack()
        .await;
    }
}
