//! The daemon: wires the store, the Foreman client, the poll loop, the miner-list refresher
//! and the uploader together, and shuts them down in order.
//!
//! `run` takes its shutdown signal from the caller (mini-redis shape), so `pickaxe run`, the
//! demo and the tests all drive the same code.

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{watch, Notify};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, error, info, warn};

use crate::config::{Compress, Config};
use crate::foreman::retry::Backoff;
use crate::foreman::ForemanClient;
use crate::heartbeat::Heartbeats;
use crate::metrics::CycleSummary;
use crate::poller::{Poller, PollerThread};
use crate::store::{AssignedMiner, DropReason, Drops, PollRecord, Store, StoreOptions};
use crate::uplink::{encode_cycle, sleep_or_cancel, UplinkState, Uploader};

/// What a running daemon exposes to whoever started it (the demo shows it live).
#[derive(Debug, Clone)]
pub struct DaemonHandle {
    pub store: Store,
    pub pickaxe_id: String,
    pub uplink: watch::Receiver<UplinkState>,
    pub last_cycle: watch::Receiver<CycleSummary>,
    /// What the watchdog checks.
    pub heartbeats: Heartbeats,
    /// Stops the uploader at once (reload), without the flush grace of a shutdown.
    pub upload_stop: CancellationToken,
}

/// How the daemon stops.
#[derive(Debug, Clone)]
pub struct StartOptions {
    /// After the last cycle is stored, how long the uploader may go on sending what waits
    /// (the rest stays on disk for the next start).
    pub flush_grace: Duration,
}

impl Default for StartOptions {
    fn default() -> Self {
        StartOptions {
            flush_grace: Duration::from_secs(3),
        }
    }
}

/// Starts the daemon's tasks and returns once they are running. They stop when `shutdown`
/// is cancelled: polling first (the cycle in flight is finished and stored), then the
/// uploader after `flush_grace` or as soon as the outbox is empty. Await `tracker.wait()`.
pub async fn start(
    config: Config,
    options: StartOptions,
    shutdown: CancellationToken,
    tracker: &TaskTracker,
) -> anyhow::Result<DaemonHandle> {
    raise_open_files_limit();
    let store = Store::open_with(&config.store.path, StoreOptions::from(&config.store)).await?;
    let pickaxe_id = store
        .pickaxe_id(config.foreman.pickaxe_id.as_deref())
        .await?;
    let client = ForemanClient::new(&config, &pickaxe_id)?;
    info!(pickaxe_id = %pickaxe_id, store = %config.store.path.display(), "Pickaxe starting.");

    let static_miners: Vec<SocketAddr> = config
        .miners
        .iter()
        .map(|m| SocketAddr::new(m.ip, m.port))
        .collect();
    let assigned = store.assigned().await?;
    let (targets_tx, targets_rx) = watch::channel(merge_targets(&assigned, &static_miners));
    let (live_tx, live_rx) = watch::channel(None);
    let (state_tx, state_rx) = watch::channel(UplinkState::Starting);
    let wake = Arc::new(Notify::new());
    let compress = Arc::new(AtomicBool::new(config.upload.compress == Compress::Always));

    tracker.spawn(announce_start(
        client.clone(),
        config.clone(),
        shutdown.clone(),
    ));
    tracker.spawn(refresh_miners(
        client.clone(),
        store.clone(),
        config.clone(),
        static_miners,
        targets_tx,
        compress.clone(),
        shutdown.clone(),
    ));
    let upload_stop = CancellationToken::new();
    let upload_stop_handle = upload_stop.clone();
    // Commands stop acting at shutdown; their results keep flowing until the uploader stops.
    let heartbeats = Heartbeats::new(config.poll.interval + config.poll.timeout);
    let desk = crate::commands::spawn(
        &config,
        store.clone(),
        client.clone(),
        heartbeats.commands.clone(),
        shutdown.clone(),
        upload_stop.clone(),
        tracker,
    );
    tracker.spawn(
        Uploader {
            store: store.clone(),
            client,
            config: config.upload.clone(),
            live_cycle: live_rx,
            wake: wake.clone(),
            state: state_tx,
            compress: compress.clone(),
            heartbeat: heartbeats.uploader.clone(),
            request_timeout: config.foreman.request_timeout,
        }
        .run(upload_stop.clone()),
    );
    let (cycle_tx, cycle_rx) = watch::channel(CycleSummary::default());
    let mqtt_stats = Arc::new(crate::mqtt::MqttStats::default());
    if config.metrics.enabled {
        tracker.spawn(crate::metrics::serve(
            config.metrics.listen,
            store.clone(),
            state_rx.clone(),
            cycle_rx.clone(),
            config.mqtt.as_ref().map(|_| mqtt_stats.clone()),
            upload_stop.clone(),
        ));
    }
    let mqtt = crate::mqtt::spawn(
        &config,
        &pickaxe_id,
        store.clone(),
        Some(desk),
        mqtt_stats,
        shutdown.clone(),
        tracker,
    )?;
    let poller = tracker.spawn(poll_loop(
        config,
        store.clone(),
        targets_rx,
        live_tx,
        wake,
        cycle_tx,
        heartbeats.clone(),
        mqtt,
        shutdown.clone(),
    ));
    tracker.spawn(stop_uploader_after_flush(
        store.clone(),
        poller,
        options.flush_grace,
        shutdown,
        upload_stop,
    ));
    Ok(DaemonHandle {
        store,
        pickaxe_id,
        uplink: state_rx,
        last_cycle: cycle_rx,
        heartbeats,
        upload_stop: upload_stop_handle,
    })
}

