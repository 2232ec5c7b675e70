//! A fleet of simulated stock Antminers, each a cgminer-style TCP listener on 127.0.0.0/8.

mod fault;
mod fixtures;
mod listener;
mod miner;
mod reply;
mod template;

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

pub use fault::{parse_fault_counts, parse_secs, Fault, DEFAULT_SLOW_DELAY, DRIP_INTERVAL};
pub use fixtures::{model_keys, models, Model, DEFAULT_MIX, REPORT_COMMANDS};
pub use miner::{MinerReport, ServedCounts, StatsServed, STATS_HISTORY};

use crate::foreman::MinerConfigEntry;
use miner::MinerState;

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
    /// Models by weight: `[("s19pro", 40), ("s17", 30)]`; empty = [`DEFAULT_MIX`].
    pub mix: Vec<(String, u32)>,
    /// Seed for the model layout and the boot offsets.
    pub seed: u64,
    /// Faults applied at start to the last miners of the fleet, in this order.
    pub faults: Vec<(Fault, usize)>,
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
        }
    }
}

/// Parses `s19pro=40,s17=30` (a bare name has weight 1).
pub fn parse_mix(spec: &str) -> anyhow::Result<Vec<(String, u32)>> {
    let mut out = Vec::new();
    for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (name, w) = item.split_once('=').unwrap_or((item, "1"));
        let w: u32 = w
            .trim()
            .parse()
            .map_err(|_| anyhow::anyhow!("mix '{item}': weight must be a whole number"))?;
        if fixtures::model_index(name).is_none() {
            bail!(
                "mix '{item}': unknown model '{name}' (known: {})",
                model_keys().join(", ")
            );
        }
        out.push((name.trim().to_string(), w));
    }
    Ok(out)
}

/// A simulated miner's address and model.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimMinerInfo {
    pub addr: SocketAddr,
    /// Model key (`s19pro`, `s17`, ...).
    pub model: String,
    /// What `version` reports as `Type`, e.g. `Antminer S19 Pro`.
    pub type_name: String,
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

/// Model index per miner: exact shares of the weights (largest remainder), shuffled by `seed`.
fn layout(cfg: &FleetConfig, rng: &mut rand::rngs::StdRng) -> anyhow::Result<Vec<usize>> {
    let mix: Vec<(usize, u32)> = if cfg.mix.is_empty() {
        DEFAULT_MIX
            .iter()
            .filter_map(|(k, w)| fixtures::model_index(k).map(|i| (i, *w)))
            .collect()
    } else {
        cfg.mix
            .iter()
            .map(|(k, w)| {
                fixtures::model_index(k).map(|i| (i, *w)).with_context(|| {
                    format!("unknown model '{k}' (known: {})", model_keys().join(", "))
                })
            })
            .collect::<anyhow::Result<_>>()?
    };
    let total: u64 = mix.iter().map(|(_, w)| u64::from(*w)).sum();
    if total == 0 {
        bail!("the model mix has no positive weight");
    }
    let n = cfg.count as u64;
    let mut counts: Vec<(usize, u64, u64)> = mix
        .iter()
        .map(|&(i, w)| {
            let exact = n * u64::from(w);
            (i, exact / total, exact % total)
        })
        .collect();
    let assigned: u64 = counts.iter().map(|c| c.1).sum();
    let mut order: Vec<usize> = (0..counts.len()).collect();
    order.sort_by(|&a, &b| counts[b].2.cmp(&counts[a].2).then(a.cmp(&b)));
    for &k in order.iter().take((n - assigned) as usize) {
        counts[k].1 += 1;
    }
    let mut out = Vec::with_capacity(cfg.count);
    for (i, c, _) in counts {
        out.extend(std::iter::repeat_n(i, c as usize));
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
        // Booted between 10 minutes and 30 days ago.
        let uptime_ms = rng.random_range(600_000..30 * 86_400_000i64);
        let m = Arc::new(MinerState::new(
            addr,
            &all[layout[i]],
            now_ms - uptime_ms,
            faults[i],
        ));
        miners.push(m);
        listeners.push(listener);
    }
    for (m, l) in miners.iter().zip(listeners) {
        tracker.spawn(listener::accept_loop(
            m.clone(),
            l,
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

    /// Every miner's address and model, in fleet order.
    pub fn miners(&self) -> Vec<SimMinerInfo> {
        self.inner
            .miners
            .iter()
            .map(|m| SimMinerInfo {
                addr: m.addr,
                model: m.model.key.to_string(),
                type_name: m.model.type_name.clone(),
            })
            .collect()
    }

    /// The fleet as Foreman miner-config entries (`apiType` 19, no params).
    pub fn config_entries(&self) -> Vec<MinerConfigEntry> {
        self.inner
            .miners
            .iter()
            .map(|m| MinerConfigEntry::antminer(m.addr))
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

    /// What a miner served: counts per command and its last 1,000 `stats` replies.
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

    /// The `stats` replies a miner served (time, GH/s), oldest first.
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
