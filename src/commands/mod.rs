//! Commands from Foreman, exactly once, with truthful results (issue #4, C-19/C-20/C-21).
//!
//! * [`intake`] polls Foreman's command list and records each new id in SQLite (with its
//!   start queued in the same transaction) before anything acts on it; a known id is skipped.
//! * [`execute`] runs a command: detects the miner, commits "executing" with a baseline, sends
//!   the action once ([`crate::miner::control`]), then [`verify`]s its effect until the
//!   deadline. After a restart an executing command is only verified, never re-sent.
//! * [`results`] drains the durable outbox of starts / updates / dones to Foreman's batch
//!   endpoints, deleting each only after Foreman's 2xx.
//! * [`ramp`] keeps bulk work safe (one command per miner, staggered power-on); [`scan`]
//!   discovers miners; [`macs`] reports the MACs of polled miners.

pub mod body;
pub mod execute;
pub mod intake;
pub mod macs;
pub mod parse;
pub mod ramp;
pub mod results;
pub mod scan;
pub mod verify;
pub mod web_macs;

use std::sync::Arc;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::Config;
use crate::foreman::ForemanClient;
use crate::heartbeat::Heartbeat;
use crate::store::Store;

/// What other command channels (MQTT) need: the runner that records and runs a command
/// exactly once, and the bell rung when a result of theirs is queued.
#[derive(Clone)]
pub struct CommandDesk {
    pub runner: Arc<execute::Runner>,
    pub mqtt_results: Arc<Notify>,
}

/// Starts the command tasks: results sender, intake (which resumes unfinished commands
/// first) and the MAC reporter. Intake and execution stop at `shutdown`; the results sender
/// at `results_stop` (after the daemon's flush grace).
pub fn spawn(
    config: &Config,
    store: Store,
    client: ForemanClient,
    heartbeat: Heartbeat,
    shutdown: CancellationToken,
    results_stop: CancellationToken,
    tracker: &TaskTracker,
) -> CommandDesk {
    let wake = Arc::new(Notify::new());
    let mqtt_results = Arc::new(Notify::new());
    let runner = Arc::new(execute::Runner::new(
        config,
        store.clone(),
        [wake.clone(), mqtt_results.clone()],
        shutdown.clone(),
        tracker.clone(),
    ));
    tracker.spawn(
        results::ResultSender {
            store: store.clone(),
            client: client.clone(),
            wake,
            min_backoff: config.upload.min_backoff,
            max_backoff: config.upload.max_backoff,
        }
        .run(results_stop),
    );
    tracker.spawn(
        intake::Intake {
            store: store.clone(),
            client: client.clone(),
            runner: runner.clone(),
            heartbeat,
            request_timeout: config.foreman.request_timeout,
            poll_interval: config.commands.poll_interval,
            retention: config.commands.retention,
            min_backoff: config.upload.min_backoff,
            max_backoff: config.upload.max_backoff,
        }
        .run(shutdown.clone()),
    );
    tracker.spawn(macs::report(
        store,
        client,
        config.commands.mac_interval,
        web_macs::WebMacs::new(&config.antminer_web, config.commands.miner_timeout),
        shutdown,
    ));
    CommandDesk {
        runner,
        mqtt_results,
    }
}
