//! Turns each stored poll cycle into per-miner messages: metrics (live, dropped rather than
//! queued when the broker is away) and retained availability, published when it changes and
//! again on every new connection. Uses `try_publish` only: it never waits on the broker.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use rumqttc::QoS;
use tokio::sync::{mpsc, watch, Notify};
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use super::availability::{Availability, AvailabilityTracker};
use super::connection::Link;
use super::discovery::Discovery;
use super::message::metrics_message;
use super::{CycleReport, Topics};
use crate::foreman::metrics::{format_timestamp, Sample};

/// Live messages dropped (queue full, broker down), logged when it starts and when it ends.
#[derive(Debug, Default)]
struct DropEpisode {
    /// Dropped in the ongoing episode; 0 = none ongoing.
    dropped: u64,
    /// Dropped since start.
    total: u64,
}

impl DropEpisode {
    fn add(&mut self, n: u64, why: &str, stats: &super::MqttStats) {
        if n == 0 {
            return;
        }
        super::MqttStats::add(&stats.dropped, n);
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

/// Discovery configs as sent: (topic, payload).
type Configs = Vec<(String, String)>;

/// Home Assistant discovery: what to announce and what was announced on this connection.
pub struct HomeAssistant {
    pub discovery: Discovery,
    /// Home Assistant restarted (it lost what it knew): announce everything again.
    pub rediscover: Arc<Notify>,
    /// Announced miner -> its discovery key and the configs sent; cleared on a new connection.
    pub announced: HashMap<(String, u16), (String, Configs)>,
    /// The last sample of every miner, to announce again without waiting for a cycle.
    pub last_seen: HashMap<(String, u16), Sample>,
    pub agent_announced: bool,
}

impl HomeAssistant {
    pub fn new(discovery: Discovery, rediscover: Arc<Notify>) -> HomeAssistant {
        HomeAssistant {
            discovery,
            rediscover,
            announced: HashMap::new(),
            last_seen: HashMap::new(),
            agent_announced: false,
        }
    }

    /// Forget what was announced: everything goes out again.
    fn reset(&mut self) {
        self.announced.clear();
        self.agent_announced = false;
    }
}

/// Which streams go out (`mqtt.publish_metrics`, `mqtt.publish_availability`), at which QoS.
#[derive(Debug, Clone, Copy)]
pub struct Streams {
    pub metrics: bool,
    pub availability: bool,
    pub qos_metrics: QoS,
    pub qos_status: QoS,
}

pub struct Publisher {
    pub topics: Topics,
    pub streams: Streams,
    pub link: watch::Receiver<Option<Link>>,
    pub availability: AvailabilityTracker,
    /// Availability last queued on the current connection, by topic.
    pub published: HashMap<String, Availability>,
    pub queue_drops: Arc<AtomicU64>,
    pub home_assistant: Option<HomeAssistant>,
    stats: Arc<super::MqttStats>,
    drops: DropEpisode,
}

impl Publisher {
    pub fn new(
        topics: Topics,
        streams: Streams,
        link: watch::Receiver<Option<Link>>,
        queue_drops: Arc<AtomicU64>,
        home_assistant: Option<HomeAssistant>,
        stats: Arc<super::MqttStats>,
    ) -> Publisher {
        Publisher {
            topics,
            streams,
            link,
            availability: AvailabilityTracker::default(),
            published: HashMap::new(),
            queue_drops,
            home_assistant,
            stats,
            drops: DropEpisode::default(),
        }
    }

    pub async fn run(mut self, mut rx: mpsc::Receiver<CycleReport>, shutdown: CancellationToken) {
        // Never rung when Home Assistant discovery is off.
        let rediscover = self
            .home_assistant
            .as_ref()
            .map_or_else(|| Arc::new(Notify::new()), |h| h.rediscover.clone());
        loop {
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => return,
                changed = self.link.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    // A new connection (clean session; the broker may have lost retained
                    // messages): send every miner's availability and discovery again.
                    self.published.clear();
                    if let Some(ha) = &mut self.home_assistant {
                        ha.reset();
                    }
                    self.sync_retained();
                }
                _ = rediscover.notified() => {
                    if let Some(ha) = &mut self.home_assistant {
                        ha.reset();
                    }
                    self.sync_retained();
                }
                report = rx.recv() => match report {
                    Some(report) => self.publish_cycle(report),
                    None => return,
                },
            }
        }
    }

