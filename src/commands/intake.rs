//! Polls Foreman for commands: every `commands.poll_interval`, or as the server's hint says.
//! Each new id is recorded (start queued) before it is handed to the runner; an id already
//! recorded is skipped, so a command Foreman lists again (it does until the start arrives)
//! never runs twice (C-21).

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

use super::execute::Runner;
use crate::foreman::retry::Backoff;
use crate::foreman::{ForemanClient, RemoteCommand};
use crate::heartbeat::Heartbeat;
use crate::store::{Source, Store};
use crate::uplink::sleep_or_cancel;

/// Bounds on the server's hint: never hammer, never go deaf.
const MIN_DELAY: Duration = Duration::from_millis(100);
const MAX_DELAY: Duration = Duration::from_secs(600);

pub struct Intake {
    pub store: Store,
    pub client: ForemanClient,
    pub runner: Arc<Runner>,
    /// Fed before each wait with how long it may take (watchdog).
    pub heartbeat: Heartbeat,
    pub request_timeout: Duration,
    pub poll_interval: Duration,
    pub retention: Duration,
    pub min_backoff: Duration,
    pub max_backoff: Duration,
}

impl Intake {
    pub async fn run(self, shutdown: CancellationToken) {
        // Commands a previous run left unfinished: verify or run them first.
        match self.store.unfinished_commands().await {
            Ok(rows) => {
                if !rows.is_empty() {
                    info!(commands = rows.len(), "Resuming unfinished commands.");
                }
                for row in rows {
                    self.runner.dispatch(row);
                }
            }
            Err(e) => error!(error = %e, "Cannot read unfinished commands."),
        }
        let mut backoff = Backoff::new(self.min_backoff, self.max_backoff);
        let mut last_prune = tokio::time::Instant::now();
        loop {
            // Recording a listed command takes a few database writes at most.
            self.heartbeat
                .beat(self.request_timeout + Duration::from_secs(30));
            let delay = match self.client.commands().await {
                Ok(list) => {
                    backoff.reset();
                    let _ = self.store.foreman_contact().await;
                    if list.malformed > 0 {
                        warn!(
                            entries = list.malformed,
                            "Foreman listed commands without an id or name; skipped."
                        );
                    }
                    for c in list.commands {
                        self.accept(c).await;
                    }
                    list.delay
                        .unwrap_or(self.poll_interval)
                        .clamp(MIN_DELAY, MAX_DELAY)
                }
                Err(e) => {
                    let _ = self.store.foreman_error(&e.to_string()).await;
                    let delay = backoff
                        .next_delay(e.retry_after())
                        .max(self.poll_interval.min(self.max_backoff));
                    debug!(error = %e, retry_in = ?delay, "Cannot fetch commands.");
                    delay
                }
            };
            if last_prune.elapsed() > Duration::from_secs(3600) {
                last_prune = tokio::time::Instant::now();
                let keep = i64::try_from(self.retention.as_millis()).unwrap_or(i64::MAX);
                if let Err(e) = self.store.prune_commands(Source::Foreman, keep).await {
                    debug!(error = %e, "Cannot prune old commands.");
                }
            }
            self.heartbeat.beat(delay);
            if sleep_or_cancel(delay, &shutdown).await {
                return;
            }
        }
    }

    /// Records a command (or skips a known id) and hands it to the runner.
    async fn accept(&self, c: RemoteCommand) {
        match self
            .runner
            .accept(&c.id, &c.command, &c.args, Source::Foreman)
            .await
        {
            Ok(true) => {}
            Ok(false) => debug!(id = %c.id, "Command already recorded; not run again."),
            Err(e) => {
                error!(error = %e, id = %c.id, "Cannot record a command; it is not run (Foreman lists it again).")
            }
        }
    }
}
