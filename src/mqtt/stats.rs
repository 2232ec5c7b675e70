//! Counters of the MQTT side, for `/metrics`: what a dashboard needs to see that the live
//! view is (or is not) getting through.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

#[derive(Debug, Default)]
pub struct MqttStats {
    pub connected: AtomicBool,
    /// Connections made (the first one included).
    pub connections: AtomicU64,
    /// Live messages queued for the broker.
    pub published: AtomicU64,
    /// Live messages dropped: broker away or queue full (the Foreman path keeps the data).
    pub dropped: AtomicU64,
    /// Commands taken into the command log.
    pub commands_accepted: AtomicU64,
    /// Commands refused or rejected (disabled, stale, retained, malformed).
    pub commands_refused: AtomicU64,
}

impl MqttStats {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub fn get(counter: &AtomicU64) -> f64 {
        counter.load(Ordering::Relaxed) as f64
    }
}