/// Shutdown order: once polling has stopped and its last cycle is stored, let the uploader
/// send what waits for at most `grace`, then stop it.
async fn stop_uploader_after_flush(
    store: Store,
    poller: tokio::task::JoinHandle<()>,
    grace: Duration,
    shutdown: CancellationToken,
    upload_stop: CancellationToken,
) {
    shutdown.cancelled().await;
    let _ = poller.await;
    let deadline = tokio::time::Instant::now() + grace;
    while tokio::time::Instant::now() < deadline {
        match store.backlog().await {
            Ok(b) if b.batches == 0 => break,
            Ok(_) => {}
            Err(_) => break,
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    upload_stop.cancel();
}

/// Assigned miners plus the static ones, without duplicates. Only IP literals are polled.
fn merge_targets(assigned: &[AssignedMiner], static_miners: &[SocketAddr]) -> Vec<SocketAddr> {
    let mut set: BTreeSet<SocketAddr> = static_miners.iter().copied().collect();
    for m in assigned {
        match m.ip.parse::<IpAddr>() {
            Ok(ip) => {
                set.insert(SocketAddr::new(ip, m.port));
            }
            Err(_) => debug!(ip = %m.ip, "Skipping an assigned miner whose address is not an IP."),
        }
    }
    set.into_iter().collect()
}

/// The poll loop: one cycle per interval, each written to the store in one transaction.
// Each argument is one channel or handle of the wiring above; a struct would only rename them.
#[allow(clippy::too_many_arguments)]
async fn poll_loop(
    config: Config,
    store: Store,
    mut targets: watch::Receiver<Vec<SocketAddr>>,
    live: watch::Sender<Option<i64>>,
    wake: Arc<Notify>,
    last_cycle: watch::Sender<CycleSummary>,
    beats: Heartbeats,
    mqtt: Option<crate::mqtt::MqttSender>,
    shutdown: CancellationToken,
) {
    let poll = &config.poll;
    let poller = match PollerThread::spawn(Poller::new(
        poll.timeout,
        poll.concurrency,
        poll.max_reply_bytes,
    )) {
        Ok(p) => p,
        Err(e) => {
            // Without the poller thread nothing can be polled; the watchdog (poller heartbeat)
            // and the log make that visible.
            error!(error = %e, "Cannot start the poller thread.");
            return;
        }
    };
    // Give the first miner-list fetch a moment, so the first cycle already polls them.
    if targets.borrow().is_empty() {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = targets.changed() => {}
            _ = tokio::time::sleep(Duration::from_secs(5)) => {}
        }
    }
    let mut drop_log = DropEpisodes::default();
    let mut ticker = tokio::time::interval(poll.interval);
    // A cycle that overruns its interval makes the next one start late, never stack up.
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let promise = poll.interval + poll.timeout;
    loop {
        beats.poller.beat(promise);
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => return,
            _ = ticker.tick() => {}
        }
        let list = targets.borrow_and_update().clone();
        let taken_at = chrono::Utc::now();
        // The cycle is not cancelled by shutdown: it is bounded by the poll timeout, and
        // finishing it means its samples are committed rather than lost.
        let Some(cycle) = poller.run_cycle(list.clone(), taken_at).await else {
            error!("The poller thread stopped.");
            return;
        };
        let batches = match encode_cycle(taken_at, &cycle.samples, config.upload.batch_miners) {
            Ok(b) => b,
            Err(e) => {
                error!(error = %e, "Cannot encode a cycle; its samples are lost.");
                continue;
            }
        };
        let cycle_ms = taken_at.timestamp_millis();
        match write_with_retry(&store, cycle_ms, &batches, &cycle.records, &shutdown).await {
            Ok(drops) => {
                beats.store.beat(promise);
                drop_log.observe(&drops);
            }
            Err(e) => {
                error!(error = %e, samples = cycle.samples.len(), "Cannot store a cycle; its samples are lost.");
                continue;
            }
        }
        live.send_replace(Some(cycle_ms));
        wake.notify_one();
        let summary = CycleSummary {
            miners: list.len(),
            ok: cycle.samples.len(),
            failed: cycle.failures(),
            seconds: cycle.elapsed.as_secs_f64(),
            at_ms: cycle_ms,
        };
        if let Some(mqtt) = &mqtt {
            // Never blocks: a full queue drops the cycle's live messages (counted).
            mqtt.offer(crate::mqtt::CycleReport {
                taken_at,
                samples: cycle.samples,
                records: cycle.records,
            });
        }
        info!(
            miners = summary.miners,
            ok = summary.ok,
            failed = summary.failed,
            took_ms = cycle.elapsed.as_millis() as u64,
            "Poll cycle stored."
        );
        last_cycle.send_replace(summary);
    }
}

