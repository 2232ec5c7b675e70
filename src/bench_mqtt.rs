//! `pickaxe bench --mqtt`: how many live metrics messages per second the real MQTT publisher
//! gets through a real mosquitto on loopback.
//!
//! The bench starts its own mosquitto on a free 127.0.0.1 port (killed at the end, also on
//! error), spawns the agent's publisher (`crate::mqtt::spawn`) against it, and counts what a
//! separate rumqttc subscriber on `bench/miners/+/metrics` receives. The subscriber runs on its
//! own thread and runtime so its CPU can be taken out of the agent's figure.
//!
//! Closed loop: a cycle of `--miners` realistic samples (pre-generated, so their creation is
//! not counted) is offered with `MqttSender::offer`, as the daemon does after storing a cycle,
//! and the next one only once every message of it has been received (or 500 ms after its last
//! message arrived: the rest counts as dropped). That measures what the publisher sustains
//! without its queues overflowing; offering faster only turns the surplus into drops. The
//! first cycle also carries one retained availability message per miner (not counted).
//!
//! Measured (release build, 2-core VM, load ~1):
//! - `pickaxe bench --mqtt` (1000 miners x 20 cycles, QoS 0): 24 700 messages/s, 551 B/message,
//!   a cycle delivered in 38.5 ms (median); agent 11.5 µs CPU/message, mosquitto 15 µs.
//! - `--mqtt-qos 1`: 15 200 messages/s, a cycle in 64 ms; agent 26.5 µs/message.
//! - `--miners 10000 --cycles 5`: 28 900 messages/s, a cycle in 290 ms; agent 14.2 µs/message
//!   (availability is now one pass per cycle; it was quadratic, 51 µs/message at 10 000).
//! - Beyond 20 000 miners per agent a cycle no longer fits rumqttc's request queue: the
//!   surplus is dropped and counted.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::{DateTime, Utc};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use tokio::sync::{watch, Notify};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::bench_buffer::sample;
use crate::config::Config;
use crate::foreman::metrics::Sample;
use crate::mqtt::{CycleReport, MqttSender, MqttStats};
use crate::store::{PollRecord, Store};

const MOSQUITTO: &str = "/usr/sbin/mosquitto";
const PREFIX: &str = "bench";
const PICKAXE_ID: &str = "00000000-0000-4000-8000-000000000000";
/// A cycle is given up (its missing messages count as dropped) after this long without a
/// message once its first one arrived.
const QUIET: Duration = Duration::from_millis(500);
/// The run stops when a cycle gets no message at all for this long.
const CYCLE_LIMIT: Duration = Duration::from_secs(30);
/// Broker start, subscription, publisher connection.
const SETUP_LIMIT: Duration = Duration::from_secs(10);

pub async fn run(miners: usize, cycles: usize, qos: u8) -> anyhow::Result<()> {
    if qos > 1 {
        anyhow::bail!("--mqtt-qos must be 0 or 1");
    }
    if !Path::new(MOSQUITTO).exists() {
        anyhow::bail!("{MOSQUITTO} is missing: install mosquitto (apt-get install mosquitto)");
    }
    let dir = tempfile::tempdir()?;
    let broker = Broker::start(dir.path()).await?;
    let config = Config::parse(&format!(
        "[foreman]\nbase_url = \"https://127.0.0.1:9\"\napi_key = \"bench\"\nclient_id = \"1\"\n[store]\npath = \"{}\"\n[mqtt]\nurl = \"mqtt://127.0.0.1:{}\"\ntopic_prefix = \"{PREFIX}\"\nqos_metrics = {qos}\n",
        dir.path().join("bench.db").display(),
        broker.port
    ))?;
    let start_ms = Utc::now().timestamp_millis() - (cycles as i64) * 60_000;
    let work: Vec<Cycle> = (0..cycles)
        .map(|c| Cycle::new(miners, c, start_ms))
        .collect();
    println!(
        "broker: mosquitto on 127.0.0.1:{} (pid {}), metrics QoS {qos}; {miners} miners x {cycles} cycles, closed loop: each cycle offered once the previous one is received (or given up {} ms after its last message)",
        broker.port,
        broker.child.id(),
        QUIET.as_millis()
    );

    // The publisher's store (command statuses only; unused here).
    let store = Store::open(&dir.path().join("bench.db")).await?;
    let tally = Arc::new(Tally::new());
    let (state_tx, state_rx) = watch::channel(SubState::default());
    let stop = CancellationToken::new();
    let subscriber = spawn_subscriber(broker.port, tally.clone(), state_tx, stop.clone())?;
    let agent = Agent {
        shutdown: CancellationToken::new(),
        tracker: TaskTracker::new(),
    };
    let result = measure(
        &config,
        store.clone(),
        &broker,
        &tally,
        state_rx,
        &agent,
        work,
    )
    .await;

    agent.shutdown.cancel();
    agent.tracker.close();
    let _ = tokio::time::timeout(Duration::from_secs(5), agent.tracker.wait()).await;
    stop.cancel();
    let joined = tokio::task::spawn_blocking(move || subscriber.join()).await;
    store.close().await;
    let figures = result?;
    match joined {
        Ok(Ok(Ok(()))) => {}
        Ok(Ok(Err(e))) => return Err(e.context("the measuring subscriber failed")),
        Ok(Err(_)) | Err(_) => anyhow::bail!("the measuring subscriber panicked"),
    }
    drop(broker);
    figures.print(miners);
    Ok(())
}

