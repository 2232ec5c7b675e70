//! A fleet of simulated miners of every family, each a cgminer-style TCP listener on
//! 127.0.0.0/8 (plus Whatsminer API v3 on 4433 for the models that have it).

mod dialect;
mod family;
mod fault;
mod fixtures;
mod listener;
mod malform;
mod miner;
mod reply;
mod synth;
mod template;
mod text;
mod web;
mod web_auth;

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use chrono::Utc;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use family::{Family, Framing, Terminator};
pub use fault::{
    parse_fault_counts, parse_secs, Fault, Malform, DEFAULT_SLOW_DELAY, DEFAULT_SPLIT_CHUNK,
    DEFAULT_SPLIT_DELAY, DRIP_INTERVAL, SOCKET_FAILED_TEXT,
};
pub use fixtures::{family_models, model_keys, models, Model, DEFAULT_MIX, REPORT_COMMANDS};
pub use miner::{
    MinerReport, RebootReply, ServedCounts, StatsServed, LARGE_FLEET, LARGE_FLEET_HISTORY,
    STATS_HISTORY,
};
pub use whatsminer_crypto::v2 as wm_crypto;

use crate::foreman::MinerConfigEntry;
use listener::Port;
use miner::{MinerSetup, MinerState};

/// The Whatsminer API v3 port.
pub const V3_PORT: u16 = 4433;

/// How to build a fleet.
#[derive(Clone, Debug)]
pub struct FleetConfig {
    /// Number of miners.
    pub count: usize,
    /// First address. Without `consecutive_ports`, miner *i* gets the *i*-th address from here
    /// upward (skipping last octets 0 and 255), all on `port`.
    pub base: Ipv4Addr,
    /// Port of every miner, or the first port with `consecutive_ports`. 0 = let the OS pick one
    /// per miner (handy for tests that run in parallel).
    pub port: u16,
    /// All miners on `base`, on ports `port`, `port+1`, ...
    pub consecutive_ports: bool,
    /// Models or families by weight: `[("s19pro", 40), ("whatsminer", 30)]` (a family spreads
    /// its share evenly over its models); empty = [`DEFAULT_MIX`].
    pub mix: Vec<(String, u32)>,
    /// Seed for the model layout and the boot offsets.
    pub seed: u64,
    /// Faults applied at start to the last miners of the fleet, in this order.
    pub faults: Vec<(Fault, usize)>,
    /// Hashrate-bearing replies remembered per miner. `None`: 1,000, or 64 when the fleet has
    /// more than 2,000 miners (1,000 entries x 10,000 miners is about 160 MB).
    pub history: Option<usize>,
    /// Framing per family (default: NUL-terminated, closed after the reply).
    pub framing: Vec<(Family, Framing)>,
    /// Whatsminer write API enabled at start. Real miners ship it disabled (then every
    /// encrypted write is answered Code 45 "can't access write cmd"); the simulator enables it
    /// so commands can be tested, set `false` to test the refusal.
    pub whatsminer_write_api: bool,
    /// Whatsminer admin password (`admin` on a new miner).
    pub whatsminer_password: String,
    /// Seconds a rebooted miner refuses connections before it is back (uptime restarts then).
    pub reboot_secs: f64,
    /// LuxOS: a session unused this long expires (60 s on the firmware).
    pub luxos_session_secs: f64,
    /// Port of the stock Antminer web interface (HTTP CGI with Digest auth) on each stock
    /// Antminer's IP: `None` serves none (the default: a second socket per miner halves the
    /// fleet a file limit allows), `Some(0)` a free port per miner (80 on a real miner). With
    /// `consecutive_ports` the miners share an IP, so each gets a free port.
    pub web_port: Option<u16>,
}

impl Default for FleetConfig {
    fn default() -> Self {
        FleetConfig {
            count: 10,
            base: Ipv4Addr::new(127, 1, 0, 1),
            port: 4028,
            consecutive_ports: false,
            mix: Vec::new(),
            seed: 0,
            faults: Vec::new(),
            history: None,
            framing: Vec::new(),
            whatsminer_write_api: true,
            whatsminer_password: "admin".to_string(),
            reboot_secs: 0.0,
            luxos_session_secs: 60.0,
            web_port: None,
        }
    }
}