/// Logs buffer drops once per episode (when they start and when they stop), never silently
/// and never once per cycle.
#[derive(Debug, Default)]
struct DropEpisodes {
    /// Samples dropped so far in each ongoing episode.
    ongoing: std::collections::BTreeMap<DropReason, i64>,
}

impl DropEpisodes {
    fn observe(&mut self, drops: &Drops) {
        for (reason, dropped) in drops.by_reason() {
            let total = self.ongoing.entry(reason).or_insert(0);
            if *total == 0 {
                error!(
                    reason = reason.as_str(),
                    samples = dropped.samples,
                    "Buffer bound reached: dropping samples until it clears."
                );
            }
            *total += dropped.samples;
        }
        let now: Vec<DropReason> = drops.by_reason().map(|(r, _)| r).collect();
        self.ongoing.retain(|reason, total| {
            let goes_on = now.contains(reason);
            if !goes_on {
                warn!(
                    reason = reason.as_str(),
                    samples = *total,
                    "Buffer bound no longer hit; samples dropped in that episode."
                );
            }
            goes_on
        });
    }
}

/// A busy or briefly failing database must not cost a cycle: retry a few times.
async fn write_with_retry(
    store: &Store,
    cycle_ms: i64,
    batches: &[crate::store::CycleBatch],
    records: &[PollRecord],
    shutdown: &CancellationToken,
) -> Result<Drops, crate::store::StoreError> {
    let mut attempt = 0;
    loop {
        match store.write_cycle(cycle_ms, batches, records).await {
            Ok(drops) => return Ok(drops),
            Err(e) if attempt < 5 => {
                attempt += 1;
                warn!(error = %e, attempt, "Storing a cycle failed; retrying.");
                if shutdown.is_cancelled() && attempt > 2 {
                    return Err(e);
                }
                tokio::time::sleep(Duration::from_millis(200 * attempt)).await;
            }
            Err(e) => return Err(e),
        }
    }
}

/// Fetches the miner list every `refresh_interval`; keeps the last good list on failure.
async fn refresh_miners(
    client: ForemanClient,
    store: Store,
    config: Config,
    static_miners: Vec<SocketAddr>,
    targets: watch::Sender<Vec<SocketAddr>>,
    compress: Arc<AtomicBool>,
    shutdown: CancellationToken,
) {
    let mut backoff = Backoff::new(config.upload.min_backoff, config.foreman.refresh_interval);
    loop {
        let delay = match client.miner_config().await {
            Ok(entries) => {
                backoff.reset();
                let assigned: Vec<AssignedMiner> = entries
                    .into_iter()
                    .map(|e| AssignedMiner {
                        ip: e.api_ip,
                        port: e.api_port,
                        api_type: e.api_type,
                    })
                    .collect();
                if let Err(e) = store.set_assigned(&assigned).await {
                    warn!(error = %e, "Cannot keep the miner list; using it in memory.");
                }
                let merged = merge_targets(&assigned, &static_miners);
                if *targets.borrow() != merged {
                    info!(miners = merged.len(), "Miner list updated.");
                }
                targets.send_replace(merged);
                match client.app_config().await {
                    Ok(app) if config.upload.compress == Compress::Auto => {
                        compress.store(app.compress_metrics.unwrap_or(false), Ordering::Relaxed);
                    }
                    Ok(_) => {}
                    Err(e) => debug!(error = %e, "appConfig not available."),
                }
                config.foreman.refresh_interval
            }
            Err(e) => {
                let delay = backoff.next_delay(e.retry_after());
                warn!(error = %e, retry_in = ?delay, "Cannot fetch the miner list; keeping the last one.");
                // Wake the poller anyway, so the first cycle does not wait for a dead uplink.
                targets.send_modify(|_| {});
                delay
            }
        };
        if sleep_or_cancel(delay, &shutdown).await {
            return;
        }
    }
}

/// Announces this start (`started`), retrying until Foreman has heard it.
async fn announce_start(client: ForemanClient, config: Config, shutdown: CancellationToken) {
    let mut backoff = Backoff::new(config.upload.min_backoff, config.upload.max_backoff);
    loop {
        match client.started().await {
            Ok(()) => {
                info!("Start announced to Foreman.");
                return;
            }
            Err(e) => {
                let delay = backoff.next_delay(e.retry_after());
                debug!(error = %e, retry_in = ?delay, "Cannot announce the start yet.");
                if sleep_or_cancel(delay, &shutdown).await {
                    return;
                }
            }
        }
    }
}

/// Raises the open-files soft limit to the hard limit: each in-flight poll holds a socket, and
/// services start with a soft limit of 1024.
pub fn raise_open_files_limit() {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => debug!(limit, "Open-files limit raised."),
        Err(e) => warn!(error = %e, "Cannot raise the open-files limit."),
    }
}
