//! Store-and-forward to Foreman: cycles become gzip batches in the outbox, and the uploader
//! drains the outbox: live cycle first, then the backlog oldest first, paced; a batch is
//! deleted only after Foreman's 2xx, and a retry re-sends it under the same idempotency key.

use std::io::{Read, Write};
use std::sync::Arc;
use std::time::Duration;

use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use flate2::Compression;
use tokio::sync::{watch, Notify};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

use crate::config::UploadConfig;
use crate::foreman::metrics::{report, Sample};
use crate::foreman::retry::Backoff;
use crate::foreman::{ForemanClient, ForemanError};
use crate::heartbeat::Heartbeat;
use crate::store::{CycleBatch, Store, StoredBatch};

/// Cuts a cycle's samples into Foreman-sized batches, each serialized and gzipped once.
pub fn encode_cycle(
    taken_at: chrono::DateTime<chrono::Utc>,
    samples: &[Sample],
    batch_miners: usize,
) -> std::io::Result<Vec<CycleBatch>> {
    samples
        .chunks(batch_miners.max(1))
        .map(|chunk| {
            let json = serde_json::to_vec(&report(taken_at, chunk))?;
            // Level 1: ~4x smaller at ~150 MB/s; higher levels cost 6x the CPU for ~25% less.
            let mut gz = GzEncoder::new(Vec::with_capacity(json.len() / 3), Compression::fast());
            gz.write_all(&json)?;
            Ok(CycleBatch {
                idempotency_key: uuid::Uuid::new_v4().to_string(),
                samples: chunk.len() as u32,
                body_gz: gz.finish()?,
            })
        })
        .collect()
}

/// The JSON body of a stored batch.
pub fn decode_body(body_gz: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut json = Vec::with_capacity(body_gz.len() * 4);
    GzDecoder::new(body_gz).read_to_end(&mut json)?;
    Ok(json)
}

/// Splits a stored batch's miners into two halves under derived idempotency keys (so a
/// retried split is de-duplicated too). `None` for a batch of one miner.
pub fn split_batch(batch: &StoredBatch) -> std::io::Result<Option<Vec<CycleBatch>>> {
    let json = decode_body(&batch.body_gz)?;
    let mut body: serde_json::Value = serde_json::from_slice(&json)?;
    let Some(miners) = body.get_mut("miners").and_then(|m| m.as_array_mut()) else {
        return Ok(None);
    };
    if miners.len() < 2 {
        return Ok(None);
    }
    let second = miners.split_off(miners.len() / 2);
    let first = std::mem::take(miners);
    let mut parts = Vec::with_capacity(2);
    for (n, half) in [first, second].into_iter().enumerate() {
        let samples = half.len() as u32;
        body["miners"] = serde_json::Value::Array(half);
        let json = serde_json::to_vec(&body)?;
        let mut gz = GzEncoder::new(Vec::new(), Compression::fast());
        gz.write_all(&json)?;
        parts.push(CycleBatch {
            idempotency_key: format!("{}-{}", batch.idempotency_key, n + 1),
            samples,
            body_gz: gz.finish()?,
        });
    }
    Ok(Some(parts))
}

/// The uplink's state as shown by status and the demo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UplinkState {
    /// Nothing tried yet.
    Starting,
    Ok,
    /// Uploads fail and are retried; the reason is the last error.
    Retrying(String),
    /// Foreman refuses the key: uploads pause, buffering goes on.
    AuthFailed(String),
}

impl std::fmt::Display for UplinkState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UplinkState::Starting => write!(f, "starting"),
            UplinkState::Ok => write!(f, "ok"),
            UplinkState::Retrying(reason) => write!(f, "retrying: {reason}"),
            UplinkState::AuthFailed(reason) => write!(f, "authentication failed: {reason}"),
        }
    }
}

