//! What the fake Foreman holds: assigned miners, received samples, counters, injected faults.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// One miner-config entry as served by `GET /api/config/...` (protocol §4.2).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MinerConfigEntry {
    #[serde(rename = "apiIp")]
    pub api_ip: String,
    #[serde(rename = "apiPort")]
    pub api_port: u16,
    /// Integer miner-type code; 19 = ANTMINER_GHS.
    #[serde(rename = "apiType")]
    pub api_type: u32,
    #[serde(default)]
    pub params: Vec<Param>,
}

/// A `{"key":..,"value":..}` miner parameter.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Param {
    pub key: String,
    pub value: String,
}

impl MinerConfigEntry {
    /// A stock Antminer (apiType 19) at `addr`.
    pub fn antminer(addr: std::net::SocketAddr) -> Self {
        MinerConfigEntry {
            api_ip: addr.ip().to_string(),
            api_port: addr.port(),
            api_type: 19,
            params: Vec::new(),
        }
    }
}

/// How an outage looks to clients.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum OutageMode {
    /// The listener is closed: connections are refused.
    #[serde(rename = "refuse")]
    Refuse,
    /// Every request gets 503 `{"message":"Service Unavailable"}`.
    #[serde(rename = "503")]
    Unavailable,
}

/// A fault injected into the fake Foreman (the body of `POST /admin/faults`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ForemanFault {
    /// An outage for `seconds` (or until cleared when absent).
    Outage {
        mode: OutageMode,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        seconds: Option<f64>,
    },
    /// The next `count` requests get 429, with `Retry-After: retry_after` when set.
    RateLimit {
        count: u32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        retry_after: Option<u64>,
    },
    /// The next `count` responses are delayed by `seconds`.
    Slow { count: u32, seconds: f64 },
}

/// Request counters inside [`Summary`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestCounts {
    /// Metrics PUTs that passed auth and the injected faults (including 400s and duplicates).
    pub metrics: u64,
    pub config: u64,
    pub app_config: u64,
    pub started: u64,
    pub ping: u64,
    /// 401 and 403 answers.
    pub rejected_auth: u64,
    /// Requests answered by an injected fault (503 outage, 429).
    pub faulted: u64,
    /// Metrics PUTs rejected with 400.
    #[serde(default)]
    pub bad_request: u64,
    /// `GET .../commands` polls.
    #[serde(default)]
    pub commands: u64,
}

/// Counters of `GET /admin/summary`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    /// Metrics batches accepted and recorded (first receipt of an Idempotency-Key, or no key).
    pub batches_received: u64,
    /// Batches re-sent with an Idempotency-Key seen before (answered 201, not recorded).
    pub batches_duplicate: u64,
    /// Unique samples, keyed by (apiIp, apiPort, metadata.timestamp).
    pub samples_received: u64,
    /// Extra receipts of an already-recorded sample in a different batch.
    pub samples_duplicate: u64,
    /// `started` announcements.
    pub started: u64,
    pub requests: RequestCounts,
}

/// One received sample of one miner.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// `metadata.timestamp` exactly as sent.
    pub timestamp: String,
    /// Number of distinct batches it arrived in.
    pub count: u32,
    /// `asics[0].hashRate` of the first receipt (H/s, as sent; numbers are turned into text).
    #[serde(rename = "hashRate")]
    pub hash_rate: String,
    /// When it was first received.
    pub received_at: DateTime<Utc>,
}

/// The samples received for one miner, oldest timestamp first.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MinerSamples {
    pub ip: String,
    pub port: u16,
    pub samples: Vec<Sample>,
}

/// A pickaxe seen on `config` or `started`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PickaxeSeen {
    pub id: String,
    pub hostname: Option<String>,
    pub ip: Option<String>,
    pub version: Option<String>,
    pub started: u64,
    pub last_seen: DateTime<Utc>,
}

struct SampleRec {
    sample: Sample,
    last_batch: u64,
}

#[derive(Default)]
pub(crate) struct Records {
    pub summary: Summary,
    /// (ip, port) → (UTC ms of timestamp, timestamp text) → sample.
    samples: HashMap<(String, u16), BTreeMap<(i64, String), SampleRec>>,
    idempotency: HashMap<String, usize>,
    batch_seq: u64,
    pub pickaxes: BTreeMap<String, PickaxeSeen>,
}

/// A validated sample from a metrics body.
pub(crate) struct Incoming {
    pub ip: String,
    pub port: u16,
    pub timestamp: String,
    pub ts_ms: i64,
    pub hash_rate: String,
}

impl Records {
    /// The answer for a batch already received under this key.
    pub fn seen_key(&mut self, key: &str) -> Option<usize> {
        let n = *self.idempotency.get(key)?;
        self.summary.batches_duplicate += 1;
        Some(n)
    }

    /// Records a new batch.
    pub fn record_batch(&mut self, key: Option<&str>, samples: Vec<Incoming>, accepted: usize) {
        self.batch_seq += 1;
        let batch = self.batch_seq;
        self.summary.batches_received += 1;
        if let Some(k) = key {
            self.idempotency.insert(k.to_string(), accepted);
        }
        let now = Utc::now();
        for s in samples {
            let per_miner = self.samples.entry((s.ip, s.port)).or_default();
            match per_miner.get_mut(&(s.ts_ms, s.timestamp.clone())) {
                Some(rec) if rec.last_batch == batch => {}
                Some(rec) => {
                    rec.last_batch = batch;
                    rec.sample.count += 1;
                    self.summary.samples_duplicate += 1;
                }
                None => {
                    per_miner.insert(
                        (s.ts_ms, s.timestamp.clone()),
                        SampleRec {
                            sample: Sample {
                                timestamp: s.timestamp,
                                count: 1,
                                hash_rate: s.hash_rate,
                                received_at: now,
                            },
                            last_batch: batch,
                        },
                    );
                    self.summary.samples_received += 1;
                }
            }
        }
    }

