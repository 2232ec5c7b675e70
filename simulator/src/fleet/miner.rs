//! Per-miner state: identity, fault, framing, firmware state (power, sessions, tokens) and the
//! record of what was served.

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeZone, Utc};
use serde::Serialize;
use tokio::sync::watch;

use super::family::{Family, Framing};
use super::fault::Fault;
use super::fixtures::Model;
use super::reply::Reply;
use super::template::MacStyle;
use super::web_auth::Nonces;

/// How many hashrate-bearing replies are remembered per miner (default).
pub const STATS_HISTORY: usize = 1000;
/// The default history of a large fleet (more than [`LARGE_FLEET`] miners): about 1.6 KB per
/// miner instead of 16 KB.
pub const LARGE_FLEET_HISTORY: usize = 64;
/// Above this many miners the default history is [`LARGE_FLEET_HISTORY`].
pub const LARGE_FLEET: usize = 2000;

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

/// One hashrate-bearing reply served (alone or inside a join): when, and the realtime
/// hashrate in it. For stock Antminers that is `stats` (`GHS 5s`); for other models the reply
/// of [`crate::fleet::Model::primary`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StatsServed {
    /// When the reply was built (its `When`, with milliseconds).
    pub at: DateTime<Utc>,
    /// Realtime hashrate served, GH/s, as printed in the reply (converted from MH/s or TH/s).
    pub ghs: f64,
}

/// Everything recorded about one simulated miner.
#[derive(Clone, Debug)]
pub struct MinerReport {
    pub addr: SocketAddr,
    /// Model key (`s19pro`, `m31s`, ...).
    pub model: String,
    pub fault: Fault,
    pub served: ServedCounts,
    /// The last (up to the history length) hashrate-bearing replies, oldest first.
    pub stats_served: Vec<StatsServed>,
    /// Decimals the reported hashrate has in GH/s (for formatting `ghs` as served).
    pub ghs_decimals: usize,
    pub family: Family,
    pub make: String,
    /// Model as a client normalizes it (`S19 Pro`, `M31S`, `Q`).
    pub model_name: String,
    pub firmware: String,
    /// The MAC the miner serves (lower-case, colons), if its API serves one.
    pub mac: Option<String>,
    /// Hashing now (not paused, asleep, powered off or soft-off).
    pub hashing: bool,
    /// Nominal realtime hashrate now, GH/s (0 when not hashing; replies jitter ±3 % around it).
    pub hashrate_ghs: f64,
    /// Replies served per command (every command, including the five above).
    pub commands: BTreeMap<String, u64>,
    pub framing: Framing,
    /// Whatsminer API v3 address (M60S).
    pub v3_addr: Option<SocketAddr>,
    /// Whatsminer: whether the write API is enabled.
    pub write_api: bool,
    /// Reboots so far.
    pub reboots: u64,
    /// Switches of hashing by commands (unix ms, on), oldest first.
    pub power_log: Vec<(i64, bool)>,
    /// Stock Antminer web interface address (same IP as `addr`), `None` for other families.
    pub web_addr: Option<SocketAddr>,
    /// The MAC `get_system_info.cgi` serves (upper case, colons), with `web_addr`.
    pub web_mac: Option<String>,
    /// Web requests answered, per CGI script (`get_miner_conf.cgi`, ...), plus `unauthorized`
    /// (401 challenges) and `not_found` (404).
    pub web_requests: BTreeMap<String, u64>,
}

/// A LuxOS session.
pub(crate) struct Session {
    pub id: String,
    pub last_used: Instant,
}

/// A Whatsminer API v2 token handed out by `get_token`.
pub(crate) struct Token {
    pub time: String,
    pub newsalt: String,
    pub issued: Instant,
}

/// Firmware state that commands change.
pub(crate) struct Dynamic {
    /// Hashing (false: BOS paused, LuxOS asleep, Whatsminer powered off, Avalon soft-off).
    pub on: bool,
    /// A scheduled switch (unix s, on): Avalon `softoff`/`softon` at a time.
    pub pending: Option<(i64, bool)>,
    pub led: bool,
    pub session: Option<Session>,
    pub tokens: VecDeque<Token>,
    pub write_api: bool,
    pub password: String,
    /// Pools set by `update_pools` (url, user), in place of the fixture's.
    pub pools: Vec<(String, String)>,
    /// The pool list once cgminer pool commands changed it (LuxOS `addpool`, `switchpool`,
    /// `removepool`); `pools` is then served from it.
    pub cg_pools: Option<super::dialect::cgminer_pools::PoolList>,
    /// Avalon: the pool slots `setpool` saved, applied at the next reboot.
    pub saved_pools: Option<Vec<Option<(String, String)>>>,
    /// Avalon: older firmware that answers `failed` to `setpool` with a slot.
    pub legacy_setpool: bool,
    /// Every switch of hashing on or off by a command (unix ms, on), oldest first.
    pub power_log: Vec<(i64, bool)>,
    /// Stock Antminer: the last `bitmain-work-mode` set on the web (`"0"` at start).
    pub work_mode: String,
    /// Stock Antminer: the pool passwords of the last web conf, in `cg_pools` order (served
    /// back by `get_miner_conf.cgi` as the firmware does; never logged).
    pub pool_pass: Vec<String>,
}