impl FleetConfig {
    /// The history length in force (see [`FleetConfig::history`]).
    pub fn history_len(&self) -> usize {
        self.history.unwrap_or(if self.count > LARGE_FLEET {
            LARGE_FLEET_HISTORY
        } else {
            STATS_HISTORY
        })
    }

    fn framing_of(&self, f: Family) -> Framing {
        self.framing
            .iter()
            .rev()
            .find(|(fam, _)| *fam == f)
            .map(|(_, fr)| *fr)
            .unwrap_or_default()
    }
}

/// One `--mix` entry resolved: a model, or a family (spread over its models).
#[derive(Clone, Debug)]
enum MixKey {
    Model(usize),
    Family(Family),
}

fn resolve(name: &str) -> Option<MixKey> {
    fixtures::model_index(name)
        .map(MixKey::Model)
        .or_else(|| Family::from_name(name).map(MixKey::Family))
}

fn unknown(name: &str) -> String {
    format!(
        "unknown model or family '{name}' (families: {}; models: {})",
        Family::ALL.map(Family::name).join(", "),
        model_keys().join(", ")
    )
}

/// Parses `s19pro=40,s17=30` or `antminer=40,whatsminer=30` (a bare name has weight 1).
pub fn parse_mix(spec: &str) -> anyhow::Result<Vec<(String, u32)>> {
    let mut out = Vec::new();
    for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (name, w) = item.split_once('=').unwrap_or((item, "1"));
        let w: u32 = w
            .trim()
            .parse()
            .map_err(|_| anyhow::anyhow!("mix '{item}': weight must be a whole number"))?;
        if resolve(name).is_none() {
            bail!("mix '{item}': {}", unknown(name.trim()));
        }
        out.push((name.trim().to_string(), w));
    }
    Ok(out)
}

/// Parses `whatsminer=newline:keep-open,avalon=none` (family = terminator[:keep-open]).
pub fn parse_framing(spec: &str) -> anyhow::Result<Vec<(Family, Framing)>> {
    let mut out = Vec::new();
    for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (fam, how) = item
            .split_once('=')
            .ok_or_else(|| anyhow::anyhow!("framing '{item}': expected FAMILY=TERMINATOR"))?;
        let family: Family = fam.parse().map_err(anyhow::Error::msg)?;
        let (term, rest) = how.split_once(':').unwrap_or((how, ""));
        let keep_open = match rest.trim() {
            "" | "close" => false,
            "keep-open" | "keep_open" | "open" => true,
            other => bail!("framing '{item}': expected keep-open or close, got '{other}'"),
        };
        let terminator = Terminator::from_name(term).map_err(anyhow::Error::msg)?;
        out.push((
            family,
            Framing {
                terminator,
                keep_open,
            },
        ));
    }
    Ok(out)
}

/// A simulated miner's address, model and what it serves.
#[derive(Clone, Debug, PartialEq)]
pub struct SimMinerInfo {
    pub addr: SocketAddr,
    /// Model key (`s19pro`, `m31s`, ...).
    pub model: String,
    /// What `version` reports as `Type` (`Antminer S19 Pro`), or `PROD` on Avalons, or maker
    /// and model where the firmware has neither.
    pub type_name: String,
    pub family: Family,
    /// `Antminer`, `Whatsminer`, `Avalon`, `SealMiner`.
    pub make: String,
    /// Model as a client normalizes it (`S19 Pro`, `S19k Pro`, `M31S`, `Q`, `15-194`).
    pub model_name: String,
    /// Firmware identification (CompileTime on stock Antminers, version strings elsewhere).
    pub firmware: String,
    /// The MAC its API serves (lower case, colons); `None` where the API serves none.
    pub mac: Option<String>,
    /// Nominal realtime hashrate now, GH/s: 0 while paused/asleep/off; replies jitter ±3 %.
    pub hashrate_ghs: f64,
    /// Whatsminer API v3 address (same IP, port 4433 or a free one), for M60S.
    pub v3_addr: Option<SocketAddr>,
    /// Web interface address (same IP, `FleetConfig::web_port` or a free one), for stock
    /// Antminers; `None` for other families.
    pub web_addr: Option<SocketAddr>,
    /// The MAC `get_system_info.cgi` serves (upper case, colons), with `web_addr`. Stock
    /// Antminers serve no MAC over RPC (`mac` is `None`): the web is where it is read.
    pub web_mac: Option<String>,
}