/// Drains the outbox to Foreman until `shutdown`.
pub struct Uploader {
    pub store: Store,
    pub client: ForemanClient,
    pub config: UploadConfig,
    /// The newest cycle written; its batches go before the backlog.
    pub live_cycle: watch::Receiver<Option<i64>>,
    /// Woken when a cycle is written.
    pub wake: Arc<Notify>,
    pub state: watch::Sender<UplinkState>,
    /// Send bodies gzip'd (Foreman's appConfig `compressMetrics`, or the config).
    pub compress: Arc<std::sync::atomic::AtomicBool>,
    /// Fed before every wait with how long the wait may take (watchdog).
    pub heartbeat: Heartbeat,
    /// Longest one upload request may take.
    pub request_timeout: Duration,
}

impl Uploader {
    pub async fn run(mut self, shutdown: CancellationToken) {
        let mut backoff = Backoff::new(self.config.min_backoff, self.config.max_backoff);
        let backlog_gap = Duration::from_secs_f64(1.0 / self.config.backlog_rate);
        let mut last_backlog_send: Option<Instant> = None;
        let mut rate = DrainRate::default();
        let mut poison = PoisonWatch::default();
        let mut drained_backlog = false;
        loop {
            if shutdown.is_cancelled() {
                return;
            }
            // The previous batch is acked, set aside or waiting for a retry: evictable again.
            self.store.set_in_flight(None);
            let live = *self.live_cycle.borrow_and_update();
            self.heartbeat.beat(Duration::from_secs(5));
            let batch = match self.store.next_batch(live).await {
                Ok(batch) => batch,
                Err(e) => {
                    warn!(error = %e, "Cannot read the outbox; retrying.");
                    if sleep_or_cancel(Duration::from_secs(1), &shutdown).await {
                        return;
                    }
                    continue;
                }
            };
            let Some(batch) = batch else {
                if std::mem::take(&mut drained_backlog) {
                    // A catch-up just ended: give the WAL's space back, so it does not keep
                    // the size of the largest burst.
                    if let Err(e) = self.store.checkpoint().await {
                        debug!(error = %e, "WAL checkpoint failed.");
                    }
                }
                // Nothing waits: sleep until a cycle is written (or a timer, so nothing can
                // get stuck waiting for a wake-up that was missed).
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = self.wake.notified() => {}
                    _ = tokio::time::sleep(Duration::from_secs(5)) => {}
                }
                continue;
            };
            let is_backlog = Some(batch.cycle_ms) != live;
            if is_backlog {
                // Pace the catch-up so a long outage does not end in a burst at Foreman.
                if let Some(last) = last_backlog_send {
                    let ready = last + backlog_gap;
                    if Instant::now() < ready {
                        self.heartbeat.beat(backlog_gap);
                        tokio::select! {
                            _ = shutdown.cancelled() => return,
                            _ = tokio::time::sleep_until(ready) => {}
                            // A new live cycle jumps the queue.
                            _ = self.wake.notified() => continue,
                        }
                    }
                }
                last_backlog_send = Some(Instant::now());
                drained_backlog = true;
            }
            self.heartbeat.beat(self.request_timeout);
            self.store.set_in_flight(Some(batch.id));
            let outcome = tokio::select! {
                _ = shutdown.cancelled() => {
                    self.store.set_in_flight(None);
                    return;
                }
                outcome = self.send(&batch) => outcome,
            };
            match outcome {
                Ok(()) => {
                    poison.accepted(batch.id);
                    if let Err(e) = self.store.ack_batch(batch.id).await {
                        // The batch stays and is re-sent under the same key: Foreman
                        // de-duplicates it, nothing is lost.
                        warn!(error = %e, "Cannot delete an uploaded batch; it will be re-sent.");
                    }
                    if backoff.failures() > 0 {
                        info!(after_failures = backoff.failures(), "Uplink recovered.");
                    }
                    backoff.reset();
                    self.set_state(UplinkState::Ok).await;
                    if let Some(per_second) = rate.record(batch.samples) {
                        let _ = self
                            .store
                            .set_meta("drain_rate", &format!("{per_second:.0} samples/s"))
                            .await;
                    }
                    debug!(
                        batch = batch.id,
                        samples = batch.samples,
                        backlog = is_backlog,
                        "Batch uploaded."
                    );
                }
                // This batch as is will never be accepted: split it, so one bad sample
                // costs only itself, and set single samples aside with the server's reason.
                Err(ForemanError::TooLarge) => {
                    self.set_aside_or_split(&batch, 413, "request too large")
                        .await
                }
                Err(ForemanError::Rejected { status, message }) => {
                    self.set_aside_or_split(&batch, status, &message).await
                }
                // Foreman fails on this batch again and again while it takes others: the
                // batch, not the server, is the problem (C-23). Isolate it like a refusal.
                Err(e) if e.is_server_error() && poison.server_error(batch.id) => {
                    warn!(batch = batch.id, error = %e, budget = POISON_BUDGET, "Foreman keeps failing on one batch while accepting others; splitting it.");
                    poison.forget(batch.id);
                    self.set_aside_or_split(&batch, 500, &e.to_string()).await
                }
                Err(e) => {
                    let mut delay = backoff.next_delay(e.retry_after());
                    let state = match &e {
                        // A refused key will not heal by itself: retry slowly until it is
                        // fixed (new key + reload), buffering all along.
                        ForemanError::Auth { .. } => {
                            delay = delay.max(self.config.max_backoff);
                            UplinkState::AuthFailed(e.to_string())
                        }
                        _ => UplinkState::Retrying(e.to_string()),
                    };
                    if backoff.failures() == 1 || backoff.failures().is_multiple_of(10) {
                        warn!(error = %e, retry_in = ?delay, failures = backoff.failures(), "Upload failed; data stays buffered.");
                    }
                    self.set_state(state).await;
                    self.heartbeat.beat(delay);
                    if sleep_or_cancel(delay, &shutdown).await {
                        return;
                    }
                }
            }
        }
    }

    /// Publishes a state change, and keeps it in the store for `pickaxe status`.
    async fn set_state(&self, state: UplinkState) {
        if *self.state.borrow() == state {
            return;
        }
        if let Err(e) = self
            .store
            .set_meta("uplink_state", &state.to_string())
            .await
        {
            debug!(error = %e, "Cannot record the uplink state.");
        }
        self.state.send_replace(state);
    }

    async fn send(&self, batch: &StoredBatch) -> Result<(), ForemanError> {
        if self.compress.load(std::sync::atomic::Ordering::Relaxed) {
            // The stored body is already gzip: send it as it is.
            return self
                .client
                .put_metrics(batch.body_gz.clone(), &batch.idempotency_key, true)
                .await;
        }
        let body = decode_body(&batch.body_gz).map_err(|e| ForemanError::Rejected {
            status: 0,
            message: format!("stored batch {} is unreadable: {e}", batch.id),
        })?;
        self.client
            .put_metrics(body, &batch.idempotency_key, false)
            .await
    }

    /// Halves a refused batch (keeping its cycle's place), or moves a single-miner batch to
    /// the dead-letter table with the server's message.
    async fn set_aside_or_split(&self, batch: &StoredBatch, status: u16, message: &str) {
        let outcome = match split_batch(batch) {
            Ok(Some(parts)) => {
                info!(
                    batch = batch.id,
                    status,
                    message,
                    parts = parts.len(),
                    "Foreman refused a batch; splitting it to isolate the cause."
                );
                self.store.split_batch(batch.id, &parts).await
            }
            _ => {
                error!(
                    batch = batch.id,
                    samples = batch.samples,
                    status,
                    message,
                    "Foreman refused a sample for good; it is kept in the dead-letter table."
                );
                self.store.dead_letter(batch.id, status, message).await
            }
        };
        if let Err(e) = outcome {
            warn!(error = %e, "Cannot set a refused batch aside; it will be retried.");
        }
    }
}

