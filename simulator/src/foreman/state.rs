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
///
/// JSON: `{"kind":"outage","mode":"refuse"|"503","seconds":20}`, `{"kind":"rate_limit",
/// "count":3,"retry_after":2}`, `{"kind":"slow","count":2,"seconds":3}` (add
/// `"commit_first":true` for [`ForemanFault::SlowCommit`]), `{"kind":"server_error","count":3,
/// "status":500}`, `{"kind":"reject","count":1,"message":".."}`, `{"kind":"poison","ip":"..",
/// "count":1,"status":500}`, `{"kind":"max_body",
/// "bytes":65536}`, `{"kind":"revoke_key"}`, `{"kind":"set_key","key":".."}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(from = "FaultRepr", into = "FaultRepr")]
pub enum ForemanFault {
    /// An outage for `seconds` (or until cleared when absent).
    Outage {
        mode: OutageMode,
        seconds: Option<f64>,
    },
    /// The next `count` requests get 429, with `Retry-After: retry_after` when set.
    RateLimit {
        count: u32,
        retry_after: Option<u64>,
    },
    /// The next `count` responses are delayed by `seconds` (before anything is done).
    Slow { count: u32, seconds: f64 },
    /// The next `count` metrics PUTs are recorded first, then answered `seconds` late: a
    /// client that times out and retries with the same `Idempotency-Key` must be de-duplicated.
    SlowCommit { count: u32, seconds: f64 },
    /// The next `count` requests get `status` (a 5xx) with `{"message":..}`.
    ServerError { count: u32, status: u16 },
    /// The next `count` metrics PUTs get 400 `{"message":message}` and are not recorded.
    Reject { count: u32, message: String },
    /// The next `count` samples of miner `ip` (distinct timestamps) are poison: every metrics
    /// PUT holding one of them gets `status` (a 5xx) and is not recorded, forever (case C-23).
    Poison { ip: String, count: u32, status: u16 },
    /// Metrics bodies larger than `bytes` (as sent on the wire, i.e. compressed when gzip'd)
    /// get 413, until cleared.
    MaxBody { bytes: u64 },
    /// Every authenticated request gets 401 until the faults are cleared or a key is set.
    RevokeKey,
    /// Clients must now send this key (ends a revocation).
    SetKey { key: String },
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn default_status() -> u16 {
    500
}

fn default_reject() -> String {
    "Invalid metrics batch.".to_string()
}

/// The JSON shape of [`ForemanFault`] (`slow` with `commit_first` covers both slow variants).
#[derive(Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
enum FaultRepr {
    Outage {
        mode: OutageMode,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        seconds: Option<f64>,
    },
    RateLimit {
        count: u32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        retry_after: Option<u64>,
    },
    Slow {
        count: u32,
        seconds: f64,
        #[serde(default, skip_serializing_if = "is_false")]
        commit_first: bool,
    },
    ServerError {
        count: u32,
        #[serde(default = "default_status")]
        status: u16,
    },
    Poison {
        ip: String,
        count: u32,
        #[serde(default = "default_status")]
        status: u16,
    },
    Reject {
        count: u32,
        #[serde(default = "default_reject")]
        message: String,
    },
    MaxBody {
        bytes: u64,
    },
    RevokeKey,
    SetKey {
        key: String,
    },
}

impl From<FaultRepr> for ForemanFault {
    fn from(r: FaultRepr) -> Self {
        match r {
            FaultRepr::Outage { mode, seconds } => ForemanFault::Outage { mode, seconds },
            FaultRepr::RateLimit { count, retry_after } => {
                ForemanFault::RateLimit { count, retry_after }
            }
            FaultRepr::Slow {
                count,
                seconds,
                commit_first: false,
            } => ForemanFault::Slow { count, seconds },
            FaultRepr::Slow { count, seconds, .. } => ForemanFault::SlowCommit { count, seconds },
            FaultRepr::ServerError { count, status } => ForemanFault::ServerError { count, status },
            FaultRepr::Reject { count, message } => ForemanFault::Reject { count, message },
            FaultRepr::Poison { ip, count, status } => ForemanFault::Poison { ip, count, status },
            FaultRepr::MaxBody { bytes } => ForemanFault::MaxBody { bytes },
            FaultRepr::RevokeKey => ForemanFault::RevokeKey,
            FaultRepr::SetKey { key } => ForemanFault::SetKey { key },
        }
    }
}

impl From<ForemanFault> for FaultRepr {
    fn from(f: ForemanFault) -> Self {
        match f {
            ForemanFault::Outage { mode, seconds } => FaultRepr::Outage { mode, seconds },
            ForemanFault::RateLimit { count, retry_after } => {
                FaultRepr::RateLimit { count, retry_after }
            }
            ForemanFault::Slow { count, seconds } => FaultRepr::Slow {
                count,
                seconds,
                commit_first: false,
            },
            ForemanFault::SlowCommit { count, seconds } => FaultRepr::Slow {
                count,
                seconds,
                commit_first: true,
            },
            ForemanFault::ServerError { count, status } => FaultRepr::ServerError { count, status },
            ForemanFault::Reject { count, message } => FaultRepr::Reject { count, message },
            ForemanFault::Poison { ip, count, status } => FaultRepr::Poison { ip, count, status },
            ForemanFault::MaxBody { bytes } => FaultRepr::MaxBody { bytes },
            ForemanFault::RevokeKey => FaultRepr::RevokeKey,
            ForemanFault::SetKey { key } => FaultRepr::SetKey { key },
        }
    }
}

/// One step of a fault schedule (`POST /admin/schedule`): at `at_secs` after the call, inject
/// `fault`, or clear every fault (`"clear":true`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleEntry {
    pub at_secs: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fault: Option<ForemanFault>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub clear: bool,
}