    pub fn samples(&self) -> Vec<MinerSamples> {
        let mut out: Vec<MinerSamples> = self
            .samples
            .iter()
            .map(|((ip, port), m)| MinerSamples {
                ip: ip.clone(),
                port: *port,
                samples: m.values().map(|r| r.sample.clone()).collect(),
            })
            .collect();
        out.sort_by(|a, b| {
            let ka = (a.ip.parse::<std::net::IpAddr>().ok(), &a.ip, a.port);
            let kb = (b.ip.parse::<std::net::IpAddr>().ok(), &b.ip, b.port);
            ka.cmp(&kb)
        });
        out
    }

    pub fn pickaxe(&mut self, id: &str) -> &mut PickaxeSeen {
        let p = self
            .pickaxes
            .entry(id.to_string())
            .or_insert_with(|| PickaxeSeen {
                id: id.to_string(),
                hostname: None,
                ip: None,
                version: None,
                started: 0,
                last_seen: Utc::now(),
            });
        p.last_seen = Utc::now();
        p
    }
}

#[derive(Default, Clone, Copy, Debug)]
pub(crate) struct FaultCounters {
    pub rate_limit_left: u32,
    pub retry_after: Option<u64>,
    pub slow_left: u32,
    pub slow_secs: f64,
}

/// Current injected faults, as shown by `GET /admin/faults`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ActiveFaults {
    pub outage: Option<OutageMode>,
    pub rate_limit_left: u32,
    pub retry_after: Option<u64>,
    pub slow_left: u32,
    pub slow_seconds: f64,
}

pub(crate) struct Shared {
    pub api_key: String,
    pub client_id: String,
    pub miners: RwLock<Vec<MinerConfigEntry>>,
    pub rec: Mutex<Records>,
    pub faults: Mutex<FaultCounters>,
    pub outage_tx: watch::Sender<Option<OutageMode>>,
    outage_gen: Arc<AtomicU64>,
    pub shutdown: CancellationToken,
    /// Runtime the server runs on (outage timers are spawned there).
    runtime: tokio::runtime::Handle,
}

impl Shared {
    pub fn new(
        api_key: String,
        client_id: String,
        miners: Vec<MinerConfigEntry>,
        shutdown: CancellationToken,
    ) -> Self {
        Shared {
            api_key,
            client_id,
            miners: RwLock::new(miners),
            rec: Mutex::new(Records::default()),
            faults: Mutex::new(FaultCounters::default()),
            outage_tx: watch::channel(None).0,
            outage_gen: Arc::new(AtomicU64::new(0)),
            shutdown,
            runtime: tokio::runtime::Handle::current(),
        }
    }

    pub fn rec(&self) -> std::sync::MutexGuard<'_, Records> {
        self.rec.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn fault_counters(&self) -> std::sync::MutexGuard<'_, FaultCounters> {
        self.faults.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn outage(&self) -> Option<OutageMode> {
        *self.outage_tx.borrow()
    }

    pub fn inject(&self, fault: &ForemanFault) {
        tracing::info!(?fault, "fake Foreman fault injected");
        match *fault {
            ForemanFault::Outage { mode, seconds } => {
                let gen = self.outage_gen.fetch_add(1, Ordering::SeqCst) + 1;
                self.outage_tx.send_replace(Some(mode));
                if let Some(secs) = seconds.filter(|s| s.is_finite() && *s >= 0.0) {
                    let tx = self.outage_tx.clone();
                    let gens = self.outage_gen.clone();
                    let sd = self.shutdown.clone();
                    self.runtime.spawn(async move {
                        tokio::select! {
                            _ = tokio::time::sleep(Duration::from_secs_f64(secs)) => {
                                if gens.load(Ordering::SeqCst) == gen {
                                    tracing::info!("fake Foreman outage over");
                                    tx.send_replace(None);
                                }
                            }
                            _ = sd.cancelled() => {}
                        }
                    });
                }
            }
            ForemanFault::RateLimit { count, retry_after } => {
                let mut f = self.fault_counters();
                f.rate_limit_left = count;
                f.retry_after = retry_after;
            }
            ForemanFault::Slow { count, seconds } => {
                let mut f = self.fault_counters();
                f.slow_left = count;
                f.slow_secs = if seconds.is_finite() {
                    seconds.max(0.0)
                } else {
                    0.0
                };
            }
        }
    }

    pub fn clear_faults(&self) {
        tracing::info!("fake Foreman faults cleared");
        *self.fault_counters() = FaultCounters::default();
        self.outage_gen.fetch_add(1, Ordering::SeqCst);
        self.outage_tx.send_replace(None);
    }

    pub fn active_faults(&self) -> ActiveFaults {
        let f = *self.fault_counters();
        ActiveFaults {
            outage: self.outage(),
            rate_limit_left: f.rate_limit_left,
            retry_after: f.retry_after,
            slow_left: f.slow_left,
            slow_seconds: f.slow_secs,
        }
    }
}