/// 5xx answers one batch may get, while Foreman accepts other batches, before it is split.
const POISON_BUDGET: u32 = 5;

/// Counts 5xx answers per batch, and whether Foreman accepted any other batch meanwhile.
/// A batch over budget while others go through is poison; when every batch fails, it is an
/// outage and nothing is split.
#[derive(Debug, Default)]
struct PoisonWatch {
    /// Batch id -> (5xx answers, another batch accepted since the first).
    failing: std::collections::HashMap<i64, (u32, bool)>,
}

impl PoisonWatch {
    /// Records a 5xx for `id`; true when it is poison.
    fn server_error(&mut self, id: i64) -> bool {
        // Batches evicted by the bounds are never acked: keep the map small.
        if self.failing.len() > 10_000 {
            self.failing.clear();
        }
        let (failures, others_ok) = self.failing.entry(id).or_insert((0, false));
        *failures += 1;
        *failures >= POISON_BUDGET && *others_ok
    }

    fn accepted(&mut self, id: i64) {
        self.failing.remove(&id);
        for (_, others_ok) in self.failing.values_mut() {
            *others_ok = true;
        }
    }

    fn forget(&mut self, id: i64) {
        self.failing.remove(&id);
    }
}

/// Samples uploaded per second over the last minute, published at most every 5 s.
#[derive(Debug, Default)]
struct DrainRate {
    acks: std::collections::VecDeque<(Instant, i64)>,
    published: Option<Instant>,
}

