//! `pickaxe demo`: the main job on a simulated site, with no setup.
//!
//! Starts a fleet of simulated miners on 127.1.x.y:4028 and a fake Foreman over HTTPS (a
//! throwaway CA) in this process, runs the real daemon against them from a temporary
//! directory, cuts the uplink in the middle, and ends with what Foreman actually received.

use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use anyhow::Context;
use pickaxe_sim::{FleetConfig, ForemanConfig, ForemanFault, OutageMode};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::Config;
use crate::daemon::{self, StartOptions};
use crate::store::counter;

#[derive(Debug, Clone, clap::Args)]
pub struct DemoArgs {
    /// Simulated miners (a mix of Antminer models).
    #[arg(long, default_value_t = 200)]
    pub miners: usize,
    /// How long the daemon polls, e.g. "60s".
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    pub duration: Duration,
    /// How long the uplink is cut, starting at a third of the run ("0s" for none).
    #[arg(long, default_value = "20s", value_parser = humantime::parse_duration)]
    pub outage: Duration,
    /// Poll interval.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    pub interval: Duration,
    /// First simulated miner address (loopback only).
    #[arg(long, default_value = "127.1.0.1")]
    pub base: Ipv4Addr,
}

pub async fn run(args: DemoArgs) -> anyhow::Result<()> {
    if !args.base.is_loopback() {
        anyhow::bail!("--base must be a loopback address (127.0.0.0/8)");
    }
    if args.miners == 0 {
        anyhow::bail!("--miners must be at least 1");
    }
    // The progress line shows the uplink state; keep the log for errors only.
    crate::logging::init(Some("error"));
    let dir = tempfile::tempdir().context("cannot create a temporary directory")?;
    let api_key = format!("demo-{}", uuid::Uuid::new_v4().simple());
    println!(
        "Starting a simulated site: {} miners from {}:4028, fake Foreman over HTTPS...",
        args.miners, args.base
    );
    let fleet = FleetConfig {
        count: args.miners,
        base: args.base,
        ..FleetConfig::default()
    };
    let foreman = ForemanConfig {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        admin: SocketAddr::from(([127, 0, 0, 1], 0)),
        api_key: api_key.clone(),
        client_id: "1".into(),
        ca_out: dir.path().join("foreman-ca.pem"),
    };
    let site = pickaxe_sim::start_site(fleet, foreman)
        .await
        .context("cannot start the simulated site (is another demo running on these addresses?)")?;

    let config_text = format!(
        r#"
[foreman]
base_url = "{url}"
api_key = "{api_key}"
client_id = "1"
ca_file = "{ca}"
refresh_interval = "30s"
request_timeout = "5s"
[poll]
interval = "{interval}"
timeout = "{timeout}"
concurrency = 500
[store]
path = "{db}"
[upload]
min_backoff = "500ms"
max_backoff = "4s"
backlog_rate = 50
"#,
        url = site.foreman().url(),
        ca = site.foreman().ca_path().display(),
        interval = humantime::format_duration(args.interval),
        timeout = humantime::format_duration((args.interval / 2).min(Duration::from_secs(3))),
        db = dir.path().join("pickaxe.db").display(),
    );
    let config = Config::parse(&config_text).context("demo config")?;
    let shutdown = CancellationToken::new();
    let tracker = TaskTracker::new();
    let options = StartOptions {
        flush_grace: Duration::from_secs(30),
    };
    let handle = daemon::start(config, options, shutdown.clone(), &tracker).await?;
    tracker.close();
    println!(
        "Daemon running (pickaxe id {}), state in {}",
        handle.pickaxe_id,
        dir.path().display()
    );
    println!();

    let outage_at = args.duration / 3;
    let outage_end = outage_at + args.outage;
    let started = tokio::time::Instant::now();
    let mut outage_started = false;
    let mut outage_over = args.outage.is_zero();
    let mut peak_buffered_in_outage = 0i64;
    let mut outage_wall = None;
    let mut restored_wall = None;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        let t = started.elapsed();
        if !outage_started && !args.outage.is_zero() && t >= outage_at {
            site.foreman().inject(ForemanFault::Outage {
                mode: OutageMode::Refuse,
                seconds: None,
            });
            outage_started = true;
            outage_wall = Some(chrono::Utc::now());
            println!(
                "\n--- uplink cut: Foreman refuses connections for {} ---",
                humantime::format_duration(args.outage)
            );
        }
        if outage_started && !outage_over && t >= outage_end {
            site.foreman().clear_faults();
            outage_over = true;
            restored_wall = Some(chrono::Utc::now());
            println!("\n--- uplink restored: replaying the buffer ---");
        }
        let backlog = handle.store.backlog().await?;
        // The buffer grows until the replay after the outage has caught up.
        if outage_started && (!outage_over || backlog.samples > 0) {
            peak_buffered_in_outage = peak_buffered_in_outage.max(backlog.samples);
        }
        let taken = handle.store.counter(counter::SAMPLES_TAKEN).await?;
        let received = site.foreman().summary().samples_received;
        let uplink = handle.uplink.borrow().clone();
        print!(
            "\r[{:>3}s] cycles {:>3} | samples taken {:>6} | buffered {:>6} | delivered {:>6} | uplink {:<40}",
            t.as_secs(),
            handle.store.counter(counter::CYCLES).await?,
            taken,
            backlog.samples,
            received,
            truncate(&uplink.to_string(), 40),
        );
        let _ = std::io::stdout().flush();
        if t >= args.duration {
            println!();
            break;
        }
    }

    println!("Stopping: last cycle stored, then the buffer drains...");
    shutdown.cancel();
    tracker.wait().await;
    let taken = handle.store.counter(counter::SAMPLES_TAKEN).await?;
    let still_buffered = handle.store.backlog().await?.samples;
    handle.store.close().await;
    let summary = site.foreman().summary();
    let replayed = replayed_samples(&site, outage_wall, restored_wall);
    site.shutdown().await;

    let delivered = summary.samples_received as i64;
    let lost = taken - delivered - still_buffered;
    println!();
    println!("Summary (read from the fake Foreman)");
    println!("  samples taken              {taken:>8}");
    println!("  buffered during the outage {peak_buffered_in_outage:>8}   (peak, while Foreman was unreachable)");
    println!(
        "  delivered                  {delivered:>8}   (unique miner samples Foreman recorded)"
    );
    println!(
        "  duplicates                 {:>8}   (samples Foreman received twice)",
        summary.samples_duplicate
    );
    println!("  lost                       {lost:>8}");
    println!(
        "  still buffered             {still_buffered:>8}   (kept on disk for the next start)"
    );
    println!("  replayed after the outage  {replayed:>8}   (stamped during the outage, delivered after it with that original time)");
    println!(
        "  re-sent batches absorbed by Idempotency-Key: {}",
        summary.batches_duplicate
    );
    if lost != 0 || summary.samples_duplicate != 0 {
        anyhow::bail!("the demo lost or duplicated samples");
    }
    if !args.outage.is_zero() && peak_buffered_in_outage == 0 {
        anyhow::bail!("nothing was buffered during the outage");
    }
    Ok(())
}

/// Samples whose timestamp lies inside the outage and that Foreman received after it.
fn replayed_samples(
    site: &pickaxe_sim::Site,
    cut: Option<chrono::DateTime<chrono::Utc>>,
    restored: Option<chrono::DateTime<chrono::Utc>>,
) -> usize {
    let (Some(cut), Some(restored)) = (cut, restored) else {
        return 0;
    };
    site.foreman()
        .samples()
        .iter()
        .flat_map(|m| m.samples.iter())
        .filter(|s| {
            chrono::DateTime::parse_from_str(&s.timestamp, "%Y-%m-%dT%H:%M:%S%.3f%z")
                .map(|ts| ts > cut && ts < restored && s.received_at >= restored)
                .unwrap_or(false)
        })
        .count()
}

fn truncate(text: &str, max: usize) -> String {
    text.chars().take(max).collect()
}