/// The schedule in force (`GET /admin/schedule`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ScheduleState {
    /// Steps of the current schedule.
    pub entries: Vec<ScheduleEntry>,
    /// How many of them were applied so far.
    pub applied: usize,
}

/// Answers given by injected faults, per kind (inside [`Summary`]).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct FaultCounts {
    /// 503 answers of an outage in `503` mode (refused connections cannot be counted).
    pub outage_503: u64,
    pub rate_limited: u64,
    /// Requests delayed by `slow`.
    pub slow: u64,
    /// Metrics PUTs recorded, then answered late (`slow` with `commit_first`).
    pub slow_commit: u64,
    pub server_error: u64,
    /// 400 answers of `reject`.
    pub reject: u64,
    /// 5xx answers of `poison`.
    #[serde(default)]
    pub poison: u64,
    /// 413 answers of `max_body`.
    pub max_body: u64,
    /// 401 answers while the key is revoked.
    pub revoked: u64,
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
    /// Requests answered by an injected fault (503 outage, 429, 5xx, 400 reject, 413, 401
    /// revoked key); [`Summary::faults`] has them per kind.
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
    /// Answers of injected faults, per kind.
    #[serde(default)]
    pub faults: FaultCounts,
    /// Metrics bodies that arrived with `Content-Encoding: gzip` (past auth).
    #[serde(default)]
    pub metrics_gzip: u64,
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

#[derive(Default, Clone, Debug)]
pub(crate) struct FaultCounters {
    pub rate_limit_left: u32,
    pub retry_after: Option<u64>,
    pub slow_left: u32,
    pub slow_secs: f64,
    pub slow_commit_left: u32,
    pub slow_commit_secs: f64,
    pub server_error_left: u32,
    pub server_error_status: u16,
    pub reject_left: u32,
    pub reject_message: String,
    pub poison: Option<PoisonFault>,
    pub max_body: Option<u64>,
    pub key_revoked: bool,
}

/// The state of a `poison` fault.
#[derive(Clone, Debug, Default)]
pub(crate) struct PoisonFault {
    pub ip: String,
    pub left: u32,
    pub status: u16,
    /// Timestamps of the poisoned samples.
    pub timestamps: std::collections::HashSet<String>,
}

impl FaultCounters {
    /// The status to answer when the batch holds a poisoned sample (picking new ones while
    /// the fault has some left).
    pub fn poisoned(&mut self, samples: &[Incoming]) -> Option<u16> {
        let p = self.poison.as_mut()?;
        let mut hit = false;
        for s in samples.iter().filter(|s| s.ip == p.ip) {
            if p.timestamps.contains(&s.timestamp) {
                hit = true;
            } else if p.left > 0 {
                p.left -= 1;
                p.timestamps.insert(s.timestamp.clone());
                hit = true;
            }
        }
        hit.then_some(p.status)
    }
}

/// Current injected faults, as shown by `GET /admin/faults`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ActiveFaults {
    pub outage: Option<OutageMode>,
    pub rate_limit_left: u32,
    pub retry_after: Option<u64>,
    pub slow_left: u32,
    pub slow_seconds: f64,
    #[serde(default)]
    pub slow_commit_left: u32,
    #[serde(default)]
    pub slow_commit_seconds: f64,
    #[serde(default)]
    pub server_error_left: u32,
    #[serde(default)]
    pub server_error_status: u16,
    #[serde(default)]
    pub reject_left: u32,
    #[serde(default)]
    pub max_body: Option<u64>,
    #[serde(default)]
    pub key_revoked: bool,
}

