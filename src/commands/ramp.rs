//! Bulk safety: one command per miner at a time, and miners powered back on one after the
//! other with a gap (inrush current of a whole row at once trips breakers).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use std::time::Duration;

use tokio::time::Instant;

/// Powers miners on one at a time: each switch starts at least `gap` after the previous
/// one was sent. The turn is held across the send itself, since the firmware steps before
/// the switch (sessions, tokens) take different times per family.
#[derive(Debug)]
pub struct Ramp {
    gap: Duration,
    last: tokio::sync::Mutex<Option<Instant>>,
}

impl Ramp {
    pub fn new(gap: Duration) -> Ramp {
        Ramp {
            gap,
            last: tokio::sync::Mutex::new(None),
        }
    }

    /// Runs `send` in this caller's turn.
    pub async fn run<T>(&self, send: impl std::future::Future<Output = T>) -> T {
        let mut last = self.last.lock().await;
        if let Some(at) = *last {
            tokio::time::sleep_until(at + self.gap).await;
        }
        let out = send.await;
        *last = Some(Instant::now());
        out
    }
}

/// One lock per miner, so two commands never act on the same miner at once.
#[derive(Debug, Default)]
pub struct MinerLocks {
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl MinerLocks {
    pub fn get(&self, miner: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut map = self.locks.lock().unwrap_or_else(|e| e.into_inner());
        // Forget locks nobody holds, so the map does not grow with every miner ever seen.
        map.retain(|_, l| Arc::strong_count(l) > 1);
        map.entry(miner.to_string()).or_default().clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn slots_are_a_gap_apart() {
        let ramp = Arc::new(Ramp::new(Duration::from_secs(2)));
        let t0 = Instant::now();
        let mut handles = Vec::new();
        for _ in 0..3 {
            let r = ramp.clone();
            handles.push(tokio::spawn(async move {
                r.run(async { Instant::now() }).await
            }));
        }
        let mut at: Vec<Duration> = Vec::new();
        for h in handles {
            at.push(h.await.unwrap() - t0);
        }
        at.sort();
        assert_eq!(
            at,
            vec![
                Duration::ZERO,
                Duration::from_secs(2),
                Duration::from_secs(4)
            ]
        );
    }
}
