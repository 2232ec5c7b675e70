//! `pickaxe run` as a systemd service (`Type=notify`): READY once the config is valid and
//! the state database is open and migrated, STATUS kept current, the watchdog fed only while
//! the loops make progress, SIGHUP reloads the config (validated first; the running one
//! stays on error), SIGTERM stops within the unit's timeout with nothing half-written.
//! Without systemd (`NOTIFY_SOCKET` unset) the notifications are no-ops.

use std::path::{Path, PathBuf};
use std::time::Duration;

use sd_notify::NotifyState;
use tokio::signal::unix::{signal, SignalKind};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{error, info, warn};

use crate::config::Config;
use crate::daemon::{self, DaemonHandle, StartOptions};
use crate::logging::LogHandle;

/// Why the daemon generation ended.
enum Ending {
    Stop,
    Reload(Box<Config>),
}

pub async fn run(config_path: PathBuf, mut config: Config, log: LogHandle) -> anyhow::Result<()> {
    warn_if_readable_by_others(&config_path, &config);
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut hup = signal(SignalKind::hangup())?;
    let watchdog = sd_notify::watchdog_enabled();
    loop {
        let shutdown = CancellationToken::new();
        let tracker = TaskTracker::new();
        let options = StartOptions::default();
        let grace = config.poll.timeout + options.flush_grace + Duration::from_secs(5);
        let handle = daemon::start(config.clone(), options, shutdown.clone(), &tracker).await?;
        tracker.close();
        notify(&[
            NotifyState::Ready,
            NotifyState::Status(&status_line(&handle).await),
        ]);
        info!("Ready.");

        let ending = loop {
            let tick = watchdog.map(|w| w / 2).unwrap_or(Duration::from_secs(5));
            tokio::select! {
                _ = term.recv() => break Ending::Stop,
                _ = int.recv() => break Ending::Stop,
                _ = hup.recv() => {
                    notify(&reloading());
                    match Config::load(&config_path) {
                        Ok(new) => {
                            info!("SIGHUP: configuration is valid; applying it.");
                            break Ending::Reload(Box::new(new));
                        }
                        Err(e) => {
                            error!(error = %e, "SIGHUP: configuration refused; keeping the running one.");
                            notify(&[NotifyState::Ready, NotifyState::Status(&format!("config reload refused: {e}"))]);
                        }
                    }
                }
                _ = tokio::time::sleep(tick) => {
                    notify(&[NotifyState::Status(&status_line(&handle).await)]);
                    if watchdog.is_some() {
                        feed_watchdog(&handle);
                    }
                }
            }
        };

        match ending {
            Ending::Stop => {
                info!("Stopping: finishing the cycle in flight.");
                notify(&[NotifyState::Stopping, NotifyState::Status("stopping")]);
                stop(&handle, shutdown, &tracker, grace).await;
                info!("Stopped.");
                return Ok(());
            }
            Ending::Reload(new) => {
                // Everything buffered is in SQLite: stop this generation (its cycle in flight
                // is finished and stored, uploads resume in the next), start the new one.
                handle.upload_stop.cancel();
                stop(&handle, shutdown, &tracker, grace).await;
                log.set_level(new.log.level.as_deref());
                warn_if_readable_by_others(&config_path, &new);
                config = *new;
            }
        }
    }
}

async fn stop(
    handle: &DaemonHandle,
    shutdown: CancellationToken,
    tracker: &TaskTracker,
    grace: Duration,
) {
    shutdown.cancel();
    if tokio::time::timeout(grace, tracker.wait()).await.is_err() {
        warn!(
            ?grace,
            "Tasks did not stop in time; what is committed is safe."
        );
    }
    handle.store.close().await;
}

/// Feeds the watchdog only if the poller, the uploader and the store all kept their promise.
fn feed_watchdog(handle: &DaemonHandle) {
    let stalled = handle.heartbeats.stalled();
    if stalled.is_empty() {
        notify(&[NotifyState::Watchdog]);
    } else {
        error!(
            ?stalled,
            "No progress: not feeding the watchdog, systemd will restart us."
        );
    }
}

fn reloading() -> Vec<NotifyState<'static>> {
    let mut states = vec![NotifyState::Reloading];
    // systemd 253+ requires the monotonic time with RELOADING=1.
    if let Ok(now) = NotifyState::monotonic_usec_now() {
        states.push(now);
    }
    states
}

fn notify(states: &[NotifyState<'_>]) {
    if let Err(e) = sd_notify::notify(states) {
        warn!(error = %e, "Cannot notify systemd.");
    }
}

/// `polling 212 miners (210 ok), buffer 0 samples, uplink ok`
async fn status_line(handle: &DaemonHandle) -> String {
    let cycle = *handle.last_cycle.borrow();
    let buffered = handle
        .store
        .backlog()
        .await
        .map(|b| b.samples.to_string())
        .unwrap_or_else(|_| "?".into());
    let uplink = handle.uplink.borrow().to_string();
    format!(
        "polling {} miners ({} ok), buffer {buffered} samples, uplink {uplink}",
        cycle.miners, cycle.ok
    )
}

/// The config file holds the API key: say so if anyone else can read it.
fn warn_if_readable_by_others(path: &Path, config: &Config) {
    use std::os::unix::fs::PermissionsExt;
    let file = match &config.foreman.api_key_file {
        Some(key_file) => match path.parent() {
            Some(dir) if key_file.is_relative() => dir.join(key_file),
            _ => key_file.clone(),
        },
        None => path.to_path_buf(),
    };
    {
        if let Ok(meta) = std::fs::metadata(&file) {
            if meta.permissions().mode() & 0o004 != 0 {
                warn!(file = %file.display(), "This file holds the API key and is readable by every user: chmod o-r it.");
            }
        }
    }
}
