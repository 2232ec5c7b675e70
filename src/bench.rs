//! `pickaxe bench`: full poll cycles of the real poller against a simulated fleet that runs in
//! its own process (this same binary, hidden `sim-fleet` command), so the CPU and memory
//! figures are the poller's alone.
//!
//! Reported per cycle: wall time, poller CPU (user + system, from /proc/self/stat), and the
//! cost of encoding and committing the cycle to SQLite; at the end, peak RSS (VmHWM).

use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, SocketAddr};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::poller::{Poller, PollerThread};
use crate::store::Store;
use crate::uplink::encode_cycle;

#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// Simulated miners.
    #[arg(long, default_value_t = 1000)]
    pub miners: usize,
    /// Poll cycles measured (default 3; 20 with `--mqtt`).
    #[arg(long)]
    pub cycles: Option<usize>,
    /// Miners polled at once.
    #[arg(long, default_value_t = 1000)]
    pub concurrency: usize,
    /// Model mix of the fleet, e.g. "s17=1" (joins allowed) or "s19pro=1" (one
    /// connection per command).
    #[arg(long, default_value = "s17=1")]
    pub mix: String,
    /// First simulated miner address (loopback only).
    #[arg(long, default_value = "127.20.0.1")]
    pub base: Ipv4Addr,
    /// Pause between cycles, to stay under the kernel's TIME_WAIT budget.
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    pub pause: Duration,
    /// Measure the buffer instead: fill it with `--cycles` cycles of `--miners` samples (an
    /// outage), then drain it to a fake Foreman.
    #[arg(long)]
    pub buffer: bool,
    /// Measure the MQTT publisher instead: messages per second to a mosquitto of its own on
    /// loopback, `--cycles` cycles of `--miners` messages.
    #[arg(long, conflicts_with = "buffer")]
    pub mqtt: bool,
    /// QoS of the metrics messages for `--mqtt`.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=1))]
    pub mqtt_qos: u8,
}

/// Kills the fleet process when the bench ends, however it ends.
struct FleetProcess(Child);

impl Drop for FleetProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    if args.mqtt {
        let cycles = args.cycles.unwrap_or(20);
        return crate::bench_mqtt::run(args.miners, cycles, args.mqtt_qos).await;
    }
    let cycles = args.cycles.unwrap_or(3);
    if args.buffer {
        return crate::bench_buffer::run(args.miners, cycles).await;
    }
    if !args.base.is_loopback() {
        anyhow::bail!("--base must be a loopback address (127.0.0.0/8)");
    }
    crate::daemon::raise_open_files_limit();
    let exe = std::env::current_exe().context("cannot find this executable")?;
    let mut child = Command::new(exe)
        .args([
            "sim-fleet",
            "--count",
            &args.miners.to_string(),
            "--base",
            &args.base.to_string(),
            "--mix",
            &args.mix,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .context("cannot start the simulated fleet")?;
    let stdout = child.stdout.take().context("fleet stdout")?;
    let fleet = FleetProcess(child);
    let started = Instant::now();
    let mut ready = String::new();
    BufReader::new(stdout)
        .read_line(&mut ready)
        .context("the fleet did not start")?;
    let ready: serde_json::Value =
        serde_json::from_str(&ready).context("unexpected output from the fleet")?;
    let targets: Vec<SocketAddr> = ready["miners"]
        .as_array()
        .context("fleet ready line without miners")?
        .iter()
        .filter_map(|v| v.as_str()?.parse().ok())
        .collect();
    println!(
        "fleet: {} miners ({}) in pid {}, ready in {:.2} s",
        targets.len(),
        args.mix,
        fleet.0.id(),
        started.elapsed().as_secs_f64()
    );

    let dir = tempfile::tempdir()?;
    let store = Store::open(&dir.path().join("bench.db")).await?;
    let poller = PollerThread::spawn(Poller::new(
        Duration::from_secs(5),
        args.concurrency,
        1 << 20,
    ))?;
    println!(
        "{:>5} {:>9} {:>9} {:>12} {:>9} {:>11}",
        "cycle", "ok", "wall s", "CPU s", "CPU/miner", "store ms"
    );
    let mut best: Option<(f64, f64)> = None;
    for n in 1..=cycles {
        let cpu0 = process_cpu_seconds();
        let wall0 = Instant::now();
        let taken_at = chrono::Utc::now();
        let cycle = poller
            .run_cycle(targets.clone(), taken_at)
            .await
            .context("the poller thread stopped")?;
        let wall = wall0.elapsed().as_secs_f64();
        let cpu = process_cpu_seconds() - cpu0;
        let store0 = Instant::now();
        let batches = encode_cycle(taken_at, &cycle.samples, 200)?;
        store
            .write_cycle(taken_at.timestamp_millis(), &batches, &cycle.records)
            .await?;
        let store_ms = store0.elapsed().as_secs_f64() * 1000.0;
        println!(
            "{:>5} {:>9} {:>9.3} {:>12.3} {:>7.0}µs {:>11.1}",
            n,
            cycle.samples.len(),
            wall,
            cpu,
            cpu / targets.len().max(1) as f64 * 1e6,
            store_ms
        );
        if cycle.samples.len() != targets.len() {
            let errors: Vec<_> = cycle
                .records
                .iter()
                .filter_map(|r| r.error.as_deref())
                .take(3)
                .collect();
            println!(
                "      {} failed, e.g. {errors:?}",
                targets.len() - cycle.samples.len()
            );
        }
        best = Some(match best {
            Some((w, c)) => (w.min(wall), c.min(cpu)),
            None => (wall, cpu),
        });
        if n < cycles {
            tokio::time::sleep(args.pause).await;
        }
    }
    store.close().await;
    if let Some((wall, cpu)) = best {
        println!(
            "best: {} miners, wall {:.3} s, CPU {:.3} s ({:.0} µs/miner), peak RSS {} MB",
            targets.len(),
            wall,
            cpu,
            cpu / targets.len().max(1) as f64 * 1e6,
            peak_rss_kb() / 1024
        );
    }
    drop(fleet);
    Ok(())
}

/// User + system CPU of this process, in seconds.
fn process_cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
        return 0.0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    (ticks(11) + ticks(12)) / clock_ticks_per_second()
}

fn clock_ticks_per_second() -> f64 {
    // Linux reports CPU times in USER_HZ, which is 100 on every mainstream build.
    100.0
}

/// Peak resident set size of this process (VmHWM), in kB.
fn peak_rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// The fleet side of the bench: serves `count` simulated miners, prints their addresses as
/// one JSON line, and runs until SIGTERM/SIGINT.
pub async fn serve_fleet(count: usize, base: Ipv4Addr, mix: &str) -> anyhow::Result<()> {
    if !base.is_loopback() {
        anyhow::bail!("--base must be a loopback address (127.0.0.0/8)");
    }
    let mix = pickaxe_sim::parse_mix(mix)?;
    let fleet = pickaxe_sim::start_fleet(pickaxe_sim::FleetConfig {
        count,
        base,
        mix,
        ..pickaxe_sim::FleetConfig::default()
    })
    .await?;
    let miners: Vec<String> = fleet.miners().iter().map(|m| m.addr.to_string()).collect();
    println!(
        "{}",
        serde_json::json!({ "event": "ready", "miners": miners })
    );
    let token = tokio_util::sync::CancellationToken::new();
    crate::signal::cancel_on_shutdown_signal(token.clone()).await;
    fleet.shutdown().await;
    Ok(())
}