/// The publisher's tasks and how to stop them.
struct Agent {
    shutdown: CancellationToken,
    tracker: TaskTracker,
}

/// One pre-generated poll cycle: every miner answered.
struct Cycle {
    taken_at: DateTime<Utc>,
    samples: Vec<Sample>,
    records: Vec<PollRecord>,
}

impl Cycle {
    fn new(miners: usize, c: usize, start_ms: i64) -> Cycle {
        let at_ms = start_ms + c as i64 * 60_000;
        let samples: Vec<Sample> = (0..miners).map(|i| sample(i, c)).collect();
        let records = samples
            .iter()
            .map(|s| PollRecord {
                ip: s.ip.clone(),
                port: s.port,
                at_ms,
                family: Some("antminer".into()),
                model: s.stats.identity.model.clone(),
                mac: None,
                hashrate: s.stats.hashrate,
                error: None,
            })
            .collect();
        Cycle {
            taken_at: DateTime::from_timestamp_millis(at_ms).unwrap_or_else(Utc::now),
            samples,
            records,
        }
    }
}

struct Figures {
    offered: u64,
    received: u64,
    bytes: u64,
    /// First offer to last message received.
    wall: Duration,
    /// Time to deliver each complete cycle.
    delivered: Vec<Duration>,
    incomplete: usize,
    /// Stopped early: a cycle got no message at all.
    stalled: bool,
    /// The publisher's own counters: metrics messages queued for the broker, live messages
    /// (metrics and availability) it dropped.
    agent_queued: u64,
    agent_dropped: u64,
    agent_cpu: f64,
    broker_cpu: f64,
    subscriber_cpu: f64,
}

impl Figures {
    fn print(&self, miners: usize) {
        let received = self.received as f64;
        let per_msg = |cpu: f64| {
            if self.received == 0 {
                "n/a".to_string()
            } else {
                format!("{:.1} µs/message", cpu / received * 1e6)
            }
        };
        let mut delivered = self.delivered.clone();
        delivered.sort();
        let cycle = match (delivered.get(delivered.len() / 2), delivered.last()) {
            (Some(median), Some(max)) => format!(
                "a {miners}-miner cycle delivered in {:.1} ms median, {:.1} ms max",
                median.as_secs_f64() * 1000.0,
                max.as_secs_f64() * 1000.0
            ),
            _ => "no cycle delivered in full".to_string(),
        };
        let mut incomplete = if self.incomplete > 0 {
            format!(" ({} cycles incomplete)", self.incomplete)
        } else {
            String::new()
        };
        if self.stalled {
            incomplete += &format!(
                "; stopped: a cycle got no message in {} s",
                CYCLE_LIMIT.as_secs()
            );
        }
        println!(
            "publish: {} messages offered, {} received, {} dropped in {:.2} s: {:.0} messages/s received, {:.0} B/message (payload); {cycle}{incomplete}; by the agent's counters {} queued, {} dropped",
            self.offered,
            self.received,
            self.offered.saturating_sub(self.received),
            self.wall.as_secs_f64(),
            received / self.wall.as_secs_f64().max(1e-9),
            self.bytes as f64 / received.max(1.0),
            self.agent_queued,
            self.agent_dropped,
        );
        println!(
            "cpu:   agent {:.2} s ({}), broker {:.2} s ({}); the measuring subscriber's {:.2} s is not counted",
            self.agent_cpu,
            per_msg(self.agent_cpu),
            self.broker_cpu,
            per_msg(self.broker_cpu),
            self.subscriber_cpu
        );
    }
}