impl Dynamic {
    /// Applies a scheduled switch that is due, then tells whether the miner hashes.
    pub fn hashing(&mut self, now_s: i64) -> bool {
        if let Some((at, on)) = self.pending {
            if now_s >= at {
                self.pending = None;
                self.switch(on, now_s * 1000);
            }
        }
        self.on
    }

    /// Switches hashing on or off (a command did), logging the change.
    pub fn switch(&mut self, on: bool, now_ms: i64) {
        if self.on != on {
            self.power_log.push((now_ms, on));
        }
        self.on = on;
    }
}

/// How a miner answers the command that reboots it (case C-19).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RebootReply {
    /// The firmware's reply, then the reboot.
    #[default]
    Reply,
    /// Reads the request, closes without a byte, reboots.
    Close,
    /// Reboots with the socket held silent (until the client gives up).
    Hang,
}

/// Knobs a miner starts with.
pub(crate) struct MinerSetup {
    pub boot_ms: i64,
    pub fault: Fault,
    pub mac: [u8; 6],
    pub history: usize,
    pub framing: Framing,
    pub write_api: bool,
    pub password: String,
    pub reboot_secs: f64,
    pub session_idle: Duration,
}

pub(crate) struct MinerState {
    pub addr: SocketAddr,
    pub model: &'static Model,
    /// Simulated boot time (unix ms): `Elapsed` counts from here.
    boot_ms: AtomicI64,
    /// Rebooting: connections are refused until then (unix ms).
    down_until_ms: AtomicI64,
    fault: Mutex<Fault>,
    /// Bumped when the fault or the down time changes (the accept loops close or reopen).
    pub changed: watch::Sender<u64>,
    served: [AtomicU64; 6],
    commands: Mutex<BTreeMap<String, u64>>,
    stats: Mutex<VecDeque<(i64, f64)>>,
    history: usize,
    pub mac: [u8; 6],
    /// Salt of the admin password hash (Whatsminer `get_token`).
    pub salt: String,
    framing: Mutex<Framing>,
    dynamic: Mutex<Dynamic>,
    reboot_secs: f64,
    /// LuxOS session idle expiry.
    pub session_idle: Duration,
    pub v3_addr: OnceLock<SocketAddr>,
    /// Stock Antminer web interface address.
    pub web_addr: OnceLock<SocketAddr>,
    /// Digest nonces the web interface handed out.
    pub web_nonces: Nonces,
    web_requests: Mutex<BTreeMap<String, u64>>,
    /// Reboots so far (by command or by [`crate::Fleet::reboot`]).
    reboots: AtomicU64,
    reboot_reply: Mutex<RebootReply>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl MinerState {
    pub fn new(addr: SocketAddr, model: &'static Model, setup: MinerSetup) -> Self {
        // The salt is fixed per device (it comes from the stored password hash).
        let salt: String = setup
            .mac
            .iter()
            .chain(&setup.mac[..2])
            .map(|b| {
                char::from(
                    b"./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                        [usize::from(*b) % 64],
                )
            })
            .collect();
        MinerState {
            addr,
            model,
            boot_ms: AtomicI64::new(setup.boot_ms),
            down_until_ms: AtomicI64::new(0),
            fault: Mutex::new(setup.fault),
            changed: watch::channel(0).0,
            served: Default::default(),
            commands: Mutex::new(BTreeMap::new()),
            stats: Mutex::new(VecDeque::new()),
            history: setup.history,
            mac: setup.mac,
            salt,
            framing: Mutex::new(setup.framing),
            dynamic: Mutex::new(Dynamic {
                on: true,
                pending: None,
                led: false,
                session: None,
                tokens: VecDeque::new(),
                write_api: setup.write_api,
                password: setup.password,
                pools: Vec::new(),
                cg_pools: None,
                saved_pools: None,
                legacy_setpool: false,
                power_log: Vec::new(),
                work_mode: "0".to_string(),
                pool_pass: Vec::new(),
            }),
            reboots: AtomicU64::new(0),
            reboot_reply: Mutex::new(RebootReply::default()),
            reboot_secs: setup.reboot_secs,
            session_idle: setup.session_idle,
            v3_addr: OnceLock::new(),
            web_addr: OnceLock::new(),
            web_nonces: Nonces::default(),
            web_requests: Mutex::new(BTreeMap::new()),
        }
    }

    pub fn fault(&self) -> Fault {
        *lock(&self.fault)
    }

    pub fn set_fault(&self, f: Fault) {
        *lock(&self.fault) = f;
        self.changed.send_modify(|g| *g += 1);
    }

    pub fn framing(&self) -> Framing {
        *lock(&self.framing)
    }

    pub fn set_framing(&self, f: Framing) {
        *lock(&self.framing) = f;
    }

    pub fn dynamic(&self) -> MutexGuard<'_, Dynamic> {
        lock(&self.dynamic)
    }

