//! Per-miner availability with hysteresis: one failed poll is not an outage, two are.

use std::collections::{BTreeMap, HashSet};

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
    /// Takes one cycle into account: each miner's poll result, and whether it sleeps.
    pub fn observe_cycle(&mut self, records: &[PollRecord], samples: &[Sample]) {
        // One pass over the samples, not one per record: sites have thousands of miners.
        let sleeping: HashSet<(&str, u16)> = samples
            .iter()
            .filter(|s| s.stats.power_mode == Some(PowerMode::Sleeping))
            .map(|s| (s.ip.as_str(), s.port))
            .collect();
        for record in records {
            let asleep = sleeping.contains(&(record.ip.as_str(), record.port));
            self.observe(record, asleep);
        }
    }

    /// Takes one poll result into account.
    fn observe(&mut self, record: &PollRecord, sleeping: bool) {
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
        t.observe(&record(true), false);
        assert_eq!(state(&t), None);
        t.observe(&record(false), false);
        assert_eq!(state(&t), Some(Availability::Online));
        t.observe(&record(true), false);
        assert_eq!(state(&t), Some(Availability::Online));
        t.observe(&record(true), false);
        assert_eq!(state(&t), Some(Availability::Offline));
        t.observe(&record(false), false);
        assert_eq!(state(&t), Some(Availability::Online));
    }

    #[test]
    fn a_sleeping_miner_is_sleeping_not_offline() {
        let mut t = AvailabilityTracker::default();
        let sample = Sample {
            ip: "127.0.0.9".into(),
            port: 4028,
            stats: crate::model::MinerStats {
                power_mode: Some(PowerMode::Sleeping),
                ..Default::default()
            },
        };
        t.observe_cycle(&[record(false)], &[sample]);
        assert_eq!(state(&t), Some(Availability::Sleeping));
        t.observe_cycle(&[record(false)], &[]);
        assert_eq!(state(&t), Some(Availability::Online));
    }
}