/// A running fleet. Cloning gives another handle to the same fleet.
#[derive(Clone)]
pub struct Fleet {
    inner: Arc<FleetInner>,
}

struct FleetInner {
    miners: Vec<Arc<MinerState>>,
    index: HashMap<SocketAddr, usize>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
}

impl std::fmt::Debug for Fleet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fleet")
            .field("miners", &self.inner.miners.len())
            .finish()
    }
}

impl Drop for FleetInner {
    /// The last handle gone: stop the listeners (without waiting).
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Addresses for `count` miners.
fn addresses(cfg: &FleetConfig) -> anyhow::Result<Vec<SocketAddrV4>> {
    if !cfg.base.is_loopback() {
        bail!("base address {} is not in 127.0.0.0/8", cfg.base);
    }
    let mut out = Vec::with_capacity(cfg.count);
    if cfg.consecutive_ports {
        for i in 0..cfg.count {
            let port = if cfg.port == 0 {
                0
            } else {
                u16::try_from(usize::from(cfg.port) + i).with_context(|| {
                    format!("{} miners from port {} exceed 65535", cfg.count, cfg.port)
                })?
            };
            out.push(SocketAddrV4::new(cfg.base, port));
        }
        return Ok(out);
    }
    let mut ip = u32::from(cfg.base);
    while out.len() < cfg.count {
        let a = Ipv4Addr::from(ip);
        if !a.is_loopback() {
            bail!(
                "{} miners from {} run past 127.255.255.254",
                cfg.count,
                cfg.base
            );
        }
        let last = a.octets()[3];
        if last != 0 && last != 255 {
            out.push(SocketAddrV4::new(a, cfg.port));
        }
        ip += 1;
    }
    Ok(out)
}

/// Model index per miner: exact shares of the weights (largest remainder), a family's share
/// spread evenly over its models, shuffled by `seed`.
fn layout(cfg: &FleetConfig, rng: &mut rand::rngs::StdRng) -> anyhow::Result<Vec<usize>> {
    let mix: Vec<(MixKey, u32)> = if cfg.mix.is_empty() {
        DEFAULT_MIX
            .iter()
            .filter_map(|(k, w)| fixtures::model_index(k).map(|i| (MixKey::Model(i), *w)))
            .collect()
    } else {
        cfg.mix
            .iter()
            .map(|(k, w)| {
                resolve(k)
                    .map(|m| (m, *w))
                    .ok_or_else(|| anyhow::anyhow!(unknown(k)))
            })
            .collect::<anyhow::Result<_>>()?
    };
    let total: u64 = mix.iter().map(|(_, w)| u64::from(*w)).sum();
    if total == 0 {
        bail!("the model mix has no positive weight");
    }
    let n = cfg.count as u64;
    let mut counts: Vec<(&MixKey, u64, u64)> = mix
        .iter()
        .map(|(k, w)| {
            let exact = n * u64::from(*w);
            (k, exact / total, exact % total)
        })
        .collect();
    let assigned: u64 = counts.iter().map(|c| c.1).sum();
    let mut order: Vec<usize> = (0..counts.len()).collect();
    order.sort_by(|&a, &b| counts[b].2.cmp(&counts[a].2).then(a.cmp(&b)));
    for &k in order.iter().take((n - assigned) as usize) {
        counts[k].1 += 1;
    }
    let mut out = Vec::with_capacity(cfg.count);
    for (k, c, _) in counts {
        match k {
            MixKey::Model(i) => out.extend(std::iter::repeat_n(*i, c as usize)),
            MixKey::Family(f) => {
                let members = family_models(*f);
                out.extend((0..c as usize).map(|j| members[j % members.len()]));
            }
        }
    }
    out.shuffle(rng);
    Ok(out)
}

/// Starts a fleet: binds every listener (failing early on a clash) and runs one accept loop per
/// miner. Raises the open-files soft limit to the hard limit first.
pub async fn start_fleet(cfg: FleetConfig) -> anyhow::Result<Fleet> {
    raise_fd_limit();
    let started = Instant::now();
    let mut rng = rand::rngs::StdRng::seed_from_u64(cfg.seed);
    let addrs = addresses(&cfg)?;
    let layout = layout(&cfg, &mut rng)?;
    let mut faults = vec![Fault::None; cfg.count];
    let faulted: usize = cfg.faults.iter().map(|(_, n)| n).sum();
    if faulted > cfg.count {
        bail!(
            "{faulted} faulty miners requested in a fleet of {}",
            cfg.count
        );
    }
    let mut k = cfg.count - faulted;
    for &(f, n) in &cfg.faults {
        for slot in faults.iter_mut().skip(k).take(n) {
            *slot = f;
        }
        k += n;
    }
    let now_ms = Utc::now().timestamp_millis();
    let all = models();
    let history = cfg.history_len();
    // MACs: the model's vendor prefix, then a per-fleet offset plus the miner's index.
    let mac_base: u32 = rng.random_range(0..0x00ff_0000);
    let shutdown = CancellationToken::new();
    let tracker = TaskTracker::new();
    let mut miners = Vec::with_capacity(cfg.count);
    let mut listeners = Vec::with_capacity(cfg.count);
    for (i, a) in addrs.iter().enumerate() {
        let listener = TcpListener::bind(*a).await.with_context(|| {
            format!(
                "cannot bind simulated miner {} of {} on {a}",
                i + 1,
                cfg.count
            )
        })?;
        let addr = listener.local_addr()?;
        let model = &all[layout[i]];
        // Booted between 10 minutes and 30 days ago.
        let uptime_ms = rng.random_range(600_000..30 * 86_400_000i64);
        let n = (mac_base + i as u32).to_be_bytes();
        let oui = model.oui.unwrap_or([0x02, 0x00, 0x00]);
        let m = Arc::new(MinerState::new(
            addr,
            model,
            MinerSetup {
                boot_ms: now_ms - uptime_ms,
                fault: faults[i],
                mac: [oui[0], oui[1], oui[2], n[1], n[2], n[3]],
                history,
                framing: cfg.framing_of(model.family),
                write_api: cfg.whatsminer_write_api,
                // Avalon `setpool` and the stock Antminer web interface check the web login
                // (factory root/root).
                password: if matches!(model.family, Family::Avalon | Family::Antminer) {
                    "root".to_string()
                } else {
                    cfg.whatsminer_password.clone()
                },
                reboot_secs: cfg.reboot_secs.clamp(0.0, 3600.0),
                session_idle: Duration::from_secs_f64(cfg.luxos_session_secs.clamp(0.0, 86_400.0)),
            },
        ));
        if model.serves_v3() {
            // Same address, port 4433; a free port when miners share an address or the fleet
            // asked for free ports.
            let port = if cfg.consecutive_ports || cfg.port == 0 {
                0
            } else {
                V3_PORT
            };
            let v3 = TcpListener::bind(SocketAddr::new(addr.ip(), port))
                .await
                .with_context(|| format!("cannot bind Whatsminer API v3 of {addr}"))?;
            let _ = m.v3_addr.set(v3.local_addr()?);
            tracker.spawn(listener::accept_loop(
                m.clone(),
                v3,
                Port::V3,
                shutdown.clone(),
                tracker.clone(),
            ));
        }
        if let Some(port) = cfg.web_port.filter(|_| model.family == Family::Antminer) {
            let port = if cfg.consecutive_ports { 0 } else { port };
            let web = TcpListener::bind(SocketAddr::new(addr.ip(), port))
                .await
                .with_context(|| {
                    format!("cannot bind the web interface of {addr} on port {port}")
                })?;
            let _ = m.web_addr.set(web.local_addr()?);
            tracker.spawn(listener::accept_loop(
                m.clone(),
                web,
                Port::Web,
                shutdown.clone(),
                tracker.clone(),
            ));
        }
        miners.push(m);
        listeners.push(listener);
    }
    for (m, l) in miners.iter().zip(listeners) {
        tracker.spawn(listener::accept_loop(
            m.clone(),
            l,
            Port::Cgminer,
            shutdown.clone(),
            tracker.clone(),
        ));
    }
    let index = miners
        .iter()
        .enumerate()
        .map(|(i, m)| (m.addr, i))
        .collect();
    tracing::info!(
        miners = cfg.count,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "simulated fleet started"
    );
    Ok(Fleet {
        inner: Arc::new(FleetInner {
            miners,
            index,
            shutdown,
            tracker,
        }),
    })
}

/// Raises the open-files soft limit to the hard limit (best effort).
pub fn raise_fd_limit() {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(n) => tracing::debug!(limit = n, "open-files limit"),
        Err(e) => tracing::warn!(error = %e, "cannot raise the open-files limit"),
    }
}

