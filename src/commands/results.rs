//! The results outbox drained to Foreman: starts, then updates, then dones (Foreman's own
//! order), each batch deleted only after a 2xx. A failure keeps everything for the next try,
//! so a command's done is re-sent until Foreman has it, across restarts too.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, warn};

use crate::foreman::retry::Backoff;
use crate::foreman::{ForemanClient, ForemanError};
use crate::store::{Source, Store};
use crate::uplink::sleep_or_cancel;

/// Foreman's `commandCompletionBatchSize` default.
const BATCH: i64 = 500;

pub struct ResultSender {
    pub store: Store,
    pub client: ForemanClient,
    pub wake: Arc<Notify>,
    pub min_backoff: Duration,
    pub max_backoff: Duration,
}

impl ResultSender {
    pub async fn run(self, stop: CancellationToken) {
        let mut backoff = Backoff::new(self.min_backoff, self.max_backoff);
        loop {
            if stop.is_cancelled() {
                return;
            }
            let entries = match self.store.command_outbox(Source::Foreman, BATCH).await {
                Ok(e) => e,
                Err(e) => {
                    warn!(error = %e, "Cannot read the command results; retrying.");
                    if sleep_or_cancel(Duration::from_secs(1), &stop).await {
                        return;
                    }
                    continue;
                }
            };
            if entries.is_empty() {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = self.wake.notified() => {}
                    _ = tokio::time::sleep(Duration::from_secs(2)) => {}
                }
                continue;
            }
            let mut failed = None;
            for kind in ["start", "update", "done"] {
                let group: Vec<_> = entries.iter().filter(|e| e.kind == kind).collect();
                if group.is_empty() {
                    continue;
                }
                let bodies: Vec<(String, serde_json::Value)> = group
                    .iter()
                    .map(|e| (e.command_id.clone(), e.body.clone()))
                    .collect();
                let seqs: Vec<i64> = group.iter().map(|e| e.seq).collect();
                let sent = tokio::select! {
                    _ = stop.cancelled() => return,
                    r = self.client.command_batch(kind, &bodies) => r,
                };
                match sent {
                    Ok(()) => {
                        debug!(kind, results = seqs.len(), "Command results delivered.");
                        let _ = self.store.foreman_contact().await;
                        if let Err(e) = self.store.ack_command_results(&seqs).await {
                            warn!(error = %e, "Cannot delete delivered results; they will be re-sent.");
                        }
                    }
                    // Refused for good: retrying as is cannot help. Send them one by one, so
                    // only the result Foreman refuses is dropped (loudly).
                    Err(ForemanError::Rejected { status, message }) => {
                        warn!(kind, status, %message, results = seqs.len(), "Foreman refused a batch of command results; sending them one by one.");
                        for (entry, seq) in bodies.iter().zip(&seqs) {
                            match self
                                .client
                                .command_batch(kind, std::slice::from_ref(entry))
                                .await
                            {
                                Ok(()) => {}
                                Err(ForemanError::Rejected { status, message }) => {
                                    error!(kind, status, %message, command = %entry.0, "Foreman refused a command result; dropping it.");
                                }
                                // Anything else: keep it (and the rest) for the next round.
                                Err(_) => break,
                            }
                            let _ = self
                                .store
                                .ack_command_results(std::slice::from_ref(seq))
                                .await;
                        }
                    }
                    Err(e) => {
                        failed = Some(e);
                        // Later kinds wait: a done must not overtake its start.
                        break;
                    }
                }
            }
            match failed {
                None => backoff.reset(),
                Some(e) => {
                    let _ = self.store.foreman_error(&e.to_string()).await;
                    let delay = backoff.next_delay(e.retry_after());
                    if backoff.failures() == 1 {
                        warn!(error = %e, retry_in = ?delay, "Cannot deliver command results; they stay queued.");
                    }
                    if sleep_or_cancel(delay, &stop).await {
                        return;
                    }
                }
            }
        }
    }
}