    fn client(&self) -> Option<rumqttc::AsyncClient> {
        self.link.borrow().as_ref().map(|l| l.client.clone())
    }

    /// Re-sends the retained state (availability, discovery) that this connection lacks.
    fn sync_retained(&mut self) {
        let Some(client) = self.client() else {
            return;
        };
        let mut dropped = 0;
        self.sync_discovery(&client, &mut dropped);
        self.sync_availability(&client, &mut dropped);
        self.drops
            .add(dropped, "broker unreachable or queue full", &self.stats);
    }

    fn publish_cycle(&mut self, report: CycleReport) {
        let mut dropped = 0;
        let queue_drops = self.queue_drops.swap(0, Ordering::Relaxed);
        self.drops.add(
            queue_drops,
            "publisher behind: cycle queue full",
            &self.stats,
        );
        self.availability
            .observe_cycle(&report.records, &report.samples);
        if let Some(ha) = &mut self.home_assistant {
            for sample in &report.samples {
                ha.last_seen
                    .insert((sample.ip.clone(), sample.port), sample.clone());
            }
        }
        let Some(client) = self.client() else {
            self.drops.add(
                report.samples.len() as u64,
                "broker unreachable or queue full",
                &self.stats,
            );
            return;
        };
        self.sync_discovery(&client, &mut dropped);
        let timestamp = format_timestamp(report.taken_at);
        let metrics = if self.streams.metrics {
            report.samples.as_slice()
        } else {
            &[]
        };
        for sample in metrics {
            let topic = self.topics.miner(&sample.ip, sample.port, "metrics");
            let payload = match serde_json::to_vec(&metrics_message(&timestamp, sample)) {
                Ok(p) => p,
                Err(e) => {
                    error!(error = %e, "MQTT: cannot encode a metrics message.");
                    continue;
                }
            };
            if client
                .try_publish(topic, self.streams.qos_metrics, false, payload)
                .is_err()
            {
                dropped += 1;
            } else {
                super::MqttStats::add(&self.stats.published, 1);
            }
        }
        self.sync_availability(&client, &mut dropped);
        if dropped == 0 && queue_drops == 0 {
            self.drops.cycle_clean();
        } else {
            self.drops
                .add(dropped, "broker unreachable or queue full", &self.stats);
        }
    }

    /// Queues every availability that differs from what this connection last carried.
    fn sync_availability(&mut self, client: &rumqttc::AsyncClient, dropped: &mut u64) {
        if !self.streams.availability {
            return;
        }
        for ((ip, port), state) in self.availability.states() {
            let topic = self.topics.miner(ip, *port, "availability");
            if self.published.get(&topic) == Some(&state) {
                continue;
            }
            match client.try_publish(&topic, self.streams.qos_status, true, state.as_str()) {
                Ok(()) => {
                    self.published.insert(topic, state);
                }
                Err(_) => *dropped += 1,
            }
        }
    }

    /// Announces to Home Assistant the agent and every miner it has not announced yet on
    /// this connection, or whose identity changed.
    fn sync_discovery(&mut self, client: &rumqttc::AsyncClient, dropped: &mut u64) {
        let Some(ha) = &mut self.home_assistant else {
            return;
        };
        if !ha.agent_announced {
            ha.agent_announced = true;
            for (topic, payload) in ha.discovery.agent() {
                if client
                    .try_publish(topic, QoS::AtLeastOnce, true, payload)
                    .is_err()
                {
                    *dropped += 1;
                    ha.agent_announced = false;
                }
            }
        }
        for (key, sample) in &ha.last_seen {
            let current = Discovery::miner_key(sample);
            let previous = ha.announced.get(key);
            if previous.is_some_and(|(k, _)| *k == current) {
                continue;
            }
            let configs = ha.discovery.miner(sample);
            // Entities that no longer exist (a sensor gone, a MAC learned): clear them.
            let removals = previous
                .map(|(_, sent)| Discovery::removals(sent, &configs))
                .unwrap_or_default();
            let mut ok = true;
            for (topic, payload) in removals.iter().chain(&configs) {
                if client
                    .try_publish(topic, QoS::AtLeastOnce, true, payload.clone())
                    .is_err()
                {
                    *dropped += 1;
                    ok = false;
                }
            }
            if ok {
                ha.announced.insert(key.clone(), (current, configs));
            }
        }
    }
}