impl Fleet {
    /// Number of miners.
    pub fn len(&self) -> usize {
        self.inner.miners.len()
    }

    /// True for an empty fleet.
    pub fn is_empty(&self) -> bool {
        self.inner.miners.is_empty()
    }

    /// Every miner's address, model and what it serves, in fleet order.
    pub fn miners(&self) -> Vec<SimMinerInfo> {
        let now_s = Utc::now().timestamp();
        self.inner
            .miners
            .iter()
            .map(|m| SimMinerInfo {
                addr: m.addr,
                model: m.model.key.to_string(),
                type_name: m.model.type_name.clone(),
                family: m.model.family,
                make: m.model.make.to_string(),
                model_name: m.model.model_name.to_string(),
                firmware: m.model.firmware.clone(),
                mac: m.mac_string(),
                hashrate_ghs: if m.hashing(now_s) {
                    m.model.base_ghs
                } else {
                    0.0
                },
                v3_addr: m.v3_addr.get().copied(),
                web_addr: m.web_addr.get().copied(),
                web_mac: m.web_mac(),
            })
            .collect()
    }

    /// The fleet as Foreman miner-config entries (no params): `apiType` 19 for the
    /// Antminer-based firmwares and cgminer, 28 Whatsminer, 29 Avalon.
    pub fn config_entries(&self) -> Vec<MinerConfigEntry> {
        self.inner
            .miners
            .iter()
            .map(|m| MinerConfigEntry {
                api_type: m.model.family.api_type(),
                ..MinerConfigEntry::antminer(m.addr)
            })
            .collect()
    }