pub(crate) struct Shared {
    /// The key clients must send (`set_key` changes it).
    api_key: RwLock<String>,
    pub client_id: String,
    pub miners: RwLock<Vec<MinerConfigEntry>>,
    pub rec: Mutex<Records>,
    pub faults: Mutex<FaultCounters>,
    /// Commands queued for pickaxes and what they reported.
    pub commands: Mutex<super::commands::CommandQueue>,
    pub outage_tx: watch::Sender<Option<OutageMode>>,
    outage_gen: Arc<AtomicU64>,
    /// The running schedule (its cancel token) and its progress.
    schedule: Mutex<(CancellationToken, Arc<Mutex<ScheduleState>>)>,
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
            api_key: RwLock::new(api_key),
            client_id,
            miners: RwLock::new(miners),
            rec: Mutex::new(Records::default()),
            faults: Mutex::new(FaultCounters::default()),
            commands: Mutex::new(Default::default()),
            outage_tx: watch::channel(None).0,
            outage_gen: Arc::new(AtomicU64::new(0)),
            schedule: Mutex::new((shutdown.child_token(), Arc::default())),
            shutdown,
            runtime: tokio::runtime::Handle::current(),
        }
    }

    /// The key clients must send now.
    pub fn api_key(&self) -> String {
        self.api_key
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn rec(&self) -> std::sync::MutexGuard<'_, Records> {
        self.rec.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn commands(&self) -> std::sync::MutexGuard<'_, super::commands::CommandQueue> {
        self.commands.lock().unwrap_or_else(|e| e.into_inner())
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
                f.slow_secs = secs(seconds);
            }
            ForemanFault::SlowCommit { count, seconds } => {
                let mut f = self.fault_counters();
                f.slow_commit_left = count;
                f.slow_commit_secs = secs(seconds);
            }
            ForemanFault::ServerError { count, status } => {
                let mut f = self.fault_counters();
                f.server_error_left = count;
                f.server_error_status = if (500..=599).contains(&status) {
                    status
                } else {
                    500
                };
            }
            ForemanFault::Reject { count, ref message } => {
                let mut f = self.fault_counters();
                f.reject_left = count;
                f.reject_message = message.clone();
            }
            ForemanFault::Poison {
                ref ip,
                count,
                status,
            } => {
                self.fault_counters().poison = Some(PoisonFault {
                    ip: ip.clone(),
                    left: count,
                    status: if (500..=599).contains(&status) {
                        status
                    } else {
                        500
                    },
                    timestamps: Default::default(),
                });
            }
            ForemanFault::MaxBody { bytes } => self.fault_counters().max_body = Some(bytes),
            ForemanFault::RevokeKey => self.fault_counters().key_revoked = true,
            ForemanFault::SetKey { ref key } => {
                *self.api_key.write().unwrap_or_else(|e| e.into_inner()) = key.clone();
                self.fault_counters().key_revoked = false;
            }
        }
    }

    /// Runs `entries` on the server's runtime, replacing a schedule still running.
    pub fn schedule(self: &Arc<Self>, mut entries: Vec<ScheduleEntry>) -> Result<(), String> {
        for (i, e) in entries.iter().enumerate() {
            if !e.at_secs.is_finite() || e.at_secs < 0.0 || e.at_secs > 86_400.0 {
                return Err(format!("entry {i}: at_secs must be 0..86400"));
            }
            if e.fault.is_some() == e.clear {
                return Err(format!("entry {i}: give either a fault or \"clear\":true"));
            }
        }
        entries.sort_by(|a, b| a.at_secs.total_cmp(&b.at_secs));
        let token = self.shutdown.child_token();
        let progress = Arc::new(Mutex::new(ScheduleState {
            entries: entries.clone(),
            applied: 0,
        }));
        {
            let mut cur = self.schedule.lock().unwrap_or_else(|e| e.into_inner());
            cur.0.cancel();
            *cur = (token.clone(), progress.clone());
        }
        let me = self.clone();
        let start = tokio::time::Instant::now();
        self.runtime.spawn(async move {
            for e in entries {
                let at = start + Duration::from_secs_f64(e.at_secs);
                tokio::select! {
                    _ = tokio::time::sleep_until(at) => {}
                    _ = token.cancelled() => return,
                }
                match &e.fault {
                    Some(f) => me.inject(f),
                    None => me.clear_faults(),
                }
                progress.lock().unwrap_or_else(|e| e.into_inner()).applied += 1;
            }
        });
        Ok(())
    }

    pub fn schedule_state(&self) -> ScheduleState {
        let cur = self.schedule.lock().unwrap_or_else(|e| e.into_inner());
        let s = cur.1.lock().unwrap_or_else(|e| e.into_inner()).clone();
        s
    }

    pub fn clear_faults(&self) {
        tracing::info!("fake Foreman faults cleared");
        // A key set with `set_key` stays; a revocation ends.
        *self.fault_counters() = FaultCounters::default();
        self.outage_gen.fetch_add(1, Ordering::SeqCst);
        self.outage_tx.send_replace(None);
    }

    pub fn active_faults(&self) -> ActiveFaults {
        let f = self.fault_counters().clone();
        ActiveFaults {
            outage: self.outage(),
            rate_limit_left: f.rate_limit_left,
            retry_after: f.retry_after,
            slow_left: f.slow_left,
            slow_seconds: f.slow_secs,
            slow_commit_left: f.slow_commit_left,
            slow_commit_seconds: f.slow_commit_secs,
            server_error_left: f.server_error_left,
            server_error_status: f.server_error_status,
            reject_left: f.reject_left,
            max_body: f.max_body,
            key_revoked: f.key_revoked,
        }
    }
}

fn secs(s: f64) -> f64 {
    if s.is_finite() {
        s.clamp(0.0, 3600.0)
    } else {
        0.0
    }
}
