//! Liveness of the daemon's loops, for the systemd watchdog: each loop promises when it will
//! next show progress; the watchdog is fed only while every promise is kept. A timer that
//! pings unconditionally would hide exactly the hangs the watchdog is for.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

/// Slack on top of each promise: scheduling noise must not trip the watchdog.
const SLACK: Duration = Duration::from_secs(10);

/// One loop's promise: "I will beat again before this deadline".
#[derive(Debug, Clone)]
pub struct Heartbeat {
    name: &'static str,
    origin: Instant,
    /// Milliseconds after `origin`.
    deadline_ms: Arc<AtomicU64>,
}

impl Heartbeat {
    pub fn new(name: &'static str, first_within: Duration) -> Heartbeat {
        let beat = Heartbeat {
            name,
            origin: Instant::now(),
            deadline_ms: Arc::new(AtomicU64::new(0)),
        };
        beat.beat(first_within);
        beat
    }

    /// Progress now; the next beat comes within `next_within`.
    pub fn beat(&self, next_within: Duration) {
        let deadline = self.origin.elapsed() + next_within + SLACK;
        self.deadline_ms
            .store(deadline.as_millis() as u64, Ordering::Relaxed);
    }

    pub fn is_alive(&self) -> bool {
        self.origin.elapsed().as_millis() as u64 <= self.deadline_ms.load(Ordering::Relaxed)
    }

    pub fn name(&self) -> &'static str {
        self.name
    }
}

/// The heartbeats the watchdog checks.
#[derive(Debug, Clone)]
pub struct Heartbeats {
    pub poller: Heartbeat,
    pub uploader: Heartbeat,
    pub store: Heartbeat,
    /// The loop that fetches Foreman's commands.
    pub commands: Heartbeat,
}

impl Heartbeats {
    pub fn new(first_within: Duration) -> Heartbeats {
        Heartbeats {
            poller: Heartbeat::new("poller", first_within),
            uploader: Heartbeat::new("uploader", first_within),
            store: Heartbeat::new("store", first_within),
            commands: Heartbeat::new("commands", first_within),
        }
    }

    /// The loops that broke their promise, if any.
    pub fn stalled(&self) -> Vec<&'static str> {
        [&self.poller, &self.uploader, &self.store, &self.commands]
            .into_iter()
            .filter(|h| !h.is_alive())
            .map(|h| h.name())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_broken_promise_is_seen() {
        let beats = Heartbeats::new(Duration::from_secs(5));
        assert!(beats.stalled().is_empty());
        beats.poller.beat(Duration::from_secs(60));
        tokio::time::advance(Duration::from_secs(20)).await;
        assert_eq!(beats.stalled(), vec!["uploader", "store", "commands"]);
        beats.uploader.beat(Duration::ZERO);
        beats.store.beat(Duration::ZERO);
        beats.commands.beat(Duration::ZERO);
        assert!(beats.stalled().is_empty());
        tokio::time::advance(Duration::from_secs(60)).await;
        assert_eq!(beats.stalled().len(), 4);
    }
}