    fn get(&self, addr: SocketAddr) -> anyhow::Result<&Arc<MinerState>> {
        self.inner
            .index
            .get(&addr)
            .map(|&i| &self.inner.miners[i])
            .with_context(|| format!("no simulated miner at {addr}"))
    }

    /// Changes a miner's fault; it applies to the next connection (`refuse` closes the
    /// listener at once, leaving `refuse` reopens it).
    pub fn set_fault(&self, addr: SocketAddr, fault: Fault) -> anyhow::Result<()> {
        let m = self.get(addr)?;
        tracing::info!(%addr, fault = %fault, "miner fault set");
        m.set_fault(fault);
        Ok(())
    }

    /// A miner's current fault.
    pub fn fault(&self, addr: SocketAddr) -> Option<Fault> {
        self.get(addr).ok().map(|m| m.fault())
    }

    /// Sets how a miner frames its replies (terminator, keep-open); next connection on.
    pub fn set_framing(&self, addr: SocketAddr, framing: Framing) -> anyhow::Result<()> {
        self.get(addr)?.set_framing(framing);
        Ok(())
    }

    /// Switches hashing on or off (as BOS pause/resume, LuxOS curtail, Whatsminer power,
    /// Avalon soft power would).
    pub fn set_hashing(&self, addr: SocketAddr, on: bool) -> anyhow::Result<()> {
        let m = self.get(addr)?;
        let mut d = m.dynamic();
        d.on = on;
        d.pending = None;
        drop(d);
        Ok(())
    }

    /// Whatsminer: enables or disables the write API.
    pub fn set_write_api(&self, addr: SocketAddr, enabled: bool) -> anyhow::Result<()> {
        self.get(addr)?.dynamic().write_api = enabled;
        Ok(())
    }

    /// Sets the admin password: Whatsminer's (tokens handed out before stop working), the
    /// Avalon web password `setpool` checks, or the stock Antminer web (Digest) password.
    pub fn set_password(&self, addr: SocketAddr, password: &str) -> anyhow::Result<()> {
        let m = self.get(addr)?;
        let mut d = m.dynamic();
        d.password = password.to_string();
        d.tokens.clear();
        Ok(())
    }

    /// Avalon: older firmware answers `failed` to `setpool` with a slot and takes it without.
    pub fn set_legacy_setpool(&self, addr: SocketAddr, legacy: bool) -> anyhow::Result<()> {
        self.get(addr)?.dynamic().legacy_setpool = legacy;
        Ok(())
    }