async fn measure(
    config: &Config,
    store: Store,
    broker: &Broker,
    tally: &Tally,
    mut state: watch::Receiver<SubState>,
    agent: &Agent,
    work: Vec<Cycle>,
) -> anyhow::Result<Figures> {
    wait_state(
        &mut state,
        |s| s.subscribed,
        "the subscriber did not subscribe",
    )
    .await?;
    // No command desk: `[mqtt] commands` is off, only the publishing path is measured.
    let stats = Arc::new(MqttStats::default());
    let sender: MqttSender = crate::mqtt::spawn(
        config,
        PICKAXE_ID,
        store,
        None,
        stats.clone(),
        agent.shutdown.clone(),
        &agent.tracker,
    )?
    .context("MQTT is not configured")?;
    wait_state(&mut state, |s| s.online, "the publisher did not connect").await?;

    let subscriber_stat = tally.thread_stat.get().cloned();
    let thread_cpu = || subscriber_stat.as_deref().map_or(0.0, stat_cpu_seconds);
    let broker_stat = PathBuf::from(format!("/proc/{}/stat", broker.child.id()));
    let (cpu0, sub0, broker0) = (
        stat_cpu_seconds(Path::new("/proc/self/stat")),
        thread_cpu(),
        stat_cpu_seconds(&broker_stat),
    );
    let start = tally.epoch.elapsed();
    let mut offered = 0u64;
    let mut delivered = Vec::new();
    let mut incomplete = 0;
    let mut stalled = false;
    for cycle in work {
        let n = cycle.samples.len() as u64;
        let before = tally.messages.load(Ordering::Acquire);
        let target = before + n;
        tally.target.store(target, Ordering::Release);
        offered += n;
        let t = Instant::now();
        sender.offer(CycleReport {
            taken_at: cycle.taken_at,
            samples: cycle.samples,
            records: cycle.records,
        });
        match wait_received(tally, before, target).await {
            Received::All => delivered.push(t.elapsed()),
            Received::Part => incomplete += 1,
            Received::Nothing => {
                incomplete += 1;
                stalled = true;
                break;
            }
        }
    }
    let agent_cpu = stat_cpu_seconds(Path::new("/proc/self/stat")) - cpu0;
    let subscriber_cpu = thread_cpu() - sub0;
    let last = Duration::from_nanos(tally.last_ns.load(Ordering::Acquire));
    Ok(Figures {
        offered,
        received: tally.messages.load(Ordering::Acquire),
        bytes: tally.bytes.load(Ordering::Acquire),
        wall: if last > start {
            last - start
        } else {
            tally.epoch.elapsed() - start
        },
        delivered,
        incomplete,
        stalled,
        agent_queued: stats.published.load(Ordering::Relaxed),
        agent_dropped: stats.dropped.load(Ordering::Relaxed),
        agent_cpu: agent_cpu - subscriber_cpu,
        broker_cpu: stat_cpu_seconds(&broker_stat) - broker0,
        subscriber_cpu,
    })
}

async fn wait_state(
    state: &mut watch::Receiver<SubState>,
    ok: impl FnMut(&SubState) -> bool,
    what: &str,
) -> anyhow::Result<()> {
    match tokio::time::timeout(SETUP_LIMIT, state.wait_for(ok)).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(_)) => anyhow::bail!("{what}: the subscriber stopped"),
        Err(_) => anyhow::bail!("{what} within {} s", SETUP_LIMIT.as_secs()),
    }
}

enum Received {
    All,
    /// Some, then nothing for `QUIET`: the rest was dropped.
    Part,
    /// Nothing for `CYCLE_LIMIT`.
    Nothing,
}

/// Waits until `target` messages were received, or the cycle is given up.
async fn wait_received(tally: &Tally, before: u64, target: u64) -> Received {
    let started = Instant::now();
    loop {
        let seen = tally.messages.load(Ordering::Acquire);
        if seen >= target {
            return Received::All;
        }
        let woken = tokio::time::timeout(QUIET, tally.reached.notified()).await;
        if woken.is_err() && tally.messages.load(Ordering::Acquire) == seen {
            if seen > before {
                return Received::Part;
            }
            if started.elapsed() >= CYCLE_LIMIT {
                return Received::Nothing;
            }
        }
    }
}

/// What the subscriber counted; written by its thread only.
struct Tally {
    epoch: Instant,
    messages: AtomicU64,
    bytes: AtomicU64,
    /// Since `epoch`, of the last metrics message received.
    last_ns: AtomicU64,
    /// `reached` is notified when `messages` gets to it.
    target: AtomicU64,
    reached: Notify,
    /// `/proc/<pid>/task/<tid>/stat` of the subscriber thread.
    thread_stat: OnceLock<PathBuf>,
}

impl Tally {
    fn new() -> Tally {
        Tally {
            epoch: Instant::now(),
            messages: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            last_ns: AtomicU64::new(0),
            target: AtomicU64::new(u64::MAX),
            reached: Notify::new(),
            thread_stat: OnceLock::new(),
        }
    }
}

