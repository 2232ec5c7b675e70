//! Per-miner availability with hysteresis: one failed poll is not an outage, two are.

use std::collections::BTreeMap;

use crate::foreman::metrics::Sample;
use crate::model::PowerMode;
use crate::store::PollRecord;

/// Consecutive failed polls before a miner is called offline.
pub const OFFLINE_AFTER: u32 = 2;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Availability {
    Online,
    Offline,
    Sleeping,
}

impl Availability {
    pub fn as_str(self) -> &'static str {
        match self {
            Availability::Online => "online",
            Availability::Offline => "offline",
            Availability::Sleeping => "sleeping",
        }
    }
}

#[derive(Debug, Default)]
struct MinerState {
    /// `None` until known (a first failed poll says nothing yet).
    state: Option<Availability>,
    failures: u32,
}

/// The availability of every miner seen, by (ip, port).
#[derive(Debug, Default)]
pub struct AvailabilityTracker {
    miners: BTreeMap<(String, u16), MinerState>,
}

impl AvailabilityTracker {
    /// Takes one poll result into account.
    pub fn observe(&mut self, record: &PollRecord, samples: &[Sample]) {
        let entry = self
            .miners
            .entry((record.ip.clone(), record.port))
            .or_default();
        if record.error.is_some() {
            entry.failures = entry.failures.saturating_add(1);
            if entry.failures >= OFFLINE_AFTER {
                entry.state = Some(Availability::Offline);
            }
            return;
        }
        entry.failures = 0;
        let sleeping = samples
            .iter()
            .find(|s| s.ip == record.ip && s.port == record.port)
            .is_some_and(|s| s.stats.power_mode == Some(PowerMode::Sleeping));
        entry.state = Some(if sleeping {
            Availability::Sleeping
        } else {
            Availability::Online
        });
    }

    /// The known states.
    pub fn states(&self) -> impl Iterator<Item = (&(String, u16), Availability)> + '_ {
        self.miners
            .iter()
            .filter_map(|(k, m)| m.state.map(|s| (k, s)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(error: bool) -> PollRecord {
        PollRecord {
            ip: "127.0.0.9".into(),
            port: 4028,
            at_ms: 0,
            family: None,
            model: None,
            mac: None,
            hashrate: None,
            error: error.then(|| "timeout".to_string()),
        }
    }

    fn state(t: &AvailabilityTracker) -> Option<Availability> {
        t.states().next().map(|(_, s)| s)
    }

    #[test]
    fn offline_only_after_two_failures() {
        let mut t = AvailabilityTracker::default();
        t.observe(&record(true), &[]);
        assert_eq!(state(&t), None);
        t.observe(&record(false), &[]);
        assert_eq!(state(&t), Some(Availability::Online));
        t.observe(&record(true), &[]);
        assert_eq!(state(&t), Some(Availability::Online));
        t.observe(&record(true), &[]);
        assert_eq!(state(&t), Some(Availability::Offline));
        t.observe(&record(false), &[]);
        assert_eq!(state(&t), Some(Availability::Online));
    }
}