impl DrainRate {
    const WINDOW: Duration = Duration::from_secs(60);

    fn record(&mut self, samples: i64) -> Option<f64> {
        let now = Instant::now();
        self.acks.push_back((now, samples));
        while self
            .acks
            .front()
            .is_some_and(|(at, _)| now.duration_since(*at) > Self::WINDOW)
        {
            self.acks.pop_front();
        }
        if self
            .published
            .is_some_and(|p| now.duration_since(p) < Duration::from_secs(5))
        {
            return None;
        }
        self.published = Some(now);
        let first = self.acks.front().map(|(at, _)| *at).unwrap_or(now);
        let span = now.duration_since(first).as_secs_f64().max(1.0);
        Some(self.acks.iter().map(|(_, n)| *n).sum::<i64>() as f64 / span)
    }
}

/// Sleeps; true when cancelled first.
pub async fn sleep_or_cancel(delay: Duration, shutdown: &CancellationToken) -> bool {
    tokio::select! {
        _ = shutdown.cancelled() => true,
        _ = tokio::time::sleep(delay) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_is_poison_only_while_others_go_through() {
        let mut watch = PoisonWatch::default();
        // An outage: every batch fails, nothing is ever poison.
        for _ in 0..20 {
            assert!(!watch.server_error(1));
            assert!(!watch.server_error(2));
        }
        let mut watch = PoisonWatch::default();
        assert!(!watch.server_error(1));
        watch.accepted(2);
        for _ in 1..POISON_BUDGET - 1 {
            assert!(!watch.server_error(1));
        }
        assert!(
            watch.server_error(1),
            "over budget while batch 2 went through"
        );
    }
    use crate::model::MinerStats;

    #[test]
    fn cycle_is_cut_into_batches_of_at_most_200() {
        let samples: Vec<Sample> = (0..450)
            .map(|i| Sample {
                ip: format!("127.1.{}.{}", i / 250, i % 250 + 1),
                port: 4028,
                stats: MinerStats {
                    hashrate: Some(1e14),
                    ..Default::default()
                },
            })
            .collect();
        let at = chrono::Utc::now();
        let batches = encode_cycle(at, &samples, 200).unwrap();
        assert_eq!(
            batches.iter().map(|b| b.samples).collect::<Vec<_>>(),
            vec![200, 200, 50]
        );
        let body: serde_json::Value =
            serde_json::from_slice(&decode_body(&batches[2].body_gz).unwrap()).unwrap();
        assert_eq!(body["miners"].as_array().unwrap().len(), 50);
        assert_eq!(
            body["metadata"]["timestamp"],
            crate::foreman::metrics::format_timestamp(at)
        );
        assert_ne!(batches[0].idempotency_key, batches[1].idempotency_key);
    }
}