#[derive(Debug, Default, Clone, Copy)]
struct SubState {
    /// Both subscriptions acknowledged.
    subscribed: bool,
    /// The publisher's retained `online` seen.
    online: bool,
}

/// The measuring subscriber, on its own thread and current-thread runtime.
fn spawn_subscriber(
    port: u16,
    tally: Arc<Tally>,
    state: watch::Sender<SubState>,
    stop: CancellationToken,
) -> anyhow::Result<std::thread::JoinHandle<anyhow::Result<()>>> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    std::thread::Builder::new()
        .name("bench-mqtt-sub".into())
        .spawn(move || {
            if let Ok(task) = std::fs::read_link("/proc/thread-self") {
                let _ = tally
                    .thread_stat
                    .set(Path::new("/proc").join(task).join("stat"));
            }
            runtime.block_on(subscribe(port, tally, state, stop))
        })
        .context("cannot start the subscriber thread")
}

async fn subscribe(
    port: u16,
    tally: Arc<Tally>,
    state: watch::Sender<SubState>,
    stop: CancellationToken,
) -> anyhow::Result<()> {
    let mut options = MqttOptions::new("pickaxe-bench-subscriber", "127.0.0.1", port);
    options.set_keep_alive(Duration::from_secs(30));
    options.set_max_packet_size(1 << 20, 1 << 20);
    let (client, mut eventloop) = AsyncClient::new(options, 16);
    let metrics = format!("{PREFIX}/miners/+/metrics");
    let status = format!("{PREFIX}/status");
    let mut subacks = 0;
    loop {
        let event = tokio::select! {
            biased;
            _ = stop.cancelled() => return Ok(()),
            event = eventloop.poll() => event.context("subscriber connection")?,
        };
        match event {
            Event::Incoming(Packet::ConnAck(_)) => {
                client.try_subscribe(&metrics, QoS::AtLeastOnce)?;
                client.try_subscribe(&status, QoS::AtLeastOnce)?;
            }
            Event::Incoming(Packet::SubAck(_)) => {
                subacks += 1;
                if subacks == 2 {
                    state.send_modify(|s| s.subscribed = true);
                }
            }
            Event::Incoming(Packet::Publish(p)) if p.topic.ends_with("/metrics") => {
                tally
                    .bytes
                    .fetch_add(p.payload.len() as u64, Ordering::AcqRel);
                tally
                    .last_ns
                    .store(tally.epoch.elapsed().as_nanos() as u64, Ordering::Release);
                let n = tally.messages.fetch_add(1, Ordering::AcqRel) + 1;
                if n >= tally.target.load(Ordering::Acquire) {
                    tally.reached.notify_one();
                }
            }
            Event::Incoming(Packet::Publish(p)) if p.topic == status => {
                let online = p.payload.as_ref() == b"online";
                state.send_modify(|s| s.online = online);
            }
            _ => {}
        }
    }
}

/// The bench's own mosquitto on a free loopback port, killed when dropped.
struct Broker {
    child: Child,
    port: u16,
}

impl Broker {
    async fn start(dir: &Path) -> anyhow::Result<Broker> {
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let conf = dir.join("mosquitto.conf");
        // The measuring leg must not be what drops or waits: no per-client queue limits, and no
        // Nagle delay on the broker's sockets (the agent's own socket keeps rumqttc's default).
        std::fs::write(
            &conf,
            format!(
                "listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\nmax_inflight_messages 0\nmax_queued_messages 0\nset_tcp_nodelay true\n"
            ),
        )?;
        let log_path = dir.join("mosquitto.log");
        let log = std::fs::File::create(&log_path)?;
        let child = Command::new(MOSQUITTO)
            .arg("-c")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .with_context(|| format!("cannot start {MOSQUITTO}"))?;
        let mut broker = Broker { child, port };
        let deadline = Instant::now() + SETUP_LIMIT;
        while Instant::now() < deadline {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Ok(broker);
            }
            if let Some(status) = broker.child.try_wait()? {
                anyhow::bail!(
                    "mosquitto exited ({status}): {}",
                    std::fs::read_to_string(&log_path).unwrap_or_default()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        anyhow::bail!(
            "mosquitto did not listen on 127.0.0.1:{port} within {} s",
            SETUP_LIMIT.as_secs()
        )
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// User + system CPU from a `/proc/.../stat` file (process or thread), in seconds.
fn stat_cpu_seconds(path: &Path) -> f64 {
    let Ok(stat) = std::fs::read_to_string(path) else {
        return 0.0;
    };
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return 0.0;
    };
    let mut fields = rest.split_whitespace().skip(11);
    let mut ticks = || {
        fields
            .next()
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime (fields 14 and 15 of the line), in USER_HZ: 100 on mainstream Linux.
    (ticks() + ticks()) / 100.0
}