    /// Reboots a miner now: uptime restarts, refused for `reboot_secs`.
    pub fn reboot(&self, addr: SocketAddr) -> anyhow::Result<()> {
        self.get(addr)?.reboot(Utc::now().timestamp_millis());
        Ok(())
    }

    /// Whether a miner's fault light is on (blinking).
    pub fn led(&self, addr: SocketAddr) -> Option<bool> {
        self.get(addr).ok().map(|m| m.dynamic().led)
    }

    /// How often a miner rebooted (by command or [`Fleet::reboot`]).
    pub fn reboots(&self, addr: SocketAddr) -> u64 {
        self.get(addr).map(|m| m.reboots()).unwrap_or(0)
    }

    /// Switches of hashing on/off by commands (unix ms, on), oldest first.
    pub fn power_log(&self, addr: SocketAddr) -> Vec<(i64, bool)> {
        self.get(addr)
            .map(|m| m.dynamic().power_log.clone())
            .unwrap_or_default()
    }

    /// How a miner answers the command that reboots it: reply, close or hang (C-19).
    pub fn set_reboot_reply(&self, addr: SocketAddr, how: RebootReply) -> anyhow::Result<()> {
        self.get(addr)?.set_reboot_reply(how);
        Ok(())
    }

    /// What a miner served: counts per command and its last hashrate-bearing replies.
    pub fn report(&self, addr: SocketAddr) -> Option<MinerReport> {
        self.get(addr).ok().map(|m| m.report(true))
    }

    /// Reports for every miner (`with_stats = false` leaves `stats_served` empty).
    pub fn reports(&self, with_stats: bool) -> Vec<MinerReport> {
        self.inner
            .miners
            .iter()
            .map(|m| m.report(with_stats))
            .collect()
    }

    /// The hashrate-bearing replies a miner served (time, GH/s), oldest first: `stats` on
    /// stock Antminers, the reply of [`Model::primary`] on the others.
    pub fn stats_served(&self, addr: SocketAddr) -> Vec<StatsServed> {
        self.report(addr)
            .map(|r| r.stats_served)
            .unwrap_or_default()
    }

    /// Stops every listener and drops held connections; waits up to 5 s for tasks to end.
    pub async fn shutdown(&self) {
        self.inner.shutdown.cancel();
        self.inner.tracker.close();
        let _ = tokio::time::timeout(Duration::from_secs(5), self.inner.tracker.wait()).await;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn addresses_skip_0_and_255() {
        let cfg = FleetConfig {
            count: 300,
            base: Ipv4Addr::new(127, 1, 0, 1),
            ..Default::default()
        };
        let a = addresses(&cfg).unwrap();
        assert_eq!(a[0].to_string(), "127.1.0.1:4028");
        assert_eq!(a[253].to_string(), "127.1.0.254:4028");
        assert_eq!(a[254].to_string(), "127.1.1.1:4028");
        assert_eq!(a.len(), 300);
        let cfg = FleetConfig {
            count: 3,
            base: Ipv4Addr::new(127, 0, 0, 1),
            port: 5000,
            consecutive_ports: true,
            ..Default::default()
        };
        let a = addresses(&cfg).unwrap();
        assert_eq!(a[2].to_string(), "127.0.0.1:5002");
        let bad = FleetConfig {
            base: Ipv4Addr::new(10, 0, 0, 1),
            ..Default::default()
        };
        assert!(addresses(&bad).is_err());
    }

    #[test]
    fn layout_is_exact_and_deterministic() {
        let cfg = FleetConfig {
            count: 100,
            mix: parse_mix("s19pro=40,s17=30,t15=30").unwrap(),
            seed: 7,
            ..Default::default()
        };
        let a = layout(&cfg, &mut rand::rngs::StdRng::seed_from_u64(7)).unwrap();
        let b = layout(&cfg, &mut rand::rngs::StdRng::seed_from_u64(7)).unwrap();
        assert_eq!(a, b);
        let count = |k: &str| {
            let i = fixtures::model_index(k).unwrap();
            a.iter().filter(|&&x| x == i).count()
        };
        assert_eq!((count("s19pro"), count("s17"), count("t15")), (40, 30, 30));
        assert!(parse_mix("s99=1").is_err());
    }
}
