//! Per-miner state: identity, fault, and the record of what was served.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use chrono::{DateTime, TimeZone, Utc};
use serde::Serialize;
use tokio::sync::Notify;

use super::fault::Fault;
use super::fixtures::Model;
use super::reply::Reply;

/// How many `stats` replies are remembered per miner.
pub const STATS_HISTORY: usize = 1000;

/// Replies served by one miner, per command (`other` = denied/invalid commands, bad requests).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ServedCounts {
    pub version: u64,
    pub summary: u64,
    pub pools: u64,
    pub stats: u64,
    pub devs: u64,
    pub other: u64,
}

/// One `stats` reply served (alone or inside a join): when, and the realtime hashrate in it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StatsServed {
    /// When the reply was built (its `When`, with milliseconds).
    pub at: DateTime<Utc>,
    /// `GHS 5s` served, GH/s, as printed in the reply.
    pub ghs: f64,
}

/// Everything recorded about one simulated miner.
#[derive(Clone, Debug)]
pub struct MinerReport {
    pub addr: SocketAddr,
    /// Model key (`s19pro`, `s17`, ...).
    pub model: String,
    pub fault: Fault,
    pub served: ServedCounts,
    /// The last (up to 1,000) `stats` replies, oldest first.
    pub stats_served: Vec<StatsServed>,
    /// Decimals the model prints `GHS 5s` with (for formatting `ghs` as served).
    pub ghs_decimals: usize,
}

pub(crate) struct MinerState {
    pub addr: SocketAddr,
    pub model: &'static Model,
    /// Simulated boot time (unix ms): `Elapsed` counts from here.
    pub boot_ms: i64,
    fault: Mutex<Fault>,
    /// Woken when the fault changes (the accept loop closes or reopens the listener).
    pub changed: Notify,
    served: [AtomicU64; 6],
    stats: Mutex<VecDeque<(i64, f64)>>,
}

impl MinerState {
    pub fn new(addr: SocketAddr, model: &'static Model, boot_ms: i64, fault: Fault) -> Self {
        MinerState {
            addr,
            model,
            boot_ms,
            fault: Mutex::new(fault),
            changed: Notify::new(),
            served: Default::default(),
            stats: Mutex::new(VecDeque::new()),
        }
    }

    pub fn fault(&self) -> Fault {
        *self.fault.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn set_fault(&self, f: Fault) {
        *self.fault.lock().unwrap_or_else(|e| e.into_inner()) = f;
        self.changed.notify_one();
    }

    /// Records a reply that was written out completely.
    pub fn record(&self, reply: &Reply, at_ms: i64) {
        for (c, n) in self.served.iter().zip(reply.served) {
            if n > 0 {
                c.fetch_add(u64::from(n), Ordering::Relaxed);
            }
        }
        if let Some(ghs) = reply.stats_ghs {
            let mut q = self.stats.lock().unwrap_or_else(|e| e.into_inner());
            if q.len() >= STATS_HISTORY {
                q.pop_front();
            }
            q.push_back((at_ms, ghs));
        }
    }

    pub fn served(&self) -> ServedCounts {
        let g = |i: usize| self.served[i].load(Ordering::Relaxed);
        ServedCounts {
            version: g(0),
            summary: g(1),
            pools: g(2),
            stats: g(3),
            devs: g(4),
            other: g(5),
        }
    }

    pub fn report(&self, with_stats: bool) -> MinerReport {
        let stats_served = if with_stats {
            let q = self.stats.lock().unwrap_or_else(|e| e.into_inner());
            q.iter()
                .map(|&(ms, ghs)| StatsServed {
                    at: Utc.timestamp_millis_opt(ms).single().unwrap_or_default(),
                    ghs,
                })
                .collect()
        } else {
            Vec::new()
        };
        MinerReport {
            addr: self.addr,
            model: self.model.key.to_string(),
            fault: self.fault(),
            served: self.served(),
            stats_served,
            ghs_decimals: self.model.ghs_decimals,
        }
    }
}