    pub fn boot_ms(&self) -> i64 {
        self.boot_ms.load(Ordering::Relaxed)
    }

    /// Rebooting until this time (unix ms), or 0.
    pub fn down_until_ms(&self) -> i64 {
        self.down_until_ms.load(Ordering::Relaxed)
    }

    /// Reboots now: uptime restarts, connections are refused for the reboot time, a LuxOS
    /// session and Whatsminer tokens are gone.
    pub fn reboot(&self, now_ms: i64) {
        self.reboots.fetch_add(1, Ordering::Relaxed);
        let down = (self.reboot_secs * 1000.0) as i64;
        self.boot_ms.store(now_ms + down, Ordering::Relaxed);
        if down > 0 {
            self.down_until_ms.store(now_ms + down, Ordering::Relaxed);
        }
        {
            let mut d = self.dynamic();
            d.session = None;
            d.tokens.clear();
            if let Some(slots) = d.saved_pools.take() {
                d.cg_pools = Some(super::dialect::cgminer_pools::PoolList::from_slots(&slots));
            }
        }
        // A new web server process: the nonces it handed out are gone.
        self.web_nonces.clear();
        tracing::info!(addr = %self.addr, down_ms = down, "simulated miner rebooting");
        self.changed.send_modify(|g| *g += 1);
    }

    pub fn reboots(&self) -> u64 {
        self.reboots.load(Ordering::Relaxed)
    }

    pub fn reboot_reply(&self) -> RebootReply {
        *lock(&self.reboot_reply)
    }

    pub fn set_reboot_reply(&self, r: RebootReply) {
        *lock(&self.reboot_reply) = r;
    }

    /// Hashing now (applies a due Avalon schedule).
    pub fn hashing(&self, now_s: i64) -> bool {
        self.dynamic().hashing(now_s)
    }

    /// The MAC in the canonical form (lower case, colons), if the model serves one.
    pub fn mac_string(&self) -> Option<String> {
        self.model
            .oui
            .map(|_| MacStyle::LowerColon.format(self.mac))
    }

    /// The MAC the web interface serves (upper case, colons), if the miner has one.
    pub fn web_mac(&self) -> Option<String> {
        self.web_addr
            .get()
            .map(|_| MacStyle::UpperColon.format(self.mac))
    }

    /// Records a reply that was written out completely.
    pub fn record(&self, reply: &Reply, at_ms: i64) {
        for (c, n) in self.served.iter().zip(reply.served) {
            if n > 0 {
                c.fetch_add(u64::from(n), Ordering::Relaxed);
            }
        }
        if !reply.commands.is_empty() {
            let mut m = lock(&self.commands);
            for c in &reply.commands {
                match m.get_mut(c.as_str()) {
                    Some(n) => *n += 1,
                    None => {
                        m.insert(c.clone(), 1);
                    }
                }
            }
        }
        if let Some(ghs) = reply.stats_ghs {
            let mut q = lock(&self.stats);
            while q.len() >= self.history.max(1) {
                q.pop_front();
            }
            q.push_back((at_ms, ghs));
        }
    }

    /// Counts one web request (`what`: the CGI script, `unauthorized` or `not_found`).
    pub fn record_web(&self, what: &str) {
        let mut m = lock(&self.web_requests);
        match m.get_mut(what) {
            Some(n) => *n += 1,
            None => {
                m.insert(what.to_string(), 1);
            }
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
            let q = lock(&self.stats);
            q.iter()
                .map(|&(ms, ghs)| StatsServed {
                    at: Utc.timestamp_millis_opt(ms).single().unwrap_or_default(),
                    ghs,
                })
                .collect()
        } else {
            Vec::new()
        };
        let now_s = Utc::now().timestamp();
        let (hashing, write_api, power_log) = {
            let mut d = self.dynamic();
            (d.hashing(now_s), d.write_api, d.power_log.clone())
        };
        MinerReport {
            addr: self.addr,
            model: self.model.key.to_string(),
            fault: self.fault(),
            served: self.served(),
            stats_served,
            ghs_decimals: self.model.ghs_decimals,
            family: self.model.family,
            make: self.model.make.to_string(),
            model_name: self.model.model_name.to_string(),
            firmware: self.model.firmware.clone(),
            mac: self.mac_string(),
            hashing,
            hashrate_ghs: if hashing { self.model.base_ghs } else { 0.0 },
            commands: lock(&self.commands).clone(),
            framing: self.framing(),
            v3_addr: self.v3_addr.get().copied(),
            write_api,
            reboots: self.reboots(),
            power_log,
            web_addr: self.web_addr.get().copied(),
            web_mac: self.web_mac(),
            web_requests: lock(&self.web_requests).clone(),
        }
    }
}
